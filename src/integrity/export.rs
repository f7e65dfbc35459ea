//! Verifying an NDJSON export offline: [`verify_export`], [`verify_export_with_anchors`].

use std::collections::BTreeMap;
use std::io::BufRead;

use super::Keyring;
use super::json_text::reads_as_hashed;
use super::verify::{Anchor, Break, BreakKind, ChainReport, Link, VerifyReport, Walk, unsigned};
use crate::Error;
use crate::entity::{audit_checkpoint, audit_log};
use crate::store::FIELDS;

/// A row the export wrote as stored, holding values its columns cannot hold (see
/// [`ExportReport::unreadable`](crate::store::ExportReport::unreadable)).
struct Unread {
    id: Option<i64>,
    /// Its position, where it reads.
    seq: Option<i64>,
    /// Where the database's order put it among the positions: a real planted in `chain_seq`
    /// among the integers, anything else after them (SQLite's order).
    order: f64,
    /// Why a row that reads is not taken as it reads (see [`reads_as_hashed`]).
    misread: Option<String>,
}

/// What an export says about one chain.
#[derive(Default)]
struct Exported {
    links: Vec<Link>,
    /// Rows written as stored: they hold values their columns cannot hold.
    unread: Vec<Unread>,
    checkpoint: Option<audit_checkpoint::Model>,
    tombstone: Option<audit_checkpoint::Model>,
    /// The first checkpoint or tombstone of the proof written as stored: `(id, position)`.
    unread_mark: Option<(Option<i64>, i64)>,
}

/// Verifies an NDJSON export written with
/// [`Export::with_proof`](crate::store::Export::with_proof), without the database: re-derives
/// each row's HMAC from its exported fields, checks that each chain's rows link up, and that the
/// last checkpoint of the proof (and its purge tombstone) is signed (with
/// [`Keyring::checkpoint_key`]) and matches its row.
///
/// The export may start in the middle of a chain (a time range): its first row is trusted as a
/// start, unless the proof holds a purge tombstone, which then says where the chain starts (a
/// tombstone at or past an exported row is a
/// [`BreakKind::BadCheckpoint`](super::BreakKind::BadCheckpoint): a purge only removes a
/// prefix). So rows cut from the start of the file do not show here: for an export of whole
/// chains, [`verify_export_from_start`] reports them. Rows dropped from the end of the file show as
/// [`BreakKind::TruncatedTail`](super::BreakKind::TruncatedTail) as long as a checkpoint line
/// vouches for them; rows cut together with the checkpoint lines show only against an
/// [`Anchor`] kept elsewhere: see [`verify_export_with_anchors`]. Rows outside any chain are not
/// checked. A row holding values its columns cannot hold, which an export writes as stored (see
/// [`ExportReport::unreadable`](crate::store::ExportReport::unreadable)), is a
/// [`BreakKind::Modified`](super::BreakKind::Modified) where the database's order puts it, as
/// [`verify`](fn@super::verify) reports it in the database. Holds a few dozen bytes per chained
/// row.
///
/// # Example
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_audit::integrity::{Keyring, verify_export};
///
/// let file = std::io::BufReader::new(std::fs::File::open("trail.ndjson")?);
/// let report = verify_export(file, &Keyring::from_env()?)?;
/// assert!(report.is_intact(), "{report}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Io`] when reading fails, [`Error::InvalidExport`] when a line is neither a row nor
/// a checkpoint of an NDJSON export with the table's column names, [`Error::Config`] when
/// `keys` holds a key shorter than a writer takes ([`Keyring::key`]).
pub fn verify_export<R: BufRead>(reader: R, keys: &Keyring) -> Result<VerifyReport, Error> {
    verify_export_with_anchors(reader, keys, &[])
}

/// [`verify_export`], with positions and hashes kept outside the database and the file (see
/// [`Anchor`]), as [`VerifyOptions::anchors`](super::VerifyOptions::anchors) gives them to
/// [`verify`](fn@super::verify): each must still be in its chain in the file, with its hash.
///
/// A chain that ends in the file before one of its anchors is a
/// [`BreakKind::TruncatedTail`](super::BreakKind::TruncatedTail), even when no checkpoint line
/// vouches for the rows cut (they were cut too), and even when the file holds no row or
/// checkpoint of that chain at all: a chain an anchor names is always reported. Another row at an
/// anchor's position is a [`BreakKind::BadCheckpoint`](super::BreakKind::BadCheckpoint) (a chain
/// rewritten with the HMAC key). An anchor applies only to its own chain. Give anchors within
/// the exported positions: one past the end of an export of a time range is a truncated tail,
/// and one before the file's first row of its chain is not checked.
///
/// # Example
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_audit::integrity::{Anchor, Keyring, verify_export_with_anchors};
///
/// // From the writer's checkpoint log, shipped elsewhere (`tower_audit::checkpoint`).
/// let anchor: Anchor = "api-1@1520=v1:9f3c…".parse()?;
/// let file = std::io::BufReader::new(std::fs::File::open("trail.ndjson")?);
/// let report = verify_export_with_anchors(file, &Keyring::from_env()?, &[anchor])?;
/// assert!(report.is_intact(), "{report}");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`verify_export`].
pub fn verify_export_with_anchors<R: BufRead>(
    reader: R,
    keys: &Keyring,
    anchors: &[Anchor],
) -> Result<VerifyReport, Error> {
    read_export(reader, keys, anchors, false)
}

/// [`verify_export_with_anchors`], for an export of whole chains (no time range): each chain's
/// first row in the file must be its first position, or the one after its purge tombstone.
/// Rows cut from the start of the file are then a
/// [`BreakKind::Deleted`](super::BreakKind::Deleted), where the other two functions take the
/// file's first row of a chain as the start of a range.
///
/// # Errors
///
/// As [`verify_export`].
pub fn verify_export_from_start<R: BufRead>(
    reader: R,
    keys: &Keyring,
    anchors: &[Anchor],
) -> Result<VerifyReport, Error> {
    read_export(reader, keys, anchors, true)
}

/// Reads an export and verifies each chain in it; `from_start` when the export holds whole
/// chains.
fn read_export<R: BufRead>(
    reader: R,
    keys: &Keyring,
    anchors: &[Anchor],
    from_start: bool,
) -> Result<VerifyReport, Error> {
    keys.check()?;
    let mut chains: BTreeMap<String, Exported> = BTreeMap::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let invalid = |error: serde_json::Error| Error::InvalidExport {
            line: number as u64 + 1,
            reason: error.to_string(),
        };
        if line.starts_with("{\"checkpoint\":") {
            #[derive(serde::Deserialize)]
            struct Proof {
                checkpoint: audit_checkpoint::Model,
            }
            let mark = match serde_json::from_str::<Proof>(line) {
                Ok(proof) => proof.checkpoint,
                Err(error) => {
                    let (chain_id, mark) = unread_mark(line).ok_or_else(|| invalid(error))?;
                    let chain = chains.entry(chain_id).or_default();
                    chain.unread_mark = chain.unread_mark.or(Some(mark));
                    continue;
                }
            };
            let chain = chains.entry(mark.chain_id.clone()).or_default();
            let latest = if mark.kind == "purge" {
                &mut chain.tombstone
            } else {
                &mut chain.checkpoint
            };
            if latest.as_ref().is_none_or(|m| m.chain_seq < mark.chain_seq) {
                *latest = Some(mark);
            }
            continue;
        }
        let row: audit_log::Model = match serde_json::from_str(line) {
            Ok(row) => row,
            Err(error) => {
                let (chain_id, unread) = unread_row(line).ok_or_else(|| invalid(error))?;
                if let Some(chain_id) = chain_id {
                    chains.entry(chain_id).or_default().unread.push(unread);
                }
                continue;
            }
        };
        if let (Some(chain_id), Some(link)) = (&row.chain_id, Link::of(&row, keys)) {
            let chain = chains.entry(chain_id.clone()).or_default();
            match reads_as_hashed(line) {
                Ok(()) => chain.links.push(link),
                Err(reason) => chain.unread.push(Unread {
                    id: Some(row.id),
                    seq: Some(link.seq),
                    order: link.seq as f64,
                    misread: Some(reason),
                }),
            }
        }
    }
    // A chain cut whole from the file, checkpoints too, is still named by its anchors.
    for anchor in anchors {
        chains.entry(anchor.chain_id.clone()).or_default();
    }
    let mut report = VerifyReport::default();
    for (chain_id, chain) in chains {
        report
            .chains
            .push(verify_chain(chain_id, chain, keys, anchors, from_start));
    }
    Ok(report)
}

fn verify_chain(
    chain_id: String,
    mut chain: Exported,
    keys: &Keyring,
    anchors: &[Anchor],
    from_start: bool,
) -> ChainReport {
    let anchors = Walk::anchors_of(anchors, &chain_id);
    let mut report = ChainReport {
        chain_id,
        rows: 0,
        last_seq: 0,
        last_hash: None,
        checkpoint_seq: chain.checkpoint.as_ref().map(|c| c.chain_seq),
        first_break: None,
    };
    if let Some((id, seq)) = chain.unread_mark {
        // As `verify` reports a latest checkpoint that does not read in the database.
        let id = id.map(|id| format!(" {id}")).unwrap_or_default();
        report.first_break = Some(Break {
            kind: BreakKind::BadCheckpoint,
            chain_seq: seq,
            id: None,
            detail: format!("checkpoint{id} cannot be read: a value does not fit its column"),
        });
        return report;
    }
    if let Some(found) = unsigned(keys, chain.checkpoint.as_ref(), chain.tombstone.as_ref()) {
        report.first_break = Some(found);
        return report;
    }
    // An export is in time order; a chain is judged in its own order.
    chain.links.sort_by_key(|link| link.seq);
    chain.unread.sort_by(|a, b| a.order.total_cmp(&b.order));
    let mut unread = chain.unread.into_iter().peekable();
    let mut walk = Walk {
        // A tombstone in the proof says where the exported chain starts; so does an export
        // of whole chains.
        trust_first: chain.tombstone.is_none() && !from_start,
        tombstone: chain.tombstone.map(|t| (t.chain_seq, t.row_hash)),
        checkpoint: chain
            .checkpoint
            .as_ref()
            .map(|cp| (cp.chain_seq, cp.row_hash.clone())),
        anchors,
        previous: None,
    };
    for link in chain.links {
        if let Some(row) = unread.next_if(|row| row.order <= link.seq as f64) {
            report.first_break = Some(unreadable(row, &mut report));
            break;
        }
        report.rows += 1;
        report.last_seq = link.seq;
        if let Some(found) = walk.step(link) {
            report.first_break = Some(found);
            break;
        }
    }
    if report.first_break.is_none()
        && let Some(row) = unread.next()
    {
        report.first_break = Some(unreadable(row, &mut report));
    }
    if report.first_break.is_none() {
        report.first_break = walk.ended(chain.checkpoint.as_ref(), report.last_seq);
    }
    report.last_hash = walk.previous.map(|(_, hash)| hash);
    report
}

/// A row line that holds values its columns cannot hold, as an export writes such a row (as
/// stored): its chain, where it has one, and its place. `None` for a line that is no row of the
/// table's columns.
fn unread_row(line: &str) -> Option<(Option<String>, Unread)> {
    use serde_json::Value;
    let Value::Object(fields) = serde_json::from_str(line).ok()? else {
        return None;
    };
    if !FIELDS.iter().all(|(name, _)| fields.contains_key(*name)) {
        return None;
    }
    let chain_id = match (&fields["chain_id"], &fields["chain_seq"]) {
        // Outside any chain, as a row that reads is.
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::String(name), _) => Some(name.clone()),
        (other, _) => Some(other.to_string()),
    };
    let seq = &fields["chain_seq"];
    let unread = Unread {
        id: fields["id"].as_i64(),
        seq: seq.as_i64(),
        order: seq.as_f64().unwrap_or(f64::INFINITY),
        misread: None,
    };
    Some((chain_id, unread))
}

/// A checkpoint line that holds values its columns cannot hold, as an export writes one (as
/// stored): its chain, and its `(id, position)` (0 where that does not read). `None` for a line
/// that is no checkpoint of the table's columns.
fn unread_mark(line: &str) -> Option<(String, (Option<i64>, i64))> {
    use serde_json::Value;
    let Value::Object(mut line) = serde_json::from_str(line).ok()? else {
        return None;
    };
    let Value::Object(mark) = line.remove("checkpoint")? else {
        return None;
    };
    let columns = [
        "id",
        "chain_id",
        "chain_seq",
        "row_hash",
        "kind",
        "created_at",
    ];
    if !columns.iter().all(|name| mark.contains_key(*name)) {
        return None;
    }
    let chain_id = match &mark["chain_id"] {
        Value::String(name) => name.clone(),
        other => other.to_string(),
    };
    let place = (mark["id"].as_i64(), mark["chain_seq"].as_i64().unwrap_or(0));
    Some((chain_id, place))
}

/// The break a row that cannot be read is, where the walk of `report` reached it.
fn unreadable(row: Unread, report: &mut ChainReport) -> Break {
    // Positions are not known past the last row read: name the next one.
    let (seq, whose) = match row.seq {
        Some(seq) => (seq, ""),
        None => (report.last_seq.saturating_add(1), " nor its position"),
    };
    report.rows += 1;
    report.last_seq = seq;
    let detail = match row.misread {
        Some(reason) => format!(
            "the exported row reads otherwise than its hash covers it, in a JSON reader that \
             keeps what serde_json drops: {reason}"
        ),
        None => format!("the exported row cannot be read{whose}: a value does not fit its column"),
    };
    Break {
        kind: BreakKind::Modified,
        chain_seq: seq,
        id: row.id,
        detail,
    }
}
