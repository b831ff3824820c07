//! The [`Platform`] trait: constructors for the WDF objects, memory, time.

use alloc::sync::{Arc, Weak};
use core::alloc::Layout;
use core::ptr::NonNull;

use crate::pnp::{InterfaceNotificationHandler, Notification};
use crate::recorder::RecorderDump;
use crate::sync::{Event, Lock, WaitLock};
use crate::timer::{Timer, TimerHandler};
use crate::work_item::{WorkItem, WorkItemHandler};
use crate::{Guid, IoTarget, Request, Result};

/// Everything the DMF layers need from WDF, as one type parameter.
///
/// A platform value is a cheap handle (clone it freely): the simulator's is an
/// `Arc` around the simulated machine, the kernel backend's wraps the client
/// `WDFDEVICE`. All dispatch is static.
///
/// Two implementations exist: `dmf-sim` (std, simulated device stack, the
/// default for tests and the demo) and `dmf-kmdf` (on `wdk-sys`, Windows only).
///
/// # Safety
///
/// The layers hand the memory of [`allocate`](Platform::allocate) to devices
/// and build their own objects in it (the buffer pool's blocks). Implementers
/// must ensure that:
///
/// * a pointer returned by `allocate(layout)` is aligned to `layout.align()`
///   and valid for reads and writes of `layout.size()` bytes until it is
///   passed to [`deallocate`](Platform::deallocate), and no other allocation
///   overlaps it meanwhile (nobody else accesses that memory);
/// * the memory stays valid whatever happens to the platform value it came
///   from (clones, drops): only `deallocate` ends it;
/// * every associated type meets the safety contract of its trait
///   ([`IoTarget`], [`Lock`], [`WaitLock`], [`Timer`], [`WorkItem`]); those
///   traits are `unsafe` themselves.
pub unsafe trait Platform: Clone + Send + Sync + 'static {
    /// `WDFIOTARGET`.
    type IoTarget: IoTarget<Request = Self::Request>;
    /// `WDFREQUEST`.
    type Request: Request;
    /// A spin lock owning data.
    type Lock<T: Send>: Lock<T>;
    /// A sleeping (passive-level) lock owning data, created with
    /// [`create_wait_lock`](Platform::create_wait_lock).
    type WaitLock<T: Send>: WaitLock<T>;
    /// A manual-reset event.
    type Event: Event;
    /// A one-shot passive timer.
    type Timer: Timer;
    /// A passive work item.
    type WorkItem: WorkItem;
    /// An interface-notification registration.
    type Notification: Notification;

    /// Monotonic time in 100 ns units (`KeQueryInterruptTime`).
    fn now_100ns(&self) -> u64;

    /// Allocates non-paged memory for buffers handed to devices: aligned to
    /// `layout.align()`, valid for `layout.size()` bytes, exclusively the
    /// caller's until [`deallocate`](Platform::deallocate).
    /// `None` on failure (the simulator can inject failures).
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>>;

    /// Frees memory from [`Platform::allocate`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `allocate` on this platform with the same `layout`
    /// and not have been freed.
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout);

    /// Creates a manual-reset event, signalled or not.
    fn create_event(&self, signalled: bool) -> Result<Self::Event>;

    /// Creates an unlocked sleeping lock holding `value` (`WdfWaitLockCreate`,
    /// parented to the client device; deleted when dropped). Fails when the
    /// platform cannot create the object (the simulator can inject this).
    fn create_wait_lock<T: Send>(&self, value: T) -> Result<Self::WaitLock<T>>;

    /// Creates a one-shot timer running `handler` at passive level.
    fn create_timer<H: TimerHandler>(&self, handler: Arc<H>) -> Result<Self::Timer>;

    /// Creates a work item running `handler` at passive level.
    fn create_work_item<H: WorkItemHandler>(&self, handler: Arc<H>) -> Result<Self::WorkItem>;

    /// Creates an I/O target object, not yet open (`WdfIoTargetCreate`).
    /// Passive level only (the simulator panics in dispatch context).
    fn create_io_target(&self) -> Result<Self::IoTarget>;

    /// Creates a request, optionally associated with `target`'s stack size
    /// (`WdfRequestCreate`).
    fn create_request(&self, target: Option<&Self::IoTarget>) -> Result<Self::Request>;

    /// Registers `handler` for arrivals and removals of interfaces of class
    /// `guid`. Interfaces already present are reported as arrivals right after
    /// registration: either on a PnP thread, possibly before this returns, or
    /// on the calling thread before this returns (as Windows does with
    /// `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES`); the handler
    /// must not rely on the registration having been returned. An arrival may
    /// also be reported again for an interface already reported (without a
    /// removal in between); handlers must treat it as a no-op. Calls for one
    /// registration never overlap. Passive level only (the simulator panics
    /// in dispatch context).
    fn register_interface_notification<H: InterfaceNotificationHandler>(
        &self,
        guid: &Guid,
        handler: Arc<H>,
    ) -> Result<Self::Notification>;

    /// A module created its in-flight recorder (see
    /// [`recorder`](crate::recorder)): the platform may keep the reference
    /// for its own diagnostics (it must not keep the recorder alive: it
    /// holds the platform). Any level; must not block. The default keeps
    /// nothing.
    fn keep_recorder(&self, recorder: Weak<dyn RecorderDump>) {
        drop(recorder);
    }

    /// A recorder is being dropped with its module: the platform may copy
    /// its final records. Any level the module is dropped at; must not
    /// block. The default does nothing.
    fn recorder_retired(&self, recorder: &dyn RecorderDump) {
        let _ = recorder;
    }
}
