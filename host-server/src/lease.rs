//! Counting this host's lease, sans IO (`renewal.rs` does the renewing).
//!
//! A host may take new sessions only while it holds a live lease. The
//! lease is timed by the backend's clock, which the host cannot read, so the
//! host counts conservatively from its own side: a grant obtained by a
//! request *sent* at local time `t` is treated as expiring at
//! `t + ttl - margin`. Because the backend set the expiry at or after the
//! moment it received that request, the host always stops believing in its
//! lease before a directory would let another host take its sessions. (A
//! suspended machine, whose monotonic clock stops, is the exception the
//! store's own `lapsed` answer covers.)

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// Send a renewal now.
    Renew,
    /// Nothing to do until the given instant.
    WaitUntil(Instant),
}

#[derive(Debug)]
pub struct LeaseKeeper {
    ttl: Duration,
    renew_every: Duration,
    margin: Duration,
    /// Local send time of the request behind the newest grant.
    granted_from: Option<Instant>,
    /// A renewal is in flight since this instant.
    in_flight: Option<Instant>,
    next_attempt: Option<Instant>,
    /// Consecutive failed renewals, for backoff and health.
    failures: u32,
}

impl LeaseKeeper {
    pub fn new(ttl: Duration, renew_every: Duration) -> LeaseKeeper {
        LeaseKeeper {
            ttl,
            renew_every,
            // Leave room for scheduling delays and a slow final write.
            margin: (ttl / 5).max(Duration::from_millis(200)),
            granted_from: None,
            in_flight: None,
            next_attempt: None,
            failures: 0,
        }
    }

    /// The instant after which this host must not serve.
    pub fn valid_until(&self) -> Option<Instant> {
        self.granted_from
            .map(|from| from + self.ttl.saturating_sub(self.margin))
    }

    pub fn is_valid(&self, now: Instant) -> bool {
        self.valid_until().is_some_and(|until| now < until)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn poll(&mut self, now: Instant) -> LeaseAction {
        if let Some(sent) = self.in_flight {
            // A renewal that takes longer than the renew interval is
            // abandoned so another directory can be tried.
            if now.duration_since(sent) < self.renew_every {
                return LeaseAction::WaitUntil(sent + self.renew_every);
            }
            self.in_flight = None;
            self.failures += 1;
        }
        match self.next_attempt {
            Some(at) if now < at => LeaseAction::WaitUntil(at),
            _ => {
                self.in_flight = Some(now);
                LeaseAction::Renew
            }
        }
    }

    /// The renewal sent at `sent` was granted.
    pub fn on_granted(&mut self, sent: Instant) {
        if self.granted_from.is_none_or(|from| sent > from) {
            self.granted_from = Some(sent);
        }
        self.in_flight = None;
        self.failures = 0;
        self.next_attempt = Some(sent + self.renew_every);
    }

    /// The renewal failed at `now`; try again soon (well inside the TTL).
    pub fn on_failed(&mut self, now: Instant) {
        self.in_flight = None;
        self.failures += 1;
        let retry = (self.renew_every / 4).max(Duration::from_millis(100));
        self.next_attempt = Some(now + retry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(5);
    const EVERY: Duration = Duration::from_secs(1);

    #[test]
    fn a_new_host_renews_at_once_and_is_not_valid_before_a_grant() {
        let now = Instant::now();
        let mut keeper = LeaseKeeper::new(TTL, EVERY);
        assert!(!keeper.is_valid(now));
        assert_eq!(keeper.poll(now), LeaseAction::Renew);
        assert_eq!(keeper.poll(now), LeaseAction::WaitUntil(now + EVERY));
    }

    #[test]
    fn a_grant_is_valid_until_ttl_minus_margin_from_the_send_time() {
        let t0 = Instant::now();
        let mut keeper = LeaseKeeper::new(TTL, EVERY);
        keeper.poll(t0);
        keeper.on_granted(t0);
        assert!(keeper.is_valid(t0 + Duration::from_secs(3)));
        assert!(
            !keeper.is_valid(t0 + Duration::from_secs(4)),
            "margin is 1 s"
        );
        assert_eq!(
            keeper.poll(t0 + EVERY / 2),
            LeaseAction::WaitUntil(t0 + EVERY)
        );
        assert_eq!(keeper.poll(t0 + EVERY), LeaseAction::Renew);
    }

    #[test]
    fn failures_retry_quickly_and_the_lease_lapses_without_grants() {
        let t0 = Instant::now();
        let mut keeper = LeaseKeeper::new(TTL, EVERY);
        keeper.poll(t0);
        keeper.on_granted(t0);
        let mut now = t0 + EVERY;
        while now < t0 + TTL {
            if keeper.poll(now) == LeaseAction::Renew {
                keeper.on_failed(now);
            }
            now += Duration::from_millis(50);
        }
        assert!(keeper.failures() >= 10, "{} retries", keeper.failures());
        assert!(!keeper.is_valid(t0 + TTL - Duration::from_millis(500)));
    }

    #[test]
    fn a_renewal_that_hangs_is_abandoned() {
        let t0 = Instant::now();
        let mut keeper = LeaseKeeper::new(TTL, EVERY);
        assert_eq!(keeper.poll(t0), LeaseAction::Renew);
        assert_eq!(keeper.poll(t0 + EVERY), LeaseAction::Renew);
        assert_eq!(keeper.failures(), 1);
    }

    #[test]
    fn a_late_answer_to_an_old_request_does_not_extend_the_lease() {
        let t0 = Instant::now();
        let mut keeper = LeaseKeeper::new(TTL, EVERY);
        keeper.on_granted(t0 + EVERY);
        keeper.on_granted(t0);
        assert_eq!(keeper.valid_until(), Some(t0 + EVERY + TTL - EVERY));
    }
}
