//! A small JSON reader for the directory's answers.
//!
//! The client reads a handful of short objects (`/v1/config`, placement and
//! failover decisions). serde_json would cost tens of kilobytes of wasm for
//! that, against a page budget of 150 KB, so this is a strict
//! recursive-descent parser of RFC 8259 into a plain tree, with a depth limit
//! so that no answer can exhaust the stack. Numbers are checked against the
//! grammar but only non-negative integers keep their value: the directory
//! sends nothing else (epochs, delays), and Rust's float parser alone would
//! add about 8 KB of gzipped wasm. The client's few request bodies are
//! written by hand; `json_string` is the one piece of them that needs care.

use core::fmt::Write;

/// A parsed JSON value. Objects keep their members in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// A number; its value when it is an integer in `0..=u64::MAX`
    /// written without fraction or exponent.
    Number(Option<u64>),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Nesting deeper than this is refused; directory answers are two deep.
const MAX_DEPTH: usize = 32;

impl Json {
    /// Parses a whole document; `None` for anything that is not exactly one
    /// JSON value (with optional surrounding whitespace).
    pub fn parse(text: &str) -> Option<Json> {
        let mut p = Parser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let value = p.value(0)?;
        p.skip_ws();
        (p.pos == p.bytes.len()).then_some(value)
    }

    /// A member of an object (the first with that name).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A non-negative integer that fits in a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Json::Number(n) => n,
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Json::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Option<Json> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end) == Some(word.as_bytes())).then(|| {
            self.pos = end;
            value
        })
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.peek()? {
            b'n' => self.literal("null", Json::Null),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'"' => self.string().map(Json::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']') {
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat(b']') {
                        return Some(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.eat(b'}') {
                    return Some(Json::Object(members));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    if !self.eat(b':') {
                        return None;
                    }
                    members.push((key, self.value(depth + 1)?));
                    self.skip_ws();
                    if self.eat(b'}') {
                        return Some(Json::Object(members));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.pos;
        let negative = self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos > from
        };
        if self.eat(b'0') {
            // No leading zeros.
        } else if !digits(self) {
            return None;
        }
        if self.eat(b'.') && !digits(self) {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return None;
            }
        }
        let text = &self.bytes[start..self.pos];
        let value = if negative || !text.iter().all(u8::is_ascii_digit) {
            None
        } else {
            text.iter().try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
        };
        Some(Json::Number(value))
    }

    fn hex4(&mut self) -> Option<u32> {
        let text = core::str::from_utf8(self.bytes.get(self.pos..self.pos + 4)?).ok()?;
        let n = u32::from_str_radix(text, 16).ok()?;
        self.pos += 4;
        Some(n)
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let esc = self.peek()?;
                    self.pos += 1;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return None;
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return None,
                _ => out.push(b),
            }
        }
    }
}

/// A JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_placement_answer() {
        let j = Json::parse(
            r#" {"session": "00ff", "host":"h2", "url":"http://127.0.0.1:8082", "epoch": 3, "x": [1, -2.5e1, true, false, null, {}]} "#,
        )
        .expect("valid");
        assert_eq!(j.get("session").and_then(Json::as_str), Some("00ff"));
        assert_eq!(j.get("epoch").and_then(Json::as_u64), Some(3));
        assert_eq!(
            j.get("x").and_then(Json::as_array).map(<[Json]>::len),
            Some(6)
        );
        assert_eq!(
            j.get("x").and_then(Json::as_array).map(|a| a[1].clone()),
            Some(Json::Number(None))
        );
        assert!(j.get("missing").is_none());
    }

    #[test]
    fn decodes_escapes_and_surrogates() {
        assert_eq!(
            Json::parse(r#""a\"b\\c\/\n\u00e9\ud83d\ude00""#),
            Some(Json::String("a\"b\\c/\né😀".into()))
        );
        assert_eq!(Json::parse("\"é\""), Some(Json::String("é".into())));
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "",
            "<!doctype html>",
            "{",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"a\nb\"",
            "{} {}",
            "{'a':1}",
        ] {
            assert_eq!(Json::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(Json::parse(&deep), None);
        let ok = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert!(Json::parse(&ok).is_some());
    }

    #[test]
    fn integers_keep_their_value_other_numbers_do_not() {
        let n = |t: &str| Json::parse(t).and_then(|j| j.as_u64());
        assert_eq!(n("0"), Some(0));
        assert_eq!(n("18446744073709551615"), Some(u64::MAX));
        assert_eq!(n("18446744073709551616"), None);
        assert_eq!(n("3.5"), None);
        assert_eq!(n("3e2"), None);
        assert_eq!(n("-1"), None);
        assert_eq!(Json::parse("3.0e-2"), Some(Json::Number(None)));
        assert_eq!(Json::Null.as_u64(), None);
        assert!(Json::Null.is_null());
    }
}
