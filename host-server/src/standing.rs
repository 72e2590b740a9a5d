//! What this host may do right now: hold a lease, take new sessions, admit
//! clients. Written by the lease task and the shutdown path, read by every
//! WebSocket admission and `/healthz`.
//!
//! The flags are independent on purpose. A lapsed lease stops only *new*
//! sessions: the sessions already running here go on serving their clients
//! (DESIGN.md: the data plane outlives the control plane) until a fenced
//! write says another host holds them. A drain, whoever asked for it, sends
//! every client away. The two drains differ in how long they last: a
//! shutdown's ends with this process, an operator's is kept in the store
//! and lasts until the operator lifts it.

use std::sync::atomic::{AtomicBool, Ordering};

use store::Drain;

#[derive(Debug)]
pub struct Standing {
    /// This host keeps a lease in the store (it has one to keep).
    leased_host: bool,
    /// The lease is live by this host's own conservative count; always
    /// true for a host without a store, which needs no lease.
    lease_live: AtomicBool,
    /// This process is shutting down (SIGTERM): its sessions are moving.
    shutting_down: AtomicBool,
    /// An operator's drain, as the last renewal read it from the store.
    drain_requested: AtomicBool,
}

/// The lease as `/healthz` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// No store, so no lease: the host serves alone.
    None,
    Live,
    /// Not renewed in time: live sessions go on, new ones are refused.
    Lapsed,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::None => "none",
            LeaseState::Live => "live",
            LeaseState::Lapsed => "lapsed",
        }
    }
}

impl Standing {
    /// A host without a store: no lease to keep, always serving.
    pub fn standalone() -> Standing {
        Standing {
            leased_host: false,
            lease_live: AtomicBool::new(true),
            shutting_down: AtomicBool::new(false),
            drain_requested: AtomicBool::new(false),
        }
    }

    /// A host that keeps a lease in the store: it takes no new session
    /// until its first renewal is granted.
    pub fn leased() -> Standing {
        Standing {
            leased_host: true,
            lease_live: AtomicBool::new(false),
            ..Standing::standalone()
        }
    }

    pub fn lease(&self) -> LeaseState {
        match (self.leased_host, self.lease_live.load(Ordering::SeqCst)) {
            (false, _) => LeaseState::None,
            (true, true) => LeaseState::Live,
            (true, false) => LeaseState::Lapsed,
        }
    }

    /// Records whether the lease is live; returns what it was before.
    pub fn set_lease_live(&self, live: bool) -> bool {
        self.lease_live.swap(live, Ordering::SeqCst)
    }

    /// Starts this process's shutdown drain; false if it had begun already.
    pub fn begin_shutdown(&self) -> bool {
        !self.shutting_down.swap(true, Ordering::SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Records the operator's drain as read from the store; returns what it
    /// was before.
    pub fn set_drain_requested(&self, requested: bool) -> bool {
        self.drain_requested.swap(requested, Ordering::SeqCst)
    }

    /// Why this host is draining, if it is; the operator's word first,
    /// since it outlives this process.
    pub fn drain(&self) -> Option<Drain> {
        if self.drain_requested.load(Ordering::SeqCst) {
            Some(Drain::Operator)
        } else if self.is_shutting_down() {
            Some(Drain::Shutdown)
        } else {
            None
        }
    }

    /// Whether a client may reach a session here at all: not while the
    /// host drains, since its sessions are leaving.
    pub fn admits_clients(&self) -> bool {
        self.drain().is_none()
    }

    /// Whether a session that does not run here may start or be restored:
    /// only with a live lease, since a host without one may already count
    /// as lost, and nobody would find a session started here.
    pub fn takes_new_sessions(&self) -> bool {
        self.admits_clients() && self.lease() != LeaseState::Lapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_lease_stops_new_sessions_but_not_clients() {
        let standing = Standing::leased();
        assert_eq!(standing.lease(), LeaseState::Lapsed);
        assert!(!standing.takes_new_sessions(), "before the first grant");
        assert!(standing.admits_clients());
        assert!(!standing.set_lease_live(true));
        assert!(standing.takes_new_sessions());
        assert!(standing.set_lease_live(false));
        assert!(!standing.takes_new_sessions());
        assert!(
            standing.admits_clients(),
            "live sessions keep their clients"
        );
    }

    #[test]
    fn a_host_without_a_store_always_serves() {
        let standing = Standing::standalone();
        assert_eq!(standing.lease(), LeaseState::None);
        assert!(standing.takes_new_sessions());
    }

    #[test]
    fn either_drain_sends_clients_away_and_the_operators_is_named_first() {
        let standing = Standing::standalone();
        assert!(standing.begin_shutdown());
        assert!(
            !standing.begin_shutdown(),
            "a second SIGTERM changes nothing"
        );
        assert_eq!(standing.drain(), Some(Drain::Shutdown));
        assert!(!standing.admits_clients());
        standing.set_drain_requested(true);
        assert_eq!(standing.drain(), Some(Drain::Operator));

        let operator_only = Standing::standalone();
        operator_only.set_drain_requested(true);
        assert!(!operator_only.takes_new_sessions());
        assert!(operator_only.set_drain_requested(false));
        assert_eq!(operator_only.drain(), None);
        assert!(operator_only.takes_new_sessions(), "the drain was lifted");
    }
}
