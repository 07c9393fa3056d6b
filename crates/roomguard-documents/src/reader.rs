//! The one place every extractor writes its text through, holding the limits of one scan.
//!
//! Extractors return [`Step`]: `Err(Stop(reason))` ends the whole scan at once (a limit reached, the file found
//! encrypted or broken), and everything already written is kept. Problems that leave the rest readable (one broken
//! entry in an archive, one undecodable stream) are [`Reader::note`]d and the scan goes on.

use std::{ops::ControlFlow, time::Instant};

use super::Format;
use super::ocr_settings::{OcrLimits, OcrTally};

/// The limits of one scan (`[media]` in the configuration; `media.max_bytes` is applied by whoever reads the file).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Characters of text kept for classification.
    pub max_text_chars: u64,
    /// Bytes produced by decompression (zip entries, Flate streams), across the whole file.
    pub max_uncompressed_bytes: u64,
    /// Containers inside containers (a zip in a zip, a document embedded in a document).
    pub max_nesting: u32,
    /// When the scan must end, whatever it has read.
    pub deadline: Instant,
    /// Reading pictures with OCR (`media.ocr*`).
    pub ocr: OcrLimits,
}

/// Why the text could not all be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Incomplete {
    /// Password-protected: the content is ciphertext.
    Encrypted,
    /// Truncated or malformed.
    Corrupt,
    /// The file, its text or its decompressed content went past a size limit.
    SizeLimit,
    /// The scan ran out of time.
    TimeLimit,
    /// Containers nested deeper than the limit.
    NestingLimit,
    /// A part in a form roomguard does not read (a compression method, a font encoding, ...).
    Unsupported,
    /// The caller's answer was certain before the file was all read (a marking its rules deny on): the rest was
    /// not read.
    StoppedEarly,
}

impl Incomplete {
    /// Every reason.
    pub const ALL: [Incomplete; 7] = [
        Incomplete::Encrypted,
        Incomplete::Corrupt,
        Incomplete::SizeLimit,
        Incomplete::TimeLimit,
        Incomplete::NestingLimit,
        Incomplete::Unsupported,
        Incomplete::StoppedEarly,
    ];

    /// The name in `MediaScan.incomplete_reason`, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Incomplete::Encrypted => "encrypted",
            Incomplete::Corrupt => "corrupt",
            Incomplete::SizeLimit => "size_limit",
            Incomplete::TimeLimit => "time_limit",
            Incomplete::NestingLimit => "nesting_limit",
            Incomplete::Unsupported => "unsupported",
            Incomplete::StoppedEarly => "stopped_early",
        }
    }
}

/// A piece of a document's text, classified on its own: a run of paragraphs (one per line), a property, HTML
/// (rendered by the classifier's own HTML reading, shown and hidden text alike), or the name of a file inside this
/// one (read like a file name: `DR_note.docx` in an archive counts as the upload's own name would).
#[derive(Clone, PartialEq, Eq)]
pub enum Passage {
    /// Text, one paragraph per line.
    Text(String),
    /// An HTML document or fragment.
    Html(String),
    /// The name of a file inside this one (an archive entry).
    Name(String),
}

impl Passage {
    /// The passage's text.
    pub fn as_str(&self) -> &str {
        match self {
            Passage::Text(s) | Passage::Html(s) | Passage::Name(s) => s,
        }
    }
}

/// Never the text: a `{:?}` in a log line must not leak a document.
impl std::fmt::Debug for Passage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Passage::Text(s) => write!(f, "Text({} bytes)", s.len()),
            Passage::Html(s) => write!(f, "Html({} bytes)", s.len()),
            Passage::Name(s) => write!(f, "Name({} bytes)", s.len()),
        }
    }
}

/// Told each passage as soon as it is read, so that text is classified while the file is still arriving and the
/// scan ends as soon as the answer is certain. A watched reader keeps no passage: the watch has seen them all.
pub trait Watch {
    /// The file's format (`None` before its first bytes are read, then from them) and how many of its bytes have
    /// arrived. [`ControlFlow::Break`] ends the scan before it reads (more).
    fn progress(&mut self, format: Option<Format>, received: u64) -> ControlFlow<()>;
    /// A passage was read: [`ControlFlow::Break`] ends the scan (`stopped_early`).
    fn passage(&mut self, passage: &Passage) -> ControlFlow<()>;
}

/// What a scan read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    /// The format, from the content.
    pub format: Format,
    /// The text, in passages.
    pub passages: Vec<Passage>,
    /// Characters of text extracted.
    pub text_chars: u64,
    /// `None` when everything was read; otherwise why not.
    pub incomplete: Option<Incomplete>,
    /// Pages (and image files) read with OCR.
    pub ocr_pages: u32,
    /// Characters of the text that came from OCR (part of `text_chars`).
    pub ocr_chars: u64,
}

/// Ends a scan: the reason is the scan's [`Extraction::incomplete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop(pub Incomplete);

/// What extractors return: go on, or stop the whole scan.
pub type Step<T = ()> = Result<T, Stop>;

/// A passage is closed at the first paragraph break past this size, so no single text handed to the classifier
/// grows with the document.
const PASSAGE_BYTES: usize = 64 * 1024;

/// How many [`Reader::tick`]s between two looks at the clock.
const TICKS_PER_CLOCK: u32 = 256;

/// The state of one scan: the text so far and what is left of each limit.
pub struct Reader<'l> {
    limits: &'l Limits,
    /// Where passages go as they are read; `None` keeps them in `passages`.
    watch: Option<&'l mut dyn Watch>,
    /// The watch said the answer is certain: the next step stops the scan.
    decided: bool,
    /// The whole file is here: a certain answer does not end the reading (see [`Reader::read_to_end`]).
    to_end: bool,
    /// The most one decompressed part (an archive entry, a stream) may take, within what is left of
    /// `max_uncompressed_bytes`: what bounds a scan's memory.
    part_cap: u64,
    passages: Vec<Passage>,
    current: String,
    chars: u64,
    uncompressed: u64,
    depth: u32,
    ticks: u32,
    incomplete: Option<Incomplete>,
    ocr: OcrTally,
}

/// Never the text (see [`Passage`]'s `Debug`), nor the watch.
impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("passages", &self.passages.len())
            .field("chars", &self.chars)
            .field("uncompressed", &self.uncompressed)
            .field("depth", &self.depth)
            .field("watched", &self.watch.is_some())
            .field("decided", &self.decided)
            .field("incomplete", &self.incomplete)
            .finish()
    }
}

impl<'l> Reader<'l> {
    /// A reader for one scan within `limits`.
    pub(crate) fn new(limits: &'l Limits) -> Self {
        Reader {
            limits,
            watch: None,
            decided: false,
            to_end: false,
            part_cap: u64::MAX,
            passages: Vec::new(),
            current: String::new(),
            chars: 0,
            uncompressed: 0,
            depth: 0,
            ticks: 0,
            incomplete: None,
            ocr: OcrTally::default(),
        }
    }

    /// A reader for one scan within `limits` that hands every passage to `watch` rather than keep it, and whose
    /// decompressed parts take at most `part_cap` bytes each.
    pub(crate) fn watched(limits: &'l Limits, watch: &'l mut dyn Watch, part_cap: u64) -> Self {
        Reader {
            watch: Some(watch),
            part_cap,
            ..Reader::new(limits)
        }
    }

    /// The whole file has arrived: read it to its end even once the watch is certain. Stopping early saves
    /// waiting for the rest of a file; with nothing left to wait for, the rest costs a little reading, and it may
    /// hold a more sensitive marking (the decision names the most sensitive one) or make the scan complete.
    pub(crate) fn read_to_end(&mut self) {
        self.to_end = true;
    }

    /// Whether the watch ended the scan.
    pub(crate) fn decided(&self) -> bool {
        self.decided
    }

    /// What the scan of a file of `format` read, given how it ended (`stopped`) and whether the file was cut at
    /// `media.max_bytes` (`truncated`).
    pub(crate) fn finish(
        mut self,
        format: Format,
        stopped: Option<Stop>,
        truncated: bool,
    ) -> Extraction {
        self.close_passage();
        let found = stopped.map(|Stop(reason)| reason).or(self.incomplete);
        // A file cut at `media.max_bytes` looks broken at its end: say why it was cut, not what the cut did.
        let incomplete = match found {
            None | Some(Incomplete::Corrupt) if truncated => Some(Incomplete::SizeLimit),
            other => other,
        };
        Extraction {
            format,
            passages: self.passages,
            text_chars: self.chars,
            incomplete,
            ocr_pages: self.ocr.pages,
            ocr_chars: self.ocr.chars,
        }
    }

    /// Appends text to the current paragraph, up to `media.max_text_chars`.
    pub fn text(&mut self, text: &str) -> Step {
        let left = self.limits.max_text_chars.saturating_sub(self.chars);
        let mut taken = 0u64;
        let mut end = text.len();
        for (at, _) in text.char_indices() {
            if taken == left {
                end = at;
                break;
            }
            taken += 1;
        }
        self.current.push_str(&text[..end]);
        self.chars += taken;
        if end < text.len() {
            return Err(Stop(Incomplete::SizeLimit));
        }
        self.tick()
    }

    /// Ends the current paragraph (a line break for the classifier, whose banners are read line by line).
    pub fn end_paragraph(&mut self) {
        if !self.current.is_empty() && !self.current.ends_with('\n') {
            self.current.push('\n');
        }
        if self.current.len() >= PASSAGE_BYTES {
            self.close_passage();
        }
    }

    /// Ends the current passage: what follows (another part of the document, a property) is classified apart.
    pub fn close_passage(&mut self) {
        if !self.current.trim().is_empty() {
            let text = std::mem::take(&mut self.current);
            self.push(Passage::Text(text));
        }
        self.current.clear();
    }

    /// Keeps a passage, or hands it to the watch (which may end the scan: the next step stops it).
    fn push(&mut self, passage: Passage) {
        match self.watch.as_deref_mut() {
            None => self.passages.push(passage),
            Some(watch) => {
                if watch.passage(&passage).is_break() && !self.to_end {
                    self.decided = true;
                }
                // The buffer is reused for the next passage: a watched scan holds one passage at a time.
                if let Passage::Text(mut text) = passage {
                    text.clear();
                    if self.current.capacity() < text.capacity() {
                        self.current = text;
                    }
                }
            }
        }
    }

    /// Adds an HTML document or fragment as a passage of its own, up to `media.max_text_chars` characters.
    pub fn html(&mut self, html: &str) -> Step {
        self.close_passage();
        let left = self.limits.max_text_chars.saturating_sub(self.chars);
        let chars = html.chars().count() as u64;
        let (kept, stop) = if chars > left {
            let end = html
                .char_indices()
                .nth(usize::try_from(left).unwrap_or(usize::MAX))
                .map_or(html.len(), |(at, _)| at);
            (&html[..end], Err(Stop(Incomplete::SizeLimit)))
        } else {
            (html, Ok(()))
        };
        self.chars += chars.min(left);
        if !kept.trim().is_empty() {
            self.push(Passage::Html(kept.to_owned()));
        }
        stop?;
        self.tick()
    }

    /// Adds the name of a file inside this one (an archive entry), classified as a file name. Names count towards
    /// `media.max_text_chars` like text.
    pub fn name(&mut self, name: &str) -> Step {
        let left = self.limits.max_text_chars.saturating_sub(self.chars);
        let chars = name.chars().count() as u64;
        if chars > left {
            return Err(Stop(Incomplete::SizeLimit));
        }
        self.chars += chars;
        if !name.trim().is_empty() {
            self.push(Passage::Name(name.to_owned()));
        }
        self.tick()
    }

    /// Counts `bytes` produced by decompression against `media.max_uncompressed_bytes`.
    pub fn inflated(&mut self, bytes: u64) -> Step {
        self.uncompressed = self.uncompressed.saturating_add(bytes);
        if self.uncompressed > self.limits.max_uncompressed_bytes {
            return Err(Stop(Incomplete::SizeLimit));
        }
        // Inflating is the step whose cost the input does not bound (a bomb inflates a thousandfold): the clock is
        // read at every count, not every few ticks. A count is made per chunk of tens of KiB, whose inflating takes
        // tens of microseconds against the clock's tens of nanoseconds.
        self.check_clock()?;
        self.tick()
    }

    /// How many more bytes one decompressed part may take: what is left of `media.max_uncompressed_bytes`, and no
    /// more than a scan's share of memory for one part.
    pub fn inflate_budget(&self) -> u64 {
        self.limits
            .max_uncompressed_bytes
            .saturating_sub(self.uncompressed)
            .min(self.part_cap)
    }

    /// Goes one container deeper, for a file found inside this one (see `formats::nested`); `false`, with the scan
    /// noted `nesting_limit`, when that would pass `media.max_nesting`.
    pub(crate) fn enter_nested(&mut self) -> bool {
        if self.depth >= self.limits.max_nesting {
            self.note(Incomplete::NestingLimit);
            return false;
        }
        self.close_passage();
        self.depth += 1;
        true
    }

    /// Comes back from a file found inside this one.
    pub(crate) fn leave_nested(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.close_passage();
    }

    /// Records a problem that leaves the rest of the file readable; the first one is the scan's reason.
    pub fn note(&mut self, reason: Incomplete) {
        self.incomplete.get_or_insert(reason);
    }

    /// Called in every loop of an extractor: ends the scan with `time_limit` once the deadline has passed (the clock
    /// is read every few calls, so a tick costs next to nothing).
    pub fn tick(&mut self) -> Step {
        if self.decided {
            return Err(Stop(Incomplete::StoppedEarly));
        }
        self.ticks += 1;
        if self.ticks >= TICKS_PER_CLOCK {
            self.ticks = 0;
            return self.check_clock();
        }
        Ok(())
    }

    /// The limits of this scan.
    pub(crate) fn limits(&self) -> &'l Limits {
        self.limits
    }

    /// Characters of text written so far (a PDF page that adds almost none is a scanned one).
    pub(crate) fn text_chars(&self) -> u64 {
        self.chars
    }

    /// What OCR did in this scan so far.
    pub(crate) fn ocr_tally(&mut self) -> &mut OcrTally {
        &mut self.ocr
    }

    /// Ends the scan with `time_limit` if the deadline has passed (or `stopped_early` if the watch decided).
    pub fn check_clock(&self) -> Step {
        if self.decided {
            return Err(Stop(Incomplete::StoppedEarly));
        }
        if Instant::now() >= self.limits.deadline {
            return Err(Stop(Incomplete::TimeLimit));
        }
        Ok(())
    }
}
