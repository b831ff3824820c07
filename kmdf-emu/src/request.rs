//! Requests and memory: `WdfRequestCreate` / `Reuse` / `Send` /
//! `CancelSentRequest` / `GetStatus` / `GetInformation` /
//! `SetCompletionRoutine`, `WdfIoTargetFormatRequestFor*`,
//! `WdfMemoryCreatePreallocated` / `AssignBuffer` (the requests the
//! framework presents to a queue are in `queue`).
//!
//! A driver-created request is a simulator request: formatting, sending,
//! cancelling and reusing it are the simulator's (with its strict checks:
//! reuse or deletion while in flight, a send of an unformatted request, ...).
//! The emulation adds what WDF keeps per request: the completion routine
//! and its context, the last completion status and information, and the
//! target it was formatted for.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use dmf_sim::SimRequest;
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, Platform, RawBuffer, Request, RequestType, SendOptions,
    Status,
};
use wdk_sys::{
    _IO_STATUS_BLOCK__bindgen_ty_1, _WDF_REQUEST_SEND_OPTIONS_FLAGS, BOOLEAN, IO_STATUS_BLOCK,
    NTSTATUS, PFN_WDF_REQUEST_COMPLETION_ROUTINE, PLONGLONG, PVOID, PWDFMEMORY_OFFSET,
    PWDF_DRIVER_GLOBALS, PWDF_OBJECT_ATTRIBUTES, PWDF_REQUEST_REUSE_PARAMS,
    PWDF_REQUEST_SEND_OPTIONS, ULONG, ULONG_PTR, WDFCONTEXT, WDFIOTARGET, WDFMEMORY, WDFREQUEST,
    WDF_REQUEST_COMPLETION_PARAMS, WDF_REQUEST_REUSE_PARAMS, WDF_REQUEST_SEND_OPTIONS,
};

use crate::kernel::assert_passive;
use crate::machine::current;
use crate::object::{self, create, get_live, lock, Attributes, Kind, Object};

/// `STATUS_INVALID_PARAMETER`.
const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32 as i32;

/// `WdfRequestTypeRead` / `Write` / `DeviceControl` / `DeviceControlInternal`
/// (the `IRP_MJ_*` codes).
fn wdf_request_type(t: RequestType) -> i32 {
    match t {
        RequestType::Read => 0x03,
        RequestType::Write => 0x04,
        RequestType::Ioctl => 0x0E,
        RequestType::InternalIoctl => 0x0F,
        RequestType::Invalid => -1,
    }
}

/// What WDF keeps per driver-created request.
struct RequestState {
    routine: PFN_WDF_REQUEST_COMPLETION_ROUTINE,
    context: usize,
    status: NTSTATUS,
    information: usize,
    formatted_for: usize,
    request_type: RequestType,
}

/// A `WDFREQUEST` the driver created.
pub(crate) struct RequestData {
    sim: SimRequest,
    state: Mutex<RequestState>,
}

impl RequestData {
    /// Deleting a request that is in flight is a verifier break in KMDF
    /// (`FxRequest` deletion while owned by a target).
    pub(crate) fn dispose(&self, object: &Arc<Object>) {
        assert!(
            !self.sim.is_in_flight(),
            "WdfObjectDelete: {object:?} is still in flight (sent and not completed)"
        );
    }
}

/// A `WDFMEMORY` over a caller's buffer.
pub(crate) struct MemoryData {
    buffer: Mutex<(usize, usize)>,
}

#[track_caller]
fn request_data<'a>(object: &'a Arc<Object>, function: &str) -> &'a RequestData {
    match &object.kind {
        Kind::Request(r) => r,
        _ => panic!("{function}: {object:?} is not a driver-created WDFREQUEST"),
    }
}

pub(crate) unsafe extern "C" fn wdf_request_create(
    _globals: PWDF_DRIVER_GLOBALS,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    target: WDFIOTARGET,
    request: *mut WDFREQUEST,
) -> NTSTATUS {
    const F: &str = "WdfRequestCreate";
    assert!(!request.is_null(), "{F}: NULL request");
    if !target.is_null() {
        let t = get_live(target.cast(), F);
        assert!(
            matches!(t.kind, Kind::IoTarget(_)),
            "{F}: {t:?} is not a WDFIOTARGET"
        );
    }
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let sim = match current().sim.create_request(None) {
        Ok(r) => r,
        Err(s) => return s.raw(),
    };
    let object = create(
        Kind::Request(RequestData {
            sim,
            state: Mutex::new(RequestState {
                routine: None,
                context: 0,
                status: 0,
                information: 0,
                formatted_for: 0,
                request_type: RequestType::Invalid,
            }),
        }),
        &attributes,
    );
    // SAFETY: caller contract.
    unsafe { request.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_request_reuse(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    params: PWDF_REQUEST_REUSE_PARAMS,
) -> NTSTATUS {
    const F: &str = "WdfRequestReuse";
    let object = get_live(request.cast(), F);
    let r = request_data(&object, F);
    assert!(!params.is_null(), "{F}: NULL params");
    // SAFETY: caller contract.
    let params = unsafe { &*params };
    assert_eq!(
        params.Size as usize,
        size_of::<WDF_REQUEST_REUSE_PARAMS>(),
        "{F}: WDF_REQUEST_REUSE_PARAMS.Size"
    );
    assert!(
        params.Flags == 0 && params.NewIrp.is_null(),
        "{F}: only WDF_REQUEST_REUSE_NO_FLAGS is emulated"
    );
    // The simulator panics on a request in flight, as the verifier does.
    if let Err(s) = r.sim.reuse() {
        return s.raw();
    }
    // FxRequest::Reuse: the status becomes the one given, the completion
    // routine and the formatting are forgotten.
    let mut st = lock(&r.state);
    st.status = params.Status;
    st.information = 0;
    st.routine = None;
    st.context = 0;
    st.formatted_for = 0;
    st.request_type = RequestType::Invalid;
    0
}

pub(crate) unsafe extern "C" fn wdf_request_set_completion_routine(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    routine: PFN_WDF_REQUEST_COMPLETION_ROUTINE,
    context: WDFCONTEXT,
) {
    const F: &str = "WdfRequestSetCompletionRoutine";
    let object = get_live(request.cast(), F);
    let r = request_data(&object, F);
    assert!(
        !r.sim.is_in_flight(),
        "{F}: {object:?} is in flight (the routine of a sent request cannot change)"
    );
    let mut st = lock(&r.state);
    st.routine = routine;
    st.context = context as usize;
}

pub(crate) unsafe extern "C" fn wdf_request_get_status(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
) -> NTSTATUS {
    let object = object::get(request.cast(), "WdfRequestGetStatus");
    match &object.kind {
        Kind::Request(r) => lock(&r.state).status,
        Kind::Incoming(i) => lock(&i.completed).map_or(0, |(s, _)| s),
        _ => panic!("WdfRequestGetStatus: {object:?} is not a WDFREQUEST"),
    }
}

pub(crate) unsafe extern "C" fn wdf_request_get_information(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
) -> ULONG_PTR {
    let object = object::get(request.cast(), "WdfRequestGetInformation");
    let r = request_data(&object, "WdfRequestGetInformation");
    let information = lock(&r.state).information;
    information as ULONG_PTR
}

pub(crate) unsafe extern "C" fn wdf_request_cancel_sent_request(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
) -> BOOLEAN {
    const F: &str = "WdfRequestCancelSentRequest";
    let object = object::get(request.cast(), F);
    let r = request_data(&object, F);
    BOOLEAN::from(r.sim.cancel_sent())
}

/// The completion of one asynchronous send: stores the status and calls the
/// driver's routine with `WDF_REQUEST_COMPLETION_PARAMS`.
struct Completion {
    request: Arc<Object>,
    target: usize,
    routine: PFN_WDF_REQUEST_COMPLETION_ROUTINE,
    context: usize,
}

impl CompletionRoutine for Completion {
    fn completed(self: Arc<Self>, completion: Completed) {
        let r = request_data(&self.request, "request completion");
        let request_type = {
            let mut st = lock(&r.state);
            st.status = completion.status.raw();
            st.information = completion.information;
            st.request_type
        };
        let Some(routine) = self.routine else {
            return;
        };
        let mut params = WDF_REQUEST_COMPLETION_PARAMS {
            Size: size_of::<WDF_REQUEST_COMPLETION_PARAMS>() as ULONG,
            Type: wdf_request_type(request_type),
            IoStatus: IO_STATUS_BLOCK {
                __bindgen_anon_1: _IO_STATUS_BLOCK__bindgen_ty_1 {
                    Status: completion.status.raw(),
                },
                Information: completion.information as ULONG_PTR,
            },
            Parameters: [0; 6],
        };
        // SAFETY: the driver's completion routine with its context, called
        // once per accepted send, in the simulator's dispatch context; the
        // parameters live for the call and the request is referenced.
        unsafe {
            routine(
                self.request.handle().cast(),
                self.target as WDFIOTARGET,
                &mut params,
                self.context as WDFCONTEXT,
            )
        };
    }
}

/// A relative timeout in 100 ns units (negative) as whole milliseconds,
/// rounded up; absolute (positive) timeouts are not emulated.
pub(crate) fn relative_ms(timeout_100ns: i64, function: &str) -> u32 {
    assert!(
        timeout_100ns <= 0,
        "{function}: absolute times are not emulated"
    );
    u32::try_from(timeout_100ns.unsigned_abs().div_ceil(10_000)).unwrap_or(u32::MAX)
}

pub(crate) unsafe extern "C" fn wdf_request_send(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    target: WDFIOTARGET,
    options: PWDF_REQUEST_SEND_OPTIONS,
) -> BOOLEAN {
    const F: &str = "WdfRequestSend";
    let object = get_live(request.cast(), F);
    let r = request_data(&object, F);
    let target_object = get_live(target.cast(), F);
    let Kind::IoTarget(t) = &target_object.kind else {
        panic!("{F}: {target_object:?} is not a WDFIOTARGET");
    };
    let (flags, timeout) = if options.is_null() {
        (0, 0)
    } else {
        // SAFETY: caller contract.
        let o = unsafe { &*options };
        assert_eq!(
            o.Size as usize,
            size_of::<WDF_REQUEST_SEND_OPTIONS>(),
            "{F}: WDF_REQUEST_SEND_OPTIONS.Size"
        );
        (o.Flags, o.Timeout)
    };
    let timeout_flag = _WDF_REQUEST_SEND_OPTIONS_FLAGS::WDF_REQUEST_SEND_OPTION_TIMEOUT as ULONG;
    let sync_flag = _WDF_REQUEST_SEND_OPTIONS_FLAGS::WDF_REQUEST_SEND_OPTION_SYNCHRONOUS as ULONG;
    assert!(
        flags & !(timeout_flag | sync_flag) == 0,
        "{F}: only the TIMEOUT and SYNCHRONOUS send options are emulated (flags 0x{flags:X})"
    );
    // A timeout of 0 with the flag set is no timeout.
    let timeout_ms = if flags & timeout_flag != 0 {
        relative_ms(timeout, F)
    } else {
        0
    };
    {
        let st = lock(&r.state);
        assert!(
            st.formatted_for == 0 || st.formatted_for == target as usize,
            "{F}: {object:?} was formatted for another target"
        );
    }
    if flags & sync_flag != 0 {
        // WDF_REQUEST_SEND_OPTION_SYNCHRONOUS: PASSIVE_LEVEL only.
        assert_passive("WdfRequestSend (synchronous)");
        let (status, information) = match t.sim().send_synchronously(&r.sim, timeout_ms) {
            Ok(n) => (Status::SUCCESS, n),
            Err(s) => (s, 0),
        };
        let mut st = lock(&r.state);
        st.status = status.raw();
        st.information = information;
        return BOOLEAN::from(status.is_success());
    }
    let (routine, context) = {
        let st = lock(&r.state);
        (st.routine, st.context)
    };
    let completion = Arc::new(Completion {
        request: Arc::clone(&object),
        target: target as usize,
        routine,
        context,
    });
    match t.sim().send(&r.sim, SendOptions { timeout_ms }, completion) {
        Ok(()) => 1,
        Err(s) => {
            // Refused before it was sent: no completion routine runs, and
            // WdfRequestGetStatus reports why.
            lock(&r.state).status = s.raw();
            0
        }
    }
}

/// The buffer of a `WDFMEMORY` (null: no buffer).
fn memory_buffer(
    memory: WDFMEMORY,
    offset: PWDFMEMORY_OFFSET,
    function: &str,
) -> Option<RawBuffer> {
    assert!(
        offset.is_null(),
        "{function}: buffer offsets are not emulated"
    );
    if memory.is_null() {
        return None;
    }
    let object = get_live(memory.cast(), function);
    let Kind::Memory(m) = &object.kind else {
        panic!("{function}: {object:?} is not a WDFMEMORY");
    };
    let (ptr, len) = *lock(&m.buffer);
    Some(RawBuffer::from_raw_parts(
        NonNull::new(ptr as *mut u8).expect("a memory object has a buffer"),
        len,
    ))
}

/// `WdfIoTargetFormatRequestFor*`: the simulator formats the request; the
/// emulation remembers the target and the type.
#[allow(clippy::too_many_arguments)]
fn format(
    function: &str,
    target: WDFIOTARGET,
    request: WDFREQUEST,
    request_type: RequestType,
    ioctl: u32,
    input: Option<RawBuffer>,
    output: Option<RawBuffer>,
) -> NTSTATUS {
    let target_object = get_live(target.cast(), function);
    let Kind::IoTarget(t) = &target_object.kind else {
        panic!("{function}: {target_object:?} is not a WDFIOTARGET");
    };
    let object = get_live(request.cast(), function);
    let r = request_data(&object, function);
    // SAFETY: the memory objects' buffers are the driver's, valid until the
    // request completes or is reformatted (WDF's contract for preallocated
    // memory).
    let result = unsafe {
        t.sim()
            .format_request(&r.sim, request_type, ioctl, input, output)
    };
    match result {
        Ok(()) => {
            let mut st = lock(&r.state);
            st.formatted_for = target as usize;
            st.request_type = request_type;
            0
        }
        Err(s) => s.raw(),
    }
}

pub(crate) unsafe extern "C" fn wdf_io_target_format_request_for_read(
    _globals: PWDF_DRIVER_GLOBALS,
    target: WDFIOTARGET,
    request: WDFREQUEST,
    output: WDFMEMORY,
    output_offset: PWDFMEMORY_OFFSET,
    device_offset: PLONGLONG,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetFormatRequestForRead";
    assert!(
        device_offset.is_null(),
        "{F}: device offsets are not emulated"
    );
    let out = memory_buffer(output, output_offset, F);
    format(F, target, request, RequestType::Read, 0, None, out)
}

pub(crate) unsafe extern "C" fn wdf_io_target_format_request_for_write(
    _globals: PWDF_DRIVER_GLOBALS,
    target: WDFIOTARGET,
    request: WDFREQUEST,
    input: WDFMEMORY,
    input_offset: PWDFMEMORY_OFFSET,
    device_offset: PLONGLONG,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetFormatRequestForWrite";
    assert!(
        device_offset.is_null(),
        "{F}: device offsets are not emulated"
    );
    let inp = memory_buffer(input, input_offset, F);
    format(F, target, request, RequestType::Write, 0, inp, None)
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn wdf_io_target_format_request_for_ioctl(
    _globals: PWDF_DRIVER_GLOBALS,
    target: WDFIOTARGET,
    request: WDFREQUEST,
    ioctl: ULONG,
    input: WDFMEMORY,
    input_offset: PWDFMEMORY_OFFSET,
    output: WDFMEMORY,
    output_offset: PWDFMEMORY_OFFSET,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetFormatRequestForIoctl";
    let inp = memory_buffer(input, input_offset, F);
    let out = memory_buffer(output, output_offset, F);
    format(F, target, request, RequestType::Ioctl, ioctl, inp, out)
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn wdf_io_target_format_request_for_internal_ioctl(
    _globals: PWDF_DRIVER_GLOBALS,
    target: WDFIOTARGET,
    request: WDFREQUEST,
    ioctl: ULONG,
    input: WDFMEMORY,
    input_offset: PWDFMEMORY_OFFSET,
    output: WDFMEMORY,
    output_offset: PWDFMEMORY_OFFSET,
) -> NTSTATUS {
    const F: &str = "WdfIoTargetFormatRequestForInternalIoctl";
    let inp = memory_buffer(input, input_offset, F);
    let out = memory_buffer(output, output_offset, F);
    format(
        F,
        target,
        request,
        RequestType::InternalIoctl,
        ioctl,
        inp,
        out,
    )
}

pub(crate) unsafe extern "C" fn wdf_memory_create_preallocated(
    _globals: PWDF_DRIVER_GLOBALS,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    buffer: PVOID,
    size: usize,
    memory: *mut WDFMEMORY,
) -> NTSTATUS {
    const F: &str = "WdfMemoryCreatePreallocated";
    assert!(!memory.is_null(), "{F}: NULL memory");
    if buffer.is_null() || size == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let object = create(
        Kind::Memory(MemoryData {
            buffer: Mutex::new((buffer as usize, size)),
        }),
        &attributes,
    );
    // SAFETY: caller contract.
    unsafe { memory.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_memory_assign_buffer(
    _globals: PWDF_DRIVER_GLOBALS,
    memory: WDFMEMORY,
    buffer: PVOID,
    size: usize,
) -> NTSTATUS {
    const F: &str = "WdfMemoryAssignBuffer";
    let object = get_live(memory.cast(), F);
    let Kind::Memory(m) = &object.kind else {
        panic!("{F}: {object:?} is not a WDFMEMORY");
    };
    if buffer.is_null() || size == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    *lock(&m.buffer) = (buffer as usize, size);
    0
}
