//! Scenario bodies shared by both backends: each is generic over a
//! [`Backend`] (a platform and the simulator that carries its devices), and
//! [`scenario_tests!`] instantiates every one as a `#[test]` for a backend.
//! `scenarios_sim.rs` runs them on the simulator's own platform,
//! `scenarios_kmdf.rs` on `dmf_kmdf::KmdfPlatform` over the emulated KMDF: a
//! divergence is a bug in one of the two, and the failing target says which.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, StreamClient,
    StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::{
    Completion, DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt,
    DimtClient, PnpRegisterWhen, SendCompleted, SendParams, TargetHandle, TargetStateType as S,
};
use dmf_request_target::{RequestTarget, RequestTargetConfig};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
use dmf_sim::{
    ClientDevice, DeviceId, DeviceSpec, IoctlHandlerConfig, NoTargetEvents, RemovalOutcome, Sim,
    SimConfig, TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_sim::{EchoDevice, FaultPlan, FaultPoint, ParkingDevice};
use dmf_wdf::{
    DeviceCallbacks, Event, IoTarget, Lock, OpenMode, OpenParams, Platform, RawBuffer, Request,
    RequestType, SendOptions, SentIoAction, ShareAccess, Status, TargetState, Timer, TimerHandler,
    WorkItem, WorkItemHandler,
};

const SECOND: Duration = Duration::from_secs(1);

/// A platform under test and the simulator carrying its devices.
pub trait Backend: Sized {
    /// The platform the layers run on.
    type P: Platform + Clone + Send + Sync + 'static;
    /// Sets the backend up on a new simulator.
    fn new(sim: Sim) -> Self;
    /// The platform.
    fn platform(&self) -> Self::P;
    /// The simulator (its bus is the machine's).
    fn sim(&self) -> &Sim;
    /// Tears the backend down after the layers were dropped and checks that
    /// nothing is left (the simulator's counters, and for KMDF the emulated
    /// machine's pool, events, registrations and WDF objects).
    fn finish(self);
}

/// Instantiates every scenario for `$backend`.
#[macro_export]
macro_rules! scenario_tests {
    ($backend:ty) => {
        #[test]
        fn dimt_arrival_of_existing_and_new_interfaces() {
            scenarios::dimt_arrival::<$backend>();
        }
        #[test]
        fn dimt_orderly_removal() {
            scenarios::dimt_orderly_removal::<$backend>();
        }
        #[test]
        fn dimt_query_remove_then_remove_cancel() {
            scenarios::dimt_query_remove_then_cancel::<$backend>();
        }
        #[test]
        fn dimt_vetoed_query_remove() {
            scenarios::dimt_vetoed_query_remove::<$backend>();
        }
        #[test]
        fn dimt_surprise_removal_with_io_in_flight() {
            scenarios::dimt_surprise_removal::<$backend>();
        }
        #[test]
        fn crt_streaming_start_stop_and_power() {
            scenarios::crt_streaming_and_power::<$backend>();
        }
        #[test]
        fn crt_manual_start_and_stop() {
            scenarios::crt_manual_start_stop::<$backend>();
        }
        #[test]
        fn request_target_send_cancel_reuse() {
            scenarios::request_target_send_cancel_reuse::<$backend>();
        }
        #[test]
        fn platform_seam_objects() {
            scenarios::platform_seam_objects::<$backend>();
        }
        #[test]
        fn io_target_state_machine() {
            scenarios::io_target_state_machine::<$backend>();
        }
        #[test]
        fn reads_writes_and_ioctls_carry_their_buffers() {
            scenarios::reads_writes_and_ioctls::<$backend>();
        }
        #[test]
        fn dimt_churn_under_injected_faults() {
            scenarios::dimt_churn_under_faults::<$backend>();
        }
    };
}

/// A simulator with real time.
pub fn sim() -> Sim {
    Sim::new(SimConfig::default())
}

/// Adds a `Tests_IoctlHandler` device exposing the test interface.
pub fn add_device(sim: &Sim, name: &str) -> DeviceId {
    sim.bus()
        .add_device(
            DeviceSpec::new(
                name,
                Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
                    max_random_delay_ms: 2,
                    handle_internal_ioctls: false,
                })),
            )
            .with_interface(GUID),
        )
        .unwrap()
}

/// Waits (real time) until `f` holds.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A DIMT client recording its callbacks, optionally vetoing query-removes,
/// counting stream completions.
pub struct Recorder<P> {
    events: Mutex<Vec<(TargetHandle, S, bool)>>,
    pub veto_query_remove: AtomicBool,
    completions: Mutex<HashMap<TargetHandle, usize>>,
    _platform: std::marker::PhantomData<fn() -> P>,
}

impl<P> Default for Recorder<P> {
    fn default() -> Self {
        Recorder {
            events: Mutex::new(Vec::new()),
            veto_query_remove: AtomicBool::new(false),
            completions: Mutex::new(HashMap::new()),
            _platform: std::marker::PhantomData,
        }
    }
}

impl<P> Recorder<P> {
    /// The states reported for `t`, in order.
    pub fn states_of(&self, t: TargetHandle) -> Vec<S> {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| e.0 == t).map(|e| e.1).collect()
    }

    /// Whether methods worked in each callback for `t`.
    pub fn methods_of(&self, t: TargetHandle) -> Vec<bool> {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| e.0 == t).map(|e| e.2).collect()
    }

    /// Stream completions of `t`.
    pub fn completions(&self, t: TargetHandle) -> usize {
        self.completions
            .lock()
            .unwrap()
            .get(&t)
            .copied()
            .unwrap_or(0)
    }
}

impl<P: Platform> DimtClient<P> for Recorder<P> {
    fn on_state_change(&self, module: &Dimt<P, Self>, target: TargetHandle, state: S) -> Status {
        let methods_worked = module.get(target).is_ok();
        self.events
            .lock()
            .unwrap()
            .push((target, state, methods_worked));
        if state == S::QueryRemove && self.veto_query_remove.load(Ordering::SeqCst) {
            Status::UNSUCCESSFUL
        } else {
            Status::SUCCESS
        }
    }

    fn buffer_output(
        &self,
        _module: &Dimt<P, Self>,
        target: TargetHandle,
        completion: StreamCompletion<P>,
    ) -> OutputDisposition<P> {
        *self.completions.lock().unwrap().entry(target).or_default() += 1;
        if completion.status.is_success() {
            completion.module_owns_and_continue()
        } else {
            completion.module_owns_and_stop()
        }
    }
}

type Module<B> = DeviceInterfaceMultipleTarget<<B as Backend>::P, Recorder<<B as Backend>::P>>;

fn dimt_config(option: PnpRegisterWhen) -> DeviceInterfaceMultipleTargetConfig {
    DeviceInterfaceMultipleTargetConfig {
        module_open_option: option,
        ..DeviceInterfaceMultipleTargetConfig::new(GUID)
    }
}

fn streaming_config(count: u32) -> DeviceInterfaceMultipleTargetConfig {
    DeviceInterfaceMultipleTargetConfig {
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: count,
            buffer_count_output: count,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: StreamMode::Automatic,
            ..ContinuousRequestTargetConfig::default()
        },
        ..dimt_config(PnpRegisterWhen::Create)
    }
}

fn created<B: Backend>(b: &B, config: DeviceInterfaceMultipleTargetConfig) -> Module<B> {
    let dimt = DeviceInterfaceMultipleTarget::new(b.platform(), config, Recorder::default())
        .expect("DIMT created");
    b.sim().bus().flush().unwrap();
    dimt
}

fn sync_sleep<P: Platform>(
    dimt: &Dimt<P, Recorder<P>>,
    t: TargetHandle,
    ms: i32,
) -> dmf_wdf::Result<usize> {
    dimt.send_synchronously(
        t,
        &encode_sleep(ms),
        &mut [],
        SendParams::ioctl(IOCTL_SLEEP),
    )
}

fn finish_dimt<B: Backend>(b: B, dimt: Module<B>) {
    let module = dimt.module();
    drop(dimt);
    assert!(b.sim().wait_quiescent(10 * SECOND));
    assert_eq!(module.target_count(), 0);
    assert_eq!(module.open_target_count(), 0);
    drop(module);
    b.finish();
}

/// Existing and new interfaces arrive and open; methods work on each.
pub fn dimt_arrival<B: Backend>() {
    let b = B::new(sim());
    let a = add_device(b.sim(), "a");
    let dimt = created(&b, dimt_config(PnpRegisterWhen::Create));
    let c = add_device(b.sim(), "c");
    b.sim().bus().flush().unwrap();
    assert_eq!(dimt.target_count(), 2);
    assert_eq!(dimt.open_target_count(), 2);
    for id in [a, c] {
        let link = b.sim().bus().symbolic_link(id, &GUID).unwrap();
        let t = dimt.find(&link).expect("tracked");
        assert_eq!(dimt.client().states_of(t), [S::Open]);
        assert_eq!(dimt.client().methods_of(t), [true]);
        assert_eq!(sync_sleep(&dimt, t, 1), Ok(0));
    }
    finish_dimt(b, dimt);
}

/// An orderly removal reports QueryRemove then QueryRemoveComplete, and the
/// handle is stale afterwards.
pub fn dimt_orderly_removal<B: Backend>() {
    let b = B::new(sim());
    let id = add_device(b.sim(), "a");
    let dimt = created(&b, dimt_config(PnpRegisterWhen::Create));
    let t = dimt.targets()[0];
    assert_eq!(b.sim().bus().remove_device(id), Ok(RemovalOutcome::Removed));
    assert_eq!(
        dimt.client().states_of(t),
        [S::Open, S::QueryRemove, S::QueryRemoveComplete]
    );
    assert_eq!(dimt.client().methods_of(t), [true, true, false]);
    assert_eq!(sync_sleep(&dimt, t, 1), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(dimt.target_count(), 0);
    finish_dimt(b, dimt);
}

/// A query-remove cancelled by PnP reopens the target; a streaming target
/// streams again and single sends work.
pub fn dimt_query_remove_then_cancel<B: Backend>() {
    let b = B::new(sim());
    let id = add_device(b.sim(), "a");
    let dimt = created(&b, streaming_config(2));
    let t = dimt.targets()[0];
    wait_until("streaming", 5 * SECOND, || dimt.client().completions(t) > 5);
    assert_eq!(
        b.sim().bus().query_remove_then_cancel(id),
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
    finish_dimt(b, dimt);
}

/// A vetoed query-remove keeps the device and the open target.
pub fn dimt_vetoed_query_remove<B: Backend>() {
    let b = B::new(sim());
    let id = add_device(b.sim(), "a");
    let dimt = created(&b, dimt_config(PnpRegisterWhen::Create));
    let t = dimt.targets()[0];
    dimt.client()
        .veto_query_remove
        .store(true, Ordering::SeqCst);
    assert_eq!(
        b.sim().bus().remove_device(id),
        Ok(RemovalOutcome::Vetoed {
            status: Status::UNSUCCESSFUL
        })
    );
    assert_eq!(dimt.client().states_of(t), [S::Open, S::QueryRemove]);
    assert_eq!(sync_sleep(&dimt, t, 1), Ok(0));
    assert_eq!(dimt.open_target_count(), 1);
    dimt.client()
        .veto_query_remove
        .store(false, Ordering::SeqCst);
    assert_eq!(b.sim().bus().remove_device(id), Ok(RemovalOutcome::Removed));
    finish_dimt(b, dimt);
}

/// Surprise removal with a stream and a long single send in flight:
/// QueryRemoveComplete then Close; the send completes removed or cancelled.
pub fn dimt_surprise_removal<B: Backend>() {
    let b = B::new(sim());
    let id = add_device(b.sim(), "a");
    let dimt = created(&b, streaming_config(1));
    let t = dimt.targets()[0];
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let done: Completion = Arc::new(move |c: &SendCompleted<'_>| {
        let _ = tx.lock().unwrap().send(c.status);
    });
    static LONG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let long = LONG.get_or_init(|| encode_sleep(10_000).to_vec());
    // SAFETY: `long` is 'static.
    unsafe {
        dimt.send(
            t,
            Some(RawBuffer::from_slice(long)),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            Some(done),
            1,
        )
    }
    .unwrap();
    b.sim().bus().surprise_remove(id).unwrap();
    let status = rx.recv_timeout(5 * SECOND).unwrap();
    assert!(
        status == Status::DEVICE_REMOVED || status == Status::CANCELLED,
        "{status:?}"
    );
    assert_eq!(
        dimt.client().states_of(t),
        [S::Open, S::QueryRemoveComplete, S::Close]
    );
    finish_dimt(b, dimt);
}

/// Streaming starts at D0 entry (registration at PrepareHardware), stops in
/// D3 and restarts at the next D0 entry; the device stops cleanly.
pub fn crt_streaming_and_power<B: Backend>() {
    let b = B::new(sim());
    add_device(b.sim(), "a");
    let mut cfg = streaming_config(2);
    cfg.module_open_option = PnpRegisterWhen::PrepareHardware;
    cfg.continuous_request_target_module_config
        .cancel_and_resend_request_in_d0_callbacks = true;
    let dimt = DeviceInterfaceMultipleTarget::new(b.platform(), cfg, Recorder::default()).unwrap();
    let device = ClientDevice::new();
    let callbacks: Arc<dyn DeviceCallbacks> = Arc::new(dimt.device_callbacks());
    device.register(Arc::clone(&callbacks));
    assert_eq!(dimt.target_count(), 0, "nothing before PrepareHardware");
    device.start().unwrap();
    b.sim().bus().flush().unwrap();
    let t = dimt.targets()[0];
    wait_until("streaming", 5 * SECOND, || dimt.client().completions(t) > 2);
    device.power_down().unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(false));
    let n = dimt.client().completions(t);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(dimt.client().completions(t), n, "no completions in D3");
    device.power_up().unwrap();
    assert_eq!(dimt.is_streaming(t), Ok(true));
    wait_until("streaming after D0 entry", 5 * SECOND, || {
        dimt.client().completions(t) > n + 2
    });
    device.stop().unwrap();
    assert!(device.unregister(&callbacks));
    drop(callbacks);
    drop(device);
    finish_dimt(b, dimt);
}

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
    let target = Arc::new(platform.create_io_target().unwrap());
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .expect("the first open of a new target succeeds");
    let module = RequestTarget::new(platform, RequestTargetConfig::default()).unwrap();
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
        module.send_ex(
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
            module.reuse_send(
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

/// A streaming DIMT while devices come and go, with allocation, request,
/// target and timer creation and target open failing now and then: every
/// failure is handled, nothing leaks on either backend.
pub fn dimt_churn_under_faults<B: Backend>() {
    let sim = Sim::new(SimConfig::default().with_seed(7));
    let b = B::new(sim);
    let faults = b.sim().faults();
    for point in [
        FaultPoint::Allocation,
        FaultPoint::RequestCreation,
        FaultPoint::TargetCreation,
        FaultPoint::TargetOpen,
        FaultPoint::TimerCreation,
        FaultPoint::RequestFailure,
    ] {
        faults.set_with_status(
            point,
            FaultPlan::Probability(100_000),
            Status::INSUFFICIENT_RESOURCES,
        );
    }
    let mut ids: Vec<DeviceId> = (0..3)
        .map(|i| add_device(b.sim(), &format!("f{i}")))
        .collect();
    let dimt =
        DeviceInterfaceMultipleTarget::new(b.platform(), streaming_config(2), Recorder::default());
    // Creating the module may itself fail under the faults: then there is
    // nothing to churn, only nothing may leak.
    if let Ok(dimt) = dimt {
        for round in 0..12 {
            std::thread::sleep(Duration::from_millis(3));
            if round % 3 == 2 {
                let id = ids.remove(0);
                let _ = b.sim().bus().remove_device(id);
            } else {
                ids.push(add_device(b.sim(), &format!("g{round}")));
            }
            let _ = b.sim().bus().flush();
        }
        let module = dimt.module();
        drop(dimt);
        for point in FaultPoint::ALL {
            faults.set_with_status(point, FaultPlan::Never, Status::SUCCESS);
        }
        assert!(b.sim().wait_quiescent(10 * SECOND));
        assert_eq!(module.target_count(), 0);
        drop(module);
    }
    for point in FaultPoint::ALL {
        faults.set_with_status(point, FaultPlan::Never, Status::SUCCESS);
    }
    assert!(
        faults.injected(FaultPoint::Allocation) + faults.injected(FaultPoint::TargetOpen) > 0,
        "faults were injected"
    );
    for id in ids {
        let _ = b.sim().bus().remove_device(id);
    }
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
    let target = p.create_io_target().unwrap();
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

/// Counts successful stream completions and checks their data.
#[derive(Default)]
struct Stream(AtomicUsize);

impl<P: Platform> StreamClient<P> for Stream {
    fn buffer_output(&self, c: StreamCompletion<P>) -> OutputDisposition<P> {
        if c.status.is_success() {
            assert_eq!(c.information, 4);
            assert_eq!(c.data(), &[0, 0, 0, 0]);
            self.0.fetch_add(1, Ordering::SeqCst);
            c.module_owns_and_continue()
        } else {
            c.module_owns_and_stop()
        }
    }
}

/// A continuous request target on its own: started and stopped by the
/// client, twice; stop leaves no stream request active.
pub fn crt_manual_start_stop<B: Backend>() {
    let b = B::new(sim());
    let id = add_device(b.sim(), "crt");
    let link = b.sim().bus().symbolic_link(id, &GUID).unwrap();
    let p = b.platform();
    let target = Arc::new(p.create_io_target().unwrap());
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
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: 4,
        buffer_count_output: 4,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        ..ContinuousRequestTargetConfig::default()
    };
    let crt = ContinuousRequestTarget::new(p, config, Stream::default()).unwrap();
    crt.io_target_set(Arc::clone(&target)).unwrap();
    for round in 1..=2 {
        let before = crt.client().0.load(Ordering::SeqCst);
        crt.start().unwrap();
        wait_until("stream completions", 5 * SECOND, || {
            crt.client().0.load(Ordering::SeqCst) >= before + 50
        });
        crt.stop();
        assert_eq!(crt.active_stream_requests(), 0, "round {round}");
        let stopped = crt.client().0.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(
            crt.client().0.load(Ordering::SeqCst),
            stopped,
            "nothing after stop"
        );
    }
    drop(crt);
    assert!(b.sim().wait_quiescent(10 * SECOND));
    target.close();
    drop(target);
    b.finish();
}
