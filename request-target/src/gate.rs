//! The module reference (DMF's module rundown) with a real wait: method calls and
//! asynchronous sends in flight hold references; close refuses new ones and
//! waits until the count drains, woken through an event.
//!
//! Public only so that `tests/loom_gate.rs` can model-check it; not part of
//! the supported API.
//!
//! Close's wait loop (see [`RequestTarget::close`](crate::RequestTarget::close)):
//! `begin_close()`, then repeat { deliver deferred completions;
//! `wake.reset()`; stop if `references() == 0`; `wake.wait()` }. Resetting
//! before checking means a `release` (or a deferred completion) that happens
//! after the check sets the event, so no wake-up is lost.

use crate::primitive::{AtomicUsize, Ordering};

use dmf_wdf::{Event, Result, Status};

/// Set once close has begun.
const CLOSING: usize = 1 << (usize::BITS - 1);
/// The reference count lives in the other bits.
const COUNT: usize = !CLOSING;

/// # Invariants
///
/// `state & COUNT` is the number of live references (guards plus references
/// kept by accepted asynchronous sends). `CLOSING` is never cleared. `wake`
/// is set when the count drops to 0 while `CLOSING` is set (and by the owner
/// for other reasons close must look at).
pub struct Gate<E: Event> {
    state: AtomicUsize,
    /// Set when the count drops to 0 after close began, and by whoever
    /// queues work close must do (a deferred completion).
    pub wake: E,
}

impl<E: Event> Gate<E> {
    /// An open gate with no reference, waking `wake`.
    pub fn new(wake: E) -> Self {
        Gate {
            state: AtomicUsize::new(0),
            wake,
        }
    }

    /// Takes a reference; `STATUS_INVALID_DEVICE_STATE` once close has begun.
    pub fn acquire(&self) -> Result<GateRef<'_, E>> {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & CLOSING != 0 {
                return Err(Status::INVALID_DEVICE_STATE);
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(GateRef { gate: self }),
                Err(actual) => s = actual,
            }
        }
    }

    /// Releases a reference kept with [`GateRef::keep`].
    pub fn release(&self) {
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev & COUNT >= 1, "Gate::release without a reference");
        if prev & CLOSING != 0 && prev & COUNT == 1 {
            self.wake.set();
        }
    }

    /// Refuses new references from now on. Returns whether this call began
    /// closing (false: it had begun already).
    pub fn begin_close(&self) -> bool {
        self.state.fetch_or(CLOSING, Ordering::AcqRel) & CLOSING == 0
    }

    /// Whether close has begun.
    pub fn is_closing(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSING != 0
    }

    /// Live references.
    pub fn references(&self) -> usize {
        self.state.load(Ordering::Acquire) & COUNT
    }
}

/// A reference on a [`Gate`], released on drop unless kept.
#[must_use = "the reference is released when the guard is dropped"]
pub struct GateRef<'a, E: Event> {
    gate: &'a Gate<E>,
}

impl<'a, E: Event> GateRef<'a, E> {
    /// Keeps the reference beyond this guard; pair with [`Gate::release`]
    /// (an accepted asynchronous send releases it after its completion).
    pub fn keep(self) {
        core::mem::forget(self);
    }

    /// One more reference, taken even after close has begun: the holder of
    /// `self` keeps the count above zero, so close cannot have finished.
    /// An asynchronous send takes one for its completion, apart from the
    /// reference of the method call, because the completion may release it
    /// before the method returns (a target completing inside `send`).
    pub fn another(&self) -> GateRef<'a, E> {
        let prev = self.gate.state.fetch_add(1, Ordering::AcqRel);
        debug_assert!(prev & COUNT >= 1, "GateRef::another without a reference");
        GateRef { gate: self.gate }
    }
}

impl<E: Event> Drop for GateRef<'_, E> {
    fn drop(&mut self) {
        self.gate.release();
    }
}
