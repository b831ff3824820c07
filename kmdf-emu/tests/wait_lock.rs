//! `WdfWaitLockCreate` / `Acquire` / `Release` through the function table at
//! their KMDF 1.33 indices (the WDK stand-in does not declare them yet, so
//! the test calls the table entries directly, as the expansion of
//! `call_unsafe_wdf_function_binding!` would).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dmf_kmdf_emu::{Machine, WdfDriverGlobals, WdfFunctions_01033};
use dmf_sim::Sim;
use wdk_sys::{LONGLONG, NTSTATUS, PWDF_DRIVER_GLOBALS, PWDF_OBJECT_ATTRIBUTES, WDFOBJECT};

type Create =
    unsafe extern "C" fn(PWDF_DRIVER_GLOBALS, PWDF_OBJECT_ATTRIBUTES, *mut WDFOBJECT) -> NTSTATUS;
type Acquire = unsafe extern "C" fn(PWDF_DRIVER_GLOBALS, WDFOBJECT, *mut LONGLONG) -> NTSTATUS;
type Release = unsafe extern "C" fn(PWDF_DRIVER_GLOBALS, WDFOBJECT);
type Delete = unsafe extern "C" fn(PWDF_DRIVER_GLOBALS, WDFOBJECT);

const STATUS_TIMEOUT: NTSTATUS = 0x102;

/// The table entry `index` as a function of type `F`.
fn entry<F: Copy>(index: usize) -> F {
    // SAFETY: the emulated table has `WdfFunctionCount` entries; `index` is
    // one of them and holds a function of type `F` (same size as the
    // table's function pointers).
    unsafe {
        let f = WdfFunctions_01033.add(index).read().expect("emulated");
        std::mem::transmute_copy(&f)
    }
}

/// A `WDFWAITLOCK` handle, shareable across threads.
#[derive(Clone, Copy)]
struct Handle(usize);
// SAFETY: a framework handle, usable from any thread.
unsafe impl Send for Handle {}

fn globals() -> PWDF_DRIVER_GLOBALS {
    // SAFETY: written once at load.
    unsafe { WdfDriverGlobals }
}

fn acquire(lock: Handle, timeout_ms: Option<i64>) -> NTSTATUS {
    let mut t: LONGLONG = timeout_ms.map_or(0, |ms| -ms * 10_000);
    let timeout = if timeout_ms.is_some() {
        &raw mut t
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: a live wait lock; the timeout lives for the call.
    unsafe { entry::<Acquire>(313)(globals(), lock.0 as WDFOBJECT, timeout) }
}

fn release(lock: Handle) {
    // SAFETY: a live wait lock this thread holds.
    unsafe { entry::<Release>(314)(globals(), lock.0 as WDFOBJECT) }
}

#[test]
fn a_wait_lock_excludes_times_out_and_hands_over() {
    let machine = Machine::new(Sim::default());
    let mut raw: WDFOBJECT = std::ptr::null_mut();
    // SAFETY: no attributes, a writable handle.
    let status = unsafe { entry::<Create>(312)(globals(), std::ptr::null_mut(), &mut raw) };
    assert_eq!(status, 0);
    let lock = Handle(raw as usize);
    assert_eq!(acquire(lock, None), 0);
    let other = std::thread::spawn(move || {
        assert_eq!(
            acquire(lock, Some(0)),
            STATUS_TIMEOUT,
            "held: a zero timeout only tries"
        );
        let start = Instant::now();
        assert_eq!(acquire(lock, Some(20)), STATUS_TIMEOUT);
        assert!(start.elapsed() >= Duration::from_millis(20));
        // Waits until the owner releases it.
        assert_eq!(acquire(lock, None), 0);
        release(lock);
    });
    std::thread::sleep(Duration::from_millis(60));
    release(lock);
    other.join().unwrap();
    assert_eq!(acquire(lock, Some(0)), 0, "free again");
    release(lock);
    let shared = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(acquire(lock, None), 0);
                    let v = shared.load(std::sync::atomic::Ordering::Relaxed);
                    std::thread::yield_now();
                    shared.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                    release(lock);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        shared.load(std::sync::atomic::Ordering::Relaxed),
        800,
        "mutual exclusion"
    );
    // SAFETY: the driver's own lock, deleted once.
    unsafe { entry::<Delete>(208)(globals(), lock.0 as WDFOBJECT) };
    assert_eq!(machine.leaks(), Vec::<String>::new());
}
