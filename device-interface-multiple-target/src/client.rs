//! The client's callbacks (`EVT_DMF_DeviceInterfaceMultipleTarget_OnStateChange`,
//! `…_OnPnpNotification`, and the CRT buffer callbacks re-targeted to DIMT).

use dmf_continuous_request_target::{OutputDisposition, Retirement, StreamCompletion};
use dmf_wdf::{Platform, Status};

use crate::{Dimt, TargetHandle, TargetStateType};

/// The client of a [`DeviceInterfaceMultipleTarget`](crate::DeviceInterfaceMultipleTarget):
/// DMF's callbacks as one trait, statically dispatched. Every method has a
/// default, so a client implements only what it needs; `()` takes every
/// default.
///
/// Each callback gets the module (`DmfModule` in DMF) so it can call its
/// methods, and, per target, the [`TargetHandle`] (`DMFIOTARGET`).
///
/// Contexts: `on_pnp_notification` and `on_state_change` run at passive
/// level on a PnP thread (or on the thread driving the client device's
/// PnP/power callbacks, or dropping the module) and may block and call every
/// method; a target's transitions are serialised, so two `on_state_change`
/// calls for one target never overlap. `buffer_input` / `buffer_output` /
/// `stream_request_retired` run where the per-target
/// [`ContinuousRequestTarget`](dmf_continuous_request_target::ContinuousRequestTarget)
/// calls its stream client (completion context unless the CRT config sets
/// `passive_level`) and must not block.
pub trait DimtClient<P: Platform>: Send + Sync + Sized + 'static {
    /// `EvtDeviceInterfaceMultipleTargetOnPnpNotification`: an interface
    /// instance arrived (or was present at registration); return whether to
    /// open it. Asked again on every arrival of the link (the answer is not
    /// remembered, as in DMF). Default: open.
    fn on_pnp_notification(&self, module: &Dimt<P, Self>, symbolic_link: &str) -> bool {
        let _ = (module, symbolic_link);
        true
    }

    /// `EvtDeviceInterfaceMultipleTargetOnStateChange(Ex)`: `target` is
    /// moving to `state`. The return value is honoured only for
    /// [`Open`](TargetStateType::Open) and
    /// [`QueryRemove`](TargetStateType::QueryRemove) (a failure vetoes), and
    /// ignored otherwise. See the [crate docs](crate#target-states-and-callback-order)
    /// for the order of calls on every path. Default: accept.
    fn on_state_change(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        state: TargetStateType,
    ) -> Status {
        let _ = (module, target, state);
        Status::SUCCESS
    }

    /// The CRT's `EvtContinuousRequestTargetBufferInput` for `target`: fill
    /// the input buffer of a stream request; returns the bytes to send
    /// (clamped to `input.len()`). Called only when the CRT config has a
    /// non-zero `buffer_input_size`. Default: send the buffer unchanged.
    fn buffer_input(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        input: &mut [u8],
        context: &mut [u8],
    ) -> usize {
        let _ = (module, target, context);
        input.len()
    }

    /// The CRT's `EvtContinuousRequestTargetBufferOutput` for `target`: a
    /// stream request completed; decide who owns the output buffer and
    /// whether the request is re-sent (a kept buffer goes back with
    /// [`buffer_put`](crate::Dimt::buffer_put) or by dropping it).
    ///
    /// Default (DMF's DIMT trampoline without a client callback): give the
    /// buffer back and continue, also after a failure; the CRT's resend
    /// back-off keeps a failing target from being hammered (M-9).
    fn buffer_output(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        completion: StreamCompletion<P>,
    ) -> OutputDisposition<P> {
        let _ = (module, target);
        completion.module_owns_and_continue()
    }

    /// A stream request of `target` left the stream on its own (see
    /// [`StreamClient::stream_request_retired`](dmf_continuous_request_target::StreamClient::stream_request_retired)).
    /// Default: nothing.
    fn stream_request_retired(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        retirement: Retirement,
    ) {
        let _ = (module, target, retirement);
    }
}

/// The client that takes every default: opens every interface, accepts
/// every transition, streams without looking at the data.
impl<P: Platform> DimtClient<P> for () {}
