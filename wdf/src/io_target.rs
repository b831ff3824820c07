//! I/O targets (`WDFIOTARGET`): open by symbolic link, query-remove callbacks,
//! request formatting and sending.

use alloc::sync::Arc;

use crate::request::{CompletionRoutine, RawBuffer, RequestType, SendOptions};
use crate::{Result, Status};

/// Desired access when opening a target (`WDF_IO_TARGET_OPEN_PARAMS.DesiredAccess`).
///
/// A Windows `ACCESS_MASK`; the constants are the ones drivers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct OpenMode(pub u32);

impl OpenMode {
    /// `GENERIC_READ`.
    pub const READ: OpenMode = OpenMode(0x8000_0000);
    /// `GENERIC_WRITE`.
    pub const WRITE: OpenMode = OpenMode(0x4000_0000);
    /// `GENERIC_READ | GENERIC_WRITE`.
    pub const READ_WRITE: OpenMode = OpenMode(0xC000_0000);

    /// Whether read access is requested.
    pub const fn reads(self) -> bool {
        self.0 & Self::READ.0 != 0
    }

    /// Whether write access is requested.
    pub const fn writes(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }
}

/// Share access when opening a target (`WDF_IO_TARGET_OPEN_PARAMS.ShareAccess`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ShareAccess(pub u32);

impl ShareAccess {
    /// Exclusive: no sharing.
    pub const NONE: ShareAccess = ShareAccess(0);
    /// `FILE_SHARE_READ`.
    pub const READ: ShareAccess = ShareAccess(1);
    /// `FILE_SHARE_WRITE`.
    pub const WRITE: ShareAccess = ShareAccess(2);
    /// `FILE_SHARE_READ | FILE_SHARE_WRITE`.
    pub const READ_WRITE: ShareAccess = ShareAccess(3);
    /// `FILE_SHARE_DELETE`.
    pub const DELETE: ShareAccess = ShareAccess(4);

    /// Whether other opens may read.
    pub const fn shares_read(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether other opens may write.
    pub const fn shares_write(self) -> bool {
        self.0 & 2 != 0
    }
}

/// State of an I/O target (`WDF_IO_TARGET_STATE`), exactly as KMDF reports it.
///
/// WDF has no "created" or "open" state: a new target is `Started`
/// (`FxIoTarget::Construct` in KMDF's `fxiotarget.cpp`) although it is not
/// open, and a failed open leaves the state as it was. Whether a target is
/// open is therefore *not* part of its state: see the state contract on
/// [`IoTarget`]; code that needs to know tracks its own opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetState {
    /// Started: a new target (not yet open), or an open target accepting
    /// requests.
    Started,
    /// Stopped or purged (`WdfIoTargetStopped`, `WdfIoTargetPurged`): the
    /// target does not pass requests to the device.
    Stopped,
    /// Closed for a query-remove; may be reopened on remove-cancel.
    ClosedForQueryRemove,
    /// Closed.
    Closed,
}

/// What [`IoTarget::stop`] does with requests already sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SentIoAction {
    /// Cancel them and wait for their completion.
    Cancel,
    /// Wait for them to complete on their own.
    WaitForCompletion,
    /// Leave them pending.
    LeavePending,
}

/// PnP notifications about the device behind an open target
/// (`EvtIoTargetQueryRemove` / `EvtIoTargetRemoveCanceled` / `EvtIoTargetRemoveComplete`).
///
/// Called at passive level on a PnP thread; they may block.
pub trait TargetEvents: Send + Sync + 'static {
    /// The device is asked whether it can be removed. Return a failure status
    /// to veto; on success the implementation must close the target with
    /// [`IoTarget::close_for_query_remove`] before returning.
    fn query_remove(&self) -> Status;
    /// A previous query-remove was cancelled: the device stays.
    fn remove_canceled(&self);
    /// The device is gone (after a query-remove, or a surprise removal).
    fn remove_complete(&self);
}

/// Parameters of [`IoTarget::open`] (`WDF_IO_TARGET_OPEN_PARAMS` by name).
#[derive(Clone, Copy, Debug)]
pub struct OpenParams<'a> {
    /// Symbolic link name of the device interface instance.
    pub symbolic_link: &'a str,
    /// Desired access.
    pub open_mode: OpenMode,
    /// Share access.
    pub share_access: ShareAccess,
}

/// A `WDFIOTARGET`. Dropping it deletes the target (closing it first if needed).
///
/// Request operations live here because WDF formats and sends a request
/// *against* a target.
///
/// # State contract
///
/// Every backend behaves as KMDF's remote I/O target (`FxIoTargetRemote`):
///
/// * A new target reports [`TargetState::Started`] and is not open.
/// * [`open`](IoTarget::open) is allowed on a target that was never opened or
///   is `Closed` (also after a failed open); on an open target or one
///   `ClosedForQueryRemove` it fails with `STATUS_INVALID_DEVICE_STATE`. On
///   success the target is open and `Started`.
/// * [`reopen`](IoTarget::reopen) is allowed only on a target
///   `ClosedForQueryRemove`.
/// * [`close`](IoTarget::close) leaves any target `Closed` and not open
///   (a never-opened one too); [`close_for_query_remove`](IoTarget::close_for_query_remove)
///   leaves an open target `ClosedForQueryRemove`.
/// * [`format_request`](IoTarget::format_request) fails with
///   `STATUS_INVALID_DEVICE_STATE` unless the target is open.
/// * [`send`](IoTarget::send) on an open target that is `Started` hands the
///   request to the device. On an open target that is stopped (not purged)
///   the request is accepted and waits in the target's queue until
///   [`start`](IoTarget::start) sends it, [`purge`](IoTarget::purge) or a
///   close completes it with `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`, or it is
///   cancelled (`STATUS_CANCELLED`) or times out (`STATUS_IO_TIMEOUT`). Any
///   other send (target not open, purged or closed) is refused with
///   `STATUS_INVALID_DEVICE_STATE`.
///
/// [`state`](IoTarget::state) alone therefore does not tell whether a target
/// is open.
///
/// # Safety
///
/// The layers hand memory they own to a request with
/// [`format_request`](IoTarget::format_request) and take it back when the
/// request completes; their completion routines take ownership of per-request
/// state that the sender wrote before sending. Implementers must ensure that:
///
/// * for every [`send`](IoTarget::send) that returns `Ok`, the routine's
///   [`completed`](crate::CompletionRoutine::completed) is called exactly
///   once, with the `Arc` given to `send` (later, or already during the
///   call);
/// * for every `send` that returns `Err`, the routine is dropped without
///   being called, and the request was not handed to the device;
/// * everything the sender did before calling `send` happens before the
///   completion routine runs;
/// * the buffers given to `format_request` are accessed only while a send of
///   that request is in flight (`input` only read, `output` read or
///   written), and no longer once the completion routine has been called,
///   the synchronous send has returned, or the send has been refused;
///   reusing, re-formatting or dropping the request never touches them;
/// * [`send_synchronously`](IoTarget::send_synchronously) returns only once
///   the request has completed (also on timeout, where the request is
///   cancelled and waited for) or was refused.
pub unsafe trait IoTarget: Send + Sync + Sized + 'static {
    /// The request type of the platform.
    type Request: crate::Request;

    /// Opens the device named by `params` and registers `events` for its PnP
    /// removal notifications (`WdfIoTargetOpen`, open type by name).
    fn open<E: TargetEvents>(&self, params: &OpenParams<'_>, events: Arc<E>) -> Result<()>;

    /// Reopens a target closed by [`IoTarget::close_for_query_remove`], after
    /// a remove-cancel (`WDF_IO_TARGET_OPEN_TYPE_REOPEN`).
    fn reopen(&self) -> Result<()>;

    /// Closes the target: completes what is queued with
    /// `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`, cancels every request sent to it
    /// and waits for them to complete (`WdfIoTargetClose`). Idempotent.
    fn close(&self);

    /// Closes the target in response to a query-remove, keeping what is
    /// needed to [`reopen`](IoTarget::reopen) it (`WdfIoTargetCloseForQueryRemove`).
    fn close_for_query_remove(&self);

    /// Starts a stopped target (`WdfIoTargetStart`), sending the requests
    /// queued while it was stopped, in order.
    fn start(&self) -> Result<()>;

    /// Stops the target (`WdfIoTargetStop`): new sends wait in the target's
    /// queue until [`IoTarget::start`]; `action` says what happens to the
    /// requests already at the device. Queued requests stay queued.
    fn stop(&self, action: SentIoAction);

    /// Purges the target: cancels everything sent, completes what is queued
    /// with `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`, refuses new sends until
    /// started again; waits for cancelled requests when `wait` (`WdfIoTargetPurge`).
    fn purge(&self, wait: bool);

    /// Current state (`WdfIoTargetGetState`).
    fn state(&self) -> TargetState;

    /// Formats `request` for this target (`WdfIoTargetFormatRequestFor*`).
    ///
    /// `Write` uses `input`, `Read` uses `output`, the IOCTL types use both;
    /// a buffer the type does not use is ignored. `Invalid` fails with
    /// `STATUS_INVALID_PARAMETER`; a target that is not open fails with
    /// `STATUS_INVALID_DEVICE_STATE`. Formatting a request while a send of it
    /// is in flight is a bug (its IRP belongs to the device): the simulator
    /// panics.
    ///
    /// # Safety
    ///
    /// `input` must stay valid for reads and `output` valid for reads and
    /// writes, with no other access to `output`, until the request is reused,
    /// formatted again, or deleted, and in any case until the send that follows
    /// has completed (its completion routine returned, or the synchronous send
    /// returned, or the send was refused).
    unsafe fn format_request(
        &self,
        request: &Self::Request,
        request_type: RequestType,
        ioctl: u32,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
    ) -> Result<()>;

    /// Sends a formatted request asynchronously (`WdfRequestSend`).
    ///
    /// On `Ok`, `routine.completed` is called exactly once, later or already
    /// during this call, on any thread. On `Err` the request was refused and
    /// `routine` is dropped without being called: see the state contract
    /// above, and `STATUS_CANCELLED` for a request cancelled with
    /// [`Request::cancel_sent`] since its last reuse.
    fn send<C: CompletionRoutine>(
        &self,
        request: &Self::Request,
        options: SendOptions,
        routine: Arc<C>,
    ) -> Result<()>;

    /// Sends a formatted request and waits for it
    /// (`WdfRequestSend` with `WDF_REQUEST_SEND_OPTION_SYNCHRONOUS`).
    ///
    /// `timeout_ms == 0` waits forever. Returns the bytes transferred on
    /// success; `STATUS_IO_TIMEOUT` if the timeout expired.
    /// Passive level only: it blocks.
    fn send_synchronously(&self, request: &Self::Request, timeout_ms: u32) -> Result<usize>;
}

/// A `WDFREQUEST` owned by the caller. Dropping it deletes it; it must not be
/// dropped while a send of it is in flight.
///
/// A safe trait: what happens to a request's buffers and completion routine
/// is the [`IoTarget`]'s guarantee (see its safety section). Reusing and
/// cancelling only change what status a later completion reports, which no
/// `unsafe` code depends on.
pub trait Request: Send + Sync + Sized + 'static {
    /// Re-initialises a completed request for another send (`WdfRequestReuse`).
    ///
    /// Reusing a request while a send of it is in flight is a bug: KMDF's
    /// verifier breaks (`FxRequest::Reuse`) and the simulator panics.
    fn reuse(&self) -> Result<()>;

    /// Asks the framework to cancel the request (`WdfRequestCancelSentRequest`).
    ///
    /// As in KMDF (`FxRequestBase::Cancel`, `IoCancelIrp`), returns `true`
    /// only if a cancel routine ran: the device had made the request
    /// cancelable, or the request waits in the target's queue (a stopped
    /// target). Otherwise it returns `false` but the cancellation is
    /// remembered:
    ///
    /// * in flight and not (yet) cancelable: the request's cancel flag is set;
    ///   a device that later tries to make it cancelable sees it cancelled;
    /// * not sent yet (formatted, or reused): the next send fails with
    ///   `STATUS_CANCELLED` and calls no completion routine, until the request
    ///   is reused;
    /// * completed: nothing.
    ///
    /// A sent request's completion routine still runs exactly once (usually
    /// with `STATUS_CANCELLED`) whatever this returns.
    fn cancel_sent(&self) -> bool;
}
