//! Request headers: only the ones asked for, credentials redacted.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::form;
use super::json::push_json_string;
use super::redactor::Rules;

/// Headers whose value is always redacted: the standard ones, and the credential headers of
/// common platforms whose names hold no sensitive key (Azure API Management's subscription key,
/// Azure Functions' key, Google's API key) or a word that is no key elsewhere
/// (`Authentication`, which some APIs take in place of `Authorization`).
pub(super) const DEFAULT_SENSITIVE_HEADERS: [HeaderName; 10] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("ocp-apim-subscription-key"),
    HeaderName::from_static("x-functions-key"),
    HeaderName::from_static("x-goog-api-key"),
    HeaderName::from_static("authentication"),
    HeaderName::from_static("x-authentication"),
];

/// Headers whose value is a URL (or a path with its query): its query and fragment go through
/// the query string's rules, as a `Referer` carries an implicit flow's `#access_token=…` and a
/// reset link's `?password=…`, a `Location` a redirect's `?code=…`, and a proxy's
/// `X-Original-URL` the request's own query (Envoy's `X-Envoy-Original-Path` too).
const URL_HEADERS: [&str; 12] = [
    "referer",
    "location",
    "content-location",
    "origin",
    "refresh",
    "x-original-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-url",
    "x-rewrite-url",
    "x-envoy-original-path",
    "x-request-uri",
];

/// Subprotocols after which the next one is a token: a browser cannot set a WebSocket's
/// headers, so clients send the token as a subprotocol (`Sec-WebSocket-Protocol: access_token,
/// <token>`); in small letters.
const WEBSOCKET_TOKEN_MARKERS: [&str; 8] = [
    "access_token",
    "access-token",
    "token",
    "bearer",
    "authorization",
    "auth",
    "jwt",
    "apikey",
];

/// Kubernetes' subprotocol carrying a bearer token after it.
const K8S_BEARER_PROTOCOL: &str = "base64url.bearer.authorization.k8s.io.";

/// How a header's value is read beyond the value patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Plain,
    /// A URL ([`URL_HEADERS`]).
    Url,
    /// `Sec-WebSocket-Protocol`'s list of subprotocols.
    Subprotocols,
}

impl ValueKind {
    fn of(name: &HeaderName) -> Self {
        if URL_HEADERS.contains(&name.as_str()) {
            Self::Url
        } else if name == http::header::SEC_WEBSOCKET_PROTOCOL {
            Self::Subprotocols
        } else {
            Self::Plain
        }
    }
}

/// The most of one header value stored, in bytes, before the truncation note. Every other text
/// column has a cap; without one a server that raises hyper's header-list limit would store
/// whatever a client sent. 4 KiB holds any value worth auditing (tenant ids, trace context,
/// forwarding chains), is below the 8 KiB that common proxies (nginx, Apache) allow a header
/// line, and far below the user agent's 1 MiB, which only bounds a column holding one value.
pub(crate) const HEADER_VALUE_BYTES: usize = 4 << 10;

/// Whether a header's values are credentials: a sensitive header, or one named with a sensitive
/// key. gRPC binary metadata (`-bin`, base64) holds what its text twin would.
pub(super) fn is_sensitive_header(rules: &Rules, name: &HeaderName, keybuf: &mut String) -> bool {
    let key = name.as_str();
    let key = key.strip_suffix("-bin").unwrap_or(key);
    rules
        .sensitive_headers
        .iter()
        .any(|sensitive| sensitive == name || sensitive.as_str() == key)
        || rules.keys.is_sensitive(key, keybuf)
}

/// See [`Redactor::redact_headers`](super::Redactor::redact_headers).
pub(super) fn redact_headers(
    rules: &Rules,
    headers: &HeaderMap,
    names: &[HeaderName],
) -> Option<String> {
    let mut out = String::new();
    let mut keybuf = String::new();
    for (i, name) in names.iter().enumerate() {
        // A name listed twice is stored once.
        if names[..i].contains(name) {
            continue;
        }
        let mut values = headers.get_all(name).iter().peekable();
        let Some(first) = values.next() else { continue };
        out.push(if out.is_empty() { '{' } else { ',' });
        push_json_string(&mut out, name.as_str());
        out.push(':');
        let name_sensitive = is_sensitive_header(rules, name, &mut keybuf);
        let kind = ValueKind::of(name);
        if values.peek().is_none() {
            push_value(&mut out, rules, name_sensitive, kind, first);
        } else {
            out.push('[');
            push_value(&mut out, rules, name_sensitive, kind, first);
            for value in values {
                out.push(',');
                push_value(&mut out, rules, name_sensitive, kind, value);
            }
            out.push(']');
        }
    }
    if out.is_empty() {
        return None;
    }
    out.push('}');
    Some(out)
}

fn push_value(
    out: &mut String,
    rules: &Rules,
    name_sensitive: bool,
    kind: ValueKind,
    value: &HeaderValue,
) {
    // `is_sensitive` is how tower-http's `SetSensitiveHeadersLayer` marks credentials.
    if name_sensitive || value.is_sensitive() {
        out.push_str(&rules.replacement_json);
        return;
    }
    let text = String::from_utf8_lossy(value.as_bytes());
    // Redacted whole before the cut, so a cut never leaves half a secret unrecognized.
    let mut redacted = match kind {
        ValueKind::Plain => redact_plain_value(rules, &text),
        _ => rules.values.redact(&text),
    };
    let read = match kind {
        ValueKind::Plain => None,
        ValueKind::Url => redact_url(rules, &redacted),
        ValueKind::Subprotocols => redact_subprotocols(rules, &redacted),
    };
    if let Some(read) = read {
        redacted = read.into();
    }
    if redacted.len() <= HEADER_VALUE_BYTES {
        push_json_string(out, &redacted);
        return;
    }
    let note = format!(
        "{} …[truncated, {} bytes total]",
        &redacted[..redacted.floor_char_boundary(HEADER_VALUE_BYTES)],
        value.len()
    );
    push_json_string(out, &note);
}

/// A value of a header outside the lists above, or a text stored as such a value is (a user
/// agent, a handler's resource): its pairs read as a text's when it [`carries_pairs`], else
/// the value patterns.
pub(super) fn redact_plain_value<'a>(rules: &Rules, text: &'a str) -> Cow<'a, str> {
    if carries_pairs(text) {
        redact_pairs_in_value(rules, text).into()
    } else {
        rules.values.redact(text)
    }
}

/// Whether a header's value outside the lists above may carry pairs or a document of its own,
/// which the text rules read (keys, URLs' queries, JSON): a `Forwarded`'s `…;token=…`, a
/// `Link`'s `<…?access_token=…>`, Dropbox's `Dropbox-API-Arg: {"link_password":…}`. Most
/// values (a user agent, an id, a date) hold neither a `=` nor a `{` and get the value
/// patterns alone.
fn carries_pairs(value: &str) -> bool {
    memchr::memchr2(b'=', b'{', value.as_bytes()).is_some()
}

/// A header's value that [`carries_pairs`] read as a text is (a JSON document as JSON), the
/// URLs in its `<…>` (a `Link`'s) as [`URL_HEADERS`]' values are, so that a query's value
/// ends at its URL's `>`.
fn redact_pairs_in_value(rules: &Rules, value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(open) = rest.find('<')
        && let Some(len) = rest[open..].find('>')
    {
        let (before, url) = (&rest[..open], &rest[open + 1..open + len]);
        super::text::redact_text_or_json(rules, before, false, false, &mut out);
        let url = rules.values.redact(url);
        out.push('<');
        out.push_str(redact_url(rules, &url).as_deref().unwrap_or(&url));
        out.push('>');
        rest = &rest[open + len + 1..];
    }
    super::text::redact_text_or_json(rules, rest, false, false, &mut out);
    out
}

/// A URL header's value with its path's matrix parameters redacted as a request path's are
/// (`/cart;jsessionid=…`, which servlet containers put in every link and so in every
/// `Referer`), and its query and its fragment as query strings are; `None` when nothing
/// changed. A fragment holds pairs as a query does when it holds any
/// (`#access_token=…&state=…`); one without (`#section-2`) comes out as it was.
fn redact_url(rules: &Rules, url: &str) -> Option<String> {
    let start = url.find(['?', '#']);
    let head = &url[..start.unwrap_or(url.len())];
    let matrix = head
        .contains(';')
        .then(|| super::path::redact_matrix(rules, head));
    let Some(start) = start else {
        return matrix.filter(|redacted| redacted != url);
    };
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(matrix.as_deref().unwrap_or(head));
    out.push_str(&url[start..=start]);
    let rest = &url[start + 1..];
    let (query, fragment) = match (url.as_bytes()[start], rest.find('#')) {
        (b'?', Some(hash)) => (Some(&rest[..hash]), Some(&rest[hash + 1..])),
        (b'?', None) => (Some(rest), None),
        _ => (None, Some(rest)),
    };
    let mut pairs = String::new();
    if let Some(query) = query {
        form::redact_pairs(rules, query, false, &mut pairs);
        push_codes_redacted(&mut out, &pairs, &rules.replacement);
    }
    if let Some(fragment) = fragment {
        if query.is_some() {
            out.push('#');
        }
        pairs.clear();
        form::redact_pairs(rules, fragment, false, &mut pairs);
        push_codes_redacted(&mut out, &pairs, &rules.replacement);
    }
    (out != url).then_some(out)
}

/// Writes a URL header's query or fragment with the value of each `code` pair replaced too:
/// in a redirect to an OAuth callback (`Location`) or the page after it (`Referer`) it is an
/// authorization code, which the client exchanges for tokens. Elsewhere a `code` is most often
/// no secret (a country's, a promotion's), so the query rules keep it.
fn push_codes_redacted(out: &mut String, pairs: &str, replacement: &str) {
    for (i, pair) in pairs.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("code") && !value.is_empty() => {
                out.push_str(key);
                out.push('=');
                out.push_str(replacement);
            }
            _ => out.push_str(pair),
        }
    }
}

/// `Sec-WebSocket-Protocol`'s subprotocols with the token among them redacted: the one after
/// a marker ([`WEBSOCKET_TOKEN_MARKERS`], or any sensitive key), and the rest of Kubernetes'
/// bearer subprotocol; `None` when none is. The separators are kept as they came.
fn redact_subprotocols(rules: &Rules, list: &str) -> Option<String> {
    let mut out = String::with_capacity(list.len());
    let mut keybuf = String::new();
    let mut after_marker = false;
    let mut changed = false;
    for (i, item) in list.split(',').enumerate() {
        if i > 0 {
            out.push(',');
        }
        let protocol = item.trim();
        let lead = &item[..item.len() - item.trim_start().len()];
        let trail = &item[lead.len() + protocol.len()..];
        if after_marker && !protocol.is_empty() {
            out.push_str(lead);
            out.push_str(&rules.replacement);
            out.push_str(trail);
            changed = true;
            after_marker = false;
            continue;
        }
        if let Some(token) = protocol
            .get(..K8S_BEARER_PROTOCOL.len())
            .filter(|p| p.eq_ignore_ascii_case(K8S_BEARER_PROTOCOL))
            .map(|p| &protocol[p.len()..])
            .filter(|token| !token.is_empty())
        {
            out.push_str(&item[..item.len() - token.len() - trail.len()]);
            out.push_str(&rules.replacement);
            out.push_str(trail);
            changed = true;
            continue;
        }
        after_marker = WEBSOCKET_TOKEN_MARKERS
            .iter()
            .any(|m| protocol.eq_ignore_ascii_case(m))
            || rules.keys.is_sensitive(protocol, &mut keybuf);
        out.push_str(item);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use http::header::{ACCEPT, AUTHORIZATION, COOKIE, USER_AGENT};

    use super::super::Redactor;
    use super::*;

    #[test]
    fn only_named_present_headers_are_stored() {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("curl/8"));
        headers.insert("x-other", HeaderValue::from_static("not asked for"));
        let r = Redactor::default();
        assert_eq!(
            r.redact_headers(&headers, &[USER_AGENT, ACCEPT, USER_AGENT])
                .as_deref(),
            Some(r#"{"user-agent":"curl/8"}"#)
        );
        assert_eq!(r.redact_headers(&headers, &[ACCEPT]), None);
        assert_eq!(r.redact_headers(&headers, &[]), None);
    }

    #[test]
    fn credentials_are_redacted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        headers.append(COOKIE, HeaderValue::from_static("sid=abc"));
        headers.append(COOKIE, HeaderValue::from_static("theme=dark"));
        headers.insert("x-api-key", HeaderValue::from_static("k-123"));
        headers.insert("x-auth-token", HeaderValue::from_static("t-123"));
        let mut marked = HeaderValue::from_static("opaque-credential");
        marked.set_sensitive(true);
        headers.insert("x-custom", marked);
        headers.insert(
            "x-trace",
            HeaderValue::from_static("Bearer abcdefghijklmnop"),
        );
        let names = [
            "authorization",
            "cookie",
            "x-api-key",
            "x-auth-token",
            "x-custom",
            "x-trace",
        ]
        .map(HeaderName::from_static);
        let out = Redactor::default()
            .redact_headers(&headers, &names)
            .unwrap();
        assert_eq!(
            out,
            r#"{"authorization":"[REDACTED]","cookie":["[REDACTED]","[REDACTED]"],"x-api-key":"[REDACTED]","x-auth-token":"[REDACTED]","x-custom":"[REDACTED]","x-trace":"Bearer [REDACTED]"}"#
        );
    }

    /// gRPC binary metadata (`-bin`, base64 on the wire) is named like its text twin.
    #[test]
    fn binary_metadata_with_a_credential_name_is_redacted() {
        let mut headers = HeaderMap::new();
        for name in [
            "x-session-token-bin",
            "x-api-key-bin",
            "authorization-bin",
            "x-trace-bin",
        ] {
            headers.insert(name, HeaderValue::from_static("czNjcjN0"));
        }
        let names = headers.keys().cloned().collect::<Vec<_>>();
        let out = Redactor::default()
            .redact_headers(&headers, &names)
            .unwrap();
        assert_eq!(
            out,
            r#"{"x-session-token-bin":"[REDACTED]","x-api-key-bin":"[REDACTED]","authorization-bin":"[REDACTED]","x-trace-bin":"czNjcjN0"}"#
        );
    }

    /// Found by review: a recorded header value had no cap (an 8 KiB value was stored whole,
    /// a server with a raised header-list limit would store more).
    #[test]
    fn long_values_are_cut_with_a_note() {
        let long = format!(
            "{}\u{e9}{}",
            "a".repeat(HEADER_VALUE_BYTES - 1),
            "b".repeat(8 << 10)
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-long", HeaderValue::from_str(&long).unwrap());
        headers.append("x-long", HeaderValue::from_static("short"));
        // A JWT across the cap: cut first, its two leading segments would not read as one.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        let secret = format!("{} {jwt} {}", "c".repeat(4060), "d".repeat(100));
        headers.insert("x-trace", HeaderValue::from_str(&secret).unwrap());
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&"Bearer z".repeat(2000)).unwrap(),
        );
        let names = ["x-long", "x-trace", "authorization"].map(HeaderName::from_static);
        let out = Redactor::default()
            .redact_headers(&headers, &names)
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let cut = json["x-long"][0].as_str().unwrap();
        // Cut on a character boundary: the é that straddles the cap goes whole.
        assert_eq!(
            cut,
            format!(
                "{} …[truncated, {} bytes total]",
                "a".repeat(HEADER_VALUE_BYTES - 1),
                long.len()
            )
        );
        assert_eq!(json["x-long"][1], "short");
        let trace = json["x-trace"].as_str().unwrap();
        assert!(trace.contains(" [REDACTED] d"), "{trace}");
        assert!(!trace.contains("eyJzdWIi"), "{trace}");
        assert_eq!(json["authorization"], "[REDACTED]");
        // A value at the cap is stored as it is.
        headers.insert(
            "x-long",
            HeaderValue::from_str(&"a".repeat(HEADER_VALUE_BYTES)).unwrap(),
        );
        let out = Redactor::default()
            .redact_headers(&headers, &names[..1])
            .unwrap();
        assert_eq!(
            out,
            format!(r#"{{"x-long":"{}"}}"#, "a".repeat(HEADER_VALUE_BYTES))
        );
    }

    fn stored(name: &'static str, value: &str) -> String {
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_static(name);
        headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        let out = Redactor::default()
            .redact_headers(&headers, std::slice::from_ref(&name))
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        json[name.as_str()].as_str().unwrap().to_owned()
    }

    /// Found by a probe: a URL-valued header (`Referer` after an OAuth implicit flow or a
    /// reset link, `Location` of a redirect, a proxy's `X-Original-URL`) kept the credentials
    /// in its query and fragment, which the query string's own rules redact.
    #[test]
    fn url_headers_have_their_query_and_fragment_redacted() {
        for (name, value, want) in [
            (
                "referer",
                "https://x/cb?access_token=hunter2abc&x=1",
                "https://x/cb?access_token=[REDACTED]&x=1",
            ),
            (
                "referer",
                "https://x/cb#access_token=hunter2abc&x=1",
                "https://x/cb#access_token=[REDACTED]&x=1",
            ),
            (
                "location",
                "https://x/reset?password=hunter2#top",
                "https://x/reset?password=[REDACTED]#top",
            ),
            (
                "x-original-url",
                "/cb?token=hunter2abc",
                "/cb?token=[REDACTED]",
            ),
            (
                "x-forwarded-uri",
                "/a?q=1#id_token=eyJhbGciOi&state=s1",
                "/a?q=1#id_token=[REDACTED]&state=s1",
            ),
            ("content-location", "/r?api_key=k1", "/r?api_key=[REDACTED]"),
            // Found by a probe: Envoy's original path and nginx's request URI carry the
            // request's query.
            (
                "x-envoy-original-path",
                "/x?token=hunter2XYZ",
                "/x?token=[REDACTED]",
            ),
            (
                "x-request-uri",
                "/x?password=hunter2",
                "/x?password=[REDACTED]",
            ),
            // `auth` as the name's last word: Docker's and Sentry's credentials.
            ("x-registry-auth", "eyJ1c2VybmFtZSI6ImEifQ", "[REDACTED]"),
            ("x-sentry-auth", "Sentry sentry_key=hunter2", "[REDACTED]"),
            // An OAuth authorization code, in a redirect to the callback or the page after it.
            (
                "location",
                "https://x/cb?code=hunter2abc",
                "https://x/cb?code=[REDACTED]",
            ),
            (
                "referer",
                "https://app/cb?state=s1&Code=hunter2abc#x",
                "https://app/cb?state=s1&Code=[REDACTED]#x",
            ),
            // Found by a probe: a servlet container's session id in the path's matrix
            // parameters, with a query after it or not.
            (
                "referer",
                "https://shop.example.com/cart;jsessionid=0F3A9B2C4D5E?step=2",
                "https://shop.example.com/cart;jsessionid=[REDACTED]?step=2",
            ),
            (
                "location",
                "/cart;jsessionid=0F3A9B2C4D5E",
                "/cart;jsessionid=[REDACTED]",
            ),
        ] {
            assert_eq!(stored(name, value), want, "{name}: {value}");
        }
        // A URL without credentials, and other headers with a `?`, stay as they came.
        for (name, value) in [
            ("referer", "https://x/search?q=rust+lang&page=2#results"),
            ("location", "/docs/a#section-2"),
            ("origin", "https://app.example.com"),
            ("x-note", "/cb?code=kept"),
            ("referer", "https://x/p?zipcode=12345&code_style=1"),
            ("referer", "https://x/a;v=2/b;lang=en?q=1"),
            ("location", "/a;v=2"),
        ] {
            assert_eq!(stored(name, value), value, "{name}");
        }
    }

    /// Found by a probe: credential headers of common platforms (Azure API Management and
    /// Functions, Google API keys, `Authentication`) were stored as sent.
    #[test]
    fn platform_credential_headers_are_redacted() {
        for name in [
            "ocp-apim-subscription-key",
            "x-functions-key",
            "x-goog-api-key",
            "authentication",
            "x-authentication",
        ] {
            assert_eq!(stored(name, "hunter2abc"), "[REDACTED]", "{name}");
        }
        assert_eq!(stored("x-request-id", "r-123"), "r-123");
    }

    /// Found by a probe: browsers cannot set headers on a WebSocket, so clients send the
    /// token as a subprotocol (`access_token, <token>`, Kubernetes'
    /// `base64url.bearer.authorization.k8s.io.<token>`), and it was stored.
    #[test]
    fn websocket_subprotocol_tokens_are_redacted() {
        for (value, want) in [
            ("access_token, hunter2abc", "access_token, [REDACTED]"),
            (
                "graphql-ws, bearer, hunter2abc",
                "graphql-ws, bearer, [REDACTED]",
            ),
            ("Authorization,hunter2abc,v2", "Authorization,[REDACTED],v2"),
            (
                "base64url.bearer.authorization.k8s.io.aHVudGVyMg, base64.binary.k8s.io",
                "base64url.bearer.authorization.k8s.io.[REDACTED], base64.binary.k8s.io",
            ),
        ] {
            assert_eq!(stored("sec-websocket-protocol", value), want, "{value}");
        }
        for value in ["graphql-ws", "graphql-transport-ws, chat.v2", "mqtt"] {
            assert_eq!(stored("sec-websocket-protocol", value), value);
        }
    }

    #[test]
    fn configured_headers_and_lossy_values() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant-key", HeaderValue::from_static("abc"));
        headers.insert("x-raw", HeaderValue::from_bytes(b"caf\xe9 \"q\"").unwrap());
        headers.append("x-raw", HeaderValue::from_static("two"));
        let r = Redactor::builder()
            .sensitive_header(HeaderName::from_static("x-tenant-key"))
            .build();
        let names = ["x-tenant-key", "x-raw"].map(HeaderName::from_static);
        let out = r.redact_headers(&headers, &names).unwrap();
        assert_eq!(
            out,
            "{\"x-tenant-key\":\"[REDACTED]\",\"x-raw\":[\"caf\u{FFFD} \\\"q\\\"\",\"two\"]}"
        );
        let _: serde_json::Value = serde_json::from_str(&out).unwrap();
    }

    /// Found by a probe on 2026-12-07: a recorded header outside the lists whose value
    /// carries pairs, a URL or a JSON document of its own kept their secrets.
    #[test]
    fn pairs_urls_and_documents_in_other_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.1;token=hunter2;proto=https"),
        );
        headers.insert(
            "link",
            HeaderValue::from_static(
                "<https://api.x/items?page=2&access_token=hunter2>; rel=\"next\"",
            ),
        );
        headers.insert(
            "dropbox-api-arg",
            HeaderValue::from_static(r#"{"url":"https://db.tt/x","link_password":"hunter2"}"#),
        );
        let names = ["forwarded", "link", "dropbox-api-arg"].map(HeaderName::from_static);
        let stored = Redactor::default()
            .redact_headers(&headers, &names)
            .unwrap_or_default();
        assert!(!stored.contains("hunter2"), "{stored}");
        assert_eq!(
            stored,
            r#"{"forwarded":"for=192.0.2.1;token=[REDACTED];proto=https","link":"<https://api.x/items?page=2&access_token=[REDACTED]>; rel=\"next\"","dropbox-api-arg":"{\"url\":\"https://db.tt/x\",\"link_password\":\"[REDACTED]\"}"}"#
        );
    }

    /// Headers whose pairs and documents name no secret stay as they came.
    #[test]
    fn other_headers_pairs_stay() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/html;q=0.9,*/*;q=0.8"),
        );
        headers.insert(
            "content-type",
            HeaderValue::from_static("multipart/form-data; boundary=----x1"),
        );
        headers.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.1;proto=https"),
        );
        headers.insert(
            "x-trace",
            HeaderValue::from_static(r#"{"span":"a1","sampled":true}"#),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64)"),
        );
        let names = [
            ACCEPT,
            HeaderName::from_static("content-type"),
            HeaderName::from_static("forwarded"),
            HeaderName::from_static("x-trace"),
            USER_AGENT,
        ];
        assert_eq!(
            Redactor::default()
                .redact_headers(&headers, &names)
                .as_deref(),
            Some(
                r#"{"accept":"text/html;q=0.9,*/*;q=0.8","content-type":"multipart/form-data; boundary=----x1","forwarded":"for=192.0.2.1;proto=https","x-trace":"{\"span\":\"a1\",\"sampled\":true}","user-agent":"Mozilla/5.0 (X11; Linux x86_64)"}"#
            )
        );
    }
}
