//! The example servers stop on Ctrl-C or SIGTERM, flushing the trail first: SIGTERM is what
//! `kill`, `docker stop` and systemd send, and its default ends the process with the last
//! records still queued.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/hyper_server.rs"]
mod hyper_server;

#[cfg(feature = "tonic")]
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/tonic_server.rs"]
mod tonic_server;

use std::future::Future;
use std::time::Duration;

/// Sends this process SIGTERM once `stop` listens, and waits for `stop` to see it. Without a
/// handler, the signal ends the test binary, which fails the test run.
async fn stops_on_sigterm(stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    // One poll installs the handlers.
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut stop)
            .await
            .is_err(),
        "stopped before any signal"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("SIGTERM did not stop the server");
}

/// One test, the servers one after the other: a signal reaches every listener of the
/// process, and one that subscribes while another test's SIGTERM is being delivered may see it.
#[tokio::test]
async fn example_servers_stop_on_sigterm() {
    stops_on_sigterm(hyper_server::shutdown_signal()).await;
    #[cfg(feature = "tonic")]
    stops_on_sigterm(tonic_server::shutdown_signal()).await;
}

/// A plain hyper 1 server, as `examples/hyper_server.rs` builds it (no axum: this test needs no
/// crate feature, so it runs in a build without `axum` too): each row has the path, the peer
/// given as `PeerAddr`, the status, a latency and the body; no route template, which only
/// axum's router or gRPC names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_hyper_server_records_path_peer_status_and_latency() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    use sea_orm::{EntityTrait, QueryOrder};
    use tower_audit::entity::audit_log;

    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("audit.db").display()
    );
    let db = tower_audit::connect(url).await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (audit, guard) = tower_audit::AuditLayer::builder(db.clone())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hyper_server::serve(listener, audit, async {
        let _ = stopped.await;
    }));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for (method, path, body, want) in [
        ("POST", "/echo?x=1", r#"{"hello":"world"}"#, 200),
        ("GET", "/missing", "", 404),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        // A connection takes its next request once it has finished the last one's: hyper's
        // `send_request` refuses one sent before ("connection was not ready").
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), want);
        response.into_body().collect().await.unwrap();
    }
    drop(sender);
    connection.await.unwrap().unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let report = guard.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(report.written, 2, "{report:?}");

    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&db)
        .await
        .unwrap();
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.query.as_deref(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/echo", Some("x=1"), Some(200)),
            ("GET", "/missing", None, Some(404)),
        ]
    );
    for row in &rows {
        assert_eq!(row.peer_ip.as_deref(), Some("127.0.0.1"), "{row:?}");
        assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"), "{row:?}");
        assert!(row.latency_us > 0, "{row:?}");
        assert!(row.error.is_none(), "{row:?}");
    }
    // No template to group them by: only a 404 gets one, the scanners' catch-all.
    assert_eq!(rows[0].route, None);
    assert_eq!(rows[1].route.as_deref(), Some("<unmatched>"));
    assert_eq!(
        rows[0].request_body.as_deref(),
        Some(r#"{"hello":"world"}"#)
    );
    assert_eq!(rows[0].response_bytes, 17);
}
