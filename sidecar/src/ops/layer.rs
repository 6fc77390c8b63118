//! RPC middleware that counts every call: method, outcome and latency, and the calls in flight.
//!
//! Placed outermost, it sees every answer the endpoint gives, refusals by inner layers
//! included. Batches are served call by call ([`crate::rpc::batch::each`]), so each call of a
//! batch is counted like a single call. Notifications get no answer and are not counted.

use std::time::Instant;

use jsonrpsee::server::{
    MethodResponse,
    middleware::rpc::{Batch, Notification, Request, RpcServiceT},
};

use super::{
    Event, EventKind, Notifier,
    metrics::{Metrics, method_label},
};
use crate::{
    api::Caller,
    audit::entry::WHO_UNIDENTIFIED,
    rpc::{
        error::{METHOD_NOT_PERMITTED, TRANSACTION_REJECTED},
        params::{SIGNING_METHODS, answer_error, known_signing_facts},
    },
};

/// Builds [`RpcMetrics`] around the next service (a `tower::Layer` for jsonrpsee's
/// `RpcServiceBuilder::layer`).
#[derive(Clone, Copy, Debug)]
pub struct RpcMetricsLayer {
    metrics: &'static Metrics,
    max_response_bytes: usize,
}

impl RpcMetricsLayer {
    /// Counts into `metrics`; batch answers are bounded by `max_response_bytes` as the
    /// endpoint's are.
    pub fn new(metrics: &'static Metrics, max_response_bytes: usize) -> Self {
        Self { metrics, max_response_bytes }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner, metrics: self.metrics, max_response_bytes: self.max_response_bytes }
    }
}

/// The middleware service.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: &'static Metrics,
    max_response_bytes: usize,
}

/// Holds one unit of the in-flight gauge; released on drop, so a cancelled call (client gone)
/// is released too.
struct InFlight(&'static Metrics);

impl InFlight {
    fn enter(metrics: &'static Metrics) -> Self {
        metrics.rpc_in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.rpc_in_flight.dec();
    }
}

impl<S> RpcServiceT for RpcMetrics<S>
where
    S: crate::rpc::batch::Service,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let metrics = self.metrics;
        let method = method_label(request.method_name());
        let inner = self.inner.call(request);
        async move {
            let _in_flight = InFlight::enter(metrics);
            let started = Instant::now();
            let response = inner.await;
            metrics.record_call(method, response.as_error_code(), started.elapsed().as_secs_f64());
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        crate::rpc::batch::each(self.clone(), batch, self.max_response_bytes)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}

/// Builds [`RefusalEvents`] around the next service: a `transaction_refused` event for every
/// signing call the sidecar refuses: by the account allowlist or the signing policy (-32003),
/// or because the client's role may not sign (for that account) (-40300).
#[derive(Clone, Debug)]
pub struct RefusalEventsLayer {
    notifier: Notifier,
    max_response_bytes: usize,
}

impl RefusalEventsLayer {
    /// Reports to `notifier`; batch answers are bounded by `max_response_bytes`.
    pub fn new(notifier: Notifier, max_response_bytes: usize) -> Self {
        Self { notifier, max_response_bytes }
    }
}

impl<S> tower::Layer<S> for RefusalEventsLayer {
    type Service = RefusalEvents<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefusalEvents {
            inner,
            notifier: self.notifier.clone(),
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// The middleware service of [`RefusalEventsLayer`].
#[derive(Clone, Debug)]
pub struct RefusalEvents<S> {
    inner: S,
    notifier: Notifier,
    max_response_bytes: usize,
}

impl<S> RpcServiceT for RefusalEvents<S>
where
    S: crate::rpc::batch::Service,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let notifier = self.notifier.clone();
        let signing = SIGNING_METHODS.contains(&request.method_name())
            && notifier.wants(EventKind::TransactionRefused);
        // Only what the event needs is kept; the request itself moves into the inner call.
        let facts = signing.then(|| {
            let client = request.extensions().get::<Caller>().map(|c| c.client.clone());
            let method = request.method_name().to_owned();
            let facts = known_signing_facts(
                request.extensions(),
                request.method_name(),
                request.params.as_deref(),
            );
            (client, method, facts)
        });
        let inner = self.inner.call(request);
        async move {
            let response = inner.await;
            if let Some((client, method, facts)) = facts
                && let Some((code, reason)) = answer_error(&response)
                && (code == i64::from(TRANSACTION_REJECTED)
                    || code == i64::from(METHOD_NOT_PERMITTED))
            {
                let parse = |text: &Option<String>| text.as_deref().and_then(|t| t.parse().ok());
                notifier.notify(Event::transaction_refused(
                    client.as_deref().unwrap_or(WHO_UNIDENTIFIED),
                    &method,
                    parse(&facts.account),
                    parse(&facts.target),
                    &reason,
                ));
            }
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        crate::rpc::batch::each(self.clone(), batch, self.max_response_bytes)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}
