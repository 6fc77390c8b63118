//! PKCS#11 signing: secp256k1 keys that never leave the token.
//!
//! Contract:
//! - keys are generated inside the token (private half sensitive, not extractable, sign
//!   only) and never exported; nothing here persists anything outside the token;
//! - the PIN comes from a file or an environment variable ([`PinSource`]), is read when the
//!   token is opened and is never logged or put into an error; a rejected PIN is not tried
//!   again until it changes ([`Keyring`]);
//! - every signature is computed by the token (`CKM_ECDSA` over a 32-byte hash), normalised
//!   to low `s` (EIP-2) and given the y parity under which it recovers the key's own public
//!   key; a signature that does not recover is an error, never returned;
//! - fails closed: without a usable token there is no signature, only an error naming why;
//! - every signature is logged at debug (`ecrop::signer`) with key label, address and hash.
//!
//! [`Token`] is the blocking PKCS#11 layer; [`HsmSigner`] puts one key behind alloy's
//! `Signer` / `TxSigner`; [`Keyring`] is the server's lazily opened, failure-tolerant handle.

mod ecdsa;
mod error;
mod hsm_signer;
mod keyring;
mod module;
mod pin;
mod token;
#[cfg(test)]
mod vectors;

pub use ecdsa::{SECP256K1_EC_PARAMS, address_of, normalize_s, recovery_parity};
pub use error::SignerError;
pub use hsm_signer::HsmSigner;
pub use keyring::{Keyring, KeyringStatus};
pub use pin::PinSource;
pub use token::{KeyInfo, KeyProtection, Token, TokenConfig};
