//! The one place where the sidecar's errors become JSON-RPC error objects.
//!
//! Codes follow JSON-RPC 2.0 and EIP-1474: -32602 for bad parameters, -32000 for an account
//! the sidecar holds no key for (as geth answers), -32002 when the token or the node is
//! unavailable, -32003 when the sidecar's transaction policy (the account allowlist) or the
//! key's signing policy refuses (a signing-policy refusal carries `{ "rule", "reason" }` as
//! `data`, so a client can tell which rule of the configuration refused it), -40100 for
//! missing or invalid credentials (as Besu), -40300 when the caller's role does not permit the
//! method or account, -32005 when a per-client limit is exceeded (EIP-1474).
//! Errors from the node are relayed with the node's own code, message and data.

use jsonrpsee::types::ErrorObjectOwned;

use crate::{signer::SignerError, upstream::UpstreamError, wallet::WalletError};

/// Invalid method parameters (JSON-RPC 2.0).
pub const INVALID_PARAMS: i32 = -32602;
/// Generic server error, used for an unknown account like geth does.
pub const UNKNOWN_ACCOUNT: i32 = -32000;
/// A resource the call needs is unavailable (EIP-1474): the token or the node.
pub const RESOURCE_UNAVAILABLE: i32 = -32002;
/// Transaction rejected (EIP-1474): the sidecar's policy refused the sender or target.
pub const TRANSACTION_REJECTED: i32 = -32003;
/// The request was refused before it reached a method (origin or host not allowed); the
/// implementation-defined server error range of JSON-RPC 2.0.
pub const FORBIDDEN: i32 = -32099;
/// Internal error (JSON-RPC 2.0).
pub const INTERNAL_ERROR: i32 = -32603;
/// Missing or invalid credentials (HTTP 401), the code Besu's JWT authentication answers.
pub const UNAUTHORIZED: i32 = -40100;
/// The caller's role may not call this method, or not for this account (HTTP-403 analogue
/// in Besu's -40100 scheme).
pub const METHOD_NOT_PERMITTED: i32 = -40300;
/// A per-client limit was exceeded: rate, concurrency, body size or batch length (EIP-1474
/// "limit exceeded"); `data` carries the limit and, where waiting helps, `retryAfterMs`.
pub const LIMIT_EXCEEDED: i32 = -32005;

/// Codes with which the sidecar refuses a request (policy, access control, limits,
/// authentication), as opposed to failing it: counted and recorded as refusals.
pub const REFUSAL_CODES: [i32; 5] =
    [TRANSACTION_REJECTED, LIMIT_EXCEEDED, FORBIDDEN, UNAUTHORIZED, METHOD_NOT_PERMITTED];

/// A limit-exceeded error with `message` and `data`.
pub fn limit_exceeded(message: impl Into<String>, data: serde_json::Value) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(LIMIT_EXCEEDED, message.into(), Some(data))
}

/// A method-not-permitted error with `message`.
pub fn not_permitted(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(METHOD_NOT_PERMITTED, message.into(), None::<()>)
}

/// An invalid-params error with `message`.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), None::<()>)
}

/// Converts an upstream error: node errors unchanged, transport failures as unavailable.
pub fn upstream_error(error: UpstreamError) -> ErrorObjectOwned {
    match error {
        UpstreamError::Rpc { code, message, data } => {
            // JSON-RPC codes are i32 on the wire in practice; clamp anything wider.
            let code = i32::try_from(code).unwrap_or(INTERNAL_ERROR);
            ErrorObjectOwned::owned(code, message, data)
        }
        other => ErrorObjectOwned::owned(RESOURCE_UNAVAILABLE, other.to_string(), None::<()>),
    }
}

/// Converts a wallet error.
pub fn wallet_error(error: WalletError) -> ErrorObjectOwned {
    match error {
        WalletError::Upstream(inner) => upstream_error(inner),
        WalletError::Signer(inner) => signer_error(inner),
        WalletError::MissingFrom
        | WalletError::ChainIdMismatch { .. }
        | WalletError::UnsupportedType(_)
        | WalletError::Incomplete(_)
        | WalletError::Invalid(_)
        | WalletError::TypedData(_) => invalid_params(error.to_string()),
        WalletError::Rejected(_) => {
            ErrorObjectOwned::owned(TRANSACTION_REJECTED, error.to_string(), None::<()>)
        }
        WalletError::PolicyRefused(refusal) => {
            ErrorObjectOwned::owned(TRANSACTION_REJECTED, refusal.to_string(), Some(refusal))
        }
        WalletError::Signing(_) | WalletError::HashMismatch { .. } => {
            ErrorObjectOwned::owned(INTERNAL_ERROR, error.to_string(), None::<()>)
        }
    }
}

/// Converts a token error.
pub fn signer_error(error: SignerError) -> ErrorObjectOwned {
    let code = match error {
        SignerError::UnknownAccount(_) => UNKNOWN_ACCOUNT,
        _ => RESOURCE_UNAVAILABLE,
    };
    ErrorObjectOwned::owned(code, error.to_string(), None::<()>)
}
