//! DMF's DIMT test: four DIMT instances on `GUID_DEVINTERFACE_Tests_IoctlHandler`:
//! (A) automatic SLEEP input stream, (B) non-continuous (RequestTarget
//! transport), (C) manual passive stream never started, (D) non-continuous
//! passive. The client tracks open targets (DIMT-1/2), purges the target in
//! its QueryRemove handler (DIMT-6), and worker threads run DIMT-3 actions on
//! random open targets while the bus churns (DIMT-5).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dmf_continuous_request_target::{
    ContinuousRequestTargetConfig, OutputDisposition, StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    PnpRegisterWhen, TargetHandle, TargetStateType,
};
use dmf_sim::ioctl_handler::{IOCTL_SLEEP, SLEEP_INPUT_SIZE};
use dmf_sim::{ClientDevice, Sim, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID};
use dmf_wdf::{IoTarget, Result, Status};

use super::crt::SleepInput;
use super::stats::Stats;

/// The soak's DIMT client.
pub(crate) struct DimtSoakClient {
    stats: Arc<Stats>,
    open: Mutex<Vec<TargetHandle>>,
    input: SleepInput,
    /// The teardown began: every stream stops at its next completion.
    winding_down: AtomicBool,
}

impl DimtSoakClient {
    /// The targets open now.
    pub(crate) fn open_targets(&self) -> Vec<TargetHandle> {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl DimtClient<Sim> for DimtSoakClient {
    type Target = ();

    fn target_context(&self, _: &Dimt<Sim, Self>, _: TargetHandle, _: &str) {}

    fn on_state_change(
        &self,
        m: &Dimt<Sim, Self>,
        t: TargetHandle,
        _target_context: &Self::Target,
        s: TargetStateType,
    ) -> Status {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match s {
            TargetStateType::Open => {
                self.stats.op("dimt.state.open");
                // DIMT-1: reference -> get -> dereference.
                match m.target_reference(t) {
                    Ok(()) => {
                        let got = m.get(t);
                        self.stats.result("dimt", &got);
                        m.target_dereference(t);
                    }
                    Err(status) => self.stats.status("dimt", status),
                }
                open.push(t);
            }
            TargetStateType::QueryRemoveCancelled => {
                self.stats.op("dimt.state.query_remove_cancelled");
                open.push(t);
            }
            TargetStateType::QueryRemove => {
                self.stats.op("dimt.state.query_remove");
                open.retain(|&o| o != t);
                drop(open);
                // DIMT-6: purge the target so no synchronous send holds up
                // the removal.
                match m.get(t) {
                    Ok(target) => target.purge(true),
                    Err(status) => self.stats.status("dimt", status),
                }
            }
            TargetStateType::QueryRemoveComplete => {
                self.stats.op("dimt.state.query_remove_complete");
                open.retain(|&o| o != t);
            }
            TargetStateType::Close => {
                self.stats.op("dimt.state.close");
                open.retain(|&o| o != t);
            }
            _ => self.stats.op("dimt.state.other"),
        }
        Status::SUCCESS
    }

    fn buffer_input(
        &self,
        m: &Dimt<Sim, Self>,
        _t: TargetHandle,
        _target_context: &Self::Target,
        input: &mut [u8],
        _context: &mut [u8],
    ) -> usize {
        let _ = m.guid_get();
        self.input.fill(input)
    }

    fn buffer_output(
        &self,
        _m: &Dimt<Sim, Self>,
        _t: TargetHandle,
        _target_context: &Self::Target,
        c: StreamCompletion<Sim>,
    ) -> OutputDisposition<Sim> {
        self.stats.status("dimt.stream", c.status);
        self.stats.op("dimt.stream.completion");
        if self.winding_down.load(Ordering::Acquire) {
            self.stats.op("dimt.stream.wound_down");
            return c.module_owns_and_stop();
        }
        c.module_owns_and_continue()
    }
}

fn config(stream: bool, mode: StreamMode, passive: bool) -> DeviceInterfaceMultipleTargetConfig {
    let crt = if stream {
        ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_count_input: 1,
            buffer_input_size: SLEEP_INPUT_SIZE as u32,
            buffer_count_output: 1,
            buffer_output_size: SLEEP_INPUT_SIZE as u32,
            request_type: dmf_wdf::RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_SLEEP,
            continuous_request_target_mode: mode,
            passive_level: passive,
            ..ContinuousRequestTargetConfig::default()
        }
    } else {
        ContinuousRequestTargetConfig {
            passive_level: passive,
            ..ContinuousRequestTargetConfig::default()
        }
    };
    DeviceInterfaceMultipleTargetConfig {
        module_open_option: PnpRegisterWhen::Create,
        continuous_request_target_module_config: crt,
        ..DeviceInterfaceMultipleTargetConfig::new(GUID)
    }
}

/// The four instances.
pub(crate) struct DimtScenario {
    pub(crate) instances: Vec<(
        &'static str,
        DeviceInterfaceMultipleTarget<Sim, DimtSoakClient>,
    )>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl DimtScenario {
    pub(crate) fn new(
        sim: &Sim,
        client: &ClientDevice,
        stats: &Arc<Stats>,
        seed: u64,
    ) -> Result<Self> {
        let specs = [
            (
                "A dispatch input stream",
                config(true, StreamMode::Automatic, false),
            ),
            (
                "B dispatch non-continuous",
                config(false, StreamMode::Manual, false),
            ),
            (
                "C passive manual stream",
                config(true, StreamMode::Manual, true),
            ),
            (
                "D passive non-continuous",
                config(false, StreamMode::Manual, true),
            ),
        ];
        let mut instances = Vec::new();
        for (name, cfg) in specs {
            let c = DimtSoakClient {
                stats: Arc::clone(stats),
                open: Mutex::new(Vec::new()),
                input: SleepInput::new(
                    Arc::clone(stats),
                    seed ^ NEXT.fetch_add(1, Ordering::Relaxed),
                    "dimt.stream",
                ),
                winding_down: AtomicBool::new(false),
            };
            let m = DeviceInterfaceMultipleTarget::new(sim, cfg, c)?;
            client.register(Arc::new(m.device_callbacks()));
            instances.push((name, m));
        }
        Ok(DimtScenario { instances })
    }

    /// DIT-2 "dynamic": a short-lived non-continuous instance (created,
    /// used for one synchronous send, given an asynchronous send, dropped
    /// with I/O possibly in flight).
    pub(crate) fn dynamic(
        sim: &Sim,
        stats: &Arc<Stats>,
        seed: u64,
    ) -> Result<DeviceInterfaceMultipleTarget<Sim, DimtSoakClient>> {
        let c = DimtSoakClient {
            stats: Arc::clone(stats),
            open: Mutex::new(Vec::new()),
            input: SleepInput::new(Arc::clone(stats), seed, "dimt.stream"),
            winding_down: AtomicBool::new(false),
        };
        let m =
            DeviceInterfaceMultipleTarget::new(sim, config(false, StreamMode::Manual, false), c)?;
        sim.bus().flush()?;
        Ok(m)
    }

    pub(crate) fn describe(&self) -> String {
        self.instances
            .iter()
            .map(|(n, m)| {
                format!(
                    "{} tracked {} open {}",
                    &n[..1],
                    m.target_count(),
                    m.open_target_count()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The teardown begins: every instance's streams stop resending (each
    /// retires at its next completion, as a client winding down answers
    /// `…AndStop`), so they all drain at once before the targets close.
    pub(crate) fn wind_down(&self) {
        for (_, m) in &self.instances {
            m.client().winding_down.store(true, Ordering::Release);
        }
    }

    /// Open targets over all instances (DMF's `NumberOfTargetsOpened`).
    pub(crate) fn open_targets(&self) -> usize {
        self.instances
            .iter()
            .map(|(_, m)| m.open_target_count())
            .sum()
    }
}
