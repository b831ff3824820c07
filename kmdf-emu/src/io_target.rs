//! Remote I/O targets: `WdfIoTargetCreate` / `Open` / `Close` /
//! `CloseForQueryRemove` / `Start` / `Stop` / `Purge` / `GetState` over the
//! simulator's targets, which follow `FxIoTargetRemote` (a new target
//! reports `WdfIoTargetStarted` and is not open; open, close, query-remove
//! and remove-cancel sequencing; stop and purge of sent I/O).
//!
//! The target's PnP callbacks of `WDF_IO_TARGET_OPEN_PARAMS` are the
//! simulator target's events. Where the driver registers none, the
//! framework's default applies (`FxIoTargetRemote`): query-remove closes the
//! target for the removal, remove-canceled reopens it, remove-complete
//! closes it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;

use dmf_sim::SimIoTarget;
use dmf_wdf::{
    IoTarget, OpenMode, OpenParams, Platform, SentIoAction, ShareAccess, Status, TargetEvents,
    TargetState,
};
use wdk_sys::{
    _WDF_IO_TARGET_OPEN_TYPE, _WDF_IO_TARGET_PURGE_IO_ACTION, _WDF_IO_TARGET_SENT_IO_ACTION,
    _WDF_IO_TARGET_STATE, NTSTATUS, PFN_WDF_IO_TARGET_QUERY_REMOVE,
    PFN_WDF_IO_TARGET_REMOVE_CANCELED, PFN_WDF_IO_TARGET_REMOVE_COMPLETE, PWDF_DRIVER_GLOBALS,
    PWDF_IO_TARGET_OPEN_PARAMS, PWDF_OBJECT_ATTRIBUTES, WDFDEVICE, WDFIOTARGET,
    WDF_IO_TARGET_OPEN_PARAMS, WDF_IO_TARGET_PURGE_IO_ACTION, WDF_IO_TARGET_SENT_IO_ACTION,
    WDF_IO_TARGET_STATE,
};

use crate::kernel::assert_passive;
use crate::machine::current;
use crate::object::{create, get, get_live, Attributes, Kind, Object};
use crate::registry::unicode_to_string;

/// `FILE_OPEN`.
const FILE_OPEN: u32 = 1;

/// A `WDFIOTARGET`.
pub(crate) struct TargetData {
    sim: SimIoTarget,
    /// `WdfIoTargetPurge` ran since the last start, open or close: the state
    /// reads `WdfIoTargetPurged` rather than `Stopped`.
    purged: AtomicBool,
}

impl TargetData {
    pub(crate) fn sim(&self) -> &SimIoTarget {
        &self.sim
    }

    /// Deleting a target closes it (`FxIoTargetRemote::Dispose`: cancel sent
    /// I/O, wait for it, close the handle).
    pub(crate) fn dispose(&self) {
        if self.sim.state() != TargetState::Closed {
            self.sim.close();
        }
    }
}

/// The driver's target callbacks, called with the target's handle.
struct Events {
    object: Weak<Object>,
    query_remove: PFN_WDF_IO_TARGET_QUERY_REMOVE,
    remove_canceled: PFN_WDF_IO_TARGET_REMOVE_CANCELED,
    remove_complete: PFN_WDF_IO_TARGET_REMOVE_COMPLETE,
}

// SAFETY: plain functions and a weak reference.
unsafe impl Send for Events {}
// SAFETY: as above.
unsafe impl Sync for Events {}

impl Events {
    fn target(&self) -> Option<std::sync::Arc<Object>> {
        self.object.upgrade()
    }
}

fn sim_of(object: &Object) -> &SimIoTarget {
    match &object.kind {
        Kind::IoTarget(t) => &t.sim,
        _ => unreachable!("target events of a non-target"),
    }
}

impl TargetEvents for Events {
    fn query_remove(&self) -> Status {
        let Some(object) = self.target() else {
            return Status::SUCCESS;
        };
        match self.query_remove {
            // SAFETY: the driver's EvtIoTargetQueryRemove with its target, at
            // PASSIVE_LEVEL on the simulator's PnP thread.
            Some(f) => Status::from_raw(unsafe { f(object.handle().cast()) }),
            None => {
                sim_of(&object).close_for_query_remove();
                Status::SUCCESS
            }
        }
    }

    fn remove_canceled(&self) {
        let Some(object) = self.target() else {
            return;
        };
        match self.remove_canceled {
            // SAFETY: as above.
            Some(f) => unsafe { f(object.handle().cast()) },
            None => {
                let _ = sim_of(&object).reopen();
            }
        }
    }

    fn remove_complete(&self) {
        let Some(object) = self.target() else {
            return;
        };
        match self.remove_complete {
            // SAFETY: as above.
            Some(f) => unsafe { f(object.handle().cast()) },
            None => sim_of(&object).close(),
        }
    }
}

#[track_caller]
fn target(handle: WDFIOTARGET, function: &str) -> std::sync::Arc<Object> {
    let object = get(handle.cast(), function);
    assert!(
        matches!(object.kind, Kind::IoTarget(_)),
        "{function}: {object:?} is not a WDFIOTARGET"
    );
    object
}

fn data(object: &Object) -> &TargetData {
    match &object.kind {
        Kind::IoTarget(t) => t,
        _ => unreachable!(),
    }
}

pub(crate) unsafe extern "C" fn wdf_io_target_create(
    _globals: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    io_target: *mut WDFIOTARGET,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetCreate";
    assert_passive(F);
    assert!(!io_target.is_null(), "{F}: NULL target");
    let parent = get_live(device.cast(), F);
    assert!(
        matches!(parent.kind, Kind::Device(_)),
        "{F}: {parent:?} is not a WDFDEVICE"
    );
    // SAFETY: caller contract.
    let mut attributes = unsafe { Attributes::read(attributes, F) };
    // The default parent of a target is the device.
    if attributes.parent.is_null() {
        attributes.parent = device.cast();
    }
    let sim = match current().sim.create_io_target() {
        Ok(t) => t,
        Err(s) => return s.raw(),
    };
    let object = create(
        Kind::IoTarget(TargetData {
            sim,
            purged: AtomicBool::new(false),
        }),
        &attributes,
    );
    // SAFETY: caller contract.
    unsafe { io_target.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_io_target_open(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
    params: PWDF_IO_TARGET_OPEN_PARAMS,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetOpen";
    assert_passive(F);
    let object = target(io_target, F);
    let t = data(&object);
    assert!(!params.is_null(), "{F}: NULL params");
    // SAFETY: caller contract.
    let p = unsafe { &*params };
    assert_eq!(
        p.Size as usize,
        size_of::<WDF_IO_TARGET_OPEN_PARAMS>(),
        "{F}: WDF_IO_TARGET_OPEN_PARAMS.Size"
    );
    let result = match p.Type {
        _WDF_IO_TARGET_OPEN_TYPE::WdfIoTargetOpenByName => {
            assert!(
                p.CreateDisposition == FILE_OPEN,
                "{F}: only CreateDisposition = FILE_OPEN is emulated"
            );
            // SAFETY: caller contract: a valid UNICODE_STRING.
            let name = unsafe { unicode_to_string(&p.TargetDeviceName) };
            let events = std::sync::Arc::new(Events {
                object: std::sync::Arc::downgrade(&object),
                query_remove: p.EvtIoTargetQueryRemove,
                remove_canceled: p.EvtIoTargetRemoveCanceled,
                remove_complete: p.EvtIoTargetRemoveComplete,
            });
            let open = OpenParams {
                symbolic_link: &name,
                open_mode: OpenMode(p.DesiredAccess),
                share_access: ShareAccess(p.ShareAccess),
            };
            t.sim.open(&open, events)
        }
        _WDF_IO_TARGET_OPEN_TYPE::WdfIoTargetOpenReopen => t.sim.reopen(),
        other => panic!("{F}: open type {other} is not emulated"),
    };
    if result.is_ok() {
        t.purged.store(false, Ordering::Release);
    }
    Status::from_result(result).raw()
}

pub(crate) unsafe extern "C" fn wdf_io_target_close(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
) {
    const F: &str = "WdfIoTargetClose";
    assert_passive(F);
    let object = target(io_target, F);
    let t = data(&object);
    t.sim.close();
    t.purged.store(false, Ordering::Release);
}

pub(crate) unsafe extern "C" fn wdf_io_target_close_for_query_remove(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
) {
    const F: &str = "WdfIoTargetCloseForQueryRemove";
    assert_passive(F);
    let object = target(io_target, F);
    data(&object).sim.close_for_query_remove();
}

pub(crate) unsafe extern "C" fn wdf_io_target_start(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetStart";
    let object = target(io_target, F);
    let t = data(&object);
    let result = t.sim.start();
    if result.is_ok() {
        t.purged.store(false, Ordering::Release);
    }
    Status::from_result(result).raw()
}

pub(crate) unsafe extern "C" fn wdf_io_target_stop(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
    action: WDF_IO_TARGET_SENT_IO_ACTION,
) {
    const F: &str = "WdfIoTargetStop";
    let action = match action {
        _WDF_IO_TARGET_SENT_IO_ACTION::WdfIoTargetCancelSentIo => SentIoAction::Cancel,
        _WDF_IO_TARGET_SENT_IO_ACTION::WdfIoTargetWaitForSentIoToComplete => {
            SentIoAction::WaitForCompletion
        }
        _WDF_IO_TARGET_SENT_IO_ACTION::WdfIoTargetLeaveSentIoPending => SentIoAction::LeavePending,
        other => panic!("{F}: invalid action {other}"),
    };
    if action != SentIoAction::LeavePending {
        // Cancelling or waiting for sent I/O waits: PASSIVE_LEVEL only.
        assert_passive(F);
    }
    let object = target(io_target, F);
    data(&object).sim.stop(action);
}

pub(crate) unsafe extern "C" fn wdf_io_target_purge(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
    action: WDF_IO_TARGET_PURGE_IO_ACTION,
) {
    const F: &str = "WdfIoTargetPurge";
    let wait = match action {
        _WDF_IO_TARGET_PURGE_IO_ACTION::WdfIoTargetPurgeIoAndWait => true,
        _WDF_IO_TARGET_PURGE_IO_ACTION::WdfIoTargetPurgeIo => false,
        other => panic!("{F}: invalid action {other}"),
    };
    if wait {
        assert_passive(F);
    }
    let object = target(io_target, F);
    let t = data(&object);
    t.sim.purge(wait);
    if t.sim.state() == TargetState::Stopped {
        t.purged.store(true, Ordering::Release);
    }
}

pub(crate) unsafe extern "C" fn wdf_io_target_get_state(
    _globals: PWDF_DRIVER_GLOBALS,
    io_target: WDFIOTARGET,
) -> WDF_IO_TARGET_STATE {
    let object = target(io_target, "WdfIoTargetGetState");
    if object.is_deleted() {
        return _WDF_IO_TARGET_STATE::WdfIoTargetDeleted;
    }
    let t = data(&object);
    match t.sim.state() {
        TargetState::Started => _WDF_IO_TARGET_STATE::WdfIoTargetStarted,
        TargetState::Stopped if t.purged.load(Ordering::Acquire) => {
            _WDF_IO_TARGET_STATE::WdfIoTargetPurged
        }
        TargetState::Stopped => _WDF_IO_TARGET_STATE::WdfIoTargetStopped,
        TargetState::ClosedForQueryRemove => _WDF_IO_TARGET_STATE::WdfIoTargetClosedForQueryRemove,
        TargetState::Closed => _WDF_IO_TARGET_STATE::WdfIoTargetClosed,
    }
}
