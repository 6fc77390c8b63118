//! Log output through `tracing`: readable lines by default, one JSON object per event on
//! request. Logs go to standard error so that standard output stays for command results.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Filter used when neither the configuration nor `RUST_LOG` names one.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber. `filter` is a `tracing` filter directive such as `info` or
/// `ecrop::rpc=debug`; an invalid one falls back to [`DEFAULT_FILTER`] with a warning.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let requested = filter.map(str::to_owned).or_else(|| std::env::var("RUST_LOG").ok());
    let (env_filter, invalid) = match requested.as_deref().map(EnvFilter::try_new) {
        Some(Ok(f)) => (f, None),
        Some(Err(e)) => (EnvFilter::new(DEFAULT_FILTER), Some(e.to_string())),
        None => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let registry = tracing_subscriber::registry().with(env_filter);
    let installed = match format {
        LogFormat::Text => {
            registry.with(fmt::layer().with_writer(std::io::stderr).with_target(true)).try_init()
        }
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_writer(std::io::stderr))
            .try_init(),
    };
    if installed.is_ok()
        && let Some(reason) = invalid
    {
        tracing::warn!(target: "ecrop::log", %reason, "invalid log filter, using the default");
    }
}
