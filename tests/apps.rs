//! The layer in real axum 0.8 / hyper 1 services, the way they are built: an upgraded
//! connection, server-sent events, tower-http's body limit and timeout (and a compression
//! middleware) in both orders, nested routers and fallbacks, and HTTP/2. Each scenario asserts
//! the row that landed, against every configured backend (like `backends.rs`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sea_orm::DatabaseConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tower::ServiceExt;
use tower_audit::entity::audit_log;
use tower_audit::{AuditLayer, PeerAddr, WriterGuard};

use support::{
    ChunkedBody, ClientBody, Scenario, Server, TestDb, client, empty, full, rows, scenarios, send,
    wait_stats,
};

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    upgraded_connection_is_one_row_written_at_its_101,
    server_sent_events_cut_by_the_client_are_one_cancelled_row,
    request_body_limit_inside_and_outside_the_layer,
    timeout_inside_and_outside_the_layer,
    compression_inside_and_outside_the_layer,
    nested_routers_services_and_fallbacks_name_their_routes,
    http2_request_is_recorded_like_its_http1_twin,
    http2_stream_reset_mid_upload_is_one_row_with_an_error,
    an_http2_body_read_to_its_length_is_whole_before_its_end_arrives,
    trailers_end_a_response_whose_body_never_says_so,
    a_request_body_streamed_back_is_stored_whole,
    expect_continue_is_answered_as_without_the_layer,
    a_panic_is_recorded_as_one_with_the_panic_layer_inside_or_outside,
    a_connect_is_recorded_with_its_target,
    a_body_unlike_its_announced_length_is_an_error,
    a_header_unlike_the_body_it_announces_is_an_error,
    a_body_to_a_head_over_http2_is_an_error,
    two_audit_layers_on_one_request_each_get_what_the_handler_sets,
];

fn main() {
    support::run_matrix("app", SCENARIOS);
}

const DEADLINE: Duration = Duration::from_secs(30);

/// Error text of a response whose body the server dropped before its end (README, "What is
/// recorded": the client went away mid-response).
const CLIENT_WENT_AWAY: &str = "cancelled: the response body was dropped before its end (client disconnected, or the server stopped)";
/// Error text of a request dropped before the service answered (an outer timeout).
const DROPPED_BEFORE_RESPONSE: &str = "cancelled: the request was dropped before the service responded (client disconnected, a timeout, or the server stopped)";

async fn shutdown(guard: WriterGuard) {
    let report = guard.shutdown(DEADLINE).await.expect("shutdown");
    assert_eq!((report.lost, report.dropped), (0, 0), "{report:?}");
}

/// The one row the test wrote.
async fn only_row(db: &DatabaseConnection) -> audit_log::Model {
    let mut rows = rows(db).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    rows.remove(0)
}

/// The row of the request whose id was `id`.
fn row_with_id<'a>(rows: &'a [audit_log::Model], id: &str) -> &'a audit_log::Model {
    rows.iter()
        .find(|row| row.request_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no row {id}: {rows:#?}"))
}

/// Sends `signal` when dropped: says when the server let go of a body or a stream.
struct OnDrop(Option<oneshot::Sender<()>>);

impl OnDrop {
    fn new() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// Kept alive by whatever calls it.
    fn hold(&self) {}
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(signal) = self.0.take() {
            let _ = signal.send(());
        }
    }
}

/// A value a `Fn` handler hands out once.
fn once<T>(value: T) -> Arc<Mutex<Option<T>>> {
    Arc::new(Mutex::new(Some(value)))
}

fn take<T>(slot: &Mutex<Option<T>>) -> T {
    slot.lock().unwrap().take().expect("handed out once")
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not within {DEADLINE:?}"),
    }
}

// --- 1. HTTP/1.1 upgrade --------------------------------------------------------------------

/// An axum route that switches protocols with `hyper::upgrade::on` (what axum's WebSocket
/// extractor does), driven by a raw socket: the 101 is one row, written while the upgraded
/// connection is still open; the bytes exchanged after it pass through, uncounted and
/// uncaptured.
async fn upgraded_connection_is_one_row_written_at_its_101(t: Arc<TestDb>) {
    let db = t.migrated().await;
    // With the context on the response, the record waits for the body to be polled or dropped
    // (outer layers may still enrich it): hyper drops a 101's body at once.
    for context_on_response in [false, true] {
        let (layer, guard) = AuditLayer::builder(db.clone())
            .context_on_response(context_on_response)
            .build()
            .unwrap();
        let (echoed_tx, echoed_rx) = oneshot::channel::<u64>();
        let echoed_tx = once(echoed_tx);
        let app = Router::new()
            .route(
                "/rooms/{room}/socket",
                get(move |mut request: Request| {
                    let echoed = take(&echoed_tx);
                    async move {
                        let upgrade = hyper::upgrade::on(&mut request);
                        tokio::spawn(async move {
                            // An echo protocol: every byte back, until the client closes.
                            let mut io = TokioIo::new(upgrade.await.unwrap());
                            let (mut total, mut buf) = (0u64, [0u8; 4096]);
                            loop {
                                let n = io.read(&mut buf).await.unwrap();
                                if n == 0 {
                                    break;
                                }
                                io.write_all(&buf[..n]).await.unwrap();
                                total += n as u64;
                            }
                            let _ = echoed.send(total);
                        });
                        Response::builder()
                            .status(StatusCode::SWITCHING_PROTOCOLS)
                            .header(http::header::CONNECTION, "upgrade")
                            .header(http::header::UPGRADE, "echo")
                            .body(AxumBody::empty())
                            .unwrap()
                    }
                }),
            )
            .layer(layer);
        let server = Server::start(app).await;

        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        socket
            .write_all(
                b"GET /rooms/lobby/socket?v=2 HTTP/1.1\r\nhost: test\r\n\
                  connection: upgrade\r\nupgrade: echo\r\n\r\n",
            )
            .await
            .unwrap();
        let head = within("the 101", read_head(&mut socket)).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");

        // Written while the upgraded connection is open, before any byte went through it.
        wait_stats(&guard, "the 101 is written promptly", |s| s.written >= 1).await;
        let at_101 = only_row(&db).await;
        assert_eq!(at_101.method, "GET");
        assert_eq!(at_101.path, "/rooms/lobby/socket");
        assert_eq!(at_101.query.as_deref(), Some("v=2"));
        assert_eq!(at_101.route.as_deref(), Some("/rooms/{room}/socket"));
        assert_eq!(at_101.status, Some(101));
        assert_eq!(at_101.error, None);
        assert_eq!((at_101.request_bytes, at_101.response_bytes), (0, 0));
        assert_eq!(at_101.request_body, None);
        assert!(at_101.latency_us < DEADLINE.as_micros() as i64);

        // The upgrade works through the layer: bytes go both ways after the 101.
        let payload: Vec<u8> = (0..50_000).map(|i| b'a' + (i % 26) as u8).collect();
        socket.write_all(&payload).await.unwrap();
        let mut back = vec![0u8; payload.len()];
        within("the echo", socket.read_exact(&mut back))
            .await
            .unwrap();
        assert_eq!(back, payload);
        drop(socket);
        let echoed = within("the upgraded connection's end", echoed_rx)
            .await
            .unwrap();
        assert_eq!(echoed, payload.len() as u64);

        server.stop().await;
        shutdown(guard).await;
        // Still that one row, unchanged: the upgraded bytes are not the response's.
        assert_eq!(only_row(&db).await, at_101);
        db_clear(&db).await;
    }
}

/// Reads a response head byte by byte, so that nothing after it is taken from the socket.
async fn read_head(socket: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(socket.read_u8().await.unwrap());
    }
    String::from_utf8(head).unwrap()
}

// --- 2. Server-sent events ------------------------------------------------------------------

/// An endless `Sse` stream; the client reads three events and goes away: one row, status 200,
/// the bytes of the three events, and the client's disconnect as its error.
async fn server_sent_events_cut_by_the_client_are_one_cancelled_row(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let (events, events_rx) = mpsc::unbounded_channel::<String>();
    let events_rx = once(events_rx);
    let (on_drop, stream_dropped) = OnDrop::new();
    let on_drop = once(on_drop);
    let app = Router::new()
        .route(
            "/feeds/{topic}/events",
            get(move || {
                let (events, on_drop) = (take(&events_rx), take(&on_drop));
                async move {
                    let stream = UnboundedReceiverStream::new(events).map(move |data| {
                        on_drop.hold();
                        Ok::<_, Infallible>(Event::default().event("price").data(data))
                    });
                    Sse::new(stream)
                }
            }),
        )
        .layer(layer);
    let server = Server::start(app).await;

    let request = http::Request::get(server.url("/feeds/eur-usd/events"))
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut received = Vec::new();
    for i in 1..=3 {
        events.send(format!("1.0{i}")).unwrap();
        while received.windows(2).filter(|w| w == b"\n\n").count() < i {
            let frame = within("an event", body.frame()).await.unwrap().unwrap();
            received.extend_from_slice(&frame.into_data().unwrap());
        }
    }
    assert!(received.starts_with(b"event: price\ndata: 1.01\n\n"));
    drop(body); // the client goes away, the stream still open

    within("the server dropping the stream", stream_dropped)
        .await
        .unwrap();
    server.stop().await;
    shutdown(guard).await;

    let row = only_row(&db).await;
    assert_eq!(row.path, "/feeds/eur-usd/events");
    assert_eq!(row.route.as_deref(), Some("/feeds/{topic}/events"));
    assert_eq!(row.status, Some(200));
    assert_eq!(row.response_bytes, received.len() as i64);
    assert_eq!(row.error.as_deref(), Some(CLIENT_WENT_AWAY));
}

// --- 3. tower-http layers, in both orders ---------------------------------------------------

const LIMIT: usize = 1024;

/// tower-http's `RequestBodyLimitLayer` inside the layer (as the README advises) and outside it.
///
/// Inside: every request is recorded; a body sent with a `Content-Length` over the limit is
/// refused 413 unread by the limit, but the layer read it ahead within `max_body_bytes`
/// (`body_read_timeout`), so the row has it; a chunked body is recorded as far as it was read.
/// Outside: the limit refuses a declared length before the layer sees the request (no row),
/// and a chunked body's overflow is the request body's error in the row, answered 413 as
/// without the layer (axum's extractor still finds the limit's error through the layer's body).
async fn request_body_limit_inside_and_outside_the_layer(t: Arc<TestDb>) {
    use tower_http::limit::RequestBodyLimitLayer;

    let db = t.migrated().await;
    for audit_outside in [true, false] {
        let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
        let notes = Router::new().route(
            "/notes",
            post(|body: String| async move { format!("{} bytes", body.len()) }),
        );
        let limit = RequestBodyLimitLayer::new(LIMIT);
        let app = if audit_outside {
            notes.layer(limit).layer(layer)
        } else {
            notes.layer(layer).layer(limit)
        };
        let server = Server::start(app).await;
        let send_note = |body: support::ClientBody, content_type: &'static str| {
            let request = http::Request::post(server.url("/notes"))
                .header("content-type", content_type)
                .body(body)
                .unwrap();
            async move { send(&client(), request).await.0 }
        };

        let small = "n".repeat(100);
        assert_eq!(send_note(full(small.clone()), "text/plain").await, 200);
        let chunked = ChunkedBody::new(4, 512).boxed();
        assert_eq!(send_note(chunked, "text/plain").await, 413);
        let declared = format!(r#"{{"note":"{}"}}"#, "x".repeat(4000));
        assert_eq!(
            send_note(full(declared.clone()), "application/json").await,
            413
        );

        server.stop().await;
        shutdown(guard).await;
        let rows = rows(&db).await;
        db_clear(&db).await;
        let order = if audit_outside {
            "audit outside"
        } else {
            "audit inside"
        };
        let statuses: Vec<_> = rows.iter().map(|r| r.status).collect();
        if audit_outside {
            assert_eq!(statuses, [Some(200), Some(413), Some(413)], "{order}");
        } else {
            assert_eq!(statuses, [Some(200), Some(413)], "{order}");
        }
        assert_eq!(rows[0].request_body.as_deref(), Some(small.as_str()));
        assert_eq!(
            (rows[0].request_bytes, rows[0].error.as_deref()),
            (100, None)
        );

        let chunked = &rows[1];
        assert!(chunked.request_body_truncated, "{order}: {chunked:?}");
        // The body is one long word, cut: the sanitizer keeps none of it (it fails closed).
        let kept = chunked.request_body.as_deref().unwrap_or_default();
        let cut = format!("[truncated, {} bytes total]", chunked.request_bytes);
        assert!(kept.ends_with(&cut), "{order}: {kept}");
        if audit_outside {
            // The limit reads past its limit to notice it; its error is the limit's own.
            assert!(chunked.request_bytes > LIMIT as i64 && chunked.request_bytes <= 2048);
            assert_eq!(chunked.error, None, "{order}");
        } else {
            // The layer reads through the limit: what it let pass, then its error.
            assert!(chunked.request_bytes > 0 && chunked.request_bytes <= LIMIT as i64);
            assert_eq!(
                chunked.error.as_deref(),
                Some("request body error: length limit exceeded"),
                "{order}"
            );
        }
        if audit_outside {
            let declared_row = &rows[2];
            assert_eq!(declared_row.request_bytes, declared.len() as i64);
            assert!(!declared_row.request_body_truncated);
            let kept = declared_row.request_body.as_deref().unwrap();
            assert!(kept.starts_with(r#"{"note":"xxx"#), "{kept}");
            assert_eq!(declared_row.error, None);
        }
    }
}

async fn db_clear(db: &DatabaseConnection) {
    use sea_orm::EntityTrait;
    audit_log::Entity::delete_many().exec(db).await.unwrap();
}

/// tower-http's `TimeoutLayer` inside the layer (as the README advises): the timeout's 408 is
/// the row's status, its latency the timeout. Outside: the layer's future is dropped at the
/// timeout, so the row has no status and says it was cancelled, with the same latency.
async fn timeout_inside_and_outside_the_layer(t: Arc<TestDb>) {
    use tower_http::timeout::TimeoutLayer;

    const TIMEOUT: Duration = Duration::from_millis(200);
    let db = t.migrated().await;
    for audit_outside in [true, false] {
        let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
        let reports =
            Router::new().route("/reports/{id}", get(std::future::pending::<&'static str>));
        let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, TIMEOUT);
        let app = if audit_outside {
            reports.layer(timeout).layer(layer)
        } else {
            reports.layer(layer).layer(timeout)
        };
        let server = Server::start(app).await;
        let request = http::Request::get(server.url("/reports/9"))
            .body(empty())
            .unwrap();
        assert_eq!(
            send(&client(), request).await.0,
            StatusCode::REQUEST_TIMEOUT
        );
        server.stop().await;
        shutdown(guard).await;

        let row = only_row(&db).await;
        db_clear(&db).await;
        assert_eq!(row.route.as_deref(), Some("/reports/{id}"));
        if audit_outside {
            assert_eq!((row.status, row.error.as_deref()), (Some(408), None));
        } else {
            assert_eq!(
                (row.status, row.error.as_deref()),
                (None, Some(DROPPED_BEFORE_RESPONSE))
            );
        }
        let latency = Duration::from_micros(row.latency_us as u64);
        assert!(
            latency >= TIMEOUT && latency < TIMEOUT + Duration::from_secs(5),
            "audit outside: {audit_outside}: {latency:?}"
        );
    }
}

/// A gzip middleware (what tower-http's `CompressionLayer` does; its `compression-*` features
/// need a crate this project does not use) inside and outside the layer: `response_bytes` are
/// the bytes the layer hands on, compressed when the compression is inside it, as the client
/// receives them, and the handler's when it is outside.
async fn compression_inside_and_outside_the_layer(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let report = serde_json::json!({ "lines": vec!["the same line, again and again"; 200] });
    let report = report.to_string();
    for audit_outside in [true, false] {
        let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
        let body = report.clone();
        let reports = Router::new().route(
            "/reports/{id}",
            get(move || async move { ([("content-type", "application/json")], body) }),
        );
        let gzip = axum::middleware::map_response(gzip);
        let app = if audit_outside {
            reports.layer(gzip).layer(layer)
        } else {
            reports.layer(layer).layer(gzip)
        };
        let server = Server::start(app).await;
        let request = http::Request::get(server.url("/reports/1"))
            .header("accept-encoding", "gzip")
            .body(empty())
            .unwrap();
        let response = client().request(request).await.unwrap();
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let compressed = response.into_body().collect().await.unwrap().to_bytes();
        assert!(compressed.len() < report.len() / 10);
        server.stop().await;
        shutdown(guard).await;

        let row = only_row(&db).await;
        db_clear(&db).await;
        assert_eq!((row.status, row.error.as_deref()), (Some(200), None));
        let expected = if audit_outside {
            compressed.len()
        } else {
            report.len()
        };
        assert_eq!(
            row.response_bytes, expected as i64,
            "audit outside: {audit_outside}"
        );
    }
}

async fn gzip(response: Response) -> Response {
    use std::io::Write as _;

    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&bytes).unwrap();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(
        http::header::CONTENT_ENCODING,
        http::HeaderValue::from_static("gzip"),
    );
    Response::from_parts(parts, AxumBody::from(encoder.finish().unwrap()))
}

// --- 4. Nesting and fallbacks ---------------------------------------------------------------

fn users() -> Router {
    Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move { format!("user {id}") }),
        )
        .route(
            "/users/{id}/orders/{order}",
            get(|Path((id, order)): Path<(u32, u32)>| async move {
                format!("order {order} of {id}")
            }),
        )
}

/// `Router::nest` records the full template; `nest_service` serves paths that no template
/// names (no route; its own 404 is `<unmatched>`); a fallback's 404 is `<unmatched>`. With the
/// layer on the nested router only, the route is still the full template and the path the
/// full path the client asked for, not what is left of it once the prefix is stripped (and
/// `skip_path` takes that full path).
async fn nested_routers_services_and_fallbacks_name_their_routes(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .skip_path("/api/v2/users/0")
        .build()
        .unwrap();
    let assets = tower::service_fn(|request: Request| async move {
        Ok::<_, Infallible>(match request.uri().path() {
            "/css/site.css" => "body {}".into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        })
    });
    let whole = Router::new()
        .nest("/api/v1", users())
        .nest_service("/assets", assets)
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page") })
        .layer(layer.clone());
    // The layer on one nested router: the rest of the app is not audited.
    let nested_only = Router::new()
        .nest("/api/v2", users().layer(layer))
        .route("/health", get(|| async { "ok" }));
    let whole = Server::start(whole).await;
    let nested_only = Server::start(nested_only).await;

    let requests = [
        (&whole, "/api/v1/users/7", 200),
        (&whole, "/api/v1/users/7/orders/9?expand=lines", 200),
        (&whole, "/api/v1/teams", 404),
        (&whole, "/assets/css/site.css", 200),
        (&whole, "/assets/logo.png", 404),
        (&whole, "/nowhere", 404),
        (&nested_only, "/api/v2/users/8/orders/3?expand=lines", 200),
        (&nested_only, "/api/v2/users/0", 200), // skipped by its full path
        (&nested_only, "/health", 200),
    ];
    for (server, path, status) in requests {
        let request = http::Request::get(server.url(path)).body(empty()).unwrap();
        assert_eq!(send(&client(), request).await.0, status, "{path}");
    }
    whole.stop().await;
    nested_only.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.path.as_str(),
                r.query.as_deref(),
                r.route.as_deref(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "/api/v1/users/7",
                None,
                Some("/api/v1/users/{id}"),
                Some(200)
            ),
            (
                "/api/v1/users/7/orders/9",
                Some("expand=lines"),
                Some("/api/v1/users/{id}/orders/{order}"),
                Some(200)
            ),
            ("/api/v1/teams", None, Some("<unmatched>"), Some(404)),
            ("/assets/css/site.css", None, None, Some(200)),
            ("/assets/logo.png", None, Some("<unmatched>"), Some(404)),
            ("/nowhere", None, Some("<unmatched>"), Some(404)),
            (
                "/api/v2/users/8/orders/3",
                Some("expand=lines"),
                Some("/api/v2/users/{id}/orders/{order}"),
                Some(200)
            ),
        ]
    );
    assert!(rows.iter().all(|r| r.error.is_none()), "{rows:#?}");
}

// --- 5. HTTP/2 ------------------------------------------------------------------------------

/// An axum app served over h2c (prior knowledge) by hyper's HTTP/2 server, with the peer's
/// address given to the layer as a plain hyper server gives it.
struct H2Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl H2Server {
    async fn start(app: Router) -> H2Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (stream, peer) = listener.accept().await.unwrap();
                let app = app.clone();
                let service = hyper::service::service_fn(
                    move |mut request: http::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(PeerAddr(peer));
                        app.clone().oneshot(request)
                    },
                );
                connections.spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        H2Server { addr, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Call once every request has finished: its connections go with it.
    fn stop(self) {
        self.task.abort();
    }
}

async fn h2_client<B>(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

fn orders(layer: AuditLayer) -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            post(
                |Path(id): Path<u64>, axum::Json(order): axum::Json<serde_json::Value>| async move {
                    let _ = order;
                    (
                        StatusCode::CREATED,
                        axum::Json(serde_json::json!({ "id": id })),
                    )
                },
            ),
        )
        .layer(layer)
}

/// The same JSON order over HTTP/1.1 and HTTP/2: the two rows differ only in what differs
/// between any two requests (ids, times).
async fn http2_request_is_recorded_like_its_http1_twin(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let h1 = Server::start(orders(layer.clone())).await;
    let h2 = H2Server::start(orders(layer)).await;
    const ORDER: &str = r#"{"item":"book","qty":2,"password":"hunter2"}"#;
    let order = |url: String| {
        http::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", "twin/1.0")
            .header("x-request-id", "twin-1")
            .body(full(ORDER))
            .unwrap()
    };
    let over_h1 = send(&client(), order(h1.url("/orders/7?src=app"))).await;
    let mut sender = h2_client(h2.addr).await;
    let response = sender
        .send_request(order(h2.url("/orders/7?src=app")))
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let status = response.status();
    let over_h2 = (status, response.collect().await.unwrap().to_bytes());
    assert_eq!(over_h2, over_h1);
    assert_eq!(over_h1.0, StatusCode::CREATED);
    h1.stop().await;
    wait_stats(&guard, "both requests finished", |s| s.captured >= 2).await;
    h2.stop();
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let comparable = |row: &audit_log::Model| audit_log::Model {
        id: 0,
        record_id: String::new(),
        occurred_at: chrono::DateTime::UNIX_EPOCH,
        latency_us: 0,
        ..row.clone()
    };
    assert_eq!(comparable(&rows[1]), comparable(&rows[0]));
    let row = &rows[1];
    assert_eq!(row.route.as_deref(), Some("/orders/{id}"));
    assert_eq!(row.query.as_deref(), Some("src=app"));
    assert_eq!(row.status, Some(201));
    assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(row.request_id.as_deref(), Some("twin-1"));
    assert_eq!(row.request_bytes, ORDER.len() as i64);
    assert_eq!(row.response_bytes, over_h1.1.len() as i64);
    let body = row.request_body.as_deref().unwrap();
    assert!(body.contains("book") && !body.contains("hunter2"), "{body}");
    assert_eq!(row.error, None);
}

/// A request body fed from a channel: an `Err` makes hyper's HTTP/2 client reset the stream.
struct ChannelBody(mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

/// The client resets an HTTP/2 stream in the middle of an upload the handler streams: one row,
/// with the bytes the handler read and an error.
async fn http2_stream_reset_mid_upload_is_one_row_with_an_error(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let (progress_tx, mut progress) = mpsc::unbounded_channel::<usize>();
    let app = Router::new()
        .route(
            "/uploads/{name}",
            post(move |mut body: AxumBody| {
                let progress = progress_tx.clone();
                async move {
                    let mut read = 0;
                    while let Some(frame) = body.frame().await {
                        match frame {
                            Ok(frame) => {
                                read += frame.into_data().map_or(0, |data| data.len());
                                let _ = progress.send(read);
                            }
                            Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()),
                        }
                    }
                    (StatusCode::OK, read.to_string())
                }
            }),
        )
        .layer(layer);
    let h2 = H2Server::start(app).await;

    let (chunks, body) = mpsc::unbounded_channel();
    let mut sender = h2_client(h2.addr).await;
    let request = http::Request::post(h2.url("/uploads/backup.bin"))
        .header("content-type", "application/octet-stream")
        .body(ChannelBody(body))
        .unwrap();
    let response = tokio::spawn(sender.send_request(request));
    chunks.send(Ok(Bytes::from(vec![7u8; 1000]))).unwrap();
    while within("the handler reading", progress.recv()).await != Some(1000) {}
    chunks
        .send(Err(std::io::Error::other("the client gave up")))
        .unwrap();
    let response = within("the reset", response).await.unwrap();
    assert!(response.is_err(), "{response:?}");
    wait_stats(&guard, "the reset stream is recorded", |s| s.captured >= 1).await;
    h2.stop();
    shutdown(guard).await;

    let row = only_row(&db).await;
    assert_eq!(row.path, "/uploads/backup.bin");
    assert_eq!(row.route.as_deref(), Some("/uploads/{name}"));
    assert_eq!(row.request_bytes, 1000);
    assert!(row.request_body_truncated);
    // The handler answers the body's error with a 400 that the reset stream cannot carry (or,
    // had the reset come first, hyper drops the handler).
    match (row.status, row.error.as_deref()) {
        (Some(400), Some(CLIENT_WENT_AWAY)) | (None, Some(DROPPED_BEFORE_RESPONSE)) => {}
        other => panic!("{other:?}"),
    }
}

/// A client that streams an HTTP/2 body sends its end in an empty DATA frame of its own; a
/// handler that reads the `Content-Length` it was told and answers never reads that frame. The
/// body was captured whole: it was recorded as truncated. A handler that stops short of the
/// length still leaves a truncated body. A small JSON body, which the layer reads ahead, is
/// handed to the handler once its length is read: the read ahead waited for the end, which a
/// client streaming both ways sends only once it has the response, until `body_read_timeout`
/// (an hour here).
async fn an_http2_body_read_to_its_length_is_whole_before_its_end_arrives(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .body_read_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/read/{n}",
            post(|Path(n): Path<usize>, mut body: AxumBody| async move {
                let mut read = 0;
                while read < n {
                    match body.frame().await {
                        Some(Ok(frame)) => read += frame.into_data().map_or(0, |d| d.len()),
                        _ => break,
                    }
                }
                read.to_string()
            }),
        )
        .layer(layer);
    let h2 = H2Server::start(app).await;
    let mut sender = h2_client(h2.addr).await;
    let mut open = Vec::new();
    let cases = [
        ("/read/5", "hello", "text/plain", "5"),
        ("/read/3", "hel", "text/plain", "5"),
        ("/read/7", r#"{"a":1}"#, "application/json", "7"),
    ];
    for (path, sent, content_type, length) in cases {
        let (chunks, body) = mpsc::unbounded_channel();
        let request = http::Request::post(h2.url(path))
            .header("content-type", content_type)
            .header("content-length", length)
            .body(ChannelBody(body))
            .unwrap();
        let response = tokio::spawn(sender.send_request(request));
        chunks
            .send(Ok(Bytes::from_static(sent.as_bytes())))
            .unwrap();
        // The body stays open (no END_STREAM) until the response is in.
        let response = within("the response", response).await.unwrap().unwrap();
        let answer = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(answer, path.trim_start_matches("/read/").as_bytes());
        open.push(chunks);
    }
    wait_stats(&guard, "the requests recorded", |s| s.captured >= 3).await;
    drop(open);
    h2.stop();
    shutdown(guard).await;

    let rows = support::rows(&db).await;
    let row = |path: &str| rows.iter().find(|row| row.path == path).unwrap();
    let whole = row("/read/5");
    assert_eq!(
        (
            whole.request_bytes,
            whole.request_body.as_deref(),
            whole.request_body_truncated
        ),
        (5, Some("hello"), false),
        "{whole:#?}"
    );
    let short = row("/read/3");
    assert_eq!(
        (short.request_bytes, short.request_body_truncated),
        (3, true),
        "{short:#?}"
    );
    let json = row("/read/7");
    assert_eq!(
        (
            json.request_bytes,
            json.request_body.as_deref(),
            json.request_body_truncated
        ),
        (7, Some(r#"{"a":1}"#), false),
        "{json:#?}"
    );
}

/// A response body that sends its data and its trailers and then neither ends nor says it has
/// ended (`is_end_stream` stays false), as a `StreamBody` over a stream still open does. Its
/// trailers are its last frame: servers stop polling after them.
struct TrailersThenOpen(u8);

impl Body for TrailersThenOpen {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        this.0 += 1;
        match this.0 {
            1 => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"hello"))))),
            2 => {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            // Never woken: a server that polled past the trailers would wait here for ever.
            _ => Poll::Pending,
        }
    }
}

/// A response whose trailers are its last frame, its body never saying it has ended: hyper's
/// HTTP/2 server sends the trailers, stops polling and drops the body. The client got the whole
/// response, so the row is an answered request, not one cancelled by the client.
async fn trailers_end_a_response_whose_body_never_says_so(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/digest",
            get(|| async { Response::new(AxumBody::new(TrailersThenOpen(0))) }),
        )
        .layer(layer);
    let h2 = H2Server::start(app).await;
    let mut sender = h2_client::<ClientBody>(h2.addr).await;
    let response = sender
        .send_request(http::Request::get(h2.url("/digest")).body(empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let collected = tokio::time::timeout(DEADLINE, response.collect())
        .await
        .expect("the whole response")
        .unwrap();
    assert_eq!(
        collected.trailers().map(|t| t["x-checksum"].clone()),
        Some(http::HeaderValue::from_static("abc"))
    );
    assert_eq!(collected.to_bytes(), "hello");
    wait_stats(&guard, "the request finished", |s| s.captured >= 1).await;
    h2.stop();
    shutdown(guard).await;

    let row = only_row(&db).await;
    assert_eq!(row.status, Some(200));
    assert_eq!(row.response_bytes, 5);
    assert_eq!(row.error, None, "{row:#?}");
}

/// A handler that streams the request body back as its response: the response ends with the
/// request body's last frame, before anyone polls the end after it. The body was read whole, so
/// its row keeps it whole, over HTTP/1.1 (a `Content-Length` body) and HTTP/2 alike.
async fn a_request_body_streamed_back_is_stored_whole(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/echo",
            post(|request: Request| async move { Response::new(request.into_body()) }),
        )
        .layer(layer);
    let h1 = Server::start(app.clone()).await;
    let h2 = H2Server::start(app).await;
    let echo = |url: String, id: &str| {
        http::Request::post(url)
            .header("content-type", "text/plain")
            .header("x-request-id", id)
            .body(full("hello world"))
            .unwrap()
    };
    let over_h1 = send(&client(), echo(h1.url("/echo"), "echo-h1")).await;
    assert_eq!(over_h1, (StatusCode::OK, Bytes::from("hello world")));
    let mut sender = h2_client(h2.addr).await;
    let response = sender
        .send_request(echo(h2.url("/echo"), "echo-h2"))
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.collect().await.unwrap().to_bytes(), "hello world");
    h1.stop().await;
    wait_stats(&guard, "both requests finished", |s| s.captured >= 2).await;
    h2.stop();
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.status, Some(200), "{row:#?}");
        assert_eq!(row.request_bytes, 11, "{row:#?}");
        assert_eq!(row.response_bytes, 11, "{row:#?}");
        assert_eq!(row.request_body.as_deref(), Some("hello world"), "{row:#?}");
        assert!(!row.request_body_truncated, "{row:#?}");
        assert_eq!(row.extra, None, "{row:#?}");
        assert_eq!(row.error, None, "{row:#?}");
    }
}

/// A client that sends `Expect: 100-continue` sends its body only when the server asks for it.
/// A handler that refuses the request unread answers at once, as it does without the layer (the
/// layer's read-ahead of small JSON bodies would ask for the body, and make the client wait for
/// the handler's answer until it had sent it); a handler that reads the body gets it, and its
/// row has it.
async fn expect_continue_is_answered_as_without_the_layer(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/login",
            post(|| async { (StatusCode::UNAUTHORIZED, "no") }),
        )
        .layer(layer.clone())
        .merge(orders(layer));
    let server = Server::start(app).await;
    const BODY: &str = r#"{"item":"book","password":"hunter2"}"#;
    let head = |path: &str, id: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nexpect: 100-continue\r\nx-request-id: {id}\r\n\r\n",
            BODY.len()
        )
    };

    // Refused unread: the 401 is the first answer, and the body is never sent.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(head("/login", "refused").as_bytes())
        .await
        .unwrap();
    let answer = within("the 401", read_head(&mut socket)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    drop(socket);

    // Read: the server asks for the body, then answers.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(head("/orders/7", "read").as_bytes())
        .await
        .unwrap();
    let asked = within("the 100", read_head(&mut socket)).await;
    assert!(asked.starts_with("HTTP/1.1 100"), "{asked}");
    socket.write_all(BODY.as_bytes()).await.unwrap();
    let answer = within("the 201", read_head(&mut socket)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    drop(socket);

    server.stop().await;
    wait_stats(&guard, "both requests finished", |s| s.captured >= 2).await;
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let refused = row_with_id(&rows, "refused");
    assert_eq!(refused.status, Some(401));
    assert_eq!(refused.request_bytes, 0, "{refused:#?}");
    assert_eq!(refused.request_body, None, "{refused:#?}");
    let read = row_with_id(&rows, "read");
    assert_eq!(read.status, Some(201));
    assert_eq!(read.request_bytes, BODY.len() as i64);
    let body = read.request_body.as_deref().unwrap();
    assert!(body.contains("book") && !body.contains("hunter2"), "{body}");
    assert!(!read.request_body_truncated, "{read:#?}");
}

/// A handler that panics, with tower-http's `CatchPanicLayer` inside the audit layer (README's
/// order: the 500 it answers is recorded) and outside it (the layer sees no response: the row
/// says the service panicked, not that the client went away).
async fn a_panic_is_recorded_as_one_with_the_panic_layer_inside_or_outside(t: Arc<TestDb>) {
    use tower_http::catch_panic::CatchPanicLayer;

    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let routes = || {
        Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("a handler's bug, made by the test");
                }
                "never"
            }),
        )
    };
    let caught_inside = routes().layer(CatchPanicLayer::new()).layer(layer.clone());
    let caught_outside = routes().layer(layer).layer(CatchPanicLayer::new());
    for (app, id) in [(caught_inside, "inside"), (caught_outside, "outside")] {
        let server = Server::start(app).await;
        let request = http::Request::get(server.url("/boom"))
            .header("x-request-id", id)
            .body(empty())
            .unwrap();
        let (status, _) = send(&client(), request).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{id}");
        server.stop().await;
    }
    wait_stats(&guard, "both requests finished", |s| s.captured >= 2).await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let inside = row_with_id(&rows, "inside");
    assert_eq!((inside.status, inside.error.as_deref()), (Some(500), None));
    let outside = row_with_id(&rows, "outside");
    assert_eq!(outside.status, None, "{outside:#?}");
    let error = outside.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("panic: the service panicked"), "{error}");
    assert_eq!(outside.route.as_deref(), Some("/boom"));
}

/// A `CONNECT` names an authority rather than a path: its row's `path` is that target, what the
/// client asked to reach.
async fn a_connect_is_recorded_with_its_target(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .layer(layer);
    let server = Server::start(app).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let answer = within("the 404", read_head(&mut socket)).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    drop(socket);
    server.stop().await;
    wait_stats(&guard, "the request finished", |s| s.captured >= 1).await;
    shutdown(guard).await;

    let row = only_row(&db).await;
    assert_eq!(row.method, "CONNECT");
    assert_eq!(row.path, "example.com:443", "{row:#?}");
    assert_eq!(row.query, None);
    assert_eq!(row.status, Some(404));
}

/// A response whose body is shorter or longer than its `Content-Length` (a handler's bug) does
/// not reach the client as sent: hyper ends the HTTP/1.1 connection after a short body, cuts a
/// long one at the length, and resets the HTTP/2 stream. The row says so, rather than nothing
/// (short) or that the client went away (long).
async fn a_body_unlike_its_announced_length_is_an_error(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let announced = |length: &'static str, chunks: usize| {
        let stream = tokio_stream::iter(
            (0..chunks).map(|_| Ok::<_, Infallible>(Bytes::from_static(b"0123456789"))),
        );
        let mut response = Response::new(AxumBody::from_stream(stream));
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, length.parse().unwrap());
        response
    };
    let app = Router::new()
        .route("/short", get(move || async move { announced("100", 1) }))
        .route("/long", get(move || async move { announced("5", 2) }))
        .layer(layer);
    let h1 = Server::start(app.clone()).await;
    let h2 = H2Server::start(app).await;
    for path in ["/short", "/long"] {
        let mut socket = tokio::net::TcpStream::connect(h1.addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\nx-request-id: h1{path}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        within("the server's end of it", socket.read_to_end(&mut answer))
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        if path == "/long" {
            assert!(answer.ends_with("\r\n\r\n01234"), "{answer}");
        }
    }
    let mut sender = h2_client::<ClientBody>(h2.addr).await;
    for path in ["/short", "/long"] {
        let request = http::Request::get(h2.url(path))
            .header("x-request-id", format!("h2{path}"))
            .body(empty())
            .unwrap();
        if let Ok(response) = sender.send_request(request).await {
            assert!(response.collect().await.is_err(), "{path}: a reset stream");
        }
    }
    h1.stop().await;
    wait_stats(&guard, "the four requests finished", |s| s.captured >= 4).await;
    h2.stop();
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for row in &rows {
        let id = row.request_id.as_deref().unwrap();
        let error = row.error.as_deref().unwrap_or_default();
        assert_eq!(row.status, Some(200), "{id}");
        let said = if id.ends_with("short") { "100" } else { "5" };
        assert!(
            error.contains(&format!("its length said {said}"))
                || error.contains(&format!("than the {said} bytes its length said")),
            "{id}: {error}"
        );
    }
    let h1_short = rows
        .iter()
        .find(|row| row.request_id.as_deref() == Some("h1/short"));
    assert_eq!(h1_short.map(|row| row.response_bytes), Some(10));
}

/// A `Content-Length` the service set against a body that ends otherwise: with trailers after
/// too few or too many bytes, an empty body, a body whose exact size says another length. The
/// client holds the body to the header (HTTP/2 resets the stream; HTTP/1.1 cannot end the
/// response), so the row is an error naming both lengths. HTTP/1.1 sends an empty body as
/// `content-length: 0` whatever the header said: that one went out as it should.
async fn a_header_unlike_the_body_it_announces_is_an_error(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let app = |layer: AuditLayer| {
        let announced = |length: &'static str, body: AxumBody| {
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert(http::header::CONTENT_LENGTH, length.parse().unwrap());
            response
        };
        Router::new()
            .route(
                "/short-trailers",
                get(move || async move { announced("100", AxumBody::new(TrailersThenOpen(0))) }),
            )
            .route(
                "/long-trailers",
                get(move || async move { announced("2", AxumBody::new(TrailersThenOpen(0))) }),
            )
            .route(
                "/empty",
                get(move || async move { announced("100", AxumBody::empty()) }),
            )
            .route(
                "/exact",
                get(move || async move { announced("5", AxumBody::from("0123456789")) }),
            )
            .layer(layer)
    };
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    // With the context on the response, the record of a body that had ended waits for it to
    // be dropped.
    let (on_response, on_response_guard) = AuditLayer::builder(db.clone())
        .context_on_response(true)
        .build()
        .unwrap();
    let h1 = Server::start(app(layer.clone())).await;
    let h2 = H2Server::start(app(layer)).await;
    let h2_on_response = H2Server::start(app(on_response)).await;

    // hyper's HTTP/1.1 panics (debug builds) on a header unlike the body's exact size: the two
    // HTTP/1.1 cases are the empty body and the trailers.
    for path in ["/short-trailers", "/empty"] {
        let mut socket = tokio::net::TcpStream::connect(h1.addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\nx-request-id: h1{path}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = within("the server's end of it", socket.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        if path == "/empty" {
            assert!(answer.starts_with("http/1.1 200"), "{answer}");
            assert!(answer.contains("content-length: 0\r\n"), "{answer}");
        }
    }
    for (server, prefix) in [(&h2, "h2"), (&h2_on_response, "h2ctx")] {
        let mut sender = h2_client::<ClientBody>(server.addr).await;
        for path in ["/short-trailers", "/long-trailers", "/empty", "/exact"] {
            let request = http::Request::get(server.url(path))
                .header("x-request-id", format!("{prefix}{path}"))
                .body(empty())
                .unwrap();
            if let Ok(response) = sender.send_request(request).await {
                let collected = within(path, response.collect()).await;
                assert!(collected.is_err(), "{prefix}{path}: a reset stream");
            }
        }
    }
    h1.stop().await;
    wait_stats(&guard, "the ten requests finished", |s| s.captured >= 6).await;
    wait_stats(&on_response_guard, "the ten requests finished", |s| {
        s.captured >= 4
    })
    .await;
    h2.stop();
    h2_on_response.stop();
    shutdown(guard).await;
    shutdown(on_response_guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 10, "{rows:#?}");
    let clean = row_with_id(&rows, "h1/empty");
    assert_eq!(
        (clean.status, clean.response_bytes, clean.error.as_deref()),
        (Some(200), 0, None)
    );
    for row in rows.iter().filter(|row| row.request_id != clean.request_id) {
        let id = row.request_id.as_deref().unwrap();
        let error = row.error.as_deref().unwrap_or_default();
        assert_eq!(row.status, Some(200), "{id}");
        let (said, sent) = match id.rsplit('/').next().unwrap() {
            "short-trailers" => ("100", 5),
            "long-trailers" => ("2", 5),
            "empty" => ("100", 0),
            _ => ("5", 10),
        };
        assert!(
            error.contains(&format!(
                "body of {sent} bytes where its length said {said}"
            )) || error.contains(&format!("than the {said} bytes its length said")),
            "{id}: {error}"
        );
    }
}

/// A plain hyper service (axum strips the body of a HEAD response itself) that answers a HEAD
/// with a body: hyper's HTTP/2 sends it, and the client, which takes no body there, resets the
/// stream; the row says so. The same body over HTTP/1.1 is not sent, and a HEAD answered without
/// one over HTTP/2 is a clean row.
async fn a_body_to_a_head_over_http2_is_an_error(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(|request: http::Request<_>| async move {
            let with_body = request.uri().path() == "/with-body";
            drop(request);
            let body = if with_body { "hello" } else { "" };
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                Bytes::from_static(body.as_bytes()),
            )))
        }));
    // One listener for each protocol, each connection served as its listener's.
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for http2 in [true, false] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let service = service.clone();
        servers.push(tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = service.clone();
                let hyper_service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        service.clone().oneshot(request)
                    },
                );
                let io = TokioIo::new(stream);
                tokio::spawn(async move {
                    if http2 {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, hyper_service)
                            .await;
                    } else {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, hyper_service)
                            .await;
                    }
                });
            }
        }));
    }
    let (addr, h1_addr) = (addrs[0], addrs[1]);
    let mut sender = h2_client::<ClientBody>(addr).await;
    for path in ["/with-body", "/without"] {
        let request = http::Request::head(format!("http://{addr}{path}"))
            .header("x-request-id", format!("h2{path}"))
            .body(empty())
            .unwrap();
        let answer = match sender.send_request(request).await {
            Ok(response) => within(path, response.collect()).await.map(|_| ()),
            Err(error) => Err(error),
        };
        assert_eq!(answer.is_ok(), path == "/without", "{path}: {answer:?}");
    }
    let mut socket = tokio::net::TcpStream::connect(h1_addr).await.unwrap();
    socket
        .write_all(b"HEAD /with-body HTTP/1.1\r\nhost: test\r\nconnection: close\r\nx-request-id: h1/with-body\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within("the HTTP/1.1 answer", socket.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "no body: {answer}");
    wait_stats(&guard, "the three requests finished", |s| s.captured >= 3).await;
    for server in servers {
        server.abort();
    }
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let with_body = row_with_id(&rows, "h2/with-body");
    assert_eq!(with_body.status, Some(200));
    assert_eq!(
        with_body.error.as_deref(),
        Some(
            "response body of 5 bytes to a HEAD over HTTP/2: the client takes none there and \
             resets the stream"
        ),
        "{with_body:#?}"
    );
    for id in ["h2/without", "h1/with-body"] {
        let row = row_with_id(&rows, id);
        assert_eq!(
            (row.status, row.error.as_deref()),
            (Some(200), None),
            "{row:#?}"
        );
    }
}

/// An app-wide audit layer and a nested router's own, each with its own writer and database:
/// what the handler sets through its `AuditContext` (the inner layer's), and `skip()`, reach
/// both rows. Found by a probe: the inner context replaced the outer one in the request's
/// extensions, and the outer row was anonymous and kept the requests the handler skipped. The
/// inner context also reads the user and tenant the outer layer's `identify` set.
async fn two_audit_layers_on_one_request_each_get_what_the_handler_sets(t: Arc<TestDb>) {
    use axum::Extension;
    use tower_audit::AuditContext;

    let outer_db = t.migrated().await;
    let inner_test = TestDb::create(t.backend, "two_layers_inner").await;
    let inner_db = inner_test.migrated().await;
    let (outer, outer_guard) = AuditLayer::builder(outer_db.clone())
        .identify(|_| tower_audit::Identity {
            user_id: None,
            tenant_id: Some("acme".into()),
        })
        .build()
        .unwrap();
    let (inner, inner_guard) = AuditLayer::builder(inner_db.clone()).build().unwrap();
    let api = Router::new()
        .route(
            "/orders/{id}",
            get(|Extension(audit): Extension<AuditContext>| async move {
                audit.set_user("alice");
                audit.set_action("order.read");
                audit.set_resource("order/1");
                audit.insert_extra("tenant_seen", audit.tenant());
                "ok"
            }),
        )
        .route(
            "/secret",
            get(|Extension(audit): Extension<AuditContext>| async move {
                audit.skip();
                "skipped"
            }),
        )
        .route("/anonymous", get(|| async { "ok" }))
        .layer(inner);
    let app = Router::new().nest("/api", api).layer(outer);
    for path in ["/api/orders/1", "/api/secret", "/api/anonymous"] {
        let request = Request::get(path).body(AxumBody::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.into_body().collect().await.unwrap();
    }
    shutdown(outer_guard).await;
    shutdown(inner_guard).await;
    for (name, db) in [("outer", &outer_db), ("inner", &inner_db)] {
        let rows = rows(db).await;
        let paths: Vec<_> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/api/orders/1", "/api/anonymous"], "{name}");
        let order = &rows[0];
        assert_eq!(
            (
                order.user_id.as_deref(),
                order.action.as_deref(),
                order.resource.as_deref()
            ),
            (Some("alice"), Some("order.read"), Some("order/1")),
            "{name}"
        );
        let extra = order.extra.as_ref().expect("extra");
        assert_eq!(extra["tenant_seen"], "acme", "{name}");
        assert_eq!(rows[1].user_id, None, "{name}");
    }
    assert_eq!(rows(&outer_db).await[0].tenant_id.as_deref(), Some("acme"));
    assert_eq!(rows(&inner_db).await[0].tenant_id, None);
    inner_test.cleanup().await;
}
