//! A room as its current state describes it: the [`Room`] policies look at, and who holds which power level. A port of
//! the Synapse module's `synapse_roomguard/attributes.py` (`attributes_from_state`, `RoomAttributes.power_level`,
//! `room_version_outranks`), so that a room read afterwards from the homeserver's admin API (the audit) is described
//! exactly as the module described it when it asked.
//!
//! The input is the room's state events as `GET /_synapse/admin/v1/rooms/{roomId}/state` returns them (`type`,
//! `state_key`, `content`, `sender`). Only events with an empty state key describe the room (`m.room.join_rules` with
//! another state key is not the room's join rule), and missing or unknown values get the Matrix specification's
//! defaults, so that the result always says what the homeserver enforces. Malformed events are skipped, never a panic.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::domain::{
    event_text::is_python_space,
    room::{HistoryVisibility, JoinRule, Room},
};

/// The power level Synapse gives room creators in room versions where creators outrank everyone (MSC4289, room
/// version 12): `synapse.api.constants.CREATOR_POWER_LEVEL`, 2^53.
pub const CREATOR_POWER_LEVEL: i64 = 1 << 53;

/// Tchap's room access rules state event.
pub const ACCESS_RULES_EVENT: &str = "im.vector.room.access_rules";

/// The state events read here: the module's tracked types, and the canonical alias (which the audit shows).
const READ_STATE_TYPES: [&str; 8] = [
    "m.room.create",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.encryption",
    "m.room.guest_access",
    "m.room.power_levels",
    ACCESS_RULES_EVENT,
    "m.room.canonical_alias",
];

/// The room versions Synapse knows (1.163, `KNOWN_ROOM_VERSIONS`), with whether creators outrank everyone in them
/// (`msc4289_creator_power_enabled`). The module asks Synapse's own table; outside Synapse this copy stands in for it,
/// and a version Synapse adds later is "unknown" here until it is added.
const KNOWN_ROOM_VERSIONS: [(&str, bool); 15] = [
    ("1", false),
    ("2", false),
    ("3", false),
    ("4", false),
    ("5", false),
    ("6", false),
    ("7", false),
    ("8", false),
    ("9", false),
    ("10", false),
    ("11", false),
    ("12", true),
    ("org.matrix.msc3757.10", false),
    ("org.matrix.msc3757.11", false),
    ("org.matrix.hydra.11", true),
];

/// The room version a create event without `room_version` means (Matrix specification, `m.room.create`).
const DEFAULT_ROOM_VERSION: &str = "1";

/// Does this room version give creators unbounded power (MSC4289)? `default` answers for a version Synapse does not
/// know.
pub fn room_version_outranks(room_version: &str, default: bool) -> bool {
    KNOWN_ROOM_VERSIONS
        .iter()
        .find(|(known, _)| *known == room_version)
        .map_or(default, |(_, outranks)| *outranks)
}

/// `m.room.power_levels`' user levels: the part that says what power a user has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerLevels {
    /// `users`: the levels of the users named.
    pub users: BTreeMap<String, i64>,
    /// `users_default`: the level of everyone else.
    pub users_default: i64,
}

/// What a room's current state says: the [`Room`] that policies decide on, and the facts needed to tell any user's
/// power level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    /// The room as policies see it.
    pub room: Room,
    /// `m.room.canonical_alias`' `alias`, when it is a non-empty string: how people name the room.
    pub canonical_alias: Option<String>,
    /// `m.room.create`'s `room_version`: `"1"` when absent (the specification's default), empty when it is not a
    /// string (an unknown version).
    pub room_version: String,
    /// The sender of `m.room.create`, the room's creator (in every room version since 11 by definition; the module
    /// reads it so in every version).
    pub creator: Option<String>,
    /// The creator, and, where creators outrank everyone, `m.room.create`'s `additional_creators`.
    pub creators: BTreeSet<String>,
    /// The room version gives creators unbounded power (MSC4289, room version 12).
    pub creators_outrank_everyone: bool,
    /// `m.room.power_levels`, when the room has one (an object); without it the specification's defaults apply.
    pub power_levels: Option<PowerLevels>,
}

impl RoomState {
    /// The user's power level, computed as the module computes it (after Synapse's
    /// `event_auth.get_user_power_level`): creators outrank everyone where the room version says so; without a power
    /// levels event the creators have 100 and everyone else 0; otherwise the user's level in `users`, else
    /// `users_default`.
    pub fn power_level(&self, user_id: &str) -> i64 {
        if self.creators_outrank_everyone && self.creators.contains(user_id) {
            return CREATOR_POWER_LEVEL;
        }
        match &self.power_levels {
            // No power levels event: the creator has 100, everyone else 0 (Matrix spec, "m.room.power_levels").
            None if self.creators.contains(user_id) => 100,
            None => 0,
            Some(levels) => levels
                .users
                .get(user_id)
                .copied()
                .unwrap_or(levels.users_default),
        }
    }
}

/// The room `room_id` as its current `state` describes it, `published` in the room directory or not, on a homeserver
/// that lets guests in or not (`guest_access_enabled`, the homeserver's own setting).
///
/// A missing or unknown join rule is `invite` (the specification's default) and a missing or unknown history
/// visibility is `shared`. The room is encrypted when an `m.room.encryption` event is present, whatever it holds (a
/// redacted one still makes clients encrypt). Guest access is effective guest access: `can_join` in the room **and**
/// guests let in by the homeserver. Entries that are not state events with an empty state key and an object content
/// are skipped; if one type appears twice, the later entry wins. `room_id` is taken as given (not checked).
pub fn room_state(
    room_id: &str,
    state: &[Value],
    published: bool,
    guest_access_enabled: bool,
) -> RoomState {
    let mut contents: BTreeMap<&str, &Map<String, Value>> = BTreeMap::new();
    let mut creator = None;
    for event in state {
        let (Some(event_type), Some(""), Some(content)) = (
            event.get("type").and_then(Value::as_str),
            event.get("state_key").and_then(Value::as_str),
            event.get("content").and_then(Value::as_object),
        ) else {
            continue;
        };
        if !READ_STATE_TYPES.contains(&event_type) {
            continue;
        }
        contents.insert(event_type, content);
        if event_type == "m.room.create" {
            creator = event
                .get("sender")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    let field = |event_type: &str, key: &str| contents.get(event_type).and_then(|c| c.get(key));
    let text = |event_type: &str, key: &str| field(event_type, key).and_then(Value::as_str);

    let join_rule = match text("m.room.join_rules", "join_rule") {
        Some("public") => JoinRule::Public,
        Some("knock") => JoinRule::Knock,
        Some("restricted") => JoinRule::Restricted,
        Some("knock_restricted") => JoinRule::KnockRestricted,
        Some("private") => JoinRule::Private,
        // "invite", and anything else: the specification's default, which is what Synapse enforces.
        _ => JoinRule::Invite,
    };
    let history_visibility = match text("m.room.history_visibility", "history_visibility") {
        Some("world_readable") => HistoryVisibility::WorldReadable,
        Some("invited") => HistoryVisibility::Invited,
        Some("joined") => HistoryVisibility::Joined,
        _ => HistoryVisibility::Shared,
    };
    // Synapse's private presets write `can_join` into every room they create, so the state event alone says little.
    let guest_access =
        guest_access_enabled && text("m.room.guest_access", "guest_access") == Some("can_join");
    let room = Room {
        room_id: room_id.to_owned(),
        join_rule,
        history_visibility,
        encrypted: contents.contains_key("m.room.encryption"),
        guest_access,
        published,
        access_rule: text(ACCESS_RULES_EVENT, "rule")
            .unwrap_or_default()
            .to_owned(),
    };

    let room_version = match field("m.room.create", "room_version") {
        None => DEFAULT_ROOM_VERSION.to_owned(),
        Some(version) => version.as_str().unwrap_or_default().to_owned(),
    };
    // A version that is not a string is unknown: creators are ordinary users, as the module reads it.
    let creators_outrank_everyone = room_version_outranks(&room_version, false);
    let mut creators: BTreeSet<String> =
        creator.iter().filter(|c| !c.is_empty()).cloned().collect();
    if creators_outrank_everyone
        && let Some(Value::Array(additional)) = field("m.room.create", "additional_creators")
    {
        creators.extend(
            additional
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
    }

    let power_levels = contents
        .get("m.room.power_levels")
        .map(|levels| PowerLevels {
            users: match levels.get("users") {
                Some(Value::Object(users)) => users
                    .iter()
                    .map(|(user, level)| (user.clone(), power_level_value(Some(level), 0)))
                    .collect(),
                _ => BTreeMap::new(),
            },
            users_default: power_level_value(levels.get("users_default"), 0),
        });

    RoomState {
        room,
        canonical_alias: text("m.room.canonical_alias", "alias")
            .filter(|alias| !alias.is_empty())
            .map(str::to_owned),
        room_version,
        creator,
        creators,
        creators_outrank_everyone,
        power_levels,
    }
}

/// A power level as Synapse reads it: integers, and (in old room versions) numeric strings; anything else is
/// `default`.
///
/// Python's integers have no bound and 64 bits do: an integer above `i64::MAX` that `serde_json` reads as an integer
/// is `i64::MAX`; one it reads as a float (beyond `u64`) is `default`, like every float.
fn power_level_value(value: Option<&Value>, default: i64) -> i64 {
    match value {
        Some(Value::Number(number)) => match (number.as_i64(), number.as_u64()) {
            (Some(level), _) => level,
            (None, Some(_)) => i64::MAX,
            (None, None) => default,
        },
        Some(Value::String(text)) => python_int(text).unwrap_or(default),
        _ => default,
    }
}

/// Python's `int(text.strip())`: surrounding whitespace, an optional sign, decimal digits with single underscores
/// between them, at most 4,300 digits (Python's limit on converting strings to integers); saturated to 64 bits.
///
/// Python also accepts the decimal digits of other scripts (`"١٢"` is 12); these are not read here (`None`).
fn python_int(text: &str) -> Option<i64> {
    /// CPython's default `sys.get_int_max_str_digits()`: a longer string is a `ValueError`.
    const MAX_DIGITS: usize = 4_300;
    let text = text.trim_matches(is_python_space);
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    let mut count = 0;
    let mut after_digit = false;
    for byte in digits.bytes() {
        match byte {
            b'0'..=b'9' => {
                let digit = i64::from(byte - b'0');
                value = value.saturating_mul(10);
                value = if negative {
                    value.saturating_sub(digit)
                } else {
                    value.saturating_add(digit)
                };
                count += 1;
                after_digit = true;
            }
            // An underscore only between two digits.
            b'_' if after_digit => after_digit = false,
            _ => return None,
        }
    }
    (after_digit && count <= MAX_DIGITS).then_some(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALICE: &str = "@alice:agent.finances.tchap.gouv.fr";
    const BOB: &str = "@bob:agent.finances.tchap.gouv.fr";
    const ROOM: &str = "!r:agent.finances.tchap.gouv.fr";

    /// A state event with an empty state key, sent by Alice.
    fn event(event_type: &str, content: Value) -> Value {
        json!({"type": event_type, "state_key": "", "sender": ALICE, "content": content})
    }

    /// A room created by Alice (room version 10 unless `create` says otherwise), with these other state events, on a
    /// homeserver that lets guests in.
    fn state_of(create: Value, events: &[(&str, Value)]) -> RoomState {
        let mut state = vec![event("m.room.create", create)];
        state.extend(events.iter().map(|(t, c)| event(t, c.clone())));
        room_state(ROOM, &state, false, true)
    }

    fn room_with(events: &[(&str, Value)]) -> RoomState {
        state_of(json!({"room_version": "10"}), events)
    }

    /// Join rule, history visibility, encryption, guest access and access rule are read from their state events.
    #[test]
    fn public_forum_attributes() {
        let state = [
            event("m.room.create", json!({"room_version": "10"})),
            event("m.room.join_rules", json!({"join_rule": "public"})),
            event(
                "m.room.history_visibility",
                json!({"history_visibility": "world_readable"}),
            ),
            event("m.room.guest_access", json!({"guest_access": "can_join"})),
            event(
                "m.room.encryption",
                json!({"algorithm": "m.megolm.v1.aes-sha2"}),
            ),
            event(ACCESS_RULES_EVENT, json!({"rule": "unrestricted"})),
        ];
        let room = room_state(ROOM, &state, true, true).room;
        assert_eq!(
            room,
            Room {
                room_id: ROOM.into(),
                join_rule: JoinRule::Public,
                history_visibility: HistoryVisibility::WorldReadable,
                encrypted: true,
                guest_access: true,
                published: true,
                access_rule: "unrestricted".into(),
            }
        );
    }

    /// No join rules / history visibility event: invite and shared, not encrypted, no guests, no access rule.
    #[test]
    fn missing_state_gets_the_spec_defaults() {
        for state in [room_with(&[]), room_state(ROOM, &[], false, true)] {
            let room = state.room;
            assert_eq!(room.join_rule, JoinRule::Invite);
            assert_eq!(room.history_visibility, HistoryVisibility::Shared);
            assert!(!room.encrypted && !room.guest_access && !room.published);
            assert_eq!(room.access_rule, "");
        }
    }

    /// Garbage join rule or visibility values are read as Synapse enforces them: invite and shared.
    #[test]
    fn unknown_values_get_the_spec_defaults() {
        let room = room_with(&[
            ("m.room.join_rules", json!({"join_rule": "everyone"})),
            (
                "m.room.history_visibility",
                json!({"history_visibility": 1}),
            ),
            (ACCESS_RULES_EVENT, json!({"rule": ["restricted"]})),
        ])
        .room;
        assert_eq!(room.join_rule, JoinRule::Invite);
        assert_eq!(room.history_visibility, HistoryVisibility::Shared);
        assert_eq!(room.access_rule, "");
    }

    /// All six join rules and four history visibilities of the specification have their value.
    #[test]
    fn every_join_rule_and_visibility_maps_to_its_value() {
        for rule in [
            JoinRule::Public,
            JoinRule::Invite,
            JoinRule::Knock,
            JoinRule::Restricted,
            JoinRule::KnockRestricted,
            JoinRule::Private,
        ] {
            let state = room_with(&[("m.room.join_rules", json!({"join_rule": rule.as_str()}))]);
            assert_eq!(state.room.join_rule, rule);
        }
        for visibility in [
            HistoryVisibility::WorldReadable,
            HistoryVisibility::Shared,
            HistoryVisibility::Invited,
            HistoryVisibility::Joined,
        ] {
            let content = json!({"history_visibility": visibility.as_str()});
            let state = room_with(&[("m.room.history_visibility", content)]);
            assert_eq!(state.room.history_visibility, visibility);
        }
    }

    /// Only state events with an empty state key describe the room: `m.room.join_rules` with another state key is
    /// not the room's join rule.
    #[test]
    fn events_with_a_state_key_do_not_describe_the_room() {
        let state = [
            event("m.room.create", json!({})),
            json!({"type": "m.room.join_rules", "state_key": "x", "content": {"join_rule": "public"}}),
            json!({"type": "m.room.encryption", "content": {}}),
            json!({"type": "m.room.guest_access", "state_key": null, "content": {"guest_access": "can_join"}}),
        ];
        let room = room_state(ROOM, &state, false, true).room;
        assert_eq!(room.join_rule, JoinRule::Invite);
        assert!(!room.encrypted && !room.guest_access);
    }

    /// Entries that are not state events (no type, content not an object, not an object at all) are skipped.
    #[test]
    fn malformed_entries_are_skipped() {
        let state = [
            json!(null),
            json!("m.room.join_rules"),
            json!({"type": 3, "state_key": "", "content": {"join_rule": "public"}}),
            json!({"type": "m.room.join_rules", "state_key": "", "content": "public"}),
            json!({"type": "m.room.power_levels", "state_key": "", "content": []}),
        ];
        let result = room_state(ROOM, &state, false, true);
        assert_eq!(result.room.join_rule, JoinRule::Invite);
        assert_eq!(result.power_levels, None);
        assert_eq!(result.creator, None);
        assert_eq!(result.power_level(ALICE), 0);
    }

    /// When a type appears twice, the later event wins, as in a map from type to content.
    #[test]
    fn the_later_event_of_a_type_wins() {
        let state = room_with(&[
            ("m.room.join_rules", json!({"join_rule": "public"})),
            ("m.room.join_rules", json!({"join_rule": "knock"})),
        ]);
        assert_eq!(state.room.join_rule, JoinRule::Knock);
    }

    /// A redacted (empty) encryption event still makes the room encrypted: clients keep encrypting.
    #[test]
    fn any_encryption_event_makes_the_room_encrypted() {
        assert!(
            room_with(&[("m.room.encryption", json!({}))])
                .room
                .encrypted
        );
    }

    /// `guest_access` is effective guest access: `can_join` in the room **and** guests let in by the homeserver.
    #[test]
    fn can_join_is_guest_access_only_where_the_homeserver_allows_guests() {
        let state = [
            event("m.room.create", json!({})),
            event("m.room.guest_access", json!({"guest_access": "can_join"})),
        ];
        assert!(room_state(ROOM, &state, false, true).room.guest_access);
        assert!(!room_state(ROOM, &state, false, false).room.guest_access);
        assert!(!room_with(&[]).room.guest_access);
    }

    /// `guest_access: forbidden` is not guest access.
    #[test]
    fn guest_access_forbidden_is_off() {
        let state = room_with(&[("m.room.guest_access", json!({"guest_access": "forbidden"}))]);
        assert!(!state.room.guest_access);
    }

    /// The published flag is the caller's (the room directory is not state).
    #[test]
    fn published_comes_from_the_caller() {
        assert!(room_state(ROOM, &[], true, false).room.published);
        assert_eq!(room_state(ROOM, &[], true, false).room.room_id, ROOM);
    }

    /// The canonical alias is read when it is a non-empty string.
    #[test]
    fn canonical_alias_is_read() {
        let alias = "#forum:agent.finances.tchap.gouv.fr";
        let named = room_with(&[("m.room.canonical_alias", json!({ "alias": alias }))]);
        assert_eq!(named.canonical_alias.as_deref(), Some(alias));
        for content in [json!({}), json!({"alias": ""}), json!({"alias": null})] {
            let unnamed = room_with(&[("m.room.canonical_alias", content)]);
            assert_eq!(unnamed.canonical_alias, None);
        }
    }

    /// A listed user has their level, anyone else `users_default`; string levels (old rooms) are read as numbers.
    #[test]
    fn power_levels_from_users_and_default() {
        let state = room_with(&[(
            "m.room.power_levels",
            json!({"users": {ALICE: 100, BOB: "50"}, "users_default": 5}),
        )]);
        assert_eq!(state.power_level(ALICE), 100);
        assert_eq!(state.power_level(BOB), 50);
        assert_eq!(state.power_level("@carol:x"), 5);
    }

    /// Levels that are not integers (floats, booleans, garbage strings) are 0, and so is a missing `users_default`;
    /// `users` that is not an object names nobody.
    #[test]
    fn malformed_power_levels_are_zero() {
        let state = room_with(&[(
            "m.room.power_levels",
            json!({"users": {ALICE: 50.5, BOB: true, "@c:x": "cent", "@d:x": null}}),
        )]);
        for user in [ALICE, BOB, "@c:x", "@d:x", "@e:x"] {
            assert_eq!(state.power_level(user), 0, "{user}");
        }
        let state = room_with(&[(
            "m.room.power_levels",
            json!({"users": [ALICE], "users_default": "7"}),
        )]);
        assert_eq!(state.power_level(ALICE), 7);
    }

    /// Numeric strings are read as Python's `int(text.strip())` reads them; integers beyond 64 bits saturate.
    #[test]
    fn string_levels_follow_python_int() {
        for (text, level) in [
            (" 50 ", Some(50)),
            ("\u{1C}+5\u{85}", Some(5)),
            ("-1_000", Some(-1000)),
            ("007", Some(7)),
            ("99999999999999999999", Some(i64::MAX)),
            ("-99999999999999999999", Some(i64::MIN)),
            ("", None),
            ("+", None),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("+ 1", None),
            ("0x10", None),
            ("1.0", None),
        ] {
            assert_eq!(python_int(text), level, "{text:?}");
        }
        assert_eq!(python_int(&"1".repeat(4_300)), Some(i64::MAX));
        assert_eq!(python_int(&"1".repeat(4_301)), None);
        let huge = json!({"users": {ALICE: 18_446_744_073_709_551_615_u64}});
        assert_eq!(
            room_with(&[("m.room.power_levels", huge)]).power_level(ALICE),
            i64::MAX
        );
    }

    /// No power levels event: the creator (the create event's sender) has 100, others 0 (Matrix spec).
    #[test]
    fn without_power_levels_the_creator_has_100() {
        let state = room_with(&[]);
        assert_eq!(state.creator.as_deref(), Some(ALICE));
        assert_eq!(state.power_level(ALICE), 100);
        assert_eq!(state.power_level(BOB), 0);
    }

    /// The creator is the create event's sender, as the module reads it, even where an old room's `creator` names
    /// someone else.
    #[test]
    fn the_creator_is_the_create_event_sender() {
        let state = state_of(json!({"room_version": "1", "creator": BOB}), &[]);
        assert_eq!(state.power_level(ALICE), 100);
        assert_eq!(state.power_level(BOB), 0);
    }

    /// Room version 12: creator and additional creators have Synapse's creator level, whatever the users map says.
    #[test]
    fn room_v12_creators_outrank_everyone() {
        let state = state_of(
            json!({"room_version": "12", "additional_creators": [BOB, 3]}),
            &[(
                "m.room.power_levels",
                json!({"users": {ALICE: 0, "@carol:x": 100}, "users_default": 0}),
            )],
        );
        assert!(state.creators_outrank_everyone);
        assert_eq!(state.power_level(ALICE), CREATOR_POWER_LEVEL);
        assert_eq!(state.power_level(BOB), CREATOR_POWER_LEVEL);
        assert_eq!(state.power_level("@carol:x"), 100);
        assert_eq!(state.power_level("@dan:x"), 0);
    }

    /// `additional_creators` means nothing before room version 12.
    #[test]
    fn additional_creators_need_room_v12() {
        let state = state_of(
            json!({"room_version": "11", "additional_creators": [BOB]}),
            &[("m.room.power_levels", json!({"users": {}}))],
        );
        assert!(!state.creators_outrank_everyone);
        assert_eq!(state.power_level(BOB), 0);
        assert_eq!(state.power_level(ALICE), 0);
    }

    /// The room version is the create event's: `"1"` when absent, empty when not a string; only versions where
    /// Synapse enables MSC4289 make creators outrank everyone, and an unknown version does not.
    #[test]
    fn room_version_decides_whether_creators_outrank() {
        assert_eq!(state_of(json!({}), &[]).room_version, "1");
        let odd = state_of(json!({"room_version": 12}), &[]);
        assert_eq!(
            (odd.room_version.as_str(), odd.creators_outrank_everyone),
            ("", false)
        );
        let hydra = state_of(json!({"room_version": "org.matrix.hydra.11"}), &[]);
        assert!(hydra.creators_outrank_everyone);
        for version in ["1", "10", "11", "org.matrix.msc3757.11"] {
            assert!(!room_version_outranks(version, true), "{version}");
        }
        assert!(room_version_outranks("12", false));
        assert!(room_version_outranks("13", true) && !room_version_outranks("13", false));
    }
}
