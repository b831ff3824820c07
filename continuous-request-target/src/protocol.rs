//! The lock-free ownership protocol of the stream slots, separated from any
//! I/O so that it can be model-checked with `loom` (`tests/loom.rs`).
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
//! retirement that brings it to zero reports it, and the engine then signals
//! the "all retired" event `stop` waits on.

use crate::primitive::{AtomicU8, AtomicUsize, Ordering};

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

    /// One slot retired; returns `true` if it was the last one (the caller
    /// signals the "all retired" event).
    pub fn retire_one(&self) -> bool {
        let prev = self.active.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev >= 1, "retire_one below zero");
        prev == 1
    }

    /// Slots currently in the stream.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}
