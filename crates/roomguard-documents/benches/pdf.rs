//! Criterion benchmark of the PDF reader on text-heavy documents of about 100 KB, 1 MB, 10 MB and 20 MB, generated
//! here (pages of Helvetica lines, Flate-compressed, pseudo-random words so that they compress like prose).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-pdf cargo bench --bench pdf`. Throughput is reported in MB/s of file.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark aborts on a broken fixture"
)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roomguard_documents::{Limits, extract};

const WORDS: [&str; 20] = [
    "logistics",
    "depot",
    "quarterly",
    "review",
    "inventory",
    "ledger",
    "committee",
    "contract",
    "maintenance",
    "schedule",
    "northern",
    "delivery",
    "budget",
    "report",
    "minutes",
    "agenda",
    "diffusion",
    "restreinte",
    "analysis",
    "summary",
];

/// A text-heavy PDF of about `target` bytes.
fn text_heavy_pdf(target: usize) -> Vec<u8> {
    let mut seed: u64 = 42;
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        Vec::new(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    let mut kids = Vec::new();
    let mut size = 0;
    while size < target {
        let mut content = b"BT /F1 9 Tf 11 TL 40 800 Td\n".to_vec();
        for _ in 0..70 {
            content.push(b'(');
            for _ in 0..12 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                content.extend_from_slice(WORDS[(seed >> 33) as usize % WORDS.len()].as_bytes());
                content.push(b' ');
            }
            content.extend_from_slice(b") Tj T*\n");
        }
        content.extend_from_slice(b"ET\n");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&content).expect("deflate");
        let data = z.finish().expect("deflate");
        size += data.len() + 200;
        let mut s = format!(
            "<< /Length {} /Filter /FlateDecode >>\nstream\n",
            data.len()
        )
        .into_bytes();
        s.extend_from_slice(&data);
        s.extend_from_slice(b"\nendstream");
        objects.push(s);
        let content_id = objects.len();
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> \
                 /Contents {content_id} 0 R >>"
            )
            .into_bytes(),
        );
        kids.push(objects.len());
    }
    let kids: Vec<String> = kids.iter().map(|k| format!("{k} 0 R")).collect();
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        kids.len()
    )
    .into_bytes();
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

fn limits() -> Limits {
    Limits {
        max_text_chars: u64::MAX,
        max_uncompressed_bytes: 1 << 30,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(3600),
        ocr: roomguard_documents::OcrLimits::default(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pdf");
    group.sample_size(10);
    for (label, size) in [
        ("100KB", 100 << 10),
        ("1MB", 1 << 20),
        ("10MB", 10 << 20),
        ("20MB", 20 << 20),
    ] {
        let pdf = text_heavy_pdf(size);
        let limits = limits();
        let check = extract(&pdf, false, &limits);
        assert_eq!(check.format.as_str(), "pdf", "sniffing must find the PDF");
        assert_eq!(check.incomplete, None);
        group.throughput(Throughput::Bytes(pdf.len() as u64));
        group.bench_function(label, |b| {
            b.iter(|| extract(std::hint::black_box(&pdf), false, &limits))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
