//! A cap on the WebSocket connections one client address holds at once, so
//! one machine cannot take all of a host's sockets and memory.
//!
//! A connection holds a [`ConnectionSlot`] for as long as it lives; the
//! slot gives its place back when dropped, so every way a connection ends
//! (a clean close, an error, a refused hello, a panic in its task) counts
//! it out.
//!
//! Behind a reverse proxy every client shares the proxy's address; such a
//! deployment raises `--max-connections-per-address` accordingly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address.
#[derive(Debug)]
pub struct AddressLimiter {
    max_per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place under its address's cap.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<AddressLimiter>,
    address: IpAddr,
}

impl AddressLimiter {
    pub fn new(max_per_address: usize) -> Arc<AddressLimiter> {
        Arc::new(AddressLimiter {
            max_per_address,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one more connection from `address`, or `None` when it
    /// already holds the most allowed.
    pub fn try_acquire(self: &Arc<Self>, address: IpAddr) -> Option<ConnectionSlot> {
        let address = canonical(address);
        let mut open = self.lock();
        let count = open.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            if *count == 0 {
                open.remove(&address);
            }
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            limiter: self.clone(),
            address,
        })
    }

    /// Connections open from `address` now.
    pub fn open_from(&self, address: IpAddr) -> usize {
        self.lock().get(&canonical(address)).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some(count) = open.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // No entry per address ever seen: the map holds only
                // addresses with open connections.
                open.remove(&self.address);
            }
        }
    }
}

/// An IPv4 client reaching a dual-stack socket shows up as `::ffff:a.b.c.d`;
/// it is the same client as `a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn each_address_gets_its_own_cap() {
        let limiter = AddressLimiter::new(2);
        let first = limiter.try_acquire(A);
        let second = limiter.try_acquire(A);
        assert!(first.is_some() && second.is_some());
        assert!(limiter.try_acquire(A).is_none(), "a third from A");
        assert!(limiter.try_acquire(B).is_some(), "B is not A");
        assert_eq!(limiter.open_from(A), 2);
    }

    #[test]
    fn a_dropped_slot_makes_room_and_leaves_no_entry() {
        let limiter = AddressLimiter::new(1);
        let slot = limiter.try_acquire(A);
        assert!(slot.is_some());
        assert!(limiter.try_acquire(A).is_none());
        drop(slot);
        assert_eq!(limiter.open_from(A), 0);
        assert!(limiter.lock().is_empty());
        assert!(limiter.try_acquire(A).is_some());
    }

    #[test]
    fn a_refusal_counts_nothing() {
        let limiter = AddressLimiter::new(0);
        assert!(limiter.try_acquire(A).is_none());
        assert!(limiter.lock().is_empty());
    }

    #[test]
    fn a_mapped_ipv4_address_is_the_same_client() {
        let limiter = AddressLimiter::new(1);
        let _slot = limiter.try_acquire(A);
        let mapped = match A {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            v6 => v6,
        };
        assert!(limiter.try_acquire(mapped).is_none());
    }
}
