//! The JSON-RPC endpoint against a real SoftHSM2 token and a real anvil chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use alloy::{
    consensus::Transaction as _,
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
};
use common::{DevNet, Serve, call, post_raw};
use serde_json::{Value, json};

/// Clients sending at once in the burst test.
const CLIENTS: usize = 20;
/// Sends per client in the burst test (20 x 10 = 200).
const SENDS_PER_CLIENT: usize = 10;

fn provider(url: &str) -> impl Provider + Clone + use<> {
    ProviderBuilder::new().disable_recommended_fillers().connect_http(url.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_of_sends_is_mined_with_contiguous_nonces() {
    let net = DevNet::start(4);
    let sidecar = provider(&net.endpoint);
    let anvil = provider(&net.upstream);
    let recipient = Address::repeat_byte(0x42);

    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let sidecar = sidecar.clone();
        let from = net.accounts[client % net.accounts.len()];
        clients.push(tokio::spawn(async move {
            let mut hashes = Vec::new();
            for _ in 0..SENDS_PER_CLIENT {
                let tx = TransactionRequest::default()
                    .with_from(from)
                    .with_to(recipient)
                    .with_value(U256::from(1_000u64));
                let pending = sidecar.send_transaction(tx).await.expect("eth_sendTransaction");
                hashes.push((from, *pending.tx_hash()));
            }
            hashes
        }));
    }
    let mut sent = Vec::new();
    for client in clients {
        sent.extend(client.await.unwrap());
    }
    assert_eq!(sent.len(), CLIENTS * SENDS_PER_CLIENT);

    let mut nonces: BTreeMap<Address, Vec<u64>> = BTreeMap::new();
    for (from, hash) in &sent {
        let receipt = wait_receipt(&anvil, *hash).await;
        assert!(receipt.status(), "transaction {hash} failed");
        let tx = anvil.get_transaction_by_hash(*hash).await.unwrap().expect("mined tx");
        assert_eq!(tx.inner.signer(), *from, "recovered sender differs from the token's address");
        nonces.entry(*from).or_default().push(tx.inner.nonce());
    }
    for (account, mut list) in nonces {
        list.sort_unstable();
        let expected: Vec<u64> = (0..list.len() as u64).collect();
        assert_eq!(list, expected, "nonces of {account} not contiguous from 0");
        let on_chain = anvil.get_transaction_count(account).await.unwrap();
        assert_eq!(on_chain, list.len() as u64);
    }
    assert_eq!(
        anvil.get_balance(recipient).await.unwrap(),
        U256::from(1_000u64 * (CLIENTS * SENDS_PER_CLIENT) as u64)
    );
}

async fn wait_receipt(
    provider: &impl Provider,
    hash: B256,
) -> alloy::rpc::types::TransactionReceipt {
    for _ in 0..300 {
        if let Some(receipt) = provider.get_transaction_receipt(hash).await.unwrap() {
            return receipt;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no receipt for {hash}");
}

#[tokio::test]
async fn passthrough_returns_upstream_results_and_errors_unchanged() {
    let net = DevNet::start(1);

    // Results.
    let direct = call(&net.upstream, "eth_chainId", json!([])).await;
    let relayed = call(&net.endpoint, "eth_chainId", json!([])).await;
    assert_eq!(relayed, direct);
    let relayed = call(&net.endpoint, "eth_getBalance", json!([net.accounts[0], "latest"])).await;
    assert_eq!(relayed["result"], "0x3635c9adc5dea00000", "1000 ether funded by ecrop dev");

    // Errors, with the node's own code and message: an unknown method and bad params.
    for (method, params) in [("foo_bar", json!([])), ("eth_getBalance", json!(["0x12"]))] {
        let direct = call(&net.upstream, method, params.clone()).await;
        let relayed = call(&net.endpoint, method, params).await;
        assert!(direct["error"].is_object(), "anvil accepted {method}: {direct}");
        assert_eq!(relayed["error"], direct["error"], "{method}");
    }

    // Absent params stay absent.
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "eth_blockNumber"}).to_string();
    let (status, answer) = post_raw(&net.endpoint, body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["id"], 7);
    assert!(answer["result"].as_str().unwrap().starts_with("0x"));
}

#[tokio::test]
async fn batch_mixes_local_and_relayed_methods() {
    let net = DevNet::start(1);
    let body = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "no_such_method", "params": []},
    ])
    .to_string();
    let (status, answer) = post_raw(&net.endpoint, body).await;
    assert_eq!(status, 200);
    let answers = answer.as_array().expect("batch answer");
    let by_id = |id: u64| answers.iter().find(|a| a["id"] == id).expect("answer present");
    assert_eq!(by_id(1)["result"], json!([net.accounts[0].to_checksum(None).to_lowercase()]));
    assert_eq!(by_id(2)["result"], "0x7a69");
    assert_eq!(by_id(3)["error"]["code"], -32601);
}

#[tokio::test]
async fn websocket_serves_local_and_relayed_methods() {
    use jsonrpsee::{core::client::ClientT, rpc_params, ws_client::WsClientBuilder};
    let net = DevNet::start(1);
    let ws_url = net.endpoint.replace("http://", "ws://");
    let client = WsClientBuilder::default().build(&ws_url).await.expect("websocket connect");
    let accounts: Vec<Address> = client.request("eth_accounts", rpc_params![]).await.unwrap();
    assert_eq!(accounts, net.accounts);
    let chain: String = client.request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(chain, "0x7a69");
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_endpoint_keeps_serving() {
    let net = DevNet::start(1);
    let url = &net.endpoint;

    // Malformed JSON.
    let (_, answer) = post_raw(url, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ").await;
    assert_eq!(answer["error"]["code"], -32700, "{answer}");

    // Not a request object.
    let (_, answer) = post_raw(url, "[]").await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    // Oversized body: over the 2 MiB default.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{{\"data\":\"0x{}\"}}]}}",
        "00".repeat(1_100_000)
    );
    let (status, answer) = post_raw(url, big).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], -32007, "{answer}");

    // Malformed transaction and signing params.
    let answer = call(url, "eth_sendTransaction", json!([{"from": "0x1234"}])).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let answer = call(url, "eth_sendTransaction", json!([{"to": net.accounts[0]}])).await;
    assert_eq!(answer["error"]["message"], "missing from address");
    let answer = call(url, "eth_signTypedData_v4", json!([net.accounts[0], "{not json"])).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");

    // An account the token holds no key for.
    let stranger = Address::repeat_byte(0x77);
    let answer =
        call(url, "eth_sendTransaction", json!([{"from": stranger, "to": stranger}])).await;
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert_eq!(answer["error"]["message"], format!("unknown account ({stranger})"));

    // Chain id of another network.
    let answer = call(
        url,
        "eth_sendTransaction",
        json!([{"from": net.accounts[0], "to": stranger, "chainId": "0x1"}]),
    )
    .await;
    assert_eq!(answer["error"]["message"], "chain id mismatch (request 1, node 31337)");

    // Blob transactions are refused.
    let answer = call(
        url,
        "eth_sendTransaction",
        json!([{"from": net.accounts[0], "to": stranger, "type": "0x3"}]),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");

    // Still serving, and still signing.
    let answer =
        call(url, "eth_sendTransaction", json!([{"from": net.accounts[0], "to": stranger}])).await;
    assert!(answer["result"].is_string(), "{answer}");
}

#[tokio::test]
async fn signs_every_transaction_type_and_messages() {
    let net = DevNet::start(1);
    let from = net.accounts[0];
    let to = Address::repeat_byte(0x99);
    let anvil = provider(&net.upstream);

    for (ty, extra) in [
        (0u8, json!({"type": "0x0"})),
        (0, json!({"gasPrice": "0x77359400"})),
        (1, json!({"type": "0x1", "accessList": [{"address": to, "storageKeys": []}]})),
        (2, json!({"maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x1"})),
        (2, json!({})),
    ] {
        let mut request = json!({"from": from, "to": to, "value": "0x1"});
        for (key, value) in extra.as_object().unwrap() {
            request[key] = value.clone();
        }
        let answer = call(&net.endpoint, "eth_sendTransaction", json!([request])).await;
        let hash: B256 = serde_json::from_value(answer["result"].clone())
            .unwrap_or_else(|_| panic!("type {ty}: {answer}"));
        let receipt = wait_receipt(&anvil, hash).await;
        assert!(receipt.status());
        let mined = anvil.get_transaction_by_hash(hash).await.unwrap().unwrap();
        assert_eq!(mined.inner.tx_type() as u8, ty, "{request}");
        assert_eq!(mined.inner.signer(), from);
        if ty == 0 {
            assert_eq!(mined.inner.chain_id(), Some(31337), "legacy must be EIP-155");
        }
    }

    // eth_signTransaction returns a raw transaction the node accepts as is.
    let answer = call(
        &net.endpoint,
        "eth_signTransaction",
        json!([{"from": from, "to": to, "value": "0x2"}]),
    )
    .await;
    let raw = answer["result"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned();
    let sent = call(&net.upstream, "eth_sendRawTransaction", json!([raw])).await;
    let hash: B256 = serde_json::from_value(sent["result"].clone()).unwrap();
    assert!(wait_receipt(&anvil, hash).await.status());

    // EIP-191 from both eth_sign and personal_sign.
    let message = b"hello ecrop";
    let hex_message = format!("0x{}", hex::encode(message));
    for (method, params) in
        [("eth_sign", json!([from, hex_message])), ("personal_sign", json!([hex_message, from]))]
    {
        let answer = call(&net.endpoint, method, params).await;
        let signature = signature_of(&answer);
        assert_eq!(signature.recover_address_from_msg(message).unwrap(), from, "{method}");
    }

    // EIP-712, both as an object and as a JSON string.
    let typed = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Order": [{"name": "amount", "type": "uint256"}, {"name": "to", "type": "address"}]
        },
        "primaryType": "Order",
        "domain": {"name": "ecrop", "chainId": 31337},
        "message": {"amount": "5", "to": to}
    });
    let data: alloy::dyn_abi::TypedData = serde_json::from_value(typed.clone()).unwrap();
    let hash = data.eip712_signing_hash().unwrap();
    for param in [typed.clone(), Value::String(typed.to_string())] {
        let answer = call(&net.endpoint, "eth_signTypedData_v4", json!([from, param])).await;
        let signature = signature_of(&answer);
        assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), from);
    }
}

fn signature_of(answer: &Value) -> alloy::primitives::Signature {
    let text = answer["result"].as_str().unwrap_or_else(|| panic!("{answer}"));
    let bytes = hex::decode(text.trim_start_matches("0x")).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v must be 27 or 28");
    alloy::primitives::Signature::try_from(bytes.as_slice()).unwrap()
}

#[tokio::test]
async fn nonce_resyncs_after_the_chain_moves_underneath() {
    let net = DevNet::start(1);
    let from = net.accounts[0];
    let to = Address::repeat_byte(0x55);
    let anvil = provider(&net.upstream);
    let send = || call(&net.endpoint, "eth_sendTransaction", json!([{"from": from, "to": to}]));

    let first: B256 = serde_json::from_value(send().await["result"].clone()).unwrap();
    wait_receipt(&anvil, first).await;

    // Move the account's nonce on chain behind the sidecar's back: the cached nonce (1) is
    // now too low, the node refuses it, and the sidecar must read 10 from the chain.
    let answer = call(&net.upstream, "anvil_setNonce", json!([from, "0xa"])).await;
    assert!(answer.get("error").is_none(), "{answer}");

    let answer = send().await;
    let hash: B256 = serde_json::from_value(answer["result"].clone())
        .unwrap_or_else(|_| panic!("send after nonce move: {answer}"));
    let mined = anvil.get_transaction_by_hash(hash).await.unwrap().unwrap();
    assert_eq!(mined.inner.nonce(), 10);

    let next: B256 = serde_json::from_value(send().await["result"].clone()).unwrap();
    let mined = anvil.get_transaction_by_hash(next).await.unwrap().unwrap();
    assert_eq!(mined.inner.nonce(), 11);
}

#[tokio::test]
async fn wrong_pin_and_missing_token_are_reported_while_serving() {
    let net = DevNet::start(1);
    let conf = net.data_dir().join("softhsm2.conf");
    let wrong_pin = net.dir.path().join("wrong.pin");
    std::fs::write(&wrong_pin, "not-the-pin\n").unwrap();
    let stranger = Address::repeat_byte(0x11);

    let mut serve = Serve::start(
        &[
            "--upstream",
            &net.upstream,
            "--token-label",
            "ecrop-dev",
            "--pin-file",
            wrong_pin.to_str().unwrap(),
        ],
        &[("SOFTHSM2_CONF", conf.as_path())],
        net.dir.path().join("serve-wrong-pin.log"),
    );
    let url = serve.endpoint.clone();
    let send =
        || call(&url, "eth_sendTransaction", json!([{"from": net.accounts[0], "to": stranger}]));

    let answer = send().await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("pin incorrect"), "{message}");
    assert!(!message.contains("not-the-pin"), "the PIN leaked into an error: {message}");
    // Reads still pass through.
    assert!(call(&url, "eth_blockNumber", json!([])).await["result"].is_string());
    // The same wrong PIN is not tried again.
    let again = send().await;
    assert!(again["error"]["message"].as_str().unwrap().contains("not retried"), "{again}");

    // Fixing the PIN file makes the next send work without a restart.
    std::fs::copy(net.data_dir().join("user.pin"), &wrong_pin).unwrap();
    let answer = send().await;
    assert!(answer["result"].is_string(), "after fixing the pin: {answer}");
    assert!(serve.proc.is_running());
    let log = serve.proc.log();
    assert!(log.contains("pin incorrect for token (ecrop-dev)"), "{log}");
    assert!(!log.contains("not-the-pin"), "the PIN leaked into the log");
    drop(serve);

    let user_pin = net.data_dir().join("user.pin");
    let serve = Serve::start(
        &[
            "--upstream",
            &net.upstream,
            "--token-label",
            "absent",
            "--pin-file",
            user_pin.to_str().unwrap(),
        ],
        &[("SOFTHSM2_CONF", conf.as_path())],
        net.dir.path().join("serve-absent.log"),
    );
    let answer = call(&serve.endpoint, "eth_accounts", json!([])).await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    assert_eq!(answer["error"]["message"], "token not found (absent)");
    assert!(call(&serve.endpoint, "eth_blockNumber", json!([])).await["result"].is_string());
}

#[tokio::test]
async fn upstream_outage_is_reported_and_recovers() {
    let net = DevNet::start(1);
    let port = ecrop::dev::free_port().unwrap();
    let dead = format!("http://127.0.0.1:{port}");
    let conf = net.data_dir().join("softhsm2.conf");
    let user_pin = net.data_dir().join("user.pin");
    let serve = Serve::start(
        &[
            "--upstream",
            &dead,
            "--token-label",
            "ecrop-dev",
            "--pin-file",
            user_pin.to_str().unwrap(),
        ],
        &[("SOFTHSM2_CONF", conf.as_path())],
        net.dir.path().join("serve-dead.log"),
    );
    let answer = call(&serve.endpoint, "eth_blockNumber", json!([])).await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().starts_with("upstream unreachable"),
        "{answer}"
    );
    let answer = call(
        &serve.endpoint,
        "eth_sendTransaction",
        json!([{"from": net.accounts[0], "to": net.accounts[0]}]),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    // Signing methods that need no node still work.
    let answer = call(&serve.endpoint, "personal_sign", json!(["0x01", net.accounts[0]])).await;
    assert!(answer["result"].is_string(), "{answer}");
}

#[tokio::test]
async fn a_send_without_recipient_deploys_a_contract() {
    let net = DevNet::start(1);
    let anvil = provider(&net.upstream);
    // Init code that deploys a runtime returning 42 as a 32-byte word.
    let init = "0x600a600c600039600a6000f3602a60005260206000f3";
    let answer = call(
        &net.endpoint,
        "eth_sendTransaction",
        json!([{"from": net.accounts[0], "data": init}]),
    )
    .await;
    let hash: B256 = serde_json::from_value(answer["result"].clone())
        .unwrap_or_else(|_| panic!("deployment refused: {answer}"));
    let receipt = wait_receipt(&anvil, hash).await;
    let address = receipt.contract_address.expect("contract address");
    let code = anvil.get_code_at(address).await.unwrap();
    assert_eq!(format!("0x{}", hex::encode(&code)), "0x602a60005260206000f3");
}

#[tokio::test]
async fn browser_origins_and_foreign_hosts_are_refused() {
    let net = DevNet::start(1);
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []}).to_string();
    let client = reqwest::Client::new();

    let refused = client
        .post(&net.endpoint)
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(
        answer["error"]["message"],
        "origin not allowed (https://evil.example); see rpc.allowed_origins"
    );

    let rebound = client
        .post(&net.endpoint)
        .header("content-type", "application/json")
        .header("host", "evil.example.com:8545")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);

    // A WebSocket handshake from a web page is refused too.
    let ws_url = net.endpoint.replace("http://", "ws://");
    let mut headers = http::HeaderMap::new();
    headers.insert("origin", "https://evil.example".parse().unwrap());
    let ws =
        jsonrpsee::ws_client::WsClientBuilder::default().set_headers(headers).build(&ws_url).await;
    assert!(ws.is_err(), "websocket from a foreign origin must be refused");

    // Local tools without an Origin still work.
    let (status, answer) = post_raw(&net.endpoint, body).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn hostile_or_ambiguous_signing_requests_are_refused() {
    let net = DevNet::start(1);
    let from = net.accounts[0];

    // Typed data nesting that would overflow the stack while hashing.
    let mut types = serde_json::Map::new();
    for i in 0..600 {
        types.insert(format!("T{i}"), json!([{"name": "x", "type": format!("T{}", i + 1)}]));
    }
    types.insert("T600".into(), json!([{"name": "x", "type": "uint256"}]));
    let deep = json!({"types": types, "primaryType": "T0", "domain": {}, "message": {}});
    let answer = call(&net.endpoint, "eth_signTypedData_v4", json!([from, deep])).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().starts_with("typed data too large"),
        "{answer}"
    );
    let dims = json!({"types": {"A": [{"name": "x", "type": format!("uint8{}", "[]".repeat(50_000))}]}, "primaryType": "A", "domain": {}, "message": {}});
    let answer = call(&net.endpoint, "eth_signTypedData_v4", json!([from, dims])).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");

    // A domain for another chain.
    let other_chain = json!({
        "types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"}], "M": [{"name": "a", "type": "uint256"}]},
        "primaryType": "M", "domain": {"chainId": 1}, "message": {"a": 1}
    });
    let answer = call(&net.endpoint, "eth_signTypedData_v4", json!([from, other_chain])).await;
    assert_eq!(
        answer["error"]["message"],
        "invalid typed data: domain chain id (1) is not the node's (31337)"
    );

    // Contradictory transaction fields.
    let to = Address::repeat_byte(1);
    for (request, message) in [
        (
            json!({"from": from, "to": to, "data": "0x01", "input": "0x02"}),
            "invalid transaction: both data and input given, and they differ",
        ),
        (
            json!({"from": from, "to": to, "gasPrice": "0x1", "maxFeePerGas": "0x2"}),
            "invalid transaction: gasPrice cannot be combined with maxFeePerGas or maxPriorityFeePerGas",
        ),
        (
            json!({"from": from, "to": to, "nonce": "0xffffffffffffffff"}),
            "invalid transaction: nonce 2^64-1 is not allowed (EIP-2681)",
        ),
    ] {
        let answer = call(&net.endpoint, "eth_sendTransaction", json!([request])).await;
        assert_eq!(answer["error"]["message"], message, "{answer}");
        assert_eq!(answer["error"]["code"], -32602);
    }

    // Still serving.
    assert!(call(&net.endpoint, "eth_blockNumber", json!([])).await["result"].is_string());
}

#[tokio::test]
async fn signing_calls_without_a_usable_id_are_not_executed() {
    let net = DevNet::start(1);
    let from = net.accounts[0];
    let anvil = provider(&net.upstream);
    for id in [json!(-1), json!(1.5), json!([1]), json!({"a": 1})] {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendTransaction",
            "params": [{"from": from, "to": from}]});
        post_raw(&net.endpoint, body.to_string()).await;
    }
    let body = json!({"jsonrpc": "2.0", "method": "eth_sendTransaction", "params": [{"from": from, "to": from}]});
    post_raw(&net.endpoint, body.to_string()).await;
    assert_eq!(
        anvil.get_transaction_count(from).await.unwrap(),
        0,
        "a transaction was sent without an answer"
    );
}

/// Sends from `from` by [`BURST_WORKERS`] concurrent clients until the endpoint stops
/// answering; `stop` runs once [`SENDS_BEFORE_STOP`] sends have been answered. Each send
/// carries a distinct value, so a transaction mined twice would show as a repeated value.
/// Returns each send's value and what its client got.
async fn send_burst(
    url: &str,
    from: Address,
    to: Address,
    stop: impl FnOnce(),
) -> Vec<(u64, Result<B256, String>)> {
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for worker in 0..BURST_WORKERS {
        let url = url.to_owned();
        let done = done_tx.clone();
        workers.push(tokio::spawn(async move {
            for round in 0.. {
                let value = 1 + round * BURST_WORKERS + worker;
                let params = json!([{"from": from, "to": to, "value": format!("{value:#x}")}]);
                let body = json!({"jsonrpc": "2.0", "id": value, "method": "eth_sendTransaction", "params": params});
                let outcome = match tokio::time::timeout(
                    Duration::from_secs(20),
                    post_raw_result(&url, body.to_string()),
                )
                .await
                {
                    Ok(Ok(answer)) => match answer["result"].as_str() {
                        Some(hash) => Ok(hash.parse::<B256>().unwrap()),
                        None => Err(answer.to_string()),
                    },
                    Ok(Err(transport)) => Err(transport),
                    Err(_) => Err("no answer within 20 s".into()),
                };
                let failed = outcome.is_err();
                let _ = done.send((value, outcome));
                if failed {
                    break;
                }
            }
        }));
    }
    drop(done_tx);
    let mut outcomes = Vec::new();
    while outcomes.len() < SENDS_BEFORE_STOP {
        outcomes.push(done_rx.recv().await.expect("workers stopped early"));
    }
    stop();
    while let Some(outcome) = done_rx.recv().await {
        outcomes.push(outcome);
    }
    for worker in workers {
        worker.await.unwrap();
    }
    outcomes
}

const BURST_WORKERS: u64 = 8;
const SENDS_BEFORE_STOP: usize = 24;

/// `ecrop serve` on the dev network's token and chain, with its store at `store`.
fn serve_on(net: &DevNet, store: &std::path::Path, log: &str) -> Serve {
    let conf = net.data_dir().join("softhsm2.conf");
    let pin = net.data_dir().join("user.pin");
    Serve::start(
        &[
            "--upstream",
            &net.upstream,
            "--token-label",
            "ecrop-dev",
            "--pin-file",
            pin.to_str().unwrap(),
            "--store-path",
            store.to_str().unwrap(),
        ],
        &[("SOFTHSM2_CONF", conf.as_path())],
        net.dir.path().join(log),
    )
}

/// The audit log of `store`, exported as JSON lines (while or after a sidecar holds it).
fn audit_entries(store: &std::path::Path) -> Vec<Value> {
    let verify = std::process::Command::new(common::ECROP)
        .args(["audit", "verify", "--json", "--store-path"])
        .arg(store)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let export = std::process::Command::new(common::ECROP)
        .args(["audit", "export", "--format", "jsonl", "--store-path"])
        .arg(store)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .collect()
}

/// The transaction hashes the audit log records as sent.
fn audited_sends(entries: &[Value]) -> std::collections::BTreeSet<String> {
    entries
        .iter()
        .filter(|entry| entry["kind"] == "signature" && entry["action"] == "eth_sendTransaction")
        .filter_map(|entry| entry["outcome"]["result"].as_str().map(str::to_owned))
        .collect()
}

/// Checks the chain against what the clients were told: every accepted send mined once with
/// its value. Returns the accepted sends.
async fn check_sends(net: &DevNet, outcomes: &[(u64, Result<B256, String>)]) -> Vec<(u64, B256)> {
    let accepted: Vec<(u64, B256)> =
        outcomes.iter().filter_map(|(v, o)| o.as_ref().ok().map(|h| (*v, *h))).collect();
    let failed = outcomes.len() - accepted.len();
    eprintln!("sends accepted: {}, reported failed: {failed}", accepted.len());
    assert!(accepted.len() >= SENDS_BEFORE_STOP / 2, "too few sends accepted: {outcomes:?}");
    assert!(failed >= 1, "every worker stops on its first failure");
    let anvil = provider(&net.upstream);
    let mut values = std::collections::BTreeSet::new();
    for (value, hash) in &accepted {
        let receipt = wait_receipt(&anvil, *hash).await;
        assert!(receipt.status(), "accepted send {hash} reverted");
        let mined = anvil.get_transaction_by_hash(*hash).await.unwrap().unwrap();
        assert_eq!(mined.inner.value(), U256::from(*value));
        assert!(values.insert(*value), "value {value} accepted twice");
    }
    accepted
}

/// SIGTERM in the middle of a burst of sends: every send the sidecar accepted is mined, every
/// other one was reported failed to its client, none is mined twice, the process exits cleanly
/// and the audit log holds one intact entry per signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_burst_of_sends_loses_and_duplicates_nothing() {
    let net = DevNet::start(1);
    let store = net.dir.path().join("serve-sigterm.store");
    let mut serve = serve_on(&net, &store, "serve-sigterm.log");
    let from = net.accounts[0];
    let outcomes =
        send_burst(&serve.endpoint, from, Address::repeat_byte(0x42), || serve.proc.signal_term())
            .await;
    let (code, serve) =
        tokio::task::spawn_blocking(move || (serve.proc.wait_exit(), serve)).await.unwrap();
    assert_eq!(code, Some(0), "serve did not exit cleanly:\n{}", serve.proc.log());

    let accepted = check_sends(&net, &outcomes).await;
    // Nothing reached the chain that was not reported accepted: the account's nonce counts
    // every transaction it ever sent.
    let nonce = provider(&net.upstream).get_transaction_count(from).await.unwrap();
    assert_eq!(nonce, accepted.len() as u64, "sent: {nonce}, accepted: {}", accepted.len());

    let entries = audit_entries(&store);
    let recorded = audited_sends(&entries);
    for (_, hash) in &accepted {
        assert!(recorded.contains(&hash.to_string()), "accepted send {hash} not in the audit log");
    }
    let last = entries.last().unwrap();
    assert_eq!(last["action"], "serve_stopped", "{last}");
}

/// SIGKILL in the middle of a burst: every send a client was told about is in the audit log,
/// every transaction on chain was announced there before it was signed, and the next start
/// records that the previous run ended without a stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_a_burst_leaves_every_signature_in_the_audit_log() {
    let net = DevNet::start(1);
    let store = net.dir.path().join("serve-sigkill.store");
    let serve = serve_on(&net, &store, "serve-sigkill.log");
    let pid = serve.proc.pid();
    let from = net.accounts[0];
    let outcomes = send_burst(&serve.endpoint, from, Address::repeat_byte(0x43), || {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    })
    .await;
    drop(serve);

    let accepted = check_sends(&net, &outcomes).await;
    let entries = audit_entries(&store);
    let recorded = audited_sends(&entries);
    for (_, hash) in &accepted {
        assert!(recorded.contains(&hash.to_string()), "accepted send {hash} not in the audit log");
    }
    let requested = entries
        .iter()
        .filter(|e| e["action"] == "eth_sendTransaction" && e["outcome"]["status"] == "none")
        .count() as u64;
    let nonce = provider(&net.upstream).get_transaction_count(from).await.unwrap();
    assert!(requested >= nonce, "{nonce} sent but only {requested} announced in the audit log");

    // The next start notes the unclean end, and the chain goes on intact.
    let again = serve_on(&net, &store, "serve-sigkill-again.log");
    drop(again);
    let entries = audit_entries(&store);
    assert!(
        entries.iter().any(|e| e["action"] == "unclean_shutdown"),
        "no unclean_shutdown entry after the restart"
    );
}

/// Posts `body` with the harness's key; a transport failure (connection refused or reset) is
/// an `Err`, as a client sees it.
async fn post_raw_result(url: &str, body: String) -> Result<Value, String> {
    let mut request =
        reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    if let Some(key) = common::key_for(url) {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| format!("transport: {e}"))?;
    let text = response.text().await.map_err(|e| format!("transport: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))
}
