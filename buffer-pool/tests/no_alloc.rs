//! Zero heap allocations per get/put after open, shown with a counting global
//! allocator: source get + drop, put, put-at-head, sink put/get/put-at-head,
//! enumeration, on one thread and on two.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dmf_buffer_pool::{BufferPool, BufferPoolConfig, EnumerationDisposition, SinkPool};
use dmf_sim::{Sim, SimConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread's allocations count (the pool's users; not the
    /// simulator's own background threads, which start lazily).
    static COUNT_HERE: Cell<bool> = const { Cell::new(false) };
}

fn counts() -> bool {
    COUNTING.load(Ordering::Relaxed) && COUNT_HERE.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counts() {
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
        if counts() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts heap allocations made while `f` runs by threads that called
/// [`count_here`].
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

// One test function: the counter is global, so nothing may run beside it.
fn count_here() {
    COUNT_HERE.with(|c| c.set(true));
}

#[test]
fn get_and_put_never_allocate_after_open() {
    count_here();
    // The counter works.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(Box::new(1u64)))),
        1
    );
    let sim = Sim::new(SimConfig::manual());
    let config = BufferPoolConfig::new(8, 64)
        .with_context_size(16)
        .with_look_aside(true);
    let source = Arc::new(BufferPool::new(&sim, config).unwrap());
    let sink = SinkPool::new(&sim);
    // Warm up every path once (nothing here should allocate either).
    let b = source.get().unwrap();
    sink.put(b).unwrap();
    drop(sink.get().unwrap());

    let single = allocations_during(|| {
        for i in 0..10_000usize {
            let mut a = source.get().unwrap();
            let mut b = source.get().unwrap();
            a.data_mut()[0] = i as u8;
            b.context_mut()[0] = 1;
            match i % 4 {
                0 => drop(a),
                1 => source.put(a).unwrap(),
                2 => source.put_at_head(a).unwrap(),
                _ => a.put_home_at_head().unwrap(),
            }
            if i % 2 == 0 {
                sink.put(b).unwrap();
            } else {
                sink.put_at_head(b).unwrap();
            }
            let removed = sink.enumerate(|_| EnumerationDisposition::RemoveAndStopEnumeration);
            drop(removed);
            let _ = sink.get();
        }
    });
    assert_eq!(single, 0, "allocations in 10 000 single-thread rounds");

    // Two threads hammering the same source (threads are spawned before
    // counting starts; spawning allocates).
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let done = Arc::new(std::sync::Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (source, barrier, done) = (source.clone(), barrier.clone(), done.clone());
            std::thread::spawn(move || {
                count_here();
                barrier.wait();
                for i in 0..20_000usize {
                    let mut a = source.get().unwrap();
                    a.data_mut()[1] = i as u8;
                    if i % 5 == 0 {
                        a.put_home_at_head().unwrap();
                    }
                }
                done.wait();
            })
        })
        .collect();
    let threaded = allocations_during(|| {
        barrier.wait();
        done.wait();
    });
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(threaded, 0, "allocations with two threads");
    assert_eq!(source.count(), 8);
    drop(sink);
    drop(source);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}
