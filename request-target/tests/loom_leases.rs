//! Model checks of [`RequestTarget`]'s own code (leases of send contexts,
//! the cancel holds and their release, reusable requests, close) on the
//! shared loom platform (`dmf-loom-platform`), under every interleaving loom
//! explores with the preemption bound below:
//!
//! * `cancel_races_completion_resend_and_reuse_delete`: a cancel by id races
//!   the completion of that send, whose callback resends the same reusable
//!   request (which the device holds until the target closes), while
//!   `reuse_delete` deletes it. A cancel never reaches a later send (its id
//!   is stale), every accepted send completes exactly
//!   once, the deletion takes effect exactly once (at once, or deferred to
//!   after the callback), no request is reused, formatted or deleted while
//!   in flight (the platform panics), and close finds nothing left.
//! * `close_races_cancel_of_a_pending_send`: a pooled send the device holds
//!   until cancelled, delivered at passive level through a work item whose
//!   enqueue fails (the completion is deferred); a cancel by id races close,
//!   whose grace period cancels what is still in flight. Close returns only
//!   after the callback ran, and the context is back in the pool.
//! * `inline_completion_and_refusal_give_the_context_back`: two threads
//!   send through a pool of one context; the device refuses one send and
//!   completes the other inside `send`. A refused or pool-exhausted send
//!   reports its error and never calls back, an accepted one has called
//!   back before `send` returns, and the context is free again afterwards.
//!
//! Planted bugs caught (each checked once in a scratch copy, never
//! committed), both in `request-target/src/target.rs`:
//!
//! * `Shared::lease_reuse` no longer treating a request whose cancel is in
//!   progress (`cancel_holds > 0`) as busy:
//!   `cancel_races_completion_resend_and_reuse_delete` fails with "a cancel
//!   reached a later send: [(1, STATUS_SUCCESS), (2, STATUS_CANCELLED)]" —
//!   the callback's resend goes out while the cancel of the previous send
//!   still holds the request, and `cancel_sent` cancels the new send.
//! * `RequestTarget::close` no longer delivering deferred completions in
//!   its wait loop (`drain_deferred` removed):
//!   `close_races_cancel_of_a_pending_send` fails — close spins forever on
//!   the deferred completion ("Model exceeded maximum number of branches",
//!   then loom's "deadlock" report).
//! * `Lease::drop` no longer releasing the entry of a send that was not
//!   accepted (`release_locked` skipped):
//!   `inline_completion_and_refusal_give_the_context_back` fails with
//!   "called `Result::unwrap()` on an `Err` value:
//!   STATUS_INSUFFICIENT_RESOURCES" — the refused send's context never
//!   returns to the pool.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-request-target --test loom_leases --release`.
#![cfg(loom)]

use std::sync::{Arc, Weak};

use dmf_loom_platform::{Behaviour, LoomPlatform};
use dmf_request_target::{
    Completion, CompletionDelivery, RequestTarget, RequestTargetConfig, ReuseDeletion,
    SendCompleted, SendContextConfig, SendParams, Sender,
};
use dmf_wdf::{IoTarget, Status};
use loom::sync::Mutex;
use loom::thread;

/// What the callbacks saw: (client context, status).
type Seen = Arc<Mutex<Vec<(usize, Status)>>>;

fn params() -> SendParams {
    SendParams::ioctl(0x2200_0000)
}

#[test]
fn cancel_races_completion_resend_and_reuse_delete() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let target = platform.open_target();
        let rt = Arc::new(RequestTarget::new(&platform, RequestTargetConfig::default()).unwrap());
        rt.io_target_set(Arc::clone(&target)).unwrap();
        // The first send completes on the device's own; a resend stays at
        // the device until cancelled (here, by the target's close).
        target.script([Behaviour::Complete(Status::SUCCESS), Behaviour::Pend]);
        let id = rt.reuse_create().unwrap();

        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        // The first send's callback resends the same reusable request (the
        // request is free for it as soon as its callback starts).
        let resend: Completion = {
            let seen = Arc::clone(&seen);
            let weak: Weak<RequestTarget<LoomPlatform>> = Arc::downgrade(&rt);
            Arc::new(move |c: &SendCompleted<'_>| {
                seen.lock().unwrap().push((c.client_context, c.status));
                if c.client_context == 1 {
                    let Some(rt) = weak.upgrade() else { return };
                    let again: Completion = {
                        let seen = Arc::clone(&seen);
                        Arc::new(move |c: &SendCompleted<'_>| {
                            seen.lock().unwrap().push((c.client_context, c.status));
                        })
                    };
                    // SAFETY: no buffers.
                    let _ = unsafe { rt.reuse_send_raw(id, None, None, params(), Some(again), 2) };
                }
            })
        };
        // SAFETY: no buffers.
        let first =
            unsafe { rt.reuse_send_raw(id, None, None, params(), Some(resend), 1) }.unwrap();

        let canceller = {
            let rt = Arc::clone(&rt);
            thread::spawn(move || rt.cancel(first))
        };
        let deletion = rt.reuse_delete(id).unwrap();
        let cancelled = canceller.join().unwrap();
        // Nothing but the stale cancel can have cancelled the resend so far.
        let early = seen.lock().unwrap().clone();
        assert!(
            !early.contains(&(2, Status::CANCELLED)),
            "a cancel reached a later send: {early:?}"
        );
        target.close();
        platform.shutdown();

        let seen = seen.lock().unwrap().clone();
        let accepted = target.accepted();
        assert_eq!(
            seen.len(),
            accepted,
            "every accepted send completed once: {seen:?}"
        );
        assert_eq!(seen[0].0, 1);
        if cancelled {
            assert_eq!(seen[0].1, Status::CANCELLED);
        }
        assert!(seen[1..].iter().all(|&(context, _)| context == 2));
        assert!(matches!(
            deletion,
            ReuseDeletion::Deleted | ReuseDeletion::Deferred
        ));
        assert_eq!(rt.reuse_count(), 0, "the deletion took effect");
        assert_eq!(rt.references(), 0);
        assert_eq!(target.outstanding(), 0);
        rt.close();
    });
}

#[test]
fn close_races_cancel_of_a_pending_send() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let target = platform.open_target();
        target.script([Behaviour::Pend]);
        let config = RequestTargetConfig {
            passive_level: true,
            contexts: SendContextConfig {
                preallocated_contexts: 1,
                max_contexts: 1,
                cancel_in_flight_on_close_after_ms: Some(10),
            },
        };
        let rt = Arc::new(RequestTarget::new(&platform, config).unwrap());
        rt.io_target_set(Arc::clone(&target)).unwrap();
        // Every enqueue attempt of the completion's work item fails: the
        // completion is deferred to the next passive handler or to close.
        platform.refuse_enqueues(8);

        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let callback: Completion = {
            let seen = Arc::clone(&seen);
            Arc::new(move |c: &SendCompleted<'_>| {
                seen.lock().unwrap().push((c.client_context, c.status));
            })
        };
        let params = params().with_delivery(CompletionDelivery::Module);
        // SAFETY: no buffers.
        let id = unsafe { rt.send_ex_raw(None, None, params, Some(callback), 7) }.unwrap();

        let canceller = {
            let rt = Arc::clone(&rt);
            thread::spawn(move || rt.cancel(id))
        };
        rt.close();
        assert_eq!(
            *seen.lock().unwrap(),
            [(7, Status::CANCELLED)],
            "close returned before the callback ran"
        );
        assert_eq!(rt.references(), 0);
        let _ = canceller.join().unwrap();
        platform.shutdown();
        assert_eq!(target.outstanding(), 0);
        assert_eq!(seen.lock().unwrap().len(), 1);
    });
}

#[test]
fn inline_completion_and_refusal_give_the_context_back() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        let target = platform.open_target();
        // The first send to reach the device is refused; the others complete
        // inside `send`, so their callbacks run before `send` returns.
        target.script([Behaviour::Refuse(Status::INSUFFICIENT_RESOURCES)]);
        target.set_default(Behaviour::Inline(Status::SUCCESS));
        let config = RequestTargetConfig {
            passive_level: false,
            contexts: SendContextConfig {
                preallocated_contexts: 1,
                max_contexts: 1,
                cancel_in_flight_on_close_after_ms: None,
            },
        };
        let rt = Arc::new(RequestTarget::new(&platform, config).unwrap());
        rt.io_target_set(Arc::clone(&target)).unwrap();
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let send = |rt: &RequestTarget<LoomPlatform>, seen: &Seen, context: usize| {
            let callback: Completion = {
                let seen = Arc::clone(seen);
                Arc::new(move |c: &SendCompleted<'_>| {
                    seen.lock().unwrap().push((c.client_context, c.status));
                })
            };
            // SAFETY: no buffers.
            let result = unsafe { rt.send_raw(None, None, params(), Some(callback), context) };
            if result.is_ok() {
                // Completed inline: the callback already ran.
                assert!(seen.lock().unwrap().contains(&(context, Status::SUCCESS)));
            }
            result
        };
        let other = {
            let (rt, seen) = (Arc::clone(&rt), Arc::clone(&seen));
            thread::spawn(move || send(&rt, &seen, 2))
        };
        let mine = send(&rt, &seen, 1);
        let theirs = other.join().unwrap();
        for result in [mine, theirs] {
            // Refused by the device, or the only context was leased.
            assert!(matches!(
                result,
                Ok(()) | Err(Status::INSUFFICIENT_RESOURCES)
            ));
        }
        let accepted = usize::from(mine.is_ok()) + usize::from(theirs.is_ok());
        assert_eq!(seen.lock().unwrap().len(), accepted);
        assert_eq!(target.accepted(), accepted);
        // The one context is back in the pool, whatever happened.
        assert_eq!(rt.context_count(), 1);
        send(&rt, &seen, 3).unwrap();
        assert_eq!(rt.references(), 0);
        rt.close();
        assert_eq!(target.outstanding(), 0);
    });
}
