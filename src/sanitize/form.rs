//! `application/x-www-form-urlencoded` bodies and query strings.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::embedded::{document_at, redact_documents};
use super::json::redact_json_document;
use super::keys::{KeyRules, OAUTH_REQUEST, OAUTH_STATE, oauth_mark};
use super::redactor::Rules;
use super::text::{redact_text_body, trim_cut_tail};

/// How many times a key or value is percent-decoded at most. A URL is encoded once more each
/// time it is put in another's query (a `redirect` whose `next` holds a callback), and some
/// clients encode what they were given encoded; past three levels a value stays as it came,
/// so that decoding costs at most three passes over it.
const DECODE_LEVELS: usize = 3;

/// Redacts an `application/x-www-form-urlencoded` body into `out`: as JSON when it is a JSON
/// document, or the start of one when `cut`, else as `k=v&k=v` pairs (see [`redact_pairs`]).
///
/// jQuery's `$.ajax({data: JSON.stringify(x)})` without a `contentType` sends JSON typed as a
/// form; read as pairs, the document is one key without `=`, stored as it came. A form field
/// name cannot start with `{` or `[` and be a whole document too (`[0]=a` stops being JSON at
/// its `=`), so the one attempt costs a form only when it starts so, and a look at its first
/// byte otherwise.
pub(super) fn redact_form_body(rules: &Rules, input: &str, cut: bool, out: &mut String) {
    let looks_like_json = matches!(input.trim_start().as_bytes().first(), Some(b'{' | b'['));
    if looks_like_json && redact_json_document(rules, input, cut, out) {
        return;
    }
    redact_pairs(rules, input, cut, out);
}

/// Redacts `k=v&k=v` pairs into `out`.
///
/// Keys are percent-decoded before matching (`pass%77ord` is `password`), again while they
/// hold escapes, up to [`DECODE_LEVELS`] times; values of sensitive keys are replaced and
/// other values go through the value patterns, decoded, and when they hold a `=` (a URL with
/// its own query), a JSON document or a command line's option through the text rules for
/// pairs (a document's value named by a sibling member as JSON), decoded again
/// while they hold escapes, up to the same bound. When `cut` is true the last pair may be cut
/// short, so its value loses its last word and a last key without `=` is dropped.
///
/// Two keys too generic for the key rules are read by their context: `code` is redacted in
/// an OAuth callback or token request (see [`is_oauth_request`]), `key` when its value looks
/// like an API key (Google's `key=AIza…`, see [`looks_like_key`]).
pub(super) fn redact_pairs(rules: &Rules, input: &str, cut: bool, out: &mut String) {
    let mut keybuf = String::new();
    // Whether `input` is an OAuth request, read once, at its first `code`.
    let mut oauth = None;
    // A GraphQL request's secret variables, read at its `variables` pair.
    let mut graphql: Option<Vec<String>> = None;
    let mut pairs = input.split('&').peekable();
    let mut first = true;
    while let Some(pair) = pairs.next() {
        let last_cut = cut && pairs.peek().is_none();
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        if last_cut && value.is_none() {
            break;
        }
        if !first {
            out.push('&');
        }
        first = false;
        let decoded_key = percent_decode(key);
        push_redacted(out, rules, key, &decoded_key);
        let Some(value) = value else { continue };
        out.push('=');
        if percent_decode_levels(key).any(|key| rules.keys.is_sensitive(&key, &mut keybuf))
            || decoded_key.eq_ignore_ascii_case("code")
                && *oauth.get_or_insert_with(|| is_oauth_request(input))
            || decoded_key.eq_ignore_ascii_case("key") && looks_like_key(&percent_decode(value))
        {
            out.push_str(&rules.replacement);
        } else if decoded_key == "variables"
            && let secret =
                graphql.get_or_insert_with(|| graphql_secret_variables(rules, input, &mut keybuf))
            && !secret.is_empty()
        {
            match graphql_variables_redacted(rules, value, secret) {
                Some(variables) => {
                    let redacted = redact_value(rules, &variables, false);
                    push_encoded(out, redacted.as_deref().unwrap_or(&variables));
                }
                // Not a JSON object: it cannot be told which of it the query names.
                None => out.push_str(&rules.replacement),
            }
        } else {
            match redact_value(rules, &percent_decode(value), last_cut) {
                Some(redacted) if last_cut => push_encoded(out, trim_cut_tail(&redacted)),
                None if last_cut => push_encoded(out, trim_cut_tail(&percent_decode(value))),
                Some(redacted) => push_encoded(out, &redacted),
                None => out.push_str(value),
            }
        }
    }
}

/// A GraphQL request sent as a query or a form (GraphQL over HTTP's GET, `query=…&variables=…`):
/// the variables its `query` passes to sensitive arguments (`login(password: $p)`), which its
/// `variables` document holds as plain members (`{"p":…}`). Empty for anything else: read only
/// at a `variables` pair.
fn graphql_secret_variables(rules: &Rules, input: &str, keybuf: &mut String) -> Vec<String> {
    let mut query = None;
    let mut variables = false;
    for pair in input.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        match &*percent_decode(key) {
            "query" => query = Some(value),
            "variables" => variables = true,
            _ => {}
        }
    }
    match (query, variables) {
        (Some(query), true) => {
            let query = percent_decode_levels(query).last().unwrap_or_default();
            super::json::graphql_secret_variables(rules, &query, keybuf)
        }
        _ => Vec::new(),
    }
}

/// A GraphQL request's `variables` value (raw, as in the query) with the members `secret`
/// names replaced, compact; `None` when it is not a JSON object (cut, or malformed).
fn graphql_variables_redacted(rules: &Rules, raw: &str, secret: &[String]) -> Option<String> {
    let decoded = percent_decode_levels(raw).last().unwrap_or_default();
    let serde_json::Value::Object(mut variables) = serde_json::from_str(&decoded).ok()? else {
        return None;
    };
    for name in secret {
        if let Some(value) = variables.get_mut(name.as_str()) {
            *value = serde_json::Value::String(rules.replacement.to_string());
        }
    }
    serde_json::to_string(&variables).ok()
}

/// Whether one of the pairs of `input` has a key, percent-decoded once, that marks it as an
/// OAuth authorization callback (`state`, `redirect_uri`) or token request (`grant_type`,
/// `code_verifier`), whose `code` is a one-time credential (see [`oauth_mark`]); `code`
/// alone names countries, statuses and promotions.
fn is_oauth_request(input: &str) -> bool {
    input.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        oauth_mark(&percent_decode(key)) & (OAUTH_REQUEST | OAUTH_STATE) != 0
    })
}

/// How far around a `code=` the URL it is in is looked for: a URL is shorter, and the look
/// stays linear over a text of many.
const LONGEST_URL: usize = 2048;

/// The values of the `code` parameters of OAuth callback or token request URLs written in
/// text (a log line, an error, a JSON string's `"redirect":"https://app/cb?code=…&state=…"`):
/// a `code=` after a `?`, `#`, `&` or `&amp;` of a URL whose query and fragment
/// [`is_oauth_request`] reads as such a request (`state`, `redirect_uri`, …), its value to the
/// next `&` or `#` or the URL's end (a blank, a quote, `<`, `>` or a backquote). A query read as
/// a query has its `code` read by [`redact_pairs`]; this reads the URLs text holds. Looked for
/// only in a text that holds `code=`, a substring search.
pub(super) fn oauth_codes_in_urls(text: &str) -> Vec<(usize, usize)> {
    static CODE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("code="));
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let is_url_end =
        |b: &u8| b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`');
    for at in CODE.find_iter(bytes) {
        let before = &bytes[at.saturating_sub(5)..at];
        if !(matches!(before.last(), Some(b'?' | b'#' | b'&')) || before == b"&amp;")
            || spans.last().is_some_and(|&(_, end)| at < end)
        {
            continue;
        }
        let window = at.saturating_sub(LONGEST_URL);
        let url_start = bytes[window..at]
            .iter()
            .rposition(is_url_end)
            .map_or(window, |i| window + i + 1);
        let limit = bytes.len().min(at + LONGEST_URL);
        let url_end = bytes[at..limit]
            .iter()
            .position(is_url_end)
            .map_or(limit, |i| at + i);
        let Some(query) = bytes[url_start..at]
            .iter()
            .position(|b| matches!(b, b'?' | b'#'))
        else {
            continue;
        };
        let query = text[url_start + query + 1..url_end]
            .replace("&amp;", "&")
            .replace('#', "&");
        if !is_oauth_request(&query) {
            continue;
        }
        let value = at + "code=".len();
        let value_end = bytes[value..url_end]
            .iter()
            .position(|b| matches!(b, b'&' | b'#'))
            .map_or(url_end, |i| value + i);
        if value_end > value {
            spans.push((value, value_end));
        }
    }
    spans
}

/// Whether a `key` parameter's value looks like an API key rather than a name, a path or a
/// date: 20 characters or more of letters, digits, `-` and `_`, with a digit, a capital and
/// a small letter among them (Google's `AIza…`, 39 characters).
fn looks_like_key(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 20
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().any(u8::is_ascii_uppercase)
        && bytes.iter().any(u8::is_ascii_lowercase)
}

/// The redaction of a value percent-decoded once, `None` when nothing in it is redacted;
/// `cut` when the value is cut short.
///
/// A value that holds pairs of its own (a URL with its query, `redirect_uri=…%3Ftoken%3D…`), a
/// JSON document (`filter={"name":"DB_PASSWORD","value":…}`, with text around it or not) or a
/// command line goes as a text does, its documents' values named by a sibling member redacted
/// as JSON first; any other through the value patterns. While it holds escapes it is decoded
/// again and read again, the values redacted at one level staying redacted at the next, and
/// the redaction is the value at the deepest level that redacted something: decoded further,
/// a literal `%41` beside a secret would come back as `A`.
fn redact_value(rules: &Rules, decoded: &str, cut: bool) -> Option<String> {
    let mut text = Cow::Borrowed(decoded);
    let mut deepest = None;
    for level in 1..=DECODE_LEVELS {
        if cut {
            // An escape cut short is no character: a document ending in one reads as cut.
            text = match text {
                Cow::Borrowed(text) => Cow::Borrowed(trim_cut_escape(text)),
                Cow::Owned(text) => Cow::Owned(trim_cut_escape(&text).to_owned()),
            };
        }
        // A document redacted at the level before reads the same again.
        let documents = redact_documents(rules, &text, cut, 0).filter(|json| *json != *text);
        let read = documents.as_deref().unwrap_or(&text);
        let redacted = if holds_pairs(read, &rules.keys) {
            let mut redacted = String::new();
            redact_text_body(
                read,
                false,
                false,
                &rules.keys,
                &rules.values,
                &rules.replacement,
                &mut redacted,
            );
            (redacted != *read).then_some(redacted)
        } else {
            match rules.values.redact(read) {
                Cow::Borrowed(_) => None,
                Cow::Owned(redacted) => Some(redacted),
            }
        };
        let redacted = redacted.or(documents);
        if let Some(redacted) = redacted {
            deepest = Some(redacted.clone());
            text = Cow::Owned(redacted);
        }
        if level == DECODE_LEVELS || !has_escape(&text) {
            break;
        }
        text = Cow::Owned(percent_decode(&text).into_owned());
    }
    deepest
}

/// Whether a decoded value may hold what the text rules read and the value patterns do not:
/// pairs (`key=value`, `key: value`), a JSON document's members, a command line's options (`--password hunter2`,
/// MySQL's `-phunter2`), an SQL statement's password (a user's, a sensitive column's) or a
/// 2-tuple whose first item is quoted (`[('password', '…')]`).
fn holds_pairs(text: &str, keys: &KeyRules) -> bool {
    text.contains('=')
        || text.contains(':')
        || super::text::may_hold_long_option(text)
        || document_at(text.as_bytes(), 0).is_some()
        || super::mysql::may_hold_password(text)
        || text.bytes().any(super::sql::may_open_a_password)
            && super::sql::holds_password(text, keys, &mut String::new())
        || super::sql::may_hold_unquoted_password(text.as_bytes())
            && super::sql::holds_unquoted_password(text.as_bytes())
        || super::printed::may_hold_a_tuple(text.as_bytes())
}

/// `text` without a `%` or `%X` at its end, what a cut leaves of an escape.
fn trim_cut_escape(text: &str) -> &str {
    let bytes = text.as_bytes();
    match bytes {
        [.., b'%'] => &text[..text.len() - 1],
        [.., b'%', hex] if hex.is_ascii_hexdigit() => &text[..text.len() - 2],
        _ => text,
    }
}

/// Whether `text` holds a `%XX` escape.
pub(super) fn has_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'%', bytes).any(|at| {
        bytes
            .get(at + 1..at + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// `raw` percent-decoded, then again while it holds escapes, each level in turn: at most
/// [`DECODE_LEVELS`] of them, the first one `raw` when it has nothing to decode.
pub(super) fn percent_decode_levels(raw: &str) -> impl Iterator<Item = Cow<'_, str>> {
    let mut next = Some(percent_decode(raw));
    let mut level = 0;
    std::iter::from_fn(move || {
        let current = next.take()?;
        level += 1;
        if level < DECODE_LEVELS && has_escape(&current) {
            next = Some(Cow::Owned(percent_decode(&current).into_owned()));
        }
        Some(current)
    })
}

/// Emits `raw` when the value patterns leave `decoded` alone, else the encoded redaction.
fn push_redacted(out: &mut String, rules: &Rules, raw: &str, decoded: &str) {
    match rules.values.redact(decoded) {
        Cow::Borrowed(_) => out.push_str(raw),
        Cow::Owned(redacted) => push_encoded(out, &redacted),
    }
}

/// Percent-decodes `+` and `%XX`; malformed escapes stay as written, bad UTF-8 is replaced.
pub(super) fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'+', _) => decoded.push(b' '),
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 2;
            }
            _ => decoded.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// Appends `s` with the characters that would change the pair structure percent-encoded.
fn push_encoded(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            ' ' => out.push('+'),
            '%' | '&' | '=' | '+' | '#' => out.push_str(match c {
                '%' => "%25",
                '&' => "%26",
                '=' => "%3D",
                '+' => "%2B",
                _ => "%23",
            }),
            c if c.is_control() => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Redactor;
    use super::*;

    fn run(input: &str, cut: bool) -> String {
        let redactor = Redactor::default();
        let mut out = String::new();
        redact_pairs(redactor.rules(), input, cut, &mut out);
        out
    }

    #[test]
    fn sensitive_keys_any_spelling() {
        assert_eq!(
            run("user=bob&Pass_Word=hunter2", false),
            "user=bob&Pass_Word=[REDACTED]"
        );
        assert_eq!(
            run("pass%77ord=hunter2&x=1", false),
            "pass%77ord=[REDACTED]&x=1"
        );
        assert_eq!(run("api+key=abc", false), "api+key=[REDACTED]");
        assert_eq!(run("q=foo&Api-Key=bar", false), "q=foo&Api-Key=[REDACTED]");
    }

    /// Found by a probe: a GraphQL request sent as a query (GraphQL over HTTP's GET) or a form
    /// kept the value of a variable its query passes to a sensitive argument, which the JSON
    /// rule redacts in a `{"query":…,"variables":…}` body.
    #[test]
    fn graphql_variables_in_a_query_or_a_form() {
        for (sent, secret) in [
            (
                r#"query=query($t:String!){invite(token:$t){id}}&variables={"t":"Invite99xyz"}"#,
                "Invite99xyz",
            ),
            (
                "query=%7Binvite(token%3A%24t)%7Bid%7D%7D&variables=%7B%22t%22%3A%22Invite99xyz%22%7D",
                "Invite99xyz",
            ),
            (
                "query=mutation(%24p%3AString!)%7Blogin(user%3A%22ann%22%2Cpassword%3A%24p)%7Btoken%7D%7D\
                 &variables=%7B%22p%22%3A%22Hunter2Pass%22%2C%22n%22%3A3%7D",
                "Hunter2Pass",
            ),
            // Variables before the query, nested input fields, and variables that are no
            // object (cut, malformed): they go whole.
            (
                r#"variables={"creds":"Hunter2Pass","page":2}&query=mutation($creds:String){login(input:{password:$creds}){ok}}"#,
                "Hunter2Pass",
            ),
            (
                r#"query=mutation($p:String){login(password:$p){ok}}&variables={"p":"Hunter2Pa"#,
                "Hunter2Pa",
            ),
        ] {
            let stored = run(sent, false);
            assert!(!stored.contains(secret), "{sent}: {stored}");
            let decoded = percent_decode_levels(&stored).last().unwrap().into_owned();
            assert!(decoded.contains("variables="), "{sent}: {decoded}");
        }
        // What the query does not pass to a sensitive argument stays, and so does a query
        // without variables, or variables without a query.
        let stored = run(
            r#"query=query($id:ID,$t:String){order(id:$id,token:$t){n}}&variables={"id":"o-17","t":"x9Secret"}"#,
            false,
        );
        assert!(
            stored.contains("o-17") && !stored.contains("x9Secret"),
            "{stored}"
        );
        for sent in [
            r#"variables={"t":"kept"}&page=2"#,
            "query=%7Bme%7Bid%7D%7D&extensions=%7B%7D",
        ] {
            assert_eq!(run(sent, false), sent);
        }
    }

    /// jQuery's `$.ajax({data: JSON.stringify(x)})` without a `contentType` sends JSON typed as
    /// a form. Read as pairs, the whole document was one key without `=` and was stored as it
    /// came; a body that reads as a JSON document, or the start of one when cut, is redacted as
    /// JSON. What only starts like one stays a form.
    #[test]
    fn json_sent_as_a_form_is_redacted_as_json() {
        let r = Redactor::default();
        let body = |ct, bytes: &str, truncated: bool| {
            let input = super::super::BodyInput {
                truncated,
                total_len: bytes.len() as u64 + u64::from(truncated),
                ..super::super::BodyInput::new(Some(ct), bytes.as_bytes())
            };
            r.redact_body(&input).unwrap_or_default()
        };
        let ct = "application/x-www-form-urlencoded; charset=UTF-8";
        for (sent, stored) in [
            (
                r#"{"email":"a@b","password":"hunter2"}"#,
                r#"{"email":"a@b","password":"[REDACTED]"}"#,
            ),
            (
                r#" [{"user":{"name":"ann","api_key":"hunter2"}}]"#,
                r#"[{"user":{"name":"ann","api_key":"[REDACTED]"}}]"#,
            ),
            (
                "{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"}\r\n",
                r#"{"name":"DB_PASSWORD","value":"[REDACTED]"}"#,
            ),
        ] {
            assert_eq!(body(ct, sent, false), stored, "{sent}");
        }
        // Cut by the capture cap inside the document.
        let sent = r#"{"email":"a@b","password":"hunter2","remember":tr"#;
        for at in 1..=sent.len() {
            let out = body(ct, &sent[..at], true);
            assert!(!out.contains("hunt"), "cut at {at}: {out}");
        }
        // Forms that start like a document but are none stay pairs.
        for (sent, stored) in [
            ("[0]=a&password=hunter2", "[0]=a&password=[REDACTED]"),
            ("{x}=1&token=abc", "{x}=1&token=[REDACTED]"),
            ("[1]&pin=1234", "[1]&pin=[REDACTED]"),
        ] {
            assert_eq!(body(ct, sent, false), stored, "{sent}");
        }
        // Nothing to redact: the document is stored as it came, compactly.
        assert_eq!(body(ct, r#"{"page": 2}"#, false), r#"{"page":2}"#);
        // As text, and as a multipart text field, it was read as JSON already.
        let sent = r#"{"email":"a@b","password":"hunter2"}"#;
        assert_eq!(
            body("text/plain", sent, false),
            r#"{"email":"a@b","password":"[REDACTED]"}"#
        );
        let multipart = format!(
            "--b\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{sent}\r\n--b--\r\n"
        );
        let out = body("multipart/form-data; boundary=b", &multipart, false);
        assert!(!out.contains("hunter2") && out.contains("email"), "{out}");
    }

    /// Rails, PHP and Express nest form fields as `user[password]`; the query strings of the
    /// same forms, percent-encoded, too.
    #[test]
    fn nested_keys() {
        assert_eq!(
            run(
                "user[name]=ann&user[password]=hunter2&user[password_confirmation]=hunter2",
                false
            ),
            "user[name]=ann&user[password]=[REDACTED]&user[password_confirmation]=[REDACTED]"
        );
        assert_eq!(
            run("user%5Bpassword%5D=hunter2&page=2", false),
            "user%5Bpassword%5D=[REDACTED]&page=2"
        );
        assert_eq!(
            Redactor::default().redact_query("?card[cvc]=123&card[exp]=12"),
            "card[cvc]=[REDACTED]&card[exp]=12"
        );
    }

    #[test]
    fn values_are_decoded_before_patterns() {
        assert_eq!(
            run("h=Bearer%20abcdefghijkl&n=1", false),
            "h=Bearer+[REDACTED]&n=1"
        );
        assert_eq!(run("card=4111+1111+1111+1111", false), "card=[REDACTED]");
        assert_eq!(
            run("order=1234567812345678", false),
            "order=1234567812345678"
        );
    }

    /// Found by review: a value that is a URL with its own query (a `redirect_uri`, a
    /// callback), percent-encoded or not, kept that query's secrets.
    #[test]
    fn urls_in_values_keep_no_secrets() {
        let r = Redactor::default();
        assert_eq!(
            r.redact_query("redirect=https%3A%2F%2Fx%2Fcb%3Ftoken%3DSECRET%26a%3D1&n=1"),
            "redirect=https://x/cb?token%3D[REDACTED]%26a%3D1&n=1"
        );
        assert_eq!(
            r.redact_query("redirect=https://x/cb?password=SECRET&a=1"),
            "redirect=https://x/cb?password%3D[REDACTED]&a=1"
        );
        // A value with `=` and nothing sensitive stays as written.
        assert_eq!(
            r.redact_query("cursor=YWJj%3D%3D&next=%2Fa%3Fb%3D1"),
            "cursor=YWJj%3D%3D&next=%2Fa%3Fb%3D1"
        );
        // Cut inside such a value: the cut word goes, as in a cut text.
        assert_eq!(run("a=1&next=%2Fa%3Fpin%3D12", true), "a=1&next=");
    }

    /// Found by review: a URL encoded twice (a `redirect` whose own `next` was encoded before
    /// it was put in the query, as chains of redirects do) kept its query's secrets, as did
    /// a key encoded twice. Decoding stops after three levels.
    #[test]
    fn urls_encoded_more_than_once_keep_no_secrets() {
        let r = Redactor::default();
        for (query, stored) in [
            (
                "redirect=https%253A%252F%252Fx%252Fcb%253Ftoken%253DSECRET",
                "redirect=https://x/cb?token%3D[REDACTED]",
            ),
            (
                "next=%2Fcb%3Fpassword%253DSECRET&n=1",
                "next=/cb?password%3D[REDACTED]&n=1",
            ),
            (
                "r=https%25253A%25252F%25252Fx%25253Fpin%25253D1234",
                "r=https://x?pin%3D[REDACTED]",
            ),
            // A redirect inside a redirect, each with its own secret.
            (
                "r=%2Fa%3Ftoken%3DA1%26next%3D%252Fb%253Fpassword%253DB2",
                "r=/a?token%3D[REDACTED]%26next%3D/b?password%3D[REDACTED]",
            ),
            ("pass%2577ord=SECRET&x=1", "pass%2577ord=[REDACTED]&x=1"),
            ("h=Bearer%2520abcdefghijkl&n=1", "h=Bearer+[REDACTED]&n=1"),
        ] {
            assert_eq!(r.redact_query(query), stored, "{query}");
        }
        // Past three levels nothing is decoded: a fourth is a value as it came.
        let deep = "r=%2Fcb%3Fpassword%2525252525253DSECRET";
        assert_eq!(r.redact_query(deep), deep);
        // Cut inside such a value: the cut word goes.
        assert_eq!(run("a=1&next=%2Fa%3Fpin%253D12", true), "a=1&next=");
        // Values encoded twice that hold no secret stay as they came.
        for query in [
            "next=%252Fa%253Fb%253D1&cursor=YWJj%253D%253D",
            "q=100%2525+sure&path=%252Fhome%252Fann",
            "redirect=https%253A%252F%252Fx%252Fcb%253Fpage%253D2%2526sort%253Dname",
        ] {
            assert_eq!(r.redact_query(query), query);
        }
    }

    /// Found by review: a value whose secret is read at the first level was stored decoded
    /// as far as escapes remained, so a literal `%41` in it (`50%2541`) came back as `A`. A
    /// redacted value is stored as decoded as the deepest level that redacted something.
    #[test]
    fn literal_escapes_beside_a_secret_stay() {
        let r = Redactor::default();
        for (query, stored) in [
            (
                "d=card+4111111111111111+at+50%2541",
                "d=card+[REDACTED]+at+50%2541",
            ),
            (
                "next=%2Fcb%3Fpassword%3DSECRET%26q%3D100%2525",
                "next=/cb?password%3D[REDACTED]%26q%3D100%2525",
            ),
        ] {
            assert_eq!(r.redact_query(query), stored, "{query}");
        }
    }

    /// Found by review: a value holding `key: value` with no `=` (a search box's
    /// `password: hunter2`, a pasted `[api_key: x]`) was read by the value patterns only, and
    /// kept its secret. A value with a `:` goes through the pair rules too; search syntax and
    /// times without a secret stay as they came.
    #[test]
    fn colon_pairs_in_values_lose_their_secret() {
        let r = Redactor::default();
        for query in [
            "q=password:+hunter2",
            "q=password%3A%20hunter2&n=1",
            "d=%5Bapi_key:+hunter2%5D",
            "q=note+token:hunter2",
        ] {
            let stored = r.redact_query(query);
            assert!(!stored.contains("hunter2"), "{query}: {stored}");
            assert!(stored.contains("[REDACTED]"), "{query}: {stored}");
        }
        for kept in [
            "q=status:open+author:ann",
            "t=10:00&d=2026-12-06T10:00:00Z",
            "u=https://example.com/x",
        ] {
            assert_eq!(r.redact_query(kept), kept);
        }
        assert_eq!(
            run("a=1&f=password:+hunter2", false),
            "a=1&f=password:+[REDACTED]"
        );
    }

    /// Found by review: a JSON document in a query's or form's value, percent-encoded or
    /// not, with text around it or not, was read only by the pair rules, so a value its
    /// sibling name member names stayed. It is read as JSON at each level of decoding; a
    /// redacted value is stored decoded to the deepest level that redacted something.
    #[test]
    fn json_in_values_is_redacted_as_json() {
        let r = Redactor::default();
        for (query, stored) in [
            (
                "f=%7B%22name%22%3A%22DB_PASSWORD%22%2C%22value%22%3A%22hunter2%22%7D&n=1",
                r#"f={"name":"DB_PASSWORD","value":"[REDACTED]"}&n=1"#,
            ),
            (
                r#"filter={"name":"DB_PASSWORD","value":"hunter2"}"#,
                r#"filter={"name":"DB_PASSWORD","value":"[REDACTED]"}"#,
            ),
            // Encoded twice, with text around it.
            (
                "q=env+%257B%2522value%2522%253A%2522k-1%2522%252C%2522name%2522%253A%2522api_key%2522%257D+set",
                r#"q=env+{"value":"[REDACTED]","name":"api_key"}+set"#,
            ),
            // A literal escape beside the secret stays.
            (
                "f=%7B%22key%22%3A%22pin%22%2C%22value%22%3A%221234%22%2C%22n%22%3A%2250%2541%22%7D",
                r#"f={"key":"pin","value":"[REDACTED]","n":"50%2541"}"#,
            ),
        ] {
            assert_eq!(r.redact_query(query), stored, "{query}");
        }
        // A form body too.
        assert_eq!(
            run(
                "a=1&f=%7B%22name%22%3A%22pin%22%2C%22value%22%3A%221234%22%7D",
                false
            ),
            r#"a=1&f={"name":"pin","value":"[REDACTED]"}"#
        );
        // A document's sensitive key goes by the pair rules, as in a text: a value without
        // a `=` was read by the value patterns only, and kept it.
        assert_eq!(
            r.redact_query("f=%7B%22password%22%3A%22hunter2%22%7D&n=1"),
            r#"f={"password":[REDACTED]}&n=1"#
        );
        // Cut inside the document: the value waiting for its name goes.
        let out = run(r#"a=1&f={"value":+"hunter2",+"na"#, true);
        assert!(!out.contains("hunter2"), "{out}");
        // Documents with nothing to redact stay as they came.
        for query in [
            "f=%7B%22name%22%3A%22PORT%22%2C%22value%22%3A%2280%22%7D",
            r#"filter={"name":"PORT","value":"80"}&q={"a"+b}"#,
        ] {
            assert_eq!(r.redact_query(query), query);
        }
    }

    /// Found by review: a percent-encoded document cut inside an escape (`…%2C%20%`) kept a
    /// value waiting for its name: the escape left undecoded made the document no JSON, not
    /// a cut one. Cut at every byte, encoded once or twice, the value never shows.
    #[test]
    fn json_in_a_value_cut_inside_an_escape() {
        let once = "%7B%22value%22%3A%22hunter2%22%2C%20%22name%22%3A%22api_key%22%7D";
        let twice = once.replace('%', "%25");
        for value in [once, &twice] {
            let query = format!("a=1&f={value}");
            for at in 1..=query.len() {
                let out = run(&query[..at], true);
                assert!(!out.contains("hunt"), "cut at {at}: {out}");
            }
        }
    }

    /// Hostile values stay linear: decoding is bounded to three levels, however many `%25`s
    /// a value holds.
    #[test]
    fn hostile_encodings_stay_linear() {
        for unit in [
            "%25",
            "%2525",
            "%252525253D",
            "%253Dpassword%253D",
            "token%25253D%2526",
            "%",
            "%2",
            // JSON documents, encoded or not: never closed, given up, naming their values.
            "%7B%22a%22%3A",
            r#"{"a":[{"b":1},+x+"#,
            "%257B%2522value%2522%253A1%252C%2522name%2522%253A%2522pin%2522%257D+",
        ] {
            let value = unit.repeat((256 << 10) / unit.len());
            let query = format!("a=password%253Dx&next={value}&pass%2577ord={value}");
            let started = std::time::Instant::now();
            let out = Redactor::default().redact_query(&query);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
            assert!(out.starts_with("a=password%3D[REDACTED]&"), "{unit:?}");
            assert!(out.ends_with("&pass%2577ord=[REDACTED]"), "{unit:?}");
            // Cut short, the last value inside a document and an escape.
            let query = format!("a=password%253Dx&next={value}%7B%22value%22%3A1%2C%2");
            let started = std::time::Instant::now();
            let out = Redactor::default().redact_cut_query(&query);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?} cut: {took:?}");
            assert!(out.starts_with("a=password%3D[REDACTED]&"), "{unit:?}");
        }
    }

    #[test]
    fn odd_shapes_survive() {
        assert_eq!(run("", false), "");
        assert_eq!(run("a&&b=&=c&%zz=%4", false), "a&&b=&=c&%zz=%4");
    }

    #[test]
    fn cut_last_pair() {
        assert_eq!(run("a=1&password=hun", true), "a=1&password=[REDACTED]");
        assert_eq!(run("a=1&password", true), "a=1");
        assert_eq!(run("a=1&note=card+4111+1111", true), "a=1&note=card");
    }
    /// Found by a probe: an OAuth callback's or token request's `code` was stored. `code` alone
    /// names many things (`code=US`, `code=404`, a promotion's code), so it is redacted only
    /// beside what marks such a request: `state`, `redirect_uri`, `grant_type` or
    /// `code_verifier` (or `redirectUri`, `grantType`, `codeVerifier`), in any order.
    #[test]
    fn an_oauth_code_beside_its_request() {
        for (query, stored) in [
            ("code=hunter2&state=xyz", "code=[REDACTED]&state=xyz"),
            ("state=xyz&code=hunter2", "state=xyz&code=[REDACTED]"),
            (
                "grant_type=authorization_code&code=hunter2&redirect_uri=https%3A%2F%2Fx",
                "grant_type=authorization_code&code=[REDACTED]&redirect_uri=https%3A%2F%2Fx",
            ),
            (
                "code_verifier=v&code=hunter2",
                "code_verifier=[REDACTED]&code=[REDACTED]",
            ),
            (
                "Code=hunter2&redirect%5Furi=x",
                "Code=[REDACTED]&redirect%5Furi=x",
            ),
            (
                "grantType=authorization_code&code=hunter2",
                "grantType=authorization_code&code=[REDACTED]",
            ),
            (
                "code=hunter2&redirectUri=x",
                "code=[REDACTED]&redirectUri=x",
            ),
        ] {
            assert_eq!(run(query, false), stored, "{query}");
        }
        for query in [
            "code=US&country=x",
            "code=404",
            "promo=1&code=SAVE10",
            "code=a&stated=1&redirect=x",
        ] {
            assert_eq!(run(query, false), query);
        }
    }

    /// Found by a probe: Google's API key travels as `key=AIza…`. `key` alone names many
    /// things, so its value is redacted only when it looks like a key: 20 characters or more
    /// of letters, digits, `-` and `_`, with a digit, a capital and a small letter.
    #[test]
    fn a_key_parameter_that_looks_like_a_key() {
        assert_eq!(
            run("key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv&q=x", false),
            "key=[REDACTED]&q=x"
        );
        for query in [
            "key=uploads%2Fphoto.jpg",
            "key=user_profile_settings",
            "key=2024-01-01",
            "key=abc",
            "sort=key&key=name",
        ] {
            assert_eq!(run(query, false), query);
        }
    }

    /// Found by a probe on 2026-12-07: an OAuth callback's `code` in a URL written in text or
    /// in a JSON string was stored, as only a query read as one had its `code` read.
    #[test]
    fn an_oauth_code_in_a_url_in_text() {
        let r = Redactor::default();
        for (text, stored) in [
            (
                "redirecting to https://app/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=x now",
                "redirecting to https://app/cb?code=[REDACTED]&state=x now",
            ),
            (
                "GET /cb?state=x&code=SplxlOBeZQQYbYS6WxSbIA HTTP/1.1",
                "GET /cb?state=x&code=[REDACTED] HTTP/1.1",
            ),
            (
                "<a href=\"/cb?code=Splx&amp;state=x\">back</a>",
                "<a href=\"/cb?code=[REDACTED]&amp;state=x\">back</a>",
            ),
            (
                "https://app/cb#code=Splx&state=x",
                "https://app/cb#code=[REDACTED]&state=x",
            ),
        ] {
            assert_eq!(r.redact_error(text), stored, "{text}");
        }
        let json = br#"{"redirect":"https://app/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=x"}"#;
        assert_eq!(
            r.redact_body(&crate::sanitize::BodyInput::new(
                Some("application/json"),
                json
            ))
            .as_deref(),
            Some(r#"{"redirect":"https://app/cb?code=[REDACTED]&state=x"}"#)
        );
    }

    /// A `code` of a URL that is no OAuth request, a key ending in `code`, and `code=` in
    /// prose or in another URL beside an OAuth one stay.
    #[test]
    fn other_codes_in_urls_stay() {
        let r = Redactor::default();
        for text in [
            "see https://shop/checkout?code=SUMMER20&ref=mail",
            "https://maps/x?country_code=US&state=CA",
            "set code=404 state=ok",
            "https://a/?code=US https://b/?state=x",
            r#"{"link":"https://shop/?code=SUMMER20"}"#,
        ] {
            assert_eq!(r.redact_error(text), text, "{text}");
        }
    }
}
