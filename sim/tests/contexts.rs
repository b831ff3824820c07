//! Execution contexts: completions on other threads, blocking in dispatch
//! context panics, callback panics are reported, shutdown stops threads.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dmf_sim::{
    FixedResponseDevice, InlineCompletion, Sim, SimConfig, SimIoTarget, SimLock, SimRequest,
};
use dmf_wdf::{
    Completed, CompletionRoutine, Event, Guid, IoTarget, Lock, Platform, RequestType, SendOptions,
    Status,
};

const GUID: Guid = Guid::from_u128(0xFFFF_0000_0000_0000_0000_0000_0000_0001);

struct ThreadName(Mutex<Option<String>>);
impl CompletionRoutine for ThreadName {
    fn completed(self: Arc<Self>, _c: Completed) {
        *self.0.lock().unwrap() = std::thread::current().name().map(str::to_string);
    }
}

fn setup(sim: &Sim) -> (Arc<SimIoTarget>, SimRequest) {
    let (_, link) = add_device(
        sim,
        "d",
        GUID,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let target = open(
        sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    (target, request)
}

/// A simulator whose completions are never delivered inline: the tests that
/// use it are about completion threads (inline delivery has its own tests in
/// `inline_completion.rs`).
fn deferred_sim() -> Sim {
    Sim::new(SimConfig::default().with_inline_completion(InlineCompletion::Off))
}

#[test]
fn completions_run_on_completion_threads() {
    let sim = deferred_sim();
    let (target, request) = setup(&sim);
    let who = Arc::new(ThreadName(Mutex::new(None)));
    target
        .send(&request, SendOptions::default(), who.clone())
        .unwrap();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    let name = who.0.lock().unwrap().clone().unwrap();
    assert!(
        name.starts_with("dmf-sim-") && name.contains("-completion-"),
        "{name}"
    );
    drop(request);
    drop(target);
    assert_clean(&sim);
}

/// Tries a blocking call inside its completion routine.
struct BlocksInDispatch {
    event: dmf_sim::SimEvent,
}
impl CompletionRoutine for BlocksInDispatch {
    fn completed(self: Arc<Self>, _c: Completed) {
        // A zero-timeout wait is allowed at dispatch level...
        assert!(!self.event.wait(Some(0)));
        // ...a real wait is not.
        self.event.wait(Some(10));
    }
}

#[test]
fn blocking_in_a_completion_routine_panics_and_is_reported() {
    let sim = deferred_sim();
    let (target, request) = setup(&sim);
    let routine = Arc::new(BlocksInDispatch {
        event: sim.create_event(false).unwrap(),
    });
    target
        .send(&request, SendOptions::default(), routine)
        .unwrap();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    let panics = sim.take_callback_panics();
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert!(
        panics[0].contains("Event::wait") && panics[0].contains("dispatch"),
        "{}",
        panics[0]
    );
    assert_eq!(sim.counters().callback_panics, 1);
    // Accounting survived the panic.
    assert!(sim.counters().is_idle());
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn blocking_while_holding_a_spin_lock_panics() {
    let sim = Sim::new(SimConfig::default());
    let (target, request) = setup(&sim);
    let lock = SimLock::new(0u32);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _g = lock.lock();
        let _ = target.send_synchronously(&request, 0);
    }));
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("send_synchronously"), "{msg}");
    // Non-blocking operations are fine under the lock.
    {
        let _g = lock.lock();
        target
            .send(&request, SendOptions::default(), Recorder::new())
            .unwrap();
    }
    // Re-acquiring on the same thread panics instead of deadlocking.
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _a = lock.lock();
        let _b = lock.lock();
    }));
    assert!(r.is_err());
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn a_panicking_completion_routine_fails_the_test_when_the_sim_drops() {
    struct Boom;
    impl CompletionRoutine for Boom {
        fn completed(self: Arc<Self>, _c: Completed) {
            panic!("boom in completion");
        }
    }
    let sim = deferred_sim();
    let (target, request) = setup(&sim);
    target
        .send(&request, SendOptions::default(), Arc::new(Boom))
        .unwrap();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    drop(request);
    drop(target);
    let r = catch_unwind(AssertUnwindSafe(move || drop(sim)));
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("boom in completion"), "{msg}");
}

#[test]
fn shutdown_refuses_work() {
    let sim = Sim::new(SimConfig::default());
    let (target, request) = setup(&sim);
    sim.shutdown();
    assert_eq!(
        target.send(&request, SendOptions::default(), Recorder::new()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    assert!(sim.bus().devices().is_empty());
    assert_eq!(sim.bus().flush(), Err(Status::INVALID_DEVICE_STATE));
    drop(request);
    drop(target);
    assert_clean(&sim);
    drop(sim);
}

#[test]
fn shutdown_completes_io_still_pending() {
    let sim = Sim::new(SimConfig::default());
    let device = dmf_sim::ParkingDevice::uncancelable();
    let (_, link) = add_device(&sim, "p", GUID, device.clone());
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    let rec = Recorder::new();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.shutdown();
    assert_eq!(rec.statuses(), vec![Status::DEVICE_REMOVED]);
    drop(request);
    drop(target);
    assert_clean(&sim);
}
