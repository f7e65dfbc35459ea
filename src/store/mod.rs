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

/// A read-only transaction whose reads all see the database as its first read found it:
/// `REPEATABLE READ` on PostgreSQL and MySQL; on SQLite (in WAL mode, as
/// [`connect`](crate::connect) opens it), a transaction's reads share one snapshot. It holds back
/// no writer, and is for reads that must agree with each other while rows are written or
/// purged: pass it to [`Export::to_writer`] with [`Export::with_proof`] while a
/// [`purge_before`] may run, and the proof verifies (read in statements of their own, the rows
/// a purge deleted between the pages and the proof are missing from the file, and it verifies as
/// a break). Drop it, or roll it back, when done.
///
/// On SQLite, a pool of one connection (as [`connect`](crate::connect) opens one) is held by the
/// snapshot until then: give a long read a connection of its own, and a writer on the other
/// meanwhile. A long snapshot also keeps SQLite from checkpointing its WAL, and PostgreSQL from
/// vacuuming the rows it still sees.
///
/// ```
/// # async fn run() -> Result<(), tower_audit::Error> {
/// use tower_audit::store::{self, AuditFilter, Export, ExportFormat};
///
/// let db = tower_audit::connect("sqlite::memory:").await?;
/// tower_audit::migrate(&db).await?;
/// let snapshot = store::snapshot(&db).await?;
/// let mut file = Vec::new();
/// Export::new(ExportFormat::Ndjson)
///     .with_proof(true)
///     .to_writer(&snapshot, &AuditFilter::new(), &mut file)
///     .await?;
/// drop(snapshot);
/// # Ok(())
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
///
/// # Errors
///
/// [`Error::Database`](crate::Error::Database) when the transaction cannot be begun.
pub async fn snapshot(
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, crate::Error> {
    use sea_orm::{AccessMode, DbBackend, IsolationLevel, TransactionTrait};
    let transaction = match db.get_database_backend() {
        DbBackend::Sqlite => db.begin().await?,
        _ => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
    };
    Ok(transaction)
}

/// `text` as a terminal can show it without obeying it: control characters (C0 with ESC, CR,
/// LF and tab; DEL; C1) and the characters that reorder or break lines (bidirectional
/// overrides and isolates, line and paragraph separators) as Rust writes them in a string,
/// `\n`, `\r`, `\t`, or else `\u{1b}`, `\u{202e}`. Whoever can write to the database could
/// otherwise erase or rewrite the lines before (`verify`'s verdict) or split a table row.
/// Everything else, a backslash too, is left as it is: this is a display form, and `--json`
/// gives the values exactly. The `tower-audit` command shows every stored value so, and
/// [`VerifyReport`](crate::integrity::VerifyReport)'s `Display` its chain ids and details.
///
/// ```
/// use tower_audit::store::printable;
///
/// assert_eq!(printable("api-1"), "api-1");
/// assert_eq!(printable("a\r\u{1b}[2Kb\u{202e}c"), "a\\r\\u{1b}[2Kb\\u{202e}c");
/// ```
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(disturbs_terminal) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => shown.push_str("\\t"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            c if disturbs_terminal(c) => shown.extend(c.escape_unicode()),
            c => shown.push(c),
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// A character a terminal acts on, or that reorders or breaks what it shows.
fn disturbs_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}
#[cfg(feature = "integrity")]
pub(crate) use filter::time;
#[cfg(feature = "integrity")]
pub(crate) use stored::undecodable;
