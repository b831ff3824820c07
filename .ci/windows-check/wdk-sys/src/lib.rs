//! # wdk-sys (stand-in)
//!
//! A declaration-only stand-in for [`wdk-sys`](https://crates.io/crates/wdk-sys)
//! 0.5.x configured for KMDF 1.33, holding exactly the items that `dmf-kmdf`
//! and the sample driver's KMDF shell use, under the same paths and names and
//! with the same shapes as the bindings the real crate generates:
//!
//! * enums are modules of `c_int` constants (`_WDF_IO_TARGET_STATE::WdfIoTargetStarted`),
//!   with the C typedef naming the module's `Type`;
//! * callbacks are `Option<unsafe extern "C" fn(..)>`;
//! * handles are distinct pointer types (the WDK compiles with `STRICT`):
//!   `WDFDEVICE` is `*mut WDFDEVICE__`, `WDFOBJECT` is `*mut c_void`;
//! * `LONG`/`ULONG` are 32 bits (Windows' LLP64), `SIZE_T`/`ULONG_PTR` 64;
//! * `_WDFFUNCENUM` holds the KMDF 1.33 function-table indices and each
//!   `PFN_WDF*` alias the function's type, which the real `wdk-macros` reads
//!   to expand `call_unsafe_wdf_function_binding!`.
//!
//! Every structure the code fills has compile-time assertions of its x64 and
//! ARM64 size, alignment and field offsets (`types.rs`). How the declarations
//! were compared with the KMDF headers is in the README beside this crate.
//!
//! It is used only by `cargo xtask check-windows`, which patches it in place
//! of the real crate; nothing here links or runs.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

#[doc(hidden)]
pub use wdk_macros as __proc_macros;

pub use constants::*;
pub use types::*;

mod constants;
mod macros;
pub mod ntddk;
mod types;
pub mod wdf;

/// `NT_SUCCESS` (`ntdef.h`): success or informational status.
#[must_use]
pub const fn NT_SUCCESS(nt_status: NTSTATUS) -> bool {
    nt_status >= 0
}

/// `NT_INFORMATION` (`ntdef.h`).
#[must_use]
#[allow(clippy::cast_sign_loss)]
pub const fn NT_INFORMATION(nt_status: NTSTATUS) -> bool {
    (nt_status as u32 >> 30) == 1
}

/// `NT_WARNING` (`ntdef.h`).
#[must_use]
#[allow(clippy::cast_sign_loss)]
pub const fn NT_WARNING(nt_status: NTSTATUS) -> bool {
    (nt_status as u32 >> 30) == 2
}

/// `NT_ERROR` (`ntdef.h`).
#[must_use]
#[allow(clippy::cast_sign_loss)]
pub const fn NT_ERROR(nt_status: NTSTATUS) -> bool {
    (nt_status as u32 >> 30) == 3
}

/// The floating-point marker symbol the real crate exports (the MSVC linker
/// expects it from any image that uses floating point).
#[no_mangle]
pub static _fltused: () = ();

/// C++ exception frame handler stub, exported by the real crate only under
/// `panic = "abort"` (a driver never unwinds).
#[cfg(panic = "abort")]
#[no_mangle]
pub const extern "system" fn __CxxFrameHandler3() -> i32 {
    0
}

/// As [`__CxxFrameHandler3`].
#[cfg(panic = "abort")]
#[no_mangle]
pub const extern "system" fn __CxxFrameHandler4() -> i32 {
    1
}
