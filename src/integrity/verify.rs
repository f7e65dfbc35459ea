//! Re-deriving every hash: [`verify`] and its report.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

use super::Keyring;
use super::chain::{GENESIS, row_hash, signed_message, signed_purge_message};
use super::json_text::reads_as_hashed;
use super::key::{decode_hex, encode_hex};
use crate::Error;
use crate::entity::{audit_checkpoint, audit_log};
use crate::store::undecodable;

/// Rows read per query while verifying: memory stays bounded whatever the table's size.
const PAGE: u64 = 1000;

/// What to verify; everything by default.
///
/// A time range selects, in each chain, a span of positions rather than rows: positions follow
/// the order in which requests finished, `occurred_at` the order in which they arrived, so a
/// slow request's row sits among rows that arrived after it. The span runs from the lowest
/// position of a row that arrived in range to the highest (to the chain's end without `to`),
/// from the row before it with `from`, and every row of it is checked, whatever its
/// `occurred_at`. When a position among them does
/// not read (text stored in `chain_seq`, on SQLite), the span is the chain's whole length.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Start each chain's span at the first position of a row that arrived at or after this time.
    /// The row at the position below it is trusted as a start (its own hash is still checked,
    /// so the keyring needs its key too), so rows deleted from the span's start break the link
    /// to it (unless the row below is a slow request's, arrived before this time but chained
    /// after the rows deleted: it is then the start); with no row below, the span starts where
    /// the chain does. When no row arrived since, the span is the chain's last row and the row
    /// below it, so that a tail dropped behind a checkpoint still shows.
    pub from: Option<DateTime<Utc>>,
    /// End each chain's span at the last position of a row that arrived before this time (a
    /// truncated tail cannot be judged then).
    pub to: Option<DateTime<Utc>>,
    /// Only this chain.
    pub chain_id: Option<String>,
    /// Positions and hashes kept outside the database (see [`Anchor`]): each must still be in
    /// its chain, with its hash. A chain an anchor names is verified even when the database no
    /// longer holds a row or checkpoint of it.
    pub anchors: Vec<Anchor>,
}

/// A chain's position and the hash of its row there, kept where whoever can write the database
/// cannot reach: a log the writer's checkpoints go to (`tracing` target
/// `tower_audit::checkpoint`), or the `last_seq` and `last_hash` of a verify you trust.
///
/// The database's own checkpoints cannot show a tail deleted together with the checkpoints
/// that vouch for it; an anchor can: [`verify`] reports [`BreakKind::TruncatedTail`] when the
/// chain ends before the anchor, and [`BreakKind::BadCheckpoint`] when another row holds its
/// position. So does [`verify_export_with_anchors`](super::verify_export_with_anchors), offline,
/// in an export whose tail was cut together with its checkpoint lines. As text (the CLI's
/// `--anchor`): `chain@seq=hash`, `api-1@1042=v1:9f3c…`, the hash as the writer makes it:
/// `v1:` and 64 hex digits, read in either case and kept in lower case, the writer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// The chain.
    pub chain_id: String,
    /// The position.
    pub chain_seq: i64,
    /// The row's `row_hash` there.
    pub row_hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// Parses `chain@seq=hash`. A row hash holds no `=` and a position no `@`: the hash is what
    /// follows the last `=`, the chain id what comes before the last `@` ahead of it, and a
    /// chain id may hold both. The hash must have the writer's form, `v1:` and 64 hex digits
    /// (any other matches no row, and was reported as a rewritten chain); it is kept in lower
    /// case, as the writer writes it, so that one copied in upper case still matches.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || format!("{text:?} is not an anchor: expected chain@seq=hash");
        let (place, row_hash) = text.rsplit_once('=').ok_or_else(malformed)?;
        let (chain_id, seq) = place.rsplit_once('@').ok_or_else(malformed)?;
        let chain_seq: i64 = seq.parse().map_err(|_| malformed())?;
        if chain_id.is_empty() || row_hash.is_empty() || chain_seq < 1 {
            return Err(malformed());
        }
        let row_hash = row_hash.to_ascii_lowercase();
        if !is_row_hash(&row_hash) {
            return Err(format!(
                "{text:?} is not an anchor: its hash must read v1: and 64 hex digits, as the \
                 writer's do"
            ));
        }
        Ok(Self {
            chain_id: chain_id.to_owned(),
            chain_seq,
            row_hash,
        })
    }
}

/// Whether `hash` has the form of a row hash the writer makes: `v1:` and the 64 lower-case hex
/// digits of an HMAC-SHA256.
fn is_row_hash(hash: &str) -> bool {
    hash.strip_prefix("v1:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}={}", self.chain_id, self.chain_seq, self.row_hash)
    }
}

/// What kind of tampering a break shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakKind {
    /// The row's content no longer matches its hash, while it still links to the previous row;
    /// or a row a checkpoint vouches for lost its `row_hash`, `prev_hash` or `key_id`; or a row holds a
    /// value its column's type cannot hold, so that it cannot be read at all (a `chain_id` that
    /// is not text: a report of its own, named after that value).
    Modified,
    /// One or more positions of the chain are missing.
    Deleted,
    /// A row the writer did not produce: its hash is invalid and it does not link, or it lies
    /// past the last checkpoint with an invalid or missing hash or key id, or at a position
    /// below 1.
    Forged,
    /// A valid row in the wrong place: it links to another row than the one before it.
    Reordered,
    /// Rows a checkpoint vouched for are gone from the end of the chain.
    TruncatedTail,
    /// A checkpoint's signature does not verify, the row at its position is another than the
    /// one it vouches for, or a purge tombstone claims positions that still hold rows (a purge
    /// only removes a prefix of a chain); or the latest checkpoint or tombstone holds a value its
    /// column's type cannot hold; or a checkpoint's `chain_id` is not text (a report of its own,
    /// named after that value).
    BadCheckpoint,
    /// The row names a key id the keyring does not hold (a row that names none is
    /// [`Modified`](Self::Modified), or [`Forged`](Self::Forged) past the last checkpoint).
    UnknownKey,
}

/// The first break found in a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Break {
    /// What it looks like.
    pub kind: BreakKind,
    /// Where in the chain; 0 where not even that can be read.
    pub chain_seq: i64,
    /// The row's `id`, when there is a row.
    pub id: Option<i64>,
    /// A sentence for humans.
    pub detail: String,
}

/// The verdict on one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain; for a value stored as a `chain_id` that is not text (SQLite keeps any value),
    /// that value as an SQL literal, `x'ff'`.
    pub chain_id: String,
    /// Rows checked (with a time range, every row of its span: see [`VerifyOptions`]).
    pub rows: u64,
    /// The last position checked.
    pub last_seq: i64,
    /// The hash of the last row that verified. With `last_seq`, of an intact chain verified
    /// whole, an [`Anchor`] to keep outside the database.
    pub last_hash: Option<String>,
    /// The latest checkpoint's position, if any.
    pub checkpoint_seq: Option<i64>,
    /// The first break, if the chain is not intact.
    pub first_break: Option<Break>,
}

/// The verdict on every chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// One entry per chain.
    pub chains: Vec<ChainReport>,
}

impl ChainReport {
    /// The last row verified, as an [`Anchor`] to keep outside the database: `None` unless
    /// the chain is intact and has a row. The chain's end, unless a range's `to` cut it short.
    pub fn anchor(&self) -> Option<Anchor> {
        match (&self.first_break, &self.last_hash) {
            (None, Some(hash)) => Some(Anchor {
                chain_id: self.chain_id.clone(),
                chain_seq: self.last_seq,
                row_hash: hash.clone(),
            }),
            _ => None,
        }
    }
}

impl VerifyReport {
    /// No chain has a break.
    pub fn is_intact(&self) -> bool {
        self.chains.iter().all(|c| c.first_break.is_none())
    }
}

/// One line per chain. Chain ids and details quote stored values, which whoever can write to
/// the database chose: they are shown as [`printable`](crate::store::printable) shows them, so
/// that a chain id of control characters cannot erase a broken chain's line on a terminal.
impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::store::printable;
        for chain in &self.chains {
            match &chain.first_break {
                None => writeln!(
                    f,
                    "{}: intact ({} rows, up to seq {})",
                    printable(&chain.chain_id),
                    chain.rows,
                    chain.last_seq
                )?,
                Some(b) => writeln!(
                    f,
                    "{}: {:?} at seq {}{}: {}",
                    printable(&chain.chain_id),
                    b.kind,
                    b.chain_seq,
                    b.id.map(|id| format!(" (id {id})")).unwrap_or_default(),
                    printable(&b.detail)
                )?,
            }
        }
        Ok(())
    }
}

/// Re-derives every hash of every chain (or of `options`' range and chain) and reports the first
/// break of each. Reads the table in pages, in chain order, so memory stays bounded.
///
/// Each chain's latest checkpoint is checked twice: its signature (with
/// [`Keyring::checkpoint_key`]), and its hash against the row at its position when that row is
/// among those read, so that rows rewritten by a holder of the HMAC key alone do not pass.
///
/// A row holding a value its column's type cannot hold (SQLite checks no types: whoever can
/// write the file can store `'not json'` in `extra`) is a [`BreakKind::Modified`] at its
/// position, and the other chains are still verified; so is a chain whose latest checkpoint or
/// purge tombstone holds one: a [`BreakKind::BadCheckpoint`]. A `chain_id` that is not text
/// names no chain: the rows that hold one are reported after the chains as one more chain,
/// named after that value, with a [`BreakKind::Modified`] (checkpoints:
/// [`BreakKind::BadCheckpoint`]).
///
/// # Errors
///
/// [`Error::Database`] when the database cannot be read: unreachable, or refusing a query;
/// [`Error::Config`] when `keys` holds a key shorter than a writer takes ([`Keyring::key`]).
pub async fn verify(
    db: &DatabaseConnection,
    keys: &Keyring,
    options: VerifyOptions,
) -> Result<VerifyReport, Error> {
    keys.check()?;
    let (mut chain_ids, mut unnamed) = chain_ids(db).await?;
    // A chain deleted whole, checkpoints too, is still named by its anchors.
    chain_ids.extend(options.anchors.iter().map(|a| a.chain_id.clone()));
    chain_ids.sort();
    chain_ids.dedup();
    if let Some(only) = &options.chain_id {
        chain_ids.retain(|c| c == only);
        unnamed.retain(|c| &c.chain_id == only);
    }
    let mut report = VerifyReport::default();
    for chain_id in chain_ids {
        // Each chain read in one snapshot: its latest tombstone, then its rows page by page.
        // Read in statements of their own, the rows a purge deleted meanwhile, past the
        // tombstone read before it, were a false `Deleted` (found by a probe: a nightly
        // `verify` beside a nightly `purge`).
        let snapshot = crate::store::snapshot(db).await?;
        let chain = verify_chain(&snapshot, keys, &options, &chain_id).await;
        // Read only: nothing to keep.
        snapshot.rollback().await?;
        report.chains.push(chain?);
    }
    report.chains.extend(unnamed);
    Ok(report)
}

/// Every chain id stored with a row or a checkpoint (a chain whose rows were all removed still
/// has its checkpoints), sorted; and, as reports of their own after them, the values stored as
/// a chain id that are not text: they name no chain, so whatever holds one was moved out of its
/// chain.
async fn chain_ids(db: &DatabaseConnection) -> Result<(Vec<String>, Vec<ChainReport>), Error> {
    use audit_checkpoint::Column as Mark;
    use audit_log::Column as Row;
    let (mut named, rows) =
        stored_chain_ids::<audit_log::Entity, _>(db, Row::ChainId, Row::ChainSeq).await?;
    let (checkpointed, marks) =
        stored_chain_ids::<audit_checkpoint::Entity, _>(db, Mark::ChainId, Mark::ChainSeq).await?;
    named.extend(checkpointed);
    named.sort();
    named.dedup();
    let unnamed = |kind, what: &str, not_text: NotText| {
        let count = not_text.count;
        ChainReport {
            chain_id: not_text.name,
            rows: 0,
            last_seq: 0,
            last_hash: None,
            checkpoint_seq: None,
            first_break: Some(Break {
                kind,
                chain_seq: not_text.first_seq.unwrap_or(0),
                id: None,
                detail: format!(
                    "{count} {what}{} a chain_id that is not text: no chain holds {}",
                    if count == 1 { " holds" } else { "s hold" },
                    if count == 1 { "it" } else { "them" },
                ),
            }),
        }
    };
    let mut unnamed: Vec<ChainReport> = rows
        .into_iter()
        .map(|n| unnamed(BreakKind::Modified, "row", n))
        .chain(
            marks
                .into_iter()
                .map(|n| unnamed(BreakKind::BadCheckpoint, "checkpoint", n)),
        )
        .collect();
    // Rows first: the same value in both tables is one report.
    unnamed.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
    unnamed.dedup_by(|later, first| later.chain_id == first.chain_id);
    Ok((named, unnamed))
}

/// A value stored as a chain id that is not text.
struct NotText {
    /// As an SQL literal (`x'ff'`), so that the rows that hold it can be found.
    name: String,
    /// The lowest position among them, when it reads.
    first_seq: Option<i64>,
    count: i64,
}

/// One table's distinct chain ids, and the values stored in their place that are not text.
/// Only when a value does not read is the table read again, grouped by chain id, each group
/// decoded on its own.
async fn stored_chain_ids<E: EntityTrait, C: ConnectionTrait>(
    db: &C,
    chain_id: E::Column,
    chain_seq: E::Column,
) -> Result<(Vec<String>, Vec<NotText>), Error> {
    let distinct = E::find()
        .select_only()
        .column(chain_id)
        .distinct()
        .filter(chain_id.is_not_null())
        .into_tuple::<String>()
        .all(db)
        .await;
    match distinct {
        Ok(named) => return Ok((named, Vec::new())),
        Err(error) if undecodable(&error) => {}
        Err(error) => return Err(error.into()),
    }
    let groups = E::find()
        .select_only()
        .column_as(chain_id, "chain_id")
        .column_as(chain_seq.min(), "first_seq")
        .column_as(chain_id.count(), "count")
        .filter(chain_id.is_not_null())
        .group_by(chain_id)
        .into_query();
    let (mut named, mut not_text) = (Vec::new(), Vec::new());
    for group in db.query_all(&groups).await? {
        match group.try_get::<String>("", "chain_id") {
            Ok(name) => named.push(name),
            Err(error) if undecodable(&error) => {
                let name = match group.try_get::<Vec<u8>>("", "chain_id") {
                    Ok(bytes) => format!("x'{}'", encode_hex(&bytes)),
                    Err(_) => "(not text)".to_owned(),
                };
                not_text.push(NotText {
                    name,
                    first_seq: group.try_get::<Option<i64>>("", "first_seq").ok().flatten(),
                    count: group.try_get::<i64>("", "count")?,
                });
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok((named, not_text))
}

/// The latest checkpoint of `chain_id` of `kind` (`checkpoint` or `purge`), or, when it holds a
/// value its column cannot hold, the break that is.
async fn latest_checkpoint<C: ConnectionTrait>(
    db: &C,
    chain_id: &str,
    kind: &str,
) -> Result<Result<Option<audit_checkpoint::Model>, Break>, Error> {
    use audit_checkpoint::Column;
    let latest = || {
        audit_checkpoint::Entity::find()
            .filter(Column::ChainId.eq(chain_id))
            .filter(Column::Kind.eq(kind))
            .order_by_desc(Column::ChainSeq)
            // Of two at one place, the later: a tombstone a purge signed again with a rotated
            // key, a checkpoint a writer restarted with a new key took before any new row.
            .order_by_desc(Column::Id)
            .limit(1)
    };
    match latest().one(db).await {
        Ok(found) => return Ok(Ok(found)),
        Err(error) if undecodable(&error) => {}
        Err(error) => return Err(error.into()),
    }
    let id: Option<i64> = latest()
        .select_only()
        .column(Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    let seq = latest()
        .select_only()
        .column(Column::ChainSeq)
        .into_tuple::<i64>()
        .one(db)
        .await;
    let (seq, whose) = match seq {
        Ok(Some(seq)) => (seq, ""),
        Ok(None) => (0, ""),
        Err(error) if undecodable(&error) => (0, " nor its position"),
        Err(error) => return Err(error.into()),
    };
    let what = if kind == "purge" {
        "purge tombstone"
    } else {
        "checkpoint"
    };
    let id = id.map(|id| format!(" {id}")).unwrap_or_default();
    Ok(Err(Break {
        kind: BreakKind::BadCheckpoint,
        chain_seq: seq,
        id: None,
        detail: format!("{what}{id} cannot be read{whose}: a value does not fit its column"),
    }))
}

/// Whether `checkpoint` is signed by the checkpoint key (or no key is given), for the part it
/// plays: a purge tombstone's signature covers other bytes than a checkpoint's. The part is the
/// caller's, not the row's `kind`: a checkpoint relabelled by hand, which a collation may still
/// have matched as a tombstone, is checked as the tombstone it would stand for.
pub(crate) fn signature_ok(
    keys: &Keyring,
    checkpoint: &audit_checkpoint::Model,
    as_tombstone: bool,
) -> bool {
    let Some(public) = &keys.checkpoint_key else {
        return true;
    };
    let Some(signature) = checkpoint
        .signature
        .as_deref()
        .and_then(decode_hex)
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
    else {
        return false;
    };
    let sign = if as_tombstone {
        signed_purge_message
    } else {
        signed_message
    };
    let message = sign(
        &checkpoint.chain_id,
        checkpoint.chain_seq,
        &checkpoint.row_hash,
        &checkpoint.created_at,
    );
    public
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_ok()
}

/// A break when, with a checkpoint public key, the latest checkpoint or purge tombstone is not
/// signed by it (tombstones pass unsigned with [`Keyring::accept_unsigned_purges`]).
pub(super) fn unsigned(
    keys: &Keyring,
    checkpoint: Option<&audit_checkpoint::Model>,
    tombstone: Option<&audit_checkpoint::Model>,
) -> Option<Break> {
    let bad = |mark: &audit_checkpoint::Model, what: &str| Break {
        kind: BreakKind::BadCheckpoint,
        chain_seq: mark.chain_seq,
        id: None,
        detail: format!("{what} {} has no valid signature", mark.id),
    };
    if let Some(cp) = checkpoint
        && !signature_ok(keys, cp, false)
    {
        return Some(bad(cp, "checkpoint"));
    }
    match tombstone {
        Some(t) if !keys.accept_unsigned_purges && !signature_ok(keys, t, true) => {
            Some(bad(t, "purge tombstone"))
        }
        _ => None,
    }
}

async fn verify_chain<C: ConnectionTrait>(
    db: &C,
    keys: &Keyring,
    options: &VerifyOptions,
    chain_id: &str,
) -> Result<ChainReport, Error> {
    let mut report = ChainReport {
        chain_id: chain_id.to_owned(),
        rows: 0,
        last_seq: 0,
        last_hash: None,
        checkpoint_seq: None,
        first_break: None,
    };
    let marks = (
        latest_checkpoint(db, chain_id, "checkpoint").await?,
        latest_checkpoint(db, chain_id, "purge").await?,
    );
    let (checkpoint, tombstone) = match marks {
        (Ok(checkpoint), Ok(tombstone)) => (checkpoint, tombstone),
        (Err(unread), _) | (_, Err(unread)) => {
            report.first_break = Some(unread);
            return Ok(report);
        }
    };
    #[cfg(test)]
    tests::between_the_marks_and_the_rows(chain_id).await;
    report.checkpoint_seq = checkpoint.as_ref().map(|c| c.chain_seq);
    if let Some(found) = unsigned(keys, checkpoint.as_ref(), tombstone.as_ref()) {
        report.first_break = Some(found);
        return Ok(report);
    }
    let Some((mut after, up_to)) = span(db, chain_id, options).await? else {
        return Ok(report);
    };
    let mut walk = Walk {
        // A span that starts mid-chain.
        trust_first: after.is_some(),
        tombstone: tombstone
            .as_ref()
            .map(|t| (t.chain_seq, t.row_hash.clone())),
        checkpoint: checkpoint
            .as_ref()
            .map(|c| (c.chain_seq, c.row_hash.clone())),
        anchors: Walk::anchors_of(&options.anchors, chain_id),
        previous: None,
    };
    'pages: loop {
        let mut condition = Condition::all()
            .add(audit_log::Column::ChainId.eq(chain_id))
            .add(match after {
                Some(after) => audit_log::Column::ChainSeq.gt(after),
                None => audit_log::Column::ChainSeq.is_not_null(),
            });
        if let Some(up_to) = up_to {
            condition = condition.add(audit_log::Column::ChainSeq.lte(up_to));
        }
        let page = audit_log::Entity::find()
            .filter(condition.clone())
            .order_by_asc(audit_log::Column::ChainSeq)
            .limit(PAGE)
            .all(db)
            .await;
        let rows: Vec<_> = match page {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(error) if undecodable(&error) => row_by_row(db, condition.clone()).await?,
            Err(error) => return Err(error.into()),
        };
        if rows.is_empty() {
            break;
        }
        let stored = stored_texts(db, condition, rows.len()).await?;
        for row in rows {
            let row = match row {
                Ok(row) => row,
                Err(Unread { id, seq }) => {
                    // Positions are not known past the last row read: name the next one.
                    let (seq, whose) = match seq {
                        Some(seq) => (seq, ""),
                        None => (
                            after.map_or(1, |a| a.saturating_add(1)),
                            " nor its position",
                        ),
                    };
                    report.rows += 1;
                    report.last_seq = seq;
                    report.first_break = Some(Break {
                        kind: BreakKind::Modified,
                        chain_seq: seq,
                        id: Some(id),
                        detail: format!(
                            "the stored row cannot be read{whose}: a value does not fit its column"
                        ),
                    });
                    break 'pages;
                }
            };
            let Some(link) = Link::of(&row, keys) else {
                // Not reached: the query asks for rows with a position.
                continue;
            };
            after = Some(link.seq);
            report.rows += 1;
            report.last_seq = link.seq;
            let seq = link.seq;
            if let Some(found) = walk.step(link) {
                report.first_break = Some(found);
                break 'pages;
            }
            let stored = stored.get(&row.id);
            if let Some(time) = stored.and_then(|s| s.occurred_at.as_ref()).filter(|time| {
                **time
                    != row
                        .occurred_at
                        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
            }) {
                report.first_break = Some(Break {
                    kind: BreakKind::Modified,
                    chain_seq: seq,
                    id: Some(row.id),
                    detail: format!(
                        "occurred_at is stored as {time:?}, the same instant in another form \
                         than the writer's: time filters, which compare the text, would miss it"
                    ),
                });
                break 'pages;
            }
            let json = stored
                .into_iter()
                .flat_map(|s| [("request_headers", &s.request_headers), ("extra", &s.extra)]);
            for (column, text) in json {
                if let Some(Err(reason)) = text.as_deref().map(reads_as_hashed) {
                    report.first_break = Some(Break {
                        kind: BreakKind::Modified,
                        chain_seq: seq,
                        id: Some(row.id),
                        detail: format!(
                            "{column} is stored as JSON that SQL reads otherwise than the \
                             row's hash covers it: {reason}"
                        ),
                    });
                    break 'pages;
                }
            }
        }
    }
    if report.first_break.is_none() && up_to.is_none() {
        report.first_break = walk.ended(checkpoint.as_ref(), report.last_seq);
    }
    report.last_hash = walk.previous.map(|(_, hash)| hash);
    Ok(report)
}

/// Columns of a row as its database stores them, as text, which the walk compares with what
/// the row's hash covers.
struct StoredText {
    /// On SQLite, which keeps `occurred_at` as text and compares it as text, for the walk to
    /// compare with the writer's spelling of the instant (sqlx's RFC 3339,
    /// `2026-12-07T10:50:28.444139+00:00`). The hash covers the instant, not its spelling: a
    /// row respelled by hand (`+01:00`, a space for `T`) still verifies, but would drop out of
    /// time-ranged queries, or be paged twice. `None` on the other backends, whose column is a
    /// time.
    occurred_at: Option<String>,
    /// The JSON columns, as SQL reads them (see [`reads_as_hashed`]).
    request_headers: Option<String>,
    extra: Option<String>,
}

/// [`StoredText`] of each row of a page (`condition`, in chain order, `len` of them), by id.
async fn stored_texts<C: ConnectionTrait>(
    db: &C,
    condition: Condition,
    len: usize,
) -> Result<HashMap<i64, StoredText>, Error> {
    use sea_orm::sea_query::Expr;
    let backend = db.get_database_backend();
    let text = |column: &str| match backend {
        sea_orm::DbBackend::MySql => Expr::cust(format!("CAST({column} AS CHAR)")),
        _ => Expr::cust(format!("CAST({column} AS TEXT)")),
    };
    let time = match backend {
        sea_orm::DbBackend::Sqlite => text("occurred_at"),
        _ => text("NULL"),
    };
    type Texts = (i64, Option<String>, Option<String>, Option<String>);
    let texts: Vec<Texts> = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Id)
        .column_as(time, "occurred_text")
        .column_as(text("request_headers"), "headers_text")
        .column_as(text("extra"), "extra_text")
        .filter(condition)
        .order_by_asc(audit_log::Column::ChainSeq)
        .limit(len as u64)
        .into_tuple()
        .all(db)
        .await?;
    Ok(texts
        .into_iter()
        .map(|(id, occurred_at, request_headers, extra)| {
            let stored = StoredText {
                occurred_at,
                request_headers,
                extra,
            };
            (id, stored)
        })
        .collect())
}

/// A row of a page that does not decode: its `id`, and its position when that decodes.
struct Unread {
    id: i64,
    seq: Option<i64>,
}

/// A page that did not decode, read again row by row, up to the first row that still does not.
/// Only tampering takes this path: a writer stores nothing its entity cannot read back.
async fn row_by_row<C: ConnectionTrait>(
    db: &C,
    page: Condition,
) -> Result<Vec<Result<audit_log::Model, Unread>>, Error> {
    let ids: Vec<i64> = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Id)
        .filter(page)
        .order_by_asc(audit_log::Column::ChainSeq)
        .limit(PAGE)
        .into_tuple()
        .all(db)
        .await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        match audit_log::Entity::find_by_id(id).one(db).await {
            Ok(Some(row)) => rows.push(Ok(row)),
            // Removed since the ids were read (a purge).
            Ok(None) => {}
            Err(error) if undecodable(&error) => {
                let seq = audit_log::Entity::find_by_id(id)
                    .select_only()
                    .column(audit_log::Column::ChainSeq)
                    .into_tuple::<Option<i64>>()
                    .one(db)
                    .await;
                let seq = match seq {
                    Ok(seq) => seq.flatten(),
                    Err(error) if undecodable(&error) => None,
                    Err(error) => return Err(error.into()),
                };
                rows.push(Err(Unread { id, seq }));
                break;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(rows)
}

/// The positions of `chain_id` that `options` selects (see [`VerifyOptions`]): those past the
/// first (every one when it is `None`), up to the second when there is one; `None` when the
/// range holds none of its rows and has an end. Without `from`, every position: also those
/// below 1, which no writer makes (a row forged there is a break, not a row left unread).
///
/// When a position among those the range bounds does not read (text, on SQLite), the bounds
/// are unknown: the span is then the whole chain, where that row is a break.
async fn span<C: ConnectionTrait>(
    db: &C,
    chain_id: &str,
    options: &VerifyOptions,
) -> Result<Option<(Option<i64>, Option<i64>)>, Error> {
    match bounded_span(db, chain_id, options).await {
        Ok(span) => Ok(span),
        Err(error) if undecodable(&error) => Ok(Some((None, None))),
        Err(error) => Err(error.into()),
    }
}

/// [`span`], from the bounds of the positions in range.
async fn bounded_span<C: ConnectionTrait>(
    db: &C,
    chain_id: &str,
    options: &VerifyOptions,
) -> Result<Option<(Option<i64>, Option<i64>)>, DbErr> {
    if options.from.is_none() && options.to.is_none() {
        return Ok(Some((None, None)));
    }
    let bounds = |condition: Condition| {
        audit_log::Entity::find()
            .select_only()
            .column_as(audit_log::Column::ChainSeq.min(), "first")
            .column_as(audit_log::Column::ChainSeq.max(), "last")
            .filter(audit_log::Column::ChainId.eq(chain_id))
            .filter(condition)
            .into_tuple::<(Option<i64>, Option<i64>)>()
            .one(db)
    };
    let mut arrived = Condition::all();
    let backend = db.get_database_backend();
    if let Some(from) = options.from {
        arrived = arrived.add(audit_log::Column::OccurredAt.gte(crate::store::time(backend, from)));
    }
    if let Some(to) = options.to {
        arrived = arrived.add(audit_log::Column::OccurredAt.lt(crate::store::time(backend, to)));
    }
    // The span starts at the row before its first position, trusted as a start, so that rows
    // deleted at the span's start still break the link to it; at the chain's start when no
    // row is before it.
    let start_before = |first: i64| async move {
        let below = bounds(Condition::all().add(audit_log::Column::ChainSeq.lt(first))).await?;
        Ok::<_, DbErr>(match below {
            Some((_, Some(previous))) => Some(previous.saturating_sub(1)),
            _ => None,
        })
    };
    Ok(match (bounds(arrived).await?, options.to) {
        (Some((Some(first), Some(last))), to) => {
            let after = match options.from {
                Some(_) => start_before(first).await?,
                None => None,
            };
            Some((after, to.map(|_| last)))
        }
        (_, Some(_)) => None,
        // Nothing arrived since `from`: the chain's end is still judged against its checkpoint.
        (_, None) => match bounds(Condition::all()).await? {
            Some((_, Some(last))) => Some((start_before(last).await?, None)),
            _ => Some((None, None)),
        },
    })
}

/// What the verifier needs of one chained row: its place, its links and whether its hash is one
/// the writer made (`None`: its key is not in the keyring).
pub(super) struct Link {
    pub(super) seq: i64,
    id: i64,
    /// `None` when `row_hash` or `prev_hash` was removed: a row the writer made has both.
    hashes: Option<Hashes>,
    key_id: Option<String>,
    valid: Option<bool>,
}

/// A row's own hash and the one it links to.
struct Hashes {
    hash: String,
    prev: String,
}

impl Link {
    /// `None` for a row outside any chain (no `chain_seq`).
    pub(super) fn of(row: &audit_log::Model, keys: &Keyring) -> Option<Self> {
        let seq = row.chain_seq?;
        let hashes = match (row.row_hash.as_deref(), row.prev_hash.as_deref()) {
            (Some(hash), Some(prev)) => Some(Hashes {
                hash: hash.to_owned(),
                prev: prev.to_owned(),
            }),
            _ => None,
        };
        let valid = hashes.as_ref().and_then(|h| {
            row.key_id
                .as_ref()
                .and_then(|k| keys.keys.get(k))
                .map(|key| row_hash(key, row) == h.hash)
        });
        Some(Link {
            seq,
            id: row.id,
            hashes,
            key_id: row.key_id.clone(),
            valid,
        })
    }
}

/// One chain judged row by row, in chain order: shared by [`verify`] and [`verify_export`].
pub(super) struct Walk {
    /// The first row is trusted as a start (a range that begins mid-chain).
    pub(super) trust_first: bool,
    /// The latest purge tombstone: `(last purged position, its hash)`.
    pub(super) tombstone: Option<(i64, String)>,
    /// The latest checkpoint: `(position, hash)`. Rows up to it are vouched for (an invalid hash
    /// there is a modification), and the row at its position must have its hash.
    pub(super) checkpoint: Option<(i64, String)>,
    /// The anchors given for this chain, `(position, hash)`: like the checkpoint's.
    pub(super) anchors: Vec<(i64, String)>,
    pub(super) previous: Option<(i64, String)>,
}

impl Walk {
    /// The `(position, hash)` of the anchors of `chain_id` among `anchors`: those of other
    /// chains say nothing about this one. The hash in lower case, the writer's: an anchor built
    /// by hand (its fields are public) in upper case still matches.
    pub(super) fn anchors_of(anchors: &[Anchor], chain_id: &str) -> Vec<(i64, String)> {
        anchors
            .iter()
            .filter(|a| a.chain_id == chain_id)
            .map(|a| (a.chain_seq, a.row_hash.to_ascii_lowercase()))
            .collect()
    }

    /// Judges the next row; the first break ends the walk.
    pub(super) fn step(&mut self, link: Link) -> Option<Break> {
        let Link {
            seq,
            id,
            hashes,
            key_id,
            valid,
        } = link;
        let broken = |kind, detail: String| Break {
            kind,
            chain_seq: seq,
            id: Some(id),
            detail,
        };
        if seq < 1 {
            // Positions start at 1: no writer made this row where it is.
            return Some(broken(
                BreakKind::Forged,
                format!("no chain has a position {seq}: positions start at 1"),
            ));
        }
        let checkpoint_seq = self
            .checkpoint
            .iter()
            .chain(&self.anchors)
            .map(|(vouched, _)| *vouched)
            .max()
            .unwrap_or(0);
        // A row with a place in the chain but no hashes: erased, or added without the key.
        let Some(Hashes { hash, prev }) = hashes else {
            let kind = if seq > checkpoint_seq {
                BreakKind::Forged
            } else {
                BreakKind::Modified
            };
            return Some(broken(
                kind,
                "the row has a chain position but no row_hash or prev_hash".into(),
            ));
        };
        if self.previous.is_none()
            && let Some((t_seq, _)) = &self.tombstone
            && seq <= *t_seq
        {
            // Retention removes only a prefix of a chain (see `purge_before`), so a tombstone
            // can never be at or past a row that is still there: it was written to hide a tail.
            return Some(Break {
                kind: BreakKind::BadCheckpoint,
                chain_seq: *t_seq,
                id: None,
                detail: format!(
                    "a purge tombstone claims positions up to {t_seq} were purged, but row {seq} \
                     (id {id}) is still there"
                ),
            });
        }
        let Some(valid) = valid else {
            return Some(match &key_id {
                Some(key_id) => broken(
                    BreakKind::UnknownKey,
                    format!("key id {key_id:?} is not in the keyring"),
                ),
                // No writer seals a row without naming its key: erased, or added by hand, as a
                // row without hashes is.
                None => broken(
                    if seq > checkpoint_seq {
                        BreakKind::Forged
                    } else {
                        BreakKind::Modified
                    },
                    "the row names no key id: no writer seals a row without one".into(),
                ),
            });
        };
        let (expected_seq, expected_prev) = match &self.previous {
            Some((p_seq, p_hash)) => match p_seq.checked_add(1) {
                Some(next) => (next, p_hash.as_str()),
                // Rows come in order of position: this one is at the highest too (a copy).
                None => {
                    return Some(broken(
                        BreakKind::Reordered,
                        "a second row at the highest position there is".into(),
                    ));
                }
            },
            // The first row checked: a start of the chain, or right after purged rows, or the
            // start of a range.
            None => match &self.tombstone {
                Some((t_seq, t_hash)) if seq == t_seq + 1 => (seq, t_hash.as_str()),
                _ if self.trust_first => (seq, prev.as_str()),
                _ => (1, GENESIS),
            },
        };
        let links = expected_prev == prev;
        // The first row checked fails its hash as every row does under a wrong key.
        let or_key = match &key_id {
            Some(key_id) if self.previous.is_none() => {
                format!(", or key {key_id:?} is not the one it was sealed with")
            }
            _ => String::new(),
        };
        let found = if seq > expected_seq {
            Some(broken(
                BreakKind::Deleted,
                format!("positions {expected_seq}..{} are missing", seq - 1),
            ))
        } else if !valid && (!links || seq > checkpoint_seq) {
            Some(broken(
                BreakKind::Forged,
                format!("the hash is not one the writer made{or_key}"),
            ))
        } else if !valid {
            Some(broken(
                BreakKind::Modified,
                format!("the row's content does not match its hash{or_key}"),
            ))
        } else if !links {
            Some(broken(
                BreakKind::Reordered,
                "the row links to another row than the one before it".into(),
            ))
        } else if self
            .checkpoint
            .as_ref()
            .is_some_and(|(cp_seq, cp_hash)| *cp_seq == seq && *cp_hash != hash)
        {
            // A valid, linked row, but not the one the checkpoint saw: only a holder of the
            // HMAC key makes these, rewriting the chain up to here.
            Some(broken(
                BreakKind::BadCheckpoint,
                "the checkpoint vouches for another row at this position".into(),
            ))
        } else if self
            .anchors
            .iter()
            .any(|(a_seq, a_hash)| *a_seq == seq && *a_hash != hash)
        {
            Some(broken(
                BreakKind::BadCheckpoint,
                "an anchor holds another hash for this position: the chain was rewritten".into(),
            ))
        } else {
            None
        };
        if found.is_none() {
            self.previous = Some((seq, hash));
        }
        found
    }

    /// After the last row, at `last_seq`, of a walk that found no break and read to the chain's
    /// end: are rows gone from the end that `checkpoint` (the latest) or an anchor vouched for?
    pub(super) fn ended(
        &self,
        checkpoint: Option<&audit_checkpoint::Model>,
        last_seq: i64,
    ) -> Option<Break> {
        checkpoint
            .and_then(|cp| self.truncated(cp, last_seq))
            .or_else(|| self.anchor_past_end(last_seq))
    }

    /// Where the chain's rows end after a walk whose last row is at `last_seq`: there, or, with
    /// no row walked, at the purge tombstone's position, or 0.
    fn end(&self, last_seq: i64) -> i64 {
        match (&self.previous, &self.tombstone) {
            (Some(_), _) => last_seq,
            (None, Some((seq, _))) => *seq,
            (None, None) => 0,
        }
    }

    /// After the last row: does `checkpoint` vouch for rows that are gone? Rows a purge
    /// tombstone accounts for are not missing, but a tombstone speaks only for a chain with no
    /// row left: [`step`](Self::step) already refused one at or past a remaining row.
    fn truncated(&self, checkpoint: &audit_checkpoint::Model, last_seq: i64) -> Option<Break> {
        let end = self.end(last_seq);
        (checkpoint.chain_seq > end).then(|| Break {
            kind: BreakKind::TruncatedTail,
            chain_seq: end + 1,
            id: None,
            detail: format!(
                "the checkpoint of {} vouches for rows up to {}, the rows end at {end}",
                checkpoint.created_at, checkpoint.chain_seq
            ),
        })
    }

    /// After the last row: does an anchor stand past the chain's end? Its rows were deleted,
    /// with whatever checkpoints vouched for them.
    fn anchor_past_end(&self, last_seq: i64) -> Option<Break> {
        let end = self.end(last_seq);
        let furthest = self.anchors.iter().map(|(seq, _)| *seq).max()?;
        (furthest > end).then(|| Break {
            kind: BreakKind::TruncatedTail,
            chain_seq: end + 1,
            id: None,
            detail: format!("an anchor stands at position {furthest}, the rows end at {end}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Hook = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

    /// What a test runs while `verify` reads a chain, between its marks and its rows.
    static BETWEEN: std::sync::Mutex<Option<(String, Hook)>> = std::sync::Mutex::new(None);

    pub(super) async fn between_the_marks_and_the_rows(chain_id: &str) {
        let hook = {
            let mut between = BETWEEN.lock().expect("hook");
            match &*between {
                Some((chain, _)) if chain == chain_id => between.take(),
                _ => None,
            }
        };
        if let Some((_, hook)) = hook {
            hook.await;
        }
    }

    /// Found by a probe: a purge that ran while `verify` read a chain deleted rows past the
    /// tombstone `verify` had read, and the chain read as `Deleted` (exit 4); run after the
    /// purge, `verify` said intact. Each chain is now read in one snapshot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_purge_while_a_chain_is_read_is_no_break() {
        use sea_orm::{ActiveValue, EntityTrait};

        const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let db = crate::connect(&url).await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        let mut chain = super::super::chain::Chain::new(super::super::Integrity::new(
            "snapshot",
            "k1",
            KEY.to_vec(),
        ));
        let start = Utc::now() - chrono::Duration::days(1);
        let start = DateTime::from_timestamp_micros(start.timestamp_micros()).expect("time");
        let mut rows: Vec<audit_log::Model> = (0..10)
            .map(|i| audit_log::Model {
                record_id: format!("rec-{i}"),
                path: format!("/{i}"),
                occurred_at: start + chrono::Duration::seconds(i),
                ..crate::writer::null_row()
            })
            .collect();
        chain.seal(&db, &mut rows).await.expect("seal");
        let active = rows.iter().cloned().map(|row| {
            let mut active = audit_log::ActiveModel::from(row);
            active.id = ActiveValue::NotSet;
            active
        });
        audit_log::Entity::insert_many(active)
            .exec(&db)
            .await
            .expect("insert");
        // A connection of its own: the verifying one holds its snapshot meanwhile.
        let purging = crate::connect(&url).await.expect("db");
        let cutoff = start + chrono::Duration::seconds(5);
        *BETWEEN.lock().expect("hook") = Some((
            "snapshot".to_owned(),
            Box::pin(async move {
                let purged = crate::store::purge_before(
                    &purging,
                    cutoff,
                    crate::store::PurgeOptions::new().allow_recent(true),
                )
                .await
                .expect("purge");
                assert_eq!(purged.deleted, 5);
            }),
        ));
        let keys = Keyring::new().key("k1", KEY.to_vec());
        let options = VerifyOptions::default();
        let during = verify(&db, &keys, options.clone()).await.expect("verify");
        assert!(BETWEEN.lock().expect("hook").is_none(), "the purge ran");
        assert!(during.is_intact(), "{during}");
        assert_eq!(during.chains[0].rows, 10, "{during}");
        let after = verify(&db, &keys, options).await.expect("verify");
        assert!(after.is_intact(), "{after}");
        assert_eq!(after.chains[0].rows, 5, "{after}");
    }

    /// An anchor as the writer logs it (`chain@seq=hash`) parses back to itself whatever the
    /// chain id holds: the writer takes any text as a chain id, `=` and `@` too.
    #[test]
    fn anchors_round_trip_whatever_their_chain_id() {
        for chain_id in ["api-1", "api@eu", "svc=api", "a@1=b", "x=y@z=", "=", "@"] {
            let anchor = Anchor {
                chain_id: chain_id.to_owned(),
                chain_seq: 1520,
                row_hash: format!("v1:{}", "9f3c".repeat(16)),
            };
            assert_eq!(anchor.to_string().parse(), Ok(anchor.clone()), "{anchor}");
        }
    }

    /// An anchor's hash is read in either case and kept as the writer writes it; one that has
    /// not the writer's form is refused (it matched no row, and read as a rewritten chain).
    /// A chain id of control characters (a forged `intact` line after a carriage return and
    /// an erase) is shown escaped by the report's `Display`, for a program that prints it.
    #[test]
    fn a_reports_display_escapes_what_a_terminal_obeys() {
        let forged = "zz\r\u{1b}[1A\u{1b}[2Kapi-1: intact (30 rows, up to seq 30)\nx";
        let report = VerifyReport {
            chains: vec![ChainReport {
                chain_id: forged.to_owned(),
                rows: 1,
                last_seq: 1,
                last_hash: None,
                checkpoint_seq: None,
                first_break: Some(Break {
                    kind: BreakKind::Forged,
                    chain_seq: 1,
                    id: Some(31),
                    detail: "key id \"\u{202e}k9\" is not in the keyring".to_owned(),
                }),
            }],
        };
        let shown = report.to_string();
        assert_eq!(shown.lines().count(), 1, "{shown}");
        assert!(!shown.contains(['\r', '\u{1b}', '\u{202e}']), "{shown:?}");
        assert!(shown.starts_with("zz\\r\\u{1b}[1A"), "{shown}");
    }

    #[test]
    fn anchor_hashes_have_the_writers_form() {
        let hex = "d30ea3".repeat(10) + "0f9e";
        let anchor: Result<Anchor, _> = format!("api-1@30=V1:{}", hex.to_uppercase()).parse();
        assert_eq!(anchor.map(|a| a.row_hash), Ok(format!("v1:{hex}")));
        for bad in [
            "api-1@30=xx".to_owned(),
            format!("api-1@30={hex}"),
            format!("api-1@30=v2:{hex}"),
            format!("api-1@30=v1:{}", &hex[1..]),
            format!("api-1@30=v1:{hex}0"),
            format!("api-1@30=v1:{}g", &hex[1..]),
        ] {
            let refused = bad.parse::<Anchor>().unwrap_err();
            assert!(refused.contains("64 hex digits"), "{bad}: {refused}");
        }
    }

    /// A row at the highest position there is (the writer seals one there after a row forged
    /// at `i64::MAX - 1`, see ca7dc3e), its line copied twice into an export: the copy's
    /// expected position, one past it, overflowed (a panic with overflow checks, `i64::MIN`
    /// without, and "positions -9223372036854775808..… are missing").
    #[test]
    fn a_row_after_the_highest_position_is_a_break_not_an_overflow() {
        let link = |seq: i64, hash: &str, prev: &str| Link {
            seq,
            id: 7,
            hashes: Some(Hashes {
                hash: hash.to_owned(),
                prev: prev.to_owned(),
            }),
            key_id: Some("k1".to_owned()),
            valid: Some(true),
        };
        let mut walk = Walk {
            trust_first: true,
            tombstone: None,
            checkpoint: None,
            anchors: Vec::new(),
            previous: None,
        };
        assert!(walk.step(link(i64::MAX - 1, "a", "genesis")).is_none());
        assert!(walk.step(link(i64::MAX, "b", "a")).is_none());
        let found = walk.step(link(i64::MAX, "b", "a")).expect("a break");
        assert_eq!(
            (found.kind, found.chain_seq),
            (BreakKind::Reordered, i64::MAX),
            "{found:?}"
        );
    }
}
