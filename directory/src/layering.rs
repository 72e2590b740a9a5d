//! The directory's modules are layers, and this test keeps them so.
//!
//! They used to import each other in a ring (`edge` → `web` → `signin` →
//! `pages` → `sessions` → `signin`, and `lib.rs` both above and below
//! everything), so no module could be understood, or moved, alone. Now each
//! module may name only modules in a lower layer: nothing above it, nothing
//! beside it, and never the crate root (`lib.rs` assembles the router and
//! sits on top). ARCHITECTURE.md lists the same layers.

use std::path::Path;

/// From the bottom up. A module not listed here fails the test, so a new
/// one has to be given its place.
const LAYERS: &[&[&str]] = &[
    // Plain data and pure functions.
    &["error", "failover", "origins"],
    // What every handler shares.
    &["state"],
    // The edge of every answer, and talking to hosts.
    &["edge", "probe"],
    // HTML, drawn from values.
    &["views"],
    // Who is signed in; the host registry; the account CLI.
    &["accounts", "hosts", "signin"],
    // Placement and failover over HTTP; the identities CLI; settings.
    &["identities", "sessions", "settings"],
    // Share links and recordings, on sessions' ids and refusals.
    &["recordings", "shares"],
    // Pages and the terminal page's serving.
    &["pages", "web"],
    // The generated description of all of the above.
    &["openapi"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The module names a source refers to as `crate::name`, outside its unit
/// tests (which may reach anything, the root included).
fn crate_references(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let inside = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or(""),
            None => rest,
        };
        for item in inside.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
            if !rest.starts_with('{') {
                break;
            }
        }
    }
    names
}

#[test]
fn no_module_names_one_above_or_beside_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(module) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".rs"))
        else {
            continue;
        };
        if matches!(module, "lib" | "main" | "layering") {
            continue;
        }
        let Some(own) = layer_of(module) else {
            violations.push(format!("{module}.rs is in no layer: add it to LAYERS"));
            continue;
        };
        seen += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        for name in crate_references(&source) {
            match layer_of(&name) {
                Some(layer) if layer < own => {}
                Some(_) => violations.push(format!(
                    "{module} (layer {own}) names crate::{name}, which is not below it"
                )),
                None => violations.push(format!(
                    "{module} names crate::{name}: the crate root is the top; name the module that defines it"
                )),
            }
        }
    }
    assert_eq!(
        seen,
        LAYERS.iter().map(|layer| layer.len()).sum::<usize>(),
        "every listed module has a file"
    );
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn references_are_found_in_every_spelling() {
    let source = "use crate::state::AppState;\nuse crate::{edge, views::page};\n\
                  fn f() { crate::hosts::check_host_id(\"\"); }\n\
                  #[cfg(test)]\nmod tests { use crate::AppState; }";
    assert_eq!(
        crate_references(source),
        ["state", "edge", "views", "hosts"]
    );
}
