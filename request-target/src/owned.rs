//! Safe asynchronous sends: buffers the send owns while the request is in
//! flight and hands back with the completion.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use dmf_buffer_pool::PoolBuffer;
use dmf_wdf::{Platform, RawBuffer, RequestType, Status};

use crate::completion::DeliveryContext;
use crate::ids::{CancelId, ReuseId};

/// A buffer given to a safe send ([`Sender::send`](crate::Sender::send) and
/// friends): the send owns it while the request is in flight and hands it
/// back, unchanged in size, with the completion ([`OwnedSendCompleted`]) or
/// with the refusal ([`SendError`]).
///
/// Build one with `From` (`Vec<u8>`, `Box<[u8]>`, a [`PoolBuffer`]) or
/// [`SendBuffer::pool_prefix`]; none of these allocates, so a send of a
/// buffer the client keeps reusing allocates nothing.
///
/// ```
/// use dmf_request_target::SendBuffer;
/// use dmf_sim::Sim;
/// let buffer: SendBuffer<Sim> = vec![1u8, 2, 3].into();
/// assert_eq!(buffer.as_slice(), &[1, 2, 3]);
/// assert_eq!(buffer.into_vec().unwrap(), vec![1, 2, 3]);
/// ```
pub enum SendBuffer<P: Platform> {
    /// A byte vector: its `len()` bytes (not its capacity) are the buffer.
    Vec(Vec<u8>),
    /// A boxed byte slice.
    Boxed(Box<[u8]>),
    /// The first `len` bytes of a pool buffer's data area.
    Pool {
        /// The buffer (it goes home when dropped).
        buffer: PoolBuffer<P>,
        /// Bytes of its data area the device sees (clamped to its size).
        len: usize,
    },
}

impl<P: Platform> SendBuffer<P> {
    /// The first `len` bytes (clamped to the buffer's size) of a pool
    /// buffer's data area.
    pub fn pool_prefix(buffer: PoolBuffer<P>, len: usize) -> Self {
        let len = len.min(buffer.buffer_size());
        SendBuffer::Pool { buffer, len }
    }

    /// The bytes the device sees.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SendBuffer::Vec(v) => v,
            SendBuffer::Boxed(b) => b,
            SendBuffer::Pool { buffer, len } => {
                let data = buffer.data();
                &data[..(*len).min(data.len())]
            }
        }
    }

    /// The bytes the device sees, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            SendBuffer::Vec(v) => v,
            SendBuffer::Boxed(b) => b,
            SendBuffer::Pool { buffer, len } => {
                let data = buffer.data_mut();
                let len = (*len).min(data.len());
                &mut data[..len]
            }
        }
    }

    /// Length in bytes of what the device sees.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the buffer has no bytes (a send treats it as no buffer, and
    /// still hands it back).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vector, if this is [`SendBuffer::Vec`]; otherwise `self` back.
    pub fn into_vec(self) -> Result<Vec<u8>, Self> {
        match self {
            SendBuffer::Vec(v) => Ok(v),
            other => Err(other),
        }
    }

    /// The boxed slice, if this is [`SendBuffer::Boxed`]; otherwise `self` back.
    pub fn into_boxed(self) -> Result<Box<[u8]>, Self> {
        match self {
            SendBuffer::Boxed(b) => Ok(b),
            other => Err(other),
        }
    }

    /// The pool buffer, if this is [`SendBuffer::Pool`]; otherwise `self` back.
    pub fn into_pool_buffer(self) -> Result<PoolBuffer<P>, Self> {
        match self {
            SendBuffer::Pool { buffer, .. } => Ok(buffer),
            other => Err(other),
        }
    }

    /// Gives the memory up to the send: the device may use it until
    /// [`Parked::unpark`].
    pub(crate) fn park(self) -> Parked<P> {
        let (kind, ptr, len, capacity) = match self {
            SendBuffer::Vec(v) => {
                let mut v = ManuallyDrop::new(v);
                let (len, capacity) = (v.len(), v.capacity());
                (ParkedKind::Vec, non_null(v.as_mut_ptr()), len, capacity)
            }
            SendBuffer::Boxed(b) => {
                let len = b.len();
                let ptr = Box::into_raw(b).cast::<u8>();
                (ParkedKind::Boxed, non_null(ptr), len, 0)
            }
            SendBuffer::Pool { buffer, len } => {
                // Never more than the data area, whatever `len` says.
                let len = len.min(buffer.buffer_size());
                (ParkedKind::Pool, buffer.into_raw(), len, 0)
            }
        };
        Parked {
            kind,
            ptr,
            len,
            capacity,
            _owns: PhantomData,
        }
    }
}

/// `ptr` as `NonNull` (vectors and boxes never have null data pointers, even
/// when empty: they are dangling then).
fn non_null(ptr: *mut u8) -> NonNull<u8> {
    NonNull::new(ptr).unwrap_or(NonNull::dangling())
}

impl<P: Platform> From<Vec<u8>> for SendBuffer<P> {
    fn from(v: Vec<u8>) -> Self {
        SendBuffer::Vec(v)
    }
}

impl<P: Platform> From<Box<[u8]>> for SendBuffer<P> {
    fn from(b: Box<[u8]>) -> Self {
        SendBuffer::Boxed(b)
    }
}

impl<P: Platform> From<PoolBuffer<P>> for SendBuffer<P> {
    /// The whole data area.
    fn from(buffer: PoolBuffer<P>) -> Self {
        let len = buffer.buffer_size();
        SendBuffer::Pool { buffer, len }
    }
}

impl<P: Platform> fmt::Debug for SendBuffer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            SendBuffer::Vec(_) => "Vec",
            SendBuffer::Boxed(_) => "Boxed",
            SendBuffer::Pool { .. } => "Pool",
        };
        f.debug_struct("SendBuffer")
            .field("kind", &kind)
            .field("len", &self.len())
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ParkedKind {
    Vec,
    Boxed,
    Pool,
}

/// A [`SendBuffer`] while its request is in flight: only its address,
/// length and what to rebuild, so that no `Vec`, `Box` or guard claims the
/// memory while the device accesses it. Dropping it rebuilds and drops the
/// buffer.
pub(crate) struct Parked<P: Platform> {
    kind: ParkedKind,
    ptr: NonNull<u8>,
    len: usize,
    /// The vector's capacity (`Vec` only).
    capacity: usize,
    _owns: PhantomData<SendBuffer<P>>,
}

// SAFETY: a parked buffer owns its memory exclusively, as the `SendBuffer`
// it came from did (which is `Send`: `Vec<u8>`, `Box<[u8]>` and
// `PoolBuffer` are).
unsafe impl<P: Platform> Send for Parked<P> {}

impl<P: Platform> Parked<P> {
    /// The memory, for the device.
    pub(crate) fn raw(&self) -> RawBuffer {
        RawBuffer::from_raw_parts(self.ptr, self.len)
    }

    /// The buffer again. Call only once nobody else (no device) accesses
    /// the memory.
    pub(crate) fn unpark(self) -> SendBuffer<P> {
        let me = ManuallyDrop::new(self);
        // SAFETY: `me` is never used (nor dropped) again.
        unsafe { me.rebuild() }
    }

    /// # Safety
    ///
    /// Called once per parked buffer (by `unpark` or `drop`).
    unsafe fn rebuild(&self) -> SendBuffer<P> {
        match self.kind {
            // SAFETY: pointer, length and capacity of a vector given up in
            // `park`, rebuilt once.
            ParkedKind::Vec => SendBuffer::Vec(unsafe {
                Vec::from_raw_parts(self.ptr.as_ptr(), self.len, self.capacity)
            }),
            // SAFETY: the pointer of a box given up in `park`, rebuilt once.
            ParkedKind::Boxed => SendBuffer::Boxed(unsafe {
                Box::from_raw(core::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr(),
                    self.len,
                ))
            }),
            ParkedKind::Pool => SendBuffer::Pool {
                // SAFETY: the data pointer of a guard given up with
                // `into_raw` in `park`, rebuilt once.
                buffer: unsafe { PoolBuffer::from_raw(self.ptr) },
                len: self.len,
            },
        }
    }
}

impl<P: Platform> Drop for Parked<P> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and `unpark` skips it.
        drop(unsafe { self.rebuild() });
    }
}

/// The completion of a safe send, as its callback receives it: what
/// [`SendCompleted`](crate::SendCompleted) says, and the buffers themselves,
/// by value.
///
/// [`input_bytes`](Self::input_bytes) and [`output_bytes`](Self::output_bytes)
/// are the bytes DMF reports (see the table on
/// [`SendCompleted`](crate::SendCompleted)); take [`input`](Self::input) and
/// [`output`](Self::output) to keep the buffers (or drop them).
pub struct OwnedSendCompleted<P: Platform> {
    /// Completion status of the request.
    pub status: Status,
    /// Bytes transferred (the request's `Information`).
    pub information: usize,
    /// The type the request was sent with.
    pub request_type: RequestType,
    /// The input buffer given to the send.
    pub input: Option<SendBuffer<P>>,
    /// The output buffer given to the send (whole; see
    /// [`output_bytes`](Self::output_bytes) for what the device wrote).
    pub output: Option<SendBuffer<P>>,
    /// The value given to the send (DMF's `ClientRequestContext`).
    pub client_context: usize,
    /// The cancel id of this send, if it was sent with one.
    pub cancel_id: Option<CancelId>,
    /// The reusable request this send used, if any.
    pub reuse_id: Option<ReuseId>,
    /// Where the callback runs.
    pub context: DeliveryContext,
}

impl<P: Platform> OwnedSendCompleted<P> {
    /// The input bytes DMF reports: the first `information` bytes of a
    /// write, the whole input of an IOCTL, nothing for a read.
    pub fn input_bytes(&self) -> &[u8] {
        let input = self.input.as_ref().map_or(&[][..], SendBuffer::as_slice);
        match self.request_type {
            RequestType::Write => &input[..self.information.min(input.len())],
            RequestType::Ioctl | RequestType::InternalIoctl => input,
            RequestType::Read | RequestType::Invalid => &[],
        }
    }

    /// The output bytes DMF reports: the first `information` bytes of the
    /// output of a read or an IOCTL, nothing for a write.
    pub fn output_bytes(&self) -> &[u8] {
        let output = self.output.as_ref().map_or(&[][..], SendBuffer::as_slice);
        match self.request_type {
            RequestType::Read | RequestType::Ioctl | RequestType::InternalIoctl => {
                &output[..self.information.min(output.len())]
            }
            RequestType::Write | RequestType::Invalid => &[],
        }
    }
}

impl<P: Platform> fmt::Debug for OwnedSendCompleted<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSendCompleted")
            .field("status", &self.status)
            .field("information", &self.information)
            .field("request_type", &self.request_type)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("client_context", &self.client_context)
            .field("cancel_id", &self.cancel_id)
            .field("reuse_id", &self.reuse_id)
            .field("context", &self.context)
            .finish()
    }
}

/// The completion callback of a safe send: as
/// [`SendCompletion`](crate::SendCompletion) (called exactly once per
/// accepted send, never for a refused one; must not block in dispatch
/// context), and it receives the buffers back by value.
///
/// Closures implement it:
///
/// ```
/// use std::sync::Arc;
/// use dmf_request_target::{OwnedCompletion, OwnedSendCompleted};
/// use dmf_sim::Sim;
/// let callback: OwnedCompletion<Sim> = Arc::new(|c: OwnedSendCompleted<Sim>| {
///     let _read: &[u8] = c.output_bytes();
///     let _buffer = c.output; // keep it, or drop it
/// });
/// # let _ = callback;
/// ```
pub trait OwnedSendCompletion<P: Platform>: Send + Sync + 'static {
    /// The send completed.
    fn send_completed(&self, completion: OwnedSendCompleted<P>);
}

impl<P: Platform, F> OwnedSendCompletion<P> for F
where
    F: Fn(OwnedSendCompleted<P>) + Send + Sync + 'static,
{
    fn send_completed(&self, completion: OwnedSendCompleted<P>) {
        self(completion)
    }
}

/// A shared completion callback of safe sends; clone it per send (no
/// allocation).
pub type OwnedCompletion<P> = Arc<dyn OwnedSendCompletion<P>>;

/// A refused safe send: the status, and the buffers given back untouched.
///
/// `?` turns it into its [`Status`].
pub struct SendError<P: Platform> {
    /// Why the send was refused (the errors of
    /// [`Sender::send_raw`](crate::Sender::send_raw)).
    pub status: Status,
    /// The input buffer given to the send.
    pub input: Option<SendBuffer<P>>,
    /// The output buffer given to the send.
    pub output: Option<SendBuffer<P>>,
}

impl<P: Platform> SendError<P> {
    /// A refusal with `status` handing back `input` and `output`.
    pub fn new(
        status: Status,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
    ) -> Self {
        SendError {
            status,
            input,
            output,
        }
    }
}

impl<P: Platform> From<SendError<P>> for Status {
    fn from(e: SendError<P>) -> Status {
        e.status
    }
}

impl<P: Platform> fmt::Debug for SendError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("status", &self.status)
            .field("input", &self.input)
            .field("output", &self.output)
            .finish()
    }
}

impl<P: Platform> core::error::Error for SendError<P> {}

impl<P: Platform> fmt::Display for SendError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send refused: {}", self.status)
    }
}
