//! One room, read through the admin API and decided as the policy would decide it today: its current state, its
//! members (roles, other servers), its history paged backwards (to the start, or to `--since`), and its files, each
//! downloaded and scanned as an upload.
//!
//! **A finding is a deny because of what was said or shown**: the decision's classification is a marking. A deny
//! about who sends or how (an external member writing in a public room, plaintext in an encrypted room) is not
//! something to clean up in the history: those are counted per reason code (`other_denials`) and not acted on.
//! The room's own settings are decided too (may it be in the directory? may its access state be what it is?) and a
//! deny there becomes a recommendation: changing a room is the operator's decision, not the audit's.
//!
//! Memory is bounded by a page of history (1,000 events), the room's file list (one answer from Synapse) and the
//! files of the room's events (`mxc` URI and a few words each), whatever the room's size.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
};

use serde_json::Value;
use tokio::task::JoinSet;

use crate::{
    domain::{
        decision::Decision,
        event_text::message_from_event,
        media::{Media, UploadRequest},
        request::{PublishRequest, SendRequest, StateChangeRequest},
        room::Room,
        room_state::{RoomState, room_state},
        subject::{Subject, UserId},
    },
    policy::{
        PolicySnapshot,
        decide::{decide_publish, decide_send, decide_state_change},
    },
};

use super::{
    finding::{Finding, FindingKind, FindingReason, Recommendation, RoomSummary},
    progress::Counts,
    scan::Scanner,
    synapse_admin::{AdminError, RoomListEntry, SynapseAdmin, parse_mxc},
};

/// The room-access state types, decided as `state` (as the Synapse module routes them to `CheckRoomStateChange`).
const ACCESS_STATE_TYPES: [&str; 5] = [
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.encryption",
    "im.vector.room.access_rules",
];

/// Files of one room read at once: one downloading while another is scanned.
const FILES_IN_FLIGHT: usize = 2;

/// Everything a room's audit needs, shared by every room's task.
#[derive(Debug)]
pub struct Auditor {
    /// The admin API.
    pub admin: SynapseAdmin,
    /// The policy every decision is taken on (one version for the whole run).
    pub policy: Arc<PolicySnapshot>,
    /// Reads files as uploads.
    pub scanner: Scanner,
    /// Events before this instant (ms since the epoch) are not read.
    pub since_ms: Option<u64>,
    /// What the progress display shows.
    pub counts: Arc<Counts>,
    /// Set on Ctrl-C / SIGTERM: rooms stop at the next page or file.
    pub cancel: Arc<AtomicBool>,
    /// The homeserver's own server name (a member from another is counted as such; only its files are local).
    pub server_name: String,
    /// Whether each local user is a server admin (their roles depend on it), asked once per user.
    pub admins: Mutex<HashMap<String, bool>>,
}

/// What auditing one room gave.
#[derive(Debug)]
pub struct RoomAudit {
    /// Its summary (without remediation: that comes after).
    pub summary: RoomSummary,
    /// Its findings, oldest first.
    pub findings: Vec<Finding>,
    /// Stopped by Ctrl-C before its end.
    pub interrupted: bool,
}

/// What an event said about a file it posted.
#[derive(Debug, Clone)]
struct PostedFile {
    event_id: String,
    sender: String,
    ts: Option<u64>,
    filename: String,
    mimetype: String,
    size: u64,
}

/// The room's state and what is needed to decide in it.
struct Context {
    state: RoomState,
    summary: RoomSummary,
    findings: Vec<Finding>,
    other_denials: BTreeMap<String, u64>,
}

impl Auditor {
    /// Reads and decides one room.
    pub async fn audit_room(
        self: &Arc<Self>,
        entry: &RoomListEntry,
    ) -> Result<RoomAudit, AdminError> {
        let room_id = entry.room_id.as_str();
        let state_events = self.admin.state(room_id).await?;
        // Guests: whether the homeserver lets them in at all is not in the admin API; the room's own setting is
        // taken at its word (the cautious reading: a room open to guests is more exposed).
        let state = room_state(room_id, &state_events, entry.public, true);
        let mut summary = summary_of(&state, entry);
        // An alias is chosen by people: one that spells out a marking is text the reports must not repeat.
        if let Some(alias) = &summary.canonical_alias {
            let message = crate::domain::message::Message {
                body: alias.clone(),
                ..Default::default()
            };
            if is_marking(self.policy.classifier.classify(&message)) {
                summary.canonical_alias = None;
            }
        }
        let mut cx = Context {
            summary,
            state,
            findings: Vec::new(),
            other_denials: BTreeMap::new(),
        };
        self.members(&mut cx, room_id).await?;

        // The current state: its text (name, topic, ...) as messages, its access settings as `state`.
        let mut decided_state = HashSet::new();
        for event in &state_events {
            if let Some(event_id) = str_field(event, "event_id") {
                decided_state.insert(event_id.to_owned());
            }
            // `--since` spares the history before it: a name or topic set earlier is not read either. The room's
            // access settings are decided whatever their age: they are the room now.
            let before_since = matches!(
                (self.since_ms, event.get("origin_server_ts").and_then(Value::as_u64)),
                (Some(since), Some(ts)) if ts < since
            );
            if before_since && !is_access_state(event) {
                continue;
            }
            self.decide_event(&mut cx, event, true).await;
        }
        self.recommend_room_settings(&mut cx).await;

        // The history, newest first.
        let mut posted: HashMap<String, PostedFile> = HashMap::new();
        let mut from: Option<String> = None;
        let mut interrupted = false;
        loop {
            if self.cancel.load(Relaxed) {
                interrupted = true;
                break;
            }
            let page = self.admin.messages(room_id, from.as_deref()).await?;
            // Synapse may answer an empty page that is not the last (`limited`): only no `end`, or the same one, is.
            let last_page = page.end.is_none() || page.end == from;
            // Backwards in the room's order, not by timestamp (backfilled, federated or skewed events are out of
            // order): history stops at `--since` only after a whole page older than it.
            let mut page_before_since = self.since_ms.is_some() && !page.chunk.is_empty();
            for event in &page.chunk {
                let ts = event.get("origin_server_ts").and_then(Value::as_u64);
                if let (Some(since), Some(ts)) = (self.since_ms, ts)
                    && ts < since
                {
                    continue;
                }
                page_before_since = false;
                cx.summary.events_read += 1;
                self.counts.events.fetch_add(1, Relaxed);
                if str_field(event, "event_id").is_some_and(|id| decided_state.contains(id)) {
                    continue;
                }
                remember_posted_file(event, &mut posted);
                self.decide_event(&mut cx, event, false).await;
            }
            if last_page || page_before_since {
                break;
            }
            from = page.end;
        }

        if !interrupted {
            interrupted = self.files(&mut cx, room_id, posted).await?;
        }

        let Context {
            mut summary,
            mut findings,
            other_denials,
            ..
        } = cx;
        summary.other_denials = other_denials;
        tally(&mut summary, &mut findings);
        Ok(RoomAudit {
            summary,
            findings,
            interrupted,
        })
    }

    /// Joined members: how many, by role (as their server and users.csv give it), and from other servers.
    async fn members(&self, cx: &mut Context, room_id: &str) -> Result<(), AdminError> {
        let members = self.admin.members(room_id).await?;
        cx.summary.members = members.len() as u64;
        for member in members {
            let Ok(user_id) = UserId::parse_owned(member) else {
                continue;
            };
            if user_id.host() != host_of(&self.server_name) {
                cx.summary.members_from_other_servers += 1;
            }
            // Roles from the user's server and users.csv; whether a member is a server admin is not asked here:
            // one admin API call per member of a large room, for a role that is about acting, not reading.
            let subject = Subject {
                power_level: cx.state.power_level(user_id.as_str()),
                user_id,
                server_admin: false,
            };
            let roles = self.policy.roles.resolve(&subject);
            for role in self.policy.roles.names_of(roles) {
                *cx.summary.members_by_role.entry(role).or_default() += 1;
            }
        }
        Ok(())
    }

    /// The user as the Synapse module describes them: power level in the room, server admin or not.
    async fn subject(&self, state: &RoomState, user_id: UserId) -> Subject {
        let power_level = state.power_level(user_id.as_str());
        let server_admin = self.is_server_admin(&user_id).await;
        Subject {
            user_id,
            server_admin,
            power_level,
        }
    }

    /// Whether a local user is a server admin (asked once per user; a remote user never is here).
    async fn is_server_admin(&self, user_id: &UserId) -> bool {
        if user_id.host() != host_of(&self.server_name) {
            return false;
        }
        if let Some(known) = self.lock_admins().get(user_id.as_str()) {
            return *known;
        }
        match self.admin.user_is_admin(user_id.as_str()).await {
            Ok(admin) => {
                self.lock_admins()
                    .insert(user_id.as_str().to_owned(), admin);
                admin
            }
            // Not remembered: the next decision about this user asks again.
            Err(err) => {
                tracing::warn!(%err, "whether a sender is a server admin could not be asked; taken as not, this once");
                false
            }
        }
    }

    fn lock_admins(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.admins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides one event: text as a message sent into the room as it is now, access state as `state`.
    async fn decide_event(&self, cx: &mut Context, event: &Value, current_state: bool) {
        let Some(event_type) = str_field(event, "type") else {
            return;
        };
        let state_key = str_field(event, "state_key");
        if event_type == "m.room.member" || is_redacted(event) {
            return;
        }
        let Some(sender) = str_field(event, "sender").and_then(|s| UserId::parse(s).ok()) else {
            return;
        };
        let content = event.get("content").unwrap_or(&Value::Null);
        if state_key == Some("") && ACCESS_STATE_TYPES.contains(&event_type) {
            if current_state {
                self.decide_access_state(cx, event_type, sender).await;
            }
            return;
        }
        let Some(message) = message_from_event(event_type, content) else {
            return;
        };
        let sender = self.subject(&cx.state, sender).await;
        let request = SendRequest {
            request_id: String::new(),
            sender,
            room: cx.state.room.clone(),
            message,
        };
        let decision = decide_send(&self.policy, &request);
        let event_id = str_field(event, "event_id").map(str::to_owned);
        let ts = event.get("origin_server_ts").and_then(Value::as_u64);
        self.record(cx, &decision, "send", |finding| {
            finding.kind = FindingKind::Event;
            finding.event_id = event_id;
            finding.event_type = Some(event_type.to_owned());
            finding.sender = request.sender.user_id.as_str().to_owned();
            finding.origin_server_ts = ts;
        });
    }

    /// Would the policy let the room be as it is? Asked as a change from the room to itself by the event's sender:
    /// the rules that refuse reaching a state (`r.next`) are about changes and stay silent, those about the state
    /// itself speak. A deny is a recommendation.
    async fn decide_access_state(&self, cx: &mut Context, event_type: &str, sender: UserId) {
        let sender = self.subject(&cx.state, sender).await;
        let request = StateChangeRequest {
            request_id: String::new(),
            sender,
            room: cx.state.room.clone(),
            proposed: cx.state.room.clone(),
            event_type: event_type.to_owned(),
            state_key: String::new(),
        };
        let decision = decide_state_change(&self.policy, &request);
        if !decision.is_allowed() {
            cx.summary.recommendations.push(Recommendation {
                code: "review_room_settings".into(),
                message: format!(
                    "the policy refuses this room's {event_type} as it is ({}): change the room's settings",
                    decision.codes().join(", ")
                ),
            });
        }
    }

    /// Is the room in the directory as the policy would let it be? Asked for the room's creator (the usual
    /// publisher). A deny recommends unpublishing.
    async fn recommend_room_settings(&self, cx: &mut Context) {
        let room = &cx.state.room;
        if !room.published {
            return;
        }
        let Some(creator) = cx
            .state
            .creator
            .as_deref()
            .and_then(|c| UserId::parse(c).ok())
        else {
            return;
        };
        let requester = self.subject(&cx.state, creator).await;
        let decision = decide_publish(
            &self.policy,
            &PublishRequest {
                request_id: String::new(),
                requester,
                room: room.clone(),
                publish: true,
            },
        );
        if !decision.is_allowed() {
            cx.summary.recommendations.push(Recommendation {
                code: "unpublish".into(),
                message: format!(
                    "the policy would refuse to publish this room today ({}): remove it from the public directory",
                    decision.codes().join(", ")
                ),
            });
        }
    }

    /// Keeps a deny as a finding when a marking is why, else counts it by reason code.
    fn record(
        &self,
        cx: &mut Context,
        decision: &Decision,
        action: &str,
        fill: impl FnOnce(&mut Finding),
    ) {
        if decision.is_allowed() {
            return;
        }
        if !is_marking(&decision.classification) {
            for code in decision.codes() {
                *cx.other_denials.entry(code.to_owned()).or_default() += 1;
            }
            return;
        }
        let mut finding = Finding {
            room_id: cx.summary.room_id.clone(),
            kind: FindingKind::Event,
            event_id: None,
            event_type: None,
            mxc: None,
            sender: String::new(),
            origin_server_ts: None,
            date: None,
            action: action.to_owned(),
            classification: decision.classification.clone(),
            reasons: decision
                .reasons
                .iter()
                .map(|r| FindingReason {
                    code: r.code.clone(),
                    rule: r.rule.clone(),
                })
                .collect(),
            policy_version: decision.policy_version.clone(),
            remediation: None,
        };
        fill(&mut finding);
        finding.date = finding.origin_server_ts.and_then(rfc3339);
        self.counts.findings.fetch_add(1, Relaxed);
        cx.findings.push(finding);
    }

    /// The room's files: each downloaded and read as an upload. Returns whether Ctrl-C stopped it.
    async fn files(
        self: &Arc<Self>,
        cx: &mut Context,
        room_id: &str,
        mut posted: HashMap<String, PostedFile>,
    ) -> Result<bool, AdminError> {
        let uris = self.admin.room_media(room_id).await?;
        let mut in_flight = JoinSet::new();
        let mut interrupted = false;
        let mut results = Vec::new();
        for uri in uris {
            if self.cancel.load(Relaxed) {
                interrupted = true;
                break;
            }
            let post = posted.remove(&uri);
            let this = self.clone();
            let state = cx.state.clone();
            in_flight.spawn(async move { this.file(&state, uri, post).await });
            while in_flight.len() >= FILES_IN_FLIGHT {
                if let Some(done) = in_flight.join_next().await {
                    results.push(done);
                }
            }
        }
        while let Some(done) = in_flight.join_next().await {
            results.push(done);
        }
        for result in results {
            match result {
                Ok(Ok(Some(file))) => {
                    cx.summary.files_read += 1;
                    cx.summary.bytes_read += file.received;
                    let decision = file.decision;
                    let post = file.post;
                    let uri = file.uri;
                    self.record(cx, &decision, "upload", |finding| {
                        finding.kind = FindingKind::Media;
                        finding.mxc = Some(uri);
                        finding.sender = post.sender;
                        finding.origin_server_ts = post.ts;
                        if !post.event_id.is_empty() {
                            finding.event_id = Some(post.event_id);
                        }
                    });
                }
                Ok(Ok(None)) => {}
                Ok(Err(AdminError::NotFound)) => {}
                Ok(Err(err)) if err.is_permission() => return Err(err),
                Ok(Err(err)) => cx
                    .summary
                    .errors
                    .push(format!("a file could not be read: {err}")),
                Err(join) => cx
                    .summary
                    .errors
                    .push(format!("a file's task failed: {join}")),
            }
        }
        Ok(interrupted)
    }

    /// One file: its details (from the event that posted it, else the admin API), its bytes, its decision. `None`
    /// when there is nothing to read: quarantined or gone, or older than `--since`.
    async fn file(
        &self,
        state: &RoomState,
        uri: String,
        post: Option<PostedFile>,
    ) -> Result<Option<ScannedFile>, AdminError> {
        let Some((server, media_id)) = parse_mxc(&uri) else {
            return Ok(None);
        };
        let remote = host_of(server) != host_of(&self.server_name);
        let post = match post {
            Some(post) => post,
            None => {
                let Some(info) = self.admin.media_info(server, media_id).await? else {
                    return Ok(None);
                };
                if info.quarantined_by.is_some() {
                    return Ok(None);
                }
                PostedFile {
                    event_id: String::new(),
                    sender: info.user_id.unwrap_or_default(),
                    ts: info.created_ts,
                    filename: info.upload_name.unwrap_or_default(),
                    mimetype: info.media_type.unwrap_or_default(),
                    size: info.media_length.unwrap_or(0),
                }
            }
        };
        if let (Some(since), Some(ts)) = (self.since_ms, post.ts)
            && ts < since
        {
            return Ok(None);
        }
        let Some(body) = self.admin.download(server, media_id).await? else {
            return Ok(None);
        };
        let uploader = match UserId::parse(&post.sender) {
            Ok(user_id) => Some(self.subject(state, user_id).await),
            Err(_) => None,
        };
        let request = UploadRequest {
            request_id: String::new(),
            uploader,
            media: Media {
                media_id: media_id.to_owned(),
                filename: post.filename.clone(),
                mimetype: post.mimetype.clone(),
                size: post.size,
                remote,
            },
        };
        let scanned = self.scanner.scan(self.policy.clone(), request, body).await;
        self.counts.files.fetch_add(1, Relaxed);
        self.counts.bytes.fetch_add(scanned.received, Relaxed);
        Ok(Some(ScannedFile {
            uri,
            post,
            decision: scanned.decision,
            received: scanned.received,
        }))
    }
}

/// A file read and decided.
struct ScannedFile {
    uri: String,
    post: PostedFile,
    decision: Decision,
    received: u64,
}

/// The summary's fields known from the room's state and the room list.
fn summary_of(state: &RoomState, entry: &RoomListEntry) -> RoomSummary {
    let room = &state.room;
    RoomSummary {
        room_id: entry.room_id.clone(),
        canonical_alias: state
            .canonical_alias
            .clone()
            .or_else(|| entry.canonical_alias.clone()),
        join_rule: room.join_rule.as_str().to_owned(),
        history_visibility: room.history_visibility.as_str().to_owned(),
        encrypted: room.encrypted,
        published: room.published,
        exposure: exposure(room),
        ..RoomSummary::default()
    }
}

/// Sets what a summary says of its findings (how many, by classification, first and last dates, what to change in
/// the room, risk) from `findings`, sorted here oldest first. Called again when findings are added (on resume).
pub fn tally(summary: &mut RoomSummary, findings: &mut [Finding]) {
    findings.sort_by_key(|f| f.origin_server_ts.unwrap_or(0));
    summary.findings = findings.len() as u64;
    summary.findings_by_classification.clear();
    for finding in findings.iter() {
        *summary
            .findings_by_classification
            .entry(finding.classification.clone())
            .or_default() += 1;
    }
    summary.first_finding = findings.iter().find_map(|f| f.date.clone());
    summary.last_finding = findings.iter().rev().find_map(|f| f.date.clone());
    let content = content_recommendations(summary);
    summary
        .recommendations
        .retain(|r| !CONTENT_RECOMMENDATIONS.contains(&r.code.as_str()));
    summary.recommendations.extend(content);
    summary.risk = risk_score(summary);
}

/// The recommendations that follow from findings (the others are about the room's settings alone).
const CONTENT_RECOMMENDATIONS: [&str; 3] = [
    "restrict_join_rule",
    "restrict_history",
    "enable_encryption",
];

/// A room-access state event (join rule, history visibility, guest access, encryption, access rule).
fn is_access_state(event: &Value) -> bool {
    str_field(event, "state_key") == Some("")
        && str_field(event, "type").is_some_and(|t| ACCESS_STATE_TYPES.contains(&t))
}

/// Why a room counts as exposed (`--rooms exposed` selects a room with any): anyone may join it, it is in the
/// public directory, anyone may read its history, or its messages are readable by the homeserver.
pub fn exposure(room: &Room) -> Vec<String> {
    let mut why = Vec::new();
    if room.join_rule.as_str() == "public" {
        why.push("public_join_rule".to_owned());
    }
    if room.published {
        why.push("published".to_owned());
    }
    if room.history_visibility.as_str() == "world_readable" {
        why.push("world_readable".to_owned());
    }
    if !room.encrypted {
        why.push("not_encrypted".to_owned());
    }
    why
}

/// Exposure from the room list alone, to select rooms before reading their state.
pub fn listed_exposure(entry: &RoomListEntry) -> bool {
    entry.join_rules.as_deref() == Some("public")
        || entry.public
        || entry.history_visibility.as_deref() == Some("world_readable")
        || entry.encryption.is_none()
}

/// What to change in the room itself, given what was found in it.
fn content_recommendations(summary: &RoomSummary) -> Vec<Recommendation> {
    if summary.findings == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let has = |why: &str| summary.exposure.iter().any(|w| w == why);
    if has("public_join_rule") {
        out.push(Recommendation {
            code: "restrict_join_rule".into(),
            message: "anyone can join this room and read what it holds: make it invite-only or restricted".into(),
        });
    }
    if has("world_readable") {
        out.push(Recommendation {
            code: "restrict_history".into(),
            message: "anyone can read this room's history without joining: set history visibility to `shared` or narrower".into(),
        });
    }
    if has("not_encrypted") {
        out.push(Recommendation {
            code: "enable_encryption".into(),
            message: "this room is not encrypted: enabling encryption protects new messages (not the history already here)".into(),
        });
    }
    out
}

/// How urgent a room is: its findings, weighted by how exposed it is and by how many can read it.
///
/// `findings x (1 + 2 x published + 2 x world_readable + public_join_rule + not_encrypted)
/// x (1 + log2(members + 1)) + members from other servers`: a finding in a published, world-readable room of 1,000 members outranks ten in
/// an unencrypted room of three.
pub fn risk_score(summary: &RoomSummary) -> u64 {
    let weight = |why: &str| match why {
        "published" | "world_readable" => 2,
        _ => 1,
    };
    let exposure: u64 = 1 + summary.exposure.iter().map(|w| weight(w)).sum::<u64>();
    // 1 + floor(log2(members + 1)).
    let audience = u64::from(64 - (summary.members + 1).leading_zeros());
    let base = summary.findings * exposure * audience;
    if summary.findings == 0 {
        0
    } else {
        base + summary.members_from_other_servers
    }
}

/// The host of a server name (`example.org:8448` -> `example.org`), lowercased.
fn host_of(server: &str) -> String {
    let host = if server.starts_with('[') {
        server.split_inclusive(']').next().unwrap_or(server)
    } else {
        server.split(':').next().unwrap_or(server)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A marking, not the classifier's "nothing found".
fn is_marking(classification: &str) -> bool {
    !classification.is_empty() && classification != "none"
}

/// The event was redacted: its content is gone, there is nothing left to find.
fn is_redacted(event: &Value) -> bool {
    event
        .get("unsigned")
        .and_then(|u| u.get("redacted_because"))
        .is_some()
}

fn str_field<'a>(event: &'a Value, key: &str) -> Option<&'a str> {
    event.get(key).and_then(Value::as_str)
}

/// Remembers the file a message posted (`url`; not `file.url`, an encrypted attachment, whose bytes are ciphertext
/// and are read from the file list like any other).
fn remember_posted_file(event: &Value, posted: &mut HashMap<String, PostedFile>) {
    let content = event.get("content").unwrap_or(&Value::Null);
    let Some(url) = content.get("url").and_then(Value::as_str) else {
        return;
    };
    if parse_mxc(url).is_none() || posted.contains_key(url) {
        return;
    }
    let info = content.get("info").unwrap_or(&Value::Null);
    let filename = content
        .get("filename")
        .and_then(Value::as_str)
        .or_else(|| content.get("body").and_then(Value::as_str))
        .unwrap_or_default();
    posted.insert(
        url.to_owned(),
        PostedFile {
            event_id: str_field(event, "event_id").unwrap_or_default().to_owned(),
            sender: str_field(event, "sender").unwrap_or_default().to_owned(),
            ts: event.get("origin_server_ts").and_then(Value::as_u64),
            filename: filename.to_owned(),
            mimetype: info
                .get("mimetype")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            size: info.get("size").and_then(Value::as_u64).unwrap_or(0),
        },
    );
}

/// Milliseconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(ms: u64) -> Option<String> {
    let ms = i64::try_from(ms).ok()?;
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(findings: u64, exposure: &[&str], members: u64) -> RoomSummary {
        RoomSummary {
            findings,
            exposure: exposure.iter().map(|s| (*s).to_owned()).collect(),
            members,
            ..RoomSummary::default()
        }
    }

    /// A room with nothing found is no risk, however open; exposure and audience multiply what was found.
    #[test]
    fn risk_grows_with_findings_exposure_and_audience() {
        assert_eq!(
            risk_score(&summary(0, &["published", "world_readable"], 1000)),
            0
        );
        let small = risk_score(&summary(10, &["not_encrypted"], 3));
        let open = risk_score(&summary(
            1,
            &[
                "public_join_rule",
                "published",
                "world_readable",
                "not_encrypted",
            ],
            1000,
        ));
        assert!(open > small, "{open} > {small}");
        assert!(
            risk_score(&summary(2, &["not_encrypted"], 3))
                > risk_score(&summary(1, &["not_encrypted"], 3))
        );
    }

    /// A server name's port and case do not make it another server.
    #[test]
    fn hosts_ignore_port_and_case() {
        assert_eq!(host_of("Example.ORG:8448"), "example.org");
        assert_eq!(host_of("[::1]:8448"), "[::1]");
        assert_eq!(host_of("example.org."), "example.org");
    }

    /// Dates are written in UTC to the millisecond.
    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(1_700_000_000_123).as_deref(),
            Some("2023-11-14T22:13:20.123Z")
        );
    }

    /// A message posting a file tells whose file it is and its name; an encrypted attachment does not count.
    #[test]
    fn posted_files_are_remembered_from_their_event() {
        let mut posted = HashMap::new();
        let event = serde_json::json!({
            "event_id": "$e", "sender": "@a:example.org", "origin_server_ts": 5, "type": "m.room.message",
            "content": {"msgtype": "m.file", "body": "note.pdf", "url": "mxc://example.org/abc",
                        "info": {"mimetype": "application/pdf", "size": 10}}
        });
        remember_posted_file(&event, &mut posted);
        let encrypted = serde_json::json!({"event_id": "$f", "content": {"file": {"url": "mxc://example.org/def"}}});
        remember_posted_file(&encrypted, &mut posted);
        let file = &posted["mxc://example.org/abc"];
        assert_eq!(
            (file.filename.as_str(), file.sender.as_str(), file.size),
            ("note.pdf", "@a:example.org", 10)
        );
        assert_eq!(posted.len(), 1);
    }
}
