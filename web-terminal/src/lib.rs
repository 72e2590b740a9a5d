//! The Thinline browser client.
//!
//! Everything with logic in it (the screen model, input encoding, selection,
//! the connection state machine, failover through the directory, colours and
//! layout) is plain Rust that is unit-tested natively with `cargo test -p
//! web-terminal`; `web.rs`, compiled only for wasm32, is the thin glue to the
//! browser's APIs.

pub mod action;
pub mod api;
pub mod connection;
pub mod directory;
pub mod json;
pub mod keybar;
pub mod keys;
pub mod links;
pub mod numbers;
pub mod predict;
pub mod render;
pub mod screen;
pub mod search;
pub mod selection;
pub mod settings;

#[cfg(target_arch = "wasm32")]
mod web;

/// Talc instead of Rust's default dlmalloc: 2 KB less of the first
/// visit's wasm as served, and faster (its authors' benchmarks; `cargo
/// xtask bench page` here).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(test)]
pub(crate) mod testutil;
