//! Where callers can reach this machine from, in words: the lines a listener prints as it
//! maps its port (and their `--stats-json` twins), and `chat --reachability`'s report.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use crate::net::gateway::{self, is_global_ipv6};
use crate::net::port_map::{self, Mapping, MethodFailure, Methods, PortMapError};
use crate::net::port_map_keeper::Event;

/// Whether a listener on `local` should ask the router for a port mapping: on every
/// interface, or on a private IPv4 address behind one; never on loopback or a public
/// address.
pub fn wants_port_map(local: SocketAddr) -> bool {
    match local.ip() {
        IpAddr::V4(ip) => ip.is_unspecified() || ip.is_private(),
        IpAddr::V6(ip) => ip.is_unspecified(),
    }
}

/// The line for an IPv6 global address a listener on `local` can be called at, if any.
pub fn ipv6_line(local: SocketAddr) -> Option<String> {
    let takes_ipv6 = matches!(local, SocketAddr::V6(v6) if v6.ip().is_unspecified());
    let global: Vec<String> = gateway::local_addresses()
        .into_iter()
        .filter_map(|(_, ip)| match ip {
            IpAddr::V6(v6) if is_global_ipv6(&v6) => Some(format!("[{v6}]:{}", local.port())),
            _ => None,
        })
        .collect();
    (takes_ipv6 && !global.is_empty()).then(|| {
        format!("reachable over IPv6 at {} (no mapping needed; a firewall may still block it)", global.join(", "))
    })
}

/// The line, and the `--stats-json` object, for what became of a listener's port mapping.
pub fn port_map_line(event: &Event, port: u16) -> (String, serde_json::Value) {
    match event {
        Event::Mapped { mapping, took } => (
            if behind_another_nat(*mapping.external.ip()) {
                format!(
                    "the router forwards {} to this machine ({}, in {:.1} s), but its own address is private: \
                     another NAT (the provider's) is beyond it, so callers outside still cannot reach you; use \
                     IPv6, or call them instead",
                    mapping.external,
                    mapping.method,
                    took.as_secs_f64()
                )
            } else {
                format!(
                    "reachable from the internet at {} (port mapped by the router, {}, in {:.1} s)",
                    mapping.external,
                    mapping.method,
                    took.as_secs_f64()
                )
            },
            serde_json::json!({ "reachability": {
                "port_map": mapping.method,
                "public_address": mapping.external.to_string(),
                "internal_address": mapping.internal.to_string(),
                "gateway": mapping.gateway.to_string(),
                "lease_s": mapping.lifetime.as_secs(),
                "took_ms": took.as_millis() as u64,
            }}),
        ),
        Event::NotMapped(error) => (
            not_mapped_line(error, port),
            serde_json::json!({ "reachability": {
                "port_map": null,
                "reason": error.to_string(),
            }}),
        ),
        Event::Lost(reason) => (
            format!(
                "the router stopped renewing the port mapping ({reason}): callers outside your network may no \
                 longer reach you"
            ),
            serde_json::json!({ "reachability": { "port_map": null, "reason": reason } }),
        ),
    }
}

/// Whether a router's external address is itself behind a NAT: private, or the carriers'
/// shared range 100.64.0.0/10.
pub fn behind_another_nat(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private() || (a == 100 && (64..128).contains(&b))
}

/// What to do when no router maps the port.
fn no_mapping_advice(port: u16, here: &str) -> String {
    format!(
        "behind a router that does not map ports: callers outside your network cannot reach you; forward UDP {port} \
         to {here} on the router, or call them instead"
    )
}

/// This machine's own address towards its router, when that address is public: callers
/// reach it with no mapping (a server, or a modem that hands the public address on).
pub fn public_ipv4() -> Option<Ipv4Addr> {
    let local = gateway::local_address_towards(gateway::default_gateway()?).ok()?;
    is_public_ipv4(local).then_some(local)
}

/// Whether an IPv4 address is one the internet routes to this machine: not private, shared,
/// loopback, link-local or in 192.0.0.0/16's special and documentation ranges.
fn is_public_ipv4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let special = ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || (a == 192 && b == 0);
    !special && !behind_another_nat(ip)
}

/// What a listener says when no router maps its port.
fn not_mapped_line(error: &PortMapError, port: u16) -> String {
    match error {
        PortMapError::NoGateway => "no router to ask for a port mapping (this machine has no IPv4 default route): \
                                    callers outside your network cannot reach you over IPv4"
            .into(),
        PortMapError::Failed { gateway, local, .. } => {
            let here = local.map_or_else(|| "this machine".to_string(), |ip| ip.to_string());
            format!("{} (router {gateway}: {error})", no_mapping_advice(port, &here))
        }
    }
}

/// The line for a mapping removed at exit, or left to expire.
pub fn removed_line(mapping: &Mapping, removed: &Result<(), String>) -> String {
    match removed {
        Ok(()) => format!("removed the port mapping {} from the router ({})", mapping.external, mapping.method),
        Err(reason) if mapping.lifetime.is_zero() => format!(
            "could not remove the port mapping {} ({reason}); it stays on the router until removed there",
            mapping.external
        ),
        Err(reason) => format!(
            "could not remove the port mapping {} ({reason}); the router drops it within {} s",
            mapping.external,
            mapping.lifetime.as_secs()
        ),
    }
}

/// `chat --reachability`: this machine's addresses, its router and what each mapping
/// protocol answers, and a verdict. Trial mappings are removed at once.
pub async fn report(methods: Option<Methods>) -> Vec<String> {
    let mut lines = Vec::new();
    let addresses = gateway::local_addresses();
    let listed: Vec<String> = addresses.iter().map(|(name, ip)| format!("{ip} ({name})")).collect();
    lines.push(format!(
        "addresses: {}",
        if listed.is_empty() { "none but loopback".to_string() } else { listed.join(", ") }
    ));
    let global6: Vec<String> = addresses
        .iter()
        .filter_map(|(_, ip)| match ip {
            IpAddr::V6(v6) if is_global_ipv6(v6) => Some(v6.to_string()),
            _ => None,
        })
        .collect();
    lines.push(if global6.is_empty() {
        "IPv6: no global address; IPv6 callers cannot reach this machine".into()
    } else {
        format!("IPv6: global {} (callers reach `chat --listen` there with no mapping)", global6.join(", "))
    });
    let Some(router) = gateway::default_gateway() else {
        lines.push("router: none (no IPv4 default route): callers outside cannot reach this machine over IPv4".into());
        return lines;
    };
    let here = gateway::local_address_towards(router).map_or_else(|_| "?".to_string(), |ip| ip.to_string());
    lines.push(format!("router: {router} (this machine is {here} on its network)"));
    if let Some(ip) = public_ipv4() {
        lines.push(format!("this machine has a public IPv4 address ({ip}): callers reach it with no mapping"));
    }
    let Some(methods) = methods else {
        lines.push("port mapping: not asked (--no-port-map)".into());
        return lines;
    };
    // A port nobody uses, so no running listener's mapping is touched.
    let port = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.local_addr())
        .map_or(crate::cli::DEFAULT_PORT, |a| a.port());
    let started = Instant::now();
    let results = match port_map::try_each(port, methods).await {
        Ok(results) => results,
        Err(error) => {
            lines.push(format!("port mapping: {error}"));
            return lines;
        }
    };
    let mut working = None;
    for result in &results {
        lines.push(match result {
            Ok(mapping) => {
                working.get_or_insert(mapping.clone());
                format!("  {:<9} maps ports; public address {}", format!("{}:", mapping.method), mapping.external.ip())
            }
            Err(MethodFailure { method, reason }) => format!("  {:<9} {reason}", format!("{method}:")),
        });
    }
    lines.push(match working {
        Some(mapping) if behind_another_nat(*mapping.external.ip()) => format!(
            "the router maps ports, but its own address {} is private: another NAT (the provider's) is beyond it, \
             so callers outside cannot reach a listener here; use IPv6, or call them instead",
            mapping.external.ip()
        ),
        Some(mapping) => format!(
            "callers outside reach `chat --listen` here at {} (the router maps its port by {}); asked in {:.1} s",
            mapping.external.ip(),
            mapping.method,
            started.elapsed().as_secs_f64()
        ),
        None => no_mapping_advice(crate::cli::DEFAULT_PORT, &here),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listeners_behind_a_router_map_their_port() {
        let wants = |s: &str| wants_port_map(s.parse().unwrap());
        assert!(wants("[::]:1254") && wants("0.0.0.0:1254") && wants("192.168.1.20:1254") && wants("10.0.0.2:1"));
        assert!(!wants("127.0.0.1:1254") && !wants("[::1]:1254") && !wants("203.0.113.5:1254"));
    }

    #[test]
    fn only_addresses_the_internet_routes_here_count_as_public() {
        let public = |s: &str| is_public_ipv4(s.parse().unwrap());
        assert!(public("11.77.0.1") && public("203.0.113.5") && public("8.8.8.8"));
        for address in ["192.168.1.20", "10.0.0.2", "172.16.0.1", "100.64.0.1", "127.0.0.1", "169.254.1.1", "192.0.2.2"]
        {
            assert!(!public(address), "{address}");
        }
    }

    #[test]
    fn a_router_behind_a_carriers_nat_is_told_from_one_on_the_internet() {
        let nat = |s: &str| behind_another_nat(s.parse().unwrap());
        assert!(nat("100.64.0.1") && nat("100.127.255.1") && nat("192.168.0.1") && nat("10.1.2.3"));
        assert!(!nat("100.128.0.1") && !nat("11.77.0.1") && !nat("203.0.113.5"));
    }

    #[test]
    fn a_router_that_maps_nothing_is_named_with_what_to_do() {
        let error = PortMapError::Failed {
            gateway: Ipv4Addr::new(192, 168, 1, 1),
            local: Some(Ipv4Addr::new(192, 168, 1, 20)),
            failures: vec![MethodFailure { method: port_map::Method::Pcp, reason: "no answer".into() }],
        };
        let (line, json) = port_map_line(&Event::NotMapped(error), 1254);
        assert!(
            line.starts_with(
                "behind a router that does not map ports: callers outside your network cannot reach you; \
                 forward UDP 1254 to 192.168.1.20 on the router, or call them instead"
            ),
            "{line}"
        );
        assert!(line.contains("PCP: no answer"), "{line}");
        assert!(json["reachability"]["port_map"].is_null());
    }
}
