//! SQLite and MySQL: binding a batch's values straight into sqlx arguments.
//!
//! The SQL still comes from SeaORM (built once per row count and set of columns from the entity,
//! see `sink`); only the values skip SeaORM's `Value`s. Going through `Statement` costs two
//! copies of every string per row (`ModelTrait::get`, then the clone SeaORM makes of a
//! statement's values) and a third allocation in sqlx. Here each string is copied once, into the
//! `Arc<str>` SQLite binds (not at all where a column repeats the value of the row before, see
//! `bind_column`), or straight into the MySQL packet.
//!
//! Each value is bound as the Rust type SeaORM would bind for its column (`Option<i32>`,
//! `DateTime<Utc>`, JSON, …), through the same sqlx encoders, so the stored bytes are the same on
//! both paths; a test compares them.

use std::sync::Arc;

use sea_orm::sqlx::{self, Arguments, Database, Executor, Pool};
use sea_orm::{DbErr, RuntimeErr};

use crate::entity::audit_log::{Column, Model};

/// The sqlx error as SeaORM reports it, so the worker tells outages from rejections the same way
/// on every path.
fn exec_error(error: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(error)))
}

type BindResult = Result<(), sqlx::error::BoxDynError>;

/// Adds one value of each Rust type the entity's columns have.
pub(super) trait Bind {
    fn text(&mut self, value: Option<&str>) -> BindResult;
    fn int(&mut self, value: Option<i32>) -> BindResult;
    fn big_int(&mut self, value: Option<i64>) -> BindResult;
    fn bool(&mut self, value: bool) -> BindResult;
    fn time(&mut self, value: chrono::DateTime<chrono::Utc>) -> BindResult;
    fn json(&mut self, value: Option<&serde_json::Value>) -> BindResult;
    /// A text value that consecutive rows often share (see [`bind_column`]); `recent` is the value
    /// this column bound last in the chunk, for drivers that can bind it again without a copy.
    fn repeated_text(&mut self, value: Option<&str>, recent: &mut Option<Arc<str>>) -> BindResult;
}

/// The types SeaORM binds for each `Value` (`sea-query-sqlx`), through the same encoders.
macro_rules! bind_as_sea_orm_does {
    ($arguments:ty, $text:expr, $time:expr, $repeated:expr) => {
        impl Bind for $arguments {
            fn text(&mut self, value: Option<&str>) -> BindResult {
                Arguments::add(self, value.map($text))
            }
            fn int(&mut self, value: Option<i32>) -> BindResult {
                Arguments::add(self, value)
            }
            fn big_int(&mut self, value: Option<i64>) -> BindResult {
                Arguments::add(self, value)
            }
            fn bool(&mut self, value: bool) -> BindResult {
                Arguments::add(self, value)
            }
            fn time(&mut self, value: chrono::DateTime<chrono::Utc>) -> BindResult {
                $time(self, value)
            }
            fn json(&mut self, value: Option<&serde_json::Value>) -> BindResult {
                Arguments::add(self, value)
            }
            fn repeated_text(
                &mut self,
                value: Option<&str>,
                recent: &mut Option<Arc<str>>,
            ) -> BindResult {
                $repeated(self, value, recent)
            }
        }
    };
}

// SQLite binds an `Arc<str>` as it is; `&str` or `String` would be copied or boxed again. A
// time is the text sqlx's encoder makes of it, written here without chrono's formatter.
#[cfg(feature = "sqlite")]
bind_as_sea_orm_does!(
    sqlx::sqlite::SqliteArguments,
    Arc::<str>::from,
    |args: &mut sqlx::sqlite::SqliteArguments, value: chrono::DateTime<chrono::Utc>| {
        match rfc3339(value, &mut [0; RFC3339_LEN]) {
            Some(text) => Arguments::add(args, Arc::<str>::from(text)),
            None => Arguments::add(args, value),
        }
    },
    // The same `Arc<str>` again where the value is the one this column bound last: no
    // allocation, no copy, and one free for the run instead of one per row.
    |args: &mut sqlx::sqlite::SqliteArguments,
     value: Option<&str>,
     recent: &mut Option<Arc<str>>| {
        let Some(value) = value else {
            return Arguments::add(args, None::<Arc<str>>);
        };
        let shared = match recent {
            Some(last) if **last == *value => Arc::clone(last),
            _ => Arc::clone(recent.insert(Arc::from(value))),
        };
        Arguments::add(args, shared)
    }
);
// MySQL encodes into the packet buffer: no allocation per value. A time goes as the
// `DATETIME` the column is (naive, in UTC, the session's zone): sqlx binds a `DateTime<Utc>`
// as a `TIMESTAMP`, which MariaDB cannot hold past 2038-01-19 (nor before 1970), and the
// row is refused for a NULL `occurred_at`.
#[cfg(feature = "mysql")]
bind_as_sea_orm_does!(
    sqlx::mysql::MySqlArguments,
    std::convert::identity,
    |args: &mut sqlx::mysql::MySqlArguments, value: chrono::DateTime<chrono::Utc>| {
        Arguments::add(args, value.naive_utc())
    },
    |args: &mut sqlx::mysql::MySqlArguments, value: Option<&str>, _: &mut Option<Arc<str>>| {
        Arguments::add(args, value)
    }
);

/// Bytes of the longest time [`rfc3339`] writes: `9999-12-31T23:59:59.999999999+00:00`.
const RFC3339_LEN: usize = 35;

/// `at.to_rfc3339_opts(SecondsFormat::AutoSi, false)`, the text sqlx binds a time as in SQLite,
/// written digit by digit into `buf`: chrono's formatter costs over a thousand instructions a
/// row. `None` outside years 0 to 9999 and in a leap second, which chrono then writes.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn rfc3339(at: chrono::DateTime<chrono::Utc>, buf: &mut [u8; RFC3339_LEN]) -> Option<&str> {
    use chrono::{Datelike as _, Timelike as _};
    fn two(buf: &mut [u8], at: usize, value: u32) {
        buf[at] = b'0' + (value / 10 % 10) as u8;
        buf[at + 1] = b'0' + (value % 10) as u8;
    }
    let date = at.date_naive();
    let year = u32::try_from(date.year())
        .ok()
        .filter(|year| *year <= 9999)?;
    let time = at.time();
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let seconds = time.num_seconds_from_midnight();
    two(buf, 0, year / 100);
    two(buf, 2, year % 100);
    buf[4] = b'-';
    two(buf, 5, date.month());
    buf[7] = b'-';
    two(buf, 8, date.day());
    buf[10] = b'T';
    two(buf, 11, seconds / 3600);
    buf[13] = b':';
    two(buf, 14, seconds / 60 % 60);
    buf[16] = b':';
    two(buf, 17, seconds % 60);
    let mut len = 19;
    // As chrono's `AutoSi`: as many fraction digits as the value needs, in threes.
    let fraction = match nanos {
        0 => None,
        n if n % 1_000_000 == 0 => Some((n / 1_000_000, 3)),
        n if n % 1_000 == 0 => Some((n / 1_000, 6)),
        n => Some((n, 9)),
    };
    if let Some((mut value, width)) = fraction {
        buf[len] = b'.';
        for digit in buf[len + 1..=len + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
        len += 1 + width;
    }
    buf[len..len + 6].copy_from_slice(b"+00:00");
    std::str::from_utf8(&buf[..len + 6]).ok()
}

/// Binds `row`'s value of `column` as SeaORM would: the match is exhaustive, so a column added to
/// the entity does not compile until it is bound here.
///
/// `recent` is the value the column bound last. Columns whose values consecutive rows often
/// share go through [`Bind::repeated_text`] with it: those of few distinct values (methods,
/// routes, tenants) or of one value per client or proxy (addresses, user agents, users), whose
/// requests come in runs. Ids, times, paths, queries and bodies rarely repeat and are bound as
/// they are.
pub(super) fn bind_column(
    args: &mut impl Bind,
    row: &Model,
    column: Column,
    recent: &mut Option<Arc<str>>,
) -> BindResult {
    let text = |args: &mut _, value: &Option<String>| Bind::text(args, value.as_deref());
    let mut shared =
        |args: &mut _, value: Option<&str>| Bind::repeated_text(args, value, &mut *recent);
    match column {
        Column::Id => args.big_int(Some(row.id)),
        Column::RecordId => args.text(Some(&row.record_id)),
        Column::OccurredAt => args.time(row.occurred_at),
        Column::RequestId => text(args, &row.request_id),
        Column::Method => shared(args, Some(&row.method)),
        Column::Path => args.text(Some(&row.path)),
        Column::Route => shared(args, row.route.as_deref()),
        Column::Query => text(args, &row.query),
        Column::Status => args.int(row.status),
        Column::GrpcStatus => args.int(row.grpc_status),
        Column::GrpcMessagesIn => args.big_int(row.grpc_messages_in),
        Column::GrpcMessagesOut => args.big_int(row.grpc_messages_out),
        Column::LatencyUs => args.big_int(Some(row.latency_us)),
        Column::ClientIp => shared(args, row.client_ip.as_deref()),
        Column::PeerIp => shared(args, row.peer_ip.as_deref()),
        Column::UserAgent => shared(args, row.user_agent.as_deref()),
        Column::UserId => shared(args, row.user_id.as_deref()),
        Column::TenantId => shared(args, row.tenant_id.as_deref()),
        Column::Action => shared(args, row.action.as_deref()),
        Column::Resource => shared(args, row.resource.as_deref()),
        Column::RequestBody => text(args, &row.request_body),
        Column::RequestBodyTruncated => args.bool(row.request_body_truncated),
        Column::RequestBytes => args.big_int(Some(row.request_bytes)),
        Column::ResponseBytes => args.big_int(Some(row.response_bytes)),
        Column::RequestHeaders => args.json(row.request_headers.as_ref()),
        Column::Extra => args.json(row.extra.as_ref()),
        Column::Error => text(args, &row.error),
        Column::ChainId => shared(args, row.chain_id.as_deref()),
        Column::ChainSeq => args.big_int(row.chain_seq),
        Column::PrevHash => text(args, &row.prev_hash),
        Column::RowHash => text(args, &row.row_hash),
        Column::KeyId => shared(args, row.key_id.as_deref()),
    }
}

/// Whether `row` has no value in `column`: the match is exhaustive, as in [`bind_column`].
fn is_null(row: &Model, column: Column) -> bool {
    match column {
        Column::Id
        | Column::RecordId
        | Column::OccurredAt
        | Column::Method
        | Column::Path
        | Column::LatencyUs
        | Column::RequestBodyTruncated
        | Column::RequestBytes
        | Column::ResponseBytes => false,
        Column::RequestId => row.request_id.is_none(),
        Column::Route => row.route.is_none(),
        Column::Query => row.query.is_none(),
        Column::Status => row.status.is_none(),
        Column::GrpcStatus => row.grpc_status.is_none(),
        Column::GrpcMessagesIn => row.grpc_messages_in.is_none(),
        Column::GrpcMessagesOut => row.grpc_messages_out.is_none(),
        Column::ClientIp => row.client_ip.is_none(),
        Column::PeerIp => row.peer_ip.is_none(),
        Column::UserAgent => row.user_agent.is_none(),
        Column::UserId => row.user_id.is_none(),
        Column::TenantId => row.tenant_id.is_none(),
        Column::Action => row.action.is_none(),
        Column::Resource => row.resource.is_none(),
        Column::RequestBody => row.request_body.is_none(),
        Column::RequestHeaders => row.request_headers.is_none(),
        Column::Extra => row.extra.is_none(),
        Column::Error => row.error.is_none(),
        Column::ChainId => row.chain_id.is_none(),
        Column::ChainSeq => row.chain_seq.is_none(),
        Column::PrevHash => row.prev_hash.is_none(),
        Column::RowHash => row.row_hash.is_none(),
        Column::KeyId => row.key_id.is_none(),
    }
}

/// The columns null in every one of `rows`: bit `i` stands for `columns[i]`. A statement leaves
/// them out, and the database stores its default for them, null: binding a null costs SQLite as
/// much as binding a number, and clearing it again after the statement as much once more.
pub(super) fn nulls(rows: &[Model], columns: &[Column]) -> u64 {
    let Some((first, rest)) = rows.split_first() else {
        return 0;
    };
    let mut nulls = 0_u64;
    for (i, column) in columns.iter().enumerate().take(64) {
        if is_null(first, *column) {
            nulls |= 1 << i;
        }
    }
    for row in rest {
        if nulls == 0 {
            break;
        }
        let mut rest = nulls;
        while rest != 0 {
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if !is_null(row, columns[i]) {
                nulls &= !(1 << i);
            }
        }
    }
    nulls
}

/// Whether `nulls` leaves out `columns[i]`.
fn left_out(nulls: u64, i: usize) -> bool {
    i < 64 && nulls & (1 << i) != 0
}

/// One chunk's values, bound ahead of its statement.
pub(crate) struct Bound<A> {
    /// Rows in the chunk.
    pub(super) rows: usize,
    /// The columns its statement leaves out (see [`nulls`]).
    pub(super) nulls: u64,
    /// The values of the other columns, row by row.
    pub(super) args: A,
}

/// Binds one chunk of rows, each row's values in the order of `columns`, but for the columns
/// `nulls` leaves out.
fn bind_chunk<A: Bind + Arguments + Default>(
    rows: &[Model],
    columns: &[Column],
    nulls: u64,
) -> Result<A, DbErr> {
    let mut args = A::default();
    let bound = columns.len() - nulls.count_ones() as usize;
    args.reserve(rows.len() * bound, 0);
    let mut recent: Vec<Option<Arc<str>>> = vec![None; columns.len()];
    for row in rows {
        for ((i, column), recent) in columns.iter().enumerate().zip(&mut recent) {
            if left_out(nulls, i) {
                continue;
            }
            // An encoding error, as sqlx reports a value it cannot encode on every other path:
            // a property of the row, which the worker isolates and writes in its safe form (or
            // dead-letters), never an outage to retry (MySQL's encoder refuses a time outside
            // the years 0 to 65535).
            bind_column(&mut args, row, *column, recent).map_err(|error| {
                exec_error(sqlx::Error::Encode(
                    format!("cannot bind {column:?} of a row: {error}").into(),
                ))
            })?;
        }
    }
    Ok(args)
}

/// Binds every chunk of `rows`, in the chunks and leaving out the columns `plan` gives.
pub(super) fn prebind<A: Bind + Arguments + Default>(
    rows: &[Model],
    columns: &[Column],
    plan: &impl Plan,
    yield_between: bool,
) -> Result<Vec<Bound<A>>, DbErr> {
    let mut bound = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let (this, after) = rest.split_at(plan.chunk(rest)?.min(rest.len()));
        rest = after;
        let nulls = plan.shape(nulls(this, columns));
        bound.push(Bound {
            rows: this.len(),
            nulls,
            args: bind_chunk(this, columns, nulls)?,
        });
        if yield_between {
            // As the conversion does: the core for whatever else is ready, between chunks.
            std::thread::yield_now();
        }
    }
    Ok(bound)
}

/// What comes after a chunk.
enum Next<A> {
    /// Every row is bound.
    Done,
    /// No SQL for this chunk size: the caller falls back to SeaORM's statements.
    NoSql,
    /// The next statement and its values.
    Statement(Arc<str>, A),
}

/// How [`prebind`] and [`insert`] cut rows into statements.
pub(super) trait Plan {
    /// The size of the largest chunk from the start of `rows`; an error if its first row cannot
    /// go in a statement at all.
    fn chunk(&self, rows: &[Model]) -> Result<usize, DbErr>;
    /// The columns a statement leaves out of `nulls`, those null in all its rows.
    fn shape(&self, nulls: u64) -> u64;
    /// The SQL of a statement of `rows` rows leaving out the columns of `nulls`, binding each
    /// row's other values in the order of the columns; `None` if there is none.
    fn sql(&self, rows: usize, nulls: u64) -> Option<Arc<str>>;
}

/// Inserts `rows` in one transaction, in the chunks and with the SQL `plan` gives.
/// `Ok(false)`: a chunk has no SQL, nothing was written, and the caller uses SeaORM's
/// statements.
///
/// `prebound` holds chunks bound ahead by [`prebind`] with the same chunks; the rest are bound
/// here, each while the database runs the statement before it.
pub(super) async fn insert<DB>(
    pool: &Pool<DB>,
    rows: &[Model],
    columns: &[Column],
    plan: &impl Plan,
    prebound: Vec<Bound<DB::Arguments>>,
) -> Result<bool, DbErr>
where
    DB: Database,
    DB::Arguments: Bind + Default + sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut prebound = prebound.into_iter();
    let mut next = |rest: &mut &[Model]| -> Result<Next<DB::Arguments>, DbErr> {
        if rest.is_empty() {
            return Ok(Next::Done);
        }
        let size = plan.chunk(rest)?.min(rest.len());
        let (this, after) = rest.split_at(size);
        *rest = after;
        let (nulls, args) = match prebound.next() {
            Some(bound) if bound.rows == size => (bound.nulls, bound.args),
            other => {
                // Still correct, only bound twice; the tests run with debug assertions.
                debug_assert!(
                    other.is_none(),
                    "chunks bound ahead differ from the insert's"
                );
                let nulls = plan.shape(nulls(this, columns));
                (nulls, bind_chunk(this, columns, nulls)?)
            }
        };
        match plan.sql(size, nulls) {
            Some(sql) => Ok(Next::Statement(sql, args)),
            None => Ok(Next::NoSql),
        }
    };
    let mut rest = rows;
    let (mut sql, mut args) = match next(&mut rest)? {
        Next::Done => return Ok(true),
        Next::NoSql => return Ok(false),
        Next::Statement(sql, args) => (sql, args),
    };
    let mut transaction = pool.begin().await.map_err(exec_error)?;
    loop {
        // The SQL shared, not copied: sqlx would copy a `&str` for every statement.
        let execute = sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(&mut *transaction);
        // `join!` polls `execute` first, which hands the statement to the driver.
        let (done, bound) = tokio::join!(execute, async { next(&mut rest) });
        done.map_err(exec_error)?;
        (sql, args) = match bound? {
            Next::Done => break,
            Next::NoSql => return Ok(false),
            Next::Statement(sql, args) => (sql, args),
        };
    }
    transaction.commit().await.map_err(exec_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat, TimeZone as _, Utc};

    use super::{RFC3339_LEN, rfc3339};

    /// The text must be sqlx's, byte for byte: SQLite compares and sorts times as text, so a
    /// different spelling of the same instant would sort apart from rows SeaORM wrote.
    #[test]
    fn times_are_written_as_sqlx_writes_them() {
        let mut times: Vec<DateTime<Utc>> = vec![
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 2, 5, 30, 9).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
        ];
        for nanos in [
            1,
            999,
            1_000,
            120_000,
            123_456_000,
            5_000_000,
            999_999_999,
            100,
        ] {
            times.push(Utc.timestamp_opt(1_764_653_409, nanos).unwrap());
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let secs = (seed % 4_000_000_000) as i64;
            let nanos = match seed % 4 {
                0 => 0,
                1 => (seed >> 20) as u32 % 1_000 * 1_000_000,
                2 => (seed >> 20) as u32 % 1_000_000 * 1_000,
                _ => (seed >> 20) as u32 % 1_000_000_000,
            };
            times.push(Utc.timestamp_opt(secs, nanos).unwrap());
        }
        let mut buf = [0; RFC3339_LEN];
        for at in times {
            let expected = at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
            assert_eq!(rfc3339(at, &mut buf), Some(expected.as_str()), "{at:?}");
        }
        // Years chrono writes with a sign, and leap seconds, are left to chrono.
        assert_eq!(
            rfc3339(
                Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
                &mut buf
            ),
            None
        );
        assert_eq!(
            rfc3339(Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(), &mut buf),
            None
        );
        let leap = Utc.timestamp_opt(1_483_228_799, 1_500_000_000).unwrap();
        assert_eq!(rfc3339(leap, &mut buf), None);
    }
}
