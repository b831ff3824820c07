//! Benchmark: interface-arrival-to-first-stream-completion latency and
//! memory per target, with 1, 100 and 10,000 targets on the simulator,
//! against a baseline measured in the same run: the raw simulated target
//! with no framework on top (open by link, send one request, wait for its
//! completion).
//!
//! `cargo bench -p dmf-device-interface-multiple-target --bench arrival`
//! (set `DIMT_BENCH_MAX` to lower the largest count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{
    ContinuousRequestTargetConfig, OutputDisposition, StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::*;
use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
use dmf_sim::{
    DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenMode, OpenParams, Platform, RawBuffer, RequestType,
    SendOptions, ShareAccess, Status, TargetEvents,
};

/// Counts live heap bytes.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Records arrival times (filter) and first completion times per target.
#[derive(Default)]
struct Timing {
    arrived: Mutex<HashMap<String, Instant>>,
    first: Mutex<HashMap<TargetHandle, Instant>>,
    opened: Mutex<HashMap<TargetHandle, String>>,
}

impl DimtClient<Sim> for Timing {
    fn on_pnp_notification(&self, _m: &Dimt<Sim, Self>, link: &str) -> bool {
        self.arrived
            .lock()
            .unwrap()
            .insert(link.to_string(), Instant::now());
        true
    }
    fn on_state_change(&self, m: &Dimt<Sim, Self>, t: TargetHandle, s: TargetStateType) -> Status {
        if s == TargetStateType::Open {
            self.opened
                .lock()
                .unwrap()
                .insert(t, m.symbolic_link(t).unwrap());
        }
        Status::SUCCESS
    }
    fn buffer_output(
        &self,
        _m: &Dimt<Sim, Self>,
        t: TargetHandle,
        c: StreamCompletion<Sim>,
    ) -> OutputDisposition<Sim> {
        self.first
            .lock()
            .unwrap()
            .entry(t)
            .or_insert_with(Instant::now);
        // One completion per target is enough: retire the stream request.
        c.module_owns_and_stop()
    }
}

fn add_devices(sim: &Sim, n: usize) {
    for i in 0..n {
        sim.bus()
            .add_device(
                DeviceSpec::new(
                    format!("b{i}"),
                    Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
                        max_random_delay_ms: 0,
                        handle_internal_ioctls: false,
                    })),
                )
                .with_interface(GUID),
            )
            .unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Stats {
    median: Duration,
    p99: Duration,
    bytes_per_target: f64,
    sim_bytes_per_target: f64,
}

fn dimt_run(n: usize) -> Stats {
    let sim = Sim::new(SimConfig::default());
    add_devices(&sim, n);
    let config = DeviceInterfaceMultipleTargetConfig {
        module_open_option: PnpRegisterWhen::Create,
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_count_output: 1,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: StreamMode::Automatic,
            ..ContinuousRequestTargetConfig::default()
        },
        ..DeviceInterfaceMultipleTargetConfig::new(GUID)
    };
    let before = live();
    let sim_before = sim.counters().allocated_bytes;
    let dimt = DeviceInterfaceMultipleTarget::new(sim.clone(), config, Timing::default()).unwrap();
    sim.bus().flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while dimt.client().first.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "not every target completed");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(sim.wait_quiescent(Duration::from_secs(60)));
    let bytes = live() - before;
    let sim_bytes = sim.counters().allocated_bytes - sim_before;
    let c = dimt.client();
    let arrived = c.arrived.lock().unwrap();
    let opened = c.opened.lock().unwrap();
    let mut lat: Vec<Duration> = c
        .first
        .lock()
        .unwrap()
        .iter()
        .map(|(t, done)| done.duration_since(arrived[&opened[t]]))
        .collect();
    drop((arrived, opened));
    lat.sort();
    drop(dimt);
    Stats {
        median: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        bytes_per_target: bytes as f64 / n as f64,
        sim_bytes_per_target: sim_bytes as f64 / n as f64,
    }
}

struct NoEvents;
impl TargetEvents for NoEvents {
    fn query_remove(&self) -> Status {
        Status::SUCCESS
    }
    fn remove_canceled(&self) {}
    fn remove_complete(&self) {}
}

struct Done(mpsc::Sender<Instant>);
impl CompletionRoutine for Done {
    fn completed(self: Arc<Self>, _c: Completed) {
        let _ = self.0.send(Instant::now());
    }
}

/// The ceiling: open each target by hand and send one request.
fn raw_run(n: usize) -> Stats {
    let sim = Sim::new(SimConfig::default());
    add_devices(&sim, n);
    let links: Vec<String> = sim
        .bus()
        .devices()
        .into_iter()
        .map(|d| d.interfaces[0].symbolic_link.clone())
        .collect();
    let before = live();
    let mut kept = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    let (tx, rx) = mpsc::channel();
    for link in &links {
        let start = Instant::now();
        let target = sim.create_io_target().unwrap();
        let params = OpenParams {
            symbolic_link: link,
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
        };
        target.open(&params, Arc::new(NoEvents)).unwrap();
        let request = sim.create_request(Some(&target)).unwrap();
        let mut out = Box::new([0u8; 4]);
        // SAFETY: `out` is kept alive (in `kept`) until the run ends, after
        // the completion.
        unsafe {
            target
                .format_request(
                    &request,
                    RequestType::Ioctl,
                    IOCTL_ZEROBUFFER,
                    None,
                    Some(RawBuffer::from_mut_slice(&mut out[..])),
                )
                .unwrap();
        }
        target
            .send(&request, SendOptions::default(), Arc::new(Done(tx.clone())))
            .unwrap();
        let done = rx.recv().unwrap();
        lat.push(done.duration_since(start));
        kept.push((target, request, out));
    }
    assert!(sim.wait_quiescent(Duration::from_secs(60)));
    let bytes = live() - before;
    lat.sort();
    drop(kept);
    Stats {
        median: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        bytes_per_target: bytes as f64 / n as f64,
        sim_bytes_per_target: 0.0,
    }
}

fn main() {
    let max: usize = std::env::var("DIMT_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!("arrival -> first completion, per target (real-time sim, ZEROBUFFER with 0 ms delay)");
    println!(
        "{:>7} | {:>12} {:>12} {:>12} | {:>12} {:>12} {:>12} | {:>9}",
        "targets",
        "raw median",
        "raw p99",
        "raw B/tgt",
        "DIMT median",
        "DIMT p99",
        "DIMT B/tgt",
        "ratio med"
    );
    for n in [1usize, 100, 10_000].into_iter().filter(|&n| n <= max) {
        let raw = raw_run(n);
        let dimt = dimt_run(n);
        println!(
            "{:>7} | {:>12?} {:>12?} {:>12.0} | {:>12?} {:>12?} {:>12.0} | {:>9.1}",
            n,
            raw.median,
            raw.p99,
            raw.bytes_per_target,
            dimt.median,
            dimt.p99,
            dimt.bytes_per_target,
            dimt.median.as_secs_f64() / raw.median.as_secs_f64().max(1e-9)
        );
        println!(
            "        | DIMT device memory (Platform::allocate) per target: {:.0} B",
            dimt.sim_bytes_per_target
        );
    }
}
