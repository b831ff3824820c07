//! Forwarding the client device's PnP and power callbacks to a layer.
//!
//! A KMDF driver registers `EvtDevicePrepareHardware`,
//! `EvtDeviceReleaseHardware`, `EvtDeviceD0Entry` and `EvtDeviceD0Exit` in its
//! `WDF_PNPPOWER_EVENT_CALLBACKS` and forwards each to the
//! [`DeviceCallbacks`] of the layers it hosts with these helpers. They take
//! and return the raw values (`WDF_POWER_DEVICE_STATE` and `NTSTATUS` are both
//! `i32` in `wdk-sys`), so they are host-independent and tested everywhere:
//!
//! ```ignore
//! // In the driver (Windows):
//! extern "C" fn evt_device_d0_entry(device: WDFDEVICE, previous: WDF_POWER_DEVICE_STATE) -> NTSTATUS {
//!     let layers: &dyn DeviceCallbacks = device_context(device).layers();
//!     dmf_kmdf::device_callbacks::d0_entry(layers, previous)
//! }
//! ```
//!
//! | WDF callback | helper | seam method |
//! |---|---|---|
//! | `EvtDevicePrepareHardware(Device, ResourcesRaw, ResourcesTranslated)` | [`prepare_hardware`] | [`DeviceCallbacks::prepare_hardware`] |
//! | `EvtDeviceReleaseHardware(Device, ResourcesTranslated)` | [`release_hardware`] | [`DeviceCallbacks::release_hardware`] |
//! | `EvtDeviceD0Entry(Device, PreviousState)` | [`d0_entry`] | [`DeviceCallbacks::d0_entry`] |
//! | `EvtDeviceD0Exit(Device, TargetState)` | [`d0_exit`] | [`DeviceCallbacks::d0_exit`] |
//!
//! Teardown order matters on Windows: every object a [`KmdfPlatform`] creates
//! is a child of the client `WDFDEVICE`, so the layers must be dropped before
//! the device is deleted — at the latest in `EvtDeviceReleaseHardware` or
//! `EvtDeviceSelfManagedIoCleanup`, never in the device's own
//! `EvtCleanupCallback` (WDF has already deleted the children by then).
//!
//! [`KmdfPlatform`]: crate#windows-only-items

use dmf_wdf::{DeviceCallbacks, Status};

use crate::convert::power_state_from_raw;

/// `EvtDevicePrepareHardware`: calls [`DeviceCallbacks::prepare_hardware`]
/// and returns its status as an `NTSTATUS`.
///
/// ```
/// struct Nop;
/// impl dmf_wdf::DeviceCallbacks for Nop {}
/// assert_eq!(dmf_kmdf::device_callbacks::prepare_hardware(&Nop), 0);
/// ```
pub fn prepare_hardware(callbacks: &dyn DeviceCallbacks) -> i32 {
    Status::from_result(callbacks.prepare_hardware()).raw()
}

/// `EvtDeviceReleaseHardware`: calls [`DeviceCallbacks::release_hardware`].
pub fn release_hardware(callbacks: &dyn DeviceCallbacks) -> i32 {
    Status::from_result(callbacks.release_hardware()).raw()
}

/// `EvtDeviceD0Entry`: maps the raw `WDF_POWER_DEVICE_STATE` the device is
/// leaving (`WdfPowerDeviceD3Final` on the first power-up) and calls
/// [`DeviceCallbacks::d0_entry`].
pub fn d0_entry(callbacks: &dyn DeviceCallbacks, previous_state: i32) -> i32 {
    Status::from_result(callbacks.d0_entry(power_state_from_raw(previous_state))).raw()
}

/// `EvtDeviceD0Exit`: maps the raw `WDF_POWER_DEVICE_STATE` the device is
/// entering (`WdfPowerDeviceD3Final` on removal) and calls
/// [`DeviceCallbacks::d0_exit`]. WDF ignores a failure here except under
/// the verifier; it is returned unchanged.
pub fn d0_exit(callbacks: &dyn DeviceCallbacks, target_state: i32) -> i32 {
    Status::from_result(callbacks.d0_exit(power_state_from_raw(target_state))).raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmf_wdf::{PowerState, Result};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<&'static str>>,
        states: Mutex<Vec<PowerState>>,
        fail_d0_entry: bool,
    }

    impl Recorder {
        fn log(&self, what: &'static str) {
            self.seen.lock().unwrap().push(what);
        }
    }

    impl DeviceCallbacks for Recorder {
        fn prepare_hardware(&self) -> Result<()> {
            self.log("prepare");
            Ok(())
        }
        fn release_hardware(&self) -> Result<()> {
            self.log("release");
            Err(Status::DEVICE_BUSY)
        }
        fn d0_entry(&self, previous: PowerState) -> Result<()> {
            self.log("d0_entry");
            self.states.lock().unwrap().push(previous);
            if self.fail_d0_entry {
                Err(Status::DEVICE_NOT_READY)
            } else {
                Ok(())
            }
        }
        fn d0_exit(&self, target: PowerState) -> Result<()> {
            self.log("d0_exit");
            self.states.lock().unwrap().push(target);
            Ok(())
        }
    }

    #[test]
    fn forwards_and_maps() {
        let r = Recorder::default();
        assert_eq!(prepare_hardware(&r), 0);
        assert_eq!(d0_entry(&r, 5), 0);
        assert_eq!(d0_exit(&r, 4), 0);
        assert_eq!(d0_entry(&r, 4), 0);
        assert_eq!(d0_exit(&r, 5), 0);
        assert_eq!(release_hardware(&r), Status::DEVICE_BUSY.raw());
        assert_eq!(
            *r.seen.lock().unwrap(),
            ["prepare", "d0_entry", "d0_exit", "d0_entry", "d0_exit", "release"]
        );
        assert_eq!(
            *r.states.lock().unwrap(),
            [
                PowerState::D3Final,
                PowerState::D3,
                PowerState::D3,
                PowerState::D3Final
            ]
        );
    }

    #[test]
    fn failures_come_back_as_ntstatus() {
        let r = Recorder {
            fail_d0_entry: true,
            ..Recorder::default()
        };
        assert_eq!(d0_entry(&r, 5), 0xC000_00A3_u32 as i32);
    }

    #[test]
    fn defaults_succeed() {
        struct Nop;
        impl DeviceCallbacks for Nop {}
        assert_eq!(prepare_hardware(&Nop), 0);
        assert_eq!(release_hardware(&Nop), 0);
        assert_eq!(d0_entry(&Nop, 1), 0);
        assert_eq!(d0_exit(&Nop, 6), 0);
    }
}
