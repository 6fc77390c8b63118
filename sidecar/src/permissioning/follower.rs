//! The follower: keeps a [`PermState`] equal to the permissioning contracts, block by block, and
//! publishes it to the rest of the sidecar through a [`tokio::sync::watch`] channel.
//!
//! - **Start.** With a state and cursor in the store (for the same governance contract), it
//!   resumes from the cursor without reading anything again. Otherwise it reads the full state
//!   at the node's head `B` through the paged views (every call pinned to `B`'s hash) and follows
//!   from `B + 1`.
//! - **Following.** Blocks more than [`REORG_WINDOW`] below the head are read as ranges of up to
//!   [`RANGE_BLOCKS`] (`eth_getLogs` by number); the last [`REORG_WINDOW`] blocks one at a time,
//!   each checked against its parent's hash and its logs fetched by block hash. A WebSocket
//!   `newHeads` subscription wakes the follower when configured; polling every
//!   `poll_interval` is always on as the fallback.
//! - **Persisted**, in one atomic, synced RocksDB batch after each processed block or range: the
//!   cursor (block number and hash) always, the state when an event changed it. A crash never
//!   leaves a cursor ahead of its state.
//! - **Reorg.** When a block's parent hash does not match the cursor (or the cursor's block was
//!   replaced), the state is read again at the new head. Deeper reorganisations than
//!   [`REORG_WINDOW`] while catching up by ranges are not detected: QBFT blocks are final.
//! - **Node away.** Failures are retried with exponential backoff ([`BACKOFF_MIN`] to
//!   [`BACKOFF_MAX`]); the first failure of an outage is logged at `warn`, the recovery at `info`,
//!   each retry only at `debug`. The last published state stays in force meanwhile; consumers
//!   see the lag in [`FollowerStatus`] and the decision horizon in the state.
//!
//! The follower itself decides nothing; its consumers fail closed when it has no state yet or is
//! behind the block they are asked about.

use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use alloy::{
    primitives::{Address, B256},
    providers::{Provider, ProviderBuilder, WsConnect},
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Instant, sleep_until},
};

use super::{
    source::{BlockRef, ChainSource, SourceError},
    state::PermState,
};
use crate::store::{Batch, Store, StoreError};

/// Blocks below the head read as ranges, without parent-hash checks. 64 blocks is minutes of a
/// QBFT chain, far beyond any reorganisation anvil's `anvil_reorg` or a dev chain makes.
pub const REORG_WINDOW: u64 = 64;
/// Most blocks per `eth_getLogs` range while catching up; Besu's default
/// `--rpc-max-logs-range` is 5000, so ranges stay within it.
pub const RANGE_BLOCKS: u64 = 2_000;
/// Default polling interval: a QBFT network's usual block period (2 s) halved, so a block is
/// seen within about half a period even without a WebSocket subscription.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// First retry delay after a failure.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Longest retry delay: a node back from a restart is noticed within this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Wait between attempts to (re)open the WebSocket subscription; polling covers the gap.
pub const WS_RETRY: Duration = Duration::from_secs(30);

/// Store key of the state (JSON of [`PermState`]).
const KEY_STATE: &str = "perm/state";
/// Store key of the cursor (JSON of [`Cursor`]).
const KEY_CURSOR: &str = "perm/cursor";

/// The receiving end of the published state: `None` until the first state is known.
pub type StateWatch = watch::Receiver<Option<Arc<PermState>>>;

/// Errors of the follower.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// Reading the chain failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain reorganised below the cursor.
    #[error("chain reorganised (block {block}: expected parent {expected}, found {found})")]
    Reorg {
        /// Block whose parent does not match.
        block: u64,
        /// The cursor's hash.
        expected: B256,
        /// The parent hash the node reports.
        found: B256,
    },
}

/// Settings of the follower.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// HTTP JSON-RPC URL of the node.
    pub http_url: String,
    /// WebSocket URL of the node for `newHeads`; polling only when `None`.
    pub ws_url: Option<String>,
    /// `ConsortiumGovernance`; the registries are read from its `registries()`.
    pub governance: Address,
    /// Polling interval.
    pub poll_interval: Duration,
}

/// The stored cursor: the last block whose events are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Block number.
    pub block: u64,
    /// Block hash.
    pub hash: B256,
}

/// What the follower reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FollowerStatus {
    /// Last block applied, when a state is known.
    pub synced_block: Option<u64>,
    /// Latest head seen on the node.
    pub head: Option<u64>,
    /// `head - synced_block`.
    pub lag: Option<u64>,
    /// Whether the last request to the node succeeded.
    pub connected: bool,
    /// Whether the WebSocket subscription is up.
    pub subscribed: bool,
    /// Whether the state was resumed from the store at start.
    pub resumed: bool,
    /// Full-state reads since start.
    pub snapshots: u64,
    /// `eth_getLogs` requests since start.
    pub log_requests: u64,
    /// Reorganisations handled since start.
    pub reorgs: u64,
    /// The last failure, while the node is away.
    pub last_error: Option<String>,
}

/// A running follower; stops when dropped.
#[derive(Debug)]
pub struct Follower {
    state: StateWatch,
    status: watch::Receiver<FollowerStatus>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Follower {
    /// Loads the stored state (published at once if present) and starts following.
    pub fn spawn(config: FollowerConfig, store: Store) -> Result<Self, FollowError> {
        let source = ChainSource::new(&config.http_url)?;
        let stored = load(&store, config.governance)?;
        let resumed = stored.is_some();
        if let Some(state) = &stored {
            tracing::info!(target: "ecrop::perm", block = state.synced_block(), "resuming from the stored cursor");
        }
        let (state_tx, state) = watch::channel(stored.clone().map(Arc::new));
        let initial = FollowerStatus {
            synced_block: stored.as_ref().map(PermState::synced_block),
            resumed,
            ..FollowerStatus::default()
        };
        let (status_tx, status) = watch::channel(initial);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let worker = Worker {
            config,
            source,
            store,
            state: stored,
            state_tx,
            status_tx,
            shutdown: shutdown_rx,
            reorgs: 0,
        };
        let task = tokio::spawn(worker.run());
        Ok(Self { state, status, shutdown, task: Some(task) })
    }

    /// A receiver of the published state.
    pub fn state(&self) -> StateWatch {
        self.state.clone()
    }

    /// A receiver of the follower's status.
    pub fn status(&self) -> watch::Receiver<FollowerStatus> {
        self.status.clone()
    }

    /// Stops following and waits for the task to end (the store is closed once every handle is
    /// dropped).
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reads the stored state and cursor; `None` when absent or for another governance contract.
pub fn load(store: &Store, governance: Address) -> Result<Option<PermState>, FollowError> {
    let Some(mut state) = store.get_json::<PermState>(KEY_STATE)? else { return Ok(None) };
    if state.contracts().governance != governance {
        tracing::warn!(target: "ecrop::perm", stored = %state.contracts().governance, configured = %governance, "stored state belongs to another governance contract; reading the state again");
        return Ok(None);
    }
    if let Some(cursor) = store.get_json::<Cursor>(KEY_CURSOR)? {
        // The state is rewritten only when it changes; blocks since then changed nothing.
        if cursor.block >= state.synced_block() {
            state.set_synced(cursor.block, cursor.hash);
        }
    }
    Ok(Some(state))
}

/// What one step achieved.
enum Step {
    /// More blocks to process right away.
    More,
    /// At the head: wait for the next block.
    AtHead,
}

struct Worker {
    config: FollowerConfig,
    source: ChainSource,
    store: Store,
    state: Option<PermState>,
    state_tx: watch::Sender<Option<Arc<PermState>>>,
    status_tx: watch::Sender<FollowerStatus>,
    shutdown: watch::Receiver<bool>,
    reorgs: u64,
}

impl Worker {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut failures: u64 = 0;
        let mut heads: Option<futures::stream::BoxStream<'static, ()>> = None;
        let mut next_ws_attempt = Instant::now();

        loop {
            if *self.shutdown.borrow() {
                return;
            }
            if heads.is_none() && Instant::now() >= next_ws_attempt {
                heads = self.subscribe().await;
                next_ws_attempt = Instant::now() + WS_RETRY;
            }

            let wait = match self.step().await {
                Ok(step) => {
                    if failures > 0 {
                        tracing::info!(target: "ecrop::perm", failures, "node reachable again; following");
                        failures = 0;
                    }
                    backoff = BACKOFF_MIN;
                    self.status_tx.send_modify(|s| {
                        s.connected = true;
                        s.last_error = None;
                    });
                    match step {
                        Step::More => continue,
                        Step::AtHead => self.config.poll_interval,
                    }
                }
                Err(error) => {
                    if failures == 0 {
                        tracing::warn!(target: "ecrop::perm", %error, "following the permissioning contracts failed; serving the last state and retrying");
                    } else {
                        tracing::debug!(target: "ecrop::perm", %error, failures, "retry failed");
                    }
                    failures += 1;
                    let message = error.to_string();
                    self.status_tx.send_modify(|s| {
                        s.connected = false;
                        s.last_error = Some(message);
                    });
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            };

            let deadline = Instant::now() + wait;
            let subscribed = heads.is_some();
            self.status_tx.send_if_modified(|s| {
                std::mem::replace(&mut s.subscribed, subscribed) != subscribed
            });
            tokio::select! {
                _ = self.shutdown.changed() => return,
                _ = sleep_until(deadline) => {}
                next = async {
                    match heads.as_mut() {
                        Some(stream) => stream.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if next.is_none() {
                        tracing::debug!(target: "ecrop::perm", "block subscription ended; polling");
                        heads = None;
                    }
                }
            }
        }
    }

    /// Opens the `newHeads` subscription, if a WebSocket URL is configured.
    async fn subscribe(&self) -> Option<futures::stream::BoxStream<'static, ()>> {
        let url = self.config.ws_url.as_ref()?;
        let provider = match ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_ws(WsConnect::new(url.clone()))
            .await
        {
            Ok(provider) => provider,
            Err(error) => {
                tracing::debug!(target: "ecrop::perm", url, %error, "websocket unavailable; polling");
                return None;
            }
        };
        match provider.subscribe_blocks().await {
            Ok(subscription) => {
                tracing::debug!(target: "ecrop::perm", url, "subscribed to new heads");
                // The provider must outlive the stream: it owns the connection.
                let stream = subscription.into_stream().map(move |_| {
                    let _keep = &provider;
                });
                Some(stream.boxed())
            }
            Err(error) => {
                tracing::debug!(target: "ecrop::perm", url, %error, "subscription refused; polling");
                None
            }
        }
    }

    /// Processes the next block or range.
    async fn step(&mut self) -> Result<Step, FollowError> {
        let head = self.source.head().await?;
        self.status_tx.send_modify(|s| {
            s.head = Some(head);
            s.lag = s.synced_block.map(|b| head.saturating_sub(b));
        });

        let Some(state) = &self.state else {
            self.resync(head, "no stored state").await?;
            return Ok(Step::More);
        };
        let cursor = state.synced_block();
        let cursor_hash = state.synced_hash();
        let contracts = *state.contracts();

        if head <= cursor {
            // Same height or lower: the cursor's block must still be the canonical one.
            let canonical = match self.source.block(cursor).await {
                Ok(block) => Some(block.hash),
                Err(SourceError::BlockMissing(_)) => None,
                Err(e) => return Err(e.into()),
            };
            if canonical != Some(cursor_hash) {
                self.reorg(head, cursor, cursor_hash, canonical.unwrap_or_default()).await?;
                return Ok(Step::More);
            }
            return Ok(Step::AtHead);
        }

        if head - cursor > REORG_WINDOW {
            let to = (cursor + RANGE_BLOCKS).min(head - REORG_WINDOW);
            let anchor = self.source.block(cursor).await?;
            if anchor.hash != cursor_hash {
                self.reorg(head, cursor, cursor_hash, anchor.hash).await?;
                return Ok(Step::More);
            }
            let events = self.source.events_of_range(&contracts, cursor + 1, to).await?;
            let end = self.source.block(to).await?;
            self.advance(&events, end, head).await?;
            return Ok(Step::More);
        }

        let next = self.source.block(cursor + 1).await?;
        if next.parent != cursor_hash {
            self.reorg(head, next.number, cursor_hash, next.parent).await?;
            return Ok(Step::More);
        }
        let events = self.source.events_of_block(&contracts, next.hash).await?;
        self.advance(&events, next, head).await?;
        Ok(if next.number >= head { Step::AtHead } else { Step::More })
    }

    /// Applies `events` (all of the blocks up to `end`), persists and publishes.
    async fn advance(
        &mut self,
        events: &[super::state::PermEvent],
        end: BlockRef,
        head: u64,
    ) -> Result<(), FollowError> {
        let Some(current) = &self.state else { return Ok(()) };
        let mut next = current.clone();
        for event in events {
            if let Err(error) = next.apply(event) {
                tracing::warn!(target: "ecrop::perm", %error, block = end.number, "event does not fit the state; reading the state again");
                return self.resync(head, "event out of step").await;
            }
        }
        next.set_synced(end.number, end.hash);

        let mut batch = Batch::new();
        if !events.is_empty() {
            batch.put_json(KEY_STATE, &next)?;
        }
        batch.put_json(KEY_CURSOR, &Cursor { block: end.number, hash: end.hash })?;
        self.store.write_async(batch).await?;

        if !events.is_empty() {
            tracing::debug!(target: "ecrop::perm", block = end.number, events = events.len(), "permissioning changes applied");
        }
        self.publish(next, head);
        Ok(())
    }

    async fn reorg(
        &mut self,
        head: u64,
        block: u64,
        expected: B256,
        found: B256,
    ) -> Result<(), FollowError> {
        let error = FollowError::Reorg { block, expected, found };
        tracing::warn!(target: "ecrop::perm", %error, "reading the state again at the new head");
        self.reorgs += 1;
        let reorgs = self.reorgs;
        self.status_tx.send_modify(|s| s.reorgs = reorgs);
        self.resync(head, "reorganisation").await
    }

    /// Reads the full state at `head` and replaces the stored one.
    async fn resync(&mut self, head: u64, why: &'static str) -> Result<(), FollowError> {
        let block = self.source.block(head).await?;
        let state = self.source.snapshot(self.config.governance, block).await?;
        let mut batch = Batch::new();
        batch.put_json(KEY_STATE, &state)?;
        batch.put_json(KEY_CURSOR, &Cursor { block: block.number, hash: block.hash })?;
        self.store.write_async(batch).await?;
        tracing::info!(target: "ecrop::perm", block = block.number, why, nodes = state.nodes().len(), accounts = state.accounts().len(), validators = state.validators().len(), "permissioning state read from the contracts");
        self.publish(state, head);
        Ok(())
    }

    fn publish(&mut self, state: PermState, head: u64) {
        let synced = state.synced_block();
        let counters = self.source.counters().clone();
        // Status first: whoever sees the new state also sees the status that goes with it.
        self.status_tx.send_modify(|s| {
            s.synced_block = Some(synced);
            s.head = Some(head.max(synced));
            s.lag = Some(head.saturating_sub(synced));
            s.snapshots = counters.snapshots.load(Ordering::Relaxed);
            s.log_requests = counters.log_requests.load(Ordering::Relaxed);
        });
        self.state_tx.send_replace(Some(Arc::new(state.clone())));
        self.state = Some(state);
    }
}
