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
                .arg("--threshold=100")
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

/// The total and the `top` costliest functions of an annotation. With line
/// tables, callgrind_annotate gives one entry per source file a function's
/// inlined code came from; they are summed per function here.
fn print_top(text: &str, top: usize) {
    let (total, ranked) = rank_functions(text);
    println!("{total:>15} instructions in all");
    for (function, count) in ranked.into_iter().take(top) {
        let share = 100.0 * count as f64 / total.max(1) as f64;
        println!("{count:>15} {share:5.1}%  {function}");
    }
}

/// The program's total and its functions by cost, highest first.
fn rank_functions(text: &str) -> (u64, Vec<(&str, u64)>) {
    let mut total = 0u64;
    let mut by_function: std::collections::HashMap<&str, u64> = Default::default();
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        // Skip the percentage, if shown.
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(after) => after.split_once(')').map_or("", |(_, r)| r).trim_start(),
            None => rest,
        };
        if rest.starts_with("PROGRAM TOTALS") {
            total = count;
            continue;
        }
        // `file:function [binary]`; file names hold no colon.
        let Some((_, function)) = rest.split_once(':') else {
            continue;
        };
        let function = function.split(" [").next().unwrap_or(function);
        *by_function.entry(function).or_default() += count;
    }
    let mut ranked: Vec<(&str, u64)> = by_function.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    (total, ranked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_inlined_from_several_files_is_counted_once() {
        let annotation = "\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
1,000 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
  500 (50.00%)  /src/term/mod.rs:<Term<T> as Handler>::input
  300 (30.00%)  host-server/src/emulator.rs:host_server::emulator::convert_row [/bin/x]
  150 (15.00%)  /rustc/abc/library/core/src/slice/index.rs:<Term<T> as Handler>::input
   50 ( 5.00%)  ???:memcpy
";
        let (total, ranked) = rank_functions(annotation);
        assert_eq!(total, 1000);
        assert_eq!(
            ranked,
            [
                ("<Term<T> as Handler>::input", 650),
                ("host_server::emulator::convert_row", 300),
                ("memcpy", 50),
            ]
        );
    }
}
