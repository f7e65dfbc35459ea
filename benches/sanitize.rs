//! Sanitizer throughput on JSON bodies, next to a plain `serde_json` parse and serialize, and
//! on HTML text.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tower_audit::sanitize::{BodyInput, Redactor};

/// A realistic API body of about `target` bytes: an order with customer data, line items,
/// free text and a few secrets.
fn body(target: usize) -> String {
    let mut s = String::from(
        r#"{"order_id":"ord_8f3a2c","customer":{"id":48213,"name":"Ann Example","email":"ann@example.com","password":"hunter2-but-longer","address":{"street":"12 Main St","city":"Springfield","zip":"12345"}},"payment":{"card_number":"4111 1111 1111 1111","cvv":"123","note":"charge on delivery"},"items":["#,
    );
    let mut i = 0;
    while s.len() + 200 < target {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            r#"{{"sku":"SKU-{i:05}","qty":{},"price":{}.99,"title":"Item number {i} \"deluxe\"","tags":["a","b\u00e9"],"gift":{}}}"#,
            i % 7 + 1,
            i * 3 % 100,
            i % 2 == 0
        );
        i += 1;
    }
    s.push_str(
        r#"],"meta":{"api_key":"k-123","trace":"t-1","comment":"call me at 555-0100 before 5pm"}}"#,
    );
    s
}

fn bench(c: &mut Criterion) {
    let redactor = Redactor::default();
    let mut group = c.benchmark_group("json");
    for (label, target) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let json = body(target);
        let bytes = json.as_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("redact_body/{label}"), |b| {
            b.iter(|| {
                redactor.redact_body(black_box(&BodyInput::new(Some("application/json"), bytes)))
            })
        });
        group.bench_function(format!("serde_json_value_roundtrip/{label}"), |b| {
            b.iter(|| {
                let value: serde_json::Value =
                    serde_json::from_slice(black_box(bytes)).unwrap_or_default();
                serde_json::to_string(&value).unwrap_or_default()
            })
        });
    }
    // The worst a client can send the value rules: one 64 KiB string of digit runs, each long
    // enough to be tried as a card and glued to the next by a letter, so every run sits in one
    // long word. The rules must stay linear in it.
    let runs = "1111111111111a".repeat(64 * 1024 / 14);
    let json = format!(r#"{{"blob":"{runs}"}}"#);
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("redact_body/64KiB_of_glued_digit_runs", |b| {
        b.iter(|| {
            redactor.redact_body(black_box(&BodyInput::new(
                Some("application/json"),
                json.as_bytes(),
            )))
        })
    });
    group.finish();

    // Text: an HTML page full of character references, as a form posts it or an error quotes
    // it, and the same page as PHP's `htmlentities(…, ENT_HTML5)` escapes it into text. The
    // form field and pair rules read every `&` of both.
    let mut group = c.benchmark_group("text");
    let page = html_page(64 * 1024);
    for (label, text) in [
        ("64KiB_html", page.clone()),
        ("64KiB_html5_escaped", escaped(&page)),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("redact_body/{label}"), |b| {
            b.iter(|| {
                redactor.redact_body(black_box(&BodyInput::new(
                    Some("text/html"),
                    text.as_bytes(),
                )))
            })
        });
    }
    group.finish();
}

/// An HTML page of about `target` bytes: a login form, then rows of links and text with the
/// references pages are written with.
fn html_page(target: usize) -> String {
    let mut s = String::from(
        r#"<html><body><form action="/login"><input name="user" value="ann"><input type="password" name="pw" value="hunter2"><input type="hidden" name="csrf_token" value="abc123"></form><table>"#,
    );
    let mut i = 0;
    while s.len() + 200 < target {
        let _ = writeln!(
            s,
            "<tr><td class=\"sku\">SKU-{i:05}</td><td><a href=\"/items?id={i}&amp;ref=list\">Item&nbsp;{i} &quot;deluxe&quot; &#8212; &lt;new&gt;</a></td></tr>"
        );
        i += 1;
    }
    s.push_str("</table></body></html>");
    s
}

/// `text` with the characters PHP's `htmlentities(…, ENT_HTML5)` escapes in it so escaped.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '=' => out.push_str("&equals;"),
            '_' => out.push_str("&lowbar;"),
            '.' => out.push_str("&period;"),
            '/' => out.push_str("&sol;"),
            ':' => out.push_str("&colon;"),
            '?' => out.push_str("&quest;"),
            ';' => out.push_str("&semi;"),
            '\n' => out.push_str("&NewLine;"),
            c => out.push(c),
        }
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
