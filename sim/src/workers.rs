//! Job queues served by named simulator threads.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::timer::TimerInner;
use crate::work_item::WorkItemInner;

/// A FIFO of jobs with a count of jobs queued or running ("busy"), used for
/// quiescence checks. Capacity is kept, so steady-state pushes do not allocate.
pub(crate) struct Pool<J> {
    state: Mutex<PoolState<J>>,
    cv: Condvar,
}

struct PoolState<J> {
    jobs: VecDeque<J>,
    busy: usize,
    shutdown: bool,
}

impl<J> Pool<J> {
    pub(crate) fn new() -> Self {
        Pool {
            state: Mutex::new(PoolState {
                jobs: VecDeque::with_capacity(64),
                busy: 0,
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
        let mut s = self.lock();
        if s.shutdown {
            return Err(job);
        }
        s.jobs.push_back(job);
        s.busy += 1;
        drop(s);
        self.cv.notify_one();
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
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
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
