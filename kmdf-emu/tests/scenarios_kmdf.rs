//! The shared scenarios (`scenarios/mod.rs`) on `dmf_kmdf::KmdfPlatform`
//! over the emulated KMDF: the kernel backend's translation, executed.

mod scenarios;

use std::time::Duration;

use dmf_kmdf::KmdfPlatform;
use dmf_kmdf_emu::{Device, Machine};
use dmf_sim::Sim;

/// `KmdfPlatform` on a bare device of an emulated machine.
struct KmdfBackend {
    machine: Machine,
    device: Option<Device>,
}

impl scenarios::Backend for KmdfBackend {
    type P = KmdfPlatform;

    fn new(sim: Sim) -> Self {
        let machine = Machine::new(sim);
        let device = machine.bare_device();
        KmdfBackend {
            machine,
            device: Some(device),
        }
    }

    fn platform(&self) -> KmdfPlatform {
        let device = self
            .device
            .as_ref()
            .expect("the device exists until finish");
        // SAFETY: the device outlives every layer of the scenario (finish
        // removes it after they were dropped).
        unsafe { KmdfPlatform::new(device.handle()) }
    }

    fn sim(&self) -> &Sim {
        self.machine.sim()
    }

    fn finish(mut self) {
        let sim = self.machine.sim().clone();
        assert!(sim.wait_quiescent(Duration::from_secs(10)));
        self.device.take().expect("once").remove().unwrap();
        self.machine.unload_driver();
        let leaks = self.machine.leaks();
        assert!(
            leaks.is_empty(),
            "left over on the emulated machine: {leaks:?}"
        );
        let c = sim.counters();
        assert!(c.is_clean(), "{c}");
        assert!(sim.take_callback_panics().is_empty());
    }
}

scenario_tests!(KmdfBackend);
