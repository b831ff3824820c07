//! The driver, its device and the device's default queue: `WdfDriverCreate`,
//! `WdfDeviceInitSetPnpPowerEventCallbacks`, `WdfDeviceCreate`,
//! `WdfDeviceCreateDeviceInterface`, `WdfIoQueueCreate`, the registry, and
//! the PnP/power sequence the framework drives ([`Device`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dmf_sim::ClientDevice;
use dmf_wdf::{DeviceCallbacks, PowerState, Status};
use wdk_sys::{
    _WDF_IO_QUEUE_DISPATCH_TYPE, ACCESS_MASK, DRIVER_OBJECT, GUID, NTSTATUS, PCUNICODE_STRING,
    PCWDF_OBJECT_CONTEXT_TYPE_INFO, PDRIVER_OBJECT, PFN_WDF_DRIVER_DEVICE_ADD,
    PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL, PULONG, PVOID, PWDFDEVICE_INIT, PWDF_DRIVER_CONFIG,
    PWDF_DRIVER_GLOBALS, PWDF_IO_QUEUE_CONFIG, PWDF_OBJECT_ATTRIBUTES,
    PWDF_PNPPOWER_EVENT_CALLBACKS, UNICODE_STRING, WDFDEVICE, WDFDRIVER, WDFKEY, WDFOBJECT,
    WDFQUEUE, WDF_DRIVER_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_PNPPOWER_EVENT_CALLBACKS,
};

use crate::kernel::assert_passive;
use crate::machine::{current, Machine};
use crate::object::{self, create, get_live, lock, Attributes, Kind, Object};

/// `STATUS_OBJECT_NAME_NOT_FOUND`.
const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as i32;

/// `WDFDRIVER`.
pub(crate) struct DriverData {
    device_add: PFN_WDF_DRIVER_DEVICE_ADD,
    driver_object: PDRIVER_OBJECT,
}

/// `WDFDEVICE`.
pub(crate) struct DeviceData {
    interfaces: Mutex<Vec<GUID>>,
    queue: Mutex<usize>,
}

/// `WDFQUEUE`.
pub(crate) struct QueueData {
    device: usize,
    device_control: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    /// Requests presented and not completed, and whether new ones are
    /// still presented (not once the device is being deleted).
    gate: Mutex<(usize, bool)>,
    idle: std::sync::Condvar,
}

impl QueueData {
    /// Stops presenting requests and waits for those presented to complete
    /// (the framework purges a device's queues before deleting it).
    fn purge_and_wait(&self) {
        let mut gate = lock(&self.gate);
        gate.1 = false;
        while gate.0 > 0 {
            gate = self
                .idle
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// `WDFKEY`: the values of the opened key.
pub(crate) struct KeyData {
    values: HashMap<String, u32>,
}

/// What `WDFDEVICE_INIT` holds until `WdfDeviceCreate` consumes it.
struct DeviceInit {
    driver: usize,
    callbacks: WDF_PNPPOWER_EVENT_CALLBACKS,
}

/// The driver's `WDFDRIVER` (created by `WdfDriverCreate`; one per
/// machine, forgotten when the machine ends).
pub(crate) static DRIVER: Mutex<usize> = Mutex::new(0);

/// Checks the `Size` of a WDF structure like the framework does.
#[track_caller]
fn check_size<T>(size: u32, function: &str, what: &str) {
    assert_eq!(
        size as usize,
        size_of::<T>(),
        "{function}: {what}.Size is {size}, not sizeof({what})"
    );
}

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

pub(crate) unsafe extern "C" fn wdf_driver_open_parameters_registry_key(
    _globals: PWDF_DRIVER_GLOBALS,
    driver: WDFDRIVER,
    _access: ACCESS_MASK,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    key: *mut WDFKEY,
) -> NTSTATUS {
    const F: &str = "WdfDriverOpenParametersRegistryKey";
    assert_passive(F);
    let _ = get_live(driver.cast(), F);
    assert!(!key.is_null(), "{F}: NULL key");
    let Some(values) = lock(&current().parameters).clone() else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let object = create(Kind::Key(KeyData { values }), &attributes);
    // SAFETY: caller contract.
    unsafe { key.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_registry_query_ulong(
    _globals: PWDF_DRIVER_GLOBALS,
    key: WDFKEY,
    name: PCUNICODE_STRING,
    value: PULONG,
) -> NTSTATUS {
    const F: &str = "WdfRegistryQueryULong";
    assert_passive(F);
    let object = get_live(key.cast(), F);
    let Kind::Key(k) = &object.kind else {
        panic!("{F}: {object:?} is not a WDFKEY");
    };
    // SAFETY: caller contract: a valid UNICODE_STRING.
    let name = unsafe { unicode_to_string(&*name) };
    match k.values.get(&name) {
        Some(v) => {
            // SAFETY: caller contract.
            unsafe { value.write(*v) };
            0
        }
        None => STATUS_OBJECT_NAME_NOT_FOUND,
    }
}

pub(crate) unsafe extern "C" fn wdf_registry_close(_globals: PWDF_DRIVER_GLOBALS, key: WDFKEY) {
    object::delete(key.cast(), "WdfRegistryClose");
}

/// Decodes a `UNICODE_STRING`.
///
/// # Safety
///
/// `s.Buffer` must hold `s.Length` bytes.
pub(crate) unsafe fn unicode_to_string(s: &UNICODE_STRING) -> String {
    if s.Buffer.is_null() || s.Length == 0 {
        return String::new();
    }
    // SAFETY: caller contract.
    let units = unsafe { std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) };
    String::from_utf16_lossy(units)
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

pub(crate) unsafe extern "C" fn wdf_io_queue_create(
    _globals: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
    config: PWDF_IO_QUEUE_CONFIG,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    queue: *mut WDFQUEUE,
) -> NTSTATUS {
    const F: &str = "WdfIoQueueCreate";
    assert_passive(F);
    let object = get_live(device.cast(), F);
    let Kind::Device(d) = &object.kind else {
        panic!("{F}: {object:?} is not a WDFDEVICE");
    };
    // SAFETY: caller contract.
    let config = unsafe { &*config };
    check_size::<WDF_IO_QUEUE_CONFIG>(config.Size, F, "WDF_IO_QUEUE_CONFIG");
    assert!(
        config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
            && config.DefaultQueue != 0,
        "{F}: only a parallel default queue is emulated"
    );
    assert!(
        config.EvtIoDefault.is_none() && config.EvtIoRead.is_none() && config.EvtIoWrite.is_none(),
        "{F}: only EvtIoDeviceControl is emulated"
    );
    // SAFETY: caller contract.
    let mut attributes = unsafe { Attributes::read(attributes, F) };
    assert!(
        attributes.parent.is_null(),
        "{F}: a queue's parent is its device"
    );
    attributes.parent = device.cast();
    let mut slot = lock(&d.queue);
    assert!(*slot == 0, "{F}: a second default queue");
    let q = create(
        Kind::Queue(QueueData {
            device: device as usize,
            device_control: config.EvtIoDeviceControl,
            gate: Mutex::new((0, true)),
            idle: std::sync::Condvar::new(),
        }),
        &attributes,
    );
    *slot = q.handle() as usize;
    if !queue.is_null() {
        // SAFETY: caller contract.
        unsafe { queue.write(q.handle().cast()) };
    }
    0
}

pub(crate) unsafe extern "C" fn wdf_io_queue_get_device(
    _globals: PWDF_DRIVER_GLOBALS,
    queue: WDFQUEUE,
) -> WDFDEVICE {
    let object = get_live(queue.cast(), "WdfIoQueueGetDevice");
    match &object.kind {
        Kind::Queue(q) => q.device as WDFDEVICE,
        _ => panic!("WdfIoQueueGetDevice: {object:?} is not a WDFQUEUE"),
    }
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
struct PnpPower {
    device: usize,
    callbacks: WDF_PNPPOWER_EVENT_CALLBACKS,
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
    handle: WDFDEVICE,
    client: ClientDevice,
    removed: bool,
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

/// Sends IOCTLs to a device's default queue (see [`Device::io_control`]).
pub struct IoControl {
    queue: Arc<Object>,
}

// SAFETY: the queue object is shared, its state behind locks; the driver's
// EvtIoDeviceControl may be called from any thread (parallel queue).
unsafe impl Send for IoControl {}
// SAFETY: as above.
unsafe impl Sync for IoControl {}

impl std::fmt::Debug for IoControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IoControl({:?})", self.queue)
    }
}

/// `STATUS_DELETE_PENDING`.
const STATUS_DELETE_PENDING: NTSTATUS = 0xC000_0056_u32 as i32;

impl IoControl {
    /// [`Device::device_control`]; `STATUS_DELETE_PENDING` once the device
    /// is being deleted.
    pub fn send(&self, code: u32, output_len: usize) -> (Status, Vec<u8>) {
        let Kind::Queue(q) = &self.queue.kind else {
            unreachable!()
        };
        {
            let mut gate = lock(&q.gate);
            if !gate.1 {
                return (Status::from_raw(STATUS_DELETE_PENDING), Vec::new());
            }
            gate.0 += 1;
        }
        let callback = q
            .device_control
            .expect("the default queue has no EvtIoDeviceControl");
        let result =
            crate::request::present_ioctl(self.queue.handle().cast(), callback, code, output_len);
        let mut gate = lock(&q.gate);
        gate.0 -= 1;
        if gate.0 == 0 {
            q.idle.notify_all();
        }
        result
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
