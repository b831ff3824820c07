//! [`Sender`]: DMF's single-request method set (send, send-ex, synchronous
//! send, cancel, reusable requests), written once for every layer that
//! sends.

use dmf_wdf::{Platform, RawBuffer, Result, Status};

use crate::completion::Completion;
use crate::config::SendParams;
use crate::ids::{CancelId, ReuseId};
use crate::owned::{OwnedCompletion, SendBuffer, SendError};
use crate::target::{Payload, RequestTarget, ReuseDeletion};

/// The single-request methods of `DMF_RequestTarget`, and of every layer
/// that sends through one: [`RequestTarget`] itself, a continuous request
/// target (its non-streaming methods), and a device-interface-multiple-target
/// target reached through its guard.
///
/// An implementor names the [`RequestTarget`] that carries its sends
/// ([`sender_target`](Self::sender_target), one line); every method is
/// provided. The [`SenderTarget`] it returns gives access to nothing but
/// these methods, so a sender that wraps a request target it owns (a DIMT
/// target guard) does not hand out the request target itself (its `close`,
/// `io_target_set`...). Bring the trait into scope
/// (`use dmf_request_target::Sender;`) to call the methods.
///
/// Asynchronous sends come in two forms:
///
/// * safe ([`send`](Self::send), [`send_ex`](Self::send_ex),
///   [`reuse_send`](Self::reuse_send)): the send takes owned buffers
///   ([`SendBuffer`]: a `Vec<u8>`, a `Box<[u8]>` or a pool buffer) and
///   hands them back by value in the completion ([`OwnedSendCompleted`](crate::OwnedSendCompleted)),
///   or in the [`SendError`] of a refused send;
/// * raw, `unsafe` ([`send_raw`](Self::send_raw), [`send_ex_raw`](Self::send_ex_raw),
///   [`reuse_send_raw`](Self::reuse_send_raw)), as DMF: the caller keeps the
///   memory valid until the completion. For zero-copy use of memory the
///   client manages itself.
///
/// Both allocate nothing per request in steady state (same target, enough
/// send contexts): the callback is an `Arc` cloned per send, the buffers
/// are moved, not copied.
///
/// Common to every asynchronous send: the callback (if any) is called
/// exactly once with the completion and `client_context`, in the context
/// chosen by [`SendParams::delivery`]; never when the method returned an
/// error. Empty buffers count as none. Errors:
/// `STATUS_INVALID_DEVICE_STATE` once close has begun or without a target;
/// `STATUS_INVALID_PARAMETER` for `RequestType::Invalid`;
/// `STATUS_INSUFFICIENT_RESOURCES` when the context pool is at
/// `max_contexts`; the platform's failure to create a request or work item
/// (pool growth) or to accept the send. No send context is lost on any of
/// these paths. Any level.
pub trait Sender<P: Platform> {
    /// The request target that carries this sender's single sends.
    fn sender_target(&self) -> SenderTarget<'_, P>;

    /// `DMF_RequestTarget_SendSynchronously`: sends a request and waits for
    /// its completion; returns the bytes transferred (the request's
    /// `Information`). An empty slice means "no buffer" (`Write` uses
    /// `input`, `Read` uses `output`, IOCTLs both). `params.timeout_ms == 0`
    /// waits forever; on expiry the request is cancelled and the call fails
    /// with `STATUS_IO_TIMEOUT`. `params.delivery` is ignored.
    ///
    /// Errors: those common to every send (see the [trait docs](Sender));
    /// the request's failure status.
    ///
    /// Passive level only: it blocks (DMF annotates it as callable up to
    /// dispatch level).
    fn send_synchronously(
        &self,
        input: &[u8],
        output: &mut [u8],
        params: SendParams,
    ) -> Result<usize> {
        self.sender_target().0.sync_send(input, output, params)
    }

    /// `DMF_RequestTarget_Send`, safe: sends a request asynchronously with
    /// owned buffers. `callback` (if any) gets the completion and the
    /// buffers back; without a callback they are dropped when the request
    /// completes. On refusal the [`SendError`] holds the buffers. Any level.
    fn send(
        &self,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
        params: SendParams,
        callback: Option<OwnedCompletion<P>>,
        client_context: usize,
    ) -> core::result::Result<(), SendError<P>> {
        send_owned(
            self.sender_target().0,
            None,
            input,
            output,
            params,
            callback,
            client_context,
            false,
        )
        .map(|_| ())
    }

    /// `DMF_RequestTarget_SendEx` (with its `RequestId` out-parameter), safe:
    /// as [`send`](Self::send), and returns the id to [`cancel`](Self::cancel)
    /// this send with. The id is registered before the send and returned
    /// only if the send was accepted.
    fn send_ex(
        &self,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
        params: SendParams,
        callback: Option<OwnedCompletion<P>>,
        client_context: usize,
    ) -> core::result::Result<CancelId, SendError<P>> {
        with_id(send_owned(
            self.sender_target().0,
            None,
            input,
            output,
            params,
            callback,
            client_context,
            true,
        ))
    }

    /// `DMF_RequestTarget_ReuseSend`, safe: sends the reusable request `id`
    /// asynchronously, like [`send_ex`](Self::send_ex), to the current
    /// target. The request is busy from this call until its completion
    /// callback *starts* (so the callback may resend it).
    ///
    /// Errors: `STATUS_OBJECTID_NOT_FOUND` if `id` is unknown, deleted, or
    /// busy (in flight, or a cancel of it is in progress); the errors common
    /// to every send. On error the request is idle again.
    fn reuse_send(
        &self,
        id: ReuseId,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
        params: SendParams,
        callback: Option<OwnedCompletion<P>>,
        client_context: usize,
    ) -> core::result::Result<CancelId, SendError<P>> {
        with_id(send_owned(
            self.sender_target().0,
            Some(id),
            input,
            output,
            params,
            callback,
            client_context,
            true,
        ))
    }

    /// `DMF_RequestTarget_Send` with raw buffers, as in DMF: the callback
    /// sees the buffers as slices during the call. Any level.
    ///
    /// # Safety
    ///
    /// If this returns `Ok`, `input` must stay valid for reads and `output`
    /// valid for reads and writes, and neither may be written (nor `output`
    /// read) by anyone else, until the completion callback has returned (or,
    /// without a callback, until the request completed: close the module or
    /// the target to be sure). If it returns `Err`, nothing is retained.
    unsafe fn send_raw(
        &self,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        callback: Option<Completion>,
        client_context: usize,
    ) -> Result<()> {
        // SAFETY: forwarded contract.
        unsafe {
            send_raw(
                self.sender_target().0,
                None,
                input,
                output,
                params,
                callback,
                client_context,
                false,
            )
        }
        .map(|_| ())
    }

    /// `DMF_RequestTarget_SendEx` with raw buffers: as
    /// [`send_raw`](Self::send_raw), returning the cancel id (see
    /// [`send_ex`](Self::send_ex)).
    ///
    /// # Safety
    ///
    /// As [`send_raw`](Self::send_raw).
    unsafe fn send_ex_raw(
        &self,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        callback: Option<Completion>,
        client_context: usize,
    ) -> Result<CancelId> {
        // SAFETY: forwarded contract.
        with_id(unsafe {
            send_raw(
                self.sender_target().0,
                None,
                input,
                output,
                params,
                callback,
                client_context,
                true,
            )
        })
    }

    /// `DMF_RequestTarget_ReuseSend` with raw buffers: as
    /// [`reuse_send`](Self::reuse_send), with the buffers of
    /// [`send_raw`](Self::send_raw).
    ///
    /// # Safety
    ///
    /// As [`send_raw`](Self::send_raw).
    unsafe fn reuse_send_raw(
        &self,
        id: ReuseId,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        callback: Option<Completion>,
        client_context: usize,
    ) -> Result<CancelId> {
        // SAFETY: forwarded contract.
        with_id(unsafe {
            send_raw(
                self.sender_target().0,
                Some(id),
                input,
                output,
                params,
                callback,
                client_context,
                true,
            )
        })
    }

    /// `DMF_RequestTarget_Cancel`: asks the framework to cancel the send with
    /// this id. Returns `true` if cancellation was initiated (the callback
    /// still runs, usually with `STATUS_CANCELLED`); `false` if the id is
    /// unknown, its send already completed, cancellation was already
    /// requested, close has begun, or the device has not made the request
    /// cancelable (as `WdfRequestCancelSentRequest`; the cancel is then still
    /// remembered and the device sees it). A completed send's id never
    /// matches a later send, even on the same request object. Stream
    /// requests of a continuous request target are not cancelled this way.
    /// Any level.
    fn cancel(&self, id: CancelId) -> bool {
        self.sender_target().0.cancel_send(id)
    }

    /// `DMF_RequestTarget_ReuseCreate`: creates a request that can be sent
    /// many times with [`reuse_send`](Self::reuse_send) until
    /// [`reuse_delete`](Self::reuse_delete) (close deletes forgotten ones and
    /// logs them).
    ///
    /// Errors: `STATUS_INVALID_DEVICE_STATE` once close has begun; the
    /// platform's failure to create the request or its work item. Any level.
    fn reuse_create(&self) -> Result<ReuseId> {
        self.sender_target().0.create_reusable()
    }

    /// `DMF_RequestTarget_ReuseDelete`: deletes the reusable request `id`.
    /// If a send of it is in flight the deletion happens right after its
    /// completion callback returned ([`ReuseDeletion::Deferred`]; DMF fails
    /// instead); either way the id is unusable from now on.
    ///
    /// Errors: `STATUS_OBJECTID_NOT_FOUND` for an unknown or already deleted
    /// id; `STATUS_INVALID_DEVICE_STATE` once close has begun (close deletes
    /// every remaining reusable request itself). Any level.
    fn reuse_delete(&self, id: ReuseId) -> Result<ReuseDeletion> {
        self.sender_target().0.delete_reusable(id)
    }
}

/// The request target behind a [`Sender`]: what its provided methods send
/// through, and nothing else. It does not give the request target back:
///
/// ```compile_fail
/// fn close<P: dmf_wdf::Platform>(through: dmf_request_target::SenderTarget<'_, P>) {
///     through.0.close(); // private
/// }
/// ```
pub struct SenderTarget<'a, P: Platform>(&'a RequestTarget<P>);

impl<'a, P: Platform> SenderTarget<'a, P> {
    /// Sends through `target`.
    pub fn new(target: &'a RequestTarget<P>) -> Self {
        SenderTarget(target)
    }
}

impl<P: Platform> Clone for SenderTarget<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Platform> Copy for SenderTarget<'_, P> {}

impl<P: Platform> core::fmt::Debug for SenderTarget<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SenderTarget").field(self.0).finish()
    }
}

impl<P: Platform> Sender<P> for RequestTarget<P> {
    fn sender_target(&self) -> SenderTarget<'_, P> {
        SenderTarget::new(self)
    }
}

/// The safe sends: park the buffers, submit, hand them back on refusal.
#[allow(clippy::too_many_arguments)]
fn send_owned<P: Platform>(
    rt: &RequestTarget<P>,
    reuse: Option<ReuseId>,
    input: Option<SendBuffer<P>>,
    output: Option<SendBuffer<P>>,
    params: SendParams,
    callback: Option<OwnedCompletion<P>>,
    client_context: usize,
    want_cancel_id: bool,
) -> core::result::Result<Option<CancelId>, SendError<P>> {
    let mut payload = Some(Payload::owned(callback, input, output));
    // SAFETY: an owned payload has no raw buffers: its parked buffers
    // belong to the send until the completion or a refusal unparks them.
    let result = unsafe {
        rt.shared
            .submit(reuse, &mut payload, params, client_context, want_cancel_id)
    };
    let refuse = |status: Status, payload: Option<Payload<P>>| match payload {
        Some(payload) => payload.into_error(status),
        None => SendError::new(status, None, None),
    };
    result.map_err(|status| refuse(status, payload))
}

/// The raw sends.
///
/// # Safety
///
/// As [`Sender::send_raw`].
#[allow(clippy::too_many_arguments)]
unsafe fn send_raw<P: Platform>(
    rt: &RequestTarget<P>,
    reuse: Option<ReuseId>,
    input: Option<RawBuffer>,
    output: Option<RawBuffer>,
    params: SendParams,
    callback: Option<Completion>,
    client_context: usize,
    want_cancel_id: bool,
) -> Result<Option<CancelId>> {
    let mut payload = Some(Payload::Raw {
        callback,
        input,
        output,
    });
    // SAFETY: forwarded contract.
    unsafe {
        rt.shared
            .submit(reuse, &mut payload, params, client_context, want_cancel_id)
    }
}

/// The id of a send made with `want_cancel_id` (always there).
fn with_id<E>(id: core::result::Result<Option<CancelId>, E>) -> core::result::Result<CancelId, E> {
    id.map(|id| id.expect("a send asking for a cancel id gets one"))
}
