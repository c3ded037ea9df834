//! `firecamp`: the one binary of FireCamp.

mod args;
mod catalog_cmd;
mod error;
mod options;
mod output;
mod service_create;

use clap::Parser;

use args::{Cli, Command, ServiceCommand};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Service { command: ServiceCommand::Create(args) } => service_create::run(args),
        Command::Catalog { output } => catalog_cmd::run(output),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

