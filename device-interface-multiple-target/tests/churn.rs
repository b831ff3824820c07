//! DIMT-5 churn with real threads: devices arrive, are query-removed
//! (accepted or vetoed), cancelled, removed, surprise-removed, and their
//! interfaces toggled, while worker threads call every method on whatever
//! targets exist. Checks: every call returns an accepted status, every
//! accepted asynchronous send completes exactly once, callback orders are
//! legal, every target that opened ends exactly once, nothing leaks.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use dmf_continuous_request_target::{ContinuousRequestTargetConfig, StreamMode};
use dmf_device_interface_multiple_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER, SLEEP_INPUT_SIZE};
use dmf_sim::{DeviceId, Sim, SplitMix64};
use dmf_wdf::{IoTarget, RequestType, Status};

const ACCEPTED: [Status; 7] = [
    Status::SUCCESS,
    Status::CANCELLED,
    Status::INVALID_DEVICE_STATE,
    Status::DELETE_PENDING,
    Status::DEVICE_REMOVED,
    Status::IO_TIMEOUT,
    Status::OBJECTID_NOT_FOUND,
];

fn accepted(r: dmf_wdf::Result<impl Sized>) {
    if let Err(s) = r {
        assert!(ACCEPTED.contains(&s), "unexpected status {s:?}");
    }
}

/// Sleep inputs that live for the whole test (async sends borrow them).
fn sleep_input(ms: usize) -> &'static [u8; SLEEP_INPUT_SIZE] {
    static INPUTS: OnceLock<Vec<[u8; SLEEP_INPUT_SIZE]>> = OnceLock::new();
    &INPUTS.get_or_init(|| (0..32).map(encode_sleep).collect())[ms % 32]
}

#[derive(Default)]
struct Tally {
    accepted: AtomicUsize,
    completed: AtomicUsize,
    calls: AtomicUsize,
}

fn worker(module: Arc<Dimt<Sim, Recorder>>, tally: Arc<Tally>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = SplitMix64::derive(seed, 7);
    let mut reuse: HashMap<TargetHandle, Vec<ReuseId>> = HashMap::new();
    let t2 = Arc::clone(&tally);
    let done: OwnedCompletion<Sim> = Arc::new(move |c: OwnedSendCompleted<Sim>| {
        assert!(ACCEPTED.contains(&c.status), "completion {:?}", c.status);
        t2.completed.fetch_add(1, Ordering::SeqCst);
    });
    while !stop.load(Ordering::Relaxed) {
        let targets = module.targets();
        if targets.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let t = targets[rng.range_inclusive(0, targets.len() as u64 - 1) as usize];
        let ms = rng.range_inclusive(0, 20) as usize;
        let params = SendParams::ioctl(IOCTL_SLEEP);
        let input = Some(SendBuffer::from(sleep_input(ms).to_vec()));
        // A send with our callback, through the target's guard.
        let sender = || module.target_guard(t);
        tally.calls.fetch_add(1, Ordering::Relaxed);
        match rng.range_inclusive(0, 11) {
            0 => accepted(module.send_synchronously(t, sleep_input(ms % 5), &mut [], params)),
            1 => accepted(module.send_synchronously(
                t,
                sleep_input(ms),
                &mut [],
                params.with_timeout(5),
            )),
            2 => {
                let r = sender()
                    .and_then(|g| Ok(g.send(input, None, params, Some(done.clone()), 0)?));
                if r.is_ok() {
                    tally.accepted.fetch_add(1, Ordering::SeqCst);
                }
                accepted(r);
            }
            3 => {
                let r = sender().and_then(|g| {
                    Ok(g.send_ex(input, None, params.with_timeout(10), Some(done.clone()), 0)?)
                });
                if let Ok(id) = r {
                    tally.accepted.fetch_add(1, Ordering::SeqCst);
                    if rng.range_inclusive(0, 1) == 0 {
                        std::thread::yield_now();
                    }
                    module.cancel(t, id);
                }
                accepted(r);
            }
            4 => match module.reuse_create(t) {
                Ok(id) => reuse.entry(t).or_default().push(id),
                Err(s) => accepted(Err::<(), _>(s)),
            },
            5 => {
                if let Some(&id) = reuse.get(&t).and_then(|v| v.first()) {
                    let r = sender().and_then(|g| {
                        Ok(g.reuse_send(id, input, None, params, Some(done.clone()), 0)?)
                    });
                    if let Ok(cancel) = r {
                        tally.accepted.fetch_add(1, Ordering::SeqCst);
                        module.cancel(t, cancel);
                    }
                    accepted(r);
                }
            }
            6 => {
                if let Some(id) = reuse.get_mut(&t).and_then(|v| v.pop()) {
                    accepted(module.reuse_delete(t, id));
                }
            }
            7 => {
                if let Ok(io) = module.get(t) {
                    let _ = io.state();
                }
            }
            8 => {
                if let Ok(guard) = module.target_guard(t) {
                    assert_eq!(guard.handle(), t);
                    accepted(module.send_synchronously(t, sleep_input(1), &mut [], params));
                }
            }
            9 => accepted(module.stream_start(t)),
            10 => accepted(module.stream_stop(t)),
            _ => {
                if module.target_reference(t).is_ok() {
                    let _ = module.is_streaming(t);
                    module.target_dereference(t);
                }
            }
        }
        reuse.retain(|t, _| module.symbolic_link(*t).is_ok());
    }
}

#[test]
fn churn_with_threads() {
    let sim = sim();
    let config = DeviceInterfaceMultipleTargetConfig {
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: 2,
            buffer_count_output: 2,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: StreamMode::Automatic,
            ..ContinuousRequestTargetConfig::default()
        },
        ..config(dmf_device_interface_multiple_target::PnpRegisterWhen::Create)
    };
    let mut devices: Vec<DeviceId> = (0..3).map(|i| add_device(&sim, &format!("d{i}"))).collect();
    let dimt = created(&sim, config, Recorder::default());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let (m, t, s) = (dimt.module(), Arc::clone(&tally), Arc::clone(&stop));
            std::thread::spawn(move || worker(m, t, s, 100 + i))
        })
        .collect();

    let mut rng = SplitMix64::derive(42, 1);
    let bus = sim.bus();
    let mut next = 3;
    let start = Instant::now();
    let mut actions = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        actions += 1;
        let client = dimt.client();
        client
            .veto_query_remove
            .store(rng.range_inclusive(0, 3) == 0, Ordering::SeqCst);
        client
            .veto_open
            .store(rng.range_inclusive(0, 9) == 0, Ordering::SeqCst);
        if devices.len() < 2 || rng.range_inclusive(0, 5) == 0 {
            devices.push(add_device(&sim, &format!("d{next}")));
            next += 1;
            continue;
        }
        let i = rng.range_inclusive(0, devices.len() as u64 - 1) as usize;
        let id = devices[i];
        match rng.range_inclusive(0, 5) {
            0 => {
                if bus.remove_device(id) == Ok(dmf_sim::RemovalOutcome::Removed) {
                    devices.swap_remove(i);
                }
            }
            1 => {
                let _ = bus.query_remove_then_cancel(id);
            }
            2 => {
                bus.surprise_remove(id).unwrap();
                devices.swap_remove(i);
            }
            3 => {
                bus.disable_interface(id, &GUID).unwrap();
                std::thread::sleep(Duration::from_millis(rng.range_inclusive(0, 3)));
                bus.enable_interface(id, &GUID).unwrap();
            }
            _ => std::thread::sleep(Duration::from_millis(rng.range_inclusive(1, 10))),
        }
        check_order(&client.events(), false).unwrap();
        assert_eq!(dimt.open_target_count(), client.open_targets().len());
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let events = dimt.client().events();
    let opened = events
        .iter()
        .filter(|e| e.state == TargetStateType::Open && !e.vetoed)
        .count();
    let module = finish(&sim, dimt);
    assert_eq!(
        tally.accepted.load(Ordering::SeqCst),
        tally.completed.load(Ordering::SeqCst)
    );
    eprintln!(
        "churn: {actions} PnP actions, {opened} targets opened, {} calls, {} async sends",
        tally.calls.load(Ordering::Relaxed),
        tally.accepted.load(Ordering::SeqCst)
    );
    assert!(opened >= 5, "too little churn: {opened}");
    drop(module);
    assert_clean(&sim);
}
