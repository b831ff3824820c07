//! Which completion thread runs a completion. One queued by a completion
//! routine (a resend completed at once) wakes no other completion thread:
//! the routine's thread takes it once the routine returns, like a DPC queued
//! to the current processor. Another completion thread that is awake anyway
//! (starting, or returning from its own job) may take it first, so "stays on
//! its thread" holds only while no other completion thread is free; the tests
//! assert exactly that, and show the other case. Independent completions
//! still spread over the completion threads.

use dmf_sim::NoTargetEvents;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use dmf_sim::{
    DeviceSpec, FixedResponseDevice, InlineCompletion, Latency, Sim, SimConfig, SimIoTarget,
    SimRequest,
};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenMode, OpenParams, Platform, Request, RequestType,
    SendOptions, ShareAccess, Status,
};

fn setup(completion_threads: usize) -> (Sim, Arc<SimIoTarget>) {
    let sim = Sim::new(
        SimConfig::default()
            // Where *deferred* completions run is the subject: no inline
            // delivery (the resending routines here would recurse).
            .with_inline_completion(InlineCompletion::Off)
            .with_latency(Latency::ZERO)
            .with_completion_threads(completion_threads),
    );
    let device = FixedResponseDevice::new(Status::SUCCESS, None);
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("fixed", Arc::new(device)))
        .unwrap();
    let link = sim.bus().device_link(id).unwrap();
    let target = sim.create_io_target().unwrap();
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .unwrap();
    (sim, Arc::new(target))
}

/// Called by a [`Resender`]'s completion routine after its resend, with the
/// index of the completion (0 = first).
type AfterResend = Box<dyn Fn(&Resender, usize) + Send + Sync>;

/// Resends its request from its completion routine until `left` reaches 0,
/// recording the thread of every completion.
struct Resender {
    target: Arc<SimIoTarget>,
    request: SimRequest,
    left: AtomicUsize,
    threads: Mutex<Vec<ThreadId>>,
    me: Mutex<Option<Arc<Resender>>>,
    after_resend: Option<AfterResend>,
}

impl Resender {
    fn send(self: &Arc<Self>) {
        self.request.reuse().unwrap();
        // SAFETY: no buffers.
        unsafe {
            self.target
                .format_request(&self.request, RequestType::Ioctl, 0x0022_2000, None, None)
                .unwrap();
        }
        self.target
            .send(&self.request, SendOptions::default(), Arc::clone(self))
            .unwrap();
    }

    fn threads(&self) -> Vec<ThreadId> {
        self.threads.lock().unwrap().clone()
    }
}

impl CompletionRoutine for Resender {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(c.status.is_success());
        let index = {
            let mut threads = self.threads.lock().unwrap();
            threads.push(std::thread::current().id());
            threads.len() - 1
        };
        if self.left.fetch_sub(1, Ordering::AcqRel) > 1 {
            self.send();
            if let Some(after) = &self.after_resend {
                after(&self, index);
            }
        } else {
            self.me.lock().unwrap().take();
        }
    }
}

fn resender(
    sim: &Sim,
    target: &Arc<SimIoTarget>,
    sends: usize,
    after_resend: Option<AfterResend>,
) -> Arc<Resender> {
    let r = Arc::new(Resender {
        target: Arc::clone(target),
        request: sim.create_request(Some(&**target)).unwrap(),
        left: AtomicUsize::new(sends),
        threads: Mutex::new(Vec::new()),
        me: Mutex::new(None),
        after_resend,
    });
    *r.me.lock().unwrap() = Some(Arc::clone(&r));
    r
}

/// Occupies one completion thread: its completion routine records its
/// thread and returns only once released (or after a deadline, so a failing
/// test cannot hang).
struct Blocker {
    request: SimRequest,
    thread: Mutex<Option<ThreadId>>,
    released: AtomicBool,
}

impl Blocker {
    /// Sends the blocking request and waits until its routine runs.
    fn occupy_a_completion_thread(sim: &Sim, target: &Arc<SimIoTarget>) -> Arc<Blocker> {
        let b = Arc::new(Blocker {
            request: sim.create_request(Some(&**target)).unwrap(),
            thread: Mutex::new(None),
            released: AtomicBool::new(false),
        });
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(&b.request, RequestType::Ioctl, 0x0022_2000, None, None)
                .unwrap();
        }
        target
            .send(&b.request, SendOptions::default(), Arc::clone(&b))
            .unwrap();
        wait_until("the blocking completion", || b.thread().is_some());
        b
    }

    fn thread(&self) -> Option<ThreadId> {
        *self.thread.lock().unwrap()
    }

    fn release(&self) {
        self.released.store(true, Ordering::Release);
    }
}

impl CompletionRoutine for Blocker {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(c.status.is_success());
        *self.thread.lock().unwrap() = Some(std::thread::current().id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.released.load(Ordering::Acquire) && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// While the other completion thread is busy, every completion queued by a
/// completion routine runs on the routine's own thread (the only one free to
/// take it), after the routine returned.
#[test]
fn a_completion_queued_by_a_completion_routine_stays_on_its_thread() {
    const SENDS: usize = 500;
    let (sim, target) = setup(2);
    let blocker = Blocker::occupy_a_completion_thread(&sim, &target);
    let r = resender(&sim, &target, SENDS, None);
    r.send();
    wait_until("the resend chain", || {
        r.threads.lock().unwrap().len() == SENDS
    });
    blocker.release();
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    let threads = r.threads();
    assert_eq!(threads.len(), SENDS);
    let switches = threads.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(
        switches, 0,
        "resends hopped between completion threads {switches} times"
    );
    assert_ne!(Some(threads[0]), blocker.thread());
    assert_ne!(threads[0], std::thread::current().id());
    drop((r, blocker));
    target.close();
    drop(target);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

/// A completion queued by a completion routine wakes nobody, but a
/// completion thread that is awake anyway may take it before the routine
/// returns: here the other thread is released by the routine right after
/// its resend, and runs the next completion while the routine still runs.
/// (This is why a chain on an unoccupied machine can hop: a thread that is
/// still starting up, or returning from its own job, is awake.)
#[test]
fn an_awake_completion_thread_may_take_a_queued_completion() {
    const SENDS: usize = 50;
    const HANDOVER: usize = 10;
    let (sim, target) = setup(2);
    let blocker = Blocker::occupy_a_completion_thread(&sim, &target);
    let released = Arc::clone(&blocker);
    let r = resender(
        &sim,
        &target,
        SENDS,
        Some(Box::new(move |r: &Resender, index| {
            if index == HANDOVER {
                // The next completion is queued; free the other thread and
                // wait (still inside this routine) until it has taken it.
                released.release();
                wait_until("the next completion on the other thread", || {
                    r.threads.lock().unwrap().len() > HANDOVER + 1
                });
            }
        })),
    );
    r.send();
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    let threads = r.threads();
    assert_eq!(threads.len(), SENDS);
    let other = blocker.thread().expect("the blocker ran");
    assert!(threads[..=HANDOVER].iter().all(|&t| t == threads[0]));
    assert_ne!(threads[0], other);
    assert_eq!(threads[HANDOVER + 1], other, "the awake thread took it");
    assert!(threads.iter().all(|&t| t == threads[0] || t == other));
    drop((r, blocker));
    target.close();
    drop(target);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn independent_streams_still_use_every_completion_thread() {
    // Two resend chains started together from this (non-completion) thread:
    // the second start finds the first completion waiting and wakes the
    // other idle completion thread, so both threads get work.
    let (sim, target) = setup(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = resender(&sim, &target, 200, None);
        let b = resender(&sim, &target, 200, None);
        a.send();
        b.send();
        assert!(sim.wait_quiescent(Duration::from_secs(10)));
        let mut all: Vec<ThreadId> = a.threads.lock().unwrap().clone();
        all.extend(b.threads.lock().unwrap().iter().copied());
        all.sort_by_key(|t| format!("{t:?}"));
        all.dedup();
        if all.len() == 2 {
            break;
        }
        // A start can find the first chain already done on a busy machine;
        // try again.
        assert!(
            Instant::now() < deadline,
            "only one completion thread ever ran"
        );
    }
    target.close();
    drop(target);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}
