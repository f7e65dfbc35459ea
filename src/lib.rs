//! An automatic, trustworthy audit trail for Tower services: axum, tonic and plain hyper.
//!
//! [`AuditLayer`] records every request — method, path, matched route, query, client address,
//! user agent, user and tenant, request id, a sanitized capped request body, status, latency, byte
//! counts and errors — and hands each record to a background writer over a bounded queue. The
//! writer inserts batches through SeaORM into SQLite, PostgreSQL or MySQL/MariaDB. The request
//! never waits for the database.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tower_audit::AuditLayer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let db = tower_audit::connect("sqlite://audit.db?mode=rwc").await?;
//! tower_audit::migrate(&db).await?;
//! let (audit, guard) = AuditLayer::builder(db).skip_path("/health").build()?;
//!
//! let app = Router::new()
//!     .route("/orders/{id}", get(|| async { "order" }))
//!     .layer(audit);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(
//!     listener,
//!     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
//! )
//! .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//! .await?;
//!
//! // Every record still queued reaches the database before the process exits.
//! guard.shutdown(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How a request is recorded
//!
//! 1. [`Audit`] notes what the request says (cheap clones only) and puts an [`AuditContext`] into
//!    its extensions, for handlers and auth middleware to add the user, tenant and more.
//! 2. The request body is teed into a capped buffer as the handler reads it ([`RequestBody`]); a
//!    small JSON or form body is read ahead within a bounded wait so a handler that rejects the
//!    request unread still leaves the body in the row.
//! 3. [`ResponseBody`] forwards every frame and trailer and finishes the record exactly once: at
//!    the end of the body, on an error, or when the body or the future is dropped early (the
//!    client went away).
//! 4. The record is pushed onto a bounded queue ([`Overflow`] says what a full queue does); the
//!    writer sanitizes it with the [`Redactor`](sanitize::Redactor) and inserts it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
pub mod client_ip;
mod context;
mod database;
pub mod entity;
mod error;
mod future;
mod grpc;
mod identity;
#[cfg(feature = "integrity")]
pub mod integrity;
mod layer;
mod migration;
mod panics;
mod record;
pub mod sanitize;
mod service;
pub mod store;
#[cfg(test)]
mod test_logs;
#[cfg(test)]
mod test_util;
mod writer;

pub use body::{RequestBody, ResponseBody};
pub use context::AuditContext;
#[cfg(feature = "sqlite")]
pub use database::sqlite_settings;
pub use database::{connect, connect_options};
pub use error::Error;
pub use future::ResponseFuture;
pub use identity::Identity;
#[cfg(feature = "jwt")]
pub use identity::JwtIdentity;
pub use layer::{AuditLayer, AuditLayerBuilder};
pub use migration::migrate;
/// The `prost-reflect` version whose [`DescriptorPool`](prost_reflect::DescriptorPool)
/// [`AuditLayerBuilder::grpc_descriptors`] takes.
#[cfg(feature = "grpc-reflect")]
pub use prost_reflect;
pub use record::AuditRecord;
pub use service::{Audit, PeerAddr};
pub use writer::{
    AuditWriter, FsyncPolicy, InsertMode, Overflow, ShutdownReport, WriterGuard, WriterStats,
};

// The README's Rust snippets, compiled (and run, unless `no_run`) as doctests so that they stay
// true to the crate.
#[cfg(all(doctest, feature = "axum", feature = "sqlite", feature = "integrity"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
