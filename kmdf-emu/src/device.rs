//! The device: `WdfDeviceInitSetPnpPowerEventCallbacks`, `WdfDeviceCreate`,
//! `WdfDeviceGetDriver`, `WdfDeviceCreateDeviceInterface`, the object
//! functions (`WdfObjectGetTypedContextWorker`, `WdfObjectDelete`), and the
//! PnP/power sequence the framework drives ([`Device`]).

use std::sync::Mutex;

use dmf_sim::ClientDevice;
use dmf_wdf::{DeviceCallbacks, PowerState, Status};
use wdk_sys::*;

use crate::kernel::assert_passive;
use crate::object::{self, create, get_live, lock, Attributes, Kind};
use crate::queue::IoControl;

/// `WDFDEVICE`.
pub(crate) struct DeviceData {
    interfaces: Mutex<Vec<GUID>>,
    /// The default queue (0 until `WdfIoQueueCreate`).
    pub(crate) queue: Mutex<usize>,
}

/// What `WDFDEVICE_INIT` holds until `WdfDeviceCreate` consumes it.
pub(crate) struct DeviceInit {
    pub(crate) driver: usize,
    pub(crate) callbacks: WDF_PNPPOWER_EVENT_CALLBACKS,
}

/// Checks the `Size` of a WDF structure like the framework does.
#[track_caller]
pub(crate) fn check_size<T>(size: u32, function: &str, what: &str) {
    assert_eq!(
        size as usize,
        size_of::<T>(),
        "{function}: {what}.Size is {size}, not sizeof({what})"
    );
}

pub(crate) unsafe extern "C" fn wdf_device_init_set_pnp_power_event_callbacks(
    _globals: PWDF_DRIVER_GLOBALS,
    init: PWDFDEVICE_INIT,
    callbacks: PWDF_PNPPOWER_EVENT_CALLBACKS,
) {
    const F: &str = "WdfDeviceInitSetPnpPowerEventCallbacks";
    assert!(
        !init.is_null() && !callbacks.is_null(),
        "{F}: NULL argument"
    );
    // SAFETY: caller contract.
    let callbacks = unsafe { *callbacks };
    check_size::<WDF_PNPPOWER_EVENT_CALLBACKS>(callbacks.Size, F, "WDF_PNPPOWER_EVENT_CALLBACKS");
    // SAFETY: `init` is the DeviceInit the emulation handed to EvtDriverDeviceAdd.
    unsafe { (*init.cast::<DeviceInit>()).callbacks = callbacks };
}

pub(crate) unsafe extern "C" fn wdf_device_create(
    _globals: PWDF_DRIVER_GLOBALS,
    init: *mut PWDFDEVICE_INIT,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    device: *mut WDFDEVICE,
) -> NTSTATUS {
    const F: &str = "WdfDeviceCreate";
    assert_passive(F);
    assert!(!init.is_null() && !device.is_null(), "{F}: NULL argument");
    // SAFETY: caller contract.
    let raw_init = unsafe { init.read() };
    assert!(
        !raw_init.is_null(),
        "{F}: the WDFDEVICE_INIT was already consumed"
    );
    // SAFETY: the DeviceInit the emulation made for EvtDriverDeviceAdd.
    let device_init = unsafe { &*raw_init.cast::<DeviceInit>() };
    // SAFETY: caller contract.
    let mut attributes = unsafe { Attributes::read(attributes, F) };
    assert!(
        attributes.parent.is_null(),
        "{F}: a device has no parent object"
    );
    // The framework parents a device to its driver.
    attributes.parent = device_init.driver as WDFOBJECT;
    let object = create(
        Kind::Device(DeviceData {
            interfaces: Mutex::new(Vec::new()),
            queue: Mutex::new(0),
        }),
        &attributes,
    );
    // WdfDeviceCreate consumes the init structure and NULLs the caller's
    // pointer on success.
    // SAFETY: caller contract.
    unsafe { init.write(std::ptr::null_mut()) };
    // SAFETY: caller contract.
    unsafe { device.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_device_get_driver(
    _globals: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
) -> WDFDRIVER {
    let object = get_live(device.cast(), "WdfDeviceGetDriver");
    assert!(
        matches!(object.kind, Kind::Device(_)),
        "WdfDeviceGetDriver: {object:?} is not a WDFDEVICE"
    );
    object.parent().cast()
}

pub(crate) unsafe extern "C" fn wdf_device_create_device_interface(
    _globals: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
    class: *const GUID,
    reference: PCUNICODE_STRING,
) -> NTSTATUS {
    const F: &str = "WdfDeviceCreateDeviceInterface";
    assert_passive(F);
    assert!(
        reference.is_null(),
        "{F}: reference strings are not emulated"
    );
    let object = get_live(device.cast(), F);
    let Kind::Device(d) = &object.kind else {
        panic!("{F}: {object:?} is not a WDFDEVICE");
    };
    // SAFETY: caller contract.
    lock(&d.interfaces).push(unsafe { class.read() });
    0
}

pub(crate) unsafe extern "C" fn wdf_object_get_typed_context_worker(
    _globals: PWDF_DRIVER_GLOBALS,
    handle: WDFOBJECT,
    type_info: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
) -> PVOID {
    object::typed_context(handle, type_info)
}

pub(crate) unsafe extern "C" fn wdf_object_delete(
    _globals: PWDF_DRIVER_GLOBALS,
    handle: WDFOBJECT,
) {
    let object = object::get_live(handle, "WdfObjectDelete");
    // Objects the framework owns cannot be deleted by the driver.
    assert!(
        !matches!(
            object.kind,
            Kind::Driver(_) | Kind::Device(_) | Kind::Queue(_) | Kind::Incoming(_)
        ),
        "WdfObjectDelete: {object:?} is deleted by the framework, not the driver"
    );
    drop(object);
    object::delete(handle, "WdfObjectDelete");
}

/// The DeviceCallbacks adapter: the device's PnP/power callbacks as the
/// simulator's client device calls them.
pub(crate) struct PnpPower {
    pub(crate) device: usize,
    pub(crate) callbacks: WDF_PNPPOWER_EVENT_CALLBACKS,
}

// SAFETY: the callbacks are plain functions; the device handle is a value.
unsafe impl Send for PnpPower {}
// SAFETY: as above.
unsafe impl Sync for PnpPower {}

fn result(nt: NTSTATUS) -> dmf_wdf::Result<()> {
    Status::from_raw(nt).ok()
}

impl DeviceCallbacks for PnpPower {
    fn prepare_hardware(&self) -> dmf_wdf::Result<()> {
        match self.callbacks.EvtDevicePrepareHardware {
            // SAFETY: the driver's callback on its live device; no resources.
            Some(f) => result(unsafe {
                f(
                    self.device as WDFDEVICE,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }),
            None => Ok(()),
        }
    }

    fn release_hardware(&self) -> dmf_wdf::Result<()> {
        match self.callbacks.EvtDeviceReleaseHardware {
            // SAFETY: as above.
            Some(f) => result(unsafe { f(self.device as WDFDEVICE, std::ptr::null_mut()) }),
            None => Ok(()),
        }
    }

    fn d0_entry(&self, previous: PowerState) -> dmf_wdf::Result<()> {
        match self.callbacks.EvtDeviceD0Entry {
            // SAFETY: as above; the seam's power states have WDF's values.
            Some(f) => result(unsafe { f(self.device as WDFDEVICE, previous as u32 as i32) }),
            None => Ok(()),
        }
    }

    fn d0_exit(&self, target: PowerState) -> dmf_wdf::Result<()> {
        match self.callbacks.EvtDeviceD0Exit {
            // SAFETY: as above.
            Some(f) => result(unsafe { f(self.device as WDFDEVICE, target as u32 as i32) }),
            None => Ok(()),
        }
    }
}

/// The client device a driver created in its `EvtDriverDeviceAdd`, as the
/// framework drives it: PnP start and stop, power transitions, IOCTLs to its
/// default queue, removal.
pub struct Device {
    pub(crate) handle: WDFDEVICE,
    pub(crate) client: ClientDevice,
    pub(crate) removed: bool,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("handle", &self.handle)
            .field("state", &self.client.state())
            .finish()
    }
}

impl Device {
    /// The `WDFDEVICE`.
    pub fn handle(&self) -> WDFDEVICE {
        self.handle
    }

    /// The device interfaces the driver created.
    pub fn interfaces(&self) -> Vec<dmf_wdf::Guid> {
        let object = get_live(self.handle.cast(), "Device::interfaces");
        let Kind::Device(d) = &object.kind else {
            unreachable!()
        };
        let interfaces = lock(&d.interfaces);
        interfaces
            .iter()
            .map(|g| dmf_wdf::Guid {
                data1: g.Data1,
                data2: g.Data2,
                data3: g.Data3,
                data4: g.Data4,
            })
            .collect()
    }

    /// PnP start: `EvtDevicePrepareHardware`, then `EvtDeviceD0Entry(D3Final)`.
    pub fn start(&self) -> dmf_wdf::Result<()> {
        self.client.start()
    }

    /// `EvtDeviceD0Exit(D3)`.
    pub fn power_down(&self) -> dmf_wdf::Result<()> {
        self.client.power_down()
    }

    /// `EvtDeviceD0Entry(D3)`.
    pub fn power_up(&self) -> dmf_wdf::Result<()> {
        self.client.power_up()
    }

    /// PnP stop: `EvtDeviceD0Exit(D3Final)` (if in D0), then
    /// `EvtDeviceReleaseHardware`.
    pub fn stop(&self) -> dmf_wdf::Result<()> {
        self.client.stop()
    }

    /// Sends `IRP_MJ_DEVICE_CONTROL` with `code` and an output buffer of
    /// `output_len` bytes to the default queue's `EvtIoDeviceControl`, on
    /// this thread at `PASSIVE_LEVEL`, and returns the completion status and
    /// the output (truncated to the `Information` the driver reported).
    pub fn device_control(&self, code: u32, output_len: usize) -> (Status, Vec<u8>) {
        self.io_control().send(code, output_len)
    }

    /// A handle that sends IOCTLs to the device's default queue from any
    /// thread, also while the device changes power state or is removed
    /// (then it gets `STATUS_DELETE_PENDING`).
    pub fn io_control(&self) -> IoControl {
        let object = get_live(self.handle.cast(), "Device::io_control");
        let Kind::Device(d) = &object.kind else {
            unreachable!()
        };
        let queue = *lock(&d.queue);
        assert!(queue != 0, "the driver created no default queue");
        IoControl {
            queue: object::get_live(queue as WDFOBJECT, "Device::io_control"),
        }
    }

    /// Surprise-less removal: stop (if started), then the framework deletes
    /// the device (children first, then its cleanup callback).
    pub fn remove(mut self) -> dmf_wdf::Result<()> {
        let stopped = match self.client.state() {
            dmf_sim::ClientState::Stopped => Ok(()),
            _ => self.client.stop(),
        };
        self.delete();
        stopped
    }

    fn delete(&mut self) {
        if !self.removed {
            self.removed = true;
            let object = get_live(self.handle.cast(), "device removal");
            let Kind::Device(d) = &object.kind else {
                unreachable!()
            };
            let queue = *lock(&d.queue);
            if queue != 0 {
                let queue = get_live(queue as WDFOBJECT, "device removal");
                let Kind::Queue(q) = &queue.kind else {
                    unreachable!()
                };
                q.purge_and_wait();
            }
            drop(object);
            object::delete(self.handle.cast(), "device removal");
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if !self.removed && !std::thread::panicking() {
            if self.client.state() != dmf_sim::ClientState::Stopped {
                let _ = self.client.stop();
            }
            self.delete();
        }
    }
}
