//! DIMT scenarios: arrival, removal, query-remove, veto, surprise removal,
//! streaming across power transitions, churn under injected faults.

use super::*;

/// A DIMT client recording its callbacks, optionally vetoing query-removes,
/// counting stream completions.
pub struct Recorder<P> {
    events: Mutex<Vec<(TargetHandle, S, bool)>>,
    pub veto_query_remove: AtomicBool,
    completions: Mutex<HashMap<TargetHandle, usize>>,
    /// Statuses of the completed single sends.
    sends: Mutex<Vec<Status>>,
    _platform: std::marker::PhantomData<fn() -> P>,
}

impl<P> Default for Recorder<P> {
    fn default() -> Self {
        Recorder {
            events: Mutex::new(Vec::new()),
            veto_query_remove: AtomicBool::new(false),
            completions: Mutex::new(HashMap::new()),
            sends: Mutex::new(Vec::new()),
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
    type Target = ();

    fn target_context(&self, _module: &Dimt<P, Self>, _target: TargetHandle, _link: &str) {}

    fn on_state_change(
        &self,
        module: &Dimt<P, Self>,
        target: TargetHandle,
        _context: &(),
        state: S,
    ) -> Status {
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
        _context: &(),
        completion: StreamCompletion<P>,
    ) -> OutputDisposition<P> {
        *self.completions.lock().unwrap().entry(target).or_default() += 1;
        if completion.status.is_success() {
            completion.module_owns_and_continue()
        } else {
            completion.module_owns_and_stop()
        }
    }

    fn send_completed(
        &self,
        _module: &Dimt<P, Self>,
        _target: TargetHandle,
        _context: &(),
        completion: OwnedSendCompleted<P>,
    ) {
        self.sends.lock().unwrap().push(completion.status);
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
    let dimt = DeviceInterfaceMultipleTarget::new(&b.platform(), config, Recorder::default())
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
    dimt.send(
        t,
        Some(encode_sleep(10_000).to_vec().into()),
        None,
        SendParams::ioctl(IOCTL_SLEEP),
        1,
    )
    .map_err(|e| e.status)
    .unwrap();
    b.sim().bus().surprise_remove(id).unwrap();
    wait_until("the send completed", 5 * SECOND, || {
        !dimt.client().sends.lock().unwrap().is_empty()
    });
    let status = dimt.client().sends.lock().unwrap()[0];
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
    let dimt = DeviceInterfaceMultipleTarget::new(&b.platform(), cfg, Recorder::default()).unwrap();
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
        DeviceInterfaceMultipleTarget::new(&b.platform(), streaming_config(2), Recorder::default());
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
