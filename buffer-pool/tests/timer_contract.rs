//! The seam's timer contract: a timer is deleted only at passive level and
//! never from its own handler. Buffers with timers can come home (and have to
//! be freed) anywhere, so the pool must defer those deletions; the simulator
//! panics where KMDF would deadlock or break into the verifier.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmf_buffer_pool::{BufferPool, BufferPoolConfig, ExpiryCallback, PoolBuffer, SinkPool};
use dmf_sim::{Sim, SimConfig};
use dmf_wdf::{Lock, Platform};

fn settle(sim: &Sim) {
    sim.run_until_idle();
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    assert!(sim.take_callback_panics().is_empty());
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn an_expiry_callback_freeing_its_buffer_does_not_delete_the_timer_from_its_handler() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 8).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let on_expiry: Arc<dyn ExpiryCallback<Sim>> =
        Arc::new(|_: &SinkPool<Sim>, b: PoolBuffer<Sim>| drop(b));
    sink.put_with_timer(pool.get().unwrap(), 5, on_expiry)
        .unwrap();
    // The pool closes while its buffer waits in the sink: when the buffer
    // expires, its callback sends it home to the closed pool, which frees it
    // inside the buffer's own timer handler.
    drop(pool);
    sim.advance(5);
    assert_eq!(sink.count(), 0);
    drop(sink);
    settle(&sim);
}

#[test]
fn a_buffer_with_a_timer_freed_in_dispatch_context_does_not_wait_there() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 8).with_timers(true)).unwrap();
    let buffer = pool.get().unwrap();
    drop(pool);
    // A completion routine (here: a spin lock held) drops the last buffer of
    // a closed pool.
    let lock = <Sim as Platform>::Lock::new(());
    let held = lock.lock();
    drop(buffer);
    drop(held);
    settle(&sim);
}

#[test]
fn look_aside_shrinking_in_dispatch_context_defers_the_timer_deletion() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(
        &sim,
        BufferPoolConfig::new(1, 8)
            .with_timers(true)
            .with_look_aside(true),
    )
    .unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap(); // grown by look-aside
    assert_eq!(pool.buffers_allocated(), 2);
    let lock = <Sim as Platform>::Lock::new(());
    let held = lock.lock();
    drop(a); // one of the two puts frees a buffer: the pool shrinks back
    drop(b);
    drop(held);
    assert_eq!(pool.buffers_allocated(), 1, "counted off at once");
    assert_eq!(pool.count(), 1);
    drop(pool);
    settle(&sim);
}

#[test]
fn an_expiry_callback_that_drops_the_pool_after_sending_its_buffer_home() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 8).with_timers(true)).unwrap();
    let slot: Arc<Mutex<Option<BufferPool<Sim>>>> = Arc::new(Mutex::new(None));
    let s = Arc::clone(&slot);
    let on_expiry: Arc<dyn ExpiryCallback<Sim>> =
        Arc::new(move |_: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
            drop(b); // listed at home again...
            drop(s.lock().unwrap().take()); // ...and the pool closes here
        });
    let sink = SinkPool::new(&sim);
    sink.put_with_timer(pool.get().unwrap(), 5, on_expiry)
        .unwrap();
    *slot.lock().unwrap() = Some(pool);
    sim.advance(5);
    assert!(slot.lock().unwrap().is_none());
    drop(sink);
    settle(&sim);
}

#[test]
fn creating_the_reaper_can_fail_cleanly() {
    let sim = Sim::new(SimConfig::manual());
    sim.faults().set(
        dmf_sim::FaultPoint::WorkItemCreation,
        dmf_sim::FaultPlan::Next(1),
    );
    let err = BufferPool::new(&sim, BufferPoolConfig::new(2, 8).with_timers(true)).unwrap_err();
    assert_eq!(err, dmf_wdf::Status::INSUFFICIENT_RESOURCES);
    // Without timers no work item is needed.
    sim.faults().set(
        dmf_sim::FaultPoint::WorkItemCreation,
        dmf_sim::FaultPlan::Next(1),
    );
    drop(BufferPool::new(&sim, BufferPoolConfig::new(2, 8)).unwrap());
    settle(&sim);
}

#[test]
fn a_refused_reaper_is_retried() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 8).with_timers(true)).unwrap();
    let buffer = pool.get().unwrap();
    drop(pool);
    // The first few enqueues are refused; the release retries.
    sim.faults().set(
        dmf_sim::FaultPoint::WorkItemEnqueue,
        dmf_sim::FaultPlan::Next(3),
    );
    drop(buffer);
    settle(&sim);
}
