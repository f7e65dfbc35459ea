//! Which keys are sensitive: key normalization and the default key set.
//!
//! Keys ending in `key` are sensitive by the word before it, from a list ([`DEFAULT_KEY_SUFFIXES`]:
//! `api_key`, `secret_key`, `access_key`, `encryption_key`, `signing_key`, `master_key`,
//! `client_key`, `auth_key`, `license_key`, `app_key`, Azure's `AccountKey`,
//! `Ocp-Apim-Subscription-Key`, …), not every `*key` but a list of ordinary ones. `key` names
//! data far more often than a secret: the `key` of a key/value pair, a `primary_key`,
//! `sort_key`, `partition_key`, `cache_key`, `idempotency_key`, `routing_key`, `object_key`,
//! `public_key`, `key_id`; such a list would never be complete and every key it missed would
//! lose its value, while a secret key under a name no list has is still caught by its value's
//! format (`sk_live_…`, `AKIA…`, `AIza…`, see `values`).
//!
//! A few short words are sensitive as the last word of a key only ([`WORD_KEYS`]): `pass` in
//! `smtp_pass`, `db-pass`, `dbPass` and `login[pass]`, but not in `compass`, `bypass`,
//! `passenger` or `pass_count`. A `passport` (a document's number) is left alone as other
//! personal data is: this module keeps credentials out, not everything personal, and an
//! `{"passport":…}` object is as often Passport.js's session data. A `boarding_pass` loses its
//! value: the word cannot tell it from a password.

use regex::Regex;

/// Keys whose value is always redacted, already normalized (see [`normalize_key`]).
pub(super) const DEFAULT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    // Short forms, also sensitive as a key's last word (see [`WORD_KEYS`]).
    "pass",
    "pw",
    "passphrase",
    "passcode",
    "secret",
    "clientsecret",
    "secretkey",
    "accesskey",
    "credentials",
    "credential",
    // AWS Secrets Manager's secret value, and Rails' key that signs its sessions.
    "secretstring",
    "secretbinary",
    "secretkeybase",
    "token",
    // A token named for its kind (`{"jwt":…}`, `{"bearer":…}`); as a last word too
    // (`id_jwt`), see [`WORD_KEYS`].
    "jwt",
    "bearer",
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
    // The other names of a card's security code (also suffixes, below) and the short one.
    "cvn",
    "csc",
    "pin",
    "ssn",
    "otp",
    "totp",
    "pincode",
    // OAuth's PKCE verifier, the device flow's codes, the ID token sent back as a hint; SAML's
    // response (its assertion) and artifact. `SAMLRequest` and `RelayState` hold no secret.
    "codeverifier",
    "devicecode",
    "usercode",
    "idtokenhint",
    "samlresponse",
    "samlart",
    // Signed URLs: Azure SAS's `sig`; `X-Amz-Signature` and `X-Goog-Signature` end in
    // `signature`. Anyone holding the URL may use it until it expires. `X-Amz-Credential`
    // names an access key id, date and region, no secret on its own.
    "sig",
    "signature",
    // Anti-forgery tokens named without `token`: Spring's `_csrf`, Tornado's `_xsrf`. A reader
    // of the trail who has one can forge requests for its session while it lasts.
    "csrf",
    "xsrf",
    // Found by a probe: a Wi-Fi or VPN pre-shared key's short form (wpa_supplicant's
    // `psk="…"`), and Redis' `requirepass` and `masterauth` (run-on words the `pass` and `auth`
    // rules do not split).
    "psk",
    "requirepass",
    "masterauth",
    // Found by a probe on 2026-12-07: express-session's cookie (`connect.sid=s%3A…` in a log
    // line). A bare `sid` stays: most are public ids (Twilio's `AccountSid` and `CallSid`, a
    // Windows security identifier, an Oracle instance, OpenID Connect's session claim), as
    // `appid` and `ak` stay; a session cookie named `sid` goes with its `Cookie` header.
    "connectsid",
    // Found by a probe on 2026-12-08: a wallet's recovery phrase (its whole secret), W3Schools'
    // login form's `psw` and `pswd`, WordPress's `pass1-text` (its `pass1` is `pass` and a
    // digit), session cookies named for their framework (Laravel, GitLab, CodeIgniter), an S3
    // customer-provided encryption key (`SSECustomerKey`; its header ends in
    // `encryptioncustomerkey`, a suffix), and OAuth's one-time callback codes.
    "mnemonic",
    "seedphrase",
    "recoveryphrase",
    "psw",
    "pswd",
    "pass1text",
    "laravelsession",
    "gitlabsession",
    "cisession",
    "ssecustomerkey",
    "oauthverifier",
    "authorizationcode",
    // Found by a probe on 2026-12-08: cookies passed on under another header's name by proxies
    // (`X-Forwarded-Cookie`, `X-Original-Cookie`, `X-Cookie`), and OVH's consumer key.
    "xcookie",
    "xforwardedcookie",
    "xoriginalcookie",
    "xovhconsumer",
    // Not a suffix: `preset_key` names no secret.
    "resetkey",
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
    // `db_credentials`, `userCredentials`, `LDAP_BIND_CREDENTIALS`. Not the singular as a
    // suffix: `X-Amz-Credential` names an access key's id, date and region, no secret.
    "credentials",
    // Keys named for what a key unlocks or does; see the module docs for why a list.
    "accesskey",
    "encryptionkey",
    "decryptionkey",
    "signingkey",
    "masterkey",
    "clientkey",
    "authkey",
    "licensekey",
    "appkey",
    "accountkey",
    "subscriptionkey",
    "stripekey",
    "hmackey",
    // Found by a probe: a pre-shared key (`presharedKey`, WireGuard's `PresharedKey`),
    // Authorize.net's `transactionKey`, Datadog's `DD-APPLICATION-KEY` (its `DD-API-KEY` ends
    // in `apikey`), Backblaze's `applicationKey`, Fastly's `Fastly-Key` header.
    "presharedkey",
    "transactionkey",
    "applicationkey",
    "fastlykey",
    // A private key's short form (`privKey`, `priv_key`, `wallet_privkey`).
    "privkey",
    // Found by a probe: Vault AppRole's `secret_id` (`VAULT_SECRET_ID`), Honeycomb's API key
    // header `X-Honeycomb-Team`, and a cookie named for the session it holds
    // (`session_cookie`, `auth_cookie`; not every `*cookie`: `accept_cookie` is a consent).
    "secretid",
    "honeycombteam",
    "sessioncookie",
    "authcookie",
    // Found by a probe on 2026-12-07: a security question's answer recovers an account as a
    // password does (`security_answer`, `securityQuestionAnswer`; `answer` alone stays), and
    // an IBAN (`iban`, `payout_iban`, `customerIban`) is a payment account's number, as a
    // card's is.
    "securityanswer",
    "securityquestionanswer",
    "secretanswer",
    "iban",
    // Found by a probe on 2026-12-08: the long forms of a password under any prefix
    // (`gpg_passphrase`, hostapd's `wpa_passphrase`, `device_passcode`: no word ends in
    // these), and an S3 customer key's header (`x-amz-server-side-encryption-customer-key`).
    "passphrase",
    "passcode",
    "encryptioncustomerkey",
    // `pass` and `pwd` run into what they unlock in small letters (`SMTPPASS`, `dbpass`, Java
    // keytool's `storepass` and `keypass`). As words they are read anyway (`smtp_pass`, see
    // [`WORD_KEYS`]); as suffixes they would take `bypass` and `compass`: these compounds only.
    "smtppass",
    "dbpass",
    "sqlpass",
    "pgpass",
    "ftppass",
    "ldappass",
    "redispass",
    "mailpass",
    "imappass",
    "rootpass",
    "adminpass",
    "userpass",
    "sshpass",
    "vncpass",
    "wifipass",
    "storepass",
    "keypass",
    "dbpwd",
    "sqlpwd",
    "rootpwd",
    "adminpwd",
    "userpwd",
    "smtppwd",
    // A card's security code under any prefix (`card_cvv`, `cardCvv`, `payment.cardCvc`): no
    // word ends in these letters. `cvv2` and `cvc2` are a key followed by digits.
    "cvv",
    "cvc",
    "cvn",
    "csc",
    // A PIN named for what it unlocks (`card_pin`, `atmPin`, `SIM_PIN`) or as a form names its
    // copies (`new_pin`, `confirmPin`). Not every `*pin`, nor `pin` as any last word: `spin`,
    // `map_pin`, `gpio_pin`, `drop_pin` name no secret. `pin_code` is a key of its own.
    "cardpin",
    "atmpin",
    "debitpin",
    "creditpin",
    "simpin",
    "bankpin",
    "accountpin",
    "walletpin",
    "securitypin",
    "transactionpin",
    "loginpin",
    "userpin",
    "newpin",
    "oldpin",
    "currentpin",
    "confirmpin",
    // Found by a probe on 2026-12-08: the one-time codes and seeds of identity providers
    // (Firebase's `oobCode`, which resets a password; Auth0's `oob_code` and `binding_code`;
    // Cognito's `ConfirmationCode`), reset and recovery keys, and the API keys of
    // JFrog (`X-JFrog-Art-Api`), Appwrite (`X-Appwrite-Key`) and RapidAPI (`X-Mashape-Key`).
    "oobcode",
    "bindingcode",
    "confirmationcode",
    "smscode",
    "2facode",
    "logincode",
    "activationcode",
    "resetcode",
    "passwordresetkey",
    "recoverykey",
    "unlockkey",
    "jfrogartapi",
    "appwritekey",
    "mashapekey",
    // One-time codes: a second factor or a recovery code lets its reader in while it lasts.
    "otpcode",
    "mfacode",
    "twofactorcode",
    "verificationcode",
    "securitycode",
    "backupcode",
    "recoverycode",
    "authcode",
    // OAuth's `client_assertion`, a JWT bearer `assertion`, SAML's.
    "assertion",
    "signature",
    // The word for password in other languages, as a suffix for their compounds
    // (`neues_Passwort`, `новый_пароль`).
    "passwort",
    "kennwort",
    "contraseña",
    "contrasena",
    "senha",
    "motdepasse",
    "wachtwoord",
    "密码",
    "パスワード",
    "пароль",
];

/// Exact keys that are sensitive also as the last word of a key (`smtp_pass`, `SMTP_PASS`,
/// `txtPwd`, `new_pw2`), words being split at `_`, `-`, `.`, `[`, spaces and camelCase.
/// As suffixes they would take `compass` and `bypass`. A word is only used while it is an
/// exact key (`remove_key("pass")` removes both).
///
/// `auth` is one too (`http_auth`, `basicAuth`, `PROXY_AUTH`: a client's `user:password`); not
/// in `oauth`, `author` or `auth_type`.
///
/// Found by a probe on 2026-12-08: `otp`, `totp` and `psk` too (`sms_otp`, `x-totp`,
/// `wifi_psk`); as suffixes they would take words that end in these letters.
const WORD_KEYS: &[&str] = &[
    "pass", "pw", "pwd", "auth", "jwt", "bearer", "otp", "totp", "psk",
];

/// Exact keys whose plural names no secrets: an API's `sessions` and a map's `pins` are lists
/// of things, not of credentials (`auths`, `pans` likewise).
const NOT_PLURAL: &[&str] = &["session", "pin", "pan", "auth"];

/// Suffixes whose plurals count rather than hold secrets: `max_tokens`, `prompt_tokens`,
/// `total_tokens` (a language model's usage). `tokens` itself, an exact key's plural, is one.
/// `assertions` counts a test run's checks (`numFailedAssertions`).
const COUNTED_SUFFIXES: &[&str] = &["token", "assertion"];

/// Words a form may put after a sensitive key for a second copy of its value: Rails'
/// `password_confirmation`, `password_confirm`, `password_repeat`, `password_again`. Digits
/// after a key mean the same (Django's `password1`/`password2`, `cvv2`); see
/// [`KeyRules::is_sensitive_normalized`]. So do the words for another form of the same
/// value: `password_new`, `password_old`, `password_current`, `passwordHash`, Rails'
/// `password_digest` (a hash is cracked offline), `api_key_value`.
const REPEAT_WORDS: &[&str] = &[
    "confirmation",
    "confirm",
    "repeat",
    "again",
    "new",
    "old",
    "current",
    "hash",
    "hashed",
    "digest",
    "value",
];

/// For each last byte of a key, the [`REPEAT_WORDS`] ending in it as bits of their indexes,
/// and bit 15 for the digits: every other key that matched nothing is done after one lookup,
/// and a key is compared only with the words that end as it does.
static REPEAT_ENDINGS: [u16; 256] = {
    let mut table = [0_u16; 256];
    let mut digit = b'0';
    while digit <= b'9' {
        table[digit as usize] = DIGIT_BIT;
        digit += 1;
    }
    let mut i = 0;
    while i < REPEAT_WORDS.len() {
        let word = REPEAT_WORDS[i].as_bytes();
        table[word[word.len() - 1] as usize] |= 1 << i;
        i += 1;
    }
    table
};

/// For each last byte of a key, the bytes before it that a [`REPEAT_WORDS`] word ends with
/// (their low five bits) as bits: most keys are told by their last two bytes that no word
/// ends them (`name`, `price` and `street` end as `value`, `digest` and `current` do not).
static REPEAT_PAIRS: [u32; 256] = {
    let mut table = [0_u32; 256];
    let mut i = 0;
    while i < REPEAT_WORDS.len() {
        let word = REPEAT_WORDS[i].as_bytes();
        table[word[word.len() - 1] as usize] |= 1 << (word[word.len() - 2] & 31);
        i += 1;
    }
    table
};

/// The bit of [`REPEAT_ENDINGS`] that marks a digit; fewer than 15 words fit beside it.
const DIGIT_BIT: u16 = 1 << 15;
const _: () = assert!(REPEAT_WORDS.len() < 15);

/// Normalizes a key into `buf`: lowercase, without the characters [`dropped_from_key`] names.
///
/// `Pass-Word`, `pass_word` and `PASSWORD` all become `password`. `buf` is reused across calls
/// so matching a key allocates nothing once it has grown.
pub(super) fn normalize_key(raw: &str, buf: &mut String) {
    buf.clear();
    if raw.is_ascii() {
        // Copied in runs between the dropped bytes and lowered in place: pushing each byte as
        // a `char` cost a camelCase key a third more.
        let mut from = 0;
        for (at, b) in raw.bytes().enumerate() {
            if matches!(b, b'_' | b'-' | b'.') || b.is_ascii_whitespace() {
                buf.push_str(&raw[from..at]);
                from = at + 1;
            }
        }
        buf.push_str(&raw[from..]);
        buf.make_ascii_lowercase();
    } else {
        for c in raw.chars().map(fold_fullwidth) {
            if !dropped_from_key(c) {
                buf.extend(c.to_lowercase());
            }
        }
    }
}

/// `c` as ASCII when it is a fullwidth form of an ASCII character (U+FF01..U+FF5E, what an
/// East Asian input method types: `ｐａｓｓｗｏｒｄ`, `ａｐｉ＿ｋｅｙ`), else `c`.
fn fold_fullwidth(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        _ => c,
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
    /// The suffixes of three bytes or more with their last three bytes, sorted by them: a key
    /// is compared only with the few that end as it does, however many there are (the `pass`
    /// compounds all end in `ass`, `address` in `ess`).
    suffixes: Vec<(u32, Box<str>)>,
    /// The suffixes shorter than three bytes, compared with every key.
    short_suffixes: Vec<Box<str>>,
    regexes: Vec<Regex>,
    /// The [`WORD_KEYS`] that are exact keys.
    words: Vec<&'static str>,
    /// Shortest exact key or suffix; shorter keys cannot match either.
    min_len: usize,
    /// The last two bytes of every exact key and suffix, as bits of a 64 Ki-bit set: a key
    /// ending in no such pair matches neither, and most keys of a body end in none. `None`
    /// when a rule is shorter than two bytes.
    endings: Option<Box<[u64]>>,
    /// The length, first and last byte of every exact key, as bits of a 64 Ki-bit set (see
    /// [`exact_bit`]): a key that passed [`endings`](Self::endings) and has none of them is
    /// no exact key and is not hashed. Endings alone let many through (`total` ends as
    /// `credential`, `country` as `secretbinary`, `mode` as `pincode`).
    exact_filter: Box<[u64]>,
}

/// Whether `bit` is set in a 64 Ki-bit set.
fn has_bit(set: &[u64], bit: usize) -> bool {
    set.get(bit / 64)
        .is_some_and(|word| word & (1 << (bit % 64)) != 0)
}

/// The bit of a key in [`KeyRules::exact_filter`]: its length up to 63, and the low five
/// bits of its first and last bytes (which tell the letters apart).
fn exact_bit(key: &[u8]) -> usize {
    let len = key.len().min(63);
    let first = key.first().map_or(0, |b| b & 31);
    let last = key.last().map_or(0, |b| b & 31);
    len << 10 | usize::from(first) << 5 | usize::from(last)
}

/// A key's last three bytes, the group of [`KeyRules::suffixes`] it is compared with.
fn ending3(key: &[u8]) -> Option<u32> {
    match key {
        [.., a, b, c] => Some(u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c)),
        _ => None,
    }
}

/// The bit of a key's last two bytes in [`KeyRules::endings`].
fn ending(key: &[u8]) -> Option<u16> {
    match key {
        [.., a, b] => Some(u16::from(*a) << 8 | u16::from(*b)),
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
        let mut exact_filter = vec![0_u64; (1 << 16) / 64].into_boxed_slice();
        for key in &exact {
            let bit = exact_bit(key.as_bytes());
            exact_filter[bit / 64] |= 1 << (bit % 64);
        }
        let mut endings = Some(vec![0_u64; (1 << 16) / 64].into_boxed_slice());
        for rule in exact.iter().chain(suffixes.iter()) {
            match (ending(rule.as_bytes()).map(usize::from), &mut endings) {
                (Some(bit), Some(set)) => set[bit / 64] |= 1 << (bit % 64),
                _ => endings = None,
            }
        }
        let words = WORD_KEYS
            .iter()
            .copied()
            .filter(|word| exact.contains(*word))
            .collect();
        let (short_suffixes, long): (Vec<_>, Vec<_>) =
            suffixes.into_iter().partition(|s| s.len() < 3);
        let mut suffixes: Vec<(u32, Box<str>)> = long
            .into_iter()
            .filter_map(|s| Some((ending3(s.as_bytes())?, s)))
            .collect();
        suffixes.sort_unstable();
        Self {
            exact,
            suffixes,
            short_suffixes,
            regexes,
            words,
            min_len,
            exact_filter,
            endings,
        }
    }

    /// Whether some exact key or suffix may match `key`, by its length and last two bytes.
    #[inline]
    fn may_match(&self, key: &str) -> bool {
        if key.len() < self.min_len {
            return false;
        }
        match (&self.endings, ending(key.as_bytes()).map(usize::from)) {
            (Some(set), Some(bit)) => has_bit(set, bit),
            _ => true,
        }
    }

    /// Whether `key`, which [`may_match`](Self::may_match), is an exact key: hashed only when
    /// its length and first and last bytes are an exact key's.
    #[inline]
    fn is_exact(&self, key: &str) -> bool {
        has_bit(&self.exact_filter, exact_bit(key.as_bytes())) && self.exact.contains(key)
    }

    /// Whether a normalized key is one of the exact keys or ends in one of the suffixes.
    /// Inlined: every key of every body asks, most of them ruled out by `may_match` at once.
    #[inline(always)]
    fn matches(&self, key: &str) -> bool {
        self.may_match(key) && (self.is_exact(key) || self.ends_in_suffix(key, |_| true))
    }

    /// Whether `key` ends in a suffix that `keep` keeps.
    ///
    /// Only keys that [`may_match`](Self::may_match) and are no exact key come here: kept out
    /// of line so that [`matches`](Self::matches) stays small enough to be inlined.
    #[inline(never)]
    fn ends_in_suffix(&self, key: &str, keep: impl Fn(&str) -> bool) -> bool {
        if self
            .short_suffixes
            .iter()
            .any(|s| key.ends_with(&**s) && keep(s))
        {
            return true;
        }
        let Some(end) = ending3(key.as_bytes()) else {
            return false;
        };
        let from = self.suffixes.partition_point(|(e, _)| *e < end);
        self.suffixes[from..]
            .iter()
            .take_while(|(e, _)| *e == end)
            .any(|(_, s)| key.ends_with(&**s) && keep(s))
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
        self.matches(key)
            || self.may_be_otherwise(key.as_bytes()) && self.is_sensitive_otherwise(key)
    }

    /// Whether a key that matched no key or suffix may still be sensitive: one that ends in a
    /// digit or a [`REPEAT_WORDS`] word's last two bytes, a plural, or any key when there are
    /// regexes. Most keys are ruled out here, without the call that reads them further.
    #[inline(always)]
    fn may_be_otherwise(&self, key: &[u8]) -> bool {
        !self.regexes.is_empty()
            || match key {
                [.., before, last] => {
                    *last == b's'
                        || last.is_ascii_digit()
                        || REPEAT_PAIRS[usize::from(*last)] & (1 << (before & 31)) != 0
                }
                _ => false,
            }
    }

    /// [`is_sensitive_normalized`](Self::is_sensitive_normalized) of a key that matched no key
    /// or suffix: a repeated key, a plural or a regex's.
    #[inline(never)]
    fn is_sensitive_otherwise(&self, key: &str) -> bool {
        repeated(key).is_some_and(|base| self.matches(base))
            || self.is_plural(key)
            || self.regexes.iter().any(|re| re.is_match(key))
    }

    /// Whether a normalized key is the plural of an exact key or of a key ending in a suffix
    /// (`db_passwords`, `stripe_api_keys`), not one of [`NOT_PLURAL`] nor of
    /// [`COUNTED_SUFFIXES`].
    fn is_plural(&self, key: &str) -> bool {
        key.strip_suffix('s').is_some_and(|one| {
            self.may_match(one)
                && !NOT_PLURAL.contains(&one)
                && (self.is_exact(one)
                    || self.ends_in_suffix(one, |suffix| !COUNTED_SUFFIXES.contains(&suffix)))
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
        self.is_sensitive_spelled(raw, buf)
    }

    /// [`is_sensitive`](Self::is_sensitive) of a key not in normal form: kept out of line so
    /// that the common case, inlined where keys are read, stays small.
    #[inline(never)]
    fn is_sensitive_spelled(&self, raw: &str, buf: &mut String) -> bool {
        normalize_key(raw, buf);
        self.is_sensitive_normalized(buf)
            || self.may_end_in_word(buf) && self.last_word_is_sensitive(raw)
            || self.is_sensitive_path(raw, buf)
    }

    /// Whether a normalized key, without trailing digits, ends in one of
    /// [`words`](Self::words): what its last word must be, compared only for such keys.
    fn may_end_in_word(&self, key: &str) -> bool {
        let key = key.trim_end_matches(|c: char| c.is_ascii_digit());
        self.words.iter().any(|word| key.ends_with(word))
    }

    /// Whether the last word of a raw key, without trailing digits, is one of
    /// [`words`](Self::words): `smtp_pass`, `SMTP_PASS`, `dbPass`, `txtPwd`, `new_pw2`.
    #[inline(never)]
    fn last_word_is_sensitive(&self, raw: &str) -> bool {
        if self.words.is_empty() {
            return false;
        }
        let key = raw
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .as_bytes();
        let mut start = key.len();
        if key.last().is_some_and(u8::is_ascii_uppercase) {
            while start > 0 && key[start - 1].is_ascii_uppercase() {
                start -= 1;
            }
        } else {
            while start > 0 && key[start - 1].is_ascii_lowercase() {
                start -= 1;
            }
            if start > 0 && key[start - 1].is_ascii_uppercase() {
                start -= 1;
            }
        }
        let word = &key[start..];
        self.words
            .iter()
            .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
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
                self.is_sensitive_normalized(buf) || self.last_word_is_sensitive(segment)
            })
    }
}

/// An [`oauth_mark`]: the key marks an OAuth token request or callback on its own
/// (`grant_type`, `redirect_uri`, `code_verifier`).
pub(super) const OAUTH_REQUEST: u8 = 1;
/// An [`oauth_mark`]: `state`, an OAuth callback's (and many an address's).
pub(super) const OAUTH_STATE: u8 = 2;
/// An [`oauth_mark`]: `client_id`, a token request's (and many an API call's).
pub(super) const OAUTH_CLIENT_ID: u8 = 4;

/// Keys that mark a query, form or JSON object as an OAuth authorization callback or token
/// request, whose `code` is a one-time credential (`code` alone names countries, statuses and
/// promotions); what each says on its own.
const OAUTH_MARKS: &[(&str, u8)] = &[
    ("grant_type", OAUTH_REQUEST),
    ("redirect_uri", OAUTH_REQUEST),
    ("code_verifier", OAUTH_REQUEST),
    ("state", OAUTH_STATE),
    ("client_id", OAUTH_CLIENT_ID),
];

/// What `key` (decoded, any ASCII case, its words run together or apart by `_` or `-`:
/// `grant_type`, `grantType`, `grant-type`) says of the OAuth request it is a member of: one
/// of [`OAUTH_REQUEST`], [`OAUTH_STATE`], [`OAUTH_CLIENT_ID`], or 0. A query or form is such a
/// request with one marking it so or a `state` (see `form`); a JSON object needs one marking
/// it so, or a `client_id` and a `state` together (`{"code":"US","state":"CA"}` is an
/// address).
pub(super) fn oauth_mark(key: &str) -> u8 {
    /// `key` spells `name` but for its case and the separators between words.
    fn spells(key: &[u8], name: &[u8]) -> bool {
        let (mut k, mut n) = (0, 0);
        loop {
            while key.get(k).is_some_and(|b| matches!(b, b'_' | b'-')) {
                k += 1;
            }
            while name.get(n) == Some(&b'_') {
                n += 1;
            }
            match (key.get(k), name.get(n)) {
                (None, None) => return true,
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => (k, n) = (k + 1, n + 1),
                _ => return false,
            }
        }
    }
    let key = key.as_bytes();
    // Most keys leave at their first letter: the names' differ but for `c`.
    let first = key
        .iter()
        .find(|b| !matches!(b, b'_' | b'-'))
        .map(|b| b | 0x20);
    OAUTH_MARKS
        .iter()
        .find(|(name, _)| first == name.bytes().next() && spells(key, name.as_bytes()))
        .map_or(0, |&(_, mark)| mark)
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
    let mut words = REPEAT_ENDINGS[usize::from(last)];
    if words == 0 {
        return None;
    }
    let mut base = key;
    if words & DIGIT_BIT != 0 {
        base = digits(key);
        words = base
            .as_bytes()
            .last()
            .map_or(0, |last| REPEAT_ENDINGS[usize::from(*last)] & !DIGIT_BIT);
    }
    while words != 0 {
        let word = REPEAT_WORDS[words.trailing_zeros() as usize];
        words &= words - 1;
        if let Some(rest) = base.strip_suffix(word) {
            base = digits(rest);
            break;
        }
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

    /// Found by a probe on 2026-12-08: these keys named no secret.
    #[test]
    fn passphrases_one_time_codes_wallet_phrases_and_framework_sessions_are_keys() {
        let rules = defaults();
        let mut buf = String::new();
        for key in [
            "gpg_passphrase",
            "wpa_passphrase",
            "GPG_PASSPHRASE",
            "device_passcode",
            "sms_otp",
            "x-totp",
            "X-Otp",
            "wifi_psk",
            "mnemonic",
            "seed_phrase",
            "recoveryPhrase",
            "psw",
            "pswd",
            "pass1-text",
            "laravel_session",
            "_gitlab_session",
            "ci_session",
            "SSECustomerKey",
            "x-amz-server-side-encryption-customer-key",
            "x-amz-copy-source-server-side-encryption-customer-key",
            "oauth_verifier",
            "authorization_code",
        ] {
            assert!(rules.is_sensitive(key, &mut buf), "{key}");
        }
        // Words that end in the letters of a word key, and ids of what these keys name.
        for key in [
            "hotspot",
            "laptop",
            "depot",
            "session_count",
            "customer_key_id",
            "x-amz-server-side-encryption-customer-key-md5",
            "x-amz-server-side-encryption-customer-algorithm",
            "ticket",
        ] {
            assert!(!rules.is_sensitive(key, &mut buf), "{key}");
        }
    }

    /// Found by the sanitizer probe on 2026-12-08 (a third round): identity providers' one-time
    /// codes and seeds, reset and recovery keys, services' key headers, cookies passed on
    /// under another header's name.
    #[test]
    fn identity_providers_codes_and_services_key_headers_are_keys() {
        let rules = defaults();
        let mut buf = String::new();
        for key in [
            "oobCode",
            "oob_code",
            "binding_code",
            "ConfirmationCode",
            "sms_code",
            "2fa_code",
            "login_code",
            "activation_code",
            "reset_code",
            "reset_key",
            "password_reset_key",
            "recovery_key",
            "unlock_key",
            "X-JFrog-Art-Api",
            "X-Appwrite-Key",
            "X-Mashape-Key",
            "X-Ovh-Consumer",
            "X-Cookie",
            "X-Forwarded-Cookie",
            "X-Original-Cookie",
        ] {
            assert!(rules.is_sensitive(key, &mut buf), "{key}");
        }
        for key in [
            "preset_key",
            "restart_api",
            "promo_code",
            "country_code",
            "status_code",
            "accept_cookie",
            "cookie_consent",
        ] {
            assert!(!rules.is_sensitive(key, &mut buf), "{key}");
        }
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

    /// The filters only skip keys no rule could match: every key and suffix, and anything
    /// ending in a suffix, still matches; rules of one byte turn the ending filter off.
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
        let skipped = ["email", "items", "shipped", "city", "quantity"];
        for key in skipped {
            assert!(!rules.may_match(key), "{key} is filtered out");
        }
        let short = KeyRules::new(
            ["x".into(), "password".into()].into_iter().collect(),
            vec!["y".into()],
            Vec::new(),
        );
        assert!(short.endings.is_none());
        assert!(short.is_sensitive("x", &mut buf));
        assert!(short.is_sensitive("password", &mut buf));
        assert!(short.is_sensitive("my_y", &mut buf));
        for key in ["country", "total", "mode", "config"] {
            assert!(!rules.is_exact(key), "{key} is not hashed");
        }
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
        // Every word, after an exact key and a suffix, with digits or not: none is ruled out by
        // its last two bytes (`may_be_otherwise`).
        for word in REPEAT_WORDS {
            for key in [
                format!("password_{word}"),
                format!("api_key{}", word.to_uppercase()),
                format!("pin_{word}2"),
            ] {
                assert!(rules.is_sensitive(&key, &mut buf), "{key}");
            }
        }
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
    /// `pass` and `pwd` run into what they unlock, in small letters, as configuration names
    /// them (`SMTPPASS`, `MYSQL_ROOTPASS`, keytool's `storepass`): the compounds the suffix list
    /// names are sensitive, other words that end in `pass` are not.
    #[test]
    fn run_on_pass_compounds() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "smtppass",
            "SMTPPASS",
            "dbpass",
            "DB_DBPASS",
            "mysqlpass",
            "MYSQL_ROOTPASS",
            "ldappass",
            "keystorepass",
            "truststorePass",
            "keypass",
            "adminpwd",
            "dbpwd",
            "emailpass",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "compass",
            "bypass",
            "overpass",
            "underpass",
            "surpass",
            "trespass",
            "keepass",
            "address",
            "class",
            "boss",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: `pass` and its short forms kept their values. They count as the last
    /// word of a key (split at `_`, `-`, `.`, `[`, spaces and camelCase), so `smtp_pass` and
    /// `txtPwd` are sensitive, while words that merely end or start in `pass` are not.
    #[test]
    fn pass_and_its_short_forms_as_the_last_word() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "pass",
            "PASS",
            "new_pass",
            "pass1",
            "pass2",
            "new_pass2",
            "smtp_pass",
            "SMTP_PASS",
            "db-pass",
            "dbPass",
            "login[pass]",
            "pw",
            "userPW",
            "old_pw",
            "pwd",
            "txtPwd",
            "passwd",
            "userPassword",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "compass",
            "bypass",
            "by_pass_cache",
            "passenger",
            "passport",
            "pass_count",
            "passCount",
            "smtppassage",
            "pwa",
            "npw_id",
            "Compass",
            "boardingPassId",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: `auth` as a key's last word (Elasticsearch's `http_auth` and
    /// `basic_auth`, a proxy's `proxyAuth`), keys ending in `credentials`, a private key's
    /// short form, and `jwt` and `bearer` kept their values (`"http_auth":"elastic:hunter2"`).
    #[test]
    fn auth_as_the_last_word_credentials_and_privkey() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "http_auth",
            "basic_auth",
            "basicAuth",
            "proxyAuth",
            "PROXY_AUTH",
            "auth",
            "db_credentials",
            "userCredentials",
            "LDAP_BIND_CREDENTIALS",
            "privKey",
            "priv_key",
            "wallet_privkey",
            "jwt",
            "JWT",
            "bearer",
            "id_jwt",
            "authJwt",
            "user_bearer",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "oauth",
            "author",
            "auth_type",
            "authType",
            "auth_method",
            "auths",
            "X-Amz-Credential",
            "credential_id",
            "privacy",
            "privileges",
            "jwt_expiry",
            "bearer_type",
            "jwks_uri",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: keys named for what a key unlocks or does (`encryption_key`,
    /// `signing_key`, Azure's `AccountKey`) kept their values. The keys that name data rather
    /// than a secret stay.
    #[test]
    fn secret_keys_by_their_word_and_the_keys_that_are_not() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "stripe_key",
            "encryption_key",
            "signing_key",
            "master_key",
            "client_key",
            "auth_key",
            "authKey",
            "license_key",
            "aws_access_key",
            "access_key",
            "secret_key_base",
            "AccountKey",
            "SharedAccessKey",
            "app_key",
            "APP_KEY",
            "hmac_key",
            "subscription_key",
            "Ocp-Apim-Subscription-Key",
            "license_keys",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "key",
            "primary_key",
            "sort_key",
            "partition_key",
            "cache_key",
            "idempotency_key",
            "Idempotency-Key",
            "foreign_key",
            "object_key",
            "routing_key",
            "public_key",
            "key_id",
            "SharedAccessKeyName",
            "AccountName",
            "monkey",
            "hotkey",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: AWS Secrets Manager's `SecretString`, a singular `credential`, and a
    /// sensitive key followed by a word naming another form of its value kept their values.
    #[test]
    fn secret_values_under_other_names() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "SecretString",
            "SecretBinary",
            "credential",
            "password_new",
            "password_old",
            "passwordHash",
            "password_hashed",
            "password_digest",
            "password_confirmation",
            "api_key_value",
            "token_value",
            "currentPassword",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "passwordhint",
            "password_hint",
            "value",
            "hash",
            "new",
            "digest",
            "key_value",
            "X-Amz-Credential",
            "credential_id",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: one-time codes (second factors, recovery codes) kept their values;
    /// other codes (`country_code`, `status_code`, `code`) stay.
    #[test]
    fn one_time_codes() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "totp",
            "mfa_code",
            "otp_code",
            "verification_code",
            "email_verification_code",
            "recovery_codes",
            "recovery_code",
            "pin_code",
            "pinCode",
            "security_code",
            "backup_codes",
            "two_factor_code",
            "auth_code",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "code",
            "country_code",
            "status_code",
            "error_code",
            "promo_code",
            "zip_code",
            "currency_code",
            "language_code",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: OAuth's and SAML's credentials kept their values, as did signed URLs'
    /// signatures. Their public companions stay.
    #[test]
    fn oauth_saml_and_signatures() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "code_verifier",
            "device_code",
            "user_code",
            "client_assertion",
            "assertion",
            "SAMLResponse",
            "SAMLart",
            "id_token_hint",
            "X-Amz-Signature",
            "X-Amz-Security-Token",
            "sig",
            "X-Goog-Signature",
            "signature",
            "x-hub-signature",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "code_challenge",
            "code_challenge_method",
            "client_assertion_type",
            "RelayState",
            "SAMLRequest",
            "assertions",
            "numFailedAssertions",
            "X-Amz-Credential",
            "X-Amz-Algorithm",
            "X-Amz-SignedHeaders",
            "state",
            "redirect_uri",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
    }

    /// Found by a probe: fullwidth spellings (`ｐａｓｓｗｏｒｄ`, what an IME types) and the word
    /// for password in other languages kept their values.
    #[test]
    fn fullwidth_and_other_languages() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "ｐａｓｓｗｏｒｄ",
            "ＰＡＳＳＷＯＲＤ",
            "ａｐｉ＿ｋｅｙ",
            "ｐｗｄ",
            "passwort",
            "neues_Passwort",
            "kennwort",
            "contraseña",
            "contrasena",
            "senha",
            "mot_de_passe",
            "motdepasse",
            "wachtwoord",
            "密码",
            "パスワード",
            "пароль",
            "новый_пароль",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in ["ｕｓｅｒ", "ｃｏｍｐａｓｓ", "nom", "имя", "用户名"] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
        assert_eq!(norm("ｐａｓｓ＿ｗｏｒｄ"), "password");
    }
    /// Found by a probe: a card's security code and PIN under a prefix (`card_cvv`, `cardCvv`,
    /// `card_pin`) or named `CVN` kept their values; only `card.cvv`, a path, was redacted.
    /// `pin` counts after what it unlocks, not as any last word.
    #[test]
    fn card_codes_and_pins_under_a_prefix() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "card_cvv",
            "cardCvv",
            "CARD_CVV2",
            "card_cvc2",
            "cardCvc",
            "CVN",
            "card_cvn",
            "csc",
            "card_csc",
            "cvv2",
            "card_pin",
            "cardPin",
            "atm_pin",
            "SIM_PIN",
            "debitCardPin",
            "new_pin",
            "confirmPin",
            "card_pins",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "spin",
            "pinned",
            "pin_count",
            "map_pin",
            "gpio_pin",
            "drop_pin",
            "mapping",
            "shipping",
            "opinion",
            "pins",
            "desc",
            "misc",
            "cvs",
            "card_type",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
        let r = crate::sanitize::Redactor::default();
        let body = |json: &str| {
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                json.as_bytes(),
            ))
            .unwrap_or_default()
        };
        assert_eq!(
            body(
                r#"{"card":{"cvv":"321"},"card_cvv":"323","cardCvv":"324","CVN":"325","card_pin":"9876"}"#
            ),
            r#"{"card":{"cvv":"[REDACTED]"},"card_cvv":"[REDACTED]","cardCvv":"[REDACTED]","CVN":"[REDACTED]","card_pin":"[REDACTED]"}"#
        );
        let kept = r#"{"spin":1,"pinned":true,"shipping":"express","mapping":"a","opinion":"ok","map_pin":"48.85,2.35"}"#;
        assert_eq!(body(kept), kept);
        assert_eq!(
            r.redact_error("payment failed: card_cvv=323, cardPin=9876"),
            "payment failed: card_cvv=[REDACTED], cardPin=[REDACTED]"
        );
    }

    /// The new keys hold in every place a key is read: JSON, forms and queries, a text's
    /// `key=value`, an Azure connection string's `;`-separated pairs.
    #[test]
    fn new_keys_in_every_body() {
        let r = crate::sanitize::Redactor::default();
        let body = |ct: &str, text: &str| {
            r.redact_body(&crate::sanitize::BodyInput::new(Some(ct), text.as_bytes()))
                .unwrap_or_default()
        };
        for json in [
            r#"{"smtp_pass":"hunter2"}"#,
            r#"{"encryption_key":"hunter2"}"#,
            r#"{"SecretString":"hunter2"}"#,
            r#"{"recovery_codes":["hunter2"]}"#,
            r#"{"ｐａｓｓｗｏｒｄ":"hunter2"}"#,
            r#"{"passwordHash":"hunter2"}"#,
        ] {
            assert!(
                !body("application/json", json).contains("hunter2"),
                "{json}"
            );
        }
        for form in [
            "user=ann&pass=hunter2",
            "login[pass]=hunter2",
            "txtPwd=hunter2",
            "mfa_code=hunter2",
        ] {
            let stored = body("application/x-www-form-urlencoded", form);
            assert!(!stored.contains("hunter2"), "{form}: {stored}");
        }
        for query in [
            "sv=2021-06-08&ss=b&sig=hunter2%2Bsig%3D",
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524&X-Amz-Signature=hunter2aaaa",
            "X-Goog-Signature=hunter2bbbb",
            "code_verifier=hunter2",
        ] {
            assert!(!r.redact_query(query).contains("hunter2"), "{query}");
        }
        for text in [
            "db_pass=hunter2",
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=hunter2abc==;EndpointSuffix=x",
            "Endpoint=sb://x/;SharedAccessKeyName=Root;SharedAccessKey=hunter2abc=",
            "passwort: hunter2",
        ] {
            assert!(!r.redact_error(text).contains("hunter2"), "{text}");
        }
        // What must stay.
        assert_eq!(
            body(
                "application/json",
                r#"{"compass":"N","bypass_cache":true,"sort_key":"a","code":"US","key":"k"}"#
            ),
            r#"{"compass":"N","bypass_cache":true,"sort_key":"a","code":"US","key":"k"}"#
        );
        assert_eq!(
            r.redact_query("X-Amz-Algorithm=AWS4-HMAC-SHA256&RelayState=%2Fhome"),
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&RelayState=%2Fhome"
        );
        assert_eq!(
            r.redact_error("AccountName=a;SharedAccessKeyName=Root"),
            "AccountName=a;SharedAccessKeyName=Root"
        );
    }

    /// Found by a probe on 2026-12-07: a security question's answer, an IBAN and
    /// express-session's `connect.sid` kept their values. `sid` alone stays, as `appid` does:
    /// Twilio's `AccountSid`, a Windows SID, an Oracle SID and OpenID Connect's `sid` claim
    /// name no secret.
    #[test]
    fn answers_ibans_and_session_ids() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "security_answer",
            "securityAnswer",
            "security_question_answer",
            "secret_answer",
            "iban",
            "IBAN",
            "payout_iban",
            "customerIban",
            "connect.sid",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "sid",
            "AccountSid",
            "call_sid",
            "oracle_sid",
            "answer",
            "security_question",
            "iban_country",
            "bic",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
        let r = crate::sanitize::Redactor::default();
        assert_eq!(
            r.redact_error(
                r#"{"sid":"CA123","security_answer":"Rex","iban":"DE89370400440532013000","answer":"42"}"#
            ),
            r#"{"sid":"CA123","security_answer":"[REDACTED]","iban":"[REDACTED]","answer":"42"}"#
        );
        assert_eq!(
            r.redact_error("session connect.sid=s%3Aabc123; Path=/"),
            "session connect.sid=[REDACTED]; Path=/"
        );
    }

    /// Found by a probe: Vault's `secret_id`, a pre-shared key, Authorize.net's
    /// `transactionKey`, Datadog's, Fastly's and Honeycomb's key headers, a session's cookie and
    /// Redis' password directives kept their values. Their public companions stay: `appid` and
    /// `ak` are left out, as most `appid`s (Facebook's, WeChat's) are public ids.
    #[test]
    fn platform_keys_found_by_a_probe() {
        let rules = defaults();
        let mut buf = String::new();
        for k in [
            "secret_id",
            "SecretId",
            "VAULT_SECRET_ID",
            "presharedKey",
            "pre_shared_key",
            "PresharedKey",
            "psk",
            "transactionKey",
            "DD-API-KEY",
            "dd-application-key",
            "DD_APPLICATION_KEY",
            "applicationKey",
            "fastly-key",
            "FASTLY_KEY",
            "x-honeycomb-team",
            "session_cookie",
            "auth_cookie",
            "requirepass",
            "masterauth",
        ] {
            assert!(rules.is_sensitive(k, &mut buf), "{k}");
        }
        for k in [
            "role_id",
            "secret_name",
            "applicationKeyId",
            "application_id",
            "appid",
            "ak",
            "team",
            "honeycomb_dataset",
            "cookie_consent",
            "accept_cookie",
            "transaction_id",
            "master",
        ] {
            assert!(!rules.is_sensitive(k, &mut buf), "{k}");
        }
        let r = crate::sanitize::Redactor::default();
        assert_eq!(
            r.redact_error(r#"{"role_id":"r-1","secret_id":"s-9","transactionKey":"tk9"}"#),
            r#"{"role_id":"r-1","secret_id":"[REDACTED]","transactionKey":"[REDACTED]"}"#
        );
        let mut headers = http::HeaderMap::new();
        let names = [
            "dd-api-key",
            "dd-application-key",
            "fastly-key",
            "x-honeycomb-team",
            "x-honeycomb-dataset",
        ]
        .map(http::HeaderName::from_static);
        for name in &names {
            headers.insert(name.clone(), http::HeaderValue::from_static("abc123"));
        }
        assert_eq!(
            r.redact_headers(&headers, &names).as_deref(),
            Some(
                r#"{"dd-api-key":"[REDACTED]","dd-application-key":"[REDACTED]","fastly-key":"[REDACTED]","x-honeycomb-team":"[REDACTED]","x-honeycomb-dataset":"abc123"}"#
            )
        );
    }
}
