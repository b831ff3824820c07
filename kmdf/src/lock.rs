//! [`Lock`] on a `KSPIN_LOCK`.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use dmf_wdf::Lock;
use wdk_sys::ntddk::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock};
use wdk_sys::{KIRQL, KSPIN_LOCK};

/// A spin lock owning a `T`: a `KSPIN_LOCK` next to an `UnsafeCell<T>`.
///
/// [`Lock::lock`] raises to `DISPATCH_LEVEL` (`KeAcquireSpinLockRaiseToDpc`);
/// the guard restores the previous IRQL (`KeReleaseSpinLock`). The lock must
/// live in non-paged memory (everything the layers allocate through the
/// global allocator or [`Platform::allocate`](dmf_wdf::Platform::allocate)
/// is, with [`KmdfAllocator`](crate::memory::KmdfAllocator)).
///
/// A `KSPIN_LOCK` is a plain word that may be moved while nobody holds it
/// (`KeInitializeSpinLock` only stores 0 on x64 and ARM64); the guard borrows
/// the lock, so it cannot move while held.
///
/// # Invariants
///
/// `value` is only accessed through a [`KmdfLockGuard`], which exists only
/// while `spin` is held.
pub struct KmdfLock<T> {
    spin: UnsafeCell<KSPIN_LOCK>,
    value: UnsafeCell<T>,
}

// SAFETY: the lock owns its T; moving it to another thread moves the T.
unsafe impl<T: Send> Send for KmdfLock<T> {}
// SAFETY: every access to the T is serialised by the spin lock (invariant),
// so sharing the lock only ever gives one thread at a time a `&mut T`.
unsafe impl<T: Send> Sync for KmdfLock<T> {}

// SAFETY: `KeAcquireSpinLockRaiseToDpc` returns only once this processor owns
// the spin lock, which no other acquisition can then take until
// `KeReleaseSpinLock` (an interlocked exchange with full barriers, ordering
// the holders). The guard is the only access to `value` (invariant), created
// by `lock` and releasing the spin lock in its drop.
unsafe impl<T: Send> Lock<T> for KmdfLock<T> {
    type Guard<'a>
        = KmdfLockGuard<'a, T>
    where
        Self: 'a;

    fn new(value: T) -> Self {
        KmdfLock {
            // KeInitializeSpinLock: `*SpinLock = 0` (an inline function in wdm.h).
            spin: UnsafeCell::new(0),
            value: UnsafeCell::new(value),
        }
    }

    fn lock(&self) -> KmdfLockGuard<'_, T> {
        // SAFETY: `spin` is an initialised KSPIN_LOCK at a stable address for
        // as long as the returned guard borrows `self`; IRQL <= DISPATCH_LEVEL
        // is the seam's contract for `lock`.
        let old_irql = unsafe { KeAcquireSpinLockRaiseToDpc(self.spin.get()) };
        KmdfLockGuard {
            lock: self,
            old_irql,
            _not_send: PhantomData,
        }
    }
}

/// Exclusive access to the value of a [`KmdfLock`]; releases the lock and
/// restores the IRQL when dropped. Not `Send`: a spin lock is released on the
/// processor that acquired it.
#[must_use = "the lock is released when the guard is dropped"]
pub struct KmdfLockGuard<'a, T> {
    lock: &'a KmdfLock<T>,
    old_irql: KIRQL,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for KmdfLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the spin lock (invariant of KmdfLock).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for KmdfLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the spin lock and is borrowed mutably, so
        // this is the only reference to the value.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for KmdfLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard acquired the lock in `lock` and releases it once,
        // restoring the IRQL saved then.
        unsafe { KeReleaseSpinLock(self.lock.spin.get(), self.old_irql) };
    }
}
