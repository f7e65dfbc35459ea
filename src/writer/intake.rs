//! The bounded queue between the request path and the worker, and what happens when it is full
//! or the database is away.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use tokio::sync::{Notify, Semaphore, watch};

use super::Overflow;
use super::journal::Journal;
use super::row::{self, RowConfig};
use super::stats::{Counters, WriterStats};
use crate::context::lock;
use crate::entity::audit_log;
use crate::record::AuditRecord;

/// The path of a request whose conversion to a row panics, for the tests of
/// [`Channel::push_row`].
#[cfg(test)]
pub(crate) const PANIC_IN_CONVERSION: &str = "/__tower_audit_test_panic_in_conversion__";

/// State shared by every producer and the worker.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) queue: ArrayQueue<AuditRecord>,
    /// Wakes the worker; producers only ring it when a batch is ready, to keep the request path
    /// free of cross-thread wake-ups.
    pub(crate) wake: Notify,
    /// While the worker waits for `wake`, how many queued records complete its batch (the batch
    /// size less the records it already took); 0 while it does not wait. Only then do producers
    /// look at the queue's length (whose head the worker moves with every record it takes) and
    /// ring: a worker busy with a backlog is not rung for every record.
    wake_at: AtomicUsize,
    pub(crate) stats: Counters,
    /// The latest snapshot, published by the worker after every write attempt.
    pub(crate) published: watch::Sender<WriterStats>,
    /// Room in the queue, reserved when a request arrives (`Block` and `Reject` only).
    pub(crate) permits: Option<Arc<Semaphore>>,
    pub(crate) journal: Option<Mutex<Journal>>,
    /// Set while the journal holds rows not yet in the database: new records go there too, so
    /// that they reach the database in order, unless the writer is catching up.
    pub(crate) journaling: AtomicBool,
    /// Set while the writer replays the journal into a database that takes rows: new records
    /// take the queue and are written beside the replay, ahead of older journaled rows. Sent
    /// to the journal, they would find it full after an outage that filled it (the file is cut
    /// only once replay reaches its end) and be dropped, although the database is back.
    catching_up: AtomicBool,
    /// Set while the journal refuses rows for its size bound (it was found full, and is cut
    /// only once replay reaches its end): new records take the queue, under its overflow policy,
    /// and the worker keeps what the journal could not take, rather than both being dropped
    /// while the database may be back already. Kept under the journal's lock.
    journal_full: AtomicBool,
    /// Rows made on the request path that a full journal refused, for the worker to keep with
    /// its own: only the records of requests that found the journal not yet full and then full
    /// (after [`journal_full`](Self::journal_full) is set, records take the queue), so at most
    /// one a concurrent request.
    unjournaled: Mutex<Vec<crate::entity::audit_log::Model>>,
    pub(crate) rows: Arc<RowConfig>,
    /// Bytes of request bodies the queued records keep, with the long request heads of the
    /// records in flight or queued (counted when copied, see `RequestText`), and the most they
    /// may keep (`queue_body_bytes`).
    body_bytes: AtomicUsize,
    body_budget: usize,
    batch_size: usize,
    overflow: Overflow,
    closed: AtomicBool,
    producers_gone: AtomicBool,
    last_drop_log: AtomicU64,
    /// The second the request path last logged a failed journal append.
    last_journal_error_log: AtomicU64,
    /// The shutdown deadline, once the guard asks: database calls under way when it comes are
    /// cut off at it (the worker sees the ask itself only between calls).
    pub(crate) shutdown_deadline: watch::Sender<Option<tokio::time::Instant>>,
    /// Where this writer's stats go in the `metrics` facade.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: super::stats::Exported,
    /// Times the worker woke from a wait, for tests that it sleeps when idle.
    #[cfg(test)]
    pub(crate) wakeups: AtomicU64,
}

pub(crate) struct ChannelConfig {
    pub(crate) capacity: usize,
    pub(crate) body_budget: usize,
    pub(crate) batch_size: usize,
    pub(crate) overflow: Overflow,
    pub(crate) journal: Option<Journal>,
    pub(crate) rows: Arc<RowConfig>,
    #[cfg(feature = "metrics")]
    pub(crate) name: Option<String>,
}

impl Channel {
    pub(crate) fn new(config: ChannelConfig) -> Arc<Self> {
        let capacity = config.capacity.max(1);
        let permits = matches!(config.overflow, Overflow::Block { .. } | Overflow::Reject)
            .then(|| Arc::new(Semaphore::new(capacity)));
        let journaling = config
            .journal
            .as_ref()
            .is_some_and(|j| j.pending_bytes() > 0);
        let channel = Self {
            queue: ArrayQueue::new(capacity),
            wake: Notify::new(),
            wake_at: AtomicUsize::new(0),
            stats: Counters::default(),
            published: watch::Sender::new(WriterStats::default()),
            permits,
            journal: config.journal.map(Mutex::new),
            journaling: AtomicBool::new(journaling),
            catching_up: AtomicBool::new(false),
            journal_full: AtomicBool::new(false),
            unjournaled: Mutex::new(Vec::new()),
            rows: config.rows,
            body_bytes: AtomicUsize::new(0),
            body_budget: config.body_budget,
            batch_size: config.batch_size.max(1),
            overflow: config.overflow,
            closed: AtomicBool::new(false),
            producers_gone: AtomicBool::new(false),
            last_drop_log: AtomicU64::new(0),
            last_journal_error_log: AtomicU64::new(0),
            shutdown_deadline: watch::Sender::new(None),
            #[cfg(feature = "metrics")]
            metrics: super::stats::Exported::new(config.name),
            #[cfg(test)]
            wakeups: AtomicU64::new(0),
        };
        channel.update_journal_bytes();
        Arc::new(channel)
    }

    /// Takes the oldest queued record, returning its body's bytes to the budget.
    pub(crate) fn pop(&self) -> Option<AuditRecord> {
        let record = self.queue.pop()?;
        self.refund(&record);
        Some(record)
    }

    /// Counts `record`'s body against the queue's body budget; a body that does not fit is let
    /// go of, and the record goes on without it. Returns whether it was.
    fn charge(&self, record: &mut AuditRecord) -> bool {
        let bytes = record.body_bytes as usize;
        if bytes == 0 {
            return false;
        }
        let before = self.body_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) <= self.body_budget {
            return false;
        }
        self.body_bytes.fetch_sub(bytes, Ordering::Relaxed);
        lock(&record.shared.capture).shed();
        record.body_bytes = 0;
        true
    }

    /// Counts `bytes` of a request's head, copied when it arrives, against the queue's budget;
    /// returns whether they fit (when not, nothing is counted and the head is cut). The record
    /// returns them when it leaves the queue or is not queued ([`refund`](Self::refund),
    /// [`refund_head`](Self::refund_head)).
    pub(crate) fn count_head(&self, bytes: usize) -> bool {
        let before = self.body_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) <= self.body_budget {
            return true;
        }
        self.body_bytes.fetch_sub(bytes, Ordering::Relaxed);
        false
    }

    /// Counts a request whose head was cut for the budget.
    pub(crate) fn count_head_cut(&self) {
        Counters::add(&self.stats.heads_cut, 1);
    }

    /// Returns the bytes [`charge`](Self::charge) and [`count_head`](Self::count_head) counted
    /// for a record leaving the queue.
    fn refund(&self, record: &AuditRecord) {
        if record.body_bytes > 0 {
            self.body_bytes
                .fetch_sub(record.body_bytes as usize, Ordering::Relaxed);
        }
        self.refund_head(&record.shared.facts);
    }

    /// Returns the bytes [`count_head`](Self::count_head) counted for a request's head: for a
    /// record that leaves the queue, or is never queued.
    pub(crate) fn refund_head(&self, facts: &crate::record::RequestFacts) {
        let bytes = facts.counted_head_bytes();
        if bytes > 0 {
            self.body_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Bytes of request bodies the queued records keep, with the long heads counted.
    #[cfg(test)]
    pub(crate) fn queued_body_bytes(&self) -> usize {
        self.body_bytes.load(Ordering::Relaxed)
    }

    /// Stops intake: records finished from now on are dropped and counted.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether the worker, holding `held` records it took from the queue, should wait for the
    /// rest of a batch: it says how many queued records would complete it first, then looks at
    /// the queue, so that a producer that pushed the batch's last record either sees the worker
    /// waiting and rings, or is seen here. Call [`done_waiting`](Self::done_waiting) once woken.
    pub(crate) fn begin_wait(&self, held: usize) -> bool {
        let need = self.batch_size.saturating_sub(held).max(1);
        self.wake_at.store(need, Ordering::SeqCst);
        if self.queue.len() >= need {
            self.wake_at.store(0, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub(crate) fn done_waiting(&self) {
        self.wake_at.store(0, Ordering::Relaxed);
        #[cfg(test)]
        self.wakeups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriterStats {
        self.stats.snapshot(self.queue.len())
    }

    /// Publishes the stats: to `watch_stats`, and to the `metrics` facade. The worker
    /// publishes, and after it stopped so does a record dropped late; the snapshot is taken
    /// under the watch's lock, so no older figure follows a newer one.
    pub(crate) fn publish(&self) {
        self.published.send_modify(|published| {
            let stats = self.snapshot();
            // Exported first, so that whoever the new stats wake finds the metrics as new.
            #[cfg(feature = "metrics")]
            self.metrics.export(&stats, published);
            *published = stats;
        });
    }

    /// The writer has stopped: what it adds to its group's gauges leaves them (see
    /// [`Exported::stopped`](super::stats::Exported::stopped)).
    #[cfg(feature = "metrics")]
    pub(crate) fn unpublish_gauges(&self) {
        self.published.send_if_modified(|published| {
            self.metrics.stopped(published);
            false
        });
    }

    pub(crate) fn producers_gone(&self) -> bool {
        self.producers_gone.load(Ordering::Acquire)
    }

    pub(crate) fn is_journaling(&self) -> bool {
        self.journaling.load(Ordering::Acquire)
    }

    /// Whether new records take the queue although the journal holds rows (see
    /// `catching_up`).
    pub(crate) fn is_catching_up(&self) -> bool {
        self.catching_up.load(Ordering::Acquire)
    }

    pub(crate) fn set_catching_up(&self, catching_up: bool) {
        self.catching_up.store(catching_up, Ordering::Release);
    }

    /// Publishes the journal's pending bytes, and whether it still refuses rows for its size
    /// bound (once replay has cut it, it takes them again).
    pub(crate) fn update_journal_bytes(&self) {
        if let Some(journal) = &self.journal {
            let journal = lock(journal);
            self.stats
                .journal_bytes
                .store(journal.pending_bytes(), Ordering::Relaxed);
            self.journal_full
                .store(journal.is_refusing(), Ordering::Release);
        }
    }

    /// Whether the journal refuses rows for its size bound (see `journal_full`).
    pub(crate) fn is_journal_full(&self) -> bool {
        self.journal_full.load(Ordering::Acquire)
    }

    /// Takes the rows a full journal refused on the request path (see `unjournaled`).
    pub(crate) fn take_unjournaled(&self) -> Vec<crate::entity::audit_log::Model> {
        std::mem::take(&mut *lock(&self.unjournaled))
    }

    /// Appends rows to the journal and keeps the writer in journaling mode until they are
    /// replayed. Returns how many it took: those that do not fit (the journal is full) are the
    /// caller's, to keep or to drop and count. Rows the journal cannot be written for (a
    /// failing disk) are dropped and counted, and the error returned.
    pub(crate) fn spill(&self, rows: &[crate::entity::audit_log::Model]) -> std::io::Result<usize> {
        let Some(journal) = &self.journal else {
            return Ok(0);
        };
        let mut journal = lock(journal);
        // Under the lock: the worker clears the flag under the same lock once it has replayed
        // everything, so a row appended here is never left behind.
        self.journaling.store(true, Ordering::Release);
        let was_unsynced = journal.is_unsynced();
        let appended = journal.append(rows);
        // The first bytes since a sync start its interval: the writer, which may be waiting
        // for an hour-long flush timer or a retry, is told, and syncs when it is due.
        if !was_unsynced && journal.sync_due_at().is_some() {
            self.wake.notify_one();
        }
        let appended = match appended {
            Ok(n) => n,
            Err(error) => {
                drop(journal);
                for _ in rows {
                    self.drop_record("the audit journal cannot be written");
                }
                return Err(error);
            }
        };
        self.stats
            .journal_bytes
            .store(journal.pending_bytes(), Ordering::Relaxed);
        self.journal_full
            .store(journal.is_refusing(), Ordering::Release);
        drop(journal);
        Counters::add(&self.stats.spilled, appended as u64);
        Ok(appended)
    }

    /// Counts (and logs, rate-limited) a request answered 503 under `Reject`.
    pub(crate) fn reject(&self) {
        Counters::add(&self.stats.rejected, 1);
        if self.log_due() {
            tracing::error!(
                rejected_total = self.stats.rejected.load(Ordering::Relaxed),
                "tower-audit: requests rejected with 503: the audit queue is full (policy: reject)"
            );
        }
    }

    /// Counts a request that found no room under `Block` and waits for it.
    pub(crate) fn count_blocked(&self) {
        Counters::add(&self.stats.blocked, 1);
    }

    /// Adds the time a request waited for room under `Block`, once its wait has ended.
    pub(crate) fn add_blocked_time(&self, waited: std::time::Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        Counters::add(&self.stats.blocked_for, micros);
    }

    /// At most one log line a second: a full queue under load would otherwise flood the logs.
    fn log_due(&self) -> bool {
        once_a_second(&self.last_drop_log)
    }

    pub(crate) fn drop_record(&self, reason: &'static str) {
        Counters::add(&self.stats.dropped, 1);
        if self.log_due() {
            tracing::error!(
                reason,
                dropped_total = self.stats.dropped.load(Ordering::Relaxed),
                "tower-audit: audit records dropped"
            );
        }
    }

    /// Drops a record finished after the writer was shut down. Out of line, like
    /// [`spill_unqueued`](Self::spill_unqueued): what every record takes stays short.
    #[cold]
    #[inline(never)]
    fn drop_unqueued(&self, record: AuditRecord) {
        self.refund_head(&record.shared.facts);
        self.drop_record("the audit writer was shut down");
        // The worker may have published its last: the count must still reach `watch_stats`
        // and the metrics, the only places it shows once the guard's report is out.
        self.publish();
    }

    /// Journals a record that does not take the queue while the journal holds rows. Should the
    /// journal be found full meanwhile, the row is left for the worker to keep.
    #[inline(never)]
    fn spill_unqueued(&self, record: AuditRecord) {
        self.refund_head(&record.shared.facts);
        self.spill_record(record, true);
    }

    /// Pushes the row of `record` ([`row::to_model`]) onto `rows`, where it is built (a row is
    /// large: moved out of the unwind guard it costs some 200 instructions more). A panic in
    /// the conversion (a bug; the sanitizer's own are caught, see
    /// [`Redactor`](crate::sanitize::Redactor)) costs that record alone, counted as lost and
    /// logged: not the batch converted with it, nor the request that journals it.
    /// `inflation`: what is left of the batch's budget for bodies decoded past their captured
    /// bytes ([`RowConfig::batch_inflation`]). `held`: the records the caller took from the
    /// queue that wait behind this one.
    pub(crate) fn push_row(
        &self,
        record: AuditRecord,
        clock: &super::WallClock,
        rows: &mut Vec<audit_log::Model>,
        inflation: &mut usize,
        held: usize,
    ) {
        // Behind: more than half the queue's capacity waits, in the queue or taken from it.
        #[cfg(feature = "jwt")]
        if let Some(jwt) = &self.rows.jwt {
            jwt.set_behind(held.saturating_add(self.queue.len()) > self.queue.capacity() / 2);
        }
        #[cfg(not(feature = "jwt"))]
        let _ = held;
        let convert = || {
            #[cfg(test)]
            if record.shared.facts.text.str(crate::record::TextPart::Path)
                == Some(PANIC_IN_CONVERSION)
            {
                panic!("a bug, made by the test");
            }
            rows.push(row::to_model(record, &self.rows, clock, inflation));
        };
        if let Err(caught) = crate::panics::catch(convert) {
            Counters::add(&self.stats.lost, 1);
            self.publish();
            tracing::error!(
                lost_total = self.stats.lost.load(Ordering::Relaxed),
                at = %caught.at,
                "tower-audit: converting an audit record to its row failed (a bug); the record is lost"
            );
        }
    }

    /// Writes one record straight to the journal from the request path: while the database is
    /// away, a finished request is on disk before its response completes. A row a full journal
    /// refuses is handed to the worker when `keep` (a record that would have taken the queue,
    /// had the journal been seen full), else dropped and counted (the queue was full too).
    fn spill_record(&self, record: AuditRecord, keep: bool) {
        let mut rows = Vec::with_capacity(1);
        let mut inflation = self.rows.batch_inflation;
        self.push_row(
            record,
            &super::WallClock::now(),
            &mut rows,
            &mut inflation,
            0,
        );
        if rows.is_empty() {
            return;
        }
        match self.spill(&rows) {
            Ok(1) => {}
            Ok(_) if keep => {
                lock(&self.unjournaled).append(&mut rows);
                self.wake.notify_one();
            }
            Ok(_) => self.drop_record("the audit journal is full"),
            // Every request would fail so (a full disk): one line a second, with the error; the
            // records are counted as dropped.
            Err(error) => {
                if once_a_second(&self.last_journal_error_log) {
                    tracing::error!(
                        %error,
                        dropped_total = self.stats.dropped.load(Ordering::Relaxed),
                        "tower-audit: cannot append to the audit journal; audit records dropped"
                    );
                }
            }
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

    pub(crate) fn channel(&self) -> &Channel {
        &self.channel
    }

    pub(crate) fn count_skipped(&self) {
        self.channel.stats.skipped.add(1);
    }

    /// Counts a record skipped after its head was copied, returning what its head counted.
    pub(crate) fn skip_record(&self, facts: &crate::record::RequestFacts) {
        self.channel.refund_head(facts);
        self.count_skipped();
    }

    pub(crate) fn submit(&self, mut record: AuditRecord) {
        let channel = &*self.channel;
        channel.stats.captured.add(1);
        if channel.closed.load(Ordering::Acquire) {
            channel.drop_unqueued(record);
            return;
        }
        if channel.journal.is_some()
            && channel.is_journaling()
            && !channel.is_catching_up()
            && !channel.is_journal_full()
        {
            channel.spill_unqueued(record);
            return;
        }
        // Block and Reject reserved room when the request arrived. A record without a
        // reservation (its wait timed out) takes only room no one reserved: pushed as it was, it
        // took the place of one that had reserved it, whose record was then dropped instead
        // (found by a probe).
        if record.permit.is_none()
            && let Some(permits) = &channel.permits
        {
            match permits.clone().try_acquire_owned() {
                Ok(permit) => record.permit = Some(permit),
                Err(_) => {
                    channel.refund_head(&record.shared.facts);
                    channel.drop_record("the audit queue is full");
                    return;
                }
            }
        }
        // Spilled past a full queue, a record goes to the journal, which has room for its
        // body: charged first against the queue's budget, it lost its body to a queue it then
        // never entered (found by a probe).
        if matches!(channel.overflow, Overflow::Spill) && channel.queue.is_full() {
            channel.refund_head(&record.shared.facts);
            channel.spill_record(record, false);
            return;
        }
        let shed = channel.charge(&mut record);
        match channel.overflow {
            Overflow::DropOldest => {
                if let Some(oldest) = channel.queue.force_push(record) {
                    channel.refund(&oldest);
                    channel.drop_record("the audit queue is full (policy: drop oldest)");
                }
            }
            Overflow::Spill => {
                if let Err(record) = channel.queue.push(record) {
                    channel.refund(&record);
                    channel.spill_record(record, false);
                }
            }
            // Under Block and Reject, each record queued holds room reserved for it.
            Overflow::DropNewest | Overflow::Block { .. } | Overflow::Reject => {
                if let Err(record) = channel.queue.push(record) {
                    channel.refund(&record);
                    channel.drop_record("the audit queue is full");
                    return;
                }
            }
        }
        if shed {
            Counters::add(&channel.stats.bodies_shed, 1);
        }
        // Pairs with `Channel::begin_wait`: either this sees the worker waiting, or the worker
        // sees this record in the queue's length before it waits.
        let need = channel.wake_at.load(Ordering::SeqCst);
        if need > 0 && channel.queue.len() >= need {
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

/// Whether a line rate-limited by `last` (the second of its last line) may be logged now, and
/// if so, takes this second: at most one such line a second, across all threads.
fn once_a_second(last: &AtomicU64) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let seen = last.load(Ordering::Relaxed);
    now > seen
        && last
            .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}
