//! A database that is away: requests are served as usual, failures are retried and counted, and
//! nothing panics.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, TransactionTrait};
use tower::ServiceExt;
use tower_audit::AuditLayer;

const WAIT: Duration = Duration::from_secs(30);

async fn serve(router: &Router, n: usize) {
    for i in 0..n {
        let request = http::Request::get(format!("/item/{i}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
}

fn router(layer: AuditLayer) -> Router {
    Router::new()
        .route("/item/{id}", get(|| async { "item" }))
        .layer(layer)
}

/// A migrated SQLite file, a connection to it that waits 20 ms for its lock, and a transaction
/// of another connection that holds the write lock until it ends.
async fn locked_sqlite() -> (
    tempfile::TempDir,
    sea_orm::DatabaseConnection,
    sea_orm::DatabaseTransaction,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("audit.db").display()
    );
    let mut options = tower_audit::connect_options(url.clone());
    options.map_sqlx_sqlite_opts(|o| {
        tower_audit::sqlite_settings(o).busy_timeout(Duration::from_millis(20))
    });
    let db = sea_orm::Database::connect(options).await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let other = tower_audit::connect(url).await.unwrap();
    let lock = other.begin().await.unwrap();
    lock.execute_unprepared(
        "INSERT INTO tower_audit_migrations (version, applied_at) VALUES ('lock', 'now')",
    )
    .await
    .unwrap();
    (dir, db, lock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_sqlite_file_is_retried_until_it_is_free() {
    // Another process holds the write lock.
    let (_dir, db, lock) = locked_sqlite().await;

    let (layer, guard) = AuditLayer::builder(db.clone())
        .flush_interval(Duration::from_millis(10))
        .max_retry_backoff(Duration::from_millis(50))
        .build()
        .unwrap();
    let router = router(layer);
    serve(&router, 20).await;

    let mut stats = guard.watch_stats();
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.failed_batches >= 3))
        .await
        .unwrap()
        .unwrap();
    let now = guard.stats();
    assert_eq!(now.written, 0);
    assert!(now.last_error.unwrap().contains("locked"));

    lock.rollback().await.unwrap();
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.written == 20))
        .await
        .unwrap()
        .unwrap();
    let report = guard.shutdown(WAIT).await.unwrap();
    assert_eq!((report.written, report.lost, report.dropped), (20, 0, 0));
    let count = {
        use sea_orm::{EntityTrait, PaginatorTrait};
        tower_audit::entity::audit_log::Entity::find()
            .count(&db)
            .await
            .unwrap()
    };
    assert_eq!(count, 20);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_retried_counted_and_reported_lost_at_the_deadline() {
    // Nothing listens on port 1: every connection attempt is refused.
    let mut options = tower_audit::connect_options("postgres://postgres@127.0.0.1:1/test");
    options
        .connect_lazy(true)
        .connect_timeout(Duration::from_millis(200))
        .acquire_timeout(Duration::from_millis(300));
    let db = sea_orm::Database::connect(options).await.unwrap();
    let (layer, guard) = AuditLayer::builder(db)
        .flush_interval(Duration::from_millis(10))
        .max_retry_backoff(Duration::from_millis(100))
        .build()
        .unwrap();
    let router = router(layer);
    serve(&router, 10).await;

    let mut stats = guard.watch_stats();
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.failed_batches >= 2))
        .await
        .unwrap()
        .unwrap();
    drop(router);
    let report = guard.shutdown(Duration::from_secs(1)).await.unwrap();
    assert_eq!((report.written, report.lost), (0, 10), "{report:?}");
    assert!(report.last_error.is_some());
}

/// Found by a probe: once the retry backoff had grown past the time `shutdown` left, the writer
/// gave up at once ("shutdown deadline reached") and lost its records, though the database
/// came back well before the deadline. It now tries again within the time left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_trying_until_its_deadline_whatever_the_backoff() {
    let (_dir, db, lock) = locked_sqlite().await;

    let (layer, guard) = AuditLayer::builder(db.clone())
        .flush_interval(Duration::from_millis(10))
        .max_retry_backoff(Duration::from_secs(30))
        .build()
        .unwrap();
    serve(&router(layer), 10).await;
    // Seven failures: the next pause is 1.6 to 3.2 s, then 3.2 to 6.4 s.
    let mut stats = guard.watch_stats();
    tokio::time::timeout(WAIT, stats.wait_for(|s| s.failed_batches >= 7))
        .await
        .unwrap()
        .unwrap();
    // Released once the shutdown's first try has failed too: the next pause, 3.2 to 6.4 s,
    // is past the 2 s left.
    let failed = stats.borrow().failed_batches;
    let released = tokio::spawn(async move {
        tokio::time::timeout(WAIT, stats.wait_for(|s| s.failed_batches > failed))
            .await
            .unwrap()
            .unwrap();
        lock.rollback().await.unwrap();
    });
    let report = guard.shutdown(Duration::from_secs(2)).await.unwrap();
    released.await.unwrap();
    assert_eq!((report.written, report.lost), (10, 0), "{report:?}");
}
