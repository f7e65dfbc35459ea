//! The `tower-audit` binary, run as a user would, against a SQLite file.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

mod support;

use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tower_audit::AuditLayer;
use tower_audit::entity::audit_log::{self, ActiveModel, Model};

const BIN: &str = env!("CARGO_BIN_EXE_tower-audit");

/// A SQLite file migrated by `tower-audit migrate`.
struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("audit.db").display()
        );
        let fixture = Fixture { _dir: dir, url };
        let out = fixture.run(&["migrate"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, "audit_log is up to date\n");
        fixture
    }

    async fn db(&self) -> DatabaseConnection {
        tower_audit::connect(self.url.clone()).await.unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env_remove("USER")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().await.unwrap();
        Output {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

#[derive(Debug)]
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn row(days_ago: i64, edit: impl FnOnce(&mut Model)) -> ActiveModel {
    support::row(Utc::now() - chrono::Duration::days(days_ago), |model| {
        model.latency_us = 1500;
        model.client_ip = Some("127.0.0.1".into());
        edit(model);
    })
}

/// Four rows: an old one, and three of today (alice's order, bob's failure, anonymous).
async fn seed(fixture: &Fixture) {
    let db = fixture.db().await;
    audit_log::Entity::insert_many([
        row(200, |m| m.path = "/ancient".into()),
        row(0, |m| {
            m.method = "POST".into();
            m.path = "/orders".into();
            m.route = Some("/orders".into());
            m.status = Some(201);
            m.user_id = Some("alice".into());
            m.request_body = Some(r#"{"item":"book"}"#.into());
        }),
        row(0, |m| {
            m.path = "/orders/9".into();
            m.route = Some("/orders/{id}".into());
            m.status = Some(500);
            m.user_id = Some("bob".into());
            m.error = Some("database is away".into());
        }),
        row(0, |m| {
            m.path = "/health".into();
            m.latency_us = 42;
        }),
    ])
    .exec(&db)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_prints_a_table_or_ndjson_and_pages_with_a_cursor() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;

    let out = fixture.run(&["query"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("id  occurred_at"), "{}", out.stdout);
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    assert!(
        lines[1].starts_with("4 ") && lines[4].starts_with("1 "),
        "newest first"
    );
    assert!(out.stdout.contains("database is away"));
    // Milliseconds, to the microsecond under one (a fast request read 0.0).
    let ms = |line: &str| {
        line.split_whitespace()
            .nth(4)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(ms(lines[1]), "0.042", "{}", out.stdout);
    assert_eq!(ms(lines[2]), "1.5", "{}", out.stdout);

    let out = fixture.run(&["query", "--user", "alice", "--json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["request_body"], r#"{"item":"book"}"#);

    let out = fixture.run(&["query", "--status", "5xx", "--json"]).await;
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let out = fixture
        .run(&[
            "query",
            "--since",
            "1d",
            "--path-prefix",
            "/orders",
            "--json",
        ])
        .await;
    assert_eq!(out.stdout.lines().count(), 2, "{out:?}");

    // Pages of two: the cursor goes to stderr, and continues where the page ended.
    let out = fixture.run(&["query", "--limit", "2", "--json"]).await;
    assert_eq!(out.stdout.lines().count(), 2);
    let cursor = out.stderr.trim().strip_prefix("more: --cursor ").unwrap();
    let next = fixture
        .run(&["query", "--limit", "2", "--json", "--cursor", cursor])
        .await;
    let ids: Vec<i64> = out
        .stdout
        .lines()
        .chain(next.stdout.lines())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [4, 3, 2, 1]);
    assert_eq!(next.stderr, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_export() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;

    let out = fixture.run(&["stats", "--since", "1d"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("requests: 3\n"), "{}", out.stdout);
    assert!(out.stdout.contains("p50 1.5 ms"), "{}", out.stdout);
    // Under a millisecond, to the microsecond, as `query` prints it (it read 0.0).
    let fast = fixture
        .run(&["stats", "--since", "1d", "--path-prefix", "/health"])
        .await;
    assert_eq!(fast.code, 0, "{fast:?}");
    assert!(
        fast.stdout
            .contains("latency:  p50 0.042 ms, p95 0.042 ms, p99 0.042 ms"),
        "{}",
        fast.stdout
    );
    assert!(out.stdout.contains("  5xx             1"), "{}", out.stdout);
    assert!(out.stdout.contains("  alice"), "{}", out.stdout);

    let out = fixture.run(&["export", "--otel"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "exported 4 rows\n");
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["url.path"], "/ancient");
    assert_eq!(first["client.address"], "127.0.0.1");

    let file = fixture._dir.path().join("trail.csv");
    let out = fixture
        .run(&[
            "export",
            "--format",
            "csv",
            "--user",
            "bob",
            "--output",
            file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",/orders/9,/orders/{id},,500,"), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_guard_dry_run_and_exit_codes() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;

    // The guard: one clear line on stderr, exit 1, nothing deleted.
    let out = fixture.run(&["purge", "--older-than", "1d"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("tower-audit: error: refusing to purge"),
        "{out:?}"
    );

    let out = fixture
        .run(&["purge", "--older-than", "90d", "--dry-run"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("would delete 1 rows older than "),
        "{out:?}"
    );

    let out = fixture
        .run(&["purge", "--older-than", "90d", "--requested-by", "ops"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("deleted 1 rows older than "),
        "{out:?}"
    );
    let out = fixture.run(&["query", "--method", "purge", "--json"]).await;
    let purge: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(purge["user_id"], "ops");
    assert_eq!(purge["extra"]["deleted"], 1);

    // Usage errors: exit 2.
    for args in [
        &["purge"][..],
        &["purge", "--older-than", "90"],
        &["query", "--status", "abc"],
        &["replay", "--target", "http://x", "--header", "no-colon"],
        &["frobnicate"],
        // Statuses no response has would match nothing, silently.
        &["query", "--status", "6xx"],
        &["query", "--status", "700"],
        &["query", "--status", "499-400"],
        // A cursor that is not one printed by `query`: mistyped, like any other value.
        &["query", "--cursor", "garbage"],
        &["query", "--cursor", ""],
        // A target the plain HTTP client cannot reach as given: mistyped, not a failure to run.
        &["replay", "--target", "https://127.0.0.1:1"],
        &["replay", "--target", "127.0.0.1:1"],
        &["replay", "--target", "http://127.0.0.1:1/api"],
    ] {
        let out = fixture.run(args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
    // No database (none given, or an empty one): exit 1, one line.
    for (args, env) in [
        (&["query"][..], None),
        (&["query"], Some("")),
        (&["query", "--database-url", ""], None),
        (&["query", "--database-url="], Some(fixture.url.as_str())),
    ] {
        let mut command = Command::new(BIN);
        command.args(args).env_remove("DATABASE_URL");
        if let Some(url) = env {
            command.env("DATABASE_URL", url);
        }
        let out = command.output().await.unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {out:?}");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            "tower-audit: error: no database: pass --database-url or set DATABASE_URL\n",
            "{args:?} {env:?}"
        );
    }
    // A database that cannot be opened: exit 1, one line that says the cause once, though
    // sea-orm's error prints its source and sqlx's its own.
    let out = fixture
        .run(&[
            "query",
            "--database-url",
            "sqlite:///nonexistent/dir/audit.db",
        ])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_eq!(
        out.stderr.matches("unable to open database file").count(),
        1,
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_new_rows() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;

    let out = fixture.run(&["tail", "-n", "2"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[1].starts_with("3 ") && lines[2].starts_with("4 "),
        "oldest of the two first"
    );

    let mut child = fixture
        .command(&["tail", "-f", "-n", "1", "--json", "--interval", "1s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(first["id"], 4);
    // tail has printed its first row, so it is polling: the new row comes next.
    audit_log::Entity::insert(row(0, |m| m.path = "/new".into()))
        .exec(&fixture.db().await)
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let next: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(
        (next["id"].as_i64(), next["path"].as_str()),
        (Some(5), Some("/new"))
    );
    child.kill().await.unwrap();
}

/// `tail -f` prints each row on its own line, its cells two spaces apart: a row without an
/// error ended in the separator before the empty error cell (two trailing spaces).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_lines_end_without_spaces() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let mut child = fixture
        .command(&["tail", "-f", "-n", "2", "--interval", "1s"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let failed = lines.next_line().await.unwrap().unwrap();
    let fine = lines.next_line().await.unwrap().unwrap();
    child.kill().await.unwrap();
    // Bob's failure ends with its error; the anonymous row with its path, and nothing after.
    assert!(failed.starts_with("3  "), "{failed:?}");
    assert!(
        failed.ends_with("  /orders/9  database is away"),
        "{failed:?}"
    );
    assert!(fine.starts_with("4  "), "{fine:?}");
    assert!(fine.ends_with("  -  /health"), "{fine:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_a_running_quickstart() {
    let fixture = Fixture::new().await;
    // Record a session on one quickstart instance.
    let db = fixture.db().await;
    let (audit, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let original =
        support::Server::start(quickstart::app(quickstart::AppState::default(), audit)).await;
    let client = support::client();
    let post = |url: String, token: Option<&str>, body: &str| {
        let mut request = http::Request::post(url).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(support::full(body.to_owned())).unwrap()
    };
    let login = r#"{"username":"alice","password":"correct horse"}"#;
    let (_, body) = support::send(&client, post(original.url("/login"), None, login)).await;
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    for item in ["book", "pen"] {
        let body = format!(r#"{{"item":"{item}"}}"#);
        let (status, _) =
            support::send(&client, post(original.url("/orders"), Some(&token), &body)).await;
        assert_eq!(status, 201);
    }
    original.stop().await;
    guard.shutdown(Duration::from_secs(30)).await.unwrap();

    // A fresh instance that audits nothing, and a token there.
    let (audit, fresh_guard) = AuditLayer::builder(db.clone())
        .skip_if(|_| true)
        .build()
        .unwrap();
    let fresh =
        support::Server::start(quickstart::app(quickstart::AppState::default(), audit)).await;
    let (_, body) = support::send(&client, post(fresh.url("/login"), None, login)).await;
    let fresh_token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let fresh_token = fresh_token["token"].as_str().unwrap();
    let target = format!("http://{}", fresh.addr);

    let out = fixture
        .run(&["replay", "--target", &target, "--dry-run"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "#1 POST /login: skipped: request body was redacted\n\
         #2 POST /orders: would send\n\
         #3 POST /orders: would send\n\
         0 sent, 1 skipped, 0 failed or different\n"
    );

    // Without the token: 401s where 201s were recorded, exit 3.
    let out = fixture.run(&["replay", "--target", &target]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("#2 POST /orders: sent 401 (recorded 201)  MISMATCH"),
        "{out:?}"
    );

    let header = format!("authorization: Bearer {fresh_token}");
    let out = fixture
        .run(&[
            "replay", "--target", &target, "--header", &header, "--rate", "50",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .ends_with("2 sent, 1 skipped, 0 failed or different\n"),
        "{out:?}"
    );
    let request = http::Request::get(fresh.url("/orders/2"))
        .header("authorization", format!("Bearer {fresh_token}"))
        .body(support::empty())
        .unwrap();
    let (status, body) = support::send(&client, request).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], br#"{"id":2,"order":{"item":"pen"}}"#);
    fresh.stop().await;
    fresh_guard.shutdown(Duration::from_secs(5)).await.unwrap();

    // Nothing listens there any more: failures, exit 3, the cause on the line.
    let out = fixture
        .run(&["replay", "--target", &target, "--stop-on-error"])
        .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout.contains("FAILED: client error (Connect)"),
        "{out:?}"
    );
    assert!(out.stdout.contains("(stopped at the first)"), "{out:?}");

    // Found by a probe: a target that takes connections and never answers held the replay for
    // ever, and its lines came only at its end, so one killed said nothing of what it sent.
    // Each line now comes as its record's outcome is known, and a request waits `--timeout`.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let mut child = fixture
        .command(&["replay", "--target", &target, "--timeout", "20s"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("the first line before the replay ends")
        .unwrap();
    assert_eq!(
        first.as_deref(),
        Some("#1 POST /login: skipped: request body was redacted")
    );
    child.kill().await.unwrap();
    let out = fixture
        .run(&["replay", "--target", &target, "--timeout", "1s"])
        .await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("#2 POST /orders: FAILED: no response within 1s"),
        "{out:?}"
    );
    held.abort();
}

/// Found by a probe: `replay | head -1` printed one line, and the replay went on sending every
/// other request unseen (its lines failed to print, and were ignored). A replay whose output
/// cannot be written any more now stops there, quietly for a reader gone (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_whose_reader_goes_away_sends_no_more() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ROWS: usize = 30;
    let fixture = Fixture::new().await;
    let db = fixture.db().await;
    for i in 0..ROWS {
        audit_log::Entity::insert(row(1, |m| {
            m.method = "POST".into();
            m.path = "/orders".into();
            m.status = Some(201);
            m.request_body = Some(format!(r#"{{"i":{i}}}"#));
            m.request_headers = Some(serde_json::json!({"content-type": ["application/json"]}));
        }))
        .exec(&db)
        .await
        .unwrap();
    }
    let received = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&received);
    let target = support::Server::start(axum::Router::new().route(
        "/orders",
        axum::routing::post(move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                (http::StatusCode::CREATED, "created")
            }
        }),
    ))
    .await;
    // Ten a second: the whole replay takes three seconds, the first line comes at once.
    let mut child = fixture
        .command(&["replay", "--target", &target.url(""), "--rate", "10"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    assert!(first.ends_with("sent 201 (recorded 201)"), "{first}");
    drop(lines);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the replay ends")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let sent = received.load(Ordering::SeqCst);
    assert!((1..ROWS / 2).contains(&sent), "{sent} of {ROWS} sent");
    target.stop().await;
}

/// `replay --dry-run` said "would send" for a path cut for the queue's budget (sending it then
/// failed as an invalid URI) and for a gRPC call stored as JSON, which it would have sent as
/// an HTTP body; it now says why each is skipped, and sends what is as recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_dry_run_says_why_cut_heads_and_grpc_calls_are_skipped() {
    let fixture = Fixture::new().await;
    let db = fixture.db().await;
    audit_log::Entity::insert_many([
        row(0, |m| {
            m.method = "POST".into();
            m.path = "/files/ …[truncated, 900 bytes total]".into();
        }),
        row(0, |m| {
            m.method = "PUT".into();
            m.path = "/forms".into();
            m.request_body = Some("a=1".into());
            m.request_bytes = 3;
            m.request_headers = Some(serde_json::json!("[headers not captured, 3000 bytes]"));
        }),
        row(0, |m| {
            m.method = "POST".into();
            m.path = "/shop.Orders/Create".into();
            m.grpc_status = Some(0);
            m.grpc_messages_in = Some(1);
            m.request_body = Some(r#"{"item":"pen"}"#.into());
        }),
        row(0, |m| {
            m.method = "DELETE".into();
            m.path = "/orders/1".into();
            m.user_agent = Some("curl …[truncated, 900 bytes total]".into());
        }),
    ])
    .exec(&db)
    .await
    .unwrap();
    let out = fixture
        .run(&["replay", "--target", "http://127.0.0.1:9", "--dry-run"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "#1 POST /files/ …[truncated, 900 bytes total]: skipped: path was truncated (stored as \
         cut, the request was not)\n\
         #2 PUT /forms: skipped: request headers were not captured ([headers not captured, 3000 \
         bytes]): the content-type the body was sent with is unknown\n\
         #3 POST /shop.Orders/Create: skipped: gRPC call: its messages are stored decoded or \
         described, not framed as sent\n\
         #4 DELETE /orders/1: would send\n\
         0 sent, 3 skipped, 0 failed or different\n"
    );
}

/// An age that reaches back before the earliest time a timestamp holds is a usage error (exit
/// 2) that names the flag, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ages_beyond_the_calendar_are_usage_errors() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    for args in [
        &["query", "--since", "100000000d"][..],
        &["query", "--until", "100000000d"],
        &["purge", "--dry-run", "--older-than", "100000000d"],
    ] {
        let out = fixture.run(args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(args[args.len() - 2]),
            "{args:?}: {out:?}"
        );
    }
}

/// Values no run can honour are usage errors (exit 2) that name the flag: a polling interval
/// of zero (a panic), a page of no rows (one row came back), a purge in batches of no rows
/// (batches of one), a rate of no requests per second or none at all (taken as no limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_values_are_usage_errors() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let replay = ["replay", "--target", "http://127.0.0.1:1", "--dry-run"];
    let rate = |rate: &'static str| [&replay[..], &["--rate", rate]].concat();
    for args in [
        vec!["tail", "-f", "--interval", "0s"],
        vec!["query", "--limit", "0"],
        vec!["purge", "--older-than", "90d", "--batch-size", "0"],
        rate("0"),
        rate("nan"),
        rate("inf"),
        [&replay[..], &["--rate=-0.5"]].concat(),
    ] {
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        let flag = args.iter().rev().find(|a| a.starts_with("--")).unwrap();
        let flag = flag.split('=').next().unwrap();
        assert!(out.stderr.contains(flag), "{args:?}: {out:?}");
    }
}

/// Counts beyond what the command takes are usage errors (exit 2) that name the flag and its
/// maximum: they panicked (exit 101) in the page's `limit + 1` or in sqlx, which binds a
/// `LIMIT` as a signed 64-bit integer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_beyond_the_maximum_are_usage_errors() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let purge = ["purge", "--older-than", "1d", "--allow-recent", "--dry-run"];
    for (args, max) in [
        (vec!["query", "--limit", "18446744073709551615"], "1000000"),
        (vec!["query", "--limit", "9223372036854775807"], "1000000"),
        (vec!["query", "--limit", "1000001"], "1000000"),
        (vec!["tail", "-n", "9223372036854775807"], "1000000"),
        (vec!["stats", "--top", "18446744073709551615"], "1000000"),
        (
            [&purge[..], &["--batch-size", "18446744073709551615"]].concat(),
            "30000",
        ),
        ([&purge[..], &["--batch-size", "30001"]].concat(), "30000"),
    ] {
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        let flag = match args[args.len() - 2] {
            "-n" => "--lines",
            flag => flag,
        };
        assert!(out.stderr.contains(flag), "{args:?}: {out:?}");
        assert!(out.stderr.contains(max), "{args:?}: {out:?}");
    }
    for args in [
        vec!["query", "--limit", "1000000", "--json"],
        vec!["tail", "-n", "1000000", "--json"],
        [&purge[..], &["--batch-size", "30000"]].concat(),
    ] {
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    }
    let out = fixture.run(&["stats", "--top", "1000000"]).await;
    assert_eq!(out.code, 0, "{out:?}");
}

/// Rates whose interval a `Duration` cannot hold, too long or too short, are still rates, not
/// panics: the one recorded POST is sent (and fails: nothing listens there, exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_rates_replay_without_panicking() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    for rate in ["1e300", "1e-300"] {
        let args = ["replay", "--target", "http://127.0.0.1:1", "--rate", rate];
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        assert!(
            out.stdout.contains("POST /orders: FAILED"),
            "{args:?}: {out:?}"
        );
    }
}

/// `tail -n 0` shows no row, as `tail -f -n 0` did: the newest one came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_of_no_lines_shows_no_row() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let out = fixture.run(&["tail", "-n", "0"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "the header alone: {out:?}");
    let out = fixture.run(&["tail", "-n", "0", "--json"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
}

/// Found by a probe: user ids a terminal draws alike (`admin`, `admin` with a zero-width space,
/// a byte order mark or a trailing space) were shown as the same name in `query` and `stats`,
/// so a reviewer's `--user admin` missed the others' rows; a user named `-` read as no user.
/// They are now told apart: the invisible characters and spaces at either end are escaped, and
/// a stored `-` is `\u{2d}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_values_are_told_apart_on_the_terminal() {
    let fixture = Fixture::new().await;
    let users = [
        "admin",
        "admin\u{200b}",
        "ad\u{2060}min",
        "admin\u{feff}",
        "admin ",
        "-",
    ];
    let db = fixture.db().await;
    for (i, user) in users.iter().enumerate() {
        audit_log::Entity::insert(row(i as i64, |m| m.user_id = Some((*user).into())))
            .exec(&db)
            .await
            .unwrap();
    }
    audit_log::Entity::insert(row(9, |m| m.user_id = None))
        .exec(&db)
        .await
        .unwrap();
    let shown = [
        "admin",
        "admin\\u{200b}",
        "ad\\u{2060}min",
        "admin\\u{feff}",
        "admin\\u{20}",
        "\\u{2d}",
    ];
    let out = fixture.run(&["stats"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let by_user: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| *l != "by user:")
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or_default())
        .collect();
    for name in shown.iter().chain(&["-"]) {
        assert_eq!(
            by_user.iter().filter(|u| *u == name).count(),
            1,
            "{name} in {by_user:?}"
        );
    }
    let out = fixture.run(&["query"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let cells: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    for name in shown.iter().chain(&["-"]) {
        assert!(
            cells.iter().any(|row| row.contains(name)),
            "{name} in {cells:?}"
        );
    }
    assert!(!out.stdout.contains('\u{200b}') && !out.stdout.contains('\u{feff}'));
}

/// Control characters stored in the database reach the terminal as visible escapes in the
/// human output (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`), where a line feed split a table
/// row and an escape sequence could rewrite the screen; `--json` and CSV keep the values as
/// they were, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_from_the_database_are_escaped_on_the_terminal() {
    let fixture = Fixture::new().await;
    let user = "eve\nmallory";
    let path = "/x\x1b[2J\ty";
    let route = "/r\r\u{202e}\u{85}\x7f";
    let error = "gone\x1b[1A";
    audit_log::Entity::insert(row(0, |m| {
        m.user_id = Some(user.into());
        m.path = path.into();
        m.route = Some(route.into());
        m.error = Some(error.into());
    }))
    .exec(&fixture.db().await)
    .await
    .unwrap();
    let raw = |text: &str| {
        text.chars()
            .any(|c| c.is_control() && c != '\n' || ('\u{202a}'..='\u{202e}').contains(&c))
    };
    for args in [
        &["query"][..],
        &["tail", "-n", "1"],
        &["stats"],
        &["replay", "--target", "http://127.0.0.1:9", "--dry-run"],
    ] {
        let out = fixture.run(args).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(!raw(&out.stdout), "{args:?}: {:?}", out.stdout);
        // One line per row: the header and the row, or stats' fixed lines.
        if args[0] != "stats" && args[0] != "replay" {
            assert_eq!(out.stdout.lines().count(), 2, "{args:?}: {:?}", out.stdout);
        }
    }
    let out = fixture.run(&["query"]).await;
    let shown = out.stdout.lines().nth(1).unwrap();
    for escaped in ["eve\\nmallory", "/x\\u{1b}[2J\\ty", "gone\\u{1b}[1A"] {
        assert!(shown.contains(escaped), "{escaped} in {shown:?}");
    }
    let out = fixture.run(&["stats"]).await;
    assert!(
        out.stdout.contains("  /r\\r\\u{202e}\\u{85}\\u{7f}"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("  eve\\nmallory"), "{:?}", out.stdout);
    let mut child = fixture
        .command(&["tail", "-f", "-n", "1", "--interval", "1h"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let followed = lines.next_line().await.unwrap().unwrap();
    child.kill().await.unwrap();
    assert!(followed.contains("eve\\nmallory"), "{followed:?}");
    assert!(!raw(&followed), "{followed:?}");

    // The machine-readable forms keep the stored values.
    let out = fixture.run(&["query", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        (value["user_id"].as_str(), value["path"].as_str()),
        (Some(user), Some(path))
    );
    let out = fixture.run(&["export", "--format", "csv"]).await;
    assert!(out.stdout.contains(user), "{:?}", out.stdout);
    assert!(out.stdout.contains(route), "{:?}", out.stdout);
}

/// `--client-ip` takes an address in any of its spellings and matches the form the writer
/// stores (`2001:DB8::1` and `::ffff:10.1.2.3` matched nothing); what is not one address (a
/// CIDR range, a typo) is a usage error, where it silently matched nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_match_in_any_spelling_and_ranges_are_refused() {
    let fixture = Fixture::new().await;
    audit_log::Entity::insert_many([
        row(0, |m| m.client_ip = Some("2001:db8::1".into())),
        row(0, |m| m.client_ip = Some("10.1.2.3".into())),
    ])
    .exec(&fixture.db().await)
    .await
    .unwrap();
    for (given, stored) in [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0:0:0:0:0:1", "2001:db8::1"),
        ("10.1.2.3", "10.1.2.3"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
    ] {
        let out = fixture
            .run(&["query", "--json", "--client-ip", given])
            .await;
        assert_eq!(out.code, 0, "{given}: {out:?}");
        let rows: Vec<serde_json::Value> = out
            .stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(rows.len(), 1, "{given}: {out:?}");
        assert_eq!(rows[0]["client_ip"], stored, "{given}");
    }
    for given in ["10.0.0.0/8", "not-an-ip", ""] {
        let out = fixture.run(&["query", "--client-ip", given]).await;
        assert_eq!(out.code, 2, "{given:?}: {out:?}");
        assert!(out.stderr.contains("--client-ip"), "{out:?}");
        assert!(
            out.stderr.contains("CIDR range is not supported"),
            "{out:?}"
        );
    }
}

/// An export that fails leaves the file it was to replace as it was, and nothing beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_export_keeps_the_previous_file() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let dir = fixture._dir.path();
    let file = dir.join("trail.csv");
    let path = file.to_str().unwrap();
    std::fs::write(&file, "yesterday's export\n").unwrap();
    // A database with no audit_log (an empty file is an empty SQLite database): the export
    // fails once the file is chosen.
    std::fs::write(dir.join("empty.db"), "").unwrap();
    let empty = format!("sqlite://{}?mode=rwc", dir.join("empty.db").display());
    let args = ["export", "--format", "csv", "--output", path];
    let out = fixture
        .run(&[&args[..], &["--database-url", &empty]].concat())
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no such table"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "yesterday's export\n"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with("audit.db") && !name.starts_with("empty.db"))
        .collect();
    names.sort();
    assert_eq!(names, ["trail.csv"]);

    // A successful one replaces it.
    let out = fixture.run(&args).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 5);
    // A device is written directly.
    #[cfg(unix)]
    {
        let out = fixture.run(&["export", "--output", "/dev/null"]).await;
        assert_eq!(out.code, 0, "{out:?}");
    }
}

/// A time range that ends before it starts selects nothing: a usage error (exit 2), not an
/// empty answer, nor `verify`'s "intact (0 rows)" with exit 0 for a scheduled check whose
/// times were swapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_that_ends_before_it_starts_is_a_usage_error() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let range = ["--since", "1h", "--until", "2h"];
    let mut commands = vec![
        vec!["query"],
        vec!["tail"],
        vec!["stats"],
        vec!["export"],
        vec!["replay", "--target", "http://127.0.0.1:1", "--dry-run"],
    ];
    if cfg!(feature = "integrity") {
        commands.push(vec!["verify"]);
    }
    for command in commands {
        let args = [&command[..], &range[..]].concat();
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("--since") && out.stderr.contains("--until"),
            "{args:?}: {out:?}"
        );
    }
    // RFC 3339 times too, and the same time twice (before it and at or after it: nothing).
    for until in ["2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"] {
        let args = ["query", "--since", "2026-06-01T00:00:00Z", "--until", until];
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
    let args = ["query", "--since", "2h", "--until", "1h"];
    let out = fixture.run(&args).await;
    assert_eq!(out.code, 0, "{args:?}: {out:?}");
}

/// A proof is of a time range: any other filter leaves holes in the chains, which then verify
/// as deleted rows (or, at a chain's start, not at all). `export --with-proof` with one is a
/// usage error (exit 2) that names it, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_with_proof_takes_only_a_time_range() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let proof = ["export", "--with-proof", "--since", "1d"];
    for filter in [
        &["--user", "alice"][..],
        &["--tenant", "acme"],
        &["--method", "POST"],
        &["--path-prefix", "/orders"],
        &["--route", "/orders"],
        &["--status", "2xx"],
        &["--client-ip", "127.0.0.1"],
        &["--request-id", "r1"],
        &["--errors"],
        &["--body-contains", "book"],
    ] {
        let args = [&proof[..], filter].concat();
        let out = fixture.run(&args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("--with-proof") && out.stderr.contains(filter[0]),
            "{args:?}: {out:?}"
        );
    }
    let out = fixture.run(&proof).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, "exported 3 rows\n", "{out:?}");
}

/// A pipe nobody reads any more, for a command's stdout or stderr.
#[cfg(unix)]
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

/// Runs `args` with stdout into a pipe nobody reads (`tower-audit query | head -0`, or a
/// `head -1` that has its line), and stderr captured.
#[cfg(unix)]
async fn run_into_closed_stdout(command: &mut Command) -> Output {
    // Not `output()`, which pipes both streams whatever was set.
    let out = command
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    Output {
        code: out.status.code().unwrap(),
        stdout: String::new(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A reader that goes away (`tower-audit query | head -1`) has what it wanted: the command
/// stops quietly with success, as ripgrep does (and coreutils, killed by SIGPIPE, say nothing
/// either), where it printed "Broken pipe" and exited 1. `purge` and `migrate` changed the
/// database before their report was lost: they give it on stderr instead. Never a panic (exit
/// 101) after the work is done.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_command_quietly() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    for (args, report) in [
        (&["migrate"][..], "audit_log is up to date\n"),
        (
            &["purge", "--older-than", "90d", "--dry-run"],
            "would delete 1 rows older than ",
        ),
        (
            &["purge", "--older-than", "90d"],
            "deleted 1 rows older than ",
        ),
    ] {
        let out = run_into_closed_stdout(&mut fixture.command(args)).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with(report), "{args:?}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
    }
    // The purge above did its work, and said so.
    let out = fixture.run(&["query", "--method", "purge", "--json"]).await;
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    for args in [
        &["query"][..],
        &["query", "--json", "--limit", "1"],
        &["tail", "-n", "2"],
        &["tail", "-f", "-n", "1"],
        &["stats"],
        &["export"],
        &["export", "--format", "csv"],
        &["replay", "--target", "http://127.0.0.1:9", "--dry-run"],
    ] {
        let out = run_into_closed_stdout(&mut fixture.command(args)).await;
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
    }
    // The cursor note of a full page, or the count of an export, on a closed stderr.
    for args in [&["query", "--limit", "1"][..], &["export"]] {
        let out = fixture
            .command(args)
            .stdout(Stdio::piped())
            .stderr(closed_pipe())
            .spawn()
            .unwrap()
            .wait_with_output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(!out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}

/// `export -o /dev/stdout | head -1`: a pipe named as the output file, whose reader has gone,
/// ends the export quietly as stdout does (it failed with "i/o error: Broken pipe", exit 1).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_named_as_the_output_file_ends_the_export_quietly() {
    let fixture = Fixture::new().await;
    seed(&fixture).await;
    for format in ["ndjson", "csv"] {
        let args = ["export", "--format", format, "-o", "/dev/stdout"];
        let out = run_into_closed_stdout(&mut fixture.command(&args)).await;
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
    }
}

/// `tail -f | head -1` whose reader has gone while no row arrives: `tail -f` ends then, as
/// coreutils' does, rather than at the next row, which a quiet trail may not see for hours.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_ends_when_its_reader_goes_while_no_row_arrives() {
    let fixture = Fixture::new().await;
    // An interval far longer than the test's patience: only the closed pipe can end it.
    let mut command = fixture.command(&["tail", "-f", "-n", "0", "--interval", "1h"]);
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        run_into_closed_stdout(&mut command),
    )
    .await
    .expect("tail -f went on following for a reader that had gone");
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
}

/// The database password stays out of error messages, which end up in a scheduled job's log:
/// a URL with a mistyped scheme, or one that does not parse, was printed whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_database_url_is_reported_without_its_password() {
    let fixture = Fixture::new().await;
    for url in [
        "postgress://app:hunter2@127.0.0.1:1/audit",
        "mysql//app:hunter2@127.0.0.1:1/audit",
        "app:hunter2@127.0.0.1:1/audit",
    ] {
        let out = fixture.run(&["query", "--database-url", url]).await;
        assert_eq!(out.code, 1, "{url}: {out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{url}: {out:?}");
        assert!(!out.stderr.contains("hunter2"), "{url}: {out:?}");
    }
    let out = fixture
        .run(&[
            "query",
            "--database-url",
            "postgress://app:hunter2@db/audit",
        ])
        .await;
    assert!(
        out.stderr.contains("'postgress://app:***@db/audit'"),
        "the rest of the URL still shows: {out:?}"
    );
}

/// Several legal holds at once: two users and a tenant. `--hold-user` took one value and
/// conflicted with `--hold-tenant`, and `PurgeOptions::legal_hold` kept only its last filter, so
/// a second held user's rows went in the purge that held the first's.
#[tokio::test]
async fn purge_keeps_the_rows_of_every_legal_hold() {
    use sea_orm::{ColumnTrait, QueryFilter};
    let fixture = Fixture::new().await;
    let db = fixture.db().await;
    let rows = [
        ("alice", "t1"),
        ("bob", "t1"),
        ("carol", "t1"),
        ("dave", "t9"),
        ("erin", "t2"),
    ]
    .map(|(user, tenant)| {
        row(200, |m| {
            m.user_id = Some(user.into());
            m.tenant_id = Some(tenant.into());
        })
    });
    audit_log::Entity::insert_many(rows)
        .exec(&db)
        .await
        .unwrap();
    let out = fixture
        .run(&[
            "purge",
            "--older-than",
            "90d",
            "--hold-user",
            "alice",
            "--hold-user",
            "bob",
            "--hold-tenant",
            "t9",
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("deleted 2 rows "), "{out:?}");
    let mut kept: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::Method.ne("PURGE"))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.user_id)
        .collect();
    kept.sort();
    assert_eq!(kept, ["alice", "bob", "dave"]);
    let out = fixture.run(&["query", "--method", "purge", "--json"]).await;
    let purge: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(purge["extra"]["legal_holds"], 3, "{purge}");
}

/// A database without the audit tables (a URL that names the wrong database, a SQLite file of
/// another program) is an error that says what to check, on every
/// backend: the database's own words ("no such table", "relation … does not exist",
/// "Table '…' doesn't exist") did not say that the tables come from `migrate`.
#[tokio::test]
async fn a_database_without_the_audit_tables_says_what_to_do() {
    use support::Backend;
    for backend in Backend::ALL {
        if backend.base_url().is_none() {
            eprintln!("{}: not configured, not run", backend.name());
            continue;
        }
        let test = support::TestDb::create(backend, "no_tables").await;
        let url = match (backend, test.schema()) {
            (Backend::Postgres, Some(schema)) => {
                let join = if test.url().contains('?') { '&' } else { '?' };
                format!("{}{join}options=-c%20search_path%3D{schema}", test.url())
            }
            _ => test.url().to_owned(),
        };
        if matches!(backend, Backend::Sqlite) {
            // The file exists, without the tables: the CLI creates no file but with `migrate`.
            drop(tower_audit::connect(url.clone()).await.unwrap());
        }
        for args in [&["query"][..], &["verify"], &["stats"]] {
            let (out, stderr) = run_with_key(args, &url).await;
            assert_eq!(
                out.status.code(),
                Some(1),
                "{} {args:?}: {stderr}",
                backend.name()
            );
            assert!(
                stderr.contains("check the URL, or create them with `tower-audit migrate`"),
                "{} {args:?}: {stderr}",
                backend.name()
            );
        }
        // Other failures get no such hint.
        let out = Command::new(BIN)
            .args([
                "query",
                "--database-url",
                "sqlite:///nonexistent/dir/audit.db",
            ])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("migrate"), "{stderr}");
        test.cleanup().await;
    }
}

/// Runs the CLI on `url` with a chain key in its environment; its output and its stderr.
async fn run_with_key(args: &[&str], url: &str) -> (std::process::Output, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", url)
        .env("TOWER_AUDIT_HMAC_KEY", "ab".repeat(32))
        .env("TOWER_AUDIT_HMAC_KEY_ID", "k1")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (out, stderr)
}

/// A mistyped SQLite path, given with the README's `?mode=rwc` or plain as `--help` shows it,
/// is an error for every command but `migrate` that names the way out, and leaves no empty
/// database file behind: a command that reads (or purges) has nothing to do in a database it
/// would have to create. `migrate` creates the file from either form (the plain one failed with
/// "unable to open database file").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_migrate_creates_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, query) in [("typo.db", "?mode=rwc"), ("plain.db", "")] {
        let path = dir.path().join(name);
        let url = format!("sqlite://{}{query}", path.display());
        let commands: &[&[&str]] = &[
            &["query"],
            &["tail"],
            &["stats"],
            &["export"],
            &["purge", "--older-than", "90d"],
            &["replay", "--target", "http://127.0.0.1:9", "--dry-run"],
            #[cfg(feature = "integrity")]
            &["verify"],
        ];
        for args in commands {
            let (out, stderr) = run_with_key(args, &url).await;
            assert_eq!(out.status.code(), Some(1), "{url} {args:?}: {stderr}");
            assert!(!path.exists(), "{args:?} created {}", path.display());
            assert!(
                stderr.contains("tower-audit migrate"),
                "{url} {args:?}: {stderr}"
            );
        }
        let out = Command::new(BIN)
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{url}: {out:?}");
        assert!(path.exists(), "{url}");
    }
}

/// PostgreSQL's error line: the server's message, SQLSTATE, detail and hint, as `psql` shows
/// them, and not the line of the server's own C source that raised it (sqlx's Display of the
/// error ends with "at line 3911", which tells an operator nothing). Runs where
/// `TOWER_AUDIT_TEST_POSTGRES_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_error_shows_detail_and_hint_not_a_source_line() {
    use sea_orm::ConnectionTrait;
    use support::Backend;
    if Backend::Postgres.base_url().is_none() {
        eprintln!("postgres: not configured, not run");
        return;
    }
    let test = support::TestDb::create(Backend::Postgres, "pg_error_line").await;
    let db = test.migrated().await;
    // A database that refuses deletions with its reasons, as a legal hold enforced there would.
    for sql in [
        "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         RAISE EXCEPTION 'audit rows are frozen' USING DETAIL = 'legal hold LH-7', \
         HINT = 'ask the compliance team'; END $$",
        "CREATE TRIGGER frozen BEFORE DELETE ON audit_log FOR EACH ROW \
         EXECUTE FUNCTION refuse_delete()",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    audit_log::Entity::insert(row(200, |_| {}))
        .exec(&db)
        .await
        .unwrap();
    let schema = test.schema().unwrap();
    let join = if test.url().contains('?') { '&' } else { '?' };
    let url = format!("{}{join}options=-c%20search_path%3D{schema}", test.url());
    let out = Command::new(BIN)
        .args(["purge", "--older-than", "90d"])
        .env("DATABASE_URL", &url)
        .env_remove("TOWER_AUDIT_SIGNING_KEY")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "audit rows are frozen (SQLSTATE P0001); detail: legal hold LH-7; \
             hint: ask the compliance team"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains(" at line "), "{stderr}");
    // The hint a table that is not there gets keeps the server's words and code.
    db.execute_unprepared("DROP TABLE audit_log").await.unwrap();
    let out = Command::new(BIN)
        .args(["query"])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("relation \"audit_log\" does not exist (SQLSTATE 42P01)"),
        "{stderr}"
    );
    assert!(stderr.contains("`tower-audit migrate`"), "{stderr}");
    assert!(!stderr.contains(" at line "), "{stderr}");
    test.cleanup().await;
}

/// `tail -f` shows a row whose transaction commits after a later one's, as rows of several
/// writers on one PostgreSQL or MySQL database do (SQLite writes one transaction at a time, in
/// id order). Runs where `TOWER_AUDIT_TEST_POSTGRES_URL` or `TOWER_AUDIT_TEST_MYSQL_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_rows_committed_out_of_id_order() {
    use sea_orm::TransactionTrait;
    use support::Backend;
    type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;
    async fn next_path(lines: &mut Lines) -> String {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a row within 30 s")
            .unwrap()
            .unwrap();
        let row: serde_json::Value = serde_json::from_str(&line).unwrap();
        row["path"].as_str().unwrap().to_owned()
    }
    for backend in [Backend::Postgres, Backend::MySql] {
        if backend.base_url().is_none() {
            eprintln!("{}: not configured, not run", backend.name());
            continue;
        }
        let test = support::TestDb::create(backend, "tail_out_of_order").await;
        let db = test.migrated().await;
        let url = match (backend, test.schema()) {
            (Backend::Postgres, Some(schema)) => {
                let join = if test.url().contains('?') { '&' } else { '?' };
                format!("{}{join}options=-c%20search_path%3D{schema}", test.url())
            }
            _ => test.url().to_owned(),
        };
        let insert = |path: &'static str| row(0, move |m| m.path = path.into());
        // Found by a probe: a transaction under way when tail starts took an id below the
        // highest, and its row was never shown.
        let early = db.begin().await.unwrap();
        audit_log::Entity::insert(insert("/early"))
            .exec(&early)
            .await
            .unwrap();
        audit_log::Entity::insert(insert("/first"))
            .exec(&db)
            .await
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["tail", "-f", "-n", "1", "--json", "--interval", "1s"])
            .env("DATABASE_URL", &url)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(next_path(&mut lines).await, "/first");
        // tail is following. A writer takes the next id, and commits after another writer
        // that took the one after it.
        let slow = db.begin().await.unwrap();
        audit_log::Entity::insert(insert("/slow"))
            .exec(&slow)
            .await
            .unwrap();
        audit_log::Entity::insert(insert("/fast"))
            .exec(&db)
            .await
            .unwrap();
        assert_eq!(next_path(&mut lines).await, "/fast", "{}", backend.name());
        slow.commit().await.unwrap();
        assert_eq!(next_path(&mut lines).await, "/slow", "{}", backend.name());
        early.commit().await.unwrap();
        assert_eq!(next_path(&mut lines).await, "/early", "{}", backend.name());
        child.kill().await.unwrap();
        test.cleanup().await;
    }
}

#[cfg(feature = "integrity")]
mod verify {
    use super::*;
    use tower::ServiceExt;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// `args` with the HMAC key in the environment, as an operator would run them.
    fn keyed(fixture: &Fixture, args: &[&str], key_id: &str) -> Command {
        let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
        let mut command = fixture.command(args);
        command
            .env("TOWER_AUDIT_HMAC_KEY", hex)
            .env("TOWER_AUDIT_HMAC_KEY_ID", key_id)
            .env_remove("TOWER_AUDIT_HMAC_KEYS");
        command
    }

    /// Runs `args` with the HMAC key in the environment.
    async fn run_keyed(fixture: &Fixture, args: &[&str], key_id: &str) -> Output {
        let out = keyed(fixture, args, key_id).output().await.unwrap();
        Output {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Six requests through a writer on chain `api-1`.
    async fn six_chained_rows(db: &DatabaseConnection) {
        let integrity = tower_audit::integrity::Integrity::new("api-1", "k1", KEY.to_vec());
        let (layer, guard) = AuditLayer::builder(db.clone())
            .integrity(integrity)
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/orders/{id}", axum::routing::post(|| async { "created" }))
            .layer(layer);
        for i in 0..6 {
            let request = http::Request::post(format!("/orders/{i}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        guard.shutdown(Duration::from_secs(30)).await.unwrap();
    }

    /// A chain id written to fake a verdict: a carriage return and escape sequences that
    /// would erase the broken chain's line on a terminal and show "intact" in its place. The
    /// text verdict shows them as escapes, one line per chain; `--json` keeps the value.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_escapes_control_characters_of_a_chain_id() {
        use sea_orm::ConnectionTrait;
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        let forged = "zz\r\x1b[1A\x1b[2Kapi-1: intact (6 rows, up to seq 6)\nx";
        db.execute_unprepared(&format!(
            "UPDATE audit_log SET chain_id = '{forged}' WHERE chain_seq = 6"
        ))
        .await
        .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(!out.stdout.contains(['\r', '\x1b']), "{:?}", out.stdout);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{:?}", out.stdout);
        assert!(lines[0].starts_with("api-1: "), "{:?}", out.stdout);
        assert!(
            lines[1]
                .starts_with("zz\\r\\u{1b}[1A\\u{1b}[2Kapi-1: intact (6 rows, up to seq 6)\\nx: "),
            "{:?}",
            out.stdout
        );
        let out = run_keyed(&fixture, &["verify", "--json"], "k1").await;
        let ids: Vec<String> = out
            .stdout
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["chain_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert!(ids.iter().any(|id| id == forged), "{ids:?}");
    }

    /// `verify` without a key names the variables to set, and not a layer's configuration:
    /// it read "invalid audit layer configuration: no HMAC key: …" (the library's error for a
    /// builder setting), though no layer is built.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_without_a_key_names_the_variables_to_set() {
        let fixture = Fixture::new().await;
        let out = fixture
            .command(&["verify"])
            .env_remove("TOWER_AUDIT_HMAC_KEY")
            .env_remove("TOWER_AUDIT_HMAC_KEY_ID")
            .env_remove("TOWER_AUDIT_HMAC_KEYS")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr,
            "tower-audit: error: no HMAC key: set TOWER_AUDIT_HMAC_KEY and \
             TOWER_AUDIT_HMAC_KEY_ID (and TOWER_AUDIT_HMAC_KEYS for older keys)\n"
        );
    }

    /// A key shorter than a writer takes (an empty variable, `00`), current or older, is a
    /// configuration error (exit 1) on one line naming the variable, never the key: it
    /// reported every chain as `Modified` (exit 4), an alarm no row had raised.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_refuses_keys_shorter_than_a_writer_takes() {
        let fixture = Fixture::new().await;
        six_chained_rows(&fixture.db().await).await;
        let short = "cd".repeat(31);
        let older = format!("k0:{short}");
        for (key, keys, named) in [
            ("", None, "TOWER_AUDIT_HMAC_KEY must"),
            ("00", None, "TOWER_AUDIT_HMAC_KEY must"),
            (short.as_str(), None, "TOWER_AUDIT_HMAC_KEY must"),
            (
                "",
                Some(older.as_str()),
                "TOWER_AUDIT_HMAC_KEYS: the key of \"k0\"",
            ),
        ] {
            let mut command = keyed(&fixture, &["verify"], "k1");
            command.env("TOWER_AUDIT_HMAC_KEY", key);
            if let Some(keys) = keys {
                command
                    .env("TOWER_AUDIT_HMAC_KEYS", keys)
                    .env_remove("TOWER_AUDIT_HMAC_KEY");
            }
            let out = command.output().await.unwrap();
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(1), "{key:?} {keys:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(named), "{stderr}");
            assert!(stderr.contains("32 bytes"), "{stderr}");
            assert!(!stderr.contains(&short), "{stderr}");
            assert!(out.stdout.is_empty(), "{key:?} {keys:?}");
        }
    }

    /// `--json` gives an intact chain's end as an anchor; `--anchor` then shows a tail deleted
    /// with its checkpoints, which verifies intact without it. A malformed anchor is a usage
    /// error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_takes_anchors_kept_outside_the_database() {
        use sea_orm::ConnectionTrait;
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        let out = run_keyed(&fixture, &["verify", "--json"], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");
        let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let anchor = line["anchor"].as_str().expect("an anchor").to_owned();
        assert!(anchor.starts_with("api-1@6=v1:"), "{anchor}");
        assert_eq!(
            line["last_hash"].as_str(),
            anchor.split_once('=').map(|(_, hash)| hash)
        );
        let out = run_keyed(&fixture, &["verify", "--anchor", &anchor], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");

        for sql in [
            "DELETE FROM audit_log WHERE chain_seq > 4",
            "DELETE FROM audit_checkpoint",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(
            out.code, 0,
            "without the anchor the tail is not missed: {out:?}"
        );
        let out = run_keyed(&fixture, &["verify", "--anchor", &anchor], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(
            out.stdout.starts_with("api-1: TruncatedTail at seq 5"),
            "{out:?}"
        );

        for args in [
            &["verify", "--anchor", "api-1@six=v1:00"][..],
            &["verify", "--anchor", "api-1"],
        ] {
            let out = run_keyed(&fixture, args, "k1").await;
            assert_eq!(out.code, 2, "{args:?}: {out:?}");
            assert!(out.stderr.contains("--anchor"), "{args:?}: {out:?}");
        }
    }

    /// An anchor's hash copied in upper case is the same hash (it was a `BadCheckpoint`, exit
    /// 4), in the database and in an export; a hash without the writer's form (`v1:` and 64
    /// hex digits) is a usage error (exit 2), as a bad position is, where it was a break.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_reads_an_anchors_hash_in_either_case() {
        let fixture = Fixture::new().await;
        six_chained_rows(&fixture.db().await).await;
        let out = run_keyed(&fixture, &["verify", "--json"], "k1").await;
        let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let anchor = line["anchor"].as_str().expect("an anchor").to_owned();
        let (place, hash) = anchor.split_once('=').unwrap();
        let upper = format!("{place}={}", hash.to_uppercase());
        let file = fixture._dir.path().join("trail.ndjson");
        let file = file.to_str().unwrap();
        let out = fixture
            .run(&["export", "--with-proof", "--output", file])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        for args in [
            &["verify", "--anchor", &upper][..],
            &["verify", "--export", file, "--anchor", &upper],
        ] {
            let out = run_keyed(&fixture, args, "k1").await;
            assert_eq!(out.code, 0, "{args:?}: {out:?}");
            assert_eq!(out.stdout, "api-1: intact (6 rows, up to seq 6)\n");
        }
        let short = format!("{place}={}", &hash[..hash.len() - 1]);
        for bad in ["api-1@6=xx", "api-1@6=v1:", short.as_str()] {
            for args in [
                &["verify", "--anchor", bad][..],
                &["verify", "--export", file, "--anchor", bad],
            ] {
                let out = run_keyed(&fixture, args, "k1").await;
                assert_eq!(out.code, 2, "{args:?}: {out:?}");
                assert!(out.stderr.contains("--anchor"), "{args:?}: {out:?}");
                assert!(out.stderr.contains("64 hex digits"), "{args:?}: {out:?}");
            }
        }
    }

    /// A key id the keyring does not hold is quoted as text (it read `key id Some("k9")`), and
    /// a row whose key id was erased is `Modified` where a checkpoint vouches for it, without
    /// a `key id None` in sight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_names_an_unknown_key_id_as_text() {
        use sea_orm::ConnectionTrait;
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        db.execute_unprepared("UPDATE audit_log SET key_id = 'k9' WHERE chain_seq = 1")
            .await
            .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert_eq!(
            out.stdout,
            "api-1: UnknownKey at seq 1 (id 1): key id \"k9\" is not in the keyring\n"
        );
        db.execute_unprepared("UPDATE audit_log SET key_id = NULL WHERE chain_seq = 1")
            .await
            .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert_eq!(
            out.stdout,
            "api-1: Modified at seq 1 (id 1): the row names no key id: no writer seals a row \
             without one\n"
        );
    }

    /// On SQLite `occurred_at` is text, which the time filters compare: a row whose time is
    /// rewritten as the same instant spelled otherwise (an offset, a space for `T`) keeps its
    /// hash but drops out of time-ranged queries. `verify` names it as `Modified`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_names_a_time_spelled_otherwise_than_the_writer_spells_it() {
        use sea_orm::{ConnectionTrait, EntityTrait};
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");
        let at = |seq: i64| {
            let db = db.clone();
            async move {
                audit_log::Entity::find_by_id(seq)
                    .one(&db)
                    .await
                    .unwrap()
                    .unwrap()
                    .occurred_at
            }
        };
        let third = at(3).await;
        let offset = chrono::FixedOffset::east_opt(3600).unwrap();
        let respelled = third
            .with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        db.execute_unprepared(&format!(
            "UPDATE audit_log SET occurred_at = '{respelled}' WHERE chain_seq = 3"
        ))
        .await
        .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(
            out.stdout.starts_with(&format!(
                "api-1: Modified at seq 3 (id 3): occurred_at is stored as \"{respelled}\""
            )),
            "{out:?}"
        );

        // Put back as the writer wrote it, the chain is intact again; a space for the `T` on
        // another row is named too.
        let written = third.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
        let fifth = at(5).await.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        db.execute_unprepared(&format!(
            "UPDATE audit_log SET occurred_at = '{written}' WHERE chain_seq = 3; \
             UPDATE audit_log SET occurred_at = '{fifth}' WHERE chain_seq = 5"
        ))
        .await
        .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(
            out.stdout
                .starts_with("api-1: Modified at seq 5 (id 5): occurred_at is stored as"),
            "{out:?}"
        );
    }

    /// `verify --export` of a file that opens but does not read (a directory) names it, as it
    /// does one that does not open: it said "i/o error: Is a directory" alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_export_names_a_file_it_cannot_read() {
        let fixture = Fixture::new().await;
        let dir = fixture._dir.path().to_str().unwrap().to_owned();
        let missing = format!("{dir}/missing.ndjson");
        for (path, said) in [(&dir, "cannot read"), (&missing, "cannot open")] {
            let out = run_keyed(&fixture, &["verify", "--export", path], "k1").await;
            assert_eq!(out.code, 1, "{out:?}");
            assert!(
                out.stderr
                    .starts_with(&format!("tower-audit: error: {said} {path}: ")),
                "{out:?}"
            );
            assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        }
    }

    /// `verify --export` takes anchors too: a tail cut from the file together with its
    /// checkpoint lines verifies intact without one, and is a break (exit 4) with it. A
    /// malformed anchor is still a usage error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_export_takes_anchors_kept_outside_the_file() {
        let fixture = Fixture::new().await;
        six_chained_rows(&fixture.db().await).await;
        let out = run_keyed(&fixture, &["verify", "--json"], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");
        let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let anchor = line["anchor"].as_str().expect("an anchor").to_owned();
        assert!(anchor.starts_with("api-1@6=v1:"), "{anchor}");
        let path = |name: &str| {
            let path = fixture._dir.path().join(name);
            path.to_str().unwrap().to_owned()
        };
        let (file, cut) = (path("trail.ndjson"), path("cut.ndjson"));
        let out = fixture
            .run(&["export", "--with-proof", "--output", &file])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        let out = run_keyed(
            &fixture,
            &["verify", "--export", &file, "--anchor", &anchor],
            "k1",
        )
        .await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, "api-1: intact (6 rows, up to seq 6)\n");

        // Rows 5 and 6 cut from the file, and the checkpoint lines that vouch for them.
        let text = std::fs::read_to_string(&file).unwrap();
        let kept: String = text
            .lines()
            .filter(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["chain_seq"].as_i64().is_some_and(|seq| seq <= 4)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(kept.lines().count(), 4, "{text}");
        std::fs::write(&cut, kept).unwrap();
        let out = run_keyed(&fixture, &["verify", "--export", &cut], "k1").await;
        assert_eq!(
            out.code, 0,
            "without the anchor the tail is not missed: {out:?}"
        );
        let out = run_keyed(
            &fixture,
            &["verify", "--export", &cut, "--anchor", &anchor],
            "k1",
        )
        .await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(
            out.stdout.starts_with("api-1: TruncatedTail at seq 5"),
            "{out:?}"
        );

        let args = ["verify", "--export", &file, "--anchor", "api-1@six=v1:00"];
        let out = run_keyed(&fixture, &args, "k1").await;
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("--anchor"), "{out:?}");

        // Rows 1 and 2 cut from the start: a range's start, unless the file holds whole chains.
        let head_cut: String = text
            .lines()
            .filter(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["chain_seq"].as_i64().is_none_or(|seq| seq > 2)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(&cut, head_cut).unwrap();
        let out = run_keyed(&fixture, &["verify", "--export", &cut], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");
        for (file, code) in [(&file, 0), (&cut, 4)] {
            let args = ["verify", "--export", file, "--from-start"];
            let out = run_keyed(&fixture, &args, "k1").await;
            assert_eq!(out.code, code, "{out:?}");
        }
        let out = run_keyed(
            &fixture,
            &["verify", "--export", &cut, "--from-start"],
            "k1",
        )
        .await;
        assert!(out.stdout.starts_with("api-1: Deleted at seq 3"), "{out:?}");
        let out = run_keyed(&fixture, &["verify", "--from-start"], "k1").await;
        assert_eq!(out.code, 2, "--from-start needs --export: {out:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_reports_intact_and_broken_chains_and_exports() {
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;

        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, "api-1: intact (6 rows, up to seq 6)\n");

        // Without keys in the environment: a runtime error, no verdict.
        let out = fixture.run(&["verify"]).await;
        assert_eq!(out.code, 1, "{out:?}");
        assert!(out.stderr.contains("TOWER_AUDIT_HMAC_KEY"), "{out:?}");

        // An export with proof verifies offline, without a database.
        let file = fixture._dir.path().join("trail.ndjson");
        let file = file.to_str().unwrap();
        let out = fixture
            .run(&["export", "--with-proof", "--output", file])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        let out = run_keyed(
            &fixture,
            &[
                "verify",
                "--export",
                file,
                "--database-url",
                "sqlite://nowhere/x.db",
            ],
            "k1",
        )
        .await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, "api-1: intact (6 rows, up to seq 6)\n");
        // A proof is NDJSON only: a usage error (exit 2), as with --otel.
        for args in [
            &["export", "--with-proof", "--format", "csv"][..],
            &["export", "--with-proof", "--otel"],
        ] {
            let out = fixture.run(args).await;
            assert_eq!(out.code, 2, "{args:?}: {out:?}");
            assert!(out.stderr.contains("--with-proof"), "{args:?}: {out:?}");
            assert_eq!(out.stdout, "", "{args:?}: {out:?}");
        }

        // A modified row: exit code 4, and the break in text and JSON.
        use sea_orm::ConnectionTrait;
        db.execute_unprepared("UPDATE audit_log SET status = 500 WHERE chain_seq = 3")
            .await
            .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(
            out.stdout.starts_with("api-1: Modified at seq 3"),
            "{out:?}"
        );
        let out = run_keyed(&fixture, &["verify", "--json", "--chain", "api-1"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(line["intact"], false);
        assert_eq!(line["break"]["kind"], "Modified");
        assert_eq!(line["break"]["chain_seq"], 3);
        // A key id the environment does not hold.
        let out = run_keyed(&fixture, &["verify"], "k0").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(out.stdout.contains("UnknownKey"), "{out:?}");
        // A row that no longer decodes (SQLite keeps any value): a break, not a runtime error.
        db.execute_unprepared("UPDATE audit_log SET extra = 'not json' WHERE chain_seq = 2")
            .await
            .unwrap();
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 4, "{out:?}");
        assert!(
            out.stdout.starts_with("api-1: Modified at seq 2"),
            "{out:?}"
        );
        // Nor does a chain_id that is not text, text in a position a time range selects, or a
        // checkpoint that does not read: each is a break (exit 4), not a runtime error (exit 1).
        let tampered = [
            (
                "UPDATE audit_log SET chain_id = X'FF' WHERE chain_seq = 5",
                &["verify"][..],
                "api-1: Modified at seq 2",
            ),
            (
                "UPDATE audit_log SET chain_seq = 'y' WHERE chain_seq = 4",
                &["verify", "--since", "1h"],
                "api-1: Modified at seq 2",
            ),
            (
                "UPDATE audit_checkpoint SET created_at = 'garbage'",
                &["verify"],
                "api-1: BadCheckpoint at seq 6",
            ),
        ];
        for (sql, args, api_1) in tampered {
            db.execute_unprepared(sql).await.unwrap();
            let out = run_keyed(&fixture, args, "k1").await;
            assert_eq!(out.code, 4, "{sql}: {out:?}");
            assert!(out.stdout.starts_with(api_1), "{sql}: {out:?}");
            assert!(
                out.stdout.contains("\nx'ff': Modified at seq 5"),
                "{sql}: {out:?}"
            );
        }
    }

    /// A time range in which no row of any chain arrived checks nothing: `verify` says so and
    /// exits 5, as when there is no chain, instead of reporting the chains intact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_of_a_range_without_rows_is_not_a_success() {
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        for args in [
            &["verify", "--until", "2000-01-01T00:00:00Z"][..],
            &[
                "verify",
                "--since",
                "2000-01-01T00:00:00Z",
                "--until",
                "2000-01-02T00:00:00Z",
            ],
            &[
                "verify",
                "--until",
                "2000-01-01T00:00:00Z",
                "--json",
                "--chain",
                "api-1",
            ],
        ] {
            let out = run_keyed(&fixture, args, "k1").await;
            assert_eq!(out.code, 5, "{args:?}: {out:?}");
            assert!(
                out.stderr
                    .contains("no chained row in the time range: nothing was verified"),
                "{args:?}: {out:?}"
            );
        }
        // A range that holds rows, or one after the last (whose last rows are still checked
        // against the checkpoint), is verified as before.
        for args in [
            &["verify", "--since", "1h"][..],
            &["verify", "--since", "2999-01-01T00:00:00Z"],
            &["verify", "--until", "2999-01-01T00:00:00Z"],
        ] {
            let out = run_keyed(&fixture, args, "k1").await;
            assert_eq!(out.code, 0, "{args:?}: {out:?}");
            assert!(
                out.stdout.starts_with("api-1: intact ("),
                "{args:?}: {out:?}"
            );
        }
    }

    /// `verify | head -1`: a reader that went away stops the output quietly, and the exit code
    /// is still the verdict's, so that a broken chain never passes for an intact one in a
    /// pipeline (`set -o pipefail`).
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_into_a_closed_pipe_keeps_its_verdict() {
        use sea_orm::ConnectionTrait;
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        let file = fixture._dir.path().join("trail.ndjson");
        let file = file.to_str().unwrap();
        let out = fixture
            .run(&["export", "--with-proof", "--output", file])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        let runs = [
            &["verify"][..],
            &["verify", "--json"],
            &["verify", "--export", file],
        ];
        for args in runs {
            let out = run_into_closed_stdout(&mut keyed(&fixture, args, "k1")).await;
            assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
        }
        db.execute_unprepared("UPDATE audit_log SET status = 500 WHERE chain_seq = 3")
            .await
            .unwrap();
        for args in &runs[..2] {
            let out = run_into_closed_stdout(&mut keyed(&fixture, args, "k1")).await;
            assert_eq!((out.code, out.stderr.as_str()), (4, ""), "{args:?}");
        }
    }

    /// SQLite keeps a value of any type in any column: whoever can write the file can plant one
    /// the table's types cannot hold, and `export` stopped at it with a decode error, so that
    /// one planted value hid every other row. The export goes on and writes the row as stored,
    /// naming it on stderr; the proof's verification reports a break there, as `verify` does in
    /// the database; `query` and `tail` say which row and column they cannot read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_value_its_column_cannot_hold_is_exported_as_stored_and_a_break() {
        use sea_orm::ConnectionTrait;
        let tampered = [
            (
                "chain_seq = 5.5",
                "chain_seq holds 5.5",
                serde_json::json!(5.5),
            ),
            (
                "chain_seq = 'x'",
                "chain_seq holds \"x\"",
                serde_json::json!("x"),
            ),
            (
                "status = 'abc'",
                "status holds \"abc\"",
                serde_json::json!("abc"),
            ),
            (
                "request_bytes = X'00FF'",
                "request_bytes holds x'00ff'",
                serde_json::json!("x'00ff'"),
            ),
        ];
        for (set, named, stored) in tampered {
            let fixture = Fixture::new().await;
            let db = fixture.db().await;
            six_chained_rows(&db).await;
            db.execute_unprepared(&format!("UPDATE audit_log SET {set} WHERE id = 3"))
                .await
                .unwrap();
            let column = set.split(' ').next().unwrap();

            let out = run_keyed(&fixture, &["verify"], "k1").await;
            assert_eq!(out.code, 4, "{set}: {out:?}");

            // Every row exported, the planted value as stored, and the row named.
            let out = fixture.run(&["export"]).await;
            assert_eq!(out.code, 0, "{set}: {out:?}");
            assert_eq!(out.stdout.lines().count(), 6, "{set}: {out:?}");
            let third: serde_json::Value =
                serde_json::from_str(out.stdout.lines().nth(2).unwrap()).unwrap();
            assert_eq!(
                (&third["id"], &third[column]),
                (&3.into(), &stored),
                "{set}"
            );
            assert!(
                out.stderr.contains(&format!("row 3: {named}, ")),
                "{set}: {out:?}"
            );
            assert!(out.stderr.contains("exported 6 rows"), "{set}: {out:?}");
            let out = fixture.run(&["export", "--format", "csv"]).await;
            assert_eq!(out.code, 0, "{set}: {out:?}");
            assert_eq!(out.stdout.lines().count(), 7, "{set}: {out:?}");

            // The proof holds the row, and verifies with a break, not an error.
            let file = fixture._dir.path().join("trail.ndjson");
            let file = file.to_str().unwrap();
            for proof in [
                &["export", "--with-proof", "--output", file][..],
                &["export", "--with-proof", "--since", "1h", "--output", file],
            ] {
                let out = fixture.run(proof).await;
                assert_eq!(out.code, 0, "{set} {proof:?}: {out:?}");
                assert!(out.stderr.contains("row 3: "), "{set} {proof:?}: {out:?}");
                let out = run_keyed(&fixture, &["verify", "--export", file], "k1").await;
                assert_eq!(out.code, 4, "{set} {proof:?}: {out:?}");
                assert!(out.stdout.starts_with("api-1: "), "{set}: {out:?}");
                assert!(!out.stdout.contains("intact"), "{set}: {out:?}");
            }

            // The reading commands name the row and the column rather than a decode error.
            for args in [&["query"][..], &["tail", "-n", "5"], &["query", "--json"]] {
                let out = fixture.run(args).await;
                assert_eq!(out.code, 1, "{set} {args:?}: {out:?}");
                assert!(
                    out.stderr.contains(&format!("row 3: {named}, which ")),
                    "{set} {args:?}: {out:?}"
                );
            }
        }

        // So does `tail -f`, when such a row lands while it follows.
        use sea_orm::TransactionTrait;
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        audit_log::Entity::insert(row(0, |_| {}))
            .exec(&db)
            .await
            .unwrap();
        let mut child = fixture
            .command(&["tail", "-f", "-n", "1", "--json", "--interval", "1s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(lines.next_line().await.unwrap().is_some());
        // Following: a row lands holding text in `status`, in one transaction.
        let planting = db.begin().await.unwrap();
        audit_log::Entity::insert(row(0, |_| {}))
            .exec(&planting)
            .await
            .unwrap();
        planting
            .execute_unprepared("UPDATE audit_log SET status = 'abc' WHERE id = 2")
            .await
            .unwrap();
        planting.commit().await.unwrap();
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("tail stops within 30 s")
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("row 2: status holds \"abc\", which "),
            "{stderr}"
        );
    }

    /// A checkpoint holding a value its column cannot hold stopped `export --with-proof` with a
    /// decode error, where `verify` in the database reports a `BadCheckpoint`: the proof now
    /// holds it as stored, and verifies with that break.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_that_does_not_read_is_exported_as_stored_and_a_break() {
        use sea_orm::ConnectionTrait;
        for set in [
            "created_at = 'garbage'",
            "row_hash = X'07'",
            "chain_seq = 5.5",
            // Text sorts after every number: no range of positions holds it.
            "chain_seq = 'x'",
            "chain_seq = X'07'",
        ] {
            let fixture = Fixture::new().await;
            let db = fixture.db().await;
            six_chained_rows(&db).await;
            db.execute_unprepared(&format!("UPDATE audit_checkpoint SET {set}"))
                .await
                .unwrap();
            let out = run_keyed(&fixture, &["verify"], "k1").await;
            assert_eq!(out.code, 4, "{set}: {out:?}");
            assert!(
                out.stdout.starts_with("api-1: BadCheckpoint"),
                "{set}: {out:?}"
            );

            let file = fixture._dir.path().join("trail.ndjson");
            let file = file.to_str().unwrap();
            let out = fixture
                .run(&["export", "--with-proof", "--output", file])
                .await;
            assert_eq!(out.code, 0, "{set}: {out:?}");
            let column = set.split(' ').next().unwrap();
            assert!(
                out.stderr
                    .contains(&format!("checkpoint 1: {column} holds ")),
                "{set}: {out:?}"
            );
            let out = run_keyed(&fixture, &["verify", "--export", file], "k1").await;
            assert_eq!(out.code, 4, "{set}: {out:?}");
            assert!(
                out.stdout.starts_with("api-1: BadCheckpoint"),
                "{set}: {out:?}"
            );
        }
    }

    /// A row whose `occurred_at` holds no time (text, a number, a blob) stopped an export whose
    /// page ended at it: the next page had no time to start after. The export now goes on from
    /// the value as stored, at any page size: every row once, the others in time order, the
    /// planted one where SQLite's order puts it, written as stored and named. `id` cannot be
    /// planted: it is the rowid, and SQLite refuses what is no integer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_whose_time_is_none_does_not_stop_the_export() {
        use sea_orm::ConnectionTrait;
        use tower_audit::store::{AuditFilter, Export, ExportFormat};
        for set in [
            "occurred_at = 'garbage'",
            "occurred_at = '0000'",
            "occurred_at = 42",
            "occurred_at = 4.5",
            "occurred_at = X'07'",
        ] {
            let fixture = Fixture::new().await;
            let db = fixture.db().await;
            six_chained_rows(&db).await;
            db.execute_unprepared(&format!("UPDATE audit_log SET {set} WHERE id = 3"))
                .await
                .unwrap();
            for page_size in 1..=7 {
                let mut out = Vec::new();
                let report = Export::new(ExportFormat::Ndjson)
                    .page_size(page_size)
                    .to_writer(&db, &AuditFilter::new(), &mut out)
                    .await
                    .unwrap_or_else(|error| panic!("{set}, pages of {page_size}: {error}"));
                let ids: Vec<i64> = String::from_utf8(out)
                    .unwrap()
                    .lines()
                    .map(|line| {
                        let row: serde_json::Value = serde_json::from_str(line).unwrap();
                        row["id"].as_i64().unwrap()
                    })
                    .collect();
                let others: Vec<i64> = ids.iter().copied().filter(|&id| id != 3).collect();
                assert_eq!(others, [1, 2, 4, 5, 6], "{set}, pages of {page_size}");
                assert_eq!(ids.len(), 6, "{set}, pages of {page_size}: {ids:?}");
                assert_eq!(report.rows, 6, "{set}, pages of {page_size}");
                assert_eq!(report.unreadable.len(), 1, "{set}: {report:?}");
                assert_eq!(
                    (report.unreadable[0].id, report.unreadable[0].column),
                    (3, "occurred_at"),
                    "{set}"
                );
            }
            let file = fixture._dir.path().join("trail.ndjson");
            let file = file.to_str().unwrap();
            let out = fixture
                .run(&["export", "--with-proof", "--output", file])
                .await;
            assert_eq!(out.code, 0, "{set}: {out:?}");
            assert!(
                out.stderr.contains("row 3: occurred_at holds "),
                "{set}: {out:?}"
            );
            assert!(out.stderr.contains("exported 6 rows"), "{set}: {out:?}");
            let out = run_keyed(&fixture, &["verify", "--export", file], "k1").await;
            assert_eq!(out.code, 4, "{set}: {out:?}");
            assert!(out.stdout.starts_with("api-1: "), "{set}: {out:?}");
        }
        // The rowid: SQLite refuses a value that is no integer.
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        six_chained_rows(&db).await;
        for set in ["id = 'x'", "id = 4.5", "id = X'07'"] {
            let refused = db
                .execute_unprepared(&format!("UPDATE audit_log SET {set} WHERE id = 3"))
                .await;
            assert!(refused.is_err(), "{set}: {refused:?}");
        }
    }

    /// `replay` stopped at the first row holding a value its column cannot hold (the page's
    /// `Error::UnreadableRow`), and `stats` failed to decode the group of a planted status,
    /// route or latency. `replay` now skips the row with the reason and goes on; `stats` counts
    /// what its columns can hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replay_and_stats_go_past_a_value_its_column_cannot_hold() {
        use sea_orm::ConnectionTrait;
        for set in [
            "status = 'abc'",
            "status = 2.5",
            "latency_us = 'slow'",
            "route = X'07'",
            "user_id = X'07'",
            // Text that is no UTF-8 (found by a probe: `stats` stopped at it).
            "user_id = CAST(X'61646D696EFF' AS TEXT)",
            "route = CAST(X'2F61FF62' AS TEXT)",
            "occurred_at = 'garbage'",
            "request_body = X'07'",
        ] {
            let fixture = Fixture::new().await;
            let db = fixture.db().await;
            six_chained_rows(&db).await;
            db.execute_unprepared(&format!("UPDATE audit_log SET {set} WHERE id = 3"))
                .await
                .unwrap();
            let column = set.split(' ').next().unwrap();
            let out = fixture
                .run(&["replay", "--target", "http://127.0.0.1:9", "--dry-run"])
                .await;
            assert_eq!(out.code, 0, "{set}: {out:?}");
            assert!(
                out.stdout
                    .contains(&format!("skipped: row 3: {column} holds ")),
                "{set}: {out:?}"
            );
            assert!(
                out.stdout.contains("0 sent, 1 skipped, 0 failed"),
                "{set}: {out:?}"
            );
            assert_eq!(
                out.stdout.matches("would send").count(),
                5,
                "{set}: {out:?}"
            );

            let out = fixture.run(&["stats"]).await;
            assert_eq!(out.code, 0, "{set}: {out:?}");
            let stats = tower_audit::store::stats(
                &db,
                &tower_audit::store::AuditFilter::new(),
                tower_audit::store::StatsOptions::default(),
            )
            .await
            .unwrap_or_else(|error| panic!("{set}: {error}"));
            assert_eq!(stats.total, 6, "{set}");
        }
    }

    /// A scheduled `verify --chain` with a typo must not pass for an intact chain: exit code 5,
    /// on the database and on an export.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_of_a_chain_that_does_not_exist_exits_5() {
        let fixture = Fixture::new().await;
        let db = fixture.db().await;
        // No chain at all yet: a trail whose rows and checkpoints were all deleted looks so.
        let out = run_keyed(&fixture, &["verify"], "k1").await;
        assert_eq!(out.code, 5, "{out:?}");
        assert!(out.stderr.contains("no hash chain found"), "{out:?}");
        let integrity = tower_audit::integrity::Integrity::new("api-1", "k1", KEY.to_vec());
        let (layer, guard) = AuditLayer::builder(db.clone())
            .integrity(integrity)
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/", axum::routing::post(|| async { "ok" }))
            .layer(layer);
        let request = http::Request::post("/")
            .body(axum::body::Body::empty())
            .unwrap();
        app.oneshot(request).await.unwrap();
        guard.shutdown(Duration::from_secs(30)).await.unwrap();

        let out = run_keyed(&fixture, &["verify", "--chain", "api-1"], "k1").await;
        assert_eq!(out.code, 0, "{out:?}");
        let out = run_keyed(&fixture, &["verify", "--chain", "api-2"], "k1").await;
        assert_eq!(out.code, 5, "{out:?}");
        assert_eq!(out.stdout, "", "{out:?}");
        assert!(
            out.stderr.contains(r#"no hash chain named "api-2""#),
            "{out:?}"
        );
        let file = fixture._dir.path().join("trail.ndjson");
        let file = file.to_str().unwrap();
        let out = fixture
            .run(&["export", "--with-proof", "--output", file])
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        let out = run_keyed(
            &fixture,
            &["verify", "--export", file, "--chain", "api-2"],
            "k1",
        )
        .await;
        assert_eq!(out.code, 5, "{out:?}");
    }

    /// `purge` signs its tombstones with the key in `TOWER_AUDIT_SIGNING_KEY`; `verify` with the
    /// public key takes no other (but with `--accept-unsigned-purges`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purge_signs_its_tombstones_and_verify_takes_no_unsigned_one() {
        const SECRET: [u8; 32] = [9u8; 32];
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let integrity = tower_audit::integrity::Integrity::new("api-1", "k1", KEY.to_vec())
            .sign_checkpoints(SECRET);
        let public = hex(&integrity.checkpoint_public_key().unwrap());
        for signed in [true, false] {
            let fixture = Fixture::new().await;
            let db = fixture.db().await;
            let (layer, guard) = AuditLayer::builder(db.clone())
                .integrity(integrity.clone())
                .build()
                .unwrap();
            let app = axum::Router::new()
                .route("/", axum::routing::post(|| async { "ok" }))
                .layer(layer);
            for _ in 0..3 {
                let request = http::Request::post("/")
                    .body(axum::body::Body::empty())
                    .unwrap();
                app.clone().oneshot(request).await.unwrap();
            }
            guard.shutdown(Duration::from_secs(30)).await.unwrap();

            let mut purge = fixture.command(&["purge", "--older-than", "0s", "--allow-recent"]);
            if signed {
                purge.env("TOWER_AUDIT_SIGNING_KEY", hex(&SECRET));
            } else {
                purge.env_remove("TOWER_AUDIT_SIGNING_KEY");
            }
            let out = purge.output().await.unwrap();
            assert!(out.status.success(), "{out:?}");

            let verify = ["verify", "--checkpoint-public-key", public.as_str()];
            let out = run_keyed(&fixture, &verify, "k1").await;
            if signed {
                assert_eq!(out.code, 0, "{out:?}");
            } else {
                assert_eq!(out.code, 4, "{out:?}");
                assert!(out.stdout.contains("BadCheckpoint at seq 3"), "{out:?}");
                assert!(out.stdout.contains("purge tombstone"), "{out:?}");
                let mut lenient = verify.to_vec();
                lenient.push("--accept-unsigned-purges");
                let out = run_keyed(&fixture, &lenient, "k1").await;
                assert_eq!(out.code, 0, "{out:?}");
            }
        }

        // A key that is not one: an error, and nothing purged.
        let fixture = Fixture::new().await;
        let out = fixture
            .command(&["purge", "--older-than", "0s", "--allow-recent"])
            .env("TOWER_AUDIT_SIGNING_KEY", "not hex")
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("TOWER_AUDIT_SIGNING_KEY"), "{stderr}");
    }
}

/// `dir` made read-only for this process until dropped: by its mode for a user, by a read-only
/// bind mount of it onto itself for root, whom modes do not stop. `None` where neither works.
#[cfg(unix)]
struct ReadOnlyDir {
    path: std::path::PathBuf,
    mounted: bool,
}

#[cfg(unix)]
impl ReadOnlyDir {
    fn new(path: &std::path::Path) -> Option<ReadOnlyDir> {
        use std::os::unix::fs::PermissionsExt;
        let writable = || {
            let probe = path.join(".probe");
            let made = std::fs::File::create(&probe).is_ok();
            let _ = std::fs::remove_file(&probe);
            made
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).ok()?;
        let mut dir = ReadOnlyDir {
            path: path.to_owned(),
            mounted: false,
        };
        if !writable() {
            return Some(dir);
        }
        dir.mounted = std::process::Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .args([path, path])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        (!writable()).then_some(dir)
    }
}

#[cfg(unix)]
impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg(&self.path)
                .status();
        }
        let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755));
    }
}

/// A database file alone in a directory that cannot be written (a copy kept for a review on a
/// read-only mount) is read, as an unchanging file: SQLite could not make its `-shm` file
/// there (nor turn a copy in rollback mode to WAL), and every command failed. With a `-wal`
/// file beside it, whose rows such a reading would skip, the command still fails and says why.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_alone_in_a_read_only_directory_is_read() {
    use sea_orm::ConnectionTrait;

    let fixture = Fixture::new().await;
    seed(&fixture).await;
    let copies = tempfile::tempdir().unwrap();
    let alone = copies.path().join("alone");
    let with_wal = copies.path().join("with_wal");
    for dir in [&alone, &with_wal] {
        std::fs::create_dir(dir).unwrap();
        let copy = dir.join("audit.db");
        // README's way to copy a database in use.
        let statement = format!("VACUUM INTO '{}'", copy.display());
        fixture
            .db()
            .await
            .execute_unprepared(&statement)
            .await
            .unwrap();
    }
    std::fs::write(with_wal.join("audit.db-wal"), b"").unwrap();
    let guards = (ReadOnlyDir::new(&alone), ReadOnlyDir::new(&with_wal));
    let (Some(_alone_ro), Some(_with_wal_ro)) = guards else {
        eprintln!(
            "skipped a_database_alone_in_a_read_only_directory_is_read: this machine cannot make \
             a read-only directory (neither its mode nor a bind mount stops writes)"
        );
        return;
    };
    let url = |dir: &std::path::Path| format!("sqlite://{}", dir.join("audit.db").display());

    let out = fixture
        .run(&["query", "--json", "--database-url", &url(&alone)])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 4, "the seeded rows: {out:?}");
    assert!(out.stdout.contains(r#""path":"/orders/9""#), "{out:?}");
    assert!(out.stderr.contains("read as an unchanging file"), "{out:?}");
    assert!(!alone.join("audit.db-shm").exists());

    let out = fixture
        .run(&["query", "--database-url", &url(&with_wal)])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("audit.db-wal beside it may hold rows"),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

/// The CLI closes its connection: a command that writes leaves the file whole, the WAL folded
/// into it and removed. `migrate` left its table in `audit.db-wal`, and a copy of the file
/// alone, taken for a review, had no table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_leaves_the_database_file_whole() {
    use sea_orm::ConnectionTrait;

    let fixture = Fixture::new().await;
    let file = fixture._dir.path().join("audit.db");
    assert!(!fixture._dir.path().join("audit.db-wal").exists());
    let copies = tempfile::tempdir().unwrap();
    let copy = copies.path().join("copy.db");
    std::fs::copy(&file, &copy).unwrap();
    let db = tower_audit::connect(format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    let count = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM audit_log",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.try_get_by_index::<i64>(0).unwrap(), 0);
}
