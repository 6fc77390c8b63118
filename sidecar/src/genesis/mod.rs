//! Network generation behind `ecrop genesis`: from a network definition (TOML) to a QBFT
//! genesis, each validator's Besu configuration, static nodes and sidecar configuration.
//!
//! Contract: every validator key is generated inside its own PKCS#11 token and never leaves
//! it; only public keys, addresses and enode URLs are written out. A rerun on the same output
//! directory reuses tokens and keys by label, so the generated files describe the same network.
//! PINs are written to owner-only files next to each node's configuration and never printed
//! or logged.
//!
//! The rendering steps ([`render`]) are pure functions of the definition and the validators'
//! public keys, so they are tested without a token.

mod enode;
mod error;
mod extra_data;
mod hsm;
mod network;
mod predeploy;
mod render;

pub use enode::{enode_id, enode_url};
pub use error::GenesisError;
pub use extra_data::QbftExtraData;
pub use hsm::{HsmLayout, NODE_KEY_LABEL, ensure_validator_key};
pub use network::{
    ContractsSection, MemberDef, NetworkDefinition, NetworkSection, NodesSection, ValidatorDef,
};
pub use predeploy::{Creation, Predeployed, execute as execute_constructors, platform_creations};
pub use render::{BFT_MIX_HASH, DEFAULT_GAS_LIMIT, GeneratedFile, ValidatorKey, node_dir, render};
