//! DMF's PnP churn on the simulated bus: devices exposing
//! the interface are plugged, removed (orderly), query-removed then
//! cancelled, surprise-removed, and their interface toggled; and the client
//! device's power cycles (CRT-7, DIMT power forwarding).

use std::sync::Arc;

use dmf_sim::{
    DeviceId, DeviceSpec, IoctlHandlerConfig, RemovalOutcome, Sim, SplitMix64, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};

use super::stats::Stats;

/// A child device of the soak.
#[derive(Clone, Copy, Debug)]
struct Child {
    id: DeviceId,
    interface_on: bool,
}

/// The bus churn.
pub(crate) struct Churn {
    sim: Sim,
    stats: Arc<Stats>,
    children: Vec<Child>,
    max: usize,
    plugged: u64,
}

/// The device every test target talks to: `Tests_IoctlHandler` with short
/// random delays (DMF: up to 5 s; scaled down for a soak of seconds).
pub(crate) fn handler() -> Arc<TestsIoctlHandler> {
    Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
        max_random_delay_ms: 20,
        handle_internal_ioctls: false,
    }))
}

impl Churn {
    pub(crate) fn new(sim: &Sim, stats: Arc<Stats>, max: usize) -> Self {
        Churn {
            sim: sim.clone(),
            stats,
            children: Vec::new(),
            max: max.max(1),
            plugged: 0,
        }
    }

    pub(crate) fn plug(&mut self) {
        self.plugged += 1;
        let spec = DeviceSpec::new(format!("soak-child-{:03}", self.plugged), handler())
            .with_interface(GUID);
        match self.sim.bus().add_device(spec) {
            Ok(id) => {
                self.children.push(Child {
                    id,
                    interface_on: true,
                });
                self.stats.op("pnp.plug");
            }
            Err(s) => self.stats.status("pnp", s),
        }
    }

    /// One random bus event.
    pub(crate) fn step(&mut self, rng: &mut SplitMix64) -> &'static str {
        if self.children.is_empty()
            || (self.children.len() < self.max && rng.chance_per_million(250_000))
        {
            self.plug();
            return "plug";
        }
        let i = rng.range_inclusive(0, self.children.len() as u64 - 1) as usize;
        let child = self.children[i];
        let bus = self.sim.bus();
        match rng.range_inclusive(0, 99) {
            0..=24 => match bus.remove_device(child.id) {
                Ok(outcome) => {
                    self.stats.op(match outcome {
                        RemovalOutcome::Removed => "pnp.remove.removed",
                        RemovalOutcome::Vetoed { .. } => "pnp.remove.vetoed",
                        RemovalOutcome::HandlesStillOpen { .. } => "pnp.remove.handles_open",
                        RemovalOutcome::Cancelled => "pnp.remove.cancelled",
                    });
                    if outcome == RemovalOutcome::Removed {
                        self.children.swap_remove(i);
                    }
                    "remove"
                }
                Err(s) => {
                    self.stats.status("pnp", s);
                    "remove"
                }
            },
            25..=44 => {
                match bus.query_remove_then_cancel(child.id) {
                    Ok(_) => self.stats.op("pnp.query_remove_then_cancel"),
                    Err(s) => self.stats.status("pnp", s),
                }
                "query-remove then cancel"
            }
            45..=59 => {
                match bus.surprise_remove(child.id) {
                    Ok(()) => {
                        self.stats.op("pnp.surprise_remove");
                        self.children.swap_remove(i);
                    }
                    Err(s) => self.stats.status("pnp", s),
                }
                "surprise remove"
            }
            _ => {
                let r = if child.interface_on {
                    bus.disable_interface(child.id, &GUID)
                } else {
                    bus.enable_interface(child.id, &GUID)
                };
                match r {
                    Ok(()) => {
                        self.stats.op(if child.interface_on {
                            "pnp.interface_off"
                        } else {
                            "pnp.interface_on"
                        });
                        self.children[i].interface_on = !child.interface_on;
                    }
                    Err(s) => self.stats.status("pnp", s),
                }
                "interface toggle"
            }
        }
    }

    /// Removes every child (orderly, else by surprise).
    pub(crate) fn unplug_all(&mut self) -> Result<(), String> {
        for child in std::mem::take(&mut self.children) {
            match self.sim.bus().remove_device(child.id) {
                Ok(RemovalOutcome::Removed) => {}
                Ok(other) => {
                    self.sim
                        .bus()
                        .surprise_remove(child.id)
                        .map_err(|s| format!("surprise removal of {:?} failed: {s}", child.id))?;
                    self.stats.status(
                        "pnp",
                        match other {
                            RemovalOutcome::Vetoed { status } => status,
                            _ => dmf_wdf::Status::DEVICE_BUSY,
                        },
                    );
                }
                Err(s) => return Err(format!("removal of {:?} failed: {s}", child.id)),
            }
        }
        Ok(())
    }

    pub(crate) fn present(&self) -> usize {
        self.children.len()
    }
}
