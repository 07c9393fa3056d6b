//! The audit report as plain text for a terminal (`--format table`): the run's totals, a table of rooms (highest risk
//! first), then the findings of each room. Never a message's text: the model has none.
//!
//! Room ids, aliases and senders are chosen by whoever created the room or the account, on any homeserver: written
//! raw, an escape sequence in one could recolour the terminal, move the cursor or rewrite the lines above, and a bidi
//! control could show an id other than the one that is there. `printable` shows every such character as a visible
//! `\u{..}`; the HTML page uses it too.
//!
//! Columns are padded by the width a terminal gives each character (`unicode-width`: two for a wide one, none for a
//! combining one). Ids are never truncated: an operator copies them into admin commands.
//!
//! Text is written into a `String` with `write!`, which cannot fail there: hence the `let _ =`.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
};

use indicatif::HumanBytes;

use crate::audit::finding::{AuditReport, Finding, FindingKind, RoomSummary, Totals};

/// The plain-text report: totals, the rooms table, the findings grouped by room.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    write_totals(&mut out, &report.totals, &other_denials(&report.rooms));
    write_rooms(&mut out, &report.rooms);
    write_notes(&mut out, &report.rooms);
    write_findings(&mut out, report);
    out
}

// === Shared with the HTML page ===

/// `s` with every character that a terminal or a browser would not show as itself (controls, including escape and
/// newline; bidi controls; zero-width and line-separator characters) written as a visible `\u{..}`.
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut shown = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hidden(c) {
            // Writing into a `String` cannot fail.
            let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// A character that moves the cursor, changes the terminal's state, reorders the text around it or takes no room.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' // arabic letter mark
                | '\u{200b}'..='\u{200f}' // zero-width space, joiners, left-to-right and right-to-left marks
                | '\u{2028}'..='\u{202e}' // line and paragraph separators, bidi embeddings and overrides
                | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, bidi isolates
                | '\u{feff}' // zero-width no-break space
        )
}

/// The findings of one room.
pub(crate) struct RoomFindings<'a> {
    /// The room.
    pub(crate) room_id: &'a str,
    /// Its summary (`None` for a room the findings name and `rooms` does not list).
    pub(crate) summary: Option<&'a RoomSummary>,
    /// Its findings, in the report's order (by date).
    pub(crate) findings: Vec<&'a Finding>,
}

/// The rooms that have findings, in the order of `report.rooms`, then any room that only the findings name (in the
/// order they name it): no finding is left out, and none is shown twice.
pub(crate) fn findings_by_room(report: &AuditReport) -> Vec<RoomFindings<'_>> {
    let mut by_room: HashMap<&str, Vec<&Finding>> = HashMap::new();
    for finding in &report.findings {
        by_room
            .entry(finding.room_id.as_str())
            .or_default()
            .push(finding);
    }
    let mut groups = Vec::new();
    for room in &report.rooms {
        if let Some(findings) = by_room.remove(room.room_id.as_str()) {
            groups.push(RoomFindings {
                room_id: &room.room_id,
                summary: Some(room),
                findings,
            });
        }
    }
    for finding in &report.findings {
        if let Some(findings) = by_room.remove(finding.room_id.as_str()) {
            groups.push(RoomFindings {
                room_id: &finding.room_id,
                summary: None,
                findings,
            });
        }
    }
    groups
}

/// The denies that are not findings, by reason code, summed over the rooms (`Totals` does not carry them).
pub(crate) fn other_denials(rooms: &[RoomSummary]) -> BTreeMap<String, u64> {
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    for room in rooms {
        for (code, n) in &room.other_denials {
            let total = sum.entry(code.clone()).or_default();
            *total = total.saturating_add(*n);
        }
    }
    sum
}

// === Totals ===

/// The run: a label and a value a line, the incomplete warning first.
fn write_totals(out: &mut String, totals: &Totals, other_denials: &BTreeMap<String, u64>) {
    let _ = writeln!(out, "roomguard audit — {}", printable(&totals.homeserver));
    if !totals.complete {
        out.push_str(
            "INCOMPLETE RUN: not every selected room was read to the end (interrupted, or a room failed); \
             the findings below are a lower bound.\n",
        );
    }
    let lines = [
        (
            "Policy version",
            printable(&totals.policy_version).into_owned(),
        ),
        ("Started", printable(&totals.started_at).into_owned()),
        ("Finished", printable(&totals.finished_at).into_owned()),
        (
            "Rooms",
            format!(
                "{} audited of {} listed",
                totals.rooms_audited, totals.rooms_listed
            ),
        ),
        ("Events read", totals.events_read.to_string()),
        (
            "Files read",
            format!("{} ({})", totals.files_read, HumanBytes(totals.bytes_read)),
        ),
        (
            "Findings",
            counted(totals.findings, &totals.findings_by_classification),
        ),
        ("Remediations", counts(&totals.remediations, "none")),
        (
            "Other denials",
            counted(
                other_denials.values().fold(0, |a, n| a.saturating_add(*n)),
                other_denials,
            ),
        ),
    ];
    let width = lines
        .iter()
        .map(|(label, _)| width(label))
        .max()
        .unwrap_or(0);
    for (label, value) in lines {
        let _ = writeln!(out, "{label:<width$}  {value}");
    }
}

/// `17: confidential 14, secret 3`, or `0`.
fn counted(total: u64, by: &BTreeMap<String, u64>) -> String {
    if by.is_empty() {
        total.to_string()
    } else {
        format!("{total}: {}", counts(by, ""))
    }
}

/// `confidential 14, secret 3`, or `empty` when there are none.
fn counts(by: &BTreeMap<String, u64>, empty: &str) -> String {
    if by.is_empty() {
        return empty.to_owned();
    }
    by.iter()
        .map(|(key, n)| format!("{} {n}", printable(key)))
        .collect::<Vec<_>>()
        .join(", ")
}

// === Rooms ===

/// The rooms table, in the order given (highest risk first), and the legend of its exposure codes.
fn write_rooms(out: &mut String, rooms: &[RoomSummary]) {
    out.push_str("\nRooms\n");
    if rooms.is_empty() {
        out.push_str("  No room audited.\n");
        return;
    }
    let columns = [
        Column::right("Risk"),
        Column::left("Room"),
        Column::left("Exposure"),
        Column::right("Members"),
        Column::right("Findings"),
        Column::left("First finding"),
        Column::left("Last finding"),
    ];
    let rows: Vec<Vec<String>> = rooms
        .iter()
        .map(|room| {
            vec![
                room.risk.to_string(),
                printable(&room.room_id).into_owned(),
                exposure_codes(&room.exposure),
                room.members.to_string(),
                room.findings.to_string(),
                or_dash(room.first_finding.as_deref()),
                or_dash(room.last_finding.as_deref()),
            ]
        })
        .collect();
    write_table(out, "  ", &columns, &rows);
    out.push_str(
        "  Exposure: join = public join rule, dir = in the public directory, \
         world = history readable by anyone, noenc = not encrypted.\n",
    );
}

/// The short codes of a room's exposure reasons, comma-separated (`-`: not exposed).
fn exposure_codes(exposure: &[String]) -> String {
    if exposure.is_empty() {
        return "-".to_owned();
    }
    exposure
        .iter()
        .map(|reason| match reason.as_str() {
            "public_join_rule" => Cow::Borrowed("join"),
            "published" => Cow::Borrowed("dir"),
            "world_readable" => Cow::Borrowed("world"),
            "not_encrypted" => Cow::Borrowed("noenc"),
            other => printable(other),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What the audit recommends for each room, the denies there that are not findings, and what it could not read
/// there: rooms with none of these are left out.
fn write_notes(out: &mut String, rooms: &[RoomSummary]) {
    let noted: Vec<&RoomSummary> = rooms
        .iter()
        .filter(|room| {
            !room.recommendations.is_empty()
                || !room.other_denials.is_empty()
                || !room.errors.is_empty()
        })
        .collect();
    if noted.is_empty() {
        return;
    }
    out.push_str("\nRecommendations, other denials and errors\n");
    for room in noted {
        let _ = writeln!(out, "  {}", printable(&room.room_id));
        for recommendation in &room.recommendations {
            let _ = writeln!(
                out,
                "    recommend  {} ({})",
                printable(&recommendation.message),
                printable(&recommendation.code)
            );
        }
        if !room.other_denials.is_empty() {
            let _ = writeln!(
                out,
                "    denied     {} (not findings: counted, not acted on)",
                counts(&room.other_denials, "")
            );
        }
        for error in &room.errors {
            let _ = writeln!(out, "    error      {}", printable(error));
        }
    }
}

// === Findings ===

/// Each room's findings under a line naming the room, or `No finding.`.
fn write_findings(out: &mut String, report: &AuditReport) {
    out.push_str("\nFindings\n");
    let groups = findings_by_room(report);
    if groups.is_empty() {
        out.push_str("  No finding.\n");
        return;
    }
    let columns = [
        Column::left("Date"),
        Column::left("Event or file"),
        Column::left("Sender"),
        Column::left("Classification"),
        Column::left("Codes"),
        Column::left("Remediation"),
    ];
    for group in groups {
        let _ = write!(out, "\n  {}", printable(group.room_id));
        match group
            .summary
            .and_then(|room| room.canonical_alias.as_deref())
        {
            Some(alias) => {
                let _ = write!(out, " ({})", printable(alias));
            }
            None if group.summary.is_none() => out.push_str(" (not in the rooms above)"),
            None => {}
        }
        let _ = writeln!(
            out,
            ": {} finding{}",
            group.findings.len(),
            plural(group.findings.len())
        );
        let rows: Vec<Vec<String>> = group
            .findings
            .iter()
            .map(|finding| finding_row(finding))
            .collect();
        write_table(out, "    ", &columns, &rows);
    }
}

/// One finding's cells.
fn finding_row(finding: &Finding) -> Vec<String> {
    let date = match (&finding.date, finding.origin_server_ts) {
        (Some(date), _) => printable(date).into_owned(),
        (None, Some(ts)) => format!("ts {ts}"),
        (None, None) => "-".to_owned(),
    };
    // A file is named by its mxc, which is what quarantine acts on; an event by its id.
    let subject = match finding.kind {
        FindingKind::Media => finding.mxc.as_deref().or(finding.event_id.as_deref()),
        FindingKind::Event => finding.event_id.as_deref().or(finding.mxc.as_deref()),
    };
    let codes = if finding.reasons.is_empty() {
        "-".to_owned()
    } else {
        finding
            .reasons
            .iter()
            .map(|reason| printable(&reason.code))
            .collect::<Vec<_>>()
            .join(",")
    };
    let remediation = match &finding.remediation {
        None => "-".to_owned(),
        Some(remediation) => {
            let mut cell = format!(
                "{} {}",
                printable(&remediation.action),
                printable(&remediation.status)
            );
            if let Some(detail) = &remediation.detail {
                let _ = write!(cell, ": {}", printable(detail));
            }
            cell
        }
    };
    vec![
        date,
        or_dash(subject),
        or_dash(
            Some(&finding.sender)
                .filter(|sender| !sender.is_empty())
                .map(String::as_str),
        ),
        printable(&finding.classification).into_owned(),
        codes,
        remediation,
    ]
}

// === Layout ===

/// How a column's cells are padded.
#[derive(Clone, Copy)]
enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A column's heading and alignment.
struct Column {
    /// The heading.
    title: &'static str,
    /// How its cells are padded.
    align: Align,
}

impl Column {
    /// A text column.
    fn left(title: &'static str) -> Column {
        Column {
            title,
            align: Align::Left,
        }
    }

    /// A number column.
    fn right(title: &'static str) -> Column {
        Column {
            title,
            align: Align::Right,
        }
    }
}

/// A table: the headings, a rule, the rows; columns two spaces apart, each as wide as its widest cell; no trailing
/// spaces (the last column is not padded, so a long remediation detail widens nothing). Cells are already printable.
fn write_table(out: &mut String, indent: &str, columns: &[Column], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = columns.iter().map(|column| width(column.title)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let titles: Vec<&str> = columns.iter().map(|column| column.title).collect();
    write_row(out, indent, columns, &widths, &titles);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    write_row(out, indent, columns, &widths, &rules);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        write_row(out, indent, columns, &widths, &cells);
    }
}

/// One line of a table.
fn write_row(out: &mut String, indent: &str, columns: &[Column], widths: &[usize], cells: &[&str]) {
    let mut line = String::from(indent);
    for (i, ((column, w), cell)) in columns.iter().zip(widths).zip(cells).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = " ".repeat(w.saturating_sub(width(cell)));
        match column.align {
            Align::Left => {
                line.push_str(cell);
                line.push_str(&pad);
            }
            Align::Right => {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The columns `s` takes on a terminal: two for a wide character, none for a combining one.
fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` made printable, or `-` when absent.
fn or_dash(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_owned(), |s| printable(s).into_owned())
}

/// `s` after a count other than one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::audit::finding::{FindingReason, Recommendation, Remediation};

    fn room(room_id: &str, risk: u64, findings: u64) -> RoomSummary {
        RoomSummary {
            room_id: room_id.to_owned(),
            join_rule: "public".to_owned(),
            history_visibility: "shared".to_owned(),
            exposure: vec!["public_join_rule".to_owned(), "not_encrypted".to_owned()],
            members: 12,
            findings,
            risk,
            ..RoomSummary::default()
        }
    }

    fn finding(room_id: &str, event_id: &str, sender: &str) -> Finding {
        Finding {
            room_id: room_id.to_owned(),
            kind: FindingKind::Event,
            event_id: Some(event_id.to_owned()),
            event_type: Some("m.room.message".to_owned()),
            mxc: None,
            sender: sender.to_owned(),
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
        let mut first = room("!zzz:example.org", 90, 1);
        first.canonical_alias = Some("#ops:example.org".to_owned());
        first.first_finding = Some("2025-12-06T00:00:00Z".to_owned());
        first.last_finding = Some("2025-12-06T00:00:00Z".to_owned());
        first.recommendations = vec![Recommendation {
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
                events_read: 1200,
                files_read: 3,
                bytes_read: 3 * 1024 * 1024,
                findings: 1,
                findings_by_classification: BTreeMap::from([("secret".to_owned(), 1)]),
                remediations: BTreeMap::from([("planned".to_owned(), 1)]),
                complete: true,
                ..Totals::default()
            },
            rooms: vec![first, room("!aaa:example.org", 3, 0)],
            findings: vec![finding(
                "!zzz:example.org",
                "$event1:example.org",
                "@mallory:evil.example",
            )],
        }
    }

    /// The lines of the section that starts with `title`, up to the next blank line.
    fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
        text.lines()
            .skip_while(|line| *line != title)
            .skip(1)
            .take_while(|line| !line.is_empty())
            .collect()
    }

    /// An escape sequence, a newline or a bidi override in an attacker-chosen id reaches the terminal as visible text.
    #[test]
    fn hostile_characters_are_shown_not_obeyed() {
        assert_eq!(printable("@bob:example.org"), "@bob:example.org");
        assert_eq!(printable("\u{1b}[2J@x"), "\\u{1b}[2J@x");
        assert_eq!(printable("a\nb\tc"), "a\\u{a}b\\u{9}c");
        assert_eq!(printable("!room\u{202e}gro.live"), "!room\\u{202e}gro.live");
        assert_eq!(printable("caf\u{e9} \u{4e2d}"), "caf\u{e9} \u{4e2d}");

        let mut report = report();
        report.findings[0].sender = "@x:evil\u{1b}]0;pwned\u{7}".to_owned();
        let text = render(&report);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'));
        assert!(text.contains("@x:evil\\u{1b}]0;pwned\\u{7}"));
    }

    /// The totals come first: homeserver, policy, rooms, bytes in human units, findings and remediations counted.
    #[test]
    fn totals_block() {
        let text = render(&report());
        assert!(text.starts_with("roomguard audit — https://matrix.example.org\n"));
        assert!(text.contains("Policy version  v1\n"));
        assert!(text.contains("Rooms           2 audited of 40 listed\n"));
        assert!(text.contains("Files read      3 (3.00 MiB)\n"));
        assert!(text.contains("Findings        1: secret 1\n"));
        assert!(text.contains("Remediations    planned 1\n"));
        assert!(text.contains("Other denials   0\n"));
        assert!(!text.contains("INCOMPLETE"));
    }

    /// A run that did not read every room says so on its second line.
    #[test]
    fn incomplete_run_is_flagged() {
        let mut report = report();
        report.totals.complete = false;
        let text = render(&report);
        assert_eq!(
            text.lines()
                .nth(1)
                .map(|line| line.starts_with("INCOMPLETE RUN:")),
            Some(true)
        );
    }

    /// Rooms are listed in the order given (the caller sorts them by risk), not re-sorted.
    #[test]
    fn rooms_in_given_order() {
        let mut report = report();
        report.rooms.reverse();
        let text = render(&report);
        let rooms = section(&text, "Rooms");
        assert!(rooms[2].contains("!aaa:example.org"), "{rooms:?}");
        assert!(rooms[3].contains("!zzz:example.org"), "{rooms:?}");
    }

    /// Every column starts at the same place on every line, numbers are right-aligned, ids are whole, no line ends
    /// with a space.
    #[test]
    fn columns_align() {
        let mut report = report();
        report.rooms[1].room_id =
            "!a-much-longer-room-identifier-that-is-not-cut:example.org".to_owned();
        report.rooms[1].risk = 7;
        let text = render(&report);
        let rooms = section(&text, "Rooms");
        let header = rooms[0];
        let room_at = header.find("Room").unwrap_or_default();
        let exposure_at = header.find("Exposure").unwrap_or_default();
        let members_end = header.find("Members").unwrap_or_default() + "Members".len();
        assert!(rooms[1].starts_with("  ----  ----"));
        for line in &rooms[2..4] {
            assert_eq!(line.find('!'), Some(room_at), "{line}");
            assert_eq!(&line[exposure_at - 2..exposure_at], "  ", "{line}");
            assert_eq!(&line[members_end - 2..members_end], "12", "{line}");
        }
        assert_eq!(&rooms[2][..6], "    90");
        assert_eq!(&rooms[3][..6], "     7");
        assert!(text.contains("!a-much-longer-room-identifier-that-is-not-cut:example.org"));
        assert!(text.lines().all(|line| !line.ends_with(' ')));
    }

    /// A finding appears under its room with its event id, sender, classification, codes and remediation.
    #[test]
    fn findings_grouped_by_room_with_their_ids() {
        let text = render(&report());
        assert!(text.contains("\n  !zzz:example.org (#ops:example.org): 1 finding\n"));
        let row = text
            .lines()
            .find(|line| line.contains("$event1:example.org"))
            .unwrap_or_default();
        for cell in [
            "2025-12-06T00:00:00Z",
            "@mallory:evil.example",
            "secret",
            "CLASSIFIED_CONTENT_IN_PUBLIC_ROOM",
            "redact planned",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert!(
            !text.contains("!aaa:example.org ("),
            "a room without finding has no group"
        );
    }

    /// A file is named by its mxc; a finding whose room is not in the list is still reported.
    #[test]
    fn media_and_stray_findings() {
        let mut report = report();
        let mut media = finding("!other:example.org", "$post:example.org", "@a:example.org");
        media.kind = FindingKind::Media;
        media.mxc = Some("mxc://example.org/abcdef".to_owned());
        media.remediation = Some(Remediation {
            action: "quarantine".to_owned(),
            status: "failed".to_owned(),
            detail: Some("M_FORBIDDEN".to_owned()),
        });
        report.findings.push(media);
        let text = render(&report);
        assert!(text.contains("!other:example.org (not in the rooms above): 1 finding"));
        let row = text
            .lines()
            .find(|line| line.contains("mxc://example.org/abcdef"))
            .unwrap_or_default();
        assert!(row.ends_with("quarantine failed: M_FORBIDDEN"), "{row}");
    }

    /// With no finding the report says so rather than showing an empty table.
    #[test]
    fn no_finding() {
        let mut report = report();
        report.findings.clear();
        let text = render(&report);
        assert!(text.ends_with("Findings\n  No finding.\n"), "{text}");
        assert!(render(&AuditReport::default()).contains("  No room audited.\n"));
    }

    /// Recommendations, denies that are not findings, and errors are listed per room; the denies are also summed.
    #[test]
    fn recommendations_other_denials_and_errors() {
        let mut report = report();
        report.rooms[1].errors = vec!["media mxc://example.org/x: 404".to_owned()];
        report.rooms[1].other_denials = BTreeMap::from([("EXTERNAL_SENDER".to_owned(), 4)]);
        report.rooms[0].other_denials = BTreeMap::from([("EXTERNAL_SENDER".to_owned(), 1)]);
        let text = render(&report);
        assert!(
            text.contains(
                "    recommend  Remove the room from the public directory. (unpublish)\n"
            )
        );
        assert!(text.contains(
            "  !aaa:example.org\n    denied     EXTERNAL_SENDER 4 (not findings: counted, not acted on)\n    \
             error      media mxc://example.org/x: 404\n"
        ));
        assert!(text.contains("Other denials   5: EXTERNAL_SENDER 5\n"));
    }
}
