//! Asking the home router to forward the listener's UDP port, so that callers outside can
//! reach it: PCP (falling back to NAT-PMP, which the same port serves) and UPnP-IGD are
//! asked side by side and the first mapping is kept; it is renewed at half its lease and
//! removed on exit.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::gateway::default_gateway;
use super::router_exchange::{ExchangeError, Reading, RouterSocket};
use super::upnp::{self, UpnpRouter};
use super::{nat_pmp, pcp};

/// The lease asked for. Short, so that a mapping left behind by a crash goes soon; renewed
/// at half.
pub const LEASE: Duration = Duration::from_secs(600);

/// A port mapping protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Method {
    #[serde(rename = "PCP")]
    Pcp,
    #[serde(rename = "NAT-PMP")]
    NatPmp,
    #[serde(rename = "UPnP-IGD")]
    Upnp,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pcp => "PCP",
            Self::NatPmp => "NAT-PMP",
            Self::Upnp => "UPnP-IGD",
        })
    }
}

/// Which protocols to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods {
    pub pcp: bool,
    pub nat_pmp: bool,
    pub upnp: bool,
}

impl Methods {
    pub const ALL: Self = Self { pcp: true, nat_pmp: true, upnp: true };

    pub fn only(method: Method) -> Self {
        Self { pcp: method == Method::Pcp, nat_pmp: method == Method::NatPmp, upnp: method == Method::Upnp }
    }

    pub fn includes(self, method: Method) -> bool {
        match method {
            Method::Pcp => self.pcp,
            Method::NatPmp => self.nat_pmp,
            Method::Upnp => self.upnp,
        }
    }
}

/// How the router is held to the mapping, for renewing and removing it.
#[derive(Clone, Debug)]
enum Grant {
    Pcp { nonce: [u8; 12] },
    NatPmp,
    Upnp(UpnpRouter),
}

/// A port the router forwards to this machine.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub method: Method,
    /// Where callers outside reach us.
    pub external: SocketAddrV4,
    /// Where the router sends them: this machine's LAN address and the listening port.
    pub internal: SocketAddrV4,
    pub gateway: Ipv4Addr,
    /// How long the router keeps it unless renewed (zero: until removed).
    pub lifetime: Duration,
    grant: Grant,
}

/// Why one protocol gave no mapping.
#[derive(Debug, thiserror::Error)]
#[error("{method}: {reason}")]
pub struct MethodFailure {
    pub method: Method,
    pub reason: String,
}

/// Why no protocol gave a mapping.
#[derive(Debug, thiserror::Error)]
pub enum PortMapError {
    #[error("this machine has no IPv4 default route, so no router to ask")]
    NoGateway,
    #[error("{}", summarize(failures))]
    Failed { gateway: Ipv4Addr, local: Option<Ipv4Addr>, failures: Vec<MethodFailure> },
}

/// The failures in one line, protocols that failed alike named together: "PCP and
/// NAT-PMP: nothing listens on ...; UPnP-IGD: ...".
fn summarize(failures: &[MethodFailure]) -> String {
    let mut groups: Vec<(Vec<String>, &str)> = Vec::new();
    for failure in failures {
        match groups.iter_mut().find(|(_, reason)| *reason == failure.reason) {
            Some((methods, _)) => methods.push(failure.method.to_string()),
            None => groups.push((vec![failure.method.to_string()], &failure.reason)),
        }
    }
    groups.iter().map(|(methods, reason)| format!("{}: {reason}", methods.join(" and "))).collect::<Vec<_>>().join("; ")
}

/// UPnP-IGD starts this long after PCP/NAT-PMP, unless they fail sooner: a router that
/// speaks both answers PCP within milliseconds, and is then not asked twice.
const UPNP_STAGGER: Duration = Duration::from_millis(300);

/// Asks the default router to forward UDP `port` here by the protocols in `methods`: PCP
/// (then NAT-PMP) first, UPnP-IGD from `UPNP_STAGGER` on or as soon as those failed; the
/// first mapping wins and the other attempt is stopped.
pub async fn map(port: u16, methods: Methods) -> Result<Mapping, PortMapError> {
    let gateway = default_gateway().ok_or(PortMapError::NoGateway)?;
    let local = super::gateway::local_address_towards(gateway).ok();
    let mut failures = Vec::new();
    let native = async {
        if methods.pcp || methods.nat_pmp { map_pcp_or_nat_pmp(gateway, port, methods).await } else { Err(Vec::new()) }
    };
    let upnp = async {
        match local {
            Some(local) if methods.upnp => map_upnp(gateway, local, port).await.map_err(|e| vec![e]),
            _ => Err(Vec::new()),
        }
    };
    tokio::pin!(native, upnp);
    let stagger = tokio::time::sleep(UPNP_STAGGER);
    tokio::pin!(stagger);
    let (mut native_done, mut upnp_started, mut upnp_done) = (false, false, false);
    while !(native_done && upnp_done) {
        tokio::select! {
            result = &mut native, if !native_done => match result {
                Ok(mapping) => return Ok(mapping),
                Err(mut failed) => {
                    native_done = true;
                    upnp_started = true;
                    failures.append(&mut failed);
                }
            },
            () = &mut stagger, if !upnp_started => upnp_started = true,
            result = &mut upnp, if upnp_started && !upnp_done => match result {
                Ok(mapping) => return Ok(mapping),
                Err(mut failed) => {
                    upnp_done = true;
                    failures.append(&mut failed);
                }
            },
        }
    }
    Err(PortMapError::Failed { gateway, local, failures })
}

/// Asks each protocol of `methods` on its own, one after another, and removes what each
/// maps: what `chat --reachability` shows.
pub async fn try_each(port: u16, methods: Methods) -> Result<Vec<Result<Mapping, MethodFailure>>, PortMapError> {
    let gateway = default_gateway().ok_or(PortMapError::NoGateway)?;
    let mut results = Vec::new();
    for method in [Method::Pcp, Method::NatPmp, Method::Upnp] {
        if !methods.includes(method) {
            continue;
        }
        let result = match method {
            Method::Upnp => match super::gateway::local_address_towards(gateway) {
                Ok(local) => map_upnp(gateway, local, port).await,
                Err(e) => Err(MethodFailure { method, reason: e.to_string() }),
            },
            _ => map_pcp_or_nat_pmp(gateway, port, Methods::only(method)).await.map_err(|mut f| f.remove(0)),
        };
        if let Ok(mapping) = &result
            && let Err(e) = mapping.clone().release().await
        {
            tracing::info!("removing the trial mapping: {e}");
        }
        results.push(result);
    }
    Ok(results)
}

/// PCP first; NAT-PMP if PCP is off, unanswered or not spoken (both share port 5351, so
/// they are asked in turn rather than at once).
async fn map_pcp_or_nat_pmp(gateway: Ipv4Addr, port: u16, methods: Methods) -> Result<Mapping, Vec<MethodFailure>> {
    let mut failures = Vec::new();
    if methods.pcp {
        match map_pcp(gateway, port).await {
            Ok(mapping) => return Ok(mapping),
            Err(failure) => failures.push(failure),
        }
    }
    if methods.nat_pmp {
        match map_nat_pmp(gateway, port).await {
            Ok(mapping) => return Ok(mapping),
            Err(failure) => failures.push(failure),
        }
    }
    Err(failures)
}

async fn map_pcp(gateway: Ipv4Addr, port: u16) -> Result<Mapping, MethodFailure> {
    let fail = |reason: String| MethodFailure { method: Method::Pcp, reason };
    let socket = RouterSocket::open(gateway).await.map_err(|e| fail(e.to_string()))?;
    let mut nonce = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| fail("no random numbers for the nonce".into()))?;
    let mut mapping = Mapping {
        method: Method::Pcp,
        external: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
        internal: SocketAddrV4::new(socket.local_ip(), port),
        gateway,
        lifetime: LEASE,
        grant: Grant::Pcp { nonce },
    };
    mapping.ask_pcp(&socket, nonce, LEASE).await.map_err(fail)?;
    Ok(mapping)
}

async fn map_nat_pmp(gateway: Ipv4Addr, port: u16) -> Result<Mapping, MethodFailure> {
    let fail = |reason: String| MethodFailure { method: Method::NatPmp, reason };
    let socket = RouterSocket::open(gateway).await.map_err(|e| fail(e.to_string()))?;
    // The address first: a router that cannot say it is asked for no mapping.
    let address = socket
        .ask(&nat_pmp::external_address_request(), |answer| match nat_pmp::parse_answer(answer) {
            Ok(nat_pmp::Answer::ExternalAddress(ip)) if ip.is_unspecified() => {
                Reading::Refused("the router has no external address yet".into())
            }
            Ok(nat_pmp::Answer::ExternalAddress(ip)) => Reading::Done(ip),
            Ok(other) => Reading::Bad(format!("answered {other:?} to the address request")),
            Err(nat_pmp::NatPmpError::Refused(reason)) => Reading::Refused(format!("the router refused: {reason}")),
            Err(e) => Reading::Bad(e.to_string()),
        })
        .await
        .map_err(|e| fail(describe(e)))?;
    let mut mapping = Mapping {
        method: Method::NatPmp,
        external: SocketAddrV4::new(address, port),
        internal: SocketAddrV4::new(socket.local_ip(), port),
        gateway,
        lifetime: LEASE,
        grant: Grant::NatPmp,
    };
    mapping.ask_nat_pmp(&socket, LEASE).await.map_err(fail)?;
    Ok(mapping)
}

async fn map_upnp(gateway: Ipv4Addr, local: Ipv4Addr, port: u16) -> Result<Mapping, MethodFailure> {
    let lease_s = LEASE.as_secs() as u32;
    let grant = upnp::map(gateway, local, port, lease_s)
        .await
        .map_err(|reason| MethodFailure { method: Method::Upnp, reason })?;
    Ok(Mapping {
        method: Method::Upnp,
        external: grant.external,
        internal: SocketAddrV4::new(local, port),
        gateway,
        lifetime: Duration::from_secs(grant.lease_s.into()),
        grant: Grant::Upnp(grant.router),
    })
}

impl Mapping {
    /// Asks the router again for the same mapping, for another lease.
    pub async fn renew(&mut self) -> Result<(), String> {
        match self.grant.clone() {
            Grant::Pcp { nonce } => {
                let socket = RouterSocket::open(self.gateway).await.map_err(|e| e.to_string())?;
                self.ask_pcp(&socket, nonce, LEASE).await
            }
            Grant::NatPmp => {
                let socket = RouterSocket::open(self.gateway).await.map_err(|e| e.to_string())?;
                self.ask_nat_pmp(&socket, LEASE).await
            }
            Grant::Upnp(router) => {
                let lease_s = LEASE.as_secs() as u32;
                let renewal = router.forward(*self.internal.ip(), self.internal.port(), self.external.port(), lease_s);
                let (port, lease_s) = tokio::time::timeout(upnp::UPNP_TIMEOUT, renewal)
                    .await
                    .map_err(|_| format!("no answer within {} s", upnp::UPNP_TIMEOUT.as_secs()))??;
                self.external.set_port(port);
                self.lifetime = Duration::from_secs(lease_s.into());
                Ok(())
            }
        }
    }

    /// Asks the router to remove the mapping.
    pub async fn release(self) -> Result<(), String> {
        match &self.grant {
            Grant::Pcp { nonce } => {
                let socket = RouterSocket::open(self.gateway).await.map_err(|e| e.to_string())?;
                let mut gone = self.clone();
                gone.ask_pcp(&socket, *nonce, Duration::ZERO).await
            }
            Grant::NatPmp => {
                let socket = RouterSocket::open(self.gateway).await.map_err(|e| e.to_string())?;
                let request = nat_pmp::map_request(self.internal.port(), 0, 0);
                socket.ask(&request, read_nat_pmp_map).await.map(|_| ()).map_err(describe)
            }
            Grant::Upnp(router) => router.remove(self.external.port()).await,
        }
    }

    /// One PCP MAP exchange (lifetime 0 deletes); takes what the router granted.
    async fn ask_pcp(&mut self, socket: &RouterSocket, nonce: [u8; 12], lease: Duration) -> Result<(), String> {
        let suggested = if self.external.ip().is_unspecified() { self.internal.port() } else { self.external.port() };
        let request =
            pcp::map_request(socket.local_ip(), nonce, self.internal.port(), suggested, lease.as_secs() as u32);
        let mapped = socket
            .ask(&request, |answer| match pcp::parse_map_answer(answer, &nonce) {
                Ok(mapped) => Reading::Done(mapped),
                Err(pcp::PcpError::Refused(reason)) => Reading::Refused(format!("the router refused: {reason}")),
                Err(pcp::PcpError::Version(0)) => Reading::Refused("the router speaks NAT-PMP, not PCP".into()),
                Err(e) => Reading::Bad(e.to_string()),
            })
            .await
            .map_err(describe)?;
        if lease.is_zero() {
            return Ok(());
        }
        let granted = match mapped.external_ip.to_ipv4_mapped() {
            Some(ip) if ip.is_unspecified() => Err("the router gave 0.0.0.0 as its external address".to_string()),
            Some(_) if mapped.lifetime_s == 0 || mapped.external_port == 0 => {
                Err("the router granted a mapping of no time or no port".to_string())
            }
            Some(ip) => Ok(ip),
            None => Err(format!("the router gave an IPv6 external address ({})", mapped.external_ip)),
        };
        let external_ip = match granted {
            Ok(ip) => ip,
            Err(reason) => {
                // Whatever it granted is not kept.
                let delete = pcp::map_request(socket.local_ip(), nonce, self.internal.port(), 0, 0);
                let _ = socket.ask(&delete, |_| Reading::Done(())).await;
                return Err(reason);
            }
        };
        self.external = SocketAddrV4::new(external_ip, mapped.external_port);
        self.lifetime = Duration::from_secs(mapped.lifetime_s.into());
        Ok(())
    }

    /// One NAT-PMP mapping exchange; takes the port and lease the router granted.
    async fn ask_nat_pmp(&mut self, socket: &RouterSocket, lease: Duration) -> Result<(), String> {
        let suggested = self.external.port();
        let request = nat_pmp::map_request(self.internal.port(), suggested, lease.as_secs() as u32);
        let (external_port, lifetime_s) = socket.ask(&request, read_nat_pmp_map).await.map_err(describe)?;
        if lifetime_s == 0 || external_port == 0 {
            return Err("the router granted a mapping of no time or no port".into());
        }
        self.external.set_port(external_port);
        self.lifetime = Duration::from_secs(lifetime_s.into());
        Ok(())
    }
}

fn read_nat_pmp_map(answer: &[u8]) -> Reading<(u16, u32)> {
    match nat_pmp::parse_answer(answer) {
        Ok(nat_pmp::Answer::Mapped { external_port, lifetime_s, .. }) => Reading::Done((external_port, lifetime_s)),
        Ok(other) => Reading::Bad(format!("answered {other:?} to a mapping request")),
        Err(nat_pmp::NatPmpError::Refused(reason)) => Reading::Refused(format!("the router refused: {reason}")),
        Err(e) => Reading::Bad(e.to_string()),
    }
}

/// An exchange's failure, as a reason for the user.
fn describe(error: ExchangeError) -> String {
    match error {
        ExchangeError::Bad(reason) => format!("the router's answer is not valid ({reason})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_that_failed_alike_are_named_together() {
        let failure = |method, reason: &str| MethodFailure { method, reason: reason.into() };
        let error = PortMapError::Failed {
            gateway: Ipv4Addr::new(192, 168, 1, 1),
            local: None,
            failures: vec![
                failure(Method::Pcp, "nothing listens on 192.168.1.1:5351"),
                failure(Method::NatPmp, "nothing listens on 192.168.1.1:5351"),
                failure(Method::Upnp, "no router answered the search"),
            ],
        };
        assert_eq!(
            error.to_string(),
            "PCP and NAT-PMP: nothing listens on 192.168.1.1:5351; UPnP-IGD: no router answered the search"
        );
    }
}
