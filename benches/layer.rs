//! Request-path cost of the audit layer against the bare service, in process (`oneshot`).
//!
//! ```sh
//! cargo bench --bench layer
//! ```
//!
//! The writer is stopped while requests are timed and drained before the next batch: no record
//! is dropped, and no writer work on the other core disturbs the numbers, which are the request
//! path alone. Two variants:
//! - `audited`: a new layer for each batch of up to 30,000 requests, whose records all stay in
//!   memory while the batch is timed: the first touch of that memory (page faults) is in the
//!   numbers.
//! - `audited_steady`: one layer, batches of 1,000 requests; the writer (paused while a batch is
//!   timed) writes each batch before the next, so memory is recycled as in a server whose writer
//!   keeps up. This is the per-request cost in production.
//!
//! And `journaling`: the database is away (its table is missing), so every finished request is
//! appended to the journal on the request path (sanitized, serialized and written) before its
//! response completes; the writer runs, and fails to replay, on the other core.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
#![allow(missing_docs)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};
use tower_audit::{AuditLayer, WriterGuard};

/// 291 bytes, like the issue's load test.
const JSON: &str = r#"{"customer":{"id":"c-10293","email":"jane.doe@example.com","tier":"gold"},"items":[{"sku":"BK-2231","qty":2,"price":12.5},{"sku":"PN-0032","qty":1,"price":3.75}],"shipping":{"method":"express","address":"12 Rue de la Paix, 75002 Paris"},"note":"leave at the door","coupon":"WINTER"}"#;

async fn handler<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let body = request
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    std::hint::black_box(body);
    Ok(Response::new(Full::new(Bytes::from_static(b"{\"id\":1}"))))
}

fn request(with_body: bool) -> Request<Full<Bytes>> {
    let builder = Request::post("/orders/17?expand=items")
        .header("user-agent", "bench/1.0")
        .header("x-request-id", "0192f0c1-aaaa-7bbb-8ccc-123456789abc");
    if with_body {
        builder
            .header("content-type", "application/json")
            .header("content-length", JSON.len())
            .body(Full::new(Bytes::from_static(JSON.as_bytes())))
            .expect("request")
    } else {
        builder.body(Full::new(Bytes::new())).expect("request")
    }
}

async fn drive<S, B>(service: &mut S, with_body: bool)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request(with_body))
        .await
        .expect("response");
    let body = response.into_body().collect().await.expect("body");
    std::hint::black_box(body);
}

/// Writes what the stopped writer holds, and checks that nothing was dropped.
async fn drain(guard: WriterGuard, writer: tower_audit::AuditWriter) {
    let task = tokio::spawn(writer);
    let report = guard
        .shutdown(Duration::from_secs(60))
        .await
        .expect("shutdown");
    task.await.expect("writer");
    assert_eq!(report.dropped, 0, "{report:?}");
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = runtime.block_on(async {
        let db = tower_audit::connect("sqlite::memory:").await.expect("db");
        tower_audit::migrate(&db).await.expect("migrate");
        db
    });

    let mut group = c.benchmark_group("request_path");
    group.measurement_time(Duration::from_secs(5));
    for with_body in [false, true] {
        let label = if with_body { "json_291B" } else { "no_body" };
        group.bench_function(format!("bare/{label}"), |b| {
            let service = tower::service_fn(handler::<Full<Bytes>>);
            b.to_async(&runtime).iter(|| {
                let mut service = service;
                async move { drive(&mut service, with_body).await }
            });
        });
        group.bench_function(format!("audited/{label}"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let db = db.clone();
                async move {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(30_000);
                        let (layer, guard, writer) = AuditLayer::builder(db.clone())
                            .capacity(n as usize)
                            .build_pair()
                            .expect("layer");
                        let mut service = tower::ServiceBuilder::new()
                            .layer(layer)
                            .service_fn(handler::<tower_audit::RequestBody<Full<Bytes>>>);
                        let start = Instant::now();
                        for _ in 0..n {
                            drive(&mut service, with_body).await;
                        }
                        total += start.elapsed();
                        left -= n;
                        drop(service);
                        drain(guard, writer).await;
                    }
                    total
                }
            });
        });
        group.bench_function(format!("audited_steady/{label}"), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let db = db.clone();
                async move { steady(db, iters, with_body).await }
            });
        });
        group.bench_function(format!("journaling/{label}"), |b| {
            b.to_async(&runtime)
                .iter_custom(|iters| async move { journaling(iters, with_body).await });
        });
    }
    group.finish();
}

/// Times `iters` requests through one layer in batches of 1,000, its writer paused while a batch
/// is timed and run until the batch is written between batches.
async fn steady(db: sea_orm::DatabaseConnection, iters: u64, with_body: bool) -> Duration {
    const BATCH: u64 = 1_000;
    let (layer, guard, writer) = AuditLayer::builder(db)
        .capacity(BATCH as usize)
        .flush_interval(Duration::from_millis(1))
        .build_pair()
        .expect("layer");
    let mut writer = std::pin::pin!(writer);
    let mut stats = guard.watch_stats();
    let mut service = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(handler::<tower_audit::RequestBody<Full<Bytes>>>);
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(BATCH);
        let start = Instant::now();
        for _ in 0..n {
            drive(&mut service, with_body).await;
        }
        total += start.elapsed();
        done += n;
        // The writer runs only here, while nothing is timed.
        tokio::select! {
            () = &mut writer => panic!("the writer stopped"),
            written = stats.wait_for(|s| s.written >= done) => { written.expect("stats"); }
        }
    }
    drop(service);
    let (report, ()) = tokio::join!(guard.shutdown(Duration::from_secs(60)), writer);
    let report = report.expect("shutdown");
    assert_eq!(report.dropped, 0, "{report:?}");
    total
}

/// Times `iters` requests through a layer whose database is away: each is appended to the
/// journal before its response completes.
async fn journaling(iters: u64, with_body: bool) -> Duration {
    let dir = tempfile::tempdir().expect("dir");
    // No table: every insert fails, as while the database is away.
    let db = tower_audit::connect("sqlite::memory:").await.expect("db");
    let (layer, guard, writer) = AuditLayer::builder(db)
        .journal(dir.path().join("audit.journal"))
        .journal_max_bytes(64 << 30)
        .build_pair()
        .expect("layer");
    let writer = tokio::spawn(writer);
    let mut stats = guard.watch_stats();
    let mut service = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(handler::<tower_audit::RequestBody<Full<Bytes>>>);
    // The first record fails to insert and turns the journal on.
    drive(&mut service, with_body).await;
    stats
        .wait_for(|s| s.spilled >= 1)
        .await
        .expect("journaling");
    let start = Instant::now();
    for _ in 0..iters {
        drive(&mut service, with_body).await;
    }
    let total = start.elapsed();
    drop(service);
    let report = guard
        .shutdown(Duration::from_millis(100))
        .await
        .expect("shutdown");
    writer.await.expect("writer");
    assert_eq!(
        (report.dropped, report.journaled),
        (0, iters + 1),
        "{report:?}"
    );
    total
}

criterion_group!(benches, bench);
criterion_main!(benches);
