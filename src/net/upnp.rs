//! UPnP-IGD port mapping through igd-next: find the router by SSDP, ask its WAN service to
//! forward a UDP port here, read its external address, and delete the forward. igd-next
//! bounds what it reads (1500-byte SSDP answers, limited HTTP bodies, descriptions only
//! from the answering router's own address); every call here is also under our timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use igd_next::PortMappingProtocol::UDP;
use igd_next::aio::Gateway;
use igd_next::aio::tokio::Tokio;

/// How long finding the router and asking it may take, together.
pub const UPNP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the search may take: well inside `UPNP_TIMEOUT`, so that on a network where no
/// router answers the search ends first and says so. With equal bounds the two timers raced,
/// and the user was told only "no answer within 3 s".
const SEARCH_TIMEOUT: Duration = Duration::from_secs(2);
/// How the forward is named in the router's table.
const DESCRIPTION: &str = "chat";

/// A router that forwards a port to us by UPnP.
#[derive(Clone, Debug)]
pub struct UpnpRouter {
    gateway: Gateway<Tokio>,
}

/// What the router granted.
pub struct UpnpGrant {
    pub router: UpnpRouter,
    pub external: SocketAddrV4,
    /// 0: until removed (the router takes no leases).
    pub lease_s: u32,
}

/// Finds the router (`gateway`, the default route's: another device on the LAN that
/// answers the search is not asked) and asks it to forward UDP `port` (the same port
/// outside if it can) to `local:port` for `lease_s` seconds.
pub async fn map(gateway: Ipv4Addr, local: Ipv4Addr, port: u16, lease_s: u32) -> Result<UpnpGrant, String> {
    tokio::time::timeout(UPNP_TIMEOUT, map_unbounded(gateway, local, port, lease_s))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", UPNP_TIMEOUT.as_secs())))
}

async fn map_unbounded(router_ip: Ipv4Addr, local: Ipv4Addr, port: u16, lease_s: u32) -> Result<UpnpGrant, String> {
    let mut options = igd_next::SearchOptions::default();
    options.bind_addr = SocketAddr::new(local.into(), 0);
    options.timeout = Some(SEARCH_TIMEOUT);
    options.single_search_timeout = Some(SEARCH_TIMEOUT);
    let gateway = igd_next::aio::tokio::search_gateway(options).await.map_err(|e| match e {
        igd_next::SearchError::NoResponseWithinTimeout => "no router answered the search".to_string(),
        other => format!("finding the router: {other}"),
    })?;
    if gateway.addr.ip() != IpAddr::V4(router_ip) {
        return Err(format!("only {}, not the router {router_ip}, answered the search", gateway.addr.ip()));
    }
    let router = UpnpRouter { gateway };
    // The address first: a router that cannot say it is asked for no forward.
    let external_ip = match router.gateway.get_external_ip().await.map_err(|e| format!("its external address: {e}"))? {
        IpAddr::V4(ip) if !ip.is_unspecified() => ip,
        other => return Err(format!("it gave {other} as its external address")),
    };
    let (external_port, lease_s) = router.forward(local, port, port, lease_s).await?;
    Ok(UpnpGrant { router, external: SocketAddrV4::new(external_ip, external_port), lease_s })
}

impl UpnpRouter {
    /// Forwards `external_port` (another if that one is taken) to `local:port`; returns the
    /// port and the lease the router took.
    pub async fn forward(
        &self,
        local: Ipv4Addr,
        port: u16,
        external_port: u16,
        lease_s: u32,
    ) -> Result<(u16, u32), String> {
        let target = SocketAddr::new(local.into(), port);
        let added = |lease_s| self.gateway.add_port(UDP, external_port, target, lease_s, DESCRIPTION);
        match added(lease_s).await {
            Ok(()) => Ok((external_port, lease_s)),
            Err(igd_next::AddPortError::OnlyPermanentLeasesSupported) => {
                added(0).await.map(|()| (external_port, 0)).map_err(|e| e.to_string())
            }
            Err(igd_next::AddPortError::PortInUse) => self
                .gateway
                .add_any_port(UDP, target, lease_s, DESCRIPTION)
                .await
                .map(|port| (port, lease_s))
                .map_err(|e| e.to_string()),
            Err(other) => Err(other.to_string()),
        }
    }

    /// Deletes the forward of `external_port`.
    pub async fn remove(&self, external_port: u16) -> Result<(), String> {
        tokio::time::timeout(UPNP_TIMEOUT, self.gateway.remove_port(UDP, external_port))
            .await
            .map_err(|_| format!("no answer within {} s", UPNP_TIMEOUT.as_secs()))?
            .map_err(|e| e.to_string())
    }
}
