//! [`WaitLock`] on a `WDFWAITLOCK`.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr;

use dmf_wdf::{Result, WaitLock};
use wdk_sys::{call_unsafe_wdf_function_binding, WDFDEVICE, WDFOBJECT, WDFWAITLOCK};

use crate::context::{delete_object, object_attributes};
use crate::convert::wdk::nt_result;

/// A sleeping lock owning a `T`: a `WDFWAITLOCK` next to an `UnsafeCell<T>`.
///
/// Created with `WdfWaitLockCreate` (parent = the client device);
/// [`WaitLock::lock`] is `WdfWaitLockAcquire` with a NULL timeout (waits
/// forever, `PASSIVE_LEVEL` only, as the seam says); the guard's drop is
/// `WdfWaitLockRelease`; dropping the lock is `WdfObjectDelete`.
///
/// # Invariants
///
/// `handle` is a live wait lock created by `KmdfWaitLock::new`, owned by this
/// value; `value` is only accessed through a [`KmdfWaitLockGuard`], which
/// exists only while `handle` is acquired.
pub struct KmdfWaitLock<T> {
    handle: WDFWAITLOCK,
    value: UnsafeCell<T>,
}

// SAFETY: the lock owns its T, and a WDFWAITLOCK handle may be used from any
// thread; moving the lock moves the T.
unsafe impl<T: Send> Send for KmdfWaitLock<T> {}
// SAFETY: every access to the T is serialised by the wait lock (invariant),
// so sharing the lock only ever gives one thread at a time a `&mut T`.
unsafe impl<T: Send> Sync for KmdfWaitLock<T> {}

impl<T> KmdfWaitLock<T> {
    /// `WdfWaitLockCreate`, parented to `device`, holding `value`.
    pub(crate) fn new(device: WDFDEVICE, value: T) -> Result<Self> {
        let mut attributes = object_attributes(device as WDFOBJECT);
        let mut handle: WDFWAITLOCK = ptr::null_mut();
        // SAFETY: attributes initialised as WDF_OBJECT_ATTRIBUTES_INIT does;
        // `handle` receives the new lock. IRQL <= DISPATCH_LEVEL.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(WdfWaitLockCreate, &mut attributes, &mut handle)
        };
        nt_result(status)?;
        // INVARIANT: created above and owned from here on; not acquired.
        Ok(KmdfWaitLock {
            handle,
            value: UnsafeCell::new(value),
        })
    }
}

// SAFETY: a WDFWAITLOCK is a kernel mutual exclusion (`FxWaitLock`, a
// synchronisation event): `WdfWaitLockAcquire` with a NULL timeout returns
// only once the calling thread owns it, and no other acquisition returns
// until `WdfWaitLockRelease`, with the kernel's dispatcher lock ordering the
// holders. The guard is the only access to `value` (invariant) and acquires
// in `lock`, releases in its drop.
unsafe impl<T: Send> WaitLock<T> for KmdfWaitLock<T> {
    type Guard<'a>
        = KmdfWaitLockGuard<'a, T>
    where
        Self: 'a;

    fn lock(&self) -> KmdfWaitLockGuard<'_, T> {
        // SAFETY: live wait lock (invariant); a NULL timeout waits forever,
        // at PASSIVE_LEVEL (the seam's contract for `lock`). With no timeout
        // the acquisition cannot fail (STATUS_SUCCESS).
        let _status = unsafe {
            call_unsafe_wdf_function_binding!(WdfWaitLockAcquire, self.handle, ptr::null_mut())
        };
        KmdfWaitLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

impl<T> Drop for KmdfWaitLock<T> {
    fn drop(&mut self) {
        // SAFETY: owned live wait lock (invariant), not held (a guard would
        // borrow it); deleted once.
        unsafe { delete_object(self.handle as WDFOBJECT) };
    }
}

/// Exclusive access to the value of a [`KmdfWaitLock`]; releases the lock
/// when dropped. Not `Send`: a wait lock is released by the thread that
/// acquired it (the acquisition entered a critical region on that thread).
#[must_use = "the lock is released when the guard is dropped"]
pub struct KmdfWaitLockGuard<'a, T> {
    lock: &'a KmdfWaitLock<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for KmdfWaitLockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the wait lock (invariant of KmdfWaitLock).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for KmdfWaitLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the wait lock and is borrowed mutably, so
        // this is the only reference to the value.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for KmdfWaitLockGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard acquired the lock in `lock`, on this thread, and
        // releases it once.
        unsafe { call_unsafe_wdf_function_binding!(WdfWaitLockRelease, self.lock.handle) };
    }
}
