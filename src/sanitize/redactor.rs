//! The [`Redactor`] and its [`RedactorBuilder`].

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use regex::Regex;

use super::body::{self, BodyInput};
use super::error::SanitizeError;
use super::headers::{self, DEFAULT_SENSITIVE_HEADERS};
use super::keys::{DEFAULT_KEY_SUFFIXES, DEFAULT_KEYS, KeyRules, normalize_key};
use super::values::ValueRules;
use super::{form, json, path, text};

/// The default text that replaces a redacted value.
const DEFAULT_REPLACEMENT: &str = "[REDACTED]";

/// The marker after the replacement of a body the sanitizer failed on (see
/// [`Redactor::guarded`]).
const FAILED: &str = " …[the sanitizer failed on this body]";

#[cfg(test)]
thread_local! {
    /// Makes every reading of [`Redactor::guarded`] on this thread panic, for its tests.
    static PANIC_IN_READINGS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The default cap on decoded `Content-Encoding` output: 64 KiB.
const DEFAULT_MAX_DECODED_BYTES: usize = 64 * 1024;

/// Makes sure no secret reaches the audit table.
///
/// Built once with [`Redactor::builder`] (or [`Redactor::default`] for the default rules) and
/// cloned cheaply into the writer. Every method is infallible and never panics: a body it
/// cannot read fully is stored up to the point of failure with a marker, and never with a
/// secret after that point. Should a reading panic all the same (a bug, or a
/// [route's body function](RedactorBuilder::route_body_fn) that panics), the panic is caught
/// and logged, and the value is replaced whole: a body by the replacement and
/// ` …[the sanitizer failed on this body]`, a query, error or text by the replacement, a path
/// by `/` and the replacement.
///
/// A panic's message can quote the value it was reading (a string sliced out of bounds quotes
/// up to 256 characters of it), and the default panic hook prints it on stderr. So the first
/// reading installs a panic hook around the one the process has: a panic inside a reading
/// reaches no hook, and is logged with its place (`at=src/…:line:column`) but not its message;
/// every other panic goes to the hook that was there, as it came. A hook the application sets
/// later replaces it: the next caught panic's message then reaches that hook, once, and the
/// crate wraps that hook too.
///
/// ```
/// use tower_audit::sanitize::{BodyInput, Redactor};
///
/// let redactor = Redactor::default();
/// let body = BodyInput::new(Some("application/json"), br#"{"user":"ann","password":"hunter2"}"#);
/// assert_eq!(
///     redactor.redact_body(&body).as_deref(),
///     Some(r#"{"user":"ann","password":"[REDACTED]"}"#)
/// );
/// assert_eq!(redactor.redact_query("q=shoes&access_token=abc"), "q=shoes&access_token=[REDACTED]");
/// ```
#[derive(Clone, Debug)]
pub struct Redactor {
    rules: Arc<Rules>,
}

/// Everything a [`Redactor`] needs, compiled once.
#[derive(Debug)]
pub(super) struct Rules {
    pub(super) replacement: Box<str>,
    /// `replacement` as a quoted JSON string.
    pub(super) replacement_json: Box<str>,
    pub(super) keys: KeyRules,
    pub(super) values: ValueRules,
    pub(super) sensitive_headers: Vec<HeaderName>,
    pub(super) routes: foldhash::HashMap<Box<str>, RouteBodyFn>,
    pub(super) max_decoded_bytes: usize,
}

/// The type-erased function behind [`RouteBodyFn`].
type BodyFn = dyn Fn(&BodyInput<'_>) -> Option<String> + Send + Sync;

/// A custom body function registered with [`RedactorBuilder::route_body_fn`].
#[derive(Clone)]
pub(super) struct RouteBodyFn {
    pub(super) f: Arc<BodyFn>,
    type_name: &'static str,
}

impl fmt::Debug for RouteBodyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name)
    }
}

impl Default for Redactor {
    /// The default rules; see [`RedactorBuilder`] for the table.
    fn default() -> Self {
        Self::builder().build()
    }
}

impl Redactor {
    /// Starts from the default rules.
    pub fn builder() -> RedactorBuilder {
        RedactorBuilder::default()
    }

    /// Sanitized text to store in the `request_body` column, or `None` for an empty body.
    ///
    /// JSON (`application/json`, `*+json`), form-urlencoded and `text/*` bodies are stored
    /// redacted (a `text/*` body that is a JSON document as JSON: `fetch` sends a string body
    /// as `text/plain`); multipart bodies as a JSON list of their parts without file contents,
    /// each text field's value redacted like a body; any other body as a short description
    /// such as `[binary application/grpc, 1234 bytes]`.
    /// A body without a content type is read as JSON when it starts like JSON, as text when it
    /// is UTF-8, and described otherwise. Truncated or malformed bodies end with a marker such
    /// as ` …[truncated, 70000 bytes total]` or ` …[invalid JSON at byte 123]`.
    pub fn redact_body(&self, body: &BodyInput<'_>) -> Option<String> {
        self.redact_body_decoding(body, self.rules.max_decoded_bytes)
            .0
    }

    /// [`redact_body`](Self::redact_body) with a compressed body decoded to at most
    /// `max_decoded` bytes (at most the redactor's own bound); 0 describes it undecoded. With
    /// whether the body was decoded only in part, so that what is stored is a prefix of it.
    pub(crate) fn redact_body_decoding(
        &self,
        body: &BodyInput<'_>,
        max_decoded: usize,
    ) -> (Option<String>, bool) {
        self.guarded(
            "body",
            || {
                let mut decode_cut = false;
                let text =
                    body::redact_body_decoding(&self.rules, body, max_decoded, &mut decode_cut);
                (text, decode_cut)
            },
            |replacement| (Some(format!("{replacement}{FAILED}")), false),
        )
    }

    /// Sanitized query string (without the leading `?`).
    pub fn redact_query(&self, query: &str) -> String {
        self.guarded("query", || self.redact_pairs(query, false), str::to_owned)
    }

    /// [`redact_query`](Self::redact_query) of a query cut short: its last pair may be cut,
    /// so the last word of its value is dropped and a last key without `=` too.
    pub(crate) fn redact_cut_query(&self, query: &str) -> String {
        self.guarded("query", || self.redact_pairs(query, true), str::to_owned)
    }

    /// A query's pairs redacted, the last one cut short when `cut`.
    fn redact_pairs(&self, query: &str, cut: bool) -> String {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut out = String::with_capacity(query.len());
        form::redact_pairs(&self.rules, query, cut, &mut out);
        out
    }

    /// Redacts free text with the value patterns only.
    ///
    /// Error texts and paths have rules of their own: [`redact_error`](Self::redact_error) and
    /// [`redact_path`](Self::redact_path).
    pub fn redact_text(&self, text: &str) -> String {
        self.guarded(
            "text",
            || self.rules.values.redact(text).into_owned(),
            str::to_owned,
        )
    }

    /// Redacts a short text the layer stores as it stores a header's value (a user agent, a
    /// handler's resource or action): the pairs it carries (`token=…`), a JSON document in it,
    /// and the value patterns.
    pub(crate) fn redact_header_text(&self, text: &str) -> String {
        self.guarded(
            "text",
            || super::headers::redact_plain_value(&self.rules, text).into_owned(),
            str::to_owned,
        )
    }

    /// Redacts an error text like a `text/plain` body: as JSON when it is a JSON document, else
    /// the values of sensitive keys in `key=value`, `key: "value"` (a `Debug` print such as
    /// `LoginRequest { user: "ann", password: "hunter2" }`), XML elements and HTML form fields,
    /// and the value patterns everywhere.
    ///
    /// ```
    /// use tower_audit::sanitize::Redactor;
    ///
    /// let redactor = Redactor::default();
    /// assert_eq!(
    ///     redactor.redact_error(r#"bad request: LoginRequest { user: "ann", password: "hunter2" }"#),
    ///     r#"bad request: LoginRequest { user: "ann", password: [REDACTED] }"#
    /// );
    /// ```
    pub fn redact_error(&self, text: &str) -> String {
        self.guarded(
            "error",
            || {
                let mut out = String::with_capacity(text.len());
                text::redact_text_or_json(&self.rules, text, false, false, &mut out);
                out
            },
            str::to_owned,
        )
    }

    /// Redacts a request path: the value patterns, and the value of a matrix parameter whose
    /// name is a sensitive key (`/cart;jsessionid=…`).
    ///
    /// Path segments are not taken for `key/value` pairs: the segment after `password` or
    /// `token` is as often an action (`/token/refresh`) as a secret.
    ///
    /// ```
    /// use tower_audit::sanitize::Redactor;
    ///
    /// let redactor = Redactor::default();
    /// assert_eq!(
    ///     redactor.redact_path("/shop;jsessionid=0F3A9B/token/refresh"),
    ///     "/shop;jsessionid=[REDACTED]/token/refresh"
    /// );
    /// ```
    pub fn redact_path(&self, path: &str) -> String {
        self.guarded(
            "path",
            || path::redact_path(&self.rules, path),
            |replacement| format!("/{replacement}"),
        )
    }

    /// [`redact_path`](Self::redact_path) of a request's path, knowing the route template it
    /// matched (`/reset/{token}`, axum's `MatchedPath`): a segment whose placeholder a
    /// sensitive key names is replaced whole.
    ///
    /// ```
    /// use tower_audit::sanitize::Redactor;
    ///
    /// let redactor = Redactor::default();
    /// assert_eq!(
    ///     redactor.redact_path_in_route("/reset/8f14e45fceea167a5a3", Some("/reset/{token}")),
    ///     "/reset/[REDACTED]"
    /// );
    /// assert_eq!(
    ///     redactor.redact_path_in_route("/users/42", Some("/users/{id}")),
    ///     "/users/42"
    /// );
    /// ```
    pub fn redact_path_in_route(&self, path: &str, route: Option<&str>) -> String {
        self.guarded(
            "path",
            || {
                let by_route =
                    route.and_then(|route| path::redact_route_params(&self.rules, path, route));
                path::redact_path(&self.rules, by_route.as_deref().unwrap_or(path))
            },
            |replacement| format!("/{replacement}"),
        )
    }

    /// The headers named in `names` that are present, as a JSON object string, or `None` when
    /// none is present.
    ///
    /// A repeated header becomes a JSON array of its values. Values are redacted when the
    /// header is sensitive (see [`RedactorBuilder`]), when the value is marked with
    /// [`HeaderValue::is_sensitive`](http::HeaderValue::is_sensitive), or when the header name
    /// is a sensitive key; other values go through the value patterns. Non-UTF-8 values are
    /// stored lossily.
    pub fn redact_headers(&self, headers: &HeaderMap, names: &[HeaderName]) -> Option<String> {
        self.guarded(
            "headers",
            || headers::redact_headers(&self.rules, headers, names),
            |_| Some(self.rules.replacement_json.to_string()),
        )
    }

    /// Whether `name`'s values are credentials by these rules (as
    /// [`redact_headers`](Self::redact_headers) decides).
    pub(crate) fn is_sensitive_header(&self, name: &HeaderName) -> bool {
        headers::is_sensitive_header(&self.rules, name, &mut String::new())
    }

    /// The most bytes a compressed body (or all the compressed messages of a gRPC request) is
    /// inflated to.
    pub(crate) fn max_decoded_bytes(&self) -> usize {
        self.rules.max_decoded_bytes
    }

    /// Describes a body that could not be read, saying why: `[binary application/grpc,
    /// 40 bytes: message 1 is zstd-compressed, not decoded]`. A route with its own body function
    /// is left to it, as in [`redact_body`](Self::redact_body).
    pub(crate) fn describe_unread_body(&self, body: &BodyInput<'_>, why: &str) -> Option<String> {
        self.guarded(
            "body",
            || body::describe_unread(&self.rules, body, why),
            |replacement| Some(format!("{replacement}{FAILED}")),
        )
    }

    /// Runs one of the sanitizer's readings of a value. A panic in it (a bug of the
    /// sanitizer's, or a route's body function that panicked) is caught, logged, and the value
    /// replaced whole by what `whole` makes of the replacement text: one request's value can
    /// then neither unwind into the writer, which would lose the records converted with it, nor
    /// into a request that writes the journal, nor reach the table as it came.
    fn guarded<T>(
        &self,
        what: &'static str,
        read: impl FnOnce() -> T,
        whole: impl FnOnce(&str) -> T,
    ) -> T {
        let read = || {
            #[cfg(test)]
            if PANIC_IN_READINGS.get() {
                panic!("a bug, made by the test");
            }
            read()
        };
        match crate::panics::catch(read) {
            Ok(value) => value,
            Err(caught) => {
                tracing::error!(
                    value = what,
                    at = %caught.at,
                    "tower-audit: the sanitizer failed on a value (a bug); it is stored replaced whole"
                );
                whole(&self.rules.replacement)
            }
        }
    }

    #[cfg(test)]
    pub(super) fn rules(&self) -> &Rules {
        &self.rules
    }
}

/// Configures a [`Redactor`].
///
/// Keys are compared after normalization: lowercase, without `_`, `-`, `.` and whitespace,
/// and after JSON escapes and percent-encoding are decoded, so `Pass-Word`, `pass_word`,
/// `"pass\u0077ord"`, `pass%77ord` and the fullwidth `ｐａｓｓｗｏｒｄ` are all `password`. The rules below apply to the keys
/// and suffixes you add too; key regexes see the whole normalized key.
///
/// | Setting | Default |
/// |---|---|
/// | [`replacement`](Self::replacement) | `[REDACTED]` |
/// | sensitive keys ([`add_key`](Self::add_key), [`remove_key`](Self::remove_key)) | `password`, `passwd`, `pwd`, `passphrase`, `passcode`, `secret`, `client_secret`, `secret_key`, `access_key`, `credentials`, `token`, `access_token`, `refresh_token`, `id_token`, `api_key`, `authorization`, `auth`, `cookie`, `set_cookie`, `session`, `session_id`, `phpsessid`, `private_key`, `credit_card`, `card_number`, `pan`, `cvv`, `cvc`, `pin`, `ssn`, `otp`, `csrf`, `xsrf`, `pass`, `pw`, `credential`, `SecretString`, `SecretBinary`, `secret_key_base`, `totp`, `pin_code`, `code_verifier`, `device_code`, `user_code`, `id_token_hint`, `SAMLResponse`, `SAMLart`, `sig`, `signature`, `connect.sid` (express-session's cookie; a bare `sid` stays) |
/// | sensitive last words | `pass`, `pw`, `pwd` while they are sensitive keys, as a key's last word split at `_`, `-`, `.`, `[`, spaces and camelCase (`smtp_pass`, `dbPass`, `txtPwd`; not `compass`, `bypass`, `pass_count`) |
/// | sensitive key suffixes ([`add_key_suffix`](Self::add_key_suffix)) | `password`, `passwd`, `secret`, `secret_key`, `secret_access_key`, `token`, `api_key`, `private_key`, `session_id`, `authorization`; keys named for what a key unlocks: `access_key`, `encryption_key`, `decryption_key`, `signing_key`, `master_key`, `client_key`, `auth_key`, `license_key`, `app_key`, `account_key`, `subscription_key`, `stripe_key`, `hmac_key` (not every `*key`: `sort_key`, `cache_key`, `idempotency_key` stay); one-time codes: `otp_code`, `mfa_code`, `two_factor_code`, `verification_code`, `security_code`, `backup_code`, `recovery_code`, `auth_code`; `assertion`, `signature`; a security question's answer (`security_answer`, `security_question_answer`, `secret_answer`); `iban`; the word for password in German, Dutch, Spanish, Portuguese, French, Chinese, Japanese and Russian (`passwort`, `kennwort`, `wachtwoord`, `contraseña`, `senha`, `mot_de_passe`, `密码`, `パスワード`, `пароль`) (so `new_password`, `github_token`, `X-Auth-Token`, `aws_secret_access_key`, `jsessionid`, `Proxy-Authorization`) |
/// | second copies | a sensitive key or suffix followed by digits or by `confirmation`, `confirm`, `repeat`, `again`, `new`, `old`, `current`, `hash`, `hashed`, `digest` or `value` (`password2`, `new_password1`, `password_confirmation`, `cvv2`, `password_new`, `passwordHash`, `api_key_value`) |
/// | keys written as paths | sensitive when any key on the path is (`user[password]`, `card[cvc]`, `user.pin`), as the same value would be in JSON |
/// | key regexes ([`add_key_regex`](Self::add_key_regex)) | none |
/// | value patterns | `Bearer <credential>`, `Basic <credential>`, `Token <credential>` in any case, the credential to the end of its whitespace-free run when it has 4 characters or more and a digit, or 8 or more after `Bearer` or a `Basic` or `Token` not all in small letters (4 with a capital after a small letter), or after a small-letter `basic` or `token` 8 or more with two such capitals; JWTs (`eyJ…` and two to four more base64url segments, padded or not; a header with whitespace after its brace, `eyA…`, `ewo…`, `ew0…`, `ewk…`, of 16 characters or more); 13–19 digit card numbers, spaces or dashes allowed, Luhn-checked, not starting with 1 unless 15 digits long (a UATP card; Unix times in ms, µs and ns start with 1), not inside a UUID or a token of hex digits with letters among them (a digest); PEM private key blocks (to the end of the text when the END line is missing); AWS access key ids (`AKIA`/`ASIA` + 16); the password of a URL's userinfo (`postgres://app:…@db`) |
/// | [`card_numbers`](Self::card_numbers) | on |
/// | user value patterns ([`add_value_pattern`](Self::add_value_pattern)) | none |
/// | sensitive headers ([`sensitive_header`](Self::sensitive_header)) | `authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`, `ocp-apim-subscription-key`, `x-functions-key`, `x-goog-api-key`, `authentication`, `x-authentication`, plus any value marked sensitive and any header whose name is a sensitive key |
/// | per-route body functions ([`route_body_fn`](Self::route_body_fn)) | none |
/// | [`max_decoded_bytes`](Self::max_decoded_bytes) | 64 KiB |
#[derive(Debug, Clone)]
pub struct RedactorBuilder {
    replacement: String,
    keys: super::keys::KeySet,
    suffixes: Vec<Box<str>>,
    key_regexes: Vec<Regex>,
    value_patterns: Vec<(Regex, Box<str>)>,
    sensitive_headers: Vec<HeaderName>,
    routes: foldhash::HashMap<Box<str>, RouteBodyFn>,
    max_decoded_bytes: usize,
    card_numbers: bool,
}

impl Default for RedactorBuilder {
    fn default() -> Self {
        Self {
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            keys: DEFAULT_KEYS.iter().map(|k| Box::from(*k)).collect(),
            suffixes: DEFAULT_KEY_SUFFIXES.iter().map(|k| Box::from(*k)).collect(),
            key_regexes: Vec::new(),
            value_patterns: Vec::new(),
            sensitive_headers: DEFAULT_SENSITIVE_HEADERS.to_vec(),
            routes: foldhash::HashMap::default(),
            max_decoded_bytes: DEFAULT_MAX_DECODED_BYTES,
            card_numbers: true,
        }
    }
}

fn normalized(key: &str) -> Box<str> {
    let mut buf = String::new();
    normalize_key(key, &mut buf);
    buf.into_boxed_str()
}

impl RedactorBuilder {
    /// The text stored in place of a redacted value (a JSON string inside JSON bodies).
    #[must_use]
    pub fn replacement(mut self, text: impl Into<String>) -> Self {
        self.replacement = text.into();
        self
    }

    /// Treats `key` (in any spelling) as sensitive.
    #[must_use]
    pub fn add_key(mut self, key: impl AsRef<str>) -> Self {
        self.keys.insert(normalized(key.as_ref()));
        self
    }

    /// Stops treating `key` as sensitive, both as an exact key and as a suffix.
    ///
    /// `remove_key("token")` makes `token` and `github_token` ordinary keys, while
    /// `access_token` stays sensitive as a key of its own.
    #[must_use]
    pub fn remove_key(mut self, key: impl AsRef<str>) -> Self {
        let key = normalized(key.as_ref());
        self.keys.remove(&key);
        self.suffixes.retain(|s| *s != key);
        self
    }

    /// Treats every key that ends in `suffix` (in any spelling) as sensitive.
    #[must_use]
    pub fn add_key_suffix(mut self, suffix: impl AsRef<str>) -> Self {
        let suffix = normalized(suffix.as_ref());
        if !suffix.is_empty() && !self.suffixes.contains(&suffix) {
            self.suffixes.push(suffix);
        }
        self
    }

    /// Treats every key matching `pattern` as sensitive.
    ///
    /// The pattern is matched against the normalized key (lowercase, no separators), e.g.
    /// `^x.*id$` or `^(taxid|bic)$`.
    pub fn add_key_regex(mut self, pattern: &str) -> Result<Self, SanitizeError> {
        let re = Regex::new(pattern).map_err(|source| SanitizeError::InvalidKeyPattern {
            pattern: pattern.to_owned(),
            source,
        })?;
        self.key_regexes.push(re);
        Ok(self)
    }

    /// Replaces every match of `pattern` in string values, form values, text bodies, query
    /// values and header values with `replacement` (taken literally, `$` included).
    ///
    /// User patterns run after the builtin ones, in the order added, on every string, so keep
    /// them anchored on something distinctive.
    pub fn add_value_pattern(
        mut self,
        pattern: &str,
        replacement: impl Into<String>,
    ) -> Result<Self, SanitizeError> {
        let re = Regex::new(pattern).map_err(|source| SanitizeError::InvalidValuePattern {
            pattern: pattern.to_owned(),
            source,
        })?;
        self.value_patterns
            .push((re, replacement.into().into_boxed_str()));
        Ok(self)
    }

    /// Whether numbers shaped like payment cards (13 to 19 digits that pass the Luhn check) are
    /// redacted wherever they appear, as JSON numbers and in text; on by default.
    ///
    /// One number in ten passes the Luhn check by chance, so with it on, about one in ten of
    /// a body's other numbers of that length (order numbers, barcodes; not those starting with
    /// 1, see the table above) is stored as the replacement too. Turn it off
    /// only for services that never receive a card number outside the sensitive keys
    /// (`card_number`, `credit_card`, `pan`, …), whose values stay redacted by key.
    #[must_use]
    pub fn card_numbers(mut self, redact: bool) -> Self {
        self.card_numbers = redact;
        self
    }

    /// Always redacts the value of header `name`.
    #[must_use]
    pub fn sensitive_header(mut self, name: HeaderName) -> Self {
        if !self.sensitive_headers.contains(&name) {
            self.sensitive_headers.push(name);
        }
        self
    }

    /// Sanitizes bodies of requests whose [`BodyInput::route`] is exactly `route` with `f`
    /// instead of the default handling.
    ///
    /// `f` receives the raw, possibly truncated and encoded body and is trusted to redact it.
    /// Should it panic, the body is stored as the replacement with a marker (see [`Redactor`]).
    #[must_use]
    pub fn route_body_fn<F>(mut self, route: impl Into<String>, f: F) -> Self
    where
        F: Fn(&BodyInput<'_>) -> Option<String> + Send + Sync + 'static,
    {
        let custom = RouteBodyFn {
            f: Arc::new(f),
            type_name: std::any::type_name::<F>(),
        };
        self.routes.insert(route.into().into_boxed_str(), custom);
        self
    }

    /// The most bytes a `Content-Encoding` (gzip, deflate) body is decoded to; the rest is
    /// treated as truncated. The layer's writer decodes to no more than its `max_body_bytes`
    /// either, and describes a compressed body once its batch's bodies have grown by
    /// `queue_body_bytes` as they were decoded. With `grpc-reflect`, the most bytes the compressed messages of a
    /// gRPC request inflate to, all together; a message past it is described, not decoded.
    #[must_use]
    pub fn max_decoded_bytes(mut self, n: usize) -> Self {
        self.max_decoded_bytes = n;
        self
    }

    /// Builds the [`Redactor`].
    pub fn build(self) -> Redactor {
        let mut replacement_json = String::with_capacity(self.replacement.len() + 2);
        json::push_json_string(&mut replacement_json, &self.replacement);
        let rules = Rules {
            keys: KeyRules::new(self.keys, self.suffixes, self.key_regexes),
            values: ValueRules::new(&self.replacement, self.value_patterns)
                .with_cards(self.card_numbers),
            replacement: self.replacement.into_boxed_str(),
            replacement_json: replacement_json.into_boxed_str(),
            sensitive_headers: self.sensitive_headers,
            routes: self.routes,
            max_decoded_bytes: self.max_decoded_bytes,
        };
        Redactor {
            rules: Arc::new(rules),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading that panics (here a route's body function) leaves the value replaced whole,
    /// never as it came, and no panic to the caller.
    #[test]
    fn a_panic_in_a_reading_replaces_the_value_whole() {
        let redactor = Redactor::builder()
            .replacement("<gone>")
            .route_body_fn("/boom", |body: &BodyInput<'_>| {
                panic!("quoting {}", String::from_utf8_lossy(body.bytes))
            })
            .build();
        let body = BodyInput {
            route: Some("/boom"),
            ..BodyInput::new(Some("application/json"), b"{\"password\":\"x\"}")
        };
        let failed = Some("<gone> …[the sanitizer failed on this body]".to_owned());
        let (lines, logs) = crate::test_logs::capture();
        assert_eq!(redactor.redact_body(&body), failed);
        drop(logs);
        // The log says where it panicked, not what the panic said.
        let logged = lines.text();
        assert!(logged.contains("at=src/sanitize/redactor.rs:"), "{logged}");
        assert!(!logged.contains("password"), "{logged}");
        assert_eq!(redactor.describe_unread_body(&body, "why"), failed);
        // Each kind of value's replacement, as each method makes it.
        PANIC_IN_READINGS.set(true);
        let plain = BodyInput::new(Some("application/json"), b"{\"a\":1}");
        assert_eq!(redactor.redact_body(&plain), failed);
        assert_eq!(redactor.describe_unread_body(&plain, "why"), failed);
        assert_eq!(redactor.redact_query("a=1"), "<gone>");
        assert_eq!(redactor.redact_cut_query("a=1"), "<gone>");
        assert_eq!(redactor.redact_text("a"), "<gone>");
        assert_eq!(redactor.redact_error("a"), "<gone>");
        assert_eq!(redactor.redact_path("/a"), "/<gone>");
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT, "*/*".parse().unwrap());
        assert_eq!(
            redactor.redact_headers(&headers, &[http::header::ACCEPT]),
            Some("\"<gone>\"".to_owned())
        );
        PANIC_IN_READINGS.set(false);
        assert_eq!(redactor.redact_path("/a"), "/a");
        // Other routes are read as ever.
        assert_eq!(
            redactor.redact_body(&BodyInput::new(
                Some("application/json"),
                b"{\"password\":\"x\"}"
            )),
            Some("{\"password\":\"<gone>\"}".to_owned())
        );
    }

    fn json(redactor: &Redactor, body: &str) -> String {
        redactor
            .redact_body(&BodyInput::new(Some("application/json"), body.as_bytes()))
            .unwrap()
    }

    /// With card numbers off, long numbers pass in text, JSON numbers, forms and queries; a
    /// sensitive key's value is still redacted, and the other value rules still run.
    #[test]
    fn card_numbers_can_be_left_to_the_keys() {
        let body = r#"{"order":4111111111111111,"note":"ref 4111 1111 1111 1111","card_number":"4111111111111111","auth":"x","t":"Bearer abcdefghijkl"}"#;
        let on = Redactor::default();
        assert_eq!(
            json(&on, body),
            r#"{"order":"[REDACTED]","note":"ref [REDACTED]","card_number":"[REDACTED]","auth":"[REDACTED]","t":"Bearer [REDACTED]"}"#
        );
        let off = Redactor::builder().card_numbers(false).build();
        assert_eq!(
            json(&off, body),
            r#"{"order":4111111111111111,"note":"ref 4111 1111 1111 1111","card_number":"[REDACTED]","auth":"[REDACTED]","t":"Bearer [REDACTED]"}"#
        );
        assert_eq!(
            off.redact_query("order=4111111111111111&pan=4111111111111111"),
            "order=4111111111111111&pan=[REDACTED]"
        );
        assert_eq!(
            on.redact_query("order=4111111111111111"),
            "order=[REDACTED]"
        );
        assert_eq!(
            off.redact_text("ref 4111-1111-1111-1111"),
            "ref 4111-1111-1111-1111"
        );
    }

    #[test]
    fn query_strings() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_query("access_token=abc.def&page=2"),
            "access_token=[REDACTED]&page=2"
        );
        assert_eq!(
            r.redact_query("?q=foo&Api-Key=bar"),
            "q=foo&Api-Key=[REDACTED]"
        );
        assert_eq!(r.redact_query("q=4111111111111111"), "q=[REDACTED]");
        assert_eq!(r.redact_query(""), "");
    }

    /// Error texts get the text-body rules: a gRPC status built from a `Debug` print, a
    /// `key=value` log line, an upstream JSON error. `redact_text` keeps to the value patterns.
    #[test]
    fn error_texts_lose_the_values_of_sensitive_keys() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_error(
                r#"status: InvalidArgument, message: "bad LoginRequest { user: \"ann\", password: \"hunter2\" }""#
            ),
            r#"status: InvalidArgument, message: "bad LoginRequest { user: \"ann\", password: [REDACTED] }""#
        );
        assert_eq!(
            r.redact_error(r#"LoginRequest { user: "ann", password: "hunter2", pin: 1234 }"#),
            r#"LoginRequest { user: "ann", password: [REDACTED], pin: [REDACTED] }"#
        );
        assert_eq!(
            r.redact_error("connect failed: url=db?user=app&password=hunter2"),
            "connect failed: url=db?user=app&password=[REDACTED]"
        );
        assert_eq!(
            r.redact_error(r#"{"error":"denied","token":"abc"}"#),
            r#"{"error":"denied","token":"[REDACTED]"}"#
        );
        // The doc examples of `redact_error` and `redact_path`.
        assert_eq!(
            r.redact_error(r#"bad request: LoginRequest { user: "ann", password: "hunter2" }"#),
            r#"bad request: LoginRequest { user: "ann", password: [REDACTED] }"#
        );
        assert_eq!(
            r.redact_path("/shop;jsessionid=0F3A9B/token/refresh"),
            "/shop;jsessionid=[REDACTED]/token/refresh"
        );
        assert_eq!(r.redact_error("timed out after 30s"), "timed out after 30s");
        assert_eq!(
            r.redact_text("password=hunter2 AKIAIOSFODNN7EXAMPLE"),
            "password=hunter2 [REDACTED]"
        );
    }

    #[test]
    fn add_and_remove_keys() {
        let r = Redactor::builder()
            .add_key("TAX_ID")
            .remove_key("token")
            .remove_key("pin")
            .build();
        assert_eq!(
            json(
                &r,
                r#"{"tax_id":"DE89","token":"t","github_token":"g","access_token":"a","pin":1}"#
            ),
            r#"{"tax_id":"[REDACTED]","token":"t","github_token":"g","access_token":"[REDACTED]","pin":1}"#
        );
        let r = Redactor::builder().add_key_suffix("_tax_id").build();
        assert_eq!(
            json(&r, r#"{"payout_tax_id":"DE89"}"#),
            r#"{"payout_tax_id":"[REDACTED]"}"#
        );
        // Suffixes shorter than the three bytes the others are grouped by are compared with
        // every key.
        let r = Redactor::builder()
            .add_key_suffix("_no")
            .add_key_suffix("q")
            .build();
        assert_eq!(
            json(
                &r,
                r#"{"account_no":"1","AccountNo":"2","faq":"3","number":"4","n":"5"}"#
            ),
            r#"{"account_no":"[REDACTED]","AccountNo":"[REDACTED]","faq":"[REDACTED]","number":"4","n":"5"}"#
        );
    }

    #[test]
    fn key_regexes_match_normalized_keys() {
        let r = Redactor::builder()
            .add_key_regex("^x.*mac$")
            .unwrap()
            .build();
        assert_eq!(
            json(&r, r#"{"X-Body-Mac":"abc","mac":"d"}"#),
            r#"{"X-Body-Mac":"[REDACTED]","mac":"d"}"#
        );
        assert_eq!(r.redact_query("x_req_mac=1"), "x_req_mac=[REDACTED]");
    }

    #[test]
    fn value_patterns_and_replacement() {
        let r = Redactor::builder()
            .replacement("<\"gone\">")
            .add_value_pattern(r"cust-\d+", "$CUST")
            .unwrap()
            .build();
        assert_eq!(
            json(&r, r#"{"secret":"x","note":"cust-42"}"#),
            r#"{"secret":"<\"gone\">","note":"$CUST"}"#
        );
        assert_eq!(
            r.redact_text("error for cust-42, key AKIAIOSFODNN7EXAMPLE"),
            "error for $CUST, key <\"gone\">"
        );
    }

    #[test]
    fn bad_regexes_are_errors() {
        let err = Redactor::builder().add_key_regex("(").unwrap_err();
        assert!(matches!(err, SanitizeError::InvalidKeyPattern { .. }));
        assert!(std::error::Error::source(&err).is_some());
        let err = Redactor::builder().add_value_pattern("[", "x").unwrap_err();
        assert_eq!(err.to_string(), "invalid value pattern `[`");
    }

    #[test]
    fn debug_names_the_route_function() {
        fn custom(_: &BodyInput<'_>) -> Option<String> {
            None
        }
        let r = Redactor::builder().route_body_fn("/a", custom).build();
        assert!(format!("{r:?}").contains("custom"), "{r:?}");
    }
}
