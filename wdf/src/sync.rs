//! Synchronisation primitives: a spin lock and a sleeping lock that own their
//! data, and an event to wait on.

use core::ops::DerefMut;

/// A spin lock owning a `T` (a `KSPIN_LOCK` / `WDFSPINLOCK` in the kernel).
///
/// Holders must not block or call into code that may take the same lock.
/// The lock may be acquired in dispatch context.
///
/// # Safety
///
/// The layers' `unsafe` code keeps data outside the lock (the links of buffers
/// listed in a sink pool, for example) owned by whoever holds it. Implementers
/// must ensure that:
///
/// * at most one [`Guard`](Lock::Guard) of a lock exists at any time: between
///   [`lock`](Lock::lock) returning a guard and that guard being dropped, no
///   other call of `lock` on the same lock returns;
/// * a guard dereferences to the value the lock owns (the one given to
///   [`new`](Lock::new), as modified by earlier holders), and nothing but the
///   guard accesses it while the guard lives;
/// * everything a holder did before dropping its guard happens before the
///   next holder's `lock` returns (release/acquire ordering).
pub unsafe trait Lock<T: Send>: Send + Sync + Sized {
    /// Guard giving exclusive access; releases the lock when dropped.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;

    /// Creates an unlocked lock holding `value`.
    fn new(value: T) -> Self;

    /// Acquires the lock, spinning until it is free.
    fn lock(&self) -> Self::Guard<'_>;
}

/// A sleeping lock owning a `T` (`WDFWAITLOCK` in the kernel), created with
/// [`Platform::create_wait_lock`](crate::Platform::create_wait_lock).
///
/// [`lock`](WaitLock::lock) blocks until the lock is free, so it may only be
/// called at passive level: never in a completion routine or while a spin
/// lock is held (the simulator panics there, as KMDF's verifier breaks on a
/// `WdfWaitLockAcquire` without timeout above `PASSIVE_LEVEL`). Holders may
/// block (wait on events, send synchronously, close I/O targets) but must not
/// acquire the same lock again, and must not wait for a thread that may be
/// waiting for the lock.
///
/// # Safety
///
/// As for [`Lock`]: code building on a lock relies on its mutual exclusion.
/// Implementers must ensure that:
///
/// * at most one [`Guard`](WaitLock::Guard) of a lock exists at any time;
/// * a guard dereferences to the value the lock owns (the one it was created
///   with, as modified by earlier holders), and nothing but the guard
///   accesses it while the guard lives;
/// * everything a holder did before dropping its guard happens before the
///   next holder's `lock` returns (release/acquire ordering).
pub unsafe trait WaitLock<T: Send>: Send + Sync + Sized {
    /// Guard giving exclusive access; releases the lock when dropped.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;

    /// Acquires the lock, sleeping until it is free (`WdfWaitLockAcquire`
    /// without timeout). Passive level only.
    fn lock(&self) -> Self::Guard<'_>;
}

/// A manual-reset notification event (`KEVENT`, `NotificationEvent`).
///
/// Used by the layers for every wait (close, stream stop, synchronous sends),
/// never polling.
///
/// A safe trait: no `unsafe` code in the layers relies on an event. Ownership
/// of memory moves by atomic state transitions, lock guards and the
/// [`IoTarget`](crate::IoTarget) completion guarantee, never by a wakeup; an
/// event that woke a waiter too early would break a layer's logic, not
/// memory safety.
pub trait Event: Send + Sync + Sized {
    /// Signals the event, waking every waiter; it stays signalled until reset.
    fn set(&self);
    /// Clears the event.
    fn reset(&self);
    /// Whether the event is signalled.
    fn is_set(&self) -> bool;
    /// Waits until the event is signalled; `None` waits forever. Returns
    /// whether it was signalled (false: timed out). Passive level only.
    fn wait(&self, timeout_ms: Option<u32>) -> bool;
}
