//! `WdfWorkItemCreate` / `WdfWorkItemEnqueue` / `WdfWorkItemFlush` over the
//! simulator's work items (on its passive-level threads).

use std::sync::{Arc, Mutex, Weak};

use dmf_sim::SimWorkItem;
use dmf_wdf::{Platform, Status, WorkItem, WorkItemHandler};
use wdk_sys::{
    NTSTATUS, PWDF_DRIVER_GLOBALS, PWDF_OBJECT_ATTRIBUTES, PWDF_WORKITEM_CONFIG, WDFWORKITEM,
    WDF_WORKITEM_CONFIG,
};

use crate::kernel::assert_passive;
use crate::machine::current;
use crate::object::{create_backed_by_sim, get_live, lock, Attributes, Kind, Object};

/// A `WDFWORKITEM`: the simulator work item, until it is deleted.
pub(crate) struct WorkItemData {
    sim: Mutex<Option<Arc<SimWorkItem>>>,
}

impl WorkItemData {
    /// Deleting a work item waits for its callback (`FxWorkItem::Dispose`
    /// flushes); the simulator's work item does that when dropped.
    pub(crate) fn dispose(&self) {
        let sim = lock(&self.sim).take();
        drop(sim);
    }
}

/// Calls `EvtWorkItemFunc` with the work item's handle.
struct Run {
    object: Weak<Object>,
    func: unsafe extern "C" fn(WDFWORKITEM),
}

// SAFETY: a plain function and a weak reference.
unsafe impl Send for Run {}
// SAFETY: as above.
unsafe impl Sync for Run {}

impl WorkItemHandler for Run {
    fn run(&self) {
        if let Some(object) = self.object.upgrade() {
            // SAFETY: the driver's EvtWorkItemFunc with its live work item,
            // at PASSIVE_LEVEL on a simulator worker thread.
            unsafe { (self.func)(object.handle().cast()) };
        }
    }
}

pub(crate) unsafe extern "C" fn wdf_work_item_create(
    _globals: PWDF_DRIVER_GLOBALS,
    config: PWDF_WORKITEM_CONFIG,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    work_item: *mut WDFWORKITEM,
) -> NTSTATUS {
    const F: &str = "WdfWorkItemCreate";
    assert!(
        !config.is_null() && !work_item.is_null(),
        "{F}: NULL argument"
    );
    // SAFETY: caller contract.
    let config = unsafe { &*config };
    assert_eq!(
        config.Size as usize,
        size_of::<WDF_WORKITEM_CONFIG>(),
        "{F}: WDF_WORKITEM_CONFIG.Size"
    );
    assert!(
        config.AutomaticSerialization == 0,
        "{F}: automatic serialization is not emulated"
    );
    let func = config
        .EvtWorkItemFunc
        .expect("WdfWorkItemCreate: NULL EvtWorkItemFunc");
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let machine = current();
    let object = match create_backed_by_sim(
        &attributes,
        F,
        |weak| {
            machine.sim.create_work_item(Arc::new(Run {
                object: weak.clone(),
                func,
            }))
        },
        |sim| {
            Kind::WorkItem(WorkItemData {
                sim: Mutex::new(sim),
            })
        },
    ) {
        Ok(object) => object,
        Err(status) => return status,
    };
    // SAFETY: caller contract.
    unsafe { work_item.write(object.handle().cast()) };
    0
}

fn work_item_data(work_item: WDFWORKITEM, function: &str) -> Arc<SimWorkItem> {
    let object = get_live(work_item.cast(), function);
    match &object.kind {
        Kind::WorkItem(w) => lock(&w.sim)
            .clone()
            .unwrap_or_else(|| panic!("{function}: the work item was deleted")),
        _ => panic!("{function}: {object:?} is not a WDFWORKITEM"),
    }
}

pub(crate) unsafe extern "C" fn wdf_work_item_enqueue(
    _globals: PWDF_DRIVER_GLOBALS,
    work_item: WDFWORKITEM,
) {
    const F: &str = "WdfWorkItemEnqueue";
    // WdfWorkItemEnqueue cannot fail; an already queued item stays queued
    // once. The simulator refuses only while it shuts down.
    match work_item_data(work_item, F).enqueue() {
        Ok(()) => {}
        Err(s) if s == Status::INVALID_DEVICE_STATE => {}
        Err(s) => panic!(
            "{F}: the simulator refused the enqueue ({s}); WdfWorkItemEnqueue cannot fail, \
             so work-item enqueue faults cannot be injected under the emulation"
        ),
    }
}

pub(crate) unsafe extern "C" fn wdf_work_item_flush(
    _globals: PWDF_DRIVER_GLOBALS,
    work_item: WDFWORKITEM,
) {
    const F: &str = "WdfWorkItemFlush";
    assert_passive(F);
    work_item_data(work_item, F).flush();
}
