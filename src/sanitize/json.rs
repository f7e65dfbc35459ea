//! Streaming JSON redaction that works on prefixes and garbage.
//!
//! A captured body is often cut by the capture cap and sometimes is not JSON at all, so this
//! is a hand-written tokenizer rather than `serde_json`: it re-emits the tokens it has read
//! (compactly), replaces every value under a sensitive key as soon as the value starts, and
//! stops at the first byte it cannot accept. Nothing after that byte is emitted.
//!
//! Tokens are not copied one at a time: the output is the input with whitespace, redacted values
//! and what follows the stop left out, so the tokenizer copies each run of accepted input between
//! two such places in one piece.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::keys::{OAUTH_CLIENT_ID, OAUTH_REQUEST, OAUTH_STATE, oauth_mark};
use super::redactor::Rules;
use super::text::trim_cut_tail;
use super::values::ValueRules;

/// RFC 7464's record separator, which a JSON text sequence's record may hold raw in a string.
pub(super) const RECORD_SEPARATOR: u8 = 0x1E;

/// Why the tokenizer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// One complete document was read.
    Done,
    /// The input ended inside the document.
    Eof,
    /// The byte at this offset is not valid JSON here.
    Invalid(usize),
}

/// What the tokenizer accepts next.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Value,
    /// Just after `[`.
    ValueOrClose,
    /// Just after `{`.
    KeyOrClose,
    Key,
    Colon,
    CommaOrClose,
    End,
}

/// Bytes that end the fast scan inside a string: quote, backslash and control characters.
static STRING_SPECIAL: [bool; 256] = string_special(false);

/// [`STRING_SPECIAL`] without the raw line breaks and record separator a record of JSON Lines
/// may hold in a string (see [`redact_json_record`]): read as the string's text, in the same
/// scan, so that reading them costs every other body nothing.
static STRING_SPECIAL_BUT_BREAKS: [bool; 256] = string_special(true);

/// The bytes that end the fast scan inside a string; not raw breaks when `raw_breaks`.
const fn string_special(raw_breaks: bool) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    if raw_breaks {
        table[b'\n' as usize] = false;
        table[b'\r' as usize] = false;
        table[RECORD_SEPARATOR as usize] = false;
    }
    table
}

/// Bytes that may make a string free text with pairs or elements of its own (`key=value`,
/// `key: value`, JSON quoted as a string, `<password>…`, `&lt;password&gt;…`); noted by the
/// same scan, as [`PAIR`]; a `-` as [`DASH`], for a command line's `--password hunter2`, and
/// so the first byte of a Unicode dash's UTF-8 (`—password hunter2`); a `'`, a `$` and a `(`
/// as [`QUOTE`], for an SQL statement's password (`'…'`, `$$…$$`, a column list), and the
/// letters its keywords are told by as [`SQL_KEYWORD`].
static PAIR_MARK: [u8; 256] = {
    let mut table = [0; 256];
    table[b'=' as usize] = PAIR;
    table[b':' as usize] = PAIR;
    table[b'<' as usize] = PAIR;
    table[b'&' as usize] = PAIR;
    table[b'-' as usize] = DASH;
    table[0xE2] = DASH;
    table[b' ' as usize] = BLANK;
    table[b'\t' as usize] = BLANK;
    // Raw only in a record whose strings may hold raw breaks (see `redact_json_record`).
    table[b'\n' as usize] = BLANK;
    table[b'\r' as usize] = BLANK;
    table[0x0c] = BLANK;
    table[b'\'' as usize] = QUOTE;
    table[b'$' as usize] = QUOTE;
    table[b'(' as usize] = QUOTE;
    let mut i = 0;
    while i < SQL_KEYWORD_LETTERS.len() {
        table[SQL_KEYWORD_LETTERS[i] as usize] = SQL_KEYWORD;
        i += 1;
    }
    table[b'f' as usize] |= IDENTIFIED_LETTER;
    table[b'F' as usize] |= IDENTIFIED_LETTER;
    table
};

/// The letters [`super::sql::may_hold_password`] tells its keywords by, in both cases.
const SQL_KEYWORD_LETTERS: &[u8] = b"wWfFvV";

/// A [`PAIR_MARK`]: the string may hold a pair.
const PAIR: u8 = 1;
/// A [`PAIR_MARK`]: the string holds a `-`, and may hold a long option.
const DASH: u8 = 2;
/// Noted by the scan as [`PAIR_MARK`]s are: the string holds a `-` written `\u002d`, or a
/// Unicode dash a long option may start with written as an escape (`\u2014`, as .NET's
/// encoder writes one), so whether it holds a long option is told from its decoded text.
const ESCAPED_DASH: u8 = 4;
/// A [`PAIR_MARK`]: the string holds a `'`, a `$` or a `(`, also written as an escape, or an
/// escaped `"`, and may hold an SQL statement's password (`CREATE USER u IDENTIFIED BY '…'`,
/// `PASSWORD \"…\"`, `PASSWORD $$…$$`, `INSERT INTO t (password) VALUES (…)`).
const QUOTE: u8 = 8;

/// A [`PAIR_MARK`]: the string holds a letter of [`SQL_KEYWORD_LETTERS`], and may name a
/// keyword an SQL statement's password comes after; with [`QUOTE`], it may hold one.
const SQL_KEYWORD: u8 = 16;

/// A [`PAIR_MARK`]: the string holds ASCII whitespace. Every command-line rule reads a
/// password in a word after another word (`mysql -phunter2`, `--password hunter2`, `curl -u
/// a:b`): a string without whitespace, or escapes that may write it, holds none (`SKU-00001`,
/// a date, a UUID), and is not looked at further.
const BLANK: u8 = 32;

/// A [`PAIR_MARK`]: the string holds an `f` or an `F`, and may name `IDENTIFIED`, after which
/// an SQL statement's password may be unquoted (`IDENTIFIED BY hunter2`, `BY 0x…`).
const IDENTIFIED_LETTER: u8 = 64;

/// Redacts a JSON body into `out`.
///
/// `cut` is the truncation marker text when `input` is only a prefix of the body; the output
/// then ends with ` …[<cut>]` instead of a parse error.
pub(super) fn redact_json(rules: &Rules, input: &[u8], cut: Option<&str>, out: &mut String) {
    // JSON is UTF-8; validate once up front so the tokenizer can slice `&str` freely.
    let (text, bad_utf8) = match std::str::from_utf8(input) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = &input[..e.valid_up_to()];
            let text = std::str::from_utf8(valid).unwrap_or_default();
            // A multi-byte character split by the capture cap is just part of the cut.
            let split_char = e.error_len().is_none() && cut.is_some();
            (text, (!split_char).then_some(e.valid_up_to()))
        }
    };
    let is_prefix = cut.is_some() || bad_utf8.is_some();
    let start = out.len();
    let mut parser = Parser::new(rules, text, is_prefix, 0, out);
    let mut stop = parser.run();
    // A Kubernetes `Secret`'s kind was read: read again with its data replaced.
    let secrets = (parser.secret_kind && !is_prefix)
        .then(|| kubernetes_secrets_redacted(rules, text))
        .flatten();
    if let Some(secrets) = &secrets {
        out.truncate(start);
        stop = tokenize(rules, secrets, false, 0, out).0;
    }
    let text = secrets.as_deref().unwrap_or(text);
    let end = text.len();
    // `write!` into a String cannot fail.
    let _ = match (stop, bad_utf8, cut) {
        (Stop::Invalid(at), _, _) => write!(out, " …[invalid JSON at byte {at}]"),
        (_, Some(at), _) => write!(out, " …[invalid UTF-8 at byte {at}]"),
        (_, None, Some(cut)) => write!(out, " …[{cut}]"),
        (Stop::Eof, None, None) => write!(out, " …[invalid JSON at byte {end}]"),
        (Stop::Done, None, None) => Ok(()),
    };
}

/// A Kubernetes `Secret` (`{"kind":"Secret","data":{"tls.key":"LS0t…"}}`, as `kubectl create
/// secret` sends it, or a `List` of them) with every value of its `data` and `stringData`
/// replaced, compact; `None` when `text` is no such document. Its keys are names of any kind
/// (`tls.key`, `DATABASE_URL`), its values base64 of anything: only the `kind` tells them apart,
/// and it may come after them (`kubectl get -o json` sorts keys). Read only when the parser
/// read a `"kind":"Secret"` (see [`Parser::kind_key`]).
fn kubernetes_secrets_redacted(rules: &Rules, text: &str) -> Option<String> {
    fn redact(value: &mut serde_json::Value, replacement: &str) -> bool {
        let serde_json::Value::Object(object) = value else {
            return false;
        };
        let mut changed = false;
        if object.get("kind").and_then(serde_json::Value::as_str) == Some("Secret") {
            for member in ["data", "stringData"] {
                if let Some(serde_json::Value::Object(data)) = object.get_mut(member) {
                    for value in data.values_mut() {
                        *value = serde_json::Value::String(replacement.to_owned());
                        changed = true;
                    }
                }
            }
        }
        if let Some(serde_json::Value::Array(items)) = object.get_mut("items") {
            for item in items {
                changed |= redact(item, replacement);
            }
        }
        changed
    }
    let mut document: serde_json::Value = serde_json::from_str(text).ok()?;
    redact(&mut document, &rules.replacement)
        .then(|| serde_json::to_string(&document).ok())
        .flatten()
}

/// Redacts `text` into `out` when it is one JSON document, or, when `is_prefix` is true, the
/// start of one, and returns `true`; otherwise returns `false` and leaves `out` as it was.
///
/// No marker is appended: a caller that has cut the text says so itself.
pub(super) fn redact_json_document(
    rules: &Rules,
    text: &str,
    is_prefix: bool,
    out: &mut String,
) -> bool {
    redact_document(rules, text, is_prefix, false, out)
}

/// Redacts `text` as [`redact_json_document`] does, a raw line break or record separator
/// (0x1E) inside a string read as part of it and kept as it came: a record of JSON Lines
/// whose string holds one, as a client that does not escape them sends it.
pub(super) fn redact_json_record(
    rules: &Rules,
    text: &str,
    is_prefix: bool,
    out: &mut String,
) -> bool {
    redact_document(rules, text, is_prefix, true, out)
}

/// [`redact_json_document`], with raw breaks inside strings read as their text when
/// `raw_breaks`.
fn redact_document(
    rules: &Rules,
    text: &str,
    is_prefix: bool,
    raw_breaks: bool,
    out: &mut String,
) -> bool {
    let start = out.len();
    let mut parser = Parser::new(rules, text, is_prefix, 0, out);
    parser.read_breaks(raw_breaks);
    let whole = match parser.run() {
        Stop::Done => true,
        Stop::Eof => is_prefix,
        Stop::Invalid(_) => false,
    };
    if !whole {
        out.truncate(start);
    }
    whole
}

/// Runs the tokenizer over `text`, a document quoted `quoted` times in strings, writing what it
/// accepts to `out`; also says whether anything was redacted.
fn tokenize(
    rules: &Rules,
    text: &str,
    is_prefix: bool,
    quoted: u8,
    out: &mut String,
) -> (Stop, bool) {
    let mut parser = Parser::new(rules, text, is_prefix, quoted, out);
    let stop = parser.run();
    (stop, parser.redacted)
}

/// A JSON document read where it starts inside text; see [`read_in_text`].
#[derive(Debug)]
pub(super) struct InText {
    /// How the reading stopped.
    pub(super) read: ReadInText,
    /// Where it stopped: the end of the document when it is whole, the end of the text when
    /// it runs into it, else the end of the last token accepted before the one that is no
    /// JSON there.
    pub(super) end: usize,
    /// The document as it is stored in place of the text up to `end`, when a value in it was
    /// redacted for its name member (what the pair rules of the text around it cannot see;
    /// they read the rest in place): compactly, as every body is, and for one cut short up to
    /// the cut. One that stops being JSON is so only when a name member surely named the
    /// value, not when the value was only in doubt of its name.
    pub(super) redacted: Option<String>,
    /// The whole containers inside a document that stopped being JSON, the outermost ones
    /// only: each is a document of its own.
    pub(super) inside: Vec<(usize, usize)>,
    /// Where the last string read in a document that stopped being JSON starts, after its
    /// quote: a document may start in it, its `{"` taken for text (`{"unclosed {"name":…}`).
    pub(super) last_string: Option<usize>,
    /// Where a document that stopped being JSON did so at a raw line break or record
    /// separator (0x1E) inside a string: JSON Lines whose record a client did not escape.
    pub(super) raw_break: Option<usize>,
}

/// How reading a document inside text stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadInText {
    /// The document is whole.
    Whole,
    /// The text is cut inside the document.
    Cut,
    /// The document stops being JSON before it ends.
    NotJson,
}

/// Reads the JSON document that starts at `at` in `text` (at a `{` or `[`), quoted `quoted`
/// times in strings, to its end, the text after it left unread. When `is_prefix` the text is
/// cut at its end, and a document running into the cut is read as a cut body is.
pub(super) fn read_in_text(
    rules: &Rules,
    text: &str,
    at: usize,
    is_prefix: bool,
    quoted: u8,
) -> InText {
    read_document_in_text(rules, text, at, is_prefix, quoted, false)
}

/// Reads the JSON record that starts at `at` in `text` as [`read_in_text`] does, a raw line
/// break or record separator inside a string read as part of it (see
/// [`redact_json_record`]).
pub(super) fn read_record_in_text(rules: &Rules, text: &str, at: usize, is_prefix: bool) -> InText {
    read_document_in_text(rules, text, at, is_prefix, 0, true)
}

/// [`read_in_text`], with raw breaks inside strings read as their text when `raw_breaks`.
fn read_document_in_text(
    rules: &Rules,
    text: &str,
    at: usize,
    is_prefix: bool,
    quoted: u8,
    raw_breaks: bool,
) -> InText {
    let mut out = String::new();
    let mut parser = Parser::new(rules, &text[at..], is_prefix, quoted, &mut out);
    parser.in_text = Some(Containers::default());
    parser.read_breaks(raw_breaks);
    let stop = parser.run();
    // A string being read (its quote is where the reading stands) stopped at a raw break.
    let raw_break = match stop {
        Stop::Invalid(i)
            if parser.last_string == Some(parser.pos)
                && matches!(
                    text.as_bytes().get(at + i),
                    Some(b'\n' | b'\r' | &RECORD_SEPARATOR)
                ) =>
        {
            Some(at + i)
        }
        _ => None,
    };
    let (paired, surely_paired) = (parser.paired, parser.surely_paired);
    let secret_kind = parser.secret_kind;
    let last_string = parser.last_string.map(|quote| at + quote + 1);
    let inside = parser.in_text.take().map(|c| c.whole).unwrap_or_default();
    let (read, end) = match stop {
        Stop::Done => (ReadInText::Whole, at + parser.pos),
        Stop::Eof if is_prefix => (ReadInText::Cut, text.len()),
        Stop::Eof => (ReadInText::NotJson, text.len()),
        // The output holds the tokens before the one that is no JSON; the space before that
        // one stays with the text after it.
        Stop::Invalid(_) => {
            let accepted = text[at..at + parser.pos].trim_end_matches([' ', '\n', '\r', '\t']);
            (ReadInText::NotJson, at + accepted.len())
        }
    };
    let inside = match read {
        ReadInText::NotJson => inside
            .into_iter()
            .map(|(start, end)| (at + start, at + end))
            .collect(),
        ReadInText::Whole | ReadInText::Cut => Vec::new(),
    };
    // A whole Kubernetes `Secret` (the `last-applied-configuration` annotation kubectl writes
    // into a YAML one, a manifest in a log line): read again with its data replaced, as a
    // body is. Only when the parser read a `"kind":"Secret"`.
    let secret = (secret_kind && read == ReadInText::Whole)
        .then(|| kubernetes_secrets_redacted(rules, &text[at..end]))
        .flatten()
        .map(|secrets| {
            let mut out = String::new();
            tokenize(rules, &secrets, false, quoted, &mut out);
            out
        });
    InText {
        last_string: last_string.filter(|_| read == ReadInText::NotJson),
        raw_break,
        read,
        end,
        redacted: secret.or_else(|| {
            match read {
                ReadInText::Whole | ReadInText::Cut => paired,
                ReadInText::NotJson => surely_paired,
            }
            .then_some(out)
        }),
        inside,
    }
}

/// The containers of a document read inside text: where the open ones start, and the whole
/// ones not inside another whole one, so that a document that stops being JSON still has
/// those read.
#[derive(Debug, Default)]
struct Containers {
    open: Vec<usize>,
    whole: Vec<(usize, usize)>,
}

/// The open containers, `true` for an object: one bit each for the first 64 levels, so that a
/// body allocates nothing for them, and a vector for any deeper.
#[derive(Default)]
struct Nesting {
    bits: u64,
    depth: usize,
    deeper: Vec<bool>,
}

impl Nesting {
    fn push(&mut self, object: bool) {
        if self.depth < 64 {
            let bit = 1 << self.depth;
            if object {
                self.bits |= bit;
            } else {
                self.bits &= !bit;
            }
        } else {
            self.deeper.push(object);
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        if self.depth > 64 {
            self.deeper.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn last(&self) -> Option<bool> {
        match self.depth {
            0 => None,
            1..=64 => Some(self.bits & (1 << (self.depth - 1)) != 0),
            _ => self.deeper.last().copied(),
        }
    }

    fn len(&self) -> usize {
        self.depth
    }

    /// Whether the container that holds the innermost one is an object.
    fn parent_is_object(&self) -> bool {
        match self.depth.checked_sub(2) {
            Some(i @ 0..64) => self.bits & (1 << i) != 0,
            Some(i) => self.deeper.get(i - 64).copied().unwrap_or(false),
            None => false,
        }
    }

    fn is_empty(&self) -> bool {
        self.depth == 0
    }
}

/// How many JSON documents quoted in strings are read as JSON, each inside the one before
/// (an SNS notification's `Message` inside an SQS message's `Body` is two). Each level reads
/// its strings' bytes once more, so the bound keeps a body of quoted documents linear.
const QUOTED_DEPTH: u8 = 3;

/// Input bytes a value named by a later sibling (`{"value":…,"name":…}`) may be followed by
/// before it is decided without its name: redacted when no name has come, kept otherwise.
/// Four times as many bytes of output (replacements can be longer than what they replace)
/// settle it too, so that a late redaction is always a short move of the output.
const PENDING_TAIL: usize = 256;

/// What the member being read is to its object's name/value pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Other,
    /// `name`, `key`, `ParameterKey`…: its string value names the object's value.
    Name,
    /// `value`, `Value`, `ParameterValue`…
    Value,
    /// JSON only, never given by [`role_of`]: a JSON Patch or SCIM PATCH operation's `path`,
    /// a name by its last segment (see [`path_leaf`]).
    Path,
    /// JSON only, never given by [`role_of`]: `content`, `data`, `values`, a value of its
    /// object's sensitive name, which it waits for as [`Role::Value`] does but is kept when in
    /// doubt (most such members, a chat message's `content`, JSON:API's `data`, are named by
    /// nothing, and one followed by a long tail or a cut would go; see [`Wait::LateName`]).
    ValueAfterName,
    /// JSON only: a GraphQL request's `query`, whose arguments name its variables.
    Query,
    /// JSON only: a GraphQL request's `variables`.
    Variables,
    /// JSON only: `headers`, `rawHeaders`: an array of strings is a flat list of header names,
    /// each followed by its value (Node's `rawHeaders`).
    Headers,
    /// JSON only: `names`, `keys`, `fields`, `columns`: an array of names whose places name
    /// the items of a `values`, `rows` or `data` array after it in the object.
    Names,
    /// JSON only: `rows`, an array named by place as `values` and `data` are (see
    /// [`Role::Names`]).
    Rows,
    /// JSON only: `code`, an OAuth authorization code in an object that is an OAuth request
    /// (see [`oauth_request`]).
    Code,
    /// JSON only: a key that marks its object as an OAuth request, alone or with another (see
    /// [`oauth_mark`]).
    OAuthMark,
    /// JSON only: a JSON Web Key's private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`) or
    /// a symmetric key's `k`, a secret in an object that has a `kty` (see
    /// [`Parser::jwk_key`]).
    JwkPrivate,
    /// JSON only: `kty`, which makes its object a JSON Web Key.
    JwkType,
    /// JSON only: `kind`, whose value `Secret` makes its object a Kubernetes `Secret` (see
    /// [`kubernetes_secrets_redacted`]).
    Kind,
    /// JSON only, an array's element's while a list is read item by item (see
    /// [`Parser::lists`]): an element after the first.
    Item,
    /// JSON only, as [`Role::Item`]: an array's first element.
    FirstItem,
    /// JSON only, an array's element's, never a member's: a name that decides whether the
    /// element after it is a secret, the first of a pair in a list of pairs
    /// (`[["X-Api-Key","…"]]`) or a name of a flat header list.
    ElementName,
}

/// The role of member `key` in a YAML mapping or a printed struct; ASCII case is ignored.
/// Every key goes through it, so it looks at no more than two names of the key's length. The
/// JSON parser has its own table, [`json_role`], with these names and more.
#[inline(always)]
pub(super) fn role_of(key: &str) -> Role {
    let is = |name: &str| key.eq_ignore_ascii_case(name);
    let (name, value) = match key.len() {
        3 => (is("key"), false),
        4 => (is("name"), false),
        5 => (is("field"), is("value")),
        6 => (is("header") || is("tagkey"), false),
        8 => (is("variable"), is("tagvalue")),
        10 => (is("optionname"), false),
        11 => (false, is("optionvalue")),
        12 => (is("parameterkey"), false),
        13 => (is("parametername") || is("attributename"), false),
        14 => (false, is("parametervalue") || is("attributevalue")),
        _ => (false, false),
    };
    if name {
        Role::Name
    } else if value {
        Role::Value
    } else {
        Role::Other
    }
}

/// The role of member `key` in a JSON object: [`role_of`]'s names, and the names and values
/// only JSON APIs pair (`id`, `type` and `label` name a value as form builders
/// and SCIM write one). ASCII case is ignored. Every key of a body comes here, so a key is told
/// by its length and first letter and compared with one name at most; the
/// `json_role_agrees_with_role_of` test keeps the names [`role_of`] has in step.
#[inline(always)]
fn json_role(key: &str) -> Role {
    use Role::{Name, Path, Value, ValueAfterName};
    let first = key.as_bytes().first().map_or(0, |b| b | 0x20);
    let (name, role) = match (key.len(), first) {
        // A JSON Web Key's members, told apart as written (RFC 7517's names are case
        // sensitive).
        (1, _) if matches!(key.as_bytes()[0], b'd' | b'p' | b'q' | b'k') => {
            return Role::JwkPrivate;
        }
        (2, b'd' | b'q') if matches!(key, "dp" | "dq" | "qi") => return Role::JwkPrivate,
        (3, b'o') if key == "oth" => return Role::JwkPrivate,
        (3, b'k') if key == "kty" => return Role::JwkType,
        (4, b'k') if key == "kind" => return Role::Kind,
        (2, b'i') => ("id", Name),
        (3, b'k') => ("key", Name),
        (4, b'n') => ("name", Name),
        (4, b't') => ("type", Name),
        (4, b'p') => ("path", Path),
        (4, b'd') => ("data", ValueAfterName),
        (4, b'c') => ("code", Role::Code),
        // `state`, `client_id`, `grant_type`, `redirect_uri`, and `clientId`, `grantType`,
        // `redirectUri` (else `raw_headers`, below).
        (5, b's') | (8 | 9, b'c') | (9 | 10, b'g') | (11 | 12, b'r') if oauth_mark(key) != 0 => {
            return Role::OAuthMark;
        }
        (4, b'k') => ("keys", Role::Names),
        (4, b'r') => ("rows", Role::Rows),
        (5, b'f') => ("field", Name),
        (5, b'l') => ("label", Name),
        (5, b'v') => ("value", Value),
        (5, b'q') => ("query", Role::Query),
        (5, b'n') => ("names", Role::Names),
        (6, b'h') => ("header", Name),
        (6, b't') => ("tagkey", Name),
        (6, b'v') => ("values", ValueAfterName),
        (6, b'f') => ("fields", Role::Names),
        // `content` and `columns`, told by their third letter.
        (7, b'c') if key.as_bytes()[2] | 0x20 == b'l' => ("columns", Role::Names),
        (7, b'c') => ("content", ValueAfterName),
        (7, b'h') => ("headers", Role::Headers),
        (8, b'v') => ("variable", Name),
        (8, b't') => ("tagvalue", Value),
        (9, b'v') => ("variables", Role::Variables),
        (10, b'o') => ("optionname", Name),
        (10, b'r') => ("rawheaders", Role::Headers),
        (11, b'r') => ("raw_headers", Role::Headers),
        (11, b'o') => ("optionvalue", Value),
        (12, b'p') => ("parameterkey", Name),
        (13, b'p') => ("parametername", Name),
        (13, b'a') => ("attributename", Name),
        (14, b'p') => ("parametervalue", Value),
        (14, b'a') => ("attributevalue", Value),
        _ => return Role::Other,
    };
    if key.eq_ignore_ascii_case(name) {
        role
    } else {
        Role::Other
    }
}

/// Whether a name's value is a type that marks its object's value secret: AWS SSM's
/// `"Type":"SecureString"`, Cloudflare's `"secret_text"`, 1Password's `"CONCEALED"`, Vercel's
/// `"sensitive"` (found by a probe: the value beside it was kept).
fn names_a_secret_type(name: &str) -> bool {
    matches!(name.len(), 9..=12)
        && [
            "securestring",
            "secret_text",
            "secrettext",
            "concealed",
            "sensitive",
        ]
        .iter()
        .any(|t| name.eq_ignore_ascii_case(t))
}

/// The segment of a JSON Pointer (`/users/0/password`) or a SCIM path (`name.givenName`,
/// `urn:…:User:password`, `emails[type eq "work"].value`) that names what it points at: the
/// last, a closing filter left out.
fn path_leaf(path: &str) -> &str {
    let path = match path
        .strip_suffix(']')
        .and_then(|p| p.rfind('[').map(|at| &p[..at]))
    {
        Some(before_filter) => before_filter,
        None => path,
    };
    path.rsplit(['/', '.', ':']).next().unwrap_or(path)
}

/// How many variables a GraphQL query may pass to sensitive arguments, and how many members
/// of its `variables` read before it are kept track of: a bound on the work per member.
const GRAPHQL_VARIABLES: usize = 64;

/// A GraphQL request being read: an object with a `query` and `variables` member. The query's
/// arguments name the variables (`login(password: $p)`), so that a variable passed to a
/// sensitive argument has its value redacted, read before the query or after it.
#[derive(Debug, Default)]
struct Graphql {
    /// Depth of the request object.
    depth: usize,
    /// Once the query is read: the variables it passes to sensitive arguments.
    secret: Option<Vec<String>>,
    /// Depth inside the `variables` object while it is read.
    vars_depth: Option<usize>,
    /// The `variables` member being read before the query: its name and where it starts in
    /// the output.
    member: Option<(String, usize)>,
    /// The `variables` members read before the query: name and place in the output, from its
    /// key to its value's end.
    before: Vec<(String, usize, usize)>,
    /// The `variables` sent as a JSON string (`"variables":"{\"p\":…}"`) read before the
    /// query: its place in the output, quotes included.
    string_before: Option<(usize, usize)>,
}

/// The variables `query` passes to arguments (or input fields) named by a sensitive key:
/// each `name: $variable`, read in one pass.
pub(super) fn graphql_secret_variables(
    rules: &Rules,
    query: &str,
    keybuf: &mut String,
) -> Vec<String> {
    let bytes = query.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    // The word before a `:` that may name the variable after it.
    let mut named: Option<(usize, usize)> = None;
    let mut colon = false;
    let mut i = 0;
    while i < bytes.len() && found.len() < GRAPHQL_VARIABLES {
        let b = bytes[i];
        if is_word(b) {
            let start = i;
            while i < bytes.len() && is_word(bytes[i]) {
                i += 1;
            }
            (named, colon) = (Some((start, i)), false);
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
            b':' if named.is_some() && !colon => colon = true,
            b'$' if colon => {
                let start = i + 1;
                i = start;
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                if let Some((s, e)) = named
                    && i > start
                    && rules.keys.is_sensitive(&query[s..e], keybuf)
                {
                    found.push(query[start..i].to_owned());
                }
                (named, colon) = (None, false);
                continue;
            }
            _ => (named, colon) = (None, false),
        }
        i += 1;
    }
    found
}

/// A GraphQL request's `variables` sent as a JSON string, `document` its contents, as it is
/// to be stored: its members `secret` names replaced, compact, or all of it when it is no
/// JSON object (cut, or malformed: it cannot be told which of it the query names); `None`
/// when it holds none of them (an empty one too, `""`, `"null"`).
fn graphql_variables_string(rules: &Rules, document: &str, secret: &[String]) -> Option<String> {
    let Ok(serde_json::Value::Object(mut variables)) = serde_json::from_str(document) else {
        return (!matches!(document.trim(), "" | "null")).then(|| rules.replacement.to_string());
    };
    let mut named = false;
    for name in secret {
        if let Some(value) = variables.get_mut(name.as_str()) {
            *value = serde_json::Value::String(rules.replacement.to_string());
            named = true;
        }
    }
    named
        .then(|| serde_json::to_string(&variables).ok())
        .flatten()
}

/// Where the string whose quote is at `quote` in `src` ends (its closing quote), if it does.
fn string_end(src: &str, quote: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = quote + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Whether the [`oauth_mark`]s of a JSON object's keys make it an OAuth request, whose `code`
/// is a credential: one that marks it so alone, or a `client_id` and a `state`.
fn oauth_request(marks: u8) -> bool {
    marks & OAUTH_REQUEST != 0
        || marks & (OAUTH_CLIENT_ID | OAUTH_STATE) == OAUTH_CLIENT_ID | OAUTH_STATE
}

/// How an open object with a name or value member has been named so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Named {
    Not,
    Plainly,
    Sensitively,
}

/// An open object's name/value state; only objects with such a member, or with a key that
/// marks an OAuth request, have one.
#[derive(Debug)]
struct Pairing {
    /// Nesting depth inside the object.
    depth: usize,
    named: Named,
    /// Where in the output the value member being read starts, and what it waits for.
    reading: Option<(usize, Wait)>,
    /// The [`oauth_mark`]s of its keys so far.
    oauth: u8,
    /// Whether it is a JSON Web Key, once a member asked.
    jwk: Jwk,
}

/// What a [`Pairing`]'s object is to the JSON Web Key rule (see [`Parser::jwk_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jwk {
    /// Not asked yet.
    Unread,
    /// No `kty` among its members (read ahead from its first private member's).
    Not,
    /// A key, of type `oct` (a symmetric one, whose `k` is the secret) or another.
    Key { oct: bool },
}

/// How far past a JSON Web Key's private member its `kty` is looked for, when it comes after
/// (sorted keys write `d`, `dp`, `dq`, `e` before `kty`: 1.4 KiB for an RSA 4096 key).
const JWK_LOOKAHEAD: usize = 8 * 1024;

/// What a [`Pending`] value waits for, and its fate when it does not come in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// A `value` waits for its object's name: redacted when in doubt.
    Name,
    /// A `content`, `data` or `values` waits for its object's name: kept when in doubt, as
    /// most such members are named by nothing (a chat message's `content`).
    LateName,
    /// A `code` waits for a key that marks its object as an OAuth request: kept when in
    /// doubt, as most codes are no credential (`{"code":"US"}`).
    OAuth,
}

/// A value member read before any sensitive name of its object (or a `code` before what
/// marks its object as an OAuth request): its place in the output.
#[derive(Debug, Clone, Copy)]
struct Pending {
    depth: usize,
    start: usize,
    end: usize,
    /// Where the value ends in the input.
    src_end: usize,
    named: bool,
    wait: Wait,
}

/// The array of strings being read as a command's arguments, one word each (a container's
/// `command` and `args`, an argv logged as a list): the elements read as a command line's
/// words are (see [`super::mysql`]).
#[derive(Debug, Clone, Copy)]
struct Argv {
    /// Nesting depth inside the array.
    depth: usize,
    /// The array is an object's member, whose sibling arrays may give a client's arguments.
    in_object: bool,
    /// A MySQL client was named, in this array or in a member of its object before it.
    in_client: bool,
    /// The element before was a client's bare `-p` or a long option named by a sensitive
    /// key: this one is its value, unless it is an option.
    value_next: bool,
    /// Another command that takes a password (`curl`, `redis-cli`, …), once named, in this
    /// array or in a member of its object before it.
    command: super::commands::InCommand,
    /// Where the array's elements start in the output, once one of them may be an option and
    /// no command has been named in the array or before it: the array may be the arguments of
    /// a command its object's arrays name after it (see [`Orphan`]).
    unclaimed: Option<usize>,
}

/// An object's member array that held what may be an option before any of its object's arrays
/// named a command: its elements' place in the output. A later array of the object that names
/// a MySQL client or another command reads it again as that command's arguments (`"args":
/// ["-p","…"],"command":["mysql"]`, as JSON with sorted keys writes a container's command;
/// Docker's `Cmd` before its `Entrypoint`).
#[derive(Debug, Clone, Copy)]
struct Orphan {
    /// Nesting depth inside the object.
    object: usize,
    start: usize,
    end: usize,
}

/// The arrays of one object kept as [`Orphan`]s, the last ones.
const ORPHANS: usize = 4;

/// How far past an [`Orphan`]'s end the output may run before the command that adopts it is
/// read, so that reading it again moves a bounded run of output.
const ORPHAN_TAIL: usize = 4096;

/// A flat list of header names, each followed by its value (Node's `rawHeaders`), being read:
/// the value of a `headers` member while every name in it is a string.
#[derive(Debug, Clone, Copy)]
struct HeaderList {
    /// Nesting depth inside the array.
    depth: usize,
    /// The next element is a name.
    name_next: bool,
    /// The name before named a secret: the next element is its value.
    value_next: bool,
    /// The next element's place.
    next: u32,
    /// The places, of the first 64, of the strings that name a secret, values' places too: a
    /// table's header line (`"headers":["user","password"]`) names the places of its rows'
    /// values (see [`NamesByPlace`]).
    secret: u64,
}

/// An array whose items are named by their places: the names (`"names":["user","password"]`),
/// or the items they name (`"values":["ann","…"]`, or rows of them, `"rows":[["ann","…"]]`),
/// or one such row.
#[derive(Debug, Clone, Copy)]
struct Placed {
    /// Nesting depth inside the array.
    depth: usize,
    /// The next item's place.
    next: u32,
    /// The places of the sensitive names, of the first 64.
    secret: u64,
    kind: PlacedKind,
}

/// What a [`Placed`] array holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlacedKind {
    Names,
    /// Values, or rows of them once the first item is a row; not yet known before it.
    Values {
        rows: Option<bool>,
    },
    /// A row of the values array, itself at the place `of` in it.
    Row {
        of: u32,
    },
}

/// The sensitive names' places of an object's names array (see [`Placed`]), for its values
/// arrays after it.
#[derive(Debug, Clone, Copy)]
struct NamesByPlace {
    /// Nesting depth inside the object.
    object: usize,
    secret: u64,
}

/// Whether a string, as written, may be a word [`Parser::argv_word`] reads: an option (a dash,
/// plain, Unicode's or escaped, or any escape), or a MySQL client's or another command's name,
/// perhaps by its path (see [`super::commands::may_end_in_name`]: told by its last letters, so
/// that a path written with escapes, `"/usr/bin\u002fmysql"`, needs no decoding to be told).
#[inline]
fn may_be_argv_word(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    matches!(
        bytes.first(),
        Some(b'-' | b'\\') | Some(&super::text::UNICODE_DASH_LEAD)
    ) || super::commands::may_end_in_name(bytes)
}

/// Tokenizer state; see [`redact_json`].
struct Parser<'a, 'r> {
    src: &'a str,
    pos: usize,
    /// The input is a prefix of the document: a token running into the end may be cut.
    is_prefix: bool,
    rules: &'r Rules,
    out: &'r mut String,
    /// The input before this offset is in `out` (or was left out); the accepted input from here
    /// to `pos` is still to be copied.
    copied: usize,
    /// Decoded string contents, reused across strings.
    scratch: String,
    /// Normalized key, reused across keys.
    keybuf: String,
    /// Open containers, `true` for objects.
    stack: Nesting,
    /// While `Some(depth)`, a redacted value that started at `depth` is being skipped and
    /// nothing is emitted.
    suppress: Option<usize>,
    /// The key just read is sensitive.
    sensitive_next: bool,
    /// The key just read names the object's value or is its value.
    role: Role,
    /// Open objects that have a name or value member, innermost last.
    named: Vec<Pairing>,
    /// At most one value waiting for its object's name, so that redacting it late moves at
    /// most [`PENDING_TAIL`] bytes of output.
    pending: Option<Pending>,
    /// How many strings the document is quoted in.
    quoted: u8,
    /// Something was redacted.
    redacted: bool,
    /// A value was redacted for its name member (or in doubt of it, see [`Pending`]), here or
    /// in a document quoted in a string: what the pair rules of free text cannot see.
    paired: bool,
    /// A value was redacted for its name member, not only in doubt of it, or something in a
    /// document quoted in a string was.
    surely_paired: bool,
    /// The document is read inside text: it ends with its last container, and its containers
    /// are noted.
    in_text: Option<Containers>,
    /// The innermost array being read as a command's arguments, once it holds a string.
    argv: Option<Argv>,
    /// The depth of the innermost object one of whose member arrays named a MySQL client: the
    /// arrays after it in the object are the client's arguments (`"command":["mysql"],
    /// "args":["-phunter2"]`).
    client_in: Option<usize>,
    /// The depth of the innermost object one of whose member arrays named another command
    /// that takes a password, and where its reading stood at that array's end: the arrays
    /// after it in the object go on with its words (`"command":["redis-cli"],"args":["-a",
    /// "hunter2"]`).
    command_in: Option<(usize, super::commands::InCommand)>,
    /// The innermost array opened: its depth, and where its elements start in the output.
    array_out: (usize, usize),
    /// The arrays of open objects that may be arguments of a command named after them, in
    /// the output's order (see [`Orphan`]).
    orphans: Vec<Orphan>,
    /// Where the last string (key or value) read starts.
    last_string: Option<usize>,
    /// The bytes that end the fast scan inside a string: [`STRING_SPECIAL`], or
    /// [`STRING_SPECIAL_BUT_BREAKS`] when a raw line break or record separator inside a string
    /// is part of it (see [`redact_json_record`]).
    string_special: &'static [bool; 256],
    /// The innermost GraphQL request being read.
    graphql: Option<Box<Graphql>>,
    /// The depth of an array inside an array whose first element names a secret: its second
    /// is the secret, when it is its last (`[["X-Api-Key","…"]]`, a list of pairs).
    pair: Option<usize>,
    /// The innermost flat list of header names and values being read.
    header_list: Option<HeaderList>,
    /// The innermost array of names or of values named by place being read.
    placed: Option<Placed>,
    /// The sensitive places of the innermost object's names array, once read.
    names_by_place: Option<NamesByPlace>,
    /// One of `pair`, `header_list`, `placed` and `names_by_place` may be set: arrays'
    /// elements and closers are looked at for them (most bodies have none, and pay one test
    /// an element).
    lists: bool,
    /// How many more bytes [`kty_ahead`](Self::kty_ahead) may read ahead, over the document:
    /// objects nested in each other's private members would read the same bytes again.
    jwk_budget: usize,
    /// Whether a `"kind":"Secret"` member was read (see [`kind_key`](Self::kind_key)).
    secret_kind: bool,
}

impl<'a, 'r> Parser<'a, 'r> {
    fn new(
        rules: &'r Rules,
        src: &'a str,
        is_prefix: bool,
        quoted: u8,
        out: &'r mut String,
    ) -> Self {
        Parser {
            src,
            pos: 0,
            is_prefix,
            rules,
            out,
            copied: 0,
            scratch: String::new(),
            keybuf: String::new(),
            stack: Nesting::default(),
            suppress: None,
            sensitive_next: false,
            role: Role::Other,
            named: Vec::new(),
            pending: None,
            quoted,
            redacted: false,
            paired: false,
            surely_paired: false,
            in_text: None,
            argv: None,
            client_in: None,
            command_in: None,
            array_out: (0, 0),
            orphans: Vec::new(),
            last_string: None,
            string_special: &STRING_SPECIAL,
            graphql: None,
            pair: None,
            header_list: None,
            placed: None,
            names_by_place: None,
            lists: false,
            jwk_budget: 2 * src.len() + JWK_LOOKAHEAD,
            secret_kind: false,
        }
    }

    /// Reads a raw line break or record separator inside a string as part of it when
    /// `raw_breaks` (see [`redact_json_record`]).
    fn read_breaks(&mut self, raw_breaks: bool) {
        if raw_breaks {
            self.string_special = &STRING_SPECIAL_BUT_BREAKS;
        }
    }

    fn run(&mut self) -> Stop {
        let stop = self.tokens();
        // Everything accepted, up to the token the tokenizer stopped at.
        self.copy_to(self.pos);
        // The name may have been past the stop.
        self.settle_pending();
        // So may the name of a value cut short: all of it that was read goes. Every value
        // still being read started before the waiting one, which did not move them.
        let unnamed = self.named.iter().find(|p| {
            p.named != Named::Plainly && p.reading.is_some_and(|(_, wait)| wait == Wait::Name)
        });
        if let Some((start, _)) = unnamed.and_then(|p| p.reading) {
            self.out.truncate(start);
            self.out.push_str(&self.rules.replacement_json);
            self.redacted = true;
            self.paired = true;
        }
        stop
    }

    /// Decides the waiting value without its name: a `value` is redacted unless its object
    /// was named, plainly; any other is kept (see [`Wait`]).
    fn settle_pending(&mut self) {
        if let Some(p) = self
            .pending
            .take()
            .filter(|p| !p.named && p.wait == Wait::Name)
        {
            self.redact_pending(p);
        }
    }

    /// Writes the replacement in place of the waiting value `p`, the output after it moving.
    fn redact_pending(&mut self, p: Pending) {
        let replacement = &self.rules.replacement_json;
        let delta = replacement.len() as isize - (p.end - p.start) as isize;
        self.out.replace_range(p.start..p.end, replacement);
        self.shift_output(p.end, delta);
        self.redacted = true;
        self.paired = true;
    }

    /// Settles the waiting value before `more` bytes of output would put it more than four
    /// [`PENDING_TAIL`]s back.
    fn bound_pending(&mut self, more: usize) {
        if self
            .pending
            .is_some_and(|p| self.out.len() + more - p.end > 4 * PENDING_TAIL)
        {
            self.settle_pending();
        }
    }

    /// The pairing state of the innermost object, if it has one.
    fn pairing(&mut self) -> Option<&mut Pairing> {
        let depth = self.stack.len();
        self.named.last_mut().filter(|p| p.depth == depth)
    }

    /// Notes a name or value member of the innermost object.
    fn enter_pairing(&mut self) -> &mut Pairing {
        let depth = self.stack.len();
        if self.named.last().is_none_or(|p| p.depth != depth) {
            self.named.push(Pairing {
                depth,
                named: Named::Not,
                reading: None,
                oauth: 0,
                jwk: Jwk::Unread,
            });
        }
        let last = self.named.len() - 1;
        &mut self.named[last]
    }

    /// The innermost object's name member was read: a sensitive name, or not (or not a
    /// string).
    fn note_name(&mut self, sensitive: bool) {
        let depth = self.stack.len();
        let pairing = self.enter_pairing();
        if sensitive {
            pairing.named = Named::Sensitively;
        } else if pairing.named == Named::Not {
            pairing.named = Named::Plainly;
        }
        match self.pending {
            // A `value` goes however late its name comes, as it would in doubt; a member kept
            // in doubt only within [`PENDING_TAIL`].
            Some(p)
                if p.depth == depth
                    && sensitive
                    && (p.wait == Wait::Name
                        || p.wait == Wait::LateName && self.pos - p.src_end <= PENDING_TAIL) =>
            {
                self.pending = None;
                self.redact_pending(p);
                self.surely_paired = true;
            }
            Some(p) if p.depth == depth && self.pos - p.src_end > PENDING_TAIL => {
                self.settle_pending();
            }
            Some(ref mut p) if p.depth == depth => p.named = true,
            _ => {}
        }
    }

    /// A key read inside a GraphQL request, or of a GraphQL request's or an OAuth request's
    /// (see [`graphql_key`](Self::graphql_key), [`note_oauth_mark`](Self::note_oauth_mark)).
    #[cold]
    fn rare_key(&mut self, key: &str, quote: usize) {
        if self.role == Role::OAuthMark {
            self.note_oauth_mark(oauth_mark(key));
        }
        if matches!(self.role, Role::JwkPrivate | Role::JwkType) {
            self.jwk_key(key);
        }
        if self.role == Role::Kind {
            self.kind_key();
        }
        if self.graphql.is_some() || matches!(self.role, Role::Query | Role::Variables) {
            self.graphql_key(key, quote);
        }
    }

    /// A `kind` key was read: a `Secret` value makes the document one to read again (see
    /// [`kubernetes_secrets_redacted`]).
    #[cold]
    fn kind_key(&mut self) {
        self.role = Role::Other;
        if let Some(at) = self.value_after_key() {
            self.secret_kind |= self.src.as_bytes()[at..].starts_with(b"\"Secret\"");
        }
    }

    /// A key of the innermost object gave it an [`oauth_mark`]: a `code` waiting in it goes
    /// once its marks make it an OAuth request.
    #[cold]
    fn note_oauth_mark(&mut self, mark: u8) {
        let depth = self.stack.len();
        let pairing = self.enter_pairing();
        pairing.oauth |= mark;
        if !oauth_request(pairing.oauth) {
            return;
        }
        if let Some(p) = self
            .pending
            .filter(|p| p.depth == depth && p.wait == Wait::OAuth)
        {
            self.pending = None;
            if self.pos - p.src_end <= PENDING_TAIL {
                self.redact_pending(p);
                self.surely_paired = true;
            }
        }
    }

    /// A JSON Web Key's member was read (RFC 7517/7518): `kty` makes its object a key, whose
    /// private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`) and, for `"kty":"oct"`, `k`
    /// are secrets. A private member before the `kty` (sorted keys put `d` first) has the
    /// `kty` read ahead ([`kty_ahead`](Self::kty_ahead)). Single letters elsewhere
    /// (`{"d":"2024-01-01","p":3}`) and a key's public members (`n`, `e`, `x`, `y`) stay.
    #[cold]
    fn jwk_key(&mut self, key: &str) {
        let role = std::mem::replace(&mut self.role, Role::Other);
        if role == Role::JwkType {
            let bytes = self.src.as_bytes();
            let oct = self
                .value_after_key()
                .is_some_and(|at| bytes[at..].starts_with(b"\"oct\""));
            self.enter_pairing().jwk = Jwk::Key { oct };
            return;
        }
        let jwk = match self.pairing().map(|p| p.jwk) {
            Some(Jwk::Unread) | None => {
                let ahead = self.kty_ahead();
                self.enter_pairing().jwk = ahead;
                ahead
            }
            Some(jwk) => jwk,
        };
        if let Jwk::Key { oct } = jwk
            && (key != "k" || oct)
        {
            self.sensitive_next = true;
            // What the pair rules cannot see in a document inside text: a `d` is no key of
            // theirs.
            self.paired = true;
            self.surely_paired = true;
        }
    }

    /// Whether the innermost object has a `kty` member after the key just read, and its type:
    /// read ahead over the rest of the object, up to [`JWK_LOOKAHEAD`] bytes (and the parser's
    /// [`jwk_budget`](Self::jwk_budget)); an object running past that is none. One the input
    /// ends in (a body cut by the cap) may be a key: it is taken for one, of any type, so that
    /// its private members go.
    fn kty_ahead(&mut self) -> Jwk {
        let bytes = self.src.as_bytes();
        let look = JWK_LOOKAHEAD.min(self.jwk_budget);
        let end = bytes.len().min(self.pos + look);
        let skip_ws = |mut i: usize| {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(i) {
                i += 1;
            }
            i
        };
        let (mut i, mut depth) = (self.pos, 0_usize);
        let found = loop {
            let Some(&b) = bytes.get(i).filter(|_| i < end) else {
                // The input ended inside the object: in doubt, a key.
                break if end == bytes.len() && self.is_prefix {
                    Jwk::Key { oct: true }
                } else {
                    Jwk::Not
                };
            };
            match b {
                b'"' => {
                    let Some(close) = string_end(self.src, i).filter(|&c| c < end) else {
                        i = end;
                        continue;
                    };
                    let after = skip_ws(close + 1);
                    if depth == 0
                        && &bytes[i + 1..close] == b"kty"
                        && bytes.get(after) == Some(&b':')
                    {
                        let value = skip_ws(after + 1);
                        break Jwk::Key {
                            oct: bytes[value..].starts_with(b"\"oct\""),
                        };
                    }
                    i = close + 1;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => break Jwk::Not,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
            i += 1;
        };
        self.jwk_budget = self.jwk_budget.saturating_sub(i - self.pos);
        found
    }

    /// The value that starts at `pos` waits for what may decide it (see [`Wait`]): its place
    /// in the output is noted. Only one value waits at a time, a `value` first: another
    /// settles the one waiting, unless that is a `value` and it is not.
    fn wait(&mut self, wait: Wait) {
        if wait != Wait::Name && self.pending.is_some_and(|p| p.wait == Wait::Name) {
            return;
        }
        self.settle_pending();
        self.copy_to(self.pos);
        let start = self.out.len();
        self.enter_pairing().reading = Some((start, wait));
    }

    fn tokens(&mut self) -> Stop {
        let mut expect = Expect::Value;
        loop {
            if matches!(expect, Expect::End) && self.in_text.is_some() {
                return Stop::Done;
            }
            self.skip_ws();
            let Some(&c) = self.src.as_bytes().get(self.pos) else {
                return if matches!(expect, Expect::End) {
                    Stop::Done
                } else {
                    Stop::Eof
                };
            };
            let step = match expect {
                Expect::End => Err(Stop::Invalid(self.pos)),
                Expect::KeyOrClose if c == b'}' => Ok(self.close()),
                Expect::ValueOrClose if c == b']' => Ok(self.close()),
                Expect::KeyOrClose | Expect::Key if c == b'"' => self.key().map(|()| Expect::Colon),
                Expect::KeyOrClose | Expect::Key => Err(Stop::Invalid(self.pos)),
                Expect::Colon if c == b':' => {
                    self.pos += 1;
                    Ok(Expect::Value)
                }
                Expect::Colon => Err(Stop::Invalid(self.pos)),
                Expect::Value | Expect::ValueOrClose => {
                    if matches!(expect, Expect::ValueOrClose) {
                        self.first_item(c);
                    }
                    self.value(c)
                }
                Expect::CommaOrClose => match (c, self.stack.last()) {
                    (b',', Some(in_object)) => {
                        self.pos += 1;
                        Ok(if in_object {
                            Expect::Key
                        } else {
                            if self.lists {
                                self.role = Role::Item;
                            }
                            Expect::Value
                        })
                    }
                    (b'}', Some(true)) | (b']', Some(false)) => Ok(self.close()),
                    _ => Err(Stop::Invalid(self.pos)),
                },
            };
            match step {
                Ok(next) => expect = next,
                Err(stop) => return stop,
            }
        }
    }

    fn skip_ws(&mut self) {
        let bytes = self.src.as_bytes();
        let start = self.pos;
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(self.pos) {
            self.pos += 1;
        }
        if self.pos != start {
            self.copy_to(start);
            self.copied = self.pos;
        }
    }

    /// Copies the accepted input up to `end` to the output, unless a redacted value is being
    /// skipped.
    fn copy_to(&mut self, end: usize) {
        if self.suppress.is_none() {
            self.bound_pending(end - self.copied);
            self.out.push_str(&self.src[self.copied..end]);
        }
        self.copied = end;
    }

    /// Writes `text` in place of the input from the current copy position to `end`.
    fn replace_to(&mut self, start: usize, end: usize, text: &str) {
        self.redacted = true;
        self.copy_to(start);
        self.bound_pending(text.len());
        self.out.push_str(text);
        self.copied = end;
    }

    /// Writes `text`, quoted, in place of the string that starts at `quote` and ends at `pos`.
    fn replace_string(&mut self, quote: usize, text: &str) {
        self.redacted = true;
        self.copy_to(quote);
        self.bound_pending(text.len() + 2);
        push_json_string(self.out, text);
        self.copied = self.pos;
    }

    /// A key read inside a GraphQL request, its quote at `quote`: a member of its `variables`
    /// is redacted when the query passed it to a sensitive argument, or kept track of before
    /// the query, the member before it ending at the `,` before it.
    #[cold]
    fn graphql_key(&mut self, key: &str, quote: usize) {
        let depth = self.stack.len();
        if self
            .graphql
            .as_deref()
            .is_none_or(|g| g.vars_depth != Some(depth))
        {
            // A request's own member: its query is read ahead, once more, so that the
            // variables read before it are redacted before the parser moves on.
            let value = self.value_after_key();
            match (self.role, value.map(|at| self.src.as_bytes()[at])) {
                (Role::Query, Some(b'"')) => {
                    if let Some(end) = value.and_then(|at| string_end(self.src, at)) {
                        self.graphql_query(quote, value.unwrap_or_default() + 1, end);
                    }
                }
                (Role::Variables, Some(b'{')) => {
                    if let Some(g) = self.graphql_at(depth) {
                        g.vars_depth = Some(depth + 1);
                    }
                }
                _ => {}
            }
            return;
        }
        self.copy_to(quote);
        let at = self.out.len();
        let comma = self.out.ends_with(',');
        let Some(g) = self.graphql.as_deref_mut() else {
            return;
        };
        if let Some(secret) = &g.secret {
            self.sensitive_next |= secret.iter().any(|v| v == key);
            return;
        }
        if let Some((name, start)) = g.member.take().filter(|_| comma) {
            g.before.push((name, start, at - 1));
        }
        if g.before.len() < GRAPHQL_VARIABLES {
            g.member = Some((key.to_owned(), at));
        }
    }

    /// A GraphQL request's `variables` sent as a JSON string (`"variables":"{\"p\":…}"`, as
    /// some clients send it), from its quote at `quote` to its closing one at `end`, its
    /// contents `redacted` as any string's are: the members its query passes to sensitive
    /// arguments go, now when the query was read before it, else once the query is read (see
    /// [`graphql_query`](Self::graphql_query)), its place in the output kept till then.
    #[cold]
    fn graphql_variables_string(&mut self, quote: usize, end: usize, redacted: Option<String>) {
        let depth = self.stack.len();
        let rules = self.rules;
        let src = self.src;
        let by_query = match self.graphql_at(depth).map(|g| g.secret.as_deref()) {
            Some(Some(secret)) if !secret.is_empty() => {
                let mut decoded = String::new();
                let document = match &redacted {
                    Some(redacted) => redacted,
                    None => {
                        decode_escapes(&src[quote + 1..end], &mut decoded);
                        &decoded
                    }
                };
                graphql_variables_string(rules, document, secret)
            }
            _ => None,
        };
        let named = by_query.is_some();
        let stored = by_query.or(redacted);
        self.copy_to(quote);
        let start = self.out.len();
        match stored {
            Some(stored) => {
                self.replace_string(quote, &stored);
                // Named by the query, which the pair rules of text around it cannot see.
                self.paired |= named;
                self.surely_paired |= named;
            }
            None => self.copy_to(self.pos),
        }
        let stored_end = self.out.len();
        if let Some(g) = self.graphql.as_deref_mut().filter(|g| g.depth == depth)
            && g.secret.is_none()
        {
            g.string_before = Some((start, stored_end));
        }
    }

    /// A container closed inside a GraphQL request: its object, or its `variables`, whose
    /// last member read before the query ends here.
    #[cold]
    fn graphql_close(&mut self, depth: usize) {
        let Some(g) = self.graphql.as_deref() else {
            return;
        };
        if g.depth == depth {
            self.graphql = None;
        } else if g.vars_depth == Some(depth) {
            if self.suppress.is_none() {
                self.copy_to(self.pos);
            }
            let end = self.out.len();
            if let Some(g) = self.graphql.as_deref_mut() {
                g.vars_depth = None;
                if let Some((name, start)) = g.member.take() {
                    g.before.push((name, start, end));
                }
            }
        }
    }

    /// The GraphQL request of the object at `depth`, started when it has none; `None` inside
    /// another's object (a variable's own `query` member), whose request stays the one read.
    fn graphql_at(&mut self, depth: usize) -> Option<&mut Graphql> {
        match &self.graphql {
            Some(g) if g.depth < depth => return None,
            Some(g) if g.depth == depth => {}
            _ => {
                self.graphql = Some(Box::new(Graphql {
                    depth,
                    ..Graphql::default()
                }));
            }
        }
        self.graphql.as_deref_mut()
    }

    /// Where the value after the key just read starts, past its `:`.
    fn value_after_key(&self) -> Option<usize> {
        let bytes = self.src.as_bytes();
        let skip = |mut i: usize| {
            while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(i) {
                i += 1;
            }
            i
        };
        let colon = skip(self.pos);
        let at = skip(colon + 1);
        (bytes.get(colon) == Some(&b':') && at < bytes.len()).then_some(at)
    }

    /// A GraphQL request's query, the string `src[start..end]`, is the value of the key whose
    /// quote is at `key`: the variables it passes to sensitive arguments are redacted after
    /// it, and those read before it are replaced in the output, in one pass over the output
    /// since the first of them.
    #[cold]
    fn graphql_query(&mut self, key: usize, start: usize, end: usize) {
        let raw = &self.src[start..end];
        let mut decoded = String::new();
        decode_escapes(raw, &mut decoded);
        let secret = graphql_secret_variables(self.rules, &decoded, &mut self.keybuf);
        let depth = self.stack.len();
        let rules = self.rules;
        let Some(g) = self.graphql_at(depth) else {
            return;
        };
        let before = std::mem::take(&mut g.before);
        let string_before = g.string_before.take();
        g.member = None;
        let mut ranges: Vec<(usize, usize, String)> = before
            .iter()
            .filter(|(name, _, _)| secret.contains(name))
            .map(|(name, start, end)| {
                // The key as it was stored: through the value patterns.
                let mut member = String::new();
                push_json_string(&mut member, &rules.values.redact(name));
                member.push(':');
                member.push_str(&rules.replacement_json);
                (*start, *end, member)
            })
            .collect();
        // The variables sent as a string: read again from the output, as they were stored.
        if let Some((start, end)) = string_before.filter(|_| !secret.is_empty())
            && let Ok(document) = serde_json::from_str::<String>(&self.out[start..end])
            && let Some(variables) = graphql_variables_string(rules, &document, &secret)
        {
            let mut stored = String::new();
            push_json_string(&mut stored, &variables);
            ranges.push((start, end, stored));
            ranges.sort_unstable_by_key(|&(start, _, _)| start);
        }
        let Some(g) = self.graphql_at(depth) else {
            return;
        };
        g.secret = Some(secret);
        let Some(&(first, _, _)) = ranges.first() else {
            return;
        };
        self.copy_to(key);
        let tail = self.out.split_off(first);
        let mut at = first;
        for (start, end, member) in &ranges {
            self.out.push_str(&tail[at - first..start - first]);
            self.out.push_str(member);
            at = *end;
        }
        self.out.push_str(&tail[at - first..]);
        // The arrays read since the first variable are no command's arguments: they moved.
        self.orphans.retain(|o| o.end < first);
        // A value waiting for its name went with a variable, or moved with the output after
        // the variables.
        if let Some(p) = self.pending.as_mut() {
            if ranges
                .iter()
                .any(|(start, end, _)| (*start..*end).contains(&p.start))
            {
                self.pending = None;
            } else {
                let at = p.start;
                for (start, end, member) in ranges.iter().filter(|(_, end, _)| *end <= at) {
                    p.start = p.start - (end - start) + member.len();
                    p.end = p.end - (end - start) + member.len();
                }
            }
        }
        self.redacted = true;
        self.paired = true;
        self.surely_paired = true;
    }

    /// What follows a complete value; also ends a redacted scalar.
    fn after_value(&mut self) -> Expect {
        if self.suppress == Some(self.stack.len()) {
            // The skipped value is left out of the output.
            self.suppress = None;
            self.copied = self.pos;
        }
        if self.suppress.is_none() {
            let read = self
                .pairing()
                .and_then(|p| Some((p.reading.take()?, p.named == Named::Plainly)));
            if let Some(((start, wait), named)) = read {
                self.copy_to(self.pos);
                self.pending = Some(Pending {
                    depth: self.stack.len(),
                    start,
                    end: self.out.len(),
                    src_end: self.pos,
                    named,
                    wait,
                });
            }
        }
        if self.stack.is_empty() {
            Expect::End
        } else {
            Expect::CommaOrClose
        }
    }

    /// Consumes `}` or `]` (already checked to match the open container).
    fn close(&mut self) -> Expect {
        if self.pairing().is_some() {
            self.named.pop();
        }
        let depth = self.stack.len();
        if self.argv.is_some() || self.command_in.is_some() || !self.orphans.is_empty() {
            self.argv_close(depth);
        }
        if self.client_in == Some(depth) {
            self.client_in = None;
        }
        if self.lists {
            self.list_closes(depth);
        }
        if let Some(p) = self.pending.filter(|p| p.depth == self.stack.len()) {
            if self.pos - p.src_end > PENDING_TAIL {
                self.settle_pending();
            } else {
                // The object ended without a sensitive name.
                self.pending = None;
            }
        }
        if let Some(containers) = &mut self.in_text
            && let Some(start) = containers.open.pop()
        {
            while containers
                .whole
                .last()
                .is_some_and(|&(inner, _)| inner > start)
            {
                containers.whole.pop();
            }
            containers.whole.push((start, self.pos + 1));
        }
        if self.graphql.is_some() {
            self.graphql_close(depth);
        }
        self.stack.pop();
        self.pos += 1;
        self.after_value()
    }

    /// Reads one value starting with byte `c`.
    fn value(&mut self, c: u8) -> Result<Expect, Stop> {
        let mut role = std::mem::replace(&mut self.role, Role::Other);
        if !matches!(role, Role::Other) && self.suppress.is_none() {
            role = self.member_value(role, c);
        }
        // A number given as a client's password, or a long option's value, in an argv; or
        // as another command's password, perhaps first in an array after the command's.
        if c != b'"' && (self.argv.is_some() || self.command_in.is_some()) {
            self.argv_other(c);
        }
        // `true`, `false` and `null` hold no secret: a flag under a sensitive key
        // (`"isSecret":true`, `"password_set":false`) is kept as it is (found by a probe: the
        // flag was redacted, a boolean turned into a string).
        let sensitive = std::mem::take(&mut self.sensitive_next);
        if sensitive && c == b't' && self.suppress.is_none() && self.at_literal(c) {
            // A flag that marks its object's value secret (Azure DevOps' `"isSecret":true`,
            // `"secret":true`): the object's `value` is redacted, as `"name":"DB_PASSWORD"`
            // names it (found by a probe: the value beside the flag was kept).
            self.note_name(true);
        }
        if sensitive && !self.at_literal(c) {
            // Emit the replacement now and skip the value: even a cut value then leaves only
            // the replacement behind.
            self.copy_to(self.pos);
            self.out.push_str(&self.rules.replacement_json);
            self.suppress = Some(self.stack.len());
            self.redacted = true;
        }
        if let Some(containers) = &mut self.in_text
            && matches!(c, b'{' | b'[')
        {
            containers.open.push(self.pos);
        }
        match c {
            b'{' => {
                self.pos += 1;
                self.stack.push(true);
                Ok(Expect::KeyOrClose)
            }
            b'[' => {
                self.pos += 1;
                self.stack.push(false);
                // Where its elements start in the output, should they be a command's
                // arguments named after them (see [`Orphan`]).
                self.array_out = (self.stack.len(), self.out.len() + (self.pos - self.copied));
                Ok(Expect::ValueOrClose)
            }
            b'"' => {
                self.string_value(role)?;
                Ok(self.after_value())
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Ok(self.after_value())
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => Err(Stop::Invalid(self.pos)),
        }
    }

    /// An array's first element starts with byte `c`: its role, when it has one.
    fn first_item(&mut self, c: u8) {
        if self.lists {
            self.role = Role::FirstItem;
        } else if c == b'"' && self.stack.len() >= 2 && !self.stack.parent_is_object() {
            // The first string of an array inside an array: a pair's first?
            self.role = Role::ElementName;
        }
    }

    /// A value whose member or place gives it a `role` (not [`Role::Other`]) starts with byte
    /// `c`: its role from here on.
    #[inline(never)]
    fn member_value(&mut self, role: Role, c: u8) -> Role {
        match role {
            Role::Item => return self.element(c, false),
            Role::FirstItem => return self.element(c, true),
            Role::Value | Role::ValueAfterName | Role::Code if !self.sensitive_next => {
                let pairing = self.pairing().map(|p| (p.named, p.oauth));
                if role == Role::Code {
                    if c != b'"' {
                        // A number or another value is no OAuth code (`"code":404`).
                    } else if pairing.is_some_and(|(_, marks)| oauth_request(marks)) {
                        self.sensitive_next = true;
                        self.paired = true;
                        self.surely_paired = true;
                    } else {
                        self.wait(Wait::OAuth);
                    }
                } else if pairing.is_some_and(|(named, _)| named == Named::Sensitively) {
                    self.sensitive_next = true;
                    self.paired = true;
                    self.surely_paired = true;
                } else if role == Role::Value {
                    self.wait(Wait::Name);
                } else if role == Role::ValueAfterName
                    && pairing.is_none_or(|(named, _)| named == Named::Not)
                {
                    self.wait(Wait::LateName);
                }
            }
            Role::Name | Role::Path if c != b'"' => self.note_name(false),
            _ => {}
        }
        if c == b'['
            && matches!(
                role,
                Role::Headers | Role::Names | Role::Rows | Role::ValueAfterName
            )
        {
            self.list_starts(role);
        }
        role
    }

    /// An array's element starting with byte `c`, the `first` of it, while a list is read item
    /// by item (see [`lists`](Self::lists)): its role, a name of a pair or of a flat header
    /// list, or its fate as the value such a name named a secret, redacted (a pair's second
    /// only when it is the last, `["password","reset","flow"]` being no pair), or as a value
    /// named by place.
    fn element(&mut self, c: u8, first: bool) -> Role {
        let role = if first && c == b'"' && self.stack.len() >= 2 && !self.stack.parent_is_object()
        {
            Role::ElementName
        } else {
            Role::Other
        };
        let depth = self.stack.len();
        if let Some(list) = self.placed.as_mut().filter(|l| l.depth == depth) {
            let at = list.next;
            list.next = at.saturating_add(1);
            let named_secret = at < 64 && list.secret & (1 << at) != 0;
            match list.kind {
                PlacedKind::Names if c == b'"' && at < 64 => return Role::ElementName,
                PlacedKind::Names => {}
                PlacedKind::Values { rows } => match rows.unwrap_or(c == b'[') {
                    // Records are no values in place (`{"fields":[…],"data":[{…},{…}]}`).
                    _ if rows.is_none() && c == b'{' => self.placed = None,
                    true if c == b'[' => {
                        list.kind = PlacedKind::Values { rows: Some(true) };
                        self.placed = Some(Placed {
                            depth: depth + 1,
                            next: 0,
                            secret: list.secret,
                            kind: PlacedKind::Row { of: at },
                        });
                    }
                    true => {}
                    false => {
                        list.kind = PlacedKind::Values { rows: Some(false) };
                        self.sensitive_next |= named_secret;
                    }
                },
                PlacedKind::Row { .. } => self.sensitive_next |= named_secret,
            }
            if self.sensitive_next {
                return role;
            }
        }
        if self.pair == Some(depth) {
            self.pair = None;
            self.sensitive_next |= self.ends_its_array(c);
            return role;
        }
        if let Some(list) = self.header_list.as_mut().filter(|l| l.depth == depth) {
            list.next = list.next.saturating_add(1);
            if !list.name_next {
                list.name_next = true;
                self.sensitive_next |= std::mem::take(&mut list.value_next);
                // A value's place is read as a name too, as a table's header line.
                return if c == b'"' && !self.sensitive_next {
                    Role::ElementName
                } else {
                    role
                };
            }
            if c != b'"' {
                // A list of other things: HAR's objects, pairs.
                self.header_list = None;
                return role;
            }
            list.name_next = false;
            return Role::ElementName;
        }
        role
    }

    /// An array starts as the value of a member of `role`: one read item by item.
    #[cold]
    fn list_starts(&mut self, role: Role) {
        self.lists = true;
        let depth = self.stack.len();
        let placed = |secret, kind| Placed {
            depth: depth + 1,
            next: 0,
            secret,
            kind,
        };
        match role {
            Role::Headers => {
                self.header_list = Some(HeaderList {
                    depth: depth + 1,
                    name_next: true,
                    value_next: false,
                    next: 0,
                    secret: 0,
                });
            }
            Role::Names => self.placed = Some(placed(0, PlacedKind::Names)),
            _ => {
                if let Some(names) = self.names_by_place.filter(|n| n.object == depth) {
                    self.placed = Some(placed(names.secret, PlacedKind::Values { rows: None }));
                }
            }
        }
    }

    /// A container closes at `depth` while a list is read item by item (see
    /// [`lists`](Self::lists)).
    #[cold]
    fn list_closes(&mut self, depth: usize) {
        if self.names_by_place.is_some_and(|n| n.object == depth) {
            self.names_by_place = None;
        }
        if self.pair == Some(depth) {
            self.pair = None;
        }
        if let Some(list) = self.header_list.take_if(|l| l.depth == depth)
            && list.secret != 0
        {
            // A table's header line: its rows, or values, after it are named by place.
            self.names_by_place = Some(NamesByPlace {
                object: depth - 1,
                secret: list.secret,
            });
            self.name_waiting_values(depth - 1, list.secret);
        }
        if let Some(list) = self.placed.filter(|l| l.depth == depth) {
            self.placed = None;
            match list.kind {
                PlacedKind::Names if list.secret != 0 => {
                    self.names_by_place = Some(NamesByPlace {
                        object: depth - 1,
                        secret: list.secret,
                    });
                    self.name_waiting_values(depth - 1, list.secret);
                }
                PlacedKind::Row { of } => {
                    self.placed = Some(Placed {
                        depth: depth - 1,
                        next: of.saturating_add(1),
                        secret: list.secret,
                        kind: PlacedKind::Values { rows: Some(true) },
                    });
                }
                _ => {}
            }
        }
        self.lists = self.pair.is_some()
            || self.header_list.is_some()
            || self.placed.is_some()
            || self.names_by_place.is_some();
    }

    /// The names array of the object at depth `object` named secrets by place (`secret`)
    /// after the object's `data`, `values` or `content` array was read, which still waits for
    /// the object's name (see [`Wait::LateName`]): that array is read again as the values the
    /// names name, by a parser of its own, and its output replaced (`{"data":["ann","…"],
    /// "fields":["user","password"]}`, as JSON with sorted keys writes it). It waits on, for a
    /// name that would redact it whole.
    #[cold]
    #[inline(never)]
    fn name_waiting_values(&mut self, object: usize, secret: u64) {
        let Some(p) = self.pending.filter(|p| {
            p.depth == object
                && p.wait == Wait::LateName
                && self.pos - p.src_end <= PENDING_TAIL
                && self.out.as_bytes().get(p.start) == Some(&b'[')
        }) else {
            return;
        };
        let named = self.read_again(p.start, p.end, r#"{"values":"#, "}", |parser| {
            parser.names_by_place = Some(NamesByPlace { object: 1, secret });
            parser.lists = true;
        });
        if named {
            self.paired = true;
            self.surely_paired = true;
        }
    }

    /// An element read as a name (see [`element`](Self::element)) named a secret, or not.
    fn element_named(&mut self, sensitive: bool) {
        let depth = self.stack.len();
        if let Some(list) = self
            .placed
            .as_mut()
            .filter(|l| l.depth == depth && l.kind == PlacedKind::Names)
        {
            if let Some(at) = list.next.checked_sub(1).filter(|&at| at < 64 && sensitive) {
                list.secret |= 1 << at;
            }
        } else if let Some(list) = self.header_list.as_mut().filter(|l| l.depth == depth) {
            // At a name's place the next element is read for it (a value's place has the next
            // element a name's again).
            if !list.name_next {
                list.value_next = sensitive;
            }
            if let Some(at) = list.next.checked_sub(1).filter(|&at| at < 64 && sensitive) {
                list.secret |= 1 << at;
            }
        } else if sensitive {
            self.pair = Some(depth);
            self.lists = true;
        }
    }

    /// Whether the value that starts at `pos` with byte `c` ends its array, or may: one cut
    /// short, or a container, is taken to.
    fn ends_its_array(&self, c: u8) -> bool {
        let bytes = self.src.as_bytes();
        let end = match c {
            b'"' => match string_end(self.src, self.pos) {
                Some(quote) => quote + 1,
                None => return true,
            },
            b'{' | b'[' => return true,
            _ => {
                let mut i = self.pos;
                while bytes.get(i).is_some_and(|b| {
                    !matches!(b, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
                }) {
                    i += 1;
                }
                i
            }
        };
        let mut i = end;
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(i) {
            i += 1;
        }
        bytes.get(i) != Some(&b',')
    }

    /// Whether a whole `true`, `false` or `null` starts here, with byte `c`: followed by the
    /// end, a delimiter or a space (`two words`, an unquoted value a looser rule reads next,
    /// is none).
    fn at_literal(&self, c: u8) -> bool {
        let word: &[u8] = match c {
            b't' => b"true",
            b'f' => b"false",
            b'n' => b"null",
            _ => return false,
        };
        let rest = &self.src.as_bytes()[self.pos..];
        rest.starts_with(word)
            && rest
                .get(word.len())
                .is_none_or(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
    }

    fn literal(&mut self, word: &'static str) -> Result<Expect, Stop> {
        let rest = &self.src.as_bytes()[self.pos..];
        for (i, &w) in word.as_bytes().iter().enumerate() {
            match rest.get(i) {
                None => return Err(Stop::Eof),
                Some(&b) if b != w => return Err(Stop::Invalid(self.pos + i)),
                Some(_) => {}
            }
        }
        self.pos += word.len();
        Ok(self.after_value())
    }

    fn number(&mut self) -> Result<(), Stop> {
        let bytes = self.src.as_bytes();
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
        };
        // Requires at least one digit at `i`.
        let first_digit = |i: usize| match bytes.get(i) {
            Some(b) if b.is_ascii_digit() => Ok(()),
            Some(_) => Err(Stop::Invalid(i)),
            None => Err(Stop::Eof),
        };
        if bytes[i] == b'-' {
            i += 1;
        }
        first_digit(i)?;
        if bytes[i] == b'0' {
            i += 1;
        } else {
            digits(&mut i);
        }
        let integer = i;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            first_digit(i)?;
            digits(&mut i);
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            first_digit(i)?;
            digits(&mut i);
        }
        if i == bytes.len() && self.is_prefix {
            // More digits may have followed; a partial number is never emitted.
            return Err(Stop::Eof);
        }
        self.pos = i;
        if self.suppress.is_none()
            && integer == i
            && self.rules.values.is_card_number(&self.src[start..i])
        {
            let rules = self.rules;
            self.replace_to(start, i, &rules.replacement_json);
        }
        Ok(())
    }

    /// The string at `pos`: where its closing quote is, whether it has escapes, and the
    /// [`PAIR_MARK`]s it holds (a pair's also written as `\u003d`, `\u003a`, `\u003c`,
    /// `\u0026`).
    fn scan_string(&self) -> Result<(usize, bool, u8), Stop> {
        let bytes = self.src.as_bytes();
        let special = self.string_special;
        let mut i = self.pos + 1;
        let mut escaped = false;
        let mut marked = 0;
        loop {
            while let Some(&b) = bytes.get(i) {
                if special[usize::from(b)] {
                    break;
                }
                marked |= PAIR_MARK[usize::from(b)];
                i += 1;
            }
            match bytes.get(i) {
                None => return Err(Stop::Eof),
                Some(b'"') => return Ok((i, escaped, marked)),
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(i + 1) {
                        None => return Err(Stop::Eof),
                        Some(b'"') => {
                            // A string quoted inside the string, as MySQL reads `"…"`.
                            marked |= QUOTE;
                            i += 2;
                        }
                        Some(b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            // `=`, `:`, `<` or `&` written as an escape (Go writes `<` and
                            // `&` so).
                            if bytes.get(i + 2..i + 6).is_some_and(|hex| {
                                hex == b"0026"
                                    || hex[..3] == *b"003"
                                        && matches!(hex[3] | 0x20, b'a' | b'c' | b'd')
                            }) {
                                marked |= PAIR;
                            }
                            // A quote, `$` or `(` written as an escape (.NET's encoder
                            // writes `'` as `\u0027`).
                            if bytes.get(i + 2..i + 6).is_some_and(|hex| {
                                hex[..3] == *b"002" && matches!(hex[3], b'2' | b'4' | b'7' | b'8')
                            }) {
                                marked |= QUOTE;
                            }
                            // `-` written as an escape, as an encoder that escapes it
                            // writes a command line, or a Unicode dash (`\u2013`).
                            if bytes.get(i + 2..i + 6).is_some_and(|hex| {
                                hex.eq_ignore_ascii_case(b"002d")
                                    || hex.starts_with(b"201") && matches!(hex[3], b'0'..=b'5')
                                    || hex == b"2212"
                            }) {
                                marked |= ESCAPED_DASH;
                            }
                            for k in i + 2..i + 6 {
                                match bytes.get(k) {
                                    None => return Err(Stop::Eof),
                                    Some(h) if h.is_ascii_hexdigit() => {}
                                    Some(_) => return Err(Stop::Invalid(k)),
                                }
                            }
                            i += 6;
                        }
                        Some(_) => return Err(Stop::Invalid(i + 1)),
                    }
                }
                Some(_) => return Err(Stop::Invalid(i)),
            }
        }
    }

    fn key(&mut self) -> Result<(), Stop> {
        self.last_string = Some(self.pos);
        // A key cut in the middle is dropped: it has no value that could leak.
        let (end, escaped, _) = self.scan_string()?;
        let quote = self.pos;
        let raw = &self.src[quote + 1..end];
        self.pos = end + 1;
        if self.suppress.is_some() {
            return Ok(());
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let key = if escaped {
            decode_escapes(raw, &mut scratch);
            scratch.as_str()
        } else {
            raw
        };
        self.sensitive_next = self.rules.keys.is_sensitive(key, &mut self.keybuf);
        self.role = if self.sensitive_next {
            // `code_verifier` (`codeVerifier`), a secret itself, marks an OAuth request too.
            if matches!(key.len(), 12 | 13) && oauth_mark(key) != 0 {
                self.note_oauth_mark(OAUTH_REQUEST);
            }
            Role::Other
        } else {
            json_role(key)
        };
        if self.graphql.is_some()
            || matches!(
                self.role,
                Role::Query
                    | Role::Variables
                    | Role::OAuthMark
                    | Role::JwkPrivate
                    | Role::JwkType
                    | Role::Kind
            )
        {
            self.rare_key(key, quote);
        }
        // Keys are data too (maps keyed by card or token are rare but real).
        if let Some(redacted) = redact_string(&self.rules.values, key) {
            self.replace_string(quote, &redacted);
        }
        self.scratch = scratch;
        Ok(())
    }

    /// `redacted` (the string after the value patterns, `None` when they left `decoded` as it
    /// was) with the values of its sensitive `key=value` pairs and elements replaced too.
    ///
    /// A string that is a JSON document is redacted as one instead (see
    /// [`redact_quoted`](Self::redact_quoted)), and left as it came when nothing in it is; the
    /// documents in one with text around them are redacted as JSON first.
    fn redact_pairs(&mut self, redacted: Option<String>, decoded: &str) -> Option<String> {
        let redacted = match self.redact_quoted(decoded, false) {
            // A value pattern may span the document's tokens.
            Some(Some(json)) if redacted.is_some() => {
                return Some(self.rules.values.redact(&json).into_owned());
            }
            Some(Some(json)) => return Some(json),
            Some(None) if redacted.is_none() => return None,
            Some(None) => redacted,
            None => match self.redact_documents(decoded, false) {
                Some(json) if redacted.is_some() => {
                    Some(self.rules.values.redact(&json).into_owned())
                }
                Some(json) => Some(json),
                None => redacted,
            },
        };
        let text = redacted.as_deref().unwrap_or(decoded);
        super::text::redact_free_text(
            text,
            false,
            &self.rules.keys,
            &mut self.keybuf,
            &self.rules.replacement,
        )
        .or(redacted)
    }

    /// A string's `decoded` contents redacted as the JSON document they are (a webhook's or a
    /// queue's message, a Kubernetes env kept as text), whose name and value members the pair
    /// rules cannot pair: `Some(None)` when nothing in it is redacted, `None` when it is no
    /// document (or, when `is_prefix`, no start of one) or is quoted [`QUOTED_DEPTH`] deep.
    /// The document is written compactly, as every body is.
    fn redact_quoted(&mut self, decoded: &str, is_prefix: bool) -> Option<Option<String>> {
        if self.quoted >= QUOTED_DEPTH
            || !matches!(decoded.trim_start().as_bytes().first(), Some(b'{' | b'['))
        {
            return None;
        }
        let mut json = String::new();
        let mut parser = Parser::new(self.rules, decoded, is_prefix, self.quoted + 1, &mut json);
        let stop = parser.run();
        let (redacted, paired) = (parser.redacted, parser.paired);
        let secret_kind = parser.secret_kind;
        let json = match stop {
            // A Kubernetes `Secret` quoted in a string (the `last-applied-configuration`
            // annotation kubectl writes into one): read again with its data replaced.
            Stop::Done if secret_kind => match kubernetes_secrets_redacted(self.rules, decoded) {
                Some(secrets) => {
                    let mut out = String::new();
                    tokenize(self.rules, &secrets, false, self.quoted + 1, &mut out);
                    Some(out)
                }
                None => redacted.then_some(json),
            },
            Stop::Done => redacted.then_some(json),
            Stop::Eof if is_prefix => Some(json),
            _ => return None,
        };
        // The string is stored so: the document around it may not drop that.
        self.paired |= paired;
        self.surely_paired |= paired;
        Some(json)
    }

    /// The JSON documents inside a string's `decoded` contents with text around them (a log
    /// line's, an error's) whose values their name members name redacted, `None` when there
    /// are none or the string is quoted [`QUOTED_DEPTH`] deep; `cut` when the string runs into
    /// the cut.
    fn redact_documents(&mut self, decoded: &str, cut: bool) -> Option<String> {
        if self.quoted >= QUOTED_DEPTH {
            return None;
        }
        let documents =
            super::embedded::redact_documents(self.rules, decoded, cut, self.quoted + 1);
        self.paired |= documents.is_some();
        self.surely_paired |= documents.is_some();
        documents
    }

    /// The redaction of a string `raw` (its contents as written, `escaped` when they hold
    /// escapes) read as the next word of an array of a command's arguments: `None` when it is
    /// no array's element or is no password. A MySQL client's name makes the array, and the
    /// arrays after it in its object, the client's arguments; there `-phunter2` loses what
    /// follows `-p`, and the word after a bare `-p` goes, as does the word after a long
    /// option named by a sensitive key (`"--password","hunter2"`) in any array, unless it is an
    /// option. Each element is read once, so the walk stays linear.
    #[inline(always)]
    fn argv_word(&mut self, raw: &str, escaped: bool) -> Option<String> {
        if self.stack.last() != Some(false) {
            return None;
        }
        // Most arrays' strings (tags, ids, names) are neither an option nor a command's name:
        // told by their first and last bytes, before any decoding, unless an option waits for
        // its value or a command reads its arguments.
        if self.argv.is_none() && self.command_in.is_none() && !may_be_argv_word(raw) {
            return None;
        }
        self.read_argv_word(raw, escaped)
    }

    /// Ends the readings of a command's words the container at `depth` held: its own, and
    /// those its arrays left for the arrays after them (`client_in`, `command_in`) or before
    /// them (its [`Orphan`]s). An array that named a command reads its object's orphans again
    /// as its arguments; one that may be a later command's arguments becomes one.
    #[inline(never)]
    fn argv_close(&mut self, depth: usize) {
        if let Some(argv) = self.argv.take_if(|a| a.depth == depth)
            && argv.in_object
        {
            if argv.command.is_open() {
                self.command_in = Some((depth - 1, argv.command));
            }
            // Nothing of an array inside a redacted value is in the output.
            if self.suppress.is_none() {
                if argv.command.is_open() || argv.in_client {
                    if self.orphans.last().is_some_and(|o| o.object == depth - 1) {
                        self.adopt_orphans(depth - 1, argv.in_client, argv.command);
                    }
                } else if let Some(start) = argv.unclaimed {
                    self.note_orphan(depth - 1, start);
                }
            }
        }
        if self.command_in.is_some_and(|(object, _)| object == depth) {
            self.command_in = None;
        }
        while self.orphans.last().is_some_and(|o| o.object >= depth) {
            self.orphans.pop();
        }
    }

    /// The array closing at `pos`, a member of the object at depth `object` whose elements
    /// start at `start` in the output, may be the arguments of a command named after it: an
    /// [`Orphan`], of which the object keeps its last [`ORPHANS`].
    fn note_orphan(&mut self, object: usize, start: usize) {
        self.copy_to(self.pos);
        let of_object = self
            .orphans
            .iter()
            .rev()
            .take_while(|o| o.object == object)
            .count();
        if of_object == ORPHANS {
            self.orphans.remove(self.orphans.len() - ORPHANS);
        }
        self.orphans.push(Orphan {
            object,
            start,
            end: self.out.len(),
        });
    }

    /// An array of the object at depth `object` named a command (a MySQL client when
    /// `in_client`, another command by `command`): the object's [`Orphan`]s before it are read
    /// again as its arguments, each as an array of its own, and their output replaced, the last
    /// first so that the places of those before it stay.
    #[cold]
    #[inline(never)]
    fn adopt_orphans(
        &mut self,
        object: usize,
        in_client: bool,
        command: super::commands::InCommand,
    ) {
        // The output the input read so far will make, copied or not yet.
        let read = self.out.len() + (self.pos - self.copied);
        while let Some(orphan) = self.orphans.pop_if(|o| o.object == object) {
            if read.saturating_sub(orphan.end) > ORPHAN_TAIL {
                continue;
            }
            self.read_again(orphan.start, orphan.end, "[", "]", |parser| {
                parser.argv = Some(Argv {
                    depth: 1,
                    in_object: false,
                    in_client,
                    value_next: false,
                    command,
                    unclaimed: None,
                });
            });
        }
    }

    /// Reads the output `start..end` again, as the document `open`, it and `close`, with a
    /// parser of its own that `seed` sets up, and writes what that makes of it in its place,
    /// the places noted after it moving. Whether it changed.
    fn read_again(
        &mut self,
        start: usize,
        end: usize,
        open: &str,
        close: &str,
        seed: impl FnOnce(&mut Parser<'_, '_>),
    ) -> bool {
        let Some(part) = self.out.get(start..end) else {
            return false;
        };
        let text = format!("{open}{part}{close}");
        let mut again = String::with_capacity(text.len());
        let mut parser = Parser::new(self.rules, &text, false, self.quoted, &mut again);
        parser.string_special = self.string_special;
        seed(&mut parser);
        if parser.run() != Stop::Done {
            return false;
        }
        let Some(inner) = again
            .strip_prefix(open)
            .and_then(|again| again.strip_suffix(close))
            .filter(|inner| *inner != part)
        else {
            return false;
        };
        let delta = inner.len() as isize - part.len() as isize;
        self.out.replace_range(start..end, inner);
        self.shift_output(end, delta);
        self.redacted = true;
        true
    }

    /// The output from `at` on moved by `delta` bytes: the places noted in it move with it.
    fn shift_output(&mut self, at: usize, delta: isize) {
        let shift = |place: &mut usize| {
            if *place >= at {
                *place = place.wrapping_add_signed(delta);
            }
        };
        if let Some(p) = self.pending.as_mut() {
            shift(&mut p.start);
            shift(&mut p.end);
        }
        for pairing in &mut self.named {
            if let Some((start, _)) = pairing.reading.as_mut() {
                shift(start);
            }
        }
        for orphan in &mut self.orphans {
            shift(&mut orphan.start);
            shift(&mut orphan.end);
        }
        if let Some(start) = self.argv.as_mut().and_then(|a| a.unclaimed.as_mut()) {
            shift(start);
        }
        shift(&mut self.array_out.1);
        if let Some(g) = self.graphql.as_deref_mut() {
            if let Some((_, start)) = g.member.as_mut() {
                shift(start);
            }
            for (_, start, end) in &mut g.before {
                shift(start);
                shift(end);
            }
            if let Some((start, end)) = g.string_before.as_mut() {
                shift(start);
                shift(end);
            }
        }
    }

    /// Reads a value of an array read as a command's words that is no string, starting with
    /// byte `c`: a number may be a password (see [`argv_word`](Self::argv_word)).
    #[inline(never)]
    fn argv_other(&mut self, c: u8) {
        let depth = self.stack.len();
        if self
            .command_in
            .is_some_and(|(object, _)| object + 1 == depth)
            && self.stack.last() == Some(false)
            && self.argv.is_none_or(|a| a.depth != depth)
        {
            self.argv = Some(self.argv_at(depth));
        }
        if let Some(argv) = self.argv.as_mut().filter(|a| a.depth == depth) {
            let long = std::mem::take(&mut argv.value_next);
            let command = argv.command.argv_other(c.is_ascii_digit());
            if (long || command) && c.is_ascii_digit() {
                self.sensitive_next = true;
            }
        }
    }

    /// Whether the array at `depth`, read as a command's words, reads its next word whatever
    /// it looks like: an option waits for its value, or a command reads its arguments.
    fn argv_reads_every_word(&self, depth: usize) -> bool {
        match self.argv {
            Some(argv) if argv.depth == depth => argv.value_next || argv.command.is_open(),
            _ => self
                .command_in
                .is_some_and(|(object, _)| object + 1 == depth && self.stack.parent_is_object()),
        }
    }

    /// The reading of the array at `depth` as a command's words: the one under way, or a new
    /// one that goes on with the client or command its object's arrays named before it.
    fn argv_at(&self, depth: usize) -> Argv {
        match self.argv {
            Some(argv) if argv.depth == depth => argv,
            _ => {
                let in_object = self.stack.parent_is_object();
                Argv {
                    depth,
                    in_object,
                    in_client: in_object && self.client_in == Some(depth - 1),
                    value_next: false,
                    command: self
                        .command_in
                        .filter(|&(object, _)| in_object && object == depth - 1)
                        .map(|(_, command)| command)
                        .unwrap_or_default(),
                    unclaimed: None,
                }
            }
        }
    }

    /// [`argv_word`](Self::argv_word) for a string in an array that may be a word of one.
    #[inline(never)]
    fn read_argv_word(&mut self, raw: &str, escaped: bool) -> Option<String> {
        let depth = self.stack.len();
        if !self.argv_reads_every_word(depth) && !may_be_argv_word(raw) {
            return None;
        }
        let mut argv = self.argv_at(depth);
        let mut decoded = String::new();
        let word = if escaped {
            decode_escapes(raw, &mut decoded);
            decoded.as_str()
        } else {
            raw
        };
        let replacement = &self.rules.replacement;
        let mut redacted = None;
        // Another command's password: its option's value, or the part of it that holds it.
        let command = argv.command.argv_word(word);
        if std::mem::take(&mut argv.value_next) && !super::text::starts_with_dash(word) {
            redacted = Some(replacement.to_string());
        } else if argv.in_client
            && let Some(rest) = word.strip_prefix("-p")
        {
            if rest.is_empty() {
                argv.value_next = true;
            } else {
                redacted = Some(format!("-p{replacement}"));
            }
        } else if let Some(name) = super::text::long_option_name(word) {
            argv.value_next = self.rules.keys.is_sensitive(name, &mut self.keybuf);
        } else if let Some(name) = super::text::one_dash_option_name(word) {
            // Go's `-token x`; not a short option glued to its value, whose rest is what
            // makes it sensitive (`-ptoken1`).
            argv.value_next = self.rules.keys.is_sensitive(name, &mut self.keybuf)
                && !self.rules.keys.is_sensitive(&name[1..], &mut self.keybuf);
        } else if super::mysql::is_client(word) {
            argv.in_client = true;
            if argv.in_object {
                self.client_in = Some(depth - 1);
            }
        }
        // An option before any command was named: the array may be the arguments of one its
        // object names after it.
        if argv.in_object
            && argv.unclaimed.is_none()
            && !argv.in_client
            && !argv.command.is_open()
            && self.array_out.0 == depth
            && self.suppress.is_none()
            && super::text::starts_with_dash(word)
        {
            argv.unclaimed = Some(self.array_out.1);
        }
        self.argv = Some(argv);
        if redacted.is_none()
            && let Some((start, end)) = command
        {
            let kept = format!("{}{replacement}{}", &word[..start], &word[end..]);
            // What the password's part leaves is read as the whole string would have been,
            // by the value patterns and the pair rules (`["curl","-u","token=…:x"]`).
            let values = redact_string(&self.rules.values, &kept);
            redacted = Some(self.redact_pairs(values, &kept).unwrap_or(kept));
        }
        redacted
    }

    /// Whether a string whose contents are written `raw` holds a 2-tuple whose first item is
    /// quoted (`[('password', '…')]`, a Python list of pairs logged as a string), which holds
    /// no `=` nor `:` to mark it; told from its decoded contents when it has escapes (its
    /// quotes may be escaped, `(\"token\", …)`, `(\u0027token\u0027, …)`).
    #[inline(never)]
    fn holds_tuple(&mut self, raw: &str, escaped: bool) -> bool {
        // Most strings marked hold a quote or an escaped `"` and no `(`: those are not
        // decoded (a `(` written `\u0028` is not looked for).
        if memchr::memchr(b'(', raw.as_bytes()).is_none() {
            return false;
        }
        self.holds_decoded(raw, escaped, |text, _| {
            super::printed::may_hold_a_tuple(text.as_bytes())
        })
    }

    /// `holds` of a string written `raw`, decoded first when it has escapes; `holds` gets the
    /// key rules' scratch space too.
    fn holds_decoded(
        &mut self,
        raw: &str,
        escaped: bool,
        holds: impl FnOnce(&str, &mut String) -> bool,
    ) -> bool {
        if !escaped {
            return holds(raw, &mut self.keybuf);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        decode_escapes(raw, &mut scratch);
        let held = holds(&scratch, &mut self.keybuf);
        self.scratch = scratch;
        held
    }

    /// Whether a string whose contents are written `raw` holds an SQL statement's password,
    /// told from its decoded contents when it has escapes: its quotes may be escaped (`\"`,
    /// `\u0027`), and a line comment ends at a line break written `\n`.
    #[inline(never)]
    fn holds_sql_password(&mut self, raw: &str, escaped: bool) -> bool {
        if !super::sql::may_hold_password(raw.as_bytes()) {
            return false;
        }
        let keys = &self.rules.keys;
        self.holds_decoded(raw, escaped, |text, keybuf| {
            super::sql::holds_password(text, keys, keybuf)
        })
    }

    /// Whether a string without a quote, `$` or `(`, written `raw`, holds an SQL statement's
    /// unquoted password (`IDENTIFIED BY hunter2`), told from its decoded contents when it has
    /// escapes (a line break written `\n` parts the words).
    #[inline(never)]
    fn holds_unquoted_sql_password(&mut self, raw: &str, escaped: bool) -> bool {
        if !super::sql::may_hold_unquoted_password(raw.as_bytes()) {
            return false;
        }
        self.holds_decoded(raw, escaped, |text, _| {
            super::sql::holds_unquoted_password(text.as_bytes())
        })
    }

    /// Reads a string value; `role` is its member's: it may name its object's value member.
    fn string_value(&mut self, role: Role) -> Result<(), Stop> {
        let (is_name, is_path) = (
            matches!(role, Role::Name | Role::Path | Role::ElementName),
            role == Role::Path,
        );
        let quote = self.pos;
        self.last_string = Some(quote);
        let start = quote + 1;
        match self.scan_string() {
            Ok((end, escaped, marks)) => {
                self.pos = end + 1;
                if self.suppress.is_some() {
                    return Ok(());
                }
                let raw = &self.src[start..end];
                // A command line's long option (`--password hunter2`) is a pair without a
                // mark, as is a MySQL client's `-phunter2`; with escaped dashes it is told
                // once the string is decoded.
                let pairs = marks & PAIR != 0
                    || marks & DASH != 0 && (escaped || marks & BLANK != 0) && is_command_line(raw)
                    || marks & (QUOTE | SQL_KEYWORD) == QUOTE | SQL_KEYWORD
                        && self.holds_sql_password(raw, escaped)
                    || marks & (QUOTE | IDENTIFIED_LETTER) == IDENTIFIED_LETTER
                        && raw.len() >= super::sql::SHORTEST_UNQUOTED
                        && self.holds_unquoted_sql_password(raw, escaped)
                    || marks & QUOTE != 0 && self.holds_tuple(raw, escaped);
                let escaped_dash = marks & ESCAPED_DASH != 0;
                if is_name {
                    let sensitive = if escaped {
                        let mut scratch = std::mem::take(&mut self.scratch);
                        decode_escapes(raw, &mut scratch);
                        let name = if is_path {
                            path_leaf(&scratch)
                        } else {
                            &scratch
                        };
                        let sensitive = self.rules.keys.is_sensitive(name, &mut self.keybuf);
                        self.scratch = scratch;
                        sensitive
                    } else {
                        let name = if is_path { path_leaf(raw) } else { raw };
                        self.rules.keys.is_sensitive(name, &mut self.keybuf)
                    };
                    let sensitive = sensitive || names_a_secret_type(raw);
                    if role == Role::ElementName {
                        self.element_named(sensitive);
                    } else {
                        self.note_name(sensitive);
                    }
                }
                // Free text in a string (a log line, an error, JSON quoted as a string) has
                // `key=value` and `"key":"value"` pairs of its own; most strings hold neither
                // `=` nor `:` (`pairs`, noted by the scan).
                // Decoding only shortens: a string too short for any pattern is not decoded.
                let redacted = if escaped
                    && (pairs || escaped_dash || self.rules.values.may_match(raw.len()))
                {
                    let mut scratch = std::mem::take(&mut self.scratch);
                    decode_escapes(raw, &mut scratch);
                    // Decoded, a word may be set apart by an escape the raw look cannot read
                    // as a break (`sshpass\t-p …`).
                    let pairs =
                        pairs || (escaped_dash || marks & DASH != 0) && is_command_line(&scratch);
                    let mut redacted = redact_string(&self.rules.values, &scratch);
                    if pairs {
                        redacted = self.redact_pairs(redacted, &scratch);
                    }
                    self.scratch = scratch;
                    redacted
                } else {
                    let redacted = redact_string(&self.rules.values, raw);
                    if pairs {
                        self.redact_pairs(redacted, raw)
                    } else {
                        redacted
                    }
                };
                let redacted = self.argv_word(raw, escaped).or(redacted);
                if role == Role::Variables {
                    self.graphql_variables_string(quote, end, redacted);
                } else if let Some(redacted) = redacted {
                    self.replace_string(quote, &redacted);
                }
                Ok(())
            }
            Err(Stop::Eof) => {
                if self.suppress.is_none() {
                    // The string runs into the cut: emit what patterns and the tail trim
                    // leave, unterminated, so the reader sees where the body stops.
                    self.copy_to(quote);
                    let mut scratch = std::mem::take(&mut self.scratch);
                    decode_escapes(&self.src[start..], &mut scratch);
                    // A quoted document cut short goes as a cut body does, a value waiting
                    // for its name with it.
                    if let Some(Some(json)) = self.redact_quoted(&scratch, true) {
                        self.out.push('"');
                        push_escaped(self.out, &json);
                        self.scratch = scratch;
                        return Err(Stop::Eof);
                    }
                    // A password cut short in an argv goes whole, its words too.
                    if let Some(word) = self.argv_word(&scratch, false) {
                        self.out.push('"');
                        push_escaped(self.out, &word);
                        self.scratch = scratch;
                        return Err(Stop::Eof);
                    }
                    let documents = self.redact_documents(&scratch, true);
                    let redacted = self
                        .rules
                        .values
                        .redact(documents.as_deref().unwrap_or(&scratch));
                    // Free text keeps its pairs' rules up to the cut: the value of a pair
                    // cut short runs to the end, and goes, and so does a YAML `value` whose
                    // mapping's name the cut took.
                    let redacted = match super::text::redact_free_text(
                        &redacted,
                        true,
                        &self.rules.keys,
                        &mut self.keybuf,
                        &self.rules.replacement,
                    ) {
                        Some(pairs) => Cow::Owned(pairs),
                        None => redacted,
                    };
                    self.out.push('"');
                    push_escaped(self.out, trim_cut_tail(&redacted));
                    self.scratch = scratch;
                }
                Err(Stop::Eof)
            }
            Err(stop) => Err(stop),
        }
    }
}

/// The redaction of a complete string's `decoded` contents through the value patterns, or `None`
/// when nothing matched (or it is too short for any pattern, as most keys and values are) and the
/// original, escaped as it came, stays.
fn redact_string(values: &ValueRules, decoded: &str) -> Option<String> {
    if !values.may_match(decoded.len()) {
        return None;
    }
    match values.redact(decoded) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(s) => Some(s),
    }
}

/// Whether a string that holds a `-` may be a command line that gives a password: a long
/// option (`--password hunter2`), a MySQL client's `-phunter2` or another command's password
/// option (`redis-cli -a hunter2`, see [`commands`](super::commands)). 7 bytes is the shortest
/// (`--pin 1`).
fn is_command_line(text: &str) -> bool {
    text.len() >= 7
        && (super::text::may_hold_long_option(text)
            || super::mysql::may_hold_password(text)
            || super::commands::may_hold_password(text))
}

/// Decodes the contents of a JSON string into `out`, stopping at an incomplete escape.
///
/// The escapes were validated by the scanner; lone surrogates become U+FFFD.
pub(super) fn decode_escapes(raw: &str, out: &mut String) {
    out.clear();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &bytes[i..]) {
        out.push_str(&raw[i..i + off]);
        i += off;
        let Some(&e) = bytes.get(i + 1) else { return };
        let simple = match e {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let Some(high) = hex4(bytes, i + 2) else {
            return;
        };
        i += 6;
        let c = if (0xD800..0xDC00).contains(&high) {
            match (bytes.get(i..i + 2), hex4(bytes, i + 2)) {
                (Some(b"\\u"), Some(low)) if (0xDC00..0xE000).contains(&low) => {
                    i += 6;
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                }
                _ => None,
            }
        } else {
            char::from_u32(high)
        };
        out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    out.push_str(&raw[i..]);
}

/// The value of four hex digits at `at`, if all four are there.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// Appends `s` escaped for the inside of a JSON string.
pub(super) fn push_escaped(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if !STRING_SPECIAL[usize::from(b)] {
            continue;
        }
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends `s` as a quoted JSON string.
pub(super) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;
    use super::*;

    fn run(input: &str, cut: Option<&str>) -> String {
        let redactor = Redactor::default();
        let mut out = String::new();
        redact_json(redactor.rules(), input.as_bytes(), cut, &mut out);
        out
    }

    const CUT: Option<&str> = Some("truncated, 70000 bytes total");

    #[test]
    fn sensitive_keys_at_any_depth() {
        assert_eq!(
            run(
                r#"{"users":[{"profile":{"Pass-Word":"s3cr3t","name":"ann"}}]}"#,
                None
            ),
            r#"{"users":[{"profile":{"Pass-Word":"[REDACTED]","name":"ann"}}]}"#
        );
    }

    #[test]
    fn whole_nested_values_are_replaced() {
        assert_eq!(
            run(
                r#"{"token": {"a": [1, {"b": "x"}]}, "api_key": 12345, "n": [true, false, null]}"#,
                None
            ),
            r#"{"token":"[REDACTED]","api_key":"[REDACTED]","n":[true,false,null]}"#
        );
        assert_eq!(
            run(r#"[{"secret":[]},{"otp":null}]"#, None),
            r#"[{"secret":"[REDACTED]"},{"otp":null}]"#
        );
    }

    /// Found by a probe: a flag under a sensitive key (`"isSecret":true`) was redacted, and a
    /// boolean turned into a string; `true`, `false` and `null` hold no secret and are kept
    /// (and the flag marks its object's `value`, see the next test).
    #[test]
    fn flags_and_nulls_under_sensitive_keys_are_kept() {
        assert_eq!(
            run(
                r#"{"value":"AzdoS3cret","isSecret":true,"password_set":false,"token":null,"pin":1234}"#,
                None
            ),
            r#"{"value":"[REDACTED]","isSecret":true,"password_set":false,"token":null,"pin":"[REDACTED]"}"#
        );
        assert_eq!(
            run(r#"{"secret": true , "otp":nullx}"#, None).get(..29),
            Some(r#"{"secret":true,"otp":"[REDACT"#)
        );
    }

    /// Found by a probe: values marked secret by a flag or a type beside them were kept.
    #[test]
    fn values_marked_secret_by_a_flag_or_a_type_are_redacted() {
        for (body, expected) in [
            (
                r#"{"variables":{"STRIPE":{"value":"AzdoS3cret-77d","isSecret":true}}}"#,
                r#"{"variables":{"STRIPE":{"value":"[REDACTED]","isSecret":true}}}"#,
            ),
            (
                r#"{"Name":"/prod/stripe","Value":"SsmS3cret","Type":"SecureString"}"#,
                r#"{"Name":"/prod/stripe","Value":"[REDACTED]","Type":"SecureString"}"#,
            ),
            (
                r#"{"type":"CONCEALED","label":"stripe","value":"x2"}"#,
                r#"{"type":"CONCEALED","label":"stripe","value":"[REDACTED]"}"#,
            ),
            (
                r#"{"key":"STRIPE","value":"v1","type":"sensitive"}"#,
                r#"{"key":"STRIPE","value":"[REDACTED]","type":"sensitive"}"#,
            ),
            // Flags that mark nothing secret, and other types, keep the value.
            (
                r#"{"value":"blue","isSecret":false,"type":"string"}"#,
                r#"{"value":"blue","isSecret":false,"type":"string"}"#,
            ),
            (
                r#"{"name":"PORT","value":"80","type":"plain"}"#,
                r#"{"name":"PORT","value":"80","type":"plain"}"#,
            ),
        ] {
            assert_eq!(run(body, None), expected, "{body}");
        }
    }

    #[test]
    fn escaped_key_names_are_the_same_key() {
        assert_eq!(
            run(r#"{"pass\u0077ord":"hunter2"}"#, None),
            r#"{"pass\u0077ord":"[REDACTED]"}"#
        );
        assert_eq!(
            run(r#"{"\u0050ASS_WORD":"hunter2"}"#, None),
            r#"{"\u0050ASS_WORD":"[REDACTED]"}"#
        );
    }

    /// Keys pass through the value patterns too (maps keyed by card or token); short keys,
    /// which no pattern can match, are copied as they are.
    #[test]
    fn keys_pass_through_value_patterns() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(
            run(
                &format!(r#"{{"4111 1111 1111 1111":{{"{jwt}":1,"sku":2}},"id\u0031":3}}"#),
                None
            ),
            r#"{"[REDACTED]":{"[REDACTED]":1,"sku":2},"id\u0031":3}"#
        );
    }

    /// A string holding free text keeps its pairs' rules: a log line, an error, JSON quoted
    /// as a string. Strings with `:` or `=` that hold no sensitive pair stay as they are.
    #[test]
    fn pairs_inside_strings_are_redacted() {
        assert_eq!(
            run(
                r#"{"message":"login user=ann password=hunter2","n":1}"#,
                None
            ),
            r#"{"message":"login user=ann password=[REDACTED]","n":1}"#
        );
        assert_eq!(
            run(
                r#"{"msg":"{\"user\":\"ann\",\"password\":\"hunter2\"}"}"#,
                None
            ),
            r#"{"msg":"{\"user\":\"ann\",\"password\":\"[REDACTED]\"}"}"#
        );
        assert_eq!(
            run(r#"["retry with token: abc123 later"]"#, None),
            r#"["retry with token: [REDACTED]"]"#
        );
        assert_eq!(
            run(
                r#"["password\u003dhunter2", "pass\u0077ord\u003Ahunter2"]"#,
                None
            ),
            r#"["password=[REDACTED]","password:[REDACTED]"]"#
        );
        // Go's encoder writes `<` as `\u003c`: an element with no `=` or `:` near it.
        assert_eq!(
            run(
                r#"{"x":"\u003cpassword\u003ehunter2\u003c/password\u003e"}"#,
                None
            ),
            r#"{"x":"<password>[REDACTED]</password>"}"#
        );
        // A command line's long option, with no `=` or `:` in the string.
        assert_eq!(
            run(r#"{"cmd":"mysql --password hunter2 db"}"#, None),
            r#"{"cmd":"mysql --password [REDACTED] db"}"#
        );
        let plain = r#"{"at":"2026-12-05T10:00:00Z","url":"https://a.example/x?y=1","t":"a:b"}"#;
        assert_eq!(run(plain, None), plain);
    }

    #[test]
    fn string_values_pass_through_value_patterns() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(
            run(
                &format!(
                    r#"{{"note":"my jwt is {jwt} ok","card":"4111 1111 1111 1111","order":1234567812345678}}"#
                ),
                None
            ),
            r#"{"note":"my jwt is [REDACTED] ok","card":"[REDACTED]","order":1234567812345678}"#
        );
        assert_eq!(
            run(r#"{"n": 4111111111111111}"#, None),
            r#"{"n":"[REDACTED]"}"#
        );
        // Escaped text is decoded before matching and re-escaped after.
        assert_eq!(
            run(
                r#"{"pem":"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n\"x\""}"#,
                None
            ),
            r#"{"pem":"[REDACTED]\n\"x\""}"#
        );
    }

    #[test]
    fn compact_output_keeps_escapes_and_unicode() {
        let input = "{ \"a\" : \"x\\\"y\\u00e9\u{1F600}\" ,\n \"b\" : [ 1.5e-3 , -0 ] }";
        let out = run(input, None);
        assert_eq!(out, "{\"a\":\"x\\\"y\\u00e9\u{1F600}\",\"b\":[1.5e-3,-0]}");
        let reparsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            reparsed,
            serde_json::from_str::<serde_json::Value>(input).unwrap()
        );
    }

    #[test]
    fn cut_inside_a_sensitive_value() {
        assert_eq!(
            run(r#"{"a":1,"password": "hun"#, CUT),
            r#"{"a":1,"password":"[REDACTED]" …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"password":"#, CUT),
            r#"{"password": …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"password":{"x":["hun"#, CUT),
            r#"{"password":"[REDACTED]" …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"pin":12"#, CUT),
            r#"{"pin":"[REDACTED]" …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"passw"#, CUT),
            r#"{ …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"pass\u00"#, CUT),
            r#"{ …[truncated, 70000 bytes total]"#
        );
    }

    #[test]
    fn cut_inside_an_ordinary_value_drops_the_cut_word() {
        assert_eq!(
            run(r#"{"note":"card 4111 1111 11"#, CUT),
            r#"{"note":"card …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"n":4111111"#, CUT),
            r#"{"n": …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"{"ok":tr"#, CUT),
            r#"{"ok": …[truncated, 70000 bytes total]"#
        );
    }

    #[test]
    fn malformed_json_stops_at_the_error() {
        assert_eq!(
            run(r#"{"user":"bob" "password":"hunter2"}"#, None),
            r#"{"user":"bob" …[invalid JSON at byte 14]"#
        );
        assert_eq!(
            run(r#"{password: "hunter2"}"#, None),
            r#"{ …[invalid JSON at byte 1]"#
        );
        assert_eq!(
            run(r#"{"password": hunter2}"#, None),
            r#"{"password":"[REDACTED]" …[invalid JSON at byte 13]"#
        );
        assert_eq!(
            run(r#"{"a":1} {"password":"x"}"#, None),
            r#"{"a":1} …[invalid JSON at byte 8]"#
        );
        assert_eq!(
            run(r#"{"a":"x"#, None),
            r#"{"a":" …[invalid JSON at byte 7]"#
        );
        assert_eq!(
            run("{\"a\":\"x\u{1}\"}", None),
            r#"{"a": …[invalid JSON at byte 7]"#
        );
        assert_eq!(
            run(r#"{"a":"\q"}"#, None),
            r#"{"a": …[invalid JSON at byte 7]"#
        );
        assert_eq!(run(r#"[01]"#, None), r#"[0 …[invalid JSON at byte 2]"#);
    }

    #[test]
    fn invalid_utf8_stops_the_document() {
        let redactor = Redactor::default();
        let mut out = String::new();
        redact_json(
            redactor.rules(),
            b"{\"a\":\"x\xff\",\"password\":\"y\"}",
            None,
            &mut out,
        );
        assert_eq!(out, "{\"a\":\" …[invalid UTF-8 at byte 7]");
        // A character split by the cut is part of the cut.
        out.clear();
        redact_json(
            redactor.rules(),
            "{\"a\":1,\"é".as_bytes().split_last().unwrap().1,
            CUT,
            &mut out,
        );
        assert_eq!(out, "{\"a\":1, …[truncated, 70000 bytes total]");
    }

    /// Past the 64 levels kept as bits, containers still close in order and a sensitive key
    /// deep inside is still redacted.
    #[test]
    fn containers_nested_deeper_than_64_levels() {
        for depth in [63, 64, 65, 100] {
            let mut input = String::new();
            for level in 0..depth {
                input.push_str(if level % 2 == 0 { r#"{"k":"# } else { "[" });
            }
            input.push_str(r#"{"password":"hunter2","a":[1,{"b":"c"}]}"#);
            for level in (0..depth).rev() {
                input.push(if level % 2 == 0 { '}' } else { ']' });
            }
            let expected = input.replace(r#""hunter2""#, r#""[REDACTED]""#);
            assert_eq!(run(&input, None), expected, "depth {depth}");
            // The wrong close for the innermost level stops the document there.
            let at = input.len() - depth;
            let wrong = if (depth - 1) % 2 == 0 { ']' } else { '}' };
            let bad = format!("{}{wrong}", &input[..at]);
            let out = run(&bad, None);
            assert!(
                out.ends_with(&format!(" …[invalid JSON at byte {at}]")),
                "depth {depth}: {out}"
            );
        }
    }

    #[test]
    fn scalars_and_empty_containers() {
        assert_eq!(run(" 42 ", None), "42");
        assert_eq!(run(r#""s""#, None), r#""s""#);
        assert_eq!(run("{}", None), "{}");
        assert_eq!(run("[]", None), "[]");
        assert_eq!(run("", None), " …[invalid JSON at byte 0]");
    }

    /// A name and its value in sibling members (HAR headers, Kubernetes env, CloudFormation
    /// parameters and tags, form fields): the value of a sensitive name goes, in either order.
    #[test]
    fn values_named_by_a_sibling_member() {
        let cases = [
            (
                r#"{"headers":[{"name":"Authorization","value":"Bearer abc123"},{"name":"Accept","value":"*/*"}]}"#,
                r#"{"headers":[{"name":"Authorization","value":"[REDACTED]"},{"name":"Accept","value":"*/*"}]}"#,
            ),
            (
                r#"{"env":[{"name":"DB_PASSWORD","value":"hunter2"},{"name":"PORT","value":"80"}]}"#,
                r#"{"env":[{"name":"DB_PASSWORD","value":"[REDACTED]"},{"name":"PORT","value":"80"}]}"#,
            ),
            (
                r#"[{"ParameterKey":"DbPassword","ParameterValue":"hunter2"}]"#,
                r#"[{"ParameterKey":"DbPassword","ParameterValue":"[REDACTED]"}]"#,
            ),
            (
                r#"{"Tags":[{"Key":"api_key","Value":"k-123"},{"Key":"team","Value":"a"}]}"#,
                r#"{"Tags":[{"Key":"api_key","Value":"[REDACTED]"},{"Key":"team","Value":"a"}]}"#,
            ),
            (
                r#"{"field":"password","value":{"x":["hunter2"]}}"#,
                r#"{"field":"password","value":"[REDACTED]"}"#,
            ),
            // The value before the name.
            (
                r#"[{"value":"hunter2","name":"DB_PASSWORD"},{"value":"80","name":"PORT"}]"#,
                r#"[{"value":"[REDACTED]","name":"DB_PASSWORD"},{"value":"80","name":"PORT"}]"#,
            ),
            (
                r#"{"Value":{"a":[1,"hunter2"]},"n":1,"Key":"Secret"}"#,
                r#"{"Value":"[REDACTED]","n":1,"Key":"Secret"}"#,
            ),
            // Nested: each object's name is its own.
            (
                r#"{"value":"hunter2","x":{"name":"Ann","value":3},"name":"token"}"#,
                r#"{"value":"[REDACTED]","x":{"name":"Ann","value":3},"name":"token"}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Every spelling of a name member and of a value member.
        for (name, value) in [
            ("header", "value"),
            ("variable", "value"),
            ("Field", "VALUE"),
            ("ParameterName", "ParameterValue"),
            ("OptionName", "OptionValue"),
            ("TagKey", "TagValue"),
            ("AttributeName", "AttributeValue"),
        ] {
            for input in [
                format!(r#"{{"{name}":"X-Api-Key","{value}":"k-1"}}"#),
                format!(r#"{{"{value}":"k-1","{name}":"X-Api-Key"}}"#),
            ] {
                assert_eq!(
                    run(&input, None),
                    input.replace(r#""k-1""#, r#""[REDACTED]""#),
                    "{input}"
                );
            }
        }
        for plain in [
            r#"{"name":"Ann","value":3}"#,
            r#"{"value":3,"name":"Ann"}"#,
            r#"[{"key":"color","value":"red"},{"value":[1,2],"field":"size"}]"#,
            r#"{"name":{"first":"password"},"value":1}"#,
            // Objects with a value member and no name member at all.
            r#"{"value":3,"unit":"kg"}"#,
            r#"{"metrics":[{"value":0.5,"at":"2026-12-06T05:00:00Z"},{"value":0.7}]}"#,
            r#"{"value":"a"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: JSON Patch (RFC 6902) and SCIM PATCH operations name their value by a
    /// `path` member, a JSON Pointer (`/users/0/password`) or a SCIM path (`password`,
    /// `name.givenName`, `emails[type eq "work"].value`); its last segment decides, in
    /// whichever order the members come. A `copy` or `move` op's `from` names nothing.
    #[test]
    fn values_named_by_a_patch_path() {
        for (input, want) in [
            (
                r#"[{"op":"replace","path":"/password","value":"hunter2"}]"#,
                r#"[{"op":"replace","path":"/password","value":"[REDACTED]"}]"#,
            ),
            (
                r#"[{"op":"add","path":"/users/0/credentials/api_key","value":{"k":"hunter2"}}]"#,
                r#"[{"op":"add","path":"/users/0/credentials/api_key","value":"[REDACTED]"}]"#,
            ),
            (
                r#"[{"value":"hunter2","op":"add","path":"/credentials/0/secret"}]"#,
                r#"[{"value":"[REDACTED]","op":"add","path":"/credentials/0/secret"}]"#,
            ),
            (
                r#"{"Operations":[{"op":"replace","path":"password","value":"hunter2"}]}"#,
                r#"{"Operations":[{"op":"replace","path":"password","value":"[REDACTED]"}]}"#,
            ),
            (
                r#"{"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","value":"hunter2"}]}"#,
                r#"{"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:password","value":"[REDACTED]"}]}"#,
            ),
            (
                r#"[{"op":"replace","path":"credentials[type eq \"x\"].secret","value":"hunter2"}]"#,
                r#"[{"op":"replace","path":"credentials[type eq \"x\"].secret","value":"[REDACTED]"}]"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        for plain in [
            r#"[{"op":"replace","path":"/name","value":"Ann"},{"op":"copy","from":"/password","path":"/old"}]"#,
            r#"[{"op":"move","from":"/api_key","path":"/key_id"},{"op":"test","path":"/a/0","value":3}]"#,
            r#"{"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"a@b"}]}"#,
            r#"{"Operations":[{"op":"replace","path":"name.givenName","value":"Ann"}]}"#,
            r#"{"path":"/var/log/app.log","value":12}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: a GraphQL request passes a password to its argument through a
    /// variable named anything (`login(password: $p)`, `"variables":{"p":…}`); the variable's
    /// value goes, whether `variables` comes before the query (as Apollo Client sends it) or
    /// after, in a batch too. Variables given to other arguments stay.
    #[test]
    fn graphql_variables_passed_to_sensitive_arguments() {
        let q = r#"mutation Login($u: String!, $p: String!) { login(user: $u, password: $p) { token } }"#;
        for input in [
            format!(r#"{{"query":"{q}","variables":{{"u":"ann","p":"hunter2"}}}}"#),
            format!(r#"{{"operationName":"Login","variables":{{"p":{{"x":"hunter2"}},"u":"ann"}},"query":"{q}"}}"#),
            r#"[{"variables":{"s":"hunter2","u":"ann"},"query":"mutation($s: String) {\n  setKey(input: {apiSecret: $s}) { id }\n}"},{"query":"{ me { id } }","variables":{"s":"x"}}]"#.to_owned(),
        ] {
            let out = run(&input, None);
            assert!(!out.contains("hunter2") && out.contains(r#""u":"ann""#), "{out}");
            assert!(out.contains(r#":"[REDACTED]""#), "{out}");
        }
        // The batch's second request names no secret.
        let out = run(
            r#"[{"variables":{"s":"a"},"query":"mutation($s: String) { k(token: $s) }"},{"query":"{ me }","variables":{"s":"x"}}]"#,
            None,
        );
        assert!(out.ends_with(r#""variables":{"s":"x"}}]"#), "{out}");
        // A value waiting for its name after the variables moves with the output; a
        // variable's own `query` member starts no request of its own.
        for (name, value) in [("PORT", r#""v1""#), ("token", r#""[REDACTED]""#)] {
            let input = format!(
                r#"{{"variables":{{"p":"hunter2","f":{{"query":"x"}}}},"value":"v1","query":"mutation($p:String){{login(password:$p)}}","name":"{name}"}}"#
            );
            let out = run(&input, None);
            let want = format!(
                r#"{{"variables":{{"p":"[REDACTED]","f":{{"query":"x"}}}},"value":{value},"query":"#
            );
            assert!(out.starts_with(&want) && !out.contains("hunter2"), "{out}");
        }
        // Many requests, each with many variables before its query: one pass each.
        let vars: Vec<String> = (0..100).map(|i| format!(r#""v{i}":"hunter{i}""#)).collect();
        let args: Vec<String> = (0..100).map(|i| format!("pin{i}: $v{i}")).collect();
        let one = format!(
            r#"{{"variables":{{{}}},"query":"m {{ f({}) }}"}}"#,
            vars.join(","),
            args.join(" ")
        );
        let batch = format!("[{}]", vec![one; 200].join(","));
        let out = run(&batch, None);
        // The first 64 of each are kept track of.
        assert!(!out.contains("hunter1\""), "{}", &out[..400]);
        // (The query's own `password: $p` goes by the pair rules of free text.)
        let out = run(
            &format!(r#"{{"query":"{q}","variables":{{"u":"ann"}}}}"#),
            None,
        );
        assert!(out.ends_with(r#""variables":{"u":"ann"}}"#), "{out}");
        for plain in [
            r#"{"variables":{"id":"7","value":"v"},"query":"query($id: ID!) { user(id: $id) { name } }"}"#,
            r#"{"query":"shoes: $5","variables":{"5":"x"}}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by a probe on 2026-12-07: a GraphQL request's `variables` sent as a JSON string
    /// (`"variables":"{\"p\":…}"`, as some clients send it) named nothing, and a variable
    /// passed to a sensitive argument kept its value. It goes now, the string before the
    /// query or after it, stored compactly as a string still; other variables stay.
    #[test]
    fn graphql_variables_sent_as_a_string() {
        let q = r#"mutation Login($u: String!, $p: String!) { login(user: $u, password: $p) { token } }"#;
        let vars = r#""{\"u\":\"ann\",\"p\":\"hunter2\"}""#;
        let stored = r#""variables":"{\"p\":\"[REDACTED]\",\"u\":\"ann\"}""#;
        for input in [
            format!(r#"{{"query":"{q}","variables":{vars}}}"#),
            format!(r#"{{"variables":{vars},"operationName":"Login","query":"{q}"}}"#),
            format!(r#"[{{"variables":{vars},"query":"{q}"}},{{"query":"{{ me }}"}}]"#),
        ] {
            let out = run(&input, None);
            assert!(!out.contains("hunter2") && out.contains(stored), "{out}");
        }
        // A value redacted for a name read after the variables moves them in the output.
        let out = run(
            r#"{"value":"v1","variables":"{\"p\":\"hunter2\"}","name":"token","query":"mutation($p:String){login(password:$p)}"}"#,
            None,
        );
        assert!(
            out.starts_with(
                r#"{"value":"[REDACTED]","variables":"{\"p\":\"[REDACTED]\"}","name":"token","query":"#
            ),
            "{out}"
        );
        // Variables that are no JSON object go whole; an empty one stays.
        let out = run(
            &format!(r#"{{"variables":"{{\"p\":\"hun","query":"{q}"}}"#),
            None,
        );
        assert!(out.starts_with(r#"{"variables":"[REDACTED]","#), "{out}");
        // (The query's own `password: $p` goes by the pair rules of free text.)
        let out = run(&format!(r#"{{"query":"{q}","variables":"null"}}"#), None);
        assert!(out.ends_with(r#""variables":"null"}"#), "{out}");
        // A query that names no secret, and one read only after the request, leave them.
        for plain in [
            r#"{"variables":"{\"id\":\"7\"}","query":"query($id: ID!) { user(id: $id) { name } }"}"#.to_owned(),
            r#"{"query":"query($id: ID!) { user(id: $id) { name } }","variables":"{\"id\":\"7\"}"}"#.to_owned(),
        ] {
            assert_eq!(run(&plain, None), plain);
        }
        let out = run(
            r#"[{"variables":"{\"p\":\"x\"}"},{"query":"mutation($p: String) { login(password: $p) }"}]"#,
            None,
        );
        assert!(
            out.starts_with(r#"[{"variables":"{\"p\":\"x\"}"},"#),
            "{out}"
        );
    }

    /// Found by review: a value redacted when its object's name came late, inside a GraphQL
    /// request's `variables` read before its query, moved the variables after it in the
    /// output, but their places were not moved with them: the query's redaction of one then
    /// cut the output at the wrong places, or panicked (a slice out of range) when the value
    /// was longer than the replacement.
    #[test]
    fn a_late_name_moves_the_graphql_variables_after_it() {
        let query = r#""query":"mutation { f(password: $pw) }""#;
        let redacted = r#""query":"mutation { f(password: [REDACTED]) }""#;
        for value in ["a", "a-value-longer-than-its-replacement", "é"] {
            assert_eq!(
                run(
                    &format!(
                        r#"{{"variables":{{"value":"{value}","pw":"hunter2","name":"token"}},{query}}}"#
                    ),
                    None
                ),
                format!(
                    r#"{{"variables":{{"value":"[REDACTED]","pw":"[REDACTED]","name":"token"}},{redacted}}}"#
                ),
            );
        }
    }

    /// The JSON parser tells roles by its own table, which must hold every name [`role_of`]
    /// has, with the same role.
    #[test]
    fn json_role_agrees_with_role_of() {
        for key in [
            "key",
            "name",
            "field",
            "value",
            "header",
            "tagkey",
            "variable",
            "tagvalue",
            "optionname",
            "optionvalue",
            "parameterkey",
            "parametername",
            "attributename",
            "parametervalue",
            "attributevalue",
            "Key",
            "PARAMETERVALUE",
            "namez",
            "kee",
            "",
        ] {
            let role = role_of(key);
            assert_eq!(role, json_role(key), "{key}");
        }
        for len in 0..=16 {
            for first in [b'a', b'k', b'n', b'p', b't', b'v', b'o', b'h', b'f'] {
                let key: String = std::iter::once(first as char)
                    .chain(std::iter::repeat_n('x', len))
                    .collect();
                assert_eq!(role_of(&key), Role::Other);
                // A JSON Web Key's private members are single letters.
                let want = if matches!(key.as_str(), "k" | "p") {
                    Role::JwkPrivate
                } else {
                    Role::Other
                };
                assert_eq!(json_role(&key), want, "{key}");
            }
        }
    }

    /// Found by review: name/value shapes of other APIs kept their value: a `content`, `data`
    /// or `values` member after a sensitive `name` (DNS and secret stores, Grafana's fields),
    /// and a `value` named by `id`, `type` or `label` (form builders, SCIM). A `content`, `data`
    /// or `values` member named by nothing (a chat message's `content`, JSON:API's `data`) is
    /// kept; one before its sensitive name, see `a_member_named_later_by_its_name`.
    #[test]
    fn values_named_by_other_members() {
        for (input, want) in [
            (
                r#"{"name":"DB_PASSWORD","content":"hunter2"}"#,
                r#"{"name":"DB_PASSWORD","content":"[REDACTED]"}"#,
            ),
            (
                r#"{"name":"DB_PASSWORD","data":{"v":"hunter2"}}"#,
                r#"{"name":"DB_PASSWORD","data":"[REDACTED]"}"#,
            ),
            (
                r#"{"fields":[{"name":"password","values":["hunter2"]},{"name":"user","values":["ann"]}]}"#,
                r#"{"fields":[{"name":"password","values":"[REDACTED]"},{"name":"user","values":["ann"]}]}"#,
            ),
            (
                r#"{"id":"password","value":"hunter2"}"#,
                r#"{"id":"password","value":"[REDACTED]"}"#,
            ),
            (
                r#"[{"type":"password","value":"hunter2"},{"label":"API key","value":"k-1"}]"#,
                r#"[{"type":"password","value":"[REDACTED]"},{"label":"API key","value":"[REDACTED]"}]"#,
            ),
            (
                r#"{"value":"hunter2","id":"client_secret"}"#,
                r#"{"value":"[REDACTED]","id":"client_secret"}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        for plain in [
            r#"{"role":"user","content":"hello"}"#,
            r#"{"content":"hello","role":"assistant","name":"ann"}"#,
            r#"{"data":{"id":"1","type":"users"},"name":"x"}"#,
            r#"{"name":"PORT","content":"80","data":[1],"values":[2]}"#,
            r#"{"id":"color","type":"text","label":"Colour","value":"red"}"#,
            r#"{"id":17,"value":3}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
        // A long body of data objects stays as it came.
        let long = format!(
            r#"{{"data":{{"x":"{}"}},"meta":{{"y":"{}"}}}}"#,
            "a".repeat(2000),
            "b".repeat(2000)
        );
        assert_eq!(run(&long, None), long);
    }

    /// Found by review: headers logged as name/value pairs in arrays (`[["X-Api-Key","…"]]`,
    /// as `Object.entries(headers)` or a list of tuples writes them) and as a flat list that
    /// alternates names and values (Node's `rawHeaders`, a `headers` array) kept their values.
    #[test]
    fn header_pairs_in_arrays() {
        for (input, want) in [
            (
                r#"{"headers":[["X-Api-Key","s3cr3t"],["Accept","*/*"]]}"#,
                r#"{"headers":[["X-Api-Key","[REDACTED]"],["Accept","*/*"]]}"#,
            ),
            (
                r#"[["authorization", "Bearer abc"], ["pin", 1234], ["token", {"a": ["b"]}], ["x", 1]]"#,
                r#"[["authorization","[REDACTED]"],["pin","[REDACTED]"],["token","[REDACTED]"],["x",1]]"#,
            ),
            (
                r#"{"rawHeaders":["Host","x","Authorization","Bearer abc","X-Api-Key","s3cr3t"]}"#,
                r#"{"rawHeaders":["Host","x","Authorization","[REDACTED]","X-Api-Key","[REDACTED]"]}"#,
            ),
            (
                r#"{"Headers":["Cookie","sid=s3cr3t","Accept","*/*","X-Auth\u002dToken","t"]}"#,
                r#"{"Headers":["Cookie","[REDACTED]","Accept","*/*","X-Auth\u002dToken","[REDACTED]"]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Cut inside the value, or before the pair's array closes: the value goes.
        for input in [
            r#"[["X-Api-Key","s3cr3t hunter2"#,
            r#"[["X-Api-Key","s3cr3t""#,
            r#"{"rawHeaders":["Authorization","Bearer abc hunter2"#,
        ] {
            let out = run(input, CUT);
            assert!(!out.contains("s3cr3t") && !out.contains("abc"), "{out}");
        }
        for plain in [
            r#"{"tags":["a","b"]}"#,
            r#"{"tags":["password","reset"]}"#,
            r#"["token","expired"]"#,
            r#"{"list":["Authorization","x"]}"#,
            // A pair is two items: a longer list, a single item, numbers, a list of rows.
            r#"[["password","reset","flow"],["token"],[1,2],["a","b"]]"#,
            r#"{"rawHeaders":["Host","x","Accept","*/*"]}"#,
            // No flat list once a name is no string: HAR's objects, pairs.
            r#"{"headers":[{"name":"Accept","value":"*/*"}]}"#,
            r#"{"headers":[1,"Authorization","x"]}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: names and values given as parallel arrays (`names`/`values`, a
    /// table's `columns` and its `rows` or pandas' `data`, InfluxDB's `columns`/`values`) kept
    /// the value in a sensitive name's place.
    #[test]
    fn values_named_by_a_parallel_array() {
        for (input, want) in [
            (
                r#"{"names":["user","password"],"values":["ann","hunter2"]}"#,
                r#"{"names":["user","password"],"values":["ann","[REDACTED]"]}"#,
            ),
            (
                r#"{"keys":["n","api_key"],"n":1,"values":[2,{"k":"x"}]}"#,
                r#"{"keys":["n","api_key"],"n":1,"values":[2,"[REDACTED]"]}"#,
            ),
            (
                r#"{"Fields":["pin","user"],"Values":[1234,"ann"]}"#,
                r#"{"Fields":["pin","user"],"Values":["[REDACTED]","ann"]}"#,
            ),
            (
                r#"{"columns":["user","token",3],"rows":[["ann","t-1",["x"]],["bob",{"a":"t-2"},null]]}"#,
                r#"{"columns":["user","token",3],"rows":[["ann","[REDACTED]",["x"]],["bob","[REDACTED]",null]]}"#,
            ),
            (
                r#"{"columns":["user","secret"],"index":[0,1],"data":[["ann","s-1"],["bob","s-2"]]}"#,
                r#"{"columns":["user","secret"],"index":[0,1],"data":[["ann","[REDACTED]"],["bob","[REDACTED]"]]}"#,
            ),
            (
                r#"{"series":[{"name":"logins","columns":["time","password"],"values":[[1,"a"],[2,"b"]]}]}"#,
                r#"{"series":[{"name":"logins","columns":["time","password"],"values":[[1,"[REDACTED]"],[2,"[REDACTED]"]]}]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        for plain in [
            r#"{"names":["user","region"],"values":["ann","eu"]}"#,
            // Each object its own names: values of another object.
            r#"{"a":{"names":["user","password"]},"values":["ann","x"]}"#,
            // Records are no values in place.
            r#"{"fields":["id","token"],"data":[{"id":1},{"id":2}]}"#,
            r#"{"columns":["a","password"],"meta":["x","y"]}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: JSON with sorted keys writes a `data` array before its `fields`,
    /// `keys` or `names` (`json.dumps(…, sort_keys=True)`, Go's maps), and the values it held
    /// in the places of secrets were kept: they are read again once the names come, within
    /// the short run of output a value waits for its name.
    #[test]
    fn values_before_their_names() {
        for (input, want) in [
            (
                r#"{"data":["ann","hunter2"],"names":["user","password"]}"#,
                r#"{"data":["ann","[REDACTED]"],"names":["user","password"]}"#,
            ),
            (
                r#"{"data":[["ann","s-1"],["bob",{"k":"s-2"}]],"fields":["user","secret"],"n":2}"#,
                r#"{"data":[["ann","[REDACTED]"],["bob","[REDACTED]"]],"fields":["user","secret"],"n":2}"#,
            ),
            (
                r#"{"values":[1234,"ann"],"note":"x","keys":["pin","user"]}"#,
                r#"{"values":["[REDACTED]","ann"],"note":"x","keys":["pin","user"]}"#,
            ),
            // A name of the object after them still redacts them whole.
            (
                r#"{"data":["ann","a-long-secret"],"names":["user","pin"],"name":"token"}"#,
                r#"{"data":"[REDACTED]","names":["user","pin"],"name":"token"}"#,
            ),
            // A value waiting for its name after them, its place moved.
            (
                r#"[{"data":["ann","x"],"names":["user","pin"]},{"value":"v","name":"api_key"}]"#,
                r#"[{"data":["ann","[REDACTED]"],"names":["user","pin"]},{"value":"[REDACTED]","name":"api_key"}]"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        let far = format!(
            r#"{{"data":["ann","x"],"note":"{}","names":["user","pin"]}}"#,
            "n".repeat(300)
        );
        for plain in [
            r#"{"data":["ann","eu"],"names":["user","region"]}"#,
            r#"{"data":[{"id":1}],"fields":["id","token"]}"#,
            r#"{"data":["ann","x"],"a":{"names":["user","pin"]}}"#,
            // Too far before them (the README's limit).
            far.as_str(),
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: a table sent with its header line under `headers` (a bulk import's
    /// `{"headers":["email","password"],"rows":[…]}`) was read as a flat header list only, and
    /// its rows kept the passwords: the line now names its rows' (or values') places as a
    /// `names` array does, before them too.
    #[test]
    fn a_tables_header_line_under_headers() {
        for (input, want) in [
            (
                r#"{"headers":["email","password"],"rows":[["a@x","pw1"],["b@x","pw2"]]}"#,
                r#"{"headers":["email","password"],"rows":[["a@x","[REDACTED]"],["b@x","[REDACTED]"]]}"#,
            ),
            (
                r#"{"Headers":["user","pin","role"],"values":["ann",1234,"admin"]}"#,
                r#"{"Headers":["user","pin","role"],"values":["ann","[REDACTED]","admin"]}"#,
            ),
            // Sorted keys: the rows before their header line.
            (
                r#"{"data":[["ann","x"]],"headers":["user","api_key"]}"#,
                r#"{"data":[["ann","[REDACTED]"]],"headers":["user","api_key"]}"#,
            ),
            // A flat header list as ever.
            (
                r#"{"rawHeaders":["Authorization","Bearer abc","Host","h"]}"#,
                r#"{"rawHeaders":["Authorization","[REDACTED]","Host","h"]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        for plain in [
            r#"{"headers":["user","region"],"rows":[["ann","eu"]]}"#,
            r#"{"headers":["user","password"],"x":{"rows":[["ann","x"]]}}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: an OAuth token request sent as JSON kept its `code`, which the query
    /// and form rule redacts. `code` alone names countries and statuses, so it goes only in an
    /// object that has a `grant_type`, a `redirect_uri` or a `code_verifier`, or a `client_id`
    /// and a `state`, before it or after it.
    #[test]
    fn an_oauth_code_in_a_json_token_request() {
        for (input, want) in [
            (
                r#"{"grant_type":"authorization_code","code":"c-123","redirect_uri":"https://x/cb"}"#,
                r#"{"grant_type":"authorization_code","code":"[REDACTED]","redirect_uri":"https://x/cb"}"#,
            ),
            (
                r#"{"client_id":"app","client_secret":"s","code":"c-123","redirect_uri":"https://x/cb"}"#,
                r#"{"client_id":"app","client_secret":"[REDACTED]","code":"[REDACTED]","redirect_uri":"https://x/cb"}"#,
            ),
            (
                r#"{"Code":"c-123","code_verifier":"v"}"#,
                r#"{"Code":"[REDACTED]","code_verifier":"[REDACTED]"}"#,
            ),
            (
                r#"[{"code":"c-123","state":"s","client_id":"app"}]"#,
                r#"[{"code":"[REDACTED]","state":"s","client_id":"app"}]"#,
            ),
            (
                r#"{"client_id":"app","state":"s","code":"c-123"}"#,
                r#"{"client_id":"app","state":"s","code":"[REDACTED]"}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        for plain in [
            r#"{"code":"US"}"#,
            r#"{"code":404,"grant_type":"x"}"#,
            r#"{"code":"US","state":"CA","city":"x"}"#,
            r#"{"country":{"code":"US"},"redirect_uri":"https://x/cb"}"#,
            r#"{"code":"c","x":{"grant_type":"y"}}"#,
            r#"{"client_id":"app","code":"SAVE10"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// An OAuth token request's members in camelCase, as JavaScript clients name them
    /// (`grantType`, `redirectUri`, `codeVerifier`, `clientId`), mark its `code` as the
    /// snake_case ones do; `raw_headers`, as long as `redirectUri`, keeps its role.
    #[test]
    fn an_oauth_code_in_a_camel_case_token_request() {
        for (input, want) in [
            (
                r#"{"grantType":"authorization_code","code":"c-123"}"#,
                r#"{"grantType":"authorization_code","code":"[REDACTED]"}"#,
            ),
            (
                r#"{"code":"c-123","redirectUri":"https://x/cb"}"#,
                r#"{"code":"[REDACTED]","redirectUri":"https://x/cb"}"#,
            ),
            (
                r#"{"code":"c-123","codeVerifier":"v"}"#,
                r#"{"code":"[REDACTED]","codeVerifier":"[REDACTED]"}"#,
            ),
            (
                r#"{"clientId":"app","state":"s","code":"c-123"}"#,
                r#"{"clientId":"app","state":"s","code":"[REDACTED]"}"#,
            ),
            (
                r#"{"grant-type":"authorization_code","code":"c-123"}"#,
                r#"{"grant-type":"authorization_code","code":"[REDACTED]"}"#,
            ),
            (
                r#"{"raw_headers":["Authorization","Bearer x"]}"#,
                r#"{"raw_headers":["Authorization","[REDACTED]"]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        for plain in [
            r#"{"clientId":"app","code":"SAVE10"}"#,
            r#"{"code":404,"grantType":"x"}"#,
            r#"{"code":"US","stateCode":"CA"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by a probe: a Kubernetes `Secret`'s `data` (base64 of a private key, a registry's
    /// credentials, a database URL) was kept under names no rule holds. Every value of its
    /// `data` and `stringData` goes, the `kind` before them or after (as `kubectl get -o json`
    /// sorts keys), in a `List` too; their names and other objects' `data` stay.
    #[test]
    fn kubernetes_secrets_lose_their_data() {
        for (input, secrets) in [
            (
                r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"tls"},"type":"kubernetes.io/tls","data":{"tls.crt":"LS0tQ1JU","tls.key":"LS0tLS1CRUdJTiBQUklWQVRF"}}"#,
                &["LS0tQ1JU", "LS0tLS1CRUdJTiBQUklWQVRF"][..],
            ),
            (
                r#"{"apiVersion":"v1","data":{"DATABASE_URL":"cG9zdGdyZXM6Ly9h"},"kind":"Secret","stringData":{"note":"plain text"}}"#,
                &["cG9zdGdyZXM6Ly9h", "plain text"],
            ),
            (
                r#"{"kind":"List","items":[{"kind":"Secret","data":{".dockerconfigjson":"eyJhdXRocyI6e30="}}]}"#,
                &["eyJhdXRocyI6e30="],
            ),
        ] {
            let stored = run(input, None);
            for secret in secrets {
                assert!(!stored.contains(secret), "{input}: {stored}");
            }
            let names = ["tls.key", "DATABASE_URL", ".dockerconfigjson"];
            assert!(names.iter().any(|name| stored.contains(name)), "{stored}");
        }
        for plain in [
            r#"{"kind":"ConfigMap","data":{"mode":"fast"}}"#,
            r#"{"kind":"Service","data":{"mode":"fast"}}"#,
            r#"{"note":"a \"Secret\" word","data":{"mode":"fast"}}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by a probe: a JSON Web Key's private members (`d`, `p`, `q`, `dp`, `dq`, `qi`,
    /// `oth`, and an `oct` key's `k`) were kept, their names being no sensitive keys. They go
    /// in an object that has a `kty`, before them or after them (sorted keys), in a JWKS's
    /// `keys` too; its public members and single letters elsewhere stay.
    #[test]
    fn json_web_keys_lose_their_private_members() {
        for (input, want) in [
            (
                r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#,
                r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"[REDACTED]"}"#,
            ),
            (
                r#"{"kty":"oct","kid":"hmac","k":"GawgguFyGrWKav7AX4VKUg"}"#,
                r#"{"kty":"oct","kid":"hmac","k":"[REDACTED]"}"#,
            ),
            // `kty` after the members, as sorted keys write an RSA key.
            (
                r#"{"d":"X4cTteJY","dp":"G4sPXkc6","dq":"s9lAH9fg","e":"AQAB","kty":"RSA","n":"0vx7agoe","p":"83i-7IvM","q":"3dfOR9cu","qi":"GyM_p6JR"}"#,
                r#"{"d":"[REDACTED]","dp":"[REDACTED]","dq":"[REDACTED]","e":"AQAB","kty":"RSA","n":"0vx7agoe","p":"[REDACTED]","q":"[REDACTED]","qi":"[REDACTED]"}"#,
            ),
            (
                r#"{"k":"GawgguFyGrWKav7AX4VKUg","kid":"hmac","kty":"oct"}"#,
                r#"{"k":"[REDACTED]","kid":"hmac","kty":"oct"}"#,
            ),
            // A JWKS, the second key's `kty` after a member holding an object.
            (
                r#"{"keys":[{"kty":"EC","use":"sig","d":"jpsQnnGQ"},{"alg":"RS256","d":"X4cTteJY","oth":[{"r":"1","d":"2","t":"3"}],"meta":{"a":[1]},"kty":"RSA","e":"AQAB"}]}"#,
                r#"{"keys":[{"kty":"EC","use":"sig","d":"[REDACTED]"},{"alg":"RS256","d":"[REDACTED]","oth":"[REDACTED]","meta":{"a":[1]},"kty":"RSA","e":"AQAB"}]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        // A cut key whose `kty` may follow loses its private members.
        assert_eq!(
            run(r#"{"d":"X4cTteJY","dp":"G4sPXkc6","e":"AQ"#, CUT),
            r#"{"d":"[REDACTED]","dp":"[REDACTED]","e":" …[truncated, 70000 bytes total]"#
        );
        for plain in [
            r#"{"d":"2024-01-01","p":3}"#,
            r#"{"k":"v","q":"search","x":{"kty":"RSA"}}"#,
            r#"{"kty":"RSA","k":"not an oct key's","n":"0vx7agoe","e":"AQAB","kid":"1","alg":"RS256","use":"sig"}"#,
            r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2","y":"x_FEzRu9"}"#,
            r#"[{"d":1},{"kty":"EC"}]"#,
            r#"{"D":"x","kty":"EC","P":"y"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
        // A key in an error's text goes there too, the rest of the text as it came.
        let r = Redactor::default();
        assert_eq!(
            r.redact_error(r#"bad key {"kty":"oct","k":"GawgguFyGrWKav7AX4VKUg"} (rejected)"#),
            r#"bad key {"kty":"oct","k":"[REDACTED]"} (rejected)"#
        );
    }

    /// Found by review: a `content`, `data` or `values` member read before its sensitive name
    /// member was kept. It waits for its name as a `value` does, but is kept when in doubt: a
    /// chat message's `content` is named by nothing, and a long tail or a cut before any name
    /// keeps it.
    #[test]
    fn a_member_named_later_by_its_name() {
        for (input, want) in [
            (
                r#"{"content":"hunter2","name":"DB_PASSWORD"}"#,
                r#"{"content":"[REDACTED]","name":"DB_PASSWORD"}"#,
            ),
            (
                r#"[{"data":{"v":"hunter2"},"type":"x","key":"api_key"},{"data":1,"key":"n"}]"#,
                r#"[{"data":"[REDACTED]","type":"x","key":"api_key"},{"data":1,"key":"n"}]"#,
            ),
            (
                r#"{"fields":[{"values":["hunter2"],"name":"password"},{"values":["ann"],"name":"user"}]}"#,
                r#"{"fields":[{"values":"[REDACTED]","name":"password"},{"values":["ann"],"name":"user"}]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        let tail = "x".repeat(300);
        let chat = format!(
            r#"{{"messages":[{{"content":"hi","role":"user"}},{{"content":"a {tail}","role":"assistant","name":"bot"}},{{"content":"b","role":"user","x":"{tail}","name":"ann"}}]}}"#
        );
        for plain in [
            r#"{"content":"hi","role":"user"}"#,
            r#"{"data":{"id":"1"},"name":"x"}"#,
            chat.as_str(),
        ] {
            assert_eq!(run(plain, None), plain);
        }
        // Cut before any name, a chat message's content stays.
        assert_eq!(
            run(r#"[{"content":"hello there","role":"us"#, CUT),
            r#"[{"content":"hello there","role":" …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"[{"content":"hello there"#, CUT),
            r#"[{"content":"hello …[truncated, 70000 bytes total]"#
        );
        // A `value` waiting keeps its place: a `content` after it does not wait.
        assert_eq!(
            run(r#"{"value":"a","content":"b","name":"pin"}"#, None),
            r#"{"value":"[REDACTED]","content":"b","name":"pin"}"#
        );
    }

    /// The README's limits of lists, late names and OAuth codes, as it states them.
    #[test]
    fn list_limits_as_the_readme_states_them() {
        assert_eq!(
            run(r#"{"headers":["Cookie","Accept"]}"#, None),
            r#"{"headers":["Cookie","[REDACTED]"]}"#
        );
        let filler = "x".repeat(300);
        // A table's header line with a secret's name before another: read as a header list
        // too, the name after it goes.
        assert_eq!(
            run(
                r#"{"headers":["password","user"],"rows":[["x","ann"]]}"#,
                None
            ),
            r#"{"headers":["password","[REDACTED]"],"rows":[["[REDACTED]","ann"]]}"#
        );
        for plain in [
            format!(r#"{{"code":"c-1","note":"{filler}","redirect_uri":"x"}}"#),
            format!(r#"{{"content":"a","note":"{filler}","name":"pin"}}"#),
            r#"{"content":"a","code":"b","name":"pin"}"#.to_owned(),
            // Values before their names: a `rows` array, or another waiting member between.
            r#"{"rows":[["ann","x"]],"columns":["user","pin"]}"#.to_owned(),
            r#"{"data":["ann","x"],"content":"c","names":["user","pin"]}"#.to_owned(),
        ] {
            assert_eq!(run(&plain, None), plain);
        }
    }

    /// Found by review: a string whose dashes are JSON escapes (`\u002d\u002dpassword x`, as an
    /// encoder that escapes `-` writes a command line) was no command line to the scan, which
    /// looked for a plain `-`, and kept its option's or a MySQL client's password.
    #[test]
    fn command_lines_in_strings_whatever_separates_their_words() {
        // A string holding a `-` and no whitespace, nor an escape that may write one, is not
        // read as a command line: every rule reads a password in a word after another.
        for (input, want) in [
            (
                r#"{"cmd":"mysql -phunter2"}"#,
                r#"{"cmd":"mysql -p[REDACTED]"}"#,
            ),
            (
                r#"{"cmd":"mysql\t-phunter2"}"#,
                r#"{"cmd":"mysql\t-p[REDACTED]"}"#,
            ),
            (
                r#"{"cmd":"run\u0020--password\u0020hunter2"}"#,
                r#"{"cmd":"run --password [REDACTED]"}"#,
            ),
            (
                r#"{"cmd":"sshpass\t-p hunter2 ssh db"}"#,
                r#"{"cmd":"sshpass\t-p [REDACTED] ssh db"}"#,
            ),
            (
                r#"{"sku":"SKU-00001","at":"2026-12-06","id":"3f2b8c1e-7d4a-4b9e"}"#,
                r#"{"sku":"SKU-00001","at":"2026-12-06","id":"3f2b8c1e-7d4a-4b9e"}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
    }

    #[test]
    fn escaped_dashes_in_a_string_are_a_command_lines() {
        for (input, want) in [
            (
                r#"{"cmd":"run \u002d\u002dpassword hunter2 db"}"#,
                r#"{"cmd":"run --password [REDACTED] db"}"#,
            ),
            (
                r#"{"cmd":"run -\u002Dapi-key=hunter2"}"#,
                r#"{"cmd":"run --api-key=[REDACTED]"}"#,
            ),
            (
                r#"{"cmd":"mysql -uroot \u002dphunter2 shop"}"#,
                r#"{"cmd":"mysql -uroot -p[REDACTED] shop"}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Hostile: megabytes of escaped dashes and options in one string stay linear.
        for unit in [
            r"\u002d",
            r"\u002d\u002dpin \u002d\u002dpin '",
            r"mysql \u002dp ",
            r"\u2014\u2013pin \u2014pin '",
            "\u{2014}\u{2014}pin \u{2013}pin '",
        ] {
            let body = format!(
                r#"{{"a":"--pin 1","t":"{}"}}"#,
                unit.repeat((1 << 20) / unit.len())
            );
            let started = std::time::Instant::now();
            let out = run(&body, None);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
            assert!(
                out.starts_with(r#"{"a":"--pin [REDACTED]","t":""#),
                "{unit:?}"
            );
        }
        // Escaped dashes of anything else stay as they came.
        for plain in [
            r#"{"t":"well\u002dknown \u002d\u002d fine","d":"2026\u002d12\u002d06"}"#,
            r#"{"cmd":"ssh \u002dp 2222 host"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: JSON quoted inside a string (webhooks, SQS and SNS messages, a
    /// Kubernetes env kept as text) kept the values its sibling name members name, which the
    /// pair rules cannot see. Such a string is redacted as the JSON document it is, up to
    /// three documents deep.
    #[test]
    fn json_quoted_in_a_string_is_redacted_as_json() {
        let cases = [
            (
                r#"{"env":"[{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"},{\"name\":\"PORT\",\"value\":\"80\"}]"}"#,
                r#"{"env":"[{\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"},{\"name\":\"PORT\",\"value\":\"80\"}]"}"#,
            ),
            (
                r#"{"payload":"{\"password\":\"hunter2\"}"}"#,
                r#"{"payload":"{\"password\":\"[REDACTED]\"}"}"#,
            ),
            // The value before its name, and whitespace, which goes with the redaction.
            (
                r#"{"Message":"{ \"Parameters\": [ {\"ParameterValue\": \"hunter2\", \"ParameterKey\": \"DbPassword\"} ] }"}"#,
                r#"{"Message":"{\"Parameters\":[{\"ParameterValue\":\"[REDACTED]\",\"ParameterKey\":\"DbPassword\"}]}"}"#,
            ),
            // Quoted twice: an SNS notification in an SQS message.
            (
                r#"{"Body":"{\"Message\":\"{\\\"name\\\":\\\"api_key\\\",\\\"value\\\":\\\"k-123\\\"}\"}"}"#,
                r#"{"Body":"{\"Message\":\"{\\\"name\\\":\\\"api_key\\\",\\\"value\\\":\\\"[REDACTED]\\\"}\"}"}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Cut inside the quoted document: the value waiting for its name goes.
        let out = run(r#"{"env":"[{\"value\":\"hunter2\",\"na"#, CUT);
        assert!(!out.contains("hunter2"), "{out}");
        // Three documents deep.
        let deep = r#"{"a":"{\"b\":\"{\\\"c\\\":\\\"{\\\\\\\"name\\\\\\\":\\\\\\\"pin\\\\\\\",\\\\\\\"value\\\\\\\":\\\\\\\"1234\\\\\\\"}\\\"}\"}"}"#;
        let out = run(deep, None);
        assert_eq!(out, deep.replace("1234", "[REDACTED]"));
        // Quoted JSON with nothing to redact stays as it came, whitespace and all; so does a
        // string that only looks like JSON.
        for plain in [
            r#"{"env":"[{\"name\":\"PORT\",\"value\":\"80\"}]"}"#,
            r#"{"payload":"{ \"user\": \"ann\",\n  \"n\": [1, 2] }"}"#,
            r#"{"t":"[x] done: {a}"}"#,
            r#"{"t":"{\"a\":1} and more: {\"b\":2}"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: a JSON document with text around it in a string (a log line, an
    /// error) was read only by the pair rules, so a value its sibling name member names
    /// stayed. Each document in the text is read as JSON; the text around it stays as it came.
    #[test]
    fn json_with_text_around_it_in_a_string_is_redacted_as_json() {
        let cases = [
            (
                r#"{"log":"request failed: {\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"} (retrying)"}"#,
                r#"{"log":"request failed: {\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"} (retrying)"}"#,
            ),
            // The value before its name, in an array, spaced: the document is written
            // compactly, the brackets around it are text.
            (
                r#"{"msg":"env: [{ \"value\": \"hunter2\", \"name\": \"API_TOKEN\" }] loaded"}"#,
                r#"{"msg":"env: [{\"value\":\"[REDACTED]\",\"name\":\"API_TOKEN\"}] loaded"}"#,
            ),
            // Two documents, one with a secret; a text that is not JSON before them.
            (
                r#"{"log":"a {b} {\"name\":\"PORT\",\"value\":\"80\"} {\"key\":\"pin\",\"value\":\"1234\"}."}"#,
                r#"{"log":"a {b} {\"name\":\"PORT\",\"value\":\"80\"} {\"key\":\"pin\",\"value\":\"[REDACTED]\"}."}"#,
            ),
            // A document that stops being JSON holds a whole one that names its value: it is
            // stored compactly up to its last token, the text from there as it came.
            (
                r#"{"log":"x {\"a\": {\"name\":\"pin\",\"value\":\"1234\"}, oops} y"}"#,
                r#"{"log":"x {\"a\":{\"name\":\"pin\",\"value\":\"[REDACTED]\"}, oops} y"}"#,
            ),
            // A sensitive key inside such a document went by the pair rules already, and
            // still goes.
            (
                r#"{"log":"retry {\"user\":\"ann\",\"password\":\"hunter2\"} later"}"#,
                r#"{"log":"retry {\"user\":\"ann\",\"password\":[REDACTED]} later"}"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Cut inside the document: the value waiting for its name goes.
        let out = run(r#"{"log":"failed: {\"value\": \"hunter2\", \"na"#, CUT);
        assert!(!out.contains("hunter2"), "{out}");
        // Documents with nothing to redact, and text that only looks like JSON, stay as they
        // came, byte for byte.
        for plain in [
            r#"{"log":"got { \"name\": \"PORT\", \"value\": \"80\" } ok"}"#,
            r#"{"t":"a {\"x\": 1} and {b} and {\"unclosed: x"}"#,
            r#"{"t":"{\"a\":1} and more: {\"b\":2}"}"#,
            r#"{"t":"a {\"name\":\"password\"} b: {\"value\": 3 c"}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// A value whose name has not come yet is redacted when in doubt: the body is cut or
    /// stops before the object closes.
    #[test]
    fn a_value_waiting_for_its_name_goes_when_the_body_stops() {
        assert_eq!(
            run(r#"[{"value":"hunter2","na"#, CUT),
            r#"[{"value":"[REDACTED]", …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"[{"value":"hunter2","name":"x"} x"#, None),
            r#"[{"value":"hunter2","name":"x"} …[invalid JSON at byte 32]"#
        );
        assert_eq!(
            run(r#"[{"value":"hunter2" "#, None),
            r#"[{"value":"[REDACTED]" …[invalid JSON at byte 20]"#
        );
        assert_eq!(
            run(r#"[{"value":{"k":["hunter2","#, CUT),
            r#"[{"value":"[REDACTED]" …[truncated, 70000 bytes total]"#
        );
        assert_eq!(
            run(r#"[{"value":{"k":"hunter2"}}"#, None),
            r#"[{"value":{"k":"hunter2"}} …[invalid JSON at byte 26]"#
        );
        // Named, but not yet by a sensitive name: the value stays.
        assert_eq!(
            run(r#"[{"name":"Ann","value":"x","#, CUT),
            r#"[{"name":"Ann","value":"x", …[truncated, 70000 bytes total]"#
        );
    }

    /// A value followed by more than a short run of output before its object's name is
    /// decided without it: redacted, since no name has come.
    #[test]
    fn a_value_waits_for_its_name_only_so_long() {
        let filler = "x".repeat(300);
        assert_eq!(
            run(
                &format!(r#"{{"value":"a","note":"{filler}","name":"Ann"}}"#),
                None
            ),
            format!(r#"{{"value":"[REDACTED]","note":"{filler}","name":"Ann"}}"#)
        );
        let near = "x".repeat(200);
        let plain = format!(r#"{{"value":"a","note":"{near}","name":"Ann"}}"#);
        assert_eq!(run(&plain, None), plain);
        // A second value waiting in an inner object settles the outer one first.
        assert_eq!(
            run(
                r#"{"value":"a","x":{"value":"b","name":"pin"},"name":"Ann"}"#,
                None
            ),
            r#"{"value":"[REDACTED]","x":{"value":"[REDACTED]","name":"pin"},"name":"Ann"}"#
        );
    }

    /// Found by review: a MySQL client's arguments given as a JSON array (a container's
    /// `command` and `args`, an argv logged as a list) were no command line, and the element
    /// after `-p`, or glued to it, kept the password; so did a long option's value in the next
    /// element.
    #[test]
    fn a_mysql_clients_arguments_as_an_array() {
        for (input, want) in [
            (
                r#"{"cmd":["mysql","-uroot","-phunter2","db"]}"#,
                r#"{"cmd":["mysql","-uroot","-p[REDACTED]","db"]}"#,
            ),
            (
                r#"["mysqldump","-p","hunter2"]"#,
                r#"["mysqldump","-p","[REDACTED]"]"#,
            ),
            (
                r#"["/usr/bin/mariadb","-h","db","-p","a b","-e","select 1"]"#,
                r#"["/usr/bin/mariadb","-h","db","-p","[REDACTED]","-e","select 1"]"#,
            ),
            (
                r#"{"args":["mysql.exe","\u002dphunter2"]}"#,
                r#"{"args":["mysql.exe","-p[REDACTED]"]}"#,
            ),
            // A container's command names the client, its args give the password.
            (
                r#"{"name":"backup","command":["mysqldump"],"args":["-uroot","-phunter2","shop"]}"#,
                r#"{"name":"backup","command":["mysqldump"],"args":["-uroot","-p[REDACTED]","shop"]}"#,
            ),
            (
                r#"{"spec":{"containers":[{"command":["mysql"],"args":["-p","hunter2"]}]}}"#,
                r#"{"spec":{"containers":[{"command":["mysql"],"args":["-p","[REDACTED]"]}]}}"#,
            ),
            // A long option and its value, any command's.
            (
                r#"{"args":["app","--password","hunter2","--db-password","a b","-v"]}"#,
                r#"{"args":["app","--password","[REDACTED]","--db-password","[REDACTED]","-v"]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Other commands' `-p`, a bare `-p` before an option, MySQL's `-P`, an option's value
        // that is an option, and a client in another container or another list stay.
        for plain in [
            r#"["ssh","-p","2222"]"#,
            r#"["docker","run","-p","8080:80","mysql:8"]"#,
            r#"{"cmd":["docker","run","-d","-p","3306:3306","mysql"]}"#,
            r#"["mysql","-p","-h","db"]"#,
            r#"["mysql","-h","db","-P","3306","shop"]"#,
            r#"["app","--password","--verbose"]"#,
            r#"{"a":{"command":["mysql"]},"b":{"args":["-p","2222"]}}"#,
            r#"[{"command":["mysql"]},{"args":["-p","2222"]}]"#,
            r#"[["mysql","db"],["ssh","-p","2222"]]"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
        // Cut by the cap inside the password: none of it is kept.
        let out = run(r#"{"cmd":["mysql","-phunter2"#, CUT);
        assert!(!out.contains("hunter"), "{out}");
        let out = run(r#"{"cmd":["mysql","-p","hunter2"#, CUT);
        assert!(!out.contains("hunter"), "{out}");
    }

    /// Found by review: an array's element was a long option whatever followed its dashes, so
    /// a list's prose item opened with a dash took the next item for its value
    /// (`["— PIN","1234"]`, `["– token","x"]`, `["-- my password","x"]`). An element is a
    /// long option only as a command line's is: a name of a key's characters after the
    /// dashes.
    #[test]
    fn prose_items_opened_with_a_dash_are_no_options() {
        for plain in [
            "{\"items\":[\"\u{2014} PIN\",\"1234\"]}",
            "{\"items\":[\"\u{2013} token\",\"x\"]}",
            r#"{"items":["-- my password","x"]}"#,
            r#"{"items":["\u2014 password reset","x"]}"#,
            r#"{"items":["--password?","x"]}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
        // Options whose names hold a key's characters still take their values.
        assert_eq!(
            run(
                r#"["app","--db.password","x","--api_key","y","\u2014pin","1"]"#,
                None
            ),
            r#"["app","--db.password","[REDACTED]","--api_key","[REDACTED]","\u2014pin","[REDACTED]"]"#
        );
    }

    /// Found by review: fd50321's look at an array's string before decoding it split a path at
    /// a `\` that starts an escape, so a client whose path has an escaped `/` or letter
    /// (`"/usr/bin\u002fmysql"`, as encoders that escape `/` write it) was no longer read
    /// as one, and its `-p` kept the password (decoded first, it was one before fd50321).
    #[test]
    fn a_client_named_after_an_escape_in_an_array() {
        for (input, want) in [
            (
                r#"["/usr/bin\u002fmysql","-phunter2"]"#,
                r#"["/usr/bin\u002fmysql","-p[REDACTED]"]"#,
            ),
            (
                r#"{"command":["/usr/bin/\u006dysqldump"],"args":["-p","hunter2"]}"#,
                r#"{"command":["/usr/bin/\u006dysqldump"],"args":["-p","[REDACTED]"]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Other escaped paths' words stay.
        for plain in [
            r#"["C:\\users","-p","2222"]"#,
            r#"["a\u002fuser","-p","2222"]"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// Found by review: JSON with sorted keys (Go's maps, Python's `sort_keys`, PostgreSQL's
    /// `jsonb`) writes a container's `args` before its `command`, and Docker's API its `Cmd`
    /// before its `Entrypoint`: the command's password options in the array before its name
    /// were kept.
    #[test]
    fn a_commands_arguments_before_its_name() {
        for (input, expected) in [
            (
                r#"{"args":["-phunter2"],"command":["mysql"]}"#,
                r#"{"args":["-p[REDACTED]"],"command":["mysql"]}"#,
            ),
            (
                r#"{"args":["--host","db","-p","hunter2"],"command":["/usr/bin/mysqldump"]}"#,
                r#"{"args":["--host","db","-p","[REDACTED]"],"command":["/usr/bin/mysqldump"]}"#,
            ),
            (
                r#"{"Cmd":["-a","hunter2"],"Entrypoint":["redis-cli"],"Image":"redis"}"#,
                r#"{"Cmd":["-a","[REDACTED]"],"Entrypoint":["redis-cli"],"Image":"redis"}"#,
            ),
            // A number given as the password; the subcommand before the option.
            (
                r#"{"args":["-a",1234],"command":["redis-cli"]}"#,
                r#"{"args":["-a","[REDACTED]"],"command":["redis-cli"]}"#,
            ),
            (
                r#"{"args":["login","-u","ann","-p","pw"],"command":["docker"]}"#,
                r#"{"args":["login","-u","ann","-p","[REDACTED]"],"command":["docker"]}"#,
            ),
            (
                r#"{"args":["-s","-u","ann:pw"],"command":["curl","-v"]}"#,
                r#"{"args":["-s","-u","ann:[REDACTED]"],"command":["curl","-v"]}"#,
            ),
            // Several arrays before the command's, in an object inside others.
            (
                r#"[{"x":{"args":["-p","a"],"env":["-v"],"more":["-pb"],"command":["mysql"]}}]"#,
                r#"[{"x":{"args":["-p","[REDACTED]"],"env":["-v"],"more":["-p[REDACTED]"],"command":["mysql"]}}]"#,
            ),
            // A value named after the array, its place moved by it.
            (
                r#"{"args":["-p","x"],"value":"v","command":["mysql"],"name":"pin"}"#,
                r#"{"args":["-p","[REDACTED]"],"value":"[REDACTED]","command":["mysql"],"name":"pin"}"#,
            ),
            // A value named before the command, moving the array.
            (
                r#"{"value":"v","args":["-p","x"],"name":"password","command":["mysql"]}"#,
                r#"{"value":"[REDACTED]","args":["-p","[REDACTED]"],"name":"password","command":["mysql"]}"#,
            ),
            // In a GraphQL request's variables, read before its query.
            (
                r#"{"variables":{"args":["-p","x"],"pw":"y","command":["mysql"]},"query":"mutation { f(password: $pw) }"}"#,
                r#"{"variables":{"args":["-p","[REDACTED]"],"pw":"[REDACTED]","command":["mysql"]},"query":"mutation { f(password: [REDACTED]) }"}"#,
            ),
        ] {
            assert_eq!(run(input, None), expected, "{input}");
        }
        for plain in [
            // No command that takes a password, or one in another object.
            r#"{"args":["-p","2222"],"command":["ssh"]}"#,
            r#"{"args":["-p","8080:80"],"command":["docker","run"]}"#,
            r#"{"args":["-p","x"],"more":{"command":["mysql"]}}"#,
            r#"{"a":{"args":["-p","x"]},"command":["mysql"]}"#,
            r#"{"args":["-p","x"]}"#,
            r#"{"args":"-p x","command":["mysql"]}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
    }

    /// The README's limits of argv arrays, as it states them: a client's arguments in an array
    /// of its own or far before its name stay, an array after a client's in its object is its
    /// arguments whatever it holds, and prose that glues an em dash to a key's name loses the
    /// next word.
    #[test]
    fn argv_limits_as_the_readme_states_them() {
        let far = format!(
            r#"{{"args":["-phunter2"],"note":"{}","command":["mysql"]}}"#,
            "x".repeat(ORPHAN_TAIL)
        );
        for plain in [
            r#"["mysql",["-p","x"]]"#,
            far.as_str(),
            r#"{"a":["-px"],"b":["-v"],"c":["-w"],"d":["-y"],"e":["-z"],"f":["mysql"]}"#,
        ] {
            assert_eq!(run(plain, None), plain);
        }
        assert_eq!(
            run(r#"{"db":["mysql","postgres"],"flags":["-prod"]}"#, None),
            r#"{"db":["mysql","postgres"],"flags":["-p[REDACTED]"]}"#
        );
        assert_eq!(
            run(r#"{"log":"the \u2014password flag"}"#, None),
            "{\"log\":\"the \u{2014}password [REDACTED]\"}"
        );
    }

    /// The re-reads (arguments before their command, values before their names) and the
    /// late redactions (a value's name, a GraphQL query after its variables) each move the
    /// output after them, and the places noted in it must move too: thousands of objects
    /// mixing them in random orders and nestings, whole and cut at a random place, give valid
    /// JSON when whole, and never a panic.
    #[test]
    fn late_rewrites_in_any_order_keep_the_output_json() {
        const MEMBERS: [&str; 18] = [
            r#""args":["-p","x1"]"#,
            r#""command":["mysql"]"#,
            r#""Cmd":["-a","x2"]"#,
            r#""Entrypoint":["redis-cli"]"#,
            r#""data":["ann","x3"]"#,
            r#""data":[["a","x4"]]"#,
            r#""names":["user","password"]"#,
            r#""headers":["email","pin"]"#,
            r#""rows":[["a","x5"]]"#,
            r#""value":"x6""#,
            r#""name":"token""#,
            r#""name":"ann""#,
            r#""content":"x7""#,
            r#""code":"x8""#,
            r#""grant_type":"authorization_code""#,
            r#""pw":"x9""#,
            r#""note":"é, and more text é""#,
            r#""flags":["-v","--password","x10"]"#,
        ];
        /// An object of up to six members, some of them objects (or GraphQL variables).
        fn object(next: &mut impl FnMut(usize) -> usize, depth: usize) -> String {
            let members: Vec<String> = (0..next(6) + 1)
                .map(|k| match (next(10), depth < 3) {
                    (0, true) => format!(r#""o{k}":{}"#, object(next, depth + 1)),
                    (1 | 2, true) => format!(r#""variables":{}"#, object(next, depth + 1)),
                    (3 | 4, _) => r#""query":"mutation { f(password: $pw) }""#.to_owned(),
                    _ => MEMBERS[next(MEMBERS.len())].to_owned(),
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        // xorshift, seeded: the same objects every run.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..10_000 {
            let doc = object(&mut next, 0);
            let out = run(&doc, None);
            assert!(
                serde_json::from_str::<serde_json::Value>(&out).is_ok(),
                "in: {doc}\nout: {out}"
            );
            let mut cut = next(doc.len() + 1);
            while !doc.is_char_boundary(cut) {
                cut -= 1;
            }
            run(&doc[..cut], CUT);
        }
    }

    /// Hostile JSON stays linear: a waiting value is moved at most once, by at most a short
    /// run of output, however many values wait, nest or are named late.
    #[test]
    fn hostile_json_stays_linear() {
        for (open, unit, close) in [
            ("[", r#"{"value":"a","name":"password"},"#, "1]"),
            ("[", r#"{"value":[1],"n":1,"name":"pin"},"#, "1]"),
            ("", r#"{"value":1,"a":"#, "1"),
            ("", r#"{"name":"x","value":1,"a":[{"Value":{"k":"#, "1"),
            ("", r#"{"value":"a","b":["#, "1"),
            (
                "[",
                r#"{"key":"token","value":{"name":"pin","value":["#,
                "1",
            ),
            // Argv arrays: clients, bare `-p`s and long options, nested and in objects.
            ("[", r#""mysql","-p","x","-px","--pin","#, "1]"),
            ("[", r#"["mysql","-px",["-p","#, "1"),
            ("[", r#"{"command":["mysql"],"args":["-p","x"],"#, "1]"),
            ("", r#"{"args":["-p","x"],"c":["mysql"],"a":"#, "1"),
            (
                "[",
                r#"{"a":["-v"],"b":["-w"],"c":["-y"],"d":["-z"],"e":["-p","x"],"f":["mysql"]},"#,
                "1]",
            ),
            ("", r#"{"a":["mysql","-px",{"b":["-p",["#, "1"),
            ("[", r#""a\u002fu\u002fmysql","-p","#, "1]"),
            // Lists of pairs, flat header lists, names by place, late names, OAuth codes.
            ("[", r#"["password","a"],["token",["#, "1"),
            ("", r#"{"rawHeaders":["Cookie","a","#, "1"),
            ("[", r#"{"names":["a","pin"],"rows":[["x","1"],"#, "1"),
            (
                "[",
                r#"{"content":"a","data":{"values":"b","name":"pin"},"key":"token"},"#,
                "1]",
            ),
            (
                "[",
                r#"{"code":"a","client_id":"b","state":"c"},{"code":{"x":"#,
                "1",
            ),
        ] {
            let n = (128 << 10) / unit.len();
            let mut text = String::from(open);
            text.push_str(&unit.repeat(n));
            text.push_str(close);
            let started = std::time::Instant::now();
            let out = run(&text, None);
            let took = started.elapsed();
            assert!(took.as_secs() < 2, "{unit:?}: {took:?}");
            assert!(out.contains("[REDACTED]"), "{unit:?}");
        }
        // One value, then a long tail before the name, at each of many depths.
        let mut text = String::new();
        for _ in 0..200 {
            text.push_str(r#"{"value":"a","x":""#);
            text.push_str(&"y".repeat(600));
            text.push_str(r#"","n":"#);
        }
        text.push('1');
        for _ in 0..200 {
            text.push_str(r#","name":"token"}"#);
        }
        let out = run(&text, None);
        assert!(!out.contains(r#""value":"a""#), "{}", &out[..100]);
        // Arguments before their command's name at each of many depths, each read again.
        let mut text = String::new();
        for _ in 0..60 {
            text.push_str(r#"{"args":["-p","x"],"n":"#);
        }
        text.push('1');
        for _ in 0..60 {
            text.push_str(r#","command":["mysql"]}"#);
        }
        let out = run(&text, None);
        assert!(!out.contains(r#""-p","x""#), "{out}");
        assert_eq!(out.matches("[REDACTED]").count(), 60);
    }

    /// Hostile quoted documents stay linear: each level of quoting is read as JSON at most
    /// [`QUOTED_DEPTH`] deep, and a string that only starts like a document is given up where
    /// it stops being one.
    #[test]
    fn hostile_quoted_json_stays_linear() {
        // Documents quoted inside each other, deeper than the bound, many times over.
        let mut quoted = r#"{"name":"pin","value":"1234","n":"password=x"}"#.to_owned();
        for _ in 0..6 {
            let mut s = String::new();
            push_json_string(&mut s, &format!(r#"{{"m":{quoted}}}"#));
            quoted = s;
        }
        let unit = format!(r#"{{"m":{quoted}}},"#);
        let mut cases = vec![format!("[{}1]", unit.repeat((256 << 10) / unit.len()))];
        for unit in [
            "[",
            "{\\\"a\\\":",
            "[{\\\"value\\\":1,\\\"b\\\":[",
            "{\\\"value\\\":\\\"{\\\\\\\"k\\\\\\\":[",
            "[\\\"{\\\\\\\"a\\\\\\\":1} x\\\",",
            // Documents with text around them: never closed, given up at once, given up
            // with whole ones inside, each naming its value.
            "x {\\\"a\\\":",
            "{\\\" ",
            "{\\\"a\\\":[{\\\"b\\\":1}, x ",
            "{\\\"a\\\":{\\\"name\\\":\\\"pin\\\",\\\"value\\\":1},\\\"b\\\":",
            "{\\\"value\\\":\\\"a\\\",\\\"key\\\":\\\"pin\\\"} ",
            "a {\\\"m\\\":\\\"{\\\\\\\"value\\\\\\\":1,\\\\\\\"name\\\\\\\":\\\\\\\"pin\\\\\\\"} x\\\"} ",
            // A `{"` of text before each, the search going back into its last string; each
            // stopping after a named value.
            "{\\\"x {",
            "{\\\"a\\\":\\\"{\\\"name\\\":\\\"pin\\\",\\\"value\\\":1} ",
            "{\\\"name\\\":\\\"pin\\\",\\\"value\\\":1, x ",
        ] {
            let text = unit.repeat((256 << 10) / unit.len());
            cases.push(format!(r#"{{"t":"{text}: password=x"}}"#));
        }
        for text in cases {
            let started = std::time::Instant::now();
            let out = run(&text, None);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{}: {took:?}", &text[..40]);
            assert!(out.contains("[REDACTED]"), "{}", &text[..40]);
        }
    }

    #[test]
    fn surrogate_pairs_decode() {
        let mut out = String::new();
        decode_escapes(r"a\ud83d\ude00b\ud800c\u00", &mut out);
        assert_eq!(out, "a\u{1F600}b\u{FFFD}c");
    }

    /// Found by a probe on 2026-12-07: in a JSON array read as a command's words, a long
    /// option written with one dash, as Go's `flag` package takes them, kept its value (in
    /// text, and in a string, it was read).
    #[test]
    fn a_one_dash_long_option_in_an_argv() {
        for (input, want) in [
            (
                r#"["./server","-token","abc123","-port","8080"]"#,
                r#"["./server","-token","[REDACTED]","-port","8080"]"#,
            ),
            (
                r#"{"command":["/app/migrate","-api-key","hunter2XYZ"]}"#,
                r#"{"command":["/app/migrate","-api-key","[REDACTED]"]}"#,
            ),
        ] {
            assert_eq!(run(input, None), want, "{input}");
        }
        // Short options, an option's value that is an option, a short option glued to its
        // value, and other names stay.
        for plain in [
            r#"["ls","-la","token"]"#,
            r#"["app","-verbose","yes"]"#,
            r#"["app","-token","-v"]"#,
            r#"["tool","-ptoken1","x"]"#,
            r#"["app","-pw","x"]"#,
            r#"["app","-passwords-file","f"]"#,
        ] {
            assert_eq!(run(plain, None), plain, "{plain}");
        }
    }

    /// Found on 2026-12-07 beside the YAML one: a JSON `Secret`'s
    /// `last-applied-configuration` annotation, a JSON document quoted in a string, kept the
    /// values of its `data`.
    #[test]
    fn a_quoted_secrets_data_goes() {
        let input = r#"{"apiVersion":"v1","data":{"db_url":"cG9zdGdyZXM="},"kind":"Secret","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"db_url\":\"cG9zdGdyZXM=\"},\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"}}\n"},"name":"db"}}"#;
        let stored = run(input, None);
        assert!(!stored.contains("cG9zdGdyZXM="), "{stored}");
        assert_eq!(
            stored,
            r#"{"apiVersion":"v1","data":{"db_url":"[REDACTED]"},"kind":"Secret","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"data\":{\"db_url\":\"[REDACTED]\"},\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"}}"},"name":"db"}}"#
        );
        // Another kind's stays as it came.
        let config = r#"{"kind":"ConfigMap","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"mode\":\"fast\"},\"kind\":\"ConfigMap\"}\n"}}}"#;
        assert_eq!(run(config, None), config);
    }
}
