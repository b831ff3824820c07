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

/// How interface-notification registrations report interfaces (see
/// [`Platform::register_interface_notification`](dmf_wdf::Platform::register_interface_notification)).
///
/// Both behaviours are what Windows may do, so the layers must cope with
/// them; each is drawn per registration or arrival from a stream derived
/// from the seed, so a run is reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotificationConfig {
    /// Chance (per million registrations) that the interfaces present at
    /// registration are reported on the registering thread before
    /// `register_interface_notification` returns (as
    /// `IoRegisterPlugPlayNotification` with
    /// `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES` does), instead
    /// of later on the PnP thread.
    pub existing_inline_per_million: u32,
    /// Chance (per million arrivals delivered to a registration) that the
    /// arrival is delivered a second time right after the first (PnP may
    /// report an interface that a registration has already seen, for example
    /// one enabled while the existing ones were being collected).
    pub repeat_arrival_per_million: u32,
}

impl NotificationConfig {
    /// Existing interfaces always on the PnP thread, each arrival once.
    pub const ORDERED: NotificationConfig = NotificationConfig {
        existing_inline_per_million: 0,
        repeat_arrival_per_million: 0,
    };
    /// Existing interfaces always reported inline, every arrival twice.
    pub const STRICTEST: NotificationConfig = NotificationConfig {
        existing_inline_per_million: 1_000_000,
        repeat_arrival_per_million: 1_000_000,
    };
}

impl Default for NotificationConfig {
    /// A seeded mix: half the registrations report existing interfaces
    /// inline, one arrival in five is repeated.
    fn default() -> Self {
        NotificationConfig {
            existing_inline_per_million: 500_000,
            repeat_arrival_per_million: 200_000,
        }
    }
}

/// How long a completion routine may run (real time) before the simulator
/// reports it. KMDF completion routines run at `DISPATCH_LEVEL`, where long
/// work starves the processor and trips the DPC watchdog.
///
/// An overrun is always counted ([`Counters::slow_completion_routines`](crate::Counters::slow_completion_routines))
/// and logged; with `strict` the simulator also panics in the completion
/// routine's context (a panic on a simulator thread is re-raised when the
/// last [`Sim`](crate::Sim) handle drops).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoutineBudget {
    /// The budget in microseconds; 0 disables the check.
    pub limit_us: u64,
    /// Panic on an overrun instead of only counting it.
    pub strict: bool,
}

impl Default for RoutineBudget {
    /// 100 ms, counted only (real-time measurements on a loaded machine are
    /// noisy; tests that want the panic set `strict`).
    fn default() -> Self {
        RoutineBudget {
            limit_us: 100_000,
            strict: false,
        }
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
    /// How interface notifications report existing and repeated arrivals.
    pub notifications: NotificationConfig,
    /// How long a completion routine may run before it is reported.
    pub routine_budget: RoutineBudget,
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
            notifications: NotificationConfig::default(),
            routine_budget: RoutineBudget::default(),
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

    /// Sets how interface notifications are reported.
    pub fn with_notifications(mut self, notifications: NotificationConfig) -> Self {
        self.notifications = notifications;
        self
    }

    /// Sets the completion-routine budget.
    pub fn with_routine_budget(mut self, budget: RoutineBudget) -> Self {
        self.routine_budget = budget;
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
