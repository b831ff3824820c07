//! Zero heap allocations per streamed request in steady state (DESIGN.md
//! fixed point), proven with a counting global allocator: once streaming
//! runs, thousands of completions, input callbacks, buffer round trips and
//! resends allocate nothing — on a dispatch-level and a passive-level CRT.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::{SleepRequest, IOCTL_SLEEP, SLEEP_INPUT_SIZE};
use dmf_sim::{Latency, Sim, SimConfig, TestsIoctlHandler};
use dmf_wdf::RequestType;

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

/// The counter is process-wide: the tests measure one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sleeps 0 ms at the device; checks the output; counts.
struct Client {
    completions: AtomicUsize,
}

impl StreamClient<Sim> for Client {
    fn buffer_input(&self, input: &mut [u8], context: &mut [u8]) -> usize {
        context[0] = context[0].wrapping_add(1);
        input.copy_from_slice(&SleepRequest::default().to_bytes());
        SLEEP_INPUT_SIZE
    }

    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        assert!(c.status.is_success(), "{:?}", c.status);
        assert!(c.output.is_some());
        self.completions.fetch_add(1, Ordering::Relaxed);
        c.module_owns_and_continue()
    }
}

fn steady_state_allocations(passive: bool) -> u64 {
    let (sim, target) = sim_with_device(
        SimConfig::default().with_latency(Latency::new(0, 20)),
        std::sync::Arc::new(TestsIoctlHandler::default()),
    );
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: 8,
        buffer_count_input: 8,
        buffer_input_size: SLEEP_INPUT_SIZE as u32,
        buffer_context_input_size: 4,
        buffer_count_output: 8,
        buffer_output_size: 64,
        buffer_context_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_SLEEP,
        passive_level: passive,
        ..Default::default()
    };
    let client = Client {
        completions: AtomicUsize::new(0),
    };
    let crt = ContinuousRequestTarget::new(&sim, config, client).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    let done = || crt.client().completions.load(Ordering::Relaxed);
    // Warm up: the simulator's queues and heaps reach their working size.
    wait_until("warm-up", Duration::from_secs(20), || done() >= 3000);
    let start = done();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    while done() < start + 8000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    crt.stop().unwrap();
    assert_eq!(crt.statistics().retired(), 8);
    drop(crt);
    assert_clean(&sim, target);
    allocations
}

#[test]
fn streaming_steady_state_does_not_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The harness counts: an allocation while counting is seen.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    std::hint::black_box(Vec::<u8>::with_capacity(16));
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > before);

    for passive in [false, true] {
        let allocations = steady_state_allocations(passive);
        assert_eq!(
            allocations, 0,
            "passive={passive}: 8000 streamed requests allocated {allocations} times"
        );
    }
}

/// Safe single sends with owned buffers: the completion hands each buffer
/// back into its slot (sized up front) and the sender sends it again.
fn owned_send_allocations(passive: bool) -> u64 {
    use dmf_sim::ioctl_handler::encode_sleep;
    use std::sync::{Arc, Mutex};

    const IN_FLIGHT: usize = 8;
    let (sim, target) = sim_with_device(
        SimConfig::default().with_latency(Latency::new(0, 20)),
        Arc::new(TestsIoctlHandler::default()),
    );
    let config = ContinuousRequestTargetConfig {
        passive_level: passive,
        ..Default::default()
    };
    let crt = ContinuousRequestTarget::new(&sim, config, ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    let slots: Arc<Mutex<Vec<Option<SendBuffer<Sim>>>>> = Arc::new(Mutex::new(
        (0..IN_FLIGHT)
            .map(|_| Some(encode_sleep(0).to_vec().into()))
            .collect(),
    ));
    let completed = Arc::new(AtomicUsize::new(0));
    let callback: OwnedCompletion<Sim> = {
        let slots = Arc::clone(&slots);
        let completed = Arc::clone(&completed);
        Arc::new(move |c: OwnedSendCompleted<Sim>| {
            assert!(c.status.is_success(), "{:?}", c.status);
            slots.lock().unwrap()[c.client_context] = c.input;
            completed.fetch_add(1, Ordering::SeqCst);
        })
    };
    // Rounds of `IN_FLIGHT` concurrent sends, each round waiting until every
    // completion has returned its buffer and its send context.
    let run = |rounds: usize| {
        for _ in 0..rounds {
            let start = completed.load(Ordering::SeqCst);
            for i in 0..IN_FLIGHT {
                let buffer = slots.lock().unwrap()[i].take().expect("handed back");
                let params = SendParams::ioctl(IOCTL_SLEEP);
                crt.send(Some(buffer), None, params, Some(Arc::clone(&callback)), i)
                    .unwrap();
            }
            while completed.load(Ordering::SeqCst) < start + IN_FLIGHT
                || crt.request_target().references() > 0
            {
                std::thread::yield_now();
            }
        }
    };
    run(100);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    run(500);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    drop(callback);
    drop(crt);
    assert_clean(&sim, target);
    allocations
}

#[test]
fn owned_single_sends_do_not_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for passive in [false, true] {
        let allocations = owned_send_allocations(passive);
        assert_eq!(
            allocations, 0,
            "passive={passive}: 4000 owned single sends allocated {allocations} times"
        );
    }
}
