//! Passive-level work items (`WDFWORKITEM`).

/// What a work item runs, at passive level on a worker thread.
pub trait WorkItemHandler: Send + Sync + 'static {
    /// The work item runs.
    fn run(&self);
}

/// A work item. Enqueueing one that is queued but not yet running does
/// nothing (the handler runs once). Dropping it waits for a running handler.
pub trait WorkItem: Send + Sync + Sized + 'static {
    /// Queues the work item (`WdfWorkItemEnqueue`). Fails only when the
    /// platform cannot queue work (the simulator can inject this); callers must
    /// handle the failure rather than lose the work.
    fn enqueue(&self) -> crate::Result<()>;

    /// Waits until the work item is neither queued nor running (`WdfWorkItemFlush`).
    /// Passive level only; never from the handler itself.
    fn flush(&self);
}
