//! Inserting rows, idempotent on `record_id`: binary or text `COPY` on PostgreSQL, statements
//! prepared once per row count elsewhere, `insert_many` per batch as the portable path; and
//! telling a database that is away from one that refuses a row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use sea_orm::RuntimeErr;
use sea_orm::sea_query::{InsertStatement, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryTrait, Statement, TransactionTrait,
};

use crate::context::lock;
use crate::entity::audit_log::{ActiveModel, Column, Entity, Model};

/// How the writer sends a batch of rows to the database.
///
/// Both modes write the same rows, typed and converted by the same SeaORM entity, and both are
/// idempotent on `record_id`: a retried or replayed record is never written twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertMode {
    /// The fastest path each backend offers (the default):
    /// - PostgreSQL: one `COPY … FROM STDIN` per batch, its column list taken from the entity,
    ///   in binary format when every column has a type it encodes (text format otherwise).
    ///   Should a record already be in the table (a retry after an insert whose outcome was
    ///   unknown, a journal replayed twice), the batch is written again with the statements
    ///   below, which skip it.
    /// - SQLite, MySQL and MariaDB: multi-row `INSERT` statements whose SQL SeaORM builds once
    ///   per row count (powers of two) and the driver prepares once, rather than per batch. The
    ///   values are bound straight from the rows, as the types SeaORM binds, with at most one
    ///   copy of each string. A column that is null in every row of a statement is left out of
    ///   it, so the table's default for it is stored: null, for the table
    ///   [`migrate`](crate::migrate) creates. Statements are prepared for the first six such
    ///   sets of columns a writer meets; a chunk matching none leaves out fewer columns. On
    ///   MySQL a statement also carries no more bytes of values than the server's
    ///   `max_allowed_packet` takes (read once per writer), and it skips no row: should a
    ///   record already be in the table, the batch is written again without the records the
    ///   table holds, so that a row another unique index refuses fails as it does elsewhere.
    #[default]
    Fast,
    /// A SeaORM `insert_many` statement built for every batch: the portable path, for a
    /// connection through which `COPY` or prepared statements do not work (some poolers and
    /// PostgreSQL-compatible databases).
    Portable,
}

/// Bind parameters one statement may carry.
fn bind_limit(backend: DbBackend) -> usize {
    match backend {
        // SQLITE_MAX_VARIABLE_NUMBER of the SQLite that sqlx bundles (3.32 and later).
        DbBackend::Sqlite => 32_766,
        // Both protocols count parameters in an unsigned 16-bit field.
        DbBackend::Postgres | DbBackend::MySql => 65_535,
        _ => 999,
    }
}

/// The columns the writer fills: all but `id`, in the entity's order.
fn columns() -> impl Iterator<Item = Column> {
    Column::iter().filter(|column| !matches!(column, Column::Id))
}

/// Rows per statement: every column but `id` is bound.
fn rows_per_statement(backend: DbBackend) -> usize {
    (bind_limit(backend) / columns().count()).max(1)
}

/// Cached statements of up to 2^(`SIZES` - 1) rows.
const SIZES: usize = 12;

/// Rows per SQLite statement while the writer keeps up. SQLite runs inside the application, on
/// its cores: a statement of 1,024 rows holds one for milliseconds, and a request that arrives
/// meanwhile waits behind it. Between statements of 64 rows (a quarter of a millisecond) the
/// driver's thread waits for the writer's task, and the scheduler runs whatever else is ready.
/// In a backlog, statements are as large as the bind limit allows: catching up comes first, and
/// 64-row statements measured a fifth slower there.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "mysql")),
    allow(dead_code, reason = "only SQLite and MySQL bind statements")
)]
const STEADY_SQLITE_STATEMENT_ROWS: usize = 64;

/// The most rows one statement holds on `backend`: few on SQLite while the writer keeps up
/// (`steady`), else as many as the bind limit allows.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "mysql")),
    allow(dead_code, reason = "only SQLite and MySQL bind statements")
)]
fn statement_cap(backend: DbBackend, steady: bool) -> usize {
    if steady && backend == DbBackend::Sqlite {
        STEADY_SQLITE_STATEMENT_ROWS
    } else {
        usize::MAX
    }
}

/// Most sets of left-out null columns a sink prepares statements for, besides none. Each set is
/// a statement per row count (eleven on SQLite) in the driver's statement cache, which holds
/// 100 by default: seven sets, 77 statements, leave room for the application's own. The first
/// sets met are kept, and a chunk whose nulls match none of them leaves out the largest kept
/// set within them, or nothing. Traffic has few: columns such as the gRPC, chain or identity
/// ones are null for whole kinds of requests.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "mysql")),
    allow(dead_code, reason = "only SQLite and MySQL bind statements")
)]
pub(crate) const SHAPES: usize = 6;

/// The statements of one sink: the sets of left-out columns admitted, and the SQL SeaORM built
/// for each row count and set. Shared with the [`Prebinder`], which binds values for them.
#[derive(Debug)]
pub(crate) struct Statements {
    backend: DbBackend,
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "mysql")),
        allow(dead_code, reason = "only SQLite and MySQL bind statements")
    )]
    admitted: Mutex<Vec<u64>>,
    /// SQL by (rows, left-out columns); `None` when the built statement does not bind exactly
    /// one value per row and bound column (never expected; the batch then goes through
    /// `insert_many`).
    sql: Mutex<HashMap<Shape, Option<Arc<str>>>>,
}

/// A statement's rows and the columns it leaves out.
type Shape = (usize, u64);

/// A row's place in a hash chain: chain id, position and row hash.
#[cfg(any(feature = "mysql", feature = "integrity"))]
pub(crate) type Place = (String, i64, String);

impl Statements {
    fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            admitted: Mutex::new(Vec::new()),
            sql: Mutex::new(HashMap::new()),
        }
    }

    /// The columns a statement leaves out, of `nulls` (see [`SHAPES`]).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "mysql")),
        allow(dead_code, reason = "only SQLite and MySQL bind statements")
    )]
    fn shape(&self, nulls: u64) -> u64 {
        if nulls == 0 {
            return 0;
        }
        let mut admitted = lock(&self.admitted);
        if admitted.contains(&nulls) {
            return nulls;
        }
        if admitted.len() < SHAPES {
            admitted.push(nulls);
            return nulls;
        }
        admitted
            .iter()
            .copied()
            .filter(|kept| kept & !nulls == 0)
            .max_by_key(|kept| kept.count_ones())
            .unwrap_or(0)
    }

    /// The SQL of an insert of `rows` rows leaving out the columns of `nulls`.
    fn sql(&self, rows: usize, nulls: u64) -> Option<Arc<str>> {
        lock(&self.sql)
            .entry((rows, nulls))
            .or_insert_with(|| statement_sql(self.backend, rows, nulls).map(Arc::from))
            .clone()
    }
}

/// [`Statements`] with chunks of at most `cap` rows and, on MySQL, `budget` bytes of values
/// (see [`chunk_size`]), as [`super::bind`] takes them.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
struct Chunks<'s> {
    statements: &'s Statements,
    cap: usize,
    budget: Option<usize>,
}

#[cfg(any(feature = "sqlite", feature = "mysql"))]
impl super::bind::Plan for Chunks<'_> {
    fn chunk(&self, rows: &[Model]) -> Result<usize, DbErr> {
        chunk_size(self.statements.backend, rows, self.cap, self.budget)
    }

    fn shape(&self, nulls: u64) -> u64 {
        self.statements.shape(nulls)
    }

    fn sql(&self, rows: usize, nulls: u64) -> Option<Arc<str>> {
        self.statements.sql(rows, nulls)
    }
}

/// A batch's values encoded ahead of its insert, on the thread that converted the batch: the
/// writer's task, on the application's runtime, then only hands them to the driver.
pub(crate) enum Prebound {
    /// Statement arguments, chunk by chunk in the order the insert runs them.
    #[cfg(feature = "sqlite")]
    Sqlite(Vec<super::bind::Bound<sea_orm::sqlx::sqlite::SqliteArguments>>),
    /// Statement arguments, chunk by chunk in the order the insert runs them.
    #[cfg(feature = "mysql")]
    MySql(Vec<super::bind::Bound<sea_orm::sqlx::mysql::MySqlArguments>>),
    /// The `COPY` data, in the format the table took.
    #[cfg(feature = "postgres")]
    Postgres(copy::CopyData),
}

#[cfg(any(feature = "sqlite", feature = "mysql"))]
impl Prebound {
    /// Rows in the largest statement, where the values are statements' arguments: the insert's
    /// chunks, each the largest that fits up to this size, are then those bound ahead. (The
    /// first is the largest but where a byte budget cut a chunk short: rows after it may fit
    /// in larger ones.)
    fn largest_statement_rows(&self) -> Option<usize> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(chunks) => chunks.iter().map(|chunk| chunk.rows).max(),
            #[cfg(feature = "mysql")]
            Self::MySql(chunks) => chunks.iter().map(|chunk| chunk.rows).max(),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => None,
        }
    }
}

impl std::fmt::Debug for Prebound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prebound")
    }
}

/// Writes batches of rows into `audit_log`.
pub(crate) struct Sink {
    db: DatabaseConnection,
    backend: DbBackend,
    mode: InsertMode,
    /// The SQL of inserts of 2^i rows, built by SeaORM from the entity on first use.
    statements: Arc<Statements>,
    /// MySQL: the bytes of values one statement may carry, from the server's
    /// `max_allowed_packet` before the first insert; `None` before, and on the other backends.
    packet_budget: Option<usize>,
    /// The `COPY` format the table takes.
    #[cfg(feature = "postgres")]
    copier: copy::Copier,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("backend", &self.backend)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Sink {
    pub(crate) fn new(db: DatabaseConnection, mode: InsertMode) -> Self {
        let backend = db.get_database_backend();
        Self {
            backend,
            db,
            mode,
            statements: Arc::new(Statements::new(backend)),
            packet_budget: None,
            #[cfg(feature = "postgres")]
            copier: copy::Copier::default(),
        }
    }

    /// The database the rows go to (the hash chain reads and checkpoints there, and a stopped
    /// writer checkpoints SQLite's WAL).
    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// What binds a batch's values ahead of its insert, off the writer's task; `None` where the
    /// insert path binds no values itself (`COPY`, `insert_many`).
    pub(crate) fn prebinder(&self) -> Option<Prebinder> {
        let bound_here = match self.backend {
            #[cfg(feature = "sqlite")]
            DbBackend::Sqlite => true,
            // Once the first insert has read the server's packet limit.
            #[cfg(feature = "mysql")]
            DbBackend::MySql => self.packet_budget.is_some(),
            // Once the first `COPY` has learnt the table's format.
            #[cfg(feature = "postgres")]
            DbBackend::Postgres => self.copier.format.is_some(),
            _ => false,
        };
        (self.mode == InsertMode::Fast && bound_here).then(|| Prebinder {
            backend: self.backend,
            statements: Arc::clone(&self.statements),
            packet_budget: self.packet_budget,
            #[cfg(feature = "postgres")]
            copy_format: self.copier.format.clone().flatten(),
        })
    }

    /// Inserts the rows in one transaction (or one `COPY`): all of them or none. `prebound`
    /// holds their values when [`Prebinder::bind`] bound them ahead.
    pub(crate) async fn insert(
        &mut self,
        rows: &[Model],
        prebound: Option<Prebound>,
    ) -> Result<(), DbErr> {
        if rows.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "mysql")]
        if self.backend == DbBackend::MySql {
            if self.packet_budget.is_none() {
                self.packet_budget = Some(packet_budget(&self.db).await?);
            }
            return match self.insert_once(rows, prebound).await {
                // A record already written (a retry after an insert whose outcome was unknown,
                // a journal replayed twice), or a row another unique index refuses: the rows
                // the table does not hold go again, and a second error is the refusal.
                Err(error) if is_duplicate_key(&error) => {
                    let held = self.held(rows).await?;
                    let rest: Vec<Model> = rows
                        .iter()
                        .filter(|row| !held.contains_key(&row.record_id))
                        .cloned()
                        .collect();
                    if rest.len() == rows.len() {
                        return Err(error);
                    }
                    self.insert_once(&rest, None).await
                }
                result => result,
            };
        }
        self.insert_once(rows, prebound).await
    }

    /// The rows among `rows` that the table holds: each one's record id, and its place in a
    /// hash chain as the table holds it (chain id, position, hash), if it has one.
    #[cfg(any(feature = "mysql", feature = "integrity"))]
    pub(crate) async fn held(
        &self,
        rows: &[Model],
    ) -> Result<HashMap<String, Option<Place>>, DbErr> {
        use sea_orm::{ColumnTrait as _, QueryFilter as _, QuerySelect as _};
        type Found = (String, Option<String>, Option<i64>, Option<String>);
        let mut held = HashMap::new();
        // Well within the bind limit, however large the writer's batches are set.
        for chunk in rows.chunks(4_096) {
            let found: Vec<Found> = Entity::find()
                .select_only()
                .columns([
                    Column::RecordId,
                    Column::ChainId,
                    Column::ChainSeq,
                    Column::RowHash,
                ])
                .filter(Column::RecordId.is_in(chunk.iter().map(|row| row.record_id.as_str())))
                .into_tuple::<Found>()
                .all(&self.db)
                .await?;
            held.extend(found.into_iter().map(|(record_id, chain, seq, hash)| {
                let place = match (chain, seq, hash) {
                    (Some(chain), Some(seq), Some(hash)) => Some((chain, seq, hash)),
                    _ => None,
                };
                (record_id, place)
            }));
        }
        Ok(held)
    }

    /// Inserts the rows as [`Self::insert`] does, without MySQL's second try.
    async fn insert_once(
        &mut self,
        rows: &[Model],
        prebound: Option<Prebound>,
    ) -> Result<(), DbErr> {
        if self.mode == InsertMode::Portable {
            return insert_many(&self.db, rows, self.packet_budget).await;
        }
        #[cfg(feature = "postgres")]
        if let Some(pool) = postgres_pool(&self.db) {
            let encoded = match prebound {
                Some(Prebound::Postgres(data)) => Some(data),
                _ => None,
            };
            match self.copier.copy_in(pool, rows, encoded).await {
                // A record already written: the statements below skip it.
                Err(error) if copy::is_unique_violation(&error) => {
                    if copy::is_id_taken(&error) {
                        copy::catch_up_id_sequence(pool).await;
                    }
                    return self.insert_prepared(rows, None).await;
                }
                result => return result,
            }
        }
        self.insert_prepared(rows, prebound).await
    }

    /// The size of the largest chunk from the start of `rows` (see [`chunk_size`]) and the SQL
    /// that binds every column.
    fn chunk(&self, rows: &[Model]) -> Result<(usize, Option<Arc<str>>), DbErr> {
        let size = chunk_size(self.backend, rows, usize::MAX, self.packet_budget)?;
        Ok((size, self.statements.sql(size, 0)))
    }

    /// The rows as statements of 2^i rows each, from the largest that fits.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "mysql")),
        allow(unused_variables, reason = "only SQLite and MySQL bind values ahead")
    )]
    async fn insert_prepared(
        &self,
        rows: &[Model],
        prebound: Option<Prebound>,
    ) -> Result<(), DbErr> {
        #[cfg(any(feature = "sqlite", feature = "mysql"))]
        {
            let columns: Vec<Column> = columns().collect();
            // Values bound ahead set the statements' size: the largest of them.
            let cap = prebound
                .as_ref()
                .and_then(Prebound::largest_statement_rows)
                .unwrap_or(usize::MAX);
            let chunks = Chunks {
                statements: &self.statements,
                cap,
                budget: self.packet_budget,
            };
            let bound = match &self.db.inner {
                #[cfg(feature = "sqlite")]
                sea_orm::DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                    let pool = self.db.get_sqlite_connection_pool();
                    let prebound = match prebound {
                        Some(Prebound::Sqlite(bound)) => bound,
                        _ => Vec::new(),
                    };
                    super::bind::insert(pool, rows, &columns, &chunks, prebound).await?
                }
                #[cfg(feature = "mysql")]
                sea_orm::DatabaseConnectionType::SqlxMySqlPoolConnection(_) => {
                    let pool = self.db.get_mysql_connection_pool();
                    let prebound = match prebound {
                        Some(Prebound::MySql(bound)) => bound,
                        _ => Vec::new(),
                    };
                    super::bind::insert(pool, rows, &columns, &chunks, prebound).await?
                }
                #[allow(unreachable_patterns)]
                _ => false,
            };
            if bound {
                return Ok(());
            }
        }
        let transaction = self.db.begin().await?;
        let mut rest = rows;
        while !rest.is_empty() {
            let (size, sql) = self.chunk(rest)?;
            let (chunk, after) = rest.split_at(size.min(rest.len()));
            rest = after;
            match sql {
                Some(sql) => {
                    let values = chunk
                        .iter()
                        .flat_map(|row| columns().map(|column| row.get(column)));
                    let statement = Statement::from_sql_and_values(self.backend, &*sql, values);
                    transaction.execute_raw(statement).await?;
                }
                None => {
                    for statement in statements(self.backend, chunk, self.packet_budget)? {
                        transaction.execute(&statement).await?;
                    }
                }
            }
        }
        transaction.commit().await
    }
}

/// The exponent of the largest chunk of at most `rows` rows: 2^i rows within the bind limit and
/// `cap`.
fn chunk_exponent(backend: DbBackend, rows: usize, cap: usize) -> usize {
    let exponent = rows
        .min(rows_per_statement(backend))
        .min(cap)
        .max(1)
        .ilog2() as usize;
    exponent.min(SIZES - 1)
}

/// The size of the largest chunk from the start of `rows`: 2^i rows within the bind limit,
/// `cap` and, on MySQL, `budget` bytes of values; an error (a refusal) if the first row alone
/// exceeds the budget.
fn chunk_size(
    backend: DbBackend,
    rows: &[Model],
    cap: usize,
    budget: Option<usize>,
) -> Result<usize, DbErr> {
    let largest = 1 << chunk_exponent(backend, rows.len(), cap);
    let fit = rows_within(rows, largest, budget)?;
    Ok(1 << chunk_exponent(backend, fit, cap))
}

/// How many rows from the start of `rows`, at most `max`, one statement carries within `budget`
/// bytes of values (all `max` without a budget: not MySQL); an error (a refusal) if the first
/// row alone exceeds it or cannot be encoded (see [`unencodable`]).
fn rows_within(rows: &[Model], max: usize, budget: Option<usize>) -> Result<usize, DbErr> {
    let max = max.min(rows.len());
    let Some(budget) = budget else {
        return Ok(max);
    };
    let mut bytes = 0_usize;
    for (i, row) in rows[..max].iter().enumerate() {
        bytes = bytes.saturating_add(packet_bytes(row));
        let refused = match bytes > budget {
            true => Some(too_large(row, bytes, budget)),
            false => unencodable(row),
        };
        if let Some(error) = refused {
            return match i {
                0 => Err(error),
                _ => Ok(i),
            };
        }
    }
    Ok(max)
}

/// MySQL: a row with a value sqlx's encoder cannot bind, a time outside the years 0 to 65535,
/// refused before it is sent. Through SeaORM's statements the value would be left out without
/// an error, and the server's answer (a statement short of a parameter, a protocol error) would
/// look like an outage.
fn unencodable(row: &Model) -> Option<DbErr> {
    use chrono::Datelike as _;
    let year = row.occurred_at.year();
    u16::try_from(year).is_err().then(|| {
        let message = format!(
            "the time of record {} ({}) is outside the years MySQL's encoder takes",
            row.record_id, row.occurred_at
        );
        encode_error(message)
    })
}

/// What sqlx says of a value it cannot encode, which [`is_rejection`] counts as a refusal.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn encode_error(message: String) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
        sea_orm::sqlx::Error::Encode(message.into()),
    )))
}

/// Without a driver no statement is ever sent: a plain error.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
fn encode_error(message: String) -> DbErr {
    DbErr::Custom(message)
}

/// Most columns a statement binds per row; a test holds the entity to it.
const MAX_BOUND_COLUMNS: usize = 32;

/// Bytes of a MySQL statement's packet per bound value besides its own: its type (2 bytes), its
/// length (up to 9) and its null bit, plus the widest fixed-size value (a time, 12 bytes).
const PACKET_BYTES_PER_VALUE: usize = 24;

/// An upper bound of the bytes `row`'s values take in a MySQL statement's packet (the binary
/// protocol's `COM_STMT_EXECUTE`): texts and JSON as their bytes, the rest at a fixed size.
fn packet_bytes(row: &Model) -> usize {
    // Every field named: a column added to the entity does not compile until it is counted.
    let Model {
        id: _,
        occurred_at: _,
        status: _,
        grpc_status: _,
        grpc_messages_in: _,
        grpc_messages_out: _,
        latency_us: _,
        request_body_truncated: _,
        request_bytes: _,
        response_bytes: _,
        chain_seq: _,
        record_id,
        method,
        path,
        request_id,
        route,
        query,
        client_ip,
        peer_ip,
        user_agent,
        user_id,
        tenant_id,
        action,
        resource,
        request_body,
        error,
        chain_id,
        prev_hash,
        row_hash,
        key_id,
        request_headers,
        extra,
    } = row;
    let texts = [
        request_id,
        route,
        query,
        client_ip,
        peer_ip,
        user_agent,
        user_id,
        tenant_id,
        action,
        resource,
        request_body,
        error,
        chain_id,
        prev_hash,
        row_hash,
        key_id,
    ];
    let json = |value: &Option<serde_json::Value>| value.as_ref().map_or(0, json_bytes);
    MAX_BOUND_COLUMNS * PACKET_BYTES_PER_VALUE
        + record_id.len()
        + method.len()
        + path.len()
        + texts
            .into_iter()
            .map(|text| text.as_ref().map_or(0, String::len))
            .sum::<usize>()
        + json(request_headers)
        + json(extra)
}

/// An upper bound of the length of `value` written as JSON.
fn json_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) => 5,
        // An i64 or u64 takes at most 20 bytes, an f64 23 (`-1.7976931348623157e308`).
        Value::Number(_) => 24,
        Value::String(text) => json_string_bytes(text),
        Value::Array(items) => 2 + items.iter().map(|item| json_bytes(item) + 1).sum::<usize>(),
        Value::Object(entries) => {
            2 + entries
                .iter()
                .map(|(key, value)| json_string_bytes(key) + json_bytes(value) + 2)
                .sum::<usize>()
        }
    }
}

/// A string written as JSON: quoted, `"` and `\` escaped in two bytes, control characters in
/// up to six.
fn json_string_bytes(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|byte| match byte {
            b'"' | b'\\' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// A row whose values alone exceed what a MySQL statement may carry, refused before it is sent:
/// the server would refuse the packet and close the connection, which looks like an outage.
fn too_large(row: &Model, bytes: usize, budget: usize) -> DbErr {
    let message = format!(
        "the row of record {} takes up to {bytes} bytes in a statement, more than the {budget} \
         the server's max_allowed_packet leaves room for",
        row.record_id
    );
    encode_error(message)
}

/// The bytes of values one MySQL statement may carry: the server's `max_allowed_packet` (the
/// same for every connection of a pool but after a `SET GLOBAL`), less an eighth for the
/// packet's header and null bitmap and for an estimate that is off.
#[cfg(feature = "mysql")]
async fn packet_budget(db: &DatabaseConnection) -> Result<usize, DbErr> {
    let limit = db
        .query_one_raw(Statement::from_string(
            DbBackend::MySql,
            "SELECT CAST(@@max_allowed_packet AS SIGNED)",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no max_allowed_packet".to_owned()))?
        .try_get_by_index::<i64>(0)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(limit.saturating_sub(limit / 8 + 8 * 1024).max(limit / 2))
}

/// MySQL's duplicate-key errors (`ER_DUP_ENTRY`, `ER_DUP_ENTRY_WITH_KEY_NAME`).
#[cfg(feature = "mysql")]
fn is_duplicate_key(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error))) =
        error
    else {
        return false;
    };
    error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|e| matches!(e.number(), 1062 | 1586))
}

/// Binds or encodes a batch's values ahead of its insert, on the thread that converts the batch;
/// `Send` and cheap to clone into the conversion task.
#[derive(Clone, Debug)]
pub(crate) struct Prebinder {
    backend: DbBackend,
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "mysql")),
        allow(dead_code, reason = "only SQLite and MySQL bind statements")
    )]
    statements: Arc<Statements>,
    /// The sink's `packet_budget`.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "mysql")),
        allow(dead_code, reason = "only SQLite and MySQL bind statements")
    )]
    packet_budget: Option<usize>,
    /// The table's binary `COPY` format, `None` for text format.
    #[cfg(feature = "postgres")]
    copy_format: Option<std::sync::Arc<[copy::Binary]>>,
}

impl Prebinder {
    /// The rows' values, bound in the chunks the insert will run; `None` if a value cannot be
    /// bound (the insert then binds again and reports the error). `steady`: the writer keeps
    /// up, and SQLite's statements are kept short (see [`STEADY_SQLITE_STATEMENT_ROWS`]); the
    /// binding then also offers the core to whatever else is ready between statements.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "mysql")),
        allow(unused_variables, reason = "COPY data has no statements")
    )]
    pub(crate) fn bind(&self, rows: &[Model], steady: bool) -> Option<Prebound> {
        if rows.is_empty() {
            return None;
        }
        let backend = self.backend;
        #[cfg(any(feature = "sqlite", feature = "mysql"))]
        let cap = statement_cap(backend, steady);
        #[cfg(any(feature = "sqlite", feature = "mysql"))]
        let (columns, plan) = (
            columns().collect::<Vec<Column>>(),
            Chunks {
                statements: &self.statements,
                cap,
                budget: self.packet_budget,
            },
        );
        match backend {
            #[cfg(feature = "sqlite")]
            DbBackend::Sqlite => super::bind::prebind(rows, &columns, &plan, steady)
                .ok()
                .map(Prebound::Sqlite),
            #[cfg(feature = "mysql")]
            DbBackend::MySql => super::bind::prebind(rows, &columns, &plan, steady)
                .ok()
                .map(Prebound::MySql),
            #[cfg(feature = "postgres")]
            DbBackend::Postgres => copy::CopyData::encode(rows, self.copy_format.clone())
                .ok()
                .map(Prebound::Postgres),
            _ => None,
        }
    }
}

/// The SQL of an insert of `rows` rows leaving out the columns of `nulls` (bit `i` for the `i`th
/// of [`columns`]), as SeaORM builds it, if it binds one value per row and column it keeps, in
/// the order of [`columns`].
fn statement_sql(backend: DbBackend, rows: usize, nulls: u64) -> Option<String> {
    let left_out: Vec<Column> = columns()
        .enumerate()
        .filter(|(i, _)| *i < 64 && nulls & (1 << i) != 0)
        .map(|(_, column)| column)
        .collect();
    if left_out.len() != nulls.count_ones() as usize {
        return None;
    }
    let models = (0..rows).map(|_| {
        let mut active: ActiveModel = template_row().into_active_model();
        active.id = ActiveValue::NotSet;
        for column in &left_out {
            active.not_set(*column);
        }
        active
    });
    let mut insert = Entity::insert_many(models).into_query();
    skip_written(backend, &mut insert);
    let statement = backend.build(&insert);
    let values = statement.values?.0;
    let bound = columns().count() - left_out.len();
    (values.len() == rows * bound).then_some(statement.sql)
}

/// A retry after an insert whose outcome was unknown, or a journal replayed twice, must not
/// write a record again: the insert skips a record the table holds. Not on MySQL, whose only
/// such clause, `ON DUPLICATE KEY UPDATE`, skips a row that any unique index refuses (a chain
/// position another writer took among them), gone yet counted as written. There a duplicate-key
/// error has [`Sink::insert`] write the batch again without the records the table holds.
fn skip_written(backend: DbBackend, insert: &mut InsertStatement) {
    if backend != DbBackend::MySql {
        insert.on_conflict(OnConflict::column(Column::RecordId).do_nothing().to_owned());
    }
}

/// A row with a value in every column, so that the built statement binds each of them.
pub(super) fn template_row() -> Model {
    let text = || Some(String::new());
    Model {
        id: 0,
        record_id: String::new(),
        occurred_at: chrono::DateTime::UNIX_EPOCH,
        request_id: text(),
        method: String::new(),
        path: String::new(),
        route: text(),
        query: text(),
        status: Some(0),
        grpc_status: Some(0),
        grpc_messages_in: Some(0),
        grpc_messages_out: Some(0),
        latency_us: 0,
        client_ip: text(),
        peer_ip: text(),
        user_agent: text(),
        user_id: text(),
        tenant_id: text(),
        action: text(),
        resource: text(),
        request_body: text(),
        request_body_truncated: false,
        request_bytes: 0,
        response_bytes: 0,
        request_headers: Some(serde_json::Value::Null),
        extra: Some(serde_json::Value::Null),
        error: text(),
        chain_id: text(),
        chain_seq: Some(0),
        prev_hash: text(),
        row_hash: text(),
        key_id: text(),
    }
}

/// SeaORM's statements for `rows`, each within the bind limit and `budget` bytes of values.
fn statements(
    backend: DbBackend,
    rows: &[Model],
    budget: Option<usize>,
) -> Result<Vec<InsertStatement>, DbErr> {
    let mut statements = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = rows_within(rest, rows_per_statement(backend), budget)?;
        let (chunk, after) = rest.split_at(size);
        rest = after;
        let models = chunk.iter().map(|row| {
            let mut active: ActiveModel = row.clone().into_active_model();
            active.id = ActiveValue::NotSet;
            active
        });
        let mut insert = Entity::insert_many(models).into_query();
        skip_written(backend, &mut insert);
        statements.push(insert);
    }
    Ok(statements)
}

/// The portable path: `insert_many` statements built for these rows, each within `budget` bytes
/// of values.
async fn insert_many(
    db: &DatabaseConnection,
    rows: &[Model],
    budget: Option<usize>,
) -> Result<(), DbErr> {
    let statements = statements(db.get_database_backend(), rows, budget)?;
    let transaction = db.begin().await?;
    for statement in &statements {
        transaction.execute(statement).await?;
    }
    transaction.commit().await
}

#[cfg(feature = "postgres")]
fn postgres_pool(db: &DatabaseConnection) -> Option<&sea_orm::sqlx::PgPool> {
    match &db.inner {
        sea_orm::DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            Some(db.get_postgres_connection_pool())
        }
        #[allow(unreachable_patterns)] // with only the postgres backend compiled in
        _ => None,
    }
}

/// PostgreSQL `COPY … FROM STDIN` in text format, its columns and values taken from the entity.
#[cfg(feature = "postgres")]
mod copy {
    use std::fmt::Write as _;
    use std::sync::{Arc, LazyLock};

    use sea_orm::sqlx::{self, PgConnection, PgPool};
    use sea_orm::{DbErr, EntityName, Iden, ModelTrait, RuntimeErr, Value};

    use super::columns;
    use crate::entity::audit_log::{Entity, Model};

    /// Data is sent in messages of about this size.
    const CHUNK: usize = 256 * 1024;

    /// `COPY audit_log (…) FROM STDIN`, the columns from the entity, in text or binary format.
    fn statement(binary: bool) -> &'static str {
        static STATEMENTS: LazyLock<[String; 2]> = LazyLock::new(|| {
            let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
            let columns: Vec<String> = columns().map(|c| quote(&c.to_string())).collect();
            let statement = format!(
                "COPY {} ({}) FROM STDIN",
                quote(Entity.table_name()),
                columns.join(", ")
            );
            [
                statement.clone(),
                format!("{statement} WITH (FORMAT binary)"),
            ]
        });
        &STATEMENTS[usize::from(binary)]
    }

    /// How one column travels in binary COPY, after the table's type for it.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(super) enum Binary {
        Text,
        Int4,
        Int8,
        Bool,
        TimestampTz,
        Jsonb,
        Json,
    }

    impl Binary {
        fn of(type_name: &str) -> Option<Self> {
            Some(match type_name {
                "text" | "varchar" => Self::Text,
                "int4" => Self::Int4,
                "int8" => Self::Int8,
                "bool" => Self::Bool,
                "timestamptz" => Self::TimestampTz,
                "jsonb" => Self::Jsonb,
                "json" => Self::Json,
                _ => return None,
            })
        }
    }

    /// Copies batches in the format the table takes.
    ///
    /// Each batch takes a connection from the pool and returns it: holding one between batches
    /// measured no faster, and would starve a small pool shared with the application.
    #[derive(Debug, Default)]
    pub(super) struct Copier {
        /// Binary format (one entry per column) when every column's type is one it knows,
        /// else `Some(None)`: text format. Asked of the table on first use.
        pub(super) format: Option<Option<Arc<[Binary]>>>,
    }

    /// A batch's `COPY` data in messages of about [`CHUNK`] bytes, and the format it is in.
    #[derive(Debug)]
    pub(crate) struct CopyData {
        format: Option<Arc<[Binary]>>,
        chunks: Vec<Vec<u8>>,
    }

    impl CopyData {
        /// Encodes `rows` in binary format with these column types, or in text format.
        pub(super) fn encode(
            rows: &[Model],
            format: Option<Arc<[Binary]>>,
        ) -> Result<Self, String> {
            let mut chunks = Vec::new();
            let mut data = Vec::with_capacity(CHUNK + 4096);
            if format.is_some() {
                data.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
                data.extend_from_slice(&0_i32.to_be_bytes()); // flags
                data.extend_from_slice(&0_i32.to_be_bytes()); // header extension
            }
            for row in rows {
                match format.as_deref() {
                    Some(types) => encode_binary_row(row, types, &mut data)?,
                    None => encode_row(row, &mut data)?,
                }
                if data.len() >= CHUNK {
                    chunks.push(std::mem::replace(
                        &mut data,
                        Vec::with_capacity(CHUNK + 4096),
                    ));
                }
            }
            if format.is_some() {
                data.extend_from_slice(&(-1_i16).to_be_bytes());
            }
            if !data.is_empty() {
                chunks.push(data);
            }
            Ok(Self { format, chunks })
        }
    }

    impl Copier {
        /// Copies `rows`; `encoded`, when given, holds them encoded ahead.
        pub(super) async fn copy_in(
            &mut self,
            pool: &PgPool,
            rows: &[Model],
            encoded: Option<CopyData>,
        ) -> Result<(), DbErr> {
            let error = |e: sqlx::Error| DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)));
            let binary = self.format.clone().flatten().is_some();
            match self.copy_once(pool, rows, encoded).await {
                // The table's types changed since they were read (an `ALTER TABLE … TYPE`
                // while the writer runs): read them again and copy once more, rather than
                // failing every batch, or refusing every row, until a restart.
                Err(e) if binary && is_format_mismatch(&e) => {
                    self.format = None;
                    self.copy_once(pool, rows, None).await.map_err(error)
                }
                result => result.map_err(error),
            }
        }

        /// Copies `rows` on a connection of its own from `pool`.
        ///
        /// Until the copy has ended, the connection is closed rather than handed back should
        /// this future be dropped (the writer's `insert_timeout`) or the copy fail: a `COPY`
        /// the server starts only after the client gave up (a lock on the table held past the
        /// timeout) leaves it waiting for data, deaf to the `Sync` sqlx sends before the
        /// connection's reuse, while sqlx waits for its answer. Both sides would wait for
        /// good, one pool slot (of a pool perhaps shared with the application) lost each time.
        async fn copy_once(
            &mut self,
            pool: &PgPool,
            rows: &[Model],
            encoded: Option<CopyData>,
        ) -> Result<(), sqlx::Error> {
            let mut held = ClosedUnlessDone {
                connection: pool.acquire().await?,
                done: false,
            };
            self.copy_on(&mut held.connection, rows, encoded).await?;
            held.done = true;
            Ok(())
        }

        async fn copy_on(
            &mut self,
            connection: &mut PgConnection,
            rows: &[Model],
            encoded: Option<CopyData>,
        ) -> Result<(), sqlx::Error> {
            if self.format.is_none() {
                self.format = Some(binary_format(connection).await?.map(Arc::from));
            }
            let format = self.format.clone().flatten();
            // Data encoded ahead serves only if it is in the format the table takes.
            let data = match encoded {
                Some(data) if data.format == format => data,
                _ => match CopyData::encode(rows, format) {
                    Ok(data) => data,
                    Err(unsupported) => return Err(sqlx::Error::Encode(unsupported.into())),
                },
            };
            let mut copy = connection
                .copy_in_raw(statement(data.format.is_some()))
                .await?;
            for chunk in data.chunks {
                copy.send(chunk).await?;
            }
            copy.finish().await?;
            Ok(())
        }
    }

    /// A pooled connection closed when dropped, unless its work was `done`: then it goes back
    /// to the pool.
    struct ClosedUnlessDone {
        connection: sqlx::pool::PoolConnection<sqlx::Postgres>,
        /// The connection's work ended cleanly: it goes back to the pool.
        done: bool,
    }

    impl Drop for ClosedUnlessDone {
        fn drop(&mut self) {
            if !self.done {
                self.connection.close_on_drop();
            }
        }
    }

    /// Whether a binary `COPY` failed on data in another shape than the table's column takes:
    /// an `int8` sent where the column is now `int4` ("insufficient data left in message",
    /// 08P01, or "incorrect binary data format", 22P03), or a value the cached types cannot
    /// encode.
    fn is_format_mismatch(error: &sqlx::Error) -> bool {
        if matches!(error, sqlx::Error::Encode(_)) {
            return true;
        }
        error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "08P01" || code == "22P03")
    }

    /// The binary encoding of each column, from the table's column types (the table the
    /// search path finds, as `COPY` does); `None` when one of them is a type it does not know.
    async fn binary_format(
        connection: &mut PgConnection,
    ) -> Result<Option<Vec<Binary>>, sqlx::Error> {
        let table = format!("\"{}\"", Entity.table_name().replace('"', "\"\""));
        let types: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.attname::text, t.typname::text FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        )
        .bind(table)
        .fetch_all(&mut *connection)
        .await?;
        let binary: Option<Vec<Binary>> = columns()
            .map(|column| {
                let name = column.to_string();
                types
                    .iter()
                    .find(|(column, _)| *column == name)
                    .and_then(|(_, type_name)| Binary::of(type_name))
            })
            .collect();
        // A column whose binary form cannot carry the entity's value (an `int8` value into a
        // column made `int4`): the text form lets the server convert each value, or refuse it.
        Ok(binary.filter(|types| {
            encode_binary_row(&super::template_row(), types, &mut Vec::new()).is_ok()
        }))
    }

    /// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 UTC.
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

    /// One tuple of binary COPY: the field count, then each field's length and bytes.
    pub(super) fn encode_binary_row(
        row: &Model,
        types: &[Binary],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.extend_from_slice(&(types.len() as i16).to_be_bytes());
        for (column, binary) in columns().zip(types) {
            let value = row.get(column);
            encode_binary(value, *binary, out)
                .map_err(|value| format!("cannot COPY {column:?} = {value:?} as {binary:?}"))?;
        }
        Ok(())
    }

    fn encode_binary(value: Value, binary: Binary, out: &mut Vec<u8>) -> Result<(), Value> {
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        match (value, binary) {
            (Value::String(Some(text)), Binary::Text) => field(text.as_bytes()),
            (Value::Int(Some(n)), Binary::Int4) => field(&n.to_be_bytes()),
            (Value::Int(Some(n)), Binary::Int8) => field(&i64::from(n).to_be_bytes()),
            (Value::BigInt(Some(n)), Binary::Int8) => field(&n.to_be_bytes()),
            (Value::Bool(Some(b)), Binary::Bool) => field(&[u8::from(b)]),
            (Value::ChronoDateTimeUtc(Some(at)), Binary::TimestampTz) => {
                field(&(at.timestamp_micros() - POSTGRES_EPOCH_MICROS).to_be_bytes())
            }
            (Value::Json(Some(json)), Binary::Jsonb | Binary::Json | Binary::Text) => {
                let mut bytes = Vec::with_capacity(64);
                if binary == Binary::Jsonb {
                    bytes.push(1); // jsonb's binary format version
                }
                serde_json::to_writer(&mut bytes, &json).map_err(|_| Value::Json(Some(json)))?;
                field(&bytes);
            }
            (
                Value::String(None)
                | Value::Int(None)
                | Value::BigInt(None)
                | Value::Bool(None)
                | Value::ChronoDateTimeUtc(None)
                | Value::Json(None),
                _,
            ) => out.extend_from_slice(&(-1_i32).to_be_bytes()),
            (other, _) => return Err(other),
        }
        Ok(())
    }

    /// One line of COPY text format: values separated by tabs, `\N` for null.
    pub(super) fn encode_row(row: &Model, out: &mut Vec<u8>) -> Result<(), String> {
        for (i, column) in columns().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            encode_value(row.get(column), out)
                .map_err(|value| format!("cannot COPY {column:?} = {value:?}"))?;
        }
        out.push(b'\n');
        Ok(())
    }

    fn encode_value(value: Value, out: &mut Vec<u8>) -> Result<(), Value> {
        const NULL: &[u8] = b"\\N";
        let mut number = |n: i64| {
            let mut text = String::new();
            let _ = write!(text, "{n}");
            out.extend_from_slice(text.as_bytes());
        };
        match value {
            Value::String(Some(text)) => escape(text.as_bytes(), out),
            Value::Int(Some(n)) => number(n.into()),
            Value::BigInt(Some(n)) => number(n),
            Value::Bool(Some(b)) => out.push(if b { b't' } else { b'f' }),
            Value::ChronoDateTimeUtc(Some(at)) => {
                let mut text = String::with_capacity(32);
                let _ = write!(text, "{}", at.format("%Y-%m-%d %H:%M:%S%.6f+00"));
                out.extend_from_slice(text.as_bytes());
            }
            Value::Json(Some(json)) => {
                let text = serde_json::to_vec(&json).map_err(|_| Value::Json(Some(json)))?;
                escape(&text, out);
            }
            Value::String(None)
            | Value::Int(None)
            | Value::BigInt(None)
            | Value::Bool(None)
            | Value::ChronoDateTimeUtc(None)
            | Value::Json(None) => out.extend_from_slice(NULL),
            other => return Err(other),
        }
        Ok(())
    }

    /// Backslash escapes of COPY text format for the bytes that would end a value or a row.
    fn escape(text: &[u8], out: &mut Vec<u8>) {
        let mut start = 0;
        for (i, byte) in text.iter().enumerate() {
            let escaped: &[u8] = match byte {
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                _ => continue,
            };
            out.extend_from_slice(&text[start..i]);
            out.extend_from_slice(escaped);
            start = i + 1;
        }
        out.extend_from_slice(&text[start..]);
    }

    /// A unique violation: some record of the batch is already in the table.
    /// Whether a unique violation is on the table's primary key: an id the sequence handed out
    /// is taken, the sequence behind the table's ids (rows restored or copied back with theirs).
    pub(super) fn is_id_taken(error: &DbErr) -> bool {
        let DbErr::Exec(RuntimeErr::SqlxError(error)) = error else {
            return false;
        };
        error
            .as_database_error()
            .and_then(|e| e.constraint())
            .is_some_and(|constraint| constraint.ends_with("_pkey"))
    }

    /// Moves the table's id sequence past its highest id, never back, and logs it: each try
    /// of a batch would otherwise take the next ids one batch at a time, however far behind.
    pub(super) async fn catch_up_id_sequence(pool: &PgPool) {
        let table = format!("\"{}\"", Entity.table_name().replace('"', "\"\""));
        // The table's name is the entity's, quoted: nothing of a client's reaches this text.
        let sql = format!(
            "SELECT setval(s, GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), nextval(s))) \
             FROM pg_get_serial_sequence($1, 'id') AS s"
        );
        let caught_up = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .bind(&table)
            .fetch_one(pool)
            .await;
        match caught_up {
            Ok(next) => tracing::warn!(
                next_id = next + 1,
                "audit_log's id sequence was behind the table's ids: moved past them"
            ),
            Err(error) => tracing::warn!(
                %error,
                "audit_log's id sequence is behind the table's ids and could not be moved"
            ),
        }
    }

    pub(super) fn is_unique_violation(error: &DbErr) -> bool {
        let DbErr::Exec(RuntimeErr::SqlxError(error)) = error else {
            return false;
        };
        error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "23505")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn escapes_what_would_end_a_value_or_a_row() {
            let mut out = Vec::new();
            escape(b"a\tb\nc\rd\\e", &mut out);
            assert_eq!(out, b"a\\tb\\nc\\rd\\\\e");
        }

        #[test]
        fn every_column_of_the_entity_encodes() {
            let mut out = Vec::new();
            encode_row(&super::super::template_row(), &mut out).expect("encodes");
            let line = String::from_utf8(out).expect("utf-8");
            assert_eq!(line.matches('\t').count(), columns().count() - 1);
            assert!(line.contains("1970-01-01 00:00:00.000000+00"), "{line}");
            assert!(line.ends_with('\n'));
        }
    }
}

/// Without a driver there is no database to refuse or miss anything.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
pub(crate) fn is_rejection(_error: &DbErr) -> bool {
    false
}

/// Whether the database refused the rows themselves (a value too long, bad encoding, a
/// constraint, a trigger raising an error) rather than being away, busy or locked. Only a
/// refusal is worth splitting a batch for: retrying it unchanged would fail forever, filling the
/// queue, or wedging the journal's replay on the row.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) fn is_rejection(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error))) =
        error
    else {
        return false;
    };
    // A value the driver cannot encode (`unencodable`, and `bind`'s own binding), or a MySQL
    // row too large for a packet (`too_large`):
    // the rows never reached the database, and they never will as they are.
    if matches!(**error, sea_orm::sqlx::Error::Encode(_)) {
        return true;
    }
    let Some(database) = error.as_database_error() else {
        return false;
    };
    let code = database.code();
    let code = code.as_deref().unwrap_or_default();
    #[cfg(feature = "mysql")]
    if let Some(mysql) = database.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        // Incorrect string value, out of range, truncated, null, invalid JSON; a packet over
        // `max_allowed_packet` (SQLSTATE 08S01, like a lost link, yet the same statement fails
        // again); a CHECK constraint of MySQL 8 (SQLSTATE HY000; MariaDB's 4025 is class 23).
        if matches!(
            mysql.number(),
            1048 | 1153 | 1264 | 1265 | 1292 | 1366 | 1406 | 3140 | 3819
        ) {
            return true;
        }
    }
    // SQLite (numeric, maybe extended): TOOBIG, CONSTRAINT (a trigger's RAISE included),
    // MISMATCH; BUSY and LOCKED are transient.
    #[cfg(feature = "sqlite")]
    if database
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return code
            .parse::<u32>()
            .is_ok_and(|c| matches!(c & 0xff, 18..=20));
    }
    // A PostgreSQL id taken twice: the id sequence is behind the table's ids (rows restored or
    // copied back with theirs). Not the rows' fault, nor lasting: each try takes new ids, so
    // the batch is retried (or journaled) as in an outage rather than its rows refused.
    if code == "23505"
        && database
            .constraint()
            .is_some_and(|constraint| constraint.ends_with("_pkey"))
    {
        return false;
    }
    // SQLSTATE classes 22 (data exception), 23 (integrity constraint violation) and 44 (a view's
    // WITH CHECK OPTION); 45000, what MySQL's `SIGNAL` raises by convention (from a trigger);
    // PostgreSQL's P0001 and P0004, PL/pgSQL's `RAISE EXCEPTION` and `ASSERT` (from a trigger),
    // 54000, a value past a limit (an index entry or a jsonb value too large), and 54001, "stack
    // depth limit exceeded", which the writer's fixed statements meet only in a value (JSON
    // nested some ten thousand levels deep).
    code.len() == 5
        && (code.starts_with("22")
            || code.starts_with("23")
            || code.starts_with("44")
            || matches!(code, "45000" | "P0001" | "P0004" | "54000" | "54001"))
}

/// Without a driver there is no database to refuse or miss anything.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
pub(crate) fn is_missing_schema(_error: &DbErr) -> bool {
    false
}

/// Whether `error` says the table or one of its columns is not there: the database was never
/// migrated (or was migrated by an older version). Like an outage, such a failure keeps the
/// records; unlike one, it does not pass on its own, so the writer names it at once.
///
/// SQLite says so only in its message (`no such table: audit_log`, `table audit_log has no
/// column named …`, code 1 like any other error); PostgreSQL with SQLSTATE 42P01
/// (undefined_table) or 42703 (undefined_column); MySQL and MariaDB with 1146 and 1054
/// (SQLSTATE 42S02 and 42S22).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) fn is_missing_schema(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error))) =
        error
    else {
        return false;
    };
    let Some(database) = error.as_database_error() else {
        return false;
    };
    #[cfg(feature = "sqlite")]
    if database
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        let message = database.message();
        return message.starts_with("no such table")
            || (message.starts_with("table ") && message.contains(" has no column named "));
    }
    #[cfg(feature = "mysql")]
    if let Some(mysql) = database.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), 1146 | 1054);
    }
    matches!(database.code().as_deref(), Some("42P01" | "42703"))
}

/// The sink against real databases: SQLite always, PostgreSQL and MySQL when their test URLs
/// are set (each test in its own schema or database, dropped afterwards).
#[cfg(test)]
pub(super) mod tests {
    use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, ModelTrait, QueryOrder};

    use std::sync::Arc;

    use super::{
        DbBackend, InsertMode, MAX_BOUND_COLUMNS, Prebinder, Prebound, SHAPES, SIZES,
        STEADY_SQLITE_STATEMENT_ROWS, Sink, Statements, chunk_exponent, columns, packet_bytes,
        rows_per_statement, statement_cap, statement_sql, template_row,
    };
    use crate::entity::audit_log::{Column, Entity, Model};
    use crate::writer::bind::nulls;

    /// A database to test against.
    pub(crate) struct Target {
        pub(crate) name: &'static str,
        pub(crate) db: DatabaseConnection,
        drop: Option<(DatabaseConnection, String)>,
        _dir: Option<tempfile::TempDir>,
    }

    /// SQLite, and PostgreSQL and MySQL when their test URLs are set, each migrated.
    pub(crate) async fn targets() -> Vec<Target> {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("sink.db").display());
        let mut targets = vec![Target {
            name: "sqlite",
            db: crate::connect(url).await.expect("sqlite"),
            drop: None,
            _dir: Some(dir),
        }];
        let name = format!("sink_{}", uuid::Uuid::new_v4().simple());
        for (backend, var) in [
            ("postgres", "TOWER_AUDIT_TEST_POSTGRES_URL"),
            ("mysql", "TOWER_AUDIT_TEST_MYSQL_URL"),
        ] {
            let compiled = match backend {
                "postgres" => cfg!(feature = "postgres"),
                _ => cfg!(feature = "mysql"),
            };
            let url = std::env::var(var).ok().filter(|_| compiled);
            let Some(url) = url else {
                // Straight to stderr: libtest captures `eprintln!` of passing tests.
                use std::io::Write as _;
                let why = if compiled {
                    format!("set {var} to run it")
                } else {
                    format!("this build has no `{backend}` feature")
                };
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: the {backend} part of a writer::sink test ({why})"
                );
                continue;
            };
            let admin = crate::connect(url.clone()).await.expect("connect");
            let mut options = crate::connect_options(url.clone());
            if backend == "postgres" {
                admin
                    .execute_unprepared(&format!("CREATE SCHEMA {name}"))
                    .await
                    .expect("schema");
                options.set_schema_search_path(name.clone());
                options.max_connections(2);
                targets.push(Target {
                    name: backend,
                    db: sea_orm::Database::connect(options).await.expect("connect"),
                    drop: Some((admin, format!("DROP SCHEMA {name} CASCADE"))),
                    _dir: None,
                });
            } else {
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("database");
                let url = match url.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => url,
                };
                targets.push(Target {
                    name: backend,
                    db: crate::connect(url).await.expect("connect"),
                    drop: Some((admin, format!("DROP DATABASE {name}"))),
                    _dir: None,
                });
            }
        }
        for target in &targets {
            crate::migrate(&target.db).await.expect("migrate");
        }
        targets
    }

    /// Closes the targets and drops their schemas or databases.
    pub(crate) async fn cleanup(targets: Vec<Target>) {
        for target in targets {
            target.db.close().await.expect("close");
            if let Some((admin, statement)) = target.drop {
                admin.execute_unprepared(&statement).await.expect("drop");
            }
        }
    }

    fn row(i: usize) -> Model {
        let at = chrono::DateTime::from_timestamp(1_764_000_000 + i as i64, 123_456_000)
            .expect("timestamp");
        Model {
            record_id: uuid::Uuid::now_v7().to_string(),
            occurred_at: at,
            method: "POST".into(),
            path: format!("/orders/{i}"),
            chain_id: None,
            chain_seq: None,
            ..template_row()
        }
    }

    async fn read_back(db: &DatabaseConnection) -> Vec<Model> {
        Entity::find()
            .order_by_asc(Column::Id)
            .all(db)
            .await
            .expect("select")
            .into_iter()
            .map(|row| Model { id: 0, ..row })
            .collect()
    }

    /// A row with every nullable column null.
    fn nulls_only(i: usize) -> Model {
        let row = row(i);
        Model {
            record_id: row.record_id,
            occurred_at: row.occurred_at,
            method: row.method,
            path: row.path,
            ..crate::writer::null_row()
        }
    }

    /// Every chunk size of every backend gets its SQL built, with every column and with every
    /// nullable column left out; were it `None`, batches would still land (through
    /// `insert_many`), only slower, and no other test would notice.
    #[test]
    fn statements_are_built_for_every_chunk_size_and_set_of_columns() {
        let columns: Vec<Column> = columns().collect();
        assert!(columns.len() <= 64, "a mask has a bit per column");
        let all_nulls = nulls(&[nulls_only(0)], &columns);
        assert_eq!(all_nulls.count_ones(), 23, "the entity's nullable columns");
        for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
            let largest = rows_per_statement(backend).min(1 << (SIZES - 1));
            for rows in [1, 2, 1 << largest.ilog2()] {
                let sql = statement_sql(backend, rows, 0);
                assert!(sql.is_some(), "{backend:?}, {rows} rows");
                let sql = statement_sql(backend, rows, all_nulls).expect("nullable left out");
                for column in ["grpc_status", "user_id", "extra", "key_id", "route"] {
                    assert!(!sql.contains(column), "{backend:?}: {column} left out");
                }
                assert!(sql.contains("record_id") && sql.contains("latency_us"));
            }
        }
    }

    /// The mask holds exactly the columns null in every row.
    #[test]
    fn a_column_is_left_out_only_when_every_row_lacks_it() {
        let columns: Vec<Column> = columns().collect();
        let all_nulls = nulls(&[nulls_only(0)], &columns);
        for (i, column) in columns.iter().enumerate() {
            if all_nulls & (1 << i) == 0 {
                continue;
            }
            let mut rows: Vec<Model> = (0..5).map(nulls_only).collect();
            // The one value sits in the last row: every row is looked at.
            ModelTrait::set(
                &mut rows[4],
                *column,
                ModelTrait::get(&template_row(), *column),
            );
            assert_eq!(
                nulls(&rows, &columns),
                all_nulls & !(1 << i),
                "{column:?} has a value in one row"
            );
        }
        assert_eq!(nulls(&[template_row(), nulls_only(1)], &columns), 0);
    }

    /// At most [`SHAPES`] sets are prepared; a chunk whose nulls match none of them leaves out
    /// the largest of them within its nulls, never a column with a value.
    #[test]
    fn sets_of_left_out_columns_are_bounded() {
        let statements = Statements::new(DbBackend::Sqlite);
        assert_eq!(statements.shape(0), 0);
        let first: Vec<u64> = (0..SHAPES as u64).map(|i| 0b1_0000 << i | 0b11).collect();
        for mask in &first {
            assert_eq!(statements.shape(*mask), *mask);
            assert_eq!(statements.shape(*mask), *mask, "kept");
        }
        // Only 0b1_0011 lies within it.
        assert_eq!(statements.shape(0b1_0111 | 1 << 40), 0b1_0011);
        // Both lie within it: either, the same each time.
        let both = statements.shape(0b11_0011);
        assert!(both == 0b1_0011 || both == 0b10_0011, "{both:#b}");
        assert_eq!(statements.shape(0b11_0011), both);
        // Within none of them: nothing left out.
        assert_eq!(statements.shape(0b1100), 0);
        assert_eq!(statements.shape(1 << 50), 0);
        assert_eq!(super::lock(&statements.admitted).len(), SHAPES);
    }

    /// The MySQL packet estimate never falls short of what the values take: JSON counted with
    /// its escapes, every column within the fixed part.
    #[test]
    fn a_rows_packet_estimate_is_an_upper_bound() {
        assert!(columns().count() <= MAX_BOUND_COLUMNS);
        let tricky = "quote\" back\\ nl\n ctl\u{1} é 🦀";
        let row = Model {
            request_body: Some(tricky.repeat(100)),
            request_headers: Some(serde_json::json!({"x-a": tricky, "n": [1, -2.5e300, null]})),
            extra: Some(serde_json::json!({"deep": {"a": [tricky, true, u64::MAX]}, tricky: ""})),
            ..row(0)
        };
        let json = |value: &Option<serde_json::Value>| {
            serde_json::to_string(value.as_ref().expect("json"))
                .expect("json")
                .len()
        };
        let values = row.record_id.len()
            + row.method.len()
            + row.path.len()
            + row.request_body.as_ref().map_or(0, String::len)
            + json(&row.request_headers)
            + json(&row.extra);
        let estimate = packet_bytes(&row);
        assert!(estimate >= values, "{estimate} < {values}");
        assert!(
            estimate <= values * 2 + 2_048,
            "{estimate}: far off {values}"
        );
    }

    /// Values bound ahead are only used when their chunks are the ones the insert runs; were
    /// the two to differ, every batch would be bound twice, silently.
    #[test]
    fn values_bound_ahead_come_in_the_chunks_the_insert_runs() {
        let sizes = |prebound: Prebound| -> Vec<usize> {
            match prebound {
                #[cfg(feature = "sqlite")]
                Prebound::Sqlite(chunks) => chunks.iter().map(|chunk| chunk.rows).collect(),
                #[cfg(feature = "mysql")]
                Prebound::MySql(chunks) => chunks.iter().map(|chunk| chunk.rows).collect(),
                #[cfg(feature = "postgres")]
                Prebound::Postgres(_) => unreachable!("COPY data has no statement chunks"),
            }
        };
        #[allow(unused_mut, reason = "a backend is pushed per enabled feature")]
        let mut backends = Vec::new();
        #[cfg(feature = "sqlite")]
        backends.push(DbBackend::Sqlite);
        #[cfg(feature = "mysql")]
        backends.push(DbBackend::MySql);
        for (backend, steady) in backends
            .into_iter()
            .flat_map(|backend| [(backend, true), (backend, false)])
        {
            for count in [
                1, 3, 31, 100, 512, 513, 1_000, 1_057, 1_500, 2_048, 8_192, 9_001,
            ] {
                let rows: Vec<Model> = (0..count).map(row).collect();
                let binder = Prebinder {
                    backend,
                    statements: Arc::new(Statements::new(backend)),
                    packet_budget: None,
                    #[cfg(feature = "postgres")]
                    copy_format: None,
                };
                let bound = sizes(binder.bind(&rows, steady).expect("bound"));
                let cap = statement_cap(backend, steady);
                let mut expected = Vec::new();
                let mut rest = count;
                while rest > 0 {
                    let size = 1 << chunk_exponent(backend, rest, cap);
                    expected.push(size);
                    rest -= size;
                }
                assert_eq!(
                    bound, expected,
                    "{backend:?}, {count} rows, steady {steady}"
                );
                // SQLite: short statements while the writer keeps up, the largest in a backlog.
                let largest = bound.iter().copied().max().unwrap_or(0);
                assert_eq!(
                    Some(largest),
                    bound.first().copied(),
                    "the first is the largest"
                );
                match (backend, steady, count) {
                    (DbBackend::Sqlite, true, _) => {
                        assert!(
                            largest <= STEADY_SQLITE_STATEMENT_ROWS,
                            "{count}: {bound:?}"
                        );
                    }
                    (_, false, 2_048..) => assert_eq!(
                        largest,
                        1 << chunk_exponent(backend, count, usize::MAX),
                        "{backend:?}, {count}: the bind limit's largest statement"
                    ),
                    _ => {}
                }
            }
        }
    }

    /// A byte budget cuts chunks short where rows are large, so the first chunk need not be the
    /// largest: the insert, capped at the largest chunk bound ahead, still cuts the same chunks
    /// (were it capped at the first, every such batch would be bound twice).
    #[cfg(feature = "mysql")]
    #[test]
    fn chunks_cut_by_bytes_are_the_ones_bound_ahead() {
        let backend = DbBackend::MySql;
        let rows: Vec<Model> = (0..300)
            .map(|i| Model {
                request_body: (i < 9).then(|| "x".repeat(10_000)),
                ..row(i)
            })
            .collect();
        let budget = Some(40_000);
        let binder = Prebinder {
            backend,
            statements: Arc::new(Statements::new(backend)),
            packet_budget: budget,
            #[cfg(feature = "postgres")]
            copy_format: None,
        };
        let Some(Prebound::MySql(bound)) = binder.bind(&rows, false) else {
            panic!("bound ahead");
        };
        let bound: Vec<usize> = bound.iter().map(|chunk| chunk.rows).collect();
        assert!(
            bound[0] < bound.iter().copied().max().unwrap_or(0),
            "{bound:?}"
        );
        let largest = bound.iter().copied().max().unwrap_or(0);
        let mut insert = Vec::new();
        let mut rest = &rows[..];
        while !rest.is_empty() {
            let size = super::chunk_size(backend, rest, largest, budget).expect("fits");
            insert.push(size);
            rest = &rest[size..];
        }
        assert_eq!(insert, bound);
        let too_large = Model {
            request_body: Some("x".repeat(50_000)),
            ..row(0)
        };
        let refused = super::chunk_size(backend, &[too_large], usize::MAX, budget);
        assert!(refused.is_err_and(|error| super::is_rejection(&error)));
    }

    /// A column or the whole table missing (a database migrated by an older version, or never)
    /// is told from an outage and from a refused row on every backend and in both insert
    /// modes: SQLite's message, PostgreSQL's 42703 and 42P01, MySQL's 1054 and 1146.
    #[tokio::test]
    async fn a_missing_column_or_table_is_told_apart() {
        let targets = targets().await;
        for target in &targets {
            let name = target.name;
            for (change, what) in [
                ("ALTER TABLE audit_log DROP COLUMN latency_us", "column"),
                ("DROP TABLE audit_log", "table"),
            ] {
                target.db.execute_unprepared(change).await.expect(change);
                for mode in [InsertMode::Fast, InsertMode::Portable] {
                    let error = Sink::new(target.db.clone(), mode)
                        .insert(&[row(0)], None)
                        .await
                        .expect_err("no such column or table");
                    assert!(
                        super::is_missing_schema(&error) && !super::is_rejection(&error),
                        "{name} {mode:?}, missing {what}: {error}"
                    );
                }
            }
            // A call that timed out (a stalled connection) is not.
            let stalled = sea_orm::DbErr::Custom("insert did not complete within 1s".into());
            assert!(!super::is_missing_schema(&stalled));
        }
        cleanup(targets).await;
    }

    /// Values that consecutive rows share are bound once and shared (SQLite): runs, values that
    /// come back after another one, nulls inside a run and a value equal to the one before it
    /// only in another column all land as written, bound ahead and bound during the insert.
    #[tokio::test]
    async fn repeated_values_land_in_the_right_rows() {
        let targets = targets().await;
        let methods = [
            "GET", "GET", "POST", "GET", "GET", "DELETE", "DELETE", "GET",
        ];
        let agents = [
            Some("a/1"),
            Some("a/1"),
            None,
            Some("a/1"),
            Some("b/2"),
            None,
            None,
        ];
        let addresses = ["10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "GET"];
        let rows: Vec<Model> = (0..40)
            .map(|i| Model {
                method: methods[i % methods.len()].into(),
                user_agent: agents[i % agents.len()].map(Into::into),
                client_ip: Some(addresses[i % addresses.len()].into()),
                peer_ip: (i % 3 != 0).then(|| addresses[(i + 1) % addresses.len()].into()),
                route: Some("/orders/{id}".into()),
                tenant_id: (i % 4 == 0).then(|| "t-1".into()),
                ..row(i)
            })
            .collect();
        for target in &targets {
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            let (during, ahead) = rows.split_at(17);
            sink.insert(during, None).await.expect("insert");
            // PostgreSQL encodes ahead once its first `COPY` has learnt the table's format.
            let prebound = sink.prebinder().and_then(|binder| binder.bind(ahead, true));
            assert!(prebound.is_some(), "{}", target.name);
            sink.insert(ahead, prebound).await.expect("insert");
            assert_eq!(read_back(&target.db).await, rows, "{}", target.name);
        }
        cleanup(targets).await;
    }

    #[tokio::test]
    async fn rows_read_back_exactly_as_written_in_both_modes() {
        let targets = targets().await;
        let tricky =
            "tab\there, line\nbreak, cr\rreturn, back\\slash, \\N, quote' \"dq\", é 漢字 🦀";
        for target in &targets {
            let mut rows = vec![
                Model {
                    request_body: Some(tricky.into()),
                    query: Some("a=1&b=%09".into()),
                    user_agent: Some(String::new()),
                    extra: Some(serde_json::json!({"note": tricky, "n": [1, 2.5, null, true]})),
                    request_headers: Some(serde_json::json!({"x-a": "b\\c"})),
                    request_body_truncated: true,
                    status: Some(201),
                    latency_us: i64::MAX,
                    chain_id: Some("chain-1".into()),
                    chain_seq: Some(7),
                    ..row(0)
                },
                nulls_only(1),
            ];
            // Values bound ahead, as the writer does after converting a batch.
            let mut fast = Sink::new(target.db.clone(), InsertMode::Fast);
            let prebound = fast.prebinder().and_then(|binder| binder.bind(&rows, true));
            fast.insert(&rows, prebound).await.expect("fast insert");
            let portable = vec![Model {
                request_body: Some(tricky.into()),
                ..row(2)
            }];
            Sink::new(target.db.clone(), InsertMode::Portable)
                .insert(&portable, None)
                .await
                .expect("portable insert");
            rows.extend(portable);
            assert_eq!(read_back(&target.db).await, rows, "{}", target.name);
        }
        cleanup(targets).await;
    }

    /// The fast path binds values itself: what it stores must be byte for byte what SeaORM's
    /// `insert_many` stores (SQLite keeps any type in any column, so a bool bound as text or a
    /// time in another format would still read back, yet sort and compare differently).
    #[tokio::test]
    async fn both_modes_store_the_same_values_with_the_same_types() {
        let targets = targets().await;
        for target in &targets {
            let full = Model {
                request_body: Some("{\"a\":\"é\"}".into()),
                query: Some("a=1".into()),
                extra: Some(serde_json::json!({"n": [1, 2.5, null, true]})),
                request_headers: Some(serde_json::json!({"x-a": "b"})),
                request_body_truncated: true,
                status: Some(201),
                latency_us: 1234,
                chain_id: Some("chain-1".into()),
                chain_seq: Some(7),
                ..row(0)
            };
            let empty = Model {
                request_id: None,
                route: None,
                status: None,
                request_headers: None,
                extra: None,
                chain_id: None,
                chain_seq: None,
                ..row(1)
            };
            for (mode, rows) in [
                (InsertMode::Fast, [full.clone(), empty.clone()]),
                (
                    InsertMode::Portable,
                    [
                        Model {
                            record_id: "portable-full".into(),
                            chain_seq: Some(8),
                            ..full.clone()
                        },
                        Model {
                            record_id: "portable-empty".into(),
                            ..empty.clone()
                        },
                    ],
                ),
            ] {
                let mut sink = Sink::new(target.db.clone(), mode);
                // A row per statement: the fast path leaves the empty row's nulls out of its.
                for row in rows {
                    sink.insert(std::slice::from_ref(&row), None)
                        .await
                        .expect("insert");
                }
            }
            let backend = target.db.get_database_backend();
            let rendered = |column: Column| {
                let name = sea_orm::Iden::to_string(&column);
                match backend {
                    DbBackend::Sqlite => format!("typeof({name}) || ':' || quote({name})"),
                    DbBackend::Postgres => {
                        format!("pg_typeof({name})::text || ':' || {name}::text")
                    }
                    _ => format!("COALESCE(HEX({name}), 'null')"),
                }
            };
            let compared: Vec<Column> = super::columns()
                .filter(|c| !matches!(c, Column::RecordId | Column::ChainSeq))
                .collect();
            let sql = format!(
                "SELECT {} FROM audit_log ORDER BY id",
                compared
                    .iter()
                    .map(|c| rendered(*c))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let rows = target
                .db
                .query_all_raw(sea_orm::Statement::from_string(backend, sql))
                .await
                .expect("select");
            let rendered: Vec<Vec<Option<String>>> = rows
                .iter()
                .map(|row| {
                    (0..compared.len())
                        .map(|i| row.try_get_by_index::<Option<String>>(i).expect("text"))
                        .collect()
                })
                .collect();
            assert_eq!(rendered.len(), 4, "{}", target.name);
            for (fast, portable) in [(0, 2), (1, 3)] {
                for (i, column) in compared.iter().enumerate() {
                    assert_eq!(
                        rendered[fast][i], rendered[portable][i],
                        "{}: {column:?} differs between the modes",
                        target.name
                    );
                }
            }
        }
        cleanup(targets).await;
    }

    /// Chunks with nulls in many patterns, more sets of them than [`SHAPES`], with values
    /// bound ahead and not: every row reads back as written.
    #[tokio::test]
    async fn rows_with_nulls_in_any_pattern_read_back_as_written() {
        let targets = targets().await;
        let columns: Vec<Column> = columns().collect();
        let nullable = nulls(&[nulls_only(0)], &columns);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for target in &targets {
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            let mut all: Vec<Model> = Vec::new();
            for batch in 0..24 {
                let size = [1, 5, 64, 100][batch % 4];
                // Columns null throughout the batch, and others null in some rows only.
                let always = random() & nullable;
                let rows: Vec<Model> = (all.len()..all.len() + size)
                    .map(|i| {
                        let fresh = row(i);
                        let mut model = Model {
                            record_id: fresh.record_id,
                            occurred_at: fresh.occurred_at,
                            chain_seq: Some(i as i64),
                            request_headers: Some(serde_json::json!({"x-a": "b"})),
                            extra: Some(serde_json::json!({"n": i})),
                            ..template_row()
                        };
                        let sometimes = random() & random();
                        for (j, column) in columns.iter().enumerate() {
                            if (always | sometimes) & nullable & (1 << j) != 0 {
                                let null = ModelTrait::get(&nulls_only(0), *column);
                                ModelTrait::set(&mut model, *column, null);
                            }
                        }
                        model
                    })
                    .collect();
                let prebound = sink
                    .prebinder()
                    .filter(|_| batch % 2 == 1)
                    .and_then(|binder| binder.bind(&rows, size < 100));
                sink.insert(&rows, prebound).await.expect("insert");
                all.extend(rows);
            }
            assert_eq!(read_back(&target.db).await, all, "{}", target.name);
            if target.name != "postgres" {
                // Sets were left out, as many as are kept (`COPY` has no statements).
                assert_eq!(
                    super::lock(&sink.statements.admitted).len(),
                    SHAPES,
                    "{}",
                    target.name
                );
            }
        }
        cleanup(targets).await;
    }

    #[tokio::test]
    async fn a_record_already_written_is_skipped_and_its_batch_still_lands() {
        let targets = targets().await;
        for target in &targets {
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            let rows: Vec<Model> = (0..4).map(row).collect();
            sink.insert(&rows[..2], None).await.expect("first");
            // A retry whose first attempt did commit: rows[1] is in the table already.
            sink.insert(&rows[1..], None).await.expect("retry");
            assert_eq!(read_back(&target.db).await, rows, "{}", target.name);
        }
        cleanup(targets).await;
    }

    #[tokio::test]
    async fn batches_of_any_size_land_whole_and_in_order() {
        let targets = targets().await;
        for target in &targets {
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            let mut all = Vec::new();
            // 300 and 1,500 are no powers of two; 300 is bound as a steady batch (SQLite
            // statements of 64 rows), 1,500 as a backlog (statements of up to 1,024). Each size is
            // written once with its values bound on the spot and once bound ahead.
            for size in [1, 3, 300, 1_500] {
                for bind_ahead in [false, true] {
                    let rows: Vec<Model> = (all.len()..all.len() + size).map(row).collect();
                    let prebound = sink
                        .prebinder()
                        .filter(|_| bind_ahead)
                        .and_then(|binder| binder.bind(&rows, size < 1_000));
                    sink.insert(&rows, prebound).await.expect("insert");
                    all.extend(rows);
                }
            }
            assert_eq!(read_back(&target.db).await, all, "{}", target.name);
        }
        cleanup(targets).await;
    }

    /// MySQL: a statement's values travel in one packet, which the server refuses past
    /// `max_allowed_packet` (closing the connection, which looks like an outage): rows that
    /// together exceed it go in several statements, bound ahead or not, and a row that alone
    /// exceeds it is refused as a row, for the writer to store in its safe form.
    #[cfg(feature = "mysql")]
    #[tokio::test]
    async fn mysql_statements_stay_within_max_allowed_packet() {
        let targets = targets().await;
        for target in targets.iter().filter(|t| t.name == "mysql") {
            let limit = target
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::MySql,
                    "SELECT CAST(@@max_allowed_packet AS SIGNED)",
                ))
                .await
                .expect("select")
                .expect("a row")
                .try_get_by_index::<i64>(0)
                .expect("a number");
            let limit = usize::try_from(limit).expect("positive");
            if limit > 64 << 20 {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: max_allowed_packet is {limit} bytes, too large to exceed cheaply"
                );
                continue;
            }
            // Twelve rows of an eighth of the limit each: one and a half packets' worth.
            let body = "x".repeat(limit / 8);
            let rows: Vec<Model> = (0..24)
                .map(|i| Model {
                    request_body: Some(body.clone()),
                    ..row(i)
                })
                .collect();
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            sink.insert(&rows[..12], None)
                .await
                .expect("bound during the insert");
            let prebound = sink
                .prebinder()
                .and_then(|binder| binder.bind(&rows[12..], false));
            assert!(prebound.is_some(), "bound ahead");
            sink.insert(&rows[12..], prebound)
                .await
                .expect("bound ahead");
            let mut portable = Sink::new(target.db.clone(), InsertMode::Portable);
            let more: Vec<Model> = (24..36)
                .map(|i| Model {
                    request_body: Some(body.clone()),
                    ..row(i)
                })
                .collect();
            portable.insert(&more, None).await.expect("portable");
            let written = read_back(&target.db).await;
            assert_eq!(written.len(), 36);
            assert!(
                written
                    .iter()
                    .all(|row| row.request_body.as_ref() == Some(&body))
            );

            let huge = Model {
                request_body: Some("y".repeat(limit + 1)),
                ..row(99)
            };
            for mode in [InsertMode::Fast, InsertMode::Portable] {
                let error = Sink::new(target.db.clone(), mode)
                    .insert(std::slice::from_ref(&huge), None)
                    .await
                    .expect_err("a row past max_allowed_packet");
                assert!(super::is_rejection(&error), "{mode:?}: {error}");
            }
            // The connection is still fine for the rows that follow.
            sink.insert(&[row(100)], None)
                .await
                .expect("after the refusal");
            assert_eq!(read_back(&target.db).await.len(), 37);
        }
        cleanup(targets).await;
    }

    /// A time no backend but SQLite takes (the year 5001 BC): MySQL's encoder cannot bind it
    /// (its years are unsigned 16-bit), PostgreSQL's timestamps end at 4713 BC. Either way the
    /// row is refused as a row, on every path, so that the writer isolates it. Bound by the fast
    /// path, MySQL's failure was reported as `DbErr::Custom`, which the writer took for an
    /// outage: the row was retried, or journaled and replayed, forever.
    #[tokio::test]
    async fn a_time_the_backend_cannot_take_is_refused_as_a_row() {
        use chrono::TimeZone as _;
        let targets = targets().await;
        for target in &targets {
            let ancient = chrono::Utc
                .with_ymd_and_hms(-5000, 1, 1, 0, 0, 0)
                .single()
                .expect("a time");
            let poison = |i| Model {
                occurred_at: ancient,
                ..row(i)
            };
            let mut fast = Sink::new(target.db.clone(), InsertMode::Fast);
            // Once so that the sink knows the table (MySQL's packet limit, the COPY format).
            fast.insert(&[row(0)], None).await.expect("a first row");
            let rows = [poison(1)];
            let attempts = [
                (
                    InsertMode::Fast,
                    fast.prebinder().and_then(|b| b.bind(&rows, true)),
                ),
                (InsertMode::Fast, None),
                (InsertMode::Portable, None),
            ];
            for (mode, prebound) in attempts {
                let result = match mode {
                    InsertMode::Fast => fast.insert(&rows, prebound).await,
                    _ => Sink::new(target.db.clone(), mode).insert(&rows, None).await,
                };
                match (target.name, result) {
                    ("sqlite", result) => {
                        result.expect("SQLite keeps any time as text");
                        target
                            .db
                            .execute_unprepared("DELETE FROM audit_log WHERE id > 1")
                            .await
                            .expect("delete");
                    }
                    (name, Ok(())) => panic!("{name} {mode:?}: the row was taken"),
                    (name, Err(error)) => assert!(
                        super::is_rejection(&error),
                        "{name} {mode:?}: taken for an outage: {error:?}"
                    ),
                }
            }
        }
        cleanup(targets).await;
    }

    /// JSON nested 50,000 levels deep (the layer's own rows nest at most 128, the limit of
    /// the parse that redacts `extra`; a journal replays whatever rows it holds): PostgreSQL's
    /// parser runs out of stack (SQLSTATE 54001) and MariaDB's `json_valid` check refuses it.
    /// Either way a refusal of the row: PostgreSQL's was taken for an outage. On a thread with
    /// a large stack, as cloning, encoding and dropping such a value recurse.
    #[test]
    fn json_nested_too_deep_is_refused_as_a_row() {
        let thread = std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(nested_too_deep())
            })
            .expect("thread");
        thread.join().expect("the test");
    }

    async fn nested_too_deep() {
        let targets = targets().await;
        let mut deep = serde_json::json!(1);
        for _ in 0..50_000 {
            deep = serde_json::Value::Array(vec![deep]);
        }
        for target in &targets {
            let rows = [Model {
                extra: Some(deep.clone()),
                ..row(0)
            }];
            for mode in [InsertMode::Fast, InsertMode::Portable] {
                let result = Sink::new(target.db.clone(), mode).insert(&rows, None).await;
                match (target.name, result) {
                    // SQLite keeps JSON as text, unchecked.
                    ("sqlite", result) => {
                        result.expect("stored");
                        target
                            .db
                            .execute_unprepared("DELETE FROM audit_log")
                            .await
                            .expect("delete");
                    }
                    (name, Ok(())) => panic!("{name} {mode:?}: the row was taken"),
                    (name, Err(error)) => assert!(
                        super::is_rejection(&error),
                        "{name} {mode:?}: taken for an outage: {error:?}"
                    ),
                }
            }
        }
        cleanup(targets).await;
    }

    /// PostgreSQL: binary `COPY` for the table `migrate` makes; text `COPY` for a table with a
    /// column type the binary encoder does not know (here a domain), with the same rows.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_copies_binary_and_falls_back_to_text() {
        use super::copy::Binary;
        let targets = targets().await;
        for target in targets.iter().filter(|t| t.name == "postgres") {
            let tricky = "tab\tline\nback\\slash é 🦀";
            let rows: Vec<Model> = (0..3)
                .map(|i| Model {
                    request_body: Some(tricky.into()),
                    extra: Some(serde_json::json!({"k": tricky})),
                    ..row(i)
                })
                .collect();
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            sink.insert(&rows[..1], None).await.expect("binary");
            let format = sink.copier.format.clone().flatten().expect("binary format");
            let format: Vec<Binary> = format.to_vec();
            assert!(format.contains(&Binary::Jsonb) && format.contains(&Binary::TimestampTz));

            target
                .db
                .execute_unprepared(
                    "CREATE DOMAIN audit_path AS text; \
                     ALTER TABLE audit_log ALTER COLUMN path TYPE audit_path",
                )
                .await
                .expect("domain");
            let mut sink = Sink::new(target.db.clone(), InsertMode::Fast);
            sink.insert(&rows[1..], None).await.expect("text");
            assert_eq!(sink.copier.format, Some(None), "text format");
            assert_eq!(read_back(&target.db).await, rows);
        }
        cleanup(targets).await;
    }
}
