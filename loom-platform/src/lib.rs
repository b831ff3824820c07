//! # dmf-loom-platform: the platform seam on loom's primitives
//!
//! Test support for the loom models of the layer crates
//! (`*/tests/loom*.rs`): an implementation of `dmf_wdf::Platform` whose
//! locks, events, work items, timers and I/O target are built on loom's
//! mutexes, condition variables and threads, so that a layer's own code
//! (not a copy of its logic) runs under every interleaving loom explores.
//!
//! Everything lives behind `cfg(loom)`: in the normal build this crate is
//! empty. Build the models with
//! `RUSTFLAGS="--cfg loom" cargo test -p <layer> --test <model> --release`.
//!
//! ## What the platform models
//!
//! * `LoomLock`: a spin lock (a loom mutex). While a guard lives, the thread
//!   counts as being in dispatch context.
//! * `LoomWaitLock`: a sleeping lock (a loom mutex); taking it in dispatch
//!   context panics.
//! * `LoomEvent`: a manual-reset event. A wait with a timeout may time out
//!   as soon as the event is found unsignalled.
//! * Work items and timers are *jobs* of the platform's executor: enqueueing
//!   a work item or arming a timer queues a job, which runs on an executor
//!   thread (`LoomPlatform::spawn_workers`), on the thread that calls
//!   `LoomPlatform::run_pending`, or for a single timer on the thread that
//!   calls `TimerHandle::fire`. A timer's due time is not modelled: an armed
//!   timer may fire at any later point. Flushing a work item runs it on the
//!   flushing thread if it is queued and waits for it if it runs.
//! * `LoomIoTarget`: the seam's state contract (open, close,
//!   close-for-query-remove, reopen, start, stop, purge; sends refused when
//!   not open, purged or closed; a refused send's routine is dropped
//!   uncalled; queued while stopped) in front of a model device that treats
//!   each accepted send as its `Behaviour` script says: complete it on an
//!   executor thread, complete it inline (the completion routine runs
//!   inside `send`), hold it cancelable until it is cancelled, or refuse it.
//! * `LoomRequest`: reuse, and `cancel_sent` exactly as the seam documents
//!   it (a cancel routine runs for a request waiting in the target's queue
//!   or held cancelable by the device; otherwise the cancel is remembered:
//!   the device completes a flagged request with `STATUS_CANCELLED`, and a
//!   request not sent yet fails its next send with `STATUS_CANCELLED` until
//!   it is reused).
//! * Interface notifications: one registration at a time; the model
//!   reports an arrival or a removal on its own thread
//!   (`LoomPlatform::interface_arrived`, `LoomPlatform::interface_removed`),
//!   one call at a time, and unregistration waits for the call in progress.
//! * A target's PnP callbacks (the `TargetEvents` given to `open`) run when
//!   the model delivers them on its own thread
//!   (`LoomIoTarget::query_remove`, `remove_canceled`, `remove_complete`),
//!   never once the target is closed; closing a target waits, as KMDF does,
//!   for a callback of it running on another thread.
//!
//! Like the simulator, it panics where the seam's contracts are broken: a
//! wait, a timer or work-item deletion, a flush or a synchronous send in
//! dispatch context (a completion routine, or holding a lock); a timer
//! dropped or stopped with wait from its own handler; a request reused,
//! formatted, sent or dropped while a send of it is in flight; a work item
//! enqueued after its deletion; a query-remove accepted with the target
//! left open.
#![warn(missing_docs)]

#[cfg(loom)]
mod context;
#[cfg(loom)]
mod executor;
#[cfg(loom)]
mod platform;
#[cfg(loom)]
mod sync;
#[cfg(loom)]
mod target;

#[cfg(loom)]
pub use executor::{LoomTimer, LoomWorkItem, TimerHandle, WorkHandle};
#[cfg(loom)]
pub use platform::{LoomNotification, LoomPlatform};
#[cfg(loom)]
pub use sync::{LoomEvent, LoomGuard, LoomLock, LoomWaitLock};
#[cfg(loom)]
pub use target::{Behaviour, LoomIoTarget, LoomRequest, NoTargetEvents};

/// Runs `f` under loom's model checker with at most `preemptions`
/// preemptions per execution (the bound keeps the state space of a model
/// small enough for CI) and prints how many executions were explored.
#[cfg(loom)]
pub fn model<F: Fn() + Sync + Send + 'static>(preemptions: usize, f: F) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f()
    });
    eprintln!("loom explored {} executions", runs.load(Ordering::Relaxed));
}
