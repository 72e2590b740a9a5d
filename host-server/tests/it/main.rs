//! The host served in-process on a loopback port, driven by a native
//! WebSocket client with tickets signed in the test: sessions, reattach,
//! exactly-once input, restore from the shared store with epoch fencing,
//! admission, hot desking, the connection cap, ending a session, TLS, and
//! the drain a preStop hook asks for on the control socket.
#![allow(clippy::unwrap_used)]

mod admission;
mod control;
mod edge;
mod harness;
mod sessions;
