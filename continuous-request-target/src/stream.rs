//! The streaming engine: N stream slots, each owning its request and (while
//! in flight) its buffers, kept in flight by resending from the completion
//! path.
//!
//! Synchronisation (see also [`protocol`](crate::protocol)):
//!
//! * **Slot ownership** — [`SlotState`]: exactly one party touches a slot's
//!   request and buffers at a time.
//! * **Start/stop** — [`StreamControl`]: every (re)send and every park
//!   happens between `enter_send` and `leave_send` (the send rundown).
//!   `stop` ends the rundown first (waiting for sends in progress), so
//!   afterwards every accepted request is visibly in flight, and nothing is
//!   sent or parked any more: cancelling the N requests and claiming the
//!   parked slots then reaches every slot, with no window. The stream count
//!   tracks the slots in the stream; the retirement that reaches 0 signals
//!   the event `stop` waits on.
//!
//! * **Sessions** — while a slot is part of a running stream, its in-flight
//!   request carries a [`Session`] (the completion routine): a strong
//!   reference to the engine and to the target streamed to, so the per-request
//!   path needs no `Weak` upgrade, no target lock and no reference-count
//!   traffic on shared objects. A session is dropped when its slot retires
//!   (after the retirement is counted); `stop` waits until every session is
//!   gone, so when it returns no completion routine of the stream is still
//!   running CRT code and every target reference the stream took is released.
//!
//! Lifetime: the engine owns the slots; timers and work items hold a `Weak`
//! reference to the engine; a session (and a parked slot's stored session)
//! holds a strong one only while the stream runs. `close` stops streaming and
//! then waits for every timer handler and work item, so nothing runs
//! afterwards. The engine may be freed by the last session dropped (in a
//! completion routine) right after a concurrent close returned: by then every
//! timer and work item is idle and no request is in flight, so that drop
//! never blocks.

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use dmf_wdf::recorder::Journal;
use dmf_wdf::{
    transition, Completed, CompletionRoutine, IoTarget, Lock, Platform, Request, Result, Rundown,
    SendOptions, Status, Timer, TimerHandler, WorkItem, WorkItemHandler,
};

use crate::client::{OutputDisposition, RetireReason, Retirement, StreamClient, StreamCompletion};
use crate::config::ContinuousRequestTargetConfig;
use crate::primitive::{AtomicBool, AtomicU64, Ordering, UnsafeCell};
use crate::protocol::{
    AfterSend, ClaimFilter, Entry, ParkKind, SlotState, StopRole, StreamControl, StreamState,
};
use crate::stats::{bump, bump_owned, Counters, SlotCounters};
use dmf_buffer_pool::{BufferPool, BufferPoolConfig, PoolBuffer};

/// Most resends one call of [`Engine::run`] makes on behalf of completions
/// that arrived while their send was still in progress (a target completing
/// inline, as KMDF does when the lower driver completes at once) before it
/// hands the next resend to the slot's timer. A target that completes every
/// request at once would otherwise keep the thread that sent first (the
/// caller of `start`, a completion routine at dispatch level, a timer
/// handler) in the send loop for as long as the stream runs.
pub(crate) const MAX_INLINE_RESENDS: u32 = 16;

/// Why a slot is parked on its timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerPark {
    /// Back-off after a failed completion.
    Backoff,
    /// A resend deferred after [`MAX_INLINE_RESENDS`] inline completions.
    Defer,
}

/// What a completion decided for its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Send the request again now.
    Resend,
    /// Resend after this many milliseconds (back-off).
    Backoff(u32),
    /// Leave the stream.
    Retire(RetireReason),
}

/// The part of a slot that only its owner (see [`SlotState`]) touches, on
/// every send and completion: kept out of any lock (see [`OwnerCell`]).
struct OwnerData<P: Platform> {
    /// The buffers of the request in flight (stored by the sender right
    /// before the send, taken by the completion).
    input: Option<PoolBuffer<P>>,
    output: Option<PoolBuffer<P>>,
    /// Consecutive failed completions (back-off).
    failures: u32,
}

/// Data touched only by the current owner of its slot, as established by
/// the slot's [`SlotState`].
///
/// The per-request path used to take the slot's spin lock twice per
/// completion (store the buffers before the send, take them in the
/// completion) although the ownership protocol already makes those accesses
/// exclusive; on the simulator each lock is two atomic read-modify-writes
/// plus dispatch-context bookkeeping, a measurable share of a streamed
/// completion. This cell relies on the protocol instead.
struct OwnerCell<T>(UnsafeCell<T>);

// SAFETY: the cell is only accessed through `OwnerCell::with`, whose callers
// own the slot (see its contract); ownership is handed over with
// release/acquire transitions of `SlotState` (or, between a send and its
// completion, by the I/O target, which calls the completion routine exactly
// once per accepted send, never for a refused one, and orders everything the
// sender did before the send before it: the seam's `IoTarget` safety
// contract). So at most one thread
// accesses the content at a time, each seeing the previous owner's writes;
// `T: Send` lets the content move between those threads.
unsafe impl<T: Send> Sync for OwnerCell<T> {}

impl<T> OwnerCell<T> {
    fn new(value: T) -> Self {
        OwnerCell(UnsafeCell::new(value))
    }

    /// Runs `f` on the content.
    ///
    /// # Safety
    ///
    /// The caller must own the cell's slot (per [`SlotState`]) for the
    /// whole call, and `f` must not call `with` on the same cell.
    #[cfg(not(loom))]
    unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the caller owns the slot, so no other reference to the
        // content exists (see the `Sync` impl), and `f` creates none.
        f(unsafe { &mut *self.0.get() })
    }

    /// Runs `f` on the content; loom's cell checks that the ownership
    /// protocol orders the access after the previous owner's.
    ///
    /// # Safety
    ///
    /// The caller must own the cell's slot (per [`SlotState`]) for the
    /// whole call, and `f` must not call `with` on the same cell.
    #[cfg(loom)]
    unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the caller owns the slot, so no other reference to the
        // content exists (see the `Sync` impl), and `f` creates none.
        self.0.with_mut(|content| f(unsafe { &mut *content }))
    }
}

/// The locked part of a slot: the fields that are not only touched by the
/// slot's owner (passive delivery, stale timers) or only on rare paths. Only
/// the owner locks it on the common paths, so the lock is practically never
/// contended — it exists to keep this safe code.
pub(crate) struct SlotData<P: Platform, H: StreamClient<P>> {
    /// A completion waiting for passive delivery, with its session.
    pending: Option<Pending<P, H>>,
    /// The decision of an early completion, for the sender to apply.
    decision: Option<Decision>,
    /// The session of a parked slot; whoever claims the slot takes it.
    parked: Option<Arc<Session<P, H>>>,
}

/// A completion waiting for passive delivery: what completed, how the
/// completion routine entered, and the session it belongs to.
type Pending<P, H> = (Completed, Entry, Arc<Session<P, H>>);

/// One stream request.
pub(crate) struct Slot<P: Platform, H: StreamClient<P>> {
    pub(crate) index: usize,
    pub(crate) state: SlotState,
    pub(crate) request: P::Request,
    data: P::Lock<SlotData<P, H>>,
    /// Buffers in flight and failure count (owner only, no lock).
    owned: OwnerCell<OwnerData<P>>,
    /// Back-off / refill retry timer; also the fallback for passive delivery.
    timer: P::Timer,
    /// Passive delivery of completions (`passive_level` only).
    work_item: Option<P::WorkItem>,
    /// Per-slot counters (no shared cache line on the request path).
    pub(crate) counters: SlotCounters,
}

/// A slot's membership of one running stream, and the completion routine
/// of its sends (see the module docs).
pub(crate) struct Session<P: Platform, H: StreamClient<P>> {
    /// `Some` until dropped (released before the session is counted gone).
    engine: Option<Arc<Engine<P, H>>>,
    /// The engine's start/stop protocol, kept apart so that the session can
    /// be counted gone after its engine reference is released.
    control: Arc<StreamControl<P::Event>>,
    index: usize,
    /// `Some` until dropped (released before the session is counted gone).
    target: Option<Arc<P::IoTarget>>,
}

impl<P: Platform, H: StreamClient<P>> Session<P, H> {
    fn engine(&self) -> &Arc<Engine<P, H>> {
        match &self.engine {
            Some(engine) => engine,
            // Taken only by `drop`.
            None => unreachable!("CRT: session used after drop"),
        }
    }

    fn slot(&self) -> &Slot<P, H> {
        &self.engine().slots[self.index]
    }
}

impl<P: Platform, H: StreamClient<P>> Drop for Session<P, H> {
    fn drop(&mut self) {
        // The target and engine references go first, so that once `stop`
        // saw every session gone, the stream's owner holds the last engine
        // reference. Were the session's the last one, the engine (with its
        // slot timers and work items) would be dropped here, in a completion
        // routine: deleting a timer waits for its handler, which needs
        // passive level (the seam's `Timer` contract).
        drop(self.target.take());
        drop(self.engine.take());
        self.control.leave_session();
    }
}

/// Runs a slot's timer and work item (holds no strong reference: no cycle).
pub(crate) struct SlotHook<P: Platform, H: StreamClient<P>> {
    engine: Weak<Engine<P, H>>,
    index: usize,
}

/// The shared state of a CRT.
pub(crate) struct Engine<P: Platform, H: StreamClient<P>> {
    pub(crate) platform: P,
    /// The module reference (DMF `DMF_ModuleReference`): public methods hold
    /// one; close ends it.
    pub(crate) module: Rundown<P::Event>,
    /// Set when close begins: `start` is refused from then on.
    pub(crate) closing: AtomicBool,
    pub(crate) config: ContinuousRequestTargetConfig,
    pub(crate) client: H,
    /// The target streamed to (shared with the non-streaming transport).
    pub(crate) target: P::Lock<Option<Arc<P::IoTarget>>>,
    /// Start/stop protocol: phase, send rundown, stream count, events.
    control: Arc<StreamControl<P::Event>>,
    /// Whether streaming ran when the device left D0.
    pub(crate) resume_after_d0: AtomicBool,
    /// Incremented by `buffer_put` (missed-wake-up check of auto-refill).
    buffer_returns: AtomicU64,
    pub(crate) slots: Box<[Slot<P, H>]>,
    input_pool: Option<BufferPool<P>>,
    pub(crate) output_pool: Option<BufferPool<P>>,
    pub(crate) counters: Counters,
    /// Where the module's transitions are recorded.
    pub(crate) journal: Journal<P>,
}

impl<P: Platform, H: StreamClient<P>> Engine<P, H> {
    /// Creates the pools, the N requests with their timers and work items,
    /// and the events.
    pub(crate) fn new(
        platform: P,
        config: ContinuousRequestTargetConfig,
        client: H,
        journal: Journal<P>,
    ) -> Result<Arc<Self>> {
        let n = config.continuous_request_count as usize;
        // Pools only for a stream (N = 0: a plain transport needs none).
        let input_pool = if n > 0 && config.buffer_input_size > 0 {
            Some(BufferPool::new_in(
                &platform,
                BufferPoolConfig::new(config.buffer_count_input, config.buffer_input_size)
                    .with_context_size(config.buffer_context_input_size)
                    .with_pool_type(config.pool_type_input),
                journal.clone(),
            )?)
        } else {
            None
        };
        let output_pool = if n > 0 && config.buffer_output_size > 0 {
            Some(BufferPool::new_in(
                &platform,
                BufferPoolConfig::new(config.buffer_count_output, config.buffer_output_size)
                    .with_context_size(config.buffer_context_output_size)
                    .with_look_aside(config.enable_look_aside_output)
                    .with_pool_type(config.pool_type_output),
                journal.clone(),
            )?)
        } else {
            None
        };
        let mut requests = Vec::with_capacity(n);
        for _ in 0..n {
            requests.push(platform.create_request(None)?);
        }
        let module = Rundown::new(platform.create_event(false)?);
        let control = StreamControl::new(
            platform.create_event(false)?,
            platform.create_event(true)?,
            platform.create_event(true)?,
            platform.create_event(false)?,
        );

        let mut failure: Option<Status> = None;
        let engine = Arc::new_cyclic(|weak: &Weak<Engine<P, H>>| {
            let mut slots = Vec::with_capacity(n);
            for (index, request) in requests.into_iter().enumerate() {
                let hook = Arc::new(SlotHook {
                    engine: weak.clone(),
                    index,
                });
                let timer = match platform.create_timer(hook.clone()) {
                    Ok(t) => t,
                    Err(status) => {
                        failure = Some(status);
                        break;
                    }
                };
                let work_item = if config.passive_level {
                    match platform.create_work_item(hook) {
                        Ok(w) => Some(w),
                        Err(status) => {
                            failure = Some(status);
                            break;
                        }
                    }
                } else {
                    None
                };
                slots.push(Slot {
                    index,
                    state: SlotState::new(),
                    request,
                    data: P::Lock::new(SlotData {
                        pending: None,
                        decision: None,
                        parked: None,
                    }),
                    owned: OwnerCell::new(OwnerData {
                        input: None,
                        output: None,
                        failures: 0,
                    }),
                    timer,
                    work_item,
                    counters: SlotCounters::default(),
                });
            }
            Engine {
                platform: platform.clone(),
                module,
                closing: AtomicBool::new(false),
                config,
                client,
                target: P::Lock::new(None),
                control: Arc::new(control),
                resume_after_d0: AtomicBool::new(false),
                buffer_returns: AtomicU64::new(0),
                slots: slots.into_boxed_slice(),
                input_pool,
                output_pool,
                counters: Counters::default(),
                journal,
            }
        });
        match failure {
            Some(status) => Err(status),
            None => Ok(engine),
        }
    }

    /// The current target, if any.
    pub(crate) fn current_target(&self) -> Option<Arc<P::IoTarget>> {
        self.target.lock().clone()
    }

    /// The stream's state as clients see it: a running stream whose
    /// requests have all retired on their own (the client stopped them, or
    /// failures retired them) is `Stopped`, although its protocol phase
    /// stays `Running` until [`end_retired`](Self::end_retired) or a stop ends
    /// it.
    /// Racy snapshot: a count that reached zero stays there until the next
    /// start (only `begin_start` sets it).
    pub(crate) fn stream_state(&self) -> StreamState {
        match self.control.state() {
            StreamState::Running if self.control.active() == 0 => StreamState::Stopped,
            state => state,
        }
    }

    /// Ends a running stream whose requests have all retired on their own
    /// (see [`stream_state`](Self::stream_state)), so that it can start
    /// again: the stop has nothing to cancel and waits only for the last
    /// retirements to release their sessions. Passive level; never from a
    /// stream callback.
    fn end_retired(&self) {
        if self.control.state() == StreamState::Running && self.control.active() == 0 {
            tracing::debug!("CRT: every stream request retired on its own; stream ends");
            self.stop();
        }
    }

    pub(crate) fn active(&self) -> usize {
        self.control.active()
    }

    // ------------------------------------------------------------------
    // start / stop
    // ------------------------------------------------------------------

    /// Starts streaming. Passive level (the failure path waits).
    pub(crate) fn start(self: &Arc<Self>) -> Result<()> {
        if self.slots.is_empty() {
            return Err(Status::NOT_SUPPORTED);
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        let target = self.current_target().ok_or(Status::INVALID_DEVICE_STATE)?;
        self.end_retired();
        self.control.begin_start(self.slots.len())?;
        transition!(
            self.journal,
            DEBUG,
            "CRT: stream start",
            requests = self.slots.len()
        );

        let mut failure: Option<Status> = None;
        for slot in self.slots.iter() {
            let claimed = slot.state.claim_idle();
            debug_assert!(claimed, "slot {} not idle at start", slot.index);
            if !claimed {
                // Unreachable (a stop returns only once every slot is idle);
                // keep the count right regardless so `stop` cannot hang.
                self.control.retire_one();
                continue;
            }
            if failure.is_some() {
                self.retire(slot, RetireReason::Stopped);
                continue;
            }
            // SAFETY: we own the slot (claimed from `Idle` above).
            unsafe { slot.owned.with(|o| o.failures = 0) };
            let entered = self.control.enter_session();
            debug_assert!(
                entered,
                "sessions ended while slot {} is in the stream",
                slot.index
            );
            let session = Arc::new(Session {
                engine: Some(Arc::clone(self)),
                control: Arc::clone(&self.control),
                index: slot.index,
                target: Some(Arc::clone(&target)),
            });
            let first = self.run(&session);
            drop(session);
            if let Some(reason) = first {
                failure = Some(match reason {
                    RetireReason::Stopped => Status::CANCELLED,
                    RetireReason::SendFailed { status } => status,
                    RetireReason::OutputBufferUnavailable
                    | RetireReason::InputBufferUnavailable => Status::INSUFFICIENT_RESOURCES,
                    RetireReason::ClientStopped { status } => status,
                });
            }
        }
        match failure {
            None => Ok(()),
            Some(status) => {
                transition!(
                    self.journal,
                    WARN,
                    "CRT: stream start failed, stopping",
                    ?status
                );
                self.stop();
                Err(status)
            }
        }
    }

    /// Stops streaming: cancels every stream request and waits until all have
    /// retired. Idempotent; concurrent callers all return once stopped.
    /// Passive level.
    pub(crate) fn stop(&self) {
        if self.control.begin_stop() != StopRole::Owner {
            return;
        }
        transition!(
            self.journal,
            DEBUG,
            "CRT: stream stop",
            active = self.control.active()
        );
        // Every request accepted by the target is now in flight or being
        // completed, and no resend can follow: cancel them all.
        for slot in self.slots.iter() {
            slot.request.cancel_sent();
        }
        for slot in self.slots.iter() {
            if slot.state.claim_parked(ClaimFilter::Any) {
                slot.timer.stop(false);
                let session = slot.data.lock().parked.take();
                self.retire(slot, RetireReason::Stopped);
                drop(session);
            }
        }
        // Waits until every slot retired and every session is gone.
        self.control.finish_stop();
        transition!(self.journal, DEBUG, "CRT: stream stopped");
    }

    /// Waits for every slot timer handler and work item (close).
    pub(crate) fn quiesce(&self) {
        for slot in self.slots.iter() {
            slot.timer.stop(true);
            if let Some(w) = &slot.work_item {
                w.flush();
            }
        }
    }

    // ------------------------------------------------------------------
    // the send loop
    // ------------------------------------------------------------------

    /// Sends the session's slot (owned by the caller, state `Sending`) and
    /// keeps going while early completions hand decisions back. Returns the
    /// retirement reason if the *first* attempt could not be sent (used by
    /// `start`).
    fn run(&self, session: &Arc<Session<P, H>>) -> Option<RetireReason> {
        let slot = &self.slots[session.index];
        let mut first = true;
        let mut inline_resends = 0u32;
        loop {
            if !self.control.enter_send() {
                self.retire(slot, RetireReason::Stopped);
                return first.then_some(RetireReason::Stopped);
            }
            let auto_refill = self.config.auto_refill;
            let returns_before = if auto_refill {
                self.buffer_returns.load(Ordering::Acquire)
            } else {
                0
            };
            if let Err(reason) = self.send_once(slot, session) {
                if reason == RetireReason::OutputBufferUnavailable && auto_refill {
                    self.park_for_buffer(slot, Arc::clone(session));
                    self.control.leave_send();
                    // A buffer returned between our attempt and the park
                    // would have found nothing to wake: look again.
                    if self.buffer_returns.load(Ordering::Acquire) != returns_before
                        && slot.state.claim_parked(ClaimFilter::Buffer)
                    {
                        slot.timer.stop(false);
                        bump(&self.counters.resumed);
                        // The stored session is ours (one per slot and start).
                        drop(slot.data.lock().parked.take());
                        continue;
                    }
                    return None;
                }
                self.control.leave_send();
                self.retire(slot, reason);
                return first.then_some(reason);
            }
            first = false;
            let after = slot.state.sent();
            self.control.leave_send();
            match after {
                AfterSend::Released => return None,
                AfterSend::Resumed => {
                    let decision = slot.data.lock().decision.take();
                    match decision.unwrap_or(Decision::Retire(RetireReason::Stopped)) {
                        Decision::Resend if inline_resends >= MAX_INLINE_RESENDS => {
                            self.park_on_timer(slot, Arc::clone(session), 0, TimerPark::Defer);
                            return None;
                        }
                        Decision::Resend => {
                            inline_resends += 1;
                            slot.state.to_sending();
                        }
                        Decision::Backoff(ms) => {
                            self.park_on_timer(slot, Arc::clone(session), ms, TimerPark::Backoff);
                            return None;
                        }
                        Decision::Retire(reason) => {
                            self.retire(slot, reason);
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// One (re)send of `slot`. The caller owns the slot and holds a
    /// send-rundown reference. On failure every buffer is back in its pool.
    fn send_once(
        &self,
        slot: &Slot<P, H>,
        session: &Arc<Session<P, H>>,
    ) -> core::result::Result<(), RetireReason> {
        let failed = |status| RetireReason::SendFailed { status };
        let Some(target) = &session.target else {
            return Err(failed(Status::INVALID_DEVICE_STATE));
        };
        slot.request.reuse().map_err(failed)?;
        let mut input = match &self.input_pool {
            Some(pool) => Some(
                pool.get()
                    .map_err(|_| RetireReason::InputBufferUnavailable)?,
            ),
            None => None,
        };
        let mut output = match &self.output_pool {
            Some(pool) => Some(
                pool.get()
                    .map_err(|_| RetireReason::OutputBufferUnavailable)?,
            ),
            None => None,
        };
        let input_raw = input.as_mut().map(|buffer| {
            let (data, context) = buffer.split_mut();
            let len = self.client.buffer_input(data, context).min(data.len());
            buffer.raw_prefix(len)
        });
        let output_raw = output.as_mut().map(|buffer| buffer.raw_buffer());
        // SAFETY: the buffers' memory belongs to their pools and does not move
        // when the guards move. The guards are stored in the slot right below
        // and only taken out by the completion of this send (or by the refusal
        // path here), so the memory stays valid and untouched by us until the
        // request completes, and the target touches it no more once the
        // completion routine runs or the send is refused (the seam's
        // `IoTarget` safety contract); the request is re-initialised (`reuse`)
        // before it is formatted again.
        unsafe {
            target.format_request(
                &slot.request,
                self.config.request_type,
                self.config.continuous_request_target_ioctl,
                input_raw,
                output_raw,
            )
        }
        .map_err(failed)?;
        // SAFETY: the caller owns the slot; the send below hands it (with
        // these buffers) to the target.
        unsafe {
            slot.owned.with(|o| {
                o.input = input;
                o.output = output;
            })
        };
        match target.send(&slot.request, SendOptions::default(), Arc::clone(session)) {
            Ok(()) => {
                bump_owned(&slot.counters.sends);
                tracing::trace!(slot = slot.index, "CRT: stream request sent");
                Ok(())
            }
            Err(status) => {
                // SAFETY: the target refused the request, so no completion
                // will run (the seam's `IoTarget` safety contract): the slot
                // is still ours.
                let (input, output) =
                    unsafe { slot.owned.with(|o| (o.input.take(), o.output.take())) };
                drop((input, output));
                Err(failed(status))
            }
        }
    }

    // ------------------------------------------------------------------
    // completion
    // ------------------------------------------------------------------

    /// Processes a completion (the caller owns the slot as `entry` says).
    fn process(&self, session: &Arc<Session<P, H>>, completed: Completed, entry: Entry) {
        let slot = &self.slots[session.index];
        let decision = self.decide(slot, completed);
        if entry == Entry::Early {
            slot.data.lock().decision = Some(decision);
            if slot.state.finish_early() {
                return; // the sender applies it (and keeps its session reference)
            }
            slot.data.lock().decision = None;
        }
        match decision {
            Decision::Resend => {
                slot.state.to_sending();
                self.run(session);
            }
            Decision::Backoff(ms) => {
                self.park_on_timer(slot, Arc::clone(session), ms, TimerPark::Backoff)
            }
            // The caller drops its session reference after this returns.
            Decision::Retire(reason) => self.retire(slot, reason),
        }
    }

    /// Runs the client's output callback and decides what happens next.
    fn decide(&self, slot: &Slot<P, H>, completed: Completed) -> Decision {
        let Completed {
            status,
            information,
        } = completed;
        bump_owned(&slot.counters.completions);
        tracing::trace!(
            slot = slot.index,
            ?status,
            information,
            "CRT: stream completion"
        );
        // SAFETY: the completion routine (or whoever it handed the slot to)
        // owns the slot: it runs once per accepted send (the seam's
        // `IoTarget` safety contract); an early completion owns it too, as
        // the sender touches nothing of it until it resumes ownership
        // (`sent`).
        let (input, output, failures, previous_failures) = unsafe {
            slot.owned.with(|o| {
                let previous = o.failures;
                if status.is_error() {
                    o.failures = o.failures.saturating_add(1);
                } else {
                    o.failures = 0;
                }
                (o.input.take(), o.output.take(), o.failures, previous)
            })
        };
        if self.config.backoff.is_enabled() {
            if status.is_error() && previous_failures == 0 {
                transition!(
                    self.journal,
                    DEBUG,
                    "CRT: stream request fails, back-off entered",
                    slot = slot.index,
                    ?status
                );
            } else if !status.is_error() && previous_failures > 0 {
                transition!(
                    self.journal,
                    DEBUG,
                    "CRT: stream request succeeds again, back-off left",
                    slot = slot.index,
                    failures = previous_failures
                );
            }
        }
        if status.is_error() {
            bump_owned(&slot.counters.failed_completions);
        }
        drop(input); // input buffers always go home
        let had_output = output.is_some();
        let stopping = !self.control.is_running();
        if stopping {
            bump(&self.counters.completions_during_stop);
            if self.config.deliver_completions_during_stop {
                bump(&self.counters.completions_delivered_during_stop);
                let disposition = self.client.buffer_output(StreamCompletion {
                    status,
                    information,
                    output,
                    slot: slot.index,
                    stopping: true,
                });
                self.settle(disposition, had_output);
            }
            return Decision::Retire(RetireReason::Stopped);
        }
        let disposition = self.client.buffer_output(StreamCompletion {
            status,
            information,
            output,
            slot: slot.index,
            stopping: false,
        });
        if !self.settle(disposition, had_output) {
            return Decision::Retire(RetireReason::ClientStopped { status });
        }
        if status.is_error() && self.config.backoff.is_enabled() {
            Decision::Backoff(self.config.backoff.delay_ms(failures))
        } else {
            Decision::Resend
        }
    }

    /// Applies the ownership part of a disposition; returns whether it
    /// continues. `had_output`: the completion handed to the client carried
    /// an output buffer. It stayed with the client unless the disposition
    /// gives it back: a `ClientOwns*` disposition, or a `ModuleOwns*` one
    /// without the buffer (the client took it with
    /// [`take_output`](crate::StreamCompletion::take_output) first).
    fn settle(&self, disposition: OutputDisposition<P>, had_output: bool) -> bool {
        let continues = disposition.continues();
        let returned = match disposition {
            OutputDisposition::ModuleOwnsAndContinue(buffer)
            | OutputDisposition::ModuleOwnsAndStop(buffer) => {
                let returned = buffer.is_some();
                drop(buffer);
                returned
            }
            OutputDisposition::ClientOwnsAndContinue | OutputDisposition::ClientOwnsAndStop => {
                false
            }
        };
        if had_output && !returned {
            bump(&self.counters.buffers_kept_by_client);
        }
        continues
    }

    // ------------------------------------------------------------------
    // park / retire / resume
    // ------------------------------------------------------------------

    /// Owner only: park until the slot's timer fires (back-off, or a resend
    /// deferred after [`MAX_INLINE_RESENDS`]).
    fn park_on_timer(
        &self,
        slot: &Slot<P, H>,
        session: Arc<Session<P, H>>,
        ms: u32,
        why: TimerPark,
    ) {
        if !self.control.enter_send() {
            self.retire(slot, RetireReason::Stopped);
            return;
        }
        match why {
            TimerPark::Backoff => {
                bump(&self.counters.backoffs);
                tracing::trace!(slot = slot.index, ms, "CRT: stream request backs off");
            }
            TimerPark::Defer => {
                bump(&self.counters.deferred_resends);
                tracing::trace!(
                    slot = slot.index,
                    "CRT: stream request completes inline repeatedly; resend deferred to its timer"
                );
            }
        }
        slot.data.lock().parked = Some(session);
        slot.state.park(ParkKind::Timer);
        // Armed after parking so a firing always finds the slot parked; the
        // send-rundown reference keeps `stop` from passing before it is armed.
        slot.timer.start(u64::from(ms));
        self.control.leave_send();
    }

    /// Owner only, holding a send-rundown reference: park until an output
    /// buffer comes back.
    fn park_for_buffer(&self, slot: &Slot<P, H>, session: Arc<Session<P, H>>) {
        bump(&self.counters.parked_for_buffer);
        tracing::trace!(
            slot = slot.index,
            "CRT: stream request waits for an output buffer"
        );
        slot.data.lock().parked = Some(session);
        slot.state.park(ParkKind::Buffer);
        if self.config.auto_refill_retry_ms > 0 {
            slot.timer
                .start(u64::from(self.config.auto_refill_retry_ms));
        }
    }

    /// Takes the session of a slot just claimed from `Parked`.
    fn resume(&self, slot: &Slot<P, H>) {
        bump(&self.counters.resumed);
        // (Not in the `match` scrutinee: the guard would live through `run`.)
        let parked = slot.data.lock().parked.take();
        match parked {
            Some(session) => {
                self.run(&session);
            }
            // Unreachable: a parked slot stores its session.
            None => self.retire(slot, RetireReason::Stopped),
        }
    }

    /// Owner only: the slot leaves the stream.
    ///
    /// The client is told after the count went down, with the count the
    /// decrement produced: of two slots retiring at the same time, each
    /// reports a different `remaining` and exactly one reports 0. The caller
    /// still holds the slot's session (for every reason the client is told
    /// of), so `stop` cannot return before the report is delivered.
    fn retire(&self, slot: &Slot<P, H>, reason: RetireReason) {
        self.counters.retired(reason);
        slot.state.retire();
        let remaining = self.control.retire_one();
        if remaining == 0 {
            // Not recorded: a stop waiting for this may record "stream
            // stopped" first (the retirement records carry `remaining`).
            tracing::debug!("CRT: no stream request left in flight");
        }
        if reason != RetireReason::Stopped {
            transition!(
                self.journal,
                DEBUG,
                "CRT: stream request retired",
                slot = slot.index,
                ?reason,
                remaining
            );
            self.client.stream_request_retired(Retirement {
                slot: slot.index,
                reason,
                remaining,
            });
        }
    }

    /// A buffer came back through `buffer_put`: resume one slot waiting for one.
    pub(crate) fn buffer_returned(&self) {
        self.buffer_returns.fetch_add(1, Ordering::AcqRel);
        if !self.config.auto_refill {
            return;
        }
        for slot in self.slots.iter() {
            if slot.state.claim_parked(ClaimFilter::Buffer) {
                slot.timer.stop(false);
                self.resume(slot);
                return;
            }
        }
    }

    /// A slot's timer fired or its work item ran (passive level).
    fn hook(&self, index: usize) {
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let pending = slot.data.lock().pending.take();
        if let Some((completed, entry, session)) = pending {
            self.process(&session, completed, entry);
            return;
        }
        if slot.state.claim_parked(ClaimFilter::Any) {
            self.resume(slot);
        }
    }
}

impl<P: Platform, H: StreamClient<P>> CompletionRoutine for Session<P, H> {
    fn completed(self: Arc<Self>, completion: Completed) {
        let slot = self.slot();
        let entry = slot.state.completing();
        if let Some(work_item) = &slot.work_item {
            slot.data.lock().pending = Some((completion, entry, Arc::clone(&self)));
            if work_item.enqueue().is_err() {
                // Never lose a completion: the slot's timer is idle while the
                // request is in flight, and its handler runs at passive level.
                slot.timer.start(0);
            }
            return;
        }
        self.engine().process(&self, completion, entry);
    }
}

impl<P: Platform, H: StreamClient<P>> TimerHandler for SlotHook<P, H> {
    fn fired(&self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.hook(self.index);
        }
    }
}

impl<P: Platform, H: StreamClient<P>> WorkItemHandler for SlotHook<P, H> {
    fn run(&self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.hook(self.index);
        }
    }
}
