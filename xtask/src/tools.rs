//! Making sure the tools a build needs are present, installing what is not.
//!
//! A fresh CI machine has only rustup and cargo; everything else (the wasm
//! target, the exact wasm-bindgen CLI, binaryen, Chromium) is installed here
//! on first use and skipped cheaply afterwards, so the project's own files
//! carry every install step.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

pub fn ensure_wasm_target() -> Result<()> {
    let out = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    let installed = String::from_utf8_lossy(&out.stdout);
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    cmd::step(&format!("adding the rust target {WASM_TARGET}"));
    cmd::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The version of the `wasm-bindgen` package in Cargo.lock: the CLI must be
/// exactly this version or the generated glue does not match the crate.
pub fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock_path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("reading {}", lock_path.display()))?;
    locked_version(&lock, "wasm-bindgen").with_context(|| {
        format!(
            "no `wasm-bindgen` package in {}; is web-terminal a workspace member?",
            lock_path.display()
        )
    })
}

fn locked_version(lock: &str, package: &str) -> Option<String> {
    let wanted = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim();
            let version = version.strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(version.to_string());
        }
    }
    None
}

fn cargo_bin_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Some(PathBuf::from(home).join("bin"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo").join("bin"))
}

fn reported_version(program: &Path) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "wasm-bindgen 0.2.130"
    text.split_whitespace().nth(1).map(str::to_string)
}

/// Returns the path of a wasm-bindgen CLI of exactly `version`, installing
/// it with `cargo install` when the one found is missing or another version.
pub fn ensure_wasm_bindgen(version: &str) -> Result<PathBuf> {
    let mut candidates = vec![PathBuf::from("wasm-bindgen")];
    if let Some(bin) = cargo_bin_dir() {
        candidates.push(bin.join("wasm-bindgen"));
    }
    for candidate in &candidates {
        if reported_version(candidate).as_deref() == Some(version) {
            return Ok(candidate.clone());
        }
    }
    let found = candidates
        .iter()
        .find_map(|c| reported_version(c))
        .unwrap_or_else(|| "none".into());
    cmd::step(&format!(
        "wasm-bindgen {version} is needed (found: {found}); installing wasm-bindgen-cli {version}, this takes several minutes"
    ));
    // No `--locked`: the CLI's own lockfile names a crate version the index
    // here lacks (see shared NOTES.md), so let cargo resolve afresh.
    cmd::run(cmd::cargo().args(["install", "wasm-bindgen-cli", "--version", version]))?;
    for candidate in &candidates {
        if reported_version(candidate).as_deref() == Some(version) {
            return Ok(candidate.clone());
        }
    }
    bail!("installed wasm-bindgen-cli {version} but no wasm-bindgen of that version is on PATH")
}

/// Another apt (an unattended upgrade, an operator) may hold dpkg's lock:
/// wait for it rather than fail the whole run.
const APT_WAIT_FOR_LOCK: [&str; 2] = ["-o", "DPkg::Lock::Timeout=600"];

pub fn apt_install(packages: &[&str]) -> Result<()> {
    if !cmd::is_root() {
        bail!(
            "not root, cannot apt-get install {}; install them and rerun",
            packages.join(" ")
        );
    }
    cmd::step(&format!(
        "installing Debian packages {} with apt-get",
        packages.join(" ")
    ));
    cmd::run(
        Command::new("apt-get")
            .args(APT_WAIT_FOR_LOCK)
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    cmd::run(
        Command::new("apt-get")
            .args(APT_WAIT_FOR_LOCK)
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Oldest binaryen known to keep wasm-bindgen's output working. Debian 12's
/// binaryen 108 passes validation but corrupts the externref table: the
/// page then dies in `WebAssembly.Table.set()` at start. 132 was verified.
const MIN_BINARYEN: u32 = 132;
const NPM_BINARYEN: &str = "binaryen@132.0.0";

fn binaryen_version(program: &Path) -> Option<u32> {
    let out = Command::new(program).arg("--version").output().ok()?;
    // "wasm-opt version 132 (version_132)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "version")?;
    words.next()?.parse().ok()
}

/// A `wasm-opt` recent enough for wasm-bindgen's output, installing npm's
/// binaryen under the target directory when none is found. `wasm-opt`
/// shrinks the gzipped client by about a quarter; a build without it still
/// works, so its absence is a warning, not an error.
pub fn find_or_install_wasm_opt() -> Option<PathBuf> {
    let npm_prefix = cmd::target_dir().join("tools").join("binaryen");
    let npm_wasm_opt = npm_prefix
        .join("node_modules")
        .join(".bin")
        .join("wasm-opt");
    let candidates = [PathBuf::from("wasm-opt"), npm_wasm_opt.clone()];
    let usable = |candidates: &[PathBuf]| {
        candidates
            .iter()
            .find(|c| binaryen_version(c).is_some_and(|v| v >= MIN_BINARYEN))
            .cloned()
    };
    if let Some(found) = usable(&candidates) {
        return Some(found);
    }
    if let Some(old) = binaryen_version(Path::new("wasm-opt")) {
        cmd::step(&format!(
            "wasm-opt on PATH is binaryen {old}, older than {MIN_BINARYEN}: it breaks wasm-bindgen's externref table, not using it"
        ));
    }
    if !cmd::exists("npm") {
        cmd::step("warning: no npm to install binaryen with; the wasm stays unoptimised");
        return None;
    }
    cmd::step(&format!(
        "installing {NPM_BINARYEN} from npm into {}",
        npm_prefix.display()
    ));
    let installed = cmd::run(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&npm_prefix)
            .arg(NPM_BINARYEN),
    );
    match (installed, usable(&candidates)) {
        (Ok(()), Some(found)) => Some(found),
        (result, _) => {
            let why = result.err().map_or_else(
                || "installed but not usable".to_string(),
                |e| format!("{e:#}"),
            );
            cmd::step(&format!(
                "warning: no usable wasm-opt ({why}); the wasm stays unoptimised"
            ));
            None
        }
    }
}

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Fonts the browser tests check CJK and emoji with, by a file each
/// package installs.
const TEST_FONTS: [(&str, &str); 2] = [
    (
        "fonts-noto-cjk",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    ),
    (
        "fonts-noto-color-emoji",
        "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    ),
];

/// The browser tests drive Debian's Chromium through its matching driver,
/// with Noto's CJK and colour emoji fonts installed, as a user's desktop
/// has them, so their screenshots can tell glyphs from empty boxes.
pub fn ensure_chromium() -> Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        missing.extend(["chromium", "chromium-driver"]);
    }
    for (package, file) in TEST_FONTS {
        if !Path::new(file).exists() {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    cmd::step(&format!(
        "installing {} for the browser tests",
        missing.join(", ")
    ));
    apt_install(&missing)?;
    for path in [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .chain(TEST_FONTS.iter().map(|(_, file)| *file))
    {
        if !Path::new(path).exists() {
            bail!("{path} still missing after apt-get install");
        }
    }
    Ok(())
}

/// `infra/k8s/check.py` reads the manifests with PyYAML.
pub fn ensure_python_yaml() -> Result<()> {
    let found = Command::new("python3")
        .args(["-c", "import yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Ok(());
    }
    cmd::step("installing python3-yaml");
    apt_install(&["python3", "python3-yaml"])
}

/// The reference asciicast tool (asciinema's Python release, which reads
/// asciicast v2), against which the recording test checks our exports.
const ASCIINEMA_VERSION: &str = "2.4.0";

/// `asciinema` at [`ASCIINEMA_VERSION`], in its venv.
pub fn ensure_asciinema() -> Result<PathBuf> {
    Ok(ensure_python_package("asciinema", ASCIINEMA_VERSION)?.bin("asciinema"))
}

/// The API fuzz driver, which names the schemathesis version its flags
/// are for (`SCHEMATHESIS_VERSION = "..."`): the one place it is pinned.
pub fn fuzz_driver() -> PathBuf {
    cmd::workspace_root()
        .join("tests")
        .join("fuzz")
        .join("run.py")
}

fn pinned_schemathesis(driver_source: &str) -> Option<String> {
    driver_source.lines().find_map(|line| {
        let version = line.strip_prefix("SCHEMATHESIS_VERSION = \"")?;
        Some(version.strip_suffix('"')?.to_string())
    })
}

/// The schemathesis CLI of the version the fuzz driver pins, in a venv
/// under the target directory (`target/tools/schemathesis`).
/// Returns the venv's python and its schemathesis.
pub fn ensure_schemathesis() -> Result<(PathBuf, PathBuf)> {
    let driver = fuzz_driver();
    let source = std::fs::read_to_string(&driver)
        .with_context(|| format!("reading {}", driver.display()))?;
    let version = pinned_schemathesis(&source).with_context(|| {
        format!(
            "{} names no SCHEMATHESIS_VERSION = \"X.Y.Z\"",
            driver.display()
        )
    })?;
    let venv = ensure_python_package("schemathesis", &version)?;
    Ok((venv.python(), venv.bin("schemathesis")))
}

/// A Python virtual environment under `target/tools`, holding one PyPI
/// package at one pinned version.
pub struct PythonTool {
    dir: PathBuf,
}

impl PythonTool {
    pub fn python(&self) -> PathBuf {
        self.bin("python3")
    }

    /// A program the package installed into the venv's `bin`.
    pub fn bin(&self, program: &str) -> PathBuf {
        self.dir.join("bin").join(program)
    }

    /// The version of `package` installed in the venv, if it imports.
    fn installed_version(&self, package: &str) -> Option<String> {
        let out = Command::new(self.python())
            .args([
                "-c",
                "import sys, importlib.metadata as m; print(m.version(sys.argv[1]))",
                package,
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// `package` at exactly `version` from PyPI, in its own venv
/// (`target/tools/PACKAGE`), made and pip-installed on first use and
/// reused while it holds that version. Each tool gets a venv of its own so
/// two pins never fight over a shared dependency.
pub fn ensure_python_package(package: &str, version: &str) -> Result<PythonTool> {
    let tool = PythonTool {
        dir: cmd::target_dir().join("tools").join(package),
    };
    if tool.installed_version(package).as_deref() == Some(version) {
        return Ok(tool);
    }
    let venv_works = Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !venv_works {
        cmd::step("python3 cannot make a venv: installing python3-venv");
        apt_install(&["python3", "python3-venv"])?;
    }
    cmd::step(&format!(
        "installing {package} {version} into {}",
        tool.dir.display()
    ));
    // --clear: a venv left by another python (or a half-done install) is
    // made afresh rather than patched.
    cmd::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&tool.dir),
    )?;
    cmd::run(
        Command::new(tool.python())
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("{package}=={version}")),
    )
    .with_context(|| format!("installing {package} {version} from PyPI (is PyPI reachable?)"))?;
    match tool.installed_version(package) {
        Some(found) if found == version => Ok(tool),
        found => bail!(
            "installed {package} {version} into {} but it reports {found:?}; remove that folder and run again",
            tool.dir.display()
        ),
    }
}

pub const BWRAP: &str = "/usr/bin/bwrap";

/// Where sessions find `tl-download`: in the system tree every sandbox
/// sees read-only, as the image has it.
pub const TL_DOWNLOAD: &str = "/usr/local/bin/tl-download";

/// Puts this checkout's `tl-download` where local hosts' sessions find it
/// (only root may; a user's demo goes without downloads, and says so).
fn install_tl_download() -> Result<()> {
    let source = cmd::workspace_root().join("host-server/tl-download");
    let wanted = std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    if std::fs::read(TL_DOWNLOAD).is_ok_and(|have| have == wanted) {
        return Ok(());
    }
    if !Path::new("/usr/local/bin").is_dir() || !cmd::is_root() {
        cmd::step(&format!(
            "not installing {TL_DOWNLOAD} (needs root): sessions here cannot download files"
        ));
        return Ok(());
    }
    cmd::step(&format!("installing {TL_DOWNLOAD}"));
    let partial = format!("{TL_DOWNLOAD}.partial");
    std::fs::write(&partial, &wanted).with_context(|| format!("writing {partial}"))?;
    std::fs::set_permissions(
        &partial,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    std::fs::rename(&partial, TL_DOWNLOAD).with_context(|| format!("installing {TL_DOWNLOAD}"))?;
    Ok(())
}

/// Hosts run every session under bubblewrap; the isolation tests also
/// check that vim, less and tmux work inside the sandbox.
pub fn ensure_sandbox_tools(for_tests: bool) -> Result<()> {
    let mut wanted = vec![("bubblewrap", BWRAP)];
    if for_tests {
        wanted.extend([
            ("vim", "/usr/bin/vim"),
            ("less", "/usr/bin/less"),
            ("tmux", "/usr/bin/tmux"),
        ]);
    }
    install_tl_download()?;
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, path)| !Path::new(path).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    cmd::step(&format!("installing {}", missing.join(", ")));
    apt_install(&missing)?;
    if !Path::new(BWRAP).exists() {
        bail!("{BWRAP} still missing after apt-get install bubblewrap");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{locked_version, pinned_schemathesis};

    #[test]
    fn finds_the_schemathesis_version_the_fuzz_driver_pins() {
        let driver =
            "import os\n# The version ...\nSCHEMATHESIS_VERSION = \"4.32.5\"\nCHECKS = \"all\"\n";
        assert_eq!(pinned_schemathesis(driver).as_deref(), Some("4.32.5"));
        assert_eq!(pinned_schemathesis("VERSION = \"1\"\n"), None);
        let real = std::fs::read_to_string(super::fuzz_driver()).unwrap();
        assert!(pinned_schemathesis(&real).is_some());
    }

    #[test]
    fn finds_the_locked_version_of_a_package() {
        let lock = "\
[[package]]
name = \"wasm-bindgen-macro\"
version = \"0.2.1\"

[[package]]
name = \"wasm-bindgen\"
version = \"0.2.130\"
source = \"registry+https://github.com/rust-lang/crates.io-index\"
";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(locked_version(lock, "absent"), None);
    }
}
