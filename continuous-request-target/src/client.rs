//! The client side of streaming: the callbacks (`EVT_DMF_ContinuousRequestTarget_BufferInput`,
//! `…_BufferOutput`, plus a stream-health notification) and the types they exchange.

use dmf_wdf::{Platform, Status};

use crate::OutputBuffer;

/// The client's stream callbacks, statically dispatched (a type parameter of
/// [`ContinuousRequestTarget`](crate::ContinuousRequestTarget)).
///
/// Every method has a default, so a client implements only what it needs;
/// `()` is the client with every default (a plain transport, or a stream whose
/// data nobody looks at).
///
/// Context: `buffer_input` runs wherever a stream request is (re)sent — the
/// thread calling [`start`](crate::ContinuousRequestTarget::start), a
/// completion routine, or a passive timer/work-item thread — and must not
/// block. `buffer_output` runs in the completion context (must not block)
/// unless [`passive_level`](crate::ContinuousRequestTargetConfig::passive_level)
/// is set, then on a passive worker. Callbacks may call the CRT's methods,
/// except the blocking ones ([`stop`](crate::ContinuousRequestTarget::stop),
/// [`close`](crate::ContinuousRequestTarget::close), synchronous sends).
///
/// ```
/// use dmf_continuous_request_target::{OutputDisposition, StreamClient, StreamCompletion};
/// use dmf_wdf::Platform;
///
/// /// Counts DWORDs received; keeps the stream running on success only.
/// #[derive(Default)]
/// struct Counter(std::sync::atomic::AtomicUsize);
///
/// impl<P: Platform> StreamClient<P> for Counter {
///     fn buffer_output(&self, completion: StreamCompletion<P>) -> OutputDisposition<P> {
///         if completion.status.is_success() {
///             self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///             completion.module_owns_and_continue()
///         } else {
///             completion.module_owns_and_stop()
///         }
///     }
/// }
/// ```
pub trait StreamClient<P: Platform>: Send + Sync + 'static {
    /// `EVT_DMF_ContinuousRequestTarget_BufferInput`: fill `input` (the whole
    /// input buffer) before a stream request is (re)sent; `context` is the
    /// buffer's client context area. Returns how many bytes to send; values
    /// above `input.len()` are clamped. Unlike DMF (see "The input length the client returns is what the device receives" in `docs/dmf-differences.md`) the returned length
    /// **is** what the device receives.
    ///
    /// Called only when [`buffer_input_size`](crate::ContinuousRequestTargetConfig::buffer_input_size)
    /// is non-zero. Default: send the buffer unchanged, whole.
    fn buffer_input(&self, input: &mut [u8], context: &mut [u8]) -> usize {
        let _ = context;
        input.len()
    }

    /// `EVT_DMF_ContinuousRequestTarget_BufferOutput`: a stream request
    /// completed. The output buffer (if the stream has one) is handed over by
    /// value; the returned [`OutputDisposition`] says who owns it now and
    /// whether the request is re-sent.
    ///
    /// Default (DMF's behaviour without a callback): on success give the
    /// buffer back and continue, on failure give it back and stop this
    /// request.
    fn buffer_output(&self, completion: StreamCompletion<P>) -> OutputDisposition<P> {
        if completion.status.is_error() {
            completion.module_owns_and_stop()
        } else {
            completion.module_owns_and_continue()
        }
    }

    /// A stream request left the stream for a reason other than
    /// [`stop`](crate::ContinuousRequestTarget::stop) / close / power-down
    /// (those are only counted, see [`StreamStatistics`](crate::StreamStatistics)).
    /// DMF shrinks the stream silently; here the client learns it (see
    /// "Retired stream requests are reported" in `docs/dmf-differences.md`).
    /// Runs in the context where the retirement happened (often a completion
    /// routine): must not block. Default: nothing.
    fn stream_request_retired(&self, retirement: Retirement) {
        let _ = retirement;
    }
}

/// The client that takes every default.
impl<P: Platform> StreamClient<P> for () {}

/// One completed stream request, handed to [`StreamClient::buffer_output`].
pub struct StreamCompletion<P: Platform> {
    /// Completion status.
    pub status: Status,
    /// Bytes transferred (DMF's `OutputBufferSize` argument: the IOCTL output
    /// length or read length).
    pub information: usize,
    /// The output buffer, now owned by the callback; `None` for zero-size
    /// streaming (`buffer_output_size == 0`) and for `Write` streams.
    pub output: Option<OutputBuffer<P>>,
    /// Index of the stream request (0..N), for diagnostics.
    pub slot: usize,
    /// The completion arrived while streaming was stopping (only delivered
    /// with [`deliver_completions_during_stop`](crate::ContinuousRequestTargetConfig::deliver_completions_during_stop)).
    /// The request is not re-sent whatever the disposition says; ownership
    /// of the buffer still follows it.
    pub stopping: bool,
}

impl<P: Platform> core::fmt::Debug for StreamCompletion<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamCompletion")
            .field("status", &self.status)
            .field("information", &self.information)
            .field("has_output", &self.output.is_some())
            .field("slot", &self.slot)
            .field("stopping", &self.stopping)
            .finish()
    }
}

impl<P: Platform> StreamCompletion<P> {
    /// The valid output bytes: the first `information` bytes of the buffer
    /// (empty without a buffer).
    pub fn data(&self) -> &[u8] {
        match &self.output {
            Some(buffer) => {
                let bytes = buffer.data();
                &bytes[..self.information.min(bytes.len())]
            }
            None => &[],
        }
    }

    /// Takes the output buffer: the client owns it from now on (return
    /// [`OutputDisposition::ClientOwnsAndContinue`] or `…AndStop`). Dropping
    /// the guard later returns it to the output pool.
    pub fn take_output(&mut self) -> Option<OutputBuffer<P>> {
        self.output.take()
    }

    /// `ContinuousRequestTarget_BufferDisposition_ContinuousRequestTargetAndContinueStreaming`:
    /// give the buffer back and re-send.
    pub fn module_owns_and_continue(self) -> OutputDisposition<P> {
        OutputDisposition::ModuleOwnsAndContinue(self.output)
    }

    /// `…_ContinuousRequestTargetAndStopStreaming`: give the buffer back, retire
    /// this request.
    pub fn module_owns_and_stop(self) -> OutputDisposition<P> {
        OutputDisposition::ModuleOwnsAndStop(self.output)
    }
}

/// What happens to a completed stream request and its output buffer
/// (`ContinuousRequestTarget_BufferDisposition`). Ownership is in the type:
/// the `ModuleOwns*` variants carry the buffer back; with `ClientOwns*` the
/// client holds the guard (and returns it with
/// [`buffer_put`](crate::ContinuousRequestTarget::buffer_put) or by dropping it).
///
/// | DMF | here |
/// |---|---|
/// | `…_Invalid` (0) | not representable |
/// | `…_ContinuousRequestTargetAndContinueStreaming` (1) | [`ModuleOwnsAndContinue`](Self::ModuleOwnsAndContinue) |
/// | `…_ContinuousRequestTargetAndStopStreaming` (2) | [`ModuleOwnsAndStop`](Self::ModuleOwnsAndStop) |
/// | `…_ClientAndContinueStreaming` (3) | [`ClientOwnsAndContinue`](Self::ClientOwnsAndContinue) |
/// | `…_ClientAndStopStreaming` (4) | [`ClientOwnsAndStop`](Self::ClientOwnsAndStop) |
pub enum OutputDisposition<P: Platform> {
    /// The buffer goes back to the output pool; the request is re-sent.
    ModuleOwnsAndContinue(Option<OutputBuffer<P>>),
    /// The buffer goes back to the output pool; the request retires.
    ModuleOwnsAndStop(Option<OutputBuffer<P>>),
    /// The client keeps the buffer; the request is re-sent with another one.
    ClientOwnsAndContinue,
    /// The client keeps the buffer; the request retires.
    ClientOwnsAndStop,
}

impl<P: Platform> core::fmt::Debug for OutputDisposition<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self {
            OutputDisposition::ModuleOwnsAndContinue(_) => "ModuleOwnsAndContinue",
            OutputDisposition::ModuleOwnsAndStop(_) => "ModuleOwnsAndStop",
            OutputDisposition::ClientOwnsAndContinue => "ClientOwnsAndContinue",
            OutputDisposition::ClientOwnsAndStop => "ClientOwnsAndStop",
        };
        f.write_str(name)
    }
}

impl<P: Platform> OutputDisposition<P> {
    /// Whether the request is re-sent.
    pub fn continues(&self) -> bool {
        matches!(
            self,
            OutputDisposition::ModuleOwnsAndContinue(_) | OutputDisposition::ClientOwnsAndContinue
        )
    }

    /// DMF's numeric value (1..=4).
    pub fn dmf_value(&self) -> u32 {
        match self {
            OutputDisposition::ModuleOwnsAndContinue(_) => 1,
            OutputDisposition::ModuleOwnsAndStop(_) => 2,
            OutputDisposition::ClientOwnsAndContinue => 3,
            OutputDisposition::ClientOwnsAndStop => 4,
        }
    }
}

/// Why a stream request left the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetireReason {
    /// Streaming was stopped ([`stop`](crate::ContinuousRequestTarget::stop),
    /// close, D0 exit). Not reported to
    /// [`StreamClient::stream_request_retired`], only counted.
    Stopped,
    /// The output callback returned a `*AndStop` disposition (with the
    /// default callback: the request failed with this status).
    ClientStopped {
        /// Status of the completion the callback saw.
        status: Status,
    },
    /// The output pool was empty (clients holding buffers, no look-aside) and
    /// [`auto_refill`](crate::ContinuousRequestTargetConfig::auto_refill) is off.
    OutputBufferUnavailable,
    /// The input pool was empty.
    InputBufferUnavailable,
    /// Re-initialising, formatting or sending the request failed (for
    /// example the target is stopped or purged, or has been removed).
    SendFailed {
        /// The failure.
        status: Status,
    },
}

/// A stream request retired (see [`StreamClient::stream_request_retired`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Retirement {
    /// Index of the stream request (0..N).
    pub slot: usize,
    /// Why.
    pub reason: RetireReason,
    /// Stream requests still in the stream after this one left. Of several
    /// requests retiring at the same time each reports a different count,
    /// and exactly one reports 0 (the stream is then empty).
    pub remaining: usize,
}
