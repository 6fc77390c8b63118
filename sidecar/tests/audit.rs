//! The audit log end to end: entries written through the library into a temporary store,
//! tampered with by raw RocksDB writes, checked and exported by the real `ecrop` binary; the
//! RPC layer in a small in-process jsonrpsee server.

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Output},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use ecrop::{
    api::Caller,
    audit::{
        AuditLayer, AuditLog, AuditSettings, Entry, Kind, NewEntry, Outcome,
        chain::{self, Item, Range},
        entry::{HEAD_KEY, Head, entry_key},
        layer::AUDIT_UNAVAILABLE,
    },
    cli::audit::format_time,
    store::Store,
};
use jsonrpsee::{
    RpcModule,
    server::{Server, ServerHandle, middleware::rpc::RpcServiceBuilder},
    types::ErrorObjectOwned,
};
use serde_json::{Value, json};

const ECROP: &str = env!("CARGO_BIN_EXE_ecrop");

/// Runs `ecrop audit ARGS` against the store in `dir`.
fn audit(dir: &Path, args: &[&str]) -> Output {
    Command::new(ECROP)
        .arg("audit")
        .args(args)
        .arg("--store-path")
        .arg(dir)
        .env_remove("ECROP_STORE_PATH")
        .env_remove("ECROP_CONFIG")
        .output()
        .expect("running ecrop")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An entry whose strings need CSV quoting.
fn new_entry(i: usize) -> NewEntry {
    NewEntry::new(format!("client-{i}"), Kind::Signature, "eth_sendTransaction")
        .account("0x00000000000000000000000000000000000000aa")
        .target("0x00000000000000000000000000000000000000bb")
        .outcome(if i.is_multiple_of(2) {
            Outcome::ok(format!("0x{i:064x}"))
        } else {
            Outcome::error(-32003, format!("refused, \"rule {i}\"\nsecond line"))
        })
        .detail(format!("role=a, b \"quoted\" {i}"))
}

/// Writes `n` entries through the library and closes the store.
async fn write_entries(dir: &Path, n: usize) {
    let store = Store::open(dir).unwrap();
    let log = AuditLog::open(store).await.unwrap();
    for i in 0..n {
        log.record(new_entry(i)).await.unwrap();
    }
    log.close().await;
}

/// Every entry, in seq order, read through the library.
fn entries(store: &Store) -> Vec<Entry> {
    let mut all = Vec::new();
    chain::read_range(
        store,
        Range::default(),
        |item| {
            if let Item::Entry(entry) = item {
                all.push(*entry);
            }
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    all
}

/// Applies raw writes to the store, as someone with access to its files could.
fn tamper(dir: &Path, change: impl FnOnce(&rocksdb::DB)) {
    let db = rocksdb::DB::open_default(dir).unwrap();
    change(&db);
    db.flush().unwrap();
}

fn raw_get(db: &rocksdb::DB, seq: u64) -> Vec<u8> {
    db.get(entry_key(seq)).unwrap().unwrap()
}

/// Asserts that verify fails, printing exactly `expected` breaks.
fn assert_broken(dir: &Path, expected: &[&str]) {
    let out = audit(dir, &["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let breaks: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("BROKEN ")).collect();
    assert_eq!(breaks, expected, "{text}");
    assert!(
        stderr(&out).contains(&format!("audit log broken: {} breaks in", expected.len())),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn verify_passes_an_intact_chain_and_prints_its_head() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5).await;
    let head: Head = Store::open(dir.path()).unwrap().get_json(HEAD_KEY).unwrap().unwrap();

    let out = audit(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("head: seq 5 hash {}\naudit log intact: 5 entries\n", head.hash)
    );

    // The store named by the configuration file, as `ecrop serve` reads it.
    let config = dir.path().join("ecrop.toml");
    let store_path = toml::Value::String(dir.path().display().to_string());
    std::fs::write(&config, format!("[permissioning]\nstore_path = {store_path}\n")).unwrap();
    let out = Command::new(ECROP)
        .args(["audit", "verify", "--json", "--config"])
        .arg(&config)
        .env_remove("ECROP_STORE_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["entries"], 5);
    assert_eq!(report["head"]["hash"], head.hash.as_str());
    assert_eq!(report["breaks"], json!([]));
}

#[tokio::test]
async fn verify_names_a_modified_entry() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5).await;
    tamper(dir.path(), |db| {
        let mut entry: Value = serde_json::from_slice(&raw_get(db, 3)).unwrap();
        entry["outcome"] = json!({"status": "ok", "result": "0xforged"});
        db.put(entry_key(3), serde_json::to_vec(&entry).unwrap()).unwrap();
    });
    assert_broken(dir.path(), &["seq 3: modified (content does not match its hash)"]);

    let out = audit(dir.path(), &["verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["breaks"][0]["break"], "modified");
    assert_eq!(report["breaks"][0]["seq"], 3);
}

#[tokio::test]
async fn verify_names_a_deleted_entry() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5).await;
    tamper(dir.path(), |db| db.delete(entry_key(4)).unwrap());
    assert_broken(dir.path(), &["seq 4: missing (deleted)"]);
}

#[tokio::test]
async fn verify_names_reordered_entries() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5).await;
    tamper(dir.path(), |db| {
        let (two, three) = (raw_get(db, 2), raw_get(db, 3));
        db.put(entry_key(2), three).unwrap();
        db.put(entry_key(3), two).unwrap();
    });
    assert_broken(
        dir.path(),
        &[
            "seq 2: holds the entry of seq 3 (reordered or inserted)",
            "seq 3: holds the entry of seq 2 (reordered or inserted)",
        ],
    );
}

#[tokio::test]
async fn verify_names_a_truncated_end() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5).await;
    let head: Head = Store::open(dir.path()).unwrap().get_json(HEAD_KEY).unwrap().unwrap();
    tamper(dir.path(), |db| db.delete(entry_key(5)).unwrap());
    let expected = format!(
        "head names seq 5 ({}) but the last entry is seq 4 (end truncated after seq 4)",
        head.hash
    );
    assert_broken(dir.path(), &[expected.as_str()]);

    // The sidecar does not extend such a chain either.
    let store = Store::open(dir.path()).unwrap();
    let err = AuditLog::open(store).await.unwrap_err();
    assert!(err.to_string().starts_with("audit chain broken (head names seq 5 ("), "{err}");
}

/// Cutting the end and moving the head back leaves a consistent chain: only a head hash kept
/// elsewhere shows it.
#[tokio::test]
async fn an_anchor_catches_an_end_cut_with_its_head_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 5).await;
    let stored = entries(&Store::open(dir.path()).unwrap());
    let anchor = stored[4].hash.clone();
    let out = audit(dir.path(), &["verify", "--anchor", &anchor]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("anchor: seq 5;"), "{}", stdout(&out));
    let out = audit(dir.path(), &["verify", "--json", "--anchor", &anchor]);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["anchor"]["seq"], 5, "{report}");

    let earlier = Head { seq: 4, hash: stored[3].hash.clone() };
    tamper(dir.path(), |db| {
        db.delete(entry_key(5)).unwrap();
        db.put(HEAD_KEY, serde_json::to_vec(&earlier).unwrap()).unwrap();
    });
    assert!(audit(dir.path(), &["verify"]).status.success(), "a consistent cut looks intact");
    let out = audit(dir.path(), &["verify", "--anchor", &anchor]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not in the audit log"), "{}", stderr(&out));
    let out = audit(dir.path(), &["verify", "--json", "--anchor", &anchor]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["anchor"]["seq"], Value::Null, "{report}");
}

#[tokio::test]
async fn verify_reports_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = audit(&dir.path().join("none"), &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no database in this directory"), "{}", stderr(&out));
}

#[tokio::test]
async fn exports_a_seq_range_as_json_lines_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 6).await;
    let stored = entries(&Store::open(dir.path()).unwrap());

    let out = audit(dir.path(), &["export", "--from", "seq:2", "--to", "seq:5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3, 4]);
    for line in &lines {
        let mut line = line.clone();
        let time = line.as_object_mut().unwrap().remove("time_utc").unwrap();
        let entry: Entry = serde_json::from_value(line).unwrap();
        assert_eq!(entry, stored[entry.seq as usize - 1]);
        assert_eq!(time, format_time(entry.time_ms));
    }
    assert_eq!(stderr(&out).trim_end(), "audit export: 3 entries written to standard output");

    let file = dir.path().join("export.csv");
    let file_arg = file.to_str().unwrap();
    let args = ["export", "--from", "seq:2", "--to", "seq:5", "--format", "csv", "--out", file_arg];
    let out = audit(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    // Commas, quotes and line breaks are quoted, quotes doubled.
    assert!(text.contains("\"refused, \"\"rule 1\"\"\nsecond line\""), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..3], ["seq", "time_utc", "who"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let entry = &stored[row[0].parse::<usize>().unwrap() - 1];
        assert_eq!(&row[2], entry.who);
        assert_eq!(&row[13], entry.detail.as_deref().unwrap());
        assert_eq!(&row[15], entry.hash);
        match &entry.outcome {
            Outcome::Error { code, message } => {
                assert_eq!(
                    (&row[9], &row[11], &row[12]),
                    ("error", code.to_string().as_str(), message.as_str())
                );
            }
            Outcome::Ok { result } => {
                assert_eq!((&row[9], &row[10]), ("ok", result.as_deref().unwrap()));
            }
            Outcome::None => panic!("no outcome written"),
        }
    }

    // An existing file is kept unless --force.
    let out = audit(dir.path(), &args);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pass --force to replace it"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[tokio::test]
async fn exports_a_time_range() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let log = AuditLog::open(store).await.unwrap();
        for i in 0..8 {
            log.record(new_entry(i)).await.unwrap();
            // Spread the entries over several milliseconds, so the range cuts between them.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        log.close().await;
    }
    let stored = entries(&Store::open(dir.path()).unwrap());
    let (from, to) = (stored[2].time_ms, stored[6].time_ms);
    let expected: Vec<u64> =
        stored.iter().filter(|e| e.time_ms >= from && e.time_ms < to).map(|e| e.seq).collect();
    assert!(expected.contains(&3) && !expected.contains(&7), "{expected:?}");

    let (from, to) = (format_time(from), format_time(to));
    let out = audit(dir.path(), &["export", "--from", &from, "--to", &to]);
    assert!(out.status.success(), "{}", stderr(&out));
    let seqs: Vec<u64> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, expected);
}

#[tokio::test]
async fn exports_an_empty_range_and_refuses_a_malformed_bound() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 3).await;

    let out = audit(dir.path(), &["export", "--from", "seq:10"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out).trim_end(), "audit export: 0 entries written to standard output");

    let out = audit(dir.path(), &["export", "--to", "1970-01-02", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(stdout(&out).starts_with("seq,time_utc,who,kind,action,"));

    let out = audit(dir.path(), &["export", "--from", "seq:3", "--to", "seq:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--from seq:3 comes after --to seq:1"), "{}", stderr(&out));
    let out = audit(dir.path(), &["export", "--from", "2026-02-01", "--to", "2026-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("comes after --to 2026-01-01T00:00:00.000Z"), "{}", stderr(&out));

    let out = audit(dir.path(), &["export", "--from", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "invalid value 'yesterday' for '--from <WHEN>': `yesterday`: expected an RFC 3339 time (2026-01-31T09:00:00Z), a date (2026-01-31) or seq:N"
        ),
        "{}",
        stderr(&out)
    );
    let out = audit(dir.path(), &["export", "--to", "seq:-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("seq must be a whole number"), "{}", stderr(&out));
}

#[tokio::test]
async fn verify_and_export_work_while_the_sidecar_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let log = AuditLog::open(store.clone()).await.unwrap();
    for i in 0..4 {
        log.record(new_entry(i)).await.unwrap();
    }
    // The store is open (and locked) here; the binary reads it as a secondary.
    assert!(Store::open(dir.path()).is_err());
    let out = audit(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).ends_with("audit log intact: 4 entries\n"), "{}", stdout(&out));

    for i in 4..7 {
        log.record(new_entry(i)).await.unwrap();
    }
    let out = audit(dir.path(), &["verify"]);
    assert!(stdout(&out).ends_with("audit log intact: 7 entries\n"), "{}", stdout(&out));
    let out = audit(dir.path(), &["export", "--from", "seq:6"]);
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    log.close().await;
}

#[tokio::test]
async fn a_reopened_log_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 3).await;
    {
        let store = Store::open(dir.path()).unwrap();
        let log = AuditLog::open(store).await.unwrap();
        assert_eq!(log.record(new_entry(3)).await.unwrap(), 4);
        log.record_detached(new_entry(4));
        log.close().await;
    }
    let stored = entries(&Store::open(dir.path()).unwrap());
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[3].prev_hash, stored[2].hash);
    let out = audit(dir.path(), &["verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).ends_with("audit log intact: 5 entries\n"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_form_one_chain_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let log = AuditLog::open(store.clone()).await.unwrap();
    let (tasks, each) = (32usize, 25usize);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..each {
                seqs.push(log.record(new_entry(t * each + i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for handle in handles {
        let mine = handle.await.unwrap();
        // One producer's entries keep their order.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        seqs.extend(mine);
    }
    log.close().await;
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=(tasks * each) as u64).collect::<Vec<_>>());
    let report = chain::verify(&store).unwrap();
    assert!(report.is_intact(), "{:?}", report.breaks);
    assert_eq!(report.entries, (tasks * each) as u64);
}

/// HTTP middleware standing in for authentication: the `x-client` header names the caller.
#[derive(Clone)]
struct CallerFromHeader<S>(S);

impl<S, B> tower::Service<http::Request<B>> for CallerFromHeader<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let client =
            request.headers().get("x-client").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(client) = client {
            request.extensions_mut().insert(Caller { client, role: "dapp".into() });
        }
        self.0.call(request)
    }
}

#[derive(Clone)]
struct CallerLayer;

impl<S> tower::Layer<S> for CallerLayer {
    type Service = CallerFromHeader<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerFromHeader(inner)
    }
}

const SENT_HASH: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

/// A server with the audit layer around fake methods; counts the sends that reached them.
async fn server(log: AuditLog) -> (ServerHandle, String, Arc<AtomicUsize>) {
    let sends = Arc::new(AtomicUsize::new(0));
    let mut module = RpcModule::new(sends.clone());
    module
        .register_async_method("eth_sendTransaction", |params, sends, extensions| async move {
            // As the sidecar's signing methods do: announce, then sign.
            if let Some(announcement) = extensions.get::<Arc<ecrop::audit::Announcement>>() {
                announcement.announce().await?;
            }
            sends.fetch_add(1, Ordering::SeqCst);
            let (tx,): (Value,) = params.parse()?;
            if tx["to"] == "0x00000000000000000000000000000000000000ff" {
                return Err(ErrorObjectOwned::owned(
                    -32003,
                    "target not allowed, rule \"t1\"",
                    None::<()>,
                ));
            }
            Ok::<_, ErrorObjectOwned>(SENT_HASH)
        })
        .unwrap();
    module.register_method("eth_blockNumber", |_, _, _| "0x1").unwrap();
    module.register_method("admin_addPeer", |_, _, _| true).unwrap();
    module
        .register_method("eth_call", |_, _, _| {
            Err::<(), _>(ErrorObjectOwned::owned(-32005, "limit exceeded", None::<()>))
        })
        .unwrap();
    let settings = AuditSettings::from_file(&Default::default()).unwrap();
    let server = Server::builder()
        .set_http_middleware(tower::ServiceBuilder::new().layer(CallerLayer))
        .set_rpc_middleware(RpcServiceBuilder::new().layer(AuditLayer::new(log, settings, 1 << 20)))
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    (server.start(module), url, sends)
}

async fn post(url: &str, client: Option<&str>, body: Value) -> Value {
    let mut request = reqwest::Client::new().post(url).json(&body);
    if let Some(client) = client {
        request = request.header("x-client", client);
    }
    request.send().await.unwrap().json().await.unwrap()
}

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[tokio::test]
async fn the_layer_records_signatures_admin_calls_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let log = AuditLog::open(store.clone()).await.unwrap();
    let (handle, url, sends) = server(log.clone()).await;
    let from = "0x00000000000000000000000000000000000000aa";
    let to = "0x00000000000000000000000000000000000000bb";

    let sent = post(
        &url,
        Some("wallet-app"),
        rpc(7, "eth_sendTransaction", json!([{"from": from, "to": to, "input": "0xa9059cbb00"}])),
    )
    .await;
    assert_eq!(sent["result"], SENT_HASH);
    // The request is on disk before the signature is made, its answer when the answer
    // arrives; both under one uid.
    let stored = entries(&store);
    assert_eq!(stored.len(), 2);
    let (requested, entry) = (&stored[0], &stored[1]);
    assert_eq!(requested.uid, entry.uid);
    assert_eq!(
        (requested.kind, requested.action.as_str()),
        (Kind::Signature, "eth_sendTransaction")
    );
    assert_eq!(requested.outcome, Outcome::None);
    assert_eq!(requested.detail.as_deref(), Some("role=dapp selector=0xa9059cbb stage=requested"));
    assert_eq!(
        (entry.who.as_str(), entry.kind, entry.action.as_str()),
        ("wallet-app", Kind::Signature, "eth_sendTransaction")
    );
    assert_eq!(entry.request_id.as_deref(), Some("7"));
    assert_eq!((entry.account.as_deref(), entry.target.as_deref()), (Some(from), Some(to)));
    assert_eq!(entry.outcome, Outcome::ok(SENT_HASH));
    assert_eq!(entry.detail.as_deref(), Some("role=dapp selector=0xa9059cbb"));

    // A refused send, a read (not recorded), an admin call and a refused read, in one batch,
    // without a caller.
    let batch = json!([
        rpc(
            1,
            "eth_sendTransaction",
            json!([{"from": from, "to": "0x00000000000000000000000000000000000000ff"}])
        ),
        rpc(2, "eth_blockNumber", json!([])),
        rpc(3, "admin_addPeer", json!(["enode://ab@127.0.0.1:30303"])),
        rpc(4, "eth_call", json!([{}])),
    ]);
    let answers = post(&url, None, batch).await;
    assert_eq!(answers.as_array().unwrap().len(), 4);
    let stored = entries(&store);
    let summary: Vec<(u64, &str, Kind, &str, Option<&str>)> = stored
        .iter()
        .map(|e| (e.seq, e.who.as_str(), e.kind, e.action.as_str(), e.request_id.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "wallet-app", Kind::Signature, "eth_sendTransaction", Some("7")),
            (2, "wallet-app", Kind::Signature, "eth_sendTransaction", Some("7")),
            (3, "unidentified", Kind::Signature, "eth_sendTransaction", Some("1")),
            (4, "unidentified", Kind::Refusal, "eth_sendTransaction", Some("1")),
            (5, "unidentified", Kind::Admin, "admin_addPeer", Some("3")),
            (6, "unidentified", Kind::Refusal, "eth_call", Some("4")),
        ]
    );
    assert_eq!(stored[3].outcome, Outcome::error(-32003, "target not allowed, rule \"t1\""));
    assert_eq!(stored[4].outcome, Outcome::ok("true"));
    assert_eq!(stored[4].detail.as_deref(), Some("params=[\"enode://ab@127.0.0.1:30303\"]"));
    assert_eq!(stored[5].outcome, Outcome::error(-32005, "limit exceeded"));
    assert_eq!(stored[5].detail, None);
    assert_eq!(sends.load(Ordering::SeqCst), 2);

    // With the log closed, signing is refused before it reaches the method; reads still pass.
    log.close().await;
    let refused = post(
        &url,
        Some("wallet-app"),
        rpc(9, "eth_sendTransaction", json!([{"from": from, "to": to}])),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32002);
    assert_eq!(refused["error"]["message"], AUDIT_UNAVAILABLE);
    assert_eq!(sends.load(Ordering::SeqCst), 2);
    let read = post(&url, None, rpc(10, "eth_blockNumber", json!([]))).await;
    assert_eq!(read["result"], "0x1");

    handle.stop().unwrap();
    handle.stopped().await;
    let report = chain::verify(&store).unwrap();
    assert!(report.is_intact(), "{:?}", report.breaks);
}
