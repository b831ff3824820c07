//! Property test: random sequences of PnP events, client-device power
//! transitions, vetoes, faults and method calls. After every step the
//! callback order is legal, the module's open-target count equals the
//! simulator's open targets, and no target exists for a device or interface
//! that is gone; at the end every target that opened has ended exactly
//! once, every accepted send completed once, and nothing leaked.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::{ContinuousRequestTargetConfig, StreamMode};
use dmf_device_interface_multiple_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER, SLEEP_INPUT_SIZE};
use dmf_sim::{ClientDevice, DeviceId, FaultPlan, Sim, SimConfig};
use dmf_wdf::{DeviceCallbacks, RequestType};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Add,
    Remove(u8),
    QueryRemoveCancel(u8),
    ReopenFails(u8),
    Surprise(u8),
    Disable(u8),
    Enable(u8),
    VetoOpen(bool),
    VetoQueryRemove(bool),
    DeviceStart,
    DeviceStop,
    PowerCycle,
    Sync(u8),
    Async(u8, bool),
    Reuse(u8),
    Stream(u8, bool),
    Reference(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Add),
        2 => any::<u8>().prop_map(Op::Remove),
        2 => any::<u8>().prop_map(Op::QueryRemoveCancel),
        1 => any::<u8>().prop_map(Op::ReopenFails),
        1 => any::<u8>().prop_map(Op::Surprise),
        2 => any::<u8>().prop_map(Op::Disable),
        2 => any::<u8>().prop_map(Op::Enable),
        1 => any::<bool>().prop_map(Op::VetoOpen),
        1 => any::<bool>().prop_map(Op::VetoQueryRemove),
        1 => Just(Op::DeviceStart),
        1 => Just(Op::DeviceStop),
        1 => Just(Op::PowerCycle),
        2 => any::<u8>().prop_map(Op::Sync),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(t, c)| Op::Async(t, c)),
        1 => any::<u8>().prop_map(Op::Reuse),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(t, s)| Op::Stream(t, s)),
        1 => any::<u8>().prop_map(Op::Reference),
    ]
}

/// A 200 ms sleep input that lives for the whole test (async sends borrow it).
fn long_sleep() -> &'static [u8; SLEEP_INPUT_SIZE] {
    static INPUT: std::sync::OnceLock<[u8; SLEEP_INPUT_SIZE]> = std::sync::OnceLock::new();
    INPUT.get_or_init(|| encode_sleep(200))
}

fn run(option: PnpRegisterWhen, streaming: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let sim = dmf_sim::Sim::new(SimConfig::default().with_completion_threads(1));
    let bus = sim.bus();
    let mut crt = ContinuousRequestTargetConfig::default();
    if streaming {
        crt = ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_count_output: 1,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: StreamMode::Automatic,
            ..crt
        };
    }
    let config = DeviceInterfaceMultipleTargetConfig {
        continuous_request_target_module_config: crt,
        ..config(option)
    };
    let dimt = DeviceInterfaceMultipleTarget::new(&sim, config, Recorder::default()).unwrap();
    let device = ClientDevice::new();
    let callbacks: Arc<dyn DeviceCallbacks> = Arc::new(dimt.device_callbacks());
    device.register(callbacks);
    let mut devices: Vec<(DeviceId, bool)> = Vec::new();
    let accepted = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let c2 = Arc::clone(&completed);
    let done: OwnedCompletion<Sim> = Arc::new(move |_c: OwnedSendCompleted<Sim>| {
        c2.fetch_add(1, Ordering::SeqCst);
    });
    let long = long_sleep();
    let short = encode_sleep(1);
    let pick = |devices: &Vec<(DeviceId, bool)>, i: u8| -> Option<usize> {
        (!devices.is_empty()).then(|| i as usize % devices.len())
    };
    let target = |i: u8| -> Option<TargetHandle> {
        let t = dimt.targets();
        (!t.is_empty()).then(|| t[i as usize % t.len()])
    };
    // Start with two devices and a started client device, so that most
    // sequences have targets to work on.
    let prologue = [Op::Add, Op::Add, Op::DeviceStart];
    for op in prologue.iter().chain(ops) {
        match *op {
            Op::Add => devices.push((add_device(&sim, &format!("d{}", devices.len())), true)),
            Op::Remove(i) => {
                if let Some(i) = pick(&devices, i) {
                    if bus.remove_device(devices[i].0) == Ok(dmf_sim::RemovalOutcome::Removed) {
                        devices.swap_remove(i);
                    }
                }
            }
            Op::QueryRemoveCancel(i) => {
                if let Some(i) = pick(&devices, i) {
                    let _ = bus.query_remove_then_cancel(devices[i].0);
                }
            }
            Op::ReopenFails(i) => {
                if let Some(i) = pick(&devices, i) {
                    let link = link_of(&sim, devices[i].0);
                    sim.faults()
                        .set_open_failure_for_link(&link, FaultPlan::Always, None);
                    let _ = bus.query_remove_then_cancel(devices[i].0);
                    sim.faults().clear_open_failure_for_link(&link);
                }
            }
            Op::Surprise(i) => {
                if let Some(i) = pick(&devices, i) {
                    bus.surprise_remove(devices[i].0).unwrap();
                    devices.swap_remove(i);
                }
            }
            Op::Disable(i) => {
                if let Some(i) = pick(&devices, i) {
                    bus.disable_interface(devices[i].0, &GUID).unwrap();
                    devices[i].1 = false;
                }
            }
            Op::Enable(i) => {
                if let Some(i) = pick(&devices, i) {
                    bus.enable_interface(devices[i].0, &GUID).unwrap();
                    devices[i].1 = true;
                }
            }
            Op::VetoOpen(v) => dimt.client().veto_open.store(v, Ordering::SeqCst),
            Op::VetoQueryRemove(v) => dimt.client().veto_query_remove.store(v, Ordering::SeqCst),
            Op::DeviceStart => {
                let _ = device.start();
                bus.flush().unwrap();
            }
            Op::DeviceStop => {
                let _ = device.stop();
            }
            Op::PowerCycle => {
                let _ = device.power_down();
                let _ = device.power_up();
                bus.flush().unwrap();
            }
            Op::Sync(i) => {
                if let Some(t) = target(i) {
                    let r =
                        dimt.send_synchronously(t, &short, &mut [], SendParams::ioctl(IOCTL_SLEEP));
                    prop_assert!(r.is_ok(), "sync send on an open target: {r:?}");
                }
            }
            Op::Async(i, cancel) => {
                if let Some(t) = target(i) {
                    let r = dimt.target_guard(t).and_then(|g| {
                        Ok(g.send_ex(
                            Some(long.to_vec().into()),
                            None,
                            SendParams::ioctl(IOCTL_SLEEP).with_timeout(50),
                            Some(done.clone()),
                            0,
                        )?)
                    });
                    prop_assert!(r.is_ok(), "async send on an open target: {r:?}");
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if cancel {
                        dimt.cancel(t, r.unwrap());
                    }
                }
            }
            Op::Reuse(i) => {
                if let Some(t) = target(i) {
                    let id = dimt.reuse_create(t).unwrap();
                    let r = dimt.target_guard(t).and_then(|g| {
                        Ok(g.reuse_send(
                            id,
                            Some(long.to_vec().into()),
                            None,
                            SendParams::ioctl(IOCTL_SLEEP),
                            Some(done.clone()),
                            0,
                        )?)
                    });
                    prop_assert!(r.is_ok());
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if i % 2 == 0 {
                        // Deferred deletion of a request in flight.
                        prop_assert_eq!(dimt.reuse_delete(t, id), Ok(ReuseDeletion::Deferred));
                    } // else forgotten: deleted by the target's close.
                }
            }
            Op::Stream(i, start) => {
                if let Some(t) = target(i) {
                    let r = if start {
                        dimt.stream_start(t)
                    } else {
                        dimt.stream_stop(t)
                    };
                    if !streaming {
                        prop_assert_eq!(r, Err(dmf_wdf::Status::NOT_SUPPORTED));
                    }
                }
            }
            Op::Reference(i) => {
                if let Some(t) = target(i) {
                    prop_assert!(dimt.target_reference(t).is_ok());
                    prop_assert!(dimt.get(t).is_ok());
                    dimt.target_dereference(t);
                }
            }
        }
        let events = dimt.client().events();
        if let Err(e) = check_order(&events, false) {
            return Err(TestCaseError::fail(e));
        }
        prop_assert_eq!(dimt.open_target_count(), dimt.client().open_targets().len());
        prop_assert_eq!(dimt.open_target_count() as i64, sim.counters().open_targets);
        for t in dimt.targets() {
            let link = dimt.symbolic_link(t).unwrap();
            let alive = devices
                .iter()
                .any(|(id, enabled)| *enabled && link_of(&sim, *id) == link);
            prop_assert!(alive, "target {} on a gone interface {}", t, link);
        }
    }
    let _ = device.stop();
    let module = dimt.module();
    if std::env::var_os("DIMT_PROPTEST_VERBOSE").is_some() {
        eprintln!(
            "{} ops, {} callbacks",
            ops.len(),
            module.client().events().len()
        );
    }
    drop(dimt);
    prop_assert!(sim.wait_quiescent(Duration::from_secs(10)));
    prop_assert_eq!(module.target_count(), 0);
    prop_assert_eq!(module.open_target_count(), 0);
    if let Err(e) = check_order(&module.client().events(), true) {
        return Err(TestCaseError::fail(e));
    }
    prop_assert_eq!(
        accepted.load(Ordering::SeqCst),
        completed.load(Ordering::SeqCst)
    );
    drop(module);
    drop(done);
    prop_assert!(sim.wait_quiescent(Duration::from_secs(10)));
    let c = sim.counters();
    prop_assert!(c.is_clean(), "{}", c);
    prop_assert_eq!(c.callback_panics, 0);
    Ok(())
}

fn option() -> impl Strategy<Value = PnpRegisterWhen> {
    prop_oneof![
        Just(PnpRegisterWhen::PrepareHardware),
        Just(PnpRegisterWhen::D0Entry),
        Just(PnpRegisterWhen::Create),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_pnp_power_and_method_sequences(
        option in option(),
        streaming in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(option, streaming, &ops)?;
    }
}
