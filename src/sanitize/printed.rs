//! Objects printed as no JSON that pair a name with a value in sibling members: a Python dict
//! (`{'name': 'DB_PASSWORD', 'value': 'hunter2'}`, `dict(name=…, value=…)`), a Ruby hash
//! (`{"name"=>…}`, `{:name=>…}`, `{name: …}`), a JavaScript object (`{ name: '…', value: … }`), a
//! Go struct (`{Name:DB_PASSWORD Value:hunter2}`, `main.EnvVar{Name:"…", Value:"…"}`) or map
//! (`map[name:DB_PASSWORD value:hunter2]`), a Java `Map` (`{name=…, value=…}`), a record printed by
//! its class's name (Lombok's or Kotlin's `EnvVar(name=…, value=…)`) or after none (`(name=…,
//! value=…)`, a Swift tuple's `(name: …, value: …)`), a Ruby object inspected (`#<EnvVar @name="…",
//! @value="…">`, ActiveRecord's `#<Setting name: "…", …>`); and Python's pairs as 2-tuples, a list
//! of them pairing a name with a value (`OrderedDict([('name', '…'), ('value', '…')])`) or one
//! pairing a sensitive key (as [`KeyRules`] judges it) with its value (`[('password',
//! 'hunter2')]`).
//!
//! The name and value members are the JSON rule's (see [`role_of`]), their keys quoted or not, a
//! Ruby symbol's `:` (or instance variable's `@`) before them, then `:`, `=` or `=>`. An object
//! runs from a `{` (or `dict(`, Go's `map[`, a `(` after a name or before a member, Ruby's `#<`) to
//! its closer, members after its opener, a `,`, a space (Go's `%+v` separates fields with one) or a
//! line break, on one line or over a few as pretty printers write it (Python's `pprint`, Node's
//! `console.log`, Ruby's `pp`: a member a line). A container still open past [`CARRIED_LINES`] line
//! breaks or [`CARRIED_BYTES`] bytes after its opener is dropped at the next line break, as if the
//! text ended there, so a stray opener in prose pairs no members far apart; the containers inside
//! it read on. A value is quoted (`u'…'`, `b'…'`, `'''…'''`, `\"…\"` escaped once too: to its
//! quote, `\'` inside it, or the end of the line), a container (`{…}`, `[…]`, `(…)`, `Name(…)`, to
//! its closer), or a word run: to the end of the line, a space before a Go field (`Name:`), a `,`
//! before the next member, a closer or the end of the line (not Go's `Value:a,b`), or its object's
//! closer with no letter, digit or `_` glued to it (not `value: a->b>`). Every value member of an
//! object goes when a name member of it is a sensitive key, read once the object closes (so a value
//! before its name goes too), and when it is dropped or the text ends before it closes (fail
//! closed) unless a name member named it plainly or every member is written as JSON's (`"key":`:
//! the JSON readers judge such a document, over lines too, see [`embedded`](super::embedded)). A
//! value that is the replacement in double quotes is what the JSON rule left of one: it stays so. A
//! text whose value key is followed by a quote written as an HTML reference (`&#39;value&#39;:`,
//! `&quot;Value&quot;:`) is read a second time with its references decoded, the spans found there
//! mapped back. A tuple is one whose first item is a quoted key and whose second item ends it (a
//! `,` after that but before its `)` makes it no pair); a name's or a value's tuple is a member of
//! the list it is in, decided with the list as an object's are.
//!
//! Reading stays linear: each byte is walked once, a key is looked at up to [`LONGEST_KEY`] bytes
//! from where a member may start (or a tuple's, past a `(`), and a closer pops the containers
//! opened inside its own, each once; a line break drops containers from the oldest, each once. A
//! text without an opener, or without a `value` key followed by a value to redact and a 2-tuple
//! whose first item is quoted, is not walked at all.

use std::collections::VecDeque;

use super::json::{Named, Role, role_of};
use super::keys::KeyRules;
use super::markup::Decoded;

/// The longest member key looked at: the longest name or value member is 14 bytes, and any
/// other member's key is read only so that its value is walked as one.
const LONGEST_KEY: usize = 64;

/// How many line breaks a container is read on across: pretty printers write a member a
/// line, and an object pairing a name with a value holds few members. Past them (or
/// [`CARRIED_BYTES`]), a container is dropped at the next line break, its values decided as
/// if its line ended there, so that a stray opener in prose pairs no members far apart.
const CARRIED_LINES: usize = 16;

/// How many bytes after its opener a container is read on across line breaks.
const CARRIED_BYTES: usize = 1024;

/// A container open on the lines being read.
#[derive(Debug)]
struct Open {
    /// The byte that closes it.
    closer: u8,
    /// An object (`{`, `dict(`), whose members pair; a list or parentheses otherwise.
    object: bool,
    /// Surely printed as no JSON: opened by `dict(`, or with a member not written as JSON's
    /// (`"key":`). The JSON readers judge the others, a document over lines too.
    printed: bool,
    /// Where its name members' strings start in [`Reader::names`].
    names: usize,
    /// Where its value members' spans start in [`Reader::waiting`].
    waiting: usize,
    /// Where it starts, when it is a value member's value.
    value_of: Option<usize>,
    /// Where its opener is, and on which line: it is dropped at a line break past
    /// [`CARRIED_BYTES`] or [`CARRIED_LINES`].
    start: usize,
    line: usize,
    /// Its value member's object was dropped naming it sensitively (or failing closed): it
    /// goes whole when it ends.
    goes: bool,
    /// A 2-tuple whose first item is a key (`('password', …)`, `('name', …)`): what it makes
    /// of its second; `None` for any other container, and for a tuple of more items.
    tuple: Option<Tuple>,
    /// A list holding 2-tuples that are name or value members (`[('name', …), ('value', …)]`):
    /// decided as an object.
    pairs: bool,
}

/// What a 2-tuple whose first item is a key makes of its second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tuple {
    /// A sensitive key's (`('password', 'hunter2')`): it goes.
    Secret,
    /// A name member of the list the tuple is in (`('name', 'DB_PASSWORD')`).
    Name,
    /// A value member of the list the tuple is in (`('value', 'hunter2')`).
    Value,
}

/// The open containers, oldest first, and the value members waiting for their objects to
/// close.
struct Reader<'t, 'k> {
    text: &'t str,
    keys: &'k KeyRules,
    keybuf: &'k mut String,
    /// The replacement: a value that is it in double quotes is one the JSON rule redacted.
    replacement: &'t str,
    open: VecDeque<Open>,
    /// How many line breaks are behind.
    line: usize,
    /// How many containers of each closer are open: a closer with none open is a byte.
    open_of: [usize; 4],
    /// The strings of the name members of the open objects, `None` for one that is no
    /// string; looked up only when their object has a value to decide.
    names: Vec<Option<(usize, usize)>>,
    waiting: Vec<(usize, usize)>,
    spans: Vec<(usize, usize)>,
}

/// The spans of the values that the name members of their objects, printed as no JSON (on one
/// line or over a few), name as sensitive, and of the second items of 2-tuples whose first is
/// a sensitive key; maybe overlapping.
pub(super) fn named_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    if memchr::memchr3(b'{', b'(', b'[', bytes).is_none()
        && memchr::memmem::find(bytes, b"#<").is_none()
    {
        return Vec::new();
    }
    let mut spans = if may_hold_a_value(text, replacement) || may_hold_a_tuple(bytes) {
        read(text, keys, keybuf, replacement)
    } else {
        Vec::new()
    };
    // Quotes written as HTML references (`{&#39;name&#39;: …, &#39;value&#39;: …}`, a dict
    // printed into a page): read again with its references decoded, when a value key is
    // followed by one.
    if memchr::memmem::find(bytes, b"alue&").is_some()
        && let Some(decoded) = Decoded::references(text, |c, _| matches!(c, '"' | '\''))
    {
        spans.extend(
            read(&decoded.text, keys, keybuf, replacement)
                .into_iter()
                .map(|(start, end)| (decoded.original(start), decoded.original(end))),
        );
    }
    spans
}

/// [`named_values`] of a text that may hold some.
fn read(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Vec<(usize, usize)> {
    let mut reader = Reader {
        text,
        keys,
        keybuf,
        replacement,
        open: VecDeque::new(),
        line: 0,
        open_of: [0; 4],
        names: Vec::new(),
        waiting: Vec::new(),
        spans: Vec::new(),
    };
    reader.read();
    reader.spans
}

/// Whether `text` may hold a value member to redact: a key ending in `value` in any case (as
/// every value member's does), its separator, and a value that is not the replacement in
/// double quotes (what the JSON rule leaves of a document in text it redacted). Most texts
/// hold none, and are not read further.
fn may_hold_a_value(text: &str, replacement: &str) -> bool {
    let bytes = text.as_bytes();
    let mut from = 0;
    // `u` is the rarest letter of `value` in text.
    while let Some(found) = memchr::memchr2(b'u', b'U', &bytes[from..]) {
        let u = from + found;
        from = u + 1;
        if u < 2
            || !bytes
                .get(u - 2..u + 2)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"alue"))
        {
            continue;
        }
        let mut i = u + 2;
        if is_escaped_quote(bytes, i) {
            i += 1;
        }
        if matches!(bytes.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        i += blanks(&bytes[i..]);
        match bytes.get(i) {
            Some(b':' | b'=') => i += 1,
            _ => continue,
        }
        if bytes.get(i) == Some(&b'>') {
            i += 1;
        }
        i += blanks(&bytes[i..]);
        let rest = &text[i..];
        let replaced = rest
            .strip_prefix('"')
            .and_then(|r| r.strip_prefix(replacement))
            .is_some_and(|r| r.starts_with('"'))
            && ends_a_value(bytes, i + replacement.len() + 2);
        if !replaced {
            return true;
        }
    }
    false
}

/// Whether `bytes` holds a 2-tuple whose first item is quoted (`('password', …)`): its second
/// may go without any `value` key.
pub(super) fn may_hold_a_tuple(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'(', bytes).any(|at| pair_tuple_at(bytes, at).is_some())
}

/// Whether the `(` at `at` opens a Python `dict(…)`.
fn opens_a_dict(bytes: &[u8], at: usize) -> bool {
    at >= 4 && &bytes[at - 4..at] == b"dict" && (at == 4 || !is_key_byte(bytes[at - 5]))
}

/// Whether the `(` at `at` opens a record printed by its class's name (Lombok's and Kotlin's
/// `EnvVar(name=…, value=…)`, a Python dataclass): it follows a letter, a digit or a `_`.
fn opens_a_record(bytes: &[u8], at: usize) -> bool {
    at >= 1 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
}

/// Where the `(` of a record printed by its class's name that starts at `at` is
/// (`EnvVar(…`, `v1.EnvVar(…`); the look is bounded.
fn record_opener(bytes: &[u8], at: usize) -> Option<usize> {
    let len = bytes[at..]
        .iter()
        .take(LONGEST_KEY + 1)
        .take_while(|&&b| is_key_byte(b) || b == b'.')
        .count();
    (len > 0 && len <= LONGEST_KEY && bytes.get(at + len) == Some(&b'(')).then_some(at + len)
}

/// The key of the 2-tuple whose `(` is at `at`, quoted (`('password', …)`, `(u'name', …)`,
/// Rust's `("token", …)`), and where its second item starts; the look is bounded.
fn pair_tuple_at(bytes: &[u8], at: usize) -> Option<(usize, usize, usize)> {
    if bytes.get(at) != Some(&b'(') {
        return None;
    }
    let mut i = at + 1;
    i += blanks(bytes.get(i..)?);
    i += string_prefix(bytes, i);
    let quote = *bytes.get(i).filter(|&&q| matches!(q, b'"' | b'\''))?;
    let key_start = i + 1;
    let key_len = bytes
        .get(key_start..)?
        .iter()
        .take(LONGEST_KEY + 1)
        .take_while(|&&b| is_key_byte(b))
        .count();
    let key_end = key_start + key_len;
    if key_len == 0 || key_len > LONGEST_KEY || bytes.get(key_end) != Some(&quote) {
        return None;
    }
    i = key_end + 1;
    i += blanks(&bytes[i..]);
    if bytes.get(i) != Some(&b',') {
        return None;
    }
    i += 1;
    i += blanks(&bytes[i..]);
    // `pprint` breaks a tuple too long for its line here (`('password',⏎  '…')`).
    let rest = &bytes[i..];
    let line_break = match rest {
        [b'\r', b'\n', ..] => 2,
        [b'\n' | b'\r', ..] => 1,
        _ => 0,
    };
    if line_break > 0 {
        i += line_break;
        i += blanks(&bytes[i..]);
    }
    match bytes.get(i) {
        None | Some(b')' | b'\n' | b'\r') => None,
        Some(_) => Some((key_start, key_end, i)),
    }
}

/// Whether the `[` at `at` opens a Go map printed by `%v` (`map[name:… value:…]`).
fn opens_a_map(bytes: &[u8], at: usize) -> bool {
    at >= 3 && &bytes[at - 3..at] == b"map" && (at == 3 || !is_key_byte(bytes[at - 4]))
}

/// Whether a value may end at `at`: before a `,`, a closer, the end of the line or, after
/// blanks, a Go field. Anything else after the JSON rule's replacement of a value is what is
/// left of a value it stopped reading at (`"value":"[REDACTED]" 'hunter2'}`).
fn ends_a_value(bytes: &[u8], at: usize) -> bool {
    let blank = blanks(bytes.get(at..).unwrap_or_default());
    matches!(
        bytes.get(at + blank),
        None | Some(b',' | b'}' | b']' | b')' | b'\n' | b'\r')
    ) || (blank > 0 && go_field_at(bytes, at + blank))
}

/// A byte of a member's key.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// Whether a member or an element may start after `b`.
fn starts_after(b: u8) -> bool {
    matches!(b, b'{' | b'(' | b'[' | b',' | b' ' | b'\t' | b'\n' | b'\r')
}

/// The index of `closer` in [`Reader::open_of`].
fn kind(closer: u8) -> usize {
    match closer {
        b'}' => 0,
        b']' => 1,
        b')' => 2,
        _ => 3,
    }
}

/// The role of the member whose key starts at `at`, where its value starts, past the
/// separator and the blanks after it, and whether it is written as JSON's (`"key":`); `None`
/// when no key and separator start there.
fn member_at(text: &str, at: usize) -> Option<(Role, usize, bool)> {
    let line = text.as_bytes();
    let mut i = at;
    // A Ruby symbol, `:name=>`, or instance variable, `@name=`.
    let symbol = matches!(line.get(i), Some(b':' | b'@'));
    i += usize::from(symbol);
    // Python 2's `u'name'`.
    let prefix = string_prefix(line, i);
    i += prefix;
    // A quote escaped once: `\"name\"` in a logfmt line's quoted value.
    let escaped = prefix == 0 && is_escaped_quote(line, i);
    i += usize::from(escaped);
    let quote = match line.get(i) {
        Some(&q @ (b'"' | b'\'')) => {
            i += 1;
            Some(q)
        }
        _ => None,
    };
    let key_start = i;
    let key_len = line[key_start..]
        .iter()
        .take(LONGEST_KEY + 1)
        .take_while(|&&b| is_key_byte(b))
        .count();
    if key_len == 0 || key_len > LONGEST_KEY {
        return None;
    }
    let key_end = key_start + key_len;
    i = key_end;
    if let Some(q) = quote {
        if escaped && line.get(i) == Some(&b'\\') {
            i += 1;
        }
        if line.get(i) != Some(&q) {
            return None;
        }
        i += 1;
    }
    i += blanks(&line[i..]);
    let colon = match (line.get(i), line.get(i + 1)) {
        (Some(b'='), Some(b'>')) => {
            i += 1;
            false
        }
        (Some(b':'), Some(b':')) | (Some(b'='), Some(b'=')) => return None,
        (Some(b':'), _) => true,
        (Some(b'='), _) => false,
        _ => return None,
    };
    i += 1;
    i += blanks(&line[i..]);
    // Keys are ASCII: the slice is on char boundaries.
    let role = role_of(&text[key_start..key_end]);
    Some((
        role,
        i,
        !symbol && prefix == 0 && !escaped && colon && quote == Some(b'"'),
    ))
}

/// How many spaces and tabs `bytes` starts with.
#[inline]
pub(super) fn blanks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|&&b| matches!(b, b' ' | b'\t'))
        .count()
}

/// Whether a Go struct's next field starts at `at` (`Name:`, not `http://` nor `a::b`).
fn go_field_at(bytes: &[u8], at: usize) -> bool {
    if !bytes.get(at).is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    let mut i = at;
    while i < bytes.len()
        && i - at <= LONGEST_KEY
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
    {
        i += 1;
    }
    bytes.get(i) == Some(&b':') && !matches!(bytes.get(i + 1), Some(b':' | b'/'))
}

/// How many letters of a Python string's prefix (`u`, `b`, `r`, `f`, `rb`…) start at `at`
/// before a quote; 0 when no quote follows them.
fn string_prefix(bytes: &[u8], at: usize) -> usize {
    let letters = bytes
        .get(at..)
        .unwrap_or_default()
        .iter()
        .take(3)
        .take_while(|b| b"bBrRuUfF".contains(b))
        .count();
    if letters <= 2 && matches!(bytes.get(at + letters), Some(b'"' | b'\'')) {
        letters
    } else {
        0
    }
}

/// Where the string that starts at `at` ends: past its closing quotes, or at the end of its
/// line when it has none there. It may have a Python prefix (`b'…'`), three quotes, quotes
/// escaped once (`\"…\"`) or backquotes; `None` when no string starts at `at`.
pub(super) fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = at + string_prefix(bytes, at);
    match bytes.get(quote)? {
        b'"' | b'\'' if is_triple_quote(bytes, quote) => Some(triple_quoted_end(bytes, quote)),
        b'"' | b'\'' | b'`' => Some(quoted_end(bytes, quote)),
        b'\\' if is_escaped_quote(bytes, quote) => Some(escaped_quoted_end(bytes, quote)),
        _ => None,
    }
}

/// Whether a quote escaped once (`\"`, `\'`) starts at `at`.
fn is_escaped_quote(bytes: &[u8], at: usize) -> bool {
    bytes.get(at) == Some(&b'\\') && matches!(bytes.get(at + 1), Some(b'"' | b'\''))
}

/// The end of the string in quotes escaped once whose `\` is at `at`: past its closing `\"`,
/// or the end of the line. Any other `\` escapes the byte after it.
fn escaped_quoted_end(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at + 1];
    let mut i = at + 2;
    while let Some(found) = bytes[i..]
        .iter()
        .position(|&b| matches!(b, b'\\' | b'\n' | b'\r'))
    {
        i += found;
        match bytes.get(i + 1) {
            _ if bytes[i] != b'\\' => return i,
            Some(&q) if q == quote => return i + 2,
            None | Some(b'\n' | b'\r') => i += 1,
            Some(_) => i += 2,
        }
    }
    bytes.len()
}

/// Whether three of the same quote start at `at` (a Python `'''…'''`).
fn is_triple_quote(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at..at + 3)
        .is_some_and(|q| q[0] == q[1] && q[1] == q[2] && matches!(q[0], b'"' | b'\''))
}

/// The end of the triple-quoted string whose quotes start at `at`: past its closing quotes,
/// or the end of the line.
fn triple_quoted_end(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let mut i = at + 3;
    while let Some(found) = bytes[i..]
        .iter()
        .position(|&b| b == quote || matches!(b, b'\\' | b'\n' | b'\r'))
    {
        i += found;
        match bytes[i] {
            b'\\' => i += 1 + usize::from(!matches!(bytes.get(i + 1), None | Some(b'\n' | b'\r'))),
            b'\n' | b'\r' => return i,
            _ if is_triple_quote(bytes, i) => return i + 3,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The end of the quoted string whose quote is at `at`: past its closing quote, or the end of
/// the line.
fn quoted_end(bytes: &[u8], at: usize) -> usize {
    let quote = bytes[at];
    let mut i = at + 1;
    // Strings in text are short: a loop costs less than a call to `memchr`.
    while let Some(found) = bytes[i..]
        .iter()
        .position(|&b| b == quote || matches!(b, b'\\' | b'\n' | b'\r'))
    {
        i += found;
        match bytes[i] {
            b'\\' => i += 1 + usize::from(!matches!(bytes.get(i + 1), None | Some(b'\n' | b'\r'))),
            b'\n' | b'\r' => return i,
            _ => return i + 1,
        }
    }
    bytes.len()
}

impl Reader<'_, '_> {
    /// Reads the text: the objects on each line, and from line to line the next opener.
    fn read(&mut self) {
        let bytes = self.text.as_bytes();
        let mut at = 0;
        // Where the next Ruby `#<` is, from `at` on; looked for again only once passed.
        let mut next_inspected = None;
        while at < bytes.len() {
            if self.open.is_empty() {
                // Only text between objects: on to the next opener. What dropped containers
                // left in the stacks is nobody's.
                self.names.clear();
                self.waiting.clear();
                if next_inspected.is_none_or(|next| next < at) {
                    next_inspected = Some(
                        memchr::memmem::find(&bytes[at..], b"#<").map_or(bytes.len(), |f| at + f),
                    );
                }
                let inspected = next_inspected.unwrap_or(bytes.len());
                match memchr::memchr3(b'{', b'(', b'[', &bytes[at..inspected]) {
                    Some(found) => at += found,
                    None if inspected < bytes.len() => at = inspected,
                    None => break,
                }
            }
            let b = bytes[at];
            match b {
                b'#' if bytes.get(at + 1) == Some(&b'<') => {
                    self.push(at, b'>', true, true, None);
                    at += 2;
                    continue;
                }
                b'{' => {
                    self.push(at, b'}', true, false, None);
                    at += 1;
                    continue;
                }
                b'(' if opens_a_dict(bytes, at) => {
                    self.push(at, b')', true, true, None);
                    at += 1;
                    continue;
                }
                b'(' if opens_a_record(bytes, at) => {
                    self.push(at, b')', true, false, None);
                    at += 1;
                    continue;
                }
                b'[' if opens_a_map(bytes, at) => {
                    self.push(at, b']', true, true, None);
                    at += 1;
                    continue;
                }
                b'(' => {
                    let inside = !self.open.is_empty();
                    at = self.parenthesis(at, None, inside).unwrap_or(at + 1);
                    continue;
                }
                // A list in text opens only when a 2-tuple does inside it.
                b'[' if self.open.is_empty() => {
                    if pair_tuple_at(bytes, at + 1).is_some() {
                        self.push(at, b']', false, false, None);
                    }
                    at += 1;
                    continue;
                }
                // An item after a 2-tuple's second makes it no pair (a `,` before its closer
                // is Python's own).
                b',' if self.open.back().is_some_and(|o| o.tuple.is_some()) => {
                    let next = at + 1 + blanks(&bytes[at + 1..]);
                    if bytes.get(next) != Some(&b')')
                        && let Some(tuple) = self.open.back_mut()
                    {
                        tuple.tuple = None;
                    }
                    at += 1;
                    continue;
                }
                b'}' | b']' | b')' if self.open_of[kind(b)] > 0 => {
                    self.close(b, at, at + 1);
                    at += 1;
                    continue;
                }
                // A `>` is common in text: it closes only an inspected object directly open.
                b'>' if self.open.back().is_some_and(|o| o.closer == b'>') => {
                    self.close(b, at, at + 1);
                    at += 1;
                    continue;
                }
                b'\n' | b'\r' => {
                    self.line += usize::from(b == b'\n');
                    self.drop_old(at);
                    at += 1;
                    continue;
                }
                _ => {}
            }
            let Some(top) = self.open.back() else {
                at += 1;
                continue;
            };
            let after_start = at > 0 && starts_after(bytes[at - 1]);
            match b {
                b'[' => self.push(at, b']', false, false, None),
                b'"' | b'\'' if after_start && !top.object => {
                    at = quoted_end(bytes, at);
                    continue;
                }
                _ if after_start && top.object => {
                    if let Some((role, value, json)) = member_at(self.text, at) {
                        if let Some(object) = self.open.back_mut() {
                            object.printed |= !json;
                        }
                        at = self.value(role, value);
                        continue;
                    }
                    if matches!(b, b'"' | b'\'') {
                        at = quoted_end(bytes, at);
                        continue;
                    }
                }
                _ => {}
            }
            at += 1;
        }
        self.finish_all(bytes.len());
    }

    /// Finishes the containers left open where the text ends, at `end`.
    fn finish_all(&mut self, end: usize) {
        while let Some(open) = self.open.pop_back() {
            self.finish(open, end, false);
        }
    }

    /// Drops the containers opened too long before the line break at `at`, oldest first, each
    /// decided on its own members as one whose line ended there. The members of a container
    /// dropped so stay in the stacks below those of the containers inside it, nobody's.
    fn drop_old(&mut self, at: usize) {
        while let Some(oldest) = self.open.front()
            && (self.line - oldest.line > CARRIED_LINES || at - oldest.start > CARRIED_BYTES)
            && let Some(open) = self.open.pop_front()
        {
            self.open_of[kind(open.closer)] -= 1;
            let (names_end, waiting_end) = self
                .open
                .front()
                .map_or((self.names.len(), self.waiting.len()), |inner| {
                    (inner.names, inner.waiting)
                });
            if self.redacts(&open, names_end, waiting_end, false) {
                self.spans
                    .extend_from_slice(&self.waiting[open.waiting..waiting_end]);
                // A value member's container inside it goes too, once it ends.
                if let Some(inner) = self.open.front_mut()
                    && inner.value_of.is_some()
                {
                    inner.goes = true;
                }
            }
            if open.goes
                && let Some(start) = open.value_of
            {
                self.spans.push((start, at));
            }
        }
    }

    /// Reads the value of a member of `role` starting at `at`, and returns where it ends.
    fn value(&mut self, role: Role, at: usize) -> usize {
        let bytes = self.text.as_bytes();
        let value_of = (role == Role::Value).then_some(at);
        // Where the quote is of a string with a prefix (`u'…'`, `b'…'`); `at` for any other.
        let quote = at + string_prefix(bytes, at);
        let value_end = match bytes.get(quote) {
            Some(b'\\') if is_escaped_quote(bytes, at) => {
                let value_end = escaped_quoted_end(bytes, at);
                let inner_end = if value_end >= at + 4 && is_escaped_quote(bytes, value_end - 2) {
                    value_end - 2
                } else {
                    value_end
                };
                self.name(role, Some((at + 2, inner_end)));
                value_end
            }
            Some(b'"' | b'\'') if is_triple_quote(bytes, quote) => {
                let value_end = triple_quoted_end(bytes, quote);
                let inner_end = if value_end >= quote + 6 && is_triple_quote(bytes, value_end - 3) {
                    value_end - 3
                } else {
                    value_end
                };
                self.name(role, Some((quote + 3, inner_end)));
                value_end
            }
            Some(b'"' | b'\'') => {
                let value_end = quoted_end(bytes, quote);
                let inner_end = if value_end > quote + 1 && bytes[value_end - 1] == bytes[quote] {
                    value_end - 1
                } else {
                    value_end
                };
                self.name(role, Some((quote + 1, inner_end)));
                value_end
            }
            Some(b'{') => {
                self.name(role, None);
                self.push(at, b'}', true, false, value_of);
                return at + 1;
            }
            Some(b'[') => {
                self.name(role, None);
                self.push(at, b']', false, false, value_of);
                return at + 1;
            }
            Some(b'(') => {
                self.name(role, None);
                return self.parenthesis(at, value_of, true).unwrap_or(at + 1);
            }
            _ if bytes[at..].starts_with(b"dict(") => {
                self.name(role, None);
                self.push(at, b')', true, true, value_of);
                return at + 5;
            }
            _ if bytes[at..].starts_with(b"#<") => {
                self.name(role, None);
                self.push(at, b'>', true, true, value_of);
                return at + 2;
            }
            _ if bytes[at..].starts_with(b"map[") => {
                self.name(role, None);
                self.push(at, b']', true, true, value_of);
                return at + 4;
            }
            _ if let Some(opener) = record_opener(bytes, at) => {
                self.name(role, None);
                self.push(at, b')', true, false, value_of);
                return opener + 1;
            }
            _ => {
                let (i, word_end) = self.word_run(at);
                self.name(role, Some((at, word_end)));
                if role == Role::Value && word_end > at {
                    self.wait(at, word_end);
                }
                return i;
            }
        };
        if role != Role::Value {
            return value_end;
        }
        if !self.replaced(at, value_end) {
            self.wait(at, value_end);
        } else if !ends_a_value(bytes, value_end) {
            // What the JSON rule left of a value it stopped reading at goes with its
            // replacement, to where a value after it would end.
            let left = value_end + blanks(&bytes[value_end..]);
            let quote = left + string_prefix(bytes, left);
            let end = match bytes.get(quote) {
                Some(b'"' | b'\'') if is_triple_quote(bytes, quote) => {
                    triple_quoted_end(bytes, quote)
                }
                Some(b'"' | b'\'') => quoted_end(bytes, quote),
                _ => self.word_run(left).1,
            };
            self.wait(at, end);
            return end;
        }
        value_end
    }

    /// Opens the parentheses at `at` after no name: a 2-tuple whose first item is a name,
    /// value or sensitive key (read on from its second item), an object when a member starts
    /// inside them (`(name=…, value=…)`, Swift's `(name: …, value: …)`), a list otherwise
    /// when `inside` a container or when a 2-tuple starts inside it; `None` when nothing opens
    /// (parentheses in prose). Returns where to read on.
    fn parenthesis(&mut self, at: usize, value_of: Option<usize>, inside: bool) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let first = at + 1 + blanks(&bytes[at + 1..]);
        if let Some((key_start, key_end, second)) = pair_tuple_at(bytes, at) {
            let key = &self.text[key_start..key_end];
            let tuple = match role_of(key) {
                Role::Name => Some(Tuple::Name),
                Role::Value => Some(Tuple::Value),
                Role::Other if self.keys.is_sensitive(key, self.keybuf) => Some(Tuple::Secret),
                // `role_of` gives none of the JSON parser's own roles.
                _ => None,
            };
            if let Some(tuple) = tuple {
                self.push(at, b')', false, true, value_of);
                if let Some(open) = self.open.back_mut() {
                    open.tuple = Some(tuple);
                }
                let role = if tuple == Tuple::Name {
                    Role::Name
                } else {
                    Role::Value
                };
                if bytes[second] == b'(' {
                    // A tuple inside a tuple is a list: reading it as a pair again would nest
                    // calls as deep as the text nests tuples.
                    self.name(role, None);
                    let value_of = (role == Role::Value).then_some(second);
                    self.push(second, b')', false, false, value_of);
                    return Some(second + 1);
                }
                return Some(self.value(role, second));
            }
        }
        if member_at(self.text, first).is_some() {
            self.push(at, b')', true, false, value_of);
        } else if inside || pair_tuple_at(bytes, first).is_some() {
            self.push(at, b')', false, false, value_of);
        } else {
            return None;
        }
        Some(at + 1)
    }

    /// The end of a value of words starting at `at`: the end of the line, a space before a Go
    /// field, a `,` before the next member, a closer or the end of the line (Go's `%v` writes a
    /// value's own `,` as it is: `Value:a,b`), or its object's closer with no more of the value
    /// glued to it (`value: a->b>`); and where its words end, before the blanks.
    fn word_run(&self, at: usize) -> (usize, usize) {
        let bytes = self.text.as_bytes();
        let closer = self.open.back().map_or(b'}', |o| o.closer);
        let mut i = at;
        while let Some(&b) = bytes.get(i) {
            let ends = match b {
                b'\n' | b'\r' => true,
                b' ' | b'\t' => go_field_at(bytes, i + 1),
                b',' => {
                    let next = i + 1 + blanks(&bytes[i + 1..]);
                    match bytes.get(next) {
                        None | Some(b'\n' | b'\r' | b'}' | b']' | b')' | b'>') => true,
                        Some(_) => member_at(self.text, next).is_some(),
                    }
                }
                _ => {
                    b == closer
                        && !bytes
                            .get(i + 1)
                            .is_some_and(|&g| g.is_ascii_alphanumeric() || g == b'_')
                }
            };
            if ends {
                break;
            }
            i += 1;
        }
        let mut word_end = i;
        while word_end > at && matches!(bytes[word_end - 1], b' ' | b'\t') {
            word_end -= 1;
        }
        (i, word_end)
    }

    /// Notes a name member of the innermost object, its string between `string`.
    fn name(&mut self, role: Role, string: Option<(usize, usize)>) {
        if role == Role::Name {
            self.names.push(string);
        }
    }

    /// How the name members from `from` to `to` in [`names`](Self::names) name their object.
    fn named(&mut self, from: usize, to: usize) -> Named {
        let mut named = Named::Not;
        for &string in &self.names[from..to] {
            if let Some((start, end)) = string
                && self.keys.is_sensitive(&self.text[start..end], self.keybuf)
            {
                return Named::Sensitively;
            }
            named = Named::Plainly;
        }
        named
    }

    /// Whether the value from `start` to `end` is the replacement in double quotes: what the
    /// JSON rule leaves of a value it redacted in a document inside the text.
    fn replaced(&self, start: usize, end: usize) -> bool {
        self.text[start..end]
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .is_some_and(|v| v == self.replacement)
    }

    /// A value member's value from `start` to `end`, waiting for its object to close.
    fn wait(&mut self, start: usize, end: usize) {
        self.waiting.push((start, end));
    }

    /// Opens a container closed by `closer`, whose opener is at `start`.
    fn push(
        &mut self,
        start: usize,
        closer: u8,
        object: bool,
        printed: bool,
        value_of: Option<usize>,
    ) {
        self.open_of[kind(closer)] += 1;
        self.open.push_back(Open {
            closer,
            object,
            printed,
            names: self.names.len(),
            waiting: self.waiting.len(),
            value_of,
            start,
            line: self.line,
            goes: false,
            tuple: None,
            pairs: false,
        });
    }

    /// Closes the containers up to the innermost one `closer` closes, at `at`; `after` is
    /// where its value ends.
    fn close(&mut self, closer: u8, at: usize, after: usize) {
        while let Some(open) = self.open.pop_back() {
            if open.closer == closer {
                self.finish(open, after, true);
                return;
            }
            self.finish(open, at, false);
        }
    }

    /// Whether the values of `open` go: its value members' (up to `waiting_end` in
    /// [`waiting`](Self::waiting)) as its name members (up to `names_end`) name it, or a
    /// sensitive key's tuple's. One not `closed` fails closed unless named plainly.
    fn redacts(&mut self, open: &Open, names_end: usize, waiting_end: usize, closed: bool) -> bool {
        waiting_end > open.waiting
            && match open.tuple {
                Some(Tuple::Secret) => true,
                Some(Tuple::Name | Tuple::Value) => false,
                None => {
                    (open.object || open.pairs)
                        && match self.named(open.names, names_end) {
                            Named::Sensitively => true,
                            Named::Not => !closed && open.printed,
                            Named::Plainly => false,
                        }
                }
            }
    }

    /// Decides the values of a container that ends at `end`, `closed` by its closer or not.
    fn finish(&mut self, open: Open, end: usize, closed: bool) {
        self.open_of[kind(open.closer)] -= 1;
        if matches!(open.tuple, Some(Tuple::Name | Tuple::Value))
            && let Some(list) = self.open.back_mut()
            && !list.object
        {
            // Its member is the list's: left in the stacks, above the list's own.
            list.pairs = true;
            list.printed = true;
        } else {
            let redact = self.redacts(&open, self.names.len(), self.waiting.len(), closed);
            self.names.truncate(open.names);
            if redact {
                self.spans.extend(self.waiting.drain(open.waiting..));
            } else {
                self.waiting.truncate(open.waiting);
            }
        }
        if let Some(start) = open.value_of {
            if !self.open.is_empty() {
                self.waiting.push((start, end));
            } else if open.goes {
                // Its object was dropped, naming it sensitively.
                self.spans.push((start, end));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};

    /// A `text/plain` body and an error text, redacted.
    fn run(text: &str) -> String {
        let redactor = Redactor::default();
        let body = redactor
            .redact_body(&BodyInput::new(Some("text/plain"), text.as_bytes()))
            .unwrap_or_default();
        assert_eq!(redactor.redact_error(text), body, "{text}");
        body
    }

    /// Found by review: a sensitive key whose value a printer put on the line after it
    /// (`{'password':⏎ 'hunter2'}`, as Black, Prettier or Node's `console.log` break a member
    /// too long for its line) kept its value: the pair rules read a value on its key's line.
    #[test]
    fn values_on_the_line_after_their_key() {
        for (text, redacted) in [
            ("{'password':\n 'hunter2'}", "{'password':\n [REDACTED]}"),
            (
                "error: {\"password\":\n  \"hunter2\"} retry",
                "error: {\"password\":\n  [REDACTED]} retry",
            ),
            (
                "{ user: 'ann', password:\r\n    'hunter2' }",
                "{ user: 'ann', password:\r\n    [REDACTED] }",
            ),
            (
                "Config(token=\n    b'hunter2', retries=3)",
                "Config(token=\n    b[REDACTED], retries=3)",
            ),
            (
                "ERROR {\"api_key\":\n \"a, b\", \"n\": 1} at x",
                "ERROR {\"api_key\":\n [REDACTED], \"n\": 1} at x",
            ),
            (
                "{'password':\n  ['a', 'b'], 'user': 'ann'}",
                "{'password':\n  [REDACTED], 'user': 'ann'}",
            ),
        ] {
            assert_eq!(run(text), redacted, "{text}");
        }
        // A key without quotes or brackets around it on its line, and a next line that holds
        // no quoted value, keep that line.
        for plain in [
            "Enter your password:\n'hunter' is not it",
            "{'password':\n  None}",
            "note \"password\":\nuser 'ann'",
        ] {
            assert_eq!(run(plain), plain);
        }
    }

    #[test]
    fn python_dicts() {
        for (text, redacted) in [
            (
                "env: {'name': 'DB_PASSWORD', 'value': 'hunter2'}",
                "env: {'name': 'DB_PASSWORD', 'value': [REDACTED]}",
            ),
            (
                r#"{"name": 'DB_PASSWORD', "value": "hunter2", 'x': None}"#,
                r#"{"name": 'DB_PASSWORD', "value": [REDACTED], 'x': None}"#,
            ),
            (
                "[{'name': 'PORT', 'value': '80'}, {'name': 'API_KEY', 'value': 'k-1'}]",
                "[{'name': 'PORT', 'value': '80'}, {'name': 'API_KEY', 'value': [REDACTED]}]",
            ),
            (
                "env=dict(name='DB_PASSWORD', value='hunter2') x",
                "env=dict(name='DB_PASSWORD', value=[REDACTED]) x",
            ),
            (
                "{'NAME': 'db_password', 'vAlUe': 'hunter2'}",
                "{'NAME': 'db_password', 'vAlUe': [REDACTED]}",
            ),
            // An escaped quote inside the value.
            (
                r"{'Name': 'db_password', 'Value': 'it\'s, a }'}",
                r"{'Name': 'db_password', 'Value': [REDACTED]}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    #[test]
    fn ruby_hashes() {
        for (text, redacted) in [
            (
                r#"{"name"=>"DB_PASSWORD", "value"=>"hunter2"}"#,
                r#"{"name"=>"DB_PASSWORD", "value"=>[REDACTED]}"#,
            ),
            (
                r#"{:name=>"DB_PASSWORD", :value=>"hunter2"}"#,
                r#"{:name=>"DB_PASSWORD", :value=>[REDACTED]}"#,
            ),
            (
                r#"{name: "DB_PASSWORD", value: "hunter2"}"#,
                r#"{name: "DB_PASSWORD", value: [REDACTED]}"#,
            ),
            (
                r#"{"name" => "DB_PASSWORD", "value" => "hunter2"}"#,
                r#"{"name" => "DB_PASSWORD", "value" => [REDACTED]}"#,
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    #[test]
    fn ruby_objects_inspected() {
        for (text, redacted) in [
            (
                r#"#<EnvVar:0x000055d5 @name="DB_PASSWORD", @value="hunter2">"#,
                r#"#<EnvVar:0x000055d5 @name="DB_PASSWORD", @value=[REDACTED]>"#,
            ),
            // ActiveRecord's `inspect`.
            (
                r#"#<Setting id: 1, name: "DB_PASSWORD", value: "hunter2", created_at: "2024-01-02">"#,
                r#"#<Setting id: 1, name: "DB_PASSWORD", value: [REDACTED], created_at: "2024-01-02">"#,
            ),
            (
                r#"[#<Setting name: "API_KEY", value: k-1>, #<Setting name: "PORT", value: 80>]"#,
                r#"[#<Setting name: "API_KEY", value: [REDACTED]>, #<Setting name: "PORT", value: 80>]"#,
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        for text in [
            r#"#<Setting id: 1, name: "PORT", value: "80">"#,
            "#<Proc:0x0000 (lambda)> and a -> b > c",
        ] {
            assert_eq!(run(text), text);
        }
        // A `>` closes only an inspected object directly open: not one a list inside it holds.
        assert_eq!(
            run(r#"#<A name: "DB_PASSWORD", tags: [1 > 0], value: "hunter2">"#),
            r#"#<A name: "DB_PASSWORD", tags: [1 > 0], value: [REDACTED]>"#
        );
    }

    #[test]
    fn javascript_objects() {
        for (text, redacted) in [
            (
                "{ name: 'DB_PASSWORD', value: 'hunter2' }",
                "{ name: 'DB_PASSWORD', value: [REDACTED] }",
            ),
            (
                "[ { name: 'x-api-key', value: abc123 } ]",
                "[ { name: 'x-api-key', value: [REDACTED] } ]",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    #[test]
    fn go_structs() {
        for (text, redacted) in [
            (
                "env {Name:DB_PASSWORD Value:hunter2}",
                "env {Name:DB_PASSWORD Value:[REDACTED]}",
            ),
            (
                "&{Name:DB_PASSWORD Value:hunter2}",
                "&{Name:DB_PASSWORD Value:[REDACTED]}",
            ),
            (
                r#"main.EnvVar{Name:"DB_PASSWORD", Value:"hunter2"}"#,
                r#"main.EnvVar{Name:"DB_PASSWORD", Value:[REDACTED]}"#,
            ),
            // A value of words, up to the next field; a field after it stays.
            (
                "{Name:DB_PASSWORD Value:two words ValueFrom:<nil>}",
                "{Name:DB_PASSWORD Value:[REDACTED] ValueFrom:<nil>}",
            ),
            (
                "[{Name:PORT Value:80} {Name:API_KEY Value:k-1}]",
                "[{Name:PORT Value:80} {Name:API_KEY Value:[REDACTED]}]",
            ),
            (
                "{Env:[{Name:DB_PASSWORD Value:hunter2 ValueFrom:nil}] Image:app}",
                "{Env:[{Name:DB_PASSWORD Value:[REDACTED] ValueFrom:nil}] Image:app}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    #[test]
    fn go_maps() {
        for (text, redacted) in [
            (
                "env map[name:DB_PASSWORD value:hunter2]",
                "env map[name:DB_PASSWORD value:[REDACTED]]",
            ),
            (
                "map[value:two words name:DB_PASSWORD]",
                "map[value:[REDACTED] name:DB_PASSWORD]",
            ),
            (
                "[map[name:PORT value:80] map[name:API_KEY value:k-1]]",
                "[map[name:PORT value:80] map[name:API_KEY value:[REDACTED]]]",
            ),
            (
                "map[env:[map[name:DB_PASSWORD value:hunter2]] image:app]",
                "map[env:[map[name:DB_PASSWORD value:[REDACTED]]] image:app]",
            ),
            (
                "{Env:map[name:DB_PASSWORD value:hunter2]}",
                "{Env:map[name:DB_PASSWORD value:[REDACTED]]}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        assert_eq!(run("map[name:PORT value:80]"), "map[name:PORT value:80]");
    }

    #[test]
    fn java_and_kotlin_records() {
        for (text, redacted) in [
            // Lombok's and Kotlin's `toString()`, a Python dataclass.
            (
                "EnvVar(name=DB_PASSWORD, value=hunter2, valueFrom=null)",
                "EnvVar(name=DB_PASSWORD, value=[REDACTED], valueFrom=null)",
            ),
            (
                "EnvVar(name='DB_PASSWORD', value='hunter2')",
                "EnvVar(name='DB_PASSWORD', value=[REDACTED])",
            ),
            (
                "Parameter(ParameterKey=DbPassword, ParameterValue=hunter2)",
                "Parameter(ParameterKey=DbPassword, ParameterValue=[REDACTED])",
            ),
            (
                "[EnvVar(name=PORT, value=80), EnvVar(name=API_KEY, value=k 1)]",
                "[EnvVar(name=PORT, value=80), EnvVar(name=API_KEY, value=[REDACTED])]",
            ),
            (
                "Container(env=EnvVar(name=DB_PASSWORD, value=hunter2), image=app)",
                "Container(env=EnvVar(name=DB_PASSWORD, value=[REDACTED]), image=app)",
            ),
            (
                "Secret(name=DB_PASSWORD, value=Optional(hunter2, 2))",
                "Secret(name=DB_PASSWORD, value=[REDACTED])",
            ),
            // Java's `Map.toString()`.
            (
                "{name=DB_PASSWORD, value=hunter2}",
                "{name=DB_PASSWORD, value=[REDACTED]}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        for text in [
            "EnvVar(name=PORT, value=80)",
            "f(x) and g(value=3)",
            "if (value == 1) { name = x }",
        ] {
            assert_eq!(run(text), text);
        }
    }

    #[test]
    fn python_string_prefixes_and_triple_quotes() {
        for (text, redacted) in [
            (
                "{u'name': u'DB_PASSWORD', u'value': u'hunter2'}",
                "{u'name': u'DB_PASSWORD', u'value': [REDACTED]}",
            ),
            (
                "{'name': b'DB_PASSWORD', 'value': rb'hunter2'}",
                "{'name': b'DB_PASSWORD', 'value': [REDACTED]}",
            ),
            (
                "dict(name='DB_PASSWORD', value='''hunter2 ' x''') y",
                "dict(name='DB_PASSWORD', value=[REDACTED]) y",
            ),
            (
                r#"{'name': 'DB_PASSWORD', 'value': """hunter2""", 'x': 1}"#,
                r#"{'name': 'DB_PASSWORD', 'value': [REDACTED], 'x': 1}"#,
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        assert_eq!(
            run("{u'name': u'PORT', u'value': u'80'}"),
            "{u'name': u'PORT', u'value': u'80'}"
        );
    }

    #[test]
    fn the_value_before_its_name() {
        for (text, redacted) in [
            (
                "{'value': 'hunter2', 'name': 'DB_PASSWORD'}",
                "{'value': [REDACTED], 'name': 'DB_PASSWORD'}",
            ),
            (
                "{Value:hunter2 Name:DB_PASSWORD}",
                "{Value:[REDACTED] Name:DB_PASSWORD}",
            ),
            // A value container, whole.
            (
                "{'value': {'a': [1, '}']}, 'ParameterKey': 'DbPassword'}",
                "{'value': [REDACTED], 'ParameterKey': 'DbPassword'}",
            ),
            // A value waiting for a name when the line ends before its object closes.
            (
                "{'value': 'hunter2',\n 'name': 'DB_PASSWORD'}",
                "{'value': [REDACTED],\n 'name': 'DB_PASSWORD'}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    #[test]
    fn plain_names_and_other_objects_stay() {
        for text in [
            "{'name': 'Ann', 'value': 3}",
            "{'value': 3, 'name': 'Ann'}",
            "{ name: 'PORT', value: 80 }",
            "{Name:PORT Value:80}",
            r#"{:name=>"ann", :value=>"x"}"#,
            "dict(name='x', value=1)",
            // A value whose object closes unnamed, and a name in another object.
            "{'value': 3} {'name': 'DB_PASSWORD'}",
            // The name member's object, not its parent's nor its child's.
            "{'value': 1, 'x': {'name': 'DB_PASSWORD'}, 'name': 'a'}",
            "{'name': 'DB_PASSWORD', 'x': {'value': 1, 'name': 'a'}}",
            // A name that is no string.
            "{'name': ['password'], 'value': 1}",
            // Prose in braces.
            "set {the name: password} and {its value: 1}",
            "fn f() { let value = 1; }",
        ] {
            assert_eq!(run(text), text);
        }
    }

    /// Pretty printers write one member a line: the name and the value pair over lines, up to
    /// a bound.
    #[test]
    fn pairs_over_lines() {
        for (text, redacted) in [
            // Python's `pprint`.
            (
                "{'name': 'DB_PASSWORD',\n 'value': 'hunter2'}",
                "{'name': 'DB_PASSWORD',\n 'value': [REDACTED]}",
            ),
            // Node's `console.log`, with Windows' line breaks too.
            (
                "{\n  name: 'DB_PASSWORD',\n  value: 'hunter2'\n}",
                "{\n  name: 'DB_PASSWORD',\n  value: [REDACTED]\n}",
            ),
            (
                "{\r\n  name: 'DB_PASSWORD',\r\n  value: 'hunter2'\r\n}",
                "{\r\n  name: 'DB_PASSWORD',\r\n  value: [REDACTED]\r\n}",
            ),
            // Ruby's `pp`, of a hash and of an object.
            (
                "[{\"name\"=>\"DB_PASSWORD\",\n  \"value\"=>\"hunter2\"}]",
                "[{\"name\"=>\"DB_PASSWORD\",\n  \"value\"=>[REDACTED]}]",
            ),
            (
                "#<EnvVar:0x000055d5\n @name=\"DB_PASSWORD\",\n @value=\"hunter2\">",
                "#<EnvVar:0x000055d5\n @name=\"DB_PASSWORD\",\n @value=[REDACTED]>",
            ),
            // Go's `%+v` of a struct whose name holds a line break.
            (
                "&{Name:DB_PASSWORD\nValue:hunter2}",
                "&{Name:DB_PASSWORD\nValue:[REDACTED]}",
            ),
            // Kotlin's and Lombok's `toString()` reformatted.
            (
                "EnvVar(\n  name=DB_PASSWORD,\n  value=hunter2\n)",
                "EnvVar(\n  name=DB_PASSWORD,\n  value=[REDACTED]\n)",
            ),
            (
                "[{'name': 'PORT', 'value': '80'},\n {'name': 'API_KEY',\n  'value': 'k-1'}]",
                "[{'name': 'PORT', 'value': '80'},\n {'name': 'API_KEY',\n  'value': [REDACTED]}]",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        for text in [
            "{\n  name: 'PORT',\n  value: 80\n}",
            "{'value': 'x',\n 'name': 'PORT'}",
            "{'value': 3,\n 'other': 1}",
        ] {
            assert_eq!(run(text), text);
        }
        // An object opened long before is dropped at a line break: one inside it still pairs.
        let members = "  'x': 1,\n".repeat(40);
        let text = format!(
            "{{'spec': {{\n{members}  'env': [{{'name': 'DB_PASSWORD',\n           'value': 'hunter2'}}]}}}}"
        );
        let redacted = format!(
            "{{'spec': {{\n{members}  'env': [{{'name': 'DB_PASSWORD',\n           'value': [REDACTED]}}]}}}}"
        );
        assert_eq!(run(&text), redacted);
        // A value waiting in an object dropped so goes (fail closed) unless named plainly.
        let text = format!("{{'value': 'hunter2',\n{members} 'name': 'PORT'}}");
        let redacted = format!("{{'value': [REDACTED],\n{members} 'name': 'PORT'}}");
        assert_eq!(run(&text), redacted);
        let text = format!("{{'name': 'PORT', 'value': '80',\n{members} 'a': 'b'}}");
        assert_eq!(run(&text), text);
    }

    /// Python's pairs as 2-tuples: a sensitive key's value, and a name and a value spread
    /// over the tuples of one list.
    #[test]
    fn tuples() {
        for (text, redacted) in [
            (
                "OrderedDict([('name', 'DB_PASSWORD'), ('value', 'hunter2')])",
                "OrderedDict([('name', 'DB_PASSWORD'), ('value', [REDACTED])])",
            ),
            (
                "env [('value', 'hunter2'), ('name', 'API_KEY')]",
                "env [('value', [REDACTED]), ('name', 'API_KEY')]",
            ),
            ("[('password', 'hunter2')]", "[('password', [REDACTED])]"),
            ("(('token', 'hunter2'),)", "(('token', [REDACTED]),)"),
            (
                "ImmutableMultiDict([('user', 'ann'), ('password', 'hunter2')])",
                "ImmutableMultiDict([('user', 'ann'), ('password', [REDACTED])])",
            ),
            (
                r#"[("api_key", "k-1"), ("x", "y")]"#,
                r#"[("api_key", [REDACTED]), ("x", "y")]"#,
            ),
            ("(u'secret', u'hunter2')", "(u'secret', [REDACTED])"),
            ("[('Token', None)]", "[('Token', [REDACTED])]"),
            (
                "[('name', 'DB_PASSWORD'), ('value', ('a', 'b'))]",
                "[('name', 'DB_PASSWORD'), ('value', [REDACTED])]",
            ),
            (
                "{'x': ('password', 'hunter2')}",
                "{'x': ('password', [REDACTED])}",
            ),
            (
                "[('name', 'DB_PASSWORD'),\n ('value', 'hunter2')]",
                "[('name', 'DB_PASSWORD'),\n ('value', [REDACTED])]",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        for text in [
            "[('name', 'PORT'), ('value', '80')]",
            "[('user', 'ann'), ('x', 'password')]",
            "('value', 'x') ('name', 'DB_PASSWORD')",
            "('password', 'is', 'required')",
        ] {
            assert_eq!(run(text), text);
        }
    }

    /// Found by review: `pprint` breaks a 2-tuple too long for its line after the key's `,`
    /// (`[('password',\n  '…')]`); a key with its value on the next line was no pair, and the
    /// value was stored.
    #[test]
    fn tuples_over_lines() {
        for (text, redacted) in [
            (
                "[('password',\n  'hunter2, and a long tail to wrap the line')]",
                "[('password',\n  [REDACTED])]",
            ),
            (
                "[('name', 'DB_PASSWORD'),\r\n ('value',\r\n  'hunter2, and more')]",
                "[('name', 'DB_PASSWORD'),\r\n ('value',\r\n  [REDACTED])]",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        let text = "[('user',\n  'ann, from the long list of users')]";
        assert_eq!(run(text), text);
    }

    /// Members in parentheses after no name: a Swift tuple, a record printed without its
    /// class.
    #[test]
    fn parentheses_after_no_name() {
        for (text, redacted) in [
            (
                "(name=DB_PASSWORD, value=hunter2)",
                "(name=DB_PASSWORD, value=[REDACTED])",
            ),
            (
                r#"env: (name: "DB_PASSWORD", value: "hunter2")"#,
                r#"env: (name: "DB_PASSWORD", value: [REDACTED])"#,
            ),
            (
                "[(name=PORT, value=80), (name=API_KEY, value=k-1)]",
                "[(name=PORT, value=80), (name=API_KEY, value=[REDACTED])]",
            ),
            (
                "{'env': (name='DB_PASSWORD', value='hunter2')}",
                "{'env': (name='DB_PASSWORD', value=[REDACTED])}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        for text in [
            "(name=PORT, value=80)",
            "see (value: 3) and (name: password)",
            "if (value == 1) { x }",
        ] {
            assert_eq!(run(text), text);
        }
    }

    /// A `,` ends a value of words only before the next member, a closer or the end of the
    /// line; a closer only where no more of the value is glued to it.
    #[test]
    fn values_holding_commas_and_closers() {
        for (text, redacted) in [
            (
                "{Name:DB_PASSWORD Value:a,b}",
                "{Name:DB_PASSWORD Value:[REDACTED]}",
            ),
            (
                "{Name:DB_PASSWORD Value:a,b ValueFrom:<nil>}",
                "{Name:DB_PASSWORD Value:[REDACTED] ValueFrom:<nil>}",
            ),
            (
                "EnvVar(name=DB_PASSWORD, value=hunter2,more, valueFrom=null)",
                "EnvVar(name=DB_PASSWORD, value=[REDACTED], valueFrom=null)",
            ),
            (
                "{name=DB_PASSWORD, value=a, b}",
                "{name=DB_PASSWORD, value=[REDACTED]}",
            ),
            (
                "{name=DB_PASSWORD, value=a,\n 'x': 1}",
                "{name=DB_PASSWORD, value=[REDACTED],\n 'x': 1}",
            ),
            (
                r#"#<A name: "DB_PASSWORD", value: a->b>"#,
                r#"#<A name: "DB_PASSWORD", value: [REDACTED]>"#,
            ),
            (
                "{Name:DB_PASSWORD Value:a}b}",
                "{Name:DB_PASSWORD Value:[REDACTED]}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    /// Quotes written as HTML references, in text and in a page.
    #[test]
    fn quotes_written_as_references() {
        for (text, redacted) in [
            (
                "{&#39;name&#39;: &#39;DB_PASSWORD&#39;, &#39;value&#39;: &#39;hunter2&#39;}",
                "{&#39;name&#39;: &#39;DB_PASSWORD&#39;, &#39;value&#39;: [REDACTED]}",
            ),
            (
                "{&quot;name&quot;: &quot;DB_PASSWORD&quot;, &quot;value&quot;: &quot;hunter2&quot;}",
                "{&quot;name&quot;: &quot;DB_PASSWORD&quot;, &quot;value&quot;: [REDACTED]}",
            ),
            (
                "{&#x27;Value&#x27;: &#x27;hunter2&#x27;, &#x27;Name&#x27;: &#x27;token&#x27;}",
                "{&#x27;Value&#x27;: [REDACTED], &#x27;Name&#x27;: &#x27;token&#x27;}",
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        let redactor = Redactor::default();
        let page = "<pre>{&#39;name&#39;: &#39;DB_PASSWORD&#39;, &#39;value&#39;: &#39;hunter2&#39;}</pre>";
        assert_eq!(
            redactor
                .redact_body(&BodyInput::new(Some("text/html"), page.as_bytes()))
                .as_deref(),
            Some("<pre>{&#39;name&#39;: &#39;DB_PASSWORD&#39;, &#39;value&#39;: [REDACTED]}</pre>")
        );
        let text = "{&#39;name&#39;: &#39;PORT&#39;, &#39;value&#39;: &#39;80&#39;}";
        assert_eq!(run(text), text);
    }

    #[test]
    fn limits_as_the_readme_states_them() {
        // (A Kubernetes env in YAML, `- name: DB_PASSWORD` then `value: …`, is the YAML rule's.)
        for text in [
            "{DB_PASSWORD hunter2}",
            r#"{'event': "env {'name': 'DB_PASSWORD', 'value': 'hunter2'}"}"#,
        ] {
            assert_eq!(run(text), text);
        }
        // A value of words holding `, ` and then a member's key keeps it and what follows.
        assert_eq!(
            run("{name=DB_PASSWORD, value=a, b=c}"),
            "{name=DB_PASSWORD, value=[REDACTED], b=c}"
        );
    }

    /// A document read as JSON has its value replaced already, in quotes: it stays so.
    #[test]
    fn documents_read_as_json_are_not_redacted_twice() {
        assert_eq!(
            run(r#"failed: {"name": "DB_PASSWORD", "value": "hunter2"} (retrying)"#),
            r#"failed: {"name":"DB_PASSWORD","value":"[REDACTED]"} (retrying)"#
        );
    }

    /// A document that stops being JSON at its value is stored cut after the value's
    /// replacement; what is left of the value there goes too.
    #[test]
    fn values_the_json_rule_stopped_at_go() {
        for (text, redacted) in [
            (
                r#"{"name": "DB_PASSWORD", "value": 'hunter2'}"#,
                r#"{"name":"DB_PASSWORD","value":[REDACTED]}"#,
            ),
            (
                r#"{"name":"DB_PASSWORD","value":hunter2}"#,
                r#"{"name":"DB_PASSWORD","value":[REDACTED]}"#,
            ),
            (
                r#"{"name": "DB_PASSWORD", "value": two words, "x": 1}"#,
                r#"{"name":"DB_PASSWORD","value":[REDACTED], "x": 1}"#,
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
    }

    /// Quotes escaped once, in a logfmt line's quoted value or a string printed with `%q`.
    #[test]
    fn escaped_quotes() {
        for (text, redacted) in [
            (
                r#"msg="{name: \"DB_PASSWORD\", value: \"hunter2, }\"}""#,
                r#"msg="{name: \"DB_PASSWORD\", value: [REDACTED]}""#,
            ),
            (
                r#"msg="{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"}" x=1"#,
                r#"msg="{\"name\":\"DB_PASSWORD\",\"value\":[REDACTED]}" x=1"#,
            ),
            (
                r##"msg="#<Setting name: \"DB_PASSWORD\", value: \"hunter2\">""##,
                r##"msg="#<Setting name: \"DB_PASSWORD\", value: [REDACTED]>""##,
            ),
        ] {
            assert_eq!(run(text), redacted);
        }
        let text = r#"msg="{\"name\":\"PORT\",\"value\":\"80\"}""#;
        assert_eq!(run(text), text);
    }

    #[test]
    fn pairs_in_a_json_string() {
        let redactor = Redactor::default();
        let body = r#"{"log":"env {'name': 'DB_PASSWORD', 'value': 'hunter2'}"}"#;
        assert_eq!(
            redactor
                .redact_body(&BodyInput::new(Some("application/json"), body.as_bytes()))
                .as_deref(),
            Some(r#"{"log":"env {'name': 'DB_PASSWORD', 'value': [REDACTED]}"}"#)
        );
    }

    /// Found by review: a string holding 2-tuples and neither `=` nor `:` (a Python list of
    /// pairs logged as a string) was not read as free text, so the value of a sensitive key's
    /// tuple, or of a `value` tuple named sensitively, was stored; with its quotes escaped too.
    #[test]
    fn tuples_in_a_json_string() {
        let redactor = Redactor::default();
        for (body, redacted) in [
            (
                r#"{"log":"[('password', 'hunter2')]"}"#,
                r#"{"log":"[('password', [REDACTED])]"}"#,
            ),
            (
                r#"{"log":"OrderedDict([('name', 'DB_PASSWORD'), ('value', 'hunter2')])"}"#,
                r#"{"log":"OrderedDict([('name', 'DB_PASSWORD'), ('value', [REDACTED])])"}"#,
            ),
            (
                r#"{"log":"x [(\"api_key\", \"hunter2\")]"}"#,
                r#"{"log":"x [(\"api_key\", [REDACTED])]"}"#,
            ),
            (
                r#"{"log":"(\u0027token\u0027, \u0027hunter2\u0027)"}"#,
                r#"{"log":"('token', [REDACTED])"}"#,
            ),
        ] {
            assert_eq!(
                redactor
                    .redact_body(&BodyInput::new(Some("application/json"), body.as_bytes()))
                    .as_deref(),
                Some(redacted),
                "{body}"
            );
        }
        let form = "log=[('password',+'hunter2')]";
        assert_eq!(
            redactor
                .redact_body(&BodyInput::new(
                    Some("application/x-www-form-urlencoded"),
                    form.as_bytes()
                ))
                .as_deref(),
            Some("log=[('password',+[REDACTED])]")
        );
    }
}
