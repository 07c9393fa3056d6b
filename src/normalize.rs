//! Text normalisation for the classifier: what a reader sees, not how it was encoded.
//!
//! Someone who wants a protection marking past a filter writes it so that it still reads the same to a person:
//! other case, no accents, fullwidth or mathematical letters, Cyrillic or Greek look-alikes, zero-width characters,
//! non-breaking spaces, HTML tags or entities between the letters. Each function here removes one family of those
//! differences, so the classifier only compares plain ASCII skeletons. Everything is one linear pass; nothing is
//! compiled per call.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Renders HTML as the text a reader sees: tags and comments removed (block-level tags become line breaks, since they
/// start a new line on screen), character references decoded (`&eacute;`, `&#233;`, `&#xE9;`, `&nbsp;`, ...).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(pos) = rest.find(['<', '&']) {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
        } else if rest.starts_with('<') {
            let is_tag = rest[1..]
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?');
            if !is_tag {
                out.push('<');
                rest = &rest[1..];
                continue;
            }
            // An unterminated tag runs to the end of the text, as browsers drop it.
            let (inner, after) = match rest.find('>') {
                Some(end) => (&rest[1..end], &rest[end + 1..]),
                None => (&rest[1..], ""),
            };
            if is_block_tag(inner) {
                out.push('\n');
            }
            rest = after;
        } else {
            let (decoded, used) = decode_entity(rest);
            match decoded {
                Some(c) => out.push(c),
                None => out.push('&'),
            }
            rest = &rest[used..];
        }
    }
    out.push_str(rest);
    out
}

/// Tags after which a browser starts a new line.
fn is_block_tag(inner: &str) -> bool {
    let name = inner.trim_start_matches('/');
    let name_end = name
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(name.len());
    let name = name[..name_end].to_ascii_lowercase();
    matches!(
        name.as_str(),
        "br" | "p"
            | "div"
            | "li"
            | "ul"
            | "ol"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "blockquote"
            | "pre"
            | "hr"
            | "section"
            | "header"
            | "footer"
            | "details"
            | "summary"
    )
}

/// Decodes one character reference at the start of `s` (which starts with `&`). Returns the character, if it is one,
/// and how many bytes were consumed (1 when it is not a reference, so the `&` is kept as text).
fn decode_entity(s: &str) -> (Option<char>, usize) {
    let body = &s[1..];
    // A reference name is at most 32 ASCII letters, digits or `#`, so `end` is always a char boundary.
    let end = body
        .bytes()
        .take(32)
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'#'))
        .unwrap_or_else(|| body.len().min(32));
    let name = &body[..end];
    let used = if body[end..].starts_with(';') {
        end + 2
    } else {
        end + 1
    };
    if name.is_empty() {
        return (None, 1);
    }
    let c = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        };
        code.and_then(char::from_u32)
    } else {
        named_entity(name)
    };
    match c {
        Some(c) => (Some(c), used),
        None => (None, 1),
    }
}

/// The named references that matter for French text and for hiding separators. Unknown names stay as text.
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" | "ensp" | "emsp" | "thinsp" | "numsp" | "puncsp" => ' ',
        "shy" | "zwj" | "zwnj" | "lrm" | "rlm" | "ZeroWidthSpace" | "NoBreak"
        | "InvisibleTimes" => '\u{200B}',
        "hyphen" | "dash" | "ndash" => '–',
        "mdash" => '—',
        "lsqb" | "lbrack" => '[',
        "rsqb" | "rbrack" => ']',
        "lpar" => '(',
        "rpar" => ')',
        "colon" => ':',
        "period" => '.',
        "lowbar" => '_',
        "laquo" => '«',
        "raquo" => '»',
        "eacute" => 'é',
        "Eacute" => 'É',
        "egrave" => 'è',
        "Egrave" => 'È',
        "ecirc" => 'ê',
        "Ecirc" => 'Ê',
        "euml" => 'ë',
        "Euml" => 'Ë',
        "agrave" => 'à',
        "Agrave" => 'À',
        "acirc" => 'â',
        "Acirc" => 'Â',
        "ccedil" => 'ç',
        "Ccedil" => 'Ç',
        "icirc" => 'î',
        "Icirc" => 'Î',
        "iuml" => 'ï',
        "Iuml" => 'Ï',
        "ocirc" => 'ô',
        "Ocirc" => 'Ô',
        "ugrave" => 'ù',
        "Ugrave" => 'Ù',
        "ucirc" => 'û',
        "Ucirc" => 'Û',
        "uuml" => 'ü',
        "Uuml" => 'Ü',
        _ => return None,
    })
}

/// Folds text to what it looks like, keeping case and punctuation: compatibility forms (fullwidth, mathematical,
/// circled letters, ligatures) become their plain letters, accents are dropped, look-alike letters from other scripts
/// become the Latin letter they imitate, invisible and format characters vanish, every kind of space becomes `' '`
/// and every kind of line break `'\n'`.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Most text is printable ASCII that folding leaves alone: copy such runs in one go.
        let start = i;
        while i < bytes.len() && (matches!(bytes[i], 0x20..=0x7e) || bytes[i] == b'\n') {
            i += 1;
        }
        out.push_str(&text[start..i]);
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        if c.is_ascii() {
            push_ascii(&mut out, c);
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if let Some(mapped) = separator(c) {
            out.push(mapped);
            continue;
        }
        if let Some(base) = french_letter(c) {
            out.push(base);
            continue;
        }
        for d in std::iter::once(c).nfkd() {
            if is_combining_mark(d) || is_invisible(d) {
                continue;
            }
            if d.is_ascii() {
                push_ascii(&mut out, d);
            } else if let Some(mapped) = separator(d) {
                out.push(mapped);
            } else {
                out.push(look_alike(d).unwrap_or(d));
            }
        }
    }
    out
}

/// The accented letters of French, answered without a decomposition (the common case in this deployment's text);
/// the result is what NFKD followed by dropping the marks gives.
fn french_letter(c: char) -> Option<char> {
    Some(match c {
        'à' | 'â' | 'ä' | 'á' => 'a',
        'À' | 'Â' | 'Ä' | 'Á' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'î' | 'ï' | 'í' => 'i',
        'Î' | 'Ï' | 'Í' => 'I',
        'ô' | 'ö' | 'ó' => 'o',
        'Ô' | 'Ö' | 'Ó' => 'O',
        'ù' | 'û' | 'ü' | 'ú' => 'u',
        'Ù' | 'Û' | 'Ü' | 'Ú' => 'U',
        'ÿ' => 'y',
        'Ÿ' => 'Y',
        _ => return None,
    })
}

fn push_ascii(out: &mut String, c: char) {
    match c {
        '\r' | '\x0b' | '\x0c' => out.push('\n'),
        '\t' => out.push(' '),
        c if c.is_ascii_control() && c != '\n' => {}
        c => out.push(c),
    }
}

/// Line breaks and spaces that are not ASCII.
fn separator(c: char) -> Option<char> {
    match c {
        '\u{0085}' | '\u{2028}' | '\u{2029}' => Some('\n'),
        c if c.is_whitespace() => Some(' '),
        _ => None,
    }
}

/// Default-ignorable and format characters: a reader does not see them, so a marking split by them reads whole.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Letters from Cyrillic, Greek, Armenian and IPA that render like a Latin letter (Unicode's confusables, restricted
/// to those that imitate the letters of the markings and of ordinary French words).
fn look_alike(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' | 'ɑ' => 'a',
        'А' | 'Α' => 'A',
        'в' => 'b',
        'В' | 'Β' => 'B',
        'с' | 'ϲ' => 'c',
        'С' | 'Ϲ' => 'C',
        'ԁ' => 'd',
        'Ԁ' | 'Ꭰ' => 'D',
        'е' | 'ε' | 'ҽ' => 'e',
        'Е' | 'Ε' => 'E',
        'ɡ' => 'g',
        'һ' => 'h',
        'Н' | 'Η' => 'H',
        'і' | 'ι' | 'ı' | 'ɩ' => 'i',
        'І' | 'Ι' | 'Ӏ' => 'I',
        'ј' => 'j',
        'Ј' => 'J',
        'к' | 'κ' => 'k',
        'К' | 'Κ' => 'K',
        'ӏ' => 'l',
        'М' | 'Μ' => 'M',
        'Ν' => 'N',
        'о' | 'ο' | 'օ' | 'σ' => 'o',
        'О' | 'Ο' => 'O',
        'р' | 'ρ' => 'p',
        'Р' | 'Ρ' => 'P',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'Ѕ' => 'S',
        'т' | 'τ' => 't',
        'Т' | 'Τ' => 'T',
        'υ' | 'ս' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ѡ' => 'w',
        'х' | 'χ' => 'x',
        'Х' | 'Χ' => 'X',
        'у' | 'γ' => 'y',
        'У' | 'Υ' => 'Y',
        'Ζ' => 'Z',
        'ß' => 's',
        _ => return None,
    })
}

/// The letters and digits of folded text, lowercased, everything else dropped: `D.I.F.F.U.S.I.O.N  re-streinte`
/// becomes `diffusionrestreinte`. Phrases are matched on this skeleton, so no separator can split them.
pub fn skeleton(folded: &str) -> String {
    let mut out = Vec::with_capacity(folded.len());
    skeleton_into(folded, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`skeleton`] as UTF-8 bytes into a reused buffer (cleared first): the classifier's hot path, which matches bytes
/// and builds many small skeletons.
pub fn skeleton_into(folded: &str, out: &mut Vec<u8>) {
    out.clear();
    let bytes = folded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // A run of ASCII, written without a branch per byte: each byte is stored, and the write position only
        // advances past letters and digits.
        let run_end = bytes[i..]
            .iter()
            .position(|b| !b.is_ascii())
            .map_or(bytes.len(), |p| i + p);
        let start = out.len();
        out.resize(start + (run_end - i), 0);
        let mut j = start;
        for &b in &bytes[i..run_end] {
            let folded = ASCII_SKELETON[usize::from(b & 0x7f)];
            out[j] = folded;
            j += usize::from(folded != 0);
        }
        out.truncate(j);
        i = run_end;
        let Some(c) = folded[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                let mut utf8 = [0; 4];
                out.extend_from_slice(lower.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// ASCII byte -> its lowercase letter or digit, or 0 for everything the skeleton drops.
const ASCII_SKELETON: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            0
        };
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Every evasion family folds to the same skeleton as the plain phrase.
    #[test]
    fn evasions_fold_to_the_plain_skeleton() {
        let plain = "diffusionrestreinte";
        for text in [
            "Diffusion Restreinte",
            "DIFFUSION RESTREINTE",
            "diffusion\u{00A0}restreinte",
            "diffusion\u{200B}re\u{200D}streinte",
            "diffusion_restreinte",
            "diffusion-restreinte",
            "d.i.f.f.u.s.i.o.n r.e.s.t.r.e.i.n.t.e",
            "diffusion   \n  restreinte",
            "ｄｉｆｆｕｓｉｏｎ ｒｅｓｔｒｅｉｎｔｅ",
            "𝐝𝐢𝐟𝐟𝐮𝐬𝐢𝐨𝐧 𝐫𝐞𝐬𝐭𝐫𝐞𝐢𝐧𝐭𝐞",
            "diffusiоn restreintе",
            "dіffusion rеstreinte",
            "di\u{00AD}ffusion restre\u{2060}inte",
            "diffusion\u{2028}restreinte",
        ] {
            assert_eq!(skeleton(&fold(text)), plain, "{text:?}");
        }
    }

    /// Accents are dropped whether precomposed or combining.
    #[test]
    fn accents_are_dropped() {
        assert_eq!(skeleton(&fold("Spécial FRANCE")), "specialfrance");
        assert_eq!(skeleton(&fold("Spe\u{0301}cial France")), "specialfrance");
        assert_eq!(skeleton(&fold("TRÈS SECRET DÉFENSE")), "tressecretdefense");
    }

    /// HTML tags vanish (block tags become line breaks) and character references decode.
    #[test]
    fn html_renders_to_text() {
        assert_eq!(
            html_to_text("<b>diffu</b>sion<br/>restreinte"),
            "diffusion\nrestreinte"
        );
        assert_eq!(
            html_to_text("diffusion&nbsp;restr&eacute;inte &#68;&#x52;"),
            "diffusion restréinte DR"
        );
        assert_eq!(html_to_text("a<!-- hidden -->b"), "ab");
        assert_eq!(html_to_text("1 < 2 & 3 > 2"), "1 < 2 & 3 > 2");
        assert_eq!(html_to_text("<p>un</p><p>deux</p>"), "\nun\n\ndeux\n");
        assert_eq!(html_to_text("&unknown; &#xZZ; &"), "&unknown; &#xZZ; &");
        assert_eq!(html_to_text("<unterminated"), "");
    }

    /// Folding keeps case and punctuation, normalises spaces and line breaks.
    #[test]
    fn fold_keeps_case_and_punctuation() {
        assert_eq!(fold("[ＤＲ]\u{00A0}-\r\nDr"), "[DR] -\n\nDr");
        assert_eq!(fold("\u{FEFF}[D\u{200B}R]"), "[DR]");
    }
}
