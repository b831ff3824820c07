//! The WDF function table (`WdfFunctions_01033`), `WdfDriverGlobals` and
//! `WdfFunctionCount`: what the KMDF loader binds a KMDF 1.33 driver to,
//! filled with the emulated functions at their `_WDFFUNCENUM` indices.
//!
//! Each entry is converted from its `PFN_WDF*` type (the stand-in's, which
//! `wdk-macros` also reads to expand `call_unsafe_wdf_function_binding!`),
//! so an emulated function with the wrong signature does not compile.
//! Every other entry is a stub that panics naming its index ("not
//! emulated"), so a driver calling a function the emulation lacks stops
//! with a message saying which.

#![allow(non_upper_case_globals)]

use wdk_sys::_WDFFUNCENUM as idx;
use wdk_sys::*;

use crate::{device, driver, io_target, queue, registry, request, timer, wait_lock, work_item};

/// Entries in the table (`WdfFunctionTableNumEntries` of KMDF 1.33).
const ENTRIES: usize = idx::WdfFunctionTableNumEntries as usize;

/// `table[index] = function` with the function checked against its
/// `PFN_` type.
macro_rules! table {
    (
        $($index:ident: $pfn:ty = $function:path;)*
    ) => {{
        let mut t: [WDFFUNC; ENTRIES] = [None; ENTRIES];
        fill_not_emulated(&mut t);
        $(
            let f: $pfn = Some($function);
            // SAFETY: an `Option` of one function pointer type to an
            // `Option` of another: same size and niche; the caller (the
            // expansion of `call_unsafe_wdf_function_binding!`) transmutes
            // back to the same `PFN_` type by the same index.
            t[idx::$index as usize] = unsafe { core::mem::transmute::<$pfn, WDFFUNC>(f) };
        )*
        t
    }};
}

/// The entry of table index `I` that no emulated function fills. Called
/// with the arguments of the function at that index, which it ignores (the
/// C convention lets a callee ignore its arguments).
unsafe extern "C" fn not_emulated<const I: usize>() {
    panic!("WdfFunctions_01033[{I}] (see _WDFFUNCENUM) is not emulated by dmf-kmdf-emu");
}

/// `t[I] = not_emulated::<I>` for one index below the table's size.
macro_rules! stub {
    ($t:ident, $a:literal, $b:literal, $c:literal) => {
        if $a * 64 + $b * 8 + $c < ENTRIES {
            $t[$a * 64 + $b * 8 + $c] = Some(not_emulated::<{ $a * 64 + $b * 8 + $c }>);
        }
    };
}
/// The stubs of indices `a*64 + b*8 + 0..8`.
macro_rules! stubs_c {
    ($t:ident, $a:literal, $b:literal) => {
        stub!($t, $a, $b, 0);
        stub!($t, $a, $b, 1);
        stub!($t, $a, $b, 2);
        stub!($t, $a, $b, 3);
        stub!($t, $a, $b, 4);
        stub!($t, $a, $b, 5);
        stub!($t, $a, $b, 6);
        stub!($t, $a, $b, 7);
    };
}
/// The stubs of indices `a*64 + 0..64`.
macro_rules! stubs_b {
    ($t:ident, $a:literal) => {
        stubs_c!($t, $a, 0);
        stubs_c!($t, $a, 1);
        stubs_c!($t, $a, 2);
        stubs_c!($t, $a, 3);
        stubs_c!($t, $a, 4);
        stubs_c!($t, $a, 5);
        stubs_c!($t, $a, 6);
        stubs_c!($t, $a, 7);
    };
}

/// Fills every entry with its [`not_emulated`] stub (indices `0..512`
/// cover the table).
const fn fill_not_emulated(t: &mut [WDFFUNC; ENTRIES]) {
    const { assert!(ENTRIES <= 512) };
    stubs_b!(t, 0);
    stubs_b!(t, 1);
    stubs_b!(t, 2);
    stubs_b!(t, 3);
    stubs_b!(t, 4);
    stubs_b!(t, 5);
    stubs_b!(t, 6);
    stubs_b!(t, 7);
}

/// The table itself.
static FUNCTIONS: [WDFFUNC; ENTRIES] = table! {
    WdfDeviceGetDriverTableIndex: PFN_WDFDEVICEGETDRIVER = device::wdf_device_get_driver;
    WdfDeviceInitSetPnpPowerEventCallbacksTableIndex: PFN_WDFDEVICEINITSETPNPPOWEREVENTCALLBACKS = device::wdf_device_init_set_pnp_power_event_callbacks;
    WdfDeviceCreateTableIndex: PFN_WDFDEVICECREATE = device::wdf_device_create;
    WdfDeviceCreateDeviceInterfaceTableIndex: PFN_WDFDEVICECREATEDEVICEINTERFACE = device::wdf_device_create_device_interface;
    WdfDriverCreateTableIndex: PFN_WDFDRIVERCREATE = driver::wdf_driver_create;
    WdfDriverWdmGetDriverObjectTableIndex: PFN_WDFDRIVERWDMGETDRIVEROBJECT = driver::wdf_driver_wdm_get_driver_object;
    WdfDriverOpenParametersRegistryKeyTableIndex: PFN_WDFDRIVEROPENPARAMETERSREGISTRYKEY = registry::wdf_driver_open_parameters_registry_key;
    WdfIoQueueCreateTableIndex: PFN_WDFIOQUEUECREATE = queue::wdf_io_queue_create;
    WdfIoQueueGetDeviceTableIndex: PFN_WDFIOQUEUEGETDEVICE = queue::wdf_io_queue_get_device;
    WdfIoTargetCreateTableIndex: PFN_WDFIOTARGETCREATE = io_target::wdf_io_target_create;
    WdfIoTargetOpenTableIndex: PFN_WDFIOTARGETOPEN = io_target::wdf_io_target_open;
    WdfIoTargetCloseForQueryRemoveTableIndex: PFN_WDFIOTARGETCLOSEFORQUERYREMOVE = io_target::wdf_io_target_close_for_query_remove;
    WdfIoTargetCloseTableIndex: PFN_WDFIOTARGETCLOSE = io_target::wdf_io_target_close;
    WdfIoTargetStartTableIndex: PFN_WDFIOTARGETSTART = io_target::wdf_io_target_start;
    WdfIoTargetStopTableIndex: PFN_WDFIOTARGETSTOP = io_target::wdf_io_target_stop;
    WdfIoTargetGetStateTableIndex: PFN_WDFIOTARGETGETSTATE = io_target::wdf_io_target_get_state;
    WdfIoTargetPurgeTableIndex: PFN_WDFIOTARGETPURGE = io_target::wdf_io_target_purge;
    WdfIoTargetFormatRequestForReadTableIndex: PFN_WDFIOTARGETFORMATREQUESTFORREAD = request::wdf_io_target_format_request_for_read;
    WdfIoTargetFormatRequestForWriteTableIndex: PFN_WDFIOTARGETFORMATREQUESTFORWRITE = request::wdf_io_target_format_request_for_write;
    WdfIoTargetFormatRequestForIoctlTableIndex: PFN_WDFIOTARGETFORMATREQUESTFORIOCTL = request::wdf_io_target_format_request_for_ioctl;
    WdfIoTargetFormatRequestForInternalIoctlTableIndex: PFN_WDFIOTARGETFORMATREQUESTFORINTERNALIOCTL = request::wdf_io_target_format_request_for_internal_ioctl;
    WdfMemoryCreatePreallocatedTableIndex: PFN_WDFMEMORYCREATEPREALLOCATED = request::wdf_memory_create_preallocated;
    WdfMemoryAssignBufferTableIndex: PFN_WDFMEMORYASSIGNBUFFER = request::wdf_memory_assign_buffer;
    WdfObjectGetTypedContextWorkerTableIndex: PFN_WDFOBJECTGETTYPEDCONTEXTWORKER = device::wdf_object_get_typed_context_worker;
    WdfObjectDeleteTableIndex: PFN_WDFOBJECTDELETE = device::wdf_object_delete;
    WdfRegistryCloseTableIndex: PFN_WDFREGISTRYCLOSE = registry::wdf_registry_close;
    WdfRegistryQueryULongTableIndex: PFN_WDFREGISTRYQUERYULONG = registry::wdf_registry_query_ulong;
    WdfRequestCreateTableIndex: PFN_WDFREQUESTCREATE = request::wdf_request_create;
    WdfRequestReuseTableIndex: PFN_WDFREQUESTREUSE = request::wdf_request_reuse;
    WdfRequestSendTableIndex: PFN_WDFREQUESTSEND = request::wdf_request_send;
    WdfRequestGetStatusTableIndex: PFN_WDFREQUESTGETSTATUS = request::wdf_request_get_status;
    WdfRequestCancelSentRequestTableIndex: PFN_WDFREQUESTCANCELSENTREQUEST = request::wdf_request_cancel_sent_request;
    WdfRequestSetCompletionRoutineTableIndex: PFN_WDFREQUESTSETCOMPLETIONROUTINE = request::wdf_request_set_completion_routine;
    WdfRequestCompleteWithInformationTableIndex: PFN_WDFREQUESTCOMPLETEWITHINFORMATION = queue::wdf_request_complete_with_information;
    WdfRequestRetrieveOutputBufferTableIndex: PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER = queue::wdf_request_retrieve_output_buffer;
    WdfRequestGetInformationTableIndex: PFN_WDFREQUESTGETINFORMATION = request::wdf_request_get_information;
    WdfTimerCreateTableIndex: PFN_WDFTIMERCREATE = timer::wdf_timer_create;
    WdfTimerStartTableIndex: PFN_WDFTIMERSTART = timer::wdf_timer_start;
    WdfTimerStopTableIndex: PFN_WDFTIMERSTOP = timer::wdf_timer_stop;
    WdfWorkItemCreateTableIndex: PFN_WDFWORKITEMCREATE = work_item::wdf_work_item_create;
    WdfWorkItemEnqueueTableIndex: PFN_WDFWORKITEMENQUEUE = work_item::wdf_work_item_enqueue;
    WdfWorkItemFlushTableIndex: PFN_WDFWORKITEMFLUSH = work_item::wdf_work_item_flush;
    WdfWaitLockCreateTableIndex: PFN_WDFWAITLOCKCREATE = wait_lock::wdf_wait_lock_create;
    WdfWaitLockAcquireTableIndex: PFN_WDFWAITLOCKACQUIRE = wait_lock::wdf_wait_lock_acquire;
    WdfWaitLockReleaseTableIndex: PFN_WDFWAITLOCKRELEASE = wait_lock::wdf_wait_lock_release;
};

/// `WdfFunctions_01033`: the function table of KMDF 1.33.
#[no_mangle]
pub static mut WdfFunctions_01033: *const WDFFUNC = FUNCTIONS.as_ptr();

/// What `WdfDriverGlobals` points to (the emulated functions ignore it).
static mut DRIVER_GLOBALS: u64 = 0;

/// `WdfDriverGlobals`: passed as every WDF function's first argument.
#[no_mangle]
pub static mut WdfDriverGlobals: PWDF_DRIVER_GLOBALS =
    (&raw mut DRIVER_GLOBALS).cast::<_WDF_DRIVER_GLOBALS>();

/// `WdfFunctionCount`: the entries of the table.
#[no_mangle]
pub static mut WdfFunctionCount: ULONG = ENTRIES as ULONG;
