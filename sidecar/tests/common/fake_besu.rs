//! A fake Besu node that implements exactly the six local-permissioning methods of Besu's
//! `PERM` API, with the request, result and error shapes Besu documents (private-network API
//! reference: `perm_*` take one parameter, a list of enode URLs or addresses, and answer the
//! string `Success`; refusals are JSON-RPC errors with code -32000 and Besu's message).
//!
//! Besu cannot run on these machines, so the allowlist sync is tested against this fake. Its
//! lists live in memory; every call is recorded so tests can count them. Like Besu without
//! `--Xdns-enabled`, it refuses enode URLs with host names unless `dns` is set, and it refuses
//! to remove its fixed nodes (bootnodes and static nodes).

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use alloy::primitives::Address;
use ecrop::permissioning::enode::{Enode, Host};
use jsonrpsee::{
    RpcModule,
    server::{Server, ServerHandle},
    types::{ErrorObjectOwned, Params},
};
use serde_json::Value;

/// Code of every Besu permissioning error.
const PERM_ERROR: i32 = -32000;

// Besu's messages for the local allowlist errors.
pub const NODE_EMPTY: &str = "Request contains an empty list of nodes";
pub const NODE_INVALID: &str = "Request contains an invalid node";
pub const NODE_DUPLICATE: &str = "Request contains duplicate nodes";
pub const NODE_EXISTING: &str = "Cannot add an existing node to allowlist";
pub const NODE_ABSENT: &str = "Cannot remove an absent node from allowlist";
pub const NODE_FIXED: &str = "Cannot remove a fixed node (bootnode or static node) from allowlist";
pub const ACCOUNT_EMPTY: &str = "Request contains an empty list of accounts";
pub const ACCOUNT_INVALID: &str = "Request contains an invalid account";
pub const ACCOUNT_DUPLICATE: &str = "Request contains duplicate accounts";
pub const ACCOUNT_EXISTING: &str = "Cannot add an existing account to allowlist";
pub const ACCOUNT_ABSENT: &str = "Cannot remove an absent account from allowlist";

/// The fake's state.
#[derive(Debug, Default)]
pub struct Lists {
    /// Node allowlist in Besu's canonical form.
    pub nodes: Vec<Enode>,
    /// Account allowlist, as added.
    pub accounts: Vec<String>,
    /// Nodes that cannot be removed.
    pub fixed: BTreeSet<Enode>,
    /// Whether host names are accepted (Besu's `--Xdns-enabled`).
    pub dns: bool,
    /// Every call: method and params.
    pub calls: Vec<(String, Value)>,
}

impl Lists {
    pub fn node_urls(&self) -> BTreeSet<String> {
        self.nodes.iter().map(ToString::to_string).collect()
    }

    pub fn account_set(&self) -> BTreeSet<Address> {
        self.accounts.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// Calls of the changing methods (adds and removes).
    pub fn change_calls(&self) -> Vec<(String, Value)> {
        self.calls.iter().filter(|(m, _)| !m.contains("get")).cloned().collect()
    }
}

pub struct FakeBesu {
    pub addr: SocketAddr,
    pub url: String,
    pub lists: Arc<Mutex<Lists>>,
    handle: ServerHandle,
}

impl FakeBesu {
    /// Starts on a free loopback port.
    pub async fn start(lists: Arc<Mutex<Lists>>) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), lists).await
    }

    /// Starts on `addr` (used to bring a "restarted" node back on its old port).
    pub async fn start_on(addr: SocketAddr, lists: Arc<Mutex<Lists>>) -> Self {
        let server = Server::builder().build(addr).await.expect("binding the fake besu");
        let addr = server.local_addr().unwrap();
        let handle = server.start(module(lists.clone()));
        Self { addr, url: format!("http://{addr}"), lists, handle }
    }

    pub async fn stop(self) {
        self.handle.stop().unwrap();
        self.handle.stopped().await;
    }
}

fn refuse(message: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(PERM_ERROR, message.to_owned(), None::<()>)
}

/// The one parameter every changing method takes: a list of strings.
fn entries(params: &Params<'_>) -> Result<Vec<String>, ErrorObjectOwned> {
    params.one::<Vec<String>>()
}

fn parse_node(text: &str, dns: bool) -> Option<Enode> {
    let enode: Enode = text.parse().ok()?;
    if !dns && matches!(enode.host, Host::Hostname(_)) {
        return None;
    }
    Some(enode.canonical())
}

fn valid_account(text: &str) -> bool {
    text.len() == 42 && text.starts_with("0x") && text[2..].chars().all(|c| c.is_ascii_hexdigit())
}

fn has_duplicates<T: Ord + Clone>(items: &[T]) -> bool {
    items.iter().cloned().collect::<BTreeSet<_>>().len() != items.len()
}

fn module(lists: Arc<Mutex<Lists>>) -> RpcModule<Mutex<Lists>> {
    let mut module = RpcModule::from_arc(lists);

    module
        .register_method("perm_getNodesAllowlist", |params, lists, _| {
            let mut l = lists.lock().unwrap();
            l.calls.push(("perm_getNodesAllowlist".into(), params.parse().unwrap_or(Value::Null)));
            Ok::<_, ErrorObjectOwned>(l.nodes.iter().map(ToString::to_string).collect::<Vec<_>>())
        })
        .unwrap();

    module
        .register_method("perm_getAccountsAllowlist", |params, lists, _| {
            let mut l = lists.lock().unwrap();
            l.calls
                .push(("perm_getAccountsAllowlist".into(), params.parse().unwrap_or(Value::Null)));
            Ok::<_, ErrorObjectOwned>(l.accounts.clone())
        })
        .unwrap();

    module
        .register_method("perm_addNodesToAllowlist", |params, lists, _| {
            let mut l = lists.lock().unwrap();
            l.calls
                .push(("perm_addNodesToAllowlist".into(), params.parse().unwrap_or(Value::Null)));
            let texts = entries(&params)?;
            if texts.is_empty() {
                return Err(refuse(NODE_EMPTY));
            }
            let parsed: Option<Vec<Enode>> = texts.iter().map(|t| parse_node(t, l.dns)).collect();
            let nodes = parsed.ok_or_else(|| refuse(NODE_INVALID))?;
            if has_duplicates(&nodes) {
                return Err(refuse(NODE_DUPLICATE));
            }
            if nodes.iter().any(|n| l.nodes.contains(n)) {
                return Err(refuse(NODE_EXISTING));
            }
            l.nodes.extend(nodes);
            Ok("Success")
        })
        .unwrap();

    module
        .register_method("perm_removeNodesFromAllowlist", |params, lists, _| {
            let mut l = lists.lock().unwrap();
            l.calls.push((
                "perm_removeNodesFromAllowlist".into(),
                params.parse().unwrap_or(Value::Null),
            ));
            let texts = entries(&params)?;
            if texts.is_empty() {
                return Err(refuse(NODE_EMPTY));
            }
            let parsed: Option<Vec<Enode>> = texts.iter().map(|t| parse_node(t, l.dns)).collect();
            let nodes = parsed.ok_or_else(|| refuse(NODE_INVALID))?;
            if has_duplicates(&nodes) {
                return Err(refuse(NODE_DUPLICATE));
            }
            if nodes.iter().any(|n| l.fixed.contains(n)) {
                return Err(refuse(NODE_FIXED));
            }
            if nodes.iter().any(|n| !l.nodes.contains(n)) {
                return Err(refuse(NODE_ABSENT));
            }
            l.nodes.retain(|n| !nodes.contains(n));
            Ok("Success")
        })
        .unwrap();

    module
        .register_method("perm_addAccountsToAllowlist", |params, lists, _| {
            let mut l = lists.lock().unwrap();
            l.calls.push((
                "perm_addAccountsToAllowlist".into(),
                params.parse().unwrap_or(Value::Null),
            ));
            let accounts = entries(&params)?;
            if accounts.is_empty() {
                return Err(refuse(ACCOUNT_EMPTY));
            }
            if !accounts.iter().all(|a| valid_account(a)) {
                return Err(refuse(ACCOUNT_INVALID));
            }
            let lower: Vec<String> = accounts.iter().map(|a| a.to_ascii_lowercase()).collect();
            if has_duplicates(&lower) {
                return Err(refuse(ACCOUNT_DUPLICATE));
            }
            if lower.iter().any(|a| l.accounts.iter().any(|x| x.eq_ignore_ascii_case(a))) {
                return Err(refuse(ACCOUNT_EXISTING));
            }
            l.accounts.extend(accounts);
            Ok("Success")
        })
        .unwrap();

    module
        .register_method("perm_removeAccountsFromAllowlist", |params, lists, _| {
            let mut l = lists.lock().unwrap();
            l.calls.push((
                "perm_removeAccountsFromAllowlist".into(),
                params.parse().unwrap_or(Value::Null),
            ));
            let accounts = entries(&params)?;
            if accounts.is_empty() {
                return Err(refuse(ACCOUNT_EMPTY));
            }
            if !accounts.iter().all(|a| valid_account(a)) {
                return Err(refuse(ACCOUNT_INVALID));
            }
            let lower: Vec<String> = accounts.iter().map(|a| a.to_ascii_lowercase()).collect();
            if has_duplicates(&lower) {
                return Err(refuse(ACCOUNT_DUPLICATE));
            }
            if lower.iter().any(|a| !l.accounts.iter().any(|x| x.eq_ignore_ascii_case(a))) {
                return Err(refuse(ACCOUNT_ABSENT));
            }
            l.accounts.retain(|x| !lower.iter().any(|a| a.eq_ignore_ascii_case(x)));
            Ok("Success")
        })
        .unwrap();

    module
}
