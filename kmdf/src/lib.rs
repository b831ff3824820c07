//! # dmf-kmdf: the KMDF backend of the `dmf-wdf` platform seam
//!
//! A thin, 1:1 mapping of the [`dmf_wdf::Platform`] traits onto KMDF 1.33 and
//! the kernel, through the raw bindings of
//! [`wdk-sys`](https://github.com/microsoft/windows-drivers-rs) 0.5. All the
//! interesting logic (reference counting, request reuse, cancel races,
//! rundown on removal) lives above the seam, where the simulator tests it;
//! this crate only translates.
//!
//! ## What maps to what
//!
//! | seam | KMDF / kernel | type here (`cfg(kmdf)`) |
//! |---|---|---|
//! | `Platform` | the client `WDFDEVICE`, parent of every object created | `KmdfPlatform` |
//! | `Platform::now_100ns` | `KeQueryInterruptTimePrecise` | |
//! | `Platform::allocate` / `deallocate` | `ExAllocatePool2(POOL_FLAG_NON_PAGED, size, 'DmfK')` / `ExFreePool`, over-allocated for alignments above 16 ([`memory`]) | |
//! | `Lock<T>` | `KSPIN_LOCK` + `UnsafeCell<T>`, `KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock` | `KmdfLock`, `KmdfLockGuard` |
//! | `WaitLock<T>` (`Platform::create_wait_lock`) | `WdfWaitLockCreate` (parent = device) + `UnsafeCell<T>`, `WdfWaitLockAcquire` (NULL timeout) / `WdfWaitLockRelease`, `WdfObjectDelete` | `KmdfWaitLock`, `KmdfWaitLockGuard` |
//! | `Event` | `KEVENT` (`NotificationEvent`) in its own pool block, `KeSetEvent` / `KeClearEvent` / `KeReadStateEvent` / `KeWaitForSingleObject` | `KmdfEvent` |
//! | `Timer` | `WdfTimerCreate` (passive, not serialised, parent = device), `WdfTimerStart(WDF_REL_TIMEOUT_IN_MS)`, `WdfTimerStop`, `WdfObjectDelete` | `KmdfTimer` |
//! | `WorkItem` | `WdfWorkItemCreate` (parent = device), `WdfWorkItemEnqueue`, `WdfWorkItemFlush` | `KmdfWorkItem` |
//! | `IoTarget::open` / `reopen` | `WdfIoTargetCreate` + `WdfIoTargetOpen` (`..._INIT_OPEN_BY_NAME` / `..._INIT_REOPEN`) | `KmdfIoTarget` |
//! | `TargetEvents` | `EvtIoTargetQueryRemove` / `RemoveCanceled` / `RemoveComplete` | |
//! | `IoTarget::close` / `close_for_query_remove` / `start` / `stop` / `purge` / `state` | `WdfIoTargetClose` / `CloseForQueryRemove` / `Start` / `Stop` / `Purge` / `GetState` | |
//! | `IoTarget::format_request` | `WdfIoTargetFormatRequestForRead` / `Write` / `Ioctl` / `InternalIoctl` on per-request `WdfMemoryCreatePreallocated` + `WdfMemoryAssignBuffer` memory | |
//! | `IoTarget::send` + `CompletionRoutine` | `WdfRequestSetCompletionRoutine` + `WdfRequestSend` (`WDF_REQUEST_SEND_OPTION_TIMEOUT`) | |
//! | `IoTarget::send_synchronously` | `WdfRequestSend` (`WDF_REQUEST_SEND_OPTION_SYNCHRONOUS`), `WdfRequestGetStatus` / `GetInformation` | |
//! | `Request` | `WdfRequestCreate` (parent = device), `WdfRequestReuse`, `WdfRequestCancelSentRequest`, `WdfObjectDelete` | `KmdfRequest` |
//! | `Platform::register_interface_notification` | `IoRegisterPlugPlayNotification(EventCategoryDeviceInterfaceChange, ..INCLUDE_EXISTING_INTERFACES)`, `IoUnregisterPlugPlayNotificationEx` | `KmdfNotification` |
//! | `DeviceCallbacks` | `EvtDevicePrepareHardware` / `ReleaseHardware` / `D0Entry` / `D0Exit` | [`device_callbacks`] |
//! | `Status` / `Guid` | `NTSTATUS` / `GUID` | `convert::wdk` |
//!
//! Rust handlers (timer, work item, target events) travel with their WDF
//! object in a typed object context (`WDF_DECLARE_CONTEXT_TYPE` done by hand)
//! and are released by the object's `EvtCleanupCallback`; completion routines
//! travel as the `WDFCONTEXT` of the completion (`Arc::into_raw`), and
//! notification handlers as the PnP context. Every callback is a
//! monomorphized `extern "C"` trampoline.
//!
//! ## Windows-only items, and the host build
//!
//! `KmdfPlatform` and the types in the table are compiled only with
//! `cfg(kmdf)`, which the build script sets for
//! `cfg(all(windows, target_env = "msvc"))`, where `wdk-sys` exists, and on
//! any host with the `emulation` feature. Without either the crate contains
//! only its host-independent parts — [`convert`] (timeouts, state and power
//! mappings, GUIDs, UTF-16), [`memory`]'s alignment arithmetic,
//! [`device_callbacks`], [`parameters`] and [`mod@line`] — which are
//! unit-tested everywhere.
//!
//! **Everything that touches `wdk-sys` is type-checked, linted and documented
//! for x64 and ARM64 Windows on Linux** by `cargo xtask check-windows`
//! (against the project's WDK stand-ins, on every CI run); it is linked
//! only by `.github/workflows/windows.yml` on a Windows runner
//! with the WDK, and runs in a driver on a (test-signed) machine.
//!
//! **And it runs on Linux** with the `emulation` feature: the WDK
//! declarations are then the stand-in `wdk-sys` of the Windows-target check
//! (Windows type sizes, renamed `wdk-sys-emulated` in the manifest because a
//! dependency cannot change its source per target), and the WDF function
//! table and kernel routines come from `dmf-kmdf-emu`, which emulates them
//! over `dmf-sim`. Its tests run the layers' shared scenarios on
//! `KmdfPlatform` and the sample driver's whole KMDF build (`DriverEntry`
//! to unload). Nothing built with `emulation` is a driver.
//!
//! ## A driver's shell
//!
//! `shell` (Windows only) holds the KMDF boilerplate every driver on the
//! layers repeats: `DriverEntry`, `EvtDriverDeviceAdd` (device, context,
//! device interface, default queue), the PnP/power forwarding to the
//! layers' `DeviceCallbacks`, `EvtIoDeviceControl`, settings from the
//! service's `Parameters` key ([`parameters`] validates them), the
//! allocator and a bug-checking panic handler. A driver implements
//! `shell::KmdfDriver` for its logic and invokes `kmdf_driver!` once.
//!
//! ## Rules a driver must follow
//!
//! * Create the platform with `KmdfPlatform::new(device)` after
//!   `WdfDeviceCreate`, and drop every layer built on it before the device is
//!   deleted (`EvtDeviceReleaseHardware` or `EvtDeviceSelfManagedIoCleanup`):
//!   WDF deletes a device's children with it.
//! * The global allocator must return non-paged memory and honour alignment
//!   (`memory::KmdfAllocator` does; `wdk-alloc` ignores alignment):
//!   locks, events and completion state are touched at `DISPATCH_LEVEL`.
//! * Drop timers, work items, targets and notifications at `PASSIVE_LEVEL`,
//!   never from their own callbacks (except targets, see `KmdfIoTarget`).
//!
//! ## Building
//!
//! On Windows with the WDK (or an eWDK prompt, which sets `WDKContentRoot`)
//! and LLVM (`libclang`, for bindgen):
//!
//! ```text
//! set RUSTFLAGS=-C target-feature=+crt-static
//! cargo build -p dmf-kmdf --target x86_64-pc-windows-msvc
//! ```
//!
//! `wdk-sys` generates its bindings for the driver model declared in the
//! build graph, so the workspace must contain the driver crate with its
//! `[package.metadata.wdk.driver-model]` (`sample-driver`: KMDF 1.33). On
//! Linux, `cargo build -p dmf-kmdf` builds the host-independent parts only.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// The host build (feature `emulation`): the WDK declarations under the name
// the kernel code uses, and the emulated KMDF and kernel routines it links to.
#[cfg(all(feature = "emulation", not(all(windows, target_env = "msvc"))))]
extern crate dmf_kmdf_emu as _;
#[cfg(all(feature = "emulation", not(all(windows, target_env = "msvc"))))]
extern crate wdk_sys_emulated as wdk_sys;

pub mod convert;
pub mod debug_print;
pub mod device_callbacks;
pub mod line;
pub mod memory;
pub mod parameters;

#[cfg(kmdf)]
mod context;
#[cfg(kmdf)]
pub mod event;
#[cfg(kmdf)]
pub mod io_target;
#[cfg(kmdf)]
pub mod lock;
#[cfg(kmdf)]
pub mod platform;
#[cfg(kmdf)]
pub mod pnp;
#[cfg(kmdf)]
pub mod request;
#[cfg(kmdf)]
pub mod shell;
#[cfg(kmdf)]
pub mod timer;
#[cfg(kmdf)]
pub mod wait_lock;
#[cfg(kmdf)]
pub mod work_item;

#[cfg(kmdf)]
pub use event::KmdfEvent;
#[cfg(kmdf)]
pub use io_target::KmdfIoTarget;
#[cfg(kmdf)]
pub use lock::{KmdfLock, KmdfLockGuard};
#[cfg(kmdf)]
pub use platform::KmdfPlatform;
#[cfg(kmdf)]
pub use pnp::KmdfNotification;
#[cfg(kmdf)]
pub use request::KmdfRequest;
#[cfg(kmdf)]
pub use timer::KmdfTimer;
#[cfg(kmdf)]
pub use wait_lock::{KmdfWaitLock, KmdfWaitLockGuard};
#[cfg(kmdf)]
pub use work_item::KmdfWorkItem;
