//! Streamed completions per second of a [`ContinuousRequestTarget`] at queue
//! depth 1, 8 and 64 against the raw simulated target driven with no
//! framework (the ceiling), and heap allocations per streamed request of
//! both (the layer's benchmark).
//!
//! Both sides stream IOCTLs with a 64-byte output buffer to the same
//! simulated device (completes at once, zero added latency, two completion
//! threads). The raw side keeps `depth` requests in flight by re-initialising,
//! formatting and re-sending each request from its completion routine. The
//! CRT side does the same through the framework: output buffer from the
//! pool, the client's output callback (reads the data,
//! `ModuleOwnsAndContinue`), buffer back to the pool, resend. Each figure is
//! the median of alternating windows, so drift on a shared machine hits both.

use dmf_sim::NoTargetEvents;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, OwnedCompletion,
    OwnedSendCompleted, SendBuffer, SendParams, Sender, StreamClient, StreamCompletion,
};
use dmf_sim::{
    DeviceSpec, FixedResponseDevice, InlineCompletion, Latency, Sim, SimConfig, SimIoTarget,
    SimRequest,
};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenMode, OpenParams, Platform, RawBuffer, Request,
    RequestType, SendOptions, ShareAccess, Status,
};

use super::{median, BenchOptions, Progress};
use crate::alloc_count;

const IOCTL: u32 = 0x0022_2000;
const OUTPUT: usize = 64;

/// One row of the streaming table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamRow {
    /// Requests in flight.
    pub depth: usize,
    /// Raw sim target, completions per second.
    pub raw_per_s: f64,
    /// CRT, completions per second.
    pub crt_per_s: f64,
    /// Raw sim target: heap allocations and completed requests over every
    /// measurement window (`None` without the counting allocator).
    pub raw_allocations: Option<(u64, u64)>,
    /// CRT: heap allocations and streamed requests over every window.
    pub crt_allocations: Option<(u64, u64)>,
}

impl StreamRow {
    /// CRT rate / raw rate.
    pub fn ratio(&self) -> f64 {
        self.crt_per_s / self.raw_per_s
    }
}

fn setup() -> (Sim, Arc<SimIoTarget>) {
    let sim = Sim::new(
        SimConfig::default()
            .with_latency(Latency::ZERO)
            .with_completion_threads(2)
            // The figures are for completions delivered on completion
            // threads, whatever `DMF_SIM_INLINE` says: comparable between
            // runs, and the raw baseline resends from its completion routine
            // (which recurses when completions are delivered inline).
            .with_inline_completion(InlineCompletion::Off),
    );
    let device = FixedResponseDevice::new(Status::SUCCESS, None).with_fill(0x5A);
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("bench", Arc::new(device)))
        .expect("add device");
    let link = sim.bus().device_link(id).expect("device link");
    let target = sim.create_io_target().expect("target");
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .expect("open");
    (sim, Arc::new(target))
}

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
        self.request.reuse().expect("reuse");
        // SAFETY: `_buffer` lives in the stream, which outlives every send
        // (the stream is released only after it stopped resending).
        unsafe {
            self.target
                .format_request(
                    &self.request,
                    RequestType::Ioctl,
                    IOCTL,
                    None,
                    Some(self.raw),
                )
                .expect("format");
        }
        self.target
            .send(&self.request, SendOptions::default(), Arc::clone(self))
            .expect("send");
    }
}

impl CompletionRoutine for RawStream {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(c.status.is_success(), "{}", c.status);
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

/// `depth` raw streams.
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
                    request: sim.create_request(Some(target)).expect("request"),
                    _buffer: buffer,
                    raw,
                    running: Arc::clone(&running),
                    completions: Arc::clone(&completions),
                    stopped: AtomicBool::new(true),
                    me: Mutex::new(None),
                });
                *s.me.lock().expect("not poisoned") = Some(Arc::clone(&s));
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
}

impl Drop for Raw {
    fn drop(&mut self) {
        for s in &self.streams {
            s.me.lock().expect("not poisoned").take();
        }
    }
}

/// The CRT's client: counts completions, gives the buffer back, continues.
struct Counter(AtomicU64);

impl StreamClient<Sim> for Counter {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        assert!(c.status.is_success(), "{}", c.status);
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
    let crt = ContinuousRequestTarget::new(sim, config, Counter(AtomicU64::new(0))).expect("crt");
    crt.io_target_set(Arc::clone(target)).expect("target set");
    crt
}

/// One window: (completions per second, (allocations, completions)).
pub(crate) fn window(
    start: impl Fn(),
    stop: impl Fn(),
    count: impl Fn() -> u64,
    length: Duration,
) -> (f64, (u64, u64)) {
    start();
    std::thread::sleep(length / 5);
    let (c0, a0, t0) = (count(), alloc_count::allocations(), Instant::now());
    std::thread::sleep(length);
    let (c1, a1, t1) = (count(), alloc_count::allocations(), Instant::now());
    stop();
    (
        (c1 - c0) as f64 / (t1 - t0).as_secs_f64(),
        (a1 - a0, c1 - c0),
    )
}

/// Sums (allocations, requests) over windows.
pub(crate) fn total(v: &[(u64, u64)]) -> (u64, u64) {
    v.iter().fold((0, 0), |acc, x| (acc.0 + x.0, acc.1 + x.1))
}

/// Runs the streaming comparison at depth 1, 8 and 64.
pub fn run(options: &BenchOptions, progress: &mut dyn Progress) -> Vec<StreamRow> {
    let (length, rounds) = if options.quick {
        (Duration::from_millis(150), 3)
    } else {
        (Duration::from_millis(400), 5)
    };
    let counting = alloc_count::is_installed();
    let mut rows = Vec::new();
    for depth in [1usize, 8, 64] {
        progress.step(&format!(
            "continuous-request-target: depth {depth}, median of {rounds} alternating windows of {length:?}"
        ));
        let (sim, target) = setup();
        let raw = Raw::new(&sim, &target, depth);
        let crt = crt(&sim, &target, depth as u32);
        let (mut raw_rates, mut crt_rates) = (Vec::new(), Vec::new());
        let (mut raw_allocs, mut crt_allocs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (r, a) = window(
                || raw.start(),
                || raw.stop(),
                || raw.completions.load(Ordering::Relaxed),
                length,
            );
            raw_rates.push(r);
            raw_allocs.push(a);
            let (r, a) = window(
                || crt.start().expect("start"),
                || crt.stop().expect("stop"),
                || crt.client().0.load(Ordering::Relaxed),
                length,
            );
            crt_rates.push(r);
            crt_allocs.push(a);
        }
        rows.push(StreamRow {
            depth,
            raw_per_s: median(raw_rates),
            crt_per_s: median(crt_rates),
            raw_allocations: counting.then(|| total(&raw_allocs)),
            crt_allocations: counting.then(|| total(&crt_allocs)),
        });
        drop(crt);
        drop(raw);
        assert!(sim.wait_quiescent(Duration::from_secs(10)), "quiescent");
        target.close();
        drop(target);
        assert!(sim.counters().is_clean(), "{}", sim.counters());
    }
    rows
}

/// Safe single sends of a [`ContinuousRequestTarget`] with owned buffers,
/// kept `depth` deep: each completion hands its output vector back and the
/// callback sends it again (while running), as a client recycling its
/// buffers would.
struct OwnedSends {
    crt: Arc<ContinuousRequestTarget<Sim, Counter>>,
    callback: OwnedCompletion<Sim>,
    running: Arc<AtomicBool>,
    completions: Arc<AtomicU64>,
    /// Buffers back from their last completion, while not running.
    idle: Arc<Mutex<Vec<SendBuffer<Sim>>>>,
    /// The callback, for its own resends (taken on drop: a cycle).
    me: Arc<Mutex<Option<OwnedCompletion<Sim>>>>,
    depth: usize,
}

impl OwnedSends {
    fn new(sim: &Sim, target: &Arc<SimIoTarget>, depth: usize) -> Self {
        let crt = Arc::new(crt(sim, target, 1));
        let running = Arc::new(AtomicBool::new(false));
        let completions = Arc::new(AtomicU64::new(0));
        let idle: Arc<Mutex<Vec<SendBuffer<Sim>>>> = Arc::new(Mutex::new(
            (0..depth)
                .map(|_| SendBuffer::Vec(vec![0; OUTPUT]))
                .collect(),
        ));
        let me: Arc<Mutex<Option<OwnedCompletion<Sim>>>> = Arc::new(Mutex::new(None));
        let callback: OwnedCompletion<Sim> = {
            let crt = Arc::downgrade(&crt);
            let (running, completions, idle, me) = (
                Arc::clone(&running),
                Arc::clone(&completions),
                Arc::clone(&idle),
                Arc::clone(&me),
            );
            Arc::new(move |c: OwnedSendCompleted<Sim>| {
                assert!(c.status.is_success(), "{}", c.status);
                std::hint::black_box(c.output_bytes().first().copied());
                completions.fetch_add(1, Ordering::Relaxed);
                let mut output = c.output;
                if running.load(Ordering::Acquire) {
                    if let (Some(crt), Some(buffer)) = (crt.upgrade(), output.take()) {
                        let me = me.lock().expect("not poisoned").clone();
                        if let Err(e) = crt.send(None, Some(buffer), params(), me, 0) {
                            output = e.output;
                        }
                    }
                }
                if let Some(buffer) = output {
                    idle.lock().expect("not poisoned").push(buffer);
                }
            })
        };
        *me.lock().expect("not poisoned") = Some(Arc::clone(&callback));
        OwnedSends {
            crt,
            callback,
            running,
            completions,
            idle,
            me,
            depth,
        }
    }

    fn start(&self) {
        self.running.store(true, Ordering::Release);
        let buffers: Vec<_> = self.idle.lock().expect("not poisoned").drain(..).collect();
        for buffer in buffers {
            let cb = Some(Arc::clone(&self.callback));
            if let Err(e) = self.crt.send(None, Some(buffer), params(), cb, 0) {
                panic!("owned send refused: {}", e.status);
            }
        }
    }

    fn stop(&self) {
        self.running.store(false, Ordering::Release);
        while self.idle.lock().expect("not poisoned").len() < self.depth {
            std::thread::yield_now();
        }
    }
}

impl Drop for OwnedSends {
    fn drop(&mut self) {
        // The callback holds itself for its resends: break the cycle.
        self.me.lock().expect("not poisoned").take();
    }
}

fn params() -> SendParams {
    SendParams::ioctl(IOCTL)
}

/// Heap allocations and completed requests over the measurement windows of
/// safe single sends with owned buffers, `depth` in flight, through a
/// continuous request target's [`Sender`] methods; `None` without the
/// counting allocator. Also returns the completion rate (median).
pub fn owned_send_allocations(
    options: &BenchOptions,
    progress: &mut dyn Progress,
    depth: usize,
) -> (f64, Option<(u64, u64)>) {
    let (length, rounds) = if options.quick {
        (Duration::from_millis(150), 3)
    } else {
        (Duration::from_millis(400), 5)
    };
    progress.step(&format!(
        "continuous-request-target: allocations per single send with owned buffers, depth {depth}"
    ));
    let counting = alloc_count::is_installed();
    let (sim, target) = setup();
    let sends = OwnedSends::new(&sim, &target, depth);
    let (mut rates, mut allocs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (r, a) = window(
            || sends.start(),
            || sends.stop(),
            || sends.completions.load(Ordering::Relaxed),
            length,
        );
        rates.push(r);
        allocs.push(a);
    }
    drop(sends);
    assert!(sim.wait_quiescent(Duration::from_secs(10)), "quiescent");
    target.close();
    drop(target);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    (median(rates), counting.then(|| total(&allocs)))
}
