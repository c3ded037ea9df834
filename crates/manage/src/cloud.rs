//! The cloud the manage service drives besides Kubernetes: member DNS, static IPs and member
//! log streams. Each part is optional (a cluster without AWS has none); the implementations
//! live in `firecamp-aws` and reach this crate only as the traits of `firecamp_core::cloud`.

use std::sync::Arc;

use firecamp_core::cloud::{MemberDns, MemberLogs, StaticIps};

#[derive(Clone, Default)]
pub struct Cloud {
    pub dns: Option<Arc<dyn MemberDns>>,
    pub static_ips: Option<Arc<dyn StaticIps>>,
    pub logs: Option<Arc<dyn MemberLogs>>,
    /// The cluster's backups (`--backup-target`), for the REST API's backup paths.
    pub backups: Option<Arc<dyn crate::backups::BackupStore>>,
}

impl Cloud {
    pub fn is_empty(&self) -> bool {
        self.dns.is_none() && self.static_ips.is_none() && self.logs.is_none()
    }
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud")
            .field("dns", &self.dns.is_some())
            .field("static_ips", &self.static_ips.is_some())
            .field("logs", &self.logs.is_some())
            .field("backups", &self.backups.is_some())
            .finish()
    }
}
