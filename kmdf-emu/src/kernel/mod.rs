//! The kernel routines `dmf-kmdf` calls directly (`wdm.h` / `ntddk.h`), as
//! unmangled `extern "C"` functions with the stand-in's signatures (on x64
//! and ARM64 Windows `NTAPI` is the C convention; on the Linux host "C" is
//! the platform's).
//!
//! | routine | emulated by |
//! |---|---|
//! | `ExAllocatePool2` / `ExFreePool` | the simulator's allocator (its allocation counters and injected allocation failures); the pool remembers each block's size, and freeing an unknown block panics (`BAD_POOL_CALLER`) |
//! | `KeInitializeEvent` / `KeSetEvent` / `KeClearEvent` / `KeReadStateEvent` / `KeWaitForSingleObject` | a simulator event per `KEVENT` address (notification events only), dropped when its pool block is freed |
//! | `KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock` | a simulator spin lock per `KSPIN_LOCK` address (in dispatch context while held), and the thread's IRQL |
//! | `KeQueryInterruptTimePrecise` | the simulator's clock |
//! | `IoRegisterPlugPlayNotification` / `IoUnregisterPlugPlayNotificationEx` | the simulator's interface notifications, on its PnP thread |
//! | `DbgPrint`, `DbgPrintEx` | the machine's debug output |
//! | `KeBugCheckEx` | a panic naming the bug check (which aborts: the routine cannot unwind) |

mod clock;
mod debug;
mod event;
mod irql;
mod pnp;
mod pool;

pub use clock::KeQueryInterruptTimePrecise;
pub use debug::{DbgPrint, DbgPrintEx, KeBugCheckEx};
pub use event::{
    KeClearEvent, KeInitializeEvent, KeReadStateEvent, KeSetEvent, KeWaitForSingleObject,
};
pub(crate) use irql::assert_passive;
pub use irql::{KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock};
pub use pnp::{IoRegisterPlugPlayNotification, IoUnregisterPlugPlayNotificationEx};
pub use pool::{ExAllocatePool2, ExFreePool};

/// `STATUS_SUCCESS`.
const STATUS_SUCCESS: wdk_sys::NTSTATUS = 0;
