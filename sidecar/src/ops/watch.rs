//! Event sources for webhooks, and the follower-lag gauges.
//!
//! - [`ChainWatcher`] polls `eth_getLogs` through the upstream node for the Custody contract's
//!   `WithdrawalRequested` and the access manager's `RoleGranted` events. It reports a block
//!   only once it is `confirmations` blocks below the head, and keeps a cursor in the store
//!   (`webhook/watch/cursor`: next block to scan, last scanned block and its hash), written only
//!   after the block's events are stored as pending deliveries, so a restart neither repeats
//!   nor skips events. If the last scanned block's hash changed (a reorganisation deeper than
//!   the confirmation depth), it rescans the last [`REWIND_BLOCKS`] blocks; events found again
//!   keep their ids (see [`super::event`]).
//! - [`FollowerMonitor`] follows the permissioning follower's status and the node's head,
//!   sets `ecrop_follower_lag_blocks` and `ecrop_follower_synced_block`, publishes the lag for
//!   `/readyz`, and raises `follower_lagging` once when the lag goes above the threshold and
//!   once when it comes back within.

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{Address, B256, U64},
    rpc::types::Log,
    sol_types::SolEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, value::RawValue};
use tokio::{sync::watch, task::JoinHandle};

use super::{
    OpsError, OpsFile,
    event::{Event, LogOrigin, RoleGrant, WithdrawalRequest},
    metrics::Metrics,
    webhook::EventSink,
};
use crate::{
    onchain::Deployment,
    permissioning::follower::FollowerStatus,
    store::{Batch, Store},
    upstream::Upstream,
};

/// The events the chain watcher reads, as the contracts declare them (`ICustody.sol` and
/// OpenZeppelin's `IAccessManager.sol`).
pub mod abi {
    alloy::sol! {
        /// Custody: `requester` asked to send `amount` of `asset` from `clientId` to
        /// `destination`.
        event WithdrawalRequested(
            uint256 indexed withdrawalId,
            bytes32 indexed clientId,
            address indexed asset,
            address destination,
            uint256 amount,
            bytes32 travelRuleHash,
            address requester,
            uint8 approvalsRequired,
            uint32 timelockDelay
        );
        /// AccessManager: `account` was granted `roleId`.
        event RoleGranted(
            uint64 indexed roleId,
            address indexed account,
            uint32 delay,
            uint48 since,
            bool newMember
        );
    }
}

/// Name of the custody contract in a deployment file.
pub const CUSTODY_NAME: &str = "Custody";
/// Name of the access manager in a deployment file.
pub const ACCESS_MANAGER_NAME: &str = "EcropAccessManager";
/// Blocks rescanned after the last scanned block was replaced; the follower's reorganisation
/// window, so both look back equally far.
pub const REWIND_BLOCKS: u64 = crate::permissioning::follower::REORG_WINDOW;
/// Most blocks per `eth_getLogs`; within Besu's default `--rpc-max-logs-range` (5000).
pub const WATCH_RANGE_BLOCKS: u64 = 2_000;
/// Poll interval of the follower monitor's head reads.
pub const LAG_POLL: Duration = Duration::from_secs(2);

const KEY_CURSOR: &str = "webhook/watch/cursor";

/// Settings of the chain watcher.
#[derive(Debug, Clone)]
pub struct ChainWatchConfig {
    /// The Custody contract, when deployed.
    pub custody: Option<Address>,
    /// The access manager, when deployed.
    pub access_manager: Option<Address>,
    /// First block scanned when no cursor is stored.
    pub start_block: u64,
    /// Blocks below the head before a block is reported.
    pub confirmations: u64,
    /// Poll interval.
    pub poll_interval: Duration,
}

impl ChainWatchConfig {
    /// Reads the addresses from the deployment file named in `[ops] deployment`; `None` when
    /// no file is named.
    pub fn from_ops(ops: &OpsFile) -> Result<Option<Self>, OpsError> {
        let Some(path) = &ops.deployment else { return Ok(None) };
        let deployment = Deployment::load(path)?;
        let custody = deployment.contracts.get(CUSTODY_NAME).copied();
        let access_manager = deployment.contracts.get(ACCESS_MANAGER_NAME).copied();
        if custody.is_none() && access_manager.is_none() {
            return Err(OpsError::Invalid(format!(
                "ops deployment ({}) names neither {CUSTODY_NAME} nor {ACCESS_MANAGER_NAME}",
                path.display()
            )));
        }
        let poll_ms = ops.watch_poll_ms.unwrap_or(super::DEFAULT_WATCH_POLL_MS);
        if poll_ms == 0 {
            return Err(OpsError::Invalid("ops.watch_poll_ms must be above zero".into()));
        }
        Ok(Some(Self {
            custody,
            access_manager,
            start_block: deployment.start_block,
            confirmations: ops.watch_confirmations.unwrap_or(super::DEFAULT_WATCH_CONFIRMATIONS),
            poll_interval: Duration::from_millis(poll_ms),
        }))
    }
}

/// The stored cursor of the chain watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCursor {
    /// Next block to scan.
    pub next: u64,
    /// Last scanned block and its hash.
    pub last: Option<(u64, B256)>,
}

/// Reads the chain watcher's cursor (for inspection and tests).
pub fn stored_cursor(store: &Store) -> Result<Option<WatchCursor>, OpsError> {
    Ok(store.get_json(KEY_CURSOR)?)
}

/// The running chain watcher.
#[derive(Debug)]
pub struct ChainWatcher {
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ChainWatcher {
    /// Starts watching from the stored cursor (or `config.start_block`).
    pub fn spawn(
        config: ChainWatchConfig,
        upstream: Arc<Upstream>,
        store: Store,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, OpsError> {
        let cursor =
            stored_cursor(&store)?.unwrap_or(WatchCursor { next: config.start_block, last: None });
        tracing::info!(target: "ecrop::watch", custody = ?config.custody, access_manager = ?config.access_manager, next_block = cursor.next, "chain watcher on");
        let (shutdown, stopped) = watch::channel(false);
        let worker = ChainWorker { config, upstream, store, sink, cursor };
        let task = tokio::spawn(worker.run(stopped));
        Ok(Self { shutdown, task: Some(task) })
    }

    /// Stops watching and waits for the task to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ChainWatcher {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct ChainWorker {
    config: ChainWatchConfig,
    upstream: Arc<Upstream>,
    store: Store,
    sink: Arc<dyn EventSink>,
    cursor: WatchCursor,
}

/// Whether a scan step left blocks to scan right away.
enum Step {
    More,
    CaughtUp,
}

#[derive(Deserialize)]
struct BlockHeader {
    hash: B256,
}

async fn call<T: serde::de::DeserializeOwned>(
    upstream: &Upstream,
    method: &str,
    params: serde_json::Value,
) -> Result<T, OpsError> {
    let params = RawValue::from_string(params.to_string())
        .map_err(|e| OpsError::Invalid(format!("{method} params: {e}")))?;
    let raw = upstream.forward(method, Some(&params)).await?;
    serde_json::from_str(raw.get()).map_err(|e| {
        OpsError::Upstream(crate::upstream::UpstreamError::InvalidResponse {
            url: upstream.url().to_string(),
            reason: format!("{method}: {e}"),
        })
    })
}

/// Completes when `stopped` turns true or its sender is gone.
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// The node's head block number.
pub async fn head(upstream: &Upstream) -> Result<u64, OpsError> {
    let head: U64 = call(upstream, "eth_blockNumber", json!([])).await?;
    Ok(head.to())
}

impl ChainWorker {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut failing = false;
        loop {
            let step = tokio::select! {
                _ = until_stopped(&mut stopped) => return,
                step = self.step() => step,
            };
            match step {
                Ok(Step::More) => {
                    failing = false;
                    continue;
                }
                Ok(Step::CaughtUp) => {
                    if failing {
                        tracing::info!(target: "ecrop::watch", "chain watcher reading the node again");
                    }
                    failing = false;
                }
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(target: "ecrop::watch", %error, "chain watcher cannot read the node; retrying");
                }
                Err(error) => {
                    tracing::debug!(target: "ecrop::watch", %error, "chain watcher retry failed")
                }
            }
            tokio::select! {
                _ = until_stopped(&mut stopped) => return,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    async fn step(&mut self) -> Result<Step, OpsError> {
        let head = head(&self.upstream).await?;
        let safe = head.saturating_sub(self.config.confirmations);

        if let Some((block, hash)) = self.cursor.last {
            let now: Option<BlockHeader> =
                call(&self.upstream, "eth_getBlockByNumber", json!([U64::from(block), false]))
                    .await?;
            if now.is_none_or(|b| b.hash != hash) {
                let next = block.saturating_sub(REWIND_BLOCKS).max(self.config.start_block);
                tracing::warn!(target: "ecrop::watch", block, rescan_from = next, "scanned block replaced by a reorganisation; rescanning");
                self.save(WatchCursor { next, last: None }).await?;
                return Ok(Step::More);
            }
        }
        if self.cursor.next > safe {
            return Ok(Step::CaughtUp);
        }

        let from = self.cursor.next;
        let to = safe.min(from.saturating_add(WATCH_RANGE_BLOCKS - 1));
        let addresses: Vec<Address> =
            [self.config.custody, self.config.access_manager].into_iter().flatten().collect();
        let filter = json!([{
            "fromBlock": U64::from(from),
            "toBlock": U64::from(to),
            "address": addresses,
            "topics": [[abi::WithdrawalRequested::SIGNATURE_HASH, abi::RoleGranted::SIGNATURE_HASH]],
        }]);
        let logs: Vec<Log> = call(&self.upstream, "eth_getLogs", filter).await?;
        let events: Vec<Event> = logs.iter().filter_map(|log| self.decode(log)).collect();
        let count = events.len();
        self.sink.enqueue(events).await?;

        let header: Option<BlockHeader> =
            call(&self.upstream, "eth_getBlockByNumber", json!([U64::from(to), false])).await?;
        let last = header.map(|h| (to, h.hash));
        self.save(WatchCursor { next: to + 1, last }).await?;
        if count > 0 {
            tracing::debug!(target: "ecrop::watch", from, to, events = count, "chain events queued");
        }
        Ok(if to < safe { Step::More } else { Step::CaughtUp })
    }

    async fn save(&mut self, cursor: WatchCursor) -> Result<(), OpsError> {
        let mut batch = Batch::new();
        batch.put_json(KEY_CURSOR, &cursor)?;
        self.store.write_async(batch).await?;
        self.cursor = cursor;
        Ok(())
    }

    /// The event of one log, if it is one the watcher reports; others are skipped.
    fn decode(&self, log: &Log) -> Option<Event> {
        if log.removed {
            return None;
        }
        let origin = LogOrigin {
            contract: log.address(),
            block: log.block_number?,
            block_hash: log.block_hash?,
            tx: log.transaction_hash?,
            log_index: log.log_index?,
        };
        let topic = log.topic0()?;
        if *topic == abi::WithdrawalRequested::SIGNATURE_HASH
            && Some(origin.contract) == self.config.custody
        {
            let decoded = abi::WithdrawalRequested::decode_log(&log.inner).ok()?.data;
            let request = WithdrawalRequest {
                withdrawal_id: decoded.withdrawalId,
                client_id: decoded.clientId,
                asset: decoded.asset,
                destination: decoded.destination,
                amount: decoded.amount,
                travel_rule_hash: decoded.travelRuleHash,
                requester: decoded.requester,
                approvals_required: decoded.approvalsRequired,
                timelock_delay: decoded.timelockDelay,
            };
            return Some(Event::custody_withdrawal_requested(&origin, &request));
        }
        if *topic == abi::RoleGranted::SIGNATURE_HASH
            && Some(origin.contract) == self.config.access_manager
        {
            let decoded = abi::RoleGranted::decode_log(&log.inner).ok()?.data;
            let grant = RoleGrant {
                role_id: decoded.roleId,
                account: decoded.account,
                delay: decoded.delay,
                since: decoded.since.to::<u64>(),
                new_member: decoded.newMember,
            };
            return Some(Event::role_granted(&origin, &grant));
        }
        None
    }
}

/// The follower's position against the node's head, as `/readyz` sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FollowerLag {
    /// Last block the follower applied; `None` while it has no state.
    pub synced: Option<u64>,
    /// Highest head known, from the follower or the node.
    pub head: Option<u64>,
    /// `head - synced`, when both are known.
    pub lag: Option<u64>,
}

/// Edge detection of the lag threshold: one change per episode.
#[derive(Debug, Clone, Copy, Default)]
pub struct LagEdge {
    lagging: bool,
}

impl LagEdge {
    /// Feeds a new lag; `Some(true)` when it just went above `threshold`, `Some(false)` when it
    /// just came back within, `None` otherwise (also while the lag is unknown).
    pub fn update(&mut self, lag: Option<u64>, threshold: u64) -> Option<bool> {
        let now = lag? > threshold;
        if now == self.lagging {
            return None;
        }
        self.lagging = now;
        Some(now)
    }
}

/// The running follower monitor.
#[derive(Debug)]
pub struct FollowerMonitor {
    lag: watch::Receiver<FollowerLag>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FollowerMonitor {
    /// Follows `status` and, when given, the `upstream` node's head every [`LAG_POLL`];
    /// raises `follower_lagging` on `sink` when the lag crosses `threshold`.
    pub fn spawn(
        status: watch::Receiver<FollowerStatus>,
        upstream: Option<Arc<Upstream>>,
        sink: Arc<dyn EventSink>,
        metrics: &'static Metrics,
        threshold: u64,
    ) -> Self {
        let (lag_tx, lag) = watch::channel(FollowerLag::default());
        let (shutdown, stopped) = watch::channel(false);
        let task =
            tokio::spawn(monitor(status, upstream, sink, metrics, threshold, lag_tx, stopped));
        Self { lag, shutdown, task: Some(task) }
    }

    /// A receiver of the current lag (for [`super::server::FollowerCheck`]).
    pub fn lag(&self) -> watch::Receiver<FollowerLag> {
        self.lag.clone()
    }

    /// Stops the monitor and waits for it.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FollowerMonitor {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn monitor(
    mut status: watch::Receiver<FollowerStatus>,
    upstream: Option<Arc<Upstream>>,
    sink: Arc<dyn EventSink>,
    metrics: &'static Metrics,
    threshold: u64,
    lag_tx: watch::Sender<FollowerLag>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut edge = LagEdge::default();
    let mut node_head: Option<u64> = None;
    let mut ticker = tokio::time::interval(LAG_POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_open = true;
    loop {
        tokio::select! {
            _ = until_stopped(&mut stopped) => return,
            changed = status.changed(), if status_open => status_open = changed.is_ok(),
            _ = ticker.tick() => {
                if let Some(upstream) = &upstream {
                    // A failed read keeps the last head; the upstream check reports the node.
                    if let Ok(head) = head(upstream).await {
                        node_head = Some(head);
                    }
                }
            }
        }

        let current = status.borrow_and_update().clone();
        let head = match (current.head, node_head) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let lag = match (current.synced_block, head) {
            (Some(synced), Some(head)) => Some(head.saturating_sub(synced)),
            _ => None,
        };
        metrics.follower_synced.set(current.synced_block.unwrap_or(0) as i64);
        metrics.follower_lag.set(lag.or(head).unwrap_or(0) as i64);
        lag_tx.send_if_modified(|old| {
            let new = FollowerLag { synced: current.synced_block, head, lag };
            let changed = *old != new;
            *old = new;
            changed
        });

        if let Some(lagging) = edge.update(lag, threshold) {
            let lag = lag.unwrap_or_default();
            if lagging {
                tracing::warn!(target: "ecrop::perm", lag, threshold, "permissioning follower lagging");
            } else {
                tracing::info!(target: "ecrop::perm", lag, threshold, "permissioning follower caught up");
            }
            sink.notify(Event::follower_lagging(
                lagging,
                lag,
                threshold,
                current.synced_block,
                head,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_edge_fires_once_per_episode() {
        let mut edge = LagEdge::default();
        assert_eq!(edge.update(None, 5), None);
        assert_eq!(edge.update(Some(3), 5), None);
        assert_eq!(edge.update(Some(6), 5), Some(true));
        assert_eq!(edge.update(Some(9), 5), None);
        assert_eq!(edge.update(None, 5), None);
        assert_eq!(edge.update(Some(5), 5), Some(false));
        assert_eq!(edge.update(Some(1), 5), None);
        assert_eq!(edge.update(Some(60), 5), Some(true));
    }

    /// The compiled-in event declarations must be the contracts' own.
    #[test]
    fn event_signatures_match_the_artifacts() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (artifact, name, hash) in [
            (
                "contracts/out/ICustody.sol/ICustody.json",
                "WithdrawalRequested",
                abi::WithdrawalRequested::SIGNATURE_HASH,
            ),
            (
                "contracts/out/EcropAccessManager.sol/EcropAccessManager.json",
                "RoleGranted",
                abi::RoleGranted::SIGNATURE_HASH,
            ),
        ] {
            let text = std::fs::read_to_string(root.join(artifact))
                .unwrap_or_else(|e| panic!("{artifact}: {e}; build the contracts with forge"));
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let abi: alloy::json_abi::JsonAbi =
                serde_json::from_value(json["abi"].clone()).unwrap();
            let event = abi.event(name).and_then(|e| e.first()).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(event.selector(), hash, "{name} in {artifact}");
        }
    }
}
