//! Tamper evidence, on every configured backend: raw SQL tampering is reported with the right
//! kind and place, and untouched tables written by four concurrent writers verify clean.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use http_body_util::BodyExt;
use libtest_mimic::{Arguments, Failed, Trial};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tower::ServiceExt;
use tower_audit::AuditLayer;
use tower_audit::integrity::{BreakKind, Integrity, Keyring, VerifyOptions, verify};

use support::{Backend, TestDb};

type Scenario = fn(Arc<TestDb>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), |db| Box::pin($name(db)))),*]
    };
}

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    four_concurrent_writers_and_a_restart_verify_clean,
    updated_status_is_a_modified_row,
    deleted_row_is_a_gap,
    inserted_row_is_forged,
    swapped_rows_are_reordered,
    dropped_tail_is_truncated,
    signed_checkpoints_verify_with_the_public_key,
];

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for backend in Backend::ALL {
        let available = backend.base_url().is_some();
        if !available {
            eprintln!(
                "SKIPPED: the {} integrity tests (set {} to run them)",
                backend.name(),
                backend.env().unwrap_or_default()
            );
        }
        for &(name, scenario) in SCENARIOS {
            trials.push(
                Trial::test(format!("{}::{name}", backend.name()), move || {
                    run(backend, name, scenario)
                })
                .with_ignored_flag(!available),
            );
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

fn run(backend: Backend, name: &str, scenario: Scenario) -> Result<(), Failed> {
    if backend.base_url().is_none() {
        return Err(format!("{} is not set", backend.env().unwrap_or_default()).into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = Arc::new(TestDb::create(backend, name).await);
        let result = tokio::spawn(scenario(db.clone())).await;
        if let Ok(db) = Arc::try_unwrap(db) {
            db.cleanup().await;
        }
        result.map_err(|error| Failed::from(format!("{error}")))
    })
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn integrity(chain: &str) -> Integrity {
    Integrity::new(chain, "k1", KEY.to_vec())
}

/// Serves `n` audited requests through a writer on `chain`, then shuts it down.
async fn write(db: &DatabaseConnection, integrity: Integrity, n: usize) {
    let (layer, guard) = AuditLayer::builder(db.clone())
        .integrity(integrity)
        .batch_size(7) // several batches, so chains span transactions
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/orders/{id}",
            post(
                |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>,
                 _body: axum::body::Bytes| async move {
                    // JSON columns must read back exactly as they were hashed (jsonb, MySQL JSON).
                    audit.insert_extra(
                        "detail",
                        serde_json::json!({"z": "ü", "b": 1, "a": [1.5, true, null, -0.25, 1e3]}),
                    );
                    (StatusCode::CREATED, "created")
                },
            ),
        )
        .layer(layer);
    for i in 0..n {
        let request = http::Request::post(format!("/orders/{i}"))
            .header("content-type", "application/json")
            .header("user-agent", "ünïcode agent")
            .body(axum::body::Body::from(format!(
                r#"{{"item":"widget-{i}","password":"hunter2","nested":{{"b":1,"a":[1.5,true,null]}}}}"#
            )))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let report = guard.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.written, n as u64);
}

async fn check(db: &DatabaseConnection) -> tower_audit::integrity::VerifyReport {
    verify(
        db,
        &Keyring::new().key("k1", KEY.to_vec()),
        VerifyOptions::default(),
    )
    .await
    .unwrap()
}

/// Asserts the one chain `t` breaks with `kind` at `seq`.
async fn expect_break(db: &DatabaseConnection, kind: BreakKind, seq: i64) {
    let report = check(db).await;
    assert_eq!(report.chains.len(), 1, "{report}");
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!((found.kind, found.chain_seq), (kind, seq), "{report}");
}

async fn four_concurrent_writers_and_a_restart_verify_clean(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let db = db.clone();
        writers.spawn(async move { write(&db, integrity(&format!("writer-{w}")), 60).await });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    // A restarted writer continues its chain.
    write(&db, integrity("writer-0"), 15).await;
    let report = check(&db).await;
    assert!(report.is_intact(), "{report}");
    let rows: Vec<_> = report
        .chains
        .iter()
        .map(|c| (c.chain_id.as_str(), c.rows))
        .collect();
    assert_eq!(
        rows,
        [
            ("writer-0", 75),
            ("writer-1", 60),
            ("writer-2", 60),
            ("writer-3", 60)
        ]
    );
    assert_eq!(report.chains[0].last_seq, 75);
    assert_eq!(report.chains[0].checkpoint_seq, Some(75));
}

async fn tampered(t: &TestDb, sql: &[&str]) -> DatabaseConnection {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    assert!(check(&db).await.is_intact());
    for statement in sql {
        db.execute_unprepared(statement).await.unwrap();
    }
    db
}

async fn updated_status_is_a_modified_row(t: Arc<TestDb>) {
    let db = tampered(
        &t,
        &["UPDATE audit_log SET status = 200 WHERE chain_seq = 7"],
    )
    .await;
    expect_break(&db, BreakKind::Modified, 7).await;
}

async fn deleted_row_is_a_gap(t: Arc<TestDb>) {
    let db = tampered(&t, &["DELETE FROM audit_log WHERE chain_seq = 5"]).await;
    expect_break(&db, BreakKind::Deleted, 6).await;
}

async fn inserted_row_is_forged(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let rows = support::rows(&db).await;
    let last = rows.iter().find(|r| r.chain_seq == Some(20)).unwrap();
    // The attacker reads the last hash and links to it, but cannot make a valid HMAC.
    db.execute_unprepared(&format!(
        "INSERT INTO audit_log (record_id, occurred_at, method, path, latency_us, \
         request_body_truncated, request_bytes, response_bytes, chain_id, chain_seq, prev_hash, \
         row_hash, key_id) VALUES ('forged-1', '2026-11-25 10:00:00', 'DELETE', '/orders/1', 5, \
         false, 0, 0, 't', 21, '{}', 'v1:{}', 'k1')",
        last.row_hash.as_deref().unwrap(),
        "ab".repeat(32)
    ))
    .await
    .unwrap();
    expect_break(&db, BreakKind::Forged, 21).await;
}

async fn swapped_rows_are_reordered(t: Arc<TestDb>) {
    let db = tampered(
        &t,
        &[
            "UPDATE audit_log SET chain_seq = -1 WHERE chain_seq = 8",
            "UPDATE audit_log SET chain_seq = 8 WHERE chain_seq = 9",
            "UPDATE audit_log SET chain_seq = 9 WHERE chain_seq = -1",
        ],
    )
    .await;
    expect_break(&db, BreakKind::Reordered, 8).await;
}

async fn dropped_tail_is_truncated(t: Arc<TestDb>) {
    let db = tampered(&t, &["DELETE FROM audit_log WHERE chain_seq > 17"]).await;
    expect_break(&db, BreakKind::TruncatedTail, 18).await;
}

async fn signed_checkpoints_verify_with_the_public_key(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let signing = integrity("signed").sign_checkpoints([7u8; 32]);
    let public = signing.checkpoint_public_key().unwrap();
    write(&db, signing.clone(), 10).await;
    let keys = Keyring::new()
        .key("k1", KEY.to_vec())
        .checkpoint_key(public)
        .unwrap();
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    assert!(report.is_intact(), "{report}");
    db.execute_unprepared("UPDATE audit_checkpoint SET chain_seq = 11")
        .await
        .unwrap();
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    let found = report.chains[0].first_break.clone().unwrap();
    assert_eq!(found.kind, BreakKind::BadCheckpoint, "{report}");
}
