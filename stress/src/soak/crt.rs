//! DMF's CRT test (through DefaultTarget): four ContinuousRequestTargets on a
//! child device's `Tests_IoctlHandler` (no interface): (a) automatic SLEEP
//! input stream, (b) manual passive SLEEP input stream, (c) manual passive
//! ZEROBUFFER output stream with the CRT-1 check, (d) manual passive
//! zero-size stream with the CRT-2 check; all with the CRT-7 power policy
//! (purge + restart the target, stop + resume the stream at D0 exit/entry).

use dmf_sim::NoTargetEvents;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, StreamClient,
    StreamCompletion, StreamMode,
};
use dmf_sim::ioctl_handler::{IOCTL_SLEEP, IOCTL_ZEROBUFFER, IOCTL_ZEROSIZE, SLEEP_INPUT_SIZE};
use dmf_sim::{ClientDevice, DeviceId, Sim, SimIoTarget};
use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, RequestType, Result, ShareAccess, Status};

use super::stats::Stats;

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// (a)/(b): the input callback asks for a random sleep; completions counted.
pub(crate) struct SleepInput {
    pub(crate) stats: Arc<Stats>,
    pub(crate) seed: AtomicU64,
    pub(crate) layer: &'static str,
}

impl SleepInput {
    pub(crate) fn new(stats: Arc<Stats>, seed: u64, layer: &'static str) -> Self {
        SleepInput {
            stats,
            seed: AtomicU64::new(seed),
            layer,
        }
    }

    /// Fills a Sleep structure of `rand(0, 40)` ms.
    pub(crate) fn fill(&self, input: &mut [u8]) -> usize {
        let ms = mix(self.seed.fetch_add(1, Ordering::Relaxed)) % 41;
        let sleep = dmf_sim::ioctl_handler::encode_sleep(ms as i32);
        let n = SLEEP_INPUT_SIZE.min(input.len());
        input[..n].copy_from_slice(&sleep[..n]);
        input.len()
    }
}

impl StreamClient<Sim> for SleepInput {
    fn buffer_input(&self, input: &mut [u8], _context: &mut [u8]) -> usize {
        self.fill(input)
    }
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        self.stats.status(self.layer, c.status);
        self.stats.op("crt.stream.completion");
        c.module_owns_and_continue()
    }
}

/// (c): CRT-1: on success the output is 4 zero bytes; cancelled stops.
pub(crate) struct OutputCheck(pub(crate) Arc<Stats>);

impl StreamClient<Sim> for OutputCheck {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        self.0.status("crt.stream", c.status);
        self.0.op("crt.stream.completion");
        if c.status.is_success() {
            let data = c.data();
            if data.len() != 4 || data.iter().any(|&b| b != 0) {
                self.0.violation(format!(
                    "CRT-1: ZEROBUFFER success with output {data:?} (expected 4 zero bytes)"
                ));
            }
        }
        if c.status == Status::CANCELLED {
            c.module_owns_and_stop()
        } else {
            c.module_owns_and_continue()
        }
    }
}

/// (d): CRT-2: on success no output buffer and 0 bytes.
pub(crate) struct ZeroSize(pub(crate) Arc<Stats>);

impl StreamClient<Sim> for ZeroSize {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        self.0.status("crt.stream", c.status);
        self.0.op("crt.stream.completion");
        if c.status.is_success() && (c.information != 0 || c.output.is_some()) {
            self.0.violation(format!(
                "CRT-2: zero-size success with information {} and an output buffer: {}",
                c.information,
                c.output.is_some()
            ));
        }
        c.module_owns_and_continue()
    }
}

fn base(mode: StreamMode, passive: bool) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: 1,
        request_type: RequestType::Ioctl,
        continuous_request_target_mode: mode,
        passive_level: passive,
        purge_and_start_target_in_d0_callbacks: true,
        cancel_and_resend_request_in_d0_callbacks: true,
        ..ContinuousRequestTargetConfig::default()
    }
}

fn sleep_config(mode: StreamMode, passive: bool) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        buffer_count_input: 1,
        buffer_input_size: SLEEP_INPUT_SIZE as u32,
        buffer_count_output: 1,
        buffer_output_size: SLEEP_INPUT_SIZE as u32,
        continuous_request_target_ioctl: IOCTL_SLEEP,
        ..base(mode, passive)
    }
}

/// The four CRTs and their targets.
pub(crate) struct CrtScenario {
    pub(crate) a: Arc<ContinuousRequestTarget<Sim, SleepInput>>,
    pub(crate) b: Arc<ContinuousRequestTarget<Sim, SleepInput>>,
    pub(crate) c: Arc<ContinuousRequestTarget<Sim, OutputCheck>>,
    pub(crate) d: Arc<ContinuousRequestTarget<Sim, ZeroSize>>,
    targets: Vec<Arc<SimIoTarget>>,
}

fn open(sim: &Sim, link: &str) -> Result<Arc<SimIoTarget>> {
    let t = sim.create_io_target()?;
    t.open(
        &OpenParams {
            symbolic_link: link,
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
        },
        Arc::new(NoTargetEvents),
    )?;
    Ok(Arc::new(t))
}

impl CrtScenario {
    pub(crate) fn new(
        sim: &Sim,
        device: DeviceId,
        client: &ClientDevice,
        stats: &Arc<Stats>,
        seed: u64,
    ) -> Result<Self> {
        let link = sim
            .bus()
            .device_link(device)
            .ok_or(Status::NO_SUCH_DEVICE)?;
        let targets = (0..4)
            .map(|_| open(sim, &link))
            .collect::<Result<Vec<_>>>()?;
        let a = Arc::new(ContinuousRequestTarget::new(
            sim,
            sleep_config(StreamMode::Automatic, false),
            SleepInput::new(Arc::clone(stats), seed, "crt.stream"),
        )?);
        let b = Arc::new(ContinuousRequestTarget::new(
            sim,
            sleep_config(StreamMode::Manual, true),
            SleepInput::new(Arc::clone(stats), seed ^ 0xB, "crt.stream"),
        )?);
        let c = Arc::new(ContinuousRequestTarget::new(
            sim,
            ContinuousRequestTargetConfig {
                buffer_count_output: 1,
                buffer_output_size: 4,
                continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
                ..base(StreamMode::Manual, true)
            },
            OutputCheck(Arc::clone(stats)),
        )?);
        let d = Arc::new(ContinuousRequestTarget::new(
            sim,
            ContinuousRequestTargetConfig {
                continuous_request_target_ioctl: IOCTL_ZEROSIZE,
                ..base(StreamMode::Manual, true)
            },
            ZeroSize(Arc::clone(stats)),
        )?);
        client.register(Arc::new(a.device_callbacks()));
        client.register(Arc::new(b.device_callbacks()));
        client.register(Arc::new(c.device_callbacks()));
        client.register(Arc::new(d.device_callbacks()));
        // (a) is automatic: setting the target starts it.
        stats.result("crt", &a.io_target_set(Arc::clone(&targets[0])));
        b.io_target_set(Arc::clone(&targets[1]))?;
        c.io_target_set(Arc::clone(&targets[2]))?;
        d.io_target_set(Arc::clone(&targets[3]))?;
        for r in [b.start(), c.start(), d.start()] {
            stats.result("crt", &r);
        }
        Ok(CrtScenario {
            a,
            b,
            c,
            d,
            targets,
        })
    }

    /// Stream start/stop on one of the manual instances (CRT-7 style).
    pub(crate) fn toggle(&self, stats: &Stats, which: u64, start: bool) {
        let r = match (which, start) {
            (0, true) => self.b.start(),
            (0, false) => self.b.stop(),
            (1, true) => self.c.start(),
            (1, false) => self.c.stop(),
            (_, true) => self.d.start(),
            (_, false) => self.d.stop(),
        };
        stats.result("crt", &r);
        stats.op(if start {
            "crt.stream_start"
        } else {
            "crt.stream_stop"
        });
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "a {:?}/{} b {:?}/{} c {:?}/{} d {:?}/{}",
            self.a.stream_state(),
            self.a.active_stream_requests(),
            self.b.stream_state(),
            self.b.active_stream_requests(),
            self.c.stream_state(),
            self.c.active_stream_requests(),
            self.d.stream_state(),
            self.d.active_stream_requests()
        )
    }

    /// Closes the four CRTs and their targets.
    pub(crate) fn close(self) {
        self.a.close();
        self.b.close();
        self.c.close();
        self.d.close();
        for t in &self.targets {
            t.close();
        }
    }
}
