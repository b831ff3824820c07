//! Strict behaviours where KMDF / Windows allow what the layers must cope
//! with: interface notifications reported inline or repeated, passive-only
//! object creation, passive-only wait locks, the completion-routine budget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_sim::{FixedResponseDevice, NotificationConfig, RoutineBudget, Sim, SimConfig};
use dmf_wdf::{
    Completed, CompletionRoutine, Guid, Lock, Notification, Platform, RequestType, SendOptions,
    Status, WaitLock,
};

const G: Guid = Guid::from_u128(0xCCCC_0000_0000_0000_0000_0000_0000_0001);

fn device() -> Arc<FixedResponseDevice> {
    Arc::new(FixedResponseDevice::new(Status::SUCCESS, None))
}

fn me() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

#[test]
fn existing_interfaces_can_be_reported_on_the_registering_thread_before_it_returns() {
    let sim = Sim::new(SimConfig::default().with_notifications(NotificationConfig {
        existing_inline_per_million: 1_000_000,
        repeat_arrival_per_million: 0,
    }));
    let (_, l1) = add_device(&sim, "one", G, device());
    let (_, l2) = add_device(&sim, "two", G, device());
    let log = Log::default();
    let reg = sim
        .register_interface_notification(&G, Interfaces::new("r", &log))
        .unwrap();
    // Reported before `register` returned, on this thread.
    let mut got = log.take();
    got.sort();
    let mut want = vec![
        format!("r:arrived:{l1}@{}", me()),
        format!("r:arrived:{l2}@{}", me()),
    ];
    want.sort();
    assert_eq!(got, want);
    // Later arrivals come from the PnP thread as usual.
    let (_, l3) = add_device(&sim, "three", G, device());
    assert_eq!(log.take(), vec![format!("r:arrived:{l3}@pnp")]);
    reg.unregister();
    assert_clean(&sim);
}

#[test]
fn arrivals_can_repeat_for_an_interface_already_reported() {
    let sim = Sim::new(SimConfig::default().with_notifications(NotificationConfig {
        existing_inline_per_million: 0,
        repeat_arrival_per_million: 1_000_000,
    }));
    let (_, l1) = add_device(&sim, "one", G, device());
    let log = Log::default();
    let reg = sim
        .register_interface_notification(&G, Interfaces::new("r", &log))
        .unwrap();
    sim.bus().flush().unwrap();
    let (id2, l2) = add_device(&sim, "two", G, device());
    sim.bus().disable_interface(id2, &G).unwrap();
    assert_eq!(
        log.take(),
        vec![
            format!("r:arrived:{l1}@pnp"),
            format!("r:arrived:{l1}@pnp"),
            format!("r:arrived:{l2}@pnp"),
            format!("r:arrived:{l2}@pnp"),
            format!("r:removed:{l2}@pnp"),
        ],
        "arrivals twice, removals once"
    );
    reg.unregister();
    assert_clean(&sim);
}

#[test]
fn the_default_mix_is_reproducible_from_the_seed() {
    let run = |seed| {
        let sim = Sim::new(SimConfig::default().with_seed(seed));
        let log = Log::default();
        let _ = add_device(&sim, "one", G, device());
        let mut regs = Vec::new();
        for i in 0..8 {
            regs.push(
                sim.register_interface_notification(&G, Interfaces::new(&format!("r{i}"), &log))
                    .unwrap(),
            );
        }
        sim.bus().flush().unwrap();
        let mut l: Vec<String> = log
            .take()
            .into_iter()
            .map(|e| e.replace(&me(), "caller"))
            .collect();
        l.sort();
        drop(regs);
        assert_clean(&sim);
        l
    };
    let a = run(3);
    assert_eq!(a, run(3));
    assert!(a.iter().any(|e| e.ends_with("@caller")), "{a:?}");
    assert!(a.iter().any(|e| e.ends_with("@pnp")), "{a:?}");
}

#[test]
#[should_panic(expected = "dispatch context")]
fn create_io_target_in_dispatch_context_panics() {
    let sim = Sim::new(SimConfig::manual());
    let lock = <Sim as Platform>::Lock::new(());
    let _held = lock.lock();
    let _ = sim.create_io_target();
}

#[test]
#[should_panic(expected = "dispatch context")]
fn register_interface_notification_in_dispatch_context_panics() {
    let sim = Sim::new(SimConfig::manual());
    let lock = <Sim as Platform>::Lock::new(());
    let _held = lock.lock();
    let _ = sim.register_interface_notification(&G, Interfaces::new("r", &Log::default()));
}

#[test]
#[should_panic(expected = "dispatch context")]
fn acquiring_a_wait_lock_with_a_spin_lock_held_panics() {
    let sim = Sim::new(SimConfig::manual());
    let wait_lock = sim.create_wait_lock(0u32).unwrap();
    let lock = <Sim as Platform>::Lock::new(());
    let _held = lock.lock();
    let _ = wait_lock.lock();
}

#[test]
#[should_panic(expected = "acquired again")]
fn acquiring_a_wait_lock_twice_on_one_thread_panics() {
    let sim = Sim::new(SimConfig::manual());
    let wait_lock = sim.create_wait_lock(0u32).unwrap();
    let _first = wait_lock.lock();
    let _ = wait_lock.lock();
}

#[test]
fn a_wait_lock_holder_may_block_and_holders_never_overlap() {
    let sim = Sim::new(SimConfig::default());
    let wait_lock = Arc::new(sim.create_wait_lock(0usize).unwrap());
    let event = Arc::new(sim.create_event(false).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (wait_lock, event) = (Arc::clone(&wait_lock), Arc::clone(&event));
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let mut inside = wait_lock.lock();
                    let before = *inside;
                    // A holder may block (a spin-lock holder may not).
                    dmf_wdf::Event::wait(&*event, Some(0));
                    std::thread::yield_now();
                    *inside = before + 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*wait_lock.lock(), 400);
}

#[test]
fn wait_lock_creation_can_fail_by_injection_and_live_locks_are_counted() {
    let sim = Sim::new(SimConfig::manual());
    sim.faults().set(
        dmf_sim::FaultPoint::WaitLockCreation,
        dmf_sim::FaultPlan::Next(1),
    );
    assert_eq!(
        sim.create_wait_lock(()).err(),
        Some(Status::INSUFFICIENT_RESOURCES)
    );
    assert_eq!(sim.counters().live_wait_locks, 0);
    let lock = sim.create_wait_lock(()).unwrap();
    assert_eq!(sim.counters().live_wait_locks, 1);
    assert!(!sim.counters().is_clean());
    drop(lock);
    assert_eq!(sim.counters().live_wait_locks, 0);
    assert!(sim.counters().is_clean());
}

/// Takes a wait lock in its completion routine: a verifier break in KMDF.
struct TakesWaitLock(Arc<<Sim as Platform>::WaitLock<()>>);

impl CompletionRoutine for TakesWaitLock {
    fn completed(self: Arc<Self>, _: Completed) {
        let _ = self.0.lock();
    }
}

#[test]
#[should_panic(expected = "dispatch context")]
fn acquiring_a_wait_lock_in_a_completion_routine_panics() {
    let sim = Sim::new(SimConfig::manual());
    let (_, link) = add_device(&sim, "dev", G, device());
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
    let request = sim.create_request(Some(&target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        dmf_wdf::IoTarget::format_request(&*target, &request, RequestType::Ioctl, 1, None, None)
            .unwrap();
    }
    let routine = Arc::new(TakesWaitLock(Arc::new(sim.create_wait_lock(()).unwrap())));
    dmf_wdf::IoTarget::send(&*target, &request, SendOptions::default(), routine).unwrap();
    // With a manual clock the completion runs here, and its panic with it.
    sim.run_until_idle();
}

struct Slow(u64);

impl CompletionRoutine for Slow {
    fn completed(self: Arc<Self>, _: Completed) {
        std::thread::sleep(Duration::from_millis(self.0));
    }
}

fn send_one(sim: &Sim, routine: Arc<Slow>) {
    let (_, link) = add_device(sim, "dev", G, device());
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(sim, &link, &events);
    let request = sim.create_request(Some(&target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        dmf_wdf::IoTarget::format_request(&*target, &request, RequestType::Ioctl, 1, None, None)
            .unwrap();
    }
    dmf_wdf::IoTarget::send(&*target, &request, SendOptions::default(), routine).unwrap();
    sim.run_until_idle();
    drop(request);
    dmf_wdf::IoTarget::close(&*target);
}

#[test]
fn a_completion_routine_over_budget_is_counted() {
    let sim = Sim::new(SimConfig::manual().with_routine_budget(RoutineBudget {
        limit_us: 1_000,
        strict: false,
    }));
    send_one(&sim, Arc::new(Slow(0)));
    assert_eq!(sim.counters().slow_completion_routines, 0);
    send_one(&sim, Arc::new(Slow(20)));
    assert_eq!(sim.counters().slow_completion_routines, 1);
}

#[test]
#[should_panic(expected = "over the 1000 us budget")]
fn a_completion_routine_over_a_strict_budget_panics() {
    let sim = Sim::new(SimConfig::manual().with_routine_budget(RoutineBudget {
        limit_us: 1_000,
        strict: true,
    }));
    send_one(&sim, Arc::new(Slow(20)));
}

/// The watchdog's report names the modules' last transitions: a recorder
/// that holds more events than it keeps shows its last ones in the panic.
#[test]
fn an_over_budget_routine_dumps_the_recorders_of_the_modules() {
    use dmf_wdf::recorder::{Recorder, MODULE};
    let sim = Sim::new(SimConfig::manual().with_routine_budget(RoutineBudget {
        limit_us: 1_000,
        strict: true,
    }));
    let recorder = Recorder::<Sim, 8>::new(&sim, format_args!("CRT under test"));
    for i in 0..20 {
        recorder.record(
            tracing::Level::DEBUG,
            MODULE,
            format_args!("transition {i}"),
        );
    }
    let dropped = Recorder::<Sim, 8>::new(&sim, format_args!("RequestTarget gone"));
    dropped.record(
        tracing::Level::WARN,
        1 << 32 | 5,
        format_args!("closed with a leak"),
    );
    drop(dropped);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        send_one(&sim, Arc::new(Slow(20)))
    }))
    .expect_err("the strict watchdog fires");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("over the 1000 us budget"), "{message}");
    assert!(message.contains("== CRT under test (live) =="), "{message}");
    assert!(
        message.contains("== RequestTarget gone (dropped) =="),
        "{message}"
    );
    assert!(
        message.contains("WARN Target#5.1 closed with a leak"),
        "{message}"
    );
    // The last 8 of 20: transitions 12..=19, in order, and nothing older.
    let kept: Vec<&str> = message
        .lines()
        .filter(|l| l.contains("transition "))
        .collect();
    assert_eq!(kept.len(), 8, "{message}");
    assert!(kept[0].ends_with("transition 12") && kept[7].ends_with("transition 19"));
}

/// `leak_check` passes when everything is gone and, when something leaks,
/// says what (the counters) and what happened last (the recorders).
#[test]
fn the_leak_check_reports_counters_and_recorders() {
    use dmf_wdf::recorder::Recorder;
    let sim = Sim::new(SimConfig::default());
    let recorder = Recorder::<Sim>::new(&sim, format_args!("DIMT {{test}}"));
    recorder.record(
        tracing::Level::DEBUG,
        2 << 32 | 3,
        format_args!("target opened"),
    );
    drop(recorder);
    assert_eq!(sim.leak_check(Duration::from_secs(5)), Ok(()));
    let leaked = sim.create_request(None).unwrap();
    let report = sim.leak_check(Duration::from_secs(5)).unwrap_err();
    assert!(report.contains("1 live"), "{report}");
    assert!(report.contains("== DIMT {test} (dropped) =="), "{report}");
    assert!(
        report.contains("DEBUG Target#3.2 target opened"),
        "{report}"
    );
    drop(leaked);
    assert_eq!(sim.leak_check(Duration::from_secs(5)), Ok(()));
}

/// Only the newest dropped recorders are kept, so a long run does not grow.
#[test]
fn dropped_recorders_are_kept_up_to_a_bound() {
    use dmf_wdf::recorder::Recorder;
    let sim = Sim::new(SimConfig::default());
    for i in 0..40 {
        drop(Recorder::<Sim, 4>::new(&sim, format_args!("module {i}")));
    }
    let dump = sim.recorder_dump();
    assert!(
        dump.starts_with("in-flight recorders: 0 live, 16 dropped"),
        "{dump}"
    );
    assert!(!dump.contains("== module 23 ") && dump.contains("== module 24 (dropped)"));
    assert!(dump.contains("== module 39 (dropped)"));
}
