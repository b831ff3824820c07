//! Model checks of the per-target method gate ([`TargetGate`]: DMF's
//! per-target rundown plus the transport it protects) under every
//! interleaving loom explores:
//!
//! * a method never sees a transport that was closed, and `close` returns
//!   the only remaining `Arc` of the transport (so the closing thread drops
//!   it, never a method in a completion context);
//! * methods refused during a query-remove (`suspend`) work again after a
//!   remove-cancel (`resume`), and `suspend` waits for methods in progress;
//! * a client reference (`TargetReference`) holds off `close` until released.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-device-interface-multiple-target --test loom_dimt --release`.
#![cfg(loom)]

use dmf_device_interface_multiple_target::gate::TargetGate;
use dmf_wdf::{Event, Lock, Status};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Condvar, Mutex, MutexGuard};
use loom::thread;

/// A manual-reset event on loom's primitives.
struct LoomEvent {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Event for LoomEvent {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn reset(&self) {
        *self.set.lock().unwrap() = false;
    }
    fn is_set(&self) -> bool {
        *self.set.lock().unwrap()
    }
    fn wait(&self, _timeout_ms: Option<u32>) -> bool {
        let mut g = self.set.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
        true
    }
}

fn event() -> LoomEvent {
    LoomEvent {
        set: Mutex::new(false),
        cv: Condvar::new(),
    }
}

/// A lock on loom's mutex.
struct LoomLock<T>(Mutex<T>);

// SAFETY: loom's mutex gives one guard at a time and orders its holders.
unsafe impl<T: Send> Lock<T> for LoomLock<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        T: 'a;

    fn new(value: T) -> Self {
        LoomLock(Mutex::new(value))
    }

    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

/// Stands for a target's transport: `alive` goes false when the closing
/// thread destroys it; `uses` counts methods that used it.
struct Transport {
    alive: AtomicBool,
    uses: AtomicUsize,
}

type Gate = TargetGate<LoomEvent, LoomLock<Option<std::sync::Arc<Transport>>>, Transport>;

fn open_gate() -> loom::sync::Arc<Gate> {
    let gate = Gate::new(event());
    gate.open(std::sync::Arc::new(Transport {
        alive: AtomicBool::new(true),
        uses: AtomicUsize::new(0),
    }));
    loom::sync::Arc::new(gate)
}

/// One method call as the module makes it.
fn method(gate: &Gate) -> bool {
    match gate.enter() {
        Ok(transport) => {
            assert!(transport.alive.load(Ordering::SeqCst), "used after close");
            transport.uses.fetch_add(1, Ordering::SeqCst);
            drop(transport);
            gate.leave();
            true
        }
        Err(status) => {
            assert_eq!(status, Status::INVALID_DEVICE_STATE);
            false
        }
    }
}

fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn close_waits_for_methods_and_returns_the_only_transport() {
    model(|| {
        let gate = open_gate();
        let g = gate.clone();
        let caller = thread::spawn(move || method(&g));
        let transport = gate.close().expect("open gate has a transport");
        assert_eq!(std::sync::Arc::strong_count(&transport), 1);
        transport.alive.store(false, Ordering::SeqCst);
        let used = caller.join().unwrap();
        assert_eq!(transport.uses.load(Ordering::SeqCst), usize::from(used));
        assert!(!method(&gate), "closed gate refuses");
        assert!(gate.close().is_none(), "close is idempotent");
    });
}

#[test]
fn suspend_waits_and_resume_reopens() {
    model(|| {
        let gate = open_gate();
        let g = gate.clone();
        let caller = thread::spawn(move || {
            let first = method(&g);
            let second = method(&g);
            (first, second)
        });
        gate.suspend();
        // No method is in progress now, and none starts.
        assert!(!gate.is_open());
        let during = gate.transport().unwrap().uses.load(Ordering::SeqCst);
        assert!(!method(&gate));
        assert_eq!(
            gate.transport().unwrap().uses.load(Ordering::SeqCst),
            during
        );
        gate.resume();
        assert!(method(&gate));
        let (first, second) = caller.join().unwrap();
        let transport = gate.close().unwrap();
        assert_eq!(
            transport.uses.load(Ordering::SeqCst),
            1 + usize::from(first) + usize::from(second)
        );
    });
}

#[test]
fn client_reference_holds_off_close() {
    model(|| {
        let gate = open_gate();
        gate.reference().unwrap();
        let released = loom::sync::Arc::new(AtomicBool::new(false));
        let (g, r) = (gate.clone(), released.clone());
        let client = thread::spawn(move || {
            // May be refused once close has begun, even under the reference.
            method(&g);
            r.store(true, Ordering::SeqCst);
            g.leave();
        });
        let transport = gate.close().unwrap();
        assert!(
            released.load(Ordering::SeqCst),
            "close returned under a reference"
        );
        assert_eq!(std::sync::Arc::strong_count(&transport), 1);
        client.join().unwrap();
    });
}
