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

/// Whether a completion routine may run on the thread that caused the
/// completion, before the call that caused it returns.
///
/// Under KMDF, `WdfRequestSend` passes the IRP to the lower driver with
/// `IoCallDriver`; a lower driver that completes it at once
/// (`IoCompleteRequest` inside its dispatch routine) runs the sender's
/// completion routine on the sender's thread, before `WdfRequestSend`
/// returns. Likewise `WdfRequestCancelSentRequest`, `WdfIoTargetStop` with
/// `WdfIoTargetCancelSentIo`, `WdfIoTargetPurge` and `WdfIoTargetClose`
/// cancel IRPs, and a lower driver whose cancel routine completes the IRP
/// runs the completion routine on the cancelling thread. Code that holds a
/// lock across such a call, or that assumes a completion arrives only after
/// the call returned, deadlocks or loses the completion on a real machine.
///
/// With a mode other than [`InlineCompletion::Off`], the simulator delivers a
/// completion *inline* (on the current thread, at once, ignoring the
/// configured [`Latency`]) when the IRP is completed on a thread that is
/// inside one of these calls of the same simulator:
///
/// * `IoTarget::send` / `send_synchronously` while the device's dispatch
///   routine ([`DeviceHandler::handle`](crate::DeviceHandler::handle)) runs,
///   and for the completions the simulator itself makes there (injected
///   `RequestFailure`, `STATUS_DELETE_PENDING` on a device being removed);
/// * `Request::cancel_sent`, a request timeout, `IoTarget::stop(Cancel)`,
///   `purge`, `close` and `close_for_query_remove`, while they cancel IRPs
///   (including a device's cancel routine completing the IRP).
///
/// Completions made elsewhere (a device completing later, from a timer or
/// another thread; a surprise removal) are delivered on a completion thread
/// as in [`InlineCompletion::Off`].
///
/// The completion routine still runs in dispatch context (it may not block),
/// whatever the caller's context. Nested inline deliveries on one thread (a
/// completion routine that resends, whose resend completes inline, whose
/// routine resends...) are counted: more than
/// [`SimConfig::inline_depth_limit`] of them panics, as unbounded recursion
/// would overflow a 24 KiB kernel stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InlineCompletion {
    /// Completions are always delivered on a completion thread after the
    /// configured latency (or by `advance` with a manual clock).
    #[default]
    Off,
    /// Every completion made in one of the calls above is delivered inline.
    Always,
    /// Each completion made in one of the calls above is delivered inline
    /// with probability `percent`/100 (values above 100 count as 100), drawn
    /// from a stream derived from [`SimConfig::seed`] and `seed`.
    Mix {
        /// Chance of an inline delivery, in percent.
        percent: u8,
        /// Mixed into the simulator seed for the inline decisions.
        seed: u64,
    },
}

/// The environment variable read by [`SimConfig::default`] to choose the
/// [`InlineCompletion`] mode, so that a whole test suite can be run with
/// inline completion: `off`, `always`, `mix` (50 %), `mix:<percent>` or
/// `mix:<percent>:<seed>`. Unset or empty means `off`; any other value
/// panics (a typo must not silently run the default mode).
pub const INLINE_ENV: &str = "DMF_SIM_INLINE";

/// The stack size of every simulator thread that can run completion
/// routines, timer handlers or work items: 24 KiB, the x64 kernel stack.
pub const KERNEL_STACK_BYTES: usize = 24 * 1024;

impl InlineCompletion {
    /// Parses the value of [`INLINE_ENV`].
    ///
    /// ```
    /// use dmf_sim::InlineCompletion;
    /// assert_eq!(InlineCompletion::parse("always"), Ok(InlineCompletion::Always));
    /// assert_eq!(
    ///     InlineCompletion::parse("mix:30:7"),
    ///     Ok(InlineCompletion::Mix { percent: 30, seed: 7 })
    /// );
    /// assert!(InlineCompletion::parse("sometimes").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<InlineCompletion, String> {
        let value = value.trim();
        let mut parts = value.split(':');
        let mode = parts.next().unwrap_or("").to_ascii_lowercase();
        let number = |part: Option<&str>, what: &str, default: u64| -> Result<u64, String> {
            match part {
                None | Some("") => Ok(default),
                Some(p) => p
                    .parse::<u64>()
                    .map_err(|_| format!("{INLINE_ENV}={value}: {what} `{p}` is not a number")),
            }
        };
        let parsed = match mode.as_str() {
            "" | "off" | "0" => InlineCompletion::Off,
            "always" | "on" | "1" => InlineCompletion::Always,
            "mix" => {
                let percent = number(parts.next(), "percent", 50)?;
                if percent > 100 {
                    return Err(format!("{INLINE_ENV}={value}: percent {percent} is above 100"));
                }
                let seed = number(parts.next(), "seed", 0)?;
                InlineCompletion::Mix {
                    percent: percent as u8,
                    seed,
                }
            }
            _ => {
                return Err(format!(
                    "{INLINE_ENV}={value}: expected off, always, mix, mix:<percent> or mix:<percent>:<seed>"
                ))
            }
        };
        if parts.next().is_some() && !matches!(parsed, InlineCompletion::Mix { .. }) {
            return Err(format!("{INLINE_ENV}={value}: unexpected `:` argument"));
        }
        if parts.next().is_some() {
            return Err(format!("{INLINE_ENV}={value}: too many `:` arguments"));
        }
        Ok(parsed)
    }

    /// The mode chosen by [`INLINE_ENV`] (`Off` when unset).
    ///
    /// # Panics
    ///
    /// If the variable is set to something [`InlineCompletion::parse`] refuses.
    pub fn from_env() -> InlineCompletion {
        match std::env::var(INLINE_ENV) {
            Ok(v) => InlineCompletion::parse(&v).unwrap_or_else(|e| panic!("dmf-sim: {e}")),
            Err(_) => InlineCompletion::Off,
        }
    }

    /// Whether completions can ever be delivered inline.
    pub fn is_on(self) -> bool {
        match self {
            InlineCompletion::Off => false,
            InlineCompletion::Always => true,
            InlineCompletion::Mix { percent, .. } => percent > 0,
        }
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
    /// Inline completion (see [`InlineCompletion`]). The default comes from
    /// the environment variable [`INLINE_ENV`] (`Off` when unset).
    pub inline_completion: InlineCompletion,
    /// Most nested inline deliveries on one thread before the simulator
    /// panics (unbounded resend recursion). Default 8.
    pub inline_depth_limit: u32,
    /// Stack budget of the simulator's threads (completion, passive,
    /// scheduler and PnP threads: every thread of the simulator that runs
    /// completion routines, timer handlers, work items or PnP callbacks),
    /// bytes. Default [`KERNEL_STACK_BYTES`], the x64 kernel stack.
    ///
    /// Each time such a thread sends a request or is about to run a
    /// callback, the simulator measures the stack in use below the thread's
    /// start; over budget, it reports the thread once, like a panic in a
    /// callback (re-raised when the last [`Sim`](crate::Sim) handle drops,
    /// see [`Sim::take_callback_panics`](crate::Sim::take_callback_panics)).
    /// The threads are spawned with this budget plus a fixed reserve, so an
    /// overrun is a clear report and not a process abort. The deepest use
    /// seen is [`Counters::max_stack_bytes`](crate::Counters::max_stack_bytes).
    pub thread_stack_bytes: usize,
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
            inline_completion: InlineCompletion::from_env(),
            inline_depth_limit: 8,
            thread_stack_bytes: KERNEL_STACK_BYTES,
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

    /// Sets the inline-completion mode (overriding [`INLINE_ENV`]).
    pub fn with_inline_completion(mut self, mode: InlineCompletion) -> Self {
        self.inline_completion = mode;
        self
    }

    /// Sets the limit of nested inline deliveries on one thread.
    pub fn with_inline_depth_limit(mut self, limit: u32) -> Self {
        self.inline_depth_limit = limit;
        self
    }

    /// Sets the stack size of the simulator's threads.
    pub fn with_thread_stack_bytes(mut self, bytes: usize) -> Self {
        self.thread_stack_bytes = bytes;
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
