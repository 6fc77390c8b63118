//! The upstream node (Besu in production, anvil in development).
//!
//! Two faces: [`Upstream::forward`] relays one JSON-RPC call byte for byte and hands back the
//! node's result or error unchanged, for every method the sidecar does not handle itself; and
//! [`Upstream::provider`], an alloy provider that fills chain id and gas for the sidecar's own
//! transactions. Nothing is persisted here. Request bodies are not logged: they can carry
//! signed transactions a dApp would not want in operator logs.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use alloy::{
    providers::{
        Identity, ProviderBuilder, RootProvider,
        fillers::{ChainIdFiller, FillProvider, GasFiller, JoinFill},
    },
    rpc::client::RpcClient,
    transports::http::Http,
};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::UpstreamSettings;

/// The alloy provider used for the sidecar's own calls: fills chain id and gas.
pub type FillingProvider =
    FillProvider<JoinFill<JoinFill<Identity, ChainIdFiller>, GasFiller>, RootProvider>;

/// Errors talking to the upstream node.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The node answered with a JSON-RPC error; relayed to the dApp unchanged.
    #[error("upstream error {code}: {message}")]
    Rpc {
        /// The node's error code.
        code: i64,
        /// The node's error message.
        message: String,
        /// The node's error data, if any.
        data: Option<Box<RawValue>>,
    },
    /// The node could not be reached or the call timed out.
    #[error("upstream unreachable ({url}): {reason}")]
    Unreachable {
        /// Upstream URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The node answered with something that is not a JSON-RPC response.
    #[error("upstream answered with an invalid response ({url}): {reason}")]
    InvalidResponse {
        /// Upstream URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl UpstreamError {
    /// A short fixed name of the failure, the `kind` label of `ecrop_upstream_errors_total`:
    /// `rpc_error` (the node answered with an error), `timeout`, `unreachable` or
    /// `invalid_response`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Rpc { .. } => "rpc_error",
            Self::Unreachable { reason, .. } if reason == TIMED_OUT => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::InvalidResponse { .. } => "invalid_response",
        }
    }
}

/// Reason of an [`UpstreamError::Unreachable`] for a call that timed out.
const TIMED_OUT: &str = "timed out";

/// Connection to the upstream node.
#[derive(Debug)]
pub struct Upstream {
    settings: UpstreamSettings,
    http: reqwest::Client,
    provider: FillingProvider,
    next_id: AtomicU64,
    max_response_bytes: usize,
}

#[derive(Deserialize)]
struct ResponseFrame {
    /// Present-but-null stays `Some("null")`: a null result is an answer, not an absence.
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    error: Option<ErrorFrame>,
}

#[derive(Deserialize)]
struct ErrorFrame {
    code: i64,
    message: String,
    data: Option<Box<RawValue>>,
}

impl Upstream {
    /// Creates the connection; nothing is sent until the first call.
    pub fn new(settings: UpstreamSettings, max_response_bytes: u32) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5).min(settings.timeout))
            .build()
            .map_err(|e| UpstreamError::Unreachable {
                url: settings.url.to_string(),
                reason: e.to_string(),
            })?;
        let transport = Http::with_client(http.clone(), settings.url.clone());
        let is_local =
            settings.url.host_str().is_some_and(|h| h == "127.0.0.1" || h == "localhost");
        let provider = ProviderBuilder::default()
            .filler(ChainIdFiller::default())
            .with_gas_estimation()
            .connect_client(RpcClient::new(transport, is_local));
        Ok(Self {
            settings,
            http,
            provider,
            next_id: AtomicU64::new(1),
            max_response_bytes: max_response_bytes as usize,
        })
    }

    /// The upstream URL.
    pub fn url(&self) -> &reqwest::Url {
        &self.settings.url
    }

    /// Provider for the sidecar's own calls.
    pub fn provider(&self) -> &FillingProvider {
        &self.provider
    }

    /// Relays one call and returns the node's `result` unchanged, or its error unchanged.
    ///
    /// `params` is forwarded as received; absent params stay absent.
    /// Every failure is counted in `ecrop_upstream_errors_total` by [`UpstreamError::kind`].
    pub async fn forward(
        &self,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Box<RawValue>, UpstreamError> {
        let result = self.forward_uncounted(method, params).await;
        if let Err(error) = &result {
            crate::ops::metrics::global().upstream_error(error.kind());
        }
        result
    }

    async fn forward_uncounted(
        &self,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<Box<RawValue>, UpstreamError> {
        #[derive(serde::Serialize)]
        struct Frame<'a> {
            jsonrpc: &'static str,
            id: u64,
            method: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            params: Option<&'a RawValue>,
        }

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = Frame { jsonrpc: "2.0", id, method, params };
        let unreachable = |reason: String| UpstreamError::Unreachable {
            url: self.settings.url.to_string(),
            reason,
        };
        let invalid = |reason: String| UpstreamError::InvalidResponse {
            url: self.settings.url.to_string(),
            reason,
        };

        let mut response = self
            .http
            .post(self.settings.url.clone())
            .json(&frame)
            .send()
            .await
            .map_err(|e| unreachable(describe_reqwest(&e)))?;

        // Read the body in chunks so an oversized answer is cut off, not buffered whole.
        let mut body = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| unreachable(describe_reqwest(&e)))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(invalid(format!(
                    "response larger than {} bytes",
                    self.max_response_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }

        let frame: ResponseFrame = serde_json::from_slice(&body).map_err(|e| {
            let status = response.status();
            invalid(format!("http status {status}, body is not a JSON-RPC response: {e}"))
        })?;
        match (frame.result, frame.error) {
            (_, Some(error)) => Err(UpstreamError::Rpc {
                code: error.code,
                message: error.message,
                data: error.data,
            }),
            (Some(result), None) => Ok(result),
            (None, None) => Err(invalid("neither result nor error".into())),
        }
    }
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// A short reason for a failed HTTP call, without the request body.
fn describe_reqwest(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        TIMED_OUT.to_owned()
    } else if error.is_connect() {
        "connection refused or failed".to_owned()
    } else {
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            reason.push_str(": ");
            reason.push_str(&inner.to_string());
            source = inner.source();
        }
        reason
    }
}
