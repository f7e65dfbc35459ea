//! The same audit layer on a plain hyper 1 server: no axum.
//!
//! ```sh
//! cargo run --example hyper_server
//! curl -X POST localhost:3001/echo -H 'content-type: application/json' -d '{"hello":"world"}'
//! ```
//!
//! The peer address comes from `accept()` and reaches the layer as a [`PeerAddr`] extension.
//! Ctrl-C or SIGTERM stops it, after open connections finish and the trail is flushed.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_audit::{AuditLayer, PeerAddr, RequestBody};

async fn handle(
    request: Request<RequestBody<Incoming>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/") => Response::new(Full::new(Bytes::from_static(b"hello from hyper\n"))),
        ("POST", "/echo") => match request.into_body().collect().await {
            Ok(body) => Response::new(Full::new(body.to_bytes())),
            Err(_) => status(StatusCode::BAD_REQUEST),
        },
        _ => status(StatusCode::NOT_FOUND),
    };
    Ok(response)
}

fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://audit-hyper.db?mode=rwc".into());
    let db = tower_audit::connect(url).await?;
    tower_audit::migrate(&db).await?;
    let (audit, guard) = AuditLayer::builder(db).build()?;

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!("listening on http://{bind}");
    serve(listener, audit, shutdown_signal()).await?;
    let report = guard.shutdown(Duration::from_secs(10)).await?;
    tracing::info!(
        written = report.written,
        lost = report.lost,
        "audit trail flushed"
    );
    Ok(())
}

/// Serves `listener` through `audit` until `stop` completes, then lets open connections finish
/// (for up to 5 s) so that their records reach the writer.
pub async fn serve(
    listener: tokio::net::TcpListener,
    audit: AuditLayer,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut connections = tokio::task::JoinSet::new();
    // Made once: a signal that arrives while a connection is being set up is not missed.
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut stop => break,
        };
        let service = ServiceBuilder::new()
            // Outside the audit layer, so it sees the peer.
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .layer(audit.clone())
            .service_fn(handle);
        connections.spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Ctrl-C or SIGTERM (`kill`, `docker stop`, systemd): either flushes the trail before the
/// process exits, where SIGTERM's default would end it with the last records still queued.
pub async fn shutdown_signal() {
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
