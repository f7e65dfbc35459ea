//! Instructions per request of the audit layer against the bare service, for a count that the
//! machine's load cannot disturb:
//!
//! ```sh
//! cargo build --release --example request_cost
//! for mode in bare audited; do for body in none json; do for n in 0 20000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null ./target/release/examples/request_cost $mode $body $n 2>&1 | grep refs
//! done; done; done
//! ```
//!
//! (instructions at 20000 − instructions at 0) / 20000 is the cost of one request. The writer is
//! not running (its records wait in the queue), so only the request path is counted.
//!
//! A binary's count is the same run after run, but moves by up to 300 instructions per request
//! with the length of its path (which shifts the initial stack, and with it the paths `memcpy`
//! and `malloc` take). To compare two builds, copy each to the same few paths of different
//! lengths (`/tmp/p/`, `/tmp/pp/qqqqqqq/`, …) and compare the means.
//!
//! Mode `written` then runs the writer until every record is in the table (an in-memory SQLite
//! database): (instructions of `written` − instructions of `audited`) / 20000 is what the writer
//! spends on one record, conversion, sanitizing, binding and SQLite's insert included, on all of
//! its threads.
//!
//! Mode `steady` runs the requests in batches of 1,000 with the writer writing each batch before
//! the next, as in a server that keeps up: requests and writer together, with the memory the
//! writer gives back reused by the next batch.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};
use tower_audit::AuditLayer;

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

fn request(json: bool) -> Request<Full<Bytes>> {
    // Static header values and URI: like hyper's, their clones share the bytes. The peer's
    // address, as a server's connection hands it to the service.
    let peer = std::net::SocketAddr::from(([192, 0, 2, 17], 54_321));
    let builder = Request::post(http::Uri::from_static("/orders/17?expand=items"))
        .extension(tower_audit::PeerAddr(peer))
        .header("user-agent", http::HeaderValue::from_static("bench/1.0"))
        .header(
            "x-request-id",
            http::HeaderValue::from_static("0192f0c1-aaaa-7bbb-8ccc-123456789abc"),
        );
    if json {
        builder
            .header(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            )
            .body(Full::new(Bytes::from_static(JSON.as_bytes())))
            .expect("request")
    } else {
        builder.body(Full::new(Bytes::new())).expect("request")
    }
}

async fn drive<S, B>(mut service: S, json: bool, n: usize)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request(json))
            .await
            .expect("response");
        std::hint::black_box(response.into_body().collect().await.expect("body"));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, body, n) = (
        args.get(1).map_or("audited", String::as_str),
        args.get(2).map_or("none", String::as_str),
        args.get(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000usize),
    );
    let json = body == "json";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let db = tower_audit::connect("sqlite::memory:").await.expect("db");
        tower_audit::migrate(&db).await.expect("migrate");
        let (layer, guard, writer) = AuditLayer::builder(db)
            .capacity(n.max(1))
            .build_pair()
            .expect("layer");
        if mode == "steady" {
            // As a server's steady state: batches of 1,000 requests, the writer writing each
            // batch before the next, so what it frees (or hands back) the next batch can reuse.
            let mut stats = guard.watch_stats();
            let writing = tokio::spawn(writer);
            let service = tower::ServiceBuilder::new()
                .layer(layer)
                .service_fn(handler::<tower_audit::RequestBody<Full<Bytes>>>);
            let mut sent = 0;
            while sent < n {
                let batch = (n - sent).min(1_000);
                drive(service.clone(), json, batch).await;
                sent += batch;
                stats
                    .wait_for(|s| s.written == sent as u64)
                    .await
                    .expect("writer");
            }
            drop(service);
            guard
                .shutdown(std::time::Duration::from_secs(600))
                .await
                .expect("shutdown");
            writing.await.expect("writer");
            return;
        }
        match mode {
            "bare" => drive(tower::service_fn(handler::<Full<Bytes>>), json, n).await,
            _ => {
                let service = tower::ServiceBuilder::new()
                    .layer(layer)
                    .service_fn(handler::<tower_audit::RequestBody<Full<Bytes>>>);
                drive(service, json, n).await;
            }
        }
        if mode == "written" {
            let writing = tokio::spawn(writer);
            let report = guard
                .shutdown(std::time::Duration::from_secs(600))
                .await
                .expect("shutdown");
            writing.await.expect("writer");
            assert_eq!(report.written, n as u64, "{report:?}");
        } else {
            // As before `written` existed: the queued records are dropped with the writer.
            drop((guard, writer));
        }
    });
}
