//! PDF syntax (PDF 32000-1 §7.2–7.3): tokens, and objects built from them, over a byte slice.
//!
//! One parser serves the file body, object streams, content streams and CMaps, so every one of them gets the same
//! limits: nesting is bounded (a file of a million `[` must not overflow the stack), strings and arrays only grow
//! with the input, and a malformed token is skipped rather than trusted.

use lopdf::{Dictionary, Object, StringFormat};

/// Arrays and dictionaries nested deeper than this are malformed (real files stay under 10).
const MAX_NESTING: usize = 32;

/// Literal strings nest parentheses; past this depth they are read as plain characters.
const MAX_PAREN_DEPTH: usize = 256;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token<'a> {
    /// An integer.
    Int(i64),
    /// A real number.
    Real(f32),
    /// A string, escapes resolved.
    Str(Vec<u8>, StringFormat),
    /// A name, `#xx` escapes resolved, without the slash.
    Name(Vec<u8>),
    /// `[`.
    ArrayOpen,
    /// `]`.
    ArrayClose,
    /// `<<`.
    DictOpen,
    /// `>>`.
    DictClose,
    /// `{` or `}` (PostScript procedures in Type 4 functions; skipped).
    Brace,
    /// Anything else: operators, `true`, `null`, `R`, `obj`, `stream`...
    Keyword(&'a [u8]),
}

/// Why parsing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Malformed {
    /// The input ended inside an object.
    End,
    /// A token that cannot start or continue an object here, or nesting past the limit.
    Syntax,
}

/// PDF whitespace (§7.2.2).
pub(super) fn is_white(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c' | b'\0')
}

/// PDF delimiters (§7.2.2).
pub(super) fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delimiter(b)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A cursor over PDF bytes.
#[derive(Debug, Clone)]
pub(super) struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at `pos` of `bytes`.
    pub(super) fn new(bytes: &'a [u8], pos: usize) -> Self {
        Lexer {
            bytes,
            pos: pos.min(bytes.len()),
        }
    }

    /// Where the next token starts (after whitespace and comments have been skipped, once `skip_white` ran).
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes being read.
    pub(super) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Moves to `pos`.
    pub(super) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.bytes.len());
    }

    /// Skips whitespace and comments.
    pub(super) fn skip_white(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(&c) = self.bytes.get(self.pos) {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// The next token, or `None` at the end of the input.
    pub(super) fn token(&mut self) -> Option<Token<'a>> {
        self.skip_white();
        let &b = self.bytes.get(self.pos)?;
        let token = match b {
            b'(' => {
                self.pos += 1;
                Token::Str(self.literal_string(), StringFormat::Literal)
            }
            b'<' if self.bytes.get(self.pos + 1) == Some(&b'<') => {
                self.pos += 2;
                Token::DictOpen
            }
            b'<' => {
                self.pos += 1;
                Token::Str(self.hex_string(), StringFormat::Hexadecimal)
            }
            b'>' => {
                // A lone `>` is malformed; read it as the end of a dictionary, which is what it most likely meant.
                self.pos += if self.bytes.get(self.pos + 1) == Some(&b'>') {
                    2
                } else {
                    1
                };
                Token::DictClose
            }
            b'[' => {
                self.pos += 1;
                Token::ArrayOpen
            }
            b']' => {
                self.pos += 1;
                Token::ArrayClose
            }
            b'{' | b'}' | b')' => {
                self.pos += 1;
                Token::Brace
            }
            b'/' => {
                self.pos += 1;
                Token::Name(self.name())
            }
            _ => {
                let start = self.pos;
                while self.bytes.get(self.pos).is_some_and(|&c| is_regular(c)) {
                    self.pos += 1;
                }
                let word = &self.bytes[start..self.pos];
                number(word).unwrap_or(Token::Keyword(word))
            }
        };
        Some(token)
    }

    fn name(&mut self) -> Vec<u8> {
        let mut name = Vec::new();
        while let Some(&c) = self.bytes.get(self.pos) {
            if !is_regular(c) {
                break;
            }
            self.pos += 1;
            if c == b'#' {
                let hi = self.bytes.get(self.pos).copied().and_then(hex_value);
                let lo = self.bytes.get(self.pos + 1).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    name.push(hi << 4 | lo);
                    self.pos += 2;
                    continue;
                }
            }
            name.push(c);
        }
        name
    }

    fn hex_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(&c) = self.bytes.get(self.pos) {
            self.pos += 1;
            if c == b'>' {
                break;
            }
            if let Some(v) = hex_value(c) {
                match high.take() {
                    Some(h) => out.push(h << 4 | v),
                    None => high = Some(v),
                }
            }
        }
        // An odd number of digits: the last one is followed by an implied 0 (§7.3.4.3).
        if let Some(h) = high {
            out.push(h << 4);
        }
        out
    }

    fn literal_string(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut depth = 1usize;
        while let Some(&c) = self.bytes.get(self.pos) {
            self.pos += 1;
            match c {
                b'(' => {
                    depth += 1;
                    if depth <= MAX_PAREN_DEPTH {
                        out.push(c);
                    }
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    out.push(c);
                }
                b'\\' => {
                    let Some(&e) = self.bytes.get(self.pos) else {
                        break;
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.bytes.get(self.pos) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        // A backslash at the end of a line continues the string on the next one.
                        b'\r' => {
                            if self.bytes.get(self.pos) == Some(&b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// The next object (arrays and dictionaries read whole, `N G R` read as a reference), or the keyword met where
    /// an object was expected (`Err(Ok(keyword))`: an operator in a content stream, `endobj`, `stream`...).
    pub(super) fn object(&mut self) -> Result<Object, Result<&'a [u8], Malformed>> {
        let token = self.token().ok_or(Err(Malformed::End))?;
        self.object_from(token, 0)
    }

    fn object_from(
        &mut self,
        token: Token<'a>,
        depth: usize,
    ) -> Result<Object, Result<&'a [u8], Malformed>> {
        if depth > MAX_NESTING {
            return Err(Err(Malformed::Syntax));
        }
        Ok(match token {
            Token::Int(n) => {
                // `N G R`: look ahead without consuming anything unless it is a reference.
                let save = self.pos;
                if let (Ok(num), Some(Token::Int(generation)), Some(Token::Keyword(b"R"))) =
                    (u32::try_from(n), self.token(), self.token())
                    && let Ok(generation) = u16::try_from(generation)
                {
                    return Ok(Object::Reference((num, generation)));
                }
                self.pos = save;
                Object::Integer(n)
            }
            Token::Real(r) => Object::Real(r),
            Token::Str(s, format) => Object::String(s, format),
            Token::Name(n) => Object::Name(n),
            Token::ArrayOpen => {
                let mut items = Vec::new();
                loop {
                    match self.token() {
                        None => return Err(Err(Malformed::End)),
                        Some(Token::ArrayClose) => break,
                        Some(t) => match self.object_from(t, depth + 1) {
                            Ok(o) => items.push(o),
                            // Content streams put no keywords in arrays; a stray one is skipped.
                            Err(Ok(_)) => {}
                            Err(e) => return Err(e),
                        },
                    }
                }
                Object::Array(items)
            }
            Token::DictOpen => {
                let mut dict = Dictionary::new();
                loop {
                    match self.token() {
                        None => return Err(Err(Malformed::End)),
                        Some(Token::DictClose) => break,
                        Some(Token::Name(key)) => {
                            let Some(t) = self.token() else {
                                return Err(Err(Malformed::End));
                            };
                            match t {
                                // `/Key >>`: a key without a value, seen in damaged files.
                                Token::DictClose => break,
                                t => match self.object_from(t, depth + 1) {
                                    Ok(value) => dict.set(key, value),
                                    Err(Ok(_)) => {}
                                    Err(e) => return Err(e),
                                },
                            }
                        }
                        // A value without a key, or a stray keyword: skipped.
                        Some(Token::Keyword(b"endobj" | b"stream" | b"obj")) => {
                            return Err(Err(Malformed::Syntax));
                        }
                        Some(_) => {}
                    }
                }
                Object::Dictionary(dict)
            }
            Token::Keyword(b"true") => Object::Boolean(true),
            Token::Keyword(b"false") => Object::Boolean(false),
            Token::Keyword(b"null") => Object::Null,
            Token::Keyword(word) => return Err(Ok(word)),
            Token::ArrayClose | Token::DictClose | Token::Brace => {
                return Err(Err(Malformed::Syntax));
            }
        })
    }
}

/// A number token (`12`, `-3`, `+.5`, `4.`), or `None` for any other word.
fn number(word: &[u8]) -> Option<Token<'static>> {
    let first = *word.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        return None;
    }
    let text = std::str::from_utf8(word).ok()?;
    if let Ok(n) = text.parse::<i64>() {
        return Some(Token::Int(n));
    }
    if let Ok(r) = text.parse::<f32>()
        && r.is_finite()
    {
        return Some(Token::Real(r));
    }
    // Producers write `--5` or `1.2.3` now and then; readers take such numbers as 0.
    if word
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.'))
    {
        return Some(Token::Real(0.0));
    }
    None
}

/// A number operand as `f32`.
pub(super) fn as_f32(object: &Object) -> Option<f32> {
    match *object {
        Object::Integer(i) => Some(i as f32),
        Object::Real(r) => Some(r),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Object {
        Lexer::new(text.as_bytes(), 0)
            .object()
            .unwrap_or(Object::Null)
    }

    /// Strings resolve their escapes: octal, line continuations, balanced parentheses.
    #[test]
    fn literal_strings_resolve_escapes() {
        assert_eq!(
            parse(
                r"(a\101\(b\)(c)\
d)"
            ),
            Object::String(b"aA(b)(c)d".to_vec(), StringFormat::Literal)
        );
    }

    /// `N G R` is a reference; two numbers alone stay numbers.
    #[test]
    fn references_and_numbers() {
        assert_eq!(
            parse("[1 0 R 2 3 /N]"),
            Object::Array(vec![
                Object::Reference((1, 0)),
                Object::Integer(2),
                Object::Integer(3),
                Object::Name(b"N".to_vec()),
            ])
        );
    }

    /// A million nested arrays are malformed, not a stack overflow.
    #[test]
    fn deep_nesting_is_refused() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(
            Lexer::new(deep.as_bytes(), 0).object(),
            Err(Err(Malformed::Syntax))
        );
    }
}
