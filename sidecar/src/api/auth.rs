//! Authentication of a bearer credential: an API key or a JWT.
//!
//! API keys are 256 random bits, given to the operator once as `ecrop_` followed by 43
//! base64url characters, and stored only as their SHA-256; a presented key is hashed and
//! compared in constant time with every active client's hash.
//!
//! JWTs are verified as Besu verifies them: with the public key configured for the client the
//! token's `sub` names, RS256 or ES256 only, the header's `alg` equal to the client's configured
//! algorithm (so `none`, HS256 signed with the public key as secret and every other algorithm
//! confusion fail), `exp` required and `nbf` honoured, with [`JWT_LEEWAY_SECS`] of clock skew.

use std::fmt;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::clients::{ClientEntry, ClientSet};

/// Prefix of every API key, so that a leaked key is recognisable (e.g. by secret scanners).
pub const API_KEY_PREFIX: &str = "ecrop_";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const JWT_LEEWAY_SECS: u64 = 5;
/// Longest bearer credential looked at.
const MAX_CREDENTIAL_LEN: usize = 16 * 1024;

/// JWT signature algorithms a client may be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum JwtAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    #[value(name = "ES256")]
    Es256,
}

impl fmt::Display for JwtAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        })
    }
}

impl JwtAlg {
    fn algorithm(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

/// A JWT verification key, checked to fit its algorithm.
#[derive(Clone)]
pub struct JwtKey {
    alg: JwtAlg,
    key: DecodingKey,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl JwtKey {
    /// Parses a public key PEM for `alg`: RS256 needs an RSA key of at least 2048 bits, ES256
    /// a P-256 key. Private keys are refused: they never belong in the clients file.
    pub fn new(alg: JwtAlg, pem: &str) -> Result<Self, String> {
        if pem.contains("PRIVATE KEY") {
            return Err("a private key was given; give the public key only".to_owned());
        }
        if !pem.contains("-----BEGIN ") {
            return Err("not a PEM public key (-----BEGIN PUBLIC KEY-----)".to_owned());
        }
        let key = match alg {
            JwtAlg::Rs256 => {
                let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| format!("not an RSA public key for RS256 ({e})"))?;
                // DER RSAPublicKey of a 2048-bit modulus is 270 bytes; 1024 bits give 140.
                if key.try_get_as_bytes().is_ok_and(|der| der.len() < 256) {
                    return Err("RSA key shorter than 2048 bits".to_owned());
                }
                key
            }
            JwtAlg::Es256 => {
                let key = DecodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|e| format!("not an EC public key for ES256 ({e})"))?;
                // An uncompressed P-256 point is 65 bytes; P-384's is 97.
                match key.try_get_as_bytes() {
                    Ok(point) if point.len() == 65 && point[0] == 4 => key,
                    _ => return Err("not a P-256 key; ES256 needs the P-256 curve".to_owned()),
                }
            }
        };
        Ok(Self { alg, key })
    }

    /// The algorithm tokens must use.
    pub fn alg(&self) -> JwtAlg {
        self.alg
    }
}

/// SHA-256 of an API key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyHash([u8; 32]);

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHash(..)")
    }
}

impl ApiKeyHash {
    /// Hash of `key`.
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A new random API key and its hash. The key is shown once and never stored.
pub fn generate_api_key() -> (String, ApiKeyHash) {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = ApiKeyHash::of(&key);
    (key, hash)
}

/// Why a credential was refused. Messages never contain the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("authentication required: send Authorization: Bearer <api key or JWT>")]
    Missing,
    /// The header is not `Bearer <credential>`.
    #[error("malformed Authorization header; expected Bearer <api key or JWT>")]
    Malformed,
    /// No active client has this API key.
    #[error("invalid API key")]
    UnknownKey,
    /// The token is not a well-formed JWT.
    #[error("invalid token: {0}")]
    BadToken(String),
    /// The token's `sub` names no active JWT client.
    #[error("invalid token: no active JWT client ({0})")]
    UnknownClient(String),
    /// The token's `alg` is not the client's.
    #[error("invalid token: algorithm {got} not allowed for this client (expected {expected})")]
    WrongAlgorithm {
        /// Algorithm in the token's header.
        got: String,
        /// The client's configured algorithm.
        expected: JwtAlg,
    },
    /// `exp` is in the past.
    #[error("invalid token: expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("invalid token: not valid yet (nbf)")]
    NotYetValid,
    /// The signature does not verify with the client's key.
    #[error("invalid token: signature does not verify")]
    BadSignature,
}

/// The client a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The client's entry in the clients file.
    pub client: ClientEntry,
    /// When the credential stops being valid (a JWT's `exp`, unix seconds); none for an API
    /// key, which is valid until revoked.
    pub expires_at: Option<u64>,
}

/// Authenticates the value of an `Authorization` header against the clients in force.
pub fn authenticate(header: &str, clients: &ClientSet) -> Result<Authenticated, AuthError> {
    let (scheme, credential) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || credential.is_empty()
        || credential.len() > MAX_CREDENTIAL_LEN
    {
        return Err(AuthError::Malformed);
    }
    if credential.contains('.') {
        verify_jwt(credential, clients)
    } else {
        verify_api_key(credential, clients)
    }
}

fn verify_api_key(key: &str, clients: &ClientSet) -> Result<Authenticated, AuthError> {
    let presented = ApiKeyHash::of(key);
    // Compare with every hash, so the time taken does not tell where a match was.
    let mut found = None;
    for (hash, index) in &clients.api_keys {
        if hash.ct_eq(&presented) {
            found = Some(*index);
        }
    }
    let entry = found.and_then(|i| clients.entry(i)).ok_or(AuthError::UnknownKey)?;
    Ok(Authenticated { client: entry.clone(), expires_at: None })
}

#[derive(Deserialize)]
struct Subject {
    sub: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    /// Required by the validation; optional here so that its absence is reported as such.
    exp: Option<u64>,
}

fn verify_jwt(token: &str, clients: &ClientSet) -> Result<Authenticated, AuthError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| AuthError::BadToken(format!("malformed header ({e})")))?;
    let subject: Subject = jsonwebtoken::dangerous::insecure_decode_claims(token)
        .map_err(|e| AuthError::BadToken(format!("malformed claims ({e})")))?;
    let sub = subject.sub.ok_or_else(|| AuthError::BadToken("no sub claim".to_owned()))?;
    let (key, index) = clients.jwt.get(&sub).ok_or_else(|| {
        let shown: String = sub.chars().take(64).filter(|c| !c.is_control()).collect();
        AuthError::UnknownClient(shown)
    })?;
    if header.alg != key.alg.algorithm() {
        return Err(AuthError::WrongAlgorithm {
            got: format!("{:?}", header.alg),
            expected: key.alg,
        });
    }
    let mut validation = Validation::new(key.alg.algorithm());
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.leeway = JWT_LEEWAY_SECS;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation.sub = Some(sub);
    let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => {
                AuthError::WrongAlgorithm { got: format!("{:?}", header.alg), expected: key.alg }
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                AuthError::BadToken(format!("missing claim {claim}"))
            }
            _ => AuthError::BadToken(e.to_string()),
        }
    })?;
    let entry = clients.entry(*index).ok_or(AuthError::UnknownClient(String::new()))?;
    Ok(Authenticated { client: entry.clone(), expires_at: claims.claims.exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::clients::{ClientsFile, Credential, Stamp};

    const RSA_PUBLIC: &str = include_str!("../../tests/fixtures/jwt-rs256-test-only.pub.pem");
    const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/jwt-rs256-test-only.key.pem");
    const RSA_OTHER_PRIVATE: &str =
        include_str!("../../tests/fixtures/jwt-rs256-other-test-only.key.pem");
    const EC_PUBLIC: &str = include_str!("../../tests/fixtures/jwt-es256-test-only.pub.pem");
    const EC_PRIVATE: &str = include_str!("../../tests/fixtures/jwt-es256-test-only.key.pem");
    const P384_PUBLIC: &str = include_str!("../../tests/fixtures/jwt-p384-test-only.pub.pem");

    fn client(id: &str, credential: Credential) -> ClientEntry {
        ClientEntry {
            id: id.into(),
            role: "reader".into(),
            credential,
            limits: None,
            created: Stamp::now(),
            revoked: None,
        }
    }

    fn set(key: &str) -> ClientSet {
        let mut clients = vec![
            client("k", Credential::ApiKey { sha256: ApiKeyHash::of(key).to_hex() }),
            client(
                "rsa",
                Credential::Jwt { alg: JwtAlg::Rs256, public_key_pem: RSA_PUBLIC.into() },
            ),
            client("ec", Credential::Jwt { alg: JwtAlg::Es256, public_key_pem: EC_PUBLIC.into() }),
        ];
        let mut revoked =
            client("gone", Credential::ApiKey { sha256: ApiKeyHash::of("x").to_hex() });
        revoked.revoked = Some(Stamp::now());
        clients.push(revoked);
        ClientSet::new(ClientsFile { version: 1, clients })
    }

    fn now() -> i64 {
        i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
    }

    fn token(alg: Algorithm, pem: &str, claims: serde_json::Value) -> String {
        let key = match alg {
            Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            Algorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            _ => jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()).unwrap(),
        };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
    }

    fn bearer(credential: &str) -> String {
        format!("Bearer {credential}")
    }

    #[test]
    fn api_keys() {
        let (key, hash) = generate_api_key();
        assert!(key.starts_with(API_KEY_PREFIX) && key.len() == API_KEY_PREFIX.len() + 43);
        assert_eq!(ApiKeyHash::of(&key), hash);
        assert_ne!(generate_api_key().0, key);
        let clients = set(&key);
        assert_eq!(authenticate(&bearer(&key), &clients).unwrap().client.id, "k");
        assert_eq!(authenticate(&format!("bearer  {key} "), &clients).unwrap().client.id, "k");
        assert_eq!(authenticate(&bearer("ecrop_wrong"), &clients), Err(AuthError::UnknownKey));
        assert_eq!(authenticate(&bearer("x"), &clients), Err(AuthError::UnknownKey), "revoked");
        assert_eq!(authenticate(&format!("Basic {key}"), &clients), Err(AuthError::Malformed));
        assert_eq!(authenticate(&key, &clients), Err(AuthError::Malformed));
        assert_eq!(authenticate("Bearer ", &clients), Err(AuthError::Malformed));
    }

    #[test]
    fn valid_tokens_pass() {
        let clients = set("k");
        let rsa = token(
            Algorithm::RS256,
            RSA_PRIVATE,
            serde_json::json!({"sub": "rsa", "exp": now() + 60}),
        );
        assert_eq!(authenticate(&bearer(&rsa), &clients).unwrap().client.id, "rsa");
        let ec = token(
            Algorithm::ES256,
            EC_PRIVATE,
            serde_json::json!({"sub": "ec", "exp": now() + 60, "nbf": now() - 1}),
        );
        assert_eq!(authenticate(&bearer(&ec), &clients).unwrap().client.id, "ec");
    }

    #[test]
    fn bad_tokens_are_refused() {
        let clients = set("k");
        let rs = |claims| token(Algorithm::RS256, RSA_PRIVATE, claims);
        let check = |token: String, expected: AuthError| {
            assert_eq!(authenticate(&bearer(&token), &clients), Err(expected));
        };
        check(rs(serde_json::json!({"sub": "rsa", "exp": now() - 600})), AuthError::Expired);
        check(
            rs(serde_json::json!({"sub": "rsa", "exp": now() + 600, "nbf": now() + 300})),
            AuthError::NotYetValid,
        );
        check(
            rs(serde_json::json!({"sub": "rsa"})),
            AuthError::BadToken("missing claim exp".into()),
        );
        check(
            rs(serde_json::json!({"sub": "nobody", "exp": now() + 60})),
            AuthError::UnknownClient("nobody".into()),
        );
        check(
            rs(serde_json::json!({"sub": "k", "exp": now() + 60})),
            AuthError::UnknownClient("k".into()),
        );
        // Forged: signed by another RSA key.
        check(
            token(
                Algorithm::RS256,
                RSA_OTHER_PRIVATE,
                serde_json::json!({"sub": "rsa", "exp": now() + 60}),
            ),
            AuthError::BadSignature,
        );
        // An ES256 token for an RS256 client.
        check(
            token(
                Algorithm::ES256,
                EC_PRIVATE,
                serde_json::json!({"sub": "rsa", "exp": now() + 60}),
            ),
            AuthError::WrongAlgorithm { got: "ES256".into(), expected: JwtAlg::Rs256 },
        );
        // HS256 with the public key as the HMAC secret.
        check(
            token(
                Algorithm::HS256,
                RSA_PUBLIC,
                serde_json::json!({"sub": "rsa", "exp": now() + 60}),
            ),
            AuthError::WrongAlgorithm { got: "HS256".into(), expected: JwtAlg::Rs256 },
        );
        // alg none, unsigned.
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let none = format!(
            "{}.{}.",
            b64(serde_json::json!({"alg": "none", "typ": "JWT"})),
            b64(serde_json::json!({"sub": "rsa", "exp": now() + 60}))
        );
        let refused = authenticate(&bearer(&none), &clients).unwrap_err();
        assert!(matches!(refused, AuthError::BadToken(_)), "{refused:?}");
        // Tampered claims keep the signature of others.
        let good = rs(serde_json::json!({"sub": "rsa", "exp": now() + 60}));
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(serde_json::json!({"sub": "rsa", "exp": now() + 6000})),
            parts[2]
        );
        check(tampered, AuthError::BadSignature);
        assert!(matches!(authenticate(&bearer("a.b.c"), &clients), Err(AuthError::BadToken(_))));
    }

    #[test]
    fn keys_must_fit_their_algorithm() {
        assert!(JwtKey::new(JwtAlg::Rs256, RSA_PUBLIC).is_ok());
        assert!(JwtKey::new(JwtAlg::Es256, EC_PUBLIC).is_ok());
        assert!(JwtKey::new(JwtAlg::Rs256, EC_PUBLIC).is_err());
        assert!(JwtKey::new(JwtAlg::Es256, RSA_PUBLIC).is_err());
        let err = JwtKey::new(JwtAlg::Es256, P384_PUBLIC).unwrap_err();
        assert!(err.contains("P-256"), "{err}");
        let err = JwtKey::new(JwtAlg::Rs256, RSA_PRIVATE).unwrap_err();
        assert!(err.contains("private key"), "{err}");
        assert!(JwtKey::new(JwtAlg::Rs256, "hello").is_err());
        assert!(
            JwtKey::new(
                JwtAlg::Rs256,
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            )
            .is_err()
        );
    }
}
