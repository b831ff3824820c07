//! DeviceInterfaceMultipleTarget at 1, 100 and 10,000 targets: arrival cost
//! (interface present -> first stream completion), removal cost (orderly
//! device removal: query-remove, close, remove-complete, interface removal)
//! and heap per target, against the raw simulated target with no framework
//! (open by link and send one request; close for query-remove and close on
//! removal), measured in the same run. Also heap
//! allocations per streamed request of one streaming DIMT target.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{
    ContinuousRequestTargetConfig, OutputDisposition, StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    PnpRegisterWhen, TargetHandle, TargetStateType,
};
use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
use dmf_sim::{
    DeviceId, DeviceSpec, IoctlHandlerConfig, RemovalOutcome, Sim, SimConfig, SimIoTarget,
    TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenMode, OpenParams, Platform, RawBuffer, RequestType,
    SendOptions, ShareAccess, Status, TargetEvents,
};

use super::{median, percentile, BenchOptions, Progress};
use crate::alloc_count;

/// One row of the DIMT table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetsRow {
    /// Targets (devices exposing the interface).
    pub targets: usize,
    /// Raw: open + send + completion, median per target.
    pub raw_arrival: Duration,
    /// DIMT: filter -> open -> stream start -> first completion, median.
    pub dimt_arrival: Duration,
    /// DIMT arrival, 99th percentile.
    pub dimt_arrival_p99: Duration,
    /// Raw: orderly removal of one device, median.
    pub raw_removal: Duration,
    /// DIMT: orderly removal of one device, median.
    pub dimt_removal: Duration,
    /// Raw: heap bytes per open target (`None` without the counting allocator).
    pub raw_bytes: Option<f64>,
    /// DIMT: heap bytes per open target.
    pub dimt_bytes: Option<f64>,
    /// DIMT: device memory (`Platform::allocate`) per target.
    pub dimt_platform_bytes: f64,
}

impl TargetsRow {
    /// DIMT arrival / raw arrival (medians).
    pub fn arrival_ratio(&self) -> f64 {
        self.dimt_arrival.as_secs_f64() / self.raw_arrival.as_secs_f64().max(1e-9)
    }
    /// DIMT removal / raw removal (medians).
    pub fn removal_ratio(&self) -> f64 {
        self.dimt_removal.as_secs_f64() / self.raw_removal.as_secs_f64().max(1e-9)
    }
}

fn add_devices(sim: &Sim, n: usize, delay_ms: u32) -> Vec<DeviceId> {
    (0..n)
        .map(|i| {
            sim.bus()
                .add_device(
                    DeviceSpec::new(
                        format!("b{i}"),
                        Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
                            max_random_delay_ms: delay_ms,
                            handle_internal_ioctls: false,
                        })),
                    )
                    .with_interface(GUID),
                )
                .expect("add device")
        })
        .collect()
}

fn remove_all(sim: &Sim, devices: &[DeviceId]) -> Vec<Duration> {
    devices
        .iter()
        .map(|&id| {
            let start = Instant::now();
            let outcome = sim.bus().remove_device(id).expect("remove");
            let spent = start.elapsed();
            assert_eq!(outcome, RemovalOutcome::Removed);
            spent
        })
        .collect()
}

fn stream_config(requests: u32, mode: StreamMode) -> DeviceInterfaceMultipleTargetConfig {
    DeviceInterfaceMultipleTargetConfig {
        module_open_option: PnpRegisterWhen::Create,
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: requests,
            buffer_count_output: requests,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: mode,
            ..ContinuousRequestTargetConfig::default()
        },
        ..DeviceInterfaceMultipleTargetConfig::new(GUID)
    }
}

/// Records arrival times (filter) and first completion times per target.
#[derive(Default)]
struct Timing {
    arrived: Mutex<HashMap<String, Instant>>,
    first: Mutex<HashMap<TargetHandle, Instant>>,
    opened: Mutex<HashMap<TargetHandle, String>>,
    closed: AtomicU64,
}

impl DimtClient<Sim> for Timing {
    type Target = ();

    fn target_context(&self, _: &Dimt<Sim, Self>, _: TargetHandle, _: &str) {}

    fn on_pnp_notification(&self, _m: &Dimt<Sim, Self>, link: &str) -> bool {
        self.arrived
            .lock()
            .expect("not poisoned")
            .insert(link.to_string(), Instant::now());
        true
    }
    fn on_state_change(
        &self,
        m: &Dimt<Sim, Self>,
        t: TargetHandle,
        _target_context: &Self::Target,
        s: TargetStateType,
    ) -> Status {
        match s {
            TargetStateType::Open => {
                let link = m.symbolic_link(t).expect("open target has a link");
                self.opened.lock().expect("not poisoned").insert(t, link);
            }
            TargetStateType::QueryRemoveComplete | TargetStateType::Close => {
                self.closed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Status::SUCCESS
    }
    fn buffer_output(
        &self,
        _m: &Dimt<Sim, Self>,
        t: TargetHandle,
        _target_context: &Self::Target,
        c: StreamCompletion<Sim>,
    ) -> OutputDisposition<Sim> {
        self.first
            .lock()
            .expect("not poisoned")
            .entry(t)
            .or_insert_with(Instant::now);
        // One completion per target is enough: retire the stream request.
        c.module_owns_and_stop()
    }
}

struct Run {
    arrival: Vec<Duration>,
    removal: Vec<Duration>,
    bytes: Option<f64>,
    platform_bytes: f64,
}

fn dimt_run(n: usize) -> Run {
    let sim = Sim::new(SimConfig::default());
    let devices = add_devices(&sim, n, 0);
    let counting = alloc_count::is_installed();
    let before = alloc_count::live_bytes();
    let platform_before = sim.counters().allocated_bytes;
    let dimt = DeviceInterfaceMultipleTarget::new(
        &sim,
        stream_config(1, StreamMode::Automatic),
        Timing::default(),
    )
    .expect("dimt");
    sim.bus().flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(120);
    while dimt.client().first.lock().expect("not poisoned").len() < n {
        assert!(Instant::now() < deadline, "not every target completed");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(sim.wait_quiescent(Duration::from_secs(60)), "quiescent");
    let bytes = alloc_count::live_bytes() - before;
    let platform_bytes = sim.counters().allocated_bytes - platform_before;
    let arrival = {
        let c = dimt.client();
        let arrived = c.arrived.lock().expect("not poisoned");
        let opened = c.opened.lock().expect("not poisoned");
        let first = c.first.lock().expect("not poisoned");
        first
            .iter()
            .map(|(t, done)| done.duration_since(arrived[&opened[t]]))
            .collect()
    };
    let removal = remove_all(&sim, &devices);
    assert_eq!(dimt.client().closed.load(Ordering::Relaxed), n as u64);
    assert_eq!(dimt.target_count(), 0);
    drop(dimt);
    assert!(sim.wait_quiescent(Duration::from_secs(60)), "quiescent");
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    Run {
        arrival,
        removal,
        bytes: counting.then(|| bytes as f64 / n as f64),
        platform_bytes: platform_bytes as f64 / n as f64,
    }
}

/// Raw target events: close for query-remove, close on removal.
#[derive(Default)]
struct RawEvents(OnceLock<Weak<SimIoTarget>>);

impl RawEvents {
    fn target(&self) -> Option<Arc<SimIoTarget>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

impl TargetEvents for RawEvents {
    fn query_remove(&self) -> Status {
        if let Some(t) = self.target() {
            t.close_for_query_remove();
        }
        Status::SUCCESS
    }
    fn remove_canceled(&self) {
        if let Some(t) = self.target() {
            let _ = t.reopen();
        }
    }
    fn remove_complete(&self) {
        if let Some(t) = self.target() {
            t.close();
        }
    }
}

struct Done(mpsc::Sender<Instant>);
impl CompletionRoutine for Done {
    fn completed(self: Arc<Self>, _c: Completed) {
        let _ = self.0.send(Instant::now());
    }
}

/// The ceiling: open each target by hand, send one request, wait.
fn raw_run(n: usize) -> Run {
    let sim = Sim::new(SimConfig::default());
    let devices = add_devices(&sim, n, 0);
    let links: Vec<String> = devices
        .iter()
        .map(|&id| sim.bus().symbolic_link(id, &GUID).expect("link"))
        .collect();
    let counting = alloc_count::is_installed();
    let before = alloc_count::live_bytes();
    let mut kept = Vec::with_capacity(n);
    let mut arrival = Vec::with_capacity(n);
    let (tx, rx) = mpsc::channel();
    for link in &links {
        let start = Instant::now();
        let target = Arc::new(sim.create_io_target().expect("target"));
        let events = Arc::new(RawEvents::default());
        let _ = events.0.set(Arc::downgrade(&target));
        let params = OpenParams {
            symbolic_link: link,
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
        };
        target.open(&params, events).expect("open");
        let request = sim.create_request(Some(&target)).expect("request");
        let mut out = Box::new([0u8; 4]);
        // SAFETY: `out` is kept alive (in `kept`) until after the completion.
        unsafe {
            target
                .format_request(
                    &request,
                    RequestType::Ioctl,
                    IOCTL_ZEROBUFFER,
                    None,
                    Some(RawBuffer::from_mut_slice(&mut out[..])),
                )
                .expect("format");
        }
        target
            .send(&request, SendOptions::default(), Arc::new(Done(tx.clone())))
            .expect("send");
        let done = rx.recv().expect("completion");
        arrival.push(done.duration_since(start));
        kept.push((target, request, out));
    }
    assert!(sim.wait_quiescent(Duration::from_secs(60)), "quiescent");
    let bytes = alloc_count::live_bytes() - before;
    let removal = remove_all(&sim, &devices);
    drop(kept);
    assert!(sim.wait_quiescent(Duration::from_secs(60)), "quiescent");
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    Run {
        arrival,
        removal,
        bytes: counting.then(|| bytes as f64 / n as f64),
        platform_bytes: 0.0,
    }
}

/// Runs the DIMT comparison at 1, 100 and 10,000 targets (bounded by
/// `options.max_targets`).
pub fn run(options: &BenchOptions, progress: &mut dyn Progress) -> Vec<TargetsRow> {
    let mut rows = Vec::new();
    for n in [1usize, 100, 10_000]
        .into_iter()
        .filter(|&n| n <= options.max_targets)
    {
        // Small counts are repeated so the medians mean something.
        let repeats = (200 / n).clamp(1, 20);
        progress.step(&format!(
            "device-interface-multiple-target: {n} target(s), {repeats} run(s) each side"
        ));
        let (mut raw, mut dimt) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            raw.push(raw_run(n));
            dimt.push(dimt_run(n));
        }
        let flat = |runs: &[Run], f: fn(&Run) -> &Vec<Duration>| -> Vec<Duration> {
            let mut v: Vec<Duration> = runs.iter().flat_map(|r| f(r).iter().copied()).collect();
            v.sort();
            v
        };
        let avg = |runs: &[Run], f: fn(&Run) -> Option<f64>| -> Option<f64> {
            let v: Option<Vec<f64>> = runs.iter().map(f).collect();
            v.map(median)
        };
        let raw_arrival = flat(&raw, |r| &r.arrival);
        let dimt_arrival = flat(&dimt, |r| &r.arrival);
        let raw_removal = flat(&raw, |r| &r.removal);
        let dimt_removal = flat(&dimt, |r| &r.removal);
        rows.push(TargetsRow {
            targets: n,
            raw_arrival: percentile(&raw_arrival, 0.5),
            dimt_arrival: percentile(&dimt_arrival, 0.5),
            dimt_arrival_p99: percentile(&dimt_arrival, 0.99),
            raw_removal: percentile(&raw_removal, 0.5),
            dimt_removal: percentile(&dimt_removal, 0.5),
            raw_bytes: avg(&raw, |r| r.bytes),
            dimt_bytes: avg(&dimt, |r| r.bytes),
            dimt_platform_bytes: median(dimt.iter().map(|r| r.platform_bytes).collect()),
        });
    }
    rows
}

/// The DIMT client of the allocation measurement: counts, continues.
#[derive(Default)]
struct Streamer(AtomicU64);

impl DimtClient<Sim> for Streamer {
    type Target = ();

    fn target_context(&self, _: &Dimt<Sim, Self>, _: TargetHandle, _: &str) {}

    fn buffer_output(
        &self,
        _m: &Dimt<Sim, Self>,
        _t: TargetHandle,
        _target_context: &Self::Target,
        c: StreamCompletion<Sim>,
    ) -> OutputDisposition<Sim> {
        self.0.fetch_add(1, Ordering::Relaxed);
        c.module_owns_and_continue()
    }
}

/// Heap allocations and streamed requests over the measurement windows of
/// one DIMT target streaming with `depth` requests; `None` without the
/// counting allocator. Also returns the completion rate (median).
pub fn stream_allocations(
    options: &BenchOptions,
    progress: &mut dyn Progress,
    depth: u32,
) -> (f64, Option<(u64, u64)>) {
    let (length, rounds) = if options.quick {
        (Duration::from_millis(150), 3)
    } else {
        (Duration::from_millis(400), 5)
    };
    progress.step(&format!(
        "device-interface-multiple-target: allocations per streamed request, depth {depth}"
    ));
    let counting = alloc_count::is_installed();
    let sim = Sim::new(SimConfig::default().with_latency(dmf_sim::Latency::ZERO));
    let devices = add_devices(&sim, 1, 0);
    let dimt = DeviceInterfaceMultipleTarget::new(
        &sim,
        stream_config(depth, StreamMode::Manual),
        Streamer::default(),
    )
    .expect("dimt");
    sim.bus().flush().expect("flush");
    let target = dimt.targets()[0];
    let (mut rates, mut allocs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (r, a) = super::crt::window(
            || dimt.stream_start(target).expect("stream start"),
            || dimt.stream_stop(target).expect("stream stop"),
            || dimt.client().0.load(Ordering::Relaxed),
            length,
        );
        rates.push(r);
        allocs.push(a);
    }
    remove_all(&sim, &devices);
    drop(dimt);
    assert!(sim.wait_quiescent(Duration::from_secs(10)), "quiescent");
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    (median(rates), counting.then(|| super::crt::total(&allocs)))
}
