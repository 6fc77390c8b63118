//! What watches the endpoint of `ecrop serve` and `ecrop dev`: the audit log, the webhooks and
//! the metrics. Started before the endpoint, stopped after it, so that every call the endpoint
//! answers is counted, recorded and reported, and nothing queued is lost on shutdown.

use std::sync::{Arc, OnceLock};

use anyhow::Context;

use crate::{
    api::clients::ClientsFile,
    api::{ChangeKind, ClientChange, ClientChanges, ClientStore, Refusal, RefusalHook},
    audit::AuditSettings,
    audit::{
        AuditLayer, AuditLog, Entry, Kind, NewEntry, Outcome,
        entry::{ENTRY_PREFIX, WHO_SIDECAR, WHO_UNAUTHENTICATED, who_operator},
    },
    config::{FileConfig, RpcSettings},
    ops::{Notifier, ReadinessCheck, WebhookSettings, Webhooks, metrics, server::FnCheck},
    rpc::Observers,
    store::{Batch, Store},
};

/// Store key of the clients file as the sidecar last saw it, so that changes made while it was
/// stopped are recorded when it starts.
const CLIENTS_SEEN_KEY: &str = "audit/clients_seen";

/// The running observers.
pub struct Observability {
    command: &'static str,
    store: Store,
    audit: Option<AuditLog>,
    audit_settings: AuditSettings,
    webhooks: Option<Webhooks>,
    notifier: Notifier,
    clients: Arc<OnceLock<Arc<ClientStore>>>,
}

impl Observability {
    /// Opens the audit log (unless `[audit] enabled = false`) and starts the webhooks of the
    /// configuration, both on `store`. `command` names the starting command in the log.
    pub async fn start(
        file: &FileConfig,
        store: Store,
        command: &'static str,
    ) -> anyhow::Result<Self> {
        let audit_settings = AuditSettings::from_file(&file.audit)?;
        let audit = match audit_settings.enabled {
            true => {
                let log = AuditLog::open(store.clone()).await.context("opening the audit log")?;
                if let Some(last) = unclean_end(&store)? {
                    tracing::warn!(target: "ecrop::audit", %last, "the audit log does not end with a stop: the last run ended without one");
                    let unclean = NewEntry::new(WHO_SIDECAR, Kind::Lifecycle, "unclean_shutdown")
                        .outcome(Outcome::Ok { result: None })
                        .detail(format!(
                            "the previous run ended without a stop; last entry {last}"
                        ));
                    log.record(unclean).await.context("writing the audit log")?;
                }
                let started =
                    NewEntry::new(WHO_SIDECAR, Kind::Lifecycle, format!("{command}_started"))
                        .outcome(Outcome::ok(env!("CARGO_PKG_VERSION")));
                log.record(started).await.context("writing the audit log")?;
                Some(log)
            }
            false => {
                tracing::warn!(target: "ecrop::audit", "audit log disabled by [audit] enabled = false");
                None
            }
        };
        let hooks = WebhookSettings::from_files(&file.webhooks)?;
        let webhooks = match hooks.is_empty() {
            true => None,
            false => Some(Webhooks::start(hooks, store.clone(), metrics::global())?),
        };
        let notifier = webhooks.as_ref().map_or_else(Notifier::disabled, Webhooks::notifier);
        Ok(Self {
            command,
            store,
            audit,
            audit_settings,
            webhooks,
            notifier,
            clients: Arc::new(OnceLock::new()),
        })
    }

    /// The handle that raises webhook events (a no-op one without webhooks).
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// The audit log, when it is on.
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// The readiness check of the audit log: signing is suspended while it cannot write.
    pub fn readiness_check(&self) -> Option<Box<dyn ReadinessCheck>> {
        let log = self.audit.clone()?;
        Some(Box::new(FnCheck::new("audit_log", move || {
            let writable = log.is_writable();
            Box::pin(async move {
                match writable {
                    true => Ok(()),
                    false => Err("audit log cannot write; signing suspended".to_owned()),
                }
            })
        })))
    }

    /// The layers for [`crate::rpc::start`].
    pub fn observers(&self, settings: &RpcSettings) -> Observers {
        let max_response = settings.max_response_bytes as usize;
        Observers {
            metrics: Some(metrics::global()),
            audit: self
                .audit
                .clone()
                .map(|log| AuditLayer::new(log, self.audit_settings.clone(), max_response)),
            notifier: Some(self.notifier.clone()),
        }
    }

    /// Counts requests refused before they reach a method (credentials, origin or host, body
    /// size, batch length) and records them in the audit log when it is on.
    pub fn refusal_hook(&self) -> RefusalHook {
        let log = self.audit.clone();
        Arc::new(move |refusal: &Refusal| {
            metrics::global().http_refusal(refusal.status);
            if let Some(log) = &log {
                log.record_detached(refusal_entry(refusal));
            }
        })
    }

    /// Records the changes a reload of the clients file finds, and remembers the file as
    /// seen.
    pub fn client_changes(&self) -> Option<ClientChanges> {
        let log = self.audit.clone()?;
        let store = self.store.clone();
        let clients = self.clients.clone();
        Some(Arc::new(move |changes: &[ClientChange]| {
            for change in changes {
                log.record_detached(client_change_entry(change, "reload"));
            }
            if let Some(clients) = clients.get() {
                remember_clients(&store, &clients.snapshot().file);
            }
        }))
    }

    /// Called once the endpoint's clients are loaded: records what changed in the clients
    /// file while the sidecar was not running.
    pub async fn clients_loaded(&self, clients: &Arc<ClientStore>) -> anyhow::Result<()> {
        let _ = self.clients.set(clients.clone());
        let Some(log) = &self.audit else {
            return Ok(());
        };
        let current = clients.snapshot().file.clone();
        let seen: ClientsFile = self.store.get_json(CLIENTS_SEEN_KEY)?.unwrap_or_default();
        for change in seen.changes_to(&current) {
            log.record(client_change_entry(&change, "start")).await?;
        }
        let mut batch = Batch::new();
        batch.put_json(CLIENTS_SEEN_KEY, &current)?;
        self.store.write_async(batch).await?;
        Ok(())
    }

    /// Records the stop (with `failure`, when the run ended with an error, a failed start
    /// included), writes everything queued and stops the webhooks (their pending deliveries
    /// stay stored). Call after the endpoint has stopped.
    pub async fn stop(self, failure: Option<&anyhow::Error>) {
        if let Some(webhooks) = self.webhooks {
            webhooks.stop().await;
        }
        if let Some(log) = self.audit {
            let outcome = match failure {
                // Exit status 1, as the process reports it.
                Some(error) => Outcome::error(1, format!("{error:#}")),
                None => Outcome::Ok { result: None },
            };
            let stopped =
                NewEntry::new(WHO_SIDECAR, Kind::Lifecycle, format!("{}_stopped", self.command))
                    .outcome(outcome);
            if let Err(error) = log.record(stopped).await {
                tracing::error!(target: "ecrop::audit", %error, "stop not recorded");
            }
            log.close().await;
        }
    }
}

/// The last entry of the audit log, described, when it is not the record of a stop: the
/// previous run was killed or crashed (its signatures requested but not answered stand last).
fn unclean_end(store: &Store) -> anyhow::Result<Option<String>> {
    let Some((key, value)) = store.last_with_prefix(ENTRY_PREFIX)? else {
        return Ok(None);
    };
    let entry: Entry = serde_json::from_slice(&value)
        .with_context(|| format!("reading the last audit entry ({key})"))?;
    let stopped = entry.kind == Kind::Lifecycle && entry.action.ends_with("_stopped");
    Ok((!stopped).then(|| format!("seq {} ({} by {})", entry.seq, entry.action, entry.who)))
}

/// The audit entry of a request refused at the HTTP level.
fn refusal_entry(refusal: &Refusal) -> NewEntry {
    let who = refusal.client.clone().unwrap_or_else(|| WHO_UNAUTHENTICATED.to_owned());
    let mut detail = format!("http_status={}", refusal.status);
    if let Some(host) = &refusal.host {
        detail.push_str(&format!(" host={host}"));
    }
    if let Some(origin) = &refusal.origin {
        detail.push_str(&format!(" origin={origin}"));
    }
    NewEntry::new(who, Kind::Refusal, "http")
        .outcome(Outcome::error(i64::from(refusal.code), refusal.reason.clone()))
        .detail(detail)
}

/// The audit entry of a change of the clients file; `seen` says when it was noticed (`start`
/// or `reload`).
fn client_change_entry(change: &ClientChange, seen: &str) -> NewEntry {
    let kind = match change.kind {
        ChangeKind::Added => "added",
        ChangeKind::Revoked => "revoked",
        ChangeKind::Changed => "changed",
        ChangeKind::Removed => "removed",
    };
    let (who, at) = match &change.stamp {
        Some(stamp) => (who_operator(&stamp.by), stamp.at.as_str()),
        None => (who_operator("unknown"), "unknown"),
    };
    NewEntry::new(who, Kind::Admin, format!("api_client_{kind}"))
        .target(change.client.clone())
        .outcome(Outcome::Ok { result: None })
        .detail(format!("role={} at={at} seen_at={seen}", change.role))
}

/// Stores `file` as the clients last seen, off the async workers; a failure only means the
/// change is recorded again at the next start.
fn remember_clients(store: &Store, file: &ClientsFile) {
    let mut batch = Batch::new();
    if let Err(error) = batch.put_json(CLIENTS_SEEN_KEY, file) {
        tracing::error!(target: "ecrop::audit", %error, "clients file not remembered");
        return;
    }
    let store = store.clone();
    let write = move || {
        if let Err(error) = store.write(batch) {
            tracing::error!(target: "ecrop::audit", %error, "clients file not remembered");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(write);
        }
        Err(_) => write(),
    }
}
