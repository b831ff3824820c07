//! PnP: orderly removal, veto, cancelled removal, surprise removal with I/O
//! in flight. Notifications come from the PnP thread.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
use dmf_sim::{ParkingDevice, RemovalOutcome, Sim, SimConfig, TestsIoctlHandler};
use dmf_wdf::{
    Guid, IoTarget, Platform, RawBuffer, Request, RequestType, SendOptions, Status, TargetState,
};

const GUID: Guid = Guid::from_u128(0xAAAA_0000_0000_0000_0000_0000_0000_0001);

fn sim() -> Sim {
    Sim::new(SimConfig::default().with_seed(5))
}

#[test]
fn orderly_removal_order_is_query_remove_then_remove_complete_then_interface_removed() {
    let sim = sim();
    let log = Log::default();
    let _reg = sim
        .register_interface_notification(&GUID, Interfaces::new("reg", &log))
        .unwrap();
    let (id, link) = add_device(&sim, "dev", GUID, Arc::new(TestsIoctlHandler::default()));
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let b = Events::new("b", &log, OnQuery::AcceptAndClose);
    let ta = open(&sim, &link, &a);
    let tb = open(&sim, &link, &b);
    assert_eq!(log.take(), vec![format!("reg:arrived:{link}@pnp")]);

    assert_eq!(sim.bus().remove_device(id), Ok(RemovalOutcome::Removed));
    assert_eq!(
        log.take(),
        vec![
            "a:query_remove@pnp".to_string(),
            "b:query_remove@pnp".to_string(),
            "a:remove_complete@pnp".to_string(),
            "b:remove_complete@pnp".to_string(),
            format!("reg:removed:{link}@pnp"),
        ]
    );
    assert_eq!(ta.state(), TargetState::Closed);
    assert_eq!(tb.state(), TargetState::Closed);
    assert!(sim.bus().devices().is_empty());
    assert_eq!(sim.bus().find_by_link(&link), None);
    // The device is gone: opening it again fails.
    let c = Events::new("c", &log, OnQuery::AcceptAndClose);
    assert_eq!(
        open_with(
            &sim,
            &link,
            dmf_wdf::OpenMode::READ,
            dmf_wdf::ShareAccess::READ_WRITE,
            &c
        )
        .err(),
        Some(Status::OBJECT_NAME_NOT_FOUND)
    );
    drop((ta, tb, _reg));
    assert_clean(&sim);
}

#[test]
fn veto_cancels_the_removal_for_everyone_and_targets_stay_usable() {
    let sim = sim();
    let log = Log::default();
    let (id, link) = add_device(&sim, "dev", GUID, Arc::new(TestsIoctlHandler::default()));
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let v = Events::new("v", &log, OnQuery::Veto);
    let c = Events::new("c", &log, OnQuery::AcceptAndClose);
    let ta = open(&sim, &link, &a);
    let tv = open(&sim, &link, &v);
    let tc = open(&sim, &link, &c);

    assert_eq!(
        sim.bus().remove_device(id),
        Ok(RemovalOutcome::Vetoed {
            status: Status::UNSUCCESSFUL
        })
    );
    // Query stops at the veto; every registered target hears the cancel.
    assert_eq!(
        log.take(),
        vec![
            "a:query_remove@pnp",
            "v:query_remove@pnp",
            "a:remove_canceled@pnp",
            "v:remove_canceled@pnp",
            "c:remove_canceled@pnp",
        ]
    );
    assert_eq!(*a.reopen_result.lock().unwrap(), Some(Ok(())), "a reopened");
    assert_eq!(
        *v.reopen_result.lock().unwrap(),
        None,
        "the vetoer never closed"
    );
    for t in [&ta, &tv, &tc] {
        assert_eq!(t.state(), TargetState::Started);
    }
    assert_eq!(sim.bus().devices().len(), 1);

    // Still usable: a short sleep completes successfully on the reopened target.
    let request = sim.create_request(Some(&ta)).unwrap();
    let input = encode_sleep(1);
    // SAFETY: synchronous send; `input` outlives it.
    unsafe {
        ta.format_request(
            &request,
            RequestType::Ioctl,
            IOCTL_SLEEP,
            Some(RawBuffer::from_slice(&input)),
            None,
        )
        .unwrap();
    }
    assert_eq!(ta.send_synchronously(&request, 0), Ok(0));
    drop(request);
    drop((ta, tv, tc));
    assert_clean(&sim);
}

#[test]
fn accepting_without_closing_keeps_the_device() {
    let sim = sim();
    let log = Log::default();
    let (id, link) = add_device(&sim, "dev", GUID, Arc::new(TestsIoctlHandler::default()));
    let lazy = Events::new("lazy", &log, OnQuery::AcceptKeepOpen);
    let t = open(&sim, &link, &lazy);
    assert_eq!(
        sim.bus().remove_device(id),
        Ok(RemovalOutcome::HandlesStillOpen { count: 1 })
    );
    assert_eq!(
        log.take(),
        vec!["lazy:query_remove@pnp", "lazy:remove_canceled@pnp"]
    );
    assert_eq!(t.state(), TargetState::Started);
    drop(t);
    assert_clean(&sim);
}

#[test]
fn removal_cancelled_by_someone_else_reopens_everyone() {
    let sim = sim();
    let log = Log::default();
    let _reg = sim
        .register_interface_notification(&GUID, Interfaces::new("reg", &log))
        .unwrap();
    let (id, link) = add_device(&sim, "dev", GUID, Arc::new(TestsIoctlHandler::default()));
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let b = Events::new("b", &log, OnQuery::AcceptAndClose);
    let ta = open(&sim, &link, &a);
    let tb = open(&sim, &link, &b);
    log.take();
    assert_eq!(
        sim.bus().query_remove_then_cancel(id),
        Ok(RemovalOutcome::Cancelled)
    );
    assert_eq!(
        log.take(),
        vec![
            "a:query_remove@pnp",
            "b:query_remove@pnp",
            "a:remove_canceled@pnp",
            "b:remove_canceled@pnp"
        ]
    );
    assert_eq!(ta.state(), TargetState::Started);
    assert_eq!(tb.state(), TargetState::Started);
    // And now for real.
    assert_eq!(sim.bus().remove_device(id), Ok(RemovalOutcome::Removed));
    assert_eq!(
        log.take(),
        vec![
            "a:query_remove@pnp".to_string(),
            "b:query_remove@pnp".to_string(),
            "a:remove_complete@pnp".to_string(),
            "b:remove_complete@pnp".to_string(),
            format!("reg:removed:{link}@pnp"),
        ]
    );
    assert_eq!(sim.bus().remove_device(id), Err(Status::NO_SUCH_DEVICE));
    drop((ta, tb, _reg));
    assert_clean(&sim);
}

#[test]
fn reopen_fails_if_the_interface_went_away_meanwhile() {
    let sim = sim();
    let log = Log::default();
    let (id, link) = add_device(&sim, "dev", GUID, Arc::new(TestsIoctlHandler::default()));
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let ta = open(&sim, &link, &a);
    // The target closes for query-remove; then the driver disables its interface
    // before the cancel arrives (simulated by doing it in two steps).
    *a.on_query.lock().unwrap() = OnQuery::AcceptAndClose;
    ta.close_for_query_remove();
    assert_eq!(ta.state(), TargetState::ClosedForQueryRemove);
    sim.bus().disable_interface(id, &GUID).unwrap();
    assert_eq!(ta.reopen(), Err(Status::OBJECT_NAME_NOT_FOUND));
    sim.bus().enable_interface(id, &GUID).unwrap();
    assert_eq!(ta.reopen(), Ok(()));
    assert_eq!(
        ta.reopen(),
        Err(Status::INVALID_DEVICE_STATE),
        "reopen needs ClosedForQueryRemove"
    );
    drop(ta);
    assert_clean(&sim);
}

#[test]
fn surprise_removal_completes_io_in_flight_then_sends_get_delete_pending() {
    let sim = sim();
    let log = Log::default();
    let _reg = sim
        .register_interface_notification(&GUID, Interfaces::new("reg", &log))
        .unwrap();
    let device = ParkingDevice::uncancelable();
    let (id, link) = add_device(&sim, "dev", GUID, device.clone());
    // This target does not close on remove_complete: it keeps sending.
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let ta = Arc::new(sim.create_io_target().unwrap());
    ta.open(
        &dmf_wdf::OpenParams {
            symbolic_link: &link,
            open_mode: dmf_wdf::OpenMode::READ_WRITE,
            share_access: dmf_wdf::ShareAccess::READ_WRITE,
        },
        Arc::clone(&a),
    )
    .unwrap();
    let rec = Recorder::new();
    let requests: Vec<_> = (0..5)
        .map(|_| sim.create_request(Some(&*ta)).unwrap())
        .collect();
    for r in &requests {
        // SAFETY: no buffers.
        unsafe {
            ta.format_request(r, RequestType::Ioctl, 0x1234, None, None)
                .unwrap()
        };
        ta.send(r, SendOptions::default(), rec.clone()).unwrap();
    }
    assert!(device.wait_for_pending(5, Duration::from_secs(5)));
    log.take();

    sim.bus().surprise_remove(id).unwrap();
    assert!(rec.wait_for(5, Duration::from_secs(5)));
    assert!(
        rec.statuses().iter().all(|s| *s == Status::DEVICE_REMOVED),
        "{:?}",
        rec.statuses()
    );
    assert_eq!(
        log.take(),
        vec![
            "a:remove_complete@pnp".to_string(),
            format!("reg:removed:{link}@pnp")
        ]
    );
    // The device's own late completions are no-ops.
    assert_eq!(device.complete_all(Status::SUCCESS), 5);
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(rec.count(), 5);

    // The target is still open; later sends are accepted and complete with DELETE_PENDING.
    assert_eq!(ta.state(), TargetState::Started);
    for r in &requests {
        r.reuse().unwrap();
        // SAFETY: no buffers.
        unsafe {
            ta.format_request(r, RequestType::Ioctl, 0x1234, None, None)
                .unwrap()
        };
        ta.send(r, SendOptions::default(), rec.clone()).unwrap();
    }
    assert!(rec.wait_for(10, Duration::from_secs(5)));
    assert!(rec.statuses()[5..]
        .iter()
        .all(|s| *s == Status::DELETE_PENDING));
    assert_eq!(device.pending(), 0, "the removed device sees nothing");
    assert_eq!(sim.bus().surprise_remove(id), Err(Status::NO_SUCH_DEVICE));
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    ta.close();
    drop(requests);
    drop((ta, _reg));
    assert_clean(&sim);
}

#[test]
fn surprise_removal_of_a_sleeping_ioctl_handler_and_sync_send() {
    let sim = sim();
    let log = Log::default();
    let (id, link) = add_device(&sim, "dev", GUID, Arc::new(TestsIoctlHandler::default()));
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let ta = open(&sim, &link, &a);
    let request = sim.create_request(Some(&*ta)).unwrap();
    let input = encode_sleep(60_000);
    // SAFETY: the synchronous send below returns before `input` is dropped.
    unsafe {
        ta.format_request(
            &request,
            RequestType::Ioctl,
            IOCTL_SLEEP,
            Some(RawBuffer::from_slice(&input)),
            None,
        )
        .unwrap();
    }
    std::thread::scope(|s| {
        let sender = s.spawn(|| ta.send_synchronously(&request, 0));
        while sim.bus().device(id).map(|d| d.pending_irps) != Some(1) {
            std::thread::yield_now();
        }
        sim.bus().surprise_remove(id).unwrap();
        assert_eq!(sender.join().unwrap(), Err(Status::DEVICE_REMOVED));
    });
    // `a` closed its target on remove_complete.
    assert_eq!(ta.state(), TargetState::Closed);
    drop(request);
    drop(ta);
    assert_clean(&sim);
}

/// On a surprise removal the lower device decides when and with what status
/// its pending requests complete, and may hold them non-cancelable: a close
/// from remove-complete (as KMDF requires) waits for them.
#[test]
fn surprise_removal_completes_io_when_the_device_decides_and_close_waits() {
    let sim = sim();
    let log = Log::default();
    // Cancelable while the device is present; held non-cancelable once removed.
    let device = ParkingDevice::new();
    let spec = dmf_sim::DeviceSpec::new("dev", device.clone())
        .with_interface(GUID)
        .with_surprise_removal(Status::NO_SUCH_DEVICE, 80);
    let id = sim.bus().add_device(spec).unwrap();
    let link = sim.bus().symbolic_link(id, &GUID).unwrap();
    let a = Events::new("a", &log, OnQuery::AcceptAndClose);
    let ta = open(&sim, &link, &a);
    let rec = Recorder::new();
    let requests: Vec<_> = (0..3)
        .map(|_| sim.create_request(Some(&*ta)).unwrap())
        .collect();
    for r in &requests {
        // SAFETY: no buffers.
        unsafe {
            ta.format_request(r, RequestType::Ioctl, 0x1234, None, None)
                .unwrap()
        };
        ta.send(r, SendOptions::default(), rec.clone()).unwrap();
    }
    assert!(device.wait_for_pending(3, Duration::from_secs(5)));
    let start = std::time::Instant::now();
    // remove_complete closes the target; the close cannot cancel what the
    // removed device holds and waits for its completions.
    sim.bus().surprise_remove(id).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rec.statuses(), vec![Status::NO_SUCH_DEVICE; 3]);
    assert_eq!(ta.state(), TargetState::Closed);
    assert_eq!(
        device.complete_all(Status::SUCCESS),
        3,
        "the device's handles are stale"
    );
    assert_eq!(rec.count(), 3, "completed exactly once");
    drop(requests);
    drop(ta);
    assert_clean(&sim);
}
