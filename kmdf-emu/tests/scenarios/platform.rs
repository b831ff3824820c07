//! The platform seam itself: its objects, the remote target's state
//! machine, every request type.

use super::*;

/// Counts handler runs.
#[derive(Default)]
struct Count(AtomicUsize);

impl TimerHandler for Count {
    fn fired(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl WorkItemHandler for Count {
    fn run(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The platform's own objects, method by method: allocation, locks,
/// events (set, reset, timed waits), timers (start/re-arm/stop results,
/// firing), work items (enqueue, flush), requests (reuse, cancel of an
/// unsent request).
pub fn platform_seam_objects<B: Backend>() {
    let b = B::new(sim());
    let p = b.platform();
    // Allocation honours the alignment and is returned.
    for align in [1usize, 8, 16, 64, 128] {
        let layout = std::alloc::Layout::from_size_align(100, align).unwrap();
        let block = p.allocate(layout).expect("memory");
        assert_eq!(block.as_ptr() as usize % align, 0, "align {align}");
        // SAFETY: 100 writable bytes, returned with the same layout.
        unsafe {
            block.as_ptr().write_bytes(0xA5, 100);
            p.deallocate(block, layout);
        }
    }
    // Locks: nested, different locks; the value is guarded.
    let outer = <B::P as Platform>::Lock::new(1u32);
    let inner = <B::P as Platform>::Lock::new(2u32);
    {
        let mut o = outer.lock();
        let mut i = inner.lock();
        *o += *i;
        *i = 0;
    }
    assert_eq!((*outer.lock(), *inner.lock()), (3, 0));
    // Events.
    let event = p.create_event(false).unwrap();
    assert!(!event.is_set());
    assert!(
        !event.wait(Some(0)),
        "not signalled: a zero wait fails at once"
    );
    assert!(
        !event.wait(Some(5)),
        "not signalled: the timed wait expires"
    );
    event.set();
    assert!(event.is_set());
    assert!(event.wait(Some(0)) && event.wait(None));
    event.reset();
    assert!(!event.is_set());
    let signalled = p.create_event(true).unwrap();
    assert!(signalled.wait(Some(1)));
    // Timers: start reports whether it was armed; stop whether it
    // disarmed a pending firing.
    let fired = Arc::new(Count::default());
    let timer = p.create_timer(Arc::clone(&fired)).unwrap();
    assert!(!timer.start(10_000), "not armed before");
    assert!(timer.start(10_000), "re-armed");
    assert!(timer.stop(true), "disarmed a pending firing");
    assert!(!timer.stop(false), "nothing armed any more");
    assert!(!timer.start(1));
    wait_until("the timer fires", 5 * SECOND, || {
        fired.0.load(Ordering::SeqCst) == 1
    });
    assert!(!timer.stop(true), "it has fired");
    drop(timer);
    // Work items run once per enqueue and flush waits for them.
    let runs = Arc::new(Count::default());
    let work = p.create_work_item(Arc::clone(&runs)).unwrap();
    for n in 1..=3 {
        work.enqueue().unwrap();
        work.flush();
        assert_eq!(runs.0.load(Ordering::SeqCst), n);
    }
    drop(work);
    // A request that was never sent: reuse succeeds, cancel finds nothing.
    let request = p.create_request(None).unwrap();
    request.reuse().unwrap();
    assert!(!request.cancel_sent());
    drop(request);
    drop((event, signalled, outer, inner));
    b.finish();
}

/// A remote target through its states as KMDF's remote target goes: a new
/// target reads Started and may be opened; a second open is refused; stop
/// (parked requests cancelled), start, purge, close, and a reopen after the
/// close.
pub fn io_target_state_machine<B: Backend>() {
    let b = B::new(sim());
    let parking = ParkingDevice::new();
    let id = b
        .sim()
        .bus()
        .add_device(DeviceSpec::new("park", parking.clone()))
        .unwrap();
    let link = b.sim().bus().device_link(id).unwrap();
    let p = b.platform();
    let target = p.create_io_target().unwrap();
    assert_eq!(
        target.state(),
        TargetState::Started,
        "a new target reads Started"
    );
    let params = OpenParams {
        symbolic_link: &link,
        open_mode: OpenMode::READ_WRITE,
        share_access: ShareAccess::READ_WRITE,
    };
    target
        .open(&params, Arc::new(NoTargetEvents))
        .expect("first open");
    assert_eq!(target.state(), TargetState::Started);
    assert_eq!(
        target.open(&params, Arc::new(NoTargetEvents)),
        Err(Status::INVALID_DEVICE_STATE),
        "an open target is not opened again"
    );
    // A request parked at the device; stop with cancel completes it.
    let (tx, rx) = mpsc::channel();
    struct Done(Mutex<mpsc::Sender<Status>>);
    impl dmf_wdf::CompletionRoutine for Done {
        fn completed(self: Arc<Self>, c: dmf_wdf::Completed) {
            let _ = self.0.lock().unwrap().send(c.status);
        }
    }
    let done = Arc::new(Done(Mutex::new(tx)));
    let request = p.create_request(Some(&target)).unwrap();
    let mut out = [0u8; 8];
    let send = |request: &<B::P as Platform>::Request, out: &mut [u8; 8]| {
        // SAFETY: `out` outlives the send (every completion is awaited).
        unsafe {
            target.format_request(
                request,
                RequestType::Ioctl,
                0x22_2000,
                None,
                Some(RawBuffer::from_mut_slice(out)),
            )
        }
        .unwrap();
        target.send(request, SendOptions { timeout_ms: 0 }, Arc::clone(&done))
    };
    send(&request, &mut out).unwrap();
    assert!(parking.wait_for_pending(1, 5 * SECOND));
    target.stop(SentIoAction::Cancel);
    assert_eq!(target.state(), TargetState::Stopped);
    assert_eq!(rx.recv_timeout(5 * SECOND).unwrap(), Status::CANCELLED);
    target.start().unwrap();
    assert_eq!(target.state(), TargetState::Started);
    // Reused, sent again, completed by the device.
    request.reuse().unwrap();
    send(&request, &mut out).unwrap();
    assert!(parking.wait_for_pending(1, 5 * SECOND));
    assert!(parking.complete_next(Status::SUCCESS, 8));
    assert_eq!(rx.recv_timeout(5 * SECOND).unwrap(), Status::SUCCESS);
    // Purge: the target stops accepting until started again.
    target.purge(true);
    assert_eq!(target.state(), TargetState::Stopped);
    request.reuse().unwrap();
    assert!(
        send(&request, &mut out).is_err(),
        "a purged target refuses sends"
    );
    target.start().unwrap();
    target.close();
    assert_eq!(target.state(), TargetState::Closed);
    target
        .open(&params, Arc::new(NoTargetEvents))
        .expect("open after close");
    assert_eq!(target.state(), TargetState::Started);
    target.close();
    drop(request);
    drop(target);
    assert!(b.sim().wait_quiescent(10 * SECOND));
    b.finish();
}

/// Synchronous sends of every request type through one reused request to an
/// echo device: writes store, reads return, IOCTLs and internal IOCTLs copy
/// input to output; buffers of different sizes (and none) between reuses.
pub fn reads_writes_and_ioctls<B: Backend>() {
    let b = B::new(sim());
    let echo = Arc::new(EchoDevice::new());
    let id = b
        .sim()
        .bus()
        .add_device(DeviceSpec::new("echo", echo.clone()))
        .unwrap();
    let link = b.sim().bus().device_link(id).unwrap();
    let p = b.platform();
    let target = open_target(&p, &link, "open the target");
    let request = p.create_request(Some(&target)).unwrap();
    let send = |t: RequestType, input: Option<&[u8]>, output: Option<&mut [u8]>| {
        request.reuse().unwrap();
        // SAFETY: the buffers outlive the synchronous send.
        unsafe {
            target.format_request(
                &request,
                t,
                0x22_2004,
                input.map(RawBuffer::from_slice),
                output.map(RawBuffer::from_mut_slice),
            )
        }
        .unwrap();
        target.send_synchronously(&request, 0)
    };
    assert_eq!(send(RequestType::Write, Some(b"hello kmdf"), None), Ok(10));
    assert_eq!(echo.stored(), b"hello kmdf");
    let mut out = [0u8; 32];
    assert_eq!(send(RequestType::Read, None, Some(&mut out)), Ok(10));
    assert_eq!(&out[..10], b"hello kmdf");
    let mut small = [0u8; 4];
    assert_eq!(send(RequestType::Read, None, Some(&mut small)), Ok(4));
    assert_eq!(&small, b"hell");
    let mut out = [0u8; 8];
    assert_eq!(
        send(RequestType::Ioctl, Some(b"12345678"), Some(&mut out)),
        Ok(8)
    );
    assert_eq!(&out, b"12345678");
    let mut out = [0u8; 3];
    assert_eq!(
        send(RequestType::InternalIoctl, Some(b"abcdef"), Some(&mut out)),
        Ok(3)
    );
    assert_eq!(&out, b"abc");
    // No buffers at all, and empty ones.
    assert_eq!(send(RequestType::Ioctl, None, None), Ok(0));
    assert_eq!(send(RequestType::Ioctl, Some(&[]), Some(&mut [])), Ok(0));
    assert_eq!(send(RequestType::Write, Some(b"x"), None), Ok(1));
    assert_eq!(echo.stored(), b"x");
    drop(request);
    target.close();
    drop(target);
    b.finish();
}
