//! Writing what the audit found: NDJSON as rooms finish (a finding per line, then the room's summary, the totals
//! last), or one JSON document, or a table for a terminal, and the HTML page for a security officer.

pub mod html;
pub mod table;

use std::io::Write;

use super::finding::{AuditReport, Finding, RoomSummary, Totals};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line: `finding` lines, a `room` line per room, a `totals` line last.
    Ndjson,
    /// One JSON document: `{totals, rooms, findings}`.
    Json,
    /// A table for a terminal.
    Table,
}

/// Where the report goes, and what is kept to write it at the end.
pub struct Reporter {
    format: Format,
    out: Box<dyn Write + Send>,
    /// Findings kept for a report written at the end (JSON, table, HTML); NDJSON alone keeps none.
    keep_findings: bool,
    report: AuditReport,
    /// Remediations by status, counted as rooms come (whether or not their findings are kept).
    remediations: std::collections::BTreeMap<String, u64>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// Writes `format` to `out`; `html` says whether the HTML page is wanted at the end (it needs the findings).
    pub fn new(format: Format, out: Box<dyn Write + Send>, html: bool) -> Reporter {
        Reporter {
            keep_findings: html || format != Format::Ndjson,
            format,
            out,
            report: AuditReport::default(),
            remediations: std::collections::BTreeMap::new(),
        }
    }

    /// A room is finished: NDJSON writes its findings and summary now (so an interrupted run has reported what it
    /// read), the other formats keep them for the end.
    pub fn room(&mut self, summary: RoomSummary, findings: Vec<Finding>) -> std::io::Result<()> {
        for finding in &findings {
            if let Some(remediation) = &finding.remediation {
                *self
                    .remediations
                    .entry(remediation.status.clone())
                    .or_default() += 1;
            }
        }
        if self.format == Format::Ndjson {
            for finding in &findings {
                write_line(&mut self.out, "finding", finding)?;
            }
            write_line(&mut self.out, "room", &summary)?;
            self.out.flush()?;
        }
        if self.keep_findings {
            self.report.findings.extend(findings);
        }
        self.report.rooms.push(summary);
        Ok(())
    }

    /// The rooms reported so far.
    pub fn rooms(&self) -> &[RoomSummary] {
        &self.report.rooms
    }

    /// Remediations by status, of every room reported so far.
    pub fn remediations(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.remediations
    }

    /// Findings reported so far that nothing was done about (no remediation asked, a dry run, an action that failed
    /// or is not possible).
    pub fn remaining(&self) -> u64 {
        let findings: u64 = self.report.rooms.iter().map(|r| r.findings).sum();
        let settled = self.remediations.get("done").copied().unwrap_or(0)
            + self.remediations.get("already").copied().unwrap_or(0);
        findings.saturating_sub(settled)
    }

    /// The run ended: writes the totals (NDJSON) or the whole report, and returns it (rooms highest risk first,
    /// findings in the rooms' order) for the HTML page.
    pub fn finish(mut self, totals: Totals) -> std::io::Result<AuditReport> {
        self.report.totals = totals;
        self.report
            .rooms
            .sort_by(|a, b| b.risk.cmp(&a.risk).then_with(|| a.room_id.cmp(&b.room_id)));
        let order: std::collections::HashMap<&str, usize> = self
            .report
            .rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.room_id.as_str(), i))
            .collect();
        let mut findings = std::mem::take(&mut self.report.findings);
        findings.sort_by_key(|f| {
            (
                order.get(f.room_id.as_str()).copied().unwrap_or(usize::MAX),
                f.origin_server_ts.unwrap_or(0),
            )
        });
        self.report.findings = findings;
        match self.format {
            Format::Ndjson => write_line(&mut self.out, "totals", &self.report.totals)?,
            Format::Json => {
                serde_json::to_writer_pretty(&mut self.out, &self.report)?;
                self.out.write_all(b"\n")?;
            }
            Format::Table => self.out.write_all(table::render(&self.report).as_bytes())?,
        }
        self.out.flush()?;
        Ok(self.report)
    }
}

/// One NDJSON line: the value's fields, with `type` first.
fn write_line(
    out: &mut dyn Write,
    kind: &str,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let mut object = serde_json::Map::new();
    object.insert("type".into(), kind.into());
    if let serde_json::Value::Object(fields) = serde_json::to_value(value)? {
        object.extend(fields);
    }
    serde_json::to_writer(&mut *out, &object)?;
    out.write_all(b"\n")
}
