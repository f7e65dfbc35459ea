//! Reading the trail: filtered queries with keyset pagination, counts and statistics, streaming
//! export, retention and replay.
//!
//! Every query goes through an index of `audit_log` on SQLite, PostgreSQL and MySQL/MariaDB: the
//! time range and ordering use `occurred_at`, the user, tenant, route, status and client address
//! use their `(column, occurred_at)` indexes, the request id its own.
//!
//! # Example
//!
//! ```
//! # async fn run() -> Result<(), tower_audit::Error> {
//! use tower_audit::store::{self, AuditFilter, PageRequest, StatsOptions};
//!
//! let db = tower_audit::connect("sqlite::memory:").await?;
//! tower_audit::migrate(&db).await?;
//!
//! let last_hour = AuditFilter::new().since(chrono::Utc::now() - chrono::Duration::hours(1));
//! let failures = last_hour.clone().status_class(5);
//! let page = store::page(&db, &failures, PageRequest::newest_first(20)).await?;
//! for row in &page.rows {
//!     println!("{} {} {} {:?}", row.occurred_at, row.method, row.path, row.error);
//! }
//! let stats = store::stats(&db, &last_hour, StatsOptions::default()).await?;
//! assert_eq!(stats.total, store::count(&db, &last_hour).await?);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! The `tower-audit` command-line tool (feature `cli`) does the same from a shell.

mod export;
mod filter;
mod query;
mod replay;
mod retention;
mod stats;
mod stored;

pub use export::{Export, ExportFormat, ExportReport, FIELDS};
pub use filter::AuditFilter;
pub use query::{
    Cursor, MAX_ROWS, Order, Page, PageRequest, count, get, page, page_select, rows_after_id,
};
pub use replay::{
    REDACTION_MARKER, REPLAYED_METHODS, ReplayOptions, ReplayOutcome, ReplayRecord, ReplayReport,
    replay,
};
pub use retention::{
    PURGE_ACTION, PURGE_METHOD, PURGE_PATH, PurgeOptions, PurgeReport, purge_before,
};
pub use stats::{AuditStats, LatencyPercentiles, StatsOptions, StatusClass, stats};
pub use stored::UnreadableValue;
#[cfg(feature = "integrity")]
pub(crate) use stored::undecodable;
