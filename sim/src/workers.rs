//! Job queues served by named simulator threads.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::timer::TimerInner;
use crate::work_item::WorkItemInner;

/// A FIFO of jobs with a count of jobs queued or running ("busy"), used for
/// quiescence checks. Capacity is kept, so steady-state pushes do not allocate.
///
/// Workers are woken only when there is one to wake and a job it must run:
/// a push with no idle worker makes no futex call, and a job queued by one
/// of the pool's own workers while the queue is empty is left for that
/// worker (see [`Pool::push_from_worker`]).
pub(crate) struct Pool<J> {
    state: Mutex<PoolState<J>>,
    cv: Condvar,
}

struct PoolState<J> {
    jobs: VecDeque<J>,
    busy: usize,
    /// Workers waiting in [`Pool::next`].
    idle: usize,
    shutdown: bool,
}

impl<J> Pool<J> {
    pub(crate) fn new() -> Self {
        Pool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::with_capacity(64),
                busy: 0,
                idle: 0,
                shutdown: false,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; gives it back if the pool is shut down.
    pub(crate) fn push(&self, job: J) -> Result<(), J> {
        self.push_impl(job, false)
    }

    /// Queues `job` from one of this pool's own workers, while it runs a job.
    ///
    /// Like a DPC queued from a DPC, which runs on the same processor once
    /// the current one returns: if no other job is waiting, no idle worker
    /// is woken, because the pushing worker takes the job itself as soon as
    /// its current job returns. (Waking one would only race the pusher for
    /// the job: a futex wake-up per job and, on a loaded machine, a context
    /// switch that preempts the pusher in the middle of its job.) If jobs
    /// are already waiting, an idle worker is woken as usual to help.
    pub(crate) fn push_from_worker(&self, job: J) -> Result<(), J> {
        self.push_impl(job, true)
    }

    fn push_impl(&self, job: J, from_worker: bool) -> Result<(), J> {
        let mut s = self.lock();
        if s.shutdown {
            return Err(job);
        }
        s.jobs.push_back(job);
        s.busy += 1;
        let wake = s.idle > 0 && !(from_worker && s.jobs.len() == 1);
        drop(s);
        if wake {
            self.cv.notify_one();
        }
        Ok(())
    }

    /// Waits for the next job; `None` once the pool is shut down.
    pub(crate) fn next(&self) -> Option<J> {
        let mut s = self.lock();
        loop {
            if s.shutdown {
                return None;
            }
            if let Some(job) = s.jobs.pop_front() {
                return Some(job);
            }
            s.idle += 1;
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.idle -= 1;
        }
    }

    /// Marks one job finished; returns the remaining busy count.
    pub(crate) fn done(&self) -> usize {
        let mut s = self.lock();
        s.busy = s.busy.saturating_sub(1);
        s.busy
    }

    /// Jobs queued or running.
    pub(crate) fn busy(&self) -> usize {
        self.lock().busy
    }

    /// Stops the pool: wakes every worker and returns the jobs never run.
    pub(crate) fn shutdown(&self) -> Vec<J> {
        let mut s = self.lock();
        s.shutdown = true;
        let left: Vec<J> = s.jobs.drain(..).collect();
        s.busy = s.busy.saturating_sub(left.len());
        drop(s);
        self.cv.notify_all();
        left
    }
}

/// A job for the passive worker threads.
pub(crate) enum PassiveJob {
    /// A timer expired (real-time mode).
    Timer(Arc<TimerInner>, u64),
    /// A work item was enqueued.
    Work(Arc<WorkItemInner>),
}
