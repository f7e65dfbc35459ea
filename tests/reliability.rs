//! The audit trail loses nothing when the database goes away, stalls, comes back, or the process
//! is killed: run against SQLite (a locked file) and, when their URLs are set, PostgreSQL and
//! MariaDB behind a fault-injecting TCP proxy.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::watch;
use tower::ServiceExt;
use tower_audit::{AuditLayer, AuditLayerBuilder, Overflow, WriterGuard};

use support::proxy::{Link, Outage, stallable_db};
use support::{Backend, Server, TestDb, client, empty, full, rows, scenarios, send, wait_stats};

use support::Scenario;

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    a_record_spilled_past_a_full_queue_keeps_its_body,
    block_drops_the_records_whose_wait_timed_out_not_those_that_reserved_room,
    a_database_slow_per_row_takes_a_backlog_in_smaller_transactions,
    spill_keeps_every_record_through_cut_stall_restore,
    block_keeps_every_record_through_cut_stall_restore,
    drop_newest_accounts_for_every_request,
    drop_oldest_accounts_for_every_request,
    reject_answers_503_and_records_every_served_request,
    killed_process_replays_its_journal_on_restart,
    memory_stays_bounded_while_the_database_is_away,
    bad_input_is_served_and_written,
    an_unmigrated_database_is_named_at_once_and_loses_nothing,
    a_refused_row_is_isolated_and_written_in_a_safe_form,
    a_row_a_trigger_refuses_is_isolated_and_written_in_a_safe_form,
    #[cfg(feature = "integrity")]
    two_writers_sharing_a_chain_id_lose_no_row,
    a_body_past_the_queues_budget_is_shed_and_its_record_kept,
    a_shutdown_asked_during_a_stalled_call_is_timed_from_the_ask,
    random_outages_and_restarts_lose_nothing,
    schedules_that_found_bugs_lose_nothing,
    a_table_locked_past_the_insert_timeout_loses_nothing_and_no_connection,
    a_column_retyped_while_the_writer_runs_loses_nothing,
    an_id_sequence_behind_the_table_loses_nothing,
];

const WAIT: Duration = Duration::from_secs(60);

fn main() {
    if let Ok(role) = std::env::var("TA_CHILD") {
        child(&role);
        return;
    }
    support::run_matrix("reliability", SCENARIOS);
}

/// A writer connection that fails fast while the outage lasts.
async fn writer_db(t: &TestDb, url: &str) -> DatabaseConnection {
    let mut options = t.options(url);
    options
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_millis(800))
        .connect_lazy(true);
    options.map_sqlx_sqlite_opts(|o| {
        tower_audit::sqlite_settings(o).busy_timeout(Duration::from_millis(20))
    });
    sea_orm::Database::connect(options).await.unwrap()
}

fn tuned(builder: AuditLayerBuilder) -> AuditLayerBuilder {
    builder
        .flush_interval(Duration::from_millis(20))
        .max_retry_backoff(Duration::from_millis(200))
        .insert_timeout(Duration::from_secs(1))
}

fn app(layer: AuditLayer) -> Router {
    Router::new()
        .route(
            "/items/{id}",
            post(|_body: axum::body::Bytes| async { (StatusCode::CREATED, "created") }),
        )
        .route("/ok", get(|| async { "ok" }))
        .layer(layer)
}

/// Sends `total` requests with distinct request ids from 4 concurrent clients; publishes how
/// many have completed. Returns the ids of the requests that were answered, and their statuses.
async fn steady_stream(
    server_url: String,
    stop: watch::Receiver<bool>,
    progress: watch::Sender<usize>,
) -> Vec<(String, StatusCode)> {
    let client = client();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = Arc::new(progress);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (client, next, done, progress, server_url, stop) = (
            client.clone(),
            next.clone(),
            done.clone(),
            progress.clone(),
            server_url.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    return;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("req-{i:05}");
                let request = http::Request::post(format!("{server_url}/items/{i}"))
                    .header("x-request-id", &id)
                    .header("content-type", "application/json")
                    .body(full(format!(r#"{{"n":{i},"password":"p-{i}"}}"#)))
                    .unwrap();
                let (status, _) = send(&client, request).await;
                let mut done = done.lock().unwrap();
                done.push((id, status));
                progress.send_replace(done.len());
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    Arc::try_unwrap(done).unwrap().into_inner().unwrap()
}

async fn wait_sent(progress: &mut watch::Receiver<usize>, n: usize) {
    tokio::time::timeout(WAIT, progress.wait_for(|&sent| sent >= n))
        .await
        .expect("requests stalled")
        .unwrap();
}

async fn wait_failures(guard: &WriterGuard, more_than: u64) -> u64 {
    let mut stats = guard.watch_stats();
    let stats = tokio::time::timeout(WAIT, stats.wait_for(|s| s.failed_batches > more_than))
        .await
        .expect("the writer never noticed the outage")
        .unwrap()
        .clone();
    stats.failed_batches
}

/// Serves a steady stream through cut, stall (proxy only) and restore; returns the answered
/// requests and the shutdown stats.
async fn through_outage(
    t: &TestDb,
    configure: impl FnOnce(AuditLayerBuilder) -> AuditLayerBuilder,
) -> (
    Vec<(String, StatusCode)>,
    tower_audit::WriterStats,
    DatabaseConnection,
) {
    let db = t.migrated().await;
    let (mut outage, url) = Outage::new(t).await;
    let (layer, guard) = configure(tuned(AuditLayer::builder(writer_db(t, &url).await)))
        .build()
        .unwrap();
    let server = Server::start(app(layer)).await;
    let (progress_tx, mut progress) = watch::channel(0);
    let (stop, stopped) = watch::channel(false);
    let stream = tokio::spawn(steady_stream(server.url(""), stopped, progress_tx));

    wait_sent(&mut progress, 40).await;
    outage.set(Link::Cut).await;
    let failures = wait_failures(&guard, 0).await;
    // Keep the database away while requests go on (Block stops them: then the failing retries
    // mark the time).
    tokio::select! {
        () = wait_sent(&mut progress, 120) => {}
        _ = wait_failures(&guard, failures + 2) => {}
    }
    let failures = guard.stats().failed_batches;
    if t.backend != Backend::Sqlite {
        // Restore briefly, then stall: connections hang instead of breaking.
        outage.set(Link::Stall).await;
        wait_failures(&guard, failures + 1).await;
    }
    outage.set(Link::Pass).await;
    // Requests go on a while after the database is back.
    let sent = *progress.borrow();
    wait_sent(&mut progress, sent + 60).await;
    stop.send_replace(true);
    let answered = stream.await.unwrap();
    server.stop().await;
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.journaled, 0, "{report:?}");
    (answered, report_stats(report), db)
}

fn report_stats(report: tower_audit::ShutdownReport) -> tower_audit::WriterStats {
    let mut stats = tower_audit::WriterStats::default();
    stats.written = report.written;
    stats.dropped = report.dropped;
    stats.lost = report.lost;
    stats
}

/// Every answered request has exactly one row, found by its request id.
async fn exactly_one_row_each(db: &DatabaseConnection, answered: &[(String, StatusCode)]) {
    let rows = rows(db).await;
    let ids: Vec<_> = rows.iter().filter_map(|r| r.request_id.clone()).collect();
    let unique: HashSet<_> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a request has two rows");
    let sent: HashSet<_> = answered.iter().map(|(id, _)| id.clone()).collect();
    let missing: Vec<_> = sent.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "{} requests have no row: {missing:?}",
        missing.len()
    );
    assert_eq!(unique, sent);
    for row in &rows {
        let body = row.request_body.as_deref().unwrap_or_default();
        assert!(!body.contains("p-"), "secret in a replayed row: {body}");
    }
}

async fn spill_keeps_every_record_through_cut_stall_restore(t: Arc<TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("audit.journal");
    let (answered, _, db) = through_outage(&t, |b| {
        b.journal(&journal)
            .overflow(Overflow::Spill)
            .capacity(64)
            .batch_size(32)
    })
    .await;
    assert!(
        answered
            .iter()
            .all(|(_, status)| *status == StatusCode::CREATED)
    );
    exactly_one_row_each(&db, &answered).await;
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        0,
        "journal truncated after replay"
    );
}

async fn block_keeps_every_record_through_cut_stall_restore(t: Arc<TestDb>) {
    let (answered, stats, db) = through_outage(&t, |b| {
        b.overflow(Overflow::Block { timeout: WAIT })
            .capacity(16)
            .batch_size(16)
    })
    .await;
    assert_eq!(stats.dropped, 0);
    exactly_one_row_each(&db, &answered).await;
}

async fn drop_policies(t: Arc<TestDb>, policy: Overflow) {
    let (answered, stats, db) =
        through_outage(&t, |b| b.overflow(policy).capacity(8).batch_size(8)).await;
    let rows = rows(&db).await;
    let ids: HashSet<_> = rows.iter().filter_map(|r| r.request_id.clone()).collect();
    assert_eq!(ids.len(), rows.len(), "a request has two rows");
    assert_eq!(
        rows.len() as u64 + stats.dropped,
        answered.len() as u64,
        "rows {} + dropped {} != sent",
        rows.len(),
        stats.dropped
    );
    assert!(
        stats.dropped > 0,
        "the outage should have overflowed a queue of 8"
    );
}

async fn drop_newest_accounts_for_every_request(t: Arc<TestDb>) {
    drop_policies(t, Overflow::DropNewest).await;
}

async fn drop_oldest_accounts_for_every_request(t: Arc<TestDb>) {
    drop_policies(t, Overflow::DropOldest).await;
}

async fn reject_answers_503_and_records_every_served_request(t: Arc<TestDb>) {
    let (answered, stats, db) = through_outage(&t, |b| {
        b.overflow(Overflow::Reject).capacity(8).batch_size(8)
    })
    .await;
    let served: Vec<_> = answered
        .iter()
        .filter(|(_, status)| *status == StatusCode::CREATED)
        .cloned()
        .collect();
    let refused = answered
        .iter()
        .filter(|(_, status)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(served.len() + refused, answered.len());
    assert!(refused > 0, "the outage should have filled a queue of 8");
    assert_eq!(stats.dropped, 0);
    // Every request the handler ran for is in the trail; the refused ones never ran.
    exactly_one_row_each(&db, &served).await;
}

/// Runs this test binary as a child server (see `child`); waits for its port if it serves.
fn spawn_child(role: &str, t: &TestDb, url: &str, journal: &Path) -> (Child, u16) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("TA_CHILD", role)
        .env("TA_CHILD_URL", url)
        .env("TA_CHILD_JOURNAL", journal)
        // Fewer malloc arenas: memory measurements reflect what the code holds.
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let (Backend::Postgres, Some(schema)) = (t.backend, t.schema()) {
        command.env("TA_CHILD_SCHEMA", schema);
    }
    let mut child = command.spawn().unwrap();
    if role != "server" {
        return (child, 0);
    }
    let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("child exited").unwrap();
        if let Some(port) = line.strip_prefix("LISTENING ") {
            break port.parse().unwrap();
        }
    };
    (child, port)
}

/// Reads the child's stdout until a stats line satisfies `done`.
fn wait_child(child: &mut Child, done: impl Fn(u64, u64) -> bool) {
    let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(stats) = line.strip_prefix("STATS ") {
            let mut numbers = stats.split(' ').map(|n| n.parse::<u64>().unwrap());
            let (written, spilled) = (numbers.next().unwrap(), numbers.next().unwrap());
            if done(written, spilled) {
                return;
            }
        }
    }
    panic!("child exited early");
}

async fn killed_process_replays_its_journal_on_restart(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("audit.journal");
    let (mut outage, url) = Outage::new(&t).await;
    outage.set(Link::Cut).await;

    let (first, port) = spawn_child("server", &t, &url, &journal);
    let client = client();
    let mut sent = Vec::new();
    // The first record makes the writer find the database away; from then on every record is
    // on disk before its response completes.
    let request = http::Request::post(format!("http://127.0.0.1:{port}/items/0"))
        .header("x-request-id", "crash-first")
        .body(empty())
        .unwrap();
    let (status, _) = send(&client, request).await;
    sent.push(("crash-first".to_owned(), status));
    let mut first = tokio::task::spawn_blocking(move || {
        let mut first = first;
        wait_child(&mut first, |_, spilled| spilled >= 1);
        first
    })
    .await
    .unwrap();
    for i in 0..40 {
        let id = format!("crash-{i:03}");
        let request = http::Request::post(format!("http://127.0.0.1:{port}/items/{i}"))
            .header("x-request-id", &id)
            .body(empty())
            .unwrap();
        let (status, _) = send(&client, request).await;
        assert_eq!(status, StatusCode::CREATED);
        sent.push((id, status));
    }
    // Every request above has completed; now the process dies without any chance to flush.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        std::fs::metadata(&journal).unwrap().len() > 0,
        "nothing journaled"
    );
    assert_eq!(rows(&db).await.len(), 0);

    outage.set(Link::Pass).await;
    let (mut second, _) = spawn_child("server", &t, &url, &journal);
    let mut second = tokio::task::spawn_blocking(move || {
        wait_child(&mut second, |written, _| written >= 41);
        second
    })
    .await
    .unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    exactly_one_row_each(&db, &sent).await;
}

async fn memory_stays_bounded_while_the_database_is_away(t: Arc<TestDb>) {
    t.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("audit.journal");
    let (mut outage, url) = Outage::new(&t).await;
    outage.set(Link::Cut).await;
    let (child, _) = spawn_child("memory", &t, &url, &journal);
    // (MALLOC_ARENA_MAX is set for children: see spawn_child.)
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("MEMORY "))
        .expect("memory line");
    let mut numbers = line.split(' ').map(|n| n.parse::<u64>().unwrap());
    let (growth_kib, passed_kib, spilled) = (
        numbers.next().unwrap(),
        numbers.next().unwrap(),
        numbers.next().unwrap(),
    );
    eprintln!(
        "memory: RSS grew {growth_kib} KiB while {passed_kib} KiB of bodies passed; {spilled} spilled"
    );
    assert_eq!(spilled, 6000);
    // 48 MiB of bodies pass in the measured half; the queue holds at most 256 records.
    assert!(growth_kib < 16 * 1024, "RSS grew {growth_kib} KiB");
    assert!(
        passed_kib > 2 * growth_kib,
        "the load must dwarf the ceiling"
    );
    drop(outage);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// A child process: `server` serves the app with a journal and prints its port and stats;
/// `memory` drives a load with the database away and prints its memory growth.
fn child(role: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = std::env::var("TA_CHILD_URL").unwrap();
        let journal = std::env::var("TA_CHILD_JOURNAL").unwrap();
        let mut options = tower_audit::connect_options(url);
        options
            .connect_timeout(Duration::from_millis(500))
            .acquire_timeout(Duration::from_millis(800))
            .connect_lazy(true);
        options.map_sqlx_sqlite_opts(|o| {
            tower_audit::sqlite_settings(o).busy_timeout(Duration::from_millis(20))
        });
        if let Ok(schema) = std::env::var("TA_CHILD_SCHEMA") {
            options.set_schema_search_path(schema);
        }
        let db = sea_orm::Database::connect(options).await.unwrap();
        let (layer, guard) = tuned(AuditLayer::builder(db))
            .journal(journal)
            .capacity(256)
            .build()
            .unwrap();
        match role {
            "server" => {
                let server = Server::start(app(layer)).await;
                println!("LISTENING {}", server.addr.port());
                let mut stats = guard.watch_stats();
                loop {
                    let s = stats.borrow_and_update().clone();
                    println!("STATS {} {}", s.written, s.spilled);
                    if stats.changed().await.is_err() {
                        return;
                    }
                }
            }
            _ => {
                let router = app(layer);
                let body = format!(r#"{{"blob":"{}"}}"#, "x".repeat(12 * 1024));
                let send = |i: usize| {
                    let request = http::Request::post(format!("/items/{i}"))
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(body.clone()))
                        .unwrap();
                    let router = router.clone();
                    async move {
                        let response = router.oneshot(request).await.unwrap();
                        response.into_body().collect().await.unwrap();
                    }
                };
                // Warm up, so allocator and runtime growth is not counted.
                for i in 0..200 {
                    send(i).await;
                }
                // Memory may settle during the first half (allocator arenas, journal buffers);
                // it must not grow with the load in the second.
                for i in 0..2000 {
                    send(i).await;
                }
                let before = rss_kib();
                for i in 0..4000 {
                    send(i).await;
                }
                let growth = rss_kib().saturating_sub(before);
                let report = guard.shutdown(Duration::from_secs(2)).await.unwrap();
                let spilled = report.journaled.saturating_sub(200);
                println!(
                    "MEMORY {growth} {} {spilled}",
                    4000 * body.len() as u64 / 1024
                );
            }
        }
    });
}

async fn bad_input_is_served_and_written(t: Arc<TestDb>) {
    let db = t.migrated().await;
    // The largest header value and path the bare server accepts, found by bisection.
    let bare = Server::start(app_bare()).await;
    let largest = |make: fn(&str, usize) -> http::Result<http::Request<support::ClientBody>>| {
        let base = bare.url("");
        async move {
            let (mut ok, mut too_big) = (1usize, 1 << 20);
            while too_big - ok > 1 {
                let mid = (ok + too_big) / 2;
                let accepted = match make(&base, mid) {
                    Ok(request) => match client().request(request).await {
                        Ok(response) => response.status() == StatusCode::OK,
                        Err(_) => false,
                    },
                    // Too long for the client to even build.
                    Err(_) => false,
                };
                if accepted { ok = mid } else { too_big = mid }
            }
            ok
        }
    };
    let header_len = largest(|base, n| {
        http::Request::get(format!("{base}/ok"))
            .header("user-agent", "u".repeat(n))
            .body(empty())
    })
    .await;
    let path_len =
        largest(|base, n| http::Request::get(format!("{base}/ok?{}", "q".repeat(n))).body(empty()))
            .await;
    assert!(header_len > 1000 && path_len > 1000);

    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let server = Server::start(app(layer)).await;
    // hyper's head limit (its ~408 KiB read buffer) moves with how the head arrives in TCP
    // reads: 380–450 KiB were accepted here from one run to the next. Stay a quarter below the
    // edge found, so the value is one the server accepts every time. The URI limit (64 KiB, the
    // `http` crate's) is exact.
    let header_len = header_len * 3 / 4;
    bare.stop().await;
    let requests = vec![
        http::Request::post(server.url("/items/1"))
            .header("content-type", "text/plain")
            .body(full(&b"nul \0 inside"[..]))
            .unwrap(),
        http::Request::post(server.url("/items/2"))
            .header("content-type", "application/json")
            .body(full(
                &b"{\"name\":\"\xff\xfe bad\",\"password\":\"x\0y\"}"[..],
            ))
            .unwrap(),
        http::Request::get(server.url("/ok"))
            .header("user-agent", "u".repeat(header_len))
            .body(empty())
            .unwrap(),
        http::Request::get(server.url(&format!("/ok?{}", "q".repeat(path_len))))
            .body(empty())
            .unwrap(),
    ];
    for request in requests {
        let (status, _) = send(&client(), request).await;
        assert!(status.is_success(), "{status}");
    }
    server.stop().await;
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost, report.dropped), (4, 0, 0));
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 4);
    // Text holding a NUL is binary under another name: described, and no NUL is stored
    // (PostgreSQL's text refuses it).
    assert_eq!(
        rows[0].request_body.as_deref(),
        Some("[binary text/plain, 12 bytes]")
    );
    assert!(
        !rows[1]
            .request_body
            .as_deref()
            .unwrap_or_default()
            .contains("x\0y")
    );
    assert_eq!(
        rows[2].user_agent.as_ref().map(String::len),
        Some(header_len)
    );
    assert_eq!(rows[3].query.as_ref().map(String::len), Some(path_len));
}

/// Found by a probe: under `Spill`, a record that found the queue full was charged against the
/// queue's body budget first, lost its body to it, and then went to the journal, which had
/// room for it. It now goes to the journal whole.
async fn a_record_spilled_past_a_full_queue_keeps_its_body(t: Arc<TestDb>) {
    const BODY: usize = 16 << 10;
    let db = t.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    // Two places, a budget for two bodies; the writer does not run yet.
    let (layer, guard, writer) = AuditLayer::builder(db.clone())
        .journal(dir.path().join("audit.journal"))
        .capacity(2)
        .queue_body_bytes(2 * BODY + BODY / 2)
        .build_pair()
        .unwrap();
    let app = app(layer);
    for i in 0..4 {
        let request = http::Request::post(format!("/items/{i}"))
            .header("content-type", "text/plain")
            .body(axum::body::Body::from(i.to_string().repeat(BODY)))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(guard.stats().bodies_shed, 0, "{:?}", guard.stats());
    let writer = tokio::spawn(writer);
    let report = guard.shutdown(WAIT).await.unwrap();
    writer.await.unwrap();
    assert_eq!((report.written, report.lost, report.dropped), (4, 0, 0));
    let mut bodies: Vec<_> = rows(&db)
        .await
        .into_iter()
        .map(|row| (row.path, row.request_body.unwrap_or_default().len()))
        .collect();
    bodies.sort();
    let whole: Vec<_> = (0..4).map(|i| (format!("/items/{i}"), BODY)).collect();
    assert_eq!(bodies, whole);
}

/// Found by a probe: under `Block`, a request whose wait for room timed out still took a free
/// place in the queue, one that a request still in its handler had reserved; that request's
/// record then found the queue full and was dropped. The one dropped is now the one that did
/// not reserve room.
async fn block_drops_the_records_whose_wait_timed_out_not_those_that_reserved_room(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard, writer) = AuditLayer::builder(db.clone())
        .capacity(2)
        .overflow(Overflow::Block {
            timeout: Duration::from_millis(50),
        })
        .build_pair()
        .unwrap();
    // `entered` counts the slow handlers entered; `gate` lets them answer.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(tokio::sync::Semaphore::new(0));
    let (held, arrived) = (Arc::clone(&gate), Arc::clone(&entered));
    let app = Router::new()
        .route(
            "/slow/{id}",
            get(move || {
                let (gate, arrived) = (Arc::clone(&held), Arc::clone(&arrived));
                async move {
                    arrived.add_permits(1);
                    let _ = gate.acquire().await.unwrap();
                    "slow"
                }
            }),
        )
        .route("/fast/{id}", get(|| async { "fast" }))
        .layer(layer);
    let get = |path: &str| {
        let app = app.clone();
        let request = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        async move {
            let response = app.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
    };
    // Two requests reserve the queue's two places, and wait in their handlers.
    let slow = [tokio::spawn(get("/slow/a")), tokio::spawn(get("/slow/b"))];
    let _ = tokio::time::timeout(WAIT, entered.acquire_many(2))
        .await
        .unwrap()
        .unwrap();
    // Two more wait 50 ms for room, time out, and are served.
    get("/fast/c").await;
    get("/fast/d").await;
    gate.add_permits(2);
    for task in slow {
        task.await.unwrap();
    }
    let writer = tokio::spawn(writer);
    let report = guard.shutdown(WAIT).await.unwrap();
    writer.await.unwrap();
    assert_eq!((report.written, report.dropped), (2, 2), "{report:?}");
    let mut paths: Vec<_> = rows(&db).await.into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/slow/a", "/slow/b"]);
}

/// Found by a probe: a database slow per row (here a trigger that takes at least 2 ms a row)
/// took each batch the writer kept up with, but not the backlog's transaction of hundreds, which
/// took longer than `insert_timeout`: retried whole, it timed out for ever, and the writer
/// wrote nothing more. After a timeout the writer now halves its transactions, and doubles them
/// back as they go in.
async fn a_database_slow_per_row_takes_a_backlog_in_smaller_transactions(t: Arc<TestDb>) {
    const RECORDS: usize = 600;
    let db = t.migrated().await;
    let slow = match t.backend {
        Backend::Postgres => vec![
            "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$",
            "CREATE TRIGGER slow_row BEFORE INSERT ON audit_log FOR EACH ROW \
             EXECUTE FUNCTION slow_row()",
        ],
        Backend::MySql => vec![
            "CREATE TRIGGER slow_row BEFORE INSERT ON audit_log FOR EACH ROW \
             SET @slept = SLEEP(0.002)",
        ],
        // No sleep in SQLite: a trigger that counts the 216,000 rows of a cross join.
        Backend::Sqlite => vec![
            "CREATE TABLE slow_rows (x INTEGER)",
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60) \
             INSERT INTO slow_rows SELECT x FROM n",
            "CREATE TRIGGER slow_row BEFORE INSERT ON audit_log BEGIN \
             SELECT count(*) FROM slow_rows a, slow_rows b, slow_rows c; END",
        ],
    };
    for statement in slow {
        db.execute_unprepared(statement).await.unwrap();
    }
    // The writer waits: the records queue, then go as one backlog transaction.
    let (layer, guard, writer) = AuditLayer::builder(db.clone())
        .insert_timeout(Duration::from_millis(250))
        .max_retry_backoff(Duration::from_millis(20))
        .build_pair()
        .unwrap();
    let app = app(layer);
    for i in 0..RECORDS {
        let request = http::Request::post(format!("/items/{i}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let writer = tokio::spawn(writer);
    wait_stats(&guard, "the backlog written", |s| {
        s.written == RECORDS as u64
    })
    .await;
    let stats = guard.stats();
    assert!(
        stats.failed_batches > 0,
        "the whole batch timed out: {stats:?}"
    );
    let report = guard.shutdown(WAIT).await.unwrap();
    writer.await.unwrap();
    assert_eq!(
        (report.written, report.lost, report.dropped),
        (RECORDS as u64, 0, 0)
    );
    assert_eq!(rows(&db).await.len(), RECORDS);
}

/// While the queued records keep `queue_body_bytes` of request bodies, a further record is
/// queued without its body: its row lands with the body's size and a note, the count says so,
/// and nothing is dropped. The budget comes back as the writer takes records.
async fn a_body_past_the_queues_budget_is_shed_and_its_record_kept(t: Arc<TestDb>) {
    const BODY: usize = 60;
    let db = t.migrated().await;
    // A budget for one body: the writer does not run yet, so the first record keeps it.
    let (layer, guard, writer) = AuditLayer::builder(db.clone())
        .queue_body_bytes(BODY + BODY / 2)
        .build_pair()
        .unwrap();
    let server = Server::start(app(layer)).await;
    let post = |id: usize| {
        http::Request::post(server.url(&format!("/items/{id}")))
            .header("content-type", "text/plain")
            .body(full(format!("{id}").repeat(BODY)))
            .unwrap()
    };
    for id in 1..=2 {
        let (status, _) = send(&client(), post(id)).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(guard.stats().bodies_shed, 1);
    let mut stats = guard.watch_stats();
    let writer = tokio::spawn(writer);
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.written >= 2))
        .await
        .unwrap()
        .unwrap();
    // Both left the queue: the budget is whole again.
    let (status, _) = send(&client(), post(3)).await;
    assert_eq!(status, StatusCode::CREATED);
    server.stop().await;
    let report = guard.shutdown(WAIT).await.unwrap();
    writer.await.unwrap();
    assert_eq!((report.written, report.lost, report.dropped), (3, 0, 0));
    let rows = rows(&db).await;
    let bodies: Vec<_> = rows
        .iter()
        .map(|row| {
            (
                row.request_body.as_deref().unwrap_or_default(),
                row.request_body_truncated,
                row.request_bytes,
            )
        })
        .collect();
    let kept = |id: usize| format!("{id}").repeat(BODY);
    assert_eq!(
        bodies,
        [
            (kept(1).as_str(), false, BODY as i64),
            ("[body not captured, 60 bytes]", true, BODY as i64),
            (kept(3).as_str(), false, BODY as i64),
        ]
    );
}

/// A database that was never migrated (a schema or database of its own with no `audit_log`):
/// the first failed insert is named for what it is (SQLite's "no such table", PostgreSQL's
/// 42P01, MySQL's 1146), in `stats().schema_missing`, long before `outage_alert`; the records
/// wait in the journal, and once the table is created every one of them is written.
async fn an_unmigrated_database_is_named_at_once_and_loses_nothing(t: Arc<TestDb>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("audit.journal");
    let (layer, guard) = tuned(AuditLayer::builder(writer_db(&t, t.url()).await))
        .journal(&journal)
        .batch_size(4)
        .build()
        .unwrap();
    let server = Server::start(app(layer)).await;
    let client = client();
    for i in 0..6 {
        let request = http::Request::get(server.url("/ok"))
            .header("x-request-id", format!("unmigrated-{i}"))
            .body(empty())
            .unwrap();
        assert_eq!(send(&client, request).await.0, StatusCode::OK);
    }
    wait_stats(&guard, "the missing table was not named", |s| {
        s.schema_missing && s.failed_batches >= 1
    })
    .await;
    let stats = guard.stats();
    assert!(
        stats.database_away_for.unwrap() < Duration::from_secs(30),
        "{stats:?}"
    );
    assert_eq!(stats.written + stats.lost + stats.dropped, 0, "{stats:?}");

    let db = t.migrated().await;
    wait_stats(&guard, "the kept records were not written", |s| {
        s.written == 6 && !s.schema_missing && s.journal_bytes == 0
    })
    .await;
    server.stop().await;
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost, report.journaled), (6, 0, 0));
    let mut ids: Vec<_> = rows(&db)
        .await
        .into_iter()
        .filter_map(|row| row.request_id)
        .collect();
    ids.sort();
    let sent: Vec<_> = (0..6).map(|i| format!("unmigrated-{i}")).collect();
    assert_eq!(ids, sent);
}

/// The database refuses one row of a batch (a constraint the table was given for the test): the
/// other rows of its batch land as they are, and the refused one lands in its safe form, its body
/// replaced by a note. This goes through each backend's fast insert path and its error mapping.
async fn a_refused_row_is_isolated_and_written_in_a_safe_form(t: Arc<TestDb>) {
    let refuse: &[&str] = match t.backend {
        Backend::Sqlite => &["CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
             WHEN NEW.request_body LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poison'); END"],
        Backend::Postgres | Backend::MySql => {
            &["ALTER TABLE audit_log ADD CONSTRAINT refuse_poison \
             CHECK (request_body IS NULL OR request_body NOT LIKE '%poison%')"]
        }
    };
    one_refused_row_of_a_batch(&t, refuse).await;
}

/// As above, the refusal coming from a trigger that raises an error of its own: PostgreSQL's
/// `RAISE EXCEPTION` (SQLSTATE P0001) and MySQL's `SIGNAL SQLSTATE '45000'`, neither a
/// constraint's class 23. Taken for an outage, the batch would be retried until the shutdown
/// deadline and lost.
async fn a_row_a_trigger_refuses_is_isolated_and_written_in_a_safe_form(t: Arc<TestDb>) {
    let refuse: &[&str] = match t.backend {
        Backend::Sqlite => &["CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
             WHEN NEW.request_body LIKE '%poison%' BEGIN SELECT RAISE(ABORT, 'poison'); END"],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.request_body LIKE '%poison%' THEN RAISE EXCEPTION 'poison row'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
        Backend::MySql => &["CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_log \
             FOR EACH ROW IF NEW.request_body LIKE '%poison%' THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poison row'; END IF"],
    };
    one_refused_row_of_a_batch(&t, refuse).await;
}

/// Runs `refuse` (statements that make the table refuse a body holding "poison"), sends a batch
/// of eight records with one poisoned body, and checks that the other seven land as they are and
/// the poisoned one in its safe form.
async fn one_refused_row_of_a_batch(t: &TestDb, refuse: &[&str]) {
    let db = t.migrated().await;
    for statement in refuse {
        db.execute_unprepared(statement).await.unwrap();
    }
    // One batch of eight: written when the eighth record arrives, not by the timer.
    let (layer, guard) = AuditLayer::builder(db.clone())
        .batch_size(8)
        .flush_interval(Duration::from_secs(600))
        .build()
        .unwrap();
    let server = Server::start(app(layer)).await;
    for i in 0..8 {
        let note = if i == 5 { "poison" } else { "fine" };
        let request = http::Request::post(server.url(&format!("/items/{i}")))
            .header("content-type", "application/json")
            .body(full(format!(r#"{{"note":"{note} {i}"}}"#)))
            .unwrap();
        let (status, _) = send(&client(), request).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    server.stop().await;
    let stats = guard.watch_stats();
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!(
        (
            report.written,
            report.lost,
            report.dropped,
            report.dead_lettered
        ),
        (8, 0, 0, 0),
        "{report:?}"
    );
    assert_eq!(stats.borrow().dead_lettered, 0);
    // The refusal is said (it was not: a probe found the report silent on a refused row).
    assert!(
        report
            .last_error
            .as_deref()
            .is_some_and(|error| error.starts_with("the database refused a row: ")),
        "{report:?}"
    );
    let mut rows = rows(&db).await;
    rows.sort_by_key(|row| row.path.clone());
    assert_eq!(rows.len(), 8);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.path, format!("/items/{i}"));
        let body = row.request_body.as_deref().unwrap();
        // The note keeps a replay from sending the safe form's text as the body.
        let altered = row
            .extra
            .as_ref()
            .and_then(|extra| extra.get(tower_audit::entity::audit_log::REQUEST_BODY_ALTERED));
        if i == 5 {
            assert!(!body.contains("poison"), "{body}");
            assert!(body.contains("rejected"), "{body}");
            assert_eq!(altered, Some(&serde_json::Value::Bool(true)));
        } else {
            assert!(body.contains(&format!("fine {i}")), "{body}");
            assert_eq!(altered, None, "stored as sent");
        }
    }
}

/// Two writers configured with one chain id: the second starts after the first has written seq
/// 1 and takes seq 2, which the first, holding its head in memory, takes again for its next row.
/// The unique `(chain_id, chain_seq)` index refuses that row on every backend (on MySQL an upsert
/// on `record_id` once let it vanish, counted as written), and the first writer seals it again
/// after the second's row, at seq 3 (until b2e23d5 it was lost): what the writers count as
/// written is what the table holds, and nothing is lost.
#[cfg(feature = "integrity")]
async fn two_writers_sharing_a_chain_id_lose_no_row(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let writer = || {
        AuditLayer::builder(db.clone())
            .integrity(tower_audit::integrity::Integrity::new(
                "shared",
                "k1",
                b"0123456789abcdef0123456789abcdef".to_vec(),
            ))
            .batch_size(1)
            .build()
            .unwrap()
    };
    let request = || {
        http::Request::post("/items/1")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (first, first_guard) = writer();
    let first = app(first);
    first.clone().oneshot(request()).await.unwrap();
    wait_stats(&first_guard, "the first writer's row", |s| s.written == 1).await;
    let (second, second_guard) = writer();
    app(second).oneshot(request()).await.unwrap();
    wait_stats(&second_guard, "the second writer's row", |s| s.written == 1).await;
    first.oneshot(request()).await.unwrap();
    wait_stats(&first_guard, "the first writer's second row", |s| {
        s.written + s.lost + s.dead_lettered >= 2
    })
    .await;
    assert!(
        first_guard
            .stats()
            .last_error
            .is_some_and(|error| error.contains("another writer appends")),
        "{:?}",
        first_guard.stats()
    );
    let first_report = first_guard.shutdown(WAIT).await.unwrap();
    let second_report = second_guard.shutdown(WAIT).await.unwrap();
    let rows = rows(&db).await;
    let mut positions: Vec<_> = rows.iter().map(|row| row.chain_seq).collect();
    positions.sort_unstable();
    assert_eq!(positions, [Some(1), Some(2), Some(3)], "{rows:?}");
    assert_eq!(
        first_report.written + second_report.written,
        rows.len() as u64,
        "rows counted as written that the table does not hold: {first_report:?}, \
         {second_report:?}"
    );
    assert_eq!(
        (first_report.written, first_report.lost),
        (2, 0),
        "the first writer's second row is sealed again after the second's: {first_report:?}"
    );
}

fn app_bare() -> Router {
    Router::new().route("/ok", get(|| async { "ok" }))
}

/// The shutdown is asked while the writer waits on an insert the outage stalled: the writer
/// sees the ask only when the call gives up, and the report's `elapsed` counts from the ask,
/// that wait included, not from when the writer saw it (the guard times it).
async fn a_shutdown_asked_during_a_stalled_call_is_timed_from_the_ask(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (mut outage, url) = Outage::new(&t).await;
    let stall = Duration::from_secs(3);
    let (layer, guard) = AuditLayer::builder(stallable_db(&t, &url).await)
        .batch_size(1)
        .insert_timeout(stall)
        .build()
        .unwrap();
    let router = Router::new()
        .route("/orders", post(|| async { StatusCode::CREATED }))
        .layer(layer);
    let order = || {
        http::Request::post("/orders")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    router.clone().oneshot(order()).await.unwrap();
    wait_stats(&guard, "the first record was not written", |s| {
        s.written == 1
    })
    .await;

    outage.set(Link::Stall).await;
    router.clone().oneshot(order()).await.unwrap();
    // Taken from the queue (the live count: the published one changes only after the
    // insert): its insert is on its way into the stall, and the writer waits on it.
    tokio::time::timeout(WAIT, async {
        while guard.stats().queue_len > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the second record was not taken");
    assert_eq!(guard.stats().failed_batches, 0);
    drop(router);
    let mut stats = guard.watch_stats();
    let asked = std::time::Instant::now();
    let shutdown = tokio::spawn(async move { guard.shutdown(Duration::from_secs(30)).await });
    // The stalled call gives up (`insert_timeout`, or on PostgreSQL and MariaDB the pool's
    // acquire timeout first); only then can the writer see the ask. The link comes back for
    // the retry.
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.failed_batches >= 1))
        .await
        .expect("the stalled insert did not give up")
        .unwrap();
    let stalled_for = asked.elapsed();
    outage.set(Link::Pass).await;
    let report = shutdown.await.unwrap().unwrap();
    assert_eq!((report.written, report.lost), (2, 0), "{report:?}");
    assert!(
        stalled_for >= Duration::from_millis(300),
        "the stalled call gave up {stalled_for:?} after the ask: too soon to tell"
    );
    // Seen a few ms after the failure's stats were published: a little slack.
    assert!(
        report.elapsed + Duration::from_millis(100) >= stalled_for
            && report.elapsed <= asked.elapsed(),
        "the writer was held {stalled_for:?} from the ask and the shutdown took {:?} in all; \
         reported {:?}",
        asked.elapsed(),
        report.elapsed
    );
    assert_eq!(rows(&db).await.len(), 2);
}

/// A small deterministic generator for the schedule (SplitMix64): a failing seed replays.
struct Schedule(u64);

impl Schedule {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `range`.
    fn pick(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }
}

/// Processes that come and go while the database does: each serves a few rounds of requests,
/// each round under a link picked at random (up, cut, or stalled), and stops with a deadline
/// picked at random, short enough to leave records in the journal. A last process replays what
/// is left with the database up. Every answered request then has exactly one row, nothing was
/// lost or dropped on the way, and with `integrity` the chain verifies intact across the
/// restarts. `TOWER_AUDIT_TEST_SEED` replays a schedule (the seed is in every failure), and
/// `TOWER_AUDIT_TEST_LOG` shows the writer's log.
///
/// It runs only when asked (`TOWER_AUDIT_TEST_RANDOM=1`, or a seed; the matrix shows it as
/// ignored otherwise), so that CI does not pass or fail at random: the schedules that found
/// bugs run every time (below).
async fn random_outages_and_restarts_lose_nothing(t: Arc<TestDb>) {
    let seed = std::env::var("TOWER_AUDIT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    outages_and_restarts(&t, seed).await;
}

/// Schedules that found bugs, run every time:
/// - 1796486661770624494: a shutdown asked while an insert hung on a stalled connection
///   missed its deadline, and the process would have exited with the queue in memory;
/// - 1796486827703058883: the queue overflowed to the journal before the writer's first batch
///   failed and was journaled sealed; the next process sealed the overflow from the
///   database's last row, into the places of the sealed rows, which were then refused;
/// - 1796491399312521499: a replayed batch's `COPY` was cut off at a shutdown deadline after
///   PostgreSQL had taken it; the next process replayed the same rows from the journal, sealed
///   them again, and the insert skipped them as written, leaving their new places empty;
/// - 1796492248169641426 (failed about half its runs on PostgreSQL): such a `COPY` was
///   committed after the next process had read the chain's head, so the rows it sealed next
///   met those places taken and were dead-lettered; or it landed while that process was cut
///   off, whose retried batch was then sealed unchecked, leaving places empty.
async fn schedules_that_found_bugs_lose_nothing(t: Arc<TestDb>) {
    for seed in [
        1_796_486_661_770_624_494,
        1_796_486_827_703_058_883,
        1_796_491_399_312_521_499,
        1_796_492_248_169_641_426,
    ] {
        let db = TestDb::create(t.backend, "known_schedule").await;
        outages_and_restarts(&db, seed).await;
        db.cleanup().await;
    }
}

async fn outages_and_restarts(t: &TestDb, seed: u64) {
    let mut schedule = Schedule(seed);
    if std::env::var_os("TOWER_AUDIT_TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("tower_audit=debug")
            .with_test_writer()
            .try_init();
    }
    let db = t.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("audit.journal");
    let (mut outage, url) = Outage::new(t).await;
    let client = client();
    let mut answered = Vec::new();
    let mut steps = Vec::new();
    let processes = schedule.pick(2..5);
    for process in 0..=processes {
        let last = process == processes;
        #[cfg_attr(not(feature = "integrity"), allow(unused_mut))]
        let mut builder = tuned(AuditLayer::builder(writer_db(t, &url).await))
            .journal(&journal)
            .overflow(Overflow::Spill)
            .capacity(schedule.pick(8..64) as usize)
            .batch_size(schedule.pick(1..32) as usize);
        #[cfg(feature = "integrity")]
        {
            builder = builder.integrity(tower_audit::integrity::Integrity::new(
                "chaos",
                "k1",
                b"0123456789abcdef0123456789abcdef".to_vec(),
            ));
        }
        let (layer, guard) = builder
            .build()
            .unwrap_or_else(|e| panic!("seed {seed}: {steps:?}: {e}"));
        let server = Server::start(app(layer)).await;
        let rounds = if last { 0 } else { schedule.pick(1..4) };
        for _ in 0..rounds {
            let link = match schedule.pick(0..3) {
                0 => Link::Pass,
                1 => Link::Cut,
                _ => Link::Stall,
            };
            let requests = schedule.pick(1..30);
            steps.push(format!("process {process}: {link:?}, {requests} requests"));
            outage.set(link).await;
            for _ in 0..requests {
                let i = answered.len();
                let id = format!("chaos-{i:05}");
                let request = http::Request::post(format!("{}/items/{i}", server.url("")))
                    .header("x-request-id", &id)
                    .header("content-type", "application/json")
                    .body(full(format!(r#"{{"n":{i},"password":"p-{i}"}}"#)))
                    .unwrap();
                let (status, _) = send(&client, request).await;
                assert_eq!(status, StatusCode::CREATED, "seed {seed}: {steps:?}");
                answered.push((id, status));
            }
        }
        server.stop().await;
        let deadline = if last {
            outage.set(Link::Pass).await;
            WAIT
        } else {
            Duration::from_millis(schedule.pick(0..1500))
        };
        steps.push(format!("process {process}: shutdown within {deadline:?}"));
        let report = guard
            .shutdown(deadline)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {steps:?}: {e}"));
        assert_eq!(
            (report.lost, report.dropped),
            (0, 0),
            "seed {seed}: {steps:?}: {report:?}"
        );
        if last {
            assert_eq!(report.journaled, 0, "seed {seed}: {steps:?}: {report:?}");
        }
    }
    let rows = rows(&db).await;
    let ids: Vec<_> = rows.iter().filter_map(|r| r.request_id.clone()).collect();
    let unique: HashSet<_> = ids.iter().cloned().collect();
    let sent: HashSet<_> = answered.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "seed {seed}: a request has two rows"
    );
    let mut missing: Vec<_> = sent.difference(&unique).collect();
    missing.sort();
    let mut extra: Vec<_> = unique.difference(&sent).collect();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "seed {seed} ({:?}): {steps:?}: {} of {} requests have no row: {missing:?}; rows of no \
         request: {extra:?}",
        t.backend,
        missing.len(),
        sent.len()
    );
    #[cfg(feature = "integrity")]
    {
        let keys = tower_audit::integrity::Keyring::new()
            .key("k1", b"0123456789abcdef0123456789abcdef".to_vec());
        let report = tower_audit::integrity::verify(&db, &keys, Default::default())
            .await
            .unwrap();
        assert!(report.is_intact(), "seed {seed}: {steps:?}: {report}");
    }
}

/// Serves POSTs `ids` through `router` in process.
async fn post_items(router: &Router, ids: std::ops::Range<usize>) {
    for i in ids {
        let request = http::Request::post(format!("/items/{i}"))
            .body(axum::body::Body::from(format!(r#"{{"item":{i}}}"#)))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.into_body().collect().await.unwrap();
    }
}

/// Another session locks the table against inserts for several insert timeouts, as a migration
/// or a `VACUUM FULL` would. On PostgreSQL each `COPY` the writer gave up on was left on its
/// connection, started by the server once the lock went, waiting for data for good: the small
/// pool, which the application may share, was soon all stuck, and the writer never wrote again.
/// Now every record lands, and the pool still serves.
async fn a_table_locked_past_the_insert_timeout_loses_nothing_and_no_connection(t: Arc<TestDb>) {
    use sea_orm::TransactionTrait;
    let db = t.migrated().await;
    let mut options = t.options(t.url());
    options.max_connections(3);
    let pool = sea_orm::Database::connect(options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = AuditLayer::builder(pool.clone())
        .journal(dir.path().join("audit.journal"))
        .flush_interval(Duration::from_millis(20))
        .max_retry_backoff(Duration::from_millis(100))
        .insert_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let router = app(layer);
    post_items(&router, 0..5).await;
    wait_stats(&guard, "the first rows were not written", |s| {
        s.written == 5
    })
    .await;

    let lock = db.begin().await.unwrap();
    let (take, release) = match t.backend {
        Backend::Postgres => ("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE", None),
        Backend::MySql => ("LOCK TABLES audit_log WRITE", Some("UNLOCK TABLES")),
        // A write takes the file's lock until the transaction ends.
        Backend::Sqlite => ("DELETE FROM audit_log WHERE id < 0", None),
    };
    lock.execute_unprepared(take).await.unwrap();
    post_items(&router, 5..10).await;
    // More calls given up on than the pool has connections.
    wait_stats(&guard, "the writer did not give up on its calls", |s| {
        s.failed_batches >= 5
    })
    .await;
    if let Some(release) = release {
        lock.execute_unprepared(release).await.unwrap();
    }
    lock.commit().await.unwrap();

    post_items(&router, 10..15).await;
    wait_stats(&guard, "the writer did not recover", |s| s.written == 15).await;
    let answered =
        tokio::time::timeout(Duration::from_secs(5), pool.execute_unprepared("SELECT 1")).await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "the pool no longer serves: {answered:?}"
    );
    drop(router);
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost), (15, 0), "{report:?}");
    assert_eq!(rows(&db).await.len(), 15);
}

/// A column's type changed while the writer runs, and one a new writer meets changed: a
/// PostgreSQL writer sent `COPY`'s binary form in the types it read at its first batch, so
/// every batch after `status` became `bigint` failed until a restart, and a writer started
/// after `latency_us` became `integer` refused every row. MySQL takes the same changes.
async fn a_column_retyped_while_the_writer_runs_loses_nothing(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (retype_status, retype_latency) = match t.backend {
        Backend::Postgres => (
            Some("ALTER TABLE audit_log ALTER COLUMN status TYPE bigint"),
            Some("ALTER TABLE audit_log ALTER COLUMN latency_us TYPE integer"),
        ),
        Backend::MySql => (
            Some("ALTER TABLE audit_log MODIFY status BIGINT NULL"),
            Some("ALTER TABLE audit_log MODIFY latency_us INT NOT NULL"),
        ),
        // SQLite's columns take any type: nothing to change.
        Backend::Sqlite => (None, None),
    };
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = tuned(AuditLayer::builder(db.clone()))
        .journal(dir.path().join("audit.journal"))
        .build()
        .unwrap();
    let router = app(layer);
    post_items(&router, 0..5).await;
    wait_stats(&guard, "the first rows were not written", |s| {
        s.written == 5
    })
    .await;
    if let Some(statement) = retype_status {
        db.execute_unprepared(statement).await.unwrap();
    }
    post_items(&router, 5..10).await;
    wait_stats(&guard, "rows after the change were not written", |s| {
        s.written == 10
    })
    .await;
    drop(router);
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost), (10, 0), "{report:?}");

    if let Some(statement) = retype_latency {
        db.execute_unprepared(statement).await.unwrap();
    }
    let (layer, guard) = tuned(AuditLayer::builder(db.clone()))
        .journal(dir.path().join("audit.journal"))
        .build()
        .unwrap();
    let router = app(layer);
    post_items(&router, 10..15).await;
    drop(router);
    let stats = guard.watch_stats();
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost), (5, 0), "{report:?}");
    assert_eq!(stats.borrow().dead_lettered, 0);
    // The entity no longer reads the retyped columns: counted in SQL.
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM audit_log").await, 15);
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_log WHERE status = 201 AND latency_us >= 0").await,
        15
    );
}

/// The table's id sequence set behind its ids, as a data-only restore leaves it: PostgreSQL
/// refused each batch that took a used id as if its rows were at fault, and the records were
/// lost or dead-lettered. Each try takes new ids: the writer tries again until they are free.
async fn an_id_sequence_behind_the_table_loses_nothing(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = tuned(AuditLayer::builder(db.clone()))
        .journal(dir.path().join("audit.journal"))
        .batch_size(8)
        .build()
        .unwrap();
    let router = app(layer);
    post_items(&router, 0..200).await;
    wait_stats(&guard, "the first rows were not written", |s| {
        s.written == 200
    })
    .await;
    let rewind = match t.backend {
        Backend::Postgres => "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), 1)",
        // MySQL and SQLite take the next id past the table's highest.
        Backend::MySql => "ALTER TABLE audit_log AUTO_INCREMENT = 1",
        Backend::Sqlite => "UPDATE sqlite_sequence SET seq = 1 WHERE name = 'audit_log'",
    };
    db.execute_unprepared(rewind).await.unwrap();
    post_items(&router, 200..240).await;
    drop(router);
    let stats = guard.watch_stats();
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost), (240, 0), "{report:?}");
    assert_eq!(stats.borrow().dead_lettered, 0);
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 240);
    let safe: Vec<_> = rows
        .iter()
        .filter(|row| {
            row.request_body
                .as_deref()
                .is_some_and(|b| b.contains("rejected"))
        })
        .collect();
    assert!(safe.is_empty(), "rows in their safe form: {safe:#?}");
}
