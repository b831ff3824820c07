//! The executor (passive worker threads), work items and timers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dmf_wdf::{Result, Status, Timer, TimerHandler, WorkItem, WorkItemHandler};
use loom::sync::{Condvar, Mutex};
use loom::thread::{self, JoinHandle, ThreadId};

use crate::context::assert_passive;

/// Something to run at passive level: a work item, a timer expiry, or the
/// model device completing a request.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

struct ExecState {
    jobs: VecDeque<Job>,
    shutdown: bool,
}

/// The queue of jobs that the executor threads (or a model calling
/// [`Executor::run_pending`]) run.
pub(crate) struct Executor {
    state: Mutex<ExecState>,
    cv: Condvar,
    /// Work-item enqueues still to refuse (failure injection).
    refuse_enqueues: AtomicUsize,
}

impl Executor {
    pub(crate) fn new() -> Self {
        Executor {
            state: Mutex::new(ExecState {
                jobs: VecDeque::new(),
                shutdown: false,
            }),
            cv: Condvar::new(),
            refuse_enqueues: AtomicUsize::new(0),
        }
    }

    pub(crate) fn push(&self, job: Job) {
        self.state.lock().unwrap().jobs.push_back(job);
        self.cv.notify_one();
    }

    fn pop(&self) -> Option<Job> {
        self.state.lock().unwrap().jobs.pop_front()
    }

    /// Runs the queued jobs (and those they queue) on this thread.
    pub(crate) fn run_pending(&self) {
        while let Some(job) = self.pop() {
            job();
        }
    }

    /// An executor thread: runs jobs until shut down and idle.
    pub(crate) fn spawn(self: &Arc<Self>) -> JoinHandle<()> {
        let exec = Arc::clone(self);
        thread::spawn(move || loop {
            let job = {
                let mut st = exec.state.lock().unwrap();
                loop {
                    if let Some(job) = st.jobs.pop_front() {
                        break Some(job);
                    }
                    if st.shutdown {
                        break None;
                    }
                    st = exec.cv.wait(st).unwrap();
                }
            };
            match job {
                Some(job) => job(),
                None => return,
            }
        })
    }

    /// Lets the executor threads return once the queue is empty.
    pub(crate) fn shutdown(&self) {
        self.state.lock().unwrap().shutdown = true;
        self.cv.notify_all();
    }

    pub(crate) fn refuse_enqueues(&self, n: usize) {
        self.refuse_enqueues.store(n, Ordering::SeqCst);
    }

    fn take_refusal(&self) -> bool {
        self.refuse_enqueues
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

struct WorkState {
    queued: bool,
    running: Option<ThreadId>,
    deleted: bool,
}

/// A work item's shared state.
pub(crate) struct WorkCore {
    state: Mutex<WorkState>,
    cv: Condvar,
    handler: Arc<dyn WorkItemHandler>,
    exec: Arc<Executor>,
}

impl WorkCore {
    pub(crate) fn new(handler: Arc<dyn WorkItemHandler>, exec: Arc<Executor>) -> Arc<Self> {
        Arc::new(WorkCore {
            state: Mutex::new(WorkState {
                queued: false,
                running: None,
                deleted: false,
            }),
            cv: Condvar::new(),
            handler,
            exec,
        })
    }

    /// The executor's job: runs the handler if the item is still queued
    /// (never twice at once).
    fn run_queued(self: &Arc<Self>) {
        {
            let mut st = self.state.lock().unwrap();
            while st.running.is_some() {
                st = self.cv.wait(st).unwrap();
            }
            if !st.queued || st.deleted {
                return;
            }
            st.queued = false;
            st.running = Some(thread::current().id());
        }
        self.handler.run();
        self.state.lock().unwrap().running = None;
        self.cv.notify_all();
    }

    /// Runs the item here if queued, waits for it if running, until idle.
    /// With `delete`, marks it deleted once idle.
    fn flush(self: &Arc<Self>, delete: bool) {
        let me = thread::current().id();
        let mut st = self.state.lock().unwrap();
        loop {
            if st.running == Some(me) {
                assert!(
                    delete,
                    "dmf-loom-platform: WorkItem::flush from its own handler"
                );
                // Deleted from its own handler: no wait (allowed).
                st.deleted = true;
                return;
            }
            if st.running.is_some() {
                st = self.cv.wait(st).unwrap();
                continue;
            }
            if st.queued {
                st.queued = false;
                st.running = Some(me);
                drop(st);
                self.handler.run();
                st = self.state.lock().unwrap();
                st.running = None;
                self.cv.notify_all();
                continue;
            }
            if delete {
                st.deleted = true;
            }
            return;
        }
    }
}

/// A work item ([`dmf_wdf::WorkItem`]).
pub struct LoomWorkItem(pub(crate) Arc<WorkCore>);

// SAFETY: the handler runs only as a job of the executor (an executor
// thread or the model's own `run_pending`), never inside `enqueue` or inside
// another callback of this work item.
unsafe impl WorkItem for LoomWorkItem {
    fn enqueue(&self) -> Result<()> {
        let core = &self.0;
        if core.exec.take_refusal() {
            return Err(Status::INSUFFICIENT_RESOURCES);
        }
        let mut st = core.state.lock().unwrap();
        assert!(
            !st.deleted,
            "dmf-loom-platform: work item enqueued after its deletion"
        );
        if !st.queued {
            st.queued = true;
            drop(st);
            let job = Arc::clone(core);
            core.exec.push(Box::new(move || job.run_queued()));
        }
        Ok(())
    }

    fn flush(&self) {
        assert_passive("WorkItem::flush");
        self.0.flush(false);
    }
}

impl Drop for LoomWorkItem {
    fn drop(&mut self) {
        assert_passive("dropping a work item");
        self.0.flush(true);
    }
}

/// A work item as a model sees it.
#[derive(Clone)]
pub struct WorkHandle(pub(crate) Arc<WorkCore>);

impl WorkHandle {
    /// Runs the work item on this thread if it is queued.
    pub fn run(&self) {
        self.0.run_queued();
    }
}

struct TimerState {
    armed: bool,
    running: Option<ThreadId>,
    deleted: bool,
}

/// A timer's shared state.
pub(crate) struct TimerCore {
    state: Mutex<TimerState>,
    cv: Condvar,
    handler: Arc<dyn TimerHandler>,
    exec: Arc<Executor>,
}

impl TimerCore {
    pub(crate) fn new(handler: Arc<dyn TimerHandler>, exec: Arc<Executor>) -> Arc<Self> {
        Arc::new(TimerCore {
            state: Mutex::new(TimerState {
                armed: false,
                running: None,
                deleted: false,
            }),
            cv: Condvar::new(),
            handler,
            exec,
        })
    }

    /// Expires the timer if it is armed: runs its handler here.
    fn fire(&self) {
        {
            let mut st = self.state.lock().unwrap();
            while st.running.is_some() {
                st = self.cv.wait(st).unwrap();
            }
            if !st.armed || st.deleted {
                return;
            }
            st.armed = false;
            st.running = Some(thread::current().id());
        }
        self.handler.fired();
        self.state.lock().unwrap().running = None;
        self.cv.notify_all();
    }

    fn stop(&self, wait: bool, delete: bool) -> bool {
        let me = thread::current().id();
        let mut st = self.state.lock().unwrap();
        let was = std::mem::replace(&mut st.armed, false);
        if wait {
            assert!(
                st.running != Some(me),
                "dmf-loom-platform: timer stopped with wait (or dropped) from its own handler"
            );
            while st.running.is_some() {
                st = self.cv.wait(st).unwrap();
            }
        }
        if delete {
            st.deleted = true;
        }
        was
    }
}

/// A one-shot timer ([`dmf_wdf::Timer`]).
pub struct LoomTimer(pub(crate) Arc<TimerCore>);

// SAFETY: the handler runs only from an executor job queued by `start`
// (or a model's explicit `fire` of an armed timer), once per arming, never
// inside `start` or `stop`; `stop` reports whether it disarmed an armed
// timer, `stop(true)` and drop wait while the handler runs (and panic if
// called from the handler itself), and a dropped timer is marked deleted so
// that no later start or expiry runs it.
unsafe impl Timer for LoomTimer {
    fn start(&self, _due_ms: u64) -> bool {
        let core = &self.0;
        let was = {
            let mut st = core.state.lock().unwrap();
            assert!(
                !st.deleted,
                "dmf-loom-platform: timer started after its deletion"
            );
            std::mem::replace(&mut st.armed, true)
        };
        if !was {
            let job = Arc::clone(core);
            core.exec.push(Box::new(move || job.fire()));
        }
        was
    }

    fn stop(&self, wait: bool) -> bool {
        if wait {
            assert_passive("Timer::stop(wait)");
        }
        self.0.stop(wait, false)
    }
}

impl Drop for LoomTimer {
    fn drop(&mut self) {
        assert_passive("dropping a timer");
        self.0.stop(true, true);
    }
}

/// A timer as a model sees it.
#[derive(Clone)]
pub struct TimerHandle(pub(crate) Arc<TimerCore>);

impl TimerHandle {
    /// Expires the timer on this thread if it is armed (its handler runs here).
    pub fn fire(&self) {
        self.0.fire();
    }

    /// Whether the timer is armed.
    pub fn is_armed(&self) -> bool {
        self.0.state.lock().unwrap().armed
    }
}
