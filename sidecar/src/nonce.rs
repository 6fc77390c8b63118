//! Nonces per account, handed out so that concurrent sends never collide or leave gaps.
//!
//! A send holds its account's slot from nonce assignment until the node accepted or refused
//! the signed transaction; sends from different accounts proceed in parallel. The next nonce
//! is kept in memory only. It is read from the node (`pending` block tag) on first use and
//! again after any failed submission, because a failure leaves the sidecar unsure whether
//! the node saw the transaction.

use std::{collections::HashMap, sync::Arc};

use alloy::primitives::Address;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Hands out per-account nonce slots.
#[derive(Debug, Default)]
pub struct NonceManager {
    accounts: std::sync::Mutex<HashMap<Address, Arc<Mutex<Option<u64>>>>>,
}

/// Exclusive hold on one account's nonce until dropped.
///
/// `next` is `None` when the nonce must be read from the chain.
#[derive(Debug)]
pub struct NonceSlot {
    next: OwnedMutexGuard<Option<u64>>,
}

impl NonceManager {
    /// Creates an empty manager.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for exclusive use of `account`'s nonce.
    pub async fn acquire(&self, account: Address) -> NonceSlot {
        let cell = {
            // A poisoned map only means another thread panicked while inserting; the map
            // itself is still consistent, so keep using it.
            let mut accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            accounts.entry(account).or_default().clone()
        };
        NonceSlot { next: cell.lock_owned().await }
    }

    /// Forgets every cached nonce, so each account is read from the chain again.
    pub fn reset_all(&self) {
        let accounts = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        for cell in accounts.values() {
            if let Ok(mut next) = cell.try_lock() {
                *next = None;
            }
        }
    }
}

impl NonceSlot {
    /// The cached next nonce, if one is known.
    pub fn cached(&self) -> Option<u64> {
        *self.next
    }

    /// Records that `nonce` was accepted by the node: the next send uses `nonce + 1`.
    pub fn accepted(&mut self, nonce: u64) {
        *self.next = Some(nonce.saturating_add(1));
    }

    /// Records a failed submission: the next send reads the nonce from the chain. Counted in
    /// `ecrop_nonce_resyncs_total`.
    pub fn resync(&mut self) {
        crate::ops::metrics::global().nonce_resyncs.inc();
        *self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_account() {
        let manager = Arc::new(NonceManager::new());
        let a = Address::repeat_byte(1);
        let mut slot = manager.acquire(a).await;
        slot.accepted(6);

        let m2 = manager.clone();
        let waiter = tokio::spawn(async move { m2.acquire(a).await.cached() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "second holder got in while the first held the slot");
        drop(slot);
        assert_eq!(waiter.await.unwrap(), Some(7));
    }

    #[tokio::test]
    async fn accounts_are_independent() {
        let manager = NonceManager::new();
        let _a = manager.acquire(Address::repeat_byte(1)).await;
        let b =
            tokio::time::timeout(Duration::from_secs(1), manager.acquire(Address::repeat_byte(2)))
                .await
                .expect("other account blocked");
        assert_eq!(b.cached(), None);
    }

    #[tokio::test]
    async fn resync_forgets() {
        let manager = NonceManager::new();
        let a = Address::repeat_byte(3);
        let mut slot = manager.acquire(a).await;
        slot.accepted(0);
        let counted = crate::ops::metrics::global().nonce_resyncs.get();
        slot.resync();
        assert!(crate::ops::metrics::global().nonce_resyncs.get() > counted, "resync counted");
        drop(slot);
        assert_eq!(manager.acquire(a).await.cached(), None);
    }
}
