//! The worker: batches queued records and writes them; while the database is away it keeps them
//! in the journal and replays them once the database is back.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use sea_orm::DbErr;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::Overflow;
use super::guard::ShutdownReport;
use super::intake::Channel;
use super::journal::{FsyncPolicy, Journal, JournalConfig};
use super::row::{self, RowConfig};
use super::sink::{self, InsertMode, Prebound, Sink};
use super::stats::Counters;
use crate::context::lock;
use crate::entity::audit_log::Model;
use crate::record::AuditRecord;

/// A backlog is written in transactions of up to this many records (or four batches, when
/// that is more), but never more than the queue holds. Larger transactions touch each index
/// page once for more rows: with rows spread over many users, 8,192 wrote 12% more rows/s
/// than 4,096 into SQLite.
const BACKLOG_RECORDS: usize = 8192;

/// While the writer keeps up, a conversion offers its core to whatever else is ready after this
/// many records (about 80 µs of work): on a server with few cores, the requests it shares them
/// with. Without it the scheduler lets a conversion of hundreds of records run for milliseconds
/// before a request that has arrived gets the core. `yield_now` returns at once when nothing else
/// is ready. In a backlog it does not yield: there the requests wait for the writer, and
/// yielding measured a fifth fewer requests served.
const YIELD_EVERY: usize = 16;

/// While a full journal refuses rows, the database is tried again at most this long after it
/// last failed, whatever the backoff has grown to: new records wait in memory then (what the
/// writer holds, then the queue), and past the queue's capacity its overflow policy drops
/// them, so each second the writer misses a database that is back can cost records.
const FULL_JOURNAL_RETRY: Duration = Duration::from_secs(1);

/// Whether the writer keeps up, for a batch of `batch` records with `queued` more behind it: the
/// batch is about the batch size (it takes what queued until the writer got to it, often a
/// little more) and less than a batch waits behind it. Else it is a backlog, where the writer
/// neither yields nor shortens statements (see [`YIELD_EVERY`]).
fn keeps_up(batch: usize, queued: usize, batch_size: usize) -> bool {
    let batch_size = batch_size.max(1);
    batch <= batch_size.saturating_mul(2) && queued < batch_size
}

/// Settings of the worker, from the layer's builder.
#[derive(Clone, Debug)]
pub(crate) struct WriterConfig {
    pub(crate) capacity: usize,
    pub(crate) queue_body_bytes: usize,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) insert_timeout: Duration,
    pub(crate) outage_alert: Duration,
    pub(crate) overflow: Option<Overflow>,
    pub(crate) journal: Option<JournalConfig>,
    pub(crate) rows: RowConfig,
    pub(crate) insert_mode: InsertMode,
    #[cfg(feature = "integrity")]
    pub(crate) integrity: Option<crate::integrity::Integrity>,
    /// The `writer` label of its metrics, if it was given a name.
    #[cfg(feature = "metrics")]
    pub(crate) name: Option<String>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            capacity: 32_768,
            queue_body_bytes: 64 << 20,
            batch_size: 512,
            flush_interval: Duration::from_millis(100),
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(10),
            insert_timeout: Duration::from_secs(30),
            outage_alert: Duration::from_secs(30),
            overflow: None,
            journal: None,
            rows: RowConfig::default(),
            insert_mode: InsertMode::default(),
            #[cfg(feature = "integrity")]
            integrity: None,
            #[cfg(feature = "metrics")]
            name: None,
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
    pub(crate) sink: Sink,
    pub(crate) config: WriterConfig,
    /// The shutdown deadline, once the guard asks; `None` after the guard was dropped.
    pub(crate) shutdown: Option<oneshot::Receiver<Instant>>,
    pub(crate) report: Option<oneshot::Sender<ShutdownReport>>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) outage: Outage,
    /// Rows of the next batch, converted while the previous one was inserted.
    pub(crate) converted: Option<Converted>,
    /// Rows written last, freed by the next conversion task rather than on this task.
    pub(crate) retired: Option<Vec<Model>>,
    #[cfg(feature = "integrity")]
    pub(crate) chain: Option<crate::integrity::Chain>,
    /// The dead-letter journal, opened at the first row it takes and kept: opening it scans
    /// it whole, which once per row would cost a database that refuses every row the square of
    /// their number.
    pub(crate) dead_letters: Option<Journal>,
    /// Where rows sealed in the hash chain before they were journaled end in the journal: until
    /// replay passes them, records do not take the queue beside the replay (see
    /// [`Channel::is_catching_up`]). Sealed after them, records written first would link to
    /// them as they were, and a refused one among them could not be linked around.
    pub(crate) sealed_until: Option<u64>,
    /// What is left of a replayed batch the database did not take, to be retried.
    pub(crate) unreplayed: Option<Unreplayed>,
    /// The most rows one transaction takes since an insert timed out, halved at each timeout
    /// and doubled back at each success; `None`: a batch whole. A database slow per row (a
    /// trigger, a disk that crawls) takes a backlog's batch in smaller ones within
    /// `insert_timeout`, where the whole one, retried as it was, never went in.
    pub(crate) slice: Option<usize>,
}

/// Rows read from the journal, where each ends in it, and where the batch ends (past any bytes
/// set aside after its last row).
#[derive(Debug)]
pub(crate) struct Unreplayed {
    rows: Vec<Model>,
    ends: Vec<u64>,
    offset: u64,
}

/// A batch converted to rows, with their values bound for the insert when the sink binds them.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    rows: Vec<Model>,
    prebound: Option<Prebound>,
}

/// A database that went away in the middle of a batch: the first `settled` rows were written
/// (or written in a safe form, or dead-lettered) before `error`.
#[derive(Debug)]
struct Unsettled {
    settled: usize,
    error: DbErr,
}

/// Records being converted on a blocking thread.
struct Conversion {
    task: tokio::task::JoinHandle<Converted>,
    count: u64,
}

impl Conversion {
    /// The rows; none if the conversion failed (a panic), and then the records count as lost.
    async fn finish(self, channel: &Channel) -> Converted {
        match self.task.await {
            Ok(converted) => converted,
            Err(error) => {
                Counters::add(&channel.stats.lost, self.count);
                channel.publish();
                tracing::error!(%error, records = self.count, "tower-audit: converting audit records failed");
                Converted::default()
            }
        }
    }
}

/// Bookkeeping of a failing database.
#[derive(Debug, Default)]
pub(crate) struct Outage {
    since: Option<Instant>,
    attempt: u32,
    next_try: Option<Instant>,
    /// When the last try failed.
    failed_at: Option<Instant>,
    last_alert: Option<Instant>,
    /// The missing table has been logged in this outage.
    schema_named: bool,
}

impl Worker {
    pub(crate) fn into_writer(self) -> AuditWriter {
        AuditWriter {
            future: Box::pin(self.run()),
        }
    }

    async fn run(mut self) {
        let batch_size = self.config.batch_size.max(1);
        // Under a backlog, fewer and larger transactions: each commit waits for the disk.
        let batch_limit = batch_size
            .saturating_mul(4)
            .max(BACKLOG_RECORDS)
            .min(self.config.capacity.max(batch_size));
        let mut batch: Vec<AuditRecord> = Vec::with_capacity(batch_size);
        let mut next_flush = Instant::now() + self.config.flush_interval;
        let mut shutdown_at = None;
        if self.channel.is_journaling() {
            tracing::info!(
                bytes = self.channel.stats.journal_bytes.load(Ordering::Relaxed),
                "tower-audit: replaying the audit journal before anything else"
            );
        }
        loop {
            let sync_due = self.journal_sync_due();
            if sync_due.is_some_and(|at| Instant::now() >= at) {
                self.sync_journal().await;
                continue;
            }
            if self.channel.journal.is_some() {
                let refused = self.channel.take_unjournaled();
                self.keep(refused);
            }
            let past_deadline = self.deadline.is_some_and(|d| Instant::now() >= d);
            // Replaying into a database that takes rows, records queued since are written as
            // usual, and the journal is replayed between their batches.
            let catching_up = self.channel.is_journaling() && self.channel.is_catching_up();
            // A full journal refuses rows until replay reaches its end: until the database takes
            // a replayed batch, the writer keeps the rows it could not journal and leaves new
            // records in the queue, where its bounds hold, rather than dropping both. Past the
            // shutdown deadline they are offered to the journal once more, and dropped.
            let holding = self.channel.is_journaling()
                && !catching_up
                && self.channel.is_journal_full()
                && !past_deadline;
            while !holding && batch.len() < batch_limit {
                match self.channel.pop() {
                    Some(record) => batch.push(record),
                    None => break,
                }
            }
            let draining = self.deadline.is_some() || self.channel.producers_gone();
            let due = Instant::now() >= next_flush;

            if self.channel.is_journaling() && !catching_up {
                if !holding && let Some(converted) = self.converted.take() {
                    let refused = self.spill(converted.rows).await;
                    self.keep(refused);
                    continue;
                }
                if !holding && !batch.is_empty() {
                    // Order: while the journal holds rows, newer ones queue behind them on disk.
                    let converted = self.convert(&mut batch).await;
                    let refused = self.spill(converted.rows).await;
                    self.keep(refused);
                    continue;
                }
                if !past_deadline && self.next_try().is_none_or(|t| Instant::now() >= t) {
                    self.replay().await;
                    continue;
                }
            } else if let Some(converted) = self.converted.take() {
                self.write_converting(converted, &mut batch, batch_size, batch_limit)
                    .await;
                next_flush = Instant::now() + self.config.flush_interval;
                continue;
            } else if batch.len() >= batch_size || (!batch.is_empty() && (draining || due)) {
                let converted = self.convert(&mut batch).await;
                self.write_converting(converted, &mut batch, batch_size, batch_limit)
                    .await;
                next_flush = Instant::now() + self.config.flush_interval;
                continue;
            } else if catching_up
                && !past_deadline
                && self.next_try().is_none_or(|t| Instant::now() >= t)
            {
                self.replay().await;
                continue;
            }

            let idle =
                batch.is_empty() && self.converted.is_none() && self.channel.queue.is_empty();
            if idle && draining && (!self.channel.is_journaling() || past_deadline) {
                break;
            }
            if due && batch.is_empty() {
                // Nothing to flush: look at the queue again an interval from now. Left in the
                // past, the timer would wake an idle writer at once, over and over.
                next_flush = Instant::now() + self.config.flush_interval;
            }
            // Holding, the writer waits for the next try (or a sync, or the deadline) alone: a
            // flush due, or records queued, would wake it for nothing, over and over.
            let mut wake_at = match holding {
                true => Instant::now() + self.config.retry_max,
                false => next_flush,
            };
            if let Some(sync_due) = sync_due {
                wake_at = wake_at.min(sync_due);
            }
            if let Some(next_try) = self.next_try() {
                wake_at = wake_at.min(next_try);
            }
            if let Some(deadline) = self.deadline {
                wake_at = wake_at.min(deadline);
            }
            if !holding && !self.channel.begin_wait(batch.len()) {
                continue;
            }
            tokio::select! {
                () = self.channel.wake.notified() => {}
                () = tokio::time::sleep_until(wake_at) => {}
                deadline = next_shutdown(&mut self.shutdown) => {
                    shutdown_at = Some(Instant::now());
                    self.begin_shutdown(deadline);
                }
            }
            self.channel.done_waiting();
        }
        self.finish(shutdown_at).await;
    }

    /// On SQLite, copies the rows still in the WAL into the database file and empties the WAL
    /// (`wal_checkpoint(TRUNCATE)`), so that after a writer stops the file alone holds every
    /// row written: a copy of `audit.db` taken for a review, or kept when its `-wal` file is
    /// left behind, misses none. Bounded like any call, by the shutdown deadline too. A reader
    /// still on an older snapshot keeps the WAL's tail from being copied (SQLite reports the
    /// checkpoint busy): those rows stay in the WAL, read at the next open. A failure is logged:
    /// the rows are in the WAL either way.
    async fn checkpoint_sqlite_wal(&self) {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        let db = self.sink.db();
        if db.get_database_backend() != DbBackend::Sqlite || self.channel.is_journaling() {
            return;
        }
        let checkpoint =
            Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(TRUNCATE)");
        match within(
            self.call_bound(),
            "WAL checkpoint",
            db.query_one_raw(checkpoint),
        )
        .await
        {
            // `busy` 1: a reader held a snapshot the checkpoint could not pass. The rows are
            // safe, but the file alone does not hold them all, which the README promises.
            Ok(Some(row)) if row.try_get_by_index::<i32>(0).is_ok_and(|busy| busy != 0) => {
                tracing::warn!(
                    "tower-audit: a reader kept part of SQLite's WAL from the checkpoint at the \
                     writer's stop: the database file alone misses those rows until the next open"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "tower-audit: cannot checkpoint SQLite's WAL at the writer's stop");
            }
        }
    }

    /// Stops the writer; `asked` is when it saw the shutdown request, if it saw one (a writer
    /// whose layers are all gone stops on its own, and reports no shutdown time).
    async fn finish(&mut self, asked: Option<Instant>) {
        #[cfg(feature = "integrity")]
        let bound = self.call_bound();
        #[cfg(feature = "integrity")]
        if !self.channel.is_journaling()
            && let Some(chain) = &mut self.chain
            && let Err(error) =
                within(bound, "chain checkpoint", chain.checkpoint(self.sink.db())).await
        {
            tracing::error!(%error, "tower-audit: cannot store the final chain checkpoint");
        }
        self.checkpoint_sqlite_wal().await;
        // A row a request handed over as the writer stopped (it found the journal full).
        for _ in self.channel.take_unjournaled() {
            self.channel
                .drop_record("the audit journal is full and the writer has stopped");
        }
        let mut journaled = 0;
        if let Some(journal) = &self.channel.journal {
            let mut journal = lock(journal);
            // Synced, and its lock let go: a layer built again may take it at once, though
            // services of this one may still live (and drop what they finish now).
            if let Err(error) = journal.release() {
                tracing::error!(%error, "tower-audit: cannot sync or release the audit journal");
            }
            // From the journal, not `spilled - replayed`: `replayed` counts the rows a
            // previous process left too.
            journaled = journal.pending_rows();
        }
        self.channel.publish();
        // A stopped writer is away no longer (the longest time away is the others'), and its
        // queue and journal are no longer its group's.
        #[cfg(feature = "metrics")]
        self.channel.unpublish_gauges();
        let stats = self.channel.snapshot();
        let report = ShutdownReport {
            written: stats.written,
            dropped: stats.dropped,
            lost: stats.lost,
            journaled,
            dead_lettered: stats.dead_lettered,
            elapsed: asked.map_or(Duration::ZERO, |at| at.elapsed()),
            last_error: stats.last_error,
        };
        if report.lost > 0 || report.dropped > 0 || report.dead_lettered > 0 {
            tracing::error!(
                ?report,
                "tower-audit: writer stopped with records not written"
            );
        } else if report.journaled > 0 {
            tracing::warn!(
                ?report,
                "tower-audit: writer stopped; journaled records are replayed at the next start"
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
                // What a full journal refused is lost at the deadline unless the database
                // takes it first: try it now rather than at the backoff's time.
                if self.channel.is_journal_full() && self.outage.next_try.is_some() {
                    self.outage.next_try = Some(Instant::now());
                }
            }
            None => tracing::warn!(
                "tower-audit: the WriterGuard was dropped without shutdown(); the writer keeps \
                 running and drains its queue once every layer is dropped, but records still \
                 queued when the process exits are lost"
            ),
        }
    }

    /// Writes `rows` while the next batch, when one is full already, is converted beside the
    /// insert: the database and the conversion each keep a core busy, rather than taking turns.
    /// The converted rows are written next, before anything queued after them.
    async fn write_converting(
        &mut self,
        converted: Converted,
        batch: &mut Vec<AuditRecord>,
        batch_size: usize,
        batch_limit: usize,
    ) {
        while batch.len() < batch_limit {
            match self.channel.pop() {
                Some(record) => batch.push(record),
                None => break,
            }
        }
        if batch.len() < batch_size
            || (self.channel.journal.is_some() && self.channel.is_journal_full())
        {
            // Not a full batch yet: it waits for more records or for the flush interval. With a
            // full journal, a failed write keeps its rows in memory, and a conversion started
            // beside it would be kept behind them, batch after batch (found by a probe: 8.5
            // times `capacity` held): new records wait in the queue, where its bounds hold.
            self.write(converted).await;
            return;
        }
        let conversion = self.start_conversion(batch);
        self.write(converted).await;
        let next = conversion.finish(&self.channel).await;
        // After rows a full journal refused, if the write failed and kept them.
        match &mut self.converted {
            Some(kept) => {
                kept.rows.extend(next.rows);
                kept.prebound = None;
            }
            None => self.converted = (!next.rows.is_empty()).then_some(next),
        }
    }

    /// Sanitizes and converts, once: retries and the journal reuse the rows. Dropping the
    /// records returns their queue reservations.
    async fn convert(&mut self, batch: &mut Vec<AuditRecord>) -> Converted {
        self.start_conversion(batch).finish(&self.channel).await
    }

    /// Starts converting the records of `batch` (leaving it empty) on a blocking thread, and
    /// binding the rows' values where the sink binds them: it takes milliseconds of CPU, which on
    /// an async worker thread would hold up the application's requests and this writer's own
    /// I/O.
    fn start_conversion(&mut self, batch: &mut Vec<AuditRecord>) -> Conversion {
        let records = std::mem::take(batch);
        let count = records.len() as u64;
        let steady = keeps_up(
            records.len(),
            self.channel.queue.len(),
            self.config.batch_size,
        );
        let channel = self.channel.clone();
        let retired = self.retired.take();
        // The hash chain fills in columns after the conversion: those rows are bound later.
        #[cfg(feature = "integrity")]
        let prebinder = self.sink.prebinder().filter(|_| self.chain.is_none());
        #[cfg(not(feature = "integrity"))]
        let prebinder = self.sink.prebinder();
        let task = tokio::task::spawn_blocking(move || {
            // Thousands of strings to free: here rather than on the application's runtime.
            drop(retired);
            let clock = super::WallClock::now();
            let mut rows: Vec<Model> = Vec::with_capacity(records.len());
            let mut inflation = channel.rows.batch_inflation;
            let held = records.len();
            for (i, record) in records.into_iter().enumerate() {
                if steady && i % YIELD_EVERY == YIELD_EVERY - 1 {
                    std::thread::yield_now();
                }
                channel.push_row(record, &clock, &mut rows, &mut inflation, held - i - 1);
            }
            let prebound = prebinder.and_then(|binder| binder.bind(&rows, steady));
            Converted { rows, prebound }
        });
        Conversion { task, count }
    }

    /// Writes rows, retrying while the database fails. With a journal, a failure moves the rows
    /// there at once and the worker goes on (keeping those a full journal refuses, see
    /// [`keep`](Self::keep)); without one, the batch is kept and retried until it is written or
    /// the shutdown deadline passes.
    async fn write(&mut self, converted: Converted) {
        let Converted {
            mut rows,
            mut prebound,
        } = converted;
        loop {
            // Since an insert timed out, the rows in transactions of at most `slice`.
            let take = rows.len().min(self.slice.unwrap_or(usize::MAX));
            if take < rows.len() {
                // Bound for the whole batch: not for a part of it.
                prebound = None;
            }
            // Values bound ahead serve the first attempt; a retry binds them again.
            let error = match self
                .seal_and_insert(&mut rows[..take], prebound.take())
                .await
            {
                Ok(()) => {
                    self.database_is_back();
                    self.slice = self
                        .slice
                        .map(|slice| slice.saturating_mul(2))
                        .filter(|&slice| slice < self.config.capacity);
                    if take < rows.len() {
                        rows.drain(..take);
                        continue;
                    }
                    // The next conversion frees them; at most one batch waits so.
                    if let Some(older) = self.retired.replace(rows) {
                        drop(tokio::task::spawn_blocking(move || drop(older)));
                    }
                    return;
                }
                Err(Unsettled { settled, error }) => {
                    // Rows settled before the failure are counted already: neither retried
                    // (a refused row would be dead-lettered twice) nor journaled nor lost.
                    rows.drain(..settled);
                    if is_timeout(&error) {
                        self.slice = Some((take - settled).div_ceil(2).max(1));
                    }
                    error
                }
            };
            let mut delay = self.database_failed(&error, rows.len());
            if self.channel.journal.is_some() {
                #[cfg(feature = "integrity")]
                let sealed = self.chain.is_some();
                #[cfg(not(feature = "integrity"))]
                let sealed = false;
                let refused = self.spill(rows).await;
                // Rows kept past a full journal were sealed after every row in it: they are
                // written once replay has passed its end, as the journaled ones would be.
                if sealed && let Some(journal) = &self.channel.journal {
                    self.sealed_until = Some(lock(journal).end());
                }
                self.keep(refused);
                return;
            }
            // Until the shutdown deadline, tries go on: a backoff grown past the time left is
            // cut to half of it, so that one more try fits. Given up when it did not (found by
            // a probe: `shutdown(8s)` after a longer outage gave up in 45 ms, the database back
            // a second later).
            let left = self
                .deadline
                .map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if let Some(left) = left {
                delay = delay.min(left / 2);
            }
            if left.is_some_and(|left| left < LAST_TRY) {
                Counters::add(&self.channel.stats.lost, rows.len() as u64);
                self.channel.publish();
                tracing::error!(
                    %error,
                    records = rows.len(),
                    "tower-audit: shutdown deadline reached; audit records not written"
                );
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                deadline = next_shutdown(&mut self.shutdown) => self.begin_shutdown(deadline),
            }
        }
    }

    /// Places the rows in the hash chain (when integrity is on), inserts them, and checkpoints
    /// when one is due.
    async fn seal_and_insert(
        &mut self,
        rows: &mut [Model],
        prebound: Option<Prebound>,
    ) -> Result<(), Unsettled> {
        // The chain's reads and checkpoints are bounded like inserts: a call on a stalled
        // connection would otherwise hold the writer, which could then neither journal nor stop.
        #[cfg(feature = "integrity")]
        let bound = self.call_bound();
        #[cfg(feature = "integrity")]
        if let Some(chain) = &mut self.chain {
            within(
                bound,
                "reading the chain's head",
                chain.seal(self.sink.db(), rows),
            )
            .await
            .map_err(|error| Unsettled { settled: 0, error })?;
        }
        let inserted = self.insert(rows, prebound).await;
        #[cfg(feature = "integrity")]
        let bound = self.call_bound();
        #[cfg(feature = "integrity")]
        if let Some(chain) = &mut self.chain {
            let settled = inserted
                .as_ref()
                .map_or_else(|u| u.settled, |()| rows.len());
            chain.inserted(&rows[..settled]);
            if inserted.is_ok()
                && chain.checkpoint_due()
                && let Err(error) =
                    within(bound, "chain checkpoint", chain.checkpoint(self.sink.db())).await
            {
                tracing::warn!(%error, "tower-audit: cannot store a chain checkpoint");
            }
        }
        inserted
    }

    /// Inserts rows; a row the database refuses is isolated (the batch is split until it is
    /// alone) and written in a safe form, or to the dead-letter journal. Errors returned are
    /// those of a database that is away, with how many leading rows were settled before it.
    async fn insert(
        &mut self,
        rows: &mut [Model],
        prebound: Option<Prebound>,
    ) -> Result<(), Unsettled> {
        let mut prebound = prebound;
        // Taken lowest first, so the rows before the range being tried are all settled.
        let mut pending: Vec<Range<usize>> = Vec::new();
        pending.push(0..rows.len());
        #[cfg(feature = "integrity")]
        let mut rebased = 0;
        while let Some(range) = pending.pop() {
            let unsettled = |error| Unsettled {
                settled: range.start,
                error,
            };
            // Values bound ahead are those of the whole batch: only its first attempt takes them.
            match self
                .insert_once(&rows[range.clone()], prebound.take())
                .await
            {
                Ok(()) => Counters::add(&self.channel.stats.written, range.len() as u64),
                Err(error) if sink::is_rejection(&error) => {
                    #[cfg(feature = "integrity")]
                    if rebased < MAX_REBASES
                        && is_place_taken(&error)
                        && self
                            .rebase(&mut rows[range.start..])
                            .await
                            .map_err(unsettled)?
                    {
                        // Another writer took the places: the rows not yet written, this
                        // range's and those after it, were sealed again after its rows.
                        rebased += 1;
                        self.channel.stats.set_last_error(format!(
                            "another writer appends to this writer's hash chain (two writers \
                             given one chain id; give each its own): {error}"
                        ));
                        pending.push(range);
                        continue;
                    }
                    if range.len() > 1 {
                        let middle = range.start + range.len() / 2;
                        pending.push(middle..range.end);
                        pending.push(range.start..middle);
                    } else {
                        self.rejected_row(rows, range.start, &error)
                            .await
                            .map_err(unsettled)?;
                    }
                }
                Err(error) => return Err(unsettled(error)),
            }
        }
        self.channel.publish();
        Ok(())
    }

    /// [`Chain::rebase`] of `rows`, within the bound of a database call.
    #[cfg(feature = "integrity")]
    async fn rebase(&mut self, rows: &mut [Model]) -> Result<bool, DbErr> {
        let bound = self.call_bound();
        let Some(chain) = &mut self.chain else {
            return Ok(false);
        };
        within(
            bound,
            "reading the chain's head",
            chain.rebase(self.sink.db(), rows),
        )
        .await
    }

    async fn insert_once(
        &mut self,
        rows: &[Model],
        prebound: Option<Prebound>,
    ) -> Result<(), DbErr> {
        let bound = self.call_bound();
        // A stalled connection: the outcome is unknown, which `record_id` makes safe to retry.
        within(bound, "insert", self.sink.insert(rows, prebound)).await
    }

    /// How long a database call may take: `insert_timeout`, cut short by the shutdown deadline
    /// (which the guard publishes before the worker hears of it, so one set while the call is
    /// under way counts too).
    fn call_bound(&self) -> CallBound {
        CallBound {
            timeout: self.config.insert_timeout,
            shutdown: self.channel.shutdown_deadline.subscribe(),
        }
    }

    /// Writes `rows[at]`, which the database refused, in its safe form, or dead-letters it.
    /// With the hash chain on, the rows after it are sealed again to follow what took its
    /// place; in `rows`, it is replaced by its safe form, or taken out of the chain.
    async fn rejected_row(
        &mut self,
        rows: &mut [Model],
        at: usize,
        error: &DbErr,
    ) -> Result<(), DbErr> {
        tracing::error!(
            %error,
            record_id = %rows[at].record_id,
            "tower-audit: the database refused an audit row; writing it in a safe form"
        );
        self.channel
            .stats
            .set_last_error(format!("the database refused a row: {error}"));
        #[cfg_attr(not(feature = "integrity"), allow(unused_mut))]
        let mut safe = row::safe_form(&rows[at], &error.to_string());
        #[cfg(feature = "integrity")]
        if let Some(chain) = &self.chain {
            chain.reseal(&rows[at], &mut safe);
        }
        let written = match self.insert_once(std::slice::from_ref(&safe), None).await {
            Ok(()) => {
                Counters::add(&self.channel.stats.written, 1);
                true
            }
            Err(again) if sink::is_rejection(&again) => {
                self.dead_letter(&rows[at], &again).await;
                false
            }
            Err(again) => return Err(again),
        };
        let (refused, later) = rows[at..].split_at_mut(1);
        let refused = &mut refused[0];
        #[cfg(feature = "integrity")]
        if let Some(chain) = &mut self.chain {
            chain.replaced(refused, written.then_some(&safe), later);
        }
        #[cfg(not(feature = "integrity"))]
        let _ = later;
        if written {
            *refused = safe;
        } else {
            // Out of the chain: what the chain notes as written must be in the database.
            refused.chain_seq = None;
        }
        Ok(())
    }

    /// Keeps a row the database refused even in its safe form in `<journal>.dead`: counted as
    /// `dead_lettered` there, or as `lost` if it cannot be (no journal, or it fails or is full),
    /// never as both. The file's work (its opening scan, the append and its sync) runs on a
    /// blocking thread.
    async fn dead_letter(&mut self, row: &Model, error: &DbErr) {
        let Some(config) = &self.config.journal else {
            Counters::add(&self.channel.stats.lost, 1);
            tracing::error!(%error, record_id = %row.record_id, "tower-audit: audit row lost: refused by the database and no journal is configured");
            return;
        };
        let path = super::journal::beside(&config.path, ".dead");
        // Rare rows: each is synced as it is appended (the writer's sync timer serves the main
        // journal), unless the journal is never to sync.
        let fsync = match config.fsync {
            FsyncPolicy::Never => FsyncPolicy::Never,
            _ => FsyncPolicy::EveryBatch,
        };
        let dead = JournalConfig {
            path,
            fsync,
            ..config.clone()
        };
        let kept = self.dead_letters.take();
        let row = row.clone();
        let record_id = row.record_id.clone();
        let written = tokio::task::spawn_blocking(move || {
            let open = match kept {
                Some(journal) => Ok(journal),
                None => Journal::open(&dead).map(|(journal, _)| journal),
            };
            match open {
                Ok(mut journal) => {
                    let appended = journal.append(std::slice::from_ref(&row));
                    (Some(journal), appended)
                }
                Err(error) => (None, Err(error)),
            }
        })
        .await;
        let appended = match written {
            Ok((journal, appended)) => {
                self.dead_letters = journal;
                appended
            }
            Err(error) => Err(std::io::Error::other(error)),
        };
        match appended {
            Ok(1) => Counters::add(&self.channel.stats.dead_lettered, 1),
            Ok(_) => {
                Counters::add(&self.channel.stats.lost, 1);
                tracing::error!(%record_id, "tower-audit: audit row lost: the dead-letter journal is full");
            }
            Err(error) => {
                Counters::add(&self.channel.stats.lost, 1);
                tracing::error!(%error, %record_id, "tower-audit: audit row lost: cannot write the dead-letter journal");
            }
        }
    }

    /// When the journal's appended bytes are due to be synced
    /// ([`FsyncPolicy::Interval`](super::FsyncPolicy::Interval)).
    fn journal_sync_due(&self) -> Option<Instant> {
        let journal = self.channel.journal.as_ref()?;
        lock(journal).sync_due_at().map(Instant::from_std)
    }

    /// Forces the journal's appended bytes to disk off the async threads, without holding the
    /// journal's lock while the disk works: requests that append meanwhile do not wait.
    async fn sync_journal(&mut self) {
        let Some(journal) = &self.channel.journal else {
            return;
        };
        // Taken here, not on the blocking thread: whatever happens there, the next try is an
        // interval away, never at once.
        let begun = lock(journal).begin_sync();
        let synced = match begun {
            Ok(handle) => {
                let synced = tokio::task::spawn_blocking(move || handle.sync_data())
                    .await
                    .unwrap_or_else(|error| Err(std::io::Error::other(error)));
                if synced.is_err() {
                    lock(journal).sync_failed();
                }
                synced
            }
            Err(error) => Err(error),
        };
        if let Err(error) = synced {
            tracing::error!(%error, "tower-audit: cannot sync the audit journal; trying again in an interval");
        }
    }

    /// Appends rows to the journal off the async threads. Returns the rows a full journal
    /// refused, for [`keep`](Self::keep).
    async fn spill(&mut self, rows: Vec<Model>) -> Vec<Model> {
        let channel = self.channel.clone();
        let result = tokio::task::spawn_blocking(move || {
            let appended = channel.spill(&rows);
            (rows, appended)
        })
        .await;
        let refused = match result {
            Ok((mut rows, Ok(appended))) => {
                rows.drain(..appended);
                rows
            }
            Ok((_, Err(error))) => {
                tracing::error!(%error, "tower-audit: cannot append to the audit journal");
                Vec::new()
            }
            Err(error) => {
                tracing::error!(%error, "tower-audit: journal task failed");
                Vec::new()
            }
        };
        self.channel.publish();
        refused
    }

    /// Keeps rows a full journal refused, after those kept already, to be written once the
    /// database takes a replayed batch (see `holding` in [`run`](Self::run)); past the shutdown
    /// deadline they are dropped and counted.
    fn keep(&mut self, rows: Vec<Model>) {
        if rows.is_empty() {
            return;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            for _ in &rows {
                self.channel.drop_record("the audit journal is full");
            }
            self.channel.publish();
            return;
        }
        match &mut self.converted {
            Some(kept) => {
                kept.rows.extend(rows);
                kept.prebound = None;
            }
            None => {
                self.converted = Some(Converted {
                    rows,
                    prebound: None,
                })
            }
        }
    }

    /// When to try the database next: at the backoff's time, but while a full journal refuses
    /// rows no later than [`FULL_JOURNAL_RETRY`] after the last failure.
    fn next_try(&self) -> Option<Instant> {
        let next = self.outage.next_try?;
        Some(match self.outage.failed_at {
            Some(failed) if self.channel.is_journal_full() => next.min(failed + FULL_JOURNAL_RETRY),
            _ => next,
        })
    }

    /// Replays one batch from the journal.
    async fn replay(&mut self) {
        // A batch that failed is retried as it was, not read again: sealed in the hash chain
        // at its first try, it keeps its positions. Sealed again, it would take new ones at
        // each try, and those it took before would be missing from the chain.
        let batch = match self.unreplayed.take() {
            Some(batch) => batch,
            None => match self.read_journal().await {
                Some(batch) => batch,
                None => return,
            },
        };
        let Unreplayed {
            mut rows,
            mut ends,
            offset,
        } = batch;
        if rows.is_empty() {
            self.database_is_back();
            self.sealed_until = None;
            self.channel.update_journal_bytes();
            self.channel.publish();
            return;
        }
        #[cfg(feature = "integrity")]
        let mut passed_over = false;
        // Rows an earlier attempt wrote although it failed (an insert cut off at a deadline or a
        // timeout after the database had taken it) are still in the journal, unsealed. Sealed
        // now, each would take a place in the hash chain that the insert then skips as a
        // duplicate, leaving a gap `verify` reports: they are passed over instead. (Without the
        // chain, the insert skipping them is enough.) Such an insert can land at any time, after
        // this writer read the chain's head too: the rows sealed next must then follow the
        // places it took. The head is read first, so that rows landing between the two reads
        // are found here; rows landing after both were sealed by the earlier process from that
        // same head, in the journal's order, as they are sealed here, and the insert skips them.
        #[cfg(feature = "integrity")]
        let bound = self.call_bound();
        #[cfg(feature = "integrity")]
        if let Some(chain) = &mut self.chain
            && rows.iter().any(|row| row.chain_seq.is_none())
        {
            let sink = &self.sink;
            let held = within(bound, "reading which rows are written", async {
                chain.seal(sink.db(), &mut []).await?;
                sink.held(&rows).await
            })
            .await;
            match held {
                Ok(held) if !held.is_empty() => {
                    chain.landed(held.values().flatten());
                    let (kept, kept_ends): (Vec<Model>, Vec<u64>) = rows
                        .into_iter()
                        .zip(ends)
                        .filter(|(row, _)| {
                            row.chain_seq.is_some() || !held.contains_key(&row.record_id)
                        })
                        .unzip();
                    rows = kept;
                    ends = kept_ends;
                    passed_over = true;
                }
                Ok(_) => {}
                Err(error) => {
                    self.database_failed(&error, rows.len());
                    self.unreplayed = Some(Unreplayed { rows, ends, offset });
                    return;
                }
            }
        }
        let (settled, error) = if rows.is_empty() {
            (0, None)
        } else {
            match self.seal_and_insert(&mut rows, None).await {
                Ok(()) => {
                    // The probe went through: replay in whole batches again.
                    self.database_is_back();
                    (rows.len(), None)
                }
                Err(Unsettled { settled, error }) => (settled, Some(error)),
            }
        };
        #[cfg(not(feature = "integrity"))]
        let passed_over = false;
        // Every row of the batch written before (passed over): it leaves the journal.
        if settled > 0 || (passed_over && rows.is_empty()) {
            // Rows settled before a failure leave the journal too: replayed again, a refused
            // one would be dead-lettered twice. The whole batch: past any bytes set aside after
            // its last row too.
            Counters::add(&self.channel.stats.replayed, settled as u64);
            let through = match settled == rows.len() {
                true => offset,
                false => ends[settled - 1],
            };
            let channel = self.channel.clone();
            let marked = tokio::task::spawn_blocking(move || {
                let Some(journal) = &channel.journal else {
                    return Ok(None);
                };
                super::journal::mark_replayed_unlocked(journal, through)?;
                let journal = lock(journal);
                Ok::<_, std::io::Error>(Some((journal.replayed(), journal.pending_bytes())))
            })
            .await;
            match marked {
                Ok(Ok(Some((replayed, pending)))) => {
                    if self
                        .sealed_until
                        .is_some_and(|until| pending == 0 || replayed >= until)
                    {
                        self.sealed_until = None;
                    }
                }
                _ => tracing::error!("tower-audit: cannot record the journal's replay position"),
            }
            // The database took rows: new records may take the queue, unless rows sealed
            // before they were journaled are still to come.
            if error.is_none() && self.sealed_until.is_none() {
                self.channel.set_catching_up(true);
            }
            self.channel.update_journal_bytes();
            self.channel.publish();
        }
        if let Some(error) = error {
            self.database_failed(&error, rows.len() - settled);
            self.unreplayed = Some(Unreplayed {
                rows: rows.split_off(settled),
                ends: ends.split_off(settled),
                offset,
            });
        }
    }

    /// Reads the next batch from the journal; clears journaling mode once it has caught up.
    /// `None` when there is nothing to replay this time (the journal cannot be read).
    async fn read_journal(&mut self) -> Option<Unreplayed> {
        // While the database is failing, probe with a single row: a failed attempt then costs
        // next to nothing, in memory or in time, however large the batches are.
        let batch_size = if self.outage.since.is_some() {
            1
        } else {
            self.config.batch_size.max(1)
        };
        let channel = self.channel.clone();
        let read = tokio::task::spawn_blocking(move || {
            let Some(journal) = &channel.journal else {
                return Ok((Vec::new(), Vec::new(), 0, 0));
            };
            let mut locked = lock(journal);
            let (rows, offset) = locked.read_pending(batch_size)?;
            let ends = locked.row_ends().to_vec();
            let set_aside = locked.take_set_aside();
            if rows.is_empty() {
                if offset != locked.replayed() {
                    // Everything is replayed, but for bytes set aside: step past them, with
                    // the lock let go over the syncs.
                    drop(locked);
                    super::journal::mark_replayed_unlocked(journal, offset)?;
                    locked = lock(journal);
                }
                // Under the journal lock: no producer can be appending now. One that did
                // while it was let go left rows for the next replay.
                if locked.pending_bytes() == 0 {
                    channel.journaling.store(false, Ordering::Release);
                    channel.set_catching_up(false);
                }
            }
            Ok::<_, std::io::Error>((rows, ends, offset, set_aside))
        })
        .await;
        match read {
            Ok(Ok((rows, ends, offset, set_aside))) => {
                if set_aside > 0 {
                    Counters::add(&self.channel.stats.journal_unreadable, set_aside);
                    tracing::error!(
                        stretches = set_aside,
                        "tower-audit: journaled bytes that cannot be read (a bad checksum or \
                         header, or not a row) were moved to the journal's `.unreadable` file; \
                         replay goes on without them"
                    );
                }
                Some(Unreplayed { rows, ends, offset })
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "tower-audit: cannot read the audit journal; leaving it for inspection");
                // Its rows wait for the next start-up: say so where health checks look.
                self.channel.stats.set_last_error(format!(
                    "cannot read the audit journal, whose rows wait for the next start-up: \
                     {error}"
                ));
                self.channel.publish();
                self.channel.journaling.store(false, Ordering::Release);
                self.channel.set_catching_up(false);
                None
            }
            Err(error) => {
                tracing::error!(%error, "tower-audit: journal task failed");
                None
            }
        }
    }

    /// Counts and logs a failure; returns how long to wait before the next attempt.
    fn database_failed(&mut self, error: &DbErr, records: usize) -> Duration {
        // New records go to the journal again, behind the rows there.
        self.channel.set_catching_up(false);
        let now = Instant::now();
        let since = *self.outage.since.get_or_insert(now);
        self.channel.stats.set_away(Some(since.into_std()));
        self.outage.attempt += 1;
        let delay = backoff(
            self.outage.attempt,
            self.config.retry_initial,
            self.config.retry_max,
        );
        self.outage.next_try = Some(now + delay);
        self.outage.failed_at = Some(now);
        Counters::add(&self.channel.stats.failed_batches, 1);
        self.channel.stats.set_last_error(error.to_string());
        let schema_missing = sink::is_missing_schema(error);
        self.channel
            .stats
            .schema_missing
            .store(schema_missing, Ordering::Relaxed);
        self.channel.publish();
        let away = now - since;
        if schema_missing && !self.outage.schema_named {
            // Not an outage that passes on its own: say so now, not after `outage_alert`.
            self.outage.schema_named = true;
            let kept = match self.channel.journal {
                Some(_) => "kept in the journal",
                None => {
                    "kept in memory (no journal: lost at shutdown if the table is still missing)"
                }
            };
            tracing::error!(
                %error,
                records,
                kept,
                "tower-audit: the audit_log table or one of its columns is missing: the database \
                 was not migrated. Run `tower-audit migrate` or call `tower_audit::migrate(&db)`; \
                 the audit records are kept and written once the table is there"
            );
            return delay;
        }
        let alert_due = self
            .outage
            .last_alert
            .is_none_or(|last| now - last >= self.config.outage_alert);
        if away >= self.config.outage_alert && alert_due {
            self.outage.last_alert = Some(now);
            tracing::error!(
                %error,
                away = ?away,
                journal_bytes = self.channel.stats.journal_bytes.load(Ordering::Relaxed),
                "tower-audit: the audit database has been failing for too long"
            );
        } else {
            tracing::warn!(
                %error,
                attempt = self.outage.attempt,
                records,
                failing_for = ?away,
                retry_in = ?delay,
                "tower-audit: audit insert failed; keeping the records and retrying"
            );
        }
        delay
    }

    fn database_is_back(&mut self) {
        let schema_was_missing = self
            .channel
            .stats
            .schema_missing
            .swap(false, Ordering::Relaxed);
        if let Some(since) = self.outage.since.take() {
            tracing::warn!(after = ?since.elapsed(), "tower-audit: audit database is writable again");
            self.channel.stats.set_away(None);
        }
        // The insert published before this was called: again, without the flag.
        if schema_was_missing {
            self.channel.publish();
        }
        self.outage = Outage::default();
    }
}

/// How long a database call may take: at most `timeout`, and no later than a shutdown deadline
/// the guard sets, even while the call is under way.
struct CallBound {
    timeout: Duration,
    shutdown: watch::Receiver<Option<Instant>>,
}

/// Runs a database call within its bound; past it, the call is dropped and fails, as a database
/// that is away (its outcome is unknown, which `record_id` makes safe to retry or replay). A
/// shutdown asked while a call hangs on a stalled connection is so kept to its deadline: the
/// rows are journaled (or counted lost) then, rather than the writer missing the deadline and
/// the process exiting with them still in memory.
async fn within<T>(
    bound: CallBound,
    what: &str,
    call: impl Future<Output = Result<T, DbErr>>,
) -> Result<T, DbErr> {
    let CallBound {
        timeout,
        mut shutdown,
    } = bound;
    let deadline = async {
        loop {
            let deadline = *shutdown.borrow_and_update();
            if let Some(deadline) = deadline {
                tokio::time::sleep_until(deadline).await;
                return;
            }
            if shutdown.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        result = tokio::time::timeout(timeout, call) => match result {
            Ok(result) => result,
            Err(_) => Err(DbErr::Custom(format!(
                "{what}{TIMED_OUT}{timeout:?}"
            ))),
        },
        () = deadline => Err(DbErr::Custom(format!(
            "{what} cut off at the shutdown deadline"
        ))),
    }
}

/// The least time before the shutdown deadline worth another try of a failing batch.
const LAST_TRY: Duration = Duration::from_millis(20);

/// What [`within`]'s error says of a call that took longer than its bound.
const TIMED_OUT: &str = " did not complete within ";

/// Whether `error` is [`within`]'s of a call that took longer than its bound (not one cut off
/// at the shutdown deadline).
fn is_timeout(error: &DbErr) -> bool {
    matches!(error, DbErr::Custom(message) if message.contains(TIMED_OUT))
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

/// How often one batch's rows are sealed again after another writer's, before they take the
/// refusal's path (split, written in a safe form, or dead-lettered).
#[cfg(feature = "integrity")]
const MAX_REBASES: u32 = 16;

/// Whether `error`, a refusal, is a place in a hash chain taken already: the unique index on
/// `(chain_id, chain_seq)`, which every backend names in its message.
#[cfg(feature = "integrity")]
fn is_place_taken(error: &DbErr) -> bool {
    error.to_string().contains("chain_seq")
}

#[cfg(test)]
mod tests {
    /// Yielding or short statements in a backlog cost a fifth of the throughput (load bench);
    /// keeping up is a batch near the batch size with little queued behind it.
    #[test]
    fn a_backlog_is_told_from_a_writer_that_keeps_up() {
        assert!(keeps_up(512, 0, 512));
        assert!(
            keeps_up(700, 100, 512),
            "a little more than a batch queued in the meantime"
        );
        assert!(keeps_up(3, 0, 512), "a flush of a few records");
        assert!(
            !keeps_up(1_025, 0, 512),
            "a batch over twice the batch size"
        );
        assert!(!keeps_up(512, 512, 512), "a full batch queued behind");
        assert!(!keeps_up(8_192, 8_000, 512), "the writer's backlog batches");
        assert!(keeps_up(1, 0, 0), "a batch size of 0 counts as 1");
    }

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
