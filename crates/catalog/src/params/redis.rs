//! The Redis parameters a service may set (Redis 7.0-7.4: only keys all three know, since an
//! unknown key stops Redis at start). Left out on purpose: anything that loads code or files,
//! renames or enables commands, or changes paths, users, listening or replication
//! (`loadmodule`, `aclfile`, `user`, `rename-command`, `enable-debug-command`, `dir`,
//! `dbfilename`, …). `maxmemory-policy` is `spec.redis.maxmemoryPolicy`.

use super::kind::Kind::{self, *};
use super::kind::{INT_MAX, Param, p};

const YES_NO: Kind = OneOf(&["yes", "no"]);
/// Redis takes `long long` counts; FireCamp caps them at `i64::MAX`.
const LONG_MAX: i64 = i64::MAX;
/// 16 TiB: more memory than any instance has.
const MEMORY: Kind = RedisMemory { max: 1 << 44 };
/// `""` writes an empty value: "none".
const NONE: &[&str] = &["\"\""];

pub const PARAMS: &[Param] = &[
    // Memory and eviction.
    p("maxmemory", MEMORY),
    p("maxmemory-samples", Int { min: 1, max: 64 }),
    p("maxmemory-eviction-tenacity", Int { min: 0, max: 100 }),
    p("lazyfree-lazy-eviction", YES_NO),
    p("lazyfree-lazy-expire", YES_NO),
    p("lazyfree-lazy-server-del", YES_NO),
    p("lazyfree-lazy-user-del", YES_NO),
    p("lazyfree-lazy-user-flush", YES_NO),
    p("replica-lazy-flush", YES_NO),
    p("activedefrag", YES_NO),
    p("active-defrag-ignore-bytes", MEMORY),
    p("active-defrag-threshold-lower", Int { min: 0, max: 1000 }),
    p("active-defrag-threshold-upper", Int { min: 0, max: 1000 }),
    p("active-defrag-cycle-min", Int { min: 1, max: 99 }),
    p("active-defrag-cycle-max", Int { min: 1, max: 99 }),
    p("active-defrag-max-scan-fields", Int { min: 1, max: LONG_MAX }),
    p("activerehashing", YES_NO),
    // Clients.
    p("maxclients", Int { min: 1, max: 1_000_000 }),
    p("timeout", Int { min: 0, max: INT_MAX }),
    p("tcp-keepalive", Int { min: 0, max: INT_MAX }),
    p("client-query-buffer-limit", RedisMemory { max: 1 << 40 }),
    p("proto-max-bulk-len", RedisMemory { max: 1 << 40 }),
    p("busy-reply-threshold", Int { min: 0, max: LONG_MAX }),
    p("lua-time-limit", Int { min: 0, max: LONG_MAX }),
    p("databases", Int { min: 1, max: 10_000 }),
    // The event loop.
    p("hz", Int { min: 1, max: 500 }),
    p("dynamic-hz", YES_NO),
    // Persistence.
    p("appendonly", YES_NO),
    p("appendfsync", OneOf(&["always", "everysec", "no"])),
    p("no-appendfsync-on-rewrite", YES_NO),
    p("auto-aof-rewrite-percentage", Int { min: 0, max: INT_MAX }),
    p("auto-aof-rewrite-min-size", MEMORY),
    p("aof-use-rdb-preamble", YES_NO),
    p("save", RedisSave).or(NONE),
    p("stop-writes-on-bgsave-error", YES_NO),
    p("rdbcompression", YES_NO),
    // Replication tuning (who replicates from whom is FireCamp's).
    p("repl-backlog-size", MEMORY),
    p("repl-timeout", Int { min: 1, max: INT_MAX }),
    p("repl-diskless-sync", YES_NO),
    p("repl-diskless-sync-delay", Int { min: 0, max: INT_MAX }),
    p("min-replicas-to-write", Int { min: 0, max: INT_MAX }),
    p("min-replicas-max-lag", Int { min: 0, max: INT_MAX }),
    p("replica-priority", Int { min: 0, max: INT_MAX }),
    p("replica-serve-stale-data", YES_NO),
    // Cluster mode tuning.
    p("cluster-node-timeout", Int { min: 1, max: LONG_MAX }),
    p("cluster-replica-validity-factor", Int { min: 0, max: INT_MAX }),
    p("cluster-migration-barrier", Int { min: 0, max: INT_MAX }),
    p("cluster-require-full-coverage", YES_NO),
    p("cluster-allow-reads-when-down", YES_NO),
    p("cluster-allow-replica-migration", YES_NO),
    // Diagnostics (to the member's log and the server's own lists).
    p("loglevel", OneOf(&["debug", "verbose", "notice", "warning"])),
    p("slowlog-log-slower-than", Int { min: -1, max: LONG_MAX }),
    p("slowlog-max-len", Int { min: 0, max: LONG_MAX }),
    p("latency-monitor-threshold", Int { min: 0, max: LONG_MAX }),
    p("latency-tracking", YES_NO),
    p("notify-keyspace-events", Chars { set: "KEg$lshzxetmdnA", max_len: 16 }).or(NONE),
    // Encodings of small values.
    p("list-max-listpack-size", Int { min: -5, max: INT_MAX }),
    p("list-max-ziplist-size", Int { min: -5, max: INT_MAX }),
    p("list-compress-depth", Int { min: 0, max: INT_MAX }),
    p("hash-max-listpack-entries", Int { min: 0, max: LONG_MAX }),
    p("hash-max-listpack-value", Int { min: 0, max: LONG_MAX }),
    p("hash-max-ziplist-entries", Int { min: 0, max: LONG_MAX }),
    p("hash-max-ziplist-value", Int { min: 0, max: LONG_MAX }),
    p("set-max-intset-entries", Int { min: 0, max: LONG_MAX }),
    p("zset-max-listpack-entries", Int { min: 0, max: LONG_MAX }),
    p("zset-max-listpack-value", Int { min: 0, max: LONG_MAX }),
    p("zset-max-ziplist-entries", Int { min: 0, max: LONG_MAX }),
    p("zset-max-ziplist-value", Int { min: 0, max: LONG_MAX }),
    p("stream-node-max-bytes", MEMORY),
    p("stream-node-max-entries", Int { min: 0, max: LONG_MAX }),
    p("hll-sparse-max-bytes", MEMORY),
];
