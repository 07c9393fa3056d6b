//! File names where Matrix and people put them, beyond a `filename` field: percent-encoded
//! (`Note%20Diffusion%20Restreinte.pdf`, as a link or a client writes them), and at the end of the links in a text
//! (`https://partage.example.gouv.fr/s/Ab12/download/CR_SECRET.pdf?dl=1`). Each is then read with the file-name
//! rules: banners and abbreviations as whole words of the name, split where case or digits change.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem;

use super::banners::{Banners, MAX_BRACKETED, Place};
use super::normalize::CharKind;
use super::scratch::Scratch;

/// Message types whose `body` is the file's name when `filename` is absent (Matrix client-server API, `m.file` and
/// the others: "If `filename` is not present, `body` is the filename").
pub const FILE_MSGTYPES: &[&str] = &["m.file", "m.image", "m.video", "m.audio"];

/// The longest link read for a file name: longer runs are not links anyone clicks (and the work stays linear).
const MAX_LINK: usize = 2048;

/// `name` with its `%XX` escapes decoded, when it has any that decode to text (`%20` is a space, `%C3%A8` is `è`);
/// `None` when there is nothing to decode. Bytes that are not UTF-8 once decoded are replaced, as a browser shows
/// them.
pub fn percent_decoded(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let escaped = |at: usize| {
        bytes.get(at) == Some(&b'%')
            && bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit)
    };
    if !(0..bytes.len()).any(escaped) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if escaped(at) {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[at + 1]) << 4 | hex(bytes[at + 2]));
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    Some(match String::from_utf8_lossy(&out) {
        Cow::Borrowed(text) => text.to_owned(),
        Cow::Owned(text) => text,
    })
}

/// The last path segment of every link in `text` (`scheme://host/.../segment`, its query and fragment dropped), as
/// written (still percent-encoded). A link ending in `/` gives the segment before it; a link with no path, none.
pub fn link_file_names(text: &str) -> impl Iterator<Item = &str> {
    // Built once: a searcher set up per text cost a tenth of classifying a short message.
    static SCHEME_END: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"://"));
    SCHEME_END.find_iter(text.as_bytes()).filter_map(move |at| {
        let rest = &text[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(rest.len())
            .min(MAX_LINK);
        let link = &rest[..floor_boundary(rest, end)];
        // The sentence around the link: `(voir https://x/y.pdf).` ends with `).`, not part of the name.
        let link = link.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '»']);
        let path = link.split(['?', '#']).next().unwrap_or_default();
        let (_host, path) = path.split_once('/')?;
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|segment| !segment.is_empty())
    })
}

/// Whether a link's last segment names a file: it ends in an extension of one to five letters or digits after a
/// dot (`CR_SECRET.pdf`, `Note%20DR.docx`), not a page's slug (`dr-martin`, `F1234`).
pub fn has_extension(segment: &str) -> bool {
    segment.rsplit_once('.').is_some_and(|(stem, extension)| {
        !stem.is_empty()
            && (1..=5).contains(&extension.len())
            && extension.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The largest char boundary of `s` at or before `index`.
fn floor_boundary(s: &str, index: usize) -> usize {
    let mut index = index.min(s.len());
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

impl Banners {
    /// In a file name, a banner term counts as one or more whole words: parts split at separators, between letters
    /// and digits, and where case changes (`noteDR`, `DRNote`, `2024DR`, but not in an acronym like `DRFiP`); an
    /// uppercase run before two lowercase letters also counts whole (`DRnote`). `ADR.pdf`, `CDR-2024.pdf` and
    /// `DRAFT.pdf` have no part `DR`. `lowercase_rule`: an all-lowercase name's first and last parts may be an
    /// abbreviation (`dr_note.pdf`).
    pub(super) fn find_in_file_name(
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
            for j in i..parts.len().min(i + self.max_words) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded_to_text() {
        assert_eq!(
            percent_decoded("Note%20Diffusion%20Restreinte.pdf").as_deref(),
            Some("Note Diffusion Restreinte.pdf")
        );
        assert_eq!(
            percent_decoded("Synth%C3%A8se%20%5BDR%5D.pdf").as_deref(),
            Some("Synthèse [DR].pdf")
        );
        // Not an escape: kept as written.
        assert_eq!(percent_decoded("100%.pdf"), None);
        assert_eq!(percent_decoded("50%2").as_deref(), None);
        assert_eq!(percent_decoded("a%ZZb%41").as_deref(), Some("a%ZZbA"));
        // Bytes that are not UTF-8 are replaced, not a panic.
        assert_eq!(percent_decoded("%FF.pdf").as_deref(), Some("\u{FFFD}.pdf"));
    }

    #[test]
    fn a_segment_with_an_extension_names_a_file() {
        assert!(has_extension("CR_SECRET.pdf"));
        assert!(has_extension("Note%20DR.docx"));
        assert!(!has_extension("dr-martin"));
        assert!(!has_extension("F1234"));
        assert!(!has_extension(".bashrc"));
        assert!(!has_extension("v1.2-beta_notes"));
    }

    #[test]
    fn a_link_gives_its_last_path_segment() {
        let names = |text| link_file_names(text).collect::<Vec<_>>();
        assert_eq!(
            names("Voici : https://partage.gouv.fr/s/Ab12/download/Note%20DR.pdf merci"),
            ["Note%20DR.pdf"]
        );
        assert_eq!(
            names("(cf. https://nuage.gouv.fr/f/123/CR_SECRET.pdf?dl=1#page=2)."),
            ["CR_SECRET.pdf"]
        );
        assert_eq!(
            names("<a href=\"https://x.fr/docs/Fiche.pdf\">x</a> et http://y.fr/a/b/"),
            ["Fiche.pdf", "b"]
        );
        assert_eq!(names("https://www.service-public.fr"), Vec::<&str>::new());
        assert_eq!(names("rien ici, ni :// ni lien"), Vec::<&str>::new());
        assert_eq!(names("https://é.fr/é"), ["é"]);
    }
}
