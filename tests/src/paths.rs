//! Where the binaries and the page under test are.
//!
//! Cargo gives an integration test `CARGO_BIN_EXE_*` only for binaries of
//! its own package, and host-server and directory are other packages. So
//! the harness finds each this way:
//!
//! 1. `THINLINE_HOST_BIN` / `THINLINE_DIRECTORY_BIN` if set (`cargo xtask
//!    test` and `bench` point them at the release binaries they just
//!    built); a directory beside a given host binary will do too;
//! 2. otherwise it runs `cargo build -p PACKAGE` once per process, into the
//!    target directory and profile the running test binary came from, and
//!    uses `<target>/<profile>/PACKAGE`. The build is a no-op when the
//!    binary is fresh, and it guarantees a plain `cargo test` never runs a
//!    stale server.

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
/// workspace's `static/dist`, where `cargo xtask build` writes it.
pub fn static_dir() -> PathBuf {
    match std::env::var_os("THINLINE_STATIC_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("static").join("dist"),
    }
}

/// Fails unless [`static_dir`] holds a built page: an `index.html` whose
/// loader has a hashed name under `assets/`, and that file.
pub fn built_page() -> Result<PathBuf> {
    let dir = static_dir();
    let index = dir.join("index.html");
    let page = std::fs::read_to_string(&index)
        .with_context(|| format!("reading {}: run `cargo xtask build` first", index.display()))?;
    let loader = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|src| src.starts_with("assets/loader."))
        .with_context(|| {
            format!(
                "{} is not a built page: run `cargo xtask build`",
                index.display()
            )
        })?;
    let loader = dir.join(loader);
    if !loader.is_file() {
        bail!(
            "{} is missing: run `cargo xtask build` again",
            loader.display()
        );
    }
    Ok(dir)
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
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    binary("THINLINE_HOST_BIN", "host-server", &BUILT)
}

/// The directory binary to test (see the module comment for the rules).
pub fn directory_binary() -> Result<PathBuf> {
    let named = |var: &str| std::env::var_os(var).is_some_and(|p| !p.is_empty());
    if !named("THINLINE_DIRECTORY_BIN") && named("THINLINE_HOST_BIN") {
        let beside = host_binary()?.with_file_name("directory");
        if beside.is_file() {
            return Ok(beside);
        }
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    binary("THINLINE_DIRECTORY_BIN", "directory", &BUILT)
}

/// `var`'s binary, or `package`'s built once per process (`built`).
fn binary(
    var: &str,
    package: &str,
    built: &'static OnceLock<Result<PathBuf, String>>,
) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{var} points at {}, which does not exist", path.display());
        }
        return Ok(path);
    }
    built
        .get_or_init(|| build(package).map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build(package: &str) -> Result<PathBuf> {
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
    eprintln!("harness: building {package} ({profile} profile) for the tests");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--package", package, "--profile", profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .with_context(|| format!("running cargo build -p {package}"))?;
    if !status.success() {
        bail!("cargo build -p {package} failed ({status})");
    }
    let binary = profile_dir.join(package);
    if !binary.is_file() {
        bail!("cargo built {package} but {} is missing", binary.display());
    }
    Ok(binary)
}
