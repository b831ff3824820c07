//! Request-target scenarios: sends, timeouts, cancel, reuse.

use super::*;

/// A request target on an open platform target: synchronous sends, an
/// asynchronous send cancelled, a reusable request sent twice and deleted.
pub fn request_target_send_cancel_reuse<B: Backend>() {
    let b = B::new(sim());
    let id = b
        .sim()
        .bus()
        .add_device(DeviceSpec::new(
            "rt",
            Arc::new(TestsIoctlHandler::default()),
        ))
        .unwrap();
    let link = b.sim().bus().device_link(id).unwrap();
    let platform = b.platform();
    let target = Arc::new(open_target(
        &platform,
        &link,
        "the first open of a new target succeeds",
    ));
    let module = RequestTarget::new(&platform, RequestTargetConfig::default()).unwrap();
    module.io_target_set(Arc::clone(&target)).unwrap();
    for ms in [0, 1, 3] {
        assert_eq!(
            module.send_synchronously(
                &encode_sleep(ms),
                &mut [],
                dmf_request_target::SendParams::ioctl(IOCTL_SLEEP)
            ),
            Ok(0)
        );
    }
    // A synchronous send with a timeout shorter than the device's sleep:
    // the framework cancels it and reports STATUS_IO_TIMEOUT.
    let timed = dmf_request_target::SendParams {
        timeout_ms: 5,
        ..dmf_request_target::SendParams::ioctl(IOCTL_SLEEP)
    };
    assert_eq!(
        module.send_synchronously(&encode_sleep(2_000), &mut [], timed),
        Err(Status::IO_TIMEOUT)
    );
    // An asynchronous send, cancelled.
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let done: dmf_request_target::Completion =
        Arc::new(move |c: &dmf_request_target::SendCompleted<'_>| {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = tx.lock().unwrap().send((c.status, c.client_context));
        });
    static LONG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let long = LONG.get_or_init(|| encode_sleep(10_000).to_vec());
    // SAFETY: `long` is 'static.
    let cancel = unsafe {
        module.send_ex_raw(
            Some(RawBuffer::from_slice(long)),
            None,
            dmf_request_target::SendParams::ioctl(IOCTL_SLEEP),
            Some(Arc::clone(&done)),
            7,
        )
    }
    .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert!(module.cancel(cancel), "the sent request is cancelled");
    assert_eq!(rx.recv_timeout(5 * SECOND).unwrap(), (Status::CANCELLED, 7));
    // A reusable request, sent twice, then deleted.
    let reuse = module.reuse_create().unwrap();
    static SHORT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let short = SHORT.get_or_init(|| encode_sleep(1).to_vec());
    for context in [8, 9] {
        // SAFETY: `short` is 'static.
        unsafe {
            module.reuse_send_raw(
                reuse,
                Some(RawBuffer::from_slice(short)),
                None,
                dmf_request_target::SendParams::ioctl(IOCTL_SLEEP),
                Some(Arc::clone(&done)),
                context,
            )
        }
        .unwrap();
        assert_eq!(
            rx.recv_timeout(5 * SECOND).unwrap(),
            (Status::SUCCESS, context)
        );
    }
    module.reuse_delete(reuse).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    module.close();
    drop(module);
    assert!(b.sim().wait_quiescent(10 * SECOND));
    target.close();
    drop(target);
    b.finish();
}

/// One case of the cancel matrix: how long the device sleeps, how long the
/// sender waits before cancelling.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// A short sleep, cancelled after a random wait: either outcome.
    Random,
    /// Sent, then cancelled at once: either outcome.
    Immediate,
    /// A short sleep, cancelled after its completion was delivered: too late.
    TooLate,
    /// A long sleep, cancelled early: cancelled.
    Early,
}

/// The cancel matrix (`send_ex` + `cancel`) and the reuse matrix (the same
/// cases on one reusable request), on a dispatch-level and a passive-level
/// module: every completion arrives once with its context and ids, in its
/// delivery context, and a cancel's result agrees with the status.
pub fn request_target_cancel_and_reuse_matrices<B: Backend>() {
    let b = B::new(sim());
    let id = b
        .sim()
        .bus()
        .add_device(DeviceSpec::new(
            "rt",
            Arc::new(TestsIoctlHandler::default()),
        ))
        .unwrap();
    let link = b.sim().bus().device_link(id).unwrap();
    let platform = b.platform();
    let target = Arc::new(open_target(&platform, &link, "open the target"));
    let mut rng = dmf_sim::SplitMix64::new(19);
    for (config, context) in [
        (RequestTargetConfig::default(), DeliveryContext::Dispatch),
        (RequestTargetConfig::passive(), DeliveryContext::Passive),
    ] {
        let module = RequestTarget::new(&platform, config).unwrap();
        module.io_target_set(Arc::clone(&target)).unwrap();
        let reuse = module.reuse_create().unwrap();
        for (k, case) in [Case::Random, Case::Immediate, Case::TooLate, Case::Early]
            .into_iter()
            .enumerate()
        {
            for reusing in [None, Some(reuse)] {
                let sleep_ms = match case {
                    Case::Random | Case::Immediate => rng.next_u64() % 15,
                    Case::TooLate => 5 + rng.next_u64() % 10,
                    Case::Early => 2_000,
                };
                let input = encode_sleep(sleep_ms as i32);
                let (tx, rx) = mpsc::channel();
                let tx = Mutex::new(tx);
                let done: dmf_request_target::Completion =
                    Arc::new(move |c: &dmf_request_target::SendCompleted<'_>| {
                        let _ = tx.lock().unwrap().send((
                            c.status,
                            c.client_context,
                            c.cancel_id,
                            c.reuse_id,
                            c.context,
                        ));
                    });
                let params = dmf_request_target::SendParams::ioctl(IOCTL_SLEEP);
                let buffer = Some(RawBuffer::from_slice(&input));
                // SAFETY: `input` lives until the completion, awaited below.
                let cancel = unsafe {
                    match reusing {
                        Some(r) => module.reuse_send_raw(r, buffer, None, params, Some(done), k),
                        None => module.send_ex_raw(buffer, None, params, Some(done), k),
                    }
                }
                .unwrap();
                let mut completion = None;
                match case {
                    Case::Random => std::thread::sleep(Duration::from_millis(rng.next_u64() % 15)),
                    Case::Immediate => {}
                    // Cancelled once its completion was delivered.
                    Case::TooLate => completion = Some(rx.recv_timeout(5 * SECOND).unwrap()),
                    Case::Early => std::thread::sleep(Duration::from_millis(5)),
                }
                let cancelled = module.cancel(cancel);
                let (status, client_context, cancel_id, reuse_id, delivered) =
                    completion.unwrap_or_else(|| rx.recv_timeout(5 * SECOND).unwrap());
                assert_eq!(
                    (client_context, cancel_id, reuse_id),
                    (k, Some(cancel), reusing)
                );
                assert_eq!(delivered, context, "{case:?}");
                match case {
                    Case::TooLate => {
                        assert!(
                            !cancelled,
                            "{case:?}: a cancel after completion is too late"
                        );
                        assert_eq!(status, Status::SUCCESS, "{case:?}");
                    }
                    Case::Early => {
                        assert!(cancelled, "{case:?}");
                        assert_eq!(status, Status::CANCELLED, "{case:?}");
                    }
                    Case::Random | Case::Immediate => {
                        assert!(
                            matches!(status, Status::SUCCESS | Status::CANCELLED),
                            "{case:?}: {status:?}"
                        );
                        if status == Status::CANCELLED {
                            assert!(cancelled, "{case:?}: cancelled without a cancel");
                        }
                    }
                }
                assert!(!module.cancel(cancel), "a dead id cancels nothing");
                assert!(
                    rx.recv_timeout(Duration::from_millis(1)).is_err(),
                    "one completion"
                );
            }
        }
        module.reuse_delete(reuse).unwrap();
        module.close();
        drop(module);
    }
    assert!(b.sim().wait_quiescent(10 * SECOND));
    target.close();
    drop(target);
    b.finish();
}
