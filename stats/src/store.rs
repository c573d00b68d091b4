//! The job store: job ids, job states, and one result file per job in the results directory.
//!
//! The disk is the record and memory is a cache of it. A job's file exists from the moment its
//! id is handed out: it is created with `O_CREAT | O_EXCL` holding `{"status": "running"}`, so
//! two processes sharing the directory (the CGI server runs a process per request) can never be
//! given the same id, and a restarted server numbers new jobs after every old one. When the job
//! finishes, its answer is written to a temporary file, fsynced, and renamed over the
//! reservation, so a reader sees either "running" or the whole answer, never a torn file, even
//! after a crash. The file holds exactly the body `get_results` answers.
//!
//! Memory holds only each job's state, not its answer: a long load test creates many thousands
//! of jobs and a `mean_by_category` answer is 60 kB, so answers are read back from disk.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The body of a job that has not finished.
pub const RUNNING: &[u8] = br#"{"status": "running"}"#;

/// The reason recorded for a job that was running when its server stopped.
const INTERRUPTED: &str = "interrupted: the server stopped before this job finished";

/// What this process knows of a job it created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Queued or computing.
    Running,
    /// Its answer is on disk.
    Done,
    /// It failed; the reason is also on disk if the disk could take it.
    Failed(String),
}

impl State {
    /// The word `/api/jobs` shows for this state.
    pub fn word(&self) -> &'static str {
        match self {
            State::Running => "running",
            State::Done => "done",
            State::Failed(_) => "error",
        }
    }
}

/// The results directory and the states of the jobs this process created.
pub struct Store {
    /// Where the `job_id_N.json` files live.
    dir: PathBuf,
    /// Ids and states, behind one lock: handing out ids must be serialized anyway.
    jobs: Mutex<Jobs>,
}

/// The mutable part of the store.
struct Jobs {
    /// The next id to try; `None` until the directory has been scanned.
    next_id: Option<u64>,
    /// The states of the jobs created by this process.
    own: HashMap<u64, State>,
    /// How many of them are still running.
    pending: usize,
}

impl Store {
    /// Opens (creating it) the results directory. `owner` says this process is the only
    /// long-lived server on the directory: it then scans it at once, deletes temporary files
    /// left by a crash and marks jobs left "running" by a previous run as interrupted, so that
    /// no client polls them forever. Processes that share the directory (CGI children) pass
    /// false and scan lazily, when they first need an id.
    pub fn open(dir: &Path, owner: bool) -> io::Result<Store> {
        fs::create_dir_all(dir)?;
        let store =
            Store { dir: dir.to_path_buf(), jobs: Mutex::new(Jobs { next_id: None, own: HashMap::new(), pending: 0 }) };
        if owner {
            let mut max = 0;
            for entry in fs::read_dir(dir)? {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".job_id_") && name.ends_with(".tmp") {
                    ignore_missing(fs::remove_file(dir.join(&*name)))?;
                } else if let Some(id) = id_of_file_name(&name) {
                    max = max.max(id);
                    if store.read_prefix(id)?.as_deref() == Some(RUNNING) {
                        store.write_atomically(id, &error_body(INTERRUPTED))?;
                    }
                }
            }
            store.lock().next_id = Some(max + 1);
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Jobs> {
        // A panic elsewhere cannot leave `Jobs` half-updated: every update is one statement.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("job_id_{id}.json"))
    }

    /// Hands out a new job id, its reservation file created on disk.
    pub fn reserve(&self) -> io::Result<u64> {
        let mut jobs = self.lock();
        let mut id = match jobs.next_id {
            Some(id) => id,
            None => self.scan_max()? + 1,
        };
        loop {
            match OpenOptions::new().write(true).create_new(true).open(self.path(id)) {
                Ok(mut file) => {
                    file.write_all(RUNNING)?;
                    break;
                }
                // Another process sharing the directory took this id first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => id += 1,
                Err(e) => return Err(e),
            }
        }
        jobs.next_id = Some(id + 1);
        jobs.own.insert(id, State::Running);
        jobs.pending += 1;
        Ok(id)
    }

    /// Records a job's end: its `data` JSON, or the reason it failed. Returns the write error
    /// if the answer could not be stored (the job is then failed in memory).
    pub fn finish(&self, id: u64, outcome: Result<&[u8], &str>) -> io::Result<()> {
        let body = match outcome {
            Ok(data) => {
                let mut body = Vec::with_capacity(data.len() + 32);
                body.extend_from_slice(br#"{"status": "done", "data": "#);
                body.extend_from_slice(data);
                body.push(b'}');
                body
            }
            Err(reason) => error_body(reason),
        };
        let written = self.write_atomically(id, &body);
        let state = match (&written, outcome) {
            (Ok(()), Ok(_)) => State::Done,
            (Ok(()), Err(reason)) => State::Failed(reason.to_string()),
            (Err(e), _) => State::Failed(format!("the result could not be stored: {e}")),
        };
        let mut jobs = self.lock();
        jobs.own.insert(id, state);
        jobs.pending -= 1;
        written
    }

    /// Write to a temporary file, fsync it, rename it over the job's file, fsync the directory:
    /// the rename is atomic, and the two fsyncs make it survive a power cut, not only a crash.
    fn write_atomically(&self, id: u64, body: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(format!(".job_id_{id}.json.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&tmp, self.path(id))?;
        File::open(&self.dir)?.sync_all()
    }

    /// The `get_results` body for job `id`, or `None` if there is no such job.
    pub fn result(&self, id: u64) -> io::Result<Option<Vec<u8>>> {
        match self.lock().own.get(&id) {
            Some(State::Running) => return Ok(Some(RUNNING.to_vec())),
            Some(State::Failed(reason)) => return Ok(Some(error_body(reason))),
            Some(State::Done) | None => {}
        }
        match fs::read(self.path(id)) {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every job, by id, with its state word: this process's jobs from memory, the others
    /// (from before a restart, or from other CGI processes) from the start of their file.
    pub fn list(&self) -> io::Result<Vec<(u64, &'static str)>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Some(id) = id_of_file_name(&entry?.file_name().to_string_lossy()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let own: HashMap<u64, &'static str> = self.lock().own.iter().map(|(&id, s)| (id, s.word())).collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let word = match own.get(&id) {
                Some(word) => word,
                None => match self.read_prefix(id)? {
                    None => continue,
                    Some(p) if p.as_slice() == RUNNING => "running",
                    Some(p) if p.starts_with(br#"{"status": "error""#) => "error",
                    Some(_) => "done",
                },
            };
            out.push((id, word));
        }
        Ok(out)
    }

    /// The number of this process's jobs not yet finished.
    pub fn pending(&self) -> usize {
        self.lock().pending
    }

    /// The first bytes of a job's file (enough to tell its state), `None` if it is gone.
    fn read_prefix(&self, id: u64) -> io::Result<Option<Vec<u8>>> {
        let file = match File::open(self.path(id)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut prefix = Vec::with_capacity(RUNNING.len() + 1);
        file.take(RUNNING.len() as u64 + 1).read_to_end(&mut prefix)?;
        Ok(Some(prefix))
    }

    fn scan_max(&self) -> io::Result<u64> {
        let mut max = 0;
        for entry in fs::read_dir(&self.dir)? {
            if let Some(id) = id_of_file_name(&entry?.file_name().to_string_lossy()) {
                max = max.max(id);
            }
        }
        Ok(max)
    }
}

/// `{"status": "error", "reason": ...}` with the reason JSON-escaped. Written by hand so that its
/// first bytes are fixed, spacing included: readers of the files tell a job's state by them.
pub fn error_body(reason: &str) -> Vec<u8> {
    let mut body = br#"{"status": "error", "reason": "#.to_vec();
    // Writing a string to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, reason);
    body.push(b'}');
    body
}

/// The N of `job_id_N`, for N a positive decimal number without sign or leading zero.
pub fn parse_job_id(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("job_id_")?;
    let canonical = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    canonical.then(|| digits.parse().ok()).flatten()
}

fn id_of_file_name(name: &str) -> Option<u64> {
    parse_job_id(name.strip_suffix(".json")?)
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_canonical() {
        assert_eq!(parse_job_id("job_id_1"), Some(1));
        assert_eq!(parse_job_id("job_id_120"), Some(120));
        for bad in ["job_id_0", "job_id_01", "job_id_", "job_id_+1", "job_1", "job_id_1x"] {
            assert_eq!(parse_job_id(bad), None, "{bad}");
        }
        assert_eq!(parse_job_id("job_id_99999999999999999999999"), None);
    }

    #[test]
    fn stale_reservations_are_marked_interrupted_by_a_new_owner() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), true).unwrap();
        let done = first.reserve().unwrap();
        first.finish(done, Ok(b"1")).unwrap();
        let stale = first.reserve().unwrap();
        fs::write(dir.path().join(".job_id_9.json.tmp"), b"partial").unwrap();
        drop(first);

        let second = Store::open(dir.path(), true).unwrap();
        let body = second.result(stale).unwrap().unwrap();
        assert!(String::from_utf8_lossy(&body).contains("interrupted"));
        assert_eq!(second.list().unwrap(), [(done, "done"), (stale, "error")]);
        assert!(!dir.path().join(".job_id_9.json.tmp").exists());
        assert_eq!(second.reserve().unwrap(), stale + 1);
    }

    #[test]
    fn processes_sharing_a_directory_never_share_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path(), false).unwrap();
        let b = Store::open(dir.path(), false).unwrap();
        // Each caches its next id; after the other's reservation that cache is stale, and
        // only the exclusive create keeps the ids apart.
        let (first, second) = (a.reserve().unwrap(), b.reserve().unwrap());
        let (third, fourth) = (a.reserve().unwrap(), b.reserve().unwrap());
        let mut ids = vec![first, second, third, fourth];
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }
}
