//! What the params of a call say, read from the raw JSON without parsing the whole request:
//! shared by the layers that check (permission matrix), record (audit log) and report (webhooks)
//! calls, so that they all read a call the same way.

use std::{borrow::Cow, sync::Arc};

use jsonrpsee::server::{MethodResponse, middleware::rpc::Request};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::audit::entry::bound;

/// Methods that make a signature with one of the token's keys (all served by the sidecar).
pub const SIGNING_METHODS: [&str; 5] = [
    "eth_sendTransaction",
    "eth_signTransaction",
    "eth_sign",
    "personal_sign",
    "eth_signTypedData_v4",
];

/// What a call's params say that matters to checks and records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CallFacts {
    /// The account that signs, as written in the params.
    pub account: Option<String>,
    /// The target: a transaction's `to`, or typed data's verifying contract.
    pub target: Option<String>,
    /// Short notes such as `selector=0xa9059cbb`, `value=0x10`, `contract creation`.
    pub detail: Vec<String>,
}

/// The account a signing call signs with, when its params name a well-formed one.
pub fn signing_account(
    method: &str,
    params: Option<&RawValue>,
) -> Option<alloy::primitives::Address> {
    signing_facts(method, params).account?.parse().ok()
}

/// [`signing_facts`], read once per call: taken from the call's extensions when an outer layer
/// stored them there ([`remember_signing_facts`]), else read from the params.
pub fn known_signing_facts(
    extensions: &jsonrpsee::Extensions,
    method: &str,
    params: Option<&RawValue>,
) -> Arc<CallFacts> {
    match extensions.get::<Arc<CallFacts>>() {
        Some(facts) => facts.clone(),
        None => Arc::new(signing_facts(method, params)),
    }
}

/// Reads a signing call's facts and stores them in its extensions for the layers inside.
pub fn remember_signing_facts(request: &mut Request<'_>) -> Arc<CallFacts> {
    let facts =
        known_signing_facts(request.extensions(), request.method_name(), request.params.as_deref());
    request.extensions_mut().insert(facts.clone());
    facts
}

/// An answer as the client gets it, with only what the layers read from it.
#[derive(Debug, Deserialize)]
pub struct Answer<'a> {
    /// The result, unparsed.
    #[serde(default, borrow)]
    pub result: Option<&'a RawValue>,
    /// The error.
    #[serde(default, borrow)]
    pub error: Option<AnswerError<'a>>,
}

/// The error of an [`Answer`].
#[derive(Debug, Deserialize)]
pub struct AnswerError<'a> {
    /// JSON-RPC error code.
    pub code: i64,
    /// Error message.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

/// Reads `response` as the client gets it; `None` when it is not a single answer.
pub fn answer(response: &MethodResponse) -> Option<Answer<'_>> {
    serde_json::from_str(response.as_json().get()).ok()
}

/// The error of an answer, as the client gets it: code and message.
pub fn answer_error(response: &MethodResponse) -> Option<(i64, String)> {
    let code = response.as_error_code()?;
    match answer(response) {
        Some(Answer { error: Some(error), .. }) => Some((error.code, error.message.into_owned())),
        _ => Some((i64::from(code), String::new())),
    }
}

/// The positional params, borrowed; none when they are absent or not an array.
fn positional(params: Option<&RawValue>) -> Vec<&RawValue> {
    params.and_then(|p| serde_json::from_str::<Vec<&RawValue>>(p.get()).ok()).unwrap_or_default()
}

/// A JSON string param's text; none for anything else.
fn string_param(value: Option<&&RawValue>) -> Option<String> {
    value.and_then(|v| serde_json::from_str::<String>(v.get()).ok())
}

/// The parts of a transaction object an entry keeps.
#[derive(Deserialize)]
struct TransactionFacts<'a> {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    value: Option<serde_json::Value>,
    #[serde(default, borrow)]
    input: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
}

/// The parts of typed data an entry keeps.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypedDataFacts {
    #[serde(default)]
    domain: Option<DomainFacts>,
    #[serde(default)]
    primary_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainFacts {
    #[serde(default)]
    verifying_contract: Option<String>,
}

/// What a signing call is about: the account that signs, the target (`to` of a transaction,
/// the verifying contract of typed data) and a short detail (selector, value, primary type).
/// Fields the params do not hold, or hold in an unreadable form, are left empty.
pub fn signing_facts(method: &str, params: Option<&RawValue>) -> CallFacts {
    let params = positional(params);
    let mut facts = CallFacts::default();
    match method {
        "eth_sendTransaction" | "eth_signTransaction" => {
            let Some(tx) = params
                .first()
                .and_then(|p| serde_json::from_str::<TransactionFacts<'_>>(p.get()).ok())
            else {
                return facts;
            };
            facts.account = tx.from;
            match tx.to {
                Some(to) => facts.target = Some(to),
                None => facts.detail.push("contract creation".into()),
            }
            // A deployment's data is code, not a call; only a call has a selector.
            let data = tx.input.or(tx.data).filter(|d| d.len() >= 10 && facts.target.is_some());
            if let Some(data) = data {
                facts.detail.push(format!("selector={}", data.get(..10).unwrap_or_default()));
            }
            // Wallets send the value as a hex string; a JSON number is read as well.
            let value = match tx.value {
                Some(serde_json::Value::String(text)) => Some(text),
                Some(number @ serde_json::Value::Number(_)) => Some(number.to_string()),
                _ => None,
            };
            if let Some(value) = value {
                facts.detail.push(format!("value={}", bound(value, 80)));
            }
        }
        "eth_sign" => facts.account = string_param(params.first()),
        "personal_sign" => facts.account = string_param(params.get(1)),
        "eth_signTypedData_v4" => {
            facts.account = string_param(params.first());
            let typed = params.get(1).and_then(|raw| {
                // Wallets send the typed data as an object or as a string holding one.
                match string_param(Some(raw)) {
                    Some(text) => serde_json::from_str::<TypedDataFacts>(&text).ok(),
                    None => serde_json::from_str::<TypedDataFacts>(raw.get()).ok(),
                }
            });
            if let Some(typed) = typed {
                facts.target = typed.domain.and_then(|d| d.verifying_contract);
                if let Some(primary) = typed.primary_type {
                    facts.detail.push(format!("primaryType={}", bound(primary, 80)));
                }
            }
        }
        _ => {}
    }
    facts
}
