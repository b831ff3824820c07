//! Unit tests of the Tests_IoctlHandler device (manual clock: exact timing).

mod common;

use std::sync::Arc;

use common::*;
use dmf_sim::ioctl_handler::{
    encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER, IOCTL_ZEROSIZE, SLEEP_INPUT_SIZE,
};
use dmf_sim::{
    IoctlHandlerConfig, Sim, SimConfig, SimIoTarget, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::{IoTarget, Platform, RawBuffer, Request, RequestType, SendOptions, Status};

fn setup(config: IoctlHandlerConfig) -> (Sim, Arc<SimIoTarget>, Arc<Events>) {
    let sim = Sim::new(SimConfig::manual().with_seed(11));
    let (_, link) = add_device(
        &sim,
        "tests",
        GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
        Arc::new(TestsIoctlHandler::new(config)),
    );
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
    (sim, target, events)
}

#[test]
fn sleep_completes_after_its_time_on_the_sim_clock() {
    let (sim, target, _e) = setup(IoctlHandlerConfig::default());
    let request = sim.create_request(Some(&target)).unwrap();
    let input = encode_sleep(100);
    let rec = Recorder::new();
    // SAFETY: `input` outlives the request's completion (checked below).
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Ioctl,
                IOCTL_SLEEP,
                Some(RawBuffer::from_slice(&input)),
                None,
            )
            .unwrap();
    }
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(99);
    assert_eq!(rec.count(), 0, "completed too early");
    sim.advance(1);
    assert_eq!(rec.count(), 1);
    assert_eq!(rec.last().unwrap().status, Status::SUCCESS);
    assert_eq!(rec.last().unwrap().information, 0);
    assert_eq!(sim.now_ms(), 100);
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn sleep_is_cancelable_while_parked() {
    let (sim, target, _e) = setup(IoctlHandlerConfig::default());
    let request = sim.create_request(Some(&target)).unwrap();
    let input = encode_sleep(10_000);
    let rec = Recorder::new();
    // SAFETY: `input` outlives the completion.
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Ioctl,
                IOCTL_SLEEP,
                Some(RawBuffer::from_slice(&input)),
                None,
            )
            .unwrap();
    }
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(5);
    assert!(request.cancel_sent(), "in flight: cancellation initiated");
    assert!(!request.cancel_sent(), "second cancel initiates nothing");
    sim.advance(0);
    assert_eq!(rec.statuses(), vec![Status::CANCELLED]);
    assert!(!request.cancel_sent(), "completed: not in flight");
    // The stale 10 s completion does nothing and does not move the clock.
    assert!(sim.run_until_idle());
    assert_eq!(sim.now_ms(), 5);
    assert_eq!(rec.count(), 1);
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn sleep_rejects_short_input_and_negative_time_is_zero() {
    let (sim, target, _e) = setup(IoctlHandlerConfig::default());
    let request = sim.create_request(Some(&target)).unwrap();
    let short = [0u8; SLEEP_INPUT_SIZE - 1];
    // SAFETY: synchronous send; buffers outlive it.
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Ioctl,
                IOCTL_SLEEP,
                Some(RawBuffer::from_slice(&short)),
                None,
            )
            .unwrap();
    }
    let rec = Recorder::new();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(0);
    assert_eq!(rec.statuses(), vec![Status::BUFFER_TOO_SMALL]);

    request.reuse().unwrap();
    let negative = encode_sleep(-5);
    // SAFETY: as above.
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Ioctl,
                IOCTL_SLEEP,
                Some(RawBuffer::from_slice(&negative)),
                None,
            )
            .unwrap();
    }
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(0);
    assert_eq!(
        rec.statuses(),
        vec![Status::BUFFER_TOO_SMALL, Status::SUCCESS]
    );
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn zerobuffer_zeroes_output_and_reports_its_length_within_the_random_delay() {
    let max = 300;
    let (sim, target, _e) = setup(IoctlHandlerConfig {
        max_random_delay_ms: max,
        handle_internal_ioctls: false,
    });
    let request = sim.create_request(Some(&target)).unwrap();
    let mut delays = Vec::new();
    for _ in 0..20 {
        let mut out = [0xAAu8; 4];
        let rec = Recorder::new();
        request.reuse().unwrap();
        // SAFETY: `out` outlives the completion awaited below.
        unsafe {
            target
                .format_request(
                    &request,
                    RequestType::Ioctl,
                    IOCTL_ZEROBUFFER,
                    None,
                    Some(RawBuffer::from_mut_slice(&mut out)),
                )
                .unwrap();
        }
        let start = sim.now_ms();
        target
            .send(&request, SendOptions::default(), rec.clone())
            .unwrap();
        let mut waited = 0;
        while rec.count() == 0 {
            sim.advance(1);
            waited += 1;
            assert!(
                waited <= u64::from(max) + 1,
                "ZEROBUFFER took longer than max"
            );
        }
        let c = rec.last().unwrap();
        assert_eq!(c.status, Status::SUCCESS);
        assert_eq!(c.information, 4);
        assert_eq!(out, [0; 4]);
        delays.push(sim.now_ms() - start);
    }
    delays.sort_unstable();
    delays.dedup();
    assert!(delays.len() > 5, "delays should be random: {delays:?}");
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn zerosize_reports_output_length_and_is_cancelable() {
    let (sim, target, _e) = setup(IoctlHandlerConfig::default());
    let request = sim.create_request(Some(&target)).unwrap();
    let rec = Recorder::new();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Ioctl, IOCTL_ZEROSIZE, None, None)
            .unwrap();
    }
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    assert!(sim.run_until_idle());
    assert!(sim.now_ms() <= 5000);
    assert_eq!(
        rec.last().unwrap(),
        dmf_wdf::Completed {
            status: Status::SUCCESS,
            information: 0
        }
    );

    // With an output buffer, cancelled while waiting: CANCELLED, information kept.
    let mut out = [1u8; 8];
    request.reuse().unwrap();
    // SAFETY: `out` outlives the completion.
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Ioctl,
                IOCTL_ZEROSIZE,
                None,
                Some(RawBuffer::from_mut_slice(&mut out)),
            )
            .unwrap();
    }
    let rec2 = Recorder::new();
    target
        .send(&request, SendOptions::default(), rec2.clone())
        .unwrap();
    let cancelled = request.cancel_sent();
    sim.advance(0);
    let c = rec2.last().unwrap();
    if cancelled {
        assert_eq!(c.status, Status::CANCELLED);
    } else {
        assert_eq!(
            c.status,
            Status::SUCCESS,
            "random delay 0: completed before the cancel"
        );
    }
    assert_eq!(c.information, 8);
    assert_eq!(out, [1u8; 8], "ZEROSIZE does not touch the buffer");
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn other_requests_are_refused_by_the_handler() {
    let (sim, target, _e) = setup(IoctlHandlerConfig::default());
    let request = sim.create_request(Some(&target)).unwrap();
    let mut buf = [0u8; 4];
    // SAFETY: synchronous sends; `buf` outlives them.
    unsafe {
        target
            .format_request(&request, RequestType::Ioctl, 0x0022_0000, None, None)
            .unwrap();
    }
    let rec = Recorder::new();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    for (ty, ioctl) in [
        (RequestType::Read, 0),
        (RequestType::InternalIoctl, IOCTL_ZEROSIZE),
    ] {
        sim.advance(0);
        request.reuse().unwrap();
        // SAFETY: as above.
        unsafe {
            target
                .format_request(
                    &request,
                    ty,
                    ioctl,
                    None,
                    Some(RawBuffer::from_mut_slice(&mut buf)),
                )
                .unwrap();
        }
        target
            .send(&request, SendOptions::default(), rec.clone())
            .unwrap();
    }
    sim.advance(0);
    assert_eq!(
        rec.statuses(),
        vec![
            Status::NOT_SUPPORTED,
            Status::INVALID_DEVICE_REQUEST,
            Status::INVALID_DEVICE_REQUEST
        ]
    );
    drop(request);
    drop(target);
    assert_clean(&sim);
}
