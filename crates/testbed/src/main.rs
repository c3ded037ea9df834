//! `firecamp-testbed`: the bed's helper binary, run by `testbed/bed`.
//!
//! - `setup`: create the kwok nodes and the bed's StorageClasses, wait until the nodes are Ready;
//! - `provision`: run the PV provisioner until SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use firecamp_testbed::nodes::{self, NodePlan};
use firecamp_testbed::{provisioner, storage};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

#[derive(Parser)]
#[command(about = "FireCamp test bed helper")]
struct Cli {
    /// Kubeconfig of the bed (the admin one).
    #[arg(long, env = "KUBECONFIG", global = true)]
    kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the fake nodes and StorageClasses; wait for the nodes to be Ready.
    Setup {
        #[arg(long, env = "FIRECAMP_TESTBED_NODES", default_value_t = 6)]
        nodes: usize,
        #[arg(long, env = "FIRECAMP_TESTBED_ZONES", value_delimiter = ',', default_value = "us-east-1a,us-east-1b,us-east-1c")]
        zones: Vec<String>,
        #[arg(long, env = "FIRECAMP_TESTBED_REGION", default_value = "us-east-1")]
        region: String,
        /// Value of the `firecamp-worker` label.
        #[arg(long, env = "FIRECAMP_TESTBED_CLUSTER", default_value = "bed")]
        cluster: String,
        #[arg(long, env = "FIRECAMP_TESTBED_INSTANCE_TYPE", default_value = "m5.large")]
        instance_type: String,
    },
    /// Run the PV provisioner (testbed.firecamp.dev/local) until SIGTERM/SIGINT.
    Provision,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let client = client(cli.kubeconfig).await?;
    match cli.cmd {
        Cmd::Setup { nodes, zones, region, cluster, instance_type } => {
            anyhow::ensure!(!zones.is_empty() && zones.iter().all(|z| !z.is_empty()), "--zones must name at least one zone");
            anyhow::ensure!(nodes > 0, "--nodes must be at least 1");
            let plan = NodePlan { count: nodes, zones, region, cluster, instance_type };
            storage::ensure(&client, &storage::testbed_local()).await?;
            nodes::create_and_wait(&client, &plan, Duration::from_secs(60)).await?;
            tracing::info!(nodes = plan.count, zones = ?plan.zones, "nodes Ready");
        }
        Cmd::Provision => provisioner::run(client).await,
    }
    Ok(())
}

async fn client(path: Option<PathBuf>) -> Result<Client> {
    let config = match path {
        Some(p) => {
            let kc = Kubeconfig::read_from(&p).with_context(|| format!("reading {}", p.display()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await.with_context(|| format!("loading {}", p.display()))?
        }
        None => Config::infer().await.context("no --kubeconfig/KUBECONFIG and no in-cluster config")?,
    };
    Client::try_from(config).context("building the Kubernetes client")
}
