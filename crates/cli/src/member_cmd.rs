//! What runs inside a member's pod: `firecamp member-init` (the init container: the member's
//! files from its ConfigMap, then its static IP on the host interface) and `firecamp member-ip`
//! (a native sidecar that holds the IP for the pod's life and takes it off when the pod stops,
//! after the engine has exited).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use clap::Args;
use firecamp_core::MemberName;
use firecamp_kube::STATIC_IP_FILE;
use firecamp_node::HostIp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::error::CliError;

#[derive(Args)]
pub struct MemberInitArgs {
    /// The member (its pod's name).
    #[arg(long)]
    pub member: String,
    #[arg(long)]
    pub namespace: String,
    /// Where the engine reads its files.
    #[arg(long)]
    pub config_dir: PathBuf,
    /// Put the member's static IP (when it has one) on the host interface.
    #[arg(long)]
    pub static_ip: bool,
    /// The interface for the static IP; the default route's when absent.
    #[arg(long)]
    pub interface: Option<String>,
    /// Copy this executable here for the engine to run (`wal.sh` → `firecamp wal`, members
    /// that archive WAL).
    #[arg(long)]
    pub install_tool: Option<PathBuf>,
}

#[derive(Args)]
pub struct MemberIpArgs {
    /// The member's files, written by member-init (`static-ip` among them).
    #[arg(long)]
    pub config_dir: PathBuf,
    /// The interface; the default route's when absent.
    #[arg(long)]
    pub interface: Option<String>,
    /// Act in this network namespace (tests).
    #[arg(long, hide = true)]
    pub netns: Option<String>,
}

fn failed(what: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |e| CliError::Failed(format!("{what}: {e}"))
}

/// Writes a file whole or not at all (a reader never sees half a config). Scripts are
/// executable: the engine runs some itself (PostgreSQL's archive_command runs `wal.sh`).
fn write_atomic(dir: &Path, name: &str, content: &str) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') || name.starts_with('.') {
        return Err(CliError::Failed(format!("ConfigMap key {name:?} is not a file name")));
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).map_err(failed("writing a config file"))?;
    let mode = if name.ends_with(".sh") { 0o755 } else { 0o644 };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(failed("setting a config file's mode"))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(failed("renaming a config file"))
}

/// Copies this very executable to `to` (whole, then renamed into place), mode 0755.
fn install_tool(to: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = to.parent().ok_or_else(|| CliError::Failed(format!("--install-tool {}: not a file path", to.display())))?;
    let tmp = dir.join(".firecamp.tmp");
    std::fs::copy("/proc/self/exe", &tmp).map_err(failed("copying the firecamp executable"))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(failed("making the firecamp executable runnable"))?;
    std::fs::rename(&tmp, to).map_err(failed("putting the firecamp executable in place"))
}

fn static_ip_of(dir: &Path) -> Result<Option<Ipv4Addr>, CliError> {
    match std::fs::read_to_string(dir.join(STATIC_IP_FILE)) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| CliError::Failed(format!("{STATIC_IP_FILE} holds {s:?}, not an IPv4 address"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed("reading the static IP")(e)),
    }
}

fn interface(host: &HostIp, given: &Option<String>) -> Result<String, CliError> {
    match given {
        Some(i) => Ok(i.clone()),
        None => host.default_interface().map_err(|e| CliError::Failed(e.to_string())),
    }
}

pub async fn member_init(a: MemberInitArgs) -> Result<(), CliError> {
    let client = kube::Client::try_default().await.map_err(|e| CliError::Failed(format!("connecting to Kubernetes: {e}")))?;
    let name = firecamp_kube::names::config_map(&MemberName::from_string(a.member.clone()));
    let cm = Api::<ConfigMap>::namespaced(client, &a.namespace).get(&name).await.map_err(|e| CliError::Failed(format!("reading ConfigMap {name}: {e}")))?;
    std::fs::create_dir_all(&a.config_dir).map_err(failed("creating the config directory"))?;
    for (file, content) in cm.data.unwrap_or_default() {
        write_atomic(&a.config_dir, &file, &content)?;
    }
    eprintln!("member-init: wrote the files of {} into {}", a.member, a.config_dir.display());
    if let Some(to) = &a.install_tool {
        install_tool(to)?;
        eprintln!("member-init: installed {}", to.display());
    }
    restore_base_backup(&a.config_dir).await?;
    if a.static_ip {
        let host = HostIp::new();
        match static_ip_of(&a.config_dir)? {
            Some(ip) => {
                let dev = interface(&host, &a.interface)?;
                host.add_member_ip(&dev, ip).map_err(|e| CliError::Failed(e.to_string()))?;
                eprintln!("member-init: {ip} is on {dev}");
            }
            None => eprintln!("member-init: no static IP allocated (the cluster has no --aws); the engine binds all interfaces"),
        }
    }
    Ok(())
}

/// Holds the IP until SIGTERM, then takes it off (idempotent both ways).
pub async fn member_ip(a: MemberIpArgs) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let host = a.netns.clone().map(HostIp::in_netns).unwrap_or_default();
    let mut term = signal(SignalKind::terminate()).map_err(failed("watching SIGTERM"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(failed("watching SIGINT"))?;
    let held = match static_ip_of(&a.config_dir)? {
        Some(ip) => {
            let dev = interface(&host, &a.interface)?;
            host.add_member_ip(&dev, ip).map_err(|e| CliError::Failed(e.to_string()))?;
            eprintln!("member-ip: holding {ip} on {dev}");
            Some((dev, ip))
        }
        None => {
            eprintln!("member-ip: no static IP to hold");
            None
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Some((dev, ip)) = held {
        host.remove(&dev, ip).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("member-ip: took {ip} off {dev}");
    }
    Ok(())
}

/// A restored service's first member (its files name the backup, `restore-from`): before the
/// first start the backup is downloaded onto the data volume and checked; once the member has
/// started from it (PostgreSQL: its data directory whole and recovered; Redis: the snapshot made
/// the base of its append-only file; ZooKeeper: the files in its database), the download goes
/// (docs/backup.md).
async fn restore_base_backup(config_dir: &Path) -> Result<(), CliError> {
    use firecamp_catalog::layout::{K8S_DATA_DIR, K8S_SECRET_DIR, RESTORE_FROM, RestoreFetch};
    let data = Path::new(K8S_DATA_DIR);
    let into = data.join("restore");
    let redis = config_dir.join("redis.conf").exists();
    // Begun: the member's data exist; done: they no longer need the download.
    let (begun, done) = if redis {
        let aof = data.join("redis").join("appendonlydir").exists();
        (aof, aof)
    } else if config_dir.join("zoo.cfg").exists() {
        let db = data.join(firecamp_catalog::zookeeper::DATABASE_DIR).exists();
        (db, db)
    } else {
        let pgdata = data.join("pgdata");
        let begun = pgdata.join("PG_VERSION").exists();
        (begun, begun && !pgdata.join("firecamp-restoring").exists())
    };
    if done {
        if into.exists() {
            std::fs::remove_dir_all(&into).map_err(failed("removing the restored backup"))?;
            eprintln!("member-init: the restore is done; its download removed");
        }
        return Ok(());
    }
    let Ok(text) = std::fs::read_to_string(config_dir.join(RESTORE_FROM)) else { return Ok(()) };
    if begun {
        return Ok(());
    }
    let from = RestoreFetch::parse(&text).ok_or_else(|| CliError::Failed(format!("{RESTORE_FROM}: not a backup's address")))?;
    let creds = Path::new(K8S_SECRET_DIR).join("aws-credentials");
    fetch(&from, creds.exists().then_some(creds.as_path()), &into).await?;
    if redis {
        // This member-init is root (it puts the static IP on the node); the engine is not, and
        // reads the snapshot's copy as the data volume's other files.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&into, std::fs::Permissions::from_mode(0o755)).map_err(failed("opening the download to the engine"))?;
    }
    eprintln!("member-init: backup {} downloaded and checked", from.url);
    Ok(())
}

#[cfg(feature = "aws")]
async fn fetch(from: &firecamp_catalog::layout::RestoreFetch, creds: Option<&Path>, into: &Path) -> Result<(), CliError> {
    firecamp_local::backup::job::fetch(from, creds, into).await.map_err(CliError::Failed)
}

#[cfg(not(feature = "aws"))]
async fn fetch(_: &firecamp_catalog::layout::RestoreFetch, _: Option<&Path>, _: &Path) -> Result<(), CliError> {
    Err(CliError::Failed("restoring from a bucket: this firecamp was built without AWS support (cargo feature `aws`)".into()))
}
