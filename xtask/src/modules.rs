//! Reading a crate's module graph from its sources, for the checks that
//! hold modules to the architecture (`purity.rs`: the session core does
//! no IO; `rings.rs`: no modules import each other in a ring).
//!
//! It reads text, not the compiler's resolution: enough of Rust's lexical
//! grammar to leave comments, literals and `#[cfg(test)]` items out, and
//! every `crate::`, `super::` and `self::` path (use trees included) and
//! `mod` child resolved to the file of the deepest module it names. A path
//! written through a re-export names the module that re-exports it, which
//! is the dependency a reader sees too.

use std::path::{Path, PathBuf};

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
pub fn production_code(text: &str) -> String {
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
/// `session::core`, `lib.rs` (or a binary's `main.rs`) the crate root,
/// `a/mod.rs` is `a`.
pub fn module_path(file: &Path) -> Vec<String> {
    let mut path: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
        || path == ["main"]
    {
        path.pop();
    }
    path
}

/// The file of module `path` under `src`, if it has one of its own.
pub fn module_file(src: &Path, path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        // A library's root, or a binary's when there is no library.
        return ["lib.rs", "main.rs"]
            .into_iter()
            .map(PathBuf::from)
            .find(|root| src.join(root).is_file())
            .or_else(|| Some(PathBuf::from("lib.rs")));
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
pub fn dependencies(src: &Path, file: &Path, code: &str) -> Vec<PathBuf> {
    references(src, file, code)
        .into_iter()
        .map(|reference| reference.module)
        .collect()
}

/// A module one file names, and the path it names it by (from the crate
/// root: `super::` and `self::` are resolved), for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub module: PathBuf,
    pub path: Vec<String>,
}

/// Every module `code` (of `file`) names, with the path naming it: its
/// `crate::`, `super::` and `self::` paths outside literals, and its `mod`
/// children.
pub fn references(src: &Path, file: &Path, code: &str) -> Vec<Reference> {
    let chars: Vec<char> = code.chars().collect();
    // A path in a string names no module.
    let classes = classify(&chars);
    let here = module_path(file);
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if classes[i] != Class::Code || (i > 0 && is_ident(chars[i - 1])) {
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
                if let Some(module) = module_file(src, &child) {
                    found.push(Reference {
                        module,
                        path: child,
                    });
                }
            }
            i = after.max(i + 1);
            continue;
        } else {
            i += 1;
            continue;
        };
        let (paths, end) = use_paths(&chars, i + skip);
        for path in paths {
            let mut named = base.clone();
            named.extend(path.iter().cloned());
            if let Some(module) = resolve(src, &base, &path) {
                found.push(Reference {
                    module,
                    path: named,
                });
            }
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
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A scratch source tree, removed when dropped.
    pub struct Tree(pub PathBuf);

    impl Tree {
        pub fn new(name: &str, files: &[(&str, &str)]) -> Tree {
            let root = std::env::temp_dir()
                .join(format!("thinline-modules-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for (path, text) in files {
                let path = root.join(path);
                std::fs::create_dir_all(path.parent().expect("a file has a parent"))
                    .expect("mkdir");
                std::fs::write(path, text).expect("write");
            }
            Tree(root)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
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
}
