//! Method contracts of `RequestTarget`: synchronous sends of
//! every type, completion buffers per type, per-call delivery context,
//! cancel-id uniqueness across request reuse, reusable requests (busy
//! detection, deferred deletion, resend from the callback), target
//! set/clear.

mod common;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use common::*;
use dmf_request_target::{
    CompletionDelivery, DeliveryContext, RequestTarget, RequestTargetConfig, ReuseDeletion,
    SendCompleted, SendContextConfig, SendParams,
};
use dmf_sim::{EchoDevice, ParkingDevice, Sim, SimConfig};
use dmf_wdf::{Event, IoTarget, Platform, RawBuffer, RequestType, Status};

fn echo() -> Fixture {
    Fixture::new(
        SimConfig::default(),
        Arc::new(EchoDevice::new()),
        RequestTargetConfig::default(),
    )
}

#[test]
fn synchronous_write_read_ioctl_report_bytes_transferred() {
    let f = echo();
    let m = &f.module;
    assert_eq!(
        m.send_synchronously(b"hello", &mut [], SendParams::write()),
        Ok(5)
    );
    let mut out = [0u8; 8];
    assert_eq!(
        m.send_synchronously(&[], &mut out, SendParams::read()),
        Ok(5)
    );
    assert_eq!(&out[..5], b"hello");
    let mut out = [0u8; 3];
    assert_eq!(
        m.send_synchronously(b"abcdef", &mut out, SendParams::ioctl(7)),
        Ok(3)
    );
    assert_eq!(&out, b"abc");
    assert_eq!(
        m.send_synchronously(b"x", &mut out, SendParams::internal_ioctl(7)),
        Ok(1)
    );
    assert_eq!(
        m.send_synchronously(b"x", &mut [], SendParams::new(RequestType::Invalid, 0)),
        Err(Status::INVALID_PARAMETER)
    );
    // Every send above reused the one pooled request.
    assert_eq!(m.context_count(), 1);
    f.finish();
}

#[test]
fn synchronous_timeout_and_no_timeout() {
    let device = ParkingDevice::new();
    let f = Fixture::new(
        SimConfig::default(),
        device.clone(),
        RequestTargetConfig::default(),
    );
    assert_eq!(
        f.module
            .send_synchronously(b"in", &mut [], SendParams::ioctl(1).with_timeout(20)),
        Err(Status::IO_TIMEOUT)
    );
    // Timeout 0 waits for the device, however long.
    let completer = {
        let device = device.clone();
        std::thread::spawn(move || {
            assert!(device.wait_for_pending(1, Duration::from_secs(5)));
            sleep_ms(50);
            device.complete_next(Status::SUCCESS, 2)
        })
    };
    let mut out = [0u8; 4];
    assert_eq!(
        f.module
            .send_synchronously(b"in", &mut out, SendParams::ioctl(1)),
        Ok(2)
    );
    assert!(completer.join().unwrap());
    f.finish();
}

#[test]
fn asynchronous_completion_reports_buffers_by_type() {
    let f = echo();
    let rec = Recorder::new();
    let write = b"payload".to_vec();
    let mut read = vec![0u8; 16];
    let ioctl_in = b"0123456789".to_vec();
    let mut ioctl_out = vec![0u8; 4];
    // SAFETY: the buffers live until the completions are awaited below.
    unsafe {
        let m = &f.module;
        m.send_raw(
            Some(RawBuffer::from_slice(&write)),
            None,
            SendParams::write(),
            Some(rec.callback()),
            1,
        )
        .unwrap();
        rec.expect(1);
        m.send_raw(
            None,
            Some(RawBuffer::from_mut_slice(&mut read)),
            SendParams::read(),
            Some(rec.callback()),
            2,
        )
        .unwrap();
        rec.expect(2);
        m.send_raw(
            Some(RawBuffer::from_slice(&ioctl_in)),
            Some(RawBuffer::from_mut_slice(&mut ioctl_out)),
            SendParams::ioctl(9),
            Some(rec.callback()),
            3,
        )
        .unwrap();
    }
    let r = rec.expect(3);
    assert_eq!(
        (r[0].request_type, r[0].status, r[0].information),
        (RequestType::Write, Status::SUCCESS, 7)
    );
    assert_eq!(
        (r[0].input.as_slice(), r[0].output.as_slice()),
        (&b"payload"[..], &b""[..])
    );
    assert_eq!(
        (r[1].request_type, r[1].information),
        (RequestType::Read, 7)
    );
    assert_eq!(
        (r[1].input.as_slice(), r[1].output.as_slice()),
        (&b""[..], &b"payload"[..])
    );
    assert_eq!(
        (r[2].request_type, r[2].information),
        (RequestType::Ioctl, 4)
    );
    // IOCTL: the whole input, the transferred part of the output.
    assert_eq!(
        (r[2].input.as_slice(), r[2].output.as_slice()),
        (&b"0123456789"[..], &b"0123"[..])
    );
    assert_eq!(
        r.iter().map(|r| r.client_context).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(r
        .iter()
        .all(|r| r.context == DeliveryContext::Dispatch && r.cancel_id.is_none()));
    assert_eq!(&read[..7], b"payload");
    f.finish();
}

#[test]
fn send_errors_return_the_context_and_call_nothing() {
    let f = echo();
    let rec = Recorder::new();
    // SAFETY: `input` outlives the sends; failed sends retain nothing.
    unsafe {
        let input = [1u8; 4];
        let bad = SendParams::new(RequestType::Invalid, 0);
        assert_eq!(
            f.module.send_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                bad,
                Some(rec.callback()),
                0
            ),
            Err(Status::INVALID_PARAMETER)
        );
        assert_eq!(
            f.module.send_ex_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                bad,
                Some(rec.callback()),
                0
            ),
            Err(Status::INVALID_PARAMETER)
        );
        f.module.io_target_clear();
        assert!(f.module.io_target().is_none());
        assert_eq!(
            f.module.send_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::write(),
                Some(rec.callback()),
                0
            ),
            Err(Status::INVALID_DEVICE_STATE)
        );
        assert_eq!(
            f.module
                .send_synchronously(&input, &mut [], SendParams::write()),
            Err(Status::INVALID_DEVICE_STATE)
        );
        f.module.io_target_set(Arc::clone(&f.target)).unwrap();
        f.module
            .send_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::write(),
                None,
                0,
            )
            .unwrap();
        f.module
            .send_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::write(),
                Some(rec.callback()),
                5,
            )
            .unwrap();
    }
    assert_eq!(rec.expect(1)[0].client_context, 5);
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(rec.count(), 1, "failed sends never call back");
    assert!(f.module.context_count() <= 2);
    assert_eq!(f.module.references(), 0);
    f.finish();
}

#[test]
fn changing_the_target_recreates_pooled_requests() {
    let f = echo();
    let second = Arc::new(f.sim.create_io_target().unwrap());
    let link = f.target.symbolic_link().unwrap();
    second
        .open(
            &dmf_wdf::OpenParams {
                symbolic_link: &link,
                open_mode: dmf_wdf::OpenMode::READ_WRITE,
                share_access: dmf_wdf::ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .unwrap();
    assert_eq!(
        f.module
            .send_synchronously(b"a", &mut [], SendParams::write()),
        Ok(1)
    );
    let live = f.sim.counters().live_requests;
    f.module.io_target_set(Arc::clone(&second)).unwrap();
    assert_eq!(
        f.module
            .send_synchronously(b"bb", &mut [], SendParams::write()),
        Ok(2)
    );
    assert_eq!(f.sim.counters().live_requests, live, "replaced, not added");
    assert_eq!(second.outstanding(), 0);
    f.module.io_target_clear();
    second.close();
    drop(second);
    f.finish();
}

#[test]
fn per_call_delivery_overrides_the_module_choice() {
    for module_passive in [false, true] {
        let config = RequestTargetConfig {
            passive_level: module_passive,
            ..RequestTargetConfig::default()
        };
        let f = Fixture::new(SimConfig::default(), Arc::new(EchoDevice::new()), config);
        let rec = Recorder::new();
        let sim = f.sim.clone();
        let blocking = Arc::clone(&rec);
        // A callback that blocks when it may: the simulator panics on a
        // blocking wait in dispatch context.
        let callback: dmf_request_target::Completion = Arc::new(move |c: &SendCompleted<'_>| {
            if c.context == DeliveryContext::Passive {
                let event = sim.create_event(false).unwrap();
                assert!(!event.wait(Some(1)));
            }
            blocking.record(c);
        });
        let input = [0u8; 1];
        for (i, delivery) in [
            CompletionDelivery::Module,
            CompletionDelivery::Dispatch,
            CompletionDelivery::Passive,
        ]
        .into_iter()
        .enumerate()
        {
            // SAFETY: `input` outlives the completions (awaited below).
            unsafe {
                f.module
                    .send_raw(
                        Some(RawBuffer::from_slice(&input)),
                        None,
                        SendParams::write().with_delivery(delivery),
                        Some(Arc::clone(&callback)),
                        i,
                    )
                    .unwrap();
            }
            rec.expect(i + 1);
        }
        let r = rec.expect(3);
        let module_ctx = if module_passive {
            DeliveryContext::Passive
        } else {
            DeliveryContext::Dispatch
        };
        assert_eq!(r[0].context, module_ctx);
        assert_eq!(r[1].context, DeliveryContext::Dispatch);
        assert_eq!(r[2].context, DeliveryContext::Passive);
        assert!(r[2].thread.contains("passive"), "{}", r[2].thread);
        drop(callback);
        f.finish();
    }
}

#[test]
fn cancel_ids_are_never_reused_with_the_request() {
    let device = ParkingDevice::new();
    let f = Fixture::new(
        SimConfig::default(),
        device.clone(),
        RequestTargetConfig::default(),
    );
    let rec = Recorder::new();
    let input = [0u8; 2];
    // SAFETY: `input` outlives every completion (awaited below).
    let send = || unsafe {
        f.module
            .send_ex_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::ioctl(1),
                Some(rec.callback()),
                0,
            )
            .unwrap()
    };
    let first = send();
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    assert!(device.complete_next(Status::SUCCESS, 0));
    rec.expect(1);
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    let second = send();
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    assert_eq!(
        f.module.context_count(),
        1,
        "the same request carries both sends"
    );
    assert_ne!(first, second);
    assert!(
        !f.module.cancel(first),
        "a finished send's id matches nothing"
    );
    assert_eq!(device.pending(), 1, "the second send was not cancelled");
    assert!(f.module.cancel(second));
    assert!(!f.module.cancel(second), "cancellation already requested");
    let r = rec.expect(2);
    assert_eq!(r[1].status, Status::CANCELLED);
    assert_eq!(r[1].cancel_id, Some(second));
    assert!(!f
        .module
        .cancel(dmf_request_target::CancelId::from_raw(u64::MAX).unwrap()));
    f.finish();
}

#[test]
fn reuse_busy_detection_and_deferred_delete() {
    let device = ParkingDevice::new();
    let f = Fixture::new(
        SimConfig::default(),
        device.clone(),
        RequestTargetConfig::default(),
    );
    let rec = Recorder::new();
    let input = [0u8; 2];
    let m = &f.module;
    let id = m.reuse_create().unwrap();
    assert_eq!(m.reuse_count(), 1);
    // SAFETY: `input` outlives the completions (awaited below).
    let reuse_send = || unsafe {
        m.reuse_send_raw(
            id,
            Some(RawBuffer::from_slice(&input)),
            None,
            SendParams::ioctl(1),
            Some(rec.callback()),
            7,
        )
    };
    let cancel_id = reuse_send().unwrap();
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    assert_eq!(
        reuse_send(),
        Err(Status::OBJECTID_NOT_FOUND),
        "busy while in flight"
    );
    let live = f.sim.counters().live_requests;
    assert_eq!(m.reuse_delete(id), Ok(ReuseDeletion::Deferred));
    assert_eq!(
        m.reuse_delete(id),
        Err(Status::OBJECTID_NOT_FOUND),
        "already deleted"
    );
    assert_eq!(reuse_send(), Err(Status::OBJECTID_NOT_FOUND));
    assert_eq!(
        f.sim.counters().live_requests,
        live,
        "still in flight: not deleted yet"
    );
    assert!(device.complete_next(Status::SUCCESS, 0));
    let r = rec.expect(1);
    assert_eq!(
        (r[0].reuse_id, r[0].cancel_id, r[0].client_context),
        (Some(id), Some(cancel_id), 7)
    );
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(
        f.sim.counters().live_requests,
        live - 1,
        "deleted after its completion"
    );
    assert_eq!(m.reuse_count(), 0);
    assert_eq!(m.reuse_delete(id), Err(Status::OBJECTID_NOT_FOUND));
    f.finish();
}

#[test]
fn reuse_without_target_and_after_a_refused_send() {
    let f = echo();
    let m = &f.module;
    m.io_target_clear();
    let id = m.reuse_create().expect("creation needs no target");
    let input = [3u8; 3];
    // SAFETY: `input` outlives the sends and their completions.
    unsafe {
        assert_eq!(
            m.reuse_send_raw(
                id,
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::write(),
                None,
                0
            ),
            Err(Status::INVALID_DEVICE_STATE)
        );
        m.io_target_set(Arc::clone(&f.target)).unwrap();
        f.sim.faults().set(
            dmf_sim::FaultPoint::SendRefusal,
            dmf_sim::FaultPlan::Next(1),
        );
        assert_eq!(
            m.reuse_send_raw(
                id,
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::write(),
                None,
                0
            ),
            Err(Status::INSUFFICIENT_RESOURCES)
        );
        // Idle again after the refusal.
        let rec = Recorder::new();
        m.reuse_send_raw(
            id,
            Some(RawBuffer::from_slice(&input)),
            None,
            SendParams::write(),
            Some(rec.callback()),
            1,
        )
        .unwrap();
        assert_eq!(rec.expect(1)[0].information, 3);
    }
    assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
    assert_eq!(m.reuse_delete(id), Ok(ReuseDeletion::Deleted));
    assert_eq!(m.reuse_count(), 0);
    f.finish();
}

/// Resends its reusable request from the completion callback `left` times.
struct Resender {
    module: OnceLock<Weak<RequestTarget<Sim>>>,
    id: OnceLock<dmf_request_target::ReuseId>,
    input: [u8; 12],
    left: Mutex<u32>,
    rec: Arc<Recorder>,
    me: OnceLock<Weak<Resender>>,
}

impl Resender {
    fn send(&self) -> dmf_wdf::Result<dmf_request_target::CancelId> {
        let module = self.module.get().unwrap().upgrade().unwrap();
        let me = self.me.get().unwrap().upgrade().unwrap();
        let callback: dmf_request_target::Completion = me;
        // SAFETY: `input` lives in the resender, which the test keeps alive
        // until every completion has been delivered.
        unsafe {
            module.reuse_send_raw(
                *self.id.get().unwrap(),
                Some(RawBuffer::from_slice(&self.input)),
                None,
                SendParams::ioctl(dmf_sim::ioctl_handler::IOCTL_SLEEP),
                Some(callback),
                0,
            )
        }
    }
}

impl dmf_request_target::SendCompletion for Resender {
    fn send_completed(&self, c: &SendCompleted<'_>) {
        self.rec.record(c);
        let mut left = self.left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            self.send()
                .expect("the request is free again inside its callback");
        }
    }
}

#[test]
fn reusable_request_can_be_resent_from_its_callback() {
    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        let f = Fixture::ioctl_handler(config);
        let module = Arc::new(f.module);
        let resender = Arc::new(Resender {
            module: OnceLock::new(),
            id: OnceLock::new(),
            input: dmf_sim::ioctl_handler::encode_sleep(1),
            left: Mutex::new(9),
            rec: Recorder::new(),
            me: OnceLock::new(),
        });
        resender.module.set(Arc::downgrade(&module)).unwrap();
        resender.me.set(Arc::downgrade(&resender)).unwrap();
        let id = module.reuse_create().unwrap();
        resender.id.set(id).unwrap();
        resender.send().unwrap();
        let r = resender.rec.expect(10);
        assert!(r
            .iter()
            .all(|r| r.status == Status::SUCCESS && r.reuse_id == Some(id)));
        let ids: Vec<_> = r.iter().map(|r| r.cancel_id.unwrap().get()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
        assert_eq!(module.reuse_delete(id), Ok(ReuseDeletion::Deleted));
        let module = Arc::into_inner(module).unwrap();
        Fixture {
            sim: f.sim,
            target: f.target,
            module,
        }
        .finish();
    }
}

#[test]
fn reuse_delete_from_its_own_callback_deletes_at_once() {
    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        let f = Fixture::new(SimConfig::default(), Arc::new(EchoDevice::new()), config);
        let module = Arc::new(f.module);
        let outcome = Arc::new(Mutex::new(None));
        let id = module.reuse_create().unwrap();
        let callback: dmf_request_target::Completion = {
            let (module, outcome) = (Arc::downgrade(&module), Arc::clone(&outcome));
            Arc::new(move |c: &SendCompleted<'_>| {
                let module = module.upgrade().unwrap();
                *outcome.lock().unwrap() = Some(module.reuse_delete(c.reuse_id.unwrap()));
            })
        };
        static INPUT: [u8; 2] = [1, 2];
        // SAFETY: INPUT is 'static.
        unsafe {
            module
                .reuse_send_raw(
                    id,
                    Some(RawBuffer::from_slice(&INPUT)),
                    None,
                    SendParams::write(),
                    Some(callback),
                    0,
                )
                .unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while outcome.lock().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::yield_now();
        }
        assert_eq!(*outcome.lock().unwrap(), Some(Ok(ReuseDeletion::Deleted)));
        assert!(f.sim.wait_quiescent(Duration::from_secs(5)));
        assert_eq!(module.reuse_count(), 0);
        assert_eq!(module.references(), 0);
        let module = Arc::into_inner(module).unwrap();
        Fixture {
            sim: f.sim,
            target: f.target,
            module,
        }
        .finish();
    }
}

#[test]
fn an_index_freed_in_a_callback_and_reused_is_not_released_twice() {
    // The callback deletes its reusable request and sends with a pooled
    // context that lands on the freed index; finishing the callback's
    // completion must leave that new, in-flight entry alone.
    let device = ParkingDevice::new();
    let config = RequestTargetConfig {
        contexts: SendContextConfig {
            preallocated_contexts: 0,
            ..SendContextConfig::default()
        },
        ..RequestTargetConfig::default()
    };
    let f = Fixture::new(SimConfig::default(), device.clone(), config);
    let module = Arc::new(f.module);
    static INPUT: [u8; 2] = [1, 2];
    let id = module.reuse_create().unwrap();
    let rec = Recorder::new();
    let callback: dmf_request_target::Completion = {
        let (module, rec) = (Arc::downgrade(&module), Arc::clone(&rec));
        Arc::new(move |c: &SendCompleted<'_>| {
            let module = module.upgrade().unwrap();
            assert_eq!(
                module.reuse_delete(c.reuse_id.unwrap()),
                Ok(ReuseDeletion::Deleted)
            );
            module
                .send(
                    Some(INPUT.to_vec().into()),
                    None,
                    SendParams::write(),
                    Some(rec.owned_callback()),
                    1,
                )
                .unwrap();
        })
    };
    // SAFETY: INPUT is 'static.
    unsafe {
        module
            .reuse_send_raw(
                id,
                Some(RawBuffer::from_slice(&INPUT)),
                None,
                SendParams::write(),
                Some(callback),
                0,
            )
            .unwrap();
    }
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    assert!(device.complete_next(Status::SUCCESS, 2));
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while module.references() > 1 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::yield_now();
    }
    assert_eq!(module.context_count(), 1);
    // A new send must not get the context that is still in flight.
    module
        .send(
            Some(INPUT.to_vec().into()),
            None,
            SendParams::write(),
            Some(rec.owned_callback()),
            2,
        )
        .unwrap();
    assert_eq!(module.context_count(), 2);
    assert!(device.wait_for_pending(2, Duration::from_secs(5)));
    assert_eq!(device.complete_all(Status::SUCCESS), 2);
    assert_eq!(rec.expect(2).len(), 2);
    let module = Arc::into_inner(module).unwrap();
    Fixture {
        sim: f.sim,
        target: f.target,
        module,
    }
    .finish();
}
