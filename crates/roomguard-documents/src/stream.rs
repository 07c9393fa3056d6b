//! Reading an upload while it arrives: text is classified as it is extracted, the scan ends as soon as its watch
//! says the answer is certain, and memory does not grow with the file.
//!
//! Two ways, chosen from the first bytes:
//! - **forward** (plain text, HTML): the file is read in windows cut at line (tag) ends, each window once, and
//!   dropped; nothing of the file is kept but the window. A 50 MB text file holds a few hundred KiB.
//! - **head** (every other format): the bytes are kept, up to `head_bytes`, because these formats look back (a
//!   zip's central directory, a PDF's objects and fonts). While they arrive, the head is read again each time it
//!   has grown fourfold, or doubled while the sender pauses, up to 4 MiB: a truncated file is a case every reader
//!   handles, so a marking on the first pages is seen long before the end, for at most about 12 MiB of extra reading
//!   per file. The last reading is of the whole file, as if it had been buffered. A file longer than `head_bytes` is
//!   decided on its head (`size_limit`): the rest is not read.
//!
//! The scan stops early (`stopped_early`) only to spare waiting for the rest of a file: once the whole file has
//! arrived, it is read to its end even when the answer is already certain.
//!
//! Knows no protocol: the bytes come from a [`Feed`], the passages go to a [`Watch`].

use crate::{
    Extraction, Format, Incomplete, Limits,
    formats::{self, Forward},
    reader::{Reader, Stop, Watch},
};

/// Where the bytes of a file come from, as they arrive.
pub trait Feed {
    /// The next piece of the file, blocking until it comes; [`Next::End`] once no more will.
    fn next(&mut self) -> Next;

    /// Whether the next piece is already here (reading what came rather than waiting is then not worth it).
    fn pending(&self) -> bool;
}

/// What a [`Feed`] gives.
#[derive(Debug)]
pub enum Next {
    /// More bytes.
    Bytes(Vec<u8>),
    /// The file ended; `truncated` when it went on past `media.max_bytes` (the rest was not sent on).
    End {
        /// The file was cut at `media.max_bytes`.
        truncated: bool,
    },
}

/// The memory one scan may hold (`media.max_scan_memory_bytes`, split in two).
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Bytes of the file kept for the formats that look back.
    pub head_bytes: usize,
    /// Bytes one decompressed part may take.
    pub part_bytes: u64,
}

/// What a streamed scan read.
#[derive(Debug)]
pub struct Streamed {
    /// The format and what was read; its passages went to the watch.
    pub extraction: Extraction,
    /// Bytes taken from the feed.
    pub received: u64,
    /// The feed was read to its end (else the scan ended first: the rest was never asked for).
    pub fed_to_end: bool,
}

/// Bytes looked at before choosing how to read: enough for every sniffing rule (the largest window is 64 KiB).
const SNIFF_BYTES: usize = 64 * 1024;

/// The head is first read once this much has arrived, then each time it has grown this many times.
const FIRST_PROBE: usize = 64 * 1024;
const PROBE_GROWTH: usize = 4;

/// Past this, the head is not read again before the end: the early answer is for markings on the first pages, and
/// re-reading a large head would spend the time budget the final reading needs (a 30 MB PDF reads in about 2 s).
/// Readings of a head of this size add up to at most about 12 MiB of extra reading per file.
const LAST_PROBE: usize = 4 << 20;

/// A forward window is read once it holds this much, cut at its last line end.
const WINDOW_BYTES: usize = 256 * 1024;

/// Reads the file `feed` gives within `limits` and `memory`, handing its passages to `watch`.
pub fn scan(
    feed: &mut dyn Feed,
    limits: &Limits,
    memory: Memory,
    watch: &mut dyn Watch,
) -> Streamed {
    let mut input = Input {
        feed,
        received: 0,
        ended: None,
    };
    if watch.progress(None, 0).is_break() {
        // Certain before any byte (the file name alone): the feed is not read at all.
        let reader = Reader::new(limits);
        return Streamed {
            extraction: reader.finish(Format::Unknown, Some(Stop(Incomplete::StoppedEarly)), false),
            received: 0,
            fed_to_end: false,
        };
    }
    let mut head = Vec::new();
    while head.len() < SNIFF_BYTES && input.ended.is_none() {
        if let Some(bytes) = input.next() {
            head.extend_from_slice(&bytes);
        }
    }
    let format = formats::sniff(&head);
    if watch.progress(Some(format), input.received).is_break() && input.ended != Some(false) {
        // Certain once the format is known (a rule on it): nothing more is asked of the feed. (A file already here
        // whole is read all the same: see `Reader::read_to_end`.)
        let reader = Reader::new(limits);
        return Streamed {
            extraction: reader.finish(format, Some(Stop(Incomplete::StoppedEarly)), false),
            received: input.received,
            fed_to_end: input.ended.is_some(),
        };
    }
    match formats::forward(format, &head) {
        Some(forward) => read_forward(input, head, format, forward, limits, memory, watch),
        None => read_head(input, head, limits, memory, watch),
    }
}

/// The feed, with what came of it.
struct Input<'f> {
    feed: &'f mut dyn Feed,
    received: u64,
    /// `Some(truncated)` once the feed has ended.
    ended: Option<bool>,
}

impl Input<'_> {
    /// The next bytes, or `None` at the end.
    fn next(&mut self) -> Option<Vec<u8>> {
        if self.ended.is_some() {
            return None;
        }
        match self.feed.next() {
            Next::Bytes(bytes) => {
                self.received += bytes.len() as u64;
                Some(bytes)
            }
            Next::End { truncated } => {
                self.ended = Some(truncated);
                None
            }
        }
    }

    fn truncated(&self) -> bool {
        self.ended == Some(true)
    }
}

/// Plain text and HTML: each window read once, then dropped.
fn read_forward(
    mut input: Input<'_>,
    mut window: Vec<u8>,
    format: Format,
    forward: Forward,
    limits: &Limits,
    memory: Memory,
    watch: &mut dyn Watch,
) -> Streamed {
    let mut reader = Reader::watched(limits, watch, memory.part_bytes);
    let mut stopped = reader.check_clock().err();
    while stopped.is_none() {
        let more = input.next();
        if let Some(bytes) = &more {
            window.extend_from_slice(bytes);
            // A full window is read; a smaller one too when nothing more is here yet (a sender that pauses is
            // answered on what it sent, not when it goes on).
            if window.len() < WINDOW_BYTES && input.feed.pending() {
                continue;
            }
        }
        if input.ended == Some(false) {
            reader.read_to_end();
        }
        // At the end the whole rest is read; before it, up to the last line end (or the whole window when a line
        // is longer than a window: a line cut in two is still read, as two).
        let cut = match more {
            None => window.len(),
            Some(_) => forward.cut(&window),
        };
        stopped = forward.read(&mut reader, &window[..cut]).err();
        window.drain(..cut);
        if more.is_none() {
            break;
        }
    }
    let received = input.received;
    let fed_to_end = input.ended.is_some();
    let truncated = input.truncated();
    let extraction = reader.finish(format, stopped, truncated);
    Streamed {
        extraction,
        received,
        fed_to_end,
    }
}

/// Every other format: the head kept and read again as it grows (up to [`LAST_PROBE`]), then read whole.
fn read_head(
    mut input: Input<'_>,
    mut head: Vec<u8>,
    limits: &Limits,
    memory: Memory,
    watch: &mut dyn Watch,
) -> Streamed {
    // A picture or a binary has no text to find before its end (a picture is read whole or not at all).
    let format = formats::sniff(&head);
    let worth_probing = format != Format::Unknown && !format.is_picture();
    let mut next_probe = FIRST_PROBE;
    let mut probed = 0;
    let mut over = false;
    while input.ended.is_none() {
        // Read again when the head has grown fourfold, or doubled while the sender pauses: either way the readings
        // add up to a few times one reading of the whole head.
        let pausing = !input.feed.pending() && head.len() >= probed.max(1) * 2;
        if worth_probing && head.len() <= LAST_PROBE && (head.len() >= next_probe || pausing) {
            probed = head.len();
            next_probe = head.len().saturating_mul(PROBE_GROWTH);
            let probe = read_once(&head, true, limits, memory, watch);
            if matches!(
                probe.incomplete,
                Some(Incomplete::StoppedEarly | Incomplete::TimeLimit)
            ) {
                return Streamed {
                    extraction: probe,
                    received: input.received,
                    fed_to_end: false,
                };
            }
        }
        let Some(bytes) = input.next() else { break };
        let room = memory.head_bytes.saturating_sub(head.len());
        if bytes.len() > room {
            head.extend_from_slice(&bytes[..room]);
            // What was read is the head: the rest of this chunk is dropped unread.
            input.received -= (bytes.len() - room) as u64;
            over = true;
            break;
        }
        head.extend_from_slice(&bytes);
    }
    let truncated = over || input.truncated();
    let mut extraction = read_once(&head, truncated, limits, memory, watch);
    if over {
        // Past the head, the file is not read: say so, whatever the head's reading found.
        extraction.incomplete = match extraction.incomplete {
            None | Some(Incomplete::Corrupt) => Some(Incomplete::SizeLimit),
            other => other,
        };
    }
    Streamed {
        extraction,
        received: input.received,
        fed_to_end: input.ended.is_some(),
    }
}

/// One reading of the head (the file so far, `truncated` when more of it exists).
fn read_once(
    head: &[u8],
    truncated: bool,
    limits: &Limits,
    memory: Memory,
    watch: &mut dyn Watch,
) -> Extraction {
    let format = formats::sniff(head);
    let mut reader = Reader::watched(limits, watch, memory.part_bytes);
    if !truncated {
        reader.read_to_end();
    }
    let stopped = match reader.check_clock() {
        Ok(()) => formats::read(&mut reader, format, head).err(),
        Err(stop) => Some(stop),
    };
    // The last passage is handed over now, so that a marking in it ends the reading of a file still arriving.
    reader.close_passage();
    let stopped =
        stopped.or((truncated && reader.decided()).then_some(Stop(Incomplete::StoppedEarly)));
    reader.finish(format, stopped, truncated)
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::Passage;

    const MARK: &str = "DIFFUSION RESTREINTE";

    /// Gives a file in chunks, counting how many were asked for.
    struct Chunks {
        chunks: std::vec::IntoIter<Vec<u8>>,
        asked: usize,
        truncated: bool,
    }

    impl Chunks {
        fn of(bytes: &[u8], chunk: usize) -> Self {
            Chunks {
                chunks: bytes
                    .chunks(chunk)
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
                    .into_iter(),
                asked: 0,
                truncated: false,
            }
        }
    }

    impl Feed for Chunks {
        fn pending(&self) -> bool {
            true
        }

        fn next(&mut self) -> Next {
            self.asked += 1;
            match self.chunks.next() {
                Some(bytes) => Next::Bytes(bytes),
                None => Next::End {
                    truncated: self.truncated,
                },
            }
        }
    }

    /// Decides as soon as a passage holds the marking (what the policy's watch does with the classifier).
    #[derive(Default)]
    struct Stamp {
        seen: Vec<String>,
        format: Option<Format>,
        received: u64,
        stop_on_mark: bool,
    }

    impl Watch for Stamp {
        fn progress(&mut self, format: Option<Format>, received: u64) -> ControlFlow<()> {
            self.format = format;
            self.received = received;
            ControlFlow::Continue(())
        }
        fn passage(&mut self, passage: &Passage) -> ControlFlow<()> {
            self.seen.push(passage.as_str().to_owned());
            if self.stop_on_mark && passage.as_str().contains(MARK) {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }

    fn limits() -> Limits {
        Limits {
            max_text_chars: 100_000_000,
            max_uncompressed_bytes: 1 << 30,
            max_nesting: 4,
            deadline: Instant::now() + Duration::from_secs(60),
            ocr: crate::OcrLimits::default(),
        }
    }

    const MEMORY: Memory = Memory {
        head_bytes: 4 << 20,
        part_bytes: 4 << 20,
    };

    fn big_text(first_line: &str, bytes: usize) -> Vec<u8> {
        let mut text = format!("{first_line}\n").into_bytes();
        while text.len() < bytes {
            text.extend_from_slice(
                b"Compte rendu de la reunion de service, rien de particulier.\n",
            );
        }
        text
    }

    /// A marking on the first line of a long text file ends the scan within its first window: the rest of the
    /// file is never asked for.
    #[test]
    fn a_marked_text_file_is_decided_on_its_first_window() {
        let file = big_text(MARK, 20 << 20);
        let mut feed = Chunks::of(&file, 64 * 1024);
        let mut watch = Stamp {
            stop_on_mark: true,
            ..Stamp::default()
        };
        let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
        assert_eq!(
            streamed.extraction.incomplete,
            Some(Incomplete::StoppedEarly)
        );
        assert!(!streamed.fed_to_end);
        assert!(streamed.received <= 2 * WINDOW_BYTES as u64);
        assert!(feed.asked < 10, "asked for {} chunks", feed.asked);
    }

    /// A text file far larger than the head is read to its end, every line once, in order.
    #[test]
    fn a_long_text_file_is_read_forward_whole() {
        let mut file = big_text("Objet : reunion", 12 << 20);
        file.extend_from_slice(format!("{MARK}\n").as_bytes());
        let mut feed = Chunks::of(&file, 60_000);
        let mut watch = Stamp::default();
        let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
        assert_eq!(streamed.extraction.format, Format::Text);
        assert_eq!(streamed.extraction.incomplete, None);
        assert!(streamed.fed_to_end);
        assert_eq!(streamed.received, file.len() as u64);
        assert!(watch.seen.iter().any(|p| p.lines().any(|l| l == MARK)));
        let lines: usize = watch.seen.iter().map(|p| p.lines().count()).sum();
        assert_eq!(lines, file.iter().filter(|&&b| b == b'\n').count());
        assert!(
            streamed.extraction.passages.is_empty(),
            "the watch has them"
        );
    }

    /// A line cut between two chunks is one line.
    #[test]
    fn a_line_across_chunks_is_one_line() {
        let file = format!("Objet : reunion\n{MARK}\nfin\n").into_bytes();
        let mut feed = Chunks::of(&file, 7);
        let mut watch = Stamp::default();
        scan(&mut feed, &limits(), MEMORY, &mut watch);
        let text: String = watch.seen.concat();
        assert!(text.lines().any(|l| l == MARK), "{text:?}");
    }

    /// An HTML file is read forward too, its markup cut between tags.
    #[test]
    fn html_is_read_forward() {
        let mut file = b"<!DOCTYPE html><html><body>".to_vec();
        while file.len() < 6 << 20 {
            file.extend_from_slice(b"<p>Ordre du jour de la reunion.</p>\n");
        }
        file.extend_from_slice(format!("<p>{MARK}</p></body></html>").as_bytes());
        let mut feed = Chunks::of(&file, 64 * 1024);
        let mut watch = Stamp::default();
        let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
        assert_eq!(streamed.extraction.format, Format::Html);
        assert_eq!(streamed.extraction.incomplete, None);
        assert!(watch.seen.iter().any(|p| p.contains(MARK)));
    }

    /// A format that looks back (here RTF) is read on its head while it arrives: a marking at its start ends the
    /// scan long before the end of the file.
    #[test]
    fn a_marking_at_the_start_of_a_head_format_ends_the_scan_early() {
        let mut file = format!("{{\\rtf1\\ansi {{\\pard {MARK}\\par}}").into_bytes();
        while file.len() < 3 << 20 {
            file.extend_from_slice(b"{\\pard Texte ordinaire du compte rendu.\\par}\n");
        }
        file.extend_from_slice(b"}");
        let mut feed = Chunks::of(&file, 16 * 1024);
        let mut watch = Stamp {
            stop_on_mark: true,
            ..Stamp::default()
        };
        let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
        assert_eq!(streamed.extraction.format, Format::Rtf);
        assert_eq!(
            streamed.extraction.incomplete,
            Some(Incomplete::StoppedEarly)
        );
        assert!(streamed.received < 256 * 1024, "{}", streamed.received);
    }

    /// Once the whole file is here there is nothing left to wait for: a certain answer does not stop the reading,
    /// which ends complete and sees what comes after the first marking.
    #[test]
    fn a_file_already_here_whole_is_read_to_its_end_though_certain() {
        let head =
            format!("{{\\rtf1\\ansi {{\\pard {MARK}\\par}}{{\\pard fin\\par}}}}").into_bytes();
        let text = format!("{MARK}\nObjet\nfin\n").into_bytes();
        for (file, format) in [(head, Format::Rtf), (text, Format::Text)] {
            let mut feed = Chunks::of(&file, 64 * 1024);
            let mut watch = Stamp {
                stop_on_mark: true,
                ..Stamp::default()
            };
            let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
            assert_eq!(streamed.extraction.format, format);
            assert_eq!(streamed.extraction.incomplete, None, "{format:?}");
            assert!(streamed.fed_to_end);
            assert!(
                watch.seen.concat().contains("fin"),
                "{format:?}: {:?}",
                watch.seen
            );
        }
    }

    /// A file longer than the head is read on its head, and said to be so.
    #[test]
    fn a_head_format_past_the_head_is_decided_on_it() {
        let mut file = format!("{{\\rtf1\\ansi {{\\pard {MARK}\\par}}").into_bytes();
        while file.len() < 3 << 20 {
            file.extend_from_slice(b"{\\pard Texte ordinaire.\\par}\n");
        }
        let memory = Memory {
            head_bytes: 1 << 20,
            part_bytes: 1 << 20,
        };
        let mut feed = Chunks::of(&file, 64 * 1024);
        let mut watch = Stamp::default();
        let streamed = scan(&mut feed, &limits(), memory, &mut watch);
        assert_eq!(streamed.extraction.incomplete, Some(Incomplete::SizeLimit));
        assert!(!streamed.fed_to_end);
        assert_eq!(streamed.received, 1 << 20, "what was read is the head");
        assert!(watch.seen.iter().any(|p| p.contains(MARK)));
    }

    /// A small file of a head format reads as the whole-file reading does.
    #[test]
    fn a_small_file_reads_as_a_buffered_one() {
        let file =
            format!("{{\\rtf1\\ansi {{\\pard Objet\\par}}{{\\pard {MARK}\\par}}}}").into_bytes();
        let mut feed = Chunks::of(&file, 5);
        let mut watch = Stamp::default();
        let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
        let whole = crate::extract(&file, false, &limits());
        assert_eq!(streamed.extraction.format, whole.format);
        assert_eq!(streamed.extraction.incomplete, whole.incomplete);
        assert_eq!(streamed.extraction.text_chars, whole.text_chars);
        let whole_text: Vec<&str> = whole.passages.iter().map(Passage::as_str).collect();
        assert_eq!(watch.seen, whole_text);
    }

    /// A file cut at `media.max_bytes` by the caller is reported as such.
    #[test]
    fn a_truncated_feed_is_a_size_limit() {
        let file = big_text("Objet", 100_000);
        let mut feed = Chunks::of(&file, 10_000);
        feed.truncated = true;
        let mut watch = Stamp::default();
        let streamed = scan(&mut feed, &limits(), MEMORY, &mut watch);
        assert_eq!(streamed.extraction.incomplete, Some(Incomplete::SizeLimit));
    }
}
