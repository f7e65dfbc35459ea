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
pub async fn migrate<C: ConnectionTrait>(db: &C) -> Result<(), Error> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Sqlite {
        // WAL is a property of the file; an in-memory database answers "memory" and stays as is.
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
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
        db.execute(&insert).await?;
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
    match db.query_all_raw(select).await {
        Ok(_) => Ok(()),
        Err(error) => Err(DbErr::Migration(format!(
            "audit_log exists but is not the table tower-audit writes ({error}): it was made by \
             another tool or by hand; rename it, or use another database or schema"
        ))
        .into()),
    }
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
