//! The shared scenarios (`scenarios/mod.rs`) on the simulator's own platform.

mod scenarios;

use std::time::Duration;

use dmf_sim::Sim;

/// The simulator's platform.
struct SimBackend(Sim);

impl scenarios::Backend for SimBackend {
    type P = Sim;

    fn new(sim: Sim) -> Self {
        SimBackend(sim)
    }

    fn platform(&self) -> Sim {
        self.0.clone()
    }

    fn sim(&self) -> &Sim {
        &self.0
    }

    fn finish(self) {
        assert!(self.0.wait_quiescent(Duration::from_secs(10)));
        let c = self.0.counters();
        assert!(c.is_clean(), "{c}");
        assert!(self.0.take_callback_panics().is_empty());
    }
}

scenario_tests!(SimBackend);
