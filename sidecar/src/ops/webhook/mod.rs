//! Webhook deliveries: each [`Event`] is POSTed as JSON to every receiver subscribed to its
//! kind, signed with the receiver's HMAC secret, and retried with exponential backoff.
//!
//! - **Request.** Body `{id, event, time, data}`, fixed when the delivery is created. Headers
//!   `X-Ecrop-Event`, `X-Ecrop-Delivery` (the same on every attempt, so receivers can
//!   deduplicate), `X-Ecrop-Timestamp` (unix seconds of the attempt) and
//!   `X-Ecrop-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//! - **Retries.** Any answer other than 2xx, a timeout or a connection failure is retried after
//!   `initial_backoff · 2^(attempt-1)`, capped at `max_backoff`, with the upper half jittered;
//!   a `Retry-After` header (seconds or HTTP date) replaces that delay, up to
//!   [`MAX_RETRY_AFTER`]. Redirects are not followed. After `max_attempts` the delivery is
//!   given up and recorded as failed.
//! - **Persistence.** Every pending delivery is stored (`webhook/pending/<id>`, listed in
//!   `webhook/index/pending`) before its first attempt, updated after each failed attempt and
//!   removed on success; given-up deliveries are kept under `webhook/failed/<id>` (the last
//!   [`MAX_FAILED_KEPT`]). A restart resumes pending deliveries with their attempt counts. An
//!   attempt cut short by a crash is made again: delivery is at least once.
//! - **Never logged**: secrets and bodies.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap, HashSet},
    sync::Arc,
    time::{Duration, SystemTime},
};

use futures::future::BoxFuture;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::{JoinHandle, JoinSet},
};

use super::{
    OpsError,
    event::{Event, EventKind},
    metrics::Metrics,
};
use crate::store::{Batch, Store};

mod settings;

pub(in crate::ops) use settings::deserialize_url;
pub use settings::{
    DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF_MS, DEFAULT_TIMEOUT_MS,
    MAX_ATTEMPTS_LIMIT, WebhookSettings, check_url, signature, verify_signature,
};

/// Longest `Retry-After` honoured; a receiver asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);
/// Given-up deliveries kept in the store for inspection.
pub const MAX_FAILED_KEPT: usize = 1_000;
/// Most deliveries pending at once; events beyond are dropped (and counted) rather than let the
/// store and memory grow without bound while a receiver is down.
pub const MAX_PENDING: usize = 10_000;
/// Attempts in flight at once, across receivers.
const MAX_CONCURRENT_ATTEMPTS: usize = 16;
/// Events queued between [`Notifier::notify`] and the dispatcher.
const NOTIFY_QUEUE: usize = 1_024;

const KEY_PENDING_INDEX: &str = "webhook/index/pending";
const KEY_FAILED_INDEX: &str = "webhook/index/failed";
const PENDING_PREFIX: &str = "webhook/pending/";
const FAILED_PREFIX: &str = "webhook/failed/";

/// Header carrying the event name.
pub const HEADER_EVENT: &str = "X-Ecrop-Event";
/// Header carrying the delivery id.
pub const HEADER_DELIVERY: &str = "X-Ecrop-Delivery";
/// Header carrying the attempt's unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "X-Ecrop-Timestamp";
/// Header carrying the HMAC signature.
pub const HEADER_SIGNATURE: &str = "X-Ecrop-Signature";

/// A delivery waiting for its next attempt, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingDelivery {
    /// Delivery id (the `X-Ecrop-Delivery` header).
    pub delivery: String,
    /// Receiver URL.
    pub url: String,
    /// Kind of event.
    pub event: EventKind,
    /// The request body, fixed at creation.
    pub body: String,
    /// Attempts made and failed so far.
    pub attempts: u32,
    /// Unix time in milliseconds of the next attempt.
    pub next_at_ms: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A delivery given up after its last attempt, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedDelivery {
    /// The delivery as it was after its last attempt.
    #[serde(flatten)]
    pub delivery: PendingDelivery,
    /// When it was given up (RFC 3339).
    pub failed_at: String,
}

/// Reads the pending deliveries in `store` (for inspection and tests).
pub fn stored_pending(store: &Store) -> Result<Vec<PendingDelivery>, OpsError> {
    let ids: Vec<String> = store.get_json(KEY_PENDING_INDEX)?.unwrap_or_default();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = store.get_json(&format!("{PENDING_PREFIX}{id}"))? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Reads the given-up deliveries in `store`, oldest first.
pub fn stored_failed(store: &Store) -> Result<Vec<FailedDelivery>, OpsError> {
    let ids: Vec<String> = store.get_json(KEY_FAILED_INDEX)?.unwrap_or_default();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(f) = store.get_json(&format!("{FAILED_PREFIX}{id}"))? {
            out.push(f);
        }
    }
    Ok(out)
}

/// A sink for events; [`Notifier`] is the real one, tests may collect instead.
pub trait EventSink: Send + Sync {
    /// Queues `event` without waiting; it may be lost if the process stops right after.
    fn notify(&self, event: Event);
    /// Queues `events` and returns once they are stored (so a caller may advance its own
    /// cursor past them).
    fn enqueue(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), OpsError>>;
}

enum Command {
    Notify(Event),
    Enqueue(Vec<Event>, oneshot::Sender<Result<(), OpsError>>),
}

/// Handle to raise events; cheap to clone. A notifier without receivers does nothing.
#[derive(Clone, Debug)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Command>>,
    subscribed: Arc<HashSet<EventKind>>,
    metrics: &'static Metrics,
}

impl Notifier {
    /// A notifier that drops every event (no webhooks configured).
    pub fn disabled() -> Self {
        Self { tx: None, subscribed: Arc::default(), metrics: super::metrics::global() }
    }

    /// Whether some receiver wants events of `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.tx.is_some() && self.subscribed.contains(&kind)
    }
}

impl Notifier {
    /// Queues `event` for every receiver subscribed to its kind, without waiting: never blocks
    /// the caller. When the queue is full the event is dropped, counted (`dropped`) and logged.
    pub fn notify(&self, event: Event) {
        EventSink::notify(self, event);
    }

    /// Queues `events` and returns once their deliveries are stored.
    pub async fn enqueue(&self, events: Vec<Event>) -> Result<(), OpsError> {
        EventSink::enqueue(self, events).await
    }
}

impl EventSink for Notifier {
    fn notify(&self, event: Event) {
        let Some(tx) = &self.tx else { return };
        if !self.subscribed.contains(&event.event) {
            return;
        }
        let kind = event.event;
        if tx.try_send(Command::Notify(event)).is_err() {
            self.metrics.webhook_delivery(kind.name(), "dropped");
            tracing::warn!(target: "ecrop::webhook", event = kind.name(), "webhook queue full or stopped; event dropped");
        }
    }

    fn enqueue(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), OpsError>> {
        Box::pin(async move {
            let Some(tx) = &self.tx else { return Ok(()) };
            let events: Vec<Event> =
                events.into_iter().filter(|e| self.subscribed.contains(&e.event)).collect();
            if events.is_empty() {
                return Ok(());
            }
            let (reply, stored) = oneshot::channel();
            tx.send(Command::Enqueue(events, reply)).await.map_err(|_| OpsError::Stopped)?;
            stored.await.map_err(|_| OpsError::Stopped)?
        })
    }
}

/// The running webhook dispatcher.
#[derive(Debug)]
pub struct Webhooks {
    notifier: Notifier,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Webhooks {
    /// Loads the stored pending deliveries and starts delivering. Deliveries stored for a URL
    /// no longer configured are recorded as failed.
    pub fn start(
        hooks: Vec<WebhookSettings>,
        store: Store,
        metrics: &'static Metrics,
    ) -> Result<Self, OpsError> {
        let subscribed: HashSet<EventKind> =
            hooks.iter().flat_map(|h| h.events.iter().copied()).collect();
        let mut receivers = HashMap::new();
        for settings in hooks {
            let client = reqwest::Client::builder()
                .timeout(settings.timeout)
                .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("ecrop/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| OpsError::Invalid(format!("webhook http client: {e}")))?;
            receivers.insert(settings.url.to_string(), Arc::new(Receiver { settings, client }));
        }
        let (tx, rx) = mpsc::channel(NOTIFY_QUEUE);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut dispatcher = Dispatcher {
            receivers,
            store,
            metrics,
            pending: BTreeMap::new(),
            queue: BinaryHeap::new(),
            in_flight: HashSet::new(),
            attempts: JoinSet::new(),
        };
        dispatcher.load()?;
        let count = dispatcher.pending.len();
        if count > 0 {
            tracing::info!(target: "ecrop::webhook", pending = count, "resuming stored webhook deliveries");
        }
        let task = tokio::spawn(dispatcher.run(rx, shutdown_rx));
        let notifier = Notifier { tx: Some(tx), subscribed: Arc::new(subscribed), metrics };
        Ok(Self { notifier, shutdown, task: Some(task) })
    }

    /// A handle to raise events.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Stops delivering; attempts in flight are cut off and made again after a restart.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Receiver {
    settings: WebhookSettings,
    client: reqwest::Client,
}

/// Result of one attempt.
enum Attempt {
    Delivered,
    Failed { reason: String, retry_after: Option<Duration> },
}

struct Dispatcher {
    receivers: HashMap<String, Arc<Receiver>>,
    store: Store,
    metrics: &'static Metrics,
    pending: BTreeMap<String, PendingDelivery>,
    /// Due times of pending deliveries not in flight, earliest first.
    queue: BinaryHeap<Reverse<(u64, String)>>,
    in_flight: HashSet<String>,
    attempts: JoinSet<(String, Attempt)>,
}

fn now_ms() -> u64 {
    u64::try_from(crate::clock::now_ms()).unwrap_or(0)
}

/// A delivery's id: the first 16 bytes of SHA-256(event id ‖ receiver URL), hex; the same
/// event for the same receiver always gets the same id.
fn delivery_id(event_id: &str, url: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(event_id.as_bytes());
    hash.update([0]);
    hash.update(url.as_bytes());
    hex::encode(&hash.finalize()[..16])
}

impl Dispatcher {
    fn load(&mut self) -> Result<(), OpsError> {
        let stored = stored_pending(&self.store)?;
        let mut orphans = Vec::new();
        for delivery in stored {
            if self.receivers.contains_key(&delivery.url) {
                self.queue.push(Reverse((delivery.next_at_ms, delivery.delivery.clone())));
                self.pending.insert(delivery.delivery.clone(), delivery);
            } else {
                orphans.push(delivery);
            }
        }
        for mut delivery in orphans {
            delivery.last_error = Some("webhook no longer configured".into());
            tracing::warn!(target: "ecrop::webhook", delivery = %delivery.delivery, url = %delivery.url, "stored delivery for a webhook no longer configured; recorded as failed");
            self.pending.insert(delivery.delivery.clone(), delivery.clone());
            self.give_up(delivery)?;
        }
        self.metrics.webhook_pending.set(self.pending.len() as i64);
        Ok(())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>, mut shutdown: watch::Receiver<bool>) {
        let mut open = true;
        loop {
            self.launch_due();
            let wait = self.next_wait();
            tokio::select! {
                _ = shutdown.changed() => break,
                command = rx.recv(), if open => match command {
                    Some(command) => self.handle(command).await,
                    None => open = false,
                },
                Some(joined) = self.attempts.join_next(), if !self.attempts.is_empty() => {
                    match joined {
                        Ok((id, attempt)) => self.finish(id, attempt).await,
                        Err(error) => tracing::warn!(target: "ecrop::webhook", %error, "delivery attempt task failed"),
                    }
                }
                _ = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
            }
        }
        self.attempts.shutdown().await;
    }

    /// Time until the earliest queued delivery is due, if any can start.
    fn next_wait(&self) -> Option<Duration> {
        if self.in_flight.len() >= MAX_CONCURRENT_ATTEMPTS {
            return None;
        }
        let Reverse((due, _)) = self.queue.peek()?;
        Some(Duration::from_millis(due.saturating_sub(now_ms())))
    }

    fn launch_due(&mut self) {
        let now = now_ms();
        while self.in_flight.len() < MAX_CONCURRENT_ATTEMPTS {
            let Some(Reverse((due, _))) = self.queue.peek() else { break };
            if *due > now {
                break;
            }
            let Some(Reverse((_, id))) = self.queue.pop() else { break };
            let Some(delivery) = self.pending.get(&id) else { continue };
            let Some(receiver) = self.receivers.get(&delivery.url).cloned() else { continue };
            self.in_flight.insert(id.clone());
            let delivery = delivery.clone();
            self.attempts.spawn(async move {
                let outcome = attempt(&receiver, &delivery).await;
                (delivery.delivery, outcome)
            });
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Notify(event) => {
                if let Err(error) = self.add(vec![event], true).await {
                    tracing::warn!(target: "ecrop::webhook", %error, "webhook delivery not stored; it is attempted but would not survive a restart");
                }
            }
            Command::Enqueue(events, reply) => {
                let _ = reply.send(self.add(events, false).await);
            }
        }
    }

    /// Creates, stores and queues the deliveries of `events`. On a store failure the error is
    /// returned, and the deliveries are still attempted when `keep_unstored` (else the caller
    /// offers the events again).
    async fn add(&mut self, events: Vec<Event>, keep_unstored: bool) -> Result<(), OpsError> {
        let now = now_ms();
        let mut created = Vec::new();
        for event in &events {
            let body = match serde_json::to_string(event) {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(target: "ecrop::webhook", %error, "event not encodable; dropped");
                    continue;
                }
            };
            for receiver in self.receivers.values() {
                if !receiver.settings.events.contains(&event.event) {
                    continue;
                }
                let url = receiver.settings.url.to_string();
                let id = delivery_id(&event.id, &url);
                if self.pending.contains_key(&id)
                    || created.iter().any(|d: &PendingDelivery| d.delivery == id)
                {
                    continue;
                }
                if self.pending.len() + created.len() >= MAX_PENDING {
                    self.metrics.webhook_delivery(event.event.name(), "dropped");
                    tracing::warn!(target: "ecrop::webhook", event = event.event.name(), pending = MAX_PENDING, "too many pending webhook deliveries; event dropped");
                    continue;
                }
                created.push(PendingDelivery {
                    delivery: id,
                    url,
                    event: event.event,
                    body: body.clone(),
                    attempts: 0,
                    next_at_ms: now,
                    last_error: None,
                });
            }
        }
        if created.is_empty() {
            return Ok(());
        }

        let mut batch = Batch::new();
        for delivery in &created {
            batch.put_json(&format!("{PENDING_PREFIX}{}", delivery.delivery), delivery)?;
        }
        let mut ids: Vec<&String> = self.pending.keys().collect();
        ids.extend(created.iter().map(|d| &d.delivery));
        batch.put_json(KEY_PENDING_INDEX, &ids)?;
        let stored = self.store.write_async(batch).await;
        if stored.is_err() && !keep_unstored {
            return Ok(stored?);
        }

        for delivery in created {
            self.queue.push(Reverse((delivery.next_at_ms, delivery.delivery.clone())));
            self.pending.insert(delivery.delivery.clone(), delivery);
        }
        self.metrics.webhook_pending.set(self.pending.len() as i64);
        Ok(stored?)
    }

    async fn finish(&mut self, id: String, outcome: Attempt) {
        self.in_flight.remove(&id);
        let Some(mut delivery) = self.pending.get(&id).cloned() else { return };
        let event = delivery.event.name();
        match outcome {
            Attempt::Delivered => {
                self.metrics.webhook_delivery(event, "delivered");
                tracing::debug!(target: "ecrop::webhook", delivery = %id, event, attempts = delivery.attempts + 1, "webhook delivered");
                self.pending.remove(&id);
                // The gauge first: whoever sees the store without the delivery sees the gauge
                // without it too.
                self.metrics.webhook_pending.set(self.pending.len() as i64);
                let mut batch = Batch::new();
                batch.delete(&format!("{PENDING_PREFIX}{id}"));
                let result = batch
                    .put_json(KEY_PENDING_INDEX, &self.pending.keys().collect::<Vec<_>>())
                    .map(|()| batch);
                self.persist(result).await;
            }
            Attempt::Failed { reason, retry_after } => {
                delivery.attempts += 1;
                delivery.last_error = Some(reason.clone());
                let Some(receiver) = self.receivers.get(&delivery.url).cloned() else { return };
                if delivery.attempts >= receiver.settings.max_attempts {
                    self.metrics.webhook_delivery(event, "failed");
                    tracing::warn!(target: "ecrop::webhook", delivery = %id, event, url = %delivery.url, attempts = delivery.attempts, %reason, "webhook delivery given up");
                    if let Err(error) = self.give_up(delivery) {
                        tracing::warn!(target: "ecrop::webhook", %error, "failed delivery not recorded");
                    }
                } else {
                    self.metrics.webhook_delivery(event, "retry");
                    let delay = retry_after
                        .map(|d| d.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| receiver.settings.backoff(delivery.attempts));
                    delivery.next_at_ms = now_ms().saturating_add(delay.as_millis() as u64);
                    tracing::debug!(target: "ecrop::webhook", delivery = %id, event, attempts = delivery.attempts, %reason, retry_in_ms = delay.as_millis() as u64, "webhook attempt failed");
                    let mut batch = Batch::new();
                    let result =
                        batch.put_json(&format!("{PENDING_PREFIX}{id}"), &delivery).map(|()| batch);
                    self.queue.push(Reverse((delivery.next_at_ms, id.clone())));
                    self.pending.insert(id, delivery);
                    self.persist(result).await;
                }
            }
        }
    }

    async fn persist(&self, batch: Result<Batch, crate::store::StoreError>) {
        let result = match batch {
            Ok(batch) => self.store.write_async(batch).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::warn!(target: "ecrop::webhook", %error, "webhook delivery state not stored");
        }
    }

    /// Moves `delivery` from pending to failed, keeping the last [`MAX_FAILED_KEPT`].
    fn give_up(&mut self, delivery: PendingDelivery) -> Result<(), OpsError> {
        let id = delivery.delivery.clone();
        self.pending.remove(&id);
        self.metrics.webhook_pending.set(self.pending.len() as i64);
        let mut failed: Vec<String> = self.store.get_json(KEY_FAILED_INDEX)?.unwrap_or_default();
        let mut batch = Batch::new();
        failed.retain(|f| *f != id);
        failed.push(id.clone());
        while failed.len() > MAX_FAILED_KEPT {
            let old = failed.remove(0);
            batch.delete(&format!("{FAILED_PREFIX}{old}"));
        }
        let record = FailedDelivery { delivery, failed_at: super::event::now_rfc3339() };
        batch.delete(&format!("{PENDING_PREFIX}{id}"));
        batch.put_json(&format!("{FAILED_PREFIX}{id}"), &record)?;
        batch.put_json(KEY_FAILED_INDEX, &failed)?;
        batch.put_json(KEY_PENDING_INDEX, &self.pending.keys().collect::<Vec<_>>())?;
        // Rare and small: written in place rather than through the blocking pool.
        self.store.write(batch)?;
        Ok(())
    }
}

/// Makes one attempt of `delivery`.
async fn attempt(receiver: &Receiver, delivery: &PendingDelivery) -> Attempt {
    let timestamp = (now_ms() / 1_000).to_string();
    let signature =
        signature(receiver.settings.secret.expose_secret(), &timestamp, delivery.body.as_bytes());
    let sent = receiver
        .client
        .post(receiver.settings.url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(HEADER_EVENT, delivery.event.name())
        .header(HEADER_DELIVERY, &delivery.delivery)
        .header(HEADER_TIMESTAMP, &timestamp)
        .header(HEADER_SIGNATURE, signature)
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt::Delivered,
        Ok(response) => Attempt::Failed {
            reason: format!("http status {}", response.status().as_u16()),
            retry_after: retry_after(response.headers()),
        },
        Err(error) => {
            let reason = if error.is_timeout() {
                "timed out".to_owned()
            } else if error.is_connect() {
                "connection failed".to_owned()
            } else {
                error.without_url().to_string()
            };
            Attempt::Failed { reason, retry_after: None }
        }
    }
}

/// A `Retry-After` header as a delay: delta seconds or an HTTP date.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_in_both_forms() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(http::header::RETRY_AFTER, date.parse().unwrap());
        let delay = retry_after(&headers).unwrap();
        assert!(delay > Duration::from_secs(100) && delay <= Duration::from_secs(120), "{delay:?}");
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
