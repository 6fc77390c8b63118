//! RPC middleware that relays every method the sidecar does not serve itself to the upstream
//! node, unchanged: same params, and the node's result or error as the answer.

use std::{collections::HashSet, sync::Arc};

use futures::future::Either;
use jsonrpsee::server::{
    MethodResponse, ResponsePayload,
    middleware::rpc::{Batch, Notification, Request, RpcServiceT},
};

use super::error::upstream_error;
use crate::upstream::Upstream;

/// The middleware service; `inner` serves the sidecar's own methods.
#[derive(Clone, Debug)]
pub struct Passthrough<S> {
    inner: S,
    upstream: Arc<Upstream>,
    local: Arc<HashSet<&'static str>>,
    max_response_bytes: usize,
}

impl<S> Passthrough<S> {
    /// Wraps `inner`, which serves exactly the methods in `local`.
    pub fn new(
        inner: S,
        upstream: Arc<Upstream>,
        local: Arc<HashSet<&'static str>>,
        max_response_bytes: usize,
    ) -> Self {
        Self { inner, upstream, local, max_response_bytes }
    }
}

impl<S> RpcServiceT for Passthrough<S>
where
    S: crate::rpc::batch::Service,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        if self.local.contains(request.method_name()) {
            return Either::Left(self.inner.call(request));
        }
        let upstream = self.upstream.clone();
        let max = self.max_response_bytes;
        Either::Right(async move {
            let id = request.id().into_owned();
            let method = request.method_name().to_owned();
            tracing::debug!(target: "ecrop::rpc", %method, "relayed to upstream");
            match upstream.forward(&method, request.params.as_deref()).await {
                Ok(result) => MethodResponse::response(id, ResponsePayload::success(result), max),
                Err(error) => MethodResponse::error(id, upstream_error(error)),
            }
        })
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        super::batch::each(self.clone(), batch, self.max_response_bytes)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        if self.local.contains(notification.method_name()) {
            // The sidecar's own methods sign; a signature nobody can receive is never made.
            // (The server also reads calls with ids it cannot parse, e.g. -1, as notifications.)
            tracing::debug!(target: "ecrop::rpc", method = %notification.method_name(), "notification of a signing method ignored");
            return Either::Left(std::future::ready(MethodResponse::notification()));
        }
        let upstream = self.upstream.clone();
        Either::Right(async move {
            // A notification expects no answer; relay it and drop the node's.
            let method = notification.method_name().to_owned();
            if let Err(error) = upstream.forward(&method, notification.params.as_deref()).await {
                tracing::debug!(target: "ecrop::rpc", %method, %error, "relayed notification failed");
            }
            MethodResponse::notification()
        })
    }
}
