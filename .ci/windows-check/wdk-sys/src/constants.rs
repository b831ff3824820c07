//! Constants: the `#define`s of the headers the code uses, and the WDF
//! "no value" handles that the real crate writes by hand.

use crate::types::{POOL_FLAGS, PVOID, PWDF_OBJECT_ATTRIBUTES};

/// `WDF_NO_OBJECT_ATTRIBUTES` (`wdfobject.h`).
pub const WDF_NO_OBJECT_ATTRIBUTES: PWDF_OBJECT_ATTRIBUTES = core::ptr::null_mut();
/// `WDF_NO_EVENT_CALLBACK`.
pub const WDF_NO_EVENT_CALLBACK: PVOID = core::ptr::null_mut();
/// `WDF_NO_HANDLE`.
pub const WDF_NO_HANDLE: PVOID = core::ptr::null_mut();
/// `WDF_NO_CONTEXT`.
pub const WDF_NO_CONTEXT: PVOID = core::ptr::null_mut();
/// `WDF_NO_SEND_OPTIONS`.
pub const WDF_NO_SEND_OPTIONS: PVOID = core::ptr::null_mut();

/// `POOL_FLAG_NON_PAGED` (`wdm.h`): non-paged, non-executable pool.
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
/// `POOL_FLAG_PAGED` (`wdm.h`).
pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0000_0000_0100;

/// `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES` (`wdm.h`).
pub const PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES: u32 = 1;
