//! Which read a proxied request is, from its method and URI: the Matrix client-server API's read paths, under every
//! prefix the homeserver serves them (`/_matrix/client/{r0,v3,v1,api/v1,unstable}`, the legacy
//! `/_matrix/media/{v3,r0,v1}`).
//!
//! The proxy and the homeserver must never disagree about what a request reads: an intruder uses whichever spelling
//! one of them reads as a read and the other does not. Synapse matches its path regexes against the raw path and
//! percent-decodes the captured ids; nginx picks locations on a normalised path (percent-decoded, `//` merged, dot
//! segments removed). So the parser is a superset of both:
//!
//! - segments are split on the raw `/` and each is percent-decoded once (as Synapse decodes a room id: `%21r%3As`
//!   is `!r:s`, `%2F` stays inside its segment); the fixed words (`_matrix`, `rooms`, `messages`...) are matched
//!   after decoding and without regard to case, so `m%65ssages` and `/MESSAGES` are history too;
//! - empty segments (`//`, a trailing slash) are skipped, as nginx merges them;
//! - a `.` or `..` segment (raw or encoded) is refused: no Matrix id is one, no client sends one, and a proxy that
//!   resolves them would see another path than the homeserver;
//! - the query is read as Twisted reads it (items separated by `&` or `;`, an item without `=` ignored, `+` is a
//!   space, keys percent-decoded: `%73ince` is `since`), first value wins, as Synapse's `parse_string` takes it;
//! - anything malformed (control characters, bytes outside ASCII, a bad `%` escape, an over-long URI or id) is an
//!   error naming what is wrong, never silently `other`.
//!
//! `OPTIONS` (a browser's CORS preflight, answered by the homeserver without an account) is never a read.

use crate::domain::{
    limits::MAX_ID_BYTES,
    read::{ReadKind, ReadTarget},
};

/// The longest URI accepted, in bytes (nginx's default `large_client_header_buffers` is 8 KiB).
pub const MAX_URI_BYTES: usize = 8192;

/// The longest method name accepted.
const MAX_METHOD_BYTES: usize = 32;

/// Why a request's method or URI cannot be classified. Messages are lowercase and never quote the URI (its query can
/// hold an access token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadUriError {
    /// No URI at all.
    #[error("the URI is empty")]
    Empty,
    /// Longer than [`MAX_URI_BYTES`].
    #[error("the URI is {0} bytes long, at most {MAX_URI_BYTES} are accepted")]
    TooLong(usize),
    /// Neither `/path` nor `http(s)://host/path`.
    #[error("the URI must be a path starting with `/`")]
    NotAPath,
    /// A byte that a URI may not hold raw: a control character, a space, a byte outside ASCII, `#`.
    #[error("the URI holds a byte that must be percent-encoded (0x{0:02x})")]
    RawByte(u8),
    /// `%` not followed by two hexadecimal digits, in the path.
    #[error("the path holds a malformed percent escape")]
    BadEscape,
    /// A path segment that decodes to a control character or to bytes that are not UTF-8.
    #[error("a path segment decodes to a control character or to bytes that are not UTF-8")]
    BadSegment,
    /// A `.` or `..` segment.
    #[error("the path holds a `.` or `..` segment")]
    DotSegment,
    /// A room id, server name or media id over the Matrix limit.
    #[error("an id in the path is {0} bytes long, the Matrix limit is {MAX_ID_BYTES}")]
    IdTooLong(usize),
    /// A method that is not an HTTP token.
    #[error("the method is not an HTTP method name")]
    BadMethod,
}

/// A request's read, and the credentials its query carries (its `Debug` leaves them out).
#[derive(Clone, PartialEq, Eq)]
pub struct ReadUri {
    /// What the request reads.
    pub target: ReadTarget,
    /// The `access_token` query parameter (clients may send the token there instead of the `Authorization` header).
    pub query_token: Option<String>,
    /// The `user_id` query parameter: an application service acts as this user.
    pub as_user: Option<String>,
}

impl std::fmt::Debug for ReadUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadUri")
            .field("target", &self.target)
            .field("query_token", &self.query_token.as_ref().map(|_| "<set>"))
            .field("as_user", &self.as_user)
            .finish()
    }
}

impl ReadUri {
    /// Classifies a request from its method (`GET`, `HEAD`, `POST`...) and its URI as sent (path and query,
    /// percent-encoded; an absolute `http(s)://host/path` is taken for its path).
    pub fn parse(method: &str, uri: &str) -> Result<ReadUri, ReadUriError> {
        check_method(method)?;
        if uri.is_empty() {
            return Err(ReadUriError::Empty);
        }
        if uri.len() > MAX_URI_BYTES {
            return Err(ReadUriError::TooLong(uri.len()));
        }
        if let Some(&byte) = uri
            .as_bytes()
            .iter()
            .find(|b| !(0x21..=0x7e).contains(*b) || **b == b'#')
        {
            return Err(ReadUriError::RawByte(byte));
        }
        let origin = strip_authority(uri).ok_or(ReadUriError::NotAPath)?;
        let (path, query) = origin.split_once('?').unwrap_or((origin, ""));
        let segments = segments(path)?;
        let query = Query::parse(query);
        let target = if method.eq_ignore_ascii_case("OPTIONS") {
            ReadTarget::other()
        } else {
            classify(&segments, &query)?
        };
        Ok(ReadUri {
            target,
            query_token: query.access_token,
            as_user: query.user_id,
        })
    }
}

fn check_method(method: &str) -> Result<(), ReadUriError> {
    // RFC 9110 `token`: the characters a method name may hold.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || method.len() > MAX_METHOD_BYTES || !method.bytes().all(token) {
        return Err(ReadUriError::BadMethod);
    }
    Ok(())
}

/// `/path?query` from an origin-form or absolute-form URI.
fn strip_authority(uri: &str) -> Option<&str> {
    if uri.starts_with('/') {
        return Some(uri);
    }
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &uri[8..]
    } else if lower.starts_with("http://") {
        &uri[7..]
    } else {
        return None;
    };
    rest.find('/').map(|at| &rest[at..])
}

/// The path's non-empty segments, each percent-decoded once.
fn segments(path: &str) -> Result<Vec<String>, ReadUriError> {
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let bytes = percent_decode(raw.as_bytes()).ok_or(ReadUriError::BadEscape)?;
        let segment = String::from_utf8(bytes).map_err(|_| ReadUriError::BadSegment)?;
        if segment.chars().any(char::is_control) {
            return Err(ReadUriError::BadSegment);
        }
        if segment == "." || segment == ".." {
            return Err(ReadUriError::DotSegment);
        }
        out.push(segment);
    }
    Ok(out)
}

/// Decodes a path segment's `%XX` escapes (`+` is a plus sign in a path); `None` on a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let high = input.get(i + 1).and_then(|b| hex(*b))?;
                let low = input.get(i + 2).and_then(|b| hex(*b))?;
                out.push(high << 4 | low);
                i += 3;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(out)
}

/// A query key or value, decoded as Python's `unquote_plus` decodes it: `+` is a space, a malformed escape stays as
/// written, bytes that are not UTF-8 become U+FFFD.
fn decode_query_part(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The query parameters a read's kind and account depend on.
#[derive(Debug, Default)]
struct Query {
    since: Option<String>,
    full_state: Option<String>,
    pos: Option<String>,
    access_token: Option<String>,
    user_id: Option<String>,
}

impl Query {
    /// As Twisted's `parse_qs(query, keep_blank_values=1)` reads it: items separated by `&` **or `;`**, an item
    /// without `=` skipped, `+` a space, keys and values percent-decoded.
    fn parse(query: &str) -> Query {
        let mut parsed = Query::default();
        for pair in query.split(['&', ';']) {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let slot = match decode_query_part(key).as_str() {
                "since" => &mut parsed.since,
                "full_state" => &mut parsed.full_state,
                "pos" => &mut parsed.pos,
                "access_token" => &mut parsed.access_token,
                "user_id" => &mut parsed.user_id,
                _ => continue,
            };
            // The first value wins, as Synapse's parse_string reads `args[name][0]`.
            if slot.is_none() {
                *slot = Some(decode_query_part(value));
            }
        }
        parsed
    }

    /// A sync from scratch: no `since` (or an empty one, which no server accepts as a position), or
    /// `full_state=true`.
    fn is_initial_sync(&self) -> bool {
        self.since.as_deref().is_none_or(str::is_empty)
            || self.full_state.as_deref() == Some("true")
    }
}

/// The words after a room id that read its history.
const ROOM_HISTORY: [&str; 7] = [
    "messages",
    "initialsync",
    "context",
    "event",
    "relations",
    "threads",
    "timestamp_to_event",
];

fn classify(segments: &[String], query: &Query) -> Result<ReadTarget, ReadUriError> {
    let word = |i: usize| segments.get(i).map(|s| s.to_ascii_lowercase());
    if word(0).as_deref() != Some("_matrix") {
        return Ok(ReadTarget::other());
    }
    match word(1).as_deref() {
        Some("client") => {
            let Some(api) = after_version(segments, 2) else {
                return Ok(ReadTarget::other());
            };
            client_read(&segments[api.rest..], api.namespaced, query)
        }
        Some("media") => {
            let Some(api) = after_version(segments, 2) else {
                return Ok(ReadTarget::other());
            };
            media_read(&segments[api.rest..], true)
        }
        _ => Ok(ReadTarget::other()),
    }
}

/// Where the endpoint's own segments start after an API version, and whether namespaced unstable segments
/// (`org.matrix.msc3575`) were skipped on the way.
struct Api {
    rest: usize,
    namespaced: bool,
}

/// Skips a version (`r0`, `v1`, `v3`, any `vN`, `api/v1`, `unstable` and the namespaces after it).
fn after_version(segments: &[String], at: usize) -> Option<Api> {
    let version = segments.get(at)?.to_ascii_lowercase();
    let mut rest = at + 1;
    let mut namespaced = false;
    if version == "api" {
        segments
            .get(rest)?
            .eq_ignore_ascii_case("v1")
            .then_some(())?;
        rest += 1;
    } else if version == "unstable" {
        while segments.get(rest).is_some_and(|s| s.contains('.')) {
            rest += 1;
            namespaced = true;
        }
    } else if version == "r0"
        || (version.len() > 1
            && version.starts_with('v')
            && version[1..].bytes().all(|b| b.is_ascii_digit()))
    {
        // r0, v1, v3, and any later release.
    } else {
        return None;
    }
    Some(Api { rest, namespaced })
}

fn client_read(
    rest: &[String],
    namespaced: bool,
    query: &Query,
) -> Result<ReadTarget, ReadUriError> {
    let word = |i: usize| rest.get(i).map(|s| s.to_ascii_lowercase());
    let target = |kind| ReadTarget {
        kind,
        ..ReadTarget::other()
    };
    Ok(match word(0).as_deref() {
        Some("rooms") => match (rest.get(1), word(2)) {
            (Some(room), Some(what)) if ROOM_HISTORY.contains(&what.as_str()) => {
                check_id(room)?;
                ReadTarget {
                    room_id: Some(room.clone()),
                    ..target(ReadKind::History)
                }
            }
            _ => ReadTarget::other(),
        },
        Some("initialsync" | "events") => target(ReadKind::History),
        Some("search") => target(ReadKind::Search),
        // Sliding sync (`unstable/org.matrix.simplified_msc3575/sync`) starts over when it has no position.
        Some("sync") if namespaced => match query.pos.as_deref() {
            None | Some("") => target(ReadKind::SyncInitial),
            Some(_) => ReadTarget::other(),
        },
        Some("sync") if query.is_initial_sync() => target(ReadKind::SyncInitial),
        Some("media") => media_read(&rest[1..], false)?,
        _ => ReadTarget::other(),
    })
}

/// `download|thumbnail/{server}/{mediaId}[/{fileName}]`.
fn media_read(rest: &[String], legacy: bool) -> Result<ReadTarget, ReadUriError> {
    let kind = match rest.first().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("download") => ReadKind::Media,
        Some("thumbnail") => ReadKind::Thumbnail,
        _ => return Ok(ReadTarget::other()),
    };
    let media_id = match (rest.get(1), rest.get(2)) {
        (Some(server), Some(id)) => {
            check_id(server)?;
            check_id(id)?;
            Some(format!("mxc://{server}/{id}"))
        }
        _ => None,
    };
    Ok(ReadTarget {
        kind,
        room_id: None,
        media_id,
        legacy_media: legacy,
    })
}

fn check_id(id: &str) -> Result<(), ReadUriError> {
    if id.len() > MAX_ID_BYTES {
        return Err(ReadUriError::IdTooLong(id.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(method: &str, uri: &str) -> ReadKind {
        ReadUri::parse(method, uri)
            .unwrap_or_else(|e| panic!("{method} {uri}: {e}"))
            .target
            .kind
    }

    fn get(uri: &str) -> ReadTarget {
        ReadUri::parse("GET", uri)
            .unwrap_or_else(|e| panic!("{uri}: {e}"))
            .target
    }

    /// Every read path of the client-server API, under every prefix the homeserver serves it, is its kind.
    #[test]
    fn every_read_path_has_its_kind() {
        let room = "%21abc%3Aagent.tchap.gouv.fr";
        let cases = [
            (
                format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/r0/rooms/{room}/messages"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/api/v1/rooms/{room}/messages"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/unstable/rooms/{room}/messages"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/v3/rooms/{room}/context/%24ev"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/v3/rooms/{room}/event/%24ev"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/v3/rooms/{room}/initialSync"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/v1/rooms/{room}/threads"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/v1/rooms/{room}/relations/%24ev/m.thread"),
                ReadKind::History,
            ),
            (
                format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts=1&dir=b"),
                ReadKind::History,
            ),
            (
                format!(
                    "/_matrix/client/unstable/org.matrix.msc3030/rooms/{room}/timestamp_to_event"
                ),
                ReadKind::History,
            ),
            ("/_matrix/client/v3/initialSync".into(), ReadKind::History),
            (
                "/_matrix/client/v3/events?from=s1".into(),
                ReadKind::History,
            ),
            ("/_matrix/client/r0/events/%24ev".into(), ReadKind::History),
            ("/_matrix/client/v3/search".into(), ReadKind::Search),
            (
                "/_matrix/client/r0/search?next_batch=x".into(),
                ReadKind::Search,
            ),
            ("/_matrix/client/v3/sync".into(), ReadKind::SyncInitial),
            (
                "/_matrix/client/v3/sync?filter=0&timeout=0".into(),
                ReadKind::SyncInitial,
            ),
            (
                "/_matrix/client/v3/sync?since=s72_1&full_state=true".into(),
                ReadKind::SyncInitial,
            ),
            (
                "/_matrix/client/v3/sync?since=".into(),
                ReadKind::SyncInitial,
            ),
            (
                "/_matrix/client/v3/sync?since=s72_1".into(),
                ReadKind::Other,
            ),
            (
                "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync".into(),
                ReadKind::SyncInitial,
            ),
            (
                "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=12".into(),
                ReadKind::Other,
            ),
            (
                "/_matrix/client/v1/media/download/srv/abc".into(),
                ReadKind::Media,
            ),
            (
                "/_matrix/client/v1/media/download/srv/abc/report.pdf".into(),
                ReadKind::Media,
            ),
            (
                "/_matrix/client/v1/media/thumbnail/srv/abc?width=96&height=96".into(),
                ReadKind::Thumbnail,
            ),
            ("/_matrix/media/v3/download/srv/abc".into(), ReadKind::Media),
            (
                "/_matrix/media/r0/download/srv/abc/name.pdf".into(),
                ReadKind::Media,
            ),
            ("/_matrix/media/v1/download/srv/abc".into(), ReadKind::Media),
            (
                "/_matrix/media/v3/thumbnail/srv/abc?width=32".into(),
                ReadKind::Thumbnail,
            ),
            ("/_matrix/client/versions".into(), ReadKind::Other),
            (
                format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t1"),
                ReadKind::Other,
            ),
            (
                format!("/_matrix/client/v3/rooms/{room}/state"),
                ReadKind::Other,
            ),
            (
                format!("/_matrix/client/v3/rooms/{room}/members"),
                ReadKind::Other,
            ),
            ("/_matrix/media/v3/upload".into(), ReadKind::Other),
            ("/_matrix/media/v3/config".into(), ReadKind::Other),
            (
                "/_matrix/federation/v1/media/download/abc".into(),
                ReadKind::Other,
            ),
            ("/_synapse/admin/v1/rooms".into(), ReadKind::Other),
            ("/".into(), ReadKind::Other),
        ];
        for (uri, expected) in cases {
            assert_eq!(kind("GET", &uri), expected, "{uri}");
        }
        assert_eq!(kind("POST", "/_matrix/client/v3/search"), ReadKind::Search);
        assert_eq!(
            kind("HEAD", "/_matrix/client/v1/media/download/s/m"),
            ReadKind::Media
        );
        assert_eq!(
            kind(
                "POST",
                "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
            ),
            ReadKind::SyncInitial
        );
    }

    /// The room and file a path names are decoded as the homeserver decodes them.
    #[test]
    fn the_room_and_the_file_are_named() {
        let read = get("/_matrix/client/v3/rooms/%21abc%3Aagent.tchap.gouv.fr/messages");
        assert_eq!(read.room_id.as_deref(), Some("!abc:agent.tchap.gouv.fr"));
        assert_eq!(read.history_room(), Some("!abc:agent.tchap.gouv.fr"));
        assert_eq!(read.media_id, None);
        let v12 = get("/_matrix/client/v3/rooms/!OpaqueRoomV12/messages");
        assert_eq!(v12.room_id.as_deref(), Some("!OpaqueRoomV12"));
        let file = get("/_matrix/client/v1/media/download/agent.tchap.gouv.fr/AbCd/x.pdf");
        assert_eq!(
            file.media_id.as_deref(),
            Some("mxc://agent.tchap.gouv.fr/AbCd")
        );
        assert!(!file.legacy_media);
        assert!(get("/_matrix/media/v3/download/srv/id").legacy_media);
        assert_eq!(get("/_matrix/client/v3/search").room_id, None);
    }

    /// Each trick that could make a proxy and the homeserver disagree classifies to the read it is, or is refused
    /// naming what is wrong; none becomes `other`.
    #[test]
    fn tricks_classify_to_their_kind_or_are_refused() {
        let history = [
            // Percent-encoded sigils and separators in the room id.
            "/_matrix/client/v3/rooms/%21abc%3As/messages",
            "/_matrix/client/v3/rooms/!abc:s/messages",
            "/_matrix/client/v3/rooms/%21abc%3as/messages",
            // `%2F` stays inside its segment, as in Synapse.
            "/_matrix/client/v3/rooms/%21a%2Fb%3As/messages",
            // Double encoding is decoded once, as the homeserver does: still a history read.
            "/_matrix/client/v3/rooms/%2521abc%253As/messages",
            // Merged slashes, a trailing slash.
            "//_matrix//client/v3//rooms/!abc:s//messages",
            "/_matrix/client/v3/rooms/!abc:s/messages/",
            // The legacy prefixes.
            "/_matrix/client/r0/rooms/!abc:s/messages",
            "/_matrix/client/api/v1/rooms/!abc:s/messages",
            // Upper case, and encoded letters in the fixed words.
            "/_MATRIX/CLIENT/V3/ROOMS/!abc:s/MESSAGES",
            "/_matrix/client/v3/rooms/!abc:s/m%65ssages",
            "/%5Fmatrix/client/v3/rooms/!abc:s/messages",
            // An absolute URI.
            "https://matrix.agent.tchap.gouv.fr/_matrix/client/v3/rooms/!abc:s/messages",
        ];
        for uri in history {
            assert_eq!(kind("GET", uri), ReadKind::History, "{uri}");
        }
        assert_eq!(
            get("/_matrix/client/v3/rooms/%2521abc%253As/messages")
                .room_id
                .as_deref(),
            Some("%21abc%3As")
        );
        assert_eq!(
            get("/_matrix/client/v3/rooms/%21a%2Fb%3As/messages")
                .room_id
                .as_deref(),
            Some("!a/b:s")
        );
        assert_eq!(
            kind("GET", "/_MATRIX/MEDIA/V3/DOWNLOAD/s/m"),
            ReadKind::Media
        );
        assert_eq!(
            kind("GET", "/_matrix/client/v3/SYNC"),
            ReadKind::SyncInitial
        );
        // `%73ince` is `since` to Twisted: an incremental sync; `SINCE` is not `since`: an initial one.
        assert_eq!(
            kind("GET", "/_matrix/client/v3/sync?%73ince=s1"),
            ReadKind::Other
        );
        assert_eq!(
            kind("GET", "/_matrix/client/v3/sync?SINCE=s1"),
            ReadKind::SyncInitial
        );
        // The first `since` is the one Synapse reads.
        assert_eq!(
            kind("GET", "/_matrix/client/v3/sync?since=&since=s1"),
            ReadKind::SyncInitial
        );
        assert_eq!(
            kind("GET", "/_matrix/client/v3/sync?since=s1&full_state=false"),
            ReadKind::Other
        );

        let refused = [
            (
                "/_matrix/client/v3/rooms/!abc:s/../!other:s/messages",
                ReadUriError::DotSegment,
            ),
            (
                "/_matrix/client/v3/rooms/!abc:s/./messages",
                ReadUriError::DotSegment,
            ),
            (
                "/_matrix/client/v3/rooms/%2e%2e/messages",
                ReadUriError::DotSegment,
            ),
            (
                "/_matrix/client/v3/rooms/%zz/messages",
                ReadUriError::BadEscape,
            ),
            (
                "/_matrix/client/v3/rooms/%2/messages",
                ReadUriError::BadEscape,
            ),
            (
                "/_matrix/client/v3/rooms/%00x/messages",
                ReadUriError::BadSegment,
            ),
            (
                "/_matrix/client/v3/rooms/%ff/messages",
                ReadUriError::BadSegment,
            ),
            (
                "/_matrix/client/v3/rooms/a b/messages",
                ReadUriError::RawByte(b' '),
            ),
            (
                "/_matrix/client/v3/rooms/a\nb/messages",
                ReadUriError::RawByte(b'\n'),
            ),
            (
                "/_matrix/client/v3/rooms/é/messages",
                ReadUriError::RawByte(0xc3),
            ),
            ("/_matrix/client/v3/sync#x", ReadUriError::RawByte(b'#')),
            ("_matrix/client/v3/sync", ReadUriError::NotAPath),
            ("", ReadUriError::Empty),
        ];
        for (uri, error) in refused {
            assert_eq!(ReadUri::parse("GET", uri), Err(error), "{uri:?}");
        }
        let long_room = format!("/_matrix/client/v3/rooms/!{}:s/messages", "a".repeat(300));
        assert!(matches!(
            ReadUri::parse("GET", &long_room),
            Err(ReadUriError::IdTooLong(_))
        ));
        let long_uri = format!(
            "/_matrix/client/v3/sync?filter={}",
            "a".repeat(MAX_URI_BYTES)
        );
        assert!(matches!(
            ReadUri::parse("GET", &long_uri),
            Err(ReadUriError::TooLong(_))
        ));
        assert_eq!(
            ReadUri::parse("G ET", "/_matrix/client/v3/sync"),
            Err(ReadUriError::BadMethod)
        );
        assert_eq!(
            ReadUri::parse("", "/_matrix/client/v3/sync"),
            Err(ReadUriError::BadMethod)
        );
    }

    /// A CORS preflight is never a read: browsers send one before many requests, with no account.
    #[test]
    fn a_cors_preflight_is_not_a_read() {
        assert_eq!(
            kind("OPTIONS", "/_matrix/client/v3/rooms/!a:s/messages"),
            ReadKind::Other
        );
        assert_eq!(
            kind("options", "/_matrix/client/v1/media/download/s/m"),
            ReadKind::Other
        );
    }

    /// The access token and the application service's user may come in the query, decoded like every value.
    #[test]
    fn credentials_in_the_query_are_read() {
        let read = ReadUri::parse(
            "GET",
            "/_matrix/client/v3/sync?access_token=syt_a%2Bb+c&user_id=%40bot%3As&access_token=second",
        )
        .unwrap();
        assert_eq!(read.query_token.as_deref(), Some("syt_a+b c"));
        assert_eq!(read.as_user.as_deref(), Some("@bot:s"));
        let none = ReadUri::parse("GET", "/_matrix/client/v3/sync").unwrap();
        assert_eq!((none.query_token, none.as_user), (None, None));
        // A malformed escape in a query value is kept as written, as Python's unquote keeps it.
        let odd = ReadUri::parse("GET", "/_matrix/client/v3/sync?access_token=a%zz").unwrap();
        assert_eq!(odd.query_token.as_deref(), Some("a%zz"));
    }

    /// The query is split as Twisted splits it: on `;` as well as `&`, an item without `=` ignored. Otherwise
    /// `?access_token=T;` would be the token `T;` to roomguard (unknown: let through undecided) and `T` to Synapse.
    #[test]
    fn the_query_is_split_as_twisted_splits_it() {
        let token = |uri: &str| ReadUri::parse("GET", uri).unwrap().query_token;
        assert_eq!(
            token("/_matrix/client/v3/sync?access_token=T;").as_deref(),
            Some("T")
        );
        assert_eq!(
            token("/_matrix/client/v3/sync?a=1;access_token=T").as_deref(),
            Some("T")
        );
        assert_eq!(
            token("/_matrix/client/v3/sync?access_token&access_token=T").as_deref(),
            Some("T")
        );
        assert_eq!(
            token("/_matrix/client/v3/sync?access_token=&access_token=T").as_deref(),
            Some("")
        );
        let user = ReadUri::parse("GET", "/_matrix/client/v3/sync?user_id=%40u%3As;")
            .unwrap()
            .as_user;
        assert_eq!(user.as_deref(), Some("@u:s"));
        assert_eq!(
            kind("GET", "/_matrix/client/v3/sync?since=s1;full_state=true"),
            ReadKind::SyncInitial
        );
        assert_eq!(
            kind("GET", "/_matrix/client/v3/sync?since;since=s1"),
            ReadKind::Other
        );
    }

    /// Errors never quote the URI: its query may hold an access token.
    #[test]
    fn errors_never_quote_the_uri() {
        let err = ReadUri::parse(
            "GET",
            "/_matrix/client/v3/rooms/%zz/messages?access_token=secret",
        )
        .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(!err.to_string().contains("%zz"), "{err}");
    }
}
