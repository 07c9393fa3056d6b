//! Criterion benchmarks of OCR per scanned page: the stamp's bands (top and bottom 22 % of the page, what every page
//! gets first) against the whole page in one recognition, and the middle that the second pass reads; plus a whole
//! upload (`extract`: decoding, bands, middle) of the stamped page as PNG and JPEG. The pages are the committed
//! fixtures of `tests/fixtures/media/scan/` (A4 memo, 150 and 300 dpi). Needs Tesseract (`tesseract-ocr`,
//! `tesseract-ocr-fra`); `OMP_THREAD_LIMIT=1` comes from `.cargo/config.toml`, as the binary sets it.
//!
//! Run: `cargo bench --bench ocr` (`-- 300dpi` for one resolution).

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

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use roomguard_documents::{Limits, OcrLimits, extract, ocr_availability, recognize_gray};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/fixtures/media/scan/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The page in gray, as the scan gives it to Tesseract.
fn gray(name: &str) -> (Vec<u8>, u32, u32) {
    let page = image::load_from_memory(&fixture(name))
        .unwrap()
        .into_luma8();
    let (width, height) = page.dimensions();
    (page.into_raw(), width, height)
}

fn limits() -> Limits {
    Limits {
        max_text_chars: u64::MAX,
        max_uncompressed_bytes: 1 << 30,
        max_nesting: 3,
        deadline: Instant::now() + Duration::from_secs(3600),
        ocr: OcrLimits {
            timeout: Duration::from_secs(3600),
            ..OcrLimits::default()
        },
    }
}

fn bench(c: &mut Criterion) {
    if let Err(why) = ocr_availability() {
        panic!(
            "the OCR benchmark needs Tesseract ({why}): apt-get install tesseract-ocr tesseract-ocr-fra"
        );
    }
    let far = || Instant::now() + Duration::from_secs(3600);
    let mut group = c.benchmark_group("ocr");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for dpi in ["150dpi", "300dpi"] {
        let (pixels, width, height) = gray(&format!("stamped-{dpi}.png"));
        let rows = |from: f64, to: f64| {
            let (top, bottom) = (
                (f64::from(height) * from) as usize,
                (f64::from(height) * to) as usize,
            );
            (
                pixels[top * width as usize..bottom * width as usize].to_vec(),
                (bottom - top) as u32,
            )
        };
        let (top, top_height) = rows(0.0, 0.22);
        let (bottom, bottom_height) = rows(0.78, 1.0);
        let (middle, middle_height) = rows(0.20, 0.80);
        let stamp = recognize_gray(&top, width, top_height, far()).unwrap();
        assert!(stamp.contains("DIFFUSION RESTREINTE"), "{stamp}");
        group.bench_function(format!("{dpi}/bands"), |b| {
            b.iter(|| {
                recognize_gray(black_box(&top), width, top_height, far()).unwrap();
                recognize_gray(black_box(&bottom), width, bottom_height, far()).unwrap();
            })
        });
        group.bench_function(format!("{dpi}/middle"), |b| {
            b.iter(|| recognize_gray(black_box(&middle), width, middle_height, far()).unwrap())
        });
        group.bench_function(format!("{dpi}/whole-page"), |b| {
            b.iter(|| recognize_gray(black_box(&pixels), width, height, far()).unwrap())
        });
        for extension in ["png", "jpg"] {
            let file = fixture(&format!("stamped-{dpi}.{extension}"));
            group.bench_function(format!("{dpi}/upload-{extension}"), |b| {
                b.iter(|| {
                    let scan = extract(black_box(&file), false, &limits());
                    assert_eq!(scan.ocr_pages, 1);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
