//! JSON documents with text around them: in a log line, an error, a text body, a JSON string or
//! a query's value (`request failed: {"name":"DB_PASSWORD","value":…} (retrying)`).
//!
//! The pair rules read `"key":"value"` in such text, but not an object that names its value in
//! a sibling member; each document is read as JSON (see [`json`](super::json)) too, and stored
//! compactly when such a value in it is redacted, as it came otherwise: its keys, value
//! patterns and free text are left to the caller's rules, which read them in place, escapes
//! as they came. The text around it is left to the caller's rules too.
//!
//! A document starts at a `{` before a `"` (spaces between allowed): an object with a member.
//! An array of objects is read through its objects. Reading stays linear: a document is read
//! from its start to where it ends or stops being JSON, and the search for the next one goes
//! on from there; when it stops being JSON, the whole documents read inside it (its outermost
//! whole containers) are read once more, each on its own, and the search goes back into the
//! last string it read (a `{"` of text before a document, `{"unclosed {"name":…}`, reads as
//! one with the document's first quote closing its string), once over each stretch of text.
//! One that stops being JSON after a value its name member named is stored up to its last
//! token, as a cut one.

use super::json::{ReadInText, read_in_text};
use super::redactor::Rules;

/// `text` with the documents in it that name a value to redact in a sibling member redacted
/// as JSON, `None` when none does (or there is none). A document is quoted `quoted` times in strings (for the bound of
/// the JSON reader); when `cut` the text is cut at its end, and a document running into the
/// cut is read as a cut body is.
pub(super) fn redact_documents(rules: &Rules, text: &str, cut: bool, quoted: u8) -> Option<String> {
    let mut redacted = Redacted {
        text,
        out: String::new(),
        copied: 0,
    };
    let mut from = 0;
    // Where the search went back into a string from: it goes back again only past there.
    let mut again_from = 0;
    while let Some(start) = document_at(text.as_bytes(), from) {
        let read = read_in_text(rules, text, start, cut, quoted);
        from = read.end.max(start + 1);
        match read.read {
            ReadInText::Whole | ReadInText::Cut => redacted.replace(start, read.end, read.redacted),
            // Up to its last token, as a cut one, when a value in it surely went for its name.
            ReadInText::NotJson if read.redacted.is_some() => {
                redacted.replace(start, read.end, read.redacted);
            }
            ReadInText::NotJson => {
                // Each whole one inside reads as it did there, to the same end.
                for (inner, end) in read.inside {
                    let inner_read = read_in_text(rules, text, inner, false, quoted);
                    if inner_read.read == ReadInText::Whole && inner_read.end == end {
                        redacted.replace(inner, end, inner_read.redacted);
                    }
                }
            }
        }
        // A document may start in the last string of one that stopped being JSON (the `{"`
        // before it text: `{"unclosed {"name":…}`); the search goes back into it, once over
        // each stretch of text, and never into what has been rewritten.
        if let Some(string) = read.last_string
            && string >= again_from
            && string < from
        {
            again_from = from;
            from = string.max(redacted.copied);
        }
    }
    redacted.finish()
}

/// The text with redacted documents in place of theirs.
struct Redacted<'a> {
    text: &'a str,
    out: String,
    /// The text before this offset is in `out`.
    copied: usize,
}

impl Redacted<'_> {
    /// Puts `json` in place of the text from `start` to `end`, when something was redacted.
    fn replace(&mut self, start: usize, end: usize, json: Option<String>) {
        if let Some(json) = json {
            self.out.push_str(&self.text[self.copied..start]);
            self.out.push_str(&json);
            self.copied = end;
        }
    }

    fn finish(mut self) -> Option<String> {
        (self.copied > 0).then(|| {
            self.out.push_str(&self.text[self.copied..]);
            self.out
        })
    }
}

/// Where the next document starts in `bytes` from `from`: a `{` before a `"`, ASCII
/// whitespace between them. Each byte is looked at once or twice.
pub(super) fn document_at(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(found) = bytes.get(at..).and_then(|rest| memchr::memchr(b'{', rest)) {
        let brace = at + found;
        let mut next = brace + 1;
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(next) {
            next += 1;
        }
        if bytes.get(next) == Some(&b'"') {
            return Some(brace);
        }
        at = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;
    use super::*;

    fn run(text: &str, cut: bool) -> Option<String> {
        redact_documents(Redactor::default().rules(), text, cut, 0)
    }

    #[test]
    fn documents_start_at_a_brace_before_a_quote() {
        assert_eq!(document_at(br#"a {"b":1}"#, 0), Some(2));
        assert_eq!(document_at(b"a { \n\t\"b\":1}", 0), Some(2));
        assert_eq!(document_at(br#"{b} [1] {{"a""#, 0), Some(9));
        assert_eq!(document_at(br#"{"a" {"b""#, 1), Some(5));
        assert_eq!(document_at(b"{ {x} { ", 0), None);
    }

    #[test]
    fn only_documents_that_name_a_value_are_rewritten() {
        assert_eq!(
            run(r#"a { "name": "pin", "value": 1234 } b"#, false).as_deref(),
            Some(r#"a {"name":"pin","value":"[REDACTED]"} b"#)
        );
        // A whole document, and one after another.
        assert_eq!(
            run(
                r#"{"value":"x","key":"token"}{"name":"n","value":"y"}"#,
                false
            )
            .as_deref(),
            Some(r#"{"value":"[REDACTED]","key":"token"}{"name":"n","value":"y"}"#)
        );
        // Keys, value patterns and free text are the caller's rules' to read, in place.
        for text in [
            r#"a {"password":"hunter2"} b"#,
            r#"a {"n":"4111 1111 1111 1111","m":"token=abc"} b"#,
            r#"a {"name":"PORT","value":"80"} b"#,
            r#"a {"value":"x"} b"#,
            r#"a {"value":"x", b"#,
        ] {
            assert_eq!(run(text, false), None, "{text}");
        }
    }

    /// A document without a secret stays byte for byte whatever its spacing, duplicate keys,
    /// escapes, numbers and Unicode; a redacted one keeps its other members' escapes and
    /// numbers as they came, only its spaces go.
    #[test]
    fn plain_documents_stay_byte_for_byte() {
        for text in [
            "got {  \"name\" :\t\"PORT\" ,\n \"value\" : \"80\"  } ok",
            r#"a {"name":"PORT","value":"80","name":"HOST","value":"db"} b"#,
            r#"a {"name":"PORT","value":"80","s":"\u003c\/a\u003e","u":"caf\u00e9 é","n":1.0e3,"m":-0.5E+2} b"#,
            r#"é{"value":"80","name":"PORT"}😀{"key":"p\u006frt","value":[1,{"a":null}]}"#,
            r#"{"unclosed {"name":"PORT","value":"80"} {"name":"PORT","value":"80", oops"#,
        ] {
            assert_eq!(run(text, false), None, "{text}");
            assert_eq!(Redactor::default().redact_error(text), text);
        }
        assert_eq!(
            run(
                r#"a { "name" : "pin", "value" : "1", "s" : "\u003c\/a\u003e", "n" : 1.0e3, "name" : "x" } b"#,
                false
            )
            .as_deref(),
            Some(r#"a {"name":"pin","value":"[REDACTED]","s":"\u003c\/a\u003e","n":1.0e3,"name":"x"} b"#)
        );
    }

    /// A document that stops being JSON still has the whole documents inside it read.
    #[test]
    fn whole_documents_inside_one_that_stops_being_json() {
        assert_eq!(
            run(
                r#"{"a":[{"name":"pin","value":1},{"b":{"key":"otp","value":2}}], x} {"value":3,"name":"ssn"}"#,
                false
            )
            .as_deref(),
            Some(
                r#"{"a":[{"name":"pin","value":"[REDACTED]"},{"b":{"key":"otp","value":"[REDACTED]"}}], x} {"value":"[REDACTED]","name":"ssn"}"#
            )
        );
        // Never closed, in a text that is not cut: not JSON, but its whole insides are.
        assert_eq!(
            run(r#"{"a":{"name":"pin","value":1},"b":"#, false).as_deref(),
            Some(r#"{"a":{"name":"pin","value":"[REDACTED]"},"b":"#)
        );
    }

    /// Found by review: a document that starts inside a string of one that stops being JSON
    /// (a `{"` of text before it: `{"unclosed: {"name":…}`) was never read, the search going
    /// on from where the first one stopped.
    #[test]
    fn a_document_inside_a_string_of_one_that_stops_being_json() {
        for (text, want) in [
            (
                r#"err: {"unclosed: {"name":"DB_PASSWORD","value":"hunter2"} ok"#,
                r#"err: {"unclosed: {"name":"DB_PASSWORD","value":"[REDACTED]"} ok"#,
            ),
            (
                r#"a {"a":"{"name":"pin","value":"1234"} b"#,
                r#"a {"a":"{"name":"pin","value":"[REDACTED]"} b"#,
            ),
            (
                r#"{"a":{"b":"{"}, "{ "value" : 1, "key" : "otp" }"#,
                r#"{"a":{"b":"{"}, "{"value":"[REDACTED]","key":"otp"}"#,
            ),
            // Two such `{"` before it, and one in a bad escape.
            (
                r#"{"x {"y {"name":"pin","value":"1234"}"#,
                r#"{"x {"y {"name":"pin","value":"[REDACTED]"}"#,
            ),
            (
                r#"{"a":"C:\{"name":"pin","value":"1234"}"#,
                r#"{"a":"C:\{"name":"pin","value":"[REDACTED]"}"#,
            ),
        ] {
            assert_eq!(run(text, false).as_deref(), Some(want), "{text}");
            assert!(!run(text, true).unwrap_or_default().contains("hunter2"));
        }
        assert_eq!(
            run(r#"{"unclosed: {"name":"PORT","value":"80"}"#, false),
            None
        );
        // The search does not go back into a document rewritten up to its last token (a
        // limit: a second secret in a document there is left to the pair rules).
        assert_eq!(
            run(
                r#"{"name":"pin","value":"1","x":"{"name":"otp","value":"2"}"#,
                false
            )
            .as_deref(),
            Some(r#"{"name":"pin","value":"[REDACTED]","x":"{"name":"otp","value":"2"}"#)
        );
    }

    /// Found by review: a document that stops being JSON after a value its name member named
    /// (a log line that shortens it with `…`, an error that ends inside it, a document quoted
    /// in a string of it) kept the value; it goes as in a cut body, the text after the last
    /// token left as it came. A value only in doubt of its name (none came) stays, as before.
    #[test]
    fn a_document_that_stops_being_json_after_a_named_value() {
        for (text, want) in [
            (
                r#"log {"name":"DB_PASSWORD","value":"hunter2", oops} x"#,
                r#"log {"name":"DB_PASSWORD","value":"[REDACTED]", oops} x"#,
            ),
            (
                r#"log {"name":"DB_PASSWORD","value":"hunter2","d":"long te… (truncated)"#,
                // Read to the end of the text as to a cut: its last word goes.
                r#"log {"name":"DB_PASSWORD","value":"[REDACTED]","d":"long te…"#,
            ),
            (
                r#"log {"value": "hunter2", "name": "api_key" oops"#,
                r#"log {"value":"[REDACTED]","name":"api_key" oops"#,
            ),
            (
                "a {\"name\":\"pin\",\"value\":1234",
                "a {\"name\":\"pin\",\"value\":\"[REDACTED]\"",
            ),
            (
                r#"x {"log":"{\"name\":\"pin\",\"value\":\"1234\"}", oops"#,
                r#"x {"log":"{\"name\":\"pin\",\"value\":\"[REDACTED]\"}", oops"#,
            ),
            (
                r#"x {"log":"a {\"name\":\"pin\",\"value\":\"1234\"} b", oops"#,
                r#"x {"log":"a {\"name\":\"pin\",\"value\":\"[REDACTED]\"} b", oops"#,
            ),
        ] {
            assert_eq!(run(text, false).as_deref(), Some(want), "{text}");
        }
        for plain in [
            r#"a {"value":"x", b"#,
            r#"a { "name": "PORT", "value": "80", oops"#,
            r#"a {"value": "80", "name": "PORT" oops"#,
        ] {
            assert_eq!(run(plain, false), None, "{plain}");
        }
    }

    /// A document running into the cut is read as a cut body is: a value waiting for its name
    /// goes.
    #[test]
    fn a_document_cut_short() {
        let out = run(r#"log {"value": "hunter2", "na"#, true);
        assert_eq!(out.as_deref(), Some(r#"log {"value":"[REDACTED]","#));
        assert_eq!(run(r#"log {"value": "hunter2", "na"#, false), None);
        assert_eq!(run(r#"log {"name":"PORT","value": "8"#, true), None);
    }

    /// Hostile texts stay linear: each document is read to where it stops, once, and the whole
    /// ones inside one that stops being JSON once more; a `{` then a megabyte is read once.
    #[test]
    fn hostile_documents_in_text_stay_linear() {
        let mut cases: Vec<String> = [
            r#"{"a":"#,
            r#"{""#,
            r#"{ "a" "#,
            r#"{"a":[{"b":1}, x "#,
            r#"{"a":{"b":1},"c":"#,
            r#"{"value":"a","name":"token"} "#,
            r#"{"value":"a","b":["#,
            r#"[{"value":1,"n":{"#,
            r#"{"a":{"name":"pin","value":1},"b":{"#,
            r#"{"m":"{\"name\":\"pin\",\"value\":1} {\""} "#,
            // Documents in strings of ones that stop being JSON, ones that stop after a
            // named value.
            r#"{"x {"#,
            r#"{"a":"{""#,
            r#"{"a":"{"name":"pin","value":1} "#,
            r#"{"name":"pin","value":1, x "#,
            r#"{"a":{"b":"{"}, "{ "#,
            r#"{"a":"\q {"#,
        ]
        .iter()
        .map(|unit| unit.repeat((256 << 10) / unit.len()))
        .collect();
        cases.push(format!(r#"{{"a":"{}"#, "b".repeat(1 << 20)));
        cases.push(format!("{{\"a\":1,{}", " ".repeat(1 << 20)));
        for text in cases {
            let text = format!("{text} password=x");
            let started = std::time::Instant::now();
            let out = Redactor::default().redact_error(&text);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{}: {took:?}", &text[..40]);
            assert!(out.contains("[REDACTED]"), "{}", &text[..40]);
        }
    }
}
