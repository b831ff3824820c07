//! `WdfWaitLockCreate` / `WdfWaitLockAcquire` / `WdfWaitLockRelease`: the
//! framework's sleeping lock (`FxWaitLock`, a synchronization event).
//!
//! Acquiring with a `NULL` (infinite) or non-zero timeout waits, so it must
//! be called at `PASSIVE_LEVEL`; a zero timeout only tries and may be used
//! up to `DISPATCH_LEVEL`. The lock is not recursive: acquiring it again on
//! the owning thread would wait forever, and releasing it from a thread
//! that does not own it corrupts it; the verifier breaks on both
//! (`FxVerifierLock`), and so does the emulation.
//!

use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use wdk_sys::{LONGLONG, NTSTATUS, PWDF_DRIVER_GLOBALS, PWDF_OBJECT_ATTRIBUTES, WDFWAITLOCK};

use crate::kernel::assert_passive;
use crate::object::{create, get_live, lock, Attributes, Kind};
use crate::request::relative_ms;

/// `STATUS_TIMEOUT`.
const STATUS_TIMEOUT: NTSTATUS = 0x0000_0102;

/// A `WDFWAITLOCK`.
pub(crate) struct WaitLockData {
    owner: Mutex<Option<ThreadId>>,
    released: Condvar,
}

fn wait_lock(handle: WDFWAITLOCK, function: &str) -> Arc<crate::object::Object> {
    let object = get_live(handle.cast(), function);
    assert!(
        matches!(object.kind, Kind::WaitLock(_)),
        "{function}: {object:?} is not a WDFWAITLOCK"
    );
    object
}

fn data(object: &crate::object::Object) -> &WaitLockData {
    match &object.kind {
        Kind::WaitLock(w) => w,
        _ => unreachable!(),
    }
}

pub(crate) unsafe extern "C" fn wdf_wait_lock_create(
    _globals: PWDF_DRIVER_GLOBALS,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    lock_out: *mut WDFWAITLOCK,
) -> NTSTATUS {
    const F: &str = "WdfWaitLockCreate";
    assert!(!lock_out.is_null(), "{F}: NULL lock");
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let object = create(
        Kind::WaitLock(WaitLockData {
            owner: Mutex::new(None),
            released: Condvar::new(),
        }),
        &attributes,
    );
    // SAFETY: caller contract.
    unsafe { lock_out.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_wait_lock_acquire(
    _globals: PWDF_DRIVER_GLOBALS,
    handle: WDFWAITLOCK,
    timeout: *mut LONGLONG,
) -> NTSTATUS {
    const F: &str = "WdfWaitLockAcquire";
    let object = wait_lock(handle, F);
    let w = data(&object);
    let timeout_ms = if timeout.is_null() {
        None
    } else {
        // SAFETY: caller contract.
        Some(relative_ms(unsafe { timeout.read() }, F))
    };
    if timeout_ms != Some(0) {
        assert_passive("WdfWaitLockAcquire (NULL or non-zero timeout)");
    }
    let me = std::thread::current().id();
    let deadline = timeout_ms.map(|ms| Instant::now() + Duration::from_millis(u64::from(ms)));
    let mut owner = lock(&w.owner);
    assert!(
        *owner != Some(me),
        "{F}: the wait lock is already held by this thread (not recursive: it would wait forever)"
    );
    while owner.is_some() {
        match deadline {
            None => {
                owner = w
                    .released
                    .wait(owner)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return STATUS_TIMEOUT;
                }
                owner = w
                    .released
                    .wait_timeout(owner, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        }
    }
    *owner = Some(me);
    0
}

pub(crate) unsafe extern "C" fn wdf_wait_lock_release(
    _globals: PWDF_DRIVER_GLOBALS,
    handle: WDFWAITLOCK,
) {
    const F: &str = "WdfWaitLockRelease";
    let object = wait_lock(handle, F);
    let w = data(&object);
    let mut owner = lock(&w.owner);
    assert!(
        *owner == Some(std::thread::current().id()),
        "{F}: the wait lock is not held by this thread"
    );
    *owner = None;
    w.released.notify_one();
}
