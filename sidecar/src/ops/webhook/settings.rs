//! Resolving `[[webhooks]]` entries (URL, secret, retry settings) and the HMAC signature of a
//! delivery. A secret is read once, at start, from its file or environment variable; it is
//! kept in a [`SecretSlice`] and never formatted, logged or part of an error.

use std::{collections::HashSet, path::Path, time::Duration};

use hmac::{Hmac, Mac};
use secrecy::SecretSlice;
use serde::Deserialize;
use sha2::Sha256;

use crate::ops::{OpsError, WebhookFile, event::EventKind};

/// Default attempts per delivery: with the default backoff, about four minutes of retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
/// Default delay before the first retry.
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 500;
/// Default longest delay between attempts: five minutes.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 300_000;
/// Default timeout of one attempt.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Most attempts to `max_attempts` accepted in the configuration.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 4_096;

type HmacSha256 = Hmac<Sha256>;

/// Checks that a webhook URL is `http` or `https` and carries no credentials (they belong in
/// the secret, not in the configuration file).
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook url is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("webhook url scheme ({}) must be http or https", parsed.scheme()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("webhook url must not carry credentials; use secret_file or secret_env".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("webhook url has no host".into());
    }
    Ok(parsed)
}

/// Serde check of [`WebhookFile::url`], so a bad URL fails the configuration file's parse.
pub(in crate::ops) fn deserialize_url<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<String, D::Error> {
    let url = String::deserialize(d)?;
    check_url(&url).map_err(serde::de::Error::custom)?;
    Ok(url)
}

/// `sha256=<hex>` of HMAC-SHA256 over `timestamp + "." + body` with `secret`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Checks an `X-Ecrop-Signature` header value in constant time.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_tag) = header.strip_prefix("sha256=") else { return false };
    let Ok(tag) = hex::decode(hex_tag) else { return false };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
    let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A resolved `[[webhooks]]` entry: URL checked, secret read, defaults applied.
pub struct WebhookSettings {
    /// Receiver URL.
    pub url: reqwest::Url,
    pub(super) secret: SecretSlice<u8>,
    /// Events sent to this receiver.
    pub events: HashSet<EventKind>,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Longest delay between attempts.
    pub max_backoff: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url.as_str())
            .field("events", &self.events)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookSettings {
    /// Resolves one entry: checks the URL and values and reads the secret.
    pub fn from_file(file: &WebhookFile) -> Result<Self, OpsError> {
        let url = check_url(&file.url).map_err(OpsError::Invalid)?;
        let invalid = |what: &str| OpsError::Invalid(format!("webhook ({url}): {what}"));
        if file.events.is_empty() {
            return Err(invalid("events is empty; name at least one event"));
        }
        let secret = match (&file.secret_file, &file.secret_env) {
            (Some(path), None) => read_secret_file(path)?,
            (None, Some(name)) => read_secret_env(name)?,
            (Some(_), Some(_)) => return Err(invalid("set secret_file or secret_env, not both")),
            (None, None) => return Err(invalid("no secret; set secret_file or secret_env")),
        };
        let max_attempts = file.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(invalid(&format!("max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}")));
        }
        let initial_backoff_ms = file.initial_backoff_ms.unwrap_or(DEFAULT_INITIAL_BACKOFF_MS);
        let max_backoff_ms = file.max_backoff_ms.unwrap_or(DEFAULT_MAX_BACKOFF_MS);
        if initial_backoff_ms == 0 || max_backoff_ms < initial_backoff_ms {
            return Err(invalid(
                "initial_backoff_ms must be above zero and max_backoff_ms not below it",
            ));
        }
        let timeout_ms = file.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(invalid("timeout_ms must be above zero"));
        }
        Ok(Self {
            url,
            secret,
            events: file.events.iter().copied().collect(),
            max_attempts,
            initial_backoff: Duration::from_millis(initial_backoff_ms),
            max_backoff: Duration::from_millis(max_backoff_ms),
            timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// Resolves every entry; two entries for the same URL are refused.
    pub fn from_files(files: &[WebhookFile]) -> Result<Vec<Self>, OpsError> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(files.len());
        for file in files {
            let settings = Self::from_file(file)?;
            if !seen.insert(settings.url.to_string()) {
                return Err(OpsError::Invalid(format!(
                    "webhook ({}) configured twice; list all its events in one entry",
                    settings.url
                )));
            }
            out.push(settings);
        }
        Ok(out)
    }

    /// The delay before attempt `failed + 1`, after `failed` failed attempts (at least one).
    pub fn backoff(&self, failed: u32) -> Duration {
        let exponent = failed.saturating_sub(1).min(30);
        let full = self.initial_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        // Equal jitter: half fixed, half random, so retries of many deliveries spread out
        // without any of them coming back sooner than half the nominal delay.
        let half = full / 2;
        let jitter_ms = rand::random_range(0..=half.as_millis().min(u64::MAX as u128) as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

fn read_secret_file(path: &Path) -> Result<SecretSlice<u8>, OpsError> {
    let error = |reason: String| OpsError::SecretFile { path: path.to_owned(), reason };
    let meta = std::fs::metadata(path).map_err(|e| error(e.to_string()))?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(error(format!("larger than {MAX_SECRET_BYTES} bytes")));
    }
    let mut bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(error("empty".into()));
    }
    Ok(SecretSlice::from(bytes))
}

fn read_secret_env(name: &str) -> Result<SecretSlice<u8>, OpsError> {
    match std::env::var_os(name) {
        Some(value) if !value.is_empty() => Ok(SecretSlice::from(value.into_encoded_bytes())),
        _ => Err(OpsError::SecretEnv { name: name.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn file(url: &str) -> WebhookFile {
        WebhookFile {
            url: url.into(),
            secret_env: Some("ECROP_TEST_WEBHOOK_SECRET_UNIT".into()),
            events: vec![EventKind::RoleGranted],
            ..WebhookFile::default()
        }
    }

    #[test]
    fn signature_round_trips() {
        let header = signature(b"key", "1700000000", b"{}");
        assert!(header.starts_with("sha256="), "{header}");
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert!(verify_signature(b"key", "1700000000", b"{}", &header));
        assert!(!verify_signature(b"key", "1700000001", b"{}", &header));
        assert!(!verify_signature(b"other", "1700000000", b"{}", &header));
        assert!(!verify_signature(b"key", "1700000000", b"{}", "sha1=00"));
    }

    #[test]
    fn refuses_bad_urls() {
        assert_eq!(
            check_url("ftp://example.test/hook").unwrap_err(),
            "webhook url scheme (ftp) must be http or https"
        );
        assert!(check_url("http://user:pw@127.0.0.1/").unwrap_err().contains("credentials"));
        assert!(check_url("not a url").unwrap_err().starts_with("webhook url is not a URL"));
        assert!(check_url("https://127.0.0.1:9/x").is_ok());
    }

    #[test]
    fn refuses_missing_or_double_secret() {
        let mut none = file("http://127.0.0.1:1/");
        none.secret_env = None;
        assert_eq!(
            WebhookSettings::from_file(&none).unwrap_err().to_string(),
            "config invalid: webhook (http://127.0.0.1:1/): no secret; set secret_file or secret_env"
        );
        let unset = WebhookFile {
            secret_env: Some("ECROP_TEST_SURELY_UNSET_VARIABLE".into()),
            ..file("http://127.0.0.1:1/")
        };
        assert_eq!(
            WebhookSettings::from_file(&unset).unwrap_err().to_string(),
            "webhook secret environment variable (ECROP_TEST_SURELY_UNSET_VARIABLE) is not set or empty"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_cap() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let settings = WebhookSettings::from_file(&WebhookFile {
            secret_env: None,
            secret_file: Some(secret),
            initial_backoff_ms: Some(1_000),
            max_backoff_ms: Some(5_000),
            ..file("http://127.0.0.1:1/")
        })
        .unwrap();
        assert_eq!(settings.secret.expose_secret(), b"s3cret");
        for _ in 0..50 {
            let first = settings.backoff(1);
            assert!((Duration::from_millis(500)..=Duration::from_millis(1_000)).contains(&first));
            let third = settings.backoff(3);
            assert!((Duration::from_millis(2_000)..=Duration::from_millis(4_000)).contains(&third));
            let capped = settings.backoff(30);
            assert!(
                (Duration::from_millis(2_500)..=Duration::from_millis(5_000)).contains(&capped)
            );
        }
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
