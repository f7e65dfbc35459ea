//! A tonic 0.14 server behind `AuditLayer`: unary, server-, client- and bidirectional streaming.
//!
//! ```sh
//! cargo run --example tonic_server --features tonic           # serves on 127.0.0.1:50051
//! cargo run --example tonic_server --features tonic -- demo   # serves, calls itself, prints the rows
//! ```
//!
//! `BIND_ADDR` and `DATABASE_URL` change where it listens and writes (default `./audit.db`). The
//! service is generated from `proto/demo.proto` into `proto/generated/` (see that file for how to
//! regenerate it; no `protoc` needed).

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use tower_audit::AuditLayer;

#[allow(clippy::all, unreachable_pub, missing_docs)]
mod demo {
    include!("../proto/generated/tower_audit.demo.v1.rs");
}

use demo::demo_server::{Demo, DemoServer};
use demo::{LoginRequest, Ping, Pong};

#[derive(Debug, Default)]
struct DemoService;

type PongStream = Pin<Box<dyn Stream<Item = Result<Pong, Status>> + Send>>;

fn pong(message: String, index: u32) -> Pong {
    Pong { message, index }
}

#[tonic::async_trait]
impl Demo for DemoService {
    async fn unary(&self, request: Request<Ping>) -> Result<Response<Pong>, Status> {
        let ping = request.into_inner();
        if ping.message.is_empty() {
            return Err(Status::invalid_argument("message is empty"));
        }
        Ok(Response::new(pong(ping.message, 0)))
    }

    type ServerStreamStream = PongStream;

    async fn server_stream(
        &self,
        request: Request<Ping>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let ping = request.into_inner();
        let replies =
            (0..ping.count.min(100)).map(move |i| Ok(pong(format!("{} {i}", ping.message), i)));
        Ok(Response::new(Box::pin(tokio_stream::iter(replies))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<Ping>>,
    ) -> Result<Response<Pong>, Status> {
        let mut stream = request.into_inner();
        let mut joined = Vec::new();
        while let Some(ping) = stream.message().await? {
            joined.push(ping.message);
        }
        Ok(Response::new(pong(joined.join(","), 0)))
    }

    type BidiStream = PongStream;

    async fn bidi(
        &self,
        request: Request<Streaming<Ping>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        let replies = request
            .into_inner()
            .map(|ping| ping.map(|ping| pong(format!("re: {}", ping.message), ping.count)));
        Ok(Response::new(Box::pin(replies)))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<Pong>, Status> {
        let login = request.into_inner();
        if login.password != "correct horse" {
            return Err(Status::unauthenticated("wrong password"));
        }
        Ok(Response::new(pong(
            format!("welcome {}", login.username),
            0,
        )))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::args().nth(1).as_deref() == Some("demo");
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://audit.db?mode=rwc".into());
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| {
        if demo {
            "127.0.0.1:0"
        } else {
            "127.0.0.1:50051"
        }
        .into()
    });

    let db = tower_audit::connect(url).await?;
    tower_audit::migrate(&db).await?;
    // Skips health and reflection services; records `authorization` metadata, redacted.
    let (audit, guard) = AuditLayer::builder_for_grpc(db.clone()).build()?;

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .layer(audit)
            .add_service(DemoServer::new(DemoService))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
    );
    println!("gRPC on {addr}; Ctrl-C or SIGTERM stops");

    if demo {
        call_once_each(addr).await?;
    } else {
        shutdown_signal().await;
    }
    let _ = stop.send(());
    server.await??;
    // Every record still queued reaches the database before the process exits.
    let report = guard.shutdown(Duration::from_secs(5)).await?;
    println!("{} records written", report.written);

    if demo {
        use sea_orm::{EntityTrait, QueryOrder};
        use tower_audit::entity::audit_log;
        let rows = audit_log::Entity::find()
            .order_by_desc(audit_log::Column::Id)
            .all(&db)
            .await?;
        for row in rows.iter().take(5).rev() {
            println!(
                "{:<40} grpc_status={:<4} in={:<2} out={:<2} error={:?} body={:?}",
                row.route.as_deref().unwrap_or_default(),
                row.grpc_status.map_or("-".into(), |s| s.to_string()),
                row.grpc_messages_in.unwrap_or_default(),
                row.grpc_messages_out.unwrap_or_default(),
                row.error.as_deref().unwrap_or_default(),
                row.request_body.as_deref().unwrap_or_default(),
            );
        }
    }
    Ok(())
}

/// A client making one call of each kind.
async fn call_once_each(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    use demo::demo_client::DemoClient;
    let mut client = DemoClient::connect(format!("http://{addr}")).await?;
    let ping = |message: &str, count| Ping {
        message: message.into(),
        mode: String::new(),
        count,
    };
    client.unary(ping("hello", 0)).await?;
    let _ = client.unary(ping("", 0)).await; // InvalidArgument
    let mut stream = client.server_stream(ping("tick", 3)).await?.into_inner();
    while stream.message().await?.is_some() {}
    client
        .client_stream(tokio_stream::iter(["a", "b"].map(|m| ping(m, 0))))
        .await?;
    let mut replies = client
        .bidi(tokio_stream::iter(["x", "y"].map(|m| ping(m, 0))))
        .await?
        .into_inner();
    while replies.message().await?.is_some() {}
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
}
