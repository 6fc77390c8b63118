//! The client side of Besu's `PERM` JSON-RPC methods: requests, the documented `Success`
//! result, and Besu's refusals (code -32000, told apart by message) mapped to [`Refusal`].

use serde_json::{Value, json};

use super::{CALL_TIMEOUT, MAX_RESPONSE_BYTES, SyncError};

/// What Besu said when it refused a call (all Besu permissioning errors use code -32000 and
/// differ by message only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// "Request contains an invalid node/account".
    InvalidEntry,
    /// "Cannot add an existing node/account to allowlist".
    Existing,
    /// "Cannot remove an absent node/account from allowlist".
    Absent,
    /// "Cannot remove a fixed node (bootnode or static node) from allowlist".
    FixedNode,
    /// "Request contains duplicate nodes/accounts".
    Duplicate,
    /// "Request contains an empty list of nodes/accounts".
    Empty,
    /// "Unable to persist changes to allowlist configuration file. Changes reverted".
    PersistFailure,
    /// "The permissioning allowlist configuration file is out of sync. The changes have been
    /// applied, but not persisted to disk".
    FileOutOfSync,
    /// Anything else.
    Other,
}

impl Refusal {
    pub(super) fn classify(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("invalid") {
            Self::InvalidEntry
        } else if m.contains("cannot add an existing") {
            Self::Existing
        } else if m.contains("fixed node") {
            Self::FixedNode
        } else if m.contains("cannot remove an absent") {
            Self::Absent
        } else if m.contains("duplicate") {
            Self::Duplicate
        } else if m.contains("empty list") {
            Self::Empty
        } else if m.contains("unable to persist") {
            Self::PersistFailure
        } else if m.contains("out of sync") {
            Self::FileOutOfSync
        } else {
            Self::Other
        }
    }
}

/// Client of Besu's `PERM` JSON-RPC methods.
#[derive(Debug, Clone)]
pub struct BesuClient {
    url: String,
    http: reqwest::Client,
}

/// Which list a call works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum List {
    /// The nodes allowlist.
    Nodes,
    /// The accounts allowlist.
    Accounts,
}

impl List {
    pub(super) fn name(self) -> &'static str {
        match self {
            List::Nodes => "nodes",
            List::Accounts => "accounts",
        }
    }

    pub(super) fn get(self) -> &'static str {
        match self {
            List::Nodes => "perm_getNodesAllowlist",
            List::Accounts => "perm_getAccountsAllowlist",
        }
    }

    pub(super) fn add(self) -> &'static str {
        match self {
            List::Nodes => "perm_addNodesToAllowlist",
            List::Accounts => "perm_addAccountsToAllowlist",
        }
    }

    pub(super) fn remove(self) -> &'static str {
        match self {
            List::Nodes => "perm_removeNodesFromAllowlist",
            List::Accounts => "perm_removeAccountsFromAllowlist",
        }
    }

    pub(super) fn flag(self) -> &'static str {
        match self {
            List::Nodes => "--permissions-nodes-config-file-enabled",
            List::Accounts => "--permissions-accounts-config-file-enabled",
        }
    }
}

impl BesuClient {
    /// A client of Besu's JSON-RPC endpoint at `url` (the `PERM` API must be enabled there).
    pub fn new(url: &str) -> Result<Self, SyncError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| SyncError::Unreachable { url: url.to_owned(), reason: e.to_string() })?;
        Ok(Self { url: url.to_owned(), http })
    }

    /// Besu's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call(
        &self,
        list: List,
        method: &'static str,
        params: Value,
    ) -> Result<Value, SyncError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let unreachable = |e: reqwest::Error| SyncError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let invalid =
            |reason: String| SyncError::InvalidResponse { url: self.url.clone(), method, reason };
        let response = self.http.post(&self.url).json(&body).send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(invalid(format!("larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(format!("http {status}, not json: {e}")))?;
        if let Some(error) = answer.get("error") {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or_default();
            let message =
                error.get("message").and_then(Value::as_str).unwrap_or_default().to_owned();
            // -32601: method not found, which is what Besu answers for a disabled API.
            if code == -32601 {
                return Err(SyncError::PermApiDisabled { url: self.url.clone(), method });
            }
            if message.to_ascii_lowercase().contains("has not been enabled") {
                return Err(SyncError::AllowlistDisabled {
                    list: list.name(),
                    message,
                    flag: list.flag(),
                });
            }
            let kind = Refusal::classify(&message);
            return Err(SyncError::Refused { method, code, message, kind });
        }
        answer.get("result").cloned().ok_or_else(|| invalid("neither result nor error".into()))
    }

    pub(super) async fn get(&self, list: List) -> Result<Vec<String>, SyncError> {
        let result = self.call(list, list.get(), json!([])).await?;
        serde_json::from_value(result).map_err(|e| SyncError::InvalidResponse {
            url: self.url.clone(),
            method: list.get(),
            reason: format!("not a list of strings: {e}"),
        })
    }

    pub(super) async fn change(
        &self,
        list: List,
        add: bool,
        entries: &[String],
    ) -> Result<(), SyncError> {
        let method = if add { list.add() } else { list.remove() };
        let result = self.call(list, method, json!([entries])).await;
        match result {
            Ok(Value::String(s)) if s == "Success" => Ok(()),
            Ok(other) => Err(SyncError::InvalidResponse {
                url: self.url.clone(),
                method,
                reason: format!("expected \"Success\", got {other}"),
            }),
            // Applied in memory, only Besu's own file copy lags; the sidecar writes the file.
            Err(SyncError::Refused { kind: Refusal::FileOutOfSync, message, .. }) => {
                tracing::warn!(target: "ecrop::perm", method, %message, "besu applied the change but did not persist it");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `perm_getNodesAllowlist`.
    pub async fn nodes_allowlist(&self) -> Result<Vec<String>, SyncError> {
        self.get(List::Nodes).await
    }

    /// `perm_getAccountsAllowlist`.
    pub async fn accounts_allowlist(&self) -> Result<Vec<String>, SyncError> {
        self.get(List::Accounts).await
    }
}
