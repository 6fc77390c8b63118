//! RPC middleware enforcing the API permission matrix and the per-client limits on every call,
//! the calls of a batch one by one.
//!
//! For each call: the caller's role must permit the method; a signing method's account (the
//! transaction's `from`, or the address parameter) must be in the role's `send_from`; then the
//! call is charged against the client's rate and concurrency limits. A batch longer than the
//! client's `max_batch_len` is refused as a whole. Refused notifications are dropped.

use std::sync::Arc;

use futures::future::Either;
use jsonrpsee::{
    Extensions,
    server::{
        MethodResponse,
        middleware::rpc::{Batch, Notification, Request, RpcServiceT},
    },
    types::{ErrorObjectOwned, Id},
};
use serde_json::{json, value::RawValue};

use super::{
    Access, Caller,
    limits::{ClientLimiter, InFlight},
    roles::{SendFrom, is_signing},
};
use crate::rpc::{
    error::{UNAUTHORIZED, limit_exceeded, not_permitted},
    params::known_signing_facts,
};

/// Longest method name quoted in an error message.
const MAX_QUOTED_METHOD: usize = 64;

/// Marks the (empty) response to a notification that access control refused, with the error a
/// call would have got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRefused {
    /// JSON-RPC error code.
    pub code: i32,
    /// Why.
    pub reason: String,
}

/// The middleware service; place it right outside the passthrough.
#[derive(Clone, Debug)]
pub struct AccessControl<S> {
    inner: S,
    access: Access,
    max_response_bytes: usize,
}

impl<S> AccessControl<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, access: Access, max_response_bytes: usize) -> Self {
        Self { inner, access, max_response_bytes }
    }

    /// Checks one call; on success the returned guard holds its slot in flight.
    fn check(
        &self,
        extensions: &Extensions,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<InFlight, ErrorObjectOwned> {
        let caller = extensions.get::<Caller>().ok_or_else(|| {
            ErrorObjectOwned::owned(UNAUTHORIZED, "unauthenticated call", None::<()>)
        })?;
        // A connection outlives its credential's check: look again on every call.
        self.access
            .still_valid(caller, extensions.get::<super::Session>())
            .map_err(|reason| ErrorObjectOwned::owned(UNAUTHORIZED, reason, None::<()>))?;
        let shown = quoted(method);
        let role = self.access.roles().get(&caller.role).ok_or_else(|| {
            not_permitted(format!(
                "role {} of client {} is not defined in the configuration; {shown} refused",
                caller.role, caller.client
            ))
        })?;
        if !role.permits(method) {
            return Err(not_permitted(format!(
                "method {shown} not permitted for role {} (client {})",
                role.name, caller.client
            )));
        }
        if is_signing(method)
            && let SendFrom::Only(accounts) = &role.send_from
        {
            let account = known_signing_facts(extensions, method, params)
                .account
                .as_deref()
                .and_then(|a| a.parse::<alloy::primitives::Address>().ok());
            match account {
                Some(account) if accounts.contains(&account) => {}
                Some(account) => {
                    return Err(not_permitted(format!(
                        "role {} may not use account {account} ({shown}, client {})",
                        role.name, caller.client
                    )));
                }
                None => {
                    return Err(not_permitted(format!(
                        "role {} signs only for named accounts and {shown} names none (client {})",
                        role.name, caller.client
                    )));
                }
            }
        }
        let limiter = extensions
            .get::<Arc<ClientLimiter>>()
            .cloned()
            .unwrap_or_else(|| self.access.limiter(caller, None));
        limiter.admit().map_err(|refusal| {
            let retry = u64::try_from(refusal.retry_after().as_millis()).unwrap_or(u64::MAX);
            limit_exceeded(
                format!("{} for client {}", refusal.reason(), caller.client),
                json!({"retryAfterMs": retry.max(1)}),
            )
        })
    }
}

/// `method` for an error message, shortened and stripped of control characters.
fn quoted(method: &str) -> String {
    let mut shown: String =
        method.chars().filter(|c| !c.is_control()).take(MAX_QUOTED_METHOD).collect();
    if method.chars().count() > MAX_QUOTED_METHOD {
        shown.push('…');
    }
    shown
}

impl<S> RpcServiceT for AccessControl<S>
where
    S: crate::rpc::batch::Service,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        match self.check(request.extensions(), request.method_name(), request.params.as_deref()) {
            Ok(slot) => {
                let call = self.inner.call(request);
                Either::Left(async move {
                    let response = call.await;
                    drop(slot);
                    response
                })
            }
            Err(error) => {
                let id = request.id().into_owned();
                Either::Right(std::future::ready(MethodResponse::error(id, error)))
            }
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        crate::rpc::batch::each(self.clone(), batch, self.max_response_bytes)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let checked = self.check(
            notification.extensions(),
            notification.method_name(),
            notification.params.as_deref(),
        );
        match checked {
            Ok(slot) => {
                let call = self.inner.notification(notification);
                Either::Left(async move {
                    let response = call.await;
                    drop(slot);
                    response
                })
            }
            Err(error) => {
                tracing::debug!(target: "ecrop::api", reason = %error.message(), "notification refused");
                // No answer goes out, but the layers outside (the audit log) learn of the refusal.
                let mut response = MethodResponse::notification();
                response.extensions_mut().insert(NotificationRefused {
                    code: error.code(),
                    reason: error.message().to_owned(),
                });
                Either::Right(std::future::ready(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::rpc::params::signing_account;

    fn raw(value: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    #[test]
    fn finds_the_signing_account() {
        let a = "0x00000000000000000000000000000000000000aa";
        let account = |method, params: Value| signing_account(method, Some(&raw(params)));
        assert_eq!(account("eth_sendTransaction", json!([{"from": a}])), a.parse().ok());
        assert_eq!(account("eth_signTransaction", json!([{"from": a, "to": a}])), a.parse().ok());
        assert_eq!(account("eth_sign", json!([a, "0x01"])), a.parse().ok());
        assert_eq!(account("personal_sign", json!(["0x01", a])), a.parse().ok());
        assert_eq!(account("eth_signTypedData_v4", json!([a, {}])), a.parse().ok());
        assert_eq!(account("eth_sendTransaction", json!([{"to": a}])), None);
        assert_eq!(account("eth_sendTransaction", json!({"from": a})), None);
        assert_eq!(account("eth_sign", json!(["nope", "0x01"])), None);
        assert_eq!(signing_account("eth_sign", None), None);
    }

    #[test]
    fn quotes_methods_safely() {
        assert_eq!(quoted("eth_call"), "eth_call");
        assert_eq!(quoted("a\nb"), "ab");
        assert_eq!(quoted(&"x".repeat(100)).chars().count(), MAX_QUOTED_METHOD + 1);
    }
}

/// Refuses batches longer than the caller's limit, as a whole, before any of their calls is
/// served. The outermost RPC middleware, since the layers inside it serve batches call by call;
/// a refusal is reported like a refusal at the HTTP level ([`Access::refused`]).
#[derive(Clone, Debug)]
pub struct BatchLimit<S> {
    inner: S,
    access: Access,
}

impl<S> BatchLimit<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, access: Access) -> Self {
        Self { inner, access }
    }

    /// The refusal of `batch`, when it is longer than its caller may send.
    fn refusal(&self, batch: &mut Batch<'_>) -> Option<MethodResponse> {
        let len = batch.len();
        let extensions = batch.extensions();
        let caller = extensions.get::<Caller>();
        let limit = match (extensions.get::<Arc<ClientLimiter>>(), caller) {
            (Some(limiter), _) => limiter.limits().max_batch_len,
            (None, Some(caller)) => self.access.limiter(caller, None).limits().max_batch_len,
            (None, None) => self.access.global().max_batch_len,
        };
        if len <= limit as usize {
            return None;
        }
        let client = caller.map(|c| c.client.clone());
        let reason = format!(
            "batch of {len} calls exceeds the limit of {limit} for client {}",
            client.as_deref().unwrap_or_default()
        );
        let error = limit_exceeded(reason.clone(), json!({"maxBatchLen": limit}));
        self.access.refused(&super::Refusal {
            client,
            host: None,
            origin: None,
            reason,
            code: error.code(),
            status: 200,
        });
        Some(MethodResponse::error(Id::Null, error))
    }
}

impl<S> RpcServiceT for BatchLimit<S>
where
    S: crate::rpc::batch::Service,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        match self.refusal(&mut batch) {
            Some(refused) => Either::Left(std::future::ready(refused)),
            None => Either::Right(self.inner.batch(batch)),
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}
