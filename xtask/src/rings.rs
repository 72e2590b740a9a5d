//! No crate's modules import each other in a ring.
//!
//! A ring (`a` names `b`, `b` names `c`, `c` names `a`) means none of its
//! modules can be read, tested or moved alone: the directory grew one of five
//! modules before anyone noticed. This check walks each crate's module tree
//! from its roots (`lib.rs`, `main.rs`, `src/bin/*.rs`) through its `mod`
//! declarations, leaving out modules declared under `#[cfg(test)]`, and
//! collects every `crate::…` and `super::…` path each module names. A
//! module naming its own ancestor or descendant is how Rust spells one
//! thing split over files (a child's `impl super::Connection`), so those
//! edges do not count; every other edge does, and any strongly connected
//! set of modules is reported with the names that tie it.
//!
//! It reads text, not the compiler's resolution: a path written through a
//! re-export names the module that re-exports it, which is the dependency a
//! reader sees too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A module: its path from the crate root (`[]` for the root itself) and
/// the file that holds it.
#[derive(Debug)]
struct Module {
    path: Vec<String>,
    file: PathBuf,
}

/// The rings found in the crate whose sources are under `src`, each as the
/// lines that describe it; empty when there are none.
pub fn rings_in_crate(src: &Path) -> Result<Vec<String>> {
    let mut modules = Vec::new();
    let mut roots = vec![src.join("lib.rs"), src.join("main.rs")];
    if let Ok(entries) = std::fs::read_dir(src.join("bin")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "rs") {
                roots.push(entry.path());
            }
        }
    }
    let mut rings = Vec::new();
    for root in roots.into_iter().filter(|root| root.is_file()) {
        modules.clear();
        collect(&root, src, Vec::new(), &mut modules)?;
        rings.extend(rings_among(&modules)?);
    }
    rings.sort();
    rings.dedup();
    Ok(rings)
}

/// Walks the module tree from `file`, which holds the module at `path`;
/// `dir` is where its child modules' files are.
fn collect(file: &Path, dir: &Path, path: Vec<String>, out: &mut Vec<Module>) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    for child in child_modules(&text) {
        let candidates = [
            dir.join(format!("{child}.rs")),
            dir.join(&child).join("mod.rs"),
        ];
        let Some(child_file) = candidates.iter().find(|c| c.is_file()) else {
            // An inline `mod x { … }` or a `#[path]` module: part of this file.
            continue;
        };
        let mut child_path = path.clone();
        child_path.push(child.clone());
        collect(child_file, &dir.join(&child), child_path, out)?;
    }
    out.push(Module {
        path,
        file: file.to_path_buf(),
    });
    Ok(())
}

/// The `mod name;` declarations of a file that are not under `#[cfg(test)]`.
fn child_modules(text: &str) -> Vec<String> {
    let mut children = Vec::new();
    let mut test_only = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[cfg(test)]") {
            test_only = true;
            continue;
        }
        if line.starts_with("#[") || line.starts_with("//") {
            continue;
        }
        let declaration = line
            .strip_prefix("pub(crate) ")
            .or_else(|| line.strip_prefix("pub(super) "))
            .or_else(|| line.strip_prefix("pub "))
            .unwrap_or(line);
        if let Some(name) = declaration
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
            && !test_only
        {
            children.push(name.trim().to_owned());
        }
        test_only = false;
    }
    children
}

/// The code of a file without its comments and up to its inline unit tests
/// (`#[cfg(test)] mod tests { … }`, which may reach anything).
fn code_outside_tests(text: &str) -> String {
    let mut code = text;
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let at = from + at;
        let after = code[at + "#[cfg(test)]".len()..].trim_start();
        let inline_module = after.starts_with("mod ")
            && after
                .find('{')
                .is_some_and(|brace| after.find(';').is_none_or(|semi| brace < semi));
        if inline_module {
            code = &code[..at];
            break;
        }
        from = at + 1;
    }
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file names from the crate root (`crate::a::b`) or from its
/// parent (`super::x`), resolved to a path from the crate root, with the
/// item names it takes (for the report).
fn referenced_paths(text: &str, own: &[String]) -> Vec<Vec<String>> {
    let code = code_outside_tests(text);
    let mut paths = Vec::new();
    for (anchor, base) in [("crate::", Vec::new()), ("super::", parent_of(own))] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut tail = rest;
            let mut base = base.clone();
            // `super::super::x`
            while anchor == "super::"
                && let Some(after) = tail.strip_prefix("super::")
            {
                base.pop();
                tail = after;
            }
            for suffix in expand(tail) {
                let mut path = base.clone();
                path.extend(suffix);
                paths.push(path);
            }
        }
    }
    paths
}

/// The paths a `use`-style tail spells: `a::b::C`, or `{a::X, b::{c, d}}`.
fn expand(tail: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    expand_into(tail, Vec::new(), &mut out);
    out
}

fn expand_into(tail: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut rest = tail;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            for item in split_group(group) {
                expand_into(item.trim(), path.clone(), out);
            }
            return;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            break;
        }
        rest = &rest[name.len()..];
        path.push(name);
        match rest.strip_prefix("::") {
            Some(after) => rest = after,
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// The comma-separated items of a brace group whose opening brace is
/// already consumed, up to its closing brace.
fn split_group(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

fn parent_of(path: &[String]) -> Vec<String> {
    path[..path.len().saturating_sub(1)].to_vec()
}

fn is_prefix(short: &[String], long: &[String]) -> bool {
    long.len() >= short.len() && long[..short.len()] == *short
}

fn display(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}

/// Strongly connected sets of more than one module, after dropping edges
/// between a module and its own ancestors or descendants.
fn rings_among(modules: &[Module]) -> Result<Vec<String>> {
    let known: BTreeSet<&[String]> = modules.iter().map(|m| m.path.as_slice()).collect();
    // edges[a][b] = the item paths a takes from b.
    let mut edges: BTreeMap<usize, BTreeMap<usize, BTreeSet<String>>> = BTreeMap::new();
    for (from, module) in modules.iter().enumerate() {
        let text = std::fs::read_to_string(&module.file)
            .with_context(|| format!("reading {}", module.file.display()))?;
        for path in referenced_paths(&text, &module.path) {
            // The deepest module the path names.
            let Some(target) = (0..=path.len())
                .rev()
                .map(|n| &path[..n])
                .find(|prefix| known.contains(prefix))
            else {
                continue;
            };
            if is_prefix(target, &module.path) || is_prefix(&module.path, target) {
                continue;
            }
            let Some(to) = modules.iter().position(|m| m.path == target) else {
                continue;
            };
            edges
                .entry(from)
                .or_default()
                .entry(to)
                .or_default()
                .insert(path.join("::"));
        }
    }
    let components = strongly_connected(modules.len(), &edges);
    let mut rings = Vec::new();
    for component in components.into_iter().filter(|c| c.len() > 1) {
        let mut lines = vec![format!(
            "a ring of {} modules: {}",
            component.len(),
            component
                .iter()
                .map(|&m| display(&modules[m].path))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        for &from in &component {
            for (&to, names) in edges.get(&from).into_iter().flatten() {
                if component.contains(&to) {
                    lines.push(format!(
                        "  {} -> {}: {}",
                        display(&modules[from].path),
                        display(&modules[to].path),
                        names.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        rings.push(lines.join("\n"));
    }
    Ok(rings)
}

/// Tarjan's algorithm, iteratively: the strongly connected components of
/// the graph on `0..n`.
fn strongly_connected(
    n: usize,
    edges: &BTreeMap<usize, BTreeMap<usize, BTreeSet<String>>>,
) -> Vec<Vec<usize>> {
    let successors = |v: usize| -> Vec<usize> {
        edges
            .get(&v)
            .map(|e| e.keys().copied().collect())
            .unwrap_or_default()
    };
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        // (vertex, its successors, how many of them were visited)
        let mut work = vec![(start, successors(start), 0usize)];
        index[start] = next;
        low[start] = next;
        next += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some((v, succ, i)) = work.last_mut() {
            let v = *v;
            if let Some(&w) = succ.get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, successors(w), 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                low[*parent] = low[*parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate written into a fresh directory: (file under `src`, text).
    fn write_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-rings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
        }
        dir
    }

    #[test]
    fn a_ring_through_a_use_group_is_found_and_named() {
        let src = write_crate(
            "ring",
            &[
                (
                    "lib.rs",
                    "mod a;\nmod b;\nmod c;\n#[cfg(test)]\nmod tests;\n",
                ),
                ("a.rs", "use crate::{b::{One, Two}, c};\n"),
                ("b.rs", "fn f() { crate::c::g(); }\n"),
                ("c.rs", "use crate::a::Thing;\n"),
                ("tests.rs", "use crate::a::Thing;\n"),
            ],
        );
        let rings = rings_in_crate(&src).expect("reads");
        assert_eq!(rings.len(), 1, "{rings:?}");
        assert!(
            rings[0].starts_with("a ring of 3 modules: a, b, c"),
            "{}",
            rings[0]
        );
        assert!(rings[0].contains("a -> b: b::One, b::Two"), "{}", rings[0]);
        let _ = std::fs::remove_dir_all(src);
    }

    #[test]
    fn parents_and_children_naming_each_other_are_no_ring() {
        let src = write_crate(
            "family",
            &[
                ("lib.rs", "pub mod connection;\nmod screen;\n"),
                (
                    "connection.rs",
                    "mod recovery;\nuse recovery::Cause;\nuse crate::screen::Row;\n",
                ),
                (
                    "connection/recovery.rs",
                    "use super::Connection;\nuse crate::connection::Phase;\n",
                ),
                ("screen.rs", "// nothing\n"),
            ],
        );
        assert_eq!(rings_in_crate(&src).expect("reads"), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(src);
    }

    #[test]
    fn test_modules_and_inline_tests_may_reach_anything() {
        let src = write_crate(
            "tests",
            &[
                ("lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod testkit;\n"),
                ("a.rs", "use crate::b::X;\n"),
                (
                    "b.rs",
                    "pub struct X; // see crate::a::Y\n#[cfg(test)]\nfn helper() {}\n\
                     #[cfg(test)]\nmod tests { use crate::a::Y; }\n",
                ),
                ("testkit.rs", "use crate::{a, b};\n"),
            ],
        );
        assert_eq!(rings_in_crate(&src).expect("reads"), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(src);
    }

    #[test]
    fn a_ring_through_super_between_siblings_is_found() {
        let src = write_crate(
            "siblings",
            &[
                ("lib.rs", "mod session;\n"),
                ("session.rs", "mod core;\nmod task;\n"),
                ("session/core.rs", "use super::task::Shell;\n"),
                ("session/task.rs", "use super::core::SessionCore;\n"),
            ],
        );
        let rings = rings_in_crate(&src).expect("reads");
        assert_eq!(rings.len(), 1, "{rings:?}");
        assert!(
            rings[0].contains("session::core -> session::task"),
            "{}",
            rings[0]
        );
        let _ = std::fs::remove_dir_all(src);
    }
}
