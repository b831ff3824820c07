//! The simulated clock: real time, or virtual time advanced by the test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// 100 ns ticks per millisecond.
pub const TICKS_PER_MS: u64 = 10_000;
/// 100 ns ticks per microsecond.
pub(crate) const TICKS_PER_US: u64 = 10;

/// How the simulator's clock moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ClockMode {
    /// Real (monotonic) time. A scheduler thread dispatches due timers and
    /// completions to worker threads, so completions arrive on other threads
    /// than the sender's.
    #[default]
    Real,
    /// Virtual time that moves only when the test calls
    /// [`Sim::advance`](crate::Sim::advance), [`Sim::advance_to`](crate::Sim::advance_to)
    /// or [`Sim::run_until_idle`](crate::Sim::run_until_idle). Due timers and
    /// completions then run inline on the advancing thread, in deadline order
    /// and FIFO among equal deadlines: deterministic.
    Manual,
}

/// The clock of one simulator.
pub(crate) enum Clock {
    Real { origin: Instant },
    Manual { now: AtomicU64 },
}

impl Clock {
    pub(crate) fn new(mode: ClockMode) -> Self {
        match mode {
            ClockMode::Real => Clock::Real {
                origin: Instant::now(),
            },
            ClockMode::Manual => Clock::Manual {
                now: AtomicU64::new(0),
            },
        }
    }

    pub(crate) fn mode(&self) -> ClockMode {
        match self {
            Clock::Real { .. } => ClockMode::Real,
            Clock::Manual { .. } => ClockMode::Manual,
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual { .. })
    }

    /// Current time in 100 ns units since the simulator started.
    pub(crate) fn now(&self) -> u64 {
        match self {
            Clock::Real { origin } => {
                u64::try_from(origin.elapsed().as_nanos() / 100).unwrap_or(u64::MAX)
            }
            Clock::Manual { now } => now.load(Ordering::Acquire),
        }
    }

    /// Moves a manual clock forward to `ticks` (never backwards).
    pub(crate) fn set_manual(&self, ticks: u64) {
        if let Clock::Manual { now } = self {
            now.fetch_max(ticks, Ordering::AcqRel);
        }
    }

    /// Real time remaining until `deadline` (zero if due).
    pub(crate) fn real_wait(&self, deadline: u64) -> Duration {
        let now = self.now();
        Duration::from_nanos(deadline.saturating_sub(now).saturating_mul(100))
    }
}

/// Converts milliseconds to ticks, saturating.
pub(crate) fn ms_to_ticks(ms: u64) -> u64 {
    ms.saturating_mul(TICKS_PER_MS)
}
