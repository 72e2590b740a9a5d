//! Sign-in rate limits, so that passwords cannot be guessed at speed.
//!
//! governor implements GCRA (the generic cell rate algorithm): one timestamp
//! per key instead of a bucket refilled by a timer, so a keyed limiter with
//! many keys costs a map lookup per attempt and no background task. Two
//! limiters run side by side: per user name (one account under attack from
//! many addresses) and per client address (one address trying many names).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

/// Forgotten keys are swept after this many attempts, so a flood of made-up
/// user names cannot grow the maps without bound.
const SWEEP_EVERY: u32 = 1024;

/// Burst sizes and sustained rates. A zero is taken as one: a limiter that
/// refused everything would lock every user out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_user_burst: u32,
    pub per_user_per_minute: u32,
    pub per_address_burst: u32,
    pub per_address_per_minute: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user_burst: 5,
            per_user_per_minute: 5,
            per_address_burst: 20,
            per_address_per_minute: 30,
        }
    }
}

fn quota(burst: u32, per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

type Keyed<K, C> = RateLimiter<K, HashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One limiter per user name and one per client address.
pub struct LoginLimiter<C: Clock + Clone = DefaultClock> {
    per_user: Keyed<String, C>,
    per_address: Keyed<IpAddr, C>,
    clock: C,
    attempts: AtomicU32,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LoginLimiter<C> {
    fn with_clock(limits: LoginLimits, clock: C) -> Self {
        LoginLimiter {
            per_user: RateLimiter::hashmap_with_clock(
                quota(limits.per_user_burst, limits.per_user_per_minute),
                clock.clone(),
            ),
            per_address: RateLimiter::hashmap_with_clock(
                quota(limits.per_address_burst, limits.per_address_per_minute),
                clock.clone(),
            ),
            clock,
            attempts: AtomicU32::new(0),
        }
    }

    /// Counts one sign-in attempt by `user` from `addr`. `Err(wait)` when
    /// either budget is spent: how long until an attempt would be allowed.
    /// An address that is refused is not charged to the user, so one noisy
    /// address does not use up an account's budget for everybody else.
    pub fn check(&self, user: &str, addr: IpAddr) -> Result<(), Duration> {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_user.retain_recent();
            self.per_address.retain_recent();
        }
        let now = self.clock.now();
        self.per_address
            .check_key(&address_key(addr))
            .map_err(|refused| refused.wait_time_from(now))?;
        self.per_user
            .check_key(&user.to_owned())
            .map_err(|refused| refused.wait_time_from(now))?;
        Ok(())
    }
}

impl<C: Clock + Clone> std::fmt::Debug for LoginLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("users", &self.per_user.len())
            .field("addresses", &self.per_address.len())
            .finish()
    }
}

/// The key an address is limited under. An IPv6 client normally holds a
/// whole /64, so counting each of its addresses apart would let it try
/// 2^64 times; IPv4 addresses written as IPv6 count as the IPv4 address.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    fn numbered_address(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 + n))
    }

    fn limiter(limits: LoginLimits) -> (LoginLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (LoginLimiter::with_clock(limits, clock.clone()), clock)
    }

    #[test]
    fn a_user_gets_a_burst_then_waits_for_the_sustained_rate() {
        let (limits, clock) = limiter(LoginLimits::default());
        for attempt in 0..5 {
            assert_eq!(limits.check("alice", HOME), Ok(()), "attempt {attempt}");
        }
        let wait = limits.check("alice", HOME).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(12),
            "{wait:?}"
        );
        clock.advance(wait);
        assert_eq!(limits.check("alice", HOME), Ok(()));
        assert!(limits.check("alice", HOME).is_err());
    }

    #[test]
    fn the_real_clock_refuses_with_a_positive_wait() {
        let limits = LoginLimiter::new(LoginLimits::default());
        for _ in 0..5 {
            assert_eq!(limits.check("alice", HOME), Ok(()));
        }
        let wait = limits.check("alice", HOME).unwrap_err();
        assert!(wait > Duration::from_secs(1), "{wait:?}");
    }

    #[test]
    fn users_are_limited_independently() {
        let (limits, _clock) = limiter(LoginLimits::default());
        for _ in 0..5 {
            assert_eq!(limits.check("alice", HOME), Ok(()));
        }
        assert!(limits.check("alice", HOME).is_err());
        assert!(
            limits.check("alice", AWAY).is_err(),
            "a new address must not reset alice"
        );
        assert_eq!(limits.check("bob", HOME), Ok(()));
    }

    #[test]
    fn addresses_are_limited_independently() {
        let (limits, _clock) = limiter(LoginLimits::default());
        for attempt in 0..20 {
            assert_eq!(limits.check(&format!("user{attempt}"), HOME), Ok(()));
        }
        let wait = limits.check("someone-else", HOME).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert_eq!(limits.check("someone-else", AWAY), Ok(()));
    }

    #[test]
    fn a_refused_address_does_not_spend_the_users_budget() {
        let (limits, _clock) = limiter(LoginLimits {
            per_address_burst: 1,
            per_address_per_minute: 1,
            ..LoginLimits::default()
        });
        assert_eq!(limits.check("alice", HOME), Ok(()));
        for _ in 0..10 {
            assert!(limits.check("alice", HOME).is_err());
        }
        // Alice's own budget of five is still four attempts from elsewhere.
        for n in 1..=4 {
            assert_eq!(
                limits.check("alice", numbered_address(n)),
                Ok(()),
                "address {n}"
            );
        }
        assert!(limits.check("alice", numbered_address(5)).is_err());
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64_prefix() {
        let (limits, _clock) = limiter(LoginLimits {
            per_address_burst: 2,
            ..LoginLimits::default()
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limits.check("u1", a), Ok(()));
        assert_eq!(limits.check("u2", b), Ok(()));
        assert!(limits.check("u3", a).is_err());
        assert_eq!(limits.check("u4", elsewhere), Ok(()));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), HOME);
    }

    #[test]
    fn zero_limits_still_let_one_attempt_through() {
        let (limits, _clock) = limiter(LoginLimits {
            per_user_burst: 0,
            per_user_per_minute: 0,
            per_address_burst: 0,
            per_address_per_minute: 0,
        });
        assert_eq!(limits.check("alice", HOME), Ok(()));
        assert!(limits.check("alice", HOME).is_err());
    }

    #[test]
    fn forgotten_keys_are_swept() {
        let (limits, clock) = limiter(LoginLimits::default());
        for n in 0..SWEEP_EVERY - 1 {
            assert_eq!(
                limits.check(&format!("made-up-{n}"), numbered_address(n)),
                Ok(())
            );
        }
        let swept = usize::try_from(SWEEP_EVERY - 1).unwrap();
        assert_eq!(
            (limits.per_user.len(), limits.per_address.len()),
            (swept, swept)
        );
        clock.advance(Duration::from_secs(3600));
        assert_eq!(limits.check("alice", HOME), Ok(()));
        assert_eq!((limits.per_user.len(), limits.per_address.len()), (1, 1));
    }
}
