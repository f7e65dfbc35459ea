//! Retention: deleting old rows in short batches, with a guard, legal holds and a record of it.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::AuditFilter;
use crate::Error;
use crate::entity::audit_log::{ActiveModel, Column, Entity};

/// The `method` of the row that records a purge.
pub const PURGE_METHOD: &str = "PURGE";
/// The `path` of the row that records a purge.
pub const PURGE_PATH: &str = "/tower-audit/retention";
/// The `action` of the row that records a purge.
pub const PURGE_ACTION: &str = "retention.purge";

/// How [`purge_before`] goes about it.
///
/// | setting | default |
/// | --- | --- |
/// | `batch_size` | 5000 rows per delete statement (one short transaction each), [`MAX_BATCH_SIZE`](Self::MAX_BATCH_SIZE) at most |
/// | `dry_run` | `false`: delete |
/// | `min_retention` | 30 days: a cutoff more recent than this is refused … |
/// | `allow_recent` | `false`: … unless this is set |
/// | `legal_hold` | none: rows matching any of these filters are kept |
/// | `requested_by` | none: the `user_id` of the row recording the purge |
/// | `sign_tombstones` | none: purge tombstones unsigned (feature `integrity`) |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeOptions {
    batch_size: u64,
    dry_run: bool,
    min_retention: Duration,
    allow_recent: bool,
    legal_holds: Vec<AuditFilter>,
    requested_by: Option<String>,
    #[cfg(feature = "integrity")]
    signing_key: Option<ed25519_dalek::SigningKey>,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        PurgeOptions {
            batch_size: 5000,
            dry_run: false,
            min_retention: Duration::from_secs(30 * 24 * 3600),
            allow_recent: false,
            legal_holds: Vec::new(),
            requested_by: None,
            #[cfg(feature = "integrity")]
            signing_key: None,
        }
    }
}

impl PurgeOptions {
    /// The most rows one delete statement takes: a batch's ids are bound as the parameters of
    /// one `DELETE … WHERE id IN (…)`, and SQLite takes 32 766 at most (PostgreSQL and MySQL
    /// 65 535).
    pub const MAX_BATCH_SIZE: u64 = 30_000;

    /// The defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rows deleted per statement, at least 1 and at most
    /// [`MAX_BATCH_SIZE`](Self::MAX_BATCH_SIZE).
    #[must_use]
    pub fn batch_size(mut self, rows: u64) -> Self {
        self.batch_size = Ord::clamp(rows, 1, Self::MAX_BATCH_SIZE);
        self
    }

    /// Counts what would be deleted, deletes nothing and records nothing.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// The youngest a purged row may be without [`allow_recent`](Self::allow_recent).
    #[must_use]
    pub fn min_retention(mut self, age: Duration) -> Self {
        self.min_retention = age;
        self
    }

    /// Allows a cutoff more recent than the minimum retention.
    #[must_use]
    pub fn allow_recent(mut self, allow: bool) -> Self {
        self.allow_recent = allow;
        self
    }

    /// Keeps the rows matching `hold`, however old. Each call adds a hold: a row that matches
    /// any of them is kept (`.legal_hold(AuditFilter::new().user("alice"))
    /// .legal_hold(AuditFilter::new().tenant("acme"))` keeps both).
    #[must_use]
    pub fn legal_hold(mut self, hold: AuditFilter) -> Self {
        self.legal_holds.push(hold);
        self
    }

    /// The rows any legal hold keeps (`None` without a hold).
    fn held(&self, backend: sea_orm::DatabaseBackend) -> Option<Condition> {
        (!self.legal_holds.is_empty()).then(|| {
            self.legal_holds
                .iter()
                .fold(Condition::any(), |held, hold| {
                    held.add(hold.condition_not_null(backend))
                })
        })
    }

    /// Who asked for the purge: the `user_id` of the row that records it.
    #[must_use]
    pub fn requested_by(mut self, user: impl Into<String>) -> Self {
        self.requested_by = Some(user.into());
        self
    }

    /// Signs the purge tombstones with this Ed25519 secret key, the writers' checkpoint key
    /// ([`Integrity::sign_checkpoints`](crate::integrity::Integrity::sign_checkpoints)).
    ///
    /// With a checkpoint public key, [`verify`](crate::integrity::verify) takes a tombstone
    /// only when it is signed: otherwise whoever can write to the database could delete the
    /// start of a chain (or all of it) and pass it off as a purge.
    #[cfg(feature = "integrity")]
    #[must_use]
    pub fn sign_tombstones(mut self, secret: [u8; 32]) -> Self {
        self.signing_key = Some(ed25519_dalek::SigningKey::from_bytes(&secret));
        self
    }
}

/// What a purge did (or, in a dry run, would do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeReport {
    /// The cutoff: rows that occurred before it were purged.
    pub cutoff: DateTime<Utc>,
    /// Rows deleted; in a dry run, rows that would be.
    pub deleted: u64,
    /// Delete statements run (0 in a dry run).
    pub batches: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The id of the row recording the purge (`None` in a dry run).
    pub record_id: Option<i64>,
}

/// Deletes the rows that occurred before `cutoff`, except those under legal hold.
///
/// Each batch selects up to `batch_size` ids through the `occurred_at` index and deletes them in
/// one statement, its own short transaction, so writers are never held up for long and an
/// interrupted purge leaves whole batches. The purge is then recorded in the trail itself: one
/// row with method [`PURGE_METHOD`], path [`PURGE_PATH`], action [`PURGE_ACTION`], `user_id`
/// from [`PurgeOptions::requested_by`] and `extra` = `{"cutoff", "deleted", "batches",
/// "legal_hold"}`.
///
/// # Example
///
/// ```no_run
/// # async fn run(db: sea_orm::DatabaseConnection) -> Result<(), tower_audit::Error> {
/// use tower_audit::store::{self, AuditFilter, PurgeOptions};
///
/// let cutoff = chrono::Utc::now() - chrono::Duration::days(90);
/// let options = PurgeOptions::new()
///     .legal_hold(AuditFilter::new().tenant("acme"))
///     .requested_by("ops@example.com");
/// let report = store::purge_before(&db, cutoff, options).await?;
/// println!("purged {} rows", report.deleted);
/// # Ok(())
/// # }
/// ```
///
/// With hash chains (feature `integrity`), each chain loses only a prefix, and a purge
/// tombstone in `audit_checkpoint` says where what stays begins; the tombstones are written
/// before the first delete.
///
/// # Errors
///
/// [`Error::RecentPurge`] when `cutoff` is within the minimum retention and
/// [`PurgeOptions::allow_recent`] is not set; [`Error::Database`] when a statement fails (the
/// batches already deleted stay deleted). Run the purge again to complete one cut short: until
/// then [`verify`](crate::integrity::verify) reports the chains' tombstones ahead of rows still
/// there (`BadCheckpoint`).
pub async fn purge_before<C: ConnectionTrait>(
    db: &C,
    cutoff: DateTime<Utc>,
    options: PurgeOptions,
) -> Result<PurgeReport, Error> {
    let started = Instant::now();
    // To the microsecond, as the databases keep it: a tombstone's signature covers it.
    let now = crate::writer::truncate_micros(Utc::now());
    let youngest = chrono::Duration::from_std(options.min_retention)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    if cutoff > youngest && !options.allow_recent {
        return Err(Error::RecentPurge {
            cutoff,
            min_retention: options.min_retention,
        });
    }
    // To the microsecond, as `until` is: a cutoff between two microseconds took a row of the
    // one before it on SQLite (times compared as text) and kept it on PostgreSQL and MariaDB.
    let cutoff = super::filter::up_to_a_microsecond(cutoff);
    let backend = db.get_database_backend();
    let mut purgeable =
        Condition::all().add(Column::OccurredAt.lt(super::filter::time(backend, cutoff)));
    if let Some(held) = options.held(db.get_database_backend()) {
        purgeable = purgeable.add(held.not());
    }
    // Hash-chained rows go only as a prefix of their chain, so what stays still verifies.
    let (chained, tombstones) = chain_prefixes(db, cutoff, &options).await?;
    purgeable = purgeable.add(chained);
    let mut report = PurgeReport {
        cutoff,
        deleted: 0,
        batches: 0,
        dry_run: options.dry_run,
        record_id: None,
    };
    if options.dry_run {
        report.deleted = Entity::find().filter(purgeable).count(db).await?;
        return Ok(report);
    }
    // Where each chain now starts: verification links its first remaining row to this.
    // Written before the first delete: a purge cut short (a lost connection, a statement that
    // fails) leaves the tombstones of the rows it was to delete, and run again it deletes the
    // rest. Written after, a purge cut short before them left rows deleted with nothing
    // accounting for them, and a second run could not write them any more (the last purged
    // row, whose hash a tombstone holds, was gone): the chain failed `verify` for good.
    for (chain_id, seq, row_hash) in tombstones {
        #[cfg(feature = "integrity")]
        let signature = options.signing_key.as_ref().map(|key| {
            use ed25519_dalek::Signer;
            let message = crate::integrity::signed_purge_message(&chain_id, seq, &row_hash, &now);
            crate::integrity::encode_hex(&key.sign(&message).to_bytes())
        });
        #[cfg(not(feature = "integrity"))]
        let signature = None;
        crate::entity::audit_checkpoint::ActiveModel {
            id: NotSet,
            chain_id: Set(chain_id),
            chain_seq: Set(seq),
            row_hash: Set(row_hash),
            kind: Set("purge".into()),
            created_at: Set(now),
            signature: Set(signature),
        }
        .insert(db)
        .await?;
    }

    loop {
        // Read, then delete by primary key: the delete is a statement of its own, so a
        // concurrent writer waits for one batch at most (and SQLite never has to upgrade a
        // read transaction to a write one).
        let ids: Vec<i64> = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(purgeable.clone())
            .order_by_asc(Column::OccurredAt)
            .limit(options.batch_size)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        let deleted = Entity::delete_many()
            .filter(Column::Id.is_in(ids.iter().copied()))
            .exec(db)
            .await?;
        report.deleted += deleted.rows_affected;
        report.batches += 1;
        if (ids.len() as u64) < options.batch_size {
            break;
        }
    }

    let extra = serde_json::json!({
        "cutoff": cutoff.to_rfc3339_opts(SecondsFormat::Micros, true),
        "deleted": report.deleted,
        "batches": report.batches,
        "legal_hold": !options.legal_holds.is_empty(),
        "legal_holds": options.legal_holds.len(),
    });
    let record = ActiveModel {
        id: NotSet,
        record_id: Set(uuid::Uuid::now_v7().to_string()),
        occurred_at: Set(now),
        request_id: Set(Some(uuid::Uuid::now_v7().to_string())),
        method: Set(PURGE_METHOD.to_owned()),
        path: Set(PURGE_PATH.to_owned()),
        route: Set(Some(PURGE_PATH.to_owned())),
        query: Set(None),
        status: Set(None),
        grpc_status: Set(None),
        latency_us: Set(i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX)),
        client_ip: Set(None),
        peer_ip: Set(None),
        user_agent: Set(Some(format!("tower-audit/{}", env!("CARGO_PKG_VERSION")))),
        user_id: Set(options.requested_by.clone()),
        tenant_id: Set(None),
        action: Set(Some(PURGE_ACTION.to_owned())),
        resource: Set(Some("audit_log".to_owned())),
        request_body: Set(None),
        request_body_truncated: Set(false),
        request_bytes: Set(0),
        response_bytes: Set(0),
        request_headers: Set(None),
        extra: Set(Some(extra)),
        error: Set(None),
        grpc_messages_in: Set(None),
        grpc_messages_out: Set(None),
        chain_id: Set(None),
        chain_seq: Set(None),
        prev_hash: Set(None),
        row_hash: Set(None),
        key_id: Set(None),
    };
    let inserted = Entity::insert(record).exec(db).await?;
    report.record_id = Some(inserted.last_insert_id);
    Ok(report)
}

/// Which hash-chained rows may go: for each chain, the positions before the first row that must
/// stay (too recent, or held), so that no chain gets a hole. Returns the condition (unchained rows
/// always qualify) and, per chain with something to purge, the last position purged and its hash.
async fn chain_prefixes<C: ConnectionTrait>(
    db: &C,
    cutoff: DateTime<Utc>,
    options: &PurgeOptions,
) -> Result<(Condition, Vec<(String, i64, String)>), Error> {
    let chains: Vec<Option<String>> = Entity::find()
        .select_only()
        .column(Column::ChainId)
        .distinct()
        .filter(Column::ChainId.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let mut condition = Condition::any().add(Column::ChainId.is_null());
    let mut tombstones = Vec::new();
    for chain_id in chains.into_iter().flatten() {
        let mut stays = Condition::any()
            .add(Column::OccurredAt.gte(super::filter::time(db.get_database_backend(), cutoff)));
        if let Some(held) = options.held(db.get_database_backend()) {
            stays = stays.add(held);
        }
        let seq_of = |filter: Condition, first: bool| {
            let column = if first {
                Column::ChainSeq.min()
            } else {
                Column::ChainSeq.max()
            };
            Entity::find()
                .select_only()
                .column_as(column, "seq")
                .filter(Column::ChainId.eq(chain_id.as_str()))
                .filter(filter)
                .into_tuple::<Option<i64>>()
                .one(db)
        };
        let first_kept = seq_of(stays, true).await?.flatten();
        let bound = match first_kept {
            Some(first_kept) => first_kept - 1,
            None => seq_of(Condition::all(), false)
                .await?
                .flatten()
                .unwrap_or(0),
        };
        if bound < 1 {
            continue;
        }
        let row_at = |seq: i64| {
            Entity::find()
                .filter(Column::ChainId.eq(chain_id.as_str()))
                .filter(Column::ChainSeq.eq(seq))
                .one(db)
        };
        // The last purged row's hash; gone already (a purge of an earlier version cut short
        // after its deletes), the first kept row holds it as its `prev_hash`.
        let hash = match row_at(bound).await? {
            Some(last) => last.row_hash,
            None => match first_kept {
                Some(first_kept) => row_at(first_kept).await?.and_then(|row| row.prev_hash),
                None => None,
            },
        };
        if let Some(row_hash) = hash
            && !already_marked(db, &chain_id, bound, &row_hash, options).await?
        {
            tombstones.push((chain_id.clone(), bound, row_hash));
        }
        condition = condition.add(
            Condition::all()
                .add(Column::ChainId.eq(chain_id.as_str()))
                .add(Column::ChainSeq.lte(bound)),
        );
    }
    Ok((condition, tombstones))
}

/// Whether the chain's latest purge tombstone already says that it starts after `seq`, whose
/// hash is `row_hash`: a purge run again (a daily cron with nothing new to delete, or one
/// completing a purge cut short) then writes no second tombstone for the same place. One that a
/// purge signing its tombstones could not have written (unsigned, or signed by another key: the
/// checkpoint key was rotated) is written again, signed, so that `verify` with the new public
/// key takes it.
async fn already_marked<C: ConnectionTrait>(
    db: &C,
    chain_id: &str,
    seq: i64,
    row_hash: &str,
    options: &PurgeOptions,
) -> Result<bool, Error> {
    use crate::entity::audit_checkpoint::{Column as Mark, Entity as Marks};
    let latest = Marks::find()
        .filter(Mark::ChainId.eq(chain_id))
        .filter(Mark::Kind.eq("purge"))
        .order_by_desc(Mark::ChainSeq)
        .order_by_desc(Mark::Id)
        .limit(1)
        .one(db)
        .await;
    let latest = match latest {
        Ok(Some(latest)) => latest,
        // None, or one that does not read (tampered with): written anew.
        Ok(None) => return Ok(false),
        Err(error) if super::stored::undecodable(&error) => return Ok(false),
        Err(error) => return Err(error.into()),
    };
    if latest.chain_seq != seq || latest.row_hash != row_hash {
        return Ok(false);
    }
    #[cfg(feature = "integrity")]
    if let Some(key) = &options.signing_key {
        // Signed by this key, as `verify` with its public key reads a tombstone.
        return Ok(crate::integrity::Keyring::new()
            .checkpoint_key(key.verifying_key().to_bytes())
            .is_ok_and(|keys| crate::integrity::signature_ok(&keys, &latest, true)));
    }
    #[cfg(not(feature = "integrity"))]
    let _ = options;
    Ok(true)
}
