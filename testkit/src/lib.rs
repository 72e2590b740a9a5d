//! What every Thinline test stands on, written once.
//!
//! The store's conformance suite, the host's and the directory's
//! integration tests and the end-to-end harness all start processes, wait
//! for conditions, talk HTTP, break network paths, need a PostgreSQL
//! database of their own and a certificate to serve TLS with. Each used to
//! carry its own copy of those, and the copies drifted (only one of two
//! process wrappers refused to signal pid 1). This crate is the one copy:
//! a dev-only dependency of every crate's tests, depending on no crate of
//! the project, so any of them can use it without a cycle.
//!
//! - [`process`]: a child process with its output kept, its ready line
//!   read, signals sent to one checked pid, killed on drop.
//! - [`proxy`]: a TCP proxy that cuts, refuses, black-holes, stalls and
//!   retargets connections, for outages without `tc netem`.
//! - [`http`]: an HTTP/1.1 client over TCP or any stream (TLS), with
//!   headers, cookies, bodies and the raw bytes of what came back.
//! - [`pg`]: a fresh PostgreSQL database per test, dropped afterwards.
//! - [`wait_until`]: waiting on a predicate with a deadline, saying what it
//!   last saw when the deadline passes.
//! - [`cert`]: a self-signed certificate in PEM files.

pub mod cert;
pub mod http;
pub mod pg;
pub mod process;
pub mod proxy;
mod wait;

pub use wait::{POLL_INTERVAL, wait_until};

/// A marker unique within this machine's recent history, for telling one
/// test's output (or database, or account) from another's.
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

#[cfg(test)]
mod tests {
    #[test]
    fn markers_differ_and_keep_their_prefix() {
        let a = super::unique_marker("m");
        let b = super::unique_marker("m");
        assert_ne!(a, b);
        assert!(a.starts_with('m') && b.starts_with('m'));
    }
}
