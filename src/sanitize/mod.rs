//! Keeps secrets out of the audit table.
//!
//! The audit writer passes every captured body, query string and header set through a
//! [`Redactor`] before it is stored. Secrets are found two ways:
//!
//! - **by key**: the value of a sensitive key (`password`, `api_key`, `token`, ...) is replaced
//!   whole, at any depth of JSON, in form bodies, query strings, multipart field names, header
//!   names, `key=value` / `key: "value"` pairs, XML elements and HTML form fields (the `value`,
//!   `content` or `connectionString` of an element whose `name`, `id`, `key` or `property` is
//!   sensitive, or of an `<input type="password">`; tags also written with character references
//!   or Go's `\u003c`, element names with Unicode dashes, `<api‐key>`) of text bodies, error texts and JSON strings, and matrix parameters of
//!   paths. A YAML key's value goes whole however many lines it takes (a block scalar, the
//!   more indented lines after the key, a quoted scalar), and so does a Kubernetes env's
//!   `value` named by its sibling `name`. Keys match in any case and spelling (`Pass-Word`,
//!   `pass_word`, `"pass\u0077ord"`, `pass%77ord`), followed by digits or `confirmation`
//!   (`password2`, `password_confirmation`), as a plural (`secrets`, `api_keys`), and as part
//!   of a path (`user[password]`).
//! - **by value**: credentials after `Bearer`, `Basic` or `Token` (any case, also after an
//!   escaped space, `Basic\u0020…`), JWTs, Luhn-valid card numbers, PEM private keys, AWS access
//!   key ids, the password of a URL's userinfo and your own patterns are replaced wherever they appear in text. Digits inside a
//!   hexadecimal identifier (a UUID, a digest), and Unix times in milliseconds or finer, are
//!   not taken for a card number.
//!
//! Redaction fails closed. Bodies cut by the capture cap, malformed JSON and invalid UTF-8 are
//! stored up to the point where reading stopped, with a marker such as
//! ` …[truncated, 70000 bytes total]`; a sensitive value in progress at that point is never
//! emitted. Binary bodies are described (`[binary image/png, 5120 bytes]`), file uploads keep
//! only their names and sizes, and `gzip`/`deflate` bodies are decoded up to a bound.
//!
//! The redactor runs in the background writer, not on the request path, so it sits after the
//! capture in the audit pipeline and costs a request nothing.
//!
//! # Example
//!
//! ```
//! use http::{HeaderMap, HeaderName, HeaderValue, header};
//! use tower_audit::sanitize::{BodyInput, Redactor};
//!
//! # fn main() -> Result<(), tower_audit::sanitize::SanitizeError> {
//! let redactor = Redactor::builder()
//!     .add_key("tax_id")
//!     .add_value_pattern(r"\bcust-\d{6}\b", "[CUSTOMER]")?
//!     .build();
//!
//! // A body cut by the capture cap inside a secret.
//! let captured = br#"{"user":{"Pass_Word":"hunter2","tax_id":"DE89"},"note":"for cust-123456","token":"eyJhb"#;
//! let body = BodyInput {
//!     content_type: Some("application/json; charset=utf-8"),
//!     content_encoding: None,
//!     bytes: captured,
//!     total_len: 70_000,
//!     truncated: true,
//!     route: Some("/users/{id}"),
//! };
//! assert_eq!(
//!     redactor.redact_body(&body).as_deref(),
//!     Some(r#"{"user":{"Pass_Word":"[REDACTED]","tax_id":"[REDACTED]"},"note":"for [CUSTOMER]","token":"[REDACTED]" …[truncated, 70000 bytes total]"#),
//! );
//!
//! assert_eq!(redactor.redact_query("q=foo&Api-Key=bar"), "q=foo&Api-Key=[REDACTED]");
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def.ghi"));
//! headers.insert(header::USER_AGENT, HeaderValue::from_static("curl/8.5"));
//! assert_eq!(
//!     redactor.redact_headers(&headers, &[header::AUTHORIZATION, header::USER_AGENT]).as_deref(),
//!     Some(r#"{"authorization":"[REDACTED]","user-agent":"curl/8.5"}"#),
//! );
//! # Ok(())
//! # }
//! ```

mod assigned;
mod body;
mod commands;
mod embedded;
pub(crate) mod encoding;
mod error;
mod form;
mod headers;
mod html;
mod json;
mod json_lines;
mod keys;
mod markup;
mod multipart;
mod mysql;
mod path;
mod printed;
#[cfg(test)]
mod proptests;
mod protocols;
mod redactor;
mod sql;
mod tables;
mod text;
mod values;
mod yaml;

pub use body::BodyInput;
pub use error::SanitizeError;
pub use redactor::{Redactor, RedactorBuilder};

/// The set of `bytes`, as a table a scan looks a byte up in.
const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// A text body as the default redactor stores it: the tests of the command-line rules
/// (`mysql`, `commands`, `assigned`) read their cases so.
#[cfg(test)]
fn redact_plain_text(body: &str) -> String {
    let input = BodyInput::new(Some("text/plain"), body.as_bytes());
    Redactor::default().redact_body(&input).unwrap_or_default()
}
