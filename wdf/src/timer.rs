//! One-shot timers (`WDFTIMER` with passive execution level).

/// What runs when a timer fires.
///
/// Runs at passive level on a worker thread (in the simulator with a manual
/// clock: on the thread that advances the clock).
pub trait TimerHandler: Send + Sync + 'static {
    /// The timer expired.
    fn fired(&self);
}

/// A one-shot relative timer. Dropping it stops it, waiting for a running
/// handler, and deletes it.
pub trait Timer: Send + Sync + Sized + 'static {
    /// Arms the timer to fire once after `due_ms` milliseconds (0 = as soon as
    /// possible). Re-arms it if already armed; returns whether it was armed
    /// (`WdfTimerStart`).
    fn start(&self, due_ms: u64) -> bool;

    /// Disarms the timer. Returns `true` if it was armed and will now not fire
    /// for that arming; `false` if it was not armed or its handler is already
    /// running or has run. With `wait`, also waits for a running handler to
    /// return (never call that from the handler itself) (`WdfTimerStop`).
    fn stop(&self, wait: bool) -> bool;
}
