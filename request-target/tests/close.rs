//! Close (without DMF's hangs, see `docs/dmf-differences.md`): methods refused once close has
//! begun, close waits for sends in flight on an event, deletes forgotten
//! reusable requests with a warning, optional cancel after a grace period,
//! concurrent closers, and sends racing close.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use dmf_request_target::{
    Completion, RequestTargetConfig, SendCompleted, SendContextConfig, SendParams,
};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
use dmf_sim::{ParkingDevice, SimConfig};
use dmf_wdf::{RawBuffer, Status};

#[test]
fn every_method_fails_once_close_has_begun() {
    let f = Fixture::ioctl_handler(RequestTargetConfig::default());
    let m = &f.module;
    let reuse = m.reuse_create().unwrap();
    let rec = Recorder::new();
    let input = encode_sleep(0);
    // SAFETY: `input` outlives the send's completion (close waits for it).
    let id = unsafe {
        m.send_ex_raw(
            Some(RawBuffer::from_slice(&input)),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(rec.callback()),
            0,
        )
    }
    .unwrap();
    m.close();
    assert!(m.is_closing());
    assert_eq!(rec.count(), 1, "close waited for the send in flight");
    let ids = Err(Status::INVALID_DEVICE_STATE);
    // SAFETY: failing sends retain nothing.
    unsafe {
        let b = Some(RawBuffer::from_slice(&input));
        let p = SendParams::ioctl(IOCTL_SLEEP);
        assert_eq!(
            m.send_raw(b, None, p, Some(rec.callback()), 0),
            Err(Status::INVALID_DEVICE_STATE)
        );
        assert_eq!(m.send_ex_raw(b, None, p, Some(rec.callback()), 0), ids);
        assert_eq!(
            m.reuse_send_raw(reuse, b, None, p, Some(rec.callback()), 0),
            ids
        );
    }
    // The safe sends too, handing their buffers back.
    let p = SendParams::ioctl(IOCTL_SLEEP);
    let owned = || Some(input.to_vec().into());
    let refused = m
        .send(owned(), None, p, Some(rec.owned_callback()), 0)
        .unwrap_err();
    assert_eq!(refused.status, Status::INVALID_DEVICE_STATE);
    assert_eq!(refused.input.unwrap().as_slice(), &input[..]);
    let status = |e: dmf_request_target::SendError<dmf_sim::Sim>| e.status;
    assert_eq!(
        m.send_ex(owned(), None, p, Some(rec.owned_callback()), 0)
            .map_err(status),
        ids
    );
    assert_eq!(
        m.reuse_send(reuse, owned(), None, p, Some(rec.owned_callback()), 0)
            .map_err(status),
        ids
    );
    assert_eq!(
        m.send_synchronously(&input, &mut [], SendParams::ioctl(IOCTL_SLEEP)),
        Err(Status::INVALID_DEVICE_STATE)
    );
    assert!(!m.cancel(id));
    assert_eq!(m.reuse_create(), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(m.reuse_delete(reuse), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(
        m.io_target_set(Arc::clone(&f.target)),
        Err(Status::INVALID_DEVICE_STATE)
    );
    assert!(m.io_target().is_none(), "close forgot the target");
    m.io_target_clear();
    assert_eq!(
        m.reuse_count(),
        0,
        "close deleted the forgotten reusable request"
    );
    assert_eq!(m.context_count(), 0);
    m.close(); // idempotent
    assert_eq!(rec.count(), 1);
    f.finish();
}

#[test]
fn close_waits_for_a_send_in_flight_without_polling() {
    let device = ParkingDevice::new();
    let f = Fixture::new(
        SimConfig::default(),
        device.clone(),
        RequestTargetConfig::default(),
    );
    let closed = Arc::new(AtomicBool::new(false));
    let seen_closed = Arc::new(AtomicBool::new(true));
    let callback: Completion = {
        let (closed, seen) = (Arc::clone(&closed), Arc::clone(&seen_closed));
        Arc::new(move |_c: &SendCompleted<'_>| {
            seen.store(closed.load(Ordering::SeqCst), Ordering::SeqCst)
        })
    };
    let input = [0u8; 4];
    // SAFETY: `input` outlives the completion: close (below) waits for it.
    unsafe {
        f.module
            .send_raw(
                Some(RawBuffer::from_slice(&input)),
                None,
                SendParams::ioctl(1),
                Some(callback),
                0,
            )
            .unwrap();
    }
    assert!(device.wait_for_pending(1, Duration::from_secs(5)));
    let module = Arc::new(f.module);
    let closer = {
        let (module, closed) = (Arc::clone(&module), Arc::clone(&closed));
        thread::spawn(move || {
            module.close();
            closed.store(true, Ordering::SeqCst);
        })
    };
    // A second closer waits for the first one.
    let second = {
        let module = Arc::clone(&module);
        thread::spawn(move || module.close())
    };
    sleep_ms(100);
    assert!(
        !closed.load(Ordering::SeqCst),
        "close must wait for the send in flight"
    );
    assert!(!second.is_finished());
    assert!(device.complete_next(Status::SUCCESS, 0));
    closer.join().unwrap();
    second.join().unwrap();
    assert!(
        !seen_closed.load(Ordering::SeqCst),
        "the callback ran before close returned"
    );
    let module = Arc::into_inner(module).unwrap();
    Fixture {
        sim: f.sim,
        target: f.target,
        module,
    }
    .finish();
}

#[test]
fn close_cancels_sends_after_the_grace_period() {
    let config = RequestTargetConfig {
        passive_level: true,
        contexts: SendContextConfig {
            cancel_in_flight_on_close_after_ms: Some(30),
            ..SendContextConfig::default()
        },
    };
    let f = Fixture::ioctl_handler(config);
    let rec = Recorder::new();
    let input = encode_sleep(60_000);
    f.module
        .send(
            Some(input.to_vec().into()),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(rec.owned_callback()),
            0,
        )
        .unwrap();
    let start = Instant::now();
    f.module.close();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(rec.expect(1)[0].status, Status::CANCELLED);
    f.finish();
}

/// Captures formatted tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn close_deletes_forgotten_reuse_requests_and_logs_them() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let f = Fixture::ioctl_handler(RequestTargetConfig::default());
        let ids: Vec<_> = (0..3).map(|_| f.module.reuse_create().unwrap()).collect();
        // One of them was used and is idle, none deleted.
        assert_eq!(
            f.module
                .send_synchronously(&encode_sleep(0), &mut [], SendParams::ioctl(IOCTL_SLEEP)),
            Ok(0)
        );
        let live = f.sim.counters().live_requests;
        assert!(live >= 4);
        let start = Instant::now();
        f.module.close();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "close must not wait for reuse_delete"
        );
        assert_eq!(f.module.reuse_count(), 0);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        for id in &ids {
            assert!(log.contains(&format!("reuse_id={}", id.get())), "{log}");
        }
        assert_eq!(log.matches("did not delete").count(), 3, "{log}");
        f.finish();
    });
}

#[test]
fn sends_racing_close_either_fail_cleanly_or_complete_before_close_returns() {
    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        for round in 0..5u64 {
            let f = Arc::new(Fixture::ioctl_handler(config));
            let closed = Arc::new(AtomicBool::new(false));
            let late = Arc::new(AtomicUsize::new(0));
            let completions = Arc::new(AtomicUsize::new(0));
            let callback: Completion = {
                let (closed, late, completions) = (
                    Arc::clone(&closed),
                    Arc::clone(&late),
                    Arc::clone(&completions),
                );
                Arc::new(move |_c: &SendCompleted<'_>| {
                    if closed.load(Ordering::SeqCst) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                    completions.fetch_add(1, Ordering::SeqCst);
                })
            };
            static INPUT: [u8; 12] = [0; 12]; // sleep 0 ms, 'static: outlives every send
            let accepted = Arc::new(AtomicUsize::new(0));
            let senders: Vec<_> = (0..3)
                .map(|i| {
                    let (f, callback, accepted) =
                        (Arc::clone(&f), Arc::clone(&callback), Arc::clone(&accepted));
                    thread::spawn(move || {
                        let mut rng = Rng::new(round * 10 + i);
                        let reuse = f.module.reuse_create().ok();
                        loop {
                            let b = Some(RawBuffer::from_slice(&INPUT));
                            let p = SendParams::ioctl(IOCTL_SLEEP).with_timeout(rng.range(0, 2));
                            let cb = Some(Arc::clone(&callback));
                            // SAFETY: INPUT is 'static and never written.
                            // Ok(true): an accepted asynchronous send.
                            let result = unsafe {
                                match rng.range(0, 3) {
                                    0 => f.module.send_raw(b, None, p, cb, 0).map(|()| true),
                                    1 => f.module.send_ex_raw(b, None, p, cb, 0).map(|id| {
                                        f.module.cancel(id);
                                        true
                                    }),
                                    2 => match reuse {
                                        Some(r) => f
                                            .module
                                            .reuse_send_raw(r, b, None, p, cb, 0)
                                            .map(|_| true),
                                        None => Err(Status::INVALID_DEVICE_STATE),
                                    },
                                    _ => f
                                        .module
                                        .send_synchronously(&INPUT, &mut [], p)
                                        .map(|_| false),
                                }
                            };
                            match result {
                                Ok(is_async) => {
                                    if is_async {
                                        accepted.fetch_add(1, Ordering::SeqCst);
                                    }
                                }
                                Err(Status::INVALID_DEVICE_STATE) if f.module.is_closing() => {
                                    return
                                }
                                // Reusable request still busy.
                                Err(Status::OBJECTID_NOT_FOUND) => {}
                                // A synchronous send timing out (1-2 ms timeout).
                                Err(Status::IO_TIMEOUT) => {}
                                Err(s) => panic!("unexpected {s:?}"),
                            }
                        }
                    })
                })
                .collect();
            sleep_ms(5 + (round as u32) * 3);
            f.module.close();
            closed.store(true, Ordering::SeqCst);
            for s in senders {
                s.join().unwrap();
            }
            assert_eq!(
                late.load(Ordering::SeqCst),
                0,
                "a completion arrived after close returned"
            );
            // Exactly one callback per accepted send, all before close returned.
            assert_eq!(
                completions.load(Ordering::SeqCst),
                accepted.load(Ordering::SeqCst)
            );
            assert!(accepted.load(Ordering::SeqCst) > 0);
            drop(callback);
            Arc::into_inner(f).unwrap().finish();
        }
    }
}

#[test]
fn dropping_the_module_closes_it() {
    let f = Fixture::ioctl_handler(RequestTargetConfig::passive());
    let rec = Recorder::new();
    let input = encode_sleep(20);
    f.module
        .send(
            Some(input.to_vec().into()),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(rec.owned_callback()),
            0,
        )
        .unwrap();
    let Fixture {
        sim,
        target,
        module,
    } = f;
    drop(module);
    assert_eq!(rec.count(), 1);
    assert_eq!(rec.last().status, Status::SUCCESS);
    drop(target);
    assert!(sim.wait_quiescent(Duration::from_secs(5)));
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    let _ = std::io::stderr().flush();
}
