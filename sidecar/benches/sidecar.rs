//! `scripts/bench`: signatures per second through PKCS#11 against in-process `k256`, and the
//! latency the sidecar adds to a passthrough call against calling anvil directly. Both sides
//! of each comparison are measured in the same run, interleaved, and reported as ratios.
//!
//! Prints a Markdown section on standard output. Needs SoftHSM2 and anvil (scripts/bench
//! provides both).

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::primitives::{B256, U256};
use ecrop::{
    config::{RpcSettings, UpstreamSettings},
    dev::Anvil,
    signer::{Keyring, PinSource, Token, TokenConfig},
    upstream::Upstream,
    wallet::Wallet,
};
use k256::ecdsa::SigningKey;
use secrecy::SecretString;

/// Signatures per measured round; large enough that timer resolution is irrelevant.
const SIGNATURES: usize = 2_000;
/// Rounds per signer, alternating, so drift on the machine hits both sides alike.
const SIGN_ROUNDS: usize = 3;
/// Calls per side in the latency comparison (after the warm-up).
const CALLS: usize = 3_000;
/// Warm-up calls per side, not measured.
const WARMUP: usize = 300;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("softhsm2.conf");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm conf");
    // SAFETY: single-threaded here; nothing else reads the environment yet.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };

    let module = std::env::var("ECROP_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".to_owned());
    assert!(
        Path::new(&module).exists(),
        "PKCS#11 module missing ({module}); run scripts/bootstrap"
    );
    let pin_file = dir.path().join("user.pin");
    std::fs::write(&pin_file, "bench-user-pin\n").expect("pin file");
    Token::initialize(
        Path::new(&module),
        "bench",
        &SecretString::from("bench-so-pin"),
        &SecretString::from("bench-user-pin"),
    )
    .expect("token init");
    let config = TokenConfig {
        module: module.clone().into(),
        token_label: "bench".into(),
        pin: PinSource::File(pin_file),
    };
    let token = Token::open(&config).expect("token open");
    let key = token.generate_key("bench-key").expect("key");
    let send_keys = [
        token.generate_key("bench-send-open").expect("key"),
        token.generate_key("bench-send-guarded").expect("key"),
    ];

    println!(
        "Machine: {} cores; {}.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rustc_line()
    );

    // Signatures per second.
    let software = SigningKey::random(&mut k256::elliptic_curve::rand_core::OsRng);
    let mut hsm_rates = Vec::new();
    let mut soft_rates = Vec::new();
    for _ in 0..SIGN_ROUNDS {
        let hashes: Vec<B256> =
            (0..SIGNATURES).map(|_| B256::from(rand::random::<[u8; 32]>())).collect();
        let start = Instant::now();
        for hash in &hashes {
            token.sign_prehash(&key, hash).expect("hsm signature");
        }
        hsm_rates.push(SIGNATURES as f64 / start.elapsed().as_secs_f64());

        let start = Instant::now();
        for hash in &hashes {
            let signed = software.sign_prehash_recoverable(hash.as_slice());
            std::hint::black_box(signed.expect("k256 signature"));
        }
        soft_rates.push(SIGNATURES as f64 / start.elapsed().as_secs_f64());
    }
    let hsm = median(&mut hsm_rates);
    let soft = median(&mut soft_rates);
    println!(
        "### Signatures per second (secp256k1, one thread, {SIGNATURES} x {SIGN_ROUNDS} rounds, median)\n"
    );
    println!("| signer | signatures/s | ratio to k256 |");
    println!("| --- | ---: | ---: |");
    println!("| k256, in process (baseline) | {soft:.0} | 1.00 |");
    println!(
        "| PKCS#11 (SoftHSM2), incl. low-s and recovery id | {hsm:.0} | {:.2} |\n",
        hsm / soft
    );

    // Passthrough latency.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let anvil_bin = std::env::var("ECROP_ANVIL").unwrap_or_else(|_| "anvil".into());
        let anvil = Anvil::start(&anvil_bin, &[]).await.expect("anvil");
        let upstream = Arc::new(
            Upstream::new(
                UpstreamSettings::new(&anvil.url(), Duration::from_secs(30)).expect("url"),
                32 << 20,
            )
            .expect("upstream"),
        );
        let wallet = Arc::new(Wallet::new(Keyring::new(config.clone()), upstream));
        let settings = RpcSettings::with_defaults("127.0.0.1:0".parse().expect("addr"));
        // Loopback dev access: requests without credentials, as before authentication existed.
        let access = ecrop::api::Access::new(
            ecrop::api::AccessMode::DevLoopback,
            ecrop::api::Roles::builtin(),
            ecrop::api::ClientStore::empty(),
            ecrop::api::GlobalLimits::default(),
        );
        let server = ecrop::rpc::start(&settings, wallet, access, Default::default()).await.expect("server");
        let sidecar_url = format!("http://{}", server.local_addr());
        let anvil_url = anvil.url();

        let client = reqwest::Client::new();
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
        let once = |url: String| {
            let client = client.clone();
            async move {
                let start = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("call");
                let text = response.text().await.expect("body");
                assert!(text.contains("\"result\""), "{text}");
                start.elapsed()
            }
        };
        for _ in 0..WARMUP {
            once(anvil_url.clone()).await;
            once(sidecar_url.clone()).await;
        }
        let mut direct = Vec::with_capacity(CALLS);
        let mut relayed = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            direct.push(once(anvil_url.clone()).await);
            relayed.push(once(sidecar_url.clone()).await);
        }
        direct.sort_unstable();
        relayed.sort_unstable();
        let (d50, d99) = (percentile(&direct, 50.0), percentile(&direct, 99.0));
        let (r50, r99) = (percentile(&relayed, 50.0), percentile(&relayed, 99.0));
        println!("### Passthrough latency, `eth_blockNumber` over HTTP keep-alive ({CALLS} calls per side, interleaved)\n");
        println!("| path | p50 | p99 | p50 ratio | p99 ratio |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        println!("| anvil directly (baseline) | {} | {} | 1.00 | 1.00 |", us(d50), us(d99));
        println!(
            "| through the sidecar | {} | {} | {:.2} | {:.2} |",
            us(r50),
            us(r99),
            r50.as_secs_f64() / d50.as_secs_f64(),
            r99.as_secs_f64() / d99.as_secs_f64()
        );
        println!(
            "| added by the sidecar | {} | {} | | |\n",
            us(r50.saturating_sub(d50)),
            us(r99.saturating_sub(d99))
        );
        server.stop().await;

        send_comparison(&anvil, &config, &send_keys, dir.path()).await;
        anvil.stop().await;
    });
}

/// Concurrent clients in the send comparison.
const SEND_CLIENTS: usize = 8;
/// Sends per side and round in the send comparison.
const SENDS_PER_ROUND: usize = 400;
/// Rounds per side, alternating.
const SEND_ROUNDS: usize = 3;

/// `eth_sendTransaction` through two endpoints in the same run, rounds alternating: one with
/// API-key authentication, the permission matrix and the audit log on (each signature on disk
/// before the answer), one with neither (dev loopback access, no audit). Each has its own key,
/// so their nonces never meet.
async fn send_comparison(
    anvil: &Anvil,
    config: &TokenConfig,
    keys: &[ecrop::signer::KeyInfo; 2],
    dir: &Path,
) {
    use ecrop::api::{
        Access, AccessMode, ClientStore, GlobalLimits, LimitsFile, Roles,
        clients::{ClientEntry, ClientsFile, Credential, FILE_VERSION, Stamp},
    };
    for key in keys {
        anvil.fund(key.address, U256::from(10u128.pow(24))).await.expect("fund");
    }
    let settings = RpcSettings::with_defaults("127.0.0.1:0".parse().expect("addr"));
    let global = GlobalLimits {
        max_request_bytes: settings.max_request_bytes,
        max_batch_len: settings.max_batch_len,
    };
    let wallet = || {
        let upstream = Upstream::new(
            UpstreamSettings::new(&anvil.url(), Duration::from_secs(30)).expect("url"),
            32 << 20,
        )
        .expect("upstream");
        Arc::new(Wallet::new(Keyring::new(config.clone()), Arc::new(upstream)))
    };

    let open = ecrop::rpc::start(
        &settings,
        wallet(),
        Access::new(AccessMode::DevLoopback, Roles::builtin(), ClientStore::empty(), global),
        Default::default(),
    )
    .await
    .expect("server without auth");

    let clients_path = dir.join("bench-clients.json");
    let (api_key, hash) = ecrop::api::auth::generate_api_key();
    let unlimited = LimitsFile {
        requests_per_second: Some(0),
        max_concurrent: Some(0),
        ..LimitsFile::default()
    };
    ClientsFile {
        version: FILE_VERSION,
        clients: vec![ClientEntry {
            id: "bench".into(),
            role: "signer".into(),
            credential: Credential::ApiKey { sha256: hash.to_hex() },
            limits: Some(unlimited),
            created: Stamp::now(),
            revoked: None,
        }],
    }
    .save(&clients_path)
    .expect("clients file");
    let store = ecrop::store::Store::open(&dir.join("bench-store")).expect("store");
    let log = ecrop::audit::AuditLog::open(store).await.expect("audit log");
    let audit_settings =
        ecrop::audit::AuditSettings::from_file(&Default::default()).expect("audit settings");
    let observers = ecrop::rpc::Observers {
        audit: Some(ecrop::audit::AuditLayer::new(
            log.clone(),
            audit_settings,
            settings.max_response_bytes as usize,
        )),
        ..Default::default()
    };
    let guarded = ecrop::rpc::start(
        &settings,
        wallet(),
        Access::new(
            AccessMode::Required,
            Roles::builtin(),
            ClientStore::open(&clients_path, None).expect("clients"),
            global,
        ),
        observers,
    )
    .await
    .expect("server with auth and audit");

    let open_url = format!("http://{}", open.local_addr());
    let guarded_url = format!("http://{}", guarded.local_addr());
    let client = reqwest::Client::new();
    let mut open_runs = Vec::new();
    let mut guarded_runs = Vec::new();
    // Warm-up: one short round each (connections, nonces, token sessions).
    run_sends(&client, &open_url, None, keys[0].address, SEND_CLIENTS * 4).await;
    run_sends(&client, &guarded_url, Some(&api_key), keys[1].address, SEND_CLIENTS * 4).await;
    for _ in 0..SEND_ROUNDS {
        open_runs.push(run_sends(&client, &open_url, None, keys[0].address, SENDS_PER_ROUND).await);
        guarded_runs.push(
            run_sends(&client, &guarded_url, Some(&api_key), keys[1].address, SENDS_PER_ROUND)
                .await,
        );
    }
    open.stop().await;
    guarded.stop().await;
    log.close().await;

    let summary = |runs: &[(f64, Vec<Duration>)]| {
        let mut rates: Vec<f64> = runs.iter().map(|(rate, _)| *rate).collect();
        let mut all: Vec<Duration> = runs.iter().flat_map(|(_, l)| l.iter().copied()).collect();
        all.sort_unstable();
        (median(&mut rates), percentile(&all, 50.0), percentile(&all, 99.0))
    };
    let (open_rate, open_p50, open_p99) = summary(&open_runs);
    let (guarded_rate, guarded_p50, guarded_p99) = summary(&guarded_runs);
    println!(
        "### Authenticated `eth_sendTransaction` with the audit log, against neither ({SEND_CLIENTS} concurrent clients, {SENDS_PER_ROUND} sends x {SEND_ROUNDS} rounds per side, alternating; anvil automining)\n"
    );
    println!("| endpoint | sends/s (median round) | p50 | p99 | throughput ratio | p99 ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| no authentication, no audit log (baseline) | {open_rate:.0} | {} | {} | 1.00 | 1.00 |",
        us(open_p50),
        us(open_p99)
    );
    println!(
        "| API key, permission matrix, audit log (two entries per send, one disk sync) | {guarded_rate:.0} | {} | {} | {:.2} | {:.2} |\n",
        us(guarded_p50),
        us(guarded_p99),
        guarded_rate / open_rate,
        guarded_p99.as_secs_f64() / open_p99.as_secs_f64()
    );
}

/// `count` sends from `from` by [`SEND_CLIENTS`] concurrent clients; returns sends per second
/// and each send's latency.
async fn run_sends(
    client: &reqwest::Client,
    url: &str,
    api_key: Option<&str>,
    from: alloy::primitives::Address,
    count: usize,
) -> (f64, Vec<Duration>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SEND_CLIENTS {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        let api_key = api_key.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let body = serde_json::json!({
                    "jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction",
                    "params": [{"from": from, "to": from, "value": "0x1"}],
                });
                let mut request = client.post(&url).json(&body);
                if let Some(key) = &api_key {
                    request = request.bearer_auth(key);
                }
                let start = Instant::now();
                let text = request.send().await.expect("send").text().await.expect("body");
                assert!(text.contains("\"result\""), "{text}");
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    (count as f64 / started.elapsed().as_secs_f64(), latencies)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn rustc_line() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "rustc unknown".into())
}
