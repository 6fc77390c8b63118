//! Operating the sidecar: Prometheus metrics, health and readiness, webhooks.

use serde::Deserialize;

/// `[ops]` section of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsFile {}

/// One `[[webhooks]]` entry of the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {}
