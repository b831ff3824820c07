//! Passive work items (see [`SimWorkItem`]).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use dmf_wdf::{Status, WorkItem, WorkItemHandler};

use crate::context::{self, Marker, MarkerKind};
use crate::core::{lock, wait, Core};
use crate::counters;
use crate::faults::FaultPoint;
use crate::workers::PassiveJob;
use crate::Sim;

struct WorkState {
    queued: bool,
    running: usize,
}

/// The shared part of a work item.
pub(crate) struct WorkItemInner {
    core: Arc<Core>,
    handler: Arc<dyn WorkItemHandler>,
    state: Mutex<WorkState>,
    idle: Condvar,
}

impl WorkItemInner {
    fn lock(&self) -> MutexGuard<'_, WorkState> {
        lock(&self.state)
    }

    fn key(&self) -> usize {
        self as *const WorkItemInner as usize
    }
}

/// Runs a dequeued work item (passive worker thread).
pub(crate) fn run(item: &Arc<WorkItemInner>) {
    {
        let mut s = item.lock();
        s.queued = false;
        s.running += 1;
    }
    struct Running<'a>(&'a WorkItemInner);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            let mut s = self.0.lock();
            s.running -= 1;
            drop(s);
            self.0.idle.notify_all();
        }
    }
    let _running = Running(item);
    let _marker = Marker::set(MarkerKind::WorkItem, item.key());
    item.handler.run();
}

/// A simulated work item.
///
/// As strict as KMDF (see [`dmf_wdf::WorkItem`]): [`flush`](WorkItem::flush)
/// panics in dispatch context or from the item's own handler
/// (`FxWorkItem::FlushAndWait` breaks there), and dropping it panics in
/// dispatch context (the deletion waits, `FxWorkItem::WaitForSignal` asserts
/// `PASSIVE_LEVEL`). Dropping it from its own handler is allowed and does not
/// wait, as `FxWorkItem::FlushAndRundown` skips the wait on the callback
/// thread.
///
/// Work items run on the simulator's passive worker threads, in both clock
/// modes (they do not wait for `advance`). As in KMDF, enqueueing a work item
/// that is queued and not yet running does nothing; one that is running may be
/// queued again, and with several passive threads that second run can overlap
/// the first.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use dmf_sim::{Sim, SimConfig};
/// use dmf_wdf::{Platform, WorkItem, WorkItemHandler};
///
/// struct Count(AtomicUsize);
/// impl WorkItemHandler for Count {
///     fn run(&self) { self.0.fetch_add(1, Ordering::SeqCst); }
/// }
/// let sim = Sim::new(SimConfig::default());
/// let count = Arc::new(Count(AtomicUsize::new(0)));
/// let item = sim.create_work_item(count.clone()).unwrap();
/// item.enqueue().unwrap();
/// item.flush();
/// assert_eq!(count.0.load(Ordering::SeqCst), 1);
/// ```
pub struct SimWorkItem {
    _sim: Sim,
    inner: Arc<WorkItemInner>,
}

impl fmt::Debug for SimWorkItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.lock();
        f.debug_struct("SimWorkItem")
            .field("queued", &s.queued)
            .field("running", &s.running)
            .finish()
    }
}

impl SimWorkItem {
    pub(crate) fn new(sim: &Sim, handler: Arc<dyn WorkItemHandler>) -> SimWorkItem {
        let core = Arc::clone(sim.core());
        counters::add(&core.counters.live_work_items, 1);
        SimWorkItem {
            _sim: sim.clone(),
            inner: Arc::new(WorkItemInner {
                core,
                handler,
                state: Mutex::new(WorkState {
                    queued: false,
                    running: 0,
                }),
                idle: Condvar::new(),
            }),
        }
    }

    /// Whether the work item is queued (not yet running).
    pub fn is_queued(&self) -> bool {
        self.inner.lock().queued
    }

    fn wait_idle(&self) {
        let mut s = self.inner.lock();
        while s.queued || s.running > 0 {
            s = wait(&self.inner.idle, s);
        }
    }
}

// SAFETY: `enqueue` only pushes a job to the passive workers' queue; the
// handler runs from `run`, called by a passive worker thread for that job,
// never nested in the caller of `enqueue` or in any other callback.
unsafe impl WorkItem for SimWorkItem {
    fn enqueue(&self) -> dmf_wdf::Result<()> {
        let core = &self.inner.core;
        if core.is_shutting_down() {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        if let Some(status) = core.faults.check(FaultPoint::WorkItemEnqueue) {
            return Err(status);
        }
        {
            let mut s = self.inner.lock();
            if s.queued {
                return Ok(());
            }
            s.queued = true;
        }
        if core
            .passive
            .push(PassiveJob::Work(Arc::clone(&self.inner)))
            .is_err()
        {
            self.inner.lock().queued = false;
            self.inner.idle.notify_all();
            return Err(Status::INVALID_DEVICE_STATE);
        }
        Ok(())
    }

    fn flush(&self) {
        context::assert_passive("WorkItem::flush");
        assert!(
            !context::is_running_work_item(self.inner.key()),
            "dmf-sim: WorkItem::flush called from the work item's own handler; it would wait for itself"
        );
        self.wait_idle();
    }
}

impl Drop for SimWorkItem {
    fn drop(&mut self) {
        // KMDF runs a queued work item before its deletion completes
        // (`FxWorkItem::FlushAndRundown` waits, except on the item's own
        // callback thread); the wait needs PASSIVE_LEVEL.
        if !std::thread::panicking() {
            context::assert_passive("dropping a WorkItem (WdfObjectDelete waits for it)");
        }
        if !context::in_dispatch() && !context::is_running_work_item(self.inner.key()) {
            self.wait_idle();
        }
        counters::add(&self.inner.core.counters.live_work_items, -1);
    }
}

/// The simulator shut down with this work item still queued: it will not run.
pub(crate) fn abandon(item: &Arc<WorkItemInner>) {
    item.lock().queued = false;
    item.idle.notify_all();
}
