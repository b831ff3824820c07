//! Bad input for every layer, through the public APIs: stale and foreign
//! handles, wrong buffer sizes, zero lengths, invalid request types, huge
//! timeouts, callbacks that call back into the module. Each case asserts the
//! clear status the layer returns (the list is in the README, "Bad input and
//! what you get").

use dmf_sim::NoTargetEvents;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, EnumerationDisposition, PoolBuffer, PutError, SinkPool,
};
use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, StreamClient,
    StreamCompletion,
};
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    PnpRegisterWhen, TargetHandle, TargetStateType,
};
use dmf_request_target::{
    CancelId, Completion, RequestTarget, RequestTargetConfig, ReuseId, SendCompleted,
    SendContextConfig, SendParams, Sender,
};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER, IOCTL_ZEROSIZE};
use dmf_sim::{
    DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, SimIoTarget, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_wdf::{
    Guid, IoTarget, OpenMode, OpenParams, Platform, RawBuffer, RequestType, ShareAccess, Status,
};

const WAIT: Duration = Duration::from_secs(10);

fn handler() -> Arc<TestsIoctlHandler> {
    Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
        max_random_delay_ms: 0,
        handle_internal_ioctls: false,
    }))
}

/// A simulator with one Tests_IoctlHandler device and an open target to it.
fn device() -> (Sim, Arc<SimIoTarget>) {
    let sim = Sim::new(SimConfig::default());
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("bad-input", handler()))
        .unwrap();
    let link = sim.bus().device_link(id).unwrap();
    let target = sim.create_io_target().unwrap();
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .unwrap();
    (sim, Arc::new(target))
}

fn assert_clean(sim: &Sim) {
    assert!(sim.wait_quiescent(WAIT));
    assert!(sim.counters().is_clean(), "{}", sim.counters());
    assert!(sim.take_callback_panics().is_empty());
}

/// A completion callback sending `(status, client_context)` to a channel.
fn channel_callback() -> (Completion, mpsc::Receiver<(Status, usize)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let cb: Completion = Arc::new(move |c: &SendCompleted<'_>| {
        let _ = tx.lock().unwrap().send((c.status, c.client_context));
    });
    (cb, rx)
}

// ----------------------------------------------------------------------
// buffer-pool
// ----------------------------------------------------------------------

#[test]
fn buffer_pool_zero_sizes_are_invalid_parameters() {
    let sim = Sim::new(SimConfig::manual());
    assert_eq!(
        BufferPool::new(&sim, BufferPoolConfig::new(4, 0)).err(),
        Some(Status::INVALID_PARAMETER)
    );
    assert_eq!(
        BufferPool::new(&sim, BufferPoolConfig::new(0, 32)).err(),
        Some(Status::INVALID_PARAMETER)
    );
    // Zero buffers are fine with look-aside; a zero context is an empty slice.
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(0, 32).with_look_aside(true)).unwrap();
    let b = pool.get().unwrap();
    assert_eq!(b.context().len(), 0);
    assert_eq!(b.data().len(), 32);
    drop(b);
    drop(pool);
    assert_clean(&sim);
}

#[test]
fn buffer_pool_empty_gets_are_unsuccessful() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 8)).unwrap();
    let held = pool.get().unwrap();
    assert_eq!(pool.get().err(), Some(Status::UNSUCCESSFUL));
    let sink = SinkPool::new(&sim);
    assert_eq!(sink.get().err(), Some(Status::UNSUCCESSFUL));
    drop(held);
    drop((pool, sink));
    assert_clean(&sim);
}

#[test]
fn buffer_pool_foreign_buffer_is_refused_and_handed_back() {
    let sim = Sim::new(SimConfig::manual());
    let a = BufferPool::new(&sim, BufferPoolConfig::new(2, 16)).unwrap();
    let b = BufferPool::new(&sim, BufferPoolConfig::new(2, 16)).unwrap();
    let buffer = a.get().unwrap();
    let refused = b.put(buffer).unwrap_err();
    assert_eq!(refused.status(), Status::INVALID_PARAMETER);
    assert!(matches!(refused, PutError::ForeignBuffer(_)));
    assert_eq!(b.count(), 2, "the foreign buffer did not enter b");
    let buffer = refused.into_buffer().unwrap();
    assert!(buffer.is_from(&a));
    let refused = b.put_at_head(buffer).unwrap_err();
    assert_eq!(refused.status(), Status::INVALID_PARAMETER);
    drop(refused); // goes home to a
    assert_eq!(a.count(), 2);
    drop((a, b));
    assert_clean(&sim);
}

#[test]
fn buffer_pool_timer_put_without_timer_is_invalid_device_request() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 16)).unwrap();
    let sink = SinkPool::new(&sim);
    let refused = sink
        .put_with_timer(
            pool.get().unwrap(),
            10,
            Arc::new(|_: &SinkPool<Sim>, _: PoolBuffer<Sim>| {}),
        )
        .unwrap_err();
    assert_eq!(refused.status(), Status::INVALID_DEVICE_REQUEST);
    assert!(refused.into_buffer().is_some());
    assert_eq!(sink.count(), 0);
    assert_eq!(pool.count(), 1);
    drop((pool, sink));
    assert_clean(&sim);
}

#[test]
fn buffer_pool_overrun_is_heap_corruption_and_the_buffer_still_comes_home() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 16)).unwrap();
    let b = pool.get().unwrap();
    // SAFETY: the guard bytes sit right after the data area inside the same
    // block (buffer-pool's documented layout); this writes one of them, as a
    // client overrunning its buffer by one byte would.
    unsafe { b.data_ptr().as_ptr().add(b.buffer_size()).write(0xEE) };
    let err = pool.put(b).unwrap_err();
    assert_eq!(err.status(), Status::HEAP_CORRUPTION);
    assert!(err.into_buffer().is_none(), "the put was done anyway");
    assert_eq!(pool.count(), 1);
    assert_eq!(pool.overruns_detected(), 1);
    drop(pool);
    assert_clean(&sim);
}

#[test]
fn buffer_pool_huge_timer_timeout_does_not_overflow() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 16).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let expired = Arc::new(AtomicUsize::new(0));
    let e = Arc::clone(&expired);
    sink.put_with_timer(
        pool.get().unwrap(),
        u64::MAX,
        Arc::new(move |_: &SinkPool<Sim>, _: PoolBuffer<Sim>| {
            e.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    sim.advance(1_000_000);
    assert_eq!(expired.load(Ordering::SeqCst), 0);
    assert_eq!(sink.count(), 1);
    let mut remaining = None;
    sink.enumerate(|entry| {
        remaining = entry.remaining_ms();
        EnumerationDisposition::ContinueEnumeration
    });
    assert!(remaining.unwrap() > 1_000_000_000);
    drop(sink.get().unwrap());
    assert_eq!(pool.count(), 1);
    drop((pool, sink));
    assert_clean(&sim);
}

#[test]
fn buffer_pool_expiry_callback_may_call_back_into_its_sink() {
    let sim = Sim::new(SimConfig::manual());
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(2, 16).with_timers(true)).unwrap();
    let sink = SinkPool::new(&sim);
    let fired = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&fired);
    // First expiry: re-arm in the same sink from the callback; second: go home
    // after counting and taking the other buffer out of the sink.
    let again: Arc<dyn dmf_buffer_pool::ExpiryCallback<Sim>> =
        Arc::new(move |sink: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
            let n = f.fetch_add(1, Ordering::SeqCst);
            let _ = sink.count();
            if n == 0 {
                let me: Arc<dyn dmf_buffer_pool::ExpiryCallback<Sim>> =
                    Arc::new(|sink: &SinkPool<Sim>, b: PoolBuffer<Sim>| {
                        drop(sink.get());
                        drop(b);
                    });
                sink.put_with_timer(b, 5, me).unwrap();
            } else {
                drop(b);
            }
        });
    sink.put_with_timer(pool.get().unwrap(), 5, again).unwrap();
    sink.put(pool.get().unwrap()).unwrap();
    sim.advance(5);
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert_eq!(sink.count(), 2);
    sim.advance(5);
    assert_eq!(sink.count(), 0);
    assert_eq!(pool.count(), 2);
    drop((pool, sink));
    assert_clean(&sim);
}

// ----------------------------------------------------------------------
// request-target
// ----------------------------------------------------------------------

#[test]
fn request_target_without_target_is_invalid_device_state() {
    let sim = Sim::new(SimConfig::default());
    let rt = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
    let params = SendParams::ioctl(IOCTL_SLEEP);
    assert_eq!(
        rt.send_synchronously(&encode_sleep(0), &mut [], params),
        Err(Status::INVALID_DEVICE_STATE)
    );
    // SAFETY: no buffer is passed.
    let r = unsafe { rt.send_raw(None, None, params, None, 0) };
    assert_eq!(r, Err(Status::INVALID_DEVICE_STATE));
    drop(rt);
    assert_clean(&sim);
}

#[test]
fn request_target_invalid_request_type_is_invalid_parameter() {
    let (sim, target) = device();
    let rt = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
    rt.io_target_set(Arc::clone(&target)).unwrap();
    let params = SendParams::new(RequestType::Invalid, IOCTL_SLEEP);
    assert_eq!(
        rt.send_synchronously(&encode_sleep(0), &mut [], params),
        Err(Status::INVALID_PARAMETER)
    );
    let (cb, rx) = channel_callback();
    let input = encode_sleep(0);
    // SAFETY: `input` outlives the send (it is refused).
    let r = unsafe {
        rt.send_ex_raw(
            Some(RawBuffer::from_slice(&input)),
            None,
            params,
            Some(cb),
            1,
        )
    };
    assert_eq!(r.err(), Some(Status::INVALID_PARAMETER));
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "no callback for a refused send"
    );
    drop(rt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

#[test]
fn request_target_wrong_buffer_size_and_zero_lengths() {
    let (sim, target) = device();
    let rt = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
    rt.io_target_set(Arc::clone(&target)).unwrap();
    // A Sleep input shorter than the structure: the device's status.
    assert_eq!(
        rt.send_synchronously(&[0u8; 3], &mut [], SendParams::ioctl(IOCTL_SLEEP)),
        Err(Status::BUFFER_TOO_SMALL)
    );
    // No buffers at all: a zero-size transfer.
    assert_eq!(
        rt.send_synchronously(&[], &mut [], SendParams::ioctl(IOCTL_ZEROSIZE)),
        Ok(0)
    );
    assert_eq!(
        rt.send_synchronously(&[], &mut [], SendParams::ioctl(IOCTL_ZEROBUFFER)),
        Ok(0)
    );
    let mut out = [0xFFu8; 7];
    assert_eq!(
        rt.send_synchronously(&[], &mut out, SendParams::ioctl(IOCTL_ZEROBUFFER)),
        Ok(7)
    );
    assert_eq!(out, [0u8; 7]);
    drop(rt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

#[test]
fn request_target_stale_and_foreign_ids() {
    let (sim, target) = device();
    let a = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
    let b = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
    a.io_target_set(Arc::clone(&target)).unwrap();
    b.io_target_set(Arc::clone(&target)).unwrap();
    let (cb, rx) = channel_callback();
    let input = encode_sleep(10_000);
    // SAFETY: `input` outlives the send: we wait for its completion below.
    let id = unsafe {
        a.send_ex_raw(
            Some(RawBuffer::from_slice(&input)),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(cb.clone()),
            7,
        )
    }
    .unwrap();
    // A foreign id (another module's send) and made-up ids do nothing.
    assert!(!b.cancel(id));
    assert!(!a.cancel(CancelId::from_raw(u64::MAX).unwrap()));
    assert!(CancelId::from_raw(0).is_none());
    // The right one works, once.
    assert!(a.cancel(id));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (Status::CANCELLED, 7));
    // Stale: its send completed.
    assert!(!a.cancel(id));

    // Reuse ids: unknown, foreign, deleted, busy.
    let made_up = ReuseId::from_raw(u64::MAX).unwrap();
    // SAFETY: no buffers.
    let r = unsafe {
        a.reuse_send_raw(
            made_up,
            None,
            None,
            SendParams::ioctl(IOCTL_ZEROSIZE),
            None,
            0,
        )
    };
    assert_eq!(r.err(), Some(Status::OBJECTID_NOT_FOUND));
    let rid = a.reuse_create().unwrap();
    assert_eq!(b.reuse_delete(rid).err(), Some(Status::OBJECTID_NOT_FOUND));
    // SAFETY: `input` outlives the send (waited for below).
    let sent = unsafe {
        a.reuse_send_raw(
            rid,
            Some(RawBuffer::from_slice(&input)),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(cb.clone()),
            8,
        )
    }
    .unwrap();
    // Busy while in flight.
    // SAFETY: refused (busy), nothing retained.
    let busy =
        unsafe { a.reuse_send_raw(rid, None, None, SendParams::ioctl(IOCTL_ZEROSIZE), None, 0) };
    assert_eq!(busy.err(), Some(Status::OBJECTID_NOT_FOUND));
    assert!(a.cancel(sent));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (Status::CANCELLED, 8));
    assert!(a.reuse_delete(rid).is_ok());
    assert_eq!(a.reuse_delete(rid).err(), Some(Status::OBJECTID_NOT_FOUND));
    drop((a, b));
    target.close();
    drop(target);
    assert_clean(&sim);
}

#[test]
fn request_target_after_close_everything_is_invalid_device_state() {
    let (sim, target) = device();
    let rt = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
    rt.io_target_set(Arc::clone(&target)).unwrap();
    let rid = rt.reuse_create().unwrap();
    rt.close();
    let p = SendParams::ioctl(IOCTL_ZEROSIZE);
    assert_eq!(
        rt.send_synchronously(&[], &mut [], p),
        Err(Status::INVALID_DEVICE_STATE)
    );
    // SAFETY: no buffers.
    unsafe {
        assert_eq!(
            rt.send_raw(None, None, p, None, 0),
            Err(Status::INVALID_DEVICE_STATE)
        );
        assert_eq!(
            rt.send_ex_raw(None, None, p, None, 0).err(),
            Some(Status::INVALID_DEVICE_STATE)
        );
        assert_eq!(
            rt.reuse_send_raw(rid, None, None, p, None, 0).err(),
            Some(Status::INVALID_DEVICE_STATE)
        );
    }
    assert_eq!(rt.reuse_create().err(), Some(Status::INVALID_DEVICE_STATE));
    assert_eq!(
        rt.reuse_delete(rid).err(),
        Some(Status::INVALID_DEVICE_STATE)
    );
    assert_eq!(
        rt.io_target_set(Arc::clone(&target)).err(),
        Some(Status::INVALID_DEVICE_STATE)
    );
    rt.close(); // idempotent
    drop(rt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

#[test]
fn request_target_huge_timeouts_and_context_limit() {
    let (sim, target) = device();
    let rt = RequestTarget::new(
        &sim,
        RequestTargetConfig {
            contexts: SendContextConfig {
                max_contexts: 1,
                ..SendContextConfig::default()
            },
            ..RequestTargetConfig::default()
        },
    )
    .unwrap();
    rt.io_target_set(Arc::clone(&target)).unwrap();
    let p = SendParams::ioctl(IOCTL_SLEEP).with_timeout(u32::MAX);
    assert_eq!(rt.send_synchronously(&encode_sleep(1), &mut [], p), Ok(0));
    let (cb, rx) = channel_callback();
    let input = encode_sleep(10_000);
    // SAFETY: `input` outlives the send (waited for below).
    let id = unsafe {
        rt.send_ex_raw(
            Some(RawBuffer::from_slice(&input)),
            None,
            p,
            Some(cb.clone()),
            1,
        )
    }
    .unwrap();
    // The only context is busy.
    // SAFETY: refused, nothing retained.
    let second = unsafe { rt.send_raw(None, None, SendParams::ioctl(IOCTL_ZEROSIZE), Some(cb), 2) };
    assert_eq!(second, Err(Status::INSUFFICIENT_RESOURCES));
    assert!(rt.cancel(id));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (Status::CANCELLED, 1));
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    drop(rt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

/// What the re-entrant callback saw: status, cancel of its own id,
/// reuse create+delete, resend of the same reusable request.
type Seen = (
    Status,
    bool,
    dmf_wdf::Result<()>,
    Option<dmf_wdf::Result<()>>,
);

/// A completion callback that calls back into its module: resends the same
/// reusable request (with itself as callback), cancels its own finished id,
/// creates and deletes reuse ids.
#[test]
fn request_target_callbacks_may_call_back_into_the_module() {
    let (sim, target) = device();
    let rt = Arc::new(RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap());
    rt.io_target_set(Arc::clone(&target)).unwrap();
    let module: Weak<RequestTarget<Sim>> = Arc::downgrade(&rt);
    let me: Arc<OnceLock<Completion>> = Arc::new(OnceLock::new());
    let (tx, rx) = mpsc::channel::<(u64, Seen)>();
    let tx = Mutex::new(tx);
    let rounds = AtomicU64::new(0);
    let cb: Completion = {
        let me = Arc::downgrade(&me);
        Arc::new(move |c: &SendCompleted<'_>| {
            let rt = module.upgrade().unwrap();
            let n = rounds.fetch_add(1, Ordering::SeqCst);
            // Cancelling the send that is completing: too late.
            let cancel_own = rt.cancel(c.cancel_id.unwrap());
            let reuse = rt
                .reuse_create()
                .and_then(|id| rt.reuse_delete(id).map(|_| ()));
            let resend = (n < 3).then(|| {
                let params = SendParams::ioctl(IOCTL_ZEROSIZE);
                let cb = me.upgrade().and_then(|m| m.get().cloned());
                // SAFETY: no buffers.
                unsafe { rt.reuse_send_raw(c.reuse_id.unwrap(), None, None, params, cb, 0) }
                    .map(|_| ())
            });
            let _ = tx
                .lock()
                .unwrap()
                .send((n, (c.status, cancel_own, reuse, resend)));
        })
    };
    let _ = me.set(Arc::clone(&cb));
    let rid = rt.reuse_create().unwrap();
    // SAFETY: no buffers.
    unsafe {
        rt.reuse_send_raw(
            rid,
            None,
            None,
            SendParams::ioctl(IOCTL_ZEROSIZE),
            Some(cb),
            0,
        )
    }
    .unwrap();
    // With inline completion each resend completes inside `reuse_send`, so
    // the rounds nest and report innermost first: compare them by round.
    let mut rounds_seen: Vec<(u64, Seen)> =
        (0..4).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
    rounds_seen.sort_by_key(|(n, _)| *n);
    for (i, (n, seen)) in rounds_seen.into_iter().enumerate() {
        assert_eq!(n, i as u64);
        let resend = if n < 3 { Some(Ok(())) } else { None };
        assert_eq!(seen, (Status::SUCCESS, false, Ok(()), resend), "round {n}");
    }
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    assert!(sim.wait_quiescent(WAIT));
    assert!(rt.reuse_delete(rid).is_ok());
    drop(me);
    let rt = Arc::try_unwrap(rt).ok().unwrap();
    drop(rt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

// ----------------------------------------------------------------------
// continuous-request-target
// ----------------------------------------------------------------------

fn stream_config(requests: u32) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: requests,
        buffer_count_output: requests,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        ..ContinuousRequestTargetConfig::default()
    }
}

#[test]
fn crt_inconsistent_configurations_are_invalid_parameters() {
    let sim = Sim::new(SimConfig::default());
    let bad = [
        // Buffers counted but of size zero.
        ContinuousRequestTargetConfig {
            buffer_count_output: 2,
            buffer_output_size: 0,
            ..stream_config(1)
        },
        ContinuousRequestTargetConfig {
            buffer_count_input: 2,
            buffer_input_size: 0,
            ..stream_config(1)
        },
        // Streaming with output buffers but none to stream with.
        ContinuousRequestTargetConfig {
            buffer_count_output: 0,
            ..stream_config(1)
        },
        // Look-aside without a buffer size.
        ContinuousRequestTargetConfig {
            enable_look_aside_output: true,
            buffer_count_output: 0,
            buffer_output_size: 0,
            ..stream_config(1)
        },
    ];
    for config in bad {
        assert!(config.validate().is_err(), "{config:?}");
        assert_eq!(
            ContinuousRequestTarget::new(&sim, config, ()).err(),
            Some(Status::INVALID_PARAMETER),
            "{config:?}"
        );
    }
    assert_clean(&sim);
}

#[test]
fn crt_start_misuse() {
    let (sim, target) = device();
    // N = 0: not a stream.
    let none =
        ContinuousRequestTarget::new(&sim, ContinuousRequestTargetConfig::default(), ()).unwrap();
    assert_eq!(none.start(), Err(Status::NOT_SUPPORTED));
    assert_eq!(none.stop(), Err(Status::NOT_SUPPORTED)); // harmless
    let crt = ContinuousRequestTarget::new(&sim, stream_config(2), ()).unwrap();
    // No target yet.
    assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE));
    crt.io_target_set(Arc::clone(&target)).unwrap();
    crt.start().unwrap();
    // Twice.
    assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE));
    // Changing the target while streaming.
    assert_eq!(
        crt.io_target_set(Arc::clone(&target)),
        Err(Status::INVALID_DEVICE_STATE)
    );
    crt.stop().unwrap();
    crt.stop().unwrap(); // idempotent
    crt.close();
    assert_eq!(crt.start(), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(
        crt.io_target_set(Arc::clone(&target)),
        Err(Status::INVALID_DEVICE_STATE)
    );
    assert_eq!(crt.reuse_create().err(), Some(Status::INVALID_DEVICE_STATE));
    drop((crt, none));
    target.close();
    drop(target);
    assert_clean(&sim);
}

#[test]
fn crt_invalid_request_type_stream_fails_to_start() {
    let (sim, target) = device();
    let crt = ContinuousRequestTarget::new(
        &sim,
        ContinuousRequestTargetConfig {
            request_type: RequestType::Invalid,
            ..stream_config(1)
        },
        (),
    )
    .unwrap();
    crt.io_target_set(Arc::clone(&target)).unwrap();
    assert_eq!(crt.start(), Err(Status::INVALID_PARAMETER));
    assert!(!crt.is_streaming());
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(crt.output_buffers_free(), Some(1), "the buffer came back");
    // Single sends with an invalid type, as RequestTarget.
    assert_eq!(
        crt.send_synchronously(&[], &mut [], SendParams::new(RequestType::Invalid, 0)),
        Err(Status::INVALID_PARAMETER)
    );
    drop(crt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

#[test]
fn crt_buffer_put_of_a_foreign_buffer_is_invalid_parameter() {
    let (sim, target) = device();
    let crt = ContinuousRequestTarget::new(&sim, stream_config(1), ()).unwrap();
    let other = BufferPool::new(&sim, BufferPoolConfig::new(1, 4)).unwrap();
    assert_eq!(
        crt.buffer_put(other.get().unwrap()),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(other.count(), 1, "the foreign buffer went to its own home");
    assert_eq!(crt.output_buffers_free(), Some(1));
    // A CRT without an output pool.
    let none =
        ContinuousRequestTarget::new(&sim, ContinuousRequestTargetConfig::default(), ()).unwrap();
    assert_eq!(none.output_buffers_free(), None);
    assert_eq!(
        none.buffer_put(other.get().unwrap()),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(other.count(), 1);
    drop((crt, none, other));
    target.close();
    drop(target);
    assert_clean(&sim);
}

/// A stream client whose output callback calls back into its CRT: reads its
/// state and statistics, keeps the buffer and gives it back with
/// `buffer_put` from inside the callback, then stops its request.
struct Reentrant {
    crt: OnceLock<Weak<ContinuousRequestTarget<Sim, Reentrant>>>,
    seen: Mutex<Vec<(Status, bool, dmf_wdf::Result<()>)>>,
}

impl StreamClient<Sim> for Reentrant {
    fn buffer_output(&self, mut c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        let crt = self.crt.get().and_then(Weak::upgrade).unwrap();
        let running = crt.is_streaming();
        let _ = crt.statistics();
        let put = match c.take_output() {
            Some(b) => crt.buffer_put(b),
            None => Err(Status::UNSUCCESSFUL),
        };
        self.seen.lock().unwrap().push((c.status, running, put));
        OutputDisposition::ClientOwnsAndStop
    }
}

#[test]
fn crt_output_callback_may_call_back_into_the_module() {
    let (sim, target) = device();
    let crt = Arc::new(
        ContinuousRequestTarget::new(
            &sim,
            stream_config(2),
            Reentrant {
                crt: OnceLock::new(),
                seen: Mutex::new(Vec::new()),
            },
        )
        .unwrap(),
    );
    let _ = crt.client().crt.set(Arc::downgrade(&crt));
    crt.io_target_set(Arc::clone(&target)).unwrap();
    crt.start().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while crt.active_stream_requests() > 0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen = crt.client().seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(Status::SUCCESS, true, Ok(())); 2]);
    assert_eq!(crt.output_buffers_free(), Some(2));
    crt.stop().unwrap();
    let crt = Arc::try_unwrap(crt).ok().unwrap();
    drop(crt);
    target.close();
    drop(target);
    assert_clean(&sim);
}

// ----------------------------------------------------------------------
// device-interface-multiple-target
// ----------------------------------------------------------------------

/// Tracks open targets; in `Open` and `Close` calls back into the module.
#[derive(Default)]
struct Tracker {
    open: Mutex<Vec<TargetHandle>>,
    /// (state, get, reference, symbolic_link) results seen in callbacks.
    calls: Mutex<Vec<(TargetStateType, bool, bool, bool)>>,
}

impl DimtClient<Sim> for Tracker {
    type Target = ();

    fn target_context(&self, _: &Dimt<Sim, Self>, _: TargetHandle, _: &str) {}

    fn on_state_change(
        &self,
        m: &Dimt<Sim, Self>,
        t: TargetHandle,
        _target_context: &Self::Target,
        s: TargetStateType,
    ) -> Status {
        let get = m.get(t).is_ok();
        let reference = match m.target_guard(t) {
            Ok(g) => g.handle() == t,
            Err(_) => false,
        };
        let link = m.symbolic_link(t).is_ok();
        self.calls.lock().unwrap().push((s, get, reference, link));
        match s {
            TargetStateType::Open => self.open.lock().unwrap().push(t),
            TargetStateType::QueryRemove
            | TargetStateType::QueryRemoveComplete
            | TargetStateType::Close => self.open.lock().unwrap().retain(|&o| o != t),
            _ => {}
        }
        Status::SUCCESS
    }
}

const OTHER_GUID: Guid = Guid::from_u128(0x0BAD_1D0E_0000_4000_8000_0000_0000_0009);

fn dimt(sim: &Sim, guid: Guid, stream: bool) -> DeviceInterfaceMultipleTarget<Sim, Tracker> {
    let crt = if stream {
        ContinuousRequestTargetConfig {
            continuous_request_target_mode: dmf_continuous_request_target::StreamMode::Manual,
            ..stream_config(1)
        }
    } else {
        ContinuousRequestTargetConfig::default()
    };
    let m = DeviceInterfaceMultipleTarget::new(
        sim,
        DeviceInterfaceMultipleTargetConfig {
            module_open_option: PnpRegisterWhen::Create,
            continuous_request_target_module_config: crt,
            ..DeviceInterfaceMultipleTargetConfig::new(guid)
        },
        Tracker::default(),
    )
    .unwrap();
    sim.bus().flush().unwrap();
    m
}

/// Every per-target method with `t`; returns the statuses (success = `SUCCESS`).
fn every_method(m: &Dimt<Sim, Tracker>, t: TargetHandle) -> Vec<(&'static str, Status)> {
    let st = |r: dmf_wdf::Result<()>| r.err().unwrap_or(Status::SUCCESS);
    let p = SendParams::ioctl(IOCTL_ZEROSIZE);
    let mut v = vec![
        ("get", st(m.get(t).map(|_| ()))),
        (
            "send_synchronously",
            st(m.send_synchronously(t, &[], &mut [], p).map(|_| ())),
        ),
        (
            "send",
            st(m.send(t, None, None, p, 0).map_err(Status::from)),
        ),
        (
            "send_ex",
            st(m.send_ex(t, None, None, p, 0)
                .map(|_| ())
                .map_err(Status::from)),
        ),
        ("reuse_create", st(m.reuse_create(t).map(|_| ()))),
        (
            "reuse_delete",
            st(m.reuse_delete(t, ReuseId::from_raw(u64::MAX).unwrap())
                .map(|_| ())),
        ),
        ("reuse_count", st(m.reuse_count(t).map(|_| ()))),
        ("stream_start", st(m.stream_start(t))),
        ("stream_stop", st(m.stream_stop(t))),
        ("is_streaming", st(m.is_streaming(t).map(|_| ()))),
        ("stream_statistics", st(m.stream_statistics(t).map(|_| ()))),
        ("target_reference", st(m.target_reference(t))),
        ("target_guard", st(m.target_guard(t).map(|_| ()))),
        ("symbolic_link", st(m.symbolic_link(t).map(|_| ()))),
    ];
    if v.iter()
        .any(|(n, s)| *n == "target_reference" && s.is_success())
    {
        m.target_dereference(t);
    }
    v.push((
        "cancel",
        if m.cancel(t, CancelId::from_raw(u64::MAX).unwrap()) {
            Status::SUCCESS
        } else {
            Status::UNSUCCESSFUL
        },
    ));
    v
}

#[test]
fn dimt_stale_handles_are_invalid_device_state_for_every_method() {
    let sim = Sim::new(SimConfig::default());
    let dev = sim
        .bus()
        .add_device(DeviceSpec::new("d", handler()).with_interface(GUID))
        .unwrap();
    let m = dimt(&sim, GUID, true);
    let t = m.client().open.lock().unwrap()[0];
    // While open, everything works (made-up ids aside).
    m.stream_start(t).unwrap();
    m.stream_stop(t).unwrap();
    sim.bus().remove_device(dev).unwrap();
    assert!(m.client().open.lock().unwrap().is_empty());
    for (name, status) in every_method(&m, t) {
        let expected = if name == "cancel" {
            Status::UNSUCCESSFUL // `false`
        } else {
            Status::INVALID_DEVICE_STATE
        };
        assert_eq!(status, expected, "{name} with a stale handle");
    }
    // A handle that never existed, and the raw round trip.
    let never = TargetHandle::from_u64(0xFFFF_FFFF_0000_0007);
    assert_eq!(m.get(never).err(), Some(Status::INVALID_DEVICE_STATE));
    assert_eq!(TargetHandle::from_u64(t.to_u64()), t);
    // The slot is reused by a new arrival: the old handle stays stale.
    sim.bus()
        .add_device(DeviceSpec::new("d2", handler()).with_interface(GUID))
        .unwrap();
    sim.bus().flush().unwrap();
    let t2 = m.client().open.lock().unwrap()[0];
    assert_ne!(t2, t);
    assert_eq!(m.get(t).err(), Some(Status::INVALID_DEVICE_STATE));
    assert!(m.get(t2).is_ok());
    drop(m);
    for d in sim.bus().devices() {
        sim.bus().remove_device(d.id).unwrap();
    }
    assert_clean(&sim);
}

#[test]
fn dimt_non_streaming_target_refuses_stream_methods_with_not_supported() {
    let sim = Sim::new(SimConfig::default());
    sim.bus()
        .add_device(DeviceSpec::new("d", handler()).with_interface(GUID))
        .unwrap();
    let m = dimt(&sim, GUID, false);
    let t = m.client().open.lock().unwrap()[0];
    assert_eq!(m.stream_start(t), Err(Status::NOT_SUPPORTED));
    let pool = BufferPool::new(&sim, BufferPoolConfig::new(1, 4)).unwrap();
    assert_eq!(
        m.buffer_put(t, pool.get().unwrap()),
        Err(Status::NOT_SUPPORTED)
    );
    assert_eq!(pool.count(), 1, "the buffer went home anyway");
    // Invalid request type, huge timeout, zero lengths.
    assert_eq!(
        m.send_synchronously(t, &[], &mut [], SendParams::new(RequestType::Invalid, 0)),
        Err(Status::INVALID_PARAMETER)
    );
    assert_eq!(
        m.send_synchronously(
            t,
            &encode_sleep(1),
            &mut [],
            SendParams::ioctl(IOCTL_SLEEP).with_timeout(u32::MAX)
        ),
        Ok(0)
    );
    assert_eq!(
        m.send_synchronously(t, &[], &mut [], SendParams::ioctl(IOCTL_ZEROBUFFER)),
        Ok(0)
    );
    assert_eq!(
        m.send_synchronously(t, &[1, 2], &mut [], SendParams::ioctl(IOCTL_SLEEP)),
        Err(Status::BUFFER_TOO_SMALL)
    );
    drop((m, pool));
    for d in sim.bus().devices() {
        sim.bus().remove_device(d.id).unwrap();
    }
    assert_clean(&sim);
}

#[test]
fn dimt_state_callbacks_may_call_back_into_the_module() {
    let sim = Sim::new(SimConfig::default());
    let dev = sim
        .bus()
        .add_device(DeviceSpec::new("d", handler()).with_interface(GUID))
        .unwrap();
    let m = dimt(&sim, GUID, true);
    sim.bus().disable_interface(dev, &GUID).unwrap();
    sim.bus().flush().unwrap();
    let calls = m.client().calls.lock().unwrap().clone();
    // Open: methods enabled before the callback; Close: "methods still work".
    assert_eq!(
        calls,
        vec![
            (TargetStateType::Open, true, true, true),
            (TargetStateType::Close, true, true, true),
        ]
    );
    drop(m);
    sim.bus().remove_device(dev).unwrap();
    assert_clean(&sim);
}

/// A handle of one DIMT given to another DIMT is refused like a stale one,
/// even when the other module has a live target in the same slot (DIMT
/// accepted it until 61ef388: generations were per module).
#[test]
fn dimt_foreign_handle_is_refused() {
    let sim = Sim::new(SimConfig::default());
    let a_dev = sim
        .bus()
        .add_device(DeviceSpec::new("a", handler()).with_interface(GUID))
        .unwrap();
    let b_dev = sim
        .bus()
        .add_device(DeviceSpec::new("b", handler()).with_interface(OTHER_GUID))
        .unwrap();
    let a = dimt(&sim, GUID, false);
    let b = dimt(&sim, OTHER_GUID, false);
    let ta = a.client().open.lock().unwrap()[0];
    let tb = b.client().open.lock().unwrap()[0];
    assert_eq!(ta.index(), tb.index(), "both modules use their first slot");
    let result = b.get(ta).map(|_| ());
    let send = b.send_synchronously(ta, &[], &mut [], SendParams::ioctl(IOCTL_ZEROSIZE));
    assert!(b.get(tb).is_ok());
    drop((a, b));
    for id in [a_dev, b_dev] {
        sim.bus().remove_device(id).unwrap();
    }
    assert_clean(&sim);
    assert_eq!(result, Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(send, Err(Status::INVALID_DEVICE_STATE));
}
