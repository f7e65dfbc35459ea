//! Resolve the client address of a request behind reverse proxies.
//!
//! The socket peer is the client unless you say which proxies in front of the service are trusted.
//! With [`TrustedProxies`] configured, [`TrustedProxies::resolve`] walks the `Forwarded`
//! ([RFC 7239]) or `X-Forwarded-For` header from the right — the end the proxies you run append
//! to — skips the trusted hops and returns the first address that is not trusted. Everything to
//! the left of that address was written by the client and is never read.
//!
//! # Example
//!
//! ```
//! use std::net::IpAddr;
//! use http::HeaderMap;
//! use tower_audit::client_ip::{anonymize, ForwardedHeader, TrustedProxies};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Usually read from a `TRUSTED_PROXIES` environment variable.
//! let trusted = TrustedProxies::from_comma_separated("10.0.0.0/8, ::1")?
//!     .header(ForwardedHeader::XForwardedFor);
//!
//! let mut headers = HeaderMap::new();
//! // The client forged the first entry; our load balancer appended the real one.
//! headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse()?);
//!
//! let peer: IpAddr = "10.1.2.3".parse()?; // the load balancer
//! let resolved = trusted.resolve(Some(peer), &headers);
//! assert_eq!(resolved.client, Some("203.0.113.7".parse()?));
//! assert_eq!(resolved.peer, Some(peer));
//!
//! // Store a truncated address when the full one is more than the audit trail needs.
//! let stored = resolved.client.map(anonymize);
//! assert_eq!(stored, Some("203.0.113.0".parse()?));
//! # Ok(())
//! # }
//! ```
//!
//! # Where it runs
//!
//! The audit layer calls [`TrustedProxies::resolve`] once per request, with the peer address from
//! the connection (for example axum's `ConnectInfo<SocketAddr>` in the request extensions). Put
//! the audit layer outside any layer that rewrites forwarding headers so that it sees them as the
//! proxies sent them.
//!
//! # Security
//!
//! - Headers are honoured only when the socket peer itself is trusted, so a client that reaches the
//!   service directly cannot forge its address.
//! - An entry that cannot be parsed (`unknown`, an obfuscated `for=_hidden`, garbage, non-UTF-8)
//!   ends the walk at the last good address: nothing left of it can be attributed to a trusted
//!   proxy.
//! - [`ForwardedHeader::Auto`] reads `X-Forwarded-For` whenever the request has one, and
//!   `Forwarded` only when it has none. A proxy that appends to `X-Forwarded-For` (HAProxy's
//!   `option forwardfor`, Envoy, AWS and Google load balancers, Traefik, Caddy, Cloudflare, nginx
//!   with `$proxy_add_x_forwarded_for`) always sends that header, so a client cannot get a
//!   `Forwarded` of its own read by sending one through such a proxy. A proxy that writes only
//!   `Forwarded`, or none (nginx passes client headers on unless told otherwise), lets a client
//!   choose what is read: pin the header your proxies write with [`TrustedProxies::header`].
//! - A bad header never fails, panics or slows the request: the walk looks at no more than
//!   64 entries, reads the bytes of the lines it visits a few times at most, and allocates
//!   nothing.
//! - `Forwarded` is read as RFC 7239 writes it: a comma or semicolon inside a quoted value (a
//!   `host` the client chose) splits nothing, and only the `for` value is bounded in length, so
//!   a long `host` beside it does not hide the client.
//!
//! [RFC 7239]: https://www.rfc-editor.org/rfc/rfc7239

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, HeaderName, header::FORWARDED};
use ipnet::{IpNet, Ipv4Net};

/// `X-Forwarded-For`, which `http` has no constant for.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Most list entries (hops, and empty entries too) one walk looks at.
///
/// Real proxy chains are a handful of hops long; the cap bounds the work an attacker can cause
/// with a huge header.
const MAX_ENTRIES: usize = 64;

/// Longest address worth parsing: an `X-Forwarded-For` entry, or the `for` value of a `Forwarded`
/// element (whose other values, such as a `host` the client chose, may be longer). An address
/// with a port fits many times over; anything longer is garbage and ends the walk.
const MAX_NODE_LEN: usize = 1024;

/// Which proxies in front of the service are trusted to report the client address.
///
/// | setting | default | set with |
/// | --- | --- | --- |
/// | trusted proxies | none: the socket peer is the client | [`cidrs`], [`from_comma_separated`], [`hops`] |
/// | header read | [`ForwardedHeader::Auto`] | [`header`] |
///
/// Trust is either by address ([`cidrs`]: any hop inside one of the ranges is skipped) or by
/// position ([`hops`]: the `n` nearest hops are skipped whatever their address).
///
/// # Example
///
/// ```
/// use tower_audit::client_ip::{ForwardedHeader, TrustedProxies};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let by_range = TrustedProxies::cidrs(["10.0.0.0/8", "fd00::/8"])?;
/// assert!(by_range.is_trusted("10.20.30.40".parse()?));
///
/// // Two proxies whose addresses change: a CDN in front of a load balancer.
/// let by_position = TrustedProxies::hops(2).header(ForwardedHeader::Forwarded);
/// assert!(by_position.is_enabled());
///
/// assert!(!TrustedProxies::default().is_enabled());
/// # Ok(())
/// # }
/// ```
///
/// [`cidrs`]: TrustedProxies::cidrs
/// [`from_comma_separated`]: TrustedProxies::from_comma_separated
/// [`hops`]: TrustedProxies::hops
/// [`header`]: TrustedProxies::header
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    trust: Trust,
    header: ForwardedHeader,
}

#[derive(Clone, Debug, Default)]
enum Trust {
    #[default]
    Nobody,
    /// Never empty: an empty list is `Nobody`, so `is_enabled` stays a cheap match.
    Cidrs(Box<[IpNet]>),
    /// Never zero, for the same reason.
    Hops(usize),
}

impl TrustedProxies {
    /// Trust no proxy: the socket peer is the client and headers are never read.
    ///
    /// The same as [`TrustedProxies::default`].
    ///
    /// ```
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// assert!(!TrustedProxies::none().is_enabled());
    /// ```
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Trust proxies whose addresses fall in one of `cidrs`.
    ///
    /// Each entry is a CIDR range (`10.0.0.0/8`, `2001:db8::/32`) or a bare address, which means
    /// that one address (`/32` or `/128`). IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`) are
    /// stored as the IPv4 range they stand for; their prefix counts the 96 bits before the IPv4
    /// address, so it is 96 or more. Surrounding whitespace is ignored. An empty list trusts
    /// nobody.
    ///
    /// # Errors
    ///
    /// [`ClientIpError::InvalidCidr`] naming the first entry that is neither, or
    /// [`ClientIpError::MappedPrefix`] for an IPv4-mapped range written with its IPv4 prefix
    /// (`::ffff:127.0.0.0/8`, which would trust `::/8`).
    ///
    /// ```
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let trusted = TrustedProxies::cidrs(["192.168.0.0/16", "127.0.0.1", "::1/128"])?;
    /// assert!(trusted.is_trusted("127.0.0.1".parse()?));
    /// assert!(!trusted.is_trusted("127.0.0.2".parse()?));
    ///
    /// let err = TrustedProxies::cidrs(["10.0.0.0/33"]).unwrap_err();
    /// assert!(err.to_string().contains("10.0.0.0/33"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn cidrs<I, S>(cidrs: I) -> Result<Self, ClientIpError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = cidrs
            .into_iter()
            .map(|cidr| parse_cidr(cidr.as_ref().trim()))
            .collect::<Result<Box<[_]>, _>>()?;
        let trust = if nets.is_empty() {
            Trust::Nobody
        } else {
            Trust::Cidrs(nets)
        };
        Ok(Self {
            trust,
            header: ForwardedHeader::default(),
        })
    }

    /// Parse a comma-separated list of CIDR ranges, as found in a `TRUSTED_PROXIES` environment
    /// variable.
    ///
    /// Whitespace around entries and empty entries (`"10.0.0.0/8, "`) are ignored, so an empty or
    /// blank string trusts nobody. Entries follow [`TrustedProxies::cidrs`].
    ///
    /// # Errors
    ///
    /// [`ClientIpError::InvalidCidr`] naming the first entry that is not a range or an address;
    /// [`ClientIpError::MappedPrefix`] as for [`TrustedProxies::cidrs`].
    ///
    /// ```
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let from_env = std::env::var("TRUSTED_PROXIES").unwrap_or_default();
    /// let trusted = TrustedProxies::from_comma_separated(&from_env)?;
    /// # assert!(!trusted.is_enabled());
    ///
    /// let trusted = TrustedProxies::from_comma_separated(" 10.0.0.0/8 ,172.16.0.0/12,::1 ")?;
    /// assert!(trusted.is_trusted("172.20.0.1".parse()?));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_comma_separated(s: &str) -> Result<Self, ClientIpError> {
        Self::cidrs(
            s.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty()),
        )
    }

    /// Trust the `n` nearest hops whatever their address; the socket peer counts as the first.
    ///
    /// Use this when the proxies' addresses are not known in advance but their number is. With
    /// `hops(1)` the rightmost header entry (written by the peer) is the client; `hops(0)` trusts
    /// nobody.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut headers = HeaderMap::new();
    /// headers.insert("x-forwarded-for", "6.6.6.6, 198.51.100.4, 203.0.113.9".parse()?);
    ///
    /// // A CDN (reported as 203.0.113.9) in front of a load balancer (the peer).
    /// let resolved = TrustedProxies::hops(2).resolve(Some("10.0.0.5".parse()?), &headers);
    /// assert_eq!(resolved.client, Some("198.51.100.4".parse()?));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn hops(n: usize) -> Self {
        let trust = if n == 0 {
            Trust::Nobody
        } else {
            Trust::Hops(n)
        };
        Self {
            trust,
            header: ForwardedHeader::default(),
        }
    }

    /// Choose which forwarding header to read. Defaults to [`ForwardedHeader::Auto`].
    ///
    /// ```
    /// use tower_audit::client_ip::{ForwardedHeader, TrustedProxies};
    ///
    /// let trusted = TrustedProxies::hops(1).header(ForwardedHeader::XForwardedFor);
    /// # assert!(trusted.is_enabled());
    /// ```
    #[must_use]
    pub fn header(mut self, which: ForwardedHeader) -> Self {
        self.header = which;
        self
    }

    /// Whether `ip` is a trusted proxy address.
    ///
    /// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are compared as IPv4. In hop-count mode
    /// trust depends on position, not address, so every address is trusted; with no proxies
    /// configured none is.
    ///
    /// ```
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let trusted = TrustedProxies::cidrs(["10.0.0.0/8"])?;
    /// assert!(trusted.is_trusted("::ffff:10.0.0.1".parse()?));
    /// assert!(!trusted.is_trusted("11.0.0.1".parse()?));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        match &self.trust {
            Trust::Nobody => false,
            Trust::Cidrs(nets) => cidrs_contain(nets, ip.to_canonical()),
            Trust::Hops(_) => true,
        }
    }

    /// Whether any proxy is trusted. `false` means [`resolve`](Self::resolve) returns the peer
    /// without reading headers, so a caller can skip collecting them.
    ///
    /// ```
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// assert!(!TrustedProxies::none().is_enabled());
    /// assert!(!TrustedProxies::from_comma_separated("")?.is_enabled());
    /// assert!(!TrustedProxies::hops(0).is_enabled());
    /// assert!(TrustedProxies::hops(1).is_enabled());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        !matches!(self.trust, Trust::Nobody)
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    ///
    /// Returns `peer` as the client when no proxy is configured, when the peer is unknown, or when
    /// it is not trusted; headers are not read then. Otherwise the forwarding header lines are
    /// read as one list from the right, trusted hops are skipped, and the first untrusted address
    /// is the client. If every hop is trusted the leftmost is the client. If an entry cannot be
    /// parsed, or the walk reaches its cap of 64 entries, the last good address (the nearest
    /// trusted hop, or the peer) is the client. Empty entries are skipped.
    ///
    /// Addresses are returned canonical: an IPv4-mapped IPv6 address comes back as IPv4.
    ///
    /// Never fails, never panics and never allocates.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use tower_audit::client_ip::TrustedProxies;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let trusted = TrustedProxies::cidrs(["10.0.0.0/8"])?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert("forwarded", r#"for="[2001:db8:cafe::17]:4711";proto=https"#.parse()?);
    ///
    /// let resolved = trusted.resolve(Some("10.0.0.2".parse()?), &headers);
    /// assert_eq!(resolved.client, Some("2001:db8:cafe::17".parse()?));
    ///
    /// // The same headers straight from the internet are ignored.
    /// let resolved = trusted.resolve(Some("198.51.100.1".parse()?), &headers);
    /// assert_eq!(resolved.client, Some("198.51.100.1".parse()?));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> ResolvedIp {
        let peer = peer.map(|ip| ip.to_canonical());
        let direct = ResolvedIp { client: peer, peer };
        let Some(peer_ip) = peer else {
            // Without a peer there is nothing to anchor trust to, so headers stay unread.
            return direct;
        };
        if !self.is_trusted(peer_ip) {
            return direct;
        }
        let client = match self.header {
            ForwardedHeader::Forwarded => self.walk(peer_ip, headers, Format::Forwarded),
            ForwardedHeader::XForwardedFor => self.walk(peer_ip, headers, Format::XForwardedFor),
            // `X-Forwarded-For` first: the header nearly every proxy appends to. Preferring
            // `Forwarded` let a client behind such a proxy send one and have it read.
            ForwardedHeader::Auto if headers.contains_key(X_FORWARDED_FOR) => {
                self.walk(peer_ip, headers, Format::XForwardedFor)
            }
            ForwardedHeader::Auto => self.walk(peer_ip, headers, Format::Forwarded),
        };
        ResolvedIp {
            client: Some(client),
            peer,
        }
    }

    /// Walk the header list from the right, starting from a trusted peer.
    fn walk(&self, peer: IpAddr, headers: &HeaderMap, format: Format) -> IpAddr {
        let name = match format {
            Format::Forwarded => FORWARDED,
            Format::XForwardedFor => X_FORWARDED_FOR,
        };
        let mut last_good = peer;
        // The peer is hop 0; the header's rightmost entry is hop 1.
        let mut hop = 0;
        let mut budget = MAX_ENTRIES;
        for line in headers.get_all(name).iter().rev() {
            // Split bytes, not `&str`: `to_str` would scan the whole line first, however long.
            for entry in entries_from_right(line.as_bytes(), format) {
                if budget == 0 {
                    return last_good;
                }
                budget -= 1;
                let ip = match parse_entry(entry, format) {
                    Entry::Empty => continue,
                    Entry::Opaque => return last_good,
                    Entry::Addr(ip) => ip,
                };
                hop += 1;
                if !self.trusts_hop(ip, hop) {
                    return ip;
                }
                last_good = ip;
            }
        }
        last_good
    }

    fn trusts_hop(&self, ip: IpAddr, hop: usize) -> bool {
        match &self.trust {
            Trust::Nobody => false,
            Trust::Cidrs(nets) => cidrs_contain(nets, ip),
            Trust::Hops(n) => hop < *n,
        }
    }
}

/// Which forwarding header [`TrustedProxies::resolve`] reads.
///
/// Only one header is read per request; the two are never merged, since proxies that write one
/// may pass the other through from the client untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` if the request has one, else `Forwarded`.
    ///
    /// Safe behind proxies that append to `X-Forwarded-For`, which nearly all do: they always
    /// send it, so a `Forwarded` from the client is never read. If your proxies write only
    /// `Forwarded` and pass an incoming `X-Forwarded-For` through, the client decides which
    /// header is read: name the header.
    #[default]
    Auto,
    /// `Forwarded`, as defined by RFC 7239: `for=192.0.2.60;proto=http, for="[2001:db8::1]:80"`.
    Forwarded,
    /// `X-Forwarded-For`: `203.0.113.195, 70.41.3.18`.
    XForwardedFor,
}

/// The header grammar a walk parses; `Auto` resolved to one of these.
#[derive(Clone, Copy)]
enum Format {
    Forwarded,
    XForwardedFor,
}

/// Result of [`TrustedProxies::resolve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedIp {
    /// The client address: the peer, or the first untrusted address reported by trusted proxies.
    /// `None` only when the peer is unknown.
    pub client: Option<IpAddr>,
    /// The socket peer, canonicalized (IPv4-mapped IPv6 becomes IPv4).
    pub peer: Option<IpAddr>,
}

/// Truncate an address for privacy: IPv4 keeps its first 24 bits, IPv6 its first 48.
///
/// An IPv4-mapped IPv6 address is treated as the IPv4 address it carries, since its first 48 bits
/// would otherwise be all zeros. A 6to4 address (`2002::/16`) carries its site's IPv4 address in
/// bits 16 to 47, which /48 would keep whole: it keeps 40 bits, its IPv4 address cut to /24
/// (`2002:cb00:7107::1` becomes `2002:cb00:7100::`). Other IPv6 forms that embed an IPv4 address
/// hold it past bit 48 (Teredo's client, NAT64's `64:ff9b::/96`, ISATAP), where /48 drops it.
///
/// ```
/// use tower_audit::client_ip::anonymize;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert_eq!(anonymize("203.0.113.195".parse()?), "203.0.113.0".parse::<std::net::IpAddr>()?);
/// assert_eq!(anonymize("2001:db8:cafe:1::17".parse()?), "2001:db8:cafe::".parse::<std::net::IpAddr>()?);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub fn anonymize(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & !0xff)),
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            let keep = if bits >> 112 == 0x2002 { 16 + 24 } else { 48 };
            IpAddr::V6(Ipv6Addr::from_bits(bits & !(u128::MAX >> keep)))
        }
    }
}

/// Request headers in which proxies, CDNs and load balancers name the client's address: with
/// `anonymize_ip`, the addresses of those the layer records are cut as the columns' are, and a
/// replay never sends them as recorded.
pub(crate) const CLIENT_ADDRESS_HEADERS: [&str; 19] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded",
    "forwarded-for",
    "x-original-forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "cf-connecting-ipv6",
    "fastly-client-ip",
    "x-envoy-external-address",
    "x-appengine-user-ip",
    "x-azure-clientip",
    "x-azure-socketip",
    "x-forwarded-host",
    "x-forwarded-proto",
];

/// `text` with every IP address in it [`anonymize`]d: a run of hex digits, `:` and `.` that
/// reads as an address (`203.0.113.7`, `2001:db8::1` inside `[…]:443`, `::ffff:1.2.3.4`), or as
/// an IPv4 address and a port (`203.0.113.7:5678`). Anything else stays as it is.
pub(crate) fn anonymize_addresses(text: &str) -> std::borrow::Cow<'_, str> {
    let is_run = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
    let mut out = String::new();
    let mut kept = 0;
    let mut rest = text.char_indices().peekable();
    while let Some((start, c)) = rest.next() {
        if !is_run(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(at, c)) = rest.peek() {
            if !is_run(c) {
                break;
            }
            end = at + c.len_utf8();
            rest.next();
        }
        let run = &text[start..end];
        let (address, port) = match run.parse::<IpAddr>() {
            Ok(ip) => (ip, ""),
            Err(_) => match run.rsplit_once(':') {
                Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                    match host.parse::<Ipv4Addr>() {
                        Ok(v4) => (IpAddr::V4(v4), &run[host.len()..]),
                        Err(_) => continue,
                    }
                }
                _ => continue,
            },
        };
        out.push_str(&text[kept..start]);
        out.push_str(&anonymize(address).to_string());
        out.push_str(port);
        kept = end;
    }
    if kept == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[kept..]);
    std::borrow::Cow::Owned(out)
}

/// Errors from configuring [`TrustedProxies`].
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ClientIpError {
    /// A trusted proxy entry is neither a CIDR range nor an IP address.
    #[error(
        "invalid trusted proxy `{value}`: expected a CIDR range such as 10.0.0.0/8 or an IP address"
    )]
    InvalidCidr {
        /// The entry as given, without surrounding whitespace.
        value: String,
        /// Why `ipnet` rejected it.
        #[source]
        source: ipnet::AddrParseError,
    },
    /// An IPv4-mapped IPv6 range with a prefix below 96, such as `::ffff:127.0.0.0/8`: the
    /// prefix of an IPv6 range counts all 128 bits, so this one is `::/8`, not the IPv4 range.
    #[error(
        "invalid trusted proxy `{value}`: an IPv4-mapped range's prefix counts the 96 bits \
         before the IPv4 address, so it is 96 or more{}",
        .intended.as_ref().map(|intended| format!("; did you mean `{intended}`?"))
            .unwrap_or_default()
    )]
    MappedPrefix {
        /// The entry as given, without surrounding whitespace.
        value: String,
        /// The likely intended range (`::ffff:127.0.0.0/104`, the same as `127.0.0.0/8`), when
        /// the prefix given is one an IPv4 range can have (32 or less).
        intended: Option<String>,
    },
}

fn parse_cidr(value: &str) -> Result<IpNet, ClientIpError> {
    let net = match value.parse::<IpAddr>() {
        Ok(ip) => IpNet::from(ip),
        // Not an address: parse it as a range, whose error is the one worth reporting.
        Err(_) => value
            .parse::<IpNet>()
            .map_err(|source| ClientIpError::InvalidCidr {
                value: value.to_owned(),
                source,
            })?,
    };
    if let IpNet::V6(v6) = net
        && v6.prefix_len() < 96
        && v6.addr().to_ipv4_mapped().is_some()
    {
        // Most likely the IPv4 range's prefix: `::ffff:127.0.0.0/8` for `127.0.0.0/8`.
        let intended =
            (v6.prefix_len() <= 32).then(|| format!("{}/{}", v6.addr(), v6.prefix_len() + 96));
        return Err(ClientIpError::MappedPrefix {
            value: value.to_owned(),
            intended,
        });
    }
    Ok(canonical_net(net.trunc()))
}

/// Store `::ffff:a.b.c.d/n` as `a.b.c.d/(n-96)` so it matches canonicalized addresses.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4net);
    }
    net
}

/// `ip` must already be canonical.
fn cidrs_contain(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|net| net.contains(&ip))
}

/// One comma-separated entry of a forwarding header.
enum Entry {
    /// Nothing between two commas; HTTP list syntax allows these and they name no hop.
    Empty,
    /// A hop with a usable address.
    Addr(IpAddr),
    /// A hop whose address is unknown, hidden or unparseable.
    Opaque,
}

/// The comma-separated entries of a header line, from the right, as `rsplit` gives them.
///
/// In `Forwarded` a comma inside a quoted string (a `host` may hold one) does not split: read
/// from the right, a `"` after an even run of `\` opens or closes one, as read from the left in
/// a well-formed line, which is what the proxies we trust write. The line is searched with
/// `memchr` and each `\` is counted once, so the work stays linear in the bytes read.
fn entries_from_right(line: &[u8], format: Format) -> impl Iterator<Item = &[u8]> {
    let quotes = matches!(format, Format::Forwarded);
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut end, mut quoted) = (text.len(), false);
        loop {
            let found = if quotes {
                memchr::memrchr2(b',', b'"', &text[..end])
            } else {
                memchr::memrchr(b',', &text[..end])
            };
            let Some(at) = found else {
                rest = None;
                return Some(text);
            };
            if text[at] == b',' {
                if !quoted {
                    rest = Some(&text[..at]);
                    return Some(&text[at + 1..]);
                }
            } else if text[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0 {
                quoted = !quoted;
            }
            end = at;
        }
    })
}

fn parse_entry(entry: &[u8], format: Format) -> Entry {
    let entry = entry.trim_ascii();
    if entry.is_empty() {
        return Entry::Empty;
    }
    let node = match format {
        Format::Forwarded => forwarded_for(entry),
        Format::XForwardedFor => Some(entry),
    };
    node.filter(|node| node.len() <= MAX_NODE_LEN)
        .and_then(|node| std::str::from_utf8(node).ok())
        .and_then(parse_node)
        .map_or(Entry::Opaque, Entry::Addr)
}

/// The `for=` value of one `Forwarded` element, unquoted; `None` if the element is malformed or
/// has no single `for`.
///
/// Every parameter is checked, not only `for`: an element whose quotes do not balance (cut
/// by a comma a proxy failed to quote) ends the walk rather than yielding an address the
/// client wrote. Only the `for` value need be UTF-8: a quoted `host` may hold obs-text.
fn forwarded_for(element: &[u8]) -> Option<&[u8]> {
    let mut found = None;
    for pair in pairs(element) {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            continue;
        }
        let eq = memchr::memchr(b'=', pair)?;
        let (name, value) = (
            pair[..eq].trim_ascii_end(),
            pair[eq + 1..].trim_ascii_start(),
        );
        let value = if let Some(quoted) = value.strip_prefix(b"\"") {
            let inner = quoted.strip_suffix(b"\"")?;
            if !is_quoted_string_body(inner) {
                return None;
            }
            inner
        } else if value.iter().any(|&b| matches!(b, b'"' | b'\\')) {
            return None;
        } else {
            value
        };
        if name.eq_ignore_ascii_case(b"for") {
            if found.is_some() {
                // RFC 7239 allows each parameter once per element.
                return None;
            }
            found = Some(value);
        }
    }
    found
}

/// The `;`-separated pairs of a `Forwarded` element. A `;` inside a quoted value (a `host` may
/// hold one) does not split; an unbalanced quote leaves the rest in one piece, which the checks
/// of [`forwarded_for`] reject.
fn pairs(element: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(element);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, &byte) in text.iter().enumerate() {
            match byte {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    rest = Some(&text[i + 1..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

/// Whether `inner` is a valid quoted-string body: every `"` escaped, no dangling `\`.
fn is_quoted_string_body(inner: &[u8]) -> bool {
    let mut bytes = inner.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' if bytes.next().is_none() => return false,
            b'\\' => {}
            b'"' => return false,
            _ => {}
        }
    }
    true
}

/// Parse a node: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:8080`. `unknown`, obfuscated `_names` and anything else give `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let ip = if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let v6: Ipv6Addr = v6.parse().ok()?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        IpAddr::V6(v6)
    } else if let Ok(ip) = node.parse::<IpAddr>() {
        ip
    } else {
        // Only IPv4 takes a port without brackets; in bare IPv6 the last `:` is part of it.
        let (v4, port) = node.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(v4.parse().ok()?)
    };
    Some(ip.to_canonical())
}

/// A port number or an RFC 7239 obfuscated port (`_abc`). We only need the address, so the port
/// is checked just to reject garbage.
fn is_port(port: &str) -> bool {
    if let Some(obfuscated) = port.strip_prefix('_') {
        !obfuscated.is_empty()
            && obfuscated
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    } else {
        port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn cidrs(list: &[&str]) -> TrustedProxies {
        TrustedProxies::cidrs(list).unwrap()
    }

    const XFF: &str = "x-forwarded-for";
    const FWD: &str = "forwarded";

    struct Case {
        name: &'static str,
        trusted: TrustedProxies,
        peer: Option<&'static str>,
        lines: &'static [(&'static str, &'static str)],
        client: Option<&'static str>,
    }

    #[test]
    fn resolves_client() {
        let lan = || cidrs(&["10.0.0.0/8"]);
        let cases = [
            Case {
                name: "no proxies: forged X-Forwarded-For is ignored",
                trusted: TrustedProxies::none(),
                peer: Some("203.0.113.9"),
                lines: &[(XFF, "1.2.3.4")],
                client: Some("203.0.113.9"),
            },
            Case {
                name: "no peer: nothing to trust",
                trusted: lan(),
                peer: None,
                lines: &[(XFF, "1.2.3.4")],
                client: None,
            },
            Case {
                name: "one trusted proxy",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "1.2.3.4")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "two trusted proxies",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "1.2.3.4, 10.0.0.2")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "client-supplied leftmost entry is ignored",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "6.6.6.6, 1.2.3.4")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "untrusted peer: headers ignored",
                trusted: lan(),
                peer: Some("198.51.100.1"),
                lines: &[(XFF, "1.2.3.4"), (FWD, "for=1.2.3.4")],
                client: Some("198.51.100.1"),
            },
            Case {
                name: "trusted peer without headers is the client",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[],
                client: Some("10.0.0.1"),
            },
            Case {
                name: "all hops trusted: leftmost is the client",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "10.9.9.9, 10.0.0.3, 10.0.0.2")],
                client: Some("10.9.9.9"),
            },
            Case {
                name: "Forwarded with quoted IPv6 and port",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for="[2001:db8:cafe::17]:4711""#)],
                client: Some("2001:db8:cafe::17"),
            },
            Case {
                name: "Forwarded, several params, case-insensitive For, trusted hop skipped",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(
                    FWD,
                    "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"10.0.0.7:80\" ;proto=https",
                )],
                client: Some("192.0.2.60"),
            },
            Case {
                name: "Forwarded IPv4 with port",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, "for=\"192.0.2.60:8080\"")],
                client: Some("192.0.2.60"),
            },
            Case {
                name: "X-Forwarded-For with IPv4 port and bracketed IPv6 port",
                trusted: cidrs(&["10.0.0.0/8", "2001:db8:ffff::/48"]),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "1.2.3.4:5678, [2001:db8:ffff::1]:8080")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "bare IPv6 in X-Forwarded-For",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, " 2001:db8::1 ")],
                client: Some("2001:db8::1"),
            },
            Case {
                name: "several header lines are one list, read from the last",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[
                    (XFF, "6.6.6.6"),
                    (XFF, "1.2.3.4, 10.0.0.3"),
                    (XFF, "10.0.0.2"),
                ],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "several Forwarded lines",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[
                    (FWD, "for=6.6.6.6"),
                    (FWD, "for=1.2.3.4"),
                    (FWD, "for=10.0.0.2"),
                ],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "empty entries are skipped",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "6.6.6.6, 1.2.3.4,, ,10.0.0.2,"), (XFF, "")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "garbage stops the walk at the peer",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "1.2.3.4, not-an-ip")],
                client: Some("10.0.0.1"),
            },
            Case {
                name: "garbage stops the walk at the nearest trusted hop",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "6.6.6.6, garbage, 10.0.0.2")],
                client: Some("10.0.0.2"),
            },
            Case {
                name: "unknown stops the walk",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "6.6.6.6, unknown, 10.0.0.2")],
                client: Some("10.0.0.2"),
            },
            Case {
                name: "Forwarded for=unknown stops the walk",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, "for=6.6.6.6, for=unknown")],
                client: Some("10.0.0.1"),
            },
            Case {
                name: "obfuscated identifier stops the walk",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, "for=6.6.6.6, for=_hidden, for=10.0.0.2")],
                client: Some("10.0.0.2"),
            },
            Case {
                name: "obfuscated port is fine",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for="[2001:db8::9]:_p0rt""#)],
                client: Some("2001:db8::9"),
            },
            Case {
                name: "Forwarded element without for stops the walk",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, "for=6.6.6.6, proto=https")],
                client: Some("10.0.0.1"),
            },
            Case {
                name: "Forwarded element with two for stops the walk",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, "for=10.0.0.9;for=6.6.6.6")],
                client: Some("10.0.0.1"),
            },
            Case {
                // Once read the peer, when commas split without regard to quotes; the element
                // is one, whose own `for` is the client's.
                name: "comma inside a quoted value cannot inject an address",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                // A proxy quoting a client-chosen host `x",for=6.6.6.6;a="y`.
                lines: &[(FWD, r#"for=1.2.3.4;host="x\",for=6.6.6.6;a=\"y""#)],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "a comma inside a quoted host does not split the element",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for=6.6.6.6, for=1.2.3.4;host="a,b", for=10.0.0.2"#)],
                client: Some("1.2.3.4"),
            },
            Case {
                // `\\` is an escaped backslash: the quote after it closes the host.
                name: "a quote after an escaped backslash closes the value",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for=6.6.6.6, for=1.2.3.4;host="a\\", for=10.0.0.2"#)],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "unbalanced quote is garbage",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for="1.2.3.4"#)],
                client: Some("10.0.0.1"),
            },
            Case {
                // A proxy that appends to X-Forwarded-For passes the client's own Forwarded on.
                name: "auto prefers X-Forwarded-For over a Forwarded the client sent",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "5.5.5.5"), (FWD, "for=6.6.6.6")],
                client: Some("5.5.5.5"),
            },
            Case {
                name: "auto reads Forwarded when there is no X-Forwarded-For",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, "for=1.2.3.4;proto=https")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "a semicolon inside a quoted value does not split the element",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for=192.0.2.60;host="a;b";proto=http"#)],
                client: Some("192.0.2.60"),
            },
            Case {
                name: "a quoted semicolon cannot smuggle a second for",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(FWD, r#"for=192.0.2.60;host="a;for=6.6.6.6""#)],
                client: Some("192.0.2.60"),
            },
            Case {
                name: "pinned X-Forwarded-For ignores Forwarded",
                trusted: lan().header(ForwardedHeader::XForwardedFor),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "1.2.3.4"), (FWD, "for=6.6.6.6")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "pinned Forwarded ignores X-Forwarded-For",
                trusted: lan().header(ForwardedHeader::Forwarded),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "6.6.6.6")],
                client: Some("10.0.0.1"),
            },
            Case {
                name: "hops(1): rightmost entry is the client",
                trusted: TrustedProxies::hops(1),
                peer: Some("198.51.100.1"),
                lines: &[(XFF, "6.6.6.6, 1.2.3.4")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "hops(2): second from the right is the client",
                trusted: TrustedProxies::hops(2),
                peer: Some("198.51.100.1"),
                lines: &[(XFF, "6.6.6.6, 1.2.3.4"), (XFF, "198.51.100.2")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "hops more than the header has: leftmost is the client",
                trusted: TrustedProxies::hops(5),
                peer: Some("198.51.100.1"),
                lines: &[(XFF, "1.2.3.4, 198.51.100.2")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "hops(0) trusts nobody",
                trusted: TrustedProxies::hops(0),
                peer: Some("198.51.100.1"),
                lines: &[(XFF, "1.2.3.4")],
                client: Some("198.51.100.1"),
            },
            Case {
                name: "IPv4-mapped peer matches an IPv4 range",
                trusted: lan(),
                peer: Some("::ffff:10.0.0.1"),
                lines: &[(XFF, "1.2.3.4")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "IPv4-mapped hop matches an IPv4 range and is canonicalized",
                trusted: lan(),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "::ffff:1.2.3.4, ::ffff:10.0.0.2")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "IPv4-mapped range matches an IPv4 peer",
                trusted: cidrs(&["::ffff:10.0.0.0/104"]),
                peer: Some("10.0.0.1"),
                lines: &[(XFF, "1.2.3.4")],
                client: Some("1.2.3.4"),
            },
            Case {
                name: "IPv6 loopback proxy",
                trusted: cidrs(&["::1/128"]),
                peer: Some("::1"),
                lines: &[(FWD, "for=\"[2001:db8::5]\"")],
                client: Some("2001:db8::5"),
            },
        ];

        for case in cases {
            let peer = case.peer.map(ip);
            let resolved = case.trusted.resolve(peer, &headers(case.lines));
            assert_eq!(resolved.client, case.client.map(ip), "{}", case.name);
            assert_eq!(
                resolved.peer,
                peer.map(|p| p.to_canonical()),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn non_utf8_header_stops_the_walk() {
        let mut map = HeaderMap::new();
        map.append(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        map.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap(),
        );
        map.append(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        let resolved = cidrs(&["10.0.0.0/8"]).resolve(Some(ip("10.0.0.1")), &map);
        assert_eq!(resolved.client, Some(ip("10.0.0.2")));
    }

    #[test]
    fn megabyte_of_commas_resolves() {
        let commas = ",".repeat(1 << 20);
        let trusted = cidrs(&["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.1"));

        let lines = headers(&[(XFF, &format!("6.6.6.6{commas}"))]);
        assert_eq!(trusted.resolve(peer, &lines).client, peer);

        let lines = headers(&[(FWD, &format!("for=6.6.6.6{commas}for=1.2.3.4"))]);
        assert_eq!(trusted.resolve(peer, &lines).client, Some(ip("1.2.3.4")));
    }

    /// Found by a probe: the whole element was bounded by 1024 bytes, so a client that sent a
    /// long `Host` through a proxy writing it into `Forwarded` was recorded as the proxy.
    #[test]
    fn a_long_host_beside_the_for_does_not_hide_the_client() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.1"));
        let host = "h".repeat(1100);
        let lines = headers(&[(
            FWD,
            &format!(r#"for=203.0.113.7;host="{host}";proto=https"#),
        )]);
        assert_eq!(
            trusted.resolve(peer, &lines).client,
            Some(ip("203.0.113.7"))
        );

        // A host with commas, and a megabyte of one.
        let host = "h,".repeat(1 << 19);
        let lines = headers(&[(FWD, &format!(r#"for=203.0.113.7;host="{host}""#))]);
        assert_eq!(
            trusted.resolve(peer, &lines).client,
            Some(ip("203.0.113.7"))
        );

        // obs-text in a quoted host: only the `for` value need be UTF-8.
        let mut map = HeaderMap::new();
        map.append(
            FORWARDED,
            HeaderValue::from_bytes(b"for=203.0.113.7;host=\"caf\xe9\"").unwrap(),
        );
        assert_eq!(trusted.resolve(peer, &map).client, Some(ip("203.0.113.7")));

        // The `for` value itself is bounded.
        let long_port = format!(r#"for="203.0.113.7:_{}""#, "p".repeat(MAX_NODE_LEN));
        let lines = headers(&[(FWD, &long_port)]);
        assert_eq!(trusted.resolve(peer, &lines).client, peer);
        let port = format!(r#"for="203.0.113.7:_{}""#, "p".repeat(MAX_NODE_LEN - 20));
        let lines = headers(&[(FWD, &port)]);
        assert_eq!(
            trusted.resolve(peer, &lines).client,
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn long_trusted_chain_is_capped() {
        let chain = vec!["10.0.0.2"; MAX_ENTRIES + 10].join(",");
        let lines = headers(&[(XFF, &format!("6.6.6.6,{chain}"))]);
        let resolved = cidrs(&["10.0.0.0/8"]).resolve(Some(ip("10.0.0.1")), &lines);
        assert_eq!(resolved.client, Some(ip("10.0.0.2")));
    }

    #[test]
    fn megabyte_entry_is_garbage() {
        let lines = headers(&[(XFF, &format!("6.6.6.6, {}", "1".repeat(1 << 20)))]);
        let resolved = cidrs(&["10.0.0.0/8"]).resolve(Some(ip("10.0.0.1")), &lines);
        assert_eq!(resolved.client, Some(ip("10.0.0.1")));
    }

    #[test]
    fn from_comma_separated() {
        let trusted =
            TrustedProxies::from_comma_separated(" 10.0.0.0/8 ,  127.0.0.1,::1, fd00::/8 ,")
                .unwrap();
        for yes in ["10.1.2.3", "127.0.0.1", "::1", "fd12::1", "::ffff:10.0.0.1"] {
            assert!(trusted.is_trusted(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "127.0.0.2", "::2", "fe80::1"] {
            assert!(!trusted.is_trusted(ip(no)), "{no}");
        }

        for blank in ["", "   ", " , "] {
            let trusted = TrustedProxies::from_comma_separated(blank).unwrap();
            assert!(!trusted.is_enabled(), "{blank:?}");
        }

        for bad in ["10.0.0.0/33", "localhost", "10.0.0/8", "1.2.3.4/"] {
            let err = TrustedProxies::from_comma_separated(&format!("10.0.0.0/8, {bad} ,::1"))
                .unwrap_err();
            let ClientIpError::InvalidCidr { value, .. } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(value, bad);
            assert!(err.to_string().contains(bad), "{err}");
            assert!(std::error::Error::source(&err).is_some());
        }
    }

    /// Found by a probe: `::ffff:127.0.0.0/8`, an IPv4 prefix on a mapped address, was taken
    /// as `::/8`, silently: it trusted `::1` and not the IPv4 loopback it named.
    #[test]
    fn a_mapped_range_with_an_ipv4_prefix_is_refused() {
        let err =
            TrustedProxies::from_comma_separated("10.0.0.0/8, ::ffff:127.0.0.0/8").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid trusted proxy `::ffff:127.0.0.0/8`: an IPv4-mapped range's prefix counts \
             the 96 bits before the IPv4 address, so it is 96 or more; did you mean \
             `::ffff:127.0.0.0/104`?"
        );
        assert!(matches!(
            err,
            ClientIpError::MappedPrefix { ref value, .. } if value == "::ffff:127.0.0.0/8"
        ));
        // A prefix no IPv4 range has: the rule alone.
        let err = TrustedProxies::cidrs(["::ffff:10.0.0.0/64"]).unwrap_err();
        assert!(err.to_string().ends_with("so it is 96 or more"), "{err}");
        assert!(TrustedProxies::cidrs(["::ffff:0.0.0.0/0"]).is_err());
        // From 96 on, a mapped range is the IPv4 range it stands for.
        for good in ["::ffff:127.0.0.0/104", "::ffff:0:0/96", "::ffff:127.0.0.1"] {
            let trusted = TrustedProxies::cidrs([good]).unwrap();
            assert!(trusted.is_trusted(ip("127.0.0.1")), "{good}");
            assert!(!trusted.is_trusted(ip("::1")), "{good}");
        }
        // Ranges that are not mapped are as before.
        assert!(TrustedProxies::cidrs(["::/8", "2001:db8::/32"]).is_ok());
    }

    #[test]
    fn is_enabled() {
        assert!(!TrustedProxies::none().is_enabled());
        assert!(!TrustedProxies::default().is_enabled());
        assert!(
            !TrustedProxies::cidrs(Vec::<String>::new())
                .unwrap()
                .is_enabled()
        );
        assert!(!TrustedProxies::hops(0).is_enabled());
        assert!(TrustedProxies::hops(1).is_enabled());
        assert!(cidrs(&["10.0.0.0/8"]).is_enabled());
        assert!(!TrustedProxies::none().is_trusted(ip("127.0.0.1")));
    }

    #[test]
    fn addresses_in_header_values_are_anonymized() {
        for (value, expected) in [
            ("198.51.100.1, 203.0.113.77", "198.51.100.0, 203.0.113.0"),
            (
                "for=\"[2001:db8:abcd:1234::5]:80\";proto=https, for=192.0.2.60:4711",
                "for=\"[2001:db8:abcd::]:80\";proto=https, for=192.0.2.0:4711",
            ),
            ("::ffff:203.0.113.9", "203.0.113.0"),
            ("for=_hidden;by=unknown", "for=_hidden;by=unknown"),
            ("fe80::1%eth0", "fe80::%eth0"),
            ("cafe, 1.2, deadbeef", "cafe, 1.2, deadbeef"),
        ] {
            assert_eq!(anonymize_addresses(value), expected, "{value}");
        }
    }

    #[test]
    fn anonymize_v4_and_v6() {
        let cases = [
            ("203.0.113.195", "203.0.113.0"),
            ("10.0.0.0", "10.0.0.0"),
            ("2001:db8:cafe:1:2:3:4:5", "2001:db8:cafe::"),
            ("2001:db8:cafe:ffff::", "2001:db8:cafe::"),
            ("::ffff:192.0.2.77", "192.0.2.0"),
            ("::1", "::"),
            // Found by a probe: 6to4 kept its whole IPv4 address (203.0.113.7) in /48.
            ("2002:cb00:7107::1", "2002:cb00:7100::"),
            ("2002:cb00:71ff:ffff:1:2:3:4", "2002:cb00:7100::"),
            // Teredo: the client's (obfuscated) IPv4 and port are in the last 48 bits; /48
            // keeps the prefix and half the server's address.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136::"),
            // NAT64: the IPv4 address is in the last 32 bits.
            ("64:ff9b::cb00:7107", "64:ff9b::"),
        ];
        for (input, expected) in cases {
            assert_eq!(anonymize(ip(input)), ip(expected), "{input}");
        }
    }

    #[test]
    fn parse_node_edges() {
        for good in ["1.2.3.4", "1.2.3.4:0", "[::1]", "[::1]:65535", "::1"] {
            assert!(parse_node(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "1.2.3.4:",
            "1.2.3.4:65536",
            "1.2.3.4:-1",
            "[::1",
            "[::1]x",
            "[1.2.3.4]",
            "[::1]:",
            "::1:80x",
            "fe80::1%eth0",
            "_",
            "UNKNOWN",
            "1.2.3.4 5",
        ] {
            assert!(parse_node(bad).is_none(), "{bad}");
        }
    }
}
