//! The `jwt` feature: a bearer token names the user only when its signature verifies.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::json;
use tower::ServiceExt;
use tower_audit::entity::audit_log;
use tower_audit::{AuditContext, AuditLayer, JwtIdentity};

const PRIVATE_PEM: &[u8] = include_bytes!("fixtures/jwt_rs256_private.pem");
const PUBLIC_PEM: &[u8] = include_bytes!("fixtures/jwt_rs256_public.pem");
/// 32 bytes: the least HS256 takes (RFC 7518 §3.2).
const SECRET: &[u8] = b"the right secret, 32 bytes long.";

fn token(algorithm: Algorithm, key: &EncodingKey, sub: &str, expires_in: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({ "sub": sub, "org": "acme", "exp": now + expires_in });
    encode(&Header::new(algorithm), &claims, key).unwrap()
}

/// Sends each `(authorization, handler_user)` request and returns the rows.
async fn run(
    jwt: JwtIdentity,
    requests: Vec<(Option<String>, Option<&'static str>)>,
) -> Vec<audit_log::Model> {
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (layer, guard) = AuditLayer::builder(db.clone()).jwt(jwt).build().unwrap();
    let router = Router::new()
        .route(
            "/me",
            get(
                |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >,
                 axum::Extension(audit): axum::Extension<AuditContext>| async move {
                    if let Some(user) = q.get("as") {
                        audit.set_user(user.clone());
                    }
                    "me"
                },
            ),
        )
        .layer(layer);
    for (authorization, handler_user) in requests {
        let uri = match handler_user {
            Some(user) => format!("/me?as={user}"),
            None => "/me".to_owned(),
        };
        let mut request = http::Request::get(uri);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "identity never fails a request");
        response.into_body().collect().await.unwrap();
    }
    guard.shutdown(Duration::from_secs(10)).await.unwrap();
    audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&db)
        .await
        .unwrap()
}

fn identity_error(row: &audit_log::Model) -> String {
    row.extra
        .as_ref()
        .and_then(|e| e.get("identity_error"))
        .and_then(|e| e.as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn hs256_token_names_the_user_and_a_forged_one_is_ignored() {
    let right = EncodingKey::from_secret(SECRET);
    let wrong = EncodingKey::from_secret(b"an attacker's secret, as long...");
    let rows = run(
        JwtIdentity::hs256(SECRET).tenant_claim("org"),
        vec![
            (
                Some(format!(
                    "Bearer {}",
                    token(Algorithm::HS256, &right, "erin", 3600)
                )),
                None,
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(Algorithm::HS256, &wrong, "mallory", 3600)
                )),
                None,
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(Algorithm::HS256, &right, "erin", -3600)
                )),
                None,
            ),
            (Some("Bearer not.a.jwt".to_owned()), None),
            (None, None),
            (
                Some(format!(
                    "Bearer {}",
                    token(Algorithm::HS256, &right, "erin", 3600)
                )),
                Some("set-by-handler"),
            ),
        ],
    )
    .await;
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[0].user_id.as_deref(), Some("erin"));
    assert_eq!(rows[0].tenant_id.as_deref(), Some("acme"));
    assert_eq!(rows[0].extra, None);
    for (row, reason) in [
        (&rows[1], "InvalidSignature"),
        (&rows[2], "ExpiredSignature"),
        (&rows[3], ""),
    ] {
        assert_eq!(row.user_id, None, "unverified token named a user");
        assert_eq!(row.tenant_id, None);
        let error = identity_error(row);
        assert!(
            error.starts_with("token rejected") && error.contains(reason),
            "{error}"
        );
    }
    assert_eq!(
        (rows[4].user_id.as_deref(), rows[4].extra.as_ref()),
        (None, None)
    );
    assert_eq!(rows[5].user_id.as_deref(), Some("set-by-handler"));
}

#[tokio::test]
async fn rs256_token_is_checked_against_the_public_key() {
    let private = EncodingKey::from_rsa_pem(PRIVATE_PEM).unwrap();
    // The classic confusion attack: an HS256 token "signed" with the public key as secret.
    let confused = EncodingKey::from_secret(PUBLIC_PEM);
    let rows = run(
        JwtIdentity::rs256_pem(PUBLIC_PEM).unwrap(),
        vec![
            (
                Some(format!(
                    "Bearer {}",
                    token(Algorithm::RS256, &private, "frank", 3600)
                )),
                None,
            ),
            (
                Some(format!(
                    "Bearer {}",
                    token(Algorithm::HS256, &confused, "mallory", 3600)
                )),
                None,
            ),
        ],
    )
    .await;
    assert_eq!(rows[0].user_id.as_deref(), Some("frank"));
    assert_eq!(rows[1].user_id, None);
    assert!(identity_error(&rows[1]).starts_with("token rejected"));
}

/// Found by a probe: `hs256(b"")` was accepted, so anyone could sign a token (with the empty
/// key) naming any user. A secret shorter than the hash is refused when the layer is built, as
/// a short integrity key is (RFC 7518 §3.2: 32 bytes for HS256, 48 for HS384, 64 for HS512).
#[tokio::test]
async fn a_short_hmac_secret_is_refused_at_build() {
    use jsonwebtoken::{DecodingKey, Validation};
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    let build = |jwt: JwtIdentity| AuditLayer::builder(db.clone()).jwt(jwt).build().map(drop);
    for secret in [&b""[..], b"k", &SECRET[..31]] {
        let error = build(JwtIdentity::hs256(secret)).unwrap_err();
        assert!(
            matches!(error, tower_audit::Error::Config(_)),
            "{}: {error}",
            secret.len()
        );
        assert_eq!(
            error.to_string(),
            format!(
                "invalid audit layer configuration: the JWT secret holds {} bytes; HS256 needs at least 32 \
                 (RFC 7518 §3.2), or anyone could guess it and sign tokens naming any user",
                secret.len()
            )
        );
    }
    build(JwtIdentity::hs256(SECRET)).unwrap();
    // Through `new`, with any HMAC key: the longest hash among the accepted algorithms counts.
    let hmac = |secret: &[u8], algorithms: &[Algorithm]| {
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms.to_vec();
        JwtIdentity::new(DecodingKey::from_secret(secret), validation)
    };
    let error = build(hmac(SECRET, &[Algorithm::HS256, Algorithm::HS512])).unwrap_err();
    assert!(
        error.to_string().contains("HS512 needs at least 64"),
        "{error}"
    );
    let error = build(hmac(&[7; 47], &[Algorithm::HS384])).unwrap_err();
    assert!(
        error.to_string().contains("HS384 needs at least 48"),
        "{error}"
    );
    build(hmac(&[7; 64], &[Algorithm::HS256, Algorithm::HS512])).unwrap();
    // An RSA key is not a secret to guess.
    build(JwtIdentity::rs256_pem(PUBLIC_PEM).unwrap()).unwrap();
}

/// Found by a probe: a token whose `exp` has a fraction (PyJWT's `time.time()`, JavaScript's
/// `Date.now() / 1000`; RFC 7519's NumericDate allows it) named no one: "malformed `exp` claim".
#[tokio::test]
async fn a_time_with_a_fraction_is_a_time() {
    let key = EncodingKey::from_secret(SECRET);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let token = |exp: f64| {
        let claims = json!({ "sub": "grace", "exp": exp, "iat": now });
        format!(
            "Bearer {}",
            encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
        )
    };
    let rows = run(
        JwtIdentity::hs256(SECRET),
        vec![
            (Some(token(now + 3600.5)), None),
            (Some(token(now - 3600.5)), None),
        ],
    )
    .await;
    assert_eq!(rows[0].user_id.as_deref(), Some("grace"));
    assert_eq!(rows[0].extra, None);
    assert_eq!(rows[1].user_id, None);
    assert!(identity_error(&rows[1]).contains("ExpiredSignature"));
}

/// Found by a probe: a numeric `sub` past 64 bits (`123456789012345678901234`) was stored as
/// `1.2345678901234567e+23`, as every number rounding to the same double was, and `1.0` as
/// `"1.0"`. A number names a user (or tenant) only as an integer held exactly.
#[tokio::test]
async fn a_number_names_a_user_only_as_an_exact_integer() {
    let key = EncodingKey::from_secret(SECRET);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    // A number as a token's JSON holds it (`json!` cannot write one past 64 bits).
    let number = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    let token = |sub: serde_json::Value, org: serde_json::Value| {
        let claims = json!({ "sub": sub, "org": org, "exp": exp });
        let token = encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        Some(format!("Bearer {token}"))
    };
    let cases = [
        // (sub, org, user, tenant)
        ("42", "7", Some("42"), Some("7")),
        ("-42", "0", Some("-42"), Some("0")),
        (
            "18446744073709551615",
            "\"acme\"",
            Some("18446744073709551615"),
            Some("acme"),
        ),
        (
            "-9223372036854775808",
            "\"acme\"",
            Some("-9223372036854775808"),
            Some("acme"),
        ),
        ("123456789012345678901234", "\"acme\"", None, None),
        ("123456789012345678901235", "\"acme\"", None, None),
        ("18446744073709551616", "\"acme\"", None, None),
        ("1.0", "\"acme\"", None, None),
        ("1.5", "\"acme\"", None, None),
        ("1e3", "\"acme\"", None, None),
        // A tenant number that is not exact names no tenant; the user stands.
        ("\"alice\"", "2.0", Some("alice"), None),
    ];
    let rows = run(
        JwtIdentity::hs256(SECRET).tenant_claim("org"),
        cases
            .iter()
            .map(|(sub, org, _, _)| (token(number(sub), number(org)), None))
            .collect(),
    )
    .await;
    assert_eq!(rows.len(), cases.len());
    for (row, (sub, org, user, tenant)) in rows.iter().zip(cases) {
        assert_eq!(
            (row.user_id.as_deref(), row.tenant_id.as_deref()),
            (user, tenant),
            "sub {sub}, org {org}"
        );
        let error = identity_error(row);
        if user.is_some() && tenant.is_some() {
            assert_eq!(row.extra, None, "sub {sub}");
        } else {
            let claim = if org == "2.0" { "org" } else { "sub" };
            assert_eq!(
                error,
                format!(
                    "token verified, but its `{claim}` claim is a number that is not a 64-bit \
                     integer, which names no one"
                ),
                "sub {sub}"
            );
        }
    }
}

/// An empty user set by the handler (`set_user("")`, a gateway's empty header read as one)
/// names no one: it does not keep the token's user from the row.
#[tokio::test]
async fn an_empty_user_from_the_handler_leaves_the_tokens() {
    let right = EncodingKey::from_secret(SECRET);
    let bearer = format!("Bearer {}", token(Algorithm::HS256, &right, "erin", 3600));
    let rows = run(
        JwtIdentity::hs256(SECRET).tenant_claim("org"),
        vec![(Some(bearer), Some("")), (None, Some(""))],
    )
    .await;
    assert_eq!(rows[0].user_id.as_deref(), Some("erin"));
    assert_eq!(rows[0].tenant_id.as_deref(), Some("acme"));
    assert_eq!(rows[1].user_id, None);
}

/// A user or tenant longer than its column (255 characters) is cut, and `extra` says how long
/// the whole one was: two users sharing their first 255 characters are not taken for one.
#[tokio::test]
async fn an_identity_cut_to_its_column_says_how_long_it_was() {
    let long = |name: &str| -> &'static str { format!("{}{name}", "u".repeat(255)).leak() };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "sub": "ann", "org": long("-evil"), "exp": now + 3600 });
    let tenant_token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let rows = run(
        JwtIdentity::hs256(SECRET).tenant_claim("org"),
        vec![
            (None, Some(long("-alice"))),
            (None, Some(long("-mallory"))),
            (None, Some("ann")),
            (Some(format!("Bearer {tenant_token}")), None),
        ],
    )
    .await;
    let note = |row: &audit_log::Model, key: &str| {
        row.extra
            .as_ref()
            .and_then(|extra| extra.get(key))
            .and_then(serde_json::Value::as_u64)
    };
    assert_eq!(rows[0].user_id.as_deref(), Some("u".repeat(255).as_str()));
    assert_eq!(rows[0].user_id, rows[1].user_id);
    assert_eq!(note(&rows[0], audit_log::USER_ID_TRUNCATED), Some(261));
    assert_eq!(note(&rows[1], audit_log::USER_ID_TRUNCATED), Some(263));
    assert_eq!(rows[2].user_id.as_deref(), Some("ann"));
    assert_eq!(rows[2].extra, None);
    assert_eq!(rows[3].user_id.as_deref(), Some("ann"));
    assert_eq!(note(&rows[3], audit_log::TENANT_ID_TRUNCATED), Some(260));
    assert_eq!(note(&rows[3], audit_log::USER_ID_TRUNCATED), None);
}

/// Found by a probe: a NUL in a claim, stored as U+FFFD (three bytes for one), read as a cut
/// identity, and the row said the user had been truncated.
#[tokio::test]
async fn a_nul_in_a_claim_is_no_cut() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "sub": "al\u{0}ice", "org": "a\u{0}b", "exp": now + 3600 });
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let rows = run(
        JwtIdentity::hs256(SECRET).tenant_claim("org"),
        vec![(Some(format!("Bearer {token}")), None)],
    )
    .await;
    assert_eq!(rows[0].user_id.as_deref(), Some("al\u{fffd}ice"));
    assert_eq!(rows[0].tenant_id.as_deref(), Some("a\u{fffd}b"));
    assert_eq!(rows[0].extra, None);
}

/// Found by a probe: a valid token cut for the queue's budget was rejected as any cut text
/// is (`token rejected: InvalidToken`), so the row said the client sent a forgery. It says
/// the token was not verified, and why.
#[tokio::test]
async fn a_token_cut_for_the_queues_budget_is_not_called_invalid() {
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (layer, guard) = AuditLayer::builder(db.clone())
        .queue_body_bytes(0)
        .jwt(JwtIdentity::hs256(SECRET))
        .build()
        .unwrap();
    let router = Router::new()
        .route("/me", get(|| async { "me" }))
        .layer(layer);
    let key = EncodingKey::from_secret(SECRET);
    // An Entra ID token's size.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "sub": "alice", "groups": "g".repeat(2_600), "exp": now + 3600 });
    let long = encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    for token in [long, token(Algorithm::HS256, &key, "bob", 3600)] {
        let request = http::Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    guard.shutdown(Duration::from_secs(10)).await.unwrap();
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows[0].user_id, None);
    assert_eq!(
        identity_error(&rows[0]),
        "token not verified: the Authorization header was cut for the queue's budget"
    );
    assert_eq!(rows[1].user_id.as_deref(), Some("bob"));
}

/// Found by a probe: each new token's signature is checked in the writer, an RS256 one in
/// some 150 µs where the rest of a row takes 10, and a bogus one costs its sender no key: a
/// flood of them slowed the writer until the queue dropped records. While the queue holds
/// more than half its capacity, a token the writer has not seen lately is not verified, and
/// the row says so; no record is lost.
#[tokio::test]
async fn tokens_are_not_verified_while_the_writer_is_behind() {
    let db = tower_audit::connect("sqlite::memory:").await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (layer, guard, writer) = AuditLayer::builder(db.clone())
        .capacity(8)
        .batch_size(2)
        .jwt(JwtIdentity::rs256_pem(PUBLIC_PEM).unwrap())
        .build_pair()
        .unwrap();
    let router = Router::new()
        .route("/me", get(|| async { "me" }))
        .layer(layer);
    let key = EncodingKey::from_rsa_pem(PRIVATE_PEM).unwrap();
    // The queue fills before the writer runs: it starts behind, and catches up.
    for n in 0..8 {
        let token = token(Algorithm::RS256, &key, &format!("u{n}"), 3600);
        let request = http::Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    tokio::spawn(writer);
    let report = guard.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!((report.written, report.dropped), (8, 0));
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 8);
    let behind = "token not verified: the writer was behind, and had not seen this token lately";
    assert_eq!(identity_error(&rows[0]), behind);
    assert_eq!(rows[0].user_id, None);
    assert_eq!(identity_error(&rows[7]), "");
    assert_eq!(rows[7].user_id.as_deref(), Some("u7"));
    for row in &rows {
        let error = identity_error(row);
        assert!(
            row.user_id.is_some() || error == behind,
            "{:?}: {error}",
            row.user_id
        );
    }
}
