//! Renders one explained decision for `roomguard check`: the decision as the service would answer it, and for
//! every rule of the action whether its condition held, so an author sees why a result came out as it did.

use std::fmt::Write as _;

use serde_json::json;

use crate::{
    documents::{Extraction, Incomplete},
    domain::read::ReadTarget,
    policy::{PolicySnapshot, decide::Explanation},
};

/// The human form of an upload's check: what was read of the file, then the decision.
pub fn render_text_upload(
    policy: &PolicySnapshot,
    e: &Explanation,
    extraction: &Extraction,
    received: u64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "format:         {}", extraction.format.as_str());
    let _ = writeln!(out, "bytes read:     {received}");
    let _ = writeln!(out, "text read:      {} characters", extraction.text_chars);
    let _ = writeln!(
        out,
        "complete:       {}",
        match extraction.incomplete {
            None => "yes".to_owned(),
            Some(reason) => format!("no ({})", reason.as_str()),
        }
    );
    out.push_str(&render_text(policy, e));
    out
}

/// The machine form of an upload's check.
pub fn render_json_upload(
    policy: &PolicySnapshot,
    e: &Explanation,
    extraction: &Extraction,
    received: u64,
) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(&render_json(policy, e)).unwrap_or_default();
    doc["scan"] = json!({
        "format": extraction.format.as_str(),
        "bytes_read": received,
        "text_chars": extraction.text_chars,
        "complete": extraction.incomplete.is_none(),
        "incomplete_reason": extraction.incomplete.map_or("", Incomplete::as_str),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The human form of a read's decision: what the path reads, then the decision.
pub fn render_text_read(policy: &PolicySnapshot, e: &Explanation, read: &ReadTarget) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "read:           {}", read.kind.as_str());
    if let Some(room) = &read.room_id {
        let _ = writeln!(out, "room:           {room}");
    }
    if let Some(media) = &read.media_id {
        let _ = writeln!(out, "media:          {media}");
    }
    out.push_str(&render_text(policy, e));
    out
}

/// The machine form of a read's decision: [`render_json`] with the read.
pub fn render_json_read(policy: &PolicySnapshot, e: &Explanation, read: &ReadTarget) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(&render_json(policy, e)).unwrap_or_default();
    doc["read"] = json!({
        "kind": read.kind.as_str(),
        "room_id": read.room_id,
        "media_id": read.media_id,
        "legacy_media": read.legacy_media,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The human form.
pub fn render_text(policy: &PolicySnapshot, e: &Explanation) -> String {
    let d = &e.decision;
    let mut out = String::new();
    let _ = writeln!(out, "effect:         {}", d.effect.as_str().to_uppercase());
    let _ = writeln!(out, "reasons:");
    for r in &d.reasons {
        let rule = if r.rule.is_empty() {
            "roomguard".to_owned()
        } else {
            format!("rule {}", r.rule)
        };
        let _ = writeln!(out, "  - {} ({rule}): {}", r.code, r.message);
    }
    let _ = writeln!(
        out,
        "roles:          {}",
        if d.roles.is_empty() {
            "(none)".into()
        } else {
            d.roles.join(", ")
        }
    );
    if !d.classification.is_empty() {
        let _ = writeln!(out, "classification: {}", d.classification);
    }
    if e.action != crate::domain::request::Action::Upload {
        let _ = writeln!(
            out,
            "room is public: {}",
            if e.room_is_public { "yes" } else { "no" }
        );
    }
    let _ = writeln!(out, "policy_version: {}", d.policy_version);
    let _ = writeln!(
        out,
        "\nrules for `{}`, in file order ([x] = condition held):",
        e.action.as_str()
    );
    match &e.matched {
        Ok(matched) => {
            for rule in policy.rules.iter().filter(|r| r.action == e.action) {
                let mark = if matched.contains(&rule.id) { "x" } else { " " };
                let _ = writeln!(
                    out,
                    "  [{mark}] {:<28} {:<5} {:<32} rules.csv:{:<4} {}",
                    rule.id,
                    rule.effect.as_str(),
                    rule.code,
                    rule.line,
                    rule.condition
                );
            }
            if matched.is_empty() {
                let _ = writeln!(out, "  no rule matched: default deny (NO_MATCHING_RULE)");
            }
        }
        Err(err) => {
            let _ = writeln!(out, "  evaluation failed: {err}");
        }
    }
    out
}

/// The machine form.
pub fn render_json(policy: &PolicySnapshot, e: &Explanation) -> String {
    let d = &e.decision;
    let rules: Vec<_> = policy
        .rules
        .iter()
        .filter(|r| r.action == e.action)
        .map(|r| {
            json!({
                "id": r.id, "effect": r.effect.as_str(), "code": r.code, "line": r.line, "condition": r.condition,
                "matched": e.matched.as_ref().is_ok_and(|m| m.contains(&r.id)),
            })
        })
        .collect();
    let doc = json!({
        "decision": {
            "effect": d.effect.as_str(),
            "reasons": d.reasons.iter().map(|r| json!({"code": r.code, "rule": r.rule, "message": r.message})).collect::<Vec<_>>(),
            "decision_id": d.decision_id,
            "request_id": d.request_id,
            "policy_version": d.policy_version,
            "roles": d.roles,
            "classification": d.classification,
        },
        "action": e.action.as_str(),
        "room_is_public": e.room_is_public,
        "rules": rules,
        "evaluation_error": e.matched.as_ref().err().map(ToString::to_string),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
