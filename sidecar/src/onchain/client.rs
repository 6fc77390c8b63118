//! Calls and transactions against the platform's contracts through the sidecar's endpoint.

use std::time::Duration;

use alloy::{
    dyn_abi::{DynSolType, DynSolValue, FunctionExt, JsonAbiExt, Specifier},
    eips::BlockId,
    json_abi::{Function, JsonAbi},
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes},
    providers::{Provider, ProviderBuilder, RootProvider},
    rpc::{
        client::RpcClient,
        types::{Filter, Log, TransactionReceipt, TransactionRequest},
    },
    transports::{RpcError, TransportError, http::Http},
};

use super::{ChainError, ErrorBook, artifacts::Artifact};

/// How long a sent transaction may take to be mined before the command gives up waiting (the
/// transaction may still be mined later; its hash is in the error).
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Blocks per `eth_getLogs` request: Besu and anvil both answer ranges this size quickly.
pub const LOG_PAGE_BLOCKS: u64 = 5_000;
/// Environment variable holding the API key sent to the sidecar.
pub(crate) const API_KEY_ENV: &str = "ECROP_API_KEY";
/// Environment variable naming a file that holds the API key sent to the sidecar.
pub(crate) const API_KEY_FILE_ENV: &str = "ECROP_API_KEY_FILE";
/// Largest API key file read.
const MAX_API_KEY_FILE_BYTES: u64 = 16 * 1024;

/// The credential (API key or JWT) sent to the sidecar as `Authorization: Bearer`: from
/// `file` (a flag), else from the file named by [`API_KEY_FILE_ENV`], else from
/// [`API_KEY_ENV`]; `None` when none is set. A file's first line is the credential.
pub(crate) fn api_credential(file: Option<&std::path::Path>) -> Result<Option<String>, ChainError> {
    let env_file =
        std::env::var_os(API_KEY_FILE_ENV).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    if let Some(path) = file.map(std::path::Path::to_owned).or(env_file) {
        let text = super::files::read_text(&path, MAX_API_KEY_FILE_BYTES).map_err(|reason| {
            ChainError::Rpc {
                url: String::new(),
                reason: format!("API key file {} not readable ({reason})", path.display()),
            }
        })?;
        let key = text.lines().next().unwrap_or_default().trim().to_owned();
        if key.is_empty() {
            return Err(ChainError::Rpc {
                url: String::new(),
                reason: format!("API key file {} is empty", path.display()),
            });
        }
        return Ok(Some(key));
    }
    Ok(std::env::var(API_KEY_ENV).ok().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()))
}

/// A mined transaction.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Transaction hash.
    pub hash: B256,
    /// Block it was mined in.
    pub block: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Logs it emitted.
    pub logs: Vec<Log>,
    /// Address created, for deployments.
    pub contract_address: Option<Address>,
}

/// Client of the sidecar's endpoint acting for one account of the sidecar's token.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    provider: RootProvider,
    from: Option<Address>,
    errors: ErrorBook,
}

impl Client {
    /// Connects to `url` (the sidecar's JSON-RPC endpoint); `from` signs transactions. The
    /// credential comes from the environment ([`api_credential`]).
    pub fn new(url: &str, from: Option<Address>, errors: ErrorBook) -> Result<Self, ChainError> {
        Self::with_key_file(url, from, errors, None)
    }

    /// As [`Client::new`], reading the credential from `key_file` when given.
    pub fn with_key_file(
        url: &str,
        from: Option<Address>,
        errors: ErrorBook,
        key_file: Option<&std::path::Path>,
    ) -> Result<Self, ChainError> {
        let bad = |reason: String| ChainError::Rpc { url: url.to_owned(), reason };
        let parsed: reqwest::Url = url.parse().map_err(|e| bad(format!("invalid url: {e}")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = api_credential(key_file)? {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| bad("the API key holds characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .map_err(|e| bad(format!("http client: {e}")))?;
        let is_local = parsed.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost");
        let client = RpcClient::new(Http::with_client(http, parsed), is_local);
        let provider = ProviderBuilder::new().disable_recommended_fillers().connect_client(client);
        Ok(Self { url: url.to_owned(), provider: provider.root().clone(), from, errors })
    }

    /// The account transactions are sent from.
    pub fn from(&self) -> Result<Address, ChainError> {
        self.from.ok_or_else(|| ChainError::Rpc {
            url: self.url.clone(),
            reason: "no sending account: pass --from with an address of the sidecar's token".into(),
        })
    }

    /// The underlying provider, for plain reads.
    pub fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// The errors used to explain reverts.
    pub fn errors_mut(&mut self) -> &mut ErrorBook {
        &mut self.errors
    }

    /// Deploys `artifact` with constructor `args`.
    pub async fn deploy(
        &self,
        artifact: &Artifact,
        args: &[DynSolValue],
    ) -> Result<Sent, ChainError> {
        if artifact.bytecode.is_empty() {
            return Err(ChainError::ArtifactInvalid {
                path: artifact.name.clone(),
                reason: "no creation bytecode (an interface or abstract contract)".into(),
            });
        }
        let mut code = artifact.bytecode.to_vec();
        if let Some(constructor) = &artifact.abi.constructor {
            let encoded =
                constructor.abi_encode_input(args).map_err(|e| ChainError::BadArgument {
                    function: format!("{} constructor", artifact.name),
                    index: 0,
                    value: format!("{} values", args.len()),
                    ty: "constructor arguments".into(),
                    reason: e.to_string(),
                })?;
            code.extend_from_slice(&encoded);
        }
        let request = TransactionRequest::default().with_from(self.from()?).with_deploy_code(code);
        let sent = self.submit(request, &artifact.name, "constructor").await?;
        if sent.contract_address.is_none() {
            return Err(ChainError::Rpc {
                url: self.url.clone(),
                reason: format!("deployment of {} returned no contract address", artifact.name),
            });
        }
        Ok(sent)
    }

    /// Sends a transaction calling `function` of contract `name` at `to`.
    pub async fn send(
        &self,
        name: &str,
        abi: &JsonAbi,
        to: Address,
        function: &str,
        args: &[DynSolValue],
    ) -> Result<Sent, ChainError> {
        let f = find_function(name, abi, function, args.len())?;
        let input = encode(f, args)?;
        let request =
            TransactionRequest::default().with_from(self.from()?).with_to(to).with_input(input);
        self.submit(request, name, function).await
    }

    /// Calls view `function` of contract `name` at `to`, at `block` (latest when `None`).
    pub async fn call(
        &self,
        name: &str,
        abi: &JsonAbi,
        to: Address,
        function: &str,
        args: &[DynSolValue],
        block: Option<u64>,
    ) -> Result<Vec<DynSolValue>, ChainError> {
        let f = find_function(name, abi, function, args.len())?;
        let input = encode(f, args)?;
        let mut request = TransactionRequest::default().with_to(to).with_input(input);
        if let Some(from) = self.from {
            request = request.with_from(from);
        }
        let block_id = block.map_or(BlockId::latest(), BlockId::number);
        let output = self
            .provider
            .call(request)
            .block(block_id)
            .await
            .map_err(|e| self.explain(e, name, function))?;
        f.abi_decode_output(&output)
            .map_err(|e| ChainError::Decode { function: f.signature(), reason: e.to_string() })
    }

    /// Logs emitted by `address` in blocks `from..=to`, fetched in pages; with `events`
    /// (event selectors) only those events, filtered by the node.
    pub async fn logs(
        &self,
        address: Address,
        events: &[B256],
        from: u64,
        to: u64,
    ) -> Result<Vec<Log>, ChainError> {
        let mut logs = Vec::new();
        let mut start = from;
        while start <= to {
            let end = start.saturating_add(LOG_PAGE_BLOCKS - 1).min(to);
            let mut filter = Filter::new().address(address).from_block(start).to_block(end);
            if !events.is_empty() {
                filter = filter.event_signature(events.to_vec());
            }
            let page = self.provider.get_logs(&filter).await.map_err(|e| self.rpc(e))?;
            logs.extend(page);
            start = end + 1;
        }
        Ok(logs)
    }

    /// The chain id.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.provider.get_chain_id().await.map_err(|e| self.rpc(e))
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.provider.get_block_number().await.map_err(|e| self.rpc(e))
    }

    /// The runtime code at `address` (empty when nothing is deployed there).
    pub async fn code(&self, address: Address) -> Result<Bytes, ChainError> {
        self.provider.get_code_at(address).await.map_err(|e| self.rpc(e))
    }

    async fn submit(
        &self,
        request: TransactionRequest,
        name: &str,
        function: &str,
    ) -> Result<Sent, ChainError> {
        let pending = self
            .provider
            .send_transaction(request.clone())
            .await
            .map_err(|e| self.explain(e, name, function))?;
        let hash = *pending.tx_hash();
        let receipt: TransactionReceipt =
            pending.with_timeout(Some(RECEIPT_TIMEOUT)).get_receipt().await.map_err(|e| {
                ChainError::Rpc {
                    url: self.url.clone(),
                    reason: format!("transaction {hash} not confirmed: {e}"),
                }
            })?;
        let block = receipt.block_number.unwrap_or_default();
        if !receipt.status() {
            // Replay at the mined block to learn why.
            let reason = match self.provider.call(request).block(BlockId::number(block)).await {
                Err(e) => self.explain(e, name, function).to_string(),
                Ok(_) => "reverted on chain (replay succeeded; state changed in between)".into(),
            };
            return Err(ChainError::Reverted {
                contract: name.to_owned(),
                function: function.to_owned(),
                reason: format!("{reason} (transaction {hash})"),
            });
        }
        Ok(Sent {
            hash,
            block,
            gas_used: receipt.gas_used,
            logs: receipt.inner.logs().to_vec(),
            contract_address: receipt.contract_address,
        })
    }

    fn explain(&self, error: TransportError, name: &str, function: &str) -> ChainError {
        if let RpcError::ErrorResp(payload) = &error {
            if let Some(data) = payload.as_revert_data() {
                return ChainError::Reverted {
                    contract: name.to_owned(),
                    function: function.to_owned(),
                    reason: self.errors.explain(&data),
                };
            }
            if payload.message.contains("revert") {
                return ChainError::Reverted {
                    contract: name.to_owned(),
                    function: function.to_owned(),
                    reason: payload.message.to_string(),
                };
            }
        }
        self.rpc(error)
    }

    fn rpc(&self, error: TransportError) -> ChainError {
        ChainError::Rpc { url: self.url.clone(), reason: error.to_string() }
    }
}

/// The function `function` of `abi` taking `arity` arguments.
pub fn find_function<'a>(
    name: &str,
    abi: &'a JsonAbi,
    function: &str,
    arity: usize,
) -> Result<&'a Function, ChainError> {
    abi.function(function)
        .and_then(|overloads| overloads.iter().find(|f| f.inputs.len() == arity))
        .ok_or_else(|| ChainError::NoSuchFunction {
            contract: name.to_owned(),
            function: function.to_owned(),
            arity,
        })
}

fn encode(f: &Function, args: &[DynSolValue]) -> Result<Bytes, ChainError> {
    f.abi_encode_input(args).map(Bytes::from).map_err(|e| ChainError::BadArgument {
        function: f.signature(),
        index: 0,
        value: format!("{} values", args.len()),
        ty: "parameters".into(),
        reason: e.to_string(),
    })
}

/// Parses operator-typed text arguments into values for `f`'s parameters.
pub fn parse_args(f: &Function, args: &[String]) -> Result<Vec<DynSolValue>, ChainError> {
    f.inputs
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (param, text))| {
            let bad = |reason: String| ChainError::BadArgument {
                function: f.signature(),
                index: i + 1,
                value: text.clone(),
                ty: param.ty.clone(),
                reason,
            };
            let ty: DynSolType = param.resolve().map_err(|e| bad(e.to_string()))?;
            // Short text for a fixed-size bytes parameter (an ISIN, a currency code) is taken
            // as its ASCII bytes, right-padded, as the contracts store such codes.
            if let DynSolType::FixedBytes(size) = ty
                && !text.starts_with("0x")
                && !text.is_empty()
                && text.len() <= size
                && text.is_ascii()
            {
                let mut word = [0u8; 32];
                word[..text.len()].copy_from_slice(text.as_bytes());
                return Ok(DynSolValue::FixedBytes(word.into(), size));
            }
            ty.coerce_str(text).map_err(|e| bad(e.to_string()))
        })
        .collect()
}
