//! The job pool: a fixed set of threads taking jobs from one queue.
//!
//! This is the pool of the Rust Book's web-server chapter: a channel of boxed closures, its
//! receiver shared behind a mutex. The workspace has the `threadpool` crate, but the stats
//! service needs only `execute` and a draining `join`, and the dozen lines below show the
//! whole mechanism to a reader. The thread count is fixed when the pool starts, so a burst of
//! requests queues jobs instead of creating threads.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// A unit of work for the pool.
pub type Task = Box<dyn FnOnce() + Send + 'static>;

/// A running pool of worker threads.
pub struct Pool {
    /// The queue's sending side; dropping it tells idle workers to exit once it is empty.
    sender: Sender<Task>,
    /// The workers, joined by [`Pool::join`].
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` workers named `stats-job-N`.
    pub fn new(threads: usize) -> io::Result<Pool> {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads.max(1) {
            let receiver = Arc::clone(&receiver);
            let worker = thread::Builder::new().name(format!("stats-job-{n}")).spawn(move || work(&receiver))?;
            workers.push(worker);
        }
        Ok(Pool { sender, workers })
    }

    /// Queues a task. Workers run tasks in the order they were queued.
    pub fn execute(&self, task: Task) {
        // The receiver lives as long as a worker does, and workers only exit after `join`
        // drops the sender, so this send cannot fail while `self` exists.
        let _ = self.sender.send(task);
    }

    /// Closes the queue, lets the workers finish every queued task, and waits for them.
    pub fn join(self) {
        drop(self.sender);
        for worker in self.workers {
            // A task's panic is caught inside the task (see `Service`), so a worker only
            // ends by the queue closing; a join error would have nothing left to clean up.
            let _ = worker.join();
        }
    }
}

fn work(receiver: &Mutex<Receiver<Task>>) {
    loop {
        // The guard is a temporary of this statement, so the lock is released before the
        // task runs and other workers can take the next one meanwhile.
        let task = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match task {
            Ok(task) => task(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn join_runs_every_queued_task_on_a_fixed_set_of_threads() {
        let pool = Pool::new(2).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let names = Arc::new(Mutex::new(HashSet::new()));
        for _ in 0..200 {
            let (done, names) = (Arc::clone(&done), Arc::clone(&names));
            pool.execute(Box::new(move || {
                let name = thread::current().name().unwrap_or_default().to_string();
                names.lock().unwrap().insert(name);
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        pool.join();
        assert_eq!(done.load(Ordering::SeqCst), 200);
        let names = names.lock().unwrap();
        assert!(names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("stats-job-")));
    }
}
