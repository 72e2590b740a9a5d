//! The failover decision, sans IO.
//!
//! Whether a session stays with its owner, waits for it, or moves is the
//! heart of DESIGN.md's promise 2, and it has to be right under every
//! interleaving of leases, probes and concurrent requests. So the decision
//! is a plain function of data: the session record, the host records, the
//! backend's clock and (when there is one) what probing the owner found.
//! The HTTP handlers in `sessions.rs` do the reading, probing and the
//! fenced `take_over`; everything they decide comes from here and is unit
//! tested in `failover/tests.rs` with plain values.
//!
//! The rules: an owner whose lease is live keeps its session unless there
//! is positive evidence its process is gone (its port refuses connections,
//! or another host answers there). Silence is not evidence: a partitioned
//! or stopped host looks silent, so the directory waits for its lease to
//! expire. A draining owner has let go of its sessions and counts as gone.
//! When a session moves it goes to the least-loaded live host that is not
//! draining and is not the owner being left. A live client renewing its
//! ticket while attached to the owner at the current epoch is never moved:
//! its connection proves the owner alive, whatever the lease says.

use store::{HostRecord, Millis, SessionRecord, SessionState};

/// A client's report that it cannot reach `host`, which it believed owned
/// the session at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreachableReport {
    pub host: String,
    pub epoch: u64,
}

/// A live client's word that it is attached to `host`, welcomed at
/// `epoch`: what a ticket renewal says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub host: String,
    pub epoch: u64,
}

/// What probing the owner's `/healthz` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Nobody has probed yet.
    NotProbed,
    /// The owner answered as itself.
    Alive,
    /// The connection was refused: nothing listens at the owner's address,
    /// so its process is gone.
    Refused,
    /// Another host answered at the owner's address (the port was reused or
    /// the host restarted under another id): the owner's process is gone.
    OtherHost(String),
    /// A timeout, a reset, an unreadable answer: no evidence either way. A
    /// partitioned or SIGSTOPped host looks like this.
    Inconclusive,
}

impl ProbeOutcome {
    /// Whether this is positive evidence that the owner's process is gone.
    pub fn proves_dead(&self) -> bool {
        matches!(self, ProbeOutcome::Refused | ProbeOutcome::OtherHost(_))
    }
}

/// A host a client should connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub url: String,
}

impl Target {
    fn of(host: &HostRecord) -> Target {
        Target {
            host: host.id.clone(),
            url: host.url.clone(),
        }
    }
}

/// What to do about one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The session's current owner is live: send the client there. With a
    /// report, this means the session had already moved past what the
    /// client knew.
    Current { owner: Target, epoch: u64 },
    /// The owner the client cannot reach holds a live lease and nothing
    /// shows its process is gone: the client should retry it (the fault
    /// may be on the client's side), and report again if it still fails.
    RetryOwner { owner: Target, epoch: u64 },
    /// Probe the owner at `url`, then decide again with the outcome.
    Probe { host: String, url: String },
    /// Move the session to `to` with `take_over(session, expected_epoch,
    /// to.host)`. If that is fenced, someone else moved it first: read the
    /// record again and decide again.
    Move {
        expected_epoch: u64,
        lost: String,
        to: Target,
    },
    /// The session has ended; it is never restored.
    Ended,
    /// The session must move but no live, non-draining host other than the
    /// lost owner exists.
    NoHealthyHost,
}

/// The least-loaded live host that is not draining and is not `exclude`.
/// Ties go to the smallest id, so replicas reading the same records agree.
pub fn least_loaded<'h>(
    hosts: &'h [HostRecord],
    now: Millis,
    exclude: Option<&str>,
) -> Option<&'h HostRecord> {
    hosts
        .iter()
        .filter(|host| {
            host.is_live(now) && !host.is_draining() && Some(host.id.as_str()) != exclude
        })
        .min_by(|a, b| (a.load, &a.id).cmp(&(b.load, &b.id)))
}

/// One decision about one session, from data read at one moment.
#[derive(Clone, Debug)]
pub struct FailoverPlan<'a> {
    session: &'a SessionRecord,
    hosts: &'a [HostRecord],
    /// The backend's clock when `hosts` was read; leases are judged by it
    /// and never by this process's clock.
    now: Millis,
    report: Option<&'a UnreachableReport>,
    attachment: Option<&'a Attachment>,
}

impl<'a> FailoverPlan<'a> {
    /// A plan for placement: answer the owner if its lease is live, move
    /// the session otherwise. Never probes.
    pub fn new(session: &'a SessionRecord, hosts: &'a [HostRecord], now: Millis) -> Self {
        FailoverPlan {
            session,
            hosts,
            now,
            report: None,
            attachment: None,
        }
    }

    /// A plan answering a client that cannot reach an owner.
    pub fn with_report(mut self, report: &'a UnreachableReport) -> Self {
        self.report = Some(report);
        self
    }

    /// A plan renewing the ticket of a client attached to a host: the
    /// owner it is attached to at the current epoch keeps the session,
    /// whatever its lease says (see `decide`).
    pub fn with_attachment(mut self, attachment: &'a Attachment) -> Self {
        self.attachment = Some(attachment);
        self
    }

    /// Decides with what is known so far. Returns [`Decision::Probe`] only
    /// when `probe` is [`ProbeOutcome::NotProbed`]; given any other outcome
    /// the decision is final.
    pub fn decide(&self, probe: &ProbeOutcome) -> Decision {
        let session = self.session;
        if session.state == SessionState::Ended {
            return Decision::Ended;
        }
        // A draining owner has let go of its sessions: it persisted them and
        // sent their clients here, so it counts as gone.
        let live_owner = self
            .hosts
            .iter()
            .find(|host| host.id == session.owner_host)
            .filter(|host| host.is_live(self.now) && !host.is_draining());
        // A client attached to the owner at the current epoch has a
        // working connection to it: better evidence that the owner lives
        // than its lease, which a store too busy to take the renewal in
        // time may have let lapse. Moving the session would restart its
        // programs for nothing, so the renewal keeps it where it is. A
        // draining owner has let go of the session, attached or not.
        if let Some(attached) = self.attachment
            && attached.host == session.owner_host
            && attached.epoch == session.epoch
            && let Some(owner) = self
                .hosts
                .iter()
                .find(|host| host.id == session.owner_host && !host.is_draining())
        {
            return self.current(owner);
        }
        let Some(report) = self.report else {
            return match live_owner {
                Some(owner) => self.current(owner),
                None => self.move_away(),
            };
        };
        // A record past what the client knew means someone moved the
        // session already; a report naming a later epoch than the record
        // is judged by the record.
        let already_moved = session.epoch > report.epoch || session.owner_host != report.host;
        match (live_owner, already_moved) {
            (Some(owner), true) => self.current(owner),
            (None, _) => self.move_away(),
            (Some(owner), false) => match probe {
                ProbeOutcome::NotProbed => Decision::Probe {
                    host: owner.id.clone(),
                    url: owner.url.clone(),
                },
                outcome if outcome.proves_dead() => self.move_away(),
                _ => Decision::RetryOwner {
                    owner: Target::of(owner),
                    epoch: session.epoch,
                },
            },
        }
    }

    fn current(&self, owner: &HostRecord) -> Decision {
        Decision::Current {
            owner: Target::of(owner),
            epoch: self.session.epoch,
        }
    }

    fn move_away(&self) -> Decision {
        let lost = &self.session.owner_host;
        match least_loaded(self.hosts, self.now, Some(lost)) {
            Some(host) => Decision::Move {
                expected_epoch: self.session.epoch,
                lost: lost.clone(),
                to: Target::of(host),
            },
            None => Decision::NoHealthyHost,
        }
    }
}

#[cfg(test)]
mod tests;
