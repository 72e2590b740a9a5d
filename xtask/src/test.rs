//! `cargo xtask test`: everything CI checks, in the order that fails fastest.
//!
//! This is the project's one definition of "green": `.ci/run` calls it and
//! nothing else, so any check added here is enforced everywhere at once.

use anyhow::{Result, bail};

use crate::{build, cmd, tools};

pub fn test_all() -> Result<()> {
    cmd::step("checking formatting");
    cmd::run(cmd::cargo().args(["fmt", "--all", "--check"]))?;

    check_protocol_is_pure()?;

    start_services()?;
    tools::ensure_chromium()?;
    build::build_all()?;

    cmd::step("linting");
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    cmd::step("running every test, browser end-to-end tests included");
    let root = cmd::workspace_root();
    cmd::run(
        cmd::cargo()
            .args(["test", "--workspace", "--all-targets"])
            // Makes the browser tests mandatory: without it they would pass
            // by skipping on a machine with no Chromium.
            .env("THINLINE_E2E", "1")
            .env("THINLINE_HOST_BIN", build::host_binary())
            .env("THINLINE_STATIC_DIR", root.join("static"))
            .env("CHROMIUM", tools::CHROMIUM)
            .env("CHROMEDRIVER", tools::CHROMEDRIVER),
    )?;
    cmd::step("all checks passed");
    Ok(())
}

/// The protocol crate must build for the browser and pull in no IO runtime
/// (ARCHITECTURE invariant: "the protocol crate does no IO").
fn check_protocol_is_pure() -> Result<()> {
    cmd::step("proving the protocol crate does no IO: `cargo tree -p protocol -i tokio`");
    let out =
        cmd::output(cmd::cargo().args(["tree", "--package", "protocol", "--invert", "tokio"]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        if !stdout.trim().is_empty() {
            bail!("the protocol crate depends on tokio:\n{stdout}");
        }
    } else if !stderr.contains("did not match any packages") {
        // Tokio absent from the whole lockfile is also fine; anything else
        // (a broken manifest, say) is a real failure.
        bail!("`cargo tree -p protocol -i tokio` failed:\n{stderr}");
    }
    cmd::step("  no tokio in the protocol crate's tree");
    tools::ensure_wasm_target()?;
    cmd::run(cmd::cargo().args([
        "build",
        "--package",
        "protocol",
        "--target",
        tools::WASM_TARGET,
    ]))
}

/// Services the tests need that the machine does not start by itself.
///
/// Nothing yet. When the store gains its PostgreSQL backend, this is where
/// CI makes sure the server is up (`pg_isready -h 127.0.0.1`, else start it),
/// creates a scratch database and exports `THINLINE_TEST_DATABASE_URL` for
/// the store's conformance suite.
fn start_services() -> Result<()> {
    Ok(())
}
