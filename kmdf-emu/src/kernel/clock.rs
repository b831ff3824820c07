//! Interrupt time: `KeQueryInterruptTimePrecise`.

use dmf_wdf::Platform;
use wdk_sys::*;

use crate::machine::current;

/// `KeQueryInterruptTimePrecise`: the simulator's clock in 100 ns units
/// (also written to `qpc_timestamp`).
///
/// # Safety
///
/// `qpc_timestamp` must be writable.
#[no_mangle]
pub unsafe extern "C" fn KeQueryInterruptTimePrecise(qpc_timestamp: PULONG64) -> ULONG64 {
    let now = current().sim.now_100ns();
    if !qpc_timestamp.is_null() {
        // SAFETY: caller contract.
        unsafe { qpc_timestamp.write(now) };
    }
    now
}
