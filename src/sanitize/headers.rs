//! Request headers: only the ones asked for, credentials redacted.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::json::push_json_string;
use super::redactor::Rules;

/// Headers whose value is always redacted.
pub(super) const DEFAULT_SENSITIVE_HEADERS: [HeaderName; 5] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
    http::header::SET_COOKIE,
    HeaderName::from_static("x-api-key"),
];

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
        if values.peek().is_none() {
            push_value(&mut out, rules, name_sensitive, first);
        } else {
            out.push('[');
            push_value(&mut out, rules, name_sensitive, first);
            for value in values {
                out.push(',');
                push_value(&mut out, rules, name_sensitive, value);
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

fn push_value(out: &mut String, rules: &Rules, name_sensitive: bool, value: &HeaderValue) {
    // `is_sensitive` is how tower-http's `SetSensitiveHeadersLayer` marks credentials.
    if name_sensitive || value.is_sensitive() {
        out.push_str(&rules.replacement_json);
        return;
    }
    let text = String::from_utf8_lossy(value.as_bytes());
    // Redacted whole before the cut, so a cut never leaves half a secret unrecognized.
    let redacted = rules.values.redact(&text);
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
}
