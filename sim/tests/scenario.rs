//! A small layer streaming to every device of an interface class, under PnP
//! churn (interface toggles, vetoed/cancelled/orderly/surprise removals,
//! arrivals) and power cycles, with real threads. Nothing may leak.

mod common;

use common::ResendLoop;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use dmf_sim::ioctl_handler::IOCTL_ZEROSIZE;
use dmf_sim::{
    DeviceId, DeviceSpec, IoctlHandlerConfig, Latency, Sim, SimConfig, SimIoTarget,
    SimNotification, SimRequest, SplitMix64, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_wdf::{
    Completed, CompletionRoutine, DeviceCallbacks, InterfaceNotificationHandler, IoTarget,
    OpenMode, OpenParams, Platform, PowerState, Request, RequestType, SendOptions, ShareAccess,
    Status, TargetEvents, TargetState,
};

struct StreamReq {
    request: SimRequest,
    owner: Weak<Tracked>,
    resend: ResendLoop,
}

impl StreamReq {
    fn send(self: &Arc<Self>, t: &Tracked) {
        self.resend.send(|| self.send_once(t));
    }

    fn send_once(self: &Arc<Self>, t: &Tracked) -> bool {
        self.request.reuse().unwrap();
        // SAFETY: no buffers.
        let formatted = unsafe {
            t.target.format_request(
                &self.request,
                RequestType::Ioctl,
                IOCTL_ZEROSIZE,
                None,
                None,
            )
        };
        // A target closed meanwhile (removal, power-down) refuses the format,
        // as KMDF does for a target that is not open: stop resending.
        if formatted.is_err() {
            return false;
        }
        t.target
            .send(&self.request, SendOptions::default(), Arc::clone(self))
            .is_ok()
    }
}

impl CompletionRoutine for StreamReq {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(
            [
                Status::SUCCESS,
                Status::CANCELLED,
                Status::DEVICE_REMOVED,
                Status::DELETE_PENDING
            ]
            .contains(&c.status),
            "{:?}",
            c.status
        );
        if let Some(t) = self.owner.upgrade() {
            t.completions.fetch_add(1, Ordering::Relaxed);
            if !t.stopping.load(Ordering::SeqCst)
                && c.status == Status::SUCCESS
                && !self.resend.hand_to_sender()
            {
                self.send(&t);
            }
        }
    }
}

struct Tracked {
    link: String,
    target: SimIoTarget,
    streams: Mutex<Vec<Arc<StreamReq>>>,
    stopping: AtomicBool,
    control: Mutex<()>,
    completions: AtomicUsize,
}

impl Tracked {
    fn start_streams(&self) {
        self.stopping.store(false, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().iter() {
            if !s.request.is_in_flight() {
                s.send(self);
            }
        }
    }
}

struct Mini {
    sim: Sim,
    tracked: Mutex<HashMap<String, Arc<Tracked>>>,
    veto: AtomicBool,
    arrivals: AtomicUsize,
}

struct Events {
    tracked: Weak<Tracked>,
    mini: Weak<Mini>,
}

impl TargetEvents for Events {
    fn query_remove(&self) -> Status {
        let (Some(t), Some(m)) = (self.tracked.upgrade(), self.mini.upgrade()) else {
            return Status::SUCCESS;
        };
        if m.veto.load(Ordering::SeqCst) {
            return Status::UNSUCCESSFUL;
        }
        let _c = t.control.lock().unwrap();
        t.stopping.store(true, Ordering::SeqCst);
        t.target.close_for_query_remove();
        Status::SUCCESS
    }
    fn remove_canceled(&self) {
        let Some(t) = self.tracked.upgrade() else {
            return;
        };
        let _c = t.control.lock().unwrap();
        if t.target.state() == TargetState::ClosedForQueryRemove && t.target.reopen().is_ok() {
            t.start_streams();
        }
    }
    fn remove_complete(&self) {
        let (Some(t), Some(m)) = (self.tracked.upgrade(), self.mini.upgrade()) else {
            return;
        };
        m.forget(&t.link);
    }
}

impl Mini {
    fn forget(&self, link: &str) {
        let t = self.tracked.lock().unwrap().remove(link);
        if let Some(t) = t {
            let _c = t.control.lock().unwrap();
            t.stopping.store(true, Ordering::SeqCst);
            t.target.close();
        }
    }
}

struct Notify(Weak<Mini>);

impl InterfaceNotificationHandler for Notify {
    fn interface_arrived(&self, link: &str) {
        let Some(m) = self.0.upgrade() else { return };
        if m.tracked.lock().unwrap().contains_key(link) {
            return;
        }
        let target = m.sim.create_io_target().unwrap();
        let t = Arc::new_cyclic(|me: &Weak<Tracked>| Tracked {
            link: link.to_string(),
            streams: Mutex::new(
                (0..4)
                    .map(|_| {
                        Arc::new(StreamReq {
                            request: m.sim.create_request(Some(&target)).unwrap(),
                            owner: me.clone(),
                            resend: ResendLoop::default(),
                        })
                    })
                    .collect(),
            ),
            target,
            stopping: AtomicBool::new(true),
            control: Mutex::new(()),
            completions: AtomicUsize::new(0),
        });
        let events = Arc::new(Events {
            tracked: Arc::downgrade(&t),
            mini: Arc::downgrade(&m),
        });
        let params = OpenParams {
            symbolic_link: link,
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
        };
        if t.target.open(&params, events).is_err() {
            return;
        }
        m.arrivals.fetch_add(1, Ordering::Relaxed);
        m.tracked
            .lock()
            .unwrap()
            .insert(link.to_string(), Arc::clone(&t));
        let _c = t.control.lock().unwrap();
        t.start_streams();
    }
    fn interface_removed(&self, link: &str) {
        if let Some(m) = self.0.upgrade() {
            m.forget(link);
        }
    }
}

struct Power(Weak<Mini>);

impl DeviceCallbacks for Power {
    fn d0_entry(&self, previous: PowerState) -> dmf_wdf::Result<()> {
        if previous == PowerState::D3Final {
            return Ok(());
        }
        let Some(m) = self.0.upgrade() else {
            return Ok(());
        };
        let all: Vec<_> = m.tracked.lock().unwrap().values().cloned().collect();
        for t in all {
            let _c = t.control.lock().unwrap();
            if t.target.start().is_ok() {
                t.start_streams();
            }
        }
        Ok(())
    }
    fn d0_exit(&self, _target: PowerState) -> dmf_wdf::Result<()> {
        let Some(m) = self.0.upgrade() else {
            return Ok(());
        };
        let all: Vec<_> = m.tracked.lock().unwrap().values().cloned().collect();
        for t in all {
            let _c = t.control.lock().unwrap();
            t.stopping.store(true, Ordering::SeqCst);
            t.target.purge(true);
        }
        Ok(())
    }
}

fn add(sim: &Sim, n: usize) -> DeviceId {
    let handler = TestsIoctlHandler::new(IoctlHandlerConfig {
        max_random_delay_ms: 3,
        handle_internal_ioctls: false,
    });
    sim.bus()
        .add_device(DeviceSpec::new(format!("dev{n}"), Arc::new(handler)).with_interface(GUID))
        .unwrap()
}

#[test]
fn streaming_under_pnp_and_power_churn_loses_nothing() {
    let sim = Sim::new(
        SimConfig::default()
            .with_seed(77)
            .with_latency(Latency::new(0, 300)),
    );
    let mini = Arc::new(Mini {
        sim: sim.clone(),
        tracked: Mutex::new(HashMap::new()),
        veto: AtomicBool::new(false),
        arrivals: AtomicUsize::new(0),
    });
    let mut devices: Vec<DeviceId> = (0..3).map(|n| add(&sim, n)).collect();
    let client = sim.client_device();
    client.register(Arc::new(Power(Arc::downgrade(&mini))));
    client.start().unwrap();
    let reg: SimNotification = sim
        .register_interface_notification(&GUID, Arc::new(Notify(Arc::downgrade(&mini))))
        .unwrap();
    sim.bus().flush().unwrap();
    assert_eq!(mini.tracked.lock().unwrap().len(), 3);

    let mut rng = SplitMix64::new(sim.seed());
    let mut next = 3;
    let mut outcomes = HashMap::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(rng.range_inclusive(1, 8)));
        if devices.is_empty() {
            devices.push(add(&sim, next));
            next += 1;
            continue;
        }
        let i = rng.range_inclusive(0, devices.len() as u64 - 1) as usize;
        let id = devices[i];
        match rng.range_inclusive(0, 7) {
            0 => {
                sim.bus().disable_interface(id, &GUID).unwrap();
                sim.bus().enable_interface(id, &GUID).unwrap();
            }
            1 | 2 => {
                mini.veto
                    .store(rng.range_inclusive(0, 2) == 0, Ordering::SeqCst);
                let o = sim.bus().remove_device(id).unwrap();
                *outcomes.entry(format!("{o:?}")).or_insert(0) += 1;
                if o == dmf_sim::RemovalOutcome::Removed {
                    devices.swap_remove(i);
                }
                mini.veto.store(false, Ordering::SeqCst);
            }
            3 => {
                let o = sim.bus().query_remove_then_cancel(id).unwrap();
                *outcomes.entry(format!("{o:?}")).or_insert(0) += 1;
            }
            4 => {
                sim.bus().surprise_remove(id).unwrap();
                *outcomes.entry("Surprise".to_string()).or_insert(0) += 1;
                devices.swap_remove(i);
            }
            5 => {
                devices.push(add(&sim, next));
                next += 1;
            }
            _ => client.power_cycle().unwrap(),
        }
    }
    let c = sim.counters();
    assert!(c.irps_completed > 500, "streams made progress: {c}");
    assert!(
        outcomes.len() >= 3,
        "several removal paths taken: {outcomes:?}"
    );

    client.stop().unwrap();
    drop(reg);
    let remaining: Vec<String> = mini.tracked.lock().unwrap().keys().cloned().collect();
    for link in remaining {
        mini.forget(&link);
    }
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    drop(mini);
    let c = sim.counters();
    assert!(c.is_clean(), "{c}");
    assert_eq!(c.irps_sent, c.irps_completed, "{c}");
    assert!(sim.take_callback_panics().is_empty());
}
