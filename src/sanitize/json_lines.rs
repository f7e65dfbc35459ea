//! NDJSON, JSON Lines and JSON text sequences (RFC 7464): one JSON document a record.
//!
//! Records end at a line feed and, in a JSON text sequence, start after a record separator (0x1E).
//! The separators, and a `\r` before a line feed, are kept byte for byte; each record is redacted
//! as a JSON body is (compactly), or as text when it is no JSON document, so a broken line fails
//! closed. A record may run over lines (a document sent pretty-printed, as a JSON text sequence
//! allows): a line that opens a document and does not close it is read on to the document's end, so
//! that its pairs of a name and a value on different lines are read as JSON, and is stored
//! compactly on one line, as every JSON body is (the row holds a line a record, its records told
//! apart as they are in a one-line-a-record body); one that stops being JSON (or has text after its
//! end on its last line) is JSON up to where it stops, a cut document, and text from there to that
//! line's end, as the text rules do not pair a name with a value on the next line; one that stops
//! at a later line's start ends on the line before, that line a record of its own. A raw line break
//! or record separator inside a string (no JSON, as an encoder escapes both, but clients send it)
//! is read as part of the string, kept as it came, so that the value's part after it and the
//! members after it are read as JSON; unless the document read so stops being JSON and a record
//! starts after the break, as when a string never closes. A byte order mark before a record stays
//! as it came. The last record of a body cut by the capture cap is read as a cut JSON body is.
//!
//! Reading stays linear in the body's length: a line is read as a document alone once, and a
//! document that runs over lines is read on at most twice (to find its end, then to redact it, as
//! JSON up to where it stops being JSON) from where the reading before it stopped, and the rest of
//! the line where it stops once as text. One that stops at a raw break in a string is read across
//! breaks once more; a reading across breaks that is not used is not read across again up to where
//! it stopped, so that each byte is read so at most twice.

use std::fmt::Write as _;

use super::json::{
    InText, RECORD_SEPARATOR, ReadInText, read_in_text, read_record_in_text, redact_json_document,
    redact_json_record,
};
use super::redactor::Rules;
use super::text::redact_text;

/// U+FEFF, which a file's first line may start with.
const BYTE_ORDER_MARK: char = '\u{feff}';

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
    // Where the last reading across raw breaks that was not used stopped; see
    // [`redact_run_on`].
    let mut read_across = 0;
    loop {
        let mut line = Line::at(text, start);
        // A byte order mark (a file saved by an editor that writes one) is no JSON: it stays
        // as it came, and the record after it is read.
        if text[line.start..line.end].starts_with(BYTE_ORDER_MARK) {
            out.push(BYTE_ORDER_MARK);
            line.start += BYTE_ORDER_MARK.len_utf8();
        }
        let record = &text[line.start..line.end];
        let cut_here = is_prefix && line.next.is_none();
        let opens = record.len() - record.trim_ascii_start().len();
        if record.trim_ascii().is_empty() || redact_json_document(rules, record, cut_here, out) {
            line.push_end(text, out);
        } else if line.next.is_some() && matches!(record.as_bytes()[opens], b'{' | b'[') {
            // Always past `line`: a last empty line it leaves is read as blank.
            let at = line.start + opens;
            start = redact_run_on(rules, text, line, at, is_prefix, &mut read_across, out);
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
///
/// A document that stops at a raw line break or record separator inside a string (no JSON,
/// but clients send it) is read again with the break as part of the string, so that the
/// part of a value after it, and the members after it, are read as JSON. That reading is
/// used unless it too stops being JSON and the break is followed by what starts a record
/// (the string never closed: the record after it is read alone). `read_across` is where the
/// last reading not used stopped: a break before it is not read across again, so that each
/// byte is read across breaks at most twice.
fn redact_run_on(
    rules: &Rules,
    text: &str,
    line: Line,
    at: usize,
    is_prefix: bool,
    read_across: &mut usize,
    out: &mut String,
) -> usize {
    let mut read = read_in_text(rules, text, at, is_prefix, 0);
    let mut raw_breaks = false;
    if let Some(stop) = read.raw_break.filter(|&stop| stop >= *read_across) {
        let across = read_record_in_text(rules, text, at, is_prefix);
        if across.read == ReadInText::NotJson
            && across.end < text.len()
            && starts_record(text, stop)
        {
            *read_across = across.end;
        } else {
            read = across;
            raw_breaks = true;
        }
    }
    let redact_json = if raw_breaks {
        redact_json_record
    } else {
        redact_json_document
    };
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
            let mut stop = read.end + after.len() - after.trim_ascii_start().len();
            // What stops being JSON at a later line's start is a record of its own (the
            // record before it broken, as by a string that never closed): the text rules,
            // which read a line at a time, read it from its start.
            if memchr::memchr(b'\n', &text.as_bytes()[read.end..stop]).is_some() {
                stop = read.end;
            }
            let stop = Line::at(text, line.start_of_line_holding(text, stop));
            // The document as far as it is JSON is read as JSON, a cut one when it does not
            // close, so that its names pair with values on later lines; the text rules read
            // the rest.
            let mut from = json_part_end(text, line.start, at, &read);
            let part = &text[line.start..from];
            if !redact_json(rules, part, read.read != ReadInText::Whole, out) {
                from = line.start;
            }
            let lines = &text[from..stop.end];
            redact_text(rules, lines, is_prefix && stop.next.is_none(), false, out);
            stop.push_end(text, out);
            return stop.next.unwrap_or(text.len());
        }
    };
    let cut_here = is_prefix && end.is_none_or(|last| last.next.is_none());
    if !redact_json(rules, record, cut_here, out) {
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

/// Whether the raw break at `at` inside a string is followed by what starts a record: a record
/// separator, or a line that opens a document.
fn starts_record(text: &str, at: usize) -> bool {
    let bytes = text.as_bytes();
    bytes[at] == RECORD_SEPARATOR
        || bytes
            .get(at + 1..)
            .and_then(|rest| {
                rest.iter()
                    .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            })
            .is_some_and(|b| matches!(b, b'{' | b'[' | &RECORD_SEPARATOR))
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
        redact_as("application/x-ndjson", body)
    }

    fn redact_as(content_type: &str, body: &str) -> String {
        let input = BodyInput::new(Some(content_type), body.as_bytes());
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    /// The body's first `at` bytes, as the capture cap cuts it.
    fn redact_cut(body: &str, at: usize) -> String {
        let input = BodyInput {
            content_type: Some("application/x-ndjson"),
            content_encoding: None,
            bytes: &body.as_bytes()[..at],
            total_len: body.len() as u64,
            truncated: at < body.len(),
            route: None,
        };
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    /// Hostile bodies that hold secrets keep none: strings that never close, raw breaks,
    /// byte order marks and CRLF endings, whole and cut by the capture cap at every record.
    #[test]
    fn hostile_json_lines_keep_no_secret() {
        const LEN: usize = 16 << 10;
        for unit in [
            "{\"password\":\"hun\nter2\"}\n",
            "{\"password\":\"hun\r\nter2\"}\r\n",
            "{\"a\":\"\n{\"password\":\"hunter2\"}\n",
            "{\"a\":\"\n{\"name\":\"pin\",\"value\":\"hunter2\"}\n",
            "{\"password\":\"hun\nter2\" x\n",
            "\u{feff}{\"name\":\"pin\",\"value\":\"hunter2\"}\r\n",
            "\u{feff}{\"password\":\"hun\nter2\"}\r\n",
            "[[[[{\"password\":\"hun\nter2\"}\n",
        ] {
            let body = unit.repeat(LEN / unit.len());
            let started = std::time::Instant::now();
            let out = redact(&body);
            assert!(started.elapsed().as_secs() < 2, "{unit:?}");
            assert!(
                !out.contains("hun") && !out.contains("ter2"),
                "{unit:?}: {out:.300}"
            );
            for at in (1..body.len())
                .step_by(unit.len() * 61 + 1)
                .chain([body.len() - 1])
            {
                let out = redact_cut(&body, at);
                let secret = out.contains("hun") || out.contains("ter2");
                assert!(!secret, "{unit:?} cut at {at}: {out:.300}");
            }
        }
    }

    /// A byte order mark before a record (a file saved by an editor that writes one) made it
    /// text, whose rules do not pair a value with its name member. It stays as it came, and
    /// the record after it is read as JSON.
    #[test]
    fn a_byte_order_mark_keeps_its_record_json() {
        assert_eq!(
            redact("\u{feff}{\"name\":\"pin\",\"value\":\"hunter2\"}\r\n{\"a\":1}\r\n"),
            "\u{feff}{\"name\":\"pin\",\"value\":\"[REDACTED]\"}\r\n{\"a\":1}\r\n"
        );
        assert_eq!(
            redact("\u{feff}{\"password\":\n\"hun\nter2\"}\n"),
            "\u{feff}{\"password\":\"[REDACTED]\"}\n"
        );
    }

    /// Found by review: a raw line break or record separator inside a string (no JSON, but
    /// clients send it) ended the record, and the text rules read the rest: a value named by
    /// a `name` member, an array under a sensitive key, and the part of a sensitive value
    /// after the break were stored. Such a record is read as one document, the break kept.
    #[test]
    fn raw_breaks_inside_strings_keep_no_secret() {
        let cases = [
            (
                "{\"note\":\"a\nb\",\"name\":\"password\",\"value\":\"hunter2\"}\n{\"x\":1}\n",
                "{\"note\":\"a\nb\",\"name\":\"password\",\"value\":\"[REDACTED]\"}\n{\"x\":1}\n",
            ),
            (
                "{\"note\":\"a\nb\", \"passwords\":[\"hunter2\"]}\n",
                "{\"note\":\"a\nb\",\"passwords\":\"[REDACTED]\"}\n",
            ),
            (
                "{\"password\":\"hun\nter2\"}\n{\"x\":1}\n",
                "{\"password\":\"[REDACTED]\"}\n{\"x\":1}\n",
            ),
            (
                "{\"password\":\"hun\r\nter2\"}\r\n{\"x\":1}\r\n",
                "{\"password\":\"[REDACTED]\"}\r\n{\"x\":1}\r\n",
            ),
            (
                "{\"password\":\"hun\x1eter2\"}\n{\"x\":1}\n",
                "{\"password\":\"[REDACTED]\"}\n{\"x\":1}\n",
            ),
            (
                "\x1e{\"note\":\"a\x1eb\",\"name\":\"pin\",\"value\":\"hunter2\"}\n\x1e{\"x\":1}\n",
                "\x1e{\"note\":\"a\x1eb\",\"name\":\"pin\",\"value\":\"[REDACTED]\"}\n\x1e{\"x\":1}\n",
            ),
            // Text after the document: the document is read as JSON to where it stops.
            (
                "{\"password\":\"hun\nter2\" x}\n{\"y\":1}\n",
                "{\"password\":\"[REDACTED]\" x}\n{\"y\":1}\n",
            ),
            // A string that never closes, a record after it: that record is read alone.
            (
                "{\"a\":\"x\n{\"name\":\"password\",\"value\":\"hunter2\"}\n",
                "{\"a\":\"x\n{\"name\":\"password\",\"value\":\"[REDACTED]\"}\n",
            ),
        ];
        for ct in [
            "application/x-ndjson",
            "application/jsonl",
            "application/json-seq",
        ] {
            for (body, want) in cases {
                assert_eq!(redact_as(ct, body), want, "{ct}: {body:?}");
            }
        }
        // The body ends inside the string, cut by the cap or not: the value is not kept.
        let body = "{\"a\":1}\n{\"b\":\"x\ny\",\"password\":\"hun\nter2\nmore";
        let out = redact(body);
        assert!(!out.contains("hun") && !out.contains("ter2"), "{out:?}");
        for at in 1..=body.len() {
            let out = redact_cut(body, at);
            assert!(
                !out.contains("hun") && !out.contains("ter2"),
                "{at}: {out:?}"
            );
        }
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
            // A raw line break in a string is part of it.
            (
                "{\"a\":1,\n\"password\":\"hunter2\n\"}\n",
                "{\"a\":1,\"password\":\"[REDACTED]\"}\n",
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
        // Raw breaks in strings: each string that never closes is read across its break once
        // or twice.
        for unit in [
            "{\"a\":\"\n",
            "{\"a\":\"x\n{\"b\":1}\n",
            "{\"a\":\"x\n\"}\n",
            "{\"a\":\"x\ny\" z\n",
            "{\"a\":\"\x1e",
            "[\"\n\",\n",
            "{\"a\":[\"\n",
            "\u{feff}{\"a\":1}\r\n",
            "\u{feff}{\"a\":\"\r\n",
        ] {
            cases.push(unit.repeat(LEN / unit.len()));
        }
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
