//! The driver logic, written once for every platform: a
//! `DeviceInterfaceMultipleTarget` client that streams an IOCTL to every
//! device exposing the sample interface and counts what completes.
//!
//! | what | KMDF (src/kmdf.rs) | host run (dmf-sim) |
//! |---|---|---|
//! | [`SampleDriver::new`] | `EvtDriverDeviceAdd`, after `WdfDeviceCreate` | at start |
//! | [`DeviceCallbacks`] of [`SampleDriver`] | `EvtDevicePrepareHardware` / `ReleaseHardware` / `D0Entry` / `D0Exit` | the simulated client device |
//! | [`SampleDriver::handle_ioctl`] | `EvtIoDeviceControl` of the default queue | the live view, every 0.5 s |
//!
//! ## Policy
//!
//! * Every interface instance of [`SampleConfig::interface_guid`] is opened
//!   (read/write, shared) and streams [`SampleConfig::requests_per_target`]
//!   requests of [`SampleConfig::ioctl`] with a
//!   [`SampleConfig::output_size`]-byte output buffer, re-sent on completion
//!   (DMF `ContinuousRequestTarget`, automatic mode).
//! * Targets follow the driver's own power state
//!   ([`PnpRegisterWhen::D0Entry`]): leaving D0 closes every target
//!   (cancelling their requests), entering D0 reopens every interface
//!   present. The driver never touches its devices while powered down.
//! * Query-removes are accepted; a target whose removal is cancelled (vetoed
//!   by someone else) is reopened and streams again.
//! * Every completion is counted, including those that arrive while a
//!   target stops (`deliver_completions_during_stop`), so the figures add up
//!   to exactly what the devices completed.

use alloc::sync::Arc;

use dmf_continuous_request_target::{
    Backoff, ContinuousRequestTargetConfig, OutputDisposition, StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    DimtDeviceCallbacks, PnpRegisterWhen, TargetHandle, TargetStateType,
};
use dmf_kmdf::parameters::UlongSetting;
use dmf_wdf::{DeviceCallbacks, Guid, Platform, PowerState, RequestType, Result, Status};

use crate::ioctl::{ctl_code, FILE_DEVICE_UNKNOWN, METHOD_BUFFERED};
use crate::stats::{Statistics, TargetState, TargetStats};

/// DMF's `GUID_DEVINTERFACE_Tests_IoctlHandler`
/// (`{FD9FF0B7-029F-4D1E-94DA-8D8CC2BD40CF}`): the interface followed by default.
pub const GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER: Guid =
    Guid::from_u128(0xFD9F_F0B7_029F_4D1E_94DA_8D8C_C2BD_40CF);

/// DMF's `IOCTL_Tests_IoctlHandler_ZEROBUFFER`: the device zeroes the output
/// buffer and completes after a short random delay. Streamed by default.
pub const IOCTL_TESTS_ZEROBUFFER: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 4001, METHOD_BUFFERED, 0x0002);

/// What the driver follows and streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleConfig {
    /// Device interface class to follow.
    pub interface_guid: Guid,
    /// IOCTL streamed to every target (`IRP_MJ_DEVICE_CONTROL`).
    pub ioctl: u32,
    /// Output buffer size of each request, bytes.
    pub output_size: u32,
    /// Requests kept in flight per target.
    pub requests_per_target: u32,
}

impl Default for SampleConfig {
    /// The `Tests_IoctlHandler` interface and every setting's default:
    /// `ZEROBUFFER` with 4 KiB buffers, 4 requests per target.
    fn default() -> Self {
        SampleConfig::from_settings(|s| s.default)
    }
}

/// `RequestsPerTarget` under the service's `Parameters` key: requests kept
/// in flight per target, 1 to 64 (default 4).
pub const REQUESTS_PER_TARGET: UlongSetting = UlongSetting {
    name: "RequestsPerTarget",
    default: 4,
    min: 1,
    max: 64,
};

/// `OutputBufferSize`: bytes of each request's output buffer, 16 to 65536
/// (default 4096).
pub const OUTPUT_BUFFER_SIZE: UlongSetting = UlongSetting {
    name: "OutputBufferSize",
    default: 4096,
    min: 16,
    max: 65536,
};

/// `StreamedIoctl`: the IOCTL code streamed to every target, any value but 0
/// (default `IOCTL_Tests_IoctlHandler_ZEROBUFFER`).
pub const STREAMED_IOCTL: UlongSetting = UlongSetting {
    name: "StreamedIoctl",
    default: IOCTL_TESTS_ZEROBUFFER,
    min: 1,
    max: u32::MAX,
};

/// Every setting the driver reads from its `Parameters` key (documented in
/// `sample_driver.inx`, which shows how to set them).
pub const SETTINGS: [UlongSetting; 3] = [REQUESTS_PER_TARGET, OUTPUT_BUFFER_SIZE, STREAMED_IOCTL];

impl SampleConfig {
    /// The configuration from the driver's settings: `read` returns the
    /// validated value of each [`UlongSetting`] (the KMDF shell's
    /// `Parameters::read` reads the registry, falls back to the default for
    /// an absent or out-of-range value and logs the latter). The interface
    /// followed is always [`GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER`].
    ///
    /// ```
    /// use sample_driver::driver::{SampleConfig, REQUESTS_PER_TARGET};
    /// let raw = |name: &str| (name == "RequestsPerTarget").then_some(0u32); // out of range
    /// let config = SampleConfig::from_settings(|s| s.resolve(raw(s.name)).0);
    /// assert_eq!(config, SampleConfig::default());
    /// ```
    pub fn from_settings(mut read: impl FnMut(&UlongSetting) -> u32) -> Self {
        SampleConfig {
            interface_guid: GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
            ioctl: read(&STREAMED_IOCTL),
            output_size: read(&OUTPUT_BUFFER_SIZE),
            requests_per_target: read(&REQUESTS_PER_TARGET),
        }
    }

    /// The DIMT configuration this driver uses.
    pub fn dimt_config(&self) -> DeviceInterfaceMultipleTargetConfig {
        DeviceInterfaceMultipleTargetConfig {
            module_open_option: PnpRegisterWhen::D0Entry,
            continuous_request_target_module_config: ContinuousRequestTargetConfig {
                continuous_request_count: self.requests_per_target,
                buffer_count_output: self.requests_per_target,
                buffer_output_size: self.output_size,
                request_type: RequestType::Ioctl,
                continuous_request_target_ioctl: self.ioctl,
                continuous_request_target_mode: StreamMode::Automatic,
                deliver_completions_during_stop: true,
                backoff: Backoff {
                    initial_ms: 1,
                    max_ms: 100,
                },
                ..ContinuousRequestTargetConfig::default()
            },
            ..DeviceInterfaceMultipleTargetConfig::new(self.interface_guid)
        }
    }
}

/// The DIMT client: each target's statistics are its per-target context.
pub struct SampleClient<P: Platform> {
    stats: Arc<Statistics<P>>,
}

impl<P: Platform> DimtClient<P> for SampleClient<P> {
    /// The target's figures (shared with the statistics' history, which
    /// outlives the target).
    type Target = Arc<TargetStats>;

    fn target_context(
        &self,
        _module: &Dimt<P, Self>,
        _target: TargetHandle,
        symbolic_link: &str,
    ) -> Arc<TargetStats> {
        self.stats.target_opened(symbolic_link)
    }

    fn on_state_change(
        &self,
        _module: &Dimt<P, Self>,
        _target: TargetHandle,
        stats: &Arc<TargetStats>,
        state: TargetStateType,
    ) -> Status {
        let new = match state {
            TargetStateType::QueryRemove => TargetState::QueryRemoved,
            TargetStateType::QueryRemoveCancelled => TargetState::Open,
            TargetStateType::QueryRemoveComplete => TargetState::Removed,
            TargetStateType::Close => TargetState::Closed,
            _ => return Status::SUCCESS,
        };
        self.stats.set_state(stats, new);
        Status::SUCCESS
    }

    fn buffer_output(
        &self,
        _module: &Dimt<P, Self>,
        _target: TargetHandle,
        stats: &Arc<TargetStats>,
        completion: StreamCompletion<P>,
    ) -> OutputDisposition<P> {
        // Completion context: atomics only.
        self.stats
            .record_completion(stats, completion.status, completion.information);
        // Keep streaming after a failure too: the CRT backs off, and a target
        // that is going away is stopped by DIMT.
        completion.module_owns_and_continue()
    }
}

/// The sample driver: one per driver device (`WDFDEVICE`).
pub struct SampleDriver<P: Platform> {
    stats: Arc<Statistics<P>>,
    dimt: DeviceInterfaceMultipleTarget<P, SampleClient<P>>,
    dimt_callbacks: DimtDeviceCallbacks<P, SampleClient<P>>,
}

impl<P: Platform> SampleDriver<P> {
    /// Creates the driver logic on `platform`. Nothing is opened until the
    /// device enters D0 (see [`DeviceCallbacks`]). Passive level.
    ///
    /// Errors: the platform's (allocation, event creation) and
    /// `STATUS_INVALID_PARAMETER` for a configuration DIMT refuses.
    pub fn new(platform: P, config: SampleConfig) -> Result<Self> {
        let stats = Arc::new(Statistics::new(platform.clone()));
        let client = SampleClient {
            stats: Arc::clone(&stats),
        };
        let dimt = DeviceInterfaceMultipleTarget::new(&platform, config.dimt_config(), client)?;
        stats.set_recorder(Arc::clone(dimt.journal().recorder()));
        let dimt_callbacks = dimt.device_callbacks();
        Ok(SampleDriver {
            stats,
            dimt,
            dimt_callbacks,
        })
    }

    /// Serves one of the driver's IOCTLs ([`crate::ioctl`]): writes the reply
    /// into `output`, returns its length.
    pub fn handle_ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        crate::ioctl::handle_ioctl(&self.stats, code, input, output)
    }

    /// The figures.
    pub fn statistics(&self) -> &Statistics<P> {
        &self.stats
    }

    /// The figures, shared: an IOCTL path can keep them while the driver
    /// logic is being dropped (dropping them is allowed at any IRQL up to
    /// `DISPATCH_LEVEL`, unlike dropping the driver logic).
    pub fn shared_statistics(&self) -> Arc<Statistics<P>> {
        Arc::clone(&self.stats)
    }

    /// The DIMT module (its methods take the handles the client sees).
    pub fn module(&self) -> &Dimt<P, SampleClient<P>> {
        &self.dimt
    }
}

/// The driver device's PnP/power callbacks: forwarded to DIMT (which opens
/// targets in D0 entry and closes them in D0 exit), plus the power state in
/// the figures.
impl<P: Platform> DeviceCallbacks for SampleDriver<P> {
    fn prepare_hardware(&self) -> Result<()> {
        self.dimt_callbacks.prepare_hardware()
    }

    fn release_hardware(&self) -> Result<()> {
        self.dimt_callbacks.release_hardware()
    }

    fn d0_entry(&self, previous: PowerState) -> Result<()> {
        self.dimt_callbacks.d0_entry(previous)?;
        self.stats.set_powered(true);
        Ok(())
    }

    fn d0_exit(&self, target: PowerState) -> Result<()> {
        let result = self.dimt_callbacks.d0_exit(target);
        self.stats.set_powered(false);
        result
    }
}
