//! Request bodies: what the writer knows about one, and which sanitizer handles it.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::encoding::{self, ContentCoding};
use super::redactor::Rules;
use super::{form, json, json_lines, multipart, text};

/// What the writer knows about one captured request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyInput<'a> {
    /// The `Content-Type` header value, raw.
    pub content_type: Option<&'a str>,
    /// The `Content-Encoding` header value, raw.
    pub content_encoding: Option<&'a str>,
    /// The captured prefix of the body (at most the capture cap).
    pub bytes: &'a [u8],
    /// How many bytes the body had in all.
    pub total_len: u64,
    /// `true` when `bytes` is only a prefix of the body.
    pub truncated: bool,
    /// The matched route template, e.g. `/orders/{id}`.
    pub route: Option<&'a str>,
}

impl<'a> BodyInput<'a> {
    /// A complete, unencoded body of the given content type.
    pub fn new(content_type: Option<&'a str>, bytes: &'a [u8]) -> Self {
        Self {
            content_type,
            content_encoding: None,
            bytes,
            total_len: bytes.len() as u64,
            truncated: false,
            route: None,
        }
    }
}

/// How a body is sanitized, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    /// NDJSON, JSON Lines, JSON text sequences: one JSON document a record.
    JsonLines,
    Form,
    Text,
    /// Text whose plain scalars YAML reads over the lines indented more than their key: there
    /// those lines are the value, where prose keeps them (see [`yaml`](super::yaml)).
    Yaml,
    Multipart,
    /// No `Content-Type`: decided by looking at the bytes.
    Missing,
    Binary,
}

/// A parsed `Content-Type`: the lowercase `type/subtype` and the raw parameters.
#[derive(Debug)]
struct MediaType<'a> {
    /// Lower-cased; borrowed from the header when it is lower-case already, as it usually is.
    essence: Cow<'a, str>,
    params: &'a str,
}

impl<'a> MediaType<'a> {
    fn parse(header: &'a str) -> Self {
        let (essence, params) = header.split_once(';').unwrap_or((header, ""));
        let essence = essence.trim();
        let essence = if essence.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(essence.to_ascii_lowercase())
        } else {
            Cow::Borrowed(essence)
        };
        Self { essence, params }
    }

    fn kind(&self) -> Kind {
        let essence = &*self.essence;
        let (main, sub) = essence.split_once('/').unwrap_or((essence, ""));
        match (main, sub) {
            ("application", "json") => Kind::Json,
            (
                "application",
                "x-ndjson" | "ndjson" | "jsonl" | "x-jsonlines" | "jsonlines" | "json-seq",
            ) => Kind::JsonLines,
            // RFC 8091's suffix for a JSON text sequence (`application/geo+json-seq`).
            (_, sub) if sub.ends_with("+json-seq") => Kind::JsonLines,
            // gRPC's framing, whatever the codec (`+json` is unframed by the writer first).
            ("application", sub) if sub.starts_with("grpc") => Kind::Binary,
            (_, sub) if sub.ends_with("+json") => Kind::Json,
            ("application", "x-www-form-urlencoded") => Kind::Form,
            ("multipart", "form-data") => Kind::Multipart,
            ("application" | "text", "yaml" | "x-yaml") => Kind::Yaml,
            (_, sub) if sub.ends_with("+yaml") => Kind::Yaml,
            ("text", _) | ("application", "xml") => Kind::Text,
            // Source text sent under an `application/` type.
            (
                "application",
                "javascript" | "x-javascript" | "ecmascript" | "graphql" | "sql" | "toml" | "x-sh",
            ) => Kind::Text,
            (_, sub) if sub.ends_with("+xml") => Kind::Text,
            _ => Kind::Binary,
        }
    }
}

/// Whether `content_type` names YAML (`text/yaml`, `application/x-yaml`, `+yaml`): a
/// multipart field of that type is read as a YAML body is.
pub(super) fn is_yaml(content_type: &str) -> bool {
    MediaType::parse(content_type).kind() == Kind::Yaml
}

/// The value of parameter `name` in a header like `a/b; name="value"; other=x`.
pub(super) fn param<'h>(params: &'h str, name: &str) -> Option<Cow<'h, str>> {
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        let eq = rest.find(['=', ';'])?;
        let key = rest[..eq].trim();
        if rest.as_bytes()[eq] == b';' {
            rest = &rest[eq..];
            continue;
        }
        rest = rest[eq + 1..].trim_start();
        let value: Cow<'h, str> = if let Some(quoted) = rest.strip_prefix('"') {
            // A quoted-string; `\x` stands for `x`.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            Cow::Owned(value)
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let value = rest[..end].trim();
            rest = &rest[end..];
            Cow::Borrowed(value)
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

/// Sanitizes one body (see [`Redactor::redact_body`](super::Redactor::redact_body)), a
/// compressed one decoded to at most `max_decoded` bytes; one that may not be decoded at all
/// (0) is described.
/// `decode_cut` is set when the body was decoded only in part (cut at `max_decoded`, or a
/// stream cut short): what is stored is then a prefix, whole as the capture was.
pub(super) fn redact_body_decoding(
    rules: &Rules,
    body: &BodyInput<'_>,
    max_decoded: usize,
    decode_cut: &mut bool,
) -> Option<String> {
    if let Some(custom) = body.route.and_then(|route| rules.routes.get(route)) {
        return (custom.f)(body);
    }
    if body.bytes.is_empty() {
        return (body.total_len > 0)
            .then(|| format!("[body not captured, {} bytes]", body.total_len));
    }
    let media = body.content_type.map(MediaType::parse);
    let kind = media.as_ref().map_or(Kind::Missing, MediaType::kind);
    let truncated = body.truncated || body.total_len > body.bytes.len() as u64;
    if kind == Kind::Binary {
        return Some(describe(rules, "binary", media.as_ref(), body.total_len));
    }

    let decoded;
    let (bytes, cut) = match ContentCoding::parse(body.content_encoding) {
        ContentCoding::Identity => (
            body.bytes,
            truncated.then(|| format!("truncated, {} bytes total", body.total_len)),
        ),
        ContentCoding::Unsupported(coding) => {
            return Some(describe(
                rules,
                &format!("{}-encoded", coding_name(rules, coding)),
                media.as_ref(),
                body.total_len,
            ));
        }
        ContentCoding::Decode(_) if max_decoded == 0 => {
            let encoding = body.content_encoding.unwrap_or_default().trim();
            let encoding: String = encoding.chars().take(100).collect();
            return Some(describe(
                rules,
                &format!("{}-encoded", rules.values.redact(&encoding)),
                media.as_ref(),
                body.total_len,
            ));
        }
        ContentCoding::Decode(codings) => {
            let Some(d) = encoding::decode(&codings, body.bytes, max_decoded) else {
                return Some(describe(
                    rules,
                    "undecodable",
                    media.as_ref(),
                    body.total_len,
                ));
            };
            decoded = d;
            *decode_cut = !decoded.complete;
            let encoding = body.content_encoding.unwrap_or_default().trim();
            let cut = (!decoded.complete || truncated).then(|| {
                format!(
                    "truncated, {} bytes decoded from {} {encoding} bytes",
                    decoded.bytes.len(),
                    body.total_len
                )
            });
            (decoded.bytes.as_slice(), cut)
        }
    };

    let kind = match kind {
        Kind::Missing => match sniff(bytes, cut.is_some()) {
            Some(kind) => kind,
            None => return Some(describe(rules, "binary", None, body.total_len)),
        },
        kind => kind,
    };
    // Text holding control characters text never holds is binary under another name (a
    // protobuf message sent as `text/plain`, or with no type): its values have no keys to be
    // told by, so it is described, never stored.
    if matches!(kind, Kind::Form | Kind::Text | Kind::Yaml) && holds_binary_controls(bytes) {
        return Some(describe(rules, "binary", media.as_ref(), body.total_len));
    }
    // A byte order mark before a JSON document (.NET's and PowerShell's writers put one) is no
    // JSON: read with it, the whole body was stored as ` …[invalid JSON at byte 0]` (found by
    // a probe). RFC 8259 §8.1 lets a parser ignore it; it is left out of the stored body.
    let bytes = match kind {
        Kind::Json => bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes),
        _ => bytes,
    };
    let mut out = String::with_capacity(bytes.len() + 48);
    match kind {
        Kind::Json => json::redact_json(rules, bytes, cut.as_deref(), &mut out),
        Kind::JsonLines => json_lines::redact_json_lines(rules, bytes, cut.as_deref(), &mut out),
        Kind::Form | Kind::Text | Kind::Yaml => {
            let text = String::from_utf8_lossy(bytes);
            if kind == Kind::Form {
                form::redact_form_body(
                    rules,
                    text.trim_end_matches(['\r', '\n']),
                    cut.is_some(),
                    &mut out,
                );
            } else {
                let yaml = kind == Kind::Yaml;
                text::redact_text_or_json(rules, &text, cut.is_some(), yaml, &mut out);
            }
            if let Some(cut) = &cut {
                let _ = write!(out, " …[{cut}]");
            }
        }
        Kind::Multipart => {
            let boundary = media.as_ref().and_then(|m| param(m.params, "boundary"));
            // A body without its boundary, or with no part of it, is described: stored as
            // `[]`, it would read as an empty form.
            let read = boundary.filter(|b| !b.is_empty()).is_some_and(|boundary| {
                multipart::redact_multipart(rules, bytes, &boundary, cut.as_deref(), &mut out)
            });
            if !read {
                return Some(describe(
                    rules,
                    "unparsable",
                    media.as_ref(),
                    body.total_len,
                ));
            }
        }
        Kind::Missing | Kind::Binary => {
            return Some(describe(rules, "binary", media.as_ref(), body.total_len));
        }
    }
    Some(out)
}

/// Picks a sanitizer for a body without a content type: JSON if it looks like JSON, text if
/// it is UTF-8, `None` for binary.
fn sniff(bytes: &[u8], cut: bool) -> Option<Kind> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => true,
        // A character split by the cut still leaves valid text.
        Err(e) => cut && e.error_len().is_none(),
    };
    if !valid {
        return None;
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Some(Kind::Json),
        _ => Some(Kind::Text),
    }
}

/// Whether `bytes` hold a C0 control character that text does not: any but tab, LF, VT, FF, CR
/// and ESC (which colours terminal logs). Branch-free per byte, so the compiler reads it in
/// vector-wide steps.
fn holds_binary_controls(bytes: &[u8]) -> bool {
    const TEXT_CONTROLS: u32 =
        1 << b'\t' | 1 << b'\n' | 1 << 0x0b | 1 << 0x0c | 1 << b'\r' | 1 << 0x1b;
    bytes.chunks(64).any(|chunk| {
        chunk.iter().fold(false, |found, &b| {
            found | ((b < 0x20) & ((TEXT_CONTROLS >> (b & 0x1f)) & 1 == 0))
        })
    })
}

/// A coding this module does not decode, as a row may name it: a token of a coding's shape
/// (`br`, `zstd`, `x-compress`) that the value patterns leave alone, else `unknown`. The header
/// is the client's: a token, a card number or `password=…` sent as a coding was stored as sent,
/// and at any length (found by a probe).
fn coding_name<'a>(rules: &Rules, coding: &'a str) -> &'a str {
    let shaped = (1..=32).contains(&coding.len())
        && coding
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'+'));
    if shaped && rules.values.redact(coding) == coding {
        coding
    } else {
        "unknown"
    }
}

/// See [`Redactor::describe_unread_body`](super::Redactor::describe_unread_body).
pub(super) fn describe_unread(rules: &Rules, body: &BodyInput<'_>, why: &str) -> Option<String> {
    if let Some(custom) = body.route.and_then(|route| rules.routes.get(route)) {
        return (custom.f)(body);
    }
    let media = body.content_type.map(MediaType::parse);
    let mut out = describe(rules, "binary", media.as_ref(), body.total_len);
    out.pop(); // the closing bracket
    // `why` may quote client input (an encoding's name): pattern-checked like the type.
    let _ = write!(out, ": {}]", rules.values.redact(why));
    Some(out)
}

/// `[binary application/grpc, 1234 bytes]`.
fn describe(rules: &Rules, what: &str, media: Option<&MediaType<'_>>, total_len: u64) -> String {
    match media {
        // The header is client input: keep it short and pattern-checked.
        Some(media) => {
            let essence: String = media.essence.chars().take(100).collect();
            format!(
                "[{what} {}, {total_len} bytes]",
                rules.values.redact(&essence)
            )
        }
        None => format!("[{what}, {total_len} bytes]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_kinds() {
        let kind = |ct: &str| MediaType::parse(ct).kind();
        assert_eq!(kind("application/json"), Kind::Json);
        assert_eq!(kind("Application/JSON; charset=utf-8"), Kind::Json);
        assert_eq!(kind("application/vnd.api+json"), Kind::Json);
        assert_eq!(
            kind("application/x-www-form-urlencoded;charset=UTF-8"),
            Kind::Form
        );
        assert_eq!(kind("text/plain"), Kind::Text);
        assert_eq!(kind("application/soap+xml"), Kind::Text);
        assert_eq!(kind("text/yaml"), Kind::Yaml);
        assert_eq!(kind("text/x-yaml"), Kind::Yaml);
        assert_eq!(kind("application/yaml"), Kind::Yaml);
        assert_eq!(kind("Application/X-YAML"), Kind::Yaml);
        assert_eq!(kind("application/vnd.oai.openapi+yaml"), Kind::Yaml);
        assert_eq!(kind("multipart/form-data; boundary=x"), Kind::Multipart);
        assert_eq!(kind("application/octet-stream"), Kind::Binary);
        assert_eq!(kind("application/grpc"), Kind::Binary);
        // Framed, whatever the codec: no sanitizer reads the prefixes.
        assert_eq!(kind("application/grpc+json"), Kind::Binary);
        assert_eq!(kind("application/grpc-web+xml"), Kind::Binary);
        assert_eq!(kind(""), Kind::Binary);
    }

    /// NDJSON, JSON Lines and JSON text sequences were binary bodies, stored as
    /// `[binary …, n bytes]`.
    #[test]
    fn json_lines_kinds() {
        let kind = |ct: &str| MediaType::parse(ct).kind();
        for ct in [
            "application/x-ndjson",
            "application/ndjson; charset=utf-8",
            "application/jsonl",
            "application/x-jsonlines",
            "application/json-seq",
            "application/geo+json-seq",
        ] {
            assert_eq!(kind(ct), Kind::JsonLines, "{ct}");
        }
    }

    /// Source text sent under `application/*` types was a binary body.
    #[test]
    fn textual_application_kinds() {
        let kind = |ct: &str| MediaType::parse(ct).kind();
        for ct in [
            "application/javascript",
            "application/x-javascript",
            "application/ecmascript",
            "application/graphql",
            "application/sql",
            "application/toml",
            "application/x-sh",
        ] {
            assert_eq!(kind(ct), Kind::Text, "{ct}");
        }
    }

    #[test]
    fn params() {
        let p = "; charset=utf-8; boundary=\"a \\\"b\\\";c\"; x";
        assert_eq!(param(p, "Boundary").as_deref(), Some("a \"b\";c"));
        assert_eq!(param(p, "charset").as_deref(), Some("utf-8"));
        assert_eq!(param(p, "x"), None);
        assert_eq!(
            param("; boundary=\"unterminated", "boundary").as_deref(),
            Some("unterminated")
        );
        assert_eq!(param("", "boundary"), None);
    }

    #[test]
    fn binary_controls_are_told_from_text_ones() {
        assert!(!holds_binary_controls(
            b"line one\r\n\tline two\x0c\x0b\x1b[31mred\x1b[0m"
        ));
        assert!(!holds_binary_controls("é ü \u{7f}".as_bytes()));
        for control in (0u8..0x20).filter(|b| !b"\t\n\x0b\x0c\r\x1b".contains(b)) {
            // At every place of a 64-byte step, and past it.
            for at in [0, 31, 63, 64, 100] {
                let mut bytes = vec![b'a'; 130];
                bytes[at] = control;
                assert!(holds_binary_controls(&bytes), "{control:#x} at {at}");
            }
        }
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b" {\"a\":1}", false), Some(Kind::Json));
        assert_eq!(sniff(b"hello", false), Some(Kind::Text));
        assert_eq!(sniff(b"\x00\xff\xfe", false), None);
        assert_eq!(
            sniff("é".as_bytes().split_last().unwrap().1, true),
            Some(Kind::Text)
        );
    }
}

#[cfg(test)]
mod redact_body_tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::super::Redactor;
    use super::*;

    fn redact(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
        Redactor::default().redact_body(&BodyInput::new(content_type, bytes))
    }

    fn cut(content_type: &str, body: &[u8], at: usize) -> String {
        let input = BodyInput {
            content_type: Some(content_type),
            content_encoding: None,
            bytes: &body[..at],
            total_len: body.len() as u64,
            truncated: at < body.len(),
            route: None,
        };
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    fn gzip(data: &[u8], level: Compression) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), level);
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// A protobuf message (here gRPC-framed, as tonic serves it whatever its content type)
    /// sent as text, a form, YAML or with no type: described, never stored with its password.
    #[test]
    fn binary_sent_as_text_is_described() {
        let body = b"\x00\x00\x00\x00\x17\n\x05alice\x12\x0ehunter2-s3cr3t";
        let len = body.len();
        for (content_type, described) in [
            (
                Some("text/plain"),
                format!("[binary text/plain, {len} bytes]"),
            ),
            (
                Some("application/x-www-form-urlencoded"),
                format!("[binary application/x-www-form-urlencoded, {len} bytes]"),
            ),
            (
                Some("application/yaml"),
                format!("[binary application/yaml, {len} bytes]"),
            ),
            (None, format!("[binary, {len} bytes]")),
        ] {
            assert_eq!(
                redact(content_type, body),
                Some(described),
                "{content_type:?}"
            );
        }
        // Without its prefix, a message whose bytes are all printable but one.
        let unframed = b"\n\x05alice\x12\x0ehunter2-s3cr3t";
        let stored = redact(Some("text/plain"), unframed).unwrap();
        assert!(!stored.contains("hunter2"), "{stored}");
        // Text with tabs, line breaks and terminal colours is text.
        assert_eq!(
            redact(Some("text/plain"), b"a\tb\r\n\x1b[31mred\x1b[0m").as_deref(),
            Some("a\tb\r\n\x1b[31mred\x1b[0m")
        );
    }

    #[test]
    fn empty_body() {
        assert_eq!(redact(Some("application/json"), b""), None);
        assert_eq!(redact(None, b""), None);
        let uncaptured = BodyInput {
            total_len: 10,
            truncated: true,
            ..BodyInput::new(None, b"")
        };
        assert_eq!(
            Redactor::default().redact_body(&uncaptured).as_deref(),
            Some("[body not captured, 10 bytes]")
        );
    }

    #[test]
    fn json_content_types() {
        let body = br#"{"users":[{"profile":{"Pass-Word":"s3cr3t"}}]}"#;
        let want = r#"{"users":[{"profile":{"Pass-Word":"[REDACTED]"}}]}"#;
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
            "APPLICATION/JSON",
        ] {
            assert_eq!(redact(Some(ct), body).as_deref(), Some(want), "{ct}");
        }
        assert_eq!(redact(None, body).as_deref(), Some(want));
    }

    #[test]
    fn secret_cut_by_the_capture_cap_never_leaks() {
        let body = br#"{"id":7,"items":[{"sku":"a-1"}],"client_secret":"TOPSECRETVALUE","n":1}"#;
        let start = body.windows(3).position(|w| w == b"TOP").unwrap();
        for at in 1..=body.len() {
            let out = cut("application/json", body, at);
            // However little of the secret made it in, none of it comes out.
            assert!(!out.contains("TOP"), "cut at {at}: {out}");
            if at < body.len() {
                assert!(
                    out.ends_with(&format!(" …[truncated, {} bytes total]", body.len())),
                    "{out}"
                );
            }
        }
        // Cut right before the value and inside it.
        assert_eq!(
            cut("application/json", body, start - 1),
            format!(
                r#"{{"id":7,"items":[{{"sku":"a-1"}}],"client_secret": …[truncated, {} bytes total]"#,
                body.len()
            )
        );
        assert_eq!(
            cut("application/json", body, start + 3),
            format!(
                r#"{{"id":7,"items":[{{"sku":"a-1"}}],"client_secret":"[REDACTED]" …[truncated, {} bytes total]"#,
                body.len()
            )
        );
    }

    #[test]
    fn secret_cut_in_form_and_text_bodies() {
        let body = b"user=ann&password=TOPSECRETVALUE&next=1";
        for at in 1..=body.len() {
            let form = cut("application/x-www-form-urlencoded", body, at);
            let text = cut("text/plain", body, at);
            assert!(
                !form.contains("TOP") && !text.contains("TOP"),
                "cut at {at}: {form} / {text}"
            );
        }
    }

    #[test]
    fn malformed_json_with_a_password() {
        let out = redact(
            Some("application/json"),
            br#"{"user": "ann", password: "hunter2"}"#,
        )
        .unwrap();
        assert_eq!(out, r#"{"user":"ann", …[invalid JSON at byte 16]"#);
        let out = redact(Some("application/json"), b"user=ann&password=hunter2").unwrap();
        assert_eq!(out, " …[invalid JSON at byte 0]");
        let out = redact(Some("application/json"), br#"{"password":"hunter2""#).unwrap();
        assert!(!out.contains("hunter2"), "{out}");
    }

    #[test]
    fn cards_and_order_numbers() {
        let out = redact(
            Some("application/json"),
            br#"{"card":"4111 1111 1111 1111","order":"1234567812345678"}"#,
        )
        .unwrap();
        assert_eq!(out, r#"{"card":"[REDACTED]","order":"1234567812345678"}"#);
    }

    #[test]
    fn jwt_in_a_free_text_field() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let body = format!(r#"{{"comment":"it failed with {jwt} again"}}"#);
        let out = redact(Some("application/json"), body.as_bytes()).unwrap();
        assert_eq!(out, r#"{"comment":"it failed with [REDACTED] again"}"#);
    }

    #[test]
    fn text_bodies() {
        let out = redact(
            Some("text/plain"),
            b"login ok\npassword: hunter2\nkey AKIAIOSFODNN7EXAMPLE",
        )
        .unwrap();
        assert_eq!(out, "login ok\npassword: [REDACTED]\nkey [REDACTED]");
        assert_eq!(redact(None, b"plain words").as_deref(), Some("plain words"));
    }

    /// `fetch` sends a string body, and `sendBeacon` a string, as `text/plain`: JSON sent that
    /// way is redacted as JSON, at any depth and with escapes; text that only starts like JSON
    /// is text.
    #[test]
    fn json_sent_as_text() {
        let cases = [
            (
                r#"{"user":"ann","password":"ab\"cd-hunter2"}"#,
                r#"{"user":"ann","password":"[REDACTED]"}"#,
            ),
            (
                r#"{"auth":{"user":"ann","pass":"hunter2"}}"#,
                r#"{"auth":"[REDACTED]"}"#,
            ),
            (
                r#"{"pass\u0077ord":"hunter2"}"#,
                r#"{"pass\u0077ord":"[REDACTED]"}"#,
            ),
            ("[1] password=hunter2 {x}", "[1] password=[REDACTED]"),
            // Free text in a string keeps its pairs' rules, as a text body did before it
            // was read as JSON.
            (
                r#"{"message":"login user=ann password=hunter2","n":1}"#,
                r#"{"message":"login user=ann password=[REDACTED]","n":1}"#,
            ),
            (
                r#"["a <password>hunter2</password> b"]"#,
                r#"["a <password>[REDACTED]</password> b"]"#,
            ),
        ];
        for (body, want) in cases {
            let out = redact(Some("text/plain;charset=UTF-8"), body.as_bytes());
            assert_eq!(out.as_deref(), Some(want), "{body}");
        }
        let body = br#"{"user":"ann","token":"TOPSECRETVALUE","n":1}"#;
        for at in 1..body.len() {
            let out = cut("text/plain", body, at);
            assert!(!out.contains("TOP"), "cut at {at}: {out}");
        }
    }

    /// Found by review: a text body (a log line, an error) that holds a JSON document with
    /// text around it was read only by the pair rules, so a value its sibling name member
    /// names stayed. The document is read as JSON; the text around it stays as it came.
    #[test]
    fn json_with_text_around_it_in_a_text_body() {
        let cases = [
            (
                r#"request failed: {"name":"DB_PASSWORD","value":"hunter2"} (retrying)"#,
                r#"request failed: {"name":"DB_PASSWORD","value":"[REDACTED]"} (retrying)"#,
            ),
            (
                "env:\n[\n  { \"value\": \"hunter2\",\n    \"name\": \"API_TOKEN\" }\n]\n",
                "env:\n[\n  {\"value\":\"[REDACTED]\",\"name\":\"API_TOKEN\"}\n]\n",
            ),
            // A sensitive key inside such a document went by the pair rules already, and
            // still goes.
            (
                r#"retry {"user":"ann","password":"hunter2"} later"#,
                r#"retry {"user":"ann","password":[REDACTED]} later"#,
            ),
        ];
        for (body, want) in cases {
            let out = redact(Some("text/plain"), body.as_bytes());
            assert_eq!(out.as_deref(), Some(want), "{body}");
        }
        let body = br#"log: {"value":"TOPSECRETVALUE", "name":"token"} done"#;
        for at in 1..body.len() {
            let out = cut("text/plain", body, at);
            assert!(!out.contains("TOP"), "cut at {at}: {out}");
        }
        for plain in [
            r#"got { "name": "PORT", "value": "80" } ok"#,
            "a {b} [c] {\"unclosed: {\"x\" {{{\"",
        ] {
            assert_eq!(
                redact(Some("text/plain"), plain.as_bytes()).as_deref(),
                Some(plain)
            );
        }
    }

    /// Documents with text around them, cut by the cap at every byte, as a text body, inside
    /// a JSON string and in a form's value: no value named by a sibling member shows, nor one
    /// of a document after a `{"` of text (`{"unclosed {"name":…}`, which leaked at every cut
    /// past it), nor one of a document quoted in a string of another.
    #[test]
    fn documents_in_text_cut_anywhere() {
        let line = concat!(
            r#"log: {"a":1} then [{"name":"DB_PASSWORD","value":"TOPSECRET1"},"#,
            r#"{ "value" : "TOPSECRET2" , "key" : "api_key" }] é {"x":{"name":"pin","#,
            r#""value":{"TOPSECRET3":[1,"TOPSECRET4"]}}} {"unclosed {"name":"pin","#,
            r#""value":"TOPSECRET5"} and {"m":"{\"name\":\"otp\",\"value\":\"TOPSECRET6\"}"} ok"#,
        );
        let json = serde_json::to_string(&serde_json::json!({ "log": line })).unwrap();
        let form = format!("a=1&f={}", line.replace('&', "%26"));
        for (ct, body) in [
            ("text/plain", line),
            ("application/json", &json),
            ("application/x-www-form-urlencoded", &form),
        ] {
            for at in 1..=body.len() {
                if body.is_char_boundary(at) {
                    let out = cut(ct, body.as_bytes(), at);
                    assert!(!out.contains("TOP"), "{ct} cut at {at}: {out}");
                }
            }
        }
    }

    /// An HTML form, sent as an HTML page, as text, inside a JSON string (also as Go's encoder
    /// writes it, `<` as `\u003c`), and as a multipart text field: its secret fields lose
    /// their values whichever way it came.
    #[test]
    fn html_form_fields() {
        let form = concat!(
            "<form><input type=\"password\" name=\"pw\" value=\"hunter2\">",
            "<input name=\"password\" value='s3cr3t'>\n<input value=hunter3\n name=api_key>",
            "<input name=user value=ann></form>"
        );
        let want = concat!(
            "<form><input type=\"password\" name=\"pw\" value=\"[REDACTED]\">",
            "<input name=\"password\" value='[REDACTED]'>\n<input value=[REDACTED]\n name=api_key>",
            "<input name=user value=ann></form>"
        );
        for ct in [
            "text/html; charset=utf-8",
            "text/plain",
            "application/xhtml+xml",
        ] {
            assert_eq!(
                redact(Some(ct), form.as_bytes()).as_deref(),
                Some(want),
                "{ct}"
            );
        }
        assert_eq!(redact(None, form.as_bytes()).as_deref(), Some(want));
        let json = serde_json::to_string(&serde_json::json!({ "html": form })).unwrap();
        let want_json = serde_json::to_string(&serde_json::json!({ "html": want })).unwrap();
        let go = json.replace('<', "\\u003c").replace('>', "\\u003e");
        for body in [&json, &go] {
            for ct in ["application/json", "text/plain"] {
                let out = redact(Some(ct), body.as_bytes()).unwrap();
                assert_eq!(out, want_json, "{ct}: {body}");
            }
        }
        let multipart = format!(
            "--b\r\nContent-Disposition: form-data; name=\"page\"\r\n\r\n{form}\r\n--b--\r\n"
        );
        let out = redact(
            Some("multipart/form-data; boundary=b"),
            multipart.as_bytes(),
        )
        .unwrap();
        for secret in ["hunter2", "s3cr3t", "hunter3"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("value=ann"), "{out}");
    }

    /// HTML in a JSON document that Go's encoding/json wrote (`<` as `\u003c`, `>` as
    /// `\u003e`) inside a text that is no JSON document itself: a log line, an error. The JSON
    /// scan never sees it, and the field rule looked for a plain `<` only, so every value was
    /// kept.
    #[test]
    fn html_form_fields_go_escaped_inside_text() {
        let line = concat!(
            r#"level=error msg="render failed" page={"html":"\u003cform\u003e"#,
            r#"\u003cinput type=\"password\" name=\"pw\" value=\"hunter2\"\u003e"#,
            r#"\u003cinput value=hunter3 name=api_key\u003e"#,
            r#"\u003cINPUT NAME=\"user\" VALUE=\"ann\"\u003e"#,
            r#"\u003ctextarea name=\"private_key\"\u003ehunter4\u003c/textarea\u003e"#,
            r#"\u003cp\u003eok\u003c/p\u003e\u003c/form\u003e"} done"#
        );
        let want = concat!(
            r#"level=error msg="render failed" page={"html":"\u003cform\u003e"#,
            r#"\u003cinput type=\"password\" name=\"pw\" value=\"[REDACTED]\"\u003e"#,
            r#"\u003cinput value=[REDACTED] name=api_key\u003e"#,
            r#"\u003cINPUT NAME=\"user\" VALUE=\"ann\"\u003e"#,
            r#"\u003ctextarea name=\"private_key\"\u003e[REDACTED]\u003c/textarea\u003e"#,
            r#"\u003cp\u003eok\u003c/p\u003e\u003c/form\u003e"} done"#
        );
        redacted_in_text_and_errors(line, want, &["text/plain", "text/html"]);
    }

    /// `line` as a body of each content type, and as an error text, is stored as `want`.
    fn redacted_in_text_and_errors(line: &str, want: &str, types: &[&str]) {
        redacted_as(&[(line, want)], types, false);
        assert_eq!(Redactor::default().redact_error(line), want);
    }

    /// Each `(input, want)`: `input` as a body of each content type is stored as `want`, and,
    /// with `in_json`, so is the string `input` inside a JSON body.
    fn redacted_as(cases: &[(&str, &str)], types: &[&str], in_json: bool) {
        for &(input, want) in cases {
            for &ct in types {
                assert_eq!(
                    redact(Some(ct), input.as_bytes()).as_deref(),
                    Some(want),
                    "{ct}"
                );
            }
            if in_json {
                let json = serde_json::to_string(&serde_json::json!({ "page": input })).unwrap();
                let want = serde_json::to_string(&serde_json::json!({ "page": want })).unwrap();
                assert_eq!(
                    redact(Some("application/json"), json.as_bytes()),
                    Some(want)
                );
            }
        }
    }

    /// HTML character references in a field's name, type or quotes, and HTML escaped into
    /// text (a page quoted in an error, a template in a log line): the field rule compared
    /// the name as written, so `pass&#119;ord` was no key and every value was kept.
    #[test]
    fn html_character_references() {
        let leaks = [
            r#"<input name="pass&#119;ord" value="hunter2">"#,
            r#"<input name="&#x70;assword" value="hunter2">"#,
            r#"<input NAME='&#X50;ASS&#87;ORD' value=hunter2>"#,
            r#"<input type="pass&#119;ord" value="hunter2">"#,
            r#"<input name="api&#95;key" value="hunter2">"#,
            r#"<input name=pass&#0000119ord value=hunter2>"#,
            r#"&lt;input type=&quot;password&quot; value=&quot;hunter2&quot;&gt;"#,
            r#"&lt;input name=&#34;token&#34; value=&#39;hunter2&#39;&gt;"#,
            r#"&lt;input name=&apos;pin&apos; value=&apos;hunter2 x&apos;&gt;"#,
            r#"&lt;input name="password" value="hunter2"&gt;"#,
            r#"&#60;input name=&#x22;password&#x22; value=&#x22;hunter2&#x22;&#62;"#,
            r#"&amp;lt;input name=&amp;quot;password&amp;quot; value=&amp;quot;hunter2&amp;quot;&amp;gt;"#,
            r#"&lt;textarea name=&quot;private_key&quot;&gt;hunter2&lt;/textarea&gt;&lt;p&gt;ok"#,
            r#"&lt;password&gt;hunter2&lt;/password&gt;"#,
        ];
        for html in leaks {
            for ct in ["text/html", "text/plain"] {
                let out = redact(Some(ct), html.as_bytes()).unwrap();
                assert!(!out.contains("hunter2"), "{ct}: {html}\n{out}");
                assert!(out.contains("[REDACTED]"), "{ct}: {html}\n{out}");
            }
            let out = Redactor::default().redact_error(&format!("render failed: {html} (x)"));
            assert!(!out.contains("hunter2"), "error: {html}\n{out}");
            let json = serde_json::to_string(&serde_json::json!({ "page": html })).unwrap();
            for ct in ["application/json", "text/plain"] {
                let out = redact(Some(ct), json.as_bytes()).unwrap();
                assert!(!out.contains("hunter2"), "{ct}: {json}\n{out}");
            }
        }
        // Escaped HTML that holds no secret is stored as it came.
        for text in [
            r#"&lt;input name=&quot;user&quot; value=&quot;ann&quot;&gt; &amp; a &lt; b &#60;3"#,
            r#"<input name="us&#101;r" value="ann"><a title="&quot;x&quot;" href="/?a=1&amp;b=2">"#,
            r#"&lt;textarea name=&quot;note&quot;&gt;hi&lt;/textarea&gt;&lt;p&gt;&lt;/p&gt;"#,
        ] {
            assert_eq!(
                redact(Some("text/html"), text.as_bytes()).as_deref(),
                Some(text)
            );
        }
        // The value is replaced inside its entity quotes; the rest stays.
        assert_eq!(
            redact(
                Some("text/plain"),
                b"&lt;input type=&quot;password&quot; value=&quot;hunter2&quot;&gt;&lt;p&gt;ok"
            )
            .as_deref(),
            Some("&lt;input type=&quot;password&quot; value=&quot;[REDACTED]&quot;&gt;&lt;p&gt;ok")
        );
    }

    /// JSON escaped into an HTML attribute (Rails' and React's `data-props="{&quot;…`), and
    /// `key: &quot;value&quot;` pairs: the pair rule read a key's quote and its value's only
    /// as `"` or `'`, so the key was missed or the value taken as empty, and kept.
    #[test]
    fn pairs_quoted_with_character_references() {
        let cases = [
            (
                r#"<div data-props="{&quot;user&quot;:&quot;ann&quot;,&quot;csrfToken&quot;:&quot;abc123&quot;}"></div>"#,
                r#"<div data-props="{&quot;user&quot;:&quot;ann&quot;,&quot;csrfToken&quot;:[REDACTED]}"></div>"#,
            ),
            (
                "<pre>password: &quot;hunter2 x&quot;, user: &#39;ann&#39;\ntoken=&#x27;abc123&#x27;</pre>",
                "<pre>password: [REDACTED], user: &#39;ann&#39;\ntoken=[REDACTED]</pre>",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        // A quote never closed: the value runs to the end of its line.
        assert_eq!(
            redact(Some("text/plain"), b"secret: &quot;abc def\nnext: 1").as_deref(),
            Some("secret: [REDACTED]\nnext: 1")
        );
    }

    /// A sensitive pair in a link's query, the attribute quoted: the value ran on to the next
    /// `<`, so the closing quote, the rest of the tag and the link's text went too.
    #[test]
    fn a_pair_in_a_quoted_attribute_ends_at_its_closing_quote() {
        let cases = [
            (
                r#"<a href="/reset?token=abc123">reset</a> more"#,
                r#"<a href="/reset?token=[REDACTED]">reset</a> more"#,
            ),
            (
                r#"<a href="/reset?token=abc123" class="btn">reset</a>"#,
                r#"<a href="/reset?token=[REDACTED]" class="btn">reset</a>"#,
            ),
            (
                r#"<img src='/p?session=zz9'/><p>after</p>"#,
                r#"<img src='/p?session=[REDACTED]'/><p>after</p>"#,
            ),
            // A quote inside the value does not end it.
            (
                r#"<p>password=pa"ss'wo"rd</p>"#,
                r#"<p>password=[REDACTED]</p>"#,
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// A value quoted with `&quot;`, holding a quote of the page escaped (`value="a&quot;b"`,
    /// as every template writes a `"` in an attribute, quoted in text as `a&amp;quot;b`):
    /// the `&amp;quot;` closed the value, and the rest was kept.
    #[test]
    fn a_quote_escaped_once_more_than_the_value_does_not_close_it() {
        let cases = [
            (
                "&lt;input type=password value=&quot;a&amp;quot;b c&quot;&gt;",
                "&lt;input type=password value=&quot;[REDACTED]&quot;&gt;",
            ),
            (
                "&amp;lt;input name=pin value=&amp;quot;1&amp;amp;quot;2 3&amp;quot;&amp;gt;",
                "&amp;lt;input name=pin value=&amp;quot;[REDACTED]&amp;quot;&amp;gt;",
            ),
            (
                "password: &quot;a&amp;quot;b c&quot; x",
                "password: [REDACTED] x",
            ),
            (
                "token=&#39;a&amp;#39;b c&#39;, next=1",
                "token=[REDACTED], next=1",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// JSON escaped into HTML (`data-config="{&quot;password&quot;:&quot;ab\&quot;cd&quot;}"`,
    /// a `<pre>`): a quote escaped in the JSON string, `\&quot;`, closed the value, and the
    /// rest was kept. Text that also holds an HTML5 name (`&colon;`) was read decoded too,
    /// where `\"` does not close it.
    #[test]
    fn a_json_escaped_quote_written_as_a_reference_does_not_close_the_value() {
        let cases = [
            (
                r"{&quot;password&quot;:&quot;ab\&quot;cd&quot;,&quot;x&quot;:1}",
                r"{&quot;password&quot;:[REDACTED],&quot;x&quot;:1}",
            ),
            (
                r"{&quot;token&quot;: &quot;a\\&quot;, &quot;b&quot;: &quot;c\&quot;",
                r"{&quot;token&quot;: [REDACTED], &quot;b&quot;: &quot;c\&quot;",
            ),
            // A `\` at the end of the text or the line.
            ("secret=&quot;ab\\", "secret=[REDACTED]"),
            ("secret=&quot;ab\\\nnext=1", "secret=[REDACTED]\nnext=1"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// A name longer than a legacy one it starts with, in text read with its references
    /// decoded: `&ltimes;` (`⋉`) was decoded as `<` and `imes;`, and the `<` ended the value.
    #[test]
    fn a_longer_name_is_not_read_as_the_legacy_one_it_starts_with() {
        let cases = [
            (
                "password&equals;k&ltimes;Zq9&comma; next&equals;1",
                "password&equals;[REDACTED]&comma; next&equals;1",
            ),
            ("password&equals;&ltimes;Zq9", "password&equals;[REDACTED]"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// A tag escaped with `htmlentities`, whose value holds a character named with a longer
    /// name that starts with `gt` or `lt` (`⋗` is `&gtdot;`, `⋉` is `&ltimes;`): read as the
    /// legacy `&gt` and `&lt`, it ended the tag (and the rest was kept) or opened one.
    #[test]
    fn a_longer_name_is_no_tag_delimiter() {
        let cases = [
            (
                "&lt;input type=password value=a&gtdot;b1 x&gt;",
                "&lt;input type=password value=[REDACTED] x&gt;",
            ),
            (
                "&lt;input type=password value=&quot;a&quot; x=y&gtrless;z&gt; n&ltimes;b value=1",
                "&lt;input type=password value=&quot;[REDACTED]&quot; x=y&gtrless;z&gt; n&ltimes;b value=1",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// An XML element escaped by PHP's `htmlentities(…, ENT_HTML5)`, which writes `_` as
    /// `&lowbar;` and `/` as `&sol;`: the element rule read names and end tags only as written,
    /// so `api&lowbar;key` was no element of a sensitive key, and `&lt;&sol;password&gt;` no
    /// end tag (glued to a word, the start tag was taken for a type's parameter).
    #[test]
    fn xml_elements_escaped_with_html5_references() {
        let cases = [
            (
                "&lt;api&lowbar;key&gt;abc123&lt;&sol;api&lowbar;key&gt;&lt;id&gt;7&lt;&sol;id&gt;",
                "&lt;api&lowbar;key&gt;[REDACTED]&lt;&sol;api&lowbar;key&gt;&lt;id&gt;7&lt;&sol;id&gt;",
            ),
            (
                "x&lt;password&gt;hunter2&lt;&sol;password&gt;&lt;user&gt;ann&lt;&sol;user&gt;",
                "x&lt;password&gt;[REDACTED]&lt;&sol;password&gt;&lt;user&gt;ann&lt;&sol;user&gt;",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// A tag escaped into text, whose unquoted value holds a reference of its own page
    /// (`value=my&#x20;pass`, as OWASP's encoder writes an unquoted attribute): escaped, it is
    /// `&amp;#x20;`, a space in the value, not one of the tag's. Read as the tag's own space
    /// since abf779a, it ended the value, and the rest was kept as an attribute's name.
    #[test]
    fn a_reference_escaped_with_the_tag_does_not_end_its_unquoted_value() {
        let cases = [
            (
                "&lt;input type=password value=my&amp;#x20;pass&amp;#x20;phrase&gt;",
                "&lt;input type=password value=[REDACTED]&gt;",
            ),
            (
                "&lt;input name=pin value=12&amp;Tab;34 id=x&gt;",
                "&lt;input name=pin value=[REDACTED] id=x&gt;",
            ),
            (
                "&amp;lt;input name=pin value=12&amp;amp;NewLine;34&amp;gt;",
                "&amp;lt;input name=pin value=[REDACTED]&amp;gt;",
            ),
            // A `>` of the page's value (`value=a&gt;b`, as an encoder writes an unquoted
            // attribute), escaped once more than the tag's: no end of the tag.
            (
                "&lt;input type=password value=a&amp;gt;b&amp;#62;c&gt;",
                "&lt;input type=password value=[REDACTED]&gt;",
            ),
            // The tag's own spaces and `=`, escaped as often as its `<`, still part it.
            (
                "&amp;lt;input name&amp;equals;pin&amp;NewLine;value&amp;equals;1234&amp;gt;",
                "&amp;lt;input name&amp;equals;pin&amp;NewLine;value&amp;equals;[REDACTED]&amp;gt;",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// A field named with HTML5's names for ASCII characters, as PHP's `htmlentities` writes
    /// `_`, `[`, `]` and `.` with `ENT_HTML5`: a field's name had only its numbers and five
    /// names decoded, so `api&lowbar;key` was no key and its value was kept.
    #[test]
    fn form_field_names_with_html5_named_references() {
        let cases = [
            (
                r#"<input name="api&lowbar;key" value="abc123">"#,
                r#"<input name="api&lowbar;key" value="[REDACTED]">"#,
            ),
            (
                r#"<input name="user&lsqb;password&rsqb;" value="x">"#,
                r#"<input name="user&lsqb;password&rsqb;" value="[REDACTED]">"#,
            ),
            (
                r#"<input value=1234 NAME=card&period;PIN><input name="access&UnderBar;token" value='t0k'>"#,
                r#"<input value=[REDACTED] NAME=card&period;PIN><input name="access&UnderBar;token" value='[REDACTED]'>"#,
            ),
            (
                r#"<input name="user&lbrack;pass&amp;lowbar;word&rbrack;" value="x">"#,
                r#"<input name="user&lbrack;pass&amp;lowbar;word&rbrack;" value="[REDACTED]">"#,
            ),
            (
                r#"&lt;input name=&quot;api&lowbar;key&quot; value=&quot;abc123&quot;&gt;"#,
                r#"&lt;input name=&quot;api&lowbar;key&quot; value=&quot;[REDACTED]&quot;&gt;"#,
            ),
            // The whole tag so escaped: its `=`, line breaks and `/` are references too.
            (
                "&lt;input type&equals;&quot;password&quot;&NewLine;name&equals;&quot;pw&quot; value&equals;&quot;hunter2&quot; &sol;&gt;",
                "&lt;input type&equals;&quot;password&quot;&NewLine;name&equals;&quot;pw&quot; value&equals;&quot;[REDACTED]&quot; &sol;&gt;",
            ),
            (
                "&lt;input value&equals;hunter2 name&#61;&apos;user&lsqb;pin&rsqb;&apos;&gt;",
                "&lt;input value&equals;[REDACTED] name&#61;&apos;user&lsqb;pin&rsqb;&apos;&gt;",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        let (line, want) = cases[0];
        redacted_in_text_and_errors(line, want, &["text/html"]);
        // A name that holds no key, decoded, keeps its value.
        let text =
            r#"<input name="user&lowbar;name" value="ann"><input name="q&lsqb;0&rsqb;" value="x">"#;
        assert_eq!(
            redact(Some("text/html"), text.as_bytes()).as_deref(),
            Some(text)
        );
    }

    /// Text escaped by PHP's `htmlentities(…, ENT_QUOTES | ENT_HTML5)`, which writes `=` as
    /// `&equals;`, `:` as `&colon;`, `_` as `&lowbar;`, or with numbers (`&#61;`): the pair rule
    /// read keys and separators only as written, so every such value was kept.
    #[test]
    fn pairs_escaped_with_html5_references() {
        let cases = [
            ("password&equals;hunter2", "password&equals;[REDACTED]"),
            (
                "api&lowbar;key&equals;abc123&amp;page&equals;2",
                "api&lowbar;key&equals;[REDACTED]&amp;page&equals;2",
            ),
            (
                "password&colon; &quot;hunter2&quot;&comma; user&colon; &quot;ann&quot;",
                "password&colon; [REDACTED]&comma; user&colon; &quot;ann&quot;",
            ),
            ("password&#61;hunter2", "password&#61;[REDACTED]"),
            ("x token&#x3A; abc123", "x token&#x3A; [REDACTED]"),
            // A value runs over the references in it, to one that ends it.
            (
                "user&lsqb;password&rsqb;&equals;p&commat;ss&period;w0rd&excl;&NewLine;next&equals;1",
                "user&lsqb;password&rsqb;&equals;[REDACTED]&NewLine;next&equals;1",
            ),
            (
                "{&quot;user&quot;&colon;&quot;ann&quot;&comma;&quot;csrf&lowbar;token&quot;&colon;&quot;abc123&quot;}",
                "{&quot;user&quot;&colon;&quot;ann&quot;&comma;&quot;csrf&lowbar;token&quot;&colon;[REDACTED]}",
            ),
            // Escaped twice.
            (
                "password&amp;equals;hunter2&amp;amp;next&amp;equals;1",
                "password&amp;equals;[REDACTED]&amp;amp;next&amp;equals;1",
            ),
            // The key escaped, the separator not; the separator escaped, a value plain.
            ("api&lowbar;key=abc123", "api&lowbar;key=[REDACTED]"),
            ("password=p&commat;ss&period;word", "password=[REDACTED]"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        let (line, want) = cases[1];
        redacted_in_text_and_errors(line, want, &["text/plain"]);
        // Escaped text that holds no secret is stored as it came.
        for text in [
            "user&equals;ann&amp;page&equals;2&period; a &lowbar; b &#61;&#61; c&colon;",
            "&quot;user&lowbar;name&quot;&colon;&quot;ann&quot;&NewLine;&nbsp;&lt;p&gt;",
        ] {
            assert_eq!(
                redact(Some("text/plain"), text.as_bytes()).as_deref(),
                Some(text)
            );
        }
    }

    /// A reference inside an unquoted value, in text that holds no HTML5 name of a character
    /// of a key or a separator: the value ended at the reference's `&`, and the rest was kept.
    #[test]
    fn a_reference_inside_an_unquoted_value_does_not_end_it() {
        let cases = [
            ("password=ab&quot;cd&#39;ef x", "password=[REDACTED]"),
            ("token=abc&gt;def&amp;next=1", "token=[REDACTED]&amp;next=1"),
            ("secret=caf&#233;s, user=ann", "secret=[REDACTED], user=ann"),
            // A quote written as a reference still closes the attribute the pair sits in.
            (
                "&lt;a href=&quot;/reset?token=abc123&quot;&gt;reset&lt;/a&gt;",
                "&lt;a href=&quot;/reset?token=[REDACTED]&quot;&gt;reset&lt;/a&gt;",
            ),
            (
                "<a title='token: abc&apos; x' href=y>",
                "<a title='token: [REDACTED]&apos; x' href=y>",
            ),
            (
                r#"<a href="/r?token=abc"&gt;x"#,
                r#"<a href="/r?token=[REDACTED]"&gt;x"#,
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
    }

    /// A named reference the sanitizer has no character for, inside an unquoted value: PHP's
    /// `htmlentities` writes every character that has a name by its name (`ä` as `&auml;`,
    /// `€` as `&euro;`), and the value ended at its `&`, as at a query's, and kept the rest.
    /// So did a longer name that starts with a legacy one (`&ltimes;`, `⋉`, is no `&lt`).
    #[test]
    fn an_unknown_named_reference_inside_an_unquoted_value_does_not_end_it() {
        let cases = [
            (
                "password&equals;p&auml;ssw&ouml;rd123&amp;next&equals;1",
                "password&equals;[REDACTED]&amp;next&equals;1",
            ),
            ("password=p&auml;ss1 x", "password=[REDACTED]"),
            (
                "token=abc&euro;def&comma; user=ann",
                "token=[REDACTED]&comma; user=ann",
            ),
            ("secret=a&ltimes;b9", "secret=[REDACTED]"),
            // Escaped twice, as an `&amp;` before a name shows.
            (
                "password&amp;equals;p&amp;auml;ss&amp;amp;next&amp;equals;1",
                "password&amp;equals;[REDACTED]&amp;amp;next&amp;equals;1",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        // A query's `&` still ends a value, also before a word and a `;`.
        let (line, want) = ("token=abc&lang=en; x", "token=[REDACTED]&lang=en; x");
        redacted_in_text_and_errors(line, want, &["text/plain"]);
    }

    /// A secret that starts with a character that ends an unquoted value (`<`, `,`, `;`, `&`,
    /// or a reference to one): the value was read as empty and the secret kept, plainly, in
    /// text read with its references decoded, and after `: ` as after `=`.
    #[test]
    fn a_secret_starting_with_a_value_terminator_is_redacted() {
        let cases = [
            ("password=<Zq9", "password=[REDACTED]"),
            ("password=<Zq9</td>", "password=[REDACTED]</td>"),
            ("password=<b>hunter2</b>", "password=[REDACTED]</b>"),
            ("password=,Zq9 user=ann", "password=[REDACTED]"),
            ("x password=;Zq9", "x password=[REDACTED]"),
            ("password=&Zq9", "password=[REDACTED]"),
            ("password: <Zq9", "password: [REDACTED]"),
            ("X-Api-Key: <Zq9\nnext: 1", "X-Api-Key: [REDACTED]\nnext: 1"),
            ("password=&lt;Zq9", "password=[REDACTED]"),
            ("password&equals;&lt;Zq9", "password&equals;[REDACTED]"),
            ("password&equals;&comma;Zq9", "password&equals;[REDACTED]"),
            (
                "{&quot;password&quot;&colon; &lt;Zq9}",
                "{&quot;password&quot;&colon; [REDACTED]}",
            ),
            // An empty value before what plainly follows one keeps what follows.
            (
                "<td>password=</td><td>1</td>",
                "<td>password=</td><td>1</td>",
            ),
            ("password=&lt;/td&gt;", "password=&lt;/td&gt;"),
            ("password=&user=bob", "password=&user=bob"),
            ("password=&amp;user=bob", "password=&amp;user=bob"),
            (
                "User(name=ann, password=, email=x)",
                "User(name=ann, password=, email=x)",
            ),
            (
                "theme=dark; session=; Path=/",
                "theme=dark; session=; Path=/",
            ),
            ("password=abc</td>", "password=[REDACTED]</td>"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// A pair whose value starts with a sensitive element (`token=<password>a;b</password>`):
    /// since a value may start with `<` (a2b4248), the pair took the start tag into its value
    /// and replaced it before the element rule read the text, so the element's content past
    /// the pair's value (`;b`) was kept; before, the element rule redacted all of it.
    #[test]
    fn a_pair_whose_value_starts_with_a_sensitive_element_keeps_the_element_redacted() {
        let cases = [
            (
                "token=<password>a;b</password> next",
                "token=[REDACTED]</password> next",
            ),
            (
                "api_key=<api_key>ab,cd</api_key>",
                "api_key=[REDACTED]</api_key>",
            ),
            (
                "secret=&lt;password&gt;a;b&lt;/password&gt; x",
                "secret=[REDACTED]&lt;/password&gt; x",
            ),
            ("password=<pin>1;2</pin>", "password=[REDACTED]</pin>"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// A quote written twice inside a value quoted with it, as YAML's single-quoted strings,
    /// SQL, CSV and .NET connection strings escape it (`'it''s'`, `Password="a""b"`): the
    /// value ended at the first of the two and the rest was stored.
    #[test]
    fn a_quote_written_twice_inside_a_quoted_value_does_not_close_it() {
        let cases = [
            (
                r#"Server=db;Password="ab""c;d";User Id=sa"#,
                "Server=db;Password=[REDACTED];User Id=sa",
            ),
            (
                "password: 'it''s;secret'\nnext: 1",
                "password: [REDACTED]\nnext: 1",
            ),
            (
                "PASSWORD = 'a''b,c' WHERE x",
                "PASSWORD = [REDACTED] WHERE x",
            ),
            // A value quoted once is as before.
            (
                r#"password="ab" user="x""#,
                r#"password=[REDACTED] user="x""#,
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// A sensitive pair inside the value of another (`password=x token="a, b"`): the pair rule
    /// skipped every key inside a value it had redacted, so where the inner value runs past
    /// the outer one (a quote that holds a `,`, a value that starts with `,` or `<`), the rest
    /// was kept. More values read the next pair into theirs since a value may start with `<`,
    /// `,`, `;` or `&` and a quote glued to more of its value does not close it.
    #[test]
    fn a_pair_inside_a_redacted_value_is_redacted_to_its_own_end() {
        let cases = [
            (r#"password=<b> token="a, b""#, "password=[REDACTED]"),
            (
                r#"password=,Zq9 token="a, b" next=1"#,
                "password=[REDACTED] next=1",
            ),
            (r#"password="ab"cd token="a; b""#, "password=[REDACTED]"),
            (
                "password=&lt;b&gt; token=&quot;a, b&quot;",
                "password=[REDACTED]",
            ),
            (
                r#"login password=abc secret="Zq9;rest" next=1"#,
                "login password=[REDACTED] next=1",
            ),
            ("password=x token=,Zq9", "password=[REDACTED]"),
            ("password=x token=<Zq9", "password=[REDACTED]"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// A key written with a character keys lose when normalized, as it is rather than as a
    /// reference: a Unicode space, dash or invisible character (`api\u{2010}key`,
    /// `pass\u{ad}word`). Form field names and JSON keys are normalized whole, but the pair
    /// rule took only ASCII for a key's characters, so the key was `key` or none and its value
    /// was kept.
    #[test]
    fn keys_written_with_spaces_dashes_and_invisible_characters_in_pairs() {
        let cases = [
            ("api\u{2010}key=abc123 x", "api\u{2010}key=[REDACTED]"),
            ("api\u{2013}key: abc123", "api\u{2013}key: [REDACTED]"),
            ("pass\u{ad}word=abc123", "pass\u{ad}word=[REDACTED]"),
            ("api\u{200b}key: abc123", "api\u{200b}key: [REDACTED]"),
            ("api\u{a0}key=abc123", "api\u{a0}key=[REDACTED]"),
            ("api\u{2060}key=abc123", "api\u{2060}key=[REDACTED]"),
            ("x \u{feff}password=abc123", "x \u{feff}password=[REDACTED]"),
            // Around a key, such a character is no part of it.
            (
                "a \u{2014} password=abc123",
                "a \u{2014} password=[REDACTED]",
            ),
            ("Item\u{a0}1=abc", "Item\u{a0}1=abc"),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// A key spelled with an HTML5 name of a character keys lose when normalized: a Unicode
    /// space, a dash, an invisible character (`api&ensp;key`, `api&hyphen;key`,
    /// `api&ZeroWidthSpace;key`, `pass&shy;word`), or its number. Only names of ASCII
    /// characters and `&nbsp;` were decoded, so the field's name or the pair's key was no key
    /// and its value was kept.
    #[test]
    fn keys_spelled_with_names_of_spaces_dashes_and_invisible_characters() {
        let mut cases = Vec::new();
        for name in [
            "&ensp;",
            "&emsp;",
            "&emsp13;",
            "&thinsp;",
            "&ThinSpace;",
            "&hairsp;",
            "&MediumSpace;",
            "&hyphen;",
            "&dash;",
            "&ndash;",
            "&mdash;",
            "&minus;",
            "&NoBreak;",
            "&ZeroWidthSpace;",
            "&NegativeVeryThinSpace;",
            "&zwj;",
            "&zwnj;",
            "&shy;",
            "&lrm;",
            "&InvisibleTimes;",
            "&nbsp;",
            "&#8203;",
            "&#x2010;",
        ] {
            cases.push((
                format!("api{name}key=abc123&amp;page=2"),
                format!("api{name}key=[REDACTED]&amp;page=2"),
            ));
            cases.push((
                format!("pass{name}word: abc123"),
                format!("pass{name}word: [REDACTED]"),
            ));
            cases.push((
                format!(r#"<input name="api{name}key" value="abc123">"#),
                format!(r#"<input name="api{name}key" value="[REDACTED]">"#),
            ));
        }
        cases.extend(
            [
                (
                    "password&ZeroWidthSpace;=abc123",
                    "password&ZeroWidthSpace;=[REDACTED]",
                ),
                (
                    "{&quot;api&zwj;key&quot;: &quot;abc123&quot;}",
                    "{&quot;api&zwj;key&quot;: [REDACTED]}",
                ),
                (
                    "&lt;input name=&quot;api&hyphen;key&quot; value=&quot;abc123&quot;&gt;",
                    "&lt;input name=&quot;api&hyphen;key&quot; value=&quot;[REDACTED]&quot;&gt;",
                ),
                // Prose with such names, and keys that hold no secret, stay as they came.
                (
                    "Item&nbsp;1 &mdash; 10&thinsp;km, user&ensp;name=ann &ZeroWidthSpace;x: 1",
                    "Item&nbsp;1 &mdash; 10&thinsp;km, user&ensp;name=ann &ZeroWidthSpace;x: 1",
                ),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned())),
        );
        let cases: Vec<(&str, &str)> = cases.iter().map(|(a, b)| (&**a, &**b)).collect();
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// A quote inside a value quoted with the same quote (`value=&quot;ab&quot;cd&quot;`, a
    /// tag escaped into text from a page that did not escape its value): the value ended at
    /// the first quote and the rest, `cd`, was kept as an attribute's name. Such a value is
    /// ambiguous, and goes to the end of its tag.
    #[test]
    fn a_quote_inside_a_value_quoted_with_it_takes_the_rest_of_the_tag() {
        let cases = [
            (
                "&lt;input type=&quot;password&quot; value=&quot;ab&quot;cd&quot;&gt;&lt;p&gt;ok",
                "&lt;input type=&quot;password&quot; value=&quot;[REDACTED]&gt;&lt;p&gt;ok",
            ),
            (
                "&lt;input value=&quot;ab&quot;cd&quot; type=&quot;password&quot;&gt;",
                "&lt;input value=&quot;[REDACTED]&gt;",
            ),
            (
                "&lt;input type=&quot;password&quot; value=&quot;ab&quot; cd&quot;&gt;",
                "&lt;input type=&quot;password&quot; value=&quot;[REDACTED]&gt;",
            ),
            (
                "&lt;input type=password value=&quot;ab&quot;&sol;cd&quot;&gt;",
                "&lt;input type=password value=&quot;[REDACTED]&gt;",
            ),
            (
                "&lt;input type=&#34;password&#34; value=&#34;ab&#34;cd&#34;&gt;",
                "&lt;input type=&#34;password&#34; value=&#34;[REDACTED]&gt;",
            ),
            (
                "&amp;lt;input name=&amp;quot;pin&amp;quot; value=&amp;quot;ab&amp;quot;cd&amp;quot;&amp;gt;",
                "&amp;lt;input name=&amp;quot;pin&amp;quot; value=&amp;quot;[REDACTED]&amp;gt;",
            ),
            (
                "&lt;input type=&quot;password&quot; value=&quot;ab&quot;cd=&quot;x&quot;&gt;",
                "&lt;input type=&quot;password&quot; value=&quot;[REDACTED]&gt;",
            ),
            (
                r#"<input type="password" value="ab"cd"> <p>ok</p>"#,
                r#"<input type="password" value="[REDACTED]> <p>ok</p>"#,
            ),
            (
                r#"<input type=\"password\" value=\"ab\"cd\">"#,
                r#"<input type=\"password\" value=\"[REDACTED]>"#,
            ),
            // So in a pair: the value goes on as an unquoted one.
            (
                "password: &quot;ab&quot;cd&quot;, next: 1",
                "password: [REDACTED], next: 1",
            ),
            (
                r#"password: "ab"cd", next: 1"#,
                "password: [REDACTED], next: 1",
            ),
            // Quotes that close their values stay apart.
            (
                "&lt;input type=&quot;password&quot; value=&quot;ab&quot;&NewLine;id=&quot;x&quot;&gt;",
                "&lt;input type=&quot;password&quot; value=&quot;[REDACTED]&quot;&NewLine;id=&quot;x&quot;&gt;",
            ),
            (
                r#"<input type="password" value="ab"/><a title="x"y">"#,
                r#"<input type="password" value="[REDACTED]"/><a title="x"y">"#,
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], true);
        for (line, want) in cases {
            assert_eq!(Redactor::default().redact_error(line), want, "{line}");
        }
    }

    /// The same pairs as Go's encoding/json writes them, `&` as `\u0026`, in a JSON document
    /// quoted in a log line or an error: the tag rules read `\u0026lt;` as `<`, but the pair
    /// rule did not read `\u0026quot;` as a quote, and the token was kept.
    #[test]
    fn pairs_quoted_with_go_escaped_references() {
        let cases = [
            (
                r#"page: <div data-props=\"{\u0026quot;user\u0026quot;:\u0026quot;ann\u0026quot;,\u0026quot;csrfToken\u0026quot;:\u0026quot;abc 123\u0026quot;}\">"#,
                r#"page: <div data-props=\"{\u0026quot;user\u0026quot;:\u0026quot;ann\u0026quot;,\u0026quot;csrfToken\u0026quot;:[REDACTED]}\">"#,
            ),
            (
                r"password: \u0026quot;hunter2 x\u0026quot;, user: \u0026#39;ann\u0026#39;",
                r"password: [REDACTED], user: \u0026#39;ann\u0026#39;",
            ),
        ];
        redacted_as(&cases, &["text/html", "text/plain"], false);
    }

    /// JSON written by .NET's System.Text.Json, which escapes `"` in a string as `\u0022`, quoted
    /// in a log line or an error: the key was read with its quote (`password"`, no key) and the
    /// whole document kept.
    #[test]
    fn pairs_quoted_with_json_escapes() {
        let line = concat!(
            r"log: {\u0022user\u0022:\u0022ann\u0022,\u0022password\u0022:\u0022a, b\u0022,",
            r"\u0022pin\u0022 : \u00271 2\u0027,\u0022next\u0022:1}"
        );
        let want = concat!(
            r"log: {\u0022user\u0022:\u0022ann\u0022,\u0022password\u0022:[REDACTED],",
            r"\u0022pin\u0022 : [REDACTED],\u0022next\u0022:1}"
        );
        redacted_in_text_and_errors(line, want, &["text/plain", "text/html"]);
    }

    /// A secret under another attribute than `value`: the field rule knew only `value` and
    /// took only `name` and `id` for a field's name, so a CSRF token in a `<meta>`, a .NET
    /// config's password and a secret `<select>`'s options were kept.
    #[test]
    fn secrets_under_other_attribute_names() {
        let cases = [
            (
                r#"<head><meta name="csrf-token" content="abc123"><meta name="viewport" content="width=device-width"></head>"#,
                r#"<head><meta name="csrf-token" content="[REDACTED]"><meta name="viewport" content="width=device-width"></head>"#,
            ),
            (
                r#"<meta content="abc123" property="api_key"/><meta property="og:title" content="Hi">"#,
                r#"<meta content="[REDACTED]" property="api_key"/><meta property="og:title" content="Hi">"#,
            ),
            (
                "<appSettings>\n  <add key=\"Password\" value=\"s3cret\"/>\n  <add key=\"Theme\" value=\"dark\"/>\n</appSettings>",
                "<appSettings>\n  <add key=\"Password\" value=\"[REDACTED]\"/>\n  <add key=\"Theme\" value=\"dark\"/>\n</appSettings>",
            ),
            (
                r#"<add connectionString="s3cret" name="Api.Token"/>"#,
                r#"<add connectionString="[REDACTED]" name="Api.Token"/>"#,
            ),
            (
                "<select name=\"password\">\n<option value=\"s3cret\">s3cret</option><option selected>hunter2</option>\n</SELECT><select name=size><option value=m>M</option></select>",
                "<select name=\"password\">[REDACTED]</SELECT><select name=size><option value=m>M</option></select>",
            ),
        ];
        redacted_as(
            &cases,
            &["text/html", "application/xml", "text/plain"],
            true,
        );
        // A connection string's password goes by the pair rule, whatever the entry is named.
        let config = r#"<add name="DbConnection" connectionString="Server=db;User Id=app;Password=s3cret;Pooling=true"/>"#;
        let out = redact(Some("application/xml"), config.as_bytes()).unwrap();
        assert!(!out.contains("s3cret"), "{out}");
    }

    /// An XML element written as Go's encoding/json writes tags (`\u003c`, `\u003e`) in a text
    /// that is no JSON document (a log line, an error): the element rule looked for a plain `<`
    /// only. The JSON string path decodes `\u003c` first, and already redacted it.
    #[test]
    fn go_escaped_elements_in_text() {
        let line = concat!(
            r#"level=warn body={"xml":"\u003clogin\u003e\u003cuser\u003eann\u003c/user\u003e"#,
            r#"\u003cpassword\u003ehunter2\u003c/password\u003e"#,
            r#"\u003cns2:Pin a=\"1\"\u003e1234\u003c/ns2:Pin \u003e\u003ctoken/\u003e"#,
            r#"\u003cp\u003eok\u003c/p\u003e\u003c/login\u003e"} done"#
        );
        let want = concat!(
            r#"level=warn body={"xml":"\u003clogin\u003e\u003cuser\u003eann\u003c/user\u003e"#,
            r#"\u003cpassword\u003e[REDACTED]\u003c/password\u003e"#,
            r#"\u003cns2:Pin a=\"1\"\u003e[REDACTED]\u003c/ns2:Pin \u003e\u003ctoken/\u003e"#,
            r#"\u003cp\u003eok\u003c/p\u003e\u003c/login\u003e"} done"#
        );
        redacted_in_text_and_errors(line, want, &["text/plain", "text/html", "application/xml"]);
        assert_eq!(
            redact(
                Some("text/plain"),
                br"a \u003cpassword\u003ehunter2\u003C/password\u003E b"
            )
            .as_deref(),
            Some(r"a \u003cpassword\u003e[REDACTED]\u003C/password\u003E b")
        );
        // No end tag: a cut document, failed closed.
        assert_eq!(
            redact(Some("text/plain"), br"x \u003csecret\u003ehunter2 and more").as_deref(),
            Some(r"x \u003csecret\u003e[REDACTED]")
        );
    }

    /// A form field in JSON written by .NET's System.Text.Json, which escapes `"` in a string as
    /// `\u0022` (and `<` as `\u003C`), quoted in a log line: since 0ad5e39 the field's name is
    /// decoded and found sensitive, but its value was read as unquoted, up to the first space,
    /// and a passphrase kept all its words but the first.
    #[test]
    fn form_values_quoted_with_json_escapes() {
        let line = concat!(
            r"log: \u003Cinput name=\u0022password\u0022 value=\u0022correct horse\u0022\u003E",
            r" \u003Cinput name=\u0027pin\u0027 value=\u002712 34\u0027\u003E",
            r" \u003Cinput name=\u0022q\u0022 value=\u0022kept as is\u0022\u003E"
        );
        let want = concat!(
            r"log: \u003Cinput name=\u0022password\u0022 value=\u0022[REDACTED]\u0022\u003E",
            r" \u003Cinput name=\u0027pin\u0027 value=\u0027[REDACTED]\u0027\u003E",
            r" \u003Cinput name=\u0022q\u0022 value=\u0022kept as is\u0022\u003E"
        );
        redacted_in_text_and_errors(line, want, &["text/plain", "text/html"]);
        // In a plain tag, `\u0022` is text: an unquoted value's, up to the space.
        let plain = r"<input name=q value=\u0022a b=1> <p>kept</p>";
        assert_eq!(
            redact(Some("text/html"), plain.as_bytes()).as_deref(),
            Some(plain)
        );
    }

    /// Free text in a JSON string cut by the capture cap keeps its pairs' and fields' rules.
    #[test]
    fn free_text_in_a_json_string_cut_by_the_cap() {
        let body = br#"{"n":1,"log":"login user=ann password=TOPSECRETVALUE ok <pin>TOPSECRET2</pin> <input name=pin value=TOPSECRET3> end"}"#;
        for at in 1..=body.len() {
            for ct in ["application/json", "text/plain"] {
                let out = cut(ct, body, at);
                assert!(!out.contains("TOPS"), "cut at {at}: {out}");
            }
        }
    }

    #[test]
    fn invalid_utf8() {
        let out = redact(Some("text/plain"), b"caf\xe9 password=hunter2").unwrap();
        assert_eq!(out, "caf\u{FFFD} password=[REDACTED]");
        let out = redact(
            Some("application/x-www-form-urlencoded"),
            b"a=\xff&token=abc",
        )
        .unwrap();
        assert_eq!(out, "a=\u{FFFD}&token=[REDACTED]");
        let out = redact(
            Some("application/json"),
            b"{\"a\":\"\xff\",\"token\":\"abc\"}",
        )
        .unwrap();
        assert_eq!(out, "{\"a\":\" …[invalid UTF-8 at byte 6]");
        // Without a content type, invalid UTF-8 is binary.
        assert_eq!(
            redact(None, b"\x89PNG\r\n\x1a\n\0\0").as_deref(),
            Some("[binary, 10 bytes]")
        );
    }

    /// NDJSON, JSON Lines and JSON text sequences were binary bodies. Each record is redacted
    /// as JSON, name/value pairs included; line breaks and record separators stay as they came;
    /// a line that is no JSON is redacted as text.
    #[test]
    fn json_lines_bodies() {
        let body = concat!(
            "{\"user\":\"ann\", \"password\":\"hunter1\"}\n",
            "{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"}\r\n",
            "\n",
            "[1,{\"api_key\":\"hunter3\"}]\r\n",
            "\"a string\"\n",
            "not json password=hunter4 ok\n",
            "{\"token\":\"hunter5\", broken\n",
            "{\"a\":1} {\"name\":\"pin\",\"value\":\"hunter6\"}\n",
        );
        let want = concat!(
            "{\"user\":\"ann\",\"password\":\"[REDACTED]\"}\n",
            "{\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"}\r\n",
            "\n",
            "[1,{\"api_key\":\"[REDACTED]\"}]\r\n",
            "\"a string\"\n",
            "not json password=[REDACTED]\n",
            "{\"token\":\"[REDACTED]\", broken\n",
            "{\"a\":1} {\"name\":\"pin\",\"value\":\"[REDACTED]\"}\n",
        );
        for ct in [
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
            "application/x-jsonlines",
        ] {
            assert_eq!(
                redact(Some(ct), body.as_bytes()).as_deref(),
                Some(want),
                "{ct}"
            );
        }
        // RFC 7464: each record starts with a record separator.
        let seq = "\x1e{\"password\":\"hunter1\"}\n\x1e{\"n\":1}\n\x1e[\"x\"]\x1e3\n";
        assert_eq!(
            redact(Some("application/json-seq"), seq.as_bytes()).as_deref(),
            Some("\x1e{\"password\":\"[REDACTED]\"}\n\x1e{\"n\":1}\n\x1e[\"x\"]\x1e3\n")
        );
        assert_eq!(
            redact(Some("application/x-ndjson"), b"{\"a\":1}\n{\"b\":2}").as_deref(),
            Some("{\"a\":1}\n{\"b\":2}")
        );
        // A record that runs over lines, pretty-printed, as a JSON text sequence allows: its
        // name and value on different lines are read as one document's, and stored compactly.
        let cases = [
            (
                "{\"name\":\"pin\",\n\"value\":\"hunter1\"}\n{\"a\":1}\n",
                "{\"name\":\"pin\",\"value\":\"[REDACTED]\"}\n{\"a\":1}\n",
            ),
            (
                "\x1e{\n  \"name\": \"DB_PASSWORD\",\r\n  \"value\":\n    \"hunter2\"\n}\r\n\x1e[1,\n2]",
                "\x1e{\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"}\r\n\x1e[1,2]",
            ),
            // One that stops being JSON: it is JSON (a cut document) up to where it stops, and
            // text from there to that line's end; the lines after it are records again.
            (
                "{\n\"name\":\"pin\",\n\"value\":\"hunter3\",\nbroken\n}\n{\"token\":\"hunter4\"}\n",
                "{\"name\":\"pin\",\"value\":\"[REDACTED]\",\nbroken\n}\n{\"token\":\"[REDACTED]\"}\n",
            ),
            // One that stops at a later line's start ends on the line before: that line is a
            // record of its own.
            (
                "{\n{\"password\":\"hunter5\"}\n{\"n\":1}\n[\n",
                "{\n{\"password\":\"[REDACTED]\"}\n{\"n\":1}\n[\n",
            ),
            ("{\"a\":\n1} x\n{\"b\":\n2}\n", "{\"a\":1} x\n{\"b\":2}\n"),
        ];
        for (body, want) in cases {
            for ct in ["application/x-ndjson", "application/json-seq"] {
                let out = redact(Some(ct), body.as_bytes());
                assert_eq!(out.as_deref(), Some(want), "{ct}: {body:?}");
            }
        }
        // Invalid UTF-8 is text's replacement character, the line read as text.
        assert_eq!(
            redact(Some("application/x-ndjson"), b"{\"a\":\"\xff\"}\ntoken=x\n").as_deref(),
            Some("{\"a\":\"\u{FFFD}\"}\ntoken=[REDACTED]\n")
        );
    }

    /// An NDJSON body cut by the capture cap: its last line is a cut JSON body, every line
    /// before it whole; no secret shows at any cut.
    #[test]
    fn json_lines_cut_by_the_cap() {
        let body = concat!(
            "{\"id\":1,\"password\":\"TOPSECRET1\"}\n",
            "{\"value\":\"TOPSECRET2\",\"name\":\"token\"}\r\n",
            "\x1e{\"name\":\"pin\",\"value\":\"TOPSECRET3\"}\n",
            "log client_secret=TOPSECRET4 x\n",
            "{\"é\":\"a\",\"api_key\":\"TOPSECRET5\"}\n",
            "{\n  \"name\": \"otp\",\n  \"value\": \"TOPSECRET6\"\n}\n",
            "{\n\"name\":\"pin\",\n\"value\":\"TOPSECRET7\", x\n}\n",
        );
        for at in 1..body.len() {
            let out = cut("application/x-ndjson", body.as_bytes(), at);
            assert!(!out.contains("TOP"), "cut at {at}: {out}");
            assert!(
                out.ends_with(&format!(" …[truncated, {} bytes total]", body.len())),
                "{out}"
            );
        }
        let second = body.find("{\"value").unwrap();
        assert_eq!(
            cut("application/x-ndjson", body.as_bytes(), second + 5),
            format!(
                "{{\"id\":1,\"password\":\"[REDACTED]\"}}\n{{ …[truncated, {} bytes total]",
                body.len()
            )
        );
    }

    /// Textual `application/*` types were binary bodies; they are read as text, and the
    /// common forms of a secret in each are redacted.
    #[test]
    fn textual_application_bodies() {
        let cases = [
            ("application/javascript", "const password = \"hunter2\";"),
            ("application/x-javascript", "init({ apiKey: 'hunter2' });"),
            ("application/ecmascript", "let token = 'hunter2'"),
            ("application/toml", "password = \"hunter2\""),
            (
                "application/toml",
                "[db]\npassword = 'hunter2'\nport = 5432",
            ),
            ("application/sql", "CREATE USER u IDENTIFIED BY 'hunter2';"),
            ("application/sql", "ALTER USER app WITH PASSWORD 'hunter2';"),
            (
                "application/sql",
                "create role app login password 'hunter2'",
            ),
            (
                "application/graphql",
                "mutation { login(user: \"a\", password: \"hunter2\") { token } }",
            ),
            ("application/x-sh", "export DB_PASSWORD=hunter2\nrun"),
            ("application/x-sh", "mysql -uroot -phunter2 app"),
        ];
        for (ct, body) in cases {
            let out = redact(Some(ct), body.as_bytes()).unwrap();
            assert!(!out.contains("hunter2"), "{ct}: {body}\n{out}");
            assert!(out.contains("[REDACTED]"), "{ct}: {body}\n{out}");
        }
        assert_eq!(
            redact(Some("application/javascript"), b"const port = 80;").as_deref(),
            Some("const port = 80;")
        );
    }

    #[test]
    fn binary_bodies_are_described() {
        let input = BodyInput {
            total_len: 1234,
            truncated: true,
            ..BodyInput::new(Some("application/grpc"), b"\0\0\x01")
        };
        assert_eq!(
            Redactor::default().redact_body(&input).as_deref(),
            Some("[binary application/grpc, 1234 bytes]")
        );
        assert_eq!(
            redact(Some("image/png"), b"x").as_deref(),
            Some("[binary image/png, 1 bytes]")
        );
        assert_eq!(
            redact(Some("application/octet-stream"), b"password=x").as_deref(),
            Some("[binary application/octet-stream, 10 bytes]")
        );
    }

    #[test]
    fn multipart_upload() {
        let body = b"--b0undary\r\n\
            Content-Disposition: form-data; name=\"title\"\r\n\r\n\
            holiday\r\n--b0undary\r\n\
            Content-Disposition: form-data; name=\"photo\"; filename=\"beach.jpg\"\r\n\
            Content-Type: image/jpeg\r\n\r\n\
            \xff\xd8JPEG-BYTES-password=x\r\n--b0undary--\r\n";
        let out = redact(Some("multipart/form-data; boundary=b0undary"), body).unwrap();
        assert_eq!(
            out,
            r#"[{"name":"title","size":7,"value":"holiday"},{"name":"photo","filename":"beach.jpg","content_type":"image/jpeg","size":23}]"#
        );
        assert!(!out.contains("JPEG-BYTES"));
        assert_eq!(
            redact(Some("multipart/form-data"), body).as_deref(),
            Some(&*format!(
                "[unparsable multipart/form-data, {} bytes]",
                body.len()
            ))
        );
    }

    #[test]
    fn gzip_body() {
        let json = br#"{"user":"ann","password":"hunter2"}"#;
        let zipped = gzip(json, Compression::default());
        let input = BodyInput {
            content_encoding: Some("gzip"),
            ..BodyInput::new(Some("application/json"), &zipped)
        };
        assert_eq!(
            Redactor::default().redact_body(&input).as_deref(),
            Some(r#"{"user":"ann","password":"[REDACTED]"}"#)
        );
    }

    #[test]
    fn gzip_bomb_stays_bounded() {
        let mut json = br#"{"password":"hunter2","pad":""#.to_vec();
        json.resize(20 * 1024 * 1024, b'a');
        json.extend_from_slice(b"\"}");
        let bomb = gzip(&json, Compression::best());
        assert!(bomb.len() < 64 * 1024);
        let input = BodyInput {
            content_encoding: Some("gzip"),
            ..BodyInput::new(Some("application/json"), &bomb)
        };
        let redactor = Redactor::builder().max_decoded_bytes(4096).build();
        let out = redactor.redact_body(&input).unwrap();
        assert!(out.len() < 4096 + 200, "{}", out.len());
        assert!(out.starts_with(r#"{"password":"[REDACTED]","pad":""#));
        assert!(
            out.ends_with(&format!(
                " …[truncated, 4096 bytes decoded from {} gzip bytes]",
                bomb.len()
            )),
            "{}",
            &out[out.len() - 80..]
        );
    }

    /// Found by a probe: a JSON body that starts with a byte order mark was stored as
    /// ` …[invalid JSON at byte 0]`, the whole body lost.
    #[test]
    fn a_json_body_after_a_byte_order_mark_is_read() {
        for content_type in ["application/json", "application/problem+json"] {
            let input = BodyInput::new(
                Some(content_type),
                b"\xEF\xBB\xBF{\"user\":\"ann\",\"password\":\"hunter2\"}",
            );
            assert_eq!(
                Redactor::default().redact_body(&input).as_deref(),
                Some(r#"{"user":"ann","password":"[REDACTED]"}"#),
                "{content_type}"
            );
        }
    }

    /// Found by a probe: a coding the redactor does not decode was quoted as the client sent
    /// it, a token or a card number too, and at any length.
    #[test]
    fn an_unknown_codings_name_is_kept_only_when_it_has_a_codings_shape() {
        let described = |coding: &str| {
            let input = BodyInput {
                content_encoding: Some(coding),
                ..BodyInput::new(Some("application/json"), b"{\"a\":1}")
            };
            Redactor::default().redact_body(&input).unwrap_or_default()
        };
        for kept in ["br", "zstd", "x-compress", "aes128gcm", "exi"] {
            assert_eq!(
                described(kept),
                format!("[{kept}-encoded application/json, 7 bytes]")
            );
        }
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        for secret in [
            jwt,
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "4111111111111111",
            "password=hunter2",
            "Bearer abcDEF123456",
            &format!("gzip, {jwt}"),
            &"z".repeat(20_000),
        ] {
            assert_eq!(
                described(secret),
                "[unknown-encoded application/json, 7 bytes]",
                "{secret}"
            );
        }
    }

    #[test]
    fn unknown_and_broken_encodings_are_described() {
        let input = BodyInput {
            content_encoding: Some("br"),
            ..BodyInput::new(Some("application/json"), b"\x1b\x00")
        };
        assert_eq!(
            Redactor::default().redact_body(&input).as_deref(),
            Some("[br-encoded application/json, 2 bytes]")
        );
        let input = BodyInput {
            content_encoding: Some("gzip"),
            ..BodyInput::new(Some("text/plain"), b"not gzip")
        };
        assert_eq!(
            Redactor::default().redact_body(&input).as_deref(),
            Some("[undecodable text/plain, 8 bytes]")
        );
    }

    #[test]
    fn route_body_fn_replaces_default_handling() {
        let redactor = Redactor::builder()
            .route_body_fn("/upload/{id}", |body: &BodyInput<'_>| {
                Some(format!("custom {} bytes", body.total_len))
            })
            .build();
        let mut input = BodyInput::new(Some("application/json"), br#"{"password":"x"}"#);
        input.route = Some("/upload/{id}");
        assert_eq!(
            redactor.redact_body(&input).as_deref(),
            Some("custom 16 bytes")
        );
        input.route = Some("/upload");
        assert_eq!(
            redactor.redact_body(&input).as_deref(),
            Some(r#"{"password":"[REDACTED]"}"#)
        );
    }
}
