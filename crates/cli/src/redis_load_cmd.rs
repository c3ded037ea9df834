//! `firecamp redis-load`: the end of a restored Redis Cluster's init Job on Kubernetes
//! (docs/backup.md). The backup's shard snapshots are downloaded from the cluster's bucket,
//! checked against their record, and each loaded into the new cluster by a private
//! `redis-server` of the Redis image. Nothing secret is on its command line: the password and
//! the bucket's credentials are files.

use std::path::PathBuf;

use clap::Args;

use crate::error::CliError;

#[derive(Args)]
pub struct RedisLoadArgs {
    /// The backup: `s3://bucket/prefix/<namespace>/<service>/<uid>/base/<id>`.
    #[arg(long)]
    pub from: String,
    #[arg(long)]
    pub region: String,
    #[arg(long, default_value = "")]
    pub endpoint: String,
    #[arg(long)]
    pub password_file: PathBuf,
    #[arg(long)]
    pub ca_file: PathBuf,
    /// Where the backup is downloaded (an emptyDir of the Job's pod).
    #[arg(long)]
    pub staging: PathBuf,
    /// `<address>=<name>`: a member by the address the cluster names it by and the name its
    /// certificate carries; every member, the first asked for the cluster's slots.
    #[arg(long = "member", required = true)]
    pub members: Vec<String>,
}

#[cfg(feature = "aws")]
pub async fn run(a: RedisLoadArgs) -> Result<(), CliError> {
    let members = a
        .members
        .iter()
        .map(|m| m.split_once('=').map(|(addr, name)| (addr.to_string(), name.to_string())))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CliError::Usage("--member: expected <address>=<name>".into()))?;
    let l = firecamp_local::backup::redis_load::ClusterLoad {
        from: firecamp_catalog::layout::RestoreFetch { url: a.from, region: a.region, endpoint: a.endpoint },
        password_file: a.password_file,
        ca_file: a.ca_file,
        staging: a.staging,
        members,
    };
    let said = firecamp_local::backup::redis_load::load_cluster(&l).await.map_err(CliError::Failed)?;
    eprintln!("redis-load: {said}");
    Ok(())
}

#[cfg(not(feature = "aws"))]
pub async fn run(_: RedisLoadArgs) -> Result<(), CliError> {
    Err(CliError::Usage("redis-load: this firecamp was built without AWS support (cargo feature `aws`)".into()))
}
