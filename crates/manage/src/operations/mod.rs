//! Day-2 operations on Kubernetes: requested through the API (`request`), driven by the
//! controller (`drive`) with a pure state machine (`decide`). The record lives in the service's
//! status, so a restarted manage service resumes where the last one stopped.

pub mod archive;
pub mod backup;
pub mod cluster;
pub mod decide;
pub mod drive;
pub mod ensemble;
pub mod failover;
pub mod postgresql;
pub mod request;
pub mod roles;
pub mod scale;
pub mod schedule;
mod step_job;
pub mod volumes;

pub use request::{CANCEL_ANNOTATION, OPERATION_ANNOTATION, RequestError, cancel, list, pending, request, unfinished};
