//! The KMDF shell of the driver (Windows MSVC only): `DriverEntry`,
//! `EvtDriverDeviceAdd`, the PnP/power callbacks, `EvtIoDeviceControl`, the
//! global allocator and the panic handler. Everything it does is forward to
//! [`SampleDriver`] / [`handle_ioctl`](crate::ioctl::handle_ioctl).
//!
//! | WDF | here | logic |
//! |---|---|---|
//! | `DriverEntry` | [`driver_entry`]: `WdfDriverCreate` | |
//! | `EvtDriverDeviceAdd` | [`evt_driver_device_add`]: PnP/power callbacks, `WdfDeviceCreate` with a [`DeviceContext`], the driver's device interface, a non-power-managed default queue | |
//! | `EvtDevicePrepareHardware` | creates the [`SampleDriver`] on a `KmdfPlatform` | `DeviceCallbacks::prepare_hardware` |
//! | `EvtDeviceD0Entry` / `D0Exit` | forward | targets opened / closed |
//! | `EvtDeviceReleaseHardware` | forwards, then drops the driver logic (before WDF deletes the device's children) | `DeviceCallbacks::release_hardware` |
//! | `EvtIoDeviceControl` | [`handle_ioctl`](crate::ioctl::handle_ioctl) on the request's output buffer | |
//! | `EvtCleanupCallback` (device) | drops the [`DeviceContext`] | |
//!
//! Type-checked, linted and documented for x64 and ARM64 Windows on Linux
//! by `cargo xtask check-windows`; linked and packaged only on Windows
//! (`.github/workflows/windows.yml`, with the WDK); nothing here runs on
//! Linux.

use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;

use dmf_kmdf::convert::wdk::guid_to_wdk;
use dmf_kmdf::{KmdfLock, KmdfPlatform};
use dmf_wdf::{DeviceCallbacks, Lock, Status};
use wdk_sys::ntddk::DbgPrint;
use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_EXECUTION_LEVEL, _WDF_IO_QUEUE_DISPATCH_TYPE,
    _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE, DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING,
    PDRIVER_OBJECT, ULONG, WDFCMRESLIST, WDFDEVICE, WDFDEVICE_INIT, WDFDRIVER, WDFOBJECT, WDFQUEUE,
    WDFREQUEST, WDF_DRIVER_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES,
    WDF_OBJECT_ATTRIBUTES, WDF_OBJECT_CONTEXT_TYPE_INFO, WDF_PNPPOWER_EVENT_CALLBACKS,
    WDF_POWER_DEVICE_STATE,
};

use crate::ioctl::GUID_DEVINTERFACE_SAMPLE_DRIVER;
use crate::stats::Statistics;
use crate::{SampleConfig, SampleDriver};

/// Non-paged pool for every Rust allocation (the layers touch their state at
/// `DISPATCH_LEVEL`), with every alignment honoured (the buffer pool keeps
/// 128-byte aligned slots; `wdk-alloc` would ignore that alignment).
#[cfg(not(test))]
#[global_allocator]
static GLOBAL_ALLOCATOR: dmf_kmdf::memory::KmdfAllocator = dmf_kmdf::memory::KMDF_ALLOCATOR;

/// Bug check code of a Rust panic: `'RPNC'`, as windows-drivers-rs uses.
pub const BUGCHECK_RUST_PANIC: u32 = u32::from_be_bytes(*b"RPNC");

/// A panic in a driver is a bug the kernel cannot recover from: log it to
/// the debugger (`DbgPrint`), then bug-check with [`BUGCHECK_RUST_PANIC`]
/// (parameters: file name pointer and length, line, column) instead of
/// spinning forever with locks held.
#[cfg(not(test))]
#[panic_handler]
#[allow(unreachable_code)] // whether the binding is `-> !` depends on bindgen
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;

    /// A fixed buffer: no allocation while panicking.
    struct Line {
        buf: [u8; 240],
        len: usize,
    }
    impl Write for Line {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let room = self.buf.len() - 1 - self.len;
            let n = s.len().min(room);
            self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
    let mut line = Line {
        buf: [0; 240],
        len: 0,
    };
    let _ = write!(line, "sample_driver: {info}");
    line.buf[line.len] = 0;
    // SAFETY: both strings are NUL-terminated; `%s` consumes the one argument.
    unsafe {
        DbgPrint(c"%s\n".as_ptr().cast(), line.buf.as_ptr());
    }
    let (file, row, col) = info
        .location()
        .map_or(("", 0, 0), |l| (l.file(), l.line(), l.column()));
    // SAFETY: KeBugCheckEx may be called at any IRQL; it does not return.
    unsafe {
        wdk_sys::ntddk::KeBugCheckEx(
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

/// `sizeof(T)` as the `ULONG` `Size` member of a WDF structure.
const fn wdf_size<T>() -> ULONG {
    const {
        assert!(size_of::<T>() <= ULONG::MAX as usize);
    }
    size_of::<T>() as ULONG
}

/// What the driver keeps per device, in the device's WDF context.
///
/// # Invariants
///
/// * `driver` is accessed only from the device's PnP/power callbacks, which
///   WDF serialises, and from the cleanup callback after them.
/// * `stats` is accessed only under its lock; it holds the statistics of
///   the live `driver` (or nothing) for `EvtIoDeviceControl`, which may run
///   concurrently with the PnP callbacks.
pub struct DeviceContext {
    driver: UnsafeCell<Option<SampleDriver<KmdfPlatform>>>,
    stats: KmdfLock<Option<Arc<Statistics<KmdfPlatform>>>>,
}

/// `WDF_OBJECT_CONTEXT_TYPE_INFO` is plain data pointing to statics.
#[repr(transparent)]
struct ContextTypeInfo(WDF_OBJECT_CONTEXT_TYPE_INFO);

// SAFETY: immutable after initialisation, points only to itself and a string
// literal, both 'static (what `WDF_DECLARE_CONTEXT_TYPE` declares in C).
unsafe impl Sync for ContextTypeInfo {}

/// `WDF_DECLARE_CONTEXT_TYPE(DeviceContext)`.
#[link_section = ".data"]
static DEVICE_CONTEXT_TYPE_INFO: ContextTypeInfo = ContextTypeInfo(WDF_OBJECT_CONTEXT_TYPE_INFO {
    Size: wdf_size::<WDF_OBJECT_CONTEXT_TYPE_INFO>(),
    ContextName: c"SampleDriverDeviceContext".as_ptr().cast(),
    ContextSize: size_of::<DeviceContext>(),
    UniqueType: ptr::addr_of!(DEVICE_CONTEXT_TYPE_INFO.0),
    EvtDriverGetUniqueContextType: None,
});

/// The device's [`DeviceContext`].
///
/// # Safety
///
/// `device` must be a live device created by [`evt_driver_device_add`]
/// (whose context was initialised there).
unsafe fn device_context<'a>(device: WDFDEVICE) -> &'a DeviceContext {
    // SAFETY: live handle with our context type (caller contract).
    let raw = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            device as WDFOBJECT,
            DEVICE_CONTEXT_TYPE_INFO.0.UniqueType
        )
    };
    // SAFETY: WDF returns the context memory of `device`, initialised in
    // `evt_driver_device_add` and valid until the device's cleanup callback.
    unsafe { &*raw.cast::<DeviceContext>() }
}

/// `DriverEntry`: creates the WDF driver object with
/// [`evt_driver_device_add`].
///
/// # Safety
///
/// Called by the kernel with a valid driver object and registry path.
#[cfg_attr(not(test), unsafe(export_name = "DriverEntry"))]
pub unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: wdf_size::<WDF_DRIVER_CONFIG>(),
        EvtDriverDeviceAdd: Some(evt_driver_device_add),
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: `driver` and `registry_path` come from the kernel; the config
    // is a valid WDF_DRIVER_CONFIG; no attributes and no handle are wanted.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver as PDRIVER_OBJECT,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &mut config,
            WDF_NO_HANDLE.cast::<WDFDRIVER>(),
        )
    };
    log(c"sample_driver: DriverEntry -> 0x%08X\n", status);
    status
}

/// `DbgPrint(format, status)`.
fn log(format: &core::ffi::CStr, status: NTSTATUS) {
    // SAFETY: `format` is NUL-terminated and takes exactly one 32-bit value.
    unsafe {
        DbgPrint(format.as_ptr().cast(), status);
    }
}

/// `EvtDriverDeviceAdd`: the driver's device, its context, its interface
/// and its IOCTL queue. The DMF logic is created in prepare-hardware.
extern "C" fn evt_driver_device_add(
    _driver: WDFDRIVER,
    mut device_init: *mut WDFDEVICE_INIT,
) -> NTSTATUS {
    let mut pnp_power = WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: wdf_size::<WDF_PNPPOWER_EVENT_CALLBACKS>(),
        EvtDevicePrepareHardware: Some(evt_device_prepare_hardware),
        EvtDeviceReleaseHardware: Some(evt_device_release_hardware),
        EvtDeviceD0Entry: Some(evt_device_d0_entry),
        EvtDeviceD0Exit: Some(evt_device_d0_exit),
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

    // WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, DeviceContext).
    let mut attributes = WDF_OBJECT_ATTRIBUTES {
        Size: wdf_size::<WDF_OBJECT_ATTRIBUTES>(),
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ContextTypeInfo: DEVICE_CONTEXT_TYPE_INFO.0.UniqueType,
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
    if !Status::from_raw(status).is_success() {
        log(c"sample_driver: WdfDeviceCreate failed 0x%08X\n", status);
        return status;
    }

    // SAFETY: the device was just created with our context type; no
    // callback can read the context before this function returns.
    let context = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            device as WDFOBJECT,
            DEVICE_CONTEXT_TYPE_INFO.0.UniqueType
        )
    }
    .cast::<DeviceContext>();
    // SAFETY: `context` is the device's zero-filled context memory of
    // `size_of::<DeviceContext>()` bytes (WDF aligns contexts to 16); it is
    // dropped in the device's cleanup callback.
    unsafe {
        context.write(DeviceContext {
            driver: UnsafeCell::new(None),
            stats: KmdfLock::new(None),
        });
    }

    let interface = guid_to_wdk(&GUID_DEVINTERFACE_SAMPLE_DRIVER);
    // SAFETY: live device; the GUID is a valid local; no reference string.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreateDeviceInterface,
            device,
            &interface,
            ptr::null()
        )
    };
    if !Status::from_raw(status).is_success() {
        log(
            c"sample_driver: WdfDeviceCreateDeviceInterface failed 0x%08X\n",
            status,
        );
        return status;
    }

    // WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(&config, WdfIoQueueDispatchParallel),
    // not power-managed: the figures can be read while the device is in D3.
    let mut queue_config = WDF_IO_QUEUE_CONFIG {
        Size: wdf_size::<WDF_IO_QUEUE_CONFIG>(),
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        PowerManaged: _WDF_TRI_STATE::WdfFalse,
        DefaultQueue: u8::from(true),
        EvtIoDeviceControl: Some(evt_io_device_control),
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
    if !Status::from_raw(status).is_success() {
        log(c"sample_driver: WdfIoQueueCreate failed 0x%08X\n", status);
    }
    status
}

/// Creates the DMF logic on the device and forwards prepare-hardware.
extern "C" fn evt_device_prepare_hardware(
    device: WDFDEVICE,
    _resources_raw: WDFCMRESLIST,
    _resources_translated: WDFCMRESLIST,
) -> NTSTATUS {
    // SAFETY: WDF calls this for a device created by evt_driver_device_add.
    let context = unsafe { device_context(device) };
    // SAFETY: the device outlives the platform's objects: the driver logic is
    // dropped in release-hardware, before WDF deletes the device.
    let platform = unsafe { KmdfPlatform::new(device) };
    let driver = match SampleDriver::new(platform, SampleConfig::default()) {
        Ok(driver) => driver,
        Err(status) => return status.raw(),
    };
    if let Err(status) = driver.prepare_hardware() {
        return status.raw();
    }
    *context.stats.lock() = Some(driver.shared_statistics());
    // SAFETY: PnP/power callbacks are serialised (DeviceContext invariant).
    unsafe { *context.driver.get() = Some(driver) };
    0
}

/// Forwards release-hardware, then drops the DMF logic (closing every
/// target) while the device's children still exist.
extern "C" fn evt_device_release_hardware(
    device: WDFDEVICE,
    _resources_translated: WDFCMRESLIST,
) -> NTSTATUS {
    // SAFETY: as in prepare-hardware.
    let context = unsafe { device_context(device) };
    // SAFETY: PnP/power callbacks are serialised (DeviceContext invariant).
    let driver = unsafe { (*context.driver.get()).take() };
    let Some(driver) = driver else { return 0 };
    let status = Status::from_result(driver.release_hardware());
    let stats = context.stats.lock().take();
    drop(stats);
    drop(driver);
    status.raw()
}

/// Forwards D0 entry (targets are opened).
extern "C" fn evt_device_d0_entry(device: WDFDEVICE, previous: WDF_POWER_DEVICE_STATE) -> NTSTATUS {
    // SAFETY: as in prepare-hardware.
    let context = unsafe { device_context(device) };
    // SAFETY: PnP/power callbacks are serialised (DeviceContext invariant).
    match unsafe { &*context.driver.get() } {
        Some(driver) => dmf_kmdf::device_callbacks::d0_entry(driver, previous),
        None => 0,
    }
}

/// Forwards D0 exit (targets are closed).
extern "C" fn evt_device_d0_exit(device: WDFDEVICE, target: WDF_POWER_DEVICE_STATE) -> NTSTATUS {
    // SAFETY: as in prepare-hardware.
    let context = unsafe { device_context(device) };
    // SAFETY: PnP/power callbacks are serialised (DeviceContext invariant).
    match unsafe { &*context.driver.get() } {
        Some(driver) => dmf_kmdf::device_callbacks::d0_exit(driver, target),
        None => 0,
    }
}

/// Drops the device context (the DMF logic is already gone: release-hardware).
extern "C" fn evt_device_cleanup(object: WDFOBJECT) {
    // SAFETY: `object` is our device, being cleaned up; no other callback of
    // it runs any more.
    let raw = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            object,
            DEVICE_CONTEXT_TYPE_INFO.0.UniqueType
        )
    }
    .cast::<DeviceContext>();
    if !raw.is_null() {
        // SAFETY: initialised in evt_driver_device_add, dropped only here.
        unsafe { ptr::drop_in_place(raw) };
    }
}

/// `EvtIoDeviceControl` of the default queue: the driver's IOCTLs.
///
/// The IOCTLs are `METHOD_BUFFERED` and take no input; input and output
/// share the system buffer, so only the output buffer is retrieved.
extern "C" fn evt_io_device_control(
    queue: WDFQUEUE,
    request: WDFREQUEST,
    output_buffer_length: usize,
    _input_buffer_length: usize,
    io_control_code: ULONG,
) {
    // SAFETY: `queue` is the live queue this callback belongs to.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueGetDevice, queue) };
    // SAFETY: the queue's device was created by evt_driver_device_add.
    let context = unsafe { device_context(device) };
    let stats = context.stats.lock().clone();
    let (status, information) = match stats {
        None => (Status::DEVICE_NOT_READY, 0),
        Some(_) if output_buffer_length == 0 => (Status::BUFFER_TOO_SMALL, 0),
        Some(stats) => {
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
                match crate::ioctl::handle_ioctl(&stats, io_control_code, &[], output) {
                    Ok(n) => (Status::SUCCESS, n),
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
