//! Shared test fixtures: a simulator with one device and an open target.
#![allow(dead_code)]

pub use dmf_sim::NoTargetEvents;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmf_sim::{
    DeviceHandler, DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, SimIoTarget, TestsIoctlHandler,
};
use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, ShareAccess, Status};

/// A simulator with one device answering with `handler`, and an open target to it.
pub fn sim_with_device(
    config: SimConfig,
    handler: Arc<dyn DeviceHandler>,
) -> (Sim, Arc<SimIoTarget>) {
    let sim = Sim::new(config);
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("dev", handler))
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
            Arc::new(NoTargetEvents),
        )
        .unwrap();
    (sim, Arc::new(target))
}

/// Opens another target to the only device of `sim`.
pub fn open_another_target(sim: &Sim) -> Arc<SimIoTarget> {
    let id = sim.bus().devices()[0].id;
    let link = sim.bus().device_link(id).unwrap();
    let target = sim.create_io_target().unwrap();
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .unwrap();
    Arc::new(target)
}

/// A simulator with DMF's Tests_IoctlHandler (random delays up to `max_delay_ms`).
pub fn sim_with_ioctl_handler(max_delay_ms: u32) -> (Sim, Arc<SimIoTarget>) {
    let handler = TestsIoctlHandler::new(IoctlHandlerConfig {
        max_random_delay_ms: max_delay_ms,
        ..IoctlHandlerConfig::default()
    });
    sim_with_device(SimConfig::default(), Arc::new(handler))
}

/// Waits (real time) until `cond` holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Drops the target and checks the simulator's leak counters.
pub fn assert_clean(sim: &Sim, target: Arc<SimIoTarget>) {
    assert!(
        sim.wait_quiescent(Duration::from_secs(10)),
        "sim not quiescent"
    );
    target.close();
    drop(target);
    let counters = sim.counters();
    assert!(counters.is_clean(), "{counters}");
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use dmf_continuous_request_target::{
    OutputBuffer, OutputDisposition, Retirement, StreamClient, StreamCompletion,
};

/// What [`Recorder::buffer_output`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// DMF's default: module owns; continue on success, stop on failure.
    Default,
    /// Module owns, always continue (even on failure: exercises back-off).
    AlwaysContinue,
    /// Keep the buffer, continue.
    KeepAndContinue,
    /// Keep the buffer, stop.
    KeepAndStop,
    /// Module owns; continue for the first `n` completions of the whole
    /// stream, then stop.
    StopAfter(usize),
}

/// One completion as a [`Recorder`] saw it: status, information, the valid
/// output bytes (if there was a buffer), and the `stopping` flag.
pub type Seen = (Status, usize, Option<Vec<u8>>, bool);

/// A stream client that records what it sees.
pub struct Recorder {
    pub policy: Policy,
    /// Completions seen (all statuses).
    pub completions: AtomicUsize,
    /// Successful completions seen.
    pub successes: AtomicUsize,
    /// Completions seen with `stopping` set.
    pub during_stop: AtomicUsize,
    /// Statuses and information of every completion.
    pub seen: Mutex<Vec<Seen>>,
    /// Output buffers kept (`Keep*` policies).
    pub kept: Mutex<Vec<OutputBuffer<Sim>>>,
    /// Retirements reported.
    pub retirements: Mutex<Vec<Retirement>>,
    /// Input callback: bytes written are 1, 2, 3, ...; returns this length.
    pub input_len: AtomicUsize,
    /// Input callback invocations.
    pub inputs: AtomicUsize,
    /// Context sizes seen by the input callback.
    pub input_context_len: AtomicUsize,
    /// If not empty, the input callback writes these bytes instead.
    pub input_bytes: Mutex<Vec<u8>>,
}

impl Recorder {
    pub fn new(policy: Policy) -> Self {
        Recorder {
            policy,
            completions: AtomicUsize::new(0),
            successes: AtomicUsize::new(0),
            during_stop: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            kept: Mutex::new(Vec::new()),
            retirements: Mutex::new(Vec::new()),
            input_len: AtomicUsize::new(usize::MAX),
            inputs: AtomicUsize::new(0),
            input_context_len: AtomicUsize::new(usize::MAX),
            input_bytes: Mutex::new(Vec::new()),
        }
    }

    pub fn completions(&self) -> usize {
        self.completions.load(Ordering::SeqCst)
    }

    pub fn successes(&self) -> usize {
        self.successes.load(Ordering::SeqCst)
    }

    pub fn take_kept(&self) -> Vec<OutputBuffer<Sim>> {
        std::mem::take(&mut *self.kept.lock().unwrap())
    }

    pub fn retirements(&self) -> Vec<Retirement> {
        self.retirements.lock().unwrap().clone()
    }
}

impl StreamClient<Sim> for Recorder {
    fn buffer_input(&self, input: &mut [u8], context: &mut [u8]) -> usize {
        self.inputs.fetch_add(1, Ordering::SeqCst);
        self.input_context_len
            .store(context.len(), Ordering::SeqCst);
        let fixed = self.input_bytes.lock().unwrap();
        if fixed.is_empty() {
            for (i, b) in input.iter_mut().enumerate() {
                *b = (i + 1) as u8;
            }
        } else {
            let n = fixed.len().min(input.len());
            input[..n].copy_from_slice(&fixed[..n]);
        }
        self.input_len.load(Ordering::SeqCst)
    }

    fn buffer_output(&self, mut c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        let n = self.completions.fetch_add(1, Ordering::SeqCst) + 1;
        if c.status.is_success() {
            self.successes.fetch_add(1, Ordering::SeqCst);
        }
        if c.stopping {
            self.during_stop.fetch_add(1, Ordering::SeqCst);
        }
        let data = c.output.as_ref().map(|_| c.data().to_vec());
        self.seen
            .lock()
            .unwrap()
            .push((c.status, c.information, data, c.stopping));
        match self.policy {
            Policy::Default => {
                if c.status.is_error() {
                    c.module_owns_and_stop()
                } else {
                    c.module_owns_and_continue()
                }
            }
            Policy::AlwaysContinue => c.module_owns_and_continue(),
            Policy::KeepAndContinue | Policy::KeepAndStop => {
                if let Some(buffer) = c.take_output() {
                    self.kept.lock().unwrap().push(buffer);
                }
                if self.policy == Policy::KeepAndContinue {
                    OutputDisposition::ClientOwnsAndContinue
                } else {
                    OutputDisposition::ClientOwnsAndStop
                }
            }
            Policy::StopAfter(limit) => {
                if n < limit {
                    c.module_owns_and_continue()
                } else {
                    c.module_owns_and_stop()
                }
            }
        }
    }

    fn stream_request_retired(&self, retirement: Retirement) {
        self.retirements.lock().unwrap().push(retirement);
    }
}

/// A simulator with a [`ParkingDevice`](dmf_sim::ParkingDevice) (cancelable).
pub fn sim_with_parking() -> (Sim, Arc<SimIoTarget>, Arc<dmf_sim::ParkingDevice>) {
    let device = dmf_sim::ParkingDevice::new();
    let (sim, target) = sim_with_device(SimConfig::default(), device.clone());
    (sim, target, device)
}
