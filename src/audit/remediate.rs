//! Remediation, only when asked (`--remediate quarantine-media,redact-events`), and a dry run unless `--apply`:
//! each marked file quarantined, each marked event redacted, every action journalled before and after.
//!
//! Never twice: an action the journal says is done is not taken again; one begun and never finished (the run was
//! killed between the call and its outcome) is checked against the homeserver first; and an event is always
//! looked at before it is redacted (a redacted event is `already`), as is a file before it is quarantined.
//!
//! Redaction is done as the event's own sender (a token from the admin API's "login as user", valid a few minutes
//! and logged out at once): a server admin has no power in a room by right, but a sender may always redact their
//! own event. A remote sender's event cannot be redacted from here (`not_possible`, with a recommendation).

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::Value;

use super::{
    finding::{Finding, FindingKind, Remediation},
    journal::{Entry, Journal, JournalError, Resumed, now},
    synapse_admin::{AdminError, SynapseAdmin, parse_mxc},
};

/// How long a sender's token made for one redaction is valid (it is logged out at once anyway).
const PUPPET_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// `--remediate`: which actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Action {
    /// Quarantine each marked file.
    QuarantineMedia,
    /// Redact each marked event.
    RedactEvents,
}

/// Takes (or plans) the actions on a room's findings.
#[derive(Debug)]
pub struct Remediator {
    /// The admin API.
    pub admin: SynapseAdmin,
    /// The actions asked for.
    pub actions: HashSet<Action>,
    /// Act, rather than say what would be done.
    pub apply: bool,
    /// The redactions' reason.
    pub reason: String,
    /// Where every action is written.
    pub journal: Option<Arc<Journal>>,
    /// What an earlier run of the journal did.
    pub resumed: Arc<Resumed>,
    /// The admin token's own account (its events are redacted with its own token).
    pub admin_user: String,
    /// The homeserver's server name (only its users can be acted as).
    pub server_name: String,
    /// Set on Ctrl-C / SIGTERM: no action is begun after it (the one under way finishes and is journalled).
    pub cancel: Arc<AtomicBool>,
    /// Set when the homeserver refused the admin token during remediation (the run then ends with 77).
    pub token_refused: Arc<AtomicBool>,
}

impl Remediator {
    /// Sets each finding's remediation, acting when `apply`. A journal that cannot be written stops the run: an
    /// action that cannot be recorded is not taken.
    pub async fn remediate(&self, findings: &mut [Finding]) -> Result<(), JournalError> {
        for finding in findings.iter_mut() {
            let (action, name, target) = match finding.kind {
                FindingKind::Media => match &finding.mxc {
                    Some(mxc) => (Action::QuarantineMedia, "quarantine", mxc.clone()),
                    None => continue,
                },
                FindingKind::Event => match &finding.event_id {
                    Some(id) => (Action::RedactEvents, "redact", id.clone()),
                    None => continue,
                },
            };
            if !self.actions.contains(&action) {
                continue;
            }
            let mut remediation = Remediation {
                action: name.to_owned(),
                status: "planned".into(),
                detail: None,
            };
            if self.resumed.settled(name, &target) {
                // Done by the run this one resumes: said so, never repeated.
                remediation.status = "done".into();
                remediation.detail = Some("by an earlier run of this journal".into());
            } else if self.apply && self.cancel.load(Ordering::Relaxed) {
                // Stopped: what is left is reported as not done; `--resume` takes it up.
                remediation.status = "planned".into();
                remediation.detail = Some("not done: the run was stopped".into());
            } else if self.apply {
                if let Some(journal) = &self.journal {
                    journal.write(&Entry::Intent {
                        at: now(),
                        action: name.to_owned(),
                        target: target.clone(),
                        room_id: finding.room_id.clone(),
                    })?;
                }
                let (status, detail) = match action {
                    Action::QuarantineMedia => self.quarantine(&target).await,
                    Action::RedactEvents => self.redact(finding, &target).await,
                };
                remediation.status = status.to_owned();
                remediation.detail = detail;
                if let Some(journal) = &self.journal {
                    journal.write(&Entry::Done {
                        at: now(),
                        action: name.to_owned(),
                        target: target.clone(),
                        room_id: finding.room_id.clone(),
                        status: remediation.status.clone(),
                        detail: remediation.detail.clone(),
                    })?;
                }
            }
            finding.remediation = Some(remediation);
        }
        Ok(())
    }

    async fn quarantine(&self, mxc: &str) -> (&'static str, Option<String>) {
        let Some((server, media_id)) = parse_mxc(mxc) else {
            return ("not_possible", Some("not an mxc URI".into()));
        };
        match self.admin.media_info(server, media_id).await {
            Ok(Some(info)) if info.quarantined_by.is_some() => return ("already", None),
            Ok(_) => {}
            Err(err) => return self.admin_failed(err, ""),
        }
        if let Err(err) = self.admin.quarantine(server, media_id).await {
            return self.admin_failed(err, "");
        }
        // Synapse answers 200 for a file protected from quarantine and leaves it served: done only once it says so.
        match self.admin.media_info(server, media_id).await {
            Ok(Some(info)) if info.quarantined_by.is_some() => ("done", None),
            Ok(_) => (
                "not_possible",
                Some("the homeserver did not quarantine it (protected from quarantine?): delete it by hand".into()),
            ),
            Err(err) => self.admin_failed(err, "quarantined, but not confirmed: "),
        }
    }

    async fn redact(&self, finding: &Finding, event_id: &str) -> (&'static str, Option<String>) {
        match self.admin.event_in_room(&finding.room_id, event_id).await {
            Ok(Some(event)) if is_redacted(&event) => return ("already", None),
            Ok(Some(_)) => {}
            Ok(None) => {
                return (
                    "not_possible",
                    Some("the homeserver no longer has this event".into()),
                );
            }
            Err(err) => return self.admin_failed(err, ""),
        }
        let sender = finding.sender.as_str();
        let local = sender
            .split_once(':')
            .is_some_and(|(_, server)| server.eq_ignore_ascii_case(&self.server_name));
        if !local {
            return (
                "not_possible",
                Some("the sender is on another homeserver: only theirs can redact as them; redact by hand as a room moderator".into()),
            );
        }
        // The same transaction id for the same event: a call retried (within this token) after a lost answer is one
        // redaction. Across runs, the look above is what prevents a second one.
        let txn_id = format!("roomguard-audit-{}", super::synapse_admin::encode(event_id));
        if sender == self.admin_user {
            return match self
                .admin
                .redact_with_own_token(&finding.room_id, event_id, &txn_id, &self.reason)
                .await
            {
                Ok(()) => ("done", None),
                Err(err) => self.admin_failed(err, ""),
            };
        }
        let token = match self.admin.login_as(sender, PUPPET_TOKEN_LIFETIME).await {
            Ok(token) => token,
            Err(err) => return self.admin_failed(err, "cannot act as the sender: "),
        };
        let result = self
            .admin
            .redact(&token, &finding.room_id, event_id, &txn_id, &self.reason)
            .await;
        if let Err(err) = self.admin.logout(&token).await {
            tracing::warn!(%err, "a sender's token made for a redaction could not be logged out; it expires in 5 minutes");
        }
        match result {
            Err(AdminError::NotAdmin(_)) => (
                "not_possible",
                Some("the sender may no longer redact in this room (left it, or lost the power): redact by hand as a room moderator".into()),
            ),
            other => outcome(other),
        }
    }
}

impl Remediator {
    /// A call with the admin token failed: `failed`, and when the homeserver refused the token itself (revoked
    /// during the run), the run stops: every further call would fail the same way.
    fn admin_failed(&self, err: AdminError, context: &str) -> (&'static str, Option<String>) {
        if matches!(err, AdminError::BadToken(_)) {
            self.token_refused.store(true, Ordering::Relaxed);
            self.cancel.store(true, Ordering::Relaxed);
        }
        ("failed", Some(format!("{context}{err}")))
    }
}

fn outcome(result: Result<(), AdminError>) -> (&'static str, Option<String>) {
    match result {
        Ok(()) => ("done", None),
        Err(err) => ("failed", Some(err.to_string())),
    }
}

/// The homeserver says the event was redacted.
fn is_redacted(event: &Value) -> bool {
    let unsigned = event.get("unsigned");
    unsigned.and_then(|u| u.get("redacted_because")).is_some()
        || unsigned.and_then(|u| u.get("redacted_by")).is_some()
}
