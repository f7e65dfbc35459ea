//! The foundation suite, run against every configured backend: SQLite always, PostgreSQL and
//! MySQL/MariaDB when `TOWER_AUDIT_TEST_POSTGRES_URL` / `TOWER_AUDIT_TEST_MYSQL_URL` are set.
//! A backend without its variable shows its tests as ignored, and says so on stderr.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use tower::{Service, ServiceExt};
use tower_audit::{AuditLayer, WriterGuard};

use support::{Backend, ChunkedBody, Server, TestDb, client, empty, full, rows, scenarios, send};

use support::Scenario;

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    migrate_needs_no_create_right_once_everything_is_applied,
    path_segments_a_route_names_secret_are_redacted,
    an_audit_log_without_a_unique_record_id_is_named_by_migrate,
    replicas_migrating_at_once_all_start,
    thousand_concurrent_requests,
    streaming_upload_reaches_handler_and_capture_stays_capped,
    unread_json_body_of_a_401_is_recorded,
    client_disconnect_mid_response_is_recorded,
    inner_service_error_is_recorded,
    dropped_response_future_is_recorded_as_cancelled,
    shutdown_after_burst_writes_every_record,
    a_panicking_body_reading_loses_no_record,
    skip_rules_and_context,
    invalid_utf8_and_oversized_values_are_written,
    auth_middleware_sets_user_and_tenant_even_on_500,
    unmatched_route_is_grouped_on_404,
    client_ip_honours_only_trusted_proxies,
    identify_extractor_and_echoed_request_id,
    recorded_headers_are_redacted,
    user_agent_action_and_resource_are_redacted,
    a_body_cut_by_an_error_stays_cut_when_read_on,
    paths_with_a_password_in_their_userinfo_or_encoded_are_redacted,
    a_final_informational_status_is_an_error,
    html_form_fields_are_redacted,
    secrets_encoded_twice_quoted_as_json_or_given_to_mysql_are_redacted,
    json_with_text_around_it_or_in_a_query_is_redacted_as_json,
    json_lines_and_sql_bodies_are_redacted,
    compressed_bodies_decode_within_the_body_cap_and_the_batchs_budget,
    compressed_bodies_read_as_their_codings_say_and_unknown_codings_keep_no_secret,
    escaped_and_unicode_spelled_secrets_are_redacted,
    escaped_dashes_in_json_and_glued_mysql_clients_are_redacted,
    secrets_the_readme_listed_as_limits_are_redacted,
    objects_printed_over_lines_as_tuples_or_with_references_are_redacted,
    yaml_bodies_lose_whole_values,
    own_request_id_header_keeps_a_gateways_id_among_the_headers,
    outer_layer_enriches_through_response_extensions,
    late_small_body_of_an_unread_rejection_is_recorded,
    responses_sent_whole_without_their_end_are_complete,
    client_disconnect_mid_body_of_known_length_is_recorded,
    outer_layer_enriches_empty_responses_through_their_extensions,
    exact_filters_match_only_the_exact_value,
    latency_and_arrival_time_are_the_requests_own,
    long_heads_are_stored_whole_within_the_budget_and_cut_past_it,
    extra_with_a_nul_or_deep_nesting_keeps_the_body_and_headers,
];

fn main() {
    support::run_matrix("backend", SCENARIOS);
}

const DEADLINE: Duration = Duration::from_secs(30);

async fn shutdown(guard: WriterGuard) -> tower_audit::ShutdownReport {
    let report = guard.shutdown(DEADLINE).await.expect("shutdown");
    assert_eq!(report.lost, 0, "{report:?}");
    report
}

/// The app the suite serves: orders, an upload, a login that rejects unread, a stream.
fn app(layer: AuditLayer) -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            post(
                |Path(id): Path<u64>, Json(order): Json<serde_json::Value>| async move {
                    let _ = order;
                    (StatusCode::CREATED, Json(serde_json::json!({ "id": id })))
                },
            )
            .get(|Path(id): Path<u64>| async move { format!("order {id}") }),
        )
        .route(
            "/upload",
            post(|body: axum::body::Body| async move {
                let mut body = body;
                let (mut len, mut sum) = (0u64, 0u64);
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame.expect("upload frame").into_data() {
                        len += data.len() as u64;
                        sum = data
                            .iter()
                            .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                    }
                }
                format!("{len}:{sum}")
            }),
        )
        .route("/login", post(|| async { StatusCode::UNAUTHORIZED }))
        .route("/health", get(|| async { "ok" }))
        .layer(layer)
}

async fn thousand_concurrent_requests(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let server = Server::start(app(layer)).await;
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000u32 {
        let client = client.clone();
        let url = server.url(&format!("/orders/{i}?source=test&n={i}"));
        tasks.spawn(async move {
            let body = format!(r#"{{"item":"widget-{i}","qty":{i},"password":"hunter2-{i}"}}"#);
            let request = http::Request::post(url)
                .header("content-type", "application/json")
                .header("user-agent", "audit-test/1.0")
                .header("x-request-id", format!("req-{i}"))
                .body(full(body))
                .unwrap();
            let (status, _) = send(&client, request).await;
            assert_eq!(status, StatusCode::CREATED);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    server.stop().await;
    let report = shutdown(guard).await;
    assert_eq!((report.written, report.dropped), (1000, 0));

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1000);
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let i: u32 = row.path.trim_start_matches("/orders/").parse().unwrap();
        assert!(seen.insert(i), "row for request {i} twice");
        assert_eq!(row.method, "POST");
        assert_eq!(row.route.as_deref(), Some("/orders/{id}"));
        assert_eq!(
            row.query.as_deref(),
            Some(format!("source=test&n={i}").as_str())
        );
        assert_eq!(row.status, Some(201));
        assert_eq!(row.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(row.peer_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(row.user_agent.as_deref(), Some("audit-test/1.0"));
        assert_eq!(row.request_id.as_deref(), Some(format!("req-{i}").as_str()));
        let body = row.request_body.as_deref().unwrap();
        assert!(body.contains(&format!("widget-{i}")), "{body}");
        assert!(!body.contains("hunter2"), "secret stored: {body}");
        assert!(!row.request_body_truncated);
        assert!(row.latency_us > 0);
        assert!(row.request_bytes > 0 && row.response_bytes > 0);
        assert_eq!(row.error, None);
    }
}

async fn streaming_upload_reaches_handler_and_capture_stays_capped(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let server = Server::start(app(layer)).await;

    const CHUNKS: usize = 320;
    const CHUNK: usize = 64 * 1024; // 20 MiB in all
    let upload = ChunkedBody::new(CHUNKS, CHUNK);
    let expected = {
        let chunk: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
        let mut sum = 0u64;
        for _ in 0..CHUNKS {
            sum = chunk
                .iter()
                .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
        }
        format!("{}:{sum}", CHUNKS * CHUNK)
    };
    let request = http::Request::post(server.url("/upload"))
        .header("content-type", "text/plain")
        .body(upload.boxed())
        .unwrap();
    let (status, body) = send(&client(), request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, expected.as_bytes(), "the handler saw other bytes");

    server.stop().await;
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.request_bytes, (CHUNKS * CHUNK) as i64);
    assert!(row.request_body_truncated);
    let stored = row.request_body.as_deref().unwrap_or_default();
    assert!(
        stored.len() <= 64 * 1024 + 256,
        "stored {} bytes",
        stored.len()
    );
    assert_eq!(row.error, None);
}

async fn unread_json_body_of_a_401_is_recorded(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let server = Server::start(app(layer)).await;
    let request = http::Request::post(server.url("/login"))
        .header("content-type", "application/json")
        .body(full(
            r#"{"username":"alice","password":"not-the-password-42"}"#,
        ))
        .unwrap();
    let (status, _) = send(&client(), request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.status, Some(401));
    let body = row.request_body.as_deref().expect("body recorded");
    assert!(body.contains("alice"), "{body}");
    assert!(!body.contains("not-the-password-42"), "{body}");
    assert!(!row.request_body_truncated);
}

/// A response body that sends a chunk every few milliseconds forever, and says when it is dropped.
struct EndlessBody {
    tick: tokio::time::Interval,
    dropped: Option<oneshot::Sender<()>>,
}

impl Drop for EndlessBody {
    fn drop(&mut self) {
        if let Some(dropped) = self.dropped.take() {
            let _ = dropped.send(());
        }
    }
}

impl Body for EndlessBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.tick.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"tick\n"))))),
            Poll::Pending => Poll::Pending,
        }
    }
}

async fn client_disconnect_mid_response_is_recorded(t: Arc<TestDb>) {
    client_disconnects_mid_body(t, None).await;
}

/// A client that goes away in the middle of a body of known length is still a disconnect:
/// the body was not sent to its length.
async fn client_disconnect_mid_body_of_known_length_is_recorded(t: Arc<TestDb>) {
    client_disconnects_mid_body(t, Some("5000000")).await;
}

/// A client reads the first chunk of an endless body (with `content_length` set, if any)
/// and goes away.
async fn client_disconnects_mid_body(t: Arc<TestDb>, content_length: Option<&'static str>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let (dropped_tx, dropped_rx) = oneshot::channel();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let app = Router::new()
        .route(
            "/stream",
            get(move || {
                let dropped = dropped_tx.lock().unwrap().take();
                async move {
                    let body = axum::body::Body::new(EndlessBody {
                        tick: tokio::time::interval(Duration::from_millis(5)),
                        dropped,
                    });
                    let mut response = axum::response::Response::new(body);
                    if let Some(length) = content_length {
                        response.headers_mut().insert(
                            http::header::CONTENT_LENGTH,
                            http::HeaderValue::from_static(length),
                        );
                    }
                    response
                }
            }),
        )
        .layer(layer);
    let server = Server::start(app).await;

    let response = client()
        .request(
            http::Request::get(server.url("/stream"))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    if let Some(length) = content_length {
        assert_eq!(response.headers()["content-length"], length);
    }
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    // One tick or more: on a loaded machine the server may write the next before the client
    // reads, and the client reads what has arrived as one frame.
    assert!(
        !first.is_empty() && first.chunks(5).all(|tick| tick == b"tick\n"),
        "{first:?}"
    );
    drop(body); // the client goes away mid-response

    tokio::time::timeout(DEADLINE, dropped_rx)
        .await
        .expect("the server never dropped the response body")
        .unwrap();
    shutdown(guard).await;
    server.stop().await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.status, Some(200));
    let error = row.error.as_deref().expect("error recorded");
    assert!(error.contains("client disconnected"), "{error}");
    assert!(row.response_bytes >= 5 && row.response_bytes < 5_000_000);
}

async fn inner_service_error_is_recorded(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |_request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async {
                Err::<http::Response<Full<Bytes>>, _>(std::io::Error::other("database on fire"))
            },
        ));
    let request = http::Request::delete("/orders/7")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let error = service.oneshot(request).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "database on fire",
        "the inner error is returned as is"
    );
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].method, "DELETE");
    assert_eq!(rows[0].status, None);
    assert_eq!(
        rows[0].error.as_deref(),
        Some("service error: database on fire")
    );
}

async fn dropped_response_future_is_recorded_as_cancelled(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let mut service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |_request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| {
                std::future::pending::<Result<http::Response<Full<Bytes>>, Infallible>>()
            },
        ));
    let request = http::Request::get("/slow")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut future = Box::pin(service.ready().await.unwrap().call(request));
    std::future::poll_fn(|cx| {
        assert!(future.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    drop(future);
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, None);
    let error = rows[0].error.as_deref().unwrap();
    assert!(error.starts_with("cancelled"), "{error}");
}

async fn shutdown_after_burst_writes_every_record(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .capacity(10_000)
        .build()
        .unwrap();
    let router = app(layer);
    const BURST: usize = 5000;
    for i in 0..BURST {
        let request = http::Request::get(format!("/orders/{i}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    // No waiting: shutdown itself must flush the queue.
    let report = shutdown(guard).await;
    assert_eq!(report.written, BURST as u64);
    assert_eq!(rows(&db).await.len(), BURST);
    // On SQLite the stopped writer leaves the file whole: a copy of it alone, without the
    // `-wal` file beside it, holds every row, though the test's own connections stay open.
    if t.backend == Backend::Sqlite {
        let path = t.url().trim_start_matches("sqlite://");
        let path = std::path::Path::new(path.split('?').next().unwrap());
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = copy_dir.path().join("copy.db");
        std::fs::copy(path, &copy).unwrap();
        let copied = tower_audit::connect(format!("sqlite://{}", copy.display()))
            .await
            .unwrap();
        assert_eq!(rows(&copied).await.len(), BURST);
    }
}

/// A reading of the sanitizer's that panics (here a route's body function; before, a bug of
/// its own on one body) costs only that value: the writer converted a batch on a blocking
/// thread whose panic lost every record of the batch. Now each such row is written with its
/// body replaced whole, the other rows of its batch as they were, and nothing is lost.
async fn a_panicking_body_reading_loses_no_record(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let redactor = tower_audit::sanitize::Redactor::builder()
        .route_body_fn(
            "/orders/{id}",
            |body: &tower_audit::sanitize::BodyInput<'_>| {
                let text = String::from_utf8_lossy(body.bytes).into_owned();
                assert!(!text.contains("boom"), "a bug");
                Some(text)
            },
        )
        .build();
    let (layer, guard) = AuditLayer::builder(db.clone())
        .redactor(redactor)
        .build()
        .unwrap();
    let router = app(layer);
    for i in 0..20 {
        let body = if i % 5 == 2 {
            r#"{"secret":"boom"}"#
        } else {
            r#"{"n":1}"#
        };
        let request = http::Request::post(format!("/orders/{i}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.into_body().collect().await.unwrap();
    }
    let report = shutdown(guard).await;
    assert_eq!(report.written, 20);
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 20);
    for row in rows {
        let i: usize = row.path.trim_start_matches("/orders/").parse().unwrap();
        let expected = if i % 5 == 2 {
            "[REDACTED] …[the sanitizer failed on this body]"
        } else {
            r#"{"n":1}"#
        };
        assert_eq!(row.request_body.as_deref(), Some(expected), "{}", row.path);
    }
}

async fn skip_rules_and_context(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .skip_path("/health")
        .skip_path_prefix("/internal")
        .skip_if(|parts| parts.headers.contains_key("x-no-audit"))
        .build()
        .unwrap();
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/internal/metrics", get(|| async { "m" }))
        .route("/internals", get(|| async { "kept: not under /internal" }))
        .route(
            "/quiet",
            get(
                |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>| async move {
                    audit.skip();
                    "not recorded"
                },
            ),
        )
        .route(
            "/who",
            get(
                |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>| async move {
                    audit.set_user("alice");
                    audit.set_tenant("acme");
                    audit.set_action("whoami");
                    audit.insert_extra("plan", "gold");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "failed after setting the user",
                    )
                },
            ),
        )
        .layer(layer);
    for (path, header) in [
        ("/health", false),
        ("/internal/metrics", false),
        ("/internals", false),
        ("/quiet", false),
        ("/who", false),
        ("/who", true),
    ] {
        let mut request = http::Request::get(path);
        if header {
            request = request.header("x-no-audit", "1");
        }
        let response = router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    let stats = guard.stats();
    assert_eq!(stats.skipped, 4);
    shutdown(guard).await;
    let rows = rows(&db).await;
    let paths: Vec<_> = rows.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/internals", "/who"]);
    let who = &rows[1];
    assert_eq!(who.status, Some(500));
    assert_eq!(who.user_id.as_deref(), Some("alice"));
    assert_eq!(who.tenant_id.as_deref(), Some("acme"));
    assert_eq!(who.action.as_deref(), Some("whoami"));
    assert_eq!(who.extra, Some(serde_json::json!({ "plan": "gold" })));
}

async fn invalid_utf8_and_oversized_values_are_written(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let long_user = "ü".repeat(1000);
    let router = Router::new()
        .route(
            "/odd",
            post(
                move |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>| {
                    let long_user = long_user.clone();
                    async move {
                        audit.set_user(long_user);
                        "ok"
                    }
                },
            ),
        )
        .layer(layer);
    let request = http::Request::post(format!("/odd?q={}", "x".repeat(10_000)))
        .header(
            "user-agent",
            http::HeaderValue::from_bytes(b"agent \xff\xfe").unwrap(),
        )
        .header("x-request-id", "r".repeat(500))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(vec![0xffu8, 0x00, 0xfe, b'a']))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap();
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.user_id.as_ref().map(|u| u.chars().count()), Some(255));
    assert_eq!(row.request_id.as_ref().map(String::len), Some(128));
    assert_eq!(row.user_agent.as_deref(), Some("agent \u{fffd}\u{fffd}"));
    assert_eq!(row.query.as_ref().map(String::len), Some(10_002));
}

async fn auth_middleware_sets_user_and_tenant_even_on_500(t: Arc<TestDb>) {
    use axum::middleware::Next;
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    async fn auth(request: axum::extract::Request, next: Next) -> axum::response::Response {
        let audit = request
            .extensions()
            .get::<tower_audit::AuditContext>()
            .cloned();
        let user = request
            .headers()
            .get("x-user")
            .and_then(|v| v.to_str().ok());
        match (audit, user) {
            (Some(audit), Some(user)) => {
                audit.set_user(user);
                audit.set_tenant("tenant-7");
                next.run(request).await
            }
            _ => axum::response::IntoResponse::into_response(StatusCode::UNAUTHORIZED),
        }
    }
    let router = Router::new()
        .route(
            "/boom",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "handler failed") }),
        )
        .route_layer(axum::middleware::from_fn(auth))
        .layer(layer);
    let server = Server::start(router).await;
    let client = client();
    for user in [Some("carol"), None] {
        let mut request = http::Request::post(server.url("/boom"));
        if let Some(user) = user {
            request = request.header("x-user", user);
        }
        send(&client, request.body(empty()).unwrap()).await;
    }
    server.stop().await;
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].status, Some(500));
    assert_eq!(rows[0].user_id.as_deref(), Some("carol"));
    assert_eq!(rows[0].tenant_id.as_deref(), Some("tenant-7"));
    assert_eq!(rows[1].status, Some(401));
    assert_eq!(rows[1].user_id, None);
}

async fn unmatched_route_is_grouped_on_404(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let server = Server::start(app(layer)).await;
    for path in ["/wp-admin/setup.php", "/.env", "/orders/not-a-number"] {
        send(
            &client(),
            http::Request::get(server.url(path)).body(empty()).unwrap(),
        )
        .await;
    }
    server.stop().await;
    shutdown(guard).await;
    let rows = rows(&db).await;
    let routes: Vec<_> = rows
        .iter()
        .map(|r| (r.path.as_str(), r.route.as_deref(), r.status))
        .collect();
    assert_eq!(
        routes,
        [
            ("/wp-admin/setup.php", Some("<unmatched>"), Some(404)),
            ("/.env", Some("<unmatched>"), Some(404)),
            // Matched a route, failed to parse: the template is kept.
            ("/orders/not-a-number", Some("/orders/{id}"), Some(400)),
        ]
    );
}

async fn client_ip_honours_only_trusted_proxies(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let trusting = tower_audit::client_ip::TrustedProxies::cidrs(["127.0.0.0/8"]).unwrap();
    let (trusted_layer, trusted_guard) = AuditLayer::builder(db.clone())
        .trusted_proxies(trusting)
        .build()
        .unwrap();
    let (plain_layer, plain_guard) = AuditLayer::builder(db.clone())
        .anonymize_ip(true)
        .build()
        .unwrap();
    let trusted = Server::start(app(trusted_layer)).await;
    let plain = Server::start(app(plain_layer)).await;
    for server in [&trusted, &plain] {
        let request = http::Request::get(server.url("/orders/1"))
            .header("x-forwarded-for", "6.6.6.6, 203.0.113.9")
            .body(empty())
            .unwrap();
        send(&client(), request).await;
        let request = http::Request::get(server.url("/orders/2"))
            .header("x-forwarded-for", "not an address")
            .body(empty())
            .unwrap();
        let (status, _) = send(&client(), request).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a bad header never fails the request"
        );
    }
    trusted.stop().await;
    plain.stop().await;
    shutdown(trusted_guard).await;
    shutdown(plain_guard).await;
    let rows = rows(&db).await;
    // Two writers: their rows interleave in any order.
    let mut ips: Vec<_> = rows
        .iter()
        .map(|r| (r.client_ip.as_deref(), r.peer_ip.as_deref()))
        .collect();
    ips.sort();
    let mut expected = vec![
        // The trusted proxy's right-most untrusted hop; the forged left-most entry is ignored.
        (Some("203.0.113.9"), Some("127.0.0.1")),
        // Garbage stops the walk at the proxy itself.
        (Some("127.0.0.1"), Some("127.0.0.1")),
        // No proxy trusted: the peer wins, anonymized to /24.
        (Some("127.0.0.0"), Some("127.0.0.0")),
        (Some("127.0.0.0"), Some("127.0.0.0")),
    ];
    expected.sort();
    assert_eq!(ips, expected);
}

async fn identify_extractor_and_echoed_request_id(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .identify(|parts| tower_audit::Identity {
            user_id: parts
                .headers
                .get("x-gateway-user")
                .and_then(|v| v.to_str().ok())
                .map(Into::into),
            tenant_id: Some("from-gateway".into()),
        })
        .echo_request_id(true)
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/id",
            get(|headers: http::HeaderMap| async move {
                headers
                    .get("x-request-id")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            }),
        )
        .layer(layer);
    let request = http::Request::get("/id")
        .header("x-gateway-user", "dave")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(seen, echoed.as_bytes(), "the handler sees the generated id");
    let request = http::Request::get("/id")
        .header("x-request-id", "client-chosen-1")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-1");
    response.into_body().collect().await.unwrap();
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows[0].request_id.as_deref(), Some(echoed.as_str()));
    assert_eq!(uuid::Uuid::parse_str(&echoed).unwrap().get_version_num(), 7);
    assert_eq!(rows[0].user_id.as_deref(), Some("dave"));
    assert_eq!(rows[0].tenant_id.as_deref(), Some("from-gateway"));
    assert_eq!(rows[1].request_id.as_deref(), Some("client-chosen-1"));
    assert_eq!(rows[1].user_id, None);
}

async fn recorded_headers_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .record_headers([
            http::header::AUTHORIZATION,
            http::header::ACCEPT,
            http::HeaderName::from_static("x-api-key"),
        ])
        .build()
        .unwrap();
    let request = http::Request::get("/orders/3")
        .header("authorization", "Bearer abc.def.ghi-very-secret")
        .header("x-api-key", "key-123-secret")
        .header("accept", "application/json")
        .header("cookie", "session=not-recorded")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app(layer).oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    shutdown(guard).await;
    let rows = rows(&db).await;
    let headers = rows[0].request_headers.clone().expect("headers recorded");
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["authorization"], "[REDACTED]");
    assert_eq!(headers["x-api-key"], "[REDACTED]");
    assert!(
        headers.get("cookie").is_none(),
        "only the headers asked for: {headers}"
    );
    let text = headers.to_string();
    assert!(
        !text.contains("very-secret") && !text.contains("key-123"),
        "{text}"
    );
}

/// Found by a probe: the user agent, and the action and resource a handler sets, were stored as
/// they came, where the same user agent in `request_headers` and a secret in `extra` were
/// redacted.
async fn user_agent_action_and_resource_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .record_headers([http::header::USER_AGENT])
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/reset",
            axum::routing::get(
                |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>| async move {
                    audit.set_action("reset token=act-secret-1");
                    audit.set_resource("/reset?token=res-secret-2");
                    "ok"
                },
            ),
        )
        .layer(layer);
    let agent = "deploy-bot/1.0 (token=ua-secret-3; ghp_abcdefghijklmnopqrstuvwxyz0123456789)";
    let request = http::Request::get("/reset?token=query-secret-4")
        .header("user-agent", agent)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    shutdown(guard).await;
    let rows = rows(&db).await;
    let row = &rows[0];
    let stored = serde_json::to_string(row).unwrap();
    for secret in [
        "act-secret",
        "res-secret",
        "ua-secret",
        "ghp_abc",
        "query-secret",
    ] {
        assert!(!stored.contains(secret), "{secret} stored: {stored}");
    }
    assert_eq!(
        row.user_agent.as_deref(),
        Some("deploy-bot/1.0 (token=[REDACTED]; [REDACTED])")
    );
    assert_eq!(
        row.request_headers.as_ref().unwrap()["user-agent"],
        row.user_agent.as_deref().unwrap()
    );
    assert_eq!(row.resource.as_deref(), Some("/reset?token=[REDACTED]"));
    assert_eq!(row.action.as_deref(), Some("reset token=[REDACTED]"));
}

/// Found by a probe: a CONNECT's target (`user:password@host:port`) was stored with its
/// password, and a path's value patterns were not looked for once it was percent-decoded.
async fn paths_with_a_password_in_their_userinfo_or_encoded_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .fallback(|| async { StatusCode::OK })
        .layer(layer);
    let requests = [
        http::Request::connect("alice:s3cretPass@example.com:443"),
        http::Request::get("/cards/4111%201111%201111%201111/charge"),
        http::Request::get("/proxy/https%3A%2F%2Fann%3AhunterP2%40db.example.com%2F"),
    ];
    for request in requests {
        let request = request.body(axum::body::Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    shutdown(guard).await;
    let paths: Vec<String> = rows(&db).await.into_iter().map(|row| row.path).collect();
    assert_eq!(
        paths,
        [
            "alice:[REDACTED]@example.com:443",
            "/cards/[REDACTED]/charge",
            "/proxy/[REDACTED]"
        ]
    );
}

/// Found by a probe: a handler that answered 103 as its final response was recorded as
/// answered, where hyper sends a 500 in its place over HTTP/1.1 (and resets the stream over
/// HTTP/2). An HTTP/1.1 upgrade's 101 is no error.
async fn a_final_informational_status_is_an_error(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/hints",
            get(|| async { (StatusCode::from_u16(103).unwrap(), "x") }),
        )
        .route(
            "/upgrade",
            get(|| async { StatusCode::SWITCHING_PROTOCOLS }),
        )
        .layer(layer);
    for path in ["/hints", "/upgrade"] {
        let request = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows[0].status, Some(103));
    assert!(
        rows[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("informational status 103")),
        "{:?}",
        rows[0]
    );
    assert_eq!(
        (rows[1].status, rows[1].error.as_deref()),
        (Some(101), None)
    );
}

/// Nine bytes of a body, then the connection's error, then the end that hyper's body gives
/// after an error.
struct CutBody(u8);

impl Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0 += 1;
        Poll::Ready(match self.0 {
            1 => Some(Ok(Frame::data(Bytes::from_static(b"{\"a\":1234")))),
            2 => Some(Err(std::io::Error::other("connection reset"))),
            _ => None,
        })
    }
}

/// Found by a probe: a handler that read on after its body's error got the end, and the row
/// said the body was whole (`request_body_truncated` false).
async fn a_body_cut_by_an_error_stays_cut_when_read_on(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/upload",
            post(|request: axum::extract::Request| async move {
                let mut body = request.into_body();
                let mut errors = 0;
                while let Some(frame) = body.frame().await {
                    errors += usize::from(frame.is_err());
                }
                format!("{errors} error")
            }),
        )
        .layer(layer);
    let request = http::Request::post("/upload")
        .header("content-type", "text/plain")
        .body(axum::body::Body::new(CutBody(0)))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], b"1 error");
    shutdown(guard).await;
    let rows = rows(&db).await;
    let row = &rows[0];
    assert_eq!(row.request_bytes, 9);
    assert!(row.request_body_truncated, "{row:?}");
    assert!(
        row.error
            .as_deref()
            .is_some_and(|e| e.contains("connection reset")),
        "{row:?}"
    );
}

/// Posts each `(path, content type, body)` through a layer of the default settings and returns
/// the stored bodies, in order.
async fn posted_bodies<const N: usize>(
    db: &sea_orm::DatabaseConnection,
    posts: [(&str, &str, String); N],
) -> Vec<Option<String>> {
    posted_rows(db, posts)
        .await
        .into_iter()
        .map(|row| row.request_body)
        .collect()
}

/// Posts each `(path, content type, body)` through a layer of the default settings and returns
/// the stored rows, in order: a path may hold a query.
async fn posted_rows<const N: usize>(
    db: &sea_orm::DatabaseConnection,
    posts: [(&str, &str, String); N],
) -> Vec<tower_audit::entity::audit_log::Model> {
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    for (path, content_type, body) in posts {
        let request = http::Request::post(path)
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))
            .unwrap();
        let response = app(layer.clone()).oneshot(request).await.unwrap();
        assert!(response.status().is_success(), "{path}");
        response.into_body().collect().await.unwrap();
    }
    shutdown(guard).await;
    let rows = rows(db).await;
    assert_eq!(rows.len(), N);
    rows
}

/// An HTML form posted as a page and inside a JSON string is stored with its tags and without
/// the values of its secret fields, a CSRF token's `<meta>` and a field escaped into the page's
/// text included.
async fn html_form_fields_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let form = concat!(
        r#"<meta name="csrf-token" content="hunter5">"#,
        r#"<form><input type="password" name="pw" value="hunter2">"#,
        "<input name=\"password\" value='s3cr3t'>\n<INPUT value=hunter3\n  name=api_key>",
        r#"<input name="user" value="ann"></form>"#,
        r#"<pre>&lt;input name=&quot;pass&#119;ord&quot; value=&quot;hunter4&quot;&gt;</pre>"#
    );
    let json = serde_json::json!({ "page": form }).to_string();
    let rows = posted_bodies(
        &db,
        [
            ("/upload", "text/html; charset=utf-8", form.to_owned()),
            ("/orders/5", "application/json", json),
        ],
    )
    .await;
    let page = rows[0].as_deref().expect("page recorded");
    assert_eq!(
        page,
        concat!(
            r#"<meta name="csrf-token" content="[REDACTED]">"#,
            r#"<form><input type="password" name="pw" value="[REDACTED]">"#,
            "<input name=\"password\" value='[REDACTED]'>\n<INPUT value=[REDACTED]\n  name=api_key>",
            r#"<input name="user" value="ann"></form>"#,
            r#"<pre>&lt;input name=&quot;pass&#119;ord&quot; value=&quot;[REDACTED]&quot;&gt;</pre>"#
        )
    );
    let json = rows[1].as_deref().expect("JSON recorded");
    let stored: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(stored["page"], page, "{json}");
}

/// Found by a probe: `GET /reset/8f14e45f…` on the route `/reset/{token}` was stored with the
/// token, a working credential until it expires. A segment whose placeholder a sensitive key
/// names is now redacted whole; other placeholders and literal segments (`/token/refresh`)
/// are kept.
async fn path_segments_a_route_names_secret_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let ok = || get(|| async { "ok" });
    let api = Router::new().route("/invite/{invite_token}", ok());
    let app = Router::new()
        .route("/reset/{token}", ok())
        .route("/password/reset/{reset_token}/{email}", ok())
        .route("/users/{id}", ok())
        .route("/token/refresh", ok())
        .route("/hooks/{*secret}", ok())
        .nest("/api", api)
        .layer(layer);
    let paths = [
        "/reset/8f14e45fceea167a5a36dedd4bea2543",
        "/password/reset/c2hgzv5f1e9a/ann@example.com",
        "/users/42",
        "/token/refresh",
        "/hooks/T0001/B0002/XXXXXXXX",
        "/api/invite/inv_9f8e7d6c5b4a",
    ];
    for path in paths {
        let request = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.into_body().collect().await.unwrap();
    }
    shutdown(guard).await;
    let stored: Vec<_> = rows(&db)
        .await
        .into_iter()
        .map(|row| {
            let altered = row
                .extra
                .as_ref()
                .is_some_and(|extra| extra["request_target_altered"] == true);
            (row.path, altered)
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("/reset/[REDACTED]".to_owned(), true),
            (
                "/password/reset/[REDACTED]/ann@example.com".to_owned(),
                true
            ),
            ("/users/42".to_owned(), false),
            ("/token/refresh".to_owned(), false),
            ("/hooks/[REDACTED]".to_owned(), true),
            ("/api/invite/[REDACTED]".to_owned(), true),
        ]
    );
}

/// Found by a probe: `migrate` began with a `CREATE TABLE IF NOT EXISTS`, so an application
/// whose database user may only read and write rows (least privilege; the tables migrated by
/// another) could not call it at start-up, as README shows. With everything applied, it now
/// creates nothing. On the server backends, with a user of those rights alone.
async fn migrate_needs_no_create_right_once_everything_is_applied(t: Arc<TestDb>) {
    use sea_orm::ConnectionTrait;
    let db = t.migrated().await;
    let (Some(schema), Some(base)) = (t.schema(), t.backend.base_url()) else {
        eprintln!("SQLite has no users: checked on PostgreSQL and MariaDB");
        return;
    };
    let user = format!("ta_rw_{}", std::process::id());
    let (grants, url, revoke) = match t.backend {
        Backend::Postgres => (
            vec![
                format!("CREATE ROLE \"{user}\" LOGIN"),
                format!("GRANT USAGE ON SCHEMA \"{schema}\" TO \"{user}\""),
                format!("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA \"{schema}\" TO \"{user}\""),
                format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA \"{schema}\" TO \"{user}\""),
            ],
            base.replacen("postgres@", &format!("{user}@"), 1),
            vec![
                format!("DROP OWNED BY \"{user}\""),
                format!("DROP ROLE \"{user}\""),
            ],
        ),
        _ => (
            vec![
                format!("CREATE USER '{user}'@'%'"),
                format!("GRANT SELECT, INSERT ON `{schema}`.* TO '{user}'@'%'"),
            ],
            format!("mysql://{user}@127.0.0.1:3306/{schema}"),
            vec![format!("DROP USER '{user}'@'%'")],
        ),
    };
    for grant in &grants {
        db.execute_unprepared(grant).await.unwrap();
    }
    let limited = sea_orm::Database::connect(t.options(&url)).await.unwrap();
    let migrated = tower_audit::migrate(&limited).await;
    limited.close().await.ok();
    for statement in &revoke {
        db.execute_unprepared(statement).await.unwrap();
    }
    migrated.unwrap();
}

/// Found by a probe: an `audit_log` made by hand with every column but no unique index on
/// `record_id` passed `migrate`, and a record retried after an insert of unknown outcome, or
/// a journal replayed twice, was stored twice. `migrate` now names it.
async fn an_audit_log_without_a_unique_record_id_is_named_by_migrate(t: Arc<TestDb>) {
    use sea_orm::ConnectionTrait;
    let db = t.migrated().await;
    let drop = match t.backend {
        Backend::Postgres => "ALTER TABLE audit_log DROP CONSTRAINT audit_log_record_id_key",
        Backend::MySql => "ALTER TABLE audit_log DROP INDEX record_id",
        Backend::Sqlite => {
            "CREATE TABLE copy AS SELECT * FROM audit_log; DROP TABLE audit_log; \
             ALTER TABLE copy RENAME TO audit_log"
        }
    };
    db.execute_unprepared(drop).await.unwrap();
    let error = tower_audit::migrate(&db).await.unwrap_err().to_string();
    assert!(error.contains("no unique index on record_id"), "{error}");
    // A unique index on another column, or on record_id with another, is not it.
    db.execute_unprepared("CREATE UNIQUE INDEX by_two ON audit_log (record_id, path)")
        .await
        .unwrap();
    assert!(tower_audit::migrate(&db).await.is_err());
    db.execute_unprepared("CREATE UNIQUE INDEX by_record ON audit_log (record_id)")
        .await
        .unwrap();
    tower_audit::migrate(&db).await.unwrap();
}

/// Found by a probe: of 8 replicas migrating a new database at once, 7 failed on PostgreSQL and
/// MariaDB (a version recorded twice, a `CREATE TABLE IF NOT EXISTS` that lost the race) and
/// up to 7 on SQLite: under Kubernetes, crash loops at every first deploy. Each now tries
/// again and finds the migrations applied.
async fn replicas_migrating_at_once_all_start(t: Arc<TestDb>) {
    const REPLICAS: usize = 8;
    let barrier = Arc::new(tokio::sync::Barrier::new(REPLICAS));
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        // A pool of its own each, as a process has.
        let db = t.connect().await;
        let barrier = Arc::clone(&barrier);
        replicas.push(tokio::spawn(async move {
            barrier.wait().await;
            tower_audit::migrate(&db).await
        }));
    }
    for replica in replicas {
        replica.await.unwrap().unwrap();
    }
    // Migrated once, and it works.
    let db = t.connect().await;
    tower_audit::migrate(&db).await.unwrap();
    let versions = sea_orm::ConnectionTrait::query_all_raw(
        &db,
        sea_orm::Statement::from_string(
            sea_orm::ConnectionTrait::get_database_backend(&db),
            "SELECT version FROM tower_audit_migrations",
        ),
    )
    .await
    .unwrap();
    assert_eq!(versions.len(), 2);
    let rows = sent_rows(&db, [("GET", "/orders/1".to_owned(), None, String::new())]).await;
    assert_eq!(rows[0].path, "/orders/1");
}

/// Sends each `(method, path, content type, body)` to a real server over TCP through a layer of
/// the default settings and returns the stored rows, in order: a path may hold a query.
async fn sent_rows<const N: usize>(
    db: &sea_orm::DatabaseConnection,
    requests: [(&str, String, Option<&str>, String); N],
) -> Vec<tower_audit::entity::audit_log::Model> {
    let requests = requests.map(|(method, path, content_type, body)| {
        (method, path, content_type, None, body.into_bytes())
    });
    sent_encoded_rows(db, AuditLayer::builder(db.clone()), requests).await
}

/// A request [`sent_encoded_rows`] sends: its method, path, content type, content encoding and
/// body.
type EncodedRequest<'a> = (&'a str, String, Option<&'a str>, Option<&'a str>, Vec<u8>);

/// [`sent_rows`] through a layer built by `builder`, each body sent with its content encoding.
async fn sent_encoded_rows<const N: usize>(
    db: &sea_orm::DatabaseConnection,
    builder: tower_audit::AuditLayerBuilder,
    requests: [EncodedRequest<'_>; N],
) -> Vec<tower_audit::entity::audit_log::Model> {
    let (layer, guard) = builder.build().unwrap();
    let server = Server::start(app(layer)).await;
    let client = client();
    for (method, path, content_type, encoding, body) in requests {
        let mut request = http::Request::builder()
            .method(method)
            .uri(server.url(&path));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        // Codings on lines of their own, where the test gives them so.
        for encoding in encoding.into_iter().flat_map(|e| e.split('\n')) {
            request = request.header("content-encoding", encoding);
        }
        let (status, _) = send(&client, request.body(full(body)).unwrap()).await;
        assert!(status.is_success(), "{path}: {status}");
    }
    shutdown(guard).await;
    let rows = rows(db).await;
    assert_eq!(rows.len(), N);
    rows
}

/// A gzip body that inflates far past `max_body_bytes` (two hundred bytes to 60 KB) is decoded
/// to the cap, and a batch's bodies grow past their captured bytes by at most
/// `queue_body_bytes`: the rest are described, so a flood of such bodies cannot take the cap's
/// memory once for each record of a batch (found by a probe: 405 MiB; each row held 60 KB).
async fn compressed_bodies_decode_within_the_body_cap_and_the_batchs_budget(t: Arc<TestDb>) {
    use std::io::Write as _;

    let db = t.migrated().await;
    let item = r#""aaaaaaaa","#;
    let inflated = format!(
        r#"{{"password":"hunter2","items":[{}"a"]}}"#,
        item.repeat(60_000 / item.len())
    );
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(inflated.as_bytes()).unwrap();
    let gzipped = encoder.finish().unwrap();
    let post = || {
        (
            "POST",
            "/upload".to_owned(),
            Some("application/json"),
            Some("gzip"),
            gzipped.clone(),
        )
    };
    // The eight records wait for the shutdown, and are converted as one batch.
    let builder = AuditLayer::builder(db.clone())
        .max_body_bytes(1024)
        .queue_body_bytes(4 * 1024)
        .batch_size(64)
        .flush_interval(Duration::from_secs(3600));
    let rows = sent_encoded_rows(&db, builder, std::array::from_fn::<_, 8, _>(|_| post())).await;
    let described = format!("[gzip-encoded application/json, {} bytes]", gzipped.len());
    let (decoded, undecoded): (Vec<_>, Vec<_>) = rows
        .iter()
        .map(|row| row.request_body.as_deref().unwrap())
        .partition(|body| *body != described);
    let counts = (decoded.len(), undecoded.len());
    assert!(
        counts.0 > 0 && counts.1 > 0,
        "(decoded, described): {counts:?}"
    );
    for body in decoded {
        assert!(body.len() < 1024 + 100, "{} bytes stored", body.len());
        assert!(body.starts_with(r#"{"password":"[REDACTED]","items":["aaa"#));
    }
}

/// Found by a probe, each read back from its row:
/// - a body gzipped whole but inflating past `max_body_bytes` is stored cut, and its
///   `request_body_truncated` said it was whole;
/// - a body of two gzip members (`cat a.gz b.gz`) was read to the end of the first, half a
///   document with no word of the rest;
/// - `Content-Encoding: gzip` sent twice, on two lines, was read from the first only: the body
///   (gzipped twice) was stored as invalid JSON;
/// - a coding the redactor does not know was quoted as sent, a token in it too.
async fn compressed_bodies_read_as_their_codings_say_and_unknown_codings_keep_no_secret(
    t: Arc<TestDb>,
) {
    use std::io::Write as _;

    let gzip = |data: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    };
    let db = t.migrated().await;
    let long = format!(r#"{{"pad":"{}","password":"hunter2"}}"#, "x".repeat(3000));
    let members = [
        gzip(br#"{"user":"alice","#),
        gzip(br#""password":"hunter2"}"#),
    ]
    .concat();
    let login = br#"{"user":"alice","password":"hunter2"}"#;
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let json = Some("application/json");
    let post = |encoding, body| ("POST", "/upload".to_owned(), json, encoding, body);
    let rows = sent_encoded_rows(
        &db,
        AuditLayer::builder(db.clone()).max_body_bytes(2048),
        [
            post(Some("gzip"), gzip(long.as_bytes())),
            post(Some("gzip"), members),
            post(Some("gzip\ngzip"), gzip(&gzip(login))),
            post(Some("identity\ngzip"), gzip(login)),
            post(Some(jwt), login.to_vec()),
            post(Some("br"), login.to_vec()),
        ],
    )
    .await;
    let body = |i: usize| rows[i].request_body.as_deref().unwrap_or_default();
    assert!(body(0).starts_with(r#"{"pad":""#), "{}", body(0));
    assert!(body(0).contains("bytes decoded from"), "{}", body(0));
    assert!(!body(0).contains("hunter2"), "{}", body(0));
    assert!(rows[0].request_body_truncated, "cut while inflating");
    let redacted = r#"{"user":"alice","password":"[REDACTED]"}"#;
    for (i, row) in rows.iter().enumerate().take(4).skip(1) {
        assert_eq!(body(i), redacted, "row {i}");
        assert!(!row.request_body_truncated, "row {i}");
    }
    assert_eq!(body(4), "[unknown-encoded application/json, 37 bytes]");
    assert_eq!(body(5), "[br-encoded application/json, 37 bytes]");
}

/// Secrets the sanitizer once stored, each sent to a real server and read back from the row:
/// a redirect's query encoded twice, a Kubernetes env quoted as a JSON string, MySQL's
/// `-phunter2`, and a multipart field name encoded twice. What must stay, stays.
async fn secrets_encoded_twice_quoted_as_json_or_given_to_mysql_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let query = "redirect=https%253A%252F%252Fx%252Fcb%253Ftoken%253DSECRET1\
        &next=%2Fcb%3Fpassword%253DSECRET2&page=%252Fa%253Fb%253D1";
    let json = r#"{"env":"[{\"name\":\"DB_PASSWORD\",\"value\":\"SECRET3\"},{\"name\":\"PORT\",\"value\":\"80\"}]","cmd":"mysql -uroot -pSECRET4 shop"}"#;
    let text = "mysqldump -uroot -p SECRET5 shop | ssh -p 2222 backup 'cat > shop.sql'";
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"pass%2577ord\"\r\n\r\n\
        SECRET6\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XyZ--";
    let rows = sent_rows(
        &db,
        [
            ("GET", format!("/orders/1?{query}"), None, String::new()),
            (
                "POST",
                "/orders/2".to_owned(),
                Some("application/json"),
                json.to_owned(),
            ),
            (
                "POST",
                "/upload".to_owned(),
                Some("text/plain"),
                text.to_owned(),
            ),
            (
                "POST",
                "/upload".to_owned(),
                Some("multipart/form-data; boundary=XyZ"),
                multipart.to_owned(),
            ),
        ],
    )
    .await;
    assert_eq!(
        rows[0].query.as_deref(),
        Some(
            "redirect=https://x/cb?token%3D[REDACTED]\
             &next=/cb?password%3D[REDACTED]&page=%252Fa%253Fb%253D1"
        )
    );
    assert_eq!(
        rows[1].request_body.as_deref(),
        Some(
            r#"{"env":"[{\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"},{\"name\":\"PORT\",\"value\":\"80\"}]","cmd":"mysql -uroot -p[REDACTED] shop"}"#
        )
    );
    assert_eq!(
        rows[2].request_body.as_deref(),
        Some("mysqldump -uroot -p [REDACTED] shop | ssh -p 2222 backup 'cat > shop.sql'")
    );
    assert_eq!(
        rows[3].request_body.as_deref(),
        Some(
            r#"[{"name":"pass%2577ord","size":7,"value":"[REDACTED]"},{"name":"note","size":2,"value":"hi"}]"#
        )
    );
    for row in &rows {
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");
    }
}

/// Textual `application/*` bodies, once stored as `[binary …, n bytes]`, sent to a real server
/// and read back from the row: NDJSON and a JSON text sequence have each record redacted as
/// JSON (one pretty-printed over lines too, one with a raw line break in a string), their line
/// breaks and record separators kept; an SQL script loses a user's password. NDJSON sent
/// gzipped is decoded and redacted record by record, whole and cut by the capture cap.
async fn json_lines_and_sql_bodies_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let ndjson = concat!(
        "{\"event\":\"login\", \"user\":\"ann\",\"password\":\"SECRET1\"}\n",
        "{\"name\":\"DB_PASSWORD\",\"value\":\"SECRET2\"}\r\n",
        "not json: token=SECRET3\n",
        "{\"note\":\"a\nb\",\"name\":\"pin\",\"value\":\"SECRET10\"}\n",
    );
    let gzip = |text: &str| {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    // Past the cap once compressed: each record's numbers differ.
    let long: String = (0..400)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"password\":\"SECRET-{}\"}}\n",
                i * 7919 % 10007
            )
        })
        .collect();
    const CAP: usize = 1024;
    assert!(gzip(&long).len() > CAP);
    let seq =
        "\x1e{\"api_key\":\"SECRET4\"}\n\x1e{\n  \"name\": \"pin\",\n  \"value\": \"SECRET6\"\n}\n";
    let sql = concat!(
        "CREATE USER app IDENTIFIED BY 'SECRET5';\nGRANT SELECT ON shop.* TO app;\n",
        "ALTER ROLE app PASSWORD -- rotated\n $pw$SECRET7$pw$;\n",
        "INSERT INTO users (name, password) VALUES ('ann', 'SECRET8'), ('bob', 'SECRET9');\n",
    );
    let post = |content_type, encoding, body: Vec<u8>| {
        (
            "POST",
            "/upload".to_owned(),
            Some(content_type),
            encoding,
            body,
        )
    };
    let rows = sent_encoded_rows(
        &db,
        AuditLayer::builder(db.clone()).max_body_bytes(CAP),
        [
            post("application/x-ndjson", None, ndjson.into()),
            post("application/json-seq", None, seq.into()),
            post("application/sql", None, sql.into()),
            post("application/x-ndjson", Some("gzip"), gzip(ndjson)),
            post("application/jsonl", Some("gzip"), gzip(&long)),
        ],
    )
    .await;
    let want = concat!(
        "{\"event\":\"login\",\"user\":\"ann\",\"password\":\"[REDACTED]\"}\n",
        "{\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"}\r\n",
        "not json: token=[REDACTED]\n",
        "{\"note\":\"a\nb\",\"name\":\"pin\",\"value\":\"[REDACTED]\"}\n",
    );
    assert_eq!(rows[0].request_body.as_deref(), Some(want));
    assert_eq!(rows[3].request_body.as_deref(), Some(want));
    let cut = rows[4].request_body.as_deref().unwrap();
    assert!(
        cut.starts_with("{\"id\":0,\"password\":\"[REDACTED]\"}\n{\"id\":1,"),
        "{cut}"
    );
    assert!(cut.contains(" …[truncated, "), "{cut}");
    assert_eq!(
        rows[1].request_body.as_deref(),
        Some("\x1e{\"api_key\":\"[REDACTED]\"}\n\x1e{\"name\":\"pin\",\"value\":\"[REDACTED]\"}\n")
    );
    assert_eq!(
        rows[2].request_body.as_deref(),
        Some(concat!(
            "CREATE USER app IDENTIFIED BY [REDACTED];\nGRANT SELECT ON shop.* TO app;\n",
            "ALTER ROLE app PASSWORD -- rotated\n [REDACTED];\n",
            "INSERT INTO users (name, password) VALUES ('ann', [REDACTED]), ('bob', [REDACTED]);\n",
        ))
    );
    for row in &rows {
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");
    }
}

/// JSON documents the review found read only by the pair rules, each sent to a real server and
/// read back from the row: with text around it in a JSON string's log line and in a text body,
/// in a query's and a form's value, percent-encoded or not, and as a whole form body (JSON
/// sent with the form content type). A value named by its sibling
/// `name` member goes; the text around it, and a document with nothing to redact, stay.
async fn json_with_text_around_it_or_in_a_query_is_redacted_as_json(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let query = concat!(
        "f=%7B%22name%22%3A%22DB_PASSWORD%22%2C%22value%22%3A%22SECRET1%22%7D",
        // As a browser sends it: `"` is no URI character, braces are kept.
        "&filter={%22name%22:%22api_key%22,%22value%22:%22SECRET2%22}",
        "&port=%7B%22name%22%3A%22PORT%22%2C%22value%22%3A%2280%22%7D"
    );
    let json =
        r#"{"log":"request failed: {\"name\":\"DB_PASSWORD\",\"value\":\"SECRET3\"} (retrying)"}"#;
    let text = "request failed: {\"name\":\"DB_PASSWORD\",\"value\":\"SECRET4\"} (retrying)\n\
        retry {\"user\":\"ann\",\"password\":\"SECRET5\"} later\n\
        got { \"name\": \"PORT\", \"value\": \"80\" } ok";
    let form = "a=1&f=%7B%22value%22%3A%22SECRET6%22%2C%22name%22%3A%22token%22%7D";
    let rows = sent_rows(
        &db,
        [
            ("GET", format!("/orders/1?{query}"), None, String::new()),
            (
                "POST",
                "/orders/2".to_owned(),
                Some("application/json"),
                json.to_owned(),
            ),
            (
                "POST",
                "/upload".to_owned(),
                Some("text/plain"),
                text.to_owned(),
            ),
            (
                "POST",
                "/upload".to_owned(),
                Some("application/x-www-form-urlencoded"),
                form.to_owned(),
            ),
            // jQuery's `$.ajax({data: JSON.stringify(x)})`, sent without a `contentType`.
            (
                "POST",
                "/upload".to_owned(),
                Some("application/x-www-form-urlencoded; charset=UTF-8"),
                r#"{"email":"a@b","password":"SECRET7"}"#.to_owned(),
            ),
        ],
    )
    .await;
    assert_eq!(
        rows[0].query.as_deref(),
        Some(
            r#"f={"name":"DB_PASSWORD","value":"[REDACTED]"}&filter={"name":"api_key","value":"[REDACTED]"}&port=%7B%22name%22%3A%22PORT%22%2C%22value%22%3A%2280%22%7D"#
        )
    );
    assert_eq!(
        rows[1].request_body.as_deref(),
        Some(
            r#"{"log":"request failed: {\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"} (retrying)"}"#
        )
    );
    assert_eq!(
        rows[2].request_body.as_deref(),
        Some(
            "request failed: {\"name\":\"DB_PASSWORD\",\"value\":\"[REDACTED]\"} (retrying)\n\
             retry {\"user\":\"ann\",\"password\":[REDACTED]} later\n\
             got { \"name\": \"PORT\", \"value\": \"80\" } ok"
        )
    );
    assert_eq!(
        rows[3].request_body.as_deref(),
        Some(r#"a=1&f={"value":"[REDACTED]","name":"token"}"#)
    );
    assert_eq!(
        rows[4].request_body.as_deref(),
        Some(r#"{"email":"a@b","password":"[REDACTED]"}"#)
    );
    for row in &rows {
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");
    }
}

/// Secrets spelled as the review found them kept, in a text body and inside a JSON string:
/// an element named with a Unicode dash or Go-escaped with `&ensp;` in its name, a scheme
/// before an escaped space, a long option with escaped dashes, a password field whose value
/// holds `">` and a tag. The prose around them keeps its words.
async fn escaped_and_unicode_spelled_secrets_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let log = concat!(
        "a <api\u{2010}key>SECRET1</api\u{2010}key> b\n",
        r"c \u003capi&ensp;key\u003eSECRET2\u003c/api&ensp;key\u003e d",
        "\n",
        r"e Basic\u0020dXNlcjpwYXNz f Bearer\u0020abcdefghijkl g",
        "\n",
        r"h \u002d\u002dpassword hunter3 i \u002d\u002dpassword=hunter4",
        "\n",
        r#"<input type="password" value="ab">cd<b>x"> j"#,
        "\nthe basic usage: token rejected, run --password-file /path",
    );
    let json = serde_json::json!({ "log": log }).to_string();
    let rows = posted_bodies(
        &db,
        [
            ("/upload", "text/plain; charset=utf-8", log.to_owned()),
            ("/orders/5", "application/json", json),
        ],
    )
    .await;
    let text = rows[0].as_deref().expect("text recorded");
    assert_eq!(
        text,
        concat!(
            "a <api\u{2010}key>[REDACTED]</api\u{2010}key> b\n",
            r"c \u003capi&ensp;key\u003e[REDACTED]\u003c/api&ensp;key\u003e d",
            "\n",
            "e Basic [REDACTED] f Bearer [REDACTED] g\n",
            r"h \u002d\u002dpassword [REDACTED] i \u002d\u002dpassword=[REDACTED]",
            "\n",
            r#"<input type="password" value="[REDACTED]"> j"#,
            "\nthe basic usage: token rejected, run --password-file /path",
        )
    );
    let json = rows[1].as_deref().expect("JSON recorded");
    let stored: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(stored["log"], text, "{json}");
}

/// Command lines the review found kept: a JSON string whose dashes are escapes
/// (`\u002d\u002dpassword`, `\u002dp`), a MySQL client glued to the `|` or `$(` before it, and
/// a bare `-p` before a line continued with `\`. Other commands' `-p` stays.
async fn escaped_dashes_in_json_and_glued_mysql_clients_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let json =
        r#"{"cmd":"run \u002d\u002dpassword SECRET1 db","sql":"mysql -uroot \u002dpSECRET2 shop"}"#;
    let text = "zcat d.gz|mysql -pSECRET3 shop\nn=$(mysqldump -p SECRET4 shop)|ssh -p 2222 h\n\
        mysql -uroot -p \\\n  SECRET5 shop";
    let rows = posted_bodies(
        &db,
        [
            ("/orders/3", "application/json", json.to_owned()),
            ("/upload", "text/plain", text.to_owned()),
        ],
    )
    .await;
    assert_eq!(
        rows[0].as_deref(),
        Some(r#"{"cmd":"run --password [REDACTED] db","sql":"mysql -uroot -p[REDACTED] shop"}"#)
    );
    assert_eq!(
        rows[1].as_deref(),
        Some(
            "zcat d.gz|mysql -p[REDACTED] shop\nn=$(mysqldump -p [REDACTED] shop)|ssh -p 2222 h\n\
             mysql -uroot -p \\\n  [REDACTED] shop"
        )
    );
}

/// Secrets the README listed as limits, each sent through the layer and read back from the
/// row: a scheme before a percent-encoded or HTML-escaped space (`Bearer%20…`,
/// `Basic&#32;…`, `Token&nbsp;…`) in a query's value encoded twice, a text body, an HTML page
/// and a JSON string; a MySQL client's arguments as a JSON array, the client named in a
/// container's `command` and the password in its `args`; a client named in capitals with
/// `.exe` (`MYSQL.EXE -p…`); a long option whose dashes are Unicode's (`––password …`,
/// `\u2014password …`); arguments in an array before the one naming their command, as sorted
/// keys write them (`"Cmd"` before `"Entrypoint"`, `"args"` before `"command"`), and values
/// before the names that name them by place (`"data"` before `"names"`); a table's header line
/// under `"headers"` and its `"rows"`. Prose around them, and other commands' `-p`, stay.
async fn secrets_the_readme_listed_as_limits_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let text = "auth Bearer%20SECRET1xyz then\nthe basic%20usage is fine\n\
        C:\\mysql\\bin\\MYSQL.EXE -u root -pSECRET7 shop\nMySQL -p is documented\n\
        run \u{2013}\u{2013}password SECRET9 db \u{2014} the password \u{2014} a word";
    let page = "<td>Basic&#32;SECRET2xy </td><td>the basic&nbsp;usage</td>";
    let json = r#"{"log":"sent Token&nbsp;SECRET3abc ok","run":"run \u2014password SECRET10 db"}"#;
    let argv = r#"{"cmd":["mysql","-uroot","-pSECRET5","db"],"containers":[{"command":["mysqldump"],"args":["-p","SECRET6","shop"]},{"command":["ssh","-p","2222"],"args":["docker","run","-p","8080:80"]}],"win":["MySQL.exe","-p","SECRET8"],"app":["app","\u2013\u2013password","SECRET11"]}"#;
    // Sorted keys: the arguments before the command that reads them.
    let sorted = r#"[{"Cmd":["-a","SECRET12"],"Entrypoint":["redis-cli"]},{"args":["--host","db","-pSECRET13"],"command":["mysql"]},{"data":["ann","SECRET14"],"names":["user","password"]},{"headers":["email","password"],"rows":[["a@x","SECRET15"]]}]"#;
    let rows = posted_rows(
        &db,
        [
            (
                "/upload?h=Basic%2526nbsp%253BSECRET4&n=the%2520basic%2520usage",
                "text/plain",
                text.to_owned(),
            ),
            ("/upload", "text/html", page.to_owned()),
            ("/orders/3", "application/json", json.to_owned()),
            ("/orders/4", "application/json", argv.to_owned()),
            ("/orders/5", "application/json", sorted.to_owned()),
        ],
    )
    .await;
    assert_eq!(
        rows[0].query.as_deref(),
        Some("h=Basic+[REDACTED]&n=the%2520basic%2520usage")
    );
    assert_eq!(
        rows[0].request_body.as_deref(),
        Some(
            "auth Bearer [REDACTED] then\nthe basic%20usage is fine\n\
             C:\\mysql\\bin\\MYSQL.EXE -u root -p[REDACTED] shop\nMySQL -p is documented\n\
             run \u{2013}\u{2013}password [REDACTED] db \u{2014} the password \u{2014} a word"
        )
    );
    assert_eq!(
        rows[1].request_body.as_deref(),
        Some("<td>Basic [REDACTED] </td><td>the basic&nbsp;usage</td>")
    );
    assert_eq!(
        rows[2].request_body.as_deref(),
        Some(
            "{\"log\":\"sent Token [REDACTED] ok\",\"run\":\"run \u{2014}password [REDACTED] db\"}"
        )
    );
    assert_eq!(
        rows[3].request_body.as_deref(),
        Some(
            r#"{"cmd":["mysql","-uroot","-p[REDACTED]","db"],"containers":[{"command":["mysqldump"],"args":["-p","[REDACTED]","shop"]},{"command":["ssh","-p","2222"],"args":["docker","run","-p","8080:80"]}],"win":["MySQL.exe","-p","[REDACTED]"],"app":["app","\u2013\u2013password","[REDACTED]"]}"#
        )
    );
    assert_eq!(
        rows[4].request_body.as_deref(),
        Some(
            r#"[{"Cmd":["-a","[REDACTED]"],"Entrypoint":["redis-cli"]},{"args":["--host","db","-p[REDACTED]"],"command":["mysql"]},{"data":["ann","[REDACTED]"],"names":["user","password"]},{"headers":["email","password"],"rows":[["a@x","[REDACTED]"]]}]"#
        )
    );
    for row in &rows {
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");
    }
}

/// Objects printed as no JSON that the README listed as limits, posted as text and as a page and
/// read back from the row: a dict pretty-printed over lines, a record reformatted over lines,
/// Python's pairs as 2-tuples, members in parentheses after no name, a Go value holding a `,`,
/// quotes written as HTML references. The names and a plainly named value stay.
async fn objects_printed_over_lines_as_tuples_or_with_references_are_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let text = "env {'name': 'DB_PASSWORD',\n 'value': 'SECRET1'}\n\
        EnvVar(\n  name=API_KEY,\n  value=SECRET2\n)\n\
        OrderedDict([('name', 'DB_PASSWORD'), ('value', 'SECRET3')]) [('password', 'SECRET4')]\n\
        (name=DB_PASSWORD, value=SECRET5) {Name:DB_PASSWORD Value:SECRET6,x}\n\
        {'name': 'PORT',\n 'value': '80'}";
    let page =
        "<pre>{&#39;name&#39;: &#39;DB_PASSWORD&#39;, &#39;value&#39;: &#39;SECRET7&#39;}</pre>";
    let rows = posted_rows(
        &db,
        [
            ("/upload", "text/plain", text.to_owned()),
            ("/upload", "text/html", page.to_owned()),
        ],
    )
    .await;
    assert_eq!(
        rows[0].request_body.as_deref(),
        Some(
            "env {'name': 'DB_PASSWORD',\n 'value': [REDACTED]}\n\
             EnvVar(\n  name=API_KEY,\n  value=[REDACTED]\n)\n\
             OrderedDict([('name', 'DB_PASSWORD'), ('value', [REDACTED])]) [('password', [REDACTED])]\n\
             (name=DB_PASSWORD, value=[REDACTED]) {Name:DB_PASSWORD Value:[REDACTED]}\n\
             {'name': 'PORT',\n 'value': '80'}"
        )
    );
    assert_eq!(
        rows[1].request_body.as_deref(),
        Some("<pre>{&#39;name&#39;: &#39;DB_PASSWORD&#39;, &#39;value&#39;: [REDACTED]}</pre>")
    );
    for row in &rows {
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");
    }
}

/// YAML posted as `application/yaml` (once described as binary, the body lost) and quoted in
/// a JSON string, sent to a real server and read back from the row: a Kubernetes env's value
/// named by its `name`, a block scalar, a sequence, a quoted scalar over two lines. The keys,
/// the other values and `valueFrom` stay.
async fn yaml_bodies_lose_whole_values(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let deployment = "spec:\n  containers:\n  - name: app\n    env:\n    - name: DB_PASSWORD\n      \
        value: SECRET1\n    - name: PORT\n      value: \"80\"\n    - name: API_KEY\n      \
        valueFrom:\n        secretKeyRef:\n          name: api\n    \
        args:\n    - --verbose\ndb:\n  password: |\n    SECRET2\n    SECRET3\n  \
        token:\n  - SECRET4\n  - SECRET5\n  secret: \"SECRET6\n    SECRET7\"\n  \
        api_key: SECRET8\n    SECRET9\n\n    SECRET10\n  user: ann\n";
    let json = serde_json::json!({ "config": "db:\n  password:\n    SECRET11\n  user: ann" });
    let rows = sent_rows(
        &db,
        [
            (
                "POST",
                "/upload".to_owned(),
                Some("application/yaml"),
                deployment.to_owned(),
            ),
            (
                "POST",
                "/orders/7".to_owned(),
                Some("application/json"),
                json.to_string(),
            ),
        ],
    )
    .await;
    assert_eq!(
        rows[0].request_body.as_deref(),
        Some(
            "spec:\n  containers:\n  - name: app\n    env:\n    - name: DB_PASSWORD\n      \
             value: [REDACTED]\n    - name: PORT\n      value: \"80\"\n    - name: API_KEY\n      \
             valueFrom:\n        secretKeyRef:\n          name: api\n    \
             args:\n    - --verbose\ndb:\n  password: [REDACTED]\n  \
             token:\n  [REDACTED]\n  secret: [REDACTED]\n  api_key: [REDACTED]\n  user: ann\n"
        )
    );
    assert_eq!(
        rows[1].request_body.as_deref(),
        Some(r#"{"config":"db:\n  password:\n    [REDACTED]\n  user: ann"}"#)
    );
    for row in &rows {
        let stored = format!("{row:?}");
        assert!(!stored.contains("SECRET"), "{stored}");
    }
}

/// The README's advice behind a gateway that sets random request ids: the layer reads its own
/// header, so rows get time-ordered ids the `request_id` index takes in order, and the gateway's
/// id is kept among the recorded headers.
async fn own_request_id_header_keeps_a_gateways_id_among_the_headers(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .request_id_header(http::HeaderName::from_static("x-audit-id"))
        .record_headers([http::HeaderName::from_static("x-request-id")])
        .build()
        .unwrap();
    let gateway_id = uuid::Uuid::new_v4().to_string();
    for request in [
        http::Request::get("/orders/1").header("x-request-id", gateway_id.as_str()),
        http::Request::get("/orders/2").header("x-audit-id", "ours-2"),
    ] {
        let request = request.body(axum::body::Body::empty()).unwrap();
        let response = app(layer.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
    shutdown(guard).await;

    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2);
    let generated = rows[0].request_id.as_deref().expect("a generated id");
    assert_ne!(generated, gateway_id);
    assert_eq!(
        uuid::Uuid::parse_str(generated).unwrap().get_version_num(),
        7,
        "{generated}"
    );
    let headers = rows[0].request_headers.clone().expect("headers recorded");
    assert_eq!(headers["x-request-id"], gateway_id.as_str());
    assert_eq!(rows[1].request_id.as_deref(), Some("ours-2"));
    assert_eq!(rows[1].request_headers, None);
}

async fn outer_layer_enriches_through_response_extensions(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .context_on_response(true)
        .build()
        .unwrap();
    let service = tower::ServiceBuilder::new()
        .map_response(|response: http::Response<_>| {
            if let Some(audit) = response.extensions().get::<tower_audit::AuditContext>() {
                audit.set_action("outer.saw.response");
            }
            response
        })
        .layer(layer)
        .service(tower::service_fn(
            |_request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async {
                // Outer layers enrich the record until its body ends.
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            },
        ));
    let response = service
        .oneshot(
            http::Request::get("/x")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows[0].action.as_deref(), Some("outer.saw.response"));
}

/// A JSON body of known length whose bytes are not there at first (a slow client).
struct LateBody {
    polls: u8,
    data: Option<Bytes>,
}

impl Body for LateBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.polls += 1;
        if self.polls == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.data.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.polls > 1 && self.data.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

async fn late_small_body_of_an_unread_rejection_is_recorded(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(
            |_request: http::Request<tower_audit::RequestBody<LateBody>>| async {
                let mut response = http::Response::new(Full::new(Bytes::from_static(b"no")));
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                Ok::<_, Infallible>(response)
            },
        ));
    let body = LateBody {
        polls: 0,
        data: Some(Bytes::from_static(
            br#"{"user":"zoe","password":"late-secret"}"#,
        )),
    };
    let request = http::Request::post("/login")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    response.into_body().collect().await.unwrap();
    shutdown(guard).await;
    let rows = rows(&db).await;
    let body = rows[0].request_body.as_deref().expect("body recorded");
    assert!(
        body.contains("zoe") && !body.contains("late-secret"),
        "{body}"
    );
    assert!(!rows[0].request_body_truncated);
}

/// hyper drops a response body without polling it to its end when no body may be sent (HEAD,
/// 304) or once it has written the body's known length (`Content-Length` on a stream): each
/// response went out whole and is no disconnect.
async fn responses_sent_whole_without_their_end_are_complete(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/download",
            get(|| async {
                let chunks = ["first ", "second ", "third"].map(Ok::<_, Infallible>);
                (
                    [(http::header::CONTENT_LENGTH, "18")],
                    axum::body::Body::from_stream(tokio_stream::iter(chunks)),
                )
            }),
        )
        .route(
            "/cached",
            get(|| async { (StatusCode::NOT_MODIFIED, "a body hyper never sends") }),
        )
        .route(
            "/orders/{id}",
            get(|Path(id): Path<u64>| async move { format!("order {id}") }),
        )
        .layer(layer);
    let server = Server::start(app).await;
    let client = client();
    let (status, body) = send(
        &client,
        http::Request::get(server.url("/download"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::OK, &b"first second third"[..])
    );
    let (status, body) = send(
        &client,
        http::Request::head(server.url("/orders/5"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    let (status, _) = send(
        &client,
        http::Request::get(server.url("/cached"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    server.stop().await;
    shutdown(guard).await;

    let mut rows = rows(&db).await;
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.status,
                r.response_bytes,
                r.error.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/cached", Some(304), 0, None),
            ("GET", "/download", Some(200), 18, None),
            ("HEAD", "/orders/5", Some(200), 0, None),
        ]
    );
}

/// Responses with an empty body (204, a redirect, a bare 401) can be enriched by an outer layer
/// through the context on the response, as those with a body can; hyper drops their bodies
/// unpolled, and that is no disconnect.
async fn outer_layer_enriches_empty_responses_through_their_extensions(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .context_on_response(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/gone", post(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/moved",
            get(|| async { axum::response::Redirect::to("/new") }),
        )
        .route("/private", get(|| async { StatusCode::UNAUTHORIZED }))
        .route("/full", get(|| async { "ok" }))
        .layer(layer)
        .layer(tower::util::MapResponseLayer::new(
            |response: axum::response::Response| {
                if let Some(audit) = response.extensions().get::<tower_audit::AuditContext>() {
                    audit.set_action(format!("outer.saw.{}", response.status().as_u16()));
                }
                response
            },
        ));
    let server = Server::start(app).await;
    let client = client();
    for (method, path) in [
        (http::Method::POST, "/gone"),
        (http::Method::GET, "/moved"),
        (http::Method::GET, "/private"),
        (http::Method::GET, "/full"),
    ] {
        let request = http::Request::builder()
            .method(method)
            .uri(server.url(path))
            .body(empty())
            .unwrap();
        send(&client, request).await;
    }
    server.stop().await;
    shutdown(guard).await;

    let mut rows = rows(&db).await;
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.path.as_str(), r.action.as_deref(), r.error.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("/full", Some("outer.saw.200"), None),
            ("/gone", Some("outer.saw.204"), None),
            ("/moved", Some("outer.saw.303"), None),
            ("/private", Some("outer.saw.401"), None),
        ]
    );
}

/// `export --user alice` for a data-access request must not return the rows of `Alice`: MySQL's
/// `utf8mb4_unicode_ci` took `Alice`, `ALICE`, `alicé` and `alice ` for `alice`, on every
/// exact filter. Each filter now selects its one row on every backend; a method given in lower
/// case selects the upper-case method, and not a lower-case one the server saw.
async fn exact_filters_match_only_the_exact_value(t: Arc<TestDb>) {
    use sea_orm::EntityTrait;
    use tower_audit::entity::audit_log;
    use tower_audit::store::{self, AuditFilter, PageRequest};

    let db = t.migrated().await;
    let spellings = ["alice", "Alice", "ALICE", "alicé", "alice "];
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    let models = spellings.iter().enumerate().map(|(i, name)| {
        support::row(at + chrono::Duration::seconds(i as i64), |m| {
            m.user_id = Some((*name).into());
            m.tenant_id = Some(format!("{name}-corp"));
            m.route = Some(format!("/{name}"));
            m.request_id = Some(format!("req-{name}"));
            m.client_ip = Some(
                [
                    "2001:db8::a",
                    "2001:DB8::A",
                    "2001:Db8::a",
                    "2001:db8::à",
                    "2001:db8::a ",
                ][i]
                    .into(),
            );
            m.method = ["POST", "post", "Post", "PÔST", "POST "][i].into();
        })
    });
    audit_log::Entity::insert_many(models)
        .exec(&db)
        .await
        .unwrap();

    let only = |filter: AuditFilter, want: &'static str| {
        let db = db.clone();
        async move {
            let page = store::page(&db, &filter, PageRequest::newest_first(10))
                .await
                .unwrap();
            let users: Vec<_> = page
                .rows
                .iter()
                .map(|r| r.user_id.clone().unwrap())
                .collect();
            assert_eq!(users, [want], "{filter:?}");
            assert_eq!(store::count(&db, &filter).await.unwrap(), 1, "{filter:?}");
        }
    };
    only(AuditFilter::new().user("alice"), "alice").await;
    only(AuditFilter::new().user("Alice"), "Alice").await;
    only(AuditFilter::new().tenant("alice-corp"), "alice").await;
    only(AuditFilter::new().route("/alice"), "alice").await;
    only(AuditFilter::new().request_id("req-alice"), "alice").await;
    only(AuditFilter::new().client_ip("2001:db8::a"), "alice").await;
    only(AuditFilter::new().method("post"), "alice").await;
    only(AuditFilter::new().method("POST"), "alice").await;
}

/// A request's latency and the time it arrived come from the layer's clock (the CPU's counter,
/// turned into wall-clock time by the writer): a handler that works 40 ms is recorded so,
/// within the time the client waited, and as arriving after the client started its request.
async fn latency_and_arrival_time_are_the_requests_own(t: Arc<TestDb>) {
    const WORK: Duration = Duration::from_millis(40);
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let router = Router::new()
        .route(
            "/work",
            get(|| async {
                // Work, not a timer: the clock under test is the layer's, not Tokio's.
                let started = std::time::Instant::now();
                while started.elapsed() < WORK {
                    std::hint::spin_loop();
                }
                "done"
            }),
        )
        .layer(layer);
    let server = Server::start(router).await;
    let before = chrono::Utc::now();
    let waited = std::time::Instant::now();
    let (status, _) = send(
        &client(),
        http::Request::get(server.url("/work"))
            .body(empty())
            .unwrap(),
    )
    .await;
    let waited = waited.elapsed();
    let after = chrono::Utc::now();
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    let row = &rows[0];
    let latency = Duration::from_micros(u64::try_from(row.latency_us).unwrap());
    assert!(
        latency >= WORK && latency <= waited,
        "{latency:?} of {waited:?}"
    );
    // Stored to the microsecond, truncated.
    let before = before - chrono::Duration::microseconds(1);
    assert!(
        row.occurred_at >= before && row.occurred_at <= after,
        "{} not in {before}..{after}",
        row.occurred_at
    );
    let arrived_by = row.occurred_at + chrono::Duration::from_std(latency).unwrap();
    assert!(arrived_by <= after, "{arrived_by} after {after}");
}

/// A long head (path, query, user agent, recorded header: each past the 1 KiB a record keeps
/// uncounted) is stored whole while it fits the queue's budget (`queue_body_bytes`); past it,
/// the row keeps the first bytes of each part and says it was cut, and the recorded headers
/// are left out with a note.
async fn long_heads_are_stored_whole_within_the_budget_and_cut_past_it(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let path = format!("/files/{}/{}", "d".repeat(150), "f".repeat(3_000));
    let query = format!("a=1&b={}", "q".repeat(20_000));
    let agent = "u".repeat(2_000);
    let trace = "t".repeat(3_000);
    let serve = |budget: usize| {
        let db = db.clone();
        let (path, query, agent, trace) = (&path, &query, &agent, &trace);
        async move {
            let (layer, guard) = AuditLayer::builder(db)
                .queue_body_bytes(budget)
                .record_headers([http::HeaderName::from_static("x-trace")])
                .build()
                .unwrap();
            let router = Router::new().fallback(|| async { "ok" }).layer(layer);
            let request = http::Request::get(format!("{path}?{query}"))
                .header("user-agent", agent)
                .header("x-trace", trace)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap();
            let heads_cut = guard.stats().heads_cut;
            shutdown(guard).await;
            heads_cut
        }
    };
    assert_eq!(serve(64 << 20).await, 0, "the default budget has room");
    assert_eq!(serve(1_000).await, 1, "no room for the head");
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2);
    let (whole, cut) = (&rows[0], &rows[1]);
    assert_eq!(whole.path, path);
    assert_eq!(whole.query.as_deref(), Some(&*query));
    assert_eq!(whole.user_agent.as_deref(), Some(&*agent));
    let headers = whole.request_headers.as_ref().expect("headers");
    assert_eq!(headers["x-trace"], serde_json::json!(trace));

    let note = |len: usize| format!(" …[truncated, {len} bytes total]");
    assert_eq!(cut.path, format!("/files/{}", note(path.len())));
    assert_eq!(
        cut.query.as_deref(),
        Some(&*format!("a=1&b={}", note(query.len())))
    );
    assert_eq!(
        cut.user_agent.as_deref(),
        Some(&*format!("{}{}", "u".repeat(128), note(agent.len())))
    );
    assert_eq!(
        cut.request_headers,
        Some(serde_json::json!("[headers not captured, 3000 bytes]"))
    );
    assert_eq!(cut.status, Some(200));
}

/// Found by a probe: PostgreSQL refused a NUL in a handler's `extra` (a client's text put
/// there, or a key) and MariaDB an `extra` nested 32 levels deep; the row was then stored in
/// its safe form, its body and recorded headers gone. A client could so erase its own
/// request from its row. The NUL is stored as U+FFFD and the nesting past 31 levels as a note,
/// on every backend, and the row keeps the rest.
async fn extra_with_a_nul_or_deep_nesting_keeps_the_body_and_headers(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .record_headers([http::HeaderName::from_static("x-note")])
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/notes",
            axum::routing::post(
                |axum::Extension(audit): axum::Extension<tower_audit::AuditContext>,
                 body: String| async move {
                    let deep = (1..40).fold(
                        serde_json::json!({"leaf": 1}),
                        |inner, _| serde_json::json!({ "a": inner }),
                    );
                    match body.as_str() {
                        "nul" => {
                            audit.insert_extra("note", "a\u{0}b");
                            audit.insert_extra("k\u{0}", 1);
                        }
                        _ => audit.insert_extra("tree", deep),
                    }
                    "ok"
                },
            ),
        )
        .layer(layer);
    for body in ["nul", "deep"] {
        let request = http::Request::post("/notes")
            .header("x-note", "kept header")
            .header("content-type", "text/plain")
            .body(axum::body::Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    shutdown(guard).await;
    let rows = rows(&db).await;
    assert_eq!(rows.len(), 2);
    for (row, body) in rows.iter().zip(["nul", "deep"]) {
        assert_eq!(row.request_body.as_deref(), Some(body));
        assert_eq!(
            row.request_headers,
            Some(serde_json::json!({"x-note": "kept header"}))
        );
        let extra = row.extra.as_ref().unwrap();
        assert!(extra.get("rejected").is_none(), "{extra}");
    }
    let extra = rows[0].extra.as_ref().unwrap();
    assert_eq!(extra["note"], "a\u{fffd}b");
    assert_eq!(extra["k\u{fffd}"], 1);
    // `extra` is the first level, its `tree` the second: the 31st holds the note.
    let mut tree = &rows[1].extra.as_ref().unwrap()["tree"];
    for _ in 2..31 {
        tree = &tree["a"];
    }
    assert!(tree.is_object(), "{tree}");
    assert_eq!(tree["a"], "[nested deeper than 31 levels]");
}
