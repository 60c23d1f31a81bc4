//! Where the service may send a merchant's webhooks: no server-side request forgery.
//!
//! A URL is refused when its host is, or resolves to, an address the public internet does
//! not route to this merchant: loopback, private (RFC 1918, unique-local), link-local (cloud
//! metadata lives at 169.254.169.254), carrier-grade NAT, unspecified, multicast, broadcast,
//! documentation and benchmarking ranges, and IPv4 addresses mapped or translated into
//! IPv6. The check runs when a URL is set and again at every send, by the resolver the
//! sending client connects through (DNS can change between the two). `allow_private`
//! (setting `WEBHOOK_ALLOW_PRIVATE_TARGETS`) lifts it for local development and tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

use crate::error::{AppError, AppResult};

/// Whether `ip` is an address webhooks must never reach (unless private targets are
/// allowed).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT, 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7.
        || (segments[0] & 0xfe00) == 0xfc00
        // Link-local fe80::/10.
        || (segments[0] & 0xffc0) == 0xfe80
        // Site-local fec0::/10 (deprecated).
        || (segments[0] & 0xffc0) == 0xfec0
        // IPv4-compatible ::/96, IPv4-translated ::ffff:0:0/96, NAT64 64:ff9b::/96 and the
        // local-use NAT64 64:ff9b:1::/48: an IPv4 address inside; refused whole.
        || (segments[..6] == [0, 0, 0, 0, 0, 0])
        || (segments[..5] == [0, 0, 0, 0, 0xffff])
        || (segments[0] == 0x64 && segments[1] == 0xff9b)
        // 6to4 2002::/16 and Teredo 2001::/32 carry IPv4 addresses too; 2001:2::/48 is
        // for benchmarking.
        || segments[0] == 0x2002
        || (segments[0] == 0x2001 && (segments[1] == 0 || segments[1] == 2))
        // Discard-only 100::/64 and ORCHIDv2 2001:20::/28.
        || (segments[..4] == [0x100, 0, 0, 0])
        || (segments[0] == 0x2001 && (segments[1] & 0xfff0) == 0x20)
        // Documentation 2001:db8::/32.
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
}

/// Checks a webhook URL: absolute http(s), no credentials, and (unless `allow_private`)
/// a host that resolves only to public addresses. `field` names the input.
pub async fn check_url(field: &str, raw: &str, allow_private: bool) -> AppResult<Url> {
    let bad = |why: &str| AppError::bad_input(format!("{field} {why} (got {raw:?})"));
    let raw = raw.trim();
    if raw.len() > 2000 {
        return Err(AppError::bad_input(format!("{field} must be at most 2000 characters")));
    }
    let url = Url::parse(raw).map_err(|_| bad("must be an absolute http or https URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    let Some(host) = url.host_str() else {
        return Err(bad("must name a host"));
    };
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses = resolve(host, port).await.map_err(|_| bad("names a host that does not resolve"))?;
    if addresses.is_empty() {
        return Err(bad("names a host that does not resolve"));
    }
    if addresses.iter().any(|a| is_forbidden(a.ip())) {
        return Err(bad(
            "resolves to a loopback, private, link-local or otherwise non-public address; webhooks go to public hosts only",
        ));
    }
    Ok(url)
}

async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// The DNS resolver of the sending client: it answers only public addresses, so a name
/// that re-resolves to a private one at send time cannot be reached.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| !is_forbidden(a.ip())).collect();
            if public.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> =
                    format!("{} resolves to no public address", name.as_str()).into();
                return Err(error);
            }
            let addresses: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

/// Whether a URL whose host is an IP literal may be sent to (the resolver is not asked
/// for literals).
pub fn literal_allowed(url: &Url, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    match url.host_str() {
        Some(host) => {
            host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map_or(true, |ip| !is_forbidden(ip))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} should be forbidden");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }
}
