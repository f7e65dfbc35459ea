//! The journal: an append-only local file of framed, checksummed rows that the writer uses while
//! the database is away (and, with [`Overflow::Spill`](crate::Overflow::Spill), when the queue is
//! full), and replays into the database, in order, once it is back.
//!
//! A frame is `magic (1 byte) | length (u32 LE) | CRC-32 of the payload (u32 LE) | payload`,
//! the payload being one sanitized row as JSON: no secret reaches the disk either. The file only
//! grows by appends, so a crash or `kill -9` can at worst leave a torn last frame, which the next
//! open detects and cuts off. How far replay has got is kept beside it in `<journal>.replayed`,
//! so a crash in the middle of a replay resumes there (and the rows' unique `record_id` makes a
//! repeated insert a no-op). The journal's directory is synced when it is opened (so a file
//! just created survives a power cut with its rows), and again whenever the side file or the
//! marker changes. The marker is renamed into place; it is removed before the journal is cut,
//! and put right at open if it points past the journal's end: whatever step a crash or a power
//! cut interrupts, rows are replayed again, never skipped.
//!
//! Corruption in the middle of the file costs only the bytes it hit. A whole frame that does
//! not decode as a row, and any stretch of bytes that is not a valid frame (a flipped bit in a
//! payload, a header or a length) but has valid frames after it, is moved to
//! `<journal>.unreadable` at replay, as it was on disk, rather than stopping the replay: the
//! next frame is found again by its header. A frame's header cannot occur inside a payload
//! (its length's last byte is below 5, a control character that JSON escapes), so that search
//! finds only real frames. Corruption with no valid frame after it is a torn append, cut off at
//! open. The marker file also keeps how far frames have been set aside, so that a process
//! restarted before their batch was replayed does not set them aside twice.
//!
//! One writer holds the file's lock while it has the journal open. Under the default
//! [`FsyncPolicy::Interval`], the writer syncs appended rows within the interval, off the
//! request path; an append syncs them itself only when the writer is a whole interval late.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::context::lock;
use crate::entity::audit_log::Model;

const MAGIC: u8 = 0xA7;
const HEADER: usize = 9;
/// A frame longer than this is corruption, not a row (rows are capped well below).
const MAX_FRAME: u32 = 64 << 20;
/// Unreadable bytes a replay holds before it writes them to the side file.
const SIDE_CHUNK: usize = 1 << 20;

/// Unreadable bytes read at replay, not yet in the side file, and how many stretches they
/// began.
#[derive(Default)]
struct SideBytes {
    bytes: Vec<u8>,
    stretches: u64,
}

/// When the journal asks the operating system to put appended rows on disk.
///
/// Rows appended are in the operating system's cache at once, so they survive the process being
/// killed; `fsync` makes them survive a power loss or kernel crash too.
///
/// The default is the builder's: [`Interval`](Self::Interval) of a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// After every append (every batch, or every record appended by a request), before the
    /// append returns.
    EveryBatch,
    /// Within the interval of an append (default: a second), by the writer: off the request
    /// path, without holding up appends, and whether or not more rows come. Should the writer
    /// be a whole interval late (it waits on a stalled database call), the next append syncs
    /// itself.
    Interval(Duration),
    /// Never; leave it to the operating system.
    Never,
}

impl Default for FsyncPolicy {
    /// Within a second of an append, the default [`AuditLayerBuilder::journal_fsync`]
    /// documents.
    ///
    /// [`AuditLayerBuilder::journal_fsync`]: crate::AuditLayerBuilder::journal_fsync
    fn default() -> Self {
        Self::Interval(Duration::from_secs(1))
    }
}

/// Where the journal lives and how big it may grow.
#[derive(Clone, Debug)]
pub(crate) struct JournalConfig {
    pub(crate) path: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) fsync: FsyncPolicy,
}

#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// End of the last whole frame.
    len: u64,
    /// Start of the first frame not yet in the database.
    replayed: u64,
    max_bytes: u64,
    fsync: FsyncPolicy,
    last_sync: Instant,
    unsynced: bool,
    /// End of the last frame moved to the side file (see [`read_pending`](Self::read_pending)),
    /// so that a batch read again after a failed insert does not move it twice.
    set_aside_until: u64,
    /// Stretches moved to the side file since the writer last asked.
    set_aside: u64,
    /// Where each row the last [`read_pending`](Self::read_pending) returned ends: a batch
    /// the database took only part of is marked replayed up to the rows it took.
    row_ends: Vec<u64>,
    /// Where each whole frame the last read passed ends, rows or not: what marking replay past
    /// them takes off `pending_frames`.
    frame_ends: Vec<u64>,
    /// Whole frames from the replay position to the end: the rows a shutdown leaves for the
    /// next start (frames that turn out not to be rows at replay, rarer than rare, included).
    /// Counted here rather than from the writer's counters, which cannot tell rows a previous
    /// process journaled from this one's.
    pending_frames: u64,
    /// The writer has stopped and let go of the file's lock (see [`release`](Self::release)):
    /// nothing is appended any more.
    released: bool,
    /// A row did not fit under the size bound: see [`is_refusing`](Self::is_refusing).
    refusing: bool,
}

/// What opening the journal found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Bytes of a torn or corrupt tail that were cut off.
    pub(crate) cut_bytes: u64,
    /// Bytes of rows still to replay.
    pub(crate) pending_bytes: u64,
}

/// Where a chain's rows waiting in a journal lie (see [`Journal::sealed_places`]).
#[cfg(feature = "integrity")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournaledPlaces {
    /// The lowest place, and the hash its row follows.
    pub(crate) first: (i64, String),
    /// The highest place, and its row's hash.
    pub(crate) last: (i64, String),
}

/// The places of a chain's dead-lettered rows: each row's place, with the hash it follows, its
/// own, and, for a row sealed again before it was refused (relinked), where it was first sealed
/// (see [`Journal::dead_letter_places`]).
#[cfg(feature = "integrity")]
pub(crate) type DeadPlaces =
    std::collections::BTreeMap<i64, (String, String, Option<(i64, String)>)>;

/// Where a row stored as `payload` (a journal frame's) was first sealed, if it was sealed again:
/// its [`CHAIN_REPLACED`](crate::integrity::CHAIN_REPLACED) note.
#[cfg(feature = "integrity")]
fn first_sealed(payload: &[u8]) -> Option<(i64, String)> {
    #[derive(serde::Deserialize)]
    struct Extra {
        extra: Option<serde_json::Value>,
    }
    let extra = serde_json::from_slice::<Extra>(payload).ok()?.extra;
    crate::integrity::noted_first_place(extra.as_ref())
}

impl Journal {
    pub(crate) fn open(config: &JournalConfig) -> io::Result<(Self, Recovered)> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&config.path)?;
        // One writer per journal: two would interleave their appends and replay each other's
        // rows. The lock goes with the file (with the process, however it ends). Only a
        // regular file is locked: a device (`/dev/full` in a test) is nobody's journal.
        let regular = file.metadata()?.is_file();
        let lock = if regular { file.try_lock() } else { Ok(()) };
        match lock {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "another writer has it open (another process, or another layer of this one); \
                     give each writer its own journal",
                ));
            }
            // A file system without locks: go on, as before locks.
            Err(TryLockError::Error(error)) if error.kind() == io::ErrorKind::Unsupported => {}
            Err(TryLockError::Error(error)) => return Err(error),
        }
        if regular {
            // A journal just created exists for good only once its directory is on disk: a
            // power cut could otherwise take the file, synced rows and all.
            sync_dir(&config.path)?;
        }
        let on_disk = file.metadata()?.len();
        let marker = offset_path(&config.path);
        // A marker's copy a process died writing, or a full disk kept from being renamed: the
        // marker itself was never replaced by it.
        let _ = std::fs::remove_file(marker_tmp_path(&marker));
        let marked = read_marker(&marker);
        let (len, pending_frames) = scan(&mut file, on_disk, marked.0)?;
        let mut recovered = Recovered::default();
        if len < on_disk {
            // A torn last frame (the process died mid-append) or corruption: keep what is whole.
            file.set_len(len)?;
            file.sync_all()?;
            recovered.cut_bytes = on_disk - len;
        }
        let (replayed, set_aside_until) = (marked.0.min(len), marked.1.min(len));
        if (replayed, set_aside_until) != marked {
            // The marker points past the journal's end: appended rows the system lost before
            // they reached the disk, or a crash between cutting the journal and removing the
            // marker. Left as it is, the next open would skip the rows appended from here on.
            write_marker(&marker, replayed, set_aside_until)?;
        }
        recovered.pending_bytes = len - replayed;
        file.seek(SeekFrom::End(0))?;
        // Rows a killed process appended may be only in the page cache: they are treated as
        // just appended, synced now under `EveryBatch` and within the interval under `Interval`.
        let found = recovered.pending_bytes > 0;
        if found && config.fsync == FsyncPolicy::EveryBatch {
            file.sync_data()?;
        }
        Ok((
            Self {
                file,
                path: config.path.clone(),
                len,
                replayed,
                max_bytes: config.max_bytes,
                fsync: config.fsync,
                last_sync: Instant::now(),
                unsynced: found && config.fsync != FsyncPolicy::EveryBatch,
                set_aside_until,
                set_aside: 0,
                row_ends: Vec::new(),
                frame_ends: Vec::new(),
                pending_frames,
                released: false,
                refusing: false,
            },
            recovered,
        ))
    }

    /// Bytes of rows waiting to be replayed.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.len - self.replayed
    }

    /// Where the journal ends: rows appended later lie past it.
    pub(crate) fn end(&self) -> u64 {
        self.len
    }

    /// Rows waiting to be replayed (see `pending_frames`).
    pub(crate) fn pending_rows(&self) -> u64 {
        self.pending_frames
    }

    /// Lets go of the file's lock once the writer has stopped, so that a layer built again in
    /// this process (a restart of its server) can take the journal while services of the old
    /// one still live. Synced first; nothing is appended after.
    pub(crate) fn release(&mut self) -> io::Result<()> {
        let synced = self.sync();
        self.released = true;
        let unlocked = self.file.unlock();
        synced.and(unlocked)
    }

    /// Appends as many of `rows` as fit under the size bound; returns how many.
    pub(crate) fn append(&mut self, rows: &[Model]) -> io::Result<usize> {
        if self.released {
            return Err(io::Error::other(
                "the audit writer has stopped; its journal takes no more rows",
            ));
        }
        let mut buffer = Vec::new();
        let mut appended = 0;
        for row in rows {
            let payload = serde_json::to_vec(row).map_err(io::Error::other)?;
            let frame_len = (HEADER + payload.len()) as u64;
            if self.len + buffer.len() as u64 + frame_len > self.max_bytes {
                self.refusing = true;
                break;
            }
            buffer.push(MAGIC);
            buffer.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buffer.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            buffer.extend_from_slice(&payload);
            appended += 1;
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        // One write per batch: a crash can tear only the last frame.
        if let Err(error) = self.file.write_all(&buffer) {
            // A write cut short (a full disk) leaves bytes the length does not count, and the
            // next append would land after them: take them back. Should that fail too, the
            // next open finds them and cuts or sets them aside.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(error);
        }
        self.len += buffer.len() as u64;
        self.pending_frames += appended as u64;
        let overdue = self.sync_overdue();
        self.unsynced = true;
        if self.fsync == FsyncPolicy::EveryBatch || overdue {
            self.sync()?;
        }
        Ok(appended)
    }

    /// Whether the writer is a whole interval late with a sync under
    /// [`FsyncPolicy::Interval`]: it syncs when one is due, but not while it waits on a
    /// database call (up to `insert_timeout`). Then the next append syncs itself, so rows reach
    /// the disk within two intervals whatever the writer is doing.
    fn sync_overdue(&self) -> bool {
        match self.fsync {
            FsyncPolicy::Interval(every) => {
                self.unsynced && self.last_sync.elapsed() >= every.saturating_mul(2)
            }
            _ => false,
        }
    }

    /// Whether the journal refuses rows for its size bound: a row did not fit since it was
    /// last empty. Its length shrinks only when replay reaches its end and cuts it, so until
    /// then it stays full, whatever the size of the next row.
    pub(crate) fn is_refusing(&self) -> bool {
        self.refusing && self.len > 0
    }

    /// Whether appended bytes wait for a sync.
    pub(crate) fn is_unsynced(&self) -> bool {
        self.unsynced
    }

    /// When appended bytes are due to be forced to disk under [`FsyncPolicy::Interval`]: the
    /// writer does it then, off the request path and off the lock ([`begin_sync`](Self::begin_sync)),
    /// whether or not more appends come. `None` when nothing waits for such a sync.
    pub(crate) fn sync_due_at(&self) -> Option<Instant> {
        match self.fsync {
            FsyncPolicy::Interval(every) if self.unsynced => Some(self.last_sync + every),
            _ => None,
        }
    }

    /// Takes what was appended so far for a sync that runs without the journal's lock, so that
    /// appends need not wait for the disk; appends made meanwhile wait for the next one. Returns
    /// the handle to `sync_data`; [`sync_failed`](Self::sync_failed) if that fails.
    pub(crate) fn begin_sync(&mut self) -> io::Result<File> {
        // Timed first: a failure here, too, waits an interval before the next try.
        self.last_sync = Instant::now();
        let handle = self.file.try_clone()?;
        self.unsynced = false;
        Ok(handle)
    }

    /// A sync [`begin_sync`](Self::begin_sync) started failed: its bytes wait for the next.
    pub(crate) fn sync_failed(&mut self) {
        self.unsynced = true;
    }

    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Up to `max_rows` rows from the replay position; returns them with the offset after them.
    ///
    /// A whole frame that does not decode as a row (one written by a version whose row differs,
    /// say), and a stretch of bytes that is not a valid frame (corruption that valid frames
    /// follow: [`open`](Self::open) cut any other), are moved to `<journal>.unreadable` as they
    /// were and passed over: they would otherwise stop every replay, and rows journaled after
    /// them would never reach the database. [`take_set_aside`](Self::take_set_aside) counts
    /// them.
    pub(crate) fn read_pending(&mut self, max_rows: usize) -> io::Result<(Vec<Model>, u64)> {
        let read = self.read_from_replayed(max_rows);
        // Appends write at the file's position, which reading moved: back to the end, whatever
        // the read did.
        self.file.seek(SeekFrom::Start(self.len))?;
        read
    }

    /// [`read_pending`](Self::read_pending)'s reading.
    fn read_from_replayed(&mut self, max_rows: usize) -> io::Result<(Vec<Model>, u64)> {
        let mut rows = Vec::new();
        self.row_ends.clear();
        self.frame_ends.clear();
        let mut offset = self.replayed;
        // Bytes on their way to the side file, written whenever they reach `SIDE_CHUNK`: a
        // journal of nothing but unreadable bytes is read in one go (no rows stop it).
        let mut side = SideBytes::default();
        'read: while rows.len() < max_rows && offset < self.len {
            self.file.seek(SeekFrom::Start(offset))?;
            let mut reader = io::BufReader::new(Read::take(&mut self.file, self.len - offset));
            while rows.len() < max_rows && offset < self.len {
                let Some((header, payload)) = read_frame(&mut reader, self.len - offset)? else {
                    // Not a frame: set aside everything up to the next one.
                    drop(reader);
                    let next =
                        next_frame(&mut self.file, offset + 1, self.len)?.unwrap_or(self.len);
                    let mut from = offset.max(self.set_aside_until);
                    if from < next {
                        side.stretches += 1;
                    }
                    while from < next {
                        let n = (next - from).min(SIDE_CHUNK as u64);
                        self.file.seek(SeekFrom::Start(from))?;
                        let start = side.bytes.len();
                        side.bytes.resize(start + n as usize, 0);
                        self.file.read_exact(&mut side.bytes[start..])?;
                        from += n;
                        if side.bytes.len() >= SIDE_CHUNK {
                            self.set_aside_or_drop(&mut side, from);
                        }
                    }
                    offset = next;
                    continue 'read;
                };
                let end = offset + (HEADER + payload.len()) as u64;
                offset = end;
                self.frame_ends.push(end);
                match serde_json::from_slice::<Model>(&payload) {
                    Ok(row) => {
                        rows.push(row);
                        self.row_ends.push(end);
                    }
                    Err(_) if end <= self.set_aside_until => {}
                    Err(_) => {
                        side.bytes.extend_from_slice(&header);
                        side.bytes.extend_from_slice(&payload);
                        side.stretches += 1;
                        if side.bytes.len() >= SIDE_CHUNK {
                            drop(reader);
                            self.set_aside_or_drop(&mut side, end);
                            continue 'read;
                        }
                    }
                }
            }
        }
        if !side.bytes.is_empty() {
            self.set_aside_or_drop(&mut side, offset);
        }
        Ok((rows, offset))
    }

    /// The places in `chain_id`'s hash chain of the rows waiting for replay: the highest, and
    /// the lowest with the hash it follows. Rows sealed before they were journaled (a batch
    /// whose insert failed) may lie behind rows journaled unsealed (records the queue overflowed
    /// to the journal): a process that replays them must seal those past every journaled place,
    /// not from what the database holds, or two rows would take one place. Unreadable frames
    /// are passed over (replay sets them aside).
    #[cfg(feature = "integrity")]
    pub(crate) fn sealed_places(&mut self, chain_id: &str) -> io::Result<Option<JournaledPlaces>> {
        let mut found: Option<JournaledPlaces> = None;
        let scanned = self.scan_places(chain_id, |seq, prev, hash, _| match &mut found {
            None => {
                found = Some(JournaledPlaces {
                    first: (seq, prev),
                    last: (seq, hash),
                });
            }
            Some(places) => {
                if seq < places.first.0 {
                    places.first = (seq, prev);
                }
                if seq > places.last.0 {
                    places.last = (seq, hash);
                }
            }
        });
        // Appends write at the file's position: back to the end.
        self.file.seek(SeekFrom::Start(self.len))?;
        scanned.map(|()| found)
    }

    /// Where the rows of `chain_id` the database refused in every form were sealed, from the
    /// dead-letter journal beside `config`'s, `<journal>.dead`, if there is one: each row's place,
    /// with the hash it follows, its own, and where it was first sealed if it was sealed again
    /// (its [`CHAIN_REPLACED`](crate::integrity::CHAIN_REPLACED) note).
    #[cfg(feature = "integrity")]
    pub(crate) fn dead_letter_places(
        config: &JournalConfig,
        chain_id: &str,
    ) -> io::Result<DeadPlaces> {
        let path = beside(&config.path, ".dead");
        let mut places = DeadPlaces::new();
        if !path.exists() {
            return Ok(places);
        }
        let dead = JournalConfig {
            path,
            fsync: FsyncPolicy::Never,
            ..config.clone()
        };
        let (mut journal, _) = Self::open(&dead)?;
        journal.scan_places(chain_id, |seq, prev, hash, payload| {
            places.insert(seq, (prev, hash, first_sealed(payload)));
        })?;
        Ok(places)
    }

    /// Calls `each` with the place, the hash it follows, the row's hash and the row as stored of
    /// every sealed row of `chain_id` from where replay stands to the end. Unreadable frames are
    /// passed over.
    #[cfg(feature = "integrity")]
    fn scan_places(
        &mut self,
        chain_id: &str,
        mut each: impl FnMut(i64, String, String, &[u8]),
    ) -> io::Result<()> {
        /// The row's place, without decoding the rest of it.
        #[derive(serde::Deserialize)]
        struct Place {
            chain_id: Option<String>,
            chain_seq: Option<i64>,
            row_hash: Option<String>,
            prev_hash: Option<String>,
        }
        let mut offset = self.replayed;
        while offset < self.len {
            self.file.seek(SeekFrom::Start(offset))?;
            let mut reader = io::BufReader::new(Read::take(&mut self.file, self.len - offset));
            while offset < self.len {
                let Some((_, payload)) = read_frame(&mut reader, self.len - offset)? else {
                    drop(reader);
                    offset = next_frame(&mut self.file, offset + 1, self.len)?.unwrap_or(self.len);
                    break;
                };
                offset += (HEADER + payload.len()) as u64;
                let Ok(Place {
                    chain_id: Some(id),
                    chain_seq: Some(seq),
                    row_hash: Some(hash),
                    prev_hash: Some(prev),
                }) = serde_json::from_slice(&payload)
                else {
                    continue;
                };
                if id == chain_id {
                    each(seq, prev, hash, &payload);
                }
            }
        }
        Ok(())
    }

    /// [`set_aside_up_to`](Self::set_aside_up_to), or, when the side file cannot take the bytes
    /// (a full disk, the name taken by a directory), passes over them all the same: they are
    /// unreadable either way, and replay must not stop on them, for the rows after them, until
    /// the process restarts.
    fn set_aside_or_drop(&mut self, side: &mut SideBytes, until: u64) {
        if let Err(error) = self.set_aside_up_to(side, until) {
            tracing::error!(
                %error,
                bytes = side.bytes.len(),
                "tower-audit: unreadable journaled bytes could not be copied to the journal's \
                 `.unreadable` file; replay goes on without them"
            );
            side.bytes.clear();
            self.set_aside += std::mem::take(&mut side.stretches);
            self.set_aside_until = until;
        }
    }

    /// Appends `side`'s bytes to the side file and records that everything unreadable before
    /// `until` is there. The side file first: a crash before the marker is written costs a
    /// second copy there, never the bytes.
    fn set_aside_up_to(&mut self, side: &mut SideBytes, until: u64) -> io::Result<()> {
        let path = beside(&self.path, ".unreadable");
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(&side.bytes)?;
        file.sync_data()?;
        sync_dir(&path)?;
        side.bytes.clear();
        self.set_aside += std::mem::take(&mut side.stretches);
        self.set_aside_until = until;
        write_marker(
            &offset_path(&self.path),
            self.replayed,
            self.set_aside_until,
        )
    }

    /// Where each row the last [`read_pending`](Self::read_pending) returned ends.
    pub(crate) fn row_ends(&self) -> &[u64] {
        &self.row_ends
    }

    /// Where replay stands: everything before it is in the database.
    pub(crate) fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Stretches of unreadable bytes moved to `<journal>.unreadable` since the last call.
    pub(crate) fn take_set_aside(&mut self) -> u64 {
        std::mem::take(&mut self.set_aside)
    }

    /// Records that everything before `offset` is in the database. Once the whole journal is,
    /// it is truncated to nothing. Holds `self` over the marker's syncs and the cut's: the
    /// writer uses [`mark_replayed_unlocked`], which does not hold the journal's lock over them.
    #[cfg(test)]
    pub(crate) fn mark_replayed(&mut self, offset: u64) -> io::Result<()> {
        let mark = self.begin_mark(offset);
        mark.write()?;
        if !mark.cut {
            return Ok(());
        }
        match self.cut(&mark)? {
            Cut::Done(file) => file.sync_all(),
            Cut::Appended(mark) => mark.write(),
        }
    }

    /// The part of marking replay done under the lock: advances the replay position, and says
    /// what [`Mark::write`] is to put on disk.
    pub(crate) fn begin_mark(&mut self, offset: u64) -> Mark {
        let from = self.replayed;
        // Advanced even if the marker cannot be written: the rows are in the database, and a
        // later open that replays them again inserts nothing.
        self.replayed = offset.min(self.len);
        let passed = self
            .frame_ends
            .iter()
            .filter(|&&end| end > from && end <= self.replayed)
            .count();
        self.pending_frames = self.pending_frames.saturating_sub(passed as u64);
        Mark {
            marker: offset_path(&self.path),
            replayed: self.replayed,
            set_aside_until: self.set_aside_until,
            cut: self.replayed == self.len,
        }
    }

    /// Cuts the journal to nothing, once the marker of a `mark` that replayed all of it has
    /// been removed for good, unless rows were appended since: then they wait for their
    /// replay, and the returned mark is to be written. A crash before the cut is on disk
    /// replays the rows again (a no-op), where a marker left behind the cut would skip the rows
    /// appended after it.
    pub(crate) fn cut(&mut self, mark: &Mark) -> io::Result<Cut> {
        if self.len != mark.replayed {
            return Ok(Cut::Appended(Mark {
                cut: false,
                ..mark.clone()
            }));
        }
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.len = 0;
        self.replayed = 0;
        self.pending_frames = 0;
        self.set_aside_until = 0;
        self.row_ends.clear();
        self.frame_ends.clear();
        self.refusing = false;
        // Synced by the caller: appends made meanwhile are synced with the cut.
        self.unsynced = false;
        Ok(Cut::Done(self.file.try_clone()?))
    }
}

/// Where replay stands, to be put on disk after [`Journal::begin_mark`] without the
/// journal's lock.
#[derive(Clone, Debug)]
pub(crate) struct Mark {
    marker: PathBuf,
    replayed: u64,
    set_aside_until: u64,
    /// Everything is replayed: the marker is removed, then the journal [cut](Journal::cut).
    cut: bool,
}

impl Mark {
    /// Writes the marker (or removes it, before a cut) and puts that on disk.
    pub(crate) fn write(&self) -> io::Result<()> {
        if self.cut {
            write_marker(&self.marker, 0, 0)
        } else {
            write_marker(&self.marker, self.replayed, self.set_aside_until)
        }
    }
}

/// What [`Journal::cut`] did.
#[derive(Debug)]
pub(crate) enum Cut {
    /// Cut: the file, to sync without the lock.
    Done(File),
    /// Rows were appended after the mark: not cut, and this marker is to be written instead.
    Appended(Mark),
}

/// Records that everything before `offset` is in the database, as
/// [`Journal::mark_replayed`] does, but with the journal's lock held only to update it, never
/// over a sync: requests append under that lock while the database is away, and would wait for
/// the disk.
pub(crate) fn mark_replayed_unlocked(journal: &Mutex<Journal>, offset: u64) -> io::Result<()> {
    let mark = lock(journal).begin_mark(offset);
    mark.write()?;
    if !mark.cut {
        return Ok(());
    }
    let cut = lock(journal).cut(&mark)?;
    match cut {
        Cut::Done(file) => {
            before_sync();
            let synced = file.sync_all();
            if synced.is_err() {
                // The rows appended since the cut wait for the next sync.
                lock(journal).sync_failed();
            }
            synced
        }
        Cut::Appended(mark) => mark.write(),
    }
}

/// A whole, checksummed frame around `payload`, as [`Journal::append`] writes one.
#[cfg(test)]
pub(crate) fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![MAGIC];
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn parse_header(header: &[u8; HEADER]) -> Option<(u32, u32)> {
    if header[0] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    (len <= MAX_FRAME).then_some((len, crc))
}

/// A whole frame from `reader`, which has `left` bytes before the journal's end: `None` if
/// what is there is not one (a header that does not parse, a length past the end, a payload
/// that fails its checksum).
fn read_frame(reader: &mut impl Read, left: u64) -> io::Result<Option<([u8; HEADER], Vec<u8>)>> {
    let mut header = [0u8; HEADER];
    if left < HEADER as u64 {
        return Ok(None);
    }
    reader.read_exact(&mut header)?;
    let Some((len, crc)) = parse_header(&header) else {
        return Ok(None);
    };
    if left - (HEADER as u64) < u64::from(len) {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    Ok((crc32fast::hash(&payload) == crc).then_some((header, payload)))
}

/// Where the first whole, valid frame in `from..end` starts, if one does.
///
/// Only a frame's header can start one: a payload (JSON) never holds the bytes below 5 that end
/// a header's length, so a candidate inside a valid payload fails to parse, and one in corrupt
/// bytes fails its checksum. Corruption is rare, so this reads plainly.
fn next_frame(file: &mut File, from: u64, end: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 64 << 10;
    let mut chunk = Vec::new();
    let mut at = from;
    while at < end {
        let n = CHUNK.min(end - at);
        chunk.resize(n as usize, 0);
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut chunk)?;
        for (i, _) in chunk.iter().enumerate().filter(|(_, b)| **b == MAGIC) {
            let candidate = at + i as u64;
            file.seek(SeekFrom::Start(candidate))?;
            let mut reader = io::BufReader::new(Read::take(&mut *file, end - candidate));
            if read_frame(&mut reader, end - candidate)?.is_some() {
                return Ok(Some(candidate));
            }
        }
        at += n;
    }
    Ok(None)
}

/// The end of the last whole, valid frame, and how many valid frames start at or after
/// `from`. Bytes that are not a valid frame are kept when a valid one follows them (replay sets
/// them aside); at the end of the file they are a torn append, cut off.
fn scan(file: &mut File, on_disk: u64, from: u64) -> io::Result<(u64, u64)> {
    let mut at = 0u64;
    let mut good = 0u64;
    let mut frames = 0u64;
    while at < on_disk {
        file.seek(SeekFrom::Start(at))?;
        let mut reader = io::BufReader::new(Read::take(&mut *file, on_disk - at));
        while let Some((_, payload)) = read_frame(&mut reader, on_disk - at)? {
            frames += u64::from(at >= from);
            at += (HEADER + payload.len()) as u64;
            good = at;
        }
        drop(reader);
        if at >= on_disk {
            break;
        }
        match next_frame(file, at + 1, on_disk)? {
            Some(next) => at = next,
            None => break,
        }
    }
    Ok((good, frames))
}

/// The file beside the journal at `path` named `<journal><suffix>`: its marker (`.replayed`),
/// its side file (`.unreadable`), its dead letters (`.dead`).
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn offset_path(path: &Path) -> PathBuf {
    beside(path, ".replayed")
}

/// Where a new marker is written before it is renamed over the marker.
fn marker_tmp_path(marker: &Path) -> PathBuf {
    marker.with_extension("replayed.tmp")
}

/// The marker: where replay stands, and the end of the last bytes set aside.
fn read_marker(path: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut numbers = text.split_whitespace().map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// Writes the marker, or removes it when there is nothing to mark, and puts the change on disk
/// before it returns.
fn write_marker(path: &Path, replayed: u64, set_aside_until: u64) -> io::Result<()> {
    before_sync();
    if replayed == 0 && set_aside_until == 0 {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    } else {
        // Write beside and rename: the marker is never seen half written.
        let tmp = marker_tmp_path(path);
        let written = File::create(&tmp).and_then(|mut file| {
            file.write_all(format!("{replayed} {set_aside_until}").as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        });
        if let Err(error) = written {
            // A full disk: the half-made copy goes (what it failed on is the error).
            let _ = std::fs::remove_file(&tmp);
            return Err(error);
        }
    }
    sync_dir(path)
}

#[cfg(test)]
thread_local! {
    /// Run before each sync of a marker or a cut, on this thread: tests look at the lock then.
    static BEFORE_SYNC: std::cell::RefCell<Option<Box<dyn Fn()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs the test hook [`BEFORE_SYNC`], if there is one; nothing outside tests.
fn before_sync() {
    #[cfg(test)]
    BEFORE_SYNC.with(|hook| {
        if let Some(hook) = &*hook.borrow() {
            hook();
        }
    });
}

/// Puts a rename, a removal or a new file in `path`'s directory on disk: until then a power cut
/// can bring the old marker back, or take a new file away. Where the directory cannot be read
/// or the file system cannot sync a directory, the journal works as it did without this sync
/// (PostgreSQL lets the same errors pass); a sync that fails is an error.
#[cfg(unix)]
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match File::open(dir).and_then(|dir| dir.sync_all()) {
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::PermissionDenied
                    | io::ErrorKind::InvalidInput
                    | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Windows cannot open a directory as a file; its renames are not made durable this way.
#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FsyncPolicy::default()` is the policy the builder documents as its default, a second;
    /// it was `Never`, so `.journal_fsync(FsyncPolicy::default())` turned syncing off.
    #[test]
    fn the_default_policy_is_the_builders() {
        assert_eq!(
            FsyncPolicy::default(),
            FsyncPolicy::Interval(Duration::from_secs(1))
        );
    }

    fn row(n: i64) -> Model {
        Model {
            record_id: format!("rec-{n}"),
            occurred_at: chrono::Utc::now(),
            request_id: Some(format!("req-{n}")),
            method: "GET".into(),
            path: format!("/items/{n}"),
            status: Some(200),
            latency_us: n,
            request_body: Some("{\"a\":1}".into()),
            request_bytes: 7,
            ..crate::writer::null_row()
        }
    }

    fn config(dir: &Path) -> JournalConfig {
        JournalConfig {
            path: dir.join("audit.journal"),
            max_bytes: 1 << 20,
            fsync: FsyncPolicy::EveryBatch,
        }
    }

    /// The journal's path in `dir`, and its side file's.
    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        (
            dir.join("audit.journal"),
            dir.join("audit.journal.unreadable"),
        )
    }

    /// The frame `append` writes for `row(n)`.
    fn row_frame(n: i64) -> Vec<u8> {
        raw_frame(&serde_json::to_vec(&row(n)).unwrap())
    }

    /// Every pending row's number (its `latency_us`) and the offset after them.
    fn read_all(journal: &mut Journal) -> (Vec<i64>, u64) {
        let (rows, offset) = journal.read_pending(usize::MAX).unwrap();
        (rows.iter().map(|r| r.latency_us).collect(), offset)
    }

    #[test]
    fn appends_replays_in_order_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered, Recovered::default());
        let rows: Vec<_> = (0..10).map(row).collect();
        assert_eq!(journal.append(&rows).unwrap(), 10);
        let (first, offset) = journal.read_pending(4).unwrap();
        assert_eq!(
            first.iter().map(|r| r.latency_us).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        journal.mark_replayed(offset).unwrap();
        drop(journal);

        // Reopened: the replay position survived.
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert!(recovered.pending_bytes > 0);
        let (rest, offset) = journal.read_pending(100).unwrap();
        assert_eq!(
            rest.iter().map(|r| r.latency_us).collect::<Vec<_>>(),
            [4, 5, 6, 7, 8, 9]
        );
        journal.mark_replayed(offset).unwrap();
        assert_eq!(journal.pending_bytes(), 0);
        assert_eq!(
            std::fs::metadata(dir.path().join("audit.journal"))
                .unwrap()
                .len(),
            0
        );
        assert!(!dir.path().join("audit.journal.replayed").exists());
    }

    #[test]
    fn torn_last_frame_is_cut_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.journal");
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1), row(2)]).unwrap();
        drop(journal);
        let whole = std::fs::metadata(&path).unwrap().len();
        // A crash in the middle of the next append.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[MAGIC, 200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"'])
            .unwrap();
        drop(file);

        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 11);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        let (rows, _) = journal.read_pending(10).unwrap();
        assert_eq!(rows.len(), 2);
        // Appends continue after the cut.
        journal.append(&[row(3)]).unwrap();
        assert_eq!(journal.read_pending(10).unwrap().0.len(), 3);
    }

    /// A flipped byte in a frame that whole frames follow costs that frame only: it is set
    /// aside at replay and the rows after it are read. The same flip in the last frame is a torn
    /// append, cut off at open.
    #[test]
    fn a_corrupt_frame_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.journal");
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1), row(2), row(3)]).unwrap();
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        let frames = frame_starts(&bytes);
        assert_eq!(frames.len(), 3);

        let mut flipped = bytes.clone();
        flipped[frames[1] + HEADER + 3] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 0);
        let (read, _) = read_all(&mut journal);
        assert_eq!(read, [1, 3]);
        assert_eq!(journal.take_set_aside(), 1);
        let side = dir.path().join("audit.journal.unreadable");
        assert_eq!(std::fs::read(&side).unwrap(), flipped[frames[1]..frames[2]]);
        drop(journal);

        let mut flipped = bytes.clone();
        flipped[frames[2] + HEADER + 3] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, (bytes.len() - frames[2]) as u64);
        assert_eq!(journal.read_pending(10).unwrap().0.len(), 2);
    }

    /// Corruption in a frame's header (its magic byte, its length) or bytes that are no frame
    /// at all cost only those bytes: the next frame is found again by its header, and the
    /// bytes are set aside at replay, as they were. After them, a torn append is still cut.
    #[test]
    fn a_corrupt_header_or_stray_bytes_cost_only_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let (path, side) = files(dir.path());
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1), row(2), row(3)]).unwrap();
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        let frames = frame_starts(&bytes);
        let set_len = |bytes: &mut Vec<u8>, len: u32| {
            bytes[frames[1] + 1..frames[1] + 5].copy_from_slice(&len.to_le_bytes());
        };
        let middle = (frames[2] - frames[1] - HEADER) as u32;
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut magic = bytes.clone();
        magic[frames[1]] ^= 0xff;
        cases.push(("magic byte", magic));
        let mut past_the_end = bytes.clone();
        set_len(&mut past_the_end, 1 << 20);
        cases.push(("length past the end", past_the_end));
        let mut into_the_next = bytes.clone();
        set_len(&mut into_the_next, middle + 20);
        cases.push(("length into the next frame", into_the_next));
        let mut short = bytes.clone();
        set_len(&mut short, middle - 20);
        cases.push(("length short of the payload", short));
        let mut too_long = bytes.clone();
        set_len(&mut too_long, MAX_FRAME + 1);
        cases.push(("length over the bound", too_long));

        for (what, corrupt) in cases {
            std::fs::write(&path, &corrupt).unwrap();
            let _ = std::fs::remove_file(&side);
            let _ = std::fs::remove_file(dir.path().join("audit.journal.replayed"));
            let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
            assert_eq!(recovered.cut_bytes, 0, "{what}");
            let (read, offset) = read_all(&mut journal);
            assert_eq!(read, [1, 3], "{what}");
            assert_eq!(offset, corrupt.len() as u64, "{what}");
            assert_eq!(journal.take_set_aside(), 1, "{what}");
            assert_eq!(
                std::fs::read(&side).unwrap(),
                corrupt[frames[1]..frames[2]],
                "{what}"
            );
        }

        // Stray bytes between whole frames (a header's magic among them), and a torn append
        // after the last whole frame.
        let stray = [MAGIC, 7, 0, 0, 0, 1, 2, 3, 4, b'{', 0, MAGIC, 0xff, 0xff];
        let mut strayed = bytes[..frames[1]].to_vec();
        strayed.extend_from_slice(&stray);
        strayed.extend_from_slice(&bytes[frames[1]..]);
        let whole = strayed.len();
        strayed.extend_from_slice(&bytes[frames[2]..frames[2] + 30]);
        std::fs::write(&path, &strayed).unwrap();
        let _ = std::fs::remove_file(&side);
        let _ = std::fs::remove_file(dir.path().join("audit.journal.replayed"));
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 30);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole as u64);
        let (read, _) = read_all(&mut journal);
        assert_eq!(read, [1, 2, 3]);
        assert_eq!(journal.take_set_aside(), 1);
        assert_eq!(std::fs::read(&side).unwrap(), stray);
        // Appends go on after what was read.
        journal.append(&[row(4)]).unwrap();
        let (rows, offset) = journal.read_pending(10).unwrap();
        assert_eq!(rows.len(), 4);
        journal.mark_replayed(offset).unwrap();
        assert_eq!(journal.pending_bytes(), 0);
        assert_eq!(std::fs::read(&side).unwrap(), stray);
    }

    /// A process that set bytes aside and stopped before their batch was replayed does not set
    /// them aside again when it starts over: the marker keeps how far they went.
    #[test]
    fn set_aside_bytes_stay_set_aside_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (path, side) = files(dir.path());
        let stranger = raw_frame(br#"{"not":"a row"}"#);
        let journaled = [
            row_frame(1),
            stranger.clone(),
            vec![MAGIC, 0xff],
            row_frame(3),
        ];
        std::fs::write(&path, journaled.concat()).unwrap();
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        let mut expected = stranger.clone();
        expected.extend_from_slice(&[MAGIC, 0xff]);

        let (rows, _) = journal.read_pending(10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(journal.take_set_aside(), 2);
        assert_eq!(std::fs::read(&side).unwrap(), expected);
        // The database failed the batch, and the process stopped.
        drop(journal);

        for _ in 0..2 {
            let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
            assert_eq!(recovered.cut_bytes, 0);
            let (read, offset) = read_all(&mut journal);
            assert_eq!(read, [1, 3]);
            assert_eq!(journal.take_set_aside(), 0);
            assert_eq!(std::fs::read(&side).unwrap(), expected);
            assert_eq!(offset, std::fs::metadata(&path).unwrap().len());
        }

        // Replayed at last: the journal and its marker go, and a later stray is set aside.
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        let (_, offset) = journal.read_pending(10).unwrap();
        journal.mark_replayed(offset).unwrap();
        assert!(!dir.path().join("audit.journal.replayed").exists());
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&stranger).unwrap();
        drop(file);
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(5)]).unwrap();
        let (rows, _) = journal.read_pending(10).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(journal.take_set_aside(), 1);
        expected.extend_from_slice(&stranger);
        assert_eq!(std::fs::read(&side).unwrap(), expected);
    }

    /// A marker past the journal's end (the rows it counted lost before they reached the disk,
    /// or a crash between cutting the journal and removing the marker) is put right at open,
    /// so it cannot skip the rows appended after.
    #[test]
    fn a_marker_past_the_journal_is_put_right_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = files(dir.path());
        let marker = dir.path().join("audit.journal.replayed");
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1), row(2), row(3), row(4)]).unwrap();
        let (_, offset) = journal.read_pending(3).unwrap();
        journal.mark_replayed(offset).unwrap();
        drop(journal);
        assert!(marker.exists());
        // The journal cut, its marker left.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();

        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.pending_bytes, 0);
        journal.append(&[row(5), row(6), row(7)]).unwrap();
        // The process is killed before these are replayed.
        drop(journal);
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(
            recovered.pending_bytes,
            std::fs::metadata(&path).unwrap().len()
        );
        assert_eq!(read_all(&mut journal).0, [5, 6, 7]);
    }

    /// A copy of the marker left half written (the process died, or the disk was full, before
    /// its rename) is removed at open, and the marker it never replaced is read.
    #[test]
    fn a_half_written_marker_copy_goes_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("audit.journal.replayed");
        let tmp = dir.path().join("audit.journal.replayed.tmp");
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1), row(2), row(3)]).unwrap();
        let (_, offset) = journal.read_pending(1).unwrap();
        journal.mark_replayed(offset).unwrap();
        drop(journal);
        assert!(marker.exists());
        std::fs::write(&tmp, "").unwrap();

        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        assert!(!tmp.exists(), "the half-written copy is left");
        assert_eq!(read_all(&mut journal).0, [2, 3]);
    }

    /// Replayed whole, the journal is cut only once its marker is gone: a marker that cannot
    /// be removed leaves the journal as it was, to be replayed again (a no-op), never a marker
    /// behind an empty journal.
    #[test]
    fn the_journal_is_cut_only_once_its_marker_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = files(dir.path());
        let marker = dir.path().join("audit.journal.replayed");
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1), row(2)]).unwrap();
        let (_, offset) = journal.read_pending(1).unwrap();
        journal.mark_replayed(offset).unwrap();
        let (_, offset) = journal.read_pending(10).unwrap();
        let whole = std::fs::metadata(&path).unwrap().len();
        // A marker that cannot be removed: a directory with something in it.
        std::fs::remove_file(&marker).unwrap();
        std::fs::create_dir(&marker).unwrap();
        std::fs::write(marker.join("x"), b"x").unwrap();
        assert!(journal.mark_replayed(offset).is_err());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        drop(journal);

        std::fs::remove_dir_all(&marker).unwrap();
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(read_all(&mut journal).0, [1, 2]);
    }

    /// Unreadable bytes larger than a replay holds at once reach the side file whole, in
    /// order: a long stretch of zeros (a file system's hole) and many frames that are not rows.
    #[test]
    fn large_unreadable_stretches_reach_the_side_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (path, side) = files(dir.path());
        let zeros = vec![0u8; 3 * SIDE_CHUNK + 17];
        let strangers: Vec<Vec<u8>> = (0..25)
            .map(|i| raw_frame(format!(r#"{{"not":"{i}{}"}}"#, "a".repeat(100_000)).as_bytes()))
            .collect();
        let mut bytes = row_frame(1);
        bytes.extend_from_slice(&zeros);
        bytes.extend(row_frame(2));
        strangers.iter().for_each(|s| bytes.extend_from_slice(s));
        bytes.extend(row_frame(3));
        std::fs::write(&path, &bytes).unwrap();

        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 0);
        let (read, offset) = read_all(&mut journal);
        assert_eq!(read, [1, 2, 3]);
        assert_eq!(offset, bytes.len() as u64);
        assert_eq!(journal.take_set_aside(), 26);
        let mut expected = zeros.clone();
        strangers.iter().for_each(|s| expected.extend_from_slice(s));
        assert!(std::fs::read(&side).unwrap() == expected);

        // Read again after a failed insert, and after a restart: nothing is set aside twice.
        journal.read_pending(10).unwrap();
        drop(journal);
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(journal.read_pending(10).unwrap().0.len(), 3);
        assert_eq!(journal.take_set_aside(), 0);
        assert!(std::fs::read(&side).unwrap() == expected);
    }

    /// Found by a probe: a side file that cannot be written (a full disk; here a directory in
    /// its place) failed the whole read, rows before the damage included, and the writer then
    /// stopped replaying for the rest of the process. Replay now passes over the bytes.
    #[test]
    fn a_side_file_that_cannot_be_written_does_not_stop_replay() {
        let dir = tempfile::tempdir().unwrap();
        let (path, side) = files(dir.path());
        std::fs::create_dir(&side).unwrap();
        let mut bytes = row_frame(1);
        bytes.extend_from_slice(&[0x55; 5000]);
        (2..=4).for_each(|n| bytes.extend(row_frame(n)));
        std::fs::write(&path, &bytes).unwrap();

        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        let (read, offset) = read_all(&mut journal);
        assert_eq!(read, [1, 2, 3, 4]);
        assert_eq!(offset, bytes.len() as u64);
        assert_eq!(journal.take_set_aside(), 1);
        journal.mark_replayed(offset).unwrap();
        assert_eq!(journal.pending_bytes(), 0);
        assert!(side.is_dir());
    }

    /// Damage to a journal, where a property test puts it.
    #[derive(Debug, Clone)]
    enum Damage {
        /// One byte flipped (xor with a non-zero mask).
        Flip { at: usize, mask: u8 },
        /// A run of bytes overwritten.
        Overwrite { at: usize, bytes: Vec<u8> },
        /// Bytes inserted (a stray write).
        Insert { at: usize, bytes: Vec<u8> },
        /// The file cut short (a torn append, a lost tail).
        Truncate { at: usize },
    }

    fn damage() -> impl proptest::strategy::Strategy<Value = Damage> {
        use proptest::prelude::*;
        let at = 0usize..4096;
        let bytes = proptest::collection::vec(any::<u8>(), 1..64);
        prop_oneof![
            (at.clone(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
            (at.clone(), bytes.clone()).prop_map(|(at, bytes)| Damage::Overwrite { at, bytes }),
            (at.clone(), bytes).prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
            at.prop_map(|at| Damage::Truncate { at }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever one piece of damage does to a journal, opening and replaying it neither
        /// fails nor panics, and gives back exactly the rows whose frames it left whole, in
        /// order: the frames after the damage are found again, the damaged ones are cut (at the
        /// end) or set aside (before whole frames), and nothing is made up.
        #[test]
        fn damage_costs_only_the_frames_it_touched(
            rows in 1usize..12,
            damage in damage(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.journal");
            let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
            journal.append(&(0..rows as i64).map(row).collect::<Vec<_>>()).unwrap();
            drop(journal);
            let original = std::fs::read(&path).unwrap();
            let starts = frame_starts(&original);
            let frames: Vec<(usize, usize)> = starts
                .iter()
                .zip(starts.iter().skip(1).chain([&original.len()]))
                .map(|(&start, &end)| (start, end))
                .collect();

            let mut damaged = original.clone();
            // Which frames keep their bytes, where they now are or not.
            let whole: Vec<bool> = match &damage {
                Damage::Flip { at, mask } => {
                    let at = at % original.len();
                    damaged[at] ^= mask;
                    frames.iter().map(|&(s, e)| !(s..e).contains(&at)).collect()
                }
                Damage::Overwrite { at, bytes } => {
                    let at = at % original.len();
                    let end = (at + bytes.len()).min(original.len());
                    damaged[at..end].copy_from_slice(&bytes[..end - at]);
                    frames.iter().map(|&(s, e)| damaged[s..e] == original[s..e]).collect()
                }
                Damage::Insert { at, bytes } => {
                    let at = at % (original.len() + 1);
                    damaged.splice(at..at, bytes.iter().copied());
                    frames.iter().map(|&(s, e)| at <= s || at >= e).collect()
                }
                Damage::Truncate { at } => {
                    let at = at % original.len();
                    damaged.truncate(at);
                    frames.iter().map(|&(_, e)| e <= at).collect()
                }
            };
            std::fs::write(&path, &damaged).unwrap();

            let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
            let (got, offset) = read_all(&mut journal);
            let expected: Vec<i64> = (0..rows as i64).filter(|&n| whole[n as usize]).collect();
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert_eq!(offset, journal.len);
            journal.mark_replayed(offset).unwrap();
            proptest::prop_assert_eq!(journal.pending_bytes(), 0);
        }
    }

    /// Where each frame of a journal written by `append` starts.
    fn frame_starts(bytes: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            starts.push(at);
            let len = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap());
            at += HEADER + len as usize;
        }
        starts
    }

    /// A whole frame that is not a row is moved to the side file once, however often its batch
    /// is read again, and the rows around it replay; the replay position then steps past it.
    #[test]
    fn a_frame_that_is_not_a_row_is_set_aside_and_replay_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.journal");
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal.append(&[row(1)]).unwrap();
        drop(journal);
        let stranger = raw_frame(br#"{"not":"a row"}"#);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&stranger).unwrap();
        drop(file);
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 0, "a whole frame is not torn");
        journal.append(&[row(3)]).unwrap();

        let side = dir.path().join("audit.journal.unreadable");
        for _ in 0..2 {
            // Read twice, as after an insert that failed: set aside once.
            let (read, offset) = read_all(&mut journal);
            assert_eq!(read, [1, 3]);
            assert_eq!(offset, std::fs::metadata(&path).unwrap().len());
            assert_eq!(std::fs::read(&side).unwrap(), stranger);
        }
        assert_eq!(journal.take_set_aside(), 1);
        assert_eq!(journal.take_set_aside(), 0);

        // In batches of one (the writer's probe while the database is away), it is passed over
        // to the next row, and not set aside again.
        let (first, offset) = journal.read_pending(1).unwrap();
        assert_eq!(first[0].latency_us, 1);
        journal.mark_replayed(offset).unwrap();
        let (next, offset) = journal.read_pending(1).unwrap();
        assert_eq!(next[0].latency_us, 3);
        journal.mark_replayed(offset).unwrap();
        assert_eq!(journal.pending_bytes(), 0);
        assert_eq!(std::fs::read(&side).unwrap(), stranger);
        assert_eq!(journal.take_set_aside(), 0);
    }

    /// An append the file system cuts short (a full disk; here the process's file size limit)
    /// takes its bytes back: the journal keeps whole frames only, and the next append lands
    /// right after them rather than after the torn bytes. Linux, with `bash` for the limit: the
    /// test runs itself again in a child under `ulimit -f 4` with `SIGXFSZ` ignored.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_append_cut_short_takes_its_bytes_back() {
        const CHILD: &str = "TOWER_AUDIT_TEST_JOURNAL_UNDER_LIMIT";
        const LIMIT: usize = 4096;
        let fixed = chrono::Utc::now();
        // Rows of one size: the same time, numbers of two digits.
        let rows = |numbers: std::ops::Range<i64>| -> Vec<Model> {
            numbers
                .map(|n| Model {
                    occurred_at: fixed,
                    ..row(n)
                })
                .collect()
        };
        let frame = raw_frame(&serde_json::to_vec(&rows(10..11)[0]).unwrap()).len();
        // Whole frames that leave room for one more, not two.
        let whole = (LIMIT / frame - 1) as i64;

        if let Some(dir) = std::env::var_os(CHILD) {
            let (mut journal, _) = Journal::open(&config(Path::new(&dir))).unwrap();
            assert_eq!(
                journal.append(&rows(10..10 + whole)).unwrap(),
                whole as usize
            );
            let cut_short = journal.append(&rows(10 + whole..12 + whole));
            assert!(cut_short.is_err(), "the write crossed the limit");
            assert_eq!(journal.append(&rows(12 + whole..13 + whole)).unwrap(), 1);
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("bash")
            .arg("-c")
            .arg(r#"trap '' XFSZ; ulimit -f 4 && exec "$0" --exact "$1" --test-threads 1"#)
            .arg(std::env::current_exe().unwrap())
            .arg("writer::journal::tests::an_append_cut_short_takes_its_bytes_back")
            .env(CHILD, dir.path())
            .output()
            .expect("bash runs the child under a file size limit");
        assert!(
            child.status.success(),
            "the child failed: {}\n{}{}",
            child.status,
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );
        let (path, _) = files(dir.path());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            (whole as usize + 1) * frame
        );
        let (mut journal, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 0);
        let mut expected: Vec<i64> = (10..10 + whole).collect();
        expected.push(12 + whole);
        assert_eq!(read_all(&mut journal).0, expected);
    }

    /// A second writer on the same journal is refused with a clear error rather than
    /// interleaving its appends with the first's; once the first is gone, it opens.
    #[test]
    fn one_writer_per_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut first, _) = Journal::open(&config(dir.path())).unwrap();
        first.append(&[row(1)]).unwrap();
        let error = Journal::open(&config(dir.path())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ResourceBusy);
        assert!(error.to_string().contains("another writer"), "{error}");
        // The refused open changed nothing.
        let (rows, _) = first.read_pending(10).unwrap();
        assert_eq!(rows.len(), 1);
        drop(first);
        let (mut second, recovered) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(recovered.cut_bytes, 0);
        assert_eq!(second.read_pending(10).unwrap().0.len(), 1);
    }

    /// Under `Interval`, an append leaves the sync to the writer, unless the writer is a whole
    /// interval late: then the append syncs itself.
    #[test]
    fn an_append_syncs_itself_only_when_the_writer_is_late() {
        let dir = tempfile::tempdir().unwrap();
        let every = Duration::from_secs(60);
        let mut config = config(dir.path());
        config.fsync = FsyncPolicy::Interval(every);
        let (mut journal, _) = Journal::open(&config).unwrap();
        journal.append(&[row(1)]).unwrap();
        assert!(journal.is_unsynced());
        let due = journal.sync_due_at().expect("a sync is due");
        assert!(due > Instant::now() && due <= Instant::now() + every);

        // Due, but the writer's to do: still waiting.
        journal.last_sync -= every + every / 2;
        journal.append(&[row(2)]).unwrap();
        assert!(journal.is_unsynced());

        // A whole interval past due: the append syncs.
        journal.last_sync -= every;
        journal.append(&[row(3)]).unwrap();
        assert!(!journal.is_unsynced());
        assert_eq!(journal.sync_due_at(), None);

        // The writer's own sync: the bytes are taken, and the next interval runs from it.
        journal.append(&[row(4)]).unwrap();
        let handle = journal.begin_sync().unwrap();
        handle.sync_data().unwrap();
        assert!(!journal.is_unsynced());
        journal.append(&[row(5)]).unwrap();
        assert!(journal.sync_due_at().expect("due") > Instant::now() + every / 2);
    }

    /// Rows found at open (a killed process's, perhaps only in the page cache) wait for a sync
    /// like rows just appended: the writer's, within the interval.
    #[test]
    fn rows_found_at_open_are_synced_like_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.fsync = FsyncPolicy::Interval(Duration::from_secs(1));
        let (journal, _) = Journal::open(&config).unwrap();
        assert_eq!(
            journal.sync_due_at(),
            None,
            "an empty journal has nothing to sync"
        );
        drop(journal);
        std::fs::write(&config.path, row_frame(1)).unwrap();
        let (journal, recovered) = Journal::open(&config).unwrap();
        assert!(recovered.pending_bytes > 0);
        assert!(journal.is_unsynced());
        assert!(journal.sync_due_at().expect("due") <= Instant::now() + Duration::from_secs(1));
        drop(journal);
        config.fsync = FsyncPolicy::Never;
        let (journal, _) = Journal::open(&config).unwrap();
        assert_eq!(journal.sync_due_at(), None);
    }

    /// The journal counts the rows it holds for the next start: appended, found after the
    /// replay position at open, and taken off as replay passes them, a batch or part of one.
    #[test]
    fn pending_rows_are_counted_through_appends_replay_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        journal
            .append(&(1..=5).map(row).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(journal.pending_rows(), 5);
        journal.read_pending(2).unwrap();
        journal.mark_replayed(journal.row_ends()[0]).unwrap();
        assert_eq!(journal.pending_rows(), 4);
        let (_, offset) = journal.read_pending(2).unwrap();
        journal.mark_replayed(offset).unwrap();
        assert_eq!(journal.pending_rows(), 2);
        drop(journal);
        let (mut journal, _) = Journal::open(&config(dir.path())).unwrap();
        assert_eq!(journal.pending_rows(), 2);
        let (_, offset) = journal.read_pending(10).unwrap();
        journal.mark_replayed(offset).unwrap();
        assert_eq!(journal.pending_rows(), 0);
    }

    /// Marking replay holds the journal's lock only to update it: the marker's syncs and the
    /// cut's run without it, so a request appending meanwhile does not wait for the disk. One
    /// such append lands between the marker's removal and the cut: the cut is called off, and
    /// the row waits for its replay, its place recorded.
    #[test]
    fn replay_is_marked_without_holding_the_lock_over_syncs() {
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let (mut opened, _) = Journal::open(&config(dir.path())).unwrap();
        opened
            .append(&(1..=4).map(row).collect::<Vec<_>>())
            .unwrap();
        let journal = Arc::new(Mutex::new(opened));
        let free: Arc<Mutex<Vec<bool>>> = Arc::default();
        let append_at_sync = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hook = {
            let (journal, free, append_at_sync) =
                (journal.clone(), free.clone(), append_at_sync.clone());
            move || {
                let guard = journal.try_lock();
                free.lock().unwrap().push(guard.is_ok());
                if let Ok(mut journal) = guard
                    && append_at_sync.swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    journal.append(&[row(5)]).unwrap();
                }
            }
        };
        BEFORE_SYNC.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));

        let (_, offset) = journal.lock().unwrap().read_pending(2).unwrap();
        mark_replayed_unlocked(&journal, offset).unwrap();
        let (_, offset) = journal.lock().unwrap().read_pending(10).unwrap();
        append_at_sync.store(true, std::sync::atomic::Ordering::Relaxed);
        mark_replayed_unlocked(&journal, offset).unwrap();
        // The row appended while the cut was under way waits for its replay, not cut off.
        let (rows, offset) = journal.lock().unwrap().read_pending(10).unwrap();
        assert_eq!(rows.iter().map(|r| r.latency_us).collect::<Vec<_>>(), [5]);
        mark_replayed_unlocked(&journal, offset).unwrap();
        BEFORE_SYNC.with(|slot| slot.borrow_mut().take());

        let free = free.lock().unwrap().clone();
        assert!(free.len() >= 4 && free.iter().all(|&f| f), "{free:?}");
        let (path, _) = files(dir.path());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "cut at the end");
        assert_eq!(journal.lock().unwrap().pending_rows(), 0);
    }

    #[test]
    fn size_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.max_bytes = 1000;
        let (mut journal, _) = Journal::open(&config).unwrap();
        let rows: Vec<_> = (0..100).map(row).collect();
        let appended = journal.append(&rows).unwrap();
        assert!(appended > 0 && appended < 100);
        assert_eq!(journal.append(&rows).unwrap(), 0);
        assert!(std::fs::metadata(&config.path).unwrap().len() <= 1000);
    }
}
