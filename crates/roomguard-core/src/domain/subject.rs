//! Who is acting: a Matrix user id, parsed to the grammar of the Matrix specification, and what the homeserver says
//! about that user.

use std::fmt;

use crate::domain::limits::MAX_ID_BYTES;

/// A syntactically valid Matrix user id, `@localpart:server.name[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId {
    raw: String,
    /// Byte offset of the `:` that separates the localpart from the server name.
    colon: usize,
    /// The host, normalised (see [`UserId::host`]): where it lies in `raw` when `raw` already has it lowercase (the
    /// usual case, which then costs no allocation), or its lowercased copy.
    host: Host,
}

/// Where a [`UserId`]'s normalised host is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Host {
    /// `raw[start..end]`.
    Within(usize, usize),
    /// The host had capitals: lowercased.
    Lowered(Box<str>),
}

/// Why a string is not a Matrix user id. Messages are lowercase and name the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    /// The string is empty.
    #[error("must not be empty")]
    Empty,
    /// Over the Matrix limit.
    #[error("is {0} bytes long, the Matrix limit is {MAX_ID_BYTES}")]
    TooLong(usize),
    /// No leading `@`.
    #[error("must start with `@`")]
    MissingSigil,
    /// No `:` between localpart and server name.
    #[error("must have the form `@localpart:server.name`")]
    MissingServerName,
    /// Empty localpart or a character the (historical) grammar does not allow.
    #[error("has an invalid localpart: {0}")]
    Localpart(&'static str),
    /// Server name not `hostname[:port]`.
    #[error("has an invalid server name: {0}")]
    ServerName(&'static str),
}

impl UserId {
    /// Parses a user id, accepting the historical localpart grammar (printable ASCII but `:`) that servers must still
    /// accept, and the server-name grammar (DNS name, IPv4 or `[IPv6]`, optional port).
    pub fn parse(s: &str) -> Result<Self, UserIdError> {
        let (colon, host) = Self::check(s)?;
        Ok(UserId {
            raw: s.to_owned(),
            colon,
            host,
        })
    }

    /// [`UserId::parse`], keeping `s` as the id's text rather than copying it; on error `s` comes back with the
    /// error, so that the caller can quote it.
    pub fn parse_owned(s: String) -> Result<Self, (UserIdError, String)> {
        match Self::check(&s) {
            Ok((colon, host)) => Ok(UserId {
                raw: s,
                colon,
                host,
            }),
            Err(err) => Err((err, s)),
        }
    }

    /// The grammar check of [`UserId::parse`]: the colon's offset and the host.
    fn check(s: &str) -> Result<(usize, Host), UserIdError> {
        if s.is_empty() {
            return Err(UserIdError::Empty);
        }
        if s.len() > MAX_ID_BYTES {
            return Err(UserIdError::TooLong(s.len()));
        }
        let rest = s.strip_prefix('@').ok_or(UserIdError::MissingSigil)?;
        let (localpart, server) = rest.split_once(':').ok_or(UserIdError::MissingServerName)?;
        if localpart.is_empty() {
            return Err(UserIdError::Localpart("it is empty"));
        }
        if !localpart.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(UserIdError::Localpart(
                "only printable ASCII characters other than `:` are allowed",
            ));
        }
        let colon = 1 + localpart.len();
        let host = check_server_name(server).map_err(UserIdError::ServerName)?;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Host::Lowered(host.to_ascii_lowercase().into())
        } else {
            // The host is a prefix of the server name, which starts after the colon.
            Host::Within(colon + 1, colon + 1 + host.len())
        };
        Ok((colon, host))
    }

    /// The whole id, as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The server name as given, port included.
    pub fn server_name(&self) -> &str {
        &self.raw[self.colon + 1..]
    }

    /// The host part of the server name, lowercased, port and any trailing dot removed: the form domain patterns
    /// are matched against, so `Agent.Tchap.Gouv.Fr.:8448` and `agent.tchap.gouv.fr` are the same server.
    pub fn host(&self) -> &str {
        match &self.host {
            Host::Within(start, end) => &self.raw[*start..*end],
            Host::Lowered(host) => host,
        }
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Checks `hostname[:port]` (the server-name grammar of user and room ids) and returns the host: a prefix of
/// `server`, without the port and a trailing dot, not lowercased (the caller that needs it lowercase makes it so;
/// the others need no copy).
pub(crate) fn check_server_name(server: &str) -> Result<&str, &'static str> {
    if server.is_empty() {
        return Err("it is empty");
    }
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let end = rest.find(']').ok_or("an IPv6 literal must end with `]`")?;
        let (addr, after) = (&rest[..end], &rest[end + 1..]);
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("an IPv6 literal may only hold hex digits, `:` and `.`");
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("only `:port` may follow an IPv6 literal")?,
            ),
        };
        (&server[..end + 2], port)
    } else {
        match server.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (server, None),
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !valid || port.parse::<u32>().map_or(true, |p| p > 65_535) {
            return Err("the port must be a number from 0 to 65535");
        }
    }
    if !host.starts_with('[') {
        if host.is_empty() {
            return Err("the host is empty");
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err("a host name may only hold letters, digits, `-` and `.`");
        }
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.as_bytes().windows(2).any(|w| w == b"..") || host.starts_with('.') {
        return Err("the host has an empty label");
    }
    Ok(host)
}

/// The user asking to act, as the homeserver describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user's Matrix id.
    pub user_id: UserId,
    /// The homeserver says this user is a server administrator.
    pub server_admin: bool,
    /// The user's power level in the room.
    pub power_level: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid ids of every server-name form parse, and the host is normalised for domain matching.
    #[test]
    fn parses_valid_ids_and_normalises_the_host() {
        let cases = [
            ("@alice:agent.tchap.gouv.fr", "agent.tchap.gouv.fr"),
            ("@alice:Agent.Tchap.Gouv.FR:8448", "agent.tchap.gouv.fr"),
            ("@alice:agent.tchap.gouv.fr.", "agent.tchap.gouv.fr"),
            ("@Old_Style=User/x:example.org", "example.org"),
            ("@a:127.0.0.1:8008", "127.0.0.1"),
            ("@a:[::1]:8448", "[::1]"),
            ("@a:[2001:db8::1]", "[2001:db8::1]"),
        ];
        for (id, host) in cases {
            let user = UserId::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(user.host(), host, "{id}");
            assert_eq!(user.as_str(), id);
            assert_eq!(UserId::parse_owned(id.to_owned()), Ok(user));
        }
    }

    /// Everything the grammar forbids is refused with a message saying what is wrong.
    #[test]
    fn refuses_invalid_ids() {
        let long = format!("@{}:example.org", "a".repeat(250));
        let cases = [
            ("", UserIdError::Empty),
            ("alice:example.org", UserIdError::MissingSigil),
            ("@alice", UserIdError::MissingServerName),
            (long.as_str(), UserIdError::TooLong(long.len())),
        ];
        for (id, err) in cases {
            assert_eq!(UserId::parse(id), Err(err), "{id}");
        }
        for id in [
            "@:example.org",
            "@al ice:example.org",
            "@alicé:example.org",
            "@alice:",
            "@alice:exa mple.org",
            "@alice:example.org:",
            "@alice:example.org:99999",
            "@alice:example.org:80a",
            "@alice:[::1",
            "@alice:[zz]",
            "@alice:example..org",
            "@alice:.example.org",
            "@alice:exam_ple.org",
        ] {
            assert!(UserId::parse(id).is_err(), "{id} should be refused");
            let (err, back) = UserId::parse_owned(id.to_owned()).unwrap_err();
            assert_eq!((Err(err), back.as_str()), (UserId::parse(id), id));
        }
    }
}
