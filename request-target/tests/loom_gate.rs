//! Model check of the module-reference gate and close's wait loop (the
//! protocol `RequestTarget::close` runs) under every interleaving loom
//! explores: close never misses the wake-up of the last release or of a
//! completion deferred by a failed work-item enqueue (A passive completion is never lost), never returns
//! while a reference is held, a reference racing close is either refused
//! or waited for, and a send whose completion ran inside the send call keeps
//! close waiting until the call returns.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-request-target --test loom_gate --release`.
#![cfg(loom)]

use dmf_loom_platform::LoomEvent;
use dmf_request_target::gate::Gate;
use dmf_wdf::{Event, Status};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The module: the gate plus the deferred-completion list.
struct Module {
    gate: Gate<LoomEvent>,
    deferred: Mutex<usize>,
}

impl Module {
    /// A completion whose work item could not be queued (target.rs
    /// `on_completed`): defer it, wake close if it runs.
    fn defer(&self) {
        *self.deferred.lock().unwrap() += 1;
        if self.gate.is_closing() {
            self.gate.wake.set();
        }
    }

    /// Delivers deferred completions: each releases its send's reference.
    fn drain(&self) {
        let n = std::mem::take(&mut *self.deferred.lock().unwrap());
        for _ in 0..n {
            self.gate.release();
        }
    }

    /// `RequestTarget::close`'s wait loop.
    fn close(&self) {
        assert!(self.gate.begin_close());
        loop {
            self.drain();
            self.gate.wake.reset();
            if self.gate.references() == 0 {
                break;
            }
            if *self.deferred.lock().unwrap() != 0 {
                continue;
            }
            self.gate.wake.wait(None);
        }
    }
}

/// Bounded preemptions keep each model under a few seconds; the protocol's
/// races need at most two preemptions to show up.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn module() -> Arc<Module> {
    Arc::new(Module {
        gate: Gate::new(LoomEvent::new(false)),
        deferred: Mutex::new(0),
    })
}

#[test]
fn close_waits_for_the_last_release_and_deferred_completions() {
    model(|| {
        let m = module();
        // Two sends in flight: one completes normally, one is deferred.
        m.gate.acquire().unwrap().keep();
        m.gate.acquire().unwrap().keep();
        let done = Arc::new(AtomicUsize::new(0));
        let normal = {
            let (m, done) = (Arc::clone(&m), Arc::clone(&done));
            thread::spawn(move || {
                done.fetch_add(1, Ordering::SeqCst);
                m.gate.release();
            })
        };
        let deferred = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.defer())
        };
        m.close();
        assert_eq!(m.gate.references(), 0);
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "close returned before a completion"
        );
        normal.join().unwrap();
        deferred.join().unwrap();
    });
}

#[test]
fn a_reference_racing_close_is_refused_or_waited_for() {
    model(|| {
        let m = module();
        let holding = Arc::new(AtomicBool::new(false));
        let user = {
            let (m, holding) = (Arc::clone(&m), Arc::clone(&holding));
            thread::spawn(move || match m.gate.acquire() {
                Ok(guard) => {
                    holding.store(true, Ordering::SeqCst);
                    holding.store(false, Ordering::SeqCst);
                    drop(guard);
                    true
                }
                Err(status) => {
                    assert_eq!(status, Status::INVALID_DEVICE_STATE);
                    false
                }
            })
        };
        m.close();
        assert!(
            !holding.load(Ordering::SeqCst),
            "close returned while a method ran"
        );
        assert!(m.gate.acquire().is_err());
        user.join().unwrap();
    });
}

/// An asynchronous send whose completion runs inside the send call (a target
/// completing inline) releases the completion's reference before the method
/// returns; the method's own reference keeps close waiting until the call is
/// over.
#[test]
fn a_send_completed_inside_the_call_keeps_close_waiting_for_the_call() {
    model(|| {
        let m = module();
        let in_call = Arc::new(AtomicBool::new(false));
        let sender = {
            let (m, in_call) = (Arc::clone(&m), Arc::clone(&in_call));
            thread::spawn(move || {
                if let Ok(method) = m.gate.acquire() {
                    in_call.store(true, Ordering::SeqCst);
                    // The send is accepted: its completion's reference...
                    method.another().keep();
                    // ...is released by the completion, inline.
                    m.gate.release();
                    // The rest of the method call.
                    in_call.store(false, Ordering::SeqCst);
                    drop(method);
                }
            })
        };
        m.close();
        assert!(
            !in_call.load(Ordering::SeqCst),
            "close returned while the send call ran"
        );
        assert_eq!(m.gate.references(), 0);
        sender.join().unwrap();
    });
}
