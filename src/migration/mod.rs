//! Migrations that create and evolve the `audit_log` table, run by [`migrate`].
//!
//! Applied versions are kept in their own table, `tower_audit_migrations`, so they never mix with
//! the application's own migration history (a shared `seaql_migrations` table would make either
//! migrator see the other's versions as unknown).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), tower_audit::Error> {
//! let db = tower_audit::connect("sqlite://audit.db?mode=rwc").await?;
//! tower_audit::migrate(&db).await?;
//! # Ok(())
//! # }
//! ```

mod m20261125_000001_create_audit_log;
mod m20261207_000002_exact_chain_ids;

pub(crate) use m20261125_000001_create_audit_log::{
    IP_LEN, LONG_TEXT_BYTES, METHOD_LEN, REQUEST_ID_LEN, SHORT_TEXT_LEN,
};

use chrono::Utc;
use sea_orm::sea_query::{Alias, ColumnDef, Expr, ExprTrait, Query, Table};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, StatementBuilder};

use crate::Error;

/// The table that lists applied versions.
const MIGRATIONS_TABLE: &str = "tower_audit_migrations";

/// Every migration, oldest first: `(version, up)`.
const MIGRATIONS: &[&str] = &[
    m20261125_000001_create_audit_log::VERSION,
    m20261207_000002_exact_chain_ids::VERSION,
];

/// Creates or updates the `audit_log` table and its indexes; safe to call at every start.
///
/// Works on SQLite, PostgreSQL and MySQL/MariaDB. On SQLite it also switches the database file to
/// WAL mode, so that the writer's inserts do not block readers.
///
/// Besides the design's indexes it creates two for the store's lookups, `request_id` and
/// `(client_ip, occurred_at)`. Each costs the writer most when its keys arrive out of order:
/// requests from many addresses, or random request ids from a gateway (on SQLite about four
/// times fewer rows a second; the README's benchmarks give the figures). A deployment that does
/// not need fast lookups by one of them can drop its index: migrating again does not recreate
/// it.
///
/// Replicas that start together may each call it: one applies a migration, and the others,
/// which lose the race to create a table or record a version, try again (up to about
/// 13 seconds, waiting longer each time) and find it applied.
pub async fn migrate<C: ConnectionTrait>(db: &C) -> Result<(), Error> {
    // Found by a probe: of 8 replicas migrating a new database at once, 7 failed (a version
    // recorded twice; on PostgreSQL a `CREATE TABLE IF NOT EXISTS` that lost the race).
    const TRIES: u32 = 8;
    let mut tried = 0;
    loop {
        tried += 1;
        match migrate_once(db).await {
            Ok(()) => return Ok(()),
            // A table of another shape is no race: said at once.
            Err(error @ Error::Database(DbErr::Migration(_))) => return Err(error),
            Err(error) if tried >= TRIES => return Err(error),
            Err(error) => {
                let pause = std::time::Duration::from_millis(50 << Ord::min(tried, 7));
                let pause = pause / 2 + pause.mul_f64(fastrand::f64() / 2.0);
                tracing::info!(
                    %error,
                    retry_in = ?pause,
                    "tower-audit: migration failed (another process migrating at once?); trying again"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

async fn migrate_once<C: ConnectionTrait>(db: &C) -> Result<(), Error> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Sqlite {
        // WAL is a property of the file; an in-memory database answers "memory" and stays as is.
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    // Everything applied already: nothing is created, so a user with the rights to read and
    // write rows alone, as a least-privileged application's, may call it at every start too
    // (found by a probe: its first statement, a `CREATE TABLE IF NOT EXISTS`, was refused).
    let mut all_applied = true;
    for version in MIGRATIONS {
        // An error: no table of versions yet, or no right to read it.
        if !applied(db, version).await.unwrap_or(false) {
            all_applied = false;
            break;
        }
    }
    if all_applied {
        return columns_are_there(db).await;
    }
    let mut create = Table::create();
    create
        .table(Alias::new(MIGRATIONS_TABLE))
        .if_not_exists()
        .col(
            ColumnDef::new(Alias::new("version"))
                .string_len(64)
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Alias::new("applied_at"))
                .string_len(40)
                .not_null(),
        );
    db.execute(&create).await?;

    for version in MIGRATIONS {
        if applied(db, version).await? {
            continue;
        }
        tracing::info!(version, "tower-audit: applying migration");
        match *version {
            m20261125_000001_create_audit_log::VERSION => {
                m20261125_000001_create_audit_log::up(db).await?
            }
            m20261207_000002_exact_chain_ids::VERSION => {
                m20261207_000002_exact_chain_ids::up(db).await?
            }
            other => return Err(DbErr::Migration(format!("unknown migration {other}")).into()),
        }
        let mut insert = Query::insert();
        insert
            .into_table(Alias::new(MIGRATIONS_TABLE))
            .columns([Alias::new("version"), Alias::new("applied_at")])
            .values_panic([(*version).into(), Utc::now().to_rfc3339().into()]);
        if let Err(error) = db.execute(&insert).await {
            // Another process applied it and recorded it first.
            if !applied(db, version).await? {
                return Err(error.into());
            }
        }
    }
    columns_are_there(db).await
}

/// Whether `audit_log` holds every column the writer writes: a table of that name made by
/// hand or by another tool (which the creation's `IF NOT EXISTS` keeps as it is) is named at
/// once, rather than at the writer's first insert or the store's first query.
async fn columns_are_there<C: ConnectionTrait>(db: &C) -> Result<(), Error> {
    use sea_orm::{EntityTrait, Iterable, QuerySelect, QueryTrait};

    use crate::entity::audit_log;

    let select = audit_log::Entity::find()
        .select_only()
        .columns(audit_log::Column::iter())
        .limit(0)
        .build(db.get_database_backend());
    if let Err(error) = db.query_all_raw(select).await {
        return Err(DbErr::Migration(format!(
            "audit_log exists but is not the table tower-audit writes ({error}): it was made by \
             another tool or by hand; rename it, or use another database or schema"
        ))
        .into());
    }
    // The writer's inserts are idempotent on `record_id` through its unique index: without it,
    // a record retried after an insert whose outcome was unknown, or a journal replayed twice,
    // was stored twice on PostgreSQL and MariaDB, and on SQLite its `ON CONFLICT` failed for
    // ever (found by a probe, on a table made by hand with every column).
    if !record_id_is_unique(db).await? {
        return Err(DbErr::Migration(
            "audit_log exists but has no unique index on record_id, which the writer's inserts \
             rely on to store each record once: it was made by another tool or by hand; add \
             one (CREATE UNIQUE INDEX … ON audit_log (record_id)), or rename the table and \
             migrate again"
                .into(),
        )
        .into());
    }
    Ok(())
}

/// Whether `audit_log` has a unique index on `record_id` alone.
async fn record_id_is_unique<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => {
            "SELECT 1 FROM pragma_index_list('audit_log') AS i \
             WHERE i.\"unique\" = 1 \
             AND (SELECT group_concat(name) FROM pragma_index_info(i.name)) = 'record_id'"
        }
        DbBackend::Postgres => {
            "SELECT 1 FROM pg_index i JOIN pg_attribute a \
             ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
             WHERE i.indrelid = 'audit_log'::regclass AND i.indisunique \
             AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = 'record_id'"
        }
        _ => {
            "SELECT 1 FROM information_schema.statistics s \
             WHERE s.table_schema = DATABASE() AND s.table_name = 'audit_log' \
             AND s.non_unique = 0 AND s.column_name = 'record_id' \
             AND (SELECT COUNT(*) FROM information_schema.statistics t \
                  WHERE t.table_schema = s.table_schema AND t.table_name = s.table_name \
                  AND t.index_name = s.index_name) = 1"
        }
    };
    let found = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await?;
    Ok(found.is_some())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    /// Found by a probe: an `audit_log` of another shape, which the creation's `IF NOT EXISTS`
    /// left as it was, passed for migrated, and the first query failed on a missing column.
    #[tokio::test]
    async fn an_audit_log_of_another_shape_is_named() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        sea_orm::ConnectionTrait::execute_unprepared(
            &db,
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, occurred_at TEXT, method TEXT, \
             path TEXT, status INTEGER, latency_us INTEGER)",
        )
        .await
        .unwrap();
        let error = super::migrate(&db).await.unwrap_err().to_string();
        assert!(
            error.contains("audit_log exists but is not the table"),
            "{error}"
        );
        assert!(error.contains("record_id"), "{error}");

        // Its own table passes, and again.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        super::migrate(&db).await.unwrap();
        super::migrate(&db).await.unwrap();
    }

    /// Found by a probe: a table made by hand with every column but no unique index on
    /// `record_id` passed, and a record retried or replayed was stored twice (on SQLite, its
    /// `ON CONFLICT` failed for ever).
    #[tokio::test]
    async fn an_audit_log_without_a_unique_record_id_is_named() {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        super::migrate(&db).await.unwrap();
        let index: Option<String> = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT name FROM pragma_index_list('audit_log') WHERE \"unique\" = 1 \
                 AND origin = 'u'",
            ))
            .await
            .unwrap()
            .and_then(|row| row.try_get_by_index(0).ok());
        assert!(index.is_some(), "the column's own unique index");
        // SQLite cannot drop a column constraint's index: the table made again without it.
        db.execute_unprepared(
            "CREATE TABLE copy AS SELECT * FROM audit_log; DROP TABLE audit_log; \
             ALTER TABLE copy RENAME TO audit_log",
        )
        .await
        .unwrap();
        let error = super::migrate(&db).await.unwrap_err().to_string();
        assert!(error.contains("no unique index on record_id"), "{error}");
        db.execute_unprepared("CREATE UNIQUE INDEX by_record ON audit_log (record_id)")
            .await
            .unwrap();
        super::migrate(&db).await.unwrap();
    }
}

async fn applied<C: ConnectionTrait>(db: &C, version: &str) -> Result<bool, DbErr> {
    let mut select = Query::select();
    select
        .expr(Expr::col(Alias::new("version")))
        .from(Alias::new(MIGRATIONS_TABLE))
        .and_where(Expr::col(Alias::new("version")).eq(version));
    let statement = StatementBuilder::build(&select, &db.get_database_backend());
    Ok(db.query_one_raw(statement).await?.is_some())
}
