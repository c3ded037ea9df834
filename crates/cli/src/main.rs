//! `firecamp`: the one binary of FireCamp.

mod args;
mod aws_cloud;
mod aws_zone_cmd;
mod backend;
mod backup_cmds;
mod backup_job_cmd;
mod catalog_cmd;
mod client;
mod connect_cmd;
mod credentials_cmd;
mod error;
mod local_cmd;
mod manage_cmd;
mod member_cmd;
mod operation_cmds;
mod options;
mod output;
mod redis_load_cmd;
mod service_cmds;
mod service_create;
mod top_cmd;
mod wait;
mod wal_cmd;

use clap::Parser;

use args::{Cli, Command, ServiceCommand};
use backend::Backend;
use client::Client;
use error::CliError;
use firecamp_api::OperationKind;

#[tokio::main]
async fn main() {
    // kube brings rustls with ring, reqwest and the AWS SDK with aws-lc-rs: choose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = run(cli.command).await;
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Catalog { output } => catalog_cmd::run(output),
        Command::Completion { shell } => {
            // Into a buffer first: the generator panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "firecamp", &mut script);
            print_bytes(&script, "the completion script")
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .map_err(|e| CliError::Failed(format!("rendering the manual page: {e}")))?;
            print_bytes(&page, "the manual page")
        }
        Command::Local { command } => local_cmd::run(command).await,
        Command::Logs { server, args } => service_cmds::logs(&Client::new(&server)?, &args).await,
        Command::Manage(args) => manage_cmd::manage(args).await,
        Command::MemberInit(args) => member_cmd::member_init(args).await,
        Command::MemberIp(args) => member_cmd::member_ip(args).await,
        Command::Wal(args) => std::process::exit(wal_cmd::run(args).await),
        Command::BackupJob(args) => backup_job_cmd::run(args).await,
        Command::RedisLoad(args) => redis_load_cmd::run(args).await,
        Command::Install { command } => manage_cmd::install(command).await,
        Command::Service { server, command } => {
            let c = Backend::new(&server).await?;
            match command {
                ServiceCommand::Create(args) => service_create::run(&c, &server, args).await,
                ServiceCommand::List { output } => service_cmds::list(&c, output).await,
                ServiceCommand::Get { name, output } => service_cmds::get(&c, &name, output).await,
                ServiceCommand::Members { name, output } => service_cmds::members(&c, &name, output).await,
                ServiceCommand::Top { name, interval, once, output } => top_cmd::top(&c, &name, std::time::Duration::from_secs(interval), once, output).await,
                ServiceCommand::Connect(a) => {
                    let code = connect_cmd::connect(&c, &a).await?;
                    if code != 0 {
                        std::process::exit(code);
                    }
                    Ok(())
                }
                ServiceCommand::Credentials { name, ca_file, output } => service_cmds::credentials(&c, &name, ca_file.as_deref(), output).await,
                ServiceCommand::Delete { name, delete_volumes, wait } => service_cmds::delete(&c, &name, delete_volumes, wait).await,
                ServiceCommand::Stop { name, op } => operation_cmds::run(&c, &name, operation_cmds::request(OperationKind::Stop, &op), op.wait).await,
                ServiceCommand::Start { name, op } => operation_cmds::run(&c, &name, operation_cmds::request(OperationKind::Start, &op), op.wait).await,
                ServiceCommand::Restart { name, op } => operation_cmds::run(&c, &name, operation_cmds::request(OperationKind::Restart, &op), op.wait).await,
                ServiceCommand::Upgrade { name, version, op } => {
                    let mut req = operation_cmds::request(OperationKind::Upgrade, &op);
                    req.version = Some(version);
                    operation_cmds::run(&c, &name, req, op.wait).await
                }
                ServiceCommand::Scale { name, replicas, shards, op } => {
                    let mut req = operation_cmds::request(OperationKind::Scale, &op);
                    req.replicas = replicas;
                    req.shards = shards;
                    operation_cmds::run(&c, &name, req, op.wait).await
                }
                ServiceCommand::RotateCerts { name, ca, op } => {
                    let mut req = operation_cmds::request(OperationKind::Certificates, &op);
                    req.ca = ca;
                    operation_cmds::run(&c, &name, req, op.wait).await
                }
                ServiceCommand::Config(a) => operation_cmds::run(&c, &a.name, operation_cmds::config_request(&a)?, a.op.wait).await,
                ServiceCommand::ResizeVolume { name, size, volume, op } => {
                    let mut req = operation_cmds::request(OperationKind::Volume, &op);
                    req.size = Some(size);
                    req.volume = Some(volume);
                    operation_cmds::run(&c, &name, req, op.wait).await
                }
                ServiceCommand::Resources(a) => operation_cmds::run(&c, &a.name, operation_cmds::resources_request(&a), a.op.wait).await,
                ServiceCommand::Backup { name, op } => operation_cmds::run(&c, &name, operation_cmds::request(OperationKind::Backup, &op), op.wait).await,
                ServiceCommand::Backups { name, output } => backup_cmds::list(c.rest()?, &name, output).await,
                ServiceCommand::Restore(a) => backup_cmds::restore(&c, &a).await,
                ServiceCommand::DeleteBackup { name, id } => backup_cmds::delete(c.rest()?, &name, &id).await,
                ServiceCommand::Operations { name, output } => operation_cmds::list(&c, &name, output).await,
                ServiceCommand::Cancel { name, id, wait } => operation_cmds::cancel(&c, &name, id.as_deref(), wait).await,
                ServiceCommand::Logs(args) => service_cmds::logs(c.rest()?, &args).await,
            }
        }
    }
}

/// Writes generated text to stdout; a reader that closed the pipe early (`| head`) is no error.
fn print_bytes(bytes: &[u8], what: &str) -> Result<(), CliError> {
    match std::io::Write::write_all(&mut std::io::stdout(), bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Failed(format!("writing {what}: {e}"))),
        _ => Ok(()),
    }
}
