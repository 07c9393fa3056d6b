//! A quick test that rules out every phrase of `markings.toml` before the phrase automaton reads a text.
//!
//! The phrase automaton holds every phrase word and each of its one-edit spellings (thousands of patterns), so it
//! steps through a text byte by byte: on an ordinary message it was the classifier's largest cost, and half of what
//! a message send cost roomguard beyond a bare gRPC answer. A phrase can only be found where a spelling of each of
//! its words is in the skeleton, and every spelling of a word contains one of a few **anchors**: the word itself
//! when it is matched exactly; when it may carry one edit, its first half or the rest of it past the letter after
//! that half, since one edit (a letter inserted, deleted or replaced, two neighbours swapped) never touches both.
//! The gate looks for the anchors only and lets the automaton read the text only when some phrase has an anchor of
//! every one of its words: `diffusion` alone does not open it, `diffusion ... restreinte` does, wherever the two
//! stand. It finds where anchors may start with Teddy, aho-corasick's SIMD searcher for up to 64 short patterns
//! (the shipped markings have 20 anchors), or, without it, by reading the skeleton once, each three letters a 15-bit
//! key into a 4 KiB bit table of the anchors' first three letters; anchors are compared only there.
//!
//! The gate never decides a match: it can only skip a text in which no phrase can be found. It is built from the
//! spellings themselves and checks each of them contains an anchor of its word (adding the spelling as an anchor if
//! one did not, which the halving rule makes impossible), so it stays right whatever the edit rules become.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aho_corasick::{Span, packed};

/// Anchors shorter than this are not looked for (see [`GateBuilder::word`]).
const SHORTEST_ANCHOR: usize = 3;

/// Places where an anchor may start that the gate looks at before it opens anyway: a text full of anchors that
/// complete no phrase (`diffdiffdiff...`) costs a bounded number of looks, then the automaton's one pass.
const MOST_LOOKS: usize = 64;

/// Bits of a [`key`]: five per letter, three letters.
const KEY_BITS: u32 = 15;

/// The key of three skeleton bytes. Five bits tell the letters `a`..`z` apart; other bytes may share a key with a
/// letter, which only costs a comparison. Each position's key is computed from its own three bytes, not rolled from
/// the previous one, so that the loop carries no dependency from byte to byte.
fn key([a, b, c]: [u8; 3]) -> u16 {
    (u16::from(a & 0x1f) << 10) | (u16::from(b & 0x1f) << 5) | u16::from(c & 0x1f)
}

/// The anchors of every phrase word, and which phrases need which.
#[derive(Debug, Clone)]
pub(super) struct PhraseGate {
    /// Per key: whether an anchor starts with those three bytes.
    starts: Box<[u64]>,
    /// Per key that starts an anchor: those anchors' ids.
    by_key: BTreeMap<u16, Vec<usize>>,
    /// Every distinct anchor, by id.
    anchors: Vec<Vec<u8>>,
    /// The anchors in a SIMD searcher (Teddy), where the CPU has one and there are at most 64 anchors; otherwise
    /// the bit table is read.
    packed: Option<packed::Searcher>,
    /// Per phrase, per word: the anchors (as a bit set over anchor ids) of which one must be in the text.
    phrases: Vec<Vec<Vec<u64>>>,
    /// Per anchor: the phrases that use it, to check only those when it is first seen.
    users: Vec<Vec<usize>>,
    /// A phrase has no word with anchors long enough to look for: the gate cannot rule it out.
    always_open: bool,
}

/// Builds a [`PhraseGate`] word by word.
#[derive(Debug, Default)]
pub(super) struct GateBuilder {
    ids: HashMap<Vec<u8>, usize>,
    anchors: Vec<Vec<u8>>,
    /// Per phrase, per word: anchor ids.
    phrases: Vec<Vec<Vec<usize>>>,
}

/// The anchors of a word whose accepted spellings are `spellings` (the word itself among them): the word when it
/// is its only spelling; otherwise its first half and what follows the letter after that half (`diff` and `sion`
/// for `diffusion`, `restr` and `inte` for `restreinte`), plus any spelling that holds neither.
fn anchors_of(word: &[u8], spellings: &BTreeSet<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut anchors = if spellings.len() <= 1 {
        vec![word.to_vec()]
    } else {
        let half = word.len() / 2;
        vec![word[..half].to_vec(), word[half + 1..].to_vec()]
    };
    anchors.retain(|a| !a.is_empty());
    for spelling in spellings {
        if !anchors.iter().any(|a| contains(spelling, a)) {
            anchors.push(spelling.clone());
        }
    }
    anchors
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl GateBuilder {
    /// Starts the next phrase; its words follow with [`GateBuilder::word`].
    pub(super) fn phrase(&mut self) {
        self.phrases.push(Vec::new());
    }

    /// Adds a word of the current phrase, with its accepted spellings. A word with an anchor under
    /// [`SHORTEST_ANCHOR`] letters (`ue`, or `ce` from `france`) is left out: it would be in nearly every text and
    /// slow the search for the others, and the phrase's other words are enough to shut the gate.
    pub(super) fn word(&mut self, word: &[u8], spellings: &BTreeSet<Vec<u8>>) {
        let anchors = anchors_of(word, spellings);
        if anchors.iter().any(|a| a.len() < SHORTEST_ANCHOR) {
            return;
        }
        let ids = anchors
            .into_iter()
            .map(|anchor| {
                *self.ids.entry(anchor).or_insert_with_key(|a| {
                    self.anchors.push(a.clone());
                    self.anchors.len() - 1
                })
            })
            .collect();
        if let Some(words) = self.phrases.last_mut() {
            words.push(ids);
        }
    }

    pub(super) fn build(self) -> PhraseGate {
        let mut starts = vec![0u64; (1 << KEY_BITS) / 64].into_boxed_slice();
        let mut by_key: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (id, anchor) in self.anchors.iter().enumerate() {
            let k = key([anchor[0], anchor[1], anchor[2]]);
            starts[usize::from(k) / 64] |= 1 << (k % 64);
            by_key.entry(k).or_default().push(id);
        }
        let set_words = self.anchors.len().div_ceil(64).max(1);
        let mut users = vec![Vec::new(); self.anchors.len()];
        let phrases = self
            .phrases
            .iter()
            .enumerate()
            .map(|(phrase, words)| {
                words
                    .iter()
                    .map(|ids| {
                        let mut set = vec![0u64; set_words];
                        for &id in ids {
                            set[id / 64] |= 1 << (id % 64);
                            if users[id].last() != Some(&phrase) {
                                users[id].push(phrase);
                            }
                        }
                        set
                    })
                    .collect()
            })
            .collect();
        PhraseGate {
            packed: packed::Config::new()
                .builder()
                .extend(&self.anchors)
                .build(),
            always_open: self.phrases.iter().any(Vec::is_empty),
            starts,
            by_key,
            anchors: self.anchors,
            phrases,
            users,
        }
    }
}

impl PhraseGate {
    /// Whether some phrase has an anchor of each of its words in `skeleton`: false means no phrase can be found
    /// there. Stops reading at the first anchor that completes a phrase, and opens when there are more than
    /// [`MOST_LOOKS`] places where an anchor may start (the automaton's one pass is then the cheaper read). `seen` is
    /// the caller's buffer.
    pub(super) fn opens(&self, skeleton: &[u8], seen: &mut Vec<u64>) -> bool {
        if self.always_open {
            return true;
        }
        seen.clear();
        seen.resize(self.anchors.len().div_ceil(64).max(1), 0);
        match &self.packed {
            Some(searcher) => self.completes(skeleton, seen, packed_starts(searcher, skeleton)),
            None => self.completes(skeleton, seen, table_starts(&self.starts, skeleton)),
        }
    }

    /// Whether the anchors found at `starts` complete a phrase (or there are too many places to look at).
    fn completes(
        &self,
        skeleton: &[u8],
        seen: &mut [u64],
        starts: impl Iterator<Item = usize>,
    ) -> bool {
        for (looks, start) in starts.enumerate() {
            if looks == MOST_LOOKS {
                return true;
            }
            let Some(&[a, b, c]) = skeleton.get(start..start + SHORTEST_ANCHOR) else {
                continue;
            };
            for &id in self.by_key.get(&key([a, b, c])).into_iter().flatten() {
                let bit = 1 << (id % 64);
                if seen[id / 64] & bit != 0 || !skeleton[start..].starts_with(&self.anchors[id]) {
                    continue;
                }
                seen[id / 64] |= bit;
                let complete = |phrase: &usize| {
                    self.phrases[*phrase]
                        .iter()
                        .all(|word| word.iter().zip(seen.iter()).any(|(a, s)| a & s != 0))
                };
                if self.users[id].iter().any(complete) {
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
impl PhraseGate {
    /// The same gate reading its bit table, as without a SIMD searcher.
    pub(super) fn without_simd(&self) -> Self {
        PhraseGate {
            packed: None,
            ..self.clone()
        }
    }
}

/// Where an anchor starts in `skeleton`, in order, found by Teddy: each search starts one byte after the last
/// place found, so anchors that overlap or share a start are all looked at.
fn packed_starts<'a>(
    searcher: &'a packed::Searcher,
    skeleton: &'a [u8],
) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let found = searcher.find_in(skeleton, Span::from(from..skeleton.len()))?;
        from = found.start() + 1;
        Some(found.start())
    })
}

/// Where an anchor may start in `skeleton`, in order, by the bit table of the anchors' first three letters.
fn table_starts<'a>(starts: &'a [u64], skeleton: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let (second, third) = (
        skeleton.get(1..).unwrap_or_default(),
        skeleton.get(2..).unwrap_or_default(),
    );
    skeleton
        .iter()
        .zip(second)
        .zip(third)
        .enumerate()
        .filter_map(|(start, ((&a, &b), &c))| {
            let k = key([a, b, c]);
            (starts[usize::from(k) / 64] & (1 << (k % 64)) != 0).then_some(start)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(phrases: &[&[(&str, &[&str])]]) -> PhraseGate {
        let mut builder = GateBuilder::default();
        for words in phrases {
            builder.phrase();
            for (word, others) in *words {
                let mut spellings: BTreeSet<Vec<u8>> = BTreeSet::from([word.as_bytes().to_vec()]);
                spellings.extend(others.iter().map(|s| s.as_bytes().to_vec()));
                builder.word(word.as_bytes(), &spellings);
            }
        }
        builder.build()
    }

    /// A word matched exactly is its own anchor; a word that may carry one edit is anchored by its first half and
    /// by what follows the letter after it, which one edit never both touches.
    #[test]
    fn anchors_are_the_word_or_its_two_halves() {
        let exact = BTreeSet::from([b"tres".to_vec()]);
        assert_eq!(anchors_of(b"tres", &exact), vec![b"tres".to_vec()]);
        let edited = BTreeSet::from([
            b"diffusion".to_vec(),
            b"difffusion".to_vec(),
            b"difusion".to_vec(),
            b"difufsion".to_vec(),
            b"idffusion".to_vec(),
            b"diffusino".to_vec(),
        ]);
        assert_eq!(
            anchors_of(b"diffusion", &edited),
            vec![b"diff".to_vec(), b"sion".to_vec()]
        );
    }

    /// A spelling holding no anchor of its word becomes an anchor itself: the gate is built from what the
    /// automaton will look for, not from what the edit rules are supposed to produce.
    #[test]
    fn a_spelling_without_an_anchor_becomes_one() {
        let odd = BTreeSet::from([b"diffusion".to_vec(), b"xyz".to_vec()]);
        assert_eq!(
            anchors_of(b"diffusion", &odd),
            vec![b"diff".to_vec(), b"sion".to_vec(), b"xyz".to_vec()]
        );
    }

    /// The gate opens only when every word of some phrase has an anchor in the text, in any order and glued to
    /// anything; one word of a phrase, or words of two different phrases, keep it shut. A word too short to look
    /// for (`ue`) is not required.
    #[test]
    fn opens_only_when_every_word_of_a_phrase_is_anchored() {
        let g = gate(&[
            &[
                ("diffusion", &["difusion"]),
                ("restreinte", &["restrainte"]),
            ],
            &[("secret", &[]), ("otan", &[])],
            &[("tres", &[]), ("ue", &[])],
        ]);
        let mut seen = Vec::new();
        for (text, open) in [
            ("diffusionrestreinte", true),
            ("xxrestrxxdifxsionxx", true),
            ("restreinteetdiffusion", true),
            ("otansecret", true),
            ("tres", true),
            ("diffusion", false),
            ("diffusionsecret", false),
            ("ue", false),
            ("bonjouratous", false),
            ("", false),
        ] {
            assert_eq!(g.opens(text.as_bytes(), &mut seen), open, "{text}");
        }
    }

    /// A text full of anchors that complete no phrase is looked at in up to [`MOST_LOOKS`] places; at one place
    /// more the gate opens, since the automaton's one pass is then cheaper than more looks.
    #[test]
    fn opens_after_too_many_places_to_look_at() {
        let g = gate(&[&[("diffusion", &[]), ("restreinte", &[])]]);
        for g in [g.clone(), g.without_simd()] {
            let mut seen = Vec::new();
            assert!(!g.opens("diffusion".repeat(MOST_LOOKS).as_bytes(), &mut seen));
            assert!(g.opens("diffusion".repeat(MOST_LOOKS + 1).as_bytes(), &mut seen));
        }
    }

    /// A phrase none of whose words is long enough to look for keeps the gate open for every text.
    #[test]
    fn a_phrase_without_anchors_keeps_the_gate_open() {
        let g = gate(&[&[("diffusion", &[])], &[("ue", &[]), ("eu", &[])]]);
        assert!(g.opens(b"bonjour", &mut Vec::new()));
    }
}
