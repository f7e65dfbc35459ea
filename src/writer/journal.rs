//! The journal: an append-only local file of framed, checksummed rows that the writer uses while
//! the database is away (and, with [`Overflow::Spill`](crate::Overflow::Spill), when the queue is
//! full), and replays into the database, in order, once it is back.
//!
//! A frame is `magic (1 byte) | length (u32 LE) | CRC-32 of the payload (u32 LE) | payload`,
//! the payload being one sanitized row as JSON: no secret reaches the disk either. The file only
//! grows by appends, so a crash or `kill -9` can at worst leave a torn last frame, which the next
//! open detects and cuts off. How far replay has got is kept beside it in `<journal>.replayed`,
//! so a crash in the middle of a replay resumes there (and the rows' unique `record_id` makes a
//! repeated insert a no-op). A whole frame that fails its checksum (with whole frames after
//! it: at the end it is a torn append) or does not decode as a row is moved to
//! `<journal>.unreadable` at replay, framed the same way, rather than stopping it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::entity::audit_log::Model;

const MAGIC: u8 = 0xA7;
const HEADER: usize = 9;
/// A frame longer than this is corruption, not a row (rows are capped well below).
const MAX_FRAME: u32 = 64 << 20;

/// When the journal asks the operating system to put appended rows on disk.
///
/// Rows appended are in the operating system's cache at once, so they survive the process being
/// killed; `fsync` makes them survive a power loss or kernel crash too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// After every append (every batch, or every record appended by a request).
    EveryBatch,
    /// At most once per interval (default: every second).
    Interval(Duration),
    /// Never; leave it to the operating system.
    #[default]
    Never,
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
    /// Frames moved to the side file since the writer last asked.
    set_aside: u64,
}

/// What opening the journal found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Bytes of a torn or corrupt tail that were cut off.
    pub(crate) cut_bytes: u64,
    /// Bytes of rows still to replay.
    pub(crate) pending_bytes: u64,
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
        let on_disk = file.metadata()?.len();
        let len = scan(&mut file, on_disk)?;
        let mut recovered = Recovered::default();
        if len < on_disk {
            // A torn last frame (the process died mid-append) or corruption: keep what is whole.
            file.set_len(len)?;
            file.sync_all()?;
            recovered.cut_bytes = on_disk - len;
        }
        let replayed = read_offset(&offset_path(&config.path)).min(len);
        recovered.pending_bytes = len - replayed;
        file.seek(SeekFrom::End(0))?;
        Ok((
            Self {
                file,
                path: config.path.clone(),
                len,
                replayed,
                max_bytes: config.max_bytes,
                fsync: config.fsync,
                last_sync: Instant::now(),
                unsynced: false,
                set_aside_until: 0,
                set_aside: 0,
            },
            recovered,
        ))
    }

    /// Bytes of rows waiting to be replayed.
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.len - self.replayed
    }

    /// Appends as many of `rows` as fit under the size bound; returns how many.
    pub(crate) fn append(&mut self, rows: &[Model]) -> io::Result<usize> {
        let mut buffer = Vec::new();
        let mut appended = 0;
        for row in rows {
            let payload = serde_json::to_vec(row).map_err(io::Error::other)?;
            let frame_len = (HEADER + payload.len()) as u64;
            if self.len + buffer.len() as u64 + frame_len > self.max_bytes {
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
        self.file.write_all(&buffer)?;
        self.len += buffer.len() as u64;
        self.unsynced = true;
        self.sync_if_due()?;
        Ok(appended)
    }

    pub(crate) fn sync_if_due(&mut self) -> io::Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        let due = match self.fsync {
            FsyncPolicy::EveryBatch => true,
            FsyncPolicy::Interval(every) => self.last_sync.elapsed() >= every,
            FsyncPolicy::Never => false,
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Up to `max_rows` rows from the replay position; returns them with the offset after them.
    ///
    /// A whole frame whose payload fails its checksum or does not decode as a row (one written by
    /// a version whose row differs, say) is moved to `<journal>.unreadable`, framed as here, and
    /// passed over: it would otherwise stop every replay, and rows journaled after it would
    /// never reach the database. [`take_set_aside`](Self::take_set_aside) counts them.
    pub(crate) fn read_pending(&mut self, max_rows: usize) -> io::Result<(Vec<Model>, u64)> {
        let mut reader = self.file.try_clone()?;
        reader.seek(SeekFrom::Start(self.replayed))?;
        let mut reader = io::BufReader::new(reader.take(self.len - self.replayed));
        let mut rows = Vec::new();
        let mut offset = self.replayed;
        while rows.len() < max_rows && offset < self.len {
            let mut header = [0u8; HEADER];
            reader.read_exact(&mut header)?;
            let (len, crc) = parse_header(&header).ok_or_else(|| bad("bad frame header"))?;
            let mut payload = vec![0u8; len as usize];
            reader.read_exact(&mut payload)?;
            let end = offset + (HEADER + payload.len()) as u64;
            let row = (crc32fast::hash(&payload) == crc)
                .then(|| serde_json::from_slice::<Model>(&payload).ok())
                .flatten();
            match row {
                Some(row) => rows.push(row),
                None if end <= self.set_aside_until => {}
                None => {
                    self.set_aside_frame(&header, &payload)?;
                    self.set_aside_until = end;
                    self.set_aside += 1;
                }
            }
            offset = end;
        }
        self.file.seek(SeekFrom::End(0))?;
        Ok((rows, offset))
    }

    /// Where replay stands: everything before it is in the database.
    pub(crate) fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Frames moved to `<journal>.unreadable` since the last call.
    pub(crate) fn take_set_aside(&mut self) -> u64 {
        std::mem::take(&mut self.set_aside)
    }

    fn set_aside_frame(&self, header: &[u8; HEADER], payload: &[u8]) -> io::Result<()> {
        let mut path = self.path.as_os_str().to_owned();
        path.push(".unreadable");
        let mut side = OpenOptions::new().create(true).append(true).open(path)?;
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        frame.extend_from_slice(header);
        frame.extend_from_slice(payload);
        side.write_all(&frame)?;
        side.sync_data()
    }

    /// Records that everything before `offset` is in the database. Once the whole journal is,
    /// it is truncated to nothing.
    pub(crate) fn mark_replayed(&mut self, offset: u64) -> io::Result<()> {
        self.replayed = offset.min(self.len);
        if self.replayed == self.len {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.file.sync_all()?;
            self.len = 0;
            self.replayed = 0;
            self.set_aside_until = 0;
            self.unsynced = false;
        }
        write_offset(&offset_path(&self.path), self.replayed)
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

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("audit journal: {what}"))
}

fn parse_header(header: &[u8; HEADER]) -> Option<(u32, u32)> {
    if header[0] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    let crc = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    (len <= MAX_FRAME).then_some((len, crc))
}

/// The end of the last whole, valid frame. A whole frame that fails its checksum is kept when a
/// valid one follows it (replay sets it aside); at the end of the file it is a torn append, cut
/// off with whatever follows a header that does not parse.
fn scan(file: &mut File, on_disk: u64) -> io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = io::BufReader::new(&mut *file);
    let mut at = 0u64;
    let mut good = 0u64;
    loop {
        let mut header = [0u8; HEADER];
        if at + HEADER as u64 > on_disk || reader.read_exact(&mut header).is_err() {
            return Ok(good);
        }
        let Some((len, crc)) = parse_header(&header) else {
            return Ok(good);
        };
        if at + (HEADER as u64) + u64::from(len) > on_disk {
            return Ok(good);
        }
        let mut payload = vec![0u8; len as usize];
        if reader.read_exact(&mut payload).is_err() {
            return Ok(good);
        }
        at += HEADER as u64 + u64::from(len);
        if crc32fast::hash(&payload) == crc {
            good = at;
        }
    }
}

fn offset_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".replayed");
    PathBuf::from(name)
}

fn read_offset(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_offset(path: &Path, offset: u64) -> io::Result<()> {
    if offset == 0 {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    // Write beside and rename: the offset file is never seen half written.
    let tmp = path.with_extension("replayed.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(offset.to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (rows, _) = journal.read_pending(10).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.latency_us).collect::<Vec<_>>(),
            [1, 3]
        );
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
            let (rows, offset) = journal.read_pending(10).unwrap();
            assert_eq!(
                rows.iter().map(|r| r.latency_us).collect::<Vec<_>>(),
                [1, 3]
            );
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
