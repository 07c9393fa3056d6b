//! Criterion benchmarks of document extraction, per format (docx, xlsx, pptx, odt, rtf, html, text, zip), on
//! documents of about 100 KB, 1 MB, 10 MB and 20 MB (the file's size) generated here, plus a 100-page docx (the
//! target: under 200 ms). Office files are built with the `zip` crate's writer; the text is pseudo-random French
//! words, so that it compresses about as real prose does.
//!
//! Run: `cargo bench --bench documents` (`-- docx` for one format). Throughput is in bytes of the file.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark aborts on a broken fixture"
)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use roomguard_documents::{Format, Limits, extract};
use zip::write::SimpleFileOptions;

const WORDS: &[&str] = &[
    "le",
    "la",
    "les",
    "de",
    "des",
    "du",
    "un",
    "une",
    "et",
    "en",
    "pour",
    "dans",
    "sur",
    "avec",
    "par",
    "au",
    "réunion",
    "comité",
    "rapport",
    "mission",
    "budget",
    "programme",
    "direction",
    "service",
    "projet",
    "note",
    "sécurité",
    "système",
    "réseau",
    "opération",
    "analyse",
    "décision",
    "préfecture",
    "ministère",
    "état",
    "calendrier",
    "annexe",
    "document",
    "information",
    "protection",
    "accès",
    "données",
    "serveur",
    "équipe",
    "présente",
    "concerne",
    "prévoit",
    "indique",
    "relatif",
    "général",
    "national",
    "régional",
    "technique",
];

/// A deterministic stream of words.
struct Prose(u64);

impl Prose {
    fn word(&mut self) -> &'static str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        WORDS[(self.0 % WORDS.len() as u64) as usize]
    }

    fn sentence(&mut self, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word());
        }
        s
    }
}

fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn content_types() -> (String, Vec<u8>) {
    (
        "[Content_Types].xml".into(),
        br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#.to_vec(),
    )
}

/// Grows a document paragraph by paragraph until `build` gives a file of about `target` bytes (checked every
/// `step` paragraphs, doubling).
fn grow(target: usize, build: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut n = 16;
    loop {
        let file = build(n);
        if file.len() >= target {
            return file;
        }
        // Aim straight at the target from the measured size, with a little over.
        let next = (n as f64 * target as f64 / file.len().max(1) as f64 * 1.05) as usize;
        n = next.max(n * 2).min(n * 64).max(n + 1);
        if file.len() * 2 >= target {
            n = next.max(n / 2).max(17);
        }
    }
}

fn docx(paragraphs: usize) -> Vec<u8> {
    let mut prose = Prose(1);
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#,
    );
    for _ in 0..paragraphs {
        let (a, b, c) = (prose.sentence(4), prose.sentence(5), prose.sentence(4));
        write!(
            xml,
            r#"<w:p><w:pPr><w:pStyle w:val="Normal"/></w:pPr><w:r><w:t xml:space="preserve">{a} </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{b} </w:t></w:r><w:r><w:t>{c}.</w:t></w:r></w:p>"#
        )
        .unwrap();
    }
    xml.push_str("</w:body></w:document>");
    zip(&[
        content_types(),
        ("word/document.xml".into(), xml.into_bytes()),
    ])
}

fn xlsx(rows: usize) -> Vec<u8> {
    let mut prose = Prose(2);
    let mut strings =
        String::from(r#"<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#);
    let mut sheet = String::from(
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for r in 0..rows {
        write!(strings, "<si><t>{}</t></si>", prose.sentence(6)).unwrap();
        write!(
            sheet,
            r#"<row r="{n}"><c r="A{n}" t="s"><v>{r}</v></c><c r="B{n}"><v>{r}.5</v></c></row>"#,
            n = r + 1
        )
        .unwrap();
    }
    strings.push_str("</sst>");
    sheet.push_str("</sheetData></worksheet>");
    zip(&[
        content_types(),
        (
            "xl/workbook.xml".into(),
            br#"<workbook><sheets><sheet name="Feuille1"/></sheets></workbook>"#.to_vec(),
        ),
        ("xl/sharedStrings.xml".into(), strings.into_bytes()),
        ("xl/worksheets/sheet1.xml".into(), sheet.into_bytes()),
    ])
}

fn pptx(paragraphs: usize) -> Vec<u8> {
    let mut prose = Prose(3);
    let mut entries = vec![
        content_types(),
        (
            "ppt/presentation.xml".into(),
            b"<p:presentation xmlns:p=\"p\"/>".to_vec(),
        ),
    ];
    for slide in 0..paragraphs.div_ceil(20) {
        let mut xml =
            String::from(r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:txBody>"#);
        for _ in 0..20 {
            write!(
                xml,
                "<a:p><a:r><a:rPr lang=\"fr-FR\"/><a:t>{}</a:t></a:r></a:p>",
                prose.sentence(10)
            )
            .unwrap();
        }
        xml.push_str("</p:txBody></p:sp></p:spTree></p:cSld></p:sld>");
        entries.push((
            format!("ppt/slides/slide{}.xml", slide + 1),
            xml.into_bytes(),
        ));
    }
    zip(&entries)
}

fn odt(paragraphs: usize) -> Vec<u8> {
    let mut prose = Prose(4);
    let mut xml = String::from(
        r#"<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>"#,
    );
    for _ in 0..paragraphs {
        write!(xml, r#"<text:p text:style-name="P1">{} <text:span text:style-name="T1">{}</text:span></text:p>"#, prose.sentence(6), prose.sentence(6)).unwrap();
    }
    xml.push_str("</office:text></office:body></office:document-content>");
    zip(&[
        (
            "mimetype".into(),
            b"application/vnd.oasis.opendocument.text".to_vec(),
        ),
        ("content.xml".into(), xml.into_bytes()),
    ])
}

fn rtf(target: usize) -> Vec<u8> {
    let mut prose = Prose(5);
    let mut rtf = String::from(r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0 Times;}}\pard ");
    while rtf.len() < target {
        let line = prose
            .sentence(12)
            .replace('é', r"\'e9")
            .replace('è', r"\'e8")
            .replace('à', r"\'e0");
        write!(rtf, r"{{\b {line}}} suite\par ").unwrap();
    }
    rtf.push('}');
    rtf.into_bytes()
}

fn html(target: usize) -> Vec<u8> {
    let mut prose = Prose(6);
    let mut html = String::from("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>");
    while html.len() < target {
        writeln!(
            html,
            "<p>{} <b>{}</b></p>",
            prose.sentence(8),
            prose.sentence(4)
        )
        .unwrap();
    }
    html.push_str("</body></html>");
    html.into_bytes()
}

fn text(target: usize) -> Vec<u8> {
    let mut prose = Prose(7);
    let mut text = String::new();
    while text.len() < target {
        text.push_str(&prose.sentence(12));
        text.push('\n');
    }
    text.into_bytes()
}

fn archive(target: usize) -> Vec<u8> {
    grow(target, |entries| {
        let files: Vec<_> = (0..entries.div_ceil(8))
            .map(|i| (format!("dossier/note{i}.txt"), text(8 * 1024)))
            .collect();
        zip(&files)
    })
}

fn limits() -> Limits {
    Limits {
        max_text_chars: u64::MAX,
        max_uncompressed_bytes: 4 * 1024 * 1024 * 1024,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(3600),
        ocr: roomguard_documents::OcrLimits::default(),
    }
}

/// Builds a document of about the given size.
type Build = dyn Fn(usize) -> Vec<u8>;

fn bench(c: &mut Criterion) {
    let sizes = [
        ("100KB", 100_000),
        ("1MB", 1_000_000),
        ("10MB", 10_000_000),
        ("20MB", 20_000_000),
    ];
    let formats: [(&str, Format, &Build); 8] = [
        ("docx", Format::Docx, &|t| grow(t, docx)),
        ("xlsx", Format::Xlsx, &|t| grow(t, xlsx)),
        ("pptx", Format::Pptx, &|t| grow(t, pptx)),
        ("odt", Format::Odt, &|t| grow(t, odt)),
        ("rtf", Format::Rtf, &rtf),
        ("html", Format::Html, &html),
        ("text", Format::Text, &text),
        ("zip", Format::Zip, &archive),
    ];
    let limits = limits();
    {
        // A 100-page report: 100 pages of 40 paragraphs of 13 words in three runs.
        let file = docx(4000);
        assert_eq!(extract(&file, false, &limits).format, Format::Docx);
        let mut group = c.benchmark_group("docx_100_pages");
        group.throughput(Throughput::Bytes(file.len() as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{}KB", file.len() / 1000)),
            |b| b.iter(|| extract(black_box(&file), false, &limits)),
        );
        group.finish();
    }
    for (name, format, build) in formats {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (label, target) in sizes {
            let file = build(target);
            let scan = extract(&file, false, &limits);
            assert_eq!(scan.format, format, "{name} {label}");
            assert_eq!(scan.incomplete, None, "{name} {label}");
            group.throughput(Throughput::Bytes(file.len() as u64));
            group.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| extract(black_box(&file), false, &limits))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
