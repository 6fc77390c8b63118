//! The dApp-facing JSON-RPC endpoint: HTTP and WebSocket on one port, batches included.
//!
//! The sidecar serves the account and signing methods itself (see [`LOCAL_METHODS`]); every
//! other method is relayed to the upstream node unchanged by [`passthrough::Passthrough`].
//! Request and response sizes, batch length and connection count are bounded by
//! [`RpcSettings`]. Nothing is persisted here; errors are mapped to JSON-RPC in [`error`].

pub mod batch;
pub mod error;
pub mod http;
pub mod params;
pub mod passthrough;
pub mod typed_data;

use std::{collections::HashSet, net::SocketAddr, sync::Arc};

use alloy::{
    dyn_abi::TypedData,
    primitives::{Address, Bytes},
    rpc::types::TransactionRequest,
};
use jsonrpsee::{
    RpcModule,
    server::{
        BatchRequestConfig, Server, ServerConfig, ServerHandle, middleware::rpc::RpcServiceBuilder,
    },
    types::{ErrorObjectOwned, Params},
};

use crate::{api::Caller, config::RpcSettings, wallet::Wallet};

/// Methods the sidecar answers itself; all others go upstream.
pub const LOCAL_METHODS: [&str; 6] = [
    "eth_accounts",
    "eth_sendTransaction",
    "eth_signTransaction",
    "eth_sign",
    "personal_sign",
    "eth_signTypedData_v4",
];

/// Errors starting the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The listen address could not be bound.
    #[error("cannot listen on ({addr}): {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// A method could not be registered (a programming error).
    #[error("method registration failed: {0}")]
    Register(String),
    /// Unauthenticated dev access was asked for on an address other than loopback.
    #[error("requests without credentials are served on loopback only, not on ({0})")]
    DevNotLoopback(SocketAddr),
}

/// A running endpoint.
#[derive(Debug)]
pub struct RpcServer {
    handle: ServerHandle,
    local_addr: SocketAddr,
}

impl RpcServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits until in-flight calls have been answered.
    pub async fn stop(self) {
        // Stopping twice is harmless; the only error is "already stopped".
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }

    /// Waits until the server has stopped.
    pub async fn stopped(&self) {
        self.handle.clone().stopped().await;
    }
}

/// What watches the endpoint besides access control, each part optional.
#[derive(Debug, Clone, Default)]
pub struct Observers {
    /// Counts every call by method and outcome, with its latency.
    pub metrics: Option<&'static crate::ops::metrics::Metrics>,
    /// Records signatures, administrative calls and refusals in the audit log.
    pub audit: Option<crate::audit::AuditLayer>,
    /// Reports signing calls the policies refuse to the webhooks that want them.
    pub notifier: Option<crate::ops::Notifier>,
}

/// Starts the endpoint on `settings.listen`, with `access` deciding who may call what and
/// `observers` counting, recording and reporting.
///
/// HTTP layers, outermost first: origin/host filter, authentication and per-client body limit
/// ([`http::AuthLayer`]), oversize drain. RPC middleware, outermost first: the per-client
/// batch length ([`crate::api::middleware::BatchLimit`]), metrics, audit,
/// refusal events (each sees the answer the client gets, refusals included), the permission
/// matrix and per-client limits ([`crate::api::middleware::AccessControl`]), passthrough.
pub async fn start(
    settings: &RpcSettings,
    wallet: Arc<Wallet>,
    access: crate::api::Access,
    observers: Observers,
) -> Result<RpcServer, RpcError> {
    if access.mode() == crate::api::AccessMode::DevLoopback && !settings.listen.ip().is_loopback() {
        return Err(RpcError::DevNotLoopback(settings.listen));
    }
    let upstream = wallet.upstream_handle();
    let module = methods(wallet)?;
    let local: Arc<HashSet<&'static str>> = Arc::new(module.method_names().collect());

    let max_response = settings.max_response_bytes as usize;
    let rpc_access = access.clone();
    let clients = access.clients().clone();
    let Observers { metrics, audit, notifier } = observers;
    let batch_access = access.clone();
    let middleware = RpcServiceBuilder::new()
        .layer_fn(move |service| {
            crate::api::middleware::BatchLimit::new(service, batch_access.clone())
        })
        .option_layer(metrics.map(|m| crate::ops::RpcMetricsLayer::new(m, max_response)))
        .option_layer(audit)
        .option_layer(notifier.map(|n| crate::ops::RefusalEventsLayer::new(n, max_response)))
        .layer_fn(move |service| {
            crate::api::middleware::AccessControl::new(service, rpc_access.clone(), max_response)
        })
        .layer_fn(move |service| {
            passthrough::Passthrough::new(service, upstream.clone(), local.clone(), max_response)
        });
    let config = ServerConfig::builder()
        .max_request_body_size(settings.max_request_bytes)
        .max_response_body_size(settings.max_response_bytes)
        .max_connections(settings.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(settings.max_batch_len))
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_rpc_middleware(middleware)
        .set_http_middleware(
            tower::ServiceBuilder::new()
                .layer(
                    http::OriginHostFilterLayer::new(http::OriginHostRules {
                        origins: settings.allowed_origins.clone(),
                        hosts: settings.allowed_hosts.clone(),
                    })
                    .reporting_to(access.clone()),
                )
                .layer(http::AuthLayer::new(access))
                .layer(http::DrainOversizedLayer::new(settings.max_request_bytes)),
        )
        .build(settings.listen)
        .await
        .map_err(|source| RpcError::Bind { addr: settings.listen, source })?;
    let local_addr =
        server.local_addr().map_err(|source| RpcError::Bind { addr: settings.listen, source })?;
    let handle = server.start(module);
    // Reload the clients file when it changes even while no request comes, so that changes
    // (e.g. a revocation) are reported when they happen.
    let stopped = handle.clone();
    tokio::spawn(async move {
        let stopped = stopped.stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => break,
                () = tokio::time::sleep(crate::api::clients::RELOAD_CHECK_INTERVAL) => {
                    clients.check(false);
                }
            }
        }
    });
    tracing::info!(target: "ecrop::rpc", %local_addr, "json-rpc endpoint listening (http and websocket)");
    Ok(RpcServer { handle, local_addr })
}

/// Registers the methods the sidecar answers itself. Signing methods pass the authenticated
/// client ([`Caller`], from the request's extensions; none without authentication) to the
/// wallet for the signing policy.
fn methods(wallet: Arc<Wallet>) -> Result<RpcModule<Wallet>, RpcError> {
    let mut module = RpcModule::from_arc(wallet);
    let register = |e: jsonrpsee::core::RegisterMethodError| RpcError::Register(e.to_string());

    module
        .register_async_method("eth_accounts", |_, wallet, _| async move {
            let accounts = wallet.accounts().await.map_err(error::wallet_error)?;
            Ok::<_, ErrorObjectOwned>(accounts.into_iter().map(|k| k.address).collect::<Vec<_>>())
        })
        .map_err(register)?;

    module
        .register_async_method("eth_sendTransaction", |params, wallet, extensions| async move {
            let request = transaction_param(&params)?;
            announce(&extensions).await?;
            let caller = extensions.get::<Caller>();
            wallet.send_transaction(request, caller).await.map_err(error::wallet_error)
        })
        .map_err(register)?;

    module
        .register_async_method("eth_signTransaction", |params, wallet, extensions| async move {
            let request = transaction_param(&params)?;
            announce(&extensions).await?;
            let caller = extensions.get::<Caller>();
            wallet.sign_transaction(request, caller).await.map_err(error::wallet_error)
        })
        .map_err(register)?;

    module
        .register_async_method("eth_sign", |params, wallet, extensions| async move {
            let (address, message): (Address, Bytes) = params.parse()?;
            sign_message(&wallet, &extensions, address, &message).await
        })
        .map_err(register)?;

    module
        .register_async_method("personal_sign", |params, wallet, extensions| async move {
            // A third parameter (a password, in geth's form) is accepted and ignored: the
            // token's PIN comes from configuration, never from a dApp.
            let (message, address) = match params.parse::<(Bytes, Address)>() {
                Ok(pair) => pair,
                Err(_) => {
                    let (message, address, _): (Bytes, Address, serde::de::IgnoredAny) =
                        params.parse()?;
                    (message, address)
                }
            };
            sign_message(&wallet, &extensions, address, &message).await
        })
        .map_err(register)?;

    module
        .register_async_method("eth_signTypedData_v4", |params, wallet, extensions| async move {
            let (address, data): (Address, serde_json::Value) = params.parse()?;
            let data = typed_data_param(data)?;
            announce(&extensions).await?;
            let caller = extensions.get::<Caller>();
            let signature =
                wallet.sign_typed_data(address, data, caller).await.map_err(error::wallet_error)?;
            Ok::<_, ErrorObjectOwned>(Bytes::from(signature.as_bytes()))
        })
        .map_err(register)?;

    Ok(module)
}

/// Announces the signature a call is about to make in the audit log, when the log is on
/// ([`crate::audit::Announcement`]); refuses the call when the announcement cannot be written.
async fn announce(extensions: &jsonrpsee::Extensions) -> Result<(), ErrorObjectOwned> {
    match extensions.get::<Arc<crate::audit::Announcement>>() {
        Some(announcement) => announcement.announce().await,
        None => Ok(()),
    }
}

/// `eth_sign` and `personal_sign`: announces the signature, then signs `message` as an
/// EIP-191 personal message with `address`'s key for the caller.
async fn sign_message(
    wallet: &Wallet,
    extensions: &jsonrpsee::Extensions,
    address: Address,
    message: &[u8],
) -> Result<Bytes, ErrorObjectOwned> {
    announce(extensions).await?;
    let caller = extensions.get::<Caller>();
    let signature =
        wallet.sign_message(address, message, caller).await.map_err(error::wallet_error)?;
    Ok(Bytes::from(signature.as_bytes()))
}

/// The single transaction object of `eth_sendTransaction` / `eth_signTransaction`.
fn transaction_param(params: &Params<'_>) -> Result<TransactionRequest, ErrorObjectOwned> {
    let (request,): (TransactionRequest,) = params.parse()?;
    Ok(request)
}

/// Typed data arrives as an object or, from many wallets, as a JSON string holding one. It is
/// checked against [`typed_data::check_bounds`] before it is parsed into types.
fn typed_data_param(value: serde_json::Value) -> Result<TypedData, ErrorObjectOwned> {
    let value = match value {
        serde_json::Value::String(text) => serde_json::from_str(&text)
            .map_err(|e| error::invalid_params(format!("invalid typed data: {e}")))?,
        other => other,
    };
    typed_data::check_bounds(&value)
        .map_err(|reason| error::invalid_params(format!("typed data too large: {reason}")))?;
    serde_json::from_value(value)
        .map_err(|e| error::invalid_params(format!("invalid typed data: {e}")))
}
