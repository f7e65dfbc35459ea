//! On MySQL and MariaDB, compares chain ids and checkpoint kinds by their bytes.
//!
//! The tables were made with `utf8mb4_unicode_ci`, under which `api`, `API` and `api ` are one
//! value: writers given those chain ids continued one chain (two at once collided on its unique
//! positions and lost rows), verification named one of them, and a signed checkpoint relabelled
//! `PURGE` was taken for a purge tombstone. A binary collation that does not pad keeps them
//! apart, as PostgreSQL and SQLite do. The other backends have nothing to change.

use sea_orm::{ConnectionTrait, DbBackend, DbErr};

use super::{SHORT_TEXT_LEN, m20261125_000001_create_audit_log::KIND_LEN};

pub(super) const VERSION: &str = "m20261207_000002_exact_chain_ids";

pub(super) async fn up<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::MySql {
        return Ok(());
    }
    // By bytes, and without padding: `utf8mb4_bin` still takes `api` for `api `. MariaDB names
    // its collation that does not pad `utf8mb4_nopad_bin`, MySQL 8 `utf8mb4_0900_bin`; MySQL
    // 5.7 has only `utf8mb4_bin`.
    let found = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::MySql,
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS \
             WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') \
             ORDER BY COLLATION_NAME DESC LIMIT 1",
        ))
        .await?;
    let collation = match found {
        Some(row) => row.try_get_by_index::<String>(0)?,
        None => "utf8mb4_bin".to_owned(),
    };
    let exact = format!("CHARACTER SET utf8mb4 COLLATE {collation}");
    db.execute_unprepared(&format!(
        "ALTER TABLE `audit_log` MODIFY `chain_id` VARCHAR({SHORT_TEXT_LEN}) {exact} NULL"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "ALTER TABLE `audit_checkpoint` \
         MODIFY `chain_id` VARCHAR({SHORT_TEXT_LEN}) {exact} NOT NULL, \
         MODIFY `kind` VARCHAR({KIND_LEN}) {exact} NOT NULL"
    ))
    .await?;
    Ok(())
}
