//! Finds protection markings ("Diffusion Restreinte", "Spécial France", "Secret Défense", ...) in a message and
//! returns the label of the most sensitive one.
//!
//! Two kinds of marking text come from `markings.toml`:
//! - **phrases** count anywhere. They are matched on the [skeleton](crate::normalize::skeleton) of the text, where
//!   no case, accent, separator, tag or invisible character survives, so `d-i-f-f-u-s-i-o-n  R&eacute;streinte` is
//!   still caught;
//! - **banners** (`secret`, `très secret`) and **abbreviations** (`DR`) are ordinary words or a doctor's title in
//!   running text, so they count only where a banner stands: alone on a line, in brackets (`[DR]`, `(SECRET)`), or
//!   at the start or end of a line next to a separator (`DR - compte rendu`, `Rapport | DR`). `Dr Martin` is a
//!   doctor: no bracket, no separator. Alone on a line and in a file name (`note_DR.pdf`, a whole word), where an
//!   abbreviation could be an ordinary word, it must be in capitals.
//!
//! Everything is built once per policy load (one Aho-Corasick automaton, one hash map); classifying is linear in the
//! text's length.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use serde::Deserialize;

use crate::{
    diagnostics::{Problem, is_identifier},
    message::Message,
    normalize::{fold, html_to_text, skeleton, skeleton_into},
};

/// The file, inside the policy directory, that lists the markings.
pub const MARKINGS_FILE: &str = "markings.toml";

/// The label of a message with no marking.
pub const NO_MARKING: &str = "none";

/// Characters that separate a banner from the text beside it on the same line.
const BANNER_SEPARATORS: &[char] = &['-', '–', '—', '―', ':', '|', '/', '•', '·', '>'];

/// The first byte of `s` where a bracket of [`BRACKETS`] opens, by a byte scan (the openers are ASCII or start with
/// the lead bytes of `«`, `【` and `〔`).
fn find_opener(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = bytes[from..]
        .iter()
        .position(|b| matches!(b, b'[' | b'(' | b'{' | b'<' | 0xC2 | 0xE3))
    {
        let at = from + pos;
        if matches!(s[at..].chars().next(), Some(c) if BRACKETS.iter().any(|(open, _)| *open == c))
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

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

/// How far (in bytes) a bracketed banner may stretch; longer brackets are sentences, not banners.
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

/// A banner term: its skeleton, whether it must be in capitals, and the marking it signals.
#[derive(Debug, Clone)]
struct Banner {
    capitals: bool,
    marking: usize,
}

/// Finds protection markings in messages.
#[derive(Debug, Clone)]
pub struct Classifier {
    markings: Vec<Marking>,
    phrases: Option<AhoCorasick>,
    phrase_marking: Vec<usize>,
    /// Banner skeleton (UTF-8) -> banners with that skeleton.
    banners: HashMap<Vec<u8>, Vec<Banner>>,
    /// The longest banner skeleton, in words, for file-name matching.
    max_banner_words: usize,
}

impl Classifier {
    /// Builds the classifier from the text of `markings.toml`.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Problem>> {
        let file: MarkingsFile =
            toml::from_str(text).map_err(|e| vec![Problem::from_toml(MARKINGS_FILE, text, &e)])?;
        let mut problems = Vec::new();
        let mut markings = Vec::new();
        let mut patterns = Vec::new();
        let mut phrase_marking = Vec::new();
        let mut banners: HashMap<Vec<u8>, Vec<Banner>> = HashMap::new();
        let mut max_banner_words = 1;
        let mut seen_phrases: HashMap<String, String> = HashMap::new();
        for spanned in &file.marking {
            let line = crate::diagnostics::line_of(text, spanned.span().start);
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
                let skel = skeleton(&fold(phrase));
                if skel.chars().count() < 6 {
                    problems.push(problem(format!(
                        "phrase `{phrase}` is too short to match anywhere in a text (under 6 letters): make it a \
                         banner or an abbreviation, which only match in banner position"
                    )));
                    continue;
                }
                if let Some(other) = seen_phrases.insert(skel.clone(), spec.label.clone()) {
                    problems.push(problem(format!(
                        "phrase `{phrase}` is already listed (for `{other}`)"
                    )));
                    continue;
                }
                patterns.push(skel);
                phrase_marking.push(index);
            }
            for (terms, capitals) in [(&spec.banners, false), (&spec.abbreviations, true)] {
                for term in terms {
                    let skel = skeleton(&fold(term));
                    if skel.is_empty() {
                        problems.push(problem(format!("banner `{term}` has no letters")));
                        continue;
                    }
                    if capitals && fold(term) != fold(term).to_uppercase() {
                        problems.push(problem(format!(
                            "abbreviation `{term}` must be written in capitals"
                        )));
                    }
                    max_banner_words = max_banner_words.max(term.split_whitespace().count());
                    banners.entry(skel.into_bytes()).or_default().push(Banner {
                        capitals,
                        marking: index,
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let phrases = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(&patterns)
                    .map_err(|e| vec![Problem::in_file(MARKINGS_FILE, e.to_string())])?,
            )
        };
        Ok(Classifier {
            markings,
            phrases,
            phrase_marking,
            banners,
            max_banner_words,
        })
    }

    /// Every label this classifier can return, `none` included.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        std::iter::once(NO_MARKING).chain(self.markings.iter().map(|m| m.label.as_str()))
    }

    /// The label of the most sensitive marking in the message's body, HTML body or file name; `none` if none.
    pub fn classify(&self, message: &Message) -> &str {
        let mut best: Option<usize> = None;
        let mut note = |found: usize| {
            if best.is_none_or(|b| self.markings[found].level > self.markings[b].level) {
                best = Some(found);
            }
        };
        for text in [
            fold(&message.body),
            fold(&html_to_text(&message.formatted_body)),
        ] {
            if text.is_empty() {
                continue;
            }
            self.find_phrases(&text, &mut note);
            self.find_banners(&text, &mut note);
        }
        if !message.filename.is_empty() {
            let name = fold(&message.filename);
            self.find_phrases(&name, &mut note);
            self.find_filename_banners(&name, &mut note);
        }
        best.map_or(NO_MARKING, |b| self.markings[b].label.as_str())
    }

    fn find_phrases(&self, folded: &str, note: &mut impl FnMut(usize)) {
        if let Some(ac) = &self.phrases {
            let mut skel = Vec::with_capacity(folded.len());
            skeleton_into(folded, &mut skel);
            for m in ac.find_overlapping_iter(&skel) {
                note(self.phrase_marking[m.pattern().as_usize()]);
            }
        }
    }

    /// Looks for banner terms where banners stand, line by line. A banner is short, so only the first and last
    /// [`MAX_BRACKETED`] bytes of a line and the inside of short brackets are ever examined: the work is linear in
    /// the text, whatever the shape of its lines (say 64 KiB of `(`).
    fn find_banners(&self, folded: &str, note: &mut impl FnMut(usize)) {
        if self.banners.is_empty() {
            return;
        }
        let mut buffer = Vec::with_capacity(MAX_BRACKETED);
        for line in folded.split('\n') {
            let trimmed =
                line.trim_matches(|c: char| c.is_whitespace() || "*#_~=>\"'`.!".contains(c));
            if trimmed.is_empty() {
                continue;
            }
            // Alone on the line (decorations aside): `DR`, `*** SECRET ***`, `— DR —`.
            if trimmed.len() <= 2 * MAX_BRACKETED {
                let alone = trimmed.trim_matches(|c| BANNER_SEPARATORS.contains(&c) || c == ' ');
                self.check_term(alone, true, &mut buffer, note);
            }
            // At the start of the line, before a separator: `DR - objet`.
            let head = &trimmed[..boundary_at_or_before(trimmed, MAX_BRACKETED + 1)];
            if let Some((pos, _)) = separators(head).next() {
                self.check_term(&trimmed[..pos], false, &mut buffer, note);
            }
            // At the end of the line, after a separator: `Compte rendu | DR`.
            let tail_start =
                boundary_at_or_before(trimmed, trimmed.len().saturating_sub(MAX_BRACKETED + 4));
            if let Some(pos) = trimmed[tail_start..].rfind(BANNER_SEPARATORS) {
                let pos = tail_start + pos;
                let sep_len = trimmed[pos..].chars().next().map_or(1, char::len_utf8);
                self.check_term(&trimmed[pos + sep_len..], false, &mut buffer, note);
            }
            // In brackets anywhere on the line: `[DR]`, `(Très Secret)`.
            let mut rest = trimmed;
            while let Some(start) = find_opener(rest) {
                let open = rest[start..].chars().next().unwrap_or('[');
                let close = BRACKETS
                    .iter()
                    .find(|(o, _)| *o == open)
                    .map_or(']', |(_, c)| *c);
                let after = &rest[start + open.len_utf8()..];
                let end = after
                    .char_indices()
                    .take_while(|(i, _)| *i <= MAX_BRACKETED)
                    .find(|(_, c)| *c == close);
                if let Some((end, _)) = end {
                    self.check_term(&after[..end], false, &mut buffer, note);
                }
                rest = after;
            }
        }
    }

    /// In a file name, a banner term counts as one or more whole words in capitals: `2024_DR_note.pdf`.
    fn find_filename_banners(&self, folded: &str, note: &mut impl FnMut(usize)) {
        let words: Vec<&str> = folded
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        for start in 0..words.len() {
            for len in 1..=self.max_banner_words.min(words.len() - start) {
                let group = &words[start..start + len];
                if group.iter().all(|w| w.chars().all(|c| !c.is_lowercase())) {
                    self.check_term(&group.join(" "), true, &mut Vec::new(), note);
                }
            }
        }
    }

    /// `candidate` is a banner if its skeleton is a banner term. `strict` positions (alone on a line, in a file name)
    /// are where an abbreviation could also be an ordinary word, so there it must be in capitals; in brackets or
    /// next to a separator (`[dr]`, `dr - objet`) it counts in any case.
    fn check_term(
        &self,
        candidate: &str,
        strict: bool,
        buffer: &mut Vec<u8>,
        note: &mut impl FnMut(usize),
    ) {
        if candidate.len() > MAX_BRACKETED {
            return;
        }
        skeleton_into(candidate, buffer);
        let Some(banners) = self.banners.get(buffer.as_slice()) else {
            return;
        };
        let in_capitals = !candidate.chars().any(char::is_lowercase);
        for banner in banners {
            if !(strict && banner.capitals) || in_capitals {
                note(banner.marking);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKINGS: &str = include_str!("../policies/markings.toml");

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

    /// Each marking family is found, whatever the case, accents, separators and position.
    #[test]
    fn finds_each_marking_family() {
        let c = classifier();
        let cases = [
            (
                "Document Diffusion Restreinte, merci de ne pas transférer",
                "restricted",
            ),
            ("DIFFUSION RESTREINTE", "restricted"),
            ("diffusion restreinte", "restricted"),
            ("[DR] point de situation", "restricted"),
            ("(DR) point de situation", "restricted"),
            ("[dr] point de situation", "restricted"),
            ("Dr - point de situation", "restricted"),
            ("DR - point de situation", "restricted"),
            ("DR: point de situation", "restricted"),
            ("Point de situation - DR", "restricted"),
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
        ];
        for (text, label) in cases {
            assert_eq!(c.classify(&body(text)), label, "{text:?}");
        }
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

    /// File names carry markings too.
    #[test]
    fn finds_markings_in_file_names() {
        let c = classifier();
        for (name, label) in [
            ("note_diffusion_restreinte.pdf", "restricted"),
            ("2024-11-DR-compte-rendu.pdf", "restricted"),
            ("DR_note.odt", "restricted"),
            ("plan_TRES_SECRET.pdf", "top_secret"),
            ("rapport-special-france.docx", "special_france"),
            ("photo_vacances.jpg", "none"),
            ("Dr_Martin_ordonnance.pdf", "none"),
            ("address.txt", "none"),
        ] {
            assert_eq!(c.classify(&file(name)), label, "{name:?}");
        }
    }

    /// Ordinary French that resembles a marking is not one.
    #[test]
    fn leaves_ordinary_text_alone() {
        let c = classifier();
        for text in [
            "Rendez-vous avec le Dr Martin demain",
            "Dr Martin a appelé",
            "Dr. Martin a appelé",
            "Dr\nMartin",
            "Bonjour\nDr",
            "Le DR de la région a appelé",
            "C'est un secret de polichinelle",
            "Je te dis un secret : il pleut",
            "Le secret professionnel s'applique",
            "c'est très secret entre nous",
            "Secret de fabrication",
            "La diffusion de la note est restreinte aux chefs de service",
            "Diffusion large",
            "address drive drop",
            "ADDR - adresse",
            "spécialement pour la France",
            "",
        ] {
            assert_eq!(c.classify(&body(text)), "none", "{text:?}");
        }
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

    /// No text, however odd, makes the classifier panic; pathological shapes stay linear (they finish at all).
    #[test]
    fn survives_any_input() {
        let c = classifier();
        let alphabet: Vec<char> = "aDR[]()<>&#;:-–—|/\n \u{200B}\u{00A0}éÉ𝐃ＤдΑ\u{0301}\u{FEFF}\u{E0041}<b></b>&nbsp;&#x;"
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
        for shape in ["(", "[", "<", "&", "&#", "-", "«", "\n", "DR ", "<b>"] {
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

    /// Author mistakes in the markings file are reported with their line.
    #[test]
    fn reports_bad_markings_with_lines() {
        let bad = "[[marking]]\nlabel = \"restricted\"\nlevel = 1\nphrases = [\"dr\"]\n\n[[marking]]\nlabel = \"Bad Label\"\nlevel = 2\nabbreviations = [\"Dr\"]\n";
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
        let syntax =
            Classifier::from_toml("[[marking]]\nlabel = \"x\"\nlevel = one\n").unwrap_err();
        assert_eq!(syntax[0].line, Some(3), "{syntax:?}");
    }
}
