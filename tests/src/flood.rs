//! A flood of wrong passwords against a directory, as a botnet sends it:
//! every attempt from another address (through `--trusted-proxy` and
//! `X-Forwarded-For`) and for another made-up user, so no rate limit
//! stops it and every attempt costs a password check. What it measures is
//! what the bounded password pool promises: answers stay 401, 429 or 503
//! (never another 5xx), and the directory's memory stays flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;

use crate::cluster::Cluster;
use crate::http::{Request, form_encode};

/// What a flood got back, and what it cost the directory.
#[derive(Clone, Debug, Default)]
pub struct Flood {
    pub attempts: usize,
    /// Checked and refused: wrong user or password.
    pub refused: usize,
    /// Rate limited.
    pub limited: usize,
    /// Every password thread busy, with `Retry-After`.
    pub busy: usize,
    /// 503 without `Retry-After`, any other 5xx, or no answer.
    pub broken: Vec<String>,
    pub elapsed: Duration,
    /// The directory's RSS before the flood and the most it reached
    /// during it (sampled every 10 ms), KiB.
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
}

impl Flood {
    /// Password checks answered per second.
    pub fn checks_per_second(&self) -> f64 {
        self.refused as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn rss_kib(pid: u32) -> u64 {
    crate::soak::read_process(pid).map_or(0, |reading| reading.rss_kib)
}

/// Sends `attempts` wrong-password sign-ins to the cluster's first
/// directory, `in_flight` at a time. The directory must trust 127.0.0.1
/// as a proxy (`--trusted-proxy 127.0.0.1`) for the addresses to vary.
pub async fn wrong_passwords(
    cluster: &Cluster,
    attempts: usize,
    in_flight: usize,
) -> Result<Flood> {
    let directory = &cluster.directories[0];
    let (port, pid) = (directory.port, directory.pid());
    let origin = cluster.page_origin();
    let rss_before_kib = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(rss_before_kib));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    let answers: Vec<Result<(u16, bool)>> = futures_util::stream::iter(0..attempts)
        .map(|n| {
            let origin = origin.clone();
            async move {
                let address = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                let form = format!(
                    "user={}&password={}",
                    form_encode(&format!("nobody{n}")),
                    form_encode("not the password")
                );
                let answer = Request::local("POST", port, "/login")
                    .header("Origin", &origin)
                    .header("X-Forwarded-For", &address)
                    .form(&form)
                    .send()
                    .await?;
                Ok((answer.status, answer.header("retry-after").is_some()))
            }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let mut flood = Flood {
        attempts,
        elapsed,
        rss_before_kib,
        rss_peak_kib: peak.load(Ordering::Relaxed).max(rss_kib(pid)),
        ..Flood::default()
    };
    for answer in answers {
        match answer {
            Ok((401, _)) => flood.refused += 1,
            Ok((429, _)) => flood.limited += 1,
            Ok((503, true)) => flood.busy += 1,
            Ok((status, retry)) => flood
                .broken
                .push(format!("{status} (Retry-After: {retry})")),
            Err(error) => flood.broken.push(format!("no answer: {error:#}")),
        }
    }
    Ok(flood)
}
