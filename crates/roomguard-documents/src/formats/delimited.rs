//! Delimited text (CSV, TSV): each cell is a line of its own, as a spreadsheet's cells are, so that a cell holding
//! only a marking is a banner even when other cells share its row (`2024-017;DR;Réunion budgétaire`: read as one
//! line of text, `DR` stands between two `;`, which set no banner apart).
//!
//! Decoded like plain text (`charset`); cells split by the `csv` crate (quoted cells keep their delimiters and line
//! breaks, `""` is a quote). Sniffing is conservative, so that prose stays text: the first lines must all have the
//! same number of cells, two or more, for one of `\t`, `;` (French Excel) or `,`.

use crate::reader::{Reader, Step};

use super::charset;

/// How much of a file sniffing looks at.
pub(crate) const SNIFF_WINDOW: usize = 16 * 1024;

/// Records compared when sniffing.
const SNIFF_RECORDS: usize = 32;

/// The delimiters recognised, in order of preference when several fit.
const DELIMITERS: [u8; 3] = [b'\t', b';', b','];

/// The delimiter of `head` (the start of a text file, `cut` when the file goes on) if it reads as delimited text:
/// at least two whole records, all with the same number of cells, two or more. When several delimiters fit, the one
/// giving the most cells wins (`;` over the decimal commas of French numbers).
pub(crate) fn delimiter(head: &str, cut: bool) -> Option<u8> {
    let mut best: Option<(u8, usize)> = None;
    for delimiter in DELIMITERS {
        if !head.as_bytes().contains(&delimiter) {
            continue;
        }
        let mut counts: Vec<usize> = csv_reader(head.as_bytes(), delimiter)
            .byte_records()
            .take(SNIFF_RECORDS + 1)
            .map_while(Result::ok)
            .map(|record| record.len())
            .collect();
        // The last record may be cut by the window.
        if cut || counts.len() > SNIFF_RECORDS {
            counts.pop();
        }
        let Some(&first) = counts.first() else {
            continue;
        };
        let consistent = counts.len() >= 2 && first >= 2 && counts.iter().all(|&n| n == first);
        if consistent && best.is_none_or(|(_, cells)| first > cells) {
            best = Some((delimiter, first));
        }
    }
    best.map(|(delimiter, _)| delimiter)
}

/// Reads delimited text: every non-empty cell, each of its lines a line.
pub(crate) fn read(reader: &mut Reader<'_>, bytes: &[u8]) -> Step {
    // Sniffing said delimited text; bytes that are not text (it cannot happen through `sniff`) have nothing to read.
    let Some(charset) = charset::detect(bytes) else {
        return Ok(());
    };
    let text = charset::decode(bytes, charset);
    let mut head_end = text.len().min(SNIFF_WINDOW);
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let delimiter = delimiter(&text[..head_end], head_end < text.len()).unwrap_or(b',');
    let mut record = csv::ByteRecord::new();
    let mut cells = csv_reader(text.as_bytes(), delimiter);
    // Text decoded to UTF-8 and no fixed record length: reading a record cannot fail.
    while cells.read_byte_record(&mut record).unwrap_or(false) {
        for cell in &record {
            for line in String::from_utf8_lossy(cell).lines() {
                if !line.trim().is_empty() {
                    reader.text(line)?;
                    reader.end_paragraph();
                }
            }
        }
        reader.tick()?;
    }
    Ok(())
}

fn csv_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{fixture, has_mark_line, lines, scan};

    /// French Excel's CSV (`;`, cp1252): a cell holding only the marking is a line of its own, a banner, though
    /// other cells share its row; a quoted cell keeps its `;`.
    #[test]
    fn a_marking_alone_in_a_cell_is_a_line() {
        let scan = scan(&fixture("csv/excel_fr_semicolon.csv"));
        assert_eq!(scan.format.as_str(), "csv");
        assert_eq!(scan.incomplete, None);
        let lines = lines(&scan);
        assert!(has_mark_line(&scan), "{lines:?}");
        assert!(lines.contains(&"Réunion budgétaire".to_owned()));
        assert!(lines.contains(&"Note d'organisation; version 2".to_owned()));
    }

    /// Excel's "CSV UTF-8" (`,`, a byte order mark): a quoted cell with a line break gives its lines.
    #[test]
    fn quoted_cell_with_a_line_break() {
        let scan = scan(&fixture("csv/quoted_line_break.csv"));
        assert_eq!(scan.format.as_str(), "csv");
        let lines = lines(&scan);
        assert_eq!(lines.first().map(String::as_str), Some("id"));
        assert!(lines.contains(&"Version 2, relue".to_owned()), "{lines:?}");
        assert!(has_mark_line(&scan));
    }

    /// Tab-separated cells: the abbreviation alone in its cell is a line.
    #[test]
    fn tab_separated() {
        let scan = scan(&fixture("csv/dr_cell.tsv"));
        assert_eq!(scan.format.as_str(), "csv");
        assert!(
            lines(&scan).contains(&"DR".to_owned()),
            "{:?}",
            lines(&scan)
        );
    }

    /// Prose stays text: commas that vary from line to line, a single line, a single column.
    #[test]
    fn prose_is_text() {
        let prose = "Bonjour Marie,\nVoici la note, relue et corrigée, pour jeudi.\nBien à vous.\n";
        assert_eq!(scan(prose.as_bytes()).format.as_str(), "text");
        assert_eq!(scan(b"a;b;c\n").format.as_str(), "text");
        assert_eq!(scan(b"un\ndeux\ntrois\n").format.as_str(), "text");
        assert_eq!(
            scan(b"Objet : budget\nLieu : Paris\n").format.as_str(),
            "text"
        );
    }
}
