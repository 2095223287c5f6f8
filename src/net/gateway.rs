//! Where this machine stands on its network: its default IPv4 router (the one to ask for a
//! port mapping), the address it reaches that router from, and its own addresses (IPv6
//! global ones are reachable without any mapping).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `/proc/net/route` is a few lines per route; more than this is not a routing table.
const MAX_ROUTE_TABLE_BYTES: u64 = 1 << 20;
/// RTF_GATEWAY: the route goes through a router.
const ROUTE_THROUGH_GATEWAY: u32 = 0x2;

/// The default IPv4 router, if this machine has one (Linux: from `/proc/net/route`).
pub fn default_gateway() -> Option<Ipv4Addr> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open("/proc/net/route").ok()?.take(MAX_ROUTE_TABLE_BYTES).read_to_string(&mut text).ok()?;
    gateway_in_route_table(&text)
}

/// Reads the default route's gateway from `/proc/net/route`'s text: `Iface Destination
/// Gateway Flags ...`, addresses in hex in host byte order (little-endian on every Linux
/// this runs on).
fn gateway_in_route_table(text: &str) -> Option<Ipv4Addr> {
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, gateway, flags) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if *destination != "00000000" || flags & ROUTE_THROUGH_GATEWAY == 0 {
            return None;
        }
        let gateway = u32::from_str_radix(gateway, 16).ok()?;
        Some(Ipv4Addr::from(gateway.to_le_bytes())).filter(|g| !g.is_unspecified())
    })
}

/// The address this machine uses to reach `gateway` (no packet is sent).
pub fn local_address_towards(gateway: Ipv4Addr) -> std::io::Result<Ipv4Addr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.connect((gateway, 9))?;
    match socket.local_addr()? {
        SocketAddr::V4(local) => Ok(*local.ip()),
        SocketAddr::V6(_) => Err(std::io::Error::other("an IPv4 socket reported an IPv6 address")),
    }
}

/// This machine's addresses, loopback left out: (interface, address).
pub fn local_addresses() -> Vec<(String, IpAddr)> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => {
            interfaces.into_iter().filter(|i| !i.is_loopback()).map(|i| (i.name.clone(), i.ip())).collect()
        }
        Err(error) => {
            tracing::info!(%error, "cannot list this machine's addresses");
            Vec::new()
        }
    }
}

/// Whether an IPv6 address is reachable across the internet: global unicast (2000::/3),
/// not a documentation address.
pub fn is_global_ipv6(ip: &Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    (first & 0xe000) == 0x2000 && !(first == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_is_found_among_others() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t0050A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0150A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(gateway_in_route_table(table), Some(Ipv4Addr::new(192, 168, 80, 1)));
        let no_default = "Iface\tDestination\tGateway\tFlags\neth0\t0050A8C0\t00000000\t0001\n";
        assert_eq!(gateway_in_route_table(no_default), None);
        assert_eq!(gateway_in_route_table("garbage\n\u{0}\u{0}\nx 00000000 zz 3\n"), None);
    }

    #[test]
    fn global_ipv6_addresses_are_told_from_local_ones() {
        let global = |s: &str| is_global_ipv6(&s.parse().unwrap());
        assert!(global("2a02:1234::5"));
        assert!(!global("fe80::1") && !global("fd00::1") && !global("::1") && !global("2001:db8::1"));
    }
}
