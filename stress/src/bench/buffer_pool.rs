//! get+put throughput of a source [`BufferPool`] against a `Mutex<Vec<_>>`
//! pool and crossbeam's `ArrayQueue`, at 1 and 2 threads (the layer's benchmark).
//!
//! Every variant takes a 32-byte buffer, writes one byte and gives it back;
//! the pool also zeroes the data and an 8-byte context and checks the guard
//! bytes on every put, as DMF's put does. Each figure is the mean of two
//! interleaved passes (machine noise hits the flavours alike) of the median
//! of several rounds.

use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dmf_buffer_pool::{BufferPool, BufferPoolConfig};
use dmf_sim::{Sim, SimConfig};

use super::{BenchOptions, Progress};

const BUFFERS: usize = 64;
const SIZE: usize = 32;

/// One row of the buffer-pool table: million get+put pairs per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolRow {
    /// Threads doing get+put at once.
    pub threads: usize,
    /// `dmf_buffer_pool::BufferPool`.
    pub pool_mops: f64,
    /// `Mutex<Vec<Box<[u8; 32]>>>`.
    pub mutex_mops: f64,
    /// `crossbeam_queue::ArrayQueue<Box<[u8; 32]>>`.
    pub queue_mops: f64,
}

impl PoolRow {
    /// BufferPool throughput / `Mutex<Vec>` throughput.
    pub fn pool_over_mutex(&self) -> f64 {
        self.pool_mops / self.mutex_mops
    }
    /// BufferPool throughput / `ArrayQueue` throughput.
    pub fn pool_over_queue(&self) -> f64 {
        self.pool_mops / self.queue_mops
    }
}

/// One pool flavour: `run(iterations)` does that many get+put pairs.
trait Flavour: Send + Sync {
    fn run(&self, iterations: usize);
}

struct Dmf(BufferPool<Sim>);
impl Flavour for Dmf {
    fn run(&self, iterations: usize) {
        for i in 0..iterations {
            let mut b = self.0.get().expect("pool never empty");
            b.data_mut()[0] = i as u8;
            black_box(&b);
            drop(b);
        }
    }
}

// Boxed on purpose: the baseline hands out pointers to separate buffers,
// as the pool does (moving 32-byte arrays would measure something else).
#[allow(clippy::vec_box)]
struct MutexVec(Mutex<Vec<Box<[u8; SIZE]>>>);
impl Flavour for MutexVec {
    fn run(&self, iterations: usize) {
        for i in 0..iterations {
            let mut b = self
                .0
                .lock()
                .expect("not poisoned")
                .pop()
                .expect("pool never empty");
            b[0] = i as u8;
            black_box(&b);
            self.0.lock().expect("not poisoned").push(b);
        }
    }
}

struct Queue(ArrayQueue<Box<[u8; SIZE]>>);
impl Flavour for Queue {
    fn run(&self, iterations: usize) {
        for i in 0..iterations {
            let mut b = self.0.pop().expect("pool never empty");
            b[0] = i as u8;
            black_box(&b);
            let _ = self.0.push(b);
        }
    }
}

/// Median-of-`rounds` throughput in million get+put pairs per second (the
/// median, not the best: on a loaded machine the best round is often one
/// where the threads happened not to overlap, hiding contention).
fn measure(flavour: &Arc<dyn Flavour>, threads: usize, iterations: usize, rounds: usize) -> f64 {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let f = Arc::clone(flavour);
                let b = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    b.wait();
                    let start = Instant::now();
                    f.run(iterations);
                    (start, Instant::now())
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> = handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect();
        let start = spans.iter().map(|s| s.0).min().expect("threads > 0");
        let end = spans.iter().map(|s| s.1).max().expect("threads > 0");
        times.push(end - start);
    }
    times.sort_unstable();
    let median: Duration = times[times.len() / 2];
    (threads * iterations) as f64 / median.as_secs_f64().max(1e-9) / 1e6
}

/// Runs the buffer-pool comparison at 1 and 2 threads.
pub fn run(options: &BenchOptions, progress: &mut dyn Progress) -> Vec<PoolRow> {
    let (iterations, rounds) = if options.quick {
        (200_000, 3)
    } else {
        (2_000_000, 5)
    };
    let sim = Sim::new(SimConfig::manual());
    let dmf: Arc<dyn Flavour> = Arc::new(Dmf(BufferPool::new(
        &sim,
        BufferPoolConfig::new(BUFFERS as u32, SIZE as u32).with_context_size(8),
    )
    .expect("pool")));
    let mutex: Arc<dyn Flavour> = Arc::new(MutexVec(Mutex::new(
        (0..BUFFERS).map(|_| Box::new([0u8; SIZE])).collect(),
    )));
    let queue = ArrayQueue::new(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = queue.push(Box::new([0u8; SIZE]));
    }
    let queue: Arc<dyn Flavour> = Arc::new(Queue(queue));

    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        progress.step(&format!(
            "buffer-pool: {threads} thread(s), median of {rounds} rounds of {iterations} get+put pairs, 2 interleaved passes"
        ));
        let (mut p, mut m, mut q) = (0f64, 0f64, 0f64);
        for _ in 0..2 {
            p += measure(&dmf, threads, iterations, rounds) / 2.0;
            m += measure(&mutex, threads, iterations, rounds) / 2.0;
            q += measure(&queue, threads, iterations, rounds) / 2.0;
        }
        rows.push(PoolRow {
            threads,
            pool_mops: p,
            mutex_mops: m,
            queue_mops: q,
        });
    }
    drop(dmf);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    rows
}
