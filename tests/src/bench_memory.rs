//! `cargo xtask bench memory`: what an idle session costs a host.
//!
//! DESIGN.md's target is host memory per idle session ≤ 100 KB besides
//! the shell. Each round starts a fresh release host (sandboxed, as users
//! run it), reads its memory, opens N idle sessions (attached, at the
//! prompt, 80×24), reads again, closes the clients (the sessions run on,
//! detached) and reads a third time. Per session it reports:
//!
//! - the host's growth: `VmRSS`, and `smaps_rollup`'s Rss, Pss and private
//!   bytes, and jemalloc's live heap (`thinline_heap_allocated_bytes`), so
//!   the heap can be told apart from stacks, allocator slack and pages
//!   touched once;
//! - the sandbox's own processes (`bwrap`), by PSS, since their pages are
//!   shared between sessions, and how many there are per session;
//! - the shell (bash) by PSS, reported apart ("besides the shell");
//! - host growth + sandbox, the figure the target is about.
//!
//! A small N carries the host's first-session costs (an arena touched, a
//! thread's cache warmed) spread over few sessions; a large N shows the
//! marginal cost. Where the bytes go inside the host is printed by
//! `cargo test -p host-server idle_session_heap -- --nocapture`, which
//! measures the same types a session holds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use protocol::Size;

use crate::Figure;
use crate::client::Client;
use crate::host::{HostOptions, HostProcess};
use crate::http;
use crate::screen_text::ScreenText;
use crate::tickets::new_session_id;

/// Session counts measured, each on a fresh host.
const ROUNDS: [usize; 2] = [20, 200];
/// Sessions connecting at once while the host fills up.
pub const BATCH: usize = 25;
/// The target: host growth plus sandbox per idle session, in bytes.
const TARGET_BYTES: u64 = 100 * 1024;
const PROMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long readings may take to settle after the sessions open or detach.
const SETTLE: Duration = Duration::from_secs(15);
/// jemalloc's dirty decay (its default `dirty_decay_ms`): what the closed
/// connections freed goes back to the kernel over this long, and only then
/// shows in the host's RSS.
const ALLOCATOR_DECAY: Duration = Duration::from_secs(10);

/// One process's memory, as the kernel and (for the host) its allocator
/// count it, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryReading {
    pub vm_rss: u64,
    pub rss: u64,
    pub pss: u64,
    /// Private_Clean + Private_Dirty: pages no other process maps.
    pub private: u64,
    /// jemalloc's live bytes, from the host's `/metrics`.
    pub heap: u64,
}

/// The host's resident memory in bytes, from procfs.
pub fn resident_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    kib_field(&status, "VmRSS:")
        .map(|kib| kib * 1024)
        .context("no VmRSS in /proc/PID/status")
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `smaps_rollup` fields in KiB, by name without the colon.
fn smaps_rollup(pid: u32) -> Option<HashMap<String, u64>> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(
        rollup
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.split_once(':')?;
                let kib = rest.split_whitespace().next()?.parse().ok()?;
                Some((name.to_string(), kib))
            })
            .collect(),
    )
}

pub fn pss_kib(pid: u32) -> Option<u64> {
    smaps_rollup(pid)?.get("Pss").copied()
}

/// Reads the host's memory: procfs, then its allocator through `/metrics`.
pub async fn read_host(host: &HostProcess) -> Result<MemoryReading> {
    let pid = host.pid();
    let rollup = smaps_rollup(pid).context("reading the host's smaps_rollup")?;
    let field = |name: &str| rollup.get(name).copied().unwrap_or(0) * 1024;
    let metrics = http::metrics(host.port).await?;
    Ok(MemoryReading {
        vm_rss: resident_bytes(pid)?,
        rss: field("Rss"),
        pss: field("Pss"),
        private: field("Private_Clean") + field("Private_Dirty"),
        heap: metrics
            .get("thinline_heap_allocated_bytes")
            .copied()
            .unwrap_or(0.0) as u64,
    })
}

/// What the kernel charges a host's descendants (proportional set size,
/// so a page shared by a thousand shells counts a thousandth each), split
/// into the sandbox's own processes (`bwrap`) and the programs they run.
#[derive(Debug, Default)]
pub struct Descendants {
    pub sandbox_kib: u64,
    pub sandbox_processes: usize,
    /// Of the sandbox's processes, those whose parent is one too: bwrap's
    /// PID 1 of a new PID namespace, under the one that set it up.
    pub sandbox_init_kib: u64,
    pub program_kib: u64,
    pub programs: usize,
}

pub fn descendants(root: u32) -> Result<Descendants> {
    let mut children: HashMap<u32, Vec<(u32, String)>> = Default::default();
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let Some(pid) = entry
            .ok()
            .and_then(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        else {
            continue;
        };
        // A process may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let Some(ppid) = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        children.entry(ppid).or_default().push((pid, comm));
    }
    let mut found = Descendants::default();
    let mut queue = vec![(root, false)];
    while let Some((parent, parent_is_bwrap)) = queue.pop() {
        for (pid, comm) in children.remove(&parent).unwrap_or_default() {
            queue.push((pid, comm == "bwrap"));
            let Some(pss) = pss_kib(pid) else { continue };
            if comm == "bwrap" {
                found.sandbox_kib += pss;
                found.sandbox_processes += 1;
                if parent_is_bwrap {
                    found.sandbox_init_kib += pss;
                }
            } else {
                found.program_kib += pss;
                found.programs += 1;
            }
        }
    }
    Ok(found)
}

/// Reads the host until its resident size stops moving (two equal
/// readings 300 ms apart), at most `SETTLE`.
async fn settled(host: &HostProcess) -> Result<MemoryReading> {
    let deadline = Instant::now() + SETTLE;
    let mut last = read_host(host).await?;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read_host(host).await?;
        if now.vm_rss == last.vm_rss {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Opens `n` sessions at 80×24 and waits for each one's prompt.
/// Opens `n` sessions on `host`, `BATCH` at a time, each at its prompt
/// (80x24); `opened` hears how many are open after each batch.
pub async fn open_idle(
    host: &HostProcess,
    n: usize,
    opened: &dyn Fn(usize),
) -> Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let batch = BATCH.min(n - clients.len());
        let mut tasks = Vec::new();
        for _ in 0..batch {
            let session = new_session_id();
            let ticket = host.ticket(session, 1).await;
            let (ws_url, origin) = (host.ws_url(), host.origin());
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect_with_origin(&ws_url, &origin).await?;
                client
                    .handshake(&ticket, session, Size { cols: 80, rows: 24 })
                    .await?;
                client
                    .wait_for(PROMPT_TIMEOUT, "the prompt", |s| s.at_prompt())
                    .await?;
                anyhow::Ok(client)
            }));
        }
        for task in tasks {
            clients.push(task.await.context("session task panicked")??);
        }
        opened(clients.len());
    }
    Ok(clients)
}

fn kb(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

/// Growth per session of each field, in KiB.
fn per_session(before: &MemoryReading, after: &MemoryReading, n: usize) -> String {
    let per = |a: u64, b: u64| kb(b.saturating_sub(a)) / n as f64;
    format!(
        "VmRSS {:.1}, Rss {:.1}, Pss {:.1}, private {:.1}, heap {:.1} KB",
        per(before.vm_rss, after.vm_rss),
        per(before.rss, after.rss),
        per(before.pss, after.pss),
        per(before.private, after.private),
        per(before.heap, after.heap),
    )
}

pub async fn memory(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    for n in ROUNDS {
        let host = HostProcess::start(HostOptions::bash().for_benchmarks())?;
        let mode = isolation_of(&host).await?;
        progress(&format!(
            "memory: fresh host (pid {}), {n} idle sessions at 80x24 ({mode})",
            host.pid()
        ));
        let before = settled(&host).await?;
        let clients = open_idle(&host, n, &|_| {}).await?;
        let attached = settled(&host).await?;
        let processes = descendants(host.pid())?;
        progress(&format!("memory: the host's descendants: {processes:?}"));
        for client in clients {
            client.close().await;
        }
        tokio::time::sleep(ALLOCATOR_DECAY).await;
        let detached = settled(&host).await?;
        let still = descendants(host.pid())?;
        let sessions = n as u64;
        let growth = |after: &MemoryReading| after.vm_rss.saturating_sub(before.vm_rss) / sessions;
        let sandbox = processes.sandbox_kib * 1024 / sessions;
        let shell = processes.program_kib * 1024 / sessions;
        figures.push(Figure {
            what: format!("N={n}: host growth per session, attached"),
            measured: per_session(&before, &attached, n),
            target: "none (reported)",
            met: None,
        });
        figures.push(Figure {
            what: format!("N={n}: host growth per session, detached"),
            measured: per_session(&before, &detached, n),
            target: "none (reported)",
            met: None,
        });
        figures.push(Figure {
            what: format!("N={n}: sandbox per session (bwrap, PSS)"),
            measured: format!(
                "{:.1} KB in {:.1} processes ({:.1} KB of it PID 1 inside)",
                kb(sandbox),
                processes.sandbox_processes as f64 / n as f64,
                kb(processes.sandbox_init_kib * 1024 / sessions)
            ),
            target: "none (reported)",
            met: None,
        });
        figures.push(Figure {
            what: format!("N={n}: shell per session (bash, PSS)"),
            measured: format!(
                "{:.1} KB in {:.1} processes",
                kb(shell),
                processes.programs as f64 / n as f64
            ),
            target: "none (besides the shell)",
            met: None,
        });
        for (state, reading, procs) in [
            ("attached", &attached, &processes),
            ("detached", &detached, &still),
        ] {
            let total = growth(reading) + procs.sandbox_kib * 1024 / sessions;
            figures.push(Figure {
                what: format!("N={n}: host RSS + sandbox per session, {state}"),
                measured: format!(
                    "{:.1} KB ({:.1} host + {:.1} bwrap)",
                    kb(total),
                    kb(growth(reading)),
                    kb(procs.sandbox_kib * 1024 / sessions)
                ),
                target: "<= 100 KB besides the shell",
                met: Some(total <= TARGET_BYTES),
            });
        }
    }
    Ok(())
}

/// How the host isolates sessions, as its `/healthz` says: `per-user,
/// cgroup1 (pids, memory, cpu)` and the like. Every figure names it, so a
/// figure measured without the sandbox is never mistaken for one with it.
pub async fn isolation_of(host: &HostProcess) -> Result<String> {
    let health = http::get(host.port, "/healthz").await?;
    let health: serde_json::Value =
        serde_json::from_str(&health.body).context("/healthz is not JSON")?;
    let field = |name: &str| health[name].as_str().unwrap_or("unknown").to_string();
    Ok(format!("{}, {}", field("isolation"), field("limits")))
}
