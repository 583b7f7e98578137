//! Which resolved addresses a probe may connect to (pure).
//!
//! `ctwatch check` is run by the operator and probes anything. `POST /api/v1/bulk-check` is reachable by API
//! clients, so it must not become a port scanner of the host's own network: an [`AddressPolicy`] refuses
//! loopback, private, link-local, unique-local, multicast, unspecified, reserved and cloud-metadata addresses,
//! including the IPv4 addresses hidden in IPv6 forms (`::ffff:127.0.0.1`, `64:ff9b::a00:1`, `2002:7f00:1::`).
//! The check runs on the addresses the resolver returned, and the prober connects to exactly those socket
//! addresses (no second lookup), so a DNS answer that changes between check and connect cannot slip through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Loopback,
    Private,
    SharedCgnat,
    LinkLocal,
    UniqueLocal,
    Multicast,
    Unspecified,
    Reserved,
    CloudMetadata,
}

impl Blocked {
    pub fn describe(self) -> &'static str {
        match self {
            Blocked::Loopback => "a loopback address",
            Blocked::Private => "a private (RFC 1918) address",
            Blocked::SharedCgnat => "a shared (carrier-grade NAT, RFC 6598) address",
            Blocked::LinkLocal => "a link-local address",
            Blocked::UniqueLocal => "a unique-local (fc00::/7) address",
            Blocked::Multicast => "a multicast or broadcast address",
            Blocked::Unspecified => "an unspecified (0.0.0.0 / ::) address",
            Blocked::Reserved => "a reserved address",
            Blocked::CloudMetadata => "a cloud metadata service address",
        }
    }
}

/// Addresses a probe may connect to: every public address, plus the ranges explicitly allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Ranges opted in by the operator (`[api] allow_targets`), checked against the address and, for IPv6 forms
    /// that embed an IPv4 address, against that IPv4 address too.
    pub allow: Vec<IpNet>,
}

impl AddressPolicy {
    /// Parse `allow_targets` entries: CIDR ranges (`10.0.0.0/8`, `fd00::/8`) or single addresses.
    pub fn parse(ranges: &[String]) -> Result<AddressPolicy, String> {
        let allow = ranges
            .iter()
            .map(|r| {
                let r = r.trim();
                r.parse::<IpNet>()
                    .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("api.allow_targets: {r:?} is not an address range such as \"10.0.0.0/8\" or \"fd00::/8\"")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(AddressPolicy { allow })
    }

    /// `Ok` if `ip` may be probed, else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = |a: IpAddr| self.allow.iter().any(|n| n.contains(&a));
        if allowed(ip) || embedded.is_some_and(allowed) {
            return Ok(());
        }
        match (classify(ip), embedded.and_then(classify)) {
            (Some(why), _) | (None, Some(why)) => Err(why),
            (None, None) => Ok(()),
        }
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`) or 6to4 (`2002:aabb:ccdd::/48`) IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b) {
        // 169.254.169.254 (AWS, GCP, Azure, OCI), 169.254.170.2 (ECS), 100.100.100.200 (Alibaba).
        _ if [
            [169, 254, 169, 254],
            [169, 254, 170, 2],
            [100, 100, 100, 200],
        ]
        .contains(&[a, b, c, d]) =>
        {
            Blocked::CloudMetadata
        }
        (0, _) => Blocked::Unspecified,
        (127, _) => Blocked::Loopback,
        (10, _) | (172, 16..=31) | (192, 168) => Blocked::Private,
        (100, 64..=127) => Blocked::SharedCgnat,
        (169, 254) => Blocked::LinkLocal,
        (224..=239, _) => Blocked::Multicast,
        (255, 255) if c == 255 && d == 255 => Blocked::Multicast,
        (240..=255, _) => Blocked::Reserved,
        // 192.0.0.0/24: IETF protocol assignments (DS-Lite, NAT64 discovery, ...).
        (192, 0) if c == 0 => Blocked::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    let s = ip.segments();
    Some(if ip.is_unspecified() {
        Blocked::Unspecified
    } else if ip.is_loopback() {
        Blocked::Loopback
    } else if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        Blocked::CloudMetadata
    } else if s[0] & 0xfe00 == 0xfc00 {
        Blocked::UniqueLocal
    } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
        // fec0::/10 is the deprecated site-local range: private in practice.
        Blocked::LinkLocal
    } else if s[0] & 0xff00 == 0xff00 {
        Blocked::Multicast
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(p: &AddressPolicy, s: &str) -> Result<(), Blocked> {
        p.check(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        let p = AddressPolicy::default();
        for (addr, why) in [
            ("127.0.0.1", Blocked::Loopback),
            ("127.255.0.9", Blocked::Loopback),
            ("0.0.0.0", Blocked::Unspecified),
            ("10.1.2.3", Blocked::Private),
            ("172.16.0.1", Blocked::Private),
            ("172.31.255.255", Blocked::Private),
            ("192.168.1.1", Blocked::Private),
            ("100.64.0.1", Blocked::SharedCgnat),
            ("169.254.169.254", Blocked::CloudMetadata),
            ("169.254.170.2", Blocked::CloudMetadata),
            ("100.100.100.200", Blocked::CloudMetadata),
            ("169.254.1.1", Blocked::LinkLocal),
            ("224.0.0.1", Blocked::Multicast),
            ("255.255.255.255", Blocked::Multicast),
            ("240.0.0.1", Blocked::Reserved),
            ("::1", Blocked::Loopback),
            ("::", Blocked::Unspecified),
            ("fd00:ec2::254", Blocked::CloudMetadata),
            ("fd12:3456::1", Blocked::UniqueLocal),
            ("fc00::1", Blocked::UniqueLocal),
            ("fe80::1", Blocked::LinkLocal),
            ("ff02::1", Blocked::Multicast),
            ("::ffff:127.0.0.1", Blocked::Loopback),
            ("::ffff:10.0.0.1", Blocked::Private),
            ("::ffff:169.254.169.254", Blocked::CloudMetadata),
            ("::127.0.0.1", Blocked::Loopback),
            ("64:ff9b::7f00:1", Blocked::Loopback),
            ("2002:c0a8:0101::1", Blocked::Private),
        ] {
            assert_eq!(verdict(&p, addr), Err(why), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = AddressPolicy::default();
        for addr in [
            "93.184.215.14",
            "1.1.1.1",
            "172.32.0.1",
            "192.169.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert_eq!(verdict(&p, addr), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allowed_ranges_opt_in_including_mapped_forms() {
        let p = AddressPolicy::parse(&["10.0.0.0/8".into(), "fd00::/8".into(), "127.0.0.1".into()])
            .unwrap();
        assert_eq!(verdict(&p, "10.20.30.40"), Ok(()));
        assert_eq!(verdict(&p, "::ffff:10.20.30.40"), Ok(()));
        assert_eq!(verdict(&p, "fd12::1"), Ok(()));
        assert_eq!(verdict(&p, "127.0.0.1"), Ok(()));
        assert_eq!(verdict(&p, "127.0.0.2"), Err(Blocked::Loopback));
        assert_eq!(verdict(&p, "192.168.0.1"), Err(Blocked::Private));
        let err = AddressPolicy::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(
            err.contains("api.allow_targets") && err.contains("10.0.0.0/33"),
            "{err}"
        );
    }
}
