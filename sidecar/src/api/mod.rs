//! Access to the dApp-facing endpoint: who is calling (authentication by API key or JWT),
//! what each client's role may call (the API permission matrix) and how much (limits).
//!
//! - [`auth`]: API keys and JWTs.
//! - [`clients`]: the clients file and its reloading.
//! - [`roles`]: roles, method patterns, signing accounts and limits in the configuration.
//! - [`limits`]: per-client rate and concurrency state.
//! - [`middleware`]: the RPC middleware checking every call against the matrix and limits.
//!
//! The HTTP layer ([`crate::rpc::http::AuthLayer`]) authenticates every HTTP request and
//! WebSocket upgrade and puts the [`Caller`] into the request's extensions.

pub mod auth;
pub mod clients;
pub mod limits;
pub mod middleware;
pub mod roles;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;

pub use clients::{ChangeKind, ClientChange, ClientChanges, ClientStore};
pub use roles::{GlobalLimits, Limits, LimitsFile, Role, RoleFile, Roles};

use self::{auth::AuthError, limits::ClientLimiter};

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
pub struct ApiFile {
    /// The clients file (JSON, managed with `ecrop api-clients`)
    /// [default: `.ecrop/api-clients.json`].
    pub clients_file: Option<PathBuf>,
    /// `[api.roles.NAME]`: the roles of the permission matrix; the built-in roles
    /// ([`roles::builtin_roles`]) when none is defined.
    pub roles: Option<BTreeMap<String, RoleFile>>,
}

impl ApiFile {
    /// The clients file: `flag` (flag or environment) over the configuration over the default.
    pub fn clients_path(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_owned)
            .or_else(|| self.clients_file.clone())
            .unwrap_or_else(|| PathBuf::from(clients::DEFAULT_CLIENTS_FILE))
    }
}

/// Errors setting up access control.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The roles of the configuration are invalid.
    #[error(transparent)]
    Roles(#[from] roles::RoleError),
    /// The clients file is invalid or unreadable.
    #[error(transparent)]
    Clients(#[from] clients::ClientsError),
}

/// Whether requests without credentials are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// `ecrop dev` on loopback: a request without credentials is served as
    /// `Caller { client: "dev", role: "dev" }` (every method, no rate limits); one with
    /// credentials is authenticated normally.
    DevLoopback,
    /// `ecrop serve`: every request must authenticate.
    Required,
}

/// A request refused at the HTTP level (before any method ran), for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The client, when authentication succeeded before the refusal.
    pub client: Option<String>,
    /// The `Host` header of the request.
    pub host: Option<String>,
    /// The `Origin` header of the request.
    pub origin: Option<String>,
    /// Why (never containing the credential).
    pub reason: String,
    /// JSON-RPC error code answered.
    pub code: i32,
    /// HTTP status answered.
    pub status: u16,
}

/// Callback told about every request refused at the HTTP level.
pub type RefusalHook = Arc<dyn Fn(&Refusal) + Send + Sync>;

/// Everything the endpoint needs to decide who may call what: handed to
/// [`crate::rpc::start`].
#[derive(Clone)]
pub struct Access {
    mode: AccessMode,
    roles: Arc<Roles>,
    clients: Arc<ClientStore>,
    limiters: Arc<limits::Limiters>,
    global: GlobalLimits,
    on_refusal: Option<RefusalHook>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("mode", &self.mode)
            .field("roles", &self.roles.names().collect::<Vec<_>>())
            .field("clients", &self.clients.path())
            .finish_non_exhaustive()
    }
}

/// The outcome of authenticating one HTTP request.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Who.
    pub caller: Caller,
    /// The client's limits and their state.
    pub limiter: Arc<ClientLimiter>,
    /// What the credential allows over time.
    pub session: Session,
}

/// What the credential of a request or connection allows over time, checked again on every
/// call ([`Access::still_valid`]): a WebSocket opened with a credential stops being served when
/// the client is revoked or its token expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The client's credential as the clients file held it at admission (a key's hash or a
    /// JWT public key, never a secret); none for dev loopback access without credentials.
    pub credential: Option<clients::Credential>,
    /// When the credential expires (unix seconds), for a JWT.
    pub expires_at: Option<u64>,
}

impl Access {
    /// Access control with these roles and clients. In [`AccessMode::DevLoopback`] the dev role
    /// is added to `roles`.
    pub fn new(mode: AccessMode, roles: Roles, clients: ClientStore, global: GlobalLimits) -> Self {
        let roles = match mode {
            AccessMode::DevLoopback => roles.with_dev(),
            AccessMode::Required => roles,
        };
        Self {
            mode,
            roles: Arc::new(roles),
            clients: Arc::new(clients),
            limiters: Arc::default(),
            global,
            on_refusal: None,
        }
    }

    /// Access control from the `[api]` section: its roles and the clients file at
    /// `clients_flag` (flag or environment) or as configured. A malformed clients file or
    /// invalid roles are errors; a missing clients file is an empty set of clients (logged).
    pub fn from_config(
        file: &ApiFile,
        clients_flag: Option<&Path>,
        mode: AccessMode,
        global: GlobalLimits,
        on_change: Option<ClientChanges>,
    ) -> Result<Self, ApiError> {
        let roles = Roles::from_config(file.roles.as_ref())?;
        let path = file.clients_path(clients_flag);
        let store = ClientStore::open(&path, on_change)?;
        let set = store.snapshot();
        for client in set.file.clients.iter().filter(|c| c.active()) {
            if roles.get(&client.role).is_none() {
                tracing::warn!(target: "ecrop::api", client = %client.id, role = %client.role, "client has a role the configuration does not define; its calls are refused");
            }
        }
        let active = set.file.clients.iter().filter(|c| c.active()).count();
        if active == 0 && mode == AccessMode::Required {
            tracing::warn!(target: "ecrop::api", path = %path.display(), "no active API clients; every request is refused until one is added with `ecrop api-clients add`");
        } else {
            tracing::info!(target: "ecrop::api", path = %path.display(), clients = active, "api clients loaded");
        }
        Ok(Self::new(mode, roles, store, global))
    }

    /// Calls `hook` for every request refused at the HTTP level.
    pub fn with_refusal_hook(mut self, hook: RefusalHook) -> Self {
        self.on_refusal = Some(hook);
        self
    }

    /// The mode.
    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// The roles.
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// The clients store.
    pub fn clients(&self) -> &Arc<ClientStore> {
        &self.clients
    }

    /// The endpoint-wide limits.
    pub fn global(&self) -> GlobalLimits {
        self.global
    }

    /// Reports a refusal to the hook and the log.
    pub fn refused(&self, refusal: &Refusal) {
        tracing::info!(target: "ecrop::api", client = refusal.client.as_deref(), host = refusal.host.as_deref(), code = refusal.code, status = refusal.status, reason = %refusal.reason, "request refused");
        if let Some(hook) = &self.on_refusal {
            hook(refusal);
        }
    }

    /// Authenticates the value of an `Authorization` header (or its absence).
    pub fn admit(&self, authorization: Option<&str>) -> Result<Admitted, AuthError> {
        let Some(header) = authorization else {
            return match self.mode {
                AccessMode::DevLoopback => {
                    let caller = Caller {
                        client: Caller::DEV_CLIENT.to_owned(),
                        role: roles::DEV_ROLE.to_owned(),
                    };
                    let limiter = self.limiter(&caller, None);
                    let session = Session { credential: None, expires_at: None };
                    Ok(Admitted { caller, limiter, session })
                }
                AccessMode::Required => Err(AuthError::Missing),
            };
        };
        let set = self.clients.current();
        let authenticated = auth::authenticate(header, &set)?;
        let client = authenticated.client;
        let caller = Caller { client: client.id.clone(), role: client.role.clone() };
        let limiter = self.limiter(&caller, client.limits.as_ref());
        let session = Session {
            credential: Some(client.credential.clone()),
            expires_at: authenticated.expires_at,
        };
        Ok(Admitted { caller, limiter, session })
    }

    /// Whether `caller`'s credential still holds: the client is still in force with the same
    /// role (not revoked, removed or changed since the connection was admitted) and its token
    /// has not expired. Calls without a [`Session`] are not trusted.
    pub fn still_valid(&self, caller: &Caller, session: Option<&Session>) -> Result<(), String> {
        let Some(session) = session else {
            return Err("no session".to_owned());
        };
        let Some(credential) = &session.credential else {
            return match self.mode {
                AccessMode::DevLoopback => Ok(()),
                AccessMode::Required => Err("no credential".to_owned()),
            };
        };
        if let Some(expires_at) = session.expires_at {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if now > expires_at.saturating_add(auth::JWT_LEEWAY_SECS) {
                return Err(format!("token of client {} expired", caller.client));
            }
        }
        let set = self.clients.current();
        match set.active(&caller.client) {
            Some(entry) if entry.credential != *credential => {
                Err(format!("credential of client {} replaced; authenticate again", caller.client))
            }
            Some(entry) if entry.role == caller.role => Ok(()),
            Some(_) => Err(format!("client {} changed role; authenticate again", caller.client)),
            None => Err(format!("client {} is revoked", caller.client)),
        }
    }

    /// The limiter of `caller`, with `overrides` from the clients file over the role's limits.
    pub fn limiter(&self, caller: &Caller, overrides: Option<&LimitsFile>) -> Arc<ClientLimiter> {
        let limits = match self.roles.get(&caller.role) {
            Some(role) => role.limits(overrides, self.global),
            None => LimitsFile::default().resolve(self.global),
        };
        self.limiters.get(&caller.client, limits)
    }
}
