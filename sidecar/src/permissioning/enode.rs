//! Enode URLs, parsed strictly: `enode://<128 hex>@<host>:<port>[?discport=<port>]`.
//!
//! The node id is the 64-byte uncompressed secp256k1 public key without its `04` prefix, in
//! exactly 128 hex digits (either case; shown in lower case). The host is an IPv4 address, an
//! IPv6 address in brackets, or an RFC 1123 host name (shown in lower case, since DNS names
//! compare without case). The port is the devp2p TCP port, 1 to 65535. The only query parameter
//! is `discport`, the UDP discovery port, 0 to 65535 (Besu writes `discport=0` for a node with
//! discovery disabled). Userinfo beyond the id, paths and fragments are refused. Every rule has
//! its own error naming the offending part, so an operator sees at once what to fix.
//!
//! Parsing is pure and bounded ([`MAX_ENODE_LEN`]); nothing is logged here.

use std::{
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use alloy::primitives::B256;

/// Longest enode URL accepted: `enode://` (8) + id (128) + `@` + a 253-byte host name + `:65535`
/// + `?discport=65535` comes to 411 bytes; 512 leaves room for brackets and still bounds input.
pub const MAX_ENODE_LEN: usize = 512;

/// Length of the node id in hex digits (64 bytes).
pub const NODE_ID_HEX_LEN: usize = 128;

/// Longest DNS host name (RFC 1123 section 2.1, without the trailing dot).
pub const MAX_HOSTNAME_LEN: usize = 253;

/// Longest label of a DNS host name (RFC 1123 / RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

const SCHEME: &str = "enode://";

/// Why an enode URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnodeError {
    /// Longer than [`MAX_ENODE_LEN`].
    #[error("enode url is too long ({len} bytes, at most {max})")]
    TooLong {
        /// Length given.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// A character outside ASCII.
    #[error("enode url contains a non-ascii character ({ch:?} at byte {position})")]
    NonAscii {
        /// The character.
        ch: char,
        /// Byte offset in the input.
        position: usize,
    },
    /// Does not start with `enode://`.
    #[error("enode url must start with enode:// ({start})")]
    Scheme {
        /// The beginning of the input.
        start: String,
    },
    /// No `@` between the id and the host.
    #[error("enode url lacks the @ between node id and host ({url})")]
    MissingAt {
        /// The input.
        url: String,
    },
    /// More than one `@`: userinfo beyond the node id.
    #[error("enode url has more than one @; only the node id may precede the host ({rest})")]
    ExtraAt {
        /// The part after the first `@`.
        rest: String,
    },
    /// The id is not 128 characters long.
    #[error("node id must be 128 hex characters (got {len})")]
    IdLength {
        /// Characters given.
        len: usize,
    },
    /// The id has a character that is not a hex digit.
    #[error("node id has a non-hex character ({ch:?} at position {position})")]
    IdNotHex {
        /// The character.
        ch: char,
        /// Position in the id, from 0.
        position: usize,
    },
    /// A path after the port.
    #[error("enode url must not have a path ({path})")]
    Path {
        /// The path given.
        path: String,
    },
    /// A fragment.
    #[error("enode url must not have a fragment ({fragment})")]
    Fragment {
        /// The fragment given.
        fragment: String,
    },
    /// Nothing between `@` and `:`.
    #[error("enode url has no host")]
    HostMissing,
    /// An IPv6 address without brackets.
    #[error("ipv6 address must be in brackets, e.g. [::1] ({host})")]
    Ipv6Brackets {
        /// The host given.
        host: String,
    },
    /// Text in brackets that is not an IPv6 address, or an unclosed bracket.
    #[error("invalid ipv6 address ({host})")]
    InvalidIpv6 {
        /// The host given.
        host: String,
    },
    /// Digits and dots that do not form an IPv4 address.
    #[error("invalid ipv4 address ({host})")]
    InvalidIpv4 {
        /// The host given.
        host: String,
    },
    /// Not a valid RFC 1123 host name.
    #[error("invalid host name ({host}): {reason}")]
    InvalidHostname {
        /// The host given.
        host: String,
        /// The rule broken.
        reason: &'static str,
    },
    /// Characters between the closing bracket and the port separator.
    #[error("unexpected characters after the ipv6 address ({rest})")]
    AfterIpv6 {
        /// What followed `]`.
        rest: String,
    },
    /// No `:port`.
    #[error("enode url lacks the port ({authority})")]
    PortMissing {
        /// Host and whatever followed it.
        authority: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("port must be a number from 1 to 65535 ({port})")]
    InvalidPort {
        /// The port as given.
        port: String,
    },
    /// The discovery port is not a number from 0 to 65535.
    #[error("discport must be a number from 0 to 65535 ({discport})")]
    InvalidDiscport {
        /// The value as given.
        discport: String,
    },
    /// A query parameter other than `discport`, or an empty query.
    #[error("only the discport query parameter is allowed ({param})")]
    UnknownQuery {
        /// The parameter given.
        param: String,
    },
    /// `discport` given twice.
    #[error("discport given more than once")]
    DuplicateDiscport,
}

/// Where a node listens: an IPv4 address, an IPv6 address or a DNS host name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// IPv4 address.
    Ipv4(Ipv4Addr),
    /// IPv6 address (shown in brackets inside an enode URL).
    Ipv6(Ipv6Addr),
    /// RFC 1123 host name, in lower case.
    Hostname(String),
}

impl Host {
    /// Parses a host as the node registry stores it: IPv4, IPv6 without brackets, or a host name.
    pub fn parse_bare(text: &str) -> Result<Self, EnodeError> {
        if text.is_empty() {
            return Err(EnodeError::HostMissing);
        }
        if text.contains(':') {
            return text
                .parse::<Ipv6Addr>()
                .map(Host::Ipv6)
                .map_err(|_| EnodeError::InvalidIpv6 { host: text.to_owned() });
        }
        parse_ipv4_or_name(text)
    }
}

/// The host as the node registry stores it (IPv6 without brackets).
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(ip) => write!(f, "{ip}"),
            Host::Ipv6(ip) => write!(f, "{ip}"),
            Host::Hostname(name) => f.write_str(name),
        }
    }
}

/// A parsed enode URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Enode {
    /// Node id: the uncompressed secp256k1 public key without the `04` prefix.
    pub id: [u8; 64],
    /// Host the node listens on.
    pub host: Host,
    /// devp2p TCP port, 1 to 65535.
    pub port: u16,
    /// UDP discovery port when given (`0`: discovery disabled).
    pub discport: Option<u16>,
}

impl Enode {
    /// First 32 bytes of the id (`idHigh` of the registry's `NodeSpec`).
    pub fn id_high(&self) -> B256 {
        B256::from_slice(&self.id[..32])
    }

    /// Last 32 bytes of the id (`idLow` of the registry's `NodeSpec`).
    pub fn id_low(&self) -> B256 {
        B256::from_slice(&self.id[32..])
    }

    /// The discovery port: `discport` when given, the TCP port otherwise (the registry's
    /// `discPort` field).
    pub fn discovery_port(&self) -> u16 {
        self.discport.unwrap_or(self.port)
    }

    /// The same node with a `discport` equal to the TCP port dropped, which is how Besu writes
    /// enode URLs; two URLs naming the same endpoints have the same canonical form.
    pub fn canonical(&self) -> Self {
        let mut out = self.clone();
        if out.discport == Some(out.port) {
            out.discport = None;
        }
        out
    }

    /// Builds an enode from the registry's record: id halves, bare host, ports (`discport`
    /// equal to `port` means "none given").
    pub fn from_parts(
        id_high: B256,
        id_low: B256,
        host: &str,
        port: u16,
        discport: u16,
    ) -> Result<Self, EnodeError> {
        if port == 0 {
            return Err(EnodeError::InvalidPort { port: "0".into() });
        }
        let mut id = [0u8; 64];
        id[..32].copy_from_slice(id_high.as_slice());
        id[32..].copy_from_slice(id_low.as_slice());
        let host = Host::parse_bare(host)?;
        let discport = (discport != port).then_some(discport);
        Ok(Self { id, host, port, discport })
    }
}

impl fmt::Display for Enode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        f.write_str(&hex::encode(self.id))?;
        match &self.host {
            Host::Ipv6(ip) => write!(f, "@[{ip}]:{}", self.port)?,
            other => write!(f, "@{other}:{}", self.port)?,
        }
        if let Some(discport) = self.discport {
            write!(f, "?discport={discport}")?;
        }
        Ok(())
    }
}

impl FromStr for Enode {
    type Err = EnodeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > MAX_ENODE_LEN {
            return Err(EnodeError::TooLong { len: text.len(), max: MAX_ENODE_LEN });
        }
        if let Some((position, ch)) = text.char_indices().find(|(_, c)| !c.is_ascii()) {
            return Err(EnodeError::NonAscii { ch, position });
        }
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(EnodeError::Scheme { start: text.chars().take(16).collect() });
        };

        // Node id, then exactly one '@'.
        let Some((id_text, after_at)) = rest.split_once('@') else {
            return Err(EnodeError::MissingAt { url: text.to_owned() });
        };
        if after_at.contains('@') {
            return Err(EnodeError::ExtraAt { rest: after_at.to_owned() });
        }
        let id = parse_id(id_text)?;

        // Fragment, path and query, each refused or checked on its own.
        let (before_fragment, fragment) = match after_at.split_once('#') {
            Some((head, fragment)) => (head, Some(fragment)),
            None => (after_at, None),
        };
        if let Some(fragment) = fragment {
            return Err(EnodeError::Fragment { fragment: format!("#{fragment}") });
        }
        let (before_query, query) = match before_fragment.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None => (before_fragment, None),
        };
        if let Some(slash) = before_query.find('/') {
            return Err(EnodeError::Path { path: before_query[slash..].to_owned() });
        }

        let (host, port_text) = split_authority(before_query)?;
        let port = parse_port(port_text)
            .filter(|p| *p != 0)
            .ok_or_else(|| EnodeError::InvalidPort { port: port_text.to_owned() })?;
        let discport = query.map(parse_query).transpose()?;
        Ok(Self { id, host, port, discport })
    }
}

fn parse_id(text: &str) -> Result<[u8; 64], EnodeError> {
    // Non-hex characters first: "user:pass" should say ':' is wrong, not the length.
    if let Some((position, ch)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(EnodeError::IdNotHex { ch, position });
    }
    if text.len() != NODE_ID_HEX_LEN {
        return Err(EnodeError::IdLength { len: text.len() });
    }
    let mut id = [0u8; 64];
    hex::decode_to_slice(text, &mut id).map_err(|_| EnodeError::IdLength { len: text.len() })?;
    Ok(id)
}

/// Splits `host:port` (host possibly `[ipv6]`) and parses the host.
fn split_authority(authority: &str) -> Result<(Host, &str), EnodeError> {
    if let Some(inner_and_rest) = authority.strip_prefix('[') {
        let Some((inner, after)) = inner_and_rest.split_once(']') else {
            return Err(EnodeError::InvalidIpv6 { host: authority.to_owned() });
        };
        let ip = inner
            .parse::<Ipv6Addr>()
            .map_err(|_| EnodeError::InvalidIpv6 { host: format!("[{inner}]") })?;
        if after.is_empty() {
            return Err(EnodeError::PortMissing { authority: authority.to_owned() });
        }
        let Some(port) = after.strip_prefix(':') else {
            return Err(EnodeError::AfterIpv6 { rest: after.to_owned() });
        };
        return Ok((Host::Ipv6(ip), port));
    }
    if authority.matches(':').count() > 1 {
        // Either a bare IPv6 address or an IPv6 address with a port glued on.
        let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
        let shown = if host.parse::<Ipv6Addr>().is_ok() { host } else { authority };
        return Err(EnodeError::Ipv6Brackets { host: shown.to_owned() });
    }
    let Some((host, port)) = authority.split_once(':') else {
        if authority.is_empty() {
            return Err(EnodeError::HostMissing);
        }
        return Err(EnodeError::PortMissing { authority: authority.to_owned() });
    };
    if host.is_empty() {
        return Err(EnodeError::HostMissing);
    }
    Ok((parse_ipv4_or_name(host)?, port))
}

/// An IPv4 address when the host is only digits and dots, a host name otherwise.
fn parse_ipv4_or_name(host: &str) -> Result<Host, EnodeError> {
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        // All-numeric hosts are addresses (RFC 1123 section 2.1): "1.2.3" or "256.0.0.1" is a
        // mistyped address, never a name.
        return host
            .parse::<Ipv4Addr>()
            .map(Host::Ipv4)
            .map_err(|_| EnodeError::InvalidIpv4 { host: host.to_owned() });
    }
    check_hostname(host)?;
    Ok(Host::Hostname(host.to_ascii_lowercase()))
}

fn check_hostname(host: &str) -> Result<(), EnodeError> {
    let bad = |reason| Err(EnodeError::InvalidHostname { host: host.to_owned(), reason });
    if host.len() > MAX_HOSTNAME_LEN {
        return bad("longer than 253 characters");
    }
    if host.ends_with('.') {
        return bad("trailing dot");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return bad("empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return bad("label longer than 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return bad("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("label starts or ends with a hyphen");
        }
    }
    Ok(())
}

/// A decimal port without sign or leading zeros; `None` when not a number in 0..=65535.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse::<u16>().ok()
}

fn parse_query(query: &str) -> Result<u16, EnodeError> {
    let mut discport = None;
    for param in query.split('&') {
        let Some(value) = param.strip_prefix("discport=") else {
            return Err(EnodeError::UnknownQuery { param: param.to_owned() });
        };
        if discport.is_some() {
            return Err(EnodeError::DuplicateDiscport);
        }
        discport = Some(
            parse_port(value)
                .ok_or_else(|| EnodeError::InvalidDiscport { discport: value.to_owned() })?,
        );
    }
    discport.ok_or_else(|| EnodeError::UnknownQuery { param: query.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f8a80d14311c39f35f516fa664deaaaa13e85b2f7493f37f6144d86991ec012937307647bd3b9a82abe2974e1407241d54947bbb39763a4cac9f77166ad92a0";

    fn parse(s: &str) -> Result<Enode, EnodeError> {
        s.parse()
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(e) => panic!("{s} parsed as {e:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_ipv4_with_and_without_discport() {
        let plain = parse(&format!("enode://{ID}@192.168.0.9:4567")).unwrap();
        assert_eq!(plain.host, Host::Ipv4(Ipv4Addr::new(192, 168, 0, 9)));
        assert_eq!(plain.port, 4567);
        assert_eq!(plain.discport, None);
        assert_eq!(plain.discovery_port(), 4567);
        assert_eq!(hex::encode(plain.id), ID);

        let with = parse(&format!("enode://{ID}@10.3.58.6:30303?discport=30301")).unwrap();
        assert_eq!(with.discport, Some(30301));
        let disabled = parse(&format!("enode://{ID}@10.3.58.6:30303?discport=0")).unwrap();
        assert_eq!(disabled.discport, Some(0));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            format!("enode://{ID}@127.0.0.1:30303"),
            format!("enode://{ID}@[::1]:30303"),
            format!("enode://{ID}@[2001:db8::7]:1?discport=65535"),
            format!("enode://{ID}@node-1.bank.example:30303?discport=0"),
        ] {
            let enode = parse(&text).unwrap();
            assert_eq!(enode.to_string(), text);
            assert_eq!(parse(&enode.to_string()).unwrap(), enode);
        }
    }

    #[test]
    fn uppercase_hex_and_host_are_accepted_and_shown_in_lower_case() {
        let upper = parse(&format!("enode://{}@Node.EXAMPLE:1", ID.to_uppercase())).unwrap();
        assert_eq!(upper.to_string(), format!("enode://{ID}@node.example:1"));
    }

    #[test]
    fn id_halves_match_the_registry_layout() {
        let enode = parse(&format!("enode://{ID}@127.0.0.1:30303")).unwrap();
        assert_eq!(hex::encode(enode.id_high()), &ID[..64]);
        assert_eq!(hex::encode(enode.id_low()), &ID[64..]);
        let back =
            Enode::from_parts(enode.id_high(), enode.id_low(), "127.0.0.1", 30303, 30303).unwrap();
        assert_eq!(back, enode);
        let v6 = Enode::from_parts(enode.id_high(), enode.id_low(), "::1", 1, 0).unwrap();
        assert_eq!(v6.to_string(), format!("enode://{ID}@[::1]:1?discport=0"));
    }

    #[test]
    fn canonical_form_drops_a_discport_equal_to_the_port() {
        let a = parse(&format!("enode://{ID}@127.0.0.1:30303?discport=30303")).unwrap();
        let b = parse(&format!("enode://{ID}@127.0.0.1:30303")).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b);
    }

    #[test]
    fn refuses_ids_of_the_wrong_length_or_alphabet() {
        assert_eq!(
            err(&format!("enode://{}@127.0.0.1:1", &ID[..127])),
            "node id must be 128 hex characters (got 127)"
        );
        assert_eq!(
            err(&format!("enode://{ID}a@127.0.0.1:1")),
            "node id must be 128 hex characters (got 129)"
        );
        assert_eq!(err("enode://@127.0.0.1:1"), "node id must be 128 hex characters (got 0)");
        let mut bad = ID.to_owned();
        bad.replace_range(5..6, "g");
        assert_eq!(
            err(&format!("enode://{bad}@127.0.0.1:1")),
            "node id has a non-hex character ('g' at position 5)"
        );
        assert_eq!(
            err(&format!("enode://0x{}@127.0.0.1:1", &ID[2..])),
            "node id has a non-hex character ('x' at position 1)"
        );
    }

    #[test]
    fn refuses_missing_scheme_and_at() {
        assert_eq!(
            err(&format!("{ID}@127.0.0.1:1")),
            format!("enode url must start with enode:// ({})", &ID[..16])
        );
        assert_eq!(
            err(&format!("ENODE://{ID}@127.0.0.1:1")),
            "enode url must start with enode:// (ENODE://6f8a80d1)"
        );
        assert!(err(&format!("enode://{ID}")).starts_with("enode url lacks the @"));
    }

    #[test]
    fn refuses_userinfo_path_fragment_and_other_queries() {
        assert_eq!(
            err(&format!("enode://user:pass@{ID}@127.0.0.1:1")),
            format!(
                "enode url has more than one @; only the node id may precede the host ({ID}@127.0.0.1:1)"
            )
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303/")),
            "enode url must not have a path (/)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303/x?discport=1")),
            "enode url must not have a path (/x)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303#top")),
            "enode url must not have a fragment (#top)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303?raftport=5")),
            "only the discport query parameter is allowed (raftport=5)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303?")),
            "only the discport query parameter is allowed ()"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303?discport=1&discport=2")),
            "discport given more than once"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303?discport=1&x=2")),
            "only the discport query parameter is allowed (x=2)"
        );
    }

    #[test]
    fn refuses_bad_ports() {
        for port in ["0", "65536", "-1", "+1", "030303", "3o303", "", "99999999999999999999"] {
            assert_eq!(
                err(&format!("enode://{ID}@127.0.0.1:{port}")),
                format!("port must be a number from 1 to 65535 ({port})"),
                "port {port:?}"
            );
        }
        assert_eq!(err(&format!("enode://{ID}@127.0.0.1")), "enode url lacks the port (127.0.0.1)");
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:1?discport=65536")),
            "discport must be a number from 0 to 65535 (65536)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:1?discport=")),
            "discport must be a number from 0 to 65535 ()"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:30303 ")),
            "port must be a number from 1 to 65535 (30303 )"
        );
        assert!(parse(&format!("enode://{ID}@127.0.0.1:65535")).is_ok());
        assert!(parse(&format!("enode://{ID}@127.0.0.1:1")).is_ok());
    }

    #[test]
    fn refuses_ipv6_without_brackets_and_bad_addresses() {
        assert_eq!(
            err(&format!("enode://{ID}@::1:30303")),
            "ipv6 address must be in brackets, e.g. [::1] (::1)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@2001:db8::1")),
            "ipv6 address must be in brackets, e.g. [::1] (2001:db8::1)"
        );
        assert_eq!(err(&format!("enode://{ID}@[::g]:1")), "invalid ipv6 address ([::g])");
        assert_eq!(err(&format!("enode://{ID}@[::1:1")), "invalid ipv6 address ([::1:1)");
        assert_eq!(
            err(&format!("enode://{ID}@[fe80::1%eth0]:1")),
            "invalid ipv6 address ([fe80::1%eth0])"
        );
        assert_eq!(err(&format!("enode://{ID}@[::1]")), "enode url lacks the port ([::1])");
        assert_eq!(
            err(&format!("enode://{ID}@[::1]x:1")),
            "unexpected characters after the ipv6 address (x:1)"
        );
        assert_eq!(err(&format!("enode://{ID}@256.0.0.1:1")), "invalid ipv4 address (256.0.0.1)");
        assert_eq!(err(&format!("enode://{ID}@1.2.3:1")), "invalid ipv4 address (1.2.3)");
        assert_eq!(err(&format!("enode://{ID}@01.2.3.4:1")), "invalid ipv4 address (01.2.3.4)");
        assert_eq!(err(&format!("enode://{ID}@:1")), "enode url has no host");
    }

    #[test]
    fn refuses_hostnames_that_break_rfc_1123() {
        let cases = [
            ("-node.example", "label starts or ends with a hyphen"),
            ("node-.example", "label starts or ends with a hyphen"),
            ("node..example", "empty label"),
            ("node.example.", "trailing dot"),
            ("node_1.example", "only letters, digits, hyphens and dots are allowed"),
        ];
        for (host, reason) in cases {
            assert_eq!(
                err(&format!("enode://{ID}@{host}:1")),
                format!("invalid host name ({host}): {reason}")
            );
        }
        let long_label = "a".repeat(64);
        assert_eq!(
            err(&format!("enode://{ID}@{long_label}.example:1")),
            format!("invalid host name ({long_label}.example): label longer than 63 characters")
        );
        let long_host = vec!["a".repeat(63); 4].join(".");
        assert!(
            err(&format!("enode://{ID}@{long_host}:1")).ends_with("longer than 253 characters")
        );
        assert!(parse(&format!("enode://{ID}@{}.b:1", "a".repeat(63))).is_ok());
        assert!(parse(&format!("enode://{ID}@localhost:1")).is_ok());
        assert!(parse(&format!("enode://{ID}@3com.example:1")).is_ok());
    }

    #[test]
    fn refuses_unicode_and_overlong_input() {
        assert_eq!(
            err(&format!("enode://{ID}@knoten-münchen.example:1")),
            "enode url contains a non-ascii character ('ü' at byte 145)"
        );
        assert_eq!(
            err(&format!("enode://{ID}@127.0.0.1:３")),
            "enode url contains a non-ascii character ('３' at byte 147)"
        );
        let long = format!("enode://{ID}@{}:1", "a".repeat(600));
        assert_eq!(
            err(&long),
            format!("enode url is too long ({} bytes, at most 512)", long.len())
        );
    }

    #[test]
    fn bare_hosts_parse_like_the_registry_stores_them() {
        assert_eq!(Host::parse_bare("::1").unwrap(), Host::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            Host::parse_bare("[::1]").unwrap_err().to_string(),
            "invalid ipv6 address ([::1])"
        );
        assert_eq!(Host::parse_bare("").unwrap_err(), EnodeError::HostMissing);
        assert_eq!(Host::parse_bare("Node.Example").unwrap().to_string(), "node.example");
        assert!(Enode::from_parts(B256::ZERO, B256::ZERO, "h", 0, 0).is_err());
    }
}
