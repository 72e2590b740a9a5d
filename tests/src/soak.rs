//! The soak: many users typing and flooding for a while on one cluster,
//! then nothing; what the processes hold afterwards, as the kernel counts
//! it (DESIGN.md: memory after load ends is back within 20 % of the idle
//! footprint; no descriptor, PTY or process outlives its session).
//!
//! `cargo xtask bench soak` runs it for half an hour and prints the
//! figures; the CI test runs a few minutes of it and checks them. Both go
//! through [`run`], so the test checks what the benchmark measures.
//!
//! The load is what people do: ten accounts sign in (and some passwords
//! are mistyped, which costs the directory an argon2 check each), each
//! starts sessions through the directory, and every session types short
//! commands and now and then floods its screen. Then every session's user
//! types `exit`, the sockets close, and the cluster is left alone.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use protocol::Size;
use serde_json::json;
use tokio::sync::Mutex;
use web_terminal::connection::{ClosedBecause, Phase};

use crate::cluster::{Backend, Cluster, ClusterOptions};
use crate::http::{Request, form_encode};
use crate::page::NativePage;
use crate::{tickets, wait_until};

/// What one soak does.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    pub backend: Backend,
    /// Sessions typing at once, spread over `users` accounts.
    pub sessions: usize,
    pub users: usize,
    /// How long the load lasts.
    pub load_for: Duration,
    /// Longest the processes may take to give memory back once idle.
    pub settle_within: Duration,
}

impl SoakOptions {
    pub fn new(backend: Backend, load_for: Duration) -> SoakOptions {
        SoakOptions {
            backend,
            sessions: 100,
            users: 10,
            load_for,
            settle_within: Duration::from_secs(60),
        }
    }
}

/// What the kernel says of one process at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: usize,
    /// Of those, PTY masters (`/dev/ptmx`).
    pub ptys: usize,
    /// Live child processes (sessions' programs, in a host).
    pub children: usize,
    /// Children that exited and were never reaped.
    pub zombies: usize,
}

/// Reads `/proc/PID`; `None` if the process is gone.
pub fn read_process(pid: u32) -> Option<Reading> {
    let proc = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())?;
    let mut fds = 0;
    let mut ptys = 0;
    for entry in std::fs::read_dir(proc.join("fd")).ok()?.flatten() {
        fds += 1;
        if std::fs::read_link(entry.path()).is_ok_and(|target| target == Path::new("/dev/ptmx")) {
            ptys += 1;
        }
    }
    let (children, zombies) = children_of(pid);
    Some(Reading {
        rss_kib,
        fds,
        ptys,
        children,
        zombies,
    })
}

/// Live and zombie children of `pid`, from every process's `stat`.
fn children_of(pid: u32) -> (usize, usize) {
    let mut children = 0;
    let mut zombies = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parens.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else {
            continue;
        };
        if ppid.parse() == Ok(pid) {
            if state == "Z" {
                zombies += 1;
            } else {
                children += 1;
            }
        }
    }
    (children, zombies)
}

/// One process's readings over the soak.
#[derive(Clone, Debug)]
pub struct ProcessReport {
    pub name: String,
    pub before: Reading,
    /// The highest RSS seen while the load ran.
    pub peak_rss_kib: u64,
    pub after: Reading,
    /// Bytes the heap had handed out and not taken back (jemalloc's
    /// `stats.allocated`, from a host's `/metrics`), before and after.
    pub heap_before: Option<u64>,
    pub heap_after: Option<u64>,
}

impl ProcessReport {
    /// RSS after over RSS before.
    pub fn rss_ratio(&self) -> f64 {
        self.after.rss_kib as f64 / self.before.rss_kib.max(1) as f64
    }

    /// The most RSS the process may keep: 20 % above its idle footprint,
    /// plus `PEAK_KEPT` of what the load added at its peak. That share is
    /// the allocator's own bookkeeping: jemalloc keeps the metadata of
    /// every page it ever mapped, about 1 % of the peak, and nothing can
    /// return it. A process that does not give memory back (glibc's malloc
    /// kept a host at 95 % of its peak) fails by far.
    pub fn rss_allowed_kib(&self) -> u64 {
        let load = self.peak_rss_kib.saturating_sub(self.before.rss_kib);
        (self.before.rss_kib as f64 * RSS_SLACK + load as f64 * PEAK_KEPT) as u64
    }
}

/// The whole soak's figures.
#[derive(Clone, Debug)]
pub struct SoakReport {
    pub backend: Backend,
    pub processes: Vec<ProcessReport>,
    /// Commands that ran and echoed, floods that ended at a prompt.
    pub commands: u64,
    pub floods: u64,
    /// New sessions a host sent back to the directory (1001: it had just
    /// lost its lease on a busy store), placed again as the page would.
    pub placements_retried: u64,
    /// How long after the load ended the memory figures were read.
    pub settled_after: Duration,
}

/// Descriptors a process may hold after the soak beyond what it held
/// before: pooled store connections may differ by a few. A leak of
/// anything per session shows in the hundreds.
pub const FD_SLACK: usize = 12;
/// How far above its idle footprint a process may stay (DESIGN.md).
pub const RSS_SLACK: f64 = 1.20;
/// The share of the peak's growth a process may keep on top: the
/// allocator's page metadata (see [`ProcessReport::rss_allowed_kib`]).
pub const PEAK_KEPT: f64 = 0.03;
/// Live heap a process may hold after the soak beyond what it held
/// before: anything of the sessions left behind is a leak.
pub const HEAP_SLACK: u64 = 1 << 20;

impl SoakReport {
    /// What the soak promises, checked: memory back near idle, nothing of
    /// any session left behind.
    pub fn check(&self) -> Result<()> {
        self.check_memory()?;
        ensure!(self.commands > 0 && self.floods > 0, "the load never ran");
        Ok(())
    }

    /// Everything but whether the load ran.
    fn check_memory(&self) -> Result<()> {
        for p in &self.processes {
            ensure!(
                p.after.rss_kib <= p.rss_allowed_kib(),
                "{} holds {} KiB after the soak, {:.0} % of its {} KiB before (peak {} KiB, \
                 allowed {} KiB): memory was not given back",
                p.name,
                p.after.rss_kib,
                p.rss_ratio() * 100.0,
                p.before.rss_kib,
                p.peak_rss_kib,
                p.rss_allowed_kib()
            );
            if let (Some(before), Some(after)) = (p.heap_before, p.heap_after) {
                ensure!(
                    after <= before + HEAP_SLACK,
                    "{} has {after} bytes of live heap after the soak, {before} before: a leak",
                    p.name
                );
            }
            ensure!(
                p.after.fds <= p.before.fds + FD_SLACK,
                "{} holds {} descriptors after the soak, {} before: a leak",
                p.name,
                p.after.fds,
                p.before.fds
            );
            ensure!(
                p.after.ptys == 0 && p.after.children == 0 && p.after.zombies == 0,
                "{} still holds {} PTYs, {} children and {} zombies after every session ended",
                p.name,
                p.after.ptys,
                p.after.children,
                p.after.zombies
            );
        }
        Ok(())
    }

    /// The table `cargo xtask bench soak` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "soak on {:?}: {} commands and {} floods; {} placements retried; read {:.1} s after the load\n",
            self.backend,
            self.commands,
            self.floods,
            self.placements_retried,
            self.settled_after.as_secs_f64()
        );
        out.push_str(
            "  process      RSS before   peak       after    after/before  allowed    live heap before→after  fds before→after  ptys  children  zombies\n",
        );
        let mb = |kib: u64| kib as f64 / 1024.0;
        let heap = |bytes: Option<u64>| {
            bytes.map_or("-".to_owned(), |b| format!("{:.1}", b as f64 / 1048576.0))
        };
        for p in &self.processes {
            out.push_str(&format!(
                "  {:<11} {:>7.1} MB {:>7.1} MB {:>7.1} MB   {:>5.0} %   {:>6.1} MB   {:>5} → {:<5} MB       {:>5} → {:<5}      {:>3}   {:>5}   {:>5}\n",
                p.name,
                mb(p.before.rss_kib),
                mb(p.peak_rss_kib),
                mb(p.after.rss_kib),
                p.rss_ratio() * 100.0,
                mb(p.rss_allowed_kib()),
                heap(p.heap_before),
                heap(p.heap_after),
                p.before.fds,
                p.after.fds,
                p.after.ptys,
                p.after.children,
                p.after.zombies,
            ));
        }
        out
    }
}

const SIZE: Size = Size {
    cols: 100,
    rows: 30,
};
/// Quiet after the load before memory is judged: jemalloc's default
/// dirty-page decay (10 s) and a margin.
const IDLE_BEFORE_READING: Duration = Duration::from_secs(15);
/// Between two sessions' starts.
const ARRIVAL_GAP: Duration = Duration::from_millis(50);
/// How long one command may take under the load before the soak fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs one soak on a fresh cluster (one directory, two hosts).
pub async fn run(options: SoakOptions) -> Result<SoakReport> {
    let mut cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        directories: 1,
        backend: options.backend,
        // Every soak user connects from loopback, as behind a proxy.
        host_args: vec!["--max-connections-per-address".into(), "1000".into()],
        ..ClusterOptions::default()
    })
    .await?;
    let outcome = soak(&mut cluster, &options).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    outcome
}

async fn soak(cluster: &mut Cluster, options: &SoakOptions) -> Result<SoakReport> {
    let users: Vec<String> = (0..options.users).map(|n| format!("soak{n}")).collect();
    for user in &users {
        tickets::ensure_account(cluster.store.as_ref(), user, tickets::TEST_PASSWORD).await?;
    }
    // Warm up every path once, so the baseline is a process that has served
    // (pools open, code paged in), not one that has never been asked.
    let warm = cluster.open_page(SIZE);
    warm.wait_prompt(PATIENCE).await?;
    end_session(&warm).await?;
    wait_sessions_gone(cluster).await?;
    let processes = cluster_pids(cluster);
    let before = read_all(&processes)?;
    let heap_before = live_heaps(cluster).await;
    let cookies = sign_in_all(cluster, &users).await?;
    let retried = AtomicU64::new(0);
    let commands = Arc::new(AtomicU64::new(0));
    let floods = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(Mutex::new(
        before.iter().map(|r| r.rss_kib).collect::<Vec<_>>(),
    ));
    let sampling = tokio::spawn(sample_peaks(processes.clone(), peak.clone()));
    let wrong_passwords = tokio::spawn(mistype_passwords(
        cluster.directories[0].port,
        cluster.page_origin(),
        users.clone(),
        options.load_for,
    ));
    let deadline = Instant::now() + options.load_for;
    let mut sessions = Vec::new();
    for n in 0..options.sessions {
        let cookie = cookies[n % cookies.len()].clone();
        let client = place(cluster, &cookie, &retried)
            .await
            .with_context(|| format!("starting session {n}"))?;
        let (commands, floods) = (commands.clone(), floods.clone());
        // People arrive over seconds, not all in one: placement learns a
        // host's load from its renewals, once a second.
        tokio::time::sleep(ARRIVAL_GAP).await;
        sessions.push(tokio::spawn(async move {
            type_and_flood(client, n, deadline, &commands, &floods).await
        }));
    }
    for (n, session) in sessions.into_iter().enumerate() {
        session
            .await
            .context("a session task panicked")?
            .with_context(|| format!("session {n}"))?;
    }
    wrong_passwords
        .await
        .context("the sign-in task panicked")??;
    let load_ended = Instant::now();
    wait_sessions_gone(cluster).await?;

    sampling.abort();
    let peak = peak.lock().await.clone();
    let report_at = |after: &[Reading], heap_after: &[Option<u64>]| SoakReport {
        backend: options.backend,
        processes: processes
            .iter()
            .enumerate()
            .map(|(i, (name, _))| ProcessReport {
                name: name.clone(),
                before: before[i],
                peak_rss_kib: peak[i],
                after: after[i],
                heap_before: heap_before.get(i).copied().flatten(),
                heap_after: heap_after.get(i).copied().flatten(),
            })
            .collect(),
        commands: 0,
        floods: 0,
        placements_retried: 0,
        settled_after: Duration::ZERO,
    };
    // Idle, as a server is between bursts: jemalloc purges freed pages
    // over its ten-second decay, so memory is read once that much quiet
    // has passed (and then as soon as the check holds), not while it is
    // still on its way back.
    tokio::time::sleep(IDLE_BEFORE_READING).await;
    let settled = wait_until(
        options.settle_within,
        "memory to come back near the idle footprint",
        || async {
            let now = read_all(&processes)?;
            let heaps = live_heaps(cluster).await;
            Ok(match report_at(&now, &heaps).check_memory() {
                Ok(()) => Ok((now, heaps)),
                Err(error) => Err(format!("{error:#}")),
            })
        },
    )
    .await;
    // Whether or not it settled, report what was there.
    let (after, heap_after) = match settled {
        Ok(read) => read,
        Err(_) => (read_all(&processes)?, live_heaps(cluster).await),
    };
    let report = SoakReport {
        processes: report_at(&after, &heap_after).processes,
        backend: options.backend,
        commands: commands.load(Ordering::Relaxed),
        floods: floods.load(Ordering::Relaxed),
        placements_retried: retried.load(Ordering::Relaxed),
        settled_after: load_ended.elapsed(),
    };
    Ok(report)
}

/// Each process's live heap (hosts report it in `/metrics`; directories
/// do not, and read `None`), in the order of [`cluster_pids`].
async fn live_heaps(cluster: &Cluster) -> Vec<Option<u64>> {
    let mut heaps: Vec<Option<u64>> = cluster.directories.iter().map(|_| None).collect();
    for host in &cluster.hosts {
        let metrics = crate::http::get(host.server.port, "/metrics").await;
        heaps.push(metrics.ok().and_then(|m| {
            m.body
                .lines()
                .find_map(|l| l.strip_prefix("thinline_heap_allocated_bytes "))
                .and_then(|n| n.trim().parse().ok())
        }));
    }
    heaps
}

/// The cluster's processes by name.
fn cluster_pids(cluster: &Cluster) -> Vec<(String, u32)> {
    cluster
        .directories
        .iter()
        .map(|d| (d.name.clone(), d.pid()))
        .chain(cluster.hosts.iter().map(|h| (h.id.clone(), h.server.pid())))
        .collect()
}

fn read_all(processes: &[(String, u32)]) -> Result<Vec<Reading>> {
    processes
        .iter()
        .map(|(name, pid)| {
            read_process(*pid).with_context(|| format!("{name} (pid {pid}) is gone"))
        })
        .collect()
}

async fn sample_peaks(processes: Vec<(String, u32)>, peak: Arc<Mutex<Vec<u64>>>) {
    loop {
        if let Ok(now) = read_all(&processes) {
            let mut peak = peak.lock().await;
            for (highest, reading) in peak.iter_mut().zip(now) {
                *highest = (*highest).max(reading.rss_kib);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A new session where the directory places it, in a page of the
/// shipping client, once it is live. A host that refuses it with 1001
/// (draining, or without a lease for a moment) sends the page back to the
/// directory, which places it again: each extra socket the page opened to
/// get there is counted.
async fn place(cluster: &Cluster, cookie: &str, retried: &AtomicU64) -> Result<NativePage> {
    let page = cluster.open_page_as(cookie, SIZE);
    page.wait_live(PATIENCE).await?;
    let extra = page.with_page(|p| p.sockets_opened().saturating_sub(1));
    retried.fetch_add(extra, Ordering::Relaxed);
    Ok(page)
}

/// Each user signs in once, like a browser.
async fn sign_in_all(cluster: &Cluster, users: &[String]) -> Result<Vec<String>> {
    let mut cookies = Vec::new();
    for user in users {
        cookies.push(cluster.sign_in(user, tickets::TEST_PASSWORD).await?);
    }
    Ok(cookies)
}

/// A wrong password every few seconds through the load: each costs the
/// directory one argon2 check (19 MiB), the allocation that once stayed
/// resident. Within the sign-in rate limits, so each is really checked.
async fn mistype_passwords(
    port: u16,
    origin: String,
    users: Vec<String>,
    load_for: Duration,
) -> Result<()> {
    let deadline = Instant::now() + load_for;
    let mut n = 0usize;
    while Instant::now() < deadline {
        let user = &users[n % users.len()];
        let form = format!("user={}&password=not-the-password-{n}", form_encode(user));
        let answer = Request::local("POST", port, "/login")
            .header("Origin", &origin)
            .form(&form)
            .send()
            .await?;
        ensure!(
            matches!(answer.status, 401 | 429),
            "a wrong password answered {}: {}",
            answer.status,
            answer.body
        );
        n += 1;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

/// One user at one terminal: a command about every second, a flood of
/// about 100 KB every ten, until `deadline`; then `exit`.
async fn type_and_flood(
    page: NativePage,
    n: usize,
    deadline: Instant,
    commands: &AtomicU64,
    floods: &AtomicU64,
) -> Result<()> {
    page.wait_prompt(PATIENCE).await?;
    // Spread the sessions over the second, so they do not type in lockstep.
    tokio::time::sleep(Duration::from_millis((n as u64 * 37) % 1000)).await;
    let mut round = 0u64;
    while Instant::now() < deadline {
        round += 1;
        if round.is_multiple_of(10) {
            // The shell computes the last line, so the echoed command line
            // cannot match it.
            page.run_expecting(
                &format!("seq 1 20000; echo flood-{n}-{round}-$((6*7))"),
                &format!("flood-{n}-{round}-42"),
                PATIENCE,
            )
            .await?;
            floods.fetch_add(1, Ordering::Relaxed);
        } else {
            let expected = format!("tick-{n}-{round}-{}", round * 2);
            page.run_expecting(
                &format!("echo tick-{n}-{round}-$(({round}*2))"),
                &expected,
                PATIENCE,
            )
            .await?;
            commands.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    end_session(&page).await
}

/// Types `exit` and waits for the page to say the session is over. The
/// host says so with close 4004; a page that lost its socket just then
/// (a heartbeat missed on a loaded machine) hears it from the directory
/// instead, with no close of its own, so the page's phase is what counts.
async fn end_session(page: &NativePage) -> Result<()> {
    let typed = tokio::time::Instant::now();
    page.type_str("exit\r")?;
    page.wait_for(PATIENCE, "the page to say the session ended", |p| {
        p.phase() == Phase::Closed(ClosedBecause::SessionEnded)
            || p.close_since(typed)
                .is_some_and(|code| code != 4004 && code != 1000)
    })
    .await?;
    match page.with_page(|p| p.close_since(typed)) {
        Some(code) if code != 4004 && code != 1000 => {
            bail!("ending a session closed it with {code}")
        }
        _ => Ok(()),
    }
}

/// Waits until no host runs a session (by their own `/healthz`).
async fn wait_sessions_gone(cluster: &Cluster) -> Result<()> {
    let ports: Vec<u16> = cluster.hosts.iter().map(|h| h.server.port).collect();
    wait_until(PATIENCE, "every session to end", || {
        let ports = ports.clone();
        async move {
            let mut running = 0;
            for port in &ports {
                let health = crate::http::get(*port, "/healthz").await?;
                let body: serde_json::Value =
                    serde_json::from_str(&health.body).unwrap_or(json!({}));
                running += body["sessions"].as_u64().unwrap_or(1);
            }
            Ok(if running == 0 {
                Ok(())
            } else {
                Err(format!("{running} sessions still run"))
            })
        }
    })
    .await
}
