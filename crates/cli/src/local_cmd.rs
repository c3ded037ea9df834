//! `firecamp local up|down|status`: the local runtime (docs/local.md) as a background daemon,
//! with a pid file and a log file in its state directory.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use firecamp_local::config::{Config, default_dir};
use firecamp_local::daemon;
use firecamp_local::ips::IpPool;

use crate::error::CliError;

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Start the local runtime in the background (it restarts the services it ran before).
    Up(LocalOpts),
    /// Stop the local runtime and every member it runs (data is kept).
    Down(DirOpt),
    /// Whether the local runtime runs, where, and its services.
    Status(DirOpt),
    /// Run the local runtime in the foreground (what `up` starts).
    #[command(hide = true)]
    Serve(LocalOpts),
    /// Print the least-privilege IAM policy of an S3 backup target (`up --backup-target`): its
    /// objects under exactly that prefix, for the instance role or the user whose keys it runs with.
    BackupPolicy {
        /// s3://bucket/prefix
        target: String,
        /// AWS partition of the ARNs.
        #[arg(long, default_value = "aws")]
        partition: String,
    },
}

#[derive(Args, Clone)]
pub struct DirOpt {
    /// State directory: store, members' data and logs (default: /var/lib/firecamp for root,
    /// else $XDG_DATA_HOME/firecamp or ~/.local/share/firecamp).
    #[arg(long, env = "FIRECAMP_LOCAL_DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct LocalOpts {
    #[command(flatten)]
    pub dir: DirOpt,
    /// Address of the REST API: loopback only (plain HTTP, bearer token in <dir>/api-token).
    #[arg(long, env = "FIRECAMP_LOCAL_LISTEN", default_value = firecamp_api::LOCAL_ADDR)]
    pub listen: SocketAddr,
    /// Address (UDP) of the embedded DNS server for the members' names: loopback only.
    #[arg(long, default_value = firecamp_local::config::DEFAULT_DNS_ADDR)]
    pub dns_listen: SocketAddr,
    /// Cluster name: members are <member>.<cluster>-firecamp.com.
    #[arg(long, default_value = firecamp_local::config::DEFAULT_CLUSTER)]
    pub cluster: String,
    /// Loopback addresses for members, as FIRST/COUNT.
    #[arg(long, default_value = "127.0.100.1/1000")]
    pub ip_pool: String,
    /// Do not write member names into /etc/hosts (members then use IP addresses).
    #[arg(long)]
    pub no_hosts: bool,
    /// Keep backups in S3 (s3://bucket/prefix) instead of the state directory. The region,
    /// endpoint and credentials come from the AWS SDK's chain (AWS_REGION, AWS_ENDPOINT_URL,
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the instance role); docs/backup.md.
    #[arg(long, env = "FIRECAMP_BACKUP_TARGET")]
    pub backup_target: Option<String>,
}

fn dir_of(d: &DirOpt) -> PathBuf {
    d.dir.clone().unwrap_or_else(default_dir)
}

fn config(o: &LocalOpts) -> Result<Config, CliError> {
    // Refused before anything starts: the API has no TLS, so it stays on loopback, and so does
    // the DNS server of the members' loopback names.
    firecamp_local::guard::check_listen(o.listen).map_err(|e| CliError::Usage(e.to_string()))?;
    firecamp_local::guard::check_dns_listen(o.dns_listen).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut c = Config::new(dir_of(&o.dir));
    c.listen = o.listen;
    c.dns_listen = o.dns_listen;
    c.cluster = o.cluster.clone();
    c.ips = IpPool::parse(&o.ip_pool).map_err(|e| CliError::Usage(format!("--ip-pool: {e}")))?;
    c.manage_hosts = !o.no_hosts;
    c.backup_target = o
        .backup_target
        .as_deref()
        .map(|url| {
            if !url.starts_with("s3://") {
                return Err(CliError::Usage(format!("--backup-target {url:?}: only s3://bucket/prefix (without it, backups stay in the state directory)")));
            }
            let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            Ok(firecamp_local::config::S3Target {
                url: url.to_string(),
                region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
                endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
                credentials: firecamp_local::config::StaticCredentials::from_env(),
            })
        })
        .transpose()?;
    Ok(c)
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

pub async fn run(cmd: LocalCommand) -> Result<(), CliError> {
    match cmd {
        LocalCommand::Serve(o) => {
            daemon::init_logging();
            daemon::serve(config(&o)?).await.map_err(failed)
        }
        LocalCommand::Up(o) => up(&o).await,
        LocalCommand::Down(d) => down(&Config::new(dir_of(&d))).await,
        LocalCommand::Status(d) => status(&Config::new(dir_of(&d))).await,
        LocalCommand::BackupPolicy { target, partition } => backup_policy(&target, &partition),
    }
}

fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(feature = "aws")]
fn backup_policy(target: &str, partition: &str) -> Result<(), CliError> {
    let url = firecamp_aws::s3::S3Url::parse(target).map_err(|e| CliError::Usage(format!("TARGET: {e}")))?;
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(CliError::Usage(format!("--partition {partition:?}: one of aws, aws-cn, aws-us-gov")));
    }
    let policy = firecamp_aws::iam::s3_backup_policy(partition, &url);
    println!("{}", serde_json::to_string_pretty(&policy).map_err(failed)?);
    Ok(())
}

#[cfg(not(feature = "aws"))]
fn backup_policy(_: &str, _: &str) -> Result<(), CliError> {
    Err(CliError::Usage("this firecamp was built without S3 support (cargo's `aws` feature)".into()))
}

async fn healthy(url: &str) -> bool {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(2)).build();
    match c {
        Ok(c) => c.get(format!("{url}{}", firecamp_api::paths::HEALTH)).send().await.is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
}

async fn up(o: &LocalOpts) -> Result<(), CliError> {
    let cfg = config(o)?;
    if let Some(pid) = daemon::running_pid(&cfg) {
        let url = std::fs::read_to_string(cfg.addr_path()).unwrap_or_default();
        println!("the local runtime already runs (pid {pid}) at {}", url.trim());
        return Ok(());
    }
    std::fs::create_dir_all(&cfg.dir).map_err(|e| failed(format!("creating {}: {e}", cfg.dir.display())))?;
    let _ = std::fs::remove_file(cfg.addr_path());
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(cfg.log_path()).map_err(|e| failed(format!("opening {}: {e}", cfg.log_path().display())))?;
    let exe = std::env::current_exe().map_err(failed)?;
    let mut args = vec![
        "local".to_string(),
        "serve".into(),
        format!("--dir={}", cfg.dir.display()),
        format!("--listen={}", o.listen),
        format!("--dns-listen={}", o.dns_listen),
        format!("--cluster={}", o.cluster),
        format!("--ip-pool={}", o.ip_pool),
    ];
    if o.no_hosts {
        args.push("--no-hosts".into());
    }
    if let Some(t) = &o.backup_target {
        args.push(format!("--backup-target={t}"));
    }
    let mut child = std::process::Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(failed)?)
        .stderr(log)
        // Its own process group, so the terminal's Ctrl-C does not stop it.
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("starting the daemon: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(failed(format!("the local runtime exited ({status}); its log {} ends with:\n{}", cfg.log_path().display(), tail(&cfg.log_path(), 10))));
        }
        if let Ok(url) = std::fs::read_to_string(cfg.addr_path())
            && healthy(url.trim()).await
        {
            println!("firecamp local runtime up at {} (pid {})", url.trim(), child.id());
            println!("  state: {}", cfg.dir.display());
            println!("  log:   {}", cfg.log_path().display());
            println!("  DNS:   {} (zone {}-firecamp.com)", o.dns_listen, o.cluster);
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(failed(format!("the local runtime did not answer within 120 s; see {}", cfg.log_path().display())));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn down(cfg: &Config) -> Result<(), CliError> {
    let Some(pid) = daemon::running_pid(cfg) else {
        println!("the local runtime is not running (state: {})", cfg.dir.display());
        return Ok(());
    };
    daemon::request_stop(pid).map_err(failed)?;
    println!("stopping the local runtime (pid {pid}) and its members; data is kept");
    let deadline = Instant::now() + Duration::from_secs(300);
    while daemon::is_alive(pid) {
        if Instant::now() > deadline {
            return Err(failed(format!("pid {pid} still runs after 300 s; see {}", cfg.log_path().display())));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("stopped");
    Ok(())
}

async fn status(cfg: &Config) -> Result<(), CliError> {
    let Some(pid) = daemon::running_pid(cfg) else {
        println!("not running (state: {})", cfg.dir.display());
        return Ok(());
    };
    let url = std::fs::read_to_string(cfg.addr_path()).unwrap_or_default();
    let url = url.trim();
    let health = if healthy(url).await { "answering" } else { "not answering" };
    println!("running (pid {pid}) at {url}: {health}");
    println!("  state: {}", cfg.dir.display());
    println!("  log:   {}", cfg.log_path().display());
    Ok(())
}
