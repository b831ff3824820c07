//! The client's callbacks (`EVT_DMF_DeviceInterfaceMultipleTarget_OnStateChange`,
//! `…_OnPnpNotification`, the CRT buffer callbacks re-targeted to DIMT, and
//! the completions of single sends), and its per-target context.

use dmf_continuous_request_target::{OutputDisposition, Retirement, StreamCompletion};
use dmf_request_target::{OwnedSendCompleted, SendCompleted};
use dmf_wdf::{Platform, Status};

use crate::{Dimt, TargetHandle, TargetStateType};

/// The client of a [`DeviceInterfaceMultipleTarget`](crate::DeviceInterfaceMultipleTarget):
/// DMF's callbacks as one trait, statically dispatched. Every method has a
/// default, so a client implements only what it needs; `()` takes every
/// default.
///
/// Each callback gets the module (`DmfModule` in DMF) so it can call its
/// methods, and, per target, the [`TargetHandle`] (`DMFIOTARGET`) and the
/// client's own context of that target ([`Target`](Self::Target)).
///
/// ## Per-target context
///
/// [`target_context`](Self::target_context) creates a
/// [`Target`](Self::Target) value when a target has opened, before its
/// `Open` state change; every later callback about the target receives it
/// by reference: state changes, stream callbacks, and the completions of
/// the target's single sends ([`send_completed`](Self::send_completed)).
/// It is dropped when the target's lifetime has ended: after its last
/// callback and the last completion of its sends (possibly in completion
/// context: its `Drop` must not block). Clients keep per-target state there
/// instead of a table keyed by handle.
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
    /// The client's context of one target.
    type Target: Send + Sync + 'static;

    /// A target was opened (its interface `symbolic_link`, its `target`
    /// handle): returns the client's context for it. Called once per
    /// opening, on the PnP thread at passive level, before
    /// [`on_state_change`](Self::on_state_change) reports
    /// [`Open`](TargetStateType::Open) (the target's methods do not work
    /// yet). A target closed and opened again gets a new handle and a new
    /// context.
    fn target_context(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        symbolic_link: &str,
    ) -> Self::Target;

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
        context: &Self::Target,
        state: TargetStateType,
    ) -> Status {
        let _ = (module, target, context, state);
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
        context: &Self::Target,
        input: &mut [u8],
        buffer_context: &mut [u8],
    ) -> usize {
        let _ = (module, target, context, buffer_context);
        input.len()
    }

    /// The CRT's `EvtContinuousRequestTargetBufferOutput` for `target`: a
    /// stream request completed; decide who owns the output buffer and
    /// whether the request is re-sent (a kept buffer goes back with
    /// [`buffer_put`](crate::Dimt::buffer_put) or by dropping it).
    ///
    /// Default (DMF's DIMT trampoline without a client callback): give the
    /// buffer back and continue, also after a failure; the CRT's resend
    /// back-off keeps a failing target from being hammered (see
    /// "Failing stream requests are re-sent with back-off" in `docs/dmf-differences.md`).
    fn buffer_output(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        context: &Self::Target,
        completion: StreamCompletion<P>,
    ) -> OutputDisposition<P> {
        let _ = (module, target, context);
        completion.module_owns_and_continue()
    }

    /// A stream request of `target` left the stream on its own (see
    /// [`StreamClient::stream_request_retired`](dmf_continuous_request_target::StreamClient::stream_request_retired)).
    /// Default: nothing.
    fn stream_request_retired(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        context: &Self::Target,
        retirement: Retirement,
    ) {
        let _ = (module, target, context, retirement);
    }

    /// A single send of `target` made with [`Dimt::send`](crate::Dimt::send),
    /// [`Dimt::send_ex`](crate::Dimt::send_ex) or
    /// [`Dimt::reuse_send`](crate::Dimt::reuse_send) (or with the target
    /// guard's [`completion`](crate::TargetGuard::completion)) completed:
    /// the completion, with the buffers given to the send, by value. Runs in
    /// the completion's delivery context (dispatch unless passive delivery
    /// was asked for); must not block in dispatch context. Called exactly
    /// once per accepted send, also after the target closed (closing it
    /// cancels its requests). Default: drop the completion and its buffers.
    fn send_completed(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        context: &Self::Target,
        completion: OwnedSendCompleted<P>,
    ) {
        let _ = (module, target, context, completion);
    }

    /// As [`send_completed`](Self::send_completed), for the raw sends
    /// ([`Dimt::send_raw`](crate::Dimt::send_raw) and friends): the buffers
    /// as slices, valid during the call. Default: nothing.
    fn raw_send_completed(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        context: &Self::Target,
        completion: &SendCompleted<'_>,
    ) {
        let _ = (module, target, context, completion);
    }
}

/// The client that takes every default: opens every interface, accepts
/// every transition, streams without looking at the data, keeps no
/// per-target context.
impl<P: Platform> DimtClient<P> for () {
    type Target = ();

    fn target_context(&self, _: &Dimt<P, Self>, _: TargetHandle, _: &str) {}
}
