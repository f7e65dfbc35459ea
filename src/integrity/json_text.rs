//! Whether a JSON column's stored text reads as the value its row's hash covers.
//!
//! The hash covers a JSON column as serde_json reads it, which keeps the last of two equal keys
//! and reads a number to the nearest `f64`. SQL reads the stored text otherwise: SQLite's and
//! MariaDB's `JSON_EXTRACT` take the first of two equal keys, and PostgreSQL's `jsonb` keeps a
//! number's every digit. Text that differs there, which no writer stores, would let a changed
//! value pass [`verify`](super::verify) while every SQL query saw the change: it is a break.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// `Err(what differs)` when `text` holds a key twice in one object, or a number that does not
/// read back as itself (more digits than an `f64` keeps). Text that is not JSON is left to the
/// column's own decoding.
pub(super) fn reads_as_hashed(text: &str) -> Result<(), String> {
    match serde_json::from_str::<Unique>(text) {
        Err(error) if error.is_data() => return Err(error.to_string()),
        _ => {}
    }
    inexact_number(text).map_or(Ok(()), |number| {
        Err(format!(
            "the number {number} reads as {} where the row's hash covers it",
            parsed(number).unwrap_or_else(|| "another value".to_owned())
        ))
    })
}

/// Any JSON value, read only to find an object that holds a key twice.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Unique, A::Error> {
        while items.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<Unique, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = fields.next_key::<String>()? {
            fields.next_value::<Unique>()?;
            if let Some(key) = keys.replace(key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} appears twice in one object"
                )));
            }
        }
        Ok(Unique)
    }
}

/// The first number of `text` (outside its strings) whose value is not the one serde_json
/// reads it as.
fn inexact_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut escaped = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            at += 1;
        } else if byte == b'"' {
            in_string = true;
            at += 1;
        } else if byte == b'-' || byte.is_ascii_digit() {
            let end = bytes[at..]
                .iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .map_or(bytes.len(), |len| at + len);
            let number = &text[at..end];
            if parsed(number).is_none_or(|read| decimal(&read) != decimal(number)) {
                return Some(number);
            }
            at = end;
        } else {
            at += 1;
        }
    }
    None
}

/// `number` as serde_json reads and writes it back.
fn parsed(number: &str) -> Option<String> {
    number
        .parse::<serde_json::Number>()
        .ok()
        .map(|n| n.to_string())
}

/// A JSON number's value, whatever its spelling: `(negative, significant digits, exponent)`,
/// with zero as `(false, "", 0)`. `None` for text that is no number.
fn decimal(number: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mut exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some((false, String::new(), 0));
    }
    exponent = exponent.checked_add(i64::try_from(significant.len() - trimmed.len()).ok()?)?;
    Some((negative, trimmed.to_owned(), exponent))
}

#[cfg(test)]
mod tests {
    use super::reads_as_hashed;

    #[test]
    fn what_a_writer_stores_reads_as_hashed() {
        for value in [
            serde_json::json!({"detail": {"z": "ü", "b": 1, "a": [1.5, true, null, -0.25, 1e3]}}),
            serde_json::json!({"n": [0.1, 1e-7, 1e16, 1e20, 123456789012345678u64, -3, 0.0]}),
            serde_json::json!({"s": "a \"quoted\" 1e999 \\", "t": "-0.1000000000000000000001"}),
            serde_json::json!("just text"),
            serde_json::json!(null),
        ] {
            assert_eq!(reads_as_hashed(&value.to_string()), Ok(()), "{value}");
        }
        // PostgreSQL's spelling of the same values.
        for text in [
            r#"{"n": [0.1, 0.0000001, 100000000000000000000, 1.0, 0.0, 1000.0], "a": {"b": 2}}"#,
            r#"[1E3, 2.50, 0.00]"#,
        ] {
            assert_eq!(reads_as_hashed(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn a_key_twice_or_a_number_past_an_f64_is_named() {
        let twice = reads_as_hashed(r#"{"detail":{"role":"admin","role":"user"}}"#).unwrap_err();
        assert!(twice.contains(r#""role" appears twice"#), "{twice}");
        // The same key spelled with an escape.
        let escaped = reads_as_hashed(r#"{"a":1,"\u0061":2}"#).unwrap_err();
        assert!(escaped.contains(r#""a" appears twice"#), "{escaped}");
        let digits = reads_as_hashed(r#"{"amount": 0.1000000000000000000001}"#).unwrap_err();
        assert!(
            digits.contains("0.1000000000000000000001 reads as 0.1"),
            "{digits}"
        );
        let big = reads_as_hashed("[18446744073709551617]").unwrap_err();
        assert!(big.contains("18446744073709551617"), "{big}");
        assert!(reads_as_hashed("[-0.0]").is_ok());
    }
}
