//! Which addresses outbound federation may connect to. A peer names the
//! servers we call (its server name, its `.well-known`, its SRV records), so
//! without this filter it could point us at our own network: loopback,
//! private, link-local and other special ranges are refused unless the
//! operator allows them (`federation_ip_range_allowlist`; tests allow
//! 127.0.0.0/8).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct IpFilter {
    allowed: Vec<IpNet>,
}

impl IpFilter {
    /// Parses the allowlist (CIDR ranges, or single addresses).
    pub fn new(allowlist: &[String]) -> Result<Self> {
        let allowed = allowlist
            .iter()
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| Error::internal(format!("IP range allowlist: bad range {range}")))
            })
            .collect::<Result<_>>()?;
        Ok(Self { allowed })
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_global(ip) || self.allowed.iter().any(|range| range.contains(&ip))
    }
}

/// IPv4 addresses written as IPv6 (`::ffff:a.b.c.d`) are judged as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_global_v4(ip),
        IpAddr::V6(ip) => is_global_v6(ip),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the old site-local, fec0::/10.
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64, 64:ff9b::/96, and IPv4-compatible ::/96: they reach IPv4
        // addresses this filter cannot see through.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
        || ip.segments()[..6].iter().all(|s| *s == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_refused_and_public_ones_allowed() {
        let filter = IpFilter::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "224.0.0.1",
            "ff02::1",
        ] {
            assert!(!filter.permits(ip(refused)), "{refused}");
        }
        for allowed in [
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "100.128.0.1",
        ] {
            assert!(filter.permits(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn the_allowlist_opens_ranges() {
        let filter = IpFilter::new(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(filter.permits(ip("127.0.0.1")));
        assert!(filter.permits(ip("127.1.2.3")));
        assert!(filter.permits(ip("::1")));
        assert!(filter.permits(ip("::ffff:127.0.0.1")));
        assert!(!filter.permits(ip("10.0.0.1")));
        assert!(IpFilter::new(&["not a range".into()]).is_err());
    }
}
