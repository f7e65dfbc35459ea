//! The `metrics` feature: the writer's counters reach the installed recorder.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::ServiceExt;
use tower_audit::AuditLayer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_counters_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (layer, guard) = AuditLayer::builder(db)
        .skip_path("/health")
        .build()
        .unwrap();
    let router = Router::new()
        .route("/x", get(|| async { "x" }))
        .route("/health", get(|| async { "ok" }))
        .layer(layer);
    for path in ["/x", "/x", "/x", "/health"] {
        let request = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    guard.shutdown(Duration::from_secs(10)).await.unwrap();

    let metrics = by_name(&snapshotter);
    let counter = |name: &str| counter_of(&metrics, name);
    assert_eq!(counter("tower_audit_records_written_total"), 3);
    assert_eq!(counter("tower_audit_records_skipped_total"), 1);
    assert_eq!(counter("tower_audit_records_dropped_total"), 0);
    // `Block` is not the policy here: nothing waited for room.
    assert_eq!(counter("tower_audit_requests_blocked_total"), 0);
    assert_eq!(counter("tower_audit_blocked_microseconds_total"), 0);
    // Every body fitted in the queue's budget.
    assert_eq!(counter("tower_audit_request_bodies_shed_total"), 0);
    assert_eq!(counter("tower_audit_journal_unreadable_total"), 0);
    assert!(matches!(
        metrics.get("tower_audit_queue_len"),
        Some(DebugValue::Gauge(_))
    ));
    // Every metric the docs name is there.
    for name in DOCUMENTED {
        assert!(metrics.contains_key(*name), "{name} not exported");
    }
    assert_eq!(counter("tower_audit_records_captured_total"), 3);

    // Two writers in one process (an HTTP and a gRPC server side by side): the counters are
    // their sums, and never go back when the one with less to count publishes last.
    let mut guards = Vec::new();
    for requests in [4, 2] {
        let db = tower_audit::connect("sqlite::memory:").await.unwrap();
        tower_audit::migrate(&db).await.unwrap();
        let (layer, guard) = AuditLayer::builder(db).build().unwrap();
        let router = Router::new()
            .route("/x", get(|| async { "x" }))
            .layer(layer);
        for _ in 0..requests {
            let request = http::Request::get("/x")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
        guards.push(guard);
    }
    for guard in guards {
        guard.shutdown(Duration::from_secs(10)).await.unwrap();
    }
    let metrics = by_name(&snapshotter);
    let counter = |name: &str| counter_of(&metrics, name);
    assert_eq!(counter("tower_audit_records_written_total"), 3 + 4 + 2);
    assert_eq!(counter("tower_audit_records_captured_total"), 3 + 4 + 2);
    assert_eq!(counter("tower_audit_records_skipped_total"), 1);
    assert!(matches!(
        metrics.get("tower_audit_queue_len"),
        Some(DebugValue::Gauge(queued)) if queued.into_inner() == 0.0
    ));

    // A writer whose database was never migrated: `tower_audit_schema_missing` says so from its
    // first failed insert, and goes back to 0 once the table is there and its records written.
    let (db, guard) = unmigrated_writer(Duration::from_millis(100)).await;
    let mut stats = guard.watch_stats();
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.schema_missing),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        gauge_of(&by_name(&snapshotter), "tower_audit_schema_missing"),
        1.0
    );
    tower_audit::migrate(&db).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        stats.wait_for(|s| s.written == 1 && !s.schema_missing),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        gauge_of(&by_name(&snapshotter), "tower_audit_schema_missing"),
        0.0
    );
    guard.shutdown(Duration::from_secs(10)).await.unwrap();

    // Two writers whose database is away, one since a second before the other: the time away
    // is the longer of the two, not their sum, and 0 once both have stopped.
    let unmigrated = || async { unmigrated_writer(Duration::from_millis(50)).await.1 };
    let away_at_least = |guard: &tower_audit::WriterGuard, millis| {
        let mut stats = guard.watch_stats();
        async move {
            let away = |s: &tower_audit::WriterStats| {
                s.database_away_for
                    .is_some_and(|away| away >= Duration::from_millis(millis))
            };
            tokio::time::timeout(Duration::from_secs(20), stats.wait_for(away))
                .await
                .unwrap()
                .unwrap();
        }
    };
    let first = unmigrated().await;
    away_at_least(&first, 1_000).await;
    let second = unmigrated().await;
    away_at_least(&second, 500).await;
    let away = gauge_of(&by_name(&snapshotter), "tower_audit_database_away_seconds");
    let longest = first.stats().database_away_for.unwrap().as_secs_f64();
    assert!(
        (1.0..=longest).contains(&away),
        "away {away} s, the longer writer's {longest} s"
    );
    first.shutdown(Duration::from_millis(100)).await.unwrap();
    second.shutdown(Duration::from_millis(100)).await.unwrap();
    let metrics = by_name(&snapshotter);
    assert_eq!(gauge_of(&metrics, "tower_audit_database_away_seconds"), 0.0);
    assert_eq!(gauge_of(&metrics, "tower_audit_schema_missing"), 0.0);

    // Writers given a name publish under the label `writer`, each its own, and leave the
    // unlabelled metrics alone. A snapshot of this recorder sets what it read to 0, so one is
    // taken after they stopped and read for everything: an unlabelled counter published
    // since the last one would hold its whole total again.
    by_name(&snapshotter);
    for (name, requests) in [("http", 3), ("grpc", 2)] {
        let db = tower_audit::connect("sqlite::memory:").await.unwrap();
        tower_audit::migrate(&db).await.unwrap();
        let (layer, guard) = AuditLayer::builder(db).writer_name(name).build().unwrap();
        let router = Router::new()
            .route("/x", get(|| async { "x" }))
            .layer(layer);
        for _ in 0..requests {
            let request = http::Request::get("/x")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
        guard.shutdown(Duration::from_secs(10)).await.unwrap();
    }
    let snapshot = snapshotter.snapshot().into_vec();
    let labelled = |name: &str, writer: Option<&str>| {
        snapshot
            .iter()
            .find(|(key, _, _, _)| {
                let labels: Vec<_> = key
                    .key()
                    .labels()
                    .map(|label| (label.key(), label.value()))
                    .collect();
                key.key().name() == name
                    && labels
                        == writer
                            .map(|w| ("writer", w))
                            .into_iter()
                            .collect::<Vec<_>>()
            })
            .map(|(_, _, _, value)| value)
    };
    for (writer, written) in [("http", 3), ("grpc", 2)] {
        let counted = labelled("tower_audit_records_written_total", Some(writer));
        assert_eq!(counted, Some(&DebugValue::Counter(written)), "{writer}");
        for name in DOCUMENTED {
            assert!(
                labelled(name, Some(writer)).is_some(),
                "{name}{{writer={writer}}}"
            );
        }
    }
    let unlabelled = labelled("tower_audit_records_written_total", None);
    assert_eq!(unlabelled, Some(&DebugValue::Counter(0)));

    journal_bytes_count_once_and_leave_with_their_writer(&snapshotter).await;
    records_dropped_after_shutdown_are_published(&snapshotter).await;
}

/// A writer stopped with rows in its journal, then built again on it in the same process: the
/// journal's bytes count once in `tower_audit_journal_bytes` (they counted twice), a stopped
/// writer's leave it, and the gauge is 0 once the rows are replayed (it stayed at the bytes).
async fn journal_bytes_count_once_and_leave_with_their_writer(
    snapshotter: &metrics_util::debugging::Snapshotter,
) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("audit.journal");
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    let writer = |db| {
        AuditLayer::builder(db)
            .journal(&journal)
            .writer_name("journal")
            .max_retry_backoff(Duration::from_millis(50))
            .build()
            .unwrap()
    };
    let (layer, guard) = writer(db.clone());
    let router = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(layer);
    for _ in 0..5 {
        let request = http::Request::get("/x")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let mut stats = guard.watch_stats();
    let spilled = stats.wait_for(|s| s.spilled == 5 && s.journal_bytes > 0);
    let bytes = tokio::time::timeout(Duration::from_secs(20), spilled)
        .await
        .unwrap()
        .unwrap()
        .journal_bytes;
    assert_eq!(
        gauge(snapshotter, "tower_audit_journal_bytes", "journal"),
        bytes as f64
    );
    let report = guard.shutdown(Duration::from_millis(200)).await.unwrap();
    assert_eq!(report.journaled, 5);
    assert_eq!(
        gauge(snapshotter, "tower_audit_journal_bytes", "journal"),
        0.0
    );

    let (_layer, guard) = writer(db.clone());
    let mut stats = guard.watch_stats();
    let reread = stats.wait_for(|s| s.journal_bytes == bytes);
    tokio::time::timeout(Duration::from_secs(20), reread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        gauge(snapshotter, "tower_audit_journal_bytes", "journal"),
        bytes as f64
    );
    tower_audit::migrate(&db).await.unwrap();
    let replayed = stats.wait_for(|s| s.replayed == 5 && s.journal_bytes == 0);
    tokio::time::timeout(Duration::from_secs(20), replayed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        gauge(snapshotter, "tower_audit_journal_bytes", "journal"),
        0.0
    );
    guard.shutdown(Duration::from_secs(10)).await.unwrap();
}

/// A record finished after the writer was shut down (a request still in flight) is dropped:
/// its count reaches `watch_stats` and the metrics, the only places it can show once the
/// guard's report is out (it was counted where nothing published it).
async fn records_dropped_after_shutdown_are_published(
    snapshotter: &metrics_util::debugging::Snapshotter,
) {
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (layer, guard) = AuditLayer::builder(db).writer_name("late").build().unwrap();
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (started, release) = (started.clone(), release.clone());
        move || async move {
            started.notify_one();
            release.notified().await;
            "late"
        }
    };
    let router = Router::new().route("/slow", get(handler)).layer(layer);
    let request = http::Request::get("/slow")
        .body(axum::body::Body::empty())
        .unwrap();
    let in_flight = tokio::spawn(async move {
        let response = router.oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    });
    started.notified().await;
    let mut stats = guard.watch_stats();
    let report = guard.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!((report.written, report.dropped), (0, 0));
    release.notify_one();
    assert_eq!(in_flight.await.unwrap(), "late");
    let dropped = stats.wait_for(|s| s.dropped == 1 && s.captured == 1);
    tokio::time::timeout(Duration::from_secs(20), dropped)
        .await
        .unwrap()
        .unwrap();
    let snapshot = snapshotter.snapshot().into_vec();
    for name in [
        "tower_audit_records_dropped_total",
        "tower_audit_records_captured_total",
    ] {
        assert_eq!(
            labelled_in(&snapshot, name, "late"),
            Some(&DebugValue::Counter(1)),
            "{name}"
        );
    }
}

/// The value of `name` with the label `writer="<writer>"` in `snapshot`.
fn labelled_in<'s>(
    snapshot: &'s [(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
    name: &str,
    writer: &str,
) -> Option<&'s DebugValue> {
    snapshot
        .iter()
        .find(|(key, _, _, _)| {
            key.key().name() == name
                && key
                    .key()
                    .labels()
                    .map(|label| (label.key(), label.value()))
                    .eq([("writer", writer)])
        })
        .map(|(_, _, _, value)| value)
}

/// The gauge `name` of the writer named `writer`, from a new snapshot.
fn gauge(snapshotter: &metrics_util::debugging::Snapshotter, name: &str, writer: &str) -> f64 {
    match labelled_in(&snapshotter.snapshot().into_vec(), name, writer) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("{name}{{writer={writer}}}: {other:?}"),
    }
}

/// A writer on an in-memory SQLite database that was never migrated, after one request: its
/// inserts fail for want of the table, retried at most `backoff` apart.
async fn unmigrated_writer(
    backoff: Duration,
) -> (sea_orm::DatabaseConnection, tower_audit::WriterGuard) {
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    let (layer, guard) = AuditLayer::builder(db.clone())
        .max_retry_backoff(backoff)
        .build()
        .unwrap();
    let router = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(layer);
    let request = http::Request::get("/x")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    (db, guard)
}

/// A gauge's value; fails the test when `name` is not a gauge.
fn gauge_of(metrics: &std::collections::HashMap<String, DebugValue>, name: &str) -> f64 {
    match metrics.get(name) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("{name}: {other:?}"),
    }
}

/// The metrics the `metrics` feature documents (README, "The writer").
const DOCUMENTED: &[&str] = &[
    "tower_audit_records_captured_total",
    "tower_audit_records_written_total",
    "tower_audit_records_dropped_total",
    "tower_audit_records_lost_total",
    "tower_audit_records_spilled_total",
    "tower_audit_records_replayed_total",
    "tower_audit_records_dead_lettered_total",
    "tower_audit_records_skipped_total",
    "tower_audit_requests_rejected_total",
    "tower_audit_requests_blocked_total",
    "tower_audit_failed_batches_total",
    "tower_audit_blocked_microseconds_total",
    "tower_audit_request_bodies_shed_total",
    "tower_audit_request_heads_cut_total",
    "tower_audit_journal_unreadable_total",
    "tower_audit_queue_len",
    "tower_audit_journal_bytes",
    "tower_audit_database_away_seconds",
    "tower_audit_schema_missing",
];

/// The recorder's metrics without labels, by name.
fn by_name(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> std::collections::HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, _, _, _)| key.key().labels().next().is_none())
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect()
}

/// A counter's value; fails the test when `name` is not a counter.
fn counter_of(metrics: &std::collections::HashMap<String, DebugValue>, name: &str) -> u64 {
    match metrics.get(name) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?}"),
    }
}
