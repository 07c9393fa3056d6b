//! A read's answer, in the terms every front needs: allow or refuse, and for a refusal the HTTP status, the Matrix
//! error body and the time to retry after, so that nginx, Envoy and any other proxy give the client the same
//! Matrix-shaped answer.

use std::{fmt::Write as _, time::Duration};

use crate::{
    domain::{
        decision::{Decision, Effect},
        read::{ReadKind, ReadTarget},
        subject::UserId,
    },
    ops::{read_metrics::NotDecided, reads::guard::only_rates},
};

/// The answer to one read.
#[derive(Debug, Clone)]
pub struct ReadAnswer {
    /// The decision: the policy's, or one roomguard wrote when it did not decide ([`ReadAnswer::not_decided`]).
    pub decision: Decision,
    /// Let the read through: the decision allows it, or roomguard runs in shadow mode.
    pub allow: bool,
    /// Shadow mode: `allow` whatever the decision says.
    pub shadow: bool,
    /// What the path reads (`None` when the request could not be classified).
    pub target: Option<ReadTarget>,
    /// The account the read was decided for.
    pub user_id: Option<UserId>,
    /// A refusal for a rate: the earliest the client may try again.
    pub retry_after: Option<Duration>,
    /// Why the policy did not decide, when it did not.
    pub not_decided: Option<NotDecided>,
}

impl ReadAnswer {
    /// The kind of read (`other` when the request could not be classified).
    pub fn kind(&self) -> ReadKind {
        self.target.as_ref().map_or(ReadKind::Other, |t| t.kind)
    }

    /// The room the path names, if any.
    pub fn room_id(&self) -> Option<&str> {
        self.target.as_ref().and_then(|t| t.room_id.as_deref())
    }

    /// Refused for a rate: every reason is a `*_RATE_EXCEEDED` one (with another reason too, waiting would not
    /// help).
    pub fn is_rate(&self) -> bool {
        self.decision.effect == Effect::Deny && only_rates(&self.decision)
    }

    /// The HTTP status the client gets on a refusal: 429 for a rate, 400 for a malformed request, 401 for a read
    /// without a token, 503 when roomguard could not decide and fails closed, 403 otherwise; `None` when the read
    /// goes through.
    pub fn status(&self) -> Option<u16> {
        if self.allow {
            return None;
        }
        Some(match self.not_decided {
            Some(NotDecided::Invalid) => 400,
            Some(NotDecided::MissingToken) => 401,
            Some(_) => 503,
            None if self.is_rate() => 429,
            None => 403,
        })
    }

    /// The Matrix error code of the refusal.
    pub fn errcode(&self) -> &'static str {
        match self.status() {
            Some(429) => "M_LIMIT_EXCEEDED",
            Some(400) => "M_UNRECOGNIZED",
            Some(401) => "M_MISSING_TOKEN",
            Some(503) => "M_UNKNOWN",
            _ => "M_FORBIDDEN",
        }
    }

    /// The reason codes, comma-separated (for a header).
    pub fn codes(&self) -> String {
        self.decision.codes().join(",")
    }

    /// The Matrix error body of the refusal, JSON in ASCII (anything else escaped as `\uXXXX`, so that it can travel
    /// in an HTTP header as it is): `{"errcode":"M_LIMIT_EXCEEDED","error":"<message> (READ_RATE_EXCEEDED)",
    /// "retry_after_ms":1234}`. The `error` is every reason's message, then the codes.
    pub fn matrix_error(&self) -> String {
        let messages: Vec<&str> = self
            .decision
            .reasons
            .iter()
            .map(|r| r.message.as_str())
            .filter(|m| !m.is_empty())
            .collect();
        let error = format!(
            "{} ({})",
            messages.join(" "),
            self.decision.codes().join(", ")
        );
        let mut body = format!(
            "{{\"errcode\":\"{}\",\"error\":{}",
            self.errcode(),
            ascii_json_string(&error)
        );
        if let Some(retry) = self.retry_after.filter(|_| self.status() == Some(429)) {
            let _ = write!(body, ",\"retry_after_ms\":{}", retry.as_millis());
        }
        body.push('}');
        body
    }

    /// `retry_after` in whole seconds, rounded up (the `Retry-After` header).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
    }
}

/// `text` as a JSON string literal holding only printable ASCII.
fn ascii_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decision::Reason;
    use std::time::SystemTime;

    fn answer(code: &str, message: &str) -> ReadAnswer {
        ReadAnswer {
            decision: Decision {
                effect: Effect::Deny,
                reasons: vec![Reason {
                    code: code.into(),
                    rule: "read.x".into(),
                    message: message.into(),
                }],
                decision_id: "id".into(),
                decided_at: SystemTime::now(),
                request_id: String::new(),
                policy_version: "v".into(),
                roles: Vec::new(),
                classification: String::new(),
            },
            allow: false,
            shadow: false,
            target: None,
            user_id: None,
            retry_after: Some(Duration::from_millis(1500)),
            not_decided: None,
        }
    }

    /// A rate is 429 M_LIMIT_EXCEEDED with its retry time; the body is JSON in ASCII, French accents escaped.
    #[test]
    fn a_rate_is_a_429_with_its_retry_time() {
        let rate = answer("READ_RATE_EXCEEDED", "Réessayez « plus tard »\n");
        assert_eq!(rate.status(), Some(429));
        assert_eq!(rate.retry_after_secs(), Some(2));
        let body = rate.matrix_error();
        assert!(body.is_ascii(), "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["errcode"], "M_LIMIT_EXCEEDED");
        assert_eq!(json["retry_after_ms"], 1500);
        assert_eq!(
            json["error"],
            "Réessayez « plus tard »\n (READ_RATE_EXCEEDED)"
        );
    }

    /// A rate beside another reason is no rate: 403, no retry time.
    #[test]
    fn a_rate_beside_another_reason_is_a_403() {
        let mut both = answer("READ_RATE_EXCEEDED", "x");
        both.decision.reasons.push(Reason {
            code: "EXTERNAL_IN_PUBLIC_ROOM".into(),
            rule: "read.external-public-history".into(),
            message: "y".into(),
        });
        assert_eq!(both.status(), Some(403));
        assert!(!both.matrix_error().contains("retry_after_ms"));
    }

    /// Another refusal is 403 M_FORBIDDEN without a retry time; an allowed read has no status.
    #[test]
    fn other_refusals_are_403() {
        let refusal = answer("UNAUTHENTICATED_MEDIA", "Connectez-vous");
        assert_eq!(refusal.status(), Some(403));
        let json: serde_json::Value = serde_json::from_str(&refusal.matrix_error()).unwrap();
        assert_eq!(json["errcode"], "M_FORBIDDEN");
        assert!(json.get("retry_after_ms").is_none());
        let mut allowed = refusal;
        allowed.allow = true;
        assert_eq!(allowed.status(), None);
    }

    /// A read roomguard could not decide is 503 when refused, a malformed one 400, one without a token 401.
    #[test]
    fn undecided_refusals_say_why() {
        let mut unavailable = answer("READ_GUARD_UNAVAILABLE", "x");
        unavailable.not_decided = Some(NotDecided::HomeserverUnavailable);
        assert_eq!(unavailable.status(), Some(503));
        let mut invalid = answer("INVALID_READ_REQUEST", "x");
        invalid.not_decided = Some(NotDecided::Invalid);
        assert_eq!(
            (invalid.status(), invalid.errcode()),
            (Some(400), "M_UNRECOGNIZED")
        );
    }

    /// Characters outside the Basic Multilingual Plane are escaped as surrogate pairs.
    #[test]
    fn astral_characters_are_surrogate_pairs() {
        assert_eq!(ascii_json_string("a🔒"), "\"a\\ud83d\\udd12\"");
    }
}
