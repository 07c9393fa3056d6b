//! The PDF reader against the committed fixtures (`tests/fixtures/media/make_pdfs.py`) and hostile files built here.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::{Extraction, Format, Incomplete, Limits};

fn limits() -> Limits {
    Limits {
        max_text_chars: 1_000_000,
        max_uncompressed_bytes: 64 << 20,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(30),
        ocr: crate::OcrLimits::default(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/media/pdf/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn extract(bytes: &[u8], limits: &Limits) -> Extraction {
    crate::formats::scan_as(bytes, Format::Pdf, false, limits)
}

fn read(name: &str) -> Extraction {
    extract(&fixture(name), &limits())
}

/// Every line of every passage, whitespace collapsed.
fn lines(extraction: &Extraction) -> Vec<String> {
    extraction
        .passages
        .iter()
        .flat_map(|p| p.as_str().lines())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn banner_lines(extraction: &Extraction) -> usize {
    lines(extraction)
        .iter()
        .filter(|l| *l == "DIFFUSION RESTREINTE")
        .count()
}

/// A PDF writer for hostile files: objects in order, a valid xref.
fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut s = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    s.extend_from_slice(data);
    s.extend_from_slice(b"\nendstream");
    s
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

/// One page whose content stream is `content` (Flate-compressed), Helvetica as /F1.
fn one_page(content: &[u8]) -> Vec<u8> {
    pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
            .to_vec(),
        stream("/Filter /FlateDecode", &deflate(content)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ])
}

/// The banner of a reportlab report (Flate-compressed pages) is read on every page, on its own line.
#[test]
fn stamped_report_reads_the_banner_of_every_page() {
    let e = read("stamped.pdf");
    assert_eq!(e.incomplete, None);
    assert_eq!(banner_lines(&e), 3);
    assert!(lines(&e).iter().any(|l| l == "Page 3: quarterly report"));
}

/// A banner drawn as two text objects on one baseline is one line, with or without a space in the first half.
#[test]
fn split_banner_is_joined_on_one_line() {
    let e = read("split-banner.pdf");
    assert_eq!(banner_lines(&e), 2, "{:?}", lines(&e));
}

/// In a TJ array, small adjustments join letters and a large negative one is a word space.
#[test]
fn kerning_arrays_join_letters_and_space_words() {
    let l = lines(&read("kerning.pdf"));
    assert_eq!(
        l[..3],
        ["DIFFUSION RESTREINTE", "Meeting minutes", "Valid until"]
    );
}

/// /Differences glyph names, MacRoman, `'` and `"`, and ASCII85+Flate and ASCIIHex content streams all read.
#[test]
fn encodings_and_filters() {
    let e = read("encodings.pdf");
    let l = lines(&e);
    for expected in [
        "DIFFUSION RESTREINTE",
        "Café crème",
        "second line",
        "third line",
        "ascii85 and flate page",
        "asciihex page",
    ] {
        assert!(l.iter().any(|x| x == expected), "{expected} not in {l:?}");
    }
    assert_eq!(e.incomplete, None);
}

/// Text inside a Form XObject is read where the page draws it; a form that draws itself is not followed.
#[test]
fn form_xobjects_are_read_once_without_cycles() {
    let e = read("form-xobject.pdf");
    assert_eq!(banner_lines(&e), 1);
    assert!(lines(&e).iter().any(|l| l == "Body of the page."));
}

/// Embedded TrueType subsets read: reportlab's simple-font subset, fpdf2's Identity-H with ToUnicode, LibreOffice's.
#[test]
fn embedded_font_subsets_read_through_to_unicode() {
    for name in [
        "truetype-subset.pdf",
        "truetype-identity.pdf",
        "libreoffice.pdf",
    ] {
        let e = read(name);
        assert_eq!(banner_lines(&e), 1, "{name}: {:?}", lines(&e));
        assert_eq!(e.incomplete, None, "{name}");
    }
    assert!(
        lines(&read("truetype-identity.pdf"))
            .iter()
            .any(|l| l.contains("Réunion du comité."))
    );
    assert!(
        lines(&read("libreoffice.pdf"))
            .iter()
            .any(|l| l == "Œuvre, naïveté, « guillemets », 10 €.")
    );
}

/// Title, Subject and Keywords are each a passage of their own; the body does not carry the marking.
#[test]
fn properties_are_passages_of_their_own() {
    let e = read("properties-only.pdf");
    let passages: Vec<&str> = e.passages.iter().map(|p| p.as_str().trim()).collect();
    assert!(
        passages.contains(&"Note — DIFFUSION RESTREINTE"),
        "{passages:?}"
    );
    assert!(passages.contains(&"Subject: diffusion restreinte"));
    assert!(passages.contains(&"budget, DR, DIFFUSION RESTREINTE"));
    assert!(!passages.last().is_some_and(|p| p.contains("DIFFUSION")));
}

/// A UTF-16BE title with a byte order mark and a PDFDocEncoding subject decode.
#[test]
fn info_strings_in_utf16_and_pdfdoc() {
    let e = read("utf16-info.pdf");
    let passages: Vec<&str> = e.passages.iter().map(|p| p.as_str().trim()).collect();
    assert!(
        passages.contains(&"Note – DIFFUSION RESTREINTE"),
        "{passages:?}"
    );
    assert!(passages.contains(&"Sujet (réunion)"));
}

/// A file that needs a user password ends the scan `encrypted`.
#[test]
fn user_password_is_encrypted() {
    let e = read("encrypted-user.pdf");
    assert_eq!(e.incomplete, Some(Incomplete::Encrypted));
    assert_eq!(banner_lines(&e), 0);
}

/// Files encrypted with the empty user password (RC4, AES-128, AES-256) are read like clear ones.
#[test]
fn owner_only_encryption_is_read() {
    for name in [
        "encrypted-owner-only.pdf",
        "encrypted-owner-only-rc4.pdf",
        "encrypted-owner-only-aes256.pdf",
    ] {
        let e = read(name);
        assert_eq!(e.incomplete, None, "{name}");
        assert_eq!(banner_lines(&e), 1, "{name}");
        assert!(
            lines(&e).iter().any(|l| l == "Encrypted note"),
            "{name}: the title is decrypted too"
        );
    }
}

/// A report cut in half reads its first page and is noted `corrupt`.
#[test]
fn truncated_file_reads_its_first_pages() {
    let e = read("truncated.pdf");
    assert_eq!(e.incomplete, Some(Incomplete::Corrupt));
    assert!(banner_lines(&e) >= 1);
    assert!(lines(&e).iter().any(|l| l == "Page 1: quarterly report"));
    // Cut at media.max_bytes by the caller: said as a size limit.
    let cut = crate::formats::scan_as(&fixture("truncated.pdf"), Format::Pdf, true, &limits());
    assert_eq!(cut.incomplete, Some(Incomplete::SizeLimit));
}

/// An ordinary document reads completely and carries no marking.
#[test]
fn clean_document() {
    let e = read("clean.pdf");
    assert_eq!(e.incomplete, None);
    assert!(!lines(&e).iter().any(|l| l.contains("DIFFUSION")));
    assert!(
        lines(&e)
            .iter()
            .any(|l| l == "The committee recommends renewing the maintenance contract.")
    );
}

/// A small stream inflating to far more than the budget stops at the budget with `size_limit`, quickly, keeping the
/// text read before it.
#[test]
fn flate_bomb_stops_at_the_budget() {
    let mut content = b"BT /F1 12 Tf 72 700 Td (DIFFUSION RESTREINTE) Tj ET\n".to_vec();
    content.resize(64 << 20, b' ');
    let bytes = one_page(&content);
    assert!(bytes.len() < 1 << 20);
    let limits = Limits {
        max_uncompressed_bytes: 4 << 20,
        ..limits()
    };
    let started = Instant::now();
    let e = extract(&bytes, &limits);
    assert_eq!(e.incomplete, Some(Incomplete::SizeLimit));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A deadline that passes while pages are read ends the scan with `time_limit`, keeping what was read.
#[test]
fn deadline_ends_the_scan() {
    let past = Limits {
        deadline: Instant::now(),
        ..limits()
    };
    assert_eq!(
        extract(&fixture("stamped.pdf"), &past).incomplete,
        Some(Incomplete::TimeLimit)
    );
    let line = b"BT /F1 9 Tf 40 800 Td (quarterly review of the northern depots) Tj ET\n";
    let content: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 200_000)
        .collect();
    let soon = Limits {
        deadline: Instant::now() + Duration::from_millis(50),
        ..limits()
    };
    let e = extract(&one_page(&content), &soon);
    assert_eq!(e.incomplete, Some(Incomplete::TimeLimit));
}

/// Text past `media.max_text_chars` ends the scan with `size_limit`.
#[test]
fn text_limit() {
    let small = Limits {
        max_text_chars: 10,
        ..limits()
    };
    assert_eq!(
        extract(&fixture("stamped.pdf"), &small).incomplete,
        Some(Incomplete::SizeLimit)
    );
}

/// A page tree that points to itself and a reference chain that loops end; deep nesting is malformed, not fatal.
#[test]
fn cycles_and_nesting_end() {
    let looping = pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Resources 4 0 R /Contents 5 0 R >>".to_vec(),
        b"4 0 R".to_vec(),
        stream("", b"BT (looped) Tj ET"),
    ]);
    assert!(
        lines(&extract(&looping, &limits()))
            .iter()
            .any(|l| l == "looped")
    );
    let mut deep = b"<< /Type /Catalog /X ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 1_000_000));
    let e = extract(&pdf(&[deep]), &limits());
    assert_eq!(e.incomplete, Some(Incomplete::Corrupt));
}

/// Random bit flips, truncations and splices of every fixture: always an answer, never a panic or a hang.
#[test]
fn mutated_fixtures_never_panic() {
    let dir = format!(
        "{}/../../tests/fixtures/media/pdf",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pdf"))
        .collect();
    names.sort();
    let files: Vec<Vec<u8>> = names.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let rounds: usize = std::env::var("PDF_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    let mut runs = 0;
    for round in 0..rounds {
        for (i, original) in files.iter().enumerate() {
            let mut bytes = original.clone();
            match round % 3 {
                0 => {
                    for _ in 0..1 + next(8) {
                        let at = next(bytes.len());
                        bytes[at] ^= 1 << next(8);
                    }
                }
                1 => bytes.truncate(next(bytes.len())),
                _ => {
                    let other = &files[next(files.len())];
                    let (at, from) = (next(bytes.len()), next(other.len()));
                    bytes.splice(at..at, other[from..].iter().take(next(4096)).copied());
                }
            }
            let started = Instant::now();
            let limits = Limits {
                deadline: Instant::now() + Duration::from_secs(5),
                ..limits()
            };
            let _ = extract(&bytes, &limits);
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "{:?} round {round}",
                names[i]
            );
            runs += 1;
        }
    }
    eprintln!("{runs} mutated inputs");
}

/// A 10 MB text-heavy document reads completely (run alone under `/usr/bin/time -v` for peak memory:
/// `cargo test --release --lib ten_megabytes -- --ignored --nocapture`).
#[test]
#[ignore = "measurement: 10 MB generated and read"]
fn ten_megabytes() {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        Vec::new(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    let words = [
        "logistics",
        "depot",
        "quarterly",
        "review",
        "ledger",
        "committee",
        "contract",
        "budget",
    ];
    let (mut seed, mut size, mut kids) = (42u64, 0usize, Vec::new());
    while size < 10 << 20 {
        let mut content = b"BT /F1 9 Tf 11 TL 40 800 Td\n".to_vec();
        for _ in 0..70 {
            content.push(b'(');
            for _ in 0..12 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                content.extend_from_slice(words[(seed >> 33) as usize % words.len()].as_bytes());
                content.push(b' ');
            }
            content.extend_from_slice(b") Tj T*\n");
        }
        content.extend_from_slice(b"ET\n");
        let data = deflate(&content);
        size += data.len() + 200;
        objects.push(stream("/Filter /FlateDecode", &data));
        objects.push(
            format!("<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>", objects.len())
                .into_bytes(),
        );
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        kids.len()
    )
    .into_bytes();
    let bytes = pdf(&objects);
    let limits = Limits {
        max_text_chars: u64::MAX,
        max_uncompressed_bytes: 1 << 30,
        ..limits()
    };
    let started = Instant::now();
    let e = extract(&bytes, &limits);
    eprintln!(
        "{} bytes, {} pages, {} chars in {:?}",
        bytes.len(),
        kids.len(),
        e.text_chars,
        started.elapsed()
    );
    assert_eq!(e.incomplete, None);
}

// === Reading order: lines rebuilt from positions, not from the order text is drawn in ===

/// The advance of `text` in Helvetica at `size`, as the reader measures it.
fn helvetica_width(text: &str, size: f32) -> f32 {
    text.chars()
        .map(|c| f32::from(super::metrics::HELVETICA[c as usize - 0x20]) / 1000.0 * size)
        .sum()
}

/// A page of `content` with /F1 (Helvetica) and extra page entries (`/Rotate 90`).
fn page_with(content: &[u8], page_entries: &str) -> Vec<u8> {
    pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] {page_entries} \
             /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
        )
        .into_bytes(),
        stream("", content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ])
}

fn page_lines(content: &[u8]) -> Vec<String> {
    lines(&extract(&one_page(content), &limits()))
}

/// Words of one line drawn right before left read left to right: `RESTREINTE` drawn first at x=300, then
/// `DIFFUSION` at x=72 on the same baseline.
#[test]
fn words_drawn_out_of_order_read_left_to_right() {
    let l = page_lines(
        b"BT /F1 11 Tf 72 700 Td (Compte rendu de la reunion.) Tj ET\n\
          BT /F1 16 Tf 300 780 Td (RESTREINTE) Tj ET\n\
          BT /F1 16 Tf 72 780 Td (DIFFUSION) Tj ET\n\
          BT /F1 11 Tf 72 680 Td (Ordre du jour.) Tj ET\n",
    );
    assert_eq!(
        l,
        [
            "DIFFUSION RESTREINTE",
            "Compte rendu de la reunion.",
            "Ordre du jour."
        ]
    );
}

/// A banner drawn one glyph at a time from its last letter to its first, each glyph placed by its own `Tm`, reads as
/// written, its word space found in the gap between the glyphs.
#[test]
fn glyphs_drawn_right_to_left_read_left_to_right() {
    let mut placed = Vec::new();
    let mut x = 150.0;
    for c in "DIFFUSION RESTREINTE".chars() {
        placed.push((c, x));
        x += helvetica_width(&c.to_string(), 18.0);
    }
    let mut content = b"BT /F1 18 Tf\n".to_vec();
    for (c, x) in placed.iter().rev().filter(|(c, _)| *c != ' ') {
        content.extend_from_slice(format!("1 0 0 1 {x:.2} 800 Tm ({c}) Tj\n").as_bytes());
    }
    content.extend_from_slice(b"ET\nBT /F1 11 Tf 72 760 Td (Body text.) Tj ET\n");
    assert_eq!(page_lines(&content), ["DIFFUSION RESTREINTE", "Body text."]);
}

/// Lines drawn from the bottom of the page up, and a banner drawn last at the top, read from the top down.
#[test]
fn lines_drawn_bottom_up_read_top_down() {
    let mut content = Vec::new();
    for (i, line) in ["First line.", "Second line.", "Third line."]
        .iter()
        .enumerate()
        .rev()
    {
        let y = 700 - 14 * i;
        content.extend_from_slice(format!("BT /F1 11 Tf 72 {y} Td ({line}) Tj ET\n").as_bytes());
    }
    content.extend_from_slice(b"BT /F1 14 Tf 72 800 Td (DIFFUSION RESTREINTE) Tj ET\n");
    assert_eq!(
        page_lines(&content),
        [
            "DIFFUSION RESTREINTE",
            "First line.",
            "Second line.",
            "Third line."
        ]
    );
}

/// Two columns drawn line by line across the page (left line, right line, next left line...) read column by column,
/// and a banner centred over both columns, drawn last, stays one line at the top.
#[test]
fn columns_read_one_after_the_other_under_a_banner() {
    let mut content = Vec::new();
    for i in 1..=6 {
        let y = 760 - 14 * i;
        content.extend_from_slice(
            format!(
                "BT /F1 11 Tf 72 {y} Td (Left column, line {i} of the report.) Tj ET\n\
                 BT /F1 11 Tf 320 {y} Td (Right column, line {i} of the report.) Tj ET\n"
            )
            .as_bytes(),
        );
    }
    content.extend_from_slice(b"BT /F1 14 Tf 220 800 Td (DIFFUSION RESTREINTE) Tj ET\n");
    let mut expected = vec!["DIFFUSION RESTREINTE".to_owned()];
    expected.extend((1..=6).map(|i| format!("Left column, line {i} of the report.")));
    expected.extend((1..=6).map(|i| format!("Right column, line {i} of the report.")));
    assert_eq!(page_lines(&content), expected);
}

/// A form's labels and values, drawn labels first, read row by row: cells side by side are not columns of text.
#[test]
fn table_cells_read_row_by_row() {
    let rows = [
        ("Objet :", "Inspection des depots"),
        ("Date :", "12 mars"),
        ("Niveau :", "SECRET"),
    ];
    let mut content = Vec::new();
    for (i, (label, _)) in rows.iter().enumerate() {
        let y = 760 - 16 * i;
        content.extend_from_slice(format!("BT /F1 11 Tf 72 {y} Td ({label}) Tj ET\n").as_bytes());
    }
    for (i, (_, value)) in rows.iter().enumerate() {
        let y = 760 - 16 * i;
        content.extend_from_slice(format!("BT /F1 11 Tf 200 {y} Td ({value}) Tj ET\n").as_bytes());
    }
    assert_eq!(
        page_lines(&content),
        [
            "Objet : Inspection des depots",
            "Date : 12 mars",
            "Niveau : SECRET"
        ]
    );
}

/// A word drawn twice a fraction of a point apart (a shadow, a bold faked by overprinting) is read once: `SECRET`
/// stays alone on its line, as a banner stands.
#[test]
fn overprinted_text_is_read_once() {
    let l = page_lines(
        b"BT /F1 20 Tf 250 800 Td (SECRET) Tj ET\n\
          BT /F1 20 Tf 250.6 800.4 Td (SECRET) Tj ET\n\
          BT /F1 11 Tf 72 760 Td (Body text.) Tj ET\n",
    );
    assert_eq!(l, ["SECRET", "Body text."]);
}

/// On a page shown turned a quarter (`/Rotate 90`, text drawn upwards), lines drawn in any order read in the order
/// the turned page shows them, and a banner whose halves are drawn out of order is one line.
#[test]
fn rotated_page_reads_in_its_own_frame() {
    let content = b"BT /F1 11 Tf 0 1 -1 0 140 72 Tm (Third line.) Tj ET\n\
          BT /F1 11 Tf 0 1 -1 0 126 72 Tm (Second line.) Tj ET\n\
          BT /F1 11 Tf 0 1 -1 0 112 72 Tm (First line.) Tj ET\n\
          BT /F1 14 Tf 0 1 -1 0 80 250 Tm (RESTREINTE) Tj ET\n\
          BT /F1 14 Tf 0 1 -1 0 80 72 Tm (DIFFUSION) Tj ET\n";
    let e = extract(&page_with(content, "/Rotate 90"), &limits());
    assert_eq!(
        lines(&e),
        [
            "DIFFUSION RESTREINTE",
            "First line.",
            "Second line.",
            "Third line."
        ]
    );
}

/// A page of 60,000 glyphs scattered over it is laid out in bounded time: ordering by position never goes quadratic.
#[test]
fn scattered_glyphs_are_laid_out_quickly() {
    let mut content = b"BT /F1 6 Tf\n".to_vec();
    let mut seed = 7u64;
    for _ in 0..60_000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let (x, y) = ((seed >> 40) % 550, (seed >> 20) % 800);
        content.extend_from_slice(format!("1 0 0 1 {x} {y} Tm (x) Tj\n").as_bytes());
    }
    content.extend_from_slice(b"ET\n");
    let started = Instant::now();
    let e = extract(&one_page(&content), &limits());
    assert_eq!(e.incomplete, None);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// === Files attached inside a PDF, the outline and comments ===

/// The names of files inside the scanned one, as the scan reports them.
fn names(extraction: &Extraction) -> Vec<&str> {
    extraction
        .passages
        .iter()
        .filter_map(|p| match p {
            crate::Passage::Name(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

const CLEAN_PAGE: &[u8] = b"BT /F1 11 Tf 72 760 Td (Nothing to see on this page.) Tj ET";

/// A one-page clean document whose catalog carries `catalog_entries`, followed by `extra` objects (numbered from 6).
fn with_catalog(catalog_entries: &str, page_entries: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut objects = vec![
        format!("<< /Type /Catalog /Pages 2 0 R {catalog_entries} >>").into_bytes(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] {page_entries} \
             /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
        )
        .into_bytes(),
        stream("", CLEAN_PAGE),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    objects.extend_from_slice(extra);
    pdf(&objects)
}

/// An embedded file stream holding `data`, Flate-compressed as producers write them.
fn embedded(data: &[u8]) -> Vec<u8> {
    stream(
        &format!(
            "/Type /EmbeddedFile /Subtype /text#2Fplain /Filter /FlateDecode /Params << /Size {} >>",
            data.len()
        ),
        &deflate(data),
    )
}

const MARKED_NOTE: &[u8] = b"Objet : inspection\nDIFFUSION RESTREINTE\nRien d'autre.";

/// The `/EmbeddedFiles` name tree, through `/Kids` down to its `/Names` leaves: each file is read as an upload of
/// its own, its name (`/UF`, Unicode) reported as a file's name and its description read.
#[test]
fn embedded_files_are_read_through_the_name_tree() {
    let bytes = with_catalog(
        "/Names << /EmbeddedFiles 6 0 R >>",
        "",
        &[
            b"<< /Kids [7 0 R] >>".to_vec(),
            b"<< /Limits [(a) (z)] /Names [(note.txt) 8 0 R (annexe.txt) 10 0 R] >>".to_vec(),
            b"<< /Type /Filespec /F (note.txt) /UF <FEFF006E006F00740065002E007400780074> /EF << /F 9 0 R >> \
               /Desc (Note jointe au compte rendu) >>"
                .to_vec(),
            embedded(MARKED_NOTE),
            b"<< /Type /Filespec /F (annexe.txt) /EF << /F 11 0 R >> >>".to_vec(),
            embedded(b"Annexe : calendrier."),
        ],
    );
    let e = extract(&bytes, &limits());
    assert_eq!(e.incomplete, None);
    assert_eq!(banner_lines(&e), 1, "{:?}", lines(&e));
    assert_eq!(names(&e), ["note.txt", "annexe.txt"]);
    let l = lines(&e);
    assert!(l.iter().any(|l| l == "Note jointe au compte rendu"));
    assert!(l.iter().any(|l| l == "Annexe : calendrier."));
}

/// A file attached only to a page's `/FileAttachment` annotation (as Acrobat attaches a file as a comment) is read.
#[test]
fn a_file_attached_to_an_annotation_is_read() {
    let bytes = with_catalog(
        "",
        "/Annots [6 0 R]",
        &[
            b"<< /Type /Annot /Subtype /FileAttachment /Rect [72 700 90 720] /Name /PushPin \
               /FS << /Type /Filespec /F (compte-rendu.txt) /EF << /F 7 0 R >> >> >>"
                .to_vec(),
            embedded(MARKED_NOTE),
        ],
    );
    let e = extract(&bytes, &limits());
    assert_eq!(banner_lines(&e), 1, "{:?}", lines(&e));
    assert_eq!(names(&e), ["compte-rendu.txt"]);
}

/// An attachment's name is read like an archive entry's: a clean file named `note_DR.txt` is reported by its name.
#[test]
fn an_attachment_name_is_a_file_name() {
    let bytes = with_catalog(
        "/Names << /EmbeddedFiles << /Names [(note_DR.txt) 6 0 R] >> >>",
        "",
        &[
            b"<< /Type /Filespec /F (note_DR.txt) /EF << /F 7 0 R >> >>".to_vec(),
            embedded(b"Ordre du jour."),
        ],
    );
    assert_eq!(names(&extract(&bytes, &limits())), ["note_DR.txt"]);
}

/// A file listed in the name tree and attached to an annotation too is read once.
#[test]
fn a_file_reached_twice_is_read_once() {
    let bytes = with_catalog(
        "/Names << /EmbeddedFiles << /Names [(note.txt) 7 0 R] >> >>",
        "/Annots [6 0 R]",
        &[
            b"<< /Type /Annot /Subtype /FileAttachment /Rect [72 700 90 720] /FS 7 0 R >>".to_vec(),
            b"<< /Type /Filespec /F (note.txt) /EF << /F 8 0 R /UF 8 0 R >> >>".to_vec(),
            embedded(MARKED_NOTE),
        ],
    );
    let e = extract(&bytes, &limits());
    assert_eq!(banner_lines(&e), 1);
    assert_eq!(names(&e), ["note.txt"]);
}

/// A portfolio (`/Collection`) is a cover page and embedded files: a PDF inside it is read as a PDF, and an embedded
/// file no tree reaches (an associated file, a damaged tree) is still read.
#[test]
fn portfolio_and_unreached_embedded_files() {
    let inner = one_page(b"BT /F1 14 Tf 72 800 Td (DIFFUSION RESTREINTE) Tj ET");
    let bytes = with_catalog(
        "/Collection << /Type /Collection /View /D >> /Names << /EmbeddedFiles << /Names [(rapport.pdf) 6 0 R] >> >>",
        "",
        &[
            b"<< /Type /Filespec /F (rapport.pdf) /UF (rapport.pdf) /EF << /F 7 0 R >> >>".to_vec(),
            stream("/Type /EmbeddedFile /Subtype /application#2Fpdf", &inner),
            b"<< /Type /Filespec /F (orphan.txt) /EF << /F 9 0 R >> >>".to_vec(),
            embedded(b"Orphan file, SECRET DEFENSE"),
        ],
    );
    let e = extract(&bytes, &limits());
    assert_eq!(banner_lines(&e), 1, "{:?}", lines(&e));
    assert_eq!(names(&e), ["rapport.pdf", "orphan.txt"]);
    assert!(lines(&e).iter().any(|l| l == "Orphan file, SECRET DEFENSE"));
}

/// Attachments count as one more level of nesting: past `media.max_nesting` they are named but not read, and the
/// scan says `nesting_limit`; a name tree that points to itself ends.
#[test]
fn attachments_respect_the_nesting_limit_and_cycles() {
    let bytes = with_catalog(
        "/Names << /EmbeddedFiles 6 0 R >>",
        "",
        &[
            b"<< /Kids [6 0 R 7 0 R] >>".to_vec(),
            b"<< /Kids [6 0 R] /Names [(note.txt) 8 0 R] >>".to_vec(),
            b"<< /Type /Filespec /F (note.txt) /EF << /F 9 0 R >> >>".to_vec(),
            embedded(MARKED_NOTE),
        ],
    );
    let e = extract(&bytes, &limits());
    assert_eq!(banner_lines(&e), 1);
    let flat = Limits {
        max_nesting: 0,
        ..limits()
    };
    let e = extract(&bytes, &flat);
    assert_eq!(banner_lines(&e), 0);
    assert_eq!(names(&e), ["note.txt"]);
    assert_eq!(e.incomplete, Some(Incomplete::NestingLimit));
}

/// An attachment inflating past the decompression budget stops the scan with `size_limit`.
#[test]
fn attachment_bomb_stops_at_the_budget() {
    let mut big = MARKED_NOTE.to_vec();
    big.resize(64 << 20, b' ');
    let bytes = with_catalog(
        "/Names << /EmbeddedFiles << /Names [(big.txt) 6 0 R] >> >>",
        "",
        &[
            b"<< /Type /Filespec /F (big.txt) /EF << /F 7 0 R >> >>".to_vec(),
            embedded(&big),
        ],
    );
    let small = Limits {
        max_uncompressed_bytes: 4 << 20,
        ..limits()
    };
    assert_eq!(
        extract(&bytes, &small).incomplete,
        Some(Incomplete::SizeLimit)
    );
}

/// The outline (bookmarks) is text a reader sees beside the pages: every title, nested ones too, each on its line.
#[test]
fn outline_titles_are_read() {
    let bytes = with_catalog(
        "/Outlines 6 0 R",
        "",
        &[
            b"<< /Type /Outlines /First 7 0 R /Last 8 0 R /Count 3 >>".to_vec(),
            b"<< /Title (Introduction) /Parent 6 0 R /Next 8 0 R /First 9 0 R /Last 9 0 R >>".to_vec(),
            b"<< /Title <FEFF0041006E006E00650078006500200043> /Parent 6 0 R /Prev 7 0 R /Next 7 0 R >>".to_vec(),
            b"<< /Title (DIFFUSION RESTREINTE) /Parent 7 0 R >>".to_vec(),
        ],
    );
    let l = lines(&extract(&bytes, &limits()));
    for title in ["Introduction", "DIFFUSION RESTREINTE", "Annexe C"] {
        assert_eq!(
            l.iter().filter(|l| *l == title).count(),
            1,
            "{title} in {l:?}"
        );
    }
}

/// A comment's title (`/T`, the author shown on its pop-up) and subject (`/Subj`) are read with its contents; a
/// form field's `/T` is its internal name, not shown, and is not.
#[test]
fn comment_titles_and_subjects_are_read() {
    let bytes = with_catalog(
        "",
        "/Annots [6 0 R 7 0 R]",
        &[
            b"<< /Type /Annot /Subtype /Text /Rect [72 700 90 720] /T (DIFFUSION RESTREINTE) \
               /Subj (Relecture) /Contents (A revoir.) >>"
                .to_vec(),
            b"<< /Type /Annot /Subtype /Widget /FT /Tx /Rect [72 600 200 620] /T (SECRET) >>"
                .to_vec(),
        ],
    );
    let l = lines(&extract(&bytes, &limits()));
    for text in ["DIFFUSION RESTREINTE", "Relecture", "A revoir."] {
        assert!(l.iter().any(|l| l == text), "{text} in {l:?}");
    }
    assert!(!l.iter().any(|l| l == "SECRET"), "{l:?}");
}

/// fpdf2's attachments pane: a Word document marked in its page header, attached to a clean page, is read as the
/// docx it is (its header too), after its name.
#[test]
fn attached_docx_fixture_is_read_as_a_docx() {
    let e = read("attached-docx.pdf");
    assert_eq!(e.incomplete, None);
    assert_eq!(names(&e), ["compte-rendu.docx"]);
    let name_at = e
        .passages
        .iter()
        .position(|p| p.as_str() == "compte-rendu.docx");
    let mark_at = e
        .passages
        .iter()
        .position(|p| p.as_str().contains("DIFFUSION RESTREINTE"));
    assert!(
        mark_at > name_at,
        "the page itself is clean: {:?}",
        lines(&e)
    );
    assert!(lines(&e).iter().any(|l| l == "Source du compte rendu"));
}

/// A text file attached as a comment only (Acrobat's file attachment annotation) is read.
#[test]
fn attachment_annotation_fixture_is_read() {
    let e = read("attachment-annotation.pdf");
    assert_eq!(e.incomplete, None);
    assert_eq!(names(&e), ["note.txt"]);
    assert_eq!(banner_lines(&e), 1, "{:?}", lines(&e));
}

/// fpdf2's bookmarks: a marking only in a section title of the outline is read.
#[test]
fn outline_fixture_is_read() {
    let e = read("outline.pdf");
    assert_eq!(e.incomplete, None);
    assert_eq!(banner_lines(&e), 1, "{:?}", lines(&e));
    assert!(lines(&e).iter().any(|l| l == "Compte rendu"));
}

/// The lines of the last passage (the pages, after the properties reportlab writes).
fn last_passage_lines(extraction: &Extraction) -> Vec<String> {
    extraction
        .passages
        .last()
        .map(|p| p.as_str().lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// reportlab, a banner drawn glyph by glyph from its end and body lines drawn bottom up: read as a reader sees it.
#[test]
fn reversed_banner_fixture_reads_in_order() {
    let l = last_passage_lines(&read("reversed-banner.pdf"));
    assert_eq!(
        l,
        [
            "DIFFUSION RESTREINTE",
            "The quarterly review covers the logistics of the northern depots.",
            "Deliveries arrived on schedule and the inventory matches the ledger.",
            "The committee recommends renewing the maintenance contract.",
        ]
    );
}

/// reportlab, two columns drawn a line of each at a time: the left column reads whole before the right one, so the
/// marking it wraps across two lines stays one phrase.
#[test]
fn two_columns_fixture_reads_column_by_column() {
    let l = last_passage_lines(&read("two-columns.pdf"));
    assert_eq!(l[0], "Compte rendu du comite");
    assert_eq!(l[2], "du comite. Ce document est classe DIFFUSION");
    assert_eq!(l[3], "RESTREINTE et ne doit pas etre transmis en");
    assert_eq!(l[5], "suivants ont ete abordes lors de la seance.");
    assert_eq!(l[6], "Les livraisons sont arrivees a temps et");
    assert_eq!(l.len(), 11);
}
