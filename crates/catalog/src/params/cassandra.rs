//! The Cassandra parameters a service may set (Cassandra 5.0, `cassandra.yaml`): tuning of
//! reads, writes, compaction, hints and thresholds, each a plain number or word. Addresses,
//! seeds, the snitch, security and the directories are FireCamp's (`owned_config_key`); the
//! JVM heap is `spec.cassandra.heap`.

use super::kind::Kind::{self, *};
use super::kind::{INT_MAX, Param, p};

const TRUE_FALSE: Kind = OneOf(&["true", "false"]);

pub const PARAMS: &[Param] = &[
    p("concurrent_reads", Int { min: 2, max: 1024 }),
    p("concurrent_writes", Int { min: 2, max: 1024 }),
    p("concurrent_counter_writes", Int { min: 2, max: 1024 }),
    p("concurrent_compactors", Int { min: 1, max: 64 }),
    p("memtable_flush_writers", Int { min: 1, max: 64 }),
    p("hinted_handoff_enabled", TRUE_FALSE),
    p("max_hints_delivery_threads", Int { min: 1, max: 64 }),
    p("auto_snapshot", TRUE_FALSE),
    p("incremental_backups", TRUE_FALSE),
    p("snapshot_before_compaction", TRUE_FALSE),
    p("dynamic_snitch", TRUE_FALSE),
    p("dynamic_snitch_badness_threshold", Real { min: 0.0, max: 10.0 }),
    p("phi_convict_threshold", Real { min: 5.0, max: 16.0 }),
    p("tombstone_warn_threshold", Int { min: 1, max: INT_MAX }),
    p("tombstone_failure_threshold", Int { min: 1, max: INT_MAX }),
    p("native_transport_max_threads", Int { min: 1, max: 4096 }),
    p("native_transport_max_concurrent_connections", Int { min: -1, max: INT_MAX }),
    p("native_transport_max_concurrent_connections_per_ip", Int { min: -1, max: INT_MAX }),
    p("key_cache_save_period", Int { min: 0, max: INT_MAX }),
    p("row_cache_save_period", Int { min: 0, max: INT_MAX }),
    p("counter_cache_save_period", Int { min: 0, max: INT_MAX }),
    p("column_index_cache_size_in_kb", Int { min: 1, max: 2_097_151 }),
    p("compaction_throughput_mb_per_sec", Int { min: 0, max: 65_536 }),
    p("stream_throughput_outbound_megabits_per_sec", Int { min: 0, max: 65_536 }),
    p("read_request_timeout_in_ms", Int { min: 10, max: 3_600_000 }),
    p("write_request_timeout_in_ms", Int { min: 10, max: 3_600_000 }),
    p("range_request_timeout_in_ms", Int { min: 10, max: 3_600_000 }),
    p("request_timeout_in_ms", Int { min: 10, max: 3_600_000 }),
    p("batch_size_warn_threshold_in_kb", Int { min: 1, max: 1_048_576 }),
    p("batch_size_fail_threshold_in_kb", Int { min: 1, max: 1_048_576 }),
    p("gc_warn_threshold_in_ms", Int { min: 0, max: INT_MAX }),
];
