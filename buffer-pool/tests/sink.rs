//! Sink pool behaviour on the simulator's manual clock: order, expiry timers
//! and their callbacks, every enumeration disposition (with the fix "Reset-timer dispositions move the deadline"),
//! get stopping timers, close returning buffers home.

use std::sync::{Arc, Mutex};

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, BufferPoolMode, EnumerationDisposition as D, ExpiryCallback,
    PoolBuffer, PutError, SinkPool,
};
use dmf_sim::{Sim, SimConfig};
use dmf_wdf::Status;

struct Fixture {
    sim: Sim,
    source: BufferPool<Sim>,
    sink: SinkPool<Sim>,
    expired: Arc<Mutex<Vec<(u8, u64)>>>,
    on_expiry: Arc<dyn ExpiryCallback<Sim>>,
}

/// A source of `n` timed buffers whose first data byte is its tag, a sink, and
/// an expiry callback recording (tag, time) and sending the buffer home.
fn fixture(n: u32) -> Fixture {
    let sim = Sim::new(SimConfig::manual());
    let source = BufferPool::new(
        &sim,
        BufferPoolConfig::new(n, 8)
            .with_context_size(4)
            .with_timers(true),
    )
    .unwrap();
    let sink = SinkPool::new(&sim);
    let expired = Arc::new(Mutex::new(Vec::new()));
    let log = expired.clone();
    let clock = sim.clone();
    let on_expiry: Arc<dyn ExpiryCallback<Sim>> =
        Arc::new(move |_s: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
            log.lock().unwrap().push((b.data()[0], clock.now_ms()));
        });
    Fixture {
        sim,
        source,
        sink,
        expired,
        on_expiry,
    }
}

impl Fixture {
    fn tagged(&self, tag: u8) -> PoolBuffer<Sim> {
        let mut b = self.source.get().unwrap();
        b.data_mut()[0] = tag;
        b
    }
    fn timed(&self, tag: u8, ms: u64) {
        self.sink
            .put_with_timer(self.tagged(tag), ms, self.on_expiry.clone())
            .unwrap();
    }
    fn expired(&self) -> Vec<(u8, u64)> {
        self.expired.lock().unwrap().clone()
    }
    fn tags(&self) -> Vec<u8> {
        let mut tags = Vec::new();
        self.sink.enumerate(|e| {
            tags.push(e.data()[0]);
            D::ContinueEnumeration
        });
        tags
    }
    fn finish(self) {
        let Fixture {
            sim, source, sink, ..
        } = self;
        drop(sink);
        assert_eq!(
            source.count(),
            source.config().buffer_count as usize,
            "every buffer came home"
        );
        drop(source);
        sim.run_until_idle();
        assert!(sim.counters().is_clean(), "{}", sim.counters());
    }
}

#[test]
fn put_get_order_and_no_zeroing() {
    let f = fixture(4);
    assert_eq!(f.sink.mode(), BufferPoolMode::Sink);
    f.sink.put(f.tagged(1)).unwrap();
    f.sink.put(f.tagged(2)).unwrap();
    f.sink.put_at_head(f.tagged(3)).unwrap();
    f.tagged(4).into_sink(&f.sink).unwrap();
    assert_eq!(f.tags(), [3, 1, 2, 4]);
    assert_eq!(f.sink.count(), 4);
    let got: Vec<u8> = (0..4).map(|_| f.sink.get().unwrap().data()[0]).collect();
    assert_eq!(got, [3, 1, 2, 4]);
    assert_eq!(f.sink.get().unwrap_err(), Status::UNSUCCESSFUL);
    f.finish();
}

#[test]
fn put_with_timer_needs_a_timed_buffer() {
    let sim = Sim::new(SimConfig::manual());
    let untimed = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    let sink = SinkPool::new(&sim);
    let b = untimed.get().unwrap();
    assert!(!b.has_timer());
    let err = sink
        .put_with_timer(b, 5, Arc::new(|_: &SinkPool<Sim>, _b: PoolBuffer<Sim>| {}))
        .unwrap_err();
    assert_eq!(err.status(), Status::INVALID_DEVICE_REQUEST);
    assert!(matches!(err, PutError::NoTimer(_)));
    assert_eq!(sink.count(), 0);
    drop(err);
    assert_eq!(untimed.count(), 1);
}

#[test]
fn timers_expire_in_deadline_order_and_hand_the_buffer_over() {
    let f = fixture(4);
    f.timed(1, 30);
    f.timed(2, 10);
    f.timed(3, 0);
    f.sink.put(f.tagged(4)).unwrap();
    f.sim.advance(0);
    assert_eq!(f.expired(), [(3, 0)]);
    f.sim.advance(9);
    assert_eq!(f.expired().len(), 1);
    f.sim.advance(1);
    f.sim.advance(100);
    assert_eq!(f.expired(), [(3, 0), (2, 10), (1, 30)]);
    assert_eq!(f.tags(), [4]);
    assert_eq!(f.source.count(), 3);
    f.finish();
}

#[test]
fn callback_may_put_the_buffer_back_into_the_sink_with_a_new_timer() {
    let sim = Sim::new(SimConfig::manual());
    let source = BufferPool::new(&sim, BufferPoolConfig::new(1, 8).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let fired = Arc::new(Mutex::new(Vec::new()));
    struct Again {
        fired: Arc<Mutex<Vec<u64>>>,
        sim: Sim,
        me: Mutex<Option<Arc<dyn ExpiryCallback<Sim>>>>,
    }
    impl ExpiryCallback<Sim> for Again {
        fn expired(&self, sink: &SinkPool<Sim>, buffer: PoolBuffer<Sim>) {
            let mut fired = self.fired.lock().unwrap();
            fired.push(self.sim.now_ms());
            if fired.len() < 3 {
                let me = self.me.lock().unwrap().clone().unwrap();
                sink.put_with_timer(buffer, 7, me).unwrap();
            }
        }
    }
    let again = Arc::new(Again {
        fired: fired.clone(),
        sim: sim.clone(),
        me: Mutex::new(None),
    });
    *again.me.lock().unwrap() = Some(again.clone());
    sink.put_with_timer(source.get().unwrap(), 7, again.clone())
        .unwrap();
    sim.advance(100);
    assert_eq!(*fired.lock().unwrap(), [7, 14, 21]);
    assert_eq!((sink.count(), source.count()), (0, 1));
    again.me.lock().unwrap().take();
}

#[test]
fn get_stops_the_timer_of_the_buffer_it_takes() {
    let f = fixture(2);
    f.timed(1, 10);
    let b = f.sink.get().unwrap();
    assert_eq!(b.data()[0], 1);
    f.sim.advance(50);
    assert!(f.expired().is_empty());
    assert_eq!(f.sim.counters().armed_timers, 0);
    // The same buffer can be armed again afterwards.
    f.sink.put_with_timer(b, 5, f.on_expiry.clone()).unwrap();
    f.sim.advance(5);
    assert_eq!(f.expired(), [(1, 55)]);
    f.finish();
}

#[test]
fn continue_and_stop_keep_the_remaining_time() {
    let f = fixture(3);
    f.timed(1, 40);
    f.timed(2, 60);
    f.sink.put(f.tagged(3)).unwrap();
    f.sim.advance(15);
    let mut seen = Vec::new();
    assert!(f
        .sink
        .enumerate(|e| {
            seen.push((e.data()[0], e.remaining_ms()));
            D::ContinueEnumeration
        })
        .is_none());
    assert_eq!(seen, [(1, Some(25)), (2, Some(45)), (3, None)]);
    seen.clear();
    f.sink.enumerate(|e| {
        seen.push((e.data()[0], e.remaining_ms()));
        D::StopEnumeration
    });
    assert_eq!(seen, [(1, Some(25))]);
    f.sim.advance(25);
    assert_eq!(f.expired(), [(1, 40)]);
    f.sim.advance(20);
    assert_eq!(f.expired(), [(1, 40), (2, 60)]);
    f.finish();
}

#[test]
fn remove_and_stop_returns_the_buffer_with_its_timer_stopped() {
    let f = fixture(3);
    f.timed(1, 10);
    f.timed(2, 10);
    f.timed(3, 10);
    let mut visits = 0;
    let removed = f
        .sink
        .enumerate(|e| {
            visits += 1;
            if e.data()[0] == 2 {
                D::RemoveAndStopEnumeration
            } else {
                D::ContinueEnumeration
            }
        })
        .unwrap();
    assert_eq!((visits, removed.data()[0]), (2, 2));
    assert_eq!(f.tags(), [1, 3]);
    f.sim.advance(20);
    assert_eq!(f.expired(), [(1, 10), (3, 10)]);
    drop(removed);
    f.finish();
}

#[test]
fn stop_timer_dispositions_keep_the_buffer_without_expiry() {
    for (disposition, visits) in [
        (D::StopTimerAndStopEnumeration, 1),
        (D::StopTimerAndContinueEnumeration, 2),
    ] {
        let f = fixture(2);
        f.timed(1, 10);
        f.timed(2, 10);
        let mut n = 0;
        f.sink.enumerate(|_| {
            n += 1;
            disposition
        });
        assert_eq!(n, visits);
        f.sim.advance(100);
        assert_eq!(f.expired().len(), 2 - visits, "{disposition:?}");
        assert_eq!(f.sink.count(), visits);
        let mut remaining = Vec::new();
        f.sink.enumerate(|e| {
            remaining.push(e.remaining_ms());
            D::ContinueEnumeration
        });
        assert_eq!(remaining, vec![None; visits]);
        f.finish();
    }
}

#[test]
fn reset_restarts_the_full_duration_and_moves_the_deadline_b1() {
    for (disposition, visits) in [
        (D::ResetTimerAndStopEnumeration, 1),
        (D::ResetTimerAndContinueEnumeration, 2),
    ] {
        let f = fixture(2);
        f.timed(1, 50);
        f.timed(2, 50);
        f.sim.advance(40);
        f.sink.enumerate(|_| disposition);
        f.sim.advance(20); // t = 60: only non-reset buffers expired (at 50)
        assert_eq!(f.expired().len(), 2 - visits, "{disposition:?}");
        // A later Continue sees the remaining time from the *new*
        // deadline (90 - 60 = 30), not a stale one (which would be 0).
        let mut remaining = Vec::new();
        f.sink.enumerate(|e| {
            remaining.push(e.remaining_ms());
            D::ContinueEnumeration
        });
        assert_eq!(remaining, vec![Some(30); visits]);
        f.sim.advance(29);
        assert_eq!(f.expired().len(), 2 - visits);
        f.sim.advance(1);
        assert_eq!(f.expired().len(), 2);
        assert!(f.expired().iter().filter(|e| e.1 == 90).count() == visits);
        f.finish();
    }
}

#[test]
fn enumeration_can_write_the_buffers() {
    let f = fixture(2);
    f.sink.put(f.tagged(1)).unwrap();
    f.sink.enumerate(|e| {
        assert_eq!((e.buffer_size(), e.context_size()), (8, 4));
        assert!(e.is_from(&f.source) && e.check_guards().is_ok());
        e.data_mut()[1] = 0xAA;
        e.context_mut().copy_from_slice(b"abcd");
        D::ContinueEnumeration
    });
    let b = f.sink.get().unwrap();
    assert_eq!((b.data()[1], b.context()), (0xAA, &b"abcd"[..]));
    drop(b);
    f.finish();
}

#[test]
fn closing_a_sink_sends_its_buffers_home_and_disarms_timers() {
    let f = fixture(4);
    f.timed(1, 10);
    f.timed(2, 20);
    f.sink.put(f.tagged(3)).unwrap();
    let clone = f.sink.clone();
    assert!(clone.same_sink(&f.sink));
    drop(clone);
    assert_eq!(f.source.count(), 1);
    let Fixture {
        sim,
        source,
        sink,
        expired,
        ..
    } = f;
    drop(sink);
    assert_eq!(source.count(), 4);
    assert_eq!(sim.counters().armed_timers, 0);
    sim.advance(100);
    assert!(expired.lock().unwrap().is_empty());
    drop(source);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn the_last_sink_handle_may_be_dropped_by_an_expiry_callback() {
    let sim = Sim::new(SimConfig::manual());
    let source = BufferPool::new(&sim, BufferPoolConfig::new(2, 8).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let slot: Arc<Mutex<Option<SinkPool<Sim>>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let on_expiry = Arc::new(move |_: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
        drop(b);
        s.lock().unwrap().take(); // drops a handle while the handler holds one
    });
    sink.put_with_timer(source.get().unwrap(), 5, on_expiry.clone())
        .unwrap();
    sink.put_with_timer(source.get().unwrap(), 50, on_expiry)
        .unwrap();
    *slot.lock().unwrap() = Some(sink);
    sim.advance(10);
    // The sink closed when the handler released the last handle; the other
    // buffer went home without its callback.
    assert_eq!(source.count(), 2);
    sim.advance(100);
    drop(source);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn real_clock_timers_and_gets_race_without_loss() {
    let sim = Sim::default();
    let source = BufferPool::new(&sim, BufferPoolConfig::new(64, 8).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let on_expiry: Arc<dyn ExpiryCallback<Sim>> =
        Arc::new(|_: &SinkPool<Sim>, b: PoolBuffer<Sim>| drop(b));
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(400);
    let mut gets = 0u64;
    while std::time::Instant::now() < deadline {
        while let Ok(b) = source.get() {
            sink.put_with_timer(b, gets % 3, on_expiry.clone()).unwrap();
        }
        if let Ok(b) = sink.get() {
            gets += 1;
            drop(b);
        }
        if gets % 7 == 0 {
            sink.enumerate(|_| D::ResetTimerAndContinueEnumeration);
        }
    }
    // A timer handler running now may hold the last handle for a moment.
    drop(sink);
    assert!(sim.wait_quiescent(std::time::Duration::from_secs(5)));
    assert_eq!(source.count(), 64);
    assert!(gets > 0);
    drop(source);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}
