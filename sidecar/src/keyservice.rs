//! The validator key service: the node key held in the token, served on loopback to a Besu
//! security-module plugin — public key, signature of a 32-byte hash, ECDH agreement for the
//! P2P handshake.
//!
//! Where Web3signer has an equivalent, the same path and shapes are used:
//! `GET /upcheck` answers `OK`; `GET /api/v1/eth1/publicKeys` lists `0x` + 64-byte public
//! keys (x || y); `POST /api/v1/eth1/sign/{identifier}` with `{"data": "0x<32 bytes>"}` returns
//! the `0x` + 65-byte signature (r || s || v, v = 27/28) of that hash as given — a Besu
//! security module signs hashes, so nothing is hashed again. `POST /api/v1/eth1/ecdh/{identifier}`
//! with `{"publicKey": "0x<64 or 65 bytes>"}` has no Web3signer equivalent and returns
//! `{"secret": "0x<32 bytes>"}`. The identifier is the public key as listed.
//!
//! Persists nothing; fails closed (a token error is a 503, never a guessed answer); never logs
//! key material or shared secrets.

use std::{net::SocketAddr, sync::Arc};

use alloy::primitives::B256;
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::signer::{KeyInfo, SignerError, Token};

/// Largest request body: a public key in hex fits many times over.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// The key served.
#[derive(Clone)]
struct Served {
    token: Token,
    key: KeyInfo,
    identifier: String,
}

/// Runs the key service for `key` of `token` on `listen` until `shutdown` completes.
pub async fn serve(
    token: Token,
    key: KeyInfo,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let identifier = format!("0x{}", hex::encode(&key.public_key[1..]));
    let state = Arc::new(Served { token, key, identifier });
    let app = Router::new()
        .route("/upcheck", get(|| async { "OK" }))
        .route("/api/v1/eth1/publicKeys", get(public_keys))
        .route("/api/v1/eth1/sign/{identifier}", post(sign))
        .route("/api/v1/eth1/ecdh/{identifier}", post(ecdh))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(target: "ecrop::keyservice", %error, "key service stopped");
        }
    });
    tracing::info!(target: "ecrop::keyservice", %local, "validator key service listening");
    Ok((local, handle))
}

async fn public_keys(State(s): State<Arc<Served>>) -> Json<Vec<String>> {
    Json(vec![s.identifier.clone()])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EcdhBody {
    public_key: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// A refusal before any work: status and message.
type Refusal = (StatusCode, String);

fn check_identifier(s: &Served, identifier: &str) -> Result<(), Refusal> {
    if identifier.eq_ignore_ascii_case(&s.identifier) {
        Ok(())
    } else {
        Err((StatusCode::NOT_FOUND, format!("no key with identifier ({identifier})")))
    }
}

fn hex_bytes(text: &str, what: &str) -> Result<Vec<u8>, Refusal> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map_err(|_| (StatusCode::BAD_REQUEST, format!("{what} is not hex")))
}

fn token_failure(error: SignerError) -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

async fn sign(
    State(s): State<Arc<Served>>,
    Path(identifier): Path<String>,
    body: Result<Json<SignBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err((status, message)) = check_identifier(&s, &identifier) {
        return refuse(status, message);
    }
    let Ok(Json(body)) = body else {
        return refuse(StatusCode::BAD_REQUEST, "body must be {\"data\": \"0x<32 bytes>\"}");
    };
    let bytes = match hex_bytes(&body.data, "data") {
        Ok(bytes) if bytes.len() == 32 => bytes,
        Ok(bytes) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("data must be a 32-byte hash ({} bytes)", bytes.len()),
            );
        }
        Err((status, message)) => return refuse(status, message),
    };
    let hash = B256::from_slice(&bytes);
    let (token, key) = (s.token.clone(), s.key.clone());
    match tokio::task::spawn_blocking(move || token.sign_prehash(&key, &hash)).await {
        Ok(Ok(signature)) => {
            tracing::info!(target: "ecrop::keyservice", %hash, "hash signed with the node key");
            format!("0x{}", hex::encode(signature.as_bytes())).into_response()
        }
        Ok(Err(error)) => token_failure(error),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "signing task failed"),
    }
}

async fn ecdh(
    State(s): State<Arc<Served>>,
    Path(identifier): Path<String>,
    body: Result<Json<EcdhBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err((status, message)) = check_identifier(&s, &identifier) {
        return refuse(status, message);
    }
    let Ok(Json(body)) = body else {
        return refuse(StatusCode::BAD_REQUEST, "body must be {\"publicKey\": \"0x<64 bytes>\"}");
    };
    let peer: [u8; 65] = match hex_bytes(&body.public_key, "publicKey") {
        Ok(bytes) if bytes.len() == 64 => {
            let mut full = [0u8; 65];
            full[0] = 0x04;
            full[1..].copy_from_slice(&bytes);
            full
        }
        Ok(bytes) if bytes.len() == 65 && bytes[0] == 0x04 => {
            let mut full = [0u8; 65];
            full.copy_from_slice(&bytes);
            full
        }
        Ok(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "publicKey must be 64 bytes (x || y) or 65 bytes (04 || x || y)",
            );
        }
        Err((status, message)) => return refuse(status, message),
    };
    let (token, key) = (s.token.clone(), s.key.clone());
    match tokio::task::spawn_blocking(move || token.ecdh(&key, &peer)).await {
        Ok(Ok(secret)) => Json(json!({"secret": secret})).into_response(),
        Ok(Err(SignerError::InvalidPublicKey(reason))) => refuse(StatusCode::BAD_REQUEST, reason),
        Ok(Err(error)) => token_failure(error),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "ecdh task failed"),
    }
}
