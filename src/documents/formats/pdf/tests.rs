//! The PDF reader against the committed fixtures (`tests/fixtures/media/make_pdfs.py`) and hostile files built here.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::documents::{Extraction, Format, Incomplete, Limits};

fn limits() -> Limits {
    Limits {
        max_text_chars: 1_000_000,
        max_uncompressed_bytes: 64 << 20,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(30),
        ocr: crate::documents::OcrLimits::default(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/media/pdf/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn extract(bytes: &[u8], limits: &Limits) -> Extraction {
    crate::documents::formats::scan_as(bytes, Format::Pdf, false, limits)
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
    let cut =
        crate::documents::formats::scan_as(&fixture("truncated.pdf"), Format::Pdf, true, &limits());
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
    let dir = format!("{}/tests/fixtures/media/pdf", env!("CARGO_MANIFEST_DIR"));
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
