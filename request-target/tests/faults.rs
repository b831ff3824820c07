//! Fault injection ("A failed send never loses its send context", "A passive completion is never lost" in
//! `docs/dmf-differences.md`): request-creation, work-item-creation, send
//! refusal, work-item enqueue failure, allocation failure, event creation;
//! no context, request or module reference is ever leaked (sim counters),
//! and a soak with random faults on several threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use dmf_request_target::{
    Completion, DeliveryContext, RequestTarget, RequestTargetConfig, SendCompleted,
    SendContextConfig, SendParams,
};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
use dmf_sim::{EchoDevice, FaultPlan, FaultPoint, Latency, ParkingDevice, Sim, SimConfig};
use dmf_wdf::{RawBuffer, Status};

static INPUT: [u8; 4] = [1, 2, 3, 4];

fn write(m: &RequestTarget<Sim>, rec: &Arc<Recorder>, ctx: usize) -> dmf_wdf::Result<()> {
    m.send(
        Some(INPUT.to_vec().into()),
        None,
        SendParams::write(),
        Some(rec.owned_callback()),
        ctx,
    )
    .map_err(Status::from)
}

#[test]
fn request_creation_failure_loses_no_context() {
    let device = ParkingDevice::new();
    let f = Fixture::new(
        SimConfig::default(),
        device.clone(),
        RequestTargetConfig::default(),
    );
    let rec = Recorder::new();
    let live = f.sim.counters().live_requests;
    // The preallocated context must get a request for the target: fails.
    f.sim
        .faults()
        .set(FaultPoint::RequestCreation, FaultPlan::Next(1));
    assert_eq!(
        write(&f.module, &rec, 0),
        Err(Status::INSUFFICIENT_RESOURCES)
    );
    assert_eq!(f.module.context_count(), 1);
    assert_eq!(f.module.references(), 0);
    write(&f.module, &rec, 1).unwrap();
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    // The pool must grow for a second concurrent send: fails.
    f.sim
        .faults()
        .set(FaultPoint::RequestCreation, FaultPlan::Next(1));
    assert_eq!(
        write(&f.module, &rec, 2),
        Err(Status::INSUFFICIENT_RESOURCES)
    );
    assert_eq!(
        f.module.context_count(),
        1,
        "the failed growth is not counted"
    );
    assert_eq!(f.sim.counters().live_requests, live);
    assert_eq!(f.module.references(), 1, "only the send in flight");
    assert!(device.complete_next(Status::SUCCESS, 4));
    assert_eq!(rec.expect(1)[0].client_context, 1);
    f.finish();
}

#[test]
fn work_item_creation_failure_loses_nothing() {
    let device = ParkingDevice::new();
    let f = Fixture::new(
        SimConfig::default(),
        device.clone(),
        RequestTargetConfig::passive(),
    );
    let rec = Recorder::new();
    write(&f.module, &rec, 0).unwrap();
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    let live = f.sim.counters().live_requests;
    let items = f.sim.counters().live_work_items;
    f.sim
        .faults()
        .set(FaultPoint::WorkItemCreation, FaultPlan::Next(1));
    assert_eq!(
        write(&f.module, &rec, 1),
        Err(Status::INSUFFICIENT_RESOURCES)
    );
    let c = f.sim.counters();
    assert_eq!(
        (c.live_requests, c.live_work_items),
        (live, items),
        "the new request was deleted"
    );
    assert_eq!(f.module.context_count(), 1);
    // The next growth works and reuses the reserved slot index.
    write(&f.module, &rec, 2).unwrap();
    assert!(device.wait_for_pending(2, Duration::from_secs(5)));
    assert_eq!(device.complete_all(Status::SUCCESS), 2);
    let mut ctx: Vec<_> = rec.expect(2).iter().map(|r| r.client_context).collect();
    ctx.sort_unstable();
    assert_eq!(ctx, [0, 2]);
    f.finish();
}

#[test]
fn send_refusal_returns_the_context_r1() {
    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        let f = Fixture::new(SimConfig::default(), Arc::new(EchoDevice::new()), config);
        let rec = Recorder::new();
        let faults = f.sim.faults();
        for _ in 0..5 {
            faults.set(FaultPoint::SendRefusal, FaultPlan::Next(1));
            assert_eq!(
                write(&f.module, &rec, 0),
                Err(Status::INSUFFICIENT_RESOURCES)
            );
            faults.set(FaultPoint::SendRefusal, FaultPlan::Next(1));
            // SAFETY: INPUT is 'static.
            let ex = unsafe {
                f.module.send_ex_raw(
                    Some(RawBuffer::from_slice(&INPUT)),
                    None,
                    SendParams::write(),
                    Some(rec.callback()),
                    0,
                )
            };
            assert_eq!(ex, Err(Status::INSUFFICIENT_RESOURCES));
            faults.set(FaultPoint::SendRefusal, FaultPlan::Next(1));
            assert_eq!(
                f.module
                    .send_synchronously(&INPUT, &mut [], SendParams::write()),
                Err(Status::INSUFFICIENT_RESOURCES)
            );
        }
        // 15 refusals, and still a single context (DMF leaked one per refusal).
        assert_eq!(f.module.context_count(), 1);
        assert_eq!(f.module.references(), 0);
        write(&f.module, &rec, 9).unwrap();
        assert_eq!(rec.expect(1)[0].client_context, 9);
        assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
        assert_eq!(rec.count(), 1);
        f.finish();
    }
}

#[test]
fn failed_work_item_enqueue_defers_the_completion_r2() {
    let f = Fixture::new(
        SimConfig::default(),
        Arc::new(EchoDevice::new()),
        RequestTargetConfig::passive(),
    );
    let rec = Recorder::new();
    f.sim
        .faults()
        .set(FaultPoint::WorkItemEnqueue, FaultPlan::Always);
    write(&f.module, &rec, 1).unwrap();
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(rec.count(), 0, "not delivered yet");
    assert_eq!(
        f.module.references(),
        1,
        "the deferred completion keeps its reference"
    );
    // The next passive completion delivers the deferred one too.
    f.sim
        .faults()
        .set(FaultPoint::WorkItemEnqueue, FaultPlan::Never);
    write(&f.module, &rec, 2).unwrap();
    let r = rec.expect(2);
    let mut ctx: Vec<_> = r.iter().map(|r| r.client_context).collect();
    ctx.sort_unstable();
    assert_eq!(ctx, [1, 2]);
    assert!(r
        .iter()
        .all(|r| r.context == DeliveryContext::Passive && r.status == Status::SUCCESS));
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(f.module.references(), 0);
    f.finish();
}

#[test]
fn a_transiently_refused_work_item_enqueue_still_delivers_the_completion() {
    // The soak's enqueue faults left a completion waiting for an unrelated
    // later passive handler (or close): a refusal is retried at once.
    let f = Fixture::new(
        SimConfig::default(),
        Arc::new(EchoDevice::new()),
        RequestTargetConfig::passive(),
    );
    let rec = Recorder::new();
    f.sim
        .faults()
        .set(FaultPoint::WorkItemEnqueue, FaultPlan::Next(3));
    write(&f.module, &rec, 1).unwrap();
    let r = rec.expect(1);
    assert_eq!(
        (r[0].client_context, r[0].context),
        (1, DeliveryContext::Passive)
    );
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(f.module.references(), 0);
    f.finish();
}

#[test]
fn close_delivers_deferred_completions_instead_of_hanging_r2() {
    let f = Fixture::new(
        SimConfig::default(),
        Arc::new(EchoDevice::new()),
        RequestTargetConfig::passive(),
    );
    let rec = Recorder::new();
    f.sim
        .faults()
        .set(FaultPoint::WorkItemEnqueue, FaultPlan::Always);
    for i in 0..3 {
        write(&f.module, &rec, i).unwrap();
    }
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(rec.count(), 0);
    f.module.close();
    let r = rec.expect(3);
    let me = thread::current().name().unwrap().to_string();
    assert!(
        r.iter()
            .all(|r| r.context == DeliveryContext::Passive && r.thread == me),
        "{r:?}"
    );
    f.finish();
}

#[test]
fn allocation_failure_does_not_affect_sends() {
    // The layer hands no memory of its own to devices, so it never calls
    // Platform::allocate: an allocation fault changes nothing.
    let f = Fixture::ioctl_handler(RequestTargetConfig::default());
    f.sim
        .faults()
        .set(FaultPoint::Allocation, FaultPlan::Always);
    let rec = Recorder::new();
    let input = encode_sleep(1);
    f.module
        .send(
            Some(input.to_vec().into()),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(rec.owned_callback()),
            0,
        )
        .unwrap();
    assert_eq!(rec.expect(1)[0].status, Status::SUCCESS);
    assert_eq!(f.sim.faults().injected(FaultPoint::Allocation), 0);
    f.finish();
}

#[test]
fn creation_failures_leave_nothing_behind() {
    let sim = Sim::new(SimConfig::default());
    sim.faults()
        .set(FaultPoint::EventCreation, FaultPlan::Next(1));
    assert_eq!(
        RequestTarget::new(&sim, RequestTargetConfig::default()).err(),
        Some(Status::INSUFFICIENT_RESOURCES)
    );
    let config = RequestTargetConfig {
        contexts: SendContextConfig {
            preallocated_contexts: 4,
            ..SendContextConfig::default()
        },
        ..RequestTargetConfig::default()
    };
    sim.faults()
        .set(FaultPoint::RequestCreation, FaultPlan::EveryNth(3));
    assert_eq!(
        RequestTarget::new(&sim, config).err(),
        Some(Status::INSUFFICIENT_RESOURCES)
    );
    sim.faults()
        .set(FaultPoint::RequestCreation, FaultPlan::Never);
    sim.faults()
        .set(FaultPoint::WorkItemCreation, FaultPlan::Next(1));
    assert_eq!(
        RequestTarget::new(&sim, config).err(),
        Some(Status::INSUFFICIENT_RESOURCES)
    );
    let ok = RequestTarget::new(&sim, config).unwrap();
    assert_eq!(ok.context_count(), 4);
    assert_eq!(sim.counters().live_requests, 4);
    drop(ok);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn max_contexts_bounds_concurrent_sends() {
    let device = ParkingDevice::new();
    let config = RequestTargetConfig {
        contexts: SendContextConfig {
            max_contexts: 2,
            ..SendContextConfig::default()
        },
        ..RequestTargetConfig::default()
    };
    let f = Fixture::new(SimConfig::default(), device.clone(), config);
    let rec = Recorder::new();
    write(&f.module, &rec, 0).unwrap();
    write(&f.module, &rec, 1).unwrap();
    assert_eq!(
        write(&f.module, &rec, 2),
        Err(Status::INSUFFICIENT_RESOURCES)
    );
    assert_eq!(
        f.module
            .send_synchronously(&INPUT, &mut [], SendParams::write()),
        Err(Status::INSUFFICIENT_RESOURCES)
    );
    assert!(device.wait_for_pending(2, Duration::from_secs(5)));
    assert!(device.complete_next(Status::SUCCESS, 0));
    rec.expect(1);
    // The context returns to the pool once the callback has returned.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while f.module.references() > 1 {
        assert!(std::time::Instant::now() < deadline);
        thread::yield_now();
    }
    write(&f.module, &rec, 3).unwrap();
    assert!(device.wait_for_pending(2, Duration::from_secs(5)));
    assert_eq!(device.complete_all(Status::SUCCESS), 2);
    rec.expect(3);
    f.finish();
}

#[test]
fn random_fault_soak_leaks_nothing() {
    for (seed, config) in [
        (11u64, RequestTargetConfig::default()),
        (12, RequestTargetConfig::passive()),
    ] {
        let sim_config = SimConfig::default()
            .with_seed(seed)
            .with_latency(Latency::new(0, 300))
            .with_fault(FaultPoint::RequestCreation, FaultPlan::Probability(20_000))
            .with_fault(FaultPoint::WorkItemCreation, FaultPlan::Probability(20_000))
            .with_fault(FaultPoint::SendRefusal, FaultPlan::Probability(50_000))
            .with_fault(FaultPoint::WorkItemEnqueue, FaultPlan::Probability(50_000))
            .with_fault(FaultPoint::RequestFailure, FaultPlan::Probability(50_000))
            .with_fault(FaultPoint::LatencySpike, FaultPlan::Probability(10_000));
        let config = RequestTargetConfig {
            contexts: SendContextConfig {
                max_contexts: 6,
                ..config.contexts
            },
            ..config
        };
        let f = Arc::new(Fixture::new(
            sim_config,
            Arc::new(dmf_sim::TestsIoctlHandler::default()),
            config,
        ));
        f.sim
            .faults()
            .set_latency_spike(FaultPlan::Probability(10_000), 20);
        let completions = Arc::new(AtomicUsize::new(0));
        let callback: Completion = {
            let completions = Arc::clone(&completions);
            Arc::new(move |c: &SendCompleted<'_>| {
                // A 3 ms timeout on a 2 ms request may expire first:
                // `STATUS_IO_TIMEOUT` (rare).
                assert!(
                    matches!(
                        c.status,
                        Status::SUCCESS
                            | Status::CANCELLED
                            | Status::UNSUCCESSFUL
                            | Status::IO_TIMEOUT
                    ),
                    "{:?}",
                    c.status
                );
                completions.fetch_add(1, Ordering::SeqCst);
            })
        };
        let accepted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let (f, callback, accepted) =
                    (Arc::clone(&f), Arc::clone(&callback), Arc::clone(&accepted));
                thread::spawn(move || {
                    static SLEEP: [u8; 12] = [2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // 2 ms
                    let mut rng = Rng::new(seed * 100 + i);
                    let reuse = f.module.reuse_create().ok();
                    for _ in 0..150 {
                        let b = Some(RawBuffer::from_slice(&SLEEP));
                        let p = SendParams::ioctl(IOCTL_SLEEP).with_timeout(rng.range(0, 1) * 3);
                        let cb = Some(Arc::clone(&callback));
                        // SAFETY: SLEEP is 'static and never written.
                        let r = unsafe {
                            match rng.range(0, 3) {
                                0 => f.module.send_raw(b, None, p, cb, 0).map(|()| true),
                                1 => f.module.send_ex_raw(b, None, p, cb, 0).map(|id| {
                                    if rng.range(0, 1) == 0 {
                                        f.module.cancel(id);
                                    }
                                    true
                                }),
                                2 => match reuse {
                                    Some(r) => {
                                        f.module.reuse_send_raw(r, b, None, p, cb, 0).map(|_| true)
                                    }
                                    None => Ok(false),
                                },
                                _ => f
                                    .module
                                    .send_synchronously(&SLEEP, &mut [], p)
                                    .map(|_| false),
                            }
                        };
                        match r {
                            Ok(true) => {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(false) => {}
                            Err(s) => assert!(
                                matches!(
                                    s,
                                    Status::INSUFFICIENT_RESOURCES
                                        | Status::OBJECTID_NOT_FOUND
                                        | Status::UNSUCCESSFUL
                                        | Status::IO_TIMEOUT
                                        | Status::CANCELLED
                                ),
                                "{s:?}"
                            ),
                        }
                        if rng.range(0, 9) == 0 {
                            sleep_ms(1);
                        }
                    }
                    if let Some(r) = reuse {
                        // Deleted now or after its send; or left for close.
                        if rng.range(0, 1) == 0 {
                            f.module.reuse_delete(r).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        f.module.close();
        assert_eq!(
            completions.load(Ordering::SeqCst),
            accepted.load(Ordering::SeqCst)
        );
        assert!(f.sim.faults().total_injected() > 0);
        drop(callback);
        Arc::into_inner(f).unwrap().finish();
    }
}
