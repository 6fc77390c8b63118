//! The ecrop sidecar: a JSON-RPC endpoint next to a Besu node that signs with keys held in
//! a PKCS#11 token, manages nonces and forwards everything else to the node.
//!
//! Rules that hold across the crate:
//! - secrets (PINs, key material) are never logged, never part of an error message and never
//!   taken from the command line;
//! - input from dApps, files and the chain is untrusted: bounded, parsed strictly, answered
//!   with an error rather than a panic;
//! - blocking PKCS#11 calls run on tokio's blocking pool, never on the async workers.

pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dev;
pub mod genesis;
pub mod keyservice;
pub mod logging;
pub mod nonce;
pub mod onchain;
pub mod ops;
pub mod permissioning;
pub mod rpc;
pub mod signer;
pub mod signing_policy;
pub mod store;
pub mod upstream;
pub mod wallet;
