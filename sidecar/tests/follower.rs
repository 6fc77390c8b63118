//! The permissioning follower, decision API and send enforcement against the real contracts on a
//! real anvil chain, with every governance transaction signed in a SoftHSM2 token by the sidecar.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "common/fake_besu.rs"]
mod fake_besu;
#[path = "common/perm.rs"]
mod perm;
#[path = "common/proxy.rs"]
mod proxy;

use std::{sync::Arc, time::Duration};

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256},
};
use common::{DevNet, Serve, call};
use ecrop::{
    permissioning::{
        abi::{IAccountAllowlist, INodeRegistry, IValidatorSet},
        follower::{Follower, FollowerConfig},
        source::ChainSource,
        state::PermState,
    },
    store::Store,
};
use perm::{DELAY, Perm};
use serde_json::{Value, json};

/// How long the follower may take to reach a block.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

fn ws(http: &str) -> String {
    http.replacen("http://", "ws://", 1)
}

fn spawn(http: &str, ws_url: Option<String>, governance: Address, store: &Store) -> Follower {
    Follower::spawn(
        FollowerConfig {
            http_url: http.to_owned(),
            ws_url,
            governance,
            poll_interval: Duration::from_millis(100),
        },
        store.clone(),
    )
    .unwrap()
}

/// Waits until the follower's state reflects `block` or later.
async fn synced_to(follower: &Follower, block: u64) -> Arc<PermState> {
    let mut rx = follower.state();
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let current = rx.borrow_and_update().clone();
        if let Some(state) = current.filter(|s| s.synced_block() >= block) {
            return state;
        }
        let status = follower.status().borrow().clone();
        assert!(
            tokio::time::timeout_at(deadline, rx.changed()).await.is_ok(),
            "follower not at block {block} within {SYNC_TIMEOUT:?}; status {status:?}"
        );
    }
}

/// The follower's state equals the contracts' state read by `eth_call` at the same block, and
/// every decision equals the contracts' `*At` views, for blocks around it.
async fn assert_matches_contracts(source: &ChainSource, perm: &Perm, state: &PermState) {
    let block = source.block(state.synced_block()).await.unwrap();
    assert_eq!(block.hash, state.synced_hash(), "cursor hash is the chain's");
    let views = source.snapshot(perm.governance, block).await.unwrap();
    assert_eq!(&views, state, "state differs from the views at block {}", block.number);

    let at = block.hash;
    let first = state.synced_block().saturating_sub(25);
    let targets = [Address::ZERO, perm.governance, Address::repeat_byte(0x77), perm.members[0]];
    let mut checked = 0;
    for b in first..=state.decidable_through() + 3 {
        let n = U256::from(b);
        for id in &perm.node_pool {
            let (high, low) = (B256::from_slice(&id[..32]), B256::from_slice(&id[32..]));
            let call =
                INodeRegistry::nodeAllowedAtCall { idHigh: high, idLow: low, blockNumber: n };
            let view = source.call(perm.nodes, call, at, "nodeAllowedAt").await.unwrap();
            assert_eq!(state.node_allowed_at(id, b), view, "node {id:?} at {b}");
            let other = &perm.node_pool[perm.node_pool.len() - 1];
            let call = INodeRegistry::connectionAllowedAtCall {
                sourceIdHigh: high,
                sourceIdLow: low,
                destinationIdHigh: B256::from_slice(&other[..32]),
                destinationIdLow: B256::from_slice(&other[32..]),
                blockNumber: n,
            };
            let view = source.call(perm.nodes, call, at, "connectionAllowedAt").await.unwrap();
            assert_eq!(state.connection_allowed_at(id, other, b), view, "connection at {b}");
            checked += 2;
        }
        for sender in perm.account_pool.iter().chain(&perm.members) {
            for target in targets {
                let call = IAccountAllowlist::transactionAllowedAtCall {
                    sender: *sender,
                    target,
                    blockNumber: n,
                };
                let view =
                    source.call(perm.accounts, call, at, "transactionAllowedAt").await.unwrap();
                let target = (target != Address::ZERO).then_some(target);
                assert_eq!(
                    state.transaction_allowed_at(*sender, target, b),
                    view,
                    "transaction {sender} -> {target:?} at {b}"
                );
                checked += 1;
            }
        }
        let call = IValidatorSet::validatorsAtCall { blockNumber: n };
        let view = source.call(perm.validators, call, at, "validatorsAt").await.unwrap();
        assert_eq!(state.validators_at(b), view, "validators at {b}");
        checked += 1;
    }
    assert!(checked > 100, "too few decisions compared ({checked})");
}

/// Makes `count` random changes; returns how many passed.
async fn changes(perm: &mut Perm, count: usize) -> usize {
    let mut passed = 0;
    for _ in 0..count {
        let (_, ok) = perm.random_change().await;
        passed += usize::from(ok);
    }
    passed
}

#[tokio::test(flavor = "multi_thread")]
async fn follower_cache_equals_contract_views_after_random_proposals() {
    let net = DevNet::start(4);
    let mut perm = Perm::deploy(&net.endpoint, &net.accounts, 5).await;
    let source = ChainSource::new(&net.upstream).unwrap();
    let passed_before = changes(&mut perm, 8).await;

    // Started midway: the state is read from the views, then followed by events.
    let store = Store::open(&net.dir.path().join("store")).unwrap();
    let follower = spawn(&net.upstream, Some(ws(&net.upstream)), perm.governance, &store);
    let state = synced_to(&follower, perm.head().await).await;
    assert_matches_contracts(&source, &perm, &state).await;

    let passed_after = changes(&mut perm, 30).await;
    assert!(passed_before + passed_after >= 10, "too few changes passed to test anything");
    let state = synced_to(&follower, perm.head().await).await;
    assert_matches_contracts(&source, &perm, &state).await;

    let status = follower.status().borrow().clone();
    assert_eq!(status.snapshots, 1, "{status:?}");
    assert!(status.connected && status.subscribed, "{status:?}");
    assert_eq!(status.lag, Some(0), "{status:?}");
    assert!(!state.members().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_resumes_from_the_cursor_without_rescan() {
    let net = DevNet::start(4);
    let mut perm = Perm::deploy(&net.endpoint, &net.accounts, 11).await;
    let source = ChainSource::new(&net.upstream).unwrap();
    let path = net.dir.path().join("store");

    let store = Store::open(&path).unwrap();
    let follower = spawn(&net.upstream, None, perm.governance, &store);
    changes(&mut perm, 10).await;
    let before = synced_to(&follower, perm.head().await).await;
    follower.stop().await;
    drop(store);

    let stopped_at = before.synced_block();
    changes(&mut perm, 10).await;
    let head = perm.head().await;

    let store = Store::open(&path).unwrap();
    let follower = spawn(&net.upstream, None, perm.governance, &store);
    let resumed = follower.state().borrow().clone().expect("state published from the store");
    assert_eq!(resumed.synced_block(), stopped_at);
    assert_eq!(*resumed, *before, "the stored state is the state before the stop");

    let state = synced_to(&follower, head).await;
    let status = follower.status().borrow().clone();
    assert!(status.resumed, "{status:?}");
    assert_eq!(status.snapshots, 0, "no full read after a restart: {status:?}");
    // One log request per block since the cursor, none before it.
    assert_eq!(status.log_requests, head - stopped_at, "{status:?}");
    assert_matches_contracts(&source, &perm, &state).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_the_node_going_away_and_coming_back() {
    let net = DevNet::start(4);
    let mut perm = Perm::deploy(&net.endpoint, &net.accounts, 23).await;
    let source = ChainSource::new(&net.upstream).unwrap();
    let anvil = net.upstream.trim_start_matches("http://").parse().unwrap();
    let mut proxy = proxy::Proxy::start(anvil).await;

    let store = Store::open(&net.dir.path().join("store")).unwrap();
    let follower = spawn(&proxy.http_url(), Some(proxy.ws_url()), perm.governance, &store);
    changes(&mut perm, 4).await;
    let before = synced_to(&follower, perm.head().await).await;

    proxy.down().await;
    changes(&mut perm, 8).await;
    let mut status = follower.status();
    tokio::time::timeout(SYNC_TIMEOUT, status.wait_for(|s| !s.connected)).await.unwrap().unwrap();
    let down = follower.status().borrow().clone();
    assert!(
        down.last_error.as_deref().unwrap_or_default().starts_with("node request failed ("),
        "{down:?}"
    );
    // The last state stays published while the node is away.
    let kept = follower.state().borrow().clone().unwrap();
    assert_eq!(kept.synced_block(), before.synced_block());

    proxy.up().await;
    let state = synced_to(&follower, perm.head().await).await;
    let status = follower.status().borrow().clone();
    assert!(status.connected && status.last_error.is_none(), "{status:?}");
    assert_eq!(status.snapshots, 1, "caught up from the cursor, not by a full read: {status:?}");
    assert_matches_contracts(&source, &perm, &state).await;
}

async fn anvil(url: &str, method: &str, params: Value) -> Value {
    let answer = call(url, method, params).await;
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn rolls_back_on_a_reorg() {
    let net = DevNet::start(4);
    let mut perm = Perm::deploy(&net.endpoint, &net.accounts, 31).await;
    let source = ChainSource::new(&net.upstream).unwrap();
    let store = Store::open(&net.dir.path().join("store")).unwrap();
    let follower = spawn(&net.upstream, Some(ws(&net.upstream)), perm.governance, &store);
    synced_to(&follower, perm.head().await).await;

    let snapshot = anvil(&net.upstream, "evm_snapshot", json!([])).await;
    let newcomer = Address::repeat_byte(0x5e);
    let add = perm::Gov::proposeAddAccountCall {
        account: newcomer,
        owner: perm.members[0],
        targets: vec![],
        requestedActivation: 0,
    };
    assert!(perm.pass(0, alloy::sol_types::SolCall::abi_encode(&add)).await);
    let head = perm.head().await;
    let state = synced_to(&follower, head).await;
    assert!(state.account(newcomer).is_some(), "the change is followed");

    // The change is reorganised away and the chain grows past the old head.
    anvil(&net.upstream, "evm_revert", json!([snapshot])).await;
    anvil(&net.upstream, "anvil_mine", json!(["0x5"])).await;
    let new_head = perm.head().await;
    assert!(new_head > head);
    let mut status = follower.status();
    tokio::time::timeout(SYNC_TIMEOUT, status.wait_for(|s| s.reorgs >= 1)).await.unwrap().unwrap();
    let state = synced_to(&follower, new_head).await;
    assert!(state.account(newcomer).is_none(), "the reorganised change is gone");
    let canonical = source.block(state.synced_block()).await.unwrap();
    assert_eq!(canonical.hash, state.synced_hash());
    assert_matches_contracts(&source, &perm, &state).await;
}

/// GET on the decision API; status and JSON body.
async fn get(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_sends_from_accounts_not_allowed_and_answers_the_decision_api() {
    let net = DevNet::start(4);
    let mut perm = Perm::deploy(&net.endpoint, &net.accounts, 41).await;
    let conf = net.data_dir().join("softhsm2.conf");
    let user_pin = net.data_dir().join("user.pin");
    let store = net.dir.path().join("serve-store");
    let governance = perm.governance.to_string();
    // A fake Besu (built from Besu's documented PERM API) whose allowlists serve keeps in step.
    let besu_lists = Arc::new(std::sync::Mutex::new(fake_besu::Lists::default()));
    let besu = fake_besu::FakeBesu::start(besu_lists.clone()).await;
    let permissions_file = net.dir.path().join("permissions_config.toml");
    let mut serve = Serve::start(
        &[
            "--besu-sync-url",
            &besu.url,
            "--besu-permissions-file",
            permissions_file.to_str().unwrap(),
            "--upstream",
            &net.upstream,
            "--token-label",
            "ecrop-dev",
            "--pin-file",
            user_pin.to_str().unwrap(),
            "--perm-governance",
            &governance,
            "--perm-ws-url",
            &ws(&net.upstream),
            "--decision-listen",
            "127.0.0.1:0",
            "--store-path",
            store.to_str().unwrap(),
            "--perm-poll-ms",
            "100",
        ],
        &[("SOFTHSM2_CONF", conf.as_path())],
        net.dir.path().join("serve.log"),
    );
    let line = serve.proc.wait_line("ecrop decisions on");
    let decisions = line.split_whitespace().nth(3).unwrap().to_owned();

    let wait_synced = |head: u64| {
        let decisions = decisions.clone();
        async move {
            let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
            loop {
                let (code, body) = get(&decisions, "/v1/status").await;
                if code == 200 && body["synced_block"].as_u64() >= Some(head) {
                    return body;
                }
                assert!(tokio::time::Instant::now() < deadline, "not synced to {head}: {body}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let head = perm.head().await;
    wait_synced(head).await;

    // The Besu allowlist follows the contracts: the allowed accounts arrive through perm_*.
    let deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    loop {
        let accounts = besu_lists.lock().unwrap().account_set();
        if accounts.contains(&net.accounts[0]) {
            assert!(!accounts.contains(&net.accounts[3]), "an account not listed reached Besu");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "besu allowlist never synced: {accounts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let file = std::fs::read_to_string(&permissions_file).unwrap();
    assert!(file.contains("accounts-allowlist"), "{file}");
    assert!(file.to_lowercase().contains(&net.accounts[0].to_string().to_lowercase()), "{file}");

    // An account the token holds but the allowlist does not list.
    let outsider = net.accounts[3];
    let member = net.accounts[0];
    let next = head + 1;
    for method in ["eth_sendTransaction", "eth_signTransaction"] {
        let answer = call(&serve.endpoint, method, json!([{"from": outsider, "to": member}])).await;
        assert_eq!(answer["error"]["code"], -32003, "{answer}");
        assert_eq!(
            answer["error"]["message"],
            format!(
                "transaction rejected: account {outsider} is not allowed to send to {member} at block {next} (not listed)"
            ),
            "{answer}"
        );
    }
    // A listed account sends as before.
    let answer =
        call(&serve.endpoint, "eth_sendTransaction", json!([{"from": member, "to": outsider}]))
            .await;
    assert!(answer["result"].is_string(), "{answer}");

    // Listed with the governance contract as its only target.
    let add = perm::Gov::proposeAddAccountCall {
        account: outsider,
        owner: perm.members[1],
        targets: vec![perm.governance],
        requestedActivation: 0,
    };
    assert!(perm.pass(1, alloy::sol_types::SolCall::abi_encode(&add)).await);
    anvil(&net.upstream, "anvil_mine", json!(["0x1"])).await;
    let head = perm.head().await;
    wait_synced(head).await;
    let next = head + 1;
    let answer =
        call(&serve.endpoint, "eth_signTransaction", json!([{"from": outsider, "to": member}]))
            .await;
    assert_eq!(
        answer["error"]["message"],
        format!(
            "transaction rejected: account {outsider} is not allowed to send to {member} at block {next}"
        ),
        "{answer}"
    );
    let answer =
        call(&serve.endpoint, "eth_signTransaction", json!([{"from": outsider, "data": "0x00"}]))
            .await;
    assert_eq!(
        answer["error"]["message"],
        format!(
            "transaction rejected: account {outsider} is not allowed to create contracts at block {next}"
        ),
        "{answer}"
    );
    let answer = call(
        &serve.endpoint,
        "eth_signTransaction",
        json!([{"from": outsider, "to": perm.governance, "gas": "0x30000"}]),
    )
    .await;
    assert!(answer["result"].is_string(), "{answer}");

    // The decision API answers from memory, for a stated block.
    let first = hex::encode(perm::node_id(200));
    let other = hex::encode(perm::node_id(1));
    let (code, body) =
        get(&decisions, &format!("/v1/connection?source={first}&destination={first}&block={next}"))
            .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["allowed"], true);
    assert_eq!(body["block"], next);
    let (_, body) =
        get(&decisions, &format!("/v1/connection?source={first}&destination={other}&block={next}"))
            .await;
    assert_eq!(body["allowed"], false, "{body}");
    let (code, body) = get(
        &decisions,
        &format!("/v1/transaction?sender={outsider}&target={}&block={next}", perm.governance),
    )
    .await;
    assert_eq!((code, body["allowed"].clone()), (200, json!(true)), "{body}");
    let (_, body) =
        get(&decisions, &format!("/v1/transaction?sender={outsider}&block={next}")).await;
    assert_eq!(body["allowed"], false, "contract creation is not among the targets: {body}");

    // Malformed questions and questions beyond what the follower knows.
    let far = head + DELAY + 1;
    let cases: Vec<(String, u16, String)> = vec![
        (
            "/v1/transaction?sender=0x12&block=1".into(),
            400,
            "invalid sender (0x12): expected 40 hex digits".into(),
        ),
        (format!("/v1/transaction?sender={outsider}"), 400, "missing parameter (block)".into()),
        (
            format!("/v1/transaction?sender={outsider}&block=1&gas=1"),
            400,
            "unknown parameter (gas)".into(),
        ),
        (
            format!(
                "/v1/connection?source={first}&destination={first}&destination={first}&block=1"
            ),
            400,
            "repeated parameter (destination)".into(),
        ),
        (
            format!("/v1/connection?source={}&destination={first}&block=1", &first[..127]),
            400,
            format!("invalid source ({}…): expected 128 hex digits", &first[..80]),
        ),
        (
            format!("/v1/connection?source={first}&destination={first}&block=ten"),
            400,
            "invalid block (ten): expected a decimal or 0x-hex block number".into(),
        ),
        (
            format!("/v1/connection?source={first}&destination={first}&block={far}"),
            503,
            format!(
                "follower behind (block {far} asked, state synced to block {head} decides through {})",
                head + DELAY
            ),
        ),
        (
            "/v1/elsewhere".into(),
            404,
            "unknown path; use /v1/connection, /v1/transaction or /v1/status".into(),
        ),
    ];
    for (path, code, error) in cases {
        let (status, body) = get(&decisions, &path).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap_or_default()),
            (code, error.as_str()),
            "{path}"
        );
    }
    let long = format!("/v1/transaction?sender={}", "a".repeat(600));
    let (status, body) = get(&decisions, &long).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("query too long (607 bytes, at most 512)"))
    );

    // The views agree with the API for the same block.
    let source = ChainSource::new(&net.upstream).unwrap();
    let call_view = IAccountAllowlist::transactionAllowedAtCall {
        sender: outsider,
        target: perm.governance,
        blockNumber: U256::from(next),
    };
    let view = source
        .call_at(perm.accounts, call_view, BlockId::latest(), "transactionAllowedAt")
        .await
        .unwrap();
    assert!(view);
    assert_eq!(serve.proc.terminate(), Some(0));
}
