//! Runs one member's server as a child process and keeps it running: a crashed server is started
//! again (same start script, so same identity, address and data) after a growing pause; a stop
//! request shuts it down with the engine's own clean-stop signal.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::logs::LogSink;

/// What starts one member, and how to stop it.
#[derive(Debug, Clone)]
pub struct MemberProcess {
    pub member: String,
    /// The member's directory (the child's working directory).
    pub dir: PathBuf,
    /// The catalog's start script.
    pub script: PathBuf,
    /// OS user and group the server runs as (PostgreSQL refuses root).
    pub user: Option<(u32, u32)>,
    /// The engine's clean, quick stop (PostgreSQL: SIGINT, "fast" shutdown).
    pub stop_signal: Signal,
    /// How long a clean stop may take before the process group is killed.
    pub stop_grace: Duration,
    /// The file in `dir` that holds the running process's pid ([`SERVER_PID`], [`METRICS_PID`]).
    pub pid_file: &'static str,
}

/// The pid file of a member's server.
pub const SERVER_PID: &str = "server.pid";
/// The pid file of a member's metrics exporter.
pub const METRICS_PID: &str = "metrics.pid";

/// What the supervisor knows of its member, for status.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    pub pid: Option<u32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Set once the first start was spawned.
    pub started: bool,
    /// Where the member's metrics are served, when it has them.
    pub metrics: Option<String>,
}

/// What the supervisor is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Run,
    /// The engine's clean stop, then a kill after the grace.
    Stop,
    /// Kill the process tree at once: a member fenced because it is lost (hung or dead) gets
    /// no grace, since nothing it could still do is wanted.
    Kill,
}

pub struct Supervised {
    stop: watch::Sender<Ask>,
    pub state: Arc<Mutex<RunState>>,
    task: JoinHandle<()>,
    /// A process that serves the member and goes with it (its metrics exporter).
    sidecar: Option<Box<Supervised>>,
}

impl Supervised {
    pub fn spawn(p: MemberProcess, log: Arc<LogSink>) -> Self {
        let (stop, stop_rx) = watch::channel(Ask::Run);
        let state = Arc::new(Mutex::new(RunState::default()));
        let task = tokio::spawn(supervise(p, log, state.clone(), stop_rx));
        Supervised { stop, state, task, sidecar: None }
    }

    /// This member with `sidecar`, which stops (first) and is killed with it.
    pub fn with_sidecar(mut self, sidecar: Supervised) -> Self {
        self.sidecar = Some(Box::new(sidecar));
        self
    }

    pub fn run_state(&self) -> RunState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the member and waits until its process is gone.
    pub async fn stop(self) {
        if let Some(s) = self.sidecar {
            Box::pin(s.stop()).await;
        }
        let _ = self.stop.send(Ask::Stop);
        let _ = self.task.await;
    }

    /// Kills the member's process tree at once and waits until it is gone.
    pub async fn kill(self) {
        let _ = self.stop.send(Ask::Kill);
        if let Some(s) = self.sidecar {
            Box::pin(s.kill()).await;
        }
        let _ = self.task.await;
    }
}

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn command(p: &MemberProcess) -> Command {
    let mut c = Command::new("/bin/bash");
    c.arg(&p.script)
        .current_dir(&p.dir)
        // A clean environment: nothing of the daemon's (and never a secret) reaches the server.
        .env_clear()
        .env("PATH", PATH)
        .env("LANG", "C.UTF-8")
        .env("HOME", &p.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C does not reach it, and a stop can reach
        // every process the script started.
        .process_group(0)
        .kill_on_drop(false);
    if let Some((uid, gid)) = p.user {
        c.uid(uid).gid(gid);
    }
    c
}

fn pump(out: impl AsyncRead + Unpin + Send + 'static, log: Arc<LogSink>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut r = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => log.line(&String::from_utf8_lossy(&buf)),
            }
        }
    })
}

fn describe(s: &std::io::Result<ExitStatus>) -> String {
    match s {
        Ok(s) => s.to_string(),
        Err(e) => format!("lost track of the process: {e}"),
    }
}

async fn supervise(p: MemberProcess, log: Arc<LogSink>, state: Arc<Mutex<RunState>>, mut stop: watch::Receiver<Ask>) {
    let mut backoff = Duration::from_secs(1);
    let set = |f: &dyn Fn(&mut RunState)| f(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
    loop {
        if *stop.borrow() != Ask::Run {
            return;
        }
        let mut child: Child = match command(&p).spawn() {
            Ok(c) => c,
            Err(e) => {
                log.line(&format!("firecamp: cannot start {}: {e}; trying again in {} s", p.member, backoff.as_secs()));
                if wait_or_stop(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let pid = child.id();
        set(&|s| {
            s.pid = pid;
            s.started = true;
        });
        let _ = std::fs::write(p.dir.join(p.pid_file), pid.map(|p| p.to_string()).unwrap_or_default());
        let pumps = [child.stdout.take().map(|o| pump(o, log.clone())), child.stderr.take().map(|o| pump(o, log.clone()))];
        let started = Instant::now();
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = stopped(&mut stop) => None,
        };
        match exited {
            Some(status) => {
                for h in pumps.into_iter().flatten() {
                    let _ = h.await;
                }
                let what = describe(&status);
                set(&|s| {
                    s.pid = None;
                    s.restarts += 1;
                    s.last_exit = Some(what.clone());
                });
                if started.elapsed() > MAX_BACKOFF {
                    backoff = Duration::from_secs(1);
                }
                log.line(&format!("firecamp: {} exited ({what}); starting it again in {} s", p.member, backoff.as_secs()));
                tracing::warn!(member = %p.member, exit = %what, "member exited; restarting");
                if wait_or_stop(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            None => {
                let at_once = *stop.borrow() == Ask::Kill;
                shut_down(&p, &mut child, &log, at_once).await;
                for h in pumps.into_iter().flatten() {
                    let _ = h.await;
                }
                set(&|s| s.pid = None);
                let _ = std::fs::remove_file(p.dir.join(p.pid_file));
                return;
            }
        }
    }
}

/// Sleeps `d` unless a stop comes first; true when stopping.
async fn wait_or_stop(stop: &mut watch::Receiver<Ask>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stopped(stop) => {}
    }
    *stop.borrow() != Ask::Run
}

/// Resolves once a stop is requested (or the runtime dropped its handle).
async fn stopped(stop: &mut watch::Receiver<Ask>) {
    let _ = stop.wait_for(|s| *s != Ask::Run).await;
}

async fn shut_down(p: &MemberProcess, child: &mut Child, log: &LogSink, at_once: bool) {
    let Some(pid) = child.id() else { return };
    let pid = Pid::from_raw(pid as i32);
    if at_once {
        log.line(&format!("firecamp: killing {} (fenced)", p.member));
        kill_tree(pid);
        let _ = child.wait().await;
        return;
    }
    log.line(&format!("firecamp: stopping {} ({})", p.member, p.stop_signal));
    let _ = kill(pid, p.stop_signal);
    if tokio::time::timeout(p.stop_grace, child.wait()).await.is_err() {
        log.line(&format!("firecamp: {} did not stop within {} s; killing it", p.member, p.stop_grace.as_secs()));
        kill_tree(pid);
        let _ = child.wait().await;
    }
    // Whatever the script left behind in its group goes too.
    let _ = killpg(pid, Signal::SIGKILL);
}

/// SIGKILL to `root`, its process group and every process under it: PostgreSQL's children each
/// lead a session of their own (`setsid`), so the group alone would leave a hung backend
/// holding the data directory's shared memory. The tree is read before anything dies, while
/// every child still names its parent.
fn kill_tree(root: Pid) {
    let tree = process_tree(root.as_raw());
    let _ = killpg(root, Signal::SIGKILL);
    for p in tree {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
}

/// `root` and its descendants, from /proc (parents before children).
pub fn process_tree(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Kills a server (and its metrics exporter) left running by a daemon that died, found by their
/// pid files, if the process still works in the member's directory (so an unrelated process
/// that reused the pid is safe).
pub fn kill_stale(member_dir: &std::path::Path) {
    for file in [METRICS_PID, SERVER_PID] {
        kill_stale_pid(member_dir, file);
    }
}

fn kill_stale_pid(member_dir: &std::path::Path, file: &str) {
    let Ok(text) = std::fs::read_to_string(member_dir.join(file)) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    if cwd.starts_with(member_dir) {
        tracing::warn!(pid, dir = %member_dir.display(), "killing a process left by an earlier daemon");
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        // Wait (bounded) for the process to go, so its ports and locks are free.
        for _ in 0..100 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_file(member_dir.join(file));
}
