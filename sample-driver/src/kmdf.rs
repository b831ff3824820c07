//! The KMDF shell of the driver (Windows MSVC, or a host with the
//! `emulation` feature over `dmf-kmdf-emu`). Everything KMDF is in
//! `dmf_kmdf::shell`: `DriverEntry`, `EvtDriverDeviceAdd` (device, context,
//! device interface, default queue), the PnP/power forwarding to
//! [`SampleDriver`]'s `DeviceCallbacks`, `EvtIoDeviceControl`, the
//! allocator and the bug-checking panic handler. This file only says what
//! the driver is.
//!
//! Type-checked, linted and documented for x64 and ARM64 Windows on Linux by
//! `cargo xtask check-windows`; linked as a driver only on Windows, and run
//! on Linux over the emulated KMDF (`cargo run -p dmf-kmdf-emu --example
//! driver`).

use alloc::sync::Arc;
use core::ffi::CStr;

use dmf_kmdf::shell::{KmdfDriver, Parameters};
use dmf_kmdf::KmdfPlatform;
use dmf_wdf::{Guid, Result};

use crate::ioctl::GUID_DEVINTERFACE_SAMPLE_DRIVER;
use crate::stats::Statistics;
use crate::{SampleConfig, SampleDriver};

impl KmdfDriver for SampleDriver<KmdfPlatform> {
    const NAME: &'static CStr = crate::identity::SERVICE_NAME_C;
    const DEVICE_INTERFACE: Option<Guid> = Some(GUID_DEVINTERFACE_SAMPLE_DRIVER);
    type Config = SampleConfig;
    type Shared = Arc<Statistics<KmdfPlatform>>;

    /// `RequestsPerTarget`, `OutputBufferSize`, `StreamedIoctl` (see
    /// [`crate::driver::SETTINGS`] and the INX's `Parameters` AddReg).
    fn config(parameters: &Parameters<'_>) -> SampleConfig {
        SampleConfig::from_settings(|setting| parameters.read(setting))
    }

    fn create(platform: KmdfPlatform, config: &SampleConfig) -> Result<Self> {
        SampleDriver::new(platform, *config)
    }

    fn shared(&self) -> Self::Shared {
        self.shared_statistics()
    }

    /// The driver's IOCTLs take no input: only the output buffer is used.
    fn device_control(shared: &Self::Shared, code: u32, output: &mut [u8]) -> Result<usize> {
        crate::ioctl::handle_ioctl(shared, code, &[], output)
    }
}

dmf_kmdf::kmdf_driver!(SampleDriver<KmdfPlatform>);
