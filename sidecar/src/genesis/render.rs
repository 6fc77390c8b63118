//! The generated files, as pure functions of the definition and the validators' public keys.
//!
//! Paths written into node configurations start at the node-side root (`[nodes] root`), which
//! is where the output directory is found on the nodes; it defaults to the output directory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, U256, hex};
use serde_json::{Value, json};

use super::{GenesisError, NetworkDefinition, Predeployed, QbftExtraData, enode_url};
use crate::config::DEFAULT_PKCS11_MODULE;

/// Block gas limit when the definition sets none: 700 million, the value of Besu's QBFT
/// documentation example. Gas is free on this network, so the limit only bounds block work.
pub const DEFAULT_GAS_LIMIT: u64 = 0x29b9_2700;

/// The `mixHash` a BFT genesis block must carry: the bytes of "ctical byzantine fault
/// tolerance", the constant Besu checks for IBFT 2.0 and QBFT blocks.
pub const BFT_MIX_HASH: &str = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365";

/// Wei per ether.
const WEI_PER_ETHER: u64 = 1_000_000_000_000_000_000;

/// Besu JSON-RPC API groups enabled on each node's loopback: the sidecar relays the standard
/// ones, drives the local allowlists through `PERM` and reads the validator set through `QBFT`.
const BESU_RPC_APIS: [&str; 7] = ["ETH", "NET", "WEB3", "QBFT", "PERM", "ADMIN", "TXPOOL"];

/// A validator with the key its token holds.
#[derive(Debug, Clone)]
pub struct ValidatorKey {
    /// Validator name (and token label).
    pub name: String,
    /// Node address: the validator's address in QBFT.
    pub address: Address,
    /// Uncompressed SEC1 public key of the node key.
    pub public_key: [u8; 65],
}

/// One file to write, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the output directory.
    pub path: PathBuf,
    /// Contents.
    pub contents: String,
}

/// The directory of validator `name` inside `root`.
pub fn node_dir(root: &Path, name: &str) -> PathBuf {
    root.join("nodes").join(name)
}

/// Renders every generated file. `keys` follow the order of `def.validators`; `contracts`
/// were created by the first admin from nonce 0 (see [`super::execute_constructors`]); `out`
/// is the output directory (the node-side root when the definition names none).
pub fn render(
    def: &NetworkDefinition,
    keys: &[ValidatorKey],
    contracts: &[Predeployed],
    out: &Path,
) -> Result<Vec<GeneratedFile>, GenesisError> {
    let same = keys.len() == def.validators.len()
        && keys.iter().zip(&def.validators).all(|(k, v)| k.name == v.name);
    if !same {
        return Err(GenesisError::Invalid("keys do not match the validators".into()));
    }
    let root = def.nodes.root.clone().unwrap_or_else(|| out.to_owned());

    let mut enodes = Vec::with_capacity(keys.len());
    for (key, v) in keys.iter().zip(&def.validators) {
        enodes.push(enode_url(&key.public_key, v.host, v.p2p_port)?);
    }

    let mut files = vec![
        file("genesis.json", json_text("genesis.json", &genesis_json(def, keys, contracts)?)?),
        file("static-nodes.json", json_text("static-nodes.json", &json!(enodes))?),
        file("network.json", json_text("network.json", &summary_json(def, keys, &enodes))?),
    ];
    if !contracts.is_empty() {
        let deployment = crate::onchain::Deployment {
            chain_id: def.network.chain_id,
            contracts: contracts.iter().map(|c| (c.name.clone(), c.address)).collect(),
            start_block: 0,
        };
        let value = serde_json::to_value(&deployment).map_err(|e| GenesisError::Serialise {
            what: "deployment.json".into(),
            message: e.to_string(),
        })?;
        files.push(file("deployment.json", json_text("deployment.json", &value)?));
    }
    for (key, v) in keys.iter().zip(&def.validators) {
        let node = node_dir(Path::new(""), &v.name);
        let node_root = node_dir(&root, &v.name);
        files.push(GeneratedFile {
            path: node.join("besu").join("config.toml"),
            contents: besu_config(def, v, &root, &node_root),
        });
        files.push(GeneratedFile {
            path: node.join("besu").join("permissions_config.toml"),
            contents: permissions_config(def, &enodes),
        });
        files.push(GeneratedFile {
            path: node.join("ecrop.toml"),
            contents: sidecar_config(def, v, &node_root),
        });
        files.push(GeneratedFile {
            path: node.join("node.json"),
            contents: json_text(
                "node.json",
                &json!({
                    "name": key.name,
                    "address": key.address,
                    "publicKey": hex::encode_prefixed(key.public_key),
                    "enode": enode_url(&key.public_key, v.host, v.p2p_port)?,
                }),
            )?,
        });
    }
    Ok(files)
}

fn file(path: &str, contents: String) -> GeneratedFile {
    GeneratedFile { path: PathBuf::from(path), contents }
}

fn json_text(what: &str, value: &Value) -> Result<String, GenesisError> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| GenesisError::Serialise { what: what.to_owned(), message: e.to_string() })
}

/// Besu's genesis file: all forks from block 0 (the contracts target Cancun), QBFT with
/// block-header validator selection, a zero base fee, free gas and the pre-deployed contracts.
fn genesis_json(
    def: &NetworkDefinition,
    keys: &[ValidatorKey],
    contracts: &[Predeployed],
) -> Result<Value, GenesisError> {
    let n = &def.network;
    let extra = QbftExtraData::genesis(keys.iter().map(|k| k.address).collect()).encode();

    let balance = U256::from(n.account_balance_ether.unwrap_or(0)) * U256::from(WEI_PER_ETHER);
    let mut alloc = serde_json::Map::new();
    for account in def.members.iter().map(|m| m.account).chain(def.admins.iter().copied()) {
        alloc.insert(account.to_string(), json!({ "balance": format!("{balance:#x}") }));
    }
    if !contracts.is_empty() {
        let Some(deployer) = def.admins.first() else {
            return Err(GenesisError::Invalid("[contracts] needs an admin to deploy them".into()));
        };
        // The deployer's next live transaction must not reuse a pre-deployed address.
        let entry = alloc
            .entry(deployer.to_string())
            .or_insert_with(|| json!({ "balance": format!("{balance:#x}") }));
        entry["nonce"] = json!(format!("{:#x}", contracts.len()));
    }
    for contract in contracts {
        let storage: serde_json::Map<String, Value> = contract
            .storage
            .iter()
            .map(|(slot, value)| (hex::encode(slot), json!(hex::encode(value))))
            .collect();
        alloc.insert(
            contract.address.to_string(),
            json!({
                "comment": contract.name,
                "balance": "0x0",
                "code": hex::encode_prefixed(&contract.code),
                "storage": storage,
            }),
        );
    }

    Ok(json!({
        "config": {
            "chainId": n.chain_id,
            "homesteadBlock": 0,
            "eip150Block": 0,
            "eip155Block": 0,
            "eip158Block": 0,
            "byzantiumBlock": 0,
            "constantinopleBlock": 0,
            "petersburgBlock": 0,
            "istanbulBlock": 0,
            "muirGlacierBlock": 0,
            "berlinBlock": 0,
            "londonBlock": 0,
            "shanghaiTime": 0,
            "cancunTime": 0,
            "zeroBaseFee": true,
            "qbft": {
                "blockperiodseconds": n.block_period_seconds,
                "epochlength": n.epoch_length,
                "requesttimeoutseconds": n.request_timeout_seconds,
            },
        },
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": format!("{:#x}", n.gas_limit.unwrap_or(DEFAULT_GAS_LIMIT)),
        "difficulty": "0x1",
        "baseFeePerGas": "0x0",
        "mixHash": BFT_MIX_HASH,
        "coinbase": Address::ZERO,
        "extraData": hex::encode_prefixed(extra),
        "alloc": alloc,
    }))
}

fn summary_json(def: &NetworkDefinition, keys: &[ValidatorKey], enodes: &[String]) -> Value {
    let validators: Vec<Value> = keys
        .iter()
        .zip(enodes)
        .map(|(k, e)| json!({ "name": k.name, "address": k.address, "enode": e }))
        .collect();
    let members: Vec<Value> =
        def.members.iter().map(|m| json!({ "name": m.name, "account": m.account })).collect();
    json!({
        "name": def.network.name,
        "chainId": def.network.chain_id,
        "validators": validators,
        "members": members,
        "admins": def.admins,
    })
}

/// A TOML string literal, escaped.
fn q(text: impl AsRef<str>) -> String {
    toml::Value::String(text.as_ref().to_owned()).to_string()
}

fn q_path(path: &Path) -> String {
    q(path.display().to_string())
}

fn besu_config(
    def: &NetworkDefinition,
    v: &super::ValidatorDef,
    root: &Path,
    node_root: &Path,
) -> String {
    let apis: Vec<String> = BESU_RPC_APIS.iter().map(q).collect();
    let permissions = node_root.join("besu").join("permissions_config.toml");
    let accounts_enabled = !(def.members.is_empty() && def.admins.is_empty());
    format!(
        "# Besu configuration of validator {name}, generated by `ecrop genesis`.\n\
         # The node key belongs in the validator's token ({name}); Besu reaches it through a\n\
         # security-module plugin, never through a key file.\n\
         data-path={data}\n\
         genesis-file={genesis}\n\
         static-nodes-file={static_nodes}\n\
         discovery-enabled=false\n\
         p2p-host={host}\n\
         p2p-port={p2p}\n\
         rpc-http-enabled=true\n\
         rpc-http-host={loopback}\n\
         rpc-http-port={rpc}\n\
         rpc-http-api=[{apis}]\n\
         host-allowlist=[\"localhost\",\"127.0.0.1\"]\n\
         min-gas-price=0\n\
         permissions-nodes-config-file-enabled=true\n\
         permissions-nodes-config-file={permissions}\n\
         permissions-accounts-config-file-enabled={accounts_enabled}\n\
         permissions-accounts-config-file={permissions}\n",
        name = v.name,
        data = q_path(&node_root.join("besu").join("data")),
        genesis = q_path(&root.join("genesis.json")),
        static_nodes = q_path(&root.join("static-nodes.json")),
        host = q(v.host.to_string()),
        p2p = v.p2p_port,
        loopback = q(Ipv4Addr::LOCALHOST.to_string()),
        rpc = v.rpc_port,
        apis = apis.join(","),
        permissions = q_path(&permissions),
    )
}

fn permissions_config(def: &NetworkDefinition, enodes: &[String]) -> String {
    let accounts: Vec<String> = def
        .members
        .iter()
        .map(|m| m.account)
        .chain(def.admins.iter().copied())
        .map(|a| q(a.to_string()))
        .collect();
    let nodes: Vec<String> = enodes.iter().map(q).collect();
    format!(
        "# Local allowlists of Besu, generated by `ecrop genesis`; the sidecar keeps them in\n\
         # step with the permissioning contracts through the PERM API.\n\
         accounts-allowlist=[{}]\n\
         nodes-allowlist=[{}]\n",
        accounts.join(","),
        nodes.join(",")
    )
}

/// The ops endpoint of a node's sidecar listens this far above its JSON-RPC port (9546 for
/// 8545, as the sidecar's default).
const OPS_PORT_OFFSET: u16 = 1001;

fn sidecar_config(def: &NetworkDefinition, v: &super::ValidatorDef, node_root: &Path) -> String {
    let listen_host = def.nodes.sidecar_listen_host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let module =
        def.nodes.pkcs11_module.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PKCS11_MODULE));
    format!(
        "# Sidecar configuration of validator {name}, generated by `ecrop genesis`.\n\
         [rpc]\n\
         listen = {listen}\n\
         \n\
         [upstream]\n\
         url = {upstream}\n\
         \n\
         [hsm]\n\
         module = {module}\n\
         token_label = {label}\n\
         pin_file = {pin}\n\
         \n\
         [log]\n\
         format = \"json\"\n\
         level = \"info\"\n\
         \n\
         # Clients of the endpoint: add them with `ecrop api-clients add --api-clients FILE`.\n\
         [api]\n\
         clients_file = {clients}\n\
         \n\
         # /metrics, /healthz, /readyz.\n\
         [ops]\n\
         listen = {ops}\n\
         \n\
         # The store: audit log, pending webhook deliveries, permissioning state.\n\
         [permissioning]\n\
         store_path = {store}\n",
        name = v.name,
        listen = q(SocketAddr::new(listen_host, v.sidecar_port).to_string()),
        clients = q_path(&node_root.join("data").join("api-clients.json")),
        ops = q(SocketAddr::new(listen_host, v.sidecar_port.saturating_add(OPS_PORT_OFFSET))
            .to_string()),
        store = q_path(&node_root.join("data").join("store")),
        upstream = q(format!("http://127.0.0.1:{}", v.rpc_port)),
        module = q_path(&module),
        label = q(&v.name),
        pin = q_path(&node_root.join("hsm").join("user.pin")),
    )
}
