//! Finds protection markings ("Diffusion Restreinte", "Spécial France", "Secret Défense", "RESTREINT UE", ...) in a
//! message and returns the label of the most sensitive one.
//!
//! Three kinds of marking text come from `markings.toml`:
//! - **phrases** are matched on the [skeleton](super::normalize::Skeleton) of the text, where no case, accent,
//!   separator, tag, invisible character, look-alike letter or digit-for-letter survives, so
//!   `d-i-f-f-u-s-i-o-n  R&eacute;str3inte` is still caught. A phrase of 12 letters or more counts anywhere, even
//!   glued to other words, and each of its words of 5 letters or more may carry one edit (a letter inserted,
//!   deleted or replaced inside the word, or two neighbours swapped: `Diffussion Restrainte`), since a reader
//!   still reads it as the marking. A shorter phrase (`secret UE`, `NATO secret`) is matched exactly, and only as
//!   whole words: `j'ai eu secrètement` is not `EU SECRET`;
//! - **banners** (`secret`, `très secret`) and **abbreviations** (`DR`) are ordinary words or a doctor's title in
//!   running text, so they count only where a banner stands and written as a banner is written: in capitals alone
//!   on a line (`SECRET`), in brackets (`[DR]`, `(SECRET)`), or at the start or end of a line next to a separator
//!   (`DR - compte rendu`, `Rapport | SECRET`), and as whole words in capitals in a file name (`note_DR.pdf`,
//!   `noteDR.pdf`). Brackets at the start or end of a line are banner enough for a banner in any case
//!   (`(Très secret) plan`); an abbreviation also counts in lowercase in brackets (`[dr]`) and in a file name
//!   written all in lowercase (`dr_note.pdf`). `Dr` is a doctor everywhere.
//!
//! The body, the HTML body (what it shows, and separately its comments and attribute values, which it does not show
//! but which anyone reading the room's history gets) and the file name are each classified as stored and, when a
//! right-to-left override makes them display otherwise, as displayed.
//!
//! Everything is built once per policy load (one Aho-Corasick automaton holding every phrase word and its one-edit
//! spellings, one map of banner terms); classifying is linear in the text's length with a small constant, whatever
//! its characters: folding is a table lookup per character and never more than doubles the text, the phrase
//! automaton reads each skeleton byte once, and banners are only looked for in bounded places (the ends of lines,
//! short brackets, short file-name parts).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use serde::Deserialize;

use crate::{
    documents::Passage,
    domain::message::Message,
    policy::{
        diagnostics::{Problem, line_of},
        engine::names::is_identifier,
    },
};

use super::gate::{GateBuilder, PhraseGate};
use super::names::{self, FILE_MSGTYPES};
use super::normalize::{
    CharKind, OTHER_LETTER, SENTENCE, SOFT, Skeleton, WORD_END, WORD_START, fold, fold_displayed,
    fold_stored_into, render_html, skeleton,
};

/// The file, inside the policy directory, that lists the markings.
pub const MARKINGS_FILE: &str = "markings.toml";

/// The label of a message with no marking.
pub const NO_MARKING: &str = "none";

/// Phrases with fewer letters than this are matched exactly and as whole words; longer ones anywhere, with one edit
/// per word.
pub const LONG_PHRASE: usize = 12;

/// Words of a long phrase with fewer letters than this are matched exactly: one edit to `UE`, `OTAN` or `top` makes
/// another word, not a misspelling.
pub const EDITABLE_WORD: usize = 5;

/// Skeletons shorter than this go straight to the phrase automaton: on a short message (`Bonjour à tous, la réunion
/// est déplacée à 15 h.`) one pass of the automaton costs less than the gate's search.
const GATED_SKELETON: usize = 64;

/// The letters a skeleton is written with (`l` is read as `i`).
const SKELETON_LETTERS: &[u8] = b"abcdefghijkmnopqrstuvwxyz";

/// Characters that separate a banner from the text beside it on the same line.
const BANNER_SEPARATORS: &[char] = &['-', '–', '—', '―', ':', '|', '/', '•', '·', '>'];

/// The bytes where a bracket of [`BRACKETS`] opens in `s`, in order, by two SIMD searches (`memchr3`), one for
/// `[({` and one for `<` and the lead bytes of `«`, `【` and `〔`, each reading the line once, merged: a byte loop
/// over every line was most of the banner search's time on an ordinary message. For lines of [`SIMD_LINE`] bytes or
/// more; on a shorter one, setting the searches up costs more than [`openers_by_byte`].
fn openers_by_simd(s: &str) -> impl Iterator<Item = usize> + '_ {
    let bytes = s.as_bytes();
    let mut ascii = memchr::memchr3_iter(b'[', b'(', b'{', bytes).peekable();
    let mut other = memchr::memchr3_iter(b'<', 0xC2, 0xE3, bytes).peekable();
    std::iter::from_fn(move || match (ascii.peek(), other.peek()) {
        (Some(a), Some(o)) if a < o => ascii.next(),
        (Some(_), None) => ascii.next(),
        _ => other.next(),
    })
    .filter(|&at| opens_bracket(s, at))
}

/// [`openers_by_simd`], one byte at a time.
fn openers_by_byte(s: &str) -> impl Iterator<Item = usize> + '_ {
    s.bytes()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'[' | b'(' | b'{' | b'<' | 0xC2 | 0xE3))
        .map(|(at, _)| at)
        .filter(|&at| opens_bracket(s, at))
}

/// Whether a bracket of [`BRACKETS`] opens at byte `at` of `s`.
fn opens_bracket(s: &str, at: usize) -> bool {
    matches!(s[at..].chars().next(), Some(c) if BRACKETS.iter().any(|(open, _)| *open == c))
}

/// Lines this long or longer are searched for brackets with SIMD (see [`openers_by_simd`]).
const SIMD_LINE: usize = 64;

/// The positions and byte lengths of the [`BANNER_SEPARATORS`] in `s`, by a byte scan (they are ASCII or start
/// with the lead bytes of `–—―•` and `·`).
fn separators(s: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    s.bytes()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'-' | b':' | b'|' | b'/' | b'>' | 0xE2 | 0xC2))
        .filter_map(|(at, _)| {
            let c = s[at..].chars().next()?;
            BANNER_SEPARATORS.contains(&c).then_some((at, c.len_utf8()))
        })
}

/// The largest char boundary of `s` at or before `index`.
fn boundary_at_or_before(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Bracket pairs that enclose a banner.
const BRACKETS: &[(char, char)] = &[
    ('[', ']'),
    ('(', ')'),
    ('{', '}'),
    ('«', '»'),
    ('【', '】'),
    ('〔', '〕'),
    ('<', '>'),
];

/// How far (in bytes) a bracketed banner may stretch; longer brackets are sentences, not banners. Also the longest
/// text examined as one banner candidate anywhere.
const MAX_BRACKETED: usize = 48;

/// One marking as its author wrote it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkingSpec {
    label: String,
    level: u32,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    banners: Vec<String>,
    #[serde(default)]
    abbreviations: Vec<String>,
    /// Whether the long phrases of this marking tolerate one edit per word.
    #[serde(default = "yes")]
    misspellings: bool,
    /// Words after which this marking's phrases are part of an ordinary name (`spécial France` + `Culture`).
    #[serde(default)]
    unless_followed_by: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkingsFile {
    #[serde(default)]
    marking: Vec<toml::Spanned<MarkingSpec>>,
}

/// A label and how sensitive it is; the most sensitive label found is the message's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marking {
    label: String,
    level: u32,
}

/// How a banner term is written in running text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    /// An ordinary word (`secret`).
    Word,
    /// An abbreviation (`DR`), which is also a title (`Dr`) or a piece of another word.
    Abbreviation,
}

/// A banner term: how it is written and the marking it signals.
#[derive(Debug, Clone)]
struct Banner {
    term: Term,
    marking: usize,
}

/// Where a banner candidate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Alone on its line, decorations aside.
    Alone,
    /// At the start or end of a line, next to a separator.
    BesideSeparator,
    /// In brackets that open the line or close it.
    BracketsAtLineEdge,
    /// In brackets inside a line.
    BracketsInLine,
    /// One or more whole words of a file name.
    FileName,
    /// The first or last word of a file name with no capital letter at all (its extension aside).
    LowercaseFileName,
}

/// The case a candidate is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// No lowercase letter (digits and symbols are not letters).
    Capitals,
    /// Lowercase letters only.
    Lowercase,
    /// A capital, then lowercase letters (`Dr`, `Secret`, `Très secret`).
    Title,
    /// Any other mix (`SeCrEt`).
    Mixed,
}

impl Case {
    fn of(text: &str) -> Self {
        let upper = text.chars().any(char::is_uppercase);
        let lower = text.chars().any(char::is_lowercase);
        match (upper, lower) {
            (_, false) => Case::Capitals,
            (false, true) => Case::Lowercase,
            (true, true) => {
                let mut cased = text
                    .chars()
                    .filter(|c| c.is_uppercase() || c.is_lowercase());
                if cased.next().is_some_and(char::is_uppercase) && cased.all(char::is_lowercase) {
                    Case::Title
                } else {
                    Case::Mixed
                }
            }
        }
    }
}

impl Term {
    /// Whether a term written in `case` at `place` is a banner. Capitals always are; a banner word also with a
    /// capital initial in brackets at a line's edge (`(Très secret) plan`, not `une surprise (secret)`); an
    /// abbreviation in lowercase in brackets (`[dr]`) or at either end of an all-lowercase file name
    /// (`dr_note.pdf`), never with a capital initial (`Dr`, a doctor).
    fn is_banner(self, case: Case, place: Place) -> bool {
        matches!(
            (case, self, place),
            (Case::Capitals, _, _)
                | (Case::Title, Term::Word, Place::BracketsAtLineEdge)
                | (
                    Case::Lowercase,
                    Term::Abbreviation,
                    Place::BracketsAtLineEdge | Place::BracketsInLine | Place::LowercaseFileName,
                )
        )
    }
}

/// One phrase, split into the skeletons of its words.
#[derive(Debug)]
struct PhraseSpec {
    marking: usize,
    words: Vec<Vec<u8>>,
    /// Under [`LONG_PHRASE`] letters: exact, and whole words only.
    short: bool,
    misspellings: bool,
}

/// Where one spelling of a phrase word stands in its phrase.
#[derive(Debug, Clone, Copy)]
struct WordSlot {
    phrase: usize,
    /// Unique over all phrases; the phrase's previous word is `slot - 1`.
    slot: usize,
    first: bool,
    last: bool,
}

/// Every phrase word and its accepted spellings in one automaton; a phrase is found where spellings of its words
/// follow each other in the skeleton (a symbol between two words may be skipped: `diffusion|restreinte`).
#[derive(Debug, Clone)]
struct PhraseMatcher {
    /// Rules out, cheaply, the texts in which no phrase can be found.
    gate: PhraseGate,
    automaton: AhoCorasick,
    /// Per automaton pattern: the phrase words it spells.
    spells: Vec<Vec<WordSlot>>,
    /// Per phrase: its marking and whether it is short.
    phrases: Vec<PhraseInfo>,
    /// Per marking: the skeletons of the words after which its phrases are ordinary names (`unless_followed_by`).
    unless_followed_by: Vec<Vec<Vec<u8>>>,
    slots: usize,
    longest: usize,
}

/// The spellings one edit away from `word` that a reader still reads as it: a letter inserted, deleted or replaced
/// inside the word (its first and last letters stay, or `spéciale France` and `spécial franco-allemand` would be
/// markings), or two neighbouring letters swapped.
fn one_edit_spellings(word: &[u8]) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let n = word.len();
    for i in 0..n.saturating_sub(1) {
        let mut w = word.to_vec();
        w.swap(i, i + 1);
        out.insert(w);
    }
    for i in 1..n.saturating_sub(1) {
        let mut deleted = word.to_vec();
        deleted.remove(i);
        out.insert(deleted);
        for &c in SKELETON_LETTERS {
            let mut replaced = word.to_vec();
            replaced[i] = c;
            out.insert(replaced);
        }
    }
    for i in 1..n {
        for &c in SKELETON_LETTERS {
            let mut inserted = word.to_vec();
            inserted.insert(i, c);
            out.insert(inserted);
        }
    }
    out.remove(word);
    out
}

impl PhraseMatcher {
    fn build(
        specs: &[PhraseSpec],
        unless_followed_by: Vec<Vec<Vec<u8>>>,
    ) -> Result<Option<Self>, String> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut spells: Vec<Vec<WordSlot>> = Vec::new();
        let mut phrases = Vec::new();
        let mut slot = 0;
        let mut gate = GateBuilder::default();
        for (phrase, spec) in specs.iter().enumerate() {
            phrases.push(PhraseInfo {
                marking: spec.marking,
                short: spec.short,
            });
            gate.phrase();
            for (k, word) in spec.words.iter().enumerate() {
                let place = WordSlot {
                    phrase,
                    slot,
                    first: k == 0,
                    last: k + 1 == spec.words.len(),
                };
                slot += 1;
                let mut spellings = BTreeSet::from([word.clone()]);
                if spec.misspellings && !spec.short && word.len() >= EDITABLE_WORD {
                    spellings.extend(one_edit_spellings(word));
                }
                gate.word(word, &spellings);
                for spelling in spellings {
                    let id = *ids.entry(spelling).or_insert_with_key(|s| {
                        patterns.push(s.clone());
                        spells.push(Vec::new());
                        patterns.len() - 1
                    });
                    spells[id].push(place);
                }
            }
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        let automaton = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| e.to_string())?;
        Ok(Some(PhraseMatcher {
            gate: gate.build(),
            automaton,
            spells,
            phrases,
            unless_followed_by,
            slots: slot,
            longest: patterns.iter().map(Vec::len).max().unwrap_or(0),
        }))
    }

    /// Notes the marking of every phrase in `skeleton`, if the gate lets the automaton read it (see
    /// [`super::gate`]). `glued`: the text is a file name, whose words may be glued on purpose.
    fn find(
        &self,
        skeleton: &Skeleton,
        glued: bool,
        buffers: &mut PhraseBuffers,
        note: &mut impl FnMut(usize),
    ) {
        if skeleton.bytes.len() < GATED_SKELETON
            || self.gate.opens(&skeleton.bytes, &mut buffers.seen)
        {
            self.read(skeleton, glued, &mut buffers.ring, note);
        }
    }

    /// Whether a phrase whose last word matched up to `end` ends there as a phrase: at a word's end (for a long
    /// phrase, also after a French ending, or anywhere in a file name), and not followed by a word that makes it
    /// an ordinary name (`spécial France` + `Culture`).
    fn ends_phrase(
        &self,
        skeleton: &Skeleton,
        end: usize,
        phrase: &PhraseInfo,
        glued: bool,
    ) -> bool {
        let (bytes, flags) = (&skeleton.bytes, &skeleton.flags);
        let word_end = if flags[end - 1] & WORD_END != 0 {
            Some(end)
        } else if phrase.short {
            None
        } else {
            INFLECTIONS
                .iter()
                .find_map(|&ending| {
                    let stop = end + ending.len();
                    (bytes.get(end..stop) == Some(ending) && flags[stop - 1] & WORD_END != 0)
                        .then_some(stop)
                })
                .or(glued.then_some(end))
        };
        let Some(word_end) = word_end else {
            return false;
        };
        let rest = &bytes[word_end..];
        !self.unless_followed_by[phrase.marking].iter().any(|name| {
            rest.starts_with(name)
                && flags[word_end] & SENTENCE == 0
                && flags[word_end + name.len() - 1] & WORD_END != 0
        })
    }

    /// Notes the marking of every phrase in `skeleton`. One pass of the automaton; for each word it finds, a
    /// constant amount of work on a ring of the last few positions (which phrase prefixes end where).
    fn read(
        &self,
        skeleton: &Skeleton,
        glued: bool,
        ring: &mut Vec<u64>,
        note: &mut impl FnMut(usize),
    ) {
        let words = self.slots.div_ceil(64).max(1);
        let ring_len = (self.longest + 2).next_power_of_two();
        let mask = ring_len - 1;
        // Row `p & mask`: the phrase prefixes (as slots) that end just before skeleton position `p`.
        ring.clear();
        ring.resize(ring_len * words, 0);
        let mut cleared = 0;
        let row = |p: usize| (p & mask) * words;
        for m in self.automaton.find_overlapping_iter(&skeleton.bytes[..]) {
            let (start, end) = (m.start(), m.end());
            if end > cleared {
                for p in (cleared + 1).max(end.saturating_sub(ring_len - 1))..=end {
                    let r = row(p);
                    ring[r..r + words].fill(0);
                }
                cleared = end;
            }
            let ends_at = |ring: &[u64], p: usize, slot: usize| {
                ring[row(p) + slot / 64] & (1 << (slot % 64)) != 0
            };
            let flags = &skeleton.flags;
            // A word never spans a sentence end (`secret.Défense` has none: no space).
            if flags[start + 1..end].iter().any(|f| f & SENTENCE != 0) {
                continue;
            }
            for w in &self.spells[m.pattern().as_usize()] {
                let phrase = &self.phrases[w.phrase];
                let follows = if w.first {
                    // Never from inside a word (`rediffusion restreinte`), but for a long phrase glued into a file
                    // name (`NOTEDIFFUSIONRESTREINTE.PDF`), where words are glued on purpose.
                    flags[start] & WORD_START != 0 || (glued && !phrase.short)
                } else {
                    // Right after the previous word, or after a symbol between them (`diffusion|restreinte`), in
                    // the same sentence.
                    flags[start] & SENTENCE == 0
                        && (ends_at(ring, start, w.slot - 1)
                            || (start > 0
                                && flags[start - 1] & SOFT != 0
                                && flags[start - 1] & SENTENCE == 0
                                && ends_at(ring, start - 1, w.slot - 1)))
                };
                if !follows {
                    continue;
                }
                if !w.last {
                    ring[row(end) + w.slot / 64] |= 1 << (w.slot % 64);
                } else if self.ends_phrase(skeleton, end, phrase, glued) {
                    note(phrase.marking);
                }
            }
        }
    }
}

/// A phrase as the matcher knows it.
#[derive(Debug, Clone)]
struct PhraseInfo {
    marking: usize,
    /// Under [`LONG_PHRASE`] letters: exact, and whole words only.
    short: bool,
}

/// The endings a long phrase's last word may take and still be that word: French agreement (`restreintes`).
const INFLECTIONS: &[&[u8]] = &[b"s", b"e", b"es"];

/// Finds protection markings in messages.
#[derive(Debug, Clone)]
pub struct Classifier {
    markings: Vec<Marking>,
    phrases: Option<PhraseMatcher>,
    /// Banner skeleton -> banners with that skeleton.
    banners: BTreeMap<Vec<u8>, Vec<Banner>>,
    /// The longest banner skeleton, in bytes.
    longest_banner: usize,
    /// The longest banner term, in words, for file-name matching.
    max_banner_words: usize,
}

/// Which rules a text is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Lines of text: banners where banners stand.
    Text,
    /// A file name: banners as whole words.
    FileName,
    /// The last segment of a link with no extension: a file's name or a page's slug (`dr-martin`), so read as a
    /// file name but for the all-lowercase abbreviation rule (`dr_note.pdf`), which would take a slug's words.
    LinkSlug,
}

/// Buffers reused across the texts of one message, and across the messages a thread classifies.
#[derive(Debug, Default)]
struct Scratch {
    /// The folded text being read.
    folded: String,
    text: Skeleton,
    term: Skeleton,
    /// File-name parts: start, end, whether it has a lowercase letter.
    parts: Vec<(usize, usize, bool)>,
    phrases: PhraseBuffers,
}

/// The phrase matcher's buffers.
#[derive(Debug, Default)]
struct PhraseBuffers {
    /// The gate's anchors seen.
    seen: Vec<u64>,
    /// The automaton's ring of phrase prefixes.
    ring: Vec<u64>,
}

impl Scratch {
    /// Buffers grown past this (by a long message) are let go rather than kept for the thread's next message.
    const KEPT_BYTES: usize = 64 * 1024;

    fn trim(&mut self) {
        if self.folded.capacity() > Self::KEPT_BYTES
            || self.text.bytes.capacity() > Self::KEPT_BYTES
            || self.parts.capacity() > Self::KEPT_BYTES
        {
            *self = Scratch::default();
        }
    }
}

thread_local! {
    /// Each thread's buffers for [`Classifier::classify`], kept between messages so that classifying an ordinary
    /// message allocates nothing once warm.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl Classifier {
    /// Builds the classifier from the text of `markings.toml`.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Problem>> {
        super::normalize::prepare();
        let file: MarkingsFile =
            toml::from_str(text).map_err(|e| vec![Problem::from_toml(MARKINGS_FILE, text, &e)])?;
        let mut problems = Vec::new();
        let mut markings = Vec::new();
        let mut phrase_specs = Vec::new();
        let mut banners: BTreeMap<Vec<u8>, Vec<Banner>> = BTreeMap::new();
        let mut max_banner_words = 1;
        let mut seen_phrases: HashMap<String, String> = HashMap::new();
        let mut unless_followed_by = Vec::new();
        for spanned in &file.marking {
            let line = line_of(text, spanned.span().start);
            let spec = spanned.get_ref();
            let problem = |m: String| Problem::at(MARKINGS_FILE, line, m);
            if !is_identifier(&spec.label) || spec.label == NO_MARKING {
                problems.push(problem(format!(
                    "label `{}` must be lowercase letters, digits and `_`, start with a letter, and not be `none`",
                    spec.label
                )));
            }
            if markings.iter().any(|m: &Marking| m.label == spec.label) {
                problems.push(problem(format!(
                    "label `{}` is defined twice; merge the two entries",
                    spec.label
                )));
            }
            if spec.phrases.is_empty() && spec.banners.is_empty() && spec.abbreviations.is_empty() {
                problems.push(problem(format!(
                    "marking `{}` has no phrases, banners or abbreviations",
                    spec.label
                )));
            }
            let index = markings.len();
            markings.push(Marking {
                label: spec.label.clone(),
                level: spec.level,
            });
            for phrase in &spec.phrases {
                let folded = fold(phrase);
                let skel = skeleton(&folded);
                if skel.len() < 6 {
                    problems.push(problem(format!(
                        "phrase `{phrase}` is too short to match anywhere in a text (under 6 letters): make it a \
                         banner or an abbreviation, which only match in banner position"
                    )));
                    continue;
                }
                if skel.as_bytes().contains(&OTHER_LETTER) {
                    problems.push(problem(format!(
                        "phrase `{phrase}` has letters that are not Latin: write it in Latin letters (look-alike \
                         letters of other scripts are matched anyway)"
                    )));
                    continue;
                }
                if let Some(other) = seen_phrases.insert(skel.clone(), spec.label.clone()) {
                    problems.push(problem(format!(
                        "phrase `{phrase}` is already listed (for `{other}`)"
                    )));
                    continue;
                }
                let words: Vec<Vec<u8>> = folded
                    .split(|c: char| !c.is_alphanumeric())
                    .map(|w| skeleton(w).into_bytes())
                    .filter(|w| !w.is_empty())
                    .collect();
                // OCR reads an `m` as `rn`: each word with an `m` also matches as OCR may give it (`COSRNIC`).
                for variant in rn_variants(&words) {
                    phrase_specs.push(PhraseSpec {
                        marking: index,
                        words: variant,
                        short: skel.len() < LONG_PHRASE,
                        misspellings: spec.misspellings,
                    });
                }
                phrase_specs.push(PhraseSpec {
                    marking: index,
                    words,
                    short: skel.len() < LONG_PHRASE,
                    misspellings: spec.misspellings,
                });
            }
            let mut names = Vec::new();
            for name in &spec.unless_followed_by {
                let skel = skeleton(&fold(name));
                if skel.is_empty() {
                    problems.push(problem(format!(
                        "`unless_followed_by` name `{name}` has no letters or digits"
                    )));
                    continue;
                }
                if spec.phrases.is_empty() {
                    problems.push(problem(format!(
                        "`unless_followed_by` needs phrases: marking `{}` has none",
                        spec.label
                    )));
                    break;
                }
                names.push(skel.into_bytes());
            }
            unless_followed_by.push(names);
            for (terms, term) in [
                (&spec.banners, Term::Word),
                (&spec.abbreviations, Term::Abbreviation),
            ] {
                for text in terms {
                    let skel = skeleton(&fold(text));
                    if skel.is_empty() {
                        problems.push(problem(format!("banner `{text}` has no letters")));
                        continue;
                    }
                    if term == Term::Abbreviation && fold(text) != fold(text).to_uppercase() {
                        problems.push(problem(format!(
                            "abbreviation `{text}` must be written in capitals"
                        )));
                    }
                    if text.len() > MAX_BRACKETED {
                        problems.push(problem(format!(
                            "banner `{text}` is longer than {MAX_BRACKETED} bytes: make it a phrase"
                        )));
                    }
                    max_banner_words = max_banner_words.max(text.split_whitespace().count());
                    banners.entry(skel.into_bytes()).or_default().push(Banner {
                        term,
                        marking: index,
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let phrases = PhraseMatcher::build(&phrase_specs, unless_followed_by)
            .map_err(|e| vec![Problem::in_file(MARKINGS_FILE, e)])?;
        Ok(Classifier {
            markings,
            phrases,
            longest_banner: banners.keys().map(Vec::len).max().unwrap_or(0),
            banners,
            max_banner_words,
        })
    }

    /// Every label this classifier can return, `none` included.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        std::iter::once(NO_MARKING).chain(self.markings.iter().map(|m| m.label.as_str()))
    }

    /// The label of the most sensitive marking in the message's body, HTML body (shown or not) or file name; `none`
    /// if none.
    pub fn classify(&self, message: &Message) -> &str {
        let mut best: Option<usize> = None;
        let mut note = |found: usize| {
            if best.is_none_or(|b| self.markings[found].level > self.markings[b].level) {
                best = Some(found);
            }
        };
        SCRATCH.with_borrow_mut(|scratch| {
            self.scan(&message.body, Field::Text, scratch, &mut note);
            if !message.formatted_body.is_empty() {
                let html = render_html(&message.formatted_body);
                self.scan(&html.visible, Field::Text, scratch, &mut note);
                self.scan(&html.hidden, Field::Text, scratch, &mut note);
            }
            self.scan(&message.filename, Field::FileName, scratch, &mut note);
            // Without `filename`, a file's `body` is its name (and with one, a caption: read as text above).
            if message.filename.is_empty() && FILE_MSGTYPES.contains(&message.msgtype.as_str()) {
                self.scan(&message.body, Field::FileName, scratch, &mut note);
            }
            scratch.trim();
        });
        best.map_or(NO_MARKING, |b| self.markings[b].label.as_str())
    }

    /// The label of the most sensitive marking in a document: its text and properties (each passage read like a
    /// message's text, HTML through the same HTML reading), the names of the files inside it, and its own file
    /// name; `none` if none.
    pub fn classify_document(&self, filename: &str, passages: &[Passage]) -> &str {
        let mut document = self.document();
        for passage in passages {
            document.passage(passage);
        }
        document.file_name(filename);
        document.label()
    }

    /// A document classified passage by passage, as it is read ([`Classifier::classify_document`] at once).
    pub fn document(&self) -> DocumentMarkings<'_> {
        DocumentMarkings {
            classifier: self,
            best: None,
            scratch: Scratch::default(),
        }
    }

    /// The labels of markings at least as sensitive as `label` (`label` included; every label for `none`).
    pub fn labels_from(&self, label: &str) -> impl Iterator<Item = &str> {
        let floor = self
            .markings
            .iter()
            .find(|m| m.label == label)
            .map(|m| m.level);
        let none = floor.is_none().then_some(NO_MARKING);
        none.into_iter().chain(
            self.markings
                .iter()
                .filter(move |m| floor.is_none_or(|floor| m.level >= floor))
                .map(|m| m.label.as_str()),
        )
    }

    /// Classifies one text as stored and, if a right-to-left override makes it display otherwise, as displayed. A
    /// file name is also read percent-decoded; a text's links also give their last segment as a file name.
    fn scan(&self, raw: &str, field: Field, scratch: &mut Scratch, note: &mut impl FnMut(usize)) {
        if raw.is_empty() {
            return;
        }
        self.scan_as_written(raw, field, scratch, note);
        match field {
            Field::FileName | Field::LinkSlug => {
                if let Some(decoded) = names::percent_decoded(raw) {
                    self.scan_as_written(&decoded, field, scratch, note);
                }
            }
            Field::Text => {
                for name in names::link_file_names(raw) {
                    let field = if names::has_extension(name) {
                        Field::FileName
                    } else {
                        Field::LinkSlug
                    };
                    self.scan(name, field, scratch, note);
                }
            }
        }
    }

    /// [`Self::scan`] of `raw` as it is, stored and displayed.
    fn scan_as_written(
        &self,
        raw: &str,
        field: Field,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
        let mut folded = std::mem::take(&mut scratch.folded);
        let overridden = fold_stored_into(raw, &mut folded);
        self.scan_folded(&folded, field, scratch, note);
        scratch.folded = folded;
        if overridden {
            self.scan_folded(&fold_displayed(raw), field, scratch, note);
        }
    }

    fn scan_folded(
        &self,
        folded: &str,
        field: Field,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
        count_work(folded.len());
        if let Some(phrases) = &self.phrases {
            scratch.text.rebuild(folded);
            count_work(scratch.text.bytes.len());
            phrases.find(
                &scratch.text,
                field != Field::Text,
                &mut scratch.phrases,
                note,
            );
        }
        if self.banners.is_empty() {
            return;
        }
        match field {
            Field::Text => self.find_banners(folded, scratch, note),
            Field::FileName => self.find_filename_banners(folded, true, scratch, note),
            Field::LinkSlug => self.find_filename_banners(folded, false, scratch, note),
        }
    }

    /// Looks for banner terms where banners stand, line by line. A banner is short, so only the first and last
    /// [`MAX_BRACKETED`] bytes of a line and the inside of short brackets are ever examined, and each closing
    /// bracket is searched for once however many brackets open before it: the work is linear in the text, whatever
    /// the shape of its lines (say 64 KiB of `(`).
    fn find_banners(&self, folded: &str, scratch: &mut Scratch, note: &mut impl FnMut(usize)) {
        let term = &mut scratch.term;
        for line in folded.split('\n') {
            let trimmed =
                line.trim_matches(|c: char| c.is_whitespace() || "*#_~=>\"'`.!".contains(c));
            if trimmed.is_empty() {
                continue;
            }
            // Alone on the line (decorations aside): `DR`, `*** SECRET ***`, `— DR —`.
            if trimmed.len() <= 2 * MAX_BRACKETED {
                let alone = trimmed.trim_matches(|c| BANNER_SEPARATORS.contains(&c) || c == ' ');
                self.check_term(alone, Place::Alone, term, note);
            }
            // At the start of the line, before a separator, maybe after a prefix and its separator: `DR - objet`,
            // `Objet : DR - budget`, `TR: DR - budget`.
            let head = &trimmed[..boundary_at_or_before(trimmed, MAX_BRACKETED + 1)];
            // After a prefix, only a spaced separator closes a banner: `Réf. : DR/2024/123` is a reference.
            let mut from = 0;
            for (pos, len) in separators(head).take(3) {
                let segment = &trimmed[from..pos];
                if from == 0 || segment.ends_with(char::is_whitespace) {
                    let before = &trimmed[..from];
                    self.check_term_after(segment, Place::BesideSeparator, before, term, note);
                }
                from = pos + len;
            }
            // At the end of the line, after a separator: `Compte rendu | DR`.
            let tail_start =
                boundary_at_or_before(trimmed, trimmed.len().saturating_sub(MAX_BRACKETED + 4));
            if let Some(pos) = trimmed[tail_start..].rfind(BANNER_SEPARATORS) {
                let pos = tail_start + pos;
                let sep_len = trimmed[pos..].chars().next().map_or(1, char::len_utf8);
                self.check_term_after(
                    &trimmed[pos + sep_len..],
                    Place::BesideSeparator,
                    &trimmed[..pos],
                    term,
                    note,
                );
            }
            // In brackets anywhere on the line: `[DR]`, `(Très Secret)`.
            if trimmed.len() >= SIMD_LINE {
                self.find_bracketed(trimmed, openers_by_simd(trimmed), term, note);
            } else {
                self.find_bracketed(trimmed, openers_by_byte(trimmed), term, note);
            }
        }
    }

    /// Banner terms in the brackets that open at `openers` on `line`. The next closing bracket of each kind is
    /// remembered, so the line is scanned for it once, not once per opening bracket.
    fn find_bracketed(
        &self,
        line: &str,
        openers: impl Iterator<Item = usize>,
        term: &mut Skeleton,
        note: &mut impl FnMut(usize),
    ) {
        let mut next_close = [None::<usize>; BRACKETS.len()];
        for at in openers {
            let open = line[at..].chars().next().unwrap_or('[');
            let inner = at + open.len_utf8();
            let Some(kind) = BRACKETS.iter().position(|(o, _)| *o == open) else {
                continue;
            };
            let close = BRACKETS[kind].1;
            let end = match next_close[kind] {
                Some(end) if end >= inner => end,
                _ => {
                    let end = line[inner..].find(close).map_or(usize::MAX, |e| inner + e);
                    next_close[kind] = Some(end);
                    end
                }
            };
            if end == usize::MAX || end - inner > MAX_BRACKETED {
                continue;
            }
            let place = if at == 0 || end + close.len_utf8() == line.len() {
                Place::BracketsAtLineEdge
            } else {
                Place::BracketsInLine
            };
            let before = &line[boundary_at_or_before(line, at.saturating_sub(80))..at];
            self.check_term_after(&line[inner..end], place, before, term, note);
        }
    }

    /// In a file name, a banner term counts as one or more whole words: parts split at separators, between letters
    /// and digits, and where case changes (`noteDR`, `DRNote`, `2024DR`, but not in an acronym like `DRFiP`); an
    /// uppercase run before two lowercase letters also counts whole (`DRnote`). `ADR.pdf`, `CDR-2024.pdf` and
    /// `DRAFT.pdf` have no part `DR`. `lowercase_rule`: an all-lowercase name's first and last parts may be an
    /// abbreviation (`dr_note.pdf`).
    fn find_filename_banners(
        &self,
        folded: &str,
        lowercase_rule: bool,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
        let lowercase_name = lowercase_rule && !folded.chars().any(char::is_uppercase);
        let place = Place::FileName;
        let Scratch { term, parts, .. } = scratch;
        parts.clear();
        let class = CharKind::of;
        let mut chars = folded
            .char_indices()
            .map(|(at, c)| (at, c, class(c)))
            .peekable();
        let mut previous = CharKind::Separator;
        let mut part_start = 0;
        let mut part_lower = false;
        let mut word_start = 0;
        let mut upper_start = 0;
        while let Some((at, c, k)) = chars.next() {
            let next = chars.peek().map_or(CharKind::Separator, |&(_, _, n)| n);
            let after_next = chars
                .clone()
                .nth(1)
                .map_or(CharKind::Separator, |(_, _, n)| n);
            if k == CharKind::Separator {
                if previous != CharKind::Separator {
                    parts.push((part_start, at, part_lower));
                    if part_start != word_start {
                        self.check_term(&folded[word_start..at], place, term, note);
                    }
                }
                previous = k;
                continue;
            }
            if previous == CharKind::Separator {
                part_start = at;
                part_lower = false;
                word_start = at;
            } else if (k == CharKind::Upper && previous != CharKind::Upper)
                || ((k == CharKind::Digit) != (previous == CharKind::Digit))
                || (k == CharKind::Upper
                    && previous == CharKind::Upper
                    && next == CharKind::Lower
                    && after_next == CharKind::Lower)
            {
                parts.push((part_start, at, part_lower));
                part_start = at;
                part_lower = false;
            }
            part_lower |= k == CharKind::Lower;
            if k == CharKind::Upper && previous != CharKind::Upper {
                upper_start = at;
            }
            if k == CharKind::Upper
                && next == CharKind::Lower
                && after_next == CharKind::Lower
                && at > upper_start
            {
                let run_end = at + c.len_utf8();
                self.check_term(&folded[upper_start..run_end], place, term, note);
            }
            previous = k;
        }
        if previous != CharKind::Separator {
            parts.push((part_start, folded.len(), part_lower));
            if part_start != word_start {
                self.check_term(&folded[word_start..], place, term, note);
            }
        }
        // In an all-lowercase name, the first and the last part before the extension may be an abbreviation.
        if lowercase_name && !parts.is_empty() {
            let stem_end = folded.rfind('.').unwrap_or(folded.len());
            let first = parts.iter().position(|p| p.2).unwrap_or(0);
            let last = parts.iter().rposition(|p| p.1 <= stem_end).unwrap_or(0);
            for k in [first, last] {
                let (start, end, _) = parts[k];
                self.check_term(&folded[start..end], Place::LowercaseFileName, term, note);
            }
        }
        // Windows of whole parts; only capitals count, so a part with a lowercase letter ends them.
        for i in 0..parts.len() {
            for j in i..parts.len().min(i + self.max_banner_words) {
                if parts[j].2 {
                    break;
                }
                let candidate = &folded[parts[i].0..parts[j].1];
                if candidate.len() > MAX_BRACKETED {
                    break;
                }
                self.check_term(candidate, place, term, note);
            }
        }
    }

    /// `candidate` is a banner if its skeleton is a banner term written as a banner is at `place` (see
    /// [`Term::is_banner`]).
    fn check_term(
        &self,
        candidate: &str,
        place: Place,
        term: &mut Skeleton,
        note: &mut impl FnMut(usize),
    ) {
        self.check_term_after(candidate, place, "", term, note);
    }

    /// [`Self::check_term`] for a candidate after `before` on its line. An abbreviation is then not a banner in two
    /// ordinary uses: in brackets that define it as an acronym (`la direction régionale (DR)`), and as a photo
    /// credit's *droits réservés* (`Crédit photo : D.R.`, `© DR`).
    fn check_term_after(
        &self,
        candidate: &str,
        place: Place,
        before: &str,
        term: &mut Skeleton,
        note: &mut impl FnMut(usize),
    ) {
        if candidate.len() > MAX_BRACKETED {
            return;
        }
        count_work(candidate.len());
        let case = Case::of(candidate);
        if !(Term::Word.is_banner(case, place) || Term::Abbreviation.is_banner(case, place)) {
            return;
        }
        term.rebuild(candidate);
        let key = term.trimmed();
        if key.is_empty() || key.len() > self.longest_banner {
            return;
        }
        let Some(banners) = self.banners.get(key) else {
            return;
        };
        for banner in banners {
            let ordinary = banner.term == Term::Abbreviation
                && (is_credit(before, candidate)
                    || (matches!(place, Place::BracketsInLine | Place::BracketsAtLineEdge)
                        && defines_acronym(before, key)));
            if banner.term.is_banner(case, place) && !ordinary {
                note(banner.marking);
            }
        }
    }
}

/// The words that introduce a picture's credit, folded and lowercased (`Crédit photo : DR`, `Illustration : D.R.`).
const CREDIT_WORDS: &[&str] = &[
    "credit",
    "credits",
    "photo",
    "photos",
    "photographie",
    "photographies",
    "illustration",
    "illustrations",
    "image",
    "images",
    "visuel",
    "visuels",
    "source",
    "sources",
    "copyright",
    "cliche",
    "cliches",
    "iconographie",
    "droits",
];

/// How many names (a photographer's, an agency's: `Photo : AFP / DR`) may stand between a credit word and `DR`.
const MAX_CREDITED: usize = 3;

/// Whether `candidate`, after `before` on its line, is a picture's credit: `©` in it or just before it, or a credit
/// word before it with at most a few names in capitals between (`Crédit photo : D.R.`, `Photo : AFP / DR`).
fn is_credit(before: &str, candidate: &str) -> bool {
    let near = &before[boundary_at_or_before(before, before.len().saturating_sub(MAX_BRACKETED))..];
    if candidate.contains('©') || near.contains('©') {
        return true;
    }
    for word in before
        .rsplit(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_CREDITED + 1)
    {
        if CREDIT_WORDS
            .iter()
            .any(|credit| word.eq_ignore_ascii_case(credit))
        {
            return true;
        }
        if !word.starts_with(char::is_uppercase) {
            return false;
        }
    }
    false
}

/// Words of a name that may stand between an acronym's expansion and its bracket: `Direction régionale Grand Est
/// (DR)`, `Direction régionale Provence-Alpes-Côte d'Azur (DR)`.
const MAX_QUALIFIERS: usize = 4;

/// Whether the words at the end of `before` define `key` (a skeleton) as an acronym: their initials spell it, short
/// linking words aside (`Direction Régionale`, `directions régionales`, `Document de référence`, `D. Renard` before
/// `(DR)`), maybe followed by a place's or a body's name in capitals (`Direction régionale Grand Est (DR)`).
fn defines_acronym(before: &str, key: &[u8]) -> bool {
    const LINKING: &[&str] = &[
        "a", "au", "aux", "d", "de", "des", "du", "en", "et", "l", "la", "le", "les", "of", "the",
        "and", "pour", "par", "sur",
    ];
    if key.len() < 2 || before.is_empty() {
        return false;
    }
    // The significant words before the bracket, nearest first: their initial, and whether it is a capital.
    let words: Vec<(Option<u8>, bool)> = before
        .rsplit(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        // Lowercase only: `D. Renard` has a significant `D`.
        .filter(|w| !LINKING.contains(w))
        .take(key.len() + MAX_QUALIFIERS)
        .map(|word| {
            let first = word.chars().next().unwrap_or(' ');
            let mut buffer = [0; 4];
            let initial = skeleton(first.encode_utf8(&mut buffer)).bytes().next();
            (initial, first.is_uppercase())
        })
        .collect();
    (0..=MAX_QUALIFIERS).any(|qualifiers| {
        let Some(expansion) = words.get(qualifiers..qualifiers + key.len()) else {
            return false;
        };
        words[..qualifiers].iter().all(|&(_, capital)| capital)
            && expansion
                .iter()
                .rev()
                .map(|&(initial, _)| initial)
                .eq(key.iter().map(|&k| Some(k)))
    })
}

/// The words of a phrase as OCR may read them: for each word with an `m`, the phrase with that word's `m`s read
/// `rn` (an `m` is two letters to OCR in many fonts). Empty for a phrase without `m`, as every shipped one but
/// `COSMIC`.
fn rn_variants(words: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
    (0..words.len())
        .filter(|&i| words[i].contains(&b'm'))
        .map(|i| {
            let mut variant = words.to_vec();
            let mut read = Vec::with_capacity(words[i].len() + 2);
            for &b in &words[i] {
                if b == b'm' {
                    read.extend_from_slice(b"rn");
                } else {
                    read.push(b);
                }
            }
            variant[i] = read;
            variant
        })
        .collect()
}

#[cfg(test)]
thread_local! {
    /// Bytes examined by the classifier on this thread: folded text, skeletons scanned, banner candidates.
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts `bytes` of work (tests only: the cost tests compare it with the input's size).
#[cfg(test)]
fn count_work(bytes: usize) {
    WORK.with(|w| w.set(w.get() + bytes));
}

#[cfg(not(test))]
fn count_work(_bytes: usize) {}

/// The most sensitive marking of a document so far, its passages read one by one (see [`Classifier::document`]).
pub struct DocumentMarkings<'c> {
    classifier: &'c Classifier,
    best: Option<usize>,
    scratch: Scratch,
}

impl<'c> DocumentMarkings<'c> {
    /// Reads one passage; `true` when it holds a marking more sensitive than any before.
    pub fn passage(&mut self, passage: &Passage) -> bool {
        let before = self.best;
        let classifier = self.classifier;
        let best = &mut self.best;
        let mut note = |found: usize| {
            if best.is_none_or(|b| classifier.markings[found].level > classifier.markings[b].level)
            {
                *best = Some(found);
            }
        };
        let scratch = &mut self.scratch;
        match passage {
            Passage::Text(text) => classifier.scan(text, Field::Text, scratch, &mut note),
            Passage::Html(html) => {
                let html = render_html(html);
                classifier.scan(&html.visible, Field::Text, scratch, &mut note);
                classifier.scan(&html.hidden, Field::Text, scratch, &mut note);
            }
            Passage::Name(name) => classifier.scan(name, Field::FileName, scratch, &mut note),
        }
        self.best != before
    }

    /// Reads the document's own file name.
    pub fn file_name(&mut self, name: &str) -> bool {
        self.passage(&Passage::Name(name.to_owned()))
    }

    /// The label of the most sensitive marking so far, `none` if none.
    pub fn label(&self) -> &'c str {
        self.best
            .map_or(NO_MARKING, |b| self.classifier.markings[b].label.as_str())
    }
}

impl std::fmt::Debug for DocumentMarkings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentMarkings")
            .field("label", &self.label())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKINGS: &str = include_str!("../../../policies/markings.toml");

    fn classifier() -> Classifier {
        Classifier::from_toml(MARKINGS).expect("the shipped markings load")
    }

    fn body(text: &str) -> Message {
        Message {
            event_type: "m.room.message".into(),
            msgtype: "m.text".into(),
            body: text.into(),
            ..Default::default()
        }
    }

    fn html(text: &str) -> Message {
        Message {
            formatted_body: text.into(),
            ..body("")
        }
    }

    fn file(name: &str) -> Message {
        Message {
            filename: name.into(),
            ..body("")
        }
    }

    fn expect_all(c: &Classifier, make: fn(&str) -> Message, cases: &[(&str, &str)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, label)| {
                let got = c.classify(&make(text));
                (got != *label).then(|| format!("{text:?}: expected {label}, got {got}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    fn file_body(msgtype: &'static str) -> impl Fn(&str) -> Message {
        move |name| Message {
            msgtype: msgtype.into(),
            body: name.into(),
            ..Default::default()
        }
    }

    /// A file's name is read wherever Matrix puts it: without `filename`, the `body` of a file-bearing message is
    /// the name; percent-encoded, it is decoded; at the end of a link in a text, it is the link's last segment.
    #[test]
    fn file_names_are_read_wherever_matrix_puts_them() {
        let c = classifier();
        for msgtype in FILE_MSGTYPES {
            let message = file_body(msgtype)("2026-03-12_CR_COMEX_SECRET.pdf");
            assert_eq!(c.classify(&message), "secret", "{msgtype}");
        }
        // As text, the same body is not a banner: the name is read as a name only because it is one.
        assert_eq!(c.classify(&body("2026-03-12_CR_COMEX_SECRET.pdf")), "none");
        // With a `filename`, the body is a caption, read as text.
        let captioned = Message {
            filename: "photo.jpg".into(),
            ..file_body("m.image")("Photo du SECRET de la réussite")
        };
        assert_eq!(c.classify(&captioned), "none");
        expect_all(
            &c,
            file,
            &[
                ("Note%20Diffusion%20Restreinte.pdf", "restricted"),
                ("CR%20COMEX%20SECRET.pdf", "secret"),
                ("Rapport%20%5BDR%5D.pdf", "restricted"),
                ("Synth%C3%A8se%20Secret%20D%C3%A9fense.pdf", "secret"),
                ("Planning%20cong%C3%A9s%202026.xlsx", "none"),
            ],
        );
        expect_all(
            &c,
            body,
            &[
                (
                    "Voici le lien : https://partage.gouv.fr/s/Ab12/download/Note%20DIFFUSION%20RESTREINTE.pdf",
                    "restricted",
                ),
                (
                    "https://nuage.gouv.fr/f/123/CR_SECRET_2026.pdf?dl=1",
                    "secret",
                ),
                (
                    "cf. https://intranet.gouv.fr/docs/Fiche_DR.pdf#page=2.",
                    "restricted",
                ),
                // A page's slug is not a file name written in lowercase on purpose.
                ("Rendez-vous : https://doctolib.fr/dr-martin", "none"),
                (
                    "https://www.service-public.fr/particuliers/vosdroits/F1234",
                    "none",
                ),
            ],
        );
        assert_eq!(
            c.classify(&html(
                r#"<a href="https://x.gouv.fr/CR%20SECRET.pdf">le compte rendu</a>"#
            )),
            "secret"
        );
    }

    /// A phrase stands within one sentence, from the start of a word: ordinary French that only looks like a
    /// phrase across a full stop, or inside a longer word, is not a marking.
    #[test]
    fn a_phrase_stands_within_a_sentence_from_a_word_start() {
        expect_all(
            &classifier(),
            body,
            &[
                (
                    "Le projet est resté secret. UE et OTAN ont été informés.",
                    "none",
                ),
                ("C'était secret ! UE et OTAN l'ignoraient.", "none"),
                ("Tout est secret ? UE : rien à signaler", "none"),
                ("Le code reste secret ; UE comprise", "none"),
                ("Resté secret.\nUE et OTAN", "none"),
                (
                    "La rediffusion restreinte aux abonnés commence lundi.",
                    "none",
                ),
                ("Une prédiffusion restreinte est prévue.", "none"),
                // What a sentence end is not: initials, spelled-out letters, a decimal, no space.
                (
                    "D. I. F. F. U. S. I. O. N.  R. E. S. T. R. E. I. N. T. E.",
                    "restricted",
                ),
                ("Classement : secret.UE", "secret"),
                ("Objet : note. DIFFUSION RESTREINTE", "restricted"),
                ("Classement : Secret Défense ; diffusion limitée", "secret"),
                ("Documents DIFFUSION RESTREINTES", "restricted"),
                ("D!FFUSION RESTREINTE", "restricted"),
                ("DiffusionRestreinte", "restricted"),
            ],
        );
        // Glued into a file name, on purpose: still the phrase.
        expect_all(
            &classifier(),
            file,
            &[
                ("NOTEDIFFUSIONRESTREINTE.PDF", "restricted"),
                ("notediffusionrestreintev2.pdf", "restricted"),
            ],
        );
    }

    /// `DR` abbreviating the words before it, or crediting a photo, and `spécial France` in a channel's name are
    /// ordinary; the same words as markings still are.
    #[test]
    fn ordinary_uses_of_dr_and_special_france_pass() {
        expect_all(
            &classifier(),
            body,
            &[
                (
                    "Direction régionale Grand Est (DR) - Ressources humaines",
                    "none",
                ),
                ("Délégation régionale (DR) Occitanie", "none"),
                (
                    "la Direction régionale d'Île-de-France (DR) recrute",
                    "none",
                ),
                (
                    "Direction régionale Provence-Alpes-Côte d'Azur (DR) : bilan",
                    "none",
                ),
                ("Crédit photo : D.R.", "none"),
                ("Le préfet à Metz.\n© DR", "none"),
                ("Photo : AFP / DR", "none"),
                ("Illustration : DR", "none"),
                ("Photo DR", "none"),
                (
                    "numéro spécial France Culture sur la décentralisation",
                    "none",
                ),
                ("l'envoyé spécial France 2 à Kiev", "none"),
                ("Émission spécial France Inter ce soir", "none"),
                ("Un spécial franceinfo demain", "none"),
                ("Journal spécial France Télévisions", "none"),
                // Markings still.
                ("Compte rendu de la réunion - DR", "restricted"),
                ("Rapport du service (DR) à ne pas diffuser", "restricted"),
                ("Note SPÉCIAL FRANCE", "special_france"),
                ("Spécial France. Culture générale à part", "special_france"),
                ("Photo du document confidentiel - DR", "restricted"),
            ],
        );
    }

    /// A stamp as OCR reads it off a scan is classified as typed: digits and bars for letters, `rn` for `m`, lost
    /// accents, a stamp alone on its line.
    #[test]
    fn ocr_misreads_are_classified_as_the_marking() {
        expect_all(
            &classifier(),
            body,
            &[
                ("DIFFUSI0N RESTRElNTE", "restricted"),
                ("Objet : note\nD1FFUSION RESTRE|NTE\nsuite", "restricted"),
                ("COSRNIC TOP SECRET", "top_secret"),
                ("SPECIAL FRANCE", "special_france"),
                ("TRES SECRET", "top_secret"),
                ("Le gouvernement a interne le dossier.", "none"),
            ],
        );
    }

    /// Each marking family is found, whatever the case, accents, separators and position.
    #[test]
    fn finds_each_marking_family() {
        expect_all(
            &classifier(),
            body,
            &[
                (
                    "Document Diffusion Restreinte, merci de ne pas transférer",
                    "restricted",
                ),
                ("DIFFUSION RESTREINTE", "restricted"),
                ("diffusion restreinte", "restricted"),
                ("[DR] point de situation", "restricted"),
                ("(DR) point de situation", "restricted"),
                ("[dr] point de situation", "restricted"),
                ("DR - point de situation", "restricted"),
                ("DR: point de situation", "restricted"),
                ("Point de situation - DR", "restricted"),
                ("TR: DR - point de situation", "restricted"),
                ("Objet : DR - point de situation", "restricted"),
                ("Réf. : DR/2024/123 du 12 mars", "none"),
                ("Bonjour,\nDR\nVoici le rapport", "restricted"),
                (
                    "Spécial France : ne pas diffuser aux partenaires",
                    "special_france",
                ),
                ("SPECIAL FRANCE", "special_france"),
                ("Confidentiel Défense", "secret"),
                ("CONFIDENTIEL-DEFENSE", "secret"),
                ("Secret Défense", "secret"),
                ("SECRET - note au ministre", "secret"),
                ("[SECRET] note au ministre", "secret"),
                ("Très Secret Défense", "top_secret"),
                ("TRES SECRET - plan", "top_secret"),
                ("(Très secret) plan", "top_secret"),
            ],
        );
    }

    /// Markings France handles under II 901 that are not French map onto the French labels.
    #[test]
    fn finds_eu_and_nato_markings() {
        expect_all(
            &classifier(),
            body,
            &[
                ("RESTREINT UE", "restricted"),
                ("RESTREINT UE/EU RESTRICTED", "restricted"),
                ("EU RESTRICTED", "restricted"),
                ("NATO RESTRICTED", "restricted"),
                ("DIFFUSION RESTREINTE OTAN", "restricted"),
                ("CONFIDENTIEL UE/EU CONFIDENTIAL", "secret"),
                ("NATO CONFIDENTIAL", "secret"),
                ("CONFIDENTIEL OTAN", "secret"),
                ("SECRET UE/EU SECRET", "secret"),
                ("Classification : NATO SECRET", "secret"),
                ("SECRET OTAN", "secret"),
                ("TRÈS SECRET UE/EU TOP SECRET", "top_secret"),
                ("COSMIC TOP SECRET", "top_secret"),
                ("COSMIC TRÈS SECRET", "top_secret"),
                ("note_SECRET_UE.pdf en pièce jointe", "secret"),
            ],
        );
    }

    /// Evasions of every family (invisible characters, look-alikes, HTML, compatibility forms, separators) are caught.
    #[test]
    fn sees_through_evasions() {
        let c = classifier();
        for text in [
            "Diffusion\u{200B} Restreinte",
            "Diff\u{200D}usion Restr\u{2060}einte",
            "Diffusion\u{00A0}Restreinte",
            "Diffusion\u{202F}Restreinte",
            "D.i.f.f.u.s.i.o.n R.e.s.t.r.e.i.n.t.e",
            "diffusion_restreinte",
            "Diffusion   Restreinte",
            "Diffusion\nRestreinte",
            "Diffusion\r\nRestreinte",
            "Ｄｉｆｆｕｓｉｏｎ Ｒｅｓｔｒｅｉｎｔｅ",
            "Diffusiоn Restreintе",
            "Dіffusіon Rеstrеintе",
            "DIFFUSION RESTREINTE".to_lowercase().as_str(),
            "diffusion re\u{00AD}streinte",
            "[\u{200B}DR\u{200B}]",
            "[ＤＲ] note",
            "[D.R.] note",
        ] {
            assert_eq!(c.classify(&body(text)), "restricted", "{text:?}");
        }
        for text in [
            "<p>Diffusion <b>Restreinte</b></p>",
            "<p>Diffu<span></span>sion<br>Restreinte</p>",
            "Diffusion&nbsp;Restreinte",
            "Diffusion R&eacute;streinte",
            "&#68;iffusion &#x52;estreinte",
            "<strong>DR</strong> - compte rendu",
            "<p>Bonjour</p><p>DR</p>",
            "<b>[DR]</b> compte rendu",
        ] {
            assert_eq!(c.classify(&html(text)), "restricted", "{text:?}");
        }
    }

    /// Letters of other scripts that imitate Latin ones (UTS #39 confusables: Cherokee, Lisu, Greek, Cyrillic),
    /// small capitals and boxed letters read as the Latin letters, capitals included.
    #[test]
    fn sees_through_look_alike_scripts() {
        expect_all(
            &classifier(),
            body,
            &[
                ("ᎠIFFUᏚIOΝ ᏒᎬᏚTᏒᎬIΝTᎬ", "restricted"),
                ("ꓓꓲꓝꓝꓴꓢꓲꓳꓠ ꓣꓰꓢꓔꓣꓰꓲꓠꓔꓰ", "restricted"),
                ("ᴅɪꜰꜰᴜꜱɪᴏɴ ʀᴇꜱᴛʀᴇɪɴᴛᴇ", "restricted"),
                ("[ᎠᏒ] compte rendu", "restricted"),
                ("ꓓꓣ - compte rendu", "restricted"),
                ("ᴅʀ - compte rendu", "restricted"),
                ("🅳🆁 - compte rendu", "restricted"),
                ("ꓢꓰꓚꓣꓰꓔ ꓓꓰꓝꓰꓠꓢꓰ", "secret"),
                ("ЅЕСRЕТ - note", "secret"),
                ("ѕрéсіаl Ϝrаnсе", "special_france"),
            ],
        );
    }

    /// Digits and symbols written for letters, `l` for `I`, are read as the letters.
    #[test]
    fn sees_through_digit_and_letter_swaps() {
        expect_all(
            &classifier(),
            body,
            &[
                ("diffusion r3streinte", "restricted"),
                ("D1FFUSION RESTREINTE", "restricted"),
                ("DlFFUSlON RESTRElNTE", "restricted"),
                ("D!FFUS!ON R€STREINTE", "restricted"),
                ("diffusion|restreinte", "restricted"),
                ("C0NF1D3NT13L D3F3NS3", "secret"),
                ("5ECRET DEFEN5E", "secret"),
                ("$ECRET DÉFENSE", "secret"),
                ("[5ECRET] note", "secret"),
                ("7RÈS SECRE7 DÉFENSE", "top_secret"),
            ],
        );
    }

    /// Text reversed under a right-to-left override is read as displayed, in every field.
    #[test]
    fn reads_right_to_left_overrides_as_displayed() {
        let c = classifier();
        assert_eq!(
            c.classify(&body("\u{202E}etniertser noisuffid\u{202C} : note")),
            "restricted"
        );
        assert_eq!(c.classify(&body("Objet \u{202E}ESNEFED TERCES")), "secret");
        assert_eq!(c.classify(&file("note\u{202E}fdp.RD")), "restricted");
        assert_eq!(
            c.classify(&html("<bdo dir=\"rtl\">etniertser noisuffid</bdo>")),
            "restricted"
        );
    }

    /// One edit per word of 5 letters or more (inside the word, or a swap) still matches a phrase of 12 letters or
    /// more; two edits in a word, an edit at a word's first or last letter, or any edit to a short phrase do not.
    #[test]
    fn tolerates_one_misspelling_per_word() {
        expect_all(
            &classifier(),
            body,
            &[
                ("Diffusion Restrainte", "restricted"),
                ("Diffussion Restreinte", "restricted"),
                ("Difusion Restreinte", "restricted"),
                ("Diffusoin Restreinte", "restricted"),
                ("Diffussion Restrainte", "restricted"),
                ("Diffusion Restreint", "restricted"),
                ("Spécail France", "special_france"),
                ("Confidentiel Défence", "secret"),
                ("Secert Défense", "secret"),
                ("Très Secret Défesne", "top_secret"),
                ("Diffusssion Restreinte", "none"),
                ("Spéciale France", "none"),
                ("spécial franco-allemand", "none"),
                ("Secret UF", "none"),
                ("Secrte UE", "none"),
            ],
        );
    }

    /// Markings hidden in an HTML body's comments and attribute values are found: not shown, but in the event.
    #[test]
    fn finds_markings_hidden_in_html() {
        expect_all(
            &classifier(),
            html,
            &[
                ("ok<!-- Diffusion Restreinte -->", "restricted"),
                (
                    "<span title=\"Diffusion Restreinte\">ok</span>",
                    "restricted",
                ),
                ("<img alt=\"[DR]\" src=\"mxc://a/b\">", "restricted"),
                ("<span data-x='SECRET DÉFENSE'>ok</span>", "secret"),
                (
                    "<a href=\"https://x.fr/\" title=\"Très&nbsp;Secret Défense\">lien</a>",
                    "top_secret",
                ),
                ("<span title=\"Le Dr Martin\">ok</span>", "none"),
            ],
        );
    }

    /// File names carry markings too, glued to other words or not; abbreviations glued inside a longer word in
    /// capitals do not count.
    #[test]
    fn finds_markings_in_file_names() {
        expect_all(
            &classifier(),
            file,
            &[
                ("note_diffusion_restreinte.pdf", "restricted"),
                ("NOTEDIFFUSIONRESTREINTE.PDF", "restricted"),
                ("2024-11-DR-compte-rendu.pdf", "restricted"),
                ("DR_note.odt", "restricted"),
                ("note (DR).pdf", "restricted"),
                ("noteDR.pdf", "restricted"),
                ("DRnote.pdf", "restricted"),
                ("DRNote.pdf", "restricted"),
                ("note2024DR.pdf", "restricted"),
                ("dr_note.pdf", "restricted"),
                ("note-dr.pdf", "restricted"),
                ("2024-dr.pdf", "restricted"),
                ("2024_dr_note.pdf", "restricted"),
                ("certificat_dr_martin.pdf", "none"),
                ("plan_TRES_SECRET.pdf", "top_secret"),
                ("planTRESSECRET.pdf", "top_secret"),
                ("rapport-special-france.docx", "special_france"),
                ("note_5ECRET.pdf", "secret"),
                ("photo_vacances.jpg", "none"),
                ("Dr_Martin_ordonnance.pdf", "none"),
                ("DrMartin.pdf", "none"),
                ("address.txt", "none"),
                ("ADR.pdf", "none"),
                ("CDR-2024.pdf", "none"),
                ("DRAFT.pdf", "none"),
                ("adr.pdf", "none"),
                ("cdr-2024.pdf", "none"),
                ("draft.pdf", "none"),
                ("DRH_organigramme.pdf", "none"),
                ("DRFiP_calendrier.xlsx", "none"),
                ("Secret_Santa_2024.xlsx", "none"),
                ("recette_secrete.pdf", "none"),
                ("mon_secret.txt", "none"),
            ],
        );
    }

    /// Ordinary French that resembles a marking is not one: `Dr` is a doctor, `secret` an ordinary word unless
    /// written as a banner, short phrases count only as whole words.
    #[test]
    fn leaves_ordinary_text_alone() {
        expect_all(
            &classifier(),
            body,
            &[
                ("Rendez-vous avec le Dr Martin demain", "none"),
                ("Dr Martin a appelé", "none"),
                ("Dr. Martin a appelé", "none"),
                ("Dr: pouvez-vous rappeler ?", "none"),
                ("Dr - pouvez-vous rappeler ?", "none"),
                ("Merci Dr", "none"),
                ("Dr\nMartin", "none"),
                ("Bonjour\nDr", "none"),
                ("Le DR de la région a appelé", "none"),
                ("(Dr) Martin", "none"),
                ("C'est un secret de polichinelle", "none"),
                ("Je te dis un secret : il pleut", "none"),
                ("mot de passe : secret", "none"),
                ("Le code (secret) est dans l'enveloppe", "none"),
                ("Je t'ai préparé une surprise (secret)", "none"),
                ("(secret) ne le dis à personne", "none"),
                ("Secret - Santa de Noël", "none"),
                ("Secret Santa : tirage au sort vendredi", "none"),
                ("Secret", "none"),
                ("Le secret professionnel s'applique", "none"),
                ("c'est très secret entre nous", "none"),
                ("Secret de fabrication", "none"),
                (
                    "La diffusion de la note est restreinte aux chefs de service",
                    "none",
                ),
                ("Diffusion large", "none"),
                ("address drive drop", "none"),
                ("ADDR - adresse", "none"),
                ("spécialement pour la France", "none"),
                ("j'en ai eu secrètement connaissance", "none"),
                ("Renato Secretan arrive lundi", "none"),
                (
                    "La direction régionale (DR) transmettra les chiffres",
                    "none",
                ),
                ("Dossier suivi par : D. Renard (DR)", "none"),
                ("le top secret de la recette", "none"),
                ("", "none"),
            ],
        );
    }

    /// When several markings are present the most sensitive label wins.
    #[test]
    fn the_most_sensitive_marking_wins() {
        let c = classifier();
        assert_eq!(
            c.classify(&body("DR - extrait d'un document Secret Défense")),
            "secret"
        );
        assert_eq!(
            c.classify(&body("Diffusion restreinte / Très Secret Défense")),
            "top_secret"
        );
        let m = Message {
            filename: "note_DR.pdf".into(),
            ..body("Confidentiel Défense")
        };
        assert_eq!(c.classify(&m), "secret");
    }

    /// Every kind of bracket holds a banner, wherever it stands among other brackets and among characters that
    /// share their first byte (a no-break space and `«` start like `»`, `「` like `【`).
    #[test]
    fn finds_banners_in_every_kind_of_bracket() {
        expect_all(
            &classifier(),
            body,
            &[
                ("note [DR] suite", "restricted"),
                ("note (DR) suite", "restricted"),
                ("note {DR} suite", "restricted"),
                ("note <DR> suite", "restricted"),
                ("note «DR» suite", "restricted"),
                ("note « DR » suite", "restricted"),
                ("note 【DR】 suite", "restricted"),
                ("note 〔DR〕 suite", "restricted"),
                ("「cité」\u{a0}: 〔DR〕 note", "restricted"),
                ("« citation » puis (voir) <b> et [SECRET] enfin", "secret"),
                (
                    "(a) [b] {c} <d> «e» 【f】 〔g〕 [TRÈS SECRET] fin",
                    "top_secret",
                ),
                (
                    "(a) [b] {c} <d> «e» 【f】 〔g〕 (Très secret)",
                    "top_secret",
                ),
                ("« Dr » Martin 「DR」", "none"),
            ],
        );
    }

    /// Long lines (searched for brackets with SIMD) find banners in every kind of bracket as short lines do
    /// (searched byte by byte), among other brackets and look-alike lead bytes.
    #[test]
    fn finds_banners_in_brackets_on_long_lines() {
        let c = classifier();
        let long = "Compte rendu « intégral » de la réunion (mardi) du service\u{a0}: voir la note";
        assert!(long.len() >= SIMD_LINE);
        for (open, close) in BRACKETS {
            for (term, label) in [("DR", "restricted"), ("SECRET", "secret"), ("Dr", "none")] {
                let text = format!("{long} {open}{term}{close} jointe");
                assert_eq!(c.classify(&body(&text)), label, "{text:?}");
                let short = format!("note {open}{term}{close} jointe");
                assert_eq!(c.classify(&body(&short)), label, "{short:?}");
            }
        }
    }

    /// The phrase gate only shuts on texts in which the automaton finds nothing, with its SIMD searcher and with
    /// its bit table alike, and the phrase search finds exactly what the automaton alone finds: on texts made of
    /// phrase words, their one-edit spellings, pieces of them and ordinary words, glued or spaced, short and long
    /// (phrases found and the gate shut often enough for the comparison to mean something).
    #[test]
    fn the_phrase_gate_never_hides_a_phrase() {
        let c = classifier();
        let phrases = c
            .phrases
            .as_ref()
            .expect("the shipped markings have phrases");
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for spec_words in MARKINGS
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
        {
            for word in fold(spec_words).split(' ') {
                let word = skeleton(word).into_bytes();
                if word.len() >= EDITABLE_WORD {
                    pieces.extend(one_edit_spellings(&word).into_iter().step_by(7));
                    pieces.push(word[..word.len() / 2].to_vec());
                    pieces.push(word[word.len() / 2..].to_vec());
                }
                pieces.push(word);
            }
        }
        pieces.extend(
            [
                "bonjour", "a", "reunion", "reste", "tres", "sion", "ce", " ", "-",
            ]
            .map(|w| w.as_bytes().to_vec()),
        );
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut buffers = PhraseBuffers::default();
        let (mut found_some, mut shut_some) = (0, 0);
        let table = phrases.gate.without_simd();
        for _ in 0..20_000 {
            let mut text = Vec::new();
            for _ in 0..1 + next(12) {
                text.extend_from_slice(&pieces[next(pieces.len())]);
                if next(2) == 0 {
                    text.push(b' ');
                }
            }
            let text = String::from_utf8(text).expect("skeleton letters are ASCII");
            let skeleton = Skeleton::of(&text);
            let (mut found, mut read) = (Vec::new(), Vec::new());
            phrases.find(&skeleton, false, &mut buffers, &mut |m| found.push(m));
            phrases.read(&skeleton, false, &mut buffers.ring, &mut |m| read.push(m));
            assert_eq!(found, read, "{text:?}");
            let simd_opens = phrases.gate.opens(&skeleton.bytes, &mut buffers.seen);
            let table_opens = table.opens(&skeleton.bytes, &mut buffers.seen);
            assert_eq!(simd_opens, table_opens, "{text:?}");
            assert!(
                simd_opens || read.is_empty(),
                "{text:?}: the gate hides {read:?}"
            );
            found_some += usize::from(!read.is_empty());
            shut_some += usize::from(!simd_opens);
        }
        assert!(found_some > 1_000, "only {found_some} texts had a phrase");
        assert!(shut_some > 1_000, "the gate shut only {shut_some} times");
    }

    /// No text, however odd, makes the classifier panic; pathological shapes stay linear (they finish at all).
    #[test]
    fn survives_any_input() {
        let c = classifier();
        let alphabet: Vec<char> = "aDR[]()<>&#;:-–—|/\n \u{200B}\u{00A0}éÉ𝐃ＤдΑ\u{0301}\u{FEFF}\u{E0041}<b></b>&nbsp;&#x;\u{202E}\u{202C}$!3'\"=_ꓓ\u{FDFA}"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let rounds = std::env::var("ROOMGUARD_FUZZ_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3000);
        for _ in 0..rounds {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = ((state >> 33) % 200) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let m = Message {
                body: text.clone(),
                formatted_body: text.clone(),
                filename: text,
                ..body("")
            };
            let label = c.classify(&m);
            assert!(c.labels().any(|l| l == label));
        }
        for shape in [
            "(", "[", "<", "&", "&#", "-", "«", "\n", "DR ", "<b>", "<a b='", "\u{202E}",
        ] {
            let text = shape.repeat(65_536 / shape.len());
            let m = Message {
                body: text.clone(),
                formatted_body: text.clone(),
                filename: text,
                ..body("")
            };
            let _ = c.classify(&m);
        }
    }

    /// The work of a classification (bytes folded, scanned and examined as banner candidates) is bounded by the
    /// input's size with the same small constant for every hostile shape as for plain text: characters that expand
    /// or decompose, brackets, near-misses of the phrases, HTML, file-name parts, overrides.
    #[test]
    fn work_is_linear_in_the_input_whatever_the_characters() {
        let c = classifier();
        let work = |unit: &str| {
            let text = unit.repeat(65_536 / unit.len());
            let m = Message {
                body: text.clone(),
                formatted_body: text.clone(),
                filename: text.clone(),
                ..body("")
            };
            WORK.with(|w| w.set(0));
            let _ = c.classify(&m);
            WORK.with(std::cell::Cell::get) as f64 / (3 * text.len()) as f64
        };
        let ascii = work("Bonjour, la reunion du service est deplacee a 15 h demain. ");
        for unit in [
            "\u{FDFA}",
            "한국어",
            "e\u{0301}\u{0302}\u{0303}",
            "\u{2487}\u{33AF}",
            "\u{202E}etniertser noisuffid\u{202C} ",
            "(dx)[DR]-DR-\n",
            "((((((((",
            "diffussion restrainte spéciale ",
            "<b title=\"x\">d</b>&eacute;<!--c-->",
            "DR_A1b",
            "aB1",
        ] {
            let ratio = work(unit);
            assert!(
                ratio <= 6.0,
                "{unit:?}: {ratio:.1} bytes of work per input byte (plain text: {ascii:.1})"
            );
        }
    }

    /// Author mistakes in the markings file are reported with their line.
    #[test]
    fn reports_bad_markings_with_lines() {
        let bad = "[[marking]]\nlabel = \"restricted\"\nlevel = 1\nphrases = [\"dr\"]\n\n[[marking]]\nlabel = \"Bad Label\"\nlevel = 2\nabbreviations = [\"Dr\"]\n\n[[marking]]\nlabel = \"x\"\nlevel = 3\nphrases = [\"секретно\"]\n";
        let problems = Classifier::from_toml(bad).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("markings.toml:1:") && p.contains("too short")),
            "{rendered:?}"
        );
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("markings.toml:6:") && p.contains("Bad Label")),
            "{rendered:?}"
        );
        assert!(
            rendered.iter().any(|p| p.contains("capitals")),
            "{rendered:?}"
        );
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("markings.toml:11:") && p.contains("not Latin")),
            "{rendered:?}"
        );
        let syntax =
            Classifier::from_toml("[[marking]]\nlabel = \"x\"\nlevel = one\n").unwrap_err();
        assert_eq!(syntax[0].line, Some(3), "{syntax:?}");
        let field = Classifier::from_toml(
            "[[marking]]\nlabel = \"x\"\nlevel = 1\nphrases = [\"usage interne\"]\nmisspellings = \"no\"\n",
        )
        .unwrap_err();
        assert_eq!(field[0].line, Some(5), "{field:?}");
    }

    /// `misspellings = false` turns one-edit matching off for a marking's phrases.
    #[test]
    fn misspellings_can_be_turned_off() {
        let exact = Classifier::from_toml(
            "[[marking]]\nlabel = \"x\"\nlevel = 1\nphrases = [\"usage interne\"]\nmisspellings = false\n",
        )
        .unwrap();
        let fuzzy = Classifier::from_toml(
            "[[marking]]\nlabel = \"x\"\nlevel = 1\nphrases = [\"usage interne\"]\n",
        )
        .unwrap();
        assert_eq!(exact.classify(&body("Usage Intrene")), "none");
        assert_eq!(fuzzy.classify(&body("Usage Intrene")), "x");
        assert_eq!(exact.classify(&body("Usage Interne")), "x");
    }
}
