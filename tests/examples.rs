//! The example servers stop on Ctrl-C or SIGTERM, flushing the trail first: SIGTERM is what
//! `kill`, `docker stop` and systemd send, and its default ends the process with the last
//! records still queued.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/hyper_server.rs"]
mod hyper_server;

#[cfg(feature = "tonic")]
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/tonic_server.rs"]
mod tonic_server;

use std::future::Future;
use std::time::Duration;

/// Sends this process SIGTERM once `stop` listens, and waits for `stop` to see it. Without a
/// handler, the signal ends the test binary, which fails the test run.
async fn stops_on_sigterm(stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    // One poll installs the handlers.
    assert!(
        tokio::time::timeout(Duration::ZERO, &mut stop)
            .await
            .is_err(),
        "stopped before any signal"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("SIGTERM did not stop the server");
}

/// One test, the servers one after the other: a signal reaches every listener of the
/// process, and one that subscribes while another test's SIGTERM is being delivered may see it.
#[tokio::test]
async fn example_servers_stop_on_sigterm() {
    stops_on_sigterm(hyper_server::shutdown_signal()).await;
    #[cfg(feature = "tonic")]
    stops_on_sigterm(tonic_server::shutdown_signal()).await;
}
