//! Rule conditions compiled once into a typed expression over [`Attributes`] slots.
//!
//! The language is the part of casbin's expression language (rhai) that rules are written in: `r.<object>.<field>`,
//! `r.role.<name>`, `r.act`, string, integer and boolean literals, `== != < <= > >=`, `&& || !` and parentheses,
//! with rhai's precedence (`||` 30, `&&` 60, `== !=` 90, `< <= > >=` 130, all binding left; unary `!` and `-`
//! tighter than any of them) and short-circuits.
//!
//! A condition compiles only when it is well-typed: `&&`, `||` and `!` on booleans, comparisons between two values
//! of the same kind (rhai compares strings byte by byte, integers and booleans as Rust does, `false < true`). Such a
//! condition can never fail at run time, so evaluating it needs no error path, and skipping it (the index does) can
//! never hide an error. Anything else (function calls, `in`, arithmetic, mismatched kinds, escapes in strings,
//! comments, unknown names) is [`Unsupported`], and the engine leaves that rule to casbin, whose meaning is then
//! the meaning by definition.
//!
//! casbin rewrites `r.` and `p.` into `r_` and `p_` in the whole matcher text before compiling it, string literals
//! included (`"@r.x"` becomes `"@r_x"`). The compiler applies the same rewrite with the same regular expression
//! first, so literals compare exactly as casbin compares them.

use std::sync::LazyLock;

use regex::Regex;

use crate::policy::engine::attributes::{Attributes, Kind, REQUEST_TOKENS, Slot, slot};

/// The condition uses something the typed evaluator does not cover: casbin evaluates its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// casbin's `escape_assertion` (casbin-rs `util.rs`): `r.`/`p.` (and `r2.`...) at a word boundary become `r_`/`p_`.
static ESCAPE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\b(r\d*|p\d*)\.").ok());

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn holds<T: Ord + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// A text operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    /// `r.act`.
    Act,
    /// A text attribute's slot.
    Attribute(usize),
    /// A string literal, as casbin reads it (after its rewrite).
    Literal(Box<str>),
}

/// An integer operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Integer {
    /// An integer attribute's slot.
    Attribute(usize),
    /// An integer literal.
    Literal(i32),
}

/// A compiled, well-typed boolean expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// `true` or `false`.
    Constant(bool),
    /// A boolean attribute's slot.
    Flag(usize),
    /// `r.role.<name>`: the role's index among the policy's declared roles.
    Role(usize),
    /// `!x`.
    Not(Box<Condition>),
    /// `a && b && ...`, left to right.
    All(Vec<Condition>),
    /// `a || b || ...`, left to right.
    Any(Vec<Condition>),
    /// Two texts compared.
    Texts(Cmp, Text, Text),
    /// Two integers compared.
    Integers(Cmp, Integer, Integer),
    /// Two booleans compared.
    Flags(Cmp, Box<Condition>, Box<Condition>),
}

impl Condition {
    /// Whether the condition holds. Total: a compiled condition is well-typed, so it cannot fail.
    pub(crate) fn holds(&self, r: &Attributes<'_>) -> bool {
        match self {
            Condition::Constant(b) => *b,
            Condition::Flag(i) => r.flag(*i),
            Condition::Role(i) => r.role(*i),
            Condition::Not(c) => !c.holds(r),
            Condition::All(cs) => cs.iter().all(|c| c.holds(r)),
            Condition::Any(cs) => cs.iter().any(|c| c.holds(r)),
            Condition::Texts(op, a, b) => op.holds(text(a, r), text(b, r)),
            Condition::Integers(op, a, b) => op.holds(&integer(*a, r), &integer(*b, r)),
            Condition::Flags(op, a, b) => op.holds(&a.holds(r), &b.holds(r)),
        }
    }
}

fn text<'a>(t: &'a Text, r: &Attributes<'a>) -> &'a str {
    match t {
        Text::Act => r.act(),
        Text::Attribute(i) => r.text(*i),
        Text::Literal(s) => s,
    }
}

fn integer(i: Integer, r: &Attributes<'_>) -> i32 {
    match i {
        Integer::Attribute(slot) => r.integer(slot),
        Integer::Literal(v) => v,
    }
}

/// Compiles `condition` as casbin would read it, with `roles` the policy's declared roles (`r.role.<name>` is the
/// role's index there).
pub fn compile(condition: &str, roles: &[String]) -> Result<Condition, Unsupported> {
    let escaped = ESCAPE
        .as_ref()
        .ok_or(Unsupported)?
        .replace_all(condition, "${1}_");
    let tokens = tokenize(&escaped)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        roles,
    };
    let node = parser.expression(0)?;
    if parser.at != tokens.len() {
        return Err(Unsupported);
    }
    match node {
        Typed::Bool(c) => Ok(c),
        _ => Err(Unsupported),
    }
}

// === Tokens ===

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    Not,
    Minus,
    Dot,
    Cmp(Cmp),
    Int(&'a str),
    Str(&'a str),
    Ident(&'a str),
}

fn tokenize(s: &str) -> Result<Vec<Token<'_>>, Unsupported> {
    let bytes = s.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let two = |a: u8, b: u8| rest.len() >= 2 && rest[0] == a && rest[1] == b;
        let (token, len) = match rest[0] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => (Token::Open, 1),
            b')' => (Token::Close, 1),
            b'.' => (Token::Dot, 1),
            b'-' => (Token::Minus, 1),
            b'&' if two(b'&', b'&') => (Token::And, 2),
            b'|' if two(b'|', b'|') => (Token::Or, 2),
            b'=' if two(b'=', b'=') => (Token::Cmp(Cmp::Eq), 2),
            b'!' if two(b'!', b'=') => (Token::Cmp(Cmp::Ne), 2),
            b'<' if two(b'<', b'=') => (Token::Cmp(Cmp::Le), 2),
            b'>' if two(b'>', b'=') => (Token::Cmp(Cmp::Ge), 2),
            b'<' => (Token::Cmp(Cmp::Lt), 1),
            b'>' => (Token::Cmp(Cmp::Gt), 1),
            b'!' => (Token::Not, 1),
            b'"' => {
                // Escapes, and anything past the closing quote's line, are rhai's business.
                let end = rest[1..]
                    .iter()
                    .position(|b| *b == b'"')
                    .ok_or(Unsupported)?;
                let body = &s[i + 1..i + 1 + end];
                if body.contains(['\\', '\n', '\r']) {
                    return Err(Unsupported);
                }
                (Token::Str(body), end + 2)
            }
            b'0'..=b'9' => {
                let len = rest
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric() && *b != b'_' && *b != b'.')
                    .unwrap_or(rest.len());
                let digits = &s[i..i + len];
                // Plain decimal only: `0x1F`, `1_000`, `007` or `1.5` are read by rhai in ways of its own.
                if !digits.bytes().all(|b| b.is_ascii_digit())
                    || (digits.len() > 1 && digits.starts_with('0'))
                {
                    return Err(Unsupported);
                }
                (Token::Int(digits), len)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let len = rest
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric() && *b != b'_')
                    .unwrap_or(rest.len());
                (Token::Ident(&s[i..i + len]), len)
            }
            _ => return Err(Unsupported),
        };
        tokens.push(token);
        i += len;
    }
    Ok(tokens)
}

// === Parser and type checker ===

/// A parsed operand with its static kind.
enum Typed {
    Bool(Condition),
    Int(Integer),
    Text(Text),
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    at: usize,
    roles: &'t [String],
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token<'a>, Unsupported> {
        let token = self.tokens.get(self.at).cloned().ok_or(Unsupported)?;
        self.at += 1;
        Ok(token)
    }

    /// Precedence climbing, every operator binding left as in rhai.
    fn expression(&mut self, min: u8) -> Result<Typed, Unsupported> {
        let mut lhs = self.unary()?;
        loop {
            let (precedence, op) = match self.peek() {
                Some(Token::Or) => (30, None),
                Some(Token::And) => (60, None),
                Some(Token::Cmp(op @ (Cmp::Eq | Cmp::Ne))) => (90, Some(*op)),
                Some(Token::Cmp(op)) => (130, Some(*op)),
                _ => return Ok(lhs),
            };
            if precedence < min {
                return Ok(lhs);
            }
            let logical = self.peek() == Some(&Token::Or);
            self.at += 1;
            let rhs = self.expression(precedence + 1)?;
            lhs = match (op, lhs, rhs) {
                (None, Typed::Bool(a), Typed::Bool(b)) => Typed::Bool(join(logical, a, b)),
                (Some(op), Typed::Bool(a), Typed::Bool(b)) => {
                    Typed::Bool(Condition::Flags(op, Box::new(a), Box::new(b)))
                }
                (Some(op), Typed::Int(a), Typed::Int(b)) => {
                    Typed::Bool(Condition::Integers(op, a, b))
                }
                (Some(op), Typed::Text(a), Typed::Text(b)) => {
                    Typed::Bool(Condition::Texts(op, a, b))
                }
                _ => return Err(Unsupported),
            };
        }
    }

    fn unary(&mut self) -> Result<Typed, Unsupported> {
        match self.peek() {
            Some(Token::Not) => {
                self.at += 1;
                match self.unary()? {
                    Typed::Bool(c) => Ok(Typed::Bool(Condition::Not(Box::new(c)))),
                    _ => Err(Unsupported),
                }
            }
            Some(Token::Minus) => {
                self.at += 1;
                match self.next()? {
                    Token::Int(digits) => {
                        let value = format!("-{digits}").parse().map_err(|_| Unsupported)?;
                        self.no_postfix(Typed::Int(Integer::Literal(value)))
                    }
                    _ => Err(Unsupported),
                }
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Typed, Unsupported> {
        let operand = match self.next()? {
            Token::Open => {
                let inner = self.expression(0)?;
                if self.next()? != Token::Close {
                    return Err(Unsupported);
                }
                inner
            }
            Token::Int(digits) => {
                Typed::Int(Integer::Literal(digits.parse().map_err(|_| Unsupported)?))
            }
            Token::Str(s) => Typed::Text(Text::Literal(s.into())),
            Token::Ident("true") => Typed::Bool(Condition::Constant(true)),
            Token::Ident("false") => Typed::Bool(Condition::Constant(false)),
            Token::Ident("r_act") => Typed::Text(Text::Act),
            Token::Ident(object) => {
                let object = object.strip_prefix("r_").ok_or(Unsupported)?;
                if !REQUEST_TOKENS.contains(&object) || object == "act" {
                    return Err(Unsupported);
                }
                if self.next()? != Token::Dot {
                    return Err(Unsupported);
                }
                let Token::Ident(field) = self.next()? else {
                    return Err(Unsupported);
                };
                if object == "role" {
                    let index = self
                        .roles
                        .iter()
                        .position(|r| r == field)
                        .filter(|i| *i < 64)
                        .ok_or(Unsupported)?;
                    Typed::Bool(Condition::Role(index))
                } else {
                    match slot(object, field).ok_or(Unsupported)? {
                        Slot {
                            kind: Kind::Text,
                            index,
                        } => Typed::Text(Text::Attribute(index)),
                        Slot {
                            kind: Kind::Integer,
                            index,
                        } => Typed::Int(Integer::Attribute(index)),
                        Slot {
                            kind: Kind::Bool,
                            index,
                        } => Typed::Bool(Condition::Flag(index)),
                    }
                }
            }
            _ => return Err(Unsupported),
        };
        self.no_postfix(operand)
    }

    /// rhai reads `.x`, `(...)` and `[...]` after an operand as property, call and index: not ours.
    fn no_postfix(&self, operand: Typed) -> Result<Typed, Unsupported> {
        match self.peek() {
            Some(Token::Dot | Token::Open) => Err(Unsupported),
            _ => Ok(operand),
        }
    }
}

/// `a && b` or `a || b`, flattening runs of the same operator (the meaning is the same: left to right, stopping at
/// the first operand that settles it).
fn join(or: bool, a: Condition, b: Condition) -> Condition {
    match (or, a) {
        (false, Condition::All(mut cs)) => {
            cs.push(b);
            Condition::All(cs)
        }
        (true, Condition::Any(mut cs)) => {
            cs.push(b);
            Condition::Any(cs)
        }
        (false, a) => Condition::All(vec![a, b]),
        (true, a) => Condition::Any(vec![a, b]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::Action;

    fn roles() -> Vec<String> {
        vec!["agent".into(), "external".into()]
    }

    fn holds(
        condition: &str,
        set: &[(&str, &str, crate::policy::engine::attributes::Value<'_>)],
    ) -> bool {
        let names = roles();
        let mut r = Attributes::blank(Action::Send, &names);
        for (o, f, v) in set {
            assert!(r.set(o, f, *v), "r.{o}.{f}");
        }
        compile(condition, &names).unwrap().holds(&r)
    }

    /// The shipped kinds of condition compile, with rhai's precedence: `&&` binds tighter than `||`, comparisons
    /// tighter than both, `!` tightest.
    #[test]
    fn precedence_is_rhai_s() {
        use crate::policy::engine::attributes::Value::*;
        let on = [("room", "encrypted", Bool(true))];
        assert!(holds("true || false && false", &[]));
        assert!(!holds("(true || false) && false", &[]));
        assert!(holds("!r.room.encrypted == false", &on));
        assert!(holds("r.sub.power_level < 50 && !r.role.agent", &[]));
        assert!(holds("-5 < r.sub.power_level", &[]));
        assert!(holds("r.act == \"send\"", &[]));
        assert!(holds("\"x\" != r.msg.msgtype", &[]));
        assert!(holds("false < true", &[]));
        assert!(holds("r.role.external || r.room.encrypted", &on));
    }

    /// What the typed evaluator does not cover is refused, so that casbin evaluates it.
    #[test]
    fn the_rest_is_left_to_casbin() {
        let names = roles();
        for condition in [
            "r.sub.power_level + 1 > 50",
            "r.room.join_rule in [\"public\"]",
            "r.sub.user_id.len() > 3",
            "r.sub.power_level == \"50\"",
            "r.sub.power_level && true",
            "!r.sub.user_id",
            "r.msg.body == \"x\"",
            "r.role.nobody",
            "p.id == \"x\"",
            "r.sub.user_id == \"a\\\"b\"",
            "r.room.encrypted & r.room.published",
            "0x10 > r.sub.power_level",
            "r.sub.power_level > 3000000000",
            "r.room.encrypted // a comment",
            "r.sub",
            "5",
        ] {
            assert_eq!(compile(condition, &names), Err(Unsupported), "{condition}");
        }
    }

    /// String literals are read after casbin's rewrite of `r.` and `p.`, exactly as casbin compares them.
    #[test]
    fn literals_are_rewritten_as_casbin_rewrites_them() {
        let names = roles();
        let c = compile("r.sub.server_name == \"r.example.org\"", &names).unwrap();
        assert_eq!(
            c,
            Condition::Texts(
                Cmp::Eq,
                Text::Attribute(slot("sub", "server_name").unwrap().index),
                Text::Literal("r_example.org".into())
            )
        );
    }
}
