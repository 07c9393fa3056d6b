//! Phrases (`diffusion restreinte`, `secret UE`) matched on the skeleton of a text: every phrase word and its
//! accepted spellings in one Aho-Corasick automaton, a phrase found where spellings of its words follow each other,
//! within one sentence, from a word's start to a word's end.

use std::collections::{BTreeSet, HashMap};

use aho_corasick::{AhoCorasick, AhoCorasickKind};

use super::gate::{GateBuilder, PhraseGate};
use super::normalize::{SENTENCE, SOFT, Skeleton, WORD_END, WORD_START};

/// Phrases with fewer letters than this are matched exactly and as whole words; longer ones anywhere, with one edit
/// per word.
pub const LONG_PHRASE: usize = 12;

/// Words of a long phrase with fewer letters than this are matched exactly: one edit to `UE`, `OTAN` or `top` makes
/// another word, not a misspelling.
pub const EDITABLE_WORD: usize = 5;

/// Skeletons shorter than this go straight to the phrase automaton: on a short message (`Bonjour à tous, la réunion
/// est déplacée à 15 h.`) one pass of the automaton costs less than the gate's search.
pub(super) const GATED_SKELETON: usize = 64;

/// The letters a skeleton is written with (`l` is read as `i`).
pub(super) const SKELETON_LETTERS: &[u8] = b"abcdefghijkmnopqrstuvwxyz";

/// One phrase, split into the skeletons of its words.
#[derive(Debug)]
pub(super) struct PhraseSpec {
    pub(super) marking: usize,
    pub(super) words: Vec<Vec<u8>>,
    /// Under [`LONG_PHRASE`] letters: exact, and whole words only.
    pub(super) short: bool,
    pub(super) misspellings: bool,
}

/// Where one spelling of a phrase word stands in its phrase.
#[derive(Debug, Clone, Copy)]
pub(super) struct WordSlot {
    phrase: usize,
    /// Unique over all phrases; the phrase's previous word is `slot - 1`.
    slot: usize,
    first: bool,
    last: bool,
}

/// Every phrase word and its accepted spellings in one automaton; a phrase is found where spellings of its words
/// follow each other in the skeleton (a symbol between two words may be skipped: `diffusion|restreinte`).
#[derive(Debug, Clone)]
pub(super) struct PhraseMatcher {
    /// Rules out, cheaply, the texts in which no phrase can be found.
    pub(super) gate: PhraseGate,
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
pub(super) fn one_edit_spellings(word: &[u8]) -> BTreeSet<Vec<u8>> {
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
    pub(super) fn build(
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
    pub(super) fn find(
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
    pub(super) fn ends_phrase(
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
    pub(super) fn read(
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
pub(super) struct PhraseInfo {
    pub(super) marking: usize,
    /// Under [`LONG_PHRASE`] letters: exact, and whole words only.
    pub(super) short: bool,
}

/// The endings a long phrase's last word may take and still be that word: French agreement (`restreintes`).
pub(super) const INFLECTIONS: &[&[u8]] = &[b"s", b"e", b"es"];

/// The phrase matcher's buffers.
#[derive(Debug, Default)]
pub(super) struct PhraseBuffers {
    /// The gate's anchors seen.
    pub(super) seen: Vec<u64>,
    /// The automaton's ring of phrase prefixes.
    pub(super) ring: Vec<u64>,
}

/// The words of a phrase as OCR may read them: for each word with an `m`, the phrase with that word's `m`s read
/// `rn` (an `m` is two letters to OCR in many fonts). Empty for a phrase without `m`, as every shipped one but
/// `COSMIC`.
pub(super) fn rn_variants(words: &[Vec<u8>]) -> Vec<Vec<Vec<u8>>> {
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
