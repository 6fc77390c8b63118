//! The API permission matrix: roles, the methods each may call, the accounts its signing calls
//! may use, and its limits.
//!
//! A method pattern is an exact method name (`eth_getBalance`) or a prefix ending in `*`
//! (`eth_*`, or `*` for every method). Wildcards are deliberately weak:
//! - a wildcard never grants a signing method ([`SIGNING_METHODS`]) nor a method that submits
//!   a transaction ([`EXACT_ONLY_METHODS`]); those must be named exactly;
//! - a wildcard grants a method of a privileged namespace ([`PRIVILEGED_NAMESPACES`], e.g.
//!   `admin_*`) only when the pattern is exactly that namespace followed by `_*`.
//!
//! So `*` means "every read of the public namespaces", and `admin_*` is needed for `admin_`
//! methods.

use std::collections::{BTreeMap, HashSet};

use alloy::primitives::Address;

pub use crate::rpc::params::SIGNING_METHODS;
use serde::{Deserialize, Serialize};

/// Methods that are not signing but submit work to the network; a role must name each
/// exactly.
pub const EXACT_ONLY_METHODS: [&str; 9] = [
    "eth_signTypedData_v3",
    "eth_signTypedData",
    "eth_sendRawTransaction",
    "eth_sendRawTransactionSync",
    "eth_sendRawTransactionConditional",
    // Development nodes (anvil) sign this one with an account they unlock.
    "eth_sendUnsignedTransaction",
    "eth_submitWork",
    "eth_submitHashrate",
    "eth_sendRawPrivateTransaction",
];

/// Namespaces whose methods administer the node or reveal private data: granted by a wildcard
/// only when the pattern is exactly `NAMESPACE_*`.
pub const PRIVILEGED_NAMESPACES: [&str; 14] = [
    "admin", "debug", "miner", "perm", "txpool", "clique", "ibft", "qbft", "plugins", "trace",
    "priv", "eea", "personal", "engine",
];

/// Name of the role of unauthenticated loopback access in dev mode (every method, no limits).
pub const DEV_ROLE: &str = "dev";

/// Defaults of the per-client limits.
pub mod defaults {
    /// Requests per second a client may make on average.
    pub const REQUESTS_PER_SECOND: u32 = 200;
    /// Requests a client may make at once above the average rate.
    pub const BURST: u32 = 400;
    /// Calls of one client served at the same time.
    pub const MAX_CONCURRENT: u32 = 64;
}

/// Errors in the roles of the configuration.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// A role name is empty, reserved or has characters other than letters, digits, `-`, `_`.
    #[error("api.roles: invalid role name ({0}); use letters, digits, - and _ (dev is reserved)")]
    Name(String),
    /// A method pattern is not an exact name or a prefix ending in `*`.
    #[error(
        "api.roles.{role}: invalid method pattern ({pattern}); use a name or a prefix ending in *"
    )]
    Pattern {
        /// Role.
        role: String,
        /// Pattern.
        pattern: String,
    },
    /// A `send_from` entry is not an address or `*`.
    #[error("api.roles.{role}: invalid send_from entry ({entry}); use 0x addresses or \"*\"")]
    SendFrom {
        /// Role.
        role: String,
        /// Entry.
        entry: String,
    },
    /// A limit is zero where zero makes no sense.
    #[error("{0}")]
    Limit(String),
}

/// `[api.roles.NAME]`: one role of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    /// Methods the role may call: exact names or prefixes ending in `*`.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Accounts the role's signing calls may use (`0x...`), or `"*"` for every account.
    #[serde(default)]
    pub send_from: Vec<String>,
    /// `[api.roles.NAME.limits]`: limits of each client with this role.
    #[serde(default)]
    pub limits: LimitsFile,
}

/// Limits as written in the configuration or the clients file; absent values fall back (client,
/// then role, then default).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Average requests (calls) per second; 0 for no rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Calls allowed at once above the average rate (the token bucket's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Calls served at the same time; 0 for no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Largest request body in bytes (never above `rpc.max_request_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u32>,
    /// Most calls in one batch (never above `rpc.max_batch_len`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_len: Option<u32>,
}

impl LimitsFile {
    /// These values where set, else `base`'s.
    pub fn over(&self, base: &LimitsFile) -> LimitsFile {
        LimitsFile {
            requests_per_second: self.requests_per_second.or(base.requests_per_second),
            burst: self.burst.or(base.burst),
            max_concurrent: self.max_concurrent.or(base.max_concurrent),
            max_request_bytes: self.max_request_bytes.or(base.max_request_bytes),
            max_batch_len: self.max_batch_len.or(base.max_batch_len),
        }
    }

    /// Checks values that must not be zero.
    pub fn check(&self, place: &str) -> Result<(), RoleError> {
        for (name, value) in [
            ("burst", self.burst),
            ("max_request_bytes", self.max_request_bytes),
            ("max_batch_len", self.max_batch_len),
        ] {
            if value == Some(0) {
                return Err(RoleError::Limit(format!("{place}.{name} must be above zero")));
            }
        }
        Ok(())
    }

    /// Resolves against the endpoint's global limits.
    pub fn resolve(&self, global: GlobalLimits) -> Limits {
        let rate = self.requests_per_second.unwrap_or(defaults::REQUESTS_PER_SECOND);
        Limits {
            requests_per_second: rate,
            burst: self.burst.unwrap_or(defaults::BURST.max(rate)).max(1),
            max_concurrent: self.max_concurrent.unwrap_or(defaults::MAX_CONCURRENT),
            max_request_bytes: self
                .max_request_bytes
                .map_or(global.max_request_bytes, |n| n.min(global.max_request_bytes)),
            max_batch_len: self
                .max_batch_len
                .map_or(global.max_batch_len, |n| n.min(global.max_batch_len)),
        }
    }
}

/// The endpoint-wide limits of `[rpc]`, the ceiling of every client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalLimits {
    /// `rpc.max_request_bytes`.
    pub max_request_bytes: u32,
    /// `rpc.max_batch_len`.
    pub max_batch_len: u32,
}

impl Default for GlobalLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: crate::config::DEFAULT_MAX_REQUEST_BYTES,
            max_batch_len: crate::config::DEFAULT_MAX_BATCH_LEN,
        }
    }
}

/// Resolved limits of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Average calls per second; 0 for none.
    pub requests_per_second: u32,
    /// Token bucket size.
    pub burst: u32,
    /// Calls in flight at once; 0 for no limit.
    pub max_concurrent: u32,
    /// Largest request body in bytes.
    pub max_request_bytes: u32,
    /// Most calls in one batch.
    pub max_batch_len: u32,
}

impl Limits {
    /// No rate or concurrency limit; body and batch at the endpoint's limits.
    pub fn unlimited(global: GlobalLimits) -> Self {
        Self {
            requests_per_second: 0,
            burst: 1,
            max_concurrent: 0,
            max_request_bytes: global.max_request_bytes,
            max_batch_len: global.max_batch_len,
        }
    }
}

/// One method pattern of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodPattern {
    /// Exactly this method.
    Exact(String),
    /// Methods starting with this prefix (the pattern without its `*`).
    Prefix(String),
}

impl MethodPattern {
    /// Parses `eth_call`, `eth_*` or `*`; `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let (body, wildcard) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        let valid = body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || (!wildcard && body.is_empty()) || body.len() > 128 {
            return None;
        }
        Some(if wildcard { Self::Prefix(body.to_owned()) } else { Self::Exact(body.to_owned()) })
    }

    /// Whether this pattern grants `method`, following the rules of the module documentation.
    pub fn grants(&self, method: &str) -> bool {
        match self {
            Self::Exact(name) => name == method,
            Self::Prefix(prefix) => {
                if !method.starts_with(prefix.as_str()) || exact_only(method) {
                    return false;
                }
                match privileged_namespace(method) {
                    Some(namespace) => prefix.strip_suffix('_').is_some_and(|p| p == namespace),
                    None => true,
                }
            }
        }
    }
}

impl std::fmt::Display for MethodPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Whether `method` must be named exactly to be granted (signing and submitting methods).
pub fn exact_only(method: &str) -> bool {
    SIGNING_METHODS.contains(&method) || EXACT_ONLY_METHODS.contains(&method)
}

/// Whether `method` signs with a key of the token.
pub fn is_signing(method: &str) -> bool {
    SIGNING_METHODS.contains(&method)
}

/// The privileged namespace of `method`, if it is in one.
fn privileged_namespace(method: &str) -> Option<&'static str> {
    let namespace = method.split_once('_').map_or(method, |(ns, _)| ns);
    PRIVILEGED_NAMESPACES.iter().copied().find(|ns| *ns == namespace)
}

/// Accounts a role's signing calls may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFrom {
    /// Every account of the token.
    Any,
    /// Only these.
    Only(HashSet<Address>),
}

impl SendFrom {
    /// Whether `account` may be used.
    pub fn allows(&self, account: &Address) -> bool {
        match self {
            Self::Any => true,
            Self::Only(set) => set.contains(account),
        }
    }
}

/// One role of the matrix, parsed.
#[derive(Debug, Clone)]
pub struct Role {
    /// Name.
    pub name: String,
    /// Method patterns.
    pub methods: Vec<MethodPattern>,
    /// Accounts for signing calls.
    pub send_from: SendFrom,
    /// Limits as configured for the role (before client overrides).
    pub limits: LimitsFile,
    /// Whether the role grants every method and has no rate or concurrency limit (dev mode).
    pub everything: bool,
}

impl Role {
    /// Parses `[api.roles.NAME]`.
    pub fn from_file(name: &str, file: &RoleFile) -> Result<Self, RoleError> {
        if !valid_id(name) || name == DEV_ROLE {
            return Err(RoleError::Name(name.to_owned()));
        }
        let methods = file
            .methods
            .iter()
            .map(|p| {
                MethodPattern::parse(p)
                    .ok_or_else(|| RoleError::Pattern { role: name.to_owned(), pattern: p.clone() })
            })
            .collect::<Result<_, _>>()?;
        let send_from = if file.send_from.iter().any(|e| e == "*") {
            SendFrom::Any
        } else {
            let accounts = file
                .send_from
                .iter()
                .map(|e| {
                    e.parse::<Address>().map_err(|_| RoleError::SendFrom {
                        role: name.to_owned(),
                        entry: e.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            SendFrom::Only(accounts)
        };
        file.limits.check(&format!("api.roles.{name}.limits"))?;
        Ok(Self {
            name: name.to_owned(),
            methods,
            send_from,
            limits: file.limits.clone(),
            everything: false,
        })
    }

    /// The role of unauthenticated loopback access in dev mode.
    pub fn dev() -> Self {
        Self {
            name: DEV_ROLE.to_owned(),
            methods: Vec::new(),
            send_from: SendFrom::Any,
            limits: LimitsFile::default(),
            everything: true,
        }
    }

    /// Whether the role may call `method`.
    pub fn permits(&self, method: &str) -> bool {
        self.everything || self.methods.iter().any(|p| p.grants(method))
    }

    /// The role's limits resolved against the endpoint's (client overrides applied first).
    pub fn limits(&self, client: Option<&LimitsFile>, global: GlobalLimits) -> Limits {
        if self.everything {
            return Limits::unlimited(global);
        }
        match client {
            Some(client) => client.over(&self.limits).resolve(global),
            None => self.limits.resolve(global),
        }
    }
}

/// Whether `id` is a valid client or role id: 1 to 64 letters, digits, `-`, `_` or `.`,
/// starting with a letter or digit.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The roles of the matrix.
#[derive(Debug, Clone)]
pub struct Roles {
    roles: BTreeMap<String, Role>,
}

impl Roles {
    /// The configured roles, or the built-in ones when the configuration defines none.
    pub fn from_config(roles: Option<&BTreeMap<String, RoleFile>>) -> Result<Self, RoleError> {
        match roles {
            Some(roles) if !roles.is_empty() => {
                let roles = roles
                    .iter()
                    .map(|(name, file)| Ok((name.clone(), Role::from_file(name, file)?)))
                    .collect::<Result<_, RoleError>>()?;
                Ok(Self { roles })
            }
            _ => Ok(Self::builtin()),
        }
    }

    /// The built-in roles: see [`builtin_roles`].
    pub fn builtin() -> Self {
        let roles = builtin_roles()
            .into_iter()
            .map(|(name, file)| {
                let role = Role::from_file(name, &file);
                (name.to_owned(), role)
            })
            .filter_map(|(name, role)| role.ok().map(|r| (name, r)))
            .collect();
        Self { roles }
    }

    /// The role called `name`.
    pub fn get(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Role names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// Adds the dev role (used by dev mode only).
    pub fn with_dev(mut self) -> Self {
        self.roles.insert(DEV_ROLE.to_owned(), Role::dev());
        self
    }
}

/// The built-in roles, used when the configuration defines none:
/// - `reader`: `eth_*`, `net_*`, `web3_*` reads (no signing, no raw transactions);
/// - `signer`: reader, plus every signing method and `eth_sendRawTransaction`, from any
///   account of the token (define your own role to name the accounts);
/// - `private`: `priv_*` and `eea_*` (Besu's private transactions), plus reader;
/// - `admin`: every method, including every privileged namespace, signing from any account.
pub fn builtin_roles() -> Vec<(&'static str, RoleFile)> {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let reads = ["eth_*", "net_*", "web3_*"];
    let mut signer = strings(&reads);
    signer.extend(strings(&SIGNING_METHODS));
    signer.push("eth_sendRawTransaction".to_owned());
    let mut private = strings(&reads);
    private.extend(strings(&["priv_*", "eea_*"]));
    let mut admin = vec!["*".to_owned()];
    admin.extend(PRIVILEGED_NAMESPACES.iter().map(|ns| format!("{ns}_*")));
    admin.extend(strings(&SIGNING_METHODS));
    admin.extend(strings(&EXACT_ONLY_METHODS));
    let role = |methods: Vec<String>, send_from: &[&str]| RoleFile {
        methods,
        send_from: strings(send_from),
        limits: LimitsFile::default(),
    };
    vec![
        ("reader", role(strings(&reads), &[])),
        ("signer", role(signer, &["*"])),
        ("private", role(private, &[])),
        ("admin", role(admin, &["*"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Role {
        Roles::builtin().get(name).cloned().unwrap()
    }

    #[test]
    fn patterns_parse() {
        assert_eq!(MethodPattern::parse("eth_call"), Some(MethodPattern::Exact("eth_call".into())));
        assert_eq!(MethodPattern::parse("eth_*"), Some(MethodPattern::Prefix("eth_".into())));
        assert_eq!(MethodPattern::parse("*"), Some(MethodPattern::Prefix(String::new())));
        for bad in ["", "eth_*_x", "e*th", "eth call", "**", "eth-call"] {
            assert_eq!(MethodPattern::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn wildcards_never_grant_signing_or_privileged_methods() {
        let star = MethodPattern::parse("*").unwrap();
        let eth = MethodPattern::parse("eth_*").unwrap();
        let e = MethodPattern::parse("e*").unwrap();
        for method in SIGNING_METHODS.iter().chain(&EXACT_ONLY_METHODS) {
            assert!(!star.grants(method) && !eth.grants(method) && !e.grants(method), "{method}");
            assert!(MethodPattern::parse(method).unwrap().grants(method));
        }
        assert!(!star.grants("admin_peers"));
        assert!(!MethodPattern::parse("ad*").unwrap().grants("admin_peers"));
        assert!(!MethodPattern::parse("admin*").unwrap().grants("admin_peers"));
        assert!(MethodPattern::parse("admin_*").unwrap().grants("admin_peers"));
        assert!(!star.grants("priv_getTransactionCount"));
        assert!(!e.grants("eea_sendRawTransaction"));
        assert!(star.grants("eth_blockNumber") && eth.grants("eth_getLogs"));
        assert!(!eth.grants("net_version"));
    }

    #[test]
    fn builtin_reader() {
        let reader = role("reader");
        for ok in
            ["eth_blockNumber", "eth_call", "eth_accounts", "net_version", "web3_clientVersion"]
        {
            assert!(reader.permits(ok), "{ok}");
        }
        for no in [
            "eth_sendTransaction",
            "eth_sign",
            "personal_sign",
            "eth_signTypedData_v4",
            "eth_signTransaction",
            "eth_sendRawTransaction",
            "admin_peers",
            "debug_traceTransaction",
            "priv_call",
            "perm_addAccountsToAllowlist",
            "miner_start",
        ] {
            assert!(!reader.permits(no), "{no}");
        }
        assert!(!reader.send_from.allows(&Address::ZERO));
    }

    #[test]
    fn builtin_signer_private_admin() {
        let signer = role("signer");
        assert!(signer.permits("eth_sendTransaction") && signer.permits("personal_sign"));
        assert!(signer.permits("eth_getBalance") && signer.permits("eth_sendRawTransaction"));
        assert!(!signer.permits("admin_peers") && !signer.permits("priv_call"));
        assert!(signer.send_from.allows(&Address::repeat_byte(7)));

        let private = role("private");
        assert!(private.permits("priv_distributeRawTransaction") && private.permits("eth_call"));
        assert!(!private.permits("eth_sendTransaction") && !private.permits("admin_peers"));

        let admin = role("admin");
        for ok in [
            "admin_peers",
            "debug_traceTransaction",
            "perm_getAccountsAllowlist",
            "eth_sendTransaction",
            "eth_sign",
            "priv_call",
            "txpool_besuStatistics",
            "anything_else",
        ] {
            assert!(admin.permits(ok), "{ok}");
        }
        assert!(Role::dev().permits("admin_peers"));
    }

    #[test]
    fn configured_roles_replace_builtins_and_are_checked() {
        let mut roles = BTreeMap::new();
        roles.insert(
            "app".to_owned(),
            RoleFile {
                methods: vec!["eth_*".into(), "eth_sendTransaction".into()],
                send_from: vec![format!("{}", Address::repeat_byte(0xaa))],
                limits: LimitsFile { requests_per_second: Some(5), ..Default::default() },
            },
        );
        let parsed = Roles::from_config(Some(&roles)).unwrap();
        assert_eq!(parsed.names().collect::<Vec<_>>(), ["app"]);
        let app = parsed.get("app").unwrap();
        assert!(app.send_from.allows(&Address::repeat_byte(0xaa)));
        assert!(!app.send_from.allows(&Address::repeat_byte(0xab)));
        let limits = app.limits(None, GlobalLimits::default());
        assert_eq!(limits.requests_per_second, 5);
        assert_eq!(limits.burst, defaults::BURST);

        roles.get_mut("app").unwrap().send_from = vec!["0x12".into()];
        let err = Roles::from_config(Some(&roles)).unwrap_err().to_string();
        assert!(err.contains("invalid send_from entry (0x12)"), "{err}");
        roles.get_mut("app").unwrap().send_from.clear();
        roles.get_mut("app").unwrap().methods = vec!["eth_*x".into()];
        assert!(Roles::from_config(Some(&roles)).is_err());
        let mut dev = BTreeMap::new();
        dev.insert("dev".to_owned(), RoleFile::default());
        assert!(Roles::from_config(Some(&dev)).is_err());
    }

    #[test]
    fn client_limits_override_role_and_stay_under_the_endpoint() {
        let role_limits =
            LimitsFile { requests_per_second: Some(10), burst: Some(20), ..Default::default() };
        let client = LimitsFile {
            burst: Some(3),
            max_request_bytes: Some(u32::MAX),
            max_batch_len: Some(2),
            ..Default::default()
        };
        let global = GlobalLimits { max_request_bytes: 1000, max_batch_len: 50 };
        let limits = client.over(&role_limits).resolve(global);
        assert_eq!(
            limits,
            Limits {
                requests_per_second: 10,
                burst: 3,
                max_concurrent: defaults::MAX_CONCURRENT,
                max_request_bytes: 1000,
                max_batch_len: 2,
            }
        );
        assert!(LimitsFile { burst: Some(0), ..Default::default() }.check("x").is_err());
    }
}
