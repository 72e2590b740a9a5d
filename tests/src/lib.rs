//! The harness behind Thinline's end-to-end tests and benchmarks.
//!
//! Everything here talks to real processes over real sockets: a
//! `host-server` started as a child process ([`host`]), a native client that
//! speaks the wire protocol ([`client`]), and headless Chromium driven over
//! WebDriver ([`browser`]). Unit tests inside each crate cover logic; this
//! crate proves that the pieces, built as users get them, work together.
//!
//! Waiting is always on a predicate with a deadline ([`wait_until`]), never
//! a bare sleep, so a slow machine makes tests slower, not flaky.

pub mod bench_auth;
pub mod bench_failover;
pub mod bench_persist;
pub mod browser;
pub mod client;
pub mod cluster;
pub mod database;
pub mod flood;
pub mod host;
pub mod http;
pub mod paths;
pub mod proxy;
pub mod soak;
pub mod tickets;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// How often [`wait_until`] re-evaluates its predicate.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Re-evaluates `probe` until it yields `Some`, or fails after `timeout`
/// with `what` and the last thing the probe saw (for the failure message).
///
/// The probe returns `Ok(Err(seen))` while not ready, where `seen` describes
/// the current state; errors from the probe itself end the wait at once.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe().await? {
            Ok(value) => return Ok(value),
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last seen:\n{seen}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A marker unique within this machine's recent history, for telling one
/// test's output from another's.
pub fn unique_marker(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{n}x{nanos}", std::process::id())
}

/// Percentile of already sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn wait_until_reports_what_it_last_saw() {
        let mut calls = 0;
        let err = wait_until(Duration::from_millis(120), "the impossible", || {
            calls += 1;
            let seen = format!("call {calls}");
            async move { Ok::<Result<(), String>, anyhow::Error>(Err(seen)) }
        })
        .await
        .expect_err("the predicate never holds");
        let text = format!("{err}");
        assert!(text.contains("the impossible"), "{text}");
        assert!(text.contains("call "), "{text}");
        assert!(calls >= 2, "polled {calls} times");
    }

    #[tokio::test]
    async fn wait_until_returns_the_value_once_ready() {
        let mut calls = 0;
        let value = wait_until(Duration::from_secs(5), "the third call", || {
            calls += 1;
            let now = calls;
            async move {
                Ok(if now >= 3 {
                    Ok(now)
                } else {
                    Err(format!("call {now}"))
                })
            }
        })
        .await
        .expect("ready on the third call");
        assert_eq!(value, 3);
    }
}
