//! Counters the benchmarks and operators read from `/metrics`.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Persistence-lag samples kept for the quantiles.
const LAG_SAMPLES: usize = 4096;

#[derive(Debug, Default)]
pub struct Metrics {
    pty_bytes_read: AtomicU64,
    frames_sent: AtomicU64,
    frame_bytes_sent: AtomicU64,
    messages_sent: AtomicU64,
    connections_refused: AtomicU64,
    /// WebSockets admitted to a session (each reconnect counts).
    connections_admitted: AtomicU64,
    store_writes: AtomicU64,
    /// Sessions whose persister is currently failing to write.
    persisters_failing: AtomicI64,
    /// Recent persistence lags in microseconds, newest last.
    persist_lag_us: Mutex<VecDeque<u64>>,
}

impl Metrics {
    pub fn pty_bytes_read(&self, n: usize) {
        self.pty_bytes_read.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn frame_sent(&self) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn message_sent(&self, bytes: usize) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.frame_bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_admitted(&self) {
        self.connections_admitted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn store_write(&self) {
        self.store_writes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn persisted(&self, lag: Duration) {
        let mut lags = self
            .persist_lag_us
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if lags.len() == LAG_SAMPLES {
            lags.pop_front();
        }
        lags.push_back(lag.as_micros() as u64);
    }

    pub fn persister_failing(&self, failing: bool) {
        self.persisters_failing
            .fetch_add(if failing { 1 } else { -1 }, Ordering::Relaxed);
    }

    /// True while any session cannot reach the store.
    pub fn degraded(&self) -> bool {
        self.persisters_failing.load(Ordering::Relaxed) > 0
    }

    fn lag_quantile_ms(&self, q: f64) -> f64 {
        let lags = self
            .persist_lag_us
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<u64> = lags.iter().copied().collect();
        drop(lags);
        if sorted.is_empty() {
            return 0.0;
        }
        sorted.sort_unstable();
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[index] as f64 / 1000.0
    }

    /// Plain `name value` lines, one per counter.
    pub fn render(&self, sessions: usize) -> String {
        let mut out = String::new();
        let counters = [
            ("thinline_sessions", sessions as u64),
            (
                "thinline_pty_bytes_read_total",
                self.pty_bytes_read.load(Ordering::Relaxed),
            ),
            (
                "thinline_frames_sent_total",
                self.frames_sent.load(Ordering::Relaxed),
            ),
            (
                "thinline_frame_bytes_sent_total",
                self.frame_bytes_sent.load(Ordering::Relaxed),
            ),
            (
                "thinline_messages_sent_total",
                self.messages_sent.load(Ordering::Relaxed),
            ),
            (
                "thinline_connections_refused_total",
                self.connections_refused.load(Ordering::Relaxed),
            ),
            (
                "thinline_connections_total",
                self.connections_admitted.load(Ordering::Relaxed),
            ),
        ];
        for (name, value) in counters {
            let _ = writeln!(out, "{name} {value}");
        }
        let _ = writeln!(
            out,
            "thinline_store_writes_total {}",
            self.store_writes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "thinline_persisters_failing {}",
            self.persisters_failing.load(Ordering::Relaxed)
        );
        if let Some(heap) = HeapStats::read() {
            let _ = writeln!(out, "thinline_heap_allocated_bytes {}", heap.allocated);
            let _ = writeln!(out, "thinline_heap_resident_bytes {}", heap.resident);
            let _ = writeln!(out, "thinline_heap_metadata_bytes {}", heap.metadata);
            let _ = writeln!(out, "thinline_heap_retained_bytes {}", heap.retained);
        }
        for (label, q) in [("0.5", 0.5), ("0.99", 0.99)] {
            let _ = writeln!(
                out,
                "thinline_persist_lag_ms{{quantile=\"{label}\"}} {:.3}",
                self.lag_quantile_ms(q)
            );
        }
        out
    }
}

/// The allocator's own view of the heap (jemalloc's `stats.*`), next to
/// what the kernel counts: `resident` far above `allocated` is memory the
/// allocator holds but does not use.
#[derive(Clone, Copy, Debug)]
pub struct HeapStats {
    /// Bytes handed out to the program.
    pub allocated: usize,
    /// Bytes in physically resident pages the allocator maps.
    pub resident: usize,
    /// Bytes of the allocator's own bookkeeping.
    pub metadata: usize,
    /// Bytes of address space kept for reuse but not resident.
    pub retained: usize,
}

impl HeapStats {
    /// `None` if the process does not run on jemalloc.
    pub fn read() -> Option<HeapStats> {
        use tikv_jemalloc_ctl::{epoch, stats};
        epoch::advance().ok()?;
        Some(HeapStats {
            allocated: stats::allocated::read().ok()?,
            resident: stats::resident::read().ok()?,
            metadata: stats::metadata::read().ok()?,
            retained: stats::retained::read().ok()?,
        })
    }
}
