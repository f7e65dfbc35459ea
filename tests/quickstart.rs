//! The quick start, tried as a user would: a real server over TCP writing into a SQLite file.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use support::{Server, client, empty, full, send};
use tower_audit::AuditLayer;

/// Secrets a user sends; none may reach the database file.
const SECRETS: &[&str] = &[
    "correct horse",
    "wrong-horse-battery",
    "4111 1111 1111 1111",
    "4111111111111111",
    "s3cr3t-query-token",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl",
    "AKIAIOSFODNN7EXAMPLE",
    "cvv-999",
    "pin-4321",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let db = tower_audit::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (audit, guard) = AuditLayer::builder(db.clone())
        .skip_path("/health")
        .build()
        .unwrap();
    let server = Server::start(quickstart::app(quickstart::AppState::default(), audit)).await;
    let client = client();
    let json = |method: &str, path: &str, token: Option<&str>, body: String| {
        let mut request = http::Request::builder()
            .method(method)
            .uri(server.url(path))
            .header("content-type", "application/json")
            // Forged: no proxy is trusted, so the socket peer must be recorded.
            .header("x-forwarded-for", "6.6.6.6");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(full(body)).unwrap()
    };

    let (status, _) = send(
        &client,
        json(
            "POST",
            "/login",
            None,
            r#"{"username":"alice","password":"wrong-horse-battery"}"#.into(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(
        &client,
        json(
            "POST",
            "/login",
            None,
            r#"{"username":"alice","password":"correct horse"}"#.into(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token: Value = serde_json::from_slice(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    let order = r#"{"item":"book","qty":2,"payment":{"card_number":"4111 1111 1111 1111","cvv":"cvv-999"},
        "note":"my pan is 4111111111111111 and my jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl",
        "deep":[{"x":{"Pass-Word":"correct horse","aws":"AKIAIOSFODNN7EXAMPLE","PIN":"pin-4321"}}]}"#;
    let (status, _) = send(
        &client,
        json(
            "POST",
            "/orders?access_token=s3cr3t-query-token",
            Some(&token),
            order.into(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // A truncated body: the secret sits right after the capture cap.
    let mut long = String::from(r#"{"filler":""#);
    long.push_str(&"x".repeat(64 * 1024 - long.len()));
    long.push_str(r#"","password":"correct horse"}"#);
    let (status, _) = send(&client, json("POST", "/orders", Some(&token), long)).await;
    assert_eq!(status, StatusCode::CREATED);
    let request = http::Request::get(server.url("/orders/1?api_key=s3cr3t-query-token"))
        .header("authorization", format!("Bearer {token}"))
        .body(empty())
        .unwrap();
    let (status, _) = send(&client, request).await;
    assert_eq!(status, StatusCode::OK);

    server.stop().await;
    let report = guard.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!((report.written, report.lost), (5, 0));

    // The rows are there, and readable.
    let rows = support::rows(&db).await;
    assert_eq!(rows.len(), 5);
    assert!(
        rows[2]
            .request_body
            .as_deref()
            .unwrap()
            .contains(r#""item":"book""#)
    );
    assert!(rows[3].request_body_truncated);
    for row in &rows {
        assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"), "{row:?}");
    }
    let users: Vec<_> = rows.iter().map(|r| r.user_id.as_deref()).collect();
    assert_eq!(
        users,
        [None, None, Some("alice"), Some("alice"), Some("alice")]
    );

    // Read the files before closing: the WAL still holds the newest pages.
    let mut all = String::new();
    for file in ["audit.db", "audit.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.path().join(file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        all.push_str(&text);
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret:?} found in {file}");
        }
    }
    assert!(
        dir.path().join("audit.db-wal").exists(),
        "WAL mode expected"
    );
    // The scan sees the rows themselves: a secret would have been found.
    assert!(all.contains(r#""item":"book""#) && all.contains("/orders/{id}"));
}
