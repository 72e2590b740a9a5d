//! `cargo xtask image`: Thinline's container images, built on this machine
//! with no registry.
//!
//! No registry is reachable here, so nothing is pulled: the base is Debian
//! bookworm made by `debootstrap --variant=minbase` and imported as
//! `localhost/thinline-base:bookworm` (once; later runs reuse it). On that
//! base, `infra/Containerfile` adds what sessions and the sandbox need and
//! the release binaries and page built here, as `localhost/thinline:latest`;
//! `infra/postgres/Containerfile` adds Debian's PostgreSQL, as
//! `localhost/thinline-postgres:latest`, for the containerised cluster.
//!
//! `infra/Dockerfile` (for people with a registry: it builds from source
//! on `rust` and `debian:bookworm-slim`) must give the same image: its
//! runtime stage is the Containerfile's, line for line, which
//! [`check_dockerfile_matches`] asserts.
//!
//! The engine is podman where it is installed (with runc and cgroupfs:
//! crun refuses this kind of machine's hybrid cgroups, see shared NOTES),
//! else docker; `THINLINE_CONTAINER_ENGINE` names another command line.
//! Whatever is chosen is handed to the tests and the cluster as that same
//! variable, so every container is run the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::{build, cmd, tools};

pub const BASE: &str = "localhost/thinline-base:bookworm";
pub const IMAGE: &str = "localhost/thinline:latest";
pub const POSTGRES_IMAGE: &str = "localhost/thinline-postgres:latest";

/// Where Debian's packages come from, for debootstrap.
const MIRROR: &str = "http://deb.debian.org/debian";

/// The container engine's command line, e.g. `podman --runtime
/// /usr/sbin/runc --cgroup-manager cgroupfs`.
pub fn engine() -> Result<Vec<String>> {
    if let Ok(line) = std::env::var("THINLINE_CONTAINER_ENGINE") {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        ensure!(
            !words.is_empty(),
            "THINLINE_CONTAINER_ENGINE is empty; unset it or name podman or docker"
        );
        return Ok(words);
    }
    if cmd::exists("podman") {
        let mut words = vec!["podman".to_owned()];
        words.extend(podman_global_args().iter().map(|w| (*w).to_owned()));
        return Ok(words);
    }
    if docker_works() {
        return Ok(vec!["docker".to_owned()]);
    }
    bail!(
        "neither podman nor docker is installed; `cargo xtask image` installs podman on Debian \
         when run as root, or install one yourself"
    )
}

/// Whether a docker client here reaches a daemon: some machines carry the
/// client alone, which must not win over installing podman.
fn docker_works() -> bool {
    cmd::exists("docker")
        && Command::new("docker")
            .arg("info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

const RUNC: &str = "/usr/sbin/runc";

/// podman's global flags on this kind of machine: crun (podman's default)
/// refuses hybrid cgroups, runc with cgroupfs works (shared NOTES).
pub fn podman_global_args() -> &'static [&'static str] {
    if Path::new(RUNC).is_file() {
        &["--runtime", RUNC, "--cgroup-manager", "cgroupfs"]
    } else {
        &[]
    }
}

fn engine_command(engine: &[String]) -> Command {
    let mut command = Command::new(&engine[0]);
    command.args(&engine[1..]);
    command
}

/// podman, runc, catatonit and debootstrap from Debian when missing
/// (docker users bring their own engine).
pub fn ensure_container_tools() -> Result<()> {
    let mut missing = Vec::new();
    let other_engine = std::env::var_os("THINLINE_CONTAINER_ENGINE").is_some()
        || (!cmd::exists("podman") && docker_works());
    if !other_engine {
        if !cmd::exists("podman") {
            missing.push("podman");
        }
        if !Path::new(RUNC).is_file() {
            missing.push("runc");
        }
        // `podman kube play` builds its pause image around catatonit, a
        // recommendation of podman's that a minimal install leaves out.
        if !cmd::exists("catatonit") && !Path::new("/usr/libexec/podman/catatonit").is_file() {
            missing.push("catatonit");
        }
    }
    if !cmd::exists("debootstrap") && !Path::new("/usr/sbin/debootstrap").is_file() {
        missing.push("debootstrap");
    }
    if missing.is_empty() {
        return Ok(());
    }
    tools::apt_install(&missing)
}

/// `cargo xtask image`: the release build, then the three images.
pub fn build_images() -> Result<()> {
    ensure_container_tools()?;
    build::build_all()?;
    make_images()
}

/// The three images, from what `build::build_all` left in target/ and
/// static/dist/.
pub fn make_images() -> Result<()> {
    let engine = engine()?;
    ensure_base(&engine)?;
    check_dockerfile_matches()?;
    let context = stage_context()?;
    cmd::step(&format!("building {IMAGE} from infra/Containerfile"));
    cmd::run(
        engine_command(&engine)
            .args(["build", "--quiet", "--tag", IMAGE, "--file"])
            .arg(cmd::workspace_root().join("infra/Containerfile"))
            .args(ulimit_args())
            .arg(&context),
    )?;
    cmd::step(&format!("building {POSTGRES_IMAGE} from infra/postgres/"));
    cmd::run(
        engine_command(&engine)
            .args(["build", "--quiet", "--tag", POSTGRES_IMAGE])
            .args(ulimit_args())
            .arg(cmd::workspace_root().join("infra/postgres")),
    )?;
    cmd::step(&format!("images ready: {IMAGE}, {POSTGRES_IMAGE}"));
    Ok(())
}

/// `--ulimit` for `RUN` steps: the engine's defaults ask for more than a
/// process without CAP_SYS_RESOURCE may set (shared NOTES), so pass this
/// process's own limits, which it may always keep.
pub fn ulimit_args() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let mut args = Vec::new();
    // runc here refuses an nproc above about 32768 though the hard limit
    // is higher (the same "operation not permitted"), hence the caps.
    for (name, flag, cap) in [
        ("Max open files", "nofile", 65_536),
        ("Max processes", "nproc", 16_384),
    ] {
        if let Some(soft) = soft_limit(&limits, name) {
            let limit = soft.min(cap);
            args.push("--ulimit".to_owned());
            args.push(format!("{flag}={limit}:{limit}"));
        }
    }
    args
}

/// The soft limit named `name` in `/proc/self/limits`, if it is a number.
fn soft_limit(limits: &str, name: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The debootstrapped base, made once and kept by the engine.
fn ensure_base(engine: &[String]) -> Result<()> {
    let exists = engine_command(engine)
        .args(["image", "exists", BASE])
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        cmd::step(&format!("{BASE} exists; reusing it"));
        return Ok(());
    }
    let root = cmd::target_dir().join("containers").join("bookworm-rootfs");
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("removing a half-made {}", root.display()))?;
    }
    std::fs::create_dir_all(root.parent().unwrap_or(&root))?;
    cmd::step(&format!(
        "making {BASE} with debootstrap (minbase bookworm, 1-2 minutes, about 200 MB)"
    ));
    cmd::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg(MIRROR),
    )
    .context("debootstrap failed: it needs root and Debian's mirror")?;
    cmd::step(&format!("importing {} as {BASE}", root.display()));
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-c", "."])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting tar")?;
    let tar_out = tar.stdout.take().context("tar has no output")?;
    let status = engine_command(engine)
        .args(["import", "-", BASE])
        .stdin(tar_out)
        .stdout(std::process::Stdio::null())
        .status()
        .context("starting the engine's import")?;
    let tar_status = tar.wait()?;
    ensure!(
        status.success() && tar_status.success(),
        "importing the base failed (import {status}, tar {tar_status})"
    );
    std::fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    Ok(())
}

/// The image's files, laid out as they will be inside it:
/// `image/usr/local/bin/{host-server,directory}` and
/// `image/srv/thinline/static/`.
fn stage_context() -> Result<PathBuf> {
    let context = cmd::target_dir().join("containers").join("context");
    if context.exists() {
        std::fs::remove_dir_all(&context)
            .with_context(|| format!("clearing {}", context.display()))?;
    }
    let bin = context.join("image/usr/local/bin");
    std::fs::create_dir_all(&bin)?;
    for binary in [build::host_binary(), build::directory_binary()] {
        let name = binary.file_name().context("a binary without a name")?;
        std::fs::copy(&binary, bin.join(name))
            .with_context(|| format!("copying {}", binary.display()))?;
    }
    // What sessions run to hand the user a file (`host-server/src/files.rs`).
    std::fs::copy(
        cmd::workspace_root().join("host-server/tl-download"),
        bin.join("tl-download"),
    )
    .context("copying host-server/tl-download")?;
    copy_tree(
        &build::page_dir(),
        &context.join("image/srv/thinline/static"),
    )?;
    Ok(context)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The Dockerfile's last stage must be the Containerfile's, line for line
/// after `FROM`, and both must lay out the same files, so the image a
/// registry user builds is the image the tests run.
pub fn check_dockerfile_matches() -> Result<()> {
    let root = cmd::workspace_root();
    let read = |name: &str| {
        std::fs::read_to_string(root.join(name)).with_context(|| format!("reading {name}"))
    };
    compare_builds(&read("infra/Dockerfile")?, &read("infra/Containerfile")?)
}

fn compare_builds(dockerfile: &str, containerfile: &str) -> Result<()> {
    let (docker_files, docker_runtime) = stages(dockerfile)?;
    let (local_files, local_runtime) = stages(containerfile)?;
    ensure!(
        docker_runtime == local_runtime,
        "infra/Dockerfile's runtime stage differs from infra/Containerfile's: make the lines \
         after their last FROM the same\n  Dockerfile:    {docker_runtime:?}\n  Containerfile: {local_runtime:?}"
    );
    ensure!(
        docker_files == local_files,
        "infra/Dockerfile and infra/Containerfile put files in different places: \
         {docker_files:?} against {local_files:?}"
    );
    Ok(())
}

/// The instructions after the last `FROM` (comments and blank lines
/// dropped), and the destinations of the `thinline-files` stage's COPYs.
fn stages(text: &str) -> Result<(Vec<String>, Vec<String>)> {
    let mut instructions: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        match instructions.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.push('\n');
                last.push_str(line);
            }
            _ => instructions.push(line.to_owned()),
        }
    }
    let froms: Vec<usize> = (0..instructions.len())
        .filter(|&i| instructions[i].starts_with("FROM "))
        .collect();
    let last = *froms.last().context("no FROM line")?;
    let files_stage = froms
        .iter()
        .position(|&i| instructions[i].ends_with(" AS thinline-files"))
        .context("no `FROM scratch AS thinline-files` stage")?;
    let files_end = froms.get(files_stage + 1).copied().unwrap_or(last);
    let destinations = instructions[froms[files_stage] + 1..files_end]
        .iter()
        .filter(|i| i.starts_with("COPY "))
        .filter_map(|i| i.split_whitespace().last().map(str::to_owned))
        .collect();
    Ok((destinations, instructions[last + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_dockerfile_and_containerfile_agree() {
        check_dockerfile_matches().unwrap();
    }

    const LOCAL: &str = "FROM scratch AS thinline-files\nCOPY image/usr/local/bin/ /usr/local/bin/\n\
                         FROM localhost/base\n# why\nRUN a \\\n b\nUSER thinline\n";

    #[test]
    fn a_different_runtime_line_is_caught() {
        let docker = "FROM rust AS build\nRUN make\nFROM scratch AS thinline-files\n\
                      COPY --from=build /x/ /usr/local/bin/\nFROM debian\nRUN a \\\n b\nUSER root\n";
        let err = compare_builds(docker, LOCAL).unwrap_err().to_string();
        assert!(err.contains("runtime stage differs"), "{err}");
    }

    #[test]
    fn a_file_put_elsewhere_is_caught() {
        let docker = "FROM rust AS build\nFROM scratch AS thinline-files\n\
                      COPY --from=build /x/ /opt/\nFROM debian\nRUN a \\\n b\nUSER thinline\n";
        let err = compare_builds(docker, LOCAL).unwrap_err().to_string();
        assert!(err.contains("different places"), "{err}");
    }

    #[test]
    fn the_same_layout_from_other_sources_passes() {
        let docker = "FROM rust AS build\nFROM scratch AS thinline-files\n\
                      COPY --from=build /x/ /usr/local/bin/\nFROM debian\nRUN a \\\n b\nUSER thinline\n";
        compare_builds(docker, LOCAL).unwrap();
    }

    #[test]
    fn reads_soft_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             4096                 8192                 processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1024));
        assert_eq!(soft_limit(limits, "Max processes"), Some(4096));
        assert_eq!(soft_limit(limits, "Max locked memory"), None);
    }
}
