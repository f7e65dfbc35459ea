//! Property test: no secret planted under a sensitive key ever reaches the output, whatever
//! the document, the key's spelling, the point where the capture cap cuts it, and whether it
//! is sent as JSON or as `text/plain`.

use proptest::prelude::*;
use proptest::sample::select;

use super::{BodyInput, Redactor};

/// A generated JSON document.
#[derive(Debug, Clone)]
enum Doc {
    Null,
    Bool(bool),
    Int(i32),
    Float(f64),
    Str(String),
    Arr(Vec<Doc>),
    /// Entries are (key as written in JSON, without quotes; value).
    Obj(Vec<(String, Doc)>),
    /// The value of a sensitive key.
    Secret(Secret),
}

#[derive(Debug, Clone)]
enum Secret {
    Str(String),
    /// Digits, written as a JSON number.
    Num(String),
    /// A `SECRET-...` string inside a nested object.
    Nested(String),
}

impl Secret {
    fn text(&self) -> &str {
        match self {
            Self::Str(s) | Self::Num(s) | Self::Nested(s) => s,
        }
    }
}

/// Ordinary text: lowercase, digits, escapes and non-ASCII, but no uppercase, so it can never
/// contain `SECRET`.
fn ordinary_string() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        8 => prop::char::range('a', 'z'),
        2 => prop::char::range('0', '9'),
        1 => select(vec![' ', '"', '\\', '\n', '\t', 'é', '😀', '\u{1}', '/', '-']),
    ];
    prop::collection::vec(c, 0..20).prop_map(|v| v.into_iter().collect())
}

fn secret() -> impl Strategy<Value = Secret> {
    let token = "[A-Z0-9]{8,20}".prop_map(|s| format!("SECRET-{s}"));
    prop_oneof![
        3 => token.clone().prop_map(Secret::Str),
        1 => "[0-9]{10,14}".prop_map(|d| Secret::Num(format!("97531{d}"))),
        1 => token.prop_map(Secret::Nested),
    ]
}

/// A sensitive key in a random spelling: case, separators and one `\u00XX` escape.
fn sensitive_key() -> impl Strategy<Value = String> {
    let bases = vec![
        "password",
        "api_key",
        "access_token",
        "client_secret",
        "token",
        "secret",
        "cvv",
        "private_key",
        "authorization",
        "pwd",
    ];
    (
        select(bases),
        prop::collection::vec((any::<bool>(), 0u8..12), 32),
        prop::option::of((any::<prop::sample::Index>(), any::<bool>())),
    )
        .prop_map(|(base, styles, escape)| {
            let letters: Vec<char> = base.chars().filter(|c| *c != '_').collect();
            let escape_at = escape.map(|(i, upper)| (i.index(letters.len()), upper));
            let mut key = String::new();
            for (i, (&c, &(upper, sep))) in letters.iter().zip(&styles).enumerate() {
                let c = if upper { c.to_ascii_uppercase() } else { c };
                match escape_at {
                    Some((at, true)) if at == i => {
                        key.push_str(&format!("\\u{:04X}", u32::from(c)))
                    }
                    Some((at, false)) if at == i => {
                        key.push_str(&format!("\\u{:04x}", u32::from(c)))
                    }
                    _ => key.push(c),
                }
                if i + 1 < letters.len() {
                    match sep {
                        0 => key.push('_'),
                        1 => key.push('-'),
                        2 => key.push('.'),
                        3 => key.push(' '),
                        _ => {}
                    }
                }
            }
            key
        })
}

fn ordinary_key() -> impl Strategy<Value = String> {
    ordinary_string().prop_map(|s| {
        let quoted = serde_json::to_string(&s).unwrap();
        quoted[1..quoted.len() - 1].to_owned()
    })
}

fn doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        Just(Doc::Null),
        any::<bool>().prop_map(Doc::Bool),
        (-9999i32..9999).prop_map(Doc::Int),
        (-1000.0f64..1000.0).prop_map(Doc::Float),
        ordinary_string().prop_map(Doc::Str),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        let entry = prop_oneof![
            4 => (ordinary_key(), inner.clone()),
            1 => (sensitive_key(), secret().prop_map(Doc::Secret)),
        ];
        prop_oneof![
            prop::collection::vec(inner, 0..6).prop_map(Doc::Arr),
            prop::collection::vec(entry, 0..6).prop_map(Doc::Obj),
        ]
    })
}

/// A document with at least one planted secret.
fn planted_doc() -> impl Strategy<Value = Doc> {
    (
        doc(),
        sensitive_key(),
        secret(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(inner, key, secret, at)| {
            let mut entries = vec![("data".to_owned(), inner)];
            entries.insert(at.index(entries.len() + 1), (key, Doc::Secret(secret)));
            Doc::Obj(entries)
        })
}

fn write(doc: &Doc, out: &mut String, secrets: &mut Vec<String>) {
    match doc {
        Doc::Null => out.push_str("null"),
        Doc::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Doc::Int(i) => out.push_str(&i.to_string()),
        Doc::Float(f) => out.push_str(&serde_json::to_string(f).unwrap()),
        Doc::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
        Doc::Arr(items) => {
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out, secrets);
            }
            out.push(']');
        }
        Doc::Obj(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('"');
                out.push_str(key);
                out.push_str("\": ");
                write(value, out, secrets);
            }
            out.push('}');
        }
        Doc::Secret(secret) => {
            secrets.push(secret.text().to_owned());
            match secret {
                Secret::Str(s) => out.push_str(&format!("\"{s}\"")),
                Secret::Num(d) => out.push_str(d),
                Secret::Nested(s) => out.push_str(&format!(
                    "{{\"inner\": [1, \"{s}\", {{\"k\": null}}], \"n\": 2}}"
                )),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn planted_secrets_never_leak(doc in planted_doc(), cut in any::<prop::sample::Index>(), whole in any::<bool>(), ct in select(vec!["application/json", "text/plain"])) {
        let mut json = String::new();
        let mut secrets = Vec::new();
        write(&doc, &mut json, &mut secrets);
        let bytes = json.as_bytes();
        let end = if whole { bytes.len() } else { cut.index(bytes.len() + 1) };
        let input = BodyInput {
            content_type: Some(ct),
            content_encoding: None,
            bytes: &bytes[..end],
            total_len: bytes.len() as u64,
            truncated: end < bytes.len(),
            route: None,
        };
        let out = Redactor::default().redact_body(&input).unwrap_or_default();

        for secret in &secrets {
            let Some(at) = json.find(secret.as_str()) else { continue };
            // The part of the secret that made it into the captured prefix.
            let seen = end.saturating_sub(at).min(secret.len());
            // `SECRET-` is no secret: a sensitive key may be spelled `SECRET` and is kept.
            let public = if secret.starts_with("SECRET-") { "SECRET-".len() } else { 4 };
            if seen > public {
                let leaked = &secret[..seen];
                prop_assert!(!out.contains(leaked), "leaked {leaked:?}\ninput: {}\noutput: {out}", &json[..end]);
            }
        }
        if end == bytes.len() {
            // A complete document comes back as valid JSON.
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&out);
            prop_assert!(parsed.is_ok(), "invalid output {out} for {json}");
        } else if end == 0 {
            prop_assert_eq!(out, format!("[body not captured, {} bytes]", bytes.len()));
        } else {
            prop_assert!(out.ends_with(&format!(" …[truncated, {} bytes total]", bytes.len())), "{out}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), ct in select(vec![
        "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "",
    ]), truncated in any::<bool>()) {
        let input = BodyInput { truncated, ..BodyInput::new(Some(ct), &bytes) };
        let redactor = Redactor::default();
        let _ = redactor.redact_body(&input);
        let _ = redactor.redact_body(&BodyInput { content_encoding: Some("gzip"), ..input });
        let _ = redactor.redact_query(&String::from_utf8_lossy(&bytes));
    }
}
