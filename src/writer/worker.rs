//! The worker: batches queued records and writes them, retrying while it keeps the batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::guard::ShutdownReport;
use super::intake::Channel;
use super::stats::Counters;
use super::{Overflow, row, sink};
use crate::record::AuditRecord;
use crate::sanitize::Redactor;

/// Settings of the worker, from the layer's builder.
#[derive(Clone, Debug)]
pub(crate) struct WriterConfig {
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) overflow: Overflow,
    pub(crate) redactor: Redactor,
    pub(crate) anonymize_ip: bool,
    #[cfg(feature = "jwt")]
    pub(crate) jwt: Option<Arc<crate::JwtIdentity>>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            capacity: 8192,
            batch_size: 512,
            flush_interval: Duration::from_millis(100),
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(10),
            overflow: Overflow::default(),
            redactor: Redactor::default(),
            anonymize_ip: false,
            #[cfg(feature = "jwt")]
            jwt: None,
        }
    }
}

/// The writer's worker, for running on an executor of your choice.
///
/// Returned by [`AuditLayerBuilder::build_pair`](crate::AuditLayerBuilder::build_pair); it must be
/// polled to completion (for example with `tokio::spawn`) for records to reach the database. It
/// finishes after [`WriterGuard::shutdown`](crate::WriterGuard::shutdown), or once every layer and
/// service holding the writer has been dropped and the queue is drained.
#[must_use = "the writer does nothing unless it is polled"]
pub struct AuditWriter {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

impl Future for AuditWriter {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

pub(crate) struct Worker {
    pub(crate) channel: Arc<Channel>,
    pub(crate) db: DatabaseConnection,
    pub(crate) config: WriterConfig,
    /// The shutdown deadline, once the guard asks; `None` after the guard was dropped.
    pub(crate) shutdown: Option<oneshot::Receiver<Instant>>,
    pub(crate) report: Option<oneshot::Sender<ShutdownReport>>,
    pub(crate) deadline: Option<Instant>,
}

impl Worker {
    pub(crate) fn into_writer(self) -> AuditWriter {
        AuditWriter {
            future: Box::pin(self.run()),
        }
    }

    async fn run(mut self) {
        let started = Instant::now();
        let batch_size = self.config.batch_size.max(1);
        let mut batch: Vec<AuditRecord> = Vec::with_capacity(batch_size);
        let mut next_flush = Instant::now() + self.config.flush_interval;
        let mut shutdown_at = None;
        loop {
            while batch.len() < batch_size {
                match self.channel.queue.pop() {
                    Some(record) => batch.push(record),
                    None => break,
                }
            }
            let draining = self.deadline.is_some() || self.channel.producers_gone();
            let due = Instant::now() >= next_flush;
            if batch.len() >= batch_size || (!batch.is_empty() && (draining || due)) {
                self.write(&mut batch).await;
                next_flush = Instant::now() + self.config.flush_interval;
                continue;
            }
            if batch.is_empty() && draining {
                break;
            }
            tokio::select! {
                () = self.channel.wake.notified() => {}
                () = tokio::time::sleep_until(next_flush) => {}
                deadline = next_shutdown(&mut self.shutdown) => {
                    shutdown_at = Some(Instant::now());
                    self.begin_shutdown(deadline);
                }
            }
        }
        self.channel.publish();
        let stats = self.channel.snapshot();
        let report = ShutdownReport {
            written: stats.written,
            dropped: stats.dropped,
            lost: stats.lost,
            elapsed: shutdown_at.unwrap_or(started).elapsed(),
            last_error: stats.last_error,
        };
        if report.lost > 0 || report.dropped > 0 {
            tracing::error!(
                ?report,
                "tower-audit: writer stopped with records not written"
            );
        } else {
            tracing::debug!(?report, "tower-audit: writer stopped");
        }
        if let Some(sender) = self.report.take() {
            // The guard may have stopped waiting; the report is also in the logs.
            let _ = sender.send(report);
        }
    }

    fn begin_shutdown(&mut self, deadline: Option<Instant>) {
        match deadline {
            Some(deadline) => {
                self.channel.close();
                self.deadline = Some(deadline);
            }
            None => tracing::warn!(
                "tower-audit: the WriterGuard was dropped without shutdown(); the writer keeps \
                 running and drains its queue once every layer is dropped, but records still \
                 queued when the process exits are lost"
            ),
        }
    }

    /// Writes one batch, retrying until it succeeds or the shutdown deadline passes.
    async fn write(&mut self, batch: &mut Vec<AuditRecord>) {
        let count = batch.len() as u64;
        let backend = self.db.get_database_backend();
        // Sanitize and convert once; retries reuse the statements.
        let rows = batch
            .drain(..)
            .map(|record| row::to_active_model(record, &self.config))
            .collect();
        let statements = sink::statements(backend, rows);
        let mut attempt: u32 = 0;
        let mut failing_since = None;
        loop {
            let result = match self.deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, sink::insert(&self.db, &statements))
                        .await
                    {
                        Ok(result) => result,
                        Err(_) => Err(sea_orm::DbErr::Custom(
                            "shutdown deadline passed during the insert".into(),
                        )),
                    }
                }
                None => sink::insert(&self.db, &statements).await,
            };
            let error = match result {
                Ok(()) => {
                    Counters::add(&self.channel.stats.written, count);
                    self.channel.publish();
                    if let Some(since) = failing_since {
                        tracing::warn!(
                            after = ?Instant::elapsed(&since),
                            "tower-audit: audit database is writable again"
                        );
                    }
                    return;
                }
                Err(error) => error,
            };
            attempt += 1;
            let since = *failing_since.get_or_insert_with(Instant::now);
            Counters::add(&self.channel.stats.failed_batches, 1);
            self.channel.stats.set_last_error(error.to_string());
            self.channel.publish();
            let delay = backoff(attempt, self.config.retry_initial, self.config.retry_max);
            if let Some(deadline) = self.deadline
                && Instant::now() + delay >= deadline
            {
                Counters::add(&self.channel.stats.lost, count);
                self.channel.publish();
                tracing::error!(
                    %error,
                    records = count,
                    "tower-audit: shutdown deadline reached; audit records not written"
                );
                return;
            }
            tracing::warn!(
                %error,
                attempt,
                records = count,
                failing_for = ?since.elapsed(),
                retry_in = ?delay,
                "tower-audit: audit batch insert failed; keeping the batch and retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                deadline = next_shutdown(&mut self.shutdown) => self.begin_shutdown(deadline),
            }
        }
    }
}

/// Waits for the guard: `Some(deadline)` on `shutdown()`, `None` when the guard is dropped.
/// Pending forever once either has happened.
async fn next_shutdown(shutdown: &mut Option<oneshot::Receiver<Instant>>) -> Option<Instant> {
    let Some(receiver) = shutdown else {
        return std::future::pending().await;
    };
    let received = receiver.await.ok();
    *shutdown = None;
    received
}

/// Exponential backoff with jitter: half the delay is fixed, half random, so that several writers
/// that failed together do not retry together, and no retry comes immediately.
fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(max);
    capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..40 {
            let d = backoff(attempt, initial, max);
            let ceiling = initial.saturating_mul(1 << (attempt - 1).min(16)).min(max);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(1, initial, max) <= Duration::from_millis(100));
        assert!(backoff(30, initial, max) >= Duration::from_secs(1));
    }
}
