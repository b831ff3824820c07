//! The thread's IRQL and the spin locks that raise it:
//! `KeAcquireSpinLockRaiseToDpc`, `KeReleaseSpinLock`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Mutex;

use dmf_sim::{SimLock, SimLockGuard};
use dmf_wdf::{Event, Lock, Platform};
use wdk_sys::*;

use crate::machine::current;
use crate::object::lock;

/// `PASSIVE_LEVEL`.
pub(crate) const PASSIVE_LEVEL: KIRQL = 0;
/// `DISPATCH_LEVEL`.
pub(crate) const DISPATCH_LEVEL: KIRQL = 2;
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
