//! HTML form fields in free text: the `value` of a field named after a sensitive key.
//!
//! `<input name="password" value="hunter2">`, `<input value=hunter3 NAME=api_key>` and
//! `<input type="password" value='s3cr3t'>` keep their tags and lose their values, in an HTML
//! body, a text body or an error, and in a JSON string that holds HTML. A `<textarea>` named
//! after a sensitive key loses its contents, up to its end tag (in any case). Tags written as Go's
//! encoding/json writes them (`\u003cinput …\u003e`), as in a JSON document quoted in a log line
//! or an error, are read alike.

use std::borrow::Cow;

use memchr::{memchr, memchr2, memmem};

use super::keys::KeyRules;
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
}

/// Replaces the value of every `value` attribute of an element whose `name` or `id` is a
/// sensitive key or whose `type` is `password`, and the contents of such a `<textarea>`.
///
/// Attributes come in any order and case, double-, single- or un-quoted (or quoted as `\"…\"`,
/// as in JSON quoted inside a string), with line breaks between them. A tag that the text ends
/// inside loses its values whatever it is named: its `name` may be what was cut. Each byte is
/// read once: a quoted value that is never closed holds the last quote of its kind, so no later
/// value searches for its end again.
pub(super) fn redact_form_fields<'a>(
    text: Cow<'a, str>,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut values: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    while let Some(at) = memchr2(b'<', b'\\', &bytes[pos..]) {
        let lt = pos + at;
        // `<`, or `\u003c` as Go's encoding/json writes it (HTML in JSON inside a text).
        let opener = match bytes[lt] {
            b'<' => 1,
            _ if escaped(bytes, lt, b'c') => ESCAPED.len(),
            _ => 0,
        };
        let escaped_tag = opener > 1;
        if opener == 0 || !bytes.get(lt + opener).is_some_and(u8::is_ascii_alphabetic) {
            pos = lt + 1;
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
        let tag = scan_attributes(&text, name_end, keys, keybuf, &mut values);
        if tag.sensitive || tag.how == TagEnd::Open {
            spans.extend(values.iter().filter(|(start, end)| end > start));
        }
        if spans.last().is_some_and(|&(_, end)| end == bytes.len()) {
            break;
        }
        pos = tag.end;
        let element = &text[lt + opener..name_end];
        if tag.sensitive && tag.how == TagEnd::Closed && element.eq_ignore_ascii_case("textarea") {
            let end =
                end_tag(&text[pos..], element, escaped_tag).map_or(bytes.len(), |at| pos + at);
            if end > pos {
                spans.push((pos, end));
            }
            pos = end;
        }
    }
    replace_spans(text, &spans, replacement)
}

/// Scans the attributes of the start tag whose name ends at `from`, pushing the span of each
/// `value` attribute's value (inside its quotes) to `values`.
fn scan_attributes(
    text: &str,
    from: usize,
    keys: &KeyRules,
    keybuf: &mut String,
    values: &mut Vec<(usize, usize)>,
) -> Tag {
    let bytes = text.as_bytes();
    let skip_space = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut sensitive = false;
    let mut i = from;
    loop {
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'/')
        {
            i += 1;
        }
        match bytes.get(i) {
            None => {
                return Tag {
                    end: i,
                    how: TagEnd::Open,
                    sensitive,
                };
            }
            Some(b'>') => {
                return Tag {
                    end: i + 1,
                    how: TagEnd::Closed,
                    sensitive,
                };
            }
            Some(b'\\') if escaped(bytes, i, b'e') => {
                return Tag {
                    end: i + ESCAPED.len(),
                    how: TagEnd::Closed,
                    sensitive,
                };
            }
            Some(b'<') => {
                return Tag {
                    end: i,
                    how: TagEnd::Interrupted,
                    sensitive,
                };
            }
            Some(b'\\') if escaped(bytes, i, b'c') => {
                return Tag {
                    end: i,
                    how: TagEnd::Interrupted,
                    sensitive,
                };
            }
            Some(_) => {}
        }
        // As in HTML, a name may start with `=`; it ends at a space, `/`, `>` or `=`.
        let name_start = i;
        i += 1;
        while bytes
            .get(i)
            .is_some_and(|b| !(b.is_ascii_whitespace() || matches!(b, b'/' | b'>' | b'=')))
            && !escaped(bytes, i, b'e')
        {
            i += 1;
        }
        let name = &text[name_start..i];
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            continue;
        }
        i = skip_space(i + 1);
        let (value, closed) = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => match memchr(quote, &bytes[i + 1..]) {
                Some(at) => {
                    let value = (i + 1, i + 1 + at);
                    i = value.1 + 1;
                    (value, true)
                }
                None => ((i + 1, bytes.len()), false),
            },
            // `\"…\"`: HTML in JSON quoted inside a string.
            Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\'')) => {
                let close = [b'\\', bytes[i + 1]];
                match memmem::find(&bytes[i + 2..], &close) {
                    Some(at) => {
                        let value = (i + 2, i + 2 + at);
                        i = value.1 + 2;
                        (value, true)
                    }
                    None => ((i + 2, bytes.len()), false),
                }
            }
            _ => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|b| !(b.is_ascii_whitespace() || *b == b'>'))
                    && !escaped(bytes, i, b'e')
                {
                    i += 1;
                }
                ((start, i), true)
            }
        };
        if name.eq_ignore_ascii_case("value") {
            values.push(value);
        } else {
            let value = text[value.0..value.1].trim();
            if name.eq_ignore_ascii_case("name") || name.eq_ignore_ascii_case("id") {
                sensitive |= keys.is_sensitive(value, keybuf);
            } else if name.eq_ignore_ascii_case("type") {
                sensitive |= value.eq_ignore_ascii_case("password");
            }
        }
        if !closed {
            // The rest of the text is this value; later tags are looked for after its quote.
            return Tag {
                end: value.0,
                how: TagEnd::Open,
                sensitive,
            };
        }
    }
}

/// How Go's encoding/json writes `<` and `>` (`\u003c`, `\u003e`), but for the last digit.
const ESCAPED: &[u8] = b"\\u003_";

/// Whether `bytes` holds at `at` the escape `\u003` + `last` (either case): `c` for `<`, `e`
/// for `>`.
fn escaped(bytes: &[u8], at: usize, last: u8) -> bool {
    bytes
        .get(at..at + ESCAPED.len())
        .is_some_and(|found| found[..5] == ESCAPED[..5] && found[5] | 0x20 == last)
}

/// Offset in `rest` of the first end tag of element `name`, in any case (HTML's names have
/// none): `</name>`, `</name >`, or, for a tag written as Go's encoder writes it (`escaped`),
/// `\u003c/name\u003e`.
fn end_tag(rest: &str, name: &str, escaped_tag: bool) -> Option<usize> {
    let bytes = rest.as_bytes();
    let (opener, open) = if escaped_tag {
        (&ESCAPED[..5], ESCAPED.len())
    } else {
        (&b"<"[..], 1)
    };
    memmem::find_iter(bytes, opener).find(|&at| {
        let tag = at + open + 1;
        (!escaped_tag || escaped(bytes, at, b'c'))
            && bytes.get(tag - 1) == Some(&b'/')
            && bytes
                .get(tag..tag + name.len())
                .is_some_and(|found| found.eq_ignore_ascii_case(name.as_bytes()))
            && match bytes.get(tag + name.len()) {
                Some(b'>') => true,
                Some(b) if b.is_ascii_whitespace() => true,
                _ => escaped(bytes, tag + name.len(), b'e'),
            }
    })
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

    #[test]
    fn ordinary_fields_stay() {
        for text in [
            r#"<input name="username" value="ann"><input type="text" id="q" value="x">"#,
            r#"<option value="password">Password</option><input name=passwordless value=1>"#,
            r#"<input data-name="password" value="ann" title='name=password'>"#,
            "<textarea name=comment>my password is long</textarea>",
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
