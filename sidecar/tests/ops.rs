//! Operations: metrics after traffic, health and readiness, webhook deliveries with retries
//! and restarts, configuration errors, and the chain watcher against anvil.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256, aliases::U48},
    sol_types::SolEvent,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use ecrop::{
    config::{FileConfig, UpstreamSettings},
    ops::{
        Event, EventKind, OpsServer, ReadinessCheck, RpcMetricsLayer, WebhookFile, WebhookSettings,
        Webhooks,
        metrics::Metrics,
        server::{FnCheck, FollowerCheck, TokenCheck, UpstreamCheck},
        watch::{ChainWatchConfig, ChainWatcher, FollowerMonitor, abi, stored_cursor},
        webhook::{EventSink, stored_failed, stored_pending},
    },
    permissioning::follower::FollowerStatus,
    signer::{Keyring, PinSource, TokenConfig},
    store::Store,
    upstream::Upstream,
};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use jsonrpsee::{
    RpcModule,
    server::{Server, middleware::rpc::RpcServiceBuilder},
    types::ErrorObjectOwned,
};
use serde_json::{Value, json};
use sha2::Sha256;

/// Upper bound for anything the tests wait for; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

fn leaked_metrics() -> &'static Metrics {
    Box::leak(Box::new(Metrics::new()))
}

/// Polls `probe` until it yields a value, failing after [`PATIENCE`].
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A node stand-in answering `eth_blockNumber` with `0x10` and every other method with null.
async fn fake_node() -> SocketAddr {
    async fn answer(Json(request): Json<Value>) -> Json<Value> {
        let result =
            if request["method"] == "eth_blockNumber" { json!("0x10") } else { Value::Null };
        Json(json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
    }
    serve(Router::new().route("/", post(answer))).await
}

fn upstream(url: &str) -> Arc<Upstream> {
    let settings = UpstreamSettings::new(url, Duration::from_secs(5)).unwrap();
    Arc::new(Upstream::new(settings, 1024 * 1024).unwrap())
}

/// A loopback address nothing listens on.
fn closed_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn metric_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_outcome() {
    let metrics = leaked_metrics();
    let mut module = RpcModule::new(());
    module.register_method("eth_chainId", |_, _, _| Ok::<_, ErrorObjectOwned>("0x7a69")).unwrap();
    module
        .register_method("eth_sign", |_, _, _| {
            Err::<(), _>(ErrorObjectOwned::owned(-32000, "unknown account", None::<()>))
        })
        .unwrap();
    module
        .register_method("eth_sendTransaction", |_, _, _| {
            Err::<(), _>(ErrorObjectOwned::owned(-32003, "refused by rule", None::<()>))
        })
        .unwrap();
    let server = Server::builder()
        .set_rpc_middleware(RpcServiceBuilder::new().layer(RpcMetricsLayer::new(metrics, 1 << 20)))
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let rpc_url = format!("http://{}", server.local_addr().unwrap());
    let handle = server.start(module);

    let client = reqwest::Client::new();
    for method in ["eth_chainId", "eth_chainId", "eth_sign", "eth_sendTransaction", "made_up"] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []});
        client.post(&rpc_url).json(&body).send().await.unwrap();
    }
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_sign", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_fancyNew", "params": []},
    ]);
    let answer: Value =
        client.post(&rpc_url).json(&batch).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer.as_array().unwrap().len(), 3, "{answer}");

    let ops = OpsServer::start("127.0.0.1:0".parse().unwrap(), metrics, Vec::new()).await.unwrap();
    let response = reqwest::get(format!("http://{}/metrics", ops.local_addr())).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    for expected in [
        "ecrop_rpc_requests_total{method=\"eth_chainId\",outcome=\"ok\"} 3",
        "ecrop_rpc_requests_total{method=\"eth_sign\",outcome=\"server_error\"} 2",
        "ecrop_rpc_requests_total{method=\"eth_sendTransaction\",outcome=\"refused\"} 1",
        "ecrop_rpc_requests_total{method=\"other\",outcome=\"method_not_found\"} 1",
        "ecrop_rpc_requests_total{method=\"eth_other\",outcome=\"method_not_found\"} 1",
        "ecrop_signatures_total{method=\"eth_sign\",outcome=\"server_error\"} 2",
        "ecrop_signatures_total{method=\"eth_sendTransaction\",outcome=\"refused\"} 1",
        "ecrop_rpc_request_duration_seconds_count{method=\"eth_chainId\"} 3",
        "ecrop_rpc_in_flight 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(!text.contains("made_up") && !text.contains("eth_fancyNew"), "{text}");
    assert!(
        !text.contains("ecrop_signatures_total{method=\"eth_chainId\""),
        "reads are not signatures"
    );
    for name in [
        "ecrop_nonce_resyncs_total",
        "ecrop_follower_lag_blocks",
        "ecrop_follower_synced_block",
        "ecrop_webhook_pending",
    ] {
        assert!(text.contains(name), "missing {name}");
    }

    ops.stop().await;
    handle.stop().unwrap();
}

fn unusable_keyring() -> Keyring {
    Keyring::new(TokenConfig {
        module: PathBuf::from("/nonexistent/libpkcs11.so"),
        token_label: "none".into(),
        pin: PinSource::Env("ECROP_TEST_NO_SUCH_PIN".into()),
    })
}

fn passing(name: &'static str) -> Box<dyn ReadinessCheck> {
    Box::new(FnCheck::new(name, || Box::pin(async { Ok(()) }) as BoxFuture<'static, _>))
}

#[tokio::test]
async fn readyz_names_each_failing_check() {
    let metrics = leaked_metrics();
    let node = format!("http://{}", fake_node().await);
    let (lag_tx, lag_rx) = tokio::sync::watch::channel(ecrop::ops::watch::FollowerLag {
        synced: Some(100),
        head: Some(102),
        lag: Some(2),
    });

    // Everything fine.
    let ops = OpsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        metrics,
        vec![
            Box::new(UpstreamCheck(upstream(&node))),
            passing("token"),
            Box::new(FollowerCheck::new(lag_rx.clone(), 5)),
        ],
    )
    .await
    .unwrap();
    let base = format!("http://{}", ops.local_addr());
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["ready"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), 3);
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);

    // The follower falls behind.
    lag_tx.send_replace(ecrop::ops::watch::FollowerLag {
        synced: Some(100),
        head: Some(120),
        lag: Some(20),
    });
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let follower = &report["checks"][2];
    assert_eq!(follower["name"], "follower");
    assert_eq!(follower["ok"], false);
    assert_eq!(follower["reason"], "follower at block 100 is 20 blocks behind the head (most 5)");
    assert_eq!(report["checks"][0]["ok"], true);
    assert!(report["checks"][0].get("reason").is_none());
    ops.stop().await;

    // Upstream down and the token unusable; health stays fine.
    let down = format!("http://{}", closed_addr());
    let ops = OpsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        metrics,
        vec![Box::new(UpstreamCheck(upstream(&down))), Box::new(TokenCheck(unusable_keyring()))],
    )
    .await
    .unwrap();
    let base = format!("http://{}", ops.local_addr());
    let (status, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["ready"], false);
    assert_eq!(report["checks"][0]["name"], "upstream");
    assert_eq!(report["checks"][0]["ok"], false);
    assert_eq!(
        report["checks"][0]["reason"],
        format!("upstream unreachable ({down}/): connection refused or failed")
    );
    assert_eq!(report["checks"][1]["name"], "token");
    assert_eq!(report["checks"][1]["ok"], false);
    assert_eq!(
        report["checks"][1]["reason"],
        "pin environment variable not set (ECROP_TEST_NO_SUCH_PIN)"
    );
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);

    // The failed relay is counted in the process-wide registry.
    let global = ecrop::ops::metrics::global().encode();
    assert!(
        metric_line(&global, "ecrop_upstream_errors_total{kind=\"unreachable\"}").is_some(),
        "{global}"
    );
    ops.stop().await;
}

/// What the test receiver does with one attempt.
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    RetryAfter(u64),
    Hang,
    Ok,
}

#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

struct Receiver {
    script: Vec<Reply>,
    /// After the script: succeed when true, else answer 500.
    then_ok: AtomicBool,
    attempts: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

impl Receiver {
    fn new(script: Vec<Reply>, then_ok: bool) -> Arc<Self> {
        Arc::new(Self {
            script,
            then_ok: AtomicBool::new(then_ok),
            attempts: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        })
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn start(self: &Arc<Self>) -> String {
        async fn hook(
            State(me): State<Arc<Receiver>>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let n = me.attempts.fetch_add(1, Ordering::SeqCst);
            me.received.lock().unwrap().push(Received { at: Instant::now(), headers, body });
            let reply = me.script.get(n).copied().unwrap_or(if me.then_ok.load(Ordering::SeqCst) {
                Reply::Ok
            } else {
                Reply::Status(500)
            });
            match reply {
                Reply::Ok => StatusCode::NO_CONTENT.into_response(),
                Reply::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
                Reply::RetryAfter(secs) => {
                    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", secs.to_string())])
                        .into_response()
                }
                Reply::Hang => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    StatusCode::OK.into_response()
                }
            }
        }
        let addr = serve(Router::new().route("/hook", post(hook)).with_state(self.clone())).await;
        format!("http://{addr}/hook")
    }
}

fn secret_file(dir: &std::path::Path, secret: &str) -> PathBuf {
    let path = dir.join("webhook.secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

fn webhook(url: &str, secret: PathBuf, events: Vec<EventKind>) -> WebhookFile {
    WebhookFile {
        url: url.into(),
        secret_file: Some(secret),
        events,
        max_attempts: Some(6),
        initial_backoff_ms: Some(50),
        max_backoff_ms: Some(200),
        timeout_ms: Some(500),
        ..WebhookFile::default()
    }
}

fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhook_retries_until_the_receiver_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let metrics = leaked_metrics();
    let receiver = Receiver::new(vec![Reply::Status(500), Reply::RetryAfter(1), Reply::Hang], true);
    let url = receiver.start().await;
    let secret = "hook-secret-1";
    let settings = WebhookSettings::from_file(&webhook(
        &url,
        secret_file(dir.path(), secret),
        vec![EventKind::TransactionRefused],
    ))
    .unwrap();
    let hooks = Webhooks::start(vec![settings], store.clone(), metrics).unwrap();
    let notifier = hooks.notifier();

    // An event nobody subscribed to is not sent.
    notifier.notify(Event::follower_lagging(true, 50, 10, Some(1), Some(51)));
    let event = Event::transaction_refused(
        "app",
        "eth_sendTransaction",
        Some(Address::repeat_byte(0xaa)),
        Some(Address::repeat_byte(0xbb)),
        "key 0xaa: target not allowed",
    );
    notifier.notify(event.clone());

    eventually("delivery", || {
        (stored_pending(&store).unwrap().is_empty()
            && receiver.attempts.load(Ordering::SeqCst) >= 4)
            .then_some(())
    })
    .await;
    let received = receiver.received();
    assert_eq!(received.len(), 4, "500, 503 with Retry-After, timeout, then success");

    let delivery = received[0].headers["x-ecrop-delivery"].to_str().unwrap().to_owned();
    assert_eq!(delivery.len(), 32);
    for attempt in &received {
        assert_eq!(
            attempt.headers["x-ecrop-delivery"],
            delivery.as_str(),
            "same id on every attempt"
        );
        assert_eq!(attempt.headers["x-ecrop-event"], "transaction_refused");
        assert_eq!(attempt.headers["content-type"], "application/json");
        assert_eq!(attempt.body, received[0].body, "same body on every attempt");
        let timestamp = attempt.headers["x-ecrop-timestamp"].to_str().unwrap();
        let mut signed = timestamp.as_bytes().to_vec();
        signed.push(b'.');
        signed.extend_from_slice(&attempt.body);
        let expected = format!("sha256={}", hmac_hex(secret.as_bytes(), &signed));
        assert_eq!(attempt.headers["x-ecrop-signature"], expected.as_str());
    }
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["id"], event.id);
    assert_eq!(body["event"], "transaction_refused");
    assert_eq!(body["data"]["reason"], "key 0xaa: target not allowed");
    assert_eq!(body["data"]["client"], "app");
    assert!(body["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        received[2].at.duration_since(received[1].at) >= Duration::from_secs(1),
        "Retry-After: 1 honoured"
    );

    let text = metrics.encode();
    for expected in [
        "ecrop_webhook_deliveries_total{event=\"transaction_refused\",outcome=\"retry\"} 3",
        "ecrop_webhook_deliveries_total{event=\"transaction_refused\",outcome=\"delivered\"} 1",
        "ecrop_webhook_pending 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(stored_failed(&store).unwrap().is_empty());
    hooks.stop().await;
}

#[tokio::test]
async fn webhook_gives_up_after_max_attempts_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let metrics = leaked_metrics();
    let receiver = Receiver::new(Vec::new(), false);
    let url = receiver.start().await;
    let mut file = webhook(&url, secret_file(dir.path(), "s"), vec![EventKind::RoleGranted]);
    file.max_attempts = Some(3);
    let hooks =
        Webhooks::start(vec![WebhookSettings::from_file(&file).unwrap()], store.clone(), metrics)
            .unwrap();
    let origin = ecrop::ops::event::LogOrigin {
        contract: Address::repeat_byte(1),
        block: 5,
        block_hash: B256::repeat_byte(2),
        tx: B256::repeat_byte(3),
        log_index: 0,
    };
    let grant = ecrop::ops::event::RoleGrant {
        role_id: 7,
        account: Address::repeat_byte(4),
        delay: 0,
        since: 1,
        new_member: true,
    };
    hooks.notifier().enqueue(vec![Event::role_granted(&origin, &grant)]).await.unwrap();
    assert_eq!(stored_pending(&store).unwrap().len(), 1, "stored before the first attempt");

    let failed = eventually("give-up record", || {
        let failed = stored_failed(&store).unwrap();
        (!failed.is_empty()).then_some(failed)
    })
    .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].delivery.attempts, 3);
    assert_eq!(failed[0].delivery.last_error.as_deref(), Some("http status 500"));
    assert_eq!(failed[0].delivery.event, EventKind::RoleGranted);
    assert!(stored_pending(&store).unwrap().is_empty());
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 3);
    let text = metrics.encode();
    assert!(
        text.contains(
            "ecrop_webhook_deliveries_total{event=\"role_granted\",outcome=\"failed\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("ecrop_webhook_deliveries_total{event=\"role_granted\",outcome=\"retry\"} 2")
    );
    hooks.stop().await;
}

#[tokio::test]
async fn pending_delivery_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let metrics = leaked_metrics();
    let receiver = Receiver::new(Vec::new(), false);
    let url = receiver.start().await;
    let secret = secret_file(dir.path(), "restart-secret");
    let mut file = webhook(&url, secret, vec![EventKind::TransactionRefused]);
    // Long enough that the retry is not made before the dispatcher is stopped.
    file.initial_backoff_ms = Some(3_000);
    file.max_backoff_ms = Some(3_000);

    let store = Store::open(&store_dir).unwrap();
    let hooks =
        Webhooks::start(vec![WebhookSettings::from_file(&file).unwrap()], store.clone(), metrics)
            .unwrap();
    hooks.notifier().notify(Event::transaction_refused("app", "eth_sign", None, None, "rule"));
    let stored = eventually("first failed attempt stored", || {
        let pending = stored_pending(&store).unwrap();
        pending.first().filter(|p| p.attempts >= 1).cloned()
    })
    .await;
    assert_eq!(stored.last_error.as_deref(), Some("http status 500"));
    hooks.stop().await;
    drop(store);

    // The receiver recovers; a new dispatcher on the reopened store delivers.
    receiver.then_ok.store(true, Ordering::SeqCst);
    let store = Store::open(&store_dir).unwrap();
    assert_eq!(stored_pending(&store).unwrap().len(), 1);
    let hooks =
        Webhooks::start(vec![WebhookSettings::from_file(&file).unwrap()], store.clone(), metrics)
            .unwrap();
    eventually("delivery after restart", || {
        stored_pending(&store).unwrap().is_empty().then_some(())
    })
    .await;
    let received = receiver.received();
    let last = received.last().unwrap();
    assert_eq!(last.headers["x-ecrop-delivery"], stored.delivery.as_str());
    assert_eq!(last.body, stored.body.as_bytes());
    assert!(received.len() >= 2);
    assert!(stored_failed(&store).unwrap().is_empty());
    hooks.stop().await;
}

#[test]
fn refuses_bad_webhook_config() {
    let err = FileConfig::parse(
        "[[webhooks]]\nurl = \"ftp://127.0.0.1/hook\"\nsecret_env = \"X\"\nevents = [\"role_granted\"]\n",
    )
    .unwrap_err();
    assert_eq!(err, "line 2, column 7: webhook url scheme (ftp) must be http or https");

    let err = FileConfig::parse(
        "[[webhooks]]\nurl = \"http://127.0.0.1/hook\"\nsecret_env = \"X\"\nevents = [\"role_granted\", \"coffee_ready\"]\n",
    )
    .unwrap_err();
    assert!(err.starts_with("line 4, column "), "{err}");
    assert!(err.contains("unknown variant `coffee_ready`, expected one of `transaction_refused`, `custody_withdrawal_requested`, `role_granted`, `follower_lagging`"), "{err}");

    let err = FileConfig::parse(
        "[[webhooks]]\nurl = \"http://127.0.0.1/hook\"\nsecret = \"hunter2\"\nevents = []\n",
    )
    .unwrap_err();
    assert!(err.contains("unknown field `secret`"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let config = FileConfig::parse(
        "[[webhooks]]\nurl = \"https://127.0.0.1/hook\"\nsecret_file = \"/nonexistent/ecrop.secret\"\nevents = [\"role_granted\"]\n",
    )
    .unwrap();
    let err = WebhookSettings::from_files(&config.webhooks).unwrap_err();
    assert_eq!(
        err.to_string(),
        "webhook secret file not usable (/nonexistent/ecrop.secret): No such file or directory (os error 2)"
    );

    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "do-not-print");
    let mut file = webhook("http://127.0.0.1:1/a", secret.clone(), Vec::new());
    let err = WebhookSettings::from_file(&file).unwrap_err().to_string();
    assert_eq!(
        err,
        "config invalid: webhook (http://127.0.0.1:1/a): events is empty; name at least one event"
    );
    file.events = vec![EventKind::RoleGranted];
    file.max_attempts = Some(0);
    let err = WebhookSettings::from_file(&file).unwrap_err().to_string();
    assert_eq!(
        err,
        "config invalid: webhook (http://127.0.0.1:1/a): max_attempts must be 1 to 100"
    );
    file.max_attempts = None;
    let twice = [file.clone(), file];
    let err = WebhookSettings::from_files(&twice).unwrap_err().to_string();
    assert!(err.contains("configured twice"), "{err}");
    assert!(!err.contains("do-not-print"));
}

/// Collects events instead of delivering them.
#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl Collect {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

impl EventSink for Collect {
    fn notify(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }

    fn enqueue(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), ecrop::ops::OpsError>> {
        self.0.lock().unwrap().extend(events);
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn follower_lag_sets_gauges_and_fires_once_per_episode() {
    let metrics = leaked_metrics();
    let (status_tx, status_rx) = tokio::sync::watch::channel(FollowerStatus::default());
    let sink = Arc::new(Collect::default());
    let monitor = FollowerMonitor::spawn(status_rx, None, sink.clone(), metrics, 5);
    let lag = monitor.lag();

    let publish = |synced: u64, head: u64| {
        status_tx.send_modify(|s| {
            s.synced_block = Some(synced);
            s.head = Some(head);
        })
    };
    publish(10, 12);
    let mut rx = lag.clone();
    eventually("lag 2", || (rx.borrow_and_update().lag == Some(2)).then_some(())).await;
    publish(10, 30);
    eventually("lag event", || (sink.events().len() == 1).then_some(())).await;
    publish(11, 40);
    publish(12, 41);
    eventually("lag 29", || (lag.borrow().lag == Some(29)).then_some(())).await;
    publish(40, 41);
    eventually("recovery event", || (sink.events().len() == 2).then_some(())).await;

    let events = sink.events();
    assert_eq!(events[0].event, EventKind::FollowerLagging);
    assert_eq!(events[0].data["state"], "lagging");
    assert_eq!(events[0].data["lagBlocks"], 20);
    assert_eq!(events[1].data["state"], "recovered");
    assert_eq!(events[1].data["lagBlocks"], 1);
    let text = metrics.encode();
    assert!(text.contains("ecrop_follower_lag_blocks 1"), "{text}");
    assert!(text.contains("ecrop_follower_synced_block 40"), "{text}");
    monitor.stop().await;
    assert_eq!(sink.events().len(), 2);
}

/// Runtime code that emits its calldata as one log: the first `topics` words are the topics,
/// the rest is the data.
fn emitter(topics: u8) -> String {
    let log = format!("{:02x}", 0xa0 + topics);
    let mut code = String::from("366000600037"); // calldatacopy(0, 0, calldatasize)
    for i in (0..topics).rev() {
        code.push_str(&format!("60{:02x}51", i * 32)); // mload(32·i)
    }
    let data_offset = format!("{:02x}", topics * 32);
    code.push_str(&format!("60{data_offset}3603")); // calldatasize - 32·topics
    code.push_str(&format!("60{data_offset}{log}00"));
    format!("0x{code}")
}

async fn rpc(url: &str, method: &str, params: Value) -> Value {
    let answer: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

async fn emit(url: &str, from: &str, contract: Address, log: alloy::primitives::LogData) {
    let mut input = Vec::new();
    for topic in log.topics() {
        input.extend_from_slice(topic.as_slice());
    }
    input.extend_from_slice(&log.data);
    let tx = json!({"from": from, "to": contract, "data": format!("0x{}", hex::encode(input)), "gas": "0x100000"});
    let hash = rpc(url, "eth_sendTransaction", json!([tx])).await;
    let mut receipt = Value::Null;
    for _ in 0..600 {
        receipt = rpc(url, "eth_getTransactionReceipt", json!([hash])).await;
        if !receipt.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(receipt["logs"].as_array().unwrap().len(), 1, "{receipt}");
}

#[tokio::test]
async fn chain_watcher_reports_each_event_once_across_restarts() {
    let anvil_bin = std::env::var("ECROP_ANVIL").unwrap_or_else(|_| "anvil".into());
    let anvil = ecrop::dev::Anvil::start(&anvil_bin, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}; put node_modules/.bin on PATH (source scripts/env.sh)"));
    let url = anvil.url();
    let accounts = rpc(&url, "eth_accounts", json!([])).await;
    let from = accounts[0].as_str().unwrap().to_owned();

    let custody = Address::repeat_byte(0xc1);
    let manager = Address::repeat_byte(0xa1);
    let stranger = Address::repeat_byte(0x5e);
    for (address, topics) in [(custody, 4), (manager, 3), (stranger, 4)] {
        rpc(&url, "anvil_setCode", json!([address, emitter(topics)])).await;
    }
    let withdrawal = abi::WithdrawalRequested {
        withdrawalId: U256::from(42),
        clientId: B256::repeat_byte(0x11),
        asset: Address::repeat_byte(0x22),
        destination: Address::repeat_byte(0x33),
        amount: U256::from(10).pow(U256::from(24)),
        travelRuleHash: B256::repeat_byte(0x44),
        requester: Address::repeat_byte(0x55),
        approvalsRequired: 2,
        timelockDelay: 3600,
    };
    let grant = abi::RoleGranted {
        roleId: 3,
        account: Address::repeat_byte(0x66),
        delay: 0,
        since: U48::from(1_700_000_000u64),
        newMember: true,
    };
    emit(&url, &from, custody, withdrawal.encode_log_data()).await;
    emit(&url, &from, manager, grant.encode_log_data()).await;
    // The same event from a contract the deployment does not name, and a role grant from the
    // custody address, are ignored.
    emit(&url, &from, stranger, withdrawal.encode_log_data()).await;
    let mut wrong = grant.encode_log_data();
    let mut topics = wrong.topics().to_vec();
    topics.push(B256::ZERO);
    wrong.set_topics_unchecked(topics);
    emit(&url, &from, custody, wrong).await;
    rpc(&url, "evm_mine", json!([])).await;

    let dir = tempfile::tempdir().unwrap();
    let deployment = dir.path().join("deployment.json");
    std::fs::write(
        &deployment,
        json!({"chain_id": 31337, "contracts": {"Custody": custody, "EcropAccessManager": manager}, "start_block": 0})
            .to_string(),
    )
    .unwrap();
    let ops = ecrop::ops::OpsFile {
        deployment: Some(deployment),
        watch_poll_ms: Some(100),
        ..Default::default()
    };
    let config = ChainWatchConfig::from_ops(&ops).unwrap().unwrap();
    assert_eq!(config.confirmations, 1);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let node = upstream(&url);

    let first = Arc::new(Collect::default());
    let watcher =
        ChainWatcher::spawn(config.clone(), node.clone(), store.clone(), first.clone()).unwrap();
    let head: u64 = u64::from_str_radix(
        rpc(&url, "eth_blockNumber", json!([])).await.as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    eventually("cursor at the head", || {
        stored_cursor(&store).unwrap().filter(|c| c.next == head).map(|_| ())
    })
    .await;
    watcher.stop().await;
    let events = first.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let w = &events[0];
    assert_eq!(w.event, EventKind::CustodyWithdrawalRequested);
    assert_eq!(w.data["withdrawalId"], "42");
    assert_eq!(w.data["amount"], "1000000000000000000000000");
    assert_eq!(w.data["approvalsRequired"], 2);
    assert_eq!(w.data["timelockDelay"], 3600);
    assert_eq!(w.data["contract"], json!(custody));
    assert_eq!(w.data["requester"], json!(Address::repeat_byte(0x55)));
    let g = &events[1];
    assert_eq!(g.event, EventKind::RoleGranted);
    assert_eq!(g.data["roleId"], "3");
    assert_eq!(g.data["account"], json!(Address::repeat_byte(0x66)));
    assert_eq!(g.data["since"], 1_700_000_000u64);
    assert_eq!(g.data["newMember"], true);

    // After a restart on the same store: nothing again, but a new event is reported.
    let second = Arc::new(Collect::default());
    let watcher = ChainWatcher::spawn(config, node, store.clone(), second.clone()).unwrap();
    emit(&url, &from, manager, grant.encode_log_data()).await;
    rpc(&url, "evm_mine", json!([])).await;
    eventually("the new event", || (!second.events().is_empty()).then_some(())).await;
    watcher.stop().await;
    let events = second.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].event, EventKind::RoleGranted);
    assert_ne!(events[0].id, first.events()[1].id, "another transaction, another id");
    anvil.stop().await;
}

/// The watcher decodes the role grants the real `EcropAccessManager` emits when deployed.
#[tokio::test]
async fn chain_watcher_reads_the_access_managers_own_grants() {
    let anvil_bin = std::env::var("ECROP_ANVIL").unwrap_or_else(|_| "anvil".into());
    let anvil = ecrop::dev::Anvil::start(&anvil_bin, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}; put node_modules/.bin on PATH (source scripts/env.sh)"));
    let url = anvil.url();
    let accounts = rpc(&url, "eth_accounts", json!([])).await;
    let admin: Address = accounts[0].as_str().unwrap().parse().unwrap();

    let artifact = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contracts/out/EcropAccessManager.sol/EcropAccessManager.json");
    let artifact: Value = serde_json::from_str(
        &std::fs::read_to_string(&artifact)
            .unwrap_or_else(|e| panic!("{}: {e}; build the contracts", artifact.display())),
    )
    .unwrap();
    let code = artifact["bytecode"]["object"].as_str().unwrap().trim_start_matches("0x");
    let data = format!("0x{code}{}", hex::encode(B256::left_padding_from(admin.as_slice())));
    let tx = json!({"from": admin, "data": data, "gas": "0x1c9c380"});
    let hash = rpc(&url, "eth_sendTransaction", json!([tx])).await;
    let mut receipt = Value::Null;
    for _ in 0..600 {
        receipt = rpc(&url, "eth_getTransactionReceipt", json!([hash])).await;
        if !receipt.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let manager: Address = receipt["contractAddress"].as_str().unwrap().parse().unwrap();
    rpc(&url, "evm_mine", json!([])).await;

    let dir = tempfile::tempdir().unwrap();
    let config = ChainWatchConfig {
        custody: None,
        access_manager: Some(manager),
        start_block: 0,
        confirmations: 1,
        poll_interval: Duration::from_millis(100),
    };
    let store = Store::open(&dir.path().join("store")).unwrap();
    let sink = Arc::new(Collect::default());
    let watcher = ChainWatcher::spawn(config, upstream(&url), store.clone(), sink.clone()).unwrap();
    eventually("cursor past the deployment", || {
        stored_cursor(&store).unwrap().filter(|c| c.next >= 2).map(|_| ())
    })
    .await;
    watcher.stop().await;

    let grants = sink.events();
    assert!(grants.iter().all(|e| e.event == EventKind::RoleGranted), "{grants:#?}");
    // OpenZeppelin's constructor makes the manager its own admin (role 0); the ecrop
    // constructor then makes the bootstrap admin a platform admin (role 1).
    let to = |account: Address, role: &str| {
        grants.iter().any(|e| e.data["account"] == json!(account) && e.data["roleId"] == role)
    };
    assert!(to(manager, "0"), "{grants:#?}");
    assert!(to(admin, "1"), "{grants:#?}");
    assert!(
        grants.iter().all(|e| e.data["newMember"] == true && e.data["contract"] == json!(manager))
    );
    anvil.stop().await;
}

/// The observers as `ecrop dev` wires them: a send the signing policy refuses reaches a
/// webhook (signed), the metrics (as refused), the audit log (readable while the sidecar
/// runs), and the sidecar stays ready.
#[tokio::test]
async fn a_refused_send_reaches_webhook_metrics_and_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::new(Vec::new(), true);
    let hook_url = receiver.start().await;
    let secret = secret_file(dir.path(), "dev-hook-secret");
    let config = dir.path().join("ecrop.toml");
    std::fs::write(
        &config,
        format!(
            "[signing]\ndefault = \"deny\"\n\n[[webhooks]]\nurl = {}\nsecret_file = {}\nevents = [\"transaction_refused\"]\ninitial_backoff_ms = 50\n",
            toml::Value::String(hook_url),
            toml::Value::String(secret.display().to_string()),
        ),
    )
    .unwrap();
    let mut net = common::DevNet::start_with(1, &["--config", config.to_str().unwrap()]);
    let ops = net.proc.wait_line("ops").split_whitespace().nth(1).unwrap().to_owned();
    let from = net.accounts[0];
    let to = Address::repeat_byte(0x07);

    let answer =
        common::call(&net.endpoint, "eth_sendTransaction", json!([{"from": from, "to": to}])).await;
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(answer["error"]["data"]["rule"], "signing.default", "{answer}");

    let got = eventually("the webhook delivery", || receiver.received().first().cloned()).await;
    let timestamp = got.headers["x-ecrop-timestamp"].to_str().unwrap();
    let signed = [timestamp.as_bytes(), b".", &got.body].concat();
    let expected = format!("sha256={}", hmac_hex(b"dev-hook-secret", &signed));
    assert_eq!(got.headers["x-ecrop-signature"], expected.as_str());
    let event: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(event["event"], "transaction_refused");
    assert_eq!(event["data"]["client"], "dev");
    assert_eq!(event["data"]["method"], "eth_sendTransaction");
    assert_eq!(event["data"]["account"], json!(from));
    assert_eq!(event["data"]["target"], json!(to));
    assert!(event["data"]["reason"].as_str().unwrap().contains("signing.default"), "{event}");

    // A request refused before any method is counted by its HTTP status.
    let rebound = reqwest::Client::new()
        .post(&net.endpoint)
        .header("host", "rebound.example")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);

    let (status, text) = get(&format!("{ops}/metrics")).await;
    assert_eq!(status, 200);
    let line = metric_line(&text, "ecrop_http_refusals_total{status=\"403\"}");
    assert_eq!(line.and_then(|l| l.split_whitespace().last()), Some("1"), "{text}");
    let line = metric_line(
        &text,
        "ecrop_rpc_requests_total{method=\"eth_sendTransaction\",outcome=\"refused\"}",
    );
    assert_eq!(line.and_then(|l| l.split_whitespace().last()), Some("1"), "{text}");
    let (status, body) = get(&format!("{ops}/readyz")).await;
    assert_eq!(status, 200, "{body}");

    // The audit log is read while the sidecar holds the store.
    let export = std::process::Command::new(common::ECROP)
        .args(["audit", "export", "--format", "jsonl", "--store-path"])
        .arg(net.data_dir().join("store"))
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let sends: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|entry| entry["action"] == "eth_sendTransaction")
        .collect();
    // The signing method announced the signature, then the policy refused it: one uid.
    assert_eq!(sends.len(), 2, "{sends:?}");
    let (requested, refusal) = (&sends[0], &sends[1]);
    assert_eq!(requested["kind"], "signature");
    assert_eq!(requested["outcome"]["status"], "none");
    assert_eq!(requested["uid"], refusal["uid"]);
    assert_eq!(refusal["kind"], "refusal");
    assert_eq!(refusal["who"], "dev");
    assert_eq!(refusal["outcome"]["code"], -32003);
}
