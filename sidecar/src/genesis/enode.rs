//! Enode URLs of validators, derived from the public keys their tokens report.
//!
//! The node id of an enode URL is the 64-byte secp256k1 public key (`x || y`) in hex, which is
//! the uncompressed SEC1 encoding without its leading `0x04`.

use std::net::{IpAddr, SocketAddr};

use super::GenesisError;

/// Tag of an uncompressed SEC1 point.
const SEC1_UNCOMPRESSED: u8 = 0x04;

/// The enode node id (128 hex digits, no prefix) of an uncompressed SEC1 public key.
pub fn enode_id(public_key: &[u8; 65]) -> Result<String, GenesisError> {
    let [tag, point @ ..] = public_key;
    if *tag != SEC1_UNCOMPRESSED {
        return Err(GenesisError::PublicKey(format!("first byte {tag:#04x}, expected 0x04")));
    }
    // The token already checked the point; this guards keys that come from elsewhere.
    k256::PublicKey::from_sec1_bytes(public_key)
        .map_err(|_| GenesisError::PublicKey("not a point on secp256k1".into()))?;
    Ok(hex::encode(point))
}

/// `enode://<id>@<host>:<port>` for a node listening for P2P on `host:port`.
pub fn enode_url(public_key: &[u8; 65], host: IpAddr, port: u16) -> Result<String, GenesisError> {
    Ok(format!("enode://{}@{}", enode_id(public_key)?, SocketAddr::new(host, port)))
}
