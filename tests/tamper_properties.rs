//! Property: raw SQL tampering with a real hash chain never verifies as intact, except where the
//! docs say it cannot be seen; an untampered chain always verifies; and an export with proof of
//! the tampered table gets the verdict the docs promise for what the export carries.
//!
//! Each case writes 3 to 29 audited requests through `AuditLayer` with `Integrity` into an
//! in-memory SQLite database (optionally with signed checkpoints, a writer that stopped without
//! its final checkpoint, a purge of a prefix or of the whole chain), checks that it verifies,
//! applies one tampering operation, and compares `verify` and `verify_export` with what the
//! README's "Tamper evidence" section and the `verify` / `verify_export` / `Export::with_proof`
//! docs promise for that operation. The operations the docs say cannot be seen are expected
//! intact, each for its stated reason (see `Expect`), never skipped.
//!
//! `PROPTEST_CASES` sets the number of cases (384 by default).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use tower::ServiceExt;
use tower_audit::AuditLayer;
use tower_audit::entity::{audit_checkpoint, audit_log};
use tower_audit::integrity::{
    Integrity, Keyring, VerifyOptions, VerifyReport, verify, verify_export,
};
use tower_audit::store::{AuditFilter, Export, ExportFormat, PurgeOptions, purge_before};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const SECRET: [u8; 32] = [7; 32];
const CHAIN: &str = "t";
const GARBAGE: &str = "v1:abababababababababababababababababababababababababababababababab";

/// Column edits: each sets one column of one row to something else (an edit that happens to
/// leave the row as it was is noticed by reading it back, and expected intact).
const EDITS: &[(&str, &str)] = &[
    ("record_id", "record_id || 'x'"),
    ("request_id", "COALESCE(request_id, '') || 'x'"),
    ("method", "'DELETE'"),
    ("path", "path || '/x'"),
    ("route", "NULL"),
    ("query", "'admin=1'"),
    ("status", "COALESCE(status, 0) + 1"),
    ("status", "NULL"),
    ("grpc_status", "0"),
    ("grpc_messages_in", "1"),
    ("grpc_messages_out", "1"),
    ("latency_us", "latency_us + 1"),
    ("client_ip", "'203.0.113.7'"),
    ("peer_ip", "'203.0.113.7'"),
    ("user_agent", "COALESCE(user_agent, '') || ' '"),
    ("user_id", "'mallory'"),
    ("tenant_id", "'other-tenant'"),
    ("action", "'orders.delete'"),
    ("resource", "'order:1'"),
    ("request_body", "COALESCE(request_body, '') || ' '"),
    ("request_body", "NULL"),
    ("request_body_truncated", "1 - request_body_truncated"),
    ("request_bytes", "request_bytes + 1"),
    ("response_bytes", "0"),
    ("request_headers", "'{\"x-forged\":\"1\"}'"),
    ("extra", "'{}'"),
    ("extra", "NULL"),
    // Values the database holds but the entity cannot read back.
    ("extra", "'{broken'"),
    ("occurred_at", "'not a time'"),
    ("error", "'forged error'"),
    ("chain_id", "'other'"),
    ("prev_hash", "NULL"),
    ("prev_hash", "'v1:genesis'"),
    ("prev_hash", "row_hash"),
    ("row_hash", "NULL"),
    ("row_hash", "prev_hash"),
    (
        "row_hash",
        "'v1:abababababababababababababababababababababababababababababababab'",
    ),
    ("key_id", "'k0'"),
    ("key_id", "NULL"),
];

/// The chain before tampering.
#[derive(Clone, Debug)]
struct Setup {
    rows: usize,
    signed: bool,
    /// What the verifier knows of the signing key (only with `signed`).
    verifier: Verifier,
    /// A first writer wrote this share of the rows and its checkpoint; the second stopped without
    /// storing its final one (a crash), so the rows past the first's checkpoint are vouched for
    /// by none.
    crash: Option<Index>,
    purge: Purge,
}

#[derive(Clone, Debug)]
enum Purge {
    None,
    /// Everything that arrived before this row.
    Prefix(Index),
    /// Everything.
    All,
}

/// What the verifier holds besides the HMAC key.
#[derive(Clone, Copy, Debug)]
enum Verifier {
    HmacOnly,
    PublicKey,
    /// `Keyring::accept_unsigned_purges`: tombstone signatures are not checked.
    PublicKeyAcceptingUnsignedPurges,
}

/// Where a forged mark's signature (and `created_at`) comes from.
#[derive(Clone, Copy, Debug)]
enum Sig {
    None,
    FromCheckpoint,
    FromTombstone,
}

/// How a row leaves its chain.
#[derive(Clone, Copy, Debug)]
enum Removal {
    Delete,
    ChainIdNull,
    ChainSeqNull,
}

/// One tampering operation, its places drawn as indices into what the chain holds.
#[derive(Clone, Debug)]
enum Tamper {
    None,
    Column {
        row: Index,
        edit: Index,
    },
    OccurredAt {
        row: Index,
        delta_us: i64,
    },
    /// `id` is not covered by the hash (the database assigns it).
    Id {
        row: Index,
    },
    /// `extra` re-encoded: other key order, whitespace, `\u` escapes; the same JSON value.
    SameJson {
        row: Index,
    },
    /// The row recording a purge (outside any chain) edited, or a row added outside any chain
    /// (a copy of `source` without the chain columns).
    Unchained {
        insert: Option<Index>,
    },
    Remove {
        row: Index,
        how: Removal,
    },
    RemoveRange {
        start: Index,
        len: usize,
    },
    RemoveTail {
        from: Index,
    },
    RemoveTailAndCheckpoints {
        from: Index,
    },
    Swap {
        a: Index,
        b: Index,
    },
    /// To a free position: past the end (`to` > 0) or before the first row left (`to` <= 0:
    /// the tombstone's position or 0, and the two below it).
    Move {
        row: Index,
        to: i64,
    },
    /// A copy of `source` (another `record_id`, optionally edited) at a free position: past the
    /// end (`at` > 0) or before the start (`at` <= 0), linked to the last row or not.
    InsertForged {
        source: Index,
        edit: Option<Index>,
        at: i64,
        linked: bool,
    },
    /// The row at a position deleted and a copy of `source` (edited) inserted there.
    Replace {
        row: Index,
        source: Index,
        edit: Option<Index>,
    },
    CheckpointSeq {
        to: Index,
    },
    CheckpointHash {
        from: Option<Index>,
    },
    /// Position and hash of another row: a consistent, earlier or later, checkpoint.
    CheckpointMove {
        to: Index,
    },
    CheckpointCreatedAt,
    CheckpointDelete,
    TombstoneSeq {
        to: Index,
    },
    TombstoneHash {
        from: Option<Index>,
    },
    TombstoneCreatedAt,
    TombstoneDelete,
    ForgeMark {
        purge: bool,
        seq: Index,
        own_hash: bool,
        sig: Sig,
    },
    /// The start of the chain deleted and a tombstone added to pass it off as a purge.
    FakePurge {
        upto: Index,
        sig: Sig,
    },
}

/// A verdict on chain `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Intact,
    /// A break (or, on a value the database cannot even read back, an error).
    Broken,
    /// No such chain: no row or mark of it left (the CLI exits 5: not a success either).
    Absent,
}

/// What the docs promise for one operation, in the database and in an export with proof.
#[derive(Clone, Copy, Debug)]
struct Expect {
    db: Verdict,
    export: Verdict,
    /// The name of the rule that decided, for the tally.
    why: &'static str,
}

impl Expect {
    fn both(verdict: Verdict, why: &'static str) -> Self {
        Expect {
            db: verdict,
            export: verdict,
            why,
        }
    }
}

/// The chain as written, before tampering.
struct State {
    /// Every row the writers chained, by position, purged ones included.
    originals: BTreeMap<i64, audit_log::Model>,
    /// The chain's rows left after the purge, by position.
    rows: Vec<audit_log::Model>,
    checkpoint: audit_checkpoint::Model,
    tombstone: Option<audit_checkpoint::Model>,
    /// The verifier checks the checkpoints' signatures.
    checks_checkpoints: bool,
    /// The verifier checks the tombstones' signatures.
    checks_tombstones: bool,
    /// The chain's last position.
    last: i64,
}

impl State {
    /// The first position left: right after the tombstone.
    fn first(&self) -> i64 {
        self.tombstone.as_ref().map_or(1, |t| t.chain_seq + 1)
    }

    fn hash(&self, seq: i64) -> String {
        self.originals[&seq].row_hash.clone().unwrap()
    }

    fn row(&self, index: &Index) -> Option<&audit_log::Model> {
        (!self.rows.is_empty()).then(|| index.get(&self.rows))
    }

    /// A position in `1..=last + 2`, other than `not`.
    fn position(&self, index: &Index, not: i64) -> i64 {
        let candidates: Vec<i64> = (1..=self.last + 2).filter(|q| *q != not).collect();
        *index.get(&candidates)
    }

    /// A position with a row left, among `first..=last`.
    fn in_rows(&self, seq: i64) -> bool {
        !self.rows.is_empty() && (self.first()..=self.last).contains(&seq)
    }
}

fn keys(setup: &Setup) -> Keyring {
    let keys = Keyring::new().key("k1", KEY.to_vec());
    let public = integrity(true).checkpoint_public_key().unwrap();
    match (setup.signed, setup.verifier) {
        (false, _) | (true, Verifier::HmacOnly) => keys,
        (true, Verifier::PublicKey) => keys.checkpoint_key(public).unwrap(),
        (true, Verifier::PublicKeyAcceptingUnsignedPurges) => keys
            .checkpoint_key(public)
            .unwrap()
            .accept_unsigned_purges(),
    }
}

fn integrity(signed: bool) -> Integrity {
    let integrity = Integrity::new(CHAIN, "k1", KEY.to_vec());
    if signed {
        integrity.sign_checkpoints(SECRET)
    } else {
        integrity
    }
}

/// Serves `n` audited requests through a writer of chain `t`, then shuts it down.
async fn write(db: &DatabaseConnection, signed: bool, n: usize) {
    let (layer, guard) = AuditLayer::builder(db.clone())
        .integrity(integrity(signed))
        .batch_size(7)
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/orders/{id}",
            post(
                |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>,
                 _body: axum::body::Bytes| async move {
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
                r#"{{"item":"widget-{i}","password":"hunter2"}}"#
            )))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    drop(router);
    let report = guard.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.written, n as u64);
}

async fn chain_rows(db: &DatabaseConnection) -> Vec<audit_log::Model> {
    audit_log::Entity::find()
        .filter(audit_log::Column::ChainId.eq(CHAIN))
        .order_by_asc(audit_log::Column::ChainSeq)
        .all(db)
        .await
        .unwrap()
}

async fn marks(db: &DatabaseConnection, kind: &str) -> Vec<audit_checkpoint::Model> {
    audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::Kind.eq(kind))
        .order_by_asc(audit_checkpoint::Column::ChainSeq)
        .all(db)
        .await
        .unwrap()
}

async fn build(db: &DatabaseConnection, setup: &Setup) -> State {
    tower_audit::migrate(db).await.unwrap();
    match &setup.crash {
        Some(share) => {
            let before = 1 + share.index(setup.rows - 1);
            write(db, setup.signed, before).await;
            write(db, setup.signed, setup.rows - before).await;
            // The second writer's checkpoint never got stored.
            exec(
                db,
                &format!("DELETE FROM audit_checkpoint WHERE chain_seq > {before}"),
            )
            .await;
        }
        None => write(db, setup.signed, setup.rows).await,
    }
    let originals: BTreeMap<i64, audit_log::Model> = chain_rows(db)
        .await
        .into_iter()
        .map(|row| (row.chain_seq.unwrap(), row))
        .collect();
    let last = setup.rows as i64;
    assert_eq!(
        originals.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    let mut options = PurgeOptions::new().allow_recent(true).batch_size(4);
    if setup.signed {
        options = options.sign_tombstones(SECRET);
    }
    match &setup.purge {
        Purge::None => {}
        Purge::Prefix(index) => {
            let cutoff = index
                .get(&originals.values().collect::<Vec<_>>())
                .occurred_at;
            purge_before(db, cutoff, options).await.unwrap();
        }
        Purge::All => {
            let cutoff = chrono::Utc::now() + chrono::Duration::hours(1);
            purge_before(db, cutoff, options).await.unwrap();
        }
    }
    let checkpoints = marks(db, "checkpoint").await;
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    let tombstones = marks(db, "purge").await;
    assert!(tombstones.len() <= 1, "{tombstones:?}");
    let state = State {
        originals,
        rows: chain_rows(db).await,
        checkpoint: checkpoints[0].clone(),
        tombstone: tombstones.into_iter().next(),
        checks_checkpoints: setup.signed && !matches!(setup.verifier, Verifier::HmacOnly),
        checks_tombstones: setup.signed && matches!(setup.verifier, Verifier::PublicKey),
        last,
    };
    let seqs: Vec<i64> = state.rows.iter().map(|r| r.chain_seq.unwrap()).collect();
    let expected: Vec<i64> = (state.first()..=last).collect();
    assert_eq!(seqs, expected, "a purge removes a prefix");
    state
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// The row with this id, as the database now holds it; `None` when it cannot be read back.
async fn reread(db: &DatabaseConnection, id: i64) -> Option<audit_log::Model> {
    audit_log::Entity::find_by_id(id)
        .one(db)
        .await
        .ok()
        .flatten()
}

/// `row` without its `id`, which the hash does not cover.
fn content(row: &audit_log::Model) -> audit_log::Model {
    audit_log::Model {
        id: 0,
        ..row.clone()
    }
}

/// Broken when the row at `original`'s place changed (read back through the entity), else
/// intact.
fn changed(
    original: &audit_log::Model,
    now: Option<&audit_log::Model>,
    why: &'static str,
) -> Expect {
    match now {
        Some(now) if content(now) == content(original) => {
            Expect::both(Verdict::Intact, "unchanged")
        }
        _ => Expect::both(Verdict::Broken, why),
    }
}

/// A JSON text of `value` with keys in reverse order, spaces, and every non-ASCII character as a
/// `\u` escape: another encoding of the same value.
fn reencoded(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            out.push_str("{ ");
            for (i, (key, value)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(" ,\n ");
                }
                reencoded(&serde_json::Value::String(key.clone()), out);
                out.push_str(" : ");
                reencoded(value, out);
            }
            out.push_str(" }");
        }
        serde_json::Value::Array(items) => {
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" , ");
                }
                reencoded(item, out);
            }
            out.push_str(" ]");
        }
        serde_json::Value::String(text) => {
            out.push('"');
            for unit in text.encode_utf16() {
                match unit {
                    0x20..=0x7e if unit != u16::from(b'"') && unit != u16::from(b'\\') => {
                        out.push(char::from(unit as u8));
                    }
                    _ => write!(out, "\\u{unit:04x}").unwrap(),
                }
            }
            out.push('"');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Deletion of positions `lo..=hi` (rows that leave chain `t` one way or another).
///
/// The database: rows past the last checkpoint can be dropped undetected (README, "What it
/// cannot see") — a tail whose first dropped position is past the checkpoint; anything else
/// shows. The export: its proof carries the chain's latest purge tombstone, which the first
/// row must follow; without one the first row is trusted as a start (a prefix deleted from a
/// chain never purged does not show). Its proof carries only the checkpoints within the
/// exported positions (`Export::with_proof`), so a tail dropped from the table does not show in
/// it; a chain with no row left is not in it.
fn deletion(state: &State, lo: i64, hi: i64) -> Expect {
    let (first, last) = (state.first(), state.last);
    let tail = hi == last;
    let db = if tail && lo > state.checkpoint.chain_seq {
        Verdict::Intact
    } else {
        Verdict::Broken
    };
    let prefix_trusted = lo == first && state.tombstone.is_none();
    let export = if lo == first && tail {
        Verdict::Absent
    } else if prefix_trusted || tail {
        Verdict::Intact
    } else {
        Verdict::Broken
    };
    let why = match (db, export) {
        (Verdict::Intact, _) => "rows past the last checkpoint dropped",
        (_, Verdict::Intact) if prefix_trusted => "export: prefix dropped, first row trusted",
        (_, Verdict::Intact) => "export: tail dropped, proof holds no checkpoint past it",
        _ => "rows removed",
    };
    Expect { db, export, why }
}

/// A signature copied from an existing mark, with the `created_at` it covers.
fn copied(state: &State, sig: Sig) -> (Option<String>, chrono::DateTime<chrono::Utc>) {
    let from = match sig {
        Sig::None => None,
        Sig::FromCheckpoint => Some(&state.checkpoint),
        Sig::FromTombstone => state.tombstone.as_ref(),
    };
    match from {
        Some(mark) => (mark.signature.clone(), mark.created_at),
        None => (
            None,
            state.checkpoint.created_at + chrono::Duration::seconds(1),
        ),
    }
}

async fn insert_mark(
    db: &DatabaseConnection,
    kind: &str,
    seq: i64,
    hash: String,
    (signature, created_at): (Option<String>, chrono::DateTime<chrono::Utc>),
) {
    audit_checkpoint::ActiveModel {
        id: NotSet,
        chain_id: Set(CHAIN.into()),
        chain_seq: Set(seq),
        row_hash: Set(hash),
        kind: Set(kind.into()),
        created_at: Set(created_at),
        signature: Set(signature),
    }
    .insert(db)
    .await
    .unwrap();
}

/// Inserts a copy of `source` at position `seq` (a new `record_id` unless `keep_record_id`),
/// with `edit` applied through SQL; returns the new row's id.
async fn insert_copy(
    db: &DatabaseConnection,
    source: &audit_log::Model,
    seq: i64,
    prev_hash: Option<String>,
    keep_record_id: bool,
    edit: Option<&Index>,
) -> i64 {
    let mut copy = source.clone();
    copy.chain_seq = Some(seq);
    if let Some(prev) = prev_hash {
        copy.prev_hash = Some(prev);
    }
    if !keep_record_id {
        copy.record_id = format!("{}-forged", copy.record_id);
    }
    let mut model = audit_log::ActiveModel::from(copy);
    model.id = NotSet;
    let id = model.insert(db).await.unwrap().id;
    if let Some(edit) = edit {
        edit_row(db, id, edit).await;
    }
    id
}

async fn edit_row(db: &DatabaseConnection, id: i64, edit: &Index) {
    let (column, value) = edit.get(EDITS);
    exec(
        db,
        &format!("UPDATE audit_log SET {column} = {value} WHERE id = {id}"),
    )
    .await;
}

/// Applies `tamper` to the table and says what the docs promise for it.
async fn apply(db: &DatabaseConnection, state: &State, tamper: &Tamper) -> Expect {
    match tamper {
        Tamper::CheckpointSeq { .. }
        | Tamper::CheckpointHash { .. }
        | Tamper::CheckpointMove { .. }
        | Tamper::CheckpointCreatedAt
        | Tamper::CheckpointDelete
        | Tamper::TombstoneSeq { .. }
        | Tamper::TombstoneHash { .. }
        | Tamper::TombstoneCreatedAt
        | Tamper::TombstoneDelete
        | Tamper::ForgeMark { .. }
        | Tamper::FakePurge { .. } => apply_to_marks(db, state, tamper).await,
        _ => apply_to_rows(db, state, tamper).await,
    }
}

/// The operations on rows.
async fn apply_to_rows(db: &DatabaseConnection, state: &State, tamper: &Tamper) -> Expect {
    use Verdict::{Absent, Broken, Intact};
    let (first, last) = (state.first(), state.last);
    let empty = state.rows.is_empty();
    // The export holds no row of the chain: it says nothing about it.
    let or_absent = |verdict: Verdict| if empty { Absent } else { verdict };
    let cp = &state.checkpoint;
    let untouched = Expect {
        db: Intact,
        export: or_absent(Intact),
        why: "not applicable here",
    };
    match tamper {
        Tamper::None => Expect {
            why: "no tampering",
            ..untouched
        },
        Tamper::Column { row, edit } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            edit_row(db, row.id, edit).await;
            changed(row, reread(db, row.id).await.as_ref(), "column edited")
        }
        Tamper::OccurredAt { row, delta_us } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            let mut model = audit_log::ActiveModel::from(row.clone());
            model.occurred_at = Set(row.occurred_at + chrono::Duration::microseconds(*delta_us));
            model.update(db).await.unwrap();
            changed(row, reread(db, row.id).await.as_ref(), "occurred_at edited")
        }
        Tamper::Id { row } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            exec(
                db,
                &format!(
                    "UPDATE audit_log SET id = (SELECT MAX(id) FROM audit_log) + 1000 WHERE id = {}",
                    row.id
                ),
            )
            .await;
            Expect::both(Intact, "id is not covered")
        }
        Tamper::SameJson { row } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            let Some(extra) = &row.extra else {
                return untouched;
            };
            let mut text = String::new();
            reencoded(extra, &mut text);
            assert_ne!(text, extra.to_string());
            exec(
                db,
                &format!(
                    "UPDATE audit_log SET extra = '{}' WHERE id = {}",
                    text.replace('\'', "''"),
                    row.id
                ),
            )
            .await;
            let now = reread(db, row.id).await.unwrap();
            assert_eq!(now.extra.as_ref(), Some(extra), "{text}");
            Expect::both(Intact, "same JSON value re-encoded")
        }
        Tamper::Unchained {
            insert: Some(source),
        } => {
            let originals: Vec<_> = state.originals.values().collect();
            let mut copy = (*source.get(&originals)).clone();
            copy.record_id = format!("{}-unchained", copy.record_id);
            copy.path = "/admin/forged".into();
            (
                copy.chain_id,
                copy.chain_seq,
                copy.prev_hash,
                copy.row_hash,
                copy.key_id,
            ) = (None, None, None, None, None);
            let mut model = audit_log::ActiveModel::from(copy);
            model.id = NotSet;
            model.insert(db).await.unwrap();
            Expect {
                db: Intact,
                export: or_absent(Intact),
                why: "rows outside any chain are not checked",
            }
        }
        Tamper::Unchained { insert: None } => {
            let unchained = audit_log::Entity::find()
                .filter(audit_log::Column::ChainId.is_null())
                .all(db)
                .await
                .unwrap();
            if unchained.is_empty() {
                return untouched;
            }
            exec(
                db,
                "UPDATE audit_log SET path = path || '/x' WHERE chain_id IS NULL",
            )
            .await;
            Expect {
                db: Intact,
                export: or_absent(Intact),
                why: "rows outside any chain are not checked",
            }
        }
        Tamper::Remove { row, how } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            let sql = match how {
                Removal::Delete => format!("DELETE FROM audit_log WHERE id = {}", row.id),
                Removal::ChainIdNull => {
                    format!("UPDATE audit_log SET chain_id = NULL WHERE id = {}", row.id)
                }
                Removal::ChainSeqNull => {
                    format!(
                        "UPDATE audit_log SET chain_seq = NULL WHERE id = {}",
                        row.id
                    )
                }
            };
            exec(db, &sql).await;
            let seq = row.chain_seq.unwrap();
            deletion(state, seq, seq)
        }
        Tamper::RemoveRange { start, len } => {
            let Some(row) = state.row(start) else {
                return untouched;
            };
            let lo = row.chain_seq.unwrap();
            let hi = (lo + *len as i64 - 1).min(last);
            exec(
                db,
                &format!(
                    "DELETE FROM audit_log WHERE chain_id = '{CHAIN}' AND chain_seq BETWEEN {lo} AND {hi}"
                ),
            )
            .await;
            deletion(state, lo, hi)
        }
        Tamper::RemoveTail { from } => {
            let Some(row) = state.row(from) else {
                return untouched;
            };
            let lo = row.chain_seq.unwrap();
            exec(
                db,
                &format!("DELETE FROM audit_log WHERE chain_id = '{CHAIN}' AND chain_seq >= {lo}"),
            )
            .await;
            deletion(state, lo, last)
        }
        Tamper::RemoveTailAndCheckpoints { from } => {
            let Some(row) = state.row(from) else {
                return untouched;
            };
            let lo = row.chain_seq.unwrap();
            exec(
                db,
                &format!("DELETE FROM audit_log WHERE chain_id = '{CHAIN}' AND chain_seq >= {lo}"),
            )
            .await;
            exec(
                db,
                &format!(
                    "DELETE FROM audit_checkpoint WHERE kind = 'checkpoint' AND chain_seq >= {lo}"
                ),
            )
            .await;
            // README, "What it cannot see": the checkpoints live in the table they vouch for,
            // so whoever drops rows can drop the checkpoints that vouch for them too.
            let nothing_left = lo == first && state.tombstone.is_none() && cp.chain_seq >= lo;
            Expect {
                db: if nothing_left { Absent } else { Intact },
                export: if lo == first { Absent } else { Intact },
                why: "tail dropped with its checkpoints",
            }
        }
        Tamper::Swap { a, b } => {
            if state.rows.len() < 2 {
                return untouched;
            }
            let a = a.get(&state.rows);
            let mut b = b.get(&state.rows);
            if a.id == b.id {
                b = &state.rows[(state.rows.iter().position(|r| r.id == a.id).unwrap() + 1)
                    % state.rows.len()];
            }
            for (id, seq) in [
                (a.id, -1),
                (b.id, a.chain_seq.unwrap()),
                (a.id, b.chain_seq.unwrap()),
            ] {
                exec(
                    db,
                    &format!("UPDATE audit_log SET chain_seq = {seq} WHERE id = {id}"),
                )
                .await;
            }
            Expect::both(Broken, "rows swapped")
        }
        Tamper::Move { row, to } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            let q = if *to > 0 { last + to } else { first - 1 + to };
            exec(
                db,
                &format!("UPDATE audit_log SET chain_seq = {q} WHERE id = {}", row.id),
            )
            .await;
            // The proof carries the latest tombstone below the row, which it must follow.
            let carried = state.tombstone.as_ref().is_some_and(|t| t.chain_seq < q);
            Expect {
                db: Broken,
                // A lone row moved (to a position a chain can have, with no tombstone below it):
                // the export's first row is trusted as a start, and no checkpoint is within the
                // exported position unless one is at it.
                export: if state.rows.len() == 1 && q >= 1 && q != cp.chain_seq && !carried {
                    Intact
                } else {
                    Broken
                },
                why: "row moved out of the chain's positions",
            }
        }
        Tamper::InsertForged {
            source,
            edit,
            at,
            linked,
        } => {
            let originals: Vec<_> = state.originals.values().collect();
            let source = source.get(&originals);
            let prev = linked.then(|| state.hash(last));
            let q = if *at > 0 { last + at } else { first - 1 + at };
            insert_copy(db, source, q, prev, false, edit.as_ref()).await;
            Expect::both(Broken, "forged row outside the chain's positions")
        }
        Tamper::Replace { row, source, edit } => {
            let Some(row) = state.row(row) else {
                return untouched;
            };
            let originals: Vec<_> = state.originals.values().collect();
            let source = source.get(&originals);
            exec(db, &format!("DELETE FROM audit_log WHERE id = {}", row.id)).await;
            let same = source.id == row.id;
            let id = insert_copy(
                db,
                source,
                row.chain_seq.unwrap(),
                None,
                same,
                edit.as_ref(),
            )
            .await;
            changed(row, reread(db, id).await.as_ref(), "row replaced")
        }
        _ => unreachable!("{tamper:?} is an operation on marks"),
    }
}

/// The operations on checkpoints and tombstones (and, for a fake purge, the rows it hides).
async fn apply_to_marks(db: &DatabaseConnection, state: &State, tamper: &Tamper) -> Expect {
    use Verdict::{Absent, Broken, Intact};
    let signed = state.checks_checkpoints;
    let signed_purges = state.checks_tombstones;
    let (first, last) = (state.first(), state.last);
    let empty = state.rows.is_empty();
    // The export holds no row of the chain: it says nothing about it.
    let or_absent = |verdict: Verdict| if empty { Absent } else { verdict };
    let cp = &state.checkpoint;
    let untouched = Expect {
        db: Intact,
        export: or_absent(Intact),
        why: "not applicable here",
    };
    match tamper {
        Tamper::CheckpointSeq { to } => {
            let q = state.position(to, cp.chain_seq);
            exec(
                db,
                &format!(
                    "UPDATE audit_checkpoint SET chain_seq = {q} WHERE id = {}",
                    cp.id
                ),
            )
            .await;
            let db_verdict = if signed || q >= first { Broken } else { Intact };
            Expect {
                db: db_verdict,
                // Exported only when within the exported positions.
                export: or_absent(if state.in_rows(q) { Broken } else { Intact }),
                why: "checkpoint moved",
            }
        }
        Tamper::CheckpointHash { from } => {
            let hash = match from {
                Some(index) => index
                    .get(&state.originals.values().collect::<Vec<_>>())
                    .row_hash
                    .clone()
                    .unwrap(),
                None => GARBAGE.into(),
            };
            let hash = if hash == cp.row_hash {
                GARBAGE.into()
            } else {
                hash
            };
            exec(
                db,
                &format!(
                    "UPDATE audit_checkpoint SET row_hash = '{hash}' WHERE id = {}",
                    cp.id
                ),
            )
            .await;
            let there = state.in_rows(cp.chain_seq);
            Expect {
                db: if signed || there { Broken } else { Intact },
                export: or_absent(if there { Broken } else { Intact }),
                why: "checkpoint hash changed",
            }
        }
        Tamper::CheckpointMove { to } => {
            let q = 1 + to.index(last as usize - 1) as i64;
            let q = if q >= cp.chain_seq { q + 1 } else { q };
            exec(
                db,
                &format!(
                    "UPDATE audit_checkpoint SET chain_seq = {q}, row_hash = '{}' WHERE id = {}",
                    state.hash(q),
                    cp.id
                ),
            )
            .await;
            Expect {
                db: if signed { Broken } else { Intact },
                export: or_absent(if signed && state.in_rows(q) {
                    Broken
                } else {
                    Intact
                }),
                why: "checkpoint moved consistently",
            }
        }
        Tamper::CheckpointCreatedAt => {
            let mut model = audit_checkpoint::ActiveModel::from(cp.clone());
            model.created_at = Set(cp.created_at + chrono::Duration::seconds(1));
            model.update(db).await.unwrap();
            let seen = signed && state.in_rows(cp.chain_seq);
            Expect {
                db: if signed { Broken } else { Intact },
                export: or_absent(if seen { Broken } else { Intact }),
                why: "checkpoint created_at changed",
            }
        }
        Tamper::CheckpointDelete => {
            exec(
                db,
                &format!("DELETE FROM audit_checkpoint WHERE id = {}", cp.id),
            )
            .await;
            Expect {
                db: Intact,
                export: or_absent(Intact),
                why: "checkpoint deleted, rows untouched",
            }
        }
        Tamper::TombstoneSeq { to } => {
            let Some(t) = &state.tombstone else {
                return untouched;
            };
            let q = state.position(to, t.chain_seq);
            exec(
                db,
                &format!(
                    "UPDATE audit_checkpoint SET chain_seq = {q} WHERE id = {}",
                    t.id
                ),
            )
            .await;
            let db_verdict = if signed_purges || !empty || q < cp.chain_seq {
                Broken
            } else {
                Intact
            };
            Expect {
                db: db_verdict,
                // The proof carries the latest tombstone below the first exported row, which that
                // row no longer follows; moved to it or past it, the tombstone is left out.
                export: or_absent(if q < state.first() { Broken } else { Intact }),
                why: "tombstone moved",
            }
        }
        Tamper::TombstoneHash { from } => {
            let Some(t) = &state.tombstone else {
                return untouched;
            };
            let hash = match from {
                Some(index) => index
                    .get(&state.originals.values().collect::<Vec<_>>())
                    .row_hash
                    .clone()
                    .unwrap(),
                None => GARBAGE.into(),
            };
            let hash = if hash == t.row_hash {
                GARBAGE.into()
            } else {
                hash
            };
            exec(
                db,
                &format!(
                    "UPDATE audit_checkpoint SET row_hash = '{hash}' WHERE id = {}",
                    t.id
                ),
            )
            .await;
            let verdict = if signed_purges || !empty {
                Broken
            } else {
                Intact
            };
            Expect {
                db: verdict,
                export: or_absent(Broken),
                why: "tombstone hash changed",
            }
        }
        Tamper::TombstoneCreatedAt => {
            let Some(t) = &state.tombstone else {
                return untouched;
            };
            let mut model = audit_checkpoint::ActiveModel::from(t.clone());
            model.created_at = Set(t.created_at + chrono::Duration::seconds(1));
            model.update(db).await.unwrap();
            let verdict = if signed_purges { Broken } else { Intact };
            Expect {
                db: verdict,
                export: or_absent(verdict),
                why: "tombstone created_at changed",
            }
        }
        Tamper::TombstoneDelete => {
            let Some(t) = &state.tombstone else {
                return untouched;
            };
            exec(
                db,
                &format!("DELETE FROM audit_checkpoint WHERE id = {}", t.id),
            )
            .await;
            Expect {
                db: Broken,
                export: or_absent(Intact),
                why: "tombstone deleted (export: first row trusted)",
            }
        }
        Tamper::ForgeMark {
            purge,
            seq,
            own_hash,
            sig,
        } => {
            let hash_at = |q: i64| {
                if *own_hash && q <= last {
                    state.hash(q)
                } else {
                    GARBAGE.to_owned()
                }
            };
            if *purge {
                let p = state.tombstone.as_ref().map_or(0, |t| t.chain_seq);
                let q = state.position(seq, p);
                insert_mark(db, "purge", q, hash_at(q), copied(state, *sig)).await;
                let db_verdict = if q < p {
                    Intact
                } else if signed_purges || !empty {
                    Broken
                } else {
                    Intact
                };
                Expect {
                    db: db_verdict,
                    // Never right before the first exported row (that place is taken, or 0).
                    export: or_absent(Intact),
                    why: "forged tombstone",
                }
            } else {
                let c = cp.chain_seq;
                let q = state.position(seq, c);
                let hash = hash_at(q);
                let true_hash = state.in_rows(q) && hash == state.hash(q);
                insert_mark(db, "checkpoint", q, hash, copied(state, *sig)).await;
                let db_verdict = if q < c {
                    Intact
                } else if signed || q > last || (state.in_rows(q) && !true_hash) {
                    Broken
                } else {
                    Intact
                };
                // The export's latest checkpoint is the latest within the exported positions.
                let export_latest = state.in_rows(q) && (q > c || !state.in_rows(c));
                let export = if export_latest && (signed || !true_hash) {
                    Broken
                } else {
                    Intact
                };
                Expect {
                    db: db_verdict,
                    export: or_absent(export),
                    why: "forged checkpoint",
                }
            }
        }
        Tamper::FakePurge { upto, sig } => {
            let Some(row) = state.row(upto) else {
                return untouched;
            };
            let k = row.chain_seq.unwrap();
            exec(
                db,
                &format!("DELETE FROM audit_log WHERE chain_id = '{CHAIN}' AND chain_seq <= {k}"),
            )
            .await;
            insert_mark(db, "purge", k, state.hash(k), copied(state, *sig)).await;
            let verdict = if signed_purges { Broken } else { Intact };
            Expect {
                db: verdict,
                export: if k == last { Absent } else { verdict },
                why: "prefix deleted behind a forged tombstone",
            }
        }
        _ => unreachable!("{tamper:?} is an operation on rows"),
    }
}

fn classify(result: Result<VerifyReport, tower_audit::Error>) -> (Verdict, String) {
    match result {
        Err(error) => (Verdict::Broken, format!("error: {error}")),
        Ok(report) => {
            let verdict =
                if !report.chains.iter().any(|c| c.chain_id == CHAIN) && report.is_intact() {
                    Verdict::Absent
                } else if report.is_intact() {
                    Verdict::Intact
                } else {
                    Verdict::Broken
                };
            (verdict, report.to_string())
        }
    }
}

async fn observe(
    db: &DatabaseConnection,
    keys: &Keyring,
) -> ((Verdict, String), (Verdict, String)) {
    let in_db = classify(verify(db, keys, VerifyOptions::default()).await);
    let mut out = Vec::new();
    let exported = Export::new(ExportFormat::Ndjson)
        .with_proof(true)
        .page_size(5)
        .to_writer(db, &AuditFilter::new(), &mut out)
        .await;
    let offline = match exported {
        Err(error) => (Verdict::Broken, format!("export error: {error}")),
        Ok(_) => classify(verify_export(out.as_slice(), keys)),
    };
    (in_db, offline)
}

/// Tally of the rules that decided, for the report at the end.
static TALLY: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

async fn case(setup: Setup, tamper: Tamper) -> Result<(), TestCaseError> {
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    let state = build(&db, &setup).await;
    let keys = keys(&setup);
    let ((before, report), (before_export, export_report)) = observe(&db, &keys).await;
    prop_assert_eq!(before, Verdict::Intact, "untampered: {}", report);
    let expected_export = if state.rows.is_empty() {
        Verdict::Absent
    } else {
        Verdict::Intact
    };
    prop_assert_eq!(
        before_export,
        expected_export,
        "untampered export: {}",
        export_report
    );

    let expect = apply(&db, &state, &tamper).await;
    let ((in_db, report), (offline, export_report)) = observe(&db, &keys).await;
    prop_assert_eq!(in_db, expect.db, "database ({}): {}", expect.why, report);
    prop_assert_eq!(
        offline,
        expect.export,
        "export ({}): {}",
        expect.why,
        export_report
    );
    let name = format!("{tamper:?}");
    let name = name.split([' ', '{', '(']).next().unwrap_or_default();
    let errored = if report.starts_with("error") {
        " (verify fails)"
    } else {
        ""
    };
    *TALLY
        .lock()
        .unwrap()
        .entry(format!(
            "{name:<24} {:<44} db {:?}{errored}, export {:?}",
            expect.why, expect.db, expect.export
        ))
        .or_default() += 1;
    Ok(())
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        3usize..30,
        any::<bool>(),
        prop_oneof![
            1 => Just(Verifier::HmacOnly),
            3 => Just(Verifier::PublicKey),
            1 => Just(Verifier::PublicKeyAcceptingUnsignedPurges),
        ],
        prop::option::weighted(0.3, any::<Index>()),
        prop_oneof![
            4 => Just(Purge::None),
            4 => any::<Index>().prop_map(Purge::Prefix),
            1 => Just(Purge::All),
        ],
    )
        .prop_map(|(rows, signed, verifier, crash, purge)| Setup {
            rows,
            signed,
            verifier,
            crash,
            purge,
        })
}

fn sig() -> impl Strategy<Value = Sig> {
    prop_oneof![
        Just(Sig::None),
        Just(Sig::FromCheckpoint),
        Just(Sig::FromTombstone)
    ]
}

fn tamper() -> impl Strategy<Value = Tamper> {
    let i = any::<Index>;
    prop_oneof![
        2 => Just(Tamper::None),
        8 => (i(), i()).prop_map(|(row, edit)| Tamper::Column { row, edit }),
        1 => (i(), prop_oneof![Just(1i64), Just(1_000_000), Just(-86_400_000_000)])
            .prop_map(|(row, delta_us)| Tamper::OccurredAt { row, delta_us }),
        1 => i().prop_map(|row| Tamper::Id { row }),
        1 => i().prop_map(|row| Tamper::SameJson { row }),
        2 => prop::option::of(i()).prop_map(|insert| Tamper::Unchained { insert }),
        3 => (i(), prop_oneof![Just(Removal::Delete), Just(Removal::ChainIdNull), Just(Removal::ChainSeqNull)])
            .prop_map(|(row, how)| Tamper::Remove { row, how }),
        2 => (i(), 2usize..6).prop_map(|(start, len)| Tamper::RemoveRange { start, len }),
        2 => i().prop_map(|from| Tamper::RemoveTail { from }),
        1 => i().prop_map(|from| Tamper::RemoveTailAndCheckpoints { from }),
        2 => (i(), i()).prop_map(|(a, b)| Tamper::Swap { a, b }),
        2 => (i(), -2i64..4).prop_map(|(row, to)| Tamper::Move { row, to }),
        3 => (i(), prop::option::of(i()), -2i64..4, any::<bool>()).prop_map(
            |(source, edit, at, linked)| Tamper::InsertForged { source, edit, at, linked }
        ),
        2 => (i(), i(), prop::option::weighted(0.7, i()))
            .prop_map(|(row, source, edit)| Tamper::Replace { row, source, edit }),
        1 => i().prop_map(|to| Tamper::CheckpointSeq { to }),
        1 => prop::option::of(i()).prop_map(|from| Tamper::CheckpointHash { from }),
        1 => i().prop_map(|to| Tamper::CheckpointMove { to }),
        1 => Just(Tamper::CheckpointCreatedAt),
        1 => Just(Tamper::CheckpointDelete),
        1 => i().prop_map(|to| Tamper::TombstoneSeq { to }),
        1 => prop::option::of(i()).prop_map(|from| Tamper::TombstoneHash { from }),
        1 => Just(Tamper::TombstoneCreatedAt),
        1 => Just(Tamper::TombstoneDelete),
        3 => (any::<bool>(), i(), any::<bool>(), sig()).prop_map(|(purge, seq, own_hash, sig)| {
            Tamper::ForgeMark { purge, seq, own_hash, sig }
        }),
        2 => (i(), sig()).prop_map(|(upto, sig)| Tamper::FakePurge { upto, sig }),
    ]
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

#[test]
fn tampering_never_verifies_unless_documented_and_untampered_chains_always_do() {
    let mut runner = TestRunner::new(Config {
        cases: cases(384),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&(setup(), tamper()), |(setup, tamper)| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(case(setup, tamper))
    });
    let tally = TALLY.lock().unwrap();
    let total: u32 = tally.values().sum();
    eprintln!("{total} cases:");
    for (rule, count) in tally.iter() {
        eprintln!("{count:>5}  {rule}");
    }
    if let Err(error) = result {
        panic!("{error}");
    }
}
