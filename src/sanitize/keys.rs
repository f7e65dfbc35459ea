//! Which keys are sensitive: key normalization and the default key set.

use regex::Regex;

/// Keys whose value is always redacted, already normalized (see [`normalize_key`]).
pub(super) const DEFAULT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    "secret",
    "clientsecret",
    "secretkey",
    "accesskey",
    "credentials",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "authorization",
    "auth",
    "cookie",
    "setcookie",
    "session",
    "sessionid",
    "phpsessid",
    "privatekey",
    "creditcard",
    "cardnumber",
    "pan",
    "cvv",
    "cvc",
    "pin",
    "ssn",
    "otp",
    // Anti-forgery tokens named without `token`: Spring's `_csrf`, Tornado's `_xsrf`. A reader
    // of the trail who has one can forge requests for its session while it lasts.
    "csrf",
    "xsrf",
];

/// Keys that *end* in one of these are redacted too (`new_password`, `github_token`,
/// `X-Auth-Token`, `aws_secret_access_key`), because secret-bearing keys are usually prefixed
/// by what they unlock.
pub(super) const DEFAULT_KEY_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "secretkey",
    "secretaccesskey",
    "token",
    "apikey",
    "privatekey",
    "sessionid",
    "authorization",
];

/// Exact keys whose plural names no secrets: an API's `sessions` and a map's `pins` are lists
/// of things, not of credentials (`auths`, `pans` likewise).
const NOT_PLURAL: &[&str] = &["session", "pin", "pan", "auth"];

/// Suffixes whose plurals count rather than hold secrets: `max_tokens`, `prompt_tokens`,
/// `total_tokens` (a language model's usage). `tokens` itself, an exact key's plural, is one.
const COUNTED_SUFFIXES: &[&str] = &["token"];

/// Words a form may put after a sensitive key for a second copy of its value: Rails'
/// `password_confirmation`, `password_confirm`, `password_repeat`, `password_again`. Digits
/// after a key mean the same (Django's `password1`/`password2`, `cvv2`); see
/// [`KeyRules::is_sensitive_normalized`].
const REPEAT_WORDS: &[&str] = &["confirmation", "confirm", "repeat", "again"];

/// The last bytes of a key that can end in digits or a [`REPEAT_WORDS`] word: every other key
/// that matched nothing is done after one lookup.
static REPEAT_ENDINGS: [bool; 256] = {
    let mut table = [false; 256];
    let mut digit = b'0';
    while digit <= b'9' {
        table[digit as usize] = true;
        digit += 1;
    }
    let mut i = 0;
    while i < REPEAT_WORDS.len() {
        let word = REPEAT_WORDS[i].as_bytes();
        table[word[word.len() - 1] as usize] = true;
        i += 1;
    }
    table
};

/// Normalizes a key into `buf`: lowercase, without the characters [`dropped_from_key`] names.
///
/// `Pass-Word`, `pass_word` and `PASSWORD` all become `password`. `buf` is reused across calls
/// so matching a key allocates nothing once it has grown.
pub(super) fn normalize_key(raw: &str, buf: &mut String) {
    buf.clear();
    if raw.is_ascii() {
        for b in raw.bytes() {
            if !matches!(b, b'_' | b'-' | b'.') && !b.is_ascii_whitespace() {
                buf.push(char::from(b.to_ascii_lowercase()));
            }
        }
    } else {
        for c in raw.chars() {
            if !dropped_from_key(c) {
                buf.extend(c.to_lowercase());
            }
        }
    }
}

/// Whether a key loses `c` when normalized: `_`, `-`, `.`, whitespace (Unicode's too: the
/// no-break space, `&ensp;`, `&thinsp;`), Unicode's dashes (`api‐key` with U+2010, `–`, `—`,
/// `−`) and its invisible characters (zero-width spaces and joiners, the word joiner, the soft
/// hyphen, direction marks), which a key written in HTML may hold (`api&ZeroWidthSpace;key`).
pub(super) fn dropped_from_key(c: char) -> bool {
    matches!(c, '_' | '-' | '.' | '\u{180E}') || is_unicode_dash(c) || c.is_whitespace()
}

/// Unicode's dashes and the invisible characters a key loses that are no whitespace: the soft
/// hyphen, zero-width spaces and joiners, the word joiner, the byte order mark. An element's
/// name may hold them (`<api‐key>`, see `text`), as a key may.
pub(super) fn is_unicode_dash(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{200B}'..='\u{2015}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2212}'
            | '\u{FE58}'
            | '\u{FE63}'
            | '\u{FEFF}'
            | '\u{FF0D}'
    )
}

/// The dashes of [`is_unicode_dash`] that typographic substitution writes for a command
/// line's `-` (`‐`, `–`, `—`, `−`, …): a long option may start with two of them, or with one
/// en or em dash for `--` (`––password`, `—password`).
pub(super) fn is_option_dash(c: char) -> bool {
    matches!(c, '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// A set hashed with foldhash rather than SipHash: every key of every body is looked up here.
/// The set is the configuration's, so keys sent by clients only probe it, never grow it.
pub(super) type KeySet = foldhash::HashSet<Box<str>>;

/// The key rules: an exact set, suffixes and regexes, all over normalized keys.
#[derive(Debug, Clone)]
pub(super) struct KeyRules {
    exact: KeySet,
    suffixes: Vec<Box<str>>,
    regexes: Vec<Regex>,
    /// Shortest exact key or suffix; shorter keys cannot match either.
    min_len: usize,
    /// The last two bytes of every exact key and suffix, as bits of a 64 Ki-bit set: a key
    /// ending in no such pair matches neither, and most keys of a body end in none. `None`
    /// when a rule is shorter than two bytes.
    endings: Option<Box<[u64]>>,
}

/// The bit of a key's last two bytes in [`KeyRules::endings`].
fn ending(key: &[u8]) -> Option<usize> {
    match key {
        [.., a, b] => Some(usize::from(*a) << 8 | usize::from(*b)),
        _ => None,
    }
}

impl KeyRules {
    /// Builds the rules from already normalized keys, suffixes and compiled regexes.
    pub(super) fn new(exact: KeySet, suffixes: Vec<Box<str>>, regexes: Vec<Regex>) -> Self {
        let min_len = exact
            .iter()
            .chain(suffixes.iter())
            .map(|k| k.len())
            .min()
            .unwrap_or(usize::MAX);
        let mut endings = Some(vec![0_u64; (1 << 16) / 64].into_boxed_slice());
        for rule in exact.iter().chain(suffixes.iter()) {
            match (ending(rule.as_bytes()), &mut endings) {
                (Some(bit), Some(set)) => set[bit / 64] |= 1 << (bit % 64),
                _ => endings = None,
            }
        }
        Self {
            exact,
            suffixes,
            regexes,
            min_len,
            endings,
        }
    }

    /// Whether some exact key or suffix may match `key`, by its length and last two bytes.
    fn may_match(&self, key: &str) -> bool {
        if key.len() < self.min_len {
            return false;
        }
        match (&self.endings, ending(key.as_bytes())) {
            (Some(set), Some(bit)) => set[bit / 64] & (1 << (bit % 64)) != 0,
            _ => true,
        }
    }

    /// Whether a normalized key is one of the exact keys or ends in one of the suffixes.
    /// Inlined: every key of every body asks, most of them ruled out by `may_match` at once.
    #[inline(always)]
    fn matches(&self, key: &str) -> bool {
        self.may_match(key)
            && (self.exact.contains(key) || self.suffixes.iter().any(|s| key.ends_with(&**s)))
    }

    /// Whether a normalized key is sensitive.
    ///
    /// A key is also sensitive when it is a sensitive key followed by digits or a
    /// [`REPEAT_WORDS`] word (`password2`, `new_password1`, `password_confirmation`, `cvv2`,
    /// `token2`): forms send a second copy of a secret under such names. Key regexes see the
    /// whole key.
    ///
    /// So is a plural (`secrets`, `api_keys`, `passwords`, `tokens`, `db_passwords`), which
    /// names secrets as its singular names one; not of a key ending in `token`
    /// (`max_tokens` and `prompt_tokens` are counts), nor the plurals of [`NOT_PLURAL`].
    pub(super) fn is_sensitive_normalized(&self, key: &str) -> bool {
        if self.matches(key)
            || repeated(key).is_some_and(|base| self.matches(base))
            || self.is_plural(key)
        {
            return true;
        }
        self.regexes.iter().any(|re| re.is_match(key))
    }

    /// Whether a normalized key is the plural of an exact key or of a key ending in a suffix
    /// (`db_passwords`, `stripe_api_keys`), not one of [`NOT_PLURAL`] nor of
    /// [`COUNTED_SUFFIXES`].
    fn is_plural(&self, key: &str) -> bool {
        key.strip_suffix('s').is_some_and(|one| {
            self.may_match(one)
                && !NOT_PLURAL.contains(&one)
                && (self.exact.contains(one)
                    || self.suffixes.iter().any(|suffix| {
                        one.ends_with(&**suffix) && !COUNTED_SUFFIXES.contains(&&**suffix)
                    }))
        })
    }

    /// Whether a raw key is sensitive; `buf` is scratch space for the normalized key.
    ///
    /// A key written as a path, `user[password]` (Rails, PHP, Express forms) or `user.pin`,
    /// is sensitive when the whole key is or any key on the path is, as the same data would be
    /// in JSON, where the whole value of a sensitive key is redacted.
    pub(super) fn is_sensitive(&self, raw: &str, buf: &mut String) -> bool {
        // Most keys are lower-case letters and digits already: normalizing would copy them as
        // they are, so they are looked up as they are.
        if raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return self.is_sensitive_normalized(raw);
        }
        normalize_key(raw, buf);
        self.is_sensitive_normalized(buf) || self.is_sensitive_path(raw, buf)
    }

    /// Whether some key on the path `raw` is sensitive (`user[password]`, `user.pin`).
    ///
    /// Kept out of [`is_sensitive`](Self::is_sensitive), which every key of a body goes
    /// through, so that it stays small enough to be inlined.
    #[inline(never)]
    fn is_sensitive_path(&self, raw: &str, buf: &mut String) -> bool {
        if !raw.bytes().any(|b| matches!(b, b'[' | b'.')) {
            return false;
        }
        raw.split(['[', ']', '.'])
            .filter(|segment| !segment.is_empty())
            .any(|segment| {
                normalize_key(segment, buf);
                self.is_sensitive_normalized(buf)
            })
    }
}

/// `key` without trailing digits and a [`REPEAT_WORDS`] word, when it has either.
///
/// Every key that matched nothing comes here, so most leave after a look at their last byte
/// (see [`REPEAT_ENDINGS`]), and a word is compared only when it ends in the key's last byte.
fn repeated(key: &str) -> Option<&str> {
    fn digits(k: &str) -> &str {
        k.trim_end_matches(|c: char| c.is_ascii_digit())
    }
    let last = *key.as_bytes().last()?;
    if !REPEAT_ENDINGS[usize::from(last)] {
        return None;
    }
    let mut base = if last.is_ascii_digit() {
        digits(key)
    } else {
        key
    };
    let last = base.as_bytes().last().copied();
    let word = REPEAT_WORDS
        .iter()
        .filter(|w| w.as_bytes().last().copied() == last)
        .find_map(|w| base.strip_suffix(w));
    if let Some(word) = word {
        base = digits(word);
    }
    (base.len() < key.len() && !base.is_empty()).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut buf = String::new();
        normalize_key(s, &mut buf);
        buf
    }

    fn defaults() -> KeyRules {
        KeyRules::new(
            DEFAULT_KEYS.iter().map(|k| Box::from(*k)).collect(),
            DEFAULT_KEY_SUFFIXES.iter().map(|k| Box::from(*k)).collect(),
            Vec::new(),
        )
    }

    /// Keys already in normal form skip the copy; every other spelling is normalized first.
    /// Found by review: `authorization` was a key but not a suffix, so `Proxy-Authorization`
    /// (and `X-Upstream-Authorization`) copied into a text or JSON kept its credential.
    #[test]
    fn authorization_is_a_suffix() {
        let r = crate::sanitize::Redactor::default();
        assert_eq!(
            r.redact_error("Proxy-Authorization: Negotiate SECRET"),
            "Proxy-Authorization: [REDACTED]"
        );
        assert_eq!(
            r.redact_error(r#"{"x_upstream_authorization":"SECRET"}"#),
            r#"{"x_upstream_authorization":"[REDACTED]"}"#
        );
    }

    #[test]
    fn every_spelling_of_a_sensitive_key_is_sensitive() {
        let rules = defaults();
        let mut buf = String::new();
        let sensitive = [
            "password",
            "Password",
            "pass_word",
            "user_password",
            "userPassword",
            "api-key",
            "apikey",
            "x-api-key",
        ];
        for key in sensitive {
            assert!(rules.is_sensitive(key, &mut buf), "{key}");
        }
        for key in ["passwordhint", "username", "id", "email", "sku2", "Item_2"] {
            assert!(!rules.is_sensitive(key, &mut buf), "{key}");
        }
    }

    /// The ending filter only skips keys no rule could match: every key and suffix, and
    /// anything ending in one, still matches; rules of one byte turn the filter off.
    #[test]
    fn the_ending_filter_skips_only_keys_nothing_matches() {
        let rules = defaults();
        let mut buf = String::new();
        for rule in DEFAULT_KEYS.iter().chain(DEFAULT_KEY_SUFFIXES) {
            assert!(rules.is_sensitive(rule, &mut buf), "{rule}");
            assert!(rules.may_match(rule), "{rule}");
        }
        for suffix in DEFAULT_KEY_SUFFIXES {
            assert!(
                rules.is_sensitive(&format!("my{suffix}"), &mut buf),
                "{suffix}"
            );
        }
        let skipped = ["email", "items", "shipping", "address", "quantity"];
        for key in skipped {
            assert!(!rules.may_match(key), "{key} is filtered out");
        }
        let short = KeyRules::new(
            ["x".into(), "password".into()].into_iter().collect(),
            Vec::new(),
            Vec::new(),
        );
        assert!(short.endings.is_none());
        assert!(short.is_sensitive("x", &mut buf));
        assert!(short.is_sensitive("password", &mut buf));
        assert!(!short.is_sensitive("email", &mut buf));
    }

    #[test]
    fn spellings_normalize_to_one_key() {
        for k in [
            "password",
            "Password",
            "pass_word",
            "pass-word",
            "PASSWORD",
            "passWord",
            "pass.word",
            "pass word",
        ] {
            assert_eq!(norm(k), "password", "{k}");
        }
        assert_eq!(norm("ÄPI_Kéy"), "äpikéy");
        for k in [
            "pass\u{a0}word",
            "pass\u{2002}word",
            "pass\u{2010}word",
            "pass\u{2013}word",
            "pass\u{2212}word",
            "pass\u{200b}word",
            "pass\u{ad}word",
            "pass\u{2060}word",
            "pass\u{feff}word",
        ] {
            assert_eq!(norm(k), "password", "{k:?}");
        }
    }

    #[test]
    fn default_set_covers_the_issue_list() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "password",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "token",
            "access_token",
            "refresh_token",
            "id_token",
            "api_key",
            "apikey",
            "authorization",
            "auth",
            "cookie",
            "session",
            "private_key",
            "credit_card",
            "card_number",
            "pan",
            "cvv",
            "cvc",
            "pin",
            "ssn",
            "otp",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Second copies of a secret (Django's `password1`/`password2`, Rails'
    /// `password_confirmation`, `cvv2`) and cloud secret keys are sensitive; other keys ending
    /// in digits or the same words are not.
    #[test]
    fn repeated_secrets_and_secret_keys() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "password1",
            "password2",
            "new_password1",
            "new_password2",
            "password_confirmation",
            "passwordConfirmation",
            "password_confirm",
            "password_repeat",
            "pin2",
            "cvv2",
            "Token_2",
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
            "secret_key",
            "stripe_secret_key",
            "access_key",
            "passcode",
            "credentials",
            "jsessionid",
            "PHPSESSID",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        // Anti-forgery tokens, as each framework names its field or header.
        for k in [
            "_csrf",
            "X-CSRF-Token",
            "csrfmiddlewaretoken",
            "authenticity_token",
            "_token",
            "_xsrf",
            "X-XSRF-TOKEN",
            "__RequestVerificationToken",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "confirmation",
            "email_confirmation",
            "password_hint2",
            "address2",
            "2",
            "aws_access_key_id",
            "primary_key",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// `user[password]` and `user.pin` are paths to a sensitive key.
    #[test]
    fn keys_written_as_paths() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "user[password]",
            "user[Password_Confirmation]",
            "password[]",
            "card[cvc]",
            "auth[user]",
            "user.pin",
            "users[0][api_key]",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in ["user[name]", "user.email", "items[0][qty]", "[]", "a..b"] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    #[test]
    fn suffixes_catch_prefixed_secrets_but_not_lookalikes() {
        let rules = defaults();
        let mut buf = String::new();
        assert!(rules.is_sensitive("new_password", &mut buf));
        assert!(rules.is_sensitive("X-Auth-Token", &mut buf));
        assert!(rules.is_sensitive("stripeSecret", &mut buf));
        for k in [
            "username",
            "email",
            "tokens_used",
            "spinner",
            "company",
            "id",
            "",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// A plural of a sensitive key names secrets as its singular names one: `{"secrets":
    /// ["…"]}`, `passwords`, `api_keys`, `tokens`, `cookies`, `db_passwords` kept theirs. Not
    /// of a key ending in `token`, which would take usage counts (`max_tokens`,
    /// `prompt_tokens`), and the plurals of keys that name things other than secrets stay
    /// (`sessions`, `pins`).
    #[test]
    fn plurals_of_sensitive_keys_are_sensitive() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "secrets",
            "passwords",
            "Passwords",
            "api_keys",
            "apiKeys",
            "tokens",
            "access_tokens",
            "refreshTokens",
            "cookies",
            "private_keys",
            "client_secrets",
            "ssns",
            "passphrases",
            "user[passwords]",
            "db_passwords",
            "stripe_api_keys",
            "aws_secret_keys",
            "webhook_secrets",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "max_tokens",
            "prompt_tokens",
            "total_tokens",
            "github_tokens",
            "sessions",
            "pins",
            "pans",
            "auths",
            "s",
            "status",
            "items",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
        let r = crate::sanitize::Redactor::default();
        assert_eq!(
            r.redact_error(r#"{"secrets":["hunter2"],"max_tokens":256}"#),
            r#"{"secrets":"[REDACTED]","max_tokens":256}"#
        );
    }
}
