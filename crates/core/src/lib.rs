//! FireCamp's domain model: what a stateful service is, how it is named, where its members live,
//! and the rules its spec must obey. Pure: no Kubernetes, no AWS, no I/O.

pub mod cloud;
pub mod cluster;
pub mod error;
pub mod labels;
pub mod member;
pub mod names;
pub mod operation;
pub mod quantity;
pub mod spec;
pub mod validate;

pub use cluster::ClusterConfig;
pub use error::{FieldError, ValidationErrors};
pub use member::{Endpoints, Member, MemberName};
pub use spec::{EngineKind, ServiceSpec};
