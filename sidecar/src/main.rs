//! The `ecrop` command.

use std::process::ExitCode;

use clap::Parser;
use ecrop::{
    cli::{self, Cli, Command},
    config::LogFormat,
    logging,
};

fn main() -> ExitCode {
    let cli = Cli::parse();

    // The dev network points SoftHSM2 at its data directory through the environment, which
    // must happen while this is the only thread.
    let dev_paths = match &cli.command {
        Command::Dev(args) => match cli::dev::prepare_env(args) {
            Ok(paths) => Some(paths),
            Err(error) => return fail(&error),
        },
        _ => None,
    };

    let file_log = cli.config.as_deref().and_then(|p| ecrop::config::FileConfig::load(p).ok());
    let format =
        cli.log_format.or(file_log.as_ref().and_then(|f| f.log.format)).unwrap_or(LogFormat::Text);
    let level = cli.log_level.clone().or(file_log.and_then(|f| f.log.level));
    logging::init(format, level.as_deref());

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::from(error)),
    };
    let outcome = runtime.block_on(async {
        match &cli.command {
            Command::Serve(args) => cli::serve::run(&cli, args).await,
            Command::Keys(command) => cli::keys::run(&cli, command).await,
            Command::Contracts(command) => cli::contracts::run(command).await,
            Command::Roles(command) => cli::roles::run(command).await,
            Command::Register(command) => cli::register::run(command).await,
            Command::Instruction(command) => cli::instruction::run(command).await,
            Command::Perm(command) => cli::perm::run(command).await,
            Command::Genesis(args) => cli::genesis::run(args).await,
            Command::Custody(command) => cli::custody::run(command).await,
            Command::KeyService(args) => cli::key_service::run(&cli, args).await,
            Command::ApiClients(command) => cli::api_clients::run(&cli, command).await,
            Command::Audit(command) => cli::audit::run(&cli, command).await,
            Command::Dev(args) => match dev_paths {
                Some(paths) => cli::dev::run(&cli, args, paths).await,
                None => Err(anyhow::anyhow!("dev environment not prepared")),
            },
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Prints the error and its causes on one line, skipping a cause whose text the previous
/// message already ends with (errors that show their source inline).
fn fail(error: &anyhow::Error) -> ExitCode {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    eprintln!("error: {line}");
    ExitCode::FAILURE
}
