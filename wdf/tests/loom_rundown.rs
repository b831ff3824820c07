//! Model checks of the [`Rundown`] protocol under every interleaving loom
//! explores: a teardown never returns while a reference is live, a reference
//! taken after teardown began is refused, and the drain wakeup is never lost.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-wdf --test loom_rundown --release`.
#![cfg(loom)]

use dmf_wdf::{Event, Rundown};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A manual-reset event on loom's primitives.
struct LoomEvent {
    set: Mutex<bool>,
    cv: Condvar,
}

impl LoomEvent {
    fn new() -> Self {
        LoomEvent {
            set: Mutex::new(false),
            cv: Condvar::new(),
        }
    }
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

/// Runs `f` under loom with a preemption bound that keeps the run short
/// (bugs in protocols this small show up within three preemptions).
fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn teardown_waits_for_references_and_refuses_new_ones() {
    model(|| {
        let rundown = Arc::new(Rundown::new(LoomEvent::new()));
        rundown.start();
        let in_use = Arc::new(AtomicBool::new(false));

        let users: Vec<_> = (0..2)
            .map(|_| {
                let rundown = rundown.clone();
                let in_use = in_use.clone();
                thread::spawn(move || {
                    if let Ok(guard) = rundown.acquire() {
                        in_use.store(true, Ordering::SeqCst);
                        in_use.store(false, Ordering::SeqCst);
                        drop(guard);
                    }
                })
            })
            .collect();

        assert!(rundown.end_and_wait(None));
        // After teardown returned no user is inside its guarded section...
        assert!(!in_use.load(Ordering::SeqCst));
        // ...and no new user gets in.
        assert!(rundown.acquire().is_err());
        for u in users {
            u.join().unwrap();
        }
        assert_eq!(rundown.active_references(), 0);
    });
}

#[test]
fn restart_after_teardown_accepts_references_again() {
    model(|| {
        let rundown = Arc::new(Rundown::new(LoomEvent::new()));
        rundown.start();
        let r2 = rundown.clone();
        let user = thread::spawn(move || {
            if r2.reference().is_ok() {
                r2.release();
            }
        });
        assert!(rundown.end_and_wait(None));
        user.join().unwrap();
        rundown.start();
        assert!(rundown.acquire().is_ok());
        assert!(rundown.end_and_wait(None));
    });
}
