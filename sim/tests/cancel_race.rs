//! Cancellation racing completion, with real threads: every IRP is completed
//! exactly once and its completion routine called exactly once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
use dmf_sim::{
    DeviceHandler, FixedResponseDevice, Latency, ParkingDevice, Sim, SimConfig, SimIoTarget,
    SimRequest, SplitMix64, TestsIoctlHandler,
};
use dmf_wdf::{
    Completed, CompletionRoutine, Guid, IoTarget, Platform, RawBuffer, Request, RequestType,
    SendOptions, Status,
};

const GUID: Guid = Guid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
const REQUESTS: usize = 12;

/// One send: counts its completion routine calls.
struct SendRecord {
    calls: AtomicUsize,
    status: Mutex<Option<Status>>,
    slot: Arc<Slot>,
}

/// Per-request "free to reuse" flag.
#[derive(Default)]
struct Slot {
    busy: Mutex<bool>,
    cv: Condvar,
}

impl CompletionRoutine for SendRecord {
    fn completed(self: Arc<Self>, c: Completed) {
        let previous = self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(previous, 0, "completion routine called twice");
        *self.status.lock().unwrap() = Some(c.status);
        *self.slot.busy.lock().unwrap() = false;
        self.slot.cv.notify_all();
    }
}

struct Outcome {
    records: Vec<Arc<SendRecord>>,
    accepted: usize,
}

/// Sends `sends` requests round-robin over `REQUESTS` requests while a
/// canceller thread cancels random requests and `side` runs alongside.
fn race(
    sim: &Sim,
    target: &Arc<SimIoTarget>,
    sends: usize,
    input: Option<&'static [u8]>,
    ioctl: u32,
    side: impl Fn(&AtomicBool) + Send + Sync,
) -> Outcome {
    let requests: Vec<Arc<SimRequest>> = (0..REQUESTS)
        .map(|_| Arc::new(sim.create_request(Some(target)).unwrap()))
        .collect();
    let slots: Vec<Arc<Slot>> = (0..REQUESTS).map(|_| Arc::new(Slot::default())).collect();
    let done = AtomicBool::new(false);
    let mut records = Vec::with_capacity(sends);
    let mut accepted = 0;
    thread::scope(|s| {
        s.spawn(|| {
            let mut rng = SplitMix64::new(99);
            while !done.load(Ordering::Relaxed) {
                let r = rng.range_inclusive(0, REQUESTS as u64 - 1) as usize;
                requests[r].cancel_sent();
                thread::sleep(Duration::from_micros(rng.range_inclusive(0, 150)));
            }
        });
        s.spawn(|| side(&done));
        let mut rng = SplitMix64::new(7);
        for i in 0..sends {
            let r = i % REQUESTS;
            {
                let mut busy = slots[r].busy.lock().unwrap();
                while *busy {
                    busy = slots[r].cv.wait(busy).unwrap();
                }
                *busy = true;
            }
            let req = &requests[r];
            req.reuse().unwrap();
            // SAFETY: `input` is 'static.
            unsafe {
                target
                    .format_request(
                        req,
                        RequestType::Ioctl,
                        ioctl,
                        input.map(RawBuffer::from_slice),
                        None,
                    )
                    .unwrap();
            }
            let record = Arc::new(SendRecord {
                calls: AtomicUsize::new(0),
                status: Mutex::new(None),
                slot: Arc::clone(&slots[r]),
            });
            let timeout_ms = if rng.range_inclusive(0, 3) == 0 {
                rng.range_inclusive(1, 2) as u32
            } else {
                0
            };
            match target.send(req, SendOptions { timeout_ms }, Arc::clone(&record)) {
                Ok(()) => {
                    accepted += 1;
                    records.push(record);
                }
                // Cancelled between its reuse and this send: KMDF remembers
                // the cancel and does not send it (FxIoTarget::SubmitLocked).
                Err(Status::CANCELLED) => {
                    assert_eq!(record.calls.load(Ordering::SeqCst), 0);
                    *slots[r].busy.lock().unwrap() = false;
                }
                Err(status) => {
                    done.store(true, Ordering::Relaxed);
                    panic!("send refused: {status:?}");
                }
            }
        }
        for slot in &slots {
            let mut busy = slot.busy.lock().unwrap();
            while *busy {
                busy = slot.cv.wait(busy).unwrap();
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    drop(requests);
    Outcome { records, accepted }
}

fn check(sim: &Sim, outcome: &Outcome, allowed: &[Status]) -> (usize, usize) {
    assert!(
        sim.wait_quiescent(Duration::from_secs(10)),
        "{}",
        sim.counters()
    );
    let mut ok = 0;
    let mut cancelled = 0;
    for r in &outcome.records {
        assert_eq!(
            r.calls.load(Ordering::SeqCst),
            1,
            "routine must run exactly once"
        );
        let status = r.status.lock().unwrap().expect("status recorded");
        assert!(allowed.contains(&status), "unexpected {status:?}");
        // A cancellation by the request's timeout completes with
        // STATUS_IO_TIMEOUT (KMDF), counted with the cancellations.
        if status == Status::CANCELLED || status == Status::IO_TIMEOUT {
            cancelled += 1;
        } else {
            ok += 1;
        }
    }
    let c = sim.counters();
    assert_eq!(c.irps_sent as usize, outcome.accepted, "{c}");
    assert_eq!(c.irps_completed, c.irps_sent, "{c}");
    assert_eq!(c.irps_cancelled as usize, cancelled, "{c}");
    assert_eq!(c.requests_in_flight, 0, "{c}");
    assert_eq!(c.completion_routines_running, 0, "{c}");
    (ok, cancelled)
}

fn sim() -> Sim {
    Sim::new(
        SimConfig::default()
            .with_seed(3)
            .with_latency(Latency::new(0, 30)),
    )
}

#[test]
fn device_cancel_routine_races_device_completion() {
    let sim = sim();
    let device = ParkingDevice::new();
    let (_, link) = add_device(&sim, "park", GUID, device.clone());
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
    let outcome = race(&sim, &target, 3000, None, 0x0022_0000, |done| {
        while !done.load(Ordering::Relaxed) {
            if !device.complete_next(Status::SUCCESS, 1) {
                thread::yield_now();
            }
        }
    });
    let (ok, cancelled) = check(
        &sim,
        &outcome,
        &[Status::SUCCESS, Status::CANCELLED, Status::IO_TIMEOUT],
    );
    assert!(
        ok > 0 && cancelled > 0,
        "both outcomes expected: {ok} ok, {cancelled} cancelled"
    );
    assert_eq!(device.pending(), 0);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn simulator_parked_cancel_races_timed_completion() {
    let sim = sim();
    let (_, link) = add_device(&sim, "tests", GUID, Arc::new(TestsIoctlHandler::default()));
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
    static SLEEP_1MS: [u8; 12] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(SLEEP_1MS, encode_sleep(1));
    let outcome = race(&sim, &target, 2000, Some(&SLEEP_1MS), IOCTL_SLEEP, |_| {});
    let (ok, cancelled) = check(
        &sim,
        &outcome,
        &[Status::SUCCESS, Status::CANCELLED, Status::IO_TIMEOUT],
    );
    assert!(
        ok > 0 && cancelled > 0,
        "both outcomes expected: {ok} ok, {cancelled} cancelled"
    );
    drop(target);
    assert_clean(&sim);
}

#[test]
fn cancel_has_no_effect_on_uncancelable_irps() {
    let sim = sim();
    let device: Arc<dyn DeviceHandler> =
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(3)).with_delay_ms(1, false));
    let (_, link) = add_device(&sim, "slow", GUID, device);
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
    let outcome = race(&sim, &target, 300, None, 0x0022_0000, |_| {});
    let (ok, cancelled) = check(&sim, &outcome, &[Status::SUCCESS]);
    // Every IRP that reached the device completed successfully: a cancel (or
    // timeout) of a non-cancelable IRP does nothing. A cancel that landed
    // between a request's reuse and its send is remembered and refuses that
    // send instead (KMDF), so such sends are not among the accepted ones.
    assert_eq!((ok, cancelled), (outcome.accepted, 0));
    assert!(outcome.accepted >= 150, "{} of 300 sent", outcome.accepted);
    drop(target);
    assert_clean(&sim);
}

#[test]
fn close_races_sends_and_waits_for_every_routine() {
    for round in 0..20u64 {
        let sim = Sim::new(
            SimConfig::default()
                .with_seed(round)
                .with_latency(Latency::new(0, 20)),
        );
        let (_, link) = add_device(&sim, "tests", GUID, Arc::new(TestsIoctlHandler::default()));
        let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
        let target = open(&sim, &link, &events);
        let rec = Recorder::new();
        static SLEEP_LONG: [u8; 12] = [0x10, 0x27, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // 10 s
        let accepted = AtomicUsize::new(0);
        thread::scope(|s| {
            s.spawn(|| {
                let requests: Vec<SimRequest> = (0..8)
                    .map(|_| sim.create_request(Some(&target)).unwrap())
                    .collect();
                for req in &requests {
                    // SAFETY: 'static input.
                    unsafe {
                        if target
                            .format_request(
                                req,
                                RequestType::Ioctl,
                                IOCTL_SLEEP,
                                Some(RawBuffer::from_slice(&SLEEP_LONG)),
                                None,
                            )
                            .is_err()
                        {
                            continue;
                        }
                    }
                    if target
                        .send(req, SendOptions::default(), rec.clone())
                        .is_ok()
                    {
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                }
                // Requests may only be dropped once their completion arrived.
                while requests.iter().any(|r| r.is_in_flight()) {
                    thread::yield_now();
                }
            });
            s.spawn(|| {
                thread::sleep(Duration::from_micros(50 * round));
                target.close();
                // close returned: every accepted send's routine has returned.
                assert_eq!(target.outstanding(), 0);
            });
        });
        let n = accepted.load(Ordering::SeqCst);
        assert_eq!(rec.count(), n);
        assert!(rec.statuses().iter().all(|s| *s == Status::CANCELLED));
        drop(target);
        assert_clean(&sim);
    }
}

/// `WdfRequestCancelSentRequest` returns what `IoCancelIrp` returns: FALSE
/// when the device never made the IRP cancelable. The cancel is remembered:
/// the device sees it when it tries to make the IRP cancelable.
#[test]
fn cancel_sent_is_false_until_the_device_makes_the_request_cancelable() {
    let sim = Sim::new(SimConfig::manual());
    let device = ParkingDevice::uncancelable();
    let (_, link) = add_device(&sim, "hold", GUID, device.clone());
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
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
    assert!(!request.cancel_sent(), "no cancel routine: not initiated");
    let irp = device.take().expect("parked");
    assert!(irp.is_cancelled(), "the cancel is remembered");
    let routine: Arc<dyn dmf_sim::CancelRoutine> = Arc::new(|_: dmf_sim::IrpId| {});
    assert_eq!(
        irp.set_cancel_routine(routine),
        Err(Status::CANCELLED),
        "making a cancelled IRP cancelable fails: the device completes it"
    );
    irp.complete(Status::CANCELLED, 0);
    sim.advance(0);
    assert_eq!(rec.statuses(), vec![Status::CANCELLED]);
    drop((request, target));
    assert_clean(&sim);
}

/// KMDF remembers a cancel of a request that is not sent yet
/// (`FxRequestBase::m_Canceled`): its next send fails with STATUS_CANCELLED
/// without calling the completion routine, until the request is reused.
#[test]
fn a_cancel_before_the_send_is_remembered_until_reuse() {
    let sim = Sim::new(SimConfig::manual());
    let (_, link) = add_device(
        &sim,
        "fixed",
        GUID,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(2))),
    );
    let events = Events::new("t", &Log::default(), OnQuery::AcceptAndClose);
    let target = open(&sim, &link, &events);
    let request = sim.create_request(Some(&*target)).unwrap();
    let format = || {
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(&request, RequestType::Read, 0, None, None)
                .unwrap()
        }
    };
    format();
    assert!(!request.cancel_sent(), "not sent: nothing to cancel yet");
    let rec = Recorder::new();
    for _ in 0..2 {
        assert_eq!(
            target.send(&request, SendOptions::default(), rec.clone()),
            Err(Status::CANCELLED)
        );
    }
    sim.advance(0);
    assert_eq!(rec.count(), 0, "a refused send calls no routine");
    request.reuse().unwrap();
    format();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(0);
    assert_eq!(rec.statuses(), vec![Status::SUCCESS]);
    // A cancel after completion changes nothing for the next send.
    assert!(!request.cancel_sent());
    request.reuse().unwrap();
    format();
    target
        .send(&request, SendOptions::default(), rec.clone())
        .unwrap();
    sim.advance(0);
    assert_eq!(rec.statuses(), vec![Status::SUCCESS, Status::SUCCESS]);
    drop((request, target));
    assert_clean(&sim);
}
