//! What a backup is, whatever holds it: its record (`backup.json`), its id, its files' sums and
//! the WAL names it needs. Pure functions and file checks; `repo` says where backups are.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use firecamp_api::Backup;
use firecamp_core::{EngineKind, ServiceSpec};
use serde::{Deserialize, Serialize};

pub(crate) const RECORD: &str = "backup.json";
pub(crate) const FORMAT: u32 = 1;
/// What `--from` may say instead of an id: the newest backup.
pub(crate) const LATEST: &str = "latest";

/// What `backup.json` says of a backup: enough to list it, check it and restore it without the
/// service it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BackupRecord {
    pub(crate) format: u32,
    pub(crate) id: String,
    pub(crate) service: String,
    pub(crate) uid: String,
    pub(crate) engine: EngineKind,
    pub(crate) server_version: String,
    pub(crate) member: String,
    pub(crate) started: String,
    pub(crate) finished: String,
    #[serde(default)]
    pub(crate) timeline: u32,
    #[serde(default)]
    pub(crate) start_lsn: String,
    #[serde(default)]
    pub(crate) end_lsn: String,
    /// The first WAL file the backup needs (older archived files are only for older backups).
    #[serde(default)]
    pub(crate) start_wal: String,
    pub(crate) files: BTreeMap<String, FileSum>,
    /// The service's spec when it was taken: a restore makes a service of the same shape.
    pub(crate) spec: ServiceSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileSum {
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// `<service>-<YYYYMMDDTHHMMSSmmmZ>` from the operation's id (`op-<unix millis>`, unique in the
/// service: two backups within a second keep apart).
pub(crate) fn backup_id(service: &str, op_id: &str) -> String {
    let millis: u64 = op_id.strip_prefix("op-").and_then(|m| m.parse().ok()).unwrap_or_default();
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
    let stamp: String = humantime::format_rfc3339_millis(t).to_string().chars().filter(|c| !matches!(c, '-' | ':' | '.')).collect();
    format!("{service}-{stamp}")
}

/// A backup id as FireCamp makes them, checked before it reaches a path.
pub(crate) fn id_problem(id: &str) -> Option<String> {
    let ok = id.len() <= 80
        && id.rsplit_once('-').is_some_and(|(svc, stamp)| {
            !svc.is_empty()
                && svc.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && stamp.len() == 19
                && stamp.bytes().enumerate().all(|(i, b)| match i {
                    8 => b == b'T',
                    18 => b == b'Z',
                    _ => b.is_ascii_digit(),
                })
        });
    (!ok).then(|| format!("{id:?} is not a backup id (`<service>-<YYYYMMDDTHHMMSSmmmZ>`, as `firecamp service backups` lists them)"))
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// `<timeline><log><seg>` of the WAL file holding `lsn` (16 MiB segments, PostgreSQL's default).
pub(crate) fn wal_file(timeline: u32, lsn: &str) -> Option<String> {
    let (hi, lo) = lsn.split_once('/')?;
    let (hi, lo) = (u64::from_str_radix(hi, 16).ok()?, u64::from_str_radix(lo, 16).ok()?);
    Some(format!("{timeline:08X}{hi:08X}{:08X}", lo >> 24))
}

/// Timeline and LSN range from `backup_manifest`.
pub(crate) fn wal_range(manifest: &serde_json::Value) -> Option<(u32, String, String)> {
    let ranges = manifest.get("WAL-Ranges")?.as_array()?;
    let first = ranges.first()?;
    let timeline = u32::try_from(first.get("Timeline")?.as_u64()?).ok()?;
    let start = first.get("Start-LSN")?.as_str()?.to_string();
    let end = ranges.last()?.get("End-LSN")?.as_str()?.to_string();
    Some((timeline, start, end))
}

/// A base backup's WAL as its `backup_manifest` in `dir` gives it: timeline, start and end LSN,
/// and the first WAL file it needs.
pub(crate) fn manifest_wal(dir: &Path) -> Result<(u32, String, String, String), String> {
    let path = dir.join("backup_manifest");
    let manifest: serde_json::Value =
        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(|| format!("{} is missing or unreadable", path.display()))?;
    let (timeline, start_lsn, end_lsn) = wal_range(&manifest).ok_or("backup_manifest has no WAL range")?;
    let start_wal = wal_file(timeline, &start_lsn).ok_or_else(|| format!("the start LSN {start_lsn} is not one"))?;
    Ok((timeline, start_lsn, end_lsn, start_wal))
}

pub(crate) fn sum(path: &Path) -> std::io::Result<FileSum> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok(FileSum { size, sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect() })
}

pub(crate) fn sums(dir: &Path) -> std::io::Result<BTreeMap<String, FileSum>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_file() && name != RECORD {
            out.insert(name, sum(&e.path())?);
        }
    }
    Ok(out)
}

/// Writes `path` whole or not at all, on disk before it is renamed into place.
pub(crate) fn write_durably(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// How a backup is shown, with the newest moment its incarnation's archive restores to.
pub(crate) fn view(r: &BackupRecord, recoverable_until: Option<SystemTime>) -> Backup {
    Backup {
        id: r.id.clone(),
        service: r.service.clone(),
        member: r.member.clone(),
        started: r.started.clone(),
        finished: r.finished.clone(),
        size_bytes: r.files.values().map(|f| f.size).sum(),
        timeline: r.timeline,
        wal_start: r.start_lsn.clone(),
        wal_end: r.end_lsn.clone(),
        recoverable_until: recoverable_until.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
    }
}

/// Whether an archived file is WAL that only backups older than the one starting at `oldest`
/// need: a segment (`<timeline><log><seg>`), its `.partial` or its `.backup` label, before
/// `oldest` whatever the timeline, as `pg_archivecleanup` decides. History files are kept.
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) fn wal_older_than(name: &str, oldest: &str) -> bool {
    let hex = |s: &str| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase());
    let Some(seg) = name.get(..24).filter(|s| hex(s)) else { return false };
    let rest = &name[24..];
    let label = rest.strip_prefix('.').and_then(|r| r.strip_suffix(".backup")).is_some_and(|r| r.len() == 8 && r.bytes().all(|b| b.is_ascii_hexdigit()));
    (rest.is_empty() || rest == ".partial" || label) && oldest.get(8..24).is_some_and(|o| seg[8..] < *o)
}

/// A file name of a backup record, which may come from a bucket anyone with its keys could
/// write: plain names only, so none reaches outside the backup's directory.
pub(crate) fn file_name_problem(name: &str) -> Option<String> {
    let ok =
        !name.is_empty() && name.len() <= 64 && !name.starts_with('.') && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    (!ok).then(|| format!("its record names a file {name:?}, which is not a backup's file name"))
}

/// Checks a backup's files against its record: a missing, truncated or altered file is named.
pub(crate) fn check_files(dir: &Path, r: &BackupRecord) -> Result<(), String> {
    for (name, want) in &r.files {
        if let Some(p) = file_name_problem(name) {
            return Err(p);
        }
        let got = sum(&dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if got.size != want.size {
            return Err(format!("{name} has {} bytes, its record says {}", got.size, want.size));
        }
        if got.sha256 != want.sha256 {
            return Err(format!("{name} does not have the checksum its record gives"));
        }
    }
    let shards = r.spec.redis.as_ref().filter(|o| o.mode == firecamp_core::spec::RedisMode::Cluster).map(|o| o.shards.unwrap_or(0));
    let needed: Vec<String> = match (r.engine, shards) {
        (EngineKind::Postgresql, _) => vec!["base.tar".into(), "pg_wal.tar".into()],
        (EngineKind::Redis, Some(n)) => (0..n).map(|k| format!("shard-{k}.rdb")).collect(),
        (EngineKind::Redis, None) => vec![super::dump::RDB.into()],
        (EngineKind::Zookeeper, _) => Vec::new(),
        (EngineKind::Kafka, _) => return Err("Kafka services have no backups yet".into()),
        (EngineKind::Mariadb, _) => return Err("MariaDB services have no backups yet".into()),
        (EngineKind::Cassandra, _) => return Err("Cassandra services have no backups yet".into()),
    };
    if r.engine == EngineKind::Zookeeper && !r.files.keys().any(|f| f.starts_with("snapshot.")) {
        return Err("its record lists no snapshot".into());
    }
    for f in &needed {
        if !r.files.contains_key(f) {
            return Err(format!("its record lists no {f}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_operation_and_are_checked_before_they_reach_a_path() {
        let id = backup_id("pg", "op-1764706500042");
        assert_eq!(id, "pg-20251202T201500042Z");
        assert_eq!(id_problem(&id), None);
        assert_ne!(backup_id("pg", "op-1764706500043"), id, "two backups within a second");
        for bad in [
            "../pg-20251202T201500042Z",
            "pg-20251202T201500042Z/..",
            "pg",
            "pg-2025120XT201500042Z",
            "PG-20251202T201500042Z",
            "pg-20251202T201500042Z\n",
            "pg-20251202T201500Z",
            "",
        ] {
            assert!(id_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn wal_file_names_follow_postgresql() {
        assert_eq!(wal_file(1, "0/2000028").as_deref(), Some("000000010000000000000002"));
        assert_eq!(wal_file(3, "1A/FF000000").as_deref(), Some("000000030000001A000000FF"));
        assert_eq!(wal_file(1, "nonsense"), None);
    }

    #[test]
    fn the_wal_range_is_read_from_the_manifest() {
        let m = serde_json::json!({"WAL-Ranges": [{"Timeline": 2, "Start-LSN": "0/5000028", "End-LSN": "0/5000138"}]});
        assert_eq!(wal_range(&m), Some((2, "0/5000028".into(), "0/5000138".into())));
        assert_eq!(wal_range(&serde_json::json!({})), None);
    }

    #[test]
    fn the_archive_is_cleaned_as_pg_archivecleanup_does() {
        let oldest = "000000020000000000000005";
        for old in ["000000010000000000000004", "000000020000000000000004", "000000010000000000000004.partial", "000000010000000000000003.00000028.backup"] {
            assert!(wal_older_than(old, oldest), "{old}");
        }
        for kept in [
            "000000010000000000000005",
            "000000020000000000000006",
            "00000002.history",
            ".000000010000000000000001.123",
            "00000001000000000000000a",
            "000000010000000000000001.tmp",
        ] {
            assert!(!wal_older_than(kept, oldest), "{kept}");
        }
    }
}
