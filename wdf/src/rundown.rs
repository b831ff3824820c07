//! Rundown protection: references that can be refused once teardown begins,
//! and a teardown that waits for the last reference on an event.
//!
//! This is DMF's module reference (its per-module method rundown) and `DMF_Rundown`
//! in one restartable type, with a real wait instead of 100 ms polling.
//!
//! ```
//! # use dmf_wdf::{Rundown, Status, Event};
//! # struct Ev(std::sync::Mutex<bool>, std::sync::Condvar);
//! # impl Event for Ev {
//! #   fn set(&self) { *self.0.lock().unwrap() = true; self.1.notify_all(); }
//! #   fn reset(&self) { *self.0.lock().unwrap() = false; }
//! #   fn is_set(&self) -> bool { *self.0.lock().unwrap() }
//! #   fn wait(&self, _t: Option<u32>) -> bool { let mut g = self.0.lock().unwrap(); while !*g { g = self.1.wait(g).unwrap(); } true }
//! # }
//! let rundown = Rundown::new(Ev(Default::default(), Default::default()));
//! assert_eq!(rundown.acquire().err(), Some(Status::INVALID_DEVICE_STATE)); // not started
//! rundown.start();
//! {
//!     let _guard = rundown.acquire().unwrap();   // a method in progress
//!     assert_eq!(rundown.active_references(), 1);
//! }
//! rundown.end_and_wait(None);                     // teardown: refuses, then waits
//! assert!(rundown.acquire().is_err());
//! ```

use crate::primitive::{AtomicUsize, Ordering};
use crate::sync::Event;
use crate::{Result, Status};

/// Bit set while teardown is in progress.
const ENDING: usize = 1 << (usize::BITS - 1);
/// The count lives in the other bits; 0 = not running, 1 = running, no user.
const COUNT: usize = !ENDING;

/// A restartable rundown protection.
///
/// # Invariants
///
/// `state & COUNT` is 0 while stopped, and otherwise 1 plus the number of live
/// [`RundownGuard`]s. `ENDING` is set only inside [`Rundown::end_and_wait`].
/// The event is signalled when the count drops to 1 while `ENDING` is set.
pub struct Rundown<E: Event> {
    state: AtomicUsize,
    drained: E,
}

impl<E: Event> Rundown<E> {
    /// A rundown in the stopped state (references are refused until
    /// [`Rundown::start`]).
    pub fn new(event: E) -> Self {
        Rundown {
            state: AtomicUsize::new(0),
            drained: event,
        }
    }

    /// Allows references again. Call only when stopped (after `new` or a
    /// completed `end_and_wait`); debug-asserts that.
    pub fn start(&self) {
        self.drained.reset();
        let prev = self.state.swap(1, Ordering::AcqRel);
        debug_assert_eq!(prev, 0, "Rundown::start on a running rundown");
    }

    /// Whether references are currently accepted.
    pub fn is_active(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s & ENDING == 0 && s & COUNT >= 1
    }

    /// Number of live references (diagnostics).
    pub fn active_references(&self) -> usize {
        (self.state.load(Ordering::Acquire) & COUNT).saturating_sub(1)
    }

    /// Takes a reference, refused with `STATUS_INVALID_DEVICE_STATE` when the
    /// rundown is stopped or ending. Never blocks.
    pub fn acquire(&self) -> Result<RundownGuard<'_, E>> {
        self.reference()?;
        Ok(RundownGuard { rundown: self })
    }

    /// Takes a reference without a guard; pair with [`Rundown::release`].
    /// Used when the reference outlives a scope (an asynchronous send).
    pub fn reference(&self) -> Result<()> {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & ENDING != 0 || s & COUNT == 0 {
                return Err(Status::INVALID_DEVICE_STATE);
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => s = actual,
            }
        }
    }

    /// Releases a reference taken with [`Rundown::reference`].
    pub fn release(&self) {
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev & COUNT >= 2, "Rundown::release without a reference");
        if prev & ENDING != 0 && prev & COUNT == 2 {
            self.drained.set();
        }
    }

    /// Refuses new references, then waits until every existing one is
    /// released; afterwards the rundown is stopped. Returns `false` if
    /// `timeout_ms` expired first (the rundown then stays ending; call again
    /// to keep waiting). Calling it on a stopped rundown returns `true` at once.
    /// Passive level only.
    pub fn end_and_wait(&self, timeout_ms: Option<u32>) -> bool {
        let prev = self.state.fetch_or(ENDING, Ordering::AcqRel);
        if prev & COUNT == 0 {
            // Was not running: undo the flag we just set.
            self.state.fetch_and(COUNT, Ordering::AcqRel);
            return true;
        }
        if prev & COUNT > 1 && !self.drained.wait(timeout_ms) {
            return false;
        }
        debug_assert_eq!(self.state.load(Ordering::Acquire) & COUNT, 1);
        self.state.store(0, Ordering::Release);
        true
    }
}

/// A reference on a [`Rundown`]; released when dropped.
#[must_use = "the reference is released when the guard is dropped"]
pub struct RundownGuard<'a, E: Event> {
    rundown: &'a Rundown<E>,
}

impl<E: Event> Drop for RundownGuard<'_, E> {
    fn drop(&mut self) {
        self.rundown.release();
    }
}
