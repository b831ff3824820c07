//! [`WorkItem`] on a `WDFWORKITEM`.

use alloc::sync::Arc;
use core::ptr;

use dmf_wdf::{Result, WorkItem, WorkItemHandler};
use wdk_sys::{
    call_unsafe_wdf_function_binding, WDFDEVICE, WDFOBJECT, WDFWORKITEM, WDF_WORKITEM_CONFIG,
};

use crate::context::{attributes_with_payload, delete_object, payload, set_payload, wdf_size};
use crate::convert::wdk::nt_result;

/// A `WDFWORKITEM` whose `EvtWorkItemFunc` runs a [`WorkItemHandler`] at
/// `PASSIVE_LEVEL` on a system worker thread.
///
/// Created with `AutomaticSerialization = FALSE` and the client device as
/// parent; the handler's `Arc` lives in the object context and is released by
/// its `EvtCleanupCallback`. `WdfWorkItemEnqueue` does nothing for a work
/// item that is queued and not yet running, as the seam requires.
///
/// Dropping it calls `WdfObjectDelete` at `PASSIVE_LEVEL`: the deletion waits
/// until the item is neither queued nor running, except when called from the
/// item's own callback, where it does not wait (`FxWorkItem::FlushAndRundown`),
/// so dropping it from its own handler is allowed, as the seam says.
/// (`WdfWorkItemFlush` from the callback would break into the verifier,
/// `FxWorkItem::FlushAndWait`, so the drop does not flush first.)
///
/// # Invariants
///
/// `handle` is a live work item created by `KmdfWorkItem::new`, owned by
/// this value.
pub struct KmdfWorkItem {
    handle: WDFWORKITEM,
}

// SAFETY: a WDFWORKITEM handle may be used from any thread; enqueue and flush
// synchronise internally.
unsafe impl Send for KmdfWorkItem {}
// SAFETY: as above.
unsafe impl Sync for KmdfWorkItem {}

impl KmdfWorkItem {
    /// `WdfWorkItemCreate` for `handler`, parented to `device`.
    pub(crate) fn new<H: WorkItemHandler>(device: WDFDEVICE, handler: Arc<H>) -> Result<Self> {
        // WDF_WORKITEM_CONFIG_INIT(&config, evt_work_item::<H>) zeroes the
        // structure, sets Size and EvtWorkItemFunc, and
        // AutomaticSerialization = TRUE; this one is not serialised.
        let mut config = WDF_WORKITEM_CONFIG {
            Size: wdf_size::<WDF_WORKITEM_CONFIG>(),
            EvtWorkItemFunc: Some(evt_work_item::<H>),
            AutomaticSerialization: 0,
        };
        let mut attributes = attributes_with_payload(device as WDFOBJECT);
        let mut handle: WDFWORKITEM = ptr::null_mut();
        // SAFETY: initialised config and attributes (ParentObject is the
        // device, as WdfWorkItemCreate requires); `handle` receives the item.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfWorkItemCreate,
                &mut config,
                &mut attributes,
                &mut handle
            )
        };
        nt_result(status)?;
        // SAFETY: live work item with our context, never enqueued yet.
        unsafe { set_payload(handle as WDFOBJECT, handler) };
        // INVARIANT: created above and owned from here on.
        Ok(KmdfWorkItem { handle })
    }
}

// SAFETY: `WdfWorkItemEnqueue` queues the item to a system worker thread
// (`IoQueueWorkItem`) and returns; `EvtWorkItemFunc` runs later on that
// worker at PASSIVE_LEVEL, never nested in the caller of `enqueue`.
unsafe impl WorkItem for KmdfWorkItem {
    /// `WdfWorkItemEnqueue` returns nothing and cannot fail.
    fn enqueue(&self) -> Result<()> {
        // SAFETY: live work item (invariant); IRQL <= DISPATCH_LEVEL.
        unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemEnqueue, self.handle) };
        Ok(())
    }

    fn flush(&self) {
        // SAFETY: live work item (invariant); PASSIVE_LEVEL, not from the
        // item's own callback (seam contract).
        unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemFlush, self.handle) };
    }
}

impl Drop for KmdfWorkItem {
    fn drop(&mut self) {
        // SAFETY: owned live work item (invariant), deleted once at
        // PASSIVE_LEVEL (seam contract); the deletion waits for a queued or
        // running callback unless this is that callback, whose handler `Arc`
        // `evt_work_item` holds until it returns.
        unsafe { delete_object(self.handle as WDFOBJECT) };
    }
}

/// `EvtWorkItemFunc` for handler type `H`.
unsafe extern "C" fn evt_work_item<H: WorkItemHandler>(work_item: WDFWORKITEM) {
    // SAFETY: WDF passes the live work item created by
    // `KmdfWorkItem::new::<H>`, whose payload is an Arc<H>.
    if let Some(handler) = unsafe { payload::<H>(work_item as WDFOBJECT) } {
        handler.run();
    }
}
