//! Hostile variants of every fixture under `tests/fixtures/media/` (bit flips, inserted and deleted bytes,
//! truncation, splices of two files, duplicated ranges) must each get an answer: no panic, within the deadline
//! (plus a small margin for the last step), and never more text than `max_text_chars`.
//!
//! Deterministic (a fixed-seed generator), so a failure names an input that can be rebuilt.
//! `ROOMGUARD_FUZZ_ITERATIONS=N` sets the mutations per fixture (default keeps a debug run well under a minute).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roomguard::documents::{Limits, OcrLimits, extract};

/// Mutations per fixture by default.
const DEFAULT_ITERATIONS: usize = 250;

/// The scans under `scan/` get this fraction of the mutations: they are megapixel pictures, each mutation decoded and
/// read with OCR, a tenth of a second or more in a debug build (250 each took the test from under a minute to five).
const SCAN_SHARE: usize = 25;
/// Scans larger than this (the 300 dpi pages, seconds to decode in a debug build) are not mutated: their 150 dpi
/// versions go through the same decoders.
const MAX_SCAN_BYTES: usize = 200 * 1024;

/// OCR time per mutated file: this test looks for decoders that crash or hang, and Tesseract reads any pixels.
const OCR_TIMEOUT: Duration = Duration::from_millis(50);

/// The deadline of each scan, and the margin allowed past it: wide, because this test looks for hangs (a reader
/// that stops checking the clock), not for speed, and a shared machine can preempt a thread for seconds.
const DEADLINE: Duration = Duration::from_millis(500);
const MARGIN: Duration = Duration::from_secs(10);

const MAX_TEXT_CHARS: u64 = 20_000;

/// xorshift64*: small, deterministic, good enough to choose mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn fixtures(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            fixtures(&path, found);
        } else if !matches!(path.extension().and_then(|e| e.to_str()), Some("py" | "md")) {
            found.push(path);
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let insert: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, insert);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let n = (1 + rng.below(64)).min(len - at);
                bytes.drain(at..at + n);
            }
            3 => bytes.truncate(rng.below(len + 1)),
            4 => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[from..]);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = (1 + rng.below(4096)).min(len - at);
                let copy = bytes[at..at + n].to_vec();
                let to = rng.below(len + 1);
                bytes.splice(to..to, copy);
            }
            _ if len > 0 => {
                // Overwrite a little-endian size or offset field with an extreme value.
                let at = rng.below(len);
                let value = [0u32, 1, 0x7FFF_FFFF, 0xFFFF_FFFF][rng.below(4)].to_le_bytes();
                for (i, b) in value.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            _ => {}
        }
    }
    bytes
}

/// Every mutation of every fixture gets an answer within the deadline, with at most `max_text_chars` of text.
#[test]
fn mutated_fixtures_get_an_answer() {
    let iterations = std::env::var("ROOMGUARD_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let mut paths = Vec::new();
    fixtures(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/media"),
        &mut paths,
    );
    assert!(!paths.is_empty(), "no fixtures found");
    let files: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let mut rng = Rng(0x005E_ED0F_F022);
    let mut inputs = 0u64;
    for (index, (path, input)) in paths.iter().zip(&files).enumerate() {
        let iterations = if path.parent().is_some_and(|dir| dir.ends_with("scan")) {
            if input.len() > MAX_SCAN_BYTES {
                0
            } else {
                iterations.div_ceil(SCAN_SHARE)
            }
        } else {
            iterations
        };
        for iteration in 0..iterations {
            let other = &files[(index + 1 + iteration) % files.len()];
            let mutated = mutate(&mut rng, input, other);
            let limits = Limits {
                max_text_chars: MAX_TEXT_CHARS,
                max_uncompressed_bytes: 8 * 1024 * 1024,
                max_nesting: 3,
                deadline: Instant::now() + DEADLINE,
                ocr: OcrLimits {
                    timeout: OCR_TIMEOUT,
                    ..OcrLimits::default()
                },
            };
            let started = Instant::now();
            let scan = extract(&mutated, rng.below(4) == 0, &limits);
            let took = started.elapsed();
            assert!(
                took <= DEADLINE + MARGIN,
                "{} iteration {iteration}: {took:?}",
                path.display()
            );
            assert!(
                scan.text_chars <= MAX_TEXT_CHARS,
                "{} iteration {iteration}",
                path.display()
            );
            let chars: usize = scan
                .passages
                .iter()
                .map(|p| p.as_str().chars().filter(|c| *c != '\n').count())
                .sum();
            assert!(
                chars as u64 <= MAX_TEXT_CHARS,
                "{} iteration {iteration}",
                path.display()
            );
            inputs += 1;
        }
    }
    println!("{inputs} mutated inputs from {} fixtures", paths.len());
}
