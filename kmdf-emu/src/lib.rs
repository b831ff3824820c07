//! # dmf-kmdf-emu: KMDF emulated over the simulator
//!
//! Runs the kernel backend (`dmf-kmdf`, built with its `emulation` feature)
//! and a driver's KMDF shell (`dmf_kmdf::shell`) on a Linux host: this crate
//! defines the WDF function table of KMDF 1.33 (`WdfFunctions_01033`,
//! `WdfDriverGlobals`, `WdfFunctionCount`) and the kernel routines
//! `dmf-kmdf` calls, as unmangled symbols with the signatures of the
//! project's WDK declarations (`.ci/windows-check/wdk-sys`, Windows type
//! sizes), and implements them over `dmf-sim`: its devices and bus, its PnP
//! thread, completion threads, timers, work items, clock and strict checks.
//! The emulation is a translation: a `WDFIOTARGET` is a simulator target, a
//! `WDFREQUEST` a simulator request, a `WDFTIMER` a simulator timer, a
//! `KEVENT` a simulator event, a PnP notification a simulator registration.
//!
//! | area | emulated |
//! |---|---|
//! | driver and device | `WdfDriverCreate`, `WdfDriverWdmGetDriverObject`, `WdfDriverOpenParametersRegistryKey`, `WdfRegistryQueryULong`, `WdfRegistryClose`, `WdfDeviceInitSetPnpPowerEventCallbacks`, `WdfDeviceCreate`, `WdfDeviceGetDriver`, `WdfDeviceCreateDeviceInterface`, `WdfIoQueueCreate` (parallel default queue), `WdfIoQueueGetDevice`; the PnP/power sequence of [`Device`] |
//! | objects | `WdfObjectGetTypedContextWorker`, `WdfObjectDelete` (children first, then `EvtCleanupCallback`) |
//! | I/O targets | `WdfIoTargetCreate`, `Open` (by name, reopen), `Close`, `CloseForQueryRemove`, `Start`, `Stop`, `Purge`, `GetState`, the target's PnP callbacks |
//! | requests | `WdfRequestCreate`, `Reuse`, `Send` (timeout, synchronous), `CancelSentRequest`, `GetStatus`, `GetInformation`, `SetCompletionRoutine`, `WdfIoTargetFormatRequestForRead` / `Write` / `Ioctl` / `InternalIoctl`, `WdfMemoryCreatePreallocated`, `WdfMemoryAssignBuffer`; for queue requests `WdfRequestRetrieveOutputBuffer`, `WdfRequestCompleteWithInformation` |
//! | timers, work items | `WdfTimerCreate` / `Start` / `Stop`, `WdfWorkItemCreate` / `Enqueue` / `Flush` |
//! | wait locks | `WdfWaitLockCreate`, `WdfWaitLockAcquire` (timeouts; not recursive), `WdfWaitLockRelease` |
//! | kernel | `ExAllocatePool2`, `ExFreePool`, `KeInitializeEvent`, `KeSetEvent`, `KeClearEvent`, `KeReadStateEvent`, `KeWaitForSingleObject`, `KeAcquireSpinLockRaiseToDpc`, `KeReleaseSpinLock`, `KeQueryInterruptTimePrecise`, `IoRegisterPlugPlayNotification`, `IoUnregisterPlugPlayNotificationEx`, `DbgPrint`, `DbgPrintEx`, `KeBugCheckEx` |
//!
//! Misuse panics where the KMDF verifier (or the kernel) would break or
//! bug-check: an invalid or deleted handle, an object deleted twice, a
//! structure with a wrong `Size`, a wait at `DISPATCH_LEVEL`, a spin lock
//! released by a thread that does not hold it, a pool block freed twice, a
//! request reused, deleted or re-routed while in flight, a second completion
//! of a queue request, and every check of the simulator. The functions are
//! `extern "C"`, so such a panic aborts the process, as a bug check stops
//! the machine. Forms of a function that `dmf-kmdf` does not use (periodic
//! timers, absolute times, other open types or send options, ...) panic as
//! "not emulated" instead of guessing.
//!
//! ## What it proves and what it cannot
//!
//! It executes `dmf-kmdf`'s translation of the seam to WDF calls and the
//! driver shell's logic (`DriverEntry`, device add, PnP/power forwarding,
//! the IOCTL path, teardown), against a KMDF that follows the framework's
//! documented semantics as the simulator models them. It cannot show how
//! the real KMDF behaves where the simulator's model is wrong, and it
//! does not exercise the loader, linking, signing, the real kernel's
//! scheduling or real hardware timing.
//!
//! ## Using it
//!
//! One [`Machine`] per process at a time (it owns the process-wide table's
//! state; `Machine::new` waits for the previous one). Either load a driver
//! built with `sample-driver`'s (or any driver crate's) `emulation` feature
//! through its exported `DriverEntry` ([`Machine::load_driver`],
//! [`Machine::add_device`], [`Device`]), or make a bare device
//! ([`Machine::bare_device`]) and build `dmf_kmdf::KmdfPlatform` on it.
//! `cargo run -p dmf-kmdf-emu --example driver` runs the sample driver.
#![allow(non_snake_case)]
#![warn(missing_docs)]

mod device;
mod driver;
mod io_target;
mod kernel;
mod machine;
mod object;
mod queue;
mod registry;
mod request;
mod table;
mod timer;
mod wait_lock;
mod work_item;

pub use device::Device;
pub use driver::DriverEntry;
pub use kernel::{
    DbgPrint, DbgPrintEx, ExAllocatePool2, ExFreePool, IoRegisterPlugPlayNotification,
    IoUnregisterPlugPlayNotificationEx, KeAcquireSpinLockRaiseToDpc, KeBugCheckEx, KeClearEvent,
    KeInitializeEvent, KeQueryInterruptTimePrecise, KeReadStateEvent, KeReleaseSpinLock,
    KeSetEvent, KeWaitForSingleObject,
};
pub use machine::Machine;
pub use queue::IoControl;
pub use table::{WdfDriverGlobals, WdfFunctionCount, WdfFunctions_01033};
