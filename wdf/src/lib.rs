//! # dmf-wdf: the platform seam of the DMF port
//!
//! The four DMF layers (`buffer-pool`, `request-target`,
//! `continuous-request-target`, `device-interface-multiple-target`) are
//! `no_std` + `alloc` and generic over [`Platform`], a small set of traits for
//! exactly the WDF objects they use:
//!
//! | WDF / WDM object | trait here |
//! |---|---|
//! | `WDFIOTARGET` (open by name, close, close-for-query-remove, start/stop/purge, query-remove callbacks) | [`IoTarget`], [`TargetEvents`] |
//! | `WDFREQUEST` (create, reuse, format, send async/sync, cancel) | [`Request`], [`IoTarget::format_request`], [`IoTarget::send`] |
//! | completion routine | [`CompletionRoutine`] |
//! | memory handed to a device | [`RawBuffer`], [`Platform::allocate`] |
//! | `WDFSPINLOCK` / `KSPIN_LOCK` | [`Lock`] |
//! | `WDFWAITLOCK` | [`WaitLock`], [`Platform::create_wait_lock`] |
//! | `KEVENT` | [`Event`] |
//! | `WDFTIMER` | [`Timer`], [`TimerHandler`] |
//! | `WDFWORKITEM` | [`WorkItem`], [`WorkItemHandler`] |
//! | `IoRegisterPlugPlayNotification` (device interfaces) | [`Platform::register_interface_notification`], [`InterfaceNotificationHandler`] |
//! | `EvtDevicePrepareHardware` / `ReleaseHardware` / `D0Entry` / `D0Exit` | [`DeviceCallbacks`] |
//!
//! plus [`Status`] (NTSTATUS with names), [`Guid`], and [`Rundown`], the
//! reference-and-drain protocol every layer uses for safe teardown.
//!
//! The seam sits at the level of WDF objects so that the kernel backend
//! (`dmf-kmdf`) is a thin 1:1 mapping onto `wdk-sys` and all interesting logic
//! lives above it, where the simulator (`dmf-sim`) runs it on any host.
//!
//! ## Safety of the seam
//!
//! The layers' `unsafe` code relies on what a backend guarantees: memory
//! from [`Platform::allocate`] is valid and exclusive, locks exclude, a
//! completion routine runs exactly once per accepted send and never for a
//! refused one, a device no longer touches a request's buffers once the
//! request completed, a timer's handler never runs after the timer is gone.
//! The traits carrying such guarantees are `unsafe trait`s ([`Platform`],
//! [`IoTarget`], [`Lock`], [`WaitLock`], [`Timer`], [`WorkItem`]), each with
//! a `# Safety` section listing exactly what an implementation promises; a
//! backend implements them with `unsafe impl`, stating why it keeps those
//! promises. [`Request`], [`Event`] and [`Notification`] stay safe traits
//! (their docs say why nothing unsafe depends on them), and so do the
//! callback traits ([`CompletionRoutine`], [`TargetEvents`],
//! [`TimerHandler`], [`WorkItemHandler`], [`InterfaceNotificationHandler`],
//! [`DeviceCallbacks`]): the layers implement them, and a backend's code
//! relies on nothing they do.
//!
//! ## Contexts
//!
//! "Dispatch" context means: any thread, must not block (completion routines).
//! "Passive" means: an ordinary thread that may block (timers, work items, PnP
//! notifications, target events, device callbacks).
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod device;
pub mod guid;
pub mod io_target;
pub mod platform;
pub mod pnp;
pub mod recorder;
pub mod request;
pub mod rundown;
pub mod status;
pub mod sync;
pub mod timer;
pub mod work_item;

mod primitive {
    //! Atomics, swapped for loom's when model checking (`--cfg loom`).
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{AtomicUsize, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
}

pub use device::{DeviceCallbacks, PowerState};
pub use guid::{Guid, ParseGuidError};
pub use io_target::{
    IoTarget, OpenMode, OpenParams, Request, SentIoAction, ShareAccess, TargetEvents, TargetState,
};
pub use platform::Platform;
pub use pnp::{InterfaceNotificationHandler, Notification};
pub use request::{Completed, CompletionRoutine, RawBuffer, RequestType, SendOptions};
pub use rundown::{Rundown, RundownGuard};
pub use status::{Result, Status};
pub use sync::{Event, Lock, WaitLock};
pub use timer::{Timer, TimerHandler};
pub use work_item::{WorkItem, WorkItemHandler};

/// `tracing`, for the expansion of [`transition!`].
#[doc(hidden)]
pub use tracing as __tracing;
