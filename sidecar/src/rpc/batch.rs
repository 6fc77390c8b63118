//! Batches served call by call through one middleware, so that every layer sees every call of
//! a batch as it sees a single call (its method, caller and outcome).

use jsonrpsee::server::{
    BatchResponseBuilder, MethodResponse,
    middleware::rpc::{Batch, BatchEntry, RpcServiceT},
};

/// A service the sidecar's RPC middleware wraps: answers calls, batches and notifications
/// with plain [`MethodResponse`]s and can be shared between connections.
pub trait Service:
    RpcServiceT<
        MethodResponse = MethodResponse,
        BatchResponse = MethodResponse,
        NotificationResponse = MethodResponse,
    > + Send
    + Sync
    + Clone
    + 'static
{
}

impl<S> Service for S where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static
{
}

/// Serves `batch` by calling `service` once per entry, in order, and collecting the answers
/// into one batch response of at most `max_response_bytes`. Notifications are served and get
/// no answer; a batch of notifications only gets none at all.
pub async fn each<S>(service: S, batch: Batch<'_>, max_response_bytes: usize) -> MethodResponse
where
    S: RpcServiceT<MethodResponse = MethodResponse, NotificationResponse = MethodResponse>,
{
    let mut responses = BatchResponseBuilder::new_with_limit(max_response_bytes);
    let mut got_notification = false;
    for entry in batch.into_iter() {
        let response = match entry {
            Ok(BatchEntry::Call(request)) => service.call(request).await,
            Ok(BatchEntry::Notification(notification)) => {
                got_notification = true;
                service.notification(notification).await;
                continue;
            }
            Err(error) => {
                let (error, id) = error.into_parts();
                MethodResponse::error(id, error)
            }
        };
        if let Err(too_large) = responses.append(response) {
            return too_large;
        }
    }
    if responses.is_empty() && got_notification {
        MethodResponse::notification()
    } else {
        MethodResponse::from_batch(responses.finish())
    }
}
