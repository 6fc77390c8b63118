//! Access to the dApp-facing endpoint: who is calling (authentication by API key or JWT),
//! what each client's role may call (the API permission matrix) and how much (limits).

use serde::Deserialize;

/// Who is calling the JSON-RPC endpoint, as authentication established it. The HTTP layer puts
/// it into the request's extensions; every later layer and method reads it from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Client id, as in the clients file; [`Caller::DEV_CLIENT`] for unauthenticated loopback
    /// access in dev mode.
    pub client: String,
    /// Role of the client in the API permission matrix.
    pub role: String,
}

impl Caller {
    /// Client id of unauthenticated loopback access in dev mode.
    pub const DEV_CLIENT: &'static str = "dev";
}

/// `[api]` section of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {}
