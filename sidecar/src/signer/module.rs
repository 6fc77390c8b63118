//! The process-wide registry of loaded PKCS#11 modules.
//!
//! `C_Initialize` may run once per module and process, so every token opened from the same
//! module shares one context. Contexts are never finalised: the process ends first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;

use super::SignerError;

/// Loaded and initialised modules, by canonical path.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// Returns the initialised context of the module at `path`, loading it on first use.
///
/// The module reads its own configuration (for SoftHSM2: `SOFTHSM2_CONF`) at this moment, so
/// that configuration is fixed for the rest of the process.
pub(crate) fn context(path: &Path) -> Result<Pkcs11, SignerError> {
    let not_loadable =
        |reason: String| SignerError::ModuleNotLoadable { path: path.to_path_buf(), reason };

    // Canonical paths keep a symlink and its target from initialising the module twice.
    let canonical = path.canonicalize().map_err(|e| not_loadable(e.to_string()))?;

    let modules = MODULES.get_or_init(Default::default);
    let mut modules = modules.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(ctx) = modules.get(&canonical) {
        return Ok(ctx.clone());
    }

    let ctx = Pkcs11::new(&canonical).map_err(|e| not_loadable(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone else in this process initialised it already; the module is usable.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(not_loadable(e.to_string())),
    }
    tracing::info!(target: "ecrop::signer", module = %canonical.display(), "pkcs#11 module loaded");

    modules.insert(canonical, ctx.clone());
    Ok(ctx)
}

/// Finds the slot whose initialised token carries `label`.
pub(crate) fn find_token(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, SignerError> {
    let slots =
        ctx.get_slots_with_initialized_token().map_err(SignerError::pkcs11("list slots"))?;
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(SignerError::pkcs11("read token info"))?;
        if info.label() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Finds a slot holding a token that has not been initialised yet.
pub(crate) fn find_free_slot(ctx: &Pkcs11) -> Result<Option<Slot>, SignerError> {
    let slots = ctx.get_slots_with_token().map_err(SignerError::pkcs11("list slots"))?;
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(SignerError::pkcs11("read token info"))?;
        if !info.token_initialized() {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}
