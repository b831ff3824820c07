//! The KMDF shell of a driver built on the layers, written once.
//!
//! A driver implements [`KmdfDriver`] for its logic type and invokes
//! [`kmdf_driver!`](crate::kmdf_driver) once; this module does the rest:
//!
//! | WDF | done here | the driver's part |
//! |---|---|---|
//! | `DriverEntry` | `WdfDriverCreate` with `EvtDriverDeviceAdd` ([`driver_entry`]); installs the `tracing` sink ([`debug_print`]) at the level of the `TraceLevel` setting | |
//! | `EvtDriverDeviceAdd` | reads the settings from the service's `Parameters` key, registers the PnP/power callbacks, `WdfDeviceCreate` with the shell's device context, the device interface, a parallel, non-power-managed default queue | [`KmdfDriver::config`], [`KmdfDriver::DEVICE_INTERFACE`] |
//! | `EvtDevicePrepareHardware` | creates the logic on a [`KmdfPlatform`], then forwards | [`KmdfDriver::create`], [`DeviceCallbacks::prepare_hardware`] |
//! | `EvtDeviceD0Entry` / `D0Exit` | forward | [`DeviceCallbacks::d0_entry`] / [`DeviceCallbacks::d0_exit`] |
//! | `EvtDeviceReleaseHardware` | forwards, then drops the logic while the device's children still exist | [`DeviceCallbacks::release_hardware`] |
//! | `EvtIoDeviceControl` | retrieves the output buffer, completes the request | [`KmdfDriver::device_control`] |
//! | `EvtCleanupCallback` (device) | frees the device context | |
//! | global allocator | [`KmdfAllocator`](crate::memory::KmdfAllocator): non-paged, every alignment honoured | |
//! | panic handler | [`bug_check_on_panic`]: `DbgPrint`, then `KeBugCheckEx` | |
//!
//! ```ignore
//! // src/kmdf.rs of a driver (Windows MSVC only):
//! impl dmf_kmdf::shell::KmdfDriver for MyDriver<KmdfPlatform> {
//!     const NAME: &'static CStr = c"mydrv";
//!     const DEVICE_INTERFACE: Option<Guid> = Some(MY_INTERFACE);
//!     type Config = MyConfig;
//!     type Shared = Arc<MyFigures<KmdfPlatform>>;
//!     fn config(parameters: &Parameters<'_>) -> MyConfig { MyConfig::from_parameters(|s| parameters.read(s)) }
//!     fn create(platform: KmdfPlatform, config: &MyConfig) -> Result<Self> { MyDriver::new(platform, *config) }
//!     fn shared(&self) -> Self::Shared { self.figures() }
//!     fn device_control(shared: &Self::Shared, code: u32, output: &mut [u8]) -> Result<usize> { my_ioctl(shared, code, output) }
//! }
//! dmf_kmdf::kmdf_driver!(MyDriver<KmdfPlatform>);
//! ```
//!
//! ## Why not `wdk-panic`
//!
//! The released `wdk-panic` (0.4.1) spins in `loop {}` on a panic: the CPU
//! hangs at whatever IRQL it was, often holding a spin lock, and nothing
//! says why. [`bug_check_on_panic`] prints the panic message with
//! `DbgPrint` and bug-checks with [`BUGCHECK_RUST_PANIC`] (`'RPNC'`, the
//! code windows-drivers-rs' unreleased handler uses; parameters: file name
//! pointer and length, line, column), so the crash dump names the panic.
//! The driver is built with `panic = "abort"` (the workspace's `driver`
//! profile): a kernel image cannot unwind.
//!
//! ## Concurrency
//!
//! PnP/power callbacks of a device are serialised by WDF; the logic is only
//! touched there. `EvtIoDeviceControl` can run at any time on the parallel
//! queue, so it sees only [`KmdfDriver::Shared`], kept under a spin lock and
//! cloned out of it: a request that races with release-hardware keeps what
//! it cloned alive and never touches the logic being dropped.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ffi::{c_void, CStr};
use core::fmt::{self, Write};
use core::ptr;

use dmf_wdf::{DeviceCallbacks, Guid, Lock, Result, Status};
use wdk_sys::ntddk::{DbgPrint, KeBugCheckEx};
use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_EXECUTION_LEVEL, _WDF_IO_QUEUE_DISPATCH_TYPE,
    _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE, ACCESS_MASK, PDRIVER_OBJECT, ULONG, UNICODE_STRING,
    WDFCMRESLIST, WDFDEVICE, WDFDEVICE_INIT, WDFDRIVER, WDFKEY, WDFOBJECT, WDFQUEUE, WDFREQUEST,
    WDF_DRIVER_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
    WDF_OBJECT_ATTRIBUTES, WDF_PNPPOWER_EVENT_CALLBACKS, WDF_POWER_DEVICE_STATE,
};

pub use wdk_sys::{DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING};

use crate::context::wdf_size;
use crate::convert::wdk::guid_to_wdk;
use crate::debug_print;
use crate::line::Line;
use crate::parameters::{OutOfRange, Resolved, UlongSetting, MAX_NAME_LEN};
use crate::{device_callbacks, KmdfLock, KmdfPlatform};

/// Bug check code of a Rust panic: `'RPNC'`, as windows-drivers-rs uses.
pub const BUGCHECK_RUST_PANIC: u32 = u32::from_be_bytes(*b"RPNC");

/// `KEY_READ` (`winnt.h`): `STANDARD_RIGHTS_READ | KEY_QUERY_VALUE |
/// KEY_ENUMERATE_SUB_KEYS | KEY_NOTIFY`, without `SYNCHRONIZE`.
const KEY_READ: ACCESS_MASK = 0x0002_0019;

/// A KMDF driver's logic, as the shell drives it (see the [module](self)).
pub trait KmdfDriver: DeviceCallbacks + Sized + 'static {
    /// The driver's name in debugger output (its service name).
    const NAME: &'static CStr;
    /// The device interface the driver's device exposes to user mode
    /// (`WdfDeviceCreateDeviceInterface`), if any.
    const DEVICE_INTERFACE: Option<Guid>;
    /// The settings, read once per device in `EvtDriverDeviceAdd`.
    type Config: Send + Sync + 'static;
    /// What `EvtIoDeviceControl` needs; cheap to clone (an `Arc`).
    type Shared: Clone + Send + Sync + 'static;

    /// Reads the settings from the service's `Parameters` key (passive
    /// level). Use [`Parameters::read`], which validates and logs.
    fn config(parameters: &Parameters<'_>) -> Self::Config;

    /// Creates the logic on the device (in `EvtDevicePrepareHardware`,
    /// passive level). A failure fails the device's start.
    fn create(platform: KmdfPlatform, config: &Self::Config) -> Result<Self>;

    /// The part the IOCTL path keeps (see the module's "Concurrency").
    fn shared(&self) -> Self::Shared;

    /// Serves one IOCTL of the default queue (`IRQL <= DISPATCH_LEVEL`):
    /// writes the reply into `output` (the request's output buffer, shared
    /// with its input for `METHOD_BUFFERED`) and returns its length. The
    /// default refuses every code with `STATUS_INVALID_DEVICE_REQUEST`.
    fn device_control(shared: &Self::Shared, code: u32, output: &mut [u8]) -> Result<usize> {
        let _ = (shared, code, output);
        Err(Status::INVALID_DEVICE_REQUEST)
    }
}

/// `DbgPrint("<name>: <args>\n")`, at most 255 bytes, without allocating.
pub fn log(name: &CStr, args: fmt::Arguments<'_>) {
    let mut line = Line::<256>::new();
    let _ = write!(line, "{}: {}", name.to_str().unwrap_or("driver"), args);
    // SAFETY: both strings are NUL-terminated; `%s` consumes the one argument.
    unsafe {
        DbgPrint(c"%s\n".as_ptr().cast(), line.as_ptr());
    }
}

/// The panic handler of a driver ([`kmdf_driver!`](crate::kmdf_driver)
/// installs it): logs the panic with `DbgPrint` and bug-checks with
/// [`BUGCHECK_RUST_PANIC`] (file name pointer and length, line, column).
#[allow(unreachable_code)] // whether the binding is `-> !` depends on bindgen
pub fn bug_check_on_panic(name: &CStr, info: &core::panic::PanicInfo<'_>) -> ! {
    log(name, format_args!("{info}"));
    let (file, row, col) = info
        .location()
        .map_or(("", 0, 0), |l| (l.file(), l.line(), l.column()));
    // SAFETY: KeBugCheckEx may be called at any IRQL; it does not return.
    unsafe {
        KeBugCheckEx(
            BUGCHECK_RUST_PANIC,
            file.as_ptr() as u64,
            file.len() as u64,
            u64::from(row),
            u64::from(col),
        );
    }
    loop {
        core::hint::spin_loop();
    }
}

/// The service's `Parameters` key, open for reading (or absent).
pub struct Parameters<'a> {
    key: WDFKEY,
    name: &'a CStr,
}

impl<'a> Parameters<'a> {
    /// `WdfDriverOpenParametersRegistryKey(driver, KEY_READ)`; a key that
    /// cannot be opened reads as empty (every setting takes its default).
    fn open(driver: WDFDRIVER, name: &'a CStr) -> Self {
        let mut key: WDFKEY = WDF_NO_HANDLE.cast();
        // SAFETY: `driver` is the live driver object (EvtDriverDeviceAdd);
        // no attributes; the output handle is a valid local.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDriverOpenParametersRegistryKey,
                driver,
                KEY_READ,
                WDF_NO_OBJECT_ATTRIBUTES,
                &mut key
            )
        };
        if !Status::from_raw(status).is_success() {
            log(
                name,
                format_args!("no Parameters key (0x{status:08X}); using the defaults"),
            );
            key = ptr::null_mut();
        }
        Parameters { key, name }
    }

    /// The `REG_DWORD` value `name` (ASCII, at most
    /// [`MAX_NAME_LEN`] characters), or `None` if absent or unreadable.
    pub fn query_u32(&self, name: &str) -> Option<u32> {
        if self.key.is_null() || name.len() > MAX_NAME_LEN || !name.is_ascii() {
            return None;
        }
        let mut units = [0u16; MAX_NAME_LEN];
        for (unit, byte) in units.iter_mut().zip(name.bytes()) {
            *unit = u16::from(byte);
        }
        let bytes = (name.len() * 2) as u16; // <= 128
        let value_name = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: units.as_mut_ptr(),
        };
        let mut value: ULONG = 0;
        // SAFETY: open key; the name points to `units`, alive for the call;
        // the output is a valid local.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRegistryQueryULong,
                self.key,
                &value_name,
                &mut value
            )
        };
        Status::from_raw(status).is_success().then_some(value)
    }

    /// The value of `setting`, validated ([`UlongSetting::resolve`]); an
    /// out-of-range value is logged and replaced by the default.
    pub fn read(&self, setting: &UlongSetting) -> u32 {
        let (value, resolved) = setting.resolve(self.query_u32(setting.name));
        if let Resolved::OutOfRange(bad) = resolved {
            let line = OutOfRange {
                setting,
                value: bad,
            };
            log(self.name, format_args!("{line}"));
        }
        value
    }
}

impl Drop for Parameters<'_> {
    fn drop(&mut self) {
        if !self.key.is_null() {
            // SAFETY: the key was opened by `open` and is closed once.
            unsafe { call_unsafe_wdf_function_binding!(WdfRegistryClose, self.key) };
        }
    }
}

/// What the shell keeps per device (behind [`ShellContext::state`]).
///
/// # Invariants
///
/// `driver` is accessed only from the device's PnP/power callbacks, which
/// WDF serialises; `shared` only under its lock.
struct DeviceState<D: KmdfDriver> {
    config: D::Config,
    driver: UnsafeCell<Option<D>>,
    shared: KmdfLock<Option<D::Shared>>,
}

/// The device's WDF context: one pointer to a boxed `DeviceState<D>` and the
/// function that frees it (the context type cannot be generic).
///
/// # Invariants
///
/// Zero-filled by WDF, then set once in `EvtDriverDeviceAdd`: `state` came
/// from `Box::<DeviceState<D>>::into_raw` and `drop_state` is
/// `drop_state::<D>` for the same `D`.
#[repr(C)]
struct ShellContext {
    state: *mut c_void,
    drop_state: Option<unsafe fn(*mut c_void)>,
}

// `WDF_DECLARE_CONTEXT_TYPE(ShellContext)`.
crate::context::declare_context_type!(
    SHELL_CONTEXT_TYPE_INFO,
    ShellContext,
    c"DmfKmdfShellContext"
);

/// Frees a `DeviceState<D>` boxed by `evt_driver_device_add::<D>`.
///
/// # Safety
///
/// `state` must come from `Box::<DeviceState<D>>::into_raw`, freed once.
unsafe fn drop_state<D: KmdfDriver>(state: *mut c_void) {
    // SAFETY: caller contract.
    drop(unsafe { Box::from_raw(state.cast::<DeviceState<D>>()) });
}

/// The raw context of a device created by the shell.
///
/// # Safety
///
/// `object` must be a live device created by `evt_driver_device_add`.
unsafe fn shell_context(object: WDFOBJECT) -> *mut ShellContext {
    // SAFETY: live handle with our context type (caller contract).
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            object,
            SHELL_CONTEXT_TYPE_INFO.0.UniqueType
        )
    }
    .cast::<ShellContext>()
}

/// The `DeviceState<D>` of a device.
///
/// # Safety
///
/// `device` must be a live device created by `evt_driver_device_add::<D>`
/// (same `D`), whose add callback has returned.
unsafe fn device_state<'a, D: KmdfDriver>(device: WDFDEVICE) -> &'a DeviceState<D> {
    // SAFETY: caller contract.
    let context = unsafe { shell_context(device as WDFOBJECT) };
    // SAFETY: set in evt_driver_device_add::<D> before it returned (context
    // invariant); freed only by the device's cleanup callback, after every
    // other callback of the device.
    unsafe { &*(*context).state.cast::<DeviceState<D>>() }
}

/// `DriverEntry` of a [`KmdfDriver`]: `WdfDriverCreate` with the shell's
/// `EvtDriverDeviceAdd`. [`kmdf_driver!`](crate::kmdf_driver) exports it.
///
/// # Safety
///
/// Called by the kernel with a valid driver object and registry path.
pub unsafe fn driver_entry<D: KmdfDriver>(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: wdf_size::<WDF_DRIVER_CONFIG>(),
        EvtDriverDeviceAdd: Some(evt_driver_device_add::<D>),
        ..WDF_DRIVER_CONFIG::default()
    };
    let mut wdf_driver: WDFDRIVER = WDF_NO_HANDLE.cast();
    // SAFETY: `driver` and `registry_path` come from the kernel; the config
    // is a valid WDF_DRIVER_CONFIG; no attributes; the handle is a local.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver as PDRIVER_OBJECT,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &mut config,
            &mut wdf_driver,
        )
    };
    if Status::from_raw(status).is_success() {
        // The layers' `tracing` events go to DbgPrintEx from here on, as
        // verbose as the `TraceLevel` setting says.
        let level = Parameters::open(wdf_driver, D::NAME).read(&debug_print::TRACE_LEVEL);
        debug_print::install(D::NAME, debug_print::level_filter(level));
    }
    log(D::NAME, format_args!("DriverEntry -> 0x{status:08X}"));
    status
}

/// Returns `status` after logging `what` if it is a failure.
fn check(name: &CStr, what: &str, status: NTSTATUS) -> core::result::Result<(), NTSTATUS> {
    if Status::from_raw(status).is_success() {
        Ok(())
    } else {
        log(name, format_args!("{what} failed 0x{status:08X}"));
        Err(status)
    }
}

/// `EvtDriverDeviceAdd`: settings, device, context, interface, queue.
extern "C" fn evt_driver_device_add<D: KmdfDriver>(
    driver: WDFDRIVER,
    device_init: *mut WDFDEVICE_INIT,
) -> NTSTATUS {
    match device_add::<D>(driver, device_init) {
        Ok(()) => 0,
        Err(status) => status,
    }
}

fn device_add<D: KmdfDriver>(
    driver: WDFDRIVER,
    mut device_init: *mut WDFDEVICE_INIT,
) -> core::result::Result<(), NTSTATUS> {
    let config = D::config(&Parameters::open(driver, D::NAME));

    let mut pnp_power = WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: wdf_size::<WDF_PNPPOWER_EVENT_CALLBACKS>(),
        EvtDevicePrepareHardware: Some(evt_device_prepare_hardware::<D>),
        EvtDeviceReleaseHardware: Some(evt_device_release_hardware::<D>),
        EvtDeviceD0Entry: Some(evt_device_d0_entry::<D>),
        EvtDeviceD0Exit: Some(evt_device_d0_exit::<D>),
        ..WDF_PNPPOWER_EVENT_CALLBACKS::default()
    };
    // SAFETY: `device_init` is the framework's, valid during this callback;
    // the callbacks structure is valid and copied by WDF.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetPnpPowerEventCallbacks,
            device_init,
            &mut pnp_power
        );
    }

    // WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, ShellContext).
    let mut attributes = WDF_OBJECT_ATTRIBUTES {
        Size: wdf_size::<WDF_OBJECT_ATTRIBUTES>(),
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ContextTypeInfo: SHELL_CONTEXT_TYPE_INFO.0.UniqueType,
        EvtCleanupCallback: Some(evt_device_cleanup),
        ..WDF_OBJECT_ATTRIBUTES::default()
    };
    let mut device: WDFDEVICE = WDF_NO_HANDLE.cast();
    // SAFETY: `device_init` is valid until WdfDeviceCreate consumes it;
    // attributes and the output handle are valid locals.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &mut device_init,
            &mut attributes,
            &mut device
        )
    };
    check(D::NAME, "WdfDeviceCreate", status)?;

    let state = Box::new(DeviceState::<D> {
        config,
        driver: UnsafeCell::new(None),
        shared: KmdfLock::new(None),
    });
    // SAFETY: the device was just created with our context type.
    let context = unsafe { shell_context(device as WDFOBJECT) };
    // SAFETY: the context is the device's zero-filled memory for a
    // ShellContext; no callback of the device reads it before this returns.
    // INVARIANT: `state` and `drop_state` match (same `D`).
    unsafe {
        context.write(ShellContext {
            state: Box::into_raw(state).cast::<c_void>(),
            drop_state: Some(drop_state::<D>),
        });
    }

    if let Some(guid) = D::DEVICE_INTERFACE {
        let interface = guid_to_wdk(&guid);
        // SAFETY: live device; the GUID is a valid local; no reference string.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceCreateDeviceInterface,
                device,
                &interface,
                ptr::null()
            )
        };
        check(D::NAME, "WdfDeviceCreateDeviceInterface", status)?;
    }

    // WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&config, WdfIoQueueDispatchParallel),
    // not power-managed: IOCTLs are answered while the device is in D3.
    let mut queue_config = WDF_IO_QUEUE_CONFIG {
        Size: wdf_size::<WDF_IO_QUEUE_CONFIG>(),
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        PowerManaged: _WDF_TRI_STATE::WdfFalse,
        DefaultQueue: u8::from(true),
        EvtIoDeviceControl: Some(evt_io_device_control::<D>),
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    // The INIT macro's parallel-queue default: no limit on requests presented.
    queue_config.Settings.Parallel.NumberOfPresentedRequests = ULONG::MAX;
    let mut queue: WDFQUEUE = WDF_NO_HANDLE.cast();
    // SAFETY: live device; valid config and output handle.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &mut queue_config,
            WDF_NO_OBJECT_ATTRIBUTES,
            &mut queue
        )
    };
    check(D::NAME, "WdfIoQueueCreate", status)
}

/// Creates the logic on the device and forwards prepare-hardware.
extern "C" fn evt_device_prepare_hardware<D: KmdfDriver>(
    device: WDFDEVICE,
    _resources_raw: WDFCMRESLIST,
    _resources_translated: WDFCMRESLIST,
) -> NTSTATUS {
    // SAFETY: WDF calls this for a device created by evt_driver_device_add::<D>.
    let state = unsafe { device_state::<D>(device) };
    // SAFETY: the device outlives the platform's objects: the logic is
    // dropped in release-hardware, before WDF deletes the device.
    let platform = unsafe { KmdfPlatform::new(device) };
    let driver = match D::create(platform, &state.config) {
        Ok(driver) => driver,
        Err(status) => return status.raw(),
    };
    let status = device_callbacks::prepare_hardware(&driver);
    if !Status::from_raw(status).is_success() {
        return status;
    }
    *state.shared.lock() = Some(driver.shared());
    // SAFETY: PnP/power callbacks are serialised (DeviceState invariant).
    unsafe { *state.driver.get() = Some(driver) };
    0
}

/// Forwards release-hardware, then drops the logic (closing every target)
/// while the device's children still exist.
extern "C" fn evt_device_release_hardware<D: KmdfDriver>(
    device: WDFDEVICE,
    _resources_translated: WDFCMRESLIST,
) -> NTSTATUS {
    // SAFETY: as in prepare-hardware.
    let state = unsafe { device_state::<D>(device) };
    // SAFETY: PnP/power callbacks are serialised (DeviceState invariant).
    let Some(driver) = (unsafe { (*state.driver.get()).take() }) else {
        return 0;
    };
    let status = device_callbacks::release_hardware(&driver);
    let shared = state.shared.lock().take();
    drop(shared);
    drop(driver);
    status
}

/// Forwards D0 entry.
extern "C" fn evt_device_d0_entry<D: KmdfDriver>(
    device: WDFDEVICE,
    previous: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
    // SAFETY: as in prepare-hardware.
    let state = unsafe { device_state::<D>(device) };
    // SAFETY: PnP/power callbacks are serialised (DeviceState invariant).
    match unsafe { &*state.driver.get() } {
        Some(driver) => device_callbacks::d0_entry(driver, previous),
        None => 0,
    }
}

/// Forwards D0 exit.
extern "C" fn evt_device_d0_exit<D: KmdfDriver>(
    device: WDFDEVICE,
    target: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
    // SAFETY: as in prepare-hardware.
    let state = unsafe { device_state::<D>(device) };
    // SAFETY: PnP/power callbacks are serialised (DeviceState invariant).
    match unsafe { &*state.driver.get() } {
        Some(driver) => device_callbacks::d0_exit(driver, target),
        None => 0,
    }
}

/// Frees the device's state (the logic is already gone: release-hardware).
extern "C" fn evt_device_cleanup(object: WDFOBJECT) {
    // SAFETY: `object` is a device created by the shell, being cleaned up.
    let context = unsafe { shell_context(object) };
    if context.is_null() {
        return;
    }
    // SAFETY: no other callback of the device runs any more; the context is
    // zero-filled or set once (ShellContext invariant).
    let ShellContext { state, drop_state } = unsafe { context.read() };
    if let Some(drop_state) = drop_state {
        // SAFETY: `state` and `drop_state` match; this is the only release.
        unsafe { drop_state(state) };
    }
}

/// `EvtIoDeviceControl` of the default queue: [`KmdfDriver::device_control`]
/// on the request's output buffer.
extern "C" fn evt_io_device_control<D: KmdfDriver>(
    queue: WDFQUEUE,
    request: WDFREQUEST,
    output_buffer_length: usize,
    _input_buffer_length: usize,
    io_control_code: ULONG,
) {
    // SAFETY: `queue` is the live queue this callback belongs to.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueGetDevice, queue) };
    // SAFETY: the queue's device was created by evt_driver_device_add::<D>.
    let state = unsafe { device_state::<D>(device) };
    let shared = state.shared.lock().clone();
    let (status, information) = match shared {
        None => (Status::DEVICE_NOT_READY, 0),
        Some(_) if output_buffer_length == 0 => (Status::BUFFER_TOO_SMALL, 0),
        Some(shared) => {
            let mut buffer: *mut c_void = ptr::null_mut();
            let mut length: usize = 0;
            // SAFETY: live request; the out-pointers are valid locals.
            let nt = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfRequestRetrieveOutputBuffer,
                    request,
                    0,
                    &mut buffer,
                    &mut length
                )
            };
            if !Status::from_raw(nt).is_success() || buffer.is_null() {
                (Status::from_raw(nt), 0)
            } else {
                // SAFETY: WDF returned `length` writable bytes at `buffer`,
                // valid and ours until the request is completed below.
                let output =
                    unsafe { core::slice::from_raw_parts_mut(buffer.cast::<u8>(), length) };
                match D::device_control(&shared, io_control_code, output) {
                    Ok(n) => (Status::SUCCESS, n.min(length)),
                    Err(status) => (status, 0),
                }
            }
        }
    };
    // SAFETY: live request, completed exactly once here.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            status.raw(),
            information as u64
        );
    }
}

/// The KMDF entry points of a driver whose logic implements [`KmdfDriver`]:
/// the exported `DriverEntry` ([`driver_entry`]), the global allocator
/// ([`KmdfAllocator`](crate::memory::KmdfAllocator)) and the panic handler
/// ([`bug_check_on_panic`]). Invoke it once, in the driver crate, in a module
/// compiled only for the KMDF build (`cfg(all(windows, target_env = "msvc"))`,
/// or dmf-kmdf's `emulation` feature on a host); the allocator, the handler
/// and the export are left out of `cfg(test)`, and the allocator and the
/// handler out of every non-Windows build (a host build over the emulation
/// keeps the host's allocator and `std`'s panic handling).
///
/// ```ignore
/// dmf_kmdf::kmdf_driver!(MyDriver<dmf_kmdf::KmdfPlatform>);
/// ```
#[macro_export]
macro_rules! kmdf_driver {
    ($driver:ty) => {
        /// Non-paged pool for every Rust allocation, every alignment honoured.
        #[cfg(all(not(test), target_os = "windows"))]
        #[global_allocator]
        static GLOBAL_ALLOCATOR: $crate::memory::KmdfAllocator = $crate::memory::KMDF_ALLOCATOR;

        /// A panic is a driver bug: log it and bug-check.
        #[cfg(all(not(test), target_os = "windows"))]
        #[panic_handler]
        fn panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::shell::bug_check_on_panic(<$driver as $crate::shell::KmdfDriver>::NAME, info)
        }

        /// `DriverEntry`: creates the WDF driver object (see
        /// `dmf_kmdf::shell::driver_entry`).
        ///
        /// # Safety
        ///
        /// Called by the kernel with a valid driver object and registry path.
        #[cfg_attr(not(test), unsafe(export_name = "DriverEntry"))]
        pub unsafe extern "system" fn driver_entry(
            driver: &mut $crate::shell::DRIVER_OBJECT,
            registry_path: $crate::shell::PCUNICODE_STRING,
        ) -> $crate::shell::NTSTATUS {
            // SAFETY: forwarded from the kernel unchanged.
            unsafe { $crate::shell::driver_entry::<$driver>(driver, registry_path) }
        }
    };
}
