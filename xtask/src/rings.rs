//! No crate's modules import each other in a ring.
//!
//! A ring (`a` names `b`, `b` names `c`, `c` names `a`) means none of its
//! modules can be read, tested or moved alone: the directory grew one of
//! five modules before anyone noticed. This check reads each crate's module
//! graph from its roots (`lib.rs`, `main.rs`) with `modules.rs`, which
//! leaves comments, literals and `#[cfg(test)]` items out. A module naming
//! its own ancestor or descendant is how Rust spells one thing split over
//! files (a child's `impl super::Connection`), so those edges do not count;
//! every other edge does, and any strongly connected set of modules is
//! reported with the paths that tie it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::modules::{module_path, production_code, references};

/// The rings found in the crate whose sources are under `src`, each as the
/// lines that describe it; empty when there are none.
pub fn rings_in_crate(src: &Path) -> Result<Vec<String>> {
    let mut rings = Vec::new();
    for root in ["lib.rs", "main.rs"] {
        if src.join(root).is_file() {
            rings.extend(rings_from(src, Path::new(root))?);
        }
    }
    rings.sort();
    rings.dedup();
    Ok(rings)
}

/// `(from, to) -> the paths by which from names to`, over every module
/// reachable from `root`.
type Edges = BTreeMap<(PathBuf, PathBuf), BTreeSet<String>>;

fn rings_from(src: &Path, root: &Path) -> Result<Vec<String>> {
    let mut modules = BTreeSet::new();
    let mut edges = Edges::new();
    let mut queue = VecDeque::from([root.to_path_buf()]);
    while let Some(file) = queue.pop_front() {
        if !modules.insert(file.clone()) {
            continue;
        }
        let path = src.join(&file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let here = module_path(&file);
        for reference in references(src, &file, &production_code(&text)) {
            let there = module_path(&reference.module);
            queue.push_back(reference.module.clone());
            if is_prefix(&here, &there) || is_prefix(&there, &here) {
                continue;
            }
            edges
                .entry((file.clone(), reference.module))
                .or_default()
                .insert(reference.path.join("::"));
        }
    }
    let modules: Vec<PathBuf> = modules.into_iter().collect();
    let index: BTreeMap<&PathBuf, usize> =
        modules.iter().enumerate().map(|(i, m)| (m, i)).collect();
    let mut successors = vec![Vec::new(); modules.len()];
    for (from, to) in edges.keys() {
        if let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) {
            successors[a].push(b);
        }
    }
    let mut rings = Vec::new();
    for component in strongly_connected(&successors) {
        if component.len() < 2 {
            continue;
        }
        let name = |m: usize| display(&module_path(&modules[m]));
        let mut lines = vec![format!(
            "a ring of {} modules: {}",
            component.len(),
            component
                .iter()
                .map(|&m| name(m))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        for ((from, to), paths) in &edges {
            let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) else {
                continue;
            };
            if component.contains(&a) && component.contains(&b) {
                let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                lines.push(format!(
                    "  {} -> {}: {}",
                    name(a),
                    name(b),
                    paths.join(", ")
                ));
            }
        }
        rings.push(lines.join("\n"));
    }
    Ok(rings)
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

/// Tarjan's algorithm, iteratively: the strongly connected components of
/// the graph on `0..successors.len()`, each sorted.
fn strongly_connected(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = successors.len();
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
        // (vertex, how many of its successors were visited)
        let mut work = vec![(start, 0usize)];
        index[start] = next;
        low[start] = next;
        next += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some((v, i)) = work.last_mut() {
            let v = *v;
            if let Some(&w) = successors[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _)) = work.last() {
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
    use crate::modules::tests::Tree;

    #[test]
    fn a_ring_through_a_use_group_is_found_and_named() {
        let tree = Tree::new(
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
        let rings = rings_in_crate(&tree.0).expect("reads");
        assert_eq!(rings.len(), 1, "{rings:?}");
        assert!(
            rings[0].starts_with("a ring of 3 modules: a, b, c"),
            "{}",
            rings[0]
        );
        assert!(rings[0].contains("a -> b: b::One, b::Two"), "{}", rings[0]);
    }

    #[test]
    fn parents_and_children_naming_each_other_are_no_ring() {
        let tree = Tree::new(
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
        assert_eq!(
            rings_in_crate(&tree.0).expect("reads"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn test_modules_comments_and_inline_tests_may_reach_anything() {
        let tree = Tree::new(
            "tests",
            &[
                ("lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod testkit;\n"),
                ("a.rs", "use crate::b::X;\n"),
                (
                    "b.rs",
                    "pub struct X; // see crate::a::Y\nconst S: &str = \"crate::a\";\n\
                     #[cfg(test)]\nfn helper() { crate::a::y(); }\n\
                     #[cfg(test)]\nmod tests { use crate::a::Y; }\n",
                ),
                ("testkit.rs", "use crate::{a, b};\n"),
            ],
        );
        assert_eq!(
            rings_in_crate(&tree.0).expect("reads"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_ring_through_super_between_siblings_is_found() {
        let tree = Tree::new(
            "siblings",
            &[
                ("lib.rs", "mod session;\n"),
                ("session.rs", "mod core;\nmod task;\n"),
                ("session/core.rs", "use super::task::Shell;\n"),
                ("session/task.rs", "use super::core::SessionCore;\n"),
            ],
        );
        let rings = rings_in_crate(&tree.0).expect("reads");
        assert_eq!(rings.len(), 1, "{rings:?}");
        assert!(
            rings[0].contains("session::core -> session::task"),
            "{}",
            rings[0]
        );
    }

    #[test]
    fn a_binarys_modules_are_read_from_its_main() {
        let tree = Tree::new(
            "binary",
            &[
                ("main.rs", "mod build;\nmod test;\n"),
                ("build.rs", "use crate::test::check;\n"),
                ("test.rs", "use crate::build::binary;\n"),
            ],
        );
        let rings = rings_in_crate(&tree.0).expect("reads");
        assert_eq!(rings.len(), 1, "{rings:?}");
        assert!(
            rings[0].starts_with("a ring of 2 modules: build, test"),
            "{}",
            rings[0]
        );
    }

    #[test]
    fn the_workspace_has_no_ring() {
        let root = crate::cmd::workspace_root();
        for entry in std::fs::read_dir(&root).expect("the workspace") {
            let src = entry.expect("an entry").path().join("src");
            if src.is_dir() {
                let rings = rings_in_crate(&src).expect("reads");
                assert_eq!(rings, Vec::<String>::new(), "{}", src.display());
            }
        }
    }
}
