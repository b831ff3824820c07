//! The method gate of one target: DMF's per-target `DMF_Rundown` plus the
//! transport it protects, as one small protocol (model-checked with loom in
//! `tests/loom_dimt.rs`).
//!
//! * Methods [`enter`](TargetGate::enter): take a rundown reference, then
//!   clone the transport; [`leave`](TargetGate::leave) releases the
//!   reference. A refused reference means `STATUS_INVALID_DEVICE_STATE`.
//! * A query-remove [`suspend`](TargetGate::suspend)s the gate (waits for
//!   every method in progress; the transport stays) and a remove-cancel
//!   [`resume`](TargetGate::resume)s it.
//! * Destruction [`close`](TargetGate::close)s it: waits for every method in
//!   progress, then takes the transport out. Because every clone of the
//!   transport handed to a method is dropped before its reference is
//!   released, `close` returns the **only** remaining `Arc`, and the
//!   transport is dropped by the closing (passive) thread, never by a
//!   method that happened to run in a completion context.
//!
//! Hidden from the docs: public only so the loom model can drive it.

use alloc::sync::Arc;
use core::marker::PhantomData;

use dmf_wdf::{Event, Lock, Result, Rundown, Status};

/// A target's method gate (see the [module docs](self)).
///
/// # Invariants
///
/// `slot` is `Some` from [`open`](Self::open) to [`close`](Self::close).
/// A method holding a reference (between `enter` and `leave`) may hold at
/// most one clone of the transport, and drops it before `leave`.
pub struct TargetGate<E: Event, L: Lock<Option<Arc<T>>>, T: Send + Sync> {
    rundown: Rundown<E>,
    slot: L,
    _transport: PhantomData<fn() -> T>,
}

impl<E: Event, L: Lock<Option<Arc<T>>>, T: Send + Sync> TargetGate<E, L, T> {
    /// A closed gate (every `enter` is refused) using `event` for its waits.
    pub fn new(event: E) -> Self {
        TargetGate {
            rundown: Rundown::new(event),
            slot: L::new(None),
            _transport: PhantomData,
        }
    }

    /// Installs the transport and opens the gate. Once per gate.
    pub fn open(&self, transport: Arc<T>) {
        let previous = self.slot.lock().replace(transport);
        debug_assert!(previous.is_none(), "TargetGate::open twice");
        drop(previous);
        self.rundown.start();
    }

    /// A method begins: takes a reference and returns the transport.
    /// `STATUS_INVALID_DEVICE_STATE` while the gate is closed, suspended or
    /// closing. Never blocks. Pair with [`leave`](Self::leave) (after
    /// dropping the returned `Arc`).
    pub fn enter(&self) -> Result<Arc<T>> {
        self.rundown.reference()?;
        let transport = self.slot.lock().clone();
        match transport {
            Some(transport) => Ok(transport),
            None => {
                self.rundown.release();
                Err(Status::INVALID_DEVICE_STATE)
            }
        }
    }

    /// Takes a bare reference (DMF `TargetReference`); pair with
    /// [`leave`](Self::leave).
    pub fn reference(&self) -> Result<()> {
        self.rundown.reference()
    }

    /// A method ends (releases the reference of `enter` / `reference`).
    pub fn leave(&self) {
        self.rundown.release();
    }

    /// The transport, for the PnP paths that own the target's transitions
    /// (not for methods: it takes no reference).
    pub fn transport(&self) -> Option<Arc<T>> {
        self.slot.lock().clone()
    }

    /// Whether methods are accepted now.
    pub fn is_open(&self) -> bool {
        self.rundown.is_active()
    }

    /// Refuses new methods and waits for those in progress; the transport
    /// stays (query-remove). Passive level.
    pub fn suspend(&self) {
        self.rundown.end_and_wait(None);
    }

    /// Accepts methods again after [`suspend`](Self::suspend) (remove-cancel).
    pub fn resume(&self) {
        self.rundown.start();
    }

    /// Refuses new methods, waits for those in progress, and takes the
    /// transport out: the returned `Arc` is the only one left. Idempotent
    /// (later calls return `None`). Passive level.
    pub fn close(&self) -> Option<Arc<T>> {
        self.rundown.end_and_wait(None);
        self.slot.lock().take()
    }
}
