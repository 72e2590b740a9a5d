//! The file operations of uploads and downloads, done as the session's
//! user and inside the session's view of the file system.
//!
//! Each runs on a thread of its own that first opens what it needs of
//! the program's process as the host (`/proc/PID/root`, `/proc/PID/cwd`,
//! which need the host's right to look into another process), then
//! takes the user's uid, gid and no supplementary groups for the rest of
//! its life. Linux keeps credentials per thread and rustix changes them
//! with the raw system calls (glibc's wrappers would change every thread
//! of the host), so nothing else of the host runs as the user, and the
//! thread, holding no capability, can do to the user's files exactly what
//! the user's shell could. Paths from the session are resolved with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` under the program's
//! root: a symbolic link (absolute or `..`) cannot lead out of the
//! sandbox's tree into the host's, and `/proc/*/root` links cannot either.
//! Final components are opened with `O_NOFOLLOW`, new files with
//! `O_EXCL`, and an upload reaches its name with a rename that never
//! replaces a file.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::process::{Gid, Uid};

use super::names;

/// Whose rights a file operation has.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    pub uid: u32,
    pub gid: u32,
    /// The host is root: the thread must become the user. A host that is
    /// not root runs every session as its own uid already.
    pub become_user: bool,
}

/// What the thread opened of the program's process before it became the
/// user.
pub struct Place {
    /// The program's root directory: its sandbox's tree.
    pub root: OwnedFd,
    /// Its working directory.
    pub cwd: OwnedFd,
    /// The working directory as the program sees it.
    pub cwd_shown: String,
    /// Its umask, for the mode an uploaded file ends with.
    pub umask: u32,
}

impl Place {
    fn open(pid: u32) -> io::Result<Place> {
        let dir = |link: &str| {
            rustix::fs::open(
                format!("/proc/{pid}/{link}"),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io::Error::from)
        };
        let root = dir("root")?;
        let cwd = dir("cwd")?;
        let cwd_shown = std::fs::read_link(format!("/proc/{pid}/cwd"))?
            .to_string_lossy()
            .into_owned();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let umask = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))
            .and_then(|mask| u32::from_str_radix(mask.trim(), 8).ok())
            .unwrap_or(0o022);
        Ok(Place {
            root,
            cwd,
            cwd_shown,
            umask,
        })
    }
}

/// Runs `f` as `who` on a thread of its own, with the `Place` of process
/// `pid` when one is named. Errors are the user's words.
pub async fn as_user<T, F>(who: Who, pid: Option<u32>, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(Option<Place>) -> Result<T, String> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("thinline-files".into())
        .spawn(move || {
            let run = || {
                let place = match pid {
                    Some(pid) => Some(Place::open(pid).map_err(|error| {
                        tracing::warn!(pid, %error, "could not look into a session's program");
                        "the session's program is gone; try again once it is back".to_owned()
                    })?),
                    None => None,
                };
                become_user(who).map_err(|error| {
                    tracing::error!(%error, "could not take a user's identity for a file");
                    "this host could not act as your user; tell its operator".to_owned()
                })?;
                f(place)
            };
            let _ = tx.send(run());
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start a thread for a file");
        return Err("this host is out of threads; try again shortly".into());
    }
    rx.await
        .unwrap_or_else(|_| Err("the host failed while handling the file; try again".into()))
}

/// Takes `who`'s identity for the rest of this thread's life.
fn become_user(who: Who) -> io::Result<()> {
    if !who.become_user {
        return Ok(());
    }
    if who.uid == 0 {
        return Err(io::Error::other("file operations never run as root"));
    }
    let (uid, gid) = (Uid::from_raw(who.uid), Gid::from_raw(who.gid));
    rustix::thread::set_thread_groups(&[])?;
    rustix::thread::set_thread_res_gid(gid, gid, gid)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    Ok(())
}

/// `path` (absolute, as the program sees it) resolved inside its root.
fn open_in_root(place: &Place, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    // openat2 refuses flags that mean nothing with O_PATH.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    rustix::fs::openat2(
        &place.root,
        relative,
        flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(io::Error::from)
}

/// An upload's file while its bytes come in.
pub struct Partial {
    /// The directory it goes to.
    pub dir: OwnedFd,
    pub dir_shown: String,
    /// Its hidden name in `dir` until it is complete.
    pub partial: String,
    pub file: File,
    /// Bytes already in it.
    pub len: u64,
    pub umask: u32,
}

/// Starts an upload of `name` in the program's working directory.
pub fn create_partial(place: Place, name: &str) -> Result<Partial, String> {
    let mut tag = [0u8; 4];
    let _ = getrandom::fill(&mut tag);
    let partial = names::partial_name(name, u32::from_le_bytes(tag));
    let fd = rustix::fs::openat(
        &place.cwd,
        partial.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|errno| explain(errno.into(), name, &place.cwd_shown))?;
    Ok(Partial {
        dir: place.cwd,
        dir_shown: place.cwd_shown,
        partial,
        file: File::from(fd),
        len: 0,
        umask: place.umask,
    })
}

/// Opens again the partial file at `path` (a path an earlier answer gave,
/// as the program sees it) to go on with an upload of `name` and `size`
/// bytes.
pub fn reopen_partial(place: Place, path: &str, name: &str, size: u64) -> Result<Partial, String> {
    let (dir_shown, component) = path.rsplit_once('/').unwrap_or(("", path));
    if !path.starts_with('/') || !names::is_partial_name(component) {
        return Err(format!(
            "{path:?} is not an upload this host can go on with"
        ));
    }
    let dir_shown = if dir_shown.is_empty() { "/" } else { dir_shown };
    let gone = |error: io::Error| {
        if error.kind() == io::ErrorKind::NotFound {
            format!(
                "what had arrived of {name} is gone from {dir_shown} (the host that \
                 received it is lost and so is that directory); upload it again"
            )
        } else {
            explain(error, name, dir_shown)
        }
    };
    let dir = open_in_root(&place, dir_shown, OFlags::PATH | OFlags::DIRECTORY).map_err(gone)?;
    // O_NONBLOCK: a FIFO under a partial file's name must not hang this
    // thread waiting for a reader (it is refused below as not a file).
    let fd = rustix::fs::openat(
        &dir,
        component,
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|errno| gone(errno.into()))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| explain(e, name, dir_shown))?;
    if !meta.is_file() || meta.len() > size {
        return Err(format!(
            "{path:?} is not what was being uploaded as {name}; upload it again"
        ));
    }
    Ok(Partial {
        dir,
        dir_shown: dir_shown.to_owned(),
        partial: component.to_owned(),
        file,
        len: meta.len(),
        umask: place.umask,
    })
}

/// Gives a complete upload its name: `name`, or the first free
/// `name (n)`, never replacing a file. Returns the name it got.
pub fn finish(partial: &Partial, name: &str) -> Result<String, String> {
    let mode = Mode::from_raw_mode(0o666 & !partial.umask & 0o777);
    rustix::fs::fchmod(&partial.file, mode)
        .map_err(|e| explain(e.into(), name, &partial.dir_shown))?;
    for n in 0..1000 {
        let candidate = names::numbered(name, n);
        let renamed = rustix::fs::renameat_with(
            &partial.dir,
            partial.partial.as_str(),
            &partial.dir,
            candidate.as_str(),
            RenameFlags::NOREPLACE,
        );
        let renamed = match renamed {
            // A file system without RENAME_NOREPLACE (some network ones):
            // a hard link fails on a taken name just the same.
            Err(rustix::io::Errno::INVAL) => rustix::fs::linkat(
                &partial.dir,
                partial.partial.as_str(),
                &partial.dir,
                candidate.as_str(),
                rustix::fs::AtFlags::empty(),
            )
            .and_then(|()| {
                rustix::fs::unlinkat(
                    &partial.dir,
                    partial.partial.as_str(),
                    rustix::fs::AtFlags::empty(),
                )
            }),
            other => other,
        };
        match renamed {
            Ok(()) => return Ok(candidate),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(errno) => return Err(explain(errno.into(), name, &partial.dir_shown)),
        }
    }
    Err(format!(
        "{name} and a thousand numbered names are taken in {}; it stays there as {}",
        partial.dir_shown, partial.partial
    ))
}

/// Removes an upload that will not be completed.
pub fn discard(partial: &Partial) {
    let _ = rustix::fs::unlinkat(
        &partial.dir,
        partial.partial.as_str(),
        rustix::fs::AtFlags::empty(),
    );
}

/// A file a program offered the user, open for reading.
pub struct Offered {
    pub file: File,
    pub name: String,
    pub size: u64,
}

/// Opens `path` (absolute, as the program sees it) to hand to the user.
pub fn open_offered(place: Place, path: &str, max: u64) -> Result<Offered, String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let name = names::safe_name(name)?;
    // O_NONBLOCK: a FIFO must not hang this thread waiting for a writer
    // (it is refused below as not a regular file).
    let fd = open_in_root(&place, path, OFlags::RDONLY | OFlags::NONBLOCK)
        .map_err(|e| explain(e, &name, path))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| explain(e, &name, path))?;
    if !meta.is_file() {
        return Err(format!(
            "{path} is not a regular file; only files can be downloaded"
        ));
    }
    if meta.len() > max {
        return Err(format!(
            "{path} is {}; this host sends files up to {} (--max-download-bytes)",
            names::human_size(meta.len()),
            names::human_size(max)
        ));
    }
    Ok(Offered {
        file,
        name,
        size: meta.len(),
    })
}

/// A file error in the user's words, with what to do about it.
pub fn explain(error: io::Error, name: &str, dir: &str) -> String {
    use rustix::io::Errno;
    match error.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::ACCESS | Errno::PERM) => {
            format!("you may not write or read {name} in {dir}; change to a directory of yours")
        }
        Some(Errno::ROFS) => format!("{dir} is read-only; change to a directory of yours"),
        Some(Errno::NOSPC | Errno::DQUOT) => {
            format!("no space left for {name} in {dir}; free some and try again")
        }
        Some(Errno::NOENT) => format!("{dir} has no {name}"),
        Some(Errno::LOOP) => format!("{name} in {dir} is a symbolic link; name the file itself"),
        Some(Errno::XDEV) => format!("{dir} leads outside your session's files"),
        Some(Errno::NAMETOOLONG) => format!("the name {name} is too long for {dir}"),
        _ => {
            tracing::warn!(%error, "a file operation failed");
            format!("{name} in {dir}: {error}")
        }
    }
}

#[cfg(test)]
impl Place {
    /// A place rooted at `root` with `cwd` its working directory, as a
    /// sandbox's would be, for tests without one.
    fn for_dirs(root: &std::path::Path, cwd: &std::path::Path, cwd_shown: &str) -> Place {
        let dir = |path: &std::path::Path| {
            rustix::fs::open(
                path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        Place {
            root: dir(root),
            cwd: dir(cwd),
            cwd_shown: cwd_shown.into(),
            umask: 0o022,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;

    /// Someone else: the tests that take an identity need root.
    const NOBODY: Who = Who {
        uid: 65534,
        gid: 65534,
        become_user: true,
    };

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    /// A sandbox-like tree: `root/home/u` (the user's, 0700) and
    /// `root/etc/secret` (root's, 0600).
    fn tree(owner: Who) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home/u");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/secret"), "root only").unwrap();
        std::fs::set_permissions(
            root.path().join("etc/secret"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if owner.become_user {
            rustix::fs::chown(
                &home,
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )
            .unwrap();
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        root
    }

    fn me() -> Who {
        Who {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
            become_user: false,
        }
    }

    #[tokio::test]
    async fn an_upload_is_written_aside_then_named_without_replacing() {
        let who = if is_root() { NOBODY } else { me() };
        let root = tree(who);
        let home = root.path().join("home/u");
        let taken = home.join("notes.txt");
        let (r, h) = (root.path().to_owned(), home.clone());
        let partial = as_user(who, None, move |_| {
            std::fs::write(h.join("notes.txt"), "theirs").map_err(|e| e.to_string())?;
            let place = Place::for_dirs(&r, &h, "/home/u");
            let mut partial = create_partial(place, "notes.txt")?;
            partial.file.write_all(b"mine").map_err(|e| e.to_string())?;
            Ok(partial)
        })
        .await
        .unwrap();
        assert!(names::is_partial_name(&partial.partial));
        assert_eq!(std::fs::read(home.join(&partial.partial)).unwrap(), b"mine");
        assert_eq!(
            std::fs::metadata(home.join(&partial.partial))
                .unwrap()
                .uid(),
            who.uid
        );
        let named = as_user(who, None, move |_| finish(&partial, "notes.txt"))
            .await
            .unwrap();
        assert_eq!(named, "notes (1).txt");
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "theirs");
        assert_eq!(std::fs::read_to_string(home.join(&named)).unwrap(), "mine");
        let mode = std::fs::metadata(home.join(&named)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o644, "umask 022 gives {mode:o}");
    }

    #[tokio::test]
    async fn uploads_go_on_from_what_the_partial_file_holds() {
        let who = me();
        let root = tree(who);
        let home = root.path().join("home/u");
        std::fs::write(home.join(".a.bin.thinline-0000abcd.part"), [7u8; 10]).unwrap();
        let r = root.path().to_owned();
        let h = home.clone();
        let reopened = as_user(who, None, move |_| {
            reopen_partial(
                Place::for_dirs(&r, &h, "/home/u"),
                "/home/u/.a.bin.thinline-0000abcd.part",
                "a.bin",
                100,
            )
        })
        .await
        .unwrap();
        assert_eq!(reopened.len, 10);
        assert_eq!(reopened.dir_shown, "/home/u");
        let r = root.path().to_owned();
        let h = home.clone();
        let refused = as_user(who, None, move |_| {
            let place = || Place::for_dirs(&r, &h, "/home/u");
            let not_partial = reopen_partial(place(), "/etc/secret", "a.bin", 100).err();
            let gone =
                reopen_partial(place(), "/tmp/.a.bin.thinline-0000abcd.part", "a.bin", 100).err();
            let too_big =
                reopen_partial(place(), "/home/u/.a.bin.thinline-0000abcd.part", "a.bin", 5).err();
            Ok((not_partial, gone, too_big))
        })
        .await
        .unwrap();
        assert!(refused.0.unwrap().contains("not an upload"));
        assert!(refused.1.unwrap().contains("upload it again"));
        assert!(refused.2.unwrap().contains("not what was being uploaded"));
    }

    #[tokio::test]
    async fn offered_files_are_found_inside_the_sandbox_only() {
        let who = if is_root() { NOBODY } else { me() };
        let root = tree(who);
        let home = root.path().join("home/u");
        std::fs::write(root.path().join("etc/motd"), "inside").unwrap();
        // Links that would leave the tree resolve inside it instead.
        std::os::unix::fs::symlink("/etc/motd", home.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/motd", home.join("up")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root/etc/passwd", home.join("magic")).unwrap();
        let r = root.path().to_owned();
        let h = home.clone();
        let read = as_user(who, None, move |_| {
            let place = || Place::for_dirs(&r, &h, "/home/u");
            let mut found = Vec::new();
            for path in ["/home/u/abs", "/home/u/up"] {
                let offered = open_offered(place(), path, 1 << 20)?;
                let mut text = String::new();
                std::io::Read::read_to_string(&mut &offered.file, &mut text)
                    .map_err(|e| e.to_string())?;
                found.push((offered.name, text));
            }
            let magic = open_offered(place(), "/home/u/magic", 1 << 20).err();
            let dir = open_offered(place(), "/home/u", 1 << 20).err();
            let big = open_offered(place(), "/etc/motd", 3).err();
            let secret = open_offered(place(), "/etc/secret", 1 << 20).err();
            Ok((found, magic, dir, big, secret))
        })
        .await
        .unwrap();
        assert_eq!(
            read.0,
            [
                ("abs".to_owned(), "inside".to_owned()),
                ("up".to_owned(), "inside".to_owned())
            ]
        );
        assert!(read.1.is_some(), "a /proc magic link was followed");
        assert!(read.2.unwrap().contains("not a regular file"));
        assert!(read.3.unwrap().contains("--max-download-bytes"));
        if is_root() {
            // The thread is nobody: root's file stays root's.
            assert!(read.4.unwrap().contains("may not"));
        }
    }

    #[tokio::test]
    async fn a_file_thread_is_the_user_and_nobody_else_is() {
        if !is_root() {
            eprintln!("skipped: taking another identity needs root");
            return;
        }
        let ids = as_user(NOBODY, None, |_| {
            Ok((
                rustix::process::getuid().as_raw(),
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
                rustix::process::getgroups()
                    .map_err(|e| e.to_string())?
                    .len(),
            ))
        })
        .await
        .unwrap();
        assert_eq!(ids, (65534, 65534, 65534, 0));
        // The rest of the process is still root.
        assert!(rustix::process::geteuid().is_root());
        let refused = as_user(
            Who {
                uid: 0,
                gid: 0,
                become_user: true,
            },
            None,
            |_| Ok(()),
        )
        .await;
        assert!(refused.is_err(), "a file thread ran as root");
    }
}
