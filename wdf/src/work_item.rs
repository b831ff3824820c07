//! Passive-level work items (`WDFWORKITEM`).

/// What a work item runs, at passive level on a worker thread.
pub trait WorkItemHandler: Send + Sync + 'static {
    /// The work item runs.
    fn run(&self);
}

/// A work item. Enqueueing one that is queued but not yet running does
/// nothing (the handler runs once). Dropping it waits until it is neither
/// queued nor running, then deletes it (`WdfObjectDelete`).
///
/// # Contract (both backends)
///
/// * [`flush`](WorkItem::flush) only at passive level and never from the work
///   item's own handler: KMDF breaks into the verifier there, as the flush
///   would wait for itself (`FxWorkItem::FlushAndWait`).
/// * Drop a work item only at passive level (the deletion waits:
///   `FxWorkItem::WaitForSignal` asserts `PASSIVE_LEVEL`).
/// * Dropping a work item from its own handler is allowed: the deletion then
///   does not wait for the running handler (`FxWorkItem::FlushAndRundown`
///   skips the wait on the callback thread); the handler's `Arc` stays alive
///   until the handler returns.
/// * [`enqueue`](WorkItem::enqueue) is allowed in any context.
///
/// The simulator panics where this contract is broken.
///
/// # Safety
///
/// The buffer pool frees memory from a work item that a timer handler may
/// still use if the work item ran inside that handler. Implementers must
/// ensure that the handler runs at passive level on a thread where no other
/// callback of the platform is running below it: never nested inside
/// [`enqueue`](WorkItem::enqueue) (or anything else the caller is running,
/// such as a timer handler or a completion routine), always later, from the
/// platform's own worker.
pub unsafe trait WorkItem: Send + Sync + Sized + 'static {
    /// Queues the work item (`WdfWorkItemEnqueue`). Fails only when the
    /// platform cannot queue work (the simulator can inject this); callers must
    /// handle the failure rather than lose the work.
    fn enqueue(&self) -> crate::Result<()>;

    /// Waits until the work item is neither queued nor running (`WdfWorkItemFlush`).
    /// Passive level only; never from the handler itself.
    fn flush(&self);
}
