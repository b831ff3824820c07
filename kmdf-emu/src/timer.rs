//! `WdfTimerCreate` / `WdfTimerStart` / `WdfTimerStop` over the simulator's
//! timers (one-shot; `Period` and automatic serialization are not emulated).

use std::sync::{Arc, Mutex, Weak};

use dmf_sim::SimTimer;
use dmf_wdf::{Platform, Timer, TimerHandler};
use wdk_sys::{
    BOOLEAN, LONGLONG, NTSTATUS, PFN_WDF_TIMER, PWDF_DRIVER_GLOBALS, PWDF_OBJECT_ATTRIBUTES,
    PWDF_TIMER_CONFIG, WDFTIMER, WDF_TIMER_CONFIG,
};

use crate::kernel::assert_passive;
use crate::machine::current;
use crate::object::{create_backed_by_sim, get_live, lock, Attributes, Kind, Object};
use crate::request::relative_ms;

/// A `WDFTIMER`: the simulator timer, until the timer is deleted.
pub(crate) struct TimerData {
    sim: Mutex<Option<Arc<SimTimer>>>,
}

impl TimerData {
    fn sim(&self, function: &str) -> Arc<SimTimer> {
        lock(&self.sim)
            .clone()
            .unwrap_or_else(|| panic!("{function}: the timer was deleted"))
    }

    /// Deleting a timer (`FxTimer::Dispose`) stops it and waits for a running
    /// callback; the simulator's timer does both when dropped.
    pub(crate) fn dispose(&self) {
        let sim = lock(&self.sim).take();
        drop(sim);
    }
}

/// Calls `EvtTimerFunc` with the timer's handle.
struct Fire {
    object: Weak<Object>,
    func: unsafe extern "C" fn(WDFTIMER),
}

// SAFETY: a plain function and a weak reference.
unsafe impl Send for Fire {}
// SAFETY: as above.
unsafe impl Sync for Fire {}

impl TimerHandler for Fire {
    fn fired(&self) {
        if let Some(object) = self.object.upgrade() {
            // SAFETY: the driver's EvtTimerFunc with its live timer.
            unsafe { (self.func)(object.handle().cast()) };
        }
    }
}

pub(crate) unsafe extern "C" fn wdf_timer_create(
    _globals: PWDF_DRIVER_GLOBALS,
    config: PWDF_TIMER_CONFIG,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    timer: *mut WDFTIMER,
) -> NTSTATUS {
    const F: &str = "WdfTimerCreate";
    assert!(!config.is_null() && !timer.is_null(), "{F}: NULL argument");
    // SAFETY: caller contract.
    let config = unsafe { &*config };
    assert_eq!(
        config.Size as usize,
        size_of::<WDF_TIMER_CONFIG>(),
        "{F}: WDF_TIMER_CONFIG.Size"
    );
    assert!(config.Period == 0, "{F}: periodic timers are not emulated");
    assert!(
        config.AutomaticSerialization == 0,
        "{F}: automatic serialization is not emulated"
    );
    let func: PFN_WDF_TIMER = config.EvtTimerFunc;
    let func = func.expect("WdfTimerCreate: NULL EvtTimerFunc");
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let machine = current();
    let object = match create_backed_by_sim(
        &attributes,
        F,
        |weak| {
            machine.sim.create_timer(Arc::new(Fire {
                object: weak.clone(),
                func,
            }))
        },
        |sim| {
            Kind::Timer(TimerData {
                sim: Mutex::new(sim),
            })
        },
    ) {
        Ok(object) => object,
        Err(status) => return status,
    };
    // SAFETY: caller contract.
    unsafe { timer.write(object.handle().cast()) };
    0
}

#[track_caller]
fn timer_data(timer: WDFTIMER, function: &str) -> Arc<SimTimer> {
    let object = get_live(timer.cast(), function);
    match &object.kind {
        Kind::Timer(t) => t.sim(function),
        _ => panic!("{function}: {object:?} is not a WDFTIMER"),
    }
}

pub(crate) unsafe extern "C" fn wdf_timer_start(
    _globals: PWDF_DRIVER_GLOBALS,
    timer: WDFTIMER,
    due_time: LONGLONG,
) -> BOOLEAN {
    const F: &str = "WdfTimerStart";
    // A due time of 0 would be an absolute time in the past.
    assert!(
        due_time < 0,
        "{F}: only relative due times are emulated (got {due_time})"
    );
    let ms = relative_ms(due_time, F);
    BOOLEAN::from(timer_data(timer, F).start(u64::from(ms)))
}

pub(crate) unsafe extern "C" fn wdf_timer_stop(
    _globals: PWDF_DRIVER_GLOBALS,
    timer: WDFTIMER,
    wait: BOOLEAN,
) -> BOOLEAN {
    const F: &str = "WdfTimerStop";
    if wait != 0 {
        // Wait = TRUE: PASSIVE_LEVEL only (the simulator also refuses a wait
        // from the timer's own callback, which would never return).
        assert_passive("WdfTimerStop (Wait = TRUE)");
    }
    BOOLEAN::from(timer_data(timer, F).stop(wait != 0))
}
