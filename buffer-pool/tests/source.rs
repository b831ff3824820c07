//! Source pool behaviour: FIFO/LIFO order, zeroing, look-aside grow and
//! shrink, foreign buffers, overrun detection, close with buffers out,
//! allocation failure, and leak checks on the simulator's counters.

use dmf_buffer_pool::{BufferPool, BufferPoolConfig, BufferPoolMode, PoolType, PutError, SinkPool};
use dmf_sim::{FaultPlan, FaultPoint, Sim, SimConfig};
use dmf_wdf::Status;

fn sim() -> Sim {
    Sim::new(SimConfig::manual())
}

/// Tags each buffer with its index through the data pointer.
fn id(b: &dmf_buffer_pool::PoolBuffer<Sim>) -> usize {
    b.data_ptr().as_ptr() as usize
}

#[test]
fn config_validation_matches_dmf_rules() {
    let sim = sim();
    assert_eq!(
        BufferPool::new(&sim, BufferPoolConfig::default()).unwrap_err(),
        Status::INVALID_PARAMETER
    );
    assert_eq!(
        BufferPool::new(&sim, BufferPoolConfig::new(0, 8)).unwrap_err(),
        Status::INVALID_PARAMETER
    );
    assert_eq!(
        BufferPool::new(&sim, BufferPoolConfig::new(4, 0)).unwrap_err(),
        Status::INVALID_PARAMETER
    );
    assert_eq!(
        BufferPool::new(
            &sim,
            BufferPoolConfig::new(1, u32::MAX).with_context_size(u32::MAX)
        )
        .unwrap_err(),
        Status::INVALID_PARAMETER
    );
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(0, 8).with_look_aside(true)).unwrap();
    assert_eq!(pool.count(), 0);
    assert_eq!(pool.mode(), BufferPoolMode::Source);
    assert_eq!(pool.config().pool_type, PoolType::NonPagedPoolNx);
    drop(pool);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn get_is_fifo_and_put_at_head_is_lifo() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(4, 16)).unwrap();
    let bufs: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    let ids: Vec<usize> = bufs.iter().map(id).collect();
    assert_eq!(pool.get().unwrap_err(), Status::UNSUCCESSFUL);
    // put 0,1 at the tail, 2,3 at the head: list = 3 2 0 1
    let mut it = bufs.into_iter();
    pool.put(it.next().unwrap()).unwrap();
    it.next().unwrap().put_home().unwrap();
    pool.put_at_head(it.next().unwrap()).unwrap();
    it.next().unwrap().put_home_at_head().unwrap();
    let got: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    let order: Vec<usize> = got.iter().map(id).collect();
    assert_eq!(order, [ids[3], ids[2], ids[0], ids[1]]);
}

#[test]
fn order_survives_interleaving_of_head_and_tail_puts() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(3, 8)).unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    let c = pool.get().unwrap();
    let (ia, ib, ic) = (id(&a), id(&b), id(&c));
    drop(a); // [a]
    b.put_home_at_head().unwrap(); // [b a]
    drop(c); // [b a c]
    let x = pool.get().unwrap();
    let y = pool.get().unwrap();
    let z = pool.get().unwrap();
    assert_eq!((id(&x), id(&y), id(&z)), (ib, ia, ic));
}

#[test]
fn put_zeroes_data_and_context() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 32).with_context_size(8)).unwrap();
    let mut b = pool.get().unwrap();
    assert!(b.data().iter().all(|&x| x == 0) && b.context().iter().all(|&x| x == 0));
    b.data_mut().fill(0x5A);
    b.context_mut().fill(0xA5);
    let ptr = b.data_ptr();
    drop(b);
    let b = pool.get().unwrap();
    assert_eq!(b.data_ptr(), ptr, "data address is stable");
    assert_eq!(b.buffer_size(), 32);
    assert_eq!(b.context_size(), 8);
    assert!(b.data().iter().all(|&x| x == 0));
    assert!(b.context().iter().all(|&x| x == 0));
}

#[test]
fn look_aside_grows_on_empty_and_shrinks_back_on_put() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 16).with_look_aside(true)).unwrap();
    let allocs0 = sim.counters().allocations;
    let bufs: Vec<_> = (0..5).map(|_| pool.get().unwrap()).collect();
    assert_eq!(pool.buffers_allocated(), 5);
    assert_eq!(pool.buffers_in_use(), 5);
    assert_eq!(sim.counters().allocations, allocs0 + 3);
    drop(bufs);
    // Three puts freed the extras; the list holds buffer_count again.
    assert_eq!(pool.count(), 2);
    assert_eq!(pool.buffers_allocated(), 2);
    assert_eq!(sim.counters().allocations, allocs0);
    drop(pool);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn look_aside_allocation_failure_fails_get_and_leaks_nothing() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 16).with_look_aside(true)).unwrap();
    let first = pool.get().unwrap();
    sim.faults().set(FaultPoint::Allocation, FaultPlan::Always);
    assert_eq!(pool.get().unwrap_err(), Status::INSUFFICIENT_RESOURCES);
    sim.faults().set(FaultPoint::Allocation, FaultPlan::Never);
    let second = pool.get().unwrap();
    assert_eq!(pool.buffers_allocated(), 2);
    drop((first, second));
    assert_eq!((pool.count(), pool.buffers_allocated()), (1, 1));
    // A failed growth racing a put must not leave the pool below its count.
    let first = pool.get().unwrap();
    sim.faults().set(FaultPoint::Allocation, FaultPlan::Always);
    let failed = pool.get();
    drop(first);
    assert!(failed.is_err());
    sim.faults().set(FaultPoint::Allocation, FaultPlan::Never);
    assert_eq!((pool.count(), pool.buffers_allocated()), (1, 1));
    let again = pool.get().unwrap();
    assert_eq!(
        sim.counters().allocations,
        1,
        "the listed buffer was reused"
    );
    drop(again);
    drop(pool);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn open_failure_frees_what_was_allocated() {
    let sim = sim();
    sim.faults()
        .set(FaultPoint::Allocation, FaultPlan::EveryNth(3));
    let err = BufferPool::new(&sim, BufferPoolConfig::new(8, 16)).unwrap_err();
    assert_eq!(err, Status::INSUFFICIENT_RESOURCES);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    sim.faults().set(FaultPoint::Allocation, FaultPlan::Never);
    sim.faults()
        .set(FaultPoint::TimerCreation, FaultPlan::EveryNth(2));
    let err = BufferPool::new(&sim, BufferPoolConfig::new(8, 16).with_timers(true)).unwrap_err();
    assert!(err.is_error());
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn foreign_buffer_is_handed_back() {
    let sim = sim();
    let a = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    let b = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    let buf = a.get().unwrap();
    assert!(buf.is_from(&a) && !buf.is_from(&b));
    assert_eq!(b.parameters(&buf).unwrap_err(), Status::INVALID_PARAMETER);
    let err = b.put(buf).unwrap_err();
    assert_eq!(err.status(), Status::INVALID_PARAMETER);
    assert!(matches!(err, PutError::ForeignBuffer(_)));
    assert_eq!(b.count(), 1);
    let buf = err.into_buffer().unwrap();
    let p = a.parameters(&buf).unwrap();
    assert_eq!(
        (p.buffer_size, p.context_size, p.data),
        (8, 0, buf.data_ptr())
    );
    assert!(p.context.is_none());
    a.put(buf).unwrap();
    assert_eq!(a.count(), 1);
}

#[test]
fn data_overrun_is_detected_reported_counted_and_repaired() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 30).with_context_size(6)).unwrap();
    let mut b = pool.get().unwrap();
    let raw = b.raw_buffer();
    // A "device" writes one byte past the buffer it was given.
    // SAFETY: the guard byte lies inside the buffer's block, which we own.
    unsafe { raw.as_ptr().add(raw.len()).write(0xEE) };
    assert!(b.check_guards().unwrap_err().data);
    let err = pool.put(b).unwrap_err();
    assert_eq!(err.status(), Status::HEAP_CORRUPTION);
    match err {
        PutError::Overrun(o) => assert!(o.data && !o.context && !o.signature, "{o}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.overruns_detected(), 1);
    assert_eq!(pool.count(), 1, "the buffer still came home");
    let b = pool.get().unwrap();
    assert!(b.check_guards().is_ok(), "guards repaired");
    drop(b);
    assert_eq!(pool.overruns_detected(), 1);
}

#[test]
fn context_overrun_is_detected_on_drop_and_in_a_sink() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 16).with_context_size(3)).unwrap();
    let sink = SinkPool::new(&sim);
    let b = pool.get().unwrap();
    // SAFETY: one byte past the context is the context guard, inside the block.
    unsafe { b.context_ptr().as_ptr().add(3).write(0) };
    drop(b);
    assert_eq!(pool.overruns_detected(), 1);
    let b = pool.get().unwrap();
    // SAFETY: as above.
    unsafe { b.context_ptr().as_ptr().add(3).write(0) };
    let o = sink.put(b).unwrap_err();
    assert!(o.context && !o.data);
    assert_eq!(sink.overruns_detected(), 1);
    assert_eq!(sink.count(), 1);
    assert!(sink.get().unwrap().check_guards().is_ok());
}

#[test]
fn buffers_outlive_their_closed_pool() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(3, 64).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let mut held = pool.get().unwrap();
    sink.put(pool.get().unwrap()).unwrap();
    drop(pool);
    // The listed buffer was freed; the held and sunk ones are still valid.
    assert_eq!(sim.counters().allocations, 2);
    held.data_mut().fill(1);
    let from_sink = sink.get().unwrap();
    drop(held);
    // Buffers with timers coming home to a closed pool are freed by the
    // pool's reaper work item (their owner may be in any context).
    assert!(sim.wait_quiescent(std::time::Duration::from_secs(10)));
    assert_eq!(sim.counters().allocations, 1);
    drop(from_sink);
    drop(sink);
    assert!(sim.wait_quiescent(std::time::Duration::from_secs(10)));
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn into_raw_and_from_raw_round_trip() {
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    let mut b = pool.get().unwrap();
    b.data_mut()[0] = 9;
    let raw = b.into_raw();
    assert_eq!(pool.buffers_in_use(), 1);
    // SAFETY: `raw` came from `into_raw` and is used once.
    let b = unsafe { dmf_buffer_pool::PoolBuffer::<Sim>::from_raw(raw) };
    assert_eq!(b.data()[0], 9);
    drop(b);
    assert_eq!(pool.buffers_in_use(), 0);
}

#[test]
fn concurrent_get_put_with_close_racing_loses_nothing() {
    for round in 0..20 {
        let sim = Sim::default();
        let pool = BufferPool::new(
            &sim,
            BufferPoolConfig::new(8, 16).with_look_aside(round % 2 == 0),
        )
        .unwrap();
        let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
        let pool = std::sync::Arc::new(pool);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        if let Ok(mut b) = pool.get() {
                            b.data_mut()[0] = i as u8;
                            if i % 3 == 0 {
                                b.put_home_at_head().unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        // Release the held buffers while the pool is being closed.
        let releaser = std::thread::spawn(move || drop(held));
        for w in workers {
            w.join().unwrap();
        }
        drop(pool);
        releaser.join().unwrap();
        assert!(
            sim.counters().is_clean(),
            "round {round}: {}",
            sim.counters()
        );
    }
}

#[test]
fn pools_and_guards_cross_threads() {
    fn check<T: Send + Sync + 'static>() {}
    check::<BufferPool<Sim>>();
    check::<SinkPool<Sim>>();
    check::<dmf_buffer_pool::PoolBuffer<Sim>>();
    // A guard carried to another thread (as across a completion) goes home
    // from there.
    let sim = sim();
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    let mut b = pool.get().unwrap();
    b.data_mut()[0] = 3;
    std::thread::spawn(move || assert_eq!(b.data()[0], 3))
        .join()
        .unwrap();
    assert_eq!(pool.count(), 1);
}
