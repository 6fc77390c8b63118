//! `ecrop dev`: a local development network in one command.
//!
//! Creates (or reuses) a SoftHSM2 token in the data directory, makes sure the development
//! keys exist, starts anvil on a free loopback port, funds the keys' accounts, starts the
//! sidecar in front of anvil and prints the endpoint and accounts. Runs until Ctrl-C or
//! SIGTERM, then stops the sidecar and anvil. With `--demo` it sends a scripted transaction
//! through the endpoint as a dApp would, checks it, and exits.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use alloy::{
    consensus::Transaction as _,
    network::TransactionBuilder,
    primitives::{Address, U256, utils::format_ether},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
};
use anyhow::{Context, bail, ensure};
use clap::Args;

use super::{Cli, LimitArgs};
use crate::{
    config::{self, HsmFile},
    dev::{Anvil, DEV_FUNDING_WEI, DEV_TOKEN_LABEL, DevPaths},
    ops, rpc,
    signer::{KeyInfo, Keyring, Token},
    signing_policy::SigningPolicy,
    upstream::Upstream,
    wallet::Wallet,
};

/// Most development keys `--keys` accepts.
const MAX_DEV_KEYS: u8 = 32;
/// How long the demo waits for its transaction to be mined.
const DEMO_RECEIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `ecrop dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port of the sidecar's JSON-RPC endpoint on 127.0.0.1.
    #[arg(long, env = "ECROP_DEV_RPC_PORT", value_name = "PORT", default_value_t = 8545)]
    pub rpc_port: u16,

    /// Data directory for the token, its PINs and the SoftHSM2 configuration; a rerun on the
    /// same directory reuses the token and keys.
    #[arg(long, env = "ECROP_DEV_DATA_DIR", value_name = "DIR", default_value = ".ecrop/dev")]
    pub data_dir: PathBuf,

    /// Number of development keys (labels dev-0, dev-1, ...).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_DEV_KEYS)))]
    pub keys: u8,

    /// Send a scripted transaction end to end through the endpoint, check it, and exit
    /// (status 0 on success, non-zero with the reason otherwise).
    #[arg(long)]
    pub demo: bool,

    /// Start the chain from a genesis made by `ecrop genesis` (its genesis.json), so the
    /// development chain carries the same contracts at the same addresses as the network.
    #[arg(long, env = "ECROP_DEV_GENESIS", value_name = "FILE")]
    pub genesis: Option<PathBuf>,

    /// anvil binary to run.
    #[arg(long, env = "ECROP_ANVIL", value_name = "PATH", default_value = "anvil")]
    pub anvil: String,

    /// Path of the PKCS#11 module [config: hsm.module] [default: SoftHSM2's].
    #[arg(long = "pkcs11-module", env = "ECROP_PKCS11_MODULE", value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Port of /metrics, /healthz and /readyz on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "ECROP_DEV_OPS_PORT", value_name = "PORT", default_value_t = 0)]
    pub ops_port: u16,

    /// Endpoint limits.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// API clients (requests without credentials are served as client `dev`; requests with
    /// credentials are authenticated against this file).
    #[command(flatten)]
    pub api: super::api_clients::ClientsFileArg,
}

/// Creates the data directory layout and points SoftHSM2 at it.
///
/// Must run before any PKCS#11 module is loaded, and before other threads exist: it sets
/// the process environment.
pub fn prepare_env(args: &DevArgs) -> anyhow::Result<DevPaths> {
    let paths = DevPaths::prepare(&args.data_dir)?;
    // SAFETY: called from `main` before the async runtime or any other thread is started, so
    // nothing reads the environment concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &paths.softhsm_conf) };
    Ok(paths)
}

/// Runs the development network.
pub async fn run(cli: &Cli, args: &DevArgs, paths: DevPaths) -> anyhow::Result<()> {
    let file = super::load_file(cli)?;
    let signing = SigningPolicy::from_file(&file.signing)?;
    let hsm = HsmFile {
        module: args.module.clone().or(file.hsm.module.clone()),
        token_label: Some(DEV_TOKEN_LABEL.to_owned()),
        pin_file: Some(paths.user_pin.clone()),
        pin_env: None,
    };
    let token_config = config::token_config(&hsm);

    let keys = {
        let token_config = token_config.clone();
        let paths = paths.clone();
        let count = args.keys;
        tokio::task::spawn_blocking(move || ensure_token_and_keys(&token_config, &paths, count))
            .await
            .context("token task")??
    };

    // Dev mode always listens on loopback: requests without credentials are served there.
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, args.rpc_port));
    let rpc_settings = super::rpc_settings(&file, Some(listen), &args.limits)?;
    // The dev network's own store: audit log and webhook deliveries.
    let store = crate::store::Store::open(&paths.data_dir.join("store"))?;
    let observe = super::observe::Observability::start(&file, store, "dev").await?;
    // From here on, the log records how the run ended, a failed start included.
    let outcome = async {
        let access = super::api_clients::access(
            &file,
            &args.api,
            &rpc_settings,
            crate::api::AccessMode::DevLoopback,
            observe.client_changes(),
        )?
        .with_refusal_hook(observe.refusal_hook());
        observe.clients_loaded(access.clients()).await?;

        let mut anvil_args = Vec::new();
        if let Some(genesis) = &args.genesis {
            let init = anvil_genesis(genesis, &paths.data_dir)?;
            anvil_args = vec!["--init".to_owned(), init.display().to_string()];
            let deployment = genesis.with_file_name("deployment.json");
            if deployment.is_file() {
                let copy = paths.data_dir.join("deployment.json");
                std::fs::copy(&deployment, &copy)
                    .with_context(|| format!("copying {}", deployment.display()))?;
                eprintln!("contract addresses of the genesis in {}", copy.display());
            }
        }
        eprintln!("starting anvil...");
        let anvil = Anvil::start(&args.anvil, &anvil_args).await?;
        for key in &keys {
            anvil.fund(key.address, U256::from(DEV_FUNDING_WEI)).await?;
        }

        let upstream_settings = super::upstream_settings(&file, Some(&anvil.url()), &args.limits)?;
        let upstream = Arc::new(Upstream::new(upstream_settings, rpc_settings.max_response_bytes)?);
        let keyring = Keyring::new(token_config);
        let mut checks: Vec<Box<dyn ops::ReadinessCheck>> = vec![
            Box::new(ops::server::UpstreamCheck(upstream.clone())),
            Box::new(ops::server::TokenCheck(keyring.clone())),
        ];
        checks.extend(observe.readiness_check());
        let ops_listen = SocketAddr::from((Ipv4Addr::LOCALHOST, args.ops_port));
        let ops_server =
            match ops::OpsServer::start(ops_listen, ops::metrics::global(), checks).await {
                Ok(server) => server,
                Err(e) => {
                    anvil.stop().await;
                    return Err(e).context("starting the ops endpoint; choose another --ops-port");
                }
            };
        let wallet = Arc::new(Wallet::new(keyring, upstream).with_signing_policy(signing));
        let chain_id = wallet.chain_id().await?;
        let server =
            match rpc::start(&rpc_settings, wallet, access, observe.observers(&rpc_settings)).await
            {
                Ok(server) => server,
                Err(e) => {
                    anvil.stop().await;
                    ops_server.stop().await;
                    return Err(e).with_context(|| {
                        format!("port {} is taken? choose another with --rpc-port", args.rpc_port)
                    });
                }
            };
        let endpoint = format!("http://{}", server.local_addr());

        println!("ecrop dev network");
        println!("  data dir   {}", paths.data_dir.display());
        println!("  token      {DEV_TOKEN_LABEL} (SOFTHSM2_CONF={})", paths.softhsm_conf.display());
        println!("  user PIN   in {}", paths.user_pin.display());
        println!("  upstream   {} (anvil, chain id {chain_id})", anvil.url());
        println!("  endpoint   {endpoint} (HTTP and WebSocket)");
        println!("  ops        http://{} (/metrics, /healthz, /readyz)", ops_server.local_addr());
        println!(
            "  audit log  {store} (check it: ecrop audit verify --store-path {store})",
            store = paths.data_dir.join("store").display()
        );
        println!("  accounts");
        for key in &keys {
            println!(
                "    {:<8} {}  {} ETH",
                key.label,
                key.address,
                ether(U256::from(DEV_FUNDING_WEI))
            );
        }

        let outcome = if args.demo {
            demo(&endpoint, &keys).await
        } else {
            println!("Press Ctrl-C to stop.");
            super::serve::shutdown_signal().await;
            eprintln!("stopping...");
            Ok(())
        };

        server.stop().await;
        ops_server.stop().await;
        anvil.stop().await;
        outcome
    }
    .await;
    observe.stop(outcome.as_ref().err()).await;
    outcome
}

/// Ether with trailing zeros of the fraction dropped: `1000`, `1001.5`.
fn ether(wei: U256) -> String {
    let text = format_ether(wei);
    match text.split_once('.') {
        Some((whole, fraction)) if fraction.trim_end_matches('0').is_empty() => whole.to_owned(),
        Some(_) => text.trim_end_matches('0').to_owned(),
        None => text,
    }
}

/// Largest genesis file read.
const MAX_GENESIS_BYTES: u64 = 64 * 1024 * 1024;

/// Writes a copy of a Besu genesis that anvil's `--init` reads: anvil knows only `nonce`,
/// `balance`, `code`, `storage` and `secretKey` in an `alloc` entry, so other fields (Besu's
/// `comment`) are dropped. Returns the copy's path in `data_dir`.
fn anvil_genesis(genesis: &std::path::Path, data_dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    const ANVIL_ALLOC_FIELDS: [&str; 5] = ["nonce", "balance", "code", "storage", "secretKey"];
    let text = crate::onchain::files::read_text(genesis, MAX_GENESIS_BYTES)
        .map_err(|reason| anyhow::anyhow!("genesis {} ({reason})", genesis.display()))?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("genesis {} is not JSON", genesis.display()))?;
    let Some(alloc) = value.get_mut("alloc").and_then(serde_json::Value::as_object_mut) else {
        bail!("genesis {} has no alloc", genesis.display());
    };
    for entry in alloc.values_mut() {
        if let Some(fields) = entry.as_object_mut() {
            fields.retain(|key, _| ANVIL_ALLOC_FIELDS.contains(&key.as_str()));
        }
    }
    let copy = data_dir.join("anvil-genesis.json");
    std::fs::write(&copy, serde_json::to_vec(&value)?)
        .with_context(|| format!("writing {}", copy.display()))?;
    Ok(copy)
}

/// Creates the token if missing, then the keys `dev-0` .. `dev-{count-1}` that are missing.
fn ensure_token_and_keys(
    token_config: &crate::signer::TokenConfig,
    paths: &DevPaths,
    count: u8,
) -> anyhow::Result<Vec<KeyInfo>> {
    if !Token::exists(&token_config.module, DEV_TOKEN_LABEL)? {
        eprintln!("creating token {DEV_TOKEN_LABEL} in {}", paths.token_dir.display());
        let so_pin = DevPaths::read_pin(&paths.so_pin)?;
        let user_pin = DevPaths::read_pin(&paths.user_pin)?;
        Token::initialize(&token_config.module, DEV_TOKEN_LABEL, &so_pin, &user_pin)?;
    }
    let token = Token::open(token_config)?;
    let mut existing = token.keys()?;
    let mut keys = Vec::with_capacity(usize::from(count));
    for index in 0..count {
        let label = format!("dev-{index}");
        let key = match existing.iter().position(|k| k.label == label) {
            Some(at) => existing.swap_remove(at),
            None => {
                eprintln!("generating key {label} in the token ({}/{count})", index + 1);
                token.generate_key(&label)?
            }
        };
        keys.push(key);
    }
    Ok(keys)
}

/// Sends one transaction and one personal message through the endpoint as a dApp would, and
/// checks the outcome on chain.
async fn demo(endpoint: &str, keys: &[KeyInfo]) -> anyhow::Result<()> {
    let url = endpoint.parse().context("endpoint url")?;
    let dapp = ProviderBuilder::new().disable_recommended_fillers().connect_http(url);

    let accounts = dapp.get_accounts().await.context("eth_accounts")?;
    let expected: Vec<Address> = keys.iter().map(|k| k.address).collect();
    ensure!(
        expected.iter().all(|a| accounts.contains(a)),
        "eth_accounts ({accounts:?}) lacks the dev accounts ({expected:?})"
    );
    let (from, to) = match keys {
        [first, second, ..] => (first.address, second.address),
        [only] => (only.address, Address::repeat_byte(0xec)),
        [] => bail!("no development keys"),
    };

    let value = U256::from(10u64).pow(U256::from(18u64));
    let before = dapp.get_balance(to).await.context("eth_getBalance")?;
    let request = TransactionRequest::default().with_from(from).with_to(to).with_value(value);
    let pending = dapp.send_transaction(request).await.context("eth_sendTransaction")?;
    let hash = *pending.tx_hash();
    println!("demo: sent 1 ETH from {from} to {to}: {hash}");

    let receipt: alloy::rpc::types::TransactionReceipt =
        tokio::time::timeout(DEMO_RECEIPT_TIMEOUT, pending.get_receipt())
            .await
            .context("no receipt within 30s")?
            .context("eth_getTransactionReceipt")?;
    ensure!(receipt.status(), "transaction {hash} reverted");
    println!("demo: mined in block {}", receipt.block_number.unwrap_or_default());

    let mined = dapp
        .get_transaction_by_hash(hash)
        .await
        .context("eth_getTransactionByHash")?
        .context("mined transaction not found")?;
    let signer = mined.inner.signer();
    ensure!(signer == from, "transaction recovered to {signer}, expected {from}");
    ensure!(mined.inner.value() == value, "mined value differs from the request");
    let after = dapp.get_balance(to).await.context("eth_getBalance")?;
    ensure!(after == before + value, "recipient balance did not grow by 1 ETH");
    println!("demo: signature recovers to {from}; recipient balance {} ETH", ether(after));

    let message = b"ecrop demo";
    let signature: alloy::primitives::Bytes = dapp
        .raw_request("personal_sign".into(), (alloy::primitives::Bytes::from(&message[..]), from))
        .await
        .context("personal_sign")?;
    let signature = alloy::primitives::Signature::try_from(signature.as_ref())
        .context("personal_sign returned no 65-byte signature")?;
    let recovered = signature.recover_address_from_msg(message).context("recovering")?;
    ensure!(recovered == from, "personal_sign recovered to {recovered}, expected {from}");
    println!("demo: personal_sign recovers to {from}");
    println!("demo: ok");
    Ok(())
}
