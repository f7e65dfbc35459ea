//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong while setting up, stopping or reading the audit trail.
///
/// Auditing never fails a request on its own account, so this type never reaches a client: it is
/// returned by start-up calls ([`migrate`](crate::migrate), [`AuditLayerBuilder::build`]), by
/// [`WriterGuard::shutdown`] and by the [`store`](crate::store) functions.
///
/// [`AuditLayerBuilder::build`]: crate::AuditLayerBuilder::build
/// [`WriterGuard::shutdown`]: crate::WriterGuard::shutdown
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused a statement or could not be reached.
    #[error("audit database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// [`AuditLayerBuilder::build`](crate::AuditLayerBuilder::build) was called outside a Tokio
    /// runtime, so the writer could not be started. Use
    /// [`build_pair`](crate::AuditLayerBuilder::build_pair) to run the worker on your own executor.
    #[error("the audit writer needs a Tokio runtime; call build() inside one, or use build_pair()")]
    NoRuntime,
    /// The writer did not finish within the shutdown deadline.
    #[error("the audit writer did not stop within {0:?}")]
    ShutdownTimeout(Duration),
    /// The writer task ended without reporting (it panicked or was never polled).
    #[error("the audit writer is gone: {0}")]
    WriterGone(String),
    /// The journal could not be opened.
    #[error("cannot open the audit journal {path}: {source}")]
    Journal {
        /// The journal's path.
        path: std::path::PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A builder setting is out of its range, or the settings do not fit together (see
    /// [`AuditLayerBuilder`](crate::AuditLayerBuilder)); the message names the setting.
    #[error("invalid audit layer configuration: {0}")]
    Config(String),
    /// A purge cutoff falls within the minimum retention; set
    /// [`PurgeOptions::allow_recent`](crate::store::PurgeOptions::allow_recent) to purge anyway.
    #[error(
        "refusing to purge rows newer than the minimum retention of {} days (cutoff {}); allow recent rows explicitly (--allow-recent) to do so",
        min_retention.as_secs() / 86_400,
        cutoff.format("%Y-%m-%dT%H:%M:%SZ")
    )]
    RecentPurge {
        /// The cutoff asked for.
        cutoff: chrono::DateTime<chrono::Utc>,
        /// The minimum retention in force.
        min_retention: Duration,
    },
    /// A page cursor that this crate did not produce.
    #[error("invalid page cursor {0:?}")]
    InvalidCursor(String),
    /// A line of an export is neither a row nor a checkpoint of an NDJSON export with the
    /// table's column names.
    #[error("line {line} of the export: {reason}")]
    InvalidExport {
        /// The line, counted from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A row holds a value its column's type cannot hold (SQLite checks no types: whoever can
    /// write the file can store one; no writer does), so it cannot be read as a row. An
    /// [`Export`](crate::store::Export) writes such a row as stored instead, and
    #[cfg_attr(
        feature = "integrity",
        doc = "[`verify`](fn@crate::integrity::verify) reports it as a break."
    )]
    #[cfg_attr(
        not(feature = "integrity"),
        doc = "`integrity::verify` (feature `integrity`) reports it as a break."
    )]
    #[error("{0}")]
    UnreadableRow(crate::store::UnreadableValue),
    /// Writing an export failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
