//! Counters the writer keeps, and the snapshot users read.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::context::lock;

/// A snapshot of the writer's counters, from [`WriterGuard::stats`](crate::WriterGuard::stats).
///
/// Every record the layer finishes is counted once as `captured` (or `skipped`). After a clean
/// shutdown, `captured == dropped + lost + dead_lettered + (written - replayed) + spilled`:
/// each record was dropped, given up on, dead-lettered, written straight away, or journaled
/// (and then replayed, or kept for the next start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Records finished by the layer and handed to the writer.
    pub captured: u64,
    /// Records that made it into the queue (`captured - dropped`).
    pub enqueued: u64,
    /// Records dropped at the queue: it was full, or the writer was shut down.
    pub dropped: u64,
    /// Requests not recorded because a skip rule or `AuditContext::skip` said so.
    pub skipped: u64,
    /// Records inserted into the database.
    pub written: u64,
    /// Records given up on: still failing at the shutdown deadline with no journal to keep them,
    /// or whose conversion to a row panicked (a bug, logged).
    pub lost: u64,
    /// Records written to the journal (the database was away, or the queue full under `Spill`).
    pub spilled: u64,
    /// Journaled records since inserted into the database.
    pub replayed: u64,
    /// Records the database refused even in a safe form, kept in the dead-letter journal (or
    /// counted as lost when there is none).
    pub dead_lettered: u64,
    /// Requests answered 503 under [`Overflow::Reject`](crate::Overflow::Reject).
    pub rejected: u64,
    /// Requests that found the queue full under [`Overflow::Block`](crate::Overflow::Block) and
    /// waited for room before the service ran: counted when the wait begins.
    pub blocked: u64,
    /// The time those requests spent waiting, all together: each wait is added when it ends,
    /// with room, at the timeout, or with the request dropped. `blocked_for / blocked` is the
    /// mean wait; a request that did not wait is not in either.
    pub blocked_for: std::time::Duration,
    /// Records that kept their row but not their request body, because the queued records'
    /// bodies and the long heads of the records in flight and queued already kept
    /// [`queue_body_bytes`](crate::AuditLayerBuilder::queue_body_bytes): their `request_body`
    /// reads `[body not captured, N bytes]`. Many slow requests with long heads (a client that
    /// holds them open on a slow route) shed so the bodies of other requests' records, the
    /// queue empty.
    pub bodies_shed: u64,
    /// Requests whose head was cut because the records in flight and queued already kept
    /// [`queue_body_bytes`](crate::AuditLayerBuilder::queue_body_bytes): a path, query, user
    /// agent or other kept header value of the request past 1 KiB in all kept only its first
    /// 128 bytes each (`path`, `query` and `user_agent` end in ` …[truncated, N bytes total]`),
    /// or the recorded headers were left out (`request_headers` is the JSON string
    /// `"[headers not captured, N bytes]"`). Counted when the request arrives.
    pub heads_cut: u64,
    /// Bytes in the journal waiting to be replayed.
    pub journal_bytes: u64,
    /// Stretches of the journal that could not be read when they were replayed, moved to
    /// `<journal>.unreadable` as they were so that replay goes on: a row that does not decode (a
    /// row written by a version whose row differs), or bytes that are not a valid frame (a
    /// flipped bit in a row or in its frame's header), counted once per stretch up to the next
    /// valid frame. Their rows were counted as `spilled` when journaled (or by the process that
    /// journaled them), so they are outside the sum above.
    pub journal_unreadable: u64,
    /// How long the database has been failing, if it is.
    pub database_away_for: Option<std::time::Duration>,
    /// Batch inserts that failed (each failure is retried while the batch is kept).
    pub failed_batches: u64,
    /// Records waiting in the queue right now.
    pub queue_len: usize,
    /// The last database error, if any.
    pub last_error: Option<String>,
    /// The last write failed because the `audit_log` table, or one of its columns, is missing:
    /// the database was not migrated (see [`migrate`](crate::migrate)). The records are kept as
    /// in an outage, and written once the table is there; cleared by the next insert that goes
    /// in, or a failure for another cause.
    pub schema_missing: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Added to by every request: striped, so that server threads do not contend for it.
    pub(crate) captured: StripedCounter,
    pub(crate) skipped: StripedCounter,
    pub(crate) dropped: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) spilled: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) blocked: AtomicU64,
    /// Microseconds.
    pub(crate) blocked_for: AtomicU64,
    pub(crate) bodies_shed: AtomicU64,
    pub(crate) heads_cut: AtomicU64,
    pub(crate) journal_unreadable: AtomicU64,
    pub(crate) journal_bytes: AtomicU64,
    /// The last write failed for want of the table or a column (see `WriterStats`).
    pub(crate) schema_missing: AtomicBool,
    last_error: Mutex<Option<String>>,
    away_since: Mutex<Option<std::time::Instant>>,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_last_error(&self, error: String) {
        *lock(&self.last_error) = Some(error);
    }

    pub(crate) fn set_away(&self, since: Option<std::time::Instant>) {
        *lock(&self.away_since) = since;
    }

    pub(crate) fn snapshot(&self, queue_len: usize) -> WriterStats {
        let captured = self.captured.load();
        let dropped = self.dropped.load(Ordering::Relaxed);
        WriterStats {
            captured,
            enqueued: captured.saturating_sub(dropped),
            dropped,
            skipped: self.skipped.load(),
            written: self.written.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            spilled: self.spilled.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            blocked: self.blocked.load(Ordering::Relaxed),
            blocked_for: std::time::Duration::from_micros(self.blocked_for.load(Ordering::Relaxed)),
            bodies_shed: self.bodies_shed.load(Ordering::Relaxed),
            heads_cut: self.heads_cut.load(Ordering::Relaxed),
            journal_unreadable: self.journal_unreadable.load(Ordering::Relaxed),
            journal_bytes: self.journal_bytes.load(Ordering::Relaxed),
            database_away_for: lock(&self.away_since).map(|since| since.elapsed()),
            queue_len,
            last_error: lock(&self.last_error).clone(),
            schema_missing: self.schema_missing.load(Ordering::Relaxed),
        }
    }
}

/// How many cells a [`StripedCounter`] spreads its count over.
const STRIPES: usize = 8;

/// A count that many threads add to, once per request, without sharing a cache line.
///
/// One `AtomicU64` that every server thread adds to moves its cache line from core to core on
/// each request, which on two cores cost more than the addition (`perf`, the `load` bench). Each
/// thread adds to one of a few cells instead, each on a line of its own, chosen once per thread;
/// reading sums the cells.
#[derive(Debug, Default)]
pub(crate) struct StripedCounter {
    cells: [CachePadded<AtomicU64>; STRIPES],
}

impl StripedCounter {
    pub(crate) fn add(&self, n: u64) {
        self.cells[stripe()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> u64 {
        self.cells.iter().fold(0, |sum, cell| {
            sum.wrapping_add(cell.load(Ordering::Relaxed))
        })
    }
}

/// This thread's cell: threads take the cells in turn as they first count something.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        let mut index = stripe.get();
        if index >= STRIPES {
            index = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            stripe.set(index);
        }
        index
    })
}

/// A writer's place in the `metrics` facade (feature `metrics`): its name, if it was given one
/// ([`writer_name`](crate::AuditLayerBuilder::writer_name)), and an id among the process's
/// writers.
///
/// Writers of one name (or all the unnamed ones) make one group: each adds what changed since
/// its last snapshot to the group's counters and summed gauges, and the recorder is given those
/// sums, under the label `writer="<name>"` for a named group. So two writers (an HTTP and a
/// gRPC server side by side) neither overwrite each other's figures nor keep only the larger
/// one, and what was counted before a recorder was installed still shows. A time away and a
/// missing table are not amounts: for them the group shows its longest, or whether any
/// writer's table is missing, among the writers still running.
///
/// | metric | kind |
/// | --- | --- |
/// | `tower_audit_records_captured_total`, `_written_total`, `_dropped_total`, `_lost_total`, `_spilled_total`, `_replayed_total`, `_dead_lettered_total`, `_skipped_total` | counter |
/// | `tower_audit_requests_rejected_total`, `tower_audit_requests_blocked_total`, `tower_audit_failed_batches_total` | counter |
/// | `tower_audit_blocked_microseconds_total` (the time blocked requests waited) | counter |
/// | `tower_audit_request_bodies_shed_total` (records kept without their body, see [`WriterStats::bodies_shed`]) | counter |
/// | `tower_audit_request_heads_cut_total` (requests whose long head was cut, see [`WriterStats::heads_cut`]) | counter |
/// | `tower_audit_journal_unreadable_total` (journaled rows set aside at replay, see [`WriterStats::journal_unreadable`]) | counter |
/// | `tower_audit_queue_len`, `tower_audit_journal_bytes` (sums) | gauge |
/// | `tower_audit_database_away_seconds` (the longest), `tower_audit_schema_missing` (0 or 1) | gauge |
#[cfg(feature = "metrics")]
#[derive(Debug)]
pub(crate) struct Exported {
    name: Option<String>,
    id: u64,
    /// Set by [`stopped`](Self::stopped): later exports (records dropped late) add to the
    /// counters only.
    stopped: AtomicBool,
}

#[cfg(feature = "metrics")]
impl Exported {
    pub(crate) fn new(name: Option<String>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            name,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            stopped: AtomicBool::new(false),
        }
    }

    /// Adds what changed from `previous` to `stats` to the group's figures and publishes them.
    pub(crate) fn export(&self, stats: &WriterStats, previous: &WriterStats) {
        let mut groups = lock(&GROUPS);
        let group = match groups.iter().position(|g| g.name == self.name) {
            Some(at) => &mut groups[at],
            None => {
                groups.push(Group::new(self.name.clone()));
                groups.last_mut().expect("just pushed")
            }
        };
        for ((total, now), before) in group
            .totals
            .iter_mut()
            .zip(counts(stats))
            .zip(counts(previous))
        {
            *total = total.saturating_add(now.saturating_sub(before));
        }
        if !self.stopped.load(Ordering::Relaxed) {
            for ((sum, now), before) in group.sums.iter_mut().zip(sums(stats)).zip(sums(previous)) {
                *sum = sum.saturating_add(now.saturating_sub(before)).max(0);
            }
            match group.peaks.iter_mut().find(|(id, _)| *id == self.id) {
                Some((_, peaks)) => *peaks = peaks_of(stats),
                None => group.peaks.push((self.id, peaks_of(stats))),
            }
        }
        // Under the lock: a writer's older figure never follows another's newer one.
        group.publish();
    }

    /// The writer has stopped, `last` the stats it exported last: its time away and missing
    /// table leave the group's, and so do its queue and journal, which it added to the sums.
    /// A writer built again on the same journal adds the journal's bytes anew.
    pub(crate) fn stopped(&self, last: &WriterStats) {
        let mut groups = lock(&GROUPS);
        if self.stopped.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(group) = groups.iter_mut().find(|g| g.name == self.name) {
            group.peaks.retain(|(id, _)| *id != self.id);
            for (sum, added) in group.sums.iter_mut().zip(sums(last)) {
                *sum = sum.saturating_sub(added).max(0);
            }
            group.publish();
        }
    }
}

/// What one name's writers published, together.
#[cfg(feature = "metrics")]
struct Group {
    name: Option<String>,
    totals: [u64; COUNTERS.len()],
    sums: [i64; SUMMED.len()],
    /// Each running writer's last [`peaks_of`].
    peaks: Vec<(u64, [i64; PEAKS.len()])>,
}

#[cfg(feature = "metrics")]
impl Group {
    fn new(name: Option<String>) -> Self {
        Self {
            name,
            totals: [0; COUNTERS.len()],
            sums: [0; SUMMED.len()],
            peaks: Vec::new(),
        }
    }

    fn publish(&self) {
        use metrics::{counter, gauge};
        let labels: Vec<metrics::Label> = self
            .name
            .iter()
            .map(|name| metrics::Label::new("writer", name.clone()))
            .collect();
        for (name, total) in COUNTERS.iter().zip(self.totals) {
            counter!(*name, labels.iter()).absolute(total);
        }
        for (name, sum) in SUMMED.iter().zip(self.sums) {
            gauge!(*name, labels.iter()).set(sum as f64);
        }
        for (at, (name, scale)) in PEAKS.iter().zip(PEAK_UNITS).enumerate() {
            let peak = self.peaks.iter().map(|(_, p)| p[at]).max().unwrap_or(0);
            gauge!(*name, labels.iter()).set(peak as f64 / scale);
        }
    }
}

#[cfg(feature = "metrics")]
fn counts(stats: &WriterStats) -> [u64; COUNTERS.len()] {
    [
        stats.captured,
        stats.written,
        stats.dropped,
        stats.lost,
        stats.spilled,
        stats.replayed,
        stats.dead_lettered,
        stats.skipped,
        stats.rejected,
        stats.blocked,
        u64::try_from(stats.blocked_for.as_micros()).unwrap_or(u64::MAX),
        stats.failed_batches,
        stats.bodies_shed,
        stats.heads_cut,
        stats.journal_unreadable,
    ]
}

#[cfg(feature = "metrics")]
fn sums(stats: &WriterStats) -> [i64; SUMMED.len()] {
    let whole = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    [whole(stats.queue_len as u64), whole(stats.journal_bytes)]
}

// Whole numbers (the time in microseconds).
#[cfg(feature = "metrics")]
fn peaks_of(stats: &WriterStats) -> [i64; PEAKS.len()] {
    let away = stats.database_away_for.map_or(0, |away| away.as_micros());
    [
        i64::try_from(away).unwrap_or(i64::MAX),
        i64::from(stats.schema_missing),
    ]
}

#[cfg(feature = "metrics")]
const COUNTERS: [&str; 15] = [
    "tower_audit_records_captured_total",
    "tower_audit_records_written_total",
    "tower_audit_records_dropped_total",
    "tower_audit_records_lost_total",
    "tower_audit_records_spilled_total",
    "tower_audit_records_replayed_total",
    "tower_audit_records_dead_lettered_total",
    "tower_audit_records_skipped_total",
    "tower_audit_requests_rejected_total",
    "tower_audit_requests_blocked_total",
    "tower_audit_blocked_microseconds_total",
    "tower_audit_failed_batches_total",
    "tower_audit_request_bodies_shed_total",
    "tower_audit_request_heads_cut_total",
    "tower_audit_journal_unreadable_total",
];

/// Gauges of amounts: the group's writers' sum.
#[cfg(feature = "metrics")]
const SUMMED: [&str; 2] = ["tower_audit_queue_len", "tower_audit_journal_bytes"];

/// Gauges of states: the largest among the group's running writers.
#[cfg(feature = "metrics")]
const PEAKS: [&str; 2] = [
    "tower_audit_database_away_seconds",
    "tower_audit_schema_missing",
];

/// What a peak is divided by: the time is kept in microseconds, shown in seconds.
#[cfg(feature = "metrics")]
const PEAK_UNITS: [f64; 2] = [1e6, 1.0];

/// Every group of writers the process has published for.
#[cfg(feature = "metrics")]
static GROUPS: Mutex<Vec<Group>> = Mutex::new(Vec::new());

#[cfg(test)]
mod tests {
    use super::*;

    /// Every thread's additions are counted, whichever cells the threads took (other tests'
    /// threads take cells too, so which ones is not asserted).
    #[test]
    fn a_striped_counter_sums_what_every_thread_added() {
        let counter = StripedCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..12 {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        counter.add(1);
                    }
                    counter.add(10);
                });
            }
        });
        assert_eq!(counter.load(), 12 * 1_010);
        assert_eq!(stripe(), stripe(), "a thread keeps its cell");
    }
}
