//! Counters the benchmarks and operators read from `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pty_bytes_read: AtomicU64,
    frames_sent: AtomicU64,
    frame_bytes_sent: AtomicU64,
    messages_sent: AtomicU64,
    connections_refused: AtomicU64,
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
        ];
        for (name, value) in counters {
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}
