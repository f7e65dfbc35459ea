//! Creates `audit_log` with the indexes of the design: `occurred_at`, and `(user_id, occurred_at)`,
//! `(route, occurred_at)`, `(status, occurred_at)`, `(tenant_id, occurred_at)`, plus those the
//! store's lookups need: `request_id` and `(client_ip, occurred_at)`. On PostgreSQL and SQLite
//! the user, tenant and chain indexes leave out rows where that column is null.

use sea_orm::sea_query::{
    ColumnDef, ConditionalStatement, Expr, ExprTrait, Index, IndexCreateStatement, Table,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Iden};

use crate::entity::audit_log::{Column, Entity};

pub(super) const VERSION: &str = "m20261125_000001_create_audit_log";

/// Limits of the short text columns; the writer cuts longer values to fit.
pub(crate) const METHOD_LEN: u32 = 32;
pub(crate) const RECORD_ID_LEN: u32 = 64;
pub(crate) const REQUEST_ID_LEN: u32 = 128;
pub(crate) const SHORT_TEXT_LEN: u32 = 255;
pub(crate) const IP_LEN: u32 = 64;
pub(crate) const HASH_LEN: u32 = 80;
/// A checkpoint's kind: `checkpoint` or `purge`.
pub(super) const KIND_LEN: u32 = 16;
/// MySQL's MEDIUMTEXT holds 16 MiB; every long text is capped well below.
pub(crate) const LONG_TEXT_BYTES: usize = 1 << 20;

pub(super) async fn up<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let long_text = |column: Column, null: bool| {
        let mut def = ColumnDef::new(column);
        match backend {
            // MySQL's TEXT stops at 64 KiB, below a redacted 64 KiB body.
            DbBackend::MySql => def.custom(sea_orm::sea_query::Alias::new("MEDIUMTEXT")),
            _ => def.text(),
        };
        if null {
            def.null()
        } else {
            def.not_null()
        };
        def
    };
    let short = |column: Column, len: u32| ColumnDef::new(column).string_len(len).null().to_owned();

    let mut occurred_at = ColumnDef::new(Column::OccurredAt);
    match backend {
        // DATETIME keeps microseconds and has no 2038 limit; values are always UTC.
        DbBackend::MySql => occurred_at.custom(sea_orm::sea_query::Alias::new("DATETIME(6)")),
        _ => occurred_at.timestamp_with_time_zone(),
    };
    occurred_at.not_null();

    let mut table = Table::create();
    table
        .table(Entity)
        .if_not_exists()
        .col(
            ColumnDef::new(Column::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Column::RecordId)
                .string_len(RECORD_ID_LEN)
                .not_null()
                .unique_key(),
        )
        .col(occurred_at)
        .col(short(Column::RequestId, REQUEST_ID_LEN))
        .col(
            ColumnDef::new(Column::Method)
                .string_len(METHOD_LEN)
                .not_null(),
        )
        .col(long_text(Column::Path, false))
        .col(short(Column::Route, SHORT_TEXT_LEN))
        .col(long_text(Column::Query, true))
        .col(ColumnDef::new(Column::Status).integer().null())
        .col(ColumnDef::new(Column::GrpcStatus).integer().null())
        .col(ColumnDef::new(Column::GrpcMessagesIn).big_integer().null())
        .col(ColumnDef::new(Column::GrpcMessagesOut).big_integer().null())
        .col(ColumnDef::new(Column::LatencyUs).big_integer().not_null())
        .col(short(Column::ClientIp, IP_LEN))
        .col(short(Column::PeerIp, IP_LEN))
        .col(long_text(Column::UserAgent, true))
        .col(short(Column::UserId, SHORT_TEXT_LEN))
        .col(short(Column::TenantId, SHORT_TEXT_LEN))
        .col(short(Column::Action, SHORT_TEXT_LEN))
        .col(long_text(Column::Resource, true))
        .col(long_text(Column::RequestBody, true))
        .col(
            ColumnDef::new(Column::RequestBodyTruncated)
                .boolean()
                .not_null()
                .default(false),
        )
        .col(
            ColumnDef::new(Column::RequestBytes)
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Column::ResponseBytes)
                .big_integer()
                .not_null()
                .default(0),
        )
        .col(ColumnDef::new(Column::RequestHeaders).json_binary().null())
        .col(ColumnDef::new(Column::Extra).json_binary().null())
        .col(long_text(Column::Error, true))
        .col(short(Column::ChainId, SHORT_TEXT_LEN))
        .col(ColumnDef::new(Column::ChainSeq).big_integer().null())
        .col(short(Column::PrevHash, HASH_LEN))
        .col(short(Column::RowHash, HASH_LEN))
        .col(short(Column::KeyId, SHORT_TEXT_LEN));

    let indexes = indexes(backend);
    if backend == DbBackend::MySql {
        // MySQL has no CREATE INDEX IF NOT EXISTS: declare the indexes with the table.
        table.character_set("utf8mb4").collate("utf8mb4_unicode_ci");
        for mut index in indexes {
            table.index(&mut index);
        }
        db.execute(&table).await?;
    } else {
        db.execute(&table).await?;
        for mut index in indexes {
            index.if_not_exists();
            db.execute(&index).await?;
        }
    }
    create_checkpoints(db).await
}

async fn create_checkpoints<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    use crate::entity::audit_checkpoint::{Column as C, Entity as Checkpoints};
    let backend = db.get_database_backend();
    let mut created_at = ColumnDef::new(C::CreatedAt);
    match backend {
        DbBackend::MySql => created_at.custom(sea_orm::sea_query::Alias::new("DATETIME(6)")),
        _ => created_at.timestamp_with_time_zone(),
    };
    let mut table = Table::create();
    table
        .table(Checkpoints)
        .if_not_exists()
        .col(
            ColumnDef::new(C::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(
            ColumnDef::new(C::ChainId)
                .string_len(SHORT_TEXT_LEN)
                .not_null(),
        )
        .col(ColumnDef::new(C::ChainSeq).big_integer().not_null())
        .col(ColumnDef::new(C::RowHash).string_len(HASH_LEN).not_null())
        .col(ColumnDef::new(C::Kind).string_len(KIND_LEN).not_null())
        .col(created_at.not_null().to_owned())
        .col(ColumnDef::new(C::Signature).string_len(256).null());
    let mut index = Index::create();
    index
        .name("idx_audit_checkpoint_chain")
        .table(Checkpoints)
        .col(C::ChainId)
        .col(C::ChainSeq);
    if backend == DbBackend::MySql {
        table.character_set("utf8mb4").collate("utf8mb4_unicode_ci");
        table.index(&mut index);
        db.execute(&table).await?;
    } else {
        db.execute(&table).await?;
        index.if_not_exists();
        db.execute(&index).await?;
    }
    Ok(())
}

fn indexes(backend: DbBackend) -> Vec<IndexCreateStatement> {
    let named = |name: &str, columns: &[Column]| {
        let mut index = Index::create();
        index
            .name(format!("idx_{}_{name}", Entity.to_string()))
            .table(Entity);
        for column in columns {
            index.col(*column);
        }
        index
    };
    // Partial where the backend has them (PostgreSQL, SQLite): rows without a user, a tenant
    // or a chain — anonymous requests, single-tenant services, integrity off — cost no entry.
    // `column = ?` implies `column IS NOT NULL`, so lookups still use these indexes.
    let unless_null = |mut index: IndexCreateStatement, column: Column| {
        if backend != DbBackend::MySql {
            index.and_where(Expr::col(column).is_not_null());
        }
        index
    };
    vec![
        named("occurred_at", &[Column::OccurredAt]),
        unless_null(
            named("user_occurred", &[Column::UserId, Column::OccurredAt]),
            Column::UserId,
        ),
        named("route_occurred", &[Column::Route, Column::OccurredAt]),
        named("status_occurred", &[Column::Status, Column::OccurredAt]),
        unless_null(
            named("tenant_occurred", &[Column::TenantId, Column::OccurredAt]),
            Column::TenantId,
        ),
        // One row per position in a chain: a writer that shares its chain id with another finds
        // a place taken, and seals its rows again after the other's.
        {
            let mut chain = named("chain_seq", &[Column::ChainId, Column::ChainSeq]);
            chain.unique();
            unless_null(chain, Column::ChainId)
        },
        // Lookups by request id and by client address (`store::AuditFilter`).
        named("request_id", &[Column::RequestId]),
        named(
            "client_ip_occurred",
            &[Column::ClientIp, Column::OccurredAt],
        ),
    ]
}
