//! Streamed completions per second of a [`ContinuousRequestTarget`] at queue
//! depth 1, 8 and 64, against the raw simulated target driven with no
//! framework (the ceiling), measured in the same run and printed as ratios.
//!
//! Run: `cargo bench -p dmf-continuous-request-target --bench streaming`
//! (add `-- --quick` for a shorter run, `-- --depth N` for one depth,
//! `-- --only raw|crt` for one side; `DMF_BENCH_COMPLETION_THREADS=1` makes
//! the simulator deliver every completion on one thread, which isolates the
//! CRT's CPU cost from thread hand-off effects).
//!
//! Both sides stream IOCTLs with a 64-byte output buffer to the same kind of
//! simulated device (completes at once, zero added latency, two completion
//! threads). The raw side keeps `depth` requests in flight by re-initialising,
//! formatting and re-sending each request from its completion routine. The
//! CRT side does the same through the framework: output buffer from the pool,
//! the client's output callback (reads the data, `ModuleOwnsAndContinue`),
//! buffer back to the pool, resend. Each measurement is the median of
//! several alternating windows, so drift on a shared machine hits both.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, StreamClient,
    StreamCompletion,
};
use dmf_sim::{DeviceSpec, FixedResponseDevice, Latency, Sim, SimConfig, SimIoTarget, SimRequest};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenMode, OpenParams, Platform, RawBuffer, Request,
    RequestType, SendOptions, ShareAccess, Status, TargetEvents,
};

const IOCTL: u32 = 0x0022_2000;
const OUTPUT: usize = 64;

struct NoEvents;
impl TargetEvents for NoEvents {
    fn query_remove(&self) -> Status {
        Status::SUCCESS
    }
    fn remove_canceled(&self) {}
    fn remove_complete(&self) {}
}

fn setup() -> (Sim, Arc<SimIoTarget>) {
    // `DMF_BENCH_COMPLETION_THREADS` overrides the simulator's 2 completion
    // threads (the "DPCs"), to see how delivery threading shapes the figures.
    let threads = std::env::var("DMF_BENCH_COMPLETION_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let sim = Sim::new(
        SimConfig::default()
            .with_latency(Latency::ZERO)
            .with_completion_threads(threads),
    );
    let device = FixedResponseDevice::new(Status::SUCCESS, None).with_fill(0x5A);
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("bench", Arc::new(device)))
        .unwrap();
    let link = sim.bus().device_link(id).unwrap();
    let target = sim.create_io_target().unwrap();
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoEvents),
        )
        .unwrap();
    (sim, Arc::new(target))
}

// ----------------------------------------------------------------------
// raw: no framework
// ----------------------------------------------------------------------

/// One raw stream: a request and its buffer, resent from its completion.
struct RawStream {
    target: Arc<SimIoTarget>,
    request: SimRequest,
    /// The memory `raw` points into (kept alive, never touched directly).
    _buffer: Box<[u8; OUTPUT]>,
    raw: RawBuffer,
    running: Arc<AtomicBool>,
    completions: Arc<AtomicU64>,
    /// Set when the stream stopped resending.
    stopped: AtomicBool,
    me: Mutex<Option<Arc<RawStream>>>,
}

impl RawStream {
    fn send(self: &Arc<Self>) {
        self.request.reuse().unwrap();
        // SAFETY: `_buffer` lives in the stream, which outlives every send
        // (the stream is only released after it stopped resending).
        unsafe {
            self.target
                .format_request(
                    &self.request,
                    RequestType::Ioctl,
                    IOCTL,
                    None,
                    Some(self.raw),
                )
                .unwrap();
        }
        self.target
            .send(&self.request, SendOptions::default(), Arc::clone(self))
            .unwrap();
    }
}

impl CompletionRoutine for RawStream {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(c.status.is_success());
        // Read the data, as the CRT client does.
        // SAFETY: the request completed; nobody else touches the buffer now.
        let first = unsafe { self.raw.as_slice()[0] };
        std::hint::black_box(first);
        self.completions.fetch_add(1, Ordering::Relaxed);
        if self.running.load(Ordering::Relaxed) {
            self.send();
        } else {
            self.stopped.store(true, Ordering::Release);
        }
    }
}

struct Raw {
    streams: Vec<Arc<RawStream>>,
    running: Arc<AtomicBool>,
    completions: Arc<AtomicU64>,
}

impl Raw {
    fn new(sim: &Sim, target: &Arc<SimIoTarget>, depth: usize) -> Self {
        let running = Arc::new(AtomicBool::new(false));
        let completions = Arc::new(AtomicU64::new(0));
        let streams = (0..depth)
            .map(|_| {
                let mut buffer = Box::new([0u8; OUTPUT]);
                let raw = RawBuffer::from_mut_slice(&mut buffer[..]);
                let s = Arc::new(RawStream {
                    target: Arc::clone(target),
                    request: sim.create_request(Some(target)).unwrap(),
                    _buffer: buffer,
                    raw,
                    running: Arc::clone(&running),
                    completions: Arc::clone(&completions),
                    stopped: AtomicBool::new(true),
                    me: Mutex::new(None),
                });
                *s.me.lock().unwrap() = Some(Arc::clone(&s));
                s
            })
            .collect();
        Raw {
            streams,
            running,
            completions,
        }
    }

    fn start(&self) {
        self.running.store(true, Ordering::SeqCst);
        for s in &self.streams {
            s.stopped.store(false, Ordering::SeqCst);
            s.send();
        }
    }

    fn stop(&self) {
        self.running.store(false, Ordering::SeqCst);
        for s in &self.streams {
            while !s.stopped.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
    }

    fn completions(&self) -> u64 {
        self.completions.load(Ordering::Relaxed)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        for s in &self.streams {
            s.me.lock().unwrap().take();
        }
    }
}

// ----------------------------------------------------------------------
// CRT
// ----------------------------------------------------------------------

struct Counter(AtomicU64);

impl StreamClient<Sim> for Counter {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        assert!(c.status.is_success());
        std::hint::black_box(c.data().first().copied());
        self.0.fetch_add(1, Ordering::Relaxed);
        c.module_owns_and_continue()
    }
}

fn crt(sim: &Sim, target: &Arc<SimIoTarget>, depth: u32) -> ContinuousRequestTarget<Sim, Counter> {
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: depth,
        buffer_count_output: depth,
        buffer_output_size: OUTPUT as u32,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL,
        ..Default::default()
    };
    let crt =
        ContinuousRequestTarget::new(sim.clone(), config, Counter(AtomicU64::new(0))).unwrap();
    crt.io_target_set(Arc::clone(target)).unwrap();
    crt
}

// ----------------------------------------------------------------------
// measurement
// ----------------------------------------------------------------------

/// Completions per second over `window` (after a short warm-up).
fn rate(start: impl Fn(), stop: impl Fn(), count: impl Fn() -> u64, window: Duration) -> f64 {
    start();
    std::thread::sleep(window / 5);
    let (c0, t0) = (count(), Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (count(), Instant::now());
    stop();
    (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (window, rounds) = if quick {
        (Duration::from_millis(150), 3)
    } else {
        (Duration::from_millis(400), 5)
    };
    // `--depth N` measures one depth only; `--only raw|crt` one side only
    // (for profiling).
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let depths: Vec<usize> = match arg("--depth") {
        Some(d) => vec![d.parse().expect("--depth N")],
        None => vec![1, 8, 64],
    };
    let only = arg("--only");
    let run_raw = only.as_deref() != Some("crt");
    let run_crt = only.as_deref() != Some("raw");
    println!("CRT streaming vs raw sim target (completions/s, median of {rounds} alternating windows of {window:?})");
    println!(
        "{:>6} {:>14} {:>14} {:>8}",
        "depth", "raw", "crt", "crt/raw"
    );
    for depth in depths {
        let (sim, target) = setup();
        let raw = Raw::new(&sim, &target, depth);
        let crt = crt(&sim, &target, depth as u32);
        let mut raw_rates = Vec::new();
        let mut crt_rates = Vec::new();
        for _ in 0..rounds {
            if run_raw {
                raw_rates.push(rate(
                    || raw.start(),
                    || raw.stop(),
                    || raw.completions(),
                    window,
                ));
            }
            if run_crt {
                crt_rates.push(rate(
                    || crt.start().unwrap(),
                    || crt.stop(),
                    || crt.client().0.load(Ordering::Relaxed),
                    window,
                ));
            }
        }
        let m = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { median(v) };
        let (r, c) = (m(raw_rates), m(crt_rates));
        println!("{depth:>6} {r:>14.0} {c:>14.0} {:>8.2}", c / r);
        drop(crt);
        drop(raw);
        assert!(sim.wait_quiescent(Duration::from_secs(10)));
        target.close();
        drop(target);
        assert!(sim.counters().is_clean(), "{}", sim.counters());
    }
}
