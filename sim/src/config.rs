//! Configuration of a simulator.

use dmf_wdf::Status;

use crate::clock::ClockMode;
use crate::faults::{FaultPlan, FaultPoint, FaultSetting};

/// The delay between a device completing an IRP and its completion being
/// delivered (completion routine called / synchronous sender woken), drawn
/// uniformly from `min_us..=max_us` for each completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Latency {
    /// Smallest delay, microseconds.
    pub min_us: u64,
    /// Largest delay, microseconds.
    pub max_us: u64,
}

impl Latency {
    /// No added delay (completions are still delivered on another thread in
    /// real-time mode, and on the next `advance` in manual mode).
    pub const ZERO: Latency = Latency {
        min_us: 0,
        max_us: 0,
    };

    /// A latency drawn from `min_us..=max_us`.
    pub const fn new(min_us: u64, max_us: u64) -> Self {
        Latency { min_us, max_us }
    }
}

impl Default for Latency {
    /// 0 to 200 microseconds.
    fn default() -> Self {
        Latency::new(0, 200)
    }
}

/// How to build a [`Sim`](crate::Sim).
///
/// ```
/// use dmf_sim::{ClockMode, FaultPlan, FaultPoint, Latency, SimConfig};
/// let config = SimConfig::default()
///     .with_seed(7)
///     .with_clock(ClockMode::Manual)
///     .with_latency(Latency::ZERO)
///     .with_fault(FaultPoint::RequestFailure, FaultPlan::EveryNth(10));
/// assert_eq!(config.seed, 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Seed of every random choice (latency, faults, device delays).
    pub seed: u64,
    /// Real or manual (virtual) time.
    pub clock: ClockMode,
    /// Threads delivering completions and request timeouts in real-time mode
    /// ("DPCs"). At least 1; default 2. Unused in manual mode.
    pub completion_threads: usize,
    /// Threads running timer handlers (real-time mode) and work items
    /// ("system worker threads"). At least 1; default 2.
    pub passive_threads: usize,
    /// Completion latency.
    pub latency: Latency,
    /// Initial fault settings (change them later with [`Sim::faults`](crate::Sim::faults)).
    pub faults: Vec<FaultSetting>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0x5EED_D0F0,
            clock: ClockMode::Real,
            completion_threads: 2,
            passive_threads: 2,
            latency: Latency::default(),
            faults: Vec::new(),
        }
    }
}

impl SimConfig {
    /// A manual-clock configuration with no latency: fully deterministic
    /// delivery (everything scheduled runs inside `advance`).
    pub fn manual() -> Self {
        SimConfig {
            clock: ClockMode::Manual,
            latency: Latency::ZERO,
            ..SimConfig::default()
        }
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the clock mode.
    pub fn with_clock(mut self, clock: ClockMode) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the completion latency.
    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the number of completion threads.
    pub fn with_completion_threads(mut self, n: usize) -> Self {
        self.completion_threads = n;
        self
    }

    /// Sets the number of passive worker threads.
    pub fn with_passive_threads(mut self, n: usize) -> Self {
        self.passive_threads = n;
        self
    }

    /// Adds an initial fault plan (with the point's default status).
    pub fn with_fault(mut self, point: FaultPoint, plan: FaultPlan) -> Self {
        self.faults.push(FaultSetting {
            point,
            plan,
            status: None,
        });
        self
    }

    /// Adds an initial fault plan failing with `status`.
    pub fn with_fault_status(mut self, point: FaultPoint, plan: FaultPlan, status: Status) -> Self {
        self.faults.push(FaultSetting {
            point,
            plan,
            status: Some(status),
        });
        self
    }
}
