//! The passwords command-line tools other than MySQL's clients (see [`mysql`](super::mysql))
//! take as short options or as arguments: `curl -u ann:hunter2`, `redis-cli -a hunter2`,
//! `openssl enc -pass pass:hunter2`, `htpasswd -b file ann hunter2`.
//!
//! A short option means a password only to its own command (`-a` is "all" to most tools, `-u`
//! a user or "unbuffered", `-p` a port), so an option is read as one only after its command's
//! name, on the same line (or one continued with `\`) and in the same command (up to `|`, `;`
//! or `&`), as the MySQL clients' `-p` is. Long options named by a sensitive key
//! (`--password x`) are the pair rules' already; the long ones here are named by no such key
//! (`--user ann:hunter2`).

use super::mysql::{Words, is_separator, value_end};

/// How the value of a command's password option holds the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// The whole value (`redis-cli -a hunter2`).
    Whole,
    /// What follows the first `:` (`curl -u ann:hunter2`); a value without one is a user name
    /// alone, for which the tool prompts.
    AfterColon,
    /// What follows the first `%` (`smbclient -U ann%hunter2`).
    AfterPercent,
    /// What follows the first `,` (`lftp -u ann,hunter2`).
    AfterComma,
    /// What follows `pass:` (OpenSSL's `-passin pass:hunter2`); `env:VAR` and `file:path`
    /// name where the password is, and stay.
    AfterPassPrefix,
}

/// A command and its options that take a password.
struct Command {
    /// The command's name, the last part of its path.
    name: &'static str,
    /// A word that must come before the option in the same command (`docker login -p`: to
    /// `docker run`, `-p` publishes a port).
    subcommand: Option<&'static str>,
    /// The options, as written before their value, and how the value holds the password. A
    /// one-letter short option may be glued to its value (`-uann:hunter2`); a long one may be
    /// joined to it with `=` (`--user=ann:hunter2`).
    options: &'static [(&'static str, Holds)],
    /// Its first argument is a command of its own (`sshpass -p x ssh -p 22 host`).
    wraps: bool,
}

/// The commands read, and their password options.
const COMMANDS: &[Command] = &[
    Command {
        name: "curl",
        subcommand: None,
        options: &[
            ("-u", Holds::AfterColon),
            ("--user", Holds::AfterColon),
            ("-U", Holds::AfterColon),
            ("--proxy-user", Holds::AfterColon),
            ("--oauth2-bearer", Holds::Whole),
        ],
        wraps: false,
    },
    Command {
        name: "redis-cli",
        subcommand: None,
        options: &[("-a", Holds::Whole), ("--pass", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "openssl",
        subcommand: None,
        options: &[
            ("-pass", Holds::AfterPassPrefix),
            ("-passin", Holds::AfterPassPrefix),
            ("-passout", Holds::AfterPassPrefix),
            ("-k", Holds::Whole),
        ],
        wraps: false,
    },
    Command {
        name: "sshpass",
        subcommand: None,
        options: &[("-p", Holds::Whole)],
        wraps: true,
    },
    Command {
        name: "docker",
        subcommand: Some("login"),
        options: &[("-p", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "podman",
        subcommand: Some("login"),
        options: &[("-p", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "smbclient",
        subcommand: None,
        options: &[("-U", Holds::AfterPercent), ("--user", Holds::AfterPercent)],
        wraps: false,
    },
    Command {
        name: "lftp",
        subcommand: None,
        options: &[("-u", Holds::AfterComma)],
        wraps: false,
    },
    Command {
        name: "sqlcmd",
        subcommand: None,
        options: &[("-P", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "ldapsearch",
        subcommand: None,
        options: &[("-w", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "ldapmodify",
        subcommand: None,
        options: &[("-w", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "ldapadd",
        subcommand: None,
        options: &[("-w", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "ldapdelete",
        subcommand: None,
        options: &[("-w", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "mongosh",
        subcommand: None,
        options: &[("-p", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "mongo",
        subcommand: None,
        options: &[("-p", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "mongodump",
        subcommand: None,
        options: &[("-p", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "mongorestore",
        subcommand: None,
        options: &[("-p", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "mosquitto_pub",
        subcommand: None,
        options: &[("-P", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "mosquitto_sub",
        subcommand: None,
        options: &[("-P", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "zip",
        subcommand: None,
        options: &[("-P", Holds::Whole)],
        wraps: false,
    },
    Command {
        name: "unzip",
        subcommand: None,
        options: &[("-P", Holds::Whole)],
        wraps: false,
    },
    // htpasswd takes its password as an argument: see `HTPASSWD`.
    Command {
        name: HTPASSWD,
        subcommand: None,
        options: &[],
        wraps: false,
    },
];

/// The command that takes a password as its last argument with `-b` (`htpasswd -b file ann
/// hunter2`, `htpasswd -nb ann hunter2`).
const HTPASSWD: &str = "htpasswd";

/// Whether `text` may give one of [`COMMANDS`] a password: it holds an option one of them
/// reads (a `-` after whitespace or a quote, and a letter). A look for callers that send only
/// some text to the pair rules.
pub(super) fn may_hold_password(text: &str) -> bool {
    first_option(text.as_bytes()).is_some()
}

/// Where the first word that may be a command's password option starts: a `-` after a word
/// break, then a letter (`-u`, `-passin`, `--user`, `-bc`).
fn first_option(bytes: &[u8]) -> Option<usize> {
    let is_option = |at: usize| {
        matches!(
            at.checked_sub(1).map(|before| bytes[before]),
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'')
        ) && bytes
            .get(at + 1..)
            .and_then(|rest| rest.iter().find(|&&b| b != b'-'))
            .is_some_and(u8::is_ascii_alphabetic)
    };
    // Most texts asked are a JSON string's few words (`SKU-00001`): a plain loop, without
    // `memchr`'s set-up.
    if bytes.len() < 64 {
        return (0..bytes.len()).find(|&at| bytes[at] == b'-' && is_option(at));
    }
    memchr::memchr_iter(b'-', bytes).find(|&at| is_option(at))
}

/// The command being read, in a scan of [`password_values`].
#[derive(Default)]
struct InCommand {
    command: Option<&'static Command>,
    /// The subcommand the command needs was seen.
    subcommand_seen: bool,
    /// The option before this word takes it as its value.
    value_next: Option<Holds>,
    /// `htpasswd` was given `-b`: its password is an argument.
    batch: bool,
    /// The arguments `htpasswd` needs before its password is its last: file and user, or only
    /// the user with `-n`.
    arguments_before: usize,
    /// The arguments `htpasswd` has seen.
    arguments: usize,
    /// The option before this word takes it as its value, and it is no password (`htpasswd -C
    /// 10`).
    skip_next: bool,
}

/// The spans of the passwords given to [`COMMANDS`] in `text`, in order, apart.
///
/// Each word is read once, and a quoted value is skipped once it is found, so the scan is
/// linear; a text with no word that may be an option is not scanned at all.
pub(super) fn password_values(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    if first_option(bytes).is_none() {
        return spans;
    }
    let mut state = InCommand::default();
    // The previous word was `\`: a line break continues the command.
    let mut continued = false;
    let mut words = Words::new(bytes);
    while let Some((start, end, after_break)) = words.next() {
        if after_break && !continued {
            state = InCommand::default();
        }
        let word = &text[start..end];
        continued = word == "\\";
        if continued {
            continue;
        }
        if let Some(holds) = state.value_next.take()
            && !word.starts_with('-')
            && !is_separator(word)
        {
            let end = value_end(bytes, start, end);
            push_password(&mut spans, text, start, end, holds);
            words.resume_at(end);
            continue;
        }
        if let Some(command) = state.command
            && let Some(end) = read_option(&mut state, command, text, start, end, &mut spans)
        {
            words.resume_at(end);
            continue;
        }
        // A separator glued to the command's name (`x|curl`, `$(curl`) ends one command and
        // starts the next.
        if word.contains([';', '|', '&']) {
            state = InCommand::default();
        }
        let last = word
            .rsplit([';', '|', '&', '(', '`'])
            .next()
            .unwrap_or(word)
            .trim_start_matches(['"', '\'']);
        if let Some(command) = command_named(last) {
            state = InCommand {
                command: Some(command),
                arguments_before: 2,
                ..InCommand::default()
            };
        }
    }
    spans
}

/// Reads `text[start..end]`, a word of `command`'s: an option, its value or an argument.
/// Returns where the scan goes on when the word was the command's (its value perhaps past
/// the word, when quoted), `None` when the word is to be read as one that may start a command.
fn read_option(
    state: &mut InCommand,
    command: &'static Command,
    text: &str,
    start: usize,
    end: usize,
    spans: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    let bytes = text.as_bytes();
    let word = &text[start..end];
    let unquoted = word.trim_start_matches(['"', '\'']);
    let at = start + (word.len() - unquoted.len());
    if command.subcommand.is_some_and(|sub| sub == word) {
        state.subcommand_seen = true;
        return Some(end);
    }
    let ready = command.subcommand.is_none() || state.subcommand_seen;
    for &(option, holds) in command.options {
        if !ready {
            break;
        }
        let Some(rest) = unquoted.strip_prefix(option) else {
            continue;
        };
        if rest.is_empty() || rest.bytes().all(|b| matches!(b, b'"' | b'\'')) {
            state.value_next = Some(holds);
            return Some(end);
        }
        let glued = if option.len() == 2 {
            Some(rest)
        } else {
            rest.strip_prefix('=')
        };
        if let Some(value) = glued.filter(|value| !value.is_empty()) {
            let value_at = at + (unquoted.len() - value.len());
            let value_end = value_end(bytes, value_at, end);
            push_password(spans, text, value_at, value_end, holds);
            return Some(value_end.max(end));
        }
    }
    if command.wraps && !word.starts_with('-') {
        *state = InCommand::default();
        return None;
    }
    if command.name != HTPASSWD || is_separator(word) {
        return None;
    }
    if std::mem::take(&mut state.skip_next) {
        return Some(end);
    }
    if let Some(flags) = unquoted.strip_prefix('-') {
        state.batch |= flags.contains('b');
        if flags.contains('n') {
            state.arguments_before = 1;
        }
        // `-C cost` and `-r rounds` take a number.
        state.skip_next = flags.ends_with(['C', 'r']);
        return Some(end);
    }
    if word.contains([';', '|', '&']) {
        return None;
    }
    state.arguments += 1;
    if state.batch && state.arguments == state.arguments_before + 1 {
        let value_end = value_end(bytes, start, end);
        push_password(spans, text, start, value_end, Holds::Whole);
        return Some(value_end.max(end));
    }
    Some(end)
}

/// The command `word` names, by its path too.
fn command_named(word: &str) -> Option<&'static Command> {
    let name = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let name = name.trim_end_matches(['"', '\'', '`', ')']);
    let name = name.strip_suffix(".exe").unwrap_or(name);
    COMMANDS.iter().find(|command| command.name == name)
}

/// Pushes the span of the password in the value `text[start..end]`, its quotes kept.
fn push_password(
    spans: &mut Vec<(usize, usize)>,
    text: &str,
    start: usize,
    end: usize,
    holds: Holds,
) {
    let bytes = text.as_bytes();
    let mut start = start;
    let mut end = end;
    if let Some(&quote @ (b'"' | b'\'')) = bytes.get(start) {
        start += 1;
        if end > start && bytes[end - 1] == quote {
            end -= 1;
        }
    }
    let value = &text[start..end];
    let from = match holds {
        Holds::Whole => Some(0),
        Holds::AfterColon => value.find(':').map(|at| at + 1),
        Holds::AfterPercent => value.find('%').map(|at| at + 1),
        Holds::AfterComma => value.find(',').map(|at| at + 1),
        Holds::AfterPassPrefix => value.strip_prefix("pass:").map(|_| "pass:".len()),
    };
    if let Some(from) = from
        && start + from < end
    {
        spans.push((start + from, end));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};

    use super::super::redact_plain_text as text;

    /// Found by a probe: the passwords curl, redis-cli, openssl, htpasswd and other tools
    /// take on their command lines were stored as they came.
    #[test]
    fn a_commands_password_options() {
        let cases = [
            (
                "curl -u ann:hunter2 https://x",
                "curl -u ann:[REDACTED] https://x",
            ),
            (
                "curl --user ann:hunter2 https://x",
                "curl --user ann:[REDACTED] https://x",
            ),
            (
                "curl --user=ann:hunter2 https://x",
                "curl --user=ann:[REDACTED] https://x",
            ),
            (
                "curl -s -uann:hunter2 https://x",
                "curl -s -uann:[REDACTED] https://x",
            ),
            (
                "curl -u 'ann:hunter 2' https://x",
                "curl -u 'ann:[REDACTED]' https://x",
            ),
            (
                "$ /usr/bin/curl -X POST \\\n  -u \"ann:hunter2\" https://x",
                "$ /usr/bin/curl -X POST \\\n  -u \"ann:[REDACTED]\" https://x",
            ),
            ("redis-cli -a hunter2 ping", "redis-cli -a [REDACTED] ping"),
            (
                "redis-cli -h r -p 6379 -a 'hunter2' ping",
                "redis-cli -h r -p 6379 -a '[REDACTED]' ping",
            ),
            (
                "openssl enc -aes256 -pass pass:hunter2 -in x",
                // `pass` is a sensitive key too: its pair's unquoted value runs to the line's end.
                "openssl enc -aes256 -pass pass:[REDACTED]",
            ),
            (
                "openssl pkcs12 -passin pass:hunter2 -passout pass:hunter3",
                "openssl pkcs12 -passin pass:[REDACTED]",
            ),
            (
                "htpasswd -b /etc/nginx/.htpasswd ann hunter2",
                "htpasswd -b /etc/nginx/.htpasswd ann [REDACTED]",
            ),
            (
                "htpasswd -bcB -C 10 file ann hunter2",
                "htpasswd -bcB -C 10 file ann [REDACTED]",
            ),
            ("htpasswd -nb ann hunter2", "htpasswd -nb ann [REDACTED]"),
            (
                "sshpass -p hunter2 ssh -p 22 host",
                "sshpass -p [REDACTED] ssh -p 22 host",
            ),
            (
                "docker login -u ann -p hunter2 registry",
                "docker login -u ann -p [REDACTED] registry",
            ),
            (
                "smbclient //h/s -U ann%hunter2",
                "smbclient //h/s -U ann%[REDACTED]",
            ),
            (
                "ldapsearch -D cn=admin -w hunter2 -b dc=x",
                "ldapsearch -D cn=admin -w [REDACTED] -b dc=x",
            ),
            // After another command on the same line, a pipe, `&&`.
            (
                "cd /tmp && curl -u ann:hunter2 x | jq .",
                "cd /tmp && curl -u ann:[REDACTED] x | jq .",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        let json = BodyInput::new(
            Some("application/json"),
            br#"{"cmd":"redis-cli -a hunter2 ping","c":"curl -u ann:hunter2 x","h":"htpasswd -b f ann hunter2"}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(
                r#"{"cmd":"redis-cli -a [REDACTED] ping","c":"curl -u ann:[REDACTED] x","h":"htpasswd -b f ann [REDACTED]"}"#
            )
        );
        assert_eq!(
            r.redact_error("command failed: openssl rsa -passin pass:hunter2"),
            "command failed: openssl rsa -passin pass:[REDACTED]"
        );
    }

    /// Found by the property test `arbitrary_bytes_never_panic` (in CI, where it never
    /// ended): a form feed, whitespace to the word splitter but not to the loop that skips
    /// blanks, made an empty word, and the scan never moved past it. Every ASCII blank ends
    /// a word.
    #[test]
    fn every_ascii_blank_ends_a_word() {
        // Blanks of a line: a line break ends the command.
        for blank in ["\t", "\x0c"] {
            let body = format!("curl -u{blank}ann:hunter2{blank}x {blank}");
            let out = text(&body);
            assert!(!out.contains("hunter2"), "{out:?}");
        }
        assert_eq!(
            text("curl -u ann:hunter2 \x0c"),
            "curl -u ann:[REDACTED] \x0c"
        );
    }

    /// The options mean a password only to their command: the same letters to other
    /// commands, a user name alone, and a password read from elsewhere stay.
    #[test]
    fn other_commands_options_stay() {
        let cases = [
            // curl prompts for the password of a user name given alone.
            "curl -u ann https://x",
            "curl -H 'X-Trace: a:b' https://x",
            "ls -a hunter2",
            "docker run -p 8080:80 nginx",
            "ssh -p 2222 host",
            "sort -u a:b",
            "openssl enc -pass env:PASSWORD -in x",
            "openssl enc -pass file:/run/secret -in x",
            "htpasswd -c file ann",
            "htpasswd file ann hunter",
            "the -u flag of curl\nis -u ann:x in docs",
            "redis-cli ping; ls -a x",
        ];
        for input in cases {
            assert_eq!(text(input), input, "{input}");
        }
    }
}
