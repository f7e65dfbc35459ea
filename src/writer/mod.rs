//! The background writer: a bounded queue from the request path, a worker that batches records
//! into the database, and the [`WriterGuard`] that reports on it and shuts it down.
//!
//! The request path only ever pushes onto a lock-free bounded queue; it never waits for the
//! database. The worker wakes when a batch is full or when the flush interval passes, sanitizes and
//! converts the records, and inserts each batch in one transaction, retrying with backoff and jitter
//! while it keeps the batch. When the queue is full the [`Overflow`] policy decides, and every
//! dropped record is counted in [`WriterStats`] and logged.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_audit::AuditLayer;
//!
//! # async fn run() -> Result<(), tower_audit::Error> {
//! let db = tower_audit::connect("sqlite://audit.db?mode=rwc").await?;
//! tower_audit::migrate(&db).await?;
//! let (layer, guard) = AuditLayer::builder(db).build()?;
//! # let _ = layer;
//! // ... serve requests with `layer` ...
//! let report = guard.shutdown(Duration::from_secs(5)).await?;
//! assert_eq!(report.lost, 0);
//! # Ok(())
//! # }
//! ```

mod guard;
mod intake;
mod row;
mod sink;
mod stats;
mod worker;

pub use guard::{ShutdownReport, WriterGuard};
pub use stats::WriterStats;
pub use worker::AuditWriter;

pub(crate) use intake::{Channel, Intake};
pub(crate) use worker::{Worker, WriterConfig};

/// What the request path does when the writer's queue is full.
///
/// | policy | the new record | the request |
/// | --- | --- | --- |
/// | [`DropNewest`](Overflow::DropNewest) (default) | dropped, counted in `dropped`, logged | served as usual |
/// | [`DropOldest`](Overflow::DropOldest) | queued; the oldest queued record is dropped and counted | served as usual |
///
/// `DropNewest` is the default because it keeps the records already waiting (they are older and so
/// closer to being written) and costs nothing extra under overload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the record that does not fit.
    #[default]
    DropNewest,
    /// Make room by dropping the oldest queued record.
    DropOldest,
}
