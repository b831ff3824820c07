//! [`KmdfPlatform`]: the [`Platform`] of a KMDF driver.

use alloc::sync::Arc;
use core::alloc::Layout;
use core::ptr::NonNull;

use dmf_wdf::{
    Guid, InterfaceNotificationHandler, Platform, Result, TimerHandler, WorkItemHandler,
};
use wdk_sys::ntddk::KeQueryInterruptTimePrecise;
use wdk_sys::WDFDEVICE;

use crate::event::KmdfEvent;
use crate::io_target::KmdfIoTarget;
use crate::lock::KmdfLock;
use crate::memory::{pool_allocate, pool_free};
use crate::pnp::KmdfNotification;
use crate::request::KmdfRequest;
use crate::timer::KmdfTimer;
use crate::wait_lock::KmdfWaitLock;
use crate::work_item::KmdfWorkItem;

/// The platform of a KMDF driver: the client `WDFDEVICE` that every object
/// created through it is parented to.
///
/// Cheap to copy. Create it in `EvtDriverDeviceAdd` after `WdfDeviceCreate`.
///
/// # Teardown
///
/// Timers, work items, I/O targets, requests and their memory objects are
/// children of the device. The layers holding them must be dropped before the
/// device is deleted (in `EvtDeviceReleaseHardware` or
/// `EvtDeviceSelfManagedIoCleanup` at the latest): WDF deletes children with
/// their parent, after which the Rust owner would delete them a second time.
#[derive(Clone, Copy, Debug)]
pub struct KmdfPlatform {
    device: WDFDEVICE,
}

// SAFETY: a WDFDEVICE is a framework handle, valid on any thread; WDF
// synchronises the methods this crate calls on it (`WdfDeviceGetDriver`, and
// using it as a parent object).
unsafe impl Send for KmdfPlatform {}
// SAFETY: as above; the platform never mutates anything through the handle.
unsafe impl Sync for KmdfPlatform {}

impl KmdfPlatform {
    /// Wraps the client device.
    ///
    /// # Safety
    ///
    /// `device` must be a valid `WDFDEVICE` that outlives every object created
    /// through this platform (see the type's teardown rule).
    pub const unsafe fn new(device: WDFDEVICE) -> Self {
        KmdfPlatform { device }
    }

    /// The client device.
    pub const fn device(&self) -> WDFDEVICE {
        self.device
    }
}

// SAFETY: `allocate` returns non-paged pool (`ExAllocatePool2`) aligned and
// sized for the layout, owned by the caller until `deallocate` frees it with
// `ExFreePool`; pool memory does not depend on this handle. The associated
// types are `unsafe impl`s of their traits, each justified where it is.
unsafe impl Platform for KmdfPlatform {
    type IoTarget = KmdfIoTarget;
    type Request = KmdfRequest;
    type Lock<T: Send> = KmdfLock<T>;
    type WaitLock<T: Send> = KmdfWaitLock<T>;
    type Event = KmdfEvent;
    type Timer = KmdfTimer;
    type WorkItem = KmdfWorkItem;
    type Notification = KmdfNotification;

    /// `KeQueryInterruptTimePrecise`: 100 ns units since boot, monotonic.
    /// (`KeQueryInterruptTime` is a macro reading `KUSER_SHARED_DATA` on x64
    /// and has no binding.)
    fn now_100ns(&self) -> u64 {
        let mut qpc_timestamp: u64 = 0;
        // SAFETY: callable at any IRQL; writes the performance counter value
        // to the local.
        unsafe { KeQueryInterruptTimePrecise(&mut qpc_timestamp) }
    }

    /// `ExAllocatePool2(POOL_FLAG_NON_PAGED, ..)`, over-allocating for
    /// alignments above 16 bytes.
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        pool_allocate(layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller passes a pointer from `allocate` with its layout.
        unsafe { pool_free(ptr, layout) };
    }

    fn create_event(&self, signalled: bool) -> Result<KmdfEvent> {
        KmdfEvent::new(signalled)
    }

    fn create_wait_lock<T: Send>(&self, value: T) -> Result<KmdfWaitLock<T>> {
        KmdfWaitLock::new(self.device, value)
    }

    fn create_timer<H: TimerHandler>(&self, handler: Arc<H>) -> Result<KmdfTimer> {
        KmdfTimer::new(self.device, handler)
    }

    fn create_work_item<H: WorkItemHandler>(&self, handler: Arc<H>) -> Result<KmdfWorkItem> {
        KmdfWorkItem::new(self.device, handler)
    }

    fn create_io_target(&self) -> Result<KmdfIoTarget> {
        KmdfIoTarget::new(self.device)
    }

    fn create_request(&self, target: Option<&KmdfIoTarget>) -> Result<KmdfRequest> {
        KmdfRequest::new(self.device, target)
    }

    fn register_interface_notification<H: InterfaceNotificationHandler>(
        &self,
        guid: &Guid,
        handler: Arc<H>,
    ) -> Result<KmdfNotification> {
        KmdfNotification::register(self.device, guid, handler)
    }
}
