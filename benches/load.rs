//! End-to-end load comparison: bare axum, axum with tower-http's `TraceLayer`, and axum with
//! `AuditLayer` into SQLite (and PostgreSQL when `TOWER_AUDIT_TEST_POSTGRES_URL` is set), measured
//! side by side in one run, variants alternating, as ratios to bare.
//!
//! ```sh
//! cargo bench --bench load                       # server pinned to one core, load on the other
//! LOAD_SERVER_THREADS=2 cargo bench --bench load # server on both cores, beside the load
//! ```
//!
//! Each variant serves a 291-byte JSON POST; a Rust load generator (hyper client, 64 keep-alive
//! connections) runs on its own thread. The audit variants use `Overflow::Block` (unless
//! `LOAD_OVERFLOW=drop`), so nothing is dropped: what the writer cannot keep up with slows the
//! server, and the ratio shows it. The last column counts the requests that found the queue
//! full and waited for room, with their mean wait (`WriterStats::blocked` and `blocked_for`);
//! the rest waited, if at all, for a core. The records column also says how many records the
//! writer had not written when each round's load stopped, and how long it took to write them
//! after: work the round's time did not pay for (a few batches, tens of milliseconds, where the
//! writer keeps up).
//!
//! With one server thread, the server's thread and every thread it starts (the writer's blocking
//! conversions, sqlx's SQLite thread) are pinned to the first core and the load generator to the
//! second, so the writer shares the server's core as in production on one core; `LOAD_PIN=0`
//! turns pinning off. Settings: `LOAD_SECONDS` (per round, default 3), `LOAD_ROUNDS` (default 3),
//! `LOAD_VARIANTS` (a comma-separated subset of `trace,sqlite,postgres`; bare axum always runs),
//! `LOAD_BODY=api` (a 600-byte camelCase API body with timestamps and a URL instead of the
//! order), `LOAD_CAPACITY` (the audit queue's capacity, default the layer's 32,768), `LOAD_OVERFLOW=drop`
//! (the layer's default policy, `Overflow::DropNewest`, instead of `Block`: the server is not
//! slowed, and the written / dropped column shows what a full queue cost).
//!
//! By default each connection sends its next request as soon as the last one is answered, so the
//! server runs flat out and the latencies are those of a saturated server. `LOAD_RATE=N` offers
//! N requests a second instead, spread evenly over the connections: the latency a request sees
//! from a server that keeps up, which is how servers run in production.
//!
//! Every request comes from the load generator's own address, so the audit table's
//! `(client_ip, occurred_at)` index takes its entries one after the other. `LOAD_CLIENTS=N`
//! sends each request from one of N addresses instead, in `X-Forwarded-For` (the audit variants
//! trust the loopback proxy), consecutive requests from unrelated ones, as a public service
//! behind a load balancer sees them.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower_audit::{AuditLayer, Overflow, WriterGuard};

const JSON: &str = r#"{"customer":{"id":"c-10293","email":"jane.doe@example.com","tier":"gold"},"items":[{"sku":"BK-2231","qty":2,"price":12.5},{"sku":"PN-0032","qty":1,"price":3.75}],"shipping":{"method":"express","address":"12 Rue de la Paix, 75002 Paris"},"note":"leave at the door","coupon":"WINTER"}"#;
/// `LOAD_BODY=api`: a 600-byte body as a JavaScript client's API sends one (camelCase keys, a
/// UUID, timestamps, a URL, a phone number), whose strings the writer's sanitizer reads further
/// than the order's.
const API_JSON: &str = r#"{"id":"3f2b8c1e-7d4a-4b9e-a1c2-9e8f7d6c5b4a","createdAt":"2026-12-06T10:15:30.123Z","updatedAt":"2026-12-06T10:16:02Z","firstName":"Jane","lastName":"Doe","emailAddress":"jane.doe@example.com","phoneNumber":"+33 1 23 45 67 89","avatarUrl":"https://cdn.example.com/u/3f2b8c1e.png","isActive":true,"loginCount":42,"lastLoginIp":"203.0.113.7","preferences":{"language":"fr-FR","timeZone":"Europe/Paris","newsletter":false},"tags":["vip","beta-tester"],"orderIds":["ord-2026-0001","ord-2026-0002"]}"#;
const CONNECTIONS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Bare,
    Trace,
    AuditSqlite,
    AuditPostgres,
}

impl Variant {
    /// The variant's name in `LOAD_VARIANTS`.
    fn key(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Trace => "trace",
            Variant::AuditSqlite => "sqlite",
            Variant::AuditPostgres => "postgres",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare axum",
            Variant::Trace => "axum + TraceLayer",
            Variant::AuditSqlite => "axum + AuditLayer (SQLite)",
            Variant::AuditPostgres => "axum + AuditLayer (PostgreSQL)",
        }
    }
}

#[derive(Default, Clone)]
struct Totals {
    requests: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
    written: u64,
    dropped: u64,
    captured: u64,
    /// Requests that waited for room in the queue (`Overflow::Block`), and their waits in all.
    blocked: u64,
    blocked_for: Duration,
    /// Records not yet written when the load stopped, and the time the writer took after the
    /// stop to write them.
    backlog: u64,
    drained_in: Duration,
}

fn router() -> Router {
    Router::new().route(
        "/orders/{id}",
        post(|body: Bytes| async move {
            std::hint::black_box(body);
            (axum::http::StatusCode::CREATED, "{\"id\":1}")
        }),
    )
}

/// How an audit variant's writer ended its round.
struct WriterEnd {
    report: tower_audit::ShutdownReport,
    /// The writer's counters when the load stopped.
    at_stop: tower_audit::WriterStats,
    /// How long the writer took, after the load stopped, to write what was left.
    drained_in: Duration,
}

/// The audit variants' queue: `LOAD_CAPACITY` and `LOAD_OVERFLOW`.
#[derive(Clone, Copy, Debug)]
struct Queue {
    capacity: Option<usize>,
    /// `Overflow::DropNewest` (the layer's default) rather than `Block`.
    drop_newest: bool,
}

/// Starts a variant's server on its own runtime and thread; returns its address, a stop switch,
/// the writer guard, and the thread.
fn start(
    variant: Variant,
    threads: usize,
    pin: Option<(core_affinity::CoreId, core_affinity::CoreId)>,
    dir: &std::path::Path,
    clients: usize,
    queue: Queue,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<Option<WriterEnd>>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.join("load.db").display());
    let thread = std::thread::spawn(move || {
        // Threads started from here on (runtime, blocking pool, sqlx) inherit the core.
        if let Some((server, _)) = pin {
            assert!(core_affinity::set_for_current(server), "pinning the server");
        }
        let runtime = if threads <= 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .unwrap()
        };
        runtime.block_on(async move {
            let mut guard: Option<WriterGuard> = None;
            let app = match variant {
                Variant::Bare => router(),
                Variant::Trace => router().layer(tower_http::trace::TraceLayer::new_for_http()),
                Variant::AuditSqlite | Variant::AuditPostgres => {
                    let url = if variant == Variant::AuditSqlite {
                        sqlite
                    } else {
                        std::env::var("TOWER_AUDIT_TEST_POSTGRES_URL").unwrap()
                    };
                    let db = tower_audit::connect(url).await.unwrap();
                    tower_audit::migrate(&db).await.unwrap();
                    let overflow = if queue.drop_newest {
                        Overflow::DropNewest
                    } else {
                        Overflow::Block {
                            timeout: Duration::from_secs(10),
                        }
                    };
                    let mut builder = AuditLayer::builder(db).overflow(overflow);
                    if let Some(capacity) = queue.capacity {
                        builder = builder.capacity(capacity);
                    }
                    if clients > 0 {
                        builder = builder.trusted_proxies(
                            tower_audit::client_ip::TrustedProxies::cidrs(["127.0.0.0/8"]).unwrap(),
                        );
                    }
                    let (layer, g) = builder.build().unwrap();
                    guard = Some(g);
                    router().layer(layer)
                }
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let (serving_tx, serving_rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async {
                    let _ = serving_rx.await;
                })
                .await
            });
            let _ = stop_rx.await;
            // Read the writer's counters the moment the load stops: what it has not written yet
            // is the backlog the round's time did not pay for.
            let at_stop = guard.as_ref().map(WriterGuard::stats);
            let _ = serving_tx.send(());
            server.await.unwrap().unwrap();
            match (guard, at_stop) {
                (Some(guard), Some(at_stop)) => {
                    let draining = Instant::now();
                    let report = guard.shutdown(Duration::from_secs(120)).await.unwrap();
                    Some(WriterEnd {
                        report,
                        at_stop,
                        drained_in: draining.elapsed(),
                    })
                }
                _ => None,
            }
        })
    });
    (addr_rx.recv().unwrap(), stop_tx, thread)
}

/// Drives `addr` for `seconds` from a runtime on this thread; returns (requests, latencies).
fn load(
    addr: SocketAddr,
    seconds: f64,
    rate: Option<f64>,
    pin: Option<(core_affinity::CoreId, core_affinity::CoreId)>,
    clients: usize,
    body: &'static str,
) -> (u64, Vec<u32>) {
    if let Some((_, load)) = pin {
        assert!(core_affinity::set_for_current(load), "pinning the load");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(CONNECTIONS)
            .build_http();
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..CONNECTIONS {
            let client = client.clone();
            // Open loop at a fixed rate: each connection sends on its own schedule, staggered.
            let interval = rate.map(|rate| Duration::from_secs_f64(CONNECTIONS as f64 / rate));
            let mut next = tokio::time::Instant::now()
                + interval.map_or(Duration::ZERO, |i| i * c as u32 / CONNECTIONS as u32);
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut n = 0u64;
                while Instant::now() < end {
                    if let Some(interval) = interval {
                        tokio::time::sleep_until(next).await;
                        next += interval;
                    }
                    let mut request = http::Request::post(format!("http://{addr}/orders/{c}"))
                        .header("content-type", "application/json")
                        .header("user-agent", "load/1.0");
                    if clients > 0 {
                        request = request.header("x-forwarded-for", client_address(c, n, clients));
                    }
                    let request = request
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap();
                    let start = Instant::now();
                    let response = client.request(request).await.unwrap();
                    response.into_body().collect().await.unwrap();
                    latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    n += 1;
                }
                (n, latencies)
            });
        }
        let mut total = 0;
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (n, latencies) = done.unwrap();
            total += n;
            all.extend(latencies);
        }
        (total, all)
    })
}

/// The `n`th request of connection `c` comes from one of `clients` spread addresses.
fn client_address(c: usize, n: u64, clients: usize) -> String {
    let k = (n * CONNECTIONS as u64 + c as u64) % clients as u64;
    common::spread_client(k as u32).to_string()
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let seconds: f64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rounds: usize = std::env::var("LOAD_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rate: Option<f64> = std::env::var("LOAD_RATE").ok().and_then(|s| s.parse().ok());
    let queue = Queue {
        capacity: std::env::var("LOAD_CAPACITY")
            .ok()
            .and_then(|s| s.parse().ok()),
        drop_newest: std::env::var("LOAD_OVERFLOW").is_ok_and(|v| v == "drop"),
    };
    let clients: usize = std::env::var("LOAD_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = match std::env::var("LOAD_BODY").as_deref() {
        Ok("api") => API_JSON,
        _ => JSON,
    };
    let threads: usize = std::env::var("LOAD_SERVER_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pin = match (
        threads,
        std::env::var("LOAD_PIN").as_deref(),
        cores.as_slice(),
    ) {
        (1, Ok("0"), _) | (2.., _, _) => None,
        (_, _, [server, load, ..]) => Some((*server, *load)),
        _ => None,
    };
    let mut variants = vec![Variant::Bare, Variant::Trace, Variant::AuditSqlite];
    if std::env::var("TOWER_AUDIT_TEST_POSTGRES_URL").is_ok() {
        variants.push(Variant::AuditPostgres);
    }
    if let Ok(only) = std::env::var("LOAD_VARIANTS") {
        // Bare axum always runs: every ratio is to it.
        let keep: Vec<&str> = only.split(',').map(str::trim).collect();
        let known = [
            Variant::Bare,
            Variant::Trace,
            Variant::AuditSqlite,
            Variant::AuditPostgres,
        ]
        .map(Variant::key);
        if let Some(unknown) = keep.iter().find(|key| !known.contains(key)) {
            panic!(
                "LOAD_VARIANTS: unknown variant {unknown:?}; known: {}",
                known.join(",")
            );
        }
        variants.retain(|v| *v == Variant::Bare || keep.contains(&v.key()));
    }
    if variants.contains(&Variant::AuditPostgres) {
        // A fresh table for the PostgreSQL variant.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = tower_audit::connect(std::env::var("TOWER_AUDIT_TEST_POSTGRES_URL").unwrap())
                .await
                .unwrap();
            db.execute_unprepared(
                "DROP TABLE IF EXISTS audit_log, audit_checkpoint, tower_audit_migrations",
            )
            .await
            .unwrap();
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let mut totals = vec![Totals::default(); variants.len()];
    let placement = match pin {
        Some((server, load)) => format!(
            "server pinned to core {}, load to core {}",
            server.id, load.id
        ),
        None => "not pinned".into(),
    };
    let offered = rate.map_or("as fast as answered".into(), |r| {
        format!("{r:.0} req/s offered")
    });
    let from = match clients {
        0 => "from one address".to_owned(),
        n => format!("from {n} addresses (X-Forwarded-For)"),
    };
    println!(
        "load: {rounds} rounds × {seconds} s per variant, server threads: {threads} ({placement}), {CONNECTIONS} connections, {offered}, {from}"
    );
    for round in 0..rounds {
        // Alternate the order so drift on the machine does not favour one variant.
        let mut order: Vec<usize> = (0..variants.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let variant = variants[i];
            let (addr, stop, thread) = start(variant, threads, pin, dir.path(), clients, queue);
            let started = Instant::now();
            let (n, latencies) = std::thread::scope(|scope| {
                scope
                    .spawn(move || load(addr, seconds, rate, pin, clients, body))
                    .join()
                    .unwrap()
            });
            let elapsed = started.elapsed().as_secs_f64();
            let _ = stop.send(());
            let report = thread.join().unwrap();
            let t = &mut totals[i];
            t.requests += n;
            t.seconds += elapsed;
            t.latencies_us.extend(latencies);
            let mut drain = String::new();
            if let Some(end) = report {
                t.written += end.report.written;
                t.dropped += end.report.dropped;
                t.captured += n;
                t.blocked += end.at_stop.blocked;
                t.blocked_for += end.at_stop.blocked_for;
                let backlog = end.at_stop.enqueued.saturating_sub(end.at_stop.written);
                t.backlog += backlog;
                t.drained_in += end.drained_in;
                drain = format!(
                    ", {backlog} records left at the stop, written in {:.0} ms after it ({:.0} req/s with that time)",
                    end.drained_in.as_secs_f64() * 1e3,
                    n as f64 / (elapsed + end.drained_in.as_secs_f64())
                );
            }
            eprintln!(
                "  round {round}: {:<32} {:>9.0} req/s{drain}",
                variant.name(),
                n as f64 / elapsed
            );
        }
    }
    let bare_rps = totals[0].requests as f64 / totals[0].seconds;
    let mut bare_p99 = 0;
    println!();
    println!(
        "| variant | req/s | vs bare | p50 µs | p99 µs | p99 vs bare | records written / dropped | waited for room (mean wait) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for (i, variant) in variants.iter().enumerate() {
        let t = &mut totals[i];
        t.latencies_us.sort_unstable();
        let rps = t.requests as f64 / t.seconds;
        let p50 = percentile(&t.latencies_us, 0.50);
        let p99 = percentile(&t.latencies_us, 0.99);
        if i == 0 {
            bare_p99 = p99.max(1);
        }
        let audited = matches!(variant, Variant::AuditSqlite | Variant::AuditPostgres);
        let (records, blocked) = if audited {
            let mean_ms = if t.blocked == 0 {
                0.0
            } else {
                t.blocked_for.as_secs_f64() * 1e3 / t.blocked as f64
            };
            (
                format!(
                    "{} / {} (of {} requests; {} left at the stops, written in {:.0} ms after them)",
                    t.written,
                    t.dropped,
                    t.captured,
                    t.backlog,
                    t.drained_in.as_secs_f64() * 1e3
                ),
                format!(
                    "{} ({:.2}%, {mean_ms:.1} ms)",
                    t.blocked,
                    t.blocked as f64 * 100.0 / t.captured.max(1) as f64
                ),
            )
        } else {
            ("–".into(), "–".into())
        };
        println!(
            "| {} | {:.0} | {:.2} | {} | {} | {:.2} | {} | {} |",
            variant.name(),
            rps,
            rps / bare_rps,
            p50,
            p99,
            p99 as f64 / bare_p99 as f64,
            records,
            blocked
        );
    }
}
