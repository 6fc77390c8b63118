//! Signing policy per key: which clients may use a key, for which targets and functions it
//! signs, and value caps.

use serde::Deserialize;

/// `[signing]` section of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningFile {}
