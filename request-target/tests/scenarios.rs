//! DMF's RequestTarget and CRT test scenarios on the simulator: RT-1 (sync), RT-2
//! (async, random timeout), RT-3 (async, short timeout), the cancel matrix
//! CRT-5 a..e with `send_ex` + `cancel`, and the reuse matrix CRT-6, each on
//! a dispatch-level and a passive-level module (DMF's two SelfTarget
//! instances). DMF's times are divided by 100 (cancel-sure cases by 20) and
//! run on the real-time clock.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use dmf_request_target::{
    CancelId, DeliveryContext, RequestTarget, RequestTargetConfig, ReuseDeletion, ReuseId,
    SendParams,
};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
use dmf_sim::Sim;
use dmf_wdf::Status;

fn both_levels(test: impl Fn(&str, RequestTargetConfig)) {
    test("dispatch", RequestTargetConfig::default());
    test("passive", RequestTargetConfig::passive());
}

fn expected_context(config: &RequestTargetConfig) -> DeliveryContext {
    if config.passive_level {
        DeliveryContext::Passive
    } else {
        DeliveryContext::Dispatch
    }
}

#[test]
fn rt1_synchronous_sleep_no_timeout() {
    both_levels(|name, config| {
        let f = Fixture::ioctl_handler(config);
        let mut rng = Rng::new(1);
        for _ in 0..20 {
            let sleep = rng.range(0, 10) as i32;
            let n = f
                .module
                .send_synchronously(
                    &encode_sleep(sleep),
                    &mut [],
                    SendParams::ioctl(IOCTL_SLEEP),
                )
                .unwrap_or_else(|s| panic!("{name}: sync send failed with {s:?}"));
            assert_eq!(n, 0, "{name}");
        }
        // The pool did not grow: one context serves every sequential send.
        assert_eq!(f.module.context_count(), 1, "{name}");
        f.finish();
    });
}

#[test]
fn rt2_asynchronous_sleep_random_timeout() {
    both_levels(|name, config| {
        let f = Fixture::ioctl_handler(config);
        let rec = Recorder::new();
        let mut rng = Rng::new(2);
        let mut sent = Vec::new();
        let inputs: Vec<_> = (0..24)
            .map(|_| encode_sleep(rng.range(0, 150) as i32))
            .collect();
        for (i, input) in inputs.iter().enumerate() {
            let sleep = i32::from_le_bytes(input[..4].try_into().unwrap()) as u32;
            let timeout = if rng.range(0, 1) == 0 {
                0
            } else {
                rng.range(1, 50)
            };
            f.module
                .send(
                    Some(input.to_vec().into()),
                    None,
                    SendParams::ioctl(IOCTL_SLEEP).with_timeout(timeout),
                    Some(rec.owned_callback()),
                    i,
                )
                .unwrap();
            sent.push((sleep, timeout));
        }
        let records = rec.expect(sent.len());
        for r in &records {
            let (sleep, timeout) = sent[r.client_context];
            assert_eq!(r.context, expected_context(&config), "{name}");
            assert_eq!(r.cancel_id, None);
            assert_eq!(r.input.len(), 12, "IOCTL input is reported whole");
            if timeout == 0 || sleep + 30 < timeout {
                assert_eq!(
                    r.status,
                    Status::SUCCESS,
                    "{name}: sleep {sleep} timeout {timeout}"
                );
            } else if timeout + 30 < sleep {
                assert!(
                    matches!(r.status, Status::CANCELLED | Status::IO_TIMEOUT),
                    "{name}: sleep {sleep} timeout {timeout}: {:?}",
                    r.status
                );
            } else {
                assert!(matches!(
                    r.status,
                    Status::SUCCESS | Status::CANCELLED | Status::IO_TIMEOUT
                ));
            }
        }
        let mut contexts: Vec<_> = records.iter().map(|r| r.client_context).collect();
        contexts.sort_unstable();
        assert_eq!(
            contexts,
            (0..sent.len()).collect::<Vec<_>>(),
            "each callback exactly once"
        );
        f.finish();
    });
}

#[test]
fn rt3_asynchronous_short_timeout_on_both_instances() {
    // DMF: the same send on the dispatch and the passive instance, with a
    // sleep of half the requested time between them.
    let d = Fixture::ioctl_handler(RequestTargetConfig::default());
    let p = Fixture::ioctl_handler(RequestTargetConfig::passive());
    let (rd, rp) = (Recorder::new(), Recorder::new());
    let mut rng = Rng::new(3);
    let mut inputs = Vec::new();
    for _ in 0..6 {
        inputs.push(Box::new(encode_sleep(rng.range(100, 150) as i32)));
    }
    for input in &inputs {
        let sleep = i32::from_le_bytes(input[..4].try_into().unwrap()) as u32;
        for (f, rec) in [(&d, &rd), (&p, &rp)] {
            f.module
                .send(
                    Some(input.to_vec().into()),
                    None,
                    SendParams::ioctl(IOCTL_SLEEP).with_timeout(5),
                    Some(rec.owned_callback()),
                    sleep as usize,
                )
                .unwrap();
            sleep_ms(sleep / 20);
        }
    }
    for (rec, ctx) in [
        (&rd, DeliveryContext::Dispatch),
        (&rp, DeliveryContext::Passive),
    ] {
        for r in rec.expect(inputs.len()) {
            assert!(
                matches!(r.status, Status::CANCELLED | Status::IO_TIMEOUT),
                "{r:?}"
            );
            assert_eq!(r.context, ctx);
        }
    }
    d.finish();
    p.finish();
}

/// One case of the cancel matrix. Returns (completion status, cancel result).
#[derive(Clone, Copy, Debug)]
enum Case {
    /// a) sleep t, wait random, cancel.
    A,
    /// b) sleep t, wait t, cancel.
    B,
    /// c) send then cancel immediately.
    C,
    /// d) long sleep, wait 4t, cancel: too late.
    D,
    /// e) long sleep, wait t/4, cancel: must be cancelled.
    E,
}

fn run_case(
    module: &RequestTarget<Sim>,
    rng: &mut Rng,
    case: Case,
    reuse: Option<ReuseId>,
    context: usize,
) -> (Status, bool, CancelId) {
    let rec = Recorder::new();
    let t = match case {
        Case::A | Case::B | Case::C => rng.range(0, 150),
        Case::D | Case::E => rng.range(200, 400),
    };
    let input = encode_sleep(t as i32);
    let buffer = Some(input.to_vec().into());
    let params = SendParams::ioctl(IOCTL_SLEEP);
    let callback = Some(rec.owned_callback());
    let id = match reuse {
        Some(r) => module.reuse_send(r, buffer, None, params, callback, context),
        None => module.send_ex(buffer, None, params, callback, context),
    }
    .unwrap();
    match case {
        Case::A => sleep_ms(rng.range(0, 150)),
        Case::B => sleep_ms(t),
        Case::C => {}
        Case::D => sleep_ms(4 * t),
        Case::E => sleep_ms(t / 4),
    }
    let cancelled = module.cancel(id);
    let r = &rec.expect(1)[0];
    assert_eq!(r.cancel_id, Some(id));
    assert_eq!(r.reuse_id, reuse);
    assert_eq!(r.client_context, context);
    match case {
        Case::D => {
            assert!(
                !cancelled,
                "{case:?}: cancel after completion must be too late"
            );
            assert_eq!(r.status, Status::SUCCESS, "{case:?}");
        }
        Case::E => {
            assert!(cancelled, "{case:?}");
            assert_eq!(r.status, Status::CANCELLED, "{case:?}");
        }
        Case::A | Case::B | Case::C => {
            assert!(
                matches!(r.status, Status::SUCCESS | Status::CANCELLED),
                "{case:?}: {:?}",
                r.status
            );
            if r.status == Status::CANCELLED {
                assert!(cancelled, "{case:?}: cancelled without a cancel");
            }
        }
    }
    // The id is dead now: a second cancel is a no-op.
    assert!(!module.cancel(id));
    (r.status, cancelled, id)
}

const MATRIX: [Case; 5] = [Case::A, Case::B, Case::C, Case::D, Case::E];

#[test]
fn crt5_cancel_matrix() {
    // Both instances run their matrices concurrently, as DMF's threads do.
    let handles: Vec<_> = [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, config)| {
        thread::spawn(move || {
            let f = Fixture::ioctl_handler(config);
            let mut rng = Rng::new(50 + i as u64);
            let mut ids = Vec::new();
            for round in 0..2 {
                for (k, case) in MATRIX.into_iter().enumerate() {
                    let (_, _, id) = run_case(&f.module, &mut rng, case, None, round * 10 + k);
                    ids.push(id.get());
                }
            }
            // Ids strictly increase and never repeat, although at most
            // two pooled requests carried every send (the context
            // returns to the pool after the callback, which races with
            // the next send of this thread).
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:x?}");
            assert!(f.module.context_count() <= 2);
            f.finish();
        })
    })
    .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn crt6_reuse_matrix() {
    let handles: Vec<_> = [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, config)| {
        thread::spawn(move || {
            let f = Fixture::ioctl_handler(config);
            let mut rng = Rng::new(60 + i as u64);
            let live_before = f.sim.counters().live_requests;
            let reuse = f.module.reuse_create().unwrap();
            assert_eq!(f.sim.counters().live_requests, live_before + 1);
            for (k, case) in MATRIX.into_iter().enumerate() {
                run_case(&f.module, &mut rng, case, Some(reuse), k);
            }
            assert_eq!(f.module.reuse_delete(reuse), Ok(ReuseDeletion::Deleted));
            // The last completion routine may still be returning.
            assert!(f.sim.wait_quiescent(std::time::Duration::from_secs(5)));
            assert_eq!(f.sim.counters().live_requests, live_before);
            assert_eq!(
                f.module.reuse_delete(reuse),
                Err(Status::OBJECTID_NOT_FOUND)
            );
            f.finish();
        })
    })
    .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn concurrent_senders_share_the_pool() {
    // Several threads mixing every method, on one module of each level.
    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        let f = Arc::new(Fixture::ioctl_handler(config));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let f = Arc::clone(&f);
                thread::spawn(move || {
                    let mut rng = Rng::new(70 + i);
                    let reuse = f.module.reuse_create().unwrap();
                    for k in 0..6 {
                        let case = MATRIX[rng.range(0, 2) as usize];
                        let r = if k % 2 == 0 { Some(reuse) } else { None };
                        run_case(&f.module, &mut rng, case, r, k);
                        let n = f
                            .module
                            .send_synchronously(
                                &encode_sleep(1),
                                &mut [],
                                SendParams::ioctl(IOCTL_SLEEP),
                            )
                            .unwrap();
                        assert_eq!(n, 0);
                    }
                    assert_eq!(f.module.reuse_delete(reuse), Ok(ReuseDeletion::Deleted));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // At most two per thread (see crt5_cancel_matrix).
        assert!(
            f.module.context_count() <= 8,
            "{}",
            f.module.context_count()
        );
        assert_eq!(f.module.reuse_count(), 0);
        Arc::into_inner(f).unwrap().finish();
    }
}
