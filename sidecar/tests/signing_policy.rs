//! The signing policy through the real binary: `ecrop dev --config FILE` with a `[signing]`
//! section, a SoftHSM2 token and anvil. Refusals answer -32003 naming the rule, allowed
//! requests are mined, and a refusal takes no nonce.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use alloy::{
    consensus::Transaction as _,
    primitives::{Address, B256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
};
use common::{DevNet, ECROP, call};
use serde_json::{Value, json};

/// A recipient with a function list: only `transfer(address,uint256)`, at most 500 wei.
const TOKEN: Address = Address::repeat_byte(0x11);
/// A recipient without a function list.
const VAULT: Address = Address::repeat_byte(0x22);
/// A recipient not among the targets.
const STRANGER: Address = Address::repeat_byte(0x33);
/// Call data of `transfer(0x…44, 1)`.
const TRANSFER_CALL: &str = concat!(
    "0xa9059cbb",
    "0000000000000000000000004444444444444444444444444444444444444444",
    "0000000000000000000000000000000000000000000000000000000000000001"
);
/// Call data of `approve(0x…44, 1)`.
const APPROVE_CALL: &str = concat!(
    "0x095ea7b3",
    "0000000000000000000000004444444444444444444444444444444444444444",
    "0000000000000000000000000000000000000000000000000000000000000001"
);
/// Longest wait for a receipt (anvil mines on arrival; this only bounds a hang).
const RECEIPT_WAIT: Duration = Duration::from_secs(30);

/// Policy of the three development keys: dev-0 (written checksummed) restricted in every way
/// but clients, dev-1 (written lowercase) reserved to one client, dev-2 without entry under a
/// denying default.
fn policy(accounts: &[Address]) -> String {
    let restricted = accounts[0];
    let reserved = accounts[1].to_string().to_lowercase();
    format!(
        r#"
[signing]
default = "deny"

[signing.keys.{restricted}]
messages = false
max_value = "1000"
contract_creation = false

[[signing.keys.{restricted}.targets]]
address = "{TOKEN}"
functions = ["transfer(address,uint256)"]
max_value = 500

[[signing.keys.{restricted}.targets]]
address = "{VAULT}"

[signing.keys.{reserved}]
clients = ["treasury-app"]
"#
    )
}

/// Starts the network once to learn the token's addresses, writes the policy for them and
/// starts it again on the same token.
fn start_with_policy() -> DevNet {
    let first = DevNet::start(3);
    let accounts = first.accounts.clone();
    let dir = first.stop();
    let config = dir.path().join("ecrop.toml");
    std::fs::write(&config, policy(&accounts)).unwrap();
    let net = DevNet::start_in(dir, 3, &["--config", config.to_str().unwrap()]);
    assert_eq!(net.accounts, accounts, "the rerun did not reuse the token's keys");
    net
}

/// `signing.keys.KEY…` with the key as the config writes it (`Address` displays checksummed).
fn rule(key: impl std::fmt::Display, suffix: &str) -> String {
    format!("signing.keys.{key}{suffix}")
}

fn target_rule(account: Address, target: Address, suffix: &str) -> String {
    format!("signing.keys.{account}.targets[{target}]{suffix}")
}

/// Asserts a -32003 answer naming `rule`, with `{rule, reason}` as data; returns the reason.
fn assert_refused(answer: &Value, rule: &str) -> String {
    let error = &answer["error"];
    assert_eq!(error["code"], -32003, "{answer}");
    assert_eq!(error["data"]["rule"], rule, "{answer}");
    let reason = error["data"]["reason"].as_str().expect("reason").to_owned();
    assert_eq!(
        error["message"],
        format!("refused by signing policy rule ({rule}): {reason}"),
        "{answer}"
    );
    reason
}

fn tx(from: Address, to: Option<Address>, value: u64, data: &str) -> Value {
    let mut tx = json!({"from": from, "value": format!("{value:#x}"), "data": data});
    if let Some(to) = to {
        tx["to"] = json!(to);
    }
    json!([tx])
}

async fn receipt(url: &str, hash: B256) -> TransactionReceipt {
    let anvil = ProviderBuilder::new().connect_http(url.parse().unwrap());
    let deadline = Instant::now() + RECEIPT_WAIT;
    loop {
        if let Some(receipt) = anvil.get_transaction_receipt(hash).await.unwrap() {
            return receipt;
        }
        assert!(Instant::now() < deadline, "transaction {hash} not mined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends through the sidecar, expects it mined; returns its nonce.
async fn send_mined(net: &DevNet, params: Value) -> u64 {
    let answer = call(&net.endpoint, "eth_sendTransaction", params).await;
    let hash: B256 = serde_json::from_value(answer["result"].clone())
        .unwrap_or_else(|_| panic!("send refused: {answer}"));
    assert!(receipt(&net.upstream, hash).await.status(), "transaction {hash} reverted");
    let anvil = ProviderBuilder::new().connect_http(net.upstream.parse().unwrap());
    anvil.get_transaction_by_hash(hash).await.unwrap().expect("mined").inner.nonce()
}

#[tokio::test]
async fn refused_sends_name_the_rule_and_take_no_nonce() {
    let net = start_with_policy();
    let key = net.accounts[0];

    // At the key's cap, to a target without a function list.
    assert_eq!(send_mined(&net, tx(key, Some(VAULT), 1000, "0x")).await, 0);

    let refusals = [
        (tx(key, Some(STRANGER), 0, "0x"), rule(key, ".targets")),
        (tx(key, Some(TOKEN), 0, APPROVE_CALL), target_rule(key, TOKEN, ".functions")),
        (tx(key, Some(TOKEN), 0, "0xa9059c"), target_rule(key, TOKEN, ".functions")),
        (tx(key, Some(TOKEN), 501, TRANSFER_CALL), target_rule(key, TOKEN, ".max_value")),
        (tx(key, Some(VAULT), 1001, "0x"), rule(key, ".max_value")),
        (tx(key, None, 0, "0x6080"), rule(key, ".contract_creation")),
    ];
    for (params, expected) in &refusals {
        let answer = call(&net.endpoint, "eth_sendTransaction", params.clone()).await;
        assert_refused(&answer, expected);
    }
    let answer = call(&net.endpoint, "eth_sendTransaction", refusals[0].0.clone()).await;
    assert_eq!(
        assert_refused(&answer, &rule(key, ".targets")),
        format!("recipient ({STRANGER}) is not among the key's targets")
    );
    let answer = call(&net.endpoint, "eth_sendTransaction", refusals[4].0.clone()).await;
    assert_eq!(
        assert_refused(&answer, &rule(key, ".max_value")),
        "value (1001 wei) is above the cap (1000 wei)"
    );

    // The refusals took no nonce: the next allowed send has the next one.
    assert_eq!(send_mined(&net, tx(key, Some(TOKEN), 500, TRANSFER_CALL)).await, 1);
    let anvil = ProviderBuilder::new().connect_http(net.upstream.parse().unwrap());
    assert_eq!(anvil.get_transaction_count(key).await.unwrap(), 2);
}

#[tokio::test]
async fn refused_signatures_name_the_rule() {
    let net = start_with_policy();
    let (key, reserved, unlisted) = (net.accounts[0], net.accounts[1], net.accounts[2]);
    let url = &net.endpoint;

    // eth_signTransaction: refused like a send, allowed when the policy allows.
    let answer = call(url, "eth_signTransaction", tx(key, Some(STRANGER), 0, "0x")).await;
    assert_refused(&answer, &rule(key, ".targets"));
    let answer = call(url, "eth_signTransaction", tx(key, Some(TOKEN), 0, APPROVE_CALL)).await;
    assert_refused(&answer, &target_rule(key, TOKEN, ".functions"));
    let answer = call(url, "eth_signTransaction", tx(key, Some(TOKEN), 0, TRANSFER_CALL)).await;
    assert!(answer["result"].as_str().is_some_and(|raw| raw.starts_with("0x")), "{answer}");

    // Messages and typed data.
    let typed = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Mail": [{"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "ecrop"},
        "message": {"contents": "hello"}
    });
    for (method, params) in [
        ("eth_sign", json!([key, "0x68656c6c6f"])),
        ("personal_sign", json!(["0x68656c6c6f", key])),
        ("eth_signTypedData_v4", json!([key, typed])),
    ] {
        let answer = call(url, method, params).await;
        let reason = assert_refused(&answer, &rule(key, ".messages"));
        assert_eq!(reason, "this key does not sign messages or typed data", "{method}");
    }

    // A key reserved to one client: the dev endpoint's requests are not that client. The
    // rule names the key as the config writes it, here in lowercase.
    let written = reserved.to_string().to_lowercase();
    let answer = call(url, "eth_sendTransaction", tx(reserved, Some(VAULT), 1, "0x")).await;
    assert_refused(&answer, &rule(&written, ".clients"));
    let answer = call(url, "personal_sign", json!(["0x68", reserved])).await;
    assert_refused(&answer, &rule(&written, ".clients"));

    // A key without entry under `default = "deny"`.
    let answer = call(url, "eth_sendTransaction", tx(unlisted, Some(VAULT), 1, "0x")).await;
    let reason = assert_refused(&answer, "signing.default");
    assert_eq!(
        reason,
        format!("key ({unlisted}) has no entry in signing.keys and the default is deny")
    );
    let answer = call(url, "eth_sign", json!([unlisted, "0x68"])).await;
    assert_refused(&answer, "signing.default");

    // Nothing refused reached the chain.
    let anvil = ProviderBuilder::new().connect_http(net.upstream.parse().unwrap());
    for account in [key, reserved, unlisted] {
        assert_eq!(anvil.get_transaction_count(account).await.unwrap(), 0, "{account}");
    }
}

/// Runs `ecrop` with `args` and a config holding `policy`; returns exit code and stderr.
fn run_with_policy(dir: &Path, args: &[&str], policy: &str) -> (i32, String) {
    let config = dir.join("bad.toml");
    std::fs::write(&config, policy).unwrap();
    let output = Command::new(ECROP)
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("ECROP_PIN_ENV", "ECROP_TEST_NO_PIN")
        .current_dir(dir)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_bad_policy_stops_the_sidecar_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("dev");
    let port = ecrop::dev::free_port().unwrap().to_string();
    let dev: &[&str] = &["dev", "--rpc-port", &port, "--data-dir", data_dir.to_str().unwrap()];
    let serve: &[&str] = &["serve", "--listen", "127.0.0.1:0"];
    let key = "0x5b38da6a701c568545dcfcb03fcb875f56beddc4";
    let cases = [
        (
            "[signing.keys.0x5b38]\n".to_owned(),
            "error: config invalid: signing.keys.0x5b38: (0x5b38) is not 0x and 40 hex digits",
        ),
        (
            format!("[signing.keys.{key}]\nmax_value = \"lots\"\n"),
            "error: config invalid: signing.keys.0x5b38da6a701c568545dcfcb03fcb875f56beddc4.\
             max_value: amount (lots) is not a decimal or 0x number of wei",
        ),
        (
            format!(
                "[[signing.keys.{key}.targets]]\naddress = \"{key}\"\nfunctions = [\"0x1234\"]\n"
            ),
            "error: config invalid: signing.keys.0x5b38da6a701c568545dcfcb03fcb875f56beddc4.\
             targets[0x5b38da6a701c568545dcfcb03fcb875f56beddc4].functions: selector (0x1234) \
             is not 0x and 8 hex digits",
        ),
    ];
    for (policy, expected) in &cases {
        for args in [dev, serve] {
            let (code, stderr) = run_with_policy(dir.path(), args, policy);
            assert_eq!(code, 1, "{args:?}: {stderr}");
            assert_eq!(stderr.trim(), *expected, "{args:?}");
        }
    }
    let (code, stderr) = run_with_policy(dir.path(), serve, "[signing]\nkeys = 1\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid type: integer `1`, expected a map"), "{stderr}");
}
