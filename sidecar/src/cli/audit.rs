//! `ecrop audit`: checking and exporting the audit log.

use clap::Subcommand;

/// Subcommands of `ecrop audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain.
    Verify,
}

/// Runs an `audit` subcommand.
pub async fn run(_cli: &super::Cli, _command: &AuditCommand) -> anyhow::Result<()> {
    anyhow::bail!("audit is not available in this build")
}
