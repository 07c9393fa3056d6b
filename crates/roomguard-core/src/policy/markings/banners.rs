//! Banners (`SECRET`, `TRÈS SECRET`) and abbreviations (`DR`): ordinary words or a doctor's title in running text,
//! so they count only where a banner stands and written as a banner is written; and the ordinary uses of an
//! abbreviation that stands there all the same (an acronym's definition, a photo credit).

use std::collections::BTreeMap;

use super::normalize::{Skeleton, skeleton};
use super::scratch::Scratch;
use super::work::count_work;

/// Characters that separate a banner from the text beside it on the same line.
pub(super) const BANNER_SEPARATORS: &[char] = &['-', '–', '—', '―', ':', '|', '/', '•', '·', '>'];

/// The bytes where a bracket of [`BRACKETS`] opens in `s`, in order, by two SIMD searches (`memchr3`), one for
/// `[({` and one for `<` and the lead bytes of `«`, `【` and `〔`, each reading the line once, merged: a byte loop
/// over every line was most of the banner search's time on an ordinary message. For lines of [`SIMD_LINE`] bytes or
/// more; on a shorter one, setting the searches up costs more than [`openers_by_byte`].
pub(super) fn openers_by_simd(s: &str) -> impl Iterator<Item = usize> + '_ {
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
pub(super) fn openers_by_byte(s: &str) -> impl Iterator<Item = usize> + '_ {
    s.bytes()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'[' | b'(' | b'{' | b'<' | 0xC2 | 0xE3))
        .map(|(at, _)| at)
        .filter(|&at| opens_bracket(s, at))
}

/// Whether a bracket of [`BRACKETS`] opens at byte `at` of `s`.
pub(super) fn opens_bracket(s: &str, at: usize) -> bool {
    matches!(s[at..].chars().next(), Some(c) if BRACKETS.iter().any(|(open, _)| *open == c))
}

/// Lines this long or longer are searched for brackets with SIMD (see [`openers_by_simd`]).
pub(super) const SIMD_LINE: usize = 64;

/// The positions and byte lengths of the [`BANNER_SEPARATORS`] in `s`, by a byte scan (they are ASCII or start
/// with the lead bytes of `–—―•` and `·`).
pub(super) fn separators(s: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    s.bytes()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'-' | b':' | b'|' | b'/' | b'>' | 0xE2 | 0xC2))
        .filter_map(|(at, _)| {
            let c = s[at..].chars().next()?;
            BANNER_SEPARATORS.contains(&c).then_some((at, c.len_utf8()))
        })
}

/// The largest char boundary of `s` at or before `index`.
pub(super) fn boundary_at_or_before(s: &str, index: usize) -> usize {
    let mut i = index.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Bracket pairs that enclose a banner.
pub(super) const BRACKETS: &[(char, char)] = &[
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
pub(super) const MAX_BRACKETED: usize = 48;

/// How a banner term is written in running text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Term {
    /// An ordinary word (`secret`).
    Word,
    /// An abbreviation (`DR`), which is also a title (`Dr`) or a piece of another word.
    Abbreviation,
}

/// A banner term: how it is written and the marking it signals.
#[derive(Debug, Clone)]
pub(super) struct Banner {
    pub(super) term: Term,
    pub(super) marking: usize,
}

/// Where a banner candidate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
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
pub(super) enum Case {
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
    pub(super) fn of(text: &str) -> Self {
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
    pub(super) fn is_banner(self, case: Case, place: Place) -> bool {
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

/// Every banner and abbreviation of a policy, by skeleton.
#[derive(Debug, Clone, Default)]
pub(super) struct Banners {
    /// Banner skeleton -> banners with that skeleton.
    terms: BTreeMap<Vec<u8>, Vec<Banner>>,
    /// The longest banner skeleton, in bytes.
    longest: usize,
    /// The longest banner term, in words, for file-name matching.
    pub(super) max_words: usize,
}

impl Banners {
    pub(super) fn new(terms: BTreeMap<Vec<u8>, Vec<Banner>>, max_words: usize) -> Self {
        Banners {
            longest: terms.keys().map(Vec::len).max().unwrap_or(0),
            terms,
            max_words,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

impl Banners {
    /// Looks for banner terms where banners stand, line by line. A banner is short, so only the first and last
    /// [`MAX_BRACKETED`] bytes of a line and the inside of short brackets are ever examined, and each closing
    /// bracket is searched for once however many brackets open before it: the work is linear in the text, whatever
    /// the shape of its lines (say 64 KiB of `(`).
    pub(super) fn find_in_text(
        &self,
        folded: &str,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
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
    pub(super) fn find_bracketed(
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
}

impl Banners {
    /// `candidate` is a banner if its skeleton is a banner term written as a banner is at `place` (see
    /// [`Term::is_banner`]).
    pub(super) fn check_term(
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
    pub(super) fn check_term_after(
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
        if key.is_empty() || key.len() > self.longest {
            return;
        }
        let Some(banners) = self.terms.get(key) else {
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
pub(super) const CREDIT_WORDS: &[&str] = &[
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
pub(super) const MAX_CREDITED: usize = 3;

/// Whether `candidate`, after `before` on its line, is a picture's credit: `©` in it or just before it, or a credit
/// word before it with at most a few names in capitals between (`Crédit photo : D.R.`, `Photo : AFP / DR`).
pub(super) fn is_credit(before: &str, candidate: &str) -> bool {
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
pub(super) const MAX_QUALIFIERS: usize = 4;

/// Whether the words at the end of `before` define `key` (a skeleton) as an acronym: their initials spell it, short
/// linking words aside (`Direction Régionale`, `directions régionales`, `Document de référence`, `D. Renard` before
/// `(DR)`), maybe followed by a place's or a body's name in capitals (`Direction régionale Grand Est (DR)`).
pub(super) fn defines_acronym(before: &str, key: &[u8]) -> bool {
    pub(super) const LINKING: &[&str] = &[
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
