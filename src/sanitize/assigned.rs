//! Secrets that source, configuration files and interpreters' prints give a key without the
//! `key=value` or `key: value` shape the pair rules read: an index assigned to
//! (`$config['db']['password'] = '…'`, `os.environ["DB_PASSWORD"] = "…"`), PHP's
//! `define('DB_PASSWORD', '…')` and any call that passes a sensitive key and its value as its
//! two arguments (`os.environ.setdefault("DB_PASSWORD", "…")`), PHP's `print_r` and
//! `var_dump` (`[password] => …`), Scala's `password -> …`, a `.netrc` (`machine h login a
//! password …`) and a Java properties line whose separator is a space (`db.password hunter2`,
//! and a Dockerfile's `ENV DB_PASSWORD …`).

use std::sync::LazyLock;

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

/// The values of a Java properties file's lines whose key and value a space separates: a
/// dotted key (`db.password`) at the line's start whose last part is sensitive, then spaces,
/// then the value (not a `=` or `:`, a pair's) to the end of the line. Read by hand, a line
/// at a time, as most texts have no such line.
fn property_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
    spans: &mut Vec<(usize, usize)>,
) {
    let bytes = text.as_bytes();
    let mut line_start = 0;
    while line_start < bytes.len() {
        let line_end =
            memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |len| line_start + len);
        let mut at = line_start;
        while at < line_end && matches!(bytes[at], b' ' | b'\t') {
            at += 1;
        }
        // A Dockerfile's `ENV` in its older form, a space for the `=` (`ENV DB_PASSWORD
        // hunter2`): its key needs no dot.
        let docker_env = bytes.len() >= at + 4
            && bytes[at..at + 3].eq_ignore_ascii_case(b"ENV")
            && matches!(bytes[at + 3], b' ' | b'\t');
        if docker_env {
            at += 3;
            while at < line_end && matches!(bytes[at], b' ' | b'\t') {
                at += 1;
            }
        }
        let key_start = at;
        while at < line_end
            && at - key_start <= 200
            && (bytes[at].is_ascii_alphanumeric() || matches!(bytes[at], b'_' | b'-' | b'.'))
        {
            at += 1;
        }
        let key = &text[key_start..at];
        let mut value = at;
        while value < line_end && matches!(bytes[value], b' ' | b'\t') {
            value += 1;
        }
        if value > at
            && value < line_end
            && !matches!(bytes[value], b'=' | b':' | b'\r')
            && (docker_env && key.len() <= 64 && keys.is_sensitive(key, keybuf)
                || key.contains('.')
                    && !key.starts_with('.')
                    && !key.ends_with('.')
                    && key
                        .rsplit('.')
                        .next()
                        .is_some_and(|last| last.len() <= 64 && keys.is_sensitive(last, keybuf)))
        {
            let end = if bytes[line_end - 1] == b'\r' {
                line_end - 1
            } else {
                line_end
            };
            spans.push((value, end));
        }
        line_start = line_end + 1;
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
}
