//! [`IoTarget`] on a remote `WDFIOTARGET`, and the request operations WDF
//! performs against a target (format, send, synchronous send).

use alloc::sync::Arc;
use core::alloc::Layout;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, Lock, OpenParams, RawBuffer, RequestType, Result,
    SendOptions, SentIoAction, Status, TargetEvents, TargetState,
};
use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_IO_TARGET_OPEN_TYPE, _WDF_IO_TARGET_PURGE_IO_ACTION,
    _WDF_IO_TARGET_SENT_IO_ACTION, _WDF_REQUEST_SEND_OPTIONS_FLAGS, NTSTATUS,
    PWDF_REQUEST_COMPLETION_PARAMS, ULONG, UNICODE_STRING, WDFCONTEXT, WDFDEVICE, WDFIOTARGET,
    WDFOBJECT, WDFREQUEST, WDF_IO_TARGET_OPEN_PARAMS, WDF_IO_TARGET_STATE,
    WDF_REQUEST_SEND_OPTIONS,
};

use crate::context::{
    attributes_with_payload, delete_object, mark_owner_deleting, owner_deleting, payload,
    set_payload, wdf_size,
};
use crate::convert::wdk::{failure, nt_result, status};
use crate::convert::{
    io_target_state, open_allowed, query_remove_outcome, relative_timeout_100ns,
    target_state_from_raw, unicode_string_byte_len,
};
use crate::lock::KmdfLock;
use crate::memory::{pool_allocate, pool_free};
use crate::request::{BufferSlot, KmdfRequest};

/// `FILE_OPEN` (`wdm.h`): open an existing file or device, fail otherwise.
const FILE_OPEN: ULONG = 0x0000_0001;
/// `FILE_NON_DIRECTORY_FILE` (`wdm.h`).
const FILE_NON_DIRECTORY_FILE: ULONG = 0x0000_0040;

/// `WDF_REQUEST_SEND_OPTION_TIMEOUT`.
const SEND_OPTION_TIMEOUT: ULONG =
    _WDF_REQUEST_SEND_OPTIONS_FLAGS::WDF_REQUEST_SEND_OPTION_TIMEOUT as ULONG;
/// `WDF_REQUEST_SEND_OPTION_SYNCHRONOUS`.
const SEND_OPTION_SYNCHRONOUS: ULONG =
    _WDF_REQUEST_SEND_OPTIONS_FLAGS::WDF_REQUEST_SEND_OPTION_SYNCHRONOUS as ULONG;

/// A remote I/O target: `WdfIoTargetCreate(device, ..)`, opened by symbolic
/// link name.
///
/// The [`TargetEvents`] given to [`IoTarget::open`] live in the target's
/// object context (released by its `EvtCleanupCallback`) and are called from
/// the `EvtIoTargetQueryRemove` / `RemoveCanceled` / `RemoveComplete`
/// trampolines. WDF requires a driver that registers these callbacks to close
/// the target itself, and here that is the [`TargetEvents`] implementation,
/// as the seam documents: it calls [`IoTarget::close_for_query_remove`]
/// before a successful `query_remove` returns (the trampoline returns its
/// status unchanged), [`IoTarget::reopen`] from `remove_canceled` if it wants
/// the target back, and [`IoTarget::close`] from `remove_complete`. For the
/// last one the trampoline adds a safety net: if the target is still open
/// after `remove_complete` returns, it calls `WdfIoTargetClose` itself, as WDF
/// does when no callback is registered (an open handle would keep the removed
/// device's stack alive).
///
/// It meets the seam's state contract (see [`IoTarget`]) as KMDF does: a new
/// target reads `Started` (`FxIoTarget::Construct`); whether it was ever
/// opened is kept here, for [`open_allowed`].
///
/// Dropping it closes it (`WdfIoTargetClose`, cancelling and waiting for sent
/// requests) and deletes it, at `PASSIVE_LEVEL`. Dropping it from one of its
/// own `TargetEvents` callbacks is allowed.
///
/// # Invariants
///
/// `handle` is a live remote target created by `KmdfIoTarget::new` with an
/// object context, owned by this value.
pub struct KmdfIoTarget {
    handle: WDFIOTARGET,
    ever_opened: AtomicBool,
    /// The UTF-16 name of the last open; WDF reopens by the same name.
    name: KmdfLock<Option<WideName>>,
}

// SAFETY: a WDFIOTARGET handle may be used from any thread; WDF synchronises
// its target state machine internally. The other fields are thread-safe.
unsafe impl Send for KmdfIoTarget {}
// SAFETY: as above.
unsafe impl Sync for KmdfIoTarget {}

impl KmdfIoTarget {
    /// `WdfIoTargetCreate(device, attributes(parent = device, context), &target)`.
    pub(crate) fn new(device: WDFDEVICE) -> Result<Self> {
        let mut attributes = attributes_with_payload(device as WDFOBJECT);
        let mut handle: WDFIOTARGET = ptr::null_mut();
        // SAFETY: live device; initialised attributes; `handle` receives the
        // target. PASSIVE_LEVEL (creation path).
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfIoTargetCreate,
                device,
                &mut attributes,
                &mut handle
            )
        };
        nt_result(status)?;
        // INVARIANT: created above with our context.
        Ok(KmdfIoTarget {
            handle,
            ever_opened: AtomicBool::new(false),
            name: KmdfLock::new(None),
        })
    }

    /// The `WDFIOTARGET` handle.
    pub fn handle(&self) -> WDFIOTARGET {
        self.handle
    }

    fn object(&self) -> WDFOBJECT {
        self.handle as WDFOBJECT
    }

    fn raw_state(&self) -> WDF_IO_TARGET_STATE {
        // SAFETY: live target (invariant); any IRQL <= DISPATCH_LEVEL.
        unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetGetState, self.handle) }
    }
}

// SAFETY: `send` hands the routine's `Arc` to `WdfRequestSend` as the
// completion context; WDF calls the completion routine exactly once for a
// request it accepted (TRUE), and for a refused one (FALSE) never, in which
// case `send` clears the routine and drops the `Arc` itself. The sender's
// writes happen before `WdfRequestSend`, and the I/O manager's completion
// (`IoCompleteRequest`, the DPC or thread running the routine) is ordered
// after it. The buffers are described by the request's preallocated memory
// objects; the lower driver accesses them only through the IRP, which it
// owns from `IoCallDriver` until it completes it, before the routine runs;
// `WdfRequestReuse`, re-formatting and `WdfObjectDelete` only retarget or
// delete the memory objects, never touching the bytes. A synchronous
// `WdfRequestSend` returns only once the request completed (on timeout KMDF
// cancels it and waits for the completion: `FxIoTarget::SubmitSync`).
unsafe impl IoTarget for KmdfIoTarget {
    type Request = KmdfRequest;

    /// `WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME` + the three PnP callbacks,
    /// then `WdfIoTargetOpen`. Refused with `STATUS_INVALID_DEVICE_STATE`
    /// unless the target was never opened or is closed ([`open_allowed`]), so
    /// no callback of a previous open can still read the events being
    /// replaced.
    fn open<E: TargetEvents>(&self, params: &OpenParams<'_>, events: Arc<E>) -> Result<()> {
        if !open_allowed(self.raw_state(), self.ever_opened.load(Ordering::Acquire)) {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        let name = WideName::new(params.symbolic_link)?;
        // WDF_IO_TARGET_OPEN_PARAMS_INIT_OPEN_BY_NAME(&p, &name, access):
        // zero, Size, Type = WdfIoTargetOpenByName, TargetDeviceName,
        // DesiredAccess, CreateOptions = FILE_NON_DIRECTORY_FILE,
        // CreateDisposition = FILE_OPEN.
        let mut open_params = WDF_IO_TARGET_OPEN_PARAMS {
            Size: wdf_size::<WDF_IO_TARGET_OPEN_PARAMS>(),
            Type: _WDF_IO_TARGET_OPEN_TYPE::WdfIoTargetOpenByName,
            TargetDeviceName: name.unicode_string(),
            DesiredAccess: params.open_mode.0,
            CreateOptions: FILE_NON_DIRECTORY_FILE,
            CreateDisposition: FILE_OPEN,
            ShareAccess: params.share_access.0,
            EvtIoTargetQueryRemove: Some(evt_query_remove::<E>),
            EvtIoTargetRemoveCanceled: Some(evt_remove_canceled::<E>),
            EvtIoTargetRemoveComplete: Some(evt_remove_complete::<E>),
            ..WDF_IO_TARGET_OPEN_PARAMS::default()
        };
        // The events must be in place before the open: the callbacks can run
        // as soon as it succeeds.
        // SAFETY: live target with our context; created or closed, so none of
        // its PnP callbacks can run now.
        unsafe { set_payload(self.object(), events) };
        // SAFETY: live target; `open_params` and the name buffer it points to
        // outlive the call. PASSIVE_LEVEL (seam contract for open).
        let status = unsafe {
            call_unsafe_wdf_function_binding!(WdfIoTargetOpen, self.handle, &mut open_params)
        };
        nt_result(status)?;
        self.ever_opened.store(true, Ordering::Release);
        // The previous name (if any) is freed after the lock is released.
        let previous = self.name.lock().replace(name);
        drop(previous);
        Ok(())
    }

    /// `WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN` + `WdfIoTargetOpen`.
    fn reopen(&self) -> Result<()> {
        // WDF_IO_TARGET_OPEN_PARAMS_INIT_REOPEN: zero, Size, Type = Reopen.
        let mut open_params = WDF_IO_TARGET_OPEN_PARAMS {
            Size: wdf_size::<WDF_IO_TARGET_OPEN_PARAMS>(),
            Type: _WDF_IO_TARGET_OPEN_TYPE::WdfIoTargetOpenReopen,
            ..WDF_IO_TARGET_OPEN_PARAMS::default()
        };
        // SAFETY: live target (invariant); PASSIVE_LEVEL.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(WdfIoTargetOpen, self.handle, &mut open_params)
        };
        nt_result(status)
    }

    /// `WdfIoTargetClose`, skipped if already closed. On a never-opened
    /// target it only moves the state to `Closed` (`FxIoTargetRemote::Close`:
    /// "not open, treat this as a cleanup").
    fn close(&self) {
        if matches!(
            self.raw_state(),
            io_target_state::CLOSED | io_target_state::DELETED
        ) {
            return;
        }
        // SAFETY: live, open target (invariant); PASSIVE_LEVEL.
        unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetClose, self.handle) };
    }

    /// `WdfIoTargetCloseForQueryRemove`.
    fn close_for_query_remove(&self) {
        // SAFETY: live target (invariant); called from the query-remove
        // callback at PASSIVE_LEVEL (seam contract).
        unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetCloseForQueryRemove, self.handle) };
    }

    /// `WdfIoTargetStart`.
    fn start(&self) -> Result<()> {
        // SAFETY: live target (invariant).
        let status = unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetStart, self.handle) };
        nt_result(status)
    }

    /// `WdfIoTargetStop` with `WdfIoTargetCancelSentIo`,
    /// `WdfIoTargetWaitForSentIoToComplete` or `WdfIoTargetLeaveSentIoPending`.
    fn stop(&self, action: SentIoAction) {
        let action = match action {
            SentIoAction::Cancel => _WDF_IO_TARGET_SENT_IO_ACTION::WdfIoTargetCancelSentIo,
            SentIoAction::WaitForCompletion => {
                _WDF_IO_TARGET_SENT_IO_ACTION::WdfIoTargetWaitForSentIoToComplete
            }
            SentIoAction::LeavePending => {
                _WDF_IO_TARGET_SENT_IO_ACTION::WdfIoTargetLeaveSentIoPending
            }
        };
        // SAFETY: live target (invariant); PASSIVE_LEVEL unless LeavePending.
        unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetStop, self.handle, action) };
    }

    /// `WdfIoTargetPurge` with `WdfIoTargetPurgeIoAndWait` or `WdfIoTargetPurgeIo`.
    fn purge(&self, wait: bool) {
        let action = if wait {
            _WDF_IO_TARGET_PURGE_IO_ACTION::WdfIoTargetPurgeIoAndWait
        } else {
            _WDF_IO_TARGET_PURGE_IO_ACTION::WdfIoTargetPurgeIo
        };
        // SAFETY: live target (invariant); PASSIVE_LEVEL when waiting.
        unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetPurge, self.handle, action) };
    }

    /// `WdfIoTargetGetState`, mapped by
    /// [`target_state_from_raw`].
    fn state(&self) -> TargetState {
        target_state_from_raw(self.raw_state())
    }

    /// `WdfIoTargetFormatRequestForRead` / `ForWrite` / `ForIoctl` /
    /// `ForInternalIoctl`, with the request's preallocated memory objects
    /// pointed at `input` / `output` and no offsets.
    unsafe fn format_request(
        &self,
        request: &KmdfRequest,
        request_type: RequestType,
        ioctl: u32,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
    ) -> Result<()> {
        let target = self.handle;
        let req = request.handle();
        let status = match request_type {
            RequestType::Invalid => return Err(Status::INVALID_PARAMETER),
            RequestType::Read => {
                // SAFETY: not in flight, buffer valid (caller contract).
                let out = unsafe { request.memory_for(BufferSlot::Output, output) }?;
                // SAFETY: live target and request; `out` is null or a live
                // memory object of the request.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfIoTargetFormatRequestForRead,
                        target,
                        req,
                        out,
                        ptr::null_mut(),
                        ptr::null_mut()
                    )
                }
            }
            RequestType::Write => {
                // SAFETY: not in flight, buffer valid (caller contract).
                let inp = unsafe { request.memory_for(BufferSlot::Input, input) }?;
                // SAFETY: as for Read.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfIoTargetFormatRequestForWrite,
                        target,
                        req,
                        inp,
                        ptr::null_mut(),
                        ptr::null_mut()
                    )
                }
            }
            RequestType::Ioctl => {
                // SAFETY: not in flight, buffers valid (caller contract).
                let inp = unsafe { request.memory_for(BufferSlot::Input, input) }?;
                // SAFETY: as above.
                let out = unsafe { request.memory_for(BufferSlot::Output, output) }?;
                // SAFETY: as for Read.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfIoTargetFormatRequestForIoctl,
                        target,
                        req,
                        ioctl,
                        inp,
                        ptr::null_mut(),
                        out,
                        ptr::null_mut()
                    )
                }
            }
            RequestType::InternalIoctl => {
                // SAFETY: not in flight, buffers valid (caller contract).
                let inp = unsafe { request.memory_for(BufferSlot::Input, input) }?;
                // SAFETY: as above.
                let out = unsafe { request.memory_for(BufferSlot::Output, output) }?;
                // SAFETY: as for Read.
                unsafe {
                    call_unsafe_wdf_function_binding!(
                        WdfIoTargetFormatRequestForInternalIoctl,
                        target,
                        req,
                        ioctl,
                        inp,
                        ptr::null_mut(),
                        out,
                        ptr::null_mut()
                    )
                }
            }
        };
        nt_result(status)
    }

    /// `WdfRequestSetCompletionRoutine(request, completion::<C>, Arc::into_raw(routine))`
    /// and `WdfRequestSend` (with `WDF_REQUEST_SEND_OPTION_TIMEOUT` when
    /// `timeout_ms > 0`). If WDF refuses the request it will not call the
    /// routine: the `Arc` is reclaimed and `WdfRequestGetStatus` returned.
    fn send<C: CompletionRoutine>(
        &self,
        request: &KmdfRequest,
        options: SendOptions,
        routine: Arc<C>,
    ) -> Result<()> {
        let req = request.handle();
        let context = Arc::into_raw(routine).cast_mut().cast::<c_void>();
        // SAFETY: live request, not in flight (seam contract); the context is
        // the Arc the trampoline for C takes back exactly once.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestSetCompletionRoutine,
                req,
                Some(evt_request_completion::<C>),
                context
            )
        };
        let mut send_options = send_options(0, options.timeout_ms);
        // SAFETY: live request and target; `send_options` outlives the call.
        let sent = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestSend, req, self.handle, &mut send_options)
        };
        if sent != 0 {
            return Ok(());
        }
        // SAFETY: live request whose send was refused.
        let nt = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetStatus, req) };
        // SAFETY: the refused request keeps no completion routine or context.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestSetCompletionRoutine,
                req,
                None,
                ptr::null_mut()
            )
        };
        // SAFETY: WDF does not call the completion routine of a request it
        // refused, so the reference handed over above is still ours.
        drop(unsafe { Arc::from_raw(context.cast_const().cast::<C>()) });
        Err(failure(nt, Status::UNSUCCESSFUL))
    }

    /// `WdfRequestSend` with `WDF_REQUEST_SEND_OPTION_SYNCHRONOUS` (and the
    /// timeout), then `WdfRequestGetStatus` / `WdfRequestGetInformation`.
    /// Any completion routine left from an earlier asynchronous send is
    /// cleared first.
    fn send_synchronously(&self, request: &KmdfRequest, timeout_ms: u32) -> Result<usize> {
        let req = request.handle();
        // SAFETY: live request, not in flight (seam contract).
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestSetCompletionRoutine,
                req,
                None,
                ptr::null_mut()
            )
        };
        let mut send_options = send_options(SEND_OPTION_SYNCHRONOUS, timeout_ms);
        // SAFETY: live request and target; PASSIVE_LEVEL (seam contract);
        // returns when the request has completed.
        let sent = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestSend, req, self.handle, &mut send_options)
        };
        // SAFETY: live, completed request.
        let nt = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetStatus, req) };
        if sent == 0 {
            return Err(failure(nt, Status::UNSUCCESSFUL));
        }
        nt_result(nt)?;
        // SAFETY: live, completed request.
        let information =
            unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetInformation, req) };
        Ok(information as usize)
    }
}

impl Drop for KmdfIoTarget {
    fn drop(&mut self) {
        // SAFETY: live target (invariant).
        unsafe { mark_owner_deleting(self.object()) };
        self.close();
        // SAFETY: owned live target, closed; deleted once. Its cleanup
        // callback releases the events.
        unsafe { delete_object(self.object()) };
    }
}

/// `WDF_REQUEST_SEND_OPTIONS_INIT(&o, flags)`, plus
/// `WDF_REQUEST_SEND_OPTIONS_SET_TIMEOUT(&o, WDF_REL_TIMEOUT_IN_MS(timeout_ms))`
/// when `timeout_ms > 0`.
fn send_options(flags: ULONG, timeout_ms: u32) -> WDF_REQUEST_SEND_OPTIONS {
    let mut options = WDF_REQUEST_SEND_OPTIONS {
        Size: wdf_size::<WDF_REQUEST_SEND_OPTIONS>(),
        Flags: flags,
        ..WDF_REQUEST_SEND_OPTIONS::default()
    };
    if timeout_ms > 0 {
        options.Flags |= SEND_OPTION_TIMEOUT;
        options.Timeout = relative_timeout_100ns(u64::from(timeout_ms));
    }
    options
}

/// `EvtRequestCompletionRoutine` for routine type `C`: takes back the `Arc`
/// handed over by [`KmdfIoTarget::send`] and reports the `IoStatus`.
unsafe extern "C" fn evt_request_completion<C: CompletionRoutine>(
    request: WDFREQUEST,
    _target: WDFIOTARGET,
    params: PWDF_REQUEST_COMPLETION_PARAMS,
    context: WDFCONTEXT,
) {
    // SAFETY: `context` is the Arc::into_raw of `send`, and WDF calls the
    // completion routine exactly once per accepted send.
    let routine = unsafe { Arc::from_raw(context.cast_const().cast::<C>()) };
    let completed = if params.is_null() {
        // SAFETY: live request, completed.
        let nt = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetStatus, request) };
        // SAFETY: as above.
        let information =
            unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetInformation, request) };
        Completed {
            status: status(nt),
            information: information as usize,
        }
    } else {
        // SAFETY: WDF passes valid completion parameters for the duration of
        // the call.
        let io_status = unsafe { &(*params).IoStatus };
        // SAFETY: `Status` is the active member of the union after completion.
        let nt = unsafe { io_status.__bindgen_anon_1.Status };
        Completed {
            status: status(nt),
            information: io_status.Information as usize,
        }
    };
    routine.completed(completed);
}

/// `EvtIoTargetQueryRemove` for events type `E`: returns
/// [`TargetEvents::query_remove`]'s status unchanged. Closing the target on
/// success (`WdfIoTargetCloseForQueryRemove`, which WDF requires from a
/// driver that registers this callback) is the implementation's job, as the
/// seam documents; if it did not (or the target has no events), the
/// trampoline closes it ([`query_remove_outcome`]), since an open handle
/// would hold the removal up.
unsafe extern "C" fn evt_query_remove<E: TargetEvents>(target: WDFIOTARGET) -> NTSTATUS {
    // SAFETY: WDF passes the live target opened with `evt_query_remove::<E>`,
    // whose payload is an Arc<E>.
    let client = unsafe { payload::<E>(target as WDFOBJECT) }.map(|events| events.query_remove());
    // SAFETY: WDF holds a reference on the target for the whole callback.
    let state = unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetGetState, target) };
    let outcome = query_remove_outcome(client, state);
    if outcome.close_for_query_remove {
        // SAFETY: inside the target's query-remove callback, PASSIVE_LEVEL.
        unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetCloseForQueryRemove, target) };
    }
    outcome.status.raw()
}

/// `EvtIoTargetRemoveCanceled` for events type `E`.
unsafe extern "C" fn evt_remove_canceled<E: TargetEvents>(target: WDFIOTARGET) {
    // SAFETY: as in `evt_query_remove`.
    if let Some(events) = unsafe { payload::<E>(target as WDFOBJECT) } {
        events.remove_canceled();
    }
}

/// `EvtIoTargetRemoveComplete` for events type `E`: calls
/// [`TargetEvents::remove_complete`], then closes the target if the
/// implementation did not (WDF: "EvtIoTargetRemoveComplete must call
/// WdfIoTargetClose"; a handle left open keeps the removed device's stack
/// from going away).
unsafe extern "C" fn evt_remove_complete<E: TargetEvents>(target: WDFIOTARGET) {
    let object = target as WDFOBJECT;
    // SAFETY: as in `evt_query_remove`.
    if let Some(events) = unsafe { payload::<E>(object) } {
        events.remove_complete();
    }
    // SAFETY: WDF holds a reference on the target for the whole callback.
    if !unsafe { owner_deleting(object) } {
        // SAFETY: as above.
        let state = unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetGetState, target) };
        if !matches!(state, io_target_state::CLOSED | io_target_state::DELETED) {
            // WDF: "EvtIoTargetRemoveComplete must call WdfIoTargetClose".
            // SAFETY: inside the target's remove-complete callback.
            unsafe { call_unsafe_wdf_function_binding!(WdfIoTargetClose, target) };
        }
    }
}

/// A symbolic link name as UTF-16 in a non-paged pool block, for
/// `WDF_IO_TARGET_OPEN_PARAMS.TargetDeviceName`.
///
/// # Invariants
///
/// `ptr` points to `units` initialised `u16`s in a block from
/// `pool_allocate(Layout::array::<u16>(units))`, owned by this value;
/// `units * 2 <= u16::MAX`.
struct WideName {
    ptr: NonNull<u16>,
    units: usize,
}

// SAFETY: the value exclusively owns its pool block.
unsafe impl Send for WideName {}

impl WideName {
    /// Encodes `name`; `STATUS_INVALID_PARAMETER` if it is empty or too long
    /// for a `UNICODE_STRING`, `STATUS_INSUFFICIENT_RESOURCES` without memory.
    fn new(name: &str) -> Result<Self> {
        let bytes = unicode_string_byte_len(name)
            .filter(|&b| b > 0)
            .ok_or(Status::INVALID_PARAMETER)?;
        let units = usize::from(bytes) / 2;
        let layout = Layout::array::<u16>(units).map_err(|_| Status::INVALID_PARAMETER)?;
        let ptr = pool_allocate(layout)
            .ok_or(Status::INSUFFICIENT_RESOURCES)?
            .cast::<u16>();
        for (i, unit) in name.encode_utf16().enumerate() {
            // SAFETY: i < units (the same encoding was counted above), so the
            // element is inside the block of `units` u16s.
            let element = unsafe { ptr.add(i) };
            // SAFETY: in bounds and aligned (pool blocks are 16-aligned).
            unsafe { element.write(unit) };
        }
        // INVARIANT: all `units` elements written above.
        Ok(WideName { ptr, units })
    }

    /// A `UNICODE_STRING` over the buffer (no terminator:
    /// `MaximumLength == Length`).
    fn unicode_string(&self) -> UNICODE_STRING {
        // Fits by the invariant.
        let bytes = (self.units * 2) as u16;
        UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: self.ptr.as_ptr(),
        }
    }
}

impl Drop for WideName {
    fn drop(&mut self) {
        if let Ok(layout) = Layout::array::<u16>(self.units) {
            // SAFETY: the block came from pool_allocate with this layout
            // (invariant) and is freed once.
            unsafe { pool_free(self.ptr.cast::<u8>(), layout) };
        }
    }
}
