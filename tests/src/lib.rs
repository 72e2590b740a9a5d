//! The harness behind Thinline's end-to-end tests and benchmarks.
//!
//! Everything here talks to real processes over real sockets: a
//! `host-server` started as a child process ([`host`]), whole clusters of
//! directories and hosts over one store ([`cluster`]), the shipping
//! client's core run natively ([`page`]), a raw protocol client for a lone
//! host and for misbehaving on purpose ([`client`]), and headless Chromium
//! driven over WebDriver ([`browser`]). Unit tests inside each crate cover
//! logic; this crate proves that the pieces, built as users get them, work
//! together.
//!
//! What every crate's tests share (processes, the fault proxy, the HTTP
//! client, PostgreSQL databases, waiting on a predicate) is the `testkit`
//! crate, re-exported here where tests name it.

pub mod bench_auth;
pub mod bench_echo;
pub mod bench_failover;
pub mod bench_files;
pub mod bench_memory;
pub mod bench_page;
pub mod bench_persist;
pub mod bench_recording;
pub mod browser;
pub mod client;
pub mod cluster;
pub mod containers;
pub mod echo;
pub mod files;
pub mod flood;
pub mod host;
pub mod page;
pub mod paths;
pub mod screen_text;
pub mod soak;
pub mod tickets;

use std::time::Duration;

pub use testkit::{http, pg, proxy, unique_marker, wait_until};

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
}

/// One line of the benchmark table: what was measured, against which
/// target. Every benchmark module fills these and the driver prints them.
#[derive(Debug)]
pub struct Figure {
    pub what: String,
    pub measured: String,
    pub target: &'static str,
    /// `Some(true)` when the target is met, `None` when there is none to meet.
    pub met: Option<bool>,
}
