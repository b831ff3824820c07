//! The simulated machine: clock, scheduler, worker threads, bus, faults,
//! counters, and orderly shutdown.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::bus::BusState;
use crate::clock::{Clock, TICKS_PER_MS, TICKS_PER_US};
use crate::config::{InlineCompletion, Latency, NotificationConfig, RoutineBudget, SimConfig};
use crate::context;
use crate::counters::{self, CounterCells, Counters};
use crate::faults::{FaultPoint, FaultState};
use crate::irp;
use crate::pnp::PnpJob;
use crate::recorders::Recorders;
use crate::rng::SplitMix64;
use crate::scheduler::{self, Action, Scheduler};
use crate::timer;
use crate::work_item;
use crate::workers::{PassiveJob, Pool};

/// Stack each simulator thread has beyond its budget: room for the panic
/// and unwinding machinery (a budget overrun is reported as a panic, not a
/// process abort) and for the recursion that overran it.
const STACK_RESERVE: usize = 256 * 1024;

static NEXT_CORE_ID: AtomicU64 = AtomicU64::new(1);

/// Locks a mutex, ignoring poisoning (a panicking callback must not wedge the
/// simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on a condition variable, ignoring poisoning.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// Draws whether an event with chance `per_million` happens from `rng`.
fn draw(rng: &Mutex<SplitMix64>, per_million: u32) -> bool {
    match per_million {
        0 => false,
        p if p >= 1_000_000 => true,
        p => lock(rng).range_inclusive(0, 999_999) < u64::from(p),
    }
}

/// The state shared by every handle and object of one simulator.
pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) seed: u64,
    pub(crate) clock: Clock,
    latency: Latency,
    pub(crate) sched: Scheduler,
    pub(crate) completions: Pool<Action>,
    pub(crate) passive: Pool<PassiveJob>,
    pub(crate) pnp: Pool<PnpJob>,
    pub(crate) bus: Mutex<BusState>,
    pub(crate) faults: FaultState,
    pub(crate) counters: CounterCells,
    latency_rng: Mutex<SplitMix64>,
    /// Draws of the inline-report behaviour (registering threads, in
    /// registration order).
    notify_rng: Mutex<SplitMix64>,
    /// Draws of the repeated-arrival behaviour (in delivery order, which the
    /// PnP queue serialises), a separate stream so that both are
    /// reproducible.
    repeat_rng: Mutex<SplitMix64>,
    pub(crate) notifications: NotificationConfig,
    pub(crate) routine_budget: RoutineBudget,
    inline: InlineCompletion,
    inline_rng: Mutex<SplitMix64>,
    pub(crate) inline_depth_limit: u32,
    stack_bytes: usize,
    max_stack: std::sync::atomic::AtomicUsize,
    quiet: Mutex<()>,
    quiet_cv: Condvar,
    shutting_down: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    panics: Mutex<Vec<String>>,
    next_id: AtomicU64,
    pub(crate) recorders: Recorders,
    /// Whether an over-budget routine already printed the recorders.
    recorders_reported: AtomicBool,
}

impl Core {
    /// Builds the machine and starts its threads.
    pub(crate) fn start(config: &SimConfig) -> Arc<Core> {
        let id = NEXT_CORE_ID.fetch_add(1, Ordering::Relaxed);
        let core = Arc::new(Core {
            id,
            seed: config.seed,
            clock: Clock::new(config.clock),
            latency: config.latency,
            sched: Scheduler::new(),
            completions: Pool::new(),
            passive: Pool::new(),
            notify_rng: Mutex::new(SplitMix64::derive(config.seed, 0x9_07E5)),
            repeat_rng: Mutex::new(SplitMix64::derive(config.seed, 0x9_07E6)),
            notifications: config.notifications,
            routine_budget: config.routine_budget,
            pnp: Pool::new(),
            bus: Mutex::new(BusState::new()),
            faults: FaultState::new(config.seed, &config.faults),
            counters: CounterCells::default(),
            latency_rng: Mutex::new(SplitMix64::derive(config.seed, 0x1A7E)),
            inline: config.inline_completion,
            inline_rng: Mutex::new(SplitMix64::derive(
                config.seed
                    ^ match config.inline_completion {
                        InlineCompletion::Mix { seed, .. } => seed,
                        _ => 0,
                    },
                0x0014_114E,
            )),
            inline_depth_limit: config.inline_depth_limit,
            stack_bytes: config.thread_stack_bytes,
            max_stack: std::sync::atomic::AtomicUsize::new(0),
            quiet: Mutex::new(()),
            quiet_cv: Condvar::new(),
            shutting_down: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            panics: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            recorders: Recorders::default(),
            recorders_reported: AtomicBool::new(false),
        });
        let mut handles = Vec::new();
        let started = Arc::new(Started::default());
        if !core.clock.is_manual() {
            handles.push(spawn(
                &core,
                &started,
                "scheduler".to_string(),
                scheduler::scheduler_thread,
            ));
            for i in 0..config.completion_threads.max(1) {
                handles.push(spawn(
                    &core,
                    &started,
                    format!("completion-{i}"),
                    completion_worker,
                ));
            }
        }
        for i in 0..config.passive_threads.max(1) {
            handles.push(spawn(
                &core,
                &started,
                format!("passive-{i}"),
                passive_worker,
            ));
        }
        handles.push(spawn(
            &core,
            &started,
            "pnp".to_string(),
            crate::pnp::pnp_thread,
        ));
        // Return only once every thread runs: a thread's start-up (its
        // name, its signal stack) allocates, and must not land in the middle
        // of a test's allocation count when a thread that is rarely needed
        // (the scheduler, with every completion delivered inline) is first
        // scheduled late.
        started.wait_for(handles.len());
        *lock(&core.threads) = handles;
        tracing::debug!(
            sim = id,
            seed = config.seed,
            clock = ?config.clock,
            inline = ?config.inline_completion,
            "dmf-sim: simulator started"
        );
        core
    }

    /// Draws whether a registration reports its existing interfaces inline.
    pub(crate) fn draw_inline_report(&self) -> bool {
        draw(
            &self.notify_rng,
            self.notifications.existing_inline_per_million,
        )
    }

    /// Draws whether an arrival is delivered twice.
    pub(crate) fn draw_repeat_arrival(&self) -> bool {
        draw(
            &self.repeat_rng,
            self.notifications.repeat_arrival_per_million,
        )
    }

    /// A completion routine ran `elapsed`: reports it if over budget.
    pub(crate) fn check_routine_duration(&self, elapsed: Duration) {
        let budget = self.routine_budget;
        if budget.limit_us == 0 || elapsed.as_micros() <= u128::from(budget.limit_us) {
            return;
        }
        counters::bump(&self.counters.slow_routines);
        tracing::warn!(
            sim = self.id,
            elapsed_us = elapsed.as_micros() as u64,
            budget_us = budget.limit_us,
            "dmf-sim: a completion routine ran over its budget"
        );
        if budget.strict && !std::thread::panicking() {
            panic!(
                "dmf-sim: a completion routine ran {} us, over the {} us budget; \
                 completion routines run at DISPATCH_LEVEL and must not do long work\n{}",
                elapsed.as_micros(),
                budget.limit_us,
                self.recorders.dump()
            );
        }
        if !self.recorders_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                sim = self.id,
                "dmf-sim: the modules' last transitions before the first overrun:\n{}",
                self.recorders.dump()
            );
        }
    }

    /// A fresh object id (never 0).
    pub(crate) fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Schedules `action` after `delay` ticks of simulated time.
    pub(crate) fn schedule(self: &Arc<Self>, delay: u64, action: Action) {
        if delay == 0 && !self.clock.is_manual() {
            scheduler::route(self, action);
        } else {
            let deadline = self.clock.now().saturating_add(delay);
            self.sched.push(deadline, action);
        }
    }

    /// Schedules `action` at the absolute simulated time `deadline`.
    pub(crate) fn schedule_at(self: &Arc<Self>, deadline: u64, action: Action) {
        if !self.clock.is_manual() && deadline <= self.clock.now() {
            scheduler::route(self, action);
        } else {
            self.sched.push(deadline, action);
        }
    }

    /// Whether a completion made now, on the current thread, is delivered
    /// inline (see [`InlineCompletion`]).
    pub(crate) fn deliver_inline_here(&self) -> bool {
        if !context::in_inline_scope(self.id) {
            return false;
        }
        match self.inline {
            InlineCompletion::Off => false,
            InlineCompletion::Always => true,
            InlineCompletion::Mix { percent, .. } => {
                lock(&self.inline_rng).range_inclusive(0, 99) < u64::from(percent)
            }
        }
    }

    /// Checks the stack use of the current simulator thread against the
    /// kernel-stack budget before `what` runs a callback or sends; a thread
    /// over budget is reported once, like a panic in a callback (see
    /// [`SimConfig::thread_stack_bytes`]).
    pub(crate) fn check_stack(&self, what: &str) {
        let Some(used) = context::stack_used() else {
            return;
        };
        self.max_stack.fetch_max(used, Ordering::Relaxed);
        if used > self.stack_bytes && context::first_stack_report() {
            self.record_panic(
                what,
                Box::new(format!(
                    "{used} bytes of stack in use on {} (budget {} bytes, the kernel stack): \
                     a completion routine, timer handler or work item recurses too deep",
                    thread::current().name().unwrap_or("a simulator thread"),
                    self.stack_bytes
                )),
            );
        }
    }

    /// The most stack any check saw in use on a simulator thread.
    pub(crate) fn max_stack(&self) -> usize {
        self.max_stack.load(Ordering::Relaxed)
    }

    /// The inline-completion mode.
    pub(crate) fn inline_mode(&self) -> InlineCompletion {
        self.inline
    }

    /// The delivery delay of one completion: configured latency plus an
    /// injected spike.
    pub(crate) fn latency_ticks(&self) -> u64 {
        let Latency { min_us, max_us } = self.latency;
        let mut ticks = if max_us == 0 {
            0
        } else {
            lock(&self.latency_rng).range_inclusive(min_us, max_us) * TICKS_PER_US
        };
        if self.faults.check(FaultPoint::LatencySpike).is_some() {
            ticks = ticks.saturating_add(self.faults.spike_extra_ms() * TICKS_PER_MS);
        }
        ticks
    }

    /// Records a panic caught in a callback running on a simulator thread.
    pub(crate) fn record_panic(&self, what: &str, payload: Box<dyn Any + Send>) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        tracing::error!(sim = self.id, what, message, "dmf-sim: callback panicked");
        crate::counters::bump(&self.counters.panics);
        lock(&self.panics).push(format!("{what}: {message}"));
    }

    /// Runs `f`, recording a panic instead of unwinding further.
    pub(crate) fn guarded<R>(&self, what: &str, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(payload) => {
                self.record_panic(what, payload);
                None
            }
        }
    }

    pub(crate) fn take_panics(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.panics))
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters
            .snapshot(self.faults.total(), self.max_stack() as u64)
    }

    /// Wakes `wait_quiescent` callers after an activity count dropped to 0.
    pub(crate) fn poke_quiet(&self) {
        let _g = lock(&self.quiet);
        self.quiet_cv.notify_all();
    }

    fn is_quiescent(&self) -> bool {
        let c = &self.counters;
        c.in_flight.load(Ordering::Acquire) == 0
            && c.routines_running.load(Ordering::Acquire) == 0
            && self.completions.busy() == 0
            && self.passive.busy() == 0
            && self.pnp.busy() == 0
    }

    /// Waits until no IRP is in flight and no completion, timer handler, work
    /// item or PnP notification is queued or running.
    pub(crate) fn wait_quiescent(&self, timeout: Duration) -> bool {
        context::assert_passive("Sim::wait_quiescent");
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.quiet);
        loop {
            if self.is_quiescent() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Re-check periodically as well: a few activity counters change
            // without a notification when they do not reach zero.
            let step = (deadline - now).min(Duration::from_millis(20));
            g = self
                .quiet_cv
                .wait_timeout(g, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the machine: refuses new work, completes every IRP still pending
    /// at a device with `STATUS_DEVICE_REMOVED`, lets their completions be
    /// delivered, stops the threads (joining them, unless called on one of
    /// them), and drops everything queued.
    pub(crate) fn shutdown(self: &Arc<Self>) {
        let first = !self.shutting_down.swap(true, Ordering::AcqRel);
        let on_sim_thread = context::is_sim_thread_of(self.id);
        if first {
            tracing::debug!(sim = self.id, "dmf-sim: shutting down");
            let devices: Vec<_> = lock(&self.bus).devices.values().cloned().collect();
            for device in devices {
                for (req, gen) in device.take_pending() {
                    irp::complete_internal(&req, gen, dmf_wdf::Status::DEVICE_REMOVED, 0);
                }
            }
            if self.clock.is_manual() {
                if !context::is_advancing(self.id) {
                    scheduler::run_until_idle(self, 1_000_000);
                }
            } else if !on_sim_thread {
                let deadline = Instant::now() + Duration::from_secs(5);
                while self.counters.in_flight.load(Ordering::Acquire) > 0
                    && Instant::now() < deadline
                {
                    let g = lock(&self.quiet);
                    let _ = self
                        .quiet_cv
                        .wait_timeout(g, Duration::from_millis(10))
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            self.sched.shutdown();
            drop(self.completions.shutdown());
            for job in self.passive.shutdown() {
                if let PassiveJob::Work(item) = job {
                    work_item::abandon(&item);
                }
            }
            drop(self.pnp.shutdown());
        }
        let handles = std::mem::take(&mut *lock(&self.threads));
        if on_sim_thread {
            // Joining from one of our own threads could wait for a thread that
            // waits for us: detach instead; they exit as soon as they see the
            // stopped queues.
            drop(handles);
        } else {
            for h in handles {
                let _ = h.join();
            }
        }
        if first {
            let (devices, regs) = {
                let mut bus = lock(&self.bus);
                (
                    std::mem::take(&mut bus.devices),
                    std::mem::take(&mut bus.registrations),
                )
            };
            drop(devices);
            drop(regs);
            tracing::debug!(sim = self.id, "dmf-sim: stopped");
        }
    }
}

/// Counts the simulator threads that are running.
#[derive(Default)]
struct Started {
    count: Mutex<usize>,
    cv: Condvar,
}

impl Started {
    fn one(&self) {
        *lock(&self.count) += 1;
        self.cv.notify_all();
    }

    fn wait_for(&self, n: usize) {
        let mut count = lock(&self.count);
        while *count < n {
            count = wait(&self.cv, count);
        }
    }
}

fn spawn(
    core: &Arc<Core>,
    started: &Arc<Started>,
    role: String,
    body: fn(Arc<Core>),
) -> JoinHandle<()> {
    let c = Arc::clone(core);
    let started = Arc::clone(started);
    let id = core.id;
    thread::Builder::new()
        .name(format!("dmf-sim-{id}-{role}"))
        .stack_size(core.stack_bytes.saturating_add(STACK_RESERVE))
        .spawn(move || {
            context::mark_stack_base();
            context::mark_sim_thread(id);
            started.one();
            drop(started);
            body(c);
        })
        .expect("dmf-sim: cannot spawn a simulator thread")
}

fn completion_worker(core: Arc<Core>) {
    context::mark_completion_thread(core.id);
    while let Some(action) = core.completions.next() {
        core.guarded("completion thread", || action.run());
        if core.completions.done() == 0 {
            core.poke_quiet();
        }
    }
}

fn passive_worker(core: Arc<Core>) {
    while let Some(job) = core.passive.next() {
        match job {
            PassiveJob::Timer(t, gen) => {
                core.guarded("timer handler", || timer::fire(&t, gen));
            }
            PassiveJob::Work(w) => {
                core.guarded("work item handler", || work_item::run(&w));
            }
        }
        if core.passive.done() == 0 {
            core.poke_quiet();
        }
    }
}
