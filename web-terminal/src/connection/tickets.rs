//! When a ticket must be renewed, and what a refused one means.
//!
//! A ticket lets one hello through for about a minute. So a socket is
//! never opened with one that is about to run out (`TICKET_MIN_LEFT_MS`),
//! a live connection renews it in the background every
//! `TICKET_REFRESH_MS` so that a reconnect after a drop needs no directory
//! (a directory outage must not stand between a user and a live host), and
//! a host's refusal (4001) is answered once with a fresh ticket, since the
//! session may have moved to another epoch meanwhile; a second refusal is
//! the user's to see. Whether the sign-in itself has ended is the
//! directory's to say: a 401 there sends the page to the sign-in form.
//! This is an `impl Connection` beside `connection.rs` because it shares
//! its state.

use protocol::CloseCode;

use super::{Action, Cause, ClosedBecause, Connection, Phase};
use crate::directory::{Query, Ticket};

/// A socket is opened only with a ticket that has at least this long to
/// run; otherwise a fresh one is fetched first. It covers the connect, the
/// hello and the tolerated clock skew between directory and host.
pub const TICKET_MIN_LEFT_MS: u64 = 10_000;
/// A live connection renews its ticket this often (sooner if the ticket
/// is short-lived), so one is always at hand for a reconnect.
pub const TICKET_REFRESH_MS: u64 = 30_000;
/// Renewals never come closer together than this, whatever the directory
/// says about a ticket's lifetime.
const MIN_REFRESH_GAP_MS: u64 = 1_000;

/// A ticket and when it runs out by this page's clock.
#[derive(Debug)]
pub(super) struct HeldTicket {
    ticket: Ticket,
    expires_at: u64,
}

impl HeldTicket {
    pub(super) fn text(&self) -> &str {
        &self.ticket.text
    }

    /// Good for a new socket: enough of it left.
    fn fresh(&self, now: u64) -> bool {
        self.expires_at.saturating_sub(now) >= TICKET_MIN_LEFT_MS
    }

    /// Not run out yet: a host may still take it.
    fn valid(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

/// What to do about the ticket before opening a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Readiness {
    /// Connect now.
    Ready,
    /// Fetch a fresh ticket first; the one held would still do while no
    /// directory answers.
    Stale,
    /// No ticket, or it has run out: nothing to connect with.
    Missing,
}

impl Connection {
    /// Keeps the ticket of a placement that arrived at `now`, and schedules
    /// its renewal.
    pub(super) fn take_ticket(&mut self, ticket: Ticket, now: u64) {
        let lifetime = ticket.lifetime_ms;
        // Half the lifetime for a short-lived ticket, so a renewal that
        // fails once can be retried before it runs out.
        let renew_after = TICKET_REFRESH_MS
            .min(
                lifetime
                    .saturating_sub(TICKET_MIN_LEFT_MS)
                    .max(lifetime / 2),
            )
            .max(MIN_REFRESH_GAP_MS);
        self.refresh_at = now + renew_after;
        self.ticket = Some(HeldTicket {
            ticket,
            expires_at: now + lifetime,
        });
    }

    pub(super) fn ticket_readiness(&self, now: u64) -> Readiness {
        match &self.ticket {
            Some(t) if t.fresh(now) => Readiness::Ready,
            Some(t) if t.valid(now) => Readiness::Stale,
            _ => Readiness::Missing,
        }
    }

    /// When a live connection renews its ticket; `None` while it is not
    /// live or a question to the directory is already out (its answer
    /// carries a ticket too).
    pub(super) fn refresh_due(&self) -> Option<u64> {
        (self.phase == Phase::Live && self.dir.query().is_none()).then_some(self.refresh_at)
    }

    pub(super) fn refresh_if_due(&mut self, now: u64) {
        if self.refresh_due().is_some_and(|at| now >= at) {
            // Asked again later if this answer brings no usable ticket.
            self.refresh_at = now + TICKET_REFRESH_MS;
            // A renewal, not a placement: this page's working connection
            // tells the directory the host lives, so a lease that a busy
            // store let lapse does not move the session under it.
            let query = match (self.session, &self.host, self.epoch) {
                (Some(session), Some(host), Some(epoch)) => Query::Renewal {
                    session,
                    host: host.clone(),
                    epoch,
                },
                (session, _, _) => Query::Placement {
                    session,
                    new: false,
                },
            };
            self.ask(query, now);
        }
    }

    /// A host refused the ticket (4001). The first time since the last
    /// welcome, a fresh one is fetched and the host tried again: the
    /// session may have moved on to another epoch, or the ticket aged on a
    /// slow link. A second refusal is shown, and nothing more is tried.
    pub(super) fn ticket_refused(&mut self, now: u64) {
        self.ticket = None;
        if self.ticket_retried {
            self.error = Some(CloseCode::Unauthorized.advice().to_owned());
            self.stop(ClosedBecause::Unauthorized, now);
            return;
        }
        self.ticket_retried = true;
        self.error = Some("the host refused the sign-in ticket; getting a new one".to_owned());
        self.socket_failed(Cause::TicketRefused, now);
    }

    /// Asks for a fresh ticket for the session, waiting for it.
    pub(super) fn refresh_ticket(&mut self, now: u64) {
        self.set_phase(Phase::Locating, now);
        if self.dir.query().is_none() {
            let session = self.session;
            self.ask(
                Query::Placement {
                    session,
                    new: self.session.is_none() && self.new_session,
                },
                now,
            );
        }
    }

    /// The directory answered 401: the sign-in has ended. The page leaves
    /// for `login`; nothing else is tried.
    pub(super) fn signed_out(&mut self, login: String, now: u64) {
        self.close_if_open("client signed out");
        self.error = Some("your sign-in has ended; sign in again".to_owned());
        self.ticket = None;
        self.stop(ClosedBecause::SignedOut, now);
        self.actions.push_back(Action::SignIn(login));
    }
}
