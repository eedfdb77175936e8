//! JSON without serde: a strict RFC 8259 parser into [`Value`], typed field access for the
//! records and bodies we read ([`FromJson`]), and a writer for the ones we write ([`ToJson`]).
//! serde_json and the derive code behind it were about a fifth of the worker's wasm, most of
//! it generic code copied per type; this is one copy for every type.
//!
//! Errors never quote a value (a leak report's values are keys): a syntax error says where it
//! is, a shape error names the field.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Objects and arrays nested deeper than this are refused (as serde_json does).
const MAX_DEPTH: usize = 127;
/// A document with more values than this is refused before it is all held: a 1 MiB leak report
/// of `[{},{},…]` would otherwise be ~350,000 values, tens of MB of tree in an isolate allowed
/// 128 MB. The largest document we accept, a report of 1,000 findings, needs about 5,000.
pub const MAX_VALUES: usize = 100_000;

/// A parsed JSON value. Strings without escapes borrow the input (names and most values: no
/// allocation until a reader keeps one). Numbers keep only what we read: a non-negative integer
/// that fits `u64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// `None`: a valid JSON number that is negative, fractional or too large for `u64`.
    Number(Option<u64>),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

/// An object's members, in document order until reading takes fields out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all.
    #[error("{what} at line {line} column {column}")]
    Syntax {
        what: &'static str,
        line: usize,
        column: usize,
    },
    /// Valid JSON, but not the shape asked for.
    #[error("{0}")]
    Shape(String),
    /// An object has a field the reader does not take (for bodies that deny unknown fields).
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// More than [`MAX_VALUES`] values.
    #[error("more than {MAX_VALUES} JSON values")]
    TooManyValues,
}

/// A type read from JSON (`'a`: the text it was parsed from, for types that borrow from it).
pub trait FromJson<'a>: Sized {
    fn from_json(value: Value<'a>) -> Result<Self, JsonError>;
}

/// A type written as JSON.
pub trait ToJson {
    fn write_json(&self, out: &mut String);
}

/// Parses `text` and reads a `T` from it.
pub fn from_slice<'a, T: FromJson<'a>>(text: &'a [u8]) -> Result<T, JsonError> {
    T::from_json(parse(text)?)
}

/// [`from_slice`] for text.
pub fn from_str<'a, T: FromJson<'a>>(text: &'a str) -> Result<T, JsonError> {
    from_slice(text.as_bytes())
}

/// `value` as JSON text.
pub fn to_string<T: ToJson + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write_json(&mut out);
    out
}

/// A JSON object as text, its members written by `members`. Starts with room for the usual
/// small answer: grown from empty, a refusal body cost half a dozen reallocations.
pub fn object(members: impl FnOnce(&mut ObjectWriter)) -> String {
    let mut out = String::with_capacity(256);
    let mut writer = ObjectWriter::new(&mut out);
    members(&mut writer);
    writer.end();
    out
}

impl<'a, T: FromJson<'a>> FromJson<'a> for Vec<T> {
    fn from_json(value: Value<'a>) -> Result<Self, JsonError> {
        value.into_array()?.into_iter().map(T::from_json).collect()
    }
}

impl<'a> FromJson<'a> for Value<'a> {
    fn from_json(value: Value<'a>) -> Result<Self, JsonError> {
        Ok(value)
    }
}

impl<'a> FromJson<'a> for Cow<'a, str> {
    fn from_json(value: Value<'a>) -> Result<Self, JsonError> {
        match value {
            Value::String(s) => Ok(s),
            _ => Err(JsonError::Shape("expected a string".into())),
        }
    }
}

impl FromJson<'_> for String {
    fn from_json(value: Value<'_>) -> Result<Self, JsonError> {
        Cow::from_json(value).map(Cow::into_owned)
    }
}

impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out);
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

/// `null` when `None`.
impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(value) => value.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

impl<'a> Value<'a> {
    pub fn into_object(self) -> Result<Object<'a>, JsonError> {
        match self {
            Value::Object(o) => Ok(o),
            _ => Err(JsonError::Shape("expected a JSON object".into())),
        }
    }

    pub fn into_array(self) -> Result<Vec<Value<'a>>, JsonError> {
        match self {
            Value::Array(a) => Ok(a),
            _ => Err(JsonError::Shape("expected a JSON array".into())),
        }
    }
}

impl<'a> Object<'a> {
    /// Takes field `name` out; `None` when absent. Two fields of that name are an error.
    pub fn take(&mut self, name: &str) -> Result<Option<Value<'a>>, JsonError> {
        let Some(at) = self.0.iter().position(|(k, _)| k == name) else {
            return Ok(None);
        };
        // Fields before `at` have other names, so a second one can only be in what follows
        // (which now includes the last field, swapped into `at`).
        let (_, value) = self.0.swap_remove(at);
        match self.0[at..].iter().any(|(k, _)| k == name) {
            true => Err(JsonError::Shape(format!("duplicate field `{name}`"))),
            false => Ok(Some(value)),
        }
    }

    /// A field that must be there.
    pub fn required<T: FromJson<'a>>(&mut self, name: &str) -> Result<T, JsonError> {
        match self.take(name)? {
            Some(value) => T::from_json(value).map_err(|e| in_field(name, e)),
            None => Err(JsonError::Shape(format!("missing field `{name}`"))),
        }
    }

    /// A field that may be absent or `null`.
    pub fn optional<T: FromJson<'a>>(&mut self, name: &str) -> Result<Option<T>, JsonError> {
        match self.take(name)? {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_json(value).map(Some).map_err(|e| in_field(name, e)),
        }
    }

    /// A non-negative integer field that must be there.
    pub fn u64(&mut self, name: &str) -> Result<u64, JsonError> {
        self.required::<U64>(name).map(|n| n.0)
    }

    /// A non-negative integer field that may be absent or `null`.
    pub fn opt_u64(&mut self, name: &str) -> Result<Option<u64>, JsonError> {
        self.optional::<U64>(name).map(|n| n.map(|n| n.0))
    }

    /// A boolean field; absent means `false`.
    pub fn flag(&mut self, name: &str) -> Result<bool, JsonError> {
        match self.take(name)? {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(JsonError::Shape(format!(
                "field `{name}`: expected a boolean"
            ))),
        }
    }

    /// For bodies that take no other field: checked before reading, so an unknown field is
    /// reported as such even when a known one is also missing or wrong.
    pub fn only(&self, allowed: &[&str]) -> Result<(), JsonError> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_ref())) {
            Some((name, _)) => Err(JsonError::UnknownField(name.to_string())),
            None => Ok(()),
        }
    }
}

fn in_field(name: &str, e: JsonError) -> JsonError {
    match e {
        JsonError::Shape(what) => JsonError::Shape(format!("field `{name}`: {what}")),
        other => other,
    }
}

struct U64(u64);

impl FromJson<'_> for U64 {
    fn from_json(value: Value<'_>) -> Result<Self, JsonError> {
        match value {
            Value::Number(Some(n)) => Ok(U64(n)),
            _ => Err(JsonError::Shape("expected a non-negative integer".into())),
        }
    }
}

/// Writes one object's members: `{"a":…,"b":…}`. Names are our own identifiers, written as is.
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, empty: true }
    }

    fn name(&mut self, name: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        self.out
    }

    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        write_str(self.name(name), value);
        self
    }

    /// `null` when `None`.
    pub fn opt_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(name, v),
            None => self.raw(name, "null"),
        }
    }

    /// Left out when `None`.
    pub fn some_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(name, v),
            None => self,
        }
    }

    pub fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        let out = self.name(name);
        let _ = write!(out, "{value}");
        self
    }

    /// `null` when `None`.
    pub fn opt_u64(&mut self, name: &str, value: Option<u64>) -> &mut Self {
        match value {
            Some(v) => self.u64(name, v),
            None => self.raw(name, "null"),
        }
    }

    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.raw(name, if value { "true" } else { "false" })
    }

    pub fn value<T: ToJson + ?Sized>(&mut self, name: &str, value: &T) -> &mut Self {
        value.write_json(self.name(name));
        self
    }

    /// A nested object, its members written by `members`.
    pub fn object(&mut self, name: &str, members: impl FnOnce(&mut ObjectWriter)) -> &mut Self {
        let mut inner = ObjectWriter::new(self.name(name));
        members(&mut inner);
        inner.end();
        self
    }

    fn raw(&mut self, name: &str, json: &str) -> &mut Self {
        self.name(name).push_str(json);
        self
    }

    pub fn end(&mut self) {
        self.out.push('}');
    }
}

/// `value` as a JSON string: quotes, backslashes and control characters escaped.
pub fn write_str(out: &mut String, value: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        match escape {
            "" => {
                let _ = write!(out, "\\u{b:04x}");
            }
            e => out.push_str(e),
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

/// Parses one JSON document (UTF-8, surrounding whitespace allowed).
pub fn parse(bytes: &[u8]) -> Result<Value<'_>, JsonError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let p = Parser {
                text: "",
                bytes,
                at: e.valid_up_to(),
                values: 0,
            };
            return Err(p.error("invalid UTF-8"));
        }
    };
    let mut p = Parser {
        text,
        bytes,
        at: 0,
        values: 0,
    };
    let value = p.value(0)?;
    p.skip_whitespace();
    match p.at == bytes.len() {
        true => Ok(value),
        false => Err(p.error("trailing characters")),
    }
}

struct Parser<'a> {
    /// The document, valid UTF-8 (checked by [`parse`]); `bytes` is the same, as bytes.
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Values begun so far, against [`MAX_VALUES`].
    values: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, what: &'static str) -> JsonError {
        let before = &self.bytes[..self.at.min(self.bytes.len())];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        JsonError::Syntax {
            what,
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + before[line_start..]
                .iter()
                .filter(|&&b| b & 0xc0 != 0x80)
                .count(),
        }
    }

    // The scans below run per byte: inlined and slice-based, they cost a third of what
    // `peek` calls did at the worker's opt-level "z".
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Moves past the bytes `keep` accepts.
    #[inline(always)]
    fn skip(&mut self, keep: impl Fn(u8) -> bool) -> usize {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        let n = rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len());
        self.at += n;
        n
    }

    fn skip_whitespace(&mut self) {
        self.skip(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    }

    fn literal(&mut self, word: &str, value: Value<'a>) -> Result<Value<'a>, JsonError> {
        match self.bytes[self.at..].starts_with(word.as_bytes()) {
            true => {
                self.at += word.len();
                Ok(value)
            }
            false => Err(self.error("expected a value")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(JsonError::TooManyValues);
        }
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.error("unexpected end of input")),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[' | b'{') if depth >= MAX_DEPTH => Err(self.error("nested too deeply")),
            Some(b'[') => self.array(depth + 1),
            Some(b'{') => self.object(depth + 1),
            Some(_) => Err(self.error("expected a value")),
        }
    }

    /// After `[` or `{`: true when the next token closes it (consumed), false when an item
    /// follows. Between items, a comma.
    fn more(&mut self, close: u8, first: bool) -> Result<bool, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b) if b == close => {
                self.at += 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.at += 1;
                Ok(true)
            }
            _ if first => Ok(true),
            None => Err(self.error("unexpected end of input")),
            Some(_) => Err(self.error("expected `,` or a closing bracket")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        self.at += 1;
        let mut items = Vec::new();
        while self.more(b']', items.is_empty())? {
            items.push(self.value(depth)?);
        }
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        self.at += 1;
        let mut members = Vec::new(); // `{}` allocates nothing
        while self.more(b'}', members.is_empty())? {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a field name"));
            }
            let name = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:`"));
            }
            self.at += 1;
            members.push((name, self.value(depth)?));
        }
        Ok(Value::Object(Object(members)))
    }

    fn digits(&mut self) -> usize {
        self.skip(|b| b.is_ascii_digit())
    }

    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let negative = self.peek() == Some(b'-');
        self.at += usize::from(negative);
        let start = self.at;
        match self.digits() {
            0 => return Err(self.error("invalid number")),
            n if n > 1 && self.bytes[start] == b'0' => {
                self.at = start + 1;
                return Err(self.error("invalid number"));
            }
            _ => {}
        }
        let end = self.at;
        let mut integer = !negative;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        let value = integer
            .then(|| {
                self.bytes[start..end].iter().try_fold(0u64, |n, d| {
                    n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
            })
            .flatten();
        Ok(Value::Number(value))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.bytes.get(self.at..self.at + 4);
        let value = digits.and_then(|d| {
            d.iter()
                .try_fold(0u32, |n, &b| Some(n * 16 + char::from(b).to_digit(16)?))
        });
        match value {
            Some(v) => {
                self.at += 4;
                Ok(v)
            }
            None => Err(self.error("invalid \\u escape")),
        }
    }

    /// Moves past plain characters (no quote, backslash or control character).
    fn plain(&mut self) {
        self.skip(|b| b != b'"' && b != b'\\' && b >= 0x20);
    }

    /// A string; borrowed from the input when it has no escape. Slices start and end next to
    /// ASCII delimiters, so they fall on character boundaries.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.at += 1;
        let start = self.at;
        self.plain();
        if self.peek() == Some(b'"') {
            self.at += 1;
            return Ok(Cow::Borrowed(&self.text[start..self.at - 1]));
        }
        let mut out = String::from(&self.text[start..self.at]);
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => self.at += 1,
                Some(_) => return Err(self.error("control character in string")),
                None => return Err(self.error("unterminated string")),
            }
            let simple = match self.peek() {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => '\0',
                _ => return Err(self.error("invalid escape")),
            };
            self.at += 1;
            if simple != '\0' {
                out.push(simple);
            } else {
                out.push(self.unicode_escape()?);
            }
            let run = self.at;
            self.plain();
            out.push_str(&self.text[run..self.at]);
        }
        self.at += 1;
        Ok(Cow::Owned(out))
    }

    /// After `\\u`: one character, from a surrogate pair if need be.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let mut code = self.hex4()?;
        if (0xd800..0xdc00).contains(&code) {
            if !self.bytes[self.at..].starts_with(b"\\u") {
                return Err(self.error("unpaired surrogate"));
            }
            self.at += 2;
            let low = self.hex4()?;
            if !(0xdc00..0xe000).contains(&low) {
                return Err(self.error("unpaired surrogate"));
            }
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        }
        char::from_u32(code).ok_or_else(|| self.error("unpaired surrogate"))
    }
}

#[cfg(test)]
mod tests;
