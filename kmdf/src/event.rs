//! [`Event`] on a `KEVENT` (`NotificationEvent`).

use core::ptr;

use dmf_wdf::{Event, Result, Status};
use wdk_sys::ntddk::{
    KeClearEvent, KeInitializeEvent, KeReadStateEvent, KeSetEvent, KeWaitForSingleObject,
};
use wdk_sys::{
    _EVENT_TYPE, _KWAIT_REASON, _MODE, KEVENT, KPRIORITY, KPROCESSOR_MODE, LARGE_INTEGER,
};

use crate::convert::relative_timeout_100ns;
use crate::memory::PoolBox;

/// `IO_NO_INCREMENT` (`wdm.h`): no priority boost for the woken thread.
const IO_NO_INCREMENT: KPRIORITY = 0;

/// A manual-reset event: a `KEVENT` initialised as `NotificationEvent`, in its
/// own non-paged pool block (a `KEVENT` must not move once initialised: its
/// wait list points to itself).
///
/// # Invariants
///
/// `event` holds a `KEVENT` initialised by `KeInitializeEvent`; no Rust
/// reference to it is ever created, only raw pointers handed to the kernel.
pub struct KmdfEvent {
    event: PoolBox<KEVENT>,
}

// SAFETY: a KEVENT is a kernel dispatcher object made to be signalled and
// waited on from any thread; the box owns its memory.
unsafe impl Send for KmdfEvent {}
// SAFETY: every operation goes through the kernel's Ke*Event routines, which
// synchronise on the dispatcher lock.
unsafe impl Sync for KmdfEvent {}

impl KmdfEvent {
    /// `KeInitializeEvent(event, NotificationEvent, signalled)` in a new pool
    /// block; `STATUS_INSUFFICIENT_RESOURCES` if the pool is exhausted.
    pub fn new(signalled: bool) -> Result<Self> {
        let event = PoolBox::new(KEVENT::default()).ok_or(Status::INSUFFICIENT_RESOURCES)?;
        // SAFETY: the block is valid, non-paged and never moves; nobody else
        // sees the event yet.
        unsafe {
            KeInitializeEvent(
                event.as_ptr(),
                _EVENT_TYPE::NotificationEvent,
                u8::from(signalled),
            )
        };
        // INVARIANT: initialised just above.
        Ok(KmdfEvent { event })
    }
}

impl Event for KmdfEvent {
    fn set(&self) {
        // SAFETY: initialised KEVENT (invariant); KeSetEvent with Wait = FALSE
        // may be called at IRQL <= DISPATCH_LEVEL.
        let _previous_state = unsafe { KeSetEvent(self.event.as_ptr(), IO_NO_INCREMENT, 0) };
    }

    fn reset(&self) {
        // SAFETY: initialised KEVENT (invariant); IRQL <= DISPATCH_LEVEL.
        unsafe { KeClearEvent(self.event.as_ptr()) };
    }

    fn is_set(&self) -> bool {
        // SAFETY: initialised KEVENT (invariant); any IRQL.
        unsafe { KeReadStateEvent(self.event.as_ptr()) != 0 }
    }

    fn wait(&self, timeout_ms: Option<u32>) -> bool {
        let mut timeout = LARGE_INTEGER {
            QuadPart: relative_timeout_100ns(u64::from(timeout_ms.unwrap_or(0))),
        };
        let timeout_ptr = match timeout_ms {
            Some(_) => ptr::addr_of_mut!(timeout),
            None => ptr::null_mut(),
        };
        // SAFETY: initialised KEVENT (invariant); `timeout` outlives the call;
        // kernel-mode, non-alertable wait at PASSIVE_LEVEL (the seam's contract).
        let status = unsafe {
            KeWaitForSingleObject(
                self.event.as_ptr().cast(),
                _KWAIT_REASON::Executive,
                _MODE::KernelMode as KPROCESSOR_MODE,
                0,
                timeout_ptr,
            )
        };
        // STATUS_SUCCESS (= STATUS_WAIT_0): signalled; STATUS_TIMEOUT: not.
        status == Status::SUCCESS.raw()
    }
}
