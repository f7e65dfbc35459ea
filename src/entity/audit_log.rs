//! `audit_log`: one row per audited request.
//!
//! The column names are a contract with users' SQL and dashboards: they do not change once
//! released; more columns may be added. The table itself is created by
//! [`migrate`](crate::migrate), which picks each column's type per backend.

use sea_orm::entity::prelude::*;

/// One audited request.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When the request arrived (UTC).
    pub occurred_at: DateTimeUtc,
    /// `x-request-id` of the request, else a generated UUID v7.
    pub request_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// Matched route template (`/orders/{id}`), or gRPC `package.Service/Method`.
    pub route: Option<String>,
    /// Sanitized query string.
    pub query: Option<String>,
    /// HTTP status; null when no response was produced.
    pub status: Option<i32>,
    /// gRPC status code, from the response headers or trailers.
    pub grpc_status: Option<i32>,
    /// gRPC messages the service read from the request stream; null for other requests.
    pub grpc_messages_in: Option<i64>,
    /// gRPC messages sent on the response stream; null for other requests.
    pub grpc_messages_out: Option<i64>,
    /// From arrival to the end of the response body (or abort), in microseconds.
    pub latency_us: i64,
    /// Resolved client address (trusted proxies honoured).
    pub client_ip: Option<String>,
    /// Address of the socket peer (the nearest proxy, when there is one).
    pub peer_ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// The authenticated principal.
    pub user_id: Option<String>,
    /// Tenant, for multi-tenant services.
    pub tenant_id: Option<String>,
    /// What the request did in domain terms, as set through `AuditContext`.
    pub action: Option<String>,
    /// What the request acted on, as set through `AuditContext`.
    pub resource: Option<String>,
    /// Sanitized, size-capped request body.
    pub request_body: Option<String>,
    /// The stored body is only a prefix of the body the client sent.
    pub request_body_truncated: bool,
    /// Request body bytes read by the service.
    pub request_bytes: i64,
    /// Response body bytes sent.
    pub response_bytes: i64,
    /// Sanitized request headers that the layer was asked to record, as a JSON object.
    pub request_headers: Option<Json>,
    /// Free-form fields set through `AuditContext`, as a JSON object.
    pub extra: Option<Json>,
    /// What went wrong: inner error, gRPC message, body error, cancellation.
    pub error: Option<String>,
}

/// `audit_log` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
