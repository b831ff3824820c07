//! Misuse stops the emulated machine as the KMDF verifier or the kernel
//! would: an invalid or deleted handle, a wait with a spin lock held, a spin
//! lock acquired twice, a timer deleted from its own callback, a request
//! deleted while in flight.
//!
//! The emulated functions are `extern "C"`: a panic in them aborts the
//! process, as a bug check stops the machine. So each case runs in a child
//! process of this test binary (selected by an environment variable), and
//! the test checks that the child died with the expected message.

use std::process::Command;
use std::sync::{Arc, Mutex};

use dmf_kmdf::{KmdfLock, KmdfPlatform, KmdfTimer};
use dmf_kmdf_emu::Machine;
use dmf_sim::{DeviceSpec, ParkingDevice, Sim};
use dmf_wdf::{
    Event, IoTarget, Lock, OpenMode, OpenParams, Platform, RawBuffer, RequestType, SendOptions,
    ShareAccess, TimerHandler,
};

/// Names the case the child process runs.
const CASE: &str = "DMF_KMDF_EMU_MISUSE_CASE";

/// In the child: runs `case`, which must stop the process. In the parent:
/// runs this test in a child and checks it failed with `expected` in its
/// output.
fn misuse(name: &str, expected: &str, case: impl FnOnce()) {
    if std::env::var(CASE).as_deref() == Ok(name) {
        case();
        eprintln!("MISUSE NOT DETECTED");
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "{name}: the child survived:\n{stderr}"
    );
    assert!(
        !stderr.contains("MISUSE NOT DETECTED"),
        "{name}: not detected:\n{stderr}"
    );
    assert!(
        stderr.contains(expected),
        "{name}: expected {expected:?} in:\n{stderr}"
    );
}

/// A machine with a bare device and the platform on it.
fn machine() -> (Machine, dmf_kmdf_emu::Device, KmdfPlatform) {
    let machine = Machine::new(Sim::default());
    let device = machine.bare_device();
    // SAFETY: the device outlives everything the cases create (or the case
    // is exactly that it does not).
    let platform = unsafe { KmdfPlatform::new(device.handle()) };
    (machine, device, platform)
}

struct Nothing;
impl TimerHandler for Nothing {
    fn fired(&self) {}
}

#[test]
fn an_invalid_handle_is_refused() {
    misuse(
        "an_invalid_handle_is_refused",
        "is not a WDF object",
        || {
            let _machine = Machine::new(Sim::default());
            // SAFETY: deliberately wrong: the handle is no device.
            let platform = unsafe { KmdfPlatform::new(0x1234 as wdk_sys::WDFDEVICE) };
            let _ = platform.create_timer(Arc::new(Nothing));
        },
    );
}

#[test]
fn a_wait_with_a_spin_lock_held_bug_checks() {
    misuse(
        "a_wait_with_a_spin_lock_held_bug_checks",
        "IRQL_NOT_LESS_OR_EQUAL",
        || {
            let (_machine, _device, platform) = machine();
            let event = platform.create_event(false).unwrap();
            let lock = KmdfLock::new(());
            let _held = lock.lock();
            event.wait(Some(10));
        },
    );
}

#[test]
fn a_spin_lock_acquired_twice_is_caught() {
    misuse(
        "a_spin_lock_acquired_twice_is_caught",
        "acquired again by the thread holding it",
        || {
            let (_machine, _device, _platform) = machine();
            let lock = KmdfLock::new(0u32);
            let _first = lock.lock();
            let _second = lock.lock();
        },
    );
}

/// Drops its own timer when it fires.
struct DropsItself(Mutex<Option<KmdfTimer>>);
impl TimerHandler for DropsItself {
    fn fired(&self) {
        drop(self.0.lock().unwrap().take());
    }
}

#[test]
fn a_timer_deleted_from_its_own_callback_is_caught() {
    misuse(
        "a_timer_deleted_from_its_own_callback_is_caught",
        "own handler",
        || {
            let (_machine, _device, platform) = machine();
            let handler = Arc::new(DropsItself(Mutex::new(None)));
            let timer = platform.create_timer(Arc::clone(&handler)).unwrap();
            dmf_wdf::Timer::start(&timer, 1);
            *handler.0.lock().unwrap() = Some(timer);
            // The abort comes with the callback; the wait only bounds it.
            std::thread::sleep(std::time::Duration::from_secs(30));
        },
    );
}

#[test]
fn a_layer_outliving_its_device_uses_a_deleted_handle() {
    misuse(
        "a_layer_outliving_its_device_uses_a_deleted_handle",
        // The timer was deleted with the device and freed: its handle is
        // no object any more.
        "is not a WDF object (never created, or deleted)",
        || {
            let (machine, device, platform) = machine();
            let timer = platform.create_timer(Arc::new(Nothing)).unwrap();
            device.remove().unwrap();
            assert!(
                machine
                    .leaks()
                    .iter()
                    .any(|l| l.contains("deleted with WDFDEVICE")),
                "{:?}",
                machine.leaks()
            );
            drop(timer);
        },
    );
}

#[test]
fn a_request_deleted_in_flight_is_caught() {
    misuse(
        "a_request_deleted_in_flight_is_caught",
        "still in flight",
        || {
            let (machine, _device, platform) = machine();
            let parking = ParkingDevice::new();
            let bus = machine.sim().bus();
            let id = bus
                .add_device(DeviceSpec::new("p", parking.clone()))
                .unwrap();
            let link = bus.device_link(id).unwrap();
            let target = platform.create_io_target().unwrap();
            target
                .open(
                    &OpenParams {
                        symbolic_link: &link,
                        open_mode: OpenMode::READ_WRITE,
                        share_access: ShareAccess::READ_WRITE,
                    },
                    Arc::new(dmf_sim::NoTargetEvents),
                )
                .unwrap();
            let request = platform.create_request(Some(&target)).unwrap();
            static OUT: Mutex<[u8; 4]> = Mutex::new([0; 4]);
            let mut out = OUT.lock().unwrap();
            // SAFETY: a static buffer.
            unsafe {
                target.format_request(
                    &request,
                    RequestType::Ioctl,
                    1,
                    None,
                    Some(RawBuffer::from_mut_slice(&mut *out)),
                )
            }
            .unwrap();
            struct Ignore;
            impl dmf_wdf::CompletionRoutine for Ignore {
                fn completed(self: Arc<Self>, _: dmf_wdf::Completed) {}
            }
            target
                .send(&request, SendOptions { timeout_ms: 0 }, Arc::new(Ignore))
                .unwrap();
            assert!(parking.wait_for_pending(1, std::time::Duration::from_secs(5)));
            drop(request);
        },
    );
}

#[test]
fn a_wait_lock_acquired_twice_by_its_owner_is_caught() {
    misuse(
        "a_wait_lock_acquired_twice_by_its_owner_is_caught",
        "not recursive",
        || {
            let _machine = Machine::new(Sim::default());
            type Create = unsafe extern "C" fn(
                wdk_sys::PWDF_DRIVER_GLOBALS,
                wdk_sys::PWDF_OBJECT_ATTRIBUTES,
                *mut wdk_sys::WDFOBJECT,
            ) -> wdk_sys::NTSTATUS;
            type Acquire = unsafe extern "C" fn(
                wdk_sys::PWDF_DRIVER_GLOBALS,
                wdk_sys::WDFOBJECT,
                *mut wdk_sys::LONGLONG,
            ) -> wdk_sys::NTSTATUS;
            // SAFETY: the emulated table's wait-lock entries (KMDF 1.33
            // indices 312 and 313) with their types.
            unsafe {
                let table = dmf_kmdf_emu::WdfFunctions_01033;
                let globals = dmf_kmdf_emu::WdfDriverGlobals;
                let create: Create = std::mem::transmute(table.add(312).read().unwrap());
                let acquire: Acquire = std::mem::transmute(table.add(313).read().unwrap());
                let mut lock = std::ptr::null_mut();
                assert_eq!(create(globals, std::ptr::null_mut(), &mut lock), 0);
                assert_eq!(acquire(globals, lock, std::ptr::null_mut()), 0);
                acquire(globals, lock, std::ptr::null_mut());
            }
        },
    );
}

/// Creates a target from a completion routine (dispatch context).
struct CreatesATarget(KmdfPlatform);
impl dmf_wdf::CompletionRoutine for CreatesATarget {
    fn completed(self: Arc<Self>, _: dmf_wdf::Completed) {
        let _ = self.0.create_io_target();
    }
}

#[test]
fn a_passive_level_function_in_a_completion_routine_is_caught() {
    misuse(
        "a_passive_level_function_in_a_completion_routine_is_caught",
        "WdfIoTargetCreate called in dispatch context",
        || {
            let (machine, _device, platform) = machine();
            let bus = machine.sim().bus();
            let id = bus
                .add_device(DeviceSpec::new("e", Arc::new(dmf_sim::EchoDevice::new())))
                .unwrap();
            let link = bus.device_link(id).unwrap();
            let target = platform.create_io_target().unwrap();
            target
                .open(
                    &OpenParams {
                        symbolic_link: &link,
                        open_mode: OpenMode::READ_WRITE,
                        share_access: ShareAccess::READ_WRITE,
                    },
                    Arc::new(dmf_sim::NoTargetEvents),
                )
                .unwrap();
            let request = platform.create_request(Some(&target)).unwrap();
            static IN: [u8; 4] = [1, 2, 3, 4];
            // SAFETY: a static buffer.
            unsafe {
                target.format_request(
                    &request,
                    RequestType::Write,
                    0,
                    Some(RawBuffer::from_slice(&IN)),
                    None,
                )
            }
            .unwrap();
            target
                .send(
                    &request,
                    SendOptions { timeout_ms: 0 },
                    Arc::new(CreatesATarget(platform)),
                )
                .unwrap();
            // The abort comes with the callback; the wait only bounds it.
            std::thread::sleep(std::time::Duration::from_secs(30));
        },
    );
}

#[test]
fn a_function_the_emulation_lacks_names_its_table_index() {
    misuse(
        "a_function_the_emulation_lacks_names_its_table_index",
        "WdfFunctions_01033[3] (see _WDFFUNCENUM) is not emulated",
        || {
            let _machine = Machine::new(Sim::default());
            // SAFETY: index 3 exists; its stub takes any arguments.
            unsafe {
                let table = dmf_kmdf_emu::WdfFunctions_01033;
                let f: unsafe extern "C" fn() = table.add(3).read().unwrap();
                f();
            }
        },
    );
}
