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

/// What kind of source text a character is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Code,
    /// Inside a string or character literal.
    Literal,
    Comment,
}

/// Classifies every character of Rust source `chars`. Enough of Rust's
/// lexical grammar to tell comments (nested block comments included) from
/// string, raw string and character literals, and those from lifetimes.
fn classify(chars: &[char]) -> Vec<Class> {
    let mut classes = vec![Class::Code; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        let (class, end) = if let Some(end) = comment_end(chars, i) {
            (Class::Comment, end)
        } else if let Some(end) = literal_end(chars, i) {
            (Class::Literal, end)
        } else {
            i += 1;
            continue;
        };
        let end = end.min(chars.len());
        classes[i..end].fill(class);
        i = end;
    }
    classes
}

fn char_at(chars: &[char], i: usize) -> char {
    chars.get(i).copied().unwrap_or('\0')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where the comment that starts at `i` ends, if one starts there.
fn comment_end(chars: &[char], mut i: usize) -> Option<usize> {
    let at = |i: usize| char_at(chars, i);
    match (at(i), at(i + 1)) {
        ('/', '/') => {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            Some(i)
        }
        ('/', '*') => {
            let mut depth = 0;
            while i < chars.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            Some(i)
        }
        _ => None,
    }
}

/// Where the string, raw string or character literal that starts at `i`
/// ends, if one starts there (a lifetime is no literal).
fn literal_end(chars: &[char], mut i: usize) -> Option<usize> {
    let at = |i: usize| char_at(chars, i);
    let starts_token = |i: usize| i == 0 || !is_ident(at(i - 1));
    match (at(i), at(i + 1)) {
        ('"', _) => {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            Some(i + 1)
        }
        ('r', '"' | '#') if starts_token(i) || (at(i - 1) == 'b' && starts_token(i - 1)) => {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            i += 1 + hashes;
            if at(i) != '"' {
                // A raw identifier (`r#type`), not a string.
                return None;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    return Some(i + 1 + hashes);
                }
                i += 1;
            }
            Some(i)
        }
        ('\'', '\\') => {
            // The quote, the backslash and the escaped character, then on
            // to the closing quote (`'\u{1F600}'` is longer).
            i += 3;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            Some(i + 1)
        }
        ('\'', _) if at(i + 2) == '\'' => Some(i + 3),
        _ => None,
    }
}

/// `text` with comments and `#[cfg(test)]` items blanked out (lines kept,
/// so line numbers still point at the file).
fn production_code(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let classes = classify(&chars);
    for (c, class) in chars.iter_mut().zip(&classes) {
        if *class == Class::Comment && *c != '\n' {
            *c = ' ';
        }
    }
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= chars.len() {
        if classes[i] != Class::Code || chars[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let end = item_end(&chars, &classes, i + marker.len());
        for c in &mut chars[i..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end;
    }
    chars.into_iter().collect()
}

/// Where the item that starts at or after `from` ends: after its `;`, or
/// after the brace that closes its body.
fn item_end(chars: &[char], classes: &[Class], from: usize) -> usize {
    let mut depth = 0usize;
    for i in from..chars.len() {
        if classes[i] != Class::Code {
            continue;
        }
        match chars[i] {
            ';' if depth == 0 => return i + 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    chars.len()
}

/// The module path of a source file under `src`: `session/core.rs` is
/// `session::core`, `lib.rs` the crate root, `a/mod.rs` is `a`.
fn module_path(file: &Path) -> Vec<String> {
    let mut path: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        path.pop();
    }
    path
}

/// The file of module `path` under `src`, if it has one of its own.
fn module_file(src: &Path, path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        return Some(PathBuf::from("lib.rs"));
    }
    let joined: PathBuf = path.iter().collect();
    [joined.with_extension("rs"), joined.join("mod.rs")]
        .into_iter()
        .find(|candidate| src.join(candidate).is_file())
}

/// The module a path names: its longest prefix below `base` that is a
/// module with a file (the rest are items in it), or `base` itself.
fn resolve(src: &Path, base: &[String], rest: &[String]) -> Option<PathBuf> {
    (0..=rest.len()).rev().find_map(|k| {
        let mut path = base.to_vec();
        path.extend_from_slice(&rest[..k]);
        module_file(src, &path)
    })
}

/// The modules `code` (of `file`) depends on.
fn dependencies(src: &Path, file: &Path, code: &str) -> Vec<PathBuf> {
    let chars: Vec<char> = code.chars().collect();
    let here = module_path(file);
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i > 0 && is_ident(chars[i - 1]) {
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 8)].iter().collect();
        let (base, skip) = if rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if rest.starts_with("super::") {
            // `super::super::` climbs once per `super::`.
            let mut base = here.clone();
            let mut j = i;
            while chars[j..].starts_with(&['s', 'u', 'p', 'e', 'r', ':', ':']) {
                base.pop();
                j += 7;
            }
            (base, j - i)
        } else if rest.starts_with("self::") {
            (here.clone(), 6)
        } else if rest.starts_with("mod ") {
            let name: String = chars[i + 4..]
                .iter()
                .take_while(|c| is_ident(**c))
                .collect();
            let after = i + 4 + name.len();
            if !name.is_empty() && chars.get(after) == Some(&';') {
                let mut child = here.clone();
                child.push(name);
                found.extend(module_file(src, &child));
            }
            i = after.max(i + 1);
            continue;
        } else {
            i += 1;
            continue;
        };
        let (paths, end) = use_paths(&chars, i + skip);
        for path in paths {
            found.extend(resolve(src, &base, &path));
        }
        i = end.max(i + 1);
    }
    found
}

/// The paths of a use tree (or an expression path) starting at `from`:
/// `a::b::{c, d::e}` is `a::b::c` and `a::b::d::e`. Returns where it ends.
fn use_paths(chars: &[char], from: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = from;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        match chars.get(i) {
            Some('{') => {
                let mut paths = Vec::new();
                i += 1;
                loop {
                    while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                        i += 1;
                    }
                    match chars.get(i) {
                        None => return (paths, i),
                        Some('}') => return (paths, i + 1),
                        Some(_) => {
                            let (inner, end) = use_paths(chars, i);
                            paths.extend(inner.into_iter().map(|tail| {
                                let mut path = prefix.clone();
                                path.extend(tail);
                                path
                            }));
                            // `*` starts no path: stepped over.
                            i = end.max(i + 1);
                        }
                    }
                }
            }
            Some(c) if is_ident(*c) => {
                let name: String = chars[i..].iter().take_while(|c| is_ident(**c)).collect();
                i += name.chars().count();
                prefix.push(name);
                if chars[i..].starts_with(&[':', ':']) {
                    i += 2;
                    continue;
                }
                return (vec![prefix], i);
            }
            _ => return (vec![prefix], i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch source tree, removed when dropped.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str, files: &[(&str, &str)]) -> Tree {
            let root =
                std::env::temp_dir().join(format!("thinline-purity-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for (path, text) in files {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            Tree(root)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

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
    fn dependencies_follow_crate_super_self_and_child_modules() {
        let tree = Tree::new(
            "deps",
            &[
                ("lib.rs", ""),
                ("a.rs", ""),
                ("b/c.rs", ""),
                ("d.rs", ""),
                ("s.rs", ""),
                ("s/x.rs", ""),
                ("s/x/kid.rs", ""),
                ("s/x/own.rs", ""),
                ("s/x/tests.rs", ""),
            ],
        );
        let code = "use crate::a::{Item, other::Thing};\nuse crate::{b::c::C, d};\n\
                    use super::Outgoing;\nuse self::own::X;\nmod kid;\n#[cfg(test)]\nmod tests;\n\
                    fn f() { crate::Root::new(); }\n";
        let found: BTreeSet<PathBuf> =
            dependencies(&tree.0, Path::new("s/x.rs"), &production_code(code))
                .into_iter()
                .collect();
        let expected: BTreeSet<PathBuf> = [
            "a.rs",
            "b/c.rs",
            "d.rs",
            "s.rs",
            "s/x/own.rs",
            "s/x/kid.rs",
            "lib.rs",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(found, expected);
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
