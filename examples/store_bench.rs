//! Measures the store on a large table: a user's latest 100 rows, and export throughput.
//!
//! ```sh
//! cargo run --release --all-features --example store_bench -- sqlite 10000000
//! cargo run --release --all-features --example store_bench -- postgres://postgres@127.0.0.1/test 10000000
//! ```
//!
//! Rows are generated with SQL in bulk (1,000 users, 10 routes, one row per millisecond) into a
//! temporary SQLite file or a scratch PostgreSQL schema, which is dropped at the end. Indexes
//! are dropped during the load and rebuilt afterwards, as one would for a bulk import.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use tower_audit::store::{self, AuditFilter, Export, ExportFormat, PageRequest};

const SCHEMA: &str = "tower_audit_store_bench";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "sqlite".into());
    let rows: u64 = args.next().map_or(Ok(10_000_000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let db = if target == "sqlite" {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        tower_audit::connect(url).await?
    } else {
        let admin = tower_audit::connect(target.clone()).await?;
        admin
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            .await?;
        admin
            .execute_unprepared(&format!("CREATE SCHEMA {SCHEMA}"))
            .await?;
        let mut options = tower_audit::connect_options(target.clone());
        options.set_schema_search_path(SCHEMA);
        sea_orm::Database::connect(options).await?
    };
    tower_audit::migrate(&db).await?;
    let backend = db.get_database_backend();

    let started = Instant::now();
    load(&db, backend, rows).await?;
    println!(
        "{backend:?}: generated {rows} rows with indexes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A user's latest 100 rows, for 200 different users (each has rows / 1000 rows).
    let mut samples = Vec::new();
    for i in 0..=200u64 {
        let filter = AuditFilter::new().user(format!("u{}", (i * 7) % 1000));
        let started = Instant::now();
        let page = store::page(&db, &filter, PageRequest::newest_first(100)).await?;
        let elapsed = started.elapsed();
        assert_eq!(page.rows.len(), 100);
        if i > 0 {
            // The first query warms the connection and the statement cache.
            samples.push(elapsed);
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "{backend:?}: a user's latest 100 rows: median {:.2} ms, p95 {:.2} ms, max {:.2} ms ({} queries)",
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(1.0)),
        samples.len()
    );

    // Export of the first million rows (or all of them), NDJSON and CSV, to a sink.
    let range = rows.min(1_000_000);
    let page = store::page(&db, &AuditFilter::new(), PageRequest::oldest_first(1)).await?;
    let first = page.rows.first().map(|r| r.occurred_at).ok_or("no rows")?;
    let filter = AuditFilter::new()
        .since(first)
        .until(first + chrono::Duration::milliseconds(range as i64));
    for format in [ExportFormat::Ndjson, ExportFormat::Csv] {
        let started = Instant::now();
        let report = Export::new(format)
            .to_async_writer(&db, &filter, &mut tokio::io::sink())
            .await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{backend:?}: export {format:?} of {} rows: {:.1} s, {:.0} rows/s",
            report.rows,
            secs,
            report.rows as f64 / secs
        );
    }

    if backend == DbBackend::Postgres {
        db.execute_unprepared(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
            .await?;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Drops the secondary indexes, inserts `rows` rows in chunks of a million, rebuilds the
/// indexes and updates the planner's statistics.
async fn load(
    db: &DatabaseConnection,
    backend: DbBackend,
    rows: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let list = match backend {
        DbBackend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_audit_log_%'"
        }
        _ => {
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes \
              WHERE tablename = 'audit_log' AND indexname LIKE 'idx_audit_log_%' \
              AND schemaname = current_schema()"
        }
    };
    let indexes: Vec<(String, String)> = db
        .query_all_raw(sea_orm::Statement::from_string(backend, list))
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "name")?, row.try_get("", "sql")?)))
        .collect::<Result<_, sea_orm::DbErr>>()?;
    for (name, _) in &indexes {
        db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
    }
    let columns = "occurred_at, request_id, method, path, route, status, latency_us, client_ip, \
                   user_id, request_body, request_body_truncated, request_bytes, response_bytes, \
                   record_id";
    let epoch = (chrono::Utc::now() - chrono::Duration::days(30)).timestamp();
    let chunk = 1_000_000u64;
    let mut from = 1;
    while from <= rows {
        let to = (from + chunk - 1).min(rows);
        let sql = match backend {
            DbBackend::Sqlite => format!(
                "INSERT INTO audit_log ({columns}) \
                 WITH RECURSIVE seq(k) AS (SELECT {from} UNION ALL SELECT k + 1 FROM seq WHERE k < {to}) \
                 SELECT strftime('%Y-%m-%dT%H:%M:%S', {epoch} + k / 1000, 'unixepoch') \
                        || printf('.%06d+00:00', (k % 1000) * 1000 + 1), \
                        'req-' || k, CASE WHEN k % 4 = 0 THEN 'POST' ELSE 'GET' END, '/r/' || k, \
                        '/r' || (k % 10), CASE WHEN k % 97 = 0 THEN 500 ELSE 200 END, \
                        k % 5000, '10.0.' || (k % 250) || '.1', 'u' || (k % 1000), \
                        '{{\"k\":' || k || '}}', 0, 10, 200, 'rec-' || k \
                 FROM seq"
            ),
            _ => format!(
                "INSERT INTO audit_log ({columns}) \
                 SELECT to_timestamp({epoch}) + k * interval '1 millisecond' + interval '1 microsecond', \
                        'req-' || k, CASE WHEN k % 4 = 0 THEN 'POST' ELSE 'GET' END, '/r/' || k, \
                        '/r' || (k % 10), CASE WHEN k % 97 = 0 THEN 500 ELSE 200 END, \
                        k % 5000, '10.0.' || (k % 250) || '.1', 'u' || (k % 1000), \
                        '{{\"k\":' || k || '}}', false, 10, 200, 'rec-' || k \
                 FROM generate_series({from}, {to}) AS k"
            ),
        };
        db.execute_unprepared(&sql).await?;
        from = to + 1;
    }
    for (_, sql) in &indexes {
        db.execute_unprepared(sql).await?;
    }
    db.execute_unprepared("ANALYZE").await?;
    Ok(())
}
