//! Limits per session: a cgroup of its own, so a fork bomb stops at its
//! pids limit, a memory hog is killed by its own memory limit (not the
//! host), sessions share the CPU evenly, and everything a session started,
//! `setsid` escapees included, is killed when it ends.
//!
//! Three ways to get there, best first, and the host says at start which
//! one it got (`Limiter::describe`):
//! - **cgroup v2** where the host's own cgroup is a delegated subtree (a
//!   systemd unit with `Delegate=yes`, a Kubernetes pod with a writable
//!   cgroupfs): the host moves itself into `host/` and puts each session
//!   in `sessions/<id>`, since v2 allows processes only in leaves.
//! - **cgroup v1** `pids`, `memory` and `cpu` hierarchies (what these
//!   machines have): `thinline-<host>/<id>` under the host's own cgroup in
//!   each hierarchy.
//! - **rlimits** as the last resort (`RLIMIT_NPROC`, `RLIMIT_AS`): weaker,
//!   per process or per uid rather than per session, and no CPU share.
//!
//! The session's program joins its cgroups between `fork` and `exec`
//! (`SessionCgroup::join_fds`), so nothing it starts is ever outside them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What one session may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads at once.
    pub pids: u64,
    /// Bytes of memory (resident, page cache included) before the kernel's
    /// OOM killer picks a process of this session.
    pub memory: u64,
    /// Relative CPU weight against the other sessions (cgroup v1
    /// `cpu.shares`; v2's `cpu.weight` is derived from it).
    pub cpu_shares: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            pids: 512,
            memory: 1 << 30,
            cpu_shares: 1024,
        }
    }
}

/// Parses sizes such as `512M`, `2G` or `1048576`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let number: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a size: use bytes or a K, M or G suffix, as in 512M")
    })?;
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use K, M or G")),
    };
    number
        .checked_mul(scale)
        .filter(|bytes| *bytes >= 16 << 20)
        .ok_or_else(|| format!("{text:?} is out of range: give at least 16M"))
}

#[derive(Debug)]
enum Kind {
    V2 { sessions: PathBuf },
    V1 { parents: Vec<(Controller, PathBuf)> },
    Rlimits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Controller {
    Pids,
    Memory,
    Cpu,
}

impl Controller {
    const ALL: [Controller; 3] = [Controller::Pids, Controller::Memory, Controller::Cpu];

    fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
        }
    }
}

/// How this host bounds its sessions.
#[derive(Debug)]
pub struct Limiter {
    kind: Kind,
    limits: Limits,
}

impl Limiter {
    /// Finds the best mechanism this host may use, and removes the
    /// cgroups hosts that are gone left behind (killing what still runs in
    /// them). Each host process has its own parent cgroup,
    /// `thinline-<host>.<pid>`, so hosts sharing a machine (or a test run)
    /// never touch each other's sessions.
    pub fn detect(host: &str, limits: Limits) -> Limiter {
        let name = format!("thinline-{host}.{}", std::process::id());
        let kind = match v2_sessions(&name) {
            Ok(sessions) => Kind::V2 { sessions },
            Err(v2) => match v1_parents(&name) {
                Ok(parents) => Kind::V1 { parents },
                Err(v1) => {
                    tracing::warn!(%v2, %v1, "no cgroup this host may manage: sessions are bounded by rlimits only (no CPU share, no memory limit per session, pids counted per uid)");
                    Kind::Rlimits
                }
            },
        };
        let limiter = Limiter { kind, limits };
        limiter.sweep();
        limiter
    }

    /// No limits at all (isolation `none`).
    pub fn unlimited() -> Limiter {
        Limiter {
            kind: Kind::Rlimits,
            limits: Limits {
                pids: u64::MAX,
                memory: u64::MAX,
                cpu_shares: 1024,
            },
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `cgroup2`, `cgroup1 (pids, memory, cpu)` or `rlimits`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::V2 { .. } => "cgroup2".into(),
            Kind::V1 { parents } => {
                let names: Vec<&str> = parents.iter().map(|(c, _)| c.name()).collect();
                format!("cgroup1 ({})", names.join(", "))
            }
            Kind::Rlimits => "rlimits".into(),
        }
    }

    /// The rlimits a session's program starts with: only when no cgroup
    /// bounds it.
    pub fn rlimits(&self) -> Option<Limits> {
        matches!(self.kind, Kind::Rlimits).then_some(self.limits)
    }

    /// Makes the cgroups of session `id`.
    pub fn create(&self, id: &str) -> io::Result<Option<SessionCgroup>> {
        let limits = self.limits;
        let cgroup = match &self.kind {
            Kind::Rlimits => return Ok(None),
            Kind::V2 { sessions } => {
                let dir = sessions.join(id);
                make_fresh_dir(&dir)?;
                let cgroup = SessionCgroup {
                    dirs: vec![dir.clone()],
                    v2: true,
                    procs: Vec::new(),
                };
                write(&dir.join("pids.max"), limits.pids)?;
                write(&dir.join("memory.max"), limits.memory)?;
                // Without swap accounting a hog would page out instead.
                let _ = write(&dir.join("memory.swap.max"), 0);
                // v1 shares 2..262144 map onto v2 weights 1..10000.
                let weight = 1 + (limits.cpu_shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
                let _ = write(&dir.join("cpu.weight"), weight);
                cgroup
            }
            Kind::V1 { parents } => {
                let mut cgroup = SessionCgroup {
                    dirs: Vec::new(),
                    v2: false,
                    procs: Vec::new(),
                };
                for (controller, parent) in parents {
                    let dir = parent.join(id);
                    make_fresh_dir(&dir)?;
                    cgroup.dirs.push(dir.clone());
                    match controller {
                        Controller::Pids => write(&dir.join("pids.max"), limits.pids)?,
                        Controller::Memory => {
                            write(&dir.join("memory.limit_in_bytes"), limits.memory)?;
                            let _ = write(&dir.join("memory.memsw.limit_in_bytes"), limits.memory);
                        }
                        Controller::Cpu => write(&dir.join("cpu.shares"), limits.cpu_shares)?,
                    }
                }
                cgroup
            }
        };
        let mut cgroup = cgroup;
        for dir in &cgroup.dirs {
            let procs = OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?;
            cgroup.procs.push(procs);
        }
        Ok(Some(cgroup))
    }

    /// Kills and removes the cgroups of host processes that are gone.
    fn sweep(&self) {
        let ours: Vec<PathBuf> = match &self.kind {
            Kind::V2 { sessions } => vec![sessions.clone()],
            Kind::V1 { parents } => parents.iter().map(|(_, p)| p.clone()).collect(),
            Kind::Rlimits => return,
        };
        let v2 = matches!(self.kind, Kind::V2 { .. });
        for base in ours.iter().filter_map(|p| p.parent()) {
            let Ok(entries) = fs::read_dir(base) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name
                    .strip_prefix("thinline-")
                    .and_then(|rest| rest.rsplit_once('.'))
                    .and_then(|(_, pid)| pid.parse::<u32>().ok())
                else {
                    continue;
                };
                if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                let dir = entry.path();
                tracing::info!(cgroup = %dir.display(), "removing the sessions of a host process that is gone");
                if let Ok(sessions) = fs::read_dir(&dir) {
                    for session in sessions.flatten() {
                        if session.path().join("cgroup.procs").exists() {
                            kill_and_remove(&session.path(), v2);
                        }
                    }
                }
                let _ = fs::remove_dir(&dir);
            }
        }
    }
}

/// The cgroups of one running session. Dropping it kills everything
/// still in them and removes them.
#[derive(Debug)]
pub struct SessionCgroup {
    dirs: Vec<PathBuf>,
    v2: bool,
    /// Each cgroup's `cgroup.procs`, opened by the host; the program
    /// writes `0` (itself) to each before it runs.
    procs: Vec<File>,
}

impl SessionCgroup {
    /// Descriptors the child writes `0` to between fork and exec. They
    /// are close-on-exec: the program never holds them.
    pub fn join_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// Processes in the session's first cgroup right now.
    pub fn pids(&self) -> Vec<u32> {
        self.dirs.first().map(|d| read_pids(d)).unwrap_or_default()
    }

    /// The first cgroup's directory (for tests and logs).
    pub fn path(&self) -> Option<&Path> {
        self.dirs.first().map(PathBuf::as_path)
    }

    /// Closes the join descriptors once the program has started.
    pub fn started(&mut self) {
        self.procs.clear();
    }
}

impl Drop for SessionCgroup {
    fn drop(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        let v2 = self.v2;
        let work = move || {
            for dir in &dirs {
                kill_and_remove(dir, v2);
            }
        };
        // Killing may take a few rounds; never on a runtime thread.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(work)),
            Err(_) => work(),
        }
    }
}

/// SIGKILLs everything in `dir` until it is empty, then removes it.
fn kill_and_remove(dir: &Path, v2: bool) {
    if v2 {
        // Linux 5.14 and later kill the whole subtree at once.
        let _ = write(&dir.join("cgroup.kill"), 1);
    }
    for round in 0..200 {
        let pids = read_pids(dir);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(if round < 10 { 2 } else { 20 }));
    }
    if let Err(error) = fs::remove_dir(dir)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(cgroup = %dir.display(), %error, "cannot remove a session's cgroup");
    }
}

fn read_pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn write(path: &Path, value: u64) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(value.to_string().as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// A session id's cgroup is new; one left by a crash of this very host
/// (same id, same session) is emptied first.
fn make_fresh_dir(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        kill_and_remove(dir, false);
    }
    fs::create_dir(dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

/// The host's own cgroup in `/proc/self/cgroup` for a v1 controller or,
/// with `None`, the v2 unified hierarchy.
fn own_cgroup(controller: Option<&str>) -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match controller {
            None => controllers.is_empty(),
            Some(name) => controllers.split(',').any(|c| c == name),
        };
        matches.then(|| path.to_string())
    })
}

/// Mount points of cgroup file systems: (fstype, super options, mount point).
fn cgroup_mounts() -> Vec<(String, String, PathBuf)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            fstype
                .starts_with("cgroup")
                .then(|| (fstype.into(), options.into(), PathBuf::from(mount_point)))
        })
        .collect()
}

fn v1_parents(name: &str) -> Result<Vec<(Controller, PathBuf)>, String> {
    let mounts = cgroup_mounts();
    let mut parents = Vec::new();
    for controller in Controller::ALL {
        let Some((_, _, mount)) = mounts.iter().find(|(fstype, options, _)| {
            fstype == "cgroup" && options.split(',').any(|o| o == controller.name())
        }) else {
            continue;
        };
        let Some(own) = own_cgroup(Some(controller.name())) else {
            continue;
        };
        let parent = mount.join(own.trim_start_matches('/')).join(name);
        match fs::create_dir_all(&parent) {
            Ok(()) => parents.push((controller, parent)),
            Err(error) if controller == Controller::Cpu => {
                tracing::debug!(%error, "no cpu cgroup: sessions get no CPU share");
            }
            Err(error) => {
                return Err(format!("cannot create {}: {error}", parent.display()));
            }
        }
    }
    let has = |c| parents.iter().any(|(p, _)| *p == c);
    if !has(Controller::Pids) || !has(Controller::Memory) {
        return Err("cgroup v1 has no writable pids and memory hierarchies".into());
    }
    Ok(parents)
}

fn v2_sessions(name: &str) -> Result<PathBuf, String> {
    let mounts = cgroup_mounts();
    let (_, _, mount) = mounts
        .iter()
        .find(|(fstype, _, _)| fstype == "cgroup2")
        .ok_or("no cgroup2 mount")?;
    let own = own_cgroup(None).ok_or("the host is in no cgroup2 cgroup")?;
    let base = mount.join(own.trim_start_matches('/'));
    let available = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let available: Vec<&str> = available.split_whitespace().collect();
    if !available.contains(&"pids") || !available.contains(&"memory") {
        return Err(format!(
            "cgroup2 at {} does not delegate the pids and memory controllers",
            base.display()
        ));
    }
    let wanted: Vec<&str> = ["pids", "memory", "cpu"]
        .into_iter()
        .filter(|c| available.contains(c))
        .collect();
    let enable: String = wanted.iter().map(|c| format!("+{c} ")).collect();
    // Processes live only in leaves: the host moves itself (and nothing
    // else: anything more in its cgroup makes the next write fail, and the
    // host falls back to v1 or rlimits) into `host/`.
    let host_dir = base.join("host");
    fs::create_dir_all(&host_dir).map_err(|e| format!("{}: {e}", host_dir.display()))?;
    fs::write(
        host_dir.join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .map_err(|e| format!("moving the host into {}: {e}", host_dir.display()))?;
    fs::write(base.join("cgroup.subtree_control"), enable.trim())
        .map_err(|e| format!("enabling {enable} in {}: {e}", base.display()))?;
    let sessions = base.join(name);
    fs::create_dir_all(&sessions).map_err(|e| format!("{}: {e}", sessions.display()))?;
    fs::write(sessions.join("cgroup.subtree_control"), enable.trim())
        .map_err(|e| format!("enabling {enable} in {}: {e}", sessions.display()))?;
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("33554432"), Ok(32 << 20));
        assert!(parse_bytes("1K").is_err(), "too small to run a shell");
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5T").is_err());
    }

    #[test]
    fn mountinfo_lines_name_cgroup_mounts() {
        // Whatever this machine has, every entry found is a cgroup mount
        // whose mount point exists.
        for (fstype, _, mount) in cgroup_mounts() {
            assert!(fstype.starts_with("cgroup"));
            assert!(mount.is_absolute());
        }
    }
}
