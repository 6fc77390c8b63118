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

use alloy::primitives::B256;
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
        let wallet = Arc::new(Wallet::new(Keyring::new(config), upstream));
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
        anvil.stop().await;
    });
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
