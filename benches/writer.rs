//! Writer throughput: rows per second from a full queue into the `audit_log` table, by batch size.
//!
//! ```sh
//! cargo bench --bench writer
//! cargo bench --bench writer --features integrity   # adds the hash-chain variant
//! TOWER_AUDIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench writer --features postgres
//! ```
//!
//! Each sample fills the queue with 100,000 real records (291-byte JSON bodies, through the
//! layer) while the worker is stopped, then times the worker from start until it has written all
//! of them, sanitizing and converting included. Ten samples per variant: a million rows into the
//! table with all its indexes. SQLite writes to a file in WAL mode. `…_portable` is the same
//! batch through SeaORM `insert_many` ([`InsertMode::Portable`]) instead of `COPY` / statements
//! prepared once. Rows have no user or tenant (the partial indexes skip them) except in
//! `…_with_users`, where they carry one of 1,000 users and one of 10 tenants. Rows have no client
//! address (the `(client_ip, occurred_at)` index takes them one after the other) except in
//! `…_with_clients`, where consecutive rows come from unrelated addresses among 10,000, as a
//! public service's do: that index then takes its entries all over. `…_with_random_ids` gives
//! every request a random id (as a gateway's UUID v4 would), which the `request_id` index then
//! takes all over, where the layer's own ids (UUID v7) arrive in order.
//!
//! `…_without_lookup_indexes` drops the store's two lookup indexes (`request_id`,
//! `(client_ip, occurred_at)`) for its samples and recreates them after: what they cost the
//! writer, for a deployment that never looks records up by request id or client address.
//!
//! `writer/postgres/insert_select_alone`: PostgreSQL alone, for comparison. The same rows are
//! written by the writer into a staging schema (not timed), then one `INSERT … SELECT` copies
//! them into the table (timed): the database's own cost of inserting these rows into this table
//! with its indexes, with no client, protocol or conversion.
//!
//! `writer/replay`: records spilled to the journal while the SQLite file is locked, then the
//! time from unlocking until every record is replayed into the table.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(missing_docs)]

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tower::{Service, ServiceExt};
use tower_audit::{AuditLayer, InsertMode};

const JSON: &str = r#"{"customer":{"id":"c-10293","email":"jane.doe@example.com","tier":"gold"},"items":[{"sku":"BK-2231","qty":2,"price":12.5},{"sku":"PN-0032","qty":1,"price":3.75}],"shipping":{"method":"express","address":"12 Rue de la Paix, 75002 Paris"},"note":"leave at the door","coupon":"WINTER"}"#;
/// Records per sample; ten samples write a million rows into the indexed table.
const RECORDS: usize = 100_000;
/// Records per sample of the journal replay.
const REPLAY_RECORDS: usize = 20_000;

/// Distinct client addresses in `…_with_clients`.
const CLIENTS: usize = 10_000;

/// Queues `records` requests through `layer`; with `clients`, each comes from one of
/// [`CLIENTS`] addresses, as a server's connection hands it to the service; with `random_ids`,
/// each carries a random request id, as a gateway's UUID v4.
async fn fill(layer: &AuditLayer, records: usize, clients: bool, random_ids: bool) {
    let mut service = tower::ServiceBuilder::new()
        .layer(layer.clone())
        .service_fn(
            |request: Request<tower_audit::RequestBody<Full<Bytes>>>| async move {
                let _ = request.into_body().collect().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{\"id\":1}"))))
            },
        );
    for i in 0..records {
        let mut request = Request::post(format!("/orders/{i}?expand=items"))
            .header("content-type", "application/json")
            .header("user-agent", "bench/1.0")
            .header("x-user", format!("user-{}", i % 1000))
            .header("x-tenant", format!("tenant-{}", i % 10))
            .body(Full::new(Bytes::from_static(JSON.as_bytes())))
            .expect("request");
        if random_ids {
            let id = uuid::Uuid::from_u128(
                (i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
            );
            request.headers_mut().insert(
                "x-request-id",
                http::HeaderValue::from_str(&id.hyphenated().to_string()).expect("id"),
            );
        }
        if clients {
            let ip = common::spread_client((i % CLIENTS) as u32);
            request
                .extensions_mut()
                .insert(tower_audit::PeerAddr((ip, 40_000).into()));
        }
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("response");
        let _ = response.into_body().collect().await;
    }
}

/// One writer configuration to measure.
#[derive(Clone, Copy)]
struct Variant {
    batch_size: usize,
    mode: InsertMode,
    /// Rows carry a hash chain (feature `integrity`).
    chained: bool,
    /// Rows carry a user (1,000 of them) and a tenant (10), so the partial user and tenant
    /// indexes take an entry for each; otherwise both are null.
    users: bool,
    /// Rows come from one of [`CLIENTS`] addresses, so the `(client_ip, occurred_at)` index
    /// takes entries all over rather than one after the other; otherwise the address is null.
    clients: bool,
    /// Requests carry random request ids (a gateway's UUID v4), so the `request_id` index takes
    /// its entries all over; otherwise the layer generates time-ordered ones (UUID v7).
    random_ids: bool,
    /// The table keeps the store's two lookup indexes, `request_id` and
    /// `(client_ip, occurred_at)`; `false` drops them for the variant's samples.
    lookup_indexes: bool,
}

/// The store's lookup indexes, by name and columns, as the migration creates them.
const LOOKUP_INDEXES: [(&str, &str); 2] = [
    ("idx_audit_log_request_id", "request_id"),
    ("idx_audit_log_client_ip_occurred", "client_ip, occurred_at"),
];

/// Drops (`keep == false`) or recreates the lookup indexes.
async fn set_lookup_indexes(db: &DatabaseConnection, backend: &str, keep: bool) {
    for (name, columns) in LOOKUP_INDEXES {
        let sql = match (keep, backend) {
            (true, _) => format!("CREATE INDEX {name} ON audit_log ({columns})"),
            (false, "mysql") => format!("DROP INDEX {name} ON audit_log"),
            (false, _) => format!("DROP INDEX {name}"),
        };
        db.execute_unprepared(&sql).await.expect("lookup index");
    }
}

impl Variant {
    /// `COPY` or prepared statements, no chain, no users, every index.
    fn plain(batch_size: usize) -> Self {
        Self {
            batch_size,
            mode: InsertMode::Fast,
            chained: false,
            users: false,
            clients: false,
            random_ids: false,
            lookup_indexes: true,
        }
    }

    fn name(self, backend: &str) -> String {
        let mut name = format!("{backend}/batch_{}", self.batch_size);
        if self.mode == InsertMode::Portable {
            name.push_str("_portable");
        }
        if self.chained {
            name.push_str("_hash_chain");
        }
        if self.users {
            name.push_str("_with_users");
        }
        if self.clients {
            name.push_str("_with_clients");
        }
        if self.random_ids {
            name.push_str("_with_random_ids");
        }
        if !self.lookup_indexes {
            name.push_str("_without_lookup_indexes");
        }
        name
    }
}

fn header(parts: &http::request::Parts, name: &str) -> Option<String> {
    let value = parts.headers.get(name)?.to_str().ok()?;
    Some(value.to_owned())
}

async fn write_all(db: &DatabaseConnection, variant: Variant) -> Duration {
    let Variant {
        batch_size,
        mode,
        chained,
        users,
        clients,
        random_ids,
        lookup_indexes: _,
    } = variant;
    let mut builder = AuditLayer::builder(db.clone())
        .capacity(RECORDS)
        .batch_size(batch_size)
        .insert_mode(mode);
    if users {
        builder = builder.identify(|parts| tower_audit::Identity {
            user_id: header(parts, "x-user"),
            tenant_id: header(parts, "x-tenant"),
        });
    }
    #[cfg(feature = "integrity")]
    let builder = if chained {
        builder.integrity(tower_audit::integrity::Integrity::new(
            format!("bench-{}", fastrand_id()),
            "k1",
            vec![7; 32],
        ))
    } else {
        builder
    };
    #[cfg(not(feature = "integrity"))]
    assert!(!chained, "the integrity variant needs --features integrity");
    let (layer, guard, writer) = builder.build_pair().expect("layer");
    fill(&layer, RECORDS, clients, random_ids).await;
    drop(layer);
    let start = Instant::now();
    let task = tokio::spawn(writer);
    let report = guard
        .shutdown(Duration::from_secs(120))
        .await
        .expect("shutdown");
    let elapsed = start.elapsed();
    task.await.expect("writer");
    assert_eq!(report.written, RECORDS as u64, "{report:?}");
    elapsed
}

async fn replay_all(url: &str, dir: &std::path::Path, round: u64) -> Duration {
    use sea_orm::TransactionTrait;
    let mut options = tower_audit::connect_options(url.to_owned());
    options.map_sqlx_sqlite_opts(|o| {
        tower_audit::sqlite_settings(o).busy_timeout(Duration::from_millis(5))
    });
    let db = sea_orm::Database::connect(options).await.expect("db");
    let locker = tower_audit::connect(url.to_owned()).await.expect("db");
    let lock = locker.begin().await.expect("begin");
    lock.execute_unprepared(&format!(
        "INSERT INTO tower_audit_migrations (version, applied_at) VALUES ('lock-{round}', 'x')"
    ))
    .await
    .expect("lock");
    let (layer, guard) = AuditLayer::builder(db)
        .journal(dir.join(format!("replay-{round}.journal")))
        .flush_interval(Duration::from_millis(5))
        .max_retry_backoff(Duration::from_millis(20))
        .build()
        .expect("layer");
    fill(&layer, REPLAY_RECORDS, false, false).await;
    let mut stats = guard.watch_stats();
    stats
        .wait_for(|s| s.spilled as usize >= REPLAY_RECORDS)
        .await
        .expect("spilled");
    let start = Instant::now();
    lock.rollback().await.expect("unlock");
    stats
        .wait_for(|s| s.replayed as usize >= REPLAY_RECORDS)
        .await
        .expect("replayed");
    let elapsed = start.elapsed();
    drop(layer);
    guard
        .shutdown(Duration::from_secs(60))
        .await
        .expect("shutdown");
    elapsed
}

/// The schema `insert_select_alone` stages its rows in.
const STAGING: &str = "tower_audit_bench_staging";

/// Writes a sample's rows into the staging schema through `staging`, then times PostgreSQL
/// copying them into the table with one `INSERT … SELECT`.
async fn insert_select_alone(db: &DatabaseConnection, staging: &DatabaseConnection) -> Duration {
    use sea_orm::{IdenStatic, Iterable};
    use tower_audit::entity::audit_log::Column;
    staging
        .execute_unprepared("TRUNCATE audit_log")
        .await
        .expect("truncate staging");
    write_all(staging, Variant::plain(512)).await;
    let columns = Column::iter()
        .filter(|column| !matches!(column, Column::Id))
        .map(|column| format!("\"{}\"", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql =
        format!("INSERT INTO audit_log ({columns}) SELECT {columns} FROM {STAGING}.audit_log");
    let start = Instant::now();
    let inserted = db.execute_unprepared(&sql).await.expect("insert select");
    let elapsed = start.elapsed();
    assert_eq!(inserted.rows_affected(), RECORDS as u64);
    elapsed
}

/// A distinct chain per sample, so samples do not continue each other's chains.
#[cfg(feature = "integrity")]
fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut targets = vec![(
        "sqlite",
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
    )];
    if let Ok(url) = std::env::var("TOWER_AUDIT_TEST_POSTGRES_URL") {
        targets.push(("postgres", url));
    }
    if let Ok(url) = std::env::var("TOWER_AUDIT_TEST_MYSQL_URL") {
        targets.push(("mysql", url));
    }
    let mut group = c.benchmark_group("writer");
    // One iteration per sample: each is long enough to time on its own, and ten of them write
    // a million rows, so the later ones go into a table that already holds hundreds of thousands.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(REPLAY_RECORDS as u64));
    let replay_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("replay.db").display()
    );
    runtime.block_on(async {
        let db = tower_audit::connect(replay_url.clone()).await.expect("db");
        tower_audit::migrate(&db).await.expect("migrate");
    });
    let mut round = 0;
    group.bench_function("sqlite/replay_journal", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (url, dir) = (replay_url.clone(), dir.path().to_owned());
            round += 1;
            let base = round * 1000;
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    total += replay_all(&url, &dir, base + i).await;
                }
                total
            }
        });
    });
    for (backend, url) in targets {
        let Ok(db) = runtime.block_on(async {
            let db = tower_audit::connect(url.clone()).await?;
            db.execute_unprepared("DROP TABLE IF EXISTS audit_log")
                .await?;
            db.execute_unprepared("DROP TABLE IF EXISTS tower_audit_migrations")
                .await?;
            tower_audit::migrate(&db).await?;
            Ok::<_, tower_audit::Error>(db)
        }) else {
            eprintln!("skipping {backend}: cannot connect");
            continue;
        };
        let plain = Variant::plain;
        let mut variants = vec![
            plain(128),
            plain(512),
            Variant {
                lookup_indexes: false,
                ..plain(512)
            },
            plain(2048),
            Variant {
                mode: InsertMode::Portable,
                ..plain(512)
            },
            Variant {
                users: true,
                ..plain(512)
            },
            Variant {
                clients: true,
                ..plain(512)
            },
            Variant {
                clients: true,
                lookup_indexes: false,
                ..plain(512)
            },
            Variant {
                random_ids: true,
                ..plain(512)
            },
        ];
        if cfg!(feature = "integrity") {
            variants.push(Variant {
                chained: true,
                ..plain(512)
            });
        }
        group.throughput(Throughput::Elements(RECORDS as u64));
        for variant in variants {
            if !variant.lookup_indexes {
                runtime.block_on(set_lookup_indexes(&db, backend, false));
            }
            group.bench_function(variant.name(backend), |b| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let db = db.clone();
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += write_all(&db, variant).await;
                        }
                        total
                    }
                });
            });
            if !variant.lookup_indexes {
                runtime.block_on(set_lookup_indexes(&db, backend, true));
            }
        }
        if backend == "postgres" {
            let staging = runtime.block_on(async {
                db.execute_unprepared(&format!(
                    "DROP SCHEMA IF EXISTS {STAGING} CASCADE; CREATE SCHEMA {STAGING}"
                ))
                .await
                .expect("staging schema");
                let mut options = tower_audit::connect_options(url.clone());
                options.set_schema_search_path(STAGING);
                let staging = sea_orm::Database::connect(options).await.expect("staging");
                tower_audit::migrate(&staging)
                    .await
                    .expect("migrate staging");
                staging
            });
            group.bench_function("postgres/insert_select_alone", |b| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let (db, staging) = (db.clone(), staging.clone());
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += insert_select_alone(&db, &staging).await;
                        }
                        total
                    }
                });
            });
            runtime.block_on(async {
                staging.close().await.expect("close staging");
                db.execute_unprepared(&format!("DROP SCHEMA {STAGING} CASCADE"))
                    .await
                    .expect("drop staging");
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
