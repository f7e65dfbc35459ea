//! Who and from where, as a deployment behind real proxies and real auth sees it: forwarded
//! chains from trusted and untrusted peers, users set by middleware that rejects or by a handler
//! whose response is still streaming, bearer tokens that must not verify (feature `jwt`), and
//! request ids a client should not have sent. Each scenario drives a real axum server over a
//! socket and reads the rows back, against every configured backend (like `backends.rs`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tower_audit::client_ip::TrustedProxies;
use tower_audit::entity::audit_log;
use tower_audit::{AuditContext, AuditLayer, WriterGuard};

use support::{Scenario, Server, TestDb, client, empty, rows, scenarios};

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    forwarded_chains_resolve_to_the_first_untrusted_hop,
    forwarded_headers_from_an_untrusted_peer_are_ignored,
    ipv4_mapped_and_ipv6_peers_match_their_rules,
    anonymized_addresses_leave_none_whole_in_the_recorded_headers,
    an_auth_middleware_that_rejects_still_records_its_user,
    an_empty_user_from_the_handler_leaves_the_one_identified,
    context_set_while_the_response_streams_is_recorded,
    unusual_request_ids_are_stored_as_echoed,
    long_header_values_are_cut_and_copied_credentials_redacted,
    an_id_the_service_answers_with_is_kept_and_noted,
];

#[cfg(feature = "jwt")]
const JWT_SCENARIOS: &[(&str, Scenario)] =
    scenarios![rejected_tokens_name_no_one_and_leave_no_trace];
#[cfg(not(feature = "jwt"))]
const JWT_SCENARIOS: &[(&str, Scenario)] = &[];

fn main() {
    let all = [SCENARIOS, JWT_SCENARIOS].concat();
    support::run_matrix("identity", all.leak());
}

const DEADLINE: Duration = Duration::from_secs(30);

async fn shutdown(guard: WriterGuard) {
    let report = guard.shutdown(DEADLINE).await.expect("shutdown");
    assert_eq!((report.lost, report.dropped), (0, 0), "{report:?}");
}

/// The rows by path: every request of a scenario has its own.
fn row_at<'a>(rows: &'a [audit_log::Model], path: &str) -> &'a audit_log::Model {
    let found: Vec<_> = rows.iter().filter(|row| row.path == path).collect();
    assert_eq!(found.len(), 1, "one row at {path}: {rows:#?}");
    found[0]
}

/// Sends a GET with `headers` (appended, so a name may repeat) and reads the whole response.
async fn get_with(
    server: &Server,
    path: &str,
    headers: &[(&str, HeaderValue)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut request = http::Request::get(server.url(path));
    for (name, value) in headers {
        request = request.header(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
    }
    let response = client()
        .request(request.body(empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, body)
}

/// Request headers, as `(name, value)`; a name may repeat.
type Lines = &'static [(&'static str, &'static str)];

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap()
}

// --- 1. Trusted proxies ---------------------------------------------------------------------

/// A chain through the loopback proxy and `10.0.0.0/8`: `client_ip` is the right-most hop that
/// is not trusted, `peer_ip` the socket's (README, "Who and from where").
async fn forwarded_chains_resolve_to_the_first_untrusted_hop(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .trusted_proxies(TrustedProxies::cidrs(["127.0.0.0/8", "10.0.0.0/8"]).unwrap())
        .build()
        .unwrap();
    let server = Server::start(Router::new().fallback(|| async { "ok" }).layer(layer)).await;
    const XFF: &str = "x-forwarded-for";
    const FWD: &str = "forwarded";
    // `Lines` are static: one long line, leaked for the run.
    let long_host: Lines = vec![(
        FWD,
        &*format!(
            r#"for=203.0.113.16;host="{}";proto=https"#,
            "h".repeat(1100)
        )
        .leak(),
    )]
    .leak();
    let cases: &[(&str, Lines, &str)] = &[
        // A forged left-most entry, a port, a trusted hop skipped.
        (
            "/several-hops",
            &[(XFF, "198.51.100.1, 203.0.113.7:51234, 10.0.0.2")],
            "203.0.113.7",
        ),
        (
            "/bracketed-v6-port",
            &[(XFF, "[2001:db8::1]:443, 10.1.2.3")],
            "2001:db8::1",
        ),
        ("/bare-v6", &[(XFF, "2001:db8::2")], "2001:db8::2"),
        (
            "/spaces",
            &[(XFF, "   203.0.113.8 ,   10.0.0.3  ")],
            "203.0.113.8",
        ),
        // Several lines are one list, read from the last line's right.
        (
            "/several-lines",
            &[(XFF, "203.0.113.50"), (XFF, "198.51.100.2, 10.0.0.4")],
            "198.51.100.2",
        ),
        // A trusted hop written as IPv4-mapped IPv6 matches `10.0.0.0/8`.
        (
            "/mapped-hop",
            &[(XFF, "203.0.113.11, ::ffff:10.0.0.6")],
            "203.0.113.11",
        ),
        // A mapped untrusted hop is stored as the IPv4 address it is.
        (
            "/mapped-client",
            &[(XFF, "::ffff:203.0.113.12")],
            "203.0.113.12",
        ),
        // Garbage stops the walk at the nearest trusted hop.
        (
            "/garbage",
            &[(XFF, "203.0.113.9, not-an-ip, 10.0.0.5")],
            "10.0.0.5",
        ),
        (
            "/garbage-first",
            &[(XFF, "203.0.113.9, 999.1.1.1")],
            "127.0.0.1",
        ),
        ("/unknown", &[(XFF, "203.0.113.9, unknown")], "127.0.0.1"),
        ("/empty-entries", &[(XFF, " , ,")], "127.0.0.1"),
        ("/no-header", &[], "127.0.0.1"),
        // RFC 7239, read when no X-Forwarded-For came.
        (
            "/forwarded-v6",
            &[(FWD, r#"for="[2001:db8::1]:4711""#)],
            "2001:db8::1",
        ),
        (
            "/forwarded-params",
            &[(
                FWD,
                "for=203.0.113.13;proto=https;by=10.0.0.1, For=10.0.0.8",
            )],
            "203.0.113.13",
        ),
        (
            "/forwarded-unknown",
            &[(FWD, "for=198.51.100.3, for=unknown")],
            "127.0.0.1",
        ),
        (
            "/forwarded-hidden",
            &[(FWD, "for=_hidden, for=10.0.0.7")],
            "10.0.0.7",
        ),
        (
            "/forwarded-hidden-port",
            &[(FWD, r#"for="203.0.113.14:_port7""#)],
            "203.0.113.14",
        ),
        // A long or comma-holding `host` the client chose, quoted by the proxy beside its
        // `for`, neither hides the client nor splits the element.
        ("/forwarded-long-host", long_host, "203.0.113.16"),
        (
            "/forwarded-quoted-comma",
            &[(
                FWD,
                r#"for=198.51.100.67, for=203.0.113.17;host="a,for=198.51.100.68", for=10.0.0.9"#,
            )],
            "203.0.113.17",
        ),
        // A proxy that appends to X-Forwarded-For: a client's own Forwarded is not read.
        (
            "/both-headers",
            &[(FWD, "for=198.51.100.66"), (XFF, "203.0.113.15")],
            "203.0.113.15",
        ),
    ];
    for (path, headers, _) in cases {
        let headers: Vec<_> = headers.iter().map(|(n, v)| (*n, value(v))).collect();
        let (status, _, _) = get_with(&server, path, &headers).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    for (path, _, client) in cases {
        let row = row_at(&rows, path);
        assert_eq!(
            (row.client_ip.as_deref(), row.peer_ip.as_deref()),
            (Some(*client), Some("127.0.0.1")),
            "{path}"
        );
    }
}

/// A peer that is not a trusted proxy cannot name a client, whatever it sends.
async fn forwarded_headers_from_an_untrusted_peer_are_ignored(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .trusted_proxies(TrustedProxies::cidrs(["10.0.0.0/8"]).unwrap())
        .build()
        .unwrap();
    let server = Server::start(Router::new().fallback(|| async { "ok" }).layer(layer)).await;
    let forged: &[(&str, Lines)] = &[
        ("/xff", &[("x-forwarded-for", "203.0.113.1")]),
        ("/xff-trusted", &[("x-forwarded-for", "10.0.0.1")]),
        ("/forwarded", &[("forwarded", "for=203.0.113.2")]),
        (
            "/both",
            &[
                ("x-forwarded-for", "203.0.113.3"),
                ("forwarded", "for=203.0.113.4"),
            ],
        ),
    ];
    for (path, headers) in forged {
        let headers: Vec<_> = headers.iter().map(|(n, v)| (*n, value(v))).collect();
        get_with(&server, path, &headers).await;
    }
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    for (path, _) in forged {
        let row = row_at(&rows, path);
        assert_eq!(
            (row.client_ip.as_deref(), row.peer_ip.as_deref()),
            (Some("127.0.0.1"), Some("127.0.0.1")),
            "{path}"
        );
    }
}

/// Found by a probe: with `anonymize_ip`, `client_ip` and `peer_ip` were cut to /24 and /48,
/// and the recorded `X-Forwarded-For`, `X-Real-IP` and `Forwarded` kept the whole addresses,
/// the client's among them. They are cut as the columns are; other headers stay as sent.
async fn anonymized_addresses_leave_none_whole_in_the_recorded_headers(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let names = [
        "x-forwarded-for",
        "x-real-ip",
        "forwarded",
        "cf-connecting-ip",
        "x-app-version",
    ]
    .map(HeaderName::from_static);
    let (layer, guard) = AuditLayer::builder(db.clone())
        .trusted_proxies(TrustedProxies::cidrs(["127.0.0.0/8", "10.0.0.0/8"]).unwrap())
        .anonymize_ip(true)
        .record_headers(names)
        .build()
        .unwrap();
    let server = Server::start(Router::new().fallback(|| async { "ok" }).layer(layer)).await;
    let headers = [
        ("x-forwarded-for", value("198.51.100.1, 203.0.113.77")),
        ("x-real-ip", value("203.0.113.77")),
        (
            "forwarded",
            value("for=\"[2001:db8:abcd:1234::5]:80\";proto=https"),
        ),
        ("cf-connecting-ip", value("203.0.113.78")),
        ("x-app-version", value("1.2.3.4")),
    ];
    get_with(&server, "/a", &headers).await;
    server.stop().await;
    shutdown(guard).await;
    let rows = rows(&db).await;
    let row = row_at(&rows, "/a");
    assert_eq!(row.client_ip.as_deref(), Some("203.0.113.0"));
    assert_eq!(
        row.request_headers,
        Some(serde_json::json!({
            "x-forwarded-for": "198.51.100.0, 203.0.113.0",
            "x-real-ip": "203.0.113.0",
            "forwarded": "for=\"[2001:db8:abcd::]:80\";proto=https",
            "cf-connecting-ip": "203.0.113.0",
            "x-app-version": "1.2.3.4",
        }))
    );
}

/// The socket peer as a dual-stack listener reports an IPv4 client (`::ffff:10.0.0.1`) matches
/// a `10.0.0.0/8` rule and is stored as IPv4; an IPv6 peer matches an IPv6 rule. The peer comes
/// from axum's `ConnectInfo`, replaced outside the layer (a loopback socket cannot be 10.0.0.1).
async fn ipv4_mapped_and_ipv6_peers_match_their_rules(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .trusted_proxies(TrustedProxies::cidrs(["10.0.0.0/8", "2001:db8:aa::/48"]).unwrap())
        .build()
        .unwrap();
    let app = Router::new()
        .fallback(|| async { "ok" })
        .layer(layer)
        .layer(middleware::from_fn(
            |mut request: Request, next: Next| async move {
                let peer: Option<SocketAddr> = request
                    .headers()
                    .get("x-test-peer")
                    .map(|v| v.to_str().unwrap().parse().unwrap());
                if let Some(peer) = peer {
                    request.extensions_mut().insert(ConnectInfo(peer));
                }
                next.run(request).await
            },
        ));
    let server = Server::start(app).await;
    let cases = [
        (
            "/mapped-trusted",
            "[::ffff:10.0.0.1]:5000",
            "203.0.113.20",
            "10.0.0.1",
        ),
        (
            "/mapped-untrusted",
            "[::ffff:192.0.2.1]:5000",
            "192.0.2.1",
            "192.0.2.1",
        ),
        (
            "/v6-trusted",
            "[2001:db8:aa::5]:443",
            "203.0.113.21",
            "2001:db8:aa::5",
        ),
        (
            "/v6-untrusted",
            "[2001:db8:bb::5]:443",
            "2001:db8:bb::5",
            "2001:db8:bb::5",
        ),
    ];
    for (path, peer, _, _) in cases {
        let forwarded = format!(
            "198.51.100.9, {}",
            &cases.iter().find(|c| c.0 == path).unwrap().2
        );
        get_with(
            &server,
            path,
            &[
                ("x-test-peer", value(peer)),
                ("x-forwarded-for", value(&forwarded)),
            ],
        )
        .await;
    }
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    for (path, _, client, peer) in cases {
        let row = row_at(&rows, path);
        assert_eq!(
            (row.client_ip.as_deref(), row.peer_ip.as_deref()),
            (Some(client), Some(peer)),
            "{path}"
        );
    }
}

// --- 2. Identity ----------------------------------------------------------------------------

/// README, "Where the layer goes": outside authentication, so that a rejected request is still
/// recorded with what the middleware set before rejecting.
async fn an_auth_middleware_that_rejects_still_records_its_user(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let auth = |request: Request, next: Next| async move {
        let audit = request.extensions().get::<AuditContext>().unwrap().clone();
        let user = request
            .headers()
            .get("x-user")
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(user) = &user {
            audit.set_user(user.clone());
            audit.set_tenant("acme");
        }
        if user.as_deref() != Some("alice") {
            audit.set_action("login.denied");
            audit.insert_extra("reason", "not alice");
            return StatusCode::UNAUTHORIZED.into_response();
        }
        next.run(request).await
    };
    let app = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route_layer(middleware::from_fn(auth))
        .layer(layer);
    let server = Server::start(app).await;
    let (denied, _, _) = get_with(
        &server,
        "/orders?as=mallory",
        &[("x-user", value("mallory"))],
    )
    .await;
    let (anonymous, _, _) = get_with(&server, "/orders?as=nobody", &[]).await;
    let (allowed, _, _) =
        get_with(&server, "/orders?as=alice", &[("x-user", value("alice"))]).await;
    assert_eq!(
        (denied, anonymous, allowed),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::OK
        )
    );
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    let by_query = |query: &str| {
        rows.iter()
            .find(|r| r.query.as_deref() == Some(query))
            .unwrap()
    };
    let denied = by_query("as=mallory");
    assert_eq!(
        (
            denied.status,
            denied.user_id.as_deref(),
            denied.tenant_id.as_deref()
        ),
        (Some(401), Some("mallory"), Some("acme"))
    );
    assert_eq!(denied.action.as_deref(), Some("login.denied"));
    assert_eq!(denied.extra.as_ref().unwrap()["reason"], "not alice");
    let anonymous = by_query("as=nobody");
    assert_eq!(
        (anonymous.status, anonymous.user_id.as_deref()),
        (Some(401), None)
    );
    let allowed = by_query("as=alice");
    assert_eq!(
        (allowed.status, allowed.user_id.as_deref()),
        (Some(200), Some("alice"))
    );
}

/// An empty user or tenant from a handler (`set_user(claims.sub.unwrap_or_default())`) names
/// no one: it leaves the user and tenant `identify` found (a gateway's headers), as it leaves a
/// verified token's. It erased them.
async fn an_empty_user_from_the_handler_leaves_the_one_identified(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let header = |parts: &http::request::Parts, name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (layer, guard) = AuditLayer::builder(db.clone())
        .identify(move |parts: &http::request::Parts| tower_audit::Identity {
            user_id: header(parts, "x-user"),
            tenant_id: header(parts, "x-tenant"),
        })
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/user",
            get(
                |axum::Extension(audit): axum::Extension<AuditContext>| async move {
                    audit.set_user("");
                    "ok"
                },
            ),
        )
        .route(
            "/both",
            get(
                |axum::Extension(audit): axum::Extension<AuditContext>| async move {
                    audit.set_user(String::new());
                    audit.set_tenant("");
                    "ok"
                },
            ),
        )
        .route(
            "/other",
            get(
                |axum::Extension(audit): axum::Extension<AuditContext>| async move {
                    audit.set_user("bob");
                    audit.set_user("");
                    "ok"
                },
            ),
        )
        .layer(layer);
    let server = Server::start(app).await;
    let gateway = [
        ("x-user", value("gw-alice")),
        ("x-tenant", value("gw-acme")),
    ];
    for path in ["/user", "/both", "/other"] {
        let (status, _, _) = get_with(&server, path, &gateway).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, _) = get_with(&server, "/user?anonymous", &[]).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    let identity = |path: &str, query: Option<&str>| {
        let row = rows
            .iter()
            .find(|r| r.path == path && r.query.as_deref() == query)
            .unwrap();
        (row.user_id.as_deref(), row.tenant_id.as_deref())
    };
    assert_eq!(identity("/user", None), (Some("gw-alice"), Some("gw-acme")));
    assert_eq!(identity("/both", None), (Some("gw-alice"), Some("gw-acme")));
    assert_eq!(identity("/other", None), (Some("bob"), Some("gw-acme")));
    assert_eq!(identity("/user", Some("anonymous")), (None, None));
}

/// The row is finished when the response body ends: a user set while it still streams lands in
/// it (also through the response's extensions with `context_on_response`); one set after the
/// end does not.
async fn context_set_while_the_response_streams_is_recorded(t: Arc<TestDb>) {
    let db = t.migrated().await;
    for context_on_response in [false, true] {
        let (layer, guard) = AuditLayer::builder(db.clone())
            .context_on_response(context_on_response)
            .build()
            .unwrap();
        type Handed = (AuditContext, mpsc::Sender<Result<Bytes, std::io::Error>>);
        let (hand_tx, hand_rx) = mpsc::channel::<Handed>(1);
        let app = Router::new()
            .route(
                "/stream",
                get(move |request: Request| {
                    let hand = hand_tx.clone();
                    async move {
                        let audit = request.extensions().get::<AuditContext>().unwrap().clone();
                        let (tx, rx) = mpsc::channel(4);
                        tx.send(Ok(Bytes::from_static(b"first "))).await.unwrap();
                        hand.send((audit, tx)).await.unwrap();
                        AxumBody::from_stream(ReceiverStream::new(rx))
                    }
                }),
            )
            .layer(layer)
            // An outer layer that names the tenant from the response's context, when it is there.
            .layer(middleware::map_response(|response: Response| async move {
                if let Some(audit) = response.extensions().get::<AuditContext>() {
                    audit.set_tenant("from-outer-layer");
                }
                response
            }));
        let server = Server::start(app).await;
        let mut hand_rx = hand_rx;
        let response = client()
            .request(
                http::Request::get(server.url("/stream"))
                    .body(empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first ");
        // The response has started streaming: the handler's task names the user now.
        let (audit, tx) = hand_rx.recv().await.unwrap();
        audit.set_user("streamer");
        audit.insert_extra("chunks", 2);
        tx.send(Ok(Bytes::from_static(b"last"))).await.unwrap();
        drop(tx);
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(&rest[..], b"last");
        // The client has the end: the record was finished before it was sent.
        audit.set_user("too-late");
        audit.set_action("too-late");
        server.stop().await;
        shutdown(guard).await;

        let rows = rows(&db).await;
        let row = rows.last().unwrap();
        assert_eq!(
            row.user_id.as_deref(),
            Some("streamer"),
            "{context_on_response}"
        );
        assert_eq!(row.action, None, "{context_on_response}");
        assert_eq!(row.extra.as_ref().unwrap()["chunks"], 2);
        assert_eq!(row.response_bytes, 10);
        let tenant = context_on_response.then_some("from-outer-layer");
        assert_eq!(row.tenant_id.as_deref(), tenant);
    }
}

#[cfg(feature = "jwt")]
mod jwt {
    use super::*;

    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;
    use std::time::{SystemTime, UNIX_EPOCH};
    use tower_audit::JwtIdentity;

    const SECRET: &[u8] = b"the service's long random secret";

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn token(key: &[u8], claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key),
        )
        .unwrap()
    }

    fn b64(json: &serde_json::Value) -> String {
        // base64url without padding, by hand: no new dependency for one test.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = json.to_string().into_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    /// Every token that must not verify is recorded without a user, with the reason under
    /// `identity_error`; the writer goes on; no part of any token (its claims or signature)
    /// is stored in the row, whichever column the client put it near.
    pub(super) async fn rejected_tokens_name_no_one_and_leave_no_trace(t: Arc<TestDb>) {
        let db = t.migrated().await;
        let (layer, guard) = AuditLayer::builder(db.clone())
            .jwt(JwtIdentity::hs256(SECRET))
            .record_headers([
                http::header::AUTHORIZATION,
                HeaderName::from_static("x-token"),
            ])
            .build()
            .unwrap();
        let app = Router::new()
            .fallback(|request: Request| async move {
                // An application that copies what it was given into its own fields.
                let audit = request.extensions().get::<AuditContext>().unwrap().clone();
                if let Some(auth) = request.headers().get("authorization") {
                    audit.insert_extra("auth_header", auth.to_str().unwrap_or_default());
                }
                (StatusCode::UNAUTHORIZED, "no")
            })
            .layer(layer);
        let server = Server::start(app).await;
        let later = now() + 3600;
        let valid = token(SECRET, json!({ "sub": "alice", "exp": later }));
        let padding = "x".repeat(10 * 1024);
        let huge_valid = token(
            SECRET,
            json!({ "sub": "bob", "exp": later, "pad": padding }),
        );
        let huge_forged = token(
            b"an attacker's key",
            json!({ "sub": "eve", "exp": later, "pad": padding }),
        );
        let expired = token(SECRET, json!({ "sub": "carol", "exp": now() - 3600 }));
        let no_sub = token(SECRET, json!({ "email": "dana@example.com", "exp": later }));
        let sub_empty = token(SECRET, json!({ "sub": "", "exp": later }));
        let sub_object = token(SECRET, json!({ "sub": { "id": 7 }, "exp": later }));
        let wrong_key = token(
            b"an attacker's key",
            json!({ "sub": "mallory", "exp": later }),
        );
        let none = format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "typ": "JWT" })),
            b64(&json!({ "sub": "root", "exp": later }))
        );
        // A header whose `alg` quotes a real token's signature and claims, and 8 KiB more:
        // jsonwebtoken's message quotes an unknown `alg` whole.
        let (valid_claims, valid_signature) =
            valid.split_once('.').unwrap().1.split_once('.').unwrap();
        let bogus_alg = format!(
            "{}.{valid_claims}.{valid_signature}{}",
            "Q".repeat(8),
            "q".repeat(8 << 10)
        );
        let bogus = format!(
            "{}.{valid_claims}.{valid_signature}",
            b64(&json!({ "alg": bogus_alg, "typ": "JWT" }))
        );
        let garbage_tail = "z".repeat(300);
        let garbage = format!("{}.~~~.{garbage_tail}", b64(&json!({ "alg": "HS256" })));
        // (path, Authorization, (user expected, reason expected))
        type Expected = (Option<&'static str>, Option<&'static str>);
        let cases: Vec<(&str, Option<String>, Expected)> = vec![
            (
                "/valid",
                Some(format!("Bearer {valid}")),
                (Some("alice"), None),
            ),
            (
                "/odd-casing",
                Some(format!("bEaReR    {valid}")),
                (Some("alice"), None),
            ),
            (
                "/huge-valid",
                Some(format!("Bearer {huge_valid}")),
                (Some("bob"), None),
            ),
            (
                "/expired",
                Some(format!("Bearer {expired}")),
                (None, Some("ExpiredSignature")),
            ),
            (
                "/alg-none",
                Some(format!("Bearer {none}")),
                (None, Some("token rejected")),
            ),
            (
                "/wrong-key",
                Some(format!("Bearer {wrong_key}")),
                (None, Some("InvalidSignature")),
            ),
            (
                "/odd-casing-wrong-key",
                Some(format!("BEARER   {wrong_key}  ")),
                (None, Some("InvalidSignature")),
            ),
            (
                "/huge-forged",
                Some(format!("Bearer {huge_forged}")),
                (None, Some("InvalidSignature")),
            ),
            (
                "/garbage",
                Some(format!("Bearer {garbage}")),
                (None, Some("token rejected")),
            ),
            (
                "/bogus-alg",
                Some(format!("Bearer {bogus}")),
                (
                    None,
                    Some("token rejected: JSON error: Data error at line 1 column "),
                ),
            ),
            (
                "/basic",
                Some("Basic YWxpY2U6c2VjcmV0".into()),
                (None, Some("not a bearer token")),
            ),
            // Verified, but naming no user: a row without a user says why.
            (
                "/no-sub",
                Some(format!("Bearer {no_sub}")),
                (None, Some("names no user")),
            ),
            (
                "/sub-empty",
                Some(format!("Bearer {sub_empty}")),
                (None, Some("names no user")),
            ),
            // jsonwebtoken itself refuses a `sub` that is not a string.
            (
                "/sub-object",
                Some(format!("Bearer {sub_object}")),
                (None, Some("token rejected")),
            ),
            // The token in the query and another header: no user (only `Authorization` is
            // read), no reason (no `Authorization`), and nothing of it stored.
            ("/query", None, (None, None)),
        ];
        for (path, authorization, _) in &cases {
            let mut headers = vec![];
            if let Some(authorization) = authorization {
                headers.push(("authorization", value(authorization)));
            }
            let path = if *path == "/query" {
                headers.push(("x-token", value(&wrong_key)));
                format!("/query?access_token={wrong_key}&id_token={valid}&page=2")
            } else {
                (*path).to_owned()
            };
            let (status, _, _) = get_with(&server, &path, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        }
        server.stop().await;
        shutdown(guard).await;

        let rows = rows(&db).await;
        assert_eq!(rows.len(), cases.len());
        let secrets: Vec<&str> = [
            &valid,
            &huge_valid,
            &huge_forged,
            &expired,
            &wrong_key,
            &none,
        ]
        .iter()
        .flat_map(|token| token.split('.').skip(1))
        .filter(|part| !part.is_empty())
        .chain([padding.as_str(), garbage_tail.as_str(), "qqqqqqqq"])
        .collect();
        for (path, _, (user, reason)) in &cases {
            let row = row_at(&rows, path);
            assert_eq!(row.user_id.as_deref(), *user, "{path}");
            let error = row
                .extra
                .as_ref()
                .and_then(|extra| extra.get("identity_error"))
                .and_then(|error| error.as_str());
            match reason {
                Some(reason) => assert!(
                    error.is_some_and(|error| error.contains(reason) && error.len() <= 255),
                    "{path}: {error:?}"
                ),
                None => assert_eq!(error, None, "{path}"),
            }
            let stored = format!("{row:?}");
            for secret in &secrets {
                assert!(
                    !stored.contains(secret),
                    "{path}: a token part is stored: {row:#?}"
                );
            }
        }
        let query = row_at(&rows, "/query").query.clone().unwrap();
        assert!(query.ends_with("&page=2"), "{query}");
    }
}
#[cfg(feature = "jwt")]
use jwt::rejected_tokens_name_no_one_and_leave_no_trace;

// --- 3. Request ids -------------------------------------------------------------------------

/// With `echo_request_id`, the id the client gets back, the one the handler sees and the
/// row's are the same, whatever the client sent: a usable id is kept; one the row could not
/// hold as sent (8 KiB, bytes that are not UTF-8, empty) is replaced by a generated one.
/// Without echo, the row keeps what it can of the client's (cut to 128 bytes, invalid UTF-8
/// replaced), and generates an id for an empty one.
async fn unusual_request_ids_are_stored_as_echoed(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let huge = "r".repeat(8 * 1024);
    let at_limit = "a".repeat(128);
    let over_limit = "a".repeat(129);
    let accented = "é".repeat(65);
    // (path, id sent, kept as sent with echo, stored without echo: `None` for a generated id)
    let cases: Vec<(&str, HeaderValue, bool, Option<&str>)> = vec![
        (
            "/plain",
            value("client-chosen-1"),
            true,
            Some("client-chosen-1"),
        ),
        ("/tab", value("id\twith-tab"), true, Some("id\twith-tab")),
        ("/huge", value(&huge), false, Some(&huge[..128])),
        (
            "/not-utf8",
            HeaderValue::from_bytes(b"id-\xff\xfe-end").unwrap(),
            false,
            Some("id-\u{fffd}\u{fffd}-end"),
        ),
        ("/empty", HeaderValue::from_static(""), false, None),
        // UTF-8 is kept as sent; the column's 128 bytes are the limit, and a cut id keeps whole
        // characters.
        (
            "/utf8",
            HeaderValue::from_bytes("ид-запроса-1".as_bytes()).unwrap(),
            true,
            Some("ид-запроса-1"),
        ),
        ("/at-limit", value(&at_limit), true, Some(&at_limit)),
        ("/over-limit", value(&over_limit), false, Some(&at_limit)),
        (
            "/over-limit-utf8",
            HeaderValue::from_bytes(accented.as_bytes()).unwrap(),
            false,
            Some(&accented[..128]),
        ),
    ];
    for echo in [true, false] {
        let (layer, guard) = AuditLayer::builder(db.clone())
            .echo_request_id(echo)
            .build()
            .unwrap();
        let app = Router::new()
            .fallback(|request: Request| async move {
                let seen = request.headers().get("x-request-id").cloned();
                seen.map(|v| Bytes::copy_from_slice(v.as_bytes()))
                    .unwrap_or_default()
            })
            .layer(layer);
        let server = Server::start(app).await;
        let mut answers = vec![];
        for (path, id, _, _) in &cases {
            let path = format!("{path}-{echo}");
            let (status, headers, body) =
                get_with(&server, &path, &[("x-request-id", id.clone())]).await;
            assert_eq!(status, StatusCode::OK);
            answers.push((path, headers.get("x-request-id").cloned(), body));
        }
        server.stop().await;
        shutdown(guard).await;

        let rows = rows(&db).await;
        // Compared as prefixes, not printed whole: an 8 KiB id would bury the failure.
        let same = |a: &[u8], b: &[u8], what: &str, path: &str| {
            assert!(
                a == b,
                "{path}: {what}: {:?}… ({} bytes) against {:?}… ({} bytes)",
                String::from_utf8_lossy(&a[..a.len().min(40)]),
                a.len(),
                String::from_utf8_lossy(&b[..b.len().min(40)]),
                b.len()
            );
        };
        for ((path, echoed, seen), (_, sent, usable, kept)) in answers.iter().zip(&cases) {
            let row = row_at(&rows, path);
            let stored = row.request_id.as_deref().unwrap();
            assert!(stored.len() <= 128, "{path}: {}", stored.len());
            if echo {
                let echoed = echoed.as_ref().expect("echoed");
                same(echoed.as_bytes(), stored.as_bytes(), "echoed, stored", path);
                same(seen, stored.as_bytes(), "the handler's, stored", path);
                if *usable {
                    same(stored.as_bytes(), sent.as_bytes(), "stored, sent", path);
                } else {
                    let id = uuid::Uuid::parse_str(stored).unwrap();
                    assert_eq!(id.get_version_num(), 7, "{path}");
                }
            } else {
                assert_eq!(echoed, &None, "{path}");
                same(seen, sent.as_bytes(), "the handler's, sent", path);
                match kept {
                    Some(kept) => same(stored.as_bytes(), kept.as_bytes(), "stored, kept", path),
                    None => {
                        let id = uuid::Uuid::parse_str(stored).unwrap();
                        assert_eq!(id.get_version_num(), 7, "{path}");
                    }
                }
            }
        }
    }
}

/// With `echo_request_id`, a service that sets its own id on the response keeps it (as
/// tower-http's `PropagateRequestId` does), and the row, which has the request's id, notes the
/// one the client was given; a service that answers with the row's id, or none, leaves no note.
async fn an_id_the_service_answers_with_is_kept_and_noted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .echo_request_id(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/own",
            get(|| async { ([("x-request-id", "the-services-own")], "own") }),
        )
        .route(
            "/same",
            get(|request: Request| async move {
                let id = request.headers().get("x-request-id").cloned().unwrap();
                ([("x-request-id", id)], "same")
            }),
        )
        .route("/none", get(|| async { "none" }))
        .layer(layer);
    let server = Server::start(app).await;
    let mut echoed = vec![];
    for path in ["/own", "/same", "/none"] {
        let (status, headers, _) = get_with(&server, path, &[]).await;
        assert_eq!(status, StatusCode::OK);
        echoed.push(headers.get("x-request-id").cloned().expect("an id"));
    }
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    let own = row_at(&rows, "/own");
    assert_eq!(echoed[0], "the-services-own");
    assert_ne!(own.request_id.as_deref(), Some("the-services-own"));
    assert_eq!(
        own.extra,
        Some(serde_json::json!({ "response_request_id": "the-services-own" }))
    );
    for (path, echoed) in [("/same", &echoed[1]), ("/none", &echoed[2])] {
        let row = row_at(&rows, path);
        assert_eq!(row.request_id.as_deref(), echoed.to_str().ok(), "{path}");
        assert_eq!(row.extra, None, "{path}");
    }
}

// --- 4. What a client or a handler can put in a row -----------------------------------------

/// A recorded header's value is cut to 4 KiB with a note (README, "Configuration",
/// `record_headers`), and a credential a handler copies into `extra` is redacted to the end of
/// its whitespace-free run, not only as far as RFC 6750's token characters go.
async fn long_header_values_are_cut_and_copied_credentials_redacted(t: Arc<TestDb>) {
    let db = t.migrated().await;
    let (layer, guard) = AuditLayer::builder(db.clone())
        .record_headers([
            HeaderName::from_static("x-big"),
            HeaderName::from_static("x-tenant"),
            http::header::AUTHORIZATION,
        ])
        .build()
        .unwrap();
    let app = Router::new()
        .fallback(|request: Request| async move {
            // An application that copies what it was given into its own fields.
            let audit = request.extensions().get::<AuditContext>().unwrap().clone();
            if let Some(auth) = request.headers().get("authorization") {
                audit.insert_extra("auth_header", auth.to_str().unwrap_or_default());
            }
            "ok"
        })
        .layer(layer);
    let server = Server::start(app).await;
    let big = format!("{}{}", "v".repeat(4 << 10), "w".repeat(4 << 10));
    let credential = "eyJhbGciOiJIUzI1NiJ9.!!!.zzz-the-rest-of-the-credential";
    let headers = [
        ("x-big", value(&big)),
        ("x-big", value("second")),
        ("x-tenant", value("acme")),
        ("authorization", value(&format!("Bearer {credential}"))),
    ];
    let (status, _, _) = get_with(&server, "/cut", &headers).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
    shutdown(guard).await;

    let rows = rows(&db).await;
    let row = row_at(&rows, "/cut");
    let recorded = row.request_headers.clone().expect("headers recorded");
    assert_eq!(
        recorded["x-big"],
        serde_json::json!([
            format!("{} …[truncated, 8192 bytes total]", "v".repeat(4 << 10)),
            "second"
        ])
    );
    assert_eq!(recorded["x-tenant"], "acme");
    assert_eq!(recorded["authorization"], "[REDACTED]");
    let extra = row.extra.clone().expect("extra");
    assert_eq!(extra["auth_header"], "Bearer [REDACTED]");
    assert!(!format!("{row:?}").contains("zzz"), "{row:#?}");
}
