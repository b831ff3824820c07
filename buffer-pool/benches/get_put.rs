//! get+put throughput of a source [`BufferPool`] against a `Mutex<Vec<_>>`
//! pool and crossbeam's `ArrayQueue`, at 1 and 2 threads, measured in the
//! same run and printed as ratios.
//!
//! Run: `cargo bench -p dmf-buffer-pool --bench get_put` (add `-- --quick`
//! for a shorter run). Every variant takes a 32-byte buffer, writes one byte
//! and gives it back; the pool also zeroes data and an 8-byte context and
//! checks the guard bytes on every put, as DMF's put does.

// The baselines pool owned, separately allocated buffers, as a real pool does.
#![allow(clippy::vec_box)]

use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use dmf_buffer_pool::{BufferPool, BufferPoolConfig};
use dmf_sim::{Sim, SimConfig};

const BUFFERS: usize = 64;
const SIZE: usize = 32;

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

struct MutexVec(Mutex<Vec<Box<[u8; SIZE]>>>);
impl Flavour for MutexVec {
    fn run(&self, iterations: usize) {
        for i in 0..iterations {
            let mut b = self.0.lock().unwrap().pop().expect("pool never empty");
            b[0] = i as u8;
            black_box(&b);
            self.0.lock().unwrap().push(b);
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
/// median, not the best: on a loaded machine the best round is often one where
/// the threads happened not to overlap, hiding contention).
fn measure(flavour: Arc<dyn Flavour>, threads: usize, iterations: usize, rounds: usize) -> f64 {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let f = Arc::clone(&flavour);
                let b = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    b.wait();
                    let start = Instant::now();
                    f.run(iterations);
                    (start, Instant::now())
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let start = spans.iter().map(|s| s.0).min().unwrap();
        let end = spans.iter().map(|s| s.1).max().unwrap();
        times.push(end - start);
    }
    times.sort_unstable();
    let median: Duration = times[times.len() / 2];
    (threads * iterations) as f64 / median.as_secs_f64() / 1e6
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (iterations, rounds) = if quick { (200_000, 3) } else { (2_000_000, 7) };

    let sim = Sim::new(SimConfig::manual());
    let dmf: Arc<dyn Flavour> = Arc::new(Dmf(BufferPool::new(
        &sim,
        &BufferPoolConfig::new(BUFFERS as u32, SIZE as u32).with_context_size(8),
    )
    .unwrap()));
    let mutex: Arc<dyn Flavour> = Arc::new(MutexVec(Mutex::new(
        (0..BUFFERS).map(|_| Box::new([0u8; SIZE])).collect(),
    )));
    let queue = ArrayQueue::new(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = queue.push(Box::new([0u8; SIZE]));
    }
    let queue: Arc<dyn Flavour> = Arc::new(Queue(queue));

    println!("get+put pairs, {BUFFERS} buffers of {SIZE} bytes, median of {rounds} rounds of {iterations} pairs per thread");
    println!(
        "{:>7} | {:>14} | {:>14} | {:>14} | {:>13} | {:>16}",
        "threads",
        "BufferPool M/s",
        "Mutex<Vec> M/s",
        "ArrayQueue M/s",
        "pool / mutex",
        "ArrayQueue / pool"
    );
    for threads in [1usize, 2] {
        // Interleave the flavours so machine noise hits them alike.
        let (mut p, mut m, mut q) = (0f64, 0f64, 0f64);
        for _ in 0..2 {
            p += measure(Arc::clone(&dmf), threads, iterations, rounds) / 2.0;
            m += measure(Arc::clone(&mutex), threads, iterations, rounds) / 2.0;
            q += measure(Arc::clone(&queue), threads, iterations, rounds) / 2.0;
        }
        println!(
            "{threads:>7} | {p:>14.1} | {m:>14.1} | {q:>14.1} | {:>12.2}x | {:>15.2}x",
            p / m,
            q / p
        );
    }
    println!("targets: pool / mutex >= 3x under contention (2 threads); ArrayQueue / pool <= 1.3x");
}
