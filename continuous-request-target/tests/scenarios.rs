//! DMF's CRT anchor scenarios CRT-3..CRT-6 through the CRT's own
//! non-streaming methods, on DMF's two streaming instances running at the
//! same time: (a) "DispatchInput" — Automatic mode, dispatch level — and (b)
//! "PassiveInput" — Manual mode, passive level — each streaming one IOCTL
//! SLEEP request whose input callback picks a random sleep. DMF's times are
//! divided by 100 (cancel-sure cases by about 40).
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, SleepRequest, IOCTL_SLEEP, SLEEP_INPUT_SIZE};
use dmf_sim::{Sim, SimIoTarget, SplitMix64};
use dmf_wdf::{RequestType, Status};

/// DMF's input callback: a random sleep of 0..150 ms (DMF: 0..15000).
struct SleepInput {
    rng: Mutex<SplitMix64>,
    inputs: AtomicUsize,
    outputs: AtomicUsize,
}

impl StreamClient<Sim> for SleepInput {
    fn buffer_input(&self, input: &mut [u8], _context: &mut [u8]) -> usize {
        let ms = self.rng.lock().unwrap().range_inclusive(0, 150) as i32;
        let bytes = SleepRequest {
            time_to_sleep_ms: ms,
            reuse_event: 0,
        }
        .to_bytes();
        input[..SLEEP_INPUT_SIZE].copy_from_slice(&bytes);
        self.inputs.fetch_add(1, Ordering::SeqCst);
        SLEEP_INPUT_SIZE
    }

    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        self.outputs.fetch_add(1, Ordering::SeqCst);
        assert!(
            matches!(c.status, Status::SUCCESS | Status::CANCELLED),
            "{c:?}"
        );
        if c.status.is_success() {
            c.module_owns_and_continue()
        } else {
            c.module_owns_and_stop()
        }
    }
}

struct Instance {
    name: &'static str,
    sim: Sim,
    target: Arc<SimIoTarget>,
    crt: ContinuousRequestTarget<Sim, SleepInput>,
}

impl Instance {
    /// DMF's instance (a) (`passive == false`, Automatic) or (b) (Manual, passive).
    fn new(passive: bool, seed: u64) -> Self {
        let (sim, target) = sim_with_ioctl_handler(1);
        let config = ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_count_input: 1,
            buffer_input_size: SLEEP_INPUT_SIZE as u32,
            buffer_count_output: 1,
            buffer_output_size: SLEEP_INPUT_SIZE as u32,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_SLEEP,
            continuous_request_target_mode: if passive {
                StreamMode::Manual
            } else {
                StreamMode::Automatic
            },
            passive_level: passive,
            ..Default::default()
        };
        let client = SleepInput {
            rng: Mutex::new(SplitMix64::derive(seed, 1)),
            inputs: AtomicUsize::new(0),
            outputs: AtomicUsize::new(0),
        };
        let crt = ContinuousRequestTarget::new(&sim, config, client).unwrap();
        crt.io_target_set(target.clone()).unwrap();
        if passive {
            crt.start().unwrap();
        }
        assert!(crt.is_streaming());
        Instance {
            name: if passive { "passive" } else { "dispatch" },
            sim,
            target,
            crt,
        }
    }

    fn expected_context(&self) -> DeliveryContext {
        if self.crt.config().passive_level {
            DeliveryContext::Passive
        } else {
            DeliveryContext::Dispatch
        }
    }

    /// Streaming ran alongside; stop it and check nothing leaked.
    fn finish(self) {
        let client = self.crt.client();
        assert!(client.inputs.load(Ordering::SeqCst) >= 1, "{}", self.name);
        self.crt.stop().unwrap();
        assert_eq!(self.crt.active_stream_requests(), 0);
        let stats = self.crt.statistics();
        assert_eq!(stats.sends, stats.completions, "{}", self.name);
        assert_eq!(self.crt.request_target().reuse_count(), 0);
        drop(self.crt);
        assert_clean(&self.sim, self.target);
    }
}

fn both(test: impl Fn(&Instance, &mut SplitMix64) + Send + Sync + 'static) {
    let test = Arc::new(test);
    let handles: Vec<_> = [false, true]
        .into_iter()
        .enumerate()
        .map(|(i, passive)| {
            let test = Arc::clone(&test);
            thread::spawn(move || {
                let instance = Instance::new(passive, 100 + i as u64);
                let mut rng = SplitMix64::derive(7 + i as u64, 2);
                test(&instance, &mut rng);
                instance.finish();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn sleep_ms(ms: u64) {
    thread::sleep(Duration::from_millis(ms));
}

/// CRT-3: synchronous SLEEP rand(0, 10) ms, no timeout, short pause between.
#[test]
fn crt3_synchronous_sends_while_streaming() {
    both(|inst, rng| {
        for _ in 0..10 {
            let ms = rng.range_inclusive(0, 10) as i32;
            let n = inst
                .crt
                .send_synchronously(&encode_sleep(ms), &mut [], SendParams::ioctl(IOCTL_SLEEP))
                .unwrap();
            assert_eq!(n, 0, "{}", inst.name);
            sleep_ms(2);
        }
        // With a timeout shorter than the sleep: STATUS_IO_TIMEOUT.
        let r = inst.crt.send_synchronously(
            &encode_sleep(500),
            &mut [],
            SendParams::ioctl(IOCTL_SLEEP).with_timeout(5),
        );
        assert_eq!(r, Err(Status::IO_TIMEOUT), "{}", inst.name);
        // Invalid type.
        let r = inst.crt.send_synchronously(
            &encode_sleep(0),
            &mut [],
            SendParams::new(RequestType::Invalid, 0),
        );
        assert_eq!(r, Err(Status::INVALID_PARAMETER));
    });
}

/// A completion: status, client context, delivery context, cancel id.
type Done = (Status, usize, DeliveryContext, Option<CancelId>);

/// What completion callbacks report.
#[derive(Default)]
struct Completions {
    tx: Mutex<Option<mpsc::Sender<Done>>>,
}

fn recorder() -> (OwnedCompletion<Sim>, mpsc::Receiver<Done>) {
    let (tx, rx) = mpsc::channel();
    let c = Completions {
        tx: Mutex::new(Some(tx)),
    };
    let callback: OwnedCompletion<Sim> = Arc::new(move |done: OwnedSendCompleted<Sim>| {
        let tx = c.tx.lock().unwrap().clone().unwrap();
        tx.send((
            done.status,
            done.client_context,
            done.context,
            done.cancel_id,
        ))
        .unwrap();
    });
    (callback, rx)
}

/// CRT-4: asynchronous SLEEP with a random timeout (none, or 1..50 ms).
#[test]
fn crt4_asynchronous_sends_while_streaming() {
    both(|inst, rng| {
        let (callback, rx) = recorder();
        let inputs: Vec<_> = (0..16)
            .map(|_| encode_sleep(rng.range_inclusive(0, 100) as i32))
            .collect();
        let mut plan = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let sleep = i32::from_le_bytes(input[..4].try_into().unwrap()) as u64;
            let timeout = if rng.range_inclusive(0, 1) == 0 {
                0
            } else {
                rng.range_inclusive(1, 50) as u32
            };
            inst.crt
                .send(
                    Some(input.to_vec().into()),
                    None,
                    SendParams::ioctl(IOCTL_SLEEP).with_timeout(timeout),
                    Some(callback.clone()),
                    i,
                )
                .unwrap();
            plan.push((sleep, u64::from(timeout)));
        }
        let mut seen = vec![false; plan.len()];
        for _ in 0..plan.len() {
            let (status, i, context, cancel_id) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(!seen[i]);
            seen[i] = true;
            assert_eq!(context, inst.expected_context());
            assert_eq!(cancel_id, None);
            let (sleep, timeout) = plan[i];
            if timeout == 0 || sleep + 30 < timeout {
                assert_eq!(status, Status::SUCCESS, "sleep {sleep} timeout {timeout}");
            } else if timeout + 30 < sleep {
                assert!(matches!(status, Status::CANCELLED | Status::IO_TIMEOUT));
            }
        }
        assert!(seen.iter().all(|s| *s));
    });
}

#[derive(Clone, Copy, Debug)]
enum Case {
    A,
    B,
    C,
    D,
    E,
}

const MATRIX: [Case; 5] = [Case::A, Case::B, Case::C, Case::D, Case::E];

/// One cancel-matrix case with `send_ex` (or `reuse_send` of `reuse`).
fn run_case(inst: &Instance, rng: &mut SplitMix64, case: Case, reuse: Option<ReuseId>, ctx: usize) {
    let (callback, rx) = recorder();
    let t = match case {
        Case::A | Case::B | Case::C => rng.range_inclusive(0, 60),
        Case::D | Case::E => rng.range_inclusive(100, 200),
    };
    let input = encode_sleep(t as i32);
    let buffer = Some(input.to_vec().into());
    let params = SendParams::ioctl(IOCTL_SLEEP);
    let id = match reuse {
        Some(r) => inst
            .crt
            .reuse_send(r, buffer, None, params, Some(callback), ctx),
        None => inst.crt.send_ex(buffer, None, params, Some(callback), ctx),
    }
    .unwrap();
    if let Some(r) = reuse {
        // Busy while in flight.
        let busy = inst.crt.reuse_send(r, None, None, params, None, 0);
        assert_eq!(
            busy.err().map(Status::from),
            Some(Status::OBJECTID_NOT_FOUND)
        );
    }
    match case {
        Case::A => sleep_ms(rng.range_inclusive(0, 60)),
        Case::B => sleep_ms(t),
        Case::C => {}
        Case::D => sleep_ms(4 * t),
        Case::E => sleep_ms(t / 4),
    }
    let cancelled = inst.crt.cancel(id);
    let (status, got_ctx, context, cancel_id) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got_ctx, ctx);
    assert_eq!(cancel_id, Some(id));
    assert_eq!(context, inst.expected_context());
    match case {
        Case::D => {
            assert!(!cancelled, "{case:?} must be too late");
            assert_eq!(status, Status::SUCCESS);
        }
        Case::E => {
            assert!(cancelled, "{case:?}");
            assert_eq!(status, Status::CANCELLED);
        }
        _ => {
            assert!(matches!(status, Status::SUCCESS | Status::CANCELLED));
            if status == Status::CANCELLED {
                assert!(cancelled);
            }
        }
    }
    assert!(!inst.crt.cancel(id), "a finished id never cancels again");
}

/// CRT-5: the cancel matrix a..e with `send_ex` + `cancel`.
#[test]
fn crt5_cancel_matrix_while_streaming() {
    both(|inst, rng| {
        for round in 0..2 {
            for (k, case) in MATRIX.into_iter().enumerate() {
                run_case(inst, rng, case, None, round * 10 + k);
            }
        }
    });
}

/// CRT-6: the reuse matrix: one reusable request through the 5 cancel cases
/// (waiting for each completion before reusing), then `reuse_delete`.
#[test]
fn crt6_reuse_matrix_while_streaming() {
    both(|inst, rng| {
        let reuse = inst.crt.reuse_create().unwrap();
        for (k, case) in MATRIX.into_iter().enumerate() {
            run_case(inst, rng, case, Some(reuse), k);
        }
        // The completion routine of the last send may still be returning
        // after the callback ran: then the deletion is deferred.
        let deletion = inst.crt.reuse_delete(reuse).unwrap();
        assert!(matches!(
            deletion,
            ReuseDeletion::Deleted | ReuseDeletion::Deferred
        ));
        assert_eq!(
            inst.crt.reuse_delete(reuse),
            Err(Status::OBJECTID_NOT_FOUND)
        );
    });
}

/// Non-streaming methods after close: invalid device state.
#[test]
fn single_methods_after_close() {
    let (sim, target) = sim_with_ioctl_handler(1);
    let crt = ContinuousRequestTarget::new(&sim, Default::default(), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    let reuse = crt.reuse_create().unwrap();
    crt.close();
    assert_eq!(
        crt.send_synchronously(&encode_sleep(0), &mut [], SendParams::ioctl(IOCTL_SLEEP)),
        Err(Status::INVALID_DEVICE_STATE)
    );
    let r = crt.send(None, None, SendParams::ioctl(IOCTL_SLEEP), None, 0);
    assert_eq!(r.map_err(Status::from), Err(Status::INVALID_DEVICE_STATE));
    // SAFETY: refused, nothing retained.
    let r = unsafe { crt.send_raw(None, None, SendParams::ioctl(IOCTL_SLEEP), None, 0) };
    assert_eq!(r, Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(crt.reuse_create().err(), Some(Status::INVALID_DEVICE_STATE));
    assert_eq!(
        crt.reuse_delete(reuse).err(),
        Some(Status::INVALID_DEVICE_STATE)
    );
    drop(crt);
    assert_clean(&sim, target);
}
