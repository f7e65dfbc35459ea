//! NDJSON, JSON Lines and JSON text sequences (RFC 7464): one JSON document a record.
//!
//! Records end at a line feed and, in a JSON text sequence, start after a record separator
//! (0x1E). The separators, and a `\r` before a line feed, are kept byte for byte; each record
//! is redacted as a JSON body is (compactly), or as text when it is no JSON document, so a
//! broken line fails closed. A record may run over lines (a document sent pretty-printed, as a
//! JSON text sequence allows): a line that opens a document and does not close it is read on
//! to the document's end, so that its pairs of a name and a value on different lines are read
//! as JSON; one that stops being JSON (or has text after its end on its last line) is JSON up
//! to where it stops, a cut document, and text from there to that line's end, as the text
//! rules do not pair a name with a value on the next line. The last record of a body cut by the
//! capture cap is read as a cut JSON body is.
//!
//! Reading stays linear in the body's length: a line is read as a document alone once, and a
//! document that runs over lines is read on at most twice (to find its end, then to redact
//! it, as JSON up to where it stops being JSON) from where the reading before it stopped, and
//! the rest of the line where it stops once as text.

use std::fmt::Write as _;

use super::json::{InText, ReadInText, read_in_text, redact_json_document};
use super::redactor::Rules;
use super::text::redact_text;

/// RFC 7464's record separator, which starts each record of a JSON text sequence.
const RECORD_SEPARATOR: u8 = 0x1E;

/// One line of a body: its record, and what ends it.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Where the line starts.
    start: usize,
    /// Where its record ends: before its separator, and a `\r` before a line feed.
    end: usize,
    /// Where the next line starts, after the separator; `None` for the body's last line.
    next: Option<usize>,
}

impl Line {
    /// The line that starts at `start` in `text`.
    fn at(text: &str, start: usize) -> Self {
        let bytes = text.as_bytes();
        match memchr::memchr2(b'\n', RECORD_SEPARATOR, &bytes[start..]) {
            Some(len) => {
                let at = start + len;
                let cr = bytes[at] == b'\n' && at > start && bytes[at - 1] == b'\r';
                Line {
                    start,
                    end: at - usize::from(cr),
                    next: Some(at + 1),
                }
            }
            None => Line {
                start,
                end: bytes.len(),
                next: None,
            },
        }
    }

    /// The start of the line that holds byte `at`, past `self`'s start.
    fn start_of_line_holding(self, text: &str, at: usize) -> usize {
        let bytes = &text.as_bytes()[self.start..at.min(text.len())];
        memchr::memrchr2(b'\n', RECORD_SEPARATOR, bytes)
            .map_or(self.start, |len| self.start + len + 1)
    }

    /// Writes what ends the line: its `\r` and separator, as they came.
    fn push_end(self, text: &str, out: &mut String) {
        out.push_str(&text[self.end..self.next.unwrap_or(text.len())]);
    }
}

/// Redacts an NDJSON, JSON Lines or JSON text sequence body into `out`.
///
/// `cut` is the truncation marker text when `input` is only a prefix of the body; the output
/// then ends with ` …[<cut>]`.
pub(super) fn redact_json_lines(rules: &Rules, input: &[u8], cut: Option<&str>, out: &mut String) {
    let input = match (cut, std::str::from_utf8(input)) {
        // A multi-byte character split by the capture cap is just part of the cut.
        (Some(_), Err(e)) if e.error_len().is_none() => &input[..e.valid_up_to()],
        _ => input,
    };
    // Invalid UTF-8 elsewhere is the replacement character, as in a text body.
    let text = String::from_utf8_lossy(input);
    redact_records(rules, &text, cut.is_some(), out);
    if let Some(cut) = cut {
        // `write!` into a String cannot fail.
        let _ = write!(out, " …[{cut}]");
    }
}

/// Redacts the records of `text`, cut at its end when `is_prefix`.
fn redact_records(rules: &Rules, text: &str, is_prefix: bool, out: &mut String) {
    let mut start = 0;
    loop {
        let line = Line::at(text, start);
        let record = &text[line.start..line.end];
        let cut_here = is_prefix && line.next.is_none();
        let opens = record.len() - record.trim_ascii_start().len();
        if record.trim_ascii().is_empty() || redact_json_document(rules, record, cut_here, out) {
            line.push_end(text, out);
        } else if line.next.is_some() && matches!(record.as_bytes()[opens], b'{' | b'[') {
            // Always past `line`: a last empty line it leaves is read as blank.
            start = redact_run_on(rules, text, line, line.start + opens, is_prefix, out);
            continue;
        } else {
            redact_text(rules, record, cut_here, false, out);
            line.push_end(text, out);
        }
        match line.next {
            Some(next) => start = next,
            None => break,
        }
    }
}

/// Redacts the document that opens at `at` on `line` and is not closed there, read on over
/// the lines after it; returns where the next line to read starts (the text's length when
/// none is left).
///
/// A document that closes at the end of a line is one record. Otherwise the document is JSON
/// up to where it stops being JSON (a cut one when it does not close), so that a name and its
/// value on different lines are paired, and text from there to that line's end.
fn redact_run_on(
    rules: &Rules,
    text: &str,
    line: Line,
    at: usize,
    is_prefix: bool,
    out: &mut String,
) -> usize {
    let read = read_in_text(rules, text, at, is_prefix, 0);
    let last = Line::at(text, line.start_of_line_holding(text, read.end));
    let (record, end) = match read.read {
        ReadInText::Cut => (&text[line.start..], None),
        ReadInText::Whole
            if text
                .get(read.end..last.end)
                .is_some_and(|rest| rest.trim_ascii().is_empty()) =>
        {
            (&text[line.start..last.end], Some(last))
        }
        ReadInText::Whole | ReadInText::NotJson => {
            let after = &text[read.end..];
            let stop = read.end + after.len() - after.trim_ascii_start().len();
            let stop = Line::at(text, line.start_of_line_holding(text, stop));
            // The document as far as it is JSON is read as JSON, a cut one when it does not
            // close, so that its names pair with values on later lines; the text rules read
            // the rest.
            let mut from = json_part_end(text, line.start, at, &read);
            let part = &text[line.start..from];
            if !redact_json_document(rules, part, read.read != ReadInText::Whole, out) {
                from = line.start;
            }
            let lines = &text[from..stop.end];
            redact_text(rules, lines, is_prefix && stop.next.is_none(), false, out);
            stop.push_end(text, out);
            return stop.next.unwrap_or(text.len());
        }
    };
    let cut_here = is_prefix && end.is_none_or(|last| last.next.is_none());
    if !redact_json_document(rules, record, cut_here, out) {
        redact_text(rules, record, cut_here, false, out);
    }
    match end {
        Some(last) => {
            last.push_end(text, out);
            last.next.unwrap_or(text.len())
        }
        None => text.len(),
    }
}

/// Where the part of a run-on document that opens at `at` on the line that starts at `start`
/// and is read as JSON ends, for one that stops being JSON at `read`: before the space after
/// its last token, and before that token when it is a number or a literal a cut reading would
/// drop as perhaps cut (it is whole: a token that is no JSON follows it). A document that runs
/// into the text's end is read to it, as a cut one. One that stops where a value is due (after
/// a `:`, at a string holding a raw line break) is JSON up to its last name, which stays with
/// the text that follows, for the text rules to pair them.
fn json_part_end(text: &str, start: usize, at: usize, read: &InText) -> usize {
    let accepted = text[at..read.end].trim_ascii_end();
    let end = at + accepted.len();
    match accepted.as_bytes().last() {
        Some(b':') if read.end < text.len() => key_start(accepted).map_or(start, |i| at + i),
        Some(b)
            if b.is_ascii_alphanumeric()
                && read.read == ReadInText::NotJson
                && read.end < text.len() =>
        {
            // A number's or a literal's bytes hold none of these, and what precedes it does.
            accepted
                .rfind(['"', '{', '}', '[', ']', ',', ':'])
                .map_or(start, |i| at + i + 1)
        }
        _ => end,
    }
}

/// Where the name before the `:` that ends `accepted` (JSON a tokenizer accepted) opens, at
/// its quote; read back over the name alone.
fn key_start(accepted: &str) -> Option<usize> {
    let bytes = accepted.as_bytes();
    let close = accepted[..accepted.len() - 1]
        .trim_ascii_end()
        .len()
        .checked_sub(1)?;
    let mut i = close;
    while let Some(quote) = memchr::memrchr(b'"', &bytes[..i]) {
        let escapes = bytes[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if escapes % 2 == 0 {
            return Some(quote);
        }
        i = quote;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;
    use super::super::body::BodyInput;

    fn redact(body: &str) -> String {
        let input = BodyInput::new(Some("application/x-ndjson"), body.as_bytes());
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    /// Found by review: a record that runs over lines and then stops being JSON (text after
    /// its end, a broken token, or the body's end before it closes) was text together, and the
    /// text rules do not pair a name with a value on the next line, so the value was stored.
    #[test]
    fn run_on_records_that_stop_being_json_keep_no_value() {
        let cases = [
            (
                "{\"a\":1,\n\"password\":\n\"hunter2\"} x\n{\"b\":1}",
                "{\"a\":1,\"password\":\"[REDACTED]\"} x\n{\"b\":1}",
            ),
            (
                "{\n\"password\":\n\"hunter2\"\n",
                "{\"password\":\"[REDACTED]\"\n",
            ),
            (
                "{\"a\":\n12,\"token\":\n\"hunter2\",\nbroken 7\n}\n{\"c\":3}\n",
                "{\"a\":12,\"token\":\"[REDACTED]\",\nbroken 7\n}\n{\"c\":3}\n",
            ),
            // One that stops being JSON where a value is due (a raw line break in a string)
            // is text, so that its last name is read with what follows.
            (
                "{\"a\":1,\n\"password\":\"hunter2\n\"}\n",
                "{\"a\":1,\"password\":[REDACTED]\n\"}\n",
            ),
            (
                "{\"token\":\n\"hunter2\",\n\"a\\\"b\":\"x\ny\"}\n",
                "{\"token\":\"[REDACTED]\",\"a\\\"b\":\"x\ny\"}\n",
            ),
            (
                "{\n\"password\":\n\"hunter2\",\n\"x\":\n",
                "{\"password\":\"[REDACTED]\",\"x\":\n",
            ),
            // The last token, when a number, stays as it came: it is no cut one.
            (
                "{\"password\":\n\"hunter2\",\"n\":\n12 x\n",
                "{\"password\":\"[REDACTED]\",\"n\":\n12 x\n",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(redact(body), want, "{body:?}");
        }
    }

    /// Hostile bodies stay linear: each record is read once as JSON and, when it is none, once
    /// as text, however many records there are and however long one is.
    #[test]
    fn hostile_json_lines_stay_linear() {
        const LEN: usize = 64 << 10;
        let mut cases: Vec<String> = [
            "1\n",
            "x\n",
            "\n",
            "\r\n",
            "\x1e",
            "{\n",
            "[\"\n",
            "\"password=x\n",
            "[\n",
            "[1,\n",
            "{\"a\":[\n",
            "{\"a\":1} x\n",
            "{\"a\":\n1}\n",
            "{\"name\":\"pin\",\n\"value\":\"x\",\n",
            "{\n\"value\":\"a\" x\n",
            "{\n\x1e",
            "{\"a\":\n1 x\n",
            "{\"password\":\n\"x\"} y\n",
            "[1,\n2,\nx\n",
            "{\"a\":\n\"x\n",
        ]
        .iter()
        .map(|unit| unit.repeat(LEN / unit.len()))
        .collect();
        for unit in [
            r#"{"value":"a","b":["#,
            r#"{"name":"pin","value":"#,
            "password=x {\"a\":[",
            "[",
            "a",
        ] {
            cases.push(unit.repeat(LEN / unit.len()));
        }
        cases.push(r#"{"name":"pin","value":"x"}"#.repeat(LEN / 26));
        let unit = "{\"password\":\"x\",\"pad\":\"aaaaaaaa\"}\n";
        cases.push(unit.repeat(LEN / unit.len()));
        for body in cases {
            let started = std::time::Instant::now();
            let out = redact(&body);
            let took = started.elapsed();
            assert!(took.as_secs() < 2, "{:?}: {took:?}", &body[..8]);
            assert!(out.len() <= 2 * body.len() + 64, "{:?}", &body[..8]);
        }
    }
}
