//! The Kafka parameters a service may set (Kafka 4.4, `server.properties`): the broker's tuning
//! and the topics' defaults. Listeners, security, the quorum and the directories are FireCamp's
//! (`owned_config_key`); the JVM heap is `spec.kafka.heap`.

use super::kind::Kind::{self, *};
use super::kind::{INT_MAX, Param, p};

const TRUE_FALSE: Kind = OneOf(&["true", "false"]);
const LONG_MAX: i64 = i64::MAX;

pub const PARAMS: &[Param] = &[
    p("num.partitions", Int { min: 1, max: 10_000 }),
    p("default.replication.factor", Int { min: 1, max: 9 }),
    p("min.insync.replicas", Int { min: 1, max: 9 }),
    p("unclean.leader.election.enable", TRUE_FALSE),
    p("auto.create.topics.enable", TRUE_FALSE),
    p("auto.leader.rebalance.enable", TRUE_FALSE),
    p("compression.type", OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"])),
    p("log.cleanup.policy", OneOf(&["delete", "compact", "compact,delete", "delete,compact"])),
    p("log.retention.hours", Int { min: -1, max: INT_MAX }),
    p("log.retention.minutes", Int { min: -1, max: INT_MAX }),
    p("log.retention.ms", Int { min: -1, max: LONG_MAX }),
    p("log.retention.bytes", Int { min: -1, max: LONG_MAX }),
    p("log.retention.check.interval.ms", Int { min: 1, max: LONG_MAX }),
    p("log.segment.bytes", Int { min: 1_048_576, max: INT_MAX }),
    p("log.roll.hours", Int { min: 1, max: INT_MAX }),
    p("log.flush.interval.messages", Int { min: 1, max: LONG_MAX }),
    p("log.flush.interval.ms", Int { min: 0, max: LONG_MAX }),
    p("message.max.bytes", Int { min: 0, max: INT_MAX }),
    p("replica.fetch.max.bytes", Int { min: 0, max: INT_MAX }),
    p("replica.lag.time.max.ms", Int { min: 1, max: LONG_MAX }),
    p("num.network.threads", Int { min: 1, max: 256 }),
    p("num.io.threads", Int { min: 1, max: 256 }),
    p("num.replica.fetchers", Int { min: 1, max: 256 }),
    p("background.threads", Int { min: 1, max: 256 }),
    p("offsets.retention.minutes", Int { min: 1, max: INT_MAX }),
    p("group.initial.rebalance.delay.ms", Int { min: 0, max: INT_MAX }),
    p("group.max.session.timeout.ms", Int { min: 1, max: INT_MAX }),
    p("group.min.session.timeout.ms", Int { min: 1, max: INT_MAX }),
];
