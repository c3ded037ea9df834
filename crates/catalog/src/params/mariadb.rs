//! The MariaDB parameters a service may set (MariaDB 10.11, `my.cnf` `[mariadbd]`): InnoDB,
//! buffers, timeouts and replication tuning. Files, listeners, TLS, replication's identity and
//! plugins are FireCamp's (`owned_config_key`); `max_connections` is
//! `spec.mariadb.maxConnections`. Sizes are whole numbers of bytes.

use super::kind::Kind::{self, *};
use super::kind::{Param, p};

const ON_OFF: Kind = OneOf(&["ON", "OFF"]);
const U32: i64 = 4_294_967_295;
const BYTES: i64 = i64::MAX;

pub const PARAMS: &[Param] = &[
    p("innodb_buffer_pool_size", Int { min: 5_242_880, max: BYTES }),
    p("innodb_log_file_size", Int { min: 1_048_576, max: 549_755_813_888 }),
    p("innodb_log_buffer_size", Int { min: 262_144, max: U32 }),
    p("innodb_flush_log_at_trx_commit", OneOf(&["0", "1", "2", "3"])),
    p("innodb_flush_method", OneOf(&["fsync", "O_DSYNC", "littlesync", "nosync", "O_DIRECT", "O_DIRECT_NO_FSYNC"])),
    p("innodb_io_capacity", Int { min: 100, max: U32 }),
    p("innodb_io_capacity_max", Int { min: 100, max: U32 }),
    p("innodb_lock_wait_timeout", Int { min: 0, max: 1_073_741_824 }),
    p("innodb_file_per_table", ON_OFF),
    p("innodb_autoinc_lock_mode", OneOf(&["0", "1", "2"])),
    p("innodb_print_all_deadlocks", ON_OFF),
    p("sync_binlog", Int { min: 0, max: U32 }),
    p("binlog_expire_logs_seconds", Int { min: 0, max: 8_553_600 }),
    p("binlog_cache_size", Int { min: 4096, max: BYTES }),
    p("max_binlog_size", Int { min: 4096, max: 1_073_741_824 }),
    p("slave_parallel_threads", Int { min: 0, max: 16_383 }),
    p("slave_parallel_mode", OneOf(&["conservative", "optimistic", "aggressive", "minimal", "none"])),
    p("slave_net_timeout", Int { min: 1, max: 31_536_000 }),
    p("rpl_semi_sync_master_timeout", Int { min: 0, max: U32 }),
    p("max_allowed_packet", Int { min: 1024, max: 1_073_741_824 }),
    p("table_open_cache", Int { min: 1, max: 1_048_576 }),
    p("table_definition_cache", Int { min: 400, max: 2_097_152 }),
    p("thread_cache_size", Int { min: 0, max: 16_384 }),
    p("tmp_table_size", Int { min: 0, max: BYTES }),
    p("max_heap_table_size", Int { min: 16_384, max: BYTES }),
    p("sort_buffer_size", Int { min: 32_768, max: BYTES }),
    p("join_buffer_size", Int { min: 128, max: BYTES }),
    p("read_buffer_size", Int { min: 8192, max: 2_147_479_552 }),
    p("read_rnd_buffer_size", Int { min: 1, max: 2_147_483_647 }),
    p("wait_timeout", Int { min: 1, max: 31_536_000 }),
    p("interactive_timeout", Int { min: 1, max: 31_536_000 }),
    p("lock_wait_timeout", Int { min: 0, max: 31_536_000 }),
    p("net_read_timeout", Int { min: 1, max: 31_536_000 }),
    p("net_write_timeout", Int { min: 1, max: 31_536_000 }),
    p("max_connect_errors", Int { min: 1, max: U32 }),
    p("slow_query_log", OneOf(&["0", "1", "ON", "OFF"])),
    p("long_query_time", Real { min: 0.0, max: 31_536_000.0 }),
    p("log_queries_not_using_indexes", ON_OFF),
    p("log_warnings", Int { min: 0, max: U32 }),
    p("character_set_server", OneOf(&["utf8mb4", "utf8mb3", "latin1", "ascii", "binary"])),
    p("collation_server", Chars { set: "abcdefghijklmnopqrstuvwxyz0123456789_", max_len: 64 }),
    p("default_storage_engine", OneOf(&["InnoDB", "Aria", "MyISAM", "MEMORY"])),
    p("transaction_isolation", OneOf(&["READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE"])),
    p("sql_mode", Chars { set: "ABCDEFGHIJKLMNOPQRSTUVWXYZ_,", max_len: 512 }),
    p("explicit_defaults_for_timestamp", ON_OFF),
    p("query_cache_type", OneOf(&["0", "1", "2", "OFF", "ON", "DEMAND"])),
    p("query_cache_size", Int { min: 0, max: BYTES }),
    p("performance_schema", ON_OFF),
];
