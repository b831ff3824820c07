//! Inline completion: a completion routine may run on the thread that caused
//! the completion (inside `send`, `cancel_sent`, `stop(Cancel)`, `purge`,
//! `close`), as under KMDF when the lower driver completes at once; nested
//! inline deliveries are bounded; simulator threads have a kernel-sized stack
//! budget.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::*;
use dmf_sim::{
    ClockMode, FixedResponseDevice, InlineCompletion, ParkingDevice, Sim, SimConfig, SimIoTarget,
    SimLock, SimRequest, KERNEL_STACK_BYTES,
};
use dmf_wdf::{
    Completed, CompletionRoutine, Event, Guid, IoTarget, Lock, Platform, Request, RequestType,
    SendOptions, SentIoAction, Status,
};

const GUID: Guid = Guid::from_u128(0x1414_0000_0000_0000_0000_0000_0000_0001);

fn sim(mode: InlineCompletion) -> Sim {
    Sim::new(SimConfig::default().with_inline_completion(mode))
}

fn target_on(sim: &Sim, device: Arc<dyn dmf_sim::DeviceHandler>) -> Arc<SimIoTarget> {
    let (_, link) = add_device(sim, "d", GUID, device);
    open(
        sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    )
}

fn formatted(sim: &Sim, target: &SimIoTarget) -> SimRequest {
    let request = sim.create_request(Some(target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    request
}

/// Records where and when its completion ran.
#[derive(Default)]
struct Where {
    thread: Mutex<Option<ThreadId>>,
    /// Set by the test right after the call that may deliver inline returned.
    call_returned: AtomicBool,
    /// Whether the routine ran before that.
    ran_inside_call: AtomicBool,
    status: Mutex<Option<Status>>,
    count: AtomicUsize,
}

impl CompletionRoutine for Where {
    fn completed(self: Arc<Self>, c: Completed) {
        *self.thread.lock().unwrap() = Some(thread::current().id());
        self.ran_inside_call
            .store(!self.call_returned.load(Ordering::SeqCst), Ordering::SeqCst);
        *self.status.lock().unwrap() = Some(c.status);
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

impl Where {
    fn ran_here_inside_the_call(&self) -> bool {
        self.count.load(Ordering::SeqCst) == 1
            && self.ran_inside_call.load(Ordering::SeqCst)
            && *self.thread.lock().unwrap() == Some(thread::current().id())
    }
}

#[test]
fn always_runs_the_routine_inside_send_on_the_sender_thread() {
    for clock in [ClockMode::Real, ClockMode::Manual] {
        let sim = Sim::new(
            SimConfig::default()
                .with_clock(clock)
                .with_inline_completion(InlineCompletion::Always),
        );
        let target = target_on(
            &sim,
            Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(3))),
        );
        let request = formatted(&sim, &target);
        let w = Arc::new(Where::default());
        target
            .send(&request, SendOptions::default(), w.clone())
            .unwrap();
        w.call_returned.store(true, Ordering::SeqCst);
        assert!(w.ran_here_inside_the_call(), "{clock:?}");
        assert_eq!(*w.status.lock().unwrap(), Some(Status::SUCCESS));
        assert_eq!(request.last_completion().map(|c| c.information), Some(3));
        assert_eq!(sim.counters().inline_deliveries, 1);
        // A synchronous send completed inline returns at once.
        request.reuse().unwrap();
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(&request, RequestType::Read, 0, None, None)
                .unwrap()
        };
        assert_eq!(target.send_synchronously(&request, 0), Ok(3));
        assert_eq!(sim.counters().inline_deliveries, 2);
        drop(request);
        drop(target);
        assert_clean(&sim);
    }
}

#[test]
fn off_never_runs_the_routine_inside_send() {
    let sim = sim(InlineCompletion::Off);
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let request = formatted(&sim, &target);
    let w = Arc::new(Where::default());
    // Hold the routine back until the send returned: it must not be needed
    // for `send` to return.
    target
        .send(&request, SendOptions::default(), w.clone())
        .unwrap();
    w.call_returned.store(true, Ordering::SeqCst);
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(w.count.load(Ordering::SeqCst), 1);
    assert_ne!(
        *w.thread.lock().unwrap(),
        Some(thread::current().id()),
        "delivered on a completion thread"
    );
    assert_eq!(sim.counters().inline_deliveries, 0);
    drop(request);
    drop(target);
    assert_clean(&sim);
}

/// Sends one request to a parking device (cancelable), then runs `cancel`
/// and checks that the routine ran inside it, on this thread.
fn cancel_runs_inline(cancel: impl FnOnce(&SimIoTarget, &SimRequest)) {
    let sim = sim(InlineCompletion::Always);
    let device = ParkingDevice::new();
    let target = target_on(&sim, device.clone());
    let request = formatted(&sim, &target);
    let w = Arc::new(Where::default());
    target
        .send(&request, SendOptions::default(), w.clone())
        .unwrap();
    assert_eq!(device.pending(), 1);
    assert_eq!(w.count.load(Ordering::SeqCst), 0, "parked, not completed");
    cancel(&target, &request);
    w.call_returned.store(true, Ordering::SeqCst);
    assert!(w.ran_here_inside_the_call());
    assert_eq!(*w.status.lock().unwrap(), Some(Status::CANCELLED));
    assert_eq!(device.pending(), 0);
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn cancel_sent_runs_the_routine_on_the_cancelling_thread() {
    cancel_runs_inline(|_, request| assert!(request.cancel_sent()));
}

#[test]
fn stop_with_cancel_runs_the_routine_on_the_stopping_thread() {
    cancel_runs_inline(|target, _| target.stop(SentIoAction::Cancel));
}

#[test]
fn purge_runs_the_routine_on_the_purging_thread() {
    cancel_runs_inline(|target, _| target.purge(true));
}

#[test]
fn close_runs_the_routine_on_the_closing_thread() {
    cancel_runs_inline(|target, _| target.close());
}

#[test]
fn close_for_query_remove_runs_the_routine_on_the_closing_thread() {
    cancel_runs_inline(|target, _| target.close_for_query_remove());
}

/// Blocks in its completion routine.
struct Blocks(dmf_sim::SimEvent);
impl CompletionRoutine for Blocks {
    fn completed(self: Arc<Self>, _c: Completed) {
        self.0.wait(Some(10));
    }
}

#[test]
fn an_inline_routine_is_still_in_dispatch_context() {
    let sim = sim(InlineCompletion::Always);
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let request = formatted(&sim, &target);
    let routine = Arc::new(Blocks(sim.create_event(false).unwrap()));
    // The sender is at passive level, but the routine may not block: it
    // panics inside `send`.
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = target.send(&request, SendOptions::default(), routine);
    }));
    let err = r.unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("Event::wait") && msg.contains("dispatch"),
        "{msg}"
    );
    // Accounting survived the panic.
    assert!(sim.counters().is_idle(), "{}", sim.counters());
    drop(request);
    drop(target);
    assert_clean(&sim);
}

/// Resends from its completion routine, directly: recursion under inline
/// completion.
struct NaiveResender {
    target: Arc<SimIoTarget>,
    request: Mutex<Option<Arc<SimRequest>>>,
    left: AtomicUsize,
}

impl NaiveResender {
    fn send(self: &Arc<Self>) {
        let request = self.request.lock().unwrap().clone().unwrap();
        request.reuse().unwrap();
        // SAFETY: no buffers.
        unsafe {
            self.target
                .format_request(&request, RequestType::Read, 0, None, None)
                .unwrap()
        };
        self.target
            .send(&request, SendOptions::default(), Arc::clone(self))
            .unwrap();
    }
}

impl CompletionRoutine for NaiveResender {
    fn completed(self: Arc<Self>, _c: Completed) {
        if self.left.fetch_sub(1, Ordering::SeqCst) > 1 {
            self.send();
        }
    }
}

#[test]
fn unbounded_resend_recursion_is_reported_and_loses_nothing() {
    let sim = Sim::new(
        SimConfig::default()
            .with_inline_completion(InlineCompletion::Always)
            .with_inline_depth_limit(4),
    );
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let resender = Arc::new(NaiveResender {
        target: Arc::clone(&target),
        request: Mutex::new(Some(Arc::new(sim.create_request(Some(&*target)).unwrap()))),
        left: AtomicUsize::new(20),
    });
    resender.send();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(resender.left.load(Ordering::SeqCst), 0, "every resend ran");
    assert_eq!(sim.counters().irps_sent, 20);
    let panics = sim.take_callback_panics();
    assert!(
        panics
            .iter()
            .any(|p| p.contains("more than 4 nested inline completions")),
        "{panics:?}"
    );
    // (On a completion thread the recursion may also overrun the stack
    // budget first: reported too.)
    assert!(
        panics.iter().all(|p| p.contains("nested inline completions")
            || p.contains("bytes of stack in use")),
        "{panics:?}"
    );
    resender.request.lock().unwrap().take();
    drop(resender);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn the_resend_loop_pattern_stays_flat() {
    /// As `NaiveResender`, but hands resends to a sender still in `send`.
    struct Looping {
        target: Arc<SimIoTarget>,
        request: Mutex<Option<Arc<SimRequest>>>,
        left: AtomicUsize,
        resend: ResendLoop,
    }
    impl Looping {
        fn send(self: &Arc<Self>) {
            self.resend.send(|| {
                let request = self.request.lock().unwrap().clone().unwrap();
                request.reuse().unwrap();
                // SAFETY: no buffers.
                unsafe {
                    self.target
                        .format_request(&request, RequestType::Read, 0, None, None)
                        .unwrap()
                };
                self.target
                    .send(&request, SendOptions::default(), Arc::clone(self))
                    .is_ok()
            });
        }
    }
    impl CompletionRoutine for Looping {
        fn completed(self: Arc<Self>, _c: Completed) {
            if self.left.fetch_sub(1, Ordering::SeqCst) > 1 && !self.resend.hand_to_sender() {
                self.send();
            }
        }
    }
    let sim = Sim::new(
        SimConfig::default()
            .with_inline_completion(InlineCompletion::Always)
            .with_inline_depth_limit(1),
    );
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let looping = Arc::new(Looping {
        target: Arc::clone(&target),
        request: Mutex::new(Some(Arc::new(sim.create_request(Some(&*target)).unwrap()))),
        left: AtomicUsize::new(1000),
        resend: ResendLoop::default(),
    });
    looping.send();
    assert_eq!(looping.left.load(Ordering::SeqCst), 0);
    assert_eq!(sim.counters().inline_deliveries, 1000);
    assert!(sim.take_callback_panics().is_empty());
    looping.request.lock().unwrap().take();
    drop(looping);
    drop(target);
    assert_clean(&sim);
}

/// Which of `n` sequential sends completed inside `send`.
fn mix_pattern(seed: u64, n: usize) -> Vec<bool> {
    let sim = Sim::new(SimConfig::manual().with_seed(seed).with_inline_completion(
        InlineCompletion::Mix {
            percent: 50,
            seed: 3,
        },
    ));
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let mut pattern = Vec::new();
    for _ in 0..n {
        let request = formatted(&sim, &target);
        let w = Arc::new(Where::default());
        target
            .send(&request, SendOptions::default(), w.clone())
            .unwrap();
        w.call_returned.store(true, Ordering::SeqCst);
        pattern.push(w.count.load(Ordering::SeqCst) == 1);
        assert!(sim.run_until_idle());
        assert_eq!(w.count.load(Ordering::SeqCst), 1, "delivered either way");
    }
    drop(target);
    assert_clean(&sim);
    pattern
}

#[test]
fn mix_is_a_seeded_mix() {
    let a = mix_pattern(11, 64);
    assert_eq!(a, mix_pattern(11, 64), "same seed, same choices");
    assert_ne!(a, mix_pattern(12, 64), "another seed, other choices");
    let inline = a.iter().filter(|&&i| i).count();
    assert!((10..=54).contains(&inline), "about half: {inline} of 64");
}

/// Recurses `depth` times with a big frame, then sends from the bottom.
#[inline(never)]
fn deep_then_send(depth: usize, target: &SimIoTarget, request: &SimRequest) -> u8 {
    let frame = std::hint::black_box([depth as u8; 1024]);
    if depth == 0 {
        request.reuse().unwrap();
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(request, RequestType::Read, 0, None, None)
                .unwrap()
        };
        target
            .send(request, SendOptions::default(), Recorder::new())
            .unwrap();
        return frame[0];
    }
    deep_then_send(depth - 1, target, request).wrapping_add(frame[depth % 1024])
}

/// A completion routine that goes 48 KiB deep before sending again.
struct DeepRoutine {
    target: Arc<SimIoTarget>,
    request: Arc<SimRequest>,
}

impl CompletionRoutine for DeepRoutine {
    fn completed(self: Arc<Self>, _c: Completed) {
        std::hint::black_box(deep_then_send(48, &self.target, &self.request));
    }
}

#[test]
fn a_completion_thread_over_its_kernel_stack_budget_is_reported() {
    let sim = sim(InlineCompletion::Off);
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let first = formatted(&sim, &target);
    let second = Arc::new(sim.create_request(Some(&*target)).unwrap());
    let deep = Arc::new(DeepRoutine {
        target: Arc::clone(&target),
        request: Arc::clone(&second),
    });
    target.send(&first, SendOptions::default(), deep).unwrap();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    let panics = sim.take_callback_panics();
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert!(
        panics[0].contains("bytes of stack in use") && panics[0].contains("completion"),
        "{}",
        panics[0]
    );
    assert!(sim.counters().max_stack_bytes > KERNEL_STACK_BYTES as u64);
    drop((first, second));
    drop(target);
    assert_clean(&sim);
}

#[test]
fn ordinary_completion_work_fits_the_kernel_stack_budget() {
    let sim = sim(InlineCompletion::Off);
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let first = formatted(&sim, &target);
    let second = Arc::new(sim.create_request(Some(&*target)).unwrap());
    // One resend from a completion routine, without the deep recursion.
    struct Shallow(Arc<SimIoTarget>, Arc<SimRequest>);
    impl CompletionRoutine for Shallow {
        fn completed(self: Arc<Self>, _c: Completed) {
            deep_then_send(0, &self.0, &self.1);
        }
    }
    target
        .send(
            &first,
            SendOptions::default(),
            Arc::new(Shallow(Arc::clone(&target), Arc::clone(&second))),
        )
        .unwrap();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert!(sim.take_callback_panics().is_empty());
    let used = sim.counters().max_stack_bytes;
    assert!(used > 0 && used < KERNEL_STACK_BYTES as u64, "{used} bytes");
    drop((first, second));
    drop(target);
    assert_clean(&sim);
}

/// Takes a spin lock in its completion routine.
struct TakesLock(Arc<SimLock<u32>>);
impl CompletionRoutine for TakesLock {
    fn completed(self: Arc<Self>, _c: Completed) {
        *self.0.lock() += 1;
    }
}

#[test]
fn a_spin_lock_held_across_send_and_taken_by_the_routine_panics_instead_of_deadlocking() {
    let sim = sim(InlineCompletion::Always);
    let target = target_on(
        &sim,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
    );
    let request = formatted(&sim, &target);
    let lock = Arc::new(SimLock::new(0u32));
    // Under KMDF the routine would spin forever on the lock its own thread
    // holds; the simulator panics in the routine, on the sender's thread.
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _held = lock.lock();
        let _ = target.send(
            &request,
            SendOptions::default(),
            Arc::new(TakesLock(Arc::clone(&lock))),
        );
    }));
    let err = r.unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .unwrap_or_else(|| err.downcast_ref::<String>().cloned().unwrap_or_default());
    assert!(msg.contains("spin lock acquired again"), "{msg}");
    assert_eq!(*lock.lock(), 0);
    // The same code without the lock held across `send` is fine.
    request.reuse().unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    target
        .send(
            &request,
            SendOptions::default(),
            Arc::new(TakesLock(Arc::clone(&lock))),
        )
        .unwrap();
    assert_eq!(*lock.lock(), 1);
    drop(request);
    drop(target);
    assert_clean(&sim);
}
