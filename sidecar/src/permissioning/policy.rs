//! The sidecar's own enforcement of the account allowlist: `eth_sendTransaction` and
//! `eth_signTransaction` from an account that may not send (to that target) are refused before
//! anything is signed or reaches the node.
//!
//! The decision is for the next block, `synced_block + 1`: the earliest block the transaction can
//! land in that the follower can decide. Fails closed: without a loaded state every transaction
//! is refused. Persists nothing; refusals are logged at `debug` (a client's mistake).

use alloy::primitives::Address;

use super::follower::StateWatch;
use crate::wallet::TransactionPolicy;

/// The account allowlist as a [`TransactionPolicy`].
#[derive(Debug, Clone)]
pub struct AllowlistPolicy {
    state: StateWatch,
}

impl AllowlistPolicy {
    /// A policy deciding from the follower's published state.
    pub fn new(state: StateWatch) -> Self {
        Self { state }
    }
}

impl TransactionPolicy for AllowlistPolicy {
    fn check(&self, from: Address, to: Option<Address>) -> Result<(), String> {
        let state = self.state.borrow().clone();
        let Some(state) = state else {
            tracing::debug!(target: "ecrop::perm", %from, "send refused: no permissioning state yet");
            return Err(format!(
                "account {from} cannot be checked: the permissioning state is not loaded yet"
            ));
        };
        let block = state.synced_block().saturating_add(1);
        if state.transaction_allowed_at(from, to, block) {
            return Ok(());
        }
        tracing::debug!(target: "ecrop::perm", %from, ?to, block, "send refused by the account allowlist");
        let what = match to {
            Some(to) => format!("to send to {to}"),
            None => "to create contracts".to_owned(),
        };
        let listed = if state.account_allowed_at(from, block) { "" } else { " (not listed)" };
        Err(format!("account {from} is not allowed {what} at block {block}{listed}"))
    }
}
