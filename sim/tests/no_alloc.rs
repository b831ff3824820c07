//! The simulator's per-request path does not allocate in steady state, so the
//! layers' zero-allocation tests can run on it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use dmf_sim::ioctl_handler::{IOCTL_SLEEP, SLEEP_INPUT_SIZE};
use dmf_sim::{
    Latency, Sim, SimConfig, SimIoTarget, SimRequest, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, Platform, RawBuffer, Request, RequestType, SendOptions,
};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A stream: every completion re-sends the same request, like a continuous reader.
struct Stream {
    target: Arc<SimIoTarget>,
    request: Mutex<Option<Arc<SimRequest>>>,
    me: Mutex<Option<Arc<Stream>>>,
    input: [u8; SLEEP_INPUT_SIZE],
    left: AtomicUsize,
    done: (Mutex<bool>, Condvar),
    resend: ResendLoop,
}

impl Stream {
    fn send(self: &Arc<Self>) {
        self.resend.send(|| {
            self.send_once();
            true
        });
    }

    fn send_once(self: &Arc<Self>) {
        let request = self.request.lock().unwrap().clone().unwrap();
        request.reuse().unwrap();
        // SAFETY: `input` lives in the stream, which outlives every send.
        unsafe {
            self.target
                .format_request(
                    &request,
                    RequestType::Ioctl,
                    IOCTL_SLEEP,
                    Some(RawBuffer::from_slice(&self.input)),
                    None,
                )
                .unwrap();
        }
        self.target
            .send(&request, SendOptions { timeout_ms: 1000 }, Arc::clone(self))
            .unwrap();
    }
}

impl CompletionRoutine for Stream {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(c.status.is_success());
        if self.left.fetch_sub(1, Ordering::SeqCst) > 1 {
            if !self.resend.hand_to_sender() {
                self.send();
            }
        } else {
            *self.done.0.lock().unwrap() = true;
            self.done.1.notify_all();
        }
    }
}

fn make_streams(
    sim: &Sim,
    target: &Arc<SimIoTarget>,
    streams: usize,
    each: usize,
) -> Vec<Arc<Stream>> {
    (0..streams)
        .map(|_| {
            let s = Arc::new(Stream {
                target: Arc::clone(target),
                request: Mutex::new(Some(Arc::new(sim.create_request(Some(&**target)).unwrap()))),
                me: Mutex::new(None),
                input: [0; SLEEP_INPUT_SIZE], // sleep 0 ms
                left: AtomicUsize::new(each),
                done: (Mutex::new(false), Condvar::new()),
                resend: ResendLoop::default(),
            });
            *s.me.lock().unwrap() = Some(Arc::clone(&s));
            s
        })
        .collect()
}

fn run(all: &[Arc<Stream>]) {
    for s in all {
        s.send();
    }
    for s in all {
        let mut d = s.done.0.lock().unwrap();
        while !*d {
            d = s.done.1.wait(d).unwrap();
        }
    }
}

fn release(all: Vec<Arc<Stream>>) {
    for s in &all {
        s.me.lock().unwrap().take();
        s.request.lock().unwrap().take();
    }
}

#[test]
fn steady_state_streaming_does_not_allocate() {
    let sim = Sim::new(SimConfig::default().with_latency(Latency::new(0, 20)));
    let (_, link) = add_device(
        &sim,
        "t",
        GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
        Arc::new(TestsIoctlHandler::default()),
    );
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    // Warm up: queues and heaps grow to their working size.
    let warm = make_streams(&sim, &target, 8, 300);
    run(&warm);
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    release(warm);

    // Build the streams (that allocates), then count only while they run.
    let all = make_streams(&sim, &target, 8, 1000);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    run(&all);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    assert_eq!(
        allocations, 0,
        "8000 sends and completions allocated {allocations} times"
    );
    assert!(sim.counters().irps_sent >= 8 * 300 + 8 * 1000);
    release(all);
    drop(target);
    assert_clean(&sim);
}
