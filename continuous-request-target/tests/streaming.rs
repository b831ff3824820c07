//! Streaming behaviour on the simulator: DMF's CRT-1 / CRT-2 scenarios,
//! buffer dispositions and ownership, and the fixes of `docs/dmf-differences.md`:
//! stream health, the input length, completions during stop, close while
//! streaming, back-off; modes and error statuses.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::{IOCTL_ZEROBUFFER, IOCTL_ZEROSIZE};
use dmf_sim::{
    EchoDevice, FaultPlan, FaultPoint, FixedResponseDevice, ParkingDevice, Sim, SimConfig,
};
use dmf_wdf::{Event, Platform, RequestType, Status};

const LONG: Duration = Duration::from_secs(10);

fn zerobuffer_config(n: u32, passive: bool) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: n,
        buffer_count_output: n,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        passive_level: passive,
        ..Default::default()
    }
}

/// CRT-1 (DMF's "PassiveOutput" instance): on success the output length is
/// 4 and the buffer non-null and zeroed; cancelled → stop; else continue.
struct Crt1Client {
    sim: Sim,
    passive: bool,
    successes: std::sync::atomic::AtomicUsize,
    cancelled: std::sync::atomic::AtomicUsize,
}

impl StreamClient<Sim> for Crt1Client {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        if self.passive {
            // Passive delivery: blocking is allowed (the simulator panics on a
            // blocking wait in dispatch context).
            let event = self.sim.create_event(false).unwrap();
            assert!(!event.wait(Some(1)));
        }
        if c.status.is_success() {
            assert_eq!(c.information, 4);
            let output = c.output.as_ref().expect("output buffer");
            assert_eq!(&output.data()[..4], &[0, 0, 0, 0]);
            assert_eq!(c.data(), &[0, 0, 0, 0]);
            self.successes.fetch_add(1, Ordering::SeqCst);
            c.module_owns_and_continue()
        } else if c.status == Status::CANCELLED {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
            c.module_owns_and_stop()
        } else {
            c.module_owns_and_continue()
        }
    }
}

fn crt1(passive: bool) {
    let (sim, target) = sim_with_ioctl_handler(3);
    let client = Crt1Client {
        sim: sim.clone(),
        passive,
        successes: Default::default(),
        cancelled: Default::default(),
    };
    let crt = ContinuousRequestTarget::new(&sim, zerobuffer_config(1, passive), client).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("CRT-1 completions", LONG, || {
        crt.client().successes.load(Ordering::SeqCst) >= 20
    });
    crt.stop().unwrap();
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(crt.output_buffers_free(), Some(1));
    let stats = crt.statistics();
    assert_eq!(stats.sends, stats.completions);
    drop(crt);
    assert_clean(&sim, target);
}

#[test]
fn crt1_output_check_dispatch() {
    crt1(false);
}

#[test]
fn crt1_output_check_passive() {
    crt1(true);
}

/// CRT-2 (DMF's "PassiveOutputZeroSize" instance): no buffers at all; on
/// success the output length is 0 and there is no buffer.
#[test]
fn crt2_zero_size_streaming() {
    let (sim, target) = sim_with_ioctl_handler(2);
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: 2,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROSIZE,
        passive_level: true,
        ..Default::default()
    };
    let crt = ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::Default)).unwrap();
    assert_eq!(crt.output_buffers_free(), None);
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("zero-size completions", LONG, || {
        crt.client().successes() >= 20
    });
    crt.stop().unwrap();
    for (status, information, data, _) in crt.client().seen.lock().unwrap().iter() {
        if status.is_success() {
            assert_eq!(*information, 0);
            assert!(data.is_none());
        }
    }
    assert_eq!(crt.client().inputs.load(Ordering::SeqCst), 0);
    drop(crt);
    assert_clean(&sim, target);
}

/// The input length the client returns is what the device receives: the length returned by the input callback is what the device
/// receives (the echo device copies exactly the input it got).
#[test]
fn input_length_from_callback_is_applied() {
    let (sim, target) = sim_with_device(SimConfig::default(), Arc::new(EchoDevice::new()));
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: 1,
        buffer_count_input: 1,
        buffer_input_size: 8,
        buffer_context_input_size: 6,
        buffer_count_output: 1,
        buffer_output_size: 8,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: 0x1234,
        ..Default::default()
    };
    let client = Recorder::new(Policy::StopAfter(3));
    client.input_len.store(3, Ordering::SeqCst);
    let crt = ContinuousRequestTarget::new(&sim, config, client).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("3 completions", LONG, || crt.active_stream_requests() == 0);
    let seen = crt.client().seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for (status, information, data, _) in seen {
        assert_eq!(status, Status::SUCCESS);
        assert_eq!(information, 3);
        assert_eq!(data.unwrap(), vec![1, 2, 3]);
    }
    assert_eq!(crt.client().inputs.load(Ordering::SeqCst), 3);
    assert_eq!(crt.client().input_context_len.load(Ordering::SeqCst), 6);
    // A length above the buffer is clamped to the buffer.
    crt.client().input_len.store(100, Ordering::SeqCst);
    crt.stop().unwrap();
    crt.client().seen.lock().unwrap().clear();
    crt.client().completions.store(0, Ordering::SeqCst);
    crt.start().unwrap();
    wait_until("3 more completions", LONG, || {
        crt.active_stream_requests() == 0
    });
    for (_, information, data, _) in crt.client().seen.lock().unwrap().iter() {
        assert_eq!(*information, 8);
        assert_eq!(data.as_deref().unwrap(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }
    let retirements = crt.client().retirements();
    assert!(retirements.iter().all(|r| matches!(
        r.reason,
        RetireReason::ClientStopped {
            status: Status::SUCCESS
        }
    )));
    drop(crt);
    assert_clean(&sim, target);
}

/// Write streams carry only the input buffer; Read streams only the output.
#[test]
fn write_and_read_streams() {
    let echo = Arc::new(EchoDevice::new());
    let (sim, target) = sim_with_device(SimConfig::default(), echo.clone());
    let write = ContinuousRequestTargetConfig {
        continuous_request_count: 1,
        buffer_count_input: 1,
        buffer_input_size: 5,
        request_type: RequestType::Write,
        ..Default::default()
    };
    let writer =
        ContinuousRequestTarget::new(&sim, write, Recorder::new(Policy::StopAfter(2))).unwrap();
    writer.io_target_set(target.clone()).unwrap();
    writer.start().unwrap();
    wait_until("writes", LONG, || writer.active_stream_requests() == 0);
    assert_eq!(echo.stored(), vec![1, 2, 3, 4, 5]);
    for (status, information, data, _) in writer.client().seen.lock().unwrap().iter() {
        assert_eq!(*status, Status::SUCCESS);
        assert_eq!(*information, 5);
        assert!(data.is_none());
    }
    let read = ContinuousRequestTargetConfig {
        continuous_request_count: 2,
        buffer_count_output: 2,
        buffer_output_size: 16,
        request_type: RequestType::Read,
        ..Default::default()
    };
    let reader =
        ContinuousRequestTarget::new(&sim, read, Recorder::new(Policy::StopAfter(4))).unwrap();
    reader.io_target_set(target.clone()).unwrap();
    reader.start().unwrap();
    wait_until("reads", LONG, || reader.active_stream_requests() == 0);
    for (status, information, data, _) in reader.client().seen.lock().unwrap().iter() {
        assert_eq!(*status, Status::SUCCESS);
        assert_eq!(*information, 5);
        assert_eq!(data.as_deref().unwrap(), &[1, 2, 3, 4, 5]);
    }
    drop((writer, reader));
    assert_clean(&sim, target);
}

fn keep_config(n: u32, buffers: u32) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: n,
        buffer_count_output: buffers,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        ..Default::default()
    }
}

/// Retired stream requests are reported: a client hoarding output buffers exhausts the pool; the stream
/// request retires and the client is told why. Buffers come back through
/// `buffer_put` or by dropping the guard.
#[test]
fn output_exhaustion_retires_and_notifies() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let crt = ContinuousRequestTarget::new(
        &sim,
        keep_config(1, 3),
        Recorder::new(Policy::KeepAndContinue),
    )
    .unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("retirement", LONG, || crt.active_stream_requests() == 0);
    assert_eq!(crt.client().completions(), 3);
    assert_eq!(crt.output_buffers_free(), Some(0));
    let retirements = crt.client().retirements();
    assert_eq!(
        retirements,
        vec![Retirement {
            slot: 0,
            reason: RetireReason::OutputBufferUnavailable,
            remaining: 0
        }]
    );
    let stats = crt.statistics();
    assert_eq!(stats.retired_no_output_buffer, 1);
    assert_eq!(stats.buffers_kept_by_client, 3);
    // Every request retired on its own: streaming counts as stopped (it
    // was never stopped explicitly).
    assert!(!crt.is_streaming());
    let mut kept = crt.client().take_kept();
    assert_eq!(kept.len(), 3);
    crt.buffer_put(kept.pop().unwrap()).unwrap();
    assert_eq!(crt.output_buffers_free(), Some(1));
    drop(kept); // dropping the guards returns them too
    assert_eq!(crt.output_buffers_free(), Some(3));
    crt.stop().unwrap();
    assert_eq!(crt.statistics().retired_stopped, 0);
    drop(crt);
    assert_clean(&sim, target);
}

/// How a [`Claimer`] answers each of its first completions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// `ClientOwnsAndContinue` without touching the completion.
    ClientOwnsWithoutTaking,
    /// Takes the buffer and keeps it, then `module_owns_and_continue`
    /// (which then carries no buffer).
    TakeThenModuleOwns,
    /// Gives the buffer back: `module_owns_and_continue`.
    ModuleOwns,
}

/// Answers `rounds` completions with its claim, then retires every request.
struct Claimer {
    claim: Claim,
    rounds: usize,
    seen: AtomicUsize,
    kept: std::sync::Mutex<Vec<OutputBuffer<Sim>>>,
}

impl Claimer {
    fn new(claim: Claim, rounds: usize) -> Self {
        Claimer {
            claim,
            rounds,
            seen: AtomicUsize::new(0),
            kept: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl StreamClient<Sim> for Claimer {
    fn buffer_output(&self, mut completion: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        if self.seen.fetch_add(1, Ordering::SeqCst) >= self.rounds {
            return completion.module_owns_and_stop();
        }
        match self.claim {
            Claim::ClientOwnsWithoutTaking => OutputDisposition::ClientOwnsAndContinue,
            Claim::TakeThenModuleOwns => {
                if let Some(buffer) = completion.take_output() {
                    self.kept.lock().unwrap().push(buffer);
                }
                completion.module_owns_and_continue()
            }
            Claim::ModuleOwns => completion.module_owns_and_continue(),
        }
    }
}

/// `buffers_kept_by_client` counts the output buffers the client actually
/// took: a buffer it took before answering `ModuleOwns*` counts, a
/// `ClientOwns*` answer for a completion without a buffer (zero-size
/// streaming) does not, and buffers given back never count.
#[test]
fn buffers_kept_by_client_counts_only_buffers_the_client_took() {
    let run = |config: ContinuousRequestTargetConfig, claim: Claim| {
        let (sim, target) = sim_with_ioctl_handler(1);
        let crt = ContinuousRequestTarget::new(&sim, config, Claimer::new(claim, 3)).unwrap();
        crt.io_target_set(target.clone()).unwrap();
        crt.start().unwrap();
        wait_until("every request retired", LONG, || {
            crt.active_stream_requests() == 0
        });
        let stats = crt.statistics();
        assert_eq!(stats.retired_by_client, 1);
        let kept = std::mem::take(&mut *crt.client().kept.lock().unwrap());
        crt.stop().unwrap();
        drop(crt);
        (
            stats.buffers_kept_by_client,
            kept.len(),
            (sim, target, kept),
        )
    };
    // Took three buffers, answered ModuleOwns (without them): three kept.
    let (counted, kept, rest) = run(keep_config(1, 4), Claim::TakeThenModuleOwns);
    assert_eq!((counted, kept), (3, 3));
    let (sim, target, kept) = rest;
    drop(kept);
    assert_clean(&sim, target);
    // Gave every buffer back: none kept.
    let (counted, _, (sim, target, _)) = run(keep_config(1, 4), Claim::ModuleOwns);
    assert_eq!(counted, 0);
    assert_clean(&sim, target);
    // Zero-size streaming has no buffer to keep, whatever the answer says.
    let zero_size = ContinuousRequestTargetConfig {
        continuous_request_count: 1,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROSIZE,
        ..Default::default()
    };
    let (counted, _, (sim, target, _)) = run(zero_size, Claim::ClientOwnsWithoutTaking);
    assert_eq!(counted, 0);
    assert_clean(&sim, target);
    // With a buffer, `ClientOwns*` hands it to the client: it counts.
    let (counted, _, (sim, target, _)) = run(keep_config(1, 4), Claim::ClientOwnsWithoutTaking);
    assert_eq!(counted, 3);
    assert_clean(&sim, target);
}

/// With `auto_refill`, a stream request without a buffer waits
/// for one instead of retiring, and `buffer_put` resumes it at once.
#[test]
fn auto_refill_resumes_on_buffer_put() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let config = ContinuousRequestTargetConfig {
        auto_refill: true,
        auto_refill_retry_ms: 0,
        ..keep_config(2, 2)
    };
    let crt =
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::KeepAndContinue)).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("both parked", LONG, || {
        crt.statistics().parked_for_buffer == 2
    });
    assert_eq!(crt.active_stream_requests(), 2);
    assert!(crt.client().retirements().is_empty());
    assert_eq!(crt.client().completions(), 2);
    for buffer in crt.client().take_kept() {
        crt.buffer_put(buffer).unwrap();
    }
    wait_until("resumed and parked again", LONG, || {
        crt.statistics().parked_for_buffer == 4
    });
    assert_eq!(crt.statistics().resumed, 2);
    assert_eq!(crt.client().completions(), 4);
    // Stop claims parked requests.
    crt.stop().unwrap();
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(crt.statistics().retired_stopped, 2);
    drop(crt.client().take_kept());
    assert_eq!(crt.output_buffers_free(), Some(2));
    drop(crt);
    assert_clean(&sim, target);
}

/// With `auto_refill_retry_ms`, buffers returned by dropping the guard are
/// picked up by the retry timer.
#[test]
fn auto_refill_retry_timer_finds_dropped_buffers() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let config = ContinuousRequestTargetConfig {
        auto_refill: true,
        auto_refill_retry_ms: 2,
        ..keep_config(1, 1)
    };
    let crt =
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::KeepAndContinue)).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    for round in 1..=5 {
        wait_until("a kept buffer", LONG, || {
            crt.client().kept.lock().unwrap().len() == 1
        });
        assert_eq!(crt.client().completions(), round);
        drop(crt.client().take_kept());
    }
    crt.stop().unwrap();
    drop(crt.client().take_kept());
    assert_eq!(crt.output_buffers_free(), Some(1));
    drop(crt);
    assert_clean(&sim, target);
}

/// `ClientOwnsAndStop` and `ModuleOwnsAndStop` retire the request with the
/// completion's status as the reason.
#[test]
fn stop_dispositions_retire_with_reason() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let crt =
        ContinuousRequestTarget::new(&sim, keep_config(2, 2), Recorder::new(Policy::KeepAndStop))
            .unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("both retired", LONG, || crt.active_stream_requests() == 0);
    let mut retirements = crt.client().retirements();
    retirements.sort_by_key(|r| r.slot);
    assert_eq!(retirements.len(), 2);
    for (i, r) in retirements.iter().enumerate() {
        assert_eq!(r.slot, i);
        assert_eq!(
            r.reason,
            RetireReason::ClientStopped {
                status: Status::SUCCESS
            }
        );
    }
    let mut remaining: Vec<_> = retirements.iter().map(|r| r.remaining).collect();
    remaining.sort();
    assert_eq!(remaining, vec![0, 1]);
    assert_eq!(crt.output_buffers_free(), Some(0));
    drop(crt.client().take_kept());
    assert_eq!(crt.output_buffers_free(), Some(2));
    // After every request retired on its own, streaming counts as stopped:
    // start works without a stop first.
    assert!(!crt.is_streaming());
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    crt.start().unwrap();
    wait_until("retired again", LONG, || crt.active_stream_requests() == 0);
    crt.stop().unwrap();
    drop(crt.client().take_kept());
    drop(crt);
    assert_clean(&sim, target);
}

/// Without a client output callback (the `()` client) a failed completion
/// retires its request (DMF's default).
#[test]
fn default_client_retires_on_failure() {
    let device = FixedResponseDevice::new(Status::UNSUCCESSFUL, Some(0));
    let (sim, target) = sim_with_device(SimConfig::default(), Arc::new(device));
    let crt = ContinuousRequestTarget::new(&sim, keep_config(3, 3), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("all retired", LONG, || crt.active_stream_requests() == 0);
    let stats = crt.statistics();
    assert_eq!(stats.completions, 3);
    assert_eq!(stats.failed_completions, 3);
    assert_eq!(stats.retired_by_client, 3);
    drop(crt);
    assert_clean(&sim, target);
}

/// After every stream request retired on its own (here failures retired
/// them), the stream counts as stopped: `is_streaming` is false and `start`
/// works without a `stop` first, as often as needed.
#[test]
fn a_stream_whose_requests_all_retired_starts_again_without_stop() {
    let device = FixedResponseDevice::new(Status::UNSUCCESSFUL, Some(0));
    let (sim, target) = sim_with_device(SimConfig::default(), Arc::new(device));
    let crt = ContinuousRequestTarget::new(&sim, keep_config(3, 3), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    for round in 1..=3u64 {
        crt.start().unwrap();
        wait_until("all retired", LONG, || {
            crt.active_stream_requests() == 0 && crt.statistics().completions == 3 * round
        });
        assert!(!crt.is_streaming());
        assert_eq!(crt.stream_state(), StreamState::Stopped);
        assert_eq!(crt.statistics().retired_by_client, 3 * round);
    }
    crt.stop().unwrap();
    drop(crt);
    assert_clean(&sim, target);
}

fn failing_sends_in(backoff: Backoff, window: Duration) -> u64 {
    let device = FixedResponseDevice::new(Status::UNSUCCESSFUL, Some(0));
    let (sim, target) = sim_with_device(SimConfig::default(), Arc::new(device));
    let config = ContinuousRequestTargetConfig {
        backoff,
        ..keep_config(2, 2)
    };
    let crt =
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::AlwaysContinue)).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    std::thread::sleep(window);
    crt.stop().unwrap();
    let stats = crt.statistics();
    assert_eq!(stats.sends, stats.completions);
    assert_eq!(stats.failed_completions, stats.completions);
    drop(crt);
    assert_clean(&sim, target);
    stats.sends
}

/// Failing stream requests are re-sent with back-off: a target failing every request immediately is not re-sent to
/// in a tight loop when the client continues on failure: the resend backs
/// off exponentially.
#[test]
fn backoff_limits_resends_to_failing_target() {
    let window = Duration::from_millis(300);
    let backed_off = failing_sends_in(
        Backoff {
            initial_ms: 1,
            max_ms: 64,
        },
        window,
    );
    // Per request: delays 1+2+...+64 = 127 ms, then one per 64 ms: ~10 sends
    // in 300 ms; allow generous scheduling slack.
    assert!(backed_off <= 2 * 16, "{backed_off} sends with back-off");
    // Same window without back-off (a loaded machine slows both alike).
    let busy = failing_sends_in(Backoff::DISABLED, window);
    assert!(busy > 10 * backed_off, "{busy} sends without back-off");
}

/// A success resets the back-off: with alternating failure and success
/// every failure waits the initial delay, never a doubled one.
#[test]
fn backoff_resets_after_success() {
    let handler = dmf_sim::TestsIoctlHandler::new(dmf_sim::IoctlHandlerConfig {
        max_random_delay_ms: 0,
        ..Default::default()
    });
    let (sim, target) = sim_with_device(
        SimConfig::default().with_fault(FaultPoint::RequestFailure, FaultPlan::EveryNth(2)),
        Arc::new(handler),
    );
    let config = ContinuousRequestTargetConfig {
        backoff: Backoff {
            initial_ms: 100,
            max_ms: 10_000,
        },
        ..keep_config(1, 1)
    };
    let crt =
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::AlwaysContinue)).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    let t0 = Instant::now();
    crt.start().unwrap();
    wait_until("3 back-offs resumed", LONG, || {
        crt.statistics().resumed >= 3
    });
    let elapsed = t0.elapsed();
    // 3 x 100 ms with the reset; 100 + 200 + 400 ms without it.
    assert!(elapsed >= Duration::from_millis(290), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(650), "{elapsed:?}");
    assert!((3..=4).contains(&crt.statistics().backoffs));
    crt.stop().unwrap();
    drop(crt);
    assert_clean(&sim, target);
}

/// Completions during stop are counted and may be delivered: completions that arrive while stopping are counted; by default the
/// client does not see them, with `deliver_completions_during_stop` it does
/// (flagged) and buffer ownership still follows its disposition.
#[test]
fn completions_during_stop_counted_and_optionally_delivered() {
    for deliver in [false, true] {
        let (sim, target, device) = sim_with_parking();
        let config = ContinuousRequestTargetConfig {
            deliver_completions_during_stop: deliver,
            ..keep_config(4, 4)
        };
        let crt =
            ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::KeepAndContinue))
                .unwrap();
        crt.io_target_set(target.clone()).unwrap();
        crt.start().unwrap();
        assert!(device.wait_for_pending(4, LONG));
        crt.stop().unwrap();
        assert_eq!(device.pending(), 0);
        let stats = crt.statistics();
        assert_eq!(stats.completions_during_stop, 4);
        assert_eq!(stats.retired_stopped, 4);
        assert!(crt.client().retirements().is_empty());
        if deliver {
            assert_eq!(stats.completions_delivered_during_stop, 4);
            assert_eq!(crt.client().during_stop.load(Ordering::SeqCst), 4);
            for (status, _, _, stopping) in crt.client().seen.lock().unwrap().iter() {
                assert_eq!(*status, Status::CANCELLED);
                assert!(*stopping);
            }
            assert_eq!(crt.output_buffers_free(), Some(0));
            drop(crt.client().take_kept());
        } else {
            assert_eq!(stats.completions_delivered_during_stop, 0);
            assert_eq!(crt.client().completions(), 0);
        }
        assert_eq!(crt.output_buffers_free(), Some(4));
        drop(crt);
        assert_clean(&sim, target);
    }
}

/// Close stops streaming itself: closing (dropping) a streaming CRT stops streaming itself:
/// requests parked at the device are cancelled, nothing waits for the remote.
#[test]
fn close_stops_streaming() {
    let (sim, target, device) = sim_with_parking();
    let crt = ContinuousRequestTarget::new(&sim, keep_config(3, 3), Recorder::new(Policy::Default))
        .unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    assert!(device.wait_for_pending(3, LONG));
    let t0 = Instant::now();
    crt.close();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(crt.is_closed());
    assert_eq!(device.pending(), 0);
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(
        crt.io_target_set(target.clone()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    crt.stop().unwrap(); // still callable
    crt.close(); // idempotent
    drop(crt);
    assert_clean(&sim, target);
}

/// Dropping without close does the same.
#[test]
fn drop_stops_streaming() {
    let (sim, target, device) = sim_with_parking();
    let crt = ContinuousRequestTarget::new(&sim, keep_config(2, 2), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    assert!(device.wait_for_pending(2, LONG));
    drop(crt);
    assert_eq!(device.pending(), 0);
    assert_clean(&sim, target);
}

/// Automatic mode: setting the target starts streaming, clearing it stops.
#[test]
fn automatic_mode_follows_the_target() {
    let (sim, target, device) = sim_with_parking();
    let config = ContinuousRequestTargetConfig {
        continuous_request_target_mode: StreamMode::Automatic,
        ..keep_config(2, 2)
    };
    let crt = ContinuousRequestTarget::new(&sim, config, ()).unwrap();
    assert!(!crt.is_streaming());
    crt.io_target_set(target.clone()).unwrap();
    assert!(crt.is_streaming());
    assert!(device.wait_for_pending(2, LONG));
    // Setting again while streaming is refused.
    assert_eq!(
        crt.io_target_set(target.clone()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    crt.io_target_clear();
    assert!(!crt.is_streaming());
    assert!(crt.io_target().is_none());
    assert_eq!(device.pending(), 0);
    crt.io_target_set(target.clone()).unwrap();
    assert!(device.wait_for_pending(2, LONG));
    drop(crt);
    assert_eq!(device.pending(), 0);
    assert_clean(&sim, target);
}

/// Manual mode: setting the target does not start streaming.
#[test]
fn manual_mode_waits_for_start() {
    let (sim, target, device) = sim_with_parking();
    let crt = ContinuousRequestTarget::new(&sim, keep_config(2, 2), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(device.pending(), 0);
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    crt.start().unwrap();
    assert_eq!(crt.stream_state(), StreamState::Running);
    assert!(device.wait_for_pending(2, LONG));
    crt.io_target_clear(); // stops streaming first
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    assert_eq!(device.pending(), 0);
    drop(crt);
    assert_clean(&sim, target);
}

/// Error statuses of start/stop and configuration validation.
#[test]
fn start_stop_errors() {
    let (sim, target) = sim_with_ioctl_handler(1);
    // Invalid configurations.
    for bad in [
        ContinuousRequestTargetConfig {
            buffer_count_input: 1,
            ..Default::default()
        },
        ContinuousRequestTargetConfig {
            buffer_count_output: 1,
            ..Default::default()
        },
        ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_output_size: 4,
            ..Default::default()
        },
        ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_input_size: 4,
            ..Default::default()
        },
    ] {
        assert!(bad.validate().is_err());
        assert_eq!(
            ContinuousRequestTarget::new(&sim, bad, ()).err(),
            Some(Status::INVALID_PARAMETER)
        );
    }
    // N = 0: a plain transport.
    let plain = ContinuousRequestTarget::new(&sim, Default::default(), ()).unwrap();
    plain.io_target_set(target.clone()).unwrap();
    assert_eq!(plain.start(), Err(Status::NOT_SUPPORTED));
    assert_eq!(plain.stop(), Err(Status::NOT_SUPPORTED));
    assert_eq!(plain.stream_request_count(), 0);
    drop(plain);

    let crt = ContinuousRequestTarget::new(&sim, keep_config(1, 1), ()).unwrap();
    crt.stop().unwrap(); // never started: no-op
    assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE)); // no target
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE)); // running
    crt.stop().unwrap();
    crt.stop().unwrap(); // idempotent
    crt.start().unwrap();
    crt.stop().unwrap();
    drop(crt);
    assert_clean(&sim, target);
}

/// Start fails (and leaves the stream stopped, nothing in flight) when the
/// target refuses the sends.
#[test]
fn start_failure_when_target_refuses() {
    // A device that holds every request: no completion (and so no resend,
    // which would consume the fault plan's "every third send") can come
    // back while `start` is still sending.
    let (sim, target) = sim_with_device(SimConfig::default(), ParkingDevice::new());
    let crt = ContinuousRequestTarget::new(&sim, keep_config(4, 4), Recorder::new(Policy::Default))
        .unwrap();
    crt.io_target_set(target.clone()).unwrap();
    sim.faults().set(FaultPoint::SendRefusal, FaultPlan::Always);
    assert_eq!(crt.start(), Err(Status::INSUFFICIENT_RESOURCES));
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(crt.output_buffers_free(), Some(4));
    let stats = crt.statistics();
    assert_eq!(stats.retired_send_failed, 1);
    assert_eq!(stats.retired_stopped, 3);
    // A refusal on the third request: the two already sent are cancelled.
    sim.faults()
        .set(FaultPoint::SendRefusal, FaultPlan::EveryNth(3));
    assert_eq!(crt.start(), Err(Status::INSUFFICIENT_RESOURCES));
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    assert_eq!(crt.active_stream_requests(), 0);
    sim.faults().set(FaultPoint::SendRefusal, FaultPlan::Never);
    crt.start().unwrap();
    crt.stop().unwrap();
    drop(crt);
    assert_clean(&sim, target);
}

/// A resend refused while streaming retires that request and tells the
/// client; the other requests stream on.
#[test]
fn refused_resend_is_reported() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let crt = ContinuousRequestTarget::new(&sim, keep_config(2, 2), Recorder::new(Policy::Default))
        .unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    sim.faults()
        .set(FaultPoint::SendRefusal, FaultPlan::Next(1));
    wait_until("a retirement", LONG, || {
        !crt.client().retirements().is_empty()
    });
    let r = crt.client().retirements()[0];
    assert_eq!(
        r.reason,
        RetireReason::SendFailed {
            status: Status::INSUFFICIENT_RESOURCES
        }
    );
    assert_eq!(r.remaining, 1);
    let before = crt.client().completions();
    wait_until("the other streams on", LONG, || {
        crt.client().completions() > before + 10
    });
    assert_eq!(crt.active_stream_requests(), 1);
    crt.stop().unwrap();
    drop(crt);
    assert_clean(&sim, target);
}

/// Look-aside output: the pool grows when clients hold buffers, so the
/// stream never starves.
#[test]
fn look_aside_output_never_starves() {
    let (sim, target) = sim_with_ioctl_handler(0);
    let config = ContinuousRequestTargetConfig {
        enable_look_aside_output: true,
        ..keep_config(2, 1)
    };
    let crt =
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::KeepAndContinue)).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("50 kept", LONG, || crt.client().completions() >= 50);
    assert!(crt.client().retirements().is_empty());
    crt.stop().unwrap();
    drop(crt.client().take_kept());
    drop(crt);
    assert_clean(&sim, target);
}

/// Retires every request on its first completion and holds each retirement
/// report until the other one arrived too (or a short time passed), so two
/// retirements on two completion threads overlap.
struct OverlappingRetirements {
    arrived: std::sync::atomic::AtomicUsize,
    retirements: std::sync::Mutex<Vec<Retirement>>,
}

impl StreamClient<Sim> for OverlappingRetirements {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        c.module_owns_and_stop()
    }

    fn stream_request_retired(&self, retirement: Retirement) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.arrived.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            std::hint::spin_loop();
        }
        self.retirements.lock().unwrap().push(retirement);
    }
}

/// Two stream requests that retire at the same time report different
/// `remaining` counts, and exactly one of them reports the stream empty.
#[test]
fn simultaneous_retirements_count_down_to_zero_once() {
    let (sim, target, device) = sim_with_parking();
    let client = OverlappingRetirements {
        arrived: Default::default(),
        retirements: Default::default(),
    };
    let crt = ContinuousRequestTarget::new(&sim, keep_config(2, 2), client).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    assert!(device.wait_for_pending(2, LONG));
    assert_eq!(device.complete_all(Status::SUCCESS), 2);
    wait_until("both retired", LONG, || {
        crt.client().retirements.lock().unwrap().len() == 2
    });
    let mut remaining: Vec<usize> = crt
        .client()
        .retirements
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.remaining)
        .collect();
    remaining.sort();
    assert_eq!(remaining, vec![0, 1]);
    assert_eq!(crt.active_stream_requests(), 0);
    crt.stop().unwrap();
    drop(crt);
    assert_clean(&sim, target);
}
