//! `firecamp service upgrade|restart|config|resources|stop|start|operations`: day-2 operations,
//! each a durable record the manage service (or the local runtime) drives step by step.

use std::time::{Duration, Instant};

use clap::Args;
use firecamp_api::{Operation, OperationKind, OperationPhase, OperationRequest, Phase, UpdatePolicy};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{Format, ResourceFlags, WaitArgs};
use crate::backend::Backend;
use crate::error::CliError;
use crate::output;
use crate::wait::{Until, wait};

/// Options every operation takes.
#[derive(Args, Clone)]
pub struct OperationArgs {
    /// Restart order: PrimaryLast (replicas, then a switchover, then the old primary) or
    /// PrimaryFirst; the service's updatePolicy, else the engine's default, when absent.
    #[arg(long, value_parser = UpdatePolicy::parse)]
    pub policy: Option<UpdatePolicy>,
    /// How long one step may take before the operation fails, in seconds.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub step_timeout: Option<u32>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args)]
pub struct ConfigArgs {
    pub name: String,
    /// An engine parameter for every member, `key=value` (an empty value removes it); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// An engine parameter for one member, `member:key=value`; repeatable.
    #[arg(long = "member-set", value_name = "MEMBER:KEY=VALUE")]
    pub member_set: Vec<String>,
    #[command(flatten)]
    pub op: OperationArgs,
}

#[derive(Args)]
pub struct ResourcesArgs {
    pub name: String,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub op: OperationArgs,
}

fn pair(flag: &str, s: &str) -> Result<(String, String), CliError> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| CliError::Usage(format!("{flag} {s:?}: write key=value")))
}

pub fn config_request(a: &ConfigArgs) -> Result<OperationRequest, CliError> {
    let mut req = request(OperationKind::Config, &a.op);
    for s in &a.set {
        let (k, v) = pair("--set", s)?;
        req.config.insert(k, v);
    }
    for s in &a.member_set {
        let (member, kv) = s.split_once(':').ok_or_else(|| CliError::Usage(format!("--member-set {s:?}: write member:key=value")))?;
        let (k, v) = pair("--member-set", kv)?;
        req.member_config.entry(member.to_string()).or_default().insert(k, v);
    }
    if req.config.is_empty() && req.member_config.is_empty() {
        return Err(CliError::Usage("give at least one --set key=value or --member-set member:key=value".into()));
    }
    Ok(req)
}

pub fn resources_request(a: &ResourcesArgs) -> OperationRequest {
    let mut req = request(OperationKind::Resources, &a.op);
    req.resources = Some(a.resources.to_resources());
    req
}

pub fn request(kind: OperationKind, a: &OperationArgs) -> OperationRequest {
    OperationRequest { kind: Some(kind), policy: a.policy, step_timeout_seconds: a.step_timeout, ..Default::default() }
}

/// Asks for the operation, prints it, and with `--wait` follows it to its end.
pub async fn run(client: &Backend, name: &str, req: OperationRequest, w: WaitArgs) -> Result<(), CliError> {
    let kind = req.kind;
    let op = client.request_operation(name, &req).await?;
    println!("{name}: operation {} ({}{}) accepted", op.id, op.kind, op.target.as_ref().map(|t| format!(": {t}")).unwrap_or_default());
    if !w.wait {
        return Ok(());
    }
    let done = follow(client, name, &op.id, &w).await?;
    if done.phase != OperationPhase::Succeeded {
        return Err(CliError::Failed(format!("operation {} {}: {}", done.id, done.phase.as_str().to_lowercase(), done.message.unwrap_or_default())));
    }
    // A stopped service has no members to wait for; a started one waits until ACTIVE.
    if kind == Some(OperationKind::Start) {
        wait(client, name, Until::Phase(Phase::Active), w).await?;
    }
    Ok(())
}

/// Asks to cancel; with `--wait`, follows the operation until it has ended.
pub async fn cancel(client: &Backend, name: &str, id: Option<&str>, w: WaitArgs) -> Result<(), CliError> {
    let op = client.cancel_operation(name, id).await?;
    println!("{name}: cancel of operation {} ({}) requested", op.id, op.kind);
    if w.wait {
        let done = follow(client, name, &op.id, &w).await?;
        println!("{}: {}", done.id, done.message.unwrap_or_else(|| done.phase.as_str().to_string()));
    }
    Ok(())
}

/// Polls the operation with a progress line until it ends or the timeout: every 100 ms at
/// first, doubling to once a second (a short operation is not held up by the polling).
async fn follow(client: &Backend, name: &str, id: &str, w: &WaitArgs) -> Result<Operation, CliError> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("static template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = Instant::now() + Duration::from_secs(w.timeout);
    let mut pause = Duration::from_millis(100);
    loop {
        let ops = client.operations(name).await?;
        let op = ops.items.into_iter().find(|o| o.id == id).ok_or_else(|| CliError::NotFound(format!("operation {id} of {name} is gone")))?;
        let line = progress(&op);
        if op.phase.is_terminal() {
            bar.finish_with_message(line);
            return Ok(op);
        }
        bar.set_message(line);
        if Instant::now() > deadline {
            bar.abandon();
            return Err(CliError::Failed(format!(
                "operation {id} of {name} not finished after {} s (it goes on; see firecamp service operations {name})",
                w.timeout
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

fn progress(op: &Operation) -> String {
    let step = op.current_step().map(|i| format!(", now {}", op.steps[i].describe())).unwrap_or_default();
    format!("{} {}: {} {}/{} steps{step}", op.id, op.kind, op.phase.as_str(), op.done_steps(), op.steps.len())
}

pub async fn list(client: &Backend, name: &str, format: Format) -> Result<(), CliError> {
    let ops = client.operations(name).await?;
    let text = match format {
        Format::Json => output::json(&ops)? + "\n",
        Format::Yaml => output::yaml(&ops)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = ops
                .items
                .iter()
                .map(|o| {
                    vec![
                        o.id.clone(),
                        o.kind.to_string(),
                        o.policy.to_string(),
                        o.phase.as_str().into(),
                        format!("{}/{}", o.done_steps(), o.steps.len()),
                        o.steps.iter().map(|s| s.describe()).collect::<Vec<_>>().join(", "),
                        o.created.clone(),
                        o.message.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["ID", "KIND", "POLICY", "PHASE", "STEPS", "ORDER", "CREATED", "MESSAGE"], &rows)
        }
    };
    print!("{text}");
    Ok(())
}
