//! Every thread the server starts goes through here, so that shutdown can
//! wait for all of them and tests can count them: workers and drain
//! threads are counted until they end ([`Threads::spawn`]); the two
//! service threads, `ws-accept` and `ws-reject`, are joined by their
//! handles ([`Threads::spawn_service`]).

use parking_lot::{Condvar, Mutex};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Live-thread bookkeeping: a count and a condition to wait for zero.
#[derive(Debug, Default)]
pub struct Threads {
    live: Mutex<usize>,
    changed: Condvar,
}

/// Counts one thread as live until dropped (also when the thread panics).
struct Live(Arc<Threads>);

impl Drop for Live {
    fn drop(&mut self) {
        let mut live = self.0.live.lock();
        *live -= 1;
        self.0.changed.notify_all();
    }
}

impl Threads {
    /// Start a named thread with the given stack size and count it until
    /// it ends.
    pub fn spawn<F>(self: &Arc<Self>, name: String, stack: usize, body: F) -> io::Result<()>
    where
        F: FnOnce() + Send + 'static,
    {
        *self.live.lock() += 1;
        let live = Live(Arc::clone(self));
        std::thread::Builder::new()
            .name(name)
            .stack_size(stack)
            .spawn(move || {
                let _live = live;
                body();
            })
            .map(|_| ())
        // On error the closure (and `live` with it) is dropped: uncounted.
    }

    /// Start a named service thread that shutdown joins by its handle
    /// (not counted in [`live`](Threads::live)).
    pub fn spawn_service<F>(&self, name: &str, stack: usize, body: F) -> io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        std::thread::Builder::new()
            .name(name.to_owned())
            .stack_size(stack)
            .spawn(body)
    }

    /// How many counted threads are alive.
    pub fn live(&self) -> usize {
        *self.live.lock()
    }

    /// Wait until no counted thread is alive, at most `timeout`.
    /// Returns true if they all ended.
    pub fn wait_all(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut live = self.live.lock();
        while *live > 0 {
            if self.changed.wait_until(&mut live, deadline).timed_out() {
                return *live == 0;
            }
        }
        true
    }
}
