//! Every session in a sandbox of its own.
//!
//! A session's program runs under bubblewrap (`bwrap`, Debian's
//! `bubblewrap`, the sandbox Flatpak uses): new user, PID, IPC and UTS
//! namespaces (and network with `--session-network none`), a read-only
//! system tree, its own home read-write, a private `/tmp`, `/dev/shm` and
//! devpts instance, a `/proc` of its own PID namespace, no capabilities and
//! `no_new_privs`. The program is PID 1 of its namespace (`--as-pid-1`):
//! one bwrap process per session, the one that set the sandbox up and
//! waits for it. The store, key files, other homes and the host's state
//! are simply not in its mount namespace. bwrap's `/dev/console` is the
//! session's terminal, so `tty` and job control work as usual.
//!
//! Three modes (`--isolation`):
//! - `per-user` (a host running as root): each account runs as its own
//!   uid/gid, allocated once by the shared store so it is the same on every
//!   host, with a home owned by that uid, mode 0700. The host joins the
//!   session's cgroups and drops to that uid between fork and exec; bwrap
//!   then runs unprivileged.
//! - `shared-uid` (a host not started as root: a laptop, a rootless
//!   container): the same sandbox, but every account has the host's uid
//!   outside it. Users still cannot see the host's files, processes or each
//!   other's homes, but the kernel no longer tells them apart.
//! - `none`: the program runs directly, with only the environment
//!   allowlist; for benchmarks that measure what the sandbox costs.
//!
//! Whatever the mode, the program's environment is built from an allowlist:
//! nothing of the host's own environment reaches a user.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use store::UidRange;

use crate::cgroup::{Limiter, Limits, SessionCgroup};

/// How sessions are isolated from each other and from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    PerUser,
    SharedUid,
    None,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::PerUser => "per-user",
            Isolation::SharedUid => "shared-uid",
            Isolation::None => "none",
        }
    }

    /// `auto`: per-user when the host may change uids, else shared-uid.
    pub fn parse(text: &str) -> Result<Isolation, String> {
        match text {
            "auto" if rustix::process::geteuid().is_root() => Ok(Isolation::PerUser),
            "auto" => Ok(Isolation::SharedUid),
            "per-user" => Ok(Isolation::PerUser),
            "shared-uid" => Ok(Isolation::SharedUid),
            "none" => Ok(Isolation::None),
            other => Err(format!(
                "unknown isolation {other:?}: use auto, per-user, shared-uid or none"
            )),
        }
    }
}

/// Whether sessions reach the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionNetwork {
    Host,
    None,
}

impl SessionNetwork {
    pub fn parse(text: &str) -> Result<SessionNetwork, String> {
        match text {
            "host" => Ok(SessionNetwork::Host),
            "none" => Ok(SessionNetwork::None),
            other => Err(format!(
                "unknown session network {other:?}: use host or none"
            )),
        }
    }
}

pub struct SandboxOptions {
    pub isolation: Isolation,
    /// The bubblewrap binary.
    pub bwrap: PathBuf,
    /// Where the read-only system tree (`usr`, `bin`, `lib*`, `etc`, ...)
    /// comes from: `/` (the host's own) or a root file system unpacked for
    /// the purpose in container deployments.
    pub system_root: PathBuf,
    pub network: SessionNetwork,
    pub limits: Limits,
    /// Uids the store hands out to accounts (`per-user`).
    pub uid_range: UidRange,
    /// Host-written files the sandboxes read (their `/etc/passwd`).
    pub runtime_dir: PathBuf,
}

/// What to run for a new session.
#[derive(Clone, Debug)]
pub struct ProgramSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Start it as a login shell, as `login` does; used for the default
    /// shell.
    pub login: bool,
    pub cwd: Option<PathBuf>,
    /// The user's home on the shared home root, if the host has one.
    pub home: Option<PathBuf>,
    /// The session's own variables, on top of the sandbox's allowlist
    /// (see `sandbox`): nothing of the host's environment is inherited.
    pub env: Vec<(String, String)>,
    /// The key `tl-download` shows (`crate::files`), set for each program
    /// started; never saved with the session's record.
    pub download_key: Option<String>,
}

/// The Unix identity a session runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

pub struct Sandbox {
    options: SandboxOptions,
    limiter: Limiter,
    /// Identities handed out without a store (one host, nothing persists).
    local: Mutex<HashMap<String, Identity>>,
}

/// A session's program, ready to spawn on its PTY.
pub struct Prepared {
    pub command: pty_process::Command,
    pub cgroup: Option<SessionCgroup>,
}

/// Directories of the system tree bound read-only into every sandbox,
/// when the system root has them.
const SYSTEM_TREE: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt",
];

/// The variable that carries a session's download key, which
/// `tl-download` shows with its requests (`crate::files`).
pub const DOWNLOAD_KEY_VAR: &str = "THINLINE_DOWNLOAD_KEY";

/// Variables of the host's environment a session may inherit: the locale.
fn inheritable(key: &str) -> bool {
    key == "LANG" || key == "LANGUAGE" || key.starts_with("LC_")
}

/// Variables a session's own settings may not set: the sandbox decides
/// them, or they would change what the loader runs.
fn reserved(key: &str) -> bool {
    matches!(key, "USER" | "LOGNAME") || key.starts_with("LD_")
}

impl Sandbox {
    /// Sets the sandbox up: the runtime directory and, unless isolation is
    /// `none`, the session limits. Probe it with `pty::probe`.
    pub fn new(options: SandboxOptions, host: &str) -> Result<Sandbox, String> {
        if options.isolation == Isolation::PerUser && !rustix::process::geteuid().is_root() {
            return Err(
                "--isolation per-user needs a host started as root (it runs each account as \
                 its own uid); use --isolation shared-uid or auto"
                    .into(),
            );
        }
        let limiter = match options.isolation {
            Isolation::None => Limiter::unlimited(),
            _ => Limiter::detect(host, options.limits),
        };
        if options.isolation != Isolation::None {
            make_runtime_dir(&options.runtime_dir)?;
        }
        Ok(Sandbox {
            options,
            limiter,
            local: Mutex::new(HashMap::new()),
        })
    }

    /// What `pty::probe` starts to prove the sandbox works, as whom:
    /// `sh -c 'exit 0'`. Fails at once when bwrap is missing.
    pub fn probe_program(&self) -> Result<(ProgramSpec, Identity), String> {
        if self.isolation() != Isolation::None && !self.options.bwrap.is_file() {
            return Err(format!(
                "{} is missing: install bubblewrap (apt-get install bubblewrap) or pass --bwrap",
                self.options.bwrap.display()
            ));
        }
        let identity = match self.isolation() {
            Isolation::PerUser => Identity {
                user: "thinline-probe".into(),
                uid: 65534,
                gid: 65534,
            },
            _ => self.local_identity("thinline-probe")?,
        };
        let spec = ProgramSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "exit 0".into()],
            login: false,
            cwd: None,
            home: None,
            env: Vec::new(),
            download_key: None,
        };
        Ok((spec, identity))
    }

    pub fn isolation(&self) -> Isolation {
        self.options.isolation
    }

    pub fn uid_range(&self) -> UidRange {
        self.options.uid_range
    }

    /// What bounds a session (`cgroup2`, `cgroup1 (...)`, `rlimits`).
    pub fn limiter(&self) -> String {
        match self.options.isolation {
            Isolation::None => "none".into(),
            _ => self.limiter.describe(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limiter.limits()
    }

    pub fn network(&self) -> SessionNetwork {
        self.options.network
    }

    /// The identity of `user` when no store allocates one: per-user hands
    /// out uids from the range in order of first use (stable only while
    /// this host runs, which is all a host without a store keeps anyway);
    /// the other modes run everyone as the host's uid.
    pub fn local_identity(&self, user: &str) -> Result<Identity, String> {
        if self.options.isolation != Isolation::PerUser {
            return Ok(Identity {
                user: user.into(),
                uid: rustix::process::geteuid().as_raw(),
                gid: rustix::process::getegid().as_raw(),
            });
        }
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(identity) = local.get(user) {
            return Ok(identity.clone());
        }
        let range = self.options.uid_range;
        let uid = range
            .first
            .checked_add(local.len() as u32)
            .filter(|uid| *uid <= range.last)
            .ok_or_else(|| format!("the uid range {range} is used up: widen --uid-range"))?;
        let identity = Identity {
            user: user.into(),
            uid,
            gid: uid,
        };
        local.insert(user.into(), identity.clone());
        Ok(identity)
    }

    /// Makes `home` (under the shared home root) the user's: created if
    /// missing, owned by their uid, mode 0700. A home made before
    /// per-user isolation (owned by someone else) is handed over, files
    /// and all, without following any link the user planted.
    pub fn prepare_home(&self, home: &Path, identity: &Identity) -> io::Result<()> {
        if let Some(root) = home.parent()
            && !root.exists()
        {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(root)?;
        }
        match fs::symlink_metadata(home) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(io::Error::other(format!(
                    "{} is not a directory; remove it so the home can be made",
                    home.display()
                )));
            }
            Ok(meta) => {
                if self.options.isolation == Isolation::PerUser
                    && (meta.uid() != identity.uid || meta.gid() != identity.gid)
                {
                    tracing::info!(home = %home.display(), uid = identity.uid, "handing a home over to its user's uid");
                    chown_tree(home, identity.uid, identity.gid)?;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match fs::DirBuilder::new().mode(0o700).create(home) {
                    Ok(()) => {
                        if self.options.isolation == Isolation::PerUser {
                            std::os::unix::fs::lchown(
                                home,
                                Some(identity.uid),
                                Some(identity.gid),
                            )?;
                        }
                    }
                    // Another start of this user's first sessions, here or
                    // on another host sharing the root, made it first:
                    // take it as found.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        return self.prepare_home(home, identity);
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(error) => return Err(error),
        }
        if self.options.isolation != Isolation::None {
            fs::set_permissions(home, fs::Permissions::from_mode(0o700))?;
        }
        if self.options.isolation == Isolation::PerUser {
            // bwrap binds the home as the user: every directory above it
            // must let others pass (search), though not list.
            for dir in home.ancestors().skip(1) {
                let meta = fs::metadata(dir)?;
                if meta.permissions().mode() & 0o001 == 0 {
                    return Err(io::Error::other(format!(
                        "{} (mode {:o}) does not let users pass to their homes: \
                         `chmod o+x {}` (search only; it need not be readable)",
                        dir.display(),
                        meta.permissions().mode() & 0o7777,
                        dir.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The command that starts `spec` for `identity` in session `session`.
    pub fn command(
        &self,
        spec: &ProgramSpec,
        identity: &Identity,
        session: &str,
    ) -> io::Result<Prepared> {
        let env = self.environment(spec, identity);
        if self.options.isolation == Isolation::None {
            let mut command = pty_process::Command::new(&spec.program)
                .args(&spec.args)
                .env_clear()
                .envs(env);
            if spec.login {
                command = command.arg0(format!("-{}", program_name(&spec.program)));
            }
            if let Some(cwd) = &spec.cwd {
                command = command.current_dir(cwd);
            }
            return Ok(Prepared {
                command,
                cgroup: None,
            });
        }
        if identity.uid == 0 {
            return Err(io::Error::other("a session never runs as root"));
        }
        let home = home_of(spec, identity);
        self.write_passwd(identity, &home, &spec.program)?;
        let cgroup = self.limiter.create(session)?;
        let mut args: Vec<OsString> = Vec::new();
        let mut arg = |a: &dyn AsRef<std::ffi::OsStr>| args.push(a.as_ref().to_owned());
        arg(&"--unshare-user");
        arg(&"--uid");
        arg(&identity.uid.to_string());
        arg(&"--gid");
        arg(&identity.gid.to_string());
        arg(&"--disable-userns");
        arg(&"--unshare-pid");
        // The program is the PID namespace's init itself, with no bwrap
        // reaper above it: that reaper was the biggest part of an idle
        // session's cost (about 150 KB of 390, `cargo xtask bench
        // memory`), for work a shell does anyway. Shells reap orphans
        // (bash waits on any child), and the namespace still ends with
        // the program: the kernel kills every process in it when its init
        // exits. What changes is PID 1's signal rule: a signal the program
        // does not handle is ignored unless the kernel must deliver it,
        // so a hung-up program without a SIGHUP handler is killed after
        // the task's grace instead (shells handle it).
        arg(&"--as-pid-1");
        arg(&"--unshare-ipc");
        arg(&"--unshare-uts");
        arg(&"--unshare-cgroup-try");
        if self.options.network == SessionNetwork::None {
            arg(&"--unshare-net");
        }
        arg(&"--die-with-parent");
        arg(&"--hostname");
        arg(&"thinline");
        for dir in SYSTEM_TREE {
            let source = self.options.system_root.join(dir);
            let target = Path::new("/").join(dir);
            match fs::symlink_metadata(&source) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    arg(&"--symlink");
                    arg(&fs::read_link(&source)?);
                    arg(&target);
                }
                Ok(meta) if meta.is_dir() => {
                    arg(&"--ro-bind");
                    arg(&source);
                    arg(&target);
                }
                _ => {}
            }
        }
        let etc = self.etc_dir(identity.uid);
        for file in ["passwd", "group"] {
            arg(&"--ro-bind");
            arg(&etc.join(file));
            arg(&Path::new("/etc").join(file));
        }
        arg(&"--proc");
        arg(&"/proc");
        arg(&"--dev");
        arg(&"/dev");
        arg(&"--tmpfs");
        arg(&"/tmp");
        arg(&"--tmpfs");
        arg(&"/var/tmp");
        arg(&"--tmpfs");
        arg(&"/run");
        match &spec.home {
            Some(_) => {
                arg(&"--bind");
                arg(&home);
                arg(&home);
            }
            // No shared home root: an empty home that ends with the session.
            None => {
                arg(&"--tmpfs");
                arg(&home);
            }
        }
        let cwd = spec
            .cwd
            .as_ref()
            .filter(|cwd| cwd.starts_with(&home))
            .unwrap_or(&home);
        arg(&"--chdir");
        arg(cwd);
        arg(&"--");
        arg(&spec.program);
        if spec.login {
            arg(&"-l");
        }
        for a in &spec.args {
            arg(a);
        }
        let mut command = pty_process::Command::new(&self.options.bwrap)
            .args(args)
            .env_clear()
            .envs(env);
        let join = cgroup
            .as_ref()
            .map(SessionCgroup::join_fds)
            .unwrap_or_default();
        let ids =
            (self.options.isolation == Isolation::PerUser).then_some((identity.uid, identity.gid));
        let rlimits = self.limiter.rlimits();
        command = enter(command, join, ids, rlimits);
        Ok(Prepared { command, cgroup })
    }

    /// The program's environment: the allowlist, then the session's own
    /// variables (saved with its record, or the operator's).
    fn environment(&self, spec: &ProgramSpec, identity: &Identity) -> Vec<(String, String)> {
        let home = home_of(spec, identity);
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(key, _)| inheritable(key))
            .collect();
        env.extend([
            ("TERM".into(), "xterm-256color".into()),
            ("COLORTERM".into(), "truecolor".into()),
            ("HOME".into(), home.display().to_string()),
            ("USER".into(), identity.user.clone()),
            ("LOGNAME".into(), identity.user.clone()),
            ("SHELL".into(), spec.program.display().to_string()),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ]);
        for (key, value) in &spec.env {
            if reserved(key) || key.starts_with("THINLINE_") {
                continue;
            }
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        if let Some(key) = &spec.download_key {
            env.push((DOWNLOAD_KEY_VAR.into(), key.clone()));
        }
        env
    }

    fn etc_dir(&self, uid: u32) -> PathBuf {
        self.options.runtime_dir.join(uid.to_string())
    }

    /// The sandbox's `/etc/passwd` and `/etc/group` name the user (so
    /// prompts and `id` show a name), root and nobody, and nobody else.
    fn write_passwd(&self, identity: &Identity, home: &Path, shell: &Path) -> io::Result<()> {
        let dir = self.etc_dir(identity.uid);
        let Identity { user, uid, gid } = identity;
        let passwd = format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n\
             {user}:x:{uid}:{gid}:{user}:{home}:{shell}\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            home = home.display(),
            shell = shell.display(),
        );
        let group = format!("root:x:0:\ntty:x:5:\n{user}:x:{gid}:\nnogroup:x:65534:\n");
        if fs::read_to_string(dir.join("passwd")).ok().as_deref() == Some(passwd.as_str())
            && fs::read_to_string(dir.join("group")).ok().as_deref() == Some(group.as_str())
        {
            return Ok(());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)?;
        for (name, text) in [("passwd", &passwd), ("group", &group)] {
            // Written aside and renamed: a sandbox starting meanwhile reads
            // the old file or the new one, never half of one.
            let partial = dir.join(format!(".{name}.{}", std::process::id()));
            fs::write(&partial, text)?;
            fs::set_permissions(&partial, fs::Permissions::from_mode(0o644))?;
            fs::rename(&partial, dir.join(name))?;
        }
        Ok(())
    }
}

/// The user's home: on the shared root, or `/home/<user>` (a tmpfs).
fn home_of(spec: &ProgramSpec, identity: &Identity) -> PathBuf {
    match &spec.home {
        Some(home) => home.clone(),
        None => Path::new("/home").join(&identity.user),
    }
}

fn program_name(program: &Path) -> String {
    program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sh".into())
}

/// Joins the session's cgroups, lowers rlimits and becomes the user,
/// between fork and exec.
#[allow(unsafe_code)]
fn enter(
    command: pty_process::Command,
    join: Vec<std::os::fd::RawFd>,
    ids: Option<(u32, u32)>,
    rlimits: Option<Limits>,
) -> pty_process::Command {
    use rustix::process::{Gid, Resource, Rlimit, Uid, setrlimit};
    // SAFETY: runs in the forked child before exec. It only makes system
    // calls through rustix (no allocation, no locks): `join` holds raw
    // descriptors the parent keeps open until the spawn returns.
    unsafe {
        command.pre_exec(move || {
            for fd in &join {
                let fd = std::os::fd::BorrowedFd::borrow_raw(*fd);
                rustix::io::write(fd, b"0")?;
            }
            if let Some(limits) = rlimits {
                for (resource, value) in [
                    (Resource::Nproc, limits.pids),
                    (Resource::As, limits.memory),
                ] {
                    let limit = Rlimit {
                        current: Some(value),
                        maximum: Some(value),
                    };
                    setrlimit(resource, limit)?;
                }
            }
            if let Some((uid, gid)) = ids {
                rustix::thread::set_thread_groups(&[])?;
                rustix::thread::set_thread_gid(Gid::from_raw(gid))?;
                rustix::thread::set_thread_uid(Uid::from_raw(uid))?;
            }
            rustix::thread::set_no_new_privs(true)?;
            Ok(())
        })
    }
}

/// Changes the owner of `dir` and everything under it, links themselves
/// rather than what they point to, and never descends through a link.
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            chown_tree(&path, uid, gid)?;
        } else {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// The host's runtime directory: owned by the host, readable by all
/// (sandboxes read their `/etc/passwd` from it), never a link.
fn make_runtime_dir(dir: &Path) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(meta) => {
            if meta.file_type().is_symlink()
                || !meta.is_dir()
                || meta.uid() != rustix::process::geteuid().as_raw()
            {
                return Err(format!(
                    "{} exists but is not a directory this host owns; remove it or pick \
                     another --runtime-dir",
                    dir.display()
                ));
            }
        }
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?,
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_and_network_parse() {
        assert_eq!(Isolation::parse("per-user"), Ok(Isolation::PerUser));
        assert_eq!(Isolation::parse("none"), Ok(Isolation::None));
        assert!(Isolation::parse("chroot").is_err());
        assert_eq!(SessionNetwork::parse("none"), Ok(SessionNetwork::None));
        assert!(SessionNetwork::parse("bridge").is_err());
    }

    #[test]
    fn only_the_locale_is_inherited_and_the_loader_is_never_set() {
        assert!(inheritable("LANG"));
        assert!(inheritable("LC_ALL"));
        assert!(!inheritable("THINLINE_TICKET_KEY"));
        assert!(!inheritable("PATH"));
        assert!(reserved("LD_PRELOAD"));
        assert!(reserved("USER"));
        assert!(!reserved("PS1"));
    }
}
