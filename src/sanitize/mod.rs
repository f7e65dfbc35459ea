//! TEMPORARY placeholder; replaced by the real sanitizer.
#![allow(missing_docs)]
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct BodyInput<'a> {
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub bytes: &'a [u8],
    pub total_len: u64,
    pub truncated: bool,
    pub route: Option<&'a str>,
}

#[derive(Clone, Debug, Default)]
pub struct Redactor {
    _inner: Arc<()>,
}

impl Redactor {
    pub fn redact_body(&self, body: &BodyInput<'_>) -> Option<String> {
        if body.bytes.is_empty() {
            return None;
        }
        match serde_json::from_slice::<serde_json::Value>(body.bytes) {
            Ok(mut v) => {
                fn walk(v: &mut serde_json::Value) {
                    match v {
                        serde_json::Value::Object(m) => {
                            for (k, v) in m.iter_mut() {
                                let k = k.to_lowercase();
                                if ["password", "token", "secret", "authorization"]
                                    .contains(&k.as_str())
                                {
                                    *v = "[REDACTED]".into();
                                } else {
                                    walk(v)
                                }
                            }
                        }
                        serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                        _ => {}
                    }
                }
                walk(&mut v);
                Some(v.to_string())
            }
            Err(_) => Some(format!("[{} bytes]", body.total_len)),
        }
    }
    pub fn redact_query(&self, query: &str) -> String {
        query.to_owned()
    }
    pub fn redact_text(&self, text: &str) -> String {
        text.to_owned()
    }
    pub fn redact_headers(&self, _h: &http::HeaderMap, _n: &[http::HeaderName]) -> Option<String> {
        None
    }
}
