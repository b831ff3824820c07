//! Shared test fixtures: a simulator with one device and an open target.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dmf_sim::{
    DeviceHandler, DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, SimIoTarget, TestsIoctlHandler,
};
use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, ShareAccess, Status, TargetEvents};

pub struct NoEvents;
impl TargetEvents for NoEvents {
    fn query_remove(&self) -> Status {
        Status::SUCCESS
    }
    fn remove_canceled(&self) {}
    fn remove_complete(&self) {}
}

/// A simulator with one device answering with `handler`, and an open target to it.
pub fn sim_with_device(
    config: SimConfig,
    handler: Arc<dyn DeviceHandler>,
) -> (Sim, Arc<SimIoTarget>) {
    let sim = Sim::new(config);
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("dev", handler))
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
            Arc::new(NoEvents),
        )
        .unwrap();
    (sim, Arc::new(target))
}

/// A simulator with DMF's Tests_IoctlHandler (random delays up to `max_delay_ms`).
pub fn sim_with_ioctl_handler(max_delay_ms: u32) -> (Sim, Arc<SimIoTarget>) {
    let handler = TestsIoctlHandler::new(IoctlHandlerConfig {
        max_random_delay_ms: max_delay_ms,
        ..IoctlHandlerConfig::default()
    });
    sim_with_device(SimConfig::default(), Arc::new(handler))
}

/// Waits (real time) until `cond` holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Drops the target and checks the simulator's leak counters.
pub fn assert_clean(sim: &Sim, target: Arc<SimIoTarget>) {
    assert!(
        sim.wait_quiescent(Duration::from_secs(10)),
        "sim not quiescent"
    );
    target.close();
    drop(target);
    let counters = sim.counters();
    assert!(counters.is_clean(), "{counters}");
}
