//! Reading the trail: filtered queries with keyset pagination, counts and statistics, streaming
//! export, retention and replay.
//!
//! The filters with an index go through it on SQLite, PostgreSQL and MySQL/MariaDB: the time
//! range and ordering use `occurred_at`, the user, tenant, route, status and client address
//! their `(column, occurred_at)` indexes, the request id its own. The others (method, path
//! prefix, error, body text) are checked row by row, and a count or `stats` on them, or `stats`
//! with no filter, reads the rows in its time range.
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

/// `text` as a terminal can show it without obeying it, and without two values looking alike:
/// control characters (C0 with ESC, CR, LF and tab; DEL; C1), the characters that reorder or
/// break lines (bidirectional overrides and isolates, line and paragraph separators), those a
/// terminal draws as nothing (zero-width spaces and joiners, the byte order mark, a soft hyphen,
/// Hangul fillers, variation selectors, tags: Unicode's format and default-ignorable
/// characters), and a space at either end (a space, or another of Unicode's), as Rust writes
/// them in a string, `\n`, `\r`, `\t`, or else `\u{1b}`, `\u{200b}`, `\u{20}`. Whoever can write
/// to the database could otherwise erase or rewrite the lines before (`verify`'s verdict), split
/// a table row, or show a user `admin\u{200b}` as `admin`, whose rows `--user admin` then does
/// not find. Everything else, a backslash too, is left as it is: this is a display form, and
/// `--json` gives the values exactly. The `tower-audit` command shows every stored value so, and
/// [`VerifyReport`](crate::integrity::VerifyReport)'s `Display` its chain ids and details.
///
/// ```
/// use tower_audit::store::printable;
///
/// assert_eq!(printable("api-1"), "api-1");
/// assert_eq!(printable("a\r\u{1b}[2Kb\u{202e}c"), "a\\r\\u{1b}[2Kb\\u{202e}c");
/// assert_eq!(printable("admin\u{200b}"), "admin\\u{200b}");
/// assert_eq!(printable("admin "), "admin\\u{20}");
/// assert_eq!(printable("jane doe"), "jane doe");
/// ```
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let padded = |c: Option<char>| c.is_some_and(char::is_whitespace);
    let ends = padded(text.chars().next()) || padded(text.chars().next_back());
    if !ends && !text.chars().any(disturbs_terminal) {
        return std::borrow::Cow::Borrowed(text);
    }
    let last = text.char_indices().next_back().map_or(0, |(i, _)| i);
    let mut shown = String::with_capacity(text.len() + 8);
    for (i, c) in text.char_indices() {
        match c {
            '\t' => shown.push_str("\\t"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            c if disturbs_terminal(c) => shown.extend(c.escape_unicode()),
            c if c.is_whitespace() && (i == 0 || i == last) => shown.extend(c.escape_unicode()),
            c => shown.push(c),
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// A character a terminal acts on, that reorders or breaks what it shows, or that it draws as
/// nothing: controls, Unicode's format characters (`Cf`) and its default-ignorable ones.
pub(crate) fn disturbs_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061c}'
                | '\u{06dd}'
                | '\u{070f}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08e2}'
                | '\u{115f}'..='\u{1160}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

#[cfg(feature = "integrity")]
pub(crate) use filter::time;
#[cfg(feature = "integrity")]
pub(crate) use stored::{decode_hex, undecodable};
