//! Per-client limits in force: a token bucket for the call rate and a counter of calls in
//! flight. One [`ClientLimiter`] per client id, shared by the HTTP layer (which refuses a
//! request early with 429 when the client is clearly over) and the RPC middleware (which
//! charges each call).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use super::roles::Limits;

/// Retry hint given when the concurrency limit refuses a call.
pub const CONCURRENCY_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The limits of one client and their state.
#[derive(Debug)]
pub struct ClientLimiter {
    limits: Limits,
    bucket: Mutex<Bucket>,
    in_flight: Arc<AtomicU32>,
}

/// A call in flight; the slot is freed on drop.
#[derive(Debug)]
pub struct InFlight {
    counter: Option<Arc<AtomicU32>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(counter) = &self.counter {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Why a call was refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitRefusal {
    /// The rate limit: retry after this long.
    Rate {
        /// Time until a token is available.
        retry_after: Duration,
        /// The configured rate.
        per_second: u32,
    },
    /// The concurrency limit.
    Concurrency {
        /// The configured number of calls in flight.
        max: u32,
    },
}

impl LimitRefusal {
    /// Suggested wait before retrying.
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Rate { retry_after, .. } => *retry_after,
            Self::Concurrency { .. } => CONCURRENCY_RETRY,
        }
    }

    /// A sentence for the error message.
    pub fn reason(&self) -> String {
        match self {
            Self::Rate { per_second, .. } => {
                format!("rate limit exceeded ({per_second} requests per second)")
            }
            Self::Concurrency { max } => {
                format!("concurrency limit exceeded ({max} calls in flight)")
            }
        }
    }
}

impl ClientLimiter {
    /// A limiter with a full bucket.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            bucket: Mutex::new(Bucket { tokens: f64::from(limits.burst), last: Instant::now() }),
            in_flight: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn refill(&self, bucket: &mut Bucket) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.last = now;
        bucket.tokens = (bucket.tokens + elapsed * f64::from(self.limits.requests_per_second))
            .min(f64::from(self.limits.burst));
    }

    fn rate_refusal(&self, tokens: f64) -> LimitRefusal {
        let missing = (1.0 - tokens).max(0.0);
        let secs = missing / f64::from(self.limits.requests_per_second.max(1));
        LimitRefusal::Rate {
            retry_after: Duration::from_secs_f64(secs).max(Duration::from_millis(1)),
            per_second: self.limits.requests_per_second,
        }
    }

    /// Whether a call now would be refused, without charging anything.
    pub fn peek(&self) -> Result<(), LimitRefusal> {
        let max = self.limits.max_concurrent;
        if max > 0 && self.in_flight.load(Ordering::Acquire) >= max {
            return Err(LimitRefusal::Concurrency { max });
        }
        if self.limits.requests_per_second == 0 {
            return Ok(());
        }
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut bucket);
        if bucket.tokens < 1.0 { Err(self.rate_refusal(bucket.tokens)) } else { Ok(()) }
    }

    /// Charges one call: a token of the bucket and a slot in flight (freed when the returned
    /// guard drops).
    pub fn admit(&self) -> Result<InFlight, LimitRefusal> {
        let max = self.limits.max_concurrent;
        let slot = if max > 0 {
            let taken = self
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
            if taken.is_err() {
                return Err(LimitRefusal::Concurrency { max });
            }
            InFlight { counter: Some(self.in_flight.clone()) }
        } else {
            InFlight { counter: None }
        };
        if self.limits.requests_per_second > 0 {
            let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            self.refill(&mut bucket);
            if bucket.tokens < 1.0 {
                return Err(self.rate_refusal(bucket.tokens));
            }
            bucket.tokens -= 1.0;
        }
        Ok(slot)
    }
}

/// The limiters of every client seen, by client id.
#[derive(Debug, Default)]
pub struct Limiters {
    clients: Mutex<HashMap<String, Arc<ClientLimiter>>>,
}

impl Limiters {
    /// The limiter of `client`, made afresh when its limits changed (e.g. on reload).
    pub fn get(&self, client: &str, limits: Limits) -> Arc<ClientLimiter> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        match clients.get(client) {
            Some(limiter) if limiter.limits == limits => limiter.clone(),
            _ => {
                let limiter = Arc::new(ClientLimiter::new(limits));
                clients.insert(client.to_owned(), limiter.clone());
                limiter
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, concurrent: u32) -> Limits {
        Limits {
            requests_per_second: rate,
            burst,
            max_concurrent: concurrent,
            max_request_bytes: 1000,
            max_batch_len: 10,
        }
    }

    #[test]
    fn bucket_allows_the_burst_then_refuses_with_a_hint() {
        let limiter = ClientLimiter::new(limits(1, 3, 0));
        // The last refill lies in the future: nothing refills while the test runs.
        limiter.bucket.lock().unwrap().last = Instant::now() + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.peek().is_ok());
            drop(limiter.admit().unwrap());
        }
        let refused = limiter.admit().unwrap_err();
        assert!(matches!(refused, LimitRefusal::Rate { per_second: 1, .. }), "{refused:?}");
        assert!(refused.retry_after() > Duration::ZERO);
        assert!(refused.retry_after() <= Duration::from_secs(1));
        assert!(limiter.peek().is_err());
    }

    #[test]
    fn concurrency_counts_calls_in_flight() {
        let limiter = ClientLimiter::new(limits(0, 1, 2));
        let a = limiter.admit().unwrap();
        let _b = limiter.admit().unwrap();
        assert_eq!(limiter.admit().unwrap_err(), LimitRefusal::Concurrency { max: 2 });
        assert!(limiter.peek().is_err());
        drop(a);
        assert!(limiter.admit().is_ok());
    }

    #[test]
    fn zero_means_unlimited_and_changed_limits_reset() {
        let limiter = ClientLimiter::new(limits(0, 1, 0));
        let guards: Vec<_> = (0..1000).map(|_| limiter.admit().unwrap()).collect();
        assert_eq!(guards.len(), 1000);
        let all = Limiters::default();
        let first = all.get("a", limits(1, 1, 0));
        assert!(Arc::ptr_eq(&first, &all.get("a", limits(1, 1, 0))));
        assert!(!Arc::ptr_eq(&first, &all.get("a", limits(2, 1, 0))));
    }
}
