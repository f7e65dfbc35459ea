//! The passwords SQL's user statements give: `CREATE USER u IDENTIFIED BY '…'` (MySQL,
//! MariaDB, Oracle, also `IDENTIFIED WITH plugin BY '…'`), `ALTER ROLE r WITH PASSWORD '…'`
//! (PostgreSQL), and MySQL's `REPLACE '…'`, the current password.
//!
//! No `=` or `:` pairs such a keyword with its value, so the pair rules never see one. A quoted
//! string is taken for a password when the word before it is `PASSWORD` or `REPLACE`, or `BY`
//! (or `AS`, or `BY VALUES`: a hash) after `IDENTIFIED` (any case), and the statement it is in
//! (since the last `;` outside quotes) has named a `USER` or a `ROLE` or is a `GRANT` before
//! that word, so prose's `password "…"` without one stays; and in MySQL's `PASSWORD('…')`
//! anywhere.

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
        let Some((keyword, needs_user)) = keyword_before(bytes, quote) else {
            continue;
        };
        if statement.names_user_before(bytes, keyword) || !needs_user {
            let end = quoted_end(bytes, quote);
            spans.push((quote, end));
            statement.scanned = end;
            statement.in_quote = None;
            from = end;
        }
    }
    spans
}

/// Whether `text` holds a password of an SQL user statement: a look for callers that send
/// only some text to the pair rules (JSON strings, form values).
pub(super) fn holds_password(text: &str) -> bool {
    !password_values(text).is_empty()
}

/// Where the keyword that makes the quoted string at `quote` a password starts, and whether
/// it makes one only in a statement that names a user: `PASSWORD` or `REPLACE` before it, or
/// `IDENTIFIED` before `BY` (or `WITH plugin BY` or `AS`, or `BY VALUES`), a space or a
/// `/* … */` comment between them, the string perhaps after a prefix (`E'…'`); MySQL's function `PASSWORD('…')` in any
/// statement. A quote glued to the word before it closes a string (`'user password'`), and a
/// word glued to a quote before it is quoted (`"password" "x"`): neither is a keyword's.
fn keyword_before(bytes: &[u8], quote: usize) -> Option<(usize, bool)> {
    let quote = quote - string_prefix(bytes, quote);
    let before = *bytes[..quote].last()?;
    if before == b'(' {
        // MySQL's `PASSWORD('…')`.
        let (start, word) = word_before(bytes, quote - 1, 8)?;
        return word
            .eq_ignore_ascii_case(b"password")
            .then_some((start, false));
    }
    if space_before(bytes, quote) == quote {
        return None;
    }
    let (start, word) = word_before(bytes, quote, 10)?;
    if start > 0 && matches!(bytes[start - 1], b'\'' | b'"' | b'`' | b'\\') {
        return None;
    }
    if word.eq_ignore_ascii_case(b"password") || word.eq_ignore_ascii_case(b"replace") {
        return Some((start, true));
    }
    // Oracle's `IDENTIFIED BY VALUES '…'`, a hash.
    let (start, word) = if word.eq_ignore_ascii_case(b"values") {
        word_before(bytes, start, 2)?
    } else {
        (start, word)
    };
    // `AS`: the hash of `IDENTIFIED WITH mysql_native_password AS '*…'`.
    if !word.eq_ignore_ascii_case(b"by") && !word.eq_ignore_ascii_case(b"as") {
        return None;
    }
    let (start, word) = word_before(bytes, start, 64)?;
    if word.eq_ignore_ascii_case(b"identified") {
        return Some((start, true));
    }
    // `IDENTIFIED WITH caching_sha2_password BY '…'`: `word` is the plugin.
    let (start, with) = word_before(bytes, start, 4)?;
    let (start, identified) = word_before(bytes, start, 10)?;
    (with.eq_ignore_ascii_case(b"with") && identified.eq_ignore_ascii_case(b"identified"))
        .then_some((start, true))
}

/// How many bytes of a string's prefix stand before `quote`: PostgreSQL's `E'…'`, `U&'…'`,
/// the national `N'…'`, a hex `X'…'` or a bit string `B'…'` (any case), none when the letter
/// ends a longer word.
fn string_prefix(bytes: &[u8], quote: usize) -> usize {
    let before = |n: usize| quote.checked_sub(n).map(|at| bytes[at]);
    let starts_word = |n: usize| before(n).is_none_or(|b| !is_word_byte(b));
    match (before(2), before(1)) {
        (Some(b'U' | b'u'), Some(b'&')) if starts_word(3) => 2,
        (_, Some(b'E' | b'e' | b'N' | b'n' | b'X' | b'x' | b'B' | b'b')) if starts_word(2) => 1,
        _ => 0,
    }
}

/// The most comments looked back over between two words, and how far back the start of each
/// is looked for: each look stays short, so the scan stays linear.
const COMMENTS: usize = 4;
/// See [`COMMENTS`].
const COMMENT_LOOK: usize = 256;

/// Where the run of whitespace and `/* … */` comments that ends at `end` starts.
fn space_before(bytes: &[u8], end: usize) -> usize {
    let mut end = end;
    for _ in 0..=COMMENTS {
        end -= bytes[..end]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        if !bytes[..end].ends_with(b"*/") {
            break;
        }
        let from = end.saturating_sub(COMMENT_LOOK);
        match memchr::memmem::rfind(&bytes[from..end - 2], b"/*") {
            Some(at) => end = from + at,
            None => break,
        }
    }
    end
}

/// The word that ends before `end` (and the whitespace and comments before `end`), and where
/// it starts; `None` when there is none or it is longer than `longest`.
fn word_before(bytes: &[u8], end: usize, longest: usize) -> Option<(usize, &[u8])> {
    let end = space_before(bytes, end);
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

/// The statements read so far: up to where, whether the one read last names a user, and the
/// quote of the string it is inside of there, if any.
#[derive(Debug, Default)]
struct Statement {
    scanned: usize,
    names_user: bool,
    in_quote: Option<u8>,
}

impl Statement {
    /// Reads the text on to `to`, at a word's start, and says whether the statement there has
    /// named a `USER` or a `ROLE`, or is a `GRANT` (MySQL 5's `GRANT … IDENTIFIED BY`), since
    /// its `;`. A `;` inside quotes ends none (`CREATE USER 'a;b' …`); words there still count,
    /// so an apostrophe of prose that throws the quotes out of step keeps a statement going
    /// rather than ending it.
    fn names_user_before(&mut self, bytes: &[u8], to: usize) -> bool {
        let mut i = self.scanned;
        while i < to {
            if is_word_byte(bytes[i]) {
                let start = i;
                while i < to && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let word = &bytes[start..i];
                if word.eq_ignore_ascii_case(b"user")
                    || word.eq_ignore_ascii_case(b"role")
                    || word.eq_ignore_ascii_case(b"grant")
                {
                    self.names_user = true;
                }
                continue;
            }
            match (bytes[i], self.in_quote) {
                (b';', None) => self.names_user = false,
                (q @ (b'\'' | b'"'), None) => self.in_quote = Some(q),
                (b'\\', Some(_)) => i += 1,
                (q, Some(open)) if q == open => self.in_quote = None,
                _ => {}
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

    /// Found by review: a `;` inside a quoted string ended the statement; MySQL 5's `GRANT …
    /// IDENTIFIED BY`, a string with a prefix (PostgreSQL's `E'…'`, `U&'…'`, `N'…'`, a hex
    /// `X'…'`; the prefix stays), MySQL's `PASSWORD('…')`, and the hashes of `IDENTIFIED WITH plugin AS` and
    /// Oracle's `IDENTIFIED BY VALUES` (each enough to log in with) were kept.
    #[test]
    fn passwords_after_quoted_semicolons_grants_prefixes_and_hashes() {
        let cases = [
            (
                "CREATE USER 'u;x' IDENTIFIED BY 'hunter2';",
                "CREATE USER 'u;x' IDENTIFIED BY [REDACTED];",
            ),
            (
                "CREATE USER u COMMENT 'a;b' IDENTIFIED BY 'hunter2'; SELECT 'ann';",
                "CREATE USER u COMMENT 'a;b' IDENTIFIED BY [REDACTED]; SELECT 'ann';",
            ),
            (
                "GRANT ALL ON *.* TO 'u'@'%' IDENTIFIED BY 'hunter2';",
                "GRANT ALL ON *.* TO 'u'@'%' IDENTIFIED BY [REDACTED];",
            ),
            (
                "ALTER ROLE x WITH PASSWORD E'hun\\'ter2'; SELECT 'ann';",
                "ALTER ROLE x WITH PASSWORD E[REDACTED]; SELECT 'ann';",
            ),
            (
                "create user u password U&'hunter2' n'x'",
                "create user u password U&[REDACTED] n'x'",
            ),
            (
                "CREATE USER u IDENTIFIED BY X'68756e74657232';",
                "CREATE USER u IDENTIFIED BY X[REDACTED];",
            ),
            (
                "UPDATE mysql.user SET authentication_string = PASSWORD ('hunter2') WHERE User = 'root';",
                "UPDATE mysql.user SET authentication_string = PASSWORD ([REDACTED]) WHERE User = 'root';",
            ),
            (
                "SET PASSWORD FOR 'u'@'%' = PASSWORD('hunter2');",
                "SET PASSWORD FOR 'u'@'%' = PASSWORD([REDACTED]);",
            ),
            (
                "CREATE USER u IDENTIFIED WITH mysql_native_password AS '*6BB4837EB743';",
                "CREATE USER u IDENTIFIED WITH mysql_native_password AS [REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED BY VALUES 'S:6BB48';",
                "CREATE USER u IDENTIFIED BY VALUES [REDACTED];",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sql(input), want, "{input}");
        }
        // A statement ends at a `;` outside quotes still; a word glued to a quote is no prefix.
        for plain in [
            "CREATE USER 'u'; SELECT password 'x'",
            "GRANT SELECT ON t TO u; SELECT 'ann'",
            "SELECT password FROM users WHERE name = 'ann'",
            "CREATE USER u WITH PASSWORD NULL; SELECT NAME'x' AS 'y'",
            "ALTER USER u PASSWORD EXPIRE; SELECT REPLACE(name, 'a', 'b')",
        ] {
            assert_eq!(sql(plain), plain);
        }
    }

    /// Found by review: a user statement inside a JSON string (a migration sent as JSON, an
    /// NDJSON log line) or a form's value kept its password when the string held no `=` or `:`.
    #[test]
    fn passwords_of_statements_in_json_strings_and_form_values() {
        let redact = |ct: &str, body: &str| {
            let input = BodyInput::new(Some(ct), body.as_bytes());
            Redactor::default().redact_body(&input).unwrap_or_default()
        };
        let cases = [
            (
                "application/json",
                r#"{"sql":"CREATE USER u IDENTIFIED BY 'hunter2'","n":"it's"}"#,
                r#"{"sql":"CREATE USER u IDENTIFIED BY [REDACTED]","n":"it's"}"#,
            ),
            (
                "application/x-ndjson",
                "{\"q\":\"ALTER ROLE x WITH PASSWORD 'hunter2'\\nGO\"}\n",
                "{\"q\":\"ALTER ROLE x WITH PASSWORD [REDACTED]\\nGO\"}\n",
            ),
            (
                "application/x-www-form-urlencoded",
                "q=CREATE+USER+u+IDENTIFIED+BY+%27hunter2%27&n=1",
                "q=CREATE+USER+u+IDENTIFIED+BY+[REDACTED]&n=1",
            ),
        ];
        for (ct, body, want) in cases {
            assert_eq!(redact(ct, body), want, "{body}");
        }
    }

    /// Found by review: a `/* … */` comment between a keyword and its string, or between
    /// `IDENTIFIED` and `BY`, hid the password.
    #[test]
    fn passwords_after_comments() {
        let cases = [
            (
                "CREATE USER u IDENTIFIED BY /* new */ 'hunter2';",
                "CREATE USER u IDENTIFIED BY /* new */ [REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED/**/BY/*x*/ /*y*/'hunter2';",
                "CREATE USER u IDENTIFIED/**/BY/*x*/ /*y*/[REDACTED];",
            ),
            (
                "ALTER ROLE x PASSWORD/**/'hunter2';",
                "ALTER ROLE x PASSWORD/**/[REDACTED];",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sql(input), want, "{input}");
        }
        for plain in [
            "CREATE USER u; SELECT 'a' /* by */ 'b'",
            "ALTER USER u */ 'x'",
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
            "password('",
            "user x'a;b' ",
            "grant by values e'",
            "identified with p as u&'",
            "\\';",
            "/*'*/",
            "by /**/ '",
            "identified/*x*//*y*/ by '*/",
        ] {
            let text = unit.repeat((256 << 10) / unit.len());
            let started = std::time::Instant::now();
            let _ = super::password_values(&text);
            let took = started.elapsed();
            assert!(took.as_secs() < 2, "{unit:?}: {took:?}");
        }
    }
}
