//! The passwords SQL's user statements give: `CREATE USER u IDENTIFIED BY '…'` (MySQL,
//! MariaDB, Oracle, also `IDENTIFIED WITH plugin BY '…'`), `ALTER ROLE r WITH PASSWORD '…'`
//! (PostgreSQL), and MySQL's `REPLACE '…'`, the current password.
//!
//! No `=` or `:` pairs such a keyword with its value, so the pair rules never see one. A quoted
//! string is taken for a password when the word before it is `PASSWORD` or `REPLACE`, or `BY`
//! after `IDENTIFIED` (any case), and the statement it is in (since the last `;`) has named a
//! `USER` or a `ROLE` before that word, so prose's `password "…"` without one stays.

use memchr::{memchr2, memchr2_iter};

/// The spans of the quoted passwords of SQL user statements in `text`, quotes included, in
/// order, apart.
///
/// Each quote is looked at once, the words before it looked back at only as far as the quote
/// before it, and the statements are read by one cursor that only moves forward, so the scan
/// is linear.
pub(super) fn password_values(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut statement = Statement::default();
    // Where the last password found ends: the quotes before it are inside it.
    let mut from = 0;
    for quote in memchr2_iter(b'\'', b'"', bytes) {
        if quote < from {
            continue;
        }
        let Some(keyword) = keyword_before(bytes, quote) else {
            continue;
        };
        if statement.names_user_before(bytes, keyword) {
            let end = quoted_end(bytes, quote);
            spans.push((quote, end));
            statement.scanned = end;
            from = end;
        }
    }
    spans
}

/// Where the keyword that makes the quoted string at `quote` a password starts: `PASSWORD` or
/// `REPLACE` before it, or `IDENTIFIED` before `BY` (or `WITH plugin BY`), a space between
/// them. A quote glued to the word before it closes a string (`'user password'`), and a word
/// glued to a quote before it is quoted (`"password" "x"`): neither is a keyword's.
fn keyword_before(bytes: &[u8], quote: usize) -> Option<usize> {
    if !bytes[..quote].last()?.is_ascii_whitespace() {
        return None;
    }
    let (start, word) = word_before(bytes, quote, 10)?;
    if start > 0 && matches!(bytes[start - 1], b'\'' | b'"' | b'`' | b'\\') {
        return None;
    }
    if word.eq_ignore_ascii_case(b"password") || word.eq_ignore_ascii_case(b"replace") {
        return Some(start);
    }
    if !word.eq_ignore_ascii_case(b"by") {
        return None;
    }
    let (start, word) = word_before(bytes, start, 64)?;
    if word.eq_ignore_ascii_case(b"identified") {
        return Some(start);
    }
    // `IDENTIFIED WITH caching_sha2_password BY '…'`: `word` is the plugin.
    let (start, with) = word_before(bytes, start, 4)?;
    let (start, identified) = word_before(bytes, start, 10)?;
    (with.eq_ignore_ascii_case(b"with") && identified.eq_ignore_ascii_case(b"identified"))
        .then_some(start)
}

/// The word that ends before `end` (and the whitespace before `end`), and where it starts;
/// `None` when there is none or it is longer than `longest`.
fn word_before(bytes: &[u8], end: usize, longest: usize) -> Option<(usize, &[u8])> {
    let end = end
        - bytes[..end]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let len = bytes[..end]
        .iter()
        .rev()
        .take(longest + 1)
        .take_while(|&&b| is_word_byte(b))
        .count();
    (1..=longest)
        .contains(&len)
        .then(|| (end - len, &bytes[end - len..end]))
}

/// Whether `b` may be part of an SQL word.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Where the string quoted at `quote` ends, after its closing quote: a quote written twice
/// (`'it''s'`) or after a backslash (MySQL's `'it\'s'`) does not close it; one never closed
/// runs to the end of the text.
fn quoted_end(bytes: &[u8], quote: usize) -> usize {
    let q = bytes[quote];
    let mut i = quote + 1;
    while let Some(at) = bytes.get(i..).and_then(|rest| memchr2(q, b'\\', rest)) {
        let at = i + at;
        if bytes[at] == q && bytes.get(at + 1) != Some(&q) {
            return at + 1;
        }
        i = at + 2;
    }
    bytes.len()
}

/// The statements read so far: up to where, and whether the one read last names a user.
#[derive(Debug, Default)]
struct Statement {
    scanned: usize,
    names_user: bool,
}

impl Statement {
    /// Reads the text on to `to`, at a word's start, and says whether the statement there has
    /// named a `USER` or a `ROLE` since its `;`.
    fn names_user_before(&mut self, bytes: &[u8], to: usize) -> bool {
        let mut i = self.scanned;
        while i < to {
            if is_word_byte(bytes[i]) {
                let start = i;
                while i < to && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let word = &bytes[start..i];
                if word.eq_ignore_ascii_case(b"user") || word.eq_ignore_ascii_case(b"role") {
                    self.names_user = true;
                }
                continue;
            }
            if bytes[i] == b';' {
                self.names_user = false;
            }
            i += 1;
        }
        self.scanned = self.scanned.max(to);
        self.names_user
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};

    fn sql(body: &str) -> String {
        let input = BodyInput::new(Some("application/sql"), body.as_bytes());
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    /// Found by review: a user statement's password, given after a keyword and no `=`, was
    /// stored as it came in SQL bodies, text bodies and errors.
    #[test]
    fn passwords_of_user_statements() {
        let cases = [
            (
                "CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2';",
                "CREATE USER 'app'@'%' IDENTIFIED BY [REDACTED];",
            ),
            (
                "alter user app identified with caching_sha2_password by \"a'b\" replace 'old1';",
                "alter user app identified with caching_sha2_password by [REDACTED] replace [REDACTED];",
            ),
            (
                "ALTER USER app WITH PASSWORD 'it''s x';\nSELECT 'a';",
                "ALTER USER app WITH PASSWORD [REDACTED];\nSELECT 'a';",
            ),
            (
                "CREATE ROLE app LOGIN\n  ENCRYPTED PASSWORD\n  'md5abc' VALID UNTIL 'infinity';",
                "CREATE ROLE app LOGIN\n  ENCRYPTED PASSWORD\n  [REDACTED] VALID UNTIL 'infinity';",
            ),
            (
                "GRANT ALL ON db.* TO u; CREATE USER u IDENTIFIED BY 'a\\'b' ;",
                "GRANT ALL ON db.* TO u; CREATE USER u IDENTIFIED BY [REDACTED] ;",
            ),
            // Never closed: the rest goes.
            (
                "CREATE USER u IDENTIFIED BY 'hunter2\nmore",
                "CREATE USER u IDENTIFIED BY [REDACTED]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sql(input), want, "{input}");
            let text = BodyInput::new(Some("text/plain"), input.as_bytes());
            assert_eq!(
                Redactor::default().redact_body(&text).as_deref(),
                Some(want)
            );
        }
        assert_eq!(
            Redactor::default().redact_error("ERROR 1396: ALTER USER x IDENTIFIED BY 'hunter2'"),
            "ERROR 1396: ALTER USER x IDENTIFIED BY [REDACTED]"
        );
        // No user or role named in the statement, or the keyword is another word's part.
        for plain in [
            "SELECT password 'x' FROM t; UPDATE t SET note = 'by';",
            "CREATE USER u; SELECT REPLACE 'a'",
            "ALTER USER u ACCOUNT LOCK; the password \"hunter\" hint",
            "CREATE USER u WITH DB_PASSWORD 'x' STANDBY 'y'",
            "the user said \"hi\" by 'x'",
            "SELECT 'user password' FROM t WHERE a = 'b'",
            "user: {\"password\" \"x\", \"by\" 'y'} BY'z'",
        ] {
            assert_eq!(sql(plain), plain);
        }
    }

    /// Hostile statements stay linear: each quote is looked at once, and the words before it
    /// only as far as the quote before it.
    #[test]
    fn hostile_statements_stay_linear() {
        for unit in [
            "USER ",
            "user password '",
            "role BY 'a' ",
            "identified by ",
            "identified with x by 'a' ",
            " '",
            "'",
            "\\",
            "user ;",
            "a",
        ] {
            let text = unit.repeat((256 << 10) / unit.len());
            let started = std::time::Instant::now();
            let _ = super::password_values(&text);
            let took = started.elapsed();
            assert!(took.as_secs() < 2, "{unit:?}: {took:?}");
        }
    }
}
