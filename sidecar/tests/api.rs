//! Authentication, the API permission matrix and per-client limits of the JSON-RPC endpoint,
//! against real `ecrop serve` / `ecrop dev` processes on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use alloy::primitives::Address;
use common::{DevNet, ECROP, Serve, add_api_client, require_tools};
use ecrop::dev::Anvil;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// Runs `ecrop` with `args`.
fn ecrop(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(ECROP).args(args).output().expect("running ecrop");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `ecrop api-clients ARGS --api-clients FILE`, which must succeed; returns stdout.
fn clients_ok(file: &Path, args: &[&str]) -> String {
    let mut all = vec!["api-clients"];
    all.extend_from_slice(args);
    all.extend(["--api-clients", file.to_str().unwrap()]);
    let (code, stdout, stderr) = ecrop(&all);
    assert_eq!(code, 0, "ecrop {all:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs `ecrop api-clients ARGS --api-clients FILE`, which must fail with status 1; returns
/// stderr.
fn clients_fail(file: &Path, args: &[&str]) -> String {
    let mut all = vec!["api-clients"];
    all.extend_from_slice(args);
    all.extend(["--api-clients", file.to_str().unwrap()]);
    let (code, stdout, stderr) = ecrop(&all);
    assert_eq!(code, 1, "ecrop {all:?} should fail:\n{stdout}\n{stderr}");
    stderr
}

/// Adds an API-key client through the CLI and returns its key.
fn add_key(file: &Path, id: &str, role: &str, extra: &[&str]) -> String {
    let mut args = vec!["add", id, "--role", role];
    args.extend_from_slice(extra);
    clients_ok(file, &args).trim().to_owned()
}

async fn anvil() -> Anvil {
    require_tools();
    let bin = std::env::var("ECROP_ANVIL").unwrap_or_else(|_| "anvil".into());
    Anvil::start(&bin, &[]).await.unwrap()
}

/// A SoftHSM configuration with an empty token directory: `serve` runs without keys.
fn softhsm_conf(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()),
    )
    .unwrap();
    conf
}

/// `ecrop serve` in `dir` with the configuration `config`, its clients file `dir/clients.json`.
fn serve(dir: &Path, upstream: &str, config: &str, extra: &[&str]) -> Serve {
    let config_path = dir.join("ecrop.toml");
    std::fs::write(&config_path, config).unwrap();
    let clients = dir.join("clients.json");
    let conf = softhsm_conf(dir);
    let mut args = vec![
        "--config",
        config_path.to_str().unwrap(),
        "--api-clients",
        clients.to_str().unwrap(),
        "--upstream",
        upstream,
    ];
    args.extend_from_slice(extra);
    Serve::start_raw(&args, &[("SOFTHSM2_CONF", conf.as_path())], dir.join("serve.log"))
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(url: &str, auth: Option<&str>, body: String) -> Answer {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("http post");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

async fn rpc(url: &str, auth: Option<&str>, method: &str, params: Value) -> Answer {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    post(url, auth, body.to_string()).await
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
}

fn jwt(alg: Algorithm, private_pem: &str, claims: Value) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_secret(private_pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap()
}

fn assert_unauthorized(answer: &Answer, needle: &str) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], -40100, "{}", answer.body);
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message} lacks {needle}");
    assert_eq!(answer.headers.get("www-authenticate").unwrap(), "Bearer");
}

fn assert_result(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("result").is_some(), "{}", answer.body);
}

/// Permitted by the matrix: answered by the method or the node, not refused by the sidecar.
fn assert_not_refused(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let code = answer.body["error"]["code"].as_i64();
    assert!(!matches!(code, Some(-40300 | -40100 | -32005)), "{}", answer.body);
}

fn assert_not_permitted(answer: &Answer, needles: &[&str]) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], -40300, "{}", answer.body);
    let message = answer.body["error"]["message"].as_str().unwrap();
    for needle in needles {
        assert!(message.contains(needle), "{message} lacks {needle}");
    }
}

#[tokio::test]
async fn missing_invalid_and_forged_credentials_are_refused() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let key = add_key(&clients, "k1", "reader", &[]);
    let rsa_pub = fixture("jwt-rs256-test-only.pub.pem");
    let ec_pub = fixture("jwt-es256-test-only.pub.pem");
    clients_ok(
        &clients,
        &[
            "add",
            "rs",
            "--role",
            "reader",
            "--jwt-public-key",
            rsa_pub.to_str().unwrap(),
            "--jwt-alg",
            "RS256",
        ],
    );
    clients_ok(
        &clients,
        &[
            "add",
            "es",
            "--role",
            "reader",
            "--jwt-public-key",
            ec_pub.to_str().unwrap(),
            "--jwt-alg",
            "ES256",
        ],
    );
    let mut serve = serve(dir.path(), &chain.url(), "", &[]);
    let url = serve.endpoint.clone();
    let rsa = fixture_text("jwt-rs256-test-only.key.pem");
    let ec = fixture_text("jwt-es256-test-only.key.pem");
    let other = fixture_text("jwt-rs256-other-test-only.key.pem");
    let call = |auth: Option<String>| {
        let url = url.clone();
        async move { rpc(&url, auth.as_deref(), "eth_chainId", json!([])).await }
    };

    // The good ones.
    assert_result(&call(Some(bearer(&key))).await);
    let token = jwt(Algorithm::RS256, &rsa, json!({"sub": "rs", "exp": now() + 300}));
    assert_result(&call(Some(bearer(&token))).await);
    let token =
        jwt(Algorithm::ES256, &ec, json!({"sub": "es", "exp": now() + 300, "nbf": now() - 10}));
    assert_result(&call(Some(bearer(&token))).await);

    // Missing and malformed.
    assert_unauthorized(&call(None).await, "authentication required");
    assert_unauthorized(&call(Some(format!("Basic {key}"))).await, "malformed");
    assert_unauthorized(&call(Some("Bearer".into())).await, "malformed");
    assert_unauthorized(&call(Some(key.clone())).await, "malformed");
    // Wrong and unknown keys.
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_unauthorized(&call(Some(bearer(&wrong))).await, "invalid API key");
    assert_unauthorized(&call(Some(bearer("ecrop_nothing"))).await, "invalid API key");

    // Tokens.
    for (token, needle) in [
        (jwt(Algorithm::RS256, &rsa, json!({"sub": "rs", "exp": now() - 600})), "expired"),
        (
            jwt(
                Algorithm::RS256,
                &rsa,
                json!({"sub": "rs", "exp": now() + 600, "nbf": now() + 300}),
            ),
            "not valid yet",
        ),
        (jwt(Algorithm::RS256, &rsa, json!({"sub": "rs"})), "missing claim exp"),
        (jwt(Algorithm::RS256, &other, json!({"sub": "rs", "exp": now() + 60})), "signature"),
        (jwt(Algorithm::ES256, &ec, json!({"sub": "rs", "exp": now() + 60})), "algorithm ES256"),
        (
            jwt(
                Algorithm::HS256,
                &std::fs::read_to_string(&rsa_pub).unwrap(),
                json!({"sub": "rs", "exp": now() + 60}),
            ),
            "algorithm HS256",
        ),
        (jwt(Algorithm::RS256, &rsa, json!({"sub": "nobody", "exp": now() + 60})), "nobody"),
        // An API-key client cannot be named by a token.
        (jwt(Algorithm::RS256, &rsa, json!({"sub": "k1", "exp": now() + 60})), "no active JWT"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJycyJ9.".to_owned(), "invalid token"),
        ("not.a.jwt".to_owned(), "invalid token"),
    ] {
        assert_unauthorized(&call(Some(bearer(&token))).await, needle);
    }

    // Batches need credentials too; with them, every call is served.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "net_version", "params": []},
    ])
    .to_string();
    assert_unauthorized(&post(&url, None, batch.clone()).await, "authentication required");
    let answer = post(&url, Some(&bearer(&key)), batch).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 2, "{}", answer.body);

    let log = serve.proc.log();
    assert!(log.contains("request refused"), "{log}");
    assert!(!log.contains(&key) && !log.contains(&wrong), "a key leaked into the log");
    assert_eq!(serve.proc.terminate(), Some(0));
}

#[tokio::test]
async fn revoked_key_is_refused_after_reload_and_a_bad_file_keeps_the_last_good_set() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let gone = add_key(&clients, "gone", "reader", &[]);
    let stays = add_key(&clients, "stays", "reader", &[]);
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    let url = serve.endpoint.clone();
    let ok = |key: String| {
        let url = url.clone();
        async move { rpc(&url, Some(&bearer(&key)), "eth_chainId", json!([])).await }
    };
    assert_result(&ok(gone.clone()).await);

    clients_ok(&clients, &["revoke", "gone"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ok(gone.clone()).await;
        if answer.status == 401 {
            assert_unauthorized(&answer, "invalid API key");
            break;
        }
        assert!(Instant::now() < deadline, "revocation not picked up: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_result(&ok(stays.clone()).await);
    assert!(serve.proc.log().contains("api client changed"), "{}", serve.proc.log());

    // A broken file is reported and changes nothing; the CLI refuses to edit it.
    std::fs::write(&clients, "{\"version\": 1, \"clients\": [").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !serve.proc.log().contains("clients file not reloaded") {
        assert!(Instant::now() < deadline, "bad file not noticed: {}", serve.proc.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_result(&ok(stays.clone()).await);
    assert_unauthorized(&ok(gone.clone()).await, "invalid API key");
    let err = clients_fail(&clients, &["add", "new", "--role", "reader"]);
    assert!(err.contains("clients file invalid ("), "{err}");
    assert_eq!(
        std::fs::read_to_string(&clients).unwrap(),
        "{\"version\": 1, \"clients\": [",
        "the broken file was overwritten"
    );
}

#[tokio::test]
async fn builtin_roles_permit_their_methods_only() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let reader = bearer(&add_key(&clients, "r", "reader", &[]));
    let signer = bearer(&add_key(&clients, "s", "signer", &[]));
    let private = bearer(&add_key(&clients, "p", "private", &[]));
    let admin = bearer(&add_key(&clients, "a", "admin", &[]));
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    let url = serve.endpoint.clone();
    let someone = Address::repeat_byte(0x11);
    let send = json!([{"from": someone, "to": someone}]);
    let call = |auth: &str, method: &str, params: Value| {
        let (url, auth, method) = (url.clone(), auth.to_owned(), method.to_owned());
        async move { rpc(&url, Some(&auth), &method, params).await }
    };

    // reader: eth/net/web3 reads only.
    assert_result(&call(&reader, "eth_blockNumber", json!([])).await);
    assert_result(&call(&reader, "net_version", json!([])).await);
    assert_result(&call(&reader, "web3_clientVersion", json!([])).await);
    assert_not_refused(&call(&reader, "eth_accounts", json!([])).await);
    for method in
        ["eth_sendTransaction", "eth_signTransaction", "eth_sendRawTransaction", "eth_sign"]
    {
        assert_not_permitted(
            &call(&reader, method, send.clone()).await,
            &[method, "role reader", "client r"],
        );
    }
    assert_not_permitted(
        &call(&reader, "personal_sign", json!(["0x01", someone])).await,
        &["personal_sign"],
    );
    assert_not_permitted(
        &call(&reader, "eth_signTypedData_v4", json!([someone, {}])).await,
        &["eth_signTypedData_v4"],
    );
    for method in [
        "admin_peers",
        "debug_traceTransaction",
        "miner_start",
        "perm_getAccountsAllowlist",
        "priv_call",
        "txpool_content",
    ] {
        assert_not_permitted(&call(&reader, method, json!([])).await, &[method, "role reader"]);
    }

    // signer: reads and signing from any account, nothing administrative or private.
    assert_result(&call(&signer, "eth_blockNumber", json!([])).await);
    assert_not_refused(&call(&signer, "eth_sendTransaction", send.clone()).await);
    assert_not_refused(&call(&signer, "personal_sign", json!(["0x01", someone])).await);
    assert_not_refused(&call(&signer, "eth_sendRawTransaction", json!(["0x00"])).await);
    for method in
        ["admin_peers", "debug_traceTransaction", "priv_call", "perm_addAccountsToAllowlist"]
    {
        assert_not_permitted(&call(&signer, method, json!([])).await, &[method, "role signer"]);
    }

    // private: priv_* and reads, no signing.
    assert_not_refused(&call(&private, "priv_getTransactionCount", json!([])).await);
    assert_not_refused(&call(&private, "eea_sendRawTransaction", json!([])).await);
    assert_result(&call(&private, "eth_chainId", json!([])).await);
    assert_not_permitted(
        &call(&private, "eth_sendTransaction", send.clone()).await,
        &["role private"],
    );
    assert_not_permitted(&call(&private, "admin_peers", json!([])).await, &["role private"]);

    // admin: everything.
    for method in [
        "admin_peers",
        "debug_traceTransaction",
        "perm_getAccountsAllowlist",
        "miner_start",
        "priv_call",
        "eth_blockNumber",
    ] {
        assert_not_refused(&call(&admin, method, json!([])).await);
    }
    assert_not_refused(&call(&admin, "eth_sendTransaction", send.clone()).await);

    // Batches are checked call by call.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_sendTransaction", "params": send},
        {"jsonrpc": "2.0", "id": 3, "method": "admin_peers", "params": []},
    ]);
    let answer = post(&url, Some(&reader), batch.to_string()).await;
    let answers = answer.body.as_array().unwrap();
    assert_eq!(answers.len(), 3, "{}", answer.body);
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).unwrap();
    assert!(by_id(1)["result"].is_string(), "{}", answer.body);
    assert_eq!(by_id(2)["error"]["code"], -40300);
    assert_eq!(by_id(3)["error"]["code"], -40300);
}

#[tokio::test]
async fn configured_roles_restrict_signing_accounts() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let ours = Address::repeat_byte(0xaa);
    let theirs = Address::repeat_byte(0xbb);
    let config = format!(
        r#"
[api.roles.app]
methods = ["eth_*", "net_*", "eth_sendTransaction", "personal_sign"]
send_from = ["{ours}"]

[api.roles.ops]
methods = ["*", "admin_*"]
"#
    );
    std::fs::write(dir.path().join("ecrop.toml"), &config).unwrap();
    let config_path = dir.path().join("ecrop.toml");
    // Roles for `add` come from the configuration: the built-in ones are gone.
    let (code, _, stderr) = ecrop(&[
        "--config",
        config_path.to_str().unwrap(),
        "api-clients",
        "add",
        "x",
        "--role",
        "reader",
        "--api-clients",
        clients.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("unknown role (reader); roles: app, ops"), "{stderr}");
    let app = bearer(&add_api_client(&clients, "app1", "app"));
    let ops = bearer(&add_api_client(&clients, "ops1", "ops"));
    // A client whose role the configuration lost is refused, saying why.
    let lost = bearer(&add_api_client(&clients, "lost", "reader"));
    let serve = serve(dir.path(), &chain.url(), &config, &[]);
    let url = serve.endpoint.clone();
    let call = |auth: &str, method: &str, params: Value| {
        let (url, auth, method) = (url.clone(), auth.to_owned(), method.to_owned());
        async move { rpc(&url, Some(&auth), &method, params).await }
    };

    assert_not_refused(
        &call(&app, "eth_sendTransaction", json!([{"from": ours, "to": theirs}])).await,
    );
    assert_not_refused(&call(&app, "personal_sign", json!(["0x01", ours])).await);
    assert_not_permitted(
        &call(&app, "eth_sendTransaction", json!([{"from": theirs, "to": ours}])).await,
        &["role app may not use account", &theirs.to_string(), "client app1"],
    );
    assert_not_permitted(&call(&app, "personal_sign", json!(["0x01", theirs])).await, &["account"]);
    assert_not_permitted(
        &call(&app, "eth_sendTransaction", json!([{"to": ours}])).await,
        &["names none"],
    );
    // `eth_*` does not grant the signing methods not named.
    assert_not_permitted(&call(&app, "eth_sign", json!([ours, "0x01"])).await, &["eth_sign"]);
    assert_not_permitted(
        &call(&app, "eth_signTransaction", json!([{"from": ours}])).await,
        &["eth_signTransaction"],
    );
    assert_result(&call(&app, "eth_chainId", json!([])).await);

    // `*` plus `admin_*`: admin methods and reads, but no other privileged namespace and no
    // signing.
    assert_not_refused(&call(&ops, "admin_nodeInfo", json!([])).await);
    assert_result(&call(&ops, "web3_clientVersion", json!([])).await);
    assert_not_permitted(&call(&ops, "debug_traceTransaction", json!([])).await, &["role ops"]);
    assert_not_permitted(
        &call(&ops, "eth_sendTransaction", json!([{"from": ours}])).await,
        &["role ops"],
    );

    assert_not_permitted(
        &call(&lost, "eth_chainId", json!([])).await,
        &["role reader of client lost is not defined"],
    );
}

/// An upstream that accepts requests and never answers; reports each request it got.
async fn hanging_upstream() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            use tokio::io::AsyncReadExt;
            let mut buffer = [0u8; 4096];
            if socket.read(&mut buffer).await.is_ok_and(|n| n > 0) {
                let _ = tx.send(());
            }
            held.push(socket);
        }
    });
    (url, rx)
}

#[tokio::test]
async fn rate_and_concurrency_limits_answer_with_a_retry_hint() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let slow = bearer(&add_key(&clients, "slow", "reader", &["--rate", "1", "--burst", "2"]));
    let free = bearer(&add_key(&clients, "free", "reader", &[]));
    let serve_rate = serve(dir.path(), &chain.url(), "", &[]);
    let url = serve_rate.endpoint.clone();

    // A batch of three with two tokens in the bucket: the third call is refused.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_chainId", "params": []},
    ]);
    let answer = post(&url, Some(&slow), batch.to_string()).await;
    let answers = answer.body.as_array().unwrap();
    let refused: Vec<&Value> = answers.iter().filter(|a| a.get("error").is_some()).collect();
    assert_eq!(refused.len(), 1, "{}", answer.body);
    assert_eq!(refused[0]["error"]["code"], -32005);
    assert!(
        refused[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rate limit exceeded (1 requests per second) for client slow")
    );
    assert!(refused[0]["error"]["data"]["retryAfterMs"].as_u64().unwrap() > 0);

    // Single requests while the bucket is empty: HTTP 429 with Retry-After.
    let mut limited = None;
    for _ in 0..20 {
        let answer = rpc(&url, Some(&slow), "eth_chainId", json!([])).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("no 429 in 20 quick requests at 1 per second");
    assert_eq!(limited.body["error"]["code"], -32005);
    assert!(limited.body["error"]["data"]["retryAfterMs"].as_u64().unwrap() >= 1);
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Other clients are not affected.
    assert_result(&rpc(&url, Some(&free), "eth_chainId", json!([])).await);
    drop(serve_rate);

    // Concurrency: one call in flight at a time for this client.
    let (upstream, mut got) = hanging_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let narrow = bearer(&add_key(&clients, "narrow", "reader", &["--max-concurrent", "1"]));
    let serve_busy = serve(dir.path(), &upstream, "", &["--upstream-timeout-secs", "3"]);
    let url = serve_busy.endpoint.clone();
    let first = {
        let (url, narrow) = (url.clone(), narrow.clone());
        tokio::spawn(async move { rpc(&url, Some(&narrow), "eth_blockNumber", json!([])).await })
    };
    got.recv().await.expect("the first call reached the upstream");
    let answer = rpc(&url, Some(&narrow), "eth_blockNumber", json!([])).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], -32005);
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("concurrency limit exceeded (1 calls in flight)"), "{message}");
    assert!(answer.body["error"]["data"]["retryAfterMs"].as_u64().unwrap() > 0);
    assert!(answer.headers.contains_key("retry-after"));
    // Once the first call is answered (the upstream times out), the slot is free again.
    let first = first.await.unwrap();
    assert_eq!(first.body["error"]["code"], -32002, "{}", first.body);
    let again = tokio::spawn({
        let (url, narrow) = (url.clone(), narrow.clone());
        async move { rpc(&url, Some(&narrow), "eth_blockNumber", json!([])).await }
    });
    got.recv().await.expect("the slot was freed");
    assert_eq!(again.await.unwrap().body["error"]["code"], -32002);
}

/// Sends a chunked request (no Content-Length) of `size` bytes over a raw socket; returns the
/// status code.
fn post_chunked(url: &str, auth: &str, size: usize) -> u16 {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"pad":"{}"}}"#,
        "x".repeat(size)
    );
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.as_bytes().chunks(100) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).unwrap();
        stream.write_all(chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "connection closed without an answer");
        response.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn body_and_batch_limits_per_client() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let small = bearer(&add_key(
        &clients,
        "small",
        "reader",
        &["--max-request-bytes", "300", "--max-batch-len", "2"],
    ));
    let big = bearer(&add_key(&clients, "big", "reader", &[]));
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    let url = serve.endpoint.clone();
    let padded = |size: usize| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": [], "pad": "x".repeat(size)})
            .to_string()
    };

    assert_result(&post(&url, Some(&small), padded(10)).await);
    let answer = post(&url, Some(&small), padded(1000)).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], -32005);
    assert_eq!(answer.body["error"]["data"]["maxRequestBytes"], 300);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit 300 bytes for client small")
    );
    // Without a declared length the body is counted as it streams.
    assert_eq!(post_chunked(&url, &small, 1000), 413);
    assert_eq!(post_chunked(&url, &small, 10), 200);
    // Another client keeps the endpoint's limit.
    assert_eq!(post(&url, Some(&big), padded(1000)).await.status, 200);

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []});
    let answer = post(&url, Some(&small), json!([call, call, call]).to_string()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["error"]["code"], -32005, "{}", answer.body);
    assert_eq!(answer.body["error"]["data"]["maxBatchLen"], 2);
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch of 3 calls exceeds the limit of 2 for client small")
    );
    let answer = post(&url, Some(&small), json!([call, call]).to_string()).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 2, "{}", answer.body);
    let answer = post(&url, Some(&big), json!([call, call, call]).to_string()).await;
    assert_eq!(answer.body.as_array().unwrap().len(), 3, "{}", answer.body);
}

#[tokio::test]
async fn websocket_upgrade_needs_credentials() {
    use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClientBuilder};
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let key = add_key(&clients, "ws", "reader", &[]);
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    let ws_url = serve.endpoint.replace("http://", "ws://");

    let refused = WsClientBuilder::default().build(&ws_url).await;
    let Err(error) = refused else { panic!("upgrade without credentials accepted") };
    let error = error.to_string();
    assert!(error.contains("401"), "{error}");

    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", bearer("ecrop_wrong").parse().unwrap());
    assert!(WsClientBuilder::default().set_headers(headers).build(&ws_url).await.is_err());

    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", bearer(&key).parse().unwrap());
    let client = WsClientBuilder::default().set_headers(headers).build(&ws_url).await.unwrap();
    let chain_id: String = client.request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(chain_id, "0x7a69");
    // The matrix applies to every call over the connection.
    let refused = client
        .request::<String, _>("eth_sendTransaction", rpc_params![json!({"from": Address::ZERO})])
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not permitted for role reader"), "{refused}");
}

#[tokio::test]
async fn dev_mode_serves_loopback_without_credentials_and_checks_given_ones() {
    use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClientBuilder};
    let clients_dir = tempfile::tempdir().unwrap();
    let clients = clients_dir.path().join("clients.json");
    let reader = bearer(&add_key(&clients, "r", "reader", &[]));
    let net = DevNet::start_with(1, &["--api-clients", clients.to_str().unwrap()]);
    let url = net.endpoint.clone();
    let account = net.accounts[0];

    // Without credentials: every method.
    let answer = rpc(&url, None, "personal_sign", json!(["0x01", account])).await;
    assert_result(&answer);
    let ws = WsClientBuilder::default().build(url.replace("http://", "ws://")).await.unwrap();
    let accounts: Vec<Address> = ws.request("eth_accounts", rpc_params![]).await.unwrap();
    assert_eq!(accounts, net.accounts);

    // With credentials: authenticated and checked as on `serve`.
    assert_result(&rpc(&url, Some(&reader), "eth_chainId", json!([])).await);
    assert_not_permitted(
        &rpc(&url, Some(&reader), "personal_sign", json!(["0x01", account])).await,
        &["role reader"],
    );
    assert_unauthorized(
        &rpc(&url, Some(&bearer("ecrop_wrong")), "eth_chainId", json!([])).await,
        "invalid API key",
    );
}

#[test]
fn malformed_clients_file_or_roles_stop_serve_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = softhsm_conf(dir.path());
    let clients = dir.path().join("clients.json");
    std::fs::write(&clients, "{\"version\": 1, \"clients\": [{\"id\": 1}]}").unwrap();
    let run = |extra: &[&str]| {
        let output = Command::new(ECROP)
            .args(["serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"])
            .args(extra)
            .env("SOFTHSM2_CONF", &conf)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = run(&["--api-clients", clients.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("clients file invalid ({}): ", clients.display())),
        "{stderr}"
    );

    let config = dir.path().join("ecrop.toml");
    std::fs::write(&config, "[api.roles.app]\nmethods = [\"eth_*x\"]\n").unwrap();
    let (code, stderr) = run(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("api.roles.app: invalid method pattern (eth_*x)"), "{stderr}");

    std::fs::write(&config, "[api.roles.app]\nsend_from = [\"bob\"]\n").unwrap();
    let (code, stderr) = run(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("invalid send_from entry (bob)"), "{stderr}");
}

#[test]
fn api_clients_cli_adds_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/clients.json");

    let key = add_key(&file, "app-1", "signer", &[]);
    assert!(key.starts_with("ecrop_") && key.len() == 49, "{key}");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(!stored.contains(&key), "the key itself was stored");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    assert!(stored.contains(&hash), "{stored}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    let key_out = dir.path().join("ops.key");
    let printed = clients_ok(
        &file,
        &["add", "ops", "--role", "admin", "--key-out", key_out.to_str().unwrap(), "--rate", "5"],
    );
    assert!(printed.trim().is_empty(), "key printed although --key-out: {printed}");
    let written = std::fs::read_to_string(&key_out).unwrap();
    assert!(written.trim().starts_with("ecrop_"));
    assert_eq!(std::fs::metadata(&key_out).unwrap().permissions().mode() & 0o777, 0o600);
    let err = clients_fail(
        &file,
        &["add", "ops2", "--role", "admin", "--key-out", key_out.to_str().unwrap()],
    );
    assert!(err.contains("creating the key file"), "{err}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("\"ops2\""), "added without its key");

    let pem = fixture("jwt-es256-test-only.pub.pem");
    clients_ok(
        &file,
        &[
            "add",
            "jwt.ec",
            "--role",
            "reader",
            "--jwt-public-key",
            pem.to_str().unwrap(),
            "--jwt-alg",
            "ES256",
        ],
    );

    // Refusals.
    for (args, needle) in [
        (vec!["add", "app-1", "--role", "reader"], "client app-1 exists already (active)"),
        (vec!["add", "bad id", "--role", "reader"], "invalid client id"),
        (vec!["add", ".x", "--role", "reader"], "invalid client id"),
        (
            vec!["add", "ok", "--role", "root"],
            "unknown role (root); roles: admin, private, reader, signer",
        ),
        (vec!["add", "ok", "--role", "reader", "--burst", "0"], "burst must be above zero"),
    ] {
        let err = clients_fail(&file, &args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let long = "a".repeat(65);
    assert!(clients_fail(&file, &["add", &long, "--role", "reader"]).contains("invalid client id"));
    for (key, alg, needle) in [
        ("jwt-es256-test-only.pub.pem", "RS256", "not an RSA public key"),
        ("jwt-rs256-test-only.pub.pem", "ES256", "not an EC public key"),
        ("jwt-p384-test-only.pub.pem", "ES256", "P-256"),
        ("jwt-rsa1024-test-only.pub.pem", "RS256", "shorter than 2048 bits"),
        ("jwt-rs256-test-only.key.pem", "RS256", "private key"),
        ("README.md", "RS256", "not a PEM public key"),
    ] {
        let path = fixture(key);
        let err = clients_fail(
            &file,
            &[
                "add",
                "j",
                "--role",
                "reader",
                "--jwt-public-key",
                path.to_str().unwrap(),
                "--jwt-alg",
                alg,
            ],
        );
        assert!(err.contains(needle), "{key} {alg}: {err}");
    }
    let (code, _, stderr) = ecrop(&[
        "api-clients",
        "add",
        "j",
        "--role",
        "reader",
        "--jwt-public-key",
        pem.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = ecrop(&[
        "api-clients",
        "add",
        "j",
        "--role",
        "reader",
        "--jwt-public-key",
        pem.to_str().unwrap(),
        "--jwt-alg",
        "HS256",
    ]);
    assert_eq!(code, 2, "{stderr}");

    // List, revoke.
    let listed = clients_ok(&file, &["list"]);
    for needle in ["app-1", "signer", "api-key", "jwt.ec", "jwt ES256", "active"] {
        assert!(listed.contains(needle), "{listed}");
    }
    clients_ok(&file, &["revoke", "app-1"]);
    let err = clients_fail(&file, &["revoke", "app-1"]);
    assert!(err.contains("client app-1 was already revoked"), "{err}");
    assert!(clients_fail(&file, &["revoke", "nobody"]).contains("no client nobody"));
    let err = clients_fail(&file, &["add", "app-1", "--role", "reader"]);
    assert!(err.contains("exists already (revoked"), "{err}");

    let json: Value = serde_json::from_str(&clients_ok(&file, &["list", "--json"])).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["id"], "app-1");
    assert_eq!(entries[0]["active"], false);
    assert!(entries[0]["revoked"]["by"].is_string() && entries[0]["revoked"]["at"].is_string());
    assert_eq!(entries[1]["limits"]["requests_per_second"], 5);
    assert_eq!(entries[2]["credential"], "jwt ES256");
    let text = json.to_string();
    assert!(!text.contains(&hash) && !text.contains("BEGIN PUBLIC KEY"), "secrets listed: {text}");

    let (code, help, _) = ecrop(&["api-clients", "add", "--help"]);
    assert_eq!(code, 0);
    for needle in [
        "--role",
        "--jwt-public-key",
        "--jwt-alg",
        "--key-out",
        "--api-clients",
        "printed once",
        "RS256",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
    let empty = dir.path().join("none.json");
    assert!(clients_ok(&empty, &["list"]).contains("no clients"));
}

#[tokio::test]
async fn operator_cli_sends_its_api_key() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let key = add_key(&clients, "operator", "reader", &[]);
    let key_file = dir.path().join("operator.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    let deployment = dir.path().join("deployment.json");
    std::fs::write(
        &deployment,
        json!({"chain_id": 31337, "contracts": {"InvestorRegistry": Address::repeat_byte(0x42)}, "start_block": 0})
            .to_string(),
    )
    .unwrap();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/out");
    let run = |extra: &[&str], envs: &[(&str, &str)]| {
        let output = Command::new(ECROP)
            .args([
                "contracts",
                "call",
                "InvestorRegistry",
                "authority",
                "--rpc-url",
                &serve.endpoint,
            ])
            .arg("--deployment")
            .arg(&deployment)
            .arg("--artifacts")
            .arg(&artifacts)
            .args(extra)
            .env_remove("ECROP_API_KEY")
            .env_remove("ECROP_API_KEY_FILE")
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    // Without a key: refused by the sidecar.
    let (code, stderr) = run(&[], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("401") || stderr.contains("Unauthorized"), "{stderr}");
    // With the key from the environment, a file flag or a file named in the environment, the
    // call reaches the node (which has no contract there, so decoding fails).
    for (extra, envs) in [
        (vec![], vec![("ECROP_API_KEY", key.as_str())]),
        (vec!["--api-key-file", key_file.to_str().unwrap()], vec![]),
        (vec![], vec![("ECROP_API_KEY_FILE", key_file.to_str().unwrap())]),
    ] {
        let (code, stderr) = run(&extra, &envs);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(!stderr.contains("401") && !stderr.contains("Unauthorized"), "{stderr}");
        assert!(stderr.contains("calling InvestorRegistry.authority()"), "{stderr}");
        assert!(!stderr.contains(&key), "the key leaked: {stderr}");
    }
    let (code, stderr) = run(&["--api-key-file", "/nonexistent/key"], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("API key file /nonexistent/key not readable"), "{stderr}");
}

/// A wallet with no token in front of a dead node: enough to start the endpoint in-process.
fn lib_wallet() -> std::sync::Arc<ecrop::wallet::Wallet> {
    use ecrop::{
        config::UpstreamSettings,
        signer::{Keyring, PinSource, TokenConfig},
        upstream::Upstream,
    };
    let settings = UpstreamSettings::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap();
    let upstream = std::sync::Arc::new(Upstream::new(settings, 1 << 20).unwrap());
    let token = TokenConfig {
        module: "/nonexistent.so".into(),
        token_label: "none".into(),
        pin: PinSource::Env("ECROP_TEST_NO_PIN".into()),
    };
    std::sync::Arc::new(ecrop::wallet::Wallet::new(Keyring::new(token), upstream))
}

#[tokio::test]
async fn unauthenticated_dev_access_is_refused_off_loopback() {
    use ecrop::{
        api::{Access, AccessMode, ClientStore, GlobalLimits, Roles},
        config::RpcSettings,
    };
    let wallet = lib_wallet();
    let access = || {
        Access::new(
            AccessMode::DevLoopback,
            Roles::builtin(),
            ClientStore::empty(),
            GlobalLimits::default(),
        )
    };
    let open = RpcSettings::with_defaults("0.0.0.0:0".parse().unwrap());
    let err = ecrop::rpc::start(&open, wallet.clone(), access(), Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("served on loopback only"), "{err}");
    let loopback = RpcSettings::with_defaults("127.0.0.1:0".parse().unwrap());
    let server = ecrop::rpc::start(&loopback, wallet, access(), Default::default()).await.unwrap();
    let url = format!("http://{}", server.local_addr());
    // Served (the missing token answers -32002), not refused.
    let answer = rpc(&url, None, "eth_accounts", json!([])).await;
    assert_not_refused(&answer);
    assert_eq!(answer.body["error"]["code"], -32002, "{}", answer.body);
    server.stop().await;
}

#[tokio::test]
async fn http_refusals_and_client_changes_reach_their_hooks() {
    use std::sync::{Arc, Mutex};

    use ecrop::{
        api::{Access, AccessMode, ClientChange, GlobalLimits, Refusal},
        config::RpcSettings,
    };
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let small = add_key(&clients, "small", "reader", &["--max-request-bytes", "100"]);
    let refusals: Arc<Mutex<Vec<Refusal>>> = Arc::default();
    let changes: Arc<Mutex<Vec<ClientChange>>> = Arc::default();
    let on_change = {
        let changes = changes.clone();
        Arc::new(move |seen: &[ClientChange]| changes.lock().unwrap().extend_from_slice(seen))
    };
    let settings = RpcSettings::with_defaults("127.0.0.1:0".parse().unwrap());
    let access = Access::from_config(
        &ecrop::api::ApiFile::default(),
        Some(&clients),
        AccessMode::Required,
        GlobalLimits::default(),
        Some(on_change),
    )
    .unwrap()
    .with_refusal_hook({
        let refusals = refusals.clone();
        Arc::new(move |refusal: &Refusal| refusals.lock().unwrap().push(refusal.clone()))
    });
    let server =
        ecrop::rpc::start(&settings, lib_wallet(), access, Default::default()).await.unwrap();
    let url = format!("http://{}", server.local_addr());

    assert_eq!(rpc(&url, None, "eth_chainId", json!([])).await.status, 401);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "pad": "x".repeat(200)});
    assert_eq!(post(&url, Some(&bearer(&small)), body.to_string()).await.status, 413);
    let rebound = reqwest::Client::new()
        .post(&url)
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
    {
        let seen = refusals.lock().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!((seen[2].status, seen[2].code), (403, -32099));
        assert_eq!(seen[2].host.as_deref(), Some("evil.example"));
        assert!(seen[2].reason.contains("host not allowed (evil.example)"), "{}", seen[2].reason);
        assert_eq!((seen[0].client.as_deref(), seen[0].status, seen[0].code), (None, 401, -40100));
        assert!(seen[0].host.as_deref().unwrap().starts_with("127.0.0.1:"));
        assert!(seen[0].reason.contains("authentication required"), "{}", seen[0].reason);
        assert_eq!(
            (seen[1].client.as_deref(), seen[1].status, seen[1].code),
            (Some("small"), 413, -32005)
        );
        assert!(!seen[1].reason.contains(&small));
    }

    add_key(&clients, "later", "admin", &[]);
    clients_ok(&clients, &["revoke", "small"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while changes.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "changes not reported: {:?}", changes.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = changes.lock().unwrap().clone();
    let kinds: Vec<_> = seen.iter().map(|c| (c.kind, c.client.as_str())).collect();
    use ecrop::api::ChangeKind;
    assert!(kinds.contains(&(ChangeKind::Added, "later")), "{kinds:?}");
    assert!(kinds.contains(&(ChangeKind::Revoked, "small")), "{kinds:?}");
    let revoked = seen.iter().find(|c| c.kind == ChangeKind::Revoked).unwrap();
    assert!(!revoked.stamp.as_ref().unwrap().by.is_empty());
    server.stop().await;
}

/// Calls over `socket` until one is refused (the sidecar reloads the clients file about once
/// a second), and checks the refusal names `reason`.
async fn refused_once_reloaded(socket: &jsonrpsee::ws_client::WsClient, reason: &str) {
    use jsonrpsee::{core::client::ClientT, rpc_params};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match socket.request::<String, _>("eth_chainId", rpc_params![]).await {
            Ok(_) => {
                assert!(Instant::now() < deadline, "still served; expected: {reason}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => {
                let error = error.to_string();
                assert!(error.contains("-40100") && error.contains(reason), "{error}");
                return;
            }
        }
    }
}

/// A WebSocket outlives the check made when it opened: every call checks the credential
/// again, so revoking the client or the expiry of its token ends what the socket may do.
#[tokio::test]
async fn open_websockets_lose_revoked_and_expired_credentials() {
    use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClientBuilder};
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let key = add_key(&clients, "ws-key", "reader", &[]);
    let rsa_pub = fixture("jwt-rs256-test-only.pub.pem");
    clients_ok(
        &clients,
        &[
            "add",
            "ws-jwt",
            "--role",
            "reader",
            "--jwt-public-key",
            rsa_pub.to_str().unwrap(),
            "--jwt-alg",
            "RS256",
        ],
    );
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    let ws_url = serve.endpoint.replace("http://", "ws://");
    let open = |credential: String| {
        let ws_url = ws_url.clone();
        async move {
            let mut headers = http::HeaderMap::new();
            headers.insert("authorization", bearer(&credential).parse().unwrap());
            WsClientBuilder::default().set_headers(headers).build(&ws_url).await.unwrap()
        }
    };

    // Revocation: the same socket is refused once the sidecar has reloaded the file.
    let socket = open(key).await;
    let chain_id: String = socket.request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(chain_id, "0x7a69");
    clients_ok(&clients, &["revoke", "ws-key"]);
    refused_once_reloaded(&socket, "client ws-key is revoked").await;

    // A credential replaced in the file (same id and role) no longer serves either.
    let swapped = add_key(&clients, "ws-swap", "reader", &[]);
    // The new client is served once the sidecar has reloaded the file.
    let deadline = Instant::now() + Duration::from_secs(20);
    let socket = loop {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", bearer(&swapped).parse().unwrap());
        match WsClientBuilder::default().set_headers(headers).build(&ws_url).await {
            Ok(socket) => break socket,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("new client not admitted: {error}"),
        }
    };
    let _: String = socket.request("eth_chainId", rpc_params![]).await.unwrap();
    let mut file = ecrop::api::clients::ClientsFile::load(&clients).unwrap();
    let entry = file.clients.iter_mut().find(|c| c.id == "ws-swap").unwrap();
    let (_, new_hash) = ecrop::api::auth::generate_api_key();
    entry.credential = ecrop::api::clients::Credential::ApiKey { sha256: new_hash.to_hex() };
    file.save(&clients).unwrap();
    refused_once_reloaded(&socket, "credential of client ws-swap replaced").await;

    // Expiry: a token valid for a moment serves until its `exp` (plus the leeway), then not.
    let rsa = fixture_text("jwt-rs256-test-only.key.pem");
    let token = jwt(Algorithm::RS256, &rsa, json!({"sub": "ws-jwt", "exp": now() + 1}));
    let socket = open(token).await;
    let _: String = socket.request("eth_chainId", rpc_params![]).await.unwrap();
    let leeway = ecrop::api::auth::JWT_LEEWAY_SECS;
    tokio::time::sleep(Duration::from_secs(leeway + 3)).await;
    let error = socket.request::<String, _>("eth_chainId", rpc_params![]).await.unwrap_err();
    assert!(error.to_string().contains("token of client ws-jwt expired"), "{error}");
}

/// A refused notification gets no answer, but the audit log records the refusal; it is never
/// recorded as an administrative action that took place.
#[tokio::test]
async fn refused_notifications_and_signing_calls_are_recorded_as_refusals_only() {
    let chain = anvil().await;
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.json");
    let reader = bearer(&add_key(&clients, "r", "reader", &[]));
    let serve = serve(dir.path(), &chain.url(), "", &[]);
    for method in ["admin_peers", "anvil_mine"] {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": []});
        let answer = post(&serve.endpoint, Some(&reader), body.to_string()).await;
        assert_eq!(answer.status, 200);
    }
    // A signing call the role refuses is a refusal only: no signature was announced.
    let someone = Address::repeat_byte(0x11);
    let refused = rpc(
        &serve.endpoint,
        Some(&reader),
        "eth_sendTransaction",
        json!([{"from": someone, "to": someone}]),
    )
    .await;
    assert_eq!(refused.body["error"]["code"], -40300, "{}", refused.body);
    // Readable while the sidecar holds the store (the harness puts it next to serve.log).
    let export = std::process::Command::new(ECROP)
        .args(["audit", "export", "--format", "jsonl", "--store-path"])
        .arg(dir.path().join("serve.store"))
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let entries: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let sends: Vec<&Value> =
        entries.iter().filter(|e| e["action"] == "eth_sendTransaction").collect();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0]["kind"], "refusal");
    for method in ["admin_peers", "anvil_mine"] {
        let recorded: Vec<&Value> = entries.iter().filter(|e| e["action"] == method).collect();
        assert_eq!(recorded.len(), 1, "{method}: {entries:?}");
        assert_eq!(recorded[0]["kind"], "refusal", "{method}");
        assert_eq!(recorded[0]["who"], "r");
        assert_eq!(recorded[0]["outcome"]["code"], -40300, "{method}");
    }
}
