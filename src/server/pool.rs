//! A bounded pool of worker threads (the model of Poco's `TCPServer`).
//!
//! ```text
//! accept loop ── submit(job) ──► idle worker?  yes ─► hand-off channel ─► that worker
//!                                     │ no
//!                                     ▼
//!                              fewer than max?  yes ─► start a new worker with the job
//!                                     │ no
//!                                     ▼
//!                              Err(job): the caller answers 503
//! ```
//!
//! A job is handed off only when an idle worker is known to be waiting for
//! it, so no job ever waits in a queue for a worker that may never come.
//! Workers start lazily and an idle one ends after `idle_exit`, so an idle
//! server holds few threads. The count never passes `max`.

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use super::threads::Threads;

/// How long an idle worker waits for a job before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

struct State<J> {
    /// Workers alive (busy or idle).
    total: usize,
    /// Workers waiting for a job and not yet promised one.
    idle: usize,
    /// Jobs go to idle workers through here; `None` once shut down.
    tx: Option<Sender<J>>,
}

/// The worker pool; every job `J` is run by `handler` on some worker.
pub struct Pool<J> {
    max: usize,
    stack: usize,
    state: Mutex<State<J>>,
    rx: Receiver<J>,
    handler: Box<dyn Fn(J) + Send + Sync>,
    threads: Arc<Threads>,
    next_worker: Mutex<usize>,
}

impl<J: Send + 'static> Pool<J> {
    /// A pool of at most `max` workers with `stack` bytes of stack each.
    pub fn new(
        max: usize,
        stack: usize,
        threads: Arc<Threads>,
        handler: impl Fn(J) + Send + Sync + 'static,
    ) -> Arc<Pool<J>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Arc::new(Pool {
            max,
            stack,
            handler: Box::new(handler),
            state: Mutex::new(State {
                total: 0,
                idle: 0,
                tx: Some(tx),
            }),
            rx,
            threads,
            next_worker: Mutex::new(0),
        })
    }

    /// Run `job` on a worker, or give it back if every worker is busy.
    pub fn submit(self: &Arc<Self>, job: J) -> Result<(), J> {
        let mut state = self.state.lock();
        let Some(tx) = state.tx.clone() else {
            return Err(job);
        };
        if state.idle > 0 {
            // Promise the job to one idle worker. Sending under the lock
            // keeps "jobs in the channel" equal to "promises made".
            state.idle -= 1;
            return tx.send(job).map_err(|e| e.into_inner());
        }
        if state.total >= self.max {
            return Err(job);
        }
        state.total += 1;
        drop(state);
        let index = {
            let mut next = self.next_worker.lock();
            *next += 1;
            *next
        };
        // The job waits in a slot the new thread empties, so that if the
        // thread cannot start, the job comes back to the caller (who
        // answers 503) instead of going down with the closure.
        let slot = Arc::new(Mutex::new(Some(job)));
        let (pool, theirs) = (Arc::clone(self), Arc::clone(&slot));
        let result = self
            .threads
            .spawn(format!("ws-worker-{index}"), self.stack, move || {
                let first = theirs.lock().take();
                if let Some(job) = first {
                    pool.work(job);
                }
            });
        if let Err(e) = result {
            log::warn!("cannot start a worker thread: {e}");
            self.state.lock().total -= 1;
            if let Some(job) = slot.lock().take() {
                return Err(job);
            }
        }
        Ok(())
    }

    /// Workers alive now.
    pub fn workers(&self) -> usize {
        self.state.lock().total
    }

    /// Stop handing out jobs; idle workers end at once, busy ones when
    /// their connection ends.
    pub fn shutdown(&self) {
        self.state.lock().tx = None;
    }

    /// A worker's life: run its job, then wait for the next one.
    fn work(&self, first: J) {
        let mut job = first;
        loop {
            (self.handler)(job);
            self.state.lock().idle += 1;
            job = match self.next_job() {
                Some(next) => next,
                None => return,
            };
        }
    }

    /// Wait for a promised job; end the worker after `IDLE_EXIT` or on
    /// shutdown. The worker has already counted itself idle.
    fn next_job(&self) -> Option<J> {
        let job = self.rx.recv_timeout(IDLE_EXIT);
        let mut state = self.state.lock();
        // A job may have been promised between the timeout and the lock.
        // Jobs are sent under the lock, so once we hold it and the channel
        // is empty, our idle slot is still ours to take back.
        if let Some(job) = job.ok().or_else(|| self.rx.try_recv().ok()) {
            return Some(job);
        }
        state.idle -= 1;
        state.total -= 1;
        None
    }
}
