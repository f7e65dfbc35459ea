//! Verifying an NDJSON export offline: [`verify_export`], [`verify_export_with_anchors`].

use std::collections::BTreeMap;
use std::io::BufRead;

use super::Keyring;
use super::verify::{Anchor, ChainReport, Link, VerifyReport, Walk, unsigned};
use crate::Error;
use crate::entity::{audit_checkpoint, audit_log};

/// What an export says about one chain.
#[derive(Default)]
struct Exported {
    links: Vec<Link>,
    checkpoint: Option<audit_checkpoint::Model>,
    tombstone: Option<audit_checkpoint::Model>,
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
/// prefix). Rows dropped from the end of the file show as
/// [`BreakKind::TruncatedTail`](super::BreakKind::TruncatedTail) as long as a checkpoint line
/// vouches for them; rows cut together with the checkpoint lines show only against an
/// [`Anchor`] kept elsewhere: see [`verify_export_with_anchors`]. Rows outside any chain are not
/// checked. Holds a few dozen bytes per chained row.
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
/// a checkpoint of an NDJSON export with the table's column names.
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
            let mark = serde_json::from_str::<Proof>(line)
                .map_err(invalid)?
                .checkpoint;
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
        let row: audit_log::Model = serde_json::from_str(line).map_err(invalid)?;
        if let (Some(chain_id), Some(link)) = (&row.chain_id, Link::of(&row, keys)) {
            chains.entry(chain_id.clone()).or_default().links.push(link);
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
            .push(verify_chain(chain_id, chain, keys, anchors));
    }
    Ok(report)
}

fn verify_chain(
    chain_id: String,
    mut chain: Exported,
    keys: &Keyring,
    anchors: &[Anchor],
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
    if let Some(found) = unsigned(keys, chain.checkpoint.as_ref(), chain.tombstone.as_ref()) {
        report.first_break = Some(found);
        return report;
    }
    // An export is in time order; a chain is judged in its own order.
    chain.links.sort_by_key(|link| link.seq);
    let mut walk = Walk {
        // A tombstone in the proof says where the exported chain starts.
        trust_first: chain.tombstone.is_none(),
        tombstone: chain.tombstone.map(|t| (t.chain_seq, t.row_hash)),
        checkpoint: chain
            .checkpoint
            .as_ref()
            .map(|cp| (cp.chain_seq, cp.row_hash.clone())),
        anchors,
        previous: None,
    };
    for link in chain.links {
        report.rows += 1;
        report.last_seq = link.seq;
        if let Some(found) = walk.step(link) {
            report.first_break = Some(found);
            break;
        }
    }
    if report.first_break.is_none() {
        report.first_break = walk.ended(chain.checkpoint.as_ref(), report.last_seq);
    }
    report.last_hash = walk.previous.map(|(_, hash)| hash);
    report
}
