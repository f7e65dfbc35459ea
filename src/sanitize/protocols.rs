//! The credentials a protocol's `AUTH` command carries, as a transcript or a log prints it:
//! Redis' `AUTH hunter2` and `AUTH ann hunter2` (typed after redis-cli's prompt, printed by
//! `MONITOR` as `"AUTH" "hunter2"`, or in `HELLO 3 AUTH ann hunter2`), and SMTP's SASL
//! `AUTH PLAIN <base64>` and `AUTH LOGIN`, whose base64 lines follow it.
//!
//! `AUTH` is read in capitals, as both protocols' clients send it; in small letters only
//! after redis-cli's prompt (`127.0.0.1:6379> auth hunter2`) or quoted as `MONITOR` quotes
//! what was typed, so that prose's "the auth flow" stays. A command that takes a password
//! takes one or two words, so `AUTH` followed by more words on its line ("AUTH failed for
//! user ann") is no command, and neither is one followed by a word that tells how it went
//! (`AUTH failed`, `AUTH failed: timeout`; see [`OUTCOMES`]).

use memchr::memmem;

/// SASL mechanisms: after one, the next word is its initial response (a credential in base64),
/// not a Redis user's name.
const MECHANISMS: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "XOAUTH2",
    "XOAUTH",
    "OAUTHBEARER",
    "CRAM-MD5",
    "DIGEST-MD5",
    "NTLM",
    "GSSAPI",
    "EXTERNAL",
    "ANONYMOUS",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
];

/// The mechanisms whose credentials follow on the client's next lines when the command gives
/// none: `AUTH LOGIN` (the user's name, then the password) and `AUTH PLAIN` (both at once).
const LINE_MECHANISMS: &[&str] = &["PLAIN", "LOGIN", "XOAUTH2"];

/// Words a log or a server's reply puts after `AUTH` for how it went (`AUTH failed`, `SMTP
/// AUTH required.`, `AUTH OK`), any case, a `.`, `!`, `:` or `,` after them: a command's
/// password would be one of them only if it were no secret.
const OUTCOMES: &[&str] = &[
    "ok",
    "okay",
    "failed",
    "failure",
    "fail",
    "error",
    "success",
    "successful",
    "succeeded",
    "required",
    "denied",
    "rejected",
    "refused",
    "accepted",
    "disabled",
    "enabled",
    "expired",
    "invalid",
    "timeout",
    "pending",
    "complete",
    "completed",
    "done",
    "unavailable",
    "unsupported",
    "supported",
    "missing",
];

/// `None` when `word` is none of [`OUTCOMES`] (a `.`, `!`, `:` or `,` after it aside), else
/// whether such a mark follows it (`failed:`): a user's name would have none.
fn outcome(word: &str) -> Option<bool> {
    let bare = word.trim_end_matches(['.', '!', ':', ',']);
    OUTCOMES
        .iter()
        .any(|outcome| outcome.eq_ignore_ascii_case(bare))
        .then_some(bare.len() < word.len())
}

/// How many lines after `AUTH LOGIN` or `AUTH PLAIN` are read for its base64 lines: the
/// server's two challenges and the client's two answers.
const FOLLOWING_LINES: usize = 4;

/// The spans of the credentials `AUTH` commands carry in `text`, in order; they may touch.
pub(super) fn auth_values(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    // Two looks, one a spelling, each a few SIMD passes: most texts hold neither.
    for word in [b"AUTH".as_slice(), b"auth".as_slice()] {
        for at in memmem::find_iter(bytes, word) {
            read_auth(text, at, word[0] == b'a', &mut spans);
        }
    }
    spans.sort_unstable();
    spans
}

/// How far from an `AUTH` its line is looked at: back for a prompt or `HELLO`, on for its
/// words. A hit inside a long line (`oauth`, `author`) is told at its first bytes anyway; this
/// bounds the rest, so that many hits on one line stay linear.
const LONGEST_LOOK: usize = 1 << 10;

/// Reads the `AUTH` (or `auth`, `small`) at `at`, pushing the spans of its credentials.
fn read_auth(text: &str, at: usize, small: bool, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let after = at + 4;
    let (Some(&next), previous) = (bytes.get(after), at.checked_sub(1).map(|i| bytes[i])) else {
        return;
    };
    let quoted = previous == Some(b'"') && next == b'"';
    let opener = match previous {
        _ if quoted => None,
        None | Some(b' ' | b'\t' | b'>' | b'\n' | b'\r') => None,
        Some(quote @ (b'\'' | b'"')) => Some(quote),
        Some(_) => return,
    };
    if !quoted && !matches!(next, b' ' | b'\t') {
        return;
    }
    let window = at.saturating_sub(LONGEST_LOOK);
    let line_start =
        memchr::memrchr2(b'\n', b'\r', &bytes[window..at]).map_or(window, |i| window + i + 1);
    let limit = bytes.len().min(after + LONGEST_LOOK);
    let line_end = match memchr::memchr2(b'\n', b'\r', &bytes[after..limit]) {
        Some(i) => after + i,
        None if limit == bytes.len() => limit,
        // A line that long after `AUTH` holds more than a command's words.
        None => return,
    };
    // `MONITOR`'s quoted words: `"AUTH" "hunter2"`, `"auth" "ann" "hunter2"`.
    if quoted {
        let args = quoted_args(bytes, after + 1, line_end);
        if let Some(&(start, end)) = args.last().filter(|_| matches!(args.len(), 1 | 2)) {
            spans.push((start, end));
        }
        return;
    }
    let before = &text[line_start..at];
    if small && !after_redis_prompt(before) {
        return;
    }
    let hello = before
        .split_ascii_whitespace()
        .next_back()
        .is_some_and(|word| word.eq_ignore_ascii_case("HELLO"))
        || before
            .split_ascii_whitespace()
            .rev()
            .nth(1)
            .is_some_and(|word| word.eq_ignore_ascii_case("HELLO"));
    let args = plain_args(bytes, after, line_end, opener);
    if hello {
        // `HELLO 3 AUTH ann hunter2 SETNAME x`: the user and the password, whatever follows.
        if let Some(&(start, end)) = args.words.get(1) {
            spans.push((start, end));
        }
        return;
    }
    if !args.ends_line {
        return;
    }
    let mechanism = args
        .words
        .first()
        .map(|&(start, end)| &text[start..end])
        .filter(|word| MECHANISMS.iter().any(|m| m.eq_ignore_ascii_case(word)));
    match (args.words.as_slice(), mechanism) {
        // An initial response; `=` is an empty one.
        ([_, (start, end)], Some(mechanism)) => {
            if &text[*start..*end] != "=" {
                spans.push((*start, *end));
            }
            // `AUTH LOGIN <user>`: the password follows.
            if mechanism.eq_ignore_ascii_case("LOGIN") {
                following_lines(text, line_end, spans);
            }
        }
        ([_], Some(mechanism))
            if LINE_MECHANISMS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(mechanism)) =>
        {
            following_lines(text, line_end, spans);
        }
        // `AUTH failed` and `AUTH failed: timeout` tell how it went; `AUTH ok hunter2` and
        // `AUTH default hunter2` name a user.
        ([(start, end)], None) if outcome(&text[*start..*end]).is_some() => {}
        ([(start, end), _], None) if outcome(&text[*start..*end]) == Some(true) => {}
        ([(start, end)] | [_, (start, end)], None) => spans.push((*start, *end)),
        _ => {}
    }
}

/// Whether the text before `auth` on its line ends with redis-cli's prompt
/// (`127.0.0.1:6379> `, `localhost:6379[2]> `, `redis> `).
fn after_redis_prompt(before: &str) -> bool {
    let Some(prompt) = before
        .trim_end_matches([' ', '\t'])
        .split_ascii_whitespace()
        .last()
    else {
        return false;
    };
    let Some(prompt) = prompt.strip_suffix('>') else {
        return false;
    };
    let prompt = prompt.strip_suffix(']').map_or(prompt, |db| {
        db.rsplit_once('[').map_or(db, |(prompt, _)| prompt)
    });
    prompt.eq_ignore_ascii_case("redis")
        || prompt.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The words after an `AUTH`, up to its line's end.
struct Args {
    /// The first three words' spans (a quoted one's inside its quotes).
    words: Vec<(usize, usize)>,
    /// Nothing but the words follows to the line's end: blanks, a printed `\r\n` and the
    /// quote `opener` that opened before `AUTH` (Python's `send: 'AUTH PLAIN …\r\n'`).
    ends_line: bool,
}

/// Reads the words from `at` to `line_end`: split at blanks, a quoted one (`AUTH "a b"`, as
/// redis-cli reads it) to its closing quote; a printed `\r\n` and the `opener` quote end the
/// last.
fn plain_args(bytes: &[u8], at: usize, line_end: usize, opener: Option<u8>) -> Args {
    let mut words = Vec::new();
    let mut i = at;
    loop {
        while i < line_end && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= line_end {
            return Args {
                words,
                ends_line: true,
            };
        }
        let rest = &bytes[i..line_end];
        if is_printed_line_end(rest, opener) {
            return Args {
                words,
                ends_line: true,
            };
        }
        if words.len() == 3 {
            return Args {
                words,
                ends_line: false,
            };
        }
        let start = i;
        if let Some(&quote @ (b'"' | b'\'')) = bytes.get(i)
            && Some(quote) != opener
            && let Some(len) = memchr::memchr(quote, &bytes[i + 1..line_end])
        {
            words.push((i + 1, i + 1 + len));
            i += len + 2;
            continue;
        }
        while i < line_end
            && !matches!(bytes[i], b' ' | b'\t')
            && !is_printed_line_end(&bytes[i..line_end], opener)
        {
            i += 1;
        }
        words.push((start, i));
    }
}

/// Whether `rest` is nothing but what a print puts after a command: a `\r\n` or `\n` written
/// as escapes, the quote that opened before it, then blanks.
fn is_printed_line_end(rest: &[u8], opener: Option<u8>) -> bool {
    let mut rest = rest;
    for escape in [b"\\r".as_slice(), b"\\n".as_slice()] {
        rest = rest.strip_prefix(escape).unwrap_or(rest);
    }
    if let Some(quote) = opener {
        rest = rest.strip_prefix(&[quote]).unwrap_or(rest);
    }
    rest.iter().all(|b| matches!(b, b' ' | b'\t'))
}

/// `MONITOR`'s quoted words from `at` to `line_end`, each inside its quotes (`\"` escaped
/// within); none when something else follows them.
fn quoted_args(bytes: &[u8], at: usize, line_end: usize) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut i = at;
    loop {
        while i < line_end && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        if i >= line_end {
            return words;
        }
        if bytes[i] != b'"' || words.len() == 3 {
            return Vec::new();
        }
        let start = i + 1;
        let mut end = start;
        while end < line_end && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        if end >= line_end {
            // Never closed: to the line's end.
            words.push((start, line_end));
            return words;
        }
        words.push((start, end));
        i = end + 1;
    }
}

/// The base64 credentials on the lines after `AUTH LOGIN` or `AUTH PLAIN` (which `from`, its
/// line's end, ends): each line's last word, when it is base64 (`YW5u`, `aHVudGVyMg==`; a
/// server's challenge, `334 VXNlcm5hbWU6`, goes with them), up to [`FOLLOWING_LINES`] lines;
/// a bare `334` goes on, any other line ends the look (`235 2.7.0 Accepted`).
fn following_lines(text: &str, from: usize, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut at = from;
    for _ in 0..FOLLOWING_LINES {
        at += match &bytes[at..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n' | b'\r', ..] => 1,
            _ => return,
        };
        let end = memchr::memchr2(b'\n', b'\r', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let line = &bytes[at..end];
        // The last word, without a print's quotes and `\r\n` (`send: 'YW5u\r\n'`).
        let mut word_end = line.len();
        while word_end > 0 && matches!(line[word_end - 1], b' ' | b'\t') {
            word_end -= 1;
        }
        let mut trimmed = &line[..word_end];
        trimmed = trimmed.strip_suffix(b"'").unwrap_or(trimmed);
        for escape in [b"\\n".as_slice(), b"\\r".as_slice()] {
            trimmed = trimmed.strip_suffix(escape).unwrap_or(trimmed);
        }
        while let [rest @ .., b' ' | b'\t'] = trimmed {
            trimmed = rest;
        }
        let word_start = trimmed
            .iter()
            .rposition(|b| matches!(b, b' ' | b'\t' | b'\'' | b'"'))
            .map_or(0, |i| i + 1);
        let word = &trimmed[word_start..];
        if is_base64_credential(word) {
            spans.push((at + word_start, at + trimmed.len()));
        } else if word != b"334" {
            return;
        }
        at = end;
    }
}

/// Whether `word` is base64 as a credential is written: 4 characters or more of its alphabet,
/// up to two `=` at its end, holding a digit, `+`, `/`, `=` or a capital after a small letter
/// (so a reply's words, `Accepted`, `successful`, are none).
fn is_base64_credential(word: &[u8]) -> bool {
    let body = word
        .strip_suffix(b"==")
        .or_else(|| word.strip_suffix(b"="))
        .unwrap_or(word);
    word.len() >= 4
        && !body.is_empty()
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
        && (body.len() < word.len()
            || body
                .iter()
                .any(|b| b.is_ascii_digit() || matches!(b, b'+' | b'/'))
            || body
                .windows(2)
                .any(|pair| pair[0].is_ascii_lowercase() && pair[1].is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};

    use super::super::redact_plain_text as text;

    /// Found by a probe: Redis' `AUTH` and SMTP's `AUTH PLAIN` and `AUTH LOGIN`, in a
    /// transcript or a client's debug print, kept their credentials.
    #[test]
    fn an_auth_commands_credentials() {
        let cases = [
            ("AUTH hunter2", "AUTH [REDACTED]"),
            ("AUTH default hunter2\n", "AUTH default [REDACTED]\n"),
            (
                "127.0.0.1:6379> auth hunter2\nOK\n127.0.0.1:6379> get k",
                "127.0.0.1:6379> auth [REDACTED]\nOK\n127.0.0.1:6379> get k",
            ),
            (
                "localhost:6379[2]> AUTH ann \"a b\"",
                "localhost:6379[2]> AUTH ann \"[REDACTED]\"",
            ),
            (
                "1700000000.1 [0 127.0.0.1:5000] \"auth\" \"ann\" \"hunter2\"",
                "1700000000.1 [0 127.0.0.1:5000] \"auth\" \"ann\" \"[REDACTED]\"",
            ),
            (
                "HELLO 3 AUTH default hunter2 SETNAME app",
                "HELLO 3 AUTH default [REDACTED] SETNAME app",
            ),
            (
                "C: AUTH PLAIN AGFubgBodW50ZXIy\nS: 235 2.7.0 Accepted",
                "C: AUTH PLAIN [REDACTED]\nS: 235 2.7.0 Accepted",
            ),
            (
                "send: 'AUTH PLAIN AGFubgBodW50ZXIy\\r\\n'\nreply: b'235 2.7.0 Accepted\\r\\n'",
                "send: 'AUTH PLAIN [REDACTED]\\r\\n'\nreply: b'235 2.7.0 Accepted\\r\\n'",
            ),
            (
                "C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: YW5u\nS: 334 UGFzc3dvcmQ6\nC: aHVudGVyMg==\nS: 235 2.7.0 OK",
                "C: AUTH LOGIN\nS: 334 [REDACTED]\nC: [REDACTED]\nS: 334 [REDACTED]\nC: [REDACTED]\nS: 235 2.7.0 OK",
            ),
            (
                " -> AUTH PLAIN\r\n<-  334\r\n -> AGFubgBodW50ZXIy\r\n<-  235 OK",
                " -> AUTH PLAIN\r\n<-  334\r\n -> [REDACTED]\r\n<-  235 OK",
            ),
            (
                "C: AUTH XOAUTH2 dXNlcj1hbm4BYXV0aD1CZWFyZXIgeWEyOS4BAQ==",
                "C: AUTH XOAUTH2 [REDACTED]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        assert_eq!(
            r.redact_error("redis: AUTH hunter2"),
            "redis: AUTH [REDACTED]"
        );
        let json = BodyInput::new(
            Some("application/json"),
            br#"{"log":"127.0.0.1:6379> AUTH hunter2"}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(r#"{"log":"127.0.0.1:6379> AUTH [REDACTED]"}"#)
        );
    }

    /// Prose and other words that hold `auth` or `AUTH` stay: a small `auth` without
    /// redis-cli's prompt, more words than a command takes, a mechanism alone, `OAUTH`.
    #[test]
    fn prose_about_auth_stays() {
        for input in [
            "the auth flow",
            "auth hunter2",
            "see the auth docs: auth failed",
            "AUTH failed for user ann",
            "[AUTH] user ann logged in",
            "OAUTH token refreshed",
            "C: AUTH CRAM-MD5\nS: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+",
            "AUTH",
            "C: AUTH PLAIN =",
            "C: AUTH LOGIN\nS: 535 5.7.8 Authentication failed\nC: QUIT",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }

    /// Found on 2026-12-07: a log's `AUTH` followed by the one word that tells how it went
    /// lost that word, taken for a password.
    #[test]
    fn an_auth_outcome_stays() {
        for input in [
            "AUTH failed",
            "redis: AUTH failed.",
            "SMTP AUTH required\nnext",
            "AUTH OK",
            "AUTH failed: timeout",
            "S: 535 5.7.8 AUTH denied!",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
        // A password that is no such word, and a user named one, still go.
        for (input, want) in [
            ("AUTH hunter2", "AUTH [REDACTED]"),
            ("AUTH failedpass", "AUTH [REDACTED]"),
            ("AUTH ok hunter2", "AUTH ok [REDACTED]"),
            ("AUTH failed hunter2", "AUTH failed [REDACTED]"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
    }
}
