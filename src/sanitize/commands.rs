//! The passwords command-line tools other than MySQL's clients (see [`mysql`](super::mysql))
//! take as short options or as arguments: `curl -u ann:hunter2`, `redis-cli -a hunter2`,
//! `openssl enc -pass pass:hunter2`, `htpasswd -b file ann hunter2`, `net user ann hunter2`,
//! `net use \\srv\share hunter2`, the hash `useradd -p` sets; the cookies curl is given
//! (`curl -b 'a=1; sid=…'`); the `user:password` lines `echo` pipes into `chpasswd` (`echo
//! 'ann:hunter2' | chpasswd`, or a here-string, `<<<`), and the password it pipes into
//! `passwd` or `docker login --password-stdin`.
//!
//! A short option means a password only to its own command (`-a` is "all" to most tools, `-u`
//! a user or "unbuffered", `-p` a port), so an option is read as one only after its command's
//! name, on the same line (or one continued with `\`) and in the same command (up to `|`, `;`
//! or `&`), as the MySQL clients' `-p` is. Long options named by a sensitive key
//! (`--password x`) are the pair rules' already; the long ones here are named by no such key
//! (`--user ann:hunter2`).

use std::sync::LazyLock;

use memchr::memmem::Finder;

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
    /// The whole value, glued to its option only (7-Zip's `-phunter2`: a bare `-p` prompts,
    /// and the word after it is the archive's name).
    Glued,
    /// The whole value when it holds a `=`: a list of cookies (curl's `-b 'a=1; sid=…'`, as
    /// Chrome's "Copy as cURL" writes the session); one without is a file to read them from.
    Cookies,
    /// No value: the option makes the command read its password from its standard input,
    /// and what `echo` or `printf` pipes into it is the password, whole (`echo 'hunter2' |
    /// docker login -u ann --password-stdin`).
    Stdin,
}

/// A command and its options that take a password.
#[derive(Debug)]
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
    /// Passwords given as an argument after one of some words (`rabbitmqctl add_user ann
    /// hunter2`).
    positional: &'static [Positional],
    /// Named only as its command's first word (at a line's start, after a prompt, `|`, `;` or
    /// `&&`): its name is a word prose uses too (`the net user command lists accounts`).
    first_word: bool,
    /// A Windows command: its name and words are read in small letters or in capitals (`NET
    /// USER`), its options start with `/` (`/add`), and a `*` for its password asks for it.
    windows: bool,
    /// It reads a password from its standard input, which holds it so: what `echo` or
    /// `printf` writes into a pipe to it (`echo 'ann:hunter2' | chpasswd`), or a here-string
    /// (`chpasswd <<< 'ann:hunter2'`).
    stdin: Option<Holds>,
    /// Read on a shell's line only, not in a JSON array of a command's words: its name ends in
    /// letters no other name does that words in arrays often end in (`usermod`'s `od`: `good`,
    /// `period`), which the array's look by last letters (see [`may_end_in_name`]) would then
    /// let through to a slower reading.
    shell_only: bool,
}

/// A password given as an argument, counted after a subcommand or another word.
#[derive(Debug, Clone, Copy)]
struct Positional {
    /// The words the arguments are counted after (`add_user`, `password`).
    after: &'static [&'static str],
    /// Which argument after such a word is the password, from 1 (options not counted).
    place: usize,
    /// The arguments are counted after a UNC path's (`\\srv\share`), not after the word
    /// (`net use Z: \\srv\share hunter2`, the drive letter before it or none).
    after_share: bool,
}

/// A command read by its options alone: what the entries of [`COMMANDS`] do not set.
const OPTIONS_ONLY: Command = Command {
    name: "",
    subcommand: None,
    options: &[],
    wraps: false,
    positional: &[],
    first_word: false,
    windows: false,
    stdin: None,
    shell_only: false,
};

impl Command {
    /// Whether a JSON array of a command's words names it (see [`InCommand::argv_word`]): a
    /// name prose uses too, and a password from standard input, are a shell line's only.
    const fn in_argv(&self) -> bool {
        !self.first_word && self.stdin.is_none() && !self.shell_only
    }
}

/// The commands read, and their password options.
const COMMANDS: &[Command] = &[
    Command {
        name: "curl",
        options: &[
            ("-u", Holds::AfterColon),
            ("--user", Holds::AfterColon),
            ("-U", Holds::AfterColon),
            ("--proxy-user", Holds::AfterColon),
            ("--oauth2-bearer", Holds::Whole),
            ("-b", Holds::Cookies),
            ("--cookie", Holds::Cookies),
        ],
        ..OPTIONS_ONLY
    },
    Command {
        name: "redis-cli",
        options: &[("-a", Holds::Whole), ("--pass", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "openssl",
        options: &[
            ("-pass", Holds::AfterPassPrefix),
            ("-passin", Holds::AfterPassPrefix),
            ("-passout", Holds::AfterPassPrefix),
            ("-k", Holds::Whole),
        ],
        ..OPTIONS_ONLY
    },
    Command {
        name: "sshpass",
        options: &[("-p", Holds::Whole)],
        wraps: true,
        ..OPTIONS_ONLY
    },
    Command {
        name: "docker",
        subcommand: Some("login"),
        options: &[("-p", Holds::Whole), ("--password-stdin", Holds::Stdin)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "podman",
        subcommand: Some("login"),
        options: &[("-p", Holds::Whole), ("--password-stdin", Holds::Stdin)],
        ..OPTIONS_ONLY
    },
    // `useradd -p '$6$…'` and `usermod -p`: the password's hash, which is cracked offline.
    Command {
        name: "useradd",
        options: &[("-p", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "usermod",
        options: &[("-p", Holds::Whole)],
        shell_only: true,
        ..OPTIONS_ONLY
    },
    Command {
        name: "smbclient",
        options: &[("-U", Holds::AfterPercent), ("--user", Holds::AfterPercent)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "lftp",
        options: &[("-u", Holds::AfterComma)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "sqlcmd",
        options: &[("-P", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "ldapsearch",
        options: &[("-w", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "ldapmodify",
        options: &[("-w", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "ldapadd",
        options: &[("-w", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "ldapdelete",
        options: &[("-w", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mongosh",
        options: &[("-p", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mongo",
        options: &[("-p", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mongodump",
        options: &[("-p", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mongorestore",
        options: &[("-p", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mosquitto_pub",
        options: &[("-P", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mosquitto_sub",
        options: &[("-P", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "zip",
        options: &[("-P", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "unzip",
        options: &[("-P", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    // ssh-keygen's new and old passphrases.
    Command {
        name: "ssh-keygen",
        options: &[("-N", Holds::Whole), ("-P", Holds::Whole)],
        ..OPTIONS_ONLY
    },
    // 7-Zip's password, glued to its `-p` only.
    Command {
        name: "7z",
        options: &[("-p", Holds::Glued)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "7za",
        options: &[("-p", Holds::Glued)],
        ..OPTIONS_ONLY
    },
    Command {
        name: "7zr",
        options: &[("-p", Holds::Glued)],
        ..OPTIONS_ONLY
    },
    // `rabbitmqctl add_user ann hunter2`, `change_password`, `authenticate_user`.
    Command {
        name: "rabbitmqctl",
        positional: &[Positional {
            after: &["add_user", "change_password", "authenticate_user"],
            place: 2,
            after_share: false,
        }],
        ..OPTIONS_ONLY
    },
    // `mysqladmin -u root password hunter2` sets a new password (its `-p` is `mysql`'s rule).
    Command {
        name: "mysqladmin",
        positional: &[Positional {
            after: &["password"],
            place: 1,
            after_share: false,
        }],
        ..OPTIONS_ONLY
    },
    Command {
        name: "mariadb-admin",
        positional: &[Positional {
            after: &["password"],
            place: 1,
            after_share: false,
        }],
        ..OPTIONS_ONLY
    },
    // `net user ann hunter2 /add` (also `net users`): Windows' command sets the password;
    // `net use \\srv\share hunter2 /user:ann` gives it to a share.
    Command {
        name: "net",
        positional: &[
            Positional {
                after: &["user", "users"],
                place: 2,
                after_share: false,
            },
            Positional {
                after: &["use"],
                place: 1,
                after_share: true,
            },
        ],
        first_word: true,
        windows: true,
        ..OPTIONS_ONLY
    },
    // `echo 'ann:hunter2' | chpasswd`: a line of a user and a password.
    Command {
        name: "chpasswd",
        stdin: Some(Holds::AfterColon),
        ..OPTIONS_ONLY
    },
    // `echo hunter2 | passwd --stdin ann`, `echo -e 'pw\npw' | passwd`: the new password.
    Command {
        name: "passwd",
        stdin: Some(Holds::Whole),
        ..OPTIONS_ONLY
    },
    // htpasswd takes its password as an argument: see `HTPASSWD`.
    Command {
        name: HTPASSWD,
        ..OPTIONS_ONLY
    },
];

/// The command that takes a password as its last argument with `-b` (`htpasswd -b file ann
/// hunter2`, `htpasswd -nb ann hunter2`).
const HTPASSWD: &str = "htpasswd";

/// Whether `text` may give one of [`COMMANDS`] a password: it holds an option one of them
/// reads (a `-` after whitespace or a quote, and a letter). A look for callers that send only
/// some text to the pair rules.
pub(super) fn may_hold_password(text: &str) -> bool {
    first_option(text.as_bytes()).is_some() || may_name_positional(text.as_bytes())
}

/// Whether `bytes` may name a command that takes a password with no option before it, as an
/// argument (`rabbitmqctl add_user ann hunter2`, `mysqladmin password hunter2`, `net user ann
/// hunter2`) or from its standard input (`chpasswd`): a look for texts without an option,
/// which are not read otherwise.
fn may_name_positional(bytes: &[u8]) -> bool {
    POSITIONAL_NAMES
        .iter()
        .any(|name| name.find(bytes).is_some())
}

/// What [`may_name_positional`] looks for, each searcher built once: building one costs more
/// than its search of a text of a few KiB (callgrind).
static POSITIONAL_NAMES: LazyLock<[Finder<'static>; 6]> = LazyLock::new(|| {
    [
        Finder::new("rabbitmqctl"),
        Finder::new("admin"),
        // `chpasswd` and `passwd`.
        Finder::new("passwd"),
        // `net user`, `net.exe users`, `NET USER`, and `net use` with them.
        Finder::new("et use"),
        Finder::new("exe use"),
        Finder::new("ET USE"),
    ]
});

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

/// The command being read, in a scan of [`password_values`], or in the elements of a JSON
/// array of strings read as its words ([`InCommand::argv_word`]).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct InCommand {
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
    /// A [`Positional`]'s word was seen: its arguments are counted in `arguments`.
    positional_open: Option<Positional>,
    /// The UNC path an [`after_share`](Positional::after_share) positional counts from was
    /// seen.
    share_seen: bool,
    /// What `echo` or `printf` piped into the command (see [`Holds::Stdin`]).
    stdin: Option<(usize, usize)>,
}

/// For each small letter a word's name may end with, the letters that may come before it, one
/// bit each: the last two letters of [`COMMANDS`]' names, of MySQL's clients and of `.exe`.
/// Built from the lists, so it cannot fall behind them.
const NAME_ENDINGS: [u32; 26] = {
    /// `table` with the last two letters of `name` in it.
    const fn with_ending(mut table: [u32; 26], name: &str) -> [u32; 26] {
        let bytes = name.as_bytes();
        assert!(
            bytes.len() >= 2,
            "a command's name has two letters at least"
        );
        let last = bytes[bytes.len() - 1].to_ascii_lowercase();
        let before = bytes[bytes.len() - 2].to_ascii_lowercase();
        assert!(
            last.is_ascii_lowercase() && (before.is_ascii_lowercase() || before.is_ascii_digit()),
            "a command's name ends in a letter after a letter or a digit"
        );
        table[(last - b'a') as usize] |= 1 << ending_bit(before);
        table
    }
    let mut table = with_ending([0; 26], ".exe");
    let mut at = 0;
    while at < COMMANDS.len() {
        if COMMANDS[at].in_argv() {
            table = with_ending(table, COMMANDS[at].name);
        }
        at += 1;
    }
    let mut at = 0;
    while at < super::mysql::CLIENTS.len() {
        table = with_ending(table, super::mysql::CLIENTS[at]);
        at += 1;
    }
    table
};

/// The bit of [`NAME_ENDINGS`] for the byte before a name's last letter: its letter's, or
/// one for every digit (`7z`).
const fn ending_bit(before: u8) -> u32 {
    if before.is_ascii_digit() {
        26
    } else {
        (before - b'a') as u32
    }
}

/// Whether a word as written (a JSON string's raw contents) may end in the name of a command
/// whose password options are read here or of a MySQL client, quotes and parentheses after it
/// aside: told by its last two letters, before any decoding, so that a path written with
/// escapes (`"/usr/bin\u002fmysql"`) is let through and most other words (`vip`, `SKU-01`) are
/// not.
#[inline]
pub(super) fn may_end_in_name(raw: &[u8]) -> bool {
    let Some(end) = raw
        .iter()
        .rposition(|b| !matches!(b, b'"' | b'\'' | b'`' | b')' | b'\\'))
    else {
        return false;
    };
    let Some(&before) = end.checked_sub(1).and_then(|at| raw.get(at)) else {
        return false;
    };
    let (last, before) = (raw[end].to_ascii_lowercase(), before.to_ascii_lowercase());
    last.is_ascii_lowercase()
        && (before.is_ascii_lowercase() || before.is_ascii_digit())
        && NAME_ENDINGS[usize::from(last - b'a')] >> ending_bit(before) & 1 != 0
}

impl InCommand {
    /// Whether a command was named: each word after it is read, an argument too.
    pub(super) fn is_open(&self) -> bool {
        self.command.is_some()
    }

    /// Reads `word`, one element of a JSON array of strings read as a command's words (an
    /// argv, a container's `command` and `args`), as [`password_values`] reads a command
    /// line's words: a command's name opens it, its password options and arguments follow
    /// (`["curl","-u","ann:hunter2"]`, `["redis-cli","-ahunter2"]`, `["htpasswd","-b","f",
    /// "ann","hunter2"]`). Returns the span of the password in `word`.
    pub(super) fn argv_word(&mut self, word: &str) -> Option<(usize, usize)> {
        let mut spans = Vec::new();
        if let Some(holds) = self.value_next.take()
            && !word.starts_with('-')
            && !is_separator(word)
        {
            push_password(&mut spans, word, 0, word.len(), holds);
            return spans.pop();
        }
        if let Some(command) = self.command
            && read_option(self, command, word, 0, word.len(), &mut spans).is_some()
        {
            return spans.pop();
        }
        if is_separator(word) {
            *self = Self::default();
        } else if let Some(command) = command_named(word).filter(|command| command.in_argv()) {
            *self = Self {
                command: Some(command),
                arguments_before: 2,
                ..Self::default()
            };
        }
        None
    }

    /// Reads an element of such an array that is no string: a number is a word, and a whole
    /// password where one is due (`["redis-cli","-a",1234]`); anything else is no value.
    /// Returns whether it is a password.
    pub(super) fn argv_other(&mut self, number: bool) -> bool {
        if number {
            // A number's own digits do not matter: no option reads a number's `:` or `%`.
            self.argv_word("0").is_some()
        } else {
            self.value_next = None;
            false
        }
    }
}

/// The spans of the passwords given to [`COMMANDS`] in `text`, in order, apart.
///
/// Each word is read once, and a quoted value is skipped once it is found, so the scan is
/// linear; a text with no word that may be an option is not scanned at all.
pub(super) fn password_values(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    if first_option(bytes).is_none() && !may_name_positional(bytes) {
        return spans;
    }
    let mut state = InCommand::default();
    // The previous word was `\`: a line break continues the command.
    let mut continued = false;
    // The next word is a command's first: at a line's start, after a separator or a prompt.
    let mut command_start = true;
    let mut piped = Piped::default();
    let mut words = Words::new(bytes);
    while let Some((start, end, after_break)) = words.next() {
        if after_break && !continued {
            state = InCommand::default();
            piped = Piped::default();
            command_start = true;
        }
        let word = &text[start..end];
        continued = word == "\\";
        if continued {
            continue;
        }
        let at_start = std::mem::take(&mut command_start);
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
        if let Some(end) = piped.write(text, start, end) {
            words.resume_at(end);
            continue;
        }
        // A separator glued to the command's name (`x|curl`, `$(curl`) ends one command and
        // starts the next.
        if word.contains([';', '|', '&']) {
            state = InCommand::default();
            piped.separator(word);
        } else if at_start && is_prompt(word) {
            command_start = true;
            continue;
        }
        let split = word.rfind([';', '|', '&', '(', '`']);
        let last = split
            .map_or(word, |at| &word[at + 1..])
            .trim_start_matches(['"', '\'']);
        command_start = last.is_empty();
        let named = command_named(last)
            .filter(|command| !command.first_word || at_start || split.is_some())
            .or_else(|| at_start.then(|| after_prompt(last)).flatten());
        if let Some(command) = named {
            state = InCommand {
                command: Some(command),
                arguments_before: 2,
                stdin: piped.written.filter(|_| piped.piped),
                ..InCommand::default()
            };
            // A file under `/etc` is no command (`echo … | tee -a /etc/passwd`).
            if let Some(holds) = command.stdin
                && !last.starts_with("/etc/")
            {
                piped.read(text, holds, &mut spans);
            }
            piped = Piped::default();
        } else if matches!(super::mysql::last_path_part(last), "echo" | "printf") {
            piped = Piped {
                writing: true,
                ..Piped::default()
            };
        }
    }
    // A password piped in was pushed when its reader was named, after the words between.
    if !spans.is_sorted() {
        spans.sort_unstable();
    }
    spans
}

/// What `echo` or `printf` writes into a pipe, for a command after the pipe that reads a
/// password from its standard input (`echo 'ann:hunter2' | sudo chpasswd`).
#[derive(Debug, Clone, Copy, Default)]
struct Piped {
    /// `echo` or `printf` was named: the words of its command are what it writes.
    writing: bool,
    /// From its first argument's start to its last's end.
    written: Option<(usize, usize)>,
    /// Its command ended at a `|`: what it wrote is the next command's standard input.
    piped: bool,
}

impl Piped {
    /// Reads `text[start..end]` as what `echo` or `printf` writes, when it is one of its
    /// arguments (an option before them, `-e`, is not): returns where the scan goes on, at a
    /// separator glued to it (`ann:hunter2|chpasswd`) or past its closing quote.
    fn write(&mut self, text: &str, start: usize, end: usize) -> Option<usize> {
        let word = &text[start..end];
        if !self.writing {
            return None;
        }
        if word.starts_with('-') && self.written.is_none() {
            return Some(end);
        }
        let arg_end = if word.starts_with(['"', '\'']) {
            value_end(text.as_bytes(), start, end)
        } else {
            word.find([';', '|', '&']).map_or(end, |at| start + at)
        };
        if arg_end == start {
            return None;
        }
        self.written = Some((self.written.map_or(start, |(first, _)| first), arg_end));
        Some(arg_end)
    }

    /// A word holding a separator ended the command: a `|` after what `echo` wrote pipes it
    /// into the next command; any other separator, or a second `|`, drops it.
    fn separator(&mut self, word: &str) {
        let pipe = word.rfind([';', '|', '&']).is_some_and(|at| {
            word.as_bytes()[at] == b'|' && (at == 0 || word.as_bytes()[at - 1] != b'|')
        });
        *self = if pipe && self.writing && self.written.is_some() {
            Self {
                piped: true,
                ..*self
            }
        } else {
            Self::default()
        };
        self.writing = false;
    }

    /// A command that reads a password from its standard input, holding it so, was named:
    /// pushes the span of the password piped into it.
    fn read(&self, text: &str, holds: Holds, spans: &mut Vec<(usize, usize)>) {
        if let Some((start, end)) = self.written.filter(|_| self.piped) {
            push_password(spans, text, start, end, holds);
        }
    }
}

/// Whether `word`, a line's first, is a shell's prompt before the command typed after it:
/// `$`, `#`, `%`, `>`, PowerShell's `PS`, or one ending in `>` (`C:\>`, `PS>`).
fn is_prompt(word: &str) -> bool {
    matches!(word, "$" | "#" | "%" | ">" | "PS") || word.len() > 1 && word.ends_with('>')
}

/// The command a line's first word names after the prompt `cmd.exe` glues it to
/// (`C:\Users\ann>net`): one read only as a command's first word.
fn after_prompt(word: &str) -> Option<&'static Command> {
    let (_, name) = word.rsplit_once('>')?;
    command_named(name).filter(|command| command.first_word)
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
    // A here-string is the command's standard input (`chpasswd <<< 'ann:hunter2'`).
    if let Some(holds) = command.stdin
        && let Some(value) = word.strip_prefix("<<<")
    {
        if value.is_empty() {
            state.value_next = Some(holds);
            return Some(end);
        }
        let value_end = value_end(bytes, start + 3, end);
        push_password(spans, text, start + 3, value_end, holds);
        return Some(value_end.max(end));
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
            if holds == Holds::Stdin {
                if let Some((start, end)) = state.stdin.take() {
                    push_password(spans, text, start, end, holds);
                }
            } else if holds != Holds::Glued {
                state.value_next = Some(holds);
            }
            return Some(end);
        }
        if holds == Holds::Stdin {
            continue;
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
    if !command.positional.is_empty() {
        return read_positional(state, command, text, start, end, spans);
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

/// Reads `text[start..end]`, a word of a command whose password is a [`Positional`]: the
/// word its arguments are counted after, an option (not counted), or an argument. Returns
/// where the scan goes on, `None` at a separator.
fn read_positional(
    state: &mut InCommand,
    command: &Command,
    text: &str,
    start: usize,
    end: usize,
    spans: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    let word = &text[start..end];
    if word.contains([';', '|', '&']) {
        return None;
    }
    if word.starts_with('-') || command.windows && word.starts_with('/') {
        return Some(end);
    }
    if let Some(positional) = state.positional_open {
        // `net use Z: \\srv\share hunter2`: the drive before the share is not counted.
        if positional.after_share && !state.share_seen {
            state.share_seen = word.starts_with(r"\\");
            return Some(end);
        }
        state.arguments += 1;
        if state.arguments == positional.place {
            state.positional_open = None;
            // Windows' `*` asks for the password.
            if command.windows && word == "*" {
                return Some(end);
            }
            let value_end = value_end(text.as_bytes(), start, end);
            push_password(spans, text, start, value_end, Holds::Whole);
            return Some(value_end.max(end));
        }
    } else if let Some(&positional) = command.positional.iter().find(|positional| {
        positional
            .after
            .iter()
            .any(|after| *after == word || command.windows && is_in_capitals(word, after))
    }) {
        state.positional_open = Some(positional);
        state.share_seen = false;
        state.arguments = 0;
    }
    Some(end)
}

/// The command `word` names, by its path too; a Windows command in capitals too (`NET.EXE`).
fn command_named(word: &str) -> Option<&'static Command> {
    let name = super::mysql::last_path_part(word);
    let name = name.trim_end_matches(['"', '\'', '`', ')']);
    let name = name
        .strip_suffix(".exe")
        .or_else(|| name.strip_suffix(".EXE"))
        .unwrap_or(name);
    COMMANDS.iter().find(|command| {
        command.name == name || command.windows && is_in_capitals(name, command.name)
    })
}

/// Whether `word` is `name`, a word in small letters, written in capitals (`USER`).
fn is_in_capitals(word: &str, name: &str) -> bool {
    word.len() == name.len()
        && word
            .bytes()
            .zip(name.bytes())
            .all(|(w, n)| w == n.to_ascii_uppercase())
}

/// Whether `value` is nothing but a shell variable's name (`$PW`, `${PW}`) or Windows' (`%PW%`).
fn is_variable(value: &str) -> bool {
    let name = value
        .strip_prefix("${")
        .and_then(|name| name.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'))
        .or_else(|| {
            value
                .strip_prefix('%')
                .and_then(|name| name.strip_suffix('%'))
        });
    name.is_some_and(|name| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
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
        Holds::Whole | Holds::Glued => Some(0),
        Holds::AfterColon => value.find(':').map(|at| at + 1),
        Holds::AfterPercent => value.find('%').map(|at| at + 1),
        Holds::AfterComma => value.find(',').map(|at| at + 1),
        Holds::AfterPassPrefix => value.strip_prefix("pass:").map(|_| "pass:".len()),
        Holds::Cookies => value.contains('=').then_some(0),
        // A variable's value (`echo "$REGISTRY_PASSWORD" | docker login …`) is not in the text.
        Holds::Stdin => (!is_variable(value)).then_some(0),
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

    /// Found by a probe (L07): the cookies given to curl with `-b` or `--cookie`, as Chrome's
    /// "Copy as cURL" writes the session, kept every cookie but a sensitive key's
    /// (`laravel_session=…` after `XSRF-TOKEN=[REDACTED]; `). The whole list goes now.
    #[test]
    fn curls_cookie_list_goes_whole() {
        let cases = [
            (
                "curl 'https://x/api' -b 'XSRF-TOKEN=a; laravel_session=LaravelSess99xyz'",
                "curl 'https://x/api' -b '[REDACTED]'",
            ),
            (
                "curl 'https://x/api' \\\n  -H 'accept: */*' \\\n  -b \"theme=dark; sid=Sess99xyz\" \\\n  --compressed",
                "curl 'https://x/api' \\\n  -H 'accept: */*' \\\n  -b \"[REDACTED]\" \\\n  --compressed",
            ),
            (
                // `--cookie` is a long option named by a sensitive key: its quotes go too.
                "curl --cookie 'sid=Sess99xyz' https://x",
                "curl --cookie [REDACTED] https://x",
            ),
            (
                // A pair, whose unquoted value runs to the line's end.
                "curl --cookie=sid=Sess99xyz https://x",
                "curl --cookie=[REDACTED]",
            ),
            (
                "curl -s -bsid=Sess99xyz https://x",
                "curl -s -b[REDACTED] https://x",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        assert_eq!(
            r.redact_error(
                "replay failed: curl 'https://x/api' -b 'XSRF-TOKEN=a; laravel_session=LaravelSess99xyz'"
            ),
            "replay failed: curl 'https://x/api' -b '[REDACTED]'"
        );
        let json = BodyInput::new(
            Some("application/json"),
            br#"{"c":"curl -b 'theme=dark; sid=Sess99xyz' https://x","argv":["curl","-b","a=1; sid=Sess99xyz"]}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(r#"{"c":"curl -b '[REDACTED]' https://x","argv":["curl","-b","[REDACTED]"]}"#)
        );
        // A file to read the cookies from, and other commands' `-b`, stay.
        for input in [
            "curl -b cookies.txt https://x",
            "git checkout -b feature=x",
            "cp -b a=1 b",
            "the -b 'sid=x' flag of curl\nis documented",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
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

    /// Every command's and MySQL client's name is let through the look before an argv's
    /// element is read, by its path, with `.exe` or quoted too; most other words are not.
    #[test]
    fn every_name_is_let_through_the_look() {
        let names = super::COMMANDS
            .iter()
            .filter(|command| command.in_argv())
            .map(|command| command.name);
        let names = names.chain(super::super::mysql::CLIENTS.iter().copied());
        for name in names.chain(["CURL.EXE", "redis-cli.exe", "MYSQL.EXE", "mariadb.exe"]) {
            assert!(super::may_end_in_name(name.as_bytes()), "{name}");
            for written in [
                format!("/usr/bin/{name}\\\""),
                format!("C:\\\\bin\\\\{name}"),
                format!("'{name}')"),
            ] {
                assert!(super::may_end_in_name(written.as_bytes()), "{written}");
            }
        }
        for other in [
            "SKU-00001",
            "b\\u00e9",
            "editor",
            "guest",
            "gold",
            "good",
            "period",
            "beta",
            "en-US",
            "",
            "l",
            "\\\"",
        ] {
            assert!(!super::may_end_in_name(other.as_bytes()), "{other}");
        }
    }

    /// Found by review (README listed it as a limit): a JSON array of a command's words (an
    /// argv, a container's `command` and `args`) kept the passwords these commands take,
    /// where MySQL's `-p` and long options named by a sensitive key went.
    #[test]
    fn a_commands_password_options_in_an_argv() {
        let r = Redactor::default();
        let json = |body: &str| {
            r.redact_body(&BodyInput::new(Some("application/json"), body.as_bytes()))
                .unwrap_or_else(|| body.to_owned())
        };
        let cases = [
            (
                r#"["curl","-u","ann:hunter2","https://x"]"#,
                r#"["curl","-u","ann:[REDACTED]","https://x"]"#,
            ),
            (
                r#"["/usr/bin/curl","-s","-uann:hunter2"]"#,
                r#"["/usr/bin/curl","-s","-uann:[REDACTED]"]"#,
            ),
            (
                r#"["curl","--user=ann:hunter2","--proxy-user","bob:hunter3"]"#,
                r#"["curl","--user=ann:[REDACTED]","--proxy-user","bob:[REDACTED]"]"#,
            ),
            (
                r#"{"args":["redis-cli","-h","r","-a","hunter2","ping"]}"#,
                r#"{"args":["redis-cli","-h","r","-a","[REDACTED]","ping"]}"#,
            ),
            // A number given as the password.
            (
                r#"["redis-cli","-a",20261206,"ping"]"#,
                r#"["redis-cli","-a","[REDACTED]","ping"]"#,
            ),
            (
                r#"["docker","login","-u","ann","-p","hunter2","registry"]"#,
                r#"["docker","login","-u","ann","-p","[REDACTED]","registry"]"#,
            ),
            (
                r#"["sshpass","-p","hunter2","ssh","-p","22","host"]"#,
                r#"["sshpass","-p","[REDACTED]","ssh","-p","22","host"]"#,
            ),
            (
                r#"["htpasswd","-bB","-C","10","/etc/.htpasswd","ann","hunter2"]"#,
                r#"["htpasswd","-bB","-C","10","/etc/.htpasswd","ann","[REDACTED]"]"#,
            ),
            (
                r#"["openssl","pkcs12","-passin","pass:hunter2","-passout","env:P"]"#,
                r#"["openssl","pkcs12","-passin","pass:[REDACTED]","-passout","env:P"]"#,
            ),
            (
                r#"["smbclient","//h/s","-U","ann%hunter2"]"#,
                r#"["smbclient","//h/s","-U","ann%[REDACTED]"]"#,
            ),
            // Escaped, the name and the option too.
            (
                r#"["\u0063url","\u002du","ann:hunter2"]"#,
                r#"["\u0063url","\u002du","ann:[REDACTED]"]"#,
            ),
            // A container's `command`, then its `args`: the command's words go on.
            (
                r#"{"command":["redis-cli"],"args":["-a","hunter2"]}"#,
                r#"{"command":["redis-cli"],"args":["-a","[REDACTED]"]}"#,
            ),
            (
                r#"{"command":["docker","login"],"args":["-p","hunter2"]}"#,
                r#"{"command":["docker","login"],"args":["-p","[REDACTED]"]}"#,
            ),
            (
                r#"{"command":["redis-cli","-a"],"args":[1234,"ping"]}"#,
                r#"{"command":["redis-cli","-a"],"args":["[REDACTED]","ping"]}"#,
            ),
            (
                r#"{"command":["htpasswd","-b"],"args":["file","ann","hunter2"]}"#,
                r#"{"command":["htpasswd","-b"],"args":["file","ann","[REDACTED]"]}"#,
            ),
            // What the password's part leaves is read as the string would have been.
            (
                r#"["curl","-u","password=ann:hunter2"]"#,
                r#"["curl","-u","password=[REDACTED]"]"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(json(input), want, "{input}");
        }
        // The same letters to other commands, a user name alone, a password read from
        // elsewhere, and a command's arrays in another object stay.
        for input in [
            r#"["docker","run","-p","8080:80","nginx"]"#,
            r#"["curl","-u","ann","https://x"]"#,
            r#"["ls","-a","hunter2"]"#,
            r#"["openssl","enc","-pass","env:PASSWORD"]"#,
            r#"["htpasswd","-c","file","ann"]"#,
            r#"["redis-cli","ping","&&","ls","-a","x"]"#,
            r#"{"a":{"command":["redis-cli"]},"args":["-a","x"]}"#,
            r#"{"tags":["curl","http"],"flags":["-a","x"]}"#,
            r#"{"tags":["admin","user","reader"],"ids":[1,2,3]}"#,
        ] {
            assert_eq!(json(input), input, "{input}");
        }
    }

    /// Found by a probe: passwords given as arguments (`rabbitmqctl add_user ann hunter2`,
    /// `mysqladmin password hunter2`) and to ssh-keygen's and 7-Zip's options were stored as
    /// they came.
    #[test]
    fn positional_passwords_and_more_options() {
        let cases = [
            (
                "rabbitmqctl add_user ann hunter2",
                "rabbitmqctl add_user ann [REDACTED]",
            ),
            (
                "sudo rabbitmqctl -n rabbit@h change_password ann 'a b'\nrabbitmqctl list_users",
                "sudo rabbitmqctl -n rabbit@h change_password ann '[REDACTED]'\nrabbitmqctl list_users",
            ),
            (
                "rabbitmqctl authenticate_user ann hunter2 && echo ok",
                "rabbitmqctl authenticate_user ann [REDACTED] && echo ok",
            ),
            (
                "mysqladmin -u root password NEWPASS",
                "mysqladmin -u root password [REDACTED]",
            ),
            (
                "mysqladmin -u root -pOLD password \"new one\"",
                "mysqladmin -u root -p[REDACTED] password \"[REDACTED]\"",
            ),
            (
                "ssh-keygen -t ed25519 -N hunter2 -f key",
                "ssh-keygen -t ed25519 -N [REDACTED] -f key",
            ),
            (
                "ssh-keygen -p -P old1 -N 'new 2' -f key",
                "ssh-keygen -p -P [REDACTED] -N '[REDACTED]' -f key",
            ),
            ("7z a -phunter2 x.7z f", "7z a -p[REDACTED] x.7z f"),
            ("7za x -p'a b' x.7z", "7za x -p'[REDACTED]' x.7z"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        let json = |body: &str| {
            r.redact_body(&BodyInput::new(Some("application/json"), body.as_bytes()))
                .unwrap_or_else(|| body.to_owned())
        };
        assert_eq!(
            json(r#"{"argv":["rabbitmqctl","add_user","ann","hunter2"]}"#),
            r#"{"argv":["rabbitmqctl","add_user","ann","[REDACTED]"]}"#
        );
        assert_eq!(
            json(r#"{"argv":["7z","a","-phunter2"]}"#),
            r#"{"argv":["7z","a","-p[REDACTED]"]}"#
        );
        // A user alone, another subcommand, 7-Zip's `-p` that prompts, an empty passphrase,
        // prose.
        for input in [
            "rabbitmqctl add_user ann",
            "rabbitmqctl delete_user ann",
            "rabbitmqctl list_users",
            "7z a -p x.7z f",
            "ssh-keygen -N '' -f key",
            "mysqladmin -u root status",
            "the admin password is rotated",
            "admin user guide",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }
    /// Found by a probe on 2026-12-07: the password `net user` sets, and the `user:password`
    /// lines `echo` pipes into `chpasswd` or a here-string gives it, were stored as they came.
    #[test]
    fn net_user_and_chpasswd_passwords() {
        let cases = [
            ("net user ann hunter2 /add", "net user ann [REDACTED] /add"),
            (
                "C:\\> net user ann hunter2",
                "C:\\> net user ann [REDACTED]",
            ),
            (
                "PS C:\\Users\\admin> net user ann 'P@ss w0rd' /add",
                "PS C:\\Users\\admin> net user ann '[REDACTED]' /add",
            ),
            (
                "C:\\Windows\\system32>NET USER ann hunter2 /ADD",
                "C:\\Windows\\system32>NET USER ann [REDACTED] /ADD",
            ),
            (
                "net user /add ann hunter2 /domain",
                "net user /add ann [REDACTED] /domain",
            ),
            (
                "cd C:\\ && net.exe users ann hunter2",
                "cd C:\\ && net.exe users ann [REDACTED]",
            ),
            (
                "whoami; net user ann hunter2\nnet user",
                "whoami; net user ann [REDACTED]\nnet user",
            ),
            ("$ net user ann hunter2", "$ net user ann [REDACTED]"),
            (
                "echo 'ann:hunter2' | chpasswd",
                "echo 'ann:[REDACTED]' | chpasswd",
            ),
            (
                "echo \"root:hunter 2\" | sudo chpasswd",
                "echo \"root:[REDACTED]\" | sudo chpasswd",
            ),
            (
                "RUN echo root:hunter2 | chpasswd && apt-get update",
                "RUN echo root:[REDACTED] | chpasswd && apt-get update",
            ),
            (
                "echo -e 'ann:hunter2'|/usr/sbin/chpasswd",
                "echo -e 'ann:[REDACTED]'|/usr/sbin/chpasswd",
            ),
            ("echo ann:hunter2|chpasswd", "echo ann:[REDACTED]|chpasswd"),
            (
                "printf 'ann:hunter2\\n' | chpasswd",
                "printf 'ann:[REDACTED]' | chpasswd",
            ),
            (
                "chpasswd <<< 'ann:hunter2'",
                "chpasswd <<< 'ann:[REDACTED]'",
            ),
            (
                "sudo chpasswd <<<\"ann:a b\" && echo ok",
                "sudo chpasswd <<<\"ann:[REDACTED]\" && echo ok",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        let r = Redactor::default();
        let json = BodyInput::new(
            Some("application/json"),
            br#"{"runcmd":["echo 'root:hunter2' | chpasswd","chpasswd <<< ann:hunter3"]}"#,
        );
        assert_eq!(
            r.redact_body(&json).as_deref(),
            Some(
                r#"{"runcmd":["echo 'root:[REDACTED]' | chpasswd","chpasswd <<< ann:[REDACTED]"]}"#
            )
        );
        assert_eq!(
            r.redact_error("provisioning failed: echo 'ann:hunter2' | chpasswd"),
            "provisioning failed: echo 'ann:[REDACTED]' | chpasswd"
        );
    }

    /// `net` read as a word of prose, `net user` without a password or with `*` (it prompts),
    /// other `net` commands, and `echo` writing elsewhere than into `chpasswd` stay.
    #[test]
    fn net_user_and_chpasswd_near_misses() {
        for input in [
            "the net user command lists accounts",
            "Net user accounts are listed here",
            "see: net user ann hunter2",
            "net user ann",
            "net user ann * /add",
            "net user ann /delete",
            "net localgroup administrators ann /add",
            "net use Z: \\\\srv\\share",
            "echo 'ann:hunter2' > users.txt",
            "echo 'a:b' | grep a",
            "echo 'a:b' | tee f; chpasswd < users.txt",
            "echo 'a:b' || chpasswd",
            "chpasswd < users.txt",
            "the chpasswd tool reads user:password lines",
            "echo done | chpasswd",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
        // An argv names neither: `net` is prose's word, and a pipe is a shell's.
        let r = Redactor::default();
        for input in [
            r#"{"tags":["net","user","ann","ops"]}"#,
            r#"["chpasswd","<<<","ann:x"]"#,
        ] {
            let body = BodyInput::new(Some("application/json"), input.as_bytes());
            assert_eq!(r.redact_body(&body).as_deref(), Some(input), "{input}");
        }
    }

    /// Found by a probe on 2026-12-07: the password `net use` gives a share was stored as it
    /// came.
    #[test]
    fn net_use_passwords() {
        let cases = [
            (
                "net use \\\\srv\\share hunter2 /user:ann",
                "net use \\\\srv\\share [REDACTED] /user:ann",
            ),
            (
                "C:\\> net use Z: \\\\srv\\share /user:CORP\\ann hunter2 /persistent:no",
                "C:\\> net use Z: \\\\srv\\share /user:CORP\\ann [REDACTED] /persistent:no",
            ),
            (
                "NET USE \\\\srv\\ipc$ \"p w\" /USER:ann",
                "NET USE \\\\srv\\ipc$ \"[REDACTED]\" /USER:ann",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    /// Found by a probe on 2026-12-07: the password `echo` or `printf` pipes into `docker
    /// login --password-stdin` (`podman`'s too) or `passwd` was stored as it came.
    #[test]
    fn passwords_piped_into_a_login_or_passwd() {
        let cases = [
            (
                "echo \"hunter2\" | docker login -u ann --password-stdin",
                "echo \"[REDACTED]\" | docker login -u ann --password-stdin",
            ),
            (
                "printf hunter2 | podman login --password-stdin -u ann quay.io",
                "printf [REDACTED] | podman login --password-stdin -u ann quay.io",
            ),
            (
                "echo hunter2 | passwd --stdin ann",
                "echo [REDACTED] | passwd --stdin ann",
            ),
            (
                "echo -e 'new2\\nnew2' | sudo passwd ann",
                "echo -e '[REDACTED]' | sudo passwd ann",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    /// Found by a probe on 2026-12-07: the password hash `useradd -p` and `usermod -p` set
    /// was stored as it came.
    #[test]
    fn useradd_password_hashes() {
        let cases = [
            (
                "useradd -m -p '$6$salt$hashhash' ann",
                "useradd -m -p '[REDACTED]' ann",
            ),
            ("usermod -p x9hash ann", "usermod -p [REDACTED] ann"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    /// `net use` without a password or with `*`, a variable piped into `docker login`, a
    /// `docker login` that reads no standard input, `/etc/passwd` as a file and `useradd`
    /// without `-p` stay.
    #[test]
    fn net_use_stdin_and_useradd_near_misses() {
        for input in [
            "net use Z: \\\\srv\\share /persistent:yes",
            "net use \\\\srv\\share * /user:ann",
            "net use \\\\srv\\share /delete",
            "the net use command maps a drive",
            "echo \"$CI_REGISTRY_PASSWORD\" | docker login -u ann --password-stdin registry",
            "echo ${PW} | docker login --password-stdin",
            "echo hi | docker login -u ann",
            "echo hi | docker run --password-stdin x",
            "cat pw.txt | docker login --password-stdin",
            "echo 'ann:x:1000:1000::/home/ann:/bin/sh' | tee -a /etc/passwd",
            "useradd -m -s /bin/bash ann",
            "the passwd --stdin flag is RHEL's",
        ] {
            assert_eq!(text(input), input, "{input}");
        }
    }
}
