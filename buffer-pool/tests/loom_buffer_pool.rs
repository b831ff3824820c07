//! Loom model checks of the buffer pool's concurrency protocols, on the
//! shared loom platform (`dmf-loom-platform`): lock-free get/put on a source
//! (including put-at-head and look-aside), the free list's ring wrapping
//! around while three threads get and put (also with one of them putting
//! back at the head), a guard dropped while its pool
//! closes, and a buffer's expiry timer firing while a sink `get`, an
//! enumeration or the sink's close races for the same buffer. Every
//! interleaving must hand each buffer to exactly one owner and free every
//! block exactly once.
//!
//! Planted bug caught (checked once in a scratch copy, never committed):
//! in `buffer-pool/src/queue.rs`, `BoundedQueue::pop` publishing the slot's
//! next-lap stamp *before* reading the value out of the slot (the release
//! reordered) — `ring_wraps_around_with_three_threads` fails with loom's
//! "Causality violation: Concurrent read and write accesses to
//! `UnsafeCell`": a push of the next lap, which only the wrap-around
//! reaches, writes the slot while the pop still reads it. The other models
//! of this file pass with that bug.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-buffer-pool --test loom_buffer_pool --release`.
#![cfg(loom)]

use std::sync::Arc;

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, EnumerationDisposition, ExpiryCallback, PoolBuffer, SinkPool,
};
use dmf_loom_platform::LoomPlatform;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    dmf_loom_platform::model(4, f);
}

/// Runs the pools' reapers, then counts the blocks not freed.
fn live_allocations(platform: &LoomPlatform) -> usize {
    platform.run_pending();
    platform.live_allocations()
}

fn id(b: &PoolBuffer<LoomPlatform>) -> usize {
    b.data_ptr().as_ptr() as usize
}

#[test]
fn concurrent_get_put_hands_each_buffer_to_one_owner() {
    model(|| {
        let platform = LoomPlatform::new();
        let pool = Arc::new(BufferPool::new(&platform, BufferPoolConfig::new(2, 8)).unwrap());
        let t = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut b = pool.get().unwrap();
                b.data_mut()[0] = 1;
                let i = id(&b);
                b.put_home_at_head().unwrap();
                i
            })
        };
        let mine = pool.get().unwrap();
        assert_eq!(mine.data()[0], 0, "a zeroed buffer, not one in use");
        let mine_id = id(&mine);
        let theirs = t.join().unwrap();
        assert_ne!(mine_id, theirs, "one buffer, two owners");
        drop(mine);
        assert_eq!(pool.count(), 2);
        drop(pool);
        assert_eq!(live_allocations(&platform), 0);
    });
}

#[test]
fn look_aside_grow_and_shrink_race() {
    model(|| {
        let platform = LoomPlatform::new();
        let config = BufferPoolConfig::new(1, 8).with_look_aside(true);
        let pool = Arc::new(BufferPool::new(&platform, config).unwrap());
        let held = pool.get().unwrap();
        let t = {
            let pool = pool.clone();
            thread::spawn(move || drop(pool.get().unwrap()))
        };
        drop(held);
        t.join().unwrap();
        assert_eq!(pool.count(), 1);
        assert_eq!(
            pool.buffers_allocated(),
            1,
            "the pool shrank back to buffer_count"
        );
        drop(pool);
        assert_eq!(live_allocations(&platform), 0);
    });
}

#[test]
fn guard_dropped_while_its_pool_closes_is_freed_once() {
    model(|| {
        let platform = LoomPlatform::new();
        let pool = BufferPool::new(&platform, BufferPoolConfig::new(2, 8)).unwrap();
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        let t = thread::spawn(move || {
            drop(a);
            b.put_home_at_head().unwrap();
        });
        drop(pool);
        t.join().unwrap();
        assert_eq!(live_allocations(&platform), 0);
    });
}

/// A sink holding one timed buffer, and a callback counting expiries.
fn timed_sink() -> (
    LoomPlatform,
    BufferPool<LoomPlatform>,
    SinkPool<LoomPlatform>,
    Arc<AtomicUsize>,
) {
    let platform = LoomPlatform::new();
    let pool = BufferPool::new(&platform, BufferPoolConfig::new(1, 8).with_timers(true)).unwrap();
    let sink = SinkPool::new(&platform);
    let expired = Arc::new(AtomicUsize::new(0));
    let e = expired.clone();
    let on_expiry: std::sync::Arc<dyn ExpiryCallback<LoomPlatform>> = std::sync::Arc::new(
        move |_: &SinkPool<LoomPlatform>, b: PoolBuffer<LoomPlatform>| {
            e.fetch_add(1, Ordering::SeqCst);
            drop(b);
        },
    );
    sink.put_with_timer(pool.get().unwrap(), 10, on_expiry)
        .unwrap();
    (platform, pool, sink, expired)
}

#[test]
fn timer_fire_races_sink_get() {
    model(|| {
        let (platform, pool, sink, expired) = timed_sink();
        let timer = platform.timer(0);
        let t = thread::spawn(move || timer.fire());
        // Whoever got it sends it home (zeroing it, clearing its expiry
        // state) while the timer handler may still be running.
        let got_it = usize::from(sink.get().is_ok());
        t.join().unwrap();
        assert_eq!(
            got_it + expired.load(Ordering::SeqCst),
            1,
            "exactly one owner"
        );
        assert_eq!((sink.count(), pool.count()), (0, 1));
        drop((sink, pool));
        assert_eq!(live_allocations(&platform), 0);
    });
}

#[test]
fn timer_fire_races_enumeration() {
    for disposition in [
        EnumerationDisposition::RemoveAndStopEnumeration,
        EnumerationDisposition::ContinueEnumeration,
        EnumerationDisposition::StopTimerAndStopEnumeration,
    ] {
        model(move || {
            let (platform, pool, sink, expired) = timed_sink();
            let timer = platform.timer(0);
            let t = thread::spawn(move || timer.fire());
            let removed_n = usize::from(sink.enumerate(|_| disposition).is_some());
            t.join().unwrap();
            let fired = expired.load(Ordering::SeqCst);
            assert!(fired + removed_n <= 1);
            // Whatever is left in the sink is still there, exactly once.
            assert_eq!(sink.count() + pool.count(), 1);
            // The timer may have been re-armed (Continue): fire it again.
            platform.timer(0).fire();
            drop(sink);
            assert_eq!(pool.count(), 1);
            drop(pool);
            assert_eq!(live_allocations(&platform), 0);
        });
    }
}

#[test]
fn timer_fire_races_sink_close() {
    model(|| {
        let (platform, pool, sink, expired) = timed_sink();
        let timer = platform.timer(0);
        let t = thread::spawn(move || timer.fire());
        drop(sink);
        t.join().unwrap();
        assert!(expired.load(Ordering::SeqCst) <= 1);
        assert_eq!(pool.count(), 1, "the buffer came home exactly once");
        drop(pool);
        assert_eq!(live_allocations(&platform), 0);
    });
}

/// Gets a buffer (if one is free), checks it is zeroed (nobody else owns
/// it), marks it as `owner`'s, and puts it back at the tail.
fn get_mark_put(pool: &BufferPool<LoomPlatform>, owner: u8, at_head: bool) -> bool {
    let Ok(mut buffer) = pool.get() else {
        return false;
    };
    assert_eq!(buffer.data()[0], 0, "a zeroed buffer, not one in use");
    buffer.data_mut()[0] = owner;
    assert_eq!(buffer.data()[0], owner, "one buffer, two owners");
    if at_head {
        buffer.put_home_at_head().unwrap();
    } else {
        buffer.put_home().unwrap();
    }
    true
}

/// The free list is a ring of `buffer_count` slots whose head and tail
/// indices wrap into the next lap. Filling the pool already moves the tail
/// to the start of the second lap; three threads each getting and putting
/// a buffer then take the head and the tail past the end of the ring again,
/// so pops of one lap race pushes of the next on the same slot.
///
/// One preemption per execution (8k executions, under a second): with two,
/// loom reports the queue's wait for a slot being published (a spin that
/// needs the other thread to progress) as an endless path.
#[test]
fn ring_wraps_around_with_three_threads() {
    ring_with_three_threads(false);
}

/// The same, with one thread putting its buffer back at the head (the
/// locked stack in front of the ring), so that gets take from both.
#[test]
fn ring_and_head_stack_with_three_threads() {
    ring_with_three_threads(true);
}

fn ring_with_three_threads(one_at_head: bool) {
    dmf_loom_platform::model(1, move || {
        let platform = LoomPlatform::new();
        let pool = Arc::new(BufferPool::new(&platform, BufferPoolConfig::new(2, 8)).unwrap());
        let others: Vec<_> = (1..=2u8)
            .map(|owner| {
                let pool = pool.clone();
                thread::spawn(move || get_mark_put(&pool, owner, one_at_head && owner == 1))
            })
            .collect();
        let mut got = usize::from(get_mark_put(&pool, 3, false));
        for t in others {
            got += usize::from(t.join().unwrap());
        }
        // Two buffers, three takers: at least two got one.
        assert!(got >= 2, "a get failed although a buffer was free");
        assert_eq!(pool.count(), 2);
        // Both buffers are listed once each, zeroed.
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        assert_ne!(a.data_ptr(), b.data_ptr());
        assert!(a.data().iter().chain(b.data()).all(|&x| x == 0));
        assert!(pool.get().is_err());
        drop((a, b));
        assert_eq!(platform.live_allocations(), 2);
        drop(pool);
        assert_eq!(live_allocations(&platform), 0);
    });
}
