//! Real-thread races: stop racing completions and resends, concurrent
//! start/stop callers, buffer returns racing stop with auto-refill, close
//! racing streaming and single sends. After each, nothing is in flight,
//! every buffer is home and the simulator's counters are clean.
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
use dmf_sim::{EchoDevice, Latency, SimConfig, SplitMix64};
use dmf_wdf::{RawBuffer, RequestType, Status};

fn echo_config(n: u32) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: n,
        buffer_count_input: n,
        buffer_input_size: 8,
        buffer_count_output: n,
        buffer_output_size: 8,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: 1,
        ..Default::default()
    }
}

fn fast_echo() -> (dmf_sim::Sim, Arc<dmf_sim::SimIoTarget>) {
    sim_with_device(
        SimConfig::default()
            .with_latency(Latency::new(0, 5))
            .with_completion_threads(2),
        Arc::new(EchoDevice::new()),
    )
}

/// Stop races completions that resend immediately (including completions
/// that beat the sender out of `send`). Every stop returns with nothing in
/// flight and every buffer home; sends and completions balance.
#[test]
fn stop_races_completions_and_resends() {
    for passive in [false, true] {
        let (sim, target) = fast_echo();
        let config = ContinuousRequestTargetConfig {
            passive_level: passive,
            ..echo_config(8)
        };
        let crt =
            ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::Default)).unwrap();
        crt.io_target_set(target.clone()).unwrap();
        let mut rng = SplitMix64::derive(11, passive as u64);
        for i in 0..150 {
            crt.start().unwrap();
            let spin = rng.range_inclusive(0, 300);
            if spin > 0 {
                thread::sleep(Duration::from_micros(spin));
            }
            crt.stop().unwrap();
            // Every accepted send has completed and been processed: the
            // counters balance the moment stop returns.
            let stats = crt.statistics();
            assert_eq!(stats.sends, stats.completions, "iteration {i}");
            assert_eq!(stats.retired(), 8 * (i + 1) as u64, "iteration {i}");
            assert_eq!(crt.active_stream_requests(), 0, "iteration {i}");
            assert_eq!(crt.output_buffers_free(), Some(8), "iteration {i}");
            if i % 16 == 0 {
                // Nothing is sent after stop returned (the target's own
                // count drops when the last routine has returned).
                assert!(sim.wait_quiescent(Duration::from_secs(5)));
                assert_eq!(target.outstanding(), 0, "iteration {i}");
                assert_eq!(crt.statistics(), stats, "iteration {i}");
            }
        }
        assert!(crt.client().successes() > 100);
        assert!(crt.client().retirements().is_empty());
        drop(crt);
        assert_clean(&sim, target);
    }
}

/// Several threads call start, stop and the read-only methods at random;
/// concurrent stoppers wait for the stop in progress. A final stop leaves
/// everything idle.
#[test]
fn concurrent_start_and_stop_callers() {
    let (sim, target) = fast_echo();
    let crt = Arc::new(
        ContinuousRequestTarget::new(&sim, echo_config(4), Recorder::new(Policy::Default)).unwrap(),
    );
    crt.io_target_set(target.clone()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let crt = Arc::clone(&crt);
            let target = Arc::clone(&target);
            thread::spawn(move || {
                let mut rng = SplitMix64::derive(21, t);
                for _ in 0..200 {
                    match rng.range_inclusive(0, 3) {
                        0 => match crt.start() {
                            Ok(()) | Err(Status::INVALID_DEVICE_STATE) => {}
                            Err(Status::CANCELLED) => {} // a concurrent stop won
                            Err(other) => panic!("start: {other:?}"),
                        },
                        1 => crt.stop().unwrap(),
                        2 => {
                            let _ = crt.statistics();
                            let _ = crt.active_stream_requests();
                        }
                        _ => {
                            let n =
                                crt.send_synchronously(&[1, 2, 3], &mut [0; 3], Default::default());
                            assert_eq!(n, Err(Status::INVALID_PARAMETER));
                            let _ = target.outstanding();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    crt.stop().unwrap();
    assert_eq!(crt.active_stream_requests(), 0);
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(target.outstanding(), 0);
    assert_eq!(crt.output_buffers_free(), Some(4));
    let stats = crt.statistics();
    assert_eq!(stats.sends, stats.completions);
    drop(crt);
    assert_clean(&sim, target);
}

/// With auto-refill, a thread returning buffers (waking parked requests)
/// races start/stop; parked requests are claimed exactly once.
#[test]
fn buffer_returns_race_stop_with_auto_refill() {
    let (sim, target) = fast_echo();
    let config = ContinuousRequestTargetConfig {
        auto_refill: true,
        auto_refill_retry_ms: 1,
        ..echo_config(4)
    };
    let crt = Arc::new(
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::KeepAndContinue)).unwrap(),
    );
    crt.io_target_set(target.clone()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let returner = {
        let crt = Arc::clone(&crt);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut n = 0u32;
            while !done.load(Ordering::SeqCst) {
                for buffer in crt.client().take_kept() {
                    n += 1;
                    if n % 2 == 0 {
                        crt.buffer_put(buffer).unwrap();
                    } else {
                        drop(buffer); // picked up by the retry timer
                    }
                }
                thread::yield_now();
            }
        })
    };
    for i in 0..100 {
        crt.start().unwrap();
        thread::sleep(Duration::from_micros(200));
        crt.stop().unwrap();
        assert_eq!(crt.active_stream_requests(), 0, "iteration {i}");
        let stats = crt.statistics();
        assert_eq!(stats.sends, stats.completions, "iteration {i}");
    }
    done.store(true, Ordering::SeqCst);
    returner.join().unwrap();
    drop(crt.client().take_kept());
    assert_eq!(crt.output_buffers_free(), Some(4));
    let stats = crt.statistics();
    assert!(stats.parked_for_buffer > 0);
    assert_eq!(stats.retired(), 400);
    assert!(crt.client().retirements().is_empty());
    let crt = Arc::into_inner(crt).unwrap();
    drop(crt);
    assert_clean(&sim, target);
}

/// Close races streaming and single sends from other threads: sends after
/// close began are refused, the ones accepted complete, nothing leaks.
#[test]
fn close_races_streaming_and_single_sends() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let config = ContinuousRequestTargetConfig {
        single_send: SendContextConfig {
            cancel_in_flight_on_close_after_ms: Some(5),
            ..ContinuousRequestTargetConfig::default().single_send
        },
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        ..echo_config(4)
    };
    let crt = Arc::new(
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::Default)).unwrap(),
    );
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    let input: &'static [u8] = Box::leak(Box::new(encode_sleep(1_000)));
    let senders: Vec<_> = (0..3)
        .map(|_| {
            let crt = Arc::clone(&crt);
            thread::spawn(move || {
                let mut accepted = 0;
                loop {
                    // SAFETY: `input` is 'static and never written.
                    let r = unsafe {
                        crt.send_raw(
                            Some(RawBuffer::from_slice(input)),
                            None,
                            SendParams::ioctl(IOCTL_SLEEP),
                            None,
                            0,
                        )
                    };
                    match r {
                        Ok(()) => accepted += 1,
                        Err(Status::INVALID_DEVICE_STATE) => return accepted,
                        Err(other) => panic!("send: {other:?}"),
                    }
                    thread::sleep(Duration::from_micros(100));
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    crt.close();
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(target.outstanding(), 0);
    let accepted: usize = senders.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(accepted > 0);
    assert_eq!(crt.active_stream_requests(), 0);
    assert!(crt.client().successes() > 0);
    assert!(crt.client().retirements().is_empty());
    let crt = Arc::into_inner(crt).unwrap();
    drop(crt);
    assert_clean(&sim, target);
}
