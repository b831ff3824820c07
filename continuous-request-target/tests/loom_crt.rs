//! Model checks of the CRT start / stop / resend protocol
//! ([`StreamControl`] + [`SlotState`], the code the engine runs) under every
//! interleaving loom explores: a stop never returns while a stream request
//! is in flight or still part of the stream, nothing is sent after it
//! returned, a completion racing the send that issued it (the "early"
//! completion) is processed exactly once, parked slots are claimed exactly
//! once, and concurrent start / stop callers never hang or strand each other.
//!
//! The engine's send loop and completion processing are mirrored below with
//! the I/O replaced by a model target (a queue served by a device thread;
//! requests it "parks" complete only when cancelled).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-continuous-request-target --test loom_crt --release`.
#![cfg(loom)]

use dmf_continuous_request_target::protocol::{
    AfterSend, ClaimFilter, Entry, ParkKind, Phase, SlotState, StopRole, StreamControl, StreamState,
};
use dmf_wdf::Event;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A manual-reset event on loom's primitives.
struct LoomEvent {
    set: Mutex<bool>,
    cv: Condvar,
}

impl LoomEvent {
    fn new(signalled: bool) -> Self {
        LoomEvent {
            set: Mutex::new(signalled),
            cv: Condvar::new(),
        }
    }
}

impl Event for LoomEvent {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn reset(&self) {
        *self.set.lock().unwrap() = false;
    }
    fn is_set(&self) -> bool {
        *self.set.lock().unwrap()
    }
    fn wait(&self, _timeout_ms: Option<u32>) -> bool {
        let mut g = self.set.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
        true
    }
}

/// What a completion decided (the engine's `Decision`, without back-off time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Resend,
    Backoff,
    Retire,
}

/// The model target: accepted requests are either queued for the device
/// thread to complete, or parked until cancelled.
struct Target {
    /// (queue of requests to complete, parked request, shut down)
    state: Mutex<(Vec<()>, bool, bool)>,
    cv: Condvar,
    /// Natural completions left; when 0, sends park.
    natural: AtomicUsize,
    /// Sends accepted.
    sends: AtomicUsize,
}

impl Target {
    fn send(&self) {
        self.sends.fetch_add(1, Ordering::SeqCst);
        let mut s = self.state.lock().unwrap();
        let natural = self.natural.load(Ordering::SeqCst);
        if natural > 0 {
            self.natural.store(natural - 1, Ordering::SeqCst);
            s.0.push(());
            self.cv.notify_all();
        } else {
            assert!(!s.1, "request sent twice");
            s.1 = true;
        }
    }

    /// `cancel_sent`: a parked request completes (cancelled).
    fn cancel(&self) {
        let mut s = self.state.lock().unwrap();
        if s.1 {
            s.1 = false;
            s.0.push(());
            self.cv.notify_all();
        }
    }

    fn in_flight(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.1 || !s.0.is_empty()
    }

    fn shutdown(&self) {
        self.state.lock().unwrap().2 = true;
        self.cv.notify_all();
    }
}

/// One CRT with one stream slot.
struct Crt {
    control: StreamControl<LoomEvent>,
    slot: SlotState,
    decision: Mutex<Option<Decision>>,
    target: Target,
    /// What a completion decides while running.
    on_complete: Decision,
    retired: AtomicUsize,
    completions: AtomicUsize,
}

impl Crt {
    fn new(natural: usize, on_complete: Decision) -> Arc<Self> {
        Arc::new(Crt {
            control: StreamControl::new(
                LoomEvent::new(false),
                LoomEvent::new(true),
                LoomEvent::new(true),
                LoomEvent::new(false),
            ),
            slot: SlotState::new(),
            decision: Mutex::new(None),
            target: Target {
                state: Mutex::new((Vec::new(), false, false)),
                cv: Condvar::new(),
                natural: AtomicUsize::new(natural),
                sends: AtomicUsize::new(0),
            },
            on_complete,
            retired: AtomicUsize::new(0),
            completions: AtomicUsize::new(0),
        })
    }

    /// `Engine::start` (one slot). Returns whether the first send went out.
    fn start(&self) -> bool {
        if self.control.begin_start(1).is_err() {
            return false;
        }
        assert!(self.slot.claim_idle(), "slot not idle at start");
        // The slot's session (released when it retires).
        assert!(self.control.enter_session());
        self.run()
    }

    /// `Engine::stop`.
    fn stop(&self) {
        if self.control.begin_stop() != StopRole::Owner {
            return;
        }
        self.target.cancel();
        if self.slot.claim_parked(ClaimFilter::Any) {
            self.retire();
        }
        self.control.finish_stop();
    }

    /// `Engine::retire`, then the slot's session is dropped.
    fn retire(&self) {
        self.retired.fetch_add(1, Ordering::SeqCst);
        self.slot.retire();
        self.control.retire_one();
        self.control.leave_session();
    }

    /// `Engine::run`: send and keep going while early completions hand
    /// decisions back. Returns whether the first attempt was sent.
    fn run(&self) -> bool {
        let mut first = true;
        loop {
            if !self.control.enter_send() {
                self.retire();
                return !first;
            }
            self.target.send();
            first = false;
            let after = self.slot.sent();
            self.control.leave_send();
            match after {
                AfterSend::Released => return true,
                AfterSend::Resumed => {
                    let decision = self.decision.lock().unwrap().take().unwrap();
                    match decision {
                        Decision::Resend => self.slot.to_sending(),
                        Decision::Backoff => {
                            self.park();
                            return true;
                        }
                        Decision::Retire => {
                            self.retire();
                            return true;
                        }
                    }
                }
            }
        }
    }

    /// `Engine::park_for_backoff` (the timer is the caller of `fire`).
    fn park(&self) {
        if !self.control.enter_send() {
            self.retire();
            return;
        }
        self.slot.park(ParkKind::Timer);
        self.control.leave_send();
    }

    /// The back-off timer fired (`Engine::hook`).
    fn fire(&self) {
        if self.slot.claim_parked(ClaimFilter::Any) {
            self.run();
        }
    }

    /// `Slot::completed` + `Engine::process`.
    fn completed(&self) {
        self.completions.fetch_add(1, Ordering::SeqCst);
        let entry = self.slot.completing();
        let decision = if self.control.is_running() {
            self.on_complete
        } else {
            Decision::Retire
        };
        if entry == Entry::Early {
            *self.decision.lock().unwrap() = Some(decision);
            if self.slot.finish_early() {
                return;
            }
            self.decision.lock().unwrap().take();
        }
        match decision {
            Decision::Resend => {
                self.slot.to_sending();
                self.run();
            }
            Decision::Backoff => self.park(),
            Decision::Retire => self.retire(),
        }
    }

    /// The device thread: completes queued requests until shut down.
    fn device(&self) {
        loop {
            let mut s = self.target.state.lock().unwrap();
            while s.0.is_empty() && !s.2 {
                s = self.target.cv.wait(s).unwrap();
            }
            if s.0.pop().is_none() {
                return;
            }
            drop(s);
            self.completed();
        }
    }

    /// After a stop returned: nothing in flight, nothing in the stream.
    fn assert_stopped(&self) {
        assert_eq!(self.control.state(), StreamState::Stopped);
        assert_eq!(self.control.active(), 0);
        assert_eq!(self.slot.phase(), Phase::Idle);
        assert!(!self.target.in_flight(), "request in flight after stop");
    }
}

fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn spawn_device(crt: &Arc<Crt>) -> thread::JoinHandle<()> {
    let c = Arc::clone(crt);
    thread::spawn(move || c.device())
}

/// A completion that resends races `stop`: the resend is either refused
/// (the slot retires) or cancelled; stop returns only after that.
#[test]
fn stop_races_completion_and_resend() {
    model(|| {
        let crt = Crt::new(1, Decision::Resend);
        let device = spawn_device(&crt);
        assert!(crt.start());
        crt.stop();
        crt.assert_stopped();
        let sends = crt.target.sends.load(Ordering::SeqCst);
        assert!((1..=2).contains(&sends));
        assert_eq!(crt.completions.load(Ordering::SeqCst), sends);
        assert_eq!(crt.retired.load(Ordering::SeqCst), 1);
        crt.target.shutdown();
        device.join().unwrap();
        assert_eq!(crt.target.sends.load(Ordering::SeqCst), sends);
    });
}

/// `start` and `stop` called concurrently: whichever order, a final stop
/// leaves nothing behind, and the slot retired exactly once per start.
#[test]
fn start_races_stop() {
    model(|| {
        let crt = Crt::new(0, Decision::Resend);
        let device = spawn_device(&crt);
        let c = Arc::clone(&crt);
        let stopper = thread::spawn(move || c.stop());
        let started = crt.start();
        stopper.join().unwrap();
        crt.stop();
        crt.assert_stopped();
        assert_eq!(crt.retired.load(Ordering::SeqCst), 1);
        let _ = started;
        crt.target.shutdown();
        device.join().unwrap();
    });
}

/// Two stoppers: one owns the stop, the other waits for it; neither
/// returns early, and a restart afterwards works.
#[test]
fn concurrent_stoppers_then_restart() {
    model(|| {
        let crt = Crt::new(0, Decision::Resend);
        let device = spawn_device(&crt);
        assert!(crt.start());
        let c = Arc::clone(&crt);
        let second = thread::spawn(move || {
            c.stop();
            c.assert_stopped();
        });
        crt.stop();
        crt.assert_stopped();
        second.join().unwrap();
        assert!(crt.start());
        crt.stop();
        crt.assert_stopped();
        assert_eq!(crt.retired.load(Ordering::SeqCst), 2);
        crt.target.shutdown();
        device.join().unwrap();
    });
}

/// A failing completion parks the slot for back-off; the timer fires while
/// `stop` claims parked slots: exactly one of them takes it.
#[test]
fn backoff_park_races_timer_and_stop() {
    model(|| {
        let crt = Crt::new(1, Decision::Backoff);
        let device = spawn_device(&crt);
        assert!(crt.start());
        let c = Arc::clone(&crt);
        let timer = thread::spawn(move || c.fire());
        crt.stop();
        crt.assert_stopped();
        assert_eq!(crt.retired.load(Ordering::SeqCst), 1);
        timer.join().unwrap();
        crt.assert_stopped();
        crt.target.shutdown();
        device.join().unwrap();
    });
}
