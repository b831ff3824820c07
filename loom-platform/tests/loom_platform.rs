//! The loom platform against the seam's contracts (`dmf_wdf::IoTarget`'s
//! state contract, `Request::cancel_sent`, work items and timers), so that
//! the models built on it test the layers against the behaviour the real
//! backends have. Mostly single-threaded checks inside `loom::model`, plus
//! a cancel racing the device's completion.
//!
//! Planted bug caught (checked once in a scratch copy, never committed):
//! in `loom-platform/src/target.rs`, `LoomIoTarget::send` no longer
//! refusing a request cancelled before it was sent — `cancel_semantics`
//! fails with "left: Ok(()) right: Err(STATUS_CANCELLED)".
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-loom-platform --test loom_platform --release`.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dmf_loom_platform::{model, Behaviour, LoomIoTarget, LoomPlatform, LoomRequest};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, Platform, Request, RequestType, SendOptions,
    SentIoAction, Status, TargetState, Timer, TimerHandler, WorkItem, WorkItemHandler,
};
use loom::sync::Mutex;
use loom::thread;

/// Records the completions it receives.
#[derive(Default)]
struct Routine(Mutex<Vec<Status>>);

impl CompletionRoutine for Routine {
    fn completed(self: Arc<Self>, completion: Completed) {
        self.0.lock().unwrap().push(completion.status);
    }
}

impl Routine {
    fn seen(&self) -> Vec<Status> {
        self.0.lock().unwrap().clone()
    }
}

fn format(target: &LoomIoTarget, request: &LoomRequest) -> dmf_wdf::Result<()> {
    // SAFETY: no buffers.
    unsafe { target.format_request(request, RequestType::Ioctl, 0, None, None) }
}

fn send(
    target: &LoomIoTarget,
    request: &LoomRequest,
    routine: &Arc<Routine>,
) -> dmf_wdf::Result<()> {
    target.send(request, SendOptions::default(), Arc::clone(routine))
}

#[test]
fn refused_sends_drop_their_routine_uncalled() {
    model(0, || {
        let platform = LoomPlatform::new();
        let unopened = platform.create_io_target().unwrap();
        let request = platform.create_request(None).unwrap();
        assert_eq!(
            format(&unopened, &request),
            Err(Status::INVALID_DEVICE_STATE)
        );
        let target = platform.open_target();
        let routine = Arc::new(Routine::default());
        // Not formatted.
        assert_eq!(
            send(&target, &request, &routine),
            Err(Status::INVALID_DEVICE_STATE)
        );
        format(&target, &request).unwrap();
        // Formatted for another target.
        assert_eq!(
            send(&unopened, &request, &routine),
            Err(Status::INVALID_DEVICE_REQUEST)
        );
        // Purged: refused until started again.
        target.purge(true);
        assert_eq!(target.state(), TargetState::Stopped);
        assert_eq!(
            send(&target, &request, &routine),
            Err(Status::INVALID_DEVICE_STATE)
        );
        target.start().unwrap();
        // Refused by the device's script.
        target.script([Behaviour::Refuse(Status::INSUFFICIENT_RESOURCES)]);
        assert_eq!(
            send(&target, &request, &routine),
            Err(Status::INSUFFICIENT_RESOURCES)
        );
        // Closed.
        target.close();
        assert_eq!(
            send(&target, &request, &routine),
            Err(Status::INVALID_DEVICE_STATE)
        );
        assert_eq!(
            Arc::strong_count(&routine),
            1,
            "a refused routine is dropped"
        );
        assert!(
            routine.seen().is_empty(),
            "a refused routine is never called"
        );
        assert_eq!(target.accepted(), 0);
        assert_eq!(target.refused(), 4);
    });
}

#[test]
fn stopped_targets_queue_and_purge_fails_the_queue() {
    model(0, || {
        let platform = LoomPlatform::new();
        let target = platform.open_target();
        target.set_default(Behaviour::Inline(Status::SUCCESS));
        let (a, b) = (
            platform.create_request(None).unwrap(),
            platform.create_request(None).unwrap(),
        );
        let routine = Arc::new(Routine::default());
        target.stop(SentIoAction::LeavePending);
        format(&target, &a).unwrap();
        send(&target, &a, &routine).unwrap();
        assert!(
            a.in_flight() && routine.seen().is_empty(),
            "queued while stopped"
        );
        target.start().unwrap();
        assert_eq!(routine.seen(), [Status::SUCCESS], "sent (inline) by start");
        target.stop(SentIoAction::Cancel);
        format(&target, &b).unwrap();
        send(&target, &b, &routine).unwrap();
        target.purge(true);
        assert_eq!(
            routine.seen(),
            [Status::SUCCESS, Status::WDF_DEVICE_REMOVED_NOT_SENT]
        );
        assert_eq!(target.outstanding(), 0);
        // A completed request is sent again only after a reuse.
        target.start().unwrap();
        assert_eq!(format(&target, &b), Err(Status::INVALID_DEVICE_STATE));
        b.reuse().unwrap();
        format(&target, &b).unwrap();
        send(&target, &b, &routine).unwrap();
        assert_eq!(routine.seen().len(), 3);
    });
}

#[test]
fn cancel_semantics() {
    model(0, || {
        let platform = LoomPlatform::new();
        let target = platform.open_target();
        let request = platform.create_request(None).unwrap();
        let routine = Arc::new(Routine::default());
        // Cancelled before the send: the next send fails, until a reuse.
        format(&target, &request).unwrap();
        assert!(!request.cancel_sent());
        assert_eq!(send(&target, &request, &routine), Err(Status::CANCELLED));
        request.reuse().unwrap();
        // Held cancelable by the device: a cancel routine runs, the
        // request completes on the cancelling thread.
        target.script([Behaviour::Pend]);
        format(&target, &request).unwrap();
        send(&target, &request, &routine).unwrap();
        assert!(request.cancel_sent());
        assert_eq!(routine.seen(), [Status::CANCELLED]);
        assert!(!request.cancel_sent(), "completed: nothing to cancel");
        // At the device, not cancelable: the cancel is remembered and the
        // device completes it cancelled.
        request.reuse().unwrap();
        format(&target, &request).unwrap();
        send(&target, &request, &routine).unwrap();
        assert!(!request.cancel_sent());
        platform.run_pending();
        assert_eq!(routine.seen(), [Status::CANCELLED, Status::CANCELLED]);
        // Close cancels what the device holds and waits for it.
        request.reuse().unwrap();
        target.script([Behaviour::Pend]);
        format(&target, &request).unwrap();
        send(&target, &request, &routine).unwrap();
        target.close();
        assert_eq!(routine.seen().len(), 3);
        assert_eq!(target.state(), TargetState::Closed);
    });
}

#[test]
fn cancel_races_the_device_completion() {
    model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let target = platform.open_target();
        let request = Arc::new(platform.create_request(None).unwrap());
        let routine = Arc::new(Routine::default());
        format(&target, &request).unwrap();
        send(&target, &request, &routine).unwrap();
        let canceller = {
            let request = Arc::clone(&request);
            thread::spawn(move || request.cancel_sent())
        };
        assert!(
            !canceller.join().unwrap(),
            "the device never made it cancelable"
        );
        platform.shutdown();
        let seen = routine.seen();
        assert_eq!(seen.len(), 1, "completed exactly once");
        assert!(matches!(seen[0], Status::SUCCESS | Status::CANCELLED));
        assert_eq!(target.outstanding(), 0);
    });
}

struct Count(AtomicUsize);

impl WorkItemHandler for Count {
    fn run(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl TimerHandler for Count {
    fn fired(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn work_items_and_timers() {
    model(0, || {
        let platform = LoomPlatform::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let work = platform.create_work_item(Arc::clone(&count)).unwrap();
        work.enqueue().unwrap();
        work.enqueue().unwrap();
        work.flush();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "queued twice, runs once");
        platform.refuse_enqueues(1);
        assert!(work.enqueue().is_err());
        let timer = platform.create_timer(Arc::clone(&count)).unwrap();
        assert!(!timer.start(5));
        assert!(timer.start(5), "re-armed");
        assert!(timer.stop(true));
        platform.run_pending();
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "a stopped timer does not fire"
        );
        timer.start(0);
        platform.run_pending();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        drop((work, timer));
    });
}
