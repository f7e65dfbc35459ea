//! gRPC through the audit layer: a real tonic server and a real tonic client over TCP, the layer
//! writing to SQLite, and to PostgreSQL / MySQL when `TOWER_AUDIT_TEST_POSTGRES_URL` /
//! `TOWER_AUDIT_TEST_MYSQL_URL` are set. A backend without its variable shows its tests as
//! ignored, and says so on stderr.
//!
//! Every call is also made against the same service without the layer, and the client must see
//! exactly the same outcome: status code, message, metadata and trailers.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

#[allow(clippy::all, clippy::pedantic, unreachable_pub, missing_docs)]
mod demo {
    include!("../proto/generated/tower_audit.demo.v1.rs");
}

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, oneshot};
use tokio_stream::{Stream, StreamExt};
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status, Streaming};
use tower::ServiceExt;
use tower_audit::entity::audit_log;
use tower_audit::{AuditLayer, AuditLayerBuilder, WriterGuard};

use demo::demo_client::DemoClient;
use demo::demo_server::{Demo, DemoServer};
use demo::{LoginRequest, Ping, Pong};
use support::{TestDb, rows, scenarios};

use support::Scenario;

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    unary_ok,
    not_found_in_trailers_after_a_message,
    invalid_argument_trailers_only,
    internal_error,
    panicking_handler_still_leaves_a_row,
    deadline_exceeded,
    client_cancels_mid_stream,
    client_streaming,
    bidirectional_streaming,
    stream_without_trailers_and_skipped_health_checks,
    grpc_web_is_recorded_with_the_status_of_its_trailer_frame,
    grpc_web_replies_are_read_in_the_form_they_are_sent_in,
    grpc_web_text_is_decoded_in_the_writer,
    invalid_grpc_status_is_no_status_from_any_transport,
    status_in_the_headers_wins_over_later_trailers_from_every_transport,
    web_text_request_over_the_capture_cap_is_counted,
    content_type_of_any_case_is_grpc,
    a_call_under_another_content_type_is_recorded_as_the_call_it_is,
    te_trailers_alone_makes_no_grpc_call,
    a_call_told_by_its_reply_is_inflated_and_counted_past_the_cap,
    #[cfg(feature = "grpc-reflect")]
    decoded_request_is_redacted,
    a_field_renamed_in_json_is_redacted_by_its_declared_name,
    json_codec_messages_are_unframed_and_redacted,
    compressed_request_is_recorded_like_its_uncompressed_twin,
    compressed_bomb_is_bounded_and_described,
    corrupt_compressed_messages_are_described,
    compressed_replies_are_counted_with_their_status,
    binary_and_huge_metadata_and_secrets,
    ten_thousand_messages_streamed,
    a_few_messages_of_several_megabytes,
    client_stream_over_the_capture_cap,
    status_with_details_and_non_ascii_message,
    deadline_expires_while_the_server_streams,
    grpc_in_an_axum_router_is_routed_by_its_method,
    a_route_of_the_app_keeps_its_template_whatever_the_content_type,
];

fn main() {
    support::run_matrix("gRPC", SCENARIOS);
}

/// A message tonic must percent-encode: non-ASCII, a `%`, a line break.
const DETAILED_MESSAGE: &str = "réservation 7 déjà prise: 100% plein ✓\nretry";
/// Binary `grpc-status-details-bin`, not valid UTF-8.
const DETAILS: &[u8] = b"\x08\x09\x12\x04\xff\xfe\x00\x80";

const DEADLINE: Duration = Duration::from_secs(30);
const METHOD: &str = "tower_audit.demo.v1.Demo/";

// ---------------------------------------------------------------------------------------------
// The service

/// The demo service; `Ping.mode` picks what a call does.
#[derive(Clone, Default)]
struct DemoService {
    /// Never notified: a handler waiting on it waits until it is cancelled.
    never: Arc<Notify>,
    /// Signalled when a response stream of mode `one_then_wait` is dropped.
    stream_dropped: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

fn pong(message: impl Into<String>, index: u32) -> Pong {
    Pong {
        message: message.into(),
        index,
    }
}

fn with_handler_metadata<T>(message: T) -> Response<T> {
    let mut response = Response::new(message);
    response
        .metadata_mut()
        .insert("x-handler", "demo".parse().unwrap());
    response
}

fn status_with_metadata(code: Code, message: &str) -> Status {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert("x-handler", "demo".parse().unwrap());
    Status::with_metadata(code, message, metadata)
}

type PongStream = Pin<Box<dyn Stream<Item = Result<Pong, Status>> + Send>>;

/// A scripted response stream: its items, then either the end or a wait that never ends.
struct Scripted {
    items: VecDeque<Result<Pong, Status>>,
    then_wait: bool,
    on_drop: Option<oneshot::Sender<()>>,
}

impl Stream for Scripted {
    type Item = Result<Pong, Status>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.items.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            // Nothing will wake it: only dropping the stream ends it.
            None if self.then_wait => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        if let Some(tx) = self.on_drop.take() {
            let _ = tx.send(());
        }
    }
}

#[tonic::async_trait]
impl Demo for DemoService {
    async fn unary(&self, request: Request<Ping>) -> Result<Response<Pong>, Status> {
        let ping = request.into_inner();
        match ping.mode.as_str() {
            "invalid" => Err(status_with_metadata(Code::InvalidArgument, "bad ping")),
            "internal" => Err(status_with_metadata(Code::Internal, "boom")),
            "details" => Err(Status::with_details(
                Code::FailedPrecondition,
                DETAILED_MESSAGE,
                Bytes::from_static(DETAILS),
            )),
            "panic" => panic!("the handler panicked on purpose"),
            "hang" => {
                self.never.notified().await;
                unreachable!("never notified")
            }
            _ => Ok(with_handler_metadata(pong(ping.message, 0))),
        }
    }

    type ServerStreamStream = PongStream;

    async fn server_stream(
        &self,
        request: Request<Ping>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let ping = request.into_inner();
        let mut stream = Scripted {
            items: VecDeque::new(),
            then_wait: false,
            on_drop: None,
        };
        match ping.mode.as_str() {
            "not_found" => {
                stream.items.push_back(Ok(pong("first", 0)));
                stream.items.push_back(Err(status_with_metadata(
                    Code::NotFound,
                    "widget 7 not found",
                )));
            }
            "one_then_wait" => {
                stream.items.push_back(Ok(pong("first", 0)));
                stream.then_wait = true;
                stream.on_drop = self.stream_dropped.lock().unwrap().take();
            }
            _ => {
                for i in 0..ping.count {
                    stream
                        .items
                        .push_back(Ok(pong(format!("{} {i}", ping.message), i)));
                }
            }
        }
        Ok(with_handler_metadata(Box::pin(stream) as PongStream))
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
        Ok(with_handler_metadata(pong(joined.join(","), 0)))
    }

    type BidiStream = PongStream;

    async fn bidi(
        &self,
        request: Request<Streaming<Ping>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        let replies = request
            .into_inner()
            .map(|ping| ping.map(|ping| pong(format!("re: {}", ping.message), ping.count)));
        Ok(with_handler_metadata(Box::pin(replies) as PongStream))
    }

    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<Pong>, Status> {
        let login = request.into_inner();
        Ok(with_handler_metadata(pong(
            format!("welcome {}", login.username),
            0,
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// Servers, clients and what the client saw

/// A tonic server on a loopback port; stopped gracefully by `stop`.
struct GrpcServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl GrpcServer {
    async fn start(service: DemoService, layer: Option<AuditLayer>) -> GrpcServer {
        // Accepting gzip changes nothing for a client that does not compress.
        let service = DemoServer::new(service)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        Self::spawn(|incoming, signal| match layer {
            Some(layer) => tokio::spawn(
                Server::builder()
                    .layer(layer)
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, signal),
            ),
            None => tokio::spawn(
                Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, signal),
            ),
        })
        .await
    }

    /// The service's routes in an axum router beside a REST route, the layer on that router
    /// (as an app serving REST and gRPC on one port does): the layer runs after routing.
    async fn start_in_axum(service: DemoService, layer: AuditLayer) -> GrpcServer {
        let router = axum::Router::new()
            .route("/health", axum::routing::get(|| async { "ok" }))
            .merge(tonic::service::Routes::new(DemoServer::new(service)).into_axum_router())
            .layer(layer);
        Self::spawn(|incoming, signal| {
            tokio::spawn(
                Server::builder()
                    .add_routes(tonic::service::Routes::from(router))
                    .serve_with_incoming_shutdown(incoming, signal),
            )
        })
        .await
    }

    /// Listens on a free port and has `serve` serve it until the server is stopped.
    async fn spawn(
        serve: impl FnOnce(
            TcpIncoming,
            Pin<Box<dyn Future<Output = ()> + Send>>,
        ) -> tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    ) -> GrpcServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = serve(
            TcpIncoming::from(listener),
            Box::pin(async {
                let _ = stopped.await;
            }),
        );
        GrpcServer { addr, stop, task }
    }

    async fn client(&self) -> DemoClient<Channel> {
        DemoClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Everything the client sees of a call.
#[derive(Debug, PartialEq)]
struct Outcome {
    code: Code,
    message: String,
    replies: Vec<String>,
    /// Response headers and trailers (or the error's metadata), without `date`.
    metadata: Vec<(String, String)>,
}

fn metadata(map: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = map
        .clone()
        .into_headers()
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn failed(status: &Status, replies: Vec<String>) -> Outcome {
    Outcome {
        code: status.code(),
        message: status.message().to_owned(),
        replies,
        metadata: metadata(status.metadata()),
    }
}

fn unary_outcome(result: Result<Response<Pong>, Status>) -> Outcome {
    match result {
        Ok(response) => Outcome {
            code: Code::Ok,
            message: String::new(),
            metadata: metadata(response.metadata()),
            replies: vec![response.into_inner().message],
        },
        Err(status) => failed(&status, Vec::new()),
    }
}

async fn stream_outcome(result: Result<Response<Streaming<Pong>>, Status>) -> Outcome {
    let response = match result {
        Ok(response) => response,
        Err(status) => return failed(&status, Vec::new()),
    };
    let mut seen = metadata(response.metadata());
    let mut stream = response.into_inner();
    let mut replies = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(pong)) => replies.push(pong.message),
            Ok(None) => break,
            Err(status) => {
                let mut outcome = failed(&status, replies);
                seen.extend(outcome.metadata);
                seen.sort();
                outcome.metadata = seen;
                return outcome;
            }
        }
    }
    if let Some(trailers) = stream.trailers().await.unwrap() {
        seen.extend(metadata(&trailers));
        seen.sort();
    }
    Outcome {
        code: Code::Ok,
        message: String::new(),
        replies,
        metadata: seen,
    }
}

fn ping(message: &str, mode: &str) -> Ping {
    Ping {
        message: message.into(),
        mode: mode.into(),
        count: 0,
    }
}

/// An audited server and the same service without the layer, with the writer's guard.
struct Harness {
    db: DatabaseConnection,
    guard: WriterGuard,
    audited: GrpcServer,
    plain: GrpcServer,
    audited_service: DemoService,
}

impl Harness {
    async fn start(t: &TestDb) -> Harness {
        Self::start_with(t, |builder| builder).await
    }

    async fn start_with(
        t: &TestDb,
        configure: impl FnOnce(AuditLayerBuilder) -> AuditLayerBuilder,
    ) -> Harness {
        let db = t.migrated().await;
        let (layer, guard) = configure(AuditLayer::builder_for_grpc(db.clone()))
            .build()
            .unwrap();
        let audited_service = DemoService::default();
        let audited = GrpcServer::start(audited_service.clone(), Some(layer)).await;
        let plain = GrpcServer::start(DemoService::default(), None).await;
        Harness {
            db,
            guard,
            audited,
            plain,
            audited_service,
        }
    }

    /// Makes the same call on both servers; the client must not tell them apart.
    async fn same_outcome<F, Fut>(&self, call: F) -> Outcome
    where
        F: Fn(DemoClient<Channel>) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let without = call(self.plain.client().await).await;
        let with = call(self.audited.client().await).await;
        assert_eq!(with, without, "the layer changed what the client sees");
        with
    }

    /// Waits until the record is written, stops everything, and returns the one row.
    async fn finish(self) -> audit_log::Model {
        self.finish_calls(1).await.remove(0)
    }

    /// Waits until `n` records are written, stops everything, and returns the `n` rows in the
    /// order of the calls.
    async fn finish_calls(self, n: u64) -> Vec<audit_log::Model> {
        let mut stats = self.guard.watch_stats();
        tokio::time::timeout(DEADLINE, stats.wait_for(|s| s.written >= n))
            .await
            .expect("the records were not written")
            .unwrap();
        self.audited.stop().await;
        self.plain.stop().await;
        let report = self.guard.shutdown(DEADLINE).await.unwrap();
        assert_eq!((report.lost, report.dropped), (0, 0), "{report:?}");
        let rows = rows(&self.db).await;
        assert_eq!(rows.len() as u64, n, "exactly one row per call: {rows:#?}");
        rows
    }
}

/// What every gRPC row has.
fn assert_grpc_row(row: &audit_log::Model, method: &str) {
    assert_eq!(row.method, "POST");
    assert_eq!(
        row.route.as_deref(),
        Some(format!("{METHOD}{method}").as_str())
    );
    assert_eq!(row.path, format!("/{METHOD}{method}"));
    if cfg!(feature = "tonic") {
        assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(row.peer_ip.as_deref(), Some("127.0.0.1"));
    }
    assert!(
        row.user_agent
            .as_deref()
            .unwrap_or_default()
            .contains("tonic"),
        "{:?}",
        row.user_agent
    );
}

fn counts(row: &audit_log::Model) -> (Option<i64>, Option<i64>) {
    (row.grpc_messages_in, row.grpc_messages_out)
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn unary_ok(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            let mut request = Request::new(ping("hello", "ok"));
            request
                .metadata_mut()
                .insert("authorization", "Bearer s3cr3t-token".parse().unwrap());
            unary_outcome(client.unary(request).await)
        })
        .await;
    assert_eq!(outcome.code, Code::Ok);
    assert_eq!(outcome.replies, ["hello"]);
    assert!(
        outcome
            .metadata
            .contains(&("x-handler".into(), "demo".into()))
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(counts(&row), (Some(1), Some(1)));
    assert_eq!(row.error, None);
    // 5-byte prefix + "hello" (2 + 5) + "ok" (2 + 2).
    assert_eq!(row.request_bytes, 16);
    assert_eq!(row.response_bytes, 5 + 7);
    assert_eq!(
        row.request_body.as_deref(),
        Some("[binary application/grpc, 16 bytes]")
    );
    // The preset records the authorization metadata, redacted.
    assert_eq!(
        row.request_headers,
        Some(serde_json::json!({ "authorization": "[REDACTED]" }))
    );
}

async fn not_found_in_trailers_after_a_message(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            stream_outcome(client.server_stream(ping("", "not_found")).await).await
        })
        .await;
    assert_eq!(outcome.code, Code::NotFound);
    assert_eq!(outcome.message, "widget 7 not found");
    assert_eq!(outcome.replies, ["first"]);
    assert!(
        outcome
            .metadata
            .contains(&("x-handler".into(), "demo".into()))
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "ServerStream");
    assert_eq!(
        (row.status, row.grpc_status),
        (Some(200), Some(Code::NotFound as i32))
    );
    assert_eq!(row.error.as_deref(), Some("widget 7 not found"));
    assert_eq!(counts(&row), (Some(1), Some(1)));
}

async fn invalid_argument_trailers_only(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            unary_outcome(client.unary(ping("x", "invalid")).await)
        })
        .await;
    assert_eq!(outcome.code, Code::InvalidArgument);
    assert_eq!(outcome.message, "bad ping");
    assert!(
        outcome
            .metadata
            .contains(&("x-handler".into(), "demo".into()))
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    assert_eq!(
        (row.status, row.grpc_status),
        (Some(200), Some(Code::InvalidArgument as i32))
    );
    assert_eq!(row.error.as_deref(), Some("bad ping"));
    // Trailers-only: no message and no body byte out.
    assert_eq!(counts(&row), (Some(1), Some(0)));
    assert_eq!(row.response_bytes, 0);
}

async fn internal_error(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            unary_outcome(client.unary(ping("x", "internal")).await)
        })
        .await;
    assert_eq!(
        (outcome.code, outcome.message.as_str()),
        (Code::Internal, "boom")
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    assert_eq!(
        (row.status, row.grpc_status),
        (Some(200), Some(Code::Internal as i32))
    );
    assert_eq!(row.error.as_deref(), Some("boom"));
    assert_eq!(counts(&row), (Some(1), Some(0)));
}

async fn panicking_handler_still_leaves_a_row(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(
            |mut client| async move { unary_outcome(client.unary(ping("x", "panic")).await) },
        )
        .await;
    assert_ne!(outcome.code, Code::Ok);

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    // No response was produced: no HTTP or gRPC status, and the row says why.
    assert_eq!((row.status, row.grpc_status), (None, None));
    let error = row.error.as_deref().unwrap();
    assert!(error.starts_with("panic"), "{error}");
    assert_eq!(counts(&row), (Some(1), Some(0)));
}

async fn deadline_exceeded(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let call = |mut client: DemoClient<Channel>| async move {
        // The handler waits on a Notify nobody signals; the deadline is what is under test.
        let mut request = Request::new(ping("x", "hang"));
        request.set_timeout(Duration::from_millis(200));
        unary_outcome(client.unary(request).await)
    };
    let without = call(h.plain.client().await).await;
    let with = call(h.audited.client().await).await;
    // tonic enforces `grpc-timeout` on both sides and answers "Timeout expired" either way; only
    // whether the server's trailers-only reply (with its headers) beat the client's own timer is
    // left to chance, with or without the layer.
    assert_eq!(
        (with.code, &with.message, &with.replies),
        (without.code, &without.message, &without.replies)
    );
    assert_eq!(
        (with.code, with.message.as_str()),
        (Code::Cancelled, "Timeout expired")
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    assert_eq!(row.status, None);
    assert_eq!(row.grpc_status, Some(Code::DeadlineExceeded as i32));
    let error = row.error.as_deref().unwrap();
    assert!(error.contains("deadline exceeded"), "{error}");
    assert_eq!(counts(&row), (Some(1), Some(0)));
    assert!(row.latency_us >= 150_000, "{}", row.latency_us);
}

async fn client_cancels_mid_stream(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let (dropped_tx, dropped_rx) = oneshot::channel();
    *h.audited_service.stream_dropped.lock().unwrap() = Some(dropped_tx);
    let first = |mut client: DemoClient<Channel>| async move {
        let mut stream = client
            .server_stream(ping("", "one_then_wait"))
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        drop(stream); // the client goes away mid-stream
        first.message
    };
    let without = first(h.plain.client().await).await;
    let with = first(h.audited.client().await).await;
    assert_eq!(with, without);

    tokio::time::timeout(DEADLINE, dropped_rx)
        .await
        .expect("the server never dropped the response stream")
        .unwrap();
    let row = h.finish().await;
    assert_grpc_row(&row, "ServerStream");
    assert_eq!((row.status, row.grpc_status), (Some(200), None));
    let error = row.error.as_deref().unwrap();
    assert!(error.contains("client disconnected"), "{error}");
    assert_eq!(counts(&row), (Some(1), Some(1)));
}

async fn client_streaming(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            let pings = tokio_stream::iter(["a", "b", "c"].map(|m| ping(m, "")));
            unary_outcome(client.client_stream(pings).await)
        })
        .await;
    assert_eq!(outcome.code, Code::Ok);
    assert_eq!(outcome.replies, ["a,b,c"]);

    let row = h.finish().await;
    assert_grpc_row(&row, "ClientStream");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(row.error, None);
    assert_eq!(counts(&row), (Some(3), Some(1)));
    assert_eq!(row.request_bytes, 3 * (5 + 3));
}

async fn bidirectional_streaming(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            let pings = tokio_stream::iter(["a", "b", "c"].map(|m| ping(m, "")));
            stream_outcome(client.bidi(pings).await).await
        })
        .await;
    assert_eq!(outcome.code, Code::Ok);
    assert_eq!(outcome.replies, ["re: a", "re: b", "re: c"]);

    let row = h.finish().await;
    assert_grpc_row(&row, "Bidi");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(row.error, None);
    assert_eq!(counts(&row), (Some(3), Some(3)));
}

/// A gRPC message: the 5-byte prefix and the payload.
fn framed(payload: &[u8]) -> Bytes {
    let mut out = vec![0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// A hand-written gRPC server that forgets its trailers, and the preset's skipped health checks.
async fn stream_without_trailers_and_skipped_health_checks(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone()).build().unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |_request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async {
                let response = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(Full::new(framed(b"reply")))
                    .unwrap();
                Ok::<_, Infallible>(response)
            },
        ));
    for path in ["/grpc.health.v1.Health/Check", "/pkg.Svc/Method"] {
        let request = http::Request::post(path)
            .header("content-type", "application/grpc")
            .body(Full::new(framed(b"request")))
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap();
        assert!(body.trailers().is_none());
    }
    assert_eq!(guard.stats().skipped, 1, "the health check is not recorded");
    let report = guard.shutdown(DEADLINE).await.unwrap();
    assert_eq!((report.written, report.lost), (1, 0), "{report:?}");

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.route.as_deref(), Some("pkg.Svc/Method"));
    assert_eq!(row.grpc_status, None);
    assert_eq!(
        row.error.as_deref(),
        Some("grpc: stream ended without trailers (no grpc-status)")
    );
    // The handler never read the request.
    assert_eq!(counts(row), (Some(0), Some(1)));
}

/// A response of `content_type` whose body streams `frames`, one chunk each, as a gRPC-Web
/// server's does.
fn streamed_response(
    content_type: http::HeaderValue,
    frames: Vec<Bytes>,
) -> http::Response<axum::body::Body> {
    let body = axum::body::Body::from_stream(tokio_stream::iter(
        frames.into_iter().map(Ok::<_, Infallible>),
    ));
    http::Response::builder()
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

/// A gRPC-Web frame of trailers (flag 0x80), as a server behind the layer sends it when the
/// layer sits outside the gRPC-Web translation.
fn trailer_frame(block: &str) -> Bytes {
    let mut out = vec![0x80];
    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
    out.extend_from_slice(block.as_bytes());
    Bytes::from(out)
}

/// Posts each `(path, content type, body)` to `app` on a real socket, each answered 200, stops
/// it and the writer, and returns the rows, every call written.
async fn post_each<const N: usize>(
    app: axum::Router,
    guard: WriterGuard,
    db: &DatabaseConnection,
    calls: [(&str, &str, Bytes); N],
) -> Vec<audit_log::Model> {
    let server = support::Server::start(app).await;
    let client = support::client();
    for (path, content_type, body) in calls {
        let request = http::Request::post(server.url(path))
            .header("content-type", content_type)
            .body(support::full(body))
            .unwrap();
        let (status, _) = support::send(&client, request).await;
        assert_eq!(status, http::StatusCode::OK, "{path}");
    }
    server.stop().await;
    let report = guard.shutdown(DEADLINE).await.unwrap();
    assert_eq!((report.written, report.lost), (N as u64, 0), "{report:?}");
    rows(db).await
}

/// A hand-written gRPC-Web server (binary and text) on a real socket: its calls carry their
/// trailers in the body, and are not native gRPC calls without trailers.
async fn grpc_web_is_recorded_with_the_status_of_its_trailer_frame(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone()).build().unwrap();
    let web = tower::service_fn(|request: axum::extract::Request| async move {
        let content_type = request.headers()["content-type"].clone();
        // The handler reads the request's messages, as a real one does.
        let _ = request.into_body().collect().await.unwrap();
        let frames = if content_type
            .as_bytes()
            .starts_with(b"application/grpc-web-text")
        {
            // Base64 of a "reply" message, then of the trailers.
            vec![
                Bytes::from_static(b"AAAAAAVyZXBseQ=="),
                Bytes::from_static(b"gAAAAA9ncnBjLXN0YXR1czowDQo="),
            ]
        } else {
            vec![
                framed(b"reply"),
                trailer_frame("grpc-status:5\r\ngrpc-message:no%20such%20order\r\n"),
            ]
        };
        Ok::<_, Infallible>(streamed_response(content_type, frames))
    });
    let app = axum::Router::new()
        .route_service("/pkg.Orders/Get", web)
        .layer(layer);
    let rows = post_each(
        app,
        guard,
        &db,
        [
            (
                "/pkg.Orders/Get",
                "application/grpc-web+proto",
                framed(b"request"),
            ),
            (
                "/pkg.Orders/Get",
                "application/grpc-web-text+proto",
                Bytes::from_static(b"AAAAAAdyZXF1ZXN0"),
            ),
        ],
    )
    .await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.status,
                r.grpc_status,
                r.error.as_deref(),
                r.grpc_messages_in,
                r.grpc_messages_out,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            // Binary: the status and message from the trailer frame, which is no message.
            (Some(200), Some(5), Some("no such order"), Some(1), Some(1)),
            // Text (base64): decoded as it streams, its status from the trailer frame.
            (Some(200), Some(0), None, Some(1), Some(1)),
        ]
    );
}

/// Found by a probe: tonic-web answers in the form the request's `Accept` asks for, binary to
/// curl's `*/*` however the request came, and text to a binary request that accepts only text.
/// The layer read the reply in the request's form: the call read as one whose stream ended
/// without trailers, its status lost, its messages miscounted. A trailer block past 16 KiB (a
/// long `grpc-status-details-bin`) lost its status too; its first lines are now read.
async fn grpc_web_replies_are_read_in_the_form_they_are_sent_in(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone()).build().unwrap();
    let web = tower::service_fn(|request: axum::extract::Request| async move {
        let text = request
            .headers()
            .get("accept")
            .is_some_and(|a| a.as_bytes().starts_with(b"application/grpc-web-text"));
        let details = request.uri().path().ends_with("Details");
        let _ = request.into_body().collect().await.unwrap();
        let mut block = "grpc-status:5\r\ngrpc-message:nf\r\n".to_owned();
        if details {
            block.push_str(&format!(
                "grpc-status-details-bin:{}\r\n",
                "A".repeat(20_000)
            ));
        }
        let whole = [framed(b"reply"), framed(b"reply2"), trailer_frame(&block)].concat();
        let (content_type, body) = if text {
            ("application/grpc-web-text+proto", base64(&whole))
        } else {
            ("application/grpc-web+proto", Bytes::from(whole))
        };
        let content_type = http::HeaderValue::from_static(content_type);
        Ok::<_, Infallible>(streamed_response(content_type, vec![body]))
    });
    let app = axum::Router::new()
        .route_service("/pkg.Orders/Get", web)
        .route_service("/pkg.Orders/GetDetails", web)
        .layer(layer);
    let server = support::Server::start(app).await;
    let client = support::client();
    let binary = ("application/grpc-web+proto", framed(b"request"));
    let text = (
        "application/grpc-web-text+proto",
        base64(&framed(b"request")),
    );
    let calls = [
        (
            "/pkg.Orders/Get",
            binary.clone(),
            "application/grpc-web-text",
        ),
        ("/pkg.Orders/Get", text.clone(), "*/*"),
        ("/pkg.Orders/Get", text, "application/grpc-web-text"),
        ("/pkg.Orders/GetDetails", binary.clone(), "*/*"),
        (
            "/pkg.Orders/GetDetails",
            binary,
            "application/grpc-web-text",
        ),
    ];
    for (path, (content_type, body), accept) in &calls {
        let request = http::Request::post(server.url(path))
            .header("content-type", *content_type)
            .header("accept", *accept)
            .body(support::full(body.clone()))
            .unwrap();
        let (status, _) = support::send(&client, request).await;
        assert_eq!(status, http::StatusCode::OK, "{path}");
    }
    server.stop().await;
    let report = guard.shutdown(DEADLINE).await.unwrap();
    assert_eq!(report.written, calls.len() as u64, "{report:?}");
    for row in rows(&db).await {
        assert_eq!(
            (
                row.grpc_status,
                row.error.as_deref(),
                row.grpc_messages_in,
                row.grpc_messages_out
            ),
            (Some(5), Some("nf"), Some(1), Some(2)),
            "{} {:?}",
            row.path,
            row.request_headers
        );
    }
}

/// A body of the frames given, at its end once they are out (as tonic's is after its trailers:
/// HTTP/2 polls no further).
struct Frames(VecDeque<http_body::Frame<Bytes>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// The content type a reply of the status tests' route `path` is sent with: its transport is
/// the end of its name (`…Native`, `…Web`, `…WebText`).
fn content_type_of(path: &str) -> &'static str {
    if path.ends_with("WebText") {
        "application/grpc-web-text"
    } else if path.ends_with("Web") {
        "application/grpc-web"
    } else {
        "application/grpc"
    }
}

/// Serves `reply` behind `layer` on each of `paths` (an axum router's routes, served by tonic's
/// server over HTTP/2) and posts each path its body with its content type through a tonic
/// channel: each is answered 200 and read to its end, then the server stops.
async fn post_each_reply<P, R, F>(layer: AuditLayer, paths: &[(P, &str, Bytes)], reply: R)
where
    P: AsRef<str>,
    R: Fn(axum::extract::Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<http::Response<axum::body::Body>, Infallible>> + Send + 'static,
{
    let mut router = axum::Router::new();
    for (path, _, _) in paths {
        router = router.route_service(path.as_ref(), tower::service_fn(reply.clone()));
    }
    let server = GrpcServer::spawn(|incoming, signal| {
        tokio::spawn(
            Server::builder()
                .add_routes(tonic::service::Routes::from(router.layer(layer)))
                .serve_with_incoming_shutdown(incoming, signal),
        )
    })
    .await;
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for (path, content_type, body) in paths {
        let path = path.as_ref();
        let request = http::Request::post(format!("http://{}{path}", server.addr))
            .header("content-type", *content_type)
            .header("te", "trailers")
            .body(tonic::body::Body::new(Full::new(body.clone())))
            .unwrap();
        let response = channel.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::OK, "{path}");
        let _ = response.into_body().collect().await;
    }
    server.stop().await;
}

/// A `grpc-status` that is no `1*DIGIT` (a sign, a space inside, letters) is no status, from every
/// transport: native trailers and a trailers-only reply over HTTP/2 (served by tonic's server,
/// sent by its channel), a gRPC-Web trailer frame in binary and in base64. The row keeps no made-up
/// number: its status is null and its error names the value sent. Leading zeros are digits.
async fn invalid_grpc_status_is_no_status_from_any_transport(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone()).build().unwrap();
    let reply = |request: axum::extract::Request| async move {
        let path = request.uri().path().to_owned();
        let _ = request.into_body().collect().await.unwrap();
        let status = |value: &'static str| {
            let mut map = http::HeaderMap::new();
            map.insert("grpc-status", http::HeaderValue::from_static(value));
            map
        };
        let frames: Vec<http_body::Frame<Bytes>> = match path.as_str() {
            "/pkg.Status/Native" => vec![
                http_body::Frame::data(framed(b"reply")),
                http_body::Frame::trailers(status("-1")),
            ],
            "/pkg.Status/Zeros" => vec![http_body::Frame::trailers(status("007"))],
            "/pkg.Status/TrailersOnly" => Vec::new(),
            "/pkg.Status/Web" => vec![
                http_body::Frame::data(framed(b"reply")),
                http_body::Frame::data(trailer_frame(
                    "grpc-status: +0\r\ngrpc-message:no%20such%20order\r\n",
                )),
            ],
            _ => vec![http_body::Frame::data(base64(&trailer_frame(
                "grpc-status:1 0\r\n",
            )))],
        };
        let mut response = http::Response::new(axum::body::Body::new(Frames(frames.into())));
        let content_type = content_type_of(&path);
        let headers = response.headers_mut();
        headers.insert("content-type", http::HeaderValue::from_static(content_type));
        if path.ends_with("TrailersOnly") {
            headers.insert("grpc-status", http::HeaderValue::from_static("2147483648"));
        }
        Ok::<_, Infallible>(response)
    };
    let paths = [
        ("/pkg.Status/Native", "application/grpc", framed(b"request")),
        ("/pkg.Status/Zeros", "application/grpc", framed(b"request")),
        (
            "/pkg.Status/TrailersOnly",
            "application/grpc",
            framed(b"request"),
        ),
        (
            "/pkg.Status/Web",
            "application/grpc-web",
            framed(b"request"),
        ),
        (
            "/pkg.Status/WebText",
            "application/grpc-web-text",
            base64(&framed(b"request")),
        ),
    ];
    post_each_reply(layer, &paths, reply).await;
    let report = guard.shutdown(DEADLINE).await.unwrap();
    assert_eq!((report.written, report.lost), (5, 0), "{report:?}");
    let rows = rows(&db).await;
    let seen = |path: &str| {
        let r = rows.iter().find(|row| row.path == path).unwrap();
        (r.grpc_status, r.error.as_deref(), r.grpc_messages_out)
    };
    assert_eq!(
        seen("/pkg.Status/Native"),
        (None, Some(r#"grpc: invalid grpc-status "-1""#), Some(1))
    );
    assert_eq!(seen("/pkg.Status/Zeros"), (Some(7), None, Some(0)));
    assert_eq!(
        seen("/pkg.Status/TrailersOnly"),
        (
            None,
            Some(r#"grpc: invalid grpc-status "2147483648""#),
            Some(0)
        )
    );
    // The header line's own spaces around the value are the line's, not the value's.
    assert_eq!(
        seen("/pkg.Status/Web"),
        (
            None,
            Some(r#"grpc: invalid grpc-status "+0": no such order"#),
            Some(1)
        )
    );
    assert_eq!(
        seen("/pkg.Status/WebText"),
        (None, Some(r#"grpc: invalid grpc-status "1 0""#), Some(0))
    );
}

/// A reply whose headers carry a `grpc-status` (a trailers-only reply) and that goes on with a
/// body and trailers of another status anyway: the status of the headers is the call's, from
/// every transport (tonic's client takes it and reads no further). A valid status in the trailers
/// does not make up for an invalid one in the headers.
async fn status_in_the_headers_wins_over_later_trailers_from_every_transport(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone()).build().unwrap();
    let reply = |request: axum::extract::Request| async move {
        let path = request.uri().path().to_owned();
        let _ = request.into_body().collect().await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames: Vec<http_body::Frame<Bytes>> = if path.ends_with("WebText") {
            vec![http_body::Frame::data(base64(&trailer_frame(
                "grpc-status:0\r\n",
            )))]
        } else if path.ends_with("Web") {
            vec![http_body::Frame::data(trailer_frame("grpc-status:0\r\n"))]
        } else {
            vec![http_body::Frame::trailers(trailers)]
        };
        let mut response = http::Response::new(axum::body::Body::new(Frames(frames.into())));
        let content_type = content_type_of(&path);
        let headers = response.headers_mut();
        headers.insert("content-type", http::HeaderValue::from_static(content_type));
        let status = if path.contains("Invalid") { "-1" } else { "5" };
        headers.insert("grpc-status", http::HeaderValue::from_static(status));
        headers.insert("grpc-message", http::HeaderValue::from_static("gone"));
        Ok::<_, Infallible>(response)
    };
    let mut paths = Vec::new();
    for status in ["Five", "Invalid"] {
        for (transport, content_type, body) in [
            ("Native", "application/grpc", framed(b"request")),
            ("Web", "application/grpc-web", framed(b"request")),
            (
                "WebText",
                "application/grpc-web-text",
                base64(&framed(b"request")),
            ),
        ] {
            paths.push((
                format!("/pkg.Status/{status}{transport}"),
                content_type,
                body,
            ));
        }
    }
    post_each_reply(layer, &paths, reply).await;
    let report = guard.shutdown(DEADLINE).await.unwrap();
    assert_eq!((report.written, report.lost), (6, 0), "{report:?}");
    let rows = rows(&db).await;
    for (path, _, _) in &paths {
        let row = rows.iter().find(|row| &row.path == path).unwrap();
        let expected = if path.contains("Invalid") {
            (None, Some(r#"grpc: invalid grpc-status "-1": gone"#))
        } else {
            (Some(5), Some("gone"))
        };
        assert_eq!((row.grpc_status, row.error.as_deref()), expected, "{path}");
    }
}

/// `bytes` in base64 (standard alphabet, padded), as a gRPC-Web text client sends a chunk.
fn base64(bytes: &[u8]) -> Bytes {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            });
        }
    }
    Bytes::from(out)
}

/// gRPC-Web's text form on a real socket: base64 of the frames, each chunk padded, several
/// concatenated. The writer decodes it: the row is the binary form's, its status from the trailer
/// frame, its messages decoded with descriptors; what is no base64 is described.
async fn grpc_web_text_is_decoded_in_the_writer(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = recording_encoding(AuditLayer::builder_for_grpc(db.clone()))
        .build()
        .unwrap();
    let web = tower::service_fn(|request: axum::extract::Request| async move {
        let path = request.uri().path().to_owned();
        let content_type = request.headers()["content-type"].clone();
        let _ = request.into_body().collect().await.unwrap();
        let reply = prost::Message::encode_to_vec(&pong("welcome alice", 0));
        let frames = match path.as_str() {
            // A long reply: its trailer frame is found from its frames, not guessed at its end.
            "/tower_audit.demo.v1.Demo/ClientStream" => vec![
                base64(&framed(&vec![b'x'; 60_000])),
                base64(&trailer_frame(
                    "grpc-status:5\r\ngrpc-message:no%20such%20order\r\n",
                )),
            ],
            "/pkg.Orders/NoTrailers" => vec![base64(&framed(&reply))],
            // No trailer frame, a long reply whose last message ends in bytes shaped like one
            // (an echo of what the client sent): no status, not OK.
            "/pkg.Orders/Echo" => vec![base64(&framed(
                &[&vec![b'x'; 60_000][..], &trailer_frame("grpc-status:0\r\n")].concat(),
            ))],
            _ => vec![
                base64(&framed(&reply)),
                base64(&trailer_frame("grpc-status:0\r\n")),
            ],
        };
        Ok::<_, Infallible>(streamed_response(content_type, frames))
    });
    let app = axum::Router::new()
        .route_service("/tower_audit.demo.v1.Demo/Login", web)
        .route_service("/tower_audit.demo.v1.Demo/ClientStream", web)
        .route_service("/pkg.Orders/Get", web)
        .route_service("/pkg.Orders/NoTrailers", web)
        .route_service("/pkg.Orders/Echo", web)
        .layer(layer);
    let login = prost::Message::encode_to_vec(&LoginRequest {
        username: "alice".into(),
        password: "hunter2".into(),
    });
    let login = base64(&framed(&login));
    // Two chunks, each padded (a `Ping` frame is 8 bytes).
    let stream: Bytes = [
        base64(&framed(&prost::Message::encode_to_vec(&ping("a", "")))),
        base64(&framed(&prost::Message::encode_to_vec(&ping("b", "")))),
    ]
    .concat()
    .into();
    assert!(stream[..12].ends_with(b"="), "{stream:?}");
    let calls = [
        (
            "/tower_audit.demo.v1.Demo/Login",
            "application/grpc-web-text",
            login.clone(),
        ),
        (
            "/tower_audit.demo.v1.Demo/ClientStream",
            "application/grpc-web-text+proto",
            stream.clone(),
        ),
        (
            "/pkg.Orders/Get",
            "application/grpc-web-text",
            Bytes::from_static(b"no base64!!?"),
        ),
        (
            "/pkg.Orders/NoTrailers",
            "application/grpc-web-text",
            login.clone(),
        ),
        (
            "/pkg.Orders/Echo",
            "application/grpc-web-text",
            login.clone(),
        ),
    ];
    let rows = post_each(app, guard, &db, calls.clone()).await;
    let row = |path: &str| rows.iter().find(|row| row.path == path).unwrap();
    let seen = |path: &str| {
        let r = row(path);
        (
            r.status,
            r.grpc_status,
            r.error.as_deref(),
            r.grpc_messages_in,
            r.grpc_messages_out,
        )
    };
    assert_eq!(
        seen("/tower_audit.demo.v1.Demo/Login"),
        (Some(200), Some(0), None, Some(1), Some(1))
    );
    // A reply longer than any end of it kept, counted and read as it streamed.
    assert_eq!(
        seen("/tower_audit.demo.v1.Demo/ClientStream"),
        (Some(200), Some(5), Some("no such order"), Some(2), Some(1))
    );
    assert_eq!(
        seen("/pkg.Orders/Get"),
        (Some(200), Some(0), None, None, Some(1))
    );
    assert_eq!(
        seen("/pkg.Orders/NoTrailers"),
        (
            Some(200),
            None,
            Some("grpc: stream ended without trailers (no grpc-status)"),
            Some(1),
            Some(1)
        )
    );
    assert_eq!(
        seen("/pkg.Orders/Echo"),
        (
            Some(200),
            None,
            Some("grpc: stream ended without trailers (no grpc-status)"),
            Some(1),
            Some(1)
        )
    );
    let body = |path: &str| row(path).request_body.clone().unwrap();
    if cfg!(feature = "grpc-reflect") {
        let login: serde_json::Value =
            serde_json::from_str(&body("/tower_audit.demo.v1.Demo/Login")).unwrap();
        assert_eq!(
            login,
            serde_json::json!({ "username": "alice", "password": "[REDACTED]" })
        );
        assert_eq!(
            body("/tower_audit.demo.v1.Demo/ClientStream"),
            r#"[{"message":"a"},{"message":"b"}]"#
        );
    } else {
        assert_eq!(
            body("/tower_audit.demo.v1.Demo/Login"),
            format!("[binary application/grpc-web-text, {} bytes]", login.len())
        );
    }
    assert_eq!(
        body("/pkg.Orders/Get"),
        "[binary application/grpc-web-text, 12 bytes]"
    );
    for (path, _, sent) in &calls {
        // The bytes as sent: base64.
        assert_eq!(row(path).request_bytes, sent.len() as i64);
        assert!(!body(path).contains("hunter2"));
    }
}

/// A gRPC-Web text request longer than the capture cap has its messages counted as it streams,
/// as a native or binary one does: the count is not the capture's. Each message is a padded
/// chunk, the chunks on lines of their own (CRLF), as a client that wraps its text sends them;
/// the reply is wrapped as well, and its status and count read all the same.
async fn web_text_request_over_the_capture_cap_is_counted(t: Arc<TestDb>) {
    const N: usize = 300;
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone())
        .max_body_bytes(1024)
        .build()
        .unwrap();
    let web = tower::service_fn(|request: axum::extract::Request| async move {
        let content_type = request.headers()["content-type"].clone();
        let _ = request.into_body().collect().await.unwrap();
        // The reply wrapped too, its trailer frame on lines of 8 characters.
        let trailers = base64(&trailer_frame("grpc-status:0\r\n"));
        let frames = vec![
            [&base64(&framed(b"reply"))[..], b"\r\n"].concat().into(),
            trailers
                .chunks(8)
                .flat_map(|line| [line, b"\r\n"].concat())
                .collect(),
        ];
        Ok::<_, Infallible>(streamed_response(content_type, frames))
    });
    let app = axum::Router::new()
        .route_service("/pkg.Orders/Put", web)
        .layer(layer);
    let body: Vec<u8> = (0..N)
        .flat_map(|i| {
            [
                &base64(&framed(format!("order {i}").as_bytes()))[..],
                b"\r\n",
            ]
            .concat()
        })
        .collect();
    assert!(body.len() > 4 * 1024, "{}", body.len());
    let short = [base64(&framed(b"a")), base64(&framed(b"b"))].join(&b"\r\n"[..]);
    let rows = post_each(
        app,
        guard,
        &db,
        [
            ("/pkg.Orders/Put", "application/grpc-web-text", body.into()),
            ("/pkg.Orders/Put", "application/grpc-web-text", short.into()),
        ],
    )
    .await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.grpc_status,
                r.grpc_messages_in,
                r.grpc_messages_out,
                r.request_body_truncated,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some(0), Some(N as i64), Some(1), true),
            (Some(0), Some(2), Some(1), false)
        ]
    );
}

/// Media types are case-insensitive, and tonic reads no request's content type: a call sent as
/// `Application/GRPC` is served as gRPC, and recorded as one.
async fn content_type_of_any_case_is_grpc(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let login = prost::Message::encode_to_vec(&LoginRequest {
        username: "alice".into(),
        password: "hunter2".into(),
    });
    let frame = message_frame(0, &login);
    let without = h
        .plain
        .raw_call_as("Login", "Application/GRPC", None, frame.clone())
        .await;
    let with = h
        .audited
        .raw_call_as("Login", "Application/GRPC", None, frame.clone())
        .await;
    assert_eq!(with, without);
    assert_eq!(with.0, Code::Ok, "{with:?}");

    let row = h.finish().await;
    assert_eq!(
        row.route.as_deref(),
        Some(format!("{METHOD}Login").as_str())
    );
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(row.error, None);
    assert_eq!(counts(&row), (Some(1), Some(1)));
    assert_eq!(
        row.request_body.as_deref(),
        Some(format!("[binary application/grpc, {} bytes]", frame.len()).as_str())
    );
}

/// tonic serves a call whatever its content type says, or with none: sent with `TE: trailers`,
/// as gRPC's clients send every call, it is recorded as the call its gRPC reply shows, never as
/// a 200 without a status, and its messages are not stored as text.
async fn a_call_under_another_content_type_is_recorded_as_the_call_it_is(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let login = prost::Message::encode_to_vec(&LoginRequest {
        username: "alice".into(),
        password: "hunter2-s3cr3t".into(),
    });
    let invalid = prost::Message::encode_to_vec(&ping("hi", "invalid"));
    let not_found = prost::Message::encode_to_vec(&ping("hi", "not_found"));
    let calls = [
        ("Login", "text/plain", message_frame(0, &login), Code::Ok),
        (
            "Unary",
            "application/x-www-form-urlencoded",
            message_frame(0, &invalid),
            Code::InvalidArgument,
        ),
        (
            "ServerStream",
            "",
            message_frame(0, &not_found),
            Code::NotFound,
        ),
    ];
    for (method, content_type, frame, code) in &calls {
        let without = h
            .plain
            .raw_call_as(method, content_type, None, frame.clone())
            .await;
        let with = h
            .audited
            .raw_call_as(method, content_type, None, frame.clone())
            .await;
        assert_eq!(with, without);
        assert_eq!(with.0, *code, "{with:?}");
    }

    let rows = h.finish_calls(3).await;
    for (row, (method, content_type, frame, code)) in rows.iter().zip(&calls) {
        assert_eq!(
            row.route.as_deref(),
            Some(format!("{METHOD}{method}").as_str()),
            "{content_type}"
        );
        assert_eq!(
            (row.status, row.grpc_status),
            (Some(200), Some(*code as i32)),
            "{content_type}"
        );
        let replies = i64::from(*method == "Login" || *method == "ServerStream");
        assert_eq!(counts(row), (Some(1), Some(replies)), "{content_type}");
        assert_eq!(
            row.request_body.as_deref(),
            Some(format!("[binary application/grpc, {} bytes]", frame.len()).as_str()),
            "{content_type}"
        );
    }
    assert_eq!(rows[0].error, None);
    assert_eq!(rows[1].error.as_deref(), Some("bad ping"));
    assert_eq!(rows[2].error.as_deref(), Some("widget 7 not found"));
}

/// Found by a probe: a call told by its reply lost its `grpc-encoding`, so its compressed
/// messages were described as "flagged compressed without a grpc-encoding" rather than decoded,
/// and its messages were counted only from what the capture kept, so none past the cap.
async fn a_call_told_by_its_reply_is_inflated_and_counted_past_the_cap(t: Arc<TestDb>) {
    let h = Harness::start_with(&t, |builder| {
        recording_encoding(builder).max_body_bytes(1024)
    })
    .await;
    let login = prost::Message::encode_to_vec(&LoginRequest {
        username: "dave".into(),
        password: "hunter2-s3cr3t".into(),
    });
    let compressed = message_frame(1, &tonic_gzip(&login));
    let big =
        |i: usize| prost::Message::encode_to_vec(&ping(&format!("{i}{}", "b".repeat(800)), ""));
    let stream: Vec<u8> = (0..3)
        .flat_map(|i| message_frame(0, &big(i)).to_vec())
        .collect();
    assert!(stream.len() > 1024);
    let calls = [
        (
            "Login",
            "application/octet-stream",
            Some("gzip"),
            compressed.clone(),
        ),
        ("Login", "", Some("gzip"), compressed.clone()),
        (
            "ClientStream",
            "application/octet-stream",
            None,
            Bytes::from(stream.clone()),
        ),
    ];
    for (method, content_type, encoding, body) in &calls {
        let (code, message) = h
            .audited
            .raw_call_as(method, content_type, *encoding, body.clone())
            .await;
        assert_eq!(code, Code::Ok, "{method} {content_type}: {message}");
    }

    let rows = h.finish_calls(3).await;
    for row in &rows[..2] {
        assert_eq!(
            row.route.as_deref(),
            Some(format!("{METHOD}Login").as_str())
        );
        assert_eq!(counts(row), (Some(1), Some(1)));
        let body = row.request_body.as_deref().unwrap();
        assert!(!body.contains("hunter2"), "{body}");
        #[cfg(feature = "grpc-reflect")]
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
            serde_json::json!({ "username": "dave", "password": "[REDACTED]" })
        );
    }
    let streamed = &rows[2];
    assert_eq!(streamed.grpc_status, Some(0));
    assert_eq!(counts(streamed), (Some(3), Some(1)));
    assert_eq!(streamed.request_bytes, stream.len() as i64);
    assert!(streamed.request_body_truncated);
}

/// A request that sends `TE: trailers` and is no gRPC call is recorded as what it is, also when
/// its reply's trailers hold a `grpc-status` (found by a probe: such a row took the status and
/// message as a call's, where one given in the reply's headers was not read).
async fn te_trailers_alone_makes_no_grpc_call(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/orders",
            axum::routing::post(|body: String| async move { body }),
        )
        .route(
            "/export",
            axum::routing::get(|| async {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("3"));
                trailers.insert("grpc-message", http::HeaderValue::from_static("bad"));
                axum::body::Body::new(Frames(VecDeque::from([
                    http_body::Frame::data(Bytes::from_static(b"a,b\n")),
                    http_body::Frame::trailers(trailers),
                ])))
            }),
        )
        .layer(layer);
    let request = http::Request::post("/orders")
        .header("content-type", "application/json")
        .header("te", "trailers")
        .body(axum::body::Body::from(
            r#"{"item":"widget","password":"hunter2"}"#,
        ))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    // And without a body, which has ended before the service runs.
    let request = http::Request::get("/orders")
        .header("te", "trailers")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 405);
    response.into_body().collect().await.unwrap();
    for te in [Some("trailers"), None] {
        let mut request = http::Request::get("/export");
        if let Some(te) = te {
            request = request.header("te", te);
        }
        let response = app
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap();
        assert!(body.trailers().is_some());
    }
    guard.shutdown(DEADLINE).await.unwrap();
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for row in &rows[2..] {
        assert_eq!(
            (
                row.status,
                row.grpc_status,
                row.error.as_deref(),
                counts(row)
            ),
            (Some(200), None, None, (None, None)),
            "{row:#?}"
        );
    }
    assert_eq!(counts(&rows[1]), (None, None));
    assert_eq!(rows[1].grpc_status, None);
    let row = &rows[0];
    assert_eq!(row.route.as_deref(), Some("/orders"));
    assert_eq!(
        (row.status, row.grpc_status, row.error.as_deref()),
        (Some(200), None, None)
    );
    assert_eq!(counts(row), (None, None));
    assert_eq!(
        row.request_body.as_deref(),
        Some(r#"{"item":"widget","password":"[REDACTED]"}"#)
    );
}

/// tonic's routes merged into an axum app match `/package.Service/{*rest}`: the route of a
/// call is still its method, as when the layer wraps tonic's server.
async fn grpc_in_an_axum_router_is_routed_by_its_method(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder_for_grpc(db.clone()).build().unwrap();
    let server = GrpcServer::start_in_axum(DemoService::default(), layer).await;
    let outcome = unary_outcome(server.client().await.unary(ping("hi", "ok")).await);
    assert_eq!(
        (outcome.code, outcome.replies),
        (Code::Ok, vec!["hi".to_owned()])
    );
    let mut stats = guard.watch_stats();
    tokio::time::timeout(DEADLINE, stats.wait_for(|s| s.written >= 1))
        .await
        .expect("the record was not written")
        .unwrap();
    server.stop().await;
    guard.shutdown(DEADLINE).await.unwrap();
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(
        rows[0].route.as_deref(),
        Some(format!("{METHOD}Unary").as_str())
    );
    assert_eq!((rows[0].status, rows[0].grpc_status), (Some(200), Some(0)));
}

/// A client that says `application/grpc` (or gRPC-Web) to a REST route of an axum app does not
/// take its request out of that route's rows: the route is the template axum matched. It was
/// the path, kept only where it looked like a method (`admin/reset`), else `<unmatched>`.
async fn a_route_of_the_app_keeps_its_template_whatever_the_content_type(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = axum::Router::new()
        .route(
            "/accounts/{id}/transfer",
            axum::routing::post(|_body: Bytes| async { "moved" }),
        )
        .route("/admin/reset", axum::routing::post(|| async { "reset" }))
        .layer(layer);
    let body = || Bytes::from_static(b"amount=1000000&to=999");
    let rows = post_each(
        app,
        guard,
        &db,
        [
            ("/accounts/42/transfer", "application/grpc", body()),
            ("/admin/reset", "application/grpc", body()),
            ("/accounts/7/transfer", "Application/GRPC-web+proto", body()),
            (
                "/accounts/9/transfer",
                "application/x-www-form-urlencoded",
                body(),
            ),
        ],
    )
    .await;
    let route = |path: &str| {
        rows.iter()
            .find(|row| row.path == path)
            .and_then(|row| row.route.clone())
    };
    for path in [
        "/accounts/42/transfer",
        "/accounts/7/transfer",
        "/accounts/9/transfer",
    ] {
        assert_eq!(
            route(path).as_deref(),
            Some("/accounts/{id}/transfer"),
            "{rows:#?}"
        );
    }
    assert_eq!(route("/admin/reset").as_deref(), Some("/admin/reset"));
}

/// Calls with gRPC's JSON codec (hand-framed, as a tonic client with a serde_json codec sends
/// them): each message stored as redacted JSON, a stream as an array; a message that is no JSON,
/// or compressed without its `grpc-encoding` kept, described; other codecs described by size.
async fn json_codec_messages_are_unframed_and_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = recording_encoding(AuditLayer::builder_for_grpc(db.clone()))
        .build()
        .unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async move {
                let content_type = request.headers()["content-type"].clone();
                // The handler reads the request's messages, as a real one does.
                let _ = request.into_body().collect().await.unwrap();
                let response = http::Response::builder()
                    .header("content-type", content_type)
                    .header("grpc-status", "0")
                    .body(Full::new(framed(br#"{"ok":true}"#)))
                    .unwrap();
                Ok::<_, Infallible>(response)
            },
        ));
    let login = framed(br#"{"user":"ann","password":"hunter2"}"#);
    let stream: Bytes = [
        framed(br#"{"chunk":1}"#),
        framed(br#"{"chunk":2,"api_key":"k3y"}"#),
    ]
    .concat()
    .into();
    let not_json = framed(br#"{"user":"ann", password: "hunter2"}"#);
    let gzipped: Bytes = [
        framed(br#"{"chunk":1}"#),
        message_frame(1, &tonic_gzip(br#"{"password":"hunter2"}"#)),
    ]
    .concat()
    .into();
    let cbor = framed(b"\xa1hpasswordghunter2");
    let one_ping = framed(br#"{"message":"a"}"#);
    let calls = [
        ("/pkg.Accounts/Login", "application/grpc+json", None, &login),
        (
            "/pkg.Files/Upload",
            "application/grpc-web+json",
            None,
            &stream,
        ),
        (
            "/pkg.Accounts/Broken",
            "application/grpc+json",
            None,
            &not_json,
        ),
        (
            "/pkg.Files/Gzipped",
            "application/grpc+json",
            Some("gzip"),
            &gzipped,
        ),
        ("/pkg.Accounts/Cbor", "application/grpc+cbor", None, &cbor),
        (
            "/tower_audit.demo.v1.Demo/ClientStream",
            "application/grpc+json",
            None,
            &one_ping,
        ),
    ];
    for (path, content_type, encoding, body) in calls {
        let mut request = http::Request::post(path).header("content-type", content_type);
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        let request = request.body(Full::new(body.clone())).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        let _ = response.into_body().collect().await.unwrap();
    }
    let report = guard.shutdown(DEADLINE).await.unwrap();
    assert_eq!((report.written, report.lost), (6, 0), "{report:?}");

    let rows = rows(&db).await;
    let body = |route: &str| {
        let row = rows
            .iter()
            .find(|row| row.route.as_deref() == Some(route))
            .unwrap();
        row.request_body.clone().unwrap()
    };
    assert_eq!(
        body("pkg.Accounts/Login"),
        r#"{"user":"ann","password":"[REDACTED]"}"#
    );
    assert_eq!(
        body("pkg.Files/Upload"),
        r#"[{"chunk":1},{"chunk":2,"api_key":"[REDACTED]"}]"#
    );
    assert_eq!(
        body("pkg.Accounts/Broken"),
        format!(
            "[binary application/grpc+json, {} bytes: message 1 is not valid JSON]",
            not_json.len()
        )
    );
    // The `grpc-encoding` is kept for the decoding with descriptors only.
    #[cfg(feature = "grpc-reflect")]
    let gzipped_row = r#"[{"chunk":1},{"password":"[REDACTED]"}]"#.to_owned();
    #[cfg(not(feature = "grpc-reflect"))]
    let gzipped_row = format!(
        r#"[{{"chunk":1}}] …[message 2 is compressed, not decoded; {} bytes total]"#,
        gzipped.len()
    );
    assert_eq!(body("pkg.Files/Gzipped"), gzipped_row);
    assert_eq!(
        body("pkg.Accounts/Cbor"),
        format!("[binary application/grpc+cbor, {} bytes]", cbor.len())
    );
    // A client stream of one message: an array when the descriptors tell the method's kind, else
    // judged from the body.
    let one_ping_row = if cfg!(feature = "grpc-reflect") {
        r#"[{"message":"a"}]"#
    } else {
        r#"{"message":"a"}"#
    };
    assert_eq!(body("tower_audit.demo.v1.Demo/ClientStream"), one_ping_row);
    for row in &rows {
        assert!(
            !row.request_body.as_deref().unwrap().contains("hunter2"),
            "{row:?}"
        );
    }

    // A replay sends HTTP bodies as stored: never a call's JSON rendering as its messages.
    let sent = Arc::new(Mutex::new(Vec::new()));
    let target = {
        let sent = sent.clone();
        tower::service_fn(move |request: http::Request<Full<Bytes>>| {
            sent.lock().unwrap().push(request.uri().to_string());
            async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new()))) }
        })
    };
    let report = tower_audit::store::replay(
        &db,
        &tower_audit::store::AuditFilter::new(),
        target,
        tower_audit::store::ReplayOptions::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.entries.len(), 6);
    for (record, outcome) in &report.entries {
        assert_eq!(
            outcome,
            &tower_audit::store::ReplayOutcome::Skipped {
                reason: "gRPC call: its messages are stored decoded or described, not framed \
                         as sent"
                    .into()
            },
            "{record:?}"
        );
    }
    assert!(sent.lock().unwrap().is_empty());
}

#[cfg(feature = "grpc-reflect")]
async fn decoded_request_is_redacted(t: Arc<TestDb>) {
    let h = Harness::start_with(&t, |builder| builder.grpc_descriptors(demo_descriptors())).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            let login = LoginRequest {
                username: "alice".into(),
                password: "hunter2".into(),
            };
            unary_outcome(client.login(login).await)
        })
        .await;
    assert_eq!(outcome.replies, ["welcome alice"]);

    let row = h.finish().await;
    assert_grpc_row(&row, "Login");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    let body = row.request_body.as_deref().unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "username": "alice", "password": "[REDACTED]" })
    );
    assert!(!body.contains("hunter2"));
}

/// Found by a probe: messages were decoded to JSON under their fields' JSON names, so a field
/// declared `db_password` with `json_name = "x"` was stored as `"x": "…"`, in clear. They are
/// now named as the .proto declares them.
async fn a_field_renamed_in_json_is_redacted_by_its_declared_name(t: Arc<TestDb>) {
    #[cfg(feature = "grpc-reflect")]
    {
        use tower_audit::prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
        use tower_audit::prost_reflect::prost_types::{
            DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
            MethodDescriptorProto, ServiceDescriptorProto,
        };
        use tower_audit::prost_reflect::{DescriptorPool, DynamicMessage, Value};

        let field = |name: &str, number: i32, json_name: &str| FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(Label::Optional as i32),
            r#type: Some(Type::String as i32),
            json_name: Some(json_name.into()),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("renamed.proto".into()),
            package: Some("renamed".into()),
            syntax: Some("proto3".into()),
            message_type: vec![DescriptorProto {
                name: Some("Login".into()),
                field: vec![
                    field("username", 1, "username"),
                    field("db_password", 2, "x"),
                    field("api_key", 3, "apiKey"),
                ],
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("Accounts".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Login".into()),
                    input_type: Some(".renamed.Login".into()),
                    output_type: Some(".renamed.Login".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let pool = DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
            .unwrap();
        let mut login = DynamicMessage::new(pool.get_message_by_name("renamed.Login").unwrap());
        for (name, value) in [
            ("username", "dave"),
            ("db_password", "hunter2-renamed"),
            ("api_key", "k-0123456789"),
        ] {
            login.set_field_by_name(name, Value::String(value.into()));
        }
        let frame = message_frame(0, &prost::Message::encode_to_vec(&login));

        let db = t.migrated().await;
        let (layer, guard) = AuditLayer::builder_for_grpc(db.clone())
            .grpc_descriptors(pool)
            .build()
            .unwrap();
        let reply = |request: axum::extract::Request| async move {
            let _ = request.into_body().collect().await.unwrap();
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "0")
                .body(axum::body::Body::empty())
                .unwrap();
            Ok::<_, Infallible>(response)
        };
        post_each_reply(
            layer,
            &[("/renamed.Accounts/Login", "application/grpc", frame)],
            reply,
        )
        .await;
        guard.shutdown(DEADLINE).await.unwrap();
        let rows = rows(&db).await;
        assert_eq!(rows.len(), 1, "{rows:#?}");
        let body = rows[0].request_body.as_deref().unwrap();
        assert!(
            !body.contains("hunter2") && !body.contains("k-0123"),
            "{body}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap(),
            serde_json::json!({
                "username": "dave",
                "db_password": "[REDACTED]",
                "api_key": "[REDACTED]",
            })
        );
    }
    #[cfg(not(feature = "grpc-reflect"))]
    let _ = t;
}

#[cfg(feature = "grpc-reflect")]
fn demo_descriptors() -> tower_audit::prost_reflect::DescriptorPool {
    tower_audit::prost_reflect::DescriptorPool::decode(
        include_bytes!("../proto/generated/demo.bin").as_ref(),
    )
    .unwrap()
}

/// The layer of the compression scenarios: the `grpc-encoding` recorded, and the request
/// messages decoded when the feature is on.
fn recording_encoding(builder: AuditLayerBuilder) -> AuditLayerBuilder {
    let builder = builder.record_headers([http::HeaderName::from_static("grpc-encoding")]);
    #[cfg(feature = "grpc-reflect")]
    let builder = builder.grpc_descriptors(demo_descriptors());
    builder
}

/// `bytes` compressed as tonic compresses a message (gzip, level 6).
fn tonic_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = flate2::read::GzEncoder::new(bytes, flate2::Compression::new(6));
    std::io::copy(&mut encoder, &mut out).unwrap();
    out
}

/// The bytes on the wire of `message` in a gzip-compressed stream: prefix and compressed payload.
fn gzip_wire_len(message: &impl prost::Message) -> usize {
    5 + tonic_gzip(&message.encode_to_vec()).len()
}

/// A tonic client compressing its requests (`grpc-encoding: gzip`, each message flagged
/// compressed): each row is the row of the same call sent uncompressed, but for `request_bytes`
/// (the compressed bytes on the wire) and the recorded `grpc-encoding`. With `grpc-reflect`, the
/// messages are inflated and decoded, the password redacted.
async fn compressed_request_is_recorded_like_its_uncompressed_twin(t: Arc<TestDb>) {
    let h = Harness::start_with(&t, recording_encoding).await;
    let login = || LoginRequest {
        username: "alice".into(),
        password: "hunter2-hunter2-hunter2".into(),
    };
    let pings = || ["a", "b", "c"].map(|m| ping(m, ""));
    for compressed in [false, true] {
        let client = move |client: DemoClient<Channel>| {
            if compressed {
                client.send_compressed(CompressionEncoding::Gzip)
            } else {
                client
            }
        };
        let outcome = h
            .same_outcome(|c| async move { unary_outcome(client(c).login(login()).await) })
            .await;
        assert_eq!(outcome.replies, ["welcome alice"]);
        let outcome = h
            .same_outcome(|c| async move {
                unary_outcome(client(c).client_stream(tokio_stream::iter(pings())).await)
            })
            .await;
        assert_eq!(outcome.replies, ["a,b,c"]);
    }

    let rows = h.finish_calls(4).await;
    let [login_plain, stream_plain, login_gzip, stream_gzip] = &rows[..] else {
        unreachable!()
    };
    for (plain, gzip, method) in [
        (login_plain, login_gzip, "Login"),
        (stream_plain, stream_gzip, "ClientStream"),
    ] {
        for row in [plain, gzip] {
            assert_grpc_row(row, method);
            assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
            assert_eq!(row.error, None);
            assert!(!row.request_body_truncated);
        }
        assert_eq!(plain.request_headers, None);
        assert_eq!(
            gzip.request_headers,
            Some(serde_json::json!({ "grpc-encoding": "gzip" }))
        );
        assert_eq!(counts(gzip), counts(plain), "{method}");
        assert_eq!(gzip.extra, plain.extra, "{method}");
        if cfg!(feature = "grpc-reflect") {
            assert_eq!(gzip.request_body, plain.request_body, "{method}");
        } else {
            for row in [plain, gzip] {
                assert_eq!(
                    row.request_body.as_deref(),
                    Some(
                        format!("[binary application/grpc, {} bytes]", row.request_bytes).as_str()
                    )
                );
            }
        }
    }
    // The bytes on the wire: compressed, each message's prefix included.
    let login_len = prost::Message::encoded_len(&login());
    assert_eq!(login_plain.request_bytes, 5 + login_len as i64);
    assert_eq!(login_gzip.request_bytes, gzip_wire_len(&login()) as i64);
    let stream_gzip_len: usize = pings().iter().map(gzip_wire_len).sum();
    assert_eq!(stream_gzip.request_bytes, stream_gzip_len as i64);
    assert_eq!(counts(stream_gzip), (Some(3), Some(1)));
    if cfg!(feature = "grpc-reflect") {
        let json = |row: &audit_log::Model| -> serde_json::Value {
            serde_json::from_str(row.request_body.as_deref().unwrap()).unwrap()
        };
        assert_eq!(
            json(login_gzip),
            serde_json::json!({ "username": "alice", "password": "[REDACTED]" })
        );
        assert_eq!(
            json(stream_gzip),
            serde_json::json!([{ "message": "a" }, { "message": "b" }, { "message": "c" }])
        );
    }
    for row in &rows {
        let body = row.request_body.as_deref().unwrap();
        assert!(!body.contains("hunter2"), "{body}");
    }
}

/// One request message as sent: the compressed flag, the length, the payload.
fn message_frame(flag: u8, payload: &[u8]) -> Bytes {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

impl GrpcServer {
    /// Sends `body` to `method` as it stands, with `grpc-encoding: encoding`: what a client that
    /// compresses badly, or maliciously, sends. What it sees back: the gRPC code and message.
    async fn raw_call(&self, method: &str, encoding: Option<&str>, body: Bytes) -> (Code, String) {
        self.raw_call_as(method, "application/grpc", encoding, body)
            .await
    }

    /// [`raw_call`](Self::raw_call) with the content type `content_type`.
    async fn raw_call_as(
        &self,
        method: &str,
        content_type: &str,
        encoding: Option<&str>,
        body: Bytes,
    ) -> (Code, String) {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut request = http::Request::post(format!("http://{}/{METHOD}{method}", self.addr))
            .header("te", "trailers");
        // An empty content type sends none.
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        let request = request
            .body(tonic::body::Body::new(Full::new(body)))
            .unwrap();
        let response = channel.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let trailers = body.collect().await.unwrap().trailers().cloned();
        let status = trailers
            .as_ref()
            .and_then(Status::from_header_map)
            .or_else(|| Status::from_header_map(&parts.headers))
            .expect("a grpc-status");
        (status.code(), status.message().to_owned())
    }
}

/// A deflate stream (one block, BFINAL set) that inflates to a zero byte and `repeats` copies of
/// 258 more, in two bits each: the densest deflate allows, about 1,032 to 1.
fn deflate_bomb(repeats: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first (header fields, extra bits).
        fn put(&mut self, value: u32, count: u32) {
            for i in 0..count {
                self.acc |= ((value >> i) & 1) << self.n;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    (self.acc, self.n) = (0, 0);
                }
            }
        }
        /// A Huffman code of `len` bits, most significant first.
        fn code(&mut self, code: u32, len: u32) {
            for i in (0..len).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
    }
    let mut bits = Bits {
        out: Vec::with_capacity(repeats / 4 + 64),
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // the last block
    bits.put(2, 2); // dynamic Huffman codes
    bits.put(286 - 257, 5); // literal/length codes up to 285 (length 258)
    bits.put(0, 5); // one distance code: 0 (distance 1)
    bits.put(18 - 4, 4); // code length codes, in their order, up to the one of length 1
    // Code length code lengths in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1:
    // 18 (a run of zeros) gets 1 bit, lengths 2 and 1 get 2 bits.
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.put(len, 3);
    }
    // Canonical codes: 18 → 0, 1 → 10, 2 → 11.
    let zeros = |bits: &mut Bits, n: u32| {
        bits.code(0, 1);
        bits.put(n - 11, 7);
    };
    bits.code(0b11, 2); // literal 0: a 2-bit code
    zeros(&mut bits, 138); // literals 1..=138: none
    zeros(&mut bits, 117); // literals 139..=255: none
    bits.code(0b11, 2); // end of block: a 2-bit code
    zeros(&mut bits, 28); // lengths 257..=284: none
    bits.code(0b10, 2); // length 258: a 1-bit code
    bits.code(0b10, 2); // distance code 0: a 1-bit code
    // Canonical codes: length 258 → 0, literal 0 → 10, end of block → 11; distance 1 → 0.
    bits.code(0b10, 2); // the literal 0
    // Each repeat is length 258 (0) at distance 1 (0): zero bits, written a byte at a time.
    let mut left = 2 * repeats;
    while left > 0 && bits.n != 0 {
        bits.put(0, 1);
        left -= 1;
    }
    bits.out.resize(bits.out.len() + left / 8, 0);
    bits.put(0, (left % 8) as u32);
    bits.code(0b11, 2); // end of block
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    bits.out
}

/// A gzip member around `deflate_bomb(repeats)`, its CRC unknown: nothing reads that far.
fn gzip_bomb(repeats: usize) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(deflate_bomb(repeats));
    let inflated = 1 + 258 * repeats as u64;
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(inflated as u32).to_le_bytes());
    out
}

/// A message of 1 MB that inflates to over 1 GB: the server refuses it past its own limit; the
/// writer inflates no more than `max_decoded_bytes` of it, and says so.
async fn compressed_bomb_is_bounded_and_described(t: Arc<TestDb>) {
    const REPEATS: usize = 4_200_000;
    let bomb = gzip_bomb(REPEATS);
    assert!(bomb.len() < 1_100_000, "{}", bomb.len());
    // What it inflates to, as far as anyone should look.
    let mut start = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(flate2::read::GzDecoder::new(&bomb[..]), 1 << 20),
        &mut start,
    )
    .unwrap();
    assert_eq!(start, vec![0; 1 << 20]);

    let h = Harness::start_with(&t, |builder| {
        recording_encoding(builder).max_body_bytes(2 << 20)
    })
    .await;
    let frame = message_frame(1, &bomb);
    let without = h.plain.raw_call("Login", Some("gzip"), frame.clone()).await;
    let with = h
        .audited
        .raw_call("Login", Some("gzip"), frame.clone())
        .await;
    assert_eq!(with, without);
    assert_ne!(with.0, Code::Ok, "{with:?}");

    let row = h.finish().await;
    assert_eq!(
        row.route.as_deref(),
        Some(format!("{METHOD}Login").as_str())
    );
    assert_eq!(row.status, Some(200));
    assert_eq!(row.grpc_status, Some(with.0 as i32));
    assert_eq!(row.error.as_deref(), Some(with.1.as_str()));
    assert_eq!(row.request_bytes, frame.len() as i64);
    // Tonic stops reading at the message it cannot inflate, but the client's stream had ended
    // with it: the body was captured whole.
    assert!(!row.request_body_truncated);
    assert_eq!(row.grpc_messages_in, Some(1));
    let described = described(&frame, "message 1 inflates past the 65536-byte limit");
    assert_eq!(row.request_body.as_deref(), Some(described.as_str()));
}

/// How a gRPC body whose compressed message cannot be read is stored: with descriptors, with
/// what is wrong with it; without, by its size alone.
fn described(frame: &[u8], problem: &str) -> String {
    if cfg!(feature = "grpc-reflect") {
        format!(
            "[binary application/grpc, {} bytes: {problem}]",
            frame.len()
        )
    } else {
        format!("[binary application/grpc, {} bytes]", frame.len())
    }
}

/// Compressed messages that cannot be read: each call is still recorded with its status, its
/// body described by what is wrong with it, never decoded as garbage.
async fn corrupt_compressed_messages_are_described(t: Arc<TestDb>) {
    let login = LoginRequest {
        username: "alice".into(),
        password: "hunter2-hunter2-hunter2".into(),
    };
    let gzipped = tonic_gzip(&prost::Message::encode_to_vec(&login));
    let calls: [(Option<&str>, Bytes, &str); 3] = [
        // Not gzip at all.
        (
            Some("gzip"),
            message_frame(1, b"password=hunter2, not gzip"),
            "message 1 is not valid gzip",
        ),
        // A gzip stream cut in the middle.
        (
            Some("gzip"),
            message_frame(1, &gzipped[..gzipped.len() / 2]),
            "message 1 is not valid gzip",
        ),
        // Flagged compressed, with no grpc-encoding to say how.
        (
            None,
            message_frame(1, &gzipped),
            "message 1 is flagged compressed without a grpc-encoding",
        ),
    ];
    let h = Harness::start_with(&t, recording_encoding).await;
    let mut seen = Vec::new();
    for (encoding, frame, _) in &calls {
        let without = h.plain.raw_call("Login", *encoding, frame.clone()).await;
        let with = h.audited.raw_call("Login", *encoding, frame.clone()).await;
        assert_eq!(with, without);
        assert_ne!(with.0, Code::Ok, "{with:?}");
        seen.push(with);
    }

    let rows = h.finish_calls(calls.len() as u64).await;
    for ((row, (_, frame, problem)), (code, message)) in rows.iter().zip(&calls).zip(&seen) {
        assert_eq!(row.status, Some(200), "{problem}");
        assert_eq!(row.grpc_status, Some(*code as i32), "{problem}");
        assert_eq!(row.error.as_deref(), Some(message.as_str()), "{problem}");
        assert_eq!(row.request_bytes, frame.len() as i64);
        assert_eq!(row.grpc_messages_in, Some(1));
        let described = described(frame, problem);
        assert_eq!(row.request_body.as_deref(), Some(described.as_str()));
    }
}

/// A server replying compressed (the client accepts gzip): its messages are counted from their
/// prefixes, its bytes as sent, its status read from the trailers as for any reply.
async fn compressed_replies_are_counted_with_their_status(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let accepting =
        |client: DemoClient<Channel>| client.accept_compressed(CompressionEncoding::Gzip);
    let outcome = h
        .same_outcome(|client| async move {
            let request = Ping {
                count: 3,
                ..ping("m", "")
            };
            stream_outcome(accepting(client).server_stream(request).await).await
        })
        .await;
    assert_eq!((outcome.code, outcome.replies.len()), (Code::Ok, 3));
    let outcome = h
        .same_outcome(|client| async move {
            stream_outcome(accepting(client).server_stream(ping("", "not_found")).await).await
        })
        .await;
    assert_eq!(
        (outcome.code, outcome.message.as_str()),
        (Code::NotFound, "widget 7 not found")
    );

    let rows = h.finish_calls(2).await;
    let (ok, not_found) = (&rows[0], &rows[1]);
    assert_eq!((ok.status, ok.grpc_status), (Some(200), Some(0)));
    assert_eq!(ok.error, None);
    assert_eq!(counts(ok), (Some(1), Some(3)));
    let sent: usize = (0..3)
        .map(|i| gzip_wire_len(&pong(format!("m {i}"), i)))
        .sum();
    assert_eq!(ok.response_bytes, sent as i64, "the compressed bytes");
    assert_eq!(
        (not_found.status, not_found.grpc_status),
        (Some(200), Some(Code::NotFound as i32))
    );
    assert_eq!(not_found.error.as_deref(), Some("widget 7 not found"));
    assert_eq!(counts(not_found), (Some(1), Some(1)));
    assert_eq!(
        not_found.response_bytes,
        gzip_wire_len(&pong("first", 0)) as i64
    );
}

/// Binary (`-bin`, base64 on the wire) metadata is stored as sent, large metadata cut to 4 KiB
/// with a note (README, "Configuration", `record_headers`); credentials are redacted, binary or
/// not.
async fn binary_and_huge_metadata_and_secrets(t: Arc<TestDb>) {
    let names = [
        "x-trace-bin",
        "x-big",
        "authorization",
        "x-api-key",
        "x-session-token-bin",
    ];
    let h = Harness::start_with(&t, |builder| {
        builder.record_headers(names.map(http::HeaderName::from_static))
    })
    .await;
    let big = "v".repeat(8 * 1024);
    let outcome = h
        .same_outcome(|mut client| {
            let big = big.clone();
            async move {
                let mut request = Request::new(ping("hello", "ok"));
                let metadata = request.metadata_mut();
                metadata.insert_bin(
                    "x-trace-bin",
                    tonic::metadata::MetadataValue::from_bytes(&[0, 1, 2, 0xff, 0xfe]),
                );
                metadata.insert("x-big", big.parse().unwrap());
                metadata.insert("authorization", "Bearer s3cr3t-token".parse().unwrap());
                metadata.insert("x-api-key", "k-s3cr3t".parse().unwrap());
                metadata.insert_bin(
                    "x-session-token-bin",
                    tonic::metadata::MetadataValue::from_bytes(b"s3cr3t-session"),
                );
                unary_outcome(client.unary(request).await)
            }
        })
        .await;
    assert_eq!(outcome.replies, ["hello"]);

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    let headers = row.request_headers.unwrap();
    let trace = headers["x-trace-bin"].as_str().unwrap();
    assert!(["AAEC//4", "AAEC//4="].contains(&trace), "{trace}");
    assert_eq!(
        headers["x-big"].as_str(),
        Some(format!("{} …[truncated, 8192 bytes total]", &big[..4 << 10]).as_str())
    );
    for secret in ["authorization", "x-api-key", "x-session-token-bin"] {
        assert_eq!(headers[secret], "[REDACTED]", "{secret}: {headers}");
    }
    let text = headers.to_string();
    assert!(!text.contains("s3cr3t"), "{text}");
}

/// A server stream of 10,000 messages: counts and bytes exact.
async fn ten_thousand_messages_streamed(t: Arc<TestDb>) {
    const N: u32 = 10_000;
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            let request = Ping {
                count: N,
                ..ping("m", "")
            };
            stream_outcome(client.server_stream(request).await).await
        })
        .await;
    assert_eq!(
        (outcome.code, outcome.replies.len()),
        (Code::Ok, N as usize)
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "ServerStream");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(row.error, None);
    assert_eq!(counts(&row), (Some(1), Some(i64::from(N))));
    let sent: usize = (0..N)
        .map(|i| 5 + prost::Message::encoded_len(&pong(format!("m {i}"), i)))
        .sum();
    assert_eq!(row.response_bytes, sent as i64);
}

/// Three messages of 3 MB each way round: a request far over the capture cap, counts and bytes
/// exact.
async fn a_few_messages_of_several_megabytes(t: Arc<TestDb>) {
    const N: u32 = 3;
    let big = "x".repeat(3 << 20);
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| {
            let request = Ping {
                count: N,
                ..ping(&big, "")
            };
            async move { stream_outcome(client.server_stream(request).await).await }
        })
        .await;
    assert_eq!(
        (outcome.code, outcome.replies.len()),
        (Code::Ok, N as usize)
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "ServerStream");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(row.error, None);
    assert_eq!(counts(&row), (Some(1), Some(i64::from(N))));
    let request_len = 5 + prost::Message::encoded_len(&ping(&big, "")) + 2;
    assert_eq!(row.request_bytes, request_len as i64);
    assert!(row.request_body_truncated);
    let sent: usize = (0..N)
        .map(|i| 5 + prost::Message::encoded_len(&pong(format!("{big} {i}"), i)))
        .sum();
    assert_eq!(row.response_bytes, sent as i64);
}

/// A client stream larger than `max_body_bytes`: the capture is cut, the counts are not.
async fn client_stream_over_the_capture_cap(t: Arc<TestDb>) {
    const N: usize = 200;
    let h = Harness::start_with(&t, |builder| builder.max_body_bytes(1024)).await;
    let message = |i: usize| format!("{i:03}{}", "a".repeat(100));
    let outcome = h
        .same_outcome(|mut client| async move {
            let pings = tokio_stream::iter((0..N).map(move |i| ping(&message(i), "")));
            unary_outcome(client.client_stream(pings).await)
        })
        .await;
    assert_eq!(outcome.code, Code::Ok);

    let row = h.finish().await;
    assert_grpc_row(&row, "ClientStream");
    assert_eq!((row.status, row.grpc_status), (Some(200), Some(0)));
    assert_eq!(counts(&row), (Some(N as i64), Some(1)));
    let sent: usize = (0..N)
        .map(|i| 5 + prost::Message::encoded_len(&ping(&message(i), "")))
        .sum();
    assert_eq!(row.request_bytes, sent as i64);
    assert!(row.request_body_truncated);
    assert_eq!(
        row.request_body.as_deref(),
        Some(format!("[binary application/grpc, {sent} bytes]").as_str())
    );
}

/// A `Status` with binary details and a message tonic percent-encodes: `error` holds the
/// message as the handler wrote it, nothing of the details.
async fn status_with_details_and_non_ascii_message(t: Arc<TestDb>) {
    let h = Harness::start(&t).await;
    let outcome = h
        .same_outcome(|mut client| async move {
            unary_outcome(client.unary(ping("x", "details")).await)
        })
        .await;
    assert_eq!(
        (outcome.code, outcome.message.as_str()),
        (Code::FailedPrecondition, DETAILED_MESSAGE)
    );

    let row = h.finish().await;
    assert_grpc_row(&row, "Unary");
    assert_eq!(
        (row.status, row.grpc_status),
        (Some(200), Some(Code::FailedPrecondition as i32))
    );
    assert_eq!(row.error.as_deref(), Some(DETAILED_MESSAGE));
    assert_eq!(counts(&row), (Some(1), Some(0)));
}

/// The client's deadline passes while the server streams: the client gives up at its deadline,
/// as gRPC clients do (tonic enforces `grpc-timeout` only until the response headers).
async fn deadline_expires_while_the_server_streams(t: Arc<TestDb>) {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let h = Harness::start(&t).await;
    let (dropped_tx, dropped_rx) = oneshot::channel();
    *h.audited_service.stream_dropped.lock().unwrap() = Some(dropped_tx);
    let call = |mut client: DemoClient<Channel>| async move {
        let started = tokio::time::Instant::now();
        let mut request = Request::new(ping("", "one_then_wait"));
        request.set_timeout(TIMEOUT);
        let mut stream = client.server_stream(request).await.unwrap().into_inner();
        let first = stream.message().await.unwrap().unwrap();
        let rest = tokio::time::timeout_at(started + TIMEOUT, stream.message()).await;
        assert!(rest.is_err(), "the stream went on: {rest:?}");
        first.message
    };
    let without = call(h.plain.client().await).await;
    let with = call(h.audited.client().await).await;
    assert_eq!(with, without);

    tokio::time::timeout(DEADLINE, dropped_rx)
        .await
        .expect("the server never dropped the response stream")
        .unwrap();
    let row = h.finish().await;
    assert_grpc_row(&row, "ServerStream");
    assert_eq!(row.status, Some(200));
    assert_eq!(row.grpc_status, Some(Code::DeadlineExceeded as i32));
    let error = row.error.as_deref().unwrap();
    assert!(error.contains("deadline exceeded"), "{error}");
    assert_eq!(counts(&row), (Some(1), Some(1)));
}
