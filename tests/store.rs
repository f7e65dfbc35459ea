//! The store suite — filters, pagination, stats, query plans, export, retention and replay — run
//! against every configured backend: SQLite always, PostgreSQL and MySQL/MariaDB when
//! `TOWER_AUDIT_TEST_POSTGRES_URL` / `TOWER_AUDIT_TEST_MYSQL_URL` are set. A backend without its
//! variable shows its tests as ignored, and says so on stderr.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

mod support;

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, DurationRound, Utc};
use http_body_util::{BodyExt, Full};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryTrait, Statement, TransactionTrait,
};
use tower::ServiceExt;
use tower_audit::AuditLayer;
use tower_audit::entity::audit_log::{self, ActiveModel, Model};
use tower_audit::store::{
    self, AuditFilter, Cursor, Export, ExportFormat, PageRequest, PurgeOptions, ReplayOptions,
    ReplayOutcome, StatsOptions,
};

use support::{Backend, TestDb, row, rows, scenarios};

use support::Scenario;

const SCENARIOS: &[(&str, Scenario)] = scenarios![
    each_filter_selects_its_rows,
    pagination_neither_skips_nor_repeats_while_rows_arrive,
    get_count_and_stats,
    bounds_between_microseconds_and_groups_of_exact_values,
    far_bounds_and_a_cutoff_between_microseconds_agree_on_every_backend,
    every_query_uses_an_index,
    export_ndjson_and_csv,
    export_of_cut_heads_and_grpc_rows,
    export_of_a_large_range_holds_one_page,
    purge_in_batches_while_writes_continue,
    purge_guard_and_dry_run,
    replay_rebuilds_the_quickstart_orders,
    replay_sends_only_the_methods_asked_for,
    replay_skips_bodies_the_writer_altered,
    replay_sends_the_recorded_headers,
    replay_skips_paths_and_queries_the_writer_altered,
    replay_skips_heads_and_grpc_calls_it_cannot_send_as_recorded,
    replay_sends_neither_its_own_requests_again_nor_refused_ones_nor_ids,
    lookup_indexes_can_be_dropped,
    limits_beyond_what_a_database_binds_are_clamped,
];

fn main() {
    support::run_matrix("store", SCENARIOS);
}

// ---------------------------------------------------------------------------------------------
// Data

async fn insert(db: &DatabaseConnection, models: Vec<ActiveModel>) {
    audit_log::Entity::insert_many(models)
        .exec(db)
        .await
        .unwrap();
}

/// A whole number of microseconds (what every backend keeps) `days` ago.
fn days_ago(days: i64) -> DateTime<Utc> {
    let at = Utc::now() - chrono::Duration::days(days);
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap()
}

/// Inserts `n` rows with SQL alone, fast: row `k` (1-based) occurs `k` ms after `start`, user
/// `u{k % 100}`, route `/r{k % 10}`, tenant `held` when `k % 50 == 0`, else no tenant.
async fn bulk_insert(db: &DatabaseConnection, backend: Backend, start: DateTime<Utc>, n: u64) {
    let columns = "occurred_at, request_id, method, path, route, status, latency_us, client_ip, \
                   user_id, tenant_id, request_body, request_body_truncated, request_bytes, \
                   response_bytes, record_id";
    let epoch = start.timestamp();
    let tag = uuid::Uuid::now_v7().simple();
    let sql = match backend {
        // The text form sqlx gives a DateTime<Utc> (RFC 3339, 6 fraction digits here), so that
        // these rows compare with bound timestamps as the writer's rows do.
        Backend::Sqlite => format!(
            "INSERT INTO audit_log ({columns}) \
             WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < {n}) \
             SELECT strftime('%Y-%m-%dT%H:%M:%S', {epoch} + k / 1000, 'unixepoch') \
                    || printf('.%06d+00:00', (k % 1000) * 1000 + 1), \
                    'req-' || k, 'GET', '/r/' || k, '/r' || (k % 10), \
                    CASE WHEN k % 7 = 0 THEN 500 ELSE 200 END, k % 1000, '10.0.0.1', \
                    'u' || (k % 100), CASE WHEN k % 50 = 0 THEN 'held' END, \
                    '{{\"k\":' || k || '}}', 0, 10, 20, 'rec-{tag}-' || k \
             FROM seq"
        ),
        Backend::Postgres => format!(
            "INSERT INTO audit_log ({columns}) \
             SELECT to_timestamp({epoch}) + k * interval '1 millisecond' + interval '1 microsecond', \
                    'req-' || k, 'GET', '/r/' || k, '/r' || (k % 10), \
                    CASE WHEN k % 7 = 0 THEN 500 ELSE 200 END, k % 1000, '10.0.0.1', \
                    'u' || (k % 100), CASE WHEN k % 50 = 0 THEN 'held' END, \
                    '{{\"k\":' || k || '}}', false, 10, 20, 'rec-{tag}-' || k \
             FROM generate_series(1, {n}) AS k"
        ),
        Backend::MySql => format!(
            "INSERT INTO audit_log ({columns}) \
             WITH RECURSIVE d(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM d WHERE x < 9) \
             SELECT TIMESTAMPADD(MICROSECOND, k * 1000 + 1, FROM_UNIXTIME({epoch})), \
                    CONCAT('req-', k), 'GET', CONCAT('/r/', k), CONCAT('/r', k % 10), \
                    CASE WHEN k % 7 = 0 THEN 500 ELSE 200 END, k % 1000, '10.0.0.1', \
                    CONCAT('u', k % 100), CASE WHEN k % 50 = 0 THEN 'held' END, \
                    CONCAT('{{\"k\":', k, '}}'), false, 10, 20, CONCAT('rec-{tag}-', k) \
             FROM (SELECT a.x + 10 * b.x + 100 * c.x + 1000 * e.x + 10000 * f.x \
                          + 100000 * g.x + 1 AS k \
                   FROM d a, d b, d c, d e, d f, d g) seq \
             WHERE k <= {n}"
        ),
    };
    if backend == Backend::MySql {
        // FROM_UNIXTIME is in the session time zone; the table holds UTC.
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("SET time_zone = '+00:00'")
            .await
            .unwrap();
        txn.execute_unprepared(&sql).await.unwrap();
        txn.commit().await.unwrap();
    } else {
        db.execute_unprepared(&sql).await.unwrap();
    }
}

/// 24 varied rows, one a minute from two days ago; rows 10 and 11 share a timestamp.
fn varied_rows() -> Vec<ActiveModel> {
    let base = days_ago(2);
    (0..24i64)
        .map(|i| {
            let minute = if i == 11 { 10 } else { i };
            row(base + chrono::Duration::minutes(minute), |m| {
                m.user_id = [Some("alice"), Some("bob"), None][i as usize % 3].map(Into::into);
                m.tenant_id = if i % 5 == 0 {
                    None
                } else {
                    Some(["acme", "globex"][i as usize % 2].into())
                };
                m.method = ["GET", "POST", "PUT", "DELETE"][i as usize % 4].into();
                m.path = match i % 6 {
                    0 => format!("/a%b/x{i}"),
                    1 => format!("/aXb/x{i}"),
                    _ => format!("/orders/{i}"),
                };
                m.route = Some(if i % 6 < 2 { "/a" } else { "/orders/{id}" }.into());
                m.status =
                    [Some(200), Some(201), Some(404), Some(500), Some(503), None][i as usize % 6];
                m.client_ip = Some(format!("10.0.0.{}", i % 4));
                m.request_id = Some(format!("req-{i}"));
                if m.status.is_none_or(|s| s >= 500) {
                    m.error = Some("boom".into());
                }
                m.request_body = match i % 4 {
                    1 => Some(r#"{"note":"50%_off"}"#.into()),
                    2 => Some(r#"{"note":"50xxoff"}"#.into()),
                    _ => None,
                };
                m.latency_us = 1000 + i;
            })
        })
        .collect()
}

/// Every row matching `filter`, newest first, through the store's pages.
async fn all_pages(db: &DatabaseConnection, filter: &AuditFilter, size: u64) -> Vec<Model> {
    let mut out = Vec::new();
    let mut request = PageRequest::newest_first(size);
    loop {
        let page = store::page(db, filter, request).await.unwrap();
        assert!(page.rows.len() as u64 <= size);
        out.extend(page.rows);
        match page.next {
            Some(next) => request = request.after(Some(next)),
            None => return out,
        }
    }
}

fn newest_first(rows: &mut [Model]) {
    rows.sort_by_key(|m| std::cmp::Reverse((m.occurred_at, m.id)));
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn each_filter_selects_its_rows(test: Arc<TestDb>) {
    let db = test.migrated().await;
    insert(&db, varied_rows()).await;
    let all = rows(&db).await;
    let t5 = all[5].occurred_at;
    let t15 = all[15].occurred_at;

    type Check = (
        &'static str,
        AuditFilter,
        Box<dyn Fn(&Model) -> bool + Send + Sync>,
    );
    let checks: Vec<Check> = vec![
        ("all", AuditFilter::new(), Box::new(|_| true)),
        (
            "time range",
            AuditFilter::new().since(t5).until(t15),
            Box::new(move |m| m.occurred_at >= t5 && m.occurred_at < t15),
        ),
        (
            "user",
            AuditFilter::new().user("alice"),
            Box::new(|m| m.user_id.as_deref() == Some("alice")),
        ),
        (
            "tenant",
            AuditFilter::new().tenant("acme"),
            Box::new(|m| m.tenant_id.as_deref() == Some("acme")),
        ),
        (
            "methods",
            AuditFilter::new().method("POST").method("DELETE"),
            Box::new(|m| m.method == "POST" || m.method == "DELETE"),
        ),
        (
            "path prefix with a wildcard character",
            AuditFilter::new().path_prefix("/a%b/"),
            Box::new(|m| m.path.starts_with("/a%b/")),
        ),
        (
            "route",
            AuditFilter::new().route("/a"),
            Box::new(|m| m.route.as_deref() == Some("/a")),
        ),
        (
            "status",
            AuditFilter::new().status(404),
            Box::new(|m| m.status == Some(404)),
        ),
        (
            "status range",
            AuditFilter::new().status_range(200..=299),
            Box::new(|m| m.status.is_some_and(|s| (200..300).contains(&s))),
        ),
        (
            "status class",
            AuditFilter::new().status_class(5),
            Box::new(|m| m.status.is_some_and(|s| (500..600).contains(&s))),
        ),
        (
            "client ip",
            AuditFilter::new().client_ip("10.0.0.3"),
            Box::new(|m| m.client_ip.as_deref() == Some("10.0.0.3")),
        ),
        (
            "request id",
            AuditFilter::new().request_id("req-7"),
            Box::new(|m| m.request_id.as_deref() == Some("req-7")),
        ),
        (
            "error present",
            AuditFilter::new().has_error(true),
            Box::new(|m| m.error.is_some()),
        ),
        (
            "error absent",
            AuditFilter::new().has_error(false),
            Box::new(|m| m.error.is_none()),
        ),
        (
            "body text with wildcard characters",
            AuditFilter::new().body_contains("50%_off"),
            Box::new(|m| {
                m.request_body
                    .as_deref()
                    .is_some_and(|b| b.contains("50%_off"))
            }),
        ),
        (
            "combined",
            AuditFilter::new()
                .user("bob")
                .tenant("globex")
                .status_class(2)
                .since(t5),
            Box::new(move |m| {
                m.user_id.as_deref() == Some("bob")
                    && m.tenant_id.as_deref() == Some("globex")
                    && m.status.is_some_and(|s| (200..300).contains(&s))
                    && m.occurred_at >= t5
            }),
        ),
    ];
    for (name, filter, expected) in checks {
        let mut want: Vec<Model> = all.iter().filter(|m| expected(m)).cloned().collect();
        newest_first(&mut want);
        assert!(
            !want.is_empty() || name == "none",
            "{name}: the data should match"
        );
        let got = all_pages(&db, &filter, 4).await;
        let ids = |rows: &[Model]| rows.iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&want), "{name}");
        assert_eq!(
            store::count(&db, &filter).await.unwrap(),
            want.len() as u64,
            "{name}"
        );
    }
}

async fn pagination_neither_skips_nor_repeats_while_rows_arrive(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let base = days_ago(1);
    // 40 rows; each group of five shares a timestamp, so the id decides the order within it.
    let seeds = (0..40)
        .map(|i| row(base + chrono::Duration::seconds(i / 5), |_| {}))
        .collect();
    insert(&db, seeds).await;
    let mut seeded = rows(&db).await;
    newest_first(&mut seeded);
    let arrive = |db: DatabaseConnection| async move {
        insert(&db, (0..3).map(|_| row(Utc::now(), |_| {})).collect()).await;
    };

    // Newest first from a fixed start: rows arriving on top never show up, none is lost.
    let mut seen = Vec::new();
    let mut request = PageRequest::newest_first(7);
    loop {
        let page = store::page(&db, &AuditFilter::new(), request)
            .await
            .unwrap();
        seen.extend(page.rows);
        let Some(next) = page.next else { break };
        arrive(db.clone()).await;
        request = request.after(Some(next));
    }
    let ids: Vec<i64> = seen.iter().map(|m| m.id).collect();
    let want: Vec<i64> = seeded.iter().map(|m| m.id).collect();
    assert_eq!(ids, want, "newest first");

    // Oldest first: the rows that arrive while paging are reached at the end; still no
    // repeat, no gap, and the cursor survives its text form.
    let mut seen: Vec<Model> = Vec::new();
    let mut request = PageRequest::oldest_first(7);
    loop {
        let page = store::page(&db, &AuditFilter::new(), request)
            .await
            .unwrap();
        seen.extend(page.rows);
        let Some(next) = page.next else { break };
        arrive(db.clone()).await;
        let text = next.to_string();
        request = request.after(Some(text.parse::<Cursor>().unwrap()));
    }
    let keys: Vec<_> = seen.iter().map(|m| (m.occurred_at, m.id)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "strictly ascending");
    let mut everything = rows(&db).await;
    everything.sort_by_key(|m| (m.occurred_at, m.id));
    let want: Vec<_> = everything.iter().map(|m| (m.occurred_at, m.id)).collect();
    assert_eq!(
        keys, want,
        "oldest first reaches every row, the new ones included"
    );
    let distinct: HashSet<i64> = seen.iter().map(|m| m.id).collect();
    assert_eq!(distinct.len(), seen.len());
}

async fn get_count_and_stats(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let base = days_ago(1);
    // 101 rows, latencies 0, 10, …, 1000 µs in shuffled order.
    let models = (0..101i64)
        .map(|i| {
            row(base + chrono::Duration::seconds(i), |m| {
                m.latency_us = ((i * 37) % 101) * 10;
                m.route = Some(if i < 60 { "/a" } else { "/b" }.into());
                m.user_id = (i % 2 == 0).then(|| "alice".into());
                m.status = match i % 10 {
                    0 => Some(500),
                    1 => Some(404),
                    2 => None,
                    _ => Some(200),
                };
            })
        })
        .collect();
    insert(&db, models).await;
    // Outside the window: must not count.
    insert(&db, vec![row(days_ago(3), |m| m.latency_us = 1_000_000)]).await;

    let all = rows(&db).await;
    assert_eq!(
        store::get(&db, all[3].id).await.unwrap().as_ref(),
        Some(&all[3])
    );
    assert_eq!(store::get(&db, -1).await.unwrap(), None);

    let window = AuditFilter::new()
        .since(base)
        .until(base + chrono::Duration::hours(1));
    assert_eq!(store::count(&db, &window).await.unwrap(), 101);
    for options in [
        StatsOptions::default(),
        StatsOptions::default().max_samples(10),
    ] {
        let stats = store::stats(&db, &window, options.top(5)).await.unwrap();
        assert_eq!(stats.total, 101);
        assert_eq!(
            stats.by_route,
            [(Some("/a".to_owned()), 60), (Some("/b".to_owned()), 41)]
        );
        assert_eq!(stats.by_user, [(Some("alice".to_owned()), 51), (None, 50)]);
        assert_eq!(
            stats.by_status_class,
            [(None, 10), (Some(2), 70), (Some(4), 10), (Some(5), 11)]
        );
        let latency = stats.latency.unwrap();
        assert_eq!(
            (latency.p50, latency.p95, latency.p99),
            (500.0, 950.0, 990.0)
        );
    }
    let empty = AuditFilter::new().user("nobody");
    let stats = store::stats(&db, &empty, StatsOptions::default())
        .await
        .unwrap();
    assert_eq!((stats.total, stats.latency), (0, None));
}

/// The same rows on every backend: a time bound between two microseconds (rows are kept to
/// the microsecond; PostgreSQL and MariaDB cut a bound's nanoseconds, and took in the rows of
/// the microsecond before), and `stats` groups of exact values (MariaDB's collation made one
/// group of `alice`, `Alice`, `alice ` and `alicé`, and of `/orders` and `/Orders`, where
/// `query --user` tells them apart) whose ties come in one order (PostgreSQL put the group
/// without a value last, the others first).
/// Found by a probe:
/// - on MariaDB a bound past 2038-01-19 or before 1970 (`--until 2100-01-01`,
///   `--since 1960-01-01`) matched nothing: sqlx bound it as a `TIMESTAMP`, which cannot hold
///   it, where the column is a `DATETIME`;
/// - a purge cutoff between two microseconds took the row of the one before it on SQLite and
///   kept it on PostgreSQL and MariaDB, where `until` counted it on all three.
async fn far_bounds_and_a_cutoff_between_microseconds_agree_on_every_backend(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let backend_of = |db: &DatabaseConnection| db.get_database_backend();
    let at = days_ago(3);
    let micro = chrono::Duration::microseconds(1);
    insert(&db, vec![row(at, |_| {}), row(at + micro * 2, |_| {})]).await;
    let time = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
    let (past, future) = (time("1960-01-01T00:00:00Z"), time("2100-01-01T00:00:00Z"));
    for filter in [
        AuditFilter::new().until(future),
        AuditFilter::new().since(past),
        AuditFilter::new().since(past).until(future),
        AuditFilter::new().until(time("2038-01-19T03:14:08Z")),
        // Rounded up to the microsecond, it was year 10000, which SQLite sorts first.
        AuditFilter::new().until(time("9999-12-31T23:59:59.9999999Z")),
        // Found by a probe: past the years a backend holds, a bound failed on MariaDB (a
        // protocol error, then `tower-audit` hung on closing), errored on PostgreSQL, and on
        // SQLite `until(MAX_UTC)` matched nothing.
        AuditFilter::new().since(DateTime::<chrono::Utc>::MIN_UTC),
        AuditFilter::new().until(DateTime::<chrono::Utc>::MAX_UTC),
        AuditFilter::new().since(at - chrono::Duration::days(1_000_000)),
        AuditFilter::new().until(at + chrono::Duration::days(90_000_000)),
    ] {
        assert_eq!(store::count(&db, &filter).await.unwrap(), 2, "{filter:?}");
    }
    for filter in [
        AuditFilter::new().until(DateTime::<chrono::Utc>::MIN_UTC),
        AuditFilter::new().since(DateTime::<chrono::Utc>::MAX_UTC),
    ] {
        assert_eq!(store::count(&db, &filter).await.unwrap(), 0, "{filter:?}");
    }
    // A NUL in a filter is looked for as the writer stores one, U+FFFD: SQLite's LIKE stopped
    // at it and matched every body, PostgreSQL refused it, MariaDB matched none (a probe).
    let with = |body: &str, user: &str| {
        row(at, |m| {
            m.request_body = Some(body.into());
            m.user_id = Some(user.into());
        })
    };
    insert(
        &db,
        vec![with("{\"a\":1}", "ann"), with("x\u{FFFD}y", "a\u{FFFD}")],
    )
    .await;
    for (filter, n) in [
        (AuditFilter::new().body_contains("\0"), 1),
        (AuditFilter::new().body_contains("x\0y"), 1),
        (AuditFilter::new().user("a\0"), 1),
        (AuditFilter::new().path_prefix("/\0"), 0),
        (AuditFilter::new().tenant("\0"), 0),
        (AuditFilter::new().route("\0"), 0),
        (AuditFilter::new().request_id("\0"), 0),
        (AuditFilter::new().method("G\0"), 0),
    ] {
        assert_eq!(store::count(&db, &filter).await.unwrap(), n, "{filter:?}");
    }
    {
        use sea_orm::{ColumnTrait, QueryFilter};
        audit_log::Entity::delete_many()
            .filter(audit_log::Column::RequestBody.is_not_null())
            .exec(&db)
            .await
            .unwrap();
    }
    let nothing = store::purge_before(
        &db,
        DateTime::<chrono::Utc>::MIN_UTC,
        PurgeOptions::new().allow_recent(true).dry_run(true),
    )
    .await
    .unwrap();
    assert_eq!(nothing.deleted, 0);
    let mut out = Vec::new();
    let exported = Export::new(ExportFormat::Ndjson)
        .to_writer(&db, &AuditFilter::new().until(future), &mut out)
        .await
        .unwrap();
    assert_eq!(exported.rows, 2);

    // Rows past 2038 (the writer binds its times as the `DATETIME` the column is, so it stores
    // them on MySQL too), paged one at a time: the cursor is bound as the bounds are (found on
    // review: a `TIMESTAMP` cursor stopped the pages there).
    let later = time("2040-01-01T00:00:00.000001Z");
    let mysql = backend_of(&db) == sea_orm::DbBackend::MySql;
    for i in 0..3 {
        let at = later + chrono::Duration::seconds(i);
        let at: sea_orm::Value = if mysql {
            at.naive_utc().into()
        } else {
            at.into()
        };
        use sea_orm::sea_query::Query;
        use tower_audit::entity::audit_log::Column as C;
        let insert = Query::insert()
            .into_table(audit_log::Entity)
            .columns([
                C::OccurredAt,
                C::RecordId,
                C::Method,
                C::Path,
                C::LatencyUs,
                C::RequestBodyTruncated,
                C::RequestBytes,
                C::ResponseBytes,
            ])
            .values_panic([
                at.into(),
                format!("later-{i}").into(),
                "GET".into(),
                format!("/later/{i}").into(),
                1_i64.into(),
                false.into(),
                0_i64.into(),
                0_i64.into(),
            ])
            .to_owned();
        db.execute(&insert).await.unwrap();
    }
    let mut paths = Vec::new();
    let mut request = PageRequest::oldest_first(1);
    loop {
        let page = store::page(&db, &AuditFilter::new().since(later), request)
            .await
            .unwrap();
        paths.extend(page.rows.into_iter().map(|row| row.path));
        let Some(next) = page.next else { break };
        request = request.after(Some(next));
    }
    assert_eq!(paths, ["/later/0", "/later/1", "/later/2"]);
    {
        use sea_orm::{ColumnTrait, QueryFilter};
        audit_log::Entity::delete_many()
            .filter(audit_log::Column::Path.starts_with("/later/"))
            .exec(&db)
            .await
            .unwrap();
    }

    let between = at + chrono::Duration::nanoseconds(500);
    let until = AuditFilter::new().until(between);
    assert_eq!(store::count(&db, &until).await.unwrap(), 1);
    let report = store::purge_before(&db, between, PurgeOptions::new().allow_recent(true))
        .await
        .unwrap();
    assert_eq!(report.deleted, 1);
    // The purge's own row aside.
    let left: Vec<_> = rows(&db)
        .await
        .into_iter()
        .filter(|row| Some(row.id) != report.record_id)
        .collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].occurred_at, at + micro * 2);
}

async fn bounds_between_microseconds_and_groups_of_exact_values(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let at = days_ago(1)
        .duration_trunc(chrono::TimeDelta::seconds(1))
        .unwrap()
        + chrono::Duration::microseconds(123_456);
    let micro = chrono::Duration::microseconds(1);
    let users = [
        Some("alice"),
        Some("Alice"),
        Some("alice "),
        Some("alicé"),
        Some("zed"),
        None,
    ];
    let mut models = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for j in 0..[3, 3, 3, 3, 2, 2][i] {
            models.push(row(at, |m| {
                m.user_id = user.map(Into::into);
                m.route = Some(if j == 0 { "/Orders" } else { "/orders" }.into());
            }));
        }
    }
    models.push(row(at - micro, |m| m.route = None));
    models.push(row(at + micro, |m| m.route = None));
    insert(&db, models).await;

    let nano = chrono::Duration::nanoseconds(1);
    let count = |filter: AuditFilter| {
        let db = db.clone();
        async move { store::count(&db, &filter).await.unwrap() }
    };
    assert_eq!(count(AuditFilter::new().since(at + nano)).await, 1);
    assert_eq!(count(AuditFilter::new().since(at)).await, 17);
    assert_eq!(count(AuditFilter::new().until(at + nano)).await, 17);
    assert_eq!(count(AuditFilter::new().until(at)).await, 1);
    assert_eq!(
        count(AuditFilter::new().since(at - nano).until(at + nano)).await,
        16
    );

    let window = AuditFilter::new().since(at).until(at + nano);
    let stats = store::stats(&db, &window, StatsOptions::default().top(10))
        .await
        .unwrap();
    let named = |name: &str, n: u64| (Some(name.to_owned()), n);
    assert_eq!(
        stats.by_user,
        [
            named("Alice", 3),
            named("alice", 3),
            named("alice ", 3),
            named("alicé", 3),
            named("zed", 2),
            (None, 2),
        ]
    );
    assert_eq!(stats.by_route, [named("/orders", 10), named("/Orders", 6)]);
    // The user filter agrees with the groups.
    assert_eq!(count(window.clone().user("Alice")).await, 3);
}

/// The plan of `select` mentions an index of `audit_log`, and no full scan of it.
async fn assert_uses_index(db: &DatabaseConnection, backend: Backend, what: &str, sql: Statement) {
    let plan = match backend {
        Backend::Sqlite => {
            let explain = Statement::from_sql_and_values(
                sql.db_backend,
                format!("EXPLAIN QUERY PLAN {}", sql.sql),
                sql.values.map(|v| v.0).unwrap_or_default(),
            );
            let rows = db.query_all_raw(explain).await.unwrap();
            let details: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String>("", "detail").unwrap())
                .collect();
            for line in &details {
                if line.contains("audit_log") {
                    assert!(
                        line.contains("INDEX") || line.contains("PRIMARY KEY"),
                        "{what}: {details:?}"
                    );
                }
            }
            details.join("\n")
        }
        Backend::Postgres => {
            let txn = db.begin().await.unwrap();
            // On tables this small a sequential scan is cheaper; forbid it to see that an
            // index can serve the query at all.
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .unwrap();
            let explain = Statement::from_sql_and_values(
                sql.db_backend,
                format!("EXPLAIN {}", sql.sql),
                sql.values.map(|v| v.0).unwrap_or_default(),
            );
            let rows = txn.query_all_raw(explain).await.unwrap();
            txn.rollback().await.unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap())
                .collect();
            let plan = plan.join("\n");
            assert!(plan.contains("Index"), "{what}: {plan}");
            assert!(!plan.contains("Seq Scan"), "{what}: {plan}");
            plan
        }
        Backend::MySql => {
            let explain = Statement::from_sql_and_values(
                sql.db_backend,
                format!("EXPLAIN {}", sql.sql),
                sql.values.map(|v| v.0).unwrap_or_default(),
            );
            let rows = db.query_all_raw(explain).await.unwrap();
            let keys: Vec<Option<String>> = rows
                .iter()
                .map(|r| r.try_get::<Option<String>>("", "key").unwrap())
                .collect();
            assert!(keys.iter().all(Option::is_some), "{what}: keys {keys:?}");
            format!("{keys:?}")
        }
    };
    let _ = plan;
}

async fn every_query_uses_an_index(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let backend = test.backend;
    insert(&db, varied_rows()).await;
    bulk_insert(&db, backend, days_ago(10), 2000).await;
    match backend {
        Backend::Sqlite => db.execute_unprepared("ANALYZE").await.unwrap(),
        Backend::Postgres => db.execute_unprepared("ANALYZE audit_log").await.unwrap(),
        Backend::MySql => db
            .execute_unprepared("ANALYZE TABLE audit_log")
            .await
            .unwrap(),
    };
    let db_backend = db.get_database_backend();
    let t = days_ago(5);
    let cursor = Cursor::after(&rows(&db).await[3]);
    let filters = [
        ("no filter", AuditFilter::new()),
        ("time range", AuditFilter::new().since(t).until(Utc::now())),
        ("user", AuditFilter::new().user("alice")),
        ("tenant", AuditFilter::new().tenant("acme")),
        ("route", AuditFilter::new().route("/a")),
        ("status", AuditFilter::new().status(404)),
        ("status class", AuditFilter::new().status_class(5)),
        ("client ip", AuditFilter::new().client_ip("10.0.0.3")),
        ("request id", AuditFilter::new().request_id("req-7")),
        ("method", AuditFilter::new().method("POST")),
        ("path prefix", AuditFilter::new().path_prefix("/orders/")),
        ("error", AuditFilter::new().has_error(true)),
        ("body text", AuditFilter::new().body_contains("off")),
    ];
    for (name, filter) in &filters {
        for request in [
            PageRequest::newest_first(100),
            PageRequest::newest_first(100).after(Some(cursor)),
            PageRequest::oldest_first(100).after(Some(cursor)),
        ] {
            let sql = store::page_select(db_backend, filter, request).build(db_backend);
            assert_uses_index(&db, backend, &format!("page, {name}, {request:?}"), sql).await;
        }
    }
    // Counts over an indexed condition, the purge's batch selection, following by id.
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    use tower_audit::entity::audit_log::Column;
    for (name, filter) in &filters[1..9] {
        let count = audit_log::Entity::find()
            .select_only()
            .column_as(sea_orm::sea_query::Expr::val(1), "one")
            .filter(filter.condition(db_backend))
            .build(db_backend);
        assert_uses_index(&db, backend, &format!("count, {name}"), count).await;
    }
    let purge = audit_log::Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::OccurredAt.lt(t))
        .order_by_asc(Column::OccurredAt)
        .limit(5000)
        .build(db_backend);
    assert_uses_index(&db, backend, "purge batch", purge).await;
    let follow = audit_log::Entity::find()
        .filter(Column::Id.gt(100))
        .order_by_asc(Column::Id)
        .limit(100)
        .build(db_backend);
    assert_uses_index(&db, backend, "rows after id", follow).await;
    let _ = audit_log::Entity::find().count(&db).await.unwrap();
}

async fn export_ndjson_and_csv(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let base = days_ago(1);
    insert(
        &db,
        vec![
            row(base, |m| {
                m.method = "POST".into();
                m.path = "/orders".into();
                m.user_id = Some("alice".into());
                m.request_body = Some("say \"hi\",\nthen leave".into());
                m.extra = Some(serde_json::json!({ "plan": "gold" }));
            }),
            row(base + chrono::Duration::seconds(1), |m| m.status = None),
            row(base + chrono::Duration::seconds(2), |m| {
                m.client_ip = Some("10.1.2.3".into());
                // What clients send, which a spreadsheet would evaluate.
                m.user_agent = Some(r#"=HYPERLINK("http://evil.example","x")"#.into());
                m.query = Some("-1+1".into());
                m.error = Some("@SUM(1)".into());
                // The fullwidth `＝` a CJK input method types.
                m.action = Some("\u{FF1D}1+1".into());
            }),
        ],
    )
    .await;
    let filter = AuditFilter::new();

    let mut out = Vec::new();
    let report = Export::new(ExportFormat::Ndjson)
        .page_size(2)
        .to_writer(&db, &filter, &mut out)
        .await
        .unwrap();
    assert_eq!((report.rows, report.pages, report.largest_page), (3, 2, 2));
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["method"], "POST");
    assert_eq!(lines[0]["user_id"], "alice");
    assert_eq!(lines[0]["request_body"], "say \"hi\",\nthen leave");
    assert_eq!(lines[0]["extra"]["plan"], "gold");
    assert_eq!(lines[1]["status"], serde_json::Value::Null);
    assert_eq!(lines[2]["client_ip"], "10.1.2.3");
    assert_eq!(
        lines[2]["user_agent"], r#"=HYPERLINK("http://evil.example","x")"#,
        "NDJSON keeps values as stored"
    );

    // OpenTelemetry names, into an async writer.
    let mut out: Vec<u8> = Vec::new();
    Export::new(ExportFormat::Ndjson)
        .otel(true)
        .to_async_writer(&db, &filter, &mut out)
        .await
        .unwrap();
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["http.request.method"], "POST");
    assert_eq!(first["url.path"], "/orders");
    assert_eq!(first["enduser.id"], "alice");
    assert_eq!(first["http.response.status_code"], 200);
    assert!(first.get("method").is_none());

    let mut out = Vec::new();
    Export::new(ExportFormat::Csv)
        .to_writer(&db, &filter, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("id,occurred_at,request_id,method,path,route,query,status,"));
    assert!(text.contains(",\"say \"\"hi\"\",\nthen leave\","), "{text}");
    // Header plus three records, each ending in CRLF (the quoted newline is a bare LF).
    assert_eq!(text.matches("\r\n").count(), 4);
    // Formulas from clients reach the spreadsheet as text.
    let last = text.split("\r\n").nth(3).unwrap();
    assert!(
        last.contains(r#","'=HYPERLINK(""http://evil.example"",""x"")","#),
        "{last}"
    );
    assert!(last.contains(r#","'-1+1","#), "{last}");
    assert!(last.contains(r#","'@SUM(1)","#), "{last}");
    assert!(last.contains(",\"'\u{FF1D}1+1\","), "{last}");
}

/// A head cut for the queue's budget (its `request_headers` a JSON string, not an object) and
/// gRPC rows (a body decoded to JSON, or described) in every format. CSV wrote the JSON columns
/// as JSON text, except a string among them, written bare: `[headers not captured, 3000 bytes]`
/// is no JSON, where every other row's `request_headers` parses as JSON.
async fn export_of_cut_heads_and_grpc_rows(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let base = days_ago(1);
    let note = |len: usize| format!(" …[truncated, {len} bytes total]");
    let not_captured = "[headers not captured, 3000 bytes]";
    insert(
        &db,
        vec![
            row(base, |m| {
                m.path = format!("/files/{}", note(900));
                m.query = Some(format!("a=1&b={}", note(700)));
                m.user_agent = Some(format!("{}{}", "u".repeat(128), note(2000)));
                m.request_headers = Some(serde_json::json!(not_captured));
            }),
            row(base + chrono::Duration::seconds(1), |m| {
                m.method = "POST".into();
                m.path = "/shop.Orders/Create".into();
                m.route = Some("shop.Orders/Create".into());
                m.grpc_status = Some(0);
                m.grpc_messages_in = Some(1);
                m.request_body = Some(r#"{"item":"pen","note":"a, \"b\""}"#.into());
                m.request_headers =
                    Some(serde_json::json!({ "content-type": "application/grpc+json" }));
                m.extra = Some(serde_json::json!({ "request_body_altered": true }));
            }),
            row(base + chrono::Duration::seconds(2), |m| {
                m.method = "POST".into();
                m.path = "/shop.Orders/Upload".into();
                m.grpc_messages_in = Some(3);
                m.request_body = Some("[binary application/grpc, 30 bytes]".into());
            }),
        ],
    )
    .await;
    let filter = AuditFilter::new();

    for otel in [false, true] {
        let mut out = Vec::new();
        Export::new(ExportFormat::Ndjson)
            .otel(otel)
            .to_writer(&db, &filter, &mut out)
            .await
            .unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let name = |column: &'static str, otel_name: &'static str| {
            if otel { otel_name } else { column }
        };
        assert_eq!(lines.len(), 3);
        let headers = name("request_headers", "audit.request_headers");
        assert_eq!(lines[0][headers], not_captured, "otel {otel}");
        assert_eq!(
            lines[0][name("path", "url.path")],
            format!("/files/{}", note(900))
        );
        assert_eq!(lines[1][headers]["content-type"], "application/grpc+json");
        assert_eq!(
            lines[1][name("request_body", "audit.request_body")],
            r#"{"item":"pen","note":"a, \"b\""}"#
        );
        assert_eq!(
            lines[2][name("grpc_messages_in", "audit.grpc.messages_in")],
            3
        );
    }

    let mut out = Vec::new();
    Export::new(ExportFormat::Csv)
        .to_writer(&db, &filter, &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let records: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(records.len(), 5, "header, three records, the end: {text}");
    assert!(
        records[1].contains(&format!(",\"/files/{}\",", note(900))),
        "{text}"
    );
    // JSON text, as an object's is: a reader parses the column as JSON whatever it holds.
    assert!(
        records[1].contains(&format!(",\"\"\"{not_captured}\"\"\",")),
        "{text}"
    );
    assert!(
        records[2].contains(r#","{""content-type"":""application/grpc+json""}","#),
        "{text}"
    );
    assert!(
        records[2].contains(r#","{""item"":""pen"",""note"":""a, \""b\""""}","#),
        "{text}"
    );
    assert!(
        records[3].contains(r#","[binary application/grpc, 30 bytes]","#),
        "{text}"
    );
}

/// An `AsyncWrite` that only counts lines.
#[derive(Default)]
struct LineCounter {
    lines: u64,
}

impl tokio::io::AsyncWrite for LineCounter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The process's peak resident memory, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn export_of_a_large_range_holds_one_page(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let n: u64 = match test.backend {
        Backend::Sqlite => 1_000_000,
        Backend::Postgres | Backend::MySql => 50_000,
    };
    bulk_insert(&db, test.backend, days_ago(30), n).await;
    assert_eq!(store::count(&db, &AuditFilter::new()).await.unwrap(), n);

    let before = peak_rss_kib();
    let mut out = LineCounter::default();
    let report = Export::new(ExportFormat::Ndjson)
        .page_size(1000)
        .to_async_writer(&db, &AuditFilter::new(), &mut out)
        .await
        .unwrap();
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    assert_eq!((report.rows, out.lines), (n, n));
    assert_eq!(report.largest_page, 1000);
    assert_eq!(report.pages, n.div_ceil(1000));
    // A million rows held at once take hundreds of MiB; one page about one.
    assert!(
        grown_mib < 64,
        "peak memory grew by {grown_mib} MiB during the export"
    );
    eprintln!(
        "{}: exported {n} rows, peak RSS grew {grown_mib} MiB",
        test.backend.name()
    );
}

async fn purge_in_batches_while_writes_continue(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let n: u64 = match test.backend {
        Backend::Sqlite => 100_000,
        Backend::Postgres | Backend::MySql => 20_000,
    };
    bulk_insert(&db, test.backend, days_ago(200), n).await;
    let held = n / 50;

    // A writer that keeps inserting current rows until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (started, first_write) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn({
        let db = db.clone();
        let stop = stop.clone();
        async move {
            let mut written = 0u64;
            let mut started = Some(started);
            while !stop.load(Ordering::Relaxed) {
                insert(&db, vec![row(Utc::now(), |m| m.path = "/live".into())]).await;
                written += 1;
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
            }
            written
        }
    });
    first_write.await.unwrap();
    let cutoff = Utc::now() - chrono::Duration::days(90);
    let report = store::purge_before(
        &db,
        cutoff,
        PurgeOptions::new()
            .legal_hold(AuditFilter::new().tenant("held"))
            .requested_by("ops"),
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();

    assert_eq!(report.deleted, n - held);
    assert!(report.batches >= (n - held) / 5000, "{report:?}");
    let old = AuditFilter::new().until(cutoff);
    assert_eq!(
        store::count(&db, &old).await.unwrap(),
        held,
        "held rows kept"
    );
    assert_eq!(
        store::count(&db, &old.clone().tenant("held"))
            .await
            .unwrap(),
        held
    );
    let live = AuditFilter::new().path_prefix("/live");
    assert_eq!(
        store::count(&db, &live).await.unwrap(),
        written,
        "no live row lost"
    );

    let record = store::get(&db, report.record_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.method, store::PURGE_METHOD);
    assert_eq!(record.path, store::PURGE_PATH);
    assert_eq!(record.action.as_deref(), Some(store::PURGE_ACTION));
    assert_eq!(record.user_id.as_deref(), Some("ops"));
    let extra = record.extra.unwrap();
    assert_eq!(extra["deleted"], n - held);
    assert!(
        extra["cutoff"]
            .as_str()
            .unwrap()
            .starts_with(&cutoff.format("%Y-%m-%d").to_string())
    );
    eprintln!(
        "{}: purged {} rows in {} batches while {written} rows were written",
        test.backend.name(),
        report.deleted,
        report.batches
    );
}

/// Limits no database binds (`LIMIT` is a signed 64-bit integer; a purge batch's ids are the
/// parameters of one statement) are clamped: `newest_first(u64::MAX)` panicked in sqlx (and
/// its `limit + 1` overflowed), as did `top(u64::MAX)`, `page_size(u64::MAX)` and
/// `batch_size(u64::MAX)`. A page of 0 rows is empty, where it held one row.
async fn limits_beyond_what_a_database_binds_are_clamped(test: Arc<TestDb>) {
    let db = test.migrated().await;
    // More than one purge batch can bind on SQLite.
    let n = 35_000;
    bulk_insert(&db, test.backend, days_ago(200), n).await;
    let all = AuditFilter::new();
    for request in [
        PageRequest::newest_first(u64::MAX),
        PageRequest::newest_first(i64::MAX as u64),
        PageRequest::oldest_first(i64::MAX as u64 - 1),
    ] {
        let page = store::page(&db, &all, request).await.unwrap();
        assert_eq!(
            (page.rows.len() as u64, page.next),
            (n, None),
            "{request:?}"
        );
        assert_eq!(request.limit(), store::MAX_ROWS);
    }
    let page = store::page(&db, &all, PageRequest::newest_first(0))
        .await
        .unwrap();
    assert_eq!((page.rows.len(), page.next), (0, None));
    let after = store::rows_after_id(&db, &all, 0, u64::MAX).await.unwrap();
    assert_eq!(after.len() as u64, n);
    let stats = store::stats(&db, &all, StatsOptions::default().top(u64::MAX))
        .await
        .unwrap();
    assert_eq!((stats.total, stats.by_route.len()), (n, 10));
    let mut out = Vec::new();
    let report = Export::new(ExportFormat::Ndjson)
        .page_size(u64::MAX)
        .to_writer(&db, &all, &mut out)
        .await
        .unwrap();
    assert_eq!(report.rows, n);

    // More ids than SQLite takes as the parameters of one statement.
    let report = store::purge_before(
        &db,
        Utc::now() - chrono::Duration::days(90),
        PurgeOptions::new().batch_size(u64::MAX),
    )
    .await
    .unwrap();
    assert_eq!((report.deleted, report.batches), (n, 2), "{report:?}");
}

async fn purge_guard_and_dry_run(test: Arc<TestDb>) {
    let db = test.migrated().await;
    insert(
        &db,
        vec![
            row(days_ago(2), |_| {}),
            row(days_ago(1), |_| {}),
            row(Utc::now(), |_| {}),
        ],
    )
    .await;
    let cutoff = Utc::now() - chrono::Duration::hours(1);

    let refused = store::purge_before(&db, cutoff, PurgeOptions::new()).await;
    let error = refused.unwrap_err();
    assert!(
        matches!(error, tower_audit::Error::RecentPurge { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("minimum retention of 30 days"),
        "{error}"
    );
    assert_eq!(store::count(&db, &AuditFilter::new()).await.unwrap(), 3);

    let dry = store::purge_before(
        &db,
        cutoff,
        PurgeOptions::new().allow_recent(true).dry_run(true),
    )
    .await
    .unwrap();
    assert_eq!((dry.deleted, dry.batches, dry.record_id), (2, 0, None));
    assert_eq!(store::count(&db, &AuditFilter::new()).await.unwrap(), 3);

    // A shorter minimum retention admits the cutoff without allow_recent.
    let done = store::purge_before(
        &db,
        cutoff,
        PurgeOptions::new().min_retention(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!((done.deleted, done.batches), (2, 1));
    // The newest row and the record of the purge.
    assert_eq!(store::count(&db, &AuditFilter::new()).await.unwrap(), 2);
}

/// Sends a request to an in-process app and reads the whole response.
async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn login(app: &Router) -> String {
    let (status, body) = call(
        app,
        "POST",
        "/login",
        None,
        r#"{"username":"alice","password":"correct horse"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

async fn replay_rebuilds_the_quickstart_orders(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let since = Utc::now() - chrono::Duration::seconds(1);

    // The recorded session.
    let (audit, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let original = quickstart::app(quickstart::AppState::default(), audit);
    let token = login(&original).await;
    for item in ["book", "pen", "ink"] {
        let (status, _) = call(
            &original,
            "POST",
            "/orders",
            Some(&token),
            &format!(r#"{{"item":"{item}","qty":2}}"#),
        )
        .await;
        assert_eq!(status, 201);
    }
    assert_eq!(
        call(&original, "DELETE", "/orders/2", Some(&token), "")
            .await
            .0,
        204
    );
    assert_eq!(
        call(&original, "GET", "/orders/1", Some(&token), "")
            .await
            .0,
        200
    );
    let written = guard.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(written.written, 6);
    let range = AuditFilter::new().since(since);

    // A fresh instance, which audits nothing itself.
    let fresh_app = || {
        let (audit, guard) = AuditLayer::builder(db.clone())
            .skip_if(|_| true)
            .build()
            .unwrap();
        (
            quickstart::app(quickstart::AppState::default(), audit),
            guard,
        )
    };

    // Dry run: what would be sent.
    let (fresh, fresh_guard) = fresh_app();
    let dry = store::replay(
        &db,
        &range,
        fresh.clone(),
        ReplayOptions::new().dry_run(true),
    )
    .await
    .unwrap();
    let outcomes: Vec<_> = dry
        .entries
        .iter()
        .map(|(r, o)| (r.method.as_str(), r.path.as_str(), o.clone()))
        .collect();
    let skipped = ReplayOutcome::Skipped {
        reason: "request body was redacted".into(),
    };
    assert_eq!(
        outcomes,
        [
            ("POST", "/login", skipped.clone()),
            ("POST", "/orders", ReplayOutcome::WouldSend),
            ("POST", "/orders", ReplayOutcome::WouldSend),
            ("POST", "/orders", ReplayOutcome::WouldSend),
            ("DELETE", "/orders/2", ReplayOutcome::WouldSend),
        ]
    );

    // Without credentials the first order gets a 401 instead of its 201: stop there.
    let stopped = store::replay(
        &db,
        &range,
        fresh.clone(),
        ReplayOptions::new().stop_on_error(true),
    )
    .await
    .unwrap();
    assert!(stopped.stopped_early);
    assert_eq!((stopped.entries.len(), stopped.errors()), (2, 1));

    // With a token of the fresh instance, rate-limited: the same orders.
    let (fresh, fresh_guard2) = {
        drop(fresh);
        fresh_guard.shutdown(Duration::from_secs(5)).await.unwrap();
        fresh_app()
    };
    let fresh_token = login(&fresh).await;
    let started = tokio::time::Instant::now();
    let report = store::replay(
        &db,
        &range,
        fresh.clone(),
        ReplayOptions::new()
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {fresh_token}").parse().unwrap(),
            )
            .rate(100.0)
            .stop_on_error(true),
    )
    .await
    .unwrap();
    // Four sends at 100/s: the first at once, then 10 ms apart.
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(
        (report.sent(), report.skipped(), report.errors()),
        (4, 1, 0)
    );
    assert!(!report.stopped_early);
    for id in 1..=4 {
        let path = format!("/orders/{id}");
        assert_eq!(
            call(&fresh, "GET", &path, Some(&fresh_token), "").await,
            call(&original, "GET", &path, Some(&token), "").await,
            "{path}"
        );
    }
    drop((fresh, original));
    fresh_guard2.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A method filter narrows a replay to the state-changing methods among its own: `--method
/// DELETE` sent every recorded POST, PUT and PATCH as well, and `--method GET` sent GETs.
async fn replay_sends_only_the_methods_asked_for(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let base = days_ago(1);
    let recorded = [
        ("POST", "/a"),
        ("DELETE", "/b"),
        ("GET", "/c"),
        ("PUT", "/d"),
    ];
    let models = recorded
        .iter()
        .enumerate()
        .map(|(i, (method, path))| {
            row(base + chrono::Duration::seconds(i as i64), |m| {
                m.method = (*method).into();
                m.path = (*path).into();
            })
        })
        .collect();
    insert(&db, models).await;

    let dry_run = |filter: AuditFilter| {
        let db = db.clone();
        async move {
            let report = store::replay(
                &db,
                &filter,
                // Never called: a dry run sends nothing.
                tower::service_fn(|_: http::Request<Full<Bytes>>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
                }),
                ReplayOptions::new().dry_run(true),
            )
            .await
            .unwrap();
            report
                .entries
                .iter()
                .map(|(r, o)| {
                    assert_eq!(o, &ReplayOutcome::WouldSend);
                    format!("{} {}", r.method, r.path)
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        dry_run(AuditFilter::new()).await,
        ["POST /a", "DELETE /b", "PUT /d"]
    );
    assert_eq!(
        dry_run(AuditFilter::new().method("DELETE")).await,
        ["DELETE /b"]
    );
    assert_eq!(
        dry_run(AuditFilter::new().method("GET")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        dry_run(AuditFilter::new().methods(["GET", "PUT"])).await,
        ["PUT /d"]
    );
}

/// The headers a layer records (`record_headers`) are sent again: an idempotency key, a
/// tenant, an `If-Match` reached the target as recorded (only `content-type` did). Those
/// redacted (the credentials, which `--header` gives), of the connection, and the agent are
/// not.
async fn replay_sends_the_recorded_headers(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let since = Utc::now() - chrono::Duration::seconds(1);
    let names = [
        "content-type",
        "x-tenant-id",
        "if-match",
        "idempotency-key",
        "authorization",
        "user-agent",
    ]
    .map(http::HeaderName::from_static);
    let (audit, guard) = AuditLayer::builder(db.clone())
        .record_headers(names)
        .build()
        .unwrap();
    let service = reading_every_body(audit);
    let requests = [
        http::Request::post("/pay")
            .header("content-type", "application/json")
            .header("idempotency-key", "k-123")
            .header("x-tenant-id", "t1")
            .header("authorization", "Bearer secret-token")
            .header("user-agent", "shop/1.0")
            .body(Full::new(Bytes::from_static(br#"{"amount":5}"#)))
            .unwrap(),
        http::Request::delete("/items/1")
            .header("if-match", "\"v7\"")
            .header("x-tenant-id", "t1")
            .header("x-tenant-id", "t2")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    ];
    for request in requests {
        let response = service.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    guard.shutdown(Duration::from_secs(30)).await.unwrap();

    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let target = {
        let received = received.clone();
        tower::service_fn(move |request: http::Request<Full<Bytes>>| {
            let mut headers: Vec<String> = request
                .headers()
                .iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                .collect();
            headers.sort();
            received
                .lock()
                .unwrap()
                .push((request.uri().path().to_owned(), headers));
            async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
            }
        })
    };
    let report = store::replay(
        &db,
        &AuditFilter::new().since(since),
        target,
        ReplayOptions::new().header(
            http::HeaderName::from_static("authorization"),
            http::HeaderValue::from_static("Bearer new"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(report.sent(), 2, "{report:?}");
    let received = received.lock().unwrap().clone();
    assert_eq!(
        received,
        [
            (
                "/pay".to_owned(),
                vec![
                    "authorization: Bearer new".to_owned(),
                    "content-type: application/json".to_owned(),
                    "idempotency-key: k-123".to_owned(),
                    "x-tenant-id: t1".to_owned(),
                ]
            ),
            (
                "/items/1".to_owned(),
                vec![
                    "authorization: Bearer new".to_owned(),
                    "if-match: \"v7\"".to_owned(),
                    "x-tenant-id: t1".to_owned(),
                    "x-tenant-id: t2".to_owned(),
                ]
            ),
        ]
    );
}

/// Bodies the sanitizer changed without leaving `[REDACTED]` in them — a multipart upload
/// stored as the JSON list of its parts, a secret replaced by the user's own text — were sent
/// as `application/json`. Recorded through the real layer and writer, they are skipped; bodies
/// stored as sent (JSON compacted included) would still be sent.
async fn replay_skips_bodies_the_writer_altered(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let multipart = "--b0undary\r\n\
        Content-Disposition: form-data; name=\"title\"\r\n\r\n\
        holiday\r\n--b0undary--\r\n";
    let sent = [
        (
            "/upload",
            "multipart/form-data; boundary=b0undary",
            multipart,
        ),
        (
            "/login",
            "application/json",
            r#"{"user":"ann","password":"hunter2"}"#,
        ),
        ("/notes", "text/plain", "call cust-123456 back"),
        ("/orders", "application/json", r#"{"item":"pen","qty":2}"#),
        (
            "/pretty",
            "application/json",
            "{ \"item\": \"ink\",\n  \"qty\": 1 }",
        ),
    ];
    let requests = sent.map(|(path, content_type, body)| {
        http::Request::post(path)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    });
    let dry = record_then_dry_run(&db, requests).await;
    let altered = ReplayOutcome::Skipped {
        reason: "request body was stored altered (redacted, summarized or decoded)".into(),
    };
    let outcomes: Vec<_> = dry
        .entries
        .iter()
        .map(|(r, o)| (r.path.as_str(), r.body.as_deref().unwrap_or_default(), o))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "/upload",
                r#"[{"name":"title","size":7,"value":"holiday"}]"#,
                &altered
            ),
            ("/login", r#"{"user":"ann","password":"<gone>"}"#, &altered),
            ("/notes", "call customer back", &altered),
            (
                "/orders",
                r#"{"item":"pen","qty":2}"#,
                &ReplayOutcome::WouldSend
            ),
            (
                "/pretty",
                r#"{"item":"ink","qty":1}"#,
                &ReplayOutcome::WouldSend
            ),
        ]
    );
}

/// A path or query changed by a value pattern or a replacement text of the user's holds no
/// `[REDACTED]`: replay could not tell it from what the client sent, and sent `/customers/
/// customer/notes` or `?token=<gone>` as if recorded so. The writer notes it; replay skips it.
async fn replay_skips_paths_and_queries_the_writer_altered(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let requests = [
        "/customers/cust-123456/notes",
        "/search?who=cust-123456",
        "/orders?token=abc123&page=2",
        "/orders/17?expand=items",
    ]
    .map(|uri| {
        http::Request::post(uri)
            .body(Full::new(Bytes::new()))
            .unwrap()
    });
    let dry = record_then_dry_run(&db, requests).await;
    let altered = ReplayOutcome::Skipped {
        reason: "path or query was stored altered (redacted or replaced)".into(),
    };
    let outcomes: Vec<_> = dry
        .entries
        .iter()
        .map(|(r, o)| (r.path.as_str(), r.query.as_deref(), o))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("/customers/customer/notes", None, &altered),
            ("/search", Some("who=customer"), &altered),
            ("/orders", Some("token=<gone>&page=2"), &altered),
            (
                "/orders/17",
                Some("expand=items"),
                &ReplayOutcome::WouldSend
            ),
        ]
    );
}

/// Sends `requests` through a layer whose redactor replaces secrets with `<gone>` and customer
/// numbers with `customer`, then dry-runs a replay of the rows they left.
/// A service behind `audit` that reads each request's body and answers 200.
/// Found by a probe:
/// - a replay into a target that audits into the same table read the rows its own requests
///   added on later pages, and sent them again, for ever;
/// - requests the recorded server refused (401, 403: an attacker's `DELETE`) were sent with
///   the operator's credentials, and carried out;
/// - a custom request id header, the trace context and `X-Forwarded-For` were sent as
///   recorded, so the target's trail took the replay for the recorded request;
/// - a target that never answers held the replay for ever.
async fn replay_sends_neither_its_own_requests_again_nor_refused_ones_nor_ids(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let since = Utc::now() - chrono::Duration::seconds(1);
    let names = [
        "x-custom-id",
        "x-correlation-id",
        "x-forwarded-for",
        "traceparent",
        "cf-connecting-ip",
        "true-client-ip",
        "x-kept",
    ]
    .map(http::HeaderName::from_static);
    let (audit, guard) = AuditLayer::builder(db.clone())
        .record_headers(names.clone())
        .request_id_header(http::HeaderName::from_static("x-custom-id"))
        .build()
        .unwrap();
    let recorded = tower::ServiceBuilder::new().layer(audit).service_fn(
        |request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async move {
            let status = match request.uri().path() {
                "/refused" => 401,
                "/forbidden" => 403,
                _ => 201,
            };
            let _ = request.into_body().collect().await;
            let mut response = http::Response::new(Full::new(Bytes::new()));
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, std::convert::Infallible>(response)
        },
    );
    for path in ["/a", "/refused", "/forbidden", "/b"] {
        let mut request = http::Request::post(path);
        for name in &names {
            request = request.header(name, format!("{name}-{path}"));
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        let response = recorded.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    guard.shutdown(Duration::from_secs(30)).await.unwrap();

    // The target stores a row for each request it gets, as an audited server on the same
    // table does, before it answers: a later page holds it.
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let target = {
        let (received, db) = (received.clone(), db.clone());
        tower::service_fn(move |request: http::Request<Full<Bytes>>| {
            let (received, db) = (received.clone(), db.clone());
            async move {
                let mut headers: Vec<String> = request
                    .headers()
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                    .collect();
                headers.sort();
                let path = request.uri().path().to_owned();
                received.lock().unwrap().push((path.clone(), headers));
                let method = request.method().to_string();
                audit_log::Entity::insert(row(Utc::now(), |m| {
                    m.method = method;
                    m.path = path;
                    m.status = Some(201);
                }))
                .exec(&db)
                .await
                .unwrap();
                let mut response = http::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = http::StatusCode::CREATED;
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let range = AuditFilter::new().since(since);
    let replay = store::replay(
        &db,
        &range,
        target,
        ReplayOptions::new()
            .page_size(1)
            .request_id_header(http::HeaderName::from_static("x-custom-id")),
    );
    let report = tokio::time::timeout(Duration::from_secs(30), replay)
        .await
        .expect("the replay ends")
        .unwrap();
    let outcomes: Vec<_> = report
        .entries
        .iter()
        .map(|(r, o)| (r.path.as_str(), o.clone()))
        .collect();
    let refused = |status| ReplayOutcome::Skipped {
        reason: format!(
            "refused when recorded ({status}); sent with the replay's headers it could be \
             carried out (include_refused to send it)"
        ),
    };
    let sent = ReplayOutcome::Sent {
        status: http::StatusCode::CREATED,
        recorded: Some(201),
    };
    assert_eq!(
        outcomes,
        [
            ("/a", sent.clone()),
            ("/refused", refused(401)),
            ("/forbidden", refused(403)),
            ("/b", sent),
        ]
    );
    let received = received.lock().unwrap().clone();
    assert_eq!(
        received,
        [
            ("/a".to_owned(), vec!["x-kept: x-kept-/a".to_owned()]),
            ("/b".to_owned(), vec!["x-kept: x-kept-/b".to_owned()]),
        ]
    );

    // Asked for, the refused ones are sent; a target that never answers fails each record
    // at the timeout, and the replay goes on.
    let never = tower::service_fn(|_: http::Request<Full<Bytes>>| {
        std::future::pending::<Result<http::Response<Full<Bytes>>, std::convert::Infallible>>()
    });
    let report = store::replay(
        &db,
        &AuditFilter::new()
            .since(since)
            .until(Utc::now())
            .path_prefix("/refused"),
        never,
        ReplayOptions::new()
            .include_refused(true)
            .timeout(Duration::from_millis(50)),
    )
    .await
    .unwrap();
    assert_eq!(
        report
            .entries
            .iter()
            .map(|(r, o)| (r.path.as_str(), o.clone()))
            .collect::<Vec<_>>(),
        [(
            "/refused",
            ReplayOutcome::Failed {
                error: "no response within 50ms".into()
            }
        )]
    );
}

fn reading_every_body(
    audit: AuditLayer,
) -> impl tower::Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<tower_audit::ResponseBody<Full<Bytes>>>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send {
    tower::ServiceBuilder::new().layer(audit).service_fn(
        |request: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async move {
            let _ = request.into_body().collect().await;
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        },
    )
}

async fn record_then_dry_run<const N: usize>(
    db: &DatabaseConnection,
    requests: [http::Request<Full<Bytes>>; N],
) -> tower_audit::store::ReplayReport {
    let since = Utc::now() - chrono::Duration::seconds(1);
    let redactor = tower_audit::sanitize::Redactor::builder()
        .replacement("<gone>")
        .add_value_pattern(r"\bcust-\d{6}\b", "customer")
        .unwrap()
        .build();
    let (audit, guard) = AuditLayer::builder(db.clone())
        .redactor(redactor)
        .build()
        .unwrap();
    let service = reading_every_body(audit);
    for request in requests {
        let response = service.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let report = guard.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.written, N as u64, "{report:?}");
    store::replay(
        db,
        &AuditFilter::new().since(since),
        service,
        ReplayOptions::new().dry_run(true),
    )
    .await
    .unwrap()
}

/// Rows whose head was cut for the queue's budget, whose path was redacted, whose recorded
/// content type is lost or cut, and gRPC calls (a JSON rendering or a description of their
/// messages, never the framed bytes) cannot be sent as they were recorded. A cut path or query
/// was reported as "would send" by a dry run and failed as an invalid URI when sent; a redacted
/// path, a body without its recorded content type and a gRPC call's JSON were sent altered.
async fn replay_skips_heads_and_grpc_calls_it_cannot_send_as_recorded(test: Arc<TestDb>) {
    let db = test.migrated().await;
    let at = days_ago(0);
    let note = |len: usize| format!(" …[truncated, {len} bytes total]");
    let json = |v: serde_json::Value| Some(v);
    fn post(path: &str, edit: impl FnOnce(&mut Model)) -> impl FnOnce(&mut Model) {
        let path = path.to_owned();
        move |m: &mut Model| {
            m.method = "POST".into();
            m.path = path;
            m.status = Some(201);
            edit(m);
        }
    }
    let rows = vec![
        row(at, post(&format!("/files/{}", note(900)), |_| {})),
        row(
            at,
            post("/search", |m| {
                m.query = Some(format!("a=1&b={}", note(700)))
            }),
        ),
        row(at, post("/reset/[REDACTED]/confirm", |_| {})),
        row(
            at,
            post("/forms", |m| {
                m.request_body = Some("a=1&b=2".into());
                m.request_bytes = 7;
                m.request_headers = json(serde_json::json!("[headers not captured, 3000 bytes]"));
            }),
        ),
        row(
            at,
            post("/typed", |m| {
                m.request_body = Some("a=1".into());
                m.request_bytes = 3;
                m.request_headers = json(serde_json::json!({
                    "content-type": format!("application/x-www-form-urlencoded; x={}", note(5000))
                }));
            }),
        ),
        row(
            at,
            post("/shop.Orders/Create", |m| {
                m.route = Some("shop.Orders/Create".into());
                m.status = Some(200);
                m.grpc_status = Some(0);
                m.grpc_messages_in = Some(1);
                m.grpc_messages_out = Some(1);
                m.request_body = Some(r#"{"item":"pen","qty":2}"#.into());
                m.request_bytes = 27;
                m.extra = json(serde_json::json!({ "request_body_altered": true }));
            }),
        ),
        row(
            at,
            post("/shop.Orders/Import", |m| {
                m.status = Some(200);
                m.request_body = Some(r#"[{"item":"pen"},{"item":"ink"}]"#.into());
                m.request_bytes = 40;
                m.request_headers =
                    json(serde_json::json!({ "content-type": "application/grpc+json" }));
            }),
        ),
        row(
            at,
            post("/shop.Orders/Upload", |m| {
                m.status = Some(200);
                m.grpc_messages_in = Some(3);
                m.request_body = Some("[binary application/grpc, 30 bytes]".into());
                m.request_bytes = 30;
            }),
        ),
        // Cut parts a replay does not send: it goes as recorded.
        row(
            at,
            post("/orders", |m| {
                // A cut request id keeps its first 128 bytes, with no note.
                m.request_id = Some("r".repeat(128));
                m.user_agent = Some(format!("{}{}", "u".repeat(128), note(2000)));
                m.request_headers = json(serde_json::json!("[headers not captured, 3000 bytes]"));
            }),
        ),
    ];
    insert(&db, rows).await;

    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let service = {
        let sent = sent.clone();
        tower::service_fn(move |request: http::Request<Full<Bytes>>| {
            sent.lock().unwrap().push(request.uri().to_string());
            async {
                let mut response = http::Response::new(Full::new(Bytes::new()));
                *response.status_mut() = http::StatusCode::CREATED;
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let skipped = |reason: &str| ReplayOutcome::Skipped {
        reason: reason.into(),
    };
    let expected = [
        skipped("path was truncated (stored as cut, the request was not)"),
        skipped("query string was truncated (stored as cut, the request was not)"),
        skipped("path was redacted"),
        skipped(
            "request headers were not captured ([headers not captured, 3000 bytes]): the \
             content-type the body was sent with is unknown",
        ),
        skipped("recorded content-type was truncated"),
        skipped("gRPC call: its messages are stored decoded or described, not framed as sent"),
        skipped("gRPC call: its messages are stored decoded or described, not framed as sent"),
        skipped("gRPC call: its messages are stored decoded or described, not framed as sent"),
    ];
    let filter = AuditFilter::new().since(at - chrono::Duration::seconds(1));
    let dry = store::replay(
        &db,
        &filter,
        service.clone(),
        ReplayOptions::new().dry_run(true),
    )
    .await
    .unwrap();
    let outcomes: Vec<_> = dry.entries.iter().map(|(_, o)| o.clone()).collect();
    let mut want: Vec<_> = expected.to_vec();
    want.push(ReplayOutcome::WouldSend);
    assert_eq!(outcomes, want);

    let report = store::replay(&db, &filter, service, ReplayOptions::new())
        .await
        .unwrap();
    let outcomes: Vec<_> = report.entries.iter().map(|(_, o)| o.clone()).collect();
    let mut want: Vec<_> = expected.to_vec();
    want.push(ReplayOutcome::Sent {
        status: http::StatusCode::CREATED,
        recorded: Some(201),
    });
    assert_eq!(outcomes, want);
    assert_eq!(*sent.lock().unwrap(), ["/orders"]);
}

/// The README lets a deployment that never looks records up by request id or client address
/// drop those two indexes for a faster writer: migrating again does not recreate them, the
/// writer still writes, and both filters still find their rows.
async fn lookup_indexes_can_be_dropped(test: Arc<TestDb>) {
    const LOOKUP: [(&str, &str); 2] = [
        ("idx_audit_log_request_id", "request_id"),
        ("idx_audit_log_client_ip_occurred", "client_ip, occurred_at"),
    ];
    let db = test.migrated().await;
    for (name, _) in LOOKUP {
        let sql = match test.backend {
            Backend::MySql => format!("DROP INDEX {name} ON audit_log"),
            _ => format!("DROP INDEX {name}"),
        };
        db.execute_unprepared(&sql).await.unwrap();
    }
    tower_audit::migrate(&db).await.unwrap();

    let (audit, guard) = AuditLayer::builder(db.clone()).build().unwrap();
    let service = tower::ServiceBuilder::new().layer(audit).service_fn(
        |_: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        },
    );
    for (request_id, peer) in [
        ("lookup-1", "192.0.2.1:4000"),
        ("lookup-2", "192.0.2.2:4000"),
    ] {
        let mut request = http::Request::get("/lookup")
            .header("x-request-id", request_id)
            .body(Full::new(Bytes::new()))
            .unwrap();
        request
            .extensions_mut()
            .insert(tower_audit::PeerAddr(peer.parse().unwrap()));
        let response = service.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let report = guard.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.written, 2, "{report:?}");

    let found = |filter: AuditFilter| {
        let db = db.clone();
        async move { all_pages(&db, &filter, 10).await }
    };
    let by_id = found(AuditFilter::new().request_id("lookup-2")).await;
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].client_ip.as_deref(), Some("192.0.2.2"));
    let by_ip = found(AuditFilter::new().client_ip("192.0.2.1")).await;
    assert_eq!(by_ip.len(), 1);
    assert_eq!(by_ip[0].request_id.as_deref(), Some("lookup-1"));

    // Neither index came back with the second migration: creating them again succeeds.
    for (name, columns) in LOOKUP {
        db.execute_unprepared(&format!("CREATE INDEX {name} ON audit_log ({columns})"))
            .await
            .unwrap();
    }
}
