//! `firecamp service backups|restore|delete-backup` (`service backup` is an operation, in
//! operation_cmds.rs). Backups live with the runtime that took them: REST only (docs/backup.md).

use clap::Args;
use firecamp_api::{BackupList, Phase, RestoreRequest, Service, paths};

use crate::args::{Format, WaitArgs};
use crate::backend::Backend;
use crate::client::Client;
use crate::error::CliError;
use crate::output;
use crate::wait::{Until, wait};

#[derive(Args)]
pub struct RestoreArgs {
    /// The service the backup was taken of (it may have been deleted since).
    pub name: String,
    /// The backup (`firecamp service backups <name>` lists them), or `latest`.
    #[arg(long = "from", value_name = "BACKUP")]
    pub from: String,
    /// The new service's name: a restore never overwrites a service.
    #[arg(long = "as", value_name = "SERVICE")]
    pub as_name: String,
    /// Stop recovery at this moment (RFC 3339 in UTC, e.g. 2026-12-02T20:15:00Z): the new
    /// service has exactly the transactions committed before it. Absent: all that was archived.
    #[arg(long, value_name = "TIME")]
    pub to_time: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

pub async fn list(client: &Client, name: &str, format: Format) -> Result<(), CliError> {
    let list: BackupList = client.get(&paths::backups(name)).await?;
    let text = match format {
        Format::Json => output::json(&list)? + "\n",
        Format::Yaml => output::yaml(&list)?,
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|b| {
                    vec![
                        b.id.clone(),
                        b.member.clone(),
                        b.finished.clone(),
                        size(b.size_bytes),
                        // A snapshot (Redis) has no WAL: it restores to the moment it was taken.
                        if b.wal_start.is_empty() { "-".into() } else { format!("{} – {} (timeline {})", b.wal_start, b.wal_end, b.timeline) },
                        if b.wal_start.is_empty() {
                            b.finished.clone()
                        } else {
                            format!("{} – {}", b.finished, b.recoverable_until.as_deref().unwrap_or("?"))
                        },
                    ]
                })
                .collect();
            output::table(&["ID", "FROM", "FINISHED", "SIZE", "WAL", "RESTORES TO"], &rows)
        }
    };
    print!("{text}");
    Ok(())
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

pub async fn delete(client: &Client, name: &str, id: &str) -> Result<(), CliError> {
    let b: firecamp_api::Backup = client.delete(&paths::backup(name, id)).await?;
    println!("{name}: backup {} deleted", b.id);
    Ok(())
}

pub async fn restore(backend: &Backend, a: &RestoreArgs) -> Result<(), CliError> {
    let client = backend.rest()?;
    let req = RestoreRequest { backup: a.from.clone(), name: a.as_name.clone(), to_time: a.to_time.clone() };
    let svc: Service = client.post(&paths::restore(&a.name), &req).await?;
    let to = a.to_time.as_deref().map(|t| format!(" up to {t}")).unwrap_or_default();
    println!("created {} ({} members), restoring {} of {}{to}", svc.name, svc.spec.replicas, a.from, a.name);
    if a.wait.wait {
        wait(backend, &svc.name, Until::Phase(Phase::Active), a.wait).await?;
    }
    Ok(())
}
