//! Where the user PIN comes from.
//!
//! The PIN is read from a file or an environment variable each time the token is opened, so an
//! operator can fix a wrong PIN without restarting. It is never logged and never part of an
//! error message; only the path or variable name is.

use std::path::PathBuf;

use alloy::primitives::{B256, keccak256};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::SignerError;

/// The source of the token's user PIN. Never a command-line argument.
///
/// `Debug` shows only the path or variable name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinSource {
    /// A file holding the PIN; one trailing newline (`\n` or `\r\n`) is ignored.
    File(PathBuf),
    /// The name of an environment variable holding the PIN.
    Env(String),
}

impl PinSource {
    /// Reads the PIN, dropping one trailing `\n` or `\r\n`.
    ///
    /// Fails if the file is unreadable, the variable is unset or not UTF-8, or the PIN is empty.
    pub fn read(&self) -> Result<SecretString, SignerError> {
        let mut raw = match self {
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|source| SignerError::PinFileUnreadable { path: path.clone(), source })?,
            Self::Env(name) => std::env::var(name).map_err(|error| match error {
                std::env::VarError::NotPresent => SignerError::PinEnvMissing(name.clone()),
                std::env::VarError::NotUnicode(_) => SignerError::PinEnvNotUnicode(name.clone()),
            })?,
        };

        let pin = strip_one_newline(&raw);
        let result = if pin.is_empty() {
            Err(SignerError::PinEmpty(self.describe()))
        } else {
            // `to_owned` allocates exactly the PIN's length, so turning it into the secret's
            // boxed str does not reallocate and leave an unzeroed copy behind.
            Ok(SecretString::from(pin.to_owned()))
        };
        raw.zeroize();
        result
    }

    /// Names the source for messages: the path or the variable, never the content.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("file {}", path.display()),
            Self::Env(name) => format!("environment variable {name}"),
        }
    }
}

/// Removes one trailing `\r\n` or `\n`, nothing else: a PIN may legitimately end in spaces.
fn strip_one_newline(raw: &str) -> &str {
    raw.strip_suffix("\r\n").or_else(|| raw.strip_suffix('\n')).unwrap_or(raw)
}

/// A salted digest of a PIN, kept in memory to recognise a PIN the token already rejected
/// without keeping the PIN itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct PinFingerprint(B256);

impl PinFingerprint {
    /// Digests `salt || pin`. The salt is random per keyring, so the digest means nothing
    /// outside this process.
    pub(crate) fn new(salt: &[u8; 32], pin: &SecretString) -> Self {
        let mut buf = Vec::with_capacity(salt.len() + pin.expose_secret().len());
        buf.extend_from_slice(salt);
        buf.extend_from_slice(pin.expose_secret().as_bytes());
        let digest = keccak256(&buf);
        buf.zeroize();
        Self(digest)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_trailing_newline() {
        assert_eq!(strip_one_newline("1234\n"), "1234");
        assert_eq!(strip_one_newline("1234\r\n"), "1234");
        assert_eq!(strip_one_newline("1234\n\n"), "1234\n");
        assert_eq!(strip_one_newline("12 34 "), "12 34 ");
        assert_eq!(strip_one_newline("1234"), "1234");
    }

    #[test]
    fn reads_pin_file_and_rejects_empty_or_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");

        std::fs::write(&path, "s3cret\r\n").unwrap();
        let pin = PinSource::File(path.clone()).read().unwrap();
        assert_eq!(pin.expose_secret(), "s3cret");

        std::fs::write(&path, "\n").unwrap();
        let err = PinSource::File(path.clone()).read().unwrap_err();
        assert_eq!(err.to_string(), format!("pin is empty (file {})", path.display()));

        let missing = dir.path().join("absent");
        let err = PinSource::File(missing.clone()).read().unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("pin file not readable ({})", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn missing_env_variable_is_named_in_the_error() {
        let name = "ECROP_SIGNER_UNIT_TEST_PIN_THAT_IS_NEVER_SET";
        let err = PinSource::Env(name.into()).read().unwrap_err();
        assert_eq!(err.to_string(), format!("pin environment variable not set ({name})"));
    }

    #[test]
    fn debug_shows_no_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "topsecret").unwrap();
        let source = PinSource::File(path);
        let pin = source.read().unwrap();
        assert!(!format!("{source:?}").contains("topsecret"));
        assert!(!format!("{pin:?}").contains("topsecret"));
    }

    #[test]
    fn fingerprint_depends_on_pin_and_salt() {
        let a = SecretString::from("1234".to_owned());
        let b = SecretString::from("1235".to_owned());
        assert!(PinFingerprint::new(&[1; 32], &a) == PinFingerprint::new(&[1; 32], &a));
        assert!(PinFingerprint::new(&[1; 32], &a) != PinFingerprint::new(&[1; 32], &b));
        assert!(PinFingerprint::new(&[1; 32], &a) != PinFingerprint::new(&[2; 32], &a));
    }
}
