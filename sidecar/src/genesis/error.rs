//! Errors of network generation.

use std::path::PathBuf;

/// Errors reading a network definition or generating a network from it.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// A file or directory could not be read or written.
    #[error("file ({path}): {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The network definition is not valid TOML for its schema.
    #[error("network definition invalid ({path}): {message}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Parser message, with line and column.
        message: String,
    },
    /// The network definition parses but breaks a rule.
    #[error("network definition invalid: {0}")]
    Invalid(String),
    /// The token or its keys could not be used.
    #[error("validator token ({validator}): {source}")]
    Token {
        /// Validator whose token failed.
        validator: String,
        /// Cause.
        source: crate::signer::SignerError,
    },
    /// QBFT extra data could not be decoded.
    #[error("qbft extra data invalid: {0}")]
    ExtraData(String),
    /// A contract could not be pre-deployed.
    #[error("pre-deployment of {contract} failed: {reason}")]
    Predeploy {
        /// Contract name.
        contract: String,
        /// What failed.
        reason: String,
    },
    /// A public key is not an uncompressed secp256k1 point.
    #[error("public key invalid ({0})")]
    PublicKey(String),
    /// A generated document could not be serialised.
    #[error("could not serialise ({what}): {message}")]
    Serialise {
        /// The document.
        what: String,
        /// Serialiser message.
        message: String,
    },
}

impl GenesisError {
    /// An adapter for `map_err` on I/O results about `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }
}
