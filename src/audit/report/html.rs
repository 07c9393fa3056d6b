//! The audit report as one HTML page that an operator hands to a security officer: the run's totals, the rooms
//! (highest risk first) and, for each room with findings, what the policy would refuse there today.
//!
//! The page is self-contained and inert: inline CSS, no script, no font, image or link to anywhere but its own
//! anchors, and a `Content-Security-Policy` that would refuse them anyway. It can be mailed, archived and opened
//! offline years later, and opening it reaches no server.
//!
//! Room ids, aliases, senders and even error details are chosen by whoever created the room or the account, on any
//! homeserver. Every string from the report goes through `escape` (HTML escaping of `& < > " '`, after `printable`
//! has shown controls and bidi overrides as visible `\u{..}`), ids in attributes included: the only other things
//! written are literals of this file, numbers and byte sizes. Hand-written rather than templated: the page is small
//! and fixed, and one escaping wrapper at every interpolation is easier to audit than a template engine's rules.
//!
//! The model holds no message text, and neither does the page: ids, dates, classifications and reason codes only.

use std::{
    collections::{BTreeMap, HashSet},
    fmt::{self, Write as _},
};

use indicatif::HumanBytes;

use super::table::{RoomFindings, findings_by_room, other_denials, printable};
use crate::audit::finding::{AuditReport, Finding, FindingKind, RoomSummary, Totals};

/// The HTML page: a complete HTML5 document, UTF-8.
pub fn render(report: &AuditReport) -> String {
    // About a kilobyte a finding, and the style sheet and tables around them.
    let mut out = String::with_capacity(
        report
            .findings
            .len()
            .saturating_mul(1024)
            .saturating_add(16 * 1024),
    );
    // Writing into a `String` cannot fail: there is no error to report.
    let _ = write_page(&mut out, report);
    out
}

/// `s` safe as text and as a quoted attribute value: `& < > " '` as entities, hidden characters shown as `\u{..}`
/// (see the module's docs). Written as it is formatted, without an intermediate `String`.
fn escape(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// What [`escape`] returns.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in printable(self.0).chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The style sheet: system fonts, a four-step colour scale for risk, a print layout. Colour never carries meaning
/// alone (a risk shows its level in words), so a black-and-white print loses nothing.
const STYLE: &str = r#"
:root{--fg:#1c2127;--muted:#5b6570;--line:#d5dae0;--alt:#f5f7f9;--link:#0a4a8a;
--high-fg:#8f1d16;--high-bg:#fce8e6;--medium-fg:#7a4300;--medium-bg:#fdf0d5;
--low-fg:#1e4f7a;--low-bg:#e5eff8;--none-fg:#5b6570;--none-bg:#eef1f4;--ok-fg:#1d5e33;--ok-bg:#e4f3e8}
*{box-sizing:border-box}
body{margin:0 auto;padding:28px 32px 48px;max-width:1680px;color:var(--fg);background:#fff;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
code{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px;
overflow-wrap:anywhere;unicode-bidi:isolate}
a{color:var(--link)}
h1{font-size:22px;margin:0 0 2px;font-weight:650}
h1 .hs{font-weight:400;color:var(--muted)}
h2{font-size:17px;margin:36px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--fg)}
h3{font-size:15px;margin:28px 0 4px}
p{margin:4px 0}
.muted,.lede{color:var(--muted)}
.small{font-size:12px}
.banner{margin:18px 0;padding:10px 14px;border:1px solid var(--high-fg);border-left:6px solid var(--high-fg);
background:var(--high-bg);color:var(--high-fg)}
dl.totals{display:grid;grid-template-columns:max-content 1fr;gap:5px 28px;margin:18px 0 0;padding:14px 18px;
background:var(--alt);border:1px solid var(--line);border-radius:6px}
dl.totals dt{color:var(--muted)}
dl.totals dd{margin:0}
table{border-collapse:collapse;width:100%;margin:6px 0 8px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--alt);font-size:12px;font-weight:600;color:var(--muted);white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.nowrap{white-space:nowrap}
td.room,td.ids{min-width:20em}
td.sender{min-width:16em}
td.type{min-width:10em}
td.reasons{min-width:19em}
td.members{white-space:normal}
tbody.room-rows tr:not(:last-child) td{border-bottom:none}
tr.notes td{padding-top:0}
tr.notes div{display:inline-block;vertical-align:top;max-width:48%;margin-right:32px;overflow-wrap:anywhere}
tr.notes strong{display:block;font-size:12px;color:var(--muted);font-weight:600}
td .badge{white-space:normal}
ul.plain{margin:0;padding:0;list-style:none}
ul.plain li+li{margin-top:3px}
.badge{display:inline-block;margin:1px 4px 1px 0;padding:0 7px;border:1px solid var(--line);border-radius:10px;
background:var(--alt);font-size:12px;white-space:nowrap}
.risk{display:inline-block;min-width:3.2em;padding:1px 6px;border:1px solid;border-radius:4px;text-align:center;
font-weight:700;font-variant-numeric:tabular-nums}
.level{display:block;font-size:11px;color:var(--muted);text-align:right}
.high{color:var(--high-fg);background:var(--high-bg);border-color:var(--high-fg)}
.medium{color:var(--medium-fg);background:var(--medium-bg);border-color:var(--medium-fg)}
.low{color:var(--low-fg);background:var(--low-bg);border-color:var(--low-fg)}
.none{color:var(--none-fg);background:var(--none-bg);border-color:var(--line)}
.ok{color:var(--ok-fg);background:var(--ok-bg);border-color:var(--ok-fg)}
.room-head{margin-top:32px;padding-top:10px;border-top:1px solid var(--line)}
.empty{padding:14px 18px;border:1px dashed var(--line);border-radius:6px;color:var(--muted)}
footer{margin-top:40px;padding-top:10px;border-top:1px solid var(--line);color:var(--muted);font-size:12px}
@page{size:A4 landscape;margin:12mm}
@media print{
body{max-width:none;padding:0;font-size:9pt}
code{font-size:7.5pt}
th,td{padding:4px 5px}
td.room,td.ids{min-width:12em}
td.sender,td.reasons{min-width:10em}
td.type{min-width:0}
a{color:inherit;text-decoration:none}
h2{break-after:avoid}
.room-head,h3{break-after:avoid}
thead{display:table-header-group}
tr,tbody.room-rows,.banner,dl.totals{break-inside:avoid}
.banner,.risk,.badge,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}
.back{display:none}
}
"#;

/// The whole document.
fn write_page(out: &mut String, report: &AuditReport) -> fmt::Result {
    let totals = &report.totals;
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>roomguard audit — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&totals.homeserver)
    )?;
    let groups = findings_by_room(report);
    write_header(out, totals, &other_denials(&report.rooms))?;
    out.push_str("<main>\n");
    write_rooms(out, &report.rooms, &groups)?;
    write_findings(out, totals, &groups)?;
    out.push_str("</main>\n");
    write!(
        out,
        "<footer>Generated by roomguard audit. This report holds identifiers, dates, classifications and reason codes \
         only: no message text and no file content. Policy version <code>{}</code>; run finished {}.</footer>\n\
         </body>\n</html>\n",
        escape(&totals.policy_version),
        escape(&totals.finished_at)
    )
}

// === Header ===

/// The title, the incomplete-run banner, the totals (with the denies that are not findings, summed over the rooms).
fn write_header(
    out: &mut String,
    totals: &Totals,
    other_denials: &BTreeMap<String, u64>,
) -> fmt::Result {
    write!(
        out,
        "<header>\n<h1>roomguard audit <span class=\"hs\">— {}</span></h1>\n\
         <p class=\"lede\">Every message and file in the audited rooms that the policy would refuse as the rooms are \
         today.</p>\n",
        escape(&totals.homeserver)
    )?;
    if !totals.complete {
        out.push_str(
            "<div class=\"banner\" role=\"alert\"><strong>Incomplete run.</strong> Not every selected room was read \
             to the end (the run was interrupted, or a room failed): the findings below are a lower bound. See the \
             errors under the rooms.</div>\n",
        );
    }
    out.push_str("<dl class=\"totals\">\n");
    writeln!(
        out,
        "<dt>Homeserver</dt><dd><code>{}</code></dd>",
        escape(&totals.homeserver)
    )?;
    writeln!(
        out,
        "<dt>Policy version</dt><dd><code>{}</code></dd>",
        escape(&totals.policy_version)
    )?;
    writeln!(
        out,
        "<dt>Run</dt><dd>{} to {} (roomguard {})</dd>",
        escape(&totals.started_at),
        escape(&totals.finished_at),
        escape(&totals.roomguard_version)
    )?;
    if let Some(since) = &totals.since {
        writeln!(
            out,
            "<dt>History read since</dt><dd>{} (older events and files were not read)</dd>",
            escape(since)
        )?;
    }
    writeln!(
        out,
        "<dt>Rooms audited</dt><dd>{} of {} on the homeserver</dd>",
        grouped(totals.rooms_audited),
        grouped(totals.rooms_listed)
    )?;
    writeln!(
        out,
        "<dt>Events read</dt><dd>{}</dd>",
        grouped(totals.events_read)
    )?;
    writeln!(
        out,
        "<dt>Files read</dt><dd>{} ({}, {} bytes)</dd>",
        grouped(totals.files_read),
        HumanBytes(totals.bytes_read),
        grouped(totals.bytes_read)
    )?;
    write!(
        out,
        "<dt>Findings</dt><dd><strong>{}</strong> ",
        grouped(totals.findings)
    )?;
    write_badges(out, &totals.findings_by_classification)?;
    out.push_str("</dd>\n<dt>Remediations</dt><dd>");
    if totals.remediations.is_empty() {
        out.push_str("<span class=\"muted\">none requested</span>");
    } else {
        for (status, n) in &totals.remediations {
            write!(
                out,
                "<span class=\"badge {}\">{} {}</span>",
                status_class(status),
                escape(&status_label(status)),
                grouped(*n)
            )?;
        }
    }
    out.push_str("</dd>\n<dt>Other denials</dt><dd>");
    if other_denials.is_empty() {
        out.push_str("<span class=\"muted\">none</span>");
    } else {
        write!(
            out,
            "<strong>{}</strong> ",
            grouped(other_denials.values().fold(0, |a, n| a.saturating_add(*n)))
        )?;
        write_badges(out, other_denials)?;
        out.push_str(
            "<br><span class=\"muted small\">Refused because of who sent or how (not a marking): counted, never \
             acted on.</span>",
        );
    }
    write!(
        out,
        "</dd>\n<dt>Completeness</dt><dd>{}</dd>\n</dl>\n</header>\n",
        if totals.complete {
            "every selected room was read to the end"
        } else {
            "<strong>incomplete</strong>"
        }
    )
}

// === Rooms ===

/// The rooms table, in the order given, and a line counting what it shows.
fn write_rooms(
    out: &mut String,
    rooms: &[RoomSummary],
    groups: &[RoomFindings<'_>],
) -> fmt::Result {
    out.push_str("<section id=\"rooms\">\n<h2>Rooms</h2>\n");
    if rooms.is_empty() {
        out.push_str("<p class=\"empty\">No room audited.</p>\n</section>\n");
        return Ok(());
    }
    let exposed = rooms
        .iter()
        .filter(|room| !room.exposure.is_empty())
        .count();
    let with_findings = rooms.iter().filter(|room| room.findings > 0).count();
    writeln!(
        out,
        "<p class=\"muted\">{} room{}, highest risk first: {} exposed, {} with findings. The risk colour is relative \
         to the highest risk of this run.</p>",
        grouped(rooms.len() as u64),
        plural(rooms.len() as u64),
        grouped(exposed as u64),
        grouped(with_findings as u64)
    )?;
    out.push_str(
        "<table class=\"rooms\">\n<thead><tr><th class=\"num\">Risk</th><th>Room</th><th>Exposure</th>\
         <th class=\"num\">Members</th><th>Read</th><th>Findings</th><th>First / last finding</th></tr></thead>\n",
    );
    let linked: HashSet<&str> = groups.iter().map(|group| group.room_id).collect();
    let highest = rooms.iter().map(|room| room.risk).max().unwrap_or(0);
    for room in rooms {
        write_room_row(out, room, highest, linked.contains(room.room_id.as_str()))?;
    }
    out.push_str("</table>\n</section>\n");
    Ok(())
}

/// One room: its row, whose id links to its findings when it has a section, then (when there are any) a row with
/// what the audit recommends and what it could not read there. A `tbody` of its own keeps the two together.
fn write_room_row(out: &mut String, room: &RoomSummary, highest: u64, linked: bool) -> fmt::Result {
    let level = risk_level(room.risk, highest);
    write!(
        out,
        "<tbody class=\"room-rows\">\n<tr><td class=\"num\"><span class=\"risk {level}\">{}</span>\
         <span class=\"level\">{level}</span></td><td class=\"room\">",
        grouped(room.risk)
    )?;
    if linked {
        write!(
            out,
            "<a href=\"#{}\"><code>{}</code></a>",
            escape(&anchor(&room.room_id)),
            escape(&room.room_id)
        )?;
    } else {
        write!(out, "<code>{}</code>", escape(&room.room_id))?;
    }
    if let Some(alias) = &room.canonical_alias {
        write!(out, "<br><code class=\"muted\">{}</code>", escape(alias))?;
    }
    out.push_str("</td><td>");
    if room.exposure.is_empty() {
        out.push_str("<span class=\"muted\">not exposed</span>");
    }
    for reason in &room.exposure {
        write!(
            out,
            "<span class=\"badge\">{}</span>",
            escape(exposure_label(reason))
        )?;
    }
    write!(
        out,
        "</td><td class=\"num members\">{}",
        grouped(room.members)
    )?;
    for (role, n) in &room.members_by_role {
        write!(
            out,
            "<br><span class=\"small\">{} {}</span>",
            escape(role),
            grouped(*n)
        )?;
    }
    if room.members_from_other_servers > 0 {
        write!(
            out,
            "<br><span class=\"small\">{} from other servers</span>",
            grouped(room.members_from_other_servers)
        )?;
    }
    write!(
        out,
        "</td><td class=\"nowrap\">{} event{}<br>{} file{} <span class=\"muted\">({})</span></td><td>",
        grouped(room.events_read),
        plural(room.events_read),
        grouped(room.files_read),
        plural(room.files_read),
        HumanBytes(room.bytes_read)
    )?;
    write!(out, "<strong>{}</strong> ", grouped(room.findings))?;
    write_badges(out, &room.findings_by_classification)?;
    if !room.other_denials.is_empty() {
        out.push_str("<br><span class=\"muted small\">other denials</span> ");
        write_badges(out, &room.other_denials)?;
    }
    writeln!(
        out,
        "</td><td class=\"nowrap\">{}<br>{}</td></tr>",
        escape(room.first_finding.as_deref().unwrap_or("—")),
        escape(room.last_finding.as_deref().unwrap_or("—"))
    )?;
    if !room.recommendations.is_empty() || !room.errors.is_empty() {
        out.push_str("<tr class=\"notes\"><td></td><td colspan=\"6\">");
        if !room.recommendations.is_empty() {
            out.push_str("<div><strong>Recommendations</strong>");
            write_list(out, room.recommendations.iter().map(|r| r.message.as_str()))?;
            out.push_str("</div>");
        }
        if !room.errors.is_empty() {
            out.push_str("<div><strong>Errors</strong>");
            write_list(out, room.errors.iter().map(String::as_str))?;
            out.push_str("</div>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody>\n");
    Ok(())
}

/// A room's exposure reason, in words (an unknown code as it is).
fn exposure_label(reason: &str) -> &str {
    match reason {
        "public_join_rule" => "public join rule",
        "published" => "in the public directory",
        "world_readable" => "history readable by anyone",
        "not_encrypted" => "not encrypted",
        other => other,
    }
}

/// Where `risk` stands against the run's highest: `none` (0), then `low`, `medium`, `high` by thirds. The model's
/// score has no fixed scale, so the scale is relative to this run.
fn risk_level(risk: u64, highest: u64) -> &'static str {
    let (risk, highest) = (u128::from(risk), u128::from(highest));
    if risk == 0 || highest == 0 {
        "none"
    } else if risk * 3 >= highest * 2 {
        "high"
    } else if risk * 3 >= highest {
        "medium"
    } else {
        "low"
    }
}

// === Findings ===

/// A section for each room with findings, in the rooms' order, or `No finding`.
fn write_findings(out: &mut String, totals: &Totals, groups: &[RoomFindings<'_>]) -> fmt::Result {
    out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if groups.is_empty() {
        out.push_str(
            "<p class=\"empty\">No finding: the policy refuses nothing that the audit read.</p>\n",
        );
    }
    // `findings_by_room` gives a room once, even if `rooms` lists it twice: one section, one anchor.
    for group in groups {
        write_room_findings(out, totals, group)?;
    }
    out.push_str("</section>\n");
    Ok(())
}

/// One room's heading, its settings, its findings table.
fn write_room_findings(out: &mut String, totals: &Totals, group: &RoomFindings<'_>) -> fmt::Result {
    write!(
        out,
        "<section class=\"room\" id=\"{}\">\n<h3 class=\"room-head\"><code>{}</code>",
        escape(&anchor(group.room_id)),
        escape(group.room_id)
    )?;
    if let Some(alias) = group
        .summary
        .and_then(|room| room.canonical_alias.as_deref())
    {
        write!(out, " <code class=\"muted\">{}</code>", escape(alias))?;
    }
    out.push_str("</h3>\n<p class=\"muted small\">");
    match group.summary {
        Some(room) => write!(
            out,
            "Risk {}; join rule <code>{}</code>; history <code>{}</code>; {}; {}. ",
            grouped(room.risk),
            escape(&room.join_rule),
            escape(&room.history_visibility),
            if room.encrypted {
                "encrypted"
            } else {
                "not encrypted"
            },
            if room.published {
                "in the public directory"
            } else {
                "not in the public directory"
            }
        )?,
        None => out
            .push_str("This room is not in the rooms table (the run reported no summary for it). "),
    }
    writeln!(
        out,
        "{} finding{}, oldest first.</p>",
        grouped(group.findings.len() as u64),
        plural(group.findings.len() as u64)
    )?;
    out.push_str(
        "<table class=\"findings\">\n<thead><tr><th>Date</th><th>Kind</th><th>Event / file</th><th>Type</th>\
         <th>Sender</th><th>Action</th><th>Classification</th><th>Reasons</th><th>Remediation</th></tr></thead>\n\
         <tbody>\n",
    );
    for finding in &group.findings {
        write_finding_row(out, totals, finding)?;
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"back small\"><a href=\"#rooms\">Back to the rooms</a></p>\n\
         </section>\n",
    );
    Ok(())
}

/// One finding's row: ids, never text.
fn write_finding_row(out: &mut String, totals: &Totals, finding: &Finding) -> fmt::Result {
    out.push_str("<tr><td class=\"nowrap\">");
    match (&finding.date, finding.origin_server_ts) {
        (Some(date), _) => write!(out, "{}", escape(date))?,
        (None, Some(ts)) => write!(out, "<span class=\"muted\">{ts} ms since the epoch</span>")?,
        (None, None) => out.push_str("<span class=\"muted\">unknown</span>"),
    }
    let kind = match finding.kind {
        FindingKind::Event => "event",
        FindingKind::Media => "file",
    };
    write!(out, "</td><td>{kind}</td><td class=\"ids\">")?;
    // A file first by its mxc (what quarantine acts on), then the event that posted it; an event by its id.
    let ids = match finding.kind {
        FindingKind::Media => [finding.mxc.as_deref(), finding.event_id.as_deref()],
        FindingKind::Event => [finding.event_id.as_deref(), finding.mxc.as_deref()],
    };
    let mut any = false;
    for id in ids.into_iter().flatten() {
        if any {
            out.push_str("<br>");
        }
        write!(out, "<code>{}</code>", escape(id))?;
        any = true;
    }
    if !any {
        out.push_str("<span class=\"muted\">—</span>");
    }
    write!(
        out,
        "</td><td class=\"type\">{}</td><td class=\"sender\">",
        finding.event_type.as_deref().map_or_else(
            || "<span class=\"muted\">—</span>".to_owned(),
            |t| format!("<code>{}</code>", escape(t))
        )
    )?;
    if finding.sender.is_empty() {
        out.push_str("<span class=\"muted\">not given</span>");
    } else {
        write!(out, "<code>{}</code>", escape(&finding.sender))?;
    }
    write!(
        out,
        "</td><td>{}</td><td><span class=\"badge\">{}</span></td><td class=\"reasons\"><ul class=\"plain\">",
        escape(&finding.action),
        escape(&finding.classification)
    )?;
    for reason in &finding.reasons {
        write!(out, "<li><code>{}</code>", escape(&reason.code))?;
        if reason.rule.is_empty() {
            out.push_str(" <span class=\"muted small\">by roomguard</span>");
        } else {
            write!(
                out,
                " <span class=\"muted small\">rule <code>{}</code></span>",
                escape(&reason.rule)
            )?;
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    if finding.policy_version != totals.policy_version {
        write!(
            out,
            "<span class=\"muted small\">policy <code>{}</code></span>",
            escape(&finding.policy_version)
        )?;
    }
    out.push_str("</td><td>");
    match &finding.remediation {
        None => out.push_str("<span class=\"muted\">not requested</span>"),
        Some(remediation) => {
            write!(
                out,
                "{} <span class=\"badge {}\">{}</span>",
                escape(&remediation.action),
                status_class(&remediation.status),
                escape(&status_label(&remediation.status))
            )?;
            if let Some(detail) = &remediation.detail {
                write!(out, "<br><span class=\"small\">{}</span>", escape(detail))?;
            }
        }
    }
    out.push_str("</td></tr>\n");
    Ok(())
}

/// A remediation status in words (an unknown one as it is).
fn status_label(status: &str) -> String {
    match status {
        "planned" => "planned (dry run)".to_owned(),
        "already" => "already done".to_owned(),
        "not_possible" => "not possible".to_owned(),
        other => other.to_owned(),
    }
}

/// The colour of a remediation status: done is good, failed is bad, the rest neutral or in between.
fn status_class(status: &str) -> &'static str {
    match status {
        "done" | "already" => "ok",
        "failed" => "high",
        "not_possible" => "medium",
        _ => "none",
    }
}

// === Pieces ===

/// The `id` of a room's section: `room-` then the room id with every character but ASCII letters, digits, `-`,
/// `.`, `!` and `:` written as `_` and its UTF-8 bytes in hex. Distinct rooms get distinct anchors, and the anchor is
/// the same in `id` and in a `#fragment` (no character a browser would percent-encode or mangle).
fn anchor(room_id: &str) -> String {
    let mut id = String::with_capacity(room_id.len() + 5);
    id.push_str("room-");
    for byte in room_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'!' | b':') {
            id.push(char::from(byte));
        } else {
            let _ = write!(id, "_{byte:02X}");
        }
    }
    id
}

/// A count for each key as badges (`secret 3`).
fn write_badges(out: &mut String, by: &BTreeMap<String, u64>) -> fmt::Result {
    for (key, n) in by {
        write!(
            out,
            "<span class=\"badge\">{} {}</span>",
            escape(key),
            grouped(*n)
        )?;
    }
    Ok(())
}

/// Lines of text as a list, or a dash.
fn write_list<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) -> fmt::Result {
    let mut items = items.peekable();
    if items.peek().is_none() {
        out.push_str("<span class=\"muted\">—</span>");
        return Ok(());
    }
    out.push_str("<ul class=\"plain\">");
    for item in items {
        write!(out, "<li>{}</li>", escape(item))?;
    }
    out.push_str("</ul>");
    Ok(())
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `s` after a count other than one.
fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::finding::{FindingReason, Recommendation, Remediation};

    fn room(room_id: &str, risk: u64) -> RoomSummary {
        RoomSummary {
            room_id: room_id.to_owned(),
            join_rule: "public".to_owned(),
            history_visibility: "world_readable".to_owned(),
            published: true,
            exposure: vec![
                "public_join_rule".to_owned(),
                "published".to_owned(),
                "world_readable".to_owned(),
                "not_encrypted".to_owned(),
            ],
            members: 40,
            members_by_role: BTreeMap::from([
                ("external".to_owned(), 2),
                ("foreign".to_owned(), 1),
            ]),
            members_from_other_servers: 3,
            events_read: 1500,
            files_read: 2,
            bytes_read: 2048,
            risk,
            ..RoomSummary::default()
        }
    }

    fn finding(room_id: &str, event_id: &str) -> Finding {
        Finding {
            room_id: room_id.to_owned(),
            kind: FindingKind::Event,
            event_id: Some(event_id.to_owned()),
            event_type: Some("m.room.message".to_owned()),
            mxc: None,
            sender: "@mallory:evil.example".to_owned(),
            origin_server_ts: Some(1_764_979_200_000),
            date: Some("2025-12-06T00:00:00Z".to_owned()),
            action: "send".to_owned(),
            classification: "secret".to_owned(),
            reasons: vec![FindingReason {
                code: "CLASSIFIED_CONTENT_IN_PUBLIC_ROOM".to_owned(),
                rule: "markings".to_owned(),
            }],
            policy_version: "v1".to_owned(),
            remediation: Some(Remediation {
                action: "redact".to_owned(),
                status: "planned".to_owned(),
                detail: None,
            }),
        }
    }

    fn report() -> AuditReport {
        let mut risky = room("!zzz:example.org", 90);
        risky.canonical_alias = Some("#ops:example.org".to_owned());
        risky.findings = 1;
        risky.findings_by_classification = BTreeMap::from([("secret".to_owned(), 1)]);
        risky.recommendations = vec![Recommendation {
            code: "unpublish".to_owned(),
            message: "Remove the room from the public directory.".to_owned(),
        }];
        AuditReport {
            totals: Totals {
                homeserver: "https://matrix.example.org".to_owned(),
                policy_version: "v1".to_owned(),
                started_at: "2025-12-06T01:00:00Z".to_owned(),
                finished_at: "2025-12-06T01:05:00Z".to_owned(),
                rooms_listed: 40,
                rooms_audited: 2,
                events_read: 1_234_567,
                files_read: 3,
                bytes_read: 3 * 1024 * 1024,
                findings: 1,
                findings_by_classification: BTreeMap::from([("secret".to_owned(), 1)]),
                remediations: BTreeMap::from([("planned".to_owned(), 1)]),
                complete: true,
                ..Totals::default()
            },
            rooms: vec![risky, room("!aaa:example.org", 3)],
            findings: vec![finding("!zzz:example.org", "$event1:example.org")],
        }
    }

    /// The five characters that end a text or an attribute are escaped; the rest is left as it is.
    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(
            escape("\" onmouseover=\"x").to_string(),
            "&quot; onmouseover=&quot;x"
        );
        assert_eq!(
            escape("' autofocus x='").to_string(),
            "&#39; autofocus x=&#39;"
        );
        assert_eq!(escape("a&amp;b").to_string(), "a&amp;amp;b");
        assert_eq!(
            escape("!abc:example.org café 中").to_string(),
            "!abc:example.org café 中"
        );
        assert_eq!(escape("a\u{202e}b\u{0}").to_string(), "a\\u{202e}b\\u{0}");
    }

    /// Attacker-chosen room ids, aliases, senders and errors never open a tag or leave an attribute.
    #[test]
    fn hostile_ids_are_escaped_everywhere() {
        let hostile = "!x\"><script>alert(1)</script>'<img src=x>:evil.example";
        let mut report = report();
        report.totals.homeserver = "https://h<script>".to_owned();
        report.rooms[0].room_id = hostile.to_owned();
        report.rooms[0].canonical_alias = Some("#a\"b'<c>".to_owned());
        report.rooms[0].errors = vec!["<iframe>".to_owned()];
        report.rooms[0].members_by_role = BTreeMap::from([("<b>".to_owned(), 1)]);
        report.findings[0].room_id = hostile.to_owned();
        report.findings[0].sender = "@\"><svg onload=x>:evil".to_owned();
        report.findings[0].remediation = Some(Remediation {
            action: "redact".to_owned(),
            status: "failed".to_owned(),
            detail: Some("</td><script>".to_owned()),
        });
        let page = render(&report);
        for raw in [
            "<script", "<img", "<svg", "<iframe", "<b>", "!x\"", "@\"", "#a\"", "'<",
        ] {
            assert!(!page.contains(raw), "{raw} in the page");
        }
        assert!(page.contains(
            "!x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;&lt;img src=x&gt;:evil.example"
        ));
        assert!(page.contains("<title>roomguard audit — https://h&lt;script&gt;</title>"));
        // The anchor is safe as it is, and the same in the link and in the section.
        let id = anchor(hostile);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!:_".contains(&b)),
            "{id}"
        );
        assert!(page.contains(&format!("href=\"#{id}\"")));
        assert!(page.contains(&format!("id=\"{id}\"")));
    }

    /// Two room ids never share an anchor, even when one spells the other's encoding.
    #[test]
    fn anchors_are_distinct() {
        assert_eq!(anchor("!abc:example.org"), "room-!abc:example.org");
        assert_ne!(anchor("!a b:x"), anchor("!a_20b:x"));
        assert_eq!(anchor("!a_20b:x"), "room-!a_5F20b:x");
    }

    /// The page is one document: UTF-8, English, the strict policy, the title naming the homeserver.
    #[test]
    fn document_head() {
        let page = render(&report());
        assert!(page.starts_with(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        ));
        assert!(page.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        ));
        assert!(page.contains("<title>roomguard audit — https://matrix.example.org</title>"));
        assert!(page.contains("@media print"));
        assert!(page.ends_with("</html>\n"));
    }

    /// Nothing is loaded from anywhere: no script, no `src`, no `url(`, no import, no link but to the page's own
    /// anchors; the only URL written is the homeserver's, as text.
    #[test]
    fn no_external_reference() {
        let page = render(&report());
        let without_homeserver = page.replace("https://matrix.example.org", "");
        for forbidden in [
            "http://", "https://", "src=", "url(", "@import", "<script", "<link", "//",
        ] {
            assert!(
                !without_homeserver.contains(forbidden),
                "{forbidden} in the page"
            );
        }
        assert_eq!(
            page.matches("href=\"").count(),
            page.matches("href=\"#").count(),
            "every link is to an anchor of the page"
        );
    }

    /// The totals show the homeserver, the policy, the run, the counts, bytes in human units, findings by
    /// classification and remediations by status.
    #[test]
    fn totals() {
        let page = render(&report());
        for text in [
            "<dt>Homeserver</dt><dd><code>https://matrix.example.org</code></dd>",
            "<dt>Policy version</dt><dd><code>v1</code></dd>",
            "2025-12-06T01:00:00Z to 2025-12-06T01:05:00Z",
            "2 of 40 on the homeserver",
            "<dt>Events read</dt><dd>1,234,567</dd>",
            "3 (3.00 MiB, 3,145,728 bytes)",
            "<span class=\"badge\">secret 1</span>",
            "planned (dry run) 1",
        ] {
            assert!(page.contains(text), "{text}");
        }
        assert!(!page.contains("Incomplete run"));
    }

    /// A run that did not read every room says so in a banner at the top.
    #[test]
    fn incomplete_banner() {
        let mut report = report();
        report.totals.complete = false;
        let page = render(&report);
        let banner = page
            .find("<strong>Incomplete run.</strong>")
            .unwrap_or(usize::MAX);
        assert!(banner < page.find("<dl class=\"totals\">").unwrap_or(0));
    }

    /// Rooms keep the order given (the caller sorts them by risk), with exposure in words and members by role.
    #[test]
    fn rooms_in_given_order_with_readable_exposure() {
        let mut report = report();
        report.rooms.reverse();
        let page = render(&report);
        let first = page
            .find("<code>!aaa:example.org</code>")
            .unwrap_or(usize::MAX);
        let second = page.find("<code>!zzz:example.org</code>").unwrap_or(0);
        assert!(first < second);
        for text in [
            ">public join rule<",
            ">in the public directory<",
            ">history readable by anyone<",
            ">not encrypted<",
            "external 2",
            "foreign 1",
            "3 from other servers",
            "Remove the room from the public directory.",
        ] {
            assert!(page.contains(text), "{text}");
        }
    }

    /// Denies that are not findings show in their room's row and, summed, in the totals; none says none.
    #[test]
    fn other_denials_are_counted() {
        let mut report = report();
        assert!(
            render(&report).contains("<dt>Other denials</dt><dd><span class=\"muted\">none</span>")
        );
        report.rooms[0].other_denials = BTreeMap::from([("EXTERNAL_SENDER".to_owned(), 2)]);
        report.rooms[1].other_denials = BTreeMap::from([("EXTERNAL_SENDER".to_owned(), 3)]);
        let page = render(&report);
        assert!(page.contains(
            "<dt>Other denials</dt><dd><strong>5</strong> <span class=\"badge\">EXTERNAL_SENDER 5</span>"
        ));
        assert!(
            page.contains("other denials</span> <span class=\"badge\">EXTERNAL_SENDER 2</span>")
        );
    }

    /// The risk scale is relative to the run's highest: the top room is high, a tenth of it low, zero none.
    #[test]
    fn risk_levels() {
        assert_eq!(risk_level(90, 90), "high");
        assert_eq!(risk_level(40, 90), "medium");
        assert_eq!(risk_level(9, 90), "low");
        assert_eq!(risk_level(0, 90), "none");
        assert_eq!(risk_level(u64::MAX, u64::MAX), "high");
    }

    /// A room with findings links to its section, which lists each finding's ids, sender, codes and remediation.
    #[test]
    fn a_findings_ids_appear_in_its_rooms_section() {
        let mut report = report();
        let mut media = finding("!zzz:example.org", "$post:example.org");
        media.kind = FindingKind::Media;
        media.mxc = Some("mxc://example.org/abcdef".to_owned());
        media.reasons[0].rule = String::new();
        report.findings.push(media);
        let page = render(&report);
        assert!(
            page.contains("<a href=\"#room-!zzz:example.org\"><code>!zzz:example.org</code></a>")
        );
        assert!(
            !page.contains("href=\"#room-!aaa"),
            "no link to a room without findings"
        );
        let section = page
            .split("<section class=\"room\" id=\"room-!zzz:example.org\">")
            .nth(1)
            .unwrap_or("");
        for text in [
            "<code>$event1:example.org</code>",
            "<code>mxc://example.org/abcdef</code><br><code>$post:example.org</code>",
            "<code>@mallory:evil.example</code>",
            "<code>m.room.message</code>",
            "<code>CLASSIFIED_CONTENT_IN_PUBLIC_ROOM</code> <span class=\"muted small\">rule <code>markings</code>",
            "by roomguard",
            "redact <span class=\"badge none\">planned (dry run)</span>",
        ] {
            assert!(section.contains(text), "{text}");
        }
    }

    /// A finding in a room the rooms table does not list still gets a section.
    #[test]
    fn stray_finding_is_not_lost() {
        let mut report = report();
        report
            .findings
            .push(finding("!gone:example.org", "$stray:example.org"));
        let page = render(&report);
        assert!(page.contains("id=\"room-!gone:example.org\""));
        assert!(page.contains("$stray:example.org"));
    }

    /// With no finding the page says so, and no room links anywhere.
    #[test]
    fn no_finding_page() {
        let mut report = report();
        report.findings.clear();
        let page = render(&report);
        assert!(page.contains("<p class=\"empty\">No finding"));
        assert!(!page.contains("<section class=\"room\""));
        let empty = render(&AuditReport::default());
        assert!(empty.contains("No room audited.") && empty.contains("No finding"));
    }

    /// Numbers are grouped by thousands.
    #[test]
    fn grouping() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(u64::MAX), "18,446,744,073,709,551,615");
    }
}
