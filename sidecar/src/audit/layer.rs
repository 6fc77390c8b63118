//! RPC middleware recording signatures, administrative calls and refusals.
//!
//! Placed outside the access checks, so that it sees every call with the caller authentication
//! established and the answer the client gets, refusals included. Batches are served call by
//! call ([`crate::rpc::batch::each`]), so each call of a batch gets its own entry.
//!
//! - A call of a [`SIGNING_METHODS`] method is recorded as a signature with the account, the
//!   target (`to`, or a typed-data domain's verifying contract) and the outcome (the
//!   transaction hash, the signature, or the error); the entry is on disk before the answer
//!   leaves. While the log cannot write, signing calls are refused before they reach a key.
//! - A call of an administrative method (`[audit] admin_methods`) is recorded with its params
//!   (bounded) and outcome, before the answer leaves.
//! - Any call answered with a refusal code (`[audit] refusal_codes`) is recorded as a refusal,
//!   without its params unless it is a signing or administrative call.
//!
//! Request bodies are never recorded whole; transaction data is reduced to its selector.

use std::sync::Arc;

use jsonrpsee::{
    server::{
        MethodResponse,
        middleware::rpc::{Batch, Notification, Request, RpcServiceT},
    },
    types::{ErrorObjectOwned, Id},
};
use serde_json::value::RawValue;

use super::{
    AuditLog, AuditSettings, Kind, NewEntry, Outcome,
    entry::{MAX_DETAIL_BYTES, WHO_UNIDENTIFIED, bound, new_uid},
};
use crate::{
    api::{Caller, middleware::NotificationRefused},
    rpc::{
        error::RESOURCE_UNAVAILABLE,
        params::{CallFacts, SIGNING_METHODS, answer, remember_signing_facts},
    },
};

/// Detail of the entry written before a signing call is served.
pub const REQUESTED: &str = "stage=requested";

/// The entry announcing a signature, put into a signing call's extensions by [`Audit`]. The
/// signing method calls [`Announcement::announce`] before it uses a key; a call refused before
/// it reaches the method is recorded as a refusal only.
#[derive(Debug)]
pub struct Announcement {
    log: AuditLog,
    uid: String,
    entry: std::sync::Mutex<Option<NewEntry>>,
}

impl Announcement {
    fn new(log: AuditLog, entry: NewEntry) -> Self {
        Self { log, uid: entry.uid.clone(), entry: std::sync::Mutex::new(Some(entry)) }
    }

    /// Writes the announcement (once; later calls do nothing) and returns when the operating
    /// system has it. A failure refuses the signature: nothing is signed unrecorded.
    pub async fn announce(&self) -> Result<(), ErrorObjectOwned> {
        let entry = match self.entry.lock() {
            Ok(mut entry) => entry.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(entry) = entry else {
            return Ok(());
        };
        self.log.record_unsynced(entry).await.map(drop).map_err(|error| {
            tracing::error!(target: "ecrop::audit", uid = %self.uid, %error, "signing refused: request not recorded");
            ErrorObjectOwned::owned(RESOURCE_UNAVAILABLE, AUDIT_UNAVAILABLE, None::<()>)
        })
    }
}

/// Message of the refusal given to signing calls while the log cannot write.
pub const AUDIT_UNAVAILABLE: &str = "audit log unavailable; signing suspended";

/// Longest params text of an administrative call kept in the detail.
const MAX_ADMIN_PARAMS_BYTES: usize = MAX_DETAIL_BYTES / 2;

/// Layer producing [`Audit`]; add it with `RpcServiceBuilder::layer`.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    log: AuditLog,
    settings: Arc<AuditSettings>,
    max_response_bytes: usize,
}

impl AuditLayer {
    /// Records into `log` by `settings`; `max_response_bytes` bounds batch answers.
    pub fn new(log: AuditLog, settings: AuditSettings, max_response_bytes: usize) -> Self {
        Self { log, settings: Arc::new(settings), max_response_bytes }
    }
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            log: self.log.clone(),
            settings: self.settings.clone(),
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// The middleware service; see the module documentation.
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    log: AuditLog,
    settings: Arc<AuditSettings>,
    max_response_bytes: usize,
}

impl<S> RpcServiceT for Audit<S>
where
    S: crate::rpc::batch::Service,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let log = self.log.clone();
        let settings = self.settings.clone();
        async move {
            let mut request = request;
            let method = request.method_name().to_owned();
            let signing = SIGNING_METHODS.contains(&method.as_str());
            let admin = !signing && settings.is_admin(&method);
            let caller = request.extensions().get::<Caller>().cloned();
            let id = request.id().into_owned();
            // Read once here; the layers inside take them from the call's extensions.
            let facts = if signing {
                CallFacts::clone(&remember_signing_facts(&mut request))
            } else if admin {
                admin_facts(request.params.as_deref())
            } else {
                CallFacts::default()
            };

            if signing && !log.is_writable() {
                let error =
                    ErrorObjectOwned::owned(RESOURCE_UNAVAILABLE, AUDIT_UNAVAILABLE, None::<()>);
                let outcome = Outcome::error(i64::from(error.code()), error.message());
                let entry = build(Kind::Refusal, &method, caller.as_ref(), &id, facts, outcome);
                tracing::warn!(target: "ecrop::audit", method = %method, uid = %entry.uid, "signing refused: audit log not writable");
                log.record_detached(entry);
                return MethodResponse::error(id, error);
            }

            // A signature is announced before it is made, by the signing method itself once
            // access control let the call through ([`Announcement`]): should the process die
            // before the answer is recorded, the log still shows the request (same uid,
            // outcome none). The announcement is synced with the answer's entry, one disk sync
            // per signature.
            let announcement = signing.then(|| {
                let mut requested = build(
                    Kind::Signature,
                    &method,
                    caller.as_ref(),
                    &id,
                    facts.clone(),
                    Outcome::None,
                );
                requested.detail = Some(match requested.detail.take() {
                    Some(detail) => format!("{detail} {REQUESTED}"),
                    None => REQUESTED.to_owned(),
                });
                let announcement = Arc::new(Announcement::new(log.clone(), requested));
                request.extensions_mut().insert(announcement.clone());
                announcement
            });

            let response = inner.call(request).await;

            let code = response.as_error_code().map(i64::from);
            let kind = if code.is_some_and(|c| settings.is_refusal(c)) {
                Kind::Refusal
            } else if signing {
                Kind::Signature
            } else if admin {
                Kind::Admin
            } else {
                return response;
            };
            let outcome = outcome_of(&method, &response);
            let mut entry = build(kind, &method, caller.as_ref(), &id, facts, outcome);
            if let Some(announcement) = announcement {
                entry.uid = announcement.uid.clone();
            }
            let uid = entry.uid.clone();
            match log.record(entry).await {
                Ok(seq) => {
                    tracing::debug!(target: "ecrop::audit", %method, %uid, seq, kind = kind.as_str(), "recorded");
                }
                Err(error) => {
                    // The answer still goes out: a signature made (a transaction sent) cannot
                    // be taken back, and an error would make the client try again.
                    tracing::error!(target: "ecrop::audit", %method, %uid, kind = kind.as_str(), %error, "call not recorded");
                }
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
        let inner = self.inner.clone();
        let log = self.log.clone();
        let settings = self.settings.clone();
        async move {
            // A refused notification is recorded as a refusal whatever its method. Of the rest,
            // signing ones are never executed, and administrative ones are relayed and
            // recorded without an outcome (none comes back).
            let method = notification.method_name().to_owned();
            let admin = settings.is_admin(&method) && !SIGNING_METHODS.contains(&method.as_str());
            let caller = notification.extensions().get::<Caller>().cloned();
            let mut facts = if admin {
                admin_facts(notification.params.as_deref())
            } else {
                CallFacts::default()
            };
            let response = inner.notification(notification).await;
            let (kind, outcome) = match response.extensions().get::<NotificationRefused>() {
                Some(refused) => {
                    (Kind::Refusal, Outcome::error(i64::from(refused.code), refused.reason.clone()))
                }
                None if admin => (Kind::Admin, Outcome::None),
                None => return response,
            };
            facts.detail.push("notification".into());
            let entry = build(kind, &method, caller.as_ref(), &Id::Null, facts, outcome);
            if let Err(error) = log.record(entry).await {
                tracing::error!(target: "ecrop::audit", %method, %error, "notification not recorded");
            }
            response
        }
    }
}

fn build(
    kind: Kind,
    method: &str,
    caller: Option<&Caller>,
    id: &Id<'_>,
    facts: CallFacts,
    outcome: Outcome,
) -> NewEntry {
    let mut detail = facts.detail;
    let who = match caller {
        Some(caller) => {
            detail.insert(0, format!("role={}", caller.role));
            caller.client.clone()
        }
        None => WHO_UNIDENTIFIED.to_owned(),
    };
    NewEntry {
        who,
        kind,
        action: method.to_owned(),
        request_id: match id {
            Id::Null => None,
            id => serde_json::to_string(id).ok(),
        },
        uid: new_uid(),
        account: facts.account,
        target: facts.target,
        outcome,
        detail: (!detail.is_empty()).then(|| detail.join(" ")),
    }
}

fn admin_facts(params: Option<&RawValue>) -> CallFacts {
    let mut facts = CallFacts::default();
    if let Some(params) = params {
        facts
            .detail
            .push(format!("params={}", bound(params.get().to_owned(), MAX_ADMIN_PARAMS_BYTES)));
    }
    facts
}

fn outcome_of(method: &str, response: &MethodResponse) -> Outcome {
    let Some(answer) = answer(response) else {
        return match response.as_error_code() {
            Some(code) => Outcome::error(i64::from(code), "(answer not readable)"),
            None => Outcome::Ok { result: None },
        };
    };
    if let Some(error) = answer.error {
        return Outcome::error(error.code, error.message.into_owned());
    }
    let Some(result) = answer.result else {
        return Outcome::Ok { result: None };
    };
    let text = serde_json::from_str::<String>(result.get()).ok();
    let summary = match (method, text) {
        // A signed transaction is summarised by its hash.
        ("eth_signTransaction", Some(raw)) => match hex::decode(raw.trim_start_matches("0x")) {
            Ok(bytes) => format!("tx_hash={}", alloy::primitives::keccak256(bytes)),
            Err(_) => raw,
        },
        (_, Some(text)) => text,
        (_, None) => result.get().to_owned(),
    };
    Outcome::ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::params::signing_facts;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn keeps_account_target_selector_and_value_of_a_transaction() {
        let params =
            raw(r#"[{"from":"0xaa","to":"0xbb","value":"0x10","input":"0xa9059cbb000000000000"}]"#);
        let facts = signing_facts("eth_sendTransaction", Some(&params));
        assert_eq!(facts.account.as_deref(), Some("0xaa"));
        assert_eq!(facts.target.as_deref(), Some("0xbb"));
        assert_eq!(facts.detail, ["selector=0xa9059cbb", "value=0x10"]);

        // A value sent as a JSON number is read too: the account and target are kept.
        let params = raw(r#"[{"from":"0xaa","to":"0xbb","value":1}]"#);
        let facts = signing_facts("eth_sendTransaction", Some(&params));
        assert_eq!(facts.account.as_deref(), Some("0xaa"));
        assert_eq!(facts.target.as_deref(), Some("0xbb"));
        assert_eq!(facts.detail, ["value=1"]);

        let params = raw(r#"[{"from":"0xaa","data":"0x6080604052"}]"#);
        let facts = signing_facts("eth_signTransaction", Some(&params));
        assert_eq!(facts.target, None);
        assert_eq!(facts.detail, ["contract creation"]);
    }

    #[test]
    fn keeps_the_signer_of_messages_and_typed_data() {
        let facts = signing_facts("eth_sign", Some(&raw(r#"["0xaa","0x00"]"#)));
        assert_eq!(facts.account.as_deref(), Some("0xaa"));
        let facts = signing_facts("personal_sign", Some(&raw(r#"["0x00","0xaa"]"#)));
        assert_eq!(facts.account.as_deref(), Some("0xaa"));
        let typed = r#"{"domain":{"verifyingContract":"0xcc"},"primaryType":"Mail","types":{},"message":{}}"#;
        let params = raw(&format!("[\"0xaa\",{typed}]"));
        let facts = signing_facts("eth_signTypedData_v4", Some(&params));
        assert_eq!(facts.account.as_deref(), Some("0xaa"));
        assert_eq!(facts.target.as_deref(), Some("0xcc"));
        assert_eq!(facts.detail, ["primaryType=Mail"]);
        let params = raw(&format!("[\"0xaa\",{}]", serde_json::to_string(typed).unwrap()));
        let facts = signing_facts("eth_signTypedData_v4", Some(&params));
        assert_eq!(facts.target.as_deref(), Some("0xcc"));
        let facts = signing_facts("eth_sign", Some(&raw(r#"{"address":"0xaa"}"#)));
        assert_eq!(facts.account, None);
    }

    #[test]
    fn bounds_admin_params() {
        let long = format!("[\"{}\"]", "a".repeat(4 * MAX_DETAIL_BYTES));
        let facts = admin_facts(Some(&raw(&long)));
        assert!(facts.detail[0].len() <= MAX_ADMIN_PARAMS_BYTES + "params=".len());
    }

    #[test]
    fn summarises_answers() {
        let ok = MethodResponse::response(
            Id::Number(1),
            jsonrpsee::ResponsePayload::success("0xabc"),
            1024,
        );
        assert_eq!(outcome_of("eth_sendTransaction", &ok), Outcome::ok("0xabc"));
        let signed = MethodResponse::response(
            Id::Number(1),
            jsonrpsee::ResponsePayload::success("0x01"),
            1024,
        );
        assert_eq!(
            outcome_of("eth_signTransaction", &signed),
            Outcome::ok(format!("tx_hash={}", alloy::primitives::keccak256([1u8])))
        );
        let err = MethodResponse::error(
            Id::Number(1),
            ErrorObjectOwned::owned(-32003, "rejected \"x\"", None::<()>),
        );
        assert_eq!(outcome_of("eth_sign", &err), Outcome::error(-32003, "rejected \"x\""));
    }
}
