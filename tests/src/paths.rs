//! Where the binaries and the page under test are.
//!
//! Cargo gives an integration test `CARGO_BIN_EXE_*` only for binaries of
//! its own package, and host-server is another package. So the harness
//! finds the host this way:
//!
//! 1. `THINLINE_HOST_BIN` if set (`cargo xtask test` and `bench` point it at
//!    the release binary they just built);
//! 2. otherwise it runs `cargo build -p host-server` once per process, into
//!    the target directory and profile the running test binary came from,
//!    and uses `<target>/<profile>/host-server`. The build is a no-op when
//!    the binary is fresh, and it guarantees a plain `cargo test` never runs
//!    a stale host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The directory the page is served from: `THINLINE_STATIC_DIR` or the
/// workspace's `static/`.
pub fn static_dir() -> PathBuf {
    match std::env::var_os("THINLINE_STATIC_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("static"),
    }
}

/// `<target>/<profile>` of the running executable: test binaries live in
/// `<target>/<profile>/deps`, ordinary binaries in `<target>/<profile>`.
fn own_profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut dir = exe
        .parent()
        .context("the running executable has no directory")?
        .to_path_buf();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The host-server binary to test (see the module comment for the rules).
pub fn host_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("THINLINE_HOST_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "THINLINE_HOST_BIN points at {}, which does not exist",
                path.display()
            );
        }
        return Ok(path);
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_host().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_host() -> Result<PathBuf> {
    let profile_dir = own_profile_dir()?;
    let target_dir = profile_dir
        .parent()
        .context("the profile directory has no parent")?;
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("the profile directory has no name")?;
    // `debug` is the directory of the `dev` profile; every other profile's
    // directory bears its name.
    let profile = if profile == "debug" { "dev" } else { profile };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("harness: building host-server ({profile} profile) for the tests");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--package", "host-server", "--profile", profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .context("running cargo build -p host-server")?;
    if !status.success() {
        bail!("cargo build -p host-server failed ({status})");
    }
    let binary = profile_dir.join("host-server");
    if !binary.is_file() {
        bail!(
            "cargo built host-server but {} is missing",
            binary.display()
        );
    }
    Ok(binary)
}
