//! A small, bounded pool of threads for password checks.
//!
//! One argon2id check with the default parameters takes 19 MiB and tens of
//! milliseconds of one core. Run on tokio's blocking pool, twenty sign-ins
//! at once became twenty threads holding 19 MiB each, and the allocator
//! kept most of it after the burst (a directory went from 149 MB to
//! 442 MB). Here a fixed handful of long-lived threads do every check, so
//! at most `threads × 19 MiB` is ever in use for hashing, the same memory
//! is reused from check to check, and a burst beyond the queue is refused
//! at once (the caller answers "busy, try again") instead of piling up.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Threads that check passwords, fed by a bounded queue.
pub struct PasswordPool {
    jobs: SyncSender<Job>,
    threads: usize,
    queue: usize,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPool")
            .field("threads", &self.threads)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Why a check did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every thread is busy and the queue is full: try again shortly.
    #[error("too many password checks are waiting; try again in a moment")]
    Busy,
    /// The check panicked or its thread is gone.
    #[error("the password check failed")]
    Failed,
}

impl PasswordPool {
    /// `threads` threads (at least one) with room for `queue` checks
    /// waiting behind them.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<PasswordPool> {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-{n}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(PasswordPool {
            jobs,
            threads,
            queue,
        })
    }

    /// Runs `check` on a pool thread; `Busy` at once if the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(check());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PoolError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(PoolError::Failed),
        }
        answered.await.map_err(|_| PoolError::Failed)
    }
}

/// A pool thread: takes jobs until the pool is dropped. A job that panics
/// drops its answer (the caller sees `Failed`) and the thread goes on.
fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let Ok(receiver) = receiver.lock() else {
                return;
            };
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn checks_run_and_answer() {
        let pool = PasswordPool::new(2, 4).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
        let hash = crate::password::hash("correct horse").unwrap();
        let ok = pool
            .run(move || crate::password::verify("correct horse", &hash))
            .await;
        assert_eq!(ok, Ok(true));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_up_again() {
        let pool = Arc::new(PasswordPool::new(1, 1).unwrap());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        // One check holds the only thread, one waits in the queue...
        let mut held = Vec::new();
        for _ in 0..2 {
            let (pool, gate) = (pool.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = gate.lock().map(|g| g.recv());
                })
                .await
            }));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ...so a third is refused, not queued.
        assert_eq!(pool.run(|| ()).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        release.send(()).unwrap();
        for task in held {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
        assert_eq!(pool.run(|| 1).await, Ok(1), "room again once they ran");
    }

    #[tokio::test]
    async fn a_panicking_check_fails_alone() {
        let pool = PasswordPool::new(1, 2).unwrap();
        let panicked = pool.run(|| -> u8 { panic!("boom") }).await;
        assert_eq!(panicked, Err(PoolError::Failed));
        assert_eq!(pool.run(|| 7).await, Ok(7), "the thread survived");
    }
}
