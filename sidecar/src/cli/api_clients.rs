//! `ecrop api-clients`: the clients of the JSON-RPC endpoint.

use clap::Subcommand;

/// Subcommands of `ecrop api-clients`.
#[derive(Debug, Subcommand)]
pub enum ApiClientsCommand {
    /// List the clients.
    List,
}

/// Runs an `api-clients` subcommand.
pub async fn run(_cli: &super::Cli, _command: &ApiClientsCommand) -> anyhow::Result<()> {
    anyhow::bail!("api-clients is not available in this build")
}
