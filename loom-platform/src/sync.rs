//! The spin lock and the event.

use std::ops::{Deref, DerefMut};

use dmf_wdf::{Event, Lock, WaitLock};
use loom::sync::{Condvar, Mutex, MutexGuard};

use crate::context::{assert_passive, DispatchScope};

/// A spin lock owning a `T`, on a loom mutex. Its holder is in dispatch
/// context (a wait while holding it panics; loom reports taking it twice on
/// one thread as a deadlock).
#[derive(Debug)]
pub struct LoomLock<T>(Mutex<T>);

/// The guard of a [`LoomLock`].
pub struct LoomGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    _dispatch: DispatchScope,
}

impl<T> Deref for LoomGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for LoomGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

// SAFETY: a loom mutex: one guard at a time, the guard the only access to
// the value, each holder sees the previous holder's writes (loom checks it).
unsafe impl<T: Send> Lock<T> for LoomLock<T> {
    type Guard<'a>
        = LoomGuard<'a, T>
    where
        Self: 'a;

    fn new(value: T) -> Self {
        LoomLock(Mutex::new(value))
    }

    fn lock(&self) -> LoomGuard<'_, T> {
        let guard = self.0.lock().unwrap();
        LoomGuard {
            guard,
            _dispatch: DispatchScope::enter(),
        }
    }
}

/// A sleeping lock owning a `T`, on a loom mutex: taking it is a wait, so it
/// panics in dispatch context (a spin lock held, a completion routine).
#[derive(Debug)]
pub struct LoomWaitLock<T>(Mutex<T>);

impl<T> LoomWaitLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> Self {
        LoomWaitLock(Mutex::new(value))
    }
}

// SAFETY: a loom mutex, as `LoomLock`.
unsafe impl<T: Send> WaitLock<T> for LoomWaitLock<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> MutexGuard<'_, T> {
        assert_passive("WaitLock::lock");
        self.0.lock().unwrap()
    }
}

/// A manual-reset event on a loom mutex and condition variable.
#[derive(Debug)]
pub struct LoomEvent {
    set: Mutex<bool>,
    cv: Condvar,
}

impl LoomEvent {
    /// An event, signalled or not.
    pub fn new(signalled: bool) -> Self {
        LoomEvent {
            set: Mutex::new(signalled),
            cv: Condvar::new(),
        }
    }
}

impl Event for LoomEvent {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn reset(&self) {
        *self.set.lock().unwrap() = false;
    }

    fn is_set(&self) -> bool {
        *self.set.lock().unwrap()
    }

    /// Without a timeout, waits until signalled. With one, the time is not
    /// modelled: the wait may expire as soon as the event is found
    /// unsignalled (after letting other threads run once).
    fn wait(&self, timeout_ms: Option<u32>) -> bool {
        assert_passive("Event::wait");
        if timeout_ms.is_some() {
            if self.is_set() {
                return true;
            }
            loom::thread::yield_now();
            return self.is_set();
        }
        let mut set = self.set.lock().unwrap();
        while !*set {
            set = self.cv.wait(set).unwrap();
        }
        true
    }
}
