//! Execution context of a loom thread: dispatch (in a completion routine,
//! or holding a lock) or passive.

use std::cell::Cell;

loom::thread_local! {
    /// Dispatch-context scopes entered and not left on this thread.
    static DISPATCH: Cell<u32> = Cell::new(0);
}

/// Dispatch context while alive (a completion routine runs, a lock is held).
pub(crate) struct DispatchScope(());

impl DispatchScope {
    pub(crate) fn enter() -> Self {
        DISPATCH.with(|d| d.set(d.get() + 1));
        DispatchScope(())
    }
}

impl Drop for DispatchScope {
    fn drop(&mut self) {
        DISPATCH.with(|d| d.set(d.get() - 1));
    }
}

/// Panics unless the calling thread is at passive level (as KMDF's verifier
/// breaks for a wait above `PASSIVE_LEVEL`).
pub(crate) fn assert_passive(op: &str) {
    let depth = DISPATCH.with(Cell::get);
    assert!(
        depth == 0,
        "dmf-loom-platform: {op} in dispatch context (a completion routine, or with a lock held)"
    );
}
