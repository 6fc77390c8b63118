//! `scripts/bench`: permissioning decisions from the sidecar's decision API against the legacy
//! way, an `eth_call` of `connectionAllowed` / `transactionAllowed` on the node, in the same run.
//!
//! Deploys the permissioning contracts on a fresh anvil (its unlocked dev accounts are the
//! founders) with [`NODES`] nodes and [`ACCOUNTS`] accounts, follows them with the real follower
//! and serves the real decision API on loopback. Latency: one client, sequential requests over a
//! kept-alive connection, both sides interleaved round by round. Throughput: [`CONCURRENCY`]
//! clients for [`THROUGHPUT_WINDOW`] per side. Prints a Markdown section on standard output.
//! Needs anvil and `forge build` in `permissioning/` (scripts/bench provides both).

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, FixedBytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    sol,
    sol_types::{SolCall, SolValue},
};
use ecrop::{
    dev::Anvil,
    onchain::Artifacts,
    permissioning::{
        abi::{IAccountAllowlist, INodeRegistry, NodeSpec},
        decision::DecisionServer,
        follower::{Follower, FollowerConfig},
    },
    store::Store,
};
use serde_json::json;

/// Nodes listed at deployment: a consortium of a few dozen members' nodes.
const NODES: usize = 64;
/// Accounts listed at deployment.
const ACCOUNTS: usize = 64;
/// Measured requests per side and round.
const REQUESTS: usize = 1_000;
/// Rounds, alternating the sides so drift on the machine hits both alike.
const ROUNDS: usize = 3;
/// Unmeasured warm-up requests per side.
const WARMUP: usize = 200;
/// Concurrent clients in the throughput measurement.
const CONCURRENCY: usize = 16;
/// Length of each throughput measurement.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(2);

// Constructor arguments of the registries; `NodeSpec` is the follower's own declaration.
sol! {
    struct InitialAccount { address account; address owner; address[] targets; }
    struct InitialValidator { address validator; address owner; }
    function bindRegistries(address nodeRegistry, address accountAllowlist, address validatorSet);
}

fn node_id(i: usize) -> [u8; 64] {
    let mut id = [0u8; 64];
    id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    id[63] = 1;
    id
}

/// One question, asked both ways.
#[derive(Clone)]
struct Question {
    api_path: String,
    eth_call: String,
}

#[tokio::main]
async fn main() {
    let artifacts_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../permissioning/out"));
    assert!(
        artifacts_dir.join("NodeRegistry.sol").is_dir(),
        "permissioning artifacts missing; run `forge build` in permissioning/"
    );
    let artifacts = Artifacts::new(artifacts_dir);
    let anvil_bin = std::env::var("ECROP_ANVIL").unwrap_or_else(|_| "anvil".into());
    let anvil = Anvil::start(&anvil_bin, &[]).await.expect("anvil (run scripts/bootstrap)");
    let url = anvil.url();
    let provider = ProviderBuilder::new().connect_http(url.parse().unwrap());
    let founders: Vec<Address> = provider.get_accounts().await.unwrap()[..3].to_vec();

    let deploy = |name: &'static str, args: Vec<u8>| {
        let provider = provider.clone();
        let artifact = artifacts.get(name).unwrap();
        let from = founders[0];
        async move {
            let mut code = artifact.bytecode.to_vec();
            code.extend_from_slice(&args);
            let request =
                TransactionRequest::default().with_from(from).with_deploy_code(Bytes::from(code));
            let receipt =
                provider.send_transaction(request).await.unwrap().get_receipt().await.unwrap();
            assert!(receipt.status(), "{name} deployment reverted");
            receipt.contract_address.unwrap()
        }
    };
    let names: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
    let governance = deploy(
        "ConsortiumGovernance",
        (founders.clone(), names, U256::from(1), U256::from(2), 100u64, 1u64).abi_encode_params(),
    )
    .await;
    let specs: Vec<NodeSpec> = (0..NODES)
        .map(|i| {
            let id = node_id(i);
            NodeSpec {
                idHigh: B256::from_slice(&id[..32]),
                idLow: B256::from_slice(&id[32..]),
                host: format!("10.0.{}.{}", i / 250, i % 250 + 1),
                port: 30303,
                discPort: 30303,
                owner: founders[i % 3],
                sidecarEndpoint: String::new(),
                payloadKey: B256::ZERO,
            }
        })
        .collect();
    let nodes = deploy("NodeRegistry", (governance, specs).abi_encode_params()).await;
    let target = Address::repeat_byte(0x77);
    let listed: Vec<Address> =
        (0..ACCOUNTS).map(|i| Address::left_padding_from(&[1, i as u8])).collect();
    let initial: Vec<InitialAccount> = listed
        .iter()
        .enumerate()
        .map(|(i, a)| InitialAccount {
            account: *a,
            owner: founders[i % 3],
            targets: if i % 2 == 0 { vec![] } else { vec![target] },
        })
        .collect();
    let accounts = deploy("AccountAllowlist", (governance, initial).abi_encode_params()).await;
    let validators = deploy(
        "ValidatorSet",
        (governance, vec![InitialValidator { validator: founders[0], owner: founders[0] }])
            .abi_encode_params(),
    )
    .await;
    let bind = bindRegistriesCall {
        nodeRegistry: nodes,
        accountAllowlist: accounts,
        validatorSet: validators,
    };
    let request = TransactionRequest::default()
        .with_from(founders[0])
        .with_to(governance)
        .with_input(bind.abi_encode());
    provider.send_transaction(request).await.unwrap().get_receipt().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let follower = Follower::spawn(
        FollowerConfig {
            http_url: url.clone(),
            ws_url: None,
            governance,
            poll_interval: Duration::from_millis(200),
        },
        store,
    )
    .unwrap();
    let mut state = follower.state();
    let head = provider.get_block_number().await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        state.wait_for(|s| s.as_ref().is_some_and(|s| s.synced_block() >= head)),
    )
    .await
    .expect("follower synced")
    .unwrap();
    let server =
        DecisionServer::start("127.0.0.1:0".parse().unwrap(), follower.state(), follower.status())
            .await
            .unwrap();
    let api = format!("http://{}", server.local_addr());
    let block = head + 1;

    // Questions: listed and unknown nodes, accounts with and without targets.
    let connection = |a: [u8; 64], b: [u8; 64]| {
        let call = INodeRegistry::connectionAllowedCall {
            sourceEnodeHigh: B256::from_slice(&a[..32]),
            sourceEnodeLow: B256::from_slice(&a[32..]),
            sourceEnodeIp: FixedBytes::ZERO,
            sourceEnodePort: 30303,
            destinationEnodeHigh: B256::from_slice(&b[..32]),
            destinationEnodeLow: B256::from_slice(&b[32..]),
            destinationEnodeIp: FixedBytes::ZERO,
            destinationEnodePort: 30303,
        };
        Question {
            api_path: format!(
                "/v1/connection?source={}&destination={}&block={block}",
                hex::encode(a),
                hex::encode(b)
            ),
            eth_call: eth_call_body(nodes, &call.abi_encode()),
        }
    };
    let transaction = |sender: Address, to: Address| {
        let call = IAccountAllowlist::transactionAllowedCall {
            sender,
            target: to,
            value: U256::ZERO,
            gasPrice: U256::ZERO,
            gasLimit: U256::from(21_000),
            payload: Bytes::new(),
        };
        Question {
            api_path: format!("/v1/transaction?sender={sender}&target={to}&block={block}"),
            eth_call: eth_call_body(accounts, &call.abi_encode()),
        }
    };
    let mut connections = Vec::new();
    let mut transactions = Vec::new();
    for (i, sender) in listed.iter().enumerate().take(16) {
        connections.push(connection(node_id(i), node_id(NODES - 1 - i)));
        transactions.push(transaction(*sender, target));
    }
    connections.push(connection(node_id(0), node_id(NODES + 5)));
    transactions.push(transaction(Address::repeat_byte(0x99), target));

    // The two ways agree before anything is measured.
    let client = reqwest::Client::new();
    for q in connections.iter().chain(&transactions) {
        let api_answer = ask_api(&client, &api, q).await;
        let legacy = ask_node(&client, &url, q).await;
        assert_eq!(api_answer, legacy, "{}", q.api_path);
    }

    println!(
        "Machine: {} cores. {NODES} nodes and {ACCOUNTS} accounts listed; loopback HTTP with keep-alive for both sides.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("### Permissioning decisions\n");
    println!("| question | way | p50 | p99 | throughput ({CONCURRENCY} clients) |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, questions) in [("connection", &connections), ("transaction", &transactions)] {
        let mut api_samples = Vec::new();
        let mut node_samples = Vec::new();
        for i in 0..WARMUP {
            let q = &questions[i % questions.len()];
            ask_api(&client, &api, q).await;
            ask_node(&client, &url, q).await;
        }
        for _ in 0..ROUNDS {
            for i in 0..REQUESTS {
                let q = &questions[i % questions.len()];
                let start = Instant::now();
                ask_api(&client, &api, q).await;
                api_samples.push(start.elapsed());
            }
            for i in 0..REQUESTS {
                let q = &questions[i % questions.len()];
                let start = Instant::now();
                ask_node(&client, &url, q).await;
                node_samples.push(start.elapsed());
            }
        }
        let api_rate = throughput(&api, questions, true).await;
        let node_rate = throughput(&url, questions, false).await;
        let (a50, a99) = percentiles(&mut api_samples);
        let (n50, n99) = percentiles(&mut node_samples);
        println!("| {name} | decision API | {} | {} | {api_rate:.0}/s |", us(a50), us(a99));
        println!("| {name} | `eth_call` on anvil | {} | {} | {node_rate:.0}/s |", us(n50), us(n99));
        println!(
            "| {name} | ratio | {:.1}x faster | {:.1}x faster | {:.1}x |",
            n50.as_secs_f64() / a50.as_secs_f64(),
            n99.as_secs_f64() / a99.as_secs_f64(),
            api_rate / node_rate
        );
    }

    // The decision itself, without HTTP.
    let snapshot = follower.state().borrow().clone().unwrap();
    let start = Instant::now();
    let mut allowed = 0u64;
    let decisions = 1_000_000;
    for i in 0..decisions {
        allowed +=
            u64::from(snapshot.transaction_allowed_at(listed[i % ACCOUNTS], Some(target), block));
    }
    let per = start.elapsed().as_nanos() as f64 / decisions as f64;
    println!(
        "\nIn memory (no HTTP): {per:.0} ns per `transaction_allowed_at` ({allowed} of {decisions} allowed)."
    );

    server.stop().await;
    follower.stop().await;
    anvil.stop().await;
}

fn eth_call_body(to: Address, data: &[u8]) -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_call",
        "params": [{"to": to, "data": format!("0x{}", hex::encode(data))}, "latest"],
    })
    .to_string()
}

async fn ask_api(client: &reqwest::Client, base: &str, q: &Question) -> bool {
    let response = client.get(format!("{base}{}", q.api_path)).send().await.unwrap();
    assert!(response.status().is_success(), "{}", q.api_path);
    let body: serde_json::Value = response.json().await.unwrap();
    body["allowed"].as_bool().unwrap()
}

async fn ask_node(client: &reqwest::Client, url: &str, q: &Question) -> bool {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(q.eth_call.clone())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let result = body["result"].as_str().expect("eth_call result");
    // bool: the last byte; legacy connection answer: 0xff…ff allowed, 0x7f…ff refused.
    result.len() == 66 && (result.ends_with("01") || result.starts_with("0xff"))
}

async fn throughput(base: &str, questions: &[Question], api: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + THROUGHPUT_WINDOW;
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let done = done.clone();
        let base = base.to_owned();
        let questions = questions.to_vec();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = worker;
            while Instant::now() < deadline {
                let q = &questions[i % questions.len()];
                if api {
                    ask_api(&client, &base, q).await;
                } else {
                    ask_node(&client, &base, q).await;
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / THROUGHPUT_WINDOW.as_secs_f64()
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}
