//! Model checks of the CRT's own stream engine (`src/stream.rs` with the
//! protocol of `src/protocol.rs`, driven through the public
//! [`ContinuousRequestTarget`]), on the shared loom platform
//! (`dmf-loom-platform`): a model device behind the seam's I/O-target
//! state contract, work items and timers on loom threads. Two stream slots
//! each; every model asserts that nothing is lost — `stop`, D0 exit and
//! `close` return, every accepted request completed (nothing outstanding at
//! the target), every output buffer is back in its pool (and its memory
//! freed with the CRT), no send is accepted after the stream stopped, and
//! the stream count is 0. Loom's cell checks that every access to a slot's
//! owner data (its buffers in flight) is ordered after the previous
//! owner's, and the platform panics on a request reused, formatted, sent or
//! deleted while in flight, and on a wait in dispatch context.
//!
//! * `inline_and_passive_completions_race_stop`: the first send completes
//!   inside `send` (before the sender has left it), the other on the device
//!   thread; both completions are delivered through the slots' work items
//!   on the executor thread, and resend; `stop` cancels the resends the
//!   device holds.
//! * `refused_resend_and_buffer_parking_with_auto_refill`: one output
//!   buffer for two slots: a slot without a buffer parks; the client keeps
//!   the buffer of a completion and gives it back (`buffer_put`) from its
//!   own thread, which wakes a parked slot; that resend is refused by the
//!   target; all of it races `stop`.
//! * `power_down_purge_then_power_up_and_close`: D0 exit (stop, then purge
//!   the target) races a completion and its resend; D0 entry restarts the
//!   target and the stream; `close` stops it again.
//! * `start_on_a_purged_target_fails_and_leaves_nothing`: every first send
//!   is refused by the purged target; `start` fails, stops, and leaves the
//!   stream empty.
//! * `backoff_timer_races_stop`: a failed completion parks its slot on the
//!   back-off timer, which fires on the executor thread while `stop` claims
//!   the parked slots.
//! * `start_races_stop_then_concurrent_stoppers_and_restart`: `start` races
//!   a `stop` (start either wins or fails with `STATUS_CANCELLED`), two
//!   stoppers run at once (neither returns early), and streaming restarts.
//! * `refused_work_item_enqueue_falls_back_to_the_timer`: with passive
//!   delivery, a completion whose work item cannot be queued is delivered
//!   through the slot's timer, racing `stop`.
//! * `purge_while_streaming_refuses_the_resends`: the target is purged
//!   under the running stream; the cancelled completions back off and
//!   their resends (from the back-off timer) are refused by the purged
//!   target, so the slots retire on their own (reported as failed sends)
//!   before `stop`.
//!
//! Planted bugs caught (each checked once in a scratch copy, never
//! committed):
//!
//! * `src/protocol.rs`, `StreamControl::begin_stop` skipping the wait for
//!   sends in progress (`send_rundown.end_and_wait(None)` replaced by
//!   `end_and_wait(Some(0))`, which on this platform gives up at once):
//!   `stop` cancels requests their senders are still preparing.
//!   `inline_and_passive_completions_race_stop` and
//!   `backoff_timer_races_stop` fail with "assertion failed:
//!   crt.client().retired…is_empty()" (the platform remembers the early
//!   cancel and refuses the send with `STATUS_CANCELLED`: a slot reported
//!   retired for a failed send although streaming was only stopped);
//!   `refused_resend_and_buffer_parking_with_auto_refill` fails with loom's
//!   "deadlock" (a send that was not yet formatted when `stop` cancelled
//!   goes out uncancelled, and `stop` waits for its slot forever).
//! * `src/protocol.rs`, `SlotState::sent` skipping the `Early → SenderLeft`
//!   compare-exchange (the sender always takes the slot back from an early
//!   completion, as if it had handed its decision back): the sender and the
//!   completion (processed on the work item, or inline) both act for the
//!   slot and it retires twice — every model with a completion that can
//!   run before its send returned fails with "a slot is still in the
//!   stream, left: 18446744073709551615" (the stream count wrapped below
//!   zero).
//! * `src/stream.rs`, `Engine::run` no longer retiring a slot whose send
//!   failed (the `retire` after a refused send removed):
//!   `purge_while_streaming_refuses_the_resends` fails — `stop` waits
//!   forever for the refused slot (loom: "deadlock; threads =
//!   [(Id(0), Blocked…), (Id(1), Blocked…), (Id(2), Terminated)]"), and
//!   `start_on_a_purged_target_fails_and_leaves_nothing` fails too.
//! * `src/stream.rs`, the completion routine ignoring a failed enqueue of
//!   the slot's work item (no fallback to the slot's timer):
//!   `refused_work_item_enqueue_falls_back_to_the_timer` fails — the
//!   completion is lost and `stop` waits for its slot forever (loom:
//!   "deadlock; threads = [(Id(0), Blocked…), (Id(1), Blocked…)]").
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-continuous-request-target --test loom_engine --release`.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputBuffer, OutputDisposition,
    RetireReason, Retirement, StreamClient, StreamCompletion, StreamState,
};
use dmf_loom_platform::{Behaviour, LoomEvent, LoomIoTarget, LoomPlatform};
use dmf_wdf::{DeviceCallbacks, Event, IoTarget, PowerState, RequestType, Status, TargetState};
use loom::sync::Mutex;
use loom::thread;

type Crt = ContinuousRequestTarget<LoomPlatform, Client>;

/// The stream's client: counts completions, records retirements, and (when
/// `keep`) keeps the output buffers for [`Client::give_back`].
struct Client {
    keep: bool,
    kept: Mutex<Vec<OutputBuffer<LoomPlatform>>>,
    handed: LoomEvent,
    completions: AtomicUsize,
    retired: Mutex<Vec<RetireReason>>,
}

impl Client {
    fn new(keep: bool) -> Self {
        Client {
            keep,
            kept: Mutex::new(Vec::new()),
            handed: LoomEvent::new(false),
            completions: AtomicUsize::new(0),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// Waits until a buffer was kept (or the model gave up waiting), then
    /// gives the kept buffers back.
    fn give_back(&self, crt: &Crt) {
        self.handed.wait(None);
        let kept = std::mem::take(&mut *self.kept.lock().unwrap());
        for buffer in kept {
            crt.buffer_put(buffer).unwrap();
        }
    }
}

impl StreamClient<LoomPlatform> for Client {
    fn buffer_output(
        &self,
        mut completion: StreamCompletion<LoomPlatform>,
    ) -> OutputDisposition<LoomPlatform> {
        self.completions.fetch_add(1, Ordering::SeqCst);
        if self.keep {
            if let Some(buffer) = completion.take_output() {
                self.kept.lock().unwrap().push(buffer);
                self.handed.set();
            }
            return OutputDisposition::ClientOwnsAndContinue;
        }
        completion.module_owns_and_continue()
    }

    fn stream_request_retired(&self, retirement: Retirement) {
        self.retired.lock().unwrap().push(retirement.reason);
    }
}

fn config(buffers: u32) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: 2,
        buffer_count_output: buffers,
        buffer_output_size: 4,
        request_type: RequestType::Read,
        ..Default::default()
    }
}

/// A CRT streaming to a new open target whose device treats the first
/// sends as `script` says and holds every later one until cancelled.
fn crt_on(
    platform: &LoomPlatform,
    config: ContinuousRequestTargetConfig,
    client: Client,
    script: &[Behaviour],
) -> (Arc<Crt>, Arc<LoomIoTarget>) {
    let target = platform.open_target();
    target.script(script.iter().copied());
    target.set_default(Behaviour::Pend);
    let crt = Arc::new(ContinuousRequestTarget::new(platform, config, client).unwrap());
    crt.io_target_set(Arc::clone(&target)).unwrap();
    (crt, target)
}

/// After a stop: nothing in the stream, nothing in flight, every buffer home.
fn assert_stopped(crt: &Crt, target: &LoomIoTarget, buffers: usize) {
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    assert_eq!(
        crt.active_stream_requests(),
        0,
        "a slot is still in the stream"
    );
    // (Its completion routine may still be returning: `stop` waits until
    // no CRT code runs in it, not until the platform's frame returned.)
    assert_eq!(target.in_flight(), 0, "a stream request is still in flight");
    assert_eq!(crt.output_buffers_free(), Some(buffers), "a buffer is lost");
}

/// Closes and drops the CRT, lets the executor finish, and checks that no
/// send was accepted since `accepted` was taken and all memory is freed.
fn finish(platform: &LoomPlatform, crt: Arc<Crt>, target: &LoomIoTarget, accepted: usize) {
    crt.close();
    drop(crt);
    platform.shutdown();
    assert_eq!(
        target.accepted(),
        accepted,
        "a send after the stream stopped"
    );
    assert_eq!(target.outstanding(), 0);
    assert_eq!(platform.live_allocations(), 0, "buffer memory not freed");
}

#[test]
fn inline_and_passive_completions_race_stop() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let config = ContinuousRequestTargetConfig {
            passive_level: true,
            ..config(2)
        };
        let script = [
            Behaviour::Inline(Status::SUCCESS),
            Behaviour::Complete(Status::SUCCESS),
        ];
        let (crt, target) = crt_on(&platform, config, Client::new(false), &script);
        crt.start().unwrap();
        crt.stop();
        assert_stopped(&crt, &target, 2);
        let accepted = target.accepted();
        assert!(accepted >= 2);
        assert!(crt.client().retired.lock().unwrap().is_empty());
        finish(&platform, crt, &target, accepted);
    });
}

#[test]
fn refused_resend_and_buffer_parking_with_auto_refill() {
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let config = ContinuousRequestTargetConfig {
            auto_refill: true,
            auto_refill_retry_ms: 0,
            ..config(1)
        };
        let script = [
            Behaviour::Complete(Status::SUCCESS),
            Behaviour::Refuse(Status::INSUFFICIENT_RESOURCES),
        ];
        let (crt, target) = crt_on(&platform, config, Client::new(true), &script);
        crt.start().unwrap();
        let client = {
            let crt = Arc::clone(&crt);
            thread::spawn(move || crt.client().give_back(&crt))
        };
        crt.stop();
        // The completion may have been cancelled: release the client thread.
        crt.client().handed.set();
        client.join().unwrap();
        assert_stopped(&crt, &target, 1);
        let stats = crt.statistics();
        if stats.parked_for_buffer > 0 && stats.resumed > 0 && stats.retired_send_failed > 0 {
            REACHED.fetch_add(1, Ordering::Relaxed);
        }
        let accepted = target.accepted();
        for reason in crt.client().retired.lock().unwrap().iter() {
            assert_eq!(
                *reason,
                RetireReason::SendFailed {
                    status: Status::INSUFFICIENT_RESOURCES
                }
            );
        }
        finish(&platform, crt, &target, accepted);
    });
    assert!(
        REACHED.load(Ordering::Relaxed) > 0,
        "no execution woke a parked slot with a returned buffer and had its resend refused"
    );
}

#[test]
fn power_down_purge_then_power_up_and_close() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let config = ContinuousRequestTargetConfig {
            purge_and_start_target_in_d0_callbacks: true,
            ..config(2)
        };
        let script = [Behaviour::Complete(Status::SUCCESS)];
        let (crt, target) = crt_on(&platform, config, Client::new(false), &script);
        crt.start().unwrap();
        crt.d0_exit(PowerState::D3).unwrap();
        assert_stopped(&crt, &target, 2);
        assert_eq!(target.state(), TargetState::Stopped);
        assert!(crt.resumes_at_d0_entry());
        let before = target.accepted();
        crt.d0_entry(PowerState::D3).unwrap();
        assert_eq!(target.state(), TargetState::Started);
        assert_eq!(crt.stream_state(), StreamState::Running);
        assert_eq!(
            target.accepted(),
            before + 2,
            "both slots resent at D0 entry"
        );
        crt.close();
        assert_stopped(&crt, &target, 2);
        let accepted = target.accepted();
        finish(&platform, crt, &target, accepted);
    });
}

#[test]
fn start_on_a_purged_target_fails_and_leaves_nothing() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let (crt, target) = crt_on(&platform, config(2), Client::new(false), &[]);
        target.purge(true);
        assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE));
        assert_stopped(&crt, &target, 2);
        assert_eq!(target.accepted(), 0);
        assert_eq!(target.refused(), 1, "start stops at the first refusal");
        finish(&platform, crt, &target, 0);
    });
}

#[test]
fn backoff_timer_races_stop() {
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        // A failed completion parks its slot on the back-off timer (on by
        // default); the timer fires on the executor thread while `stop`
        // claims parked slots: exactly one of them takes the slot.
        let script = [Behaviour::Complete(Status::UNSUCCESSFUL)];
        let (crt, target) = crt_on(&platform, config(2), Client::new(false), &script);
        crt.start().unwrap();
        crt.stop();
        assert_stopped(&crt, &target, 2);
        let stats = crt.statistics();
        if stats.backoffs > 0 && stats.resumed > 0 {
            REACHED.fetch_add(1, Ordering::Relaxed);
        }
        let accepted = target.accepted();
        assert!(crt.client().retired.lock().unwrap().is_empty());
        finish(&platform, crt, &target, accepted);
    });
    assert!(
        REACHED.load(Ordering::Relaxed) > 0,
        "no execution resent from the back-off timer"
    );
}

#[test]
fn start_races_stop_then_concurrent_stoppers_and_restart() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let (crt, target) = crt_on(&platform, config(2), Client::new(false), &[]);
        let stopper = {
            let crt = Arc::clone(&crt);
            thread::spawn(move || crt.stop())
        };
        // A stop that wins the race with the first send makes start fail.
        match crt.start() {
            Ok(()) | Err(Status::CANCELLED) => {}
            Err(status) => panic!("start failed with {status:?}"),
        }
        // Two stoppers: one owns the stop, the other waits for it.
        crt.stop();
        assert_stopped(&crt, &target, 2);
        stopper.join().unwrap();
        assert_stopped(&crt, &target, 2);
        // And streaming starts again.
        crt.start().unwrap();
        assert_eq!(crt.stream_state(), StreamState::Running);
        crt.stop();
        assert_stopped(&crt, &target, 2);
        let accepted = target.accepted();
        finish(&platform, crt, &target, accepted);
    });
}

#[test]
fn refused_work_item_enqueue_falls_back_to_the_timer() {
    dmf_loom_platform::model(3, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let config = ContinuousRequestTargetConfig {
            passive_level: true,
            ..config(2)
        };
        let script = [Behaviour::Complete(Status::SUCCESS)];
        let (crt, target) = crt_on(&platform, config, Client::new(false), &script);
        // The first completion cannot queue its slot's work item: it is
        // delivered by the slot's timer instead, never lost.
        platform.refuse_enqueues(1);
        crt.start().unwrap();
        crt.stop();
        assert_stopped(&crt, &target, 2);
        let accepted = target.accepted();
        finish(&platform, crt, &target, accepted);
    });
}

/// Preemption bound 2: this one has more steps than the others (a purge,
/// two back-offs and refusals); 3 explores a million executions.
#[test]
fn purge_while_streaming_refuses_the_resends() {
    static REACHED: AtomicUsize = AtomicUsize::new(0);
    dmf_loom_platform::model(2, || {
        let platform = LoomPlatform::new();
        platform.spawn_workers(1);
        let script = [Behaviour::Complete(Status::SUCCESS)];
        let (crt, target) = crt_on(&platform, config(2), Client::new(false), &script);
        crt.start().unwrap();
        // The target is purged under the running stream (not by the CRT's
        // power policy): what it holds completes cancelled, and every
        // resend is refused by the purged target, so the slots retire on
        // their own while the stream still runs.
        let purger = {
            let target = Arc::clone(&target);
            thread::spawn(move || target.purge(true))
        };
        purger.join().unwrap();
        crt.stop();
        assert_stopped(&crt, &target, 2);
        let retired = crt.client().retired.lock().unwrap().clone();
        for reason in &retired {
            assert_eq!(
                *reason,
                RetireReason::SendFailed {
                    status: Status::INVALID_DEVICE_STATE
                }
            );
        }
        if retired.len() == 2 {
            REACHED.fetch_add(1, Ordering::Relaxed);
        }
        let accepted = target.accepted();
        finish(&platform, crt, &target, accepted);
    });
    assert!(
        REACHED.load(Ordering::Relaxed) > 0,
        "no execution had both slots refused by the purged target"
    );
}
