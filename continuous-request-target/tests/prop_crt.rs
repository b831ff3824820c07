//! Property test: random configurations and random sequences of start,
//! stop, power transitions, target changes, faults, buffer hoarding and
//! returns, and single sends. Afterwards every stream request retired, every
//! send completed, every output buffer is home and the simulator's counters
//! are clean (no request, IRP, timer, work item, event or memory leaked).
mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
use dmf_sim::{ClientDevice, ClientState, FaultPlan, FaultPoint, Sim};
use dmf_wdf::{RawBuffer, RequestType, Status};
use proptest::prelude::*;

/// A client whose output policy the sequence changes.
struct Client {
    /// 0: DMF default; 1: keep buffers and continue; 2: always continue.
    mode: AtomicU8,
    kept: Mutex<Vec<OutputBuffer<Sim>>>,
}

impl StreamClient<Sim> for Client {
    fn buffer_output(&self, mut c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        match self.mode.load(Ordering::SeqCst) {
            1 => {
                if let Some(b) = c.take_output() {
                    self.kept.lock().unwrap().push(b);
                }
                OutputDisposition::ClientOwnsAndContinue
            }
            2 => c.module_owns_and_continue(),
            _ => {
                if c.status.is_error() {
                    c.module_owns_and_stop()
                } else {
                    c.module_owns_and_continue()
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Start,
    Stop,
    PowerCycleHalf,
    Mode(u8),
    ReturnBuffers(bool),
    FailRequests(u32),
    RefuseSends(u32),
    ClearTarget,
    SetTarget,
    SingleSend(u8),
    Sleep(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Start),
        2 => Just(Op::Stop),
        2 => Just(Op::PowerCycleHalf),
        1 => (0u8..3).prop_map(Op::Mode),
        1 => any::<bool>().prop_map(Op::ReturnBuffers),
        1 => (1u32..4).prop_map(Op::FailRequests),
        1 => (1u32..3).prop_map(Op::RefuseSends),
        1 => Just(Op::ClearTarget),
        1 => Just(Op::SetTarget),
        1 => (0u8..5).prop_map(Op::SingleSend),
        2 => (0u8..4).prop_map(Op::Sleep),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    n: u32,
    extra_buffers: u32,
    look_aside: bool,
    auto_refill: bool,
    passive: bool,
    purge: bool,
    resend: bool,
    automatic: bool,
    deliver_during_stop: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1u32..4,
        0u32..3,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                n,
                extra_buffers,
                look_aside,
                auto_refill,
                passive,
                purge,
                resend,
                automatic,
                deliver,
            )| {
                Setup {
                    n,
                    extra_buffers,
                    look_aside,
                    auto_refill,
                    passive,
                    purge,
                    resend,
                    automatic,
                    deliver_during_stop: deliver,
                }
            },
        )
}

fn run(setup: Setup, ops: Vec<Op>) {
    let (sim, target) = sim_with_ioctl_handler(2);
    let buffers = setup.n + setup.extra_buffers;
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: setup.n,
        buffer_count_output: buffers,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        enable_look_aside_output: setup.look_aside,
        auto_refill: setup.auto_refill,
        auto_refill_retry_ms: 1,
        passive_level: setup.passive,
        purge_and_start_target_in_d0_callbacks: setup.purge,
        cancel_and_resend_request_in_d0_callbacks: setup.resend,
        continuous_request_target_mode: if setup.automatic {
            StreamMode::Automatic
        } else {
            StreamMode::Manual
        },
        deliver_completions_during_stop: setup.deliver_during_stop,
        backoff: Backoff {
            initial_ms: 1,
            max_ms: 4,
        },
        ..Default::default()
    };
    let client = Client {
        mode: AtomicU8::new(0),
        kept: Mutex::new(Vec::new()),
    };
    let crt = ContinuousRequestTarget::new(&sim, config, client).unwrap();
    let device = ClientDevice::new();
    device.register(Arc::new(crt.device_callbacks()));
    device.start().unwrap();
    let mut in_d0 = true;
    crt.io_target_set(target.clone()).unwrap();
    let input = encode_sleep(1);
    for op in ops {
        match op {
            Op::Start => match crt.start() {
                Ok(()) => {}
                Err(Status::INVALID_DEVICE_STATE) => {}
                // Refused sends or an empty pool at start.
                Err(Status::INSUFFICIENT_RESOURCES) => {}
                // The purged target of a device in D3 refuses sends.
                Err(s) if !in_d0 => assert!(s.is_error()),
                Err(s) => panic!("start: {s:?}"),
            },
            Op::Stop => crt.stop().unwrap(),
            Op::PowerCycleHalf => {
                if in_d0 {
                    device.power_down().unwrap();
                    if setup.purge || setup.resend {
                        assert_eq!(crt.stream_state(), StreamState::Stopped);
                        assert_eq!(crt.active_stream_requests(), 0);
                    }
                } else {
                    // Restarting streaming may fail (refused sends, empty
                    // pool): the device then stays in D3.
                    let _ = device.power_up();
                }
                in_d0 = device.state() == ClientState::D0;
            }
            Op::Mode(m) => crt.client().mode.store(m, Ordering::SeqCst),
            Op::ReturnBuffers(put) => {
                let kept = std::mem::take(&mut *crt.client().kept.lock().unwrap());
                for b in kept {
                    if put {
                        assert_eq!(crt.buffer_put(b), Ok(()));
                    } else {
                        drop(b);
                    }
                }
            }
            Op::FailRequests(n) => sim
                .faults()
                .set(FaultPoint::RequestFailure, FaultPlan::Next(n)),
            Op::RefuseSends(n) => sim
                .faults()
                .set(FaultPoint::SendRefusal, FaultPlan::Next(n)),
            Op::ClearTarget => {
                crt.io_target_clear();
                assert_eq!(crt.stream_state(), StreamState::Stopped);
            }
            Op::SetTarget => {
                let streaming = crt.stream_state() != StreamState::Stopped;
                match crt.io_target_set(target.clone()) {
                    Ok(()) => assert!(!streaming),
                    Err(Status::INVALID_DEVICE_STATE) if streaming => {}
                    // Automatic mode: the start failed (refused sends, purged target).
                    Err(s) => assert!(setup.automatic && s.is_error(), "{s:?}"),
                }
            }
            Op::SingleSend(ms) => {
                let r = crt.send_synchronously(
                    &input,
                    &mut [],
                    SendParams::ioctl(IOCTL_SLEEP).with_timeout(u32::from(ms)),
                );
                if let Err(s) = r {
                    assert!(s.is_error());
                }
                // An asynchronous one too, cancelled at once.
                // SAFETY: `input` outlives the CRT (dropped last), and close
                // waits for every single send.
                let id = unsafe {
                    crt.send_ex_raw(
                        Some(RawBuffer::from_slice(&input)),
                        None,
                        SendParams::ioctl(IOCTL_SLEEP),
                        None,
                        0,
                    )
                };
                if let Ok(id) = id {
                    let _ = crt.cancel(id);
                }
            }
            Op::Sleep(ms) => std::thread::sleep(Duration::from_millis(u64::from(ms))),
        }
    }
    sim.faults().clear_all();
    crt.stop().unwrap();
    // Invariants once stopped.
    let stats = crt.statistics();
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(stats.sends, stats.completions, "{stats:?}");
    drop(std::mem::take(&mut *crt.client().kept.lock().unwrap()));
    assert_eq!(crt.output_buffers_free(), Some(buffers as usize));
    device.stop().unwrap();
    drop(device);
    drop(crt);
    assert_clean(&sim, target);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 50, ..ProptestConfig::default() })]

    #[test]
    fn random_start_stop_power_sequences_leave_nothing_behind(
        setup in setup(),
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        run(setup, ops);
    }
}
