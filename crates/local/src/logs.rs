//! Each member's log: the server's stdout and stderr plus the supervisor's notes, one line each,
//! prefixed with an RFC 3339 time, in `<member dir>/member.log`. Followers get new lines through
//! a broadcast channel, so `logs --follow` needs no polling.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::broadcast;

pub struct LogSink {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    tx: broadcast::Sender<String>,
}

impl LogSink {
    pub fn new(path: PathBuf) -> Self {
        let (tx, _) = broadcast::channel(1024);
        LogSink { path, file: Mutex::new(None), tx }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (a trailing newline is added); never fails the caller: a log that cannot
    /// be written is reported through tracing.
    pub fn line(&self, text: &str) {
        let stamped = format!("{} {}\n", humantime::format_rfc3339_millis(SystemTime::now()), text.trim_end_matches(['\n', '\r']));
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new().create(true).append(true).mode(0o640).open(&self.path) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot open member log");
                    return;
                }
            }
        }
        if let Some(Err(e)) = guard.as_mut().map(|f| f.write_all(stamped.as_bytes())) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write member log");
        }
        // Sent under the lock, so a follower that read the file under it misses no line.
        let _ = self.tx.send(stamped);
    }

    /// The lines written so far, and a receiver of every later one.
    pub fn snapshot_and_follow(&self) -> (String, broadcast::Receiver<String>) {
        let _guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        (text, self.tx.subscribe())
    }

    pub fn snapshot(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// Forgets the open file (its directory is being removed).
    pub fn close(&self) {
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

pub use firecamp_api::since::parse_since;

/// Whether a stamped line was written at or after `since` (unstamped lines are kept).
pub fn line_since(line: &str, since: SystemTime) -> bool {
    match line.split_once(' ').and_then(|(t, _)| humantime::parse_rfc3339_weak(t).ok()) {
        Some(t) => t >= since,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_stamped_lines() {
        let since = humantime::parse_rfc3339("2026-01-01T11:00:00Z").unwrap();
        assert!(line_since("2026-01-01T11:00:00.500Z started", since));
        assert!(!line_since("2026-01-01T10:59:59.000Z older", since));
    }

    #[test]
    fn followers_get_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LogSink::new(dir.path().join("m.log"));
        sink.line("one");
        let (text, mut rx) = sink.snapshot_and_follow();
        assert!(text.ends_with(" one\n"));
        sink.line("two");
        assert!(rx.try_recv().unwrap().ends_with(" two\n"));
    }
}
