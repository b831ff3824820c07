//! One-shot passive timers (see [`SimTimer`]).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use dmf_wdf::{Timer, TimerHandler};

use crate::clock::ms_to_ticks;
use crate::context::{self, Marker, MarkerKind};
use crate::core::{lock, wait, Core};
use crate::counters;
use crate::scheduler::Action;
use crate::Sim;

struct TimerState {
    /// The generation of the pending expiry, if armed.
    armed: Option<u64>,
    gen: u64,
    running: bool,
    /// An expiry that arrived while the handler was running.
    deferred: Option<u64>,
}

/// The shared part of a timer.
pub(crate) struct TimerInner {
    core: Arc<Core>,
    handler: Arc<dyn TimerHandler>,
    state: Mutex<TimerState>,
    idle: Condvar,
}

impl TimerInner {
    fn lock(&self) -> MutexGuard<'_, TimerState> {
        lock(&self.state)
    }

    fn key(&self) -> usize {
        self as *const TimerInner as usize
    }
}

/// Whether the timer is armed for expiry `gen`.
pub(crate) fn is_armed_with(timer: &TimerInner, gen: u64) -> bool {
    timer.lock().armed == Some(gen)
}

/// Expiry `gen` of `timer` is due: runs its handler if still armed for it.
pub(crate) fn fire(timer: &Arc<TimerInner>, gen: u64) {
    {
        let mut s = timer.lock();
        if s.armed != Some(gen) {
            return;
        }
        s.armed = None;
        counters::add(&timer.core.counters.armed_timers, -1);
        if s.running {
            s.deferred = Some(gen);
            return;
        }
        s.running = true;
    }
    struct Running<'a>(&'a TimerInner);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.lock().running = false;
            self.0.idle.notify_all();
        }
    }
    let _running = Running(timer);
    let _marker = Marker::set(MarkerKind::Timer, timer.key());
    loop {
        timer.handler.fired();
        let mut s = timer.lock();
        if s.deferred.take().is_none() {
            break;
        }
    }
}

/// A simulated one-shot timer. Dropping it stops it and waits for a running
/// handler, as `KmdfTimer`'s `WdfTimerStop(Wait = TRUE)` + `WdfObjectDelete`.
///
/// As strict as KMDF (see [`dmf_wdf::Timer`]): dropping it, or
/// `stop(wait = true)`, in dispatch context panics (KMDF's verifier breaks on a
/// waiting `FxTimer::Stop` above `PASSIVE_LEVEL`), and so does doing either
/// from the timer's own handler (`FxTimer::Stop` and
/// `FxTimer::FlushAndRundown` break: the wait would never end). While the
/// thread is already unwinding from another panic the drop only stops the
/// timer.
///
/// A timer's handler runs on a passive worker thread in real-time mode and
/// inline on the advancing thread in manual mode. Handler runs of one timer
/// never overlap: if it expires again while its handler is still running, the
/// new run starts after the current one returns.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use dmf_sim::{Sim, SimConfig};
/// use dmf_wdf::{Platform, Timer, TimerHandler};
///
/// struct Count(AtomicUsize);
/// impl TimerHandler for Count {
///     fn fired(&self) { self.0.fetch_add(1, Ordering::SeqCst); }
/// }
///
/// let sim = Sim::new(SimConfig::manual());
/// let count = Arc::new(Count(AtomicUsize::new(0)));
/// let timer = sim.create_timer(count.clone()).unwrap();
/// assert!(!timer.start(10));       // was not armed
/// sim.advance(9);
/// assert_eq!(count.0.load(Ordering::SeqCst), 0);
/// sim.advance(1);
/// assert_eq!(count.0.load(Ordering::SeqCst), 1);
/// assert!(!timer.stop(true));      // already fired
/// ```
pub struct SimTimer {
    _sim: Sim,
    inner: Arc<TimerInner>,
}

impl fmt::Debug for SimTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.lock();
        f.debug_struct("SimTimer")
            .field("armed", &s.armed.is_some())
            .field("running", &s.running)
            .finish()
    }
}

impl SimTimer {
    pub(crate) fn new(sim: &Sim, handler: Arc<dyn TimerHandler>) -> SimTimer {
        let core = Arc::clone(sim.core());
        counters::add(&core.counters.live_timers, 1);
        SimTimer {
            _sim: sim.clone(),
            inner: Arc::new(TimerInner {
                core,
                handler,
                state: Mutex::new(TimerState {
                    armed: None,
                    gen: 0,
                    running: false,
                    deferred: None,
                }),
                idle: Condvar::new(),
            }),
        }
    }

    /// Whether the timer is armed.
    pub fn is_armed(&self) -> bool {
        self.inner.lock().armed.is_some()
    }

    fn stop_impl(&self, wait_for_handler: bool) -> bool {
        let mut s = self.inner.lock();
        let was_armed = s.armed.take().is_some();
        if was_armed {
            counters::add(&self.inner.core.counters.armed_timers, -1);
        }
        // An expiry deferred behind the running handler is an arming that
        // will now not fire: report it as stopped.
        let was_deferred = s.deferred.take().is_some();
        if wait_for_handler {
            while s.running {
                s = wait(&self.inner.idle, s);
            }
        }
        was_armed || was_deferred
    }
}

// SAFETY: the handler runs only from `fire`, for the generation `start`
// armed, after clearing `armed` under the state mutex, so at most once per
// arming and only from the scheduler (never inside `start` or `stop`);
// `stop` clears `armed` under the same mutex and reports `true` only for an
// arming that had not started firing; with `wait` (and on drop outside the
// handler) it waits on `idle` until `running` is false, and a dropped timer
// is disarmed, so no later expiry runs its handler.
unsafe impl Timer for SimTimer {
    fn start(&self, due_ms: u64) -> bool {
        let (was_armed, gen) = {
            let mut s = self.inner.lock();
            let was_armed = s.armed.is_some();
            s.gen += 1;
            let gen = s.gen;
            s.armed = Some(gen);
            (was_armed, gen)
        };
        if !was_armed {
            counters::add(&self.inner.core.counters.armed_timers, 1);
        }
        self.inner.core.schedule(
            ms_to_ticks(due_ms),
            Action::TimerFire {
                timer: Arc::downgrade(&self.inner),
                gen,
            },
        );
        was_armed
    }

    fn stop(&self, wait: bool) -> bool {
        if wait {
            context::assert_passive("Timer::stop(wait = true)");
            assert!(
                !context::is_running_timer(self.inner.key()),
                "dmf-sim: Timer::stop(wait = true) called from the timer's own handler; it would wait for itself"
            );
        }
        self.stop_impl(wait)
    }
}

impl Drop for SimTimer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            context::assert_passive("dropping a Timer (WdfTimerStop(Wait = TRUE) + delete)");
            assert!(
                !context::is_running_timer(self.inner.key()),
                "dmf-sim: a Timer was dropped from its own handler; KMDF's stop-and-delete \
                 would wait for that handler to return (deadlock, verifier break in \
                 FxTimer::FlushAndRundown)"
            );
        }
        let can_wait = !context::in_dispatch() && !context::is_running_timer(self.inner.key());
        self.stop_impl(can_wait);
        counters::add(&self.inner.core.counters.live_timers, -1);
    }
}
