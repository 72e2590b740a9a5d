//! Proof that the host's session core does no IO (ARCHITECTURE invariant:
//! "the session core does no IO").
//!
//! The protocol crate's purity is a crate boundary that `cargo tree` can
//! check; the session core lives inside `host-server`, next to tokio, so
//! its purity is checked on its sources instead. Starting from
//! `session/core.rs`, the check follows every module the code names
//! (`crate::`, `super::` and `self::` paths, and `mod` children) and
//! refuses any of them that names a runtime, a clock read or an OS
//! interface. Comments and `#[cfg(test)]` items are not code the core runs
//! (tests may read a clock to start a fake one), so they are left out.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::modules::{dependencies, production_code};

/// The core's module, relative to `host-server/src`.
const CORE: &str = "session/core.rs";

/// What no module of the core may name: the async runtime and its
/// channels, files, sockets, processes, threads, and the clocks.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "Instant::now",
    "SystemTime",
    "mpsc",
    "/proc",
];

pub fn check_session_core_is_pure() -> Result<()> {
    cmd::step(
        "proving the session core does no IO: host-server/src/session/core.rs and its modules",
    );
    let src = cmd::workspace_root().join("host-server").join("src");
    let (files, offenders) = scan(&src, Path::new(CORE))?;
    if !offenders.is_empty() {
        bail!(
            "the session core must do no IO (ARCHITECTURE.md); its modules name:\n{}",
            offenders.join("\n")
        );
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    cmd::step(&format!("  none of {} names IO", names.join(", ")));
    Ok(())
}

/// Every module reachable from `root` under `src`, and each forbidden name
/// in them as `file:line: name`.
fn scan(src: &Path, root: &Path) -> Result<(BTreeSet<PathBuf>, Vec<String>)> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root.to_path_buf()]);
    let mut offenders = Vec::new();
    while let Some(file) = queue.pop_front() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let text = std::fs::read_to_string(src.join(&file))
            .with_context(|| format!("reading {}", src.join(&file).display()))?;
        let code = production_code(&text);
        for (line, name) in forbidden_names(&code) {
            offenders.push(format!("{}:{line}: {name}", file.display()));
        }
        queue.extend(dependencies(src, &file, &code));
    }
    Ok((seen, offenders))
}

/// The forbidden names in `code`, with their line numbers.
fn forbidden_names(code: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (index, line) in code.lines().enumerate() {
        for name in FORBIDDEN {
            if line.contains(name) {
                found.push((index + 1, *name));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::tests::Tree;

    fn names(code: &str) -> Vec<&'static str> {
        forbidden_names(&production_code(code))
            .into_iter()
            .map(|(_, name)| name)
            .collect()
    }

    #[test]
    fn every_forbidden_name_in_code_is_found() {
        let code = "use tokio::sync::mpsc;\nfn f() { std::fs::read(\"/proc/1/stat\"); }\n\
                    fn g() { let _ = std::time::Instant::now(); std::thread::spawn(h); }\n\
                    fn h() { std::process::exit(0); std::net::TcpStream::connect(a); SystemTime::now(); }\n";
        let mut found = names(code);
        found.sort_unstable();
        let mut all = FORBIDDEN.to_vec();
        all.sort_unstable();
        assert_eq!(found, all);
    }

    #[test]
    fn comments_and_test_items_are_not_code() {
        let code = "//! Does no IO: no tokio, no /proc.\n\
                    /* a block /* nested tokio */ std::fs */\n\
                    fn pure(now: Instant) {} // Instant::now is the caller's\n\
                    #[cfg(test)]\nmod tests {\n    fn t() { let s = \"}\"; let c = '}'; let _ = Instant::now(); }\n}\n\
                    #[cfg(test)]\nmod fake;\n\
                    fn after_the_tests() { std::thread::yield_now(); }\n";
        let code_left = production_code(code);
        assert_eq!(names(code), ["std::thread"], "{code_left}");
        assert_eq!(
            forbidden_names(&code_left),
            [(10, "std::thread")],
            "line numbers point at the file"
        );
    }

    #[test]
    fn literals_are_code_but_never_comments() {
        assert_eq!(
            names("let url = \"http://x\"; let t = tokio::spawn(f);"),
            ["tokio"]
        );
        assert_eq!(
            names("let p = r#\"// \"quoted\"\"#; std::fs::remove_file(p);"),
            ["std::fs"]
        );
        assert_eq!(
            names("fn f<'a>(x: &'a str) { let c = '/'; mpsc::channel(); }"),
            ["mpsc"]
        );
        assert_eq!(
            names("let p = \"/proc/self\";"),
            ["/proc"],
            "a path in a string is IO"
        );
    }

    #[test]
    fn the_check_bites_on_a_module_the_core_uses() {
        let tree = Tree::new(
            "bites",
            &[
                ("lib.rs", "pub mod session;\npub mod helper;\n"),
                ("session.rs", "pub mod core;\nuse tokio::sync::mpsc;\n"),
                (
                    "session/core.rs",
                    "use crate::helper::cwd;\n#[cfg(test)]\nmod tests;\n",
                ),
                ("session/core/tests.rs", "use tokio::time::pause;\n"),
                (
                    "helper.rs",
                    "pub fn cwd() -> String {\n    std::fs::read_link(\"/proc/self/cwd\")\n}\n",
                ),
            ],
        );
        let (files, offenders) = scan(&tree.0, Path::new(CORE)).unwrap();
        assert_eq!(
            files,
            ["helper.rs", "session/core.rs"]
                .iter()
                .map(PathBuf::from)
                .collect()
        );
        assert_eq!(offenders, ["helper.rs:2: std::fs", "helper.rs:2: /proc"]);
    }

    #[test]
    fn the_real_session_core_is_pure_and_its_modules_are_followed() {
        let src = cmd::workspace_root().join("host-server").join("src");
        let (files, offenders) = scan(&src, Path::new(CORE)).unwrap();
        assert_eq!(offenders, Vec::<String>::new());
        for module in [
            "emulator.rs",
            "metrics.rs",
            "pacer.rs",
            "scrollback.rs",
            "persist/saved.rs",
            "session/core/input.rs",
        ] {
            assert!(files.contains(Path::new(module)), "{files:?}");
        }
        assert!(
            !files.contains(Path::new("session.rs")),
            "the task is not the core"
        );
    }
}
