//! `--wait`: follows a service to the phase an operation ends in, with a progress line.

use std::time::{Duration, Instant};

use firecamp_api::{Phase, Service};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::WaitArgs;
use crate::backend::Backend;
use crate::error::CliError;

/// What ends the wait.
#[derive(Clone, Copy)]
pub enum Until {
    Phase(Phase),
    Gone,
}

/// Polls the service once a second (the REST API has no watch; one GET a second is cheap) until `until`, FAILED or the timeout.
pub async fn wait(client: &Backend, name: &str, until: Until, w: WaitArgs) -> Result<(), CliError> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("static template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = Instant::now() + Duration::from_secs(w.timeout);
    let mut last;
    loop {
        let svc: Option<Service> = client.get_opt(name).await?;
        match (&svc, until) {
            (None, Until::Gone) => {
                bar.finish_with_message(format!("{name}: deleted"));
                return Ok(());
            }
            (None, Until::Phase(_)) => {
                bar.abandon();
                return Err(CliError::NotFound(format!("service {name:?} does not exist")));
            }
            (Some(s), _) => {
                last = progress(s);
                bar.set_message(last.clone());
                if let Until::Phase(p) = until
                    && s.status.phase == p
                {
                    bar.finish_with_message(last);
                    return Ok(());
                }
                if s.status.phase == Phase::Failed {
                    bar.abandon();
                    return Err(CliError::Failed(format!("{name} failed: {}", s.status.message.clone().unwrap_or_default())));
                }
            }
        }
        if Instant::now() >= deadline {
            bar.abandon();
            return Err(CliError::Failed(format!("gave up after {} s: {last}", w.timeout)));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn progress(s: &Service) -> String {
    let ready = s.status.members.iter().filter(|m| m.ready).count();
    let mut msg = format!("{}: {} ({ready}/{} members ready)", s.name, s.status.phase.as_str(), s.spec.replicas);
    if let Some(m) = &s.status.message {
        msg.push_str(&format!(": {m}"));
    }
    msg
}
