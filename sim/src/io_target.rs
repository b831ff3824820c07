//! I/O targets (see [`SimIoTarget`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use dmf_wdf::{
    CompletionRoutine, IoTarget, OpenMode, OpenParams, RawBuffer, RequestType, SendOptions,
    SentIoAction, ShareAccess, Status, TargetEvents, TargetState,
};

use crate::bus::{self, DeviceId, DeviceInner};
use crate::context;
use crate::core::{lock, wait, Core};
use crate::counters;
use crate::faults::FaultPoint;
use crate::irp::{self, Irp, IrpInfo};
use crate::pnp::CallGate;
use crate::request::{Parked, Phase, RequestInner, SimRequest};
use crate::scheduler::Action;
use crate::Sim;

/// [`TargetEvents`] that accept every query-remove and do nothing: for a
/// target whose device is never removed, or whose removal the caller does not
/// care about (tests, benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoTargetEvents;

impl TargetEvents for NoTargetEvents {
    fn query_remove(&self) -> Status {
        Status::SUCCESS
    }
    fn remove_canceled(&self) {}
    fn remove_complete(&self) {}
}

/// The simulator's target states, KMDF's `m_State` (`Purged` reports as
/// `Stopped`). Whether the target is open is tracked apart from it
/// ([`TargetData::open`]), as KMDF's `FxIoTargetRemote` keeps `m_OpenState`
/// apart from `m_State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TState {
    Started,
    Stopped,
    Purged,
    ClosedForQueryRemove,
    Closed,
}

impl TState {
    /// Whether `stop`/`purge`/`start` move the target between these states.
    fn is_running(self) -> bool {
        matches!(self, TState::Started | TState::Stopped | TState::Purged)
    }
}

#[derive(Clone)]
struct SavedOpen {
    link: String,
    mode: OpenMode,
    share: ShareAccess,
}

pub(crate) struct TargetData {
    state: TState,
    /// Open on a device (`FxIoTargetRemoteOpenStateOpen`): set by a successful
    /// open or reopen, cleared by close and close-for-query-remove.
    open: bool,
    device: Option<Arc<DeviceInner>>,
    saved: Option<SavedOpen>,
    /// Sends pending at the device (not yet completed), for cancellation.
    pending: Vec<(Arc<RequestInner>, u64)>,
    /// Sends made while the target was stopped, in order, waiting for
    /// `start` (KMDF's `m_PendedQueue`).
    queued: VecDeque<(Arc<RequestInner>, u64)>,
    /// Sends whose completion has not been fully delivered (queued ones
    /// included).
    outstanding: usize,
}

/// The shared part of a target.
pub(crate) struct TargetInner {
    pub(crate) core: Arc<Core>,
    pub(crate) id: u64,
    data: Mutex<TargetData>,
    drained: Condvar,
    /// The `TargetEvents` registered by `open`, called by the PnP thread.
    pub(crate) events: CallGate<dyn TargetEvents>,
}

impl TargetInner {
    fn lock(&self) -> MutexGuard<'_, TargetData> {
        lock(&self.data)
    }

    /// Moves the target to `Started` and open on `device` if an open
    /// (`reopen == false`: not open and not closed for a query-remove) or a
    /// reopen (closed for a query-remove) is allowed now (called with the
    /// device lock held, by `bus::open_target`).
    pub(crate) fn attach_started(
        &self,
        device: &Arc<DeviceInner>,
        reopen: bool,
    ) -> dmf_wdf::Result<()> {
        let mut t = self.lock();
        if !t.may_open(reopen) {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        t.state = TState::Started;
        t.open = true;
        t.device = Some(Arc::clone(device));
        Ok(())
    }

    /// Send `gen` of `req` completed: it is no longer pending at the device
    /// nor queued.
    pub(crate) fn remove_pending(&self, req: &Arc<RequestInner>, gen: u64) {
        let mut t = self.lock();
        let same = |(r, g): &(Arc<RequestInner>, u64)| Arc::ptr_eq(r, req) && *g == gen;
        if let Some(i) = t.pending.iter().position(same) {
            t.pending.swap_remove(i);
        } else if let Some(i) = t.queued.iter().position(same) {
            t.queued.remove(i);
        }
    }

    /// One send's completion was delivered.
    pub(crate) fn finish_one(&self) {
        let mut t = self.lock();
        t.outstanding = t.outstanding.saturating_sub(1);
        if t.outstanding <= t.queued.len() {
            self.drained.notify_all();
        }
    }

    /// Waits until the completion of every send that is not queued has been
    /// delivered (KMDF waits for sent I/O; pended requests stay queued).
    fn wait_drained(&self, op: &str) {
        context::assert_passive(op);
        let mut t = self.lock();
        while t.outstanding > t.queued.len() {
            t = wait(&self.drained, t);
        }
    }

    /// Completes every queued send with `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`
    /// (purge, close: KMDF `CompletePendedRequestList`).
    fn fail_queued(&self) {
        let queued: Vec<_> = self.lock().queued.drain(..).collect();
        for (req, gen) in queued {
            irp::complete_internal(&req, gen, Status::WDF_DEVICE_REMOVED_NOT_SENT, 0);
        }
    }

    /// `start`: hands the queued sends to the device in order, as long as the
    /// target stays open and started (KMDF `SubmitPendedRequests`).
    fn submit_queued(&self) {
        loop {
            let Some((req, gen)) = self.lock().queued.pop_front() else {
                return;
            };
            let mut d = req.lock();
            if d.gen != gen || d.phase != Phase::Queued {
                continue; // cancelled or timed out meanwhile
            }
            let mut t = self.lock();
            match (t.open, t.state, t.device.clone()) {
                (true, TState::Started, Some(device)) => {
                    t.pending.push((Arc::clone(&req), gen));
                    drop(t);
                    d.phase = Phase::AtDevice;
                    d.device = Some(Arc::clone(&device));
                    let info = IrpInfo::of(&d);
                    drop(d);
                    dispatch(&self.core, &req, gen, &device, info);
                }
                (true, TState::Stopped, _) => {
                    // Stopped again meanwhile: back to the head of the queue.
                    t.queued.push_front((Arc::clone(&req), gen));
                    return;
                }
                _ => {
                    // Purged or closed meanwhile, after it left the queue.
                    drop(t);
                    drop(d);
                    irp::complete_internal(&req, gen, Status::WDF_DEVICE_REMOVED_NOT_SENT, 0);
                }
            }
        }
    }
}

/// Hands send `gen` of `req` (phase `AtDevice`, registered pending at its
/// target) to `device`.
fn dispatch(
    core: &Arc<Core>,
    req: &Arc<RequestInner>,
    gen: u64,
    device: &Arc<DeviceInner>,
    info: IrpInfo,
) {
    tracing::trace!(
        request = req.id,
        send = gen,
        device = device.id.0,
        "dmf-sim: IRP sent"
    );
    // The lower driver may complete the IRP before IoCallDriver returns: in
    // inline mode its completion runs right here, on the sending thread.
    let _inline = irp::inline_scope(core);
    if !device.push_pending(req, gen) {
        irp::complete_internal(req, gen, Status::DELETE_PENDING, 0);
    } else if let Some(status) = core.faults.check(FaultPoint::RequestFailure) {
        irp::complete_internal(req, gen, status, 0);
    } else {
        let irp = Irp::new(
            Arc::clone(req),
            gen,
            device.id,
            Arc::clone(&device.rng),
            info,
        );
        device.handler.handle(irp);
    }
}

impl TargetData {
    /// Whether an open (`reopen == false`) or a reopen may start now.
    fn may_open(&self, reopen: bool) -> bool {
        if reopen {
            self.state == TState::ClosedForQueryRemove
        } else {
            !self.open && self.state != TState::ClosedForQueryRemove
        }
    }
}

fn cancel_all(list: Vec<(Arc<RequestInner>, u64)>) {
    for (req, gen) in list {
        irp::cancel(&req, Some(gen), false);
    }
}

/// A simulated `WDFIOTARGET`. Dropping it closes it (waiting for everything
/// sent through it) and deletes it.
///
/// It follows the state contract of [`IoTarget`]: a new target reports
/// `Started` and is not open (as KMDF's `FxIoTarget::Construct` makes it);
/// `open` makes it open and `Started`; `start`/`stop`/`purge` move it between
/// `Started` and `Stopped`; `close_for_query_remove` moves an open target to
/// `ClosedForQueryRemove` (it keeps its removal notifications and can
/// `reopen`); `close` moves any state to `Closed` (which may be opened again).
/// Requests can be formatted only while the target is open. Sends are
/// accepted while it is open and started or stopped; a send to a stopped
/// target waits in the target's queue until `start` hands it to the device,
/// `purge`/`close` complete it with `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`, or
/// a cancel (`STATUS_CANCELLED`) or its timeout (`STATUS_IO_TIMEOUT`) ends
/// it; other sends are refused with `STATUS_INVALID_DEVICE_STATE`.
///
/// `close`, `close_for_query_remove`, `stop(Cancel)` and `purge` cancel every
/// request sent through the target to the device; `close`,
/// `close_for_query_remove`, `stop(Cancel | WaitForCompletion)` and
/// `purge(true)` then wait until every completion routine of those requests
/// (and of the queued ones they completed) has returned; queued requests
/// that stay queued are not waited for.
///
/// See [`SimRequest`] for an example.
pub struct SimIoTarget {
    _sim: Sim,
    inner: Arc<TargetInner>,
}

impl fmt::Debug for SimIoTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.inner.lock();
        f.debug_struct("SimIoTarget")
            .field("id", &self.inner.id)
            .field("state", &t.state)
            .field("device", &t.device.as_ref().map(|d| d.id))
            .field("outstanding", &t.outstanding)
            .finish()
    }
}

impl SimIoTarget {
    pub(crate) fn new(sim: &Sim) -> SimIoTarget {
        let core = Arc::clone(sim.core());
        let id = core.new_id();
        counters::add(&core.counters.live_targets, 1);
        SimIoTarget {
            _sim: sim.clone(),
            inner: Arc::new(TargetInner {
                id,
                data: Mutex::new(TargetData {
                    state: TState::Started,
                    open: false,
                    device: None,
                    saved: None,
                    pending: Vec::with_capacity(16),
                    queued: VecDeque::new(),
                    outstanding: 0,
                }),
                drained: Condvar::new(),
                events: CallGate::new(core.id, None),
                core,
            }),
        }
    }

    /// The target's id (unique within its simulator).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The device it is (or was last) opened on.
    pub fn device(&self) -> Option<DeviceId> {
        self.inner.lock().device.as_ref().map(|d| d.id)
    }

    /// The symbolic link it was last opened with.
    pub fn symbolic_link(&self) -> Option<String> {
        self.inner.lock().saved.as_ref().map(|s| s.link.clone())
    }

    /// Sends through this target whose completion has not been delivered yet.
    pub fn outstanding(&self) -> usize {
        self.inner.lock().outstanding
    }

    /// Accepts or refuses a send; on acceptance hands the IRP to the device.
    fn send_impl(
        &self,
        request: &SimRequest,
        timeout_ms: u32,
        routine: Option<Arc<dyn CompletionRoutine>>,
    ) -> dmf_wdf::Result<u64> {
        let core = &self.inner.core;
        let req = &request.inner;
        if !Arc::ptr_eq(&req.core, core) {
            return Err(Status::INVALID_PARAMETER);
        }
        if core.is_shutting_down() {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        core.check_stack("IoTarget::send");
        let (gen, device, info, check) = {
            let mut d = req.lock();
            match d.phase {
                Phase::Queued | Phase::AtDevice | Phase::Completing => {
                    drop(d);
                    panic!(
                        "dmf-sim: request {} sent while a previous send of it is still in flight \
                         (a bug in the layer above)",
                        req.id
                    );
                }
                Phase::Fresh => {
                    tracing::trace!(
                        request = req.id,
                        "dmf-sim: send refused: request not formatted"
                    );
                    return Err(Status::INVALID_DEVICE_STATE);
                }
                Phase::Completed => {
                    tracing::trace!(
                        request = req.id,
                        "dmf-sim: send refused: request completed and not reused"
                    );
                    return Err(Status::INVALID_DEVICE_STATE);
                }
                Phase::Formatted => {}
            }
            if d.formatted_for != self.inner.id {
                return Err(Status::INVALID_DEVICE_REQUEST);
            }
            if d.cancelled_unsent {
                // KMDF `FxIoTarget::SubmitLocked`: a request cancelled before
                // it was sent is not sent; `WdfRequestSend` fails with
                // STATUS_CANCELLED and the completion routine is not called.
                tracing::trace!(
                    request = req.id,
                    "dmf-sim: send refused: request cancelled before it was sent"
                );
                return Err(Status::CANCELLED);
            }
            if let Some(status) = core.faults.check(FaultPoint::SendRefusal) {
                return Err(status);
            }
            let gen = d.gen + 1;
            let device = {
                let mut t = self.inner.lock();
                if !t.open {
                    return Err(Status::INVALID_DEVICE_STATE);
                }
                match t.state {
                    TState::Started => {
                        let device = t.device.clone().expect("an open target has a device");
                        t.pending.push((Arc::clone(req), gen));
                        t.outstanding += 1;
                        Some(device)
                    }
                    // KMDF `FxIoTarget::SubmitLocked`: a stopped target
                    // queues the request (STATUS_WDF_QUEUED) until start,
                    // purge or close.
                    TState::Stopped => {
                        t.queued.push_back((Arc::clone(req), gen));
                        t.outstanding += 1;
                        None
                    }
                    TState::Purged | TState::ClosedForQueryRemove | TState::Closed => {
                        return Err(Status::INVALID_DEVICE_STATE)
                    }
                }
            };
            d.gen = gen;
            d.phase = if device.is_some() {
                Phase::AtDevice
            } else {
                Phase::Queued
            };
            d.sync = routine.is_none();
            d.routine = routine;
            d.delivered = false;
            d.target = Some(Arc::clone(&self.inner));
            d.device = device.clone();
            d.cancel_requested = false;
            d.cancel_routine = None;
            d.parked = Parked::No;
            d.timed_out = false;
            // The timeout runs from the send, queued or not (KMDF starts the
            // request's timer in `SubmitLocked` either way).
            let check = irp::arm_timeout(&mut d, core.clock.now(), timeout_ms);
            (gen, device, IrpInfo::of(&d), check)
        };
        counters::add(&core.counters.in_flight, 1);
        counters::bump(&core.counters.sent);
        if let Some(deadline) = check {
            core.schedule_at(
                deadline,
                Action::CancelTimeout {
                    req: Arc::clone(req),
                    deadline,
                },
            );
        }
        match device {
            Some(device) => dispatch(core, req, gen, &device, info),
            None => tracing::trace!(
                request = req.id,
                send = gen,
                "dmf-sim: IRP queued on a stopped target"
            ),
        }
        Ok(gen)
    }

    fn check_open_faults(&self, link: &str) -> dmf_wdf::Result<()> {
        let faults = &self.inner.core.faults;
        if let Some(status) = faults.check(FaultPoint::TargetOpen) {
            return Err(status);
        }
        if let Some(status) = faults.check_link(link) {
            return Err(status);
        }
        Ok(())
    }
}

// SAFETY: the simulated IRP of a request is completed exactly once (a
// per-send generation guards every completion path: device, cancel, timeout,
// purge, close, shutdown), and its completion delivers the routine stored by
// the accepted `send` once; a refused send returns before the routine is
// stored and drops it. The sender's writes happen before the IRP is queued
// or dispatched through the simulator's mutexes and channels, which the
// completing thread goes through too. Devices reach the formatted buffers
// only through `Irp`, which hands them out under the request's buffer lock
// and only while that send is still at the device; every completion path
// takes that lock before completing, so no device access outlives the
// completion (a completed IRP's buffers read as empty). `send_synchronously`
// waits for the completion (cancelling on timeout) before returning.
unsafe impl IoTarget for SimIoTarget {
    type Request = SimRequest;

    fn open<E: TargetEvents>(
        &self,
        params: &OpenParams<'_>,
        events: Arc<E>,
    ) -> dmf_wdf::Result<()> {
        context::assert_passive("IoTarget::open");
        let core = &self.inner.core;
        if core.is_shutting_down() {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        {
            let mut t = self.inner.lock();
            if !t.may_open(false) {
                return Err(Status::INVALID_DEVICE_STATE);
            }
            t.saved = Some(SavedOpen {
                link: params.symbolic_link.to_string(),
                mode: params.open_mode,
                share: params.share_access,
            });
        }
        let link = params.symbolic_link;
        let result = self.check_open_faults(link).and_then(|()| {
            let events: Arc<dyn TargetEvents> = events;
            self.inner.events.set(events);
            bus::open_target(
                core,
                &self.inner,
                link,
                params.open_mode,
                params.share_access,
                false,
            )
        });
        match result {
            Ok(device) => {
                counters::add(&core.counters.open_targets, 1);
                tracing::debug!(
                    sim = core.id,
                    target = self.inner.id,
                    device = device.id.0,
                    link,
                    "dmf-sim: target opened"
                );
                Ok(())
            }
            Err(status) => {
                drop(self.inner.events.clear());
                tracing::debug!(
                    sim = core.id,
                    target = self.inner.id,
                    link,
                    ?status,
                    "dmf-sim: target open failed"
                );
                Err(status)
            }
        }
    }

    fn reopen(&self) -> dmf_wdf::Result<()> {
        context::assert_passive("IoTarget::reopen");
        let core = &self.inner.core;
        let saved = {
            let t = self.inner.lock();
            if t.state != TState::ClosedForQueryRemove {
                return Err(Status::INVALID_DEVICE_STATE);
            }
            t.saved.clone().ok_or(Status::INVALID_DEVICE_STATE)?
        };
        let result = self.check_open_faults(&saved.link).and_then(|()| {
            bus::open_target(
                core,
                &self.inner,
                &saved.link,
                saved.mode,
                saved.share,
                true,
            )
        });
        match result {
            Ok(_) => {
                counters::add(&core.counters.open_targets, 1);
                tracing::debug!(
                    sim = core.id,
                    target = self.inner.id,
                    link = saved.link,
                    "dmf-sim: target reopened"
                );
                Ok(())
            }
            Err(status) => {
                tracing::debug!(
                    sim = core.id,
                    target = self.inner.id,
                    link = saved.link,
                    ?status,
                    "dmf-sim: target reopen failed"
                );
                Err(status)
            }
        }
    }

    fn close(&self) {
        let idle = {
            let t = self.inner.lock();
            t.state == TState::Closed
        };
        if idle && !self.inner.events.is_set() {
            return;
        }
        context::assert_passive("IoTarget::close");
        let events = self.inner.events.clear();
        let (was_open, device, pending) = {
            let mut t = self.inner.lock();
            let was_open = std::mem::replace(&mut t.open, false);
            t.state = TState::Closed;
            (was_open, t.device.take(), t.pending.clone())
        };
        let core = &self.inner.core;
        if was_open {
            counters::add(&core.counters.open_targets, -1);
        }
        if let Some(device) = &device {
            bus::release_target(device, self.inner.id, true);
        }
        self.inner.fail_queued();
        cancel_all(pending);
        self.inner.wait_drained("IoTarget::close");
        drop(events);
        tracing::debug!(
            sim = core.id,
            target = self.inner.id,
            "dmf-sim: target closed"
        );
    }

    fn close_for_query_remove(&self) {
        context::assert_passive("IoTarget::close_for_query_remove");
        let (device, pending) = {
            let mut t = self.inner.lock();
            if !t.open {
                return;
            }
            t.open = false;
            t.state = TState::ClosedForQueryRemove;
            (t.device.clone(), t.pending.clone())
        };
        let core = &self.inner.core;
        counters::add(&core.counters.open_targets, -1);
        if let Some(device) = &device {
            bus::release_target(device, self.inner.id, false);
        }
        self.inner.fail_queued();
        cancel_all(pending);
        self.inner.wait_drained("IoTarget::close_for_query_remove");
        tracing::debug!(
            sim = core.id,
            target = self.inner.id,
            "dmf-sim: target closed for query-remove"
        );
    }

    fn start(&self) -> dmf_wdf::Result<()> {
        let mut t = self.inner.lock();
        match t.state {
            TState::Started => Ok(()),
            TState::Stopped | TState::Purged => {
                t.state = TState::Started;
                let queued = t.queued.len();
                drop(t);
                tracing::debug!(
                    sim = self.inner.core.id,
                    target = self.inner.id,
                    queued,
                    "dmf-sim: target started"
                );
                self.inner.submit_queued();
                Ok(())
            }
            TState::ClosedForQueryRemove | TState::Closed => Err(Status::INVALID_DEVICE_STATE),
        }
    }

    fn stop(&self, action: SentIoAction) {
        if action != SentIoAction::LeavePending {
            context::assert_passive("IoTarget::stop");
        }
        let pending = {
            let mut t = self.inner.lock();
            if !t.state.is_running() {
                return;
            }
            t.state = TState::Stopped;
            if action == SentIoAction::Cancel {
                t.pending.clone()
            } else {
                Vec::new()
            }
        };
        tracing::debug!(
            sim = self.inner.core.id,
            target = self.inner.id,
            ?action,
            "dmf-sim: target stopped"
        );
        match action {
            SentIoAction::Cancel => {
                cancel_all(pending);
                self.inner.wait_drained("IoTarget::stop");
            }
            SentIoAction::WaitForCompletion => self.inner.wait_drained("IoTarget::stop"),
            SentIoAction::LeavePending => {}
        }
    }

    fn purge(&self, wait: bool) {
        if wait {
            context::assert_passive("IoTarget::purge");
        }
        let pending = {
            let mut t = self.inner.lock();
            if !t.state.is_running() {
                return;
            }
            t.state = TState::Purged;
            t.pending.clone()
        };
        tracing::debug!(
            sim = self.inner.core.id,
            target = self.inner.id,
            wait,
            "dmf-sim: target purged"
        );
        self.inner.fail_queued();
        cancel_all(pending);
        if wait {
            self.inner.wait_drained("IoTarget::purge");
        }
    }

    fn state(&self) -> TargetState {
        match self.inner.lock().state {
            TState::Started => TargetState::Started,
            TState::Stopped | TState::Purged => TargetState::Stopped,
            TState::ClosedForQueryRemove => TargetState::ClosedForQueryRemove,
            TState::Closed => TargetState::Closed,
        }
    }

    unsafe fn format_request(
        &self,
        request: &SimRequest,
        request_type: RequestType,
        ioctl: u32,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
    ) -> dmf_wdf::Result<()> {
        if request.is_in_flight() {
            panic!(
                "dmf-sim: request {} formatted while a send of it is in flight \
                 (its IRP belongs to the device; a verifier break in KMDF; a bug \
                 in the layer above)",
                request.inner.id
            );
        }
        if !self.inner.lock().open {
            // KMDF: `FxRequestBase::ValidateTarget` refuses a target without
            // a stack size (never opened, or closed).
            return Err(Status::INVALID_DEVICE_STATE);
        }
        let mut d = request.inner.lock();
        match d.phase {
            Phase::Queued | Phase::AtDevice | Phase::Completing => {
                drop(d);
                panic!(
                    "dmf-sim: request {} formatted while another thread sent it \
                     (a bug in the layer above)",
                    request.inner.id
                );
            }
            Phase::Completed => return Err(Status::INVALID_DEVICE_STATE),
            Phase::Fresh | Phase::Formatted => {}
        }
        if request_type == RequestType::Invalid {
            return Err(Status::INVALID_PARAMETER);
        }
        d.request_type = request_type;
        d.ioctl = match request_type {
            RequestType::Ioctl | RequestType::InternalIoctl => ioctl,
            _ => 0,
        };
        d.input = if request_type.uses_input() {
            input
        } else {
            None
        };
        d.output = if request_type.uses_output() {
            output
        } else {
            None
        };
        d.formatted_for = self.inner.id;
        d.phase = Phase::Formatted;
        Ok(())
    }

    fn send<C: CompletionRoutine>(
        &self,
        request: &SimRequest,
        options: SendOptions,
        routine: Arc<C>,
    ) -> dmf_wdf::Result<()> {
        let routine: Arc<dyn CompletionRoutine> = routine;
        self.send_impl(request, options.timeout_ms, Some(routine))
            .map(|_| ())
    }

    fn send_synchronously(&self, request: &SimRequest, timeout_ms: u32) -> dmf_wdf::Result<usize> {
        context::assert_passive("IoTarget::send_synchronously");
        let gen = self.send_impl(request, timeout_ms, None)?;
        let req = &request.inner;
        let mut d = req.lock();
        while d.gen == gen && !d.delivered {
            d = wait(&req.cv, d);
        }
        let result = d.result;
        drop(d);
        result.status.ok()?;
        Ok(result.information)
    }
}

impl Drop for SimIoTarget {
    fn drop(&mut self) {
        self.close();
        counters::add(&self.inner.core.counters.live_targets, -1);
    }
}
