//! Validator tokens: one SoftHSM2 configuration for the whole output directory, one token per
//! validator labelled with the validator's name, one node key inside each.
//!
//! Persists: `hsm/softhsm2.conf` and `hsm/tokens/` (the token store), and per validator
//! `nodes/<name>/hsm/user.pin` and `so.pin` with fresh random PINs (owner-only files). Existing
//! files, tokens and keys are kept, so a rerun finds the same keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::GenesisError;
use crate::signer::{KeyInfo, PinSource, Token, TokenConfig};

/// Label of the node key inside each validator's token.
pub const NODE_KEY_LABEL: &str = "node";

/// Bytes of randomness in a generated PIN (hex-encoded, so twice as many characters).
const PIN_BYTES: usize = 16;

/// The token store inside an output directory.
#[derive(Debug, Clone)]
pub struct HsmLayout {
    /// `OUT/hsm`.
    pub dir: PathBuf,
    /// SoftHSM2 configuration (what `SOFTHSM2_CONF` must name while keys are made).
    pub softhsm_conf: PathBuf,
    /// Token store directory named in the configuration.
    pub token_dir: PathBuf,
}

impl HsmLayout {
    /// Creates `OUT/hsm` (owner only), its token directory and the SoftHSM2 configuration
    /// where missing. `out` must exist.
    pub fn prepare(out: &Path) -> Result<Self, GenesisError> {
        let out = fs::canonicalize(out).map_err(GenesisError::io(out))?;
        let dir = out.join("hsm");
        let token_dir = dir.join("tokens");
        fs::create_dir_all(&token_dir).map_err(GenesisError::io(&token_dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(GenesisError::io(&dir))?;

        let softhsm_conf = dir.join("softhsm2.conf");
        if !softhsm_conf.exists() {
            let text = format!(
                "# SoftHSM2 configuration of the validator tokens made by `ecrop genesis`.\n\
                 directories.tokendir = {}\n\
                 objectstore.backend = file\n\
                 log.level = ERROR\n\
                 slots.removable = false\n",
                token_dir.display()
            );
            fs::write(&softhsm_conf, text).map_err(GenesisError::io(&softhsm_conf))?;
        }
        Ok(Self { dir, softhsm_conf, token_dir })
    }

    /// The directory inside the token store that holds the token labelled `label`, found by
    /// the blank-padded label SoftHSM2 stores in each token's `token.object`.
    pub fn token_subdir(&self, label: &str) -> Result<Option<PathBuf>, GenesisError> {
        let padded = format!("{label:<32}");
        let entries = fs::read_dir(&self.token_dir).map_err(GenesisError::io(&self.token_dir))?;
        for entry in entries {
            let entry = entry.map_err(GenesisError::io(&self.token_dir))?;
            let object = entry.path().join("token.object");
            let Ok(bytes) = fs::read(&object) else { continue };
            if bytes.windows(padded.len()).any(|w| w == padded.as_bytes()) {
                return Ok(Some(entry.path()));
            }
        }
        Ok(None)
    }
}

/// PIN files of one validator's token.
#[derive(Debug, Clone)]
pub(crate) struct PinFiles {
    /// User PIN file.
    pub(crate) user: PathBuf,
    /// Security officer PIN file.
    pub(crate) so: PathBuf,
}

impl PinFiles {
    /// Creates `node_dir/hsm` (owner only) and both PIN files where missing.
    pub(crate) fn prepare(node_dir: &Path) -> Result<Self, GenesisError> {
        let dir = node_dir.join("hsm");
        fs::create_dir_all(&dir).map_err(GenesisError::io(&dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(GenesisError::io(&dir))?;
        let files = Self { user: dir.join("user.pin"), so: dir.join("so.pin") };
        for pin in [&files.user, &files.so] {
            if !pin.exists() {
                let bytes: [u8; PIN_BYTES] = rand::random();
                write_secret_file(pin, &hex::encode(bytes)).map_err(GenesisError::io(pin))?;
            }
        }
        Ok(files)
    }
}

/// Writes `content` and a newline to a new file readable by the owner only.
fn write_secret_file(path: &Path, content: &str) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")
}

/// Makes sure validator `name` has its token (labelled `name`) and its node key, creating
/// what is missing; `progress` hears each step that changes something. Blocking.
///
/// `SOFTHSM2_CONF` must name the layout's configuration before the module is first loaded in
/// this process.
pub fn ensure_validator_key(
    module: &Path,
    node_dir: &Path,
    name: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<KeyInfo, GenesisError> {
    let token_err = |source| GenesisError::Token { validator: name.to_owned(), source };
    let pins = PinFiles::prepare(node_dir)?;

    if !Token::exists(module, name).map_err(token_err)? {
        progress(&format!("initialising token {name}"));
        let so = read_pin(&pins.so)?;
        let user = read_pin(&pins.user)?;
        Token::initialize(module, name, &so, &user).map_err(token_err)?;
    }
    let config = TokenConfig {
        module: module.to_owned(),
        token_label: name.to_owned(),
        pin: PinSource::File(pins.user.clone()),
    };
    let token = Token::open(&config).map_err(token_err)?;
    if let Some(key) =
        token.keys().map_err(token_err)?.into_iter().find(|k| k.label == NODE_KEY_LABEL)
    {
        progress(&format!("reusing key {NODE_KEY_LABEL} of token {name} ({})", key.address));
        return Ok(key);
    }
    progress(&format!("generating key {NODE_KEY_LABEL} in token {name}"));
    let key = token.generate_node_key(NODE_KEY_LABEL).map_err(token_err)?;
    progress(&format!("generated key {NODE_KEY_LABEL} of token {name} ({})", key.address));
    Ok(key)
}

fn read_pin(path: &Path) -> Result<SecretString, GenesisError> {
    PinSource::File(path.to_owned())
        .read()
        .map_err(|source| GenesisError::Token { validator: path.display().to_string(), source })
}
