//! Backups and restores (docs/backup.md): what `GET /v1/services/{name}/backups` lists and what
//! `POST /v1/services/{name}/restore` takes. A backup is made by an operation of kind `backup`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One base backup of a service, with the window it restores to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// `<service>-<UTC time it was asked for, YYYYMMDDTHHMMSSmmmZ>`.
    pub id: String,
    pub service: String,
    /// The member it was taken from (a streaming replica where there was one).
    pub member: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339: the earliest moment a restore from it can stop at.
    pub finished: String,
    /// The size of its files (the archived WAL it needs is counted apart).
    pub size_bytes: u64,
    /// The timeline it was taken on and the WAL positions (LSNs) it starts from and ends at.
    pub timeline: u32,
    pub wal_start: String,
    pub wal_end: String,
    /// RFC 3339: when the newest WAL file of the service's archive was written; a restore
    /// can stop at any moment from `finished` to about this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recoverable_until: Option<String>,
}

/// `GET /v1/services/{name}/backups`, newest first. Also answers for a deleted service whose
/// backups were kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackupList {
    pub items: Vec<Backup>,
}

/// `POST /v1/services/{name}/restore`: a new service `name` made from a backup of this one.
/// Restores never overwrite a service: the new name must be free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// The backup's id (`GET …/backups`), or `latest` for the newest.
    pub backup: String,
    /// The new service's name.
    pub name: String,
    /// RFC 3339 in UTC (`2026-12-02T20:15:00Z`): recovery stops before the first transaction
    /// committed after it. Absent: everything archived is recovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_time: Option<String>,
}
