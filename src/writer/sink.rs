//! Inserting a batch: `insert_many` statements chunked below the backend's bind-parameter limit,
//! all in one transaction.

use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Iterable, QueryTrait,
    TransactionTrait,
};

use crate::entity::audit_log::{ActiveModel, Column, Entity};

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

pub(crate) fn statements(backend: DbBackend, rows: Vec<ActiveModel>) -> Vec<InsertStatement> {
    let per_statement = rows_per_statement(backend);
    let mut statements = Vec::with_capacity(rows.len().div_ceil(per_statement));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<ActiveModel> = rows.by_ref().take(per_statement).collect();
        statements.push(Entity::insert_many(chunk).into_query());
    }
    statements
}

pub(crate) async fn insert(
    db: &DatabaseConnection,
    statements: &[InsertStatement],
) -> Result<(), DbErr> {
    let transaction = db.begin().await?;
    for statement in statements {
        transaction.execute(statement).await?;
    }
    transaction.commit().await
}
