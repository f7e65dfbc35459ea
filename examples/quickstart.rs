//! The quick start: an axum API whose every request lands in an audit table.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Settings, from the environment:
//!
//! | variable | default |
//! | --- | --- |
//! | `BIND_ADDR` | `127.0.0.1:3000` |
//! | `DATABASE_URL` | `sqlite://audit.db?mode=rwc` (`postgres://…` and `mysql://…` need `--features postgres` or `mysql`) |
//! | `TRUSTED_PROXIES` | none: comma-separated CIDRs of proxies whose `X-Forwarded-For` is believed |
//!
//! Routes: `GET /health` (not audited), `POST /login` (`{"username","password"}`; the password
//! `correct horse` returns a token), and with `Authorization: Bearer <token>`: `POST /orders`,
//! `GET /orders/{id}`, `DELETE /orders/{id}`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_audit::client_ip::TrustedProxies;
use tower_audit::{AuditContext, AuditLayer};

/// Users' tokens and their orders, in memory.
#[derive(Clone, Debug, Default)]
pub struct AppState {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    orders: Arc<Mutex<Orders>>,
}

#[derive(Debug, Default)]
struct Orders {
    next_id: u64,
    by_id: HashMap<u64, Value>,
}

/// The application, audited by `audit`.
pub fn app(state: AppState, audit: AuditLayer) -> Router {
    let orders = Router::new()
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(get_order).delete(delete_order))
        // Inside the audit layer, so the user it finds is recorded, and its 401s too.
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/login", post(login))
        .merge(orders)
        .layer(audit)
        .with_state(state)
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(State(state): State<AppState>, Json(login): Json<Login>) -> Response {
    if login.password != "correct horse" {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "bad credentials" })),
        )
            .into_response();
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    state
        .tokens
        .lock()
        .expect("state lock")
        .insert(token.clone(), login.username);
    Json(json!({ "token": token })).into_response()
}

/// Checks the bearer token and tells the audit trail who the caller is.
async fn require_token(
    State(state): State<AppState>,
    audit: Option<Extension<AuditContext>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = token.and_then(|t| state.tokens.lock().expect("state lock").get(t).cloned());
    let Some(user) = user else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "missing or bad token" })),
        )
            .into_response();
    };
    if let Some(Extension(audit)) = audit {
        audit.set_user(user);
    }
    next.run(request).await
}

async fn create_order(State(state): State<AppState>, Json(order): Json<Value>) -> Response {
    let mut orders = state.orders.lock().expect("state lock");
    orders.next_id += 1;
    let id = orders.next_id;
    orders.by_id.insert(id, order);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn get_order(State(state): State<AppState>, Path(id): Path<u64>) -> Response {
    match state.orders.lock().expect("state lock").by_id.get(&id) {
        Some(order) => Json(json!({ "id": id, "order": order })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_order(State(state): State<AppState>, Path(id): Path<u64>) -> StatusCode {
    match state.orders.lock().expect("state lock").by_id.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

#[allow(dead_code)] // Also compiled into tests, which use only `app`.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://audit.db?mode=rwc".into());

    let db = tower_audit::connect(url.clone()).await?;
    tower_audit::migrate(&db).await?;
    // Without trusted proxies the socket peer is the client, whatever the headers claim.
    let proxies = match std::env::var("TRUSTED_PROXIES") {
        Ok(cidrs) => TrustedProxies::from_comma_separated(&cidrs)?,
        Err(_) => TrustedProxies::none(),
    };
    let (audit, guard) = AuditLayer::builder(db)
        .skip_path("/health")
        .trusted_proxies(proxies)
        .build()?;

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!("listening on http://{bind}, auditing into {url}");
    axum::serve(
        listener,
        app(AppState::default(), audit).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;

    let report = guard.shutdown(Duration::from_secs(10)).await?;
    tracing::info!(
        written = report.written,
        dropped = report.dropped,
        lost = report.lost,
        "audit trail flushed"
    );
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
