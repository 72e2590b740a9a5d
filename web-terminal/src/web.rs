//! Browser glue (wasm32 only); written next.
