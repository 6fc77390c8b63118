//! Talking to the platform's contracts as an operator: load the compiled contracts (forge
//! artifacts), deploy them, call and send through the sidecar's endpoint (so every
//! transaction is signed in the HSM by the sidecar), and explain reverts by the contracts'
//! own custom errors.
//!
//! Nothing here holds a key: transactions go to the sidecar as unsigned
//! `eth_sendTransaction` calls from an account the sidecar's token holds.

mod artifacts;
mod client;
mod deployment;
pub mod events;
pub mod files;
mod platform;
pub mod register;
mod revert;

pub use artifacts::{Artifact, Artifacts};
pub use client::{Client, LOG_PAGE_BLOCKS, RECEIPT_TIMEOUT, Sent, find_function, parse_args};
pub use deployment::Deployment;
pub use platform::{
    DeployReport, Matrix, MatrixFunction, MatrixRole, PLATFORM_CONTRACTS, deploy, selector,
};
pub use revert::{ErrorBook, enum_variant, format_value, tuple_fields};

/// Errors of on-chain operations.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A compiled contract is missing from the artifacts directory.
    #[error(
        "contract artifact not found ({name} in {dir}); build the contracts with `forge build` in contracts/"
    )]
    ArtifactMissing {
        /// Contract name.
        name: String,
        /// Directory searched.
        dir: String,
    },
    /// An artifact could not be read or parsed.
    #[error("contract artifact invalid ({path}): {reason}")]
    ArtifactInvalid {
        /// File path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The contract has no function of that name and arity.
    #[error("no function {function} with {arity} arguments in {contract}")]
    NoSuchFunction {
        /// Contract name.
        contract: String,
        /// Function name.
        function: String,
        /// Number of arguments given.
        arity: usize,
    },
    /// An argument does not fit the function's parameter type.
    #[error("argument {index} of {function} ({value}) is not a valid {ty}: {reason}")]
    BadArgument {
        /// Function signature.
        function: String,
        /// Position, from 1.
        index: usize,
        /// The argument as given.
        value: String,
        /// Solidity type expected.
        ty: String,
        /// Parser message.
        reason: String,
    },
    /// The contract refused: decoded custom error, or the node's message.
    #[error("{contract}.{function} reverted: {reason}")]
    Reverted {
        /// Contract name.
        contract: String,
        /// Function called.
        function: String,
        /// Decoded reason, e.g. `RegisterHolderFrozen(holder: 0x…)`.
        reason: String,
    },
    /// The endpoint or node failed.
    #[error("rpc ({url}): {reason}")]
    Rpc {
        /// Endpoint URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The deployment file could not be read or written.
    #[error("deployment file ({path}): {reason}")]
    DeploymentFile {
        /// File path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A name the deployment file does not know.
    #[error("contract not deployed ({0}); run `ecrop contracts deploy` first")]
    NotDeployed(String),
    /// Return data did not decode.
    #[error("cannot decode the result of {function}: {reason}")]
    Decode {
        /// Function signature.
        function: String,
        /// Decoder message.
        reason: String,
    },
}
