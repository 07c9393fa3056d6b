//! Reads: an account reading a room's history, searching, syncing from scratch or downloading media, as the reverse
//! proxy in front of the homeserver asks about them. No homeserver module callback sees a read, and reading is how
//! the breach roomguard exists for did its damage (one account paging through 876 rooms' history and downloading
//! 59,386 files), so reads are a door of their own, decided by the same policy as the others.

use std::time::Duration;

use crate::domain::{room::Room, subject::Subject};

/// The window every read count covers: the last hour.
pub const READ_WINDOW: Duration = Duration::from_secs(60 * 60);

/// What a request reads, from its path (see [`crate::domain::read_uri`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadKind {
    /// A room's past events: `/messages`, `/context`, `/event`, `/relations`, `/threads`, `/timestamp_to_event`,
    /// `/initialSync` (of a room or of every room), the legacy `/events` stream.
    History,
    /// Server-side full-text search over every unencrypted room the account is in: the cheapest bulk read of all.
    Search,
    /// A sync from scratch (`/sync` without `since`, or with `full_state=true`; sliding sync without a position):
    /// recent history of every joined room at once.
    SyncInitial,
    /// A media download.
    Media,
    /// A media thumbnail (counted apart: clients fetch them while scrolling).
    Thumbnail,
    /// Anything else (an incremental sync, a path that is not a read).
    Other,
}

impl ReadKind {
    /// Every kind, in the order documentation lists them.
    pub const ALL: [ReadKind; 6] = [
        ReadKind::History,
        ReadKind::Search,
        ReadKind::SyncInitial,
        ReadKind::Media,
        ReadKind::Thumbnail,
        ReadKind::Other,
    ];

    /// The name rules compare (`r.read.kind == "history"`), as logs and metrics write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadKind::History => "history",
            ReadKind::Search => "search",
            ReadKind::SyncInitial => "sync_initial",
            ReadKind::Media => "media",
            ReadKind::Thumbnail => "thumbnail",
            ReadKind::Other => "other",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Option<ReadKind> {
        ReadKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether an allowed read of this kind counts towards the account's hourly counts (everything but `other`).
    pub fn is_counted(self) -> bool {
        self != ReadKind::Other
    }
}

/// What a read's path names: its kind, and the room or file it reads when the path has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTarget {
    /// The kind of read.
    pub kind: ReadKind,
    /// The room whose history is read, percent-decoded as the homeserver decodes it; `None` when the path names no
    /// room (search, sync, media, the global `/initialSync`).
    pub room_id: Option<String>,
    /// `mxc://server/id` of a download or thumbnail.
    pub media_id: Option<String>,
    /// The path is on the legacy media API (`/_matrix/media/...`), which serves media stored before authenticated
    /// media was switched on to anyone who knows its id, with no account at all.
    pub legacy_media: bool,
}

impl ReadTarget {
    /// A read that is none of the counted kinds.
    pub fn other() -> Self {
        ReadTarget {
            kind: ReadKind::Other,
            room_id: None,
            media_id: None,
            legacy_media: false,
        }
    }

    /// The room whose history is read, for the distinct-room count: only history reads of a room count there.
    pub fn history_room(&self) -> Option<&str> {
        match self.kind {
            ReadKind::History => self.room_id.as_deref(),
            _ => None,
        }
    }
}

/// One of an account's hourly read counts: how many, and how long until the oldest of them leaves the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Reads counted in the last hour.
    pub count: u32,
    /// How long until the oldest counted read leaves the window (zero when nothing is counted): the earliest moment
    /// the count can fall.
    pub frees_in: Duration,
}

impl Tally {
    /// A count with nothing about when it falls (tests, authors' suites).
    pub fn of(count: u32) -> Self {
        Tally {
            count,
            frees_in: Duration::ZERO,
        }
    }
}

/// An account's reads in the last hour, before the request being decided (which is never counted in its own
/// decision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Distinct rooms whose history the account read.
    pub history_rooms: Tally,
    /// The request's room is one of them (false when the request names no room).
    pub room_already_read: bool,
    /// History requests.
    pub history_requests: Tally,
    /// Initial syncs.
    pub initial_syncs: Tally,
    /// Searches.
    pub searches: Tally,
    /// Media downloads.
    pub media_downloads: Tally,
    /// Thumbnails.
    pub thumbnails: Tally,
}

impl ReadCounts {
    /// How long a read of `target` refused for a rate should wait before it is tried again: until every count that
    /// such a read adds to has fallen at least once (for a history read of a room not read yet, the distinct rooms
    /// and the history requests; otherwise the kind's own count). A lower bound: reads made meanwhile push it back.
    pub fn retry_after(&self, target: &ReadTarget) -> Duration {
        let counts: &[Tally] = match target.kind {
            ReadKind::History if target.room_id.is_some() && !self.room_already_read => {
                &[self.history_rooms, self.history_requests]
            }
            ReadKind::History => &[self.history_requests],
            ReadKind::Search => &[self.searches],
            ReadKind::SyncInitial => &[self.initial_syncs],
            ReadKind::Media => &[self.media_downloads],
            ReadKind::Thumbnail => &[self.thumbnails],
            ReadKind::Other => &[],
        };
        counts
            .iter()
            .filter(|t| t.count > 0)
            .map(|t| t.frees_in)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// "May this account (or no account) make this read?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    /// The caller's request id, echoed in the decision.
    pub request_id: String,
    /// The account, as the homeserver resolved the request's access token; `None` when the request carries no token
    /// the homeserver knows (a legacy media download needs none).
    pub reader: Option<Subject>,
    /// What the path reads.
    pub target: ReadTarget,
    /// The attributes of `target.room_id`, when roomguard could read them from the homeserver.
    pub room: Option<Room>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(room: Option<&str>) -> ReadTarget {
        ReadTarget {
            kind: ReadKind::History,
            room_id: room.map(str::to_owned),
            media_id: None,
            legacy_media: false,
        }
    }

    /// Kinds round-trip through their names, and only `other` is not counted.
    #[test]
    fn kinds_have_stable_names() {
        for kind in ReadKind::ALL {
            assert_eq!(ReadKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.is_counted(), kind != ReadKind::Other);
        }
        assert_eq!(ReadKind::parse("History"), None);
    }

    /// A refused history read of a new room waits for both the room count and the request count to fall; of a room
    /// already read, only for the request count; counts at zero never hold a retry back.
    #[test]
    fn retry_after_waits_for_the_counts_the_read_adds_to() {
        let counts = ReadCounts {
            history_rooms: Tally {
                count: 40,
                frees_in: Duration::from_secs(600),
            },
            history_requests: Tally {
                count: 90,
                frees_in: Duration::from_secs(300),
            },
            media_downloads: Tally {
                count: 0,
                frees_in: Duration::from_secs(900),
            },
            ..ReadCounts::default()
        };
        assert_eq!(
            counts.retry_after(&history(Some("!r:s"))),
            Duration::from_secs(600)
        );
        let already = ReadCounts {
            room_already_read: true,
            ..counts
        };
        assert_eq!(
            already.retry_after(&history(Some("!r:s"))),
            Duration::from_secs(300)
        );
        assert_eq!(counts.retry_after(&history(None)), Duration::from_secs(300));
        let media = ReadTarget {
            kind: ReadKind::Media,
            ..history(None)
        };
        assert_eq!(counts.retry_after(&media), Duration::ZERO);
    }
}
