//! Tamper evidence, on every configured backend: raw SQL tampering is reported with the right
//! kind and place, and untouched tables written by four concurrent writers verify clean.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tower::ServiceExt;
use tower_audit::integrity::{
    BreakKind, Integrity, Keyring, VerifyOptions, VerifyReport, verify, verify_export,
    verify_export_from_start,
};
use tower_audit::store::{AuditFilter, Export, ExportFormat, PurgeOptions, purge_before};
use tower_audit::{AuditLayer, Overflow};

use support::proxy::{Link, Outage, stallable_db};
use support::{Backend, TestDb, scenarios, wait_stats};

use support::Scenario;

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    four_concurrent_writers_and_a_restart_verify_clean,
    updated_status_is_a_modified_row,
    a_wrong_key_is_named_at_the_first_row_it_fails,
    deleted_row_is_a_gap,
    inserted_row_is_forged,
    rows_before_position_1_are_forged,
    a_row_at_the_lowest_position_there_is_a_break_offline_too,
    a_row_at_the_highest_position_there_is_stops_the_chain_not_the_writer,
    swapped_rows_are_reordered,
    dropped_tail_is_truncated,
    a_tail_dropped_with_its_checkpoint_shows_against_an_earlier_report,
    anchors_kept_elsewhere_show_a_dropped_tail_a_deleted_chain_and_a_rewrite,
    hashless_rows_are_modified,
    rows_that_cannot_be_read_are_breaks_and_other_chains_still_verify,
    chain_ids_that_are_not_text_are_breaks_and_other_chains_still_verify,
    checkpoints_that_cannot_be_read_are_breaks_and_other_chains_still_verify,
    a_position_that_cannot_be_read_in_a_time_range_is_a_break,
    rows_deleted_at_the_start_of_a_time_range_are_a_gap,
    rows_deleted_after_a_purge_at_the_start_of_a_time_range_are_a_gap_offline,
    a_forged_tombstone_cannot_hide_a_dropped_tail,
    a_chain_rewritten_with_the_hmac_key_fails_its_signed_checkpoint,
    time_ranges_cover_rows_chained_out_of_arrival_order,
    signed_checkpoints_verify_with_the_public_key,
    with_a_public_key_only_signed_tombstones_account_for_deleted_rows,
    a_purge_run_again_adds_no_tombstone_unless_signing_with_a_rotated_key,
    purged_prefix_and_a_restart_verify_clean,
    purging_a_whole_chain_and_a_restart_verify_clean,
    legal_hold_stops_a_chain_purge_and_it_verifies,
    a_purge_cut_short_completes_when_run_again,
    export_with_proof_verifies_offline,
    an_export_with_proof_in_a_snapshot_verifies_whatever_a_purge_does_meanwhile,
    anchors_check_an_export_offline_as_they_do_the_database,
    tampered_export_lines_are_reported,
    json_that_sql_reads_otherwise_than_its_hash_is_a_modified_row,
    chain_ids_and_checkpoint_kinds_are_told_apart_by_their_bytes,
    two_writers_given_one_chain_id_lose_nothing_and_verify,
    a_stalled_database_cannot_hold_up_the_final_checkpoint,
    a_stalled_database_cannot_hold_up_the_chains_first_read,
];

fn main() {
    support::run_matrix("integrity", SCENARIOS);
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
                        // 1e16 and -0.0: jsonb reads them back as 10000000000000000 and 0.0.
                        serde_json::json!({
                            "z": "ü", "b": 1, "a": [1.5, true, null, -0.25, 1e3, 1e16, -0.0]
                        }),
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

/// Inserts a row no writer made: `record` at `place` (chain, position), linked to `prev`, its
/// hash `hash`, under key `k1`.
async fn forge(db: &DatabaseConnection, record: &str, place: (&str, i64), prev: &str, hash: &str) {
    let (chain, seq) = place;
    db.execute_unprepared(&format!(
        "INSERT INTO audit_log (record_id, occurred_at, method, path, latency_us, \
         request_body_truncated, request_bytes, response_bytes, chain_id, chain_seq, \
         prev_hash, row_hash, key_id) VALUES ('{record}', '2026-11-25 10:00:00', 'DELETE', \
         '/orders/1', 5, false, 0, 0, '{chain}', {seq}, '{prev}', '{hash}', 'k1')"
    ))
    .await
    .unwrap();
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

/// The right key id with the wrong key fails the first row as a modification of it would:
/// the break says both, where a later row's says only what it is.
async fn a_wrong_key_is_named_at_the_first_row_it_fails(t: Arc<TestDb>) {
    let db = tampered(
        &t,
        &["UPDATE audit_log SET status = 200 WHERE chain_seq = 7"],
    )
    .await;
    let hint = "or key \"k1\" is not the one it was sealed with";
    let detail = |report: &VerifyReport| {
        let found = report.chains[0].first_break.clone().expect("a break");
        (found.kind, found.chain_seq, found.detail)
    };
    let (kind, seq, text) = detail(&check(&db).await);
    assert_eq!((kind, seq), (BreakKind::Modified, 7), "{text}");
    assert!(!text.contains(hint), "{text}");
    let wrong = Keyring::new().key("k1", b"another key of thirty-two bytes!".to_vec());
    let report = verify(&db, &wrong, VerifyOptions::default()).await.unwrap();
    let (kind, seq, text) = detail(&report);
    assert_eq!(seq, 1, "{report}");
    assert!(
        matches!(kind, BreakKind::Modified | BreakKind::Forged),
        "{report}"
    );
    assert!(text.contains(hint), "{report}");
    // A key shorter than a writer takes sealed no row: a configuration error, not tampering.
    let short = Keyring::new()
        .key("k1", KEY.to_vec())
        .key("old", b"0123".to_vec());
    let refused = |result: Result<VerifyReport, tower_audit::Error>| match result {
        Err(tower_audit::Error::Config(message)) => assert!(message.contains("old"), "{message}"),
        other => panic!("{other:?}"),
    };
    refused(verify(&db, &short, VerifyOptions::default()).await);
    refused(verify_export(export(&db).await.as_bytes(), &short));
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
    let hash = format!("v1:{}", "ab".repeat(32));
    forge(
        &db,
        "forged-1",
        ("t", 21),
        last.row_hash.as_deref().unwrap(),
        &hash,
    )
    .await;
    expect_break(&db, BreakKind::Forged, 21).await;
}

/// A row forged at `i64::MIN` made an export with proof compute the position before it, and
/// panic on the overflow (in a build with overflow checks): it is a break like any row below 1.
async fn a_row_at_the_lowest_position_there_is_a_break_offline_too(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 5).await;
    forge(&db, "forged-min", ("m", i64::MIN), "x", "y").await;
    let in_database = check(&db).await;
    let offline = verify_export(export(&db).await.as_bytes(), &keys()).unwrap();
    for report in [&in_database, &offline] {
        assert_eq!(
            breaks(report),
            [("m", Some((BreakKind::Forged, i64::MIN))), ("t", None)],
            "{report}"
        );
    }
}

/// A row forged at `i64::MAX` leaves a restarted writer no place after it: once it panicked on
/// the overflow (with overflow checks; without, it wrapped to `i64::MIN`). The records that
/// come are written, unsealed, and the forged row is a break.
async fn a_row_at_the_highest_position_there_is_stops_the_chain_not_the_writer(t: Arc<TestDb>) {
    use sea_orm::EntityTrait;
    use tower_audit::entity::audit_log;
    let db = t.migrated().await;
    write(&db, integrity("t"), 5).await;
    forge(&db, "forged-max", ("t", i64::MAX), "x", "y").await;
    write(&db, integrity("t"), 3).await;
    let rows = audit_log::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), 9);
    let unsealed = rows.iter().filter(|row| row.chain_seq.is_none()).count();
    assert_eq!(unsealed, 3);
    let report = check(&db).await;
    assert_eq!(
        breaks(&report),
        [("t", Some((BreakKind::Deleted, i64::MAX)))],
        "{report}"
    );
}

/// No writer makes a position below 1: a row there is forged, in the database (whose walk once
/// began after position 0, so that such a row was never read) and in an export; also when it is
/// the only row of its chain.
async fn rows_before_position_1_are_forged(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let rows = support::rows(&db).await;
    let first = rows.iter().find(|r| r.chain_seq == Some(1)).unwrap();
    let (prev, hash) = (
        first.prev_hash.as_deref().unwrap(),
        first.row_hash.as_deref().unwrap(),
    );
    forge(&db, "forged-0", ("t", 0), prev, hash).await;
    expect_break(&db, BreakKind::Forged, 0).await;
    let report = verify_export(export(&db).await.as_bytes(), &keys()).unwrap();
    let found = report.chains[0]
        .first_break
        .clone()
        .expect("a break offline");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::Forged, 0),
        "{report}"
    );
    // A chain of its own, with one row, at -1.
    db.execute_unprepared("DELETE FROM audit_log WHERE record_id = 'forged-0'")
        .await
        .unwrap();
    forge(&db, "forged-1", ("u", -1), prev, hash).await;
    let report = check(&db).await;
    let u = report
        .chains
        .iter()
        .find(|c| c.chain_id == "u")
        .expect("chain u");
    let found = u.first_break.clone().expect("a break in u");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::Forged, -1),
        "{report}"
    );
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

/// Checkpoints live in the table they vouch for: a tail deleted with its checkpoint verifies
/// intact (README, "What it cannot see"), and shows only against the `last_seq` and
/// `checkpoint_seq` of an earlier report kept elsewhere.
async fn a_tail_dropped_with_its_checkpoint_shows_against_an_earlier_report(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let kept = check(&db).await.chains[0].clone();
    assert_eq!((kept.last_seq, kept.checkpoint_seq), (20, Some(20)));
    db.execute_unprepared("DELETE FROM audit_log WHERE chain_seq > 17")
        .await
        .unwrap();
    db.execute_unprepared("DELETE FROM audit_checkpoint")
        .await
        .unwrap();
    let report = check(&db).await;
    assert_intact(&report, "t", 17, 17);
    let now = &report.chains[0];
    assert!(now.last_seq < kept.last_seq && now.checkpoint_seq < kept.checkpoint_seq);
}

/// An anchor (a position and hash kept outside the database: an intact report's `last_seq` and
/// `last_hash`, or the writer's checkpoint log) shows what the database's own checkpoints
/// cannot: a tail deleted with them, a chain deleted whole, a chain rewritten with the HMAC key.
/// Each verifies intact without the anchor.
async fn anchors_kept_elsewhere_show_a_dropped_tail_a_deleted_chain_and_a_rewrite(t: Arc<TestDb>) {
    use tower_audit::integrity::Anchor;
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let kept = check(&db).await.chains[0].clone();
    let anchor = kept.anchor().expect("an intact chain's anchor");
    assert_eq!(anchor.chain_seq, 20);
    // As text (the CLI's `--anchor`, the writer's log) and back.
    assert_eq!(anchor.to_string().parse::<Anchor>(), Ok(anchor.clone()));
    let anchored = |anchor: &Anchor| VerifyOptions {
        anchors: vec![anchor.clone()],
        ..VerifyOptions::default()
    };
    let verified = |options| {
        let db = db.clone();
        async move { verify(&db, &keys(), options).await.unwrap() }
    };
    let first_break = |report: &VerifyReport| {
        assert_eq!(report.chains.len(), 1, "{report}");
        report.chains[0]
            .first_break
            .as_ref()
            .map(|b| (b.kind, b.chain_seq))
    };
    assert_eq!(first_break(&verified(anchored(&anchor)).await), None);

    // A tail deleted with the checkpoints.
    db.execute_unprepared("DELETE FROM audit_log WHERE chain_seq > 17")
        .await
        .unwrap();
    db.execute_unprepared("DELETE FROM audit_checkpoint")
        .await
        .unwrap();
    assert_eq!(first_break(&verified(VerifyOptions::default()).await), None);
    assert_eq!(
        first_break(&verified(anchored(&anchor)).await),
        Some((BreakKind::TruncatedTail, 18))
    );
    // An anchor on a row still there holds.
    let earlier = Anchor {
        chain_seq: 17,
        row_hash: check(&db).await.chains[0].last_hash.clone().unwrap(),
        ..anchor.clone()
    };
    assert_eq!(first_break(&verified(anchored(&earlier)).await), None);

    // The chain deleted whole: no chain left to report, but the anchor names it.
    db.execute_unprepared("DELETE FROM audit_log")
        .await
        .unwrap();
    assert!(check(&db).await.chains.is_empty());
    assert_eq!(
        first_break(&verified(anchored(&anchor)).await),
        Some((BreakKind::TruncatedTail, 1))
    );

    // The chain written again from genesis with the HMAC key: valid hashes, other rows.
    write(&db, integrity("t"), 20).await;
    assert_eq!(first_break(&verified(VerifyOptions::default()).await), None);
    let rewritten = verified(anchored(&anchor)).await;
    assert_eq!(
        first_break(&rewritten),
        Some((BreakKind::BadCheckpoint, 20)),
        "{rewritten}"
    );
    // Only this chain's anchors apply, and a malformed one is refused with what it should be.
    let other = Anchor {
        chain_id: "elsewhere".into(),
        ..anchor.clone()
    };
    let report = verified(VerifyOptions {
        chain_id: Some("t".into()),
        anchors: vec![other],
        ..VerifyOptions::default()
    })
    .await;
    assert_eq!(first_break(&report), None);
    let refused = "t@twenty=v1:00".parse::<Anchor>().unwrap_err();
    assert!(refused.contains("chain@seq=hash"), "{refused}");
}

/// A chained row whose hashes were set to NULL is a modified row: at the end of the chain (where
/// `verify` once read the same page forever) as in the middle, and in an export.
async fn hashless_rows_are_modified(t: Arc<TestDb>) {
    let db = tampered(
        &t,
        &["UPDATE audit_log SET row_hash = NULL WHERE chain_seq = 20"],
    )
    .await;
    // A hang is a failure too.
    let report = tokio::time::timeout(Duration::from_secs(60), check(&db))
        .await
        .expect("verify returns");
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::Modified, 20),
        "{report}"
    );
    let report = verify_export(export(&db).await.as_bytes(), &keys()).unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::Modified, 20),
        "{report}"
    );
    db.execute_unprepared("UPDATE audit_log SET prev_hash = NULL WHERE chain_seq = 7")
        .await
        .unwrap();
    expect_break(&db, BreakKind::Modified, 7).await;
}

/// Whoever can write the database file can store a value its column cannot hold: SQLite checks
/// no types. Each such row is a break at its position, not an error that leaves every chain
/// unverified; a row whose very position does not read is a break after the last one read.
async fn rows_that_cannot_be_read_are_breaks_and_other_chains_still_verify(t: Arc<TestDb>) {
    if t.backend != Backend::Sqlite {
        // jsonb, MySQL JSON, timestamp and integer columns refuse these values: nothing to test.
        return;
    }
    let db = t.migrated().await;
    let tampering = [
        ("extra", "'not json'", 5),
        ("occurred_at", "'garbage'", 7),
        ("status", "'abc'", 9),
        ("chain_seq", "'x'", 20),
    ];
    for (chain, _) in tampering.iter().enumerate() {
        write(&db, integrity(&format!("c{chain}")), 20).await;
    }
    write(&db, integrity("intact"), 20).await;
    assert!(check(&db).await.is_intact());
    for (chain, (column, value, seq)) in tampering.iter().enumerate() {
        db.execute_unprepared(&format!(
            "UPDATE audit_log SET {column} = {value} WHERE chain_id = 'c{chain}' AND chain_seq = {seq}"
        ))
        .await
        .unwrap();
    }
    let report = check(&db).await;
    let breaks: Vec<_> = report
        .chains
        .iter()
        .map(|c| c.first_break.as_ref().map(|b| (b.kind, b.chain_seq)))
        .collect();
    let modified = |seq| Some((BreakKind::Modified, seq));
    assert_eq!(
        breaks,
        [modified(5), modified(7), modified(9), modified(20), None],
        "{report}"
    );
    assert!(
        report.chains[0]
            .first_break
            .as_ref()
            .unwrap()
            .detail
            .contains("cannot be read"),
        "{report}"
    );
    let intact = &report.chains[4];
    assert_eq!((intact.rows, intact.last_seq), (20, 20), "{report}");
    // A database that cannot be read is still an error, not a verdict.
    db.close_by_ref().await.unwrap();
    let keys = Keyring::new().key("k1", KEY.to_vec());
    let closed = verify(&db, &keys, VerifyOptions::default()).await;
    assert!(
        matches!(closed, Err(tower_audit::Error::Database(_))),
        "{closed:?}"
    );
}

/// Runs `statements`, which store values their columns cannot hold. SQLite keeps them (it checks
/// no types); PostgreSQL and MariaDB refuse them or store them converted to text (`X'6331'` is
/// the text `c1` on MariaDB, a bit string on PostgreSQL). There, verify must still give a
/// verdict, whatever was kept, and `false` says that the values SQLite keeps were not.
async fn stored_where_types_allow(
    t: &TestDb,
    db: &DatabaseConnection,
    statements: &[&str],
) -> bool {
    for statement in statements {
        let stored = db.execute_unprepared(statement).await;
        if t.backend == Backend::Sqlite {
            stored.unwrap();
        }
    }
    if t.backend != Backend::Sqlite {
        check(db).await;
        return false;
    }
    true
}

/// Each chain's name and first break, in the report's order.
fn breaks(report: &VerifyReport) -> Vec<(&str, Option<(BreakKind, i64)>)> {
    report
        .chains
        .iter()
        .map(|c| {
            let found = c.first_break.as_ref().map(|b| (b.kind, b.chain_seq));
            (c.chain_id.as_str(), found)
        })
        .collect()
}

/// A `chain_id` that is not text (a blob, on SQLite) names no chain: the rows and checkpoints
/// that hold one are a break of their own, and every chain is still verified, rather than the
/// whole run failing on a value it cannot read. A number is stored as text there, which is a
/// chain of that name.
async fn chain_ids_that_are_not_text_are_breaks_and_other_chains_still_verify(t: Arc<TestDb>) {
    let db = t.migrated().await;
    for chain in ["c0", "c1", "c2", "intact"] {
        write(&db, integrity(chain), 20).await;
    }
    let tampering = [
        "UPDATE audit_log SET chain_id = X'FF' WHERE chain_id = 'c0' AND chain_seq = 5",
        "UPDATE audit_checkpoint SET chain_id = X'6331' WHERE chain_id = 'c1'",
    ];
    if !stored_where_types_allow(&t, &db, &tampering).await {
        return;
    }
    db.execute_unprepared(
        "UPDATE audit_log SET chain_id = 123 WHERE chain_id = 'c2' AND chain_seq = 7",
    )
    .await
    .unwrap();
    let report = check(&db).await;
    assert_eq!(
        breaks(&report),
        [
            ("123", Some((BreakKind::Deleted, 7))),
            ("c0", Some((BreakKind::Deleted, 6))),
            // Its checkpoint gone, as if deleted (see the README, "What it cannot see").
            ("c1", None),
            ("c2", Some((BreakKind::Deleted, 8))),
            ("intact", None),
            ("x'6331'", Some((BreakKind::BadCheckpoint, 20))),
            ("x'ff'", Some((BreakKind::Modified, 5))),
        ],
        "{report}"
    );
    assert_intact_chain(&report, "intact", 20, 20);
    let keys = Keyring::new().key("k1", KEY.to_vec());
    let only = |chain: &str| VerifyOptions {
        chain_id: Some(chain.into()),
        ..VerifyOptions::default()
    };
    let report = verify(&db, &keys, only("intact")).await.unwrap();
    assert_eq!(breaks(&report), [("intact", None)], "{report}");
    let report = verify(&db, &keys, only("x'ff'")).await.unwrap();
    assert_eq!(
        breaks(&report),
        [("x'ff'", Some((BreakKind::Modified, 5)))],
        "{report}"
    );
}

/// A chain's latest checkpoint or purge tombstone holding a value its column cannot hold is a
/// `BadCheckpoint` of that chain (at position 0 when its own does not read), not an error that
/// leaves every chain unverified.
async fn checkpoints_that_cannot_be_read_are_breaks_and_other_chains_still_verify(t: Arc<TestDb>) {
    let db = t.migrated().await;
    // A chain purged whole: its tombstone is the one tampered with.
    write(&db, integrity("purged"), 20).await;
    purge(&db, chrono::Utc::now(), None).await;
    let tampering = [
        ("chain_seq", "'x'"),
        ("row_hash", "X'FF'"),
        ("signature", "X'FF'"),
        ("created_at", "'garbage'"),
    ];
    for (chain, _) in tampering.iter().enumerate() {
        write(&db, integrity(&format!("k{chain}")), 20).await;
    }
    write(&db, integrity("intact"), 20).await;
    assert!(check(&db).await.is_intact());
    let mut statements: Vec<String> = tampering
        .iter()
        .enumerate()
        .map(|(chain, (column, value))| {
            format!("UPDATE audit_checkpoint SET {column} = {value} WHERE chain_id = 'k{chain}'")
        })
        .collect();
    statements.push(
        "UPDATE audit_checkpoint SET created_at = 'garbage' \
         WHERE chain_id = 'purged' AND kind = 'purge'"
            .into(),
    );
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    if !stored_where_types_allow(&t, &db, &statements).await {
        return;
    }
    let report = check(&db).await;
    let bad = |seq| Some((BreakKind::BadCheckpoint, seq));
    assert_eq!(
        breaks(&report),
        [
            ("intact", None),
            ("k0", bad(0)),
            ("k1", bad(20)),
            ("k2", bad(20)),
            ("k3", bad(20)),
            ("purged", bad(20)),
        ],
        "{report}"
    );
    let detail = |chain: usize| &report.chains[chain].first_break.as_ref().unwrap().detail;
    assert!(
        detail(1).contains("cannot be read nor its position"),
        "{report}"
    );
    assert!(detail(5).contains("purge tombstone"), "{report}");
    assert_intact_chain(&report, "intact", 20, 20);
}

/// A position that does not read among the rows a time range selects is a break of its chain,
/// not an error for the run: the range's bounds are unknown then, so that chain is verified
/// whole, and the row is found where it is (its gap, or the row itself at the chain's end).
async fn a_position_that_cannot_be_read_in_a_time_range_is_a_break(t: Arc<TestDb>) {
    let db = t.migrated().await;
    for chain in ["intact", "r0", "r1"] {
        write(&db, integrity(chain), 20).await;
    }
    let tampering = [
        "UPDATE audit_log SET chain_seq = 'y' WHERE chain_id = 'r0' AND chain_seq = 9",
        "UPDATE audit_log SET chain_seq = 'y' WHERE chain_id = 'r1' AND chain_seq = 20",
    ];
    if !stored_where_types_allow(&t, &db, &tampering).await {
        return;
    }
    let keys = Keyring::new().key("k1", KEY.to_vec());
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    // With an end, without one, and with nothing arrived since (the chain's last row checked).
    for (from, to) in [(since, Some(later)), (since, None), (later, None)] {
        let options = VerifyOptions {
            from: Some(from),
            to,
            ..VerifyOptions::default()
        };
        let report = verify(&db, &keys, options).await.unwrap();
        assert_eq!(
            breaks(&report),
            [
                ("intact", None),
                ("r0", Some((BreakKind::Deleted, 10))),
                ("r1", Some((BreakKind::Modified, 20))),
            ],
            "{from} {to:?}: {report}"
        );
    }
}

/// A time range's span starts at the row before its first position, so rows deleted from the
/// span's start break the link to that row (they were trusted as its start before; the break
/// is reported at the row after the gap). With no row before, the span starts where the chain
/// does. So too for the chain's last row when nothing arrived in the range, and for an export
/// of the range with proof.
async fn rows_deleted_at_the_start_of_a_time_range_are_a_gap(t: Arc<TestDb>) {
    let db = t.migrated().await;
    for chain in ["intact", "mid", "end"] {
        write(&db, integrity(chain), 10).await;
    }
    // Rows' times are their arrivals: every row written so far arrived before this.
    let since = chrono::Utc::now();
    for chain in ["intact", "mid", "end", "start"] {
        write(&db, integrity(chain), 10).await;
    }
    for tampering in [
        "DELETE FROM audit_log WHERE chain_id = 'mid' AND chain_seq IN (11, 12)",
        "DELETE FROM audit_log WHERE chain_id = 'start' AND chain_seq IN (1, 2)",
        "DELETE FROM audit_log WHERE chain_id = 'end' AND chain_seq = 19",
    ] {
        db.execute_unprepared(tampering).await.unwrap();
    }
    let keys = Keyring::new().key("k1", KEY.to_vec());
    let report = |from| {
        let options = VerifyOptions {
            from: Some(from),
            ..VerifyOptions::default()
        };
        verify(&db, &keys, options)
    };
    let in_range = report(since).await.unwrap();
    assert_eq!(
        breaks(&in_range),
        [
            ("end", Some((BreakKind::Deleted, 20))),
            ("intact", None),
            ("mid", Some((BreakKind::Deleted, 13))),
            ("start", Some((BreakKind::Deleted, 3))),
        ],
        "{in_range}"
    );
    // The range exported with proof: the row before it comes along, so the gap shows offline
    // too. Not at a chain's own start ("start"): no row before it is left to export, and the
    // file's first row is trusted.
    let mut out = Vec::new();
    let exported = Export::new(ExportFormat::Ndjson)
        .with_proof(true)
        .page_size(3)
        .to_writer(&db, &AuditFilter::new().since(since), &mut out)
        .await
        .unwrap();
    assert_eq!(exported.rows, 11 + 9 + 10 + 8, "{exported:?}");
    let offline = verify_export(out.as_slice(), &keys).unwrap();
    assert_eq!(
        breaks(&offline),
        [
            ("end", Some((BreakKind::Deleted, 20))),
            ("intact", None),
            ("mid", Some((BreakKind::Deleted, 13))),
            ("start", None),
        ],
        "{offline}"
    );
    // Nothing arrived since: each chain's last row, linked to the one before it.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let at_the_end = report(later).await.unwrap();
    assert_eq!(
        breaks(&at_the_end),
        [
            ("end", Some((BreakKind::Deleted, 20))),
            ("intact", None),
            ("mid", None),
            ("start", None),
        ],
        "{at_the_end}"
    );
}

/// A time range that starts where a purge left a chain: no row is left before the range, and
/// the chain now starts after its tombstone. Rows deleted from there (11 and 12) are a gap in the
/// database, the span checked from the tombstone; the export of the range with proof brings
/// the tombstone too, so they are a gap offline as well. The proof held the tombstone only when
/// the first row in range followed it: the file's first row (13) was trusted as a start and the
/// export verified intact.
async fn rows_deleted_after_a_purge_at_the_start_of_a_time_range_are_a_gap_offline(t: Arc<TestDb>) {
    let db = t.migrated().await;
    for chain in ["intact", "cut"] {
        write(&db, integrity(chain), 10).await;
    }
    let since = chrono::Utc::now();
    for chain in ["intact", "cut"] {
        write(&db, integrity(chain), 10).await;
    }
    purge(&db, since, None).await;
    db.execute_unprepared("DELETE FROM audit_log WHERE chain_id = 'cut' AND chain_seq IN (11, 12)")
        .await
        .unwrap();
    let options = VerifyOptions {
        from: Some(since),
        ..VerifyOptions::default()
    };
    let in_db = verify(&db, &keys(), options).await.unwrap();
    let expected = [("cut", Some((BreakKind::Deleted, 13))), ("intact", None)];
    assert_eq!(breaks(&in_db), expected, "{in_db}");
    let mut out = Vec::new();
    Export::new(ExportFormat::Ndjson)
        .with_proof(true)
        .page_size(3)
        .to_writer(&db, &AuditFilter::new().since(since), &mut out)
        .await
        .unwrap();
    let offline = verify_export(out.as_slice(), &keys()).unwrap();
    assert_eq!(breaks(&offline), expected, "{offline}");
    // The whole table, with no time range: the same.
    let whole = verify_export(export(&db).await.as_bytes(), &keys()).unwrap();
    assert_eq!(breaks(&whole), expected, "{whole}");
}

/// Asserts `chain` is in `report`, intact, with `rows` rows up to `last_seq`.
fn assert_intact_chain(report: &VerifyReport, chain: &str, rows: u64, last_seq: i64) {
    let found = report
        .chains
        .iter()
        .find(|c| c.chain_id == chain)
        .expect(chain);
    assert_eq!(
        (found.rows, found.last_seq, &found.first_break),
        (rows, last_seq, &None),
        "{report}"
    );
}

/// A purge only removes a prefix, so a tombstone at or past a remaining row is forged: here, to
/// account for a dropped tail, in the database and in an export.
async fn a_forged_tombstone_cannot_hide_a_dropped_tail(t: Arc<TestDb>) {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    use tower_audit::entity::audit_checkpoint;
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let text = export(&db).await;
    // The file: rows past 17 cut, and the checkpoint line copied as a tombstone.
    let checkpoint_line = text
        .lines()
        .find(|line| line.contains(r#""kind":"checkpoint""#))
        .unwrap();
    let mut edited: String = text
        .lines()
        .filter(|line| {
            line.starts_with(r#"{"checkpoint":"#)
                || serde_json::from_str::<serde_json::Value>(line).unwrap()["chain_seq"]
                    .as_i64()
                    .is_some_and(|seq| seq <= 17)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    edited.push_str(&checkpoint_line.replace(r#""kind":"checkpoint""#, r#""kind":"purge""#));
    edited.push('\n');
    let report = verify_export(edited.as_bytes(), &keys()).unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::BadCheckpoint, 20),
        "{report}"
    );
    // The database: the same tail dropped, a tombstone inserted where the checkpoint is.
    let checkpoint = audit_checkpoint::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.chain_seq, 20);
    db.execute_unprepared("DELETE FROM audit_log WHERE chain_seq > 17")
        .await
        .unwrap();
    audit_checkpoint::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        chain_id: Set("t".into()),
        chain_seq: Set(20),
        row_hash: Set(checkpoint.row_hash),
        kind: Set("purge".into()),
        created_at: Set(checkpoint.created_at),
        signature: Set(None),
    }
    .insert(&db)
    .await
    .unwrap();
    expect_break(&db, BreakKind::BadCheckpoint, 20).await;
}

/// Whoever holds the HMAC key but not the signing key can write a whole new chain with valid
/// hashes; the signed checkpoint still names the hash of the row the writer saw at its position.
async fn a_chain_rewritten_with_the_hmac_key_fails_its_signed_checkpoint(t: Arc<TestDb>) {
    use sea_orm::{ActiveModelTrait, EntityTrait};
    use tower_audit::entity::audit_checkpoint;
    let db = t.migrated().await;
    let signing = integrity("t").sign_checkpoints([7u8; 32]);
    let keys = keys()
        .checkpoint_key(signing.checkpoint_public_key().unwrap())
        .unwrap();
    write(&db, signing, 10).await;
    let signed = audit_checkpoint::Entity::find().all(&db).await.unwrap();
    // The rewrite: the same chain from genesis, by a writer with the HMAC key only.
    db.execute_unprepared("DELETE FROM audit_log")
        .await
        .unwrap();
    db.execute_unprepared("DELETE FROM audit_checkpoint")
        .await
        .unwrap();
    write(&db, integrity("t"), 10).await;
    db.execute_unprepared("DELETE FROM audit_checkpoint")
        .await
        .unwrap();
    for checkpoint in signed {
        let mut restored = audit_checkpoint::ActiveModel::from(checkpoint);
        restored.id = sea_orm::ActiveValue::NotSet;
        restored.insert(&db).await.unwrap();
    }
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::BadCheckpoint, 10),
        "{report}"
    );
    assert!(found.id.is_some(), "{report}");
}

/// A slow request arrives before a fast one but is chained after it: a time range that holds
/// only one of the two still verifies, in the database and as an export with proof.
async fn time_ranges_cover_rows_chained_out_of_arrival_order(t: Arc<TestDb>) {
    use tokio::sync::Notify;
    let db = t.migrated().await;
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (layer, guard) = AuditLayer::builder(db.clone())
        .integrity(integrity("t"))
        .build()
        .unwrap();
    let slow = {
        let (entered, release) = (entered.clone(), release.clone());
        move || async move {
            entered.notify_one();
            release.notified().await;
            "slow"
        }
    };
    let router = Router::new()
        .route("/slow", post(slow))
        .route("/fast/{i}", post(|| async { "fast" }))
        .layer(layer);
    let send = |path: String| {
        let router = router.clone();
        async move {
            let request = http::Request::post(path)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
    };
    for i in 1..=3 {
        send(format!("/fast/{i}")).await;
    }
    let slow_request = tokio::spawn(send("/slow".into()));
    entered.notified().await;
    // Arrival times are stored in microseconds: the fast request must arrive in a later one,
    // by more than the few microseconds within which each batch reads its clocks together.
    let arrived = std::time::Instant::now();
    while arrived.elapsed() < Duration::from_micros(100) {
        tokio::task::yield_now().await;
    }
    send("/fast/4".into()).await;
    wait_stats(&guard, "the fast row was not written", |s| s.written == 4).await;
    release.notify_one();
    slow_request.await.unwrap();
    for i in 5..=7 {
        send(format!("/fast/{i}")).await;
    }
    drop(router);
    guard.shutdown(Duration::from_secs(30)).await.unwrap();

    let rows = chain_rows(&db, "t").await;
    let at = |path: &str| rows.iter().find(|r| r.path == path).unwrap();
    let (slow, fast) = (at("/slow"), at("/fast/4"));
    assert_eq!((fast.chain_seq, slow.chain_seq), (Some(4), Some(5)));
    assert!(slow.occurred_at < fast.occurred_at);
    let range = |from, to| VerifyOptions {
        from,
        to,
        ..VerifyOptions::default()
    };
    let verified = |options| async { verify(&db, &keys(), options).await.unwrap() };
    // From the fast request on: positions 4 to the end, the slow row at 5 included, and the row
    // at 3 the span starts from.
    let report = verified(range(Some(fast.occurred_at), None)).await;
    assert_intact(&report, "t", 6, 8);
    // Before the fast request: positions 1 to the slow row at 5, the fast row at 4 included.
    let report = verified(range(None, Some(fast.occurred_at))).await;
    assert_intact(&report, "t", 5, 5);
    let report = verified(range(
        Some(fast.occurred_at),
        Some(at("/fast/6").occurred_at),
    ))
    .await;
    assert_intact(&report, "t", 4, 6);
    // Nothing arrived since: the chain's last row (and the row before it) is still judged
    // against the checkpoint.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let report = verified(range(Some(later), None)).await;
    assert_intact(&report, "t", 2, 8);

    // The same ranges as exports with proof: the rows chained among them come along, and from
    // the fast request on, the row at 3 before them.
    for (filter, rows) in [
        (AuditFilter::new().since(fast.occurred_at), 6),
        (AuditFilter::new().until(fast.occurred_at), 5),
    ] {
        let mut out = Vec::new();
        let exported = Export::new(ExportFormat::Ndjson)
            .with_proof(true)
            .page_size(2)
            .to_writer(&db, &filter, &mut out)
            .await
            .unwrap();
        assert_eq!(exported.rows, rows, "{filter:?}");
        let report = verify_export(out.as_slice(), &keys()).unwrap();
        assert!(report.is_intact(), "{filter:?}: {report}");
        assert_eq!(report.chains[0].rows, rows, "{filter:?}: {report}");
    }
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
    // Offline too: the proof's checkpoint carries its signature.
    let text = export(&db).await;
    let report = verify_export(text.as_bytes(), &keys).unwrap();
    assert!(report.is_intact(), "{report}");
    let moved = text.replace(
        r#""chain_seq":10,"created_at""#,
        r#""chain_seq":9,"created_at""#,
    );
    assert_ne!(moved, text);
    let report = verify_export(moved.as_bytes(), &keys).unwrap();
    let found = report.chains[0].first_break.clone().unwrap();
    assert_eq!(found.kind, BreakKind::BadCheckpoint, "{report}");
    db.execute_unprepared("UPDATE audit_checkpoint SET chain_seq = 11")
        .await
        .unwrap();
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    let found = report.chains[0].first_break.clone().unwrap();
    assert_eq!(found.kind, BreakKind::BadCheckpoint, "{report}");
}

/// A purge run again with nothing new to delete (a daily cron) wrote a second tombstone at the
/// same place each time (found by a probe). It now writes none, signed or not, unless the
/// tombstone there is not signed by the key it signs with: after the checkpoint key is rotated,
/// running the purge again signs the place anew, and `verify` with the new public key reads
/// that one, the later of the two.
async fn a_purge_run_again_adds_no_tombstone_unless_signing_with_a_rotated_key(t: Arc<TestDb>) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use tower_audit::entity::audit_checkpoint;
    const OLD: [u8; 32] = [7u8; 32];
    const NEW: [u8; 32] = [9u8; 32];
    let tombstones = |db: DatabaseConnection| async move {
        audit_checkpoint::Entity::find()
            .filter(audit_checkpoint::Column::Kind.eq("purge"))
            .count(&db)
            .await
            .unwrap()
    };
    let db = t.migrated().await;
    write(&db, integrity("t").sign_checkpoints(OLD), 20).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[5].occurred_at;
    let signed = |secret| {
        PurgeOptions::new()
            .allow_recent(true)
            .sign_tombstones(secret)
    };
    let first = purge_before(&db, cutoff, signed(OLD)).await.unwrap();
    assert!(first.deleted > 0);
    assert_eq!(tombstones(db.clone()).await, 1);
    // Again, signed and not: nothing deleted, no second tombstone.
    let again = purge_before(&db, cutoff, signed(OLD)).await.unwrap();
    assert_eq!(again.deleted, 0);
    purge_before(&db, cutoff, PurgeOptions::new().allow_recent(true))
        .await
        .unwrap();
    assert_eq!(tombstones(db.clone()).await, 1);
    let old_keys = keys()
        .checkpoint_key(
            integrity("t")
                .sign_checkpoints(OLD)
                .checkpoint_public_key()
                .unwrap(),
        )
        .unwrap();
    let report = verify(&db, &old_keys, VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");

    // The checkpoint key rotated: the restarted writer signs with the new one, and the old
    // tombstone does not verify with the new public key.
    let rotated = integrity("t").sign_checkpoints(NEW);
    let new_keys = keys()
        .checkpoint_key(rotated.checkpoint_public_key().unwrap())
        .unwrap();
    write(&db, rotated, 1).await;
    let report = verify(&db, &new_keys, VerifyOptions::default())
        .await
        .unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(found.kind, BreakKind::BadCheckpoint, "{report}");
    // The purge run again with the new key signs the same place anew, once.
    purge_before(&db, cutoff, signed(NEW)).await.unwrap();
    purge_before(&db, cutoff, signed(NEW)).await.unwrap();
    assert_eq!(tombstones(db.clone()).await, 2);
    let report = verify(&db, &new_keys, VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");
    let report = verify_export(export(&db).await.as_bytes(), &new_keys).unwrap();
    assert!(report.is_intact(), "{report}");
}

/// Without signed tombstones, whoever can write to the database can delete a chain's first
/// rows, or all of them, and add a tombstone that passes the deletion off as a purge. With a
/// checkpoint public key, only a tombstone signed with the checkpoint key accounts for rows, in
/// the database and in an export; a checkpoint's signature copied onto a tombstone does not.
async fn with_a_public_key_only_signed_tombstones_account_for_deleted_rows(t: Arc<TestDb>) {
    use sea_orm::{
        ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    };
    use tower_audit::entity::audit_checkpoint;
    const SECRET: [u8; 32] = [7u8; 32];
    let db = t.migrated().await;
    let signing = integrity("t").sign_checkpoints(SECRET);
    let keys = keys()
        .checkpoint_key(signing.checkpoint_public_key().unwrap())
        .unwrap();
    write(&db, signing, 20).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[5].occurred_at;
    let first_kept = first_kept_seq(&rows, cutoff);
    assert!(first_kept > 1, "all rows share one timestamp");

    // A purge that signs its tombstone verifies, in the database and offline.
    let options = PurgeOptions::new()
        .allow_recent(true)
        .sign_tombstones(SECRET);
    purge_before(&db, cutoff, options).await.unwrap();
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    assert_intact(&report, "t", 21 - first_kept as u64, 20);
    let report = verify_export(export(&db).await.as_bytes(), &keys).unwrap();
    assert!(report.is_intact(), "{report}");

    // An insider deletes five more rows and adds a tombstone of their own, unsigned.
    let last_deleted = first_kept + 4;
    let hash_there = rows[last_deleted as usize - 1].row_hash.clone().unwrap();
    db.execute_unprepared(&format!(
        "DELETE FROM audit_log WHERE chain_seq <= {last_deleted}"
    ))
    .await
    .unwrap();
    let forged = audit_checkpoint::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        chain_id: Set("t".into()),
        chain_seq: Set(last_deleted),
        row_hash: Set(hash_there),
        kind: Set("purge".into()),
        created_at: Set(chrono::Utc::now()),
        signature: Set(None),
    }
    .insert(&db)
    .await
    .unwrap();
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::BadCheckpoint, last_deleted),
        "{report}"
    );
    assert!(found.detail.contains("purge tombstone"), "{report}");
    let report = verify_export(export(&db).await.as_bytes(), &keys).unwrap();
    let found = report.chains[0]
        .first_break
        .clone()
        .expect("a break offline");
    assert_eq!(found.kind, BreakKind::BadCheckpoint, "{report}");
    // Without the public key, or when told to accept them, unsigned tombstones still pass.
    assert!(check(&db).await.is_intact());
    let lenient = keys.clone().accept_unsigned_purges();
    let report = verify(&db, &lenient, VerifyOptions::default())
        .await
        .unwrap();
    assert!(report.is_intact(), "{report}");

    // The whole chain deleted, and the signed checkpoint copied as a tombstone at its position.
    audit_checkpoint::Entity::delete_by_id(forged.id)
        .exec(&db)
        .await
        .unwrap();
    let checkpoint = audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::Kind.eq("checkpoint"))
        .order_by_desc(audit_checkpoint::Column::ChainSeq)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint.chain_seq, 20);
    assert!(checkpoint.signature.is_some());
    db.execute_unprepared("DELETE FROM audit_log WHERE chain_id = 't'")
        .await
        .unwrap();
    audit_checkpoint::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        chain_id: Set(checkpoint.chain_id),
        chain_seq: Set(checkpoint.chain_seq),
        row_hash: Set(checkpoint.row_hash),
        kind: Set("purge".into()),
        created_at: Set(checkpoint.created_at),
        signature: Set(checkpoint.signature),
    }
    .insert(&db)
    .await
    .unwrap();
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::BadCheckpoint, 20),
        "{report}"
    );
}

/// The rows of chain `chain` still in the table, by position.
async fn chain_rows(
    db: &DatabaseConnection,
    chain: &str,
) -> Vec<tower_audit::entity::audit_log::Model> {
    let mut rows: Vec<_> = support::rows(db)
        .await
        .into_iter()
        .filter(|r| r.chain_id.as_deref() == Some(chain))
        .collect();
    rows.sort_by_key(|r| r.chain_seq);
    rows
}

/// The chain position of the first of `rows` (in chain order) that occurred at or after
/// `cutoff`: timestamps may repeat, and a purge takes every row before it.
fn first_kept_seq(
    rows: &[tower_audit::entity::audit_log::Model],
    cutoff: chrono::DateTime<chrono::Utc>,
) -> i64 {
    rows.iter()
        .find(|r| r.occurred_at >= cutoff)
        .and_then(|r| r.chain_seq)
        .unwrap()
}

/// Purges what occurred before `cutoff`, however recent.
async fn purge(
    db: &DatabaseConnection,
    cutoff: chrono::DateTime<chrono::Utc>,
    hold: Option<AuditFilter>,
) {
    let mut options = PurgeOptions::new().allow_recent(true).batch_size(3);
    if let Some(hold) = hold {
        options = options.legal_hold(hold);
    }
    purge_before(db, cutoff, options).await.unwrap();
}

fn assert_intact(report: &VerifyReport, chain: &str, rows: u64, last_seq: i64) {
    assert!(report.is_intact(), "{report}");
    let found = report
        .chains
        .iter()
        .find(|c| c.chain_id == chain)
        .expect(chain);
    assert_eq!((found.rows, found.last_seq), (rows, last_seq), "{report}");
}

async fn purged_prefix_and_a_restart_verify_clean(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let rows = chain_rows(&db, "t").await;
    // Timestamps may repeat: what goes is every row before the first at or after the cutoff.
    let cutoff = rows[9].occurred_at;
    let first_kept = first_kept_seq(&rows, cutoff);
    assert!(first_kept > 1, "all rows share one timestamp");
    purge(&db, cutoff, None).await;
    let kept = chain_rows(&db, "t").await;
    assert_eq!(kept.first().and_then(|r| r.chain_seq), Some(first_kept));
    assert_intact(&check(&db).await, "t", 21 - first_kept as u64, 20);
    // A restarted writer continues after the purge.
    write(&db, integrity("t"), 5).await;
    assert_intact(&check(&db).await, "t", 26 - first_kept as u64, 25);
}

async fn purging_a_whole_chain_and_a_restart_verify_clean(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 10).await;
    purge(&db, chrono::Utc::now() + chrono::Duration::hours(1), None).await;
    assert!(chain_rows(&db, "t").await.is_empty());
    // The tombstone accounts for the rows the last checkpoint vouched for.
    assert!(check(&db).await.is_intact(), "{}", check(&db).await);
    write(&db, integrity("t"), 5).await;
    let kept = chain_rows(&db, "t").await;
    assert_eq!(kept.first().and_then(|r| r.chain_seq), Some(11));
    assert_intact(&check(&db).await, "t", 5, 15);
}

async fn legal_hold_stops_a_chain_purge_and_it_verifies(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[14].occurred_at;
    // `/orders/5` is the sixth row: it stays, and so does every row after it.
    let held = rows
        .iter()
        .find(|r| r.path == "/orders/5")
        .unwrap()
        .chain_seq
        .unwrap();
    assert_eq!(held, 6);
    let first_kept = first_kept_seq(&rows, cutoff).min(held);
    purge(
        &db,
        cutoff,
        Some(AuditFilter::new().path_prefix("/orders/5")),
    )
    .await;
    let kept = chain_rows(&db, "t").await;
    let seqs: Vec<i64> = kept.iter().filter_map(|r| r.chain_seq).collect();
    assert_eq!(seqs, (first_kept..=20).collect::<Vec<_>>());
    assert_intact(&check(&db).await, "t", 21 - first_kept as u64, 20);
}

/// Makes `event` (`INSERT` or `DELETE`) on `table` fail for the rows `when` (a condition on
/// `NEW` or `OLD`) holds, as a lost connection or a full disk would; returns the statement that
/// ends it.
async fn failing(
    t: &TestDb,
    db: &DatabaseConnection,
    table: &str,
    event: &str,
    when: &str,
) -> String {
    let statements = match t.backend {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER zz_fail BEFORE {event} ON {table} WHEN {when} \
             BEGIN SELECT RAISE(FAIL, 'simulated failure'); END"
        )],
        Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION zz_fail() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'simulated failure'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER zz_fail BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) \
                 EXECUTE FUNCTION zz_fail()"
            ),
        ],
        Backend::MySql => vec![format!(
            "CREATE TRIGGER zz_fail BEFORE {event} ON {table} FOR EACH ROW BEGIN IF {when} THEN \
             SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'simulated failure'; END IF; END"
        )],
    };
    for statement in statements {
        db.execute_unprepared(&statement).await.unwrap();
    }
    match t.backend {
        Backend::Postgres => format!("DROP TRIGGER zz_fail ON {table}"),
        _ => "DROP TRIGGER zz_fail".to_owned(),
    }
}

/// A purge cut short is completed by running it again, and the chain verifies. Its tombstone
/// is written before its deletes: when writing it failed, the rows were gone already, and
/// the second run could not write it any more (the last purged row, whose hash it holds, was
/// gone), so `verify` reported the purged rows deleted for good. Cut short in its deletes,
/// the chain fails `verify` (the tombstone is ahead of rows still there) until the second run.
async fn a_purge_cut_short_completes_when_run_again(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 12).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[6].occurred_at;
    let first_kept = first_kept_seq(&rows, cutoff);
    assert!(first_kept > 3, "the rows share too few timestamps");
    let options = || PurgeOptions::new().allow_recent(true).batch_size(2);

    // The tombstone cannot be written.
    let end = failing(&t, &db, "audit_checkpoint", "INSERT", "NEW.kind = 'purge'").await;
    assert!(purge_before(&db, cutoff, options()).await.is_err());
    db.execute_unprepared(&end).await.unwrap();
    purge_before(&db, cutoff, options()).await.unwrap();
    assert_intact(&check(&db).await, "t", 13 - first_kept as u64, 12);

    // A delete fails (after the first batch went, unless the rows share timestamps).
    write(&db, integrity("t"), 12).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[6].occurred_at;
    let first_kept = first_kept_seq(&rows, cutoff);
    let third = rows[2].chain_seq.unwrap();
    let end = failing(
        &t,
        &db,
        "audit_log",
        "DELETE",
        &format!("OLD.chain_seq = {third}"),
    )
    .await;
    assert!(purge_before(&db, cutoff, options()).await.is_err());
    expect_break(&db, BreakKind::BadCheckpoint, first_kept - 1).await;
    db.execute_unprepared(&end).await.unwrap();
    purge_before(&db, cutoff, options()).await.unwrap();
    assert_intact(&check(&db).await, "t", 25 - first_kept as u64, 24);

    // What an earlier version's purge left when cut short after its deletes: rows gone and no
    // tombstone. The purge run again writes it from the first kept row's `prev_hash`.
    let rows = chain_rows(&db, "t").await;
    let gone = [rows[0].chain_seq.unwrap(), rows[1].chain_seq.unwrap()];
    db.execute_unprepared(&format!(
        "DELETE FROM audit_log WHERE chain_seq IN ({}, {})",
        gone[0], gone[1]
    ))
    .await
    .unwrap();
    expect_break(&db, BreakKind::Deleted, rows[2].chain_seq.unwrap()).await;
    purge_before(&db, rows[2].occurred_at, options())
        .await
        .unwrap();
    assert_intact(
        &check(&db).await,
        "t",
        25 - rows[2].chain_seq.unwrap() as u64,
        24,
    );
}

fn keys() -> Keyring {
    Keyring::new().key("k1", KEY.to_vec())
}

/// The NDJSON export, with proof, of the whole table.
async fn export(db: &DatabaseConnection) -> String {
    let mut out = Vec::new();
    Export::new(ExportFormat::Ndjson)
        .with_proof(true)
        .page_size(7)
        .to_writer(db, &AuditFilter::new(), &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// An export with proof while a purge ran wrote a proof that did not verify (a probe's
/// finding): the purge deleted rows between its pages, and the file had a hole. Read in one
/// `store::snapshot` (as `tower-audit export --with-proof` reads), the export is the table as
/// its first read found it, and verifies. Here the purge runs when the first page is written.
async fn an_export_with_proof_in_a_snapshot_verifies_whatever_a_purge_does_meanwhile(
    t: Arc<TestDb>,
) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[12].occurred_at;
    assert!(
        first_kept_seq(&rows, cutoff) > 8,
        "all rows share one timestamp"
    );
    // A connection of its own: on SQLite the snapshot holds the pool's one connection.
    let purging = t.connect().await;
    let snapshot = tower_audit::store::snapshot(&db).await.unwrap();
    let mut out = PurgeOnFirstWrite {
        purge: Some(Box::pin(async move { purge(&purging, cutoff, None).await })),
        bytes: Vec::new(),
    };
    Export::new(ExportFormat::Ndjson)
        .with_proof(true)
        .page_size(7)
        .to_async_writer(&snapshot, &AuditFilter::new(), &mut out)
        .await
        .unwrap();
    snapshot.rollback().await.unwrap();
    assert!(out.purge.is_none(), "the purge ran");
    let text = String::from_utf8(out.bytes).unwrap();
    let exported = text
        .lines()
        .filter(|l| !l.starts_with("{\"checkpoint\""))
        .count();
    assert_eq!(exported, 20, "{text}");
    let report = verify_export(text.as_bytes(), &keys()).unwrap();
    assert_intact(&report, "t", 20, 20);
    // The purge did run: the table verifies from its tombstone.
    let report = check(&db).await;
    assert!(report.is_intact(), "{report}");
    assert!(report.chains[0].rows < 20, "{report}");
}

/// Collects what is written; runs `purge` to its end before the first write.
struct PurgeOnFirstWrite {
    purge: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    bytes: Vec<u8>,
}

impl tokio::io::AsyncWrite for PurgeOnFirstWrite {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some(purge) = self.purge.as_mut() {
            std::task::ready!(purge.as_mut().poll(cx));
            self.purge = None;
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

async fn export_with_proof_verifies_offline(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    write(&db, integrity("u"), 8).await;
    let rows = chain_rows(&db, "t").await;
    let cutoff = rows[5].occurred_at;
    let first_kept = first_kept_seq(&rows, cutoff);
    purge(&db, cutoff, None).await;
    let text = export(&db).await;
    // Rows, the purge's own row, then the proof: a tombstone and a checkpoint per chain.
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with(r#"{"checkpoint":"#),
        "{text}"
    );
    assert!(text.contains(r#""kind":"purge""#), "{text}");
    let report = verify_export(text.as_bytes(), &keys()).unwrap();
    assert_intact(&report, "t", 21 - first_kept as u64, 20);
    assert_intact(&report, "u", 8, 8);
    assert_eq!(report.chains[0].checkpoint_seq, Some(20));
    // The whole table: each chain starts at its first position, or after its tombstone.
    let whole = verify_export_from_start(text.as_bytes(), &keys(), &[]).unwrap();
    assert_intact(&whole, "t", 21 - first_kept as u64, 20);
    assert_intact(&whole, "u", 8, 8);
    // The first row after the tombstone, cut from the file.
    let cut: String = text
        .lines()
        .filter(|line| !line.contains(&format!(r#""chain_id":"t","chain_seq":{first_kept},"#)))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(cut.lines().count() + 1, text.lines().count());
    let report = verify_export(cut.as_bytes(), &keys()).unwrap();
    let found = report.chains[0].first_break.clone().unwrap();
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::Deleted, first_kept + 1),
        "{report}"
    );
    // An unknown key is a break, not an error.
    let report = verify_export(text.as_bytes(), &Keyring::new().key("k0", KEY.to_vec())).unwrap();
    let found = report.chains[0].first_break.clone().unwrap();
    assert_eq!(found.kind, BreakKind::UnknownKey, "{report}");
}

/// Offline as in the database, an anchor kept elsewhere shows what the export's own checkpoint
/// lines cannot: a tail cut from the file together with them, a chain cut whole, another row at
/// its position. Each verifies intact without the anchor; an anchor applies to its chain only.
async fn anchors_check_an_export_offline_as_they_do_the_database(t: Arc<TestDb>) {
    use tower_audit::integrity::{Anchor, verify_export_with_anchors};
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    write(&db, integrity("u"), 8).await;
    let anchor = check(&db).await.chains[0].anchor().expect("an anchor");
    assert_eq!((anchor.chain_id.as_str(), anchor.chain_seq), ("t", 20));
    let text = export(&db).await;
    // The rows of `t` past 17 cut from the file, and every checkpoint line with them.
    let cut: String = text
        .lines()
        .filter(|line| {
            if line.starts_with(r#"{"checkpoint":"#) {
                return false;
            }
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["chain_id"] != "t" || row["chain_seq"].as_i64().unwrap() <= 17
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert_intact(
        &verify_export(cut.as_bytes(), &keys()).unwrap(),
        "t",
        17,
        17,
    );
    let rows = chain_rows(&db, "t").await;
    let at = |seq: i64, row: usize| Anchor {
        chain_seq: seq,
        row_hash: rows[row].row_hash.clone().unwrap(),
        ..anchor.clone()
    };
    let gone = Anchor {
        chain_id: "gone".into(),
        ..anchor.clone()
    };
    let offline = |text: &str, anchors: &[Anchor]| {
        let report = verify_export_with_anchors(text.as_bytes(), &keys(), anchors).unwrap();
        let found = report.chains.iter().map(|c| {
            let found = c.first_break.as_ref().map(|b| (b.kind, b.chain_seq));
            (c.chain_id.clone(), found)
        });
        found.collect::<Vec<_>>()
    };
    let kept = std::slice::from_ref(&anchor);
    let intact = |chain: &str| (chain.to_owned(), None);
    let broken = |chain: &str, kind, seq| (chain.to_owned(), Some((kind, seq)));
    // One comparison, so that a failure shows every verdict.
    assert_eq!(
        [
            offline(&text, kept),
            offline(&cut, &[]),
            offline(&cut, kept),
            // An anchor on a row still in the file holds.
            offline(&cut, &[at(17, 16)]),
            // Row 19's hash at position 20: another row holds the anchor's position.
            offline(&text, &[at(20, 18)]),
            // A chain with no row or checkpoint line in the file.
            offline(&text, &[gone]),
        ],
        [
            vec![intact("t"), intact("u")],
            vec![intact("t"), intact("u")],
            vec![broken("t", BreakKind::TruncatedTail, 18), intact("u")],
            vec![intact("t"), intact("u")],
            vec![broken("t", BreakKind::BadCheckpoint, 20), intact("u")],
            vec![
                broken("gone", BreakKind::TruncatedTail, 1),
                intact("t"),
                intact("u"),
            ],
        ]
    );
}

/// The export of chain `t` with `edit` applied to the row lines; the verdict on `t`.
fn verdict(
    text: &str,
    edit: impl Fn(serde_json::Value) -> Option<serde_json::Value>,
) -> (BreakKind, i64) {
    let edited: String = text
        .lines()
        .filter_map(|line| {
            if line.starts_with(r#"{"checkpoint":"#) {
                return Some(format!("{line}\n"));
            }
            edit(serde_json::from_str(line).unwrap()).map(|row| format!("{row}\n"))
        })
        .collect();
    let report = verify_export(edited.as_bytes(), &keys()).unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    (found.kind, found.chain_seq)
}

async fn tampered_export_lines_are_reported(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 20).await;
    let text = export(&db).await;
    assert!(verify_export(text.as_bytes(), &keys()).unwrap().is_intact());
    let at = |row: &serde_json::Value, seq: i64| row["chain_seq"] == seq;
    let modified = verdict(&text, |mut row| {
        if at(&row, 7) {
            row["status"] = 200.into();
        }
        Some(row)
    });
    assert_eq!(modified, (BreakKind::Modified, 7));
    let deleted = verdict(&text, |row| (!at(&row, 12)).then_some(row));
    assert_eq!(deleted, (BreakKind::Deleted, 13));
    let truncated = verdict(&text, |row| (!at(&row, 20)).then_some(row));
    assert_eq!(truncated, (BreakKind::TruncatedTail, 20));
    // A line edited to the same chain position of a row's neighbour.
    let reordered = verdict(&text, |mut row| {
        if at(&row, 8) {
            row["chain_seq"] = 9.into();
        } else if at(&row, 9) {
            row["chain_seq"] = 8.into();
        }
        Some(row)
    });
    assert_eq!(reordered, (BreakKind::Reordered, 8));
    // The first lines cut: the start of a range to `verify_export`, a gap in whole chains.
    let cut: String = text
        .lines()
        .filter(|line| !(1..=3).any(|seq| line.contains(&format!(r#""chain_seq":{seq},"#))))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(cut.lines().count() + 3, text.lines().count());
    assert!(verify_export(cut.as_bytes(), &keys()).unwrap().is_intact());
    assert!(
        verify_export_from_start(text.as_bytes(), &keys(), &[])
            .unwrap()
            .is_intact()
    );
    let report = verify_export_from_start(cut.as_bytes(), &keys(), &[]).unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!(
        (found.kind, found.chain_seq),
        (BreakKind::Deleted, 4),
        "{report}"
    );
}

/// Found by a probe: the hash covers a JSON column as serde_json reads it, which keeps the last
/// of two equal keys and reads a number to the nearest f64, so text rewritten to read otherwise
/// in SQL (`JSON_EXTRACT` takes the first key on SQLite and MariaDB; `jsonb` keeps every digit)
/// verified clean, in the database and in an export.
async fn json_that_sql_reads_otherwise_than_its_hash_is_a_modified_row(t: Arc<TestDb>) {
    let db = t.migrated().await;
    write(&db, integrity("t"), 3).await;
    let original = chain_rows(&db, "t").await[1]
        .extra
        .clone()
        .unwrap()
        .to_string();
    assert!(
        original.starts_with(r#"{"detail":{"a":[1.5,true,null,-0.25,"#),
        "{original}"
    );
    let rewrite = |text: &str| {
        let sql = format!(
            "UPDATE audit_log SET extra = '{}' WHERE chain_seq = 2",
            text.replace('\'', "''")
        );
        let db = db.clone();
        async move { db.execute_unprepared(&sql).await }
    };
    // The first of two equal keys, which SQL reads, says otherwise than the last.
    rewrite(&original.replace(r#"{"detail":{"#, r#"{"detail":{"b":99,"#))
        .await
        .unwrap();
    let report = check(&db).await;
    if t.backend == Backend::Postgres {
        // `jsonb` keeps the last: SQL reads what the hash covers.
        assert!(report.is_intact(), "{report}");
    } else {
        let found = report.chains[0].first_break.clone().expect("a break");
        assert_eq!((found.kind, found.chain_seq), (BreakKind::Modified, 2));
        assert!(found.detail.contains(r#""b" appears twice"#), "{report}");
    }
    // A number past an f64's digits.
    rewrite(&original.replace("-0.25,", "-0.2500000000000000000001,"))
        .await
        .unwrap();
    let report = check(&db).await;
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!((found.kind, found.chain_seq), (BreakKind::Modified, 2));
    assert!(
        found.detail.contains("-0.2500000000000000000001"),
        "{report}"
    );

    // Offline: the same key twice in an exported row.
    rewrite(&original).await.unwrap();
    let text = export(&db).await;
    assert!(verify_export(text.as_bytes(), &keys()).unwrap().is_intact());
    let twice = text.replacen(r#""extra":{"detail":{"#, r#""extra":{"detail":{"b":99,"#, 1);
    assert_ne!(twice, text);
    let report = verify_export(twice.as_bytes(), &keys()).unwrap();
    let found = report.chains[0].first_break.clone().expect("a break");
    assert_eq!((found.kind, found.chain_seq), (BreakKind::Modified, 1));
    assert!(found.detail.contains(r#""b" appears twice"#), "{report}");
}

/// Found by a probe, on MariaDB: its tables compared text without case or trailing spaces, so
/// writers given `api`, `API` and `api ` continued one chain (two at once collided on its
/// positions and lost rows), and a signed checkpoint relabelled `PURGE` was taken for a signed
/// tombstone, hiding the rows deleted before it.
async fn chain_ids_and_checkpoint_kinds_are_told_apart_by_their_bytes(t: Arc<TestDb>) {
    const SECRET: [u8; 32] = [7u8; 32];
    let db = t.migrated().await;
    let signed = |chain: &str| integrity(chain).sign_checkpoints(SECRET);
    let keys = keys()
        .checkpoint_key(signed("s").checkpoint_public_key().unwrap())
        .unwrap();
    write(&db, signed("api"), 3).await;
    write(&db, signed("API"), 2).await;
    write(&db, signed("api "), 2).await;
    // Two at once: `write` asserts that each wrote every row.
    tokio::join!(
        write(&db, signed("Api"), 5),
        write(&db, signed("api\u{301}"), 5)
    );
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    assert_eq!(report.chains.len(), 5, "{report}");
    for (chain, rows) in [
        ("api", 3),
        ("API", 2),
        ("api ", 2),
        ("Api", 5),
        ("api\u{301}", 5),
    ] {
        assert_intact(&report, chain, rows, rows as i64);
    }

    // A signed checkpoint relabelled as a tombstone, after the rows up to it are deleted.
    write(&db, signed("s"), 10).await;
    write(&db, signed("s"), 10).await;
    let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
    assert_intact(&report, "s", 20, 20);
    db.execute_unprepared("DELETE FROM audit_log WHERE chain_id = 's' AND chain_seq <= 10")
        .await
        .unwrap();
    for label in ["PURGE", "purge "] {
        db.execute_unprepared(&format!(
            "UPDATE audit_checkpoint SET kind = '{label}' WHERE chain_id = 's' AND chain_seq = 10"
        ))
        .await
        .unwrap();
        let report = verify(&db, &keys, VerifyOptions::default()).await.unwrap();
        let found = report
            .chains
            .iter()
            .find(|c| c.chain_id == "s")
            .and_then(|c| c.first_break.clone())
            .expect("a break");
        assert_eq!(
            (found.kind, found.chain_seq),
            (BreakKind::Deleted, 11),
            "{report}"
        );
        let report = verify_export(export(&db).await.as_bytes(), &keys).unwrap();
        assert!(
            report.is_intact(),
            "a range's start is trusted offline: {report}"
        );
        let report = verify_export_from_start(export(&db).await.as_bytes(), &keys, &[]).unwrap();
        assert!(!report.is_intact(), "{report}");
    }
}

/// Found by a probe: two writers given one chain id (replicas started with one configuration)
/// sealed rows at the same places; the unique index refused the second writer's, which were
/// lost, every one, with no `last_error`. A writer whose places were taken now seals its rows
/// again after the other's: nothing is lost, and the chain both extend verifies.
async fn two_writers_given_one_chain_id_lose_nothing_and_verify(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let start = || {
        AuditLayer::builder(db.clone())
            .integrity(integrity("x"))
            .batch_size(7)
            .build()
            .unwrap()
    };
    let (a, a_guard) = start();
    let (b, b_guard) = start();
    // Each reads the chain's head at its first batch and keeps it: a from nothing, b after
    // a's five rows. Then a seals from its head, at the places b took, and b from its own,
    // at the places a then took.
    let mut routers = Vec::new();
    for (layer, guard, written) in [
        (&a, &a_guard, 5),
        (&b, &b_guard, 5),
        (&a, &a_guard, 10),
        (&b, &b_guard, 10),
    ] {
        routers.push(serve(layer.clone(), 5).await);
        wait_stats(guard, "written", |s| s.written == written).await;
    }
    drop(routers);
    drop((a, b));
    let a_report = a_guard.shutdown(Duration::from_secs(30)).await.unwrap();
    let b_report = b_guard.shutdown(Duration::from_secs(30)).await.unwrap();
    for report in [&a_report, &b_report] {
        assert_eq!((report.written, report.lost), (10, 0), "{report:?}");
        assert!(
            report
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("another writer appends")),
            "{report:?}"
        );
    }
    let report = check(&db).await;
    assert_intact(&report, "x", 20, 20);
    assert_eq!(support::rows(&db).await.len(), 20);
}

/// Serves `n` POSTs through `layer` and returns the layer's router, for the caller to drop.
async fn serve(layer: AuditLayer, n: usize) -> Router {
    let router = Router::new()
        .route(
            "/orders/{id}",
            post(|_body: axum::body::Bytes| async { (StatusCode::CREATED, "created") }),
        )
        .layer(layer);
    for i in 0..n {
        let request = http::Request::post(format!("/orders/{i}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(format!(r#"{{"item":{i}}}"#)))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.into_body().collect().await.unwrap();
    }
    router
}

/// The final checkpoint goes out on a connection that no longer answers (a held lock on
/// SQLite): the shutdown still reports by its deadline, with every row written.
async fn a_stalled_database_cannot_hold_up_the_final_checkpoint(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (mut outage, url) = Outage::new(&t).await;
    let (layer, guard) = AuditLayer::builder(stallable_db(&t, &url).await)
        .integrity(integrity("stall"))
        .flush_interval(Duration::from_millis(20))
        .insert_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let router = serve(layer, 5).await;
    wait_stats(&guard, "the rows were not written", |s| s.written == 5).await;
    // The chain has moved since its last checkpoint (none yet): the shutdown stores one.
    outage.set(Link::Stall).await;
    drop(router);
    let report = guard
        .shutdown(Duration::from_secs(3))
        .await
        .expect("the shutdown's report, by its deadline");
    assert_eq!((report.written, report.lost), (5, 0), "{report:?}");
    outage.set(Link::Pass).await;
    assert_intact(&check(&db).await, "stall", 5, 5);
}

/// A new writer's first batch reads the chain's head on a connection that no longer answers (on
/// SQLite, where readers are not blocked, the insert waits for the held lock instead): the
/// writer gives up on the call, journals the batch, and replays it, chained, once the database
/// is back.
async fn a_stalled_database_cannot_hold_up_the_chains_first_read(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut outage, url) = Outage::new(&t).await;
    let writer_db = stallable_db(&t, &url).await;
    // A connection in the pool, then the stall: the chain's first read goes out on it.
    writer_db.execute_unprepared("SELECT 1").await.unwrap();
    idle_connection(&writer_db).await;
    outage.set(Link::Stall).await;
    let (layer, guard) = AuditLayer::builder(writer_db)
        .integrity(integrity("stall"))
        .journal(dir.path().join("audit.journal"))
        .overflow(Overflow::Spill)
        .flush_interval(Duration::from_millis(20))
        .insert_timeout(Duration::from_secs(1))
        .max_retry_backoff(Duration::from_millis(200))
        .build()
        .unwrap();
    let router = serve(layer, 5).await;
    wait_stats(&guard, "the writer did not journal the batch", |s| {
        s.spilled == 5
    })
    .await;
    outage.set(Link::Pass).await;
    wait_stats(&guard, "the journal was not replayed", |s| s.written == 5).await;
    drop(router);
    let report = guard.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!((report.written, report.journaled), (5, 0), "{report:?}");
    assert_intact(&check(&db).await, "stall", 5, 5);
}

/// Waits until `db`'s pool holds an idle connection: sqlx pings a connection as it returns it
/// to the pool, and one stalled before that ping answered would never be handed out.
async fn idle_connection(db: &DatabaseConnection) {
    let idle = || match db.get_database_backend() {
        #[cfg(feature = "postgres")]
        sea_orm::DbBackend::Postgres => db.get_postgres_connection_pool().num_idle(),
        #[cfg(feature = "mysql")]
        sea_orm::DbBackend::MySql => db.get_mysql_connection_pool().num_idle(),
        #[cfg(feature = "sqlite")]
        sea_orm::DbBackend::Sqlite => db.get_sqlite_connection_pool().num_idle(),
        #[allow(unreachable_patterns)]
        _ => 1,
    };
    let released = tokio::time::timeout(Duration::from_secs(10), async {
        while idle() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        released.is_ok(),
        "the connection never went back to the pool"
    );
}
