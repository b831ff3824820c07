//! Close racing a send whose completion runs inside `send` (inline
//! completion, as KMDF does when the lower driver completes at once).
//!
//! Alone in its test binary: it pauses the sender with a thread-local
//! tracing subscriber, and tracing caches per call site whether anyone
//! listens, which another test running in parallel could decide first.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use dmf_request_target::{Completion, RequestTargetConfig, SendCompleted, SendParams};
use dmf_sim::{FixedResponseDevice, InlineCompletion, SimConfig};
use dmf_wdf::Status;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// A flag with a wait.
#[derive(Default)]
struct Flag(Mutex<bool>, Condvar);

impl Flag {
    fn set(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }
    fn is_set(&self) -> bool {
        *self.0.lock().unwrap()
    }
    /// Waits up to `timeout`; returns whether the flag is set.
    fn wait(&self, timeout: Duration) -> bool {
        let g = self.0.lock().unwrap();
        *self
            .1
            .wait_timeout_while(g, timeout, |set| !*set)
            .unwrap()
            .0
    }
}

struct Message(String);
impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Pauses the sending thread at the module's "request sent" trace event
/// (after the target accepted the send, before `send` returns) until the
/// close on the other thread has returned, or for at most one second.
struct PauseAfterSent {
    paused: Arc<AtomicBool>,
    closed: Arc<Flag>,
    closed_during_pause: Arc<AtomicBool>,
}

impl<S: tracing::Subscriber> Layer<S> for PauseAfterSent {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0 == "RequestTarget: request sent" {
            self.paused.store(true, Ordering::SeqCst);
            let closed = self.closed.wait(Duration::from_secs(1));
            self.closed_during_pause.store(closed, Ordering::SeqCst);
        }
    }
}

/// The completion of an accepted send runs inside `send` and releases the
/// module reference the send kept; the method call itself must still hold
/// its own reference until it returns, so that a concurrent `close` (which
/// waits for method calls in progress) cannot return while `send` is still
/// running. Before the fix the send's and the method's reference were one:
/// close returned while the sender was still inside `send`.
#[test]
fn close_waits_for_a_send_whose_completion_ran_inline() {
    let f = Arc::new(Fixture::new(
        SimConfig::default().with_inline_completion(InlineCompletion::Always),
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
        RequestTargetConfig::default(),
    ));
    let in_callback = Arc::new(Flag::default());
    let closed = Arc::new(Flag::default());
    let closed_during_pause = Arc::new(AtomicBool::new(false));

    // The callback (inline, inside `send`) lets the closer begin and waits
    // (spinning: it runs in dispatch context) until close has begun.
    let callback: Completion = {
        let (f, in_callback) = (Arc::clone(&f), Arc::clone(&in_callback));
        Arc::new(move |c: &SendCompleted<'_>| {
            assert_eq!(c.status, Status::SUCCESS);
            in_callback.set();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !f.module.is_closing() && Instant::now() < deadline {
                std::hint::spin_loop();
            }
        })
    };
    let closer = {
        let (f, in_callback, closed) = (
            Arc::clone(&f),
            Arc::clone(&in_callback),
            Arc::clone(&closed),
        );
        thread::spawn(move || {
            assert!(in_callback.wait(Duration::from_secs(5)));
            f.module.close();
            closed.set();
        })
    };
    let paused = Arc::new(AtomicBool::new(false));
    let layer = PauseAfterSent {
        paused: Arc::clone(&paused),
        closed: Arc::clone(&closed),
        closed_during_pause: Arc::clone(&closed_during_pause),
    };
    let subscriber = tracing_subscriber::registry().with(layer);
    let sent = tracing::subscriber::with_default(subscriber, || {
        // SAFETY: no buffers.
        unsafe {
            f.module
                .send_raw(None, None, SendParams::read(), Some(callback), 0)
        }
    });
    assert_eq!(sent, Ok(()));
    assert!(in_callback.is_set(), "the completion ran inside send");
    assert!(
        paused.load(Ordering::SeqCst),
        "the sender paused after the send"
    );
    closer.join().unwrap();
    assert!(closed.is_set());
    assert!(
        !closed_during_pause.load(Ordering::SeqCst),
        "close returned while send was still running"
    );
    let f = Arc::try_unwrap(f).ok().unwrap();
    f.finish();
}
