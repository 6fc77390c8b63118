//! HTTP layer in front of the JSON-RPC service.
//!
//! An oversized request is refused by the JSON-RPC server from its `Content-Length` alone,
//! before the body is read. Closing a connection with an unread body makes many clients see
//! a broken pipe instead of the answer, so this layer reads and discards such a body first
//! (up to [`DRAIN_LIMIT_BYTES`]), then lets the server give its clear "request too big"
//! answer. Bodies above the drain limit are not read: the connection closes, as before.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body_util::BodyExt;
use jsonrpsee::server::{HttpBody, HttpRequest};
use tower::{Layer, Service};

/// Largest declared body drained to deliver a "too big" answer: 64 MiB keeps a confused
/// client's upload bounded while covering any realistic mistake.
pub const DRAIN_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Layer producing [`DrainOversized`].
#[derive(Debug, Clone, Copy)]
pub struct DrainOversizedLayer {
    max_request_bytes: u64,
}

impl DrainOversizedLayer {
    /// Drains bodies declared larger than `max_request_bytes`.
    pub fn new(max_request_bytes: u32) -> Self {
        Self { max_request_bytes: u64::from(max_request_bytes) }
    }
}

impl<S> Layer<S> for DrainOversizedLayer {
    type Service = DrainOversized<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DrainOversized { inner, max_request_bytes: self.max_request_bytes }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct DrainOversized<S> {
    inner: S,
    max_request_bytes: u64,
}

impl<S> Service<HttpRequest> for DrainOversized<S>
where
    S: Service<HttpRequest> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let drain = declared.is_some_and(|n| n > self.max_request_bytes && n <= DRAIN_LIMIT_BYTES);
        if !drain {
            return Box::pin(self.inner.call(request));
        }

        // The ready clone goes into the future; keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, mut body) = request.into_parts();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
            // The header still declares the size, so the server refuses it as too big.
            inner.call(HttpRequest::from_parts(parts, HttpBody::empty())).await
        })
    }
}
