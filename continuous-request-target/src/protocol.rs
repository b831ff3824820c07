//! The lock-free ownership protocol of the stream slots, separated from any
//! I/O; `tests/loom_engine.rs` model-checks it with `loom`, driven by the engine.
//!
//! Hidden from the docs: public only so that tests can drive it (its
//! [`StreamState`] is re-exported at the crate root).
//!
//! A *slot* is one of the N stream requests. At every instant exactly one
//! party owns it — the thread launching it, the I/O target (while it is in
//! flight), the completion routine, or nobody (parked, waiting to be claimed
//! by a timer, a returned buffer or `stop`) — and only the owner touches the
//! slot's request and buffers. [`SlotState`] makes every hand-over an atomic
//! transition:
//!
//! ```text
//!            claim_idle                     sent()                    completing()
//!   Idle ─────────────────▶ Sending ───────────────────▶ InFlight ───────────────────▶ Processing
//!    ▲                        │  ▲                                                        │
//!    │ retire (owner)         │  └───────────── to_sending (owner: resend) ───────────────┤
//!    └────────────────────────┴──────────────────────────────────────────────────────────┤
//!                                                                    park (owner)        │
//!   Parked{Timer,Buffer} ◀─────────────────────────────────────────────────────────────────┘
//!        └── claim_parked (timer / buffer return / stop) ──▶ Sending
//! ```
//!
//! The subtle case is a completion that runs *before the sender has left
//! `send`* — on the same thread (the target completed the request inline) or
//! on another one. The completion then moves `Sending → Early` and processes
//! the completion; afterwards it either hands its decision back to the sender
//! (`Early → Handoff`, the sender resumes ownership and applies it — so an
//! inline completion never recurses into another send), or, if the sender has
//! already left (`Early → SenderLeft`), it keeps ownership and applies the
//! decision itself.
//!
//! [`StreamCount`] counts the slots that are part of the running stream; the
//! retirement that brings it to zero reports it.
//!
//! [`StreamControl`] is the start/stop state machine around them: the stream
//! phase (stopped / starting / running / stopping) with the number of
//! concurrent `stop` callers waiting, the *send rundown* that brackets every
//! (re)send and park, the stream count, and the two events `stop` waits on.
//! See its docs for the protocol.

use dmf_wdf::{Event, Result, Rundown, Status};

use crate::primitive::{spin_loop, AtomicU8, AtomicUsize, Ordering};

/// Not part of the stream.
const IDLE: u8 = 0;
/// Owned by a sender that is preparing or sending the request.
const SENDING: u8 = 1;
/// Accepted by the target; the completion routine is the next owner.
const IN_FLIGHT: u8 = 2;
/// Owned by the completion routine (or whoever it handed the slot to).
const PROCESSING: u8 = 3;
/// The completion runs while the sender has not yet left `send`.
const EARLY: u8 = 4;
/// The early completion finished processing; the sender owns the slot again.
const HANDOFF: u8 = 5;
/// The sender left while the early completion was processing; the completion owns the slot.
const SENDER_LEFT: u8 = 6;
/// Parked until a retry timer fires.
const PARKED_TIMER: u8 = 7;
/// Parked until an output buffer comes back (or the retry timer fires).
const PARKED_BUFFER: u8 = 8;

/// The observable phase of a slot (diagnostics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Not part of the stream.
    Idle,
    /// Being prepared or sent.
    Sending,
    /// Sent and not yet completed.
    InFlight,
    /// Its completion is being processed.
    Processing,
    /// Waiting for a retry timer (back-off) or a returned output buffer.
    Parked,
}

/// Why a slot is parked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParkKind {
    /// Waiting for its back-off timer.
    Timer,
    /// Waiting for an output buffer to come back to the pool (its retry timer
    /// is armed as well).
    Buffer,
}

/// Which parked slots a claimer accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClaimFilter {
    /// Any parked slot (timers, `stop`).
    Any,
    /// Only slots waiting for an output buffer (a buffer came back).
    Buffer,
}

/// What the sender learns after the target accepted its send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AfterSend {
    /// The slot now belongs to the target or to the completion routine; the
    /// sender must not touch it again.
    Released,
    /// The request already completed and the completion handed its decision
    /// back: the sender owns the slot again and must apply that decision.
    Resumed,
}

/// How the completion routine entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// Normal case: the completion routine owns the slot.
    Owner,
    /// The sender has not left `send` yet; after processing call
    /// [`SlotState::finish_early`].
    Early,
}

/// The ownership state of one stream slot. See the [module docs](self).
///
/// # Invariants
///
/// Only the current owner calls the owner-only methods
/// ([`to_sending`](SlotState::to_sending), [`park`](SlotState::park),
/// [`retire`](SlotState::retire), [`sent`](SlotState::sent)); the protocol
/// guarantees there is exactly one. Every transfer of ownership is a
/// release/acquire pair, so data the previous owner wrote is visible to the
/// next.
#[derive(Debug)]
pub struct SlotState {
    state: AtomicU8,
}

impl Default for SlotState {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotState {
    /// A slot that is not part of the stream.
    pub fn new() -> Self {
        SlotState {
            state: AtomicU8::new(IDLE),
        }
    }

    /// The current phase (a racy snapshot).
    pub fn phase(&self) -> Phase {
        match self.state.load(Ordering::Acquire) {
            IDLE => Phase::Idle,
            SENDING | HANDOFF => Phase::Sending,
            IN_FLIGHT => Phase::InFlight,
            PARKED_TIMER | PARKED_BUFFER => Phase::Parked,
            _ => Phase::Processing,
        }
    }

    /// `Idle → Sending`: `start` takes the slot. Fails if it is not idle.
    pub fn claim_idle(&self) -> bool {
        self.state
            .compare_exchange(IDLE, SENDING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `Parked → Sending`: a timer, a returned buffer or `stop` takes a
    /// parked slot. Fails if it is not parked (or not parked for a buffer
    /// with [`ClaimFilter::Buffer`]).
    pub fn claim_parked(&self, filter: ClaimFilter) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let eligible = match filter {
                ClaimFilter::Any => current == PARKED_TIMER || current == PARKED_BUFFER,
                ClaimFilter::Buffer => current == PARKED_BUFFER,
            };
            if !eligible {
                return false;
            }
            match self
                .state
                .compare_exchange(current, SENDING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Owner only, after the target accepted the send.
    pub fn sent(&self) -> AfterSend {
        match self
            .state
            .compare_exchange(SENDING, IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => AfterSend::Released,
            Err(EARLY) => match self.state.compare_exchange(
                EARLY,
                SENDER_LEFT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => AfterSend::Released,
                Err(actual) => {
                    debug_assert_eq!(actual, HANDOFF);
                    self.state.store(PROCESSING, Ordering::Relaxed);
                    AfterSend::Resumed
                }
            },
            Err(actual) => {
                debug_assert_eq!(actual, HANDOFF, "sent() in an unexpected state");
                self.state.store(PROCESSING, Ordering::Relaxed);
                AfterSend::Resumed
            }
        }
    }

    /// Completion routine entry: takes the slot from the target.
    pub fn completing(&self) -> Entry {
        let mut expected = IN_FLIGHT;
        loop {
            let next = if expected == IN_FLIGHT {
                PROCESSING
            } else {
                EARLY
            };
            match self
                .state
                .compare_exchange(expected, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if expected == IN_FLIGHT => return Entry::Owner,
                Ok(_) => return Entry::Early,
                Err(actual) => {
                    debug_assert!(
                        actual == IN_FLIGHT || actual == SENDING,
                        "completion of a slot that was not sent (state {actual})"
                    );
                    expected = actual;
                }
            }
        }
    }

    /// An early completion finished processing (its decision is stored in
    /// the slot). Returns `true` if the decision was handed to the sender
    /// (the caller must not touch the slot any more), `false` if the sender
    /// already left and the caller owns the slot and applies the decision.
    pub fn finish_early(&self) -> bool {
        match self
            .state
            .compare_exchange(EARLY, HANDOFF, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(actual) => {
                debug_assert_eq!(actual, SENDER_LEFT);
                self.state.store(PROCESSING, Ordering::Relaxed);
                false
            }
        }
    }

    /// Owner only: about to (re)send.
    pub fn to_sending(&self) {
        self.state.store(SENDING, Ordering::Release);
    }

    /// Owner only: parks the slot; it is then owned by whoever claims it.
    pub fn park(&self, kind: ParkKind) {
        let s = match kind {
            ParkKind::Timer => PARKED_TIMER,
            ParkKind::Buffer => PARKED_BUFFER,
        };
        self.state.store(s, Ordering::Release);
    }

    /// Owner only: the slot leaves the stream.
    pub fn retire(&self) {
        self.state.store(IDLE, Ordering::Release);
    }
}

/// The number of slots that are part of the running stream.
#[derive(Debug, Default)]
pub struct StreamCount {
    active: AtomicUsize,
}

impl StreamCount {
    /// Zero slots.
    pub fn new() -> Self {
        StreamCount {
            active: AtomicUsize::new(0),
        }
    }

    /// `start`: `n` slots join the stream. Only valid while the count is 0.
    pub fn begin(&self, n: usize) {
        let prev = self.active.swap(n, Ordering::AcqRel);
        debug_assert_eq!(prev, 0, "stream started while slots were still active");
    }

    /// One slot retired; returns the slots still in the stream after it
    /// (taken from the decrement itself, so of several slots retiring at the
    /// same time each sees a different count and exactly one sees 0; the
    /// caller that sees 0 signals the "all retired" event).
    pub fn retire_one(&self) -> usize {
        let prev = self.active.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev >= 1, "retire_one below zero");
        prev.wrapping_sub(1)
    }

    /// Slots currently in the stream.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// Whether streaming runs ([`ContinuousRequestTarget::stream_state`](crate::ContinuousRequestTarget::stream_state)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamState {
    /// Not streaming (initial state; after `stop` returned).
    Stopped,
    /// `start` is arming the stream (a few atomic operations, never blocks).
    Starting,
    /// Started. Stream requests may still all have retired on their own
    /// (see [`active_stream_requests`](crate::ContinuousRequestTarget::active_stream_requests)).
    Running,
    /// `stop` is cancelling and waiting.
    Stopping,
}

/// Phase bits of [`StreamControl::word`].
const PHASE_MASK: usize = 0b11;
const P_STOPPED: usize = 0;
const P_STARTING: usize = 1;
const P_RUNNING: usize = 2;
const P_STOPPING: usize = 3;
/// One `stop` caller waiting for the stop in progress (upper bits).
const WAITER: usize = 1 << 2;

/// What [`StreamControl::begin_stop`] made of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum StopRole {
    /// Streaming was not running: nothing to do.
    NotRunning,
    /// Another caller was stopping; this one waited until it finished.
    Waited,
    /// This caller stops the stream: the send rundown has ended (no send or
    /// park is in progress or will start), so it must now cancel every stream
    /// request, claim the parked slots, and call
    /// [`finish_stop`](StreamControl::finish_stop).
    Owner,
}

/// The start/stop state machine of a stream (no I/O inside; the engine
/// cancels and claims slots between [`begin_stop`](Self::begin_stop) and
/// [`finish_stop`](Self::finish_stop)).
///
/// Protocol:
///
/// * `begin_start(n)`: `Stopped → Starting` (refused in any other phase),
///   resets the events, sets the stream count to `n`, re-arms the send
///   rundown, then `Starting → Running`. Only after that does the caller
///   send; so a concurrent `stop` either finds `Stopped` (and returns; the
///   start then runs normally), or sees `Starting`/`Running` and stops the
///   whole armed stream.
/// * Every send and every park of a slot happens between
///   [`enter_send`](Self::enter_send) (refused once a stop has begun) and
///   [`leave_send`](Self::leave_send).
/// * `begin_stop`: `Running → Stopping`, then ends the send rundown, waiting
///   for sends in progress. From then on each accepted request is visibly in
///   flight or its completion is running, so cancelling the N requests
///   reaches everything; resends fail, and each slot retires.
///   A caller finding `Stopping` registers as a waiter (in the same atomic
///   word as the phase) and waits for the `stopped` event; `begin_start`
///   cannot reset that event while waiters remain, so a waiter never
///   misses the wake-up. A caller finding `Starting` spins (start never
///   blocks in that phase).
/// * The retirement that brings the count to zero signals `all_retired`;
///   `finish_stop` waits for it and for every session to be released
///   ([`enter_session`](Self::enter_session)), then `Stopping → Stopped`
///   and signals `stopped`.
///
/// # Invariants
///
/// The stream count is 0 whenever the phase is `Stopped`; the send rundown
/// is stopped whenever the phase is `Stopped` or (after `begin_stop`
/// returned `Owner`) `Stopping`.
pub struct StreamControl<E: Event> {
    /// Phase in the low two bits, waiting stoppers × [`WAITER`] above.
    word: AtomicUsize,
    send_rundown: Rundown<E>,
    count: StreamCount,
    all_retired: E,
    stopped: E,
    /// Sessions (per-slot stream memberships) alive; see
    /// [`enter_session`](Self::enter_session).
    sessions: Rundown<E>,
}

impl<E: Event> core::fmt::Debug for StreamControl<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamControl")
            .field("state", &self.state())
            .field("active", &self.active())
            .finish()
    }
}

impl<E: Event> StreamControl<E> {
    /// A stopped stream. The events must be created signalled/unsignalled as
    /// named: `rundown_event` and `sessions_event` unsignalled, `all_retired`
    /// and `stopped` signalled.
    pub fn new(rundown_event: E, all_retired: E, stopped: E, sessions_event: E) -> Self {
        StreamControl {
            word: AtomicUsize::new(P_STOPPED),
            send_rundown: Rundown::new(rundown_event),
            count: StreamCount::new(),
            all_retired,
            stopped,
            sessions: Rundown::new(sessions_event),
        }
    }

    /// The current phase (a racy snapshot).
    pub fn state(&self) -> StreamState {
        match self.word.load(Ordering::Acquire) & PHASE_MASK {
            P_STOPPED => StreamState::Stopped,
            P_STARTING => StreamState::Starting,
            P_RUNNING => StreamState::Running,
            _ => StreamState::Stopping,
        }
    }

    /// Whether the phase is `Running` (completions use it to tell
    /// completions during stop apart).
    pub fn is_running(&self) -> bool {
        self.word.load(Ordering::Acquire) & PHASE_MASK == P_RUNNING
    }

    /// Slots currently part of the stream.
    pub fn active(&self) -> usize {
        self.count.active()
    }

    /// Arms a stream of `n` slots (see the protocol). Refused with
    /// `STATUS_INVALID_DEVICE_STATE` unless stopped. Never blocks (it may
    /// spin briefly while woken stoppers leave).
    pub fn begin_start(&self, n: usize) -> Result<()> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            if current & PHASE_MASK != P_STOPPED {
                return Err(Status::INVALID_DEVICE_STATE);
            }
            if current != P_STOPPED {
                // Stopped, but stoppers woken by the last stop have not left
                // yet: resetting `stopped` now could strand them.
                spin_loop();
                current = self.word.load(Ordering::Acquire);
                continue;
            }
            match self.word.compare_exchange(
                P_STOPPED,
                P_STARTING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.stopped.reset();
        self.all_retired.reset();
        self.count.begin(n);
        if n == 0 {
            self.all_retired.set();
        }
        self.sessions.start();
        self.send_rundown.start();
        // Only `begin_start` leaves `Starting`, and stoppers only spin on
        // it, so a plain store of the phase keeps the (zero) waiter bits.
        self.word.store(P_RUNNING, Ordering::Release);
        Ok(())
    }

    /// Before a (re)send or a park: refused (returns `false`) once a stop
    /// has begun. Pair a `true` with [`leave_send`](Self::leave_send).
    pub fn enter_send(&self) -> bool {
        self.send_rundown.reference().is_ok()
    }

    /// After the send (accepted or not) or the park.
    pub fn leave_send(&self) {
        self.send_rundown.release();
    }

    /// A slot joins the stream with a session (between `begin_start` and
    /// its retirement); pair a `true` with
    /// [`leave_session`](Self::leave_session) once the slot retired and the
    /// session's resources are released. `stop` waits for every session.
    pub fn enter_session(&self) -> bool {
        self.sessions.reference().is_ok()
    }

    /// A session is gone (see [`enter_session`](Self::enter_session)).
    pub fn leave_session(&self) {
        self.sessions.release();
    }

    /// One slot left the stream. Returns the slots still in the stream after
    /// it; 0 means it was the last one (the `all_retired` event is then
    /// signalled). Exactly one of several concurrent callers sees 0.
    pub fn retire_one(&self) -> usize {
        let remaining = self.count.retire_one();
        if remaining == 0 {
            self.all_retired.set();
        }
        remaining
    }

    /// Starts stopping (see the protocol and [`StopRole`]). Blocks: as a
    /// waiter until the stop in progress finished; as the owner until every
    /// send in progress has left. Passive level.
    pub fn begin_stop(&self) -> StopRole {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            match current & PHASE_MASK {
                P_STOPPED => return StopRole::NotRunning,
                P_STARTING => {
                    spin_loop();
                    current = self.word.load(Ordering::Acquire);
                }
                P_RUNNING => match self.word.compare_exchange(
                    current,
                    (current & !PHASE_MASK) | P_STOPPING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(actual) => current = actual,
                },
                _ => match self.word.compare_exchange(
                    current,
                    current + WAITER,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        self.stopped.wait(None);
                        self.word.fetch_sub(WAITER, Ordering::AcqRel);
                        return StopRole::Waited;
                    }
                    Err(actual) => current = actual,
                },
            }
        }
        // No send or park starts after this; those in progress have left.
        self.send_rundown.end_and_wait(None);
        StopRole::Owner
    }

    /// The owner of a stop, after cancelling and claiming: waits until every
    /// slot retired and every session is gone, then `Stopping → Stopped` and
    /// wakes the waiters.
    pub fn finish_stop(&self) {
        self.all_retired.wait(None);
        debug_assert_eq!(self.count.active(), 0);
        self.sessions.end_and_wait(None);
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            debug_assert_eq!(current & PHASE_MASK, P_STOPPING);
            match self.word.compare_exchange(
                current,
                (current & !PHASE_MASK) | P_STOPPED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.stopped.set();
    }
}
