//! Sign-in rate limits, so that passwords cannot be guessed at speed and a
//! stranger cannot lock a named account out.
//!
//! governor implements GCRA (the generic cell rate algorithm): one timestamp
//! per key instead of a bucket refilled by a timer, so a keyed limiter with
//! many keys costs a map lookup per attempt and no background task.
//!
//! Counting per user name alone made every account lockable: five wrong
//! passwords from anywhere refused the owner everywhere. So attempts are
//! split by who is asking (OWASP's "device cookies"), in four lanes:
//!
//! - per address, for every attempt: one address trying many names;
//! - per user name and address, without a device cookie: one address
//!   guessing one account, and the only lane an owner on a new browser
//!   shares with a stranger at the same address;
//! - per user name, without a device cookie: every stranger guessing one
//!   account together, from however many addresses. It is wider than one
//!   address's lane, so a single address can never spend it on its own;
//! - per device, with a device cookie for that user (`device`): a browser
//!   that has signed in as the user before, counted by its device id.
//!
//! An attacker without the owner's cookie spends only strangers' lanes, so
//! the owner's browser still signs in; its own lane keeps a stolen laptop
//! from guessing fast. What remains shared is the per-address lane, which
//! the owner only meets from the attacker's own address (or NAT).

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{NotUntil, Quota, RateLimiter};

use crate::device::DeviceId;

/// Forgotten keys are swept after this many attempts, so a flood of made-up
/// user names cannot grow the maps without bound.
const SWEEP_EVERY: u32 = 1024;

/// Burst sizes and sustained rates of each lane (see the module's doc). A
/// zero is taken as one: a limiter that refused everything would lock
/// every user out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// One address guessing one account, without a device cookie.
    pub per_user_at_address_burst: u32,
    pub per_user_at_address_per_minute: u32,
    /// One address, whatever names it tries.
    pub per_address_burst: u32,
    pub per_address_per_minute: u32,
    /// One account, summed over every attempt without its device cookie.
    /// Keep it above the per-user-at-address figures, or one address alone
    /// can shut out every browser the owner has not signed in from yet.
    pub per_user_untrusted_burst: u32,
    pub per_user_untrusted_per_minute: u32,
    /// One browser holding a device cookie for the account.
    pub per_device_burst: u32,
    pub per_device_per_minute: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user_at_address_burst: 5,
            per_user_at_address_per_minute: 5,
            per_address_burst: 20,
            per_address_per_minute: 30,
            // Two addresses at full speed cannot spend it; three can, and
            // then only browsers without a device cookie wait.
            per_user_untrusted_burst: 20,
            per_user_untrusted_per_minute: 10,
            per_device_burst: 5,
            per_device_per_minute: 5,
        }
    }
}

/// Which lane refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Address,
    UserAtAddress,
    UserUntrusted,
    Device,
}

impl Limit {
    /// A name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Address => "address",
            Limit::UserAtAddress => "user at address",
            Limit::UserUntrusted => "user without device cookie",
            Limit::Device => "device",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attempt that was not allowed: which lane refused, and how long until
/// that lane would allow one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub wait: Duration,
}

fn quota(burst: u32, per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

type Keyed<K, C> = RateLimiter<K, HashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

fn keyed<K: Clone + Eq + std::hash::Hash, C: Clock + Clone>(
    burst: u32,
    per_minute: u32,
    clock: &C,
) -> Keyed<K, C> {
    RateLimiter::hashmap_with_clock(quota(burst, per_minute), clock.clone())
}

/// The four lanes of the module's doc, one keyed limiter each.
pub struct LoginLimiter<C: Clock + Clone = DefaultClock> {
    per_address: Keyed<IpAddr, C>,
    per_user_at_address: Keyed<(String, IpAddr), C>,
    per_user_untrusted: Keyed<String, C>,
    /// Keyed by ids only from cookies whose tag checked, so strangers
    /// cannot fill it with made-up devices.
    per_device: Keyed<DeviceId, C>,
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
            per_address: keyed(
                limits.per_address_burst,
                limits.per_address_per_minute,
                &clock,
            ),
            per_user_at_address: keyed(
                limits.per_user_at_address_burst,
                limits.per_user_at_address_per_minute,
                &clock,
            ),
            per_user_untrusted: keyed(
                limits.per_user_untrusted_burst,
                limits.per_user_untrusted_per_minute,
                &clock,
            ),
            per_device: keyed(
                limits.per_device_burst,
                limits.per_device_per_minute,
                &clock,
            ),
            clock,
            attempts: AtomicU32::new(0),
        }
    }

    /// Counts one sign-in attempt by `user` from `addr`. `device` is the id
    /// of a device cookie the caller has verified for this very `user`
    /// (`DeviceKey::verify`); with one, the attempt is counted against that
    /// device instead of the user's strangers' lanes.
    ///
    /// Lanes are checked in order (address, then either device or user at
    /// address and user) and a refusal stops there, so an attempt refused
    /// for its address is not charged to the user: one noisy address does
    /// not use up an account's budget for everybody else.
    pub fn check(
        &self,
        user: &str,
        addr: IpAddr,
        device: Option<&DeviceId>,
    ) -> Result<(), Refusal> {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.per_address.retain_recent();
            self.per_user_at_address.retain_recent();
            self.per_user_untrusted.retain_recent();
            self.per_device.retain_recent();
        }
        let now = self.clock.now();
        let address = address_key(addr);
        self.per_address
            .check_key(&address)
            .map_err(refused(Limit::Address, now))?;
        match device {
            Some(device) => self
                .per_device
                .check_key(device)
                .map_err(refused(Limit::Device, now))?,
            None => {
                self.per_user_at_address
                    .check_key(&(user.to_owned(), address))
                    .map_err(refused(Limit::UserAtAddress, now))?;
                self.per_user_untrusted
                    .check_key(&user.to_owned())
                    .map_err(refused(Limit::UserUntrusted, now))?;
            }
        }
        Ok(())
    }
}

fn refused<P: Reference>(limit: Limit, now: P) -> impl FnOnce(NotUntil<P>) -> Refusal {
    move |not_until| Refusal {
        limit,
        wait: not_until.wait_time_from(now),
    }
}

impl<C: Clock + Clone> std::fmt::Debug for LoginLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("addresses", &self.per_address.len())
            .field("users_at_addresses", &self.per_user_at_address.len())
            .field("users", &self.per_user_untrusted.len())
            .field("devices", &self.per_device.len())
            .finish()
    }
}

/// The key an address is limited under. An IPv6 client normally holds a
/// whole /64, so counting each of its addresses apart would let it try
/// 2^64 times; IPv4 addresses written as IPv6 count as the IPv4 address.
pub(crate) fn address_key(addr: IpAddr) -> IpAddr {
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

    fn device(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 16])
    }

    fn limiter(limits: LoginLimits) -> (LoginLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (LoginLimiter::with_clock(limits, clock.clone()), clock)
    }

    /// The lane that refused, or `None` if the attempt was allowed.
    fn refused_by(
        limits: &LoginLimiter<FakeRelativeClock>,
        user: &str,
        addr: IpAddr,
        device: Option<&DeviceId>,
    ) -> Option<Limit> {
        limits.check(user, addr, device).err().map(|r| r.limit)
    }

    #[test]
    fn one_address_gets_a_burst_per_user_then_waits_for_the_sustained_rate() {
        let (limits, clock) = limiter(LoginLimits::default());
        for attempt in 0..5 {
            assert_eq!(
                limits.check("alice", HOME, None),
                Ok(()),
                "attempt {attempt}"
            );
        }
        let refusal = limits.check("alice", HOME, None).unwrap_err();
        assert_eq!(refusal.limit, Limit::UserAtAddress);
        assert!(
            refusal.wait > Duration::ZERO && refusal.wait <= Duration::from_secs(12),
            "{refusal:?}"
        );
        clock.advance(refusal.wait);
        assert_eq!(limits.check("alice", HOME, None), Ok(()));
        assert!(limits.check("alice", HOME, None).is_err());
    }

    #[test]
    fn the_real_clock_refuses_with_a_positive_wait() {
        let limits = LoginLimiter::new(LoginLimits::default());
        for _ in 0..5 {
            assert_eq!(limits.check("alice", HOME, None), Ok(()));
        }
        let refusal = limits.check("alice", HOME, None).unwrap_err();
        assert!(refusal.wait > Duration::from_secs(1), "{refusal:?}");
    }

    #[test]
    fn five_wrong_from_one_address_do_not_lock_the_user_out_elsewhere() {
        let (limits, _clock) = limiter(LoginLimits::default());
        for _ in 0..5 {
            assert_eq!(limits.check("alice", AWAY, None), Ok(()));
        }
        for _ in 0..10 {
            assert_eq!(
                refused_by(&limits, "alice", AWAY, None),
                Some(Limit::UserAtAddress)
            );
        }
        // The attacker's address spent five of alice's strangers' twenty;
        // the refused ten were not charged.
        assert_eq!(limits.check("alice", HOME, None), Ok(()));
        assert_eq!(limits.check("bob", AWAY, None), Ok(()));
        for n in 0..14 {
            assert_eq!(
                limits.check("alice", numbered_address(n), None),
                Ok(()),
                "address {n}"
            );
        }
        assert_eq!(
            refused_by(&limits, "alice", numbered_address(99), None),
            Some(Limit::UserUntrusted)
        );
    }

    #[test]
    fn a_flood_from_many_addresses_leaves_the_device_lane_open() {
        let (limits, clock) = limiter(LoginLimits::default());
        for n in 0..20 {
            assert_eq!(limits.check("alice", numbered_address(n), None), Ok(()));
        }
        for n in 20..100 {
            assert_eq!(
                refused_by(&limits, "alice", numbered_address(n), None),
                Some(Limit::UserUntrusted),
                "address {n}"
            );
        }
        // Without a cookie alice waits with the strangers, even at home...
        let refusal = limits.check("alice", HOME, None).unwrap_err();
        assert_eq!(refusal.limit, Limit::UserUntrusted);
        assert!(
            refusal.wait > Duration::ZERO && refusal.wait <= Duration::from_secs(6),
            "{refusal:?}"
        );
        // ...but the browser she signed in from before passes, from
        // anywhere, the attackers' addresses included.
        assert_eq!(limits.check("alice", HOME, Some(&device(1))), Ok(()));
        assert_eq!(limits.check("alice", AWAY, Some(&device(1))), Ok(()));
        assert_eq!(
            limits.check("alice", numbered_address(3), Some(&device(1))),
            Ok(())
        );
        assert_eq!(limits.check("alice", AWAY, Some(&device(2))), Ok(()));
        // The strangers' lane refills at its sustained rate.
        clock.advance(refusal.wait);
        assert_eq!(limits.check("alice", numbered_address(200), None), Ok(()));
        assert_eq!(
            refused_by(&limits, "alice", numbered_address(201), None),
            Some(Limit::UserUntrusted)
        );
    }

    #[test]
    fn the_device_lane_is_limited_on_its_own() {
        let (limits, clock) = limiter(LoginLimits::default());
        let stolen = device(7);
        for n in 0..5 {
            assert_eq!(
                limits.check("alice", numbered_address(n), Some(&stolen)),
                Ok(())
            );
        }
        let refusal = limits
            .check("alice", numbered_address(5), Some(&stolen))
            .unwrap_err();
        assert_eq!(refusal.limit, Limit::Device);
        assert!(
            refusal.wait > Duration::ZERO && refusal.wait <= Duration::from_secs(12),
            "{refusal:?}"
        );
        // Another of alice's browsers, and alice without a cookie, are not
        // held back by that device: it spent neither of their lanes.
        assert_eq!(limits.check("alice", HOME, Some(&device(8))), Ok(()));
        for _ in 0..5 {
            assert_eq!(limits.check("alice", numbered_address(0), None), Ok(()));
        }
        clock.advance(refusal.wait);
        assert_eq!(limits.check("alice", AWAY, Some(&stolen)), Ok(()));
        assert_eq!(
            refused_by(&limits, "alice", AWAY, Some(&stolen)),
            Some(Limit::Device)
        );
    }

    #[test]
    fn addresses_are_limited_independently_and_for_everyone() {
        let (limits, clock) = limiter(LoginLimits::default());
        for attempt in 0..20 {
            assert_eq!(limits.check(&format!("user{attempt}"), HOME, None), Ok(()));
        }
        let refusal = limits.check("someone-else", HOME, None).unwrap_err();
        assert_eq!(refusal.limit, Limit::Address);
        assert!(
            refusal.wait > Duration::ZERO && refusal.wait <= Duration::from_secs(2),
            "{refusal:?}"
        );
        assert_eq!(limits.check("someone-else", AWAY, None), Ok(()));
        // A device cookie does not lift the address's limit: it bounds the
        // hashing one address can cause, whoever it says it is.
        assert_eq!(
            refused_by(&limits, "user0", HOME, Some(&device(1))),
            Some(Limit::Address)
        );
        clock.advance(refusal.wait);
        assert_eq!(limits.check("user0", HOME, Some(&device(1))), Ok(()));
    }

    #[test]
    fn a_refused_address_does_not_spend_the_users_budget() {
        let (limits, _clock) = limiter(LoginLimits {
            per_address_burst: 1,
            per_address_per_minute: 1,
            per_user_untrusted_burst: 5,
            ..LoginLimits::default()
        });
        assert_eq!(limits.check("alice", HOME, None), Ok(()));
        for _ in 0..10 {
            assert_eq!(
                refused_by(&limits, "alice", HOME, None),
                Some(Limit::Address)
            );
        }
        // Alice's strangers' budget of five is still four attempts.
        for n in 1..=4 {
            assert_eq!(
                limits.check("alice", numbered_address(n), None),
                Ok(()),
                "address {n}"
            );
        }
        assert_eq!(
            refused_by(&limits, "alice", numbered_address(5), None),
            Some(Limit::UserUntrusted)
        );
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_64_prefix() {
        let (limits, _clock) = limiter(LoginLimits {
            per_address_burst: 2,
            per_user_at_address_burst: 1,
            ..LoginLimits::default()
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limits.check("u1", a, None), Ok(()));
        assert_eq!(
            refused_by(&limits, "u1", b, None),
            Some(Limit::UserAtAddress)
        );
        assert_eq!(refused_by(&limits, "u3", a, None), Some(Limit::Address));
        assert_eq!(limits.check("u1", elsewhere, None), Ok(()));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), HOME);
    }

    #[test]
    fn zero_limits_still_let_one_attempt_through() {
        let (limits, _clock) = limiter(LoginLimits {
            per_user_at_address_burst: 0,
            per_user_at_address_per_minute: 0,
            per_address_burst: 0,
            per_address_per_minute: 0,
            per_user_untrusted_burst: 0,
            per_user_untrusted_per_minute: 0,
            per_device_burst: 0,
            per_device_per_minute: 0,
        });
        assert_eq!(limits.check("alice", HOME, None), Ok(()));
        assert!(limits.check("alice", HOME, None).is_err());
        assert_eq!(limits.check("alice", AWAY, Some(&device(1))), Ok(()));
        assert!(
            limits
                .check("alice", numbered_address(1), Some(&device(1)))
                .is_err()
        );
    }

    #[test]
    fn forgotten_keys_are_swept() {
        let (limits, clock) = limiter(LoginLimits::default());
        let lens = |limits: &LoginLimiter<FakeRelativeClock>| {
            [
                limits.per_address.len(),
                limits.per_user_at_address.len(),
                limits.per_user_untrusted.len(),
                limits.per_device.len(),
            ]
        };
        let half = SWEEP_EVERY / 2;
        for n in 0..half {
            assert_eq!(
                limits.check(&format!("made-up-{n}"), numbered_address(n), None),
                Ok(())
            );
        }
        for n in half..SWEEP_EVERY - 1 {
            let id = DeviceId::from_bytes(u128::from(n).to_be_bytes());
            assert_eq!(
                limits.check("alice", numbered_address(n), Some(&id)),
                Ok(())
            );
        }
        let (half, rest) = (
            usize::try_from(half).unwrap(),
            usize::try_from(SWEEP_EVERY - 1 - half).unwrap(),
        );
        assert_eq!(lens(&limits), [half + rest, half, half, rest]);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(limits.check("alice", HOME, None), Ok(()));
        assert_eq!(lens(&limits), [1, 1, 1, 0]);
    }

    #[test]
    fn a_flood_of_made_up_names_and_addresses_stays_bounded() {
        let (limits, clock) = limiter(LoginLimits::default());
        // What arrives between two sweeps, plus what the last sweep had to
        // keep: governor keeps a key for two emission intervals after its
        // last use, 24 s for the slowest lane (5 a minute), which is 240
        // rounds of two attempts here.
        let bound = usize::try_from(SWEEP_EVERY).unwrap() + 2 * 240 + 10;
        for n in 0..10 * SWEEP_EVERY {
            // Ten rounds a second, each a new name from a new address: every
            // key is forgettable seconds after it was made.
            clock.advance(Duration::from_millis(100));
            let _ = limits.check(&format!("made-up-{n}"), numbered_address(n), None);
            let _ = limits.check("alice", numbered_address(n), None);
            assert!(limits.per_address.len() <= bound, "attempt {n}: {limits:?}");
            assert!(
                limits.per_user_at_address.len() <= bound,
                "attempt {n}: {limits:?}"
            );
            assert!(
                limits.per_user_untrusted.len() <= bound,
                "attempt {n}: {limits:?}"
            );
        }
    }
}
