//! Tamper evidence: every row carries an HMAC-SHA256 that chains it to the previous row of its
//! writer, checkpoints record where each chain stood, and [`verify`] re-derives it all.
//!
//! - **Chain**: each writer has its own chain (a configured `chain_id`). A row's `row_hash` is the
//!   HMAC, under the writer's key, of a canonical, versioned encoding of every stored column
//!   (except `id`, assigned later by the database, and `chain_seq`) and of the previous row's
//!   hash. It is computed in the writer, so the request path pays nothing. A restarted writer
//!   continues its chain from the database.
//! - **Checkpoints**: periodically and at shutdown the writer stores the chain's last position
//!   and hash in `audit_checkpoint`, optionally signed with Ed25519.
//! - **Verification** reports the first break of each chain: a modified row, a deleted row (a
//!   gap in `chain_seq`), a forged row, reordered rows, or a tail truncated behind a checkpoint.
//!   [`verify_export`] does the same offline, on an NDJSON export written with
//!   [`Export::with_proof`](crate::store::Export::with_proof); [`verify_export_with_anchors`]
//!   also checks it against [`Anchor`]s, as [`VerifyOptions::anchors`] does the database, and
//!   [`verify_export_from_start`] also reports rows cut from the start of an export of whole
//!   chains.
//!
//! Keys never reach the database: they come from your configuration or the environment
//! ([`Integrity::from_env`], [`Keyring::from_env`]). Rotate by giving the writer a new key id; keep the old keys in
//! the [`Keyring`] used to verify.
//!
//! # Example
//!
//! ```no_run
//! use tower_audit::integrity::{Integrity, Keyring, verify};
//!
//! # async fn run(db: sea_orm::DatabaseConnection) -> Result<(), tower_audit::Error> {
//! let integrity = Integrity::new("api-1", "k2026", b"32 random bytes from your vault..".to_vec());
//! let (layer, guard) = tower_audit::AuditLayer::builder(db.clone())
//!     .integrity(integrity.clone())
//!     .build()?;
//! # let _ = (layer, guard);
//! // Later, or from the CLI: `tower-audit verify`.
//! let report = verify(&db, &Keyring::from(&integrity), Default::default()).await?;
//! assert!(report.is_intact(), "{report}");
//! # Ok(())
//! # }
//! ```

mod chain;
mod export;
mod json_text;
mod key;
mod verify;

pub use chain::{CHAIN_REPLACED, signed_message, signed_purge_message};
pub(crate) use chain::{Chain, noted_first_place};
pub use export::{verify_export, verify_export_from_start, verify_export_with_anchors};
pub use key::{Integrity, Keyring};
pub(crate) use key::{MIN_KEY_BYTES, encode_hex};
pub(crate) use verify::signature_ok;
pub use verify::{Anchor, Break, BreakKind, ChainReport, VerifyOptions, VerifyReport, verify};
