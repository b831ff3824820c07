//! Counters of live simulated objects and activity, for leak checks.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A snapshot of the simulator's counters ([`Sim::counters`](crate::Sim::counters)).
///
/// "Live" counts objects that exist now; "total" counts events since the
/// simulator started. After a test has dropped everything it created,
/// [`Counters::is_clean`] must hold.
///
/// ```
/// use dmf_sim::{Sim, SimConfig};
/// use dmf_wdf::Platform;
/// let sim = Sim::new(SimConfig::default());
/// let request = sim.create_request(None).unwrap();
/// assert_eq!(sim.counters().live_requests, 1);
/// drop(request);
/// assert!(sim.counters().is_clean(), "{}", sim.counters());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests created and not yet deleted.
    pub live_requests: i64,
    /// Sends accepted whose completion has not been fully delivered yet
    /// (completion routine not yet returned, or synchronous sender not yet woken).
    pub requests_in_flight: i64,
    /// Total sends accepted.
    pub irps_sent: u64,
    /// Total IRPs completed (by a device, a cancellation or a removal).
    pub irps_completed: u64,
    /// Total IRPs completed with `STATUS_CANCELLED`, or with
    /// `STATUS_IO_TIMEOUT` after their timeout cancelled them.
    pub irps_cancelled: u64,
    /// I/O target objects created and not yet deleted.
    pub live_targets: i64,
    /// I/O targets currently open (started, stopped or purged).
    pub open_targets: i64,
    /// Outstanding allocations from [`Platform::allocate`](dmf_wdf::Platform::allocate).
    pub allocations: i64,
    /// Bytes in outstanding allocations.
    pub allocated_bytes: i64,
    /// Timer objects alive.
    pub live_timers: i64,
    /// Timers armed and not yet fired or stopped.
    pub armed_timers: i64,
    /// Work item objects alive.
    pub live_work_items: i64,
    /// Event objects alive.
    pub live_events: i64,
    /// Wait-lock objects alive.
    pub live_wait_locks: i64,
    /// Interface-notification registrations alive.
    pub live_registrations: i64,
    /// Completion routines executing right now.
    pub completion_routines_running: i64,
    /// Panics caught in callbacks run on simulator threads.
    pub callback_panics: u64,
    /// Faults injected so far.
    pub faults_injected: u64,
    /// Completion routines that ran longer than the configured
    /// [`RoutineBudget`](crate::RoutineBudget) (not part of the leak check).
    pub slow_completion_routines: u64,
    /// Total completions delivered inline, on the thread that caused them
    /// (see [`InlineCompletion`](crate::InlineCompletion)).
    pub inline_deliveries: u64,
    /// The most stack seen in use on a simulator thread when it sent a
    /// request or ran a callback, bytes (compare with
    /// [`SimConfig::thread_stack_bytes`](crate::SimConfig::thread_stack_bytes)).
    pub max_stack_bytes: u64,
}

impl Counters {
    /// Whether no simulated object is alive and nothing is in flight: the
    /// leak check to run at the end of a test.
    pub fn is_clean(&self) -> bool {
        self.live_requests == 0
            && self.requests_in_flight == 0
            && self.live_targets == 0
            && self.open_targets == 0
            && self.allocations == 0
            && self.allocated_bytes == 0
            && self.live_timers == 0
            && self.armed_timers == 0
            && self.live_work_items == 0
            && self.live_events == 0
            && self.live_wait_locks == 0
            && self.live_registrations == 0
            && self.completion_routines_running == 0
    }

    /// Whether no I/O is in flight (objects may still be alive).
    pub fn is_idle(&self) -> bool {
        self.requests_in_flight == 0 && self.completion_routines_running == 0
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dmf-sim counters:")?;
        writeln!(
            f,
            "  requests:    {} live, {} in flight; {} sent, {} completed ({} cancelled)",
            self.live_requests,
            self.requests_in_flight,
            self.irps_sent,
            self.irps_completed,
            self.irps_cancelled
        )?;
        writeln!(
            f,
            "  targets:     {} live, {} open",
            self.live_targets, self.open_targets
        )?;
        writeln!(
            f,
            "  memory:      {} allocations, {} bytes",
            self.allocations, self.allocated_bytes
        )?;
        writeln!(
            f,
            "  timers:      {} live, {} armed; work items: {} live; events: {} live; \
             wait locks: {} live",
            self.live_timers,
            self.armed_timers,
            self.live_work_items,
            self.live_events,
            self.live_wait_locks
        )?;
        writeln!(
            f,
            "  pnp:         {} registrations",
            self.live_registrations
        )?;
        write!(
            f,
            "  callbacks:   {} completion routines running ({} delivered inline, {} over budget), \
             {} panics; {} faults injected",
            self.completion_routines_running,
            self.inline_deliveries,
            self.slow_completion_routines,
            self.callback_panics,
            self.faults_injected
        )?;
        write!(
            f,
            "\n  stacks:      deepest simulator-thread stack seen {} bytes",
            self.max_stack_bytes
        )
    }
}

/// The live counter cells.
#[derive(Default)]
pub(crate) struct CounterCells {
    pub(crate) slow_routines: AtomicU64,
    pub(crate) live_requests: AtomicI64,
    pub(crate) in_flight: AtomicI64,
    pub(crate) sent: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) live_targets: AtomicI64,
    pub(crate) open_targets: AtomicI64,
    pub(crate) allocations: AtomicI64,
    pub(crate) allocated_bytes: AtomicI64,
    pub(crate) live_timers: AtomicI64,
    pub(crate) armed_timers: AtomicI64,
    pub(crate) live_work_items: AtomicI64,
    pub(crate) live_events: AtomicI64,
    pub(crate) live_wait_locks: AtomicI64,
    pub(crate) live_registrations: AtomicI64,
    pub(crate) routines_running: AtomicI64,
    pub(crate) panics: AtomicU64,
    pub(crate) inline_deliveries: AtomicU64,
}

/// Adds `delta` to a gauge; returns the new value.
pub(crate) fn add(cell: &AtomicI64, delta: i64) -> i64 {
    cell.fetch_add(delta, Ordering::AcqRel) + delta
}

/// Increments a total.
pub(crate) fn bump(cell: &AtomicU64) {
    cell.fetch_add(1, Ordering::Relaxed);
}

impl CounterCells {
    pub(crate) fn snapshot(&self, faults_injected: u64, max_stack_bytes: u64) -> Counters {
        let g = |c: &AtomicI64| c.load(Ordering::Acquire);
        let t = |c: &AtomicU64| c.load(Ordering::Acquire);
        Counters {
            slow_completion_routines: t(&self.slow_routines),
            live_requests: g(&self.live_requests),
            requests_in_flight: g(&self.in_flight),
            irps_sent: t(&self.sent),
            irps_completed: t(&self.completed),
            irps_cancelled: t(&self.cancelled),
            live_targets: g(&self.live_targets),
            open_targets: g(&self.open_targets),
            allocations: g(&self.allocations),
            allocated_bytes: g(&self.allocated_bytes),
            live_timers: g(&self.live_timers),
            armed_timers: g(&self.armed_timers),
            live_work_items: g(&self.live_work_items),
            live_events: g(&self.live_events),
            live_wait_locks: g(&self.live_wait_locks),
            live_registrations: g(&self.live_registrations),
            completion_routines_running: g(&self.routines_running),
            callback_panics: t(&self.panics),
            faults_injected,
            inline_deliveries: t(&self.inline_deliveries),
            max_stack_bytes,
        }
    }
}
