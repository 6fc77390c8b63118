//! `ecrop genesis` (in progress).

use clap::Args;

/// Options of `ecrop genesis`.
#[derive(Debug, Args)]
pub struct GenesisArgs {}

/// Runs `ecrop genesis`.
pub async fn run(_args: &GenesisArgs) -> anyhow::Result<()> {
    anyhow::bail!("not available yet")
}
