//! The signer's error type.

use std::path::PathBuf;

use alloy::primitives::Address;

/// Everything that can go wrong between reading a PIN and handing out a signature.
///
/// Messages are lowercase, carry the offending value in parentheses and never contain a PIN or
/// key material. The JSON-RPC layer maps them to error codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The PIN file could not be read.
    #[error("pin file not readable ({path}): {source}")]
    PinFileUnreadable {
        /// The configured PIN file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The environment variable that should hold the PIN is not set.
    #[error("pin environment variable not set ({0})")]
    PinEnvMissing(String),
    /// The environment variable that should hold the PIN is not valid UTF-8.
    #[error("pin environment variable not valid utf-8 ({0})")]
    PinEnvNotUnicode(String),
    /// The PIN source yielded an empty PIN.
    #[error("pin is empty ({0})")]
    PinEmpty(String),
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("pkcs#11 module not loadable ({path}): {reason}")]
    ModuleNotLoadable {
        /// The configured module path.
        path: PathBuf,
        /// Why loading failed.
        reason: String,
    },
    /// No initialised token carries the configured label.
    #[error("token not found ({0})")]
    TokenNotFound(String),
    /// A token with this label already exists.
    #[error("token already exists ({0})")]
    TokenExists(String),
    /// Every slot of the module holds an initialised token.
    #[error("no free slot for a new token ({0})")]
    NoFreeSlot(PathBuf),
    /// A token or key label is empty or longer than PKCS#11 allows.
    #[error("invalid label ({label}): {reason}")]
    InvalidLabel {
        /// The rejected label.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token rejected the user PIN.
    #[error("pin incorrect for token ({0})")]
    PinIncorrect(String),
    /// The PIN was rejected before and has not changed since; no login was attempted.
    #[error("pin incorrect for token ({0}); not retried until the pin changes")]
    PinNotRetried(String),
    /// The token locked the user PIN after too many failed logins.
    #[error("pin locked for token ({0})")]
    PinLocked(String),
    /// The user PIN of the token has not been set (the token is half-initialised).
    #[error("user pin not initialised for token ({0})")]
    UserPinNotInitialized(String),
    /// A key with this label already exists in the token.
    #[error("key already exists ({0})")]
    KeyExists(String),
    /// No secp256k1 private key with this label is in the token.
    #[error("key not found in token ({0})")]
    KeyNotFound(String),
    /// No key in the token has this address.
    #[error("unknown account ({0})")]
    UnknownAccount(Address),
    /// A public key read from the token is not a valid secp256k1 point.
    #[error("invalid public key ({0})")]
    InvalidPublicKey(String),
    /// The token returned a signature that is malformed or out of range.
    #[error("invalid signature from token ({0})")]
    InvalidSignature(String),
    /// Neither recovery id recovers the expected public key.
    #[error("signature does not recover to the key ({0})")]
    NotRecoverable(Address),
    /// A PKCS#11 call failed.
    #[error("pkcs#11 call failed ({op}): {}", describe(source))]
    Pkcs11 {
        /// What the signer was doing.
        op: &'static str,
        /// The module's answer.
        source: cryptoki::error::Error,
    },
    /// A blocking task on tokio's pool panicked or was cancelled.
    #[error("signer task failed ({0})")]
    Task(String),
}

impl SignerError {
    /// Wraps a PKCS#11 error, naming the operation that failed.
    pub(crate) fn pkcs11(op: &'static str) -> impl FnOnce(cryptoki::error::Error) -> Self {
        move |source| Self::Pkcs11 { op, source }
    }

    /// The PKCS#11 return value behind this error, if there is one.
    pub(crate) fn rv(&self) -> Option<cryptoki::error::RvError> {
        match self {
            Self::Pkcs11 { source: cryptoki::error::Error::Pkcs11(rv, _), .. } => Some(*rv),
            _ => None,
        }
    }

    /// Whether the error means the token's sessions or login are gone, so the token has to be
    /// opened again (device removed, sessions closed, login lost).
    pub fn is_token_lost(&self) -> bool {
        use cryptoki::error::RvError;

        matches!(
            self.rv(),
            Some(
                RvError::DeviceRemoved
                    | RvError::DeviceError
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::SessionClosed
                    | RvError::SessionHandleInvalid
                    | RvError::UserNotLoggedIn
                    | RvError::CryptokiNotInitialized
            )
        )
    }
}

/// A short rendering of a cryptoki error: the return value's name instead of the spec's
/// paragraph-long description.
fn describe(error: &cryptoki::error::Error) -> String {
    match error {
        cryptoki::error::Error::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}
