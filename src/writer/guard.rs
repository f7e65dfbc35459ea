//! [`WriterGuard`]: the handle that reports on the writer and shuts it down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::intake::Channel;
use super::stats::WriterStats;
use crate::Error;

/// Handle to the background writer, returned with the layer.
///
/// Keep it for the life of the server and call [`shutdown`](Self::shutdown) when the server has
/// stopped taking requests: it stops intake, drains the queue into the database and says what it
/// wrote and what it could not. Dropping it without `shutdown` does not stop auditing — the writer
/// keeps running while any layer or service uses it and drains its queue when the last one is
/// dropped — but records still queued when the process exits are then lost, so a warning is
/// logged.
#[must_use = "dropping the guard loses queued audit records at exit; call shutdown() when the server stops"]
#[derive(Debug)]
pub struct WriterGuard {
    pub(super) channel: Arc<Channel>,
    shutdown: Option<oneshot::Sender<Instant>>,
    report: Option<oneshot::Receiver<ShutdownReport>>,
}

/// What [`WriterGuard::shutdown`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Records written to the database over the writer's life.
    pub written: u64,
    /// Records dropped at the queue over the writer's life (see [`Overflow`](crate::Overflow)).
    pub dropped: u64,
    /// Queued records that could not be written before the deadline and had no journal to go
    /// to, and records whose conversion to a row panicked (a bug, logged).
    pub lost: u64,
    /// Records left in the journal, written to the database at the next start.
    pub journaled: u64,
    /// Rows the database refused even in their safe form, kept in `<journal>.dead` over the
    /// writer's life (see [`WriterStats::dead_lettered`](crate::WriterStats::dead_lettered)).
    pub dead_lettered: u64,
    /// Time from the shutdown request to the writer's stop (next to nothing when the writer had
    /// stopped already, its layers all dropped and its queue drained).
    pub elapsed: Duration,
    /// The last database error, if any.
    pub last_error: Option<String>,
}

impl WriterGuard {
    pub(crate) fn new(
        channel: Arc<Channel>,
        shutdown: oneshot::Sender<Instant>,
        report: oneshot::Receiver<ShutdownReport>,
    ) -> Self {
        Self {
            channel,
            shutdown: Some(shutdown),
            report: Some(report),
        }
    }

    /// The writer's counters right now.
    pub fn stats(&self) -> WriterStats {
        self.channel.snapshot()
    }

    /// Snapshots of the stats, updated after every batch the writer writes or fails to write:
    /// for health checks and metrics, or to wait for the writer to catch up.
    ///
    /// ```no_run
    /// # async fn run(guard: &tower_audit::WriterGuard) {
    /// let mut stats = guard.watch_stats();
    /// stats.wait_for(|s| s.written >= 100).await.ok();
    /// # }
    /// ```
    pub fn watch_stats(&self) -> watch::Receiver<WriterStats> {
        self.channel.published.subscribe()
    }

    /// Stops intake, writes everything queued, and waits for the writer to stop.
    ///
    /// Records finished after this call (requests still in flight) are counted as dropped:
    /// those finished once the writer has reported are not in the report, and show in
    /// [`watch_stats`](Self::watch_stats) and, with `metrics`, in
    /// `tower_audit_records_dropped_total`, published as they are dropped. The
    /// writer keeps retrying a failing database until `timeout` has passed; a database call
    /// still under way then (on a stalled connection) is cut off at it. What it could not write
    /// by then is left in the journal ([`ShutdownReport::journaled`]) or, without one, counted
    /// in [`ShutdownReport::lost`] and logged.
    ///
    /// # Errors
    ///
    /// [`Error::ShutdownTimeout`] if the writer did not report within `timeout` and a short grace
    /// period, and [`Error::WriterGone`] if its task ended without reporting (it panicked, or a
    /// worker from [`build_pair`](crate::AuditLayerBuilder::build_pair) was never run).
    pub async fn shutdown(mut self, timeout: Duration) -> Result<ShutdownReport, Error> {
        let asked = Instant::now();
        let deadline = asked + timeout.min(super::FAR_FUTURE);
        self.channel.close();
        // A database call under way ends at the deadline at the latest.
        self.channel.shutdown_deadline.send_replace(Some(deadline));
        let (Some(shutdown), Some(report)) = (self.shutdown.take(), self.report.take()) else {
            return Err(Error::WriterGone("shutdown was already requested".into()));
        };
        // The writer may already have stopped on its own (every layer was dropped and the queue
        // drained); its report is then waiting in the channel.
        let _ = shutdown.send(deadline);
        // The worker abandons its work at the deadline; give it a moment to say so.
        match tokio::time::timeout_at(deadline + Duration::from_millis(500), report).await {
            Ok(Ok(mut report)) => {
                // Timed here: the writer sees the request only between its database calls, and
                // one that stopped on its own first (every layer dropped, the queue drained)
                // never sees it.
                report.elapsed = asked.elapsed();
                Ok(report)
            }
            Ok(Err(_)) => Err(Error::WriterGone(
                "the writer task ended without a report".into(),
            )),
            Err(_) => Err(Error::ShutdownTimeout(timeout)),
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if self.shutdown.is_some() {
            tracing::warn!(
                "tower-audit: WriterGuard dropped without shutdown(); records still queued when \
                 the process exits will be lost"
            );
        }
    }
}
