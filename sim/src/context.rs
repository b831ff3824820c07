//! Thread-local execution context.
//!
//! The seam distinguishes *dispatch* context (completion routines, code
//! holding a spin lock: must not block) from *passive* context (ordinary
//! threads). The simulator tracks which one the current thread is in and
//! makes every blocking operation panic with a clear message when called in
//! dispatch context, as the WDF verifier would complain about IRQL.

use std::cell::Cell;

thread_local! {
    static DISPATCH_DEPTH: Cell<u32> = const { Cell::new(0) };
    static SIM_THREAD_OF: Cell<u64> = const { Cell::new(0) };
    static PNP_THREAD_OF: Cell<u64> = const { Cell::new(0) };
    static COMPLETION_THREAD_OF: Cell<u64> = const { Cell::new(0) };
    static ADVANCING: Cell<u64> = const { Cell::new(0) };
    static RUNNING_TIMER: Cell<usize> = const { Cell::new(0) };
    static RUNNING_WORK_ITEM: Cell<usize> = const { Cell::new(0) };
    static INLINE_SCOPE: Cell<u64> = const { Cell::new(0) };
    static INLINE_DEPTH: Cell<u32> = const { Cell::new(0) };
    static STACK_BASE: Cell<usize> = const { Cell::new(0) };
    static STACK_REPORTED: Cell<bool> = const { Cell::new(false) };
    static TOKEN: u8 = const { 0 };
}

/// Whether the current thread is in dispatch context.
pub(crate) fn in_dispatch() -> bool {
    DISPATCH_DEPTH.with(|d| d.get() > 0)
}

/// Panics if the current thread is in dispatch context: `op` would block.
#[track_caller]
pub(crate) fn assert_passive(op: &str) {
    if in_dispatch() && !std::thread::panicking() {
        panic!(
            "dmf-sim: {op} may block, but it was called in dispatch context \
             (inside a completion routine, or while holding a spin lock); \
             WDF requires PASSIVE_LEVEL for it"
        );
    }
}

/// Marks the current thread as being in dispatch context while alive.
pub(crate) struct DispatchScope(());

impl DispatchScope {
    pub(crate) fn enter() -> Self {
        DISPATCH_DEPTH.with(|d| d.set(d.get() + 1));
        DispatchScope(())
    }
}

impl Drop for DispatchScope {
    fn drop(&mut self) {
        DISPATCH_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// A number unique to the current thread while it lives.
pub(crate) fn thread_token() -> usize {
    TOKEN.with(|t| t as *const u8 as usize)
}

/// Marks the current thread as a thread of simulator `core`.
pub(crate) fn mark_sim_thread(core: u64) {
    SIM_THREAD_OF.with(|c| c.set(core));
}

/// Whether the current thread is one of simulator `core`'s threads.
pub(crate) fn is_sim_thread_of(core: u64) -> bool {
    SIM_THREAD_OF.with(|c| c.get() == core)
}

/// Marks the current thread as a completion thread of simulator `core`.
pub(crate) fn mark_completion_thread(core: u64) {
    COMPLETION_THREAD_OF.with(|c| c.set(core));
}

/// Whether the current thread is one of simulator `core`'s completion threads.
pub(crate) fn is_completion_thread_of(core: u64) -> bool {
    COMPLETION_THREAD_OF.with(|c| c.get() == core)
}

/// Marks the current thread as the PnP thread of simulator `core`.
pub(crate) fn mark_pnp_thread(core: u64) {
    PNP_THREAD_OF.with(|c| c.set(core));
}

/// Makes the current thread count as the PnP thread of a simulator while
/// alive (a registering thread reporting existing interfaces).
pub(crate) struct PnpScope {
    previous: u64,
}

impl PnpScope {
    pub(crate) fn enter(core: u64) -> Self {
        PnpScope {
            previous: PNP_THREAD_OF.with(|c| c.replace(core)),
        }
    }
}

impl Drop for PnpScope {
    fn drop(&mut self) {
        PNP_THREAD_OF.with(|c| c.set(self.previous));
    }
}

/// Whether the current thread is the PnP thread of simulator `core`.
pub(crate) fn is_pnp_thread_of(core: u64) -> bool {
    PNP_THREAD_OF.with(|c| c.get() == core)
}

/// Whether the current thread is inside `advance` of simulator `core`.
pub(crate) fn is_advancing(core: u64) -> bool {
    ADVANCING.with(|c| c.get() == core)
}

/// Sets a thread-local marker for the guard's lifetime, restoring the
/// previous value afterwards.
pub(crate) struct Marker {
    which: MarkerKind,
    previous: usize,
}

#[derive(Clone, Copy)]
pub(crate) enum MarkerKind {
    Advancing,
    Timer,
    WorkItem,
    /// A call of simulator `core` during which an IRP completion may be
    /// delivered inline (a send's dispatch, a cancellation).
    Inline,
}

impl Marker {
    pub(crate) fn set(which: MarkerKind, value: usize) -> Self {
        let previous = match which {
            MarkerKind::Advancing => ADVANCING.with(|c| c.replace(value as u64)) as usize,
            MarkerKind::Timer => RUNNING_TIMER.with(|c| c.replace(value)),
            MarkerKind::WorkItem => RUNNING_WORK_ITEM.with(|c| c.replace(value)),
            MarkerKind::Inline => INLINE_SCOPE.with(|c| c.replace(value as u64)) as usize,
        };
        Marker { which, previous }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        match self.which {
            MarkerKind::Advancing => ADVANCING.with(|c| c.set(self.previous as u64)),
            MarkerKind::Timer => RUNNING_TIMER.with(|c| c.set(self.previous)),
            MarkerKind::WorkItem => RUNNING_WORK_ITEM.with(|c| c.set(self.previous)),
            MarkerKind::Inline => INLINE_SCOPE.with(|c| c.set(self.previous as u64)),
        }
    }
}

/// Whether the current thread is running the handler of the timer `id`.
pub(crate) fn is_running_timer(id: usize) -> bool {
    RUNNING_TIMER.with(|c| c.get() == id)
}

/// Whether the current thread is running the handler of the work item `id`.
pub(crate) fn is_running_work_item(id: usize) -> bool {
    RUNNING_WORK_ITEM.with(|c| c.get() == id)
}

/// Whether the current thread is inside a call of simulator `core` during
/// which a completion may be delivered inline (see `MarkerKind::Inline`).
pub(crate) fn in_inline_scope(core: u64) -> bool {
    INLINE_SCOPE.with(|c| c.get() == core)
}

/// Counts one inline delivery running on the current thread while alive.
pub(crate) struct InlineDepth(());

impl InlineDepth {
    /// Enters one more nested inline delivery; returns the new depth.
    pub(crate) fn enter() -> (Self, u32) {
        let depth = INLINE_DEPTH.with(|d| {
            let n = d.get() + 1;
            d.set(n);
            n
        });
        (InlineDepth(()), depth)
    }
}

impl Drop for InlineDepth {
    fn drop(&mut self) {
        INLINE_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// An address on the current stack frame (the stack grows down on every
/// platform the simulator runs on).
#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Records the top of the current thread's stack (called first thing on each
/// simulator thread).
pub(crate) fn mark_stack_base() {
    STACK_BASE.with(|b| b.set(stack_pointer()));
}

/// Bytes of stack the current simulator thread uses below its start, or
/// `None` on a thread the simulator did not start.
pub(crate) fn stack_used() -> Option<usize> {
    let base = STACK_BASE.with(Cell::get);
    (base != 0).then(|| base.saturating_sub(stack_pointer()))
}

/// Marks the stack budget of the current thread as reported; returns
/// whether it was not reported before (one report per thread).
pub(crate) fn first_stack_report() -> bool {
    !STACK_REPORTED.with(|r| r.replace(true))
}
