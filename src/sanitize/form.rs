//! `application/x-www-form-urlencoded` bodies and query strings.

use std::borrow::Cow;

use super::redactor::Rules;
use super::text::{redact_text_body, trim_cut_tail};

/// Redacts `k=v&k=v` pairs into `out`.
///
/// Keys are percent-decoded before matching (`pass%77ord` is `password`); values of sensitive
/// keys are replaced and other values go through the value patterns, decoded, and when they
/// hold a `=` (a URL with its own query) through the text rules for pairs. When `cut` is
/// true the last pair may be cut short, so its value loses its last word and a last key
/// without `=` is dropped.
pub(super) fn redact_pairs(rules: &Rules, input: &str, cut: bool, out: &mut String) {
    let mut keybuf = String::new();
    let mut pairs = input.split('&').peekable();
    let mut first = true;
    while let Some(pair) = pairs.next() {
        let last_cut = cut && pairs.peek().is_none();
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        if last_cut && value.is_none() {
            break;
        }
        if !first {
            out.push('&');
        }
        first = false;
        let decoded_key = percent_decode(key);
        push_redacted(out, rules, key, &decoded_key);
        let Some(value) = value else { continue };
        out.push('=');
        if rules.keys.is_sensitive(&decoded_key, &mut keybuf) {
            out.push_str(&rules.replacement);
        } else {
            let decoded = percent_decode(value);
            if decoded.contains('=') {
                // A URL with its own query (`redirect_uri=…%3Ftoken%3D…`), or pairs: their
                // values go as a text's pairs do.
                let mut redacted = String::new();
                redact_text_body(
                    &decoded,
                    last_cut,
                    &rules.keys,
                    &rules.values,
                    &rules.replacement,
                    &mut redacted,
                );
                if last_cut || redacted != *decoded {
                    push_encoded(out, &redacted);
                } else {
                    out.push_str(value);
                }
            } else if last_cut {
                let redacted = rules.values.redact(&decoded);
                push_encoded(out, trim_cut_tail(&redacted));
            } else {
                push_redacted(out, rules, value, &decoded);
            }
        }
    }
}

/// Emits `raw` when the value patterns leave `decoded` alone, else the encoded redaction.
fn push_redacted(out: &mut String, rules: &Rules, raw: &str, decoded: &str) {
    match rules.values.redact(decoded) {
        Cow::Borrowed(_) => out.push_str(raw),
        Cow::Owned(redacted) => push_encoded(out, &redacted),
    }
}

/// Percent-decodes `+` and `%XX`; malformed escapes stay as written, bad UTF-8 is replaced.
pub(super) fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'+', _) => decoded.push(b' '),
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 2;
            }
            _ => decoded.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// Appends `s` with the characters that would change the pair structure percent-encoded.
fn push_encoded(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            ' ' => out.push('+'),
            '%' | '&' | '=' | '+' | '#' => out.push_str(match c {
                '%' => "%25",
                '&' => "%26",
                '=' => "%3D",
                '+' => "%2B",
                _ => "%23",
            }),
            c if c.is_control() => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;
    use super::*;

    fn run(input: &str, cut: bool) -> String {
        let redactor = Redactor::default();
        let mut out = String::new();
        redact_pairs(redactor.rules(), input, cut, &mut out);
        out
    }

    #[test]
    fn sensitive_keys_any_spelling() {
        assert_eq!(
            run("user=bob&Pass_Word=hunter2", false),
            "user=bob&Pass_Word=[REDACTED]"
        );
        assert_eq!(
            run("pass%77ord=hunter2&x=1", false),
            "pass%77ord=[REDACTED]&x=1"
        );
        assert_eq!(run("api+key=abc", false), "api+key=[REDACTED]");
        assert_eq!(run("q=foo&Api-Key=bar", false), "q=foo&Api-Key=[REDACTED]");
    }

    /// Rails, PHP and Express nest form fields as `user[password]`; the query strings of the
    /// same forms, percent-encoded, too.
    #[test]
    fn nested_keys() {
        assert_eq!(
            run(
                "user[name]=ann&user[password]=hunter2&user[password_confirmation]=hunter2",
                false
            ),
            "user[name]=ann&user[password]=[REDACTED]&user[password_confirmation]=[REDACTED]"
        );
        assert_eq!(
            run("user%5Bpassword%5D=hunter2&page=2", false),
            "user%5Bpassword%5D=[REDACTED]&page=2"
        );
        assert_eq!(
            Redactor::default().redact_query("?card[cvc]=123&card[exp]=12"),
            "card[cvc]=[REDACTED]&card[exp]=12"
        );
    }

    #[test]
    fn values_are_decoded_before_patterns() {
        assert_eq!(
            run("h=Bearer%20abcdefghijkl&n=1", false),
            "h=Bearer+[REDACTED]&n=1"
        );
        assert_eq!(run("card=4111+1111+1111+1111", false), "card=[REDACTED]");
        assert_eq!(
            run("order=1234567812345678", false),
            "order=1234567812345678"
        );
    }

    /// Found by review: a value that is a URL with its own query (a `redirect_uri`, a
    /// callback), percent-encoded or not, kept that query's secrets.
    #[test]
    fn urls_in_values_keep_no_secrets() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_query("redirect=https%3A%2F%2Fx%2Fcb%3Ftoken%3DSECRET%26a%3D1&n=1"),
            "redirect=https://x/cb?token%3D[REDACTED]%26a%3D1&n=1"
        );
        assert_eq!(
            r.redact_query("redirect=https://x/cb?password=SECRET&a=1"),
            "redirect=https://x/cb?password%3D[REDACTED]&a=1"
        );
        // A value with `=` and nothing sensitive stays as written.
        assert_eq!(
            r.redact_query("sig=YWJj%3D%3D&next=%2Fa%3Fb%3D1"),
            "sig=YWJj%3D%3D&next=%2Fa%3Fb%3D1"
        );
        // Cut inside such a value: the cut word goes, as in a cut text.
        assert_eq!(run("a=1&next=%2Fa%3Fpin%3D12", true), "a=1&next=");
    }

    #[test]
    fn odd_shapes_survive() {
        assert_eq!(run("", false), "");
        assert_eq!(run("a&&b=&=c&%zz=%4", false), "a&&b=&=c&%zz=%4");
    }

    #[test]
    fn cut_last_pair() {
        assert_eq!(run("a=1&password=hun", true), "a=1&password=[REDACTED]");
        assert_eq!(run("a=1&password", true), "a=1");
        assert_eq!(run("a=1&note=card+4111+1111", true), "a=1&note=card");
    }
}
