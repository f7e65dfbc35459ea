//! Reading rows: keyset pages in `(occurred_at, id)` order, one row by id, counts, and the rows
//! inserted after a given id (for following the trail).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

use super::AuditFilter;
use super::stored::{self, Stored, undecodable};
use crate::Error;
use crate::entity::audit_log::{Column, Entity, Model};

/// The sort order of a page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// `occurred_at DESC, id DESC`: the most recent rows first.
    #[default]
    NewestFirst,
    /// `occurred_at ASC, id ASC`: the oldest rows first.
    OldestFirst,
}

/// Where a page ends: the `(occurred_at, id)` of its last row.
///
/// Treat it as opaque: its text form (`Display` / `FromStr`) is what a client hands back to get
/// the next page. Because the order is stable and the cursor names the last row seen, paging
/// neither skips nor repeats rows when rows are added meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    occurred_at: DateTime<Utc>,
    id: i64,
}

impl Cursor {
    /// The cursor just past `row`.
    pub fn after(row: &Model) -> Self {
        Cursor {
            occurred_at: row.occurred_at,
            id: row.id,
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}:{}",
            self.occurred_at.timestamp(),
            self.occurred_at.timestamp_subsec_nanos(),
            self.id
        )
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidCursor(text.to_owned());
        let (time, id) = text.split_once(':').ok_or_else(invalid)?;
        let (secs, nanos) = time.split_once('.').ok_or_else(invalid)?;
        let secs: i64 = secs.parse().map_err(|_| invalid())?;
        let nanos: u32 = nanos.parse().map_err(|_| invalid())?;
        let occurred_at = DateTime::from_timestamp(secs, nanos).ok_or_else(invalid)?;
        let id = id.parse().map_err(|_| invalid())?;
        Ok(Cursor { occurred_at, id })
    }
}

/// The most rows one query asks for: every backend binds a `LIMIT` as a signed 64-bit
/// integer (a larger one made sqlx panic), and a page asks for one row more than its size.
/// No table holds more rows, so a larger limit is taken as this one.
pub const MAX_ROWS: u64 = i64::MAX as u64 - 1;

/// Which page to read: order, size and where to start.
///
/// | setting | default |
/// | --- | --- |
/// | order | [`Order::NewestFirst`] |
/// | `limit` | 100 rows; 0 reads no row; above [`MAX_ROWS`], [`MAX_ROWS`] |
/// | `after` | none: the first page |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    order: Order,
    limit: u64,
    after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            order: Order::NewestFirst,
            limit: 100,
            after: None,
        }
    }
}

impl PageRequest {
    /// The first `limit` rows, most recent first (at most [`MAX_ROWS`]; none for 0).
    pub fn newest_first(limit: u64) -> Self {
        PageRequest {
            order: Order::NewestFirst,
            limit: Ord::min(limit, MAX_ROWS),
            after: None,
        }
    }

    /// The first `limit` rows, oldest first (at most [`MAX_ROWS`]; none for 0).
    pub fn oldest_first(limit: u64) -> Self {
        PageRequest {
            order: Order::OldestFirst,
            limit: Ord::min(limit, MAX_ROWS),
            after: None,
        }
    }

    /// Continues after `cursor` (from [`Page::next`]).
    #[must_use]
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.after = cursor;
        self
    }

    /// The order of this request.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The page size of this request, [`MAX_ROWS`] at most.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// One page of rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The rows, in the requested order; at most the requested limit (none for a limit of 0).
    pub rows: Vec<Model>,
    /// The cursor of the next page, or `None` when this page is the last.
    pub next: Option<Cursor>,
}

/// The page of rows matching `filter` that `request` names.
///
/// One query, `ORDER BY occurred_at, id` with a keyset condition
/// `occurred_at <= ? AND (occurred_at < ? OR id < ?)` (mirrored for ascending order), so a page
/// deep in a large table costs the same as the first.
///
/// # Example
///
/// ```
/// # async fn run() -> Result<(), tower_audit::Error> {
/// use tower_audit::store::{self, AuditFilter, PageRequest};
///
/// let db = tower_audit::connect("sqlite::memory:").await?;
/// tower_audit::migrate(&db).await?;
/// let filter = AuditFilter::new().user("alice");
/// let mut request = PageRequest::newest_first(50);
/// loop {
///     let page = store::page(&db, &filter, request).await?;
///     for row in &page.rows {
///         println!("{} {} {}", row.occurred_at, row.method, row.path);
///     }
///     match page.next {
///         Some(next) => request = request.after(Some(next)),
///         None => break,
///     }
/// }
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
/// ```
///
/// # Errors
///
/// [`Error::Database`] when the query fails, [`Error::UnreadableRow`] when a row holds a value
/// its column cannot hold (SQLite checks no types; an [`Export`](super::Export) writes such a
/// row as stored).
pub async fn page<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
    request: PageRequest,
) -> Result<Page, Error> {
    let after = request.after.map(StoredCursor::from);
    let (stored, next) = stored_page(db, filter, request, after).await?;
    let mut rows = Vec::with_capacity(stored.len());
    for row in stored {
        match row {
            Stored::Row(row) => rows.push(row),
            // Named, rather than the decoder's words about a column and a Rust type.
            Stored::Unreadable(row) => return Err(row.error(None)),
        }
    }
    // Every row read whole: the last one is where the next page starts.
    let next = next.and(rows.last().map(Cursor::after));
    Ok(Page { rows, next })
}

/// Where a page of stored rows ends: the `(occurred_at, id)` of its last row, `occurred_at` as
/// stored. A row whose `occurred_at` holds no time (SQLite: text, a number or a blob planted in
/// the column) has no [`Cursor`]; the next page starts after the value as stored, which SQLite
/// compares in the order its `ORDER BY` gives (numbers, then text, then blobs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StoredCursor {
    occurred_at: sea_orm::Value,
    id: i64,
}

impl From<Cursor> for StoredCursor {
    fn from(cursor: Cursor) -> Self {
        StoredCursor {
            occurred_at: cursor.occurred_at.into(),
            id: cursor.id,
        }
    }
}

impl StoredCursor {
    /// The cursor just past `row`.
    fn after(row: &Stored) -> Self {
        match row {
            Stored::Row(row) => Cursor::after(row).into(),
            Stored::Unreadable(row) => StoredCursor {
                occurred_at: row
                    .stored("occurred_at")
                    .unwrap_or_else(|| row.model.occurred_at.into()),
                // The rowid: SQLite stores nothing but an integer there.
                id: row.model.id,
            },
        }
    }
}

/// The rows of [`page`] past `after` (the request's own cursor is not used), each read whole, or
/// as stored where it holds a value its column cannot hold; and where the next page starts.
///
/// # Errors
///
/// [`Error::Database`] when a query fails.
pub(crate) async fn stored_page<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
    request: PageRequest,
    after: Option<StoredCursor>,
) -> Result<(Vec<Stored>, Option<StoredCursor>), Error> {
    let limit = request.limit;
    if limit == 0 {
        // A page of no rows: a query would read one, to know whether a next page exists.
        return Ok((Vec::new(), None));
    }
    let select = select_after(db.get_database_backend(), filter, request, after);
    let mut rows = match select.clone().all(db).await {
        Ok(rows) => rows.into_iter().map(Stored::Row).collect(),
        Err(error) if undecodable(&error) => stored::rows(db, select).await?,
        Err(error) => return Err(error.into()),
    };
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(StoredCursor::after)
    } else {
        None
    };
    Ok((rows, next))
}

/// The query [`page`] runs: rows matching `filter` past the request's cursor, in its order,
/// limited to one row more than the page (which tells whether a next page exists): `LIMIT 1`
/// for a page of no rows, which [`page`] does not run.
///
/// Public so that its plan can be checked (`EXPLAIN`) or the query extended. Build it for
/// `backend`: the condition differs on MySQL (see [`AuditFilter::condition`]).
pub fn page_select(
    backend: DbBackend,
    filter: &AuditFilter,
    request: PageRequest,
) -> Select<Entity> {
    select_after(
        backend,
        filter,
        request,
        request.after.map(StoredCursor::from),
    )
}

/// [`page_select`], past `after` rather than the request's cursor.
fn select_after(
    backend: DbBackend,
    filter: &AuditFilter,
    request: PageRequest,
    after: Option<StoredCursor>,
) -> Select<Entity> {
    // A request made with `..Default::default()` has no other way in: still at most MAX_ROWS.
    let limit = Ord::min(request.limit, MAX_ROWS);
    let mut condition = filter.condition(backend);
    if let Some(cursor) = after {
        condition = condition.add(keyset(backend, request.order, cursor));
    }
    let select = Entity::find().filter(condition);
    let select = match request.order {
        Order::NewestFirst => select
            .order_by_desc(Column::OccurredAt)
            .order_by_desc(Column::Id),
        Order::OldestFirst => select
            .order_by_asc(Column::OccurredAt)
            .order_by_asc(Column::Id),
    };
    #[allow(unused_mut)]
    let mut select = select.limit(limit + 1);
    #[cfg(feature = "mysql")]
    if !filter.has_indexed_lookup() {
        // MariaDB sorts a small table rather than walk the index backwards for a LIMIT; the
        // hint (MySQL syntax only, other backends ignore it) keeps the plan the same at any
        // size. With an indexed lookup the optimizer picks that index, as it should.
        use sea_orm::QueryTrait;
        use sea_orm::sea_query::extension::mysql::{IndexHintScope, MySqlSelectStatementExt};
        QueryTrait::query(&mut select).force_index(
            sea_orm::sea_query::Alias::new(OCCURRED_AT_INDEX),
            IndexHintScope::OrderBy,
        );
    }
    select
}

/// The index on `occurred_at` alone, as the migration names it.
#[cfg(feature = "mysql")]
const OCCURRED_AT_INDEX: &str = "idx_audit_log_occurred_at";

/// Rows strictly past `cursor` in `order`. The first conjunct alone is an index range.
fn keyset(backend: DbBackend, order: Order, cursor: StoredCursor) -> Condition {
    let StoredCursor { occurred_at, id } = cursor;
    // A time as the bounds are bound (`filter::time`): on MySQL a `TIMESTAMP` past 2038, which
    // the writer now stores, compared as NULL, and the pages stopped there.
    let occurred_at = match occurred_at {
        sea_orm::Value::ChronoDateTimeUtc(Some(at)) => super::filter::time(backend, at),
        stored => stored,
    };
    match order {
        Order::NewestFirst => Condition::all()
            .add(Column::OccurredAt.lte(occurred_at.clone()))
            .add(Column::OccurredAt.lt(occurred_at).or(Column::Id.lt(id))),
        Order::OldestFirst => Condition::all()
            .add(Column::OccurredAt.gte(occurred_at.clone()))
            .add(Column::OccurredAt.gt(occurred_at).or(Column::Id.gt(id))),
    }
}

/// The row with this `id`, if any.
///
/// # Errors
///
/// [`Error::Database`] when the query fails, [`Error::UnreadableRow`] when the row holds a
/// value its column cannot hold.
pub async fn get<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Model>, Error> {
    match Entity::find_by_id(id).one(db).await {
        Ok(row) => Ok(row),
        Err(error) if undecodable(&error) => {
            match stored::rows(db, Entity::find_by_id(id)).await?.pop() {
                Some(Stored::Row(row)) => Ok(Some(row)),
                Some(Stored::Unreadable(row)) => Err(row.error(None)),
                None => Ok(None),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// How many rows match `filter`.
///
/// # Errors
///
/// [`Error::Database`] when the query fails.
pub async fn count<C: ConnectionTrait>(db: &C, filter: &AuditFilter) -> Result<u64, Error> {
    Ok(Entity::find()
        .filter(filter.condition(db.get_database_backend()))
        .count(db)
        .await?)
}

/// Up to `limit` rows matching `filter` with an id above `after_id`, in insertion (id) order
/// (at most [`MAX_ROWS`]).
///
/// This is how to follow the trail as it grows: one writer commits its rows in id order,
/// whereas `occurred_at` is the request's arrival, and a slow request's row arrives after
/// faster, later ones. Several writers on one PostgreSQL or MySQL database (one per process) do
/// not: a batch that takes ids first may commit after a later one, and a follower that has
/// moved past its ids does not see it (SQLite writes one transaction at a time, in id order).
/// `tower-audit tail -f` looks for the ids it passed over again.
///
/// # Errors
///
/// [`Error::Database`] when the query fails.
pub async fn rows_after_id<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
    after_id: i64,
    limit: u64,
) -> Result<Vec<Model>, Error> {
    Ok(Entity::find()
        .filter(
            filter
                .condition(db.get_database_backend())
                .add(Column::Id.gt(after_id)),
        )
        .order_by_asc(Column::Id)
        .limit(Ord::min(limit, MAX_ROWS))
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_through_text() {
        let at = DateTime::from_timestamp(1_764_000_000, 123_456_789).unwrap_or_default();
        let cursor = Cursor {
            occurred_at: at,
            id: 42,
        };
        assert_eq!(cursor.to_string(), "1764000000.123456789:42");
        assert_eq!(
            "1764000000.123456789:42".parse::<Cursor>().ok(),
            Some(cursor)
        );
        assert!("garbage".parse::<Cursor>().is_err());
        assert!("1:2".parse::<Cursor>().is_err());
    }
}
