//! The I/O target, its model device, and requests.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenParams, RawBuffer, Request, RequestType, Result,
    SendOptions, SentIoAction, Status, TargetEvents,
};
use loom::sync::{Condvar, Mutex, MutexGuard};

use crate::context::{assert_passive, DispatchScope};
use crate::executor::Executor;

/// What the model device does with one send that reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Completes it with this status later, on an executor thread (a
    /// successful completion reports the whole output buffer transferred).
    /// A request whose cancel was requested meanwhile completes with
    /// `STATUS_CANCELLED`.
    Complete(Status),
    /// Completes it with this status inside `send`, before `send` returns
    /// (a lower driver completing at once).
    Inline(Status),
    /// Holds it cancelable: it completes (`STATUS_CANCELLED`, on the
    /// cancelling thread) only when cancelled, by `cancel_sent` or by a stop
    /// with cancel, a purge or a close of the target.
    Pend,
    /// The framework refuses the send with this status (the routine is
    /// dropped uncalled), although the target accepts sends.
    Refuse(Status),
}

/// [`TargetEvents`] that accept every query-remove and do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTargetEvents;

impl TargetEvents for NoTargetEvents {
    fn query_remove(&self) -> Status {
        Status::SUCCESS
    }
    fn remove_canceled(&self) {}
    fn remove_complete(&self) {}
}

/// KMDF's target states (`Purged` reports as `Stopped`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TState {
    Started,
    Stopped,
    Purged,
    ClosedForQueryRemove,
    Closed,
}

impl TState {
    fn is_running(self) -> bool {
        matches!(self, TState::Started | TState::Stopped | TState::Purged)
    }
}

type Sent = (Arc<ReqCore>, u64);

struct TargetData {
    state: TState,
    open: bool,
    /// Sends at the device, not completed.
    pending: Vec<Sent>,
    /// Sends made while stopped, waiting for `start`.
    queued: VecDeque<Sent>,
    /// Accepted sends whose completion has not fully been delivered.
    outstanding: usize,
    script: VecDeque<Behaviour>,
    default: Behaviour,
    /// The PnP callbacks given to `open`, until the target is closed.
    events: Option<Arc<dyn TargetEvents>>,
    /// The threads running one of the target's PnP callbacks now.
    in_callback: Vec<loom::thread::ThreadId>,
}

impl TargetData {
    fn next_behaviour(&mut self) -> Behaviour {
        self.script.pop_front().unwrap_or(self.default)
    }
}

pub(crate) struct TargetCore {
    id: usize,
    data: Mutex<TargetData>,
    drained: Condvar,
    exec: Arc<Executor>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    /// Accepted sends that completed (their completion routine was called
    /// or is being called).
    completed: AtomicUsize,
}

impl TargetCore {
    fn lock(&self) -> MutexGuard<'_, TargetData> {
        self.data.lock().unwrap()
    }

    fn remove(&self, req: &Arc<ReqCore>, gen: u64) {
        let mut t = self.lock();
        let same = |(r, g): &Sent| Arc::ptr_eq(r, req) && *g == gen;
        if let Some(i) = t.pending.iter().position(same) {
            t.pending.swap_remove(i);
        } else if let Some(i) = t.queued.iter().position(same) {
            t.queued.remove(i);
        }
    }

    fn finish_one(&self) {
        let mut t = self.lock();
        t.outstanding -= 1;
        drop(t);
        self.drained.notify_all();
    }

    /// Waits until every send that is not queued has been delivered.
    fn wait_drained(&self, op: &str) {
        assert_passive(op);
        let mut t = self.lock();
        while t.outstanding > t.queued.len() {
            t = self.drained.wait(t).unwrap();
        }
    }

    fn fail_queued(&self) {
        let queued: Vec<Sent> = self.lock().queued.drain(..).collect();
        for (req, gen) in queued {
            complete(&req, gen, Status::WDF_DEVICE_REMOVED_NOT_SENT, false);
        }
    }

    fn cancel_pending(&self) {
        let pending = self.lock().pending.clone();
        for (req, gen) in pending {
            cancel(&req, Some(gen));
        }
    }

    /// The device receives send `gen` of `req`.
    fn dispatch(&self, req: Arc<ReqCore>, gen: u64, behaviour: Behaviour) {
        match behaviour {
            Behaviour::Complete(status) | Behaviour::Refuse(status) => self
                .exec
                .push(Box::new(move || complete(&req, gen, status, true))),
            Behaviour::Inline(status) => complete(&req, gen, status, true),
            Behaviour::Pend => {}
        }
    }

    fn submit_queued(self: &Arc<Self>) {
        loop {
            let Some((req, gen)) = self.lock().queued.pop_front() else {
                return;
            };
            let mut d = req.lock();
            if d.gen != gen || d.phase != Phase::Queued {
                continue;
            }
            let mut t = self.lock();
            match (t.open, t.state) {
                (true, TState::Started) => {
                    t.pending.push((Arc::clone(&req), gen));
                    let behaviour = t.next_behaviour();
                    drop(t);
                    d.phase = Phase::AtDevice;
                    d.cancelable = behaviour == Behaviour::Pend;
                    drop(d);
                    self.dispatch(req, gen, behaviour);
                }
                (true, TState::Stopped) => {
                    t.queued.push_front((Arc::clone(&req), gen));
                    return;
                }
                _ => {
                    drop(t);
                    drop(d);
                    complete(&req, gen, Status::WDF_DEVICE_REMOVED_NOT_SENT, false);
                }
            }
        }
    }
}

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Fresh,
    Formatted,
    Queued,
    AtDevice,
    Completed,
}

struct ReqData {
    phase: Phase,
    /// Send generation (incremented by every accepted send).
    gen: u64,
    formatted_for: usize,
    output_len: usize,
    cancelled_unsent: bool,
    cancel_requested: bool,
    /// Held cancelable by the device ([`Behaviour::Pend`]).
    cancelable: bool,
    routine: Option<Arc<dyn CompletionRoutine>>,
    target: Option<Arc<TargetCore>>,
    result: Option<Completed>,
}

pub(crate) struct ReqCore {
    data: Mutex<ReqData>,
    delivered: Condvar,
}

impl ReqCore {
    fn lock(&self) -> MutexGuard<'_, ReqData> {
        self.data.lock().unwrap()
    }

    fn in_flight(&self) -> bool {
        matches!(self.lock().phase, Phase::Queued | Phase::AtDevice)
    }
}

/// Completes send `gen` of `req` if it is still in flight (exactly once,
/// whoever gets here first) and delivers the completion on this thread.
/// `device`: the device completes it, honouring a requested cancel.
fn complete(req: &Arc<ReqCore>, gen: u64, status: Status, device: bool) {
    let (routine, target, completion) = {
        let mut d = req.lock();
        if d.gen != gen || !matches!(d.phase, Phase::Queued | Phase::AtDevice) {
            return;
        }
        let status = if device && d.cancel_requested {
            Status::CANCELLED
        } else {
            status
        };
        let information = if status.is_success() { d.output_len } else { 0 };
        let completion = Completed {
            status,
            information,
        };
        d.phase = Phase::Completed;
        d.cancelable = false;
        let routine = d.routine.take();
        if routine.is_none() {
            d.result = Some(completion);
            req.delivered.notify_all();
        }
        (routine, d.target.take(), completion)
    };
    let target = target.expect("a request in flight has a target");
    target.completed.fetch_add(1, Ordering::SeqCst);
    target.remove(req, gen);
    if let Some(routine) = routine {
        let _dispatch = DispatchScope::enter();
        routine.completed(completion);
    }
    target.finish_one();
}

/// `cancel_sent` (any send: `gen == None`) or the cancellation of send `gen`
/// by the target (stop, purge, close).
fn cancel(req: &Arc<ReqCore>, gen: Option<u64>) -> bool {
    let (now, gen) = {
        let mut d = req.lock();
        if gen.is_none() && matches!(d.phase, Phase::Fresh | Phase::Formatted) {
            d.cancelled_unsent = true;
            return false;
        }
        if !matches!(d.phase, Phase::Queued | Phase::AtDevice)
            || gen.is_some_and(|g| g != d.gen)
            || d.cancel_requested
        {
            return false;
        }
        d.cancel_requested = true;
        (d.phase == Phase::Queued || d.cancelable, d.gen)
    };
    if now {
        complete(req, gen, Status::CANCELLED, false);
    }
    now
}

/// A request ([`dmf_wdf::Request`]).
pub struct LoomRequest(pub(crate) Arc<ReqCore>);

impl LoomRequest {
    pub(crate) fn new() -> Self {
        LoomRequest(Arc::new(ReqCore {
            data: Mutex::new(ReqData {
                phase: Phase::Fresh,
                gen: 0,
                formatted_for: 0,
                output_len: 0,
                cancelled_unsent: false,
                cancel_requested: false,
                cancelable: false,
                routine: None,
                target: None,
                result: None,
            }),
            delivered: Condvar::new(),
        }))
    }

    /// Whether a send of it is in flight (queued or at the device).
    pub fn in_flight(&self) -> bool {
        self.0.in_flight()
    }
}

impl Request for LoomRequest {
    fn reuse(&self) -> Result<()> {
        let mut d = self.0.lock();
        assert!(
            !matches!(d.phase, Phase::Queued | Phase::AtDevice),
            "dmf-loom-platform: request reused while a send of it is in flight"
        );
        d.phase = Phase::Fresh;
        d.cancelled_unsent = false;
        d.result = None;
        Ok(())
    }

    fn cancel_sent(&self) -> bool {
        cancel(&self.0, None)
    }
}

impl Drop for LoomRequest {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                !self.0.in_flight(),
                "dmf-loom-platform: request deleted while a send of it is in flight"
            );
        }
    }
}

/// An I/O target ([`dmf_wdf::IoTarget`]) in front of a model device.
pub struct LoomIoTarget(pub(crate) Arc<TargetCore>);

impl LoomIoTarget {
    pub(crate) fn new(id: usize, exec: Arc<Executor>) -> Self {
        LoomIoTarget(Arc::new(TargetCore {
            id,
            data: Mutex::new(TargetData {
                state: TState::Started,
                open: false,
                pending: Vec::new(),
                queued: VecDeque::new(),
                outstanding: 0,
                script: VecDeque::new(),
                default: Behaviour::Complete(Status::SUCCESS),
                events: None,
                in_callback: Vec::new(),
            }),
            drained: Condvar::new(),
            exec,
            accepted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
        }))
    }

    /// What the device does with the next sends that reach it, in order;
    /// after them, [`set_default`](Self::set_default)'s behaviour
    /// (initially `Complete(STATUS_SUCCESS)`).
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.0.lock().script.extend(behaviours);
    }

    /// What the device does with sends once the script is used up.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.0.lock().default = behaviour;
    }

    /// Sends accepted so far.
    pub fn accepted(&self) -> usize {
        self.0.accepted.load(Ordering::SeqCst)
    }

    /// Sends refused so far (any reason).
    pub fn refused(&self) -> usize {
        self.0.refused.load(Ordering::SeqCst)
    }

    /// Accepted sends not completed yet (their completion routine was not
    /// called yet).
    pub fn in_flight(&self) -> usize {
        self.accepted() - self.0.completed.load(Ordering::SeqCst)
    }

    /// Accepted sends whose completion has not fully been delivered yet
    /// (their completion routine has not returned yet).
    pub fn outstanding(&self) -> usize {
        self.0.lock().outstanding
    }

    /// Delivers `EvtIoTargetQueryRemove` to the callbacks given to `open`,
    /// on this thread (the PnP thread): `None` if the target is closed (a
    /// closed target gets no callbacks). An accepted query-remove must have
    /// closed the target for query-remove (panics otherwise).
    pub fn query_remove(&self) -> Option<Status> {
        let status = self.deliver(|events| events.query_remove())?;
        if status.is_success() {
            let state = self.0.lock().state;
            assert!(
                matches!(state, TState::ClosedForQueryRemove | TState::Closed),
                "dmf-loom-platform: query-remove accepted with the target left open"
            );
        }
        Some(status)
    }

    /// Delivers `EvtIoTargetRemoveCanceled` (as
    /// [`query_remove`](Self::query_remove)); `false` if the target is
    /// closed.
    pub fn remove_canceled(&self) -> bool {
        self.deliver(|events| events.remove_canceled()).is_some()
    }

    /// Delivers `EvtIoTargetRemoveComplete` (as
    /// [`query_remove`](Self::query_remove)); `false` if the target is
    /// closed.
    pub fn remove_complete(&self) -> bool {
        self.deliver(|events| events.remove_complete()).is_some()
    }

    /// Runs one PnP callback on this thread, unless the target is closed;
    /// `close` waits for it (from another thread).
    fn deliver<R>(&self, callback: impl FnOnce(&dyn TargetEvents) -> R) -> Option<R> {
        assert_passive("a target PnP callback");
        let me = loom::thread::current().id();
        let events = {
            let mut t = self.0.lock();
            if t.state == TState::Closed {
                return None;
            }
            let events = Arc::clone(t.events.as_ref()?);
            t.in_callback.push(me);
            events
        };
        let result = callback(&*events);
        drop(events);
        {
            let mut t = self.0.lock();
            let at = t.in_callback.iter().position(|id| *id == me);
            t.in_callback.swap_remove(at.expect("registered above"));
        }
        self.0.drained.notify_all();
        Some(result)
    }

    fn send_impl(
        &self,
        request: &LoomRequest,
        routine: Option<Arc<dyn CompletionRoutine>>,
    ) -> Result<u64> {
        let refused = |status| {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            Err(status)
        };
        let req = &request.0;
        let mut d = req.lock();
        match d.phase {
            Phase::Queued | Phase::AtDevice => {
                drop(d);
                panic!("dmf-loom-platform: request sent while a send of it is in flight");
            }
            Phase::Fresh | Phase::Completed => return refused(Status::INVALID_DEVICE_STATE),
            Phase::Formatted => {}
        }
        if d.formatted_for != self.0.id {
            return refused(Status::INVALID_DEVICE_REQUEST);
        }
        if d.cancelled_unsent {
            return refused(Status::CANCELLED);
        }
        let gen = d.gen + 1;
        let behaviour = {
            let mut t = self.0.lock();
            if !t.open {
                return refused(Status::INVALID_DEVICE_STATE);
            }
            let behaviour = match t.state {
                TState::Started => match t.next_behaviour() {
                    Behaviour::Refuse(status) => return refused(status),
                    b => Some(b),
                },
                TState::Stopped => None,
                _ => return refused(Status::INVALID_DEVICE_STATE),
            };
            if behaviour.is_some() {
                t.pending.push((Arc::clone(req), gen));
            } else {
                t.queued.push_back((Arc::clone(req), gen));
            }
            t.outstanding += 1;
            behaviour
        };
        self.0.accepted.fetch_add(1, Ordering::SeqCst);
        d.gen = gen;
        d.phase = if behaviour.is_some() {
            Phase::AtDevice
        } else {
            Phase::Queued
        };
        d.routine = routine;
        d.target = Some(Arc::clone(&self.0));
        d.cancel_requested = false;
        d.cancelable = behaviour == Some(Behaviour::Pend);
        d.result = None;
        drop(d);
        if let Some(behaviour) = behaviour {
            self.0.dispatch(Arc::clone(req), gen, behaviour);
        }
        Ok(gen)
    }
}

// SAFETY: every accepted send is one job whose routine is taken out of the
// request's state and called once (by the device job, inline in `send`,
// or by the cancel/purge/close that completes it); a refused send returns
// the error with its routine dropped uncalled and queues nothing; the model
// device never touches buffers (it only reports a status and a length);
// the synchronous send returns after the request completed; and the job
// queue and the request's mutex order what the sender did before `send`
// before the routine.
unsafe impl IoTarget for LoomIoTarget {
    type Request = LoomRequest;

    fn open<E: TargetEvents>(&self, _params: &OpenParams<'_>, events: Arc<E>) -> Result<()> {
        assert_passive("IoTarget::open");
        let mut t = self.0.lock();
        if t.open || t.state == TState::ClosedForQueryRemove {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        t.open = true;
        t.state = TState::Started;
        t.events = Some(events);
        Ok(())
    }

    fn reopen(&self) -> Result<()> {
        assert_passive("IoTarget::reopen");
        let mut t = self.0.lock();
        if t.state != TState::ClosedForQueryRemove {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        t.open = true;
        t.state = TState::Started;
        Ok(())
    }

    fn close(&self) {
        {
            let mut t = self.0.lock();
            if t.state == TState::Closed && t.outstanding == 0 {
                // Closed already, nothing to wait for: any context.
                return;
            }
            assert_passive("IoTarget::close");
            t.open = false;
            t.state = TState::Closed;
        }
        self.0.fail_queued();
        self.0.cancel_pending();
        self.0.wait_drained("IoTarget::close");
        // As KMDF: the close waits for a PnP callback of the target running
        // on another thread (a callback may close its own target).
        let me = loom::thread::current().id();
        let mut t = self.0.lock();
        while t.in_callback.iter().any(|id| *id != me) {
            t = self.0.drained.wait(t).unwrap();
        }
        let events = t.events.take();
        drop(t);
        drop(events);
    }

    fn close_for_query_remove(&self) {
        assert_passive("IoTarget::close_for_query_remove");
        {
            let mut t = self.0.lock();
            if !t.open {
                return;
            }
            t.open = false;
            t.state = TState::ClosedForQueryRemove;
        }
        self.0.fail_queued();
        self.0.cancel_pending();
        self.0.wait_drained("IoTarget::close_for_query_remove");
    }

    fn start(&self) -> Result<()> {
        {
            let mut t = self.0.lock();
            match t.state {
                TState::Started => return Ok(()),
                TState::Stopped | TState::Purged => t.state = TState::Started,
                TState::ClosedForQueryRemove | TState::Closed => {
                    return Err(Status::INVALID_DEVICE_STATE)
                }
            }
        }
        self.0.submit_queued();
        Ok(())
    }

    fn stop(&self, action: SentIoAction) {
        if action != SentIoAction::LeavePending {
            assert_passive("IoTarget::stop");
        }
        {
            let mut t = self.0.lock();
            if !t.state.is_running() {
                return;
            }
            t.state = TState::Stopped;
        }
        match action {
            SentIoAction::Cancel => {
                self.0.cancel_pending();
                self.0.wait_drained("IoTarget::stop");
            }
            SentIoAction::WaitForCompletion => self.0.wait_drained("IoTarget::stop"),
            SentIoAction::LeavePending => {}
        }
    }

    fn purge(&self, wait: bool) {
        if wait {
            assert_passive("IoTarget::purge");
        }
        {
            let mut t = self.0.lock();
            if !t.state.is_running() {
                return;
            }
            t.state = TState::Purged;
        }
        self.0.fail_queued();
        self.0.cancel_pending();
        if wait {
            self.0.wait_drained("IoTarget::purge");
        }
    }

    fn state(&self) -> dmf_wdf::TargetState {
        match self.0.lock().state {
            TState::Started => dmf_wdf::TargetState::Started,
            TState::Stopped | TState::Purged => dmf_wdf::TargetState::Stopped,
            TState::ClosedForQueryRemove => dmf_wdf::TargetState::ClosedForQueryRemove,
            TState::Closed => dmf_wdf::TargetState::Closed,
        }
    }

    unsafe fn format_request(
        &self,
        request: &LoomRequest,
        request_type: RequestType,
        _ioctl: u32,
        _input: Option<RawBuffer>,
        output: Option<RawBuffer>,
    ) -> Result<()> {
        let mut d = request.0.lock();
        assert!(
            !matches!(d.phase, Phase::Queued | Phase::AtDevice),
            "dmf-loom-platform: request formatted while a send of it is in flight"
        );
        if !self.0.lock().open {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        if d.phase == Phase::Completed {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        if request_type == RequestType::Invalid {
            return Err(Status::INVALID_PARAMETER);
        }
        d.output_len = if request_type.uses_output() {
            output.map_or(0, |b| b.len())
        } else {
            0
        };
        d.formatted_for = self.0.id;
        d.phase = Phase::Formatted;
        Ok(())
    }

    fn send<C: CompletionRoutine>(
        &self,
        request: &LoomRequest,
        _options: SendOptions,
        routine: Arc<C>,
    ) -> Result<()> {
        let routine: Arc<dyn CompletionRoutine> = routine;
        self.send_impl(request, Some(routine)).map(|_| ())
    }

    fn send_synchronously(&self, request: &LoomRequest, _timeout_ms: u32) -> Result<usize> {
        assert_passive("IoTarget::send_synchronously");
        let gen = self.send_impl(request, None)?;
        let req = &request.0;
        let mut d = req.lock();
        while d.gen == gen && d.result.is_none() {
            d = req.delivered.wait(d).unwrap();
        }
        let result = d.result.expect("delivered");
        drop(d);
        result.status.ok()?;
        Ok(result.information)
    }
}

impl Drop for LoomIoTarget {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.close();
        }
    }
}
