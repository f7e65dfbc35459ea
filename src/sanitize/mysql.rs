//! The password MySQL's and MariaDB's clients take as a short option, `-phunter2`.
//!
//! `-p` is a password only to these clients: ssh reads it as a port, curl as a proxy, docker
//! as a port to publish, mkdir as "make parents". So it is read as one only after one of
//! [`CLIENTS`], on the same line (or one continued with `\`) and in the same command (up to
//! `|`, `;` or `&`). Glued (`-phunter2`, `-p'a b'`) the rest of the word, or the quoted string,
//! is the password. With a space (`-p hunter2`) the client would prompt and take the next word
//! for a database, but people write it so for a password too, so the next word goes as well,
//! unless it is an option.

use memchr::memmem;

/// The clients that read `-p` as a password, as the last part of a path and without `.exe`:
/// written so, in small letters, or in any case with `.exe` (`MYSQL.EXE`, as Windows' shells
/// and installers write it). Without `.exe` a name in capitals is prose's ("MySQL -p is
/// documented").
pub(super) const CLIENTS: &[&str] = &[
    "mysql",
    "mysqldump",
    "mysqladmin",
    "mysqlcheck",
    "mysqlimport",
    "mysqlshow",
    "mysqlpump",
    "mariadb",
    "mariadb-dump",
    "mariadb-admin",
    "mariadb-check",
    "mariadb-import",
    "mariadb-show",
];

/// Whether `text` may give a MySQL client a password: it holds `-p` and a client's name, in
/// small letters or, with `.exe`, in any case. A look for callers that send only some text
/// to the pair rules.
pub(super) fn may_hold_password(text: &str) -> bool {
    let bytes = text.as_bytes();
    let holds_any_case = |word: &[u8]| {
        bytes
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word))
    };
    memmem::find(bytes, b"-p").is_some()
        && (memmem::find(bytes, b"mysql").is_some()
            || memmem::find(bytes, b"mariadb").is_some()
            || holds_any_case(b".exe") && (holds_any_case(b"mysql") || holds_any_case(b"mariadb")))
}

/// The spans of the passwords given to a MySQL client's `-p` in `text`, in order, apart.
///
/// Each word is read once, and a quoted password is skipped once it is found, so the scan is
/// linear.
pub(super) fn password_values(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    if !may_hold_password(text) {
        return spans;
    }
    let bytes = text.as_bytes();
    let mut in_client = false;
    // The previous word was a bare `-p`: this one may be its password.
    let mut value_next = false;
    // The previous word was `\`: a line break continues the command.
    let mut continued = false;
    let mut words = Words::new(bytes);
    while let Some((start, end, after_break)) = words.next() {
        if after_break {
            in_client &= continued;
            value_next &= continued;
        }
        let word = &text[start..end];
        continued = word == "\\";
        // A bare `-p` before a continued line takes the next line's first word.
        if continued && value_next {
            continue;
        }
        if std::mem::take(&mut value_next) && !word.starts_with('-') && !is_separator(word) {
            let end = value_end(bytes, start, end);
            spans.push((start, end));
            words.resume_at(end);
            continue;
        }
        let unquoted = word.trim_start_matches(['"', '\'', '`', '(']);
        if in_client && let Some(rest) = unquoted.strip_prefix("-p") {
            if rest
                .bytes()
                .all(|b| matches!(b, b'"' | b'\'' | b'`' | b')'))
            {
                value_next = true;
            } else {
                let at = end - rest.len();
                let end = value_end(bytes, at, end);
                spans.push((at, end));
                words.resume_at(end);
            }
            continue;
        }
        // A separator glued to the client's name (`x|mysql`, `$(mysql`) ends one command
        // and starts the client's.
        if word.contains([';', '|', '&']) {
            in_client = false;
        }
        let last = word
            .rsplit([';', '|', '&', '(', '`'])
            .next()
            .unwrap_or(word)
            .trim_start_matches(['"', '\'']);
        if is_client(last) {
            in_client = true;
        }
    }
    spans
}

/// The words of a command line, split at ASCII whitespace: each word's start and end, and
/// whether a line break came before it (since the word before). Every byte the split is made
/// at is skipped between words, so no word is empty and the scan always moves on (a form
/// feed, skipped by none of two hand-written loops, once made an empty word forever).
pub(super) struct Words<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Words<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// Goes on from `at`: past a quoted value that runs beyond its word, or inside it.
    pub(super) fn resume_at(&mut self, at: usize) {
        self.at = at;
    }
}

impl Iterator for Words<'_> {
    type Item = (usize, usize, bool);

    fn next(&mut self) -> Option<Self::Item> {
        let mut after_break = false;
        while let Some(&b) = self.bytes.get(self.at) {
            if !b.is_ascii_whitespace() {
                break;
            }
            after_break |= matches!(b, b'\n' | b'\r');
            self.at += 1;
        }
        let start = self.at;
        if start >= self.bytes.len() {
            return None;
        }
        self.at = self.bytes[start..]
            .iter()
            .position(u8::is_ascii_whitespace)
            .map_or(self.bytes.len(), |len| start + len);
        Some((start, self.at, after_break))
    }
}

/// Where the password that starts at `at` in the word ending at `word_end` ends: at the
/// quote that closes it, or the end of the line, when it starts with one; else at the end
/// of the word.
pub(super) fn value_end(bytes: &[u8], at: usize, word_end: usize) -> usize {
    let quote = bytes[at];
    if !matches!(quote, b'"' | b'\'') {
        return word_end;
    }
    let rest = &bytes[at + 1..];
    match rest
        .iter()
        .position(|&b| b == quote || b == b'\n' || b == b'\r')
    {
        Some(len) if rest[len] == quote => at + 1 + len + 1,
        Some(len) => at + 1 + len,
        None => bytes.len(),
    }
}

/// Whether `word` only separates commands: `|`, `||`, `&&`, `;`, `&`.
pub(super) fn is_separator(word: &str) -> bool {
    word.bytes().all(|b| matches!(b, b';' | b'|' | b'&'))
}

/// The last part of `word` read as a path, after its last `/` or `\`.
pub(super) fn last_path_part(word: &str) -> &str {
    // A plain loop rather than `rsplit` with a pattern of two chars, or `memrchr2`: the words
    // looked at are short, and both searchers' set-up costs more than the loop (callgrind).
    match word.bytes().rposition(|b| matches!(b, b'/' | b'\\')) {
        Some(at) => &word[at + 1..],
        None => word,
    }
}

/// Whether `word` names a MySQL client, perhaps by its path, with `.exe` (then in any case)
/// or quoted.
pub(super) fn is_client(word: &str) -> bool {
    let name = last_path_part(word);
    let name = name.trim_end_matches(['"', '\'', '`', ')']);
    match name.len().checked_sub(4) {
        Some(at) if name.is_char_boundary(at) && name[at..].eq_ignore_ascii_case(".exe") => {
            let name = &name[..at];
            CLIENTS
                .iter()
                .any(|client| client.eq_ignore_ascii_case(name))
        }
        _ => CLIENTS.contains(&name),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};

    use super::super::redact_plain_text as text;

    /// Found by a fuzz of the session's new rules: a form feed after a client's name made an
    /// empty word, and the scan never moved past it.
    #[test]
    fn a_form_feed_ends_a_word() {
        assert_eq!(text("mysql -phunter2 \x0c"), "mysql -p[REDACTED] \x0c");
        assert_eq!(
            text("mysql\x0c-u\x0croot\x0c-phunter2"),
            "mysql\x0c-u\x0croot\x0c-p[REDACTED]"
        );
    }

    /// Found by review: `mysql -phunter2`, the way MySQL's documentation and most scripts
    /// give a password on the command line, was stored as it came.
    #[test]
    fn a_mysql_clients_short_password_option() {
        let cases = [
            (
                "mysqldump -uroot -phunter2 shop > shop.sql",
                "mysqldump -uroot -p[REDACTED] shop > shop.sql",
            ),
            (
                "mysql -h db -P 3306 -u app -p hunter2 shop",
                "mysql -h db -P 3306 -u app -p [REDACTED] shop",
            ),
            (
                "/usr/bin/mariadb -p'a b' -e 'select 1'",
                "/usr/bin/mariadb -p[REDACTED] -e 'select 1'",
            ),
            (
                "$ mysqladmin -u root \"-phunter2\" status",
                "$ mysqladmin -u root \"-p[REDACTED] status",
            ),
            (
                "run: mysql.exe -uapp -p\"a b\" shop\nmysql -phunter3",
                "run: mysql.exe -uapp -p[REDACTED] shop\nmysql -p[REDACTED]",
            ),
            // A command continued on the next line.
            (
                "mysqldump \\\n  -uroot \\\n  -phunter2 shop",
                "mysqldump \\\n  -uroot \\\n  -p[REDACTED] shop",
            ),
            // The MySQL client's `-p` after another command's on the same line.
            (
                "ssh -p 2222 db mysql -uroot -phunter2 shop",
                "ssh -p 2222 db mysql -uroot -p[REDACTED] shop",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        let json = BodyInput::new(
            Some("application/json"),
            br#"{"cmd":"mysql -uroot -phunter2 shop","n":["mysqldump -p hunter2"]}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(r#"{"cmd":"mysql -uroot -p[REDACTED] shop","n":["mysqldump -p [REDACTED]"]}"#)
        );
        assert_eq!(
            r.redact_query("cmd=mysql+-uroot+-phunter2+shop&n=1"),
            "cmd=mysql+-uroot+-p[REDACTED]+shop&n=1"
        );
    }

    /// Found by review: a client glued to the `|`, `;`, `&&`, `$(` or backquote before it was
    /// no client, and its `-p` kept the password.
    #[test]
    fn clients_glued_to_a_separator() {
        for (input, want) in [
            (
                "zcat d.gz|mysql -phunter2 shop",
                "zcat d.gz|mysql -p[REDACTED] shop",
            ),
            ("cd /srv;mysql -p hunter2", "cd /srv;mysql -p [REDACTED]"),
            (
                "true&&mysqldump -phunter2 shop",
                "true&&mysqldump -p[REDACTED] shop",
            ),
            (
                "n=$(mysql -phunter2 -e 'x')",
                "n=$(mysql -p[REDACTED] -e 'x')",
            ),
            (
                "n=`mysql -phunter2 -e 'x'`",
                "n=`mysql -p[REDACTED] -e 'x'`",
            ),
            ("(/usr/bin/mysql -phunter2)", "(/usr/bin/mysql -p[REDACTED]"),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        // A separator after the client ends its command, glued or not.
        for plain in [
            "mysql shop|ssh -p 2222 h",
            "mysql shop; ssh -p 2222 h",
            "x|mysqlx -phunter2",
            "n=$(mysqlx -phunter2)",
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    /// Found by review: a client named in capitals with `.exe` (`MYSQL.EXE`, `MySQL.exe`, as
    /// Windows' shells and installers write it) was no client, and its `-p` kept the password.
    /// Without `.exe` a capital name stays prose ("MySQL -p is documented").
    #[test]
    fn windows_clients_in_any_case() {
        for (input, want) in [
            ("MYSQL.EXE -phunter2 shop", "MYSQL.EXE -p[REDACTED] shop"),
            (
                "> MySQL.exe -uroot -p hunter2 shop",
                "> MySQL.exe -uroot -p [REDACTED] shop",
            ),
            (
                r"C:\Program Files\MySQL\bin\MYSQL.EXE -u root -phunter2",
                r"C:\Program Files\MySQL\bin\MYSQL.EXE -u root -p[REDACTED]",
            ),
            (
                r#""C:\Program Files\MySQL\MySQL Server 8.0\bin\MySQLDump.Exe" -p'a b' shop"#,
                r#""C:\Program Files\MySQL\MySQL Server 8.0\bin\MySQLDump.Exe" -p[REDACTED] shop"#,
            ),
            (
                "type d.sql|MariaDB.EXE -phunter2",
                "type d.sql|MariaDB.EXE -p[REDACTED]",
            ),
        ] {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        let json = BodyInput::new(
            Some("application/json"),
            br#"{"cmd":"MYSQL.EXE -phunter2","argv":["MySQL.exe","-p","hunter2"]}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(r#"{"cmd":"MYSQL.EXE -p[REDACTED]","argv":["MySQL.exe","-p","[REDACTED]"]}"#)
        );
        assert_eq!(
            r.redact_query("cmd=MYSQL.EXE+-phunter2&n=1"),
            "cmd=MYSQL.EXE+-p[REDACTED]&n=1"
        );
        for plain in [
            "MySQL -p is documented",
            "MYSQL -phunter2",
            "MYSQLX.EXE -phunter2",
            "MySQL.exes -phunter2",
            "SSH.EXE -p 2222 host",
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    /// Found by review: a bare `-p` at the end of a line continued with `\` took the `\`
    /// for its password, and the password on the next line stayed.
    #[test]
    fn a_bare_dash_p_before_a_continued_line() {
        assert_eq!(
            text("mysqldump -uroot -p \\\n  hunter2 shop"),
            "mysqldump -uroot -p \\\n  [REDACTED] shop"
        );
        // Not continued: the next line is another command.
        assert_eq!(text("mysql -uroot -p\nls shop"), "mysql -uroot -p\nls shop");
    }

    /// Everywhere else `-p` is a port (ssh, scp's `-P`'s twin in many tools), a proxy (curl),
    /// a published port (docker) or a parent (mkdir): it stays, as does MySQL's `-P`, a port,
    /// and a `-p` of another command after a MySQL client's line or `|`, `;`, `&&`.
    #[test]
    fn other_commands_keep_their_dash_p() {
        for plain in [
            "ssh -p 2222 host",
            "curl -p -x proxy:8080 https://a.example",
            "docker run -p 3306:3306 mysql",
            "docker run -d -p 3306:3306 mysql:8",
            "mkdir -p /var/lib/mysql",
            "mysql -u root -p",
            "mysql -u root -p -h db shop",
            "mysql -h db -P 3306 shop",
            "mysql -u root\nssh -p 2222 host",
            "mysqldump shop | ssh -p 2222 backup 'cat > d'",
            "mysql -e 'select 1'; scp -p a b",
            "mysql shop && rsync -p a b",
            "mysql-workbench -p x",
            "mysqlx -phunter2",
            "ls -la mysql-pvc",
        ] {
            assert_eq!(text(plain), plain);
        }
        let json = br#"{"cmd":"ssh -p 2222 host mysqld","at":"2026-12-06"}"#;
        let body = BodyInput::new(Some("application/json"), json);
        assert_eq!(
            Redactor::default().redact_body(&body).as_deref(),
            std::str::from_utf8(json).ok()
        );
    }

    /// Hostile command lines stay linear: each word is read once.
    #[test]
    fn hostile_command_lines_stay_linear() {
        for unit in [
            "mysql -p ",
            "mysql -p'a ",
            "mysql -p -p ",
            "mysql mysql -px",
            "/a/b/c/mysql ",
            "-p -p -p mysql ",
            "mysql; -p x",
            "mysql \"-p\"",
            "x|mysql -p ",
            "$(mysql;mysql|",
            "((((((((((((((((",
            "mysql -p \\\n",
            "MYSQL.EXE -p ",
            "MySQL.Ex MYSQL.EX MYSQL.EXE. -p ",
        ] {
            let body = unit.repeat((256 << 10) / unit.len());
            let started = std::time::Instant::now();
            let out = text(&format!("mysql -phunter2 {body}"));
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
            assert!(out.starts_with("mysql -p[REDACTED] "), "{unit:?}");
        }
    }
}
