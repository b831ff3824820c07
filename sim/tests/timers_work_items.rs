//! Timers (deterministic in manual mode, stop semantics) and work items
//! (coalescing, flush, injected failures).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use dmf_sim::{FaultPlan, FaultPoint, Sim, SimConfig};
use dmf_wdf::{Lock, Platform, Status, Timer, TimerHandler, WorkItem, WorkItemHandler};

struct Named {
    name: &'static str,
    log: Log,
    sim: dmf_sim::WeakSim,
}

impl TimerHandler for Named {
    fn fired(&self) {
        let now = self.sim.upgrade().map(|s| s.now_ms()).unwrap_or(0);
        self.log.push(format!("{}@{}", self.name, now));
    }
}

#[test]
fn manual_timers_fire_in_deadline_then_fifo_order_at_their_deadline() {
    let run = || {
        let sim = Sim::new(SimConfig::manual());
        let log = Log::default();
        let mk = |name| {
            sim.create_timer(Arc::new(Named {
                name,
                log: log.clone(),
                sim: sim.downgrade(),
            }))
            .unwrap()
        };
        let (a, b, c, d) = (mk("a"), mk("b"), mk("c"), mk("d"));
        assert!(!a.start(30));
        assert!(!b.start(10));
        assert!(!c.start(10)); // same deadline as b, armed later: after b
        assert!(!d.start(5));
        assert!(d.start(20)); // re-armed: was armed; fires once, at 20
        assert_eq!(sim.counters().armed_timers, 4);
        sim.advance(10);
        assert_eq!(log.snapshot(), ["b@10", "c@10"]);
        assert!(a.stop(false), "armed: stopped before firing");
        assert!(!a.stop(false), "no longer armed");
        sim.advance(100);
        assert_eq!(sim.counters().armed_timers, 0);
        drop((a, b, c, d));
        assert_clean(&sim);
        log.take()
    };
    let first = run();
    assert_eq!(first, ["b@10", "c@10", "d@20"]);
    assert_eq!(run(), first, "deterministic");
}

/// A handler that blocks until released, counting runs and overlap.
#[derive(Default)]
struct Blocking {
    runs: AtomicUsize,
    running: AtomicUsize,
    overlapped: AtomicBool,
    gate: Mutex<bool>,
    cv: Condvar,
}

impl Blocking {
    fn block(&self) {
        if self.running.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        self.runs.fetch_add(1, Ordering::SeqCst);
        let mut open = self.gate.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
        drop(open);
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
    fn open(&self) {
        *self.gate.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn wait_runs(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.runs.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "handler did not run");
            thread::yield_now();
        }
    }
}

impl TimerHandler for Blocking {
    fn fired(&self) {
        self.block();
    }
}

impl WorkItemHandler for Blocking {
    fn run(&self) {
        self.block();
    }
}

#[test]
fn stop_with_wait_waits_for_the_running_handler() {
    let sim = Sim::new(SimConfig::default());
    let h = Arc::new(Blocking::default());
    let timer = sim.create_timer(Arc::clone(&h)).unwrap();
    timer.start(0);
    h.wait_runs(1);
    assert!(!timer.stop(false), "running, no longer armed: false");
    let stopped = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            assert!(!timer.stop(true));
            stopped.store(true, Ordering::SeqCst);
        });
        thread::sleep(Duration::from_millis(30));
        assert!(
            !stopped.load(Ordering::SeqCst),
            "stop(true) must wait for the handler"
        );
        h.open();
    });
    assert!(stopped.load(Ordering::SeqCst));
    // Armed far in the future: stop prevents it.
    assert!(!timer.start(60_000));
    assert!(timer.stop(true));
    drop(timer);
    assert_eq!(h.runs.load(Ordering::SeqCst), 1);
    assert_clean(&sim);
}

#[test]
fn a_timer_rearmed_while_running_does_not_overlap_itself() {
    let sim = Sim::new(SimConfig::default().with_passive_threads(3));
    let h = Arc::new(Blocking::default());
    let timer = sim.create_timer(Arc::clone(&h)).unwrap();
    timer.start(0);
    h.wait_runs(1);
    timer.start(0);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(h.runs.load(Ordering::SeqCst), 1, "second expiry deferred");
    h.open();
    h.wait_runs(2);
    drop(timer);
    assert!(!h.overlapped.load(Ordering::SeqCst));
    assert_clean(&sim);
}

#[test]
fn dropping_a_timer_stops_it() {
    let sim = Sim::new(SimConfig::manual());
    let log = Log::default();
    let t = sim
        .create_timer(Arc::new(Named {
            name: "x",
            log: log.clone(),
            sim: sim.downgrade(),
        }))
        .unwrap();
    t.start(5);
    drop(t);
    sim.advance(10);
    assert!(log.take().is_empty());
    assert_clean(&sim);
}

#[test]
fn work_item_enqueue_coalesces_while_queued() {
    let sim = Sim::new(SimConfig::default().with_passive_threads(1));
    // Occupy the only passive thread so the item stays queued.
    let blocker = Arc::new(Blocking::default());
    let busy = sim.create_work_item(Arc::clone(&blocker)).unwrap();
    busy.enqueue().unwrap();
    blocker.wait_runs(1);

    struct Count(AtomicUsize);
    impl WorkItemHandler for Count {
        fn run(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let item = sim.create_work_item(Arc::clone(&count)).unwrap();
    for _ in 0..5 {
        item.enqueue().unwrap();
    }
    assert!(item.is_queued());
    blocker.open();
    item.flush();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "five enqueues while queued: one run"
    );
    item.enqueue().unwrap();
    item.flush();
    assert_eq!(count.0.load(Ordering::SeqCst), 2);
    drop((busy, item));
    assert_clean(&sim);
}

#[test]
fn work_items_run_without_advance_in_manual_mode_and_faults_are_injectable() {
    let sim = Sim::new(SimConfig::manual());
    struct Flag(AtomicBool);
    impl WorkItemHandler for Flag {
        fn run(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let item = sim.create_work_item(Arc::clone(&flag)).unwrap();
    sim.faults()
        .set(FaultPoint::WorkItemEnqueue, FaultPlan::Next(1));
    assert_eq!(item.enqueue(), Err(Status::INSUFFICIENT_RESOURCES));
    assert!(!item.is_queued());
    item.enqueue().unwrap();
    item.flush();
    assert!(flag.0.load(Ordering::SeqCst));
    sim.faults()
        .set(FaultPoint::WorkItemCreation, FaultPlan::Always);
    assert_eq!(
        sim.create_work_item(Arc::clone(&flag)).err(),
        Some(Status::INSUFFICIENT_RESOURCES)
    );
    sim.faults()
        .set(FaultPoint::TimerCreation, FaultPlan::Always);
    assert!(sim.create_timer(Arc::new(Blocking::default())).is_err());
    sim.faults()
        .set(FaultPoint::EventCreation, FaultPlan::Always);
    assert!(sim.create_event(true).is_err());
    sim.faults().clear_all();
    assert!(sim.create_event(true).is_ok());
    drop(item);
    assert_clean(&sim);
}

#[test]
fn dropping_a_queued_work_item_runs_it_first() {
    let sim = Sim::new(SimConfig::default().with_passive_threads(1));
    let blocker = Arc::new(Blocking::default());
    let busy = sim.create_work_item(Arc::clone(&blocker)).unwrap();
    busy.enqueue().unwrap();
    blocker.wait_runs(1);
    let second = Arc::new(Blocking::default());
    second.open();
    let item = sim.create_work_item(Arc::clone(&second)).unwrap();
    item.enqueue().unwrap();
    thread::scope(|s| {
        s.spawn(|| drop(item));
        thread::sleep(Duration::from_millis(10));
        blocker.open();
    });
    assert_eq!(second.runs.load(Ordering::SeqCst), 1);
    drop(busy);
    assert_clean(&sim);
}

/// A handler that takes its own timer or work item out of a slot and drops
/// it, recording whether that panicked.
#[derive(Default)]
struct SelfDropper {
    timer: Mutex<Option<dmf_sim::SimTimer>>,
    item: Mutex<Option<dmf_sim::SimWorkItem>>,
    dropped: AtomicBool,
}

impl TimerHandler for SelfDropper {
    fn fired(&self) {
        let t = self.timer.lock().unwrap().take();
        drop(t);
        self.dropped.store(true, Ordering::SeqCst);
    }
}

impl WorkItemHandler for SelfDropper {
    fn run(&self) {
        let w = self.item.lock().unwrap().take();
        drop(w);
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[test]
#[should_panic(expected = "dropped from its own handler")]
fn dropping_a_timer_from_its_own_handler_panics() {
    let sim = Sim::new(SimConfig::manual());
    let h = Arc::new(SelfDropper::default());
    let t = sim.create_timer(Arc::clone(&h)).unwrap();
    t.start(1);
    *h.timer.lock().unwrap() = Some(t);
    // Manual clock: the handler runs inline and its panic reaches us.
    sim.advance(1);
}

#[test]
#[should_panic(expected = "dispatch context")]
fn dropping_a_timer_in_dispatch_context_panics() {
    let sim = Sim::new(SimConfig::manual());
    let t = sim.create_timer(Arc::new(Blocking::default())).unwrap();
    let lock = <Sim as Platform>::Lock::new(());
    let _held = lock.lock(); // a spin lock held: DISPATCH_LEVEL
    drop(t);
}

#[test]
#[should_panic(expected = "dispatch context")]
fn dropping_a_work_item_in_dispatch_context_panics() {
    let sim = Sim::new(SimConfig::manual());
    let w = sim.create_work_item(Arc::new(Blocking::default())).unwrap();
    let lock = <Sim as Platform>::Lock::new(());
    let _held = lock.lock();
    drop(w);
}

#[test]
fn dropping_a_work_item_from_its_own_handler_does_not_wait_for_itself() {
    let sim = Sim::new(SimConfig::default());
    let h = Arc::new(SelfDropper::default());
    let w = sim.create_work_item(Arc::clone(&h)).unwrap();
    // The handler must find the item: store it before the enqueue (the
    // handler may run before `enqueue` returns; it waits for this lock).
    let mut slot = h.item.lock().unwrap();
    slot.insert(w).enqueue().unwrap();
    drop(slot);
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert!(h.dropped.load(Ordering::SeqCst));
    assert!(sim.take_callback_panics().is_empty());
    assert_clean(&sim);
}
