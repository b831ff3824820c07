//! The client device drives PnP/power callbacks in WDF order.

mod common;

use std::sync::Arc;

use common::Log;
use dmf_sim::{ClientState, Sim, SimConfig};
use dmf_wdf::{DeviceCallbacks, PowerState, Status};

struct Layer {
    name: &'static str,
    log: Log,
    fail: Option<&'static str>,
}

impl Layer {
    fn step(&self, what: &str) -> dmf_wdf::Result<()> {
        self.log.push(format!("{}.{}", self.name, what));
        if self.fail == Some(what) {
            Err(Status::UNSUCCESSFUL)
        } else {
            Ok(())
        }
    }
}

fn ps(p: PowerState) -> &'static str {
    match p {
        PowerState::D3Final => "D3Final",
        PowerState::D3 => "D3",
        _ => "other",
    }
}

impl DeviceCallbacks for Layer {
    fn prepare_hardware(&self) -> dmf_wdf::Result<()> {
        self.step("prepare")
    }
    fn release_hardware(&self) -> dmf_wdf::Result<()> {
        self.step("release")
    }
    fn d0_entry(&self, previous: PowerState) -> dmf_wdf::Result<()> {
        self.step(&format!("d0_entry({})", ps(previous)))
    }
    fn d0_exit(&self, target: PowerState) -> dmf_wdf::Result<()> {
        self.step(&format!("d0_exit({})", ps(target)))
    }
}

fn device(log: &Log, fail: [Option<&'static str>; 2]) -> dmf_sim::ClientDevice {
    let sim = Sim::new(SimConfig::default());
    let d = sim.client_device();
    d.register(Arc::new(Layer {
        name: "a",
        log: log.clone(),
        fail: fail[0],
    }));
    d.register(Arc::new(Layer {
        name: "b",
        log: log.clone(),
        fail: fail[1],
    }));
    d
}

#[test]
fn wdf_order_entry_in_order_exit_in_reverse() {
    let log = Log::default();
    let d = device(&log, [None, None]);
    d.start().unwrap();
    assert_eq!(d.state(), ClientState::D0);
    d.power_cycle().unwrap();
    d.stop().unwrap();
    assert_eq!(d.state(), ClientState::Stopped);
    assert_eq!(
        log.take(),
        [
            "a.prepare",
            "b.prepare",
            "a.d0_entry(D3Final)",
            "b.d0_entry(D3Final)",
            "b.d0_exit(D3)",
            "a.d0_exit(D3)",
            "a.d0_entry(D3)",
            "b.d0_entry(D3)",
            "b.d0_exit(D3Final)",
            "a.d0_exit(D3Final)",
            "b.release",
            "a.release",
        ]
    );
    // Wrong-state transitions are refused.
    assert_eq!(d.power_up(), Err(Status::INVALID_DEVICE_STATE));
    assert_eq!(d.stop(), Err(Status::INVALID_DEVICE_STATE));
    // Stop from D3 skips D0 exit.
    d.start().unwrap();
    d.power_down().unwrap();
    log.take();
    d.stop().unwrap();
    assert_eq!(log.take(), ["b.release", "a.release"]);
}

#[test]
fn failures_unwind_what_succeeded() {
    let log = Log::default();
    let d = device(&log, [None, Some("prepare")]);
    assert_eq!(d.start(), Err(Status::UNSUCCESSFUL));
    assert_eq!(log.take(), ["a.prepare", "b.prepare", "a.release"]);
    assert_eq!(d.state(), ClientState::Stopped);

    let d = device(&log, [None, Some("d0_entry(D3Final)")]);
    assert_eq!(d.start(), Err(Status::UNSUCCESSFUL));
    assert_eq!(
        log.take(),
        [
            "a.prepare",
            "b.prepare",
            "a.d0_entry(D3Final)",
            "b.d0_entry(D3Final)",
            "a.d0_exit(D3Final)",
            "b.release",
            "a.release"
        ]
    );

    let d = device(&log, [Some("d0_exit(D3)"), Some("d0_entry(D3)")]);
    d.start().unwrap();
    log.take();
    assert_eq!(d.power_down(), Err(Status::UNSUCCESSFUL));
    assert_eq!(
        log.take(),
        ["b.d0_exit(D3)", "a.d0_exit(D3)"],
        "every layer is told, first failure returned"
    );
    assert_eq!(d.state(), ClientState::D3);
    assert_eq!(d.power_up(), Err(Status::UNSUCCESSFUL));
    assert_eq!(
        log.take(),
        ["a.d0_entry(D3)", "b.d0_entry(D3)", "a.d0_exit(D3)"]
    );
    assert_eq!(d.state(), ClientState::D3);
}
