//! HTTP layers in front of the JSON-RPC service.
//!
//! [`AuthLayer`] authenticates every request (and every WebSocket upgrade) from its
//! `Authorization: Bearer` header, puts the [`Caller`] into the request's extensions and
//! enforces the client's body size; requests refused here get an HTTP status (401, 413, 429)
//! with a JSON-RPC error body, and are reported to the refusal hook of [`Access`].
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
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::api::{Access, Caller, Refusal, auth::AuthError};

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

/// Layer producing [`OriginHostFilter`].
#[derive(Debug, Clone)]
pub struct OriginHostFilterLayer {
    rules: std::sync::Arc<OriginHostRules>,
    access: Option<crate::api::Access>,
}

/// Which `Origin` and `Host` headers are accepted.
#[derive(Debug, Clone, Default)]
pub struct OriginHostRules {
    /// Allowed origins, compared exactly (case-insensitive); `*` allows any.
    pub origins: Vec<String>,
    /// Allowed host names without port, case-insensitive; `*` allows any.
    pub hosts: Vec<String>,
}

impl OriginHostRules {
    /// Why a request with these headers is refused, or `None` when it may pass.
    pub fn refusal(&self, origin: Option<&str>, host: Option<&str>) -> Option<String> {
        if let Some(origin) = origin {
            let allowed = self.origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
            if !allowed {
                return Some(format!("origin not allowed ({origin}); see rpc.allowed_origins"));
            }
        }
        if self.hosts.iter().any(|h| h == "*") {
            return None;
        }
        let Some(host) = host else {
            return Some("host header missing".to_owned());
        };
        let name = host_name(host);
        if self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            None
        } else {
            Some(format!("host not allowed ({name}); see rpc.allowed_hosts"))
        }
    }
}

/// The host part of a `Host` header: `[::1]:8545` gives `[::1]`, `localhost:8545` gives
/// `localhost`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

impl OriginHostFilterLayer {
    /// Filters by `rules`.
    pub fn new(rules: OriginHostRules) -> Self {
        Self { rules: std::sync::Arc::new(rules), access: None }
    }

    /// Reports every refusal to `access` ([`crate::api::Access::refused`]), as the other
    /// refusals before a method are.
    pub fn reporting_to(mut self, access: crate::api::Access) -> Self {
        self.access = Some(access);
        self
    }
}

impl<S> Layer<S> for OriginHostFilterLayer {
    type Service = OriginHostFilter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OriginHostFilter { inner, rules: self.rules.clone(), access: self.access.clone() }
    }
}

/// Refuses requests from browser origins and host names not configured, before they reach
/// the JSON-RPC service: a web page the operator visits cannot make the sidecar sign, and DNS
/// rebinding cannot reach a loopback endpoint under a foreign name.
#[derive(Debug, Clone)]
pub struct OriginHostFilter<S> {
    inner: S,
    rules: std::sync::Arc<OriginHostRules>,
    access: Option<crate::api::Access>,
}

impl<S> Service<HttpRequest> for OriginHostFilter<S>
where
    S: Service<HttpRequest, Response = jsonrpsee::server::HttpResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        let Some(reason) =
            self.rules.refusal(header(http::header::ORIGIN), header(http::header::HOST))
        else {
            return Box::pin(self.inner.call(request));
        };
        tracing::debug!(target: "ecrop::rpc", %reason, "request refused");
        if let Some(access) = &self.access {
            access.refused(&crate::api::Refusal {
                client: None,
                host: header(http::header::HOST).map(str::to_owned),
                origin: header(http::header::ORIGIN).map(str::to_owned),
                reason: reason.clone(),
                code: super::error::FORBIDDEN,
                status: http::StatusCode::FORBIDDEN.as_u16(),
            });
        }
        let response = error_response(
            http::StatusCode::FORBIDDEN,
            super::error::FORBIDDEN,
            &reason,
            None,
            &[],
        );
        Box::pin(async move { Ok(response) })
    }
}

/// Layer producing [`Authenticate`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    access: Access,
}

impl AuthLayer {
    /// Authenticates with `access`.
    pub fn new(access: Access) -> Self {
        Self { access }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate { inner, access: self.access.clone() }
    }
}

/// See [`AuthLayer`] and the module documentation.
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    access: Access,
}

/// An HTTP answer with a JSON-RPC error body.
fn error_response(
    status: http::StatusCode,
    code: i32,
    message: &str,
    data: Option<serde_json::Value>,
    headers: &[(http::header::HeaderName, String)],
) -> HttpResponse {
    let mut error = serde_json::json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": error});
    let mut builder = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(HttpBody::from(body.to_string()))
        .unwrap_or_else(|_| http::Response::new(HttpBody::from("refused")))
}

/// A refusal answer about to be sent.
struct Answer {
    status: http::StatusCode,
    code: i32,
    reason: String,
    data: Option<serde_json::Value>,
    headers: Vec<(http::header::HeaderName, String)>,
}

impl Answer {
    /// The HTTP response; the refusal is reported first.
    fn send(self, access: &Access, mut refusal: Refusal) -> HttpResponse {
        let response =
            error_response(self.status, self.code, &self.reason, self.data, &self.headers);
        refusal.reason = self.reason;
        refusal.code = self.code;
        refusal.status = self.status.as_u16();
        access.refused(&refusal);
        response
    }
}

impl<S> Service<HttpRequest> for Authenticate<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest) -> Self::Future {
        use super::error::{LIMIT_EXCEEDED, UNAUTHORIZED};
        use http::{StatusCode, header};

        let text =
            |name| request.headers().get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
        let mut refusal = Refusal {
            client: None,
            host: text(header::HOST).map(str::to_owned),
            origin: text(header::ORIGIN).map(str::to_owned),
            reason: String::new(),
            code: 0,
            status: 0,
        };
        let access = self.access.clone();
        let refuse = move |refusal: Refusal, answer: Answer| answer.send(&access, refusal);
        let authorization = match request.headers().get(header::AUTHORIZATION) {
            None => None,
            Some(value) => match value.to_str() {
                Ok(text) => Some(text),
                Err(_) => {
                    let response = refuse(
                        refusal,
                        Answer {
                            status: StatusCode::UNAUTHORIZED,
                            code: UNAUTHORIZED,
                            reason: AuthError::Malformed.to_string(),
                            data: None,
                            headers: vec![(header::WWW_AUTHENTICATE, "Bearer".to_owned())],
                        },
                    );
                    return Box::pin(async move { Ok(response) });
                }
            },
        };
        let admitted = match self.access.admit(authorization) {
            Ok(admitted) => admitted,
            Err(error) => {
                let response = refuse(
                    refusal,
                    Answer {
                        status: StatusCode::UNAUTHORIZED,
                        code: UNAUTHORIZED,
                        reason: format!("Unauthorized: {error}"),
                        data: None,
                        headers: vec![(header::WWW_AUTHENTICATE, "Bearer".to_owned())],
                    },
                );
                return Box::pin(async move { Ok(response) });
            }
        };
        refusal.client = Some(admitted.caller.client.clone());

        // A client clearly over its rate or concurrency is told so before anything is read.
        if let Err(over) = admitted.limiter.peek() {
            let retry = over.retry_after();
            let ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX).max(1);
            let response = refuse(
                refusal,
                Answer {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: LIMIT_EXCEEDED,
                    reason: format!("{} for client {}", over.reason(), admitted.caller.client),
                    data: Some(serde_json::json!({"retryAfterMs": ms})),
                    headers: vec![(header::RETRY_AFTER, ms.div_ceil(1000).max(1).to_string())],
                },
            );
            return Box::pin(async move { Ok(response) });
        }

        let max = u64::from(admitted.limiter.limits().max_request_bytes);
        let client = admitted.caller.client.clone();
        request.extensions_mut().insert::<Caller>(admitted.caller);
        request.extensions_mut().insert(admitted.limiter);
        request.extensions_mut().insert(admitted.session);
        let too_large = move |declared: Option<u64>| {
            let size = declared.map_or_else(|| "the body".to_owned(), |n| format!("{n} bytes"));
            (
                format!("request body too large ({size}; limit {max} bytes for client {client})"),
                serde_json::json!({"maxRequestBytes": max}),
            )
        };

        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // Above the endpoint's own limit the server answers (-32007, after the drain layer),
        // as it does for every client; here only a client's lower limit is enforced.
        let global = u64::from(self.access.global().max_request_bytes);
        if let Some(declared) = declared {
            if declared <= max || declared > global {
                return Box::pin(self.inner.call(request));
            }
            let (reason, data) = too_large(Some(declared));
            let response = refuse(
                refusal,
                Answer {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: LIMIT_EXCEEDED,
                    reason,
                    data: Some(data),
                    headers: Vec::new(),
                },
            );
            return Box::pin(async move {
                // Read the body first (when not absurdly large) so the client sees the answer
                // rather than a broken pipe.
                if declared <= DRAIN_LIMIT_BYTES {
                    let mut body = request.into_body();
                    while let Some(frame) = body.frame().await {
                        if frame.is_err() {
                            break;
                        }
                    }
                }
                Ok(response)
            });
        }
        if request.method() != http::Method::POST || max >= global {
            return Box::pin(self.inner.call(request));
        }

        // No declared length (chunked): read at most the limit, then hand on what was read.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let limit = usize::try_from(max).unwrap_or(usize::MAX);
            match http_body_util::Limited::new(body, limit).collect().await {
                Ok(collected) => {
                    let body = HttpBody::from(collected.to_bytes().to_vec());
                    inner.call(HttpRequest::from_parts(parts, body)).await
                }
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    let (reason, data) = too_large(None);
                    Ok(refuse(
                        refusal,
                        Answer {
                            status: StatusCode::PAYLOAD_TOO_LARGE,
                            code: LIMIT_EXCEEDED,
                            reason,
                            data: Some(data),
                            headers: Vec::new(),
                        },
                    ))
                }
                Err(_) => {
                    // The client broke the body off; the server answers an empty body as such.
                    inner.call(HttpRequest::from_parts(parts, HttpBody::empty())).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> OriginHostRules {
        OriginHostRules {
            origins: vec!["https://app.example".into()],
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
        }
    }

    #[test]
    fn lets_local_tools_through() {
        assert_eq!(rules().refusal(None, Some("127.0.0.1:8545")), None);
        assert_eq!(rules().refusal(None, Some("localhost")), None);
        assert_eq!(rules().refusal(None, Some("[::1]:8545")), None);
        assert_eq!(rules().refusal(Some("https://APP.example"), Some("localhost:1")), None);
    }

    #[test]
    fn refuses_foreign_origins_and_rebound_hosts() {
        assert_eq!(
            rules().refusal(Some("https://evil.example"), Some("127.0.0.1:8545")).unwrap(),
            "origin not allowed (https://evil.example); see rpc.allowed_origins"
        );
        assert_eq!(
            rules().refusal(None, Some("evil.example.com:8545")).unwrap(),
            "host not allowed (evil.example.com); see rpc.allowed_hosts"
        );
        assert_eq!(rules().refusal(None, None).unwrap(), "host header missing");
        let open = OriginHostRules { origins: vec!["*".into()], hosts: vec!["*".into()] };
        assert_eq!(open.refusal(Some("https://x"), None), None);
    }
}
