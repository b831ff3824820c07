//! Debugger output and bug checks: `DbgPrint`, `DbgPrintEx`, `KeBugCheckEx`.

use std::ffi::{c_char, CStr};

// `DbgPrint` below relies on a variadic call passing its first arguments as
// a non-variadic one does. Apple's AArch64 ABI passes variadic arguments on
// the stack, so the emulation cannot be built there.
#[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
compile_error!("dmf-kmdf-emu's DbgPrint needs an ABI that passes variadic arguments in registers");

use wdk_sys::*;

use crate::machine::current;
use crate::object::lock;

use super::STATUS_SUCCESS;

/// `KeBugCheckEx`: panics with the bug check (for `'RPNC'`, the Rust panic
/// code of `dmf_kmdf::shell`, with the file and line of the panic). The
/// routine is `extern "C"`, so the panic aborts the process: the machine
/// stops, as it does on Windows.
///
/// # Safety
///
/// For `'RPNC'`, parameters 1 and 2 are a file name's address and length.
#[no_mangle]
pub unsafe extern "C" fn KeBugCheckEx(
    code: ULONG,
    p1: ULONG_PTR,
    p2: ULONG_PTR,
    p3: ULONG_PTR,
    p4: ULONG_PTR,
) -> ! {
    if code == u32::from_be_bytes(*b"RPNC") && p1 != 0 {
        // SAFETY: 'RPNC' passes the panic location's file name and length.
        let file = unsafe { std::slice::from_raw_parts(p1 as *const u8, p2 as usize) };
        panic!(
            "KeBugCheckEx('RPNC'): Rust panic at {}:{p3}:{p4}",
            String::from_utf8_lossy(file)
        );
    }
    panic!("KeBugCheckEx(0x{code:08X}, 0x{p1:X}, 0x{p2:X}, 0x{p3:X}, 0x{p4:X})");
}

/// `DbgPrint(format, string)`: the only form `dmf-kmdf` uses (`"%s\n"` with
/// one string). The C declaration is variadic; on the Linux x86-64 and
/// AArch64 ABIs a variadic call passes its first arguments exactly as this
/// two-parameter function receives them. Any other format panics.
///
/// # Safety
///
/// `format` and `argument` must be NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn DbgPrint(format: PCSTR, argument: *const c_char) -> ULONG {
    // SAFETY: caller contract.
    let format = unsafe { CStr::from_ptr(format) }.to_string_lossy();
    assert!(
        format.matches('%').count() == 1 && format.contains("%s"),
        "DbgPrint: only a format with one %s is emulated, got {format:?}"
    );
    // SAFETY: caller contract (the %s argument).
    let text = unsafe { CStr::from_ptr(argument) }.to_string_lossy();
    let line = format.replacen("%s", &text, 1);
    let line = line.trim_end_matches('\n').to_owned();
    if std::env::var_os("DMF_KMDF_EMU_DBGPRINT").is_some() {
        eprintln!("{line}");
    }
    lock(&current().log).push(line);
    STATUS_SUCCESS as ULONG
}

/// `DbgPrintEx(component, level, format, string)`: the form
/// `dmf_kmdf::debug_print` uses. The component must be
/// `DPFLTR_IHVDRIVER_ID` (77) and the level one of 0..=4, as the sink maps
/// them; the line goes where `DbgPrint`'s go. Variadic as `DbgPrint` (see
/// there).
///
/// # Safety
///
/// `format` and `argument` must be NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn DbgPrintEx(
    component: ULONG,
    level: ULONG,
    format: PCSTR,
    argument: *const c_char,
) -> ULONG {
    assert_eq!(component, 77, "DbgPrintEx: unexpected component id");
    assert!(
        level <= 4,
        "DbgPrintEx: level {level} is not one the sink uses"
    );
    // SAFETY: caller contract.
    unsafe { DbgPrint(format, argument) }
}
