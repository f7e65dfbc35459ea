//! The SeaORM entity of the `audit_log` table.
//!
//! Query it like any SeaORM entity:
//!
//! ```no_run
//! use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
//! use tower_audit::entity::audit_log;
//!
//! # async fn run(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
//! let failures = audit_log::Entity::find()
//!     .filter(audit_log::Column::Status.gte(500))
//!     .order_by_desc(audit_log::Column::OccurredAt)
//!     .all(db)
//!     .await?;
//! # let _ = failures;
//! # Ok(())
//! # }
//! ```

pub mod audit_checkpoint;
pub mod audit_log;
