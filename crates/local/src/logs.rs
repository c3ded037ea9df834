//! Each member's log: the server's stdout and stderr plus the supervisor's notes, one line each,
//! prefixed with an RFC 3339 time, in `<member dir>/member.log`. Followers get new lines through
//! a broadcast channel, so `logs --follow` needs no polling.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::broadcast;

/// A member's log is rotated past this size; the two previous files are kept
/// (`member.log.1`, `member.log.2`), so a member's logs never take more than about 3× this.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// How many rotated files are kept.
const KEEP: usize = 2;

struct Open {
    file: std::fs::File,
    size: u64,
}

pub struct LogSink {
    path: PathBuf,
    max_bytes: u64,
    /// The member's OS user: its log files are its own, as its data is.
    owner: Mutex<Option<(u32, u32)>>,
    file: Mutex<Option<Open>>,
    tx: broadcast::Sender<String>,
}

impl LogSink {
    pub fn new(path: PathBuf, max_bytes: u64) -> Self {
        let (tx, _) = broadcast::channel(1024);
        LogSink { path, max_bytes: max_bytes.max(1), owner: Mutex::new(None), file: Mutex::new(None), tx }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// Who owns the files (applied to the current one now and to every new one).
    pub fn set_owner(&self, owner: Option<(u32, u32)>) {
        *self.owner.lock().unwrap_or_else(|p| p.into_inner()) = owner;
        if let Some((uid, gid)) = owner
            && self.path.exists()
        {
            let _ = std::os::unix::fs::chown(&self.path, Some(uid), Some(gid));
        }
    }

    fn open(&self) -> std::io::Result<Open> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o640).open(&self.path)?;
        if let Some((uid, gid)) = *self.owner.lock().unwrap_or_else(|p| p.into_inner()) {
            std::os::unix::fs::chown(&self.path, Some(uid), Some(gid))?;
        }
        let size = file.metadata()?.len();
        Ok(Open { file, size })
    }

    /// `member.log` → `.1` → `.2` (the oldest dropped); the next line opens a new file.
    fn rotate(&self) -> std::io::Result<()> {
        for n in (1..KEEP).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    /// Appends one line (a trailing newline is added); never fails the caller: a log that cannot
    /// be written is reported through tracing.
    pub fn line(&self, text: &str) {
        let stamped = format!("{} {}\n", humantime::format_rfc3339_millis(SystemTime::now()), text.trim_end_matches(['\n', '\r']));
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_some_and(|o| o.size > 0 && o.size + stamped.len() as u64 > self.max_bytes) {
            *guard = None;
            if let Err(e) = self.rotate() {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot rotate member log");
            }
        }
        if guard.is_none() {
            match self.open() {
                Ok(o) => *guard = Some(o),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot open member log");
                    return;
                }
            }
        }
        if let Some(o) = guard.as_mut() {
            match o.file.write_all(stamped.as_bytes()) {
                Ok(()) => o.size += stamped.len() as u64,
                Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "cannot write member log"),
            }
        }
        // Sent under the lock, so a follower that read the file under it misses no line.
        let _ = self.tx.send(stamped);
    }

    /// The lines written so far, and a receiver of every later one.
    pub fn snapshot_and_follow(&self) -> (String, broadcast::Receiver<String>) {
        let _guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        (self.read(), self.tx.subscribe())
    }

    pub fn snapshot(&self) -> String {
        let _guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        self.read()
    }

    /// The newest rotated file and the current one: what `logs` shows right after a rotation too.
    fn read(&self) -> String {
        std::fs::read_to_string(self.rotated(1)).unwrap_or_default() + &std::fs::read_to_string(&self.path).unwrap_or_default()
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
        let sink = LogSink::new(dir.path().join("m.log"), DEFAULT_MAX_BYTES);
        sink.line("one");
        let (text, mut rx) = sink.snapshot_and_follow();
        assert!(text.ends_with(" one\n"));
        sink.line("two");
        assert!(rx.try_recv().unwrap().ends_with(" two\n"));
    }

    #[test]
    fn rotates_past_the_cap_and_keeps_two_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("member.log");
        let sink = LogSink::new(path.clone(), 200);
        for i in 0..40 {
            sink.line(&format!("line {i:02} ........................"));
        }
        for p in [&path, &sink.rotated(1), &sink.rotated(2)] {
            let len = std::fs::metadata(p).unwrap().len();
            assert!(len > 0 && len <= 200, "{}: {len} bytes", p.display());
        }
        assert!(!sink.rotated(3).exists(), "only two old files are kept");
        let text = sink.snapshot();
        assert!(text.ends_with("line 39 ........................\n"), "{text}");
        assert!(!text.contains("line 00 "), "the oldest lines are gone");
    }
}
