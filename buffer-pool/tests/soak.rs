//! The DMF BufferPool soak (`Dmf_Tests_BufferPool.c`): BP-1
//! acquire into the sink, BP-2 return from the sink, BP-3 enumerate with a
//! random disposition, BP-4 count bound, BP-5 expiry callback, each buffer
//! validated (BP-V: sizes and address through `parameters` on the source,
//! signature, CRC-16). Run deterministically on the simulator's manual clock
//! (two logical workers interleaved from a seed, timers fired by advancing
//! the clock) and with two real threads on the real clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, EnumerationDisposition, ExpiryCallback, PoolBuffer, SinkPool,
};
use dmf_sim::{Sim, SimConfig, SplitMix64};

const BUFFER_SIZE: usize = 32;
const CONTEXT_SIZE: usize = 8;
const PREALLOCATED: u32 = 16;
const SINK_LIMIT: usize = 24;
const THREADS: usize = 2;
const SIGNATURE: [u8; 4] = *b"GISB";

/// CRC-16/CCITT-FALSE.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[derive(Default)]
struct Stats {
    acquired: AtomicU64,
    returned: AtomicU64,
    sink_empty: AtomicU64,
    sink_full: AtomicU64,
    enumerations: [AtomicU64; 7],
    visited: AtomicU64,
    removed: AtomicU64,
    expired: AtomicU64,
    counted: AtomicU64,
    failures: AtomicU64,
}

impl Stats {
    fn snapshot(&self) -> Vec<u64> {
        let mut v = vec![
            self.acquired.load(Ordering::SeqCst),
            self.returned.load(Ordering::SeqCst),
            self.sink_empty.load(Ordering::SeqCst),
            self.sink_full.load(Ordering::SeqCst),
            self.visited.load(Ordering::SeqCst),
            self.removed.load(Ordering::SeqCst),
            self.expired.load(Ordering::SeqCst),
            self.counted.load(Ordering::SeqCst),
            self.failures.load(Ordering::SeqCst),
        ];
        v.extend(self.enumerations.iter().map(|a| a.load(Ordering::SeqCst)));
        v
    }
}

struct Soak {
    sim: Sim,
    source: BufferPool<Sim>,
    sink: SinkPool<Sim>,
    stats: Arc<Stats>,
    on_expiry: Arc<dyn ExpiryCallback<Sim>>,
}

/// BP-V on a buffer's bytes.
fn valid_bytes(data: &[u8], context: &[u8]) -> bool {
    data.len() == BUFFER_SIZE
        && context.len() == CONTEXT_SIZE
        && context[..4] == SIGNATURE
        && u16::from_le_bytes([context[4], context[5]]) == crc16(data)
}

/// BP-V on a guard, including `parameters` on the source.
fn validate(source: &BufferPool<Sim>, b: &PoolBuffer<Sim>) -> bool {
    let Ok(p) = source.parameters(b) else {
        return false;
    };
    p.buffer_size == BUFFER_SIZE
        && p.context_size == CONTEXT_SIZE
        && p.data == b.data_ptr()
        && p.context == Some(b.context_ptr())
        && b.check_guards().is_ok()
        && valid_bytes(b.data(), b.context())
}

impl Soak {
    fn new(sim: Sim) -> Arc<Soak> {
        let source = BufferPool::new(
            &sim,
            BufferPoolConfig::new(PREALLOCATED, BUFFER_SIZE as u32)
                .with_context_size(CONTEXT_SIZE as u32)
                .with_timers(true)
                .with_look_aside(true),
        )
        .unwrap();
        Arc::new_cyclic(|weak: &std::sync::Weak<Soak>| {
            let stats = Arc::new(Stats::default());
            let w = weak.clone();
            let s = stats.clone();
            // BP-5: validate and put back to the source.
            let on_expiry: Arc<dyn ExpiryCallback<Sim>> =
                Arc::new(move |_sink: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
                    s.expired.fetch_add(1, Ordering::SeqCst);
                    let ok = w.upgrade().is_some_and(|soak| validate(&soak.source, &b));
                    if !ok {
                        s.failures.fetch_add(1, Ordering::SeqCst);
                    }
                    if b.put_home().is_err() {
                        s.failures.fetch_add(1, Ordering::SeqCst);
                    }
                });
            Soak {
                sink: SinkPool::new(&sim),
                sim,
                source,
                stats,
                on_expiry,
            }
        })
    }

    fn fail(&self) {
        self.stats.failures.fetch_add(1, Ordering::SeqCst);
    }

    /// One iteration of a worker: one of the four actions, uniformly (as
    /// DMF), or, for a `filler` worker, BP-1 half of the time (so that the
    /// sink reaches its limit and buffers stay long enough for timers).
    fn step(&self, rng: &mut SplitMix64, filler: bool) {
        let action = if filler && rng.range_inclusive(0, 1) == 0 {
            1
        } else {
            rng.range_inclusive(1, 4)
        };
        match action {
            1 => self.acquire(rng),
            2 => self.give_back(rng),
            3 => self.enumerate(rng),
            _ => {
                self.stats.counted.fetch_add(1, Ordering::SeqCst);
                if self.sink.count() > SINK_LIMIT + THREADS {
                    self.fail();
                }
            }
        }
    }

    /// BP-1.
    fn acquire(&self, rng: &mut SplitMix64) {
        if self.sink.count() >= SINK_LIMIT {
            self.stats.sink_full.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let Ok(mut b) = self.source.get() else {
            self.fail();
            return;
        };
        // The getter variants: plain, "with memory", "with descriptor".
        match rng.range_inclusive(0, 2) {
            0 => {}
            1 => {
                let raw = b.raw_buffer();
                if raw.as_ptr() != b.data_ptr().as_ptr() || raw.len() != BUFFER_SIZE {
                    self.fail();
                }
            }
            _ => {
                let p = self.source.parameters(&b).unwrap();
                if p.data != b.data_ptr() {
                    self.fail();
                }
            }
        }
        if b.data().iter().any(|&x| x != 0) || b.context().iter().any(|&x| x != 0) {
            self.fail(); // a source hands out zeroed buffers
        }
        let start = rng.next_u64() as u8;
        let (data, context) = b.split_mut();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = start.wrapping_add(i as u8);
        }
        let crc = crc16(data);
        context[..4].copy_from_slice(&SIGNATURE);
        context[4..6].copy_from_slice(&crc.to_le_bytes());
        if !validate(&self.source, &b) {
            self.fail();
        }
        self.stats.acquired.fetch_add(1, Ordering::SeqCst);
        let put = match rng.range_inclusive(0, 2) {
            0 => self.sink.put(b).is_ok(),
            1 => self.sink.put_at_head(b).is_ok(),
            _ => {
                let ms = rng.range_inclusive(1, 100);
                self.sink
                    .put_with_timer(b, ms, self.on_expiry.clone())
                    .is_ok()
            }
        };
        if !put {
            self.fail();
        }
    }

    /// BP-2.
    fn give_back(&self, rng: &mut SplitMix64) {
        let Ok(b) = self.sink.get() else {
            self.stats.sink_empty.fetch_add(1, Ordering::SeqCst);
            return;
        };
        if !validate(&self.source, &b) {
            self.fail();
        }
        self.stats.returned.fetch_add(1, Ordering::SeqCst);
        let ok = match rng.range_inclusive(0, 2) {
            0 => self.source.put(b).is_ok(),
            1 => self.source.put_at_head(b).is_ok(),
            _ => {
                drop(b);
                true
            }
        };
        if !ok {
            self.fail();
        }
    }

    /// BP-3.
    fn enumerate(&self, rng: &mut SplitMix64) {
        let index = rng.range_inclusive(0, 6) as usize;
        let disposition = EnumerationDisposition::ALL[index];
        self.stats.enumerations[index].fetch_add(1, Ordering::SeqCst);
        let stats = &self.stats;
        let source = &self.source;
        let removed = self.sink.enumerate(|e| {
            stats.visited.fetch_add(1, Ordering::SeqCst);
            if !(e.is_from(source)
                && e.check_guards().is_ok()
                && valid_bytes(e.data(), e.context()))
            {
                stats.failures.fetch_add(1, Ordering::SeqCst);
            }
            disposition
        });
        if let Some(b) = removed {
            if disposition != EnumerationDisposition::RemoveAndStopEnumeration
                || !validate(&self.source, &b)
            {
                self.fail();
            }
            self.stats.removed.fetch_add(1, Ordering::SeqCst);
            drop(b);
        }
    }

    /// Closes the sink and checks that every buffer is home, the look-aside
    /// extras are freed and nothing leaked.
    fn finish(soak: Arc<Soak>) -> Vec<u64> {
        let soak = Arc::try_unwrap(soak).ok().expect("workers done");
        let Soak {
            sim,
            source,
            sink,
            stats,
            on_expiry,
        } = soak;
        drop(sink);
        drop(on_expiry);
        if sim.clock_mode() == dmf_sim::ClockMode::Real {
            assert!(sim.wait_quiescent(Duration::from_secs(10)));
        }
        assert_eq!(
            source.count(),
            PREALLOCATED as usize,
            "every buffer is home"
        );
        assert_eq!(
            source.buffers_allocated(),
            PREALLOCATED as usize,
            "look-aside shrank back"
        );
        assert_eq!(source.overruns_detected(), 0);
        drop(source);
        if sim.clock_mode() == dmf_sim::ClockMode::Manual {
            sim.run_until_idle();
        }
        // Buffers with timers that look-aside freed go through the pool's
        // reaper work item.
        assert!(sim.wait_quiescent(Duration::from_secs(10)));
        assert!(sim.counters().is_clean(), "{}", sim.counters());
        assert_eq!(
            stats.failures.load(Ordering::SeqCst),
            0,
            "validation failures"
        );
        stats.snapshot()
    }
}

/// Two logical workers interleaved from `seed`; the clock advances 0..=3 ms
/// between steps so that timers (1..100 ms) fire in between (BP-5). With
/// `filler`, worker 0 favours BP-1.
fn run_manual(seed: u64, steps: usize, filler: bool) -> Vec<u64> {
    let sim = Sim::new(SimConfig::manual().with_seed(seed));
    let soak = Soak::new(sim.clone());
    let mut scheduler = SplitMix64::derive(seed, 0);
    let mut workers: Vec<SplitMix64> = (1..=THREADS as u64)
        .map(|i| SplitMix64::derive(seed, i))
        .collect();
    for _ in 0..steps {
        let w = scheduler.range_inclusive(0, THREADS as u64 - 1) as usize;
        soak.step(&mut workers[w], filler && w == 0);
        soak.sim.advance(scheduler.range_inclusive(0, 3));
    }
    let stats = &soak.stats;
    assert!(stats.acquired.load(Ordering::SeqCst) > 100);
    assert!(stats.returned.load(Ordering::SeqCst) > 10);
    assert!(stats.expired.load(Ordering::SeqCst) > 10, "timers fired");
    assert!(
        stats.removed.load(Ordering::SeqCst) > 0,
        "RemoveAndStop removed buffers"
    );
    if filler {
        assert!(
            stats.sink_full.load(Ordering::SeqCst) > 0,
            "the sink limit was reached"
        );
    }
    assert!(stats
        .enumerations
        .iter()
        .all(|e| e.load(Ordering::SeqCst) > 0));
    drop(sim);
    Soak::finish(soak)
}

#[test]
fn soak_on_the_manual_clock_is_deterministic_and_loses_nothing() {
    for (seed, filler) in [
        (1u64, false),
        (0xD3F, true),
        (0xB0F_FE25, false),
        (42, true),
    ] {
        let first = run_manual(seed, 6_000, filler);
        let second = run_manual(seed, 6_000, filler);
        assert_eq!(first, second, "seed {seed:#x}: the run is reproducible");
    }
}

#[test]
fn soak_with_two_real_threads() {
    let sim = Sim::new(SimConfig::default().with_seed(7));
    let soak = Soak::new(sim.clone());
    let deadline = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..THREADS as u64)
        .map(|i| {
            let soak = soak.clone();
            std::thread::spawn(move || {
                let mut rng = SplitMix64::derive(0x50A4, i);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    soak.step(&mut rng, i == 0);
                    // Pace the workers so that buffers stay in the sink for
                    // milliseconds and the 1..100 ms timers get to fire.
                    std::thread::sleep(Duration::from_micros(100));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let iterations: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(iterations > 1_000, "{iterations}");
    eprintln!("iterations {iterations}, stats {:?}", soak.stats.snapshot());
    assert!(
        soak.stats.expired.load(Ordering::SeqCst) > 0,
        "timers fired"
    );
    assert!(
        soak.stats.sink_full.load(Ordering::SeqCst) > 0,
        "the sink limit was reached"
    );
    drop(sim);
    let stats = Soak::finish(soak);
    assert_eq!(stats[8], 0);
}
