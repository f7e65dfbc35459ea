//! Free text: `text/*` and XML bodies, and the tail of a value cut by truncation.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::keys::KeyRules;
use super::values::{AppendWith, ValueRules};

/// The key and separator of `key: value` / `key=value` pairs in free text (logs, `.env`
/// files, YAML, JSON-ish text). Only the key is matched so that every key is seen, even one
/// inside the value of another; [`value_len`] decides where a sensitive value ends. A key may
/// be a path (`user[password]`).
static KEY_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?-u:\b)([A-Za-z0-9_.\[\]\-]{2,64})["']?[ \t]*[:=][ \t]*"#)
        .expect("key pattern is valid")
});

/// `<password>…</password>` in XML or HTML; an element cut by truncation matches to the end.
static XML_ELEMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([A-Za-z][A-Za-z0-9_.:\-]*)(?:[ \t][^>]*)?>([^<]*)")
        .expect("xml pattern is valid")
});

/// Redacts a text body: value patterns, then `key=value` pairs and XML elements whose key is
/// sensitive. When `cut` is true the text ends mid-body, and its last word is dropped too (see
/// [`trim_cut_tail`]).
pub(super) fn redact_text_body(
    text: &str,
    cut: bool,
    keys: &KeyRules,
    values: &ValueRules,
    replacement: &str,
    out: &mut String,
) {
    let mut keybuf = String::new();
    let redacted = values.redact(text);
    let redacted = redact_pairs(redacted, keys, &mut keybuf, replacement);
    let redacted = redact_xml(redacted, keys, &mut keybuf, replacement);
    out.push_str(if cut {
        trim_cut_tail(&redacted)
    } else {
        &redacted
    });
}

/// Replaces the value of every `key=value` pair whose key is sensitive.
fn redact_pairs<'a>(
    text: Cow<'a, str>,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for caps in KEY_SEPARATOR.captures_iter(&text) {
        let (Some(all), Some(key)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        let inside_redacted = spans.last().is_some_and(|&(_, end)| all.start() < end);
        if inside_redacted || !keys.is_sensitive(key.as_str(), keybuf) {
            continue;
        }
        let len = value_len(&text[all.end()..]);
        if len > 0 {
            spans.push((all.end(), all.end() + len));
        }
    }
    if spans.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut written = 0;
    for (start, end) in spans {
        out.push_str(&text[written..start]);
        out.push_str(replacement);
        written = end;
    }
    out.push_str(&text[written..]);
    Cow::Owned(out)
}

/// Length of the value at the start of `rest`.
///
/// A quoted value runs to its closing quote. An unquoted one runs to the end of the line or the
/// next `&`, `,`, `;`, `<`: the value of `Authorization: Basic dXNlcg==` has a space in it, and
/// over-redacting prose is harmless while stopping at the first space could leak a second word.
fn value_len(rest: &str) -> usize {
    match rest.as_bytes().first() {
        Some(&quote @ (b'"' | b'\'')) => {
            rest[1..]
                .find([char::from(quote), '\n', '\r'])
                .map_or(rest.len(), |i| {
                    if rest.as_bytes()[i + 1] == quote {
                        i + 2
                    } else {
                        i + 1
                    }
                })
        }
        _ => rest
            .find(['\r', '\n', '&', ',', ';', '<'])
            .unwrap_or(rest.len()),
    }
}

/// Replaces the contents of every XML element whose name is a sensitive key.
fn redact_xml<'a>(
    text: Cow<'a, str>,
    keys: &KeyRules,
    keybuf: &mut String,
    replacement: &str,
) -> Cow<'a, str> {
    let mut replace = |caps: &Captures<'_>, dst: &mut String| {
        let (Some(all), Some(key), Some(val)) = (caps.get(0), caps.get(1), caps.get(2)) else {
            dst.push_str(caps.get(0).map_or("", |m| m.as_str()));
            return;
        };
        let whole = all.as_str();
        if keys.is_sensitive(key.as_str(), keybuf) && !val.as_str().is_empty() {
            dst.push_str(&whole[..val.start() - all.start()]);
            dst.push_str(replacement);
            dst.push_str(&whole[val.end() - all.start()..]);
        } else {
            dst.push_str(whole);
        }
    };
    match text {
        Cow::Borrowed(s) => XML_ELEMENT.replace_all(s, AppendWith(replace)),
        Cow::Owned(s) => Cow::Owned(
            XML_ELEMENT
                .replace_all(&s, AppendWith(&mut replace))
                .into_owned(),
        ),
    }
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

    fn run(text: &str, cut: bool) -> String {
        let keys = KeyRules::new(
            DEFAULT_KEYS.iter().map(|k| Box::from(*k)).collect(),
            DEFAULT_KEY_SUFFIXES.iter().map(|k| Box::from(*k)).collect(),
            Vec::new(),
        );
        let values = ValueRules::new("[REDACTED]", Vec::new());
        let mut out = String::new();
        redact_text_body(text, cut, &keys, &values, "[REDACTED]", &mut out);
        out
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

    #[test]
    fn cut_text_loses_its_last_word() {
        assert_eq!(run("pay with 4111 1111 1111", true), "pay with");
        assert_eq!(run("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIi", true), "token");
        // Digits before the cut word go too: they may be the first groups of a card number.
        assert_eq!(run("a=1 password=hun", true), "a=");
        assert_eq!(trim_cut_tail("hello "), "hello");
    }
}
