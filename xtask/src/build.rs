//! `cargo xtask build`: the page into `static/dist` (the wasm client and
//! the sources in `static/`, see `page.rs`), and the servers.
//!
//! A plain `cargo build` + `wasm-bindgen` + `wasm-opt` rather than trunk or
//! wasm-pack, because those download tools at run time, which fails here and
//! hides what is being built.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{cmd, page, tools};

/// The folder the directory serves (`--static-dir`): the built page.
pub fn page_dir() -> PathBuf {
    cmd::workspace_root().join("static").join("dist")
}

/// The release host binary that `build` produces.
pub fn host_binary() -> PathBuf {
    cmd::target_dir().join("release").join("host-server")
}

pub fn build_all() -> Result<()> {
    build_wasm_client()?;
    build_host()
}

pub fn build_wasm_client() -> Result<()> {
    let root = cmd::workspace_root();
    cmd::step("building the wasm client (web-terminal)");
    tools::ensure_wasm_target()?;
    let version = tools::locked_wasm_bindgen_version(&root)?;
    let wasm_bindgen = tools::ensure_wasm_bindgen(&version)?;

    // wasm-bindgen's output is an intermediate: only `page::assemble`'s
    // hashed copies are served.
    let bindgen_dir = cmd::target_dir().join("wasm-bindgen");
    if bindgen_dir.exists() {
        std::fs::remove_dir_all(&bindgen_dir)
            .with_context(|| format!("clearing {}", bindgen_dir.display()))?;
    }
    let wasm_opt = tools::find_or_install_wasm_opt();
    // The terminal, then the recording player: the same crate, the player
    // with only its drawing (`web-terminal/src/web/player.rs`), so neither
    // page downloads the other's code. One after the other: cargo puts
    // both at the same path.
    for (name, features) in [(page::TERMINAL, None), (page::PLAYER, Some("player"))] {
        let mut build = cmd::cargo();
        build.args([
            "build",
            "--package",
            "web-terminal",
            "--target",
            tools::WASM_TARGET,
            "--profile",
            "wasm",
        ]);
        if let Some(features) = features {
            build.args(["--features", features]);
        }
        cmd::run(&mut build)?;
        let wasm = cmd::target_dir()
            .join(tools::WASM_TARGET)
            .join("wasm")
            .join("web_terminal.wasm");
        cmd::run(
            Command::new(&wasm_bindgen)
                .current_dir(&root)
                .args(["--target", "web", "--out-dir"])
                .arg(&bindgen_dir)
                .args(["--out-name", name])
                .arg(&wasm),
        )?;
        if let Some(wasm_opt) = &wasm_opt {
            optimise(wasm_opt, &bindgen_dir.join(format!("{name}_bg.wasm")))?;
        }
    }
    // Where earlier builds put the client; nothing reads it any more.
    let legacy = root.join("static").join("pkg");
    if legacy.exists() {
        std::fs::remove_dir_all(&legacy)
            .with_context(|| format!("removing {}", legacy.display()))?;
    }
    let built = page::assemble(&root.join("static"), &bindgen_dir, &page_dir())?;
    report_sizes(&built);
    Ok(())
}

/// Runs `wasm-opt -Oz` (and strips the `producers` and `target_features`
/// sections) into a temporary file and keeps the result only if
/// it succeeded, so a binaryen too old for some wasm feature costs size,
/// never a broken page.
fn optimise(wasm_opt: &std::path::Path, wasm: &std::path::Path) -> Result<()> {
    let optimised = wasm.with_extension("opt.wasm");
    let before = std::fs::metadata(wasm)
        .with_context(|| format!("reading {}", wasm.display()))?
        .len();
    let attempt = cmd::run(
        Command::new(wasm_opt)
            .arg("-Oz")
            // Toolchain notes no browser reads, on every first visit.
            .arg("--strip-producers")
            .arg("--strip-target-features")
            .arg(wasm)
            .arg("-o")
            .arg(&optimised),
    );
    match attempt {
        Ok(()) => {
            std::fs::rename(&optimised, wasm).with_context(|| {
                format!("moving {} over {}", optimised.display(), wasm.display())
            })?;
            let after = std::fs::metadata(wasm)?.len();
            cmd::step(&format!("wasm-opt -Oz: {before} -> {after} bytes"));
        }
        Err(err) => {
            let _ = std::fs::remove_file(&optimised);
            cmd::step(&format!(
                "warning: wasm-opt failed ({err:#}); keeping the unoptimised wasm"
            ));
        }
    }
    Ok(())
}

fn report_sizes(built: &[page::BuiltFile]) {
    let size = |bytes: Option<u64>| bytes.map_or_else(|| "-".to_owned(), |b| b.to_string());
    for file in built {
        cmd::step(&format!(
            "  static/dist/{}: {} bytes, br {}, gz {}",
            file.name,
            file.bytes,
            size(file.brotli),
            size(file.gzip)
        ));
    }
}

/// The release directory binary that `build` produces.
pub fn directory_binary() -> PathBuf {
    cmd::target_dir().join("release").join("directory")
}

pub fn build_host() -> Result<()> {
    cmd::step("building the release host-server and directory");
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "--package",
        "host-server",
        "--package",
        "directory",
    ]))
}
