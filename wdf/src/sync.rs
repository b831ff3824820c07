//! Synchronisation primitives: a spin lock that owns its data, and an event
//! to wait on.

use core::ops::DerefMut;

/// A spin lock owning a `T` (a `KSPIN_LOCK` / `WDFSPINLOCK` in the kernel).
///
/// Holders must not block or call into code that may take the same lock.
/// The lock may be acquired in dispatch context.
pub trait Lock<T: Send>: Send + Sync + Sized {
    /// Guard giving exclusive access; releases the lock when dropped.
    type Guard<'a>: DerefMut<Target = T>
    where
        Self: 'a;

    /// Creates an unlocked lock holding `value`.
    fn new(value: T) -> Self;

    /// Acquires the lock, spinning until it is free.
    fn lock(&self) -> Self::Guard<'_>;
}

/// A manual-reset notification event (`KEVENT`, `NotificationEvent`).
///
/// Used by the layers for every wait (close, stream stop, synchronous sends),
/// never polling.
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
