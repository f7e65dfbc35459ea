//! Secrets that source, configuration files and interpreters' prints give a key without the
//! `key=value` or `key: value` shape the pair rules read: an index assigned to
//! (`$config['db']['password'] = '…'`, `os.environ["DB_PASSWORD"] = "…"`), PHP's
//! `define('DB_PASSWORD', '…')` and any call that passes a sensitive key and its value as its
//! two arguments (`os.environ.setdefault("DB_PASSWORD", "…")`), PHP's `print_r` and
//! `var_dump` (`[password] => …`), Scala's `password -> …`, a `.netrc` (`machine h login a
//! password …`) and a Java properties line whose separator is a space (`db.password hunter2`,
//! and a Dockerfile's `ENV DB_PASSWORD …`).

use std::sync::LazyLock;

use memchr::memmem::Finder;
use regex::Regex;

use super::keys::KeyRules;
use super::printed::{blanks, string_end};
use super::text::free_value_len;

/// An index by a quoted or plain key, then `=` (an assignment: `$config['password'] = …`,
/// `ENV['DB_PASSWORD'] = …`) or `=>` (PHP's `print_r`, `[password] => …`, and `var_dump`,
/// `["password"]=>⏎  string(7) "…"`, whose type and length before the value are skipped).
static INDEXED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"\[[ \t]*(?:"([^"\n\]]+)"|'([^'\n\]]+)'|([A-Za-z0-9_.\-]+))[ \t]*\][ \t]*(=>|=)(?:[ \t]*\r?\n?[ \t]*string\(\d+\))?[ \t]*"#,
    )
    .expect("indexed pattern is valid")
});

/// PHP's `define('NAME', …)`, WordPress's way to set `DB_PASSWORD` and `AUTH_KEY`.
static DEFINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\bdefine[ \t]*\([ \t]*(?:"([^"\n]+)"|'([^'\n]+)')[ \t]*,[ \t]*"#)
        .expect("define pattern is valid")
});

/// A Scala map's `key -> value`: the key quoted (`"password" -> "…"`) or plain after the `(`
/// or `,` of its map (`Map(password -> …)`), as prose's arrows (`password -> reset`) follow
/// neither.
static ARROW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:"([A-Za-z0-9_.\-]+)"|'([A-Za-z0-9_.\-]+)'|[(,][ \t]*([A-Za-z0-9_.\-]+))[ \t]*->[ \t]*"#,
    )
    .expect("arrow pattern is valid")
});

/// A `.netrc` entry's start: `machine`, its host, then one of its tokens, on a line or over
/// several.
static NETRC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bmachine\s+\S+\s+(?:login|password|account)\s").expect("netrc pattern is valid")
});

/// A `.netrc` password (or account, which some tools read as one) after its entry's start.
static NETRC_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\s)(?:password|account)[ \t]+(\S)").expect("netrc password is valid")
});

/// The spans of the values of `text`'s sensitive assignments, prints and `.netrc` passwords,
/// in order; they may overlap. Each pattern runs only when a cheap look finds what it needs
/// (`[`, `define`, `->`, `machine`, a line that starts with a dotted word).
pub(super) fn assigned_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let keyed = |re: &Regex, spans: &mut Vec<(usize, usize)>, keybuf: &mut String| {
        let defines = std::ptr::eq(re, &*DEFINE);
        for caps in re.captures_iter(text) {
            let (Some(all), Some(key)) = (caps.get(0), caps.get(1).or(caps.get(2)).or(caps.get(3)))
            else {
                continue;
            };
            // `==` compares, it assigns nothing. A key inside a value already taken is the
            // value's: reading its own value again would read a line once a key.
            if all.as_str().ends_with('=') && bytes.get(all.end()) == Some(&b'=')
                || spans.last().is_some_and(|&(_, end)| all.start() < end)
            {
                continue;
            }
            if key.len() <= 64
                && (keys.is_sensitive(key.as_str(), keybuf)
                    || defines && is_wordpress_salt(key.as_str()))
            {
                let len = free_value_len(&text[all.end()..]);
                if len > 0 {
                    spans.push((all.end(), all.end() + len));
                }
            }
        }
    };
    if indexes_assigned(bytes) {
        keyed(&INDEXED, &mut spans, keybuf);
    }
    if memchr::memmem::find(bytes, b"define").is_some() {
        keyed(&DEFINE, &mut spans, keybuf);
    }
    if memchr::memmem::find(bytes, b"->").is_some() {
        keyed(&ARROW, &mut spans, keybuf);
    }
    if memchr::memmem::find(bytes, b"machine").is_some()
        && let Some(entry) = NETRC.find(text)
    {
        for caps in NETRC_PASSWORD.captures_iter(&text[entry.start()..]) {
            if let Some(value) = caps.get(1) {
                let start = entry.start() + value.start();
                let len = bytes[start..]
                    .iter()
                    .position(u8::is_ascii_whitespace)
                    .unwrap_or(bytes.len() - start);
                spans.push((start, start + len));
            }
        }
    }
    call_values(text, keys, keybuf, &mut spans);
    property_values(text, keys, keybuf, &mut spans);
    spans.sort_unstable();
    spans
}

/// The second argument of each call whose first is a quoted sensitive key, its `(` glued to
/// the function's name, whatever the name (`os.environ.setdefault("DB_PASSWORD", "…")`, as a
/// Python traceback prints its source line; `xhr.setRequestHeader('X-Api-Key', '…')`,
/// `std::env::set_var(…)`, `os.Setenv(…)`, `System.setProperty(…)`,
/// `localStorage.setItem(…)`): a quoted string (quotes escaped once, `\"…\"`, count), its
/// quotes with it, when it is the call's last argument (`re.sub("password", "***", s)` keeps
/// its items, as a tuple of more than two does) or never closes on its line. An unquoted
/// one (a variable, `getenv(…)`) is no secret's text and stays, as a call of one argument
/// (`getenv("DB_PASSWORD")`) does. A `(` after a space is a tuple's, read by the printed
/// objects' rule (see [`printed`](super::printed)).
///
/// Read by hand at each `(` after a name's last character: a key is looked at up to 64
/// bytes, and a `(` inside a string already read is not looked at again, so the scan stays
/// linear.
fn call_values(text: &str, keys: &KeyRules, keybuf: &mut String, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut read_to = 0;
    for at in memchr::memchr_iter(b'(', bytes) {
        if at < read_to
            || at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
        {
            continue;
        }
        let first = gap_end(bytes, at + 1);
        let Some((key, key_end)) = quoted_key(text, first) else {
            continue;
        };
        let comma = key_end + blanks(&bytes[key_end..]);
        if bytes.get(comma) != Some(&b',') {
            continue;
        }
        let second = gap_end(bytes, comma + 1);
        let Some(end) = string_end(bytes, second) else {
            continue;
        };
        read_to = end;
        // A `,` before the `)` is a trailing one (as Black writes a broken call's last).
        let after = end + blanks(&bytes[end..]);
        let last =
            bytes.get(after) != Some(&b',') || bytes.get(gap_end(bytes, after + 1)) == Some(&b')');
        if last && keys.is_sensitive(key, keybuf) {
            spans.push((second, end));
        }
    }
}

/// Where the blanks at `at` end, and one line break after them with the blanks after it
/// (Black and Prettier break a call too long for its line after its `(` or a `,`).
fn gap_end(bytes: &[u8], at: usize) -> usize {
    let mut at = at + blanks(&bytes[at..]);
    let line_break = match &bytes[at..] {
        [b'\r', b'\n', ..] => 2,
        [b'\n', ..] => 1,
        _ => 0,
    };
    if line_break > 0 {
        at += line_break;
        at += blanks(&bytes[at..]);
    }
    at
}

/// The key quoted at `at` (`"…"`, `'…'`, or escaped once, `\"…\"`), of up to 64 bytes on one
/// line, and where it ends past its closing quote.
fn quoted_key(text: &str, at: usize) -> Option<(&str, usize)> {
    const LONGEST_KEY: usize = 64;
    let bytes = text.as_bytes();
    let quote: &[u8] = match bytes.get(at..)? {
        [b'\\', q @ (b'"' | b'\''), ..] => &[b'\\', *q],
        [q @ (b'"' | b'\''), ..] => std::slice::from_ref(q),
        _ => return None,
    };
    let start = at + quote.len();
    let len = bytes[start..]
        .iter()
        .take(LONGEST_KEY + 1)
        .position(|&b| b == quote[0] || matches!(b, b'\n' | b'\r'))?;
    let end = start + len;
    (len > 0 && bytes[end..].starts_with(quote)).then(|| (&text[start..end], end + quote.len()))
}

/// Whether a constant `define` sets is one of WordPress's keys and salts (`AUTH_KEY`,
/// `SECURE_AUTH_SALT`, `NONCE_KEY`): secrets, whose names the key rules do not take for
/// ones, as `_key` ends many names that are not.
fn is_wordpress_salt(name: &str) -> bool {
    let ends_with = |suffix: &str| {
        name.len() > suffix.len()
            && name.is_char_boundary(name.len() - suffix.len())
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    ends_with("_KEY") || ends_with("_SALT")
}

/// Whether `bytes` holds a `]` then (after spaces) a `=`: an index assigned to or printed by
/// `print_r`, a look before [`INDEXED`] runs.
fn indexes_assigned(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b']', bytes).any(|at| {
        bytes[at + 1..]
            .iter()
            .take(8)
            .find(|&&b| b != b' ' && b != b'\t')
            == Some(&b'=')
    })
}

/// How a directive's value ends (see [`DIRECTIVES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// At the line's end: a Dockerfile's `ENV` value may hold spaces.
    Line,
    /// At the word's end, or the quote that closes a quoted one (its quotes kept): a command
    /// line's (`aws configure set k v --profile p` keeps `--profile p`), Apache's.
    Word,
    /// As [`Ends::Word`], a `;` that ends the word kept: nginx's directives.
    Semicolon,
}

/// Configuration and commands that give a key and then its value, a space apart, at a line's
/// start (after its indentation and a shell's or redis-cli's prompt): the words before the
/// key, in any case (`*` any of [`HEADER_ACTIONS`]), and how the value ends. The key is
/// sensitive by the key rules, whole or by its last part after a `.` or `:`
/// (`default.aws_secret_access_key`, .NET's `Db:Password`).
const DIRECTIVES: &[(&[&str], Ends)] = &[
    // A Dockerfile's `ENV` in its older form, a space for the `=` (`ENV DB_PASSWORD hunter2`).
    (&["env"], Ends::Line),
    // Apache's `SetEnv`, csh's `setenv`, Windows' `setx`.
    (&["setenv"], Ends::Word),
    (&["setx"], Ends::Word),
    // Apache's mod_headers: `RequestHeader set Authorization "…"`, `Header always set …`.
    (&["requestheader", "*"], Ends::Word),
    (&["header", "*"], Ends::Word),
    (&["header", "always", "*"], Ends::Word),
    (&["header", "onsuccess", "*"], Ends::Word),
    // nginx: `proxy_set_header X-Api-Key abc123;`, `fastcgi_param DB_PASSWORD x;`.
    (&["proxy_set_header"], Ends::Semicolon),
    (&["grpc_set_header"], Ends::Semicolon),
    (&["add_header"], Ends::Semicolon),
    (&["fastcgi_param"], Ends::Semicolon),
    (&["uwsgi_param"], Ends::Semicolon),
    (&["scgi_param"], Ends::Semicolon),
    // `aws configure set aws_secret_access_key …`, Redis' `CONFIG SET requirepass …`,
    // `dotnet user-secrets set "Db:Password" …`.
    (&["aws", "configure", "set"], Ends::Word),
    (&["config", "set"], Ends::Word),
    (&["dotnet", "user-secrets", "set"], Ends::Word),
];

/// The actions of Apache's `Header` and `RequestHeader` that give a value.
const HEADER_ACTIONS: &[&str] = &["set", "append", "add", "merge", "setifempty"];

/// Keys that are directives of their own, their value after a space: Redis' configuration
/// (`requirepass hunter2`, `masterauth hunter2`).
const KEY_DIRECTIVES: &[&str] = &["requirepass", "masterauth"];

/// The word at `at` (letters, digits, `_`, `-`, up to `end`) and where it ends.
fn word_at(bytes: &[u8], at: usize, end: usize) -> usize {
    let mut i = at;
    while i < end && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-')) {
        i += 1;
    }
    i
}

/// `at` past the spaces and tabs from it, up to `end`.
fn past_blanks(bytes: &[u8], at: usize, end: usize) -> usize {
    let mut i = at;
    while i < end && matches!(bytes[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// Where the words of `directive` (see [`DIRECTIVES`]) end when the line's words from `at`
/// are they, with the blanks after them.
fn directive_end(bytes: &[u8], at: usize, end: usize, directive: &[&str]) -> Option<usize> {
    let mut at = at;
    for word in directive {
        let word_end = word_at(bytes, at, end);
        let written = &bytes[at..word_end];
        let matches = if *word == "*" {
            HEADER_ACTIONS
                .iter()
                .any(|action| action.as_bytes().eq_ignore_ascii_case(written))
        } else {
            word.as_bytes().eq_ignore_ascii_case(written)
        };
        let after = past_blanks(bytes, word_end, end);
        if !matches || after == word_end {
            return None;
        }
        at = after;
    }
    Some(at)
}

/// `at` past a shell's or redis-cli's prompt at a line's start (`$ `, `> `,
/// `127.0.0.1:6379> `, `C:\> `), or `at` when there is none.
fn past_prompt(bytes: &[u8], at: usize, end: usize) -> usize {
    let word_end = bytes[at..end]
        .iter()
        .position(|b| matches!(b, b' ' | b'\t'))
        .map_or(end, |len| at + len);
    let after = past_blanks(bytes, word_end, end);
    match bytes[at..word_end].last() {
        Some(b'$' | b'>') if after > word_end => after,
        _ => at,
    }
}

/// Where a directive's value that starts at `at` ends, on its line that ends at `end`.
fn directive_value_end(bytes: &[u8], at: usize, end: usize, ends: Ends) -> usize {
    if ends == Ends::Line {
        return end;
    }
    let word_end = bytes[at..end]
        .iter()
        .position(|b| matches!(b, b' ' | b'\t'))
        .map_or(end, |len| at + len);
    let value_end = super::mysql::value_end(bytes, at, word_end).min(end);
    if ends == Ends::Semicolon && value_end > at + 1 && bytes[value_end - 1] == b';' {
        value_end - 1
    } else {
        value_end
    }
}

/// Whether a directive's key is sensitive: whole, or by its last part after a `.` or `:`.
fn is_sensitive_directive_key(key: &str, keys: &KeyRules, keybuf: &mut String) -> bool {
    key.len() <= 64
        && (keys.is_sensitive(key, keybuf)
            || key
                .rsplit(['.', ':'])
                .next()
                .is_some_and(|last| last.len() < key.len() && keys.is_sensitive(last, keybuf)))
}

/// The value of the line's directive (see [`DIRECTIVES`] and [`KEY_DIRECTIVES`]) when it gives
/// a sensitive key one: its span, from `at`, the line's first word.
fn directive_value(
    bytes: &[u8],
    text: &str,
    at: usize,
    end: usize,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Option<(usize, usize)> {
    // Most lines start with no directive's first letter (`a c d e f g h m p r s u`).
    if !matches!(
        bytes[at].to_ascii_lowercase(),
        b'a' | b'c' | b'd' | b'e' | b'f' | b'g' | b'h' | b'm' | b'p' | b'r' | b's' | b'u'
    ) {
        return None;
    }
    let first_end = word_at(bytes, at, end);
    let first = &bytes[at..first_end];
    if KEY_DIRECTIVES
        .iter()
        .any(|key| key.as_bytes().eq_ignore_ascii_case(first))
    {
        let value = past_blanks(bytes, first_end, end);
        return (value > first_end && value < end).then(|| {
            let value_end = directive_value_end(bytes, value, end, Ends::Word);
            unquoted(bytes, value, value_end, Ends::Word)
        });
    }
    let (key_start, ends) = DIRECTIVES.iter().find_map(|&(directive, ends)| {
        directive_end(bytes, at, end, directive).map(|key| (key, ends))
    })?;
    keyed_value(bytes, text, key_start, end, ends, keys, keybuf)
}

/// The value a directive gives its key, which starts at `key_start`, when the key is
/// sensitive: its span, on the line that ends at `end`.
fn keyed_value(
    bytes: &[u8],
    text: &str,
    key_start: usize,
    end: usize,
    ends: Ends,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Option<(usize, usize)> {
    // The key, quoted or not (`"X-Api-Key"`, `"Db:Password"`).
    let quote = matches!(bytes.get(key_start), Some(b'"' | b'\'')).then(|| bytes[key_start]);
    let name_start = key_start + usize::from(quote.is_some());
    let mut key_end = name_start;
    while key_end < end
        && (bytes[key_end].is_ascii_alphanumeric()
            || matches!(bytes[key_end], b'_' | b'-' | b'.' | b':'))
    {
        key_end += 1;
    }
    let mut after_key = key_end;
    if let Some(quote) = quote {
        if bytes.get(key_end) != Some(&quote) {
            return None;
        }
        after_key += 1;
    }
    let value = past_blanks(bytes, after_key, end);
    if value == after_key
        || value >= end
        || (ends == Ends::Line && matches!(bytes[value], b'=' | b':'))
        || !is_sensitive_directive_key(&text[name_start..key_end], keys, keybuf)
    {
        return None;
    }
    Some(unquoted(
        bytes,
        value,
        directive_value_end(bytes, value, end, ends),
        ends,
    ))
}

/// Whether `bytes` may hold one of nginx's [`DIRECTIVES`] (`proxy_set_header`,
/// `fastcgi_param`, …), which nginx reads in small letters only, after a `{` or `;`: a look
/// before the lines are read for one there.
fn may_hold_nginx_directive(bytes: &[u8]) -> bool {
    static NAMES: LazyLock<[Finder<'static>; 2]> =
        LazyLock::new(|| [Finder::new("_header"), Finder::new("_param")]);
    memchr::memchr2(b'{', b';', bytes).is_some()
        && NAMES.iter().any(|name| name.find(bytes).is_some())
}

/// The values nginx's directives (the [`DIRECTIVES`] a `;` ends) give sensitive keys after a
/// `{` or `;` on their line, from `at` to `end` (`location / { proxy_set_header X-Api-Key
/// …; }`, `auth_basic off; fastcgi_param DB_PASSWORD …;`), as a configuration written on one
/// line or `nginx -T` quoted in a log holds them.
fn inline_nginx_values(
    bytes: &[u8],
    text: &str,
    at: usize,
    end: usize,
    keys: &KeyRules,
    keybuf: &mut String,
    spans: &mut Vec<(usize, usize)>,
) {
    let mut at = at;
    while let Some(found) = memchr::memchr2(b'{', b';', &bytes[at..end]) {
        at += found + 1;
        let directive = past_blanks(bytes, at, end);
        if directive >= end {
            return;
        }
        let value = DIRECTIVES
            .iter()
            .filter(|&&(_, ends)| ends == Ends::Semicolon)
            .find_map(|&(words, ends)| {
                let key = directive_end(bytes, directive, end, words)?;
                keyed_value(bytes, text, key, end, ends, keys, keybuf)
            });
        if let Some(span) = value {
            spans.push(span);
            at = at.max(span.1);
        }
    }
}

/// The span of a value from `start` to `end` without its quotes, which a directive's value
/// keeps (`"[REDACTED]";`), but a value to the line's end's.
fn unquoted(bytes: &[u8], start: usize, end: usize, ends: Ends) -> (usize, usize) {
    match bytes[start] {
        quote @ (b'"' | b'\'') if ends != Ends::Line && end > start + 1 => {
            let end = if bytes[end - 1] == quote {
                end - 1
            } else {
                end
            };
            (start + 1, end)
        }
        _ => (start, end),
    }
}

/// A Terraform variable's block named by a sensitive key, read over lines: how deep its
/// braces are open.
#[derive(Debug, Clone, Copy)]
struct VariableBlock {
    depth: usize,
    /// Its `default` is a heredoc (`default = <<EOF`, `<<-EOF`) still open.
    heredoc: Option<Heredoc>,
}

/// A heredoc a sensitive variable's `default` opened: its body goes to the line that is its
/// tag alone (blanks around it, as `<<-` indents it).
#[derive(Debug, Clone, Copy)]
struct Heredoc {
    /// The tag's span (`EOF`).
    tag: (usize, usize),
    /// Where its body starts, once its first line is read.
    body: Option<usize>,
}

impl Heredoc {
    /// Reads the line from `line_start` to `content_end` (its `\r` aside) of the heredoc's
    /// body: at its closing tag pushes the body's span and returns `None`.
    fn line(
        self,
        text: &str,
        line_start: usize,
        content_end: usize,
        spans: &mut Vec<(usize, usize)>,
    ) -> Option<Self> {
        let body = self.body.unwrap_or(line_start);
        if text[line_start..content_end].trim_matches([' ', '\t']) != &text[self.tag.0..self.tag.1]
        {
            return Some(Self {
                body: Some(body),
                ..self
            });
        }
        // The body ends before the line break (and `\r`) before the tag's line.
        let end = text[..line_start.saturating_sub(1)]
            .trim_end_matches('\r')
            .len();
        if body < end {
            spans.push((body, end));
        }
        None
    }
}

/// Whether the line from `at` to `end` opens a Terraform `variable` block whose name is a
/// sensitive key (`variable "db_password" {`): where its `{` is.
fn sensitive_variable(
    bytes: &[u8],
    text: &str,
    at: usize,
    end: usize,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Option<usize> {
    let name = directive_end(bytes, at, end, &["variable"])?;
    let (name_start, name_end) = match bytes.get(name) {
        Some(b'"') => {
            let len = memchr::memchr(b'"', &bytes[name + 1..end])?;
            (name + 1, name + 1 + len)
        }
        _ => (name, word_at(bytes, name, end)),
    };
    let brace = past_blanks(bytes, name_end + usize::from(bytes[name] == b'"'), end);
    (bytes.get(brace) == Some(&b'{')
        && name_end - name_start <= 64
        && keys.is_sensitive(&text[name_start..name_end], keybuf))
    .then_some(brace)
}

/// Reads the part of a sensitive variable's block from `at` to `end` (a line, or the rest
/// of the line after its `{`): a `default = …` at its start loses its value (as a pair's
/// is read); returns the block's depth after it, `None` once it closes.
fn variable_block_line(
    text: &str,
    at: usize,
    end: usize,
    block: VariableBlock,
    spans: &mut Vec<(usize, usize)>,
) -> Option<VariableBlock> {
    let bytes = text.as_bytes();
    let start = past_blanks(bytes, at, end);
    let word_end = word_at(bytes, start, end);
    let mut read_to = start;
    if block.depth == 1 && bytes[start..word_end].eq_ignore_ascii_case(b"default") {
        let equals = past_blanks(bytes, word_end, end);
        if bytes.get(equals) == Some(&b'=') {
            let value = past_blanks(bytes, equals + 1, end);
            // A heredoc (`<<EOF`, `<<-EOF`): its body, on the lines after, goes.
            if bytes[value..end].starts_with(b"<<") {
                let tag_start = value + 2 + usize::from(bytes.get(value + 2) == Some(&b'-'));
                let tag_end = word_at(bytes, tag_start, end);
                if tag_end > tag_start {
                    let heredoc = Heredoc {
                        tag: (tag_start, tag_end),
                        body: None,
                    };
                    return Some(VariableBlock {
                        heredoc: Some(heredoc),
                        ..block
                    });
                }
            }
            let len = free_value_len(&text[value..]);
            if len > 0 {
                spans.push((value, value + len));
                read_to = value + len;
            }
        }
    }
    let mut depth = block.depth;
    for &b in &bytes[read_to.min(end)..end] {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(VariableBlock {
        depth,
        heredoc: None,
    })
}

/// The values of a Java properties file's lines whose key and value a space separates: a
/// dotted key (`db.password`) at the line's start whose last part is sensitive, then spaces,
/// then the value (not a `=` or `:`, a pair's) to the end of the line; and the values of the
/// [`DIRECTIVES`] and [`KEY_DIRECTIVES`] that give a sensitive key one (nginx's also after a
/// `{` or `;` on their line), and a Terraform variable's `default` when the variable's name is
/// a sensitive key (`variable "db_password" { default = "…" }`, over lines too, a heredoc's
/// body whole). Read by hand, a line at a time, as most texts have no such line.
fn property_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
    spans: &mut Vec<(usize, usize)>,
) {
    let bytes = text.as_bytes();
    let mut line_start = 0;
    let mut block: Option<VariableBlock> = None;
    let nginx = may_hold_nginx_directive(bytes);
    while line_start < bytes.len() {
        let line_end =
            memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |len| line_start + len);
        let content_end = if line_end > line_start && bytes[line_end - 1] == b'\r' {
            line_end - 1
        } else {
            line_end
        };
        if let Some(open) = block {
            block = match open.heredoc {
                Some(heredoc) => Some(VariableBlock {
                    heredoc: heredoc.line(text, line_start, content_end, spans),
                    ..open
                }),
                None => variable_block_line(text, line_start, content_end, open, spans),
            };
            line_start = line_end + 1;
            continue;
        }
        let at = past_blanks(bytes, line_start, content_end);
        if at >= content_end {
            line_start = line_end + 1;
            continue;
        }
        let at = past_prompt(bytes, at, content_end);
        let value = directive_value(bytes, text, at, content_end, keys, keybuf);
        if nginx {
            let from = value.map_or(at, |(_, end)| end);
            inline_nginx_values(bytes, text, from, content_end, keys, keybuf, spans);
        }
        if let Some(span) = value {
            spans.push(span);
            line_start = line_end + 1;
            continue;
        }
        if let Some(brace) = sensitive_variable(bytes, text, at, content_end, keys, keybuf) {
            block = variable_block_line(
                text,
                brace + 1,
                content_end,
                VariableBlock {
                    depth: 1,
                    heredoc: None,
                },
                spans,
            );
            line_start = line_end + 1;
            continue;
        }
        let key_start = at;
        let mut at = at;
        while at < content_end
            && at - key_start <= 200
            && (bytes[at].is_ascii_alphanumeric() || matches!(bytes[at], b'_' | b'-' | b'.'))
        {
            at += 1;
        }
        let key = &text[key_start..at];
        let value = past_blanks(bytes, at, content_end);
        if value > at
            && value < content_end
            && !matches!(bytes[value], b'=' | b':')
            && key.contains('.')
            && !key.starts_with('.')
            && !key.ends_with('.')
            && key
                .rsplit('.')
                .next()
                .is_some_and(|last| last.len() <= 64 && keys.is_sensitive(last, keybuf))
        {
            spans.push((value, content_end));
        }
        line_start = line_end + 1;
    }
    // A heredoc the text ends inside (cut) goes to the end.
    if let Some(body) = block.and_then(|open| open.heredoc?.body)
        && body < bytes.len()
    {
        spans.push((body, bytes.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;

    use super::super::redact_plain_text as text;

    /// Found by a probe: secrets assigned to an index, defined, printed by `print_r`,
    /// `var_dump` or Scala, or written in a `.netrc` or a properties file with a space were
    /// stored as they came.
    #[test]
    fn assigned_defined_and_printed_secrets() {
        let cases = [
            (
                "$config['db']['password'] = 'hunter2';",
                "$config['db']['password'] = [REDACTED];",
            ),
            (
                "define('DB_PASSWORD', 'hunter2');",
                "define('DB_PASSWORD', [REDACTED]);",
            ),
            (
                "define( \"AUTH_KEY\", \"hunter2\" );",
                "define( \"AUTH_KEY\", [REDACTED] );",
            ),
            (
                "ENV['DB_PASSWORD'] = 'hunter2'",
                "ENV['DB_PASSWORD'] = [REDACTED]",
            ),
            (
                "os.environ[\"DB_PASSWORD\"] = \"hunter2\"\nx = 1",
                "os.environ[\"DB_PASSWORD\"] = [REDACTED]\nx = 1",
            ),
            (
                "process.env.DB_PASSWORD = 'hunter2';",
                "process.env.DB_PASSWORD = [REDACTED];",
            ),
            (
                "Array\n(\n    [user] => ann\n    [password] => hunter2\n)",
                "Array\n(\n    [user] => ann\n    [password] => [REDACTED]\n)",
            ),
            (
                "array(1) {\n  [\"password\"]=>\n  string(7) \"hunter2\"\n}",
                "array(1) {\n  [\"password\"]=>\n  string(7) [REDACTED]\n}",
            ),
            ("Map(password -> hunter2)", "Map(password -> [REDACTED]"),
            (
                "Map(\"user\" -> \"ann\", \"password\" -> \"hunter2\")",
                "Map(\"user\" -> \"ann\", \"password\" -> [REDACTED])",
            ),
            (
                "machine h login a password hunter2",
                "machine h login a password [REDACTED]",
            ),
            (
                "machine api.heroku.com\n  login a@b\n  password hunter2\n",
                "machine api.heroku.com\n  login a@b\n  password [REDACTED]\n",
            ),
            (
                "db.password hunter2\nx.y 1",
                "db.password [REDACTED]\nx.y 1",
            ),
            (
                "spring.datasource.password   hunter 2\n",
                "spring.datasource.password   [REDACTED]\n",
            ),
            // Found by a probe: a Dockerfile's `ENV` with a space for its `=`.
            (
                "FROM alpine\nENV DB_PASSWORD hunter2XYZ\nENV PORT 8080\n",
                "FROM alpine\nENV DB_PASSWORD [REDACTED]\nENV PORT 8080\n",
            ),
            ("env api_token a b", "env api_token [REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        assert_eq!(
            r.redact_error("[password] => hunter2"),
            "[password] => [REDACTED]"
        );
    }

    /// Found by a probe (L09): a sensitive key and its value passed as a call's two string
    /// arguments, the `(` glued to the function's name, were stored as they came (a Python
    /// traceback prints the call's source line). The tuple rule read only a `(` after a
    /// space, `setdefault ("K", "v")`.
    #[test]
    fn a_call_passing_a_key_and_its_value() {
        let cases = [
            (
                "xhr.setRequestHeader('X-Api-Key', 'ApiKey99xyz');",
                "xhr.setRequestHeader('X-Api-Key', [REDACTED]);",
            ),
            (
                "std::env::set_var(\"API_TOKEN\", \"tok99xyzABC\");",
                "std::env::set_var(\"API_TOKEN\", [REDACTED]);",
            ),
            (
                "os.Setenv(\"DB_PASSWORD\", \"x9secret\")",
                "os.Setenv(\"DB_PASSWORD\", [REDACTED])",
            ),
            (
                "System.setProperty(\"javax.net.ssl.keyStorePassword\", \"x9secret\");",
                "System.setProperty(\"javax.net.ssl.keyStorePassword\", [REDACTED]);",
            ),
            (
                "localStorage.setItem('access_token', 'tok99xyzABC')",
                "localStorage.setItem('access_token', [REDACTED])",
            ),
            // A Python prefix, three quotes, a backquote, a call Black broke over lines.
            (
                "os.environ.setdefault('DB_PASSWORD', b'x9 secret')",
                "os.environ.setdefault('DB_PASSWORD', [REDACTED])",
            ),
            (
                "set_secret(\"token\", \"\"\"a'b\"c\"\"\")",
                "set_secret(\"token\", [REDACTED])",
            ),
            (
                "headers.set('Authorization', `Bearer ${t}`)",
                "headers.set('Authorization', [REDACTED])",
            ),
            (
                "os.environ.setdefault(\n    \"DB_PASSWORD\",\n    \"x9secret\",\n)",
                "os.environ.setdefault(\n    \"DB_PASSWORD\",\n    [REDACTED],\n)",
            ),
            // Never closed on its line: to the line's end.
            (
                "setItem('token', 'tok99 and more\nnext line",
                "setItem('token', [REDACTED]\nnext line",
            ),
            // A key and a value that prose passes so go too.
            (
                "print(\"password\", \"is required\")",
                "print(\"password\", [REDACTED])",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        assert_eq!(
            r.redact_error(
                "Traceback (most recent call last):\n  File \"/app/settings.py\", line 12, in <module>\n    os.environ.setdefault(\"DB_PASSWORD\", \"Hunter2Pass\")\nKeyError: 'HOME'"
            ),
            "Traceback (most recent call last):\n  File \"/app/settings.py\", line 12, in <module>\n    os.environ.setdefault(\"DB_PASSWORD\", [REDACTED])\nKeyError: 'HOME'"
        );
        // In a JSON string, its quotes escaped once.
        let json = super::super::BodyInput::new(
            Some("application/json"),
            br#"{"trace":"File \"a.py\", line 1:\n  os.environ.setdefault(\"DB_PASSWORD\", \"Hunter2Pass\")"}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(
                r#"{"trace":"File \"a.py\", line 1:\n  os.environ.setdefault(\"DB_PASSWORD\", [REDACTED])"}"#
            )
        );
        // One argument, another key, an unquoted value, a third argument, a `(` after no
        // name: they stay.
        for input in [
            "os.getenv(\"DB_PASSWORD\")",
            "os.environ.get('DB_PASSWORD')",
            "os.environ.setdefault(\"DB_HOST\", \"localhost\")",
            "os.Setenv(\"DB_PASSWORD\", pw)",
            "os.environ.setdefault(\"DB_PASSWORD\", os.getenv(\"X\"))",
            "re.sub(\"password\", \"***\", line)",
            "setattr(user, \"password\", None)",
            "a (\"password\" is required, \"see docs\")",
            "f(\"a very long key name that is no key at all and runs past sixty-four bytes of it password\", \"x\")",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }

    /// What only looks like those shapes stays: comparisons, other keys, prose's arrows,
    /// `machine` in prose, a properties line whose key is not sensitive or not dotted.
    #[test]
    fn lookalikes_of_assignments_stay() {
        for input in [
            "if ($config['password'] == $x) {}",
            "$config['db']['host'] = 'h';",
            "define('DB_HOST', 'localhost');",
            "[user] => ann",
            "step 1 -> step 2, then a -> b",
            "reset your password -> click the link",
            "the machine password is rotated",
            "db.host localhost",
            "ENV PATH /usr/bin",
            "ENVIRONMENT password reset",
            "password hunter",
            "Map(user -> ann)",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }

    /// Found by a probe: configuration and commands that give a key its value after a space
    /// (nginx's and Apache's directives, `aws configure set`, Redis' configuration, `setx`,
    /// `dotnet user-secrets set`) and a Terraform variable's `default` named by the variable
    /// were stored as they came.
    #[test]
    fn directives_giving_a_key_its_value() {
        let cases = [
            (
                "location / {\n    proxy_set_header X-Api-Key abc123;\n    proxy_pass http://up;\n}",
                "location / {\n    proxy_set_header X-Api-Key [REDACTED];\n    proxy_pass http://up;\n}",
            ),
            (
                "  proxy_set_header Authorization \"Basic abc\";",
                "  proxy_set_header Authorization \"[REDACTED]\";",
            ),
            (
                "fastcgi_param DB_PASSWORD hunter2;\r\nfastcgi_param HOME /x;",
                "fastcgi_param DB_PASSWORD [REDACTED];\r\nfastcgi_param HOME /x;",
            ),
            (
                "SetEnv DB_PASSWORD secret\nSetEnv APP_ENV prod",
                "SetEnv DB_PASSWORD [REDACTED]\nSetEnv APP_ENV prod",
            ),
            (
                "RequestHeader set Authorization \"Basic abc\"",
                "RequestHeader set Authorization \"[REDACTED]\"",
            ),
            (
                "Header always set X-Api-Key abc early",
                "Header always set X-Api-Key [REDACTED] early",
            ),
            (
                "aws configure set aws_secret_access_key XYZabc --profile prod",
                "aws configure set aws_secret_access_key [REDACTED] --profile prod",
            ),
            (
                "$ aws configure set default.aws_secret_access_key XYZabc",
                "$ aws configure set default.aws_secret_access_key [REDACTED]",
            ),
            (
                "requirepass hunter2\nmasterauth 'a b'\nport 6379",
                "requirepass [REDACTED]\nmasterauth '[REDACTED]'\nport 6379",
            ),
            (
                "127.0.0.1:6379> CONFIG SET requirepass hunter2",
                "127.0.0.1:6379> CONFIG SET requirepass [REDACTED]",
            ),
            (
                "setx DB_PASSWORD hunter2 /M",
                "setx DB_PASSWORD [REDACTED] /M",
            ),
            (
                "dotnet user-secrets set \"Db:Password\" \"pw 1\"",
                "dotnet user-secrets set \"Db:Password\" \"[REDACTED]\"",
            ),
            (
                "variable \"db_password\" {\n  type      = string\n  default   = \"hunter2\"\n  sensitive = true\n}\nvariable \"region\" {\n  default = \"eu-west-1\"\n}",
                "variable \"db_password\" {\n  type      = string\n  default   = [REDACTED]\n  sensitive = true\n}\nvariable \"region\" {\n  default = \"eu-west-1\"\n}",
            ),
            (
                "variable \"api_token\" { default = \"hunter2\" }\nx = 1",
                "variable \"api_token\" { default = [REDACTED] }\nx = 1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        // Other keys, other verbs, prose that starts with such a word, and a `default` after
        // the block stay.
        for input in [
            "proxy_set_header Host $host;",
            "set header X-Api-Key abc",
            "RequestHeader unset Authorization",
            "Header set for the API",
            "aws configure set region us-east-1",
            "# requirepass foobared",
            "variable \"region\" {\n  default = \"us-east-1\"\n}",
            "variable \"db_password\" {\n  type = string\n}\ndefault = \"x\"",
            "the variable password is set",
            "config set to prod",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }

    /// Found by a probe on 2026-12-07: an nginx directive after a `{` or `;` on its line kept
    /// the value it gives a sensitive header or parameter.
    #[test]
    fn nginx_directives_after_a_brace_or_a_semicolon() {
        let cases = [
            (
                "server { proxy_set_header X-Api-Key s3cr3tvalue; }",
                "server { proxy_set_header X-Api-Key [REDACTED]; }",
            ),
            (
                "location / { auth_basic_user_file x; proxy_set_header X-Api-Key s3cr3tvalue; }",
                "location / { auth_basic_user_file x; proxy_set_header X-Api-Key [REDACTED]; }",
            ),
            (
                "server { proxy_set_header Authorization \"Digest abc123xyz\"; }",
                "server { proxy_set_header Authorization \"[REDACTED]\"; }",
            ),
            (
                "proxy_set_header Host $host; fastcgi_param DB_PASSWORD hunter2;",
                "proxy_set_header Host $host; fastcgi_param DB_PASSWORD [REDACTED];",
            ),
            (
                "proxy_set_header X-Api-Key one; add_header X-Auth-Token two;",
                "proxy_set_header X-Api-Key [REDACTED]; add_header X-Auth-Token [REDACTED];",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        // Other headers, and prose that names a directive after a `;` or `{`.
        for input in [
            "location / { proxy_set_header Host $host; proxy_pass http://up; }",
            "server { add_header X-Frame-Options DENY; }",
            "set it; proxy_set_header is documented",
            "note: { proxy_set_header sets a header }",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }

    /// Found by a probe on 2026-12-07: a sensitive Terraform variable's `default` written as a
    /// heredoc kept its body.
    #[test]
    fn a_terraform_defaults_heredoc() {
        let cases = [
            (
                "variable \"db_password\" {\n  default = <<EOF\nhunter2pass\nEOF\n}\nx = 1",
                "variable \"db_password\" {\n  default = <<EOF\n[REDACTED]\nEOF\n}\nx = 1",
            ),
            (
                "variable \"api_token\" {\r\n  default = <<-EOT\r\n    line one\r\n    line two\r\n    EOT\r\n  sensitive = true\r\n}\r\n",
                "variable \"api_token\" {\r\n  default = <<-EOT\r\n[REDACTED]\r\n    EOT\r\n  sensitive = true\r\n}\r\n",
            ),
            // Cut inside it: to the end.
            (
                "variable \"db_password\" {\n  default = <<EOF\nhunter2pass",
                "variable \"db_password\" {\n  default = <<EOF\n[REDACTED]",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        // What follows a closed one stays.
        assert_eq!(
            text(
                "variable \"db_password\" {\n  default = <<EOF\nx9\nEOF\n}\nlocals {\n  note = <<EOF\nkept\nEOF\n}"
            ),
            "variable \"db_password\" {\n  default = <<EOF\n[REDACTED]\nEOF\n}\nlocals {\n  note = <<EOF\nkept\nEOF\n}"
        );
        // A heredoc of another variable stays.
        let motd = "variable \"motd\" {\n  default = <<EOF\nhello { there\nEOF\n}";
        assert_eq!(text(motd), motd);
    }
}
