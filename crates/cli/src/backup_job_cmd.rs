//! `firecamp backup-job`: inside a Kubernetes Job the manage service starts for a `backup`
//! operation, a PostgreSQL base backup, a Redis snapshot (one per shard of a cluster) or a
//! ZooKeeper member's database files (by the spec's engine) into the
//! cluster's bucket (docs/backup.md). Nothing secret is on its command line: the password and
//! the bucket's credentials are files; the service's spec (no secrets) comes in
//! FIRECAMP_SERVICE_SPEC for the record.

use std::path::PathBuf;

use clap::Args;

use crate::error::CliError;

#[derive(Args)]
pub struct BackupJobArgs {
    /// `s3://bucket/prefix/<namespace>`.
    #[arg(long)]
    pub root: String,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub uid: String,
    #[arg(long)]
    pub operation: String,
    /// The member to copy, by a name its certificate carries, and its name.
    #[arg(long)]
    pub host: String,
    #[arg(long, default_value_t = 5432)]
    pub port: u16,
    #[arg(long)]
    pub member: String,
    /// PostgreSQL's replication password, Redis's password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// A Redis Cluster: `<k>:<host>,<host>…`, shard k's members to take its snapshot from, the
    /// first tried first; one per shard.
    #[arg(long = "shard")]
    pub shards: Vec<String>,
    /// ZooKeeper: the member's snapshot directory and transaction-log directory.
    #[arg(long)]
    pub snapshots: Option<PathBuf>,
    #[arg(long)]
    pub logs: Option<PathBuf>,
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    #[arg(long)]
    pub staging: PathBuf,
    #[arg(long)]
    pub server_version: String,
    /// The service's spec as JSON (recorded with the backup).
    #[arg(long, env = "FIRECAMP_SERVICE_SPEC", hide_env_values = true)]
    pub spec: String,
}

#[cfg(feature = "aws")]
pub async fn run(a: BackupJobArgs) -> Result<(), CliError> {
    let spec: firecamp_core::ServiceSpec = serde_json::from_str(&a.spec).map_err(|e| CliError::Usage(format!("FIRECAMP_SERVICE_SPEC: {e}")))?;
    let shards = a
        .shards
        .iter()
        .map(|s| {
            let (k, hosts) = s.split_once(':')?;
            Some((k.parse::<u32>().ok()?, hosts.split(',').map(String::from).collect::<Vec<_>>()))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CliError::Usage("--shard: expected <shard>:<host>,<host>…".into()))?;
    let b = firecamp_local::backup::job::BaseBackup {
        root: a.root,
        region: a.region,
        endpoint: a.endpoint,
        service: a.service,
        uid: a.uid,
        operation: a.operation,
        host: a.host,
        port: a.port,
        member: a.member,
        password_file: a.password_file,
        shards,
        snapshots: a.snapshots,
        logs: a.logs,
        ca_file: a.ca_file,
        staging: a.staging,
        spec,
        server_version: a.server_version,
    };
    let said = firecamp_local::backup::job::take(&b).await.map_err(CliError::Failed)?;
    eprintln!("backup-job: {said}");
    Ok(())
}

#[cfg(not(feature = "aws"))]
pub async fn run(_: BackupJobArgs) -> Result<(), CliError> {
    Err(CliError::Usage("backup-job: this firecamp was built without AWS support (cargo feature `aws`)".into()))
}
