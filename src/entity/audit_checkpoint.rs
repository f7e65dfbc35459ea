//! `audit_checkpoint`: where each hash chain stood at a point in time, so that rows removed from
//! the end of a chain are noticed; optionally signed with Ed25519 so that anyone holding only the
//! public key can check it. A `purge` checkpoint records the last hash removed by retention.

use sea_orm::entity::prelude::*;

/// One checkpoint of one chain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "audit_checkpoint")]
pub struct Model {
    /// Insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The chain.
    pub chain_id: String,
    /// The last sequence number written when the checkpoint was taken.
    pub chain_seq: i64,
    /// That row's `row_hash`.
    pub row_hash: String,
    /// `checkpoint` (periodic or at shutdown) or `purge` (retention removed rows up to here).
    pub kind: String,
    /// When the checkpoint was taken.
    pub created_at: DateTimeUtc,
    #[cfg_attr(
        feature = "integrity",
        doc = "Ed25519 signature (hex) of [`signed_message`](crate::integrity::signed_message), if the"
    )]
    #[cfg_attr(
        not(feature = "integrity"),
        doc = "Ed25519 signature (hex) of `integrity::signed_message` (feature `integrity`), if the"
    )]
    /// writer signs checkpoints.
    pub signature: Option<String>,
}

/// `audit_checkpoint` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
