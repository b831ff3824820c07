//! What a client receives when an asynchronous send completes.

use core::fmt;

use alloc::sync::Arc;
use dmf_wdf::{RequestType, Status};

use crate::ids::{CancelId, ReuseId};

/// In which context a completion callback runs (DMF: the module's
/// `PassiveLevel` attribute, and — what DMF's "Ex" documentation promised but
/// its code never did — per call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CompletionDelivery {
    /// The module's choice: passive when
    /// [`RequestTargetConfig::passive_level`](crate::RequestTargetConfig::passive_level)
    /// is set, dispatch otherwise (DMF's behaviour).
    #[default]
    Module,
    /// Directly in the completion routine: any thread, must not block
    /// (DMF `ContinuousRequestTarget_CompletionOptions_Dispatch`).
    Dispatch,
    /// On a passive worker (the platform's work item): may block
    /// (DMF `ContinuousRequestTarget_CompletionOptions_Passive`).
    Passive,
}

/// The context a completion callback actually runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryContext {
    /// In the completion routine (must not block).
    Dispatch,
    /// On a passive worker thread (may block).
    Passive,
}

/// The completion of a raw asynchronous send ([`Sender::send_raw`](crate::Sender::send_raw)
/// and friends), as the client's callback sees it (the parameters of DMF's
/// `EVT_DMF_ContinuousRequestTarget_SendCompletion`). Safe sends get an
/// [`OwnedSendCompleted`](crate::OwnedSendCompleted) instead.
///
/// The buffer slices are the client's own buffers given to the send, cut to
/// what DMF reports (`RequestTarget_ProcessAsynchronousRequestRoot`):
///
/// | type | `input` | `output` |
/// |---|---|---|
/// | `Read` | empty | the first `information` bytes |
/// | `Write` | the first `information` bytes | empty |
/// | `Ioctl`, `InternalIoctl` | the whole input buffer | the first `information` bytes |
///
/// They are valid only during the callback.
pub struct SendCompleted<'a> {
    /// Completion status of the request (success, `STATUS_CANCELLED` after a
    /// cancel, `STATUS_IO_TIMEOUT` after the framework cancelled it for its
    /// timeout, the target's failure...).
    pub status: Status,
    /// Bytes transferred (the request's `Information`).
    pub information: usize,
    /// The type the request was sent with.
    pub request_type: RequestType,
    /// The input bytes (see the table above); DMF's `InputBuffer`/`InputBufferBytesWritten`.
    pub input: &'a [u8],
    /// The output bytes (see the table above); DMF's `OutputBuffer`/`OutputBufferBytesRead`.
    pub output: &'a [u8],
    /// The value given to the send (DMF's `ClientRequestContext`).
    pub client_context: usize,
    /// The cancel id of this send, if it was sent with one.
    pub cancel_id: Option<CancelId>,
    /// The reusable request this send used, if any.
    pub reuse_id: Option<ReuseId>,
    /// Where the callback runs.
    pub context: DeliveryContext,
}

impl fmt::Debug for SendCompleted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendCompleted")
            .field("status", &self.status)
            .field("information", &self.information)
            .field("request_type", &self.request_type)
            .field("input_len", &self.input.len())
            .field("output_len", &self.output.len())
            .field("client_context", &self.client_context)
            .field("cancel_id", &self.cancel_id)
            .field("reuse_id", &self.reuse_id)
            .field("context", &self.context)
            .finish()
    }
}

/// A completion callback of raw sends (DMF
/// `EVT_DMF_ContinuousRequestTarget_SendCompletion`); safe sends use
/// [`OwnedSendCompletion`](crate::OwnedSendCompletion).
///
/// Called exactly once for every send that was accepted (the send method
/// returned `Ok`), never for a send that failed. In
/// [`DeliveryContext::Dispatch`] it must not block. The callback may send
/// again (including `reuse_send` of the same reusable request); it must not
/// close the [`RequestTarget`](crate::RequestTarget) it was sent through
/// (close waits for this very callback).
///
/// Closures implement it:
///
/// ```
/// use std::sync::Arc;
/// use dmf_request_target::{Completion, SendCompleted};
/// let callback: Completion = Arc::new(|c: &SendCompleted<'_>| {
///     let _ = (c.status, c.client_context);
/// });
/// # let _ = callback;
/// ```
pub trait SendCompletion: Send + Sync + 'static {
    /// The send completed.
    fn send_completed(&self, completion: &SendCompleted<'_>);
}

impl<F> SendCompletion for F
where
    F: Fn(&SendCompleted<'_>) + Send + Sync + 'static,
{
    fn send_completed(&self, completion: &SendCompleted<'_>) {
        self(completion)
    }
}

/// A shared completion callback. Clients keep one and clone it per send (an
/// `Arc` clone does not allocate), so sends stay allocation-free.
pub type Completion = Arc<dyn SendCompletion>;
