//! The local manage service as a whole: store, DNS server, runtime and REST API. `start` runs it
//! inside the caller (tests); `serve` runs it in the foreground until SIGTERM or SIGINT (what
//! `firecamp local up` starts in the background), with a pid file and an address file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::store::Store;

/// A running local manage service.
pub struct Daemon {
    /// Where the REST API listens.
    pub addr: SocketAddr,
    /// Where the DNS server answers (UDP).
    pub dns_addr: SocketAddr,
    runtime: Arc<Runtime>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Daemon {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether member names are in the hosts file (else members use IP addresses).
    pub fn hosts_managed(&self) -> bool {
        self.runtime.hosts_managed()
    }

    /// Stops every member and the API; the store keeps what should run at the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let _ = std::fs::remove_file(self.runtime.cfg.addr_path());
        self.runtime.shutdown().await;
    }
}

/// Creates the state directory passable (0711) for member users (postgres, redis, zookeeper).
/// A directory that already exists is not the runtime's to chmod: when members must enter it
/// and cannot, that is an error naming it.
fn prepare_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(LocalError::io(format!("creating {}", parent.display())))?;
    }
    match std::fs::DirBuilder::new().mode(0o711).create(dir) {
        // Set again: the umask may have taken bits away.
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).map_err(LocalError::io(format!("chmod {}", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(dir).map_err(LocalError::io(format!("reading {}", dir.display())))?.permissions().mode();
            if nix::unistd::Uid::effective().is_root() && mode & 0o001 == 0 {
                return Err(LocalError::BadRequest(format!(
                    "the state directory {} (mode {:o}) was not created by FireCamp, which leaves its mode alone, and member servers \
                     (running as postgres, redis, zookeeper) cannot enter it: `chmod o+x` it, or use another --dir",
                    dir.display(),
                    mode & 0o7777
                )));
            }
            Ok(())
        }
        Err(e) => Err(LocalError::io(format!("creating {}", dir.display()))(e)),
    }
}

/// Starts the manage service in this process.
pub async fn start(cfg: Config) -> Result<Daemon> {
    crate::guard::check_listen(cfg.listen)?;
    crate::guard::check_dns_listen(cfg.dns_listen)?;
    prepare_dir(&cfg.dir)?;
    let token = Arc::new(crate::guard::load_or_create(&cfg.token_path(), &cfg.token_group)?);
    let store = Store::open(&cfg.store_path())?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(LocalError::io(format!("listening on {} (is another firecamp local runtime running? try --listen)", cfg.listen)))?;
    let addr = listener.local_addr().map_err(LocalError::io("reading the API's address"))?;
    let domain = firecamp_core::ClusterConfig::new(cfg.cluster.clone()).domain();
    let (zone, dns_addr) = crate::dns::serve(cfg.dns_listen, &domain).await?;
    let addr_path = cfg.addr_path();
    let repo = crate::backup::Repo::open(&cfg).await?;
    let runtime = Arc::new(Runtime::new(cfg, store, Some(zone), repo));
    runtime.boot().await?;
    let app = crate::http::router(runtime.clone(), token);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "the API server stopped");
        }
    });
    // Written last: the CLI sends the token only to the address this file names.
    std::fs::write(&addr_path, format!("http://{addr}\n")).map_err(LocalError::io(format!("writing {}", addr_path.display())))?;
    tracing::info!(%addr, %dns_addr, "firecamp local runtime ready");
    Ok(Daemon { addr, dns_addr, runtime, stop, task })
}

/// Runs the manage service until SIGTERM or SIGINT, then stops every member.
pub async fn serve(cfg: Config) -> Result<()> {
    let pid_path = cfg.pid_path();
    let addr_path = cfg.addr_path();
    let daemon = start(cfg).await?;
    std::fs::write(&pid_path, format!("{}\n", std::process::id())).map_err(LocalError::io(format!("writing {}", pid_path.display())))?;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(LocalError::io("installing a SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(LocalError::io("installing a SIGINT handler"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping: members first");
    daemon.stop().await;
    let _ = std::fs::remove_file(&addr_path);
    let _ = std::fs::remove_file(&pid_path);
    tracing::info!("stopped");
    Ok(())
}

/// The pid of the daemon running from `cfg.dir`, if one is.
pub fn running_pid(cfg: &Config) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(cfg.pid_path()).ok()?.trim().parse().ok()?;
    kill(Pid::from_raw(pid), None).is_ok().then_some(pid)
}

/// Asks the daemon to stop (it stops its members first).
pub fn request_stop(pid: i32) -> Result<()> {
    kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(|e| LocalError::Internal(format!("signalling the daemon (pid {pid}): {e}")))
}

pub fn is_alive(pid: i32) -> bool {
    // A zombie is gone for our purposes.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// Log lines of the daemon to stderr (its log file), `RUST_LOG` to choose how many.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).try_init();
}
