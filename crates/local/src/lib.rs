//! FireCamp's local runtime: the manage service's REST API served on one machine, with real
//! engine servers as supervised processes, each member on its own loopback static IP with its
//! own data directory, rendered by the same catalog as on Kubernetes (only paths and addresses
//! differ). See docs/local.md.

pub mod backup;
mod cassandra;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod error;
mod failover;
pub mod guard;
pub mod hosts;
mod http;
mod init;
pub mod ips;
pub mod logs;
mod mariadb;
mod materialize;
mod metrics;
mod operations;
mod reshard;
mod runtime;
mod scale;
mod schedule;
pub mod servers;
mod status;
pub mod store;
mod supervisor;
mod users;
mod zk;

pub use config::Config;
pub use daemon::{Daemon, serve, start};
pub use error::LocalError;

/// For tests that hang or kill a member's whole process tree.
pub use supervisor::process_tree;
