//! Notification events: `KeInitializeEvent`, `KeSetEvent`,
//! `KeClearEvent`, `KeReadStateEvent`, `KeWaitForSingleObject`.

use std::sync::Arc;

use dmf_wdf::{Event, Platform};
use wdk_sys::*;

use crate::machine::current;
use crate::object::lock;

use super::irql::assert_passive;
use super::STATUS_SUCCESS;

/// `STATUS_TIMEOUT`.
const STATUS_TIMEOUT: NTSTATUS = 0x0000_0102;

/// The simulator event standing for the `KEVENT` at `event`.
#[track_caller]
fn event_at(event: PRKEVENT, routine: &str) -> Arc<dmf_sim::SimEvent> {
    let machine = current();
    let map = lock(&machine.events);
    match map.get(&(event as usize)) {
        Some(e) => Arc::clone(e),
        None => panic!("{routine}: {event:p} is not a KEVENT initialised with KeInitializeEvent"),
    }
}

/// `KeInitializeEvent`: a notification event (`SynchronizationEvent` is not
/// emulated: `dmf-kmdf` does not use it).
///
/// # Safety
///
/// `event` must point to a `KEVENT` in memory that stays put until freed.
#[no_mangle]
pub unsafe extern "C" fn KeInitializeEvent(event: PRKEVENT, kind: EVENT_TYPE, state: BOOLEAN) {
    assert!(
        kind == _EVENT_TYPE::NotificationEvent,
        "KeInitializeEvent: only NotificationEvent is emulated"
    );
    let machine = current();
    let sim_event = machine
        .sim
        .create_event(state != 0)
        .unwrap_or_else(|s| panic!("KeInitializeEvent cannot fail (simulator refused: {s})"));
    lock(&machine.events).insert(event as usize, Arc::new(sim_event));
}

/// `KeSetEvent` with `Wait = FALSE`; returns the previous state.
///
/// # Safety
///
/// `event` must be an initialised `KEVENT`.
#[no_mangle]
pub unsafe extern "C" fn KeSetEvent(event: PRKEVENT, _increment: KPRIORITY, wait: BOOLEAN) -> LONG {
    assert!(wait == 0, "KeSetEvent: Wait = TRUE is not emulated");
    let e = event_at(event, "KeSetEvent");
    let previous = e.is_set();
    e.set();
    LONG::from(previous)
}

/// `KeClearEvent`.
///
/// # Safety
///
/// `event` must be an initialised `KEVENT`.
#[no_mangle]
pub unsafe extern "C" fn KeClearEvent(event: PRKEVENT) {
    event_at(event, "KeClearEvent").reset();
}

/// `KeReadStateEvent`.
///
/// # Safety
///
/// `event` must be an initialised `KEVENT`.
#[no_mangle]
pub unsafe extern "C" fn KeReadStateEvent(event: PRKEVENT) -> LONG {
    LONG::from(event_at(event, "KeReadStateEvent").is_set())
}

/// `KeWaitForSingleObject` on a `KEVENT`: `STATUS_SUCCESS` when signalled,
/// `STATUS_TIMEOUT` when a relative timeout expires. A non-zero timeout at
/// `DISPATCH_LEVEL` panics (the kernel bug-checks); absolute timeouts are not
/// emulated.
///
/// # Safety
///
/// `object` must be an initialised `KEVENT`; `timeout` null or readable.
#[no_mangle]
pub unsafe extern "C" fn KeWaitForSingleObject(
    object: PVOID,
    _reason: KWAIT_REASON,
    _mode: KPROCESSOR_MODE,
    _alertable: BOOLEAN,
    timeout: PLARGE_INTEGER,
) -> NTSTATUS {
    let timeout_ms = if timeout.is_null() {
        None
    } else {
        // SAFETY: caller contract.
        let t = unsafe { (*timeout).QuadPart };
        assert!(
            t <= 0,
            "KeWaitForSingleObject: absolute timeouts are not emulated"
        );
        // 100 ns units, rounded up to whole milliseconds.
        Some(u32::try_from(t.unsigned_abs().div_ceil(10_000)).unwrap_or(u32::MAX))
    };
    if timeout_ms != Some(0) {
        assert_passive("KeWaitForSingleObject (non-zero timeout)");
    }
    let e = event_at(object.cast(), "KeWaitForSingleObject");
    if e.wait(timeout_ms) {
        STATUS_SUCCESS
    } else {
        STATUS_TIMEOUT
    }
}
