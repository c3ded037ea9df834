//! `firecamp wal push|fetch`: one WAL file to or from an S3 archive, run by a PostgreSQL member's
//! `wal.sh` as its archive_command and restore_command (docs/backup.md). Credentials come from
//! the AWS SDK's default chain (the member's `aws-credentials` file, when the runtime gave it
//! one, through AWS_SHARED_CREDENTIALS_FILE); nothing secret is on its command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct WalArgs {
    #[command(subcommand)]
    pub command: WalCommand,
}

#[derive(Subcommand)]
pub enum WalCommand {
    /// Archive the WAL file at PATH as URL; an object already there with the same bytes is success.
    Push {
        path: PathBuf,
        /// s3://bucket/key
        url: String,
        #[command(flatten)]
        s3: S3Opts,
    },
    /// Fetch URL into PATH: exit 1 when it is not archived (the end of recovery), 126 when the
    /// archive cannot be read (PostgreSQL then stops recovering rather than end it early).
    Fetch {
        url: String,
        path: PathBuf,
        #[command(flatten)]
        s3: S3Opts,
    },
}

#[derive(Args)]
pub struct S3Opts {
    /// The bucket's region (default: the SDK's chain, AWS_REGION).
    #[arg(long)]
    pub region: Option<String>,
    /// An endpoint other than AWS's (moto, MinIO).
    #[arg(long)]
    pub endpoint: Option<String>,
}

/// The exit status PostgreSQL reads: 0 done, 1 not archived / not archived now, 126 unreadable.
pub async fn run(args: WalArgs) -> i32 {
    match imp::run(args).await {
        Ok(code) => code,
        Err((code, e)) => {
            eprintln!("firecamp wal: {e}");
            code
        }
    }
}

#[cfg(feature = "aws")]
mod imp {
    use firecamp_aws::AwsSettings;
    use firecamp_aws::s3::{Bucket, S3Url};

    use super::{S3Opts, WalArgs, WalCommand};

    /// Above 125: PostgreSQL aborts recovery instead of taking the file as the archive's end.
    const UNREADABLE: i32 = 126;

    async fn bucket(url: &str, o: &S3Opts) -> Result<(Bucket, S3Url), String> {
        let u = S3Url::parse(url)?;
        if u.key.is_empty() {
            return Err(format!("{url:?} names no object"));
        }
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let settings = AwsSettings { region: given(&o.region), endpoint_url: given(&o.endpoint), ..AwsSettings::default() };
        Ok((Bucket::new(&settings, &u.bucket, None).await, u))
    }

    pub async fn run(args: WalArgs) -> Result<i32, (i32, String)> {
        match args.command {
            WalCommand::Push { path, url, s3 } => {
                let (b, u) = bucket(&url, &s3).await.map_err(|e| (2, e))?;
                let path2 = path.clone();
                let sum = tokio::task::spawn_blocking(move || sha256(&path2))
                    .await
                    .map_err(|e| (1, e.to_string()))?
                    .map_err(|e| (1, format!("{}: {e}", path.display())))?;
                b.put_file(&u.key, &path, &sum).await.map_err(|e| (1, e.to_string()))?;
                Ok(0)
            }
            WalCommand::Fetch { url, path, s3 } => {
                let (b, u) = bucket(&url, &s3).await.map_err(|e| (UNREADABLE, e))?;
                match b.get_file(&u.key, &path).await {
                    Ok(true) => Ok(0),
                    Ok(false) => Ok(1),
                    Err(e) => Err((UNREADABLE, e.to_string())),
                }
            }
        }
    }

    fn sha256(path: &std::path::Path) -> std::io::Result<String> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[cfg(not(feature = "aws"))]
mod imp {
    use super::WalArgs;

    pub async fn run(_: WalArgs) -> Result<i32, (i32, String)> {
        Err((126, "this firecamp was built without S3 support (cargo's `aws` feature)".into()))
    }
}
