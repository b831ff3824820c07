//! Spin locks, wait locks and events.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dmf_wdf::{Event, Lock, WaitLock};

use crate::context::{self, DispatchScope};
use crate::core::{lock, Core};
use crate::counters;

/// A spin lock owning a `T` (`WDFSPINLOCK`), built on `std::sync::Mutex`
/// (poisoning is ignored).
///
/// Like a spin lock, holding it puts the thread in dispatch context: blocking
/// simulator operations (waits, synchronous sends, closing a target...) panic
/// while it is held, and acquiring it again on the same thread panics instead
/// of deadlocking.
///
/// ```
/// use dmf_sim::SimLock;
/// use dmf_wdf::Lock;
/// let lock = SimLock::new(1);
/// *lock.lock() += 1;
/// assert_eq!(*lock.lock(), 2);
/// ```
pub struct SimLock<T> {
    mutex: Mutex<T>,
    owner: AtomicUsize,
}

impl<T: fmt::Debug> fmt::Debug for SimLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mutex.try_lock() {
            Ok(v) => f.debug_tuple("SimLock").field(&*v).finish(),
            Err(_) => f.write_str("SimLock(<locked>)"),
        }
    }
}

/// The guard of a [`SimLock`].
pub struct SimLockGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a AtomicUsize,
    _dispatch: DispatchScope,
}

impl<T> Deref for SimLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for SimLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for SimLockGuard<'_, T> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

// SAFETY: the value lives in a `std::sync::Mutex`, whose guard is the only
// way to reach it and which orders successive holders (release/acquire); a
// `SimLockGuard` wraps exactly one `MutexGuard` of that mutex.
unsafe impl<T: Send> Lock<T> for SimLock<T> {
    type Guard<'a>
        = SimLockGuard<'a, T>
    where
        Self: 'a;

    fn new(value: T) -> Self {
        SimLock {
            mutex: Mutex::new(value),
            owner: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> SimLockGuard<'_, T> {
        let me = context::thread_token();
        assert!(
            self.owner.load(Ordering::Acquire) != me,
            "dmf-sim: spin lock acquired again by the thread holding it (a spin lock would deadlock)"
        );
        let dispatch = DispatchScope::enter();
        let guard = self.mutex.lock().unwrap_or_else(PoisonError::into_inner);
        self.owner.store(me, Ordering::Release);
        SimLockGuard {
            guard,
            owner: &self.owner,
            _dispatch: dispatch,
        }
    }
}

/// A sleeping lock owning a `T` (`WDFWAITLOCK`), built on `std::sync::Mutex`
/// (poisoning is ignored); created with
/// [`Platform::create_wait_lock`](dmf_wdf::Platform::create_wait_lock).
///
/// As strict as KMDF: acquiring it in dispatch context (inside a completion
/// routine, or while a spin lock is held) panics, as KMDF's verifier breaks
/// on `WdfWaitLockAcquire` without timeout above `PASSIVE_LEVEL`; acquiring
/// it again on the thread holding it panics instead of deadlocking. Holding
/// it does not put the thread in dispatch context: holders may block.
///
/// ```
/// use dmf_sim::{Sim, SimConfig};
/// use dmf_wdf::{Platform, WaitLock};
/// let sim = Sim::new(SimConfig::default());
/// let lock = sim.create_wait_lock(1).unwrap();
/// *lock.lock() += 1;
/// assert_eq!(*lock.lock(), 2);
/// ```
pub struct SimWaitLock<T> {
    mutex: Mutex<T>,
    owner: AtomicUsize,
    core: Arc<Core>,
}

impl<T: fmt::Debug> fmt::Debug for SimWaitLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mutex.try_lock() {
            Ok(v) => f.debug_tuple("SimWaitLock").field(&*v).finish(),
            Err(_) => f.write_str("SimWaitLock(<locked>)"),
        }
    }
}

impl<T> SimWaitLock<T> {
    pub(crate) fn new(core: Arc<Core>, value: T) -> Self {
        counters::add(&core.counters.live_wait_locks, 1);
        SimWaitLock {
            mutex: Mutex::new(value),
            owner: AtomicUsize::new(0),
            core,
        }
    }
}

impl<T> Drop for SimWaitLock<T> {
    fn drop(&mut self) {
        counters::add(&self.core.counters.live_wait_locks, -1);
    }
}

/// The guard of a [`SimWaitLock`].
pub struct SimWaitLockGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a AtomicUsize,
}

impl<T> Deref for SimWaitLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for SimWaitLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for SimWaitLockGuard<'_, T> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

// SAFETY: the value lives in a `std::sync::Mutex`, whose guard is the only
// way to reach it and which orders successive holders (release/acquire); a
// `SimWaitLockGuard` wraps exactly one `MutexGuard` of that mutex.
unsafe impl<T: Send> WaitLock<T> for SimWaitLock<T> {
    type Guard<'a>
        = SimWaitLockGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> SimWaitLockGuard<'_, T> {
        context::assert_passive("WaitLock::lock (WdfWaitLockAcquire)");
        let me = context::thread_token();
        assert!(
            self.owner.load(Ordering::Acquire) != me,
            "dmf-sim: wait lock acquired again by the thread holding it (it would deadlock)"
        );
        let guard = self.mutex.lock().unwrap_or_else(PoisonError::into_inner);
        self.owner.store(me, Ordering::Release);
        SimWaitLockGuard {
            guard,
            owner: &self.owner,
        }
    }
}

/// A manual-reset notification event (`KEVENT`) with real-time waits.
///
/// ```
/// use dmf_sim::{Sim, SimConfig};
/// use dmf_wdf::{Event, Platform};
/// let sim = Sim::new(SimConfig::default());
/// let event = sim.create_event(false).unwrap();
/// assert!(!event.wait(Some(1)));
/// event.set();
/// assert!(event.wait(None) && event.is_set());
/// ```
pub struct SimEvent {
    core: Arc<Core>,
    state: Mutex<bool>,
    cv: Condvar,
}

impl fmt::Debug for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimEvent").field(&self.is_set()).finish()
    }
}

impl SimEvent {
    pub(crate) fn new(core: Arc<Core>, signalled: bool) -> SimEvent {
        counters::add(&core.counters.live_events, 1);
        SimEvent {
            core,
            state: Mutex::new(signalled),
            cv: Condvar::new(),
        }
    }
}

impl Event for SimEvent {
    fn set(&self) {
        *lock(&self.state) = true;
        self.cv.notify_all();
    }

    fn reset(&self) {
        *lock(&self.state) = false;
    }

    fn is_set(&self) -> bool {
        *lock(&self.state)
    }

    fn wait(&self, timeout_ms: Option<u32>) -> bool {
        if timeout_ms != Some(0) {
            context::assert_passive("Event::wait");
        }
        let mut s = lock(&self.state);
        match timeout_ms {
            None => {
                while !*s {
                    s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                true
            }
            Some(ms) => {
                let deadline = Instant::now() + Duration::from_millis(u64::from(ms));
                while !*s {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    s = self
                        .cv
                        .wait_timeout(s, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                true
            }
        }
    }
}

impl Drop for SimEvent {
    fn drop(&mut self) {
        counters::add(&self.core.counters.live_events, -1);
    }
}
