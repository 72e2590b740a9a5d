//! `cargo xtask bench flood-profile`: where a session host spends its time
//! in a flood, without a PTY, a sandbox or a socket in the way.
//!
//! It builds host-server's `flood_profile` example in the `profiling`
//! profile (release with line tables, so callgrind names inlined
//! functions) and runs it: the whole session core, then our emulator
//! alone, then alacritty alone, so the figures say how close the host
//! gets to the parser's ceiling. With `--callgrind` it runs each under
//! `valgrind --tool=callgrind` instead (instruction counts do not depend
//! on the machine's load) and prints the top functions, inclusive and
//! self. Arguments after `--` go to the example (`--mb`, `--read`, ...).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The harness runs: the session core, our emulator, alacritty alone.
const RUNS: [(&str, &[&str]); 3] = [
    ("core", &[]),
    ("emulator", &["--only", "emulator"]),
    ("parser", &["--only", "parser"]),
];

/// Functions `callgrind_annotate` prints per table.
const TOP: usize = 30;

pub fn flood_profile(rest: &[String]) -> Result<()> {
    let (callgrind, passed) = match rest.iter().position(|a| a == "--") {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let callgrind = match callgrind {
        [] => false,
        [flag] if flag == "--callgrind" => true,
        _ => bail!("bench flood-profile takes [--callgrind] [-- harness arguments]"),
    };
    cmd::step("building the flood profile harness (profile `profiling`)");
    cmd::run(cmd::cargo().args([
        "build",
        "--profile",
        "profiling",
        "--package",
        "host-server",
        "--example",
        "flood_profile",
    ]))?;
    let harness = cmd::target_dir()
        .join("profiling")
        .join("examples")
        .join("flood_profile");
    let out_dir = cmd::target_dir().join("flood-profile");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (name, only) in RUNS {
        let mut command = if callgrind {
            if !cmd::exists("valgrind") {
                bail!("valgrind is not installed (apt-get install valgrind)");
            }
            let mut valgrind = Command::new("valgrind");
            valgrind
                .arg("--tool=callgrind")
                .arg(format!(
                    "--callgrind-out-file={}",
                    out_file(&out_dir, name).display()
                ))
                // Only the flood itself, not making its input.
                .arg("--toggle-collect=flood_profile::run_*")
                .arg(&harness);
            valgrind
        } else {
            Command::new(&harness)
        };
        command.args(only).args(passed);
        cmd::run(&mut command)?;
        if callgrind {
            annotate(&out_file(&out_dir, name), name)?;
        }
    }
    Ok(())
}

fn out_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("callgrind.{name}.out"))
}

/// Prints the top functions of a callgrind profile, inclusive and self.
fn annotate(profile: &Path, name: &str) -> Result<()> {
    for (label, inclusive) in [("inclusive", "yes"), ("self", "no")] {
        cmd::step(&format!("{name}: top functions, {label}"));
        let output = cmd::output(
            Command::new("callgrind_annotate")
                .arg(format!("--inclusive={inclusive}"))
                .arg("--threshold=99")
                .args(["--auto=no", "--show-percs=yes"])
                .arg(profile),
        )?;
        if !output.status.success() {
            bail!(
                "callgrind_annotate failed on {}: {}",
                profile.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        print_top(&text, TOP);
    }
    eprintln!(
        "(the whole profile: callgrind_annotate {})",
        profile.display()
    );
    Ok(())
}

/// The summary lines and the first `top` function lines of an annotation.
fn print_top(text: &str, top: usize) {
    let mut functions = 0;
    let mut in_table = false;
    for line in text.lines() {
        if line.contains("file:function") {
            in_table = true;
            println!("{line}");
            continue;
        }
        if !in_table {
            if line.contains("PROGRAM TOTALS") || line.starts_with("Ir") {
                println!("{line}");
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with("--") {
            continue;
        }
        if functions == top {
            break;
        }
        println!("{line}");
        functions += 1;
    }
}
