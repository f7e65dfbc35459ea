//! The passwords SQL's user statements give: `CREATE USER u IDENTIFIED BY '…'` (MySQL,
//! MariaDB, Oracle, also `IDENTIFIED WITH plugin BY '…'`), `ALTER ROLE r WITH PASSWORD '…'`
//! (PostgreSQL), MySQL's `SET PASSWORD [FOR u] = '…'` and `REPLACE '…'`, the current password;
//! and the values an `INSERT` gives a sensitive column.
//!
//! No `=` or `:` pairs such a keyword with its value, so the pair rules never see one. A quoted
//! string is taken for a password when the word before it is `PASSWORD` or `REPLACE`, or `BY`
//! (or `AS`, or `BY VALUES`: a hash) after `IDENTIFIED` (any case), and the statement it is in
//! (since the last `;` outside quotes) has named a `USER` or a `ROLE`, is a `GRANT` or a
//! `SET PASSWORD` before that word, so prose's `password "…"` without one stays; when it
//! follows the first `=` after a statement's `SET PASSWORD`; and in MySQL's `PASSWORD('…')`
//! anywhere. A string may be quoted with `'`, `"` or PostgreSQL's dollar quotes (`$$…$$`,
//! `$tag$…$tag$`), carry a prefix (`E'…'`, `X'…'`) or MySQL's character set introducer
//! (`_utf8mb4'…'`), and be parted from its keyword by `/* … */` and `-- …` or `# …` comments,
//! or glued to it where no string is open (`BY'x'`; `'user password'` closes one). An unquoted
//! password after `IDENTIFIED BY` (Oracle's `IDENTIFIED BY hunter2`, MySQL's `BY 0x…`) goes
//! where the words before it read as a user statement's (see [`unquoted_passwords`]).
//!
//! An `INSERT INTO t (name, password) VALUES ('ann', '…'), …` pairs its columns with its values
//! by their places: a value (a whole expression, `crypt('…', gen_salt('bf'))`) in the place of
//! a column whose name is a sensitive key goes, in every row, unless it is a placeholder,
//! `NULL` or `DEFAULT`.

use memchr::{memchr, memchr2, memchr2_iter, memchr3_iter, memmem, memrchr2};

use super::keys::KeyRules;

/// The spans of the passwords of SQL user statements and of the values of sensitive columns
/// in `text`, quotes included, in order, apart.
pub(super) fn password_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Vec<(usize, usize)> {
    let mut spans = quoted_passwords(text.as_bytes());
    let unquoted = unquoted_passwords(text.as_bytes());
    if !unquoted.is_empty() {
        spans = super::text::merged(spans, unquoted);
    }
    let columns = column_values(text.as_bytes(), keys, keybuf);
    if columns.is_empty() {
        spans
    } else {
        super::text::merged(spans, columns)
    }
}

/// Whether `text` holds a password of an SQL user statement or a sensitive column's value: a
/// look for callers that send only some text to the pair rules (JSON strings, form values).
pub(super) fn holds_password(text: &str, keys: &KeyRules, keybuf: &mut String) -> bool {
    may_hold_password(text.as_bytes()) && !password_values(text, keys, keybuf).is_empty()
}

/// Whether `text` names, in any case, a keyword without which no password is found: a look
/// cheaper than [`holds_password`] that needs no decoding (a JSON string's escapes write no
/// letters). `PASSWORD` (also a `SET PASSWORD`'s), `IDENTIFIED` (before `REPLACE` too) or
/// `VALUE`, `VALUES`, each told by a letter few words hold (which JSON's scan notes, see
/// `json::SQL_KEYWORD_LETTERS`).
pub(super) fn may_hold_password(text: &[u8]) -> bool {
    names_user_keyword(text) || names_word(text, b"value", 0)
}

/// The length of the shortest statement that gives an unquoted password,
/// `USER,u IDENTIFIED BY x` (see [`unquoted_passwords`]): most strings of JSON bodies and
/// forms are shorter, and are not looked at for one.
pub(super) const SHORTEST_UNQUOTED: usize = 22;

/// Whether `text` may hold an unquoted password (see [`holds_unquoted_password`]): it is no
/// shorter than [`SHORTEST_UNQUOTED`] and names `IDENTIFIED`, in any case.
pub(super) fn may_hold_unquoted_password(text: &[u8]) -> bool {
    text.len() >= SHORTEST_UNQUOTED && names_word(text, b"identified", 6)
}

/// Whether `text` holds an unquoted password after `IDENTIFIED BY` (see
/// [`unquoted_passwords`]): a look for callers that send only some text to the pair rules.
pub(super) fn holds_unquoted_password(text: &[u8]) -> bool {
    !unquoted_passwords(text).is_empty()
}

/// Whether `text` names `PASSWORD` or `IDENTIFIED`, in any case: a statement with neither
/// gives no password after a line comment or an `=`.
fn names_user_keyword(text: &[u8]) -> bool {
    names_word(text, b"password", 4) || names_word(text, b"identified", 6)
}

/// Whether `text` holds a `SET PASSWORD`, in any case.
fn names_set_password(text: &[u8]) -> bool {
    memchr2_iter(b'w', b'W', text).any(|i| {
        i >= 4
            && text
                .get(i - 4..i + 4)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"password"))
            && word_before(text, i - 4, 3, false)
                .is_some_and(|(_, w)| w.eq_ignore_ascii_case(b"set"))
    })
}

/// Whether `text` may give a password after a line comment: it names `PASSWORD` or
/// `IDENTIFIED`, and holds a `--` or a `#` that is no HTML reference's (`&#8212;`).
fn may_hold_line_comment(text: &[u8]) -> bool {
    (memmem::find(text, b"--").is_some()
        || memchr::memchr_iter(b'#', text).any(|i| i == 0 || text[i - 1] != b'&'))
        && names_user_keyword(text)
}

/// Whether `text` holds `word` in any case, looked for by its letter at `letter`.
fn names_word(text: &[u8], word: &[u8], letter: usize) -> bool {
    let b = word[letter];
    memchr2_iter(b, b.to_ascii_uppercase(), text).any(|i| {
        i >= letter
            && text
                .get(i - letter..i - letter + word.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
    })
}

/// Whether `b` may start a string [`holds_password`] finds a password in, or a column list: a
/// quote, a dollar quote's `$`, a `(`. A look callers take before that one.
pub(super) fn may_open_a_password(b: u8) -> bool {
    matches!(b, b'\'' | b'"' | b'$' | b'(')
}

/// The spans of the quoted passwords of SQL user statements in `bytes`, quotes included, in
/// order, apart.
///
/// Each quote is looked at once, the words before it looked back at only as far as the quote
/// before it (and the comments before those words only so far, see [`COMMENT_LOOK`]), and the
/// statements are read by one cursor that only moves forward, so the scan is linear.
fn quoted_passwords(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut statement = Statement::default();
    // Whether the text holds a `SET PASSWORD`, whether it names `PASSWORD` or `IDENTIFIED` and
    // holds a `--` or a `#` (not an HTML reference's `&#`), each told once it matters: without
    // them the looks for an `=`'s password and past line comments are spared.
    let mut sets_password = None;
    let mut line_comments = None;
    // Where the last password found ends: the quotes before it are inside it.
    let mut from = 0;
    for quote in memchr3_iter(b'\'', b'"', b'$', bytes) {
        if quote < from {
            continue;
        }
        let quoting = if bytes[quote] == b'$' {
            match dollar_tag(bytes, quote) {
                Some(len) => Quoting::Dollar(len),
                None => continue,
            }
        } else if is_escaped(bytes, quote) {
            Quoting::Escaped
        } else {
            Quoting::Plain
        };
        // An escaped quote's string starts at its backslash.
        let quote = if let Quoting::Escaped = quoting {
            quote - 1
        } else {
            quote
        };
        // Most quotes in text follow a `{`, `,`, `:` or another quote (JSON in a log line):
        // no keyword, prefix, comment or space ends there, nor a `(` or an `=`.
        if quote == 0 || !may_follow_a_keyword(bytes[quote - 1]) {
            continue;
        }
        // A line comment read as one only where the words before the string name no keyword
        // without: a `#` or `--` that is no comment (`u#1`, `a--b`) hides none then.
        let found = match keyword_before(bytes, quote, false) {
            Some((_, Context::SetPassword, _))
                if !*sets_password.get_or_insert_with(|| names_set_password(bytes)) =>
            {
                None
            }
            None if *line_comments.get_or_insert_with(|| may_hold_line_comment(bytes)) => {
                keyword_before(bytes, quote, true)
            }
            found => found,
        };
        let Some((keyword, context, glued)) = found else {
            continue;
        };
        if glued && !matches!(quoting, Quoting::Plain) {
            continue;
        }
        let is_password = match context {
            Context::Any => true,
            Context::User => statement.names_user_before(bytes, keyword),
            Context::SetPassword => statement.sets_password_at(bytes, keyword),
        } && (!glued || statement.opens_string_at(bytes, quote));
        if is_password {
            let end = match quoting {
                Quoting::Plain => quoted_end(bytes, quote),
                Quoting::Escaped => escaped_end(bytes, quote),
                Quoting::Dollar(len) => dollar_end(bytes, quote, len),
            };
            spans.push((quote, end));
            statement.scanned = end;
            statement.in_quote = None;
            from = end;
        }
    }
    spans
}

/// The longest user or role name looked back over before an `IDENTIFIED` whose password is
/// unquoted (`'app'@'%'`, `c##admin`).
const NAME: usize = 128;

/// The spans of the unquoted passwords after `IDENTIFIED BY` (or `IDENTIFIED WITH plugin BY`)
/// in `bytes`, in order, apart: Oracle's `IDENTIFIED BY hunter2` (and the old one after
/// `REPLACE`, after a quoted password too) and MySQL's hex number `IDENTIFIED BY 0x…`; and
/// the quoted ones there, `'…'` or `"…"`, past comments of any length.
///
/// Prose writes words after "identified by" too ("a user is identified by email"), so the
/// statement must read as one up to its `IDENTIFIED`: a user's or role's name after `CREATE` or
/// `ALTER USER` (`IF [NOT] EXISTS` between), `CREATE`, `ALTER` or `SET ROLE`, or a database
/// link's `CONNECT TO`, or after `TO` or a list's `,` in a statement that names a user or a
/// role or is a `GRANT` (see [`Statement`]). A password starts with a letter or a digit and
/// runs to a space, a `;`, `,`, bracket, quote or backslash; a keyword there (MySQL's
/// `BY PASSWORD '*…'` and `BY RANDOM PASSWORD`, Oracle's `BY VALUES '…'`), a placeholder
/// (`:pw`, `?`) and a string's prefix or introducer (`X'…'`, `_utf8mb4'…'`) are none.
///
/// Each `IDENTIFIED` is looked back from over a few words, and forward past comments of any
/// length only from where the look before stopped, so the scan is linear.
fn unquoted_passwords(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut statement = Statement::default();
    // Where the last look forward stopped: an `IDENTIFIED` before it is in what it passed.
    let mut scanned = 0;
    for f in memchr2_iter(b'f', b'F', bytes) {
        // `identified`'s `f` is its seventh letter.
        let Some(start) = f.checked_sub(6).filter(|&start| start >= scanned) else {
            continue;
        };
        let end = start + 10;
        if !bytes
            .get(start..end)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"identified"))
            || (start > 0 && is_word_byte(bytes[start - 1]))
            || bytes.get(end).is_some_and(|&b| is_word_byte(b))
            || !names_a_user_before(bytes, start, &mut statement)
        {
            continue;
        }
        let Some(value) = after_by(bytes, end) else {
            continue;
        };
        // A quoted one, which [`quoted_passwords`] finds too but for a database link's (its
        // statement names no user) and one after a comment longer than its look back.
        let value_end = match bytes.get(value) {
            Some(b'\'' | b'"') => {
                let value_end = quoted_end(bytes, value);
                spans.push((value, value_end));
                value_end
            }
            _ => match unquoted_end(bytes, value) {
                Some(value_end) => {
                    spans.push((value, value_end));
                    value_end
                }
                None => {
                    scanned = value;
                    continue;
                }
            },
        };
        scanned = value_end;
        // Oracle's `REPLACE old`, the password being changed.
        let replace = space_after_any(bytes, value_end);
        if word_at(bytes, replace, b"replace") {
            let old = space_after_any(bytes, replace + 7);
            scanned = old;
            if let Some(old_end) = unquoted_end(bytes, old) {
                spans.push((old, old_end));
                scanned = old_end;
            }
        }
    }
    spans
}

/// Whether the statement reads as one that gives a user or a role the password after its
/// `IDENTIFIED` at `identified` (see [`unquoted_passwords`]).
fn names_a_user_before(bytes: &[u8], identified: usize, statement: &mut Statement) -> bool {
    let is = |word: &[u8], keyword: &[u8]| word.eq_ignore_ascii_case(keyword);
    let verb_before = |at: usize, verbs: &[&[u8]]| {
        word_before(bytes, at, 7, false).is_some_and(|(_, word)| verbs.iter().any(|v| is(word, v)))
    };
    let end = space_before(bytes, identified, false);
    let len = bytes[..end]
        .iter()
        .rev()
        .take(NAME + 1)
        .take_while(|&&b| !b.is_ascii_whitespace() && !matches!(b, b';' | b',' | b'(' | b')'))
        .count();
    if !(1..=NAME).contains(&len) {
        return false;
    }
    let name = end - len;
    let before = space_before(bytes, name, false);
    if before > 0 && bytes[before - 1] == b',' {
        // MySQL's list, `CREATE USER a IDENTIFIED BY …, b IDENTIFIED BY …`.
        return statement.names_user_before(bytes, identified);
    }
    let Some((at, word)) = word_before(bytes, name, 6, false) else {
        return false;
    };
    if is(word, b"user") {
        verb_before(at, &[b"create", b"alter"])
    } else if is(word, b"role") {
        verb_before(at, &[b"create", b"alter", b"set"])
    } else if is(word, b"to") {
        verb_before(at, &[b"connect"]) || statement.names_user_before(bytes, identified)
    } else if is(word, b"exists") {
        // `CREATE USER IF NOT EXISTS u`, `ALTER USER IF EXISTS u`.
        let at = match word_before(bytes, at, 3, false) {
            Some((at, word)) if is(word, b"if") => at,
            Some((at, word)) if is(word, b"not") => match word_before(bytes, at, 2, false) {
                Some((at, word)) if is(word, b"if") => at,
                _ => return false,
            },
            _ => return false,
        };
        word_before(bytes, at, 4, false)
            .is_some_and(|(at, word)| is(word, b"user") && verb_before(at, &[b"create", b"alter"]))
    } else {
        false
    }
}

/// Where the password starts after the `IDENTIFIED` that ends at `at`: past `BY` (or
/// `WITH plugin BY`, the plugin's name perhaps quoted) and the spaces and comments around
/// them; `None` when no `BY` follows.
fn after_by(bytes: &[u8], at: usize) -> Option<usize> {
    let mut at = space_after_any(bytes, at);
    if word_at(bytes, at, b"with") {
        at = space_after_any(bytes, at + 4);
        let plugin = match bytes.get(at) {
            Some(b'\'' | b'"' | b'`') => quoted_end(bytes, at) - at,
            _ => bytes[at..]
                .iter()
                .take(65)
                .take_while(|&&b| is_word_byte(b))
                .count(),
        };
        if !(1..=64).contains(&plugin) {
            return None;
        }
        at = space_after_any(bytes, at + plugin);
    }
    word_at(bytes, at, b"by").then(|| space_after_any(bytes, at + 2))
}

/// Where the unquoted password that starts at `at` ends, `None` when none starts there (see
/// [`unquoted_passwords`]).
fn unquoted_end(bytes: &[u8], at: usize) -> Option<usize> {
    if !bytes.get(at)?.is_ascii_alphanumeric() {
        return None;
    }
    let len = bytes[at..]
        .iter()
        .take_while(|&&b| {
            !b.is_ascii_whitespace()
                && !matches!(b, b';' | b',' | b'(' | b')' | b'\'' | b'"' | b'`' | b'\\')
        })
        .count();
    let word = bytes[at..at + len]
        .iter()
        .take_while(|&&b| is_word_byte(b))
        .count();
    let word = &bytes[at..at + word];
    let keyword = [&b"password"[..], b"random", b"values"]
        .iter()
        .any(|keyword| word.eq_ignore_ascii_case(keyword));
    // A string's prefix, `X'…'`, `U&'…'`.
    let prefix = matches!(bytes.get(at + len), Some(b'\'' | b'"'));
    (!keyword && !prefix).then_some(at + len)
}

/// Whether `keyword` starts at `at`, in any case, as a word of its own.
fn word_at(bytes: &[u8], at: usize, keyword: &[u8]) -> bool {
    bytes
        .get(at..at + keyword.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
        && !bytes
            .get(at + keyword.len())
            .is_some_and(|&b| is_word_byte(b))
}

/// Where the run of whitespace and comments that starts at `at` ends: `-- …` and MySQL's
/// `# …` to the line's end, `/* … */` (see [`space_after`]).
fn space_after_any(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    loop {
        i = space_after(bytes, i);
        if bytes.get(i) != Some(&b'#') {
            return i;
        }
        i += memchr2(b'\n', b'\r', &bytes[i..]).unwrap_or(bytes.len() - i);
    }
}

/// Whether `b` may stand right before a password's string (see [`keyword_before`]): ending a
/// word (a keyword, a prefix, an introducer), a space, a comment (`*/`), `U&`'s `&`, the
/// `(` of `PASSWORD(`, or an `=`.
fn may_follow_a_keyword(b: u8) -> bool {
    is_word_byte(b) || b.is_ascii_whitespace() || matches!(b, b'(' | b'=' | b'/' | b'&')
}

/// How a string is quoted.
#[derive(Debug, Clone, Copy)]
enum Quoting {
    /// With `'` or `"`.
    Plain,
    /// With `\'` or `\"`: an SQL string inside a string printed escaped (a `Debug` print of
    /// an error, JSON inside a log line).
    Escaped,
    /// With a dollar quote this long, `$$` or `$tag$`.
    Dollar(usize),
}

/// Where a keyword makes the string after it a password.
#[derive(Debug, Clone, Copy)]
enum Context {
    /// Anywhere: MySQL's function `PASSWORD('…')`.
    Any,
    /// In a statement that names a user or a role, or is a `GRANT` or a `SET PASSWORD`.
    User,
    /// At the `=` of a `SET PASSWORD`, the first after it in its statement.
    SetPassword,
}

/// Where the keyword that makes the string at `quote` a password starts, in which
/// [`Context`], and whether the quote is glued to it: `PASSWORD` or `REPLACE` before it, or
/// `IDENTIFIED` before `BY` (or `WITH plugin BY` or `AS`, or `BY VALUES`), or an `=`, spaces
/// and comments (`/* … */`, and with `lines` also `-- …` and `# …` before a line's end)
/// between them or none, the string perhaps after a prefix (`E'…'`) or an introducer
/// (`_utf8mb4'…'`); MySQL's function `PASSWORD('…')` in any statement. A quote glued to the
/// word before it may close a string (`'user password'`): the caller tells whether it opens
/// one (`BY'x'`). A word glued to a quote before it is quoted (`"password" "x"`): no keyword.
fn keyword_before(bytes: &[u8], quote: usize, lines: bool) -> Option<(usize, Context, bool)> {
    let quote = literal_start(bytes, quote);
    let before = *bytes[..quote].last()?;
    if before == b'(' {
        // MySQL's `PASSWORD('…')`.
        let (start, word) = word_before(bytes, quote - 1, 8, lines)?;
        return word
            .eq_ignore_ascii_case(b"password")
            .then_some((start, Context::Any, false));
    }
    let spaced = space_before(bytes, quote, lines);
    if spaced > 0 && bytes[spaced - 1] == b'=' {
        // `SET PASSWORD FOR u@localhost = '…'`.
        return Some((spaced - 1, Context::SetPassword, false));
    }
    let glued = spaced == quote;
    // Most quotes glued to a word close a string (`"name"`): only `PASSWORD`, `REPLACE` and
    // `BY` are looked at, told by their last letter and then compared in place.
    if glued {
        let keyword: &[u8] = match bytes[quote - 1] | 0x20 {
            b'd' => b"password",
            b'e' => b"replace",
            b'y' => b"by",
            _ => return None,
        };
        let start = quote.checked_sub(keyword.len())?;
        if !bytes[start..quote].eq_ignore_ascii_case(keyword)
            || (start > 0 && is_word_byte(bytes[start - 1]))
        {
            return None;
        }
    }
    let (start, word) = word_before(bytes, quote, 10, lines)?;
    if start > 0 && matches!(bytes[start - 1], b'\'' | b'"' | b'`' | b'\\') {
        return None;
    }
    if word.eq_ignore_ascii_case(b"password") || word.eq_ignore_ascii_case(b"replace") {
        return Some((start, Context::User, glued));
    }
    // Oracle's `IDENTIFIED BY VALUES '…'`, a hash.
    let (start, word) = if word.eq_ignore_ascii_case(b"values") {
        word_before(bytes, start, 2, lines)?
    } else {
        (start, word)
    };
    // `AS`: the hash of `IDENTIFIED WITH mysql_native_password AS '*…'`.
    if !word.eq_ignore_ascii_case(b"by") && !word.eq_ignore_ascii_case(b"as") {
        return None;
    }
    let (start, word) = word_before(bytes, start, 64, lines)?;
    if word.eq_ignore_ascii_case(b"identified") {
        return Some((start, Context::User, glued));
    }
    // `IDENTIFIED WITH caching_sha2_password BY '…'`: `word` is the plugin.
    let (start, with) = word_before(bytes, start, 4, lines)?;
    let (start, identified) = word_before(bytes, start, 10, lines)?;
    (with.eq_ignore_ascii_case(b"with") && identified.eq_ignore_ascii_case(b"identified"))
        .then_some((start, Context::User, glued))
}

/// Where the literal whose quote is at `quote` starts: at its prefix (see [`string_prefix`]),
/// or at MySQL's character set introducer before that, glued or after spaces (`_utf8mb4'…'`,
/// `_binary '…'`, `_latin1 X'…'`).
fn literal_start(bytes: &[u8], quote: usize) -> usize {
    let start = quote - string_prefix(bytes, quote);
    let spaced = start
        - bytes[..start]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let len = bytes[..spaced]
        .iter()
        .rev()
        .take(65)
        .take_while(|&&b| is_word_byte(b))
        .count();
    let word = &bytes[spaced - len..spaced];
    if (2..=64).contains(&len) && word[0] == b'_' {
        spaced - len
    } else {
        start
    }
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

/// The longest tag of a dollar quote looked for: PostgreSQL's longest name.
const DOLLAR_TAG: usize = 63;

/// The length of the dollar quote that opens at `at` (`$$`, `$tag$`), `None` when none does:
/// a `$` glued to a word before it is part of that word (`a$b`), and a tag is a name that does
/// not start with a digit (`$1` is a parameter).
fn dollar_tag(bytes: &[u8], at: usize) -> Option<usize> {
    if at > 0 && is_word_byte(bytes[at - 1]) {
        return None;
    }
    let rest = &bytes[at + 1..];
    let len = rest
        .iter()
        .take(DOLLAR_TAG + 1)
        .take_while(|&&b| is_word_byte(b))
        .count();
    let starts_name = rest.first().is_some_and(|b| !b.is_ascii_digit());
    (len <= DOLLAR_TAG && (len == 0 || starts_name) && rest.get(len) == Some(&b'$'))
        .then_some(len + 2)
}

/// Where the string dollar quoted at `at` with a quote of `len` bytes ends, after its closing
/// quote; one never closed runs to the end of the text.
fn dollar_end(bytes: &[u8], at: usize, len: usize) -> usize {
    let open = &bytes[at..at + len];
    memmem::find(&bytes[at + len..], open).map_or(bytes.len(), |end| at + len + end + len)
}

/// The most comments looked back over between two words, and how far back the start of a
/// `/* … */` one is looked for: each look stays short, so the scan stays linear. A line
/// comment's start is looked for on its whole line (see [`line_comment`]).
const COMMENTS: usize = 4;
/// See [`COMMENTS`].
const COMMENT_LOOK: usize = 256;

/// Where the run of whitespace and `/* … */` comments that ends at `end` starts; with `lines`,
/// `-- …` and `# …` comments that end at a line's end in it too.
fn space_before(bytes: &[u8], end: usize, lines: bool) -> usize {
    let mut end = end;
    for _ in 0..=COMMENTS {
        let mut crossed_line = false;
        end -= bytes[..end]
            .iter()
            .rev()
            .take_while(|&&b| {
                crossed_line |= b == b'\n' || b == b'\r';
                b.is_ascii_whitespace()
            })
            .count();
        if bytes[..end].ends_with(b"*/") {
            let from = end.saturating_sub(COMMENT_LOOK);
            match memmem::rfind(&bytes[from..end - 2], b"/*") {
                Some(at) => end = from + at,
                None => break,
            }
        } else if lines
            && crossed_line
            && let Some(at) = line_comment(bytes, end)
        {
            end = at;
        } else {
            break;
        }
    }
    end
}

/// Where the `-- …` or `# …` comment on the line that ends at `end` starts: the first `--` or
/// `#` outside quotes, read from the line's start, however long the line is. A line is read so
/// only by the look back from the token after it (the whitespace before that token crosses
/// the line's end), so each line is read a bounded number of times and the scan stays linear.
fn line_comment(bytes: &[u8], end: usize) -> Option<usize> {
    let start = memrchr2(b'\n', b'\r', &bytes[..end]).map_or(0, |at| at + 1);
    let mut in_quote = None;
    for (i, &b) in bytes.iter().enumerate().take(end).skip(start) {
        match (b, in_quote) {
            (b'#', None) => return Some(i),
            (b'-', None) if bytes.get(i + 1) == Some(&b'-') && i + 1 < end => return Some(i),
            (b'\'' | b'"' | b'`', None) => in_quote = Some(b),
            (q, Some(open)) if q == open => in_quote = None,
            _ => {}
        }
    }
    None
}

/// The word that ends before `end` (and the whitespace and comments before `end`, see
/// [`space_before`]), and where it starts; `None` when there is none or it is longer than
/// `longest`.
fn word_before(bytes: &[u8], end: usize, longest: usize, lines: bool) -> Option<(usize, &[u8])> {
    let end = space_before(bytes, end, lines);
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

/// Whether the quote at `quote` is escaped: an odd number of backslashes stands before it.
fn is_escaped(bytes: &[u8], quote: usize) -> bool {
    bytes[..quote]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count()
        % 2
        == 1
}

/// Where the string quoted with the escaped quote at `at` (its backslash) ends, after its
/// escaped closing quote: one after an escaped backslash (`\\\"`) does not close it, and a bare quote ends
/// the string printed around it, and this one before it; one never closed runs to the end of
/// the text.
fn escaped_end(bytes: &[u8], at: usize) -> usize {
    let q = bytes[at + 1];
    let mut i = at + 2;
    while let Some(found) = bytes.get(i..).and_then(|rest| memchr2(q, b'\\', rest)) {
        let found = i + found;
        if bytes[found] == q {
            return found;
        }
        match bytes.get(found + 1) {
            Some(&b) if b == q => return found + 2,
            // An escaped backslash escapes, in the string's SQL, what follows it (MySQL's
            // `\"` printed escaped, `\\\"`).
            Some(b'\\') => {
                i = found
                    + 2
                    + if bytes.get(found + 2) == Some(&b'\\') {
                        2
                    } else {
                        1
                    }
            }
            _ => i = found + 2,
        }
    }
    bytes.len()
}

/// The statements read so far: up to where, whether the one read last names a user, the
/// quote of the string it is inside of there, if any, and what it has read of a
/// `SET PASSWORD … =`.
#[derive(Debug, Default)]
struct Statement {
    scanned: usize,
    names_user: bool,
    in_quote: Option<u8>,
    /// The last word read was `SET`.
    after_set: bool,
    /// The statement is a `SET PASSWORD` whose `=` has not been read yet.
    awaits_eq: bool,
    /// Where the `=` of the statement's `SET PASSWORD` is.
    password_eq: Option<usize>,
}

impl Statement {
    /// Reads the text on to `to`, at a word's start, and says whether the statement there has
    /// named a `USER` or a `ROLE`, or is a `GRANT` (MySQL 5's `GRANT … IDENTIFIED BY`) or a
    /// `SET PASSWORD`, since its `;`. A `;` inside quotes ends none (`CREATE USER 'a;b' …`);
    /// words there still count, so an apostrophe of prose that throws the quotes out of step
    /// keeps a statement going rather than ending it.
    fn names_user_before(&mut self, bytes: &[u8], to: usize) -> bool {
        self.read_to(bytes, to);
        self.names_user
    }

    /// Reads the text on to `quote` and says whether no string is open there: a quote glued
    /// to a keyword opens the password (`BY'x'`) only then, and closes a string otherwise
    /// (`'user password'`).
    fn opens_string_at(&mut self, bytes: &[u8], quote: usize) -> bool {
        self.read_to(bytes, quote);
        self.in_quote.is_none()
    }

    /// Reads the text on past `eq`, an `=`, and says whether it is the first `=` outside
    /// quotes after the `SET PASSWORD` of its statement.
    fn sets_password_at(&mut self, bytes: &[u8], eq: usize) -> bool {
        self.read_to(bytes, eq + 1);
        self.password_eq == Some(eq)
    }

    fn read_to(&mut self, bytes: &[u8], to: usize) {
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
                if self.after_set && word.eq_ignore_ascii_case(b"password") {
                    self.names_user = true;
                    self.awaits_eq = true;
                }
                self.after_set = word.eq_ignore_ascii_case(b"set");
                continue;
            }
            match (bytes[i], self.in_quote) {
                (b';', None) => {
                    self.names_user = false;
                    self.awaits_eq = false;
                    self.after_set = false;
                }
                (b'=', None) if self.awaits_eq => {
                    self.awaits_eq = false;
                    self.password_eq = Some(i);
                }
                (q @ (b'\'' | b'"'), None) => self.in_quote = Some(q),
                (b'\\', Some(_)) => i += 1,
                (q, Some(open)) if q == open => self.in_quote = None,
                _ => {}
            }
            i += 1;
        }
        self.scanned = self.scanned.max(to);
    }
}

/// The spans of the values an `INSERT` gives its sensitive columns in `bytes`, in order, apart.
///
/// Each `(` is looked at once, the words before it looked back at only so far, and a column
/// list and its rows are read forward once, each from where the one before stopped, so the
/// scan is linear.
fn column_values(bytes: &[u8], keys: &KeyRules, keybuf: &mut String) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    for open in memchr::memchr_iter(b'(', bytes) {
        if open < from || !follows_insert_into(bytes, open) {
            continue;
        }
        let (sensitive, close) = match columns(bytes, open, keys, keybuf) {
            Ok(read) => read,
            Err(stop) => {
                from = stop;
                continue;
            }
        };
        from = close;
        if !sensitive.contains(&true) {
            continue;
        }
        let at = space_after(bytes, close);
        let len = bytes[at..]
            .iter()
            .take(7)
            .take_while(|&&b| is_word_byte(b))
            .count();
        let word = &bytes[at..at + len];
        if word.eq_ignore_ascii_case(b"values") || word.eq_ignore_ascii_case(b"value") {
            from = rows(bytes, at + len, &sensitive, &mut spans);
        }
    }
    spans
}

/// Whether the `(` at `open` opens the column list of an `INSERT`: a table's name (perhaps
/// quoted, perhaps with its schema) stands before it, and `INTO`, `INSERT`, `IGNORE` or
/// `REPLACE` before that.
fn follows_insert_into(bytes: &[u8], open: usize) -> bool {
    // The name's parts, each looked back over only so far.
    const PART: usize = 128;
    let mut end = space_before(bytes, open, false);
    for _ in 0..4 {
        let start = match bytes[..end].last() {
            Some(&q @ (b'"' | b'`' | b']')) => {
                let q = if q == b']' { b'[' } else { q };
                let from = end.saturating_sub(PART);
                match memchr::memrchr(q, &bytes[from..end - 1]) {
                    Some(at) => from + at,
                    None => return false,
                }
            }
            _ => {
                let len = bytes[..end]
                    .iter()
                    .rev()
                    .take(PART + 1)
                    .take_while(|&&b| is_word_byte(b) || b == b'$')
                    .count();
                if !(1..=PART).contains(&len) {
                    return false;
                }
                end - len
            }
        };
        if start > 0 && bytes[start - 1] == b'.' {
            end = start - 1;
            continue;
        }
        return word_before(bytes, start, 7, false).is_some_and(|(_, word)| {
            [&b"into"[..], b"insert", b"ignore", b"replace"]
                .iter()
                .any(|keyword| word.eq_ignore_ascii_case(keyword))
        });
    }
    false
}

/// The longest column name read.
const COLUMN: usize = 256;

/// Reads the column list that opens at `open`: whether each column's name is a sensitive key,
/// and where the list ends, after its `)`; or, when it is no list of names, where the read
/// stopped.
fn columns(
    bytes: &[u8],
    open: usize,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Result<(Vec<bool>, usize), usize> {
    let mut sensitive = Vec::new();
    let mut i = open + 1;
    loop {
        i = space_after(bytes, i);
        let (name, end) = match bytes.get(i) {
            Some(&q @ (b'"' | b'`' | b'[')) => {
                let q = if q == b'[' { b']' } else { q };
                let rest = &bytes[i + 1..bytes.len().min(i + 1 + COLUMN)];
                let len = memchr(q, rest).ok_or(i)?;
                (&rest[..len], i + 1 + len + 1)
            }
            _ => {
                let len = bytes[i..]
                    .iter()
                    .take(COLUMN + 1)
                    .take_while(|&&b| is_word_byte(b))
                    .count();
                if !(1..=COLUMN).contains(&len) {
                    return Err(i);
                }
                (&bytes[i..i + len], i + len)
            }
        };
        let name = std::str::from_utf8(name).map_err(|_| i)?;
        sensitive.push(keys.is_sensitive(name, keybuf));
        i = space_after(bytes, end);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b')') => return Ok((sensitive, i + 1)),
            _ => return Err(i),
        }
    }
}

/// Reads the rows of a `VALUES` list from `at` (`(…), (…)`, MySQL's `ROW(…)` too), pushing
/// the spans of the values in the places `sensitive` marks, and says where it stopped.
fn rows(bytes: &[u8], at: usize, sensitive: &[bool], spans: &mut Vec<(usize, usize)>) -> usize {
    let mut i = at;
    loop {
        i = space_after(bytes, i);
        if bytes
            .get(i..i + 3)
            .is_some_and(|word| word.eq_ignore_ascii_case(b"row"))
        {
            i = space_after(bytes, i + 3);
        }
        if bytes.get(i) != Some(&b'(') {
            return i;
        }
        i += 1;
        let mut place = 0;
        loop {
            let start = space_after(bytes, i);
            let end = value_end(bytes, start);
            let trimmed = end
                - bytes[start..end]
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
            if sensitive.get(place) == Some(&true)
                && trimmed > start
                && !is_placeholder(&bytes[start..trimmed])
            {
                spans.push((start, trimmed));
            }
            place += 1;
            i = end + 1;
            match bytes.get(end) {
                Some(b',') => {}
                Some(b')') => break,
                _ => return end,
            }
        }
        i = space_after(bytes, i);
        if bytes.get(i) != Some(&b',') {
            return i;
        }
        i += 1;
    }
}

/// Where the value that starts at `start` in a row ends: at the `,` or `)` after it outside
/// its strings and brackets, or at a `;` or the text's end.
fn value_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' | b'`' => {
                i = quoted_end(bytes, i);
                continue;
            }
            b'$' => {
                if let Some(len) = dollar_tag(bytes, i) {
                    i = dollar_end(bytes, i, len);
                    continue;
                }
            }
            // A comment's `,` and `)` are none of the row's.
            b'-' | b'/' if comment_len(&bytes[i..]) > 0 => {
                i += comment_len(&bytes[i..]);
                continue;
            }
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b',' | b')' | b';' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Whether a value stands for none given here: a placeholder (`?`, `?1`, `$1`, `:name`,
/// `@name`, `%s`, `%(name)s`), `NULL` or `DEFAULT`.
fn is_placeholder(value: &[u8]) -> bool {
    let named = |rest: &[u8]| rest.iter().all(|&b| is_word_byte(b));
    match value {
        [b'?', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        [b'$', rest @ ..] => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
        [b':' | b'@', rest @ ..] => !rest.is_empty() && named(rest),
        [b'%', b's'] => true,
        [b'%', b'(', rest @ .., b')', b's'] => named(rest),
        _ => value.eq_ignore_ascii_case(b"null") || value.eq_ignore_ascii_case(b"default"),
    }
}

/// Where the run of whitespace and comments (`-- …` to the line's end, `/* … */`) that starts
/// at `at` ends: an `INSERT` may hold them between its column names, before its `VALUES` and
/// between its values. A comment never closed runs to the end of the text. Each byte is read
/// once.
fn space_after(bytes: &[u8], at: usize) -> usize {
    let mut i = at;
    loop {
        let rest = bytes.get(i..).unwrap_or_default();
        let space = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let comment = comment_len(&rest[space..]);
        i += space + comment;
        if comment == 0 {
            return i;
        }
    }
}

/// The length of the comment `bytes` starts with: `-- …` to the line's end (not its break),
/// `/* … */` through its `*/` or, never closed, to the end; 0 when it starts with none.
fn comment_len(bytes: &[u8]) -> usize {
    match bytes {
        [b'-', b'-', rest @ ..] => 2 + memchr2(b'\n', b'\r', rest).unwrap_or(rest.len()),
        [b'/', b'*', rest @ ..] => memmem::find(rest, b"*/").map_or(bytes.len(), |end| 2 + end + 2),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::{DEFAULT_KEY_SUFFIXES, DEFAULT_KEYS, KeyRules};
    use super::super::{BodyInput, Redactor};

    fn sql(body: &str) -> String {
        let input = BodyInput::new(Some("application/sql"), body.as_bytes());
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    /// `input` is stored as `want` in an SQL body, a text body and an error message.
    fn redacted_everywhere(input: &str, want: &str) {
        assert_eq!(sql(input), want, "{input}");
        let text = BodyInput::new(Some("text/plain"), input.as_bytes());
        assert_eq!(
            Redactor::default().redact_body(&text).as_deref(),
            Some(want),
            "{input}"
        );
        assert_eq!(Redactor::default().redact_error(input), want, "{input}");
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

    /// Found by review: a password given in PostgreSQL's dollar quotes (`$$…$$`, `$tag$…$tag$`),
    /// after MySQL's character set introducer (`_utf8mb4'…'`, `_binary'…'`, `_latin1 X'…'`),
    /// after a `-- …` or `# …` line comment, in a `SET PASSWORD … = '…'`, or in double quotes,
    /// was stored as it came.
    #[test]
    fn passwords_dollar_quoted_introduced_after_line_comments_and_set() {
        let cases = [
            (
                "ALTER ROLE u PASSWORD $$hunter2$$;",
                "ALTER ROLE u PASSWORD [REDACTED];",
            ),
            (
                "CREATE USER u WITH PASSWORD $pw$hunter2$ $p$pw$ LOGIN; SELECT $$a$$;",
                "CREATE USER u WITH PASSWORD [REDACTED] LOGIN; SELECT $$a$$;",
            ),
            (
                "CREATE USER u IDENTIFIED BY _utf8mb4'hunter2';",
                "CREATE USER u IDENTIFIED BY _utf8mb4[REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED BY _binary 'hunter2' REPLACE _latin1 X'6f6c64';",
                "CREATE USER u IDENTIFIED BY _binary [REDACTED] REPLACE _latin1 X[REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED BY N'hunter2';",
                "CREATE USER u IDENTIFIED BY N[REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED BY -- note\n 'hunter2';",
                "CREATE USER u IDENTIFIED BY -- note\n [REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED # it's new\n BY # 'x'\n\t'hunter2';",
                "CREATE USER u IDENTIFIED # it's new\n BY # 'x'\n\t[REDACTED];",
            ),
            (
                "ALTER ROLE u PASSWORD --\r\n/* x */ -- y\n$$hunter2$$",
                "ALTER ROLE u PASSWORD --\r\n/* x */ -- y\n[REDACTED]",
            ),
            (
                "SET PASSWORD FOR u@localhost = 'hunter2';",
                "SET PASSWORD FOR u@localhost = [REDACTED];",
            ),
            (
                "SET PASSWORD FOR 'u'@'%' = PASSWORD('hunter2');",
                "SET PASSWORD FOR 'u'@'%' = PASSWORD([REDACTED]);",
            ),
            ("SET PASSWORD = 'hunter2';", "SET PASSWORD = [REDACTED];"),
            (
                "set password for `u`@`%` = \"hunter2\" replace 'old1';",
                "set password for `u`@`%` = [REDACTED] replace [REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED BY \"hunter2\";",
                "CREATE USER u IDENTIFIED BY [REDACTED];",
            ),
            // Printed escaped: a `Debug` print, JSON in a log line.
            (
                r#"Error: "ALTER USER u PASSWORD \"hunter2\\\"x\" LOGIN""#,
                r#"Error: "ALTER USER u PASSWORD [REDACTED] LOGIN""#,
            ),
            (
                r#"log: {"sql":"CREATE USER u IDENTIFIED BY \"hunter2\""} done"#,
                r#"log: {"sql":"CREATE USER u IDENTIFIED BY [REDACTED]"} done"#,
            ),
        ];
        for (input, want) in cases {
            redacted_everywhere(input, want);
        }
        // Dollar quotes, introducers, comments and `=` outside a password's place stay.
        for plain in [
            "CREATE USER u; SELECT $$x$$, $a$y$a$, a$b$c FROM t WHERE n = $1",
            "SELECT _utf8mb4'x' -- password\n 'y'",
            "CREATE USER u -- it's\n; SELECT 'a' # by\n 'b'",
            "SET NAMES 'utf8mb4'; SET @a = 'b'; UPDATE t SET a = 'b'",
        ] {
            assert_eq!(sql(plain), plain);
        }
    }

    /// Found by review: a password given as the value of a sensitive column in an `INSERT`
    /// (`… (name, password) VALUES ('ann', '…')`, each row of a multi-row `VALUES`) was stored
    /// as it came; an `UPDATE … SET password = '…'` is a pair the pair rules read.
    #[test]
    fn passwords_in_the_place_of_a_sensitive_column() {
        let cases = [
            (
                "INSERT INTO users (name, password) VALUES ('ann', 'hunter2');",
                "INSERT INTO users (name, password) VALUES ('ann', [REDACTED]);",
            ),
            (
                "insert into \"app\".\"users\" (\"name\", `Db-Password`, [api_key], age) values\n  ('ann', crypt('hunter2', gen_salt('bf')), 'k(1', 3),\n  ('bob', 'x,y', $$k)2$$, 4) ON CONFLICT DO NOTHING;",
                "insert into \"app\".\"users\" (\"name\", `Db-Password`, [api_key], age) values\n  ('ann', [REDACTED], [REDACTED], 3),\n  ('bob', [REDACTED], [REDACTED], 4) ON CONFLICT DO NOTHING;",
            ),
            (
                "INSERT IGNORE users(pin,n) VALUE (1234, 'a'), ROW(5678, 'b')",
                "INSERT IGNORE users(pin,n) VALUE ([REDACTED], 'a'), ROW([REDACTED], 'b')",
            ),
            (
                "UPDATE users SET password = 'hunter2' WHERE id = 1;",
                "UPDATE users SET password = [REDACTED] WHERE id = 1;",
            ),
        ];
        for (input, want) in cases {
            redacted_everywhere(input, want);
        }
        // No sensitive column, a placeholder, `NULL` or `DEFAULT` in its place, or no `INSERT`.
        for plain in [
            "INSERT INTO users (name, age) VALUES ('ann', 3), ('bob', 4);",
            "INSERT INTO users (name, password) VALUES (?, ?), ($1, $2), (:n, :p), (NULL, DEFAULT)",
            "SELECT f (password) VALUES ('a')",
            "INSERT INTO users (password) SELECT p FROM t WHERE n = 'ann'",
        ] {
            assert_eq!(sql(plain), plain);
        }
    }

    /// Found by review: a comment in an `INSERT`'s column list, between its `)` and `VALUES`,
    /// or inside a row (`/* ) */` holding a closer) stopped the column matching, and the
    /// password in the sensitive column's place was stored.
    #[test]
    fn comments_inside_an_insert_keep_no_password() {
        for (input, want) in [
            (
                "INSERT INTO users (name, password) -- from the form\nVALUES ('ann', 'hunter2')",
                "INSERT INTO users (name, password) -- from the form\nVALUES ('ann', [REDACTED])",
            ),
            (
                "INSERT INTO users (name, /* hashed later */ password) VALUES ('ann', 'hunter2')",
                "INSERT INTO users (name, /* hashed later */ password) VALUES ('ann', [REDACTED])",
            ),
            (
                "INSERT INTO users (name, password) /* v2 */ VALUES ('ann', 'hunter2')",
                "INSERT INTO users (name, password) /* v2 */ VALUES ('ann', [REDACTED])",
            ),
            (
                "INSERT INTO users (name, password) VALUES ('ann', /* ) */ 'hunter2')",
                "INSERT INTO users (name, password) VALUES ('ann', /* ) */ [REDACTED])",
            ),
            (
                "INSERT INTO users (name, password) VALUES ('ann', 'hunter2' -- )\n), ('bob', 'hunter3')",
                "INSERT INTO users (name, password) VALUES ('ann', [REDACTED]\n), ('bob', [REDACTED])",
            ),
        ] {
            assert_eq!(sql(input), want, "{input}");
        }
        // A comment never closed runs to the end: nothing after it is a value.
        let plain = "INSERT INTO users (name, password) VALUES ('ann', /* x";
        assert_eq!(sql(plain), plain);
    }

    /// Found by review: in a JSON string a password in escaped double quotes (`\"…\"`, as
    /// MySQL reads them without `ANSI_QUOTES`), in dollar quotes, after a line comment or in a
    /// sensitive column's place, and in a form's value in dollar quotes or a column's place,
    /// was stored as it came: the look that sends a string to the text rules missed them.
    #[test]
    fn new_forms_in_json_strings_and_form_values() {
        let redact = |ct: &str, body: &str| {
            let input = BodyInput::new(Some(ct), body.as_bytes());
            Redactor::default().redact_body(&input).unwrap_or_default()
        };
        let json = "application/json";
        let form = "application/x-www-form-urlencoded";
        let cases = [
            (
                json,
                r#"{"sql":"ALTER USER u PASSWORD \"hunter2\""}"#,
                r#"{"sql":"ALTER USER u PASSWORD [REDACTED]"}"#,
            ),
            (
                json,
                r#"{"sql":"create user u IdentiFied by \u0027hunter2\u0027","n":"insert into t (PIN) Values (1)"}"#,
                r#"{"sql":"create user u IdentiFied by [REDACTED]","n":"insert into t (PIN) Values ([REDACTED])"}"#,
            ),
            (
                json,
                r#"{"sql":"ALTER ROLE u password $$hunter2$$"}"#,
                r#"{"sql":"ALTER ROLE u password [REDACTED]"}"#,
            ),
            (
                json,
                r#"{"sql":"CREATE USER u identified BY -- note\n _utf8mb4'hunter2'"}"#,
                r#"{"sql":"CREATE USER u identified BY -- note\n _utf8mb4[REDACTED]"}"#,
            ),
            (
                json,
                r#"{"sql":"SET PASSWORD FOR u@localhost = 'hunter2'"}"#,
                r#"{"sql":"SET PASSWORD FOR u@localhost = [REDACTED]"}"#,
            ),
            (
                json,
                r#"{"sql":"INSERT INTO users (name, password) VALUES ('ann', 'hunter2')"}"#,
                r#"{"sql":"INSERT INTO users (name, password) VALUES ('ann', [REDACTED])"}"#,
            ),
            (
                json,
                r#"{"sql":"INSERT INTO users (pin) values (1234)"}"#,
                r#"{"sql":"INSERT INTO users (pin) values ([REDACTED])"}"#,
            ),
            (
                form,
                "q=ALTER+ROLE+u+PASSWORD+%24%24hunter2%24%24&n=1",
                "q=ALTER+ROLE+u+PASSWORD+[REDACTED]&n=1",
            ),
            (
                form,
                "q=INSERT+INTO+users+(name,password)+VALUES+(%27ann%27,%27hunter2%27)&n=1",
                "q=INSERT+INTO+users+(name,password)+VALUES+('ann',[REDACTED])&n=1",
            ),
        ];
        for (ct, body, want) in cases {
            assert_eq!(redact(ct, body), want, "{body}");
        }
        for (ct, body) in [
            (json, r#"{"note":"he said \"hi\" (twice) for $5"}"#),
            (form, "q=SELECT+%24%24x%24%24+(a)&n=1"),
        ] {
            assert_eq!(redact(ct, body), body);
        }
    }

    /// Found by review: Oracle's unquoted password (`IDENTIFIED BY hunter2`, the old one after
    /// `REPLACE` too) and MySQL's hex number (`IDENTIFIED BY 0x…`) were stored as they came.
    #[test]
    fn unquoted_passwords_and_hex_numbers() {
        let cases = [
            (
                "CREATE USER u IDENTIFIED BY 0x68756e74657232;",
                "CREATE USER u IDENTIFIED BY [REDACTED];",
            ),
            (
                "CREATE USER u IDENTIFIED BY hunter2;",
                "CREATE USER u IDENTIFIED BY [REDACTED];",
            ),
            (
                "ALTER USER u IDENTIFIED BY hunter2",
                "ALTER USER u IDENTIFIED BY [REDACTED]",
            ),
            (
                "alter user scott identified by tiger replace lion;",
                "alter user scott identified by [REDACTED] replace [REDACTED];",
            ),
            (
                "ALTER USER u IDENTIFIED BY \"new\" REPLACE old1;",
                "ALTER USER u IDENTIFIED BY [REDACTED] REPLACE [REDACTED];",
            ),
            (
                "CREATE USER IF NOT EXISTS 'u'@'%' IDENTIFIED WITH caching_sha2_password BY 0x6869;",
                "CREATE USER IF NOT EXISTS 'u'@'%' IDENTIFIED WITH caching_sha2_password BY [REDACTED];",
            ),
            (
                "CREATE USER c##app IDENTIFIED BY /* new */ Hunt#er2$ DEFAULT TABLESPACE users;",
                "CREATE USER c##app IDENTIFIED BY /* new */ [REDACTED] DEFAULT TABLESPACE users;",
            ),
            (
                "GRANT CONNECT, RESOURCE TO scott IDENTIFIED BY tiger;",
                "GRANT CONNECT, RESOURCE TO scott IDENTIFIED BY [REDACTED];",
            ),
            (
                "CREATE DATABASE LINK l CONNECT TO scott IDENTIFIED BY tiger USING 'db';",
                "CREATE DATABASE LINK l CONNECT TO scott IDENTIFIED BY [REDACTED] USING 'db';",
            ),
            (
                "SET ROLE admin IDENTIFIED BY\n  s3cret;",
                "SET ROLE admin IDENTIFIED BY\n  [REDACTED];",
            ),
            (
                "ORA-28007: the password cannot be reused: ALTER USER x IDENTIFIED BY P@ss!1 ;",
                "ORA-28007: the password cannot be reused: ALTER USER x IDENTIFIED BY [REDACTED] ;",
            ),
        ];
        for (input, want) in cases {
            redacted_everywhere(input, want);
        }
        // Keywords, prefixes, introducers and placeholders after `BY`, and prose.
        for plain in [
            "CREATE USER u IDENTIFIED BY PASSWORD NULL",
            "CREATE USER u IDENTIFIED BY VALUES NULL; ALTER USER u IDENTIFIED BY RANDOM PASSWORD",
            "CREATE USER u IDENTIFIED EXTERNALLY; ALTER USER v IDENTIFIED GLOBALLY",
            "CREATE USER u IDENTIFIED BY :pw; ALTER USER v IDENTIFIED BY ?",
            "CREATE USER u IDENTIFIED WITH",
            "CREATE USER u IDENTIFIED BY /* x */ ",
            "Each user is identified by their email address.",
            "A user identified by email\nThe role is identified by name",
            "users are identified by a token; the user is identified by tokens",
            "we want to be identified by name",
        ] {
            assert_eq!(sql(plain), plain);
            assert_eq!(Redactor::default().redact_error(plain), plain);
        }
        assert_eq!(
            sql("CREATE USER u IDENTIFIED BY PASSWORD '*6BB4837EB743';"),
            "CREATE USER u IDENTIFIED BY PASSWORD [REDACTED];"
        );
        assert_eq!(
            sql("CREATE USER u IDENTIFIED BY X'6869' REPLACE _utf8mb4 'old1';"),
            "CREATE USER u IDENTIFIED BY X[REDACTED] REPLACE _utf8mb4 [REDACTED];"
        );
        // After a line comment of any length.
        let long = "x".repeat(300);
        assert_eq!(
            sql(&format!("ALTER USER u IDENTIFIED BY -- {long}\n hunter2;")),
            format!("ALTER USER u IDENTIFIED BY -- {long}\n [REDACTED];")
        );
    }

    /// Found by review: a quoted password after `IDENTIFIED BY` was looked for only back from
    /// its quote: a database link's (`CONNECT TO u IDENTIFIED BY "…"`, a statement naming no
    /// user) and one after a `/* … */` comment longer than 256 bytes were kept.
    #[test]
    fn quoted_passwords_found_forward_from_identified() {
        let long = "x".repeat(300);
        for (input, want) in [
            (
                "CREATE DATABASE LINK l CONNECT TO scott IDENTIFIED BY \"tiger\" USING 'db';"
                    .to_owned(),
                "CREATE DATABASE LINK l CONNECT TO scott IDENTIFIED BY [REDACTED] USING 'db';"
                    .to_owned(),
            ),
            (
                format!("ALTER USER u IDENTIFIED BY /* {long} */ 'hunter2';"),
                format!("ALTER USER u IDENTIFIED BY /* {long} */ [REDACTED];"),
            ),
        ] {
            assert_eq!(sql(&input), want);
            assert_eq!(Redactor::default().redact_error(&input), want);
        }
    }

    /// Found by review: an unquoted password in a JSON string or a form's value was kept: the
    /// look that sends such a string to the text rules wanted a quote, `$` or `(` in it.
    #[test]
    fn unquoted_passwords_in_json_strings_and_form_values() {
        let redact = |ct: &str, body: &str| {
            let input = BodyInput::new(Some(ct), body.as_bytes());
            Redactor::default().redact_body(&input).unwrap_or_default()
        };
        let json = "application/json";
        let form = "application/x-www-form-urlencoded";
        for (ct, body, want) in [
            (
                json,
                r#"{"sql":"ALTER USER scott IDENTIFIED BY tiger","n":1}"#,
                r#"{"sql":"ALTER USER scott IDENTIFIED BY [REDACTED]","n":1}"#,
            ),
            (
                json,
                r#"{"sql":"CREATE USER u\nIDENTIFIED BY\n 0x6869;"}"#,
                r#"{"sql":"CREATE USER u\nIDENTIFIED BY\n [REDACTED];"}"#,
            ),
            (
                form,
                "q=ALTER+USER+scott+IDENTIFIED+BY+tiger&n=1",
                "q=ALTER+USER+scott+IDENTIFIED+BY+[REDACTED]&n=1",
            ),
            // The shortest statement looked at (`SHORTEST_UNQUOTED`).
            (
                json,
                r#"{"q":"USER,u IDENTIFIED BY x"}"#,
                r#"{"q":"USER,u IDENTIFIED BY [REDACTED]"}"#,
            ),
            (
                form,
                "q=USER,u+IDENTIFIED+BY+x",
                "q=USER,u+IDENTIFIED+BY+[REDACTED]",
            ),
        ] {
            assert_eq!(redact(ct, body), want, "{body}");
        }
        for (ct, body) in [
            (
                json,
                r#"{"note":"users are identified by email","f":"Springfield"}"#,
            ),
            (form, "q=identified+by+name&n=1"),
        ] {
            assert_eq!(redact(ct, body), body);
        }
    }

    /// Found by review: a quote glued to its keyword (`IDENTIFIED BY'x'`, `PASSWORD'x'`) was
    /// taken for the closing quote of a string, and the password was stored.
    #[test]
    fn quotes_glued_to_their_keyword() {
        let cases = [
            (
                "CREATE USER u IDENTIFIED BY'hunter2';",
                "CREATE USER u IDENTIFIED BY[REDACTED];",
            ),
            (
                "ALTER ROLE r PASSWORD'hunter2' LOGIN;",
                "ALTER ROLE r PASSWORD[REDACTED] LOGIN;",
            ),
            (
                "ALTER USER u IDENTIFIED BY 'a' REPLACE\"old1\";",
                "ALTER USER u IDENTIFIED BY [REDACTED] REPLACE[REDACTED];",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sql(input), want, "{input}");
            assert_eq!(Redactor::default().redact_error(input), want, "{input}");
        }
        // A quote glued to a keyword that closes a string stays one.
        for plain in [
            "SELECT 'user password' FROM t WHERE a = 'b'",
            "CREATE USER u COMMENT 'set by' ; SELECT 'x'",
            "GRANT ALL TO u; SELECT \"role password\" FROM t",
        ] {
            assert_eq!(sql(plain), plain);
        }
    }

    /// Found by review: a `-- …` or `# …` line comment longer than 256 bytes between a keyword
    /// and its string hid the password: its start was looked for only 256 bytes back.
    #[test]
    fn long_line_comments_hide_no_password() {
        let long = "x".repeat(300);
        for (input, want) in [
            (
                format!("CREATE USER u IDENTIFIED BY -- {long}\n 'hunter2';"),
                format!("CREATE USER u IDENTIFIED BY -- {long}\n [REDACTED];"),
            ),
            (
                format!("CREATE USER u IDENTIFIED # {long}\n BY 'hunter2';"),
                format!("CREATE USER u IDENTIFIED # {long}\n BY [REDACTED];"),
            ),
            (
                format!("ALTER ROLE r PASSWORD -- {long}\n-- {long}\n'hunter2';"),
                format!("ALTER ROLE r PASSWORD -- {long}\n-- {long}\n[REDACTED];"),
            ),
        ] {
            assert_eq!(sql(&input), want);
            assert_eq!(Redactor::default().redact_error(&input), want);
        }
        let plain = format!("CREATE USER u; SELECT 'a' -- by {long}\n 'b'");
        assert_eq!(sql(&plain), plain);
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
            "$$",
            "$a$",
            "user password $",
            "by $x$ ",
            "-- '\n",
            "#\n'",
            "identified -- x\n by # y\n '",
            "set password = '",
            "set password for 'u'@'%' = ",
            "_x '",
            "password \\\"",
            "password \\\\\\'",
            "user password \\\"\\\\",
            "insert into t (password) values ('a', ",
            "insert into t (password) values (",
            "insert into \"t\".`u`.[v] (password, ",
            "into t (a,",
            "(password) values ((",
            "values (password) ",
            "identified by'",
            "user password'x",
            "alter user u identified by ",
            "create user if not exists u identified with 'p' by 0x1 replace ",
            "create user u identified by a.identified ",
            "grant to u identified by -- x\n",
            "role, u identified # \n by ",
        ]
        .into_iter()
        .map(String::from)
        .chain(
            // Long lines, each read back to its start when a line comment may end on it.
            ["by -- ", "identified # ", "password ", "'-- "]
                .map(|head| format!("{head}{}\n '", "x".repeat(300))),
        ) {
            let text = unit.repeat((256 << 10) / unit.len());
            let keys = KeyRules::new(
                DEFAULT_KEYS.iter().map(|k| Box::from(*k)).collect(),
                DEFAULT_KEY_SUFFIXES.iter().map(|k| Box::from(*k)).collect(),
                Vec::new(),
            );
            let started = std::time::Instant::now();
            let _ = super::password_values(&text, &keys, &mut String::new());
            let took = started.elapsed();
            assert!(took.as_secs() < 2, "{unit:?}: {took:?}");
        }
    }
}
