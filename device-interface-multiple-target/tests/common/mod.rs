//! Helpers shared by the DIMT integration tests: a recording client, the
//! legal-callback-order checker, and sim helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{OutputDisposition, StreamCompletion};
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    PnpRegisterWhen, TargetHandle, TargetStateType,
};
use dmf_sim::{
    DeviceId, DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::{IoTarget, Status};

pub const GUID: dmf_wdf::Guid = GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER;

/// One callback seen by the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub target: TargetHandle,
    pub state: TargetStateType,
    pub vetoed: bool,
    /// Whether methods (a `get`) worked during the callback.
    pub methods_worked: bool,
}

/// A client that records every callback and can veto, filter, and purge.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<Event>>,
    pub veto_open: AtomicBool,
    pub veto_query_remove: AtomicBool,
    /// Links the filter rejects (substring match).
    pub reject: Mutex<Vec<String>>,
    pub filter_calls: AtomicUsize,
    /// DIMT-6 (DMF test): purge the target inside the QueryRemove callback.
    pub purge_on_query_remove: AtomicBool,
    /// Stream completions seen, per target.
    pub stream_completions: Mutex<HashMap<TargetHandle, usize>>,
    pub stream_statuses: Mutex<Vec<Status>>,
    /// Open targets as the client sees them.
    pub open: Mutex<Vec<TargetHandle>>,
    /// Sleep this long (ms) in every Close / QueryRemove callback.
    pub departure_delay_ms: std::sync::atomic::AtomicU64,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn states_of(&self, t: TargetHandle) -> Vec<TargetStateType> {
        self.events()
            .into_iter()
            .filter(|e| e.target == t)
            .map(|e| e.state)
            .collect()
    }

    pub fn open_targets(&self) -> Vec<TargetHandle> {
        self.open.lock().unwrap().clone()
    }

    pub fn completions(&self, t: TargetHandle) -> usize {
        self.stream_completions
            .lock()
            .unwrap()
            .get(&t)
            .copied()
            .unwrap_or(0)
    }
}

impl DimtClient<Sim> for Recorder {
    type Target = ();

    fn target_context(&self, _: &Dimt<Sim, Self>, _: TargetHandle, _: &str) {}

    fn on_pnp_notification(&self, _module: &Dimt<Sim, Self>, symbolic_link: &str) -> bool {
        self.filter_calls.fetch_add(1, Ordering::SeqCst);
        !self
            .reject
            .lock()
            .unwrap()
            .iter()
            .any(|r| symbolic_link.contains(r.as_str()))
    }

    fn on_state_change(
        &self,
        module: &Dimt<Sim, Self>,
        target: TargetHandle,
        _target_context: &Self::Target,
        state: TargetStateType,
    ) -> Status {
        let methods_worked = module.get(target).is_ok();
        if matches!(state, TargetStateType::Close | TargetStateType::QueryRemove) {
            let ms = self.departure_delay_ms.load(Ordering::SeqCst);
            if ms > 0 {
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        let vetoed = match state {
            TargetStateType::Open => self.veto_open.load(Ordering::SeqCst),
            TargetStateType::QueryRemove => self.veto_query_remove.load(Ordering::SeqCst),
            _ => false,
        };
        if state == TargetStateType::QueryRemove
            && !vetoed
            && self.purge_on_query_remove.load(Ordering::SeqCst)
        {
            if let Ok(t) = module.get(target) {
                t.purge(true);
            }
        }
        {
            let mut open = self.open.lock().unwrap();
            match (state, vetoed) {
                (TargetStateType::Open, false) | (TargetStateType::QueryRemoveCancelled, _) => {
                    open.push(target)
                }
                (TargetStateType::QueryRemove, false)
                | (TargetStateType::Close, _)
                | (TargetStateType::QueryRemoveComplete, _) => open.retain(|&o| o != target),
                _ => {}
            }
        }
        self.events.lock().unwrap().push(Event {
            target,
            state,
            vetoed,
            methods_worked,
        });
        if vetoed {
            Status::UNSUCCESSFUL
        } else {
            Status::SUCCESS
        }
    }

    fn buffer_output(
        &self,
        _module: &Dimt<Sim, Self>,
        target: TargetHandle,
        _target_context: &Self::Target,
        completion: StreamCompletion<Sim>,
    ) -> OutputDisposition<Sim> {
        *self
            .stream_completions
            .lock()
            .unwrap()
            .entry(target)
            .or_default() += 1;
        let status = completion.status;
        let mut statuses = self.stream_statuses.lock().unwrap();
        if statuses.len() < 1000 {
            statuses.push(status);
        }
        drop(statuses);
        if status.is_success() {
            completion.module_owns_and_continue()
        } else {
            completion.module_owns_and_stop()
        }
    }
}

/// Where a target is in the legal-order automaton.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Legal {
    Opened,
    QueryRemoved,
    Surprised,
    Ended,
}

/// Checks that each target's callbacks follow a legal order (see the crate
/// docs) and, if `all_ended`, that every target ended exactly once.
/// Returns a description of the first violation.
pub fn check_order(events: &[Event], all_ended: bool) -> Result<(), String> {
    let mut at: HashMap<TargetHandle, Legal> = HashMap::new();
    for e in events {
        let cur = at.get(&e.target).copied();
        use TargetStateType as S;
        let next = match (cur, e.state, e.vetoed) {
            (None, S::Open, false) => Legal::Opened,
            (None, S::Open, true) => Legal::Ended,
            (Some(Legal::Opened), S::QueryRemove, true) => Legal::Opened,
            (Some(Legal::Opened), S::QueryRemove, false) => Legal::QueryRemoved,
            (Some(Legal::Opened), S::QueryRemoveComplete, _) => Legal::Surprised,
            (Some(Legal::Opened), S::Close, _) => Legal::Ended,
            (Some(Legal::QueryRemoved), S::QueryRemoveCancelled, _) => Legal::Opened,
            (Some(Legal::QueryRemoved), S::QueryRemoveComplete, _) => Legal::Ended,
            (Some(Legal::QueryRemoved), S::Close, _) => Legal::Ended,
            (Some(Legal::Surprised), S::Close, _) => Legal::Ended,
            (cur, state, vetoed) => {
                return Err(format!(
                    "illegal {state:?} (vetoed {vetoed}) for {} in {cur:?}; events: {events:?}",
                    e.target
                ))
            }
        };
        at.insert(e.target, next);
    }
    if all_ended {
        if let Some((t, s)) = at.iter().find(|(_, s)| **s != Legal::Ended) {
            return Err(format!("{t} never ended (left in {s:?})"));
        }
    }
    Ok(())
}

/// A real-time simulator with `completion_threads` workers.
pub fn sim() -> Sim {
    Sim::new(SimConfig::default())
}

/// Adds a Tests_IoctlHandler device exposing the test interface.
pub fn add_device(sim: &Sim, name: &str) -> DeviceId {
    sim.bus()
        .add_device(
            DeviceSpec::new(
                name,
                Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
                    max_random_delay_ms: 5,
                    handle_internal_ioctls: false,
                })),
            )
            .with_interface(GUID),
        )
        .unwrap()
}

pub fn link_of(sim: &Sim, id: DeviceId) -> String {
    sim.bus().symbolic_link(id, &GUID).unwrap()
}

pub fn config(option: PnpRegisterWhen) -> DeviceInterfaceMultipleTargetConfig {
    DeviceInterfaceMultipleTargetConfig {
        module_open_option: option,
        ..DeviceInterfaceMultipleTargetConfig::new(GUID)
    }
}

/// A module registered at creation, with every present interface opened.
pub fn created(
    sim: &Sim,
    config: DeviceInterfaceMultipleTargetConfig,
    client: Recorder,
) -> DeviceInterfaceMultipleTarget<Sim, Recorder> {
    let dimt = DeviceInterfaceMultipleTarget::new(sim, config, client).unwrap();
    sim.bus().flush().unwrap();
    dimt
}

/// Waits (real time) until `f` holds.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Drops the module, waits for the simulator and checks nothing leaked.
pub fn finish(
    sim: &Sim,
    dimt: DeviceInterfaceMultipleTarget<Sim, Recorder>,
) -> Arc<Dimt<Sim, Recorder>> {
    let module = dimt.module();
    drop(dimt);
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    assert_eq!(module.target_count(), 0);
    assert_eq!(module.open_target_count(), 0);
    check_order(&module.client().events(), true).unwrap();
    module
}

pub fn assert_clean(sim: &Sim) {
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    let c = sim.counters();
    assert!(c.is_clean(), "{c}");
    assert_eq!(c.callback_panics, 0, "{c}");
}
