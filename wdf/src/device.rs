//! The client device's PnP and power transitions.
//!
//! A DMF module hooks its parent device's `EvtDevicePrepareHardware`,
//! `EvtDeviceReleaseHardware`, `EvtDeviceD0Entry` and `EvtDeviceD0Exit`.
//! Here a layer implements [`DeviceCallbacks`] and the client device (the KMDF
//! driver's callbacks, or the simulator's client device) calls it.

use crate::Result;

/// A device power state (`WDF_POWER_DEVICE_STATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PowerState {
    /// Working.
    D0 = 1,
    /// Low power 1.
    D1 = 2,
    /// Low power 2.
    D2 = 3,
    /// Off.
    D3 = 4,
    /// Off for removal, or before the first power-up (`WdfPowerDeviceD3Final`).
    D3Final = 5,
}

/// Callbacks a layer receives from its client device.
///
/// Defaults do nothing and succeed.
pub trait DeviceCallbacks: Send + Sync {
    /// `EvtDevicePrepareHardware`.
    fn prepare_hardware(&self) -> Result<()> {
        Ok(())
    }
    /// `EvtDeviceReleaseHardware`.
    fn release_hardware(&self) -> Result<()> {
        Ok(())
    }
    /// `EvtDeviceD0Entry`; `previous` is `D3Final` on the first power-up.
    fn d0_entry(&self, previous: PowerState) -> Result<()> {
        let _ = previous;
        Ok(())
    }
    /// `EvtDeviceD0Exit`; `target` is `D3Final` when the device is being removed.
    fn d0_exit(&self, target: PowerState) -> Result<()> {
        let _ = target;
        Ok(())
    }
}
