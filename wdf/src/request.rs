//! Requests: types, memory handed to a device, and completion routines.
//!
//! A request is created by [`Platform::create_request`](crate::Platform::create_request),
//! formatted against an I/O target with
//! [`IoTarget::format_request`](crate::IoTarget::format_request) and sent with
//! [`IoTarget::send`](crate::IoTarget::send) (asynchronous, the completion
//! routine runs later on another context) or
//! [`IoTarget::send_synchronously`](crate::IoTarget::send_synchronously).

use alloc::sync::Arc;
use core::ptr::NonNull;

use crate::Status;

/// The kind of request (DMF `ContinuousRequestTarget_RequestType`).
///
/// The discriminants are DMF's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum RequestType {
    /// Not a valid request type; sending one fails with `STATUS_INVALID_PARAMETER`.
    #[default]
    Invalid = 0,
    /// `IRP_MJ_INTERNAL_DEVICE_CONTROL`: input and output buffers.
    InternalIoctl = 1,
    /// `IRP_MJ_DEVICE_CONTROL`: input and output buffers.
    Ioctl = 2,
    /// `IRP_MJ_READ`: output buffer only.
    Read = 3,
    /// `IRP_MJ_WRITE`: input buffer only.
    Write = 4,
}

impl RequestType {
    /// Whether this type carries an input buffer to the device.
    pub const fn uses_input(self) -> bool {
        matches!(
            self,
            RequestType::InternalIoctl | RequestType::Ioctl | RequestType::Write
        )
    }

    /// Whether this type carries an output buffer from the device.
    pub const fn uses_output(self) -> bool {
        matches!(
            self,
            RequestType::InternalIoctl | RequestType::Ioctl | RequestType::Read
        )
    }
}

/// A region of memory handed to a device for the duration of one send.
///
/// This is the only place where memory crosses the seam. A `RawBuffer` is
/// just a pointer and a length: creating one is safe, handing it to
/// [`IoTarget::format_request`](crate::IoTarget::format_request) is `unsafe`,
/// because the caller promises the memory stays valid, and is not touched by
/// anyone else, until the request has completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `RawBuffer` is an address and a length; the contract of
// `format_request` makes the formatting code responsible for exclusive access
// while the request is in flight, whichever thread completes it.
unsafe impl Send for RawBuffer {}
// SAFETY: as above; a shared `RawBuffer` exposes no access by itself.
unsafe impl Sync for RawBuffer {}

impl RawBuffer {
    /// Describes `slice` (the device will write into it).
    pub fn from_mut_slice(slice: &mut [u8]) -> Self {
        let len = slice.len();
        RawBuffer {
            ptr: NonNull::from(slice).cast(),
            len,
        }
    }

    /// Describes `slice` for a device that only reads it (input buffers).
    pub fn from_slice(slice: &[u8]) -> Self {
        let len = slice.len();
        RawBuffer {
            ptr: NonNull::from(slice).cast(),
            len,
        }
    }

    /// Describes `len` bytes at `ptr`.
    pub const fn from_raw_parts(ptr: NonNull<u8>, len: usize) -> Self {
        RawBuffer { ptr, len }
    }

    /// Start address.
    pub const fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, shared.
    ///
    /// # Safety
    ///
    /// The memory must be valid for reads of `len` bytes for `'a` and not be
    /// written by anyone else during `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        // SAFETY: the caller guarantees validity and absence of writers for 'a.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, exclusive.
    ///
    /// # Safety
    ///
    /// The memory must be valid for reads and writes of `len` bytes for `'a`
    /// and not be accessed by anyone else during `'a`.
    pub unsafe fn as_mut_slice<'a>(&self) -> &'a mut [u8] {
        // SAFETY: the caller guarantees validity and exclusivity for 'a.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// What a completed request reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The completion status (`WdfRequestGetStatus`).
    pub status: Status,
    /// The `Information` field: bytes transferred.
    pub information: usize,
}

/// Options of an asynchronous send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Time after which the framework cancels the request; `0` means no timeout.
    pub timeout_ms: u32,
}

/// The routine that receives a request's completion (`EVT_WDF_REQUEST_COMPLETION_ROUTINE`).
///
/// Called exactly once for every send that [`IoTarget::send`](crate::IoTarget::send)
/// accepted, in *dispatch* context: on any thread, possibly before `send`
/// returned, and it must not block. The `Arc` given to `send` is handed back,
/// so implementors usually are the per-request state of the layer above.
pub trait CompletionRoutine: Send + Sync + 'static {
    /// The request completed.
    fn completed(self: Arc<Self>, completion: Completed);
}
