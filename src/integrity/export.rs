//! Verifying an NDJSON export offline: [`verify_export`].

use std::collections::BTreeMap;
use std::io::BufRead;

use super::Keyring;
use super::verify::{ChainReport, Link, VerifyReport, Walk, unsigned};
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
/// vouches for them. Rows outside any chain are not checked. Holds a few
/// dozen bytes per chained row.
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
    let mut report = VerifyReport::default();
    for (chain_id, chain) in chains {
        report.chains.push(verify_chain(chain_id, chain, keys));
    }
    Ok(report)
}

fn verify_chain(chain_id: String, mut chain: Exported, keys: &Keyring) -> ChainReport {
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
        anchors: Vec::new(),
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
    if report.first_break.is_none()
        && let Some(cp) = &chain.checkpoint
    {
        report.first_break = walk.truncated(cp, report.last_seq);
    }
    report.last_hash = walk.previous.map(|(_, hash)| hash);
    report
}
