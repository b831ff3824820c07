//! The non-streaming methods (SPEC §1.C.6): every method of
//! `DMF_RequestTarget`, delegated to an embedded
//! [`dmf_request_target::RequestTarget`] that shares the CRT's target.
//!
//! Contracts are those of [`RequestTarget`]; the differences from DMF's CRT
//! are listed on each method. DMF's CRT deletes a non-reuse request *before*
//! calling the client's completion so the client may free its buffers in the
//! callback; here the transport never touches the client's buffers after the
//! callback returned, so freeing them in the callback is equally safe.

use dmf_request_target::{CancelId, Completion, RequestTarget, ReuseDeletion, ReuseId, SendParams};
use dmf_wdf::{Platform, RawBuffer, Result};

use crate::client::StreamClient;
use crate::target::ContinuousRequestTarget;

impl<P: Platform, H: StreamClient<P>> ContinuousRequestTarget<P, H> {
    /// The embedded non-streaming transport (shares this CRT's target; closed
    /// with it). Useful to pass the CRT where a plain
    /// [`RequestTarget`] is expected.
    pub fn request_target(&self) -> &RequestTarget<P> {
        &self.single
    }

    /// `DMF_ContinuousRequestTarget_SendSynchronously`: sends one request to
    /// the current target and waits for it; returns the bytes transferred.
    /// See [`RequestTarget::send_synchronously`] (empty slices mean "no
    /// buffer"; `timeout_ms == 0` waits forever, expiry gives
    /// `STATUS_IO_TIMEOUT`).
    ///
    /// Errors: `STATUS_INVALID_DEVICE_STATE` when closing or without a
    /// target; `STATUS_INVALID_PARAMETER` for `RequestType::Invalid`; the
    /// request's failure. Passive level only: it blocks.
    pub fn send_synchronously(
        &self,
        input: &[u8],
        output: &mut [u8],
        params: SendParams,
    ) -> Result<usize> {
        self.single.send_synchronously(input, output, params)
    }

    /// `DMF_ContinuousRequestTarget_Send`: sends one request asynchronously;
    /// `callback` runs once with `client_context` when it completes (never if
    /// this returns an error). See [`RequestTarget::send`]. Any level.
    ///
    /// # Safety
    ///
    /// As [`RequestTarget::send`]: on `Ok`, the buffers stay valid (and
    /// `output` untouched by others) until the callback has returned.
    pub unsafe fn send(
        &self,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        callback: Option<Completion>,
        client_context: usize,
    ) -> Result<()> {
        // SAFETY: the caller upholds `RequestTarget::send`'s contract, which
        // this method's contract repeats.
        unsafe {
            self.single
                .send(input, output, params, callback, client_context)
        }
    }

    /// `DMF_ContinuousRequestTarget_SendEx` with a request-id out-parameter:
    /// as [`send`](Self::send), returning the id for
    /// [`cancel`](Self::cancel). See [`RequestTarget::send_ex`]. Any level.
    ///
    /// # Safety
    ///
    /// As [`send`](Self::send).
    pub unsafe fn send_ex(
        &self,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        callback: Option<Completion>,
        client_context: usize,
    ) -> Result<CancelId> {
        // SAFETY: the caller upholds `RequestTarget::send_ex`'s contract,
        // which this method's contract repeats.
        unsafe {
            self.single
                .send_ex(input, output, params, callback, client_context)
        }
    }

    /// `DMF_ContinuousRequestTarget_Cancel`: cancels the single send with
    /// this id; `true` if cancellation was initiated. Ids are never reused.
    /// Stream requests are not cancelled this way (use
    /// [`stop`](Self::stop)). See [`RequestTarget::cancel`]. Any level.
    pub fn cancel(&self, id: CancelId) -> bool {
        self.single.cancel(id)
    }

    /// `DMF_ContinuousRequestTarget_ReuseCreate`: creates a reusable request.
    /// Close deletes forgotten ones (DMF hangs, R-3). See
    /// [`RequestTarget::reuse_create`]. Any level.
    pub fn reuse_create(&self) -> Result<ReuseId> {
        self.single.reuse_create()
    }

    /// `DMF_ContinuousRequestTarget_ReuseSend`: sends reusable request `id`;
    /// `STATUS_OBJECTID_NOT_FOUND` if it is unknown or busy. See
    /// [`RequestTarget::reuse_send`]. Any level.
    ///
    /// # Safety
    ///
    /// As [`send`](Self::send).
    pub unsafe fn reuse_send(
        &self,
        id: ReuseId,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        callback: Option<Completion>,
        client_context: usize,
    ) -> Result<CancelId> {
        // SAFETY: the caller upholds `RequestTarget::reuse_send`'s contract,
        // which this method's contract repeats.
        unsafe {
            self.single
                .reuse_send(id, input, output, params, callback, client_context)
        }
    }

    /// `DMF_ContinuousRequestTarget_ReuseDelete`: deletes reusable request
    /// `id`, deferred to its completion if it is in flight (DMF fails, R-4).
    /// See [`RequestTarget::reuse_delete`]. Any level.
    pub fn reuse_delete(&self, id: ReuseId) -> Result<ReuseDeletion> {
        self.single.reuse_delete(id)
    }
}
