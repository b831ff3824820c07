//! The kernel routines `dmf-kmdf` calls directly (`wdm.h` / `ntddk.h`), as
//! unmangled `extern "C"` functions with the stand-in's signatures (on x64
//! and ARM64 Windows `NTAPI` is the C convention; on the Linux host "C" is
//! the platform's).
//!
//! | routine | emulated by |
//! |---|---|
//! | `ExAllocatePool2` / `ExFreePool` | the simulator's allocator (its allocation counters and injected allocation failures); the pool remembers each block's size, and freeing an unknown block panics (`BAD_POOL_CALLER`) |
//! | `KeInitializeEvent` / `KeSetEvent` / `KeClearEvent` / `KeReadStateEvent` / `KeWaitForSingleObject` | a simulator event per `KEVENT` address (notification events only), dropped when its pool block is freed |
//! | `KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock` | a simulator spin lock per `KSPIN_LOCK` address (in dispatch context while held), and the thread's IRQL |
//! | `KeQueryInterruptTimePrecise` | the simulator's clock |
//! | `IoRegisterPlugPlayNotification` / `IoUnregisterPlugPlayNotificationEx` | the simulator's interface notifications, on its PnP thread |
//! | `DbgPrint` | the machine's debug output |
//! | `KeBugCheckEx` | a panic naming the bug check (which aborts: the routine cannot unwind) |

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use dmf_sim::{SimLock, SimLockGuard};
use dmf_wdf::{Event, Guid, InterfaceNotificationHandler, Lock, Platform};
use wdk_sys::{
    _EVENT_TYPE, _IO_NOTIFICATION_EVENT_CATEGORY, BOOLEAN, DEVICE_INTERFACE_CHANGE_NOTIFICATION,
    EVENT_TYPE, GUID, IO_NOTIFICATION_EVENT_CATEGORY, KIRQL, KPRIORITY, KPROCESSOR_MODE,
    KWAIT_REASON, LONG, NTSTATUS, PCSTR, PDRIVER_NOTIFICATION_CALLBACK_ROUTINE, PDRIVER_OBJECT,
    PKSPIN_LOCK, PLARGE_INTEGER, PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES,
    POOL_FLAGS, POOL_FLAG_NON_PAGED, PRKEVENT, PULONG64, PVOID, SIZE_T, ULONG, ULONG64, ULONG_PTR,
    UNICODE_STRING,
};

use crate::machine::current;
use crate::object::lock;

/// `PASSIVE_LEVEL`.
pub(crate) const PASSIVE_LEVEL: KIRQL = 0;
/// `DISPATCH_LEVEL`.
pub(crate) const DISPATCH_LEVEL: KIRQL = 2;
/// `STATUS_SUCCESS`.
const STATUS_SUCCESS: NTSTATUS = 0;
/// `STATUS_TIMEOUT`.
const STATUS_TIMEOUT: NTSTATUS = 0x0000_0102;
/// Alignment of every pool block (`MEMORY_ALLOCATION_ALIGNMENT` on 64-bit
/// Windows).
const POOL_ALIGNMENT: usize = 16;

thread_local! {
    /// The thread's IRQL as raised and lowered by the spin-lock routines.
    static IRQL: Cell<KIRQL> = const { Cell::new(PASSIVE_LEVEL) };
    /// The spin locks this thread holds, innermost last.
    static HELD: RefCell<Vec<(usize, SimLockGuard<'static, ()>)>> = const { RefCell::new(Vec::new()) };
}

/// The current thread's IRQL (`KeGetCurrentIrql`) as far as the emulated
/// spin locks raised it.
pub(crate) fn current_irql() -> KIRQL {
    IRQL.with(Cell::get)
}

/// Panics unless the thread is below `DISPATCH_LEVEL`: `function` may wait.
///
/// Two sources say the thread is at `DISPATCH_LEVEL`: the emulated spin
/// locks (this module), and the simulator's dispatch contexts (completion
/// routines, its own spin locks). The simulator's is asked by a wait on a
/// signalled event, which returns at once in passive context and panics in
/// dispatch context, as all the simulator's waits do.
#[track_caller]
pub(crate) fn assert_passive(function: &str) {
    let irql = current_irql();
    assert!(
        irql < DISPATCH_LEVEL,
        "{function} called at IRQL {irql} (a spin lock is held): it must be called at \
         IRQL < DISPATCH_LEVEL (IRQL_NOT_LESS_OR_EQUAL)"
    );
    let Ok(probe) = current().sim.create_event(true) else {
        // The simulator refused the event (an injected fault): no probe.
        return;
    };
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe.wait(Some(1))));
    assert!(
        waited.is_ok(),
        "{function} called in dispatch context (a completion routine, or a spin lock \
         held): it must be called at IRQL < DISPATCH_LEVEL"
    );
}

/// The simulator spin lock standing for each `KSPIN_LOCK` address ever used.
/// A `KSPIN_LOCK` is a word the driver may move while nobody holds it, so
/// the address is only an identity while held; the entries are small and
/// live for the process.
static SPIN_LOCKS: Mutex<Option<HashMap<usize, &'static SimLock<()>>>> = Mutex::new(None);

fn spin_lock_at(address: usize) -> &'static SimLock<()> {
    let mut map = lock(&SPIN_LOCKS);
    map.get_or_insert_with(HashMap::new)
        .entry(address)
        .or_insert_with(|| Box::leak(Box::new(SimLock::new(()))))
}

/// `KeAcquireSpinLockRaiseToDpc`: acquires the lock at `DISPATCH_LEVEL`,
/// returning the previous IRQL. Acquiring a lock the thread already holds
/// panics (on Windows the processor would spin forever).
///
/// # Safety
///
/// `spin_lock` must point to a `KSPIN_LOCK` (it is used as an identity only).
#[no_mangle]
pub unsafe extern "C" fn KeAcquireSpinLockRaiseToDpc(spin_lock: PKSPIN_LOCK) -> KIRQL {
    assert!(
        !spin_lock.is_null(),
        "KeAcquireSpinLockRaiseToDpc: NULL lock"
    );
    let old = current_irql();
    assert!(
        old <= DISPATCH_LEVEL,
        "KeAcquireSpinLockRaiseToDpc at IRQL {old} > DISPATCH_LEVEL"
    );
    let address = spin_lock as usize;
    let guard = spin_lock_at(address).lock();
    // The word reads non-zero while held, as a real KSPIN_LOCK does.
    // SAFETY: the caller's KSPIN_LOCK, written only by these routines.
    unsafe { spin_lock.write_volatile(1) };
    HELD.with(|h| h.borrow_mut().push((address, guard)));
    IRQL.with(|i| i.set(DISPATCH_LEVEL));
    old
}

/// `KeReleaseSpinLock`: releases a lock this thread holds and lowers the
/// IRQL to `new_irql`. Releasing a lock the thread does not hold panics
/// (`SPIN_LOCK_NOT_OWNED`).
///
/// # Safety
///
/// `spin_lock` must point to a `KSPIN_LOCK` acquired by this thread.
#[no_mangle]
pub unsafe extern "C" fn KeReleaseSpinLock(spin_lock: PKSPIN_LOCK, new_irql: KIRQL) {
    let address = spin_lock as usize;
    let guard = HELD.with(|h| {
        let mut held = h.borrow_mut();
        let at = held.iter().rposition(|(a, _)| *a == address);
        at.map(|i| held.remove(i).1)
    });
    let Some(guard) = guard else {
        panic!("KeReleaseSpinLock: {spin_lock:p} is not held by this thread (SPIN_LOCK_NOT_OWNED)");
    };
    // SAFETY: as in acquire.
    unsafe { spin_lock.write_volatile(0) };
    drop(guard);
    IRQL.with(|i| i.set(new_irql));
}

/// `ExAllocatePool2`: non-paged memory from the simulator's allocator,
/// 16-byte aligned; null when it fails (the simulator may inject failures).
///
/// # Safety
///
/// None beyond the documented contract.
#[no_mangle]
pub unsafe extern "C" fn ExAllocatePool2(flags: POOL_FLAGS, size: SIZE_T, _tag: ULONG) -> PVOID {
    assert!(
        flags & POOL_FLAG_NON_PAGED != 0 || current_irql() < DISPATCH_LEVEL,
        "ExAllocatePool2: paged pool at DISPATCH_LEVEL"
    );
    let machine = current();
    let size = size as usize;
    let Ok(layout) = std::alloc::Layout::from_size_align(size.max(1), POOL_ALIGNMENT) else {
        return std::ptr::null_mut();
    };
    match machine.sim.allocate(layout) {
        Some(block) => {
            lock(&machine.pool).insert(block.as_ptr() as usize, size.max(1));
            block.as_ptr().cast::<c_void>()
        }
        None => std::ptr::null_mut(),
    }
}

/// `ExFreePool`: returns a block of `ExAllocatePool2`. The kernel events
/// initialised inside it end with it.
///
/// # Safety
///
/// `block` must come from `ExAllocatePool2` and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn ExFreePool(block: PVOID) {
    let machine = current();
    let address = block as usize;
    let size = lock(&machine.pool).remove(&address).unwrap_or_else(|| {
        panic!("ExFreePool: {block:p} is not a live pool block (BAD_POOL_CALLER)")
    });
    let events: Vec<_> = {
        let mut map = lock(&machine.events);
        let inside: Vec<usize> = map
            .range(address..address + size)
            .map(|(a, _)| *a)
            .collect();
        inside.into_iter().filter_map(|a| map.remove(&a)).collect()
    };
    drop(events);
    let layout = std::alloc::Layout::from_size_align(size, POOL_ALIGNMENT).expect("valid before");
    // SAFETY: allocated by `ExAllocatePool2` with this layout, freed once.
    unsafe {
        machine
            .sim
            .deallocate(NonNull::new(block.cast::<u8>()).expect("non-null"), layout)
    };
}

/// The simulator event standing for the `KEVENT` at `event`.
#[track_caller]
fn event_at(event: PRKEVENT, routine: &str) -> Arc<dmf_sim::SimEvent> {
    let machine = current();
    let map = lock(&machine.events);
    match map.get(&(event as usize)) {
        Some(e) => Arc::clone(e),
        None => panic!("{routine}: {event:p} is not a KEVENT initialised with KeInitializeEvent"),
    }
}

/// `KeInitializeEvent`: a notification event (`SynchronizationEvent` is not
/// emulated: `dmf-kmdf` does not use it).
///
/// # Safety
///
/// `event` must point to a `KEVENT` in memory that stays put until freed.
#[no_mangle]
pub unsafe extern "C" fn KeInitializeEvent(event: PRKEVENT, kind: EVENT_TYPE, state: BOOLEAN) {
    assert!(
        kind == _EVENT_TYPE::NotificationEvent,
        "KeInitializeEvent: only NotificationEvent is emulated"
    );
    let machine = current();
    let sim_event = machine
        .sim
        .create_event(state != 0)
        .unwrap_or_else(|s| panic!("KeInitializeEvent cannot fail (simulator refused: {s})"));
    lock(&machine.events).insert(event as usize, Arc::new(sim_event));
}

/// `KeSetEvent` with `Wait = FALSE`; returns the previous state.
///
/// # Safety
///
/// `event` must be an initialised `KEVENT`.
#[no_mangle]
pub unsafe extern "C" fn KeSetEvent(event: PRKEVENT, _increment: KPRIORITY, wait: BOOLEAN) -> LONG {
    assert!(wait == 0, "KeSetEvent: Wait = TRUE is not emulated");
    let e = event_at(event, "KeSetEvent");
    let previous = e.is_set();
    e.set();
    LONG::from(previous)
}

/// `KeClearEvent`.
///
/// # Safety
///
/// `event` must be an initialised `KEVENT`.
#[no_mangle]
pub unsafe extern "C" fn KeClearEvent(event: PRKEVENT) {
    event_at(event, "KeClearEvent").reset();
}

/// `KeReadStateEvent`.
///
/// # Safety
///
/// `event` must be an initialised `KEVENT`.
#[no_mangle]
pub unsafe extern "C" fn KeReadStateEvent(event: PRKEVENT) -> LONG {
    LONG::from(event_at(event, "KeReadStateEvent").is_set())
}

/// `KeWaitForSingleObject` on a `KEVENT`: `STATUS_SUCCESS` when signalled,
/// `STATUS_TIMEOUT` when a relative timeout expires. A non-zero timeout at
/// `DISPATCH_LEVEL` panics (the kernel bug-checks); absolute timeouts are not
/// emulated.
///
/// # Safety
///
/// `object` must be an initialised `KEVENT`; `timeout` null or readable.
#[no_mangle]
pub unsafe extern "C" fn KeWaitForSingleObject(
    object: PVOID,
    _reason: KWAIT_REASON,
    _mode: KPROCESSOR_MODE,
    _alertable: BOOLEAN,
    timeout: PLARGE_INTEGER,
) -> NTSTATUS {
    let timeout_ms = if timeout.is_null() {
        None
    } else {
        // SAFETY: caller contract.
        let t = unsafe { (*timeout).QuadPart };
        assert!(
            t <= 0,
            "KeWaitForSingleObject: absolute timeouts are not emulated"
        );
        // 100 ns units, rounded up to whole milliseconds.
        Some(u32::try_from(t.unsigned_abs().div_ceil(10_000)).unwrap_or(u32::MAX))
    };
    if timeout_ms != Some(0) {
        assert_passive("KeWaitForSingleObject (non-zero timeout)");
    }
    let e = event_at(object.cast(), "KeWaitForSingleObject");
    if e.wait(timeout_ms) {
        STATUS_SUCCESS
    } else {
        STATUS_TIMEOUT
    }
}

/// `KeQueryInterruptTimePrecise`: the simulator's clock in 100 ns units
/// (also written to `qpc_timestamp`).
///
/// # Safety
///
/// `qpc_timestamp` must be writable.
#[no_mangle]
pub unsafe extern "C" fn KeQueryInterruptTimePrecise(qpc_timestamp: PULONG64) -> ULONG64 {
    let now = current().sim.now_100ns();
    if !qpc_timestamp.is_null() {
        // SAFETY: caller contract.
        unsafe { qpc_timestamp.write(now) };
    }
    now
}

/// `KeBugCheckEx`: panics with the bug check (for `'RPNC'`, the Rust panic
/// code of `dmf_kmdf::shell`, with the file and line of the panic). The
/// routine is `extern "C"`, so the panic aborts the process: the machine
/// stops, as it does on Windows.
///
/// # Safety
///
/// For `'RPNC'`, parameters 1 and 2 are a file name's address and length.
#[no_mangle]
pub unsafe extern "C" fn KeBugCheckEx(
    code: ULONG,
    p1: ULONG_PTR,
    p2: ULONG_PTR,
    p3: ULONG_PTR,
    p4: ULONG_PTR,
) -> ! {
    if code == u32::from_be_bytes(*b"RPNC") && p1 != 0 {
        // SAFETY: 'RPNC' passes the panic location's file name and length.
        let file = unsafe { std::slice::from_raw_parts(p1 as *const u8, p2 as usize) };
        panic!(
            "KeBugCheckEx('RPNC'): Rust panic at {}:{p3}:{p4}",
            String::from_utf8_lossy(file)
        );
    }
    panic!("KeBugCheckEx(0x{code:08X}, 0x{p1:X}, 0x{p2:X}, 0x{p3:X}, 0x{p4:X})");
}

/// `DbgPrint(format, string)`: the only form `dmf-kmdf` uses (`"%s\n"` with
/// one string). The C declaration is variadic; on the Linux x86-64 and
/// AArch64 ABIs a variadic call passes its first arguments exactly as this
/// two-parameter function receives them. Any other format panics.
///
/// # Safety
///
/// `format` and `argument` must be NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn DbgPrint(format: PCSTR, argument: *const c_char) -> ULONG {
    // SAFETY: caller contract.
    let format = unsafe { CStr::from_ptr(format) }.to_string_lossy();
    assert!(
        format.matches('%').count() == 1 && format.contains("%s"),
        "DbgPrint: only a format with one %s is emulated, got {format:?}"
    );
    // SAFETY: caller contract (the %s argument).
    let text = unsafe { CStr::from_ptr(argument) }.to_string_lossy();
    let line = format.replacen("%s", &text, 1);
    let line = line.trim_end_matches('\n').to_owned();
    if std::env::var_os("DMF_KMDF_EMU_DBGPRINT").is_some() {
        eprintln!("{line}");
    }
    lock(&current().log).push(line);
    STATUS_SUCCESS as ULONG
}

/// A PnP notification registration: the driver's callback and context.
struct PnpCallback {
    callback: unsafe extern "C" fn(PVOID, PVOID) -> NTSTATUS,
    context: usize,
    class: GUID,
}

// SAFETY: the context is the driver's, valid until unregistration; the
// callback is a plain function.
unsafe impl Send for PnpCallback {}
// SAFETY: as above.
unsafe impl Sync for PnpCallback {}

/// `GUID_DEVICE_INTERFACE_ARRIVAL`.
const ARRIVAL: Guid = Guid::from_u128(0xCB3A4004_46F0_11D0_B08F_00609713053F);
/// `GUID_DEVICE_INTERFACE_REMOVAL`.
const REMOVAL: Guid = Guid::from_u128(0xCB3A4005_46F0_11D0_B08F_00609713053F);

impl PnpCallback {
    fn deliver(&self, event: Guid, link: &str) {
        let mut units: Vec<u16> = link.encode_utf16().collect();
        let bytes = u16::try_from(units.len() * 2).expect("symbolic link fits a UNICODE_STRING");
        let mut name = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: units.as_mut_ptr(),
        };
        let mut notification = DEVICE_INTERFACE_CHANGE_NOTIFICATION {
            Version: 1,
            Size: size_of::<DEVICE_INTERFACE_CHANGE_NOTIFICATION>() as u16,
            Event: guid_to_wdk(&event),
            InterfaceClassGuid: self.class,
            SymbolicLinkName: &mut name,
        };
        // SAFETY: the driver's callback with its context; the notification
        // and the name it points to live for the call. PnP callbacks run at
        // PASSIVE_LEVEL on the simulator's PnP thread.
        let status = unsafe {
            (self.callback)(
                std::ptr::addr_of_mut!(notification).cast::<c_void>(),
                self.context as PVOID,
            )
        };
        // An interface-change callback returns STATUS_SUCCESS (PnP ignores
        // anything else, and the documentation requires success).
        assert_eq!(
            status, STATUS_SUCCESS,
            "an interface-change notification callback returned 0x{status:08X}"
        );
    }
}

impl InterfaceNotificationHandler for PnpCallback {
    fn interface_arrived(&self, symbolic_link: &str) {
        self.deliver(ARRIVAL, symbolic_link);
    }

    fn interface_removed(&self, symbolic_link: &str) {
        self.deliver(REMOVAL, symbolic_link);
    }
}

fn guid_to_wdk(g: &Guid) -> GUID {
    GUID {
        Data1: g.data1,
        Data2: g.data2,
        Data3: g.data3,
        Data4: g.data4,
    }
}

/// `IoRegisterPlugPlayNotification` for `EventCategoryDeviceInterfaceChange`
/// with `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES` (the only
/// form emulated): the simulator's interface notifications, existing
/// interfaces first, on its PnP thread.
///
/// # Safety
///
/// `data` must point to the interface class `GUID`; `context` must stay
/// valid until `IoUnregisterPlugPlayNotificationEx`.
#[no_mangle]
pub unsafe extern "C" fn IoRegisterPlugPlayNotification(
    category: IO_NOTIFICATION_EVENT_CATEGORY,
    flags: ULONG,
    data: PVOID,
    driver_object: PDRIVER_OBJECT,
    callback: PDRIVER_NOTIFICATION_CALLBACK_ROUTINE,
    context: PVOID,
    entry: *mut PVOID,
) -> NTSTATUS {
    assert_passive("IoRegisterPlugPlayNotification");
    assert!(
        category == _IO_NOTIFICATION_EVENT_CATEGORY::EventCategoryDeviceInterfaceChange,
        "IoRegisterPlugPlayNotification: only device-interface notifications are emulated"
    );
    assert!(
        flags == PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES,
        "IoRegisterPlugPlayNotification: only INCLUDE_EXISTING_INTERFACES is emulated"
    );
    assert!(
        !driver_object.is_null(),
        "IoRegisterPlugPlayNotification: NULL driver object"
    );
    assert!(
        !data.is_null() && !entry.is_null(),
        "IoRegisterPlugPlayNotification: NULL argument"
    );
    let callback = callback.expect("IoRegisterPlugPlayNotification: NULL callback");
    // SAFETY: caller contract.
    let class = unsafe { data.cast::<GUID>().read() };
    let handler = Arc::new(PnpCallback {
        callback,
        context: context as usize,
        class,
    });
    let guid = Guid {
        data1: class.Data1,
        data2: class.Data2,
        data3: class.Data3,
        data4: class.Data4,
    };
    let machine = current();
    match machine.sim.register_interface_notification(&guid, handler) {
        Ok(notification) => {
            *lock(&machine.registrations) += 1;
            // SAFETY: caller contract (writable out-parameter).
            unsafe { entry.write(Box::into_raw(Box::new(notification)).cast::<c_void>()) };
            STATUS_SUCCESS
        }
        Err(status) => status.raw(),
    }
}

/// `IoUnregisterPlugPlayNotificationEx`: when it returns, no callback of the
/// registration runs or will run.
///
/// # Safety
///
/// `entry` must come from `IoRegisterPlugPlayNotification`, unregistered once.
#[no_mangle]
pub unsafe extern "C" fn IoUnregisterPlugPlayNotificationEx(entry: PVOID) -> NTSTATUS {
    assert!(
        !entry.is_null(),
        "IoUnregisterPlugPlayNotificationEx: NULL entry"
    );
    // SAFETY: the Box made by IoRegisterPlugPlayNotification (caller contract).
    let notification = unsafe { Box::from_raw(entry.cast::<dmf_sim::SimNotification>()) };
    drop(notification);
    let machine = current();
    *lock(&machine.registrations) -= 1;
    STATUS_SUCCESS
}
