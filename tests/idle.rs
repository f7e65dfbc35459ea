//! An idle writer sleeps: it looks at the queue once per flush interval, and takes no CPU in
//! between. Its own binary, so that no other test's CPU is counted.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tower::{Layer, ServiceExt};

/// CPU time this process has used, in clock ticks (usually 100 a second).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of proc(5); 12 and 13 after the command's `)`.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_takes_no_cpu() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("skipped: no /proc/self/stat to read CPU time from");
        return;
    }
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    tower_audit::migrate(&db).await.unwrap();
    let (layer, guard) = tower_audit::AuditLayer::builder(db)
        .flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let service = layer.layer(tower::service_fn(
        |_: http::Request<tower_audit::RequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
        },
    ));
    let request = || {
        http::Request::get("/x")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    drop(service.clone().oneshot(request()).await.unwrap());
    let mut stats = guard.watch_stats();
    stats.wait_for(|s| s.written == 1).await.unwrap();

    // Fifty flush intervals with nothing to write.
    let before = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks() - before;
    // A writer woken at once, over and over, takes a whole core: about 100 ticks here.
    assert!(used < 30, "an idle second took {used} ticks of CPU");

    // It still picks up a lone record within a flush interval or so.
    drop(service.oneshot(request()).await.unwrap());
    tokio::time::timeout(Duration::from_secs(5), stats.wait_for(|s| s.written == 2))
        .await
        .unwrap()
        .unwrap();
    guard.shutdown(Duration::from_secs(5)).await.unwrap();
}
