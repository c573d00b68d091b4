//! The durable log every node writes: append-only segment files, one CRC per record, and group
//! commit (one `fsync` for every record waiting), in the shape of etcd's WAL.
//!
//! On disk a log is a folder of segments named by the number of their first record
//! (`00000000000000000001.wal`, ...), each a run of records:
//!
//! ```text
//!   +-----------+-----------+-------------------+
//!   | len (u32) | crc (u32) | payload (len B)   |   little-endian; crc = CRC-32 of payload
//!   +-----------+-----------+-------------------+
//! ```
//!
//! Records are numbered 1, 2, 3, ... in the order they were appended, across segments; the
//! payload is the caller's (a message, a peer's log entry). A crash can only tear the end of the
//! segment being written, so at start a record that is short, has a zero or absurd length, or
//! fails its CRC is where the log ends: the last segment is cut there (and the cut reported),
//! and nothing past it is ever served. The same damage in an earlier segment cannot come from a
//! crash, and the log refuses to open rather than guess (etcd's `repair` makes the same call).
//!
//! Appending never blocks on the disk. [`Wal::append`] queues the encoded record and returns its
//! number; one writer thread takes *everything* queued, writes it in one `write`, `fsync`s once,
//! and then runs the callbacks of every record that is now durable. While one `fsync` runs, the
//! next batch gathers behind it, so the number of `fsync`s per second stays what the disk allows
//! and the number of records per `fsync` grows with the load: that is group commit, and it is
//! what lets many writers share one disk. `--fsync` chooses:
//!
//! - `batch` (the default): group commit as above. An acknowledged record is on disk.
//! - `always`: one `fsync` per record, no grouping: the same promise, at the disk's
//!   `fsync`s per second. It exists to measure what group commit buys.
//! - `never`: records are written to the kernel but never `fsync`ed. They survive the process
//!   (`kill -9` included) but not the machine: a power cut loses what the kernel had not yet
//!   flushed (up to about 30 s on Linux), acknowledged or not.
//!
//! Deliberate simplifications: segments are not pre-allocated (etcd pre-creates the next one so
//! that rotation never waits on the file system; here a rotation costs one `create` and one
//! directory `fsync` every 64 MiB), and the whole log is read back at start, which is fine for
//! the sizes a demo and a benchmark reach and not for a log of many gigabytes.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::crc32::crc32;

/// When the log calls `fsync` (see the module documentation).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// One `fsync` per record.
    Always,
    /// One `fsync` for everything waiting (group commit).
    Batch,
    /// Never: the kernel flushes when it likes; survives a crashed process, not a power cut.
    Never,
}

/// A segment grows to about this size before the next one starts.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// The largest record accepted; a length field above it is damage, not data.
pub const MAX_RECORD: usize = 64 << 20;
/// Bytes before each payload: length and CRC.
const HEADER: usize = 8;

/// What a callback waiting for durability is.
type Callback = Box<dyn FnOnce() + Send>;

/// The log: append from any thread, learn when a record is durable.
pub struct Wal {
    /// Shared with the writer thread.
    shared: Arc<Shared>,
    /// The writer thread, joined by [`Wal::close`].
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The folder's `LOCK` file, held (`flock`) until the log is closed: a second node started
    /// on the same folder must fail at start, not number messages the first has numbered too.
    lock: Mutex<Option<Flock<File>>>,
}

/// What the appenders and the writer thread share.
struct Shared {
    /// Records waiting to be written, and the progress marks. A std `Mutex`: every critical
    /// section is a copy into a buffer or a swap of it, never I/O.
    queue: Mutex<Queue>,
    /// Wakes the writer when records arrive or the log closes.
    work: Condvar,
    /// Wakes [`Wal::flush`] when `durable` moves.
    progress: Condvar,
    /// Called on the writer thread each time records reach the kernel (see [`Wal::on_written`]).
    on_written: Mutex<Option<Hook>>,
}

/// What [`Wal::on_written`] installs.
type Hook = Arc<dyn Fn() + Send + Sync>;

/// The appenders' side of the log.
struct Queue {
    /// Encoded records not yet handed to the writer.
    bytes: Vec<u8>,
    /// Where each record in `bytes` ends (for `--fsync always`, which writes them one by one).
    ends: VecDeque<usize>,
    /// Records appended so far (the last record's number).
    appended: u64,
    /// Records handed to the kernel so far.
    written: u64,
    /// Records durable so far (equal to `written` with `--fsync never`).
    durable: u64,
    /// Callbacks waiting for a record number to become durable, in appending order.
    callbacks: VecDeque<(u64, Callback)>,
    /// Set by [`Wal::close`]: the writer drains the queue and exits.
    closing: bool,
}

/// What opening a log found on disk.
pub struct Recovered {
    /// The log, ready for appending after the last intact record.
    pub wal: Wal,
    /// Every intact record's payload, in order (record `i + 1` is `records[i]`).
    pub records: Vec<Vec<u8>>,
    /// A torn or corrupt tail that was cut: the segment, the offset of the cut, the bytes dropped.
    pub cut: Option<(PathBuf, u64, u64)>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, cutting a torn tail, with 64 MiB segments.
    pub fn open(dir: &Path, fsync: Fsync) -> io::Result<Recovered> {
        Wal::open_with(dir, fsync, SEGMENT_BYTES)
    }

    /// [`Wal::open`] with a chosen segment size (tests use small ones to cross segments).
    pub fn open_with(dir: &Path, fsync: Fsync, segment_bytes: u64) -> io::Result<Recovered> {
        fs::create_dir_all(dir).map_err(naming(dir))?;
        let lock = lock(dir)?;
        let (records, cut, segments) = recover(dir)?;
        let count = records.len() as u64;
        let writer = Writer::open(dir, segments, count, segment_bytes, fsync)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                bytes: Vec::new(),
                ends: VecDeque::new(),
                appended: count,
                written: count,
                durable: count,
                callbacks: VecDeque::new(),
                closing: false,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            on_written: Mutex::new(None),
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new().name("replog-wal".into()).spawn(move || writer.run(&thread_shared))?;
        Ok(Recovered {
            wal: Wal { shared, writer: Mutex::new(Some(handle)), lock: Mutex::new(Some(lock)) },
            records,
            cut,
        })
    }

    /// Queues one record and returns its number; `on_durable` runs (on the writer thread, so it
    /// must be quick) once it and every record before it are on disk. Callers that number their
    /// own entries call this under the lock that numbers them, so both orders agree.
    pub fn append(&self, payload: &[u8], on_durable: impl FnOnce() + Send + 'static) -> u64 {
        assert!(!payload.is_empty() && payload.len() <= MAX_RECORD, "records are 1 B to 64 MiB");
        let mut q = self.shared.lock();
        q.bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        q.bytes.extend_from_slice(&crc32(payload).to_le_bytes());
        q.bytes.extend_from_slice(payload);
        let end = q.bytes.len();
        q.ends.push_back(end);
        q.appended += 1;
        let n = q.appended;
        q.callbacks.push_back((n, Box::new(on_durable)));
        drop(q);
        self.shared.work.notify_one();
        n
    }

    /// Calls `hook` (on the writer thread, so it must be quick) each time records reach the
    /// kernel, before their `fsync`: a primary sends a message to its secondaries from then on,
    /// in parallel with its own `fsync`, and never before (a message that only lived in this
    /// process's memory could be renumbered by a restart after a crash).
    pub fn on_written(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.shared.on_written.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(hook));
    }

    /// Records handed to the kernel so far: a record up to this number survives a crashed process.
    pub fn written(&self) -> u64 {
        self.shared.lock().written
    }

    /// Records on disk so far.
    pub fn durable(&self) -> u64 {
        self.shared.lock().durable
    }

    /// Waits until everything appended so far is durable.
    pub fn flush(&self) {
        let mut q = self.shared.lock();
        let target = q.appended;
        while q.durable < target {
            q = self.shared.progress.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Writes and syncs everything queued, then stops the writer thread. Appending after this
    /// is a bug in the caller (the record would never be written).
    pub fn close(&self) {
        self.shared.lock().closing = true;
        self.shared.work.notify_one();
        let handle = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        // Written and synced: the folder may serve another log now.
        self.lock.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer thread's side: the open segment.
struct Writer {
    /// The log's folder.
    dir: PathBuf,
    /// The segment being appended to.
    file: File,
    /// Its size so far.
    size: u64,
    /// Records in the log so far (the next record is `count + 1`).
    count: u64,
    /// Start a new segment once the current one would pass this.
    segment_bytes: u64,
    /// The `--fsync` policy.
    fsync: Fsync,
}

impl Writer {
    /// Opens the last segment for appending, or creates the first.
    fn open(
        dir: &Path,
        segments: Vec<(u64, PathBuf)>,
        count: u64,
        segment_bytes: u64,
        fsync: Fsync,
    ) -> io::Result<Writer> {
        let (file, size) = match segments.last() {
            Some((_, path)) => {
                let file = OpenOptions::new().append(true).open(path).map_err(naming(path))?;
                let size = file.metadata()?.len();
                (file, size)
            }
            None => (create_segment(dir, 1).map_err(naming(dir))?, 0),
        };
        Ok(Writer { dir: dir.to_path_buf(), file, size, count, segment_bytes, fsync })
    }

    /// Writes batches until the log is closed and drained.
    fn run(mut self, shared: &Shared) {
        let mut batch = Vec::new();
        loop {
            let records;
            {
                let mut q = shared.lock();
                while q.ends.is_empty() && !q.closing {
                    q = shared.work.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
                if q.ends.is_empty() {
                    return;
                }
                // `always` takes one record per fsync; the others take everything waiting.
                if self.fsync == Fsync::Always {
                    let end = q.ends.pop_front().unwrap_or(0);
                    batch.extend(q.bytes.drain(..end));
                    q.ends.iter_mut().for_each(|e| *e -= end);
                    records = 1;
                } else {
                    records = q.ends.len() as u64;
                    q.ends.clear();
                    std::mem::swap(&mut batch, &mut q.bytes);
                }
            }
            if let Err(e) = self.write(&batch) {
                fatal(&self.dir, &e);
            }
            batch.clear();
            self.count += records;
            shared.lock().written = self.count;
            let hook = shared.on_written.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(hook) = hook {
                hook();
            }
            if self.fsync != Fsync::Never {
                if let Err(e) = self.file.sync_data() {
                    fatal(&self.dir, &e);
                }
            }
            let ready: Vec<Callback> = {
                let mut q = shared.lock();
                q.durable = self.count;
                let mut ready = Vec::new();
                while q.callbacks.front().is_some_and(|(n, _)| *n <= self.count) {
                    ready.extend(q.callbacks.pop_front().map(|(_, cb)| cb));
                }
                ready
            };
            shared.progress.notify_all();
            // Outside the lock: a callback may append (a peer's answer, a delivery) without deadlock.
            ready.into_iter().for_each(|cb| cb());
        }
    }

    /// Appends one batch, starting a new segment first when this one is full.
    fn write(&mut self, batch: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + batch.len() as u64 > self.segment_bytes {
            // The old segment must be complete on disk before the log goes on in another file.
            if self.fsync != Fsync::Never {
                self.file.sync_data()?;
            }
            self.file = create_segment(&self.dir, self.count + 1)?;
            self.size = 0;
        }
        self.file.write_all(batch)?;
        self.size += batch.len() as u64;
        Ok(())
    }
}

/// A log that cannot write must not acknowledge anything more, and after a failed `fsync` the
/// kernel may have dropped the dirty pages (PostgreSQL's "fsyncgate"), so retrying would lie.
/// The node stops; on restart it recovers what is really on disk.
fn fatal(dir: &Path, e: &io::Error) -> ! {
    flash_common::log_line!(
        "fatal: cannot write the log in {}: {e}; stopping so that nothing unwritten is acknowledged",
        dir.display()
    );
    std::process::exit(74)
}

/// Puts the path an error is about in front of it: "No such file or directory" alone does not
/// say which.
fn naming(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Takes `dir/LOCK` for this process (an exclusive `flock`, which the kernel drops when the
/// process dies, however it dies: no stale lock after a `kill -9`), and writes our pid in it for
/// the message another process gets.
fn lock(dir: &Path) -> io::Result<Flock<File>> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut held) => {
            held.set_len(0)?;
            writeln!(&mut *held, "{}", std::process::id())?;
            Ok(held)
        }
        Err((_, errno)) if errno == Errno::EWOULDBLOCK => {
            let pid = fs::read_to_string(&path).unwrap_or_default();
            Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use by another process (pid {}): two nodes on one log would number messages twice",
                    dir.display(),
                    pid.trim()
                ),
            ))
        }
        Err((_, errno)) => Err(io::Error::new(io::Error::from(errno).kind(), format!("{}: {errno}", path.display()))),
    }
}

/// The path of the segment whose first record is `first`.
fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

/// Creates a new segment and makes its name durable (an `fsync` of the folder).
fn create_segment(dir: &Path, first: u64) -> io::Result<File> {
    let file = OpenOptions::new().create_new(true).append(true).open(segment_path(dir, first))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// The segments in `dir`, in order: (number of the first record, path).
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The result of reading a log back: its records, the tail that was cut, its segments.
type Scan = (Vec<Vec<u8>>, Option<(PathBuf, u64, u64)>, Vec<(u64, PathBuf)>);

/// Reads every segment back, checking each record, and cuts a torn tail off the last one.
fn recover(dir: &Path) -> io::Result<Scan> {
    let segments = segments(dir)?;
    let mut records = Vec::new();
    let mut cut = None;
    for (i, (first, path)) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if *first != records.len() as u64 + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: expected a segment starting at record {}", path.display(), records.len() + 1),
            ));
        }
        let bytes = fs::read(path)?;
        let good = read_records(&bytes, &mut records);
        if good < bytes.len() {
            if !last {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: damaged record at byte {good} in a segment that is not the last; \
                         a crash cannot cause that, so the log is left as it is for a person to look at",
                        path.display()
                    ),
                ));
            }
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(good as u64)?;
            file.sync_all()?;
            cut = Some((path.clone(), good as u64, (bytes.len() - good) as u64));
        }
    }
    Ok((records, cut, segments))
}

/// Appends the intact records at the start of `bytes` to `out`; returns where they end.
fn read_records(bytes: &[u8], out: &mut Vec<Vec<u8>>) -> usize {
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap_or_default());
        // A zero length would make a run of zeros (a pre-allocated or half-written tail) look
        // like valid empty records, since the CRC of nothing is 0: no record is empty.
        if len == 0 || len > MAX_RECORD || bytes.len() - at - HEADER < len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if crc32(payload) != crc {
            break;
        }
        out.push(payload.to_vec());
        at += HEADER + len;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn payload(i: u64) -> Vec<u8> {
        format!("record {i} {}", "x".repeat((i % 7) as usize)).into_bytes()
    }

    fn write_n(dir: &Path, fsync: Fsync, n: u64, segment: u64) {
        let r = Wal::open_with(dir, fsync, segment).unwrap();
        for i in 1..=n {
            assert_eq!(r.wal.append(&payload(i), || {}), r.records.len() as u64 + i);
            // One batch per record, so that small segments really fill up and rotate.
            r.wal.flush();
        }
        r.wal.close();
    }

    #[test]
    fn reads_back_what_it_wrote_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), Fsync::Batch, 100, 256);
        assert!(segments(dir.path()).unwrap().len() > 3, "small segments make several files");
        let r = Wal::open_with(dir.path(), Fsync::Batch, 256).unwrap();
        assert!(r.cut.is_none());
        assert_eq!(r.records, (1..=100).map(payload).collect::<Vec<_>>());
        // Appending goes on after the last record, in the last segment or a new one.
        assert_eq!(r.wal.append(b"one more", || {}), 101);
        r.wal.close();
        let again = Wal::open_with(dir.path(), Fsync::Batch, 256).unwrap();
        assert_eq!(again.records.len(), 101);
        assert_eq!(again.records[100], b"one more");
    }

    #[test]
    fn callbacks_run_once_durable_in_order() {
        for fsync in [Fsync::Always, Fsync::Batch, Fsync::Never] {
            let dir = tempfile::tempdir().unwrap();
            let r = Wal::open(dir.path(), fsync).unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let wal = Arc::new(r.wal);
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let (wal, seen) = (wal.clone(), seen.clone());
                    std::thread::spawn(move || {
                        for i in 0..50 {
                            let seen = seen.clone();
                            let n = Arc::new(AtomicU64::new(0));
                            let n2 = n.clone();
                            let durable_before = wal.durable();
                            let got = wal.append(format!("{t}-{i}").as_bytes(), move || {
                                seen.lock().unwrap().push(n2.load(Ordering::SeqCst));
                            });
                            n.store(got, Ordering::SeqCst);
                            assert!(got > durable_before);
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            wal.flush();
            assert_eq!(wal.durable(), 200);
            wal.close();
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 200, "{fsync:?}: every callback ran");
            let reopened = Wal::open(dir.path(), fsync).unwrap();
            assert_eq!(reopened.records.len(), 200);
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_never_served() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), Fsync::Batch, 10, SEGMENT_BYTES);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let full = fs::metadata(&path).unwrap().len();
        // Cut the last record in the middle of its payload, as a crash mid-write would.
        let last_len = (HEADER + payload(10).len()) as u64;
        let torn = full - last_len / 2;
        OpenOptions::new().write(true).open(&path).unwrap().set_len(torn).unwrap();
        let r = Wal::open(dir.path(), Fsync::Batch).unwrap();
        assert_eq!(r.records, (1..=9).map(payload).collect::<Vec<_>>(), "the nine whole records survive");
        let (cut_path, at, dropped) = r.cut.clone().expect("the cut is reported");
        assert_eq!((cut_path, at, dropped), (path.clone(), full - last_len, torn - (full - last_len)));
        assert_eq!(fs::metadata(&path).unwrap().len(), full - last_len, "the file is cut at the last good record");
        // The next record takes number 10 and reads back whole.
        assert_eq!(r.wal.append(b"after the cut", || {}), 10);
        r.wal.close();
        let again = Wal::open(dir.path(), Fsync::Batch).unwrap();
        assert!(again.cut.is_none());
        assert_eq!(again.records.last().unwrap(), b"after the cut");
    }

    #[test]
    fn a_flipped_bit_in_the_last_record_ends_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), Fsync::Batch, 5, SEGMENT_BYTES);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let r = Wal::open(dir.path(), Fsync::Batch).unwrap();
        assert_eq!(r.records.len(), 4, "the damaged record is not served");
        assert!(r.cut.is_some());
    }

    #[test]
    fn zeros_after_the_last_record_are_not_records() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), Fsync::Batch, 3, SEGMENT_BYTES);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0u8; 100]).unwrap();
        let r = Wal::open(dir.path(), Fsync::Batch).unwrap();
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.cut.as_ref().map(|c| c.2), Some(100));
    }

    #[test]
    fn damage_before_the_last_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), Fsync::Batch, 40, 200);
        let segs = segments(dir.path()).unwrap();
        assert!(segs.len() >= 2);
        let mut bytes = fs::read(&segs[0].1).unwrap();
        bytes[HEADER + 1] ^= 1;
        fs::write(&segs[0].1, &bytes).unwrap();
        let err = Wal::open_with(dir.path(), Fsync::Batch, 200).err().expect("refused");
        assert!(err.to_string().contains("not the last"), "{err}");
    }

    #[test]
    fn group_commit_groups_under_concurrent_appends() {
        // With fsync per batch, many appenders must share fsyncs: the callbacks of a burst run
        // after far fewer syncs than records. We count distinct `durable` values seen.
        let dir = tempfile::tempdir().unwrap();
        let r = Wal::open(dir.path(), Fsync::Batch).unwrap();
        let wal = Arc::new(r.wal);
        let marks = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        for i in 0..2000u64 {
            let (w2, marks) = (wal.clone(), marks.clone());
            // The callback runs on the writer thread with the queue unlocked.
            wal.append(&i.to_le_bytes(), move || {
                marks.lock().unwrap().insert(w2.durable());
            });
        }
        wal.flush();
        let syncs = marks.lock().unwrap().len();
        assert!(syncs < 2000, "2000 appends in a burst took {syncs} syncs");
        wal.close();
    }
}
