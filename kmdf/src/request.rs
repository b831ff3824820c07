//! [`Request`] on a `WDFREQUEST` the driver creates and reuses.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use dmf_wdf::{RawBuffer, Request, Result};
use wdk_sys::{
    call_unsafe_wdf_function_binding, NTSTATUS, ULONG, WDFDEVICE, WDFIOTARGET, WDFMEMORY,
    WDFOBJECT, WDFREQUEST, WDF_REQUEST_REUSE_PARAMS,
};

use crate::context::{delete_object, object_attributes, wdf_size};
use crate::convert::wdk::nt_result;
use crate::io_target::KmdfIoTarget;

/// `WDF_REQUEST_REUSE_NO_FLAGS` (`_WDF_REQUEST_REUSE_FLAGS` in `wdfrequest.h`).
const WDF_REQUEST_REUSE_NO_FLAGS: ULONG = 0;

/// `STATUS_SUCCESS`.
const STATUS_SUCCESS: NTSTATUS = 0;

/// Which of the two memory objects a request keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BufferSlot {
    /// The buffer the device reads (`Write`, IOCTL input).
    Input,
    /// The buffer the device writes (`Read`, IOCTL output).
    Output,
}

/// A `WDFREQUEST` created by the driver (`WdfRequestCreate`, parent = the
/// client device), reused with `WdfRequestReuse` between sends.
///
/// WDF formats requests against `WDFMEMORY` objects, not raw buffers. Each
/// request therefore owns up to two memory objects (input and output), made
/// once with `WdfMemoryCreatePreallocated` (parent = the request) and pointed
/// at the caller's [`RawBuffer`] with `WdfMemoryAssignBuffer` on every
/// format: no allocation per request in steady state.
///
/// Dropping it deletes it (`WdfObjectDelete`), and with it its memory
/// objects; it must not be in flight then.
///
/// # Invariants
///
/// `handle` is a live request owned by this value; `input` and `output` are
/// null or live `WDFMEMORY` children of it.
pub struct KmdfRequest {
    handle: WDFREQUEST,
    input: AtomicPtr<c_void>,
    output: AtomicPtr<c_void>,
}

// SAFETY: a WDFREQUEST handle may be used from any thread; the seam's
// contract (one send at a time, formatting only while not in flight)
// serialises the calls that touch the memory objects.
unsafe impl Send for KmdfRequest {}
// SAFETY: as above; `reuse` and `cancel_sent` are thread-safe WDF methods.
unsafe impl Sync for KmdfRequest {}

impl KmdfRequest {
    /// `WdfRequestCreate(attributes(parent = device), target, &request)`.
    pub(crate) fn new(device: WDFDEVICE, target: Option<&KmdfIoTarget>) -> Result<Self> {
        let mut attributes = object_attributes(device as WDFOBJECT);
        let target: WDFIOTARGET = target.map_or(ptr::null_mut(), KmdfIoTarget::handle);
        let mut handle: WDFREQUEST = ptr::null_mut();
        // SAFETY: initialised attributes; `target` is null or a live target
        // (borrowed for the call); `handle` receives the request.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCreate,
                &mut attributes,
                target,
                &mut handle
            )
        };
        nt_result(status)?;
        // INVARIANT: created above, no memory objects yet.
        Ok(KmdfRequest {
            handle,
            input: AtomicPtr::new(ptr::null_mut()),
            output: AtomicPtr::new(ptr::null_mut()),
        })
    }

    /// The `WDFREQUEST` handle.
    pub fn handle(&self) -> WDFREQUEST {
        self.handle
    }

    /// The `WDFMEMORY` describing `buffer` for the next format: null for no
    /// buffer or an empty one, else the slot's memory object, created on
    /// first use and re-pointed at `buffer`.
    ///
    /// # Safety
    ///
    /// The request must not be in flight, and `buffer` must satisfy the
    /// contract of [`IoTarget::format_request`](dmf_wdf::IoTarget::format_request).
    pub(crate) unsafe fn memory_for(
        &self,
        slot: BufferSlot,
        buffer: Option<RawBuffer>,
    ) -> Result<WDFMEMORY> {
        let Some(buffer) = buffer.filter(|b| !b.is_empty()) else {
            return Ok(ptr::null_mut());
        };
        let cell = match slot {
            BufferSlot::Input => &self.input,
            BufferSlot::Output => &self.output,
        };
        let existing = cell.load(Ordering::Acquire) as WDFMEMORY;
        if existing.is_null() {
            // WDF_OBJECT_ATTRIBUTES_INIT + ParentObject = the request: the
            // memory object is deleted with the request.
            let mut attributes = object_attributes(self.handle as WDFOBJECT);
            let mut memory: WDFMEMORY = ptr::null_mut();
            // SAFETY: the buffer is valid for the request's use (caller
            // contract); the memory object does not own it.
            let status = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfMemoryCreatePreallocated,
                    &mut attributes,
                    buffer.as_ptr().cast::<c_void>(),
                    buffer.len(),
                    &mut memory
                )
            };
            nt_result(status)?;
            cell.store(memory as *mut c_void, Ordering::Release);
            Ok(memory)
        } else {
            // SAFETY: `existing` is a live preallocated memory object of this
            // request (invariant), not referenced by an in-flight send
            // (caller contract).
            let status = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfMemoryAssignBuffer,
                    existing,
                    buffer.as_ptr().cast::<c_void>(),
                    buffer.len()
                )
            };
            nt_result(status)?;
            Ok(existing)
        }
    }
}

impl Request for KmdfRequest {
    fn reuse(&self) -> Result<()> {
        // WDF_REQUEST_REUSE_PARAMS_INIT(&params, WDF_REQUEST_REUSE_NO_FLAGS,
        // STATUS_SUCCESS): zero, Size, Flags, Status.
        let mut params = WDF_REQUEST_REUSE_PARAMS {
            Size: wdf_size::<WDF_REQUEST_REUSE_PARAMS>(),
            Flags: WDF_REQUEST_REUSE_NO_FLAGS,
            Status: STATUS_SUCCESS,
            ..WDF_REQUEST_REUSE_PARAMS::default()
        };
        // SAFETY: live request (invariant), completed (seam contract).
        let status =
            unsafe { call_unsafe_wdf_function_binding!(WdfRequestReuse, self.handle, &mut params) };
        nt_result(status)
    }

    fn cancel_sent(&self) -> bool {
        // SAFETY: live request (invariant); IRQL <= DISPATCH_LEVEL.
        let initiated =
            unsafe { call_unsafe_wdf_function_binding!(WdfRequestCancelSentRequest, self.handle) };
        initiated != 0
    }
}

impl Drop for KmdfRequest {
    fn drop(&mut self) {
        // SAFETY: owned live request (invariant), not in flight (seam
        // contract); deleting it deletes its memory objects too.
        unsafe { delete_object(self.handle as WDFOBJECT) };
    }
}
