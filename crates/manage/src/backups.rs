//! The cluster's backups as the REST API lists and deletes them (`manage --backup-target`,
//! docs/backup.md). A trait, like the cloud's parts: the S3 side (firecamp-local's
//! `backup::cluster` over firecamp-aws) reaches this crate only through it.

use firecamp_api::Backup;
use firecamp_catalog::layout::RestoreSource;
use firecamp_core::ServiceSpec;
use firecamp_core::cloud::BoxFuture;

/// Why a backup call failed, as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupError {
    /// 400 naming `field`.
    Invalid { field: String, message: String },
    /// 404.
    NotFound(String),
    /// 503: the bucket does not answer.
    Unavailable(String),
}

pub trait BackupStore: Send + Sync {
    /// The backups of `service` in `namespace` (every incarnation), newest first.
    fn list<'a>(&'a self, namespace: &'a str, service: &'a str) -> BoxFuture<'a, Result<Vec<Backup>, BackupError>>;
    /// Deletes backup `id` (or `latest`); when it is of the running incarnation `current`, the
    /// archived WAL only it needed goes too.
    fn delete<'a>(&'a self, namespace: &'a str, service: &'a str, id: &'a str, current: Option<&'a str>) -> BoxFuture<'a, Result<Backup, BackupError>>;
    /// What a restore of backup `id` (or `latest`) of `service` up to `to_time` (RFC 3339)
    /// starts from, and the spec it had, once checked: a PostgreSQL backup of that service whose
    /// files are all there with their sizes, a time between its end and now.
    fn restore_source<'a>(
        &'a self,
        namespace: &'a str,
        service: &'a str,
        id: &'a str,
        to_time: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(RestoreSource, ServiceSpec), BackupError>>;
}
