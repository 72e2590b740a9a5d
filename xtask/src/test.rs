//! `cargo xtask test`: everything CI checks, in the order that fails fastest.
//!
//! This is the project's one definition of "green": `.ci/run` calls it and
//! nothing else, so any check added here is enforced everywhere at once.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::{build, cmd, image, k8s, purity, tools};

pub fn test_all() -> Result<()> {
    cmd::step("checking formatting");
    cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;

    check_wire_contracts_are_pure()?;
    purity::check_session_core_is_pure()?;
    check_hosts_call_no_directory()?;
    check_no_module_rings()?;
    check_deployment_manifests()?;

    start_services()?;
    tools::ensure_chromium()?;
    tools::ensure_sandbox_tools(true)?;
    image::ensure_container_tools()?;
    build::build_all()?;
    image::make_images()?;
    // The manifests' pod shapes, played for real on the image just built.
    k8s::play_pod_shapes(image::IMAGE)?;

    cmd::step("linting");
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    fuzz_directory_api(&build::directory_binary(), &build::host_binary())?;

    let asciinema = tools::ensure_asciinema()?;
    cmd::step("running every test, browser end-to-end tests included");
    cmd::run(
        cmd::cargo()
            .args(["test", "--workspace", "--all-targets"])
            // Makes the browser tests mandatory: without it they would pass
            // by skipping on a machine with no Chromium.
            .env("THINLINE_E2E", "1")
            .env("DATABASE_URL", DATABASE_URL)
            .env("THINLINE_DIRECTORY_BIN", build::directory_binary())
            .env("THINLINE_HOST_BIN", build::host_binary())
            .env("THINLINE_STATIC_DIR", build::page_dir())
            // The containerised cluster test runs on the images just built.
            .env("THINLINE_CONTAINERS", "1")
            .env("THINLINE_CONTAINER_ENGINE", image::engine()?.join(" "))
            .env("CHROMIUM", tools::CHROMIUM)
            .env("CHROMEDRIVER", tools::CHROMEDRIVER)
            // The recording test checks its exports with the reference tool.
            .env("ASCIINEMA", asciinema),
    )?;
    cmd::step("all checks passed");
    Ok(())
}

/// The directory's whole API, fuzzed from its own OpenAPI document by
/// schemathesis (tests/fuzz/run.py) against these directory and host
/// binaries: no 5xx, and every answer as the document describes it.
/// Bounded and deterministic: the same cases every run, in well under a
/// minute.
pub fn fuzz_directory_api(directory: &Path, host: &Path) -> Result<()> {
    let (python, schemathesis) = tools::ensure_schemathesis()?;
    cmd::step("fuzzing the directory's API from its OpenAPI document: tests/fuzz/run.py");
    cmd::run(
        std::process::Command::new(python)
            .arg(tools::fuzz_driver())
            .arg("--directory")
            .arg(directory)
            .arg("--host")
            .arg(host)
            .arg("--schemathesis")
            .arg(schemathesis),
    )
    .context(
        "the directory's API broke its OpenAPI document (or answered 5xx): each failure above \
         names the operation, the check and a curl command that reproduces it",
    )
}

/// The Kubernetes manifests keep their hardening (ARCHITECTURE invariant:
/// least privilege in deployment): `infra/k8s/check.py`, and its own
/// self-test that it still catches what it claims to; and they are what
/// the Kubernetes API accepts (`k8s::validate_manifests`).
pub fn check_deployment_manifests() -> Result<()> {
    cmd::step("checking the Kubernetes manifests: infra/k8s/check.py");
    tools::ensure_python_yaml()?;
    let check = cmd::workspace_root().join("infra/k8s/check.py");
    cmd::run(std::process::Command::new("python3").arg(&check))?;
    cmd::run(
        std::process::Command::new("python3")
            .arg(&check)
            .arg("--self-test"),
    )?;
    k8s::validate_manifests()
}

/// The crates that define a wire (the WebSocket protocol, the directory's
/// HTTP API) must build for the browser and pull in no IO runtime
/// (ARCHITECTURE invariants: "the protocol crate does no IO", "the
/// directory's API types do no IO").
fn check_wire_contracts_are_pure() -> Result<()> {
    tools::ensure_wasm_target()?;
    for package in ["protocol", "directory-api"] {
        cmd::step(&format!(
            "proving the {package} crate does no IO: `cargo tree -p {package} -i tokio`"
        ));
        let out =
            cmd::output(cmd::cargo().args(["tree", "--package", package, "--invert", "tokio"]))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            if !stdout.trim().is_empty() {
                bail!("the {package} crate depends on tokio:\n{stdout}");
            }
        } else if !stderr.contains("did not match any packages") {
            // Tokio absent from the whole lockfile is also fine; anything
            // else (a broken manifest, say) is a real failure.
            bail!("`cargo tree -p {package} -i tokio` failed:\n{stderr}");
        }
        cmd::step(&format!("  no tokio in the {package} crate's tree"));
        cmd::run(cmd::cargo().args([
            "build",
            "--package",
            package,
            "--target",
            tools::WASM_TARGET,
        ]))?;
    }
    Ok(())
}

/// ARCHITECTURE invariant: hosts keep their leases in the store and never
/// call a directory, so a directory outage cannot touch a live session.
/// No HTTP client may come back into the host: its sources name no client
/// connection and no directory route.
fn check_hosts_call_no_directory() -> Result<()> {
    cmd::step(
        "proving hosts call no directory: no HTTP client or directory route in host-server/src",
    );
    let mut offenders = Vec::new();
    let mut stack = vec![cmd::workspace_root().join("host-server").join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)?;
                for forbidden in ["client::conn", "reqwest", "/v1/hosts", "/v1/placement"] {
                    if text.contains(forbidden) {
                        offenders.push(format!("{} names {forbidden}", path.display()));
                    }
                }
            }
        }
    }
    if !offenders.is_empty() {
        bail!(
            "host-server must not call a directory (leases live in the store):\n{}",
            offenders.join("\n")
        );
    }
    Ok(())
}

/// ARCHITECTURE invariant: within every crate the modules form layers; no
/// set of them names each other in a ring (`rings.rs` says what counts).
fn check_no_module_rings() -> Result<()> {
    cmd::step("proving no crate's modules import each other in a ring");
    let root = cmd::workspace_root();
    let mut crates: Vec<_> = std::fs::read_dir(&root)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| dir.join("Cargo.toml").is_file() && dir.join("src").is_dir())
        .collect();
    crates.sort();
    let mut found = Vec::new();
    for dir in &crates {
        for ring in crate::rings::rings_in_crate(&dir.join("src"))? {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            found.push(format!("{name}: {ring}"));
        }
    }
    if !found.is_empty() {
        bail!(
            "modules that import each other in a ring (move what they share into a module below them):\n{}",
            found.join("\n")
        );
    }
    cmd::step(&format!("  {} crates, no ring", crates.len()));
    Ok(())
}

/// The PostgreSQL the store, directory and end-to-end tests use.
pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Services the tests need: PostgreSQL on 127.0.0.1:5432. This kind of
/// machine starts it before a session, but a server that has stopped since
/// is started again the way the machine starts it, so CI never silently
/// skips the PostgreSQL half of the suite.
fn start_services() -> Result<()> {
    cmd::step("checking PostgreSQL on 127.0.0.1:5432");
    if !postgres_answers() {
        cmd::step("  PostgreSQL is not answering; starting it with pg_ctlcluster");
        let versions = std::fs::read_dir("/etc/postgresql")
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for version in versions {
            let _ = cmd::run(std::process::Command::new("pg_ctlcluster").args([
                "--skip-systemctl-redirect",
                &version,
                "main",
                "start",
            ]));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !postgres_answers() {
            if std::time::Instant::now() > deadline {
                bail!(
                    "PostgreSQL does not answer on 127.0.0.1:5432; start it (pg_ctlcluster <version> main start) and run again"
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    cmd::step(&format!("  using {DATABASE_URL}"));
    Ok(())
}

/// A real answer, not just an accepted connection: PostgreSQL replies to an
/// SSL request with a single byte, 'S' or 'N'.
fn postgres_answers() -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 5432)),
        std::time::Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let ssl_request = [0u8, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut answer = [0u8; 1];
    stream.write_all(&ssl_request).is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && (answer[0] == b'S' || answer[0] == b'N')
}
