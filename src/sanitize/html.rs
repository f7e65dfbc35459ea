//! HTML form fields in free text: the value of a field named after a sensitive key.
//!
//! `<input name="password" value="hunter2">`, `<input value=hunter3 NAME=api_key>`,
//! `<input type="password" value='s3cr3t'>`, `<meta name="csrf-token" content="…">` and a .NET
//! config's `<add key="Password" value="…"/>` keep their tags and lose their values, in an HTML
//! or XML body, a text body or an error, and in a JSON string that holds HTML. A `<textarea>` or
//! `<select>` named after a sensitive key loses its contents, up to its end tag (in any case).
//! Tags written as Go's encoding/json writes them (`\u003cinput …\u003e`), as in a JSON document
//! quoted in a log line or an error, or with character references (`&lt;input …&gt;`, HTML
//! escaped into text), are read alike, and the references in a name are decoded
//! (`pass&#119;ord`, `api&lowbar;key`).

use std::borrow::Cow;

use memchr::{memchr, memchr2, memchr3, memmem};

use super::keys::KeyRules;
use super::markup::{Spelling, char_ref, char_ref_wrapped, close_at, decode, end_tag, open_at};
use super::text::replace_spans;

/// How the scan of one start tag ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagEnd {
    /// At its `>`.
    Closed,
    /// At a `<` where an attribute's name would start: a broken tag, followed by another.
    Interrupted,
    /// With the text, or with a quoted value that is never closed: what the tag's attributes
    /// would have been is unknown, so its values go whatever they are named.
    Open,
}

/// One start tag, scanned.
#[derive(Debug)]
struct Tag {
    /// Where the scan for the next tag resumes.
    end: usize,
    how: TagEnd,
    /// Its `name` or `id` is a sensitive key, or its `type` is `password`.
    sensitive: bool,
    /// Closed by `/>`: an element without contents.
    self_closed: bool,
}

/// Elements whose contents are the value their name attribute names: HTML's `<textarea>` and
/// `<select>`, and the entries of configuration files and documents written in XML: Java's
/// properties (`<entry key="db.password">…</entry>`), Hibernate's and Maven's
/// `<property name=…>`, Spring's `<prop key=…>`, Android's `<string name=…>`, .NET's
/// `<setting name=…>`, `<param>` and `<parameter>`, Solr's `<field name=…>`, DSML's
/// `<attr name="userPassword"><value>…</value></attr>`, and the `<var>`, `<variable>`, `<arg>`,
/// `<argument>`, `<item>`, `<env>`, `<secret>` and `<credential>` of build and deployment
/// files. Other elements keep their contents (`<div name=password>` is no field of a form).
const HOLDS_VALUE: [&str; 21] = [
    "textarea",
    "select",
    "entry",
    "property",
    "prop",
    "string",
    "setting",
    "param",
    "parameter",
    "field",
    "attr",
    "attribute",
    "var",
    "variable",
    "arg",
    "argument",
    "item",
    "env",
    "secret",
    "credential",
    "credentials",
];

/// Replaces the value of every value attribute (`value`, `content`, `connectionString`) of an
/// element whose `name`, `id`, `key` or `property` is a sensitive key or whose `type` is
/// `password`, and the contents of such a `<textarea>` or `<select>` (or another of
/// [`HOLDS_VALUE`]).
///
/// Attributes come in any order and case, double-, single- or un-quoted (or quoted as `\"…\"`,
/// as in JSON quoted inside a string), with line breaks between them. A tag may be written
/// with character references (`&lt;input name=&quot;pin&quot;&gt;`) or Go's escapes (see
/// [`markup`](super::markup)), and the references in a name or type are decoded before it is
/// looked up (`pass&#119;ord`, `user&lsqb;password&rsqb;`); in a tag written with references,
/// its `=`, spaces and `/` may be references too (`name&equals;&quot;pin&quot;`, as PHP's
/// `htmlentities` writes them with `ENT_HTML5`). A tag that the text ends inside loses its values whatever it is
/// named: its `name` may be what was cut. Each byte is read once: a quoted value that is never
/// closed holds the last quote of its kind, so no later value searches for its end again.
pub(super) fn redact_form_fields<'a>(
    text: Cow<'a, str>,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut values: Vec<(usize, usize)> = Vec::new();
    let mut decoded = String::new();
    let mut pos = 0;
    while let Some(at) = memchr3(b'<', b'\\', b'&', &bytes[pos..]) {
        let lt = pos + at;
        let Some((spelling, opener)) = open_at(bytes, lt) else {
            // Past the whole reference: a look at each of its `&amp;`s would read it again.
            pos = lt + char_ref(bytes, lt).map_or(1, |(_, len)| len);
            continue;
        };
        if !bytes.get(lt + opener).is_some_and(u8::is_ascii_alphabetic) {
            pos = lt + opener;
            continue;
        }
        let name_end = lt
            + opener
            + bytes[lt + opener..]
                .iter()
                .take_while(|&&b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-')
                })
                .count();
        values.clear();
        let mut attributes = Attributes {
            text: &text,
            spelling,
            wraps: char_ref_wrapped(bytes, lt).map_or(0, |(_, _, wraps)| wraps),
            keys,
            keybuf,
            decoded: &mut decoded,
            values: &mut values,
        };
        let tag = attributes.scan(name_end);
        if tag.sensitive || tag.how == TagEnd::Open {
            spans.extend(values.iter().filter(|(start, end)| end > start));
        }
        if spans.last().is_some_and(|&(_, end)| end == bytes.len()) {
            break;
        }
        pos = tag.end;
        let element = &text[lt + opener..name_end];
        // Looked up only for a sensitive tag: a page has many tags and few such.
        if tag.sensitive
            && tag.how == TagEnd::Closed
            && !tag.self_closed
            && HOLDS_VALUE
                .iter()
                .any(|holder| element.eq_ignore_ascii_case(holder))
        {
            let end =
                end_tag(&text[pos..], element, spelling, true).map_or(bytes.len(), |at| pos + at);
            if end > pos {
                spans.push((pos, end));
            }
            pos = end;
        }
    }
    replace_spans(text, &spans, replacement)
}

/// The attributes of one start tag, being scanned.
struct Attributes<'t, 's> {
    text: &'t str,
    /// How the tag's `<` is written: a `>` and quotes written as references count only then.
    spelling: Spelling,
    /// How many `&amp;`s wrap the tag's `<`, when it is a reference: a reference wrapped as
    /// often is one of the tag's characters (`&amp;lt;input name&amp;equals;…`), one wrapped
    /// more a reference inside a value of the page escaped (`&lt;input value=a&amp;#x20;b`).
    wraps: usize,
    keys: &'s KeyRules,
    keybuf: &'s mut String,
    /// Scratch space for a name with its references decoded.
    decoded: &'s mut String,
    /// The span of each value attribute's value (inside its quotes).
    values: &'s mut Vec<(usize, usize)>,
}

impl Attributes<'_, '_> {
    /// Scans the attributes of the start tag whose name ends at `from`.
    ///
    /// A quote inside a value quoted with it (`value="ab"cd"`, `value=&quot;ab&quot;cd&quot;`:
    /// a page that did not escape its value) closes the value early, and the rest reads as an
    /// attribute glued to the quote or named with one. Where the quotes are so ambiguous, the
    /// tag's first value runs to the tag's end: which quote closes it is unknown.
    fn scan(&mut self, from: usize) -> Tag {
        let text = self.text;
        let bytes = text.as_bytes();
        let mut sensitive = false;
        let mut ambiguous = false;
        // Where the closing quote of the last value attribute ends, and the quote; and the
        // first value attribute's quote.
        let mut quoted_value: Option<(usize, &[u8])> = None;
        let mut first_quote: Option<&[u8]> = None;
        let mut i = from;
        loop {
            // Right after a value's quote, or anywhere in a tag whose quotes are ambiguous
            // (then the first value runs to the tag's end, and on to its quote).
            let run_on = match quoted_value.take() {
                Some((closed_at, quote)) if i == closed_at => Some(quote),
                _ if ambiguous => first_quote,
                _ => None,
            };
            if let Some(quote) = run_on
                && let Some(len) = self.close_at(i)
                && let Some(again) = self.quote_again(i + len, quote)
            {
                // `value="ab">cd"`: the quote and `>` were the value's; it runs to the quote.
                if let Some(last) = self.values.last_mut() {
                    last.1 = again;
                }
                i = again + quote.len();
            }
            i = self.skip(i, |b| b.is_ascii_whitespace() || b == b'/');
            if i == bytes.len() {
                self.ambiguous_to(ambiguous, i);
                return Tag {
                    end: i,
                    how: TagEnd::Open,
                    sensitive,
                    self_closed: false,
                };
            }
            if let Some(len) = self.close_at(i) {
                self.ambiguous_to(ambiguous, i);
                let before = bytes[..i].trim_ascii_end();
                return Tag {
                    end: i + len,
                    how: TagEnd::Closed,
                    sensitive,
                    self_closed: before.ends_with(b"/"),
                };
            }
            if open_at(bytes, i).is_some() {
                self.ambiguous_to(ambiguous, i);
                return Tag {
                    end: i,
                    how: TagEnd::Interrupted,
                    sensitive,
                    self_closed: false,
                };
            }
            // As in HTML, a name may start with `=`; it ends at a space, `/`, `>` or `=` (or
            // a reference to one, in a tag written with references).
            let name_start = i;
            ambiguous |= matches!(self.ascii_at(i), Some((b'"' | b'\'', _)));
            i += 1;
            while self
                .ascii_at(i)
                .is_some_and(|(b, _)| !(b.is_ascii_whitespace() || matches!(b, b'/' | b'=')))
                && self.close_at(i).is_none()
            {
                ambiguous |= matches!(self.ascii_at(i), Some((b'"' | b'\'', _)));
                i += 1;
            }
            let name = &text[name_start..i];
            i = self.skip(i, |b| b.is_ascii_whitespace());
            match self.ascii_at(i) {
                Some((b'=', len)) => i = self.skip(i + len, |b| b.is_ascii_whitespace()),
                _ => continue,
            }
            let (value, closed) = self.value(i);
            let quote_len = value.2;
            i = value.1 + usize::from(closed) * quote_len;
            ambiguous |= closed && quote_len > 0 && self.glued_at(i);
            let value = (value.0, value.1);
            if ["value", "content", "connectionstring"]
                .iter()
                .any(|v| name.eq_ignore_ascii_case(v))
            {
                if closed && quote_len > 0 {
                    let quote = &bytes[value.1..i];
                    quoted_value = Some((i, quote));
                    if self.values.is_empty() {
                        first_quote = Some(quote);
                    }
                }
                self.values.push(value);
            } else if ["name", "id", "key", "property"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                let named = unquoted(decode(&text[value.0..value.1], self.decoded));
                sensitive |= self.keys.is_sensitive(named, self.keybuf);
            } else if name.eq_ignore_ascii_case("type") {
                let kind = unquoted(decode(&text[value.0..value.1], self.decoded));
                sensitive |= kind.eq_ignore_ascii_case("password");
            }
            if !closed {
                // The rest of the text is this value; later tags are looked for after its quote.
                self.ambiguous_to(ambiguous, bytes.len());
                return Tag {
                    end: value.0,
                    how: TagEnd::Open,
                    sensitive,
                    self_closed: false,
                };
            }
        }
    }

    /// Whether the quote that closed a value right before `i` is glued to more text: no
    /// space, `/`, `>` or `<` of the tag follows it, nor the text's end.
    fn glued_at(&self, i: usize) -> bool {
        self.ascii_at(i)
            .is_some_and(|(b, _)| !(b.is_ascii_whitespace() || b == b'/'))
            && self.close_at(i).is_none()
            && open_at(self.text.as_bytes(), i).is_none()
    }

    /// Where `quote`, written as the one that closed a value right before the tag's `>` (or
    /// the first value, in a tag whose quotes are ambiguous), comes again after `from`, ending
    /// a value, on the same line: the page wrote the value's quote and `>` into it unescaped
    /// (`value="ab">cd">`, `value="ab">cd<b>x">`), and the value runs to there.
    ///
    /// Before the next tag, a quote ends a value when a space, `/`, the tag's `>` or the
    /// text's end follows it; past a tag, only when the tag's `>` or the text's end does, so
    /// that a page's own quoted words (`<p>Click "Reset" to…`) stay. The look ends at the
    /// line's end, past a tag at a quote that ends no value (the page's `say "x">`), or at the
    /// next value quoted after an `=` (`name="…`), where the page's own markup goes on: a
    /// secret holding `">`, a `<` and then `="`, or another quote, is kept from its first
    /// `">` on. Each look ends at the latest at such a value in the next tag this is asked
    /// for, which holds one (its own value's), so each byte is read at most twice.
    fn quote_again(&self, from: usize, quote: &[u8]) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let mut past_a_tag = false;
        let mut j = from;
        while let Some(&b) = bytes.get(j) {
            if matches!(b, b'\n' | b'\r') {
                return None;
            }
            if bytes[j..].starts_with(quote) {
                let after = j + quote.len();
                if after == bytes.len()
                    || self.close_at(after).is_some()
                    || (!past_a_tag
                        && self
                            .ascii_at(after)
                            .is_some_and(|(b, _)| b.is_ascii_whitespace() || b == b'/'))
                {
                    return Some(j);
                }
                // Past a tag, a quote that ends no value is the page's own (`say "x">`).
                if past_a_tag {
                    return None;
                }
            }
            if open_at(bytes, j).is_some() {
                past_a_tag = true;
            } else if quoted_value_at(bytes, j) {
                return None;
            }
            j += 1;
        }
        None
    }

    /// When the tag's quotes are `ambiguous`, its first value runs to `end`, the end of the
    /// tag, and takes the later ones with it.
    fn ambiguous_to(&mut self, ambiguous: bool, end: usize) {
        if let Some(first) = self.values.first_mut().filter(|_| ambiguous) {
            first.1 = first.1.max(end);
            self.values.truncate(1);
        }
    }

    /// The byte at `i` and its length, or in a tag written with references, the ASCII
    /// character a reference there stands for (`&equals;`, `&NewLine;`, `&sol;`, as PHP's
    /// `htmlentities` writes them with `ENT_HTML5`) and the reference's length, when it is
    /// escaped as often as the tag's `<` is.
    fn ascii_at(&self, i: usize) -> Option<(u8, usize)> {
        let bytes = self.text.as_bytes();
        let b = *bytes.get(i)?;
        if self.spelling == Spelling::Reference
            && matches!(b, b'&' | b'\\')
            && let Some((c, len, wraps)) = char_ref_wrapped(bytes, i)
            && wraps == self.wraps
            && let Ok(c) = u8::try_from(c)
            && c.is_ascii()
        {
            return Some((c, len));
        }
        Some((b, 1))
    }

    /// The length of the tag's `>` at `i` (see [`close_at`]): a reference escaped more often
    /// than the tag's `<` is a `>` of the page's own, inside a value (`value=a&amp;gt;b`).
    fn close_at(&self, i: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let len = close_at(bytes, i, self.spelling)?;
        match char_ref_wrapped(bytes, i) {
            Some((_, _, wraps)) if wraps > self.wraps => None,
            _ => Some(len),
        }
    }

    /// Where the run of characters that `skipped` accepts at `i` ends.
    fn skip(&self, mut i: usize, skipped: impl Fn(u8) -> bool) -> usize {
        while let Some((b, len)) = self.ascii_at(i)
            && skipped(b)
        {
            i += len;
        }
        i
    }

    /// The value that starts at `i`: its span inside its quotes, whether it ends before the
    /// text does, and the length of its closing quote.
    fn value(&self, i: usize) -> ((usize, usize, usize), bool) {
        let bytes = self.text.as_bytes();
        match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => match memchr(quote, &bytes[i + 1..]) {
                Some(at) => ((i + 1, i + 1 + at, 1), true),
                None => ((i + 1, bytes.len(), 0), false),
            },
            // `\u0022…\u0022`: quotes as .NET's System.Text.Json writes them in a string, in a
            // tag it wrote (`\u003C`); in a plain tag, an unquoted value's text. An unclosed one
            // is the last of its kind, as a plain quote is.
            Some(b'\\') if self.spelling == Spelling::Go && quote_escape(bytes, i) => {
                let close = &bytes[i..i + QUOTE_ESCAPE_LEN];
                let start = i + QUOTE_ESCAPE_LEN;
                match memmem::find(&bytes[start..], close) {
                    Some(at) => ((start, start + at, QUOTE_ESCAPE_LEN), true),
                    None => ((start, bytes.len(), 0), false),
                }
            }
            // `\"…\"`: HTML in JSON quoted inside a string.
            Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\'')) => {
                let close = [b'\\', bytes[i + 1]];
                match memmem::find(&bytes[i + 2..], &close) {
                    Some(at) => ((i + 2, i + 2 + at, 2), true),
                    None => ((i + 2, bytes.len(), 0), false),
                }
            }
            _ => {
                // `&quot;…&quot;`: a tag written with references is quoted with them too.
                // A quote escaped once more is the page's, inside the value (`&amp;quot;`).
                if let Some((quote @ ('"' | '\''), len, wraps)) = (self.spelling
                    == Spelling::Reference)
                    .then(|| char_ref_wrapped(bytes, i))
                    .flatten()
                {
                    let start = i + len;
                    let mut from = start;
                    while let Some(at) = memchr2(b'&', b'\\', &bytes[from..]).map(|at| from + at) {
                        match char_ref_wrapped(bytes, at) {
                            Some((c, len, w)) if c == quote && w == wraps => {
                                return ((start, at, len), true);
                            }
                            Some((_, len, _)) => from = at + len,
                            None => from = at + 1,
                        }
                    }
                    return ((start, bytes.len(), 0), false);
                }
                let start = i;
                let mut i = i;
                while self
                    .ascii_at(i)
                    .is_some_and(|(b, _)| !b.is_ascii_whitespace())
                    && self.close_at(i).is_none()
                {
                    i += 1;
                }
                ((start, i, 0), true)
            }
        }
    }
}

/// Length of `\u0022`.
const QUOTE_ESCAPE_LEN: usize = 6;

/// Whether `bytes` holds at `at` an `=` and the opening quote of a value, in any spelling a
/// tag's attributes are read in (`="`, `= '`, `=\"`, `=\u0022`, `&equals;&quot;`), with
/// whitespace between them.
fn quoted_value_at(bytes: &[u8], at: usize) -> bool {
    let spelled = |i: usize| match bytes.get(i) {
        Some(&(b'&' | b'\\')) => char_ref(bytes, i),
        Some(&b) => Some((char::from(b), 1)),
        None => None,
    };
    if !matches!(bytes.get(at), Some(b'=' | b'&' | b'\\')) {
        return false;
    }
    let Some(('=', len)) = spelled(at) else {
        return false;
    };
    let mut i = at + len;
    while let Some((c, len)) = spelled(i)
        && c.is_ascii_whitespace()
    {
        i += len;
    }
    quote_escape(bytes, i)
        || matches!(bytes.get(i..i + 2), Some(b"\\\"" | b"\\'"))
        || matches!(spelled(i), Some(('"' | '\'', _)))
}

/// Whether `bytes` holds at `at` a JSON escape of a quote, `\u0022` or `\u0027`.
fn quote_escape(bytes: &[u8], at: usize) -> bool {
    matches!(
        bytes.get(at..at + QUOTE_ESCAPE_LEN),
        Some(b"\\u0022" | b"\\u0027")
    )
}

/// A decoded name or type without the spaces and quotes around it (`name=&quot;pin&quot;` in
/// a tag written plainly).
fn unquoted(value: &str) -> &str {
    value.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
}

#[cfg(test)]
mod tests {
    use super::super::keys::{DEFAULT_KEY_SUFFIXES, DEFAULT_KEYS};
    use super::*;

    fn run(text: &str) -> String {
        let keys = KeyRules::new(
            DEFAULT_KEYS.iter().map(|k| Box::from(*k)).collect(),
            DEFAULT_KEY_SUFFIXES.iter().map(|k| Box::from(*k)).collect(),
            Vec::new(),
        );
        redact_form_fields(Cow::Borrowed(text), &keys, &mut String::new(), "[REDACTED]")
            .into_owned()
    }

    /// The review's form: a password field, a field named `password`, and `value` before
    /// `name`, unquoted.
    #[test]
    fn the_reviews_form() {
        assert_eq!(
            run(concat!(
                r#"<form><input type="password" name="pw" value="hunter2">"#,
                r#"<input name="password" value='s3cr3t'><input value=hunter3 name=api_key></form>"#
            )),
            concat!(
                r#"<form><input type="password" name="pw" value="[REDACTED]">"#,
                r#"<input name="password" value='[REDACTED]'><input value=[REDACTED] name=api_key></form>"#
            )
        );
    }

    /// Found by review: a value that holds its own quote and the tag's `>` (`ab">cd`, the
    /// page not escaping it) closed at that quote, and the rest of the secret read as text
    /// after the tag, in a tag written with references as in a plain one.
    #[test]
    fn values_holding_a_quote_and_the_tags_close() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                "&lt;input type=&quot;password&quot; value=&quot;ab&quot;&gt;cdSECRET&quot;&gt; after",
                "&lt;input type=&quot;password&quot; value=&quot;[REDACTED]&quot;&gt; after",
            ),
            (
                "&lt;input name=&quot;token&quot; value=&quot;ab&quot;&gt;cdSECRET&quot;&gt; after",
                "&lt;input name=&quot;token&quot; value=&quot;[REDACTED]&quot;&gt; after",
            ),
            (
                r#"<input type="password" value="ab">cdSECRET"> after"#,
                r#"<input type="password" value="[REDACTED]"> after"#,
            ),
            // A value whose quotes are ambiguous already (a quote glued to its closing one).
            (
                "&lt;input name=&quot;token&quot; value=&quot;&quot;&quot;&gt;SECRET&quot;&gt; after",
                "&lt;input name=&quot;token&quot; value=&quot;[REDACTED]&gt; after",
            ),
            // The name after the value that ran on.
            (
                r#"<input value="ab">cdSECRET" name="pin"> after"#,
                r#"<input value="[REDACTED]" name="pin"> after"#,
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        // A page's own text after a field, quoted or not, stays.
        for page in [
            r#"<input name="user" value="ann">Say "hi"> <b>x</b>"#,
            r#"<input type="password" value="">Show "it" <b>x</b>"#,
        ] {
            assert!(r.redact_error(page).contains("<b>x</b>"), "{page}");
        }
    }

    /// Found by review: past a tag, the look for a password value's quote took a page's own
    /// quoted word before a `>` (`<p>say "x"></p>`) for the value's end, and the page's text
    /// from the field on went with the value.
    #[test]
    fn quoted_words_past_a_tag_end_the_look() {
        let r = crate::sanitize::Redactor::default();
        for (page, want) in [
            (
                r#"<input type="password" value=""><p>a</p><p>say "x"></p>"#,
                r#"<input type="password" value=""><p>a</p><p>say "x"></p>"#,
            ),
            (
                r#"<input type="password" value="pw"><b>Tip:</b> type "help"> here"#,
                r#"<input type="password" value="[REDACTED]"><b>Tip:</b> type "help"> here"#,
            ),
            (
                "&lt;input name=&quot;pin&quot; value=&quot;1&quot;&gt;&lt;b&gt;a &quot;b&quot;&gt; c",
                "&lt;input name=&quot;pin&quot; value=&quot;[REDACTED]&quot;&gt;&lt;b&gt;a &quot;b&quot;&gt; c",
            ),
        ] {
            assert_eq!(r.redact_error(page), want, "{page}");
        }
        // A value holding `">` and a tag is still read to its quote.
        assert_eq!(
            r.redact_error(r#"<input type="password" value="ab">cd<b>x"> j"#),
            r#"<input type="password" value="[REDACTED]"> j"#
        );
    }

    /// Found by review: a value that holds its quote and the tag's `>` and then a `<`
    /// (`ab">cd<b>x`) was read to its first quote only, the look for its end stopping at that
    /// `<`, and `cd<b>x` stayed. The look now goes past tags, to the end of the line, and
    /// stops at the next value quoted after an `=`, where the page's own markup goes on.
    #[test]
    fn values_holding_a_quote_the_tags_close_and_a_tag() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                r#"<input type="password" value="ab">cd<b>x"> after"#,
                r#"<input type="password" value="[REDACTED]"> after"#,
            ),
            (
                r#"<input type="password" value="ab">cd<b>x"><input name="user" value="ann">"#,
                r#"<input type="password" value="[REDACTED]"><input name="user" value="ann">"#,
            ),
            (
                "&lt;input name=&quot;pin&quot; value=&quot;ab&quot;&gt;cd&lt;b&gt;x&quot;&gt; after",
                "&lt;input name=&quot;pin&quot; value=&quot;[REDACTED]&quot;&gt; after",
            ),
            (
                r"\u003cinput type=\u0022password\u0022 value=\u0022ab\u0022\u003ecd\u003cb\u003ex\u0022\u003e after",
                r"\u003cinput type=\u0022password\u0022 value=\u0022[REDACTED]\u0022\u003e after",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        // The page's own markup and text after a field stay: the next quoted value ends the
        // look, and past a tag only a quote before a `>` is taken for the value's.
        for (page, want) in [
            (
                r#"<input type="password" name="pw" value="x"><input name="user" value="ann">"#,
                r#"<input type="password" name="pw" value="[REDACTED]"><input name="user" value="ann">"#,
            ),
            (
                r#"<input type="password" value=""><p>Click "Forgot" to reset</p><a href="/r">r</a>"#,
                r#"<input type="password" value=""><p>Click "Forgot" to reset</p><a href="/r">r</a>"#,
            ),
            (
                r#"<input type="password" value="x"><b>Say "hi" there</b>"#,
                r#"<input type="password" value="[REDACTED]"><b>Say "hi" there</b>"#,
            ),
        ] {
            assert_eq!(r.redact_error(page), want, "{page}");
        }
    }

    #[test]
    fn any_order_case_quoting_and_line_breaks() {
        let cases = [
            (
                "<INPUT\n  VALUE=\"hunter2\"\n  NAME=\"Pass-Word\"\n>",
                "<INPUT\n  VALUE=\"[REDACTED]\"\n  NAME=\"Pass-Word\"\n>",
            ),
            (
                "<input id = 'user[password]' value = hunter2 />",
                "<input id = 'user[password]' value = [REDACTED] />",
            ),
            (
                "<input\ttype=PASSWORD\r\nvalue='a b'>",
                "<input\ttype=PASSWORD\r\nvalue='[REDACTED]'>",
            ),
            (
                r#"<input type="hidden" name="authenticity_token" value="a>b">x"#,
                r#"<input type="hidden" name="authenticity_token" value="[REDACTED]">x"#,
            ),
            (
                r#"<input name=\"password\" value=\"hunter2\">"#,
                r#"<input name=\"password\" value=\"[REDACTED]\">"#,
            ),
            (
                "<textarea name=private_key rows=4>-----BEGIN KEY-----\nabc</textarea><p>ok</p>",
                "<textarea name=private_key rows=4>[REDACTED]</textarea><p>ok</p>",
            ),
            // HTML's element names have no case: the end tag is found in any.
            (
                "<TEXTAREA NAME=token>abc</textarea><p>ok</p><textarea name=pin>d</TextArea >e",
                "<TEXTAREA NAME=token>[REDACTED]</textarea><p>ok</p><textarea name=pin>[REDACTED]</TextArea >e",
            ),
            // Found by a probe: configuration files in XML name an entry's value by an
            // attribute, and its contents were kept.
            (
                r#"<entry key="db.password">hunter2</entry><entry key="db.user">ann</entry>"#,
                r#"<entry key="db.password">[REDACTED]</entry><entry key="db.user">ann</entry>"#,
            ),
            (
                r#"<property name="hibernate.connection.password">hunter2</property>"#,
                r#"<property name="hibernate.connection.password">[REDACTED]</property>"#,
            ),
            (
                r#"<string name="api_key">hunter2</string><string name="app_name">x</string>"#,
                r#"<string name="api_key">[REDACTED]</string><string name="app_name">x</string>"#,
            ),
            (
                r#"<param name="password"><value>hunter2</value></param><p>ok</p>"#,
                r#"<param name="password">[REDACTED]</param><p>ok</p>"#,
            ),
            (
                "<setting name=\"Password\" serializeAs=\"String\">\n  <value>hunter2</value>\n</setting>",
                "<setting name=\"Password\" serializeAs=\"String\">[REDACTED]</setting>",
            ),
            // Every `value` of a sensitive field goes; an empty one stays empty.
            (
                r#"<input value="" name="token"><input name=token value=a value=b>"#,
                r#"<input value="" name="token"><input name=token value=[REDACTED] value=[REDACTED]>"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input), want, "{input}");
        }
    }

    /// The same through a whole XML body, as the writer reads one.
    #[test]
    fn xml_configuration_entries_in_a_body() {
        let body = br#"<?xml version="1.0"?><properties><entry key="db.password">hunter2XYZ</entry><entry key="db.host">db</entry></properties>"#;
        let out = crate::sanitize::Redactor::default()
            .redact_body(&crate::sanitize::BodyInput::new(
                Some("application/xml"),
                body,
            ))
            .unwrap_or_default();
        assert_eq!(
            out,
            r#"<?xml version="1.0"?><properties><entry key="db.password">[REDACTED]</entry><entry key="db.host">db</entry></properties>"#
        );
    }

    /// A gap an earlier probe found: Solr's `<field name="password">`, DSML's
    /// `<attr name="userPassword">` and Spring's `<prop key="…password">` kept their contents.
    #[test]
    fn xml_documents_name_their_values_in_more_elements() {
        for (text, expected) in [
            (
                r#"<add><doc><field name="id">7</field><field name="password">hunter2</field></doc></add>"#,
                r#"<add><doc><field name="id">7</field><field name="password">[REDACTED]</field></doc></add>"#,
            ),
            (
                r#"<attr name="userPassword"><value>s3cret</value></attr><attr name="cn"><value>Ann</value></attr>"#,
                r#"<attr name="userPassword">[REDACTED]</attr><attr name="cn"><value>Ann</value></attr>"#,
            ),
            (
                r#"<props><prop key="jdbc.password">s3cret</prop><prop key="jdbc.user">app</prop></props>"#,
                r#"<props><prop key="jdbc.password">[REDACTED]</prop><prop key="jdbc.user">app</prop></props>"#,
            ),
            (
                r#"<env name="API_TOKEN">tok-123</env><env name="REGION">eu</env>"#,
                r#"<env name="API_TOKEN">[REDACTED]</env><env name="REGION">eu</env>"#,
            ),
            // Self-closed, with its value in an attribute: the attribute goes, the text after
            // stays.
            (
                r#"<field name="password" value="x1"/>after"#,
                r#"<field name="password" value="[REDACTED]"/>after"#,
            ),
        ] {
            assert_eq!(run(text), expected, "{text}");
        }
    }

    #[test]
    fn ordinary_fields_stay() {
        for text in [
            r#"<input name="username" value="ann"><input type="text" id="q" value="x">"#,
            r#"<option value="password">Password</option><input name=passwordless value=1>"#,
            r#"<input data-name="password" value="ann" title='name=password'>"#,
            "<textarea name=comment>my password is long</textarea>",
            r#"<entry key="db.user">ann</entry><property name="url">x</property>"#,
            "<div name=password>prose stays</div>",
            "a < b, a<b value=1> and <3 <<",
        ] {
            assert_eq!(run(text), text);
        }
    }

    /// A tag the text ends in, or a quote never closed: its values go, whatever it is named.
    #[test]
    fn open_tags_fail_closed() {
        let cases = [
            (
                r#"<input value="hunter2" name="passw"#,
                r#"<input value="[REDACTED]" name="passw"#,
            ),
            ("<input value=hunter2 na", "<input value=[REDACTED] na"),
            (
                "<input name=password value=\"hunter2 and the rest",
                "<input name=password value=\"[REDACTED]",
            ),
            (
                "<textarea id=secret>abc <b>def",
                "<textarea id=secret>[REDACTED]",
            ),
            // The quote is never closed: later tags are still seen.
            (
                r#"<a title="x> <input type=password value=y>"#,
                r#"<a title="x> <input type=password value=[REDACTED]>"#,
            ),
            // A tag broken by another.
            (
                "<a title=x <input type=password value=y>",
                "<a title=x <input type=password value=[REDACTED]>",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(run(input), want, "{input}");
        }
    }
}
