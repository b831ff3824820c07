//! I/O target and request state machines, open access and share checks.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_sim::{
    AllowedAccess, DeviceSpec, EchoDevice, FaultPlan, FaultPoint, FixedResponseDevice,
    ParkingDevice, Sim, SimConfig,
};
use dmf_wdf::{
    Guid, IoTarget, OpenMode, Platform, RawBuffer, Request, RequestType, SendOptions, SentIoAction,
    ShareAccess, Status, TargetState,
};

const GUID: Guid = Guid::from_u128(0xDDDD_0000_0000_0000_0000_0000_0000_0001);

fn events() -> Arc<Events> {
    Events::new("e", &Log::default(), OnQuery::AcceptAndClose)
}

#[test]
fn share_access_follows_windows_rules() {
    let sim = Sim::new(SimConfig::default());
    let (_, link) = add_device(&sim, "d", GUID, Arc::new(EchoDevice::new()));
    let e = events();
    use OpenMode as M;
    use ShareAccess as S;
    // Exclusive reader: nobody else may read or write.
    let a = open_with(&sim, &link, M::READ, S::NONE, &e).unwrap();
    assert_eq!(
        open_with(&sim, &link, M::READ, S::READ_WRITE, &e).err(),
        Some(Status::SHARING_VIOLATION)
    );
    assert_eq!(
        open_with(&sim, &link, M::WRITE, S::READ_WRITE, &e).err(),
        Some(Status::SHARING_VIOLATION)
    );
    // An open with no read/write/delete access does not take part.
    let attrs_only = open_with(&sim, &link, OpenMode(0x0080), S::NONE, &e).unwrap();
    drop((a, attrs_only));
    // Reader sharing read: another reader sharing read is fine, a writer is not,
    // and a reader that refuses to share read with the first is not either.
    let r1 = open_with(&sim, &link, M::READ, S::READ, &e).unwrap();
    let r2 = open_with(&sim, &link, M::READ, S::READ, &e).unwrap();
    assert_eq!(
        open_with(&sim, &link, M::WRITE, S::READ_WRITE, &e).err(),
        Some(Status::SHARING_VIOLATION)
    );
    assert_eq!(
        open_with(&sim, &link, M::READ, S::WRITE, &e).err(),
        Some(Status::SHARING_VIOLATION)
    );
    drop((r1, r2));
    // Read-write sharing read-write: everyone who shares read-write gets in.
    let rw: Vec<_> = (0..3)
        .map(|_| open_with(&sim, &link, M::READ_WRITE, S::READ_WRITE, &e).unwrap())
        .collect();
    assert_eq!(sim.counters().open_targets, 3);
    assert_eq!(sim.bus().devices()[0].open_handles, 3);
    drop(rw);
    assert_clean(&sim);
}

#[test]
fn access_mode_and_names_are_enforced() {
    let sim = Sim::new(SimConfig::default());
    let id = sim
        .bus()
        .add_device(
            DeviceSpec::new("ro", Arc::new(EchoDevice::new()))
                .with_interface(GUID)
                .with_access(AllowedAccess::ReadOnly),
        )
        .unwrap();
    let link = sim.bus().symbolic_link(id, &GUID).unwrap();
    let e = events();
    assert_eq!(
        open_with(
            &sim,
            &link,
            OpenMode::READ_WRITE,
            ShareAccess::READ_WRITE,
            &e
        )
        .err(),
        Some(Status::ACCESS_DENIED)
    );
    assert_eq!(
        open_with(
            &sim,
            &link,
            OpenMode(0x1000_0000),
            ShareAccess::READ_WRITE,
            &e
        )
        .err(),
        Some(Status::ACCESS_DENIED),
        "GENERIC_ALL includes write"
    );
    let reader = open_with(&sim, &link, OpenMode::READ, ShareAccess::READ_WRITE, &e).unwrap();
    // Links are case-insensitive; the device link opens too.
    let upper = link.to_uppercase();
    let again = open_with(&sim, &upper, OpenMode::READ, ShareAccess::READ_WRITE, &e).unwrap();
    let dev_link = sim.bus().device_link(id).unwrap();
    let by_device =
        open_with(&sim, &dev_link, OpenMode::READ, ShareAccess::READ_WRITE, &e).unwrap();
    assert_eq!(
        open_with(
            &sim,
            "\\??\\SIM#nope#9999",
            OpenMode::READ,
            ShareAccess::READ_WRITE,
            &e
        )
        .err(),
        Some(Status::OBJECT_NAME_NOT_FOUND)
    );
    // A disabled interface link no longer opens; open targets are unaffected.
    sim.bus().disable_interface(id, &GUID).unwrap();
    assert_eq!(
        open_with(&sim, &link, OpenMode::READ, ShareAccess::READ_WRITE, &e).err(),
        Some(Status::OBJECT_NAME_NOT_FOUND)
    );
    assert_eq!(reader.state(), TargetState::Started);
    let by_device2 =
        open_with(&sim, &dev_link, OpenMode::READ, ShareAccess::READ_WRITE, &e).unwrap();
    // An open target cannot be opened again.
    assert_eq!(
        reader.open(
            &dmf_wdf::OpenParams {
                symbolic_link: &dev_link,
                open_mode: OpenMode::READ,
                share_access: ShareAccess::READ
            },
            events()
        ),
        Err(Status::INVALID_DEVICE_STATE)
    );
    drop((reader, again, by_device, by_device2));
    assert_clean(&sim);
}

#[test]
fn open_faults_global_and_per_link() {
    let sim = Sim::new(SimConfig::default());
    let (_, l1) = add_device(&sim, "a", GUID, Arc::new(EchoDevice::new()));
    let (_, l2) = add_device(&sim, "b", GUID, Arc::new(EchoDevice::new()));
    let e = events();
    sim.faults()
        .set_open_failure_for_link(&l1, FaultPlan::Always, Some(Status::DEVICE_NOT_READY));
    assert_eq!(
        open_with(&sim, &l1, OpenMode::READ, ShareAccess::READ_WRITE, &e).err(),
        Some(Status::DEVICE_NOT_READY)
    );
    let ok = open_with(&sim, &l2, OpenMode::READ, ShareAccess::READ_WRITE, &e).unwrap();
    sim.faults().clear_open_failure_for_link(&l1);
    sim.faults().set_with_status(
        FaultPoint::TargetOpen,
        FaultPlan::Next(1),
        Status::NO_SUCH_DEVICE,
    );
    assert_eq!(
        open_with(&sim, &l1, OpenMode::READ, ShareAccess::READ_WRITE, &e).err(),
        Some(Status::NO_SUCH_DEVICE)
    );
    let ok2 = open_with(&sim, &l1, OpenMode::READ, ShareAccess::READ_WRITE, &e).unwrap();
    assert_eq!(sim.faults().total_injected(), 2);
    drop((ok, ok2));
    assert_clean(&sim);
}

/// KMDF constructs every target `WdfIoTargetStarted` (`FxIoTarget::Construct`)
/// and a target never opened still reports it; whether a target is open is
/// apart from its state.
#[test]
fn a_new_target_reports_started_like_kmdf_and_opens() {
    let sim = Sim::new(SimConfig::default());
    let (_, link) = add_device(&sim, "d", GUID, Arc::new(EchoDevice::new()));
    let target = sim.create_io_target().unwrap();
    assert_eq!(target.state(), TargetState::Started);
    // Stop and start move a never-opened target like any other.
    target.stop(SentIoAction::LeavePending);
    assert_eq!(target.state(), TargetState::Stopped);
    target.start().unwrap();
    assert_eq!(target.state(), TargetState::Started);
    // A failed first open leaves it Started and openable.
    let params = |l: &'static str| dmf_wdf::OpenParams {
        symbolic_link: l,
        open_mode: OpenMode::READ,
        share_access: ShareAccess::READ_WRITE,
    };
    assert_eq!(
        target.open(&params("\\??\\nothing"), events()),
        Err(Status::OBJECT_NAME_NOT_FOUND)
    );
    assert_eq!(target.state(), TargetState::Started);
    let link: &'static str = Box::leak(link.into_boxed_str());
    target.open(&params(link), events()).unwrap();
    assert_eq!(target.state(), TargetState::Started);
    // Open twice: refused, the state says nothing about it.
    assert_eq!(
        target.open(&params(link), events()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    target.close();
    assert_eq!(target.state(), TargetState::Closed);
    target.open(&params(link), events()).unwrap();
    drop(target);
    // Closing a target that was never opened leaves it Closed (KMDF:
    // FxIoTargetRemote::Close, "not opened, treat this as a cleanup").
    let fresh = sim.create_io_target().unwrap();
    fresh.close();
    assert_eq!(fresh.state(), TargetState::Closed);
    drop(fresh);
    assert_clean(&sim);
}

#[test]
fn sends_are_queued_when_stopped_and_refused_when_purged_or_closed() {
    let sim = Sim::new(SimConfig::manual());
    let (_, link) = add_device(
        &sim,
        "d",
        GUID,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(1))),
    );
    let target = sim.create_io_target().unwrap();
    let request = sim.create_request(Some(&target)).unwrap();
    let rec = Recorder::new();
    // A target that is not open refuses formatting (KMDF: ValidateTarget).
    // SAFETY: no buffers.
    unsafe {
        assert_eq!(
            target.format_request(&request, RequestType::Read, 0, None, None),
            Err(Status::INVALID_DEVICE_STATE)
        );
    }
    assert_eq!(
        target.send(&request, SendOptions::default(), rec.clone()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    target
        .open(
            &dmf_wdf::OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ,
                share_access: ShareAccess::READ,
            },
            events(),
        )
        .unwrap();
    // SAFETY: no buffers.
    unsafe {
        assert_eq!(
            target.format_request(&request, RequestType::Invalid, 0, None, None),
            Err(Status::INVALID_PARAMETER)
        );
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap();
    }
    // A stopped target queues the send until it is started (KMDF).
    target.stop(SentIoAction::LeavePending);
    assert_eq!(target.state(), TargetState::Stopped);
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(0);
    assert_eq!(rec.count(), 0, "queued");
    target.start().unwrap();
    sim.advance(0);
    assert_eq!(rec.statuses(), vec![Status::SUCCESS]);
    request.reuse().unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    // A purged target refuses sends until it is started.
    target.purge(true);
    assert_eq!(target.state(), TargetState::Stopped);
    assert_eq!(
        target.send(&request, SendOptions::default(), rec.clone()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    target.start().unwrap();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(0);
    assert_eq!(rec.count(), 2);
    request.reuse().unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    target.close();
    assert_eq!(target.state(), TargetState::Closed);
    assert_eq!(target.start(), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(
        target.send(&request, SendOptions::default(), rec.clone()),
        Err(Status::INVALID_DEVICE_STATE)
    );
    // A request formatted for another target is refused.
    let other = sim.create_io_target().unwrap();
    assert_eq!(
        other.send(&request, SendOptions::default(), rec.clone()),
        Err(Status::INVALID_DEVICE_REQUEST)
    );
    drop((request, target, other));
    assert_clean(&sim);
}

#[test]
fn stop_actions_and_purge() {
    let sim = Sim::new(SimConfig::default());
    let device = ParkingDevice::new();
    let (_, link) = add_device(&sim, "p", GUID, device.clone());
    let target = open(&sim, &link, &events());
    let rec = Recorder::new();
    let requests: Vec<_> = (0..3)
        .map(|_| sim.create_request(Some(&*target)).unwrap())
        .collect();
    let send_all = || {
        for r in &requests {
            r.reuse().unwrap();
            // SAFETY: no buffers.
            unsafe {
                target
                    .format_request(r, RequestType::Read, 0, None, None)
                    .unwrap()
            };
            target.send(r, SendOptions::default(), rec.clone()).unwrap();
        }
    };
    // LeavePending: nothing happens to what was sent.
    send_all();
    target.stop(SentIoAction::LeavePending);
    assert_eq!(device.pending(), 3);
    // WaitForCompletion: waits until the device completes them.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            device.complete_all(Status::SUCCESS);
        });
        target.stop(SentIoAction::WaitForCompletion);
        assert_eq!(
            rec.count(),
            3,
            "stop(WaitForCompletion) returned after every routine"
        );
    });
    // Cancel: cancels and waits.
    target.start().unwrap();
    send_all();
    target.stop(SentIoAction::Cancel);
    assert_eq!(rec.count(), 6);
    assert!(rec.statuses()[3..].iter().all(|s| *s == Status::CANCELLED));
    // Purge without waiting, then wait for quiescence.
    target.start().unwrap();
    send_all();
    target.purge(false);
    assert!(rec.wait_for(9, Duration::from_secs(5)));
    assert!(rec.statuses()[6..].iter().all(|s| *s == Status::CANCELLED));
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    drop(requests);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn reuse_format_send_or_drop_in_flight_panic() {
    let sim = Sim::new(SimConfig::manual());
    let device = ParkingDevice::new();
    let (_, link) = add_device(&sim, "p", GUID, device.clone());
    let target = open(&sim, &link, &events());
    let request = sim.create_request(Some(&*target)).unwrap();
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    let rec = Recorder::new();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    assert!(request.is_in_flight());
    // Reuse and re-format of a request in flight are verifier breaks in KMDF
    // (FxRequest::Reuse, FxIoTarget::VerifySubmitLocked): they panic.
    let reuse = catch_unwind(AssertUnwindSafe(|| request.reuse()));
    let message = reuse.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("reused while a send"), "{message}");
    let reformat = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: no buffers.
        unsafe { target.format_request(&request, RequestType::Read, 0, None, None) }
    }));
    let message = reformat.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("formatted while a send"), "{message}");
    assert!(request.is_in_flight(), "the panics changed nothing");
    let second_send = catch_unwind(AssertUnwindSafe(|| {
        target.send(&request, SendOptions::default(), rec.clone())
    }));
    assert!(second_send.is_err(), "sending a request in flight panics");
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(request)));
    let message = dropped.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(message.contains("in flight"), "{message}");
    // The IRP still completes exactly once.
    device.complete_all(Status::SUCCESS);
    sim.advance(0);
    assert_eq!(rec.count(), 1);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn echo_device_round_trip_and_buffers() {
    let sim = Sim::new(SimConfig::default());
    let (_, link) = add_device(&sim, "echo", GUID, Arc::new(EchoDevice::new()));
    let target = open(&sim, &link, &events());
    let request = sim.create_request(Some(&*target)).unwrap();
    let data = *b"hello, device";
    let mut back = [0u8; 32];
    // SAFETY: synchronous sends; buffers outlive them.
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Write,
                0,
                Some(RawBuffer::from_slice(&data)),
                None,
            )
            .unwrap();
        assert_eq!(target.send_synchronously(&request, 0), Ok(data.len()));
        request.reuse().unwrap();
        target
            .format_request(
                &request,
                RequestType::Read,
                0,
                None,
                Some(RawBuffer::from_mut_slice(&mut back)),
            )
            .unwrap();
        assert_eq!(target.send_synchronously(&request, 0), Ok(data.len()));
    }
    assert_eq!(&back[..data.len()], &data);
    let mut out = [0u8; 5];
    request.reuse().unwrap();
    // SAFETY: as above.
    unsafe {
        target
            .format_request(
                &request,
                RequestType::Ioctl,
                7,
                Some(RawBuffer::from_slice(&data)),
                Some(RawBuffer::from_mut_slice(&mut out)),
            )
            .unwrap();
        assert_eq!(target.send_synchronously(&request, 0), Ok(5));
    }
    assert_eq!(&out, b"hello");
    drop(request);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn memory_is_counted_and_allocation_failure_is_injectable() {
    let sim = Sim::new(SimConfig::default());
    let layout = std::alloc::Layout::from_size_align(100, 16).unwrap();
    let p = sim.allocate(layout).unwrap();
    assert_eq!(p.as_ptr() as usize % 16, 0);
    let z = sim
        .allocate(std::alloc::Layout::from_size_align(0, 8).unwrap())
        .unwrap();
    assert_eq!(
        (sim.counters().allocations, sim.counters().allocated_bytes),
        (2, 100)
    );
    sim.faults().set(FaultPoint::Allocation, FaultPlan::Next(1));
    assert!(sim.allocate(layout).is_none());
    // SAFETY: from `allocate` with these layouts, freed once.
    unsafe {
        sim.deallocate(p, layout);
        sim.deallocate(z, std::alloc::Layout::from_size_align(0, 8).unwrap());
    }
    assert_clean(&sim);
}

/// KMDF (`FxIoTarget::SubmitLocked`, `PendRequestLocked`): a send to a stopped
/// target waits in the target's queue. `stop` leaves it there, `start` sends
/// the queue in order, purge and close complete it with
/// STATUS_WDF_DEVICE_REMOVED_NOT_SENT (`CompletePendedRequestList`), a cancel
/// completes it with STATUS_CANCELLED (`_RequestCancelled`) and its timeout
/// runs while it waits (STATUS_IO_TIMEOUT).
#[test]
fn sends_to_a_stopped_target_wait_in_its_queue() {
    let sim = Sim::new(SimConfig::manual());
    let device = ParkingDevice::new();
    let (_, link) = add_device(&sim, "p", GUID, device.clone());
    let target = open(&sim, &link, &events());
    let requests: Vec<_> = (0..4)
        .map(|_| sim.create_request(Some(&*target)).unwrap())
        .collect();
    let recs: Vec<_> = (0..4).map(|_| Recorder::new()).collect();
    let send = |i: usize, timeout_ms: u32| {
        let r: &dmf_sim::SimRequest = &requests[i];
        if r.send_count() > 0 {
            r.reuse().unwrap();
        }
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(r, RequestType::Ioctl, i as u32, None, None)
                .unwrap()
        };
        target
            .send(r, SendOptions { timeout_ms }, recs[i].clone())
            .unwrap();
    };
    target.stop(SentIoAction::Cancel);
    for i in 0..3 {
        send(i, 0);
    }
    send(3, 10);
    sim.advance(0);
    assert_eq!(device.pending(), 0, "nothing reaches the device");
    assert!(requests.iter().all(|r| r.is_in_flight()));
    // Stopping again (even cancelling sent I/O) leaves the queue alone.
    target.stop(SentIoAction::Cancel);
    // A cancel of a queued request: its cancel routine is the target's.
    assert!(requests[1].cancel_sent());
    sim.advance(0);
    assert_eq!(recs[1].statuses(), vec![Status::CANCELLED]);
    // The timeout of a queued request runs.
    sim.advance(10);
    assert_eq!(recs[3].statuses(), vec![Status::IO_TIMEOUT]);
    // Start sends the rest, in order.
    target.start().unwrap();
    assert_eq!(device.pending(), 2);
    let first = device.take().unwrap();
    assert_eq!(first.ioctl(), 0);
    first.complete(Status::SUCCESS, 0);
    assert!(device.complete_next(Status::SUCCESS, 0));
    sim.advance(0);
    assert_eq!(recs[0].statuses(), vec![Status::SUCCESS]);
    assert_eq!(recs[2].statuses(), vec![Status::SUCCESS]);
    // Purge completes what is queued, unsent.
    target.stop(SentIoAction::LeavePending);
    send(0, 0);
    target.purge(false);
    sim.advance(0);
    assert_eq!(
        recs[0].statuses(),
        vec![Status::SUCCESS, Status::WDF_DEVICE_REMOVED_NOT_SENT]
    );
    drop(requests);
    drop(target);
    assert_clean(&sim);
}

/// Close completes the queue too (KMDF `GotoRemoveState`), and a stop that
/// waits for sent I/O does not wait for queued requests.
#[test]
fn close_completes_the_queue_of_a_stopped_target_unsent() {
    let sim = Sim::new(SimConfig::default());
    let device = ParkingDevice::new();
    let (_, link) = add_device(&sim, "p", GUID, device.clone());
    let target = open(&sim, &link, &events());
    let request = sim.create_request(Some(&*target)).unwrap();
    let rec = Recorder::new();
    target.stop(SentIoAction::WaitForCompletion);
    // SAFETY: no buffers.
    unsafe {
        target
            .format_request(&request, RequestType::Read, 0, None, None)
            .unwrap()
    };
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    assert_eq!(target.outstanding(), 1);
    target.stop(SentIoAction::WaitForCompletion);
    target.close();
    assert_eq!(rec.statuses(), vec![Status::WDF_DEVICE_REMOVED_NOT_SENT]);
    assert_eq!(device.pending(), 0);
    drop((request, target));
    assert_clean(&sim);
}
