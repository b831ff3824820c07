//! DMF's DIMT test scenarios (DIMT-1..DIMT-6) and derived cases, on the
//! simulator.

mod common;

use dmf_sim::{NoTargetEvents, Sim};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use dmf_continuous_request_target::{ContinuousRequestTargetConfig, StreamMode};
use dmf_device_interface_multiple_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
use dmf_sim::{
    AllowedAccess, ClientDevice, DeviceSpec, FaultPlan, RemovalOutcome, TestsIoctlHandler,
};
use dmf_wdf::{
    DeviceCallbacks, IoTarget, OpenMode, OpenParams, Platform, RequestType, ShareAccess, Status,
};

use TargetStateType as S;

const SECOND: Duration = Duration::from_secs(1);

fn sleep_params() -> SendParams {
    SendParams::ioctl(IOCTL_SLEEP)
}

fn sync_sleep(
    dimt: &Dimt<dmf_sim::Sim, Recorder>,
    t: TargetHandle,
    ms: i32,
) -> dmf_wdf::Result<usize> {
    dimt.send_synchronously(t, &encode_sleep(ms), &mut [], sleep_params())
}

/// A completion callback of safe sends reporting statuses on a channel.
fn channel_completion() -> (OwnedCompletion<Sim>, mpsc::Receiver<(Status, usize)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let c: OwnedCompletion<Sim> = Arc::new(move |c: OwnedSendCompleted<Sim>| {
        let _ = tx.lock().unwrap().send((c.status, c.client_context));
    });
    (c, rx)
}

fn streaming_config(mode: StreamMode, count: u32) -> DeviceInterfaceMultipleTargetConfig {
    DeviceInterfaceMultipleTargetConfig {
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: count,
            buffer_count_output: count,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: mode,
            ..ContinuousRequestTargetConfig::default()
        },
        ..config(PnpRegisterWhen::Create)
    }
}

/// DIMT-1: existing and new interfaces arrive, pass the filter, open, and
/// work from the Open callback on; `target_reference` / `get` /
/// `target_dereference` as in the DMF test; `guid_get`.
#[test]
fn dimt1_arrival_of_existing_and_new_interfaces() {
    let sim = sim();
    let a = add_device(&sim, "a");
    let rejected = add_device(&sim, "nope");
    let client = Recorder::default();
    client.reject.lock().unwrap().push("#nope#".into());
    let dimt = created(&sim, config(PnpRegisterWhen::Create), client);
    let b = add_device(&sim, "b");
    let c = dimt.client();
    assert_eq!(c.filter_calls.load(Ordering::SeqCst), 3);
    assert_eq!(dimt.target_count(), 2);
    assert_eq!(dimt.open_target_count(), 2);
    assert_eq!(dimt.guid_get(), GUID);
    let events = c.events();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.state == S::Open && e.methods_worked));
    assert!(dimt.find(&link_of(&sim, rejected)).is_none());
    for id in [a, b] {
        let t = dimt.find(&link_of(&sim, id)).expect("tracked");
        assert_eq!(dimt.symbolic_link(t).unwrap(), link_of(&sim, id));
        dimt.target_reference(t).unwrap();
        let io = dimt.get(t).unwrap();
        assert_eq!(io.device(), Some(id));
        dimt.target_dereference(t);
        dimt.target_dereference(t); // unbalanced: ignored
        assert_eq!(sync_sleep(&dimt, t, 1), Ok(0));
    }
    // The filter answer is not remembered: a rejected link is asked again.
    sim.bus().disable_interface(rejected, &GUID).unwrap();
    c.reject.lock().unwrap().clear();
    sim.bus().enable_interface(rejected, &GUID).unwrap();
    assert_eq!(dimt.target_count(), 3);
    let module = finish(&sim, dimt);
    assert_eq!(
        module
            .client()
            .events()
            .iter()
            .filter(|e| e.state == S::Close)
            .count(),
        3
    );
    drop(module);
    assert_clean(&sim);
}

/// DIMT-2 (and the query-remove path: no Close): an orderly removal
/// reports QueryRemove (methods still work in it) then QueryRemoveComplete,
/// and no Close; the handle is stale afterwards.
#[test]
fn dimt2_orderly_removal_reports_query_remove_then_complete() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    let t = dimt.targets()[0];
    assert_eq!(sim.bus().remove_device(id), Ok(RemovalOutcome::Removed));
    let events = dimt.client().events();
    let states: Vec<_> = events.iter().map(|e| e.state).collect();
    assert_eq!(states, [S::Open, S::QueryRemove, S::QueryRemoveComplete]);
    assert!(events[1].methods_worked, "methods work during QueryRemove");
    assert!(!events[2].methods_worked, "not after the query-remove");
    assert_eq!(sync_sleep(&dimt, t, 1), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(dimt.get(t).err(), Some(Status::INVALID_DEVICE_STATE));
    assert_eq!(dimt.target_count(), 0);
    assert_eq!(dimt.open_target_count(), 0);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// DIMT-3/DIMT-4: async sends, the cancel matrix cases with a sure outcome,
/// and the reuse matrix, on one target; completions carry the context.
#[test]
fn dimt3_dimt4_async_cancel_and_reuse() {
    let sim = sim();
    add_device(&sim, "a");
    let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    let t = dimt.targets()[0];
    let (done, rx) = channel_completion();
    let long = encode_sleep(10_000);
    let short = encode_sleep(1);

    // The target's sender, for sends with our own callback.
    let sender = || dimt.target_guard(t).unwrap();
    let buffer = |b: &[u8]| Some(SendBuffer::from(b.to_vec()));

    // Async, completes normally.
    sender()
        .send(buffer(&short), None, sleep_params(), Some(done.clone()), 7)
        .unwrap();
    assert_eq!(rx.recv_timeout(5 * SECOND).unwrap(), (Status::SUCCESS, 7));

    // "Must be cancelled" (DIMT-4 / CRT-5 e).
    let id = sender()
        .send_ex(buffer(&long), None, sleep_params(), Some(done.clone()), 8)
        .unwrap();
    assert!(dimt.cancel(t, id));
    assert_eq!(rx.recv_timeout(5 * SECOND).unwrap(), (Status::CANCELLED, 8));
    assert!(!dimt.cancel(t, id), "a finished id cancels nothing");

    // Timeout: the framework cancels the request and reports STATUS_IO_TIMEOUT.
    sender()
        .send(
            buffer(&long),
            None,
            sleep_params().with_timeout(20),
            Some(done.clone()),
            9,
        )
        .unwrap();
    assert_eq!(
        rx.recv_timeout(5 * SECOND).unwrap(),
        (Status::IO_TIMEOUT, 9)
    );

    // Reuse matrix (CRT-6): the same id three times, busy while in flight.
    let reuse = dimt.reuse_create(t).unwrap();
    assert_eq!(dimt.reuse_count(t), Ok(1));
    for round in 0..3 {
        let cancel = sender()
            .reuse_send(
                reuse,
                buffer(&long),
                None,
                sleep_params(),
                Some(done.clone()),
                round,
            )
            .unwrap();
        let busy = sender().reuse_send(
            reuse,
            buffer(&long),
            None,
            sleep_params(),
            Some(done.clone()),
            99,
        );
        assert_eq!(
            busy.err().map(Status::from),
            Some(Status::OBJECTID_NOT_FOUND)
        );
        assert!(dimt.cancel(t, cancel));
        assert_eq!(
            rx.recv_timeout(5 * SECOND).unwrap(),
            (Status::CANCELLED, round)
        );
    }
    wait_until("reuse idle", 5 * SECOND, || {
        dimt.reuse_delete(t, reuse) == Ok(ReuseDeletion::Deleted)
    });
    assert_eq!(dimt.reuse_count(t), Ok(0));
    // A forgotten reuse id does not hang the close.
    dimt.reuse_create(t).unwrap();
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// DIMT-5 (short, deterministic part): every method on a target that is
/// gone fails cleanly, including a handle whose slot was reused
/// (Stale target handles are refused).
#[test]
fn dimt5_methods_on_gone_targets_fail_cleanly() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    let old = dimt.targets()[0];
    sim.bus().disable_interface(id, &GUID).unwrap();
    sim.bus().enable_interface(id, &GUID).unwrap();
    let new = dimt.targets()[0];
    assert_eq!(old.index(), new.index(), "slot reused");
    assert_ne!(old, new);
    assert_eq!(dimt.client().states_of(old), [S::Open, S::Close]);
    assert_eq!(dimt.client().states_of(new), [S::Open]);
    for t in [
        old,
        TargetHandle::from_u64(u64::MAX),
        TargetHandle::from_u64(0),
    ] {
        let bad: dmf_wdf::Result<()> = Err(Status::INVALID_DEVICE_STATE);
        assert_eq!(sync_sleep(&dimt, t, 1).err(), bad.err());
        assert_eq!(dimt.get(t).err(), bad.err());
        let status = |e: SendError<Sim>| e.status;
        assert_eq!(
            dimt.send(t, None, None, sleep_params(), 0).map_err(status),
            bad
        );
        assert_eq!(
            dimt.send_ex(t, None, None, sleep_params(), 0)
                .err()
                .map(status),
            bad.err()
        );
        // SAFETY: refused sends retain nothing.
        unsafe {
            assert_eq!(dimt.send_raw(t, None, None, sleep_params(), 0), bad);
        }
        assert!(!dimt.cancel(t, CancelId::from_raw(0x100).unwrap()));
        assert_eq!(dimt.reuse_create(t).err(), bad.err());
        let r = ReuseId::from_raw(0x100).unwrap();
        assert_eq!(
            dimt.reuse_send(t, r, None, None, sleep_params(), 0)
                .err()
                .map(status),
            bad.err()
        );
        assert_eq!(dimt.reuse_delete(t, r).err(), bad.err());
        assert_eq!(dimt.stream_start(t), bad);
        assert_eq!(dimt.stream_stop(t), bad);
        assert_eq!(dimt.target_reference(t), bad);
        dimt.target_dereference(t);
        assert!(dimt.target_guard(t).is_err());
        assert!(dimt.symbolic_link(t).is_err());
    }
    assert_eq!(sync_sleep(&dimt, new, 1), Ok(0));
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// DIMT-6 (A blocked synchronous send cannot hold up query-remove): a synchronous send blocked on the target (no timeout)
/// does not hold up query-remove: the module closes the target before
/// waiting for methods in progress. Also with the DMF test's workaround
/// (purging in the QueryRemove callback).
#[test]
fn dimt6_blocked_sync_send_does_not_hold_up_query_remove() {
    for purge in [false, true] {
        let sim = sim();
        let id = add_device(&sim, "a");
        let client = Recorder::default();
        client.purge_on_query_remove.store(purge, Ordering::SeqCst);
        let dimt = created(&sim, config(PnpRegisterWhen::Create), client);
        let t = dimt.targets()[0];
        let module = dimt.module();
        // 8 s at the device: with DMF's order (wait for methods, then close)
        // the removal below would take that long.
        let blocked = std::thread::spawn(move || sync_sleep(&module, t, 8_000));
        wait_until("send at the device", 5 * SECOND, || {
            sim.bus().device(id).unwrap().pending_irps == 1
        });
        let start = Instant::now();
        assert_eq!(sim.bus().remove_device(id), Ok(RemovalOutcome::Removed));
        assert!(
            start.elapsed() < 4 * SECOND,
            "query-remove waited for the send"
        );
        assert_eq!(blocked.join().unwrap(), Err(Status::CANCELLED));
        assert_eq!(
            dimt.client().states_of(t),
            [S::Open, S::QueryRemove, S::QueryRemoveComplete]
        );
        drop(finish(&sim, dimt));
        assert_clean(&sim);
    }
}

/// A vetoed Open closes the target again, reports nothing more, and
/// leaves nothing open; the next arrival is asked again.
#[test]
fn veto_open() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let client = Recorder::default();
    client.veto_open.store(true, Ordering::SeqCst);
    let dimt = created(&sim, config(PnpRegisterWhen::Create), client);
    assert_eq!(dimt.target_count(), 0);
    assert_eq!(dimt.open_target_count(), 0);
    assert_eq!(sim.counters().open_targets, 0);
    let events = dimt.client().events();
    assert_eq!(events.len(), 1);
    assert!(events[0].vetoed && events[0].methods_worked);
    dimt.client().veto_open.store(false, Ordering::SeqCst);
    sim.bus().disable_interface(id, &GUID).unwrap();
    sim.bus().enable_interface(id, &GUID).unwrap();
    assert_eq!(dimt.open_target_count(), 1);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// A vetoed QueryRemove keeps the target open and working; the
/// following remove-cancel is swallowed; a later removal proceeds.
#[test]
fn veto_query_remove() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let client = Recorder::default();
    client.veto_query_remove.store(true, Ordering::SeqCst);
    let dimt = created(&sim, config(PnpRegisterWhen::Create), client);
    let t = dimt.targets()[0];
    assert!(matches!(
        sim.bus().remove_device(id),
        Ok(RemovalOutcome::Vetoed { .. })
    ));
    assert_eq!(dimt.client().states_of(t), [S::Open, S::QueryRemove]);
    assert_eq!(sync_sleep(&dimt, t, 1), Ok(0));
    assert_eq!(dimt.open_target_count(), 1);
    dimt.client()
        .veto_query_remove
        .store(false, Ordering::SeqCst);
    assert_eq!(sim.bus().remove_device(id), Ok(RemovalOutcome::Removed));
    assert_eq!(
        dimt.client().states_of(t),
        [
            S::Open,
            S::QueryRemove,
            S::QueryRemove,
            S::QueryRemoveComplete
        ]
    );
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// RemoveCancel after an accepted QueryRemove reopens the target,
/// restarts the stream it had, and reports QueryRemoveCancelled.
#[test]
fn remove_cancel_reopens_and_restarts_streaming() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let dimt = created(
        &sim,
        streaming_config(StreamMode::Automatic, 2),
        Recorder::default(),
    );
    let t = dimt.targets()[0];
    wait_until("streaming", 5 * SECOND, || dimt.client().completions(t) > 5);
    assert_eq!(dimt.is_streaming(t), Ok(true));
    assert_eq!(
        sim.bus().query_remove_then_cancel(id),
        Ok(RemovalOutcome::Cancelled)
    );
    assert_eq!(
        dimt.client().states_of(t),
        [S::Open, S::QueryRemove, S::QueryRemoveCancelled]
    );
    assert_eq!(dimt.is_streaming(t), Ok(true));
    let before = dimt.client().completions(t);
    wait_until("streaming again", 5 * SECOND, || {
        dimt.client().completions(t) > before + 5
    });
    assert_eq!(sync_sleep(&dimt, t, 1), Ok(0));
    assert_eq!(dimt.open_target_count(), 1);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// No zombie record after a failed reopen: when the reopen after RemoveCancel fails, the client gets
/// Close and the record is dropped (no zombie); the link can open again.
#[test]
fn remove_cancel_reopen_failure_reports_close() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let link = link_of(&sim, id);
    let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    let t = dimt.targets()[0];
    sim.faults()
        .set_open_failure_for_link(&link, FaultPlan::Always, None);
    assert_eq!(
        sim.bus().query_remove_then_cancel(id),
        Ok(RemovalOutcome::Cancelled)
    );
    assert_eq!(
        dimt.client().states_of(t),
        [S::Open, S::QueryRemove, S::Close]
    );
    assert_eq!(dimt.target_count(), 0);
    assert_eq!(dimt.open_target_count(), 0);
    sim.faults().clear_open_failure_for_link(&link);
    sim.bus().disable_interface(id, &GUID).unwrap();
    sim.bus().enable_interface(id, &GUID).unwrap();
    assert_eq!(dimt.open_target_count(), 1);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// A streaming module on device `id` with a long single send (context 1) in
/// flight when the device is surprise-removed; returns the module and the
/// receiver of that send's completion.
fn stream_send_and_surprise_remove(
    sim: &dmf_sim::Sim,
    id: dmf_sim::DeviceId,
) -> (
    DeviceInterfaceMultipleTarget<dmf_sim::Sim, Recorder>,
    mpsc::Receiver<(Status, usize)>,
) {
    let dimt = created(
        sim,
        streaming_config(StreamMode::Automatic, 1),
        Recorder::default(),
    );
    let t = dimt.targets()[0];
    let (done, rx) = channel_completion();
    let long = encode_sleep(10_000).to_vec();
    dimt.target_guard(t)
        .unwrap()
        .send(Some(long.into()), None, sleep_params(), Some(done), 1)
        .unwrap();
    sim.bus().surprise_remove(id).unwrap();
    (dimt, rx)
}

/// Surprise removal with I/O in flight reports QueryRemoveComplete
/// then Close; the send completes (removed or cancelled).
#[test]
fn surprise_removal_order() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let (dimt, rx) = stream_send_and_surprise_remove(&sim, id);
    let (status, _) = rx.recv_timeout(5 * SECOND).unwrap();
    assert!(
        status == Status::DEVICE_REMOVED || status == Status::CANCELLED,
        "{status:?}"
    );
    let events = dimt.client().events();
    let states: Vec<_> = events.iter().map(|e| e.state).collect();
    assert_eq!(states, [S::Open, S::QueryRemoveComplete, S::Close]);
    assert!(events[2].methods_worked, "Close comes before the rundown");
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// Open targets are counted once per target: two targets; one query-removed and removed (its interface
/// removal follows); the open count drops by exactly one and the other
/// target keeps working.
#[test]
fn open_count_is_per_record() {
    let sim = sim();
    let a = add_device(&sim, "a");
    let b = add_device(&sim, "b");
    let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    assert_eq!(dimt.open_target_count(), 2);
    let tb = dimt.find(&link_of(&sim, b)).unwrap();
    let client = dimt.client();
    client.veto_query_remove.store(false, Ordering::SeqCst);
    // Query-removed, then cancelled by someone else, then removed for real.
    sim.bus().query_remove_then_cancel(a).unwrap();
    assert_eq!(dimt.open_target_count(), 2);
    sim.bus().remove_device(a).unwrap();
    assert_eq!(dimt.open_target_count(), 1);
    assert_eq!(dimt.target_count(), 1);
    assert_eq!(sync_sleep(&dimt, tb, 1), Ok(0));
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// Open mode and share access are honoured: the configured open mode and share access are used.
#[test]
fn open_mode_and_share_access_are_honoured() {
    let sim = sim();
    let ro = sim
        .bus()
        .add_device(
            DeviceSpec::new("ro", Arc::new(TestsIoctlHandler::default()))
                .with_interface(GUID)
                .with_access(AllowedAccess::ReadOnly),
        )
        .unwrap();
    // Read-write (DMF's hard-coded mode) is refused by a read-only device.
    let rw = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    assert_eq!(rw.target_count(), 0);
    drop(finish(&sim, rw));
    // Read-only, exclusive: opens, and excludes other openers.
    let cfg = DeviceInterfaceMultipleTargetConfig {
        open_mode: OpenMode::READ,
        share_access: ShareAccess::NONE,
        ..config(PnpRegisterWhen::Create)
    };
    let dimt = created(&sim, cfg, Recorder::default());
    assert_eq!(dimt.open_target_count(), 1);
    let other = sim.create_io_target().unwrap();
    let link = link_of(&sim, ro);
    let params = OpenParams {
        symbolic_link: &link,
        open_mode: OpenMode::READ,
        share_access: ShareAccess::READ_WRITE,
    };
    assert_eq!(
        other.open(&params, Arc::new(NoTargetEvents)),
        Err(Status::SHARING_VIOLATION)
    );
    drop(other);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// Open options: PrepareHardware (targets survive power cycles), D0Entry
/// (every D0 exit closes, every D0 entry re-opens), Create.
#[test]
fn open_options_follow_the_client_device() {
    let sim = sim();
    add_device(&sim, "a");

    let dimt = DeviceInterfaceMultipleTarget::new(
        &sim,
        config(PnpRegisterWhen::PrepareHardware),
        Recorder::default(),
    )
    .unwrap();
    let device = ClientDevice::new();
    let callbacks: Arc<dyn DeviceCallbacks> = Arc::new(dimt.device_callbacks());
    device.register(callbacks);
    assert!(!dimt.is_registered());
    device.start().unwrap();
    sim.bus().flush().unwrap();
    assert_eq!(dimt.open_target_count(), 1);
    device.power_cycle().unwrap();
    assert_eq!(
        dimt.client().events().len(),
        1,
        "targets survive D0 transitions"
    );
    device.stop().unwrap();
    assert!(!dimt.is_registered());
    assert_eq!(dimt.target_count(), 0);
    let t = dimt.client().events()[0].target;
    assert_eq!(dimt.client().states_of(t), [S::Open, S::Close]);
    drop(finish(&sim, dimt));

    let dimt = DeviceInterfaceMultipleTarget::new(
        &sim,
        config(PnpRegisterWhen::D0Entry),
        Recorder::default(),
    )
    .unwrap();
    let device = ClientDevice::new();
    let callbacks: Arc<dyn DeviceCallbacks> = Arc::new(dimt.device_callbacks());
    device.register(callbacks);
    device.start().unwrap();
    sim.bus().flush().unwrap();
    let first = dimt.targets()[0];
    device.power_down().unwrap();
    assert_eq!(dimt.target_count(), 0);
    assert_eq!(dimt.client().states_of(first), [S::Open, S::Close]);
    device.power_up().unwrap();
    sim.bus().flush().unwrap();
    let second = dimt.targets()[0];
    assert_ne!(first, second);
    assert_eq!(sync_sleep(&dimt, second, 1), Ok(0));
    device.stop().unwrap();
    assert_eq!(dimt.client().states_of(second), [S::Open, S::Close]);
    drop(finish(&sim, dimt));

    let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    assert!(dimt.is_registered());
    assert_eq!(dimt.open_target_count(), 1);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// Manual streaming: start/stop per target; methods of streaming targets on
/// non-streaming modules fail with NOT_SUPPORTED.
#[test]
fn manual_streaming_and_not_supported() {
    let sim = sim();
    add_device(&sim, "a");
    let dimt = created(
        &sim,
        streaming_config(StreamMode::Manual, 2),
        Recorder::default(),
    );
    let t = dimt.targets()[0];
    assert_eq!(dimt.is_streaming(t), Ok(false));
    dimt.stream_start(t).unwrap();
    wait_until("completions", 5 * SECOND, || {
        dimt.client().completions(t) > 4
    });
    dimt.stream_stop(t).unwrap();
    let n = dimt.client().completions(t);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(dimt.client().completions(t), n, "stopped");
    let stats = dimt.stream_statistics(t).unwrap();
    let _ = stats;
    drop(finish(&sim, dimt));

    add_device(&sim, "b");
    let plain = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
    let t = plain.targets()[0];
    assert_eq!(plain.stream_start(t), Err(Status::NOT_SUPPORTED));
    assert_eq!(plain.stream_stop(t), Err(Status::NOT_SUPPORTED));
    assert_eq!(plain.is_streaming(t), Ok(false));
    drop(finish(&sim, plain));
    assert_clean(&sim);
}

/// After every stream request of a target retired on its own (the client
/// stops a request on a failed completion, and every completion fails), the
/// target is not streaming and `stream_start` works without a
/// `stream_stop` first.
#[test]
fn a_target_whose_stream_requests_all_retired_starts_again_without_stop() {
    let sim = sim();
    add_device(&sim, "a");
    let dimt = created(
        &sim,
        streaming_config(StreamMode::Manual, 2),
        Recorder::default(),
    );
    let t = dimt.targets()[0];
    sim.faults()
        .set(dmf_sim::FaultPoint::RequestFailure, FaultPlan::Always);
    dimt.stream_start(t).unwrap();
    wait_until("every stream request retired", 5 * SECOND, || {
        dimt.stream_statistics(t).unwrap().retired_by_client == 2
            && dimt.is_streaming(t) == Ok(false)
    });
    sim.faults()
        .set(dmf_sim::FaultPoint::RequestFailure, FaultPlan::Never);
    dimt.stream_start(t).unwrap();
    let n = dimt.client().completions(t);
    wait_until("streaming again", 5 * SECOND, || {
        dimt.client().completions(t) > n + 4
    });
    assert_eq!(dimt.is_streaming(t), Ok(true));
    assert_eq!(dimt.stream_statistics(t).unwrap().retired_by_client, 2);
    dimt.stream_stop(t).unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(false));
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// D0 transitions reach each target's CRT with a power policy configured:
/// streaming stops on D0 exit and resumes on D0 entry.
#[test]
fn d0_transitions_reach_the_per_target_stream() {
    let sim = sim();
    add_device(&sim, "a");
    let mut cfg = streaming_config(StreamMode::Automatic, 1);
    cfg.module_open_option = PnpRegisterWhen::PrepareHardware;
    cfg.continuous_request_target_module_config
        .cancel_and_resend_request_in_d0_callbacks = true;
    let dimt = DeviceInterfaceMultipleTarget::new(&sim, cfg, Recorder::default()).unwrap();
    let device = ClientDevice::new();
    let callbacks: Arc<dyn DeviceCallbacks> = Arc::new(dimt.device_callbacks());
    device.register(callbacks);
    device.start().unwrap();
    sim.bus().flush().unwrap();
    let t = dimt.targets()[0];
    wait_until("streaming", 5 * SECOND, || dimt.client().completions(t) > 2);
    device.power_down().unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(false));
    device.power_up().unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(true));
    let n = dimt.client().completions(t);
    wait_until("streaming again", 5 * SECOND, || {
        dimt.client().completions(t) > n + 2
    });
    device.stop().unwrap();
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// Teardown racing with PnP: the module is dropped while a removal's
/// QueryRemove callback runs, and a removal arrives while the teardown's
/// Close callback runs. Neither deadlocks (the destroyer releases the
/// target's transition lock before closing the target, and a transition
/// that then finds the target closing gives way), and every target ends
/// exactly once.
#[test]
fn teardown_racing_with_removal_does_not_deadlock() {
    for removal_first in [true, false] {
        let sim = sim();
        let id = add_device(&sim, "a");
        let dimt = created(&sim, config(PnpRegisterWhen::Create), Recorder::default());
        dimt.client().departure_delay_ms.store(50, Ordering::SeqCst);
        let bus = sim.bus();
        let remover = if removal_first {
            let r = std::thread::spawn(move || bus.remove_device(id));
            std::thread::sleep(Duration::from_millis(10));
            r
        } else {
            // Arrives while the teardown below sleeps in its Close callback.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                bus.remove_device(id)
            })
        };
        let module = finish(&sim, dimt);
        let outcome = remover.join().unwrap();
        assert!(outcome.is_ok(), "{outcome:?}");
        drop(module);
        assert_clean(&sim);
    }
}

/// Keeps output buffers and fills input buffers, per target.
#[derive(Default)]
struct Keeper {
    inputs: Mutex<Vec<TargetHandle>>,
    kept: Mutex<
        Vec<(
            TargetHandle,
            dmf_continuous_request_target::OutputBuffer<dmf_sim::Sim>,
        )>,
    >,
}

impl DimtClient<dmf_sim::Sim> for Keeper {
    type Target = ();

    fn target_context(&self, _: &Dimt<dmf_sim::Sim, Self>, _: TargetHandle, _: &str) {}

    fn buffer_input(
        &self,
        _m: &Dimt<dmf_sim::Sim, Self>,
        target: TargetHandle,
        _target_context: &Self::Target,
        input: &mut [u8],
        _context: &mut [u8],
    ) -> usize {
        let sleep = encode_sleep(1);
        input[..sleep.len()].copy_from_slice(&sleep);
        let mut inputs = self.inputs.lock().unwrap();
        if inputs.len() < 100 {
            inputs.push(target);
        }
        sleep.len()
    }

    fn buffer_output(
        &self,
        _m: &Dimt<dmf_sim::Sim, Self>,
        target: TargetHandle,
        _target_context: &Self::Target,
        mut completion: dmf_continuous_request_target::StreamCompletion<dmf_sim::Sim>,
    ) -> dmf_continuous_request_target::OutputDisposition<dmf_sim::Sim> {
        let mut kept = self.kept.lock().unwrap();
        if kept.len() < 4 {
            if let Some(buffer) = completion.take_output() {
                kept.push((target, buffer));
                return dmf_continuous_request_target::OutputDisposition::ClientOwnsAndContinue;
            }
        }
        completion.module_owns_and_continue()
    }
}

/// The CRT's buffer callbacks reach the client with the target's handle;
/// buffers the client keeps go back with `buffer_put` (BufferPut).
#[test]
fn stream_buffer_callbacks_and_buffer_put() {
    let sim = sim();
    let a = add_device(&sim, "a");
    let b = add_device(&sim, "b");
    let mut cfg = streaming_config(StreamMode::Automatic, 1);
    let crt = &mut cfg.continuous_request_target_module_config;
    crt.request_type = RequestType::Ioctl;
    crt.continuous_request_target_ioctl = IOCTL_SLEEP;
    crt.buffer_input_size = dmf_sim::ioctl_handler::SLEEP_INPUT_SIZE as u32;
    crt.buffer_count_input = 1;
    crt.enable_look_aside_output = true;
    let dimt = DeviceInterfaceMultipleTarget::new(&sim, cfg, Keeper::default()).unwrap();
    sim.bus().flush().unwrap();
    let ta = dimt.find(&link_of(&sim, a)).unwrap();
    let tb = dimt.find(&link_of(&sim, b)).unwrap();
    wait_until("kept buffers", 5 * SECOND, || {
        dimt.client().kept.lock().unwrap().len() == 4
    });
    let inputs = dimt.client().inputs.lock().unwrap().clone();
    assert!(inputs.contains(&ta) && inputs.contains(&tb));
    assert!(inputs.iter().all(|t| *t == ta || *t == tb));
    let kept = std::mem::take(&mut *dimt.client().kept.lock().unwrap());
    for (t, buffer) in kept {
        assert!(t == ta || t == tb);
        assert_eq!(buffer.data().len(), 4);
        dimt.buffer_put(t, buffer).unwrap();
    }
    // Stale handle: refused, and the buffer still goes home (no leak).
    wait_until("another kept buffer", 5 * SECOND, || {
        !dimt.client().kept.lock().unwrap().is_empty()
    });
    let (t, buffer) = dimt.client().kept.lock().unwrap().pop().unwrap();
    sim.bus()
        .surprise_remove(if t == ta { a } else { b })
        .unwrap();
    assert_eq!(
        dimt.buffer_put(t, buffer),
        Err(Status::INVALID_DEVICE_STATE)
    );
    dimt.client().kept.lock().unwrap().clear();
    let module = dimt.module();
    drop(dimt);
    assert!(sim.wait_quiescent(10 * SECOND));
    assert_eq!(module.target_count(), 0);
    drop(module);
    assert_clean(&sim);
}

/// A second opener of a device whose query-remove powers the client device
/// down (on the PnP thread, between the module's query-remove and the
/// remove-cancel) and then vetoes, so the module's target is remove-cancelled
/// while the device is in D3.
struct PowerDownAndVeto {
    device: ClientDevice,
}

impl dmf_wdf::TargetEvents for PowerDownAndVeto {
    fn query_remove(&self) -> Status {
        self.device.power_down().unwrap();
        Status::UNSUCCESSFUL
    }

    fn remove_canceled(&self) {}

    fn remove_complete(&self) {}
}

/// A PrepareHardware module whose per-target CRT cancels and resends in its
/// D0 callbacks, started on a client device and streaming to device `a`.
fn powered_streaming_module(
    sim: &dmf_sim::Sim,
) -> (
    DeviceInterfaceMultipleTarget<dmf_sim::Sim, Recorder>,
    ClientDevice,
    TargetHandle,
) {
    let mut cfg = streaming_config(StreamMode::Automatic, 2);
    cfg.module_open_option = PnpRegisterWhen::PrepareHardware;
    cfg.continuous_request_target_module_config
        .cancel_and_resend_request_in_d0_callbacks = true;
    let dimt = DeviceInterfaceMultipleTarget::new(sim, cfg, Recorder::default()).unwrap();
    let device = ClientDevice::new();
    let callbacks: Arc<dyn DeviceCallbacks> = Arc::new(dimt.device_callbacks());
    device.register(callbacks);
    device.start().unwrap();
    sim.bus().flush().unwrap();
    let t = dimt.targets()[0];
    wait_until("streaming", 5 * SECOND, || dimt.client().completions(t) > 2);
    (dimt, device, t)
}

/// Asserts that target `t` does not stream, and that no stream completion
/// arrives for a while.
fn assert_not_streaming(dimt: &Dimt<dmf_sim::Sim, Recorder>, t: TargetHandle) {
    assert_eq!(dimt.is_streaming(t), Ok(false), "streams in D3");
    let n = dimt.client().completions(t);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(dimt.client().completions(t), n, "completions in D3");
}

/// A remove-cancel that arrives while the device is in D3 reopens the
/// target but does not restart its stream (the CRT's power policy keeps it
/// stopped in D3); the stream restarts at D0 entry.
#[test]
fn remove_cancel_in_d3_restarts_streaming_at_d0_entry() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let (dimt, device, t) = powered_streaming_module(&sim);
    let other = sim.create_io_target().unwrap();
    other
        .open(
            &OpenParams {
                symbolic_link: &sim.bus().device_link(id).unwrap(),
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(PowerDownAndVeto {
                device: device.clone(),
            }),
        )
        .unwrap();
    assert_eq!(
        sim.bus().remove_device(id),
        Ok(RemovalOutcome::Vetoed {
            status: Status::UNSUCCESSFUL
        })
    );
    assert_eq!(
        dimt.client().states_of(t),
        [S::Open, S::QueryRemove, S::QueryRemoveCancelled]
    );
    assert_not_streaming(&dimt, t);
    // Single sends work on the reopened target.
    assert_eq!(sync_sleep(&dimt, t, 1), Ok(0));
    device.power_up().unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(true));
    let n = dimt.client().completions(t);
    wait_until("streaming after D0 entry", 5 * SECOND, || {
        dimt.client().completions(t) > n + 2
    });
    other.close();
    drop(other);
    device.stop().unwrap();
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// A query-remove that arrives while the device is in D3 (streaming stopped
/// by the power policy) does not lose the pending restart: after the
/// remove-cancel the stream restarts at D0 entry.
#[test]
fn query_remove_in_d3_keeps_the_restart_for_d0_entry() {
    let sim = sim();
    let id = add_device(&sim, "a");
    let (dimt, device, t) = powered_streaming_module(&sim);
    device.power_down().unwrap();
    assert_not_streaming(&dimt, t);
    assert_eq!(
        sim.bus().query_remove_then_cancel(id),
        Ok(RemovalOutcome::Cancelled)
    );
    assert_eq!(
        dimt.client().states_of(t),
        [S::Open, S::QueryRemove, S::QueryRemoveCancelled]
    );
    assert_not_streaming(&dimt, t);
    device.power_up().unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(true));
    let n = dimt.client().completions(t);
    wait_until("streaming after D0 entry", 5 * SECOND, || {
        dimt.client().completions(t) > n + 2
    });
    device.stop().unwrap();
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}

/// The single-send settings of the CRT configuration reach every target's
/// transport, streaming or not: with at most one send context a second
/// concurrent send is refused.
#[test]
fn single_send_config_reaches_every_target_transport() {
    for streaming in [false, true] {
        let sim = sim();
        add_device(&sim, "a");
        let mut cfg = if streaming {
            streaming_config(StreamMode::Manual, 1)
        } else {
            config(PnpRegisterWhen::Create)
        };
        cfg.continuous_request_target_module_config
            .single_send
            .max_contexts = 1;
        let dimt = created(&sim, cfg, Recorder::default());
        let t = dimt.targets()[0];
        let (done, rx) = channel_completion();
        let long = || Some(SendBuffer::from(encode_sleep(10_000).to_vec()));
        let sender = dimt.target_guard(t).unwrap();
        let id = sender
            .send_ex(long(), None, sleep_params(), Some(done.clone()), 1)
            .unwrap();
        let second = sender
            .send_ex(long(), None, sleep_params(), Some(done.clone()), 2)
            .map_err(Status::from);
        drop(sender);
        assert_eq!(
            second.err(),
            Some(Status::INSUFFICIENT_RESOURCES),
            "streaming: {streaming}"
        );
        assert_eq!(
            sync_sleep(&dimt, t, 1),
            Err(Status::INSUFFICIENT_RESOURCES),
            "streaming: {streaming}"
        );
        assert!(dimt.cancel(t, id));
        assert_eq!(rx.recv_timeout(5 * SECOND).unwrap(), (Status::CANCELLED, 1));
        drop(finish(&sim, dimt));
        assert_clean(&sim);
    }
}

/// Surprise removal where the removed device decides: it holds the stream
/// and single requests non-cancelable for a while and completes them with
/// STATUS_NO_SUCH_DEVICE. The close in remove-complete waits for them; the
/// client sees QueryRemoveComplete then Close and nothing leaks.
#[test]
fn surprise_removal_when_the_device_holds_io_non_cancelable() {
    let sim = sim();
    let id = sim
        .bus()
        .add_device(
            DeviceSpec::new("held", Arc::new(TestsIoctlHandler::default()))
                .with_interface(GUID)
                .with_surprise_removal(Status::NO_SUCH_DEVICE, 40),
        )
        .unwrap();
    let (dimt, rx) = stream_send_and_surprise_remove(&sim, id);
    assert_eq!(
        rx.recv_timeout(5 * SECOND).unwrap(),
        (Status::NO_SUCH_DEVICE, 1)
    );
    let states: Vec<_> = dimt.client().events().iter().map(|e| e.state).collect();
    assert_eq!(states, [S::Open, S::QueryRemoveComplete, S::Close]);
    assert_eq!(dimt.open_target_count(), 0);
    drop(finish(&sim, dimt));
    assert_clean(&sim);
}
