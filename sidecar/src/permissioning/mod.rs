//! Consortium permissioning: the allowlists and validator set governed by the contracts under
//! `permissioning/`, followed block by block and served to the local Besu node.

pub mod abi;
pub mod besu_sync;
pub mod decision;
pub mod enode;
pub mod follower;
pub mod policy;
pub mod source;
pub mod state;
