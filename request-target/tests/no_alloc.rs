//! Steady-state asynchronous sends allocate nothing (counting global
//! allocator): `send`, `send_ex` + `cancel` and `reuse_send`, safe (owned
//! buffers handed back and sent again) and raw, with dispatch and passive
//! delivery, once the context pool has grown to its working size.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use dmf_request_target::{
    Completion, CompletionDelivery, OwnedCompletion, OwnedSendCompleted, RequestTargetConfig,
    SendBuffer, SendCompleted, SendContextConfig, SendParams,
};
use dmf_sim::{EchoDevice, Latency, Sim, SimConfig};
use dmf_wdf::{RawBuffer, Status};

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

const IN_FLIGHT: usize = 8;

static INPUT: [u8; 16] = [7; 16];

/// Runs `rounds` rounds of `IN_FLIGHT` concurrent sends of each kind and
/// waits for their completions (spinning on an atomic: no allocation).
fn rounds(
    f: &Fixture,
    callback: &Completion,
    owned: &Owned,
    done: &AtomicUsize,
    reuse: &[dmf_request_target::ReuseId],
    delivery: CompletionDelivery,
    rounds: usize,
) {
    let params = SendParams::write().with_delivery(delivery);
    for _ in 0..rounds {
        let start = done.load(Ordering::SeqCst);
        for (i, &reuse_id) in reuse.iter().enumerate().take(IN_FLIGHT) {
            let b = Some(RawBuffer::from_slice(&INPUT));
            let cb = Some(Arc::clone(callback));
            // SAFETY: INPUT is 'static and never written.
            unsafe {
                match i % 3 {
                    0 => f.module.send_raw(b, None, params, cb, i).unwrap(),
                    1 => {
                        let id = f.module.send_ex_raw(b, None, params, cb, i).unwrap();
                        f.module.cancel(id);
                    }
                    _ => {
                        f.module
                            .reuse_send_raw(reuse_id, b, None, params, cb, i)
                            .unwrap();
                    }
                }
            }
        }
        for (i, &reuse_id) in reuse.iter().enumerate().skip(IN_FLIGHT).take(IN_FLIGHT) {
            // The buffer the previous round's completion handed back.
            let b = owned.buffers.lock().unwrap()[i - IN_FLIGHT].take();
            let b = Some(b.expect("handed back"));
            let cb = Some(Arc::clone(&owned.callback));
            match i % 3 {
                0 => f.module.send(b, None, params, cb, i - IN_FLIGHT).unwrap(),
                1 => {
                    let id = f
                        .module
                        .send_ex(b, None, params, cb, i - IN_FLIGHT)
                        .unwrap();
                    f.module.cancel(id);
                }
                _ => {
                    f.module
                        .reuse_send(reuse_id, b, None, params, cb, i - IN_FLIGHT)
                        .unwrap();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        // Every context is back in the pool once the module holds no reference.
        while done.load(Ordering::SeqCst) < start + 2 * IN_FLIGHT || f.module.references() > 0 {
            assert!(Instant::now() < deadline, "completions missing");
            std::thread::yield_now();
        }
    }
}

/// The safe sends' callback and the buffers it hands back, one slot per
/// send of a round (sized up front: storing a buffer does not allocate).
struct Owned {
    callback: OwnedCompletion<Sim>,
    buffers: Arc<Mutex<Vec<Option<SendBuffer<Sim>>>>>,
}

impl Owned {
    fn new(done: &Arc<AtomicUsize>) -> Owned {
        let buffers: Vec<Option<SendBuffer<Sim>>> = (0..IN_FLIGHT)
            .map(|i| Some(SendBuffer::Vec(vec![i as u8; 16])))
            .collect();
        let buffers = Arc::new(Mutex::new(buffers));
        let callback: OwnedCompletion<Sim> = {
            let done = Arc::clone(done);
            let buffers = Arc::clone(&buffers);
            Arc::new(move |c: OwnedSendCompleted<Sim>| {
                assert!(matches!(c.status, Status::SUCCESS | Status::CANCELLED));
                let input = c.input.expect("the input comes back");
                assert_eq!(input.as_slice(), &[c.client_context as u8; 16]);
                buffers.lock().unwrap()[c.client_context] = Some(input);
                done.fetch_add(1, Ordering::SeqCst);
            })
        };
        Owned { callback, buffers }
    }
}

#[test]
fn steady_state_sends_do_not_allocate() {
    // The counter works.
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Box::new(1u64)));
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst) - before, 1);

    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        let config = RequestTargetConfig {
            contexts: SendContextConfig {
                // Raw and owned sends: `2 * IN_FLIGHT` in flight at most.
                preallocated_contexts: 2 * IN_FLIGHT,
                ..config.contexts
            },
            ..config
        };
        let f = Fixture::new(
            SimConfig::default().with_latency(Latency::new(0, 50)),
            Arc::new(EchoDevice::new()),
            config,
        );
        let done = Arc::new(AtomicUsize::new(0));
        let callback: Completion = {
            let done = Arc::clone(&done);
            Arc::new(move |c: &SendCompleted<'_>| {
                assert!(matches!(c.status, Status::SUCCESS | Status::CANCELLED));
                done.fetch_add(1, Ordering::SeqCst);
            })
        };
        let owned = Owned::new(&done);
        let reuse: Vec<_> = (0..2 * IN_FLIGHT)
            .map(|_| f.module.reuse_create().unwrap())
            .collect();
        for delivery in [
            CompletionDelivery::Module,
            CompletionDelivery::Dispatch,
            CompletionDelivery::Passive,
        ] {
            // Warm up: the pool, the simulator's queues and the requests for
            // this target reach their working size.
            rounds(&f, &callback, &owned, &done, &reuse, delivery, 50);
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            rounds(&f, &callback, &owned, &done, &reuse, delivery, 200);
            COUNTING.store(false, Ordering::SeqCst);
            let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
            assert_eq!(
                allocations,
                0,
                "{} sends ({delivery:?}, passive module: {}) allocated {allocations} times",
                200 * 2 * IN_FLIGHT,
                config.passive_level
            );
        }
        assert!(f.module.context_count() <= 2 * IN_FLIGHT);
        drop(callback);
        drop(owned);
        f.finish();
    }
}
