//! The PostgreSQL parameters a service may set (PostgreSQL 15-17), with the types and ranges of
//! `pg_settings`. Left out on purpose: anything that runs a command or loads code
//! (`archive_command`, `restore_command`, `archive_library`, `ssl_passphrase_command`,
//! `*_preload_libraries`, `dynamic_library_path`, `include*`), names a file, or changes
//! replication, authentication, durability or where the server listens.

use super::kind::Kind::{self, *};
use super::kind::{INT_MAX, Param, p};

const ON_OFF: Kind = OneOf(&["on", "off"]);
const KB: u64 = 1024;
const BLOCKS: u64 = 8192;
const MB: u64 = 1 << 20;
const MS: u64 = 1000;
const S: u64 = 1_000_000;
const LEVELS: &[&str] = &["debug5", "debug4", "debug3", "debug2", "debug1", "info", "notice", "warning", "error", "log", "fatal", "panic"];
/// Time zone names such as `UTC`, `Europe/Paris`, `Etc/GMT+5`.
const ZONE: Kind = Chars { set: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-", max_len: 64 };

pub const PARAMS: &[Param] = &[
    // Memory.
    p("shared_buffers", PgMemory { base: BLOCKS, min: 16, max: 1_073_741_823 }),
    p("effective_cache_size", PgMemory { base: BLOCKS, min: 1, max: INT_MAX }),
    p("work_mem", PgMemory { base: KB, min: 64, max: INT_MAX }),
    p("hash_mem_multiplier", Real { min: 1.0, max: 1000.0 }),
    p("maintenance_work_mem", PgMemory { base: KB, min: 1024, max: INT_MAX }),
    p("autovacuum_work_mem", PgMemory { base: KB, min: -1, max: INT_MAX }),
    p("temp_buffers", PgMemory { base: BLOCKS, min: 100, max: 1_073_741_823 }),
    p("temp_file_limit", PgMemory { base: KB, min: -1, max: INT_MAX }),
    p("huge_pages", OneOf(&["try", "on", "off"])),
    p("max_prepared_transactions", Int { min: 0, max: 262_143 }),
    p("max_locks_per_transaction", Int { min: 10, max: INT_MAX }),
    p("max_pred_locks_per_transaction", Int { min: 10, max: INT_MAX }),
    p("superuser_reserved_connections", Int { min: 0, max: 262_143 }),
    p("track_activity_query_size", PgMemory { base: 1, min: 100, max: 1_048_576 }),
    // WAL and checkpoints.
    p("wal_buffers", PgMemory { base: BLOCKS, min: -1, max: 262_143 }),
    p("wal_compression", OneOf(&["on", "off", "pglz", "lz4", "zstd"])),
    p("wal_writer_delay", PgTime { base: MS, min: 1, max: 10_000 }),
    p("commit_delay", Int { min: 0, max: 100_000 }),
    p("commit_siblings", Int { min: 0, max: 1000 }),
    p("synchronous_commit", OneOf(&["on", "off", "local", "remote_write", "remote_apply"])),
    p("checkpoint_timeout", PgTime { base: S, min: 30, max: 86_400 }),
    p("checkpoint_completion_target", Real { min: 0.0, max: 1.0 }),
    p("checkpoint_warning", PgTime { base: S, min: 0, max: INT_MAX }),
    p("max_wal_size", PgMemory { base: MB, min: 32, max: INT_MAX }),
    p("min_wal_size", PgMemory { base: MB, min: 32, max: INT_MAX }),
    p("wal_keep_size", PgMemory { base: MB, min: 0, max: INT_MAX }),
    p("wal_sender_timeout", PgTime { base: MS, min: 0, max: INT_MAX }),
    p("wal_receiver_timeout", PgTime { base: MS, min: 0, max: INT_MAX }),
    p("max_standby_streaming_delay", PgTime { base: MS, min: -1, max: INT_MAX }),
    p("max_standby_archive_delay", PgTime { base: MS, min: -1, max: INT_MAX }),
    p("hot_standby_feedback", ON_OFF),
    // Background writer and I/O.
    p("bgwriter_delay", PgTime { base: MS, min: 10, max: 10_000 }),
    p("bgwriter_lru_maxpages", Int { min: 0, max: 1_073_741_823 }),
    p("bgwriter_lru_multiplier", Real { min: 0.0, max: 10.0 }),
    p("effective_io_concurrency", Int { min: 0, max: 1000 }),
    p("maintenance_io_concurrency", Int { min: 0, max: 1000 }),
    // Parallelism.
    p("max_worker_processes", Int { min: 0, max: 262_143 }),
    p("max_parallel_workers", Int { min: 0, max: 1024 }),
    p("max_parallel_workers_per_gather", Int { min: 0, max: 1024 }),
    p("max_parallel_maintenance_workers", Int { min: 0, max: 1024 }),
    // The planner.
    p("random_page_cost", Real { min: 0.0, max: 1e6 }),
    p("seq_page_cost", Real { min: 0.0, max: 1e6 }),
    p("cpu_tuple_cost", Real { min: 0.0, max: 1e6 }),
    p("cpu_index_tuple_cost", Real { min: 0.0, max: 1e6 }),
    p("cpu_operator_cost", Real { min: 0.0, max: 1e6 }),
    p("parallel_setup_cost", Real { min: 0.0, max: 1e9 }),
    p("parallel_tuple_cost", Real { min: 0.0, max: 1e9 }),
    p("default_statistics_target", Int { min: 1, max: 10_000 }),
    p("jit", ON_OFF),
    p("enable_seqscan", ON_OFF),
    p("enable_indexscan", ON_OFF),
    p("enable_bitmapscan", ON_OFF),
    p("enable_nestloop", ON_OFF),
    p("enable_hashjoin", ON_OFF),
    p("enable_mergejoin", ON_OFF),
    p("enable_partitionwise_join", ON_OFF),
    p("enable_partitionwise_aggregate", ON_OFF),
    // Sessions and statements.
    p("statement_timeout", PgTime { base: MS, min: 0, max: INT_MAX }),
    p("lock_timeout", PgTime { base: MS, min: 0, max: INT_MAX }),
    p("idle_in_transaction_session_timeout", PgTime { base: MS, min: 0, max: INT_MAX }),
    p("idle_session_timeout", PgTime { base: MS, min: 0, max: INT_MAX }),
    p("deadlock_timeout", PgTime { base: MS, min: 1, max: INT_MAX }),
    p("tcp_keepalives_idle", PgTime { base: S, min: 0, max: INT_MAX }),
    p("tcp_keepalives_interval", PgTime { base: S, min: 0, max: INT_MAX }),
    p("tcp_keepalives_count", Int { min: 0, max: INT_MAX }),
    p("default_transaction_isolation", OneOf(&["serializable", "repeatable read", "read committed", "read uncommitted"])),
    p("timezone", ZONE),
    p("log_timezone", ZONE),
    // Autovacuum.
    p("autovacuum", ON_OFF),
    p("autovacuum_max_workers", Int { min: 1, max: 262_143 }),
    p("autovacuum_naptime", PgTime { base: S, min: 1, max: 2_147_483 }),
    p("autovacuum_vacuum_threshold", Int { min: 0, max: INT_MAX }),
    p("autovacuum_vacuum_insert_threshold", Int { min: -1, max: INT_MAX }),
    p("autovacuum_analyze_threshold", Int { min: 0, max: INT_MAX }),
    p("autovacuum_vacuum_scale_factor", Real { min: 0.0, max: 100.0 }),
    p("autovacuum_vacuum_insert_scale_factor", Real { min: 0.0, max: 100.0 }),
    p("autovacuum_analyze_scale_factor", Real { min: 0.0, max: 100.0 }),
    p("autovacuum_freeze_max_age", Int { min: 100_000, max: 2_000_000_000 }),
    p("autovacuum_multixact_freeze_max_age", Int { min: 10_000, max: 2_000_000_000 }),
    p("autovacuum_vacuum_cost_delay", PgTime { base: MS, min: -1, max: 100 }),
    p("autovacuum_vacuum_cost_limit", Int { min: -1, max: 10_000 }),
    p("vacuum_cost_delay", PgTime { base: MS, min: 0, max: 100 }),
    p("vacuum_cost_limit", Int { min: 1, max: 10_000 }),
    // Logging (to the member's log: where it goes is FireCamp's).
    p("log_min_duration_statement", PgTime { base: MS, min: -1, max: INT_MAX }),
    p("log_autovacuum_min_duration", PgTime { base: MS, min: -1, max: INT_MAX }),
    p("log_min_messages", OneOf(LEVELS)),
    p("log_min_error_statement", OneOf(LEVELS)),
    p("log_statement", OneOf(&["none", "ddl", "mod", "all"])),
    p("log_temp_files", PgMemory { base: KB, min: -1, max: INT_MAX }),
    p("log_checkpoints", ON_OFF),
    p("log_connections", ON_OFF),
    p("log_disconnections", ON_OFF),
    p("log_lock_waits", ON_OFF),
    p("track_io_timing", ON_OFF),
    p("track_functions", OneOf(&["none", "pl", "all"])),
    // pg_stat_statements, which FireCamp preloads.
    p("pg_stat_statements.max", Int { min: 100, max: INT_MAX }),
    p("pg_stat_statements.track", OneOf(&["none", "top", "all"])),
];
