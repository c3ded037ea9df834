//! A restored Redis Cluster's data: each shard's snapshot is loaded into a private standalone
//! server (a Unix socket in a 0700 directory, run as the engine's user) and its keys copied with
//! DUMP / RESTORE … REPLACE to the new cluster's owner of each key's slot, whatever the new
//! cluster's slot layout. An init step of the restored service, once the cluster is formed and
//! before it counts as ACTIVE; each shard is recorded when loaded, and a load cut short is done
//! again (REPLACE makes that harmless). The same on Kubernetes ([`load_cluster`]): the restored
//! cluster's init Job downloads the backup and loads it with the Redis image's own server.

use std::collections::BTreeMap;
use std::path::Path;
#[cfg(feature = "s3")]
use std::path::PathBuf;
use std::time::{Duration, Instant};

use firecamp_probe::Target;
use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::error::{LocalError, Result};
use crate::runtime::Runtime;
use crate::store::ServiceRecord;

/// Keys per SCAN page, and so per pipelined DUMP and RESTORE batch.
const PAGE: usize = 500;

/// CRC16-XMODEM of `data`, as Redis Cluster hashes keys.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The hash slot of `key`: of its `{hash tag}` when it has a non-empty one.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter().position(|&b| b == b'}').filter(|&close| close > 0).map(|close| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % 16384
}

fn err(what: &str) -> impl Fn(redis::RedisError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// `CLUSTER SLOTS` → (first slot, last slot, owner's address).
fn slot_ranges(v: &Value) -> Vec<(u16, u16, String)> {
    let Value::Array(entries) = v else { return Vec::new() };
    entries
        .iter()
        .filter_map(|e| {
            let Value::Array(parts) = e else { return None };
            let int = |v: &Value| if let Value::Int(n) = v { u16::try_from(*n).ok() } else { None };
            let Some(Value::Array(owner)) = parts.get(2) else { return None };
            let ip = match owner.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            Some((int(parts.first()?)?, int(parts.get(1)?)?, ip))
        })
        .collect()
}

impl Runtime {
    /// Loads every shard snapshot of the restore not loaded yet.
    pub(crate) async fn load_redis_cluster(&self, rec: &ServiceRecord, bin_dir: &str) -> Result<()> {
        let Some(r) = &rec.restore else { return Ok(()) };
        let base = Path::new(&r.base_dir);
        for f in shard_files(base).map_err(LocalError::Unavailable)? {
            let step = format!("load {f}");
            if rec.init.steps.contains(&step) {
                continue;
            }
            self.update_init(&rec.name, |i| i.message = Some(format!("loading {f} of backup {}", r.backup)))?;
            let owner = self.member_user(rec.spec.engine)?;
            let scratch = self.cfg.dir.join("restores").join(&rec.name).join("load");
            let _ = std::fs::remove_dir_all(&scratch);
            crate::materialize::mkdir(&scratch, 0o700, owner)?;
            let first = firecamp_core::MemberName::new(&rec.name, 0).to_string();
            let via = crate::status::target(rec, &first).ok_or_else(|| LocalError::Internal(format!("{first} has no address")))?;
            let by_ip: BTreeMap<String, String> = rec.ips.iter().map(|(m, ip)| (ip.to_string(), m.clone())).collect();
            let reach = |ip: &str| by_ip.get(ip).and_then(|m| crate::status::target(rec, m));
            let exe = if bin_dir.is_empty() { "redis-server".to_string() } else { format!("{bin_dir}/redis-server") };
            let loaded = load_shard(&exe, base, &f, &scratch, owner, &via, reach).await;
            let _ = std::fs::remove_dir_all(&scratch);
            let keys = loaded.map_err(LocalError::Unavailable)?;
            tracing::info!(service = %rec.name, file = %f, keys, "shard snapshot loaded");
            self.update_init(&rec.name, |i| i.steps.push(step))?;
        }
        Ok(())
    }
}

/// The shard snapshots of a backup in `dir` (`shard-<k>.rdb`), in order.
fn shard_files(dir: &Path) -> std::result::Result<Vec<String>, String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shard-") && n.ends_with(".rdb"))
        .collect();
    files.sort();
    Ok(files)
}

/// Snapshot `file` of `dir` served by a private standalone `exe` (its Unix socket in `scratch`,
/// a 0700 directory; run as `owner` when given), its keys copied into the cluster; how many.
async fn load_shard(
    exe: &str,
    dir: &Path,
    file: &str,
    scratch: &Path,
    owner: Option<(u32, u32)>,
    via: &Target,
    reach: impl Fn(&str) -> Option<Target>,
) -> std::result::Result<u64, String> {
    let sock = scratch.join("redis.sock");
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["--port", "0", "--unixsocketperm", "700", "--appendonly", "no", "--save", "", "--dbfilename", file])
        .arg("--unixsocket")
        .arg(&sock)
        .arg("--dir")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    let mut server = cmd.spawn().map_err(|e| format!("running {exe}: {e}"))?;
    let copied = copy_keys(&sock, via, reach).await;
    let _ = server.kill().await;
    copied
}

/// Every key of the private server at `sock` into the cluster `via` is a member of, each to the
/// owner of its slot; `reach`: how to connect to the member the cluster names by an address.
async fn copy_keys(sock: &Path, via: &Target, reach: impl Fn(&str) -> Option<Target>) -> std::result::Result<u64, String> {
    let client = redis::Client::open(format!("redis+unix://{}", sock.display())).map_err(|e| format!("the snapshot's server: {e}"))?;
    // Until the socket exists and the snapshot is loaded (LOADING answers meanwhile).
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut from = loop {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
        {
            break c;
        }
        if Instant::now() > deadline {
            return Err("the snapshot's server did not load it within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let slots = slot_ranges(&firecamp_probe::redis::command(via, &["CLUSTER", "SLOTS"]).await.map_err(|e| e.to_string())?);
    let mut to: BTreeMap<String, MultiplexedConnection> = BTreeMap::new();
    for (_, _, addr) in &slots {
        if !to.contains_key(addr) {
            let t = reach(addr).ok_or_else(|| format!("the cluster names {addr}, none of its members"))?;
            to.insert(addr.clone(), firecamp_probe::redis::connect(&t).await.map_err(|e| e.to_string())?);
        }
    }
    let owner_of = |slot: u16| slots.iter().find(|(a, b, _)| (*a..=*b).contains(&slot)).map(|(_, _, addr)| addr);
    let (mut cursor, mut copied) = (0u64, 0u64);
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(PAGE).query_async(&mut from).await.map_err(err("scanning the snapshot"))?;
        if !keys.is_empty() {
            let mut read = redis::pipe();
            for k in &keys {
                read.cmd("PTTL").arg(k).cmd("DUMP").arg(k);
            }
            let vals: Vec<Value> = read.query_async(&mut from).await.map_err(err("reading the snapshot"))?;
            let mut writes: BTreeMap<String, redis::Pipeline> = BTreeMap::new();
            for (k, pair) in keys.iter().zip(vals.chunks(2)) {
                let (Value::Int(ttl), Value::BulkString(payload)) = (&pair[0], &pair[1]) else { continue };
                let addr = owner_of(key_slot(k)).ok_or_else(|| format!("no member serves the slot of a key (slot {})", key_slot(k)))?;
                writes.entry(addr.clone()).or_insert_with(redis::pipe).cmd("RESTORE").arg(k).arg((*ttl).max(0)).arg(payload.as_slice()).arg("REPLACE").ignore();
                copied += 1;
            }
            for (addr, p) in writes {
                let c = to.get_mut(&addr).ok_or_else(|| format!("no connection to {addr}"))?;
                p.query_async::<()>(c).await.map_err(|e| format!("restoring keys on {addr}: {e}"))?;
            }
        }
        cursor = next;
        if cursor == 0 {
            return Ok(copied);
        }
    }
}

/// What `firecamp redis-load` is told in a restored Redis Cluster's init Job on Kubernetes.
#[cfg(feature = "s3")]
#[derive(Debug, Clone)]
pub struct ClusterLoad {
    /// The backup (`s3://…/base/<id>`) and how to reach its bucket.
    pub from: firecamp_catalog::layout::RestoreFetch,
    pub password_file: PathBuf,
    pub ca_file: PathBuf,
    /// Where the backup is downloaded and served from (an emptyDir of the Job's pod).
    pub staging: PathBuf,
    /// Each member: the address the cluster names it by, and the name its certificate carries.
    pub members: Vec<(String, String)>,
}

/// Kubernetes: the backup downloaded and checked, then each shard's snapshot loaded into the
/// cluster by a private `redis-server` of the image; says what it did. Keys are replaced, so a
/// Job tried again ends the same.
#[cfg(feature = "s3")]
pub async fn load_cluster(l: &ClusterLoad) -> std::result::Result<String, String> {
    let password = std::fs::read_to_string(&l.password_file).map_err(|e| format!("reading {}: {e}", l.password_file.display()))?;
    let ca = std::fs::read_to_string(&l.ca_file).map_err(|e| format!("reading {}: {e}", l.ca_file.display()))?;
    let target = |addr: &str, name: &str| Target::new(addr, firecamp_catalog::redis::PORT).with_password(password.trim()).with_tls(ca.clone(), name);
    let reach = |addr: &str| l.members.iter().find(|(a, _)| a == addr).map(|(a, n)| target(a, n));
    let (addr, name) = l.members.first().ok_or("no --member")?;
    let via = target(addr, name);
    let base = l.staging.join("backup");
    super::job::fetch(&l.from, None, &base).await?;
    let scratch = l.staging.join("load");
    let mut said = Vec::new();
    for f in shard_files(&base)? {
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
        std::fs::set_permissions(&scratch, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(|e| format!("chmod {}: {e}", scratch.display()))?;
        let keys = load_shard("redis-server", &base, &f, &scratch, None, &via, reach).await.map_err(|e| format!("{f}: {e}"))?;
        said.push(format!("{f}: {keys} keys"));
    }
    if said.is_empty() {
        return Err(format!("{} holds no shard snapshot: not a Redis Cluster's backup", l.from.url));
    }
    Ok(said.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_to_the_slots_redis_gives_them() {
        // Redis Cluster's specification: CRC16 of "123456789" is 0x31C3; CLUSTER KEYSLOT foo is 12182.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384, "an empty tag hashes the whole key");
    }

    #[test]
    fn slot_ranges_are_read_from_cluster_slots() {
        let node = |ip: &str| Value::Array(vec![Value::BulkString(ip.as_bytes().to_vec()), Value::Int(6379), Value::BulkString(b"id".to_vec())]);
        let v = Value::Array(vec![
            Value::Array(vec![Value::Int(0), Value::Int(5460), node("127.0.0.1"), node("127.0.0.4")]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("127.0.0.2")]),
        ]);
        assert_eq!(slot_ranges(&v), vec![(0, 5460, "127.0.0.1".to_string()), (5461, 16383, "127.0.0.2".to_string())]);
    }
}
