//! Timed actions on the simulator clock.
//!
//! Everything that happens "later" (a completion delivered after its latency,
//! a device completing a parked IRP, a request timeout, a timer expiring) is an
//! [`Action`] in one min-heap ordered by deadline, then by scheduling order
//! (FIFO). In real-time mode a scheduler thread waits for the earliest deadline
//! and routes due actions to the completion or passive worker threads; in
//! manual mode [`advance_to`] runs them inline on the calling thread.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use dmf_wdf::Status;

use crate::context::{self, Marker, MarkerKind};
use crate::core::Core;
use crate::irp;
use crate::request::RequestInner;
use crate::timer::{self, TimerInner};
use crate::workers::PassiveJob;

/// Something to do at a deadline.
pub(crate) enum Action {
    /// Deliver the completion of send `gen` (call its completion routine).
    Deliver { req: Arc<RequestInner>, gen: u64 },
    /// A device completes a parked IRP.
    DeviceComplete {
        req: Arc<RequestInner>,
        gen: u64,
        status: Status,
        information: usize,
    },
    /// A request's timeout check: cancels the send if its timeout expired.
    CancelTimeout {
        req: Arc<RequestInner>,
        deadline: u64,
    },
    /// A timer expired.
    TimerFire { timer: Weak<TimerInner>, gen: u64 },
}

impl Action {
    /// Runs the action on the current thread.
    pub(crate) fn run(self) {
        match self {
            Action::Deliver { req, gen } => irp::deliver(&req, gen),
            Action::DeviceComplete {
                req,
                gen,
                status,
                information,
            } => {
                irp::complete_internal(&req, gen, status, information);
            }
            Action::CancelTimeout { req, deadline } => irp::timeout_check(&req, deadline),
            Action::TimerFire { timer, gen } => {
                if let Some(t) = timer.upgrade() {
                    timer::fire(&t, gen);
                }
            }
        }
    }

    /// Whether running the action would do nothing (a completed IRP's
    /// timeout, a re-armed or stopped timer): such actions do not move the
    /// manual clock.
    fn is_stale(&self) -> bool {
        match self {
            Action::Deliver { .. } => false,
            Action::DeviceComplete { req, gen, .. } => !irp::is_at_device(req, *gen),
            Action::CancelTimeout { req, deadline } => !irp::timeout_check_is_live(req, *deadline),
            Action::TimerFire { timer, gen } => match timer.upgrade() {
                Some(t) => !timer::is_armed_with(&t, *gen),
                None => true,
            },
        }
    }
}

struct Entry {
    deadline: u64,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline && self.seq == other.seq
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

struct SchedState {
    heap: BinaryHeap<Entry>,
    shutdown: bool,
}

/// The timed-action heap of one simulator.
pub(crate) struct Scheduler {
    state: Mutex<SchedState>,
    cv: Condvar,
    seq: AtomicU64,
    advance_serial: Mutex<()>,
}

impl Scheduler {
    pub(crate) fn new() -> Self {
        Scheduler {
            state: Mutex::new(SchedState {
                heap: BinaryHeap::with_capacity(256),
                shutdown: false,
            }),
            cv: Condvar::new(),
            seq: AtomicU64::new(0),
            advance_serial: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SchedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an action at `deadline`. Dropped if the scheduler is shut down.
    pub(crate) fn push(&self, deadline: u64, action: Action) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut s = self.lock();
        if s.shutdown {
            drop(s);
            drop(action);
            return;
        }
        let new_top = s.heap.peek().is_none_or(|top| deadline < top.deadline);
        s.heap.push(Entry {
            deadline,
            seq,
            action,
        });
        drop(s);
        if new_top {
            self.cv.notify_one();
        }
    }

    /// Number of scheduled actions (including stale ones).
    pub(crate) fn len(&self) -> usize {
        self.lock().heap.len()
    }

    /// Pops the earliest action if its deadline is at most `limit`.
    fn pop_due(&self, limit: u64) -> Option<Entry> {
        let mut s = self.lock();
        if s.heap.peek().is_some_and(|e| e.deadline <= limit) {
            s.heap.pop()
        } else {
            None
        }
    }

    /// Stops the scheduler thread and drops every scheduled action.
    pub(crate) fn shutdown(&self) {
        let mut s = self.lock();
        s.shutdown = true;
        let heap = std::mem::take(&mut s.heap);
        drop(s);
        self.cv.notify_all();
        drop(heap);
    }
}

/// Routes a due action in real-time mode: completions and timeouts to the
/// completion threads, timers to the passive threads, device completions
/// inline (they only move the IRP to its completion and schedule delivery).
pub(crate) fn route(core: &Arc<Core>, action: Action) {
    match action {
        Action::Deliver { .. } | Action::CancelTimeout { .. } => {
            // Queued by a completion routine (a resend that completed at
            // once): this thread runs it next, like a DPC queued to the
            // current processor, instead of waking another completion thread.
            let queued = if context::is_completion_thread_of(core.id) {
                core.completions.push_from_worker(action)
            } else {
                core.completions.push(action)
            };
            if let Err(action) = queued {
                // Shut down: deliver here rather than lose a completion.
                action.run();
            }
        }
        Action::DeviceComplete { .. } => action.run(),
        Action::TimerFire { timer, gen } => {
            if let Some(t) = timer.upgrade() {
                let _ = core.passive.push(PassiveJob::Timer(t, gen));
            }
        }
    }
}

/// The real-time scheduler thread.
pub(crate) fn scheduler_thread(core: Arc<Core>) {
    let sched = &core.sched;
    let mut s = sched.lock();
    loop {
        if s.shutdown {
            return;
        }
        let now = core.clock.now();
        match s.heap.peek() {
            None => s = sched.cv.wait(s).unwrap_or_else(PoisonError::into_inner),
            Some(top) if top.deadline <= now => {
                let entry = s.heap.pop().expect("peeked");
                drop(s);
                route(&core, entry.action);
                s = sched.lock();
            }
            Some(top) => {
                let wait = core.clock.real_wait(top.deadline);
                s = sched
                    .cv
                    .wait_timeout(s, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
}

/// Manual mode: runs every action due at or before `target`, in order, on the
/// calling thread, moving the clock to each action's deadline; then sets the
/// clock to `target`.
pub(crate) fn advance_to(core: &Arc<Core>, target: u64) {
    let _serial = enter_advance(core);
    while let Some(entry) = core.sched.pop_due(target) {
        run_entry(core, entry);
    }
    core.clock.set_manual(target);
}

/// Manual mode: runs scheduled actions in order regardless of their deadline
/// until none is left or `limit` actions ran. Returns whether it became idle.
pub(crate) fn run_until_idle(core: &Arc<Core>, limit: usize) -> bool {
    let _serial = enter_advance(core);
    for _ in 0..limit {
        match core.sched.pop_due(u64::MAX) {
            Some(entry) => run_entry(core, entry),
            None => return true,
        }
    }
    core.sched.len() == 0
}

fn run_entry(core: &Arc<Core>, entry: Entry) {
    if !entry.action.is_stale() {
        core.clock.set_manual(entry.deadline);
    }
    entry.action.run();
}

struct AdvanceGuard<'a> {
    _serial: MutexGuard<'a, ()>,
    _marker: Marker,
}

#[track_caller]
fn enter_advance(core: &Arc<Core>) -> AdvanceGuard<'_> {
    assert!(
        core.clock.is_manual(),
        "dmf-sim: advance/run_until_idle need ClockMode::Manual (this simulator runs on real time)"
    );
    assert!(
        !context::is_advancing(core.id),
        "dmf-sim: advance/run_until_idle called from a callback that advance itself is running"
    );
    let serial = core
        .sched
        .advance_serial
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    AdvanceGuard {
        _serial: serial,
        _marker: Marker::set(MarkerKind::Advancing, core.id as usize),
    }
}
