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
/// handler, and deletes it (`WdfTimerStop(Wait = TRUE)` + `WdfObjectDelete`).
///
/// # Contract (both backends)
///
/// * Drop a timer, and call [`stop`](Timer::stop) with `wait`, only at
///   passive level (never in a completion routine or with a spin lock held):
///   KMDF's verifier breaks on a waiting `WdfTimerStop` above `PASSIVE_LEVEL`
///   (`FxTimer::Stop`).
/// * Never drop a timer, or stop it with `wait`, from its own handler: the
///   wait would be for the running handler itself. KMDF breaks into the
///   verifier and would deadlock (`FxTimer::Stop`, `FxTimer::FlushAndRundown`
///   check `m_CallbackThread`).
/// * Stopping without `wait` and [`start`](Timer::start) are allowed in any
///   context, including the timer's own handler.
///
/// The simulator panics where this contract is broken. A layer that may lose
/// its last reference to a timer in one of those contexts must hand the timer
/// to a passive context that is not its handler (a work item, for example)
/// and drop it there.
///
/// # Safety
///
/// A handler may hold raw pointers into memory its owner frees once the
/// timer is gone (the buffer pool's per-buffer timers). Implementers must
/// ensure that:
///
/// * the handler runs only for an arming by [`start`](Timer::start), at most
///   once per arming, and never nested inside a call of `start` or
///   [`stop`](Timer::stop);
/// * when `stop` returns `true`, the handler will not run for the arming it
///   disarmed;
/// * `stop(true)`, called outside the timer's own handler, returns only once
///   no call of the handler is running;
/// * dropping the timer outside its own handler returns only once no call of
///   the handler is running and none will start; dropped from its own
///   handler, no further call starts.
pub unsafe trait Timer: Send + Sync + Sized + 'static {
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
