//! `ecrop perm` (in progress).

use clap::Subcommand;

/// Permissioning subcommands.
#[derive(Debug, Subcommand)]
pub enum PermCommand {
    /// Show the permissioning state.
    Status,
}

/// Runs a permissioning subcommand.
pub async fn run(_command: &PermCommand) -> anyhow::Result<()> {
    anyhow::bail!("not available yet")
}
