//! A passive-level mutual exclusion built from the seam's spin lock and event,
//! serialising the PnP transitions of one target (arrival, query-remove,
//! remove-cancel, remove-complete, interface removal, teardown) which arrive
//! on different PnP threads. Holders may block and call the client.
//!
//! DMF uses a sleeping lock (`WDFWAITLOCK`) for its target list for the same
//! reason.

use dmf_wdf::{Event, Lock, Platform};

/// A blocking mutex without data (`WDFWAITLOCK`-like), passive level only.
///
/// # Invariants
///
/// `busy` is true exactly while a [`SerialGuard`] exists. A waiter resets the
/// event only while holding the spin lock and having seen `busy == true`; a
/// releaser sets the event after clearing `busy`, so a wakeup is never lost.
pub(crate) struct Serial<P: Platform> {
    busy: P::Lock<bool>,
    released: P::Event,
}

impl<P: Platform> Serial<P> {
    /// A free mutex; `released` must be a fresh event.
    pub(crate) fn new(released: P::Event) -> Self {
        Serial { busy: P::Lock::new(false), released }
    }

    /// Blocks until the mutex is free, then holds it.
    pub(crate) fn enter(&self) -> SerialGuard<'_, P> {
        loop {
            {
                let mut busy = self.busy.lock();
                if !*busy {
                    *busy = true;
                    return SerialGuard { serial: self };
                }
                self.released.reset();
            }
            self.released.wait(None);
        }
    }
}

/// Holds a [`Serial`]; releases it when dropped.
pub(crate) struct SerialGuard<'a, P: Platform> {
    serial: &'a Serial<P>,
}

impl<P: Platform> Drop for SerialGuard<'_, P> {
    fn drop(&mut self) {
        *self.serial.busy.lock() = false;
        self.serial.released.set();
    }
}
