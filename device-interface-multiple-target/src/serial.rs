//! A passive-level mutual exclusion built from the seam's spin lock and event,
//! serialising the PnP transitions of one target (arrival, query-remove,
//! remove-cancel, remove-complete, interface removal, teardown) which arrive
//! on different PnP threads. Holders may block and call the client.
//!
//! DMF uses a sleeping lock (`WDFWAITLOCK`) for its target list for the same
//! reason.
//!
//! A holder that starts closing the target *retires* the mutex: waiters give
//! up at once instead of waiting. This matters because closing an I/O target
//! waits for a target PnP callback that is running, and that callback may be
//! the one waiting here.

use dmf_wdf::{Event, Lock, Platform};

struct SerialState {
    busy: bool,
    retired: bool,
}

/// A blocking mutex without data (`WDFWAITLOCK`-like), passive level only.
///
/// # Invariants
///
/// `busy` is true exactly while a [`SerialGuard`] exists. A waiter resets the
/// event only while holding the spin lock and having seen `busy == true` and
/// `retired == false`; a releaser (or retirer) sets the event after changing
/// the state under the spin lock, so a wakeup is never lost.
pub(crate) struct Serial<P: Platform> {
    state: P::Lock<SerialState>,
    released: P::Event,
}

impl<P: Platform> Serial<P> {
    /// A free mutex; `released` must be a fresh event.
    pub(crate) fn new(released: P::Event) -> Self {
        Serial {
            state: P::Lock::new(SerialState {
                busy: false,
                retired: false,
            }),
            released,
        }
    }

    /// Blocks until the mutex is free, then holds it. `None` once the mutex
    /// is retired (the target is closing or closed).
    pub(crate) fn enter(&self) -> Option<SerialGuard<'_, P>> {
        loop {
            {
                let mut state = self.state.lock();
                if state.retired {
                    return None;
                }
                if !state.busy {
                    state.busy = true;
                    return Some(SerialGuard { serial: self });
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

impl<P: Platform> SerialGuard<'_, P> {
    /// Retires the mutex: current and future waiters get `None`. The holder
    /// keeps it until the guard drops.
    pub(crate) fn retire(&self) {
        self.serial.state.lock().retired = true;
        self.serial.released.set();
    }
}

impl<P: Platform> Drop for SerialGuard<'_, P> {
    fn drop(&mut self) {
        self.serial.state.lock().busy = false;
        self.serial.released.set();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dmf_sim::{Sim, SimConfig};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn serial(sim: &Sim) -> Arc<Serial<Sim>> {
        Arc::new(Serial::new(sim.create_event(false).unwrap()))
    }

    /// Holders never overlap, under contention from real threads.
    #[test]
    fn mutual_exclusion() {
        let sim = Sim::new(SimConfig::default());
        let s = serial(&sim);
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, inside) = (Arc::clone(&s), Arc::clone(&inside));
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _g = s.enter().unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// Retiring wakes a waiter with `None`, and later entries fail at once.
    #[test]
    fn retire_releases_waiters() {
        let sim = Sim::new(SimConfig::default());
        let s = serial(&sim);
        let guard = s.enter().unwrap();
        let s2 = Arc::clone(&s);
        let waiter = std::thread::spawn(move || s2.enter().is_none());
        std::thread::sleep(Duration::from_millis(20));
        guard.retire();
        assert!(waiter.join().unwrap(), "the waiter gave up");
        drop(guard);
        assert!(s.enter().is_none());
    }
}
