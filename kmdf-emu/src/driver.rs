//! The driver: `WdfDriverCreate`, `WdfDriverWdmGetDriverObject`, and how
//! the framework loads a driver, adds its devices and unloads it
//! ([`Machine::load_driver`], [`Machine::add_device`],
//! [`Machine::bare_device`], [`Machine::unload_driver`]).

use std::sync::{Arc, Mutex};

use dmf_sim::ClientDevice;
use dmf_wdf::Status;
use wdk_sys::*;

use crate::kernel::assert_passive;
use crate::machine::Machine;
use crate::object::{self, create, get_live, lock, Attributes, Kind, Object};

use crate::device::{check_size, wdf_device_create, Device, DeviceInit, PnpPower};

/// `WDFDRIVER`.
pub(crate) struct DriverData {
    device_add: PFN_WDF_DRIVER_DEVICE_ADD,
    driver_object: PDRIVER_OBJECT,
}

/// The driver's `WDFDRIVER` (created by `WdfDriverCreate`; one per
/// machine, forgotten when the machine ends).
pub(crate) static DRIVER: Mutex<usize> = Mutex::new(0);

pub(crate) unsafe extern "C" fn wdf_driver_create(
    _globals: PWDF_DRIVER_GLOBALS,
    driver_object: PDRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    config: PWDF_DRIVER_CONFIG,
    driver: *mut WDFDRIVER,
) -> NTSTATUS {
    const F: &str = "WdfDriverCreate";
    assert_passive(F);
    assert!(
        !driver_object.is_null() && !registry_path.is_null(),
        "{F}: NULL argument"
    );
    assert!(!config.is_null(), "{F}: NULL config");
    // SAFETY: caller contract.
    let config = unsafe { &*config };
    check_size::<WDF_DRIVER_CONFIG>(config.Size, F, "WDF_DRIVER_CONFIG");
    let mut slot = lock(&DRIVER);
    assert!(
        *slot == 0,
        "{F}: called twice (one driver object per driver)"
    );
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let object = create(
        Kind::Driver(DriverData {
            device_add: config.EvtDriverDeviceAdd,
            driver_object,
        }),
        &attributes,
    );
    *slot = object.handle() as usize;
    if !driver.is_null() {
        // SAFETY: caller contract (WDF_NO_HANDLE or a writable handle).
        unsafe { driver.write(object.handle().cast()) };
    }
    0
}

pub(crate) unsafe extern "C" fn wdf_driver_wdm_get_driver_object(
    _globals: PWDF_DRIVER_GLOBALS,
    driver: WDFDRIVER,
) -> PDRIVER_OBJECT {
    let object = get_live(driver.cast(), "WdfDriverWdmGetDriverObject");
    match &object.kind {
        Kind::Driver(d) => d.driver_object,
        _ => panic!("WdfDriverWdmGetDriverObject: {object:?} is not a WDFDRIVER"),
    }
}

/// A driver's `DriverEntry` as the emulation calls it.
pub type DriverEntry =
    unsafe extern "C" fn(driver: *mut DRIVER_OBJECT, registry_path: PCUNICODE_STRING) -> NTSTATUS;

impl Machine {
    /// Loads a driver: calls its `DriverEntry` with a driver object and the
    /// service's registry path (`\Registry\Machine\System\CurrentControlSet\Services\<service>`).
    /// The driver must call `WdfDriverCreate`.
    ///
    /// # Safety
    ///
    /// `entry` must be a driver's `DriverEntry` built on the emulated WDF.
    pub unsafe fn load_driver(&self, entry: DriverEntry, service: &str) -> Status {
        assert!(*lock(&DRIVER) == 0, "a driver is already loaded");
        let path = format!(r"\Registry\Machine\System\CurrentControlSet\Services\{service}");
        let mut units: Vec<u16> = path.encode_utf16().collect();
        let bytes = (units.len() * 2) as u16;
        let registry_path = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: units.as_mut_ptr(),
        };
        let driver_object = self.driver_object();
        // SAFETY: caller contract; the driver object lives as long as the
        // machine, the path for the call.
        let status = unsafe { entry(driver_object, &registry_path) };
        let status = Status::from_raw(status);
        if status.is_success() {
            assert!(
                *lock(&DRIVER) != 0,
                "DriverEntry succeeded without WdfDriverCreate"
            );
        }
        status
    }

    /// The machine's `DRIVER_OBJECT` (one driver per machine).
    fn driver_object(&self) -> PDRIVER_OBJECT {
        self.state().driver_object()
    }

    /// A driver without `DriverEntry` (the framework's objects only), for
    /// code that needs a `WDFDRIVER` and a `WDFDEVICE` but no driver shell:
    /// `WdfDriverCreate` through the table.
    fn create_bare_driver(&self) -> WDFDRIVER {
        let mut config = WDF_DRIVER_CONFIG {
            Size: size_of::<WDF_DRIVER_CONFIG>() as u32,
            ..WDF_DRIVER_CONFIG::default()
        };
        let path = UNICODE_STRING::default();
        let mut driver: WDFDRIVER = std::ptr::null_mut();
        // SAFETY: valid arguments, as a DriverEntry would pass them.
        let status = unsafe {
            wdf_driver_create(
                std::ptr::null_mut(),
                self.driver_object(),
                &path,
                std::ptr::null_mut(),
                &mut config,
                &mut driver,
            )
        };
        assert_eq!(status, 0);
        driver
    }

    /// `EvtDriverDeviceAdd` of the loaded driver, on this thread: the device
    /// it creates. Fails with the callback's status.
    pub fn add_device(&self) -> dmf_wdf::Result<Device> {
        let driver = *lock(&DRIVER);
        assert!(driver != 0, "no driver loaded");
        let driver_object = object::get_live(driver as WDFOBJECT, "add_device");
        let Kind::Driver(d) = &driver_object.kind else {
            unreachable!()
        };
        let add = d.device_add.expect("the driver has no EvtDriverDeviceAdd");
        self.add_device_with(driver, |init| {
            // SAFETY: the driver's callback with its driver and a fresh init.
            unsafe { add(driver as WDFDRIVER, init) }
        })
    }

    /// A device with no callbacks on a driver without `DriverEntry`
    /// (created on first use), for running `dmf-kmdf`'s platform without a
    /// driver shell.
    pub fn bare_device(&self) -> Device {
        let mut driver = *lock(&DRIVER);
        if driver == 0 {
            driver = self.create_bare_driver() as usize;
        }
        self.add_device_with(driver, |mut init| {
            let mut device: WDFDEVICE = std::ptr::null_mut();
            // SAFETY: a fresh init, no attributes, a writable handle.
            unsafe {
                wdf_device_create(
                    std::ptr::null_mut(),
                    &mut init,
                    std::ptr::null_mut(),
                    &mut device,
                )
            }
        })
        .expect("a bare device can be created")
    }

    fn add_device_with(
        &self,
        driver: usize,
        add: impl FnOnce(PWDFDEVICE_INIT) -> NTSTATUS,
    ) -> dmf_wdf::Result<Device> {
        let driver_object = object::get_live(driver as WDFOBJECT, "add_device");
        let before: Vec<usize> = children_devices(&driver_object);
        let init = Box::into_raw(Box::new(DeviceInit {
            driver,
            callbacks: WDF_PNPPOWER_EVENT_CALLBACKS::default(),
        }));
        let status = add(init.cast());
        // SAFETY: made above; WdfDeviceCreate only reads it.
        let init = unsafe { Box::from_raw(init) };
        let created: Vec<usize> = children_devices(&driver_object)
            .into_iter()
            .filter(|h| !before.contains(h))
            .collect();
        if let Err(e) = Status::from_raw(status).ok() {
            // The framework deletes a device whose add callback failed.
            for h in created {
                object::delete(h as WDFOBJECT, "failed device add");
            }
            return Err(e);
        }
        let [device] = created[..] else {
            panic!("EvtDriverDeviceAdd succeeded without creating exactly one device");
        };
        let client = ClientDevice::new();
        client.register(Arc::new(PnpPower {
            device,
            callbacks: init.callbacks,
        }));
        Ok(Device {
            handle: device as WDFDEVICE,
            client,
            removed: false,
        })
    }

    /// Unloads the driver: deletes its `WDFDRIVER` (every device must have
    /// been removed).
    pub fn unload_driver(&self) {
        let driver = std::mem::take(&mut *lock(&DRIVER));
        if driver != 0 {
            object::delete(driver as WDFOBJECT, "driver unload");
        }
    }
}

fn children_devices(driver: &Arc<Object>) -> Vec<usize> {
    object::children(driver)
        .into_iter()
        .filter(|&h| {
            matches!(
                object::get(h as WDFOBJECT, "device lookup").kind,
                Kind::Device(_)
            )
        })
        .collect()
}
