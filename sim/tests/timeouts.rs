//! Request timeouts: the framework cancels the request, and a request that
//! comes back `STATUS_CANCELLED` after its timeout completes with
//! `STATUS_IO_TIMEOUT`, asynchronous or synchronous (KMDF converts on every
//! path: `FxIoTarget::RequestCompletionRoutine`, `TimerCallback`,
//! `CompleteCanceledRequest`, `SubmitSync`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
use dmf_sim::{FixedResponseDevice, Latency, ParkingDevice, Sim, SimConfig, TestsIoctlHandler};
use dmf_wdf::{Guid, IoTarget, Platform, RawBuffer, Request, RequestType, SendOptions, Status};

const GUID: Guid = Guid::from_u128(0xCCCC_0000_0000_0000_0000_0000_0000_0001);

#[test]
fn async_timeout_completes_with_io_timeout_in_manual_time() {
    let sim = Sim::new(SimConfig::manual());
    let (_, link) = add_device(&sim, "t", GUID, Arc::new(TestsIoctlHandler::default()));
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    let input = encode_sleep(1000);
    // SAFETY: `input` outlives the completion (awaited below).
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
    let rec = Recorder::new();
    target
        .send(&request, SendOptions { timeout_ms: 50 }, rec.clone())
        .unwrap();
    sim.advance(49);
    assert_eq!(rec.count(), 0);
    sim.advance(1);
    assert_eq!(rec.statuses(), vec![Status::IO_TIMEOUT]);

    // A timeout longer than the device's time does nothing.
    request.reuse().unwrap();
    // SAFETY: as above.
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
        .send(&request, SendOptions { timeout_ms: 2000 }, rec.clone())
        .unwrap();
    assert!(sim.run_until_idle());
    assert_eq!(rec.statuses(), vec![Status::IO_TIMEOUT, Status::SUCCESS]);
    assert_eq!(
        sim.now_ms(),
        1050,
        "the stale timeout did not move the clock"
    );
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn async_timeout_fires_in_real_time_and_calls_the_device_cancel_routine() {
    let sim = Sim::new(SimConfig::default().with_latency(Latency::new(0, 100)));
    let device = ParkingDevice::new();
    let (_, link) = add_device(&sim, "p", GUID, device.clone());
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    let rec = Recorder::new();
    let start = Instant::now();
    target
        .send(&request, SendOptions { timeout_ms: 20 }, rec.clone())
        .unwrap();
    assert!(rec.wait_for(1, Duration::from_secs(5)));
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert_eq!(rec.statuses(), vec![Status::IO_TIMEOUT]);
    assert_eq!(device.pending(), 0, "the cancel routine took it out");
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn sync_timeout_returns_io_timeout() {
    let sim = Sim::new(SimConfig::default());
    let (_, link) = add_device(&sim, "t", GUID, Arc::new(TestsIoctlHandler::default()));
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    let input = encode_sleep(10_000);
    // SAFETY: synchronous sends; `input` outlives them.
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
    let start = Instant::now();
    assert_eq!(
        target.send_synchronously(&request, 30),
        Err(Status::IO_TIMEOUT)
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        request.last_completion().unwrap().status,
        Status::IO_TIMEOUT
    );

    // Without a timeout (or a longer one) the device's answer comes back.
    request.reuse().unwrap();
    let short = encode_sleep(5);
    // SAFETY: as above.
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
    assert_eq!(target.send_synchronously(&request, 5_000), Ok(0));
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn sync_timeout_on_an_uncancelable_irp_waits_for_its_completion() {
    let sim = Sim::new(SimConfig::default());
    let device =
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(9)).with_delay_ms(60, false));
    let (_, link) = add_device(&sim, "slow", GUID, device);
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Ioctl, 1, None, None)
            .unwrap()
    };
    let start = Instant::now();
    // The timeout cancels, the device ignores it and completes normally later:
    // the send returns the device's result, after the device's delay.
    assert_eq!(target.send_synchronously(&request, 10), Ok(9));
    assert!(start.elapsed() >= Duration::from_millis(60));
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn sync_send_refused_or_failed_returns_the_status() {
    let sim = Sim::new(SimConfig::default());
    let (id, link) = add_device(
        &sim,
        "f",
        GUID,
        Arc::new(FixedResponseDevice::new(Status::DEVICE_BUSY, Some(0))),
    );
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let request = sim.create_request(Some(&*target)).unwrap();
    assert_eq!(
        target.send_synchronously(&request, 0),
        Err(Status::INVALID_DEVICE_STATE),
        "not formatted"
    );
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Write, 0, None, None)
            .unwrap()
    };
    assert_eq!(
        target.send_synchronously(&request, 0),
        Err(Status::DEVICE_BUSY)
    );
    assert_eq!(
        target.send_synchronously(&request, 0),
        Err(Status::INVALID_DEVICE_STATE),
        "not reused"
    );
    let _ = id;
    drop(request);
    drop(target);
    assert_clean(&sim);
}
