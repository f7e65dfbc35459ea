//! The bounded queue between the request path and the worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use tokio::sync::{Notify, watch};

use super::Overflow;
use super::stats::{Counters, WriterStats};
use crate::record::AuditRecord;

/// State shared by every producer and the worker.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) queue: ArrayQueue<AuditRecord>,
    /// Wakes the worker; producers only ring it when a batch is ready, to keep the request path
    /// free of cross-thread wake-ups.
    pub(crate) wake: Notify,
    pub(crate) stats: Counters,
    /// The latest snapshot, published by the worker after every write attempt.
    pub(crate) published: watch::Sender<WriterStats>,
    batch_size: usize,
    overflow: Overflow,
    closed: AtomicBool,
    producers_gone: AtomicBool,
    last_drop_log: AtomicU64,
}

impl Channel {
    pub(crate) fn new(capacity: usize, batch_size: usize, overflow: Overflow) -> Arc<Self> {
        Arc::new(Self {
            queue: ArrayQueue::new(capacity.max(1)),
            wake: Notify::new(),
            stats: Counters::default(),
            published: watch::Sender::new(WriterStats::default()),
            batch_size: batch_size.max(1),
            overflow,
            closed: AtomicBool::new(false),
            producers_gone: AtomicBool::new(false),
            last_drop_log: AtomicU64::new(0),
        })
    }

    /// Stops intake: records finished from now on are dropped and counted.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        self.stats.snapshot(self.queue.len())
    }

    pub(crate) fn publish(&self) {
        self.published.send_replace(self.snapshot());
    }

    pub(crate) fn producers_gone(&self) -> bool {
        self.producers_gone.load(Ordering::Acquire)
    }

    fn drop_record(&self, reason: &'static str) {
        Counters::add(&self.stats.dropped, 1);
        // Log at most once a second: a full queue under load would otherwise flood the logs.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_drop_log.load(Ordering::Relaxed);
        if now > last
            && self
                .last_drop_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                reason,
                dropped_total = self.stats.dropped.load(Ordering::Relaxed),
                "tower-audit: audit records dropped"
            );
        }
    }
}

/// The producer side, held (through the layer's `Arc`) by every service and in-flight record.
/// When the last one goes, the worker drains what is queued and stops.
#[derive(Debug)]
pub(crate) struct Intake {
    channel: Arc<Channel>,
}

impl Intake {
    pub(crate) fn new(channel: Arc<Channel>) -> Self {
        Self { channel }
    }

    pub(crate) fn count_skipped(&self) {
        Counters::add(&self.channel.stats.skipped, 1);
    }

    pub(crate) fn submit(&self, record: AuditRecord) {
        let channel = &*self.channel;
        Counters::add(&channel.stats.captured, 1);
        if channel.closed.load(Ordering::Acquire) {
            channel.drop_record("the audit writer was shut down");
            return;
        }
        match channel.overflow {
            Overflow::DropNewest => {
                if channel.queue.push(record).is_err() {
                    channel.drop_record("the audit queue is full (policy: drop newest)");
                    return;
                }
            }
            Overflow::DropOldest => {
                if channel.queue.force_push(record).is_some() {
                    channel.drop_record("the audit queue is full (policy: drop oldest)");
                }
            }
        }
        if channel.queue.len() >= channel.batch_size {
            channel.wake.notify_one();
        }
    }
}

impl Drop for Intake {
    fn drop(&mut self) {
        self.channel.producers_gone.store(true, Ordering::Release);
        self.channel.wake.notify_one();
    }
}
