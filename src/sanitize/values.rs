//! Rules by value: secrets recognized by their shape wherever they appear.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem;
use regex::{Captures, NoExpand, Regex};

/// An authorization scheme, `Bearer`, `Basic` or `Token` in any case, and the space after it;
/// the run after that is read by [`redact_credentials`], and which runs are credentials is
/// decided by [`is_credential`]. The scheme word is kept so the stored text still says what was
/// there. The credential is redacted to the end of its run, not only RFC 6750's token
/// characters: `Bearer eyJ….!!!.zzz` copied by a handler must not leave `!!!.zzz` behind, and
/// redacting a trailing `,` or `"` costs nothing. The spaces before and after the scheme may be
/// a no-break space or written as one of [`SPACE_ESCAPES`] (`sent\u0020Basic\u0020dXNl…`, as
/// an encoder that escapes spaces writes a header into a log line or a JSON string;
/// `Bearer%20…`, `Bearer&nbsp;…`) or as an HTML numeric reference, leading zeros too
/// (`&#x0020;`); the space after it also as a form's `+` (`?h=Bearer+…`, a URL's query in a
/// log line).
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    let escapes = SPACE_ESCAPES
        .iter()
        .map(|e| regex::escape(e))
        .chain([r"&#0*(?:32|9|160);".into(), r"&#x0*(?:20|9|a0);".into()])
        .collect::<Vec<_>>()
        .join("|");
    Regex::new(&format!(
        r"(?:(?-u:\b)|\u{{a0}}|(?i:{escapes}))((?i:bearer|basic|token))(?:[ \t\u{{a0}}+]|(?i:{escapes}))+"
    ))
    .expect("bearer pattern is valid")
});

/// A space, tab or no-break space written as an escape, any case: a JSON escape, a
/// percent-encoding (a header copied out of a URL; encoded twice, a URL in a URL) or an HTML
/// character reference (a header shown in a page; numeric ones are read by
/// [`space_escape_len`]). Around a scheme they are spaces, and one ends a credential's run.
const SPACE_ESCAPES: &[&str] = &[
    r"\u0020",
    r"\u0009",
    r"\u00a0",
    "%20",
    "%09",
    "%c2%a0",
    "%2520",
    "%2509",
    "&nbsp;",
    "&NonBreakingSpace;",
    "&Tab;",
];

/// A URL's userinfo (`https://app:S3cr3t@db/x`, `https://ghp_…@github.com/o/r`, `//u:pw@proxy`),
/// the first group, the scheme optional: up to the last `@` before the host's path, so a
/// password holding an `@` goes whole. [`redact_userinfo`] decides what of it goes: the password
/// after its first `:`, or a lone user that looks like a token (a git remote carries one so).
/// A password holding a `/`, `?` or `#` is read before, by
/// [`ValueRules::redact_delimited_passwords`].
static URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]*:)?//([^\s/?#]+)@")
        .expect("url userinfo pattern is valid")
});

/// [`URL_USERINFO`] after a `//` written with JSON's escapes, `\/\/` or `\u002f\u002f`
/// (`https:\/\/ann:…@x.io`, as PHP's `json_encode` writes a URL by default and Monolog's and
/// Laravel's log lines carry it in text). A pattern of its own, run only on a text that holds
/// such a `//` ([`escaped_slashes`]): folded into the plain one, it cost every URL more.
static ESCAPED_URL_USERINFO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]*:)?(?:\\/\\/|\\u002[fF]\\u002[fF])([^\s/?#]+)@")
        .expect("escaped url userinfo pattern is valid")
});

/// Whether `rest` starts with a URL's `//` written with JSON's escapes, `\/\/` or
/// `\u002f\u002f` (either case), as [`ESCAPED_URL_USERINFO`] reads it: how many bytes it
/// takes.
fn escaped_slashes(rest: &[u8]) -> Option<usize> {
    if rest.starts_with(b"\\/\\/") {
        return Some(4);
    }
    let u = |at: usize| {
        rest.get(at..at + 6)
            .is_some_and(|e| e[..5] == *b"\\u002" && e[5] | 0x20 == b'f')
    };
    (u(0) && u(6)).then_some(12)
}

/// The password of an Oracle connect string, the first group: after `jdbc:oracle:`
/// (`jdbc:oracle:thin:scott/tiger@db:1521/orcl`) or after one of Oracle's tools
/// (`sqlplus scott/tiger@orcl`, `sqlplus -s scott/tiger@//db:1521/svc`, `exp system/pw@xe`,
/// SQL*Plus's `CONNECT scott/tiger@orcl`). Oracle writes `user/password@` where URLs write
/// `user:password@`.
static ORACLE_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:(?:jdbc:oracle:[A-Za-z]+:[^\s/@:]+",
        r"|(?i:(?-u:\b)(?:sqlplus|sqlldr|expdp|impdp|exp|imp|rman|dgmgrl|conn|connect)(?:\.exe)?)",
        r#"(?:[ \t]+-[^\s]+)*[ \t]+["']?[A-Za-z0-9_$#.\-]+)"#,
        r#"/([^\s@'"/][^\s@'"]*)@"#,
        // Easy Connect's `user/password@//host:port/service` alone: `@//` after `user/…` is
        // Oracle's only (found by a probe on 2026-12-08: a DSN in JSON and in errors).
        r#"|(?-u:\b)[A-Za-z][A-Za-z0-9_$#]{0,127}/([^\s@'"/][^\s@'"]*)@//)"#,
    ))
    .expect("oracle pattern is valid")
});

/// Whether the `@` at `at` ends a run holding a `/` within 128 bytes (`scott/tiger@orcl`):
/// where an Oracle connect string may be.
fn slash_before_at(bytes: &[u8], at: usize) -> bool {
    bytes[at.saturating_sub(128)..at]
        .iter()
        .rev()
        .take_while(|b| !b.is_ascii_whitespace() && !matches!(b, b'"' | b'\''))
        .any(|&b| b == b'/')
}

/// The password of a Go MySQL driver's DSN (`root:hunter2@tcp(db:3306)/app`, `u:p@unix(/s)/x`),
/// the first group: no scheme, so no `//` for [`URL_USERINFO`]; the address's protocol and
/// its `(` after the `@` tell it. Up to the last such `@`, so a password holding an `@` goes
/// whole.
static GO_DSN_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#":([^\s"'@]+(?:@[^\s"'@]+)*)@(?:tcp[46]?|unix|udp)\("#)
        .expect("go dsn pattern is valid")
});

/// Whether a Go DSN's address starts at the `@` at `at` (`@tcp(`, `@tcp4(`, `@tcp6(`,
/// `@unix(`, `@udp(`).
fn go_dsn_at(bytes: &[u8], at: usize) -> bool {
    let rest = &bytes[at..];
    // Told by the byte after the `@` for most (an address's `@example.com`).
    match rest.get(1) {
        Some(b't') => [&b"@tcp("[..], b"@tcp4(", b"@tcp6("]
            .iter()
            .any(|p| rest.starts_with(p)),
        Some(b'u') => rest.starts_with(b"@unix(") || rest.starts_with(b"@udp("),
        _ => false,
    }
}

/// The tokens of common services, known by their prefix, the second group; the first is the
/// byte before (none at the start), which must not be a letter or digit (`desk-…`,
/// `risk_live_…` are words). GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`),
/// Slack (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-`, `xapp-`), Stripe secret and
/// restricted keys and webhook secrets (`sk_live_`, `rk_test_`, `whsec_`; not the publishable
/// `pk_`), OpenAI and Anthropic (`sk-…`, judged by [`is_service_token`]), GitLab (`glpat-`),
/// npm (`npm_`) and Google API keys (`AIza`). The lengths asked for are below the issued ones
/// (`ghp_` takes 36 characters), so a token cut or mistyped goes too, and above any word's.
static SERVICE_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(^|[^A-Za-z0-9])(",
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}",
        r"|xox[abprse]-[A-Za-z0-9\-]{8,}",
        r"|xapp-[A-Za-z0-9\-]{8,}",
        r"|[sr]k_(?:live|test)_[A-Za-z0-9]{8,}",
        r"|whsec_[A-Za-z0-9]{16,}",
        r"|sk-[A-Za-z0-9_\-]{20,}",
        r"|glpat-[A-Za-z0-9_\-]{15,}",
        r"|npm_[A-Za-z0-9]{30,}",
        r"|AIza[A-Za-z0-9_\-]{30,}",
        // Found by a probe on 2026-12-08: SendGrid, Google's OAuth access tokens and client
        // secrets, Shopify, PyPI, Hugging Face, Vault, DigitalOcean, Databricks, Atlassian,
        // Linear, Postman, GitLab's other tokens, Heroku, age, New Relic, Doppler, Grafana,
        // Pulumi, Square, Supabase, PlanetScale, Contentful, Dynatrace and Mailgun: each a fixed
        // prefix and a tail no word has (found by [`token_at`], [`dot_token_at`] or `ATATT3`).
        r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
        r"|ya29\.[A-Za-z0-9_\-]{20,}",
        r"|GOCSPX-[A-Za-z0-9_\-]{20,}",
        r"|shp(?:at|ss|ca|pa)_[A-Fa-f0-9]{20,}",
        r"|pypi-[A-Za-z0-9_\-]{40,}",
        r"|hf_[A-Za-z0-9]{30,}",
        r"|hv[sbr]\.[A-Za-z0-9_\-]{20,}",
        r"|do[opr]_v1_[a-f0-9]{40,}",
        r"|ATATT3[A-Za-z0-9_\-=]{20,}",
        r"|lin_api_[A-Za-z0-9]{30,}",
        r"|PMAK-[a-f0-9]{20,}-[a-f0-9]{20,}",
        r"|gl(?:ptt|dt|rt|cbt|soat|ft|imt)-[A-Za-z0-9_\-]{15,}",
        r"|HRKU-[A-Za-z0-9_\-]{20,}",
        r"|AGE-SECRET-KEY-1[A-Z0-9]{50,}",
        r"|NRAK-[A-Z0-9]{20,}",
        r"|dp\.(?:st|ct|pt|sa|scim|audit)\.(?:[A-Za-z0-9_\-]{1,40}\.)?[A-Za-z0-9_\-]{20,}",
        r"|glsa_[A-Za-z0-9_]{30,}",
        r"|glc_[A-Za-z0-9+/=]{30,}",
        r"|pul-[a-f0-9]{40}",
        r"|sq0(?:atp|csp)-[A-Za-z0-9_\-]{20,}",
        r"|sbp_[a-f0-9]{40}",
        r"|pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-]{30,}",
        r"|CFPAT-[A-Za-z0-9_\-]{40,}",
        r"|dt0c01\.[A-Za-z0-9]{20,}\.[A-Za-z0-9]{40,}",
        r"|key-[a-f0-9]{32}",
        r")",
    ))
    .expect("service token pattern is valid")
});

/// The secret in a webhook's or a bot's URL, whose path is the credential: a Slack webhook
/// (`/services/T…/B…/<secret>`), a Discord webhook (`/api/webhooks/<id>/<token>`, any API
/// version) and a Telegram bot token (`/bot<id>:<secret>/sendMessage`, the id with it). The
/// group that took part is the secret; the path before it stays.
static WEBHOOK_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/([A-Za-z0-9]{16,})",
        r"|/webhooks/[0-9]+/([A-Za-z0-9_\-]{8,})",
        r"|/bot([0-9]{5,}:[A-Za-z0-9_\-]{20,})",
    ))
    .expect("webhook pattern is valid")
});

/// JWT / JWS / JWE: a base64url JSON header (`eyJ` is `{"`) and two to four more segments.
/// A header with whitespace after its brace (`{ "alg"…`: `eyA`; `{⏎`, `{\r⏎`, `{\t`: `ewo`,
/// `ew0`, `ewk`), as a pretty-printing signer writes it and verifiers take it, counts when it
/// is 16 characters or more (the shortest header, `{ "alg":"none"}`, is 20). A segment may
/// end in base64's padding: AWS's load balancers sign `x-amzn-oidc-data` so.
static JWT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:eyJ[A-Za-z0-9_\-]+|(?:eyA|ewo|ew0|ewk)[A-Za-z0-9_\-]{13,})={0,2}",
        r"(?:\.[A-Za-z0-9_\-]*={0,2}){2,4}"
    ))
    .expect("jwt pattern is valid")
});

/// Whether `rest` starts as [`JWT`] does.
fn jwt_at(rest: &[u8]) -> bool {
    matches!(
        rest,
        [b'e', b'y', b'J' | b'A', ..] | [b'e', b'w', b'o' | b'0' | b'k', ..]
    )
}

/// AWS access key ids (long-term `AKIA`, temporary `ASIA`).
static AWS_KEY_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)").expect("aws pattern is valid")
});

/// PEM private key blocks. A block cut before its END line (a truncated body) is redacted to
/// the end of the text, since the key material runs up to the cut.
static PEM_PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        concat!(
            r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\z)",
            // RFC 4716's form, SSH.com's and PuTTY's export (found by a probe on 2026-12-08).
            r"|(?s)---- BEGIN SSH2 [A-Z ]*PRIVATE KEY ----.*?(?:---- END SSH2 [A-Z ]*PRIVATE KEY ----|\z)",
        ),
    )
    .expect("pem pattern is valid")
});

/// Runs of at least 13 digits, optionally grouped by single spaces or dashes; which of them are
/// card numbers is decided by [`redact_card_run`] (grouping and the Luhn check).
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| {
    // A no-break space too: what a card pasted from a formatted page carries.
    Regex::new(r"[0-9](?:(?:[ \-]|\x{A0})?[0-9]){12,}").expect("digit run pattern is valid")
});

/// Whether `bytes` holds a match of [`DIGIT_RUN`]: 13 digits, each but the first after at
/// most one space, dash or no-break space. Most strings with that many digits hold none (timestamps, phone
/// numbers, UUIDs, versions): told in one pass, without the regex's search and captures
/// (thousands of instructions a string).
fn holds_digit_run(bytes: &[u8]) -> bool {
    let mut run = 0;
    // The byte before is a digit, or a separator after a digit.
    let (mut after_digit, mut after_separator) = (false, false);
    // The byte before is a no-break space's first (0xC2 0xA0), after a digit.
    let mut after_lead = false;
    for &b in bytes {
        if b.is_ascii_digit() {
            run = if after_digit || after_separator {
                run + 1
            } else {
                1
            };
            if run >= MIN_CARD_DIGITS {
                return true;
            }
            (after_digit, after_separator, after_lead) = (true, false, false);
        } else if after_digit && matches!(b, b' ' | b'-') {
            (after_digit, after_separator, after_lead) = (false, true, false);
        } else if after_digit && b == 0xC2 {
            (after_digit, after_separator, after_lead) = (false, false, true);
        } else if after_lead && b == 0xA0 {
            (after_digit, after_separator, after_lead) = (false, true, false);
        } else {
            (after_digit, after_separator, after_lead) = (false, false, false);
        }
    }
    false
}

/// Builtin patterns are skipped on strings shorter than this: the shortest credential after a
/// scheme is 4 characters (`Basic Zm9v`), and every other builtin match is longer.
const MIN_BUILTIN_LEN: usize = 10;

/// The fewest digits of a card number.
const MIN_CARD_DIGITS: usize = 13;

/// Strings at least this long are searched for the builtin anchors with `memchr` rather than
/// read byte by byte.
const LONG_STRING: usize = 128;

/// Which builtin patterns' literal anchors a string holds, and how many digits.
#[derive(Debug, Default, PartialEq, Eq)]
struct Anchors {
    /// `-----BEGIN`
    pem: bool,
    /// `bearer`, `basic` or `token`, any case
    scheme: bool,
    /// `//`
    url: bool,
    /// `//` written with JSON's escapes ([`escaped_slashes`])
    escaped_url: bool,
    /// A Go DSN's `@tcp(` ([`go_dsn_at`])
    go_dsn: bool,
    /// An `@` after a `/` in its run ([`slash_before_at`])
    oracle: bool,
    /// A service token's prefix ([`token_at`], or `AIza`)
    token: bool,
    /// A webhook's or a bot's path ([`hook_at`])
    hook: bool,
    /// `authorization`, any case
    authorization: bool,
    /// `eyJ`
    jwt: bool,
    /// `AKIA` or `ASIA`
    aws: bool,
    digits: usize,
}

/// The bytes [`Anchors::scan`] looks at: each other byte costs it one table look, however
/// many anchors there are.
static ANCHOR_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    let bytes = b"0123456789-_.bBkKe/zZA@\\";
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
};

impl Anchors {
    /// One pass over the bytes: the first byte of every anchor is rare in ordinary text, and
    /// only there is the rest compared.
    fn scan(bytes: &[u8]) -> Self {
        let mut anchors = Self::default();
        for (i, &b) in bytes.iter().enumerate() {
            if !ANCHOR_BYTES[usize::from(b)] {
                continue;
            }
            match b {
                b'0'..=b'9' => anchors.digits += 1,
                b'-' => {
                    anchors.pem |= bytes[i..].starts_with(b"-----BEGIN")
                        || bytes[i..].starts_with(b"---- BEGIN SSH2");
                    anchors.token |= token_at(bytes, i);
                }
                b'_' => anchors.token |= token_at(bytes, i),
                b'.' => anchors.token |= dot_token_at(bytes, i),
                b'b' | b'B' | b'k' | b'K' => anchors.scheme |= scheme_at(bytes, i),
                b'e' => anchors.jwt |= jwt_at(&bytes[i..]),
                b'/' => {
                    let rest = &bytes[i..];
                    anchors.url |= rest.starts_with(b"//");
                    anchors.hook |= hook_at(rest);
                }
                b'z' | b'Z' => anchors.authorization |= authorization_at(bytes, i),
                b'\\' => anchors.escaped_url |= escaped_slashes(&bytes[i..]).is_some(),
                b'@' => {
                    anchors.go_dsn |= go_dsn_at(bytes, i);
                    anchors.oracle |= slash_before_at(bytes, i);
                }
                b'A' => {
                    let rest = &bytes[i..];
                    anchors.aws |= rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA");
                    anchors.token |= rest.starts_with(b"AIza")
                        || rest.starts_with(b"ATATT3")
                        || rest.starts_with(b"AGE-SECRET-KEY-1");
                }
                _ => {}
            }
        }
        anchors
    }
}

/// Compiled value rules: the builtin patterns (behind cheap prefilters) and user patterns.
#[derive(Debug, Clone)]
pub(super) struct ValueRules {
    replacement: Box<str>,
    user: Vec<(Regex, Box<str>)>,
    eyj: memmem::Finder<'static>,
    /// The other starts of a JWT ([`jwt_at`]).
    eya: memmem::Finder<'static>,
    ew: memmem::Finder<'static>,
    url: memmem::Finder<'static>,
    /// `\/\/` and the start of `\u002f` ([`escaped_slashes`]).
    escaped_url: memmem::Finder<'static>,
    escaped_slash: memmem::Finder<'static>,
    akia: memmem::Finder<'static>,
    asia: memmem::Finder<'static>,
    pem: memmem::Finder<'static>,
    ssh2: memmem::Finder<'static>,
    aiza: memmem::Finder<'static>,
    atatt: memmem::Finder<'static>,
    age: memmem::Finder<'static>,
    webhooks: memmem::Finder<'static>,
    services: memmem::Finder<'static>,
    bot: memmem::Finder<'static>,
    /// Whether card numbers are looked for (`RedactorBuilder::card_numbers`).
    cards: bool,
}

impl ValueRules {
    /// Builds the rules; `user` patterns run after the builtin ones, in order.
    pub(super) fn new(replacement: &str, user: Vec<(Regex, Box<str>)>) -> Self {
        // Force the builtin regexes now so the first request body does not pay for them.
        for re in [
            &*BEARER,
            &*URL_USERINFO,
            &*ESCAPED_URL_USERINFO,
            &*ORACLE_PASSWORD,
            &*GO_DSN_PASSWORD,
            &*SERVICE_TOKEN,
            &*WEBHOOK_SECRET,
            &*JWT,
            &*AWS_KEY_ID,
            &*PEM_PRIVATE_KEY,
            &*DIGIT_RUN,
        ] {
            let _ = re.as_str();
        }
        Self {
            replacement: replacement.into(),
            user,
            eyj: memmem::Finder::new(b"eyJ").into_owned(),
            eya: memmem::Finder::new(b"eyA").into_owned(),
            ew: memmem::Finder::new(b"ew").into_owned(),
            url: memmem::Finder::new(b"//").into_owned(),
            escaped_url: memmem::Finder::new(b"\\/\\/").into_owned(),
            escaped_slash: memmem::Finder::new(b"\\u002").into_owned(),
            akia: memmem::Finder::new(b"AKIA").into_owned(),
            asia: memmem::Finder::new(b"ASIA").into_owned(),
            pem: memmem::Finder::new(b"-----BEGIN").into_owned(),
            ssh2: memmem::Finder::new(b"---- BEGIN SSH2").into_owned(),
            aiza: memmem::Finder::new(b"AIza").into_owned(),
            atatt: memmem::Finder::new(b"ATATT3").into_owned(),
            age: memmem::Finder::new(b"AGE-SECRET-KEY-1").into_owned(),
            webhooks: memmem::Finder::new(b"/webhooks/").into_owned(),
            services: memmem::Finder::new(b"/services/T").into_owned(),
            bot: memmem::Finder::new(b"/bot").into_owned(),
            cards: true,
        }
    }

    /// Looks for card numbers, or not.
    pub(super) fn with_cards(mut self, cards: bool) -> Self {
        self.cards = cards;
        self
    }

    /// The text with every value pattern replaced; borrowed when nothing matched.
    pub(super) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        if text.len() >= MIN_BUILTIN_LEN {
            // Each regex runs only when its literal anchor is present: most strings in a JSON
            // body are short names and ids, and finding the anchors is far cheaper than a
            // regex call.
            let anchors = self.anchors(text.as_bytes());
            if anchors.pem {
                out = replace(out, &PEM_PRIVATE_KEY, NoExpand(&self.replacement));
            }
            // Before the schemes: the value of an `Authorization` goes to the end of its
            // line, the scheme's credential with it.
            if anchors.authorization {
                out = redact_authorization(out, &self.replacement);
            }
            if anchors.scheme {
                out = redact_credentials(out, &self.replacement);
            }
            if anchors.url || anchors.escaped_url {
                out = self.redact_userinfos(out, anchors.escaped_url);
            }
            if anchors.oracle {
                out = replace(
                    out,
                    &ORACLE_PASSWORD,
                    AppendWith(|caps: &Captures<'_>, dst: &mut String| {
                        replace_groups(caps, &self.replacement, dst);
                    }),
                );
            }
            if anchors.go_dsn {
                out = replace(
                    out,
                    &GO_DSN_PASSWORD,
                    AppendWith(|caps: &Captures<'_>, dst: &mut String| {
                        replace_groups(caps, &self.replacement, dst);
                    }),
                );
            }
            if anchors.token {
                out = replace(
                    out,
                    &SERVICE_TOKEN,
                    AppendWith(|caps: &Captures<'_>, dst: &mut String| {
                        match (caps.get(1), caps.get(2)) {
                            (Some(before), Some(token)) if is_service_token(token.as_str()) => {
                                dst.push_str(before.as_str());
                                dst.push_str(&self.replacement);
                            }
                            _ => dst.push_str(&caps[0]),
                        }
                    }),
                );
            }
            if anchors.hook {
                out = replace(
                    out,
                    &WEBHOOK_SECRET,
                    AppendWith(|caps: &Captures<'_>, dst: &mut String| {
                        replace_groups(caps, &self.replacement, dst);
                    }),
                );
            }
            if anchors.jwt {
                out = replace(out, &JWT, NoExpand(&self.replacement));
            }
            if anchors.aws {
                out = redact_aws_keys(out, &self.replacement);
            }
            if self.cards && anchors.digits >= MIN_CARD_DIGITS && holds_digit_run(out.as_bytes()) {
                out = redact_cards(out, &self.replacement);
            }
        }
        for (re, replacement) in &self.user {
            out = replace(out, re, NoExpand(replacement));
        }
        out
    }

    /// `text` with the secrets of its URLs' userinfos replaced, of those after an escaped `//`
    /// too when `escaped` ([`escaped_slashes`]). Out of line: most strings hold no URL.
    #[inline(never)]
    fn redact_userinfos<'a>(&self, text: Cow<'a, str>, escaped: bool) -> Cow<'a, str> {
        // First the passwords that hold a `/`, `?` or `#`, which the patterns, ending the
        // userinfo at the first of them, cannot see whole.
        let mut out = self.redact_delimited_passwords(text, escaped);
        let patterns: &[&Regex] = if escaped {
            &[&URL_USERINFO, &ESCAPED_URL_USERINFO]
        } else {
            &[&URL_USERINFO]
        };
        for pattern in patterns {
            out = replace(
                out,
                pattern,
                AppendWith(|caps: &Captures<'_>, dst: &mut String| {
                    redact_userinfo(caps, &self.replacement, dst);
                }),
            );
        }
        out
    }

    /// `text` with the password of each URL's userinfo that holds a `/`, `?` or `#` replaced
    /// ([`delimited_password_at`]): `postgres://app:s3cr#tPa55@db/app`,
    /// `mysql://app:ab?cd@db/app`, `'postgres://app:p@ss/w0rd@db/app'`. A client that did not
    /// percent-encode its password sends one so, and [`URL_USERINFO`], which ends a userinfo
    /// at the first of them, as a URL's parser does, would keep what follows it. Where one
    /// went, so does the port Go's `net/url` quotes ([`redact_go_invalid_port`]).
    fn redact_delimited_passwords<'a>(&self, text: Cow<'a, str>, escaped: bool) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        // A password ends at an `@`: most URLs in a text (an error's request URL) have none
        // after their `//`, and are not read further.
        let Some(last_at) = memchr::memrchr(b'@', bytes) else {
            return text;
        };
        // A `\` only where an escaped `//` was found: a JSON body's text holds many.
        let before = &bytes[..last_at];
        let spans = if escaped {
            delimited_passwords(bytes, memchr::memchr2_iter(b'/', b'\\', before))
        } else {
            delimited_passwords(bytes, memchr::memchr_iter(b'/', before))
        };
        if spans.is_empty() {
            return text;
        }
        let text = super::text::replace_spans(text, &spans, &self.replacement);
        redact_go_invalid_port(text, &self.replacement)
    }

    /// The builtin patterns' anchors present in `bytes`: one pass for a short string (most
    /// strings of a body; a searcher call costs more than reading them), vectorized searches
    /// for a long one.
    fn anchors(&self, bytes: &[u8]) -> Anchors {
        if bytes.len() < LONG_STRING {
            Anchors::scan(bytes)
        } else {
            self.search(bytes)
        }
    }

    /// The builtin patterns' anchors, found with the vectorized searchers.
    fn search(&self, bytes: &[u8]) -> Anchors {
        // The anchors found at an `@`, in one pass over them.
        let (mut go_dsn, mut oracle) = (false, false);
        for at in memchr::memchr_iter(b'@', bytes) {
            go_dsn |= go_dsn_at(bytes, at);
            oracle |= slash_before_at(bytes, at);
            if go_dsn && oracle {
                break;
            }
        }
        Anchors {
            pem: self.pem.find(bytes).is_some() || self.ssh2.find(bytes).is_some(),
            scheme: memchr::memchr2_iter(b'b', b'k', bytes).any(|i| scheme_at(bytes, i))
                || memchr::memchr2_iter(b'B', b'K', bytes).any(|i| scheme_at(bytes, i)),
            url: self.url.find(bytes).is_some(),
            // Searched for whole: a body's JSON escapes put many a `\` in its text.
            escaped_url: self.escaped_url.find(bytes).is_some()
                || self
                    .escaped_slash
                    .find_iter(bytes)
                    .any(|i| escaped_slashes(&bytes[i..]).is_some()),
            go_dsn,
            oracle,
            token: memchr::memchr2_iter(b'_', b'-', bytes).any(|i| token_at(bytes, i))
                || memchr::memchr_iter(b'.', bytes).any(|i| dot_token_at(bytes, i))
                || self.aiza.find(bytes).is_some()
                || self.atatt.find(bytes).is_some()
                || self.age.find(bytes).is_some(),
            // Searched for whole: `/` is a common byte of paths and markup.
            hook: self.webhooks.find(bytes).is_some()
                || self.services.find(bytes).is_some()
                || self.bot.find_iter(bytes).any(|i| hook_at(&bytes[i..])),
            authorization: memchr::memchr2_iter(b'z', b'Z', bytes)
                .any(|i| authorization_at(bytes, i)),
            jwt: self.eyj.find(bytes).is_some()
                || self.eya.find(bytes).is_some()
                || self.ew.find_iter(bytes).any(|i| jwt_at(&bytes[i..])),
            aws: self.akia.find(bytes).is_some() || self.asia.find(bytes).is_some(),
            digits: bytes.iter().filter(|b| b.is_ascii_digit()).count(),
        }
    }

    /// Whether a string of `len` bytes can match any pattern; shorter strings skip decoding.
    pub(super) fn may_match(&self, len: usize) -> bool {
        len >= MIN_BUILTIN_LEN || !self.user.is_empty()
    }

    /// Whether an unsigned integer literal (a JSON number token) is a card number to redact:
    /// never when card numbers are not looked for.
    pub(super) fn is_card_number(&self, digits: &str) -> bool {
        self.cards
            && (13..=19).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && issued(digits.as_bytes()[0], digits.len())
            && luhn(digits.bytes())
    }
}

/// `replace_all` that keeps the borrow when nothing matched.
fn replace<'a>(text: Cow<'a, str>, re: &Regex, rep: impl regex::Replacer) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(s) => re.replace_all(s, rep),
        Cow::Owned(s) => match re.replace_all(&s, rep) {
            Cow::Borrowed(_) => Cow::Owned(s),
            Cow::Owned(changed) => Cow::Owned(changed),
        },
    }
}

/// A [`regex::Replacer`] that appends straight into the output, avoiding a `String` per match.
pub(super) struct AppendWith<F>(pub(super) F);

impl<F: FnMut(&Captures<'_>, &mut String)> regex::Replacer for AppendWith<F> {
    fn replace_append(&mut self, caps: &Captures<'_>, dst: &mut String) {
        (self.0)(caps, dst);
    }
}

/// Whether a service token's prefix ends at `bytes[i]`, a `_` or a `-` (see
/// [`SERVICE_TOKEN`]): the prefixes' separators are rarer bytes than their letters.
fn token_at(bytes: &[u8], i: usize) -> bool {
    // Slice patterns compare bytes in place; `ends_with` would call `memcmp` for each.
    matches!(
        (bytes[i], &bytes[..i]),
        (b'_', [.., b'g', b'h', b'p' | b'o' | b'u' | b's' | b'r'])
            | (b'_', [.., b'g', b'i', b't', b'h', b'u', b'b'])
            | (b'_', [.., b's' | b'r', b'k'])
            | (b'_', [.., b'w', b'h', b's', b'e', b'c'])
            | (b'_', [.., b'n', b'p', b'm'])
            | (b'-', [.., b's', b'k'])
            | (b'-', [.., b'g', b'l', b'p', b'a', b't'])
            | (
                b'-',
                [
                    ..,
                    b'x',
                    b'o',
                    b'x',
                    b'a' | b'b' | b'p' | b'r' | b's' | b'e'
                ]
            )
            | (b'-', [.., b'x', b'a', b'p', b'p'])
            // Found by a probe on 2026-12-08 (see [`SERVICE_TOKEN`]).
            | (b'_', [.., b's', b'h', b'p', b'a' | b's' | b'c' | b'p', b't' | b's' | b'a'])
            | (b'_', [.., b'h', b'f'])
            | (b'_', [.., b'd', b'o', b'o' | b'p' | b'r', b'_', b'v', b'1'])
            | (b'_', [.., b'l', b'i', b'n', b'_', b'a', b'p', b'i'])
            | (b'_', [.., b'g', b'l', b's', b'a'])
            | (b'_', [.., b'g', b'l', b'c'])
            | (b'_', [.., b's', b'b', b'p'])
            | (b'_', [.., b'p', b's', b'c', b'a', b'l', b'e', b'_', b't', b'k', b'n'])
            | (b'_', [.., b'p', b's', b'c', b'a', b'l', b'e', b'_', b'p', b'w'])
            | (b'_', [.., b'p', b's', b'c', b'a', b'l', b'e', b'_', b'o', b'a', b'u', b't', b'h'])
            | (b'-', [.., b'G', b'O', b'C', b'S', b'P', b'X'])
            | (b'-', [.., b'p', b'y', b'p', b'i'])
            | (b'-', [.., b'P', b'M', b'A', b'K'])
            | (b'-', [.., b'g', b'l', b'p', b't', b't'])
            | (b'-', [.., b'g', b'l', b'd' | b'r' | b'f', b't'])
            | (b'-', [.., b'g', b'l', b'c', b'b', b't'])
            | (b'-', [.., b'g', b'l', b's', b'o', b'a', b't'])
            | (b'-', [.., b'g', b'l', b'i', b'm', b't'])
            | (b'-', [.., b'H', b'R', b'K', b'U'])
            | (b'-', [.., b'N', b'R', b'A', b'K'])
            | (b'-', [.., b'p', b'u', b'l'])
            | (b'-', [.., b's', b'q', b'0', b'a' | b'c', b't' | b's', b'p'])
            | (b'-', [.., b'C', b'F', b'P', b'A', b'T'])
            | (b'-', [.., b'k', b'e', b'y'])
    )
}

/// Whether a service token's prefix ends at `bytes[i]`, a `.` (SendGrid's `SG.`, Google's
/// `ya29.`, Vault's `hvs.`, Doppler's `dp.`, Dynatrace's `dt0c01.`; see [`SERVICE_TOKEN`]).
fn dot_token_at(bytes: &[u8], i: usize) -> bool {
    matches!(
        &bytes[..i],
        [.., b'S', b'G']
            | [.., b'y', b'a', b'2', b'9']
            | [.., b'h', b'v', b's' | b'b' | b'r']
            | [.., b'd', b'p']
            | [.., b'd', b't', b'0', b'c', b'0', b'1']
    )
}

/// Whether a webhook's or a bot's path starts at `rest`, a `/` (see [`WEBHOOK_SECRET`]).
fn hook_at(rest: &[u8]) -> bool {
    // The second byte first: most `/` in a path or markup are followed by none of these.
    matches!(rest.get(1), Some(b'w' | b's' | b'b'))
        && (rest.starts_with(b"/webhooks/")
            || rest.starts_with(b"/services/T")
            || (rest.starts_with(b"/bot") && rest.get(4).is_some_and(u8::is_ascii_digit)))
}

/// Whether `authorization`, in any case, has its `z` at `bytes[i]`.
fn authorization_at(bytes: &[u8], i: usize) -> bool {
    i.checked_sub(7)
        .and_then(|start| bytes.get(start..i + 6))
        .is_some_and(|w| w.eq_ignore_ascii_case(b"authorization"))
}

/// Whether a [`SERVICE_TOKEN`] match is a token. A bare `sk-` is a common start of words
/// and names (`sk-learn-compatible-v2`), so after it the run must hold a digit and a capital,
/// as OpenAI's random keys do; every other prefix is a token's own.
fn is_service_token(token: &str) -> bool {
    let Some(rest) = token.strip_prefix("sk-") else {
        return true;
    };
    ["proj-", "svcacct-", "admin-", "ant-"]
        .iter()
        .any(|p| rest.starts_with(p))
        || (rest.bytes().any(|b| b.is_ascii_digit())
            && rest.bytes().any(|b| b.is_ascii_uppercase()))
}

/// Writes a match with the group that took part replaced, and what follows it kept (the
/// patterns end with their group).
fn replace_groups(caps: &Captures<'_>, replacement: &str, dst: &mut String) {
    let all = &caps[0];
    match caps.iter().skip(1).flatten().next() {
        Some(group) => {
            let start = caps.get(0).map_or(0, |m| m.start());
            dst.push_str(&all[..group.start() - start]);
            dst.push_str(replacement);
            dst.push_str(&all[group.end() - start..]);
        }
        None => dst.push_str(all),
    }
}

/// Writes a [`URL_USERINFO`] match with its secret replaced: the password after the first
/// `:`, or a user without one that looks like a token ([`is_token_user`]); a name (`git@`,
/// `ann@`) stays.
fn redact_userinfo(caps: &Captures<'_>, replacement: &str, dst: &mut String) {
    let (Some(all), Some(info)) = (caps.get(0), caps.get(1)) else {
        dst.push_str(&caps[0]);
        return;
    };
    let secret = match info.as_str().split_once(':') {
        Some((user, password)) if !password.is_empty() => info.start() + user.len() + 1,
        Some(_) => {
            dst.push_str(all.as_str());
            return;
        }
        None if is_token_user(info.as_str()) => info.start(),
        None => {
            dst.push_str(all.as_str());
            return;
        }
    };
    dst.push_str(&all.as_str()[..secret - all.start()]);
    dst.push_str(replacement);
    dst.push('@');
}

/// Whether a URL's lone user is a token: a service token's prefix, or 20 characters or more
/// holding a digit and a letter and no `.` (a name, an address written `ann%40example.com`,
/// holds one).
fn is_token_user(user: &str) -> bool {
    const PREFIXES: [&str; 14] = [
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "xox",
        "sk-",
        "sk_",
        "rk_",
        "npm_",
        "AIza",
        "eyJ",
    ];
    let bytes = user.as_bytes();
    PREFIXES.iter().any(|p| user.starts_with(p))
        || (bytes.len() >= 20
            && bytes.iter().any(u8::is_ascii_digit)
            && bytes.iter().any(u8::is_ascii_alphabetic)
            && !bytes.contains(&b'.'))
}

/// The longest password [`delimited_password_at`] reads: a bound on the look at each `//`.
const DELIMITED_PASSWORD: usize = 128;

/// The spans of [`delimited_password_at`] after the `//` (or escaped `//`,
/// [`escaped_slashes`]) that start at some of `starts`, the places of `bytes`'s `/` (and `\`).
fn delimited_passwords(bytes: &[u8], starts: impl Iterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for at in starts {
        let slashes = match bytes[at] {
            b'/' if bytes.get(at + 1) == Some(&b'/') => 2,
            b'\\' => match escaped_slashes(&bytes[at..]) {
                Some(len) => len,
                None => continue,
            },
            _ => continue,
        };
        if spans.last().is_some_and(|&(_, end)| at < end) {
            continue;
        }
        spans.extend(delimited_password_at(bytes, at + slashes));
    }
    spans
}

/// The span of the password after the `//` that ends at `start`, when it holds a `/`, `?` or
/// `#`: after `user:` (a user of userinfo characters, perhaps none), to the last `@` of the
/// run after it (which ends at whitespace, a quote, a backquote, `<`, `>` or another URL's
/// `://`) within [`DELIMITED_PASSWORD`] bytes. A URL whose userinfo has no `:` stays
/// (`https://host/a/ann@example.com`, `https://example.com/a?x=1#frag@x`), and so does one whose
/// `:` is a port's, digits or none before the first `/`, `?` or `#`
/// (`https://example.com:8080/a@b`). A path or query holding an `@` after a password goes with
/// it (`https://u:pw@host/a/ann@example.com` keeps `example.com`): which `@` ends the password
/// cannot be told there, and keeping a secret's end is the worse mistake.
fn delimited_password_at(bytes: &[u8], start: usize) -> Option<(usize, usize)> {
    let rest = &bytes[start..];
    let user = rest
        .iter()
        .take(DELIMITED_PASSWORD)
        .position(|&b| !is_userinfo_byte(b) || b == b':')?;
    if rest[user] != b':' {
        return None;
    }
    let from = start + user + 1;
    let run = &bytes[from..bytes.len().min(from + DELIMITED_PASSWORD + 1)];
    let mut last_at = None;
    for (i, &b) in run.iter().enumerate() {
        if b.is_ascii_whitespace()
            || matches!(b, b'"' | b'\'' | b'`' | b'<' | b'>')
            || (b == b':' && run[i + 1..].starts_with(b"//"))
        {
            break;
        }
        if b == b'@' {
            last_at = Some(i);
        }
    }
    let password = &run[..last_at?];
    let delimiter = password
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))?;
    // A port's digits before a `/` JSON escapes (`x.io:8080\/a@b`) are one too.
    let before = &password[..delimiter];
    let before = before.strip_suffix(b"\\").unwrap_or(before);
    if before.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((from, from + password.len()))
}

/// Whether a URL's user may hold `b`: not whitespace, a delimiter of the URL's parts
/// (`/`, `?`, `#`, `@`, IPv6's `[` and `]`), a quote or an angle bracket.
fn is_userinfo_byte(b: u8) -> bool {
    /// The bytes a user may not hold, as a table: one look a byte.
    static NOT_USERINFO: [bool; 256] = super::byte_set(b" \t\n\r\x0b\x0c/?#@[]\"'`<>");
    !NOT_USERINFO[usize::from(b)]
}

/// `text` with the port quoted in Go's `invalid port ":…" after host` replaced: Go's `net/url`
/// ends a URL's authority at its first `/`, `?` or `#`, so a password holding one is taken for
/// a port and quoted there (`parse "postgres://app:s3cr#tPa55@db/app": invalid port ":s3cr"
/// after host`). Its `:` and quotes stay. Looked for only where such a password went: Go's
/// message quotes the URL before it.
fn redact_go_invalid_port<'a>(text: Cow<'a, str>, replacement: &str) -> Cow<'a, str> {
    const OPEN: &[u8] = b"invalid port \":";
    const CLOSE: &[u8] = b"\" after host";
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for at in memmem::find_iter(bytes, OPEN) {
        let from = at + OPEN.len();
        let look = &bytes[from..bytes.len().min(from + 2 * DELIMITED_PASSWORD)];
        if let Some(len) = memmem::find(look, CLOSE).filter(|&len| len > 0) {
            spans.push((from, from + len));
        }
    }
    super::text::replace_spans(text, &spans, replacement)
}

/// `text` with every AWS access key id replaced, and the secret access key written a few words
/// after one ([`secret_key_after`]): a credentials file, a CSV export or a pasted pair keeps
/// them together.
fn redact_aws_keys<'a>(text: Cow<'a, str>, replacement: &str) -> Cow<'a, str> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for id in AWS_KEY_ID.find_iter(&text) {
        spans.push((id.start(), id.end()));
        spans.extend(secret_key_after(text.as_bytes(), id.end()));
    }
    if spans.is_empty() {
        return text;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut written = 0;
    for (start, end) in spans {
        if end <= written {
            continue;
        }
        if start >= written {
            out.push_str(&text[written..start]);
            out.push_str(replacement);
        }
        written = end;
    }
    out.push_str(&text[written..]);
    Cow::Owned(out)
}

/// The span of an AWS secret access key among the first few words after `from` (the end of a
/// key id): 30 to 44 characters of base64 (40 as issued) holding both cases and a digit, `/`
/// or `+`. The look is bounded, so a text of key ids is read a bounded number of times.
fn secret_key_after(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    const WORDS: usize = 6;
    const WINDOW: usize = 160;
    let in_word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'=');
    let end = bytes.len().min(from + WINDOW);
    let mut i = from;
    for _ in 0..WORDS {
        while i < end && !in_word(bytes[i]) {
            i += 1;
        }
        let start = i;
        while i < end && in_word(bytes[i]) {
            i += 1;
        }
        if i == start || (i == end && bytes.get(end).is_some_and(|&b| in_word(b))) {
            return None;
        }
        let word = &bytes[start..i];
        if (30..=44).contains(&word.len())
            && word.iter().any(u8::is_ascii_lowercase)
            && word.iter().any(u8::is_ascii_uppercase)
            && word
                .iter()
                .any(|b| b.is_ascii_digit() || matches!(b, b'/' | b'+'))
        {
            return Some((start, i));
        }
    }
    None
}

/// Authorization schemes, in small letters: after one, the rest of an `Authorization` value is
/// its credential. `Basic`, `Bearer` and `Token` are not among them: their credential is one
/// run, which [`redact_credentials`] reads and judges so that prose after them keeps its words
/// ("Authorization: Bearer tokens are accepted"); a second word with a `=` still takes the line.
const AUTH_SCHEMES: &[&str] = &[
    "digest",
    "negotiate",
    "ntlm",
    "kerberos",
    "hoba",
    "mutual",
    "aws4-hmac-sha256",
    "goog4-hmac-sha256",
    "aws",
    "oauth",
    "signature",
    "sharedkey",
    "sharedkeylite",
    "apikey",
    "api-key",
    "sso",
    "gnap",
    "dpop",
    "mac",
    "hawk",
    "vapid",
    "privatetoken",
    "concealed",
    "scram-sha-1",
    "scram-sha-256",
    "jwt",
];

/// `text` with the value of each `Authorization` (`Proxy-Authorization`, `X-Authorization`, …,
/// as `name: value` or `name=value`, the name quoted or not) replaced after its scheme, to the
/// end of its line. A multi-part credential (`Digest username="a", response="…"`,
/// `AWS4-HMAC-SHA256 Credential=…, Signature=…`) holds commas that end a pair's value
/// elsewhere. The value is one when its first word is a known scheme ([`AUTH_SCHEMES`]) or
/// its second word holds a `=` (a scheme of its own with parameters); prose keeps its words
/// ("Authorization: failed for user ann"). A value opened with a quote (`"authorization":"…"`,
/// `-H 'Authorization: …'`) ends at its closing quote. Each look before a replacement is
/// bounded, and a replacement's line is not read again.
fn redact_authorization<'a>(text: Cow<'a, str>, replacement: &str) -> Cow<'a, str> {
    let mut out = String::new();
    let mut written = 0;
    {
        let bytes = text.as_bytes();
        for z in memchr::memchr2_iter(b'z', b'Z', bytes) {
            if z < written || !authorization_at(bytes, z) {
                continue;
            }
            let Some((keep, end)) = authorization_value(bytes, z - 7, z + 6) else {
                continue;
            };
            out.push_str(&text[written..keep]);
            out.push(' ');
            out.push_str(replacement);
            written = end;
        }
    }
    if written == 0 {
        return text;
    }
    out.push_str(&text[written..]);
    Cow::Owned(out)
}

/// For an `authorization` at `name..after`: where its scheme ends and where its value ends,
/// when the value is a credential (see [`redact_authorization`]).
fn authorization_value(bytes: &[u8], name: usize, after: usize) -> Option<(usize, usize)> {
    const LONGEST_WORD: usize = 256;
    let spaces = |i: usize| {
        i + bytes[i..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()
    };
    // A quote before the whole header name (`'Proxy-Authorization: …'`) closes after it.
    let header = name
        - bytes[name.saturating_sub(64)..name]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            .count();
    let mut quote = header
        .checked_sub(1)
        .map(|q| bytes[q])
        .filter(|&q| q == b'\'');
    let mut i = after;
    if matches!(bytes.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    i = spaces(i);
    if !matches!(bytes.get(i), Some(b':' | b'=')) {
        return None;
    }
    i = spaces(i + 1);
    if let Some(&q @ (b'"' | b'\'')) = bytes.get(i) {
        quote = Some(q);
        i += 1;
    }
    let word_end = |from: usize| {
        from + bytes[from..]
            .iter()
            .take(LONGEST_WORD)
            .take_while(|b| !b.is_ascii_whitespace() && Some(**b) != quote)
            .count()
    };
    let scheme_end = word_end(i);
    if scheme_end == i || !matches!(bytes.get(scheme_end), Some(b' ' | b'\t')) {
        return None;
    }
    let second = spaces(scheme_end);
    let second_end = word_end(second);
    if second_end == second {
        return None;
    }
    let scheme = &bytes[i..scheme_end];
    let known = AUTH_SCHEMES
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s.as_bytes()));
    if !known && !bytes[second..second_end].contains(&b'=') {
        return None;
    }
    // To the end of the line (also a `\n` or `\r` escape, a line in an encoded log), or of
    // the quoted value: a quote after a backslash is the credential's.
    let mut end = second;
    while let Some(&b) = bytes.get(end) {
        let escaped = end > 0 && bytes[end - 1] == b'\\';
        if matches!(b, b'\n' | b'\r')
            || (escaped && matches!(b, b'n' | b'r'))
            || (Some(b) == quote && !escaped)
        {
            if escaped && b != b'"' && b != b'\'' {
                end -= 1;
            }
            break;
        }
        end += 1;
    }
    Some((scheme_end, end))
}

/// Whether an authorization scheme [`BEARER`] looks for is at `bytes[i]`, without a regex
/// call: one starting there (a `b` or `B`), or `token` whose `k` is there (`t` is too common a
/// byte to look for).
fn scheme_at(bytes: &[u8], i: usize) -> bool {
    match bytes[i] {
        b'k' | b'K' => i
            .checked_sub(2)
            .and_then(|start| bytes.get(start..i + 3))
            .is_some_and(|w| w.eq_ignore_ascii_case(b"token")),
        _ => bytes.get(i + 1..).is_some_and(|rest| {
            rest.get(..4)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"asic"))
                || rest
                    .get(..5)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"earer"))
        }),
    }
}

/// `text` with the credential after each authorization scheme replaced (see [`BEARER`]).
///
/// A run that is kept is searched again after its scheme: in `token Bearer abc12` the run
/// after `token` holds the next scheme. Only a run's last word can be a scheme (one is
/// followed by a space), so each byte is read at most twice.
fn redact_credentials<'a>(text: Cow<'a, str>, replacement: &str) -> Cow<'a, str> {
    let mut out = String::new();
    let mut written = 0;
    let mut pos = 0;
    while let Some(caps) = BEARER.captures_at(&text, pos) {
        let (Some(all), Some(scheme)) = (caps.get(0), caps.get(1)) else {
            break;
        };
        let start = all.end();
        let plus_is_space = text[scheme.end()..start].contains('+');
        let end = start + run_len(&text[start..], plus_is_space);
        if end > start
            && is_credential(scheme.as_str(), &text[start..end])
            && !names_a_value(&text[end..])
        {
            out.push_str(&text[written..scheme.end()]);
            out.push(' ');
            out.push_str(replacement);
            written = end;
            pos = end;
        } else {
            pos = scheme.end();
        }
    }
    if written == 0 {
        return text;
    }
    out.push_str(&text[written..]);
    Cow::Owned(out)
}

/// The length of the run at the start of `rest`: up to whitespace, or a space escape
/// ([`space_escape_len`]: `abc\u0020then`, `abc%20then`: an encoder that escapes spaces
/// escapes the ones between words too, and the escape's digits are no credential's), or a `+`
/// when `plus_is_space` (the scheme was followed by one: a form's encoding, whose credential
/// has its own `+` written `%2B`).
fn run_len(rest: &str, plus_is_space: bool) -> usize {
    let bytes = rest.as_bytes();
    rest.char_indices()
        .find(|&(i, c)| {
            c.is_whitespace()
                || (c == '+' && plus_is_space)
                || (matches!(c, '\\' | '%' | '&') && space_escape_len(&bytes[i..]).is_some())
        })
        .map_or(rest.len(), |(i, _)| i)
}

/// The length of the space, tab or no-break space written as an escape at the start of
/// `bytes`: one of [`SPACE_ESCAPES`], or an HTML numeric reference to one, with any number of
/// leading zeros (`&#32;`, `&#x0020;`, `&#00160;`), as [`BEARER`] reads them.
fn space_escape_len(bytes: &[u8]) -> Option<usize> {
    if let Some(escape) = SPACE_ESCAPES.iter().find(|e| {
        bytes
            .get(..e.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(e.as_bytes()))
    }) {
        return Some(escape.len());
    }
    let rest = bytes.strip_prefix(b"&#")?;
    let (hex, digits) = match rest.first() {
        Some(b'x' | b'X') => (true, &rest[1..]),
        _ => (false, rest),
    };
    let len = digits
        .iter()
        .take_while(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count();
    let value = &digits[..len];
    let value = &value[value.iter().take_while(|&&b| b == b'0').count()..];
    let space = if hex {
        matches!(value, b"20" | b"9" | b"a0" | b"A0")
    } else {
        matches!(value, b"32" | b"9" | b"160")
    };
    (space && digits.get(len) == Some(&b';')).then(|| bytes.len() - digits.len() + len + 1)
}

/// Whether the text after a run starts with a `=`, after spaces: the run is then the name of
/// a pair or an attribute (`tokEn connectionString &equals; …` in an escaped tag), left for the
/// rules that redact its value. Each look is bounded by the spaces, read once more at most.
fn names_a_value(after: &str) -> bool {
    let rest = after.trim_start_matches([' ', '\t']).as_bytes();
    rest.starts_with(b"=")
        || [&b"&equals;"[..], b"&#61;", b"&#x3d;", b"&#x3D;"]
            .iter()
            .any(|r| rest.starts_with(r))
}

/// Whether the whitespace-free `run` after `scheme` is a credential.
///
/// A credential is at least 4 characters (`Basic Zm9v`, the shortest a `user:password` can be)
/// and looks like one: it holds a digit, or a capital after a small letter (`dXNl`), as random
/// tokens and base64 do and words do not (`<token />` in markup neither). After `Bearer` in
/// any case, and after `Basic` or `Token` written otherwise than all in small letters (as in
/// headers: `Basic`, `TOKEN`), any run of 8 characters or more is one too. After `basic` or
/// `token` in small letters, prose and code are likelier: a run without a digit is one only
/// with 8 characters or more and two such capitals (`dXNlcjpwYXNz`), so an identifier
/// (`token connectionString = …`, an attribute of a tag) is left for the rules that read it.
/// Prose keeps its words: "basic usage", "token rejected: InvalidAudience", "Token 2 of 5".
fn is_credential(scheme: &str, run: &str) -> bool {
    let run = &*judged(run);
    let as_in_headers =
        scheme.eq_ignore_ascii_case("bearer") || scheme.bytes().any(|b| b.is_ascii_uppercase());
    let len = run.chars().count();
    if as_in_headers && len >= 8 {
        return true;
    }
    let bytes = run.as_bytes();
    let humps = bytes
        .windows(2)
        .filter(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
        .count();
    len >= 4
        && (bytes.iter().any(u8::is_ascii_digit)
            || (as_in_headers && humps > 0)
            || (len >= 8 && humps > 1))
}

/// `run` as [`is_credential`] judges it: up to an end tag glued to it (`plan</p>`: markup is
/// no credential's), each percent escape and HTML reference read as the character it writes
/// (`expired%2C`, `doesn&#39;t`: an escape's digits and length are no credential's, as encoded
/// prose after an encoded space has its punctuation encoded too). Borrowed when it holds none.
fn judged(run: &str) -> Cow<'_, str> {
    let run = memmem::find(run.as_bytes(), b"</").map_or(run, |end| &run[..end]);
    if !run.contains(['%', '&']) {
        return Cow::Borrowed(run);
    }
    let bytes = run.as_bytes();
    let mut out = String::with_capacity(run.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (c, len) = match b {
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(&[h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    let byte = (hex_value(h) << 4) | hex_value(l);
                    // A multibyte character's continuation bytes add no character.
                    match byte {
                        0x80..=0xBF => (None, 3),
                        0xC0.. => (Some('.'), 3),
                        _ => (Some(char::from(byte)), 3),
                    }
                }
                _ => (Some('%'), 1),
            },
            b'&' => match reference_at(&bytes[i..]) {
                Some((c, len)) => (Some(c), len),
                None => (Some('&'), 1),
            },
            _ => {
                let c = run[i..].chars().next().unwrap_or('.');
                (Some(c), c.len_utf8())
            }
        };
        out.extend(c);
        i += len;
    }
    Cow::Owned(out)
}

/// The value of an ASCII hex digit.
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => (b | 0x20) - b'a' + 10,
    }
}

/// The character an HTML reference at the start of `bytes` writes (a named one, whatever it
/// names, as a `.`), and its length; `None` when none starts there. Names and numbers are
/// bounded, so each look is short.
fn reference_at(bytes: &[u8]) -> Option<(char, usize)> {
    const LONGEST: usize = 32;
    let rest = bytes.get(1..)?;
    let (radix, digits) = match rest {
        [b'#', b'x' | b'X', digits @ ..] => (16, digits),
        [b'#', digits @ ..] => (10, digits),
        _ => {
            let name = rest
                .iter()
                .take(LONGEST)
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            return (name > 0 && rest.get(name) == Some(&b';')).then_some(('.', name + 2));
        }
    };
    let len = digits
        .iter()
        .take(LONGEST)
        .take_while(|b| b.is_ascii_hexdigit() && (radix == 16 || b.is_ascii_digit()))
        .count();
    if len == 0 || digits.get(len) != Some(&b';') {
        return None;
    }
    let number = std::str::from_utf8(&digits[..len]).ok()?;
    let c = u32::from_str_radix(number, radix)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('.');
    Some((c, bytes.len() - digits.len() + len + 1))
}

/// Whether `count` digits starting with `first` can be a payment card's number. Card networks
/// start theirs with 2 to 6 (and a few with 7, 8 or 9); of the cards starting with 1 only the
/// airlines' UATP cards are issued, with 15 digits. The Unix time in milliseconds (13 digits),
/// microseconds (16) or nanoseconds (19) starts with 1 until 2033, and one such number in ten
/// passes the Luhn check by chance: left to it, a tenth of the timestamps of a trail's bodies
/// would read `[REDACTED]`.
fn issued(first: u8, count: usize) -> bool {
    first != b'1' || count == 15
}

/// Luhn checksum over ASCII digits.
fn luhn(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The text with every card number replaced; digit runs inside a hexadecimal identifier are
/// left alone (see [`in_hex_identifier`]).
fn redact_cards<'a>(text: Cow<'a, str>, replacement: &str) -> Cow<'a, str> {
    let replaced = {
        let haystack: &str = &text;
        let replaced = DIGIT_RUN.replace_all(
            haystack,
            AppendWith(|caps: &Captures<'_>, dst: &mut String| {
                let run = caps.get(0).expect("the whole match");
                if in_hex_identifier(haystack.as_bytes(), run.start(), run.end()) {
                    dst.push_str(run.as_str());
                } else {
                    redact_card_run(run.as_str(), replacement, dst);
                }
            }),
        );
        match replaced {
            Cow::Borrowed(_) => None,
            Cow::Owned(changed) => Some(changed),
        }
    };
    replaced.map_or(text, Cow::Owned)
}

/// Whether the digit run at `start..end` is part of a hexadecimal identifier, whose digits
/// are not a card number: a UUID (8-4-4-4-12 hex digits) covers it, or it runs straight into
/// hex letters, as in a digest, with nothing else in that token. One random UUID v4 in about
/// 370, and 0.4% of SHA-256 hex digests, hold a stretch of 13 or more digits that passes the
/// Luhn check by chance. A card written apart (spaces, dashes, punctuation or nothing around
/// it) or glued to a word that is not hexadecimal (`card4111…`) is still found.
fn in_hex_identifier(text: &[u8], start: usize, end: usize) -> bool {
    const HEX_TOKEN_MAX: usize = 128;
    const UUID_LEN: usize = 36;
    let is_uuid = |at: usize| {
        text.get(at..at + UUID_LEN).is_some_and(|uuid| {
            uuid.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
        })
    };
    if end - start <= UUID_LEN && (end.saturating_sub(UUID_LEN)..=start).any(is_uuid) {
        return true;
    }
    // Looked at no further than the longest digest's hex (SHA-512, 128 digits) on each side: a
    // body of digit runs glued into one long word would otherwise cost the square of its
    // length. A longer token is not taken for an identifier.
    let alphanumeric = |b: &&u8| b.is_ascii_alphanumeric();
    let before = text[..start].iter().rev().take_while(alphanumeric);
    let from = start - before.take(HEX_TOKEN_MAX + 1).count();
    let to = end
        + text[end..]
            .iter()
            .take_while(alphanumeric)
            .take(HEX_TOKEN_MAX + 1)
            .count();
    if (from, to) == (start, end) || to - from > HEX_TOKEN_MAX {
        return false;
    }
    let token = &text[from..to];
    token.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-')
        && token.iter().any(u8::is_ascii_alphabetic)
}

/// Writes a digit run with every card number in it replaced.
///
/// Card numbers are 13–19 digits. Only windows that start and end on group boundaries are
/// tried: a 16-digit order number has dozens of 13-digit substrings, about one in ten of which
/// passes Luhn by chance, while a card typed inside other numbers is set apart by spaces.
/// Windows that pass and overlap are replaced as one: in `555-0142 4111 1111 1111 1111` the
/// phone number's groups and the card's first ones pass by chance, and replacing only them
/// would leave the card's last groups behind.
fn redact_card_run(run: &str, replacement: &str, dst: &mut String) {
    // (start byte, end byte, digit count) of each group between separators.
    let mut groups: Vec<(usize, usize, usize)> = Vec::new();
    // By characters: a no-break space is two bytes, and a group must start on a character.
    let mut start = 0;
    for (i, c) in run.char_indices() {
        if !c.is_ascii_digit() {
            groups.push((start, i, i - start));
            start = i + c.len_utf8();
        }
    }
    groups.push((start, run.len(), run.len() - start));

    let mut written = 0;
    // The first and last group of the stretch to replace, grown while windows overlap it.
    let mut stretch: Option<(usize, usize)> = None;
    let mut flush = |stretch: (usize, usize), dst: &mut String| {
        dst.push_str(&run[written..groups[stretch.0].0]);
        dst.push_str(replacement);
        written = groups[stretch.1].1;
    };
    for g in 0..groups.len() {
        let mut best = None;
        let mut count = 0;
        for (e, group) in groups.iter().enumerate().skip(g) {
            count += group.2;
            if count > 19 {
                break;
            }
            let span = &run[groups[g].0..group.1];
            if count >= 13
                && issued(span.as_bytes()[0], count)
                && luhn(span.bytes().filter(u8::is_ascii_digit))
            {
                best = Some(e);
            }
        }
        stretch = match (stretch, best) {
            (Some((first, last)), Some(e)) if g <= last => Some((first, last.max(e))),
            (Some(done), Some(e)) => {
                flush(done, dst);
                Some((g, e))
            }
            (None, Some(e)) => Some((g, e)),
            (current, None) => current,
        };
    }
    if let Some(done) = stretch {
        flush(done, dst);
    }
    dst.push_str(&run[written..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ValueRules {
        ValueRules::new("[REDACTED]", Vec::new())
    }

    /// The one-pass look that gates the card rule agrees with the rule's regex, on strings of
    /// digits, separators and other bytes in every mix (a fixed pseudo-random sequence).
    #[test]
    fn the_digit_run_look_agrees_with_its_regex() {
        for (text, want) in [
            ("4111111111111111", true),
            ("4111 1111 1111 1111", true),
            ("4111-1111-1111-1111", true),
            ("411111111111", false),
            ("4111  1111 1111 1111", false),
            ("4111 -1111-1111-1111", false),
            ("2026-12-06T10:15:30.123Z", false),
            ("+33 1 23 45 67 89", false),
            ("x1 2 3 4 5 6 7 8 9 0 1 2 3y", true),
        ] {
            assert_eq!(holds_digit_run(text.as_bytes()), want, "{text:?}");
            assert_eq!(DIGIT_RUN.is_match(text), want, "{text:?}");
        }
        let alphabet = b"0123456789012345678901234567890123456789 - -a.T\xe9";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50_000 {
            let len = usize::try_from(next() % 40).unwrap_or(0);
            let text: String = (0..len)
                .map(|_| {
                    char::from(alphabet[usize::try_from(next()).unwrap_or(0) % alphabet.len()])
                })
                .collect();
            assert_eq!(
                holds_digit_run(text.as_bytes()),
                DIGIT_RUN.is_match(&text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn bearer_token_keeps_the_scheme() {
        assert_eq!(
            rules().redact("auth was Bearer abc.DEF-123_xyz= ok"),
            "auth was Bearer [REDACTED] ok"
        );
        assert_eq!(rules().redact("BEARER abcdefghij"), "BEARER [REDACTED]");
        assert_eq!(
            rules().redact("the bearer of bad news"),
            "the bearer of bad news"
        );
    }

    /// Found by review: the credential after the scheme was redacted only as far as RFC 6750's
    /// token characters went, so a handler copying `Bearer eyJ….!!!.zzz` kept `!!!.zzz`, and
    /// `Basic` and `Token` credentials were not looked for at all.
    #[test]
    fn scheme_credentials_are_redacted_to_the_end_of_their_run() {
        let r = rules();
        assert_eq!(
            r.redact("copied Bearer eyJhbGciOi.!!!.zzz then"),
            "copied Bearer [REDACTED] then"
        );
        assert_eq!(
            r.redact("auth=Bearer abcdefgh!!!secret,next"),
            "auth=Bearer [REDACTED]"
        );
        assert_eq!(
            r.redact("sent Basic dXNlcjpwYXNz!x and"),
            "sent Basic [REDACTED] and"
        );
        assert_eq!(
            r.redact("Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
            "Token [REDACTED]"
        );
        // Prose keeps its words: short runs, other capitalizations, longer words.
        for prose in [
            "token rejected: InvalidAudience",
            "the basic plan includes everything",
            "Tokens expire; Basically everything",
            "Vec<Token> in an error text",
            "the bearer of bad news",
        ] {
            assert_eq!(r.redact(prose), prose);
        }
    }

    /// Found by review: `Basic` and `Token` were looked for only as written in headers, so
    /// an error text quoting `basic …` or `TOKEN …` kept the credential; and a credential
    /// shorter than 8 characters (`Bearer abc12`, `Basic Zm9v`) was kept after any scheme.
    #[test]
    fn schemes_in_any_case_and_short_credentials() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                "failed: basic dXNlcjpwYXNz then",
                "failed: basic [REDACTED] then",
            ),
            (
                "failed: BASIC dXNlcjpwYXNz then",
                "failed: BASIC [REDACTED] then",
            ),
            (
                "failed: TOKEN abcdefghijkl then",
                "failed: TOKEN [REDACTED] then",
            ),
            ("sent token 9944b091 then", "sent token [REDACTED] then"),
            ("sent bEaReR abcdefghijkl", "sent bEaReR [REDACTED]"),
            ("auth Bearer abc12 then", "auth Bearer [REDACTED] then"),
            ("auth Basic Zm9v then", "auth Basic [REDACTED] then"),
            ("auth bearer x9Kq then", "auth bearer [REDACTED] then"),
            // A scheme whose word after it is kept does not hide the next one.
            ("token Bearer abc12", "token Bearer [REDACTED]"),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        // A short string holding only the scheme and its credential, as a JSON value.
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"h":"Basic Zm9v","g":"Bearer abc12"}"#
            ))
            .as_deref(),
            Some(r#"{"h":"Basic [REDACTED]","g":"Bearer [REDACTED]"}"#)
        );
        // Prose keeps its words: a lowercase scheme followed by a word with no digit, no
        // `+`, `/` or `=` and no capital after a small letter, and short words after any.
        for prose in [
            "the basic usage is fine",
            "the basic configuration works",
            "token rejected: InvalidAudience",
            "TOKEN EXPIRED",
            "Token 2 of 5 expired",
            "the bearer of bad news",
            "Basic Auth is off",
            "name=access_token connectionString = x",
            "name &equals; access&lowbar;tokEn connectionString &equals; x",
        ] {
            assert_eq!(r.redact_error(prose), prose);
        }
    }

    /// Found by review: a scheme followed by an escaped space (`Basic\u0020dXNl…`, a header
    /// written by an encoder that escapes spaces, in a log line or inside a JSON string) was
    /// no scheme followed by a credential.
    #[test]
    fn schemes_before_an_escaped_space() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                r"sent Basic\u0020dXNlcjpwYXNz ok",
                "sent Basic [REDACTED] ok",
            ),
            (
                r"sent Bearer\u0020abcdefghijkl ok",
                "sent Bearer [REDACTED] ok",
            ),
            (r"sent bearer\u0009x9Kq ok", "sent bearer [REDACTED] ok"),
            (
                r"sent Token \u0020abcdefghijkl ok",
                "sent Token [REDACTED] ok",
            ),
            // Spaces all escaped: the credential ends at the next one.
            (
                r"sent\u0020Bearer\u0020abcdefghijkl\u0020ok",
                r"sent\u0020Bearer [REDACTED]\u0020ok",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"log":"sent Basic\\u0020dXNlcjpwYXNz ok"}"#
            ))
            .as_deref(),
            Some(r#"{"log":"sent Basic [REDACTED] ok"}"#)
        );
        // Prose keeps its words, the escapes after them not taken for a credential's digits.
        for prose in [
            r"the basic\u0020usage is fine",
            r"token\u0020rejected: InvalidAudience",
            r"the basic usage\u0020is fine",
            r"token rejected\u0020again",
            r"the\u0020token\u0020rejected\u0020again",
        ] {
            assert_eq!(r.redact_error(prose), prose);
        }
    }

    /// Found by review: a scheme followed by a percent-encoded space (`Bearer%20…`, a header
    /// copied out of a URL or a log of one) or an HTML-escaped one (`Bearer&nbsp;…`,
    /// `Basic&#32;…`, a header shown in a page) was no scheme followed by a credential.
    #[test]
    fn schemes_before_a_percent_encoded_or_html_escaped_space() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            ("sent Bearer%20abcdefghijkl ok", "sent Bearer [REDACTED] ok"),
            ("sent bearer%20x9Kq ok", "sent bearer [REDACTED] ok"),
            ("sent Basic%09dXNlcjpwYXNz ok", "sent Basic [REDACTED] ok"),
            (
                "sent Bearer%C2%A0abcdefghijkl ok",
                "sent Bearer [REDACTED] ok",
            ),
            (
                "sent%20Basic%20dXNlcjpwYXNz%20ok",
                "sent%20Basic [REDACTED]%20ok",
            ),
            (
                "sent Bearer%20eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln ok",
                "sent Bearer [REDACTED] ok",
            ),
            (
                "sent Bearer&nbsp;abcdefghijkl ok",
                "sent Bearer [REDACTED] ok",
            ),
            ("sent Basic&#32;dXNlcjpwYXNz ok", "sent Basic [REDACTED] ok"),
            (
                "sent Basic&#x20;dXNlcjpwYXNz ok",
                "sent Basic [REDACTED] ok",
            ),
            (
                "sent Token&#160;abcdefghijkl ok",
                "sent Token [REDACTED] ok",
            ),
            (
                "sent TOKEN&NonBreakingSpace;abcdefghijkl ok",
                "sent TOKEN [REDACTED] ok",
            ),
            (
                "sent\u{a0}Bearer\u{a0}abcdefghijkl ok",
                "sent\u{a0}Bearer [REDACTED] ok",
            ),
            // Spaces all escaped: the credential ends at the next one.
            (
                "sent&nbsp;Bearer&nbsp;abcdefghijkl&nbsp;ok",
                "sent&nbsp;Bearer [REDACTED]&nbsp;ok",
            ),
            (
                "sent&#32;Bearer&#32;abc12&#32;ok",
                "sent&#32;Bearer [REDACTED]&#32;ok",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        let body = |content_type: &str, body: &str| {
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some(content_type),
                body.as_bytes(),
            ))
        };
        assert_eq!(
            body("text/plain", "retry with Bearer%20abcdefghijkl now").as_deref(),
            Some("retry with Bearer [REDACTED] now")
        );
        // As with a space, the run goes to its end, the end tag glued to it too.
        assert_eq!(
            body("text/html", "<td>Bearer&nbsp;abcdefghijkl</td>"),
            body("text/html", "<td>Bearer abcdefghijkl</td>")
        );
        assert_eq!(
            body("text/html", "<td>Bearer&nbsp;abcdefghijkl </td>").as_deref(),
            Some("<td>Bearer [REDACTED] </td>")
        );
        assert_eq!(
            body(
                "application/json",
                r#"{"log":"sent Basic&#32;dXNlcjpwYXNz ok"}"#
            )
            .as_deref(),
            Some(r#"{"log":"sent Basic [REDACTED] ok"}"#)
        );
        // In a query's value, encoded once or twice, in a URL's query or not.
        assert_eq!(
            r.redact_query("h=Bearer%2520abcdefghijkl&n=1"),
            "h=Bearer+[REDACTED]&n=1"
        );
        assert_eq!(
            r.redact_query("h=Basic%26%2332%3BdXNlcjpwYXNz&n=1"),
            "h=Basic+[REDACTED]&n=1"
        );
        // Prose keeps its words, the escapes after them not taken for a credential's digits.
        for prose in [
            "the basic%20usage is fine",
            "token%20rejected: InvalidAudience",
            "the bearer%20of bad news",
            "the basic&nbsp;usage&nbsp;is fine",
            "token&#32;rejected&#32;again",
            "Basic&nbsp;Auth is off",
            "100%20basic%20plans",
        ] {
            assert_eq!(r.redact_error(prose), prose);
        }
    }

    /// Found by review: spaces after a scheme written otherwise than the list of escapes did:
    /// an HTML numeric reference with leading zeros (`&#x0020;`, `&#0032;`, valid HTML), a
    /// percent-encoding encoded twice (`Bearer%2520…`, a URL in a URL logged as text) and a
    /// form's `+` (a URL's query in text or in a JSON string, a URL inside a query's value)
    /// left the credential.
    #[test]
    fn schemes_before_spaces_written_otherwise() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            ("sent bearer&#x0020;x9Kq ok", "sent bearer [REDACTED] ok"),
            (
                "sent Bearer&#0032;abcdefghijkl ok",
                "sent Bearer [REDACTED] ok",
            ),
            (
                "sent Basic&#X00A0;dXNlcjpwYXNz ok",
                "sent Basic [REDACTED] ok",
            ),
            (
                "sent Token&#00009;abcdefghijkl ok",
                "sent Token [REDACTED] ok",
            ),
            (
                "sent Bearer%2520abcdefghijkl ok",
                "sent Bearer [REDACTED] ok",
            ),
            (
                "sent%2520Bearer%2520abc12%2520ok",
                "sent%2520Bearer [REDACTED]%2520ok",
            ),
            // The run goes to its end, the query's next pair too.
            (
                "GET /cb?h=Bearer+abcdefghijkl&n=1 200",
                "GET /cb?h=Bearer [REDACTED] 200",
            ),
            // A form's `+` is a space: it ends the credential, as an escape does.
            ("q=a+token+x9Kq+b", "q=a+token [REDACTED]+b"),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"next":"https://x/cb?h=Bearer+abcdefghijkl"}"#
            ))
            .as_deref(),
            Some(r#"{"next":"https://x/cb?h=Bearer [REDACTED]"}"#)
        );
        let query = r.redact_query("u=https%3A%2F%2Fx%2Fcb%3Fh%3DBearer%2Babcdefghijkl&n=1");
        assert!(!query.contains("abcdefghijkl"), "{query}");
        // Prose keeps its words: a number's reference, a plus between words.
        for prose in [
            "the token&#x0031;0 is fine",
            "basic&#0032;usage",
            "Basic+Plus plan",
            "token+offset",
            "a C++ Token+1 sum",
        ] {
            assert_eq!(r.redact_error(prose), prose);
        }
    }

    /// Found by review: once a scheme could be followed by a percent-encoded or HTML-escaped
    /// space, encoded prose after it was judged as written: a punctuation's escape gave the
    /// word its digits and length (`token%20expired%2C%20retry`, `the token&nbsp;doesn&#39;t
    /// match`, `Token%20count%3A%203`), and an end tag glued to a word its length
    /// (`<p>Basic&nbsp;plan</p>`). A run is now judged as the characters its escapes write,
    /// up to an end tag; one that is a credential still goes whole.
    #[test]
    fn encoded_prose_after_a_scheme_keeps_its_words() {
        let r = crate::sanitize::Redactor::default();
        for prose in [
            "token%20expired%2C%20retry",
            "the%20token%20was%20revoked%3B%20sorry",
            "msg=Token%20count%3A%203",
            "Basic%20plan%2C%20monthly",
            "the token&nbsp;doesn&#39;t match",
            "the token&nbsp;isn&#x27;t valid",
            "basic&nbsp;plan&#44; monthly",
            "token&#160;expired&#46;",
            "the token doesn&#39;t match",
        ] {
            assert_eq!(r.redact_error(prose), prose);
        }
        let html = |body: &str| {
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("text/html"),
                body.as_bytes(),
            ))
        };
        for page in [
            "<p>Basic&nbsp;plan</p>",
            "<td>Token&nbsp;count</td>",
            "<li>Basic plan</li>",
        ] {
            assert_eq!(html(page).as_deref(), Some(page));
        }
        // A credential is judged without its escapes and its end tag, and goes with them.
        for (text, want) in [
            ("sent token%20x9Kq%2C ok", "sent token [REDACTED] ok"),
            (
                "sent Basic%20dXNlcjpwYXNz%3D ok",
                "sent Basic [REDACTED] ok",
            ),
            (
                "sent bearer&nbsp;abcdefgh&#33; ok",
                "sent bearer [REDACTED] ok",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        assert_eq!(
            html("<td>Bearer&nbsp;abcdefghijkl</td>").as_deref(),
            Some("<td>Bearer [REDACTED]")
        );
    }

    /// Found by review: the password of a URL's userinfo (a database URL in a connection
    /// error, a proxy URL) was kept.
    #[test]
    fn url_passwords_are_redacted() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                "connect postgres://app:S3cr3t@db:5432/x failed",
                "connect postgres://app:[REDACTED]@db:5432/x failed",
            ),
            (
                "GET https://user:pa%40ss@example.com/x",
                "GET https://user:[REDACTED]@example.com/x",
            ),
            (
                "redis://:SECRET@cache:6379",
                "redis://:[REDACTED]@cache:6379",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"dsn":"mysql://root:SECRET@h/db"}"#
            ))
            .as_deref(),
            Some(r#"{"dsn":"mysql://root:[REDACTED]@h/db"}"#)
        );
        // A port, a path with `@`, an address: no password.
        for text in [
            "see https://example.com:8080/a@b",
            "mailto:ann@example.com and ssh://git@github.com/x",
            "https://example.com/@ann:matrix.org",
        ] {
            assert_eq!(r.redact_error(text), text);
        }
    }

    /// Found by a probe: a URL's password holding a raw `#`, `?` or `/` (a client that did not
    /// percent-encode it) kept what follows that character, or all of it; Go's `net/url`
    /// quotes its first part again as an invalid port.
    #[test]
    fn url_passwords_holding_delimiters_go_whole() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                r#"parse "postgres://app:s3cr#tPa55@db:5432/app": invalid port ":s3cr" after host"#,
                r#"parse "postgres://app:[REDACTED]@db:5432/app": invalid port ":[REDACTED]" after host"#,
            ),
            (
                "connect failed: postgres://app:ab/cdPass9@db/app",
                "connect failed: postgres://app:[REDACTED]@db/app",
            ),
            (
                "connect failed: mysql://app:ab?cdPass9@db/app",
                "connect failed: mysql://app:[REDACTED]@db/app",
            ),
            (
                "TypeError [ERR_INVALID_URL]: Invalid URL\n  input: 'postgres://app:p@ss/w0rd@db:5432/app'",
                "TypeError [ERR_INVALID_URL]: Invalid URL\n  input: 'postgres://app:[REDACTED]@db:5432/app'",
            ),
            (
                "redis://:ab#cd@cache:6379 and https://u:p/q@h/x",
                "redis://:[REDACTED]@cache:6379 and https://u:[REDACTED]@h/x",
            ),
            // A password to the last `@` of its run: a path's `@` after it goes too.
            (
                "https://u:pw/x@host/a/ann@example.com",
                "https://u:[REDACTED]@example.com",
            ),
            // Another URL in the query ends the run.
            (
                "https://u:p#w@host/cb?next=https://v@x/",
                "https://u:[REDACTED]@host/cb?next=https://v@x/",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"note":"postgres://app:ab#cdPass9@db/app"}"#
            ))
            .as_deref(),
            Some(r#"{"note":"postgres://app:[REDACTED]@db/app"}"#)
        );
        // No `:` after the user, a port's digits before the first `/`, `?` or `#`, no `//`.
        for text in [
            "https://example.com/a/b?x=1#frag@x",
            "https://host/path/user@example.com",
            "https://example.com:8080/a@b",
            "http://localhost:3000/users/ann@example.com?x=1",
            "http://[::1]:8080/a@b",
            "https://host:/a@b",
            "mailto:ann@example.com",
            "git@github.com:org/repo",
            "ssh://git@github.com:org/repo.git",
            "// see: a/b@c.d",
            "https://example.com/@ann:matrix.org/x@y",
            "invalid port \":8080\" before host",
        ] {
            assert_eq!(r.redact_error(text), text);
        }
    }

    /// Found by a probe: a URL's userinfo whose `//` JSON escapes (`https:\/\/ann:…@x`, as
    /// PHP's `json_encode` writes it and Monolog's and Laravel's log lines carry it, or
    /// `\u002f\u002f`) in a text or an error kept its password.
    #[test]
    fn url_passwords_after_escaped_slashes() {
        let r = crate::sanitize::Redactor::default();
        for (text, want) in [
            (
                r#"failed: {"dsn":"redis:\/\/:Hunter2Pass@cache:6379"}"#,
                r#"failed: {"dsn":"redis:\/\/:[REDACTED]@cache:6379"}"#,
            ),
            (
                r"https:\/\/ann:Hunter2Pass@x.io",
                r"https:\/\/ann:[REDACTED]@x.io",
            ),
            (
                r"https:\u002f\u002fann:Hunter2Pass@x.io",
                r"https:\u002f\u002fann:[REDACTED]@x.io",
            ),
            (
                r"https:\u002F\u002Fann:Hunter2Pass@x.io",
                r"https:\u002F\u002Fann:[REDACTED]@x.io",
            ),
            (
                r#"connect failed {"url":"https:\/\/ann:ab\/cdPass9@x.io\/v1"}"#,
                r#"connect failed {"url":"https:\/\/ann:[REDACTED]@x.io\/v1"}"#,
            ),
            // A whole JSON error is read as JSON, its escapes decoded.
            (
                r#"{"url":"https:\/\/ann:ab\/cdPass9@x.io\/v1"}"#,
                r#"{"url":"https://ann:[REDACTED]@x.io/v1"}"#,
            ),
            (
                r"clone https:\/\/ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com\/o\/r",
                r"clone https:\/\/[REDACTED]@github.com\/o\/r",
            ),
        ] {
            assert_eq!(r.redact_error(text), want, "{text}");
        }
        let text = r#"[2024-01-01] local.ERROR: connect failed {"url":"https:\/\/ann:Hunter2Pass@api.x.io\/v1"}"#;
        let stored = r.redact_body(&crate::sanitize::BodyInput::new(
            Some("text/plain"),
            text.as_bytes(),
        ));
        assert_eq!(
            stored.as_deref(),
            Some(
                r#"[2024-01-01] local.ERROR: connect failed {"url":"https:\/\/ann:[REDACTED]@api.x.io\/v1"}"#
            )
        );
        // No password: a port, a path's `@`, an address, escapes of other characters.
        for text in [
            r"https:\/\/example.com:8080\/a@b",
            r"https:\/\/example.com\/u\/ann@example.com",
            r"https:\/\/ann@example.com\/x",
            r"C:\\Users\\ann@corp",
            r#"{"path":"a\/\/b","mail":"ann@x.io"}"#,
            r"\u002fann:x@y",
        ] {
            assert_eq!(r.redact_error(text), text);
        }
    }

    #[test]
    fn jwt_in_free_text() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let text = format!("token was {jwt}, then");
        let out = rules().redact(&text);
        assert_eq!(out, "token was [REDACTED], then");
    }

    /// Found by a probe: a JWT whose segments end in base64's padding (AWS's load balancers
    /// sign `x-amzn-oidc-data` so), or whose header holds whitespace (`{ "alg": …}`, or
    /// pretty-printed over lines), verifies, and was stored as sent.
    #[test]
    fn jwts_padded_or_with_a_spaced_header_are_found() {
        use crate::test_util::base64url as encode;
        let claims = r#"{"sub":"alice","exp":1800000000}"#;
        let mut tokens = Vec::new();
        for header in [
            r#"{"typ":"JWT","alg":"ES256","kid":"k1","signer":"arn:aws:elb"}"#,
            r#"{ "alg": "HS256", "typ": "JWT" }"#,
            "{  \"alg\": \"HS256\" }",
            "{\n  \"alg\": \"HS256\",\n  \"typ\": \"JWT\"\n}",
            "{\r\n\t\"alg\": \"HS256\"\r\n}",
            "{\t\"alg\":\"HS256\"}",
            "{\n\"alg\":\"none\"}",
        ] {
            for pad in [true, false] {
                tokens.push(format!(
                    "{}.{}.{}",
                    encode(header.as_bytes(), pad),
                    encode(claims.as_bytes(), pad),
                    encode(&[7u8; 64], pad)
                ));
            }
        }
        let r = rules();
        let full = crate::sanitize::Redactor::default();
        for token in &tokens {
            for text in [
                token.clone(),
                format!("id {token} then"),
                format!("/r/{token}"),
                format!("https://x.example/cb?t={token}&state=s"),
            ] {
                let out = r.redact(&text);
                assert!(!out.contains(&token[token.len() - 20..]), "{text} -> {out}");
                assert!(out.contains("[REDACTED]"), "{text} -> {out}");
            }
            let header = full.redact_header_text(token);
            assert!(!header.contains(&token[..16]), "{header}");
        }
        // Words and host names that start so, and a short run, are not taken for one.
        for text in [
            "eyewear.example.com/a.b",
            "ewok.tribe.endor.moon",
            "new.view.example.org",
            "eyAlign.x.y",
            "ewoks and eyAi.b.c",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    #[test]
    fn card_numbers_with_no_break_spaces_are_found() {
        // Found by a probe: a card pasted from a formatted page, its groups apart by U+00A0.
        let r = rules();
        for text in [
            "4111\u{a0}1111\u{a0}1111\u{a0}1111",
            "card: 4111\u{a0}1111\u{a0}1111\u{a0}1111, exp 12/29",
            "4111 1111\u{a0}1111-1111",
        ] {
            let redacted = r.redact(text);
            assert!(
                redacted.contains("[REDACTED]") && !redacted.contains("1111"),
                "{text:?}: {redacted:?}"
            );
            assert!(holds_digit_run(text.as_bytes()), "{text:?}");
        }
        // Not a card: Luhn fails, or a no-break space stands alone.
        for text in [
            "4111\u{a0}1111\u{a0}1111\u{a0}1112",
            "4111\u{a0}\u{a0}1111 1111 1111",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    #[test]
    fn card_numbers_are_luhn_checked() {
        let r = rules();
        assert_eq!(
            r.redact("card 4111 1111 1111 1111 ok"),
            "card [REDACTED] ok"
        );
        assert_eq!(r.redact("card 4111-1111-1111-1111"), "card [REDACTED]");
        assert_eq!(r.redact("4111111111111111"), "[REDACTED]");
        assert_eq!(r.redact("x378282246310005x"), "x[REDACTED]x");
        // Fails Luhn: an order number survives.
        assert_eq!(r.redact("order 1234567812345678"), "order 1234567812345678");
        // A card grouped after an unrelated number is still found.
        assert_eq!(
            r.redact("ref 0049 4111 1111 1111 1111"),
            "ref 0049 [REDACTED]"
        );
        // When the number before it and the card's first groups pass Luhn by chance, the card's
        // last groups go with them.
        assert_eq!(
            r.redact("call 555-0142 4111 1111 1111 1111"),
            "call [REDACTED]"
        );
        assert_eq!(
            r.redact("4111 1111 1111 1111 5555 5555 5555 4444"),
            "[REDACTED] [REDACTED]"
        );
        // A longer digit run is not a card even if a substring passes Luhn.
        assert_eq!(r.redact("41111111111111110000"), "41111111111111110000");
        assert!(r.is_card_number("4111111111111111"));
        assert!(!r.is_card_number("1234567812345678"));
        assert!(!r.is_card_number("411111111111"));
    }

    /// Digits inside a hexadecimal identifier (a UUID, a digest) are the identifier's, not a
    /// card number, even where a stretch of them passes Luhn: a random UUID v4 was cut to
    /// `[REDACTED]ce-9823-55455a692f8c`.
    #[test]
    fn digits_inside_hex_identifiers_are_not_card_numbers() {
        let r = rules();
        for text in [
            "56654792-1320-42ce-9823-55455a692f8c",
            "id 56654792-1320-42ce-9823-55455a692f8c ok",
            "ab4111111111111111cd",
            "sha256:e3b04111111111111111c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert_eq!(r.redact(text), text);
        }
        // Standing apart, grouped by dashes, or glued to a word that is not hexadecimal, it is
        // still a card.
        assert_eq!(r.redact("card4111111111111111"), "card[REDACTED]");
        assert_eq!(r.redact("ab 4111111111111111 cd"), "ab [REDACTED] cd");
        assert_eq!(r.redact("4111-1111-1111-1111"), "[REDACTED]");
        assert_eq!(r.redact("4111 1111 1111 1111abc"), "[REDACTED]abc");
        assert_eq!(r.redact("ref-4111111111111111"), "ref-[REDACTED]");
        // A SHA-512 digest is an identifier; a longer token (a blob) is not.
        let digest = format!("{}4111111111111111{}", "ab".repeat(40), "cd".repeat(16));
        assert_eq!(r.redact(&digest), digest);
        let blob = format!("{}4111111111111111", "ab".repeat(80));
        assert_eq!(r.redact(&blob), format!("{}[REDACTED]", "ab".repeat(80)));
        // A word of hex letters before a dash does not make the card an identifier.
        assert_eq!(r.redact("fee-4111-1111-1111-1111"), "fee-[REDACTED]");
        assert_eq!(r.redact("x378282246310005x"), "x[REDACTED]x");

        // No random UUID v4 is altered: one in about 370 was, by chance. Among them, one in
        // about 13,000 whose last two groups are all digits: a run set apart by a dash, whose
        // 16 digits here pass Luhn.
        for tail in [
            "abcdefab-1234-4567-8900-234567890107",
            "order-abcdefab-1234-4567-8900-234567890107",
            "urn:uuid:abcdefab-1234-4567-8900-234567890107.",
        ] {
            assert_eq!(r.redact(tail), tail);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let mut bytes = [0; 16];
            bytes[..8].copy_from_slice(&next().to_le_bytes());
            bytes[8..].copy_from_slice(&next().to_le_bytes());
            let id = uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string();
            assert_eq!(r.redact(&id), id);
            let prefixed = format!("order-{id}");
            assert_eq!(r.redact(&prefixed), prefixed);
        }
    }

    /// Unix times in milliseconds, microseconds and nanoseconds, and ids built on them (a
    /// snowflake), are not card numbers, as JSON numbers or in text; one in ten passes Luhn.
    /// The test cards of the networks are, and so is a UATP card (15 digits starting with 1).
    #[test]
    fn timestamps_are_not_card_numbers() {
        let r = rules();
        let mut luhn_valid = 0;
        for k in 0..20_000u64 {
            let ms = 1_733_400_000_000 + k * 7_919_993;
            for number in [ms, ms * 1_000 + k % 1_000, ms * 1_000_000 + k] {
                let text = number.to_string();
                luhn_valid += usize::from(luhn(text.bytes()));
                assert!(!r.is_card_number(&text), "{text}");
                let sentence = format!("at {text} ok");
                assert_eq!(r.redact(&sentence), sentence);
            }
        }
        assert!(
            luhn_valid > 5_000,
            "the check would redact them: {luhn_valid}"
        );
        for card in [
            "4012888888881881",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "30569309025904",
            "3530111333300000",
            "6200000000000005",
            "135410014004955",
        ] {
            assert!(r.is_card_number(card), "{card}");
            assert_eq!(r.redact(&format!("card {card}")), "card [REDACTED]");
        }
    }

    #[test]
    fn pem_private_keys_with_and_without_end() {
        let r = rules();
        let full =
            "k: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY----- done";
        assert_eq!(r.redact(full), "k: [REDACTED] done");
        let cut = "k: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        assert_eq!(r.redact(cut), "k: [REDACTED]");
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(r.redact(openssh), "[REDACTED]");
        let public = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh\n-----END PUBLIC KEY-----";
        assert_eq!(r.redact(public), public);
        // RFC 4716's form (found by a probe on 2026-12-08).
        let ssh2 = "key: ---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"x\"\nP2/56wAAA\n\
                    ---- END SSH2 ENCRYPTED PRIVATE KEY ---- done";
        assert_eq!(r.redact(ssh2), "key: [REDACTED] done");
        let cut = "---- BEGIN SSH2 PRIVATE KEY ----\nP2/56wAAA";
        assert_eq!(r.redact(cut), "[REDACTED]");
        let public = "---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3Nza\n---- END SSH2 PUBLIC KEY ----";
        assert_eq!(r.redact(public), public);
    }

    #[test]
    fn aws_access_key_ids() {
        let r = rules();
        assert_eq!(r.redact("id AKIAIOSFODNN7EXAMPLE."), "id [REDACTED].");
        assert_eq!(r.redact("id ASIAIOSFODNN7EXAMPLE"), "id [REDACTED]");
        assert_eq!(r.redact("id AKIAshort"), "id AKIAshort");
    }

    #[test]
    fn user_patterns_use_their_own_replacement_literally() {
        let user = vec![(Regex::new(r"acct-\d{6}").unwrap(), Box::from("$acct"))];
        let r = ValueRules::new("[REDACTED]", user);
        assert_eq!(r.redact("x acct-123456 y"), "x $acct y");
    }

    /// The byte-by-byte scan of short strings finds exactly the anchors the searchers of long
    /// ones find, wherever in the string they sit; were it to miss one, a secret would pass.
    #[test]
    fn both_anchor_searches_agree() {
        let r = rules();
        let pieces = [
            "-----BEGIN",
            "----BEGIN",
            "---- BEGIN SSH2",
            "---- BEGIN SSH",
            "SG.",
            "ya29.",
            "hvs.",
            "dp.",
            "ATATT3",
            "shpat_",
            "hf_",
            "key-",
            "bearer",
            "BeArEr",
            "beare",
            "Basic",
            "Basi",
            "basic",
            "Token",
            "Toke",
            "T",
            "token",
            "TOKEN",
            "to",
            "ken",
            "k",
            "K",
            "BASIC",
            "eyJ",
            "ey",
            "://",
            ":/",
            ":",
            "AKIA",
            "ASIA",
            "AKI",
            "ASI",
            "0",
            "12345",
            "x",
            " ",
            "é",
            "-",
            "b",
            "e",
            "A",
            "_",
            "ghp",
            "sk",
            "xoxb",
            "glpat",
            "AIza",
            "AIz",
            "/",
            "/bot1",
            "/bot",
            "/webhooks/",
            "/services/T",
            "\\",
            "\\/",
            "\\u002f",
            "\\u002F",
            "\\u002",
            "authori",
            "zation",
            "AUTHORIZATION",
            "jdbc:oracle",
        ];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let text = format!("{a}{b}{c}");
                    let bytes = text.as_bytes();
                    let searched = r.search(bytes);
                    assert_eq!(Anchors::scan(bytes), searched, "{text:?}");
                    checked += usize::from(searched != Anchors::default());
                }
            }
        }
        assert!(checked > 1_000, "the pieces hold anchors: {checked}");
        // A long string takes the searchers, a short one the scan: both redact.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        let short = format!("t {jwt}");
        let long = format!("{} {jwt}", "x".repeat(LONG_STRING));
        assert!(short.len() < LONG_STRING);
        assert_eq!(r.redact(&short), "t [REDACTED]");
        assert_eq!(
            r.redact(&long),
            format!("{} [REDACTED]", "x".repeat(LONG_STRING))
        );
    }

    /// Found by a probe: the tokens of common services were stored verbatim wherever no
    /// sensitive key stood around them (a message, a log line, a path).
    #[test]
    fn service_token_formats_are_redacted() {
        let r = rules();
        let gh = format!("ghp_{}", "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5");
        for token in [
            gh.as_str(),
            "gho_hunter2abcdefghijklmnopqrstuvwxyz12",
            "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789",
            "xoxb-123-456-hunter2abc",
            "xoxp-1234567890-abcdefghij",
            "sk_live_51Hhunter2abcdefghijkl",
            "rk_test_51Hhunter2abcdefghijkl",
            "whsec_hunter2abcdefghijklmnop",
            "sk-proj-hunter2abcdefghijklmnop",
            "sk-aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5",
            "glpat-hunter2abcdefghijk",
            "npm_hunter2abcdefghijklmnopqrstuvwxyz12",
            "AIzaSyHunter2abcdefghijklmnopqrstuvw",
            // The third round of the sanitizer probe (2026-12-08).
            "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",
            "ya29.a0AfH6SMBx3dQ9kPqR7sT2uVwXyZ0123456789abcdef",
            "GOCSPX-1a2B3c4D5e6F7g8H9i0JkLmNoPq",
            "shpat_0123456789abcdef0123456789abcdef",
            "pypi-AgEIcHlwaS5vcmcCJGQ4ZjQ1YTY3LTg5MDEtNGNkZS1hYmMxLTIzNDU2Nzg5MGFi",
            "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
            "hvs.CAESIJ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
            "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "ATATT3xFfGF0T1a2b3c4d5e6f7g8h9i0",
            "lin_api_0123456789abcdefghijklmnopqrstuvwxyzAB",
            "PMAK-0123456789abcdef01234567-0123456789abcdef0123456789abcdef01",
            "glptt-0123456789abcdefghij",
            "HRKU-0123456789abcdefghijklmnop",
            "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
            "NRAK-0123456789ABCDEFGHIJKLMNOPQ",
            "dp.st.dev.0123456789abcdefghijklmnopqrstuvwxyz",
            "glsa_0123456789abcdefghijklmnopqrstuv_0a1b2c3d",
            "pul-0123456789abcdef0123456789abcdef01234567",
            "sq0atp-0123456789abcdefghijkl",
            "sbp_0123456789abcdef0123456789abcdef01234567",
            "pscale_tkn_0123456789abcdefghijklmnopqrstuvwxyz",
            "CFPAT-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
            "dt0c01.ST2EY72KQINMH574WMNVI7YN.G3DFPBEJYMODIDAEX454M7YWBUVEFOWKPRVMWFASS64NFH52PX6BNDVFFM572RZM",
            "key-0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                r.redact(&format!("using {token} now")),
                "using [REDACTED] now"
            );
            assert_eq!(r.redact(&format!("k={token}")), "k=[REDACTED]");
            assert_eq!(r.redact(&format!("/x/{token}/y")), "/x/[REDACTED]/y");
        }
        // Short ones, inside words, identifiers and prose keep their text.
        for text in [
            "ghp_short and gho_12345",
            "task-management-dashboard-service-v2",
            "sk-learn-compatible-estimators-v2 here",
            "desk-aB3dE5gH7jK9mN1pQ3sT5vW7y",
            "npm_config_user_agent=npm/10.2.0",
            "npm_package_dependencies_typescript",
            "the risk_live_monitor_dashboard view",
            "xoxo-hugs and kisses",
            "AIzawhat is this",
            "github_page is fine",
            "pk_live_51Hhunter2abcdefghijkl",
            "SG.2 is a section",
            "hf_model_name and hvs.short",
            "the api-key-rotation-guide and the monkey-patch",
            "SKU-12345 and SKIP",
            "shpat_ and dapi are prefixes",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    /// Found by a probe: webhook URLs whose path is the credential (Slack, Discord) and a
    /// Telegram bot token in a path were stored whole.
    #[test]
    fn webhook_secrets_in_urls_and_paths() {
        let r = rules();
        for (text, want) in [
            (
                "https://hooks.slack.com/services/T00000000/B00000000/hunter2XXXXXXXXXXXXXXXX",
                "https://hooks.slack.com/services/T00000000/B00000000/[REDACTED]",
            ),
            (
                "post https://discord.com/api/webhooks/123/hunter2abc ok",
                "post https://discord.com/api/webhooks/123/[REDACTED] ok",
            ),
            (
                "/api/v10/webhooks/112233445566/aBc-d_ef123456/slack",
                "/api/v10/webhooks/112233445566/[REDACTED]/slack",
            ),
            (
                "/bot123456:AAHhunter2abcdefghijklmnopqrstuvw/sendMessage",
                "/bot[REDACTED]/sendMessage",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        for text in [
            "/hooks/slack/T000/B000/hunter2xxxxxxxxxxxxxxxx",
            "/services/Team/Billing/overview-page",
            "/api/webhooks/list",
            "/bots/42/settings and /bot/help",
            "/bot123/status",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    /// Found by a probe: a token as a URL's whole userinfo (no password, as git remotes carry
    /// one), an Oracle `user/password@` connect string and a password in a URL written without
    /// its scheme were kept.
    #[test]
    fn tokens_as_userinfo_and_other_connect_strings() {
        let r = rules();
        for (text, want) in [
            (
                "git remote add origin https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
                "git remote add origin https://[REDACTED]@github.com/o/r",
            ),
            (
                "clone https://glpat-hunter2abc@gitlab.com/o/r.git",
                "clone https://[REDACTED]@gitlab.com/o/r.git",
            ),
            (
                "clone https://9f8e7d6c5b4a39281706f5e4d3c2b1a0@host/r.git",
                "clone https://[REDACTED]@host/r.git",
            ),
            (
                "url=jdbc:oracle:thin:scott/hunter2@db:1521/orcl",
                "url=jdbc:oracle:thin:scott/[REDACTED]@db:1521/orcl",
            ),
            (
                "proxy //u:pw1234@h:3128 down",
                "proxy //u:[REDACTED]@h:3128 down",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        for text in [
            "ssh://git@github.com/o/r.git",
            "https://user@example.com/x",
            "https://john.doe@example.com/x",
            "mailto:ann@example.com",
            "// see ann@example.com",
            "jdbc:oracle:thin:@db:1521/orcl",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    /// Found by a probe: an Oracle tool's connect string without `jdbc:` kept its password.
    #[test]
    fn oracle_tool_passwords() {
        let r = rules();
        for (text, want) in [
            (
                "sqlplus scott/hunter2XYZ@orcl",
                "sqlplus scott/[REDACTED]@orcl",
            ),
            (
                "run: sqlplus -s scott/hunter2XYZ@//db:1521/svc < x.sql",
                "run: sqlplus -s scott/[REDACTED]@//db:1521/svc < x.sql",
            ),
            (
                "exp system/hunter2XYZ@xe file=x.dmp",
                "exp system/[REDACTED]@xe file=x.dmp",
            ),
            (
                "SQL> CONNECT scott/tiger1@orcl",
                "SQL> CONNECT scott/[REDACTED]@orcl",
            ),
            // Easy Connect alone (found by a probe on 2026-12-08).
            (
                r#"{"dsn":"app/OraEzPw1@//db:1521/svc"}"#,
                r#"{"dsn":"app/[REDACTED]@//db:1521/svc"}"#,
            ),
            (
                "ORA-12154 for app/OraEzPw1@//db.example:1521/svc",
                "ORA-12154 for app/[REDACTED]@//db.example:1521/svc",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        let long = format!("{} sqlplus scott/hunter2XYZ@orcl", "x".repeat(200));
        assert!(!r.redact(&long).contains("hunter2XYZ"));
        for text in [
            "npm i @scope/pkg@1.2.3 and more",
            "see docs/guide@v2 for more",
            "could not connect to db/x",
            "connect postgres://app@db/x",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    /// Found by a probe: the password of a Go MySQL driver's DSN, which has no scheme
    /// (`root:hunter2@tcp(db:3306)/app`), was kept in an error and in a JSON value.
    #[test]
    fn go_dsn_passwords() {
        let r = rules();
        for (text, want) in [
            (
                "Error 1045: Access denied; dsn=root:hunter2XYZ@tcp(127.0.0.1:3306)/app",
                "Error 1045: Access denied; dsn=root:[REDACTED]@tcp(127.0.0.1:3306)/app",
            ),
            (
                "root:hunter2XYZ@tcp(db:3306)/x?parseTime=true",
                "root:[REDACTED]@tcp(db:3306)/x?parseTime=true",
            ),
            (
                "app:p@ss:w0rd@unix(/var/run/mysqld.sock)/app",
                "app:[REDACTED]@unix(/var/run/mysqld.sock)/app",
            ),
            (
                "DATABASE_DSN=u:hunter2@tcp6([::1]:3306)/x",
                "DATABASE_DSN=u:[REDACTED]@tcp6([::1]:3306)/x",
            ),
            (":hunter2XYZ@tcp(db)/x", ":[REDACTED]@tcp(db)/x"),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        // A long text goes through the vectorized search.
        let long = format!("{} dsn=root:hunter2XYZ@tcp(db:3306)/app", "x".repeat(200));
        assert!(!r.redact(&long).contains("hunter2XYZ"));
        for text in [
            "root@tcp(db:3306)/app",
            "mail ann@example.com at 10:30",
            "tcp(db:3306) user: ann@tcp",
        ] {
            assert_eq!(r.redact(text), text);
        }
        let json = crate::sanitize::Redactor::default()
            .redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                br#"{"dsn":"root:hunter2XYZ@tcp(db:3306)/x?parseTime=true"}"#,
            ))
            .unwrap_or_default();
        assert_eq!(
            json,
            r#"{"dsn":"root:[REDACTED]@tcp(db:3306)/x?parseTime=true"}"#
        );
    }

    /// Found by a probe: the AWS secret access key written a few words after its key id (a
    /// credentials file, a CSV, a pasted pair) was kept while the id went.
    #[test]
    fn aws_secret_keys_after_their_id() {
        let r = rules();
        for (text, want) in [
            (
                "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "[REDACTED] [REDACTED]",
            ),
            (
                "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYhunter2",
                "[REDACTED] [REDACTED]",
            ),
            (
                "id AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion",
                "id [REDACTED]\naws_secret_access_key = [REDACTED]\nregion",
            ),
            (
                "ASIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,x",
                "[REDACTED],[REDACTED],x",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        // Words that are no secret, or too far after the id, stay.
        for (text, want) in [
            (
                "AKIAIOSFODNN7EXAMPLE belongs to the deployment-automation-service-account",
                "[REDACTED] belongs to the deployment-automation-service-account",
            ),
            (
                "AKIAIOSFODNN7EXAMPLE a b c d e f g h wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "[REDACTED] a b c d e f g h wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
    }

    /// Found by a probe: an `Authorization` header quoted in text kept what followed the
    /// first comma of a multi-part credential (`Digest`, `AWS4-HMAC-SHA256`).
    #[test]
    fn authorization_values_in_text_go_to_the_end_of_the_line() {
        let r = rules();
        for (text, want) in [
            (
                "Authorization: Digest username=\"a\", response=\"hunter2abc\"\nHost: x",
                "Authorization: Digest [REDACTED]\nHost: x",
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=hunter2abc",
                "Authorization: AWS4-HMAC-SHA256 [REDACTED]",
            ),
            (
                "curl -H 'Proxy-Authorization: Digest a=1, response=hunter2abc' https://x",
                "curl -H 'Proxy-Authorization: Digest [REDACTED]' https://x",
            ),
            (
                "\"authorization\":\"Negotiate YIIhunter2, x\"}",
                "\"authorization\":\"Negotiate [REDACTED]\"}",
            ),
        ] {
            assert_eq!(r.redact(text), want, "{text}");
        }
        for text in [
            "Authorization: failed for user ann",
            "authorization required",
            "the authorization header was missing, retry",
            // A one-word credential after these schemes is the scheme rule's, which keeps prose.
            "Authorization: Bearer tokens are accepted, see docs",
            "authorization: Basic auth is off",
        ] {
            assert_eq!(r.redact(text), text);
        }
    }

    #[test]
    fn untouched_text_is_borrowed() {
        assert!(matches!(
            rules().redact("just some ordinary text here"),
            Cow::Borrowed(_)
        ));
    }
}
