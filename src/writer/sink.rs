//! Inserting rows: `insert_many` statements chunked below the backend's bind-parameter limit, all
//! in one transaction, idempotent on `record_id`; and telling a database that is away from one
//! that refuses a row.

use sea_orm::sea_query::{InsertStatement, OnConflict};
use sea_orm::{
    ActiveValue, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, Iterable, QueryTrait, RuntimeErr, TransactionTrait,
};

use crate::entity::audit_log::{ActiveModel, Column, Entity, Model};

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

/// Rows per statement: every column but `id` is bound.
pub(crate) fn rows_per_statement(backend: DbBackend) -> usize {
    let columns = Column::iter().count() - 1;
    (bind_limit(backend) / columns).max(1)
}

fn statements(backend: DbBackend, rows: &[Model]) -> Vec<InsertStatement> {
    rows.chunks(rows_per_statement(backend))
        .map(|chunk| {
            let models = chunk.iter().map(|row| {
                let mut active: ActiveModel = row.clone().into_active_model();
                active.id = ActiveValue::NotSet;
                active
            });
            let mut insert = Entity::insert_many(models).into_query();
            // A retry after an insert whose outcome was unknown, or a journal replayed twice,
            // must not write a record again.
            insert.on_conflict(
                OnConflict::column(Column::RecordId)
                    .do_nothing_on([Column::Id])
                    .to_owned(),
            );
            insert
        })
        .collect()
}

pub(crate) async fn insert(db: &DatabaseConnection, rows: &[Model]) -> Result<(), DbErr> {
    let statements = statements(db.get_database_backend(), rows);
    let transaction = db.begin().await?;
    for statement in &statements {
        transaction.execute(statement).await?;
    }
    transaction.commit().await
}

/// Whether the database refused the rows themselves (a value too long, bad encoding, a
/// constraint) rather than being away, busy or locked. Only a refusal is worth splitting a batch
/// for: retrying it unchanged would fail forever.
pub(crate) fn is_rejection(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(error)) | DbErr::Query(RuntimeErr::SqlxError(error))) =
        error
    else {
        return false;
    };
    let Some(database) = error.as_database_error() else {
        return false;
    };
    let code = database.code();
    let code = code.as_deref().unwrap_or_default();
    #[cfg(feature = "mysql")]
    if let Some(mysql) = database.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        // Incorrect string value, out of range, truncated, null, invalid JSON.
        if matches!(
            mysql.number(),
            1048 | 1264 | 1265 | 1292 | 1366 | 1406 | 3140
        ) {
            return true;
        }
    }
    // SQLite (numeric, maybe extended): TOOBIG, CONSTRAINT, MISMATCH; BUSY and LOCKED are
    // transient.
    #[cfg(feature = "sqlite")]
    if database
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return code
            .parse::<u32>()
            .is_ok_and(|c| matches!(c & 0xff, 18..=20));
    }
    // SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation).
    code.len() == 5 && (code.starts_with("22") || code.starts_with("23"))
}
