//! The background writer: a bounded queue from the request path, a worker that batches records
//! into the database, and the [`WriterGuard`] that reports on it and shuts it down.
//!
//! The request path only ever pushes onto a lock-free bounded queue; it never waits for the
//! database. The worker wakes when a batch is full or when the flush interval passes, sanitizes and
//! converts the records, and inserts each batch in one transaction, retrying with backoff and jitter
//! while it keeps the batch. When the queue is full the [`Overflow`] policy decides, and every
//! dropped record is counted in [`WriterStats`] and logged.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_audit::AuditLayer;
//!
//! # async fn run() -> Result<(), tower_audit::Error> {
//! let db = tower_audit::connect("sqlite://audit.db?mode=rwc").await?;
//! tower_audit::migrate(&db).await?;
//! let (layer, guard) = AuditLayer::builder(db).build()?;
//! # let _ = layer;
//! // ... serve requests with `layer` ...
//! let report = guard.shutdown(Duration::from_secs(5)).await?;
//! assert_eq!(report.lost, 0);
//! # Ok(())
//! # }
//! ```

#[cfg(any(feature = "sqlite", feature = "mysql"))]
mod bind;
mod guard;
mod intake;
mod journal;
mod row;
mod sink;
mod stats;
mod worker;

pub use guard::{ShutdownReport, WriterGuard};
pub use journal::FsyncPolicy;
pub use sink::InsertMode;
pub use stats::WriterStats;
pub use worker::AuditWriter;

pub(crate) use intake::{Channel, ChannelConfig, Intake};

/// The longest the writer's timers are set for (thirty years, as Tokio's own far future): a
/// longer setting means the same, and `Duration::MAX` added to now would overflow the clock.
pub(crate) const FAR_FUTURE: std::time::Duration =
    std::time::Duration::from_secs(30 * 365 * 24 * 60 * 60);
#[cfg(feature = "integrity")]
pub(crate) use journal::{DeadPlaces, JournaledPlaces};
pub(crate) use journal::{Journal, JournalConfig};
#[cfg(test)]
pub(crate) use row::to_model_alone;
#[cfg(feature = "integrity")]
pub(crate) use sink::Place;
pub(crate) use sink::Sink;
pub(crate) use worker::{Outage, Worker, WriterConfig};

/// A wall-clock reading paired with a monotonic one: turns the `Instant` a request arrived at
/// into the time it arrived, so the request path reads only the monotonic clock. Durations
/// `quanta` measured are corrected by its rate (see [`quanta_rate`]), kept as a binary fraction
/// with 32 bits after the point: a multiplication a row (`Duration::mul_f64` cost some 100
/// instructions).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    system: chrono::DateTime<chrono::Utc>,
    instant: quanta::Instant,
    rate_q32: u64,
}

impl WallClock {
    pub(crate) fn now() -> Self {
        let (instant, system) = wall_clock_together();
        Self::with_rate(instant, system, quanta_rate())
    }

    pub(crate) fn with_rate(
        instant: quanta::Instant,
        system: chrono::DateTime<chrono::Utc>,
        rate: f64,
    ) -> Self {
        Self {
            system,
            instant,
            rate_q32: (rate * (1u64 << 32) as f64).round() as u64,
        }
    }

    pub(crate) fn at(&self, then: quanta::Instant) -> chrono::DateTime<chrono::Utc> {
        let ago = self.corrected(self.instant.saturating_duration_since(then));
        chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| self.system.checked_sub_signed(ago))
            .unwrap_or(self.system)
    }

    /// A duration `quanta` measured, in the system's monotonic clock's time.
    pub(crate) fn corrected(&self, measured: std::time::Duration) -> std::time::Duration {
        let nanos = (measured.as_nanos() * u128::from(self.rate_q32) + (1 << 31)) >> 32;
        std::time::Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// `quanta` and the wall clock read at one moment (see [`read_together`]). Each batch's rows
/// take their arrival times from such a pair: a preemption between two plain readings (a
/// loaded machine) shifted every row of a batch by its length, and a request that arrived
/// microseconds before another, written in a later batch, could read as arriving after it.
fn wall_clock_together() -> (quanta::Instant, chrono::DateTime<chrono::Utc>) {
    read_together(chrono::Utc::now, |before, after| {
        let gap = after - before;
        (before + gap / 2, gap.abs().to_std().unwrap_or_default())
    })
}

/// The two clocks read together when the layer was first built, once `quanta` had calibrated
/// itself (see [`anchor_clocks`]).
static CLOCK_ANCHOR: std::sync::OnceLock<(quanta::Instant, std::time::Instant)> =
    std::sync::OnceLock::new();

/// `quanta` and the system's monotonic clock read at one moment (see [`read_together`]).
fn clocks_together() -> (quanta::Instant, std::time::Instant) {
    read_together(std::time::Instant::now, |before, after| {
        let gap = after - before;
        (before + gap / 2, gap)
    })
}

/// `quanta` read between two readings of another clock, taken again (up to 16 times) until
/// those are within 2 µs, so that a preemption between them does not count as the clocks'
/// difference; with the other clock's midpoint (`between` gives it and the readings' gap).
/// Past 16 tries, the pair with the smallest gap.
fn read_together<T: Copy>(
    read: impl Fn() -> T,
    between: impl Fn(T, T) -> (T, std::time::Duration),
) -> (quanta::Instant, T) {
    let mut best: Option<((quanta::Instant, T), std::time::Duration)> = None;
    for _ in 0..16 {
        let before = read();
        let fast = quanta::Instant::now();
        let after = read();
        let (middle, gap) = between(before, after);
        if gap < std::time::Duration::from_micros(2) {
            return (fast, middle);
        }
        if best.is_none_or(|(_, best_gap)| gap < best_gap) {
            best = Some(((fast, middle), gap));
        }
    }
    best.map_or_else(|| (quanta::Instant::now(), read()), |(pair, _)| pair)
}

/// Notes both clocks once, after `quanta`'s calibration (the layer's build): the start of the
/// span [`quanta_rate`] measures.
pub(crate) fn anchor_clocks() {
    CLOCK_ANCHOR.get_or_init(clocks_together);
}

/// How many of the system monotonic clock's seconds one of `quanta`'s is, measured over the time
/// since [`anchor_clocks`] (1 before 50 ms of it). `quanta` calibrates the CPU's counter against
/// that clock over half a millisecond, from one pair of readings at its end; a few microseconds
/// lost between them (an interrupt in a busy virtual machine) leave its rate off by up to a
/// percent for the life of the process: a 200 ms timeout recorded as 198.67 ms. Over seconds
/// the same few microseconds weigh a thousand times less.
pub(crate) fn quanta_rate() -> f64 {
    let Some(&(fast0, system0)) = CLOCK_ANCHOR.get() else {
        return 1.0;
    };
    let (fast, system) = clocks_together();
    rate_of(
        fast.saturating_duration_since(fast0),
        system.saturating_duration_since(system0),
    )
}

/// The rate of [`quanta_rate`] from the time each clock counted over one span: 1 while the span
/// is under 50 ms, too short to tell, and where the two differ by more than 5%, which is no
/// calibration error.
fn rate_of(fast: std::time::Duration, system: std::time::Duration) -> f64 {
    let fast = fast.as_secs_f64();
    if fast < 0.05 {
        return 1.0;
    }
    let rate = system.as_secs_f64() / fast;
    if (0.95..=1.05).contains(&rate) {
        rate
    } else {
        1.0
    }
}

/// A UUID v7 for a time: its milliseconds, then random bits from `fastrand` (seeded once per
/// thread) rather than a `getrandom` system call per id. The ids are unique keys, not secrets.
pub(crate) fn uuid_v7(at: chrono::DateTime<chrono::Utc>) -> uuid::Uuid {
    let millis = at.timestamp_millis().max(0) as u64;
    let random = fastrand::u128(..).to_le_bytes();
    let mut bytes = [0; 10];
    bytes.copy_from_slice(&random[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

/// Now, to the microsecond: the precision every backend keeps.
#[cfg(feature = "integrity")]
pub(crate) fn now_micros() -> chrono::DateTime<chrono::Utc> {
    truncate_micros(chrono::Utc::now())
}

pub(crate) fn truncate_micros(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

/// What the request path does when the writer's queue is full.
///
/// | policy | the record that does not fit | the request | loses records? |
/// | --- | --- | --- | --- |
/// | [`Spill`](Overflow::Spill) (default with a journal) | appended to the journal, replayed later | served as usual (a few µs to write the journal) | only when the journal is full or the disk fails — counted |
/// | [`DropNewest`](Overflow::DropNewest) (default without a journal) | dropped, counted, logged | served as usual | yes, counted in `dropped` |
/// | [`DropOldest`](Overflow::DropOldest) | queued; the oldest queued record is dropped, counted | served as usual | yes, counted in `dropped` |
/// | [`Block { timeout }`](Overflow::Block) | room is reserved when the request arrives; the request waits for it up to `timeout`, then goes on and its record is dropped, counted, if there is still no room | delayed under overload | only past the timeout — counted |
/// | [`Reject`](Overflow::Reject) | room is reserved when the request arrives; without room the request is answered `503` before the handler runs | refused under overload | never: an action that cannot be audited does not happen |
///
/// The default is the safest policy that never fails or slows a request on the audit trail's
/// account: `Spill` when a [journal](crate::AuditLayerBuilder::journal) is configured — nothing is
/// lost while the disk holds — and `DropNewest` otherwise, which keeps the older records already
/// waiting and counts and logs every drop. Choose `Block` or `Reject` for services where an
/// unaudited action must not happen; they trade availability for completeness. Whatever the
/// policy, while the database is away a writer with a journal keeps every record there; once
/// the journal is full (`journal_max_bytes`), records take the queue again, under the policy,
/// and wait there for the database (under `Reject`, requests are refused once it is full too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the record that does not fit.
    #[default]
    DropNewest,
    /// Make room by dropping the oldest queued record.
    DropOldest,
    /// Wait for room, up to `timeout`, before the service runs.
    Block {
        /// The longest a request waits for room.
        timeout: std::time::Duration,
    },
    /// Answer `503 Service Unavailable` (with `Retry-After: 1`) when there is no room.
    Reject,
    /// Append the record to the journal.
    Spill,
}

/// A row whose nullable columns are all null and the others empty or zero, for tests to fill in.
#[cfg(test)]
pub(crate) fn null_row() -> crate::entity::audit_log::Model {
    crate::entity::audit_log::Model {
        id: 0,
        record_id: String::new(),
        occurred_at: chrono::DateTime::UNIX_EPOCH,
        request_id: None,
        method: String::new(),
        path: String::new(),
        route: None,
        query: None,
        status: None,
        grpc_status: None,
        grpc_messages_in: None,
        grpc_messages_out: None,
        latency_us: 0,
        client_ip: None,
        peer_ip: None,
        user_agent: None,
        user_id: None,
        tenant_id: None,
        action: None,
        resource: None,
        request_body: None,
        request_body_truncated: false,
        request_bytes: 0,
        response_bytes: 0,
        request_headers: None,
        extra: None,
        error: None,
        chain_id: None,
        chain_seq: None,
        prev_hash: None,
        row_hash: None,
        key_id: None,
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use tower::ServiceExt;

    type AuditedResponse = http::Response<crate::ResponseBody<Empty<Bytes>>>;

    /// The other clock is read again while its two readings around `quanta`'s are 2 µs apart
    /// or more (a preemption between them), and the pair takes their midpoint; past 16 tries,
    /// the closest pair.
    #[test]
    fn clocks_are_read_again_until_close_together() {
        use std::cell::Cell;
        // A clock whose readings step 9 µs, then 1 µs from the fifth on.
        let reads = Cell::new(0_u64);
        let now = Cell::new(0_u64);
        let clock = || {
            reads.set(reads.get() + 1);
            now.set(now.get() + if reads.get() <= 8 { 9 } else { 1 });
            Duration::from_micros(now.get())
        };
        let between =
            |before: Duration, after: Duration| (before + (after - before) / 2, after - before);
        let (_, middle) = super::read_together(clock, between);
        // Tries 1 to 4 read (9, 18), … (63, 72); the fifth (73, 74).
        assert_eq!(reads.get(), 10);
        assert_eq!(
            middle,
            Duration::from_micros(73) + Duration::from_nanos(500)
        );
        // Never close: the pair of the smallest gap, the first of equals.
        let steps = Cell::new(0_u64);
        let far = || {
            steps.set(steps.get() + 1);
            Duration::from_micros(steps.get() * 10)
        };
        let (_, middle) = super::read_together(far, between);
        assert_eq!(steps.get(), 32);
        assert_eq!(middle, Duration::from_micros(15));
        // The wall clock's pair is now's.
        let (_, wall) = super::wall_clock_together();
        let off = (chrono::Utc::now() - wall).abs();
        assert!(off < chrono::TimeDelta::seconds(1), "{off}");
    }

    /// An audited service that answers every request with an empty body, over an in-memory
    /// table, with batches of four and a flush timer of an hour; the test runs the writer.
    async fn batches_of_four() -> (
        impl tower::Service<
            http::Request<Empty<Bytes>>,
            Response = AuditedResponse,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send,
        crate::WriterGuard,
        crate::AuditWriter,
    ) {
        let db = crate::connect("sqlite::memory:").await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .batch_size(4)
            .flush_interval(Duration::from_secs(3_600))
            .build_pair()
            .expect("layer");
        let service = tower::ServiceBuilder::new().layer(layer).service_fn(
            |_: http::Request<crate::RequestBody<Empty<Bytes>>>| async {
                Ok::<_, Infallible>(http::Response::new(Empty::<Bytes>::new()))
            },
        );
        (service, guard, writer)
    }

    /// Durations `quanta` measured are corrected by the rate the writer measured against the
    /// system's clock: with `quanta` slow by 0.67% (a calibration under load left it so, and a
    /// 200 ms timeout was recorded as 198.67 ms), a 198.67 ms reading is stored as 200 ms and
    /// the arrival time moves with it. The rate is the system's time over `quanta`'s, 1 before
    /// the span is long enough to tell or where the clocks differ past any calibration error.
    #[test]
    fn quanta_durations_are_corrected_by_the_measured_rate() {
        let system = chrono::Utc::now();
        let instant = quanta::Instant::now();
        let clock = super::WallClock::with_rate(instant, system, 200.0 / 198.67);
        let read = Duration::from_micros(198_670);
        assert_eq!(clock.corrected(read).as_micros(), 200_000);
        assert_eq!(
            clock.at(instant - read),
            system - chrono::Duration::microseconds(200_000)
        );
        let ms = Duration::from_millis;
        assert_eq!(super::rate_of(ms(1000), ms(1000)), 1.0);
        assert_eq!(
            super::rate_of(Duration::from_micros(198_670), ms(200)),
            200.0 / 198.67
        );
        assert_eq!(super::rate_of(ms(30), ms(40)), 1.0, "too short to tell");
        assert_eq!(
            super::rate_of(ms(1000), ms(1200)),
            1.0,
            "no calibration error"
        );
    }

    /// The audited test service, as the helpers below take it.
    trait Audited:
        tower::Service<http::Request<Empty<Bytes>>, Response = AuditedResponse, Error = Infallible>
        + Clone
    {
    }

    impl<S> Audited for S where
        S: tower::Service<
                http::Request<Empty<Bytes>>,
                Response = AuditedResponse,
                Error = Infallible,
            > + Clone
    {
    }

    /// Sends `count` requests one after the other, each answered in full: `count` records.
    async fn send<S>(service: &S, count: u64)
    where
        S: Audited,
    {
        for _ in 0..count {
            let request = http::Request::get("/x")
                .body(Empty::new())
                .expect("request");
            let response = service.clone().oneshot(request).await.expect("response");
            response.into_body().collect().await.expect("body");
        }
    }

    /// Runs the writer and has a first batch of four written.
    async fn write_a_first_batch<S>(
        service: &S,
        guard: &crate::WriterGuard,
        writer: crate::AuditWriter,
    ) -> tokio::task::JoinHandle<()>
    where
        S: Audited,
    {
        let writer = tokio::spawn(writer);
        send(service, 4).await;
        assert!(
            wait_for(guard, |s| s.written == 4).await,
            "the batch was not written"
        );
        writer
    }

    /// Waits up to 20 s for the writer's published stats to satisfy `done`.
    async fn wait_for(
        guard: &crate::WriterGuard,
        done: impl FnMut(&crate::WriterStats) -> bool,
    ) -> bool {
        let mut stats = guard.watch_stats();
        tokio::time::timeout(Duration::from_secs(20), stats.wait_for(done))
            .await
            .is_ok()
    }

    /// An idle writer sleeps: when its flush timer fires with nothing to flush, it waits one
    /// interval more rather than waking again at once. Counted in wake-ups, on a paused clock.
    #[tokio::test]
    async fn an_idle_writer_sleeps_until_its_next_flush() {
        use std::sync::atomic::Ordering;

        let (service, guard, writer) = batches_of_four().await;
        let writer = write_a_first_batch(&service, &guard, writer).await;
        // Idle now, its timer an hour ahead. From here nothing touches the database, so the
        // clock can be paused and moved.
        tokio::time::pause();
        let wakeups = || guard.channel.wakeups.load(Ordering::Relaxed);
        for hours in 1..=3 {
            let before = wakeups();
            tokio::time::advance(Duration::from_secs(3_600)).await;
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            let woke = wakeups() - before;
            // Once for the timer (perhaps once more for the hour's edge); a spinning writer
            // wakes hundreds of times in these yields.
            assert!(woke <= 2, "hour {hours}: the idle writer woke {woke} times");
        }
        tokio::time::resume();
        guard
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        writer.await.expect("writer");
    }

    /// `ShutdownReport::elapsed` runs from the shutdown request, also when the writer had
    /// stopped on its own before it (every layer dropped, the queue drained) after an hour's run.
    #[tokio::test]
    async fn the_reported_shutdown_time_runs_from_the_request() {
        let (service, guard, writer) = batches_of_four().await;
        let writer = write_a_first_batch(&service, &guard, writer).await;
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(3_600)).await;
        // The last layer goes: with nothing queued, the writer stops without being asked.
        drop(service);
        writer.await.expect("writer");
        tokio::time::resume();
        let report = guard
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.lost), (4, 0));
        assert!(
            report.elapsed < Duration::from_secs(5),
            "a shutdown that found the writer stopped took {:?}",
            report.elapsed
        );
    }

    /// A journal holding `rows` named rows with `stranger`'s bytes after the first `at` of them.
    fn journal_with_a_stranger(path: &std::path::Path, rows: &[&str], at: usize, stranger: &[u8]) {
        let row = |n: &&str| crate::entity::audit_log::Model {
            record_id: format!("rec-{n}"),
            occurred_at: chrono::Utc::now(),
            method: "GET".into(),
            path: format!("/{n}"),
            ..super::null_row()
        };
        let frame = |n| super::journal::raw_frame(&serde_json::to_vec(&row(n)).expect("row"));
        let mut bytes: Vec<u8> = rows[..at].iter().flat_map(frame).collect();
        bytes.extend_from_slice(stranger);
        bytes.extend(rows[at..].iter().flat_map(frame));
        std::fs::write(path, bytes).expect("journal");
    }

    /// Journaled bytes that cannot be read are moved to the journal's `.unreadable` file at
    /// replay, counted, and the rows around them are written: a row that does not decode (one
    /// a version with a different row wrote, say), and a frame whose length was damaged (the
    /// next frame is found again by its header). Before, either stopped the replay for good,
    /// with every row journaled after it. A journal left with only such a row is emptied all the
    /// same.
    #[tokio::test]
    async fn journaled_bytes_that_cannot_be_read_are_set_aside_and_the_rest_replayed() {
        use sea_orm::EntityTrait;

        let not_a_row = super::journal::raw_frame(br#"{"not":"a row"}"#);
        let mut damaged = super::journal::raw_frame(br#"{"record_id":"rec-x"}"#);
        damaged[1..5].copy_from_slice(&(1u32 << 20).to_le_bytes());
        let cases = [
            (&["a", "b"][..], 1, &not_a_row),
            (&[][..], 0, &not_a_row),
            (&["a", "b", "c"][..], 2, &damaged),
        ];
        for (rows, at, stranger) in cases {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("audit.journal");
            journal_with_a_stranger(&path, rows, at, stranger);
            let db = crate::connect("sqlite::memory:").await.expect("db");
            crate::migrate(&db).await.expect("migrate");
            let (_layer, guard, writer) = crate::AuditLayer::builder(db.clone())
                .journal(&path)
                .build_pair()
                .expect("layer");
            let writer = tokio::spawn(writer);
            let written = rows.len() as u64;
            assert!(
                wait_for(&guard, |s| s.written == written
                    && s.journal_unreadable == 1
                    && s.journal_bytes == 0)
                .await,
                "{rows:?}: the journal was not replayed past the stranger: {:?}",
                guard.stats()
            );
            let side = dir.path().join("audit.journal.unreadable");
            assert_eq!(&std::fs::read(side).expect("side file"), stranger);
            assert_eq!(std::fs::metadata(&path).expect("journal").len(), 0);
            let report = guard
                .shutdown(Duration::from_secs(5))
                .await
                .expect("shutdown");
            assert_eq!((report.written, report.journaled), (written, 0));
            writer.await.expect("writer");
            let mut paths: Vec<_> = crate::entity::audit_log::Entity::find()
                .all(&db)
                .await
                .expect("rows")
                .into_iter()
                .map(|row| row.path)
                .collect();
            paths.sort();
            let expected: Vec<_> = rows.iter().map(|n| format!("/{n}")).collect();
            assert_eq!(paths, expected, "{rows:?}");
        }
    }

    /// Two layers given one journal: the second build fails with an error that says so, rather
    /// than the two interleaving their appends and replaying each other's rows.
    #[tokio::test]
    async fn a_journal_another_writer_holds_is_refused_at_build() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = crate::connect("sqlite::memory:").await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        let first = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .build_pair()
            .expect("first layer");
        let Err(error) = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .build_pair()
        else {
            panic!("a second writer opened the journal");
        };
        assert!(
            matches!(&error, crate::Error::Journal { path: p, .. } if *p == path),
            "{error:?}"
        );
        assert!(error.to_string().contains("another writer"), "{error}");
        drop(first);
        let again = crate::AuditLayer::builder(db).journal(&path).build_pair();
        assert!(
            again.is_ok(),
            "the journal is free once the first layer and writer are gone"
        );
    }

    /// A layer rebuilt in the same process (a restart of the server, a reload) takes the journal
    /// as soon as the old writer's `shutdown` has returned, though services of the old layer
    /// may live on a moment (connections still closing): the writer lets go of the file when
    /// it stops, not when the last of them is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_writer_lets_go_of_its_journal() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = crate::connect("sqlite::memory:").await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        let (layer, guard) = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .overflow(crate::Overflow::Spill)
            .build()
            .expect("first layer");
        let service = tower::ServiceBuilder::new().layer(layer).service_fn(
            |_: http::Request<crate::RequestBody<String>>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            },
        );
        // One request through the old layer's service, then a writer's shutdown.
        let request_then_stop = |guard: crate::WriterGuard| {
            let service = service.clone();
            async move {
                let response = service.oneshot(http::Request::new(String::new())).await;
                drop(response.expect("response"));
                let stop = guard.shutdown(std::time::Duration::from_secs(5));
                stop.await.expect("shutdown")
            }
        };
        let report = request_then_stop(guard).await;
        assert_eq!((report.written, report.lost), (1, 0), "{report:?}");
        // The old layer is still alive: its service is held here.
        let (_layer, guard) = crate::AuditLayer::builder(db)
            .journal(&path)
            .build()
            .expect("the journal is free once the old writer has stopped");
        // A request the old layer finishes now is not appended to the new writer's journal.
        let report = request_then_stop(guard).await;
        assert_eq!((report.written, report.journaled), (0, 0), "{report:?}");
    }

    /// Under `FsyncPolicy::Interval`, rows journaled while the database is away are forced to
    /// disk within the interval even when no more come: the writer does it, off the request
    /// path. Before, only a later append did, so the last rows before a quiet spell stayed in
    /// the operating system's cache, however long the spell. The flush timer is an hour here,
    /// so only the sync's own timer can do it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journaled_rows_are_synced_within_the_interval_without_more_appends() {
        let dir = tempfile::tempdir().expect("dir");
        // No table: every insert fails, as while the database is away.
        let db = crate::connect("sqlite::memory:").await.expect("db");
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .journal(dir.path().join("audit.journal"))
            .journal_fsync(super::FsyncPolicy::Interval(Duration::from_millis(300)))
            .flush_interval(Duration::from_secs(3600))
            .batch_size(1)
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        let journal = guard.channel.journal.as_ref().expect("journal");
        let unsynced = || crate::context::lock(journal).is_unsynced();
        for (sent, path) in (1..).zip(["/1", "/2", "/3"]) {
            get_each(&layer, &[path]).await;
            assert!(
                wait_for(&guard, |s| s.spilled == sent).await,
                "request {sent} was not journaled: {:?}",
                guard.stats()
            );
            // Journaled, then synced with nothing more appended.
            let synced = tokio::time::timeout(Duration::from_secs(20), async {
                while unsynced() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            assert!(synced.is_ok(), "request {sent}'s row was never synced");
        }
        drop(layer);
        let report = guard
            .shutdown(Duration::from_millis(100))
            .await
            .expect("shutdown");
        assert_eq!(report.journaled, 3);
        task.await.expect("writer");
    }

    /// Sends a GET for each of `paths` through `layer`, around a service that answers with an
    /// empty body, and reads each response to its end.
    async fn get_each(layer: &crate::AuditLayer, paths: &[&str]) {
        let service = tower::Layer::layer(
            layer,
            tower::service_fn(|_req: http::Request<_>| async {
                Ok::<_, Infallible>(http::Response::new(Empty::<Bytes>::new()))
            }),
        );
        for path in paths {
            let request = http::Request::get(*path)
                .body(Empty::<Bytes>::new())
                .expect("request");
            let response = service.clone().oneshot(request).await.expect("response");
            response.into_body().collect().await.expect("body");
        }
    }

    /// A stopped writer checkpoints SQLite's WAL into the file (see `Worker::finish`). A
    /// reader on an older snapshot keeps the frames after it from the checkpoint (after the
    /// connection's busy timeout, 50 ms here): the stop says so in a warning and loses nothing;
    /// the rows are read back from the WAL once the reader is gone. Untested before.
    #[tokio::test]
    async fn a_reader_holding_the_wal_at_the_stop_is_named_and_loses_nothing() {
        use sea_orm::TransactionTrait;

        // This thread's: the writer runs here (a current-thread runtime).
        let (lines, _logs) = crate::test_logs::capture();
        let dir = tempfile::tempdir().expect("dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("audit.db").display()
        );
        let mut options = sea_orm::ConnectOptions::new(url.clone());
        options.map_sqlx_sqlite_opts(|o| {
            crate::sqlite_settings(o).busy_timeout(Duration::from_millis(50))
        });
        let db = sea_orm::Database::connect(options).await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .flush_interval(Duration::from_millis(10))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/a", "/b"]).await;
        assert!(wait_for(&guard, |s| s.written == 2).await);

        // A reader's snapshot, taken before the next rows.
        let reader = crate::connect(&url).await.expect("reader");
        let snapshot = reader.begin().await.expect("begin");
        assert_eq!(count(&snapshot).await, 2);
        get_each(&layer, &["/c", "/d", "/e"]).await;
        drop(layer);
        let report = guard.shutdown(Duration::from_secs(30)).await.expect("stop");
        task.await.expect("writer");
        assert_eq!((report.written, report.lost), (5, 0), "{report:?}");
        let text = lines.text();
        assert!(
            text.lines().any(|line| line.contains("WARN")
                && line.contains("a reader kept part of SQLite's WAL from the checkpoint")),
            "{text}"
        );

        // The rows after the snapshot are still in the WAL, read by every connection.
        snapshot.rollback().await.expect("end");
        let after = crate::connect(&url).await.expect("after");
        assert_eq!(count(&after).await, 5);
    }

    /// The rows of `db`'s table, as a connection or a transaction sees them.
    async fn count(db: &impl sea_orm::ConnectionTrait) -> i64 {
        let count = "SELECT COUNT(*) FROM audit_log";
        db.query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            count,
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("count")
    }

    /// A journal that cannot be written (a full disk: `/dev/full`) while the database is away
    /// fails every request's append: the records are counted as dropped, and the request path
    /// logs the error once a second, not once a request.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_journal_that_cannot_be_written_is_logged_once_a_second() {
        // This thread's: the request path runs here (a current-thread runtime).
        let (lines, _logs) = crate::test_logs::capture();

        // No table: every insert fails, as while the database is away.
        let db = crate::connect("sqlite::memory:").await.expect("db");
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .journal("/dev/full")
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        // The first record's batch fails, and so does its append: from here the records go
        // to the journal from the request path, until the writer's next try.
        get_each(&layer, &["/first"]).await;
        assert!(
            wait_for(&guard, |s| s.dropped == 1).await,
            "{:?}",
            guard.stats()
        );
        let paths: Vec<String> = (0..200).map(|i| format!("/{i}")).collect();
        let started = std::time::Instant::now();
        get_each(
            &layer,
            &paths.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
        let seconds = started.elapsed().as_secs();
        let stats = guard.stats();
        assert!(stats.dropped > 100, "{stats:?}");

        let text = lines.text();
        let logged = text
            .matches("cannot append to the audit journal; audit records dropped")
            .count();
        assert!(
            (1..=2 + seconds as usize).contains(&logged),
            "{logged} lines for {} dropped records in {seconds} s:\n{text}",
            stats.dropped
        );
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        assert_eq!(report.written, 0);
        task.await.expect("writer");
    }

    /// A hash chain keyed with fewer than 32 bytes is refused at build, as
    /// `Integrity::from_env` refuses such a key: `Integrity::new` took a 16-byte passphrase
    /// and chained every row with it.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn a_short_integrity_key_is_refused_at_build() {
        let db = crate::connect("sqlite::memory:").await.expect("db");
        let short = crate::integrity::Integrity::new("c1", "k1", b"correct horse 16".to_vec());
        let built = crate::AuditLayer::builder(db.clone())
            .integrity(short)
            .build_pair();
        match built {
            Err(crate::Error::Config(message)) => {
                assert!(message.contains("at least 32"), "{message}");
            }
            Err(other) => panic!("not the key's error: {other}"),
            Ok(_) => panic!("built with a 16-byte key"),
        }
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let long_enough = crate::integrity::Integrity::new("c1", "k1", key);
        let (_layer, _guard, _writer) = crate::AuditLayer::builder(db)
            .integrity(long_enough)
            .build_pair()
            .expect("a 32-byte key");
    }

    /// A database that was never migrated (no `audit_log` table) is named at the first failed
    /// insert: an error that says how to migrate, and `stats().schema_missing`, long before
    /// `outage_alert` (30 s). Before, it passed for an outage: a warning per retry, an error
    /// after 30 s, neither naming the cause. The records are kept (journal, or the queue
    /// without one) and written once the table is created, the flag then cleared.
    #[tokio::test]
    async fn an_unmigrated_database_is_named_at_once_and_its_records_kept() {
        use sea_orm::EntityTrait;

        for journal in [true, false] {
            // This thread's: the writer runs here (a current-thread runtime).
            let (lines, logs) = crate::test_logs::capture();
            let dir = tempfile::tempdir().expect("dir");
            let db = crate::connect("sqlite::memory:").await.expect("db");
            let mut builder = crate::AuditLayer::builder(db.clone())
                .batch_size(2)
                .max_retry_backoff(Duration::from_millis(100));
            if journal {
                builder = builder.journal(dir.path().join("audit.journal"));
            }
            let (layer, guard, writer) = builder.build_pair().expect("layer");
            let task = tokio::spawn(writer);
            get_each(&layer, &["/a", "/b"]).await;
            assert!(
                wait_for(&guard, |s| s.failed_batches >= 1).await,
                "journal {journal}: {:?}",
                guard.stats()
            );
            let stats = guard.stats();
            assert!(stats.schema_missing, "journal {journal}: {stats:?}");
            assert!(
                stats.database_away_for.expect("away") < Duration::from_secs(30),
                "{stats:?}"
            );
            let text = lines.text();
            let named = text.lines().find(|line| {
                line.contains("ERROR")
                    && line.contains("not migrated")
                    && line.contains("tower_audit::migrate")
                    && line.contains("tower-audit migrate")
                    && line.contains("no such table")
            });
            assert!(named.is_some(), "journal {journal}:\n{text}");
            if journal {
                assert!(named.is_some_and(|line| line.contains("journal")), "{text}");
            }

            crate::migrate(&db).await.expect("migrate");
            assert!(
                wait_for(&guard, |s| s.written == 2 && !s.schema_missing).await,
                "journal {journal}: {:?}",
                guard.stats()
            );
            drop(layer);
            let report = guard
                .shutdown(Duration::from_secs(5))
                .await
                .expect("shutdown");
            assert_eq!((report.written, report.lost), (2, 0), "{report:?}");
            task.await.expect("writer");
            drop(logs);
            let mut paths: Vec<_> = crate::entity::audit_log::Entity::find()
                .all(&db)
                .await
                .expect("rows")
                .into_iter()
                .map(|row| row.path)
                .collect();
            paths.sort();
            assert_eq!(paths, ["/a", "/b"], "journal {journal}");
        }
    }

    /// A panic converting a record to its row (a bug outside the sanitizer, whose own are
    /// caught there) costs that record alone, counted as lost. Before, the writer lost the
    /// batch converted with it, and while the journal takes records the panic reached the
    /// request that journals it.
    #[tokio::test]
    async fn a_panic_converting_a_record_loses_that_record_alone() {
        use sea_orm::EntityTrait;

        let boom = super::intake::PANIC_IN_CONVERSION;
        /// Stops the writer of `layer`: `/a` and `/b` written, the record that panicked lost.
        async fn stop(
            layer: crate::AuditLayer,
            guard: crate::WriterGuard,
            task: tokio::task::JoinHandle<()>,
            db: &sea_orm::DatabaseConnection,
        ) {
            drop(layer);
            let report = guard.shutdown(Duration::from_secs(30)).await.expect("stop");
            task.await.expect("writer");
            assert_eq!((report.written, report.lost), (2, 1), "{report:?}");
            let rows = crate::entity::audit_log::Entity::find().all(db).await;
            let mut paths: Vec<String> = rows.expect("rows").into_iter().map(|r| r.path).collect();
            paths.sort();
            assert_eq!(paths, ["/a", "/b"]);
        }
        // In the writer's conversion of a batch.
        let db = crate::connect("sqlite::memory:").await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/a", boom, "/b"]).await;
        stop(layer, guard, task, &db).await;

        // On the request path, while the journal takes the records (no table yet): the
        // request is answered.
        let dir = tempfile::tempdir().expect("dir");
        let db = crate::connect("sqlite::memory:").await.expect("db");
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(dir.path().join("audit.journal"))
            .max_retry_backoff(Duration::from_millis(100))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/a"]).await;
        assert!(
            wait_for(&guard, |s| s.spilled >= 1).await,
            "{:?}",
            guard.stats()
        );
        get_each(&layer, &[boom, "/b"]).await;
        assert!(
            wait_for(&guard, |s| s.lost == 1).await,
            "{:?}",
            guard.stats()
        );
        crate::migrate(&db).await.expect("migrate");
        assert!(
            wait_for(&guard, |s| s.written == 2).await,
            "{:?}",
            guard.stats()
        );
        stop(layer, guard, task, &db).await;
    }

    /// The journal's bound holds whichever order the builder's calls come in. Given before
    /// `.journal(path)`, `journal_max_bytes` (and `journal_fsync`) were dropped without a word,
    /// and the journal took records up to the default 1 GiB. Here the smallest bound taken (64
    /// KiB, without bodies) fills while the database is away: the journal stops at it, and the
    /// records past it take the queue and, past its capacity, are dropped and counted, not
    /// appended.
    #[tokio::test]
    async fn journal_settings_given_before_the_journal_hold() {
        const BOUND: u64 = 64 << 10;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        // No table: every insert fails, as while the database is away.
        let db = crate::connect("sqlite::memory:").await.expect("db");
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .max_body_bytes(0)
            .journal_max_bytes(BOUND)
            .journal_fsync(super::FsyncPolicy::EveryBatch)
            .journal(&path)
            .capacity(256)
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/first"]).await;
        assert!(
            wait_for(&guard, |s| s.spilled == 1).await,
            "{:?}",
            guard.stats()
        );
        // A row takes a few hundred bytes: 2,000 are far past the bound, far below 1 GiB.
        let paths: Vec<String> = (0..2_000).map(|i| format!("/{i}")).collect();
        for chunk in paths.chunks(100) {
            get_each(
                &layer,
                &chunk.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .await;
            if guard.stats().dropped > 0 {
                break;
            }
        }
        let stats = guard.stats();
        assert!(
            stats.dropped > 0,
            "the journal took every record: {stats:?}"
        );
        let len = std::fs::metadata(&path).expect("journal").len();
        assert!(
            len <= BOUND,
            "{len} bytes journaled past a bound of {BOUND}"
        );
        assert!(len > BOUND / 2, "{len} bytes: the journal was not filled");
        assert_eq!(stats.queue_len, 256, "{stats:?}");
        // And the row the journal refused first, which the writer keeps.
        assert_eq!(
            stats.spilled + stats.dropped + 256 + 1,
            stats.captured,
            "{stats:?}"
        );
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(1))
            .await
            .expect("shutdown");
        assert_eq!(report.written, 0, "{report:?}");
        assert_eq!(report.journaled, stats.spilled, "{report:?}");
        // Still refused at the deadline, what the queue and the writer held is dropped.
        assert_eq!(
            report.dropped + report.journaled,
            stats.captured,
            "{report:?}"
        );
        task.await.expect("writer");
    }

    /// A SQLite table that refuses every row whose path starts with `/refuse`, whatever the
    /// rest of the row holds (the safe form keeps the path).
    async fn refusing_db(dir: &std::path::Path) -> sea_orm::DatabaseConnection {
        use sea_orm::ConnectionTrait;

        let url = format!("sqlite://{}?mode=rwc", dir.join("audit.db").display());
        let db = crate::connect(url).await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        db.execute_unprepared(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log WHEN NEW.path LIKE '/refuse%' \
             BEGIN SELECT RAISE(ABORT, 'refused by policy'); END",
        )
        .await
        .expect("trigger");
        db
    }

    /// Without a journal, a row refused in every form is lost: counted as `lost` only, not
    /// also as `dead_lettered`, so the counters still add up to what was captured.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_row_without_a_journal_is_counted_lost_once() {
        let dir = tempfile::tempdir().expect("dir");
        let db = refusing_db(dir.path()).await;
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .batch_size(2)
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/ok", "/refuse"]).await;
        assert!(
            wait_for(&guard, |s| s.written == 1 && s.lost == 1).await,
            "{:?}",
            guard.stats()
        );
        let stats = guard.stats();
        assert_eq!((stats.captured, stats.dead_lettered), (2, 0));
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.lost), (1, 1));
        task.await.expect("writer");
    }

    /// A row the database refuses even in its safe form goes to the dead-letter journal,
    /// counted once (as `dead_lettered`, not also as `lost`), and the rows around it are
    /// written. The writer keeps that journal open from its first row to its end rather than
    /// opening (and scanning) it once per row: a second writer cannot open it meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_refused_in_every_form_are_dead_lettered_once_each() {
        let dir = tempfile::tempdir().expect("dir");
        let db = refusing_db(dir.path()).await;
        let journal = dir.path().join("audit.journal");
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(&journal)
            .batch_size(4)
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        let paths = [
            "/ok-1",
            "/refuse-1",
            "/ok-2",
            "/refuse-2",
            "/refuse-3",
            "/ok-3",
        ];
        get_each(&layer, &paths).await;
        assert!(
            wait_for(&guard, |s| s.written == 3 && s.dead_lettered == 3).await,
            "{:?}",
            guard.stats()
        );
        let dead = super::JournalConfig {
            path: dir.path().join("audit.journal.dead"),
            max_bytes: 1 << 20,
            fsync: super::FsyncPolicy::Never,
        };
        let busy =
            super::Journal::open(&dead).expect_err("the writer holds the dead-letter journal");
        assert_eq!(busy.kind(), std::io::ErrorKind::ResourceBusy);

        let stats = guard.stats();
        assert_eq!((stats.captured, stats.lost), (6, 0));
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        // The report says what went to the dead-letter journal, and why (it said neither).
        assert_eq!(
            (
                report.written,
                report.lost,
                report.dropped,
                report.dead_lettered
            ),
            (3, 0, 0, 3)
        );
        assert!(
            report
                .last_error
                .as_deref()
                .is_some_and(|error| error.starts_with("the database refused a row")),
            "{report:?}"
        );
        task.await.expect("writer");
        let (mut journal, _) = super::Journal::open(&dead).expect("dead-letter journal");
        let (rows, _) = journal.read_pending(10).expect("read");
        let dead_paths: Vec<_> = rows.iter().map(|row| row.path.as_str()).collect();
        assert_eq!(dead_paths, ["/refuse-1", "/refuse-2", "/refuse-3"]);
    }

    /// [`refusing_db`], that also fails every row whose path starts with `/flaky` while its
    /// `outage` table holds a row, with an error that is not a refusal (malformed JSON), as a
    /// database that is away would.
    async fn refusing_and_flaky_db(dir: &std::path::Path) -> sea_orm::DatabaseConnection {
        use sea_orm::ConnectionTrait;

        let db = refusing_db(dir).await;
        for statement in [
            "CREATE TABLE outage (down INTEGER)",
            "INSERT INTO outage VALUES (1)",
            "CREATE TRIGGER flaky BEFORE INSERT ON audit_log \
             WHEN NEW.path LIKE '/flaky%' AND EXISTS (SELECT 1 FROM outage) \
             BEGIN SELECT json('not json'); END",
        ] {
            db.execute_unprepared(statement).await.expect("outage");
        }
        db
    }

    /// One batch, `/ok-1 /refuse /flaky /ok-2`, into [`refusing_and_flaky_db`]: split to isolate
    /// the refused row after `/ok-1` went in, it meets the outage at `/flaky`, which then ends.
    /// Returns the stats after shutdown, and the dead-letter journal's paths (with a journal).
    async fn split_batch_meets_an_outage(journal: bool) -> (crate::WriterStats, Vec<String>) {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("dir");
        let db = refusing_and_flaky_db(dir.path()).await;
        let mut builder = crate::AuditLayer::builder(db.clone())
            .batch_size(4)
            .flush_interval(Duration::from_secs(3_600));
        if journal {
            builder = builder.journal(dir.path().join("audit.journal"));
        }
        let (layer, guard, writer) = builder.build_pair().expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/ok-1", "/refuse", "/flaky", "/ok-2"]).await;
        assert!(
            wait_for(&guard, |s| s.failed_batches > 0).await,
            "{:?}",
            guard.stats()
        );
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        assert!(
            wait_for(&guard, |s| s.written >= 3 && s.replayed == s.spilled).await,
            "{:?}",
            guard.stats()
        );
        drop(layer);
        let channel = guard.channel.clone();
        guard
            .shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        task.await.expect("writer");
        let stats = channel.snapshot();
        let dead = super::JournalConfig {
            path: dir.path().join("audit.journal.dead"),
            max_bytes: 1 << 20,
            fsync: super::FsyncPolicy::Never,
        };
        let dead_paths = match journal {
            true => {
                let (mut dead, _) = super::Journal::open(&dead).expect("dead-letter journal");
                let (rows, _) = dead.read_pending(10).expect("read");
                rows.into_iter().map(|row| row.path).collect()
            }
            false => Vec::new(),
        };
        (stats, dead_paths)
    }

    /// A batch split to isolate a refused row keeps what went in when the database then goes
    /// away: only the rest is journaled, so `/ok-1` is written once and the refused row
    /// dead-lettered once, and the counters add up to what was captured.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_split_batch_that_meets_an_outage_journals_only_the_rest() {
        let (stats, dead) = split_batch_meets_an_outage(true).await;
        assert_eq!(
            (
                stats.written,
                stats.dead_lettered,
                stats.lost,
                stats.dropped
            ),
            (3, 1, 0, 0),
            "{stats:?}"
        );
        assert_eq!((stats.spilled, stats.replayed), (2, 2), "{stats:?}");
        assert_eq!(dead, ["/refuse"]);
        assert_eq!(
            stats.captured,
            stats.dropped
                + stats.lost
                + stats.dead_lettered
                + (stats.written - stats.replayed)
                + stats.spilled
        );
    }

    /// Without a journal, the batch is retried from where the outage met it: `/ok-1` is not
    /// counted as written twice, nor the refused row as lost twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_split_batch_that_meets_an_outage_is_retried_from_there() {
        let (stats, _) = split_batch_meets_an_outage(false).await;
        assert_eq!(
            (stats.captured, stats.written, stats.lost, stats.dropped),
            (4, 3, 1, 0),
            "{stats:?}"
        );
    }

    /// `ShutdownReport::journaled` is what the journal still holds: rows an outage journaled
    /// after a start that replayed an older journal are reported, not netted against the rows
    /// of that older journal.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_shutdown_reports_the_rows_left_in_the_journal() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        journal_with_a_stranger(&path, &["old-1", "old-2", "old-3"], 3, &[]);
        let db = refusing_and_flaky_db(dir.path()).await;
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .journal(&path)
            .batch_size(2)
            .flush_interval(Duration::from_secs(3_600))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        assert!(
            wait_for(&guard, |s| s.replayed == 3 && s.journal_bytes == 0).await,
            "{:?}",
            guard.stats()
        );
        get_each(&layer, &["/flaky-1", "/flaky-2"]).await;
        assert!(
            wait_for(&guard, |s| s.spilled == 2).await,
            "{:?}",
            guard.stats()
        );
        drop(layer);
        let report = guard
            .shutdown(Duration::from_millis(100))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.journaled), (3, 2), "{report:?}");
        task.await.expect("writer");
    }

    /// With the hash chain on, a refused row written in its safe form is sealed again, and so
    /// are the rows sealed after it; a dead-lettered row leaves the chain, the rows after it
    /// taking its place. Either in the middle of a batch or last in it (the chain's head): the
    /// chain verifies intact over every row written.
    #[cfg(feature = "integrity")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_rows_leave_the_chain_verifiable() {
        use sea_orm::ConnectionTrait;

        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let dir = tempfile::tempdir().expect("dir");
        let db = refusing_db(dir.path()).await;
        // Refused as it is, taken in its safe form (whose `extra` says it was refused).
        db.execute_unprepared(
            "CREATE TRIGGER poison BEFORE INSERT ON audit_log \
             WHEN NEW.path LIKE '/poison%' AND (NEW.extra IS NULL OR NEW.extra NOT LIKE '%rejected%') \
             BEGIN SELECT RAISE(ABORT, 'poison'); END",
        )
        .await
        .expect("trigger");
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(dir.path().join("audit.journal"))
            .integrity(crate::integrity::Integrity::new("c1", "k1", key.clone()))
            .batch_size(3)
            .flush_interval(Duration::from_secs(3_600))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        #[rustfmt::skip]
        let batches = [
            "/ok-1", "/poison-1", "/ok-2",
            "/refuse-1", "/ok-3", "/poison-2",
            "/ok-4", "/ok-5", "/refuse-2",
            "/ok-6",
        ];
        get_each(&layer, &batches).await;
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.lost), (8, 0), "{report:?}");
        task.await.expect("writer");

        let keys = crate::integrity::Keyring::new().key("k1", key);
        let verified = crate::integrity::verify(&db, &keys, Default::default())
            .await
            .expect("verify");
        assert_eq!(verified.chains.len(), 1, "{verified}");
        let chain = &verified.chains[0];
        assert_eq!(chain.first_break, None, "{verified}");
        assert_eq!((chain.rows, chain.last_seq), (8, 8), "{verified}");
    }

    /// A row whose time the backend cannot take (5001 BC) between two good ones, read from the
    /// journal (the layer's clock makes no such time; a journal replays whatever rows it holds):
    /// MySQL's encoder cannot bind it and PostgreSQL refuses it, in its safe form too, so it is
    /// dead-lettered; SQLite stores it. The good rows land, no batch counts as failed, and the
    /// writer goes on to the next request. On MySQL the bind failure was taken for an outage:
    /// the replay was retried forever, and nothing after the row was written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_a_backend_cannot_take_does_not_stop_the_writer() {
        use chrono::TimeZone as _;
        use sea_orm::EntityTrait as _;

        let targets = super::sink::tests::targets().await;
        let ancient = chrono::Utc
            .with_ymd_and_hms(-5000, 1, 1, 0, 0, 0)
            .single()
            .expect("a time");
        for target in &targets {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("audit.journal");
            let row = |name: &str, occurred_at| crate::entity::audit_log::Model {
                record_id: format!("rec-{name}"),
                occurred_at,
                method: "GET".into(),
                path: format!("/{name}"),
                ..super::null_row()
            };
            let now = super::truncate_micros(chrono::Utc::now());
            journal_rows(
                &path,
                &[row("ok-1", now), row("poison", ancient), row("ok-2", now)],
            );

            // One replayed batch of the three; the next request flushed at once.
            let (layer, guard, writer) = crate::AuditLayer::builder(target.db.clone())
                .journal(&path)
                .batch_size(8)
                .flush_interval(Duration::from_millis(10))
                .build_pair()
                .expect("layer");
            let task = tokio::spawn(writer);
            let refused = target.name != "sqlite";
            let (written, dead) = if refused { (2, 1) } else { (3, 0) };
            assert!(
                wait_for(&guard, |s| s.written == written
                    && s.dead_lettered == dead
                    && s.journal_bytes == 0)
                .await,
                "{}: {:?}",
                target.name,
                guard.stats()
            );
            get_each(&layer, &["/after"]).await;
            assert!(
                wait_for(&guard, |s| s.written == written + 1).await,
                "{}: the writer did not go on: {:?}",
                target.name,
                guard.stats()
            );
            let stats = guard.stats();
            assert_eq!(
                (stats.failed_batches, stats.lost, stats.replayed),
                (0, 0, 3),
                "{}: {stats:?}",
                target.name
            );
            drop(layer);
            let report = guard
                .shutdown(Duration::from_secs(10))
                .await
                .expect("shutdown");
            task.await.expect("writer");
            assert_eq!(
                (
                    report.written,
                    report.lost,
                    report.dropped,
                    report.journaled
                ),
                (written + 1, 0, 0, 0),
                "{}: {report:?}",
                target.name
            );
            let mut paths: Vec<String> = crate::entity::audit_log::Entity::find()
                .all(&target.db)
                .await
                .expect("rows")
                .into_iter()
                .map(|row| row.path)
                .collect();
            paths.sort();
            let mut expected = vec!["/after", "/ok-1", "/ok-2"];
            if !refused {
                expected.push("/poison");
            }
            assert_eq!(paths, expected, "{}", target.name);
            if refused {
                let dead = super::JournalConfig {
                    path: dir.path().join("audit.journal.dead"),
                    max_bytes: 1 << 20,
                    fsync: super::FsyncPolicy::Never,
                };
                let (mut dead, _) = super::Journal::open(&dead).expect("dead-letter journal");
                let (rows, _) = dead.read_pending(10).expect("read");
                let dead: Vec<_> = rows.iter().map(|row| row.path.as_str()).collect();
                assert_eq!(dead, ["/poison"], "{}", target.name);
            }
        }
        super::sink::tests::cleanup(targets).await;
    }

    /// With the hash chain and a journal on, a row refused while the journal is replayed: its
    /// safe form (`/poison`) or nothing (`/refuse`, dead-lettered) takes its place, and the row
    /// after it (`/c-1`) is relinked and written; the rows after that (`/b-1`, `/ok`) fail to an
    /// outage and stay in the journal as they were first sealed, after `/c-1` as it was. The
    /// process stops. The next one replays them: they are relinked as the first process would
    /// have relinked them, and the chain verifies intact. Before, only the first process knew
    /// of the relinking, and the next one wrote them linked to the hash of a row the table
    /// does not hold (verify: Reordered at `/b-1`).
    #[cfg(feature = "integrity")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_sealed_after_a_refused_row_are_relinked_after_a_restart() {
        for (refused, written_first, dead_lettered) in [("/poison", 3, 0), ("/refuse", 2, 1)] {
            relinked_after_a_restart(refused, written_first, dead_lettered).await;
        }
    }

    #[cfg(feature = "integrity")]
    async fn relinked_after_a_restart(refused: &str, written_first: u64, dead_lettered: u64) {
        use sea_orm::ConnectionTrait;

        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let integrity = || crate::integrity::Integrity::new("c1", "k1", key.clone());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = refusing_db(dir.path()).await;
        for statement in [
            // Refused as it is, taken in its safe form (whose `extra` says it was refused).
            "CREATE TRIGGER poison BEFORE INSERT ON audit_log \
             WHEN NEW.path LIKE '/poison%' AND (NEW.extra IS NULL OR NEW.extra NOT LIKE '%rejected%') \
             BEGIN SELECT RAISE(ABORT, 'poison'); END",
            // An outage for the paths `outage` lists: an error that is no refusal.
            "CREATE TABLE outage (pattern TEXT)",
            "INSERT INTO outage VALUES ('/a%'), ('/b%')",
            "CREATE TRIGGER flaky BEFORE INSERT ON audit_log \
             WHEN EXISTS (SELECT 1 FROM outage WHERE NEW.path LIKE pattern) \
             BEGIN SELECT json('not json'); END",
        ] {
            db.execute_unprepared(statement).await.expect("schema");
        }
        let writer = || {
            crate::AuditLayer::builder(db.clone())
                .journal(&path)
                .integrity(integrity())
                .batch_size(5)
                .flush_interval(Duration::from_secs(3_600))
                .max_retry_backoff(Duration::from_millis(50))
                .build_pair()
                .expect("layer")
        };

        // One batch, sealed, journaled whole when `/a-1` fails it.
        let (layer, guard, task) = writer();
        let task = tokio::spawn(task);
        get_each(&layer, &["/a-1", refused, "/c-1", "/b-1", "/ok"]).await;
        assert!(
            wait_for(&guard, |s| s.spilled == 5).await,
            "{:?}",
            guard.stats()
        );
        // `/a-1` goes in; the rest is replayed as one batch: the refused row is isolated and
        // replaced, `/c-1` relinked and written, and `/b-1` meets the outage.
        db.execute_unprepared("DELETE FROM outage WHERE pattern = '/a%'")
            .await
            .expect("half the outage over");
        assert!(
            wait_for(&guard, |s| s.written == written_first
                && s.dead_lettered == dead_lettered
                && s.failed_batches >= 2)
            .await,
            "{:?}",
            guard.stats()
        );
        drop(layer);
        let report = guard
            .shutdown(Duration::from_millis(200))
            .await
            .expect("shutdown");
        assert_eq!(report.journaled, 2, "{refused}: {report:?}");
        task.await.expect("writer");

        // The database is back; a new process replays `/b-1` and `/ok`.
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        let (layer, guard, task) = writer();
        let task = tokio::spawn(task);
        assert!(
            wait_for(&guard, |s| s.written == 2 && s.journal_bytes == 0).await,
            "{refused}: {:?}",
            guard.stats()
        );
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.lost), (2, 0), "{report:?}");
        task.await.expect("writer");

        let keys = crate::integrity::Keyring::new().key("k1", key.clone());
        let verified = crate::integrity::verify(&db, &keys, Default::default())
            .await
            .expect("verify");
        let chain = &verified.chains[0];
        assert_eq!(chain.first_break, None, "{refused}: {verified}");
        // What the first process wrote, then `/b-1` and `/ok`.
        let rows = written_first + 2;
        assert_eq!(
            (chain.rows, chain.last_seq),
            (rows, rows as i64),
            "{refused}: {verified}"
        );
    }

    /// With the hash chain on, the chain's last row in the database is the safe form of a
    /// refused row (it notes where it was first sealed), and an earlier process left a journal
    /// holding records the queue overflowed to it (unsealed) ahead of a batch sealed to follow
    /// that row. Replay seals the overflow from the database's last row while a relink is
    /// pending: it took the places the sealed rows hold, and those were refused by the chain's
    /// unique index and dead-lettered, the database healthy.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn overflow_journaled_ahead_of_rows_sealed_after_a_replaced_head_keeps_every_row() {
        use sea_orm::ConnectionTrait;

        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let integrity = || crate::integrity::Integrity::new("c1", "k1", key.clone());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = refusing_db(dir.path()).await;
        db.execute_unprepared(
            "CREATE TRIGGER poison BEFORE INSERT ON audit_log \
             WHEN NEW.path LIKE '/poison%' AND (NEW.extra IS NULL OR NEW.extra NOT LIKE '%rejected%') \
             BEGIN SELECT RAISE(ABORT, 'poison'); END",
        )
        .await
        .expect("trigger");

        // The chain's last row: a refused row's safe form.
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .integrity(integrity())
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_each(&layer, &["/poison-1"]).await;
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.lost), (1, 0), "{report:?}");
        task.await.expect("writer");

        // What a process stopped during an outage leaves: two records the queue overflowed to
        // the journal, then the batch it had sealed (places 2 and 3) when that failed.
        let row = |name: &str| crate::entity::audit_log::Model {
            record_id: format!("rec-{name}"),
            occurred_at: super::truncate_micros(chrono::Utc::now()),
            method: "GET".into(),
            path: format!("/{name}"),
            ..super::null_row()
        };
        let mut sealed = [row("s-1"), row("s-2")];
        crate::integrity::Chain::new(integrity())
            .seal(&db, &mut sealed)
            .await
            .expect("seal");
        assert_eq!(sealed[0].chain_seq, Some(2));
        journal_rows(
            &path,
            &[row("u-1"), row("u-2"), sealed[0].clone(), sealed[1].clone()],
        );

        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .integrity(integrity())
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        assert!(
            wait_for(&guard, |s| s.written + s.dead_lettered == 4).await,
            "{:?}",
            guard.stats()
        );
        stops_with_an_intact_chain(layer, guard, task, &db, &key, 4, 5).await;
    }

    /// A journal an outage filled is replayed into a database that is back while requests go
    /// on: their records take the queue beside the replay, rather than the journal, which is
    /// cut only once replay reaches its end and would refuse them as full until then. On a
    /// current-thread runtime, the requests run while the writer waits on its replay's disk
    /// work, between two batches.
    #[tokio::test]
    async fn records_made_while_a_full_journal_is_replayed_are_written() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let old: Vec<String> = (0..500).map(|i| format!("old-{i}")).collect();
        let old: Vec<&str> = old.iter().map(String::as_str).collect();
        journal_with_a_stranger(&path, &old, old.len(), &[]);
        let full = std::fs::metadata(&path).expect("journal").len();
        let db = crate::connect("sqlite::memory:").await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        // No bodies: the journal's floor is then 64 KiB, below what the old rows take.
        let (layer, guard, writer) = crate::AuditLayer::builder(db)
            .max_body_bytes(0)
            .journal(&path)
            .journal_max_bytes(full)
            .batch_size(5)
            .flush_interval(Duration::from_secs(3_600))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        assert!(
            wait_for(&guard, |s| s.replayed > 0).await,
            "{:?}",
            guard.stats()
        );
        get_each(&layer, &["/new-1", "/new-2", "/new-3", "/new-4", "/new-5"]).await;
        let stats = guard.stats();
        assert!(
            stats.replayed < 500,
            "replayed before the requests: {stats:?}"
        );
        assert_eq!(stats.dropped, 0, "{stats:?}");
        stops_having_written(layer, guard, task, 505).await;
    }

    /// Stops the writer (its layer dropped): it wrote `written` records, and dropped, lost and
    /// left in the journal none.
    async fn stops_having_written(
        layer: crate::AuditLayer,
        guard: crate::WriterGuard,
        task: tokio::task::JoinHandle<()>,
        written: u64,
    ) {
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!(
            (
                report.written,
                report.dropped,
                report.lost,
                report.journaled
            ),
            (written, 0, 0, 0),
            "{report:?}"
        );
        task.await.expect("writer");
    }

    /// Paths `/flaky-{from}` to `/flaky-{to - 1}`, which [`refusing_and_flaky_db`] fails while
    /// its outage lasts.
    fn flaky_paths(from: usize, to: usize) -> Vec<String> {
        (from..to).map(|i| format!("/flaky-{i}")).collect()
    }

    /// [`refusing_and_flaky_db`] in its outage, and a builder whose journal in `dir` holds a
    /// hundred-odd rows (no bodies: the journal's floor, 64 KiB) and whose queue 1,024.
    async fn a_small_journal_in_an_outage(
        dir: &std::path::Path,
    ) -> (sea_orm::DatabaseConnection, crate::AuditLayerBuilder) {
        let db = refusing_and_flaky_db(dir).await;
        let builder = crate::AuditLayer::builder(db.clone())
            .max_body_bytes(0)
            .journal(dir.join("audit.journal"))
            .journal_max_bytes(64 << 10)
            .capacity(1024);
        (db, builder)
    }

    async fn get_paths(layer: &crate::AuditLayer, paths: &[String]) {
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        get_each(layer, &paths).await;
    }

    /// A journal an outage fills refuses rows until replay reaches its end. Records finished
    /// then take the queue (up to its capacity) rather than being dropped at the journal, and
    /// are written once the database is back. The database is tried again within a second of
    /// a failure then, not at the backoff's time (here a minute): the test waits 20 s.
    #[tokio::test]
    async fn records_a_full_journal_refuses_wait_in_the_queue_for_the_database() {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("dir");
        let (db, builder) = a_small_journal_in_an_outage(dir.path()).await;
        let (layer, guard, writer) = builder
            .batch_size(1)
            .retry_initial(Duration::from_secs(60))
            .max_retry_backoff(Duration::from_secs(120))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        get_paths(&layer, &flaky_paths(0, 1)).await;
        assert!(
            wait_for(&guard, |s| s.failed_batches > 0 && s.spilled > 0).await,
            "{:?}",
            guard.stats()
        );
        // Journaled on the request path until the journal is full, then queued.
        get_paths(&layer, &flaky_paths(1, 400)).await;
        let stats = guard.stats();
        assert!(
            stats.spilled > 50 && stats.spilled < 400 && stats.queue_len > 0,
            "the journal did not fill: {stats:?}"
        );
        assert_eq!(stats.dropped, 0, "{stats:?}");
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        assert!(
            wait_for(&guard, |s| s.written == 400).await,
            "{:?}",
            guard.stats()
        );
        let stats = guard.stats();
        // A try a second at most, not a writer trying again and again.
        assert!(stats.failed_batches < 30, "{stats:?}");
        stops_having_written(layer, guard, task, 400).await;
    }

    /// A journal a process left full during an outage refuses the first row a restarted one
    /// journals from the request path: that row is handed to the writer, which keeps it with
    /// the records that take the queue after it, rather than being dropped.
    #[tokio::test]
    async fn the_first_row_a_journal_left_full_refuses_is_kept() {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let old: Vec<String> = (0..500).map(|i| format!("flaky-old-{i}")).collect();
        let old: Vec<&str> = old.iter().map(String::as_str).collect();
        journal_with_a_stranger(&path, &old, old.len(), &[]);
        let full = std::fs::metadata(&path).expect("journal").len();
        let db = refusing_and_flaky_db(dir.path()).await;
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .max_body_bytes(0)
            .journal(&path)
            .journal_max_bytes(full)
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        assert!(
            wait_for(&guard, |s| s.failed_batches > 0).await,
            "{:?}",
            guard.stats()
        );
        get_paths(&layer, &flaky_paths(0, 3)).await;
        let stats = guard.stats();
        assert_eq!((stats.spilled, stats.dropped), (0, 0), "{stats:?}");
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        assert!(
            wait_for(&guard, |s| s.replayed == 500).await,
            "{:?}",
            guard.stats()
        );
        stops_having_written(layer, guard, task, 503).await;
    }

    /// A batch whose insert fails while the journal has room for part of it: the writer keeps
    /// the rest rather than dropping it, and records finished meanwhile wait in the queue; all
    /// are written once the database is back. With the hash chain on, the rows kept were
    /// sealed after those journaled, and the chain verifies whole.
    async fn a_batch_a_full_journal_cannot_take(integrity: Option<&[u8]>) {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("dir");
        let (db, builder) = a_small_journal_in_an_outage(dir.path()).await;
        let mut builder = builder
            .batch_size(400)
            .flush_interval(Duration::from_secs(3_600));
        #[cfg(feature = "integrity")]
        if let Some(key) = integrity {
            builder = builder.integrity(crate::integrity::Integrity::new("c1", "k1", key.to_vec()));
        }
        #[cfg(not(feature = "integrity"))]
        assert!(integrity.is_none());
        let (layer, guard, writer) = builder.build_pair().expect("layer");
        let task = tokio::spawn(writer);
        get_paths(&layer, &flaky_paths(0, 400)).await;
        assert!(
            wait_for(&guard, |s| s.failed_batches > 0 && s.spilled > 0).await,
            "{:?}",
            guard.stats()
        );
        get_paths(&layer, &flaky_paths(400, 500)).await;
        let stats = guard.stats();
        assert!(stats.spilled < 400, "the journal took the batch: {stats:?}");
        assert_eq!(stats.dropped, 0, "{stats:?}");
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        // The kept batch is written; the last 100, less than a batch, wait for the timer, or
        // for the shutdown.
        assert!(
            wait_for(&guard, |s| s.written >= 400 && s.journal_bytes == 0).await,
            "{:?}",
            guard.stats()
        );
        #[cfg(feature = "integrity")]
        if let Some(key) = integrity {
            stops_with_an_intact_chain(layer, guard, task, &db, key, 500, 500).await;
            return;
        }
        stops_having_written(layer, guard, task, 500).await;
    }

    #[tokio::test]
    async fn a_batch_a_full_journal_cannot_take_is_kept_and_written() {
        a_batch_a_full_journal_cannot_take(None).await;
    }

    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn a_sealed_batch_a_full_journal_cannot_take_keeps_the_chain_whole() {
        a_batch_a_full_journal_cannot_take(Some(b"0123456789abcdef0123456789abcdef")).await;
    }

    /// With the hash chain on, a journaled row that fails its replay while the database is away
    /// is retried as it was sealed the first time: sealed again at each try, it took a new
    /// position each time, and the positions the failed tries took were missing from the
    /// chain (verify: Deleted).
    #[cfg(feature = "integrity")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_replayed_through_an_outage_keeps_its_place_in_the_chain() {
        use sea_orm::ConnectionTrait;

        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        // Journaled by a process that stopped during the outage: not sealed yet.
        journal_with_a_stranger(&path, &["flaky-1", "ok-2"], 2, &[]);
        let db = refusing_and_flaky_db(dir.path()).await;
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .integrity(crate::integrity::Integrity::new("c1", "k1", key.clone()))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        assert!(
            wait_for(&guard, |s| s.failed_batches >= 3).await,
            "{:?}",
            guard.stats()
        );
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        assert!(
            wait_for(&guard, |s| s.replayed == 2).await,
            "{:?}",
            guard.stats()
        );
        get_each(&layer, &["/ok-3"]).await;
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!(report.written, 3, "{report:?}");
        task.await.expect("writer");

        let keys = crate::integrity::Keyring::new().key("k1", key);
        let verified = crate::integrity::verify(&db, &keys, Default::default())
            .await
            .expect("verify");
        let chain = &verified.chains[0];
        assert_eq!(chain.first_break, None, "{verified}");
        assert_eq!((chain.rows, chain.last_seq), (3, 3), "{verified}");
    }

    /// What a process that gave up on a replayed insert (cut off at its shutdown deadline)
    /// leaves: six records journaled unsealed (the queue's overflow during an outage), and in
    /// `audit_log`, the first four as it sealed them (places 1..=4), which the database took
    /// all the same. Returns the database and the journal's path; the chain is
    /// [`in_doubt_chain`]'s.
    #[cfg(feature = "integrity")]
    async fn an_insert_in_doubt(
        dir: &std::path::Path,
    ) -> (sea_orm::DatabaseConnection, std::path::PathBuf) {
        let path = dir.join("audit.journal");
        let db = sqlite_in(dir).await;
        let journaled = records("u", 6);
        journal_rows(&path, &journaled);
        let mut in_doubt = journaled[..4].to_vec();
        crate::integrity::Chain::new(in_doubt_chain())
            .seal(&db, &mut in_doubt)
            .await
            .expect("seal");
        insert_as_they_are(&db, &in_doubt).await;
        (db, path)
    }

    /// A SQLite database in `dir` (`audit.db`), migrated.
    #[cfg(feature = "integrity")]
    async fn sqlite_in(dir: &std::path::Path) -> sea_orm::DatabaseConnection {
        let url = format!("sqlite://{}?mode=rwc", dir.join("audit.db").display());
        let db = crate::connect(url).await.expect("db");
        crate::migrate(&db).await.expect("migrate");
        db
    }

    /// `n` records of `GET /{name}-1` and on, not sealed.
    #[cfg(feature = "integrity")]
    fn records(name: &str, n: usize) -> Vec<crate::entity::audit_log::Model> {
        (1..=n)
            .map(|i| crate::entity::audit_log::Model {
                record_id: format!("rec-{name}-{i}"),
                occurred_at: super::truncate_micros(chrono::Utc::now()),
                method: "GET".into(),
                path: format!("/{name}-{i}"),
                ..super::null_row()
            })
            .collect()
    }

    /// Writes `rows` to the journal file at `path`, as a writer appends them.
    fn journal_rows(path: &std::path::Path, rows: &[crate::entity::audit_log::Model]) {
        let bytes: Vec<u8> = rows
            .iter()
            .flat_map(|row| super::journal::raw_frame(&serde_json::to_vec(row).expect("row")))
            .collect();
        std::fs::write(path, bytes).expect("journal");
    }

    /// Inserts `rows` into the table as they are, ids from 1.
    #[cfg(feature = "integrity")]
    async fn insert_as_they_are(
        db: &sea_orm::DatabaseConnection,
        rows: &[crate::entity::audit_log::Model],
    ) {
        use sea_orm::EntityTrait;

        crate::entity::audit_log::Entity::insert_many(rows.iter().cloned().zip(1..).map(
            |(row, id)| {
                sea_orm::IntoActiveModel::into_active_model(crate::entity::audit_log::Model {
                    id,
                    ..row
                })
            },
        ))
        .exec(db)
        .await
        .expect("rows");
    }

    #[cfg(feature = "integrity")]
    const IN_DOUBT_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// The chain of [`an_insert_in_doubt`]: `c1`, key `k1`.
    #[cfg(feature = "integrity")]
    fn in_doubt_chain() -> crate::integrity::Integrity {
        crate::integrity::Integrity::new("c1", "k1", IN_DOUBT_KEY.to_vec())
    }

    /// The next process, started on what [`an_insert_in_doubt`] left: it replays two rows at a
    /// time.
    #[cfg(feature = "integrity")]
    fn replaying_in_doubt(
        db: &sea_orm::DatabaseConnection,
        journal: &std::path::Path,
    ) -> (
        crate::AuditLayer,
        crate::WriterGuard,
        tokio::task::JoinHandle<()>,
    ) {
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(journal)
            .integrity(in_doubt_chain())
            .batch_size(2)
            .build_pair()
            .expect("layer");
        (layer, guard, tokio::spawn(writer))
    }

    /// An insert an earlier process gave up on can be committed by the database after the next
    /// process has read the chain's head and written its first replayed rows: the rows it
    /// sealed then hold places past that head. Seen on PostgreSQL, where a `COPY` whose commit
    /// was sent lands when the link lets it (seed 1796492248169641426 of the random outage
    /// schedule); here a trigger lands it with the new process's first row. The replay passes
    /// over those rows as written, and the rows it seals next must follow them: sealed from the
    /// head it held, they took the same places, were refused by the chain's unique index in
    /// every form and dead-lettered.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_an_earlier_insert_lands_late_are_followed_not_collided_with() {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("dir");
        let (db, path) = an_insert_in_doubt(dir.path()).await;
        for statement in [
            "CREATE TABLE landing AS SELECT * FROM audit_log",
            "UPDATE landing SET id = NULL",
            "DELETE FROM audit_log",
            "CREATE TRIGGER land AFTER INSERT ON audit_log WHEN EXISTS (SELECT 1 FROM landing) \
             BEGIN INSERT OR IGNORE INTO audit_log SELECT * FROM landing; DELETE FROM landing; END",
        ] {
            db.execute_unprepared(statement).await.expect("landing");
        }
        replays_into_an_intact_chain(&db, &path, 4, 6).await;
    }

    /// The insert in doubt lands while the next process cannot reach the table (here: it is
    /// away under another name), before that process has read the chain's head: the replayed
    /// batch it retries must be checked for written rows again. Retried unchecked, it was sealed
    /// from the head the landed rows make, and the insert skipped them as written: their new
    /// places stayed empty, and `verify` reported `Deleted`.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_an_earlier_insert_lands_during_an_outage_are_passed_over() {
        use sea_orm::ConnectionTrait;

        let dir = tempfile::tempdir().expect("dir");
        let (db, path) = an_insert_in_doubt(dir.path()).await;
        for statement in [
            "CREATE TABLE landing AS SELECT * FROM audit_log",
            "DELETE FROM audit_log",
            "ALTER TABLE audit_log RENAME TO audit_log_away",
        ] {
            db.execute_unprepared(statement).await.expect("outage");
        }
        let (layer, guard, task) = replaying_in_doubt(&db, &path);
        assert!(
            wait_for(&guard, |s| s.failed_batches >= 2).await,
            "{:?}",
            guard.stats()
        );
        for statement in [
            "INSERT INTO audit_log_away SELECT * FROM landing",
            "ALTER TABLE audit_log_away RENAME TO audit_log",
        ] {
            db.execute_unprepared(statement).await.expect("landed");
        }
        assert!(
            wait_for(&guard, |s| s.journal_bytes == 0 && s.replayed >= 2).await,
            "{:?}",
            guard.stats()
        );
        stops_with_an_intact_chain(layer, guard, task, &db, IN_DOUBT_KEY, 2, 6).await;
    }

    /// After a restart, the table's last row is the safe form of a refused row (place 5), and
    /// the journal holds the rows an earlier process sealed after it (6 and 7, to follow the
    /// row as it was) with a record the queue overflowed to the journal, unsealed, between
    /// them. Replay relinks 6 to the safe form and seals the overflow row after it; 7, relinked
    /// to its old place, then met that row there and was dead-lettered. Rows relinked across a
    /// restart now take the place after the head as they come.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_relinked_after_a_restart_make_room_for_rows_journaled_among_them() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = sqlite_in(dir.path()).await;
        let mut sealed = records("r", 7);
        let mut chain = crate::integrity::Chain::new(in_doubt_chain());
        chain.seal(&db, &mut sealed).await.expect("seal");
        let mut safe = super::row::safe_form(&sealed[4], "refused");
        chain.reseal(&sealed[4], &mut safe);
        let mut written = sealed[..4].to_vec();
        written.push(safe);
        insert_as_they_are(&db, &written).await;
        let overflow = records("overflow", 1).remove(0);
        journal_rows(&path, &[sealed[5].clone(), overflow, sealed[6].clone()]);

        replays_into_an_intact_chain(&db, &path, 3, 8).await;
    }

    /// A process dead-lettered the row at place 5 (refused in every form) and stopped before it
    /// wrote the rows sealed after it: the table ends at 4, `<journal>.dead` holds the row, and
    /// the journal rows 6 and 7, sealed to follow it. The next process relinks them to follow
    /// row 4, at 5 and 6, as the first would have; they kept their links before, and `verify`
    /// reported a break at 5.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_a_row_dead_lettered_before_a_restart_are_relinked() {
        relinked_after_dead_rows(7, |sealed| sealed[4..5].to_vec()).await;
    }

    /// As above with two rows dead-lettered one after the other (5 and 6), and an older dead row
    /// of the chain (2) that the database holds in another form: the rows sealed after 6 follow
    /// row 4.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_rows_dead_lettered_one_after_another_are_relinked() {
        relinked_after_dead_rows(8, |sealed| {
            let mut older = sealed[1].clone();
            older.row_hash = Some("v1:an-older-attempt".to_owned());
            vec![older, sealed[4].clone(), sealed[5].clone()]
        })
        .await;
    }

    /// The table ends at the safe form of a refused row (place 5); the row sealed after it (6)
    /// was refused in every form and dead-lettered by a process that stopped before it wrote
    /// the rows sealed after that one (7 and 8, in the journal). They follow the safe form, at 6
    /// and 7. The safe form's note took precedence before: the writer waited for rows sealed to
    /// follow row 5 as it was, none came, 7 and 8 kept their links, and `verify` reported a
    /// break at 6.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_a_row_dead_lettered_after_a_safe_form_are_relinked() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = sqlite_in(dir.path()).await;
        let mut sealed = records("s", 5);
        let mut chain = crate::integrity::Chain::new(in_doubt_chain());
        chain.seal(&db, &mut sealed).await.expect("seal");
        let mut safe = super::row::safe_form(&sealed[4], "refused");
        chain.reseal(&sealed[4], &mut safe);
        chain.replaced(&sealed[4], Some(&safe), &mut []);
        let mut after = records("t", 3);
        chain.seal(&db, &mut after).await.expect("seal");
        assert_eq!(after[0].prev_hash, safe.row_hash);
        let mut written = sealed[..4].to_vec();
        written.push(safe);
        insert_as_they_are(&db, &written).await;
        journal_rows(&dir.path().join("audit.journal.dead"), &after[..1]);
        journal_rows(&path, &after[1..]);

        replays_into_an_intact_chain(&db, &path, 2, 7).await;
    }

    /// A process dead-lettered row 5 and stopped before it noted the rows replayed: the journal
    /// still holds 5, 6 and 7 when the next process starts, and it replays them all (the
    /// database takes row 5 this time). Nothing is relinked: the dead row is in the journal,
    /// and the rows sealed after it follow it there. Relinked to follow row 4 when the dead
    /// row was found, 6 and 7 took places 8 and 9, after row 7 as it was, and `verify`
    /// reported places 6 and 7 missing.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn a_dead_lettered_row_still_in_the_journal_is_replayed_in_its_place() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = sqlite_in(dir.path()).await;
        let mut sealed = records("j", 7);
        crate::integrity::Chain::new(in_doubt_chain())
            .seal(&db, &mut sealed)
            .await
            .expect("seal");
        insert_as_they_are(&db, &sealed[..4]).await;
        journal_rows(&dir.path().join("audit.journal.dead"), &sealed[4..5]);
        journal_rows(&path, &sealed[4..]);

        replays_into_an_intact_chain(&db, &path, 3, 7).await;
    }

    /// As a process dead-letters them: row 5, then row 6, which it relinked to follow row 4
    /// (at place 5, noting in `extra` that it was first sealed at 6) before the database refused
    /// it too. Rows 7 and 8, in the journal, were sealed to follow row 6 as it was first sealed:
    /// they follow row 4. They kept their links before (the dead row at 5 was taken as it is
    /// now), and `verify` reported a break at 5.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_a_relinked_row_dead_lettered_before_a_restart_are_relinked() {
        relinked_after_dead_rows(8, |sealed| {
            let mut relinked = [sealed[5].clone()];
            crate::integrity::Chain::new(in_doubt_chain()).replaced(
                &sealed[4],
                None,
                &mut relinked,
            );
            assert_eq!(relinked[0].chain_seq, Some(5));
            vec![sealed[4].clone(), relinked[0].clone()]
        })
        .await;
    }

    /// As a process dead-letters them, three rows of one batch (5, 6 and 7) refused in every
    /// form one after the other: 6 and 7 relinked to follow row 4 when 5 died, 7 again when 6
    /// died, all three dead at place 5. Rows 8 and 9, in the journal, were sealed to follow row
    /// 7 as it was first sealed: they follow row 4. Row 7 noted only its last place before
    /// (place 6, where 6's death had put it), none of the journal's rows waited on that, they
    /// kept their links, and `verify` reported a break at 5.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_three_rows_of_a_batch_dead_lettered_are_relinked() {
        relinked_after_dead_rows(9, |sealed| dead_one_after_another(&sealed[4..7])).await;
    }

    /// As above with four rows of one batch (5 to 8), the last relinked three times.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_four_rows_of_a_batch_dead_lettered_are_relinked() {
        relinked_after_dead_rows(10, |sealed| dead_one_after_another(&sealed[4..8])).await;
    }

    /// Rows 5 and 6 of a batch dead-lettered one after the other, and row 7, relinked twice,
    /// refused too but written in its safe form, at place 5: the table ends there. Rows 8 and 9,
    /// in the journal, were sealed to follow row 7 as it was first sealed: they follow the safe
    /// form, at 6 and 7. The safe form noted the relinked row's last place before (the safe form
    /// starts from a new `extra`), the journal's rows kept their links, and `verify` reported a
    /// break at 6.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_after_the_safe_form_of_a_row_relinked_twice_are_relinked() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = sqlite_in(dir.path()).await;
        let mut sealed = records("w", 9);
        let mut chain = crate::integrity::Chain::new(in_doubt_chain());
        chain.seal(&db, &mut sealed).await.expect("seal");
        let dead = dead_one_after_another(&sealed[4..7]);
        let mut safe = super::row::safe_form(&dead[2], "refused");
        chain.reseal(&dead[2], &mut safe);
        assert_eq!(safe.chain_seq, Some(5));
        let mut written = sealed[..4].to_vec();
        written.push(safe);
        insert_as_they_are(&db, &written).await;
        journal_rows(&dir.path().join("audit.journal.dead"), &dead[..2]);
        journal_rows(&path, &sealed[7..]);

        replays_into_an_intact_chain(&db, &path, 2, 7).await;
    }

    /// A process wrote rows 3 and 4 from its journal, dead-lettered row 5 and stopped before it
    /// noted them replayed: the journal still holds 3 to 7 (3 and 4 already in the table), and
    /// `<journal>.dead` row 5. The next process replays them two at a time, and the database
    /// refuses row 5 again: 6 and 7 follow row 4.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_after_a_dead_row_refused_again_behind_rows_written_are_relinked() {
        relinked_around_rows_refused_at_replay(7, Some(4), 2, 6).await;
    }

    /// As above with the journal holding 4 to 7: row 5 is the last of the first batch replayed.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_after_a_dead_row_refused_again_after_a_row_written_are_relinked() {
        relinked_around_rows_refused_at_replay(7, Some(4), 3, 6).await;
    }

    /// The restart of [`rows_sealed_after_a_row_dead_lettered_before_a_restart_are_relinked`]
    /// with one more row in the journal (6, 7 and 8), and row 6 refused in every form when it
    /// is replayed, relinked to follow row 4. Row 7, relinked after it, follows row 4 in its
    /// place, and row 8, still in the journal, follows row 7. The relink that waited for row 8
    /// was dropped with row 6 before: 8 kept its link, and `verify` reported a break at 6.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_relinked_at_a_restart_follow_a_relinked_row_refused_again() {
        relinked_around_rows_refused_at_replay(8, Some(5), 5, 6).await;
    }

    /// As [`rows_after_a_dead_row_refused_again_behind_rows_written_are_relinked`], the database
    /// taking row 5 this time: it is written in its place, and 6 and 7 follow it.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn a_dead_row_taken_at_replay_behind_rows_written_keeps_its_place() {
        relinked_around_rows_refused_at_replay(7, None, 2, 7).await;
    }

    /// `total` rows sealed, the one at `refused` (an index) one the database refuses in every
    /// form: rows 1 to 4 in the table, row 5 in `<journal>.dead`, `journaled..` in the journal.
    /// Replayed two at a time, the chain is intact, `rows` long (`total` less the dead rows),
    /// and the refused row, if any, dead-lettered (again, when it is row 5).
    #[cfg(feature = "integrity")]
    async fn relinked_around_rows_refused_at_replay(
        total: usize,
        refused: Option<usize>,
        journaled: usize,
        rows: u64,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = refusing_db(dir.path()).await;
        let mut sealed = records("a", total);
        if let Some(refused) = refused {
            sealed[refused].path = "/refuse".into();
        }
        crate::integrity::Chain::new(in_doubt_chain())
            .seal(&db, &mut sealed)
            .await
            .expect("seal");
        insert_as_they_are(&db, &sealed[..4]).await;
        journal_rows(&dir.path().join("audit.journal.dead"), &sealed[4..5]);
        journal_rows(&path, &sealed[journaled..]);

        let (layer, guard, task) = replaying_in_doubt(&db, &path);
        assert!(
            wait_for(&guard, |s| s.journal_bytes == 0
                && s.dead_lettered >= u64::from(refused.is_some()))
            .await,
            "{:?}",
            guard.stats()
        );
        let stats = guard.stats();
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        task.await.expect("writer");
        assert_eq!(
            (stats.dead_lettered, report.lost),
            (u64::from(refused.is_some()), 0),
            "{report:?} {stats:?}"
        );
        let keys = crate::integrity::Keyring::new().key("k1", IN_DOUBT_KEY.to_vec());
        let verified = crate::integrity::verify(&db, &keys, Default::default())
            .await
            .expect("verify");
        let chain = &verified.chains[0];
        assert_eq!(chain.first_break, None, "{verified}");
        assert_eq!(
            (chain.rows, chain.last_seq),
            (rows, rows as i64),
            "{verified}"
        );
    }

    /// `rows`, one batch, refused one after the other in every form, as the writer dead-letters
    /// them: each as it was when it was refused, relinked after the rows refused before it.
    #[cfg(feature = "integrity")]
    fn dead_one_after_another(
        rows: &[crate::entity::audit_log::Model],
    ) -> Vec<crate::entity::audit_log::Model> {
        let mut chain = crate::integrity::Chain::new(in_doubt_chain());
        let mut batch = rows.to_vec();
        for at in 0..batch.len() {
            let (refused, later) = batch[at..].split_at_mut(1);
            chain.replaced(&refused[0], None, later);
        }
        assert!(batch.iter().all(|row| row.chain_seq == rows[0].chain_seq));
        batch
    }

    /// `total` rows sealed: 1 to 4 in the table, the rows `dead` picks (places 5 to `total - 2`,
    /// and any others) in `<journal>.dead`, the last two in the journal. The restarted writer
    /// writes those two after row 4, and the chain is intact, six rows long.
    #[cfg(feature = "integrity")]
    async fn relinked_after_dead_rows(
        total: usize,
        dead: impl FnOnce(&[crate::entity::audit_log::Model]) -> Vec<crate::entity::audit_log::Model>,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = sqlite_in(dir.path()).await;
        let mut sealed = records("d", total);
        crate::integrity::Chain::new(in_doubt_chain())
            .seal(&db, &mut sealed)
            .await
            .expect("seal");
        insert_as_they_are(&db, &sealed[..4]).await;
        journal_rows(&dir.path().join("audit.journal.dead"), &dead(&sealed));
        journal_rows(&path, &sealed[total - 2..]);

        replays_into_an_intact_chain(&db, &path, 2, 6).await;
    }

    /// With the hash chain on, rows sealed before an outage journaled them keep their positions
    /// across a restart: the next process lets new records take the queue only once it has
    /// replayed them. Letting them in after its first replayed batch gave new records the
    /// positions the journaled rows held; those rows were then refused by the chain's unique
    /// index and dead-lettered, with the database healthy.
    #[cfg(feature = "integrity")]
    #[tokio::test]
    async fn rows_sealed_before_a_restart_keep_their_places_in_the_chain() {
        use sea_orm::ConnectionTrait;

        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let integrity = || crate::integrity::Integrity::new("c1", "k1", key.clone());
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit.journal");
        let db = refusing_and_flaky_db(dir.path()).await;

        // One batch of eight, sealed and then journaled when the database fails it.
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .integrity(integrity())
            .batch_size(8)
            .flush_interval(Duration::from_secs(3_600))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        let flaky: Vec<String> = (1..=8).map(|i| format!("/flaky-{i}")).collect();
        let flaky: Vec<&str> = flaky.iter().map(String::as_str).collect();
        get_each(&layer, &flaky).await;
        assert!(
            wait_for(&guard, |s| s.spilled == 8).await,
            "{:?}",
            guard.stats()
        );
        drop(layer);
        let report = guard
            .shutdown(Duration::from_millis(200))
            .await
            .expect("shutdown");
        assert_eq!(report.journaled, 8, "{report:?}");
        task.await.expect("writer");

        // The database is back; a new process replays two rows at a time, and requests come in.
        db.execute_unprepared("DELETE FROM outage")
            .await
            .expect("outage over");
        let (layer, guard, writer) = crate::AuditLayer::builder(db.clone())
            .journal(&path)
            .integrity(integrity())
            .batch_size(2)
            .flush_interval(Duration::from_secs(3_600))
            .build_pair()
            .expect("layer");
        let task = tokio::spawn(writer);
        assert!(
            wait_for(&guard, |s| s.replayed >= 2).await,
            "{:?}",
            guard.stats()
        );
        get_each(&layer, &["/ok-1", "/ok-2", "/ok-3", "/ok-4"]).await;
        assert!(
            wait_for(&guard, |s| s.written + s.dead_lettered == 12).await,
            "{:?}",
            guard.stats()
        );
        stops_with_an_intact_chain(layer, guard, task, &db, &key, 12, 12).await;
    }

    /// Starts a writer that replays the journal at `path` into `db`, waits until the journal is
    /// empty and `n` rows were replayed (or dead-lettered, which the check then refuses), and
    /// checks that it stops with the `n` written and the chain intact, `rows` long.
    #[cfg(feature = "integrity")]
    async fn replays_into_an_intact_chain(
        db: &sea_orm::DatabaseConnection,
        path: &std::path::Path,
        n: u64,
        rows: u64,
    ) {
        let (layer, guard, task) = replaying_in_doubt(db, path);
        assert!(
            wait_for(&guard, |s| s.journal_bytes == 0
                && s.replayed + s.dead_lettered >= n)
            .await,
            "{:?}",
            guard.stats()
        );
        stops_with_an_intact_chain(layer, guard, task, db, IN_DOUBT_KEY, n, rows).await;
    }

    /// Stops the writer (its layer dropped): it wrote `written` rows, dead-lettered and lost
    /// none, and chain `k1`'s rows verify intact, `rows` of them up to position `rows`.
    #[cfg(feature = "integrity")]
    async fn stops_with_an_intact_chain(
        layer: crate::AuditLayer,
        guard: crate::WriterGuard,
        task: tokio::task::JoinHandle<()>,
        db: &sea_orm::DatabaseConnection,
        key: &[u8],
        written: u64,
        rows: u64,
    ) {
        let stats = guard.stats();
        drop(layer);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        task.await.expect("writer");
        assert_eq!(
            (report.written, stats.dead_lettered, report.lost),
            (written, 0, 0),
            "{report:?} {stats:?}"
        );
        let keys = crate::integrity::Keyring::new().key("k1", key.to_vec());
        let verified = crate::integrity::verify(db, &keys, Default::default())
            .await
            .expect("verify");
        let chain = &verified.chains[0];
        assert_eq!(chain.first_break, None, "{verified}");
        assert_eq!(
            (chain.rows, chain.last_seq),
            (rows, rows as i64),
            "{verified}"
        );
    }

    /// A full batch is written when its last record arrives, not when the flush timer fires: a
    /// waiting worker is rung, and a busy one finds the batch before it waits again. Five rounds,
    /// then two batches at once, with a timer that would take an hour. The worker takes what has
    /// queued when it gets to it (a batch of five, say), so after each round fewer than a batch
    /// may wait for the timer, never a whole one; the shutdown writes them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_batch_is_written_without_waiting_for_the_timer() {
        let (service, guard, writer) = batches_of_four().await;
        let task = tokio::spawn(writer);
        let mut sent = 0;
        for round in [4, 4, 4, 4, 4, 8] {
            send(&service, round).await;
            sent += round;
            assert!(
                wait_for(&guard, |s| sent - s.written < 4).await,
                "{sent} records sent, {} written: a full batch waited for the timer",
                guard.stats().written
            );
        }
        assert_eq!(guard.stats().captured, sent);
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.dropped), (sent, 0));
        task.await.expect("writer");
    }

    /// Records the worker already took from the queue count toward its batch: a worker that
    /// holds two of a batch of four and waits is rung by the second record after them, not by
    /// the fourth in the queue (which, with no more traffic, would be the flush timer's hour);
    /// one that holds none is rung by the fourth.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_the_worker_holds_count_toward_the_batch_it_waits_for() {
        let (service, guard, writer) = batches_of_four().await;
        // Two records queued before the worker starts: it takes them, and waits for two more.
        send(&service, 2).await;
        let task = tokio::spawn(writer);
        // The live count: the published stats are only updated after writes.
        let taken = tokio::time::timeout(Duration::from_secs(20), async {
            while guard.stats().queue_len > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(taken.is_ok(), "the worker did not take the queued records");
        send(&service, 2).await;
        assert!(
            wait_for(&guard, |s| s.written >= 4).await,
            "4 records sent, {} written: the batch waited for the timer",
            guard.stats().written
        );
        // Holding none, once it waits again: rung by the fourth.
        tokio::time::sleep(Duration::from_millis(50)).await;
        send(&service, 4).await;
        assert!(
            wait_for(&guard, |s| s.written >= 8).await,
            "8 records sent, {} written: the batch waited for the timer",
            guard.stats().written
        );
        let report = guard
            .shutdown(Duration::from_secs(10))
            .await
            .expect("shutdown");
        assert_eq!((report.written, report.dropped), (8, 0));
        task.await.expect("writer");
    }

    #[test]
    fn uuid_v7_keeps_the_time_and_differs_each_time() {
        let at = chrono::DateTime::from_timestamp_millis(1_764_061_200_123).expect("time");
        let a = super::uuid_v7(at);
        let b = super::uuid_v7(at);
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let (seconds, nanos) = a.get_timestamp().expect("v7 timestamp").to_unix();
        assert_eq!((seconds, nanos), (1_764_061_200, 123_000_000));
    }
}
