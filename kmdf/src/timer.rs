//! [`Timer`] on a passive-level `WDFTIMER`.

use alloc::sync::Arc;
use core::ptr;

use dmf_wdf::{Result, Timer, TimerHandler};
use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_EXECUTION_LEVEL, WDFDEVICE, WDFOBJECT, WDFTIMER,
    WDF_OBJECT_ATTRIBUTES, WDF_TIMER_CONFIG,
};

use crate::context::{attributes_with_payload, delete_object, payload, set_payload, wdf_size};
use crate::convert::timer_due_time_100ns;
use crate::convert::wdk::nt_result;

/// A one-shot `WDFTIMER` whose `EvtTimerFunc` runs a [`TimerHandler`] at
/// `PASSIVE_LEVEL` on a system worker thread.
///
/// Created with `ExecutionLevel = WdfExecutionLevelPassive`,
/// `AutomaticSerialization = FALSE`, `Period = 0` and the client device as
/// parent; the handler's `Arc` lives in the timer's object context and is
/// released by its `EvtCleanupCallback`.
///
/// Dropping it calls `WdfTimerStop(timer, TRUE)` (waiting for a running
/// handler) and `WdfObjectDelete`: only at `PASSIVE_LEVEL` and never from its
/// own handler, as the seam's [`Timer`] contract says (`FxTimer::Stop` and
/// `FxTimer::FlushAndRundown` break into the verifier otherwise).
///
/// # Invariants
///
/// `handle` is a live timer created by `KmdfTimer::new`, owned by this value.
pub struct KmdfTimer {
    handle: WDFTIMER,
}

// SAFETY: a WDFTIMER handle may be used from any thread; WdfTimerStart and
// WdfTimerStop synchronise internally.
unsafe impl Send for KmdfTimer {}
// SAFETY: as above; `&KmdfTimer` only exposes start and stop.
unsafe impl Sync for KmdfTimer {}

impl KmdfTimer {
    /// `WdfTimerCreate` for `handler`, parented to `device`.
    pub(crate) fn new<H: TimerHandler>(device: WDFDEVICE, handler: Arc<H>) -> Result<Self> {
        // WDF_TIMER_CONFIG_INIT(&config, evt_timer::<H>) zeroes the structure,
        // sets Size and EvtTimerFunc, Period = 0 and AutomaticSerialization =
        // TRUE; this timer is not serialised with the device. The struct
        // update covers `UseHighResolutionTimer` (KMDF 1.13+) and stays
        // correct for bindings without it.
        #[allow(clippy::needless_update)]
        let mut config = WDF_TIMER_CONFIG {
            Size: wdf_size::<WDF_TIMER_CONFIG>(),
            EvtTimerFunc: Some(evt_timer::<H>),
            Period: 0,
            AutomaticSerialization: 0,
            TolerableDelay: 0,
            ..WDF_TIMER_CONFIG::default()
        };
        let mut attributes = WDF_OBJECT_ATTRIBUTES {
            ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive,
            ..attributes_with_payload(device as WDFOBJECT)
        };
        let mut handle: WDFTIMER = ptr::null_mut();
        // SAFETY: config and attributes are initialised as their _INIT macros
        // do; `handle` receives the new timer. PASSIVE_LEVEL (creation path).
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfTimerCreate,
                &mut config,
                &mut attributes,
                &mut handle
            )
        };
        nt_result(status)?;
        // SAFETY: the timer is live, has our context, and is not started, so
        // its callback cannot run yet.
        unsafe { set_payload(handle as WDFOBJECT, handler) };
        // INVARIANT: created above and owned from here on.
        Ok(KmdfTimer { handle })
    }
}

// SAFETY: a one-shot `WDFTIMER` queues its DPC/work only through
// `WdfTimerStart` (a kernel timer), and runs `EvtTimerFunc` at most once per
// expiry on a system worker thread, never inside `WdfTimerStart` or
// `WdfTimerStop`; `WdfTimerStop` returns TRUE only when it dequeued the timer
// before it expired; with Wait = TRUE (and in `drop`, which stops with
// Wait = TRUE before `WdfObjectDelete`) it returns once a running callback
// has returned (`FxTimer::Stop` flushes the callback). Deleted, the timer is
// disarmed and never runs again.
unsafe impl Timer for KmdfTimer {
    fn start(&self, due_ms: u64) -> bool {
        // SAFETY: live timer (invariant); IRQL <= DISPATCH_LEVEL.
        let was_queued = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfTimerStart,
                self.handle,
                timer_due_time_100ns(due_ms)
            )
        };
        was_queued != 0
    }

    fn stop(&self, wait: bool) -> bool {
        // SAFETY: live timer (invariant); with Wait = TRUE the caller is at
        // PASSIVE_LEVEL and not in the timer's own callback (seam contract).
        let was_queued =
            unsafe { call_unsafe_wdf_function_binding!(WdfTimerStop, self.handle, u8::from(wait)) };
        was_queued != 0
    }
}

impl Drop for KmdfTimer {
    fn drop(&mut self) {
        let _was_queued = self.stop(true);
        // SAFETY: owned live timer (invariant), stopped with no callback
        // running; deleted once. The cleanup callback releases the handler.
        unsafe { delete_object(self.handle as WDFOBJECT) };
    }
}

/// `EvtTimerFunc` for handler type `H`.
unsafe extern "C" fn evt_timer<H: TimerHandler>(timer: WDFTIMER) {
    // SAFETY: WDF passes the live timer created by `KmdfTimer::new::<H>`,
    // whose payload is an Arc<H>.
    if let Some(handler) = unsafe { payload::<H>(timer as WDFOBJECT) } {
        handler.fired();
    }
}
