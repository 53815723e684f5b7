//! Caps on open connections, per client address and in all, as a reverse
//! proxy would apply them: one client opening hundreds of connections and
//! holding them must not take every socket, task and buffer the server has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

pub struct ConnectionGate {
    /// 0: no cap per address.
    per_ip: usize,
    total: usize,
    open: Mutex<Open>,
}

/// Open connections per address (only addresses with one or more, so the
/// map never holds more entries than the total cap) and in all.
#[derive(Default)]
struct Open {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// An admitted connection's place; dropping it frees the place.
pub struct Admitted {
    gate: Arc<ConnectionGate>,
    ip: IpAddr,
}

impl ConnectionGate {
    pub fn new(per_ip: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            total: total.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for a new connection from `ip`, unless that address or the
    /// server is at its cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock();
        if open.total >= self.total {
            return None;
        }
        let from_ip = open.by_ip.entry(ip).or_insert(0);
        if self.per_ip > 0 && *from_ip >= self.per_ip {
            return None;
        }
        *from_ip += 1;
        open.total += 1;
        Some(Admitted {
            gate: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().total
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_all() {
        let gate = ConnectionGate::new(2, 3);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = gate.admit(a).expect("first");
        let _a2 = gate.admit(a).expect("second");
        assert!(gate.admit(a).is_none(), "third from one address");
        let _b1 = gate.admit(b).expect("another address");
        assert!(gate.admit(b).is_none(), "over the total");
        drop(a1);
        assert!(
            gate.admit(a).is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn addresses_leave_the_map_with_their_last_connection() {
        let gate = ConnectionGate::new(0, 10);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let held: Vec<_> = (0..5).filter_map(|_| gate.admit(ip)).collect();
        assert_eq!(held.len(), 5, "0 means no cap per address");
        drop(held);
        assert_eq!(gate.open(), 0);
        assert!(gate.open.lock().by_ip.is_empty());
    }
}
