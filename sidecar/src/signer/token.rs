//! A logged-in PKCS#11 token holding secp256k1 keys.
//!
//! Every method here blocks on the module; async callers go through [`super::Keyring`] or
//! [`super::HsmSigner`], which move the calls to tokio's blocking pool.
//!
//! Sessions: one read-write session lives as long as the [`Token`]; it carries the login (a
//! PKCS#11 login belongs to the application and ends when its last session on the token
//! closes) and serves listing and key generation. Signatures run on read-only sessions from a
//! small pool, so signatures with different keys, or concurrent ones with the same key, do not
//! queue behind each other.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use alloy::primitives::{Address, B256, Signature, hex};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

use super::ecdsa::{SECP256K1_EC_PARAMS, address_of, decode_ec_point, ethereum_signature};
use super::module::{context, find_free_slot, find_token};
use super::{PinSource, SignerError};

/// Longest token label PKCS#11 can store (`CK_TOKEN_INFO.label` is 32 bytes, blank padded).
const TOKEN_LABEL_MAX_BYTES: usize = 32;

/// Longest key label accepted. PKCS#11 sets no limit; 64 bytes keeps labels readable in
/// `keys list` and in logs.
const KEY_LABEL_MAX_BYTES: usize = 64;

/// Length of the random `CKA_ID` shared by the two halves of a generated key pair.
const KEY_ID_LEN: usize = 16;

/// Idle signing sessions kept for reuse; more are opened under load and closed afterwards.
/// Eight covers the concurrency one sidecar sees without holding many sessions on an HSM
/// that limits them.
const IDLE_SESSIONS_MAX: usize = 8;

/// Where the token is and how to log in to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenConfig {
    /// Path of the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Label of the token inside the module.
    pub token_label: String,
    /// Where the user PIN comes from.
    pub pin: PinSource,
}

/// A secp256k1 key pair in the token, as the rest of the sidecar sees it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key's `CKA_LABEL`.
    pub label: String,
    /// The Ethereum address derived from the public key.
    pub address: Address,
    /// The uncompressed SEC1 public key (`0x04 || x || y`).
    #[serde(serialize_with = "serialize_hex")]
    pub public_key: [u8; 65],
}

impl fmt::Debug for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyInfo")
            .field("label", &self.label)
            .field("address", &self.address)
            .field("public_key", &hex::encode_prefixed(self.public_key))
            .finish()
    }
}

fn serialize_hex<S: Serializer>(bytes: &[u8; 65], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode_prefixed(bytes))
}

/// Protection attributes of a private key as the token reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KeyProtection {
    /// `CKA_TOKEN`: the key persists in the token.
    pub token: bool,
    /// `CKA_PRIVATE`: the key is usable only after login.
    pub private: bool,
    /// `CKA_SENSITIVE`: the key value cannot be read in plain text.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`: the key can be wrapped out of the token.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`: the key has been sensitive since it was created.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`: the key has never been extractable.
    pub never_extractable: bool,
}

/// A logged-in token. Cheap to clone; all clones share sessions and login.
#[derive(Clone)]
pub struct Token {
    inner: Arc<Inner>,
}

struct Inner {
    module: PathBuf,
    label: String,
    slot: Slot,
    ctx: Pkcs11,
    /// Read-write session that holds the login for the token's lifetime.
    admin: Mutex<Session>,
    /// Idle read-only sessions for signing.
    idle: Mutex<Vec<Session>>,
    /// Private-key handles by key label.
    handles: Mutex<HashMap<String, ObjectHandle>>,
    /// Set once a call reports that the token's sessions or login are gone.
    lost: AtomicBool,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.inner.module)
            .field("label", &self.inner.label)
            .field("slot", &self.inner.slot.id())
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the module, finds the token by label and logs in as user with the PIN read from
    /// `cfg.pin`. Blocking.
    pub fn open(cfg: &TokenConfig) -> Result<Self, SignerError> {
        let pin = cfg.pin.read()?;
        Self::open_with_pin(cfg, &pin)
    }

    /// Like [`Token::open`], with the PIN already read. Blocking.
    ///
    /// A token the application is already logged in to (through another open [`Token`]) is
    /// accepted without checking the PIN again: PKCS#11 reports `CKR_USER_ALREADY_LOGGED_IN`.
    pub fn open_with_pin(cfg: &TokenConfig, pin: &SecretString) -> Result<Self, SignerError> {
        let label = cfg.token_label.as_str();
        let ctx = context(&cfg.module)?;
        let slot =
            find_token(&ctx, label)?.ok_or_else(|| SignerError::TokenNotFound(label.into()))?;

        let admin = ctx.open_rw_session(slot).map_err(SignerError::pkcs11("open session"))?;
        match admin.login(UserType::User, Some(pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(login_error(label, e)),
        }

        tracing::info!(
            target: "ecrop::signer",
            token = label,
            slot = slot.id(),
            module = %cfg.module.display(),
            "token opened"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                module: cfg.module.clone(),
                label: label.to_owned(),
                slot,
                ctx,
                admin: Mutex::new(admin),
                idle: Mutex::new(Vec::new()),
                handles: Mutex::new(HashMap::new()),
                lost: AtomicBool::new(false),
            }),
        })
    }

    /// Initialises a new token labelled `label` in a free slot of `module` and sets its user
    /// PIN. Blocking.
    ///
    /// Fails with [`SignerError::TokenExists`] if a token already carries the label, and with
    /// [`SignerError::NoFreeSlot`] if the module offers no uninitialised token.
    pub fn initialize(
        module: &Path,
        label: &str,
        so_pin: &SecretString,
        user_pin: &SecretString,
    ) -> Result<(), SignerError> {
        validate_token_label(label)?;
        let ctx = context(module)?;

        // Two initialisations racing in this process could pick the same free slot.
        static INITIALIZING: Mutex<()> = Mutex::new(());
        let _serialised = INITIALIZING.lock().unwrap_or_else(PoisonError::into_inner);

        if find_token(&ctx, label)?.is_some() {
            return Err(SignerError::TokenExists(label.into()));
        }
        let free = find_free_slot(&ctx)?.ok_or_else(|| SignerError::NoFreeSlot(module.into()))?;
        ctx.init_token(free, so_pin, label).map_err(SignerError::pkcs11("initialise token"))?;

        // SoftHSM gives the initialised token a new slot id: look it up again by label.
        let slot =
            find_token(&ctx, label)?.ok_or_else(|| SignerError::TokenNotFound(label.into()))?;
        let session = ctx.open_rw_session(slot).map_err(SignerError::pkcs11("open session"))?;
        session.login(UserType::So, Some(so_pin)).map_err(|e| login_error(label, e))?;
        session.init_pin(user_pin).map_err(SignerError::pkcs11("set user pin"))?;
        session.logout().map_err(SignerError::pkcs11("log out"))?;

        tracing::info!(
            target: "ecrop::signer",
            token = label,
            slot = slot.id(),
            module = %module.display(),
            "token initialised"
        );
        Ok(())
    }

    /// Whether `module` has an initialised token labelled `label`. Blocking.
    pub fn exists(module: &Path, label: &str) -> Result<bool, SignerError> {
        let ctx = context(module)?;
        Ok(find_token(&ctx, label)?.is_some())
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The module the token was opened from.
    pub fn module(&self) -> &Path {
        &self.inner.module
    }

    /// Whether a PKCS#11 call reported that this token's sessions or login are gone; a lost
    /// token has to be opened again.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::Relaxed)
    }

    /// Generates a secp256k1 key pair inside the token. Blocking.
    ///
    /// The private key is a token object, private, sensitive, not extractable and usable
    /// only for signing. Fails with [`SignerError::KeyExists`] if any object carries `label`.
    pub fn generate_key(&self, label: &str) -> Result<KeyInfo, SignerError> {
        self.generate_key_pair(label, false)
    }

    /// Generates a node key: like [`Token::generate_key`], and the private key may also derive
    /// (ECDH, for Besu's P2P handshake through [`Token::ecdh`]). Blocking.
    pub fn generate_node_key(&self, label: &str) -> Result<KeyInfo, SignerError> {
        self.generate_key_pair(label, true)
    }

    fn generate_key_pair(&self, label: &str, derive: bool) -> Result<KeyInfo, SignerError> {
        validate_key_label(label)?;
        let admin = self.admin();

        // The check and the generation share the admin session's lock, so two generations
        // with one label in this process cannot both pass the check.
        let existing = admin
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(self.pkcs11("find objects"))?;
        if !existing.is_empty() {
            return Err(SignerError::KeyExists(label.into()));
        }

        let id = rand::random::<[u8; KEY_ID_LEN]>().to_vec();
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(SECP256K1_EC_PARAMS.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Derive(derive),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id),
        ];
        let (public, private) = admin
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public_template, &private_template)
            .map_err(self.pkcs11("generate key pair"))?;

        let info = self.read_public_key(&admin, public)?.ok_or_else(|| {
            SignerError::InvalidPublicKey("generated public key has no label".into())
        })?;
        drop(admin);
        self.handles().insert(label.to_owned(), private);

        tracing::info!(
            target: "ecrop::signer",
            token = %self.inner.label,
            key = label,
            address = %info.address,
            "key generated"
        );
        Ok(info)
    }

    /// All secp256k1 key pairs in the token, sorted by label. Blocking.
    ///
    /// A public key counts only if a private key with the same label exists. Labels carried
    /// by more than one public or private key are ambiguous and skipped with a warning.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, SignerError> {
        let admin = self.admin();
        let publics = admin
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(SECP256K1_EC_PARAMS.to_vec()),
            ])
            .map_err(self.pkcs11("find public keys"))?;
        let privates = admin
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(SECP256K1_EC_PARAMS.to_vec()),
            ])
            .map_err(self.pkcs11("find private keys"))?;

        let mut private_labels: HashMap<String, usize> = HashMap::new();
        for handle in privates {
            if let Some(label) = self.read_label(&admin, handle)? {
                *private_labels.entry(label).or_default() += 1;
            }
        }

        let mut keys = Vec::with_capacity(publics.len());
        for handle in publics {
            match self.read_public_key(&admin, handle) {
                Ok(Some(info)) if private_labels.get(&info.label) == Some(&1) => keys.push(info),
                Ok(Some(info)) => tracing::debug!(
                    target: "ecrop::signer",
                    token = %self.inner.label,
                    key = %info.label,
                    private_keys = private_labels.get(&info.label).copied().unwrap_or(0),
                    "public key skipped: not exactly one private key with its label"
                ),
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    target: "ecrop::signer",
                    token = %self.inner.label,
                    %error,
                    "public key skipped"
                ),
            }
        }
        drop(admin);

        keys.sort_by(|a, b| a.label.cmp(&b.label));
        let mut unique = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let dup_before = i > 0 && keys[i - 1].label == key.label;
            let dup_after = keys.get(i + 1).is_some_and(|next| next.label == key.label);
            if dup_before || dup_after {
                tracing::warn!(
                    target: "ecrop::signer",
                    token = %self.inner.label,
                    key = %key.label,
                    address = %key.address,
                    "key skipped: its label is carried by more than one public key"
                );
            } else {
                unique.push(key.clone());
            }
        }
        Ok(unique)
    }

    /// Reads the protection attributes of `key`'s private half. Blocking.
    pub fn key_protection(&self, key: &KeyInfo) -> Result<KeyProtection, SignerError> {
        let admin = self.admin();
        let handle = find_private_key(&admin, &key.label).map_err(|e| self.note(e))?;
        let attributes = admin
            .get_attributes(
                handle,
                &[
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                ],
            )
            .map_err(self.pkcs11("read key attributes"))?;

        let mut protection = KeyProtection {
            token: false,
            private: false,
            sensitive: false,
            extractable: true,
            always_sensitive: false,
            never_extractable: false,
        };
        for attribute in attributes {
            match attribute {
                Attribute::Token(v) => protection.token = v,
                Attribute::Private(v) => protection.private = v,
                Attribute::Sensitive(v) => protection.sensitive = v,
                Attribute::Extractable(v) => protection.extractable = v,
                Attribute::AlwaysSensitive(v) => protection.always_sensitive = v,
                Attribute::NeverExtractable(v) => protection.never_extractable = v,
                _ => {}
            }
        }
        Ok(protection)
    }

    /// Signs a 32-byte prehash with `key` inside the token (`CKM_ECDSA`). Blocking.
    ///
    /// The token's `r || s` is normalised to low `s` (EIP-2) and the y parity is found by
    /// recovering the public key and comparing it with `key.public_key`; a signature that
    /// recovers to anything else is an error, never returned.
    pub fn sign_prehash(&self, key: &KeyInfo, hash: &B256) -> Result<Signature, SignerError> {
        let session = self.take_session()?;
        let raw = match self.sign_raw(&session, key, hash) {
            Err(e) if is_stale_handle(&e) => {
                // The cached handle outlived its object (key deleted and recreated): look the
                // key up again once.
                self.handles().remove(&key.label);
                self.sign_raw(&session, key, hash)
            }
            other => other,
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                // A dead session is dropped rather than put back into the pool.
                if !e.is_token_lost() {
                    self.return_session(session);
                }
                return Err(self.note(e));
            }
        };
        self.return_session(session);

        let (signature, flipped) = ethereum_signature(&raw, hash, &key.public_key)?;

        tracing::debug!(
            target: "ecrop::signer",
            token = %self.inner.label,
            key = %key.label,
            address = %key.address,
            %hash,
            s_flipped = flipped,
            y_parity = signature.v(),
            "hash signed"
        );
        Ok(signature)
    }

    /// ECDH agreement of `key` with `peer` (uncompressed SEC1 public key) inside the token
    /// (`CKM_ECDH1_DERIVE`, no KDF): returns the shared point's x coordinate, as Besu's
    /// security module expects. The key must have been made by [`Token::generate_node_key`].
    /// The derived secret is a session object, read once and destroyed. Blocking.
    pub fn ecdh(&self, key: &KeyInfo, peer: &[u8; 65]) -> Result<B256, SignerError> {
        use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};

        // A point not on the curve is refused here, before the token sees it.
        k256::PublicKey::from_sec1_bytes(peer).map_err(|_| {
            SignerError::InvalidPublicKey("peer key is not a secp256k1 point".into())
        })?;
        let session = self.take_session()?;
        let result = (|| {
            let handle = find_private_key(&session, &key.label)?;
            let mechanism = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer));
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            let secret = session
                .derive_key(&mechanism, handle, &template)
                .map_err(SignerError::pkcs11("derive"))?;
            let value = session
                .get_attributes(secret, &[AttributeType::Value])
                .map_err(SignerError::pkcs11("read derived secret"));
            let _ = session.destroy_object(secret);
            match value?.into_iter().next() {
                Some(Attribute::Value(bytes)) if bytes.len() == 32 => Ok(B256::from_slice(&bytes)),
                _ => Err(SignerError::InvalidPublicKey("derived secret is not 32 bytes".into())),
            }
        })();
        self.return_session(session);
        let secret = result.map_err(|e| self.note(e))?;
        tracing::debug!(target: "ecrop::signer", token = %self.inner.label, key = %key.label, "ecdh agreement computed");
        Ok(secret)
    }

    /// Runs `C_Sign` with the key's cached (or freshly found) private-key handle.
    fn sign_raw(
        &self,
        session: &Session,
        key: &KeyInfo,
        hash: &B256,
    ) -> Result<Vec<u8>, SignerError> {
        let cached = self.handles().get(&key.label).copied();
        let handle = match cached {
            Some(handle) => handle,
            None => {
                let handle = find_private_key(session, &key.label)?;
                self.handles().insert(key.label.clone(), handle);
                handle
            }
        };
        session
            .sign(&Mechanism::Ecdsa, handle, hash.as_slice())
            .map_err(SignerError::pkcs11("sign"))
    }

    /// Reads label and public point of a public-key object; `None` if it has no label.
    fn read_public_key(
        &self,
        session: &Session,
        handle: ObjectHandle,
    ) -> Result<Option<KeyInfo>, SignerError> {
        let attributes = session
            .get_attributes(handle, &[AttributeType::Label, AttributeType::EcPoint])
            .map_err(self.pkcs11("read public key"))?;
        let mut label = None;
        let mut point = None;
        for attribute in attributes {
            match attribute {
                Attribute::Label(bytes) if !bytes.is_empty() => {
                    label = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                Attribute::EcPoint(bytes) => point = Some(bytes),
                _ => {}
            }
        }
        let Some(label) = label else { return Ok(None) };
        let point = point.ok_or_else(|| {
            SignerError::InvalidPublicKey(format!("public key ({label}) has no ec point"))
        })?;
        let public_key = decode_ec_point(&point)?;
        Ok(Some(KeyInfo { label, address: address_of(&public_key), public_key }))
    }

    fn read_label(
        &self,
        session: &Session,
        handle: ObjectHandle,
    ) -> Result<Option<String>, SignerError> {
        let attributes = session
            .get_attributes(handle, &[AttributeType::Label])
            .map_err(self.pkcs11("read label"))?;
        Ok(attributes.into_iter().find_map(|attribute| match attribute {
            Attribute::Label(bytes) if !bytes.is_empty() => {
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        }))
    }

    fn admin(&self) -> MutexGuard<'_, Session> {
        self.inner.admin.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<String, ObjectHandle>> {
        self.inner.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_session(&self) -> Result<Session, SignerError> {
        let idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(session) => Ok(session),
            None => self.open_session(),
        }
    }

    fn open_session(&self) -> Result<Session, SignerError> {
        self.inner
            .ctx
            .open_ro_session(self.inner.slot)
            .map_err(SignerError::pkcs11("open session"))
            .map_err(|e| self.note(e))
    }

    fn return_session(&self, session: Session) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_SESSIONS_MAX {
            idle.push(session);
        }
    }

    /// Wraps a PKCS#11 error and remembers whether it means the token is lost.
    fn pkcs11(&self, op: &'static str) -> impl FnOnce(CkError) -> SignerError + '_ {
        move |source| self.note(SignerError::Pkcs11 { op, source })
    }

    /// Marks the token lost if `error` says so; returns the error unchanged.
    fn note(&self, error: SignerError) -> SignerError {
        if error.is_token_lost() && !self.inner.lost.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "ecrop::signer",
                token = %self.inner.label,
                %error,
                "token lost; it will be opened again on next use"
            );
        }
        error
    }
}

/// Finds the one secp256k1 private key labelled `label`.
fn find_private_key(session: &Session, label: &str) -> Result<ObjectHandle, SignerError> {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(SignerError::pkcs11("find private key"))?;
    match found.as_slice() {
        [handle] => Ok(*handle),
        _ => Err(SignerError::KeyNotFound(label.into())),
    }
}

/// Whether a signing error means the cached key handle no longer names an object.
fn is_stale_handle(error: &SignerError) -> bool {
    matches!(error.rv(), Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid))
}

/// Maps a failed `C_Login` to a clear error; the PIN itself never appears.
fn login_error(label: &str, error: CkError) -> SignerError {
    match error {
        CkError::Pkcs11(RvError::PinIncorrect, _) => SignerError::PinIncorrect(label.into()),
        CkError::Pkcs11(RvError::PinLocked, _) => SignerError::PinLocked(label.into()),
        CkError::Pkcs11(RvError::UserPinNotInitialized, _) => {
            SignerError::UserPinNotInitialized(label.into())
        }
        other => SignerError::Pkcs11 { op: "log in", source: other },
    }
}

fn validate_token_label(label: &str) -> Result<(), SignerError> {
    let invalid = |reason| Err(SignerError::InvalidLabel { label: label.into(), reason });
    if label.is_empty() {
        return invalid("empty");
    }
    if label.len() > TOKEN_LABEL_MAX_BYTES {
        return invalid("longer than 32 bytes");
    }
    if label.ends_with(' ') {
        // Token labels are blank padded; a trailing blank would not survive the round trip.
        return invalid("ends with a blank");
    }
    if label.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    Ok(())
}

fn validate_key_label(label: &str) -> Result<(), SignerError> {
    let invalid = |reason| Err(SignerError::InvalidLabel { label: label.into(), reason });
    if label.is_empty() {
        return invalid("empty");
    }
    if label.len() > KEY_LABEL_MAX_BYTES {
        return invalid("longer than 64 bytes");
    }
    if label.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_labels_are_checked() {
        assert!(validate_token_label("dev").is_ok());
        assert!(validate_token_label(&"a".repeat(32)).is_ok());
        let err = validate_token_label(&"a".repeat(33)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("invalid label ({}): longer than 32 bytes", "a".repeat(33))
        );
        assert!(validate_token_label("").is_err());
        assert!(validate_token_label("dev ").is_err());
        assert!(validate_token_label("d\nv").is_err());
    }

    #[test]
    fn key_labels_are_checked() {
        assert!(validate_key_label("validator-1").is_ok());
        assert!(validate_key_label("").is_err());
        assert!(validate_key_label(&"k".repeat(65)).is_err());
        assert!(validate_key_label("a\tb").is_err());
    }
}
