//! Property tests: no secret planted under a sensitive key ever reaches the output, whatever
//! the document, the key's spelling, the point where the capture cap cuts it, and whether it
//! is sent as JSON or as `text/plain`; nor the value of a secret HTML form field, whatever
//! its attributes' order, case and quoting, as HTML, text, HTML escaped into text (also as
//! PHP's `ENT_HTML5` escapes it) or inside a JSON string.

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

/// An HTML form field's attributes, `(name, value)`, and its secret when it has one: named
/// (`name`, `id`, `key` or `property`) after a sensitive key in any case and spelling, its
/// secret under `value`, `content` or `connectionString`, or of type `password`.
fn html_field() -> impl Strategy<Value = (Vec<(String, String)>, Option<String>)> {
    let word = "[a-z]{1,8}";
    let sensitive_name = (
        select(vec![
            "password",
            "api_key",
            "access_token",
            "pin",
            "secret",
            "cvv",
        ]),
        prop::collection::vec(any::<bool>(), 16),
        select(vec!["", "2", "_confirmation"]),
        any::<bool>(),
    )
        .prop_map(|(base, upper, suffix, path)| {
            let key: String = base
                .chars()
                .zip(upper)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            if path {
                format!("user[{key}{suffix}]")
            } else {
                format!("{key}{suffix}")
            }
        });
    let secret = "[A-Z0-9]{8,20}".prop_map(|s| format!("SECRET-{s}"));
    prop_oneof![
        (
            select(vec!["name", "id", "key", "property"]),
            sensitive_name,
            select(vec!["value", "content", "connectionString"]),
            secret.clone()
        )
            .prop_map(|(attr, name, value, secret)| (
                vec![(attr.to_owned(), name), (value.to_owned(), secret.clone())],
                Some(secret)
            )),
        (word, secret).prop_map(|(name, secret)| (
            vec![
                ("type".to_owned(), "password".to_owned()),
                ("name".to_owned(), name),
                ("value".to_owned(), secret.clone()),
            ],
            Some(secret)
        )),
        (word, word).prop_map(|(name, value)| (
            vec![("name".to_owned(), name), ("value".to_owned(), value)],
            None
        )),
    ]
    .prop_flat_map(|(attrs, secret)| {
        let extra = ("[a-z]{1,6}", "[a-z ]{0,6}").prop_map(|(k, v)| (format!("data-{k}"), v));
        (
            Just(attrs),
            prop::collection::vec(extra, 0..2),
            Just(secret),
        )
            .prop_flat_map(|(mut attrs, extra, secret)| {
                attrs.extend(extra);
                (Just(attrs).prop_shuffle(), Just(secret))
            })
    })
}

/// Writes one field as an `<input>`, each attribute's name in a random case, quoted in a random
/// way, after random space (line breaks included).
fn write_field(attrs: &[(String, String)], style: &[(u8, u8, bool)], out: &mut String) {
    let spaces = [" ", "\n", "\r\n  ", "\t"];
    out.push_str(if style[0].2 { "<INPUT" } else { "<input" });
    for ((name, value), &(space, quote, upper)) in attrs.iter().zip(style) {
        out.push_str(spaces[usize::from(space) % spaces.len()]);
        out.push_str(&if upper {
            name.to_ascii_uppercase()
        } else {
            name.clone()
        });
        out.push_str(if space % 3 == 0 { " = " } else { "=" });
        let unquoted = !value.is_empty() && !value.contains(' ');
        match quote % 3 {
            0 if unquoted => out.push_str(value),
            1 => out.push_str(&format!("'{value}'")),
            _ => out.push_str(&format!("\"{value}\"")),
        }
    }
    out.push_str(if style[1].2 { " />" } else { ">" });
}

/// `text` as PHP's `htmlentities($text, ENT_QUOTES | ENT_HTML5)` writes it: each ASCII
/// character by its HTML5 name, where it has one.
fn html5_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        out.push_str(match c {
            '\t' => "&Tab;",
            '\n' => "&NewLine;",
            '!' => "&excl;",
            '"' => "&quot;",
            '#' => "&num;",
            '$' => "&dollar;",
            '%' => "&percnt;",
            '&' => "&amp;",
            '\'' => "&apos;",
            '(' => "&lpar;",
            ')' => "&rpar;",
            '*' => "&ast;",
            '+' => "&plus;",
            ',' => "&comma;",
            '.' => "&period;",
            '/' => "&sol;",
            ':' => "&colon;",
            ';' => "&semi;",
            '<' => "&lt;",
            '=' => "&equals;",
            '>' => "&gt;",
            '?' => "&quest;",
            '@' => "&commat;",
            '[' => "&lsqb;",
            '\\' => "&bsol;",
            ']' => "&rsqb;",
            '^' => "&Hat;",
            '_' => "&lowbar;",
            '`' => "&grave;",
            '{' => "&lcub;",
            '|' => "&verbar;",
            '}' => "&rcub;",
            c => {
                out.push(c);
                continue;
            }
        });
    }
    out
}

/// A JSON object in a log line that names its value in a sibling member
/// (`{"name":"DB_PASSWORD","value":…}`), its members in a random order with ordinary ones
/// between them, spaced at random: `secret` under a sensitive name, else `80` under `PORT`.
/// Without `close` it stops being JSON where the line goes on (`… (truncated)`).
fn named_value_document(secret: Option<&str>, layout: &NamedLayout) -> String {
    let spaces = ["", " ", "\n  ", "\t"];
    let space = |i: usize| spaces[usize::from(layout.spaces[i % layout.spaces.len()]) % 4];
    let (name, value) = match secret {
        Some(secret) if layout.number => (layout.sensitive, secret.to_owned()),
        Some(secret) => (layout.sensitive, format!("\"{secret}\"")),
        None => ("PORT", "80".to_owned()),
    };
    let mut members = vec![
        format!("\"{}\"{}:{}\"{name}\"", layout.name_key, space(0), space(1)),
        format!("\"{}\"{}:{}{value}", layout.value_key, space(2), space(3)),
    ];
    if layout.value_first {
        members.swap(0, 1);
    }
    for (i, (key, other)) in layout.others.iter().enumerate() {
        let at = usize::from(layout.spaces[i]) % (members.len() + 1);
        members.insert(at, format!("\"{key}\":{}{other}", space(i)));
    }
    let mut doc = format!("{{{}", space(4));
    for (i, member) in members.iter().enumerate() {
        if i > 0 {
            doc.push(',');
            doc.push_str(space(i + 5));
        }
        doc.push_str(member);
    }
    doc.push_str(layout.close);
    if layout.in_array {
        doc = format!("[{doc}, {{\"name\":\"HOST\",\"value\":\"db\"}}]");
    }
    doc
}

/// How [`named_value_document`] writes its document.
#[derive(Debug, Clone)]
struct NamedLayout {
    name_key: &'static str,
    value_key: &'static str,
    sensitive: &'static str,
    value_first: bool,
    number: bool,
    in_array: bool,
    others: Vec<(&'static str, &'static str)>,
    spaces: Vec<u8>,
    close: &'static str,
}

fn named_layout() -> impl Strategy<Value = NamedLayout> {
    (
        (
            select(vec!["name", "Name", "key", "ParameterKey", "field"]),
            select(vec!["value", "Value", "ParameterValue"]),
            select(vec![
                "DB_PASSWORD",
                "api_key",
                "pin",
                "client_secret",
                "Token",
            ]),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        prop::collection::vec(
            (
                select(vec!["user", "region", "n", "é", "s"]),
                select(vec![
                    "\"ann\"",
                    "1.0e3",
                    "-0.5E+2",
                    "\"\\u003ca\\/b\\u003e\"",
                    "\"caf\\u00e9 é\"",
                    "[1, {\"a\": null}]",
                    "{\"b\": \"{\\\"c\\\": 1}\"}",
                ]),
            ),
            0..3,
        ),
        prop::collection::vec(0u8..8, 12),
        select(vec![
            "}",
            " }",
            "}",
            ", oops}",
            ", \"d\": \"long te… (truncated)",
            "",
        ]),
    )
        .prop_map(
            |(
                (name_key, value_key, sensitive, value_first, number, in_array),
                others,
                spaces,
                close,
            )| {
                NamedLayout {
                    name_key,
                    value_key,
                    sensitive,
                    value_first,
                    number,
                    in_array,
                    others,
                    spaces,
                    close,
                }
            },
        )
}

/// Text before a document in a log line: none, prose, a `{"` that is no JSON (`{"unclosed `,
/// `{"a":"`: it reads the document's first quote as its own), Unicode, a backslash.
fn text_before_document() -> impl Strategy<Value = &'static str> {
    select(vec![
        "",
        "request failed: ",
        "err: {\"unclosed ",
        "a {\"a\":\"",
        "{\"x {\"y ",
        "x {b} [c] ",
        "é—ü ",
        "C:\\",
        "{\"a\":1} ",
    ])
}

/// `text` with every byte but letters and digits percent-encoded.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `line` sent as `how`: a text body, a JSON string's log line, a query's or form's value,
/// raw or percent-encoded; its body and content type.
fn sent_as(line: &str, how: &str) -> (String, &'static str) {
    match how {
        "json" => (
            serde_json::to_string(&serde_json::json!({ "n": 1, "log": line })).unwrap(),
            "application/json",
        ),
        // A raw `+` is a space (README: a raw `1E+2` leaves the document no JSON).
        "form" => (
            format!("a=1&f={}", line.replace('&', "%26").replace('+', "%2B")),
            "application/x-www-form-urlencoded",
        ),
        "form encoded" => (
            format!("a=1&f={}", percent_encoded(line)),
            "application/x-www-form-urlencoded",
        ),
        _ => (line.to_owned(), "text/plain"),
    }
}

/// The body input of the first `end` bytes of a body of `ct`, as the capture cap cuts one.
fn cut_input<'a>(ct: &'a str, bytes: &'a [u8], end: usize) -> BodyInput<'a> {
    BodyInput {
        content_type: Some(ct),
        content_encoding: None,
        bytes: &bytes[..end],
        total_len: bytes.len() as u64,
        truncated: end < bytes.len(),
        route: None,
    }
}

/// Runs `text`, and each `(body, content type)`, whole and cut at `cut`, through every entry
/// point of the redactor: a property test that they never panic calls it.
fn through_every_entry_point(
    redactor: &Redactor,
    text: &str,
    bodies: &[(&str, &str)],
    cut: prop::sample::Index,
) {
    for &(body, ct) in bodies {
        let bytes = body.as_bytes();
        let end = cut.index(bytes.len() + 1);
        let _ = redactor.redact_body(&cut_input(ct, bytes, end));
        let _ = redactor.redact_body(&BodyInput::new(Some(ct), bytes));
    }
    let _ = redactor.redact_error(text);
    let _ = redactor.redact_query(text);
    let _ = redactor.redact_cut_query(text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn secret_form_fields_never_leak(
        fields in prop::collection::vec((html_field(), prop::collection::vec((0u8..8, 0u8..6, any::<bool>()), 6)), 1..5),
        cut in any::<prop::sample::Index>(),
        whole in any::<bool>(),
        how in select(vec!["text/html", "text/plain", "json", "json as text", "escaped html", "html5 escaped"]),
    ) {
        let mut html = String::from("<form action=\"/login\">\n");
        let mut secrets = Vec::new();
        for ((attrs, secret), style) in &fields {
            write_field(attrs, style, &mut html);
            html.push_str("<p>a note</p>\n");
            secrets.extend(secret.clone());
        }
        html.push_str("</form>");
        let (body, ct) = match how {
            "json" | "json as text" => (
                serde_json::to_string(&serde_json::json!({ "n": 1, "page": html })).unwrap(),
                if how == "json" { "application/json" } else { "text/plain" },
            ),
            // The page escaped into text, as a template or an error quotes it.
            "escaped html" => (
                html.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
                    .replace('\'', "&#39;"),
                "text/html",
            ),
            "html5 escaped" => (html5_escaped(&html), "text/plain"),
            ct => (html.clone(), ct),
        };
        let bytes = body.as_bytes();
        let end = if whole { bytes.len() } else { cut.index(bytes.len() + 1) };
        let input = cut_input(ct, bytes, end);
        let out = Redactor::default().redact_body(&input).unwrap_or_default();
        for secret in &secrets {
            let Some(at) = body.find(secret.as_str()) else { continue };
            let seen = end.saturating_sub(at).min(secret.len());
            if seen > "SECRET-".len() {
                let leaked = &secret[..seen];
                prop_assert!(!out.contains(leaked), "leaked {leaked:?}\ninput: {}\noutput: {out}", &body[..end]);
            }
        }
    }

    /// A secret under a sensitive key in free text, whatever character it starts with (one that
    /// ends a value further on: `<`, `,`, `;`, `&`, or a reference to one), whether it holds
    /// the quote it is quoted with, and however its key is spelled (with a character keys lose,
    /// by its HTML5 name or number: `api&ensp;key`, `pass&shy;word`), never leaks.
    #[test]
    fn secret_pairs_in_text_never_leak(
        key in select(vec!["password", "api_key", "access_token", "pin", "client_secret"]),
        joiner in select(vec!["", "_", "&ensp;", "&thinsp;", "&hyphen;", "&ndash;", "&ZeroWidthSpace;", "&zwj;", "&shy;", "&NoBreak;", "&#8203;"]),
        split in any::<prop::sample::Index>(),
        before in "([a-z]{1,6} )?",
        separator in select(vec!["=", ": ", " = ", "&equals;", "&colon; "]),
        quote in select(vec!["", "\"", "'", "&quot;", "\\\""]),
        lead in select(vec!["", "<", ",", ";", "&", "&lt;", "&amp;", "&comma;"]),
        (first, second) in ("[A-Z0-9]{6,12}", "[A-Z0-9]{6,12}"),
        inner in select(vec!["", "\"", "'", "&quot;"]),
        after in select(vec!["", " next=1", ", user=ann", "\nuser: ann", "</td>", "&amp;page=2"]),
        how in select(vec!["text/plain", "text/html", "error", "json"]),
    ) {
        let at = split.index(key.len() - 1) + 1;
        let line = format!(
            "{before}{}{joiner}{}{separator}{quote}{lead}SECRET-{first}{inner}TAIL{second}{quote}{after}",
            &key[..at],
            &key[at..],
        );
        let redactor = Redactor::default();
        let out = match how {
            "error" => redactor.redact_error(&line),
            "json" => {
                let json = serde_json::to_string(&serde_json::json!({ "log": line })).unwrap();
                redactor.redact_body(&BodyInput::new(Some("application/json"), json.as_bytes())).unwrap_or_default()
            }
            ct => redactor.redact_body(&BodyInput::new(Some(ct), line.as_bytes())).unwrap_or_default(),
        };
        for part in [format!("SECRET-{first}"), format!("TAIL{second}")] {
            prop_assert!(!out.contains(&part), "leaked {part:?}\ninput: {line}\noutput: {out}");
        }
    }

    #[test]
    fn planted_secrets_never_leak(doc in planted_doc(), cut in any::<prop::sample::Index>(), whole in any::<bool>(), ct in select(vec!["application/json", "text/plain"])) {
        let mut json = String::new();
        let mut secrets = Vec::new();
        write(&doc, &mut json, &mut secrets);
        let bytes = json.as_bytes();
        let end = if whole { bytes.len() } else { cut.index(bytes.len() + 1) };
        let input = cut_input(ct, bytes, end);
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

    /// A value named by a sibling member of a JSON document in a log line never leaks,
    /// whatever the text before it, the members' order and spacing, whether the document
    /// stops being JSON and where the capture cap cuts it, as a text body, in a JSON string
    /// or in a query's or form's value.
    #[test]
    fn named_values_in_documents_in_text_never_leak(
        before in text_before_document(),
        layout in named_layout(),
        core in "[A-Z0-9]{8,16}",
        after in select(vec!["", " (retrying)", " {\"a\":1}", "\n"]),
        how in select(vec!["text", "json", "form", "form encoded"]),
        cut in any::<prop::sample::Index>(),
        whole in any::<bool>(),
    ) {
        // A number's digits, or a string's: what follows `97531` or `SECRET-`.
        let core = if layout.number { core.bytes().map(|b| char::from(b'0' + b % 10)).collect() } else { core };
        let secret = if layout.number { format!("97531{core}") } else { format!("SECRET-{core}") };
        let line = format!("{before}{}{after}", named_value_document(Some(&secret), &layout));
        let (body, ct) = sent_as(&line, how);
        let bytes = body.as_bytes();
        let end = if whole { bytes.len() } else { cut.index(bytes.len() + 1) };
        let input = cut_input(ct, bytes, end);
        let out = Redactor::default().redact_body(&input).unwrap_or_default();
        // The part of it that was captured, six characters or more.
        let at = body.find(core.as_str()).unwrap_or(bytes.len());
        let seen = end.saturating_sub(at).min(core.len());
        if seen >= 6 {
            let leaked = &core[..seen];
            prop_assert!(!out.contains(leaked), "leaked {leaked:?}\ninput: {}\noutput: {out}", &body[..end]);
        }
        // The text around a document that closes stays as it came, byte for byte (a text
        // that is one JSON document goes as JSON, compactly).
        let is_json = serde_json::from_str::<serde_json::Value>(&line).is_ok();
        if how == "text" && end == bytes.len() && !is_json {
            prop_assert!(out.starts_with(before), "{line}\n{out}");
            if layout.close.ends_with('}') && !layout.close.contains("oops") {
                prop_assert!(out.ends_with(after), "{line}\n{out}");
            }
        }
    }

    /// A document that names a value that is no secret (`{"name":"PORT","value":"80"}`), with
    /// its members' odd spacing, escapes, numbers and Unicode, and the text around it, is stored
    /// byte for byte as it came, as a text body, an error, a JSON string's log line and a
    /// query's value, raw or encoded.
    #[test]
    fn documents_without_a_secret_in_text_stay_as_they_came(
        before in text_before_document(),
        layout in named_layout(),
        after in select(vec!["", " (retrying)", " {\"a\":1}", "\n"]),
        how in select(vec!["text", "json", "form", "form encoded"]),
    ) {
        // A form's body loses its last line break.
        let after = if how.starts_with("form") { after.trim_end() } else { after };
        let line = format!("{before}{}{after}", named_value_document(None, &layout));
        // A text that is one JSON document goes as JSON, compactly.
        let how = if serde_json::from_str::<serde_json::Value>(&line).is_ok() && how == "text" { "json" } else { how };
        let (body, ct) = sent_as(&line, how);
        let redactor = Redactor::default();
        let out = redactor.redact_body(&BodyInput::new(Some(ct), body.as_bytes()));
        prop_assert_eq!(out.as_deref(), Some(body.as_str()));
        if how == "text" {
            prop_assert_eq!(redactor.redact_error(&line), line);
        }
    }

    /// Text made of JSON's tokens, broken at random, with multibyte characters and escapes
    /// beside them, never panics, cut anywhere, as a text body, an error, a JSON string, a
    /// query and a form body.
    #[test]
    fn json_shaped_text_never_panics(
        parts in prop::collection::vec(select(vec![
            "{", "{\"", "}", "[", "]", ":", ",", "\"", "\\", "\\\"", "\\u0022", "\\u00", " ", "\n",
            "é", "😀", "name", "value", "\"pin\"", "\"value\"", "\"name\"", "1", "1.0e", "%", "%7B",
            "%22", "%2", "+", "&", "=", "x",
        ]), 0..40),
        cut in any::<prop::sample::Index>(),
    ) {
        let text: String = parts.concat();
        let redactor = Redactor::default();
        let json = serde_json::to_string(&serde_json::json!({ "log": text })).unwrap();
        through_every_entry_point(
            &redactor,
            &text,
            &[
                (text.as_str(), "text/plain"),
                (json.as_str(), "application/json"),
                (text.as_str(), "application/x-www-form-urlencoded"),
            ],
            cut,
        );
    }

    /// The credential after an authorization scheme never leaks, whatever the scheme's case
    /// and however the spaces around it are written (plainly, as a no-break space, a JSON
    /// escape, percent-encoded once or twice, an HTML reference with or without leading
    /// zeros, a form's `+`), as a text body, an error, a page, a JSON string and a form's
    /// value, raw or encoded.
    #[test]
    fn scheme_credentials_never_leak(
        scheme in select(vec!["Bearer", "bearer", "BASIC", "basic", "Token", "token", "bEaReR"]),
        before in select(vec![" ", "\u{a0}", "\\u0020", "%20", "%2520", "&nbsp;", "&#32;", "&#x0020;", "&#0032;"]),
        after in select(vec![
            " ", "\t", "\u{a0}", "\\u0020", "\\u00A0", "%20", "%09", "%C2%A0", "%2520", "&nbsp;",
            "&NonBreakingSpace;", "&Tab;", "&#32;", "&#x20;", "&#x0020;", "&#00032;", "&#160;",
            "&#x00a0;", "+", " %20",
        ]),
        core in "[A-Za-z0-9]{6,12}",
        end in select(vec!["", " ok", "%20ok", "&nbsp;ok", "</td>", "&n=1", "%2C%20ok"]),
        how in select(vec!["text", "error", "html", "json", "form", "form encoded"]),
    ) {
        let line = format!("sent{before}{scheme}{after}SECRET{core}9{end}");
        let redactor = Redactor::default();
        let out = match how {
            "error" => redactor.redact_error(&line),
            "html" => {
                let page = format!("<td>{line}</td>");
                redactor.redact_body(&BodyInput::new(Some("text/html"), page.as_bytes())).unwrap_or_default()
            }
            how => {
                let (body, ct) = sent_as(&line, how);
                redactor.redact_body(&BodyInput::new(Some(ct), body.as_bytes())).unwrap_or_default()
            }
        };
        prop_assert!(!out.contains("SECRET"), "leaked {core:?}\ninput: {line}\noutput: {out}");
    }

    /// Prose written with its spaces and punctuation escaped (percent-encoded, HTML
    /// references, JSON escapes, a form's `+`), the schemes `token` and `basic` among its
    /// words in small letters, keeps every word, as an error, a JSON string and a page.
    #[test]
    fn encoded_prose_after_schemes_keeps_its_words(
        words in prop::collection::vec((
            select(vec![
                "the", "token", "basic", "expired", "usage", "plan", "is", "invalid", "sent", "ok",
                "count", "auth", "failed", "retry", "doesn", "t", "was", "revoked", "again", "fine",
            ]),
            select(vec!["", "", "%2C", "%21", "%2E", "%3B", "%27", "&#39;", "&#x27;", "&#44;", "&period;", "&excl;"]),
            select(vec![" ", "%20", "&nbsp;", "&#32;", "&#x0020;", "&#160;", "%C2%A0", "%2520", "+", "\\u0020", "\u{a0}"]),
        ), 1..12),
        how in select(vec!["error", "json", "html"]),
    ) {
        let text: String = words.iter().map(|(word, mark, space)| format!("{word}{mark}{space}")).collect();
        let redactor = Redactor::default();
        match how {
            "error" => prop_assert_eq!(redactor.redact_error(&text), text),
            "json" => {
                let (body, ct) = sent_as(&text, "json");
                let out = redactor.redact_body(&BodyInput::new(Some(ct), body.as_bytes()));
                prop_assert_eq!(out.as_deref(), Some(body.as_str()));
            }
            _ => {
                let page = format!("<p>{text}</p>");
                let out = redactor.redact_body(&BodyInput::new(Some("text/html"), page.as_bytes()));
                prop_assert_eq!(out.as_deref(), Some(page.as_str()));
            }
        }
    }

    /// Text made of the pieces the day's rules read (schemes, escaped spaces cut short,
    /// Unicode's dashes, MySQL clients and their `-p`, argv arrays) with multibyte characters
    /// beside them never panics, cut anywhere, as a text body, an error, a page, a JSON string,
    /// a JSON array of its pieces, a query and a form body.
    #[test]
    fn scheme_dash_and_argv_pieces_never_panic(
        parts in prop::collection::vec(select(vec![
            "Bearer", "basic", "TOKEN", "%", "%2", "%20", "%25", "%2520", "%C2%A0", "%C2", "&", "&#", "&#x",
            "&#x0020;", "&#0", "&nbsp", ";", "é", "😀", "\u{2014}", "\u{2013}", "\u{2010}", "\u{2212}", "-", "--",
            "-p", "\\u2014", "\\u002d", "\\u00", "\\", "mysql", "MYSQL.EXE", ".exe", "/", "[", "]", "\"", ",",
            " ", "+", "<", "</", "password", "pin", "x1y2", "\n", "=",
        ]), 0..40),
        cut in any::<prop::sample::Index>(),
    ) {
        let text: String = parts.concat();
        let redactor = Redactor::default();
        let json = serde_json::to_string(&serde_json::json!({ "log": text })).unwrap();
        let argv = serde_json::to_string(&serde_json::json!({ "args": parts })).unwrap();
        through_every_entry_point(
            &redactor,
            &text,
            &[
                (text.as_str(), "text/plain"),
                (text.as_str(), "text/html"),
                (json.as_str(), "application/json"),
                (argv.as_str(), "application/json"),
                (text.as_str(), "application/x-www-form-urlencoded"),
            ],
            cut,
        );
    }

    /// A pair's value inside quotes and brackets opened before its key (the closers rule of
    /// `Closer`): text of quotes, brackets, escapes, references and multibyte characters, cut
    /// anywhere, never panics, and a secret planted as a pair's value, with closers glued
    /// inside it, never leaks, as an error, a text body, a JSON string or a query's value.
    #[test]
    fn secrets_inside_closers_never_leak(
        before in prop::collection::vec(select(vec![
            "(", "[", "{", ")", "]", "}", "\"", "'", "`", "\\\"", "\\u0022", "\\u0027", "&quot;",
            "&#39;", "&amp;quot;", "\\u0026quot;", "é", "😀", "note", ":", "=", "\\", "&", "&#",
            "\\u00", "don't", "\r", "x",
        ]), 0..12),
        key in select(vec!["password=", "password: ", "token=", "pin = "]),
        (first, second) in ("[A-Z0-9]{8}", "[A-Z0-9]{4}"),
        inner in select(vec![
            "", ")", "]", "}", "\"", "'", "`", "\\\"", "&quot;", "\\u0022", ")>", "}>", ")&#233;",
            "\").", "é", "😀", "))", "\"}", ")/", "]?",
        ]),
        after in prop::collection::vec(select(vec![
            "", " x", ")", "]", "}", "\"", "'", "`", "\\\"", "&quot;", "\\u0022", ">", ".", "é",
            "\n y", "(", "&", "&#", "\\u00", "\\",
        ]), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let line = format!("{} {key}SECRET-{first}{inner}TAIL{second}{}", before.concat(), after.concat());
        let redactor = Redactor::default();
        let json = serde_json::to_string(&serde_json::json!({ "n": 1, "log": line })).unwrap();
        let query = format!("q={}&n=1", percent_encoded(&line));
        through_every_entry_point(
            &redactor,
            &line,
            &[(line.as_str(), "text/plain"), (json.as_str(), "application/json")],
            cut,
        );
        for (how, out) in [
            ("error", redactor.redact_error(&line)),
            ("text", redactor.redact_body(&BodyInput::new(Some("text/plain"), line.as_bytes())).unwrap_or_default()),
            ("json", redactor.redact_body(&BodyInput::new(Some("application/json"), json.as_bytes())).unwrap_or_default()),
            ("query", redactor.redact_query(&query)),
        ] {
            for part in [format!("SECRET-{first}"), format!("TAIL{second}")] {
                prop_assert!(!out.contains(&part), "{how}: leaked {part:?}\ninput: {line:?}\noutput: {out:?}");
            }
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
