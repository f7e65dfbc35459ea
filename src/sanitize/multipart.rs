//! `multipart/form-data` bodies: the shape of the upload, never file contents.
//!
//! The stored text is a JSON array with one object per part: `name`, and for files `filename`,
//! `content_type` and `size`; text fields also carry their `value`, redacted like a body of
//! its own: through the JSON redactor when it is JSON, else through the text rules. A part cut by the capture cap has `"complete":false` and the size seen so far.
//! Its lines end in CRLF or, as some clients write them, in a bare LF: those of its first
//! delimiter's line. A whole body with no part of its boundary is described by the caller
//! (`[unparsable multipart/form-data, 16 bytes]`), not stored as an empty form's `[]`.

use std::borrow::Cow;
use std::fmt::Write as _;

use memchr::memmem;

use super::body::{is_yaml, param};
use super::form::{percent_decode, percent_decode_levels};
use super::json::push_json_string;
use super::redactor::Rules;
use super::text::redact_text_or_json;

/// One part's headers.
#[derive(Debug, Default)]
struct PartHeaders {
    name: Option<String>,
    /// The RFC 2231 `name*`, decoded.
    extended_name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
}

/// Redacts a multipart body into `out`; `cut` is the truncation marker text, if any.
///
/// The delimiters and the blank line after a part's headers end with the line break the
/// first delimiter's line ends with: CRLF as RFC 7578 writes them, or a bare LF, as some
/// clients write them and PHP's and Node's parsers read them. Returns `false`, with nothing
/// written, when a whole body holds no part and does not close as an empty form does
/// (`--b--`): no multipart body of this boundary, which the caller describes instead of
/// storing what would read as an empty form.
pub(super) fn redact_multipart(
    rules: &Rules,
    body: &[u8],
    boundary: &str,
    cut: Option<&str>,
    out: &mut String,
) -> bool {
    let open = format!("--{boundary}");
    // The first delimiter opens the body or a line after a preamble.
    let first = if body.starts_with(open.as_bytes()) {
        Some(0)
    } else {
        memmem::find(body, format!("\n{open}").as_bytes()).map(|at| at + 1)
    };
    let Some(first) = first else {
        if cut.is_none() {
            return false;
        }
        finish(out, cut, true);
        return true;
    };
    let mut pos = first + open.len();
    let crlf =
        memchr::memchr(b'\n', &body[pos..]).is_none_or(|at| at > 0 && body[pos + at - 1] == b'\r');
    let (line_break, blank_line): (&str, &[u8]) = if crlf {
        ("\r\n", b"\r\n\r\n")
    } else {
        ("\n", b"\n\n")
    };
    let delimiter = format!("{line_break}{open}");
    let finder = memmem::Finder::new(delimiter.as_bytes());
    let mut keybuf = String::new();
    let start = out.len();
    out.push('[');
    let mut parts = 0_usize;
    let mut closed = false;
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            closed = true;
            break; // The closing delimiter.
        }
        // Skip transport padding up to the end of the delimiter line.
        let Some(line_end) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let rest = &rest[line_end + 1..];
        let Some(headers_end) = memmem::find(rest, blank_line) else {
            break;
        };
        let headers = parse_headers(&rest[..headers_end]);
        let content = &rest[headers_end + blank_line.len()..];
        let (content, complete) = match finder.find(content) {
            Some(end) => (&content[..end], true),
            None => (content, false),
        };
        if parts > 0 {
            out.push(',');
        }
        parts += 1;
        write_part(rules, &headers, content, complete, &mut keybuf, out);
        if !complete {
            break;
        }
        pos = body.len() - rest.len()
            + headers_end
            + blank_line.len()
            + content.len()
            + delimiter.len();
    }
    if parts == 0 && !closed && cut.is_none() {
        out.truncate(start);
        return false;
    }
    out.push(']');
    finish(out, cut, false);
    true
}

/// Appends the truncation marker, or notes a body with no parts at all.
fn finish(out: &mut String, cut: Option<&str>, no_parts: bool) {
    if no_parts {
        out.push_str("[]");
    }
    if let Some(cut) = cut {
        let _ = write!(out, " …[{cut}]");
    }
}

fn parse_headers(raw: &[u8]) -> PartHeaders {
    let raw = String::from_utf8_lossy(raw);
    let mut headers = PartHeaders::default();
    for line in raw.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            let params = value.split_once(';').map_or("", |(_, p)| p);
            // RFC 5987: `UTF-8''file%20name.txt`.
            let extended = |v: Cow<'_, str>| {
                let encoded = v.rsplit('\'').next().unwrap_or_default();
                percent_decode(encoded).into_owned()
            };
            headers.extended_name = param(params, "name*").map(extended);
            headers.name = param(params, "name")
                .map(Cow::into_owned)
                .or_else(|| headers.extended_name.clone());
            headers.filename = param(params, "filename*")
                .map(extended)
                .or_else(|| param(params, "filename").map(Cow::into_owned));
        } else if name.eq_ignore_ascii_case("content-type") {
            headers.content_type = Some(value.trim().to_owned());
        }
    }
    headers
}

fn write_part(
    rules: &Rules,
    headers: &PartHeaders,
    content: &[u8],
    complete: bool,
    keybuf: &mut String,
    out: &mut String,
) {
    out.push('{');
    let field = |out: &mut String, key: &str, value: &str| {
        if !out.ends_with('{') {
            out.push(',');
        }
        push_json_string(out, key);
        out.push(':');
        push_json_string(out, &rules.values.redact(value));
    };
    if let Some(name) = &headers.name {
        field(out, "name", name);
    }
    if let Some(filename) = &headers.filename {
        field(out, "filename", filename);
    }
    if let Some(content_type) = &headers.content_type {
        field(out, "content_type", content_type);
    }
    if !out.ends_with('{') {
        out.push(',');
    }
    let _ = write!(out, "\"size\":{}", content.len());
    let is_text = headers.filename.is_none()
        && headers
            .content_type
            .as_deref()
            .is_none_or(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/"));
    // Only text fields are stored; a file's bytes never are, whatever its type.
    if is_text {
        out.push_str(",\"value\":");
        // A name that cannot be read fails closed: none at all (RFC 2231's `name*0`, `name*1`
        // continuations, a folded header), or an RFC 2047 encoded word (`=?utf-8?B?…?=`, how
        // .NET writes a name that is not ASCII), which servers decode and the rules cannot.
        let unreadable = headers
            .name
            .as_deref()
            .is_none_or(|name| name.contains("=?") && name.contains("?="));
        let sensitive = unreadable
            || [&headers.name, &headers.extended_name]
                .into_iter()
                .flatten()
                .any(|name| {
                    name_is_sensitive(rules, name, keybuf)
                        // In single quotes, which some parsers take off.
                        || name
                            .strip_prefix('\'')
                            .and_then(|name| name.strip_suffix('\''))
                            .is_some_and(|name| name_is_sensitive(rules, name, keybuf))
                });
        if sensitive {
            out.push_str(&rules.replacement_json);
        } else {
            // A field's value is a body of its own: a GraphQL upload's `operations` field is
            // JSON, a `notes` field may hold `password=…`.
            let text = String::from_utf8_lossy(content);
            let mut redacted = String::with_capacity(text.len());
            let yaml = headers.content_type.as_deref().is_some_and(is_yaml);
            redact_text_or_json(rules, &text, !complete, yaml, &mut redacted);
            push_json_string(out, &redacted);
        }
    }
    if !complete {
        out.push_str(",\"complete\":false");
    }
    out.push('}');
}

/// Whether a field name is sensitive as written, percent-decoded (browsers encode `"` and
/// line breaks so, some clients more; decoded again while escapes remain, as a query's keys
/// are) or with its character references decoded.
fn name_is_sensitive(rules: &Rules, name: &str, keybuf: &mut String) -> bool {
    if rules.keys.is_sensitive(name, keybuf) {
        return true;
    }
    if percent_decode_levels(name)
        .any(|decoded| decoded != name && rules.keys.is_sensitive(&decoded, keybuf))
    {
        return true;
    }
    let mut referenced = String::new();
    let referenced = super::markup::decode(name, &mut referenced);
    referenced != name && rules.keys.is_sensitive(referenced, keybuf)
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};
    use super::*;

    fn run(body: &[u8], cut: Option<&str>) -> String {
        let redactor = Redactor::default();
        let mut out = String::new();
        redact_multipart(redactor.rules(), body, "XyZ", cut, &mut out);
        out
    }

    const BODY: &[u8] = b"preamble\r\n--XyZ\r\n\
        Content-Disposition: form-data; name=\"comment\"\r\n\r\n\
        card 4111 1111 1111 1111\r\n--XyZ\r\n\
        Content-Disposition: form-data; name=\"pass_word\"\r\n\r\n\
        hunter2\r\n--XyZ\r\n\
        Content-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
        Content-Type: image/png\r\n\r\n\
        FILE-CONTENTS-SECRET\r\n--XyZ--\r\nepilogue";

    /// [`BODY`] with bare LF line breaks.
    const BODY_LF: &[u8] = b"preamble\n--XyZ\n\
        Content-Disposition: form-data; name=\"comment\"\n\n\
        card 4111 1111 1111 1111\n--XyZ\n\
        Content-Disposition: form-data; name=\"pass_word\"\n\n\
        hunter2\n--XyZ\n\
        Content-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\n\
        Content-Type: image/png\n\n\
        FILE-CONTENTS-SECRET\n--XyZ--\nepilogue";

    #[test]
    fn parts_are_described_and_files_left_out() {
        assert_eq!(
            run(BODY, None),
            r#"[{"name":"comment","size":24,"value":"card [REDACTED]"},{"name":"pass_word","size":7,"value":"[REDACTED]"},{"name":"avatar","filename":"me.png","content_type":"image/png","size":20}]"#
        );
    }

    /// Found by a probe: a field whose name could not be read (RFC 2231 continuations, an
    /// RFC 2047 encoded word) or was single-quoted had its value stored as sent.
    #[test]
    fn a_field_name_that_cannot_be_read_fails_closed() {
        for disposition in [
            "name=\"=?utf-8?B?0L/QsNGA0L7Qu9GM?=\"",
            "name*0=\"pass\"; name*1=\"word\"",
            "name='password'",
        ] {
            let body = format!(
                "--XyZ\r\nContent-Disposition: form-data; {disposition}\r\n\r\nhunterM1\r\n--XyZ--"
            );
            let out = run(body.as_bytes(), None);
            assert!(
                !out.contains("hunterM1") && out.contains(r#""value":"[REDACTED]""#),
                "{disposition}: {out}"
            );
        }
    }

    /// Rails, PHP and Express nest field names: `user[password]` is a path to a sensitive key.
    #[test]
    fn nested_field_names() {
        let body = b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"user[password]\"\r\n\r\n\
            hunter2\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"user[name]\"\r\n\r\n\
            ann\r\n--XyZ--";
        assert_eq!(
            run(body, None),
            r#"[{"name":"user[password]","size":7,"value":"[REDACTED]"},{"name":"user[name]","size":3,"value":"ann"}]"#
        );
    }

    /// A field name written percent-encoded (as browsers write `"` and line breaks, and as
    /// some clients write more), with character references, or as an RFC 2231 `name*` is the
    /// same name.
    #[test]
    fn encoded_field_names() {
        for disposition in [
            r#"name="api%5Fkey""#,
            r#"name="pass&#119;ord""#,
            r#"name="pass&#x77;ord""#,
            r#"name="pass%2577ord""#,
            "name*=UTF-8''pass%2577ord",
            "name*=UTF-8''pass%77ord",
            r#"name="x"; name*=UTF-8''pass%77ord"#,
        ] {
            let body = format!(
                "--XyZ\r\nContent-Disposition: form-data; {disposition}\r\n\r\nhunter2\r\n--XyZ--"
            );
            let out = run(body.as_bytes(), None);
            assert!(!out.contains("hunter2"), "{disposition}: {out}");
        }
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"caf%C3%A9&amp;bar\"\r\n\r\nlatte\r\n--XyZ--";
        assert_eq!(
            run(body, None),
            r#"[{"name":"caf%C3%A9&amp;bar","size":5,"value":"latte"}]"#
        );
    }

    /// A text field sent as YAML is read as a YAML body is: a plain value runs on over its
    /// more indented lines there, and stays on its line in a plain text field.
    #[test]
    fn yaml_fields_are_read_as_yaml() {
        let field = |content_type: &str| {
            let body = format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"config\"\r\n\
                 Content-Type: {content_type}\r\n\r\npassword: hunter\n  2more\nuser: ann\r\n--XyZ--"
            );
            run(body.as_bytes(), None)
        };
        let out = field("text/yaml");
        assert!(
            out.contains(r#""value":"password: [REDACTED]\nuser: ann""#),
            "{out}"
        );
        let out = field("text/plain");
        assert!(
            out.contains(r#""value":"password: [REDACTED]\n  2more\nuser: ann""#),
            "{out}"
        );
    }

    /// Hostile field names and bodies stay linear: a name is decoded once each way, and each
    /// part is read once. 10 MiB of `%25` in one name, and 100 000 parts with sensitive names
    /// written each way, take well under the bound in a debug build.
    #[test]
    fn hostile_names_and_parts_stay_linear() {
        const MIB: usize = 1 << 20;
        for unit in ["%25", "%2525", "&#x", "&#37;"] {
            let name = unit.repeat(10 * MIB / unit.len());
            let mut dispositions = vec![
                format!(r#"name="{name}password""#),
                format!(r#"name="{name}"; name*=UTF-8''pass%77ord"#),
            ];
            // An RFC 2231 value is a token: a `;` ends it, a quote or backslash is no part.
            if !unit.contains([';', '"', '\\']) {
                dispositions.push(format!("name*=UTF-8''{name}password"));
            }
            for disposition in dispositions {
                let body = format!(
                    "--XyZ\r\nContent-Disposition: form-data; {disposition}\r\n\r\nhunter2\r\n--XyZ--"
                );
                let started = std::time::Instant::now();
                let out = run(body.as_bytes(), None);
                let took = started.elapsed();
                assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
                assert!(
                    out.ends_with(r#""size":7,"value":"[REDACTED]"}]"#),
                    "{unit:?}"
                );
            }
            // A name sensitive no way it is read: every decoding runs to its end.
            let body = format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nann\r\n--XyZ--"
            );
            let started = std::time::Instant::now();
            let out = run(body.as_bytes(), None);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{unit:?}: {took:?}");
            assert!(out.ends_with(r#""size":3,"value":"ann"}]"#), "{unit:?}");
        }
        let mut body = String::new();
        for i in 0..100_000 {
            let name = [
                "api%5Fkey",
                "pass&#119;ord",
                "pass%2577ord",
                "user[password]",
            ][i % 4];
            body.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nhunter2\r\n"
            ));
        }
        body.push_str("--XyZ--");
        let started = std::time::Instant::now();
        let out = run(body.as_bytes(), None);
        let took = started.elapsed();
        assert!(took.as_secs() < 10, "{took:?}");
        assert!(!out.contains("hunter2"), "{}", &out[..200]);
        assert_eq!(out.matches("[REDACTED]").count(), 100_000);
    }

    /// A text field's value is redacted as a body of its own: a GraphQL upload's `operations`
    /// field is JSON, a free-text field may hold `password=…`.
    #[test]
    fn text_fields_are_bodies_of_their_own() {
        let body = b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"operations\"\r\n\r\n\
            {\"query\":\"mutation($f: Upload!)\",\"variables\":{\"password\":\"hunter2\",\"f\":null}}\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"notes\"\r\n\r\n\
            user=ann&password=hunter2\r\n--XyZ--";
        assert_eq!(
            run(body, None),
            r#"[{"name":"operations","size":77,"value":"{\"query\":\"mutation($f: Upload!)\",\"variables\":{\"password\":\"[REDACTED]\",\"f\":null}}"},{"name":"notes","size":25,"value":"user=ann&password=[REDACTED]"}]"#
        );
        // Cut inside the JSON field's secret: none of it is emitted.
        let at = body
            .windows(8)
            .position(|w| w == b"\"hunter2")
            .unwrap_or_default();
        let out = run(&body[..at + 4], Some("truncated"));
        assert!(out.contains(r#"\"password\":\"[REDACTED]\""#), "{out}");
        assert!(!out.contains("hun"), "{out}");
    }

    #[test]
    fn cut_inside_a_part() {
        let cut_at = BODY.len() - 30;
        let out = run(&BODY[..cut_at], Some("truncated, 500 bytes total"));
        assert!(
            out.ends_with(r#""size":9,"complete":false}] …[truncated, 500 bytes total]"#),
            "{out}"
        );
        assert!(!out.contains("FILE-CO"), "{out}");
        let out = run(&BODY[..80], Some("truncated"));
        assert!(out.contains("\"name\":\"comment\""), "{out}");
        assert!(!out.contains("4111"), "{out}");
    }

    #[test]
    fn rfc5987_file_names_and_no_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=f; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n\r\nPDF\r\n--XyZ--";
        assert_eq!(
            run(body, None),
            r#"[{"name":"f","filename":"résumé.pdf","size":3}]"#
        );
        let mut out = String::new();
        let redactor = Redactor::default();
        let read = redact_multipart(redactor.rules(), b"no boundary here", "XyZ", None, &mut out);
        assert!(!read && out.is_empty(), "{out}");
    }

    /// Found by a probe: a body whose lines end in a bare LF (as some clients write it, and
    /// PHP's and Node's parsers read it) was stored as `[]`, every field lost. The line
    /// break of the first delimiter's line is the body's; a file's contents still never
    /// come out, and a sensitive field's value goes.
    #[test]
    fn bare_lf_line_breaks() {
        let redactor = Redactor::default();
        let body = b"--b\nContent-Disposition: form-data; name=\"user\"\n\nann\n--b\n\
            Content-Disposition: form-data; name=\"password\"\n\nHunter2Pass\n--b\n\
            Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\n\
            Content-Type: text/plain\n\nFILE-CONTENTS-SECRET\n--b--\n";
        let input = BodyInput::new(Some("multipart/form-data; boundary=b"), body);
        assert_eq!(
            redactor.redact_body(&input).as_deref(),
            Some(
                r#"[{"name":"user","size":3,"value":"ann"},{"name":"password","size":11,"value":"[REDACTED]"},{"name":"f","filename":"a.txt","content_type":"text/plain","size":20}]"#
            )
        );
        // After a preamble, and cut inside the secret.
        let body = b"preamble\n--b\nContent-Disposition: form-data; name=\"notes\"\n\n\
            password=Hunter2Pass\n--b--";
        let out = redactor
            .redact_body(&BodyInput::new(
                Some("multipart/form-data; boundary=b"),
                body,
            ))
            .unwrap_or_default();
        assert_eq!(
            out,
            r#"[{"name":"notes","size":20,"value":"password=[REDACTED]"}]"#
        );
        let at = BODY_LF
            .windows(7)
            .position(|w| w == b"hunter2")
            .unwrap_or_default();
        let out = run(&BODY_LF[..at + 3], Some("truncated"));
        assert!(
            out.ends_with(r#"{"name":"pass_word","size":3,"value":"[REDACTED]","complete":false}] …[truncated]"#),
            "{out}"
        );
        let out = run(&BODY_LF[..BODY_LF.len() - 20], Some("truncated"));
        assert!(
            out.ends_with(r#""filename":"me.png","content_type":"image/png","size":17,"complete":false}] …[truncated]"#),
            "{out}"
        );
        assert!(!out.contains("hunter2") && !out.contains("FILE"), "{out}");
        // A CRLF body's parts end only at a CRLF delimiter: a bare `\n--XyZ` inside a file
        // is its contents, never a part of its own.
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n\
            x\n--XyZ\nContent-Disposition: form-data; name=\"n\"\n\nFILE-CONTENTS\r\n--XyZ--";
        assert_eq!(
            run(body, None),
            r#"[{"name":"f","filename":"a","size":63}]"#
        );
    }

    /// A body with no part of its boundary was stored as `[]`, as an empty form is: it is
    /// described now. An empty form stays `[]`, and a cut body says it was cut.
    #[test]
    fn a_body_without_parts_is_described() {
        let redactor = Redactor::default();
        let redact = |body: &[u8]| {
            redactor
                .redact_body(&BodyInput::new(
                    Some("multipart/form-data; boundary=b"),
                    body,
                ))
                .unwrap_or_default()
        };
        assert_eq!(
            redact(b"no boundary here"),
            "[unparsable multipart/form-data, 16 bytes]"
        );
        assert_eq!(
            redact(b"--b\r\nContent-Disposition: form-data; name=\"a\""),
            "[unparsable multipart/form-data, 45 bytes]"
        );
        assert_eq!(redact(b"--b--\r\n"), "[]");
        assert_eq!(
            run(b"--XyZ\r\nContent-Dispo", Some("truncated")),
            "[] …[truncated]"
        );
        assert_eq!(run(b"prea", Some("truncated")), "[] …[truncated]");
    }
}
