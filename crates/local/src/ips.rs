//! Loopback static IPs: every member gets its own 127.x.y.z for life (kept in the store), so all
//! members use their engines' standard ports. Pure planning; the runtime checks the addresses
//! are free before it uses them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// A range of loopback addresses: `count` addresses from `first`, skipping `.0` and `.255`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPool {
    pub first: Ipv4Addr,
    pub count: u32,
}

impl IpPool {
    /// Parses `127.0.100.1/1000` (first address / count) or a bare first address.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, count) = s.split_once('/').unwrap_or((s, "1000"));
        let first: Ipv4Addr = ip.parse().map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
        let count: u32 = count.parse().map_err(|_| format!("{count:?} is not a count of addresses"))?;
        let pool = IpPool { first, count };
        pool.check()?;
        Ok(pool)
    }

    fn check(&self) -> Result<(), String> {
        let last = u32::from(self.first).checked_add(self.count.saturating_sub(1));
        match last {
            Some(l) if self.first.octets()[0] == 127 && Ipv4Addr::from(l).octets()[0] == 127 && self.count > 0 => Ok(()),
            _ => Err(format!("the pool {}/{} must lie within 127.0.0.0/8", self.first, self.count)),
        }
    }

    /// The pool's usable addresses, in order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let start = u32::from(self.first);
        (start..start.saturating_add(self.count)).map(Ipv4Addr::from).filter(|ip| {
            let last = ip.octets()[3];
            last != 0 && last != 255 && *ip != Ipv4Addr::LOCALHOST
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no free loopback address left in {first}/{count} for {needed} members")]
pub struct PoolExhausted {
    pub first: Ipv4Addr,
    pub count: u32,
    pub needed: usize,
}

/// Gives each of `members` an address: the one it kept (`kept`, e.g. from data kept after a
/// delete) if any, else the lowest free address of the pool not in `taken`.
pub fn allocate(
    pool: &IpPool,
    taken: &BTreeSet<Ipv4Addr>,
    members: &[String],
    kept: &BTreeMap<String, Ipv4Addr>,
) -> Result<BTreeMap<String, Ipv4Addr>, PoolExhausted> {
    let mut used: BTreeSet<Ipv4Addr> = taken.clone();
    used.extend(kept.values().copied());
    let mut free = pool.addresses().filter(|ip| !used.contains(ip));
    let mut out = BTreeMap::new();
    for m in members {
        let ip = match kept.get(m) {
            Some(ip) => *ip,
            None => free.next().ok_or(PoolExhausted { first: pool.first, count: pool.count, needed: members.len() })?,
        };
        out.insert(m.clone(), ip);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: u32) -> Vec<String> {
        (0..n).map(|i| format!("pg-{i}")).collect()
    }

    #[test]
    fn allocates_the_lowest_free_addresses_in_order() {
        let pool = IpPool::parse("127.0.100.1/10").unwrap();
        let taken = BTreeSet::from([Ipv4Addr::new(127, 0, 100, 2)]);
        let got = allocate(&pool, &taken, &names(3), &BTreeMap::new()).unwrap();
        let ips: Vec<_> = got.values().map(|ip| ip.to_string()).collect();
        assert_eq!(ips, ["127.0.100.1", "127.0.100.3", "127.0.100.4"]);
    }

    #[test]
    fn a_member_keeps_its_address() {
        let pool = IpPool::parse("127.0.100.1/10").unwrap();
        let kept = BTreeMap::from([("pg-1".to_string(), Ipv4Addr::new(127, 0, 100, 1))]);
        let got = allocate(&pool, &BTreeSet::new(), &names(2), &kept).unwrap();
        assert_eq!(got["pg-1"], Ipv4Addr::new(127, 0, 100, 1));
        assert_eq!(got["pg-0"], Ipv4Addr::new(127, 0, 100, 2));
    }

    #[test]
    fn skips_network_and_broadcast_like_addresses() {
        let pool = IpPool::parse("127.0.0.254/4").unwrap();
        let ips: Vec<_> = pool.addresses().map(|ip| ip.to_string()).collect();
        assert_eq!(ips, ["127.0.0.254", "127.0.1.1"]);
    }

    #[test]
    fn an_exhausted_pool_is_an_error() {
        let pool = IpPool::parse("127.0.100.1/2").unwrap();
        assert!(allocate(&pool, &BTreeSet::new(), &names(3), &BTreeMap::new()).is_err());
    }

    #[test]
    fn pools_stay_in_loopback() {
        assert!(IpPool::parse("10.0.0.1/5").is_err());
        assert!(IpPool::parse("127.255.255.250/10").is_err());
    }
}
