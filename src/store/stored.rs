//! Rows that do not decode: a value stored in a column whose type cannot hold it. SQLite checks
//! no types, so whoever can write the file can plant `5.5` in `chain_seq` or `'abc'` in
//! `status` (PostgreSQL and MySQL/MariaDB refuse such a value, or store it converted to the
//! column's type). A writer never stores one: only tampering takes these paths, and only after
//! a query failed to decode. One planted value then neither stops an export, which writes its
//! row as stored, nor hides behind the decoder's words where a page of rows cannot show it.

use chrono::{DateTime, Utc};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use sea_orm::RuntimeErr;
use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryResult, QuerySelect, QueryTrait,
    Select,
};
use serde_json::Value;

use crate::Error;
use crate::entity::audit_checkpoint as checkpoint;
use crate::entity::audit_log::{Column, Entity, Model};

/// A row read back whole, or, when some of its values do not fit their columns, as stored.
#[derive(Debug)]
pub(crate) enum Stored {
    Row(Model),
    Unreadable(UnreadableRow),
}

/// A row holding values its columns cannot hold.
#[derive(Debug)]
pub(crate) struct UnreadableRow {
    /// The row, each value that does not fit replaced by a placeholder: never to be taken for
    /// the stored row, only for the values that did read.
    pub(crate) model: Model,
    /// The columns that do not read, each with its stored value.
    pub(crate) unreadable: Vec<(&'static str, StoredValue)>,
}

/// A value as stored, whatever its column's type.
#[derive(Clone, Debug)]
pub(crate) struct StoredValue {
    /// As JSON: a number or text as such, a blob as the text of its SQL literal (`x'00ff'`).
    pub(crate) json: Value,
    /// The same for a query's bound value, so that a keyset can go on past it.
    pub(crate) sql: sea_orm::Value,
}

impl std::fmt::Display for StoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.json, &self.sql) {
            // A blob, as its SQL literal, unquoted.
            (Value::String(text), sea_orm::Value::Bytes(_)) => f.write_str(text),
            (Value::String(text), _) if text.chars().count() > 40 => {
                let start: String = text.chars().take(39).collect();
                write!(f, "{:?}", format!("{start}…"))
            }
            (json, _) => write!(f, "{json}"),
        }
    }
}

impl UnreadableRow {
    /// The values that do not read.
    pub(crate) fn values(&self) -> impl Iterator<Item = UnreadableValue> + '_ {
        self.unreadable
            .iter()
            .map(|(column, value)| UnreadableValue {
                table: "audit_log",
                id: self.model.id,
                column,
                value: value.to_string(),
            })
    }

    /// An [`Error::UnreadableRow`] naming `column`'s value, or the first that does not read.
    pub(crate) fn error(&self, column: Option<&str>) -> Error {
        let found = self
            .values()
            .find(|v| column.is_none_or(|c| c == v.column))
            .or_else(|| self.values().next());
        match found {
            Some(value) => Error::UnreadableRow(value),
            None => Error::UnreadableRow(UnreadableValue {
                table: "audit_log",
                id: self.model.id,
                column: "?",
                value: String::new(),
            }),
        }
    }

    /// Whether `column`'s stored value did not read.
    pub(crate) fn holds_unreadable(&self, column: &str) -> bool {
        self.unreadable.iter().any(|(c, _)| *c == column)
    }

    /// `column`'s stored value, for a keyset, where it did not read.
    pub(crate) fn stored(&self, column: &str) -> Option<sea_orm::Value> {
        self.unreadable
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, stored)| stored.sql.clone())
    }

    /// The stored `chain_seq`, for a keyset by position: the model's where it read.
    pub(crate) fn chain_seq(&self) -> Option<sea_orm::Value> {
        match self.unreadable.iter().find(|(c, _)| *c == "chain_seq") {
            Some((_, stored)) => Some(stored.sql.clone()),
            None => self.model.chain_seq.map(sea_orm::Value::from),
        }
    }
}

/// A value stored in a column whose type cannot hold it (SQLite keeps any value in any column):
/// `status` holding `"abc"`, `chain_seq` holding `5.5`. No writer stores one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} {id}: {column} holds {value}, which its column cannot hold",
    if *table == "audit_checkpoint" { "checkpoint" } else { "row" }
)]
#[non_exhaustive]
pub struct UnreadableValue {
    /// The table: `audit_log`, or `audit_checkpoint` for a checkpoint or purge tombstone of an
    /// export with proof.
    pub table: &'static str,
    /// The row's `id`.
    pub id: i64,
    /// The column.
    pub column: &'static str,
    /// The stored value: a number, text in quotes, or a blob as its SQL literal (`x'00ff'`).
    pub value: String,
}

/// A value read back that its field's type cannot hold (what tampering with a database file
/// stores), as opposed to a database that cannot be reached or refuses the query.
/// The bytes a hex text names, either case; `None` for anything else.
pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn undecodable(error: &DbErr) -> bool {
    match error {
        DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } => true,
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        DbErr::Query(RuntimeErr::SqlxError(error)) => matches!(
            **error,
            sea_orm::sqlx::Error::ColumnDecode { .. } | sea_orm::sqlx::Error::Decode(_)
        ),
        _ => false,
    }
}

/// The rows `select` reads, one query each: whole where they decode, as stored where they do not.
/// For a query that failed to decode: its ids always read (an integer primary key).
pub(crate) async fn rows<C: ConnectionTrait>(
    db: &C,
    select: Select<Entity>,
) -> Result<Vec<Stored>, Error> {
    let ids: Vec<i64> = select
        .select_only()
        .column(Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(row) = db.query_one(&Entity::find_by_id(id).into_query()).await? else {
            // Removed since the ids were read (a purge).
            continue;
        };
        rows.push(match Model::from_query_result(&row, "") {
            Ok(model) => Stored::Row(model),
            Err(error) if undecodable(&error) => Stored::Unreadable(as_stored(&row)?),
            Err(error) => return Err(error.into()),
        });
    }
    Ok(rows)
}

/// The checkpoints `select` reads: whole where they decode, else as the JSON object of their
/// columns with the values that do not read as stored, and those values.
pub(crate) async fn checkpoints<C: ConnectionTrait>(
    db: &C,
    select: Select<checkpoint::Entity>,
) -> Result<Vec<Result<checkpoint::Model, (Value, Vec<UnreadableValue>)>>, Error> {
    match select.clone().all(db).await {
        Ok(marks) => return Ok(marks.into_iter().map(Ok).collect()),
        Err(error) if undecodable(&error) => {}
        Err(error) => return Err(error.into()),
    }
    let ids: Vec<i64> = select
        .select_only()
        .column(checkpoint::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut marks = Vec::with_capacity(ids.len());
    for id in ids {
        let query = checkpoint::Entity::find_by_id(id).into_query();
        let Some(row) = db.query_one(&query).await? else {
            continue;
        };
        match checkpoint::Model::from_query_result(&row, "") {
            Ok(mark) => marks.push(Ok(mark)),
            Err(error) if undecodable(&error) => marks.push(Err(checkpoint_as_stored(&row)?)),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(marks)
}

/// A checkpoint that does not decode, read a column at a time, as [`checkpoints`] gives it.
fn checkpoint_as_stored(row: &QueryResult) -> Result<(Value, Vec<UnreadableValue>), Error> {
    let mut unreadable = Vec::new();
    macro_rules! get {
        ($column:literal, $default:expr) => {
            match row.try_get("", $column) {
                Ok(value) => value,
                Err(error) if undecodable(&error) => {
                    unreadable.push(($column, stored(row, $column)));
                    $default
                }
                Err(error) => return Err(error.into()),
            }
        };
    }
    let mark = checkpoint::Model {
        id: get!("id", 0),
        chain_id: get!("chain_id", String::new()),
        chain_seq: get!("chain_seq", 0),
        row_hash: get!("row_hash", String::new()),
        kind: get!("kind", String::new()),
        created_at: get!("created_at", DateTime::<Utc>::UNIX_EPOCH),
        signature: get!("signature", None),
    };
    let mut object = serde_json::to_value(&mark).map_err(|e| DbErr::Json(e.to_string()))?;
    for (column, stored) in &unreadable {
        object[*column] = stored.json.clone();
    }
    let values = unreadable
        .into_iter()
        .map(|(column, value)| UnreadableValue {
            table: "audit_checkpoint",
            id: mark.id,
            column,
            value: value.to_string(),
        })
        .collect();
    Ok((object, values))
}

/// A row that does not decode, read a column at a time.
fn as_stored(row: &QueryResult) -> Result<UnreadableRow, Error> {
    let mut unreadable = Vec::new();
    macro_rules! get {
        ($column:literal, $default:expr) => {
            match row.try_get("", $column) {
                Ok(value) => value,
                Err(error) if undecodable(&error) => {
                    unreadable.push(($column, stored(row, $column)));
                    $default
                }
                Err(error) => return Err(error.into()),
            }
        };
    }
    let model = Model {
        id: get!("id", 0),
        record_id: get!("record_id", String::new()),
        occurred_at: get!("occurred_at", DateTime::<Utc>::UNIX_EPOCH),
        request_id: get!("request_id", None),
        method: get!("method", String::new()),
        path: get!("path", String::new()),
        route: get!("route", None),
        query: get!("query", None),
        status: get!("status", None),
        grpc_status: get!("grpc_status", None),
        grpc_messages_in: get!("grpc_messages_in", None),
        grpc_messages_out: get!("grpc_messages_out", None),
        latency_us: get!("latency_us", 0),
        client_ip: get!("client_ip", None),
        peer_ip: get!("peer_ip", None),
        user_agent: get!("user_agent", None),
        user_id: get!("user_id", None),
        tenant_id: get!("tenant_id", None),
        action: get!("action", None),
        resource: get!("resource", None),
        request_body: get!("request_body", None),
        request_body_truncated: get!("request_body_truncated", false),
        request_bytes: get!("request_bytes", 0),
        response_bytes: get!("response_bytes", 0),
        request_headers: get!("request_headers", None),
        extra: get!("extra", None),
        error: get!("error", None),
        chain_id: get!("chain_id", None),
        chain_seq: get!("chain_seq", None),
        prev_hash: get!("prev_hash", None),
        row_hash: get!("row_hash", None),
        key_id: get!("key_id", None),
    };
    Ok(UnreadableRow { model, unreadable })
}

/// The value stored in `column`, whatever its type: an integer, a real, text or a blob.
fn stored(row: &QueryResult, column: &str) -> StoredValue {
    let of = |json: Value, sql: sea_orm::Value| StoredValue { json, sql };
    if let Ok(Some(n)) = row.try_get::<Option<i64>>("", column) {
        return of(n.into(), n.into());
    }
    if let Ok(Some(x)) = row.try_get::<Option<f64>>("", column) {
        let json =
            serde_json::Number::from_f64(x).map_or_else(|| x.to_string().into(), Value::Number);
        return of(json, x.into());
    }
    if let Ok(Some(text)) = row.try_get::<Option<String>>("", column) {
        return of(text.as_str().into(), text.into());
    }
    if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>>("", column) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        return of(format!("x'{hex}'").into(), bytes.into());
    }
    of(Value::Null, None::<String>.into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::sqlx;

    use super::*;

    /// Only a stored value the model cannot hold is a break; a database that cannot be reached
    /// stays an error, whichever query it interrupts.
    #[test]
    fn only_values_that_do_not_decode_are_breaks() {
        let sqlx = |error: sqlx::Error| RuntimeErr::SqlxError(Arc::new(error));
        let decode = || sqlx::Error::ColumnDecode {
            index: "\"extra\"".into(),
            source: "expected ident".into(),
        };
        assert!(undecodable(&DbErr::Query(sqlx(decode()))));
        assert!(undecodable(&DbErr::Query(sqlx(sqlx::Error::Decode(
            "garbage".into()
        )))));
        assert!(undecodable(&DbErr::Type("i32".into())));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!undecodable(&DbErr::Query(sqlx(sqlx::Error::Io(refused)))));
        assert!(!undecodable(&DbErr::Conn(sqlx(sqlx::Error::PoolTimedOut))));
        assert!(!undecodable(&DbErr::Query(sqlx(sqlx::Error::PoolClosed))));
        assert!(!undecodable(&DbErr::Exec(sqlx(decode()))));
    }
}
