//! Free text: `text/*` and XML bodies, multipart text fields, error texts, and the tail of a
//! value cut by truncation.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::html::redact_form_fields;
use super::json::{decode_escapes, redact_json_document};
use super::keys::{KeyRules, dropped_from_key, is_option_dash, is_unicode_dash};
use super::markup::{
    Decoded, Spelling, char_ref, char_ref_wrapped, element_open_at, end_tag, go_escape,
    whole_name_len,
};
use super::printed::blanks;
use super::redactor::Rules;
use super::values::ValueRules;

/// The key and separator of `key: value` / `key=value` pairs in free text (logs, `.env`
/// files, YAML, JSON-ish text, `Debug` prints). Only the key is matched so that every key is
/// seen, even one inside the value of another; [`value_len`] decides where a sensitive value
/// ends. A key may hold the characters keys lose when normalized, Unicode's too (`api‐key`,
/// `pass\u{AD}word`, see [`dropped_from_key`]), be a path (`user[password]`) and hold JSON
/// escapes (`pass\u0077ord`, or `\"password\"` in JSON quoted inside a string), decoded before
/// it is looked up. Its closing quote may be a character reference (`&quot;token&quot;: …`,
/// JSON escaped into HTML), its `&` written as Go's encoding/json writes it too
/// (`\u0026quot;`), or a backquote, as MySQL quotes a column's name (``set `api_token` = …``,
/// Laravel's `QueryException` quotes its SQL so).
///
/// The pairs are found by [`KeySeparators`], which finds exactly this pattern's matches
/// without running it; the pattern stays as their definition, and a test holds the scanner
/// to it.
#[cfg(test)]
static KEY_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"((?:(?-u:\b)|\\)[A-Za-z0-9_.\[\]\\\-\x{85}\x{A0}\x{AD}\x{1680}\x{180E}\x{2000}-\x{2015}\x{2028}\x{2029}\x{202F}\x{205F}-\x{2064}\x{2212}\x{3000}\x{FE58}\x{FE63}\x{FEFF}\x{FF0D}]{2,64})(?:["'`]|(?:&|\\u0026)(?:amp;)?(?i:quot|apos|#0*3[49]|#x0*2[27]);?)?[ \t]*[:=][ \t]*"#,
    )
    .expect("key pattern is valid")
});

/// The characters of an element's name after its first: XML's ASCII ones, and the Unicode
/// dashes and invisible characters a key loses ([`is_unicode_dash`], see [`dropped_from_key`]; a
/// test holds the two sets equal), as a word processor
/// or a chat client writes `api-key` (`<api‐key>`, U+2010). Unicode's spaces are not among
/// them: in a tag they end the name.
const ELEMENT_NAME_TAIL: &str = r"[A-Za-z0-9_.:\-\x{AD}\x{200B}-\x{2015}\x{2060}-\x{2064}\x{2212}\x{FE58}\x{FE63}\x{FEFF}\x{FF0D}]*";

/// [`ELEMENT_NAME_TAIL`] without its Unicode characters. A pattern of one of them is run on a
/// text only when the text holds one ([`start_tags`]): with them the patterns are no longer
/// one-pass, and cost an HTML page 13% more (3.2 million instructions on 64 KiB).
const ASCII_ELEMENT_NAME_TAIL: &str = r"[A-Za-z0-9_.:\-]*";

/// The start tag of an XML or HTML element (`<password>`, `<wsse:Password Type="…">`, attributes
/// on the next line); the name is the first group, the tag's `>` the second.
fn xml_start_tag(name_tail: &str) -> Regex {
    Regex::new(&format!(r"<([A-Za-z_]{name_tail})(?:\s[^>]*)?(>)")).expect("xml pattern is valid")
}

/// A start tag as [`xml_start_tag`], its `<` written as Go's encoding/json writes it
/// (`\u003cpassword\u003e`), as a character reference (`&lt;password&gt;`, see
/// [`markup`](super::markup)) or, with `lsaquo`, as `‹` (U+2039, what typographic substitution
/// makes of `<`). A pattern of its own: folded into the plain one, it made every plain tag of an
/// HTML page cost twice as much to match.
fn escaped_start_tag(name_tail: &str, lsaquo: &str) -> Regex {
    const REFERENCE: &str = r"(?:&|\\u0026)(?i:amp;?){0,2}";
    Regex::new(&format!(
        r"(?:\\u003[cC]{lsaquo}|{REFERENCE}(?i:lt|#0*60|#x0*3c);?)([A-Za-z_]{name_tail})(?:\s[^>]*?)?(>|\\u003[eE]|{REFERENCE}(?i:gt|#0*62|#x0*3e);?)"
    ))
    .expect("escaped xml pattern is valid")
}

static XML_START_TAG: LazyLock<Regex> = LazyLock::new(|| xml_start_tag(ELEMENT_NAME_TAIL));
static ESCAPED_START_TAG: LazyLock<Regex> =
    LazyLock::new(|| escaped_start_tag(ELEMENT_NAME_TAIL, r"|\x{2039}"));
static ASCII_XML_START_TAG: LazyLock<Regex> =
    LazyLock::new(|| xml_start_tag(ASCII_ELEMENT_NAME_TAIL));
static ASCII_ESCAPED_START_TAG: LazyLock<Regex> =
    LazyLock::new(|| escaped_start_tag(ASCII_ELEMENT_NAME_TAIL, ""));

/// The start tag patterns for `text`: those that read the Unicode dashes of a name and `‹` only
/// when it holds one of them (each starts with one of three bytes in UTF-8: a text without them
/// is told by one `memchr3`).
fn start_tags(text: &str) -> [&'static Regex; 2] {
    let unicode = memchr::memchr3(0xC2, 0xE2, 0xEF, text.as_bytes()).is_some()
        && text.chars().any(|c| c == '\u{2039}' || is_unicode_dash(c));
    if unicode {
        [&XML_START_TAG, &ESCAPED_START_TAG]
    } else {
        [&ASCII_XML_START_TAG, &ASCII_ESCAPED_START_TAG]
    }
}

/// Redacts free text that may be JSON: a `text/plain` body (what `fetch` and `sendBeacon` send
/// a string as), a multipart text field, an error text. One JSON document, or when `cut` is
/// true the start of one, goes through the JSON redactor; anything else through
/// [`redact_text_body`], the JSON documents with text around them redacted as JSON first.
/// `yaml` when the text is a YAML body's (see [`redact_text_body`]).
pub(super) fn redact_text_or_json(
    rules: &Rules,
    text: &str,
    cut: bool,
    yaml: bool,
    out: &mut String,
) {
    let looks_like_json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
    if looks_like_json && redact_json_document(rules, text, cut, out) {
        return;
    }
    redact_text(rules, text, cut, yaml, out);
}

/// Redacts free text that is no JSON document: the JSON documents with text around them are
/// redacted as JSON, then the whole by [`redact_text_body`].
pub(super) fn redact_text(rules: &Rules, text: &str, cut: bool, yaml: bool, out: &mut String) {
    let documents = super::embedded::redact_documents(rules, text, cut, 0);
    redact_text_body(
        documents.as_deref().unwrap_or(text),
        cut,
        yaml,
        &rules.keys,
        &rules.values,
        &rules.replacement,
        out,
    );
}

/// Redacts a text body: value patterns, then HTML form fields, `key=value` pairs and XML
/// elements whose key is sensitive. When `cut` is true the text ends mid-body, and its last word is dropped too (see
/// [`trim_cut_tail`]). When `yaml` is true the text is a YAML body's, whose plain values run
/// on over the lines indented more than their key; prose keeps those lines (`token: expired`
/// then `  at …` in an error).
pub(super) fn redact_text_body(
    text: &str,
    cut: bool,
    yaml: bool,
    keys: &KeyRules,
    values: &ValueRules,
    replacement: &str,
    out: &mut String,
) {
    let mut keybuf = String::new();
    let redacted = redact_structure(
        values.redact(text),
        Reading { cut, yaml },
        keys,
        &mut keybuf,
        replacement,
    );
    out.push_str(if cut {
        trim_cut_tail(&redacted)
    } else {
        &redacted
    });
}

/// Whether a key of free text is sensitive, with its JSON escapes decoded.
fn is_sensitive_key(key: &str, keys: &KeyRules, keybuf: &mut String) -> bool {
    let key = key.trim_end_matches('\\');
    if !key.contains('\\') {
        return keys.is_sensitive(key, keybuf);
    }
    let mut decoded = String::new();
    decode_escapes(key, &mut decoded);
    // A backslash that starts no JSON escape (`CORP\svc_password`, `C:\app\db_password`)
    // stops the decoding: the part after the last one is a key of its own. Quotes written as
    // escapes (`\u0022password\u0022`, as .NET writes them) are the key's, not part of it.
    keys.is_sensitive(decoded.trim_matches(['"', '\'']), keybuf)
        || key
            .rsplit('\\')
            .next()
            .is_some_and(|last| keys.is_sensitive(last, keybuf))
}

/// Free text found inside a JSON string, with the values of its sensitive `key=value` pairs
/// and elements redacted; `None` when it has none. `cut` when the string runs into the cut of
/// the body: a YAML `value` still waiting there for its mapping's name goes, as in a cut text.
pub(super) fn redact_free_text(
    text: &str,
    cut: bool,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Option<String> {
    let reading = Reading { cut, yaml: false };
    match redact_structure(Cow::Borrowed(text), reading, keys, keybuf, replacement) {
        Cow::Borrowed(_) => None,
        Cow::Owned(redacted) => Some(redacted),
    }
}

/// How a text is read beyond its bytes.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// The text ends mid-body.
    cut: bool,
    /// The text is a YAML body's (see [`redact_text_body`]).
    yaml: bool,
}

/// The values of sensitive HTML form fields, `key=value` pairs and XML elements, replaced.
///
/// Form fields go first: a sensitive pair inside an attribute (`title="token: a"`) takes the
/// rest of the tag, the field's `name` with it, and leaves a `value` written before it.
fn redact_structure<'a>(
    text: Cow<'a, str>,
    reading: Reading,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let redacted = redact_constraint_values(text, keys, keybuf, replacement);
    let redacted = redact_form_fields(redacted, keys, keybuf, replacement);
    let redacted = redact_pairs(redacted, reading, keys, keybuf, replacement);
    let [plain, escaped] = start_tags(&redacted);
    let redacted = redact_xml(redacted, plain, keys, keybuf, replacement);
    let redacted = redact_xml(redacted, escaped, keys, keybuf, replacement);
    redact_decoded(redacted, keys, keybuf, replacement)
}

/// PostgreSQL's report of a constraint a row broke, `Key (api_token)=(tok_…) already exists`
/// (its `DETAIL`, in an error a handler returns): the columns in the first parentheses, the
/// values in the second.
static PG_CONSTRAINT_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Key \(([^()]{1,512})\)=\(").expect("constraint pattern is valid")
});

/// MySQL's and MariaDB's duplicate key, `Duplicate entry 'tok_…' for key
/// 'users.users_api_token_unique'`: the value, then the index, named for its columns.
static MYSQL_DUPLICATE_ENTRY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Duplicate entry '((?:[^'\\]|\\.|''){0,4096})' for key '([^']{1,256})'")
        .expect("duplicate entry pattern is valid")
});

/// The values a database quotes in its report of a broken constraint, when the constraint's
/// columns are sensitive keys: PostgreSQL's `Key (api_token)=(…)`, whose values run to the
/// parenthesis that closes their group, and MySQL's `Duplicate entry '…' for key '…'`, whose
/// index is read as its columns' name without the table and its kind
/// (`users.users_api_token_unique` as `users_api_token`). Found by a probe: a handler's error
/// quoting a unique violation kept the token that broke it.
fn redact_constraint_values<'a>(
    text: Cow<'a, str>,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    const FAILING_ROW: &[u8] = b"Failing row contains (";
    let bytes = text.as_bytes();
    let pg = memchr::memmem::find(bytes, b"Key (").is_some();
    let mysql = memchr::memmem::find(bytes, b"Duplicate entry '").is_some();
    let failing_row = memchr::memmem::find(bytes, FAILING_ROW).is_some();
    if !pg && !mysql && !failing_row {
        return text;
    }
    // To the parenthesis that closes a group opened right before `start`.
    let closing = |start: usize| {
        let mut depth = 1_usize;
        bytes[start..]
            .iter()
            .position(|&b| {
                match b {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(bytes.len(), |at| start + at)
    };
    let mut spans = Vec::new();
    if failing_row {
        // PostgreSQL's `DETAIL: Failing row contains (7, ann, $2b$12$…, …)` of a not-null or
        // check violation: the whole row, by position, hashes and tokens among its values,
        // which no column name tells (found by a probe). Replaced whole.
        for found in memchr::memmem::find_iter(bytes, FAILING_ROW) {
            let start = found + FAILING_ROW.len();
            spans.push((start, closing(start)));
        }
    }
    if pg {
        for found in PG_CONSTRAINT_KEY.captures_iter(&text) {
            let (Some(columns), Some(all)) = (found.get(1), found.get(0)) else {
                continue;
            };
            let sensitive = columns.as_str().split(',').any(|column| {
                let column = column.trim().trim_matches(['"', '`']);
                keys.is_sensitive(column, keybuf)
            });
            if !sensitive {
                continue;
            }
            // To the parenthesis that closes the values' group.
            let start = all.end();
            spans.push((start, closing(start)));
        }
    }
    if mysql {
        for found in MYSQL_DUPLICATE_ENTRY.captures_iter(&text) {
            let (Some(value), Some(index)) = (found.get(1), found.get(2)) else {
                continue;
            };
            let index = index.as_str();
            let index = index.rsplit_once('.').map_or(index, |(_, name)| name);
            let lower = index.to_ascii_lowercase();
            let columns = [
                "_unique", "_uniq", "_key", "_ukey", "_idx", "_index", "_pkey",
            ]
            .iter()
            .find_map(|kind| lower.strip_suffix(kind))
            .unwrap_or(&lower);
            if keys.is_sensitive(columns, keybuf) || keys.is_sensitive(index, keybuf) {
                spans.push((value.start(), value.end()));
            }
        }
    }
    spans.sort_unstable();
    replace_spans(text, &spans, replacement)
}

/// Replaces the value of every `key=value` pair whose key is sensitive, and the whole value of
/// a sensitive YAML key that runs on past its line (see [`yaml`](super::yaml)).
///
/// A value may start with a sensitive element's start tag (`token=<password>a;b</password>`):
/// replaced with the value, the tag is gone before the element rule reads the text, so where
/// there are such values the elements are read here too, in the text as it came, and their
/// contents replaced with them. The element rule still reads the text with the values
/// replaced: a tag right after one (`token=abc<password>…`) is an element's there, where the
/// value's last character makes it read as a type's parameter here (`Option<Token>`).
fn redact_pairs<'a>(
    text: Cow<'a, str>,
    reading: Reading,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let mut spans = pair_values(&text, keys, keybuf);
    let options = option_values(&text, keys, keybuf);
    if !options.is_empty() {
        spans = merged(spans, options);
    }
    let passwords = super::mysql::password_values(&text);
    if !passwords.is_empty() {
        spans = merged(spans, passwords);
    }
    let passwords = super::commands::password_values(&text);
    if !passwords.is_empty() {
        spans = merged(spans, passwords);
    }
    let credentials = super::protocols::auth_values(&text);
    if !credentials.is_empty() {
        spans = merged(spans, credentials);
    }
    let codes = super::form::oauth_codes_in_urls(&text);
    if !codes.is_empty() {
        spans = merged(spans, codes);
    }
    let assigned = super::assigned::assigned_values(&text, keys, keybuf);
    if !assigned.is_empty() {
        spans = merged(spans, assigned);
    }
    let cells = super::tables::table_values(&text, keys, keybuf);
    if !cells.is_empty() {
        spans = merged(spans, cells);
    }
    let passwords = super::sql::password_values(&text, keys, keybuf);
    if !passwords.is_empty() {
        spans = merged(spans, passwords);
    }
    let named = super::printed::named_values(&text, keys, keybuf, replacement);
    if !named.is_empty() {
        spans = merged(spans, named);
    }
    // A text of one line (most errors) is read for YAML only when a rule found a sensitive
    // value in it: the line rule then runs that value to the line's end.
    if !spans.is_empty() || memchr::memchr(b'\n', text.as_bytes()).is_some() {
        let blocks = super::yaml::block_values(&text, reading.cut, reading.yaml, keys, keybuf);
        if !blocks.is_empty() {
            spans = merged(spans, blocks);
        }
    }
    if !spans.is_empty() {
        for start_tag in start_tags(&text) {
            spans = merged(spans, xml_spans(&text, start_tag, keys, keybuf));
        }
    }
    replace_spans(text, &spans, replacement)
}

/// Text escaped with HTML5's names for ASCII characters (PHP's `htmlentities` with
/// `ENT_HTML5`: `api&lowbar;key&equals;…`, `password&colon; &quot;…&quot;`,
/// `&lt;api&lowbar;key&gt;…&lt;&sol;…`) or with numbers (`password&#61;…`), or whose key holds
/// a name of a character keys lose (`api&ensp;key=…`, `pass&shy;word: …`), read a second time
/// with its references decoded, once for the pair and element rules both: the values and
/// element contents found there are replaced, and the rest of the text stays as it came.
fn redact_decoded<'a>(
    text: Cow<'a, str>,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let Some(decoded) = Decoded::references(&text, escapes_a_pair) else {
        return text;
    };
    let mut spans = pair_values(&decoded.text, keys, keybuf);
    for start_tag in start_tags(&decoded.text) {
        spans = merged(spans, xml_spans(&decoded.text, start_tag, keys, keybuf));
    }
    // `original` keeps order and keeps apart spans apart: each decoded byte came from one or
    // more bytes of the text as it came.
    let spans: Vec<(usize, usize)> = spans
        .into_iter()
        .map(|(start, end)| (decoded.original(start), decoded.original(end)))
        .collect();
    replace_spans(text, &spans, replacement)
}

/// Whether a reference to `c`, before `after`, may hide a pair from the reading of the text
/// as it came: any ASCII character but the quotes, `&`, `<` and `>`, which that reading knows
/// as references already (so text escaped only as `htmlspecialchars` escapes it is read
/// once), and a character keys lose (`api&ensp;key=…`, `pass&shy;word: …`) inside a key or
/// an element's name (`&lt;api&ensp;key&gt;`), which is not looked for when none follows:
/// pages write `10&nbsp;km` and `a &mdash; b`.
fn escapes_a_pair(c: char, after: &[u8]) -> bool {
    if c.is_ascii() {
        return !matches!(c, '"' | '\'' | '&' | '<' | '>');
    }
    dropped_from_key(c) && (before_a_separator(after) || before_a_tags_close(after))
}

/// Whether `bytes` starts with the rest of an element's name and its tag's `>`
/// (`key&gt;`, or `key\u003e` in a tag Go's encoding/json wrote), its characters written
/// plainly or as references; the look is bounded.
fn before_a_tags_close(bytes: &[u8]) -> bool {
    const LONGEST_LOOK: usize = 128;
    let mut i = 0;
    while i < LONGEST_LOOK
        && let Some((c, len)) = spelled_char(bytes, i)
        && (c.is_ascii_alphanumeric()
            || matches!(c, '_' | '.' | ':' | '-')
            || (c != '\u{FFFD}' && dropped_from_key(c)))
    {
        i += len;
    }
    i > 0 && (matches!(spelled_char(bytes, i), Some(('>', _))) || go_escape(bytes, i, b'e'))
}

/// Whether `bytes` starts with the rest of a key, perhaps quoted, and its separator
/// (`key=`, `key&quot;: `, or none: `=`), its characters written plainly or as references;
/// the look is bounded, as a key's length is.
fn before_a_separator(bytes: &[u8]) -> bool {
    const LONGEST_LOOK: usize = 128;
    let mut i = 0;
    while i < LONGEST_LOOK
        && let Some((c, len)) = spelled_char(bytes, i)
        && (c.is_ascii_alphanumeric()
            || matches!(c, '[' | ']')
            || (c != '\u{FFFD}' && dropped_from_key(c)))
    {
        i += len;
    }
    if let Some(('"' | '\'', len)) = spelled_char(bytes, i) {
        i += len;
    }
    while i < LONGEST_LOOK
        && let Some((' ' | '\t', len)) = spelled_char(bytes, i)
    {
        i += len;
    }
    matches!(spelled_char(bytes, i), Some(('=' | ':', _)))
}

/// The spans of the values of the sensitive `key=value` pairs of `text`, in order, apart.
///
/// A sensitive pair inside a value already redacted may run past it (`password=x token="a, b"`:
/// the first value ends at the `,`, the second at the last quote), and the span then runs to
/// its end. Reading such values again is bounded: past as many bytes as the text has, the span
/// runs to the end of the text, so a text of nested pairs stays linear. A value a printer put
/// on the line after its key starts there (see [`value_on_next_line`]).
fn pair_values(text: &str, keys: &KeyRules, keybuf: &mut String) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut reread = 0_usize;
    let mut enclosing = Enclosing::default();
    // Keys in other scripts than Latin's ASCII, looked for only in a text that holds one.
    let unicode = if text.is_ascii() {
        Vec::new()
    } else {
        unicode_key_separators(text)
    };
    for all in in_order(KeySeparators::new(text), unicode) {
        let key = &text[all.start..all.key_end];
        let inside = spans.last().filter(|&&(_, end)| all.start < end).copied();
        if inside.is_some_and(|(_, end)| end == text.len()) || !is_sensitive_key(key, keys, keybuf)
        {
            continue;
        }
        let mut start = all.end;
        // Ruby's hash rocket (`"password"=>"a, b"`, as `p` and `pp` print a hash): the value
        // starts after the `>`, so that a quoted one is read to its closing quote, and on the
        // next line when the rocket ends its line (`pp` breaks a pair too long for its line
        // there).
        let bytes = text.as_bytes();
        if bytes.get(start) == Some(&b'>') && bytes[start - 1] == b'=' {
            let blanks = |at: usize| blanks(&bytes[at..]);
            start += 1;
            start += blanks(start);
            let line_break = match &bytes[start..] {
                [b'\r', b'\n', ..] => 2,
                [b'\n', ..] => 1,
                _ => 0,
            };
            if line_break > 0 {
                start += line_break;
                start += blanks(start);
            }
        } else if matches!(bytes.get(start), Some(b'\n' | b'\r'))
            && (matches!(bytes.get(all.key_end), Some(b'"' | b'\''))
                || enclosing
                    .closer_at(bytes, start)
                    .is_some_and(|c| matches!(c.byte, b'}' | b')')))
            && let Some(next) = value_on_next_line(bytes, start)
        {
            start = next;
        }
        let end = if inside.is_some() && reread > text.len() {
            text.len()
        } else {
            let closer = enclosing.closer_at(text.as_bytes(), start);
            let end = start + value_len(&text[start..], closer, &|| line_indent(bytes, start));
            if is_cookie_header(key, &bytes[all.key_end..all.end], bytes.get(start)) {
                end.max(line_content_end(bytes, start))
            } else {
                end
            }
        };
        match (inside, spans.last_mut()) {
            (Some(_), Some(last)) if start <= last.1 => {
                reread += end - start;
                last.1 = last.1.max(end);
            }
            _ if end > start => spans.push((start, end)),
            _ => {}
        }
    }
    spans
}

/// The pairs whose key holds a letter or digit past ASCII (`contraseña=…`, `пароль: …`,
/// `密码：…`, with the fullwidth colon or equals sign of CJK text too), which
/// [`KeySeparators`] does not read: its keys are ASCII words, with the characters keys lose.
/// A key is the longest run of letters, digits, `_`, `-` and `.` before the separator (and a
/// quote, and blanks), of 2 to [`LONGEST_PAIR_KEY`] characters; the match ends after the
/// separator's blanks, as [`KEY_SEPARATOR`]'s do.
fn unicode_key_separators(text: &str) -> Vec<KeySeparator> {
    let is_key_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut found = Vec::new();
    for (at, separator) in text.char_indices() {
        if !matches!(separator, ':' | '=' | '\u{FF1A}' | '\u{FF1D}') {
            continue;
        }
        let before = text[..at].trim_end_matches([' ', '\t']);
        let before = before.strip_suffix(['"', '\'']).unwrap_or(before);
        let key_end = before.len();
        let mut chars = 0;
        let mut key_start = key_end;
        let mut wide = false;
        for c in before.chars().rev() {
            if !is_key_char(c) {
                break;
            }
            chars += 1;
            key_start -= c.len_utf8();
            wide |= !c.is_ascii();
        }
        let after = at + separator.len_utf8();
        let end = after + blanks(&text.as_bytes()[after..]);
        if wide && (2..=LONGEST_PAIR_KEY).contains(&chars) {
            found.push(KeySeparator {
                start: key_start,
                key_end,
                end,
            });
        }
    }
    found
}

/// [`KeySeparators`]' matches and `unicode`'s ([`unicode_key_separators`]), in order of their
/// ends; of two that end together (`новый_password=`, whose ASCII tail is a key too), the
/// first.
fn in_order(
    ascii: KeySeparators<'_>,
    unicode: Vec<KeySeparator>,
) -> impl Iterator<Item = KeySeparator> + '_ {
    let mut ascii = ascii.peekable();
    let mut unicode = unicode.into_iter().peekable();
    std::iter::from_fn(move || match (ascii.peek(), unicode.peek()) {
        (Some(a), Some(u)) if u.end < a.end => unicode.next(),
        (Some(a), Some(u)) if u.end == a.end => {
            unicode.next();
            ascii.next()
        }
        (Some(_), _) => ascii.next(),
        (None, _) => unicode.next(),
    })
}

/// Whether a pair is a `Cookie:` header quoted in text (`request had Cookie: theme=dark;
/// laravel_session=…`): every cookie after it is its value, to the line's end, where a pair's
/// value stops at a `;`. Not a quoted value, which its quotes bound.
fn is_cookie_header(key: &str, separator: &[u8], value: Option<&u8>) -> bool {
    separator.contains(&b':')
        && !matches!(value, Some(b'"' | b'\''))
        && key.trim_matches(['"', '\'']).eq_ignore_ascii_case("cookie")
}

/// The end of the line that `at` is on, before its line break and the blanks before it.
fn line_content_end(bytes: &[u8], at: usize) -> usize {
    let mut end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
    while end > at && matches!(bytes[end - 1], b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    end
}

/// Where the value of a member whose key and separator end their line at `at` starts on the
/// next line, as printers write a member too long for its line (`{'password':⏎ 'hunter2'}`:
/// Black, Prettier, Node's `console.log`): a quoted string there (after a Python prefix,
/// `b'…'`, kept as SQL's is), a list or an object; `None` when the line starts with anything
/// else, which is no such value (`{'password':⏎ None}`, prose after a heading's colon).
fn value_on_next_line(bytes: &[u8], at: usize) -> Option<usize> {
    let line_break = match bytes.get(at..)? {
        [b'\r', b'\n', ..] => 2,
        [b'\n' | b'\r', ..] => 1,
        _ => return None,
    };
    let start = at + line_break + blanks(&bytes[at + line_break..]);
    let prefix = bytes[start..]
        .iter()
        .take(3)
        .take_while(|b| b"bBrRuUfF".contains(b))
        .count();
    match bytes.get(start + prefix)? {
        b'"' | b'\'' if prefix <= 2 => Some(start + prefix),
        b'[' | b'{' if prefix == 0 => Some(start),
        _ => None,
    }
}

/// A match of [`KEY_SEPARATOR`]: the key (its first group) from `start` to `key_end`, the
/// match to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeySeparator {
    start: usize,
    key_end: usize,
    end: usize,
}

/// The longest key [`KEY_SEPARATOR`] reads, in characters.
const LONGEST_PAIR_KEY: usize = 64;

/// The matches of [`KEY_SEPARATOR`] in a text, in order, found without the regex: the same
/// matches (a test compares them on written cases and pseudo-random strings), for a fraction
/// of the instructions on the short strings of a JSON body (a timestamp or a URL cost the
/// regex's search over a thousand instructions a string).
///
/// A match holds exactly one `:` or `=` (no key character, quote or blank is one), so the
/// leftmost match holds the first separator that any match holds: the starts before it, in
/// the run of key and quote characters before its blanks, are tried in order, each as the
/// regex tries it (`\b` before `\\`, the longest key first, a quote before none). A run is
/// read for its one separator, and each start in it tries at most 64 lengths: linear.
struct KeySeparators<'t> {
    text: &'t str,
    from: usize,
}

impl<'t> KeySeparators<'t> {
    fn new(text: &'t str) -> Self {
        Self { text, from: 0 }
    }

    /// The match that starts at `at`, if any.
    fn match_at(&self, at: usize) -> Option<KeySeparator> {
        let bytes = self.text.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let boundary =
            (at > 0 && is_word(bytes[at - 1])) != bytes.get(at).is_some_and(|&b| is_word(b));
        if boundary && let Some(found) = self.key_from(at, at) {
            return Some(found);
        }
        if bytes.get(at) == Some(&b'\\') {
            return self.key_from(at, at + 1);
        }
        None
    }

    /// The match of a key starting at `key_start` (the match's start is `start`): the longest
    /// run of key characters first, then shorter ones, each followed by a quote or none,
    /// blanks and the separator.
    fn key_from(&self, start: usize, key_start: usize) -> Option<KeySeparator> {
        let text = self.text;
        // Where each key length ends: `ends[n]` after `n` characters.
        let mut ends = [0_usize; LONGEST_PAIR_KEY + 1];
        let mut count = 0;
        ends[0] = key_start;
        for (offset, c) in text[key_start..].char_indices() {
            if count == LONGEST_PAIR_KEY || !is_pair_key_char(c) {
                break;
            }
            count += 1;
            ends[count] = key_start + offset + c.len_utf8();
        }
        let bytes = text.as_bytes();
        for len in (2..=count).rev() {
            let key_end = ends[len];
            // Past a shorter key comes a key character: only a quote written `\u0026…` may
            // start there.
            if len < count && bytes[key_end] != b'\\' {
                continue;
            }
            let mut found = None;
            quote_ends(bytes, key_end, |quote_end| {
                found = separator_after(bytes, quote_end);
                found.is_some()
            });
            if let Some(end) = found {
                return Some(KeySeparator {
                    start,
                    key_end,
                    end,
                });
            }
        }
        None
    }
}

impl Iterator for KeySeparators<'_> {
    type Item = KeySeparator;

    fn next(&mut self) -> Option<KeySeparator> {
        let bytes = self.text.as_bytes();
        while let Some(found) = memchr::memchr2(b':', b'=', &bytes[self.from..]) {
            let separator = self.from + found;
            // A match's span before its separator is its key and quote, then blanks: its start
            // is in the run of key and quote characters before the blanks, not before it.
            let before = &self.text[self.from..separator];
            let blanks = before
                .bytes()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            let before = &before[..before.len() - blanks];
            let run: usize = before
                .chars()
                .rev()
                .take_while(|&c| {
                    is_pair_key_char(c) || matches!(c, '"' | '\'' | '`' | '&' | ';' | '#')
                })
                .map(char::len_utf8)
                .sum();
            let run_start = self.from + before.len() - run;
            let matched = (run_start..self.from + before.len())
                .filter(|&at| self.text.is_char_boundary(at))
                .find_map(|at| self.match_at(at));
            if let Some(matched) = matched {
                self.from = matched.end;
                return Some(matched);
            }
            // No match holds this separator: the next one starts after it.
            self.from = separator + 1;
        }
        self.from = bytes.len();
        None
    }
}

/// Whether a key of [`KEY_SEPARATOR`] may hold `c`.
fn is_pair_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '.'
                | '['
                | ']'
                | '\\'
                | '-'
                | '\u{85}'
                | '\u{A0}'
                | '\u{AD}'
                | '\u{1680}'
                | '\u{180E}'
                | '\u{2000}'..='\u{2015}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'..='\u{2064}'
                | '\u{2212}'
                | '\u{3000}'
                | '\u{FE58}'
                | '\u{FE63}'
                | '\u{FEFF}'
                | '\u{FF0D}'
        )
}

/// Calls `next` with where each way a quote after a key at `at` may end, in the order
/// [`KEY_SEPARATOR`] tries them, then with `at` (no quote), until it returns `true`.
fn quote_ends(bytes: &[u8], at: usize, mut next: impl FnMut(usize) -> bool) {
    match bytes.get(at) {
        // A backquote closes a key as MySQL quotes a column's name (``set `api_token` = …``).
        Some(b'"' | b'\'' | b'`') if next(at + 1) => return,
        Some(b'&' | b'\\') => {
            let prefix = match &bytes[at..] {
                [b'&', ..] => Some(1),
                [b'\\', b'u', b'0', b'0', b'2', b'6', ..] => Some(6),
                _ => None,
            };
            if let Some(prefix) = prefix {
                let after_prefix = at + prefix;
                let amp = bytes[after_prefix..].starts_with(b"amp;");
                let tries = [after_prefix + 4, after_prefix];
                for &after_amp in &tries[usize::from(!amp)..] {
                    if let Some(name_end) = quote_name_end(bytes, after_amp) {
                        if bytes.get(name_end) == Some(&b';') && next(name_end + 1) {
                            return;
                        }
                        if next(name_end) {
                            return;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    next(at);
}

/// Where a quote's name after `&` ends: `quot`, `apos` (any case), `#34`, `#39`, `#x22`, `#x27`
/// (any zeros after `#` or `#x`, the `x` in either case).
fn quote_name_end(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = bytes.get(at..)?;
    if rest.len() >= 4
        && (rest[..4].eq_ignore_ascii_case(b"quot") || rest[..4].eq_ignore_ascii_case(b"apos"))
    {
        return Some(at + 4);
    }
    let (digits, first, last): (usize, u8, &[u8]) = match rest {
        [b'#', b'x' | b'X', ..] => (2, b'2', b"27"),
        [b'#', ..] => (1, b'3', b"49"),
        _ => return None,
    };
    let zeros = rest[digits..].iter().take_while(|&&b| b == b'0').count();
    match rest.get(digits + zeros..digits + zeros + 2) {
        Some([f, l]) if *f == first && last.contains(l) => Some(at + digits + zeros + 2),
        _ => None,
    }
}

/// Where a match ends when blanks and a separator follow `at`: after the blanks after the
/// separator.
fn separator_after(bytes: &[u8], at: usize) -> Option<usize> {
    let separator = at + blanks(&bytes[at..]);
    matches!(bytes.get(separator), Some(b':' | b'='))
        .then(|| separator + 1 + blanks(&bytes[separator + 1..]))
}

/// The spans of the values of a command line's sensitive long options written with a space,
/// `--password hunter2` (with `=` they are pairs): the option starts the text or follows
/// whitespace or a quote, and its value is the next word, or quoted string, unless that is an
/// option itself. `-p` is no option of this kind: ssh, curl and docker read it as a port or
/// a proxy, only MySQL's clients as a password, and those glued to it (`-phunter2`). Its
/// dashes and the space after it may be JSON escapes (`\u002d\u002dpassword\u0020…`, as an
/// encoder that escapes `-` writes a command line), and so may what it follows (`\n`, `\"`);
/// its dashes may be Unicode's, as typographic substitution writes them: two (`––password`)
/// or one en or em dash for both (`—password`). The word ends before the closer of what the
/// option sits in (`cmd="app --password x"`, see [`Closer`]).
fn option_values(text: &str, keys: &KeyRules, keybuf: &mut String) -> Vec<(usize, usize)> {
    const LONGEST_KEY: usize = 64;
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut enclosing = Enclosing::default();
    let mut from = 0;
    while let Some(found) = memchr::memchr3(b'-', b'\\', UNICODE_DASH_LEAD, &bytes[from..]) {
        let at = from + found;
        from = at + 1;
        let Some(first) = dash_at(bytes, at) else {
            continue;
        };
        let (second, single) = match dash_at(bytes, at + first) {
            Some(second) => (second, false),
            // An en or em dash written for `--`.
            None if matches!(
                bytes.get(at..at + 3),
                Some(b"\xE2\x80\x93" | b"\xE2\x80\x94")
            ) =>
            {
                (0, false)
            }
            // Go's `flag` package writes long options with one dash (`-password hunter2`):
            // a name of five characters or more, so that `-p` and `-pw` stay short options
            // and `-pass` is left to the commands that read it (OpenSSL's `-pass env:VAR`).
            None => (0, true),
        };
        from = at + first + second;
        if !after_a_word_break(bytes, at) {
            continue;
        }
        let key_start = at + first + second;
        let key_len = bytes[key_start..]
            .iter()
            .take(LONGEST_KEY + 1)
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            .count();
        let key_end = key_start + key_len;
        let mut start = key_end;
        while let Some(blank) = blank_at(bytes, start) {
            start += blank;
        }
        if !(if single { 5 } else { 2 }..=LONGEST_KEY).contains(&key_len)
            || !bytes[key_start].is_ascii_alphanumeric()
            || start == key_end
            || matches!(bytes.get(start), None | Some(b'\n' | b'\r'))
            || dash_at(bytes, start).is_some()
            || !keys.is_sensitive(&text[key_start..key_end], keybuf)
            // A short option glued to its value (MySQL's `-pSECRET2`, read by `mysql`) rather
            // than a long one: its rest is itself what made it sensitive.
            || single && keys.is_sensitive(&text[key_start + 1..key_end], keybuf)
        {
            continue;
        }
        let rest = &text[start..];
        let len = match rest.as_bytes()[0] {
            b'"' | b'\'' => value_len(rest, None, &|| 0),
            _ => {
                let word = rest
                    .bytes()
                    .position(|b| b.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                match enclosing.closer_at(bytes, start) {
                    Some(closer) => closed_word_len(rest.as_bytes(), word, closer),
                    None => word,
                }
            }
        };
        spans.push((start, start + len));
        from = start + len;
    }
    spans
}

/// The length of the word of `word` bytes at the start of `bytes`, an option's value, up to
/// `closer` where it closes what the option sits in (see [`Closer::ends_value`]); a bracket
/// of its kind opened inside the word is the word's, and so is the closer that closes it.
fn closed_word_len(bytes: &[u8], word: usize, closer: Closer) -> usize {
    let open = closer.opener();
    let mut depth = 0_usize;
    let mut at = 0;
    while at < word {
        if Some(bytes[at]) == open {
            depth += 1;
        } else if closer.may_start(bytes[at])
            && let Some((end, after)) = closer.written_at(bytes, at)
        {
            if depth > 0 {
                depth -= 1;
            } else if let Some(end) = Closer::ends_value(bytes, end, after, closer.is_quote()) {
                return end;
            }
            at = after;
            continue;
        }
        at += 1;
    }
    word
}

/// The first byte of the UTF-8 of each [`is_option_dash`].
pub(super) const UNICODE_DASH_LEAD: u8 = 0xE2;

/// The length of the `-` at `at`, written plainly, as the JSON escape `\u002d` or as one of
/// Unicode's dashes ([`is_option_dash`]).
fn dash_at(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'-' => Some(1),
        &UNICODE_DASH_LEAD => bytes
            .get(at..at + 3)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.chars().next())
            .filter(|&c| is_option_dash(c))
            .map(char::len_utf8),
        b'\\'
            if bytes
                .get(at..at + 6)
                .is_some_and(|found| found.eq_ignore_ascii_case(b"\\u002d")) =>
        {
            Some(6)
        }
        _ => None,
    }
}

/// The name of the long option `word` is (`--password`, `––password`, `—password`: its dashes
/// and name as [`option_values`] reads them), `None` when it is none, names a pair
/// (`--password=x`) or is prose opened with a dash (`— PIN`, `-- my password`).
pub(super) fn long_option_name(word: &str) -> Option<&str> {
    let bytes = word.as_bytes();
    let first = dash_at(bytes, 0)?;
    let start = match dash_at(bytes, first) {
        Some(second) => first + second,
        None if matches!(bytes.get(..3), Some(b"\xE2\x80\x93" | b"\xE2\x80\x94")) => first,
        None => return None,
    };
    let name = &word[start..];
    let key_shaped = (2..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    key_shaped.then_some(name)
}

/// The name of a long option written with one `-`, as Go's `flag` package takes them
/// (`-password`, `-token`), `None` when `word` is none: a name of five characters or more, as
/// [`option_values`] reads one in text (`-p` and `-pw` are short options).
pub(super) fn one_dash_option_name(word: &str) -> Option<&str> {
    let name = word.strip_prefix('-')?;
    let key_shaped = (5..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    key_shaped.then_some(name)
}

/// Whether `word` starts with a dash, as [`option_values`] reads one: an option's.
pub(super) fn starts_with_dash(word: &str) -> bool {
    dash_at(word.as_bytes(), 0).is_some()
}

/// Whether `text` may hold a long option: `--`, or a dash of Unicode's that may start one
/// ([`option_values`]). A look for callers that send only some text to the pair rules.
pub(super) fn may_hold_long_option(text: &str) -> bool {
    let bytes = text.as_bytes();
    let at_dash = |at: usize| match bytes[at] {
        b'-' => bytes.get(at + 1) == Some(&b'-'),
        _ => dash_at(bytes, at).is_some(),
    };
    // Most texts asked are a JSON string's few words (`SKU-00001`): a plain loop, without
    // `memchr`'s set-up.
    if bytes.len() < 64 {
        return (0..bytes.len())
            .any(|at| matches!(bytes[at], b'-' | UNICODE_DASH_LEAD) && at_dash(at));
    }
    memchr::memchr2_iter(b'-', UNICODE_DASH_LEAD, bytes).any(at_dash)
}

/// The length of the space or tab at `at`, written plainly or as a JSON escape.
fn blank_at(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b' ' | b'\t' => Some(1),
        b'\\' if matches!(bytes.get(at..at + 6), Some(b"\\u0020" | b"\\u0009")) => Some(6),
        _ => None,
    }
}

/// Whether an option at `at` starts the text or follows whitespace or a quote, written plainly
/// or as a JSON escape (`\n`, `\t`, `\u0020`, `\u0022`; `\"` ends in a quote already).
fn after_a_word_break(bytes: &[u8], at: usize) -> bool {
    let before = &bytes[..at];
    match before.last() {
        None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'') => true,
        Some(b'n' | b't' | b'r') => before.len() >= 2 && before[before.len() - 2] == b'\\',
        Some(b'0' | b'2' | b'7' | b'9') => [&b"\\u0020"[..], b"\\u0009", b"\\u0022", b"\\u0027"]
            .iter()
            .any(|escape| before.ends_with(escape)),
        _ => false,
    }
}

/// Two lists of spans (each in order, apart) as one: spans that overlap or touch become one.
pub(super) fn merged(
    mut spans: Vec<(usize, usize)>,
    more: impl IntoIterator<Item = (usize, usize)>,
) -> Vec<(usize, usize)> {
    spans.extend(more);
    spans.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The length of a value at the start of `rest` read as a pair's is, where no closer of
/// what it sits in is known (see [`value_len`]).
pub(super) fn free_value_len(rest: &str) -> usize {
    value_len(rest, None, &|| 0)
}

/// How many spaces and tabs start the line `at` is on; the look back to the line's start is
/// taken only for a `Debug` wrapper left open at its line's end (see [`wrapped_len`]), at most
/// once a line.
fn line_indent(bytes: &[u8], at: usize) -> usize {
    let start = memchr::memrchr2(b'\n', b'\r', &bytes[..at]).map_or(0, |i| i + 1);
    blanks(&bytes[start..at])
}

/// The length of a TOML multi-line string (or a Python one) at the start of `bytes`, which
/// starts with three quotes: to its closing three, and the up to two more quotes TOML reads
/// as the value's last characters (`"""a""""`), over lines; a `\` escapes the character
/// after it in a `"""` string, not in a `'''` one. Unclosed, it runs to the end of the text.
fn triple_quoted_len(bytes: &[u8]) -> usize {
    let quote = bytes[0];
    let mut i = 3;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && quote == b'"' {
            i += 2;
        } else if b == quote && bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote)
        {
            i += 3;
            let extra = bytes[i..]
                .iter()
                .take(2)
                .take_while(|&&b| b == quote)
                .count();
            return i + extra;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Length of the value at the start of `rest`.
///
/// A value in three quotes (TOML's multi-line strings) runs to its closing three, over lines
/// (see [`triple_quoted_len`]).
/// A quoted value runs to its closing quote (`\"` does not close it, nor does one written twice,
/// `'it''s'`, nor one glued to more of the value, see [`past_quote`]) or the end of the line,
/// and so does one quoted inside a quoted string (`\"value\"`, `\u0022value\u0022`) or with
/// character references (`&quot;value&quot;`), its quote written twice in any of them;
/// an object or list (`{…}`, `[…]`) to its closing bracket, or the end of the text when it has
/// none, and a value Rust's `Debug` prints wrapped (`Some(…)`, `Secret(…)`) to its closer, or
/// when it has none to the end of its lines (see [`wrapped_len`]; `key_indent` tells how far
/// its key's line is indented). Any other value runs to the end of the line or the next `&`, `,`, `;`, `<` (see
/// [`unquoted_len`] for references), or to `closer`, the quote or bracket that closes what the
/// pair sits in (see [`Closer`]): the value of `Authorization: Basic dXNlcg==` has a space
/// in it, and over-redacting prose is harmless while stopping at the first space could leak a
/// second word.
fn value_len(rest: &str, closer: Option<Closer>, key_indent: &dyn Fn() -> usize) -> usize {
    let bytes = rest.as_bytes();
    match bytes.first() {
        Some(b'"' | b'\'') if matches!(bytes.get(..3), Some(b"\"\"\"" | b"'''")) => {
            triple_quoted_len(bytes)
        }
        Some(&quote @ (b'"' | b'\'')) => {
            let mut i = 1;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'\\' => i += 2,
                    b'\n' | b'\r' => return i,
                    // Written twice, it is one inside the value: `'it''s'`, `"a""b"` (YAML's
                    // single quotes, SQL, CSV, .NET connection strings).
                    b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
                    b if b == quote => return past_quote(rest, i + 1, closer),
                    _ => i += 1,
                }
            }
            rest.len()
        }
        // Then on to where any value ends: a password may start with a bracket (`[x9]Kq!`).
        Some(b'{' | b'[') => {
            let closed = bracketed_len(bytes);
            closed + unquoted_tail_len(&rest[closed..], closer)
        }
        // Quoted inside a quoted string: `\"value\"`.
        Some(b'\\') if matches!(bytes.get(1), Some(b'"' | b'\'')) => {
            // One pass for both ends: searching the line's end first would read the rest of a
            // one-line text for every such value.
            let mut from = 2;
            while let Some(at) = memchr::memchr3(b'\\', b'\n', b'\r', &bytes[from..]) {
                let at = from + at;
                if bytes[at] != b'\\' {
                    return at;
                }
                if bytes.get(at + 1) == Some(&bytes[1]) {
                    // Written twice, it is one inside the value (`\"a\"\"b\"`), as in the
                    // plain form.
                    if bytes[at + 2..].starts_with(&bytes[..2]) {
                        from = at + 4;
                        continue;
                    }
                    return past_quote(rest, at + 2, closer);
                }
                from = at + 1;
            }
            rest.len()
        }
        // Quoted with JSON escapes, as .NET's encoder writes `"` in a string: `\u0022value\u0022`.
        Some(b'\\') if matches!(bytes.get(..6), Some(b"\\u0022" | b"\\u0027")) => {
            let close = &bytes[..6];
            let mut from = 6;
            while let Some(at) = memchr::memchr3(b'\\', b'\n', b'\r', &bytes[from..]) {
                let at = from + at;
                if bytes[at] != b'\\' {
                    return at;
                }
                if bytes[at..].starts_with(close) {
                    let after = at + close.len();
                    if bytes[after..].starts_with(close) {
                        from = after + close.len();
                        continue;
                    }
                    return past_quote(rest, after, closer);
                }
                from = at + 1;
            }
            rest.len()
        }
        // Quoted with references: `&quot;value&quot;`, `&#39;value&#39;`, `\u0026quot;value…`.
        // A quote escaped once more than the opening one is inside the value: `&amp;quot;`.
        Some(b'&' | b'\\') => match char_ref_wrapped(bytes, 0) {
            Some((quote @ ('"' | '\''), open, wraps)) => {
                let mut from = open;
                while let Some(at) = bytes[from..]
                    .iter()
                    .position(|b| matches!(b, b'&' | b'\\' | b'\n' | b'\r'))
                {
                    let at = from + at;
                    match char_ref_wrapped(bytes, at) {
                        Some((c, len, w)) if c == quote && w == wraps => {
                            match char_ref_wrapped(bytes, at + len) {
                                // Written twice: one inside the value (`&quot;&quot;`).
                                Some((c, twice, w)) if c == quote && w == wraps => {
                                    from = at + len + twice;
                                }
                                _ => return past_quote(rest, at + len, closer),
                            }
                        }
                        _ if matches!(bytes[at], b'\n' | b'\r') => return at,
                        // A JSON escape, in JSON escaped into HTML: `\&quot;` is a quote in
                        // the string, `\\` a backslash; a line still ends the value.
                        None if bytes[at] == b'\\'
                            && !matches!(bytes.get(at + 1), Some(b'\n' | b'\r')) =>
                        {
                            let escaped = char_ref(bytes, at + 1).map_or(1, |(_, len)| len);
                            from = (at + 1 + escaped).min(bytes.len());
                        }
                        _ => from = at + 1,
                    }
                }
                rest.len()
            }
            _ => unquoted_len(rest, closer),
        },
        _ => match wrapped_len(bytes, key_indent) {
            Some(wrapped) => wrapped + unquoted_tail_len(&rest[wrapped..], closer),
            None => unquoted_len(rest, closer),
        },
    }
}

/// The length of a value Rust's `Debug` prints wrapped, through the closer of its first
/// bracket: an enum's variant or a tuple struct (`Some("…")`, `Secret("…")`,
/// `secrecy::SecretBox("…")`), a struct (`Password { inner: "…" }`) or a tuple (`("…", 2)`),
/// over the lines `{:#?}` prints it on (`Some(` then `"…",` then `)`); `None` when the value
/// is no such wrapper. Brackets nest, whatever their kind; a string or a character inside the
/// value is skipped past, its brackets and `,` the value's (a `Debug` string is on one line:
/// a line's end ends one too).
///
/// Unclosed (prose's `Secret(`, a log line cut short), a value that has more after its opener
/// on its line (`{:?}` prints it on one) runs to the end of that line, and one whose opener
/// ends its line (`{:#?}`) over the lines after it indented more than its key's line,
/// `key_indent()` (the line of its closer is indented as the key's is), blank lines among
/// them, to the end of the last one; to the end of the text when that comes first (a text cut
/// inside it). Each byte is read once.
fn wrapped_len(bytes: &[u8], key_indent: &dyn Fn() -> usize) -> Option<usize> {
    const LONGEST_PATH: usize = 128;
    let path = bytes
        .iter()
        .take(LONGEST_PATH + 1)
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':'))
        .count();
    let open = match bytes.get(path) {
        // No path starts with a digit or a `:` (`password: :( forgot` is prose's frown).
        _ if path > LONGEST_PATH
            || bytes
                .first()
                .is_some_and(|&b| b.is_ascii_digit() || b == b':') =>
        {
            return None;
        }
        Some(b'(') => path,
        Some(b' ') if path > 0 && bytes.get(path + 1) == Some(&b'{') => path + 1,
        _ => return None,
    };
    // `{:#?}` ends the opener's line there; `{:?}` goes on.
    let pretty = matches!(
        bytes[open + 1..]
            .iter()
            .find(|&&b| !matches!(b, b' ' | b'\t')),
        Some(b'\n' | b'\r')
    );
    let mut key_indented = None;
    // Where the last line of the value ends, and whether the line being read is indented no
    // more than the key's: it may close the value, and ends it before itself otherwise.
    let mut last_line_end = open;
    let mut outer = false;
    let mut depth = 0_usize;
    let mut i = open;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' | b'\r' => {
                if !pretty {
                    return Some(i);
                }
                if outer {
                    return Some(last_line_end);
                }
                last_line_end = i;
                i += if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                let indent = blanks(&bytes[i..]);
                // A blank line is the value's, as the lines around it decide.
                if !matches!(bytes.get(i + indent), None | Some(b'\n' | b'\r')) {
                    outer = indent <= *key_indented.get_or_insert_with(key_indent);
                }
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' => {
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    match b {
                        b'\\' => i += 1,
                        b'"' | b'\n' | b'\r' => break,
                        _ => {}
                    }
                    i += 1;
                }
                // A line's end is the value's line's too.
                if matches!(bytes.get(i), Some(b'\n' | b'\r')) {
                    continue;
                }
            }
            // A character, `'('` or `'\''`; an apostrophe otherwise.
            b'\'' => {
                let close = match bytes.get(i + 1) {
                    // `'\''`, `'\n'`, `'\u{1F600}'`.
                    Some(b'\\') => bytes.get(i + 3..).and_then(|after| {
                        let quote = after.iter().take(10).position(|&b| b == b'\'')?;
                        Some(i + 3 + quote)
                    }),
                    Some(&first) => {
                        let len = match first {
                            0x00..=0x7F => 1,
                            0xC0..=0xDF => 2,
                            0xE0..=0xEF => 3,
                            0xF0..=0xFF => 4,
                            _ => 0,
                        };
                        (len > 0 && bytes.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
                    }
                    None => None,
                };
                if let Some(close) = close {
                    i = close;
                }
            }
            _ => {}
        }
        i += 1;
    }
    // The text ends: on a line of the value (cut inside it), or on one indented no more than
    // its key that closed nothing.
    Some(if outer { last_line_end } else { bytes.len() })
}

/// Where a quoted value whose closing quote ends at `closed` ends: there, unless the quote is
/// glued to more of the value (`"ab"cd"`, `&quot;ab&quot;cd&quot;`, a value with the quote
/// it is quoted with written into it unescaped), which then goes on as an unquoted value
/// does. What follows a value that its quote closes is a space, a line's end, or a
/// separator or bracket of what the pair sits in.
fn past_quote(rest: &str, closed: usize, closer: Option<Closer>) -> usize {
    let glued = spelled_char(rest.as_bytes(), closed).is_some_and(|(c, _)| {
        !c.is_whitespace()
            && !matches!(
                c,
                ',' | ';' | ':' | '.' | ')' | ']' | '}' | '<' | '>' | '&' | '/' | '\\' | '"' | '\''
            )
    });
    if glued {
        closed + unquoted_tail_len(&rest[closed..], closer)
    } else {
        closed
    }
}

/// Length of an unquoted value: to the end of the line or the next `&`, `,`, `;`, `<`, or a
/// quote that closes what the pair sits in: one followed by `>`, `/`, whitespace or the end
/// (`href="/reset?token=abc">`, `title='key: abc' class=…`). A quote inside the value
/// (`pa"ss`) does not end it. A character reference is the character it stands for: one inside
/// the value (`ab&quot;cd`, `caf&#233;`) does not end it, `&amp;` (a query's `&`, escaped) and
/// `&lt;` do, and `&quot;&gt;` closes an attribute as `">` does; `closer` ends it too (see
/// [`unquoted_tail_len`]). The value's first character is the value's unless it plainly
/// follows an empty one (see [`leading_len`]).
fn unquoted_len(rest: &str, closer: Option<Closer>) -> usize {
    let first = leading_len(rest.as_bytes());
    first + unquoted_tail_len(&rest[first..], closer)
}

/// The length of the character an unquoted value starts with, when it is the value's though
/// it would end the value further on: a secret may start with `<`, `,`, `;` or `&`
/// (`password=<Zq9`), and read as an empty value it was kept whole. Over-redacting is
/// harmless, so such a character ends an empty value only where it plainly follows one: an
/// end tag (`<td>password=</td>`), a list's `,` or `;` before a space or the end
/// (`password=, user=ann`, `session=; Path=/`), a query's `&` before its next pair
/// (`password=&user=bob`). Each look is bounded: every value is read once.
fn leading_len(bytes: &[u8]) -> usize {
    let (c, len) = match spelled_char(bytes, 0) {
        Some(found) => found,
        // An `&` that starts no reference.
        None if bytes.first() == Some(&b'&') => ('&', 1),
        None => return 0,
    };
    let ends_an_empty_value = match c {
        '<' => end_tag_at(bytes, len),
        ',' | ';' => {
            len == bytes.len()
                || matches!(
                    spelled_char(bytes, len),
                    Some((' ' | '\t' | '\r' | '\n', _))
                )
        }
        '&' => pair_at(bytes, len),
        // Anything else ends no value, or ends it here too (a line break).
        _ => return 0,
    };
    if ends_an_empty_value { 0 } else { len }
}

/// The longest name of an element or a query's key looked for after an empty value.
const MAX_NAME_LOOKED_AT: usize = 64;

/// Whether `bytes` holds at `at` the rest of an end tag, `/name>`, its `/` and `>` written
/// plainly or as references.
fn end_tag_at(bytes: &[u8], at: usize) -> bool {
    let Some(('/', slash)) = spelled_char(bytes, at) else {
        return false;
    };
    let name = at + slash;
    let len = bytes[name.min(bytes.len())..]
        .iter()
        .take(MAX_NAME_LOOKED_AT + 1)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        .count();
    (1..=MAX_NAME_LOOKED_AT).contains(&len)
        && bytes[name].is_ascii_alphabetic()
        && matches!(spelled_char(bytes, name + len), Some(('>', _)))
}

/// Whether `bytes` holds at `at` a query's next pair: a key and its `=` (`user=bob`).
fn pair_at(bytes: &[u8], at: usize) -> bool {
    let len = bytes[at.min(bytes.len())..]
        .iter()
        .take(MAX_NAME_LOOKED_AT + 1)
        .take_while(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']' | b'%' | b'+')
        })
        .count();
    (1..=MAX_NAME_LOOKED_AT).contains(&len)
        && matches!(spelled_char(bytes, at + len), Some(('=', _)))
}

/// [`unquoted_len`] past the value's first character. `closer` ends the value too, where it
/// closes what the pair sits in (see [`Closer::ends_value`]); a bracket of its kind opened
/// inside the value is the value's, and so is the closer that closes it (`(password=f(x)y)`).
/// A bracket's closer followed by another unmatched one before the value's end is in doubt:
/// the last one ends it, or none when that one is glued to more of the value; the look for
/// another is bounded (256 bytes past the last).
fn unquoted_tail_len(rest: &str, closer: Option<Closer>) -> usize {
    // How far past a bracket's closer another is looked for: each value's look is bounded
    // (a text of many pairs in brackets stays linear), and past it the closer ends it.
    const LONGEST_DOUBT: usize = 256;
    let bytes = rest.as_bytes();
    let open = closer.and_then(Closer::opener);
    let mut depth = 0_usize;
    // Where a bracket's closer would end the value, and where that closer is: the last one
    // at its depth, as one followed by another of its kind may be the value's
    // (`(password=ab) cd) x`).
    let mut bracket_end: Option<(usize, usize)> = None;
    // A backquote's closer, or a quote's written as a JSON escape, has no depth: those after
    // it open and close spans (`` `token=x` and `y` ``), and one left open, `Some`, is in
    // doubt: it ends the value where it would (`` `token=ab` cd` ``), or nothing does when
    // it is glued. (Other quotes before a space ended a value before closers did.)
    let mut unpaired: Option<Option<usize>> = None;
    let finish =
        |bracket_end: Option<(usize, usize)>, unpaired: Option<Option<usize>>, at| match unpaired {
            Some(Some(end)) => end,
            Some(None) => at,
            None => bracket_end.map_or(at, |(end, _)| end),
        };
    let mut from = 0;
    loop {
        let limit = bracket_end.map_or(bytes.len(), |(_, closer)| {
            (closer + LONGEST_DOUBT).min(bytes.len())
        });
        let Some(at) = bytes.get(from..limit).and_then(|looked| {
            looked.iter().position(|&b| {
                matches!(b, b'\r' | b'\n' | b'&' | b',' | b';' | b'<' | b'"' | b'\'')
                    || closer.is_some_and(|closer| closer.may_start(b))
                    || Some(b) == open
            })
        }) else {
            if limit < bytes.len() {
                // Past the look: the closer found first ends it, as in the doubt's absence.
                return finish(bracket_end, unpaired.filter(Option::is_some), rest.len());
            }
            return finish(bracket_end, unpaired, rest.len());
        };
        let at = from + at;
        if let Some(closer) = closer {
            if Some(bytes[at]) == open {
                depth += 1;
                from = at + 1;
                continue;
            }
            if let Some((end, after)) = closer.written_at(bytes, at) {
                if depth > 0 {
                    depth -= 1;
                    from = after;
                    continue;
                }
                let ends = Closer::ends_value(bytes, end, after, closer.is_quote());
                if open.is_some() {
                    bracket_end = ends.map(|end| (end, at));
                    from = after;
                    continue;
                }
                if closer.byte == b'`' || closer.written == Written::JsonEscape {
                    if bracket_end.is_some() {
                        unpaired = match unpaired {
                            None => Some(ends),
                            Some(_) => None,
                        };
                        from = after;
                        continue;
                    }
                    if let Some(end) = ends {
                        bracket_end = Some((end, at));
                        from = after;
                        continue;
                    }
                }
                if let Some(end) = ends {
                    return end;
                }
            }
        }
        let Some((c, len)) = spelled_char(bytes, at) else {
            return finish(bracket_end, unpaired, at);
        };
        let closes = match c {
            '"' | '\'' => {
                at + len == bytes.len()
                    || matches!(
                        spelled_char(bytes, at + len),
                        Some(('>' | '/' | ' ' | '\t' | '\r' | '\n', _))
                    )
            }
            _ => matches!(c, '\r' | '\n' | '&' | ',' | ';' | '<'),
        };
        if closes {
            return finish(bracket_end, unpaired, at);
        }
        from = at + len;
    }
}

/// The quote or bracket that closes what a pair sits in: the innermost one opened before its
/// key on its line and not closed before its value (`{"note":"password: x"}`, `(token=x)`,
/// `'pin=1'`, `{\"note\":\"password=x\"}`, `{&quot;note&quot;:&quot;password: x&quot;}`),
/// which an unquoted value must not run past: the text after it holds no secret, and without
/// it a document is no longer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Closer {
    /// `"`, `'`, `` ` `` (a Markdown code span), `)`, `]` or `}`.
    byte: u8,
    /// How the quote is written; a bracket is written plainly.
    written: Written,
}

/// How a quote is written, in the text as it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    Plain,
    /// After a backslash, `\"`, as in JSON quoted inside a string.
    Backslashed,
    /// As a JSON escape, `\u0022`, as .NET's encoder writes a quote in a string.
    JsonEscape,
    /// As a character reference, `&quot;` (or `\u0026quot;`), wrapped in so many `&amp;`s.
    Reference(usize),
}

impl Closer {
    fn plain(byte: u8) -> Self {
        Self {
            byte,
            written: Written::Plain,
        }
    }

    /// The bracket this one closes, `None` for a quote.
    fn opener(self) -> Option<u8> {
        match self.byte {
            b')' => Some(b'('),
            b']' => Some(b'['),
            b'}' => Some(b'{'),
            _ => None,
        }
    }

    /// Whether this closer is a `"` or a `'`, which may end a tag's attribute before its `>`.
    fn is_quote(self) -> bool {
        matches!(self.byte, b'"' | b'\'')
    }

    /// Whether this closer, written as it is, may start with `b`.
    fn may_start(self, b: u8) -> bool {
        match self.written {
            Written::Plain | Written::Backslashed => b == self.byte,
            Written::JsonEscape => b == b'\\',
            Written::Reference(_) => matches!(b, b'&' | b'\\'),
        }
    }

    /// Where this closer, written as it was opened, is at `at`: where the value would end
    /// before it (its backslash too, when backslashed) and where it ends.
    fn written_at(self, bytes: &[u8], at: usize) -> Option<(usize, usize)> {
        let backslashed = at > 0 && bytes[at - 1] == b'\\';
        match self.written {
            Written::Plain => (bytes[at] == self.byte && !backslashed).then_some((at, at + 1)),
            Written::Backslashed => {
                (bytes[at] == self.byte && backslashed).then(|| (at - 1, at + 1))
            }
            Written::JsonEscape => {
                (json_escaped_quote(bytes, at) == Some(self.byte)).then_some((at, at + 6))
            }
            Written::Reference(wraps) => match char_ref_wrapped(bytes, at) {
                Some((c, len, w)) if c == char::from(self.byte) && w == wraps => {
                    Some((at, at + len))
                }
                _ => None,
            },
        }
    }

    /// Where a value ends when a closer found in it, from `end` to `after`, closes what its
    /// pair sits in: at `end`, less the blanks before it. It closes it only when not glued to
    /// more of the value: what follows it, past other closers, a `/` and a sentence's `.`, `!`
    /// or `?`, is the end, whitespace, a tag's `>` after a quote (`quote`: the closer is one)
    /// or a separator that ends a value anyway (`,`, `;`, `&`, `<`; not a reference to
    /// another character, `&#233;`).
    /// Else it is the value's: `(password=a)b)` or `"password=ab".c"` goes whole. The look is
    /// bounded.
    fn ends_value(bytes: &[u8], end: usize, after: usize, quote: bool) -> Option<usize> {
        const LONGEST_LOOK: usize = 16;
        let mut next = after;
        // A tag's `>` (or `&gt;`) follows a quote, this closer or the run's last but a `/`
        // (`")>`, `"/>`); else it is glued (`(x)>cd`).
        let mut last_quote = quote;
        let spelled = loop {
            let found = spelled_char(bytes, next);
            match found {
                Some((
                    c @ ('"' | '\'' | '`' | ')' | ']' | '}' | '/' | '.' | '!' | '?' | '\\'),
                    len,
                )) if next + len - after <= LONGEST_LOOK => {
                    if c != '/' {
                        last_quote = matches!(c, '"' | '\'');
                    }
                    next += len;
                }
                _ => break found,
            }
        };
        let closes = next - after < LONGEST_LOOK
            && match spelled {
                None => true,
                Some(('>', _)) => last_quote,
                // An `&` ends it where it ends a value anyway: a reference to a letter
                // (`)&#233;cd`) is glued.
                Some((c, _)) => c.is_ascii_whitespace() || matches!(c, ',' | ';' | '&' | '<'),
            };
        closes.then(|| {
            let blanks = bytes[..end]
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            end - blanks
        })
    }

    /// The index of this closer's kind in [`Enclosing`]'s counts.
    fn kind(self) -> usize {
        let written = match self.written {
            Written::Plain => 0,
            Written::Backslashed => 1,
            Written::JsonEscape => 2,
            Written::Reference(wraps) => 3 + wraps.min(2),
        };
        match self.byte {
            b')' => 0,
            b']' => 1,
            b'}' => 2,
            b'"' => 3 + written,
            b'`' => 15,
            _ => 9 + written,
        }
    }
}

/// The quote `\u0022` or `\u0027` at `at` stands for.
fn json_escaped_quote(bytes: &[u8], at: usize) -> Option<u8> {
    match bytes.get(at..at + 6)? {
        b"\\u0022" => Some(b'"'),
        b"\\u0027" => Some(b'\''),
        _ => None,
    }
}

/// The bytes [`Enclosing::closer_at`] reads: line ends, quotes, brackets, and the `&` and `\\`
/// that may start one written as a reference or an escape.
const ENCLOSING: [bool; 256] = super::byte_set(b"\n\r&\\\"'`([{)]}");

/// The quotes and brackets open at a point of a text, read once from its start as the pairs
/// are found in order: [`Enclosing::closer_at`] reads on from where it stopped. A line's end
/// closes them all. A `'` opens only after no letter or digit and closes only before none
/// (`don't`, `it's` are words); a closer closes what is open of its kind, and what was opened
/// after that.
#[derive(Debug, Default)]
struct Enclosing {
    open: Vec<Closer>,
    /// How many of each kind ([`Closer::kind`]) are open: a closer of no open kind is told
    /// without a search.
    counts: [usize; 16],
    read: usize,
}

impl Enclosing {
    /// The closer of what the pair whose value starts at `at` sits in, reading `bytes` on to
    /// `at`; `at` only grows from call to call.
    fn closer_at(&mut self, bytes: &[u8], at: usize) -> Option<Closer> {
        let mut i = self.read;
        while i < at {
            // Most bytes open, close or end nothing: skipped by a table, not the match below.
            match bytes[i..at].iter().position(|&b| ENCLOSING[usize::from(b)]) {
                Some(skip) => i += skip,
                None => {
                    i = at;
                    break;
                }
            }
            let mut len = 1;
            match bytes[i] {
                b'\n' | b'\r' => {
                    self.open.clear();
                    self.counts = [0; 16];
                }
                b @ (b'&' | b'\\') => {
                    if let Some((quote @ ('"' | '\''), found, wraps)) = char_ref_wrapped(bytes, i) {
                        len = found;
                        let written = Written::Reference(wraps);
                        self.quote(bytes, i, len, quote as u8, written);
                    } else if b == b'\\' {
                        if let Some(quote) = json_escaped_quote(bytes, i) {
                            len = 6;
                            self.quote(bytes, i, len, quote, Written::JsonEscape);
                        } else if let Some(&next @ (b'"' | b'\'' | b'\\')) = bytes.get(i + 1) {
                            len = 2;
                            if next != b'\\' {
                                self.quote(bytes, i, len, next, Written::Backslashed);
                            }
                        }
                    }
                }
                quote @ (b'"' | b'\'' | b'`') => self.quote(bytes, i, len, quote, Written::Plain),
                b'(' => self.push(Closer::plain(b')')),
                b'[' => self.push(Closer::plain(b']')),
                b'{' => self.push(Closer::plain(b'}')),
                byte @ (b')' | b']' | b'}') => self.close(Closer::plain(byte)),
                _ => {}
            }
            i += len;
        }
        self.read = i;
        self.open.last().copied()
    }

    /// The quote `byte` written `len` bytes at `at`: it closes an open one written so, or
    /// opens one. A `'` next to a word is an apostrophe on that side.
    fn quote(&mut self, bytes: &[u8], at: usize, len: usize, byte: u8, written: Written) {
        let quote = Closer { byte, written };
        let is_open = self.counts[quote.kind()] > 0;
        if byte != b'\'' {
            if is_open {
                self.close(quote);
            } else {
                self.push(quote);
            }
            return;
        }
        let word_before = at > 0 && bytes[at - 1].is_ascii_alphanumeric();
        let word_after = bytes.get(at + len).is_some_and(u8::is_ascii_alphanumeric);
        if is_open && !word_after {
            self.close(quote);
        } else if !word_before {
            self.push(quote);
        }
    }

    fn push(&mut self, closer: Closer) {
        self.counts[closer.kind()] += 1;
        self.open.push(closer);
    }

    /// Closes the innermost open `closer` and all opened after it; nothing when none is open.
    fn close(&mut self, closer: Closer) {
        if self.counts[closer.kind()] == 0 {
            return;
        }
        while let Some(last) = self.open.pop() {
            self.counts[last.kind()] -= 1;
            if last.kind() == closer.kind() {
                break;
            }
        }
    }
}

/// The byte at `at` as a character, or the character a reference there stands for, and its
/// length; `None` at the end, or at an `&` that starts no reference. What it returns is only
/// compared with ASCII characters: a name known to stand for none (`&auml;`, as PHP's
/// `htmlentities` writes `ä`, or `&ltimes;`) is U+FFFD, which ends nothing.
fn spelled_char(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    match *bytes.get(at)? {
        b'&' => {
            let known = char_ref(bytes, at);
            match whole_name_len(bytes, at) {
                Some(len) if known.is_none_or(|(_, known)| known < len) => Some(('\u{FFFD}', len)),
                _ => known,
            }
        }
        b => Some((char::from(b), 1)),
    }
}

/// Length of the object or list at the start of `bytes`, through its closing bracket, with
/// brackets inside quoted strings ignored; all of `bytes` when it is not closed.
fn bracketed_len(bytes: &[u8]) -> usize {
    let mut depth = 0_usize;
    let mut quote = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match (quote, b) {
            (Some(_), b'\\') => i += 1,
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'{' | b'[') => depth += 1,
            (None, b'}' | b']') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Replaces the contents of every XML element whose name is a sensitive key and whose start tag
/// `start_tag` finds (see [`xml_spans`]).
fn redact_xml<'a>(
    text: Cow<'a, str>,
    start_tag: &Regex,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let spans = xml_spans(&text, start_tag, keys, keybuf);
    replace_spans(text, &spans, replacement)
}

/// The contents of every XML element whose name is a sensitive key and whose start tag
/// `start_tag` finds, in order, apart: everything up to its end tag, written as its start tag
/// is, child elements and CDATA included, or up to the end of the text when it has none. A
/// namespace prefix (`ns2:pin`) is not part of the key. So are the contents of the element
/// after one that names it (see [`named_sibling`]).
fn xml_spans(
    text: &str,
    start_tag: &Regex,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // Every start tag pattern starts with `<`, `\` (`\u003c`), `&` (`&lt;`) or `‹`: a text
    // without them (a timestamp, a URL) skips the captures' set-up.
    let bytes = text.as_bytes();
    if memchr::memchr3(b'<', b'\\', b'&', bytes).is_none()
        && memchr::memchr(UNICODE_DASH_LEAD, bytes).is_none()
    {
        return spans;
    }
    // Tags inside a redacted element are not looked at: each byte is searched for an end tag
    // at most once.
    let mut redacted_to = 0;
    // Elements found with no end tag after them: none comes after a later start tag either.
    let mut unended: std::collections::HashSet<(&str, Spelling)> = Default::default();
    for caps in start_tag.captures_iter(text) {
        let (Some(tag), Some(name), Some(close)) = (caps.get(0), caps.get(1), caps.get(2)) else {
            continue;
        };
        let name = name.as_str();
        let local = name.rsplit(':').next().unwrap_or(name);
        if tag.start() < redacted_to || text[..close.start()].ends_with('/') {
            continue;
        }
        if !keys.is_sensitive(local, keybuf) {
            if (local.eq_ignore_ascii_case("key") || local.eq_ignore_ascii_case("name"))
                && let Some((start, end)) =
                    named_sibling(text, tag.start(), tag.end(), name, keys, keybuf)
            {
                spans.push((start, end));
                redacted_to = end;
            }
            continue;
        }
        let spelling =
            element_open_at(text.as_bytes(), tag.start()).map_or(Spelling::Plain, |(s, _)| s);
        let start = tag.end();
        let found = match unended.contains(&(name, spelling)) {
            true => None,
            false => end_tag(&text[start..], name, spelling, false),
        };
        let end = match found {
            Some(at) => start + at,
            // `Option<Token>`, `Vec<Credentials>` in an error text: a type's parameter, not an
            // element, and redacting to the end of the text would take the error's reason.
            None if text[..tag.start()]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_') =>
            {
                unended.insert((name, spelling));
                continue;
            }
            // A cut or unreadable document: fail closed.
            None => text.len(),
        };
        if end > start {
            spans.push((start, end));
        }
        redacted_to = end;
        if end == text.len() {
            break;
        }
    }
    spans
}

/// The contents of the element after a `<key>` or `<name>` element (any case, a namespace
/// prefix aside: the caller looks at its name) whose text is a sensitive key of one word,
/// its sibling: an Apple property list's `<key>Password</key><string>…</string>` (a
/// `.mobileconfig`'s Wi-Fi payload), `<Name>DbPassword</Name><Value>…</Value>`, XML-RPC's
/// `<member><name>password</name><value><string>…</string></value></member>`. Blanks and
/// line breaks may come between the two; the sibling's contents go to its end tag, children included, or to the end of the
/// text when it has none (a cut document). An empty sibling (`<true/>`), or none (the
/// parent's end tag next), leaves nothing. Only tags written plainly (`<`) are read so.
/// `open` and `start` are where the naming element's start tag starts and ends, `name` its
/// name.
fn named_sibling(
    text: &str,
    open: usize,
    start: usize,
    name: &str,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Option<(usize, usize)> {
    /// The longest key read as an element's text.
    const LONGEST_KEY: usize = 64;
    let bytes = text.as_bytes();
    if bytes[open] != b'<' {
        return None;
    }
    let len = memchr::memchr(
        b'<',
        &bytes[start..bytes.len().min(start + LONGEST_KEY + 1)],
    )?;
    let key = text[start..start + len].trim();
    let key_end = start + len;
    let after = bytes[key_end..]
        .strip_prefix(b"</")?
        .strip_prefix(name.as_bytes())?;
    let blank = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
    // A key is one word: prose's `<name>reset your password</name>` names nothing.
    if after.get(blank) != Some(&b'>')
        || key.is_empty()
        || key.bytes().any(|b| b.is_ascii_whitespace())
        || !keys.is_sensitive(key, keybuf)
    {
        return None;
    }
    let mut at = key_end + 2 + name.len() + blank + 1;
    at += bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    let sibling = bytes.get(at..)?.strip_prefix(b"<")?;
    let name_len = sibling
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
        .count();
    if name_len == 0 || !sibling[0].is_ascii_alphabetic() && sibling[0] != b'_' {
        return None;
    }
    let sibling_name = &text[at + 1..at + 1 + name_len];
    let close = at + 1 + name_len + memchr::memchr(b'>', &sibling[name_len..])?;
    if bytes[close - 1] == b'/' {
        return None;
    }
    let contents = close + 1;
    let end = end_tag(&text[contents..], sibling_name, Spelling::Plain, false)
        .map_or(text.len(), |at| contents + at);
    (end > contents).then_some((contents, end))
}

/// `text` with each of `spans` (in order, apart) replaced by `replacement`.
pub(super) fn replace_spans<'a>(
    text: Cow<'a, str>,
    spans: &[(usize, usize)],
    replacement: &str,
) -> Cow<'a, str> {
    if spans.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut written = 0;
    for &(start, end) in spans {
        // A span within one replaced already (sorted by start) is replaced with it.
        if start < written {
            written = written.max(end);
            continue;
        }
        out.push_str(&text[written..start]);
        out.push_str(replacement);
        written = end;
    }
    out.push_str(&text[written..]);
    Cow::Owned(out)
}

/// Drops the end of a value that was cut by truncation.
///
/// The value patterns only recognize whole secrets, so the first half of a card number or a
/// JWT at the cut would slip through. The last whitespace-free word goes, then any trailing
/// digits, spaces and dashes (a card number's earlier groups).
pub(super) fn trim_cut_tail(text: &str) -> &str {
    text.trim_end_matches(|c: char| !c.is_whitespace())
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::super::keys::{DEFAULT_KEY_SUFFIXES, DEFAULT_KEYS};
    use super::*;

    /// The scanner finds the matches [`KEY_SEPARATOR`] finds, with the same key, on written
    /// cases and on strings of the characters around a key in every mix (a fixed pseudo-random
    /// sequence): quotes, references and escapes of quotes, blanks, separators, backslashes,
    /// Unicode's spaces and dashes, runs longer than a key.
    #[test]
    fn the_key_scanner_finds_what_the_pattern_finds() {
        let check = |text: &str| {
            let want: Vec<KeySeparator> = KEY_SEPARATOR
                .captures_iter(text)
                .map(|caps| {
                    let (all, key) = (caps.get(0).expect("match"), caps.get(1).expect("key"));
                    KeySeparator {
                        start: all.start(),
                        key_end: key.end(),
                        end: all.end(),
                    }
                })
                .collect();
            assert_eq!(
                KeySeparators::new(text).collect::<Vec<_>>(),
                want,
                "{text:?}"
            );
        };
        for text in [
            "password=hunter2",
            "password : hunter2",
            r#""password": "hunter2""#,
            r#"\"password\":\"hunter2\""#,
            "'token'=>'x'",
            "&quot;token&quot;: x",
            "&quot;token&quot : x",
            "token&quot: x",
            r"password\u0026quot;: x",
            r"password\u0026quot: x",
            "api&#34;key=1",
            r"pass\u0077ord=x",
            "user[password]=x;a=b",
            "2026-12-06T10:15:30.123Z",
            "set `api_token` = 'x'",
            "`users`.`password`='x'",
        ] {
            check(text);
        }
        let pieces = [
            "pass",
            "word",
            "token",
            "a",
            "1",
            "_",
            "-",
            ".",
            "[",
            "]",
            "\\",
            "\\u0026",
            "\\u0022",
            "&",
            "amp;",
            "quot",
            "apos",
            "#34",
            "#x27",
            ";",
            "\"",
            "'",
            "`",
            " ",
            "\t",
            ":",
            "=",
            ">",
            "\u{a0}",
            "\u{2010}",
            "abcdefghijklmnopqrstuvwxyz0123456789",
            "#0",
            "#x0",
            "X",
            "39",
            "&amp;",
            "\\u0026quot",
            "QUOT",
            "\u{3000}",
            "é",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % 1024).unwrap_or(0)
        };
        for _ in 0..20_000 {
            let len = next() % 16;
            let text: String = (0..len).map(|_| pieces[next() % pieces.len()]).collect();
            check(&text);
        }
    }

    /// Found by a property test (json_shaped_text_never_panics): a backslashed quote opened
    /// before a key and a plain quote at the start of the value's text made the closer's check
    /// subtract from 0 (a panic in a debug build, a wrong offset in a release one).
    #[test]
    fn a_quote_at_the_start_of_a_value_after_a_backslashed_one() {
        let r = crate::sanitize::Redactor::default();
        for text in [r#"\""pin"=,"#, r#"\"pin="x"#, r#"\"password=""#] {
            let _ = r.redact_error(text);
            let _ = r.redact_query(text);
            let _ = r.redact_body(&crate::sanitize::BodyInput::new(
                Some("text/plain"),
                text.as_bytes(),
            ));
        }
    }

    /// The characters past ASCII an element's name may hold are the ones `start_tags` looks
    /// for before it picks the Unicode patterns: were a name to hold one it does not look for,
    /// the element would go unread in a text without any other.
    #[test]
    fn element_names_hold_the_unicode_characters_start_tags_look_for() {
        let class = ELEMENT_NAME_TAIL
            .strip_suffix('*')
            .expect("a class, repeated");
        let in_class = Regex::new(&format!("^{class}$")).expect("class");
        let mut buf = [0; 4];
        for c in ('\u{80}'..=char::MAX).filter(|c| !c.is_whitespace()) {
            assert_eq!(
                in_class.is_match(c.encode_utf8(&mut buf)),
                is_unicode_dash(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    fn run(text: &str, cut: bool) -> String {
        let keys = KeyRules::new(
            DEFAULT_KEYS.iter().map(|k| Box::from(*k)).collect(),
            DEFAULT_KEY_SUFFIXES.iter().map(|k| Box::from(*k)).collect(),
            Vec::new(),
        );
        let values = ValueRules::new("[REDACTED]", Vec::new());
        let mut out = String::new();
        redact_text_body(text, cut, false, &keys, &values, "[REDACTED]", &mut out);
        out
    }

    /// Found by a probe: a TOML multi-line string (`"""` or `'''`) lost only its first line,
    /// the rest of the value was kept up to the closing triple quote.
    #[test]
    fn a_toml_multi_line_string_goes_to_its_closing_triple_quote() {
        let cases = [
            (
                "password = \"\"\"\nhunter2\nhunter3\"\"\"\nuser = \"ann\"",
                "password = [REDACTED]\nuser = \"ann\"",
            ),
            (
                "[db]\npassword = '''\nhunter2\n'''\nport = 5432",
                "[db]\npassword = [REDACTED]\nport = 5432",
            ),
            // An escaped quote inside a basic string, and quotes before the closing ones.
            (
                "token = \"\"\"a\\\"\"\"b\nc\"\"\"\"\nx = 1",
                "token = [REDACTED]\nx = 1",
            ),
            // Unclosed: to the end of the text.
            ("password = \"\"\"\nhunter2\nmore", "password = [REDACTED]"),
            // On one line, as before; a key that is not sensitive keeps its lines.
            (
                "password = '''hunter2'''\nx = 1",
                "password = [REDACTED]\nx = 1",
            ),
            ("name = \"\"\"\nAnn\n\"\"\"", "name = \"\"\"\nAnn\n\"\"\""),
        ];
        for (text, want) in cases {
            assert_eq!(run(text, false), want, "{text:?}");
        }
    }

    /// Found by review: a key whose `\` starts no JSON escape, a value that starts with a
    /// bracket, and a type's parameter in an error text.
    #[test]
    fn backslashed_keys_bracketed_values_and_generics() {
        for text in [
            r"CORP\svc_password=hunter2",
            r"set C:\app\db_password=hunter2",
            r"x\password=hunter2",
        ] {
            let out = run(text, false);
            assert!(!out.contains("hunter2"), "{text}: {out}");
        }
        assert_eq!(
            run("user=ann password=[x9]Kq!2mZ&next=1", false),
            "user=ann password=[REDACTED]&next=1"
        );
        for text in [
            "expected Option<Token> at line 1 column 9",
            "no Vec<Credentials> for Arc<Mutex<Session>> here",
        ] {
            assert_eq!(run(text, false), text);
        }
        // An element that has no end tag, not glued to a word: a cut document, failed closed.
        assert_eq!(run("<password>hunter2", false), "<password>[REDACTED]");
        assert_eq!(
            run("x <password>hunter2 more", false),
            "x <password>[REDACTED]"
        );
        // Glued to a word but with its end tag: an element.
        assert_eq!(
            run("x<password>hunter2</password>", false),
            "x<password>[REDACTED]</password>"
        );
    }

    /// Found by a probe: a `Cookie:` header quoted inside a line of text or a JSON string lost
    /// its first cookie only; every cookie after it is its value, to the line's end.
    #[test]
    fn a_cookie_header_in_text_goes_whole() {
        let r = crate::sanitize::Redactor::default();
        assert_eq!(
            r.redact_error("request had Cookie: theme=dark; laravel_session=hunter2XYZ"),
            "request had Cookie: [REDACTED]"
        );
        assert_eq!(
            r.redact_error("Cookie: theme=dark; laravel_session=hunter2XYZ"),
            "Cookie: [REDACTED]"
        );
        assert_eq!(
            r.redact_error("got cookie: a=1; sid=hunter2XYZ\nnext line stays"),
            "got cookie: [REDACTED]\nnext line stays"
        );
        let json = r
            .redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"msg":"request had Cookie: theme=dark; laravel_session=hunter2XYZ","n":1}"#,
            ))
            .unwrap_or_default();
        assert_eq!(json, r#"{"msg":"request had Cookie: [REDACTED]","n":1}"#);
        // Quoted, the quotes bound it; `cookie=` is a pair as any other.
        assert_eq!(
            r.redact_error("{'Cookie': 'a=1; b=2', 'Host': 'x'}"),
            "{'Cookie': [REDACTED], 'Host': 'x'}"
        );
        assert_eq!(
            r.redact_error("cookie=abc; path=/"),
            "cookie=[REDACTED]; path=/"
        );
    }

    /// Rust's `Debug` of a sensitive field: the wrappers after its key (`Some(…)`,
    /// `Secret(…)`, a struct, a tuple) go whole, to their closer, over the lines `{:#?}` prints
    /// them on, strings holding brackets and `,` included; what follows stays.
    #[test]
    fn rust_debug_wrappers_go_whole() {
        for (text, expected) in [
            (
                "Config {\n    token: Some(\n        \"hunter2\",\n    ),\n    user: \"ann\",\n}",
                "Config {\n    token: [REDACTED],\n    user: \"ann\",\n}",
            ),
            (
                "Config {\n    api_key: Some(\n        ApiKey(\n            \"hunter2\",\n        ),\n    ),\n    user: \"ann\",\n}",
                "Config {\n    api_key: [REDACTED],\n    user: \"ann\",\n}",
            ),
            (
                "Login {\n    password: Password {\n        inner: \"hunter2\",\n    },\n    user: \"ann\",\n}",
                "Login {\n    password: [REDACTED],\n    user: \"ann\",\n}",
            ),
            (
                "Login {\n    secret: (\n        \"hunter2\",\n        2,\n    ),\n}",
                "Login {\n    secret: [REDACTED],\n}",
            ),
            (
                "Config { password: Some(\"a, b) c\"), user: \"ann\" }",
                "Config { password: [REDACTED], user: \"ann\" }",
            ),
            (
                "Config { secret: Secret(\"x,y\"), token: secrecy::SecretBox(\"a,b\"), n: 1 }",
                "Config { secret: [REDACTED], token: [REDACTED], n: 1 }",
            ),
            ("password: Some(\"hunter2\")", "password: [REDACTED]"),
            (
                "Config { pin: Some('(') , user: \"ann\" }",
                "Config { pin: [REDACTED], user: \"ann\" }",
            ),
            // Prose keeps its words: no wrapper follows the key. (Not at the line's start,
            // where a sensitive key's line loses all the rest, see `yaml`.)
            (
                "error: token: expired (at 10:00), retry",
                "error: token: [REDACTED], retry",
            ),
            ("token: expired (at 10:00), retry", "token: [REDACTED]"),
        ] {
            assert_eq!(
                crate::sanitize::Redactor::default().redact_error(text),
                expected,
                "{text:?}"
            );
        }
        // Unclosed: to the end of the text.
        let out = run("Config {\n    token: Some(\n        \"hunter2\",\n", true);
        assert!(!out.contains("hunter2"), "{out}");
    }

    /// Found by review: a `Debug` wrapper never closed (`Secret(` or `Some(` in prose, a log
    /// line cut short) took the rest of the text with it, every line after it lost. Unclosed,
    /// one printed on one line now ends with its line, and one whose opener ends its line
    /// (`{:#?}`) with the last line after it indented more than its key.
    #[test]
    fn unclosed_debug_wrappers_end_with_their_lines() {
        for (text, expected) in [
            (
                "password: Secret(abc\nnext line stays\nand this",
                "password: [REDACTED]\nnext line stays\nand this",
            ),
            (
                "error: token: Some(\"abc) def\r\nuser: ann",
                "error: token: [REDACTED]\r\nuser: ann",
            ),
            (
                "Config {\n    api_key: Some(\n    at main.rs:3\n    at lib.rs:9",
                "Config {\n    api_key: [REDACTED]\n    at main.rs:3\n    at lib.rs:9",
            ),
            (
                "Config {\n    api_key: Some(\n    at main.rs:3",
                "Config {\n    api_key: [REDACTED]\n    at main.rs:3",
            ),
            (
                "  password: Some(\n      ApiKey(\n          \"hunter2\",\n\n      ),\n  user: ann\n}",
                "  password: [REDACTED]\n  user: ann\n}",
            ),
            // Closed, as before, over lines and on one.
            (
                "  password: Some(\n      \"a) b\",\n\n  ),\n  user: ann",
                "  password: [REDACTED],\n  user: ann",
            ),
        ] {
            assert_eq!(
                crate::sanitize::Redactor::default().redact_error(text),
                expected,
                "{text:?}"
            );
            assert_eq!(run(text, false), expected, "{text:?}");
        }
        // Cut inside one: to the cut, fail closed.
        let out = run(
            "Config {\n    token: Some(\n        Token(\n            \"hunter2\",\n",
            true,
        );
        assert!(!out.contains("hunter2"), "{out}");
    }

    /// Found by review: a value starting with `:(` (prose's frown, `password: :( forgot`) was
    /// read as a wrapper whose path is `:`, never closed, and took the rest of the text with
    /// it, every line after it lost. No `Debug` path starts with `:`.
    #[test]
    fn a_frown_is_no_wrapper() {
        assert_eq!(
            run("password: :( forgot it\nuser: ann\nstatus=200", false),
            "password: [REDACTED]\nuser: ann\nstatus=200"
        );
    }

    /// Found by review: Ruby's hash rocket (`"password"=>"a, b"`, `:token => "…"`, as `p` and
    /// `pp` print a hash) was read as a `=` whose value starts with `>`, unquoted, so it ended
    /// at the first `,` and the rest of a quoted value was stored.
    #[test]
    fn ruby_hash_rockets() {
        for (text, expected) in [
            (
                "{\"password\"=>\"hun, ter2\", \"user\"=>\"ann\"}",
                "{\"password\"=>[REDACTED], \"user\"=>\"ann\"}",
            ),
            (
                "{:token => 'hun, ter2', :user => 'ann'}",
                "{:token => [REDACTED], :user => 'ann'}",
            ),
            // `pp` breaks a pair too long for its line after the rocket.
            (
                "{\"password\"=>\n  \"hun, ter2, and a long tail\",\n \"user\"=>\"ann\"}",
                "{\"password\"=>\n  [REDACTED],\n \"user\"=>\"ann\"}",
            ),
            (
                "{\"token\"=>\r\n  \"hun, ter2\"}",
                "{\"token\"=>\r\n  [REDACTED]}",
            ),
        ] {
            assert_eq!(run(text, false), expected, "{text}");
        }
    }

    #[test]
    fn key_value_pairs_in_text() {
        assert_eq!(
            run("user=bob&password=hunter2&x=1", false),
            "user=bob&password=[REDACTED]&x=1"
        );
        assert_eq!(
            run("DB_PASSWORD: hunter2\nHOST: db", false),
            "DB_PASSWORD: [REDACTED]\nHOST: db"
        );
        assert_eq!(
            run(r#"{"api_key": "abc def"}"#, false),
            r#"{"api_key": [REDACTED]}"#
        );
        assert_eq!(
            run("Authorization: Basic dXNlcjpwYXNz", false),
            "Authorization: [REDACTED]"
        );
        // A sensitive pair after an ordinary one on the same line.
        assert_eq!(
            run("a=1 password=hunter2 b", false),
            "a=1 password=[REDACTED]"
        );
        assert_eq!(
            run("secret='x y' next=1", false),
            "secret=[REDACTED] next=1"
        );
    }

    /// Found by a probe: a key in backquotes, as MySQL quotes a column's name and Laravel's
    /// `QueryException` prints its SQL, kept its value; a key in double quotes or brackets
    /// lost it. The backquotes around other names, and their values, stay.
    #[test]
    fn sql_columns_in_backquotes() {
        let r = crate::sanitize::Redactor::default();
        let body = |ct: &str, text: &str| {
            r.redact_body(&crate::sanitize::BodyInput::new(Some(ct), text.as_bytes()))
                .unwrap_or_default()
        };
        for (ct, text, want) in [
            (
                "text/plain",
                "set `api_token` = 'ApiTok99xyz'",
                "set `api_token` = [REDACTED]",
            ),
            (
                "application/sql",
                "UPDATE `users` SET `password`='Hunter2Pass' WHERE `id`=1;",
                "UPDATE `users` SET `password`=[REDACTED] WHERE `id`=1;",
            ),
            // The controls, read before.
            (
                "text/plain",
                r#"set "api_token" = 'ApiTok99xyz'"#,
                r#"set "api_token" = [REDACTED]"#,
            ),
            (
                "text/plain",
                "UPDATE u SET [Password] = 'Hunter2Pass'",
                "UPDATE u SET [Password] = [REDACTED]",
            ),
        ] {
            assert_eq!(body(ct, text), want, "{text}");
        }
        assert_eq!(
            r.redact_error(
                "SQLSTATE[HY000]: General error: 1205 Lock wait timeout exceeded (Connection: mysql, SQL: update `users` set `remember_token` = pQ8xRmT3LkN7vB2c, `users`.`updated_at` = 2024-01-01 10:00:00 where `id` = 1)"
            ),
            "SQLSTATE[HY000]: General error: 1205 Lock wait timeout exceeded (Connection: mysql, SQL: update `users` set `remember_token` = [REDACTED], `users`.`updated_at` = 2024-01-01 10:00:00 where `id` = 1)"
        );
        // Lookalikes: other columns, a code span in prose, a Markdown key that names nothing.
        for text in [
            "update `users` set `name` = 'Ann', `updated_at` = 1 where `id` = 1",
            "run `make test` = the check",
            "the `token` column is indexed",
            "`tokenizer`: 'x'",
        ] {
            assert_eq!(body("text/plain", text), text);
        }
    }

    /// Found by review: an unquoted value ran past the closing quote or bracket of what its
    /// pair sits in (`{"note":"password: hunter2"}` was stored `{"note":"password: [REDACTED]`,
    /// a document no longer). A closer that matches an opener before the key, and is not glued
    /// to more of the value, ends the value; anything else runs on, as before.
    #[test]
    fn closers_opened_before_the_key_stay() {
        for (input, want) in [
            (
                r#"{"note":"password: hunter2"}"#,
                r#"{"note":"password: [REDACTED]"}"#,
            ),
            (
                r#"x {"msg":"user=ann password=hunter2","n":1} y"#,
                r#"x {"msg":"user=ann password=[REDACTED]","n":1} y"#,
            ),
            (
                "login (password=hunter2) failed",
                "login (password=[REDACTED]) failed",
            ),
            ("x 'token=abc' y", "x 'token=[REDACTED]' y"),
            // A Markdown code span.
            ("run `token=abc`.", "run `token=[REDACTED]`."),
            ("[secret: x]", "[secret: [REDACTED]]"),
            (
                "LoginRequest { user: ann, password: hunter2 }",
                "LoginRequest { user: ann, password: [REDACTED] }",
            ),
            (
                r#"msg={\"note\":\"password=hunter2\"} next"#,
                r#"msg={\"note\":\"password=[REDACTED]\"} next"#,
            ),
            ("<p>password: x</p>", "<p>password: [REDACTED]</p>"),
            // A closer glued to more of the value is the value's: the secret goes whole.
            ("(password=a)b) x", "(password=[REDACTED]) x"),
            ("(password=f(x) y) z", "(password=[REDACTED]) z"),
            (r#""password=ab"cd" x"#, r#""password=[REDACTED]" x"#),
            (r#""password=ab".cd" x"#, r#""password=[REDACTED]" x"#),
            // No opener before the key, or one closed before it: the value runs on.
            ("password=hunter2) x", "password=[REDACTED]"),
            ("(a) password=hunter2) x", "(a) password=[REDACTED]"),
            (r#""a" password=hunter2"} x"#, r#""a" password=[REDACTED]"#),
            ("don't password=hunter2') x", "don't password=[REDACTED]"),
            // A value quoted itself runs to its own quote, as before.
            (
                r#"{"m":"password='a b' c"}"#,
                r#"{"m":"password=[REDACTED] c"}"#,
            ),
        ] {
            assert_eq!(run(input, false), want, "{input}");
        }
        let r = crate::sanitize::Redactor::default();
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"log":"login (password=hunter2) failed","n":1}"#,
            ))
            .as_deref(),
            Some(r#"{"log":"login (password=[REDACTED]) failed","n":1}"#)
        );
        assert_eq!(
            r.redact_query(r#"q={"title":"Token:+none"}&n=1"#),
            r#"q={"title":"Token:+[REDACTED]"}&n=1"#
        );
        assert_eq!(
            r.redact_query("q=%7B%22note%22%3A%22password%3A%20hunter2%22%7D&n=1"),
            r#"q={"note":"password:+[REDACTED]"}&n=1"#
        );
    }

    /// The quotes of what a pair sits in written as character references (JSON escaped into
    /// HTML) or JSON escapes (.NET's encoder) end an unquoted value as plain ones do, when the
    /// value's closer is written as its opener was.
    #[test]
    fn escaped_closers_opened_before_the_key_stay() {
        for (input, want) in [
            (
                "{&quot;note&quot;:&quot;password: hunter2&quot;} x",
                "{&quot;note&quot;:&quot;password: [REDACTED]&quot;} x",
            ),
            (
                r"{\u0022note\u0022:\u0022password: hunter2\u0022} x",
                r"{\u0022note\u0022:\u0022password: [REDACTED]\u0022} x",
            ),
            (
                "<a data-x=\"{&quot;m&quot;:&quot;token=abc&quot;}\">y</a>",
                "<a data-x=\"{&quot;m&quot;:&quot;token=[REDACTED]&quot;}\">y</a>",
            ),
            ("x &#39;token=abc&#39; y", "x &#39;token=[REDACTED]&#39; y"),
            (
                "{&amp;quot;m&amp;quot;:&amp;quot;pin=1&amp;quot;} x",
                "{&amp;quot;m&amp;quot;:&amp;quot;pin=[REDACTED]&amp;quot;} x",
            ),
            // Written otherwise than opened, or glued to more of the value: it runs on.
            ("&quot;password: ab\"} x", "&quot;password: [REDACTED]"),
            (
                "&quot;password: ab&quot;c&quot;} x",
                "&quot;password: [REDACTED]&quot;} x",
            ),
            (
                "don&#39;t password=ab&#39;) x",
                "don&#39;t password=[REDACTED]",
            ),
        ] {
            assert_eq!(run(input, false), want, "{input}");
        }
    }

    /// Found by review: a closer followed by a `>` or a reference that ends no value
    /// (`(password=ab)>cd`, `(password=ab)&#233;cd`) was taken for the end of what the pair
    /// sits in, and the rest of the secret stayed. A `>` ends it only after a quote (a tag's
    /// end), a reference only where it would end the value anyway.
    #[test]
    fn closers_glued_to_a_tag_end_or_a_reference_are_the_values() {
        for (input, want) in [
            ("(password=ab)>cd", "(password=[REDACTED]"),
            ("[password=ab]>cd x", "[password=[REDACTED]"),
            ("`token=ab`>cd", "`token=[REDACTED]"),
            ("(password=ab)&#233;cd x", "(password=[REDACTED]"),
            ("(password=ab)&eacute;cd x", "(password=[REDACTED]"),
            ("(password=ab)&quot;cd x", "(password=[REDACTED]"),
            ("(app --password ab)>cd", "(app --password [REDACTED]"),
            (
                "(app --password ab)&#233;cd x",
                "(app --password [REDACTED] x",
            ),
            // A tag's end after a quote, or a reference that ends a value, still closes.
            (
                "<a title=\"(password=x)\">y</a>",
                "<a title=\"(password=[REDACTED])\">y</a>",
            ),
            (
                "<a title='(token=x)'/>y",
                "<a title='(token=[REDACTED])'/>y",
            ),
            (
                "<x data=\"{&quot;a&quot;:&quot;token=x&quot;}\">y</x>",
                "<x data=\"{&quot;a&quot;:&quot;token=[REDACTED]&quot;}\">y</x>",
            ),
            (
                "<x data=&quot;(token=x)&quot;&gt;y",
                "<x data=&quot;(token=[REDACTED])&quot;&gt;y",
            ),
            ("(password=ab)&amp;x=1", "(password=[REDACTED])&amp;x=1"),
            ("(password=ab)&x=1", "(password=[REDACTED])&x=1"),
        ] {
            assert_eq!(run(input, false), want, "{input}");
        }
    }

    /// Found by review: a bracket's closer followed by a space ended the value though another
    /// closer of its kind, unmatched, followed on: `(password=ab) cd) x` kept ` cd)`. In
    /// doubt the whole run goes: the value ends before the last such closer, and none when
    /// the last one is glued to more of it.
    #[test]
    fn a_brackets_closer_followed_by_another_is_in_doubt() {
        for (input, want) in [
            ("(password=ab) cd) x", "(password=[REDACTED]) x"),
            ("(password=ab). cd!) x", "(password=[REDACTED]) x"),
            ("[secret: a] b] c", "[secret: [REDACTED]] c"),
            ("{token: a} b} c", "{token: [REDACTED]} c"),
            ("(password=ab) (cd) x) y", "(password=[REDACTED]) y"),
            ("(password=ab) cd)e f", "(password=[REDACTED]"),
            // Brackets closed in the rest of the line leave no doubt.
            (
                "login (password=ab) failed (see docs)",
                "login (password=[REDACTED]) failed (see docs)",
            ),
            (
                "(token=x) (password=y) z",
                "(token=[REDACTED]) (password=[REDACTED]) z",
            ),
            ("(password=ab), cd) x", "(password=[REDACTED]), cd) x"),
            // A backquote (a code span) with one more unpaired after it is in doubt too.
            ("`token=ab` cd` x", "`token=[REDACTED]` x"),
            ("`token=ab` cd`e x", "`token=[REDACTED]"),
            (
                "run `token=abc` and `x`.",
                "run `token=[REDACTED]` and `x`.",
            ),
            // So is a quote written as a JSON escape, which a space after it did not end before.
            (
                r"{\u0022m\u0022:\u0022password=ab\u0022 cd\u0022} x",
                r"{\u0022m\u0022:\u0022password=[REDACTED]\u0022} x",
            ),
            (
                r"\u0022password=ab\u0022 and \u0022x\u0022 y",
                r"\u0022password=[REDACTED]\u0022 and \u0022x\u0022 y",
            ),
            // The look for another closer is bounded: past it, the closer ends the value.
            (
                &format!("(password=ab) failed {}", "y".repeat(300)),
                &format!("(password=[REDACTED]) failed {}", "y".repeat(300)),
            ),
        ] {
            assert_eq!(run(input, false), want, "{input}");
        }
    }

    /// A long option's value written with a space is the next word, and ends before the
    /// closer of what the option sits in as a pair's value does (`cmd="app --password x"`
    /// lost its `"`).
    #[test]
    fn option_values_keep_the_closers_opened_before_them() {
        for (input, want) in [
            (
                r#"cmd="app --password hunter2" next=1"#,
                r#"cmd="app --password [REDACTED]" next=1"#,
            ),
            (
                "x $(app --password hunter2) y",
                "x $(app --password [REDACTED]) y",
            ),
            ("run '--token abc'.", "run '--token [REDACTED]'."),
            (
                "{&quot;cmd&quot;:&quot;app --pin 1234&quot;} x",
                "{&quot;cmd&quot;:&quot;app --pin [REDACTED]&quot;} x",
            ),
            // Glued to more of the value, or no opener: the word goes whole.
            ("(app --password a)b) x", "(app --password [REDACTED]) x"),
            ("(app --password f(x)) x", "(app --password [REDACTED]) x"),
            ("--password hunter2) x", "--password [REDACTED] x"),
        ] {
            assert_eq!(run(input, false), want, "{input}");
        }
    }

    /// A command line's long option takes the next word as its value (`--password hunter2`,
    /// quoted or not); `-p` is left alone: it is a port to ssh, curl's proxy and many more.
    #[test]
    fn command_line_options() {
        let cases = [
            (
                "mysql --user app --password hunter2 db",
                "mysql --user app --password [REDACTED] db",
            ),
            ("tool --password=hunter2 -v", "tool --password=[REDACTED]"),
            (
                "deploy --db-password 'a b' --token\t\"x y\" --force",
                "deploy --db-password [REDACTED] --token\t[REDACTED] --force",
            ),
            (
                "x --api-key k1\n--pin 1234",
                "x --api-key [REDACTED]\n--pin [REDACTED]",
            ),
            // Found by a probe: Go's `flag` package takes long options with one dash.
            ("-password hunter2XYZ", "-password [REDACTED]"),
            (
                "./server -token abc123 -port 8080",
                "./server -token [REDACTED] -port 8080",
            ),
            // MySQL's short option glued to its password: the password goes, not the next
            // word.
            (
                "mysql -uroot -pSECRET2 shop",
                "mysql -uroot -p[REDACTED] shop",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, false), want, "{input}");
        }
        for plain in [
            "ssh -p 2222 host",
            "app -pw x -v",
            "tool -ptoken1 x",
            "an x-token abc",
            "tool -passwords-file f",
            "tool --password --verbose",
            "x--password y",
            "tool --passwords-file f",
            "git log -- password",
        ] {
            assert_eq!(run(plain, false), plain);
        }
    }

    /// Form-style nested keys in text: `user[password]=…`.
    #[test]
    fn nested_keys_in_text() {
        assert_eq!(
            run("user[name]=ann&user[password]=hunter2", false),
            "user[name]=ann&user[password]=[REDACTED]"
        );
        assert_eq!(
            run("card[cvc]: 123\ncard[exp]: 12/30", false),
            "card[cvc]: [REDACTED]\ncard[exp]: 12/30"
        );
    }

    /// A quoted value ends at its closing quote, not at an escaped one; an object or list
    /// value ends at its closing bracket; a key may hold JSON escapes or be a path.
    #[test]
    fn quoted_nested_and_escaped_values() {
        assert_eq!(
            run(r#"user: "ann", password: "ab\"cd-hunter2", next: 1"#, false),
            r#"user: "ann", password: [REDACTED], next: 1"#
        );
        assert_eq!(
            run(
                r#"auth = {"user": "ann", "pass": "hunter2"}, next = 1"#,
                false
            ),
            r#"auth = [REDACTED], next = 1"#
        );
        assert_eq!(
            run("token=[\"a]\", 'b', {\"c\": \"d\"}]\nnext=1", false),
            "token=[REDACTED]\nnext=1"
        );
        assert_eq!(run("secret={never closed", false), "secret=[REDACTED]");
        assert_eq!(
            run(r#"x "pass\u0077ord": "hunter2""#, false),
            r#"x "pass\u0077ord": [REDACTED]"#
        );
        // JSON quoted inside a string of a log line.
        assert!(!run(r#"msg={\"password\":\"hunter2\"}"#, false).contains("hunter2"));
        // A `Debug` print, as in an error text.
        assert_eq!(
            run(
                r#"LoginRequest { user: "ann", password: "hunter2" }"#,
                false
            ),
            r#"LoginRequest { user: "ann", password: [REDACTED] }"#
        );
    }

    /// A sensitive element's contents go up to its end tag: child elements, CDATA, a
    /// namespace prefix and attributes on the next line included.
    #[test]
    fn whole_sensitive_xml_elements() {
        let cases = [
            (
                "<a><password><![CDATA[hunter2]]></password><b>1</b></a>",
                "<a><password>[REDACTED]</password><b>1</b></a>",
            ),
            (
                "<password><value>hunter2</value></password><user>ann</user>",
                "<password>[REDACTED]</password><user>ann</user>",
            ),
            (
                "<ns2:pin>1234</ns2:pin><ns2:id>7</ns2:id>",
                "<ns2:pin>[REDACTED]</ns2:pin><ns2:id>7</ns2:id>",
            ),
            (
                "<wsse:Password\n    Type=\"PasswordText\">hunter2</wsse:Password >",
                "<wsse:Password\n    Type=\"PasswordText\">[REDACTED]</wsse:Password >",
            ),
            // A plural of a key is one too (`keys`).
            (
                "<token/><token /><token></token><tokens>x</tokens><tokenx>y</tokenx>",
                "<token/><token /><token></token><tokens>[REDACTED]</tokens><tokenx>y</tokenx>",
            ),
            // No end tag: the rest of the text goes.
            ("<x><secret>abc<y>def</y>", "<x><secret>[REDACTED]"),
            // `</passwordx>` is not the end tag.
            (
                "<password>a</passwordx>b</password>c",
                "<password>[REDACTED]</password>c",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, false), want, "{input}");
        }
    }

    /// Hostile text stays linear: each value is scanned once, keys inside a redacted value
    /// are skipped. 128 KiB of each takes milliseconds; a scan to the end of the line for
    /// each of the `\"password\":\"` values took 45 s (debug build). The bound is loose so
    /// that only a quadratic scan can miss it.
    #[test]
    fn hostile_text_stays_linear() {
        for unit in [
            r#"\"password\":\"a"#,
            r#"password=\"x "#,
            r#"token={"a":["#,
            r#"secret="ab\""#,
            "<password>",
            "<password></passwordx",
            "<a><pin>1</pin>",
            r"pass\u0077ord: 'x\' ",
            r#"user[password]=[""#,
            r#"<input value=""#,
            "<a name=password value='x' ",
            "<textarea name=token>",
            r#"<i x=" y='\" type=password value="#,
            r#"<input value=\"a "#,
            "a<b value=1 ",
            r"\u003ctextarea name=token\u003e",
            r#"\u003ci value=\"a \u003c/textarea "#,
            r"\u003cpassword\u003e",
            "&lt;password&gt;&lt;/passwordx ",
            "&lt;textarea name=token&gt;&lt;/textarea",
            "&lt;i value=&quot;a &amp;amp;amp;amp;#0000",
            "<a name=password value=&amp;amp;amp;quot;x ",
            "&lt;a x=&#39; name=&quot;pin&quot; value=",
            "pwd: &quot;a&amp;b &amp;#39; ",
            "&quot;token&quot;:&#39;x&#34; ",
            r"pwd: \u0026quot;a\u0026amp;b \u0026#39; \x ",
            r"\u0026quot;token\u0026quot;:\u0026#39;x\u0026#34; ",
            r"\u003Ci name=pin value=\u0022a \u0027 ",
            r"\u0022pin\u0022:\u0022a \u0027 \x ",
            "api&lowbar;key&equals;&quot;a&lowbar; ",
            "&quot;token&quot;&colon;&lsqb;&quot;x&period;",
            "&lt;i name&equals;pin value&equals;&quot;a&Tab;",
            "password=a&auml;&amp;amp;b&ltimes;&CounterClockwiseContourIntegralx;",
            "&lt;i type=password value=a&amp;gt;&amp;#x20;b ",
            "&lt;pass&lowbar;word&gt;&lt;&sol;pass&lowbar;wordx ",
            "&lt;i value=&quot;a&amp;quot; name=pin ",
            "&quot;token&quot;:&quot;a\\&quot;\\\\&amp;quot; ",
            // A value's first character, read as the value's or as what follows an empty one.
            "password=</aaaa password=<b pin=&aaaa token=&lt;&sol;a ",
            "pin=, pin=,a pin=;x&lt;/a&gt; ",
            // A quote glued to more of its value.
            r#"secret="a"b "#,
            "pwd: &quot;a&quot;b&quot; ",
            r#"<i type=password value="a"b "#,
            "&lt;i name=pin value=&quot;a&quot;b&quot;c ",
            // Keys written with characters keys lose.
            "pass\u{ad}word\u{a0}=x\u{2014}",
            "api\u{2010}key=a\u{200b} ",
            // Values that start with a sensitive element's start tag.
            "pin=<pin>a;</pin ",
            "pin=<a><pin>1;",
            // Quotes written twice inside a value.
            "pin=''x pin='a''",
            // Pairs inside a redacted value, each read to its own end.
            r#"token="x "#,
            "pin=x pin=,y ",
            r#"pin=\"\\""#,
            r#"pin="a\""#,
            // Keys with characters keys lose, by name.
            "pin=a&ensp;b&ZeroWidthSpace;",
            "api&ensp;key=a&hyphen;",
            "x&zwj;x&zwj;x&zwj;x&zwj;x&zwj;x&zwj;x&zwj;x&zwj; pin=1 ",
            // Schemes whose credential runs to the next whitespace: one long run after many
            // schemes, and schemes glued to each other.
            "Bearer Basic Token xx",
            "Bearer\tBearer!!!!!!!!",
            // Schemes in any case whose run is kept, each searched again after its scheme.
            "token basic TOKEN bearer x1y2 ",
            "x.token token.token1 ",
            // URLs whose userinfo never ends, or ends many times.
            "a://b:c@d/@",
            "a://:b@c@d@e://f:@",
            "x://u:p@h ",
            // Quotes written twice in escaped values.
            r#"pin=\"\"\"\"a "#,
            "pin=&quot;&quot;&quot;&quot;a ",
            r"pin=\u0022\u0022\u0022\u0022a ",
            // A value's quote and `>` inside it, looked for up to the next tag.
            r#"<i type=password value="a">b" "#,
            r#"<i name=pin value="a">b"#,
            "&lt;i type=password value=&quot;a&quot;&gt;b&quot; ",
            r#"<i name=pin value=""">b"#,
            // Names of characters keys lose before a tag's close.
            "&lt;api&ensp;key&gt;a&lt;/api&ensp;key&gt; ",
            "a&ensp;a&ensp;a&ensp;a&ensp;&gt; pin=1 ",
            // Long options whose values run on, or are options themselves.
            "--pin --pin '",
            "--token \"a ",
            "--pin ----pin --pin x ",
            // Elements named with Unicode dashes, opened with `‹`, Go-escaped with `&ensp;`.
            "<api\u{2010}key>",
            "<api\u{2011}key></api\u{2011}keyx ",
            "\u{2039}pin>\u{2039}/pinx ",
            r"\u003capi&ensp;key\u003e\u003c/api&ensp;keyx ",
            r"\u003capi&ensp;key\u003e",
            // Schemes after escaped spaces, all in one run.
            r"token\u0020rejected\u0020password=1\u0020",
            r"Basic\u0020Basic\u0020x1",
            r"bearer\u0009token\u0020basic\u0020x1y2\u0020",
            // Schemes after percent-encoded and HTML-escaped spaces, all in one run.
            "token%20rejected%20password=1%20",
            "Basic%20Basic&nbsp;Basic&#32;x1",
            "bearer&#x20;token%C2%A0basic&NonBreakingSpace;x1y2&Tab;",
            "%20%20%20%20&nbsp;&nbsp;&#32;&#32;\u{a0}Bearer\u{a0}x1y2%2",
            "bearer&#x0020;token+basic&#00032;x1y2%2520",
            "&#0000000000000000000;Bearer+x1y2+",
            "token%20x%2C&#39;&amp;&#x00000000000000000000000000000041;</p>basic+x1y2+",
            // Long options with Unicode dashes, whose values run on or are options.
            "\u{2013}\u{2013}pin \u{2014}pin '",
            "\u{2014}token \"a ",
            "\u{2014}\u{2014}\u{2014}pin \u{2212}-pin x \u{2019}\u{2014}pin \u{2010}pin ",
            // Long options with escaped dashes, whose values run on or are options.
            r"\u002d\u002dpin \u002d\u002dpin '",
            r#"\u002d\u002dtoken "a "#,
            r"\n\u002d\u002dpin\u0020\u002d\u002dpin\u0020x -\u002d-\u002dpin ",
            // Values holding `">` and a tag, looked for past the tag up to the next `="`.
            r#"<i type=password value="a">b<b>x"#,
            r#"<i name=pin value="a"><b>"x" "#,
            "&lt;i name=pin value=&Tab;&quot;a&quot;&gt;b&lt;b&gt;",
            r"\u003ci name=pin value=\u0022a\u0022\u003e\u003cb\u003e",
            r#"<i name=pin value="a"b">c<b>"#,
            // Each tag's quote spelled otherwise than the next one's: no look finds its quote.
            r#"<i name=pin value="a">&lt;i name=pin value=&quot;a&quot;&gt;"#,
            // Values inside quotes and brackets opened before their keys, their closers glued
            // to more of the value, nested in it or many in a row; openers never closed.
            r#"{"m":"pin=a".b"#,
            "(pin=a)b(pin=(x) ",
            "'pin=a'b 'x' don't ",
            r#"\"pin=a\"x\\"#,
            r#"(pin=a)"'!?.)]}>)"'!?.)]}>)"'!?.)]} "#,
            "((([[[{{{\"'pin=x ",
            "pin=))))]]]]}}}}",
            "(pin=((((((((((((((((x",
            // The same, their quotes written as references, JSON escapes or backquotes.
            "{&quot;m&quot;:&quot;pin=a&quot;b ",
            r"{\u0022m\u0022:\u0022pin=a\u0022b \u0022",
            "&#39;pin=a&#39;b don&#39;t &#39;",
            "`pin=a`b ` ",
            // Long options' values inside quotes and brackets.
            "(a --pin a)b(a --pin (x) ",
            "\"a --pin a\"x ' --pin a'.b ",
            "(a --pin x)))))))))))))))))))))))))))))))))y ",
            // Closers before a `>` or a reference, glued or not.
            "(pin=a)>b(pin=a)&#233;b (pin=a)&quot;&gt;",
            // Bracket closers followed by more of their kind: each one's look is bounded.
            "(pin=a) b) c). d)e ",
            // Many pairs in balanced brackets, and options closed by a quote before a `>`, on one
            // line: each value's look past its closer is bounded.
            "(pin=a) ",
            "\"--pin x\">",
            "`pin=a` b` c` d`e `pin=a` `x` ",
            r"\u0022pin=a\u0022 b\u0022 c\u0022d \u0022pin=a\u0022 \u0022x\u0022 ",
            "&amp;quot;pin=&amp;amp;quot;x &amp;#39;",
            // Objects printed as no JSON never closed, nested, named, their values waiting.
            "{'name': 'PASSWORD', 'value': 'x', ",
            "{'value': ",
            "{ value: 1 {",
            "{Name:PIN Value:a ",
            "dict(value=dict(name='pin', value=(",
            "{'value': 1, 'name': 'pin'}]])) ",
            "{'value': [{'x': (",
            "{'value': 'x', 'name': 'PIN', 'a\\'b",
            "map[name:PIN value:a ",
            "[map[value:",
            "EnvVar(value=a(value=",
            "A(name=pin, value=a, ",
            "{'value': '''a'' ",
            "{\"name\":\"pin\",\"value\":\"[REDACTED]\" 'a' ",
            "{\"value\":\"[REDACTED]\" a ",
            "#<A @name=\"pin\", @value=#<",
            "#<A value: a #<B ",
            r#"{\"name\":\"pin\",\"value\":\"a\\ "#,
            r#"{\"value\": \'"#,
            "{u'name': u'pin', u'value': rb'\\",
            // Values `Debug` prints wrapped: never closed, nested, their strings and characters
            // never closed.
            "pin: Some(\n",
            "pin: A(\"x) ",
            "pin: Some('(' '\\' pin: (",
            "pin: S { a: \"",
            "pin: a::b(x) ",
            // Objects carried over lines, nested and dropped once too old.
            "{'value': 'x',\n",
            "{ name: 'pin',\n value: [\n",
            "{'value': {\n",
            // 2-tuples and parentheses after no name, nested, never closed.
            "[('password', 'x'), ",
            "(('name', 'pin'), ('value', 'a'), ",
            "(name=pin, value=a ",
            // Values of words holding commas.
            "{ name: pin, value: a, b,,c, ",
            // Quotes written as references, read again decoded.
            "{&#39;value&#39;: &#39;a ",
            // `Debug` wrappers never closed, on one line and ending theirs, and values on the
            // line after their key.
            "password: Some(",
            "password: Some(\n",
            "  token: Secret(\n    Some(\"a\n",
            "  pin: X {\n\n",
            "{'password':\n '",
            "{\"token\":\n [",
        ] {
            let text = unit.repeat((128 << 10) / unit.len());
            let started = std::time::Instant::now();
            let out = run(&text, false);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
            assert!(out.contains("[REDACTED]"), "{unit:?}");
        }
        // Objects printed as no JSON with nothing to redact: openers never closed, named
        // objects without a value, closers with nothing open, keys never ending.
        for unit in [
            "{'name': 'PASSWORD', ",
            "{",
            "dict(",
            "})]",
            "{[(",
            "{Name:a a ",
            "{aaaaaaaaaaaaaaaa",
            "{'",
            "map[",
            "map[map[a b:",
            "a(",
            "f(x)(",
            "a(name=PIN, b=",
            "{'x': '''a'' ",
            "#<",
            "#<A @name=\"pin\"> ",
            "a > #",
            r#"{\"a\":\"\\"#,
            "{u'",
            "{\n",
            "{'name': 'PASSWORD',\n",
            "('x', ",
            "(name=",
            "((((",
            "('password', 'a', ",
            "[('",
            "{value&amp; ",
        ] {
            let text = unit.repeat((128 << 10) / unit.len());
            let started = std::time::Instant::now();
            let out = run(&text, false);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
            assert_eq!(out, text, "{unit:?}");
        }
        // One run of closers glued to a letter at its end: each closer looks past the run for
        // what follows it, and the look is bounded.
        for (opener, closers) in [
            ("(", ")"),
            ("\"", "\"}"),
            ("'", "'.!"),
            ("\\\"", "\\\""),
            ("\\u0022", "\\u0022"),
            ("`", "`"),
            ("(", ")&quot;"),
            ("(", ")&#41;"),
        ] {
            let closers = closers.repeat((128 << 10) / closers.len());
            let text = format!("{opener}pin=x{closers}y");
            let started = std::time::Instant::now();
            let out = run(&text, false);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{opener}: {took:?}");
            assert!(out.ends_with("pin=[REDACTED]"), "{opener}");
        }
    }

    /// A sensitive element name with no end tag after it (`Vec<Token>` in an error text, a
    /// type's parameter) is looked for again at each start tag: each look must stay cheap, and
    /// a name known to have no end tag is not looked for again. Read at every `<`, `\` and `&`
    /// for an opener, 128 KiB of `Vec&lt;Token&gt; ` took 17 s (debug build), `Option<Token> `
    /// 2.4 s.
    #[test]
    fn type_parameters_without_end_tags_stay_linear() {
        let distinct: String = (0..8_000)
            .map(|i| format!("Vec&lt;k{i}token&gt; "))
            .collect();
        for text in [
            "Vec&lt;Token&gt; ",
            "Option<Token> ",
            r"x\u003cToken\u003e ",
            "Vec&lt;Token&gt;&lt;x ",
            "Vec&lt;Token&gt;&period; ",
            "Vec&lt;api&lowbar;key&gt;&lt;&sol;x ",
            "Vec\u{2039}api\u{2013}key>\u{2039}/x ",
            "Option<api\u{2010}key> ",
        ]
        .map(|unit| unit.repeat((128 << 10) / unit.len()))
        .into_iter()
        // Each name another, so that none is known to have no end tag.
        .chain([distinct])
        {
            let started = std::time::Instant::now();
            let out = run(&text, false);
            let took = started.elapsed();
            assert!(took.as_secs() < 2, "{:?}: {took:?}", &text[..16]);
            assert_eq!(out, text, "{:?}", &text[..16]);
        }
    }

    /// Found by review: a quote written twice inside a value quoted as `\"…\"` or
    /// `&quot;…&quot;` (a .NET connection string in JSON quoted in a log line, or escaped into
    /// HTML) closed the value at its first half, as the plain form `Password="ab""c"` no longer
    /// does.
    #[test]
    fn doubled_quotes_in_escaped_values() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                "Password=&quot;ab&quot;&quot;c;dSECRET&quot; after",
                "Password=[REDACTED] after",
            ),
            (
                r#"Password=\"ab\"\"c;dSECRET\" after"#,
                "Password=[REDACTED] after",
            ),
            (
                r"Password=\u0022ab\u0022\u0022c;dSECRET\u0022 after",
                "Password=[REDACTED] after",
            ),
            // An empty value before the next pair.
            (
                r#"{\"password\":\"\",\"user\":\"ann\"}"#,
                r#"{\"password\":[REDACTED],\"user\":\"ann\"}"#,
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        let body = br#"{"log":"conn Password=&quot;ab&quot;&quot;c;dSECRET&quot; after"}"#;
        let out = r
            .redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                body,
            ))
            .unwrap_or_default();
        assert!(!out.contains("SECRET"), "{out}");
    }

    /// Found by a probe: a handler's error quoting a database's unique or foreign key
    /// violation kept the value that broke it.
    #[test]
    fn constraint_violations_keep_no_sensitive_value() {
        for (text, expected) in [
            (
                "PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint \
                 \"users_api_token_key\"\nDETAIL:  Key (api_token)=(tok_9f8e7d6c5b4a) already exists.",
                "PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint \
                 \"users_api_token_key\"\nDETAIL:  Key (api_token)=([REDACTED]) already exists.",
            ),
            (
                "DETAIL: Key (tenant_id, \"reset_token\")=(7, ab(c)d) is not present in table",
                "DETAIL: Key (tenant_id, \"reset_token\")=([REDACTED]) is not present in table",
            ),
            (
                "SQLSTATE[23000]: 1062 Duplicate entry 'LARAsec1' for key \
                 'users.users_api_token_unique'",
                "SQLSTATE[23000]: 1062 Duplicate entry '[REDACTED]' for key \
                 'users.users_api_token_unique'",
            ),
            // A not-null or check violation's whole row: by position, no name tells.
            (
                "null value in column \"email\" of relation \"users\" violates not-null \
                 constraint\nDETAIL: Failing row contains (7, ann, null, \
                 $2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW, 2026-01-01).",
                "null value in column \"email\" of relation \"users\" violates not-null \
                 constraint\nDETAIL: Failing row contains ([REDACTED]).",
            ),
            (
                "Failing row contains (1, f(x), Key (token)=(abc)) and more",
                "Failing row contains ([REDACTED]) and more",
            ),
            // Columns that name nothing secret keep their values.
            (
                "DETAIL:  Key (email)=(ann@example.com) already exists.",
                "DETAIL:  Key (email)=(ann@example.com) already exists.",
            ),
            (
                "Duplicate entry 'ann' for key 'users.users_name_unique'",
                "Duplicate entry 'ann' for key 'users.users_name_unique'",
            ),
        ] {
            assert_eq!(run(text, false), expected, "{text}");
        }
    }

    /// Found by a probe: keys in other scripts were found as JSON and form keys, not in free
    /// text (a log line, an error, a `.env` body), nor with CJK's fullwidth colon.
    #[test]
    fn keys_in_other_scripts_are_found_in_free_text() {
        for (text, expected) in [
            (
                // As `password=hunter2 user=ann`: an unquoted value runs on past its spaces.
                "contraseña=hunter2 user=ann",
                "contraseña=[REDACTED]",
            ),
            ("пароль: s3cret\nuser: ann", "пароль: [REDACTED]\nuser: ann"),
            ("новый_пароль=s3cret", "новый_пароль=[REDACTED]"),
            ("密码：hunter2", "密码：[REDACTED]"),
            ("パスワード = hunter2", "パスワード = [REDACTED]"),
            (
                "{'Passwort': 'geheim', 'Name': 'Ann'}",
                "{'Passwort': [REDACTED], 'Name': 'Ann'}",
            ),
            (
                "{'contraseña': 'x1', 'nombre': 'Ana'}",
                "{'contraseña': [REDACTED], 'nombre': 'Ana'}",
            ),
            ("новый_password=s3cret", "новый_password=[REDACTED]"),
            // Keys that name nothing secret keep their values, in any script.
            ("имя: Анна, город: Москва", "имя: Анна, город: Москва"),
            ("名前：太郎", "名前：太郎"),
            ("café=noir", "café=noir"),
        ] {
            assert_eq!(run(text, false), expected, "{text}");
        }
    }

    /// Found by review: an element whose name holds a Unicode dash (`<api‐key>`, U+2010, as a
    /// word processor or a chat client writes `-`) was no element to the start tag's pattern,
    /// and a Go-escaped one whose name holds `&ensp;` was not decoded: both kept their secret.
    #[test]
    fn elements_named_with_unicode_dashes() {
        let r = crate::sanitize::Redactor::default();
        for dash in ['\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2212}'] {
            let text = format!("x <api{dash}key>SECRET</api{dash}key> after");
            let want = format!("x <api{dash}key>[REDACTED]</api{dash}key> after");
            assert_eq!(r.redact_error(&text), want, "{text:?}");
            let text =
                format!("x \\u003capi{dash}key\\u003eSECRET\\u003c/api{dash}key\\u003e after");
            assert!(!r.redact_error(&text).contains("SECRET"), "{text:?}");
        }
        // `<` as typographic substitution writes it.
        assert_eq!(
            r.redact_error("x \u{2039}api\u{2010}key>SECRET\u{2039}/api\u{2010}key> after"),
            "x \u{2039}api\u{2010}key>[REDACTED]\u{2039}/api\u{2010}key> after"
        );
        assert_eq!(
            r.redact_error(r"x \u003capi&ensp;key\u003eSECRET\u003c/api&ensp;key\u003e after"),
            r"x \u003capi&ensp;key\u003e[REDACTED]\u003c/api&ensp;key\u003e after"
        );
        // Prose with such dashes and ordinary elements keeps its words.
        for prose in [
            "a well\u{2010}known <b>bold\u{2010}face</b> and <note\u{2010}x>kept</note\u{2010}x>",
            r"\u003cem\u003ewell&ensp;known\u003c/em\u003e",
            "say \u{2039}token\u{203A} or \u{2039}b>bold\u{2039}/b>",
        ] {
            assert_eq!(r.redact_error(prose), prose);
        }
    }

    /// Found by review: a long option whose dashes are JSON escapes (`\u002d\u002dpassword`,
    /// as an encoder that escapes `-` writes a command line) kept its value.
    #[test]
    fn command_line_options_with_escaped_dashes() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                r"run \u002d\u002dpassword hunter2 db",
                r"run \u002d\u002dpassword [REDACTED] db",
            ),
            (
                r"run \u002d\u002dpassword=hunter2 -v",
                r"run \u002d\u002dpassword=[REDACTED]",
            ),
            (
                r"run -\u002Dapi-key hunter2 db",
                r"run -\u002Dapi-key [REDACTED] db",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        for plain in [
            r"run \u002d\u002dpassword-file /path",
            "run --password-file /path",
            r"x\u002d\u002dpassword y",
            r"tool \u002d\u002dpassword \u002d\u002dverbose",
        ] {
            assert_eq!(r.redact_error(plain), plain);
        }
    }

    /// Found by review: a long option whose dashes typographic substitution rewrote
    /// (`––password` with en dashes, `—password` with one em dash, as a chat or a word
    /// processor pastes a command line) kept its value, in text, in a JSON string (also
    /// escaped, `\u2014password`, as .NET writes non-ASCII) and in a query's value.
    #[test]
    fn command_line_options_with_unicode_dashes() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                "run \u{2013}\u{2013}password hunter2 db",
                "run \u{2013}\u{2013}password [REDACTED] db",
            ),
            (
                "run \u{2014}password hunter2 db",
                "run \u{2014}password [REDACTED] db",
            ),
            // A pair, as `--password=hunter2` is.
            (
                "run \u{2014}password=hunter2 -v",
                "run \u{2014}password=[REDACTED]",
            ),
            (
                "run -\u{2010}db-password 'a b' \u{2212}\u{2212}token\tx9 \u{2013}v",
                "run -\u{2010}db-password [REDACTED] \u{2212}\u{2212}token\t[REDACTED] \u{2013}v",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        let json = |body: &str| {
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                body.as_bytes(),
            ))
        };
        assert_eq!(
            json("{\"cmd\":\"run \u{2013}\u{2013}password hunter2 db\"}").as_deref(),
            Some("{\"cmd\":\"run \u{2013}\u{2013}password [REDACTED] db\"}")
        );
        assert_eq!(
            json(r#"{"cmd":"run \u2014password hunter2 db"}"#).as_deref(),
            Some("{\"cmd\":\"run \u{2014}password [REDACTED] db\"}")
        );
        // One element a word, as a container's `args` gives them.
        assert_eq!(
            json("{\"args\":[\"app\",\"\u{2013}\u{2013}password\",\"hunter2\",\"\u{2014}token\",\"\u{2014}v\"]}")
                .as_deref(),
            Some("{\"args\":[\"app\",\"\u{2013}\u{2013}password\",\"[REDACTED]\",\"\u{2014}token\",\"\u{2014}v\"]}")
        );
        assert_eq!(
            json(r#"{"args":["app","\u2014password","hunter2"]}"#).as_deref(),
            Some(r#"{"args":["app","\u2014password","[REDACTED]"]}"#)
        );
        assert_eq!(
            r.redact_query("cmd=run+%E2%80%94password+hunter2+db&n=1"),
            "cmd=run+\u{2014}password+[REDACTED]+db&n=1"
        );
        // An option for a value, prose's dashes, a dash glued to a word, a password's file.
        for plain in [
            "tool \u{2013}\u{2013}password \u{2014}verbose",
            "the password \u{2014} hunter2 is weak",
            "x\u{2014}password y",
            "run \u{2014}password-file /path",
            "the old\u{2013}password scheme",
        ] {
            assert_eq!(r.redact_error(plain), plain);
        }
    }

    /// Found by review: an escaped element whose name holds an HTML5 name of a space or dash
    /// (`&lt;api&ensp;key&gt;`) was not decoded, and so not taken for `api_key`.
    #[test]
    fn escaped_elements_named_with_html5_separators() {
        let r = crate::sanitize::Redactor::default();
        for sep in ["&ensp;", "&hyphen;", "&nbsp;", "&ZeroWidthSpace;"] {
            let text = format!("x &lt;api{sep}key&gt;SECRET&lt;/api{sep}key&gt; after");
            let want = format!("x &lt;api{sep}key&gt;[REDACTED]&lt;/api{sep}key&gt; after");
            assert_eq!(r.redact_error(&text), want);
        }
        // Prose with such names keeps its words.
        let prose = "10&nbsp;km &mdash; a&ensp;b &lt;b&gt;bold&lt;/b&gt;";
        assert_eq!(r.redact_error(prose), prose);
    }

    #[test]
    fn xml_elements() {
        assert_eq!(
            run(
                "<login><user>bob</user><password>hunter2</password></login>",
                false
            ),
            "<login><user>bob</user><password>[REDACTED]</password></login>"
        );
        // Cut inside the secret: the redacted value and the cut word both go.
        assert_eq!(run("<login><password>hunt", true), "");
    }

    /// Found by a probe (L16): XML that names a value with a sibling element kept the value:
    /// an Apple property list's `<key>Password</key><string>…</string>` (a `.mobileconfig`'s
    /// Wi-Fi payload sent to an MDM API), `<Name>DbPassword</Name><Value>…</Value>`, and
    /// XML-RPC's members, which README listed as a limit.
    #[test]
    fn an_element_named_by_its_sibling() {
        use crate::sanitize::{BodyInput, Redactor};
        let r = Redactor::default();
        let plist = "<?xml version=\"1.0\"?>\n<plist version=\"1.0\">\n<dict>\n\
            \t<key>SSID_STR</key>\n\t<string>Office</string>\n\
            \t<key>Password</key>\n\t<string>Hunter2Pass</string>\n\
            \t<key>AutoJoin</key>\n\t<true/>\n</dict>\n</plist>";
        let want = plist.replace("Hunter2Pass", "[REDACTED]");
        for ct in [
            "application/xml",
            "text/xml",
            "application/x-apple-aspen-config+xml",
        ] {
            let out = r.redact_body(&BodyInput::new(Some(ct), plist.as_bytes()));
            assert_eq!(out.as_deref(), Some(&*want), "{ct}");
        }
        let cases = [
            (
                "<Parameter><Name>DbPassword</Name><Value>Hunter2Pass</Value></Parameter>",
                "<Parameter><Name>DbPassword</Name><Value>[REDACTED]</Value></Parameter>",
            ),
            (
                "<member><name>password</name><value><string>Hunter2Pass</string></value></member>",
                "<member><name>password</name><value>[REDACTED]</value></member>",
            ),
            (
                "<dict><key> api_key </key><data>SGVsbG8=</data></dict>",
                "<dict><key> api_key </key><data>[REDACTED]</data></dict>",
            ),
            (
                "<a:Key>client_secret</a:Key><a:Value type=\"s\">Hunter2Pass</a:Value>",
                "<a:Key>client_secret</a:Key><a:Value type=\"s\">[REDACTED]</a:Value>",
            ),
            // Cut inside the value: to the end of the text.
            (
                "<dict><key>Password</key><string>Hunter2",
                "<dict><key>Password</key><string>[REDACTED]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact_error(input), want, "{input}");
        }
        let json = br#"{"payload":"<dict><key>Password</key><string>Hunter2Pass</string></dict>"}"#;
        assert_eq!(
            r.redact_body(&BodyInput::new(Some("application/json"), json))
                .as_deref(),
            Some(r#"{"payload":"<dict><key>Password</key><string>[REDACTED]</string></dict>"}"#)
        );
        // Other names, a sibling without contents or none, a key element that is no key's
        // name, text after the name, and tags escaped stay.
        for input in [
            "<member><name>user</name><value><string>ann</string></value></member>",
            "<dict><key>PasswordPolicy</key><string>strict</string></dict>",
            "<dict><key>Password</key><true/><key>x</key><string>y</string></dict>",
            "<dict><key>Password</key></dict><string>kept</string>",
            "<item><title>password</title><link>x</link></item>",
            "<name>reset your password</name><value>v</value>",
            "<key>token</key> is the key, <b>bold</b>",
        ] {
            assert_eq!(r.redact_error(input), input, "{input}");
        }
    }

    #[test]
    fn cut_text_loses_its_last_word() {
        assert_eq!(run("pay with 4111 1111 1111", true), "pay with");
        assert_eq!(run("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIi", true), "token");
        // Digits before the cut word go too: they may be the first groups of a card number.
        assert_eq!(run("a=1 password=hun", true), "a=");
        assert_eq!(trim_cut_tail("hello "), "hello");
    }
}
