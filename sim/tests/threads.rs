//! Simulator threads are named and all stop when the last handle drops
//! (alone in its binary, so no other simulator's threads are counted).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dmf_sim::{Sim, SimConfig, TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER};
use dmf_wdf::{IoTarget, Platform, RequestType, SendOptions, Timer, TimerHandler};

fn sim_threads() -> Vec<String> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{me}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| c.starts_with("dmf-sim-"))
        .collect()
}

fn wait_for_threads(n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = sim_threads();
        if t.len() == n || Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Nop;
impl TimerHandler for Nop {
    fn fired(&self) {}
}

#[test]
fn no_thread_outlives_the_simulator() {
    if !cfg!(target_os = "linux") {
        return;
    }
    assert!(sim_threads().is_empty());
    {
        let sim = Sim::new(
            SimConfig::default()
                .with_completion_threads(3)
                .with_passive_threads(2),
        );
        // scheduler + 3 completion + 2 passive + pnp
        assert_eq!(wait_for_threads(7).len(), 7, "{:?}", sim_threads());
        let (_, link) = add_device(
            &sim,
            "t",
            GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
            Arc::new(TestsIoctlHandler::default()),
        );
        let target = open(
            &sim,
            &link,
            &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
        );
        let request = sim.create_request(Some(&*target)).unwrap();
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(
                    &request,
                    RequestType::Ioctl,
                    dmf_sim::ioctl_handler::IOCTL_ZEROSIZE,
                    None,
                    None,
                )
                .unwrap()
        };
        let rec = Recorder::new();
        target
            .send(&request, SendOptions::default(), rec.clone())
            .unwrap();
        let timer = sim.create_timer(Arc::new(Nop)).unwrap();
        timer.start(60_000);
        // Objects hold handles: dropping `sim` first does not stop anything.
        drop(sim);
        assert_eq!(sim_threads().len(), 7);
        target.close(); // cancels the ZEROSIZE wait
        assert_eq!(rec.count(), 1);
        drop((timer, request, target));
    }
    assert_eq!(wait_for_threads(0), Vec::<String>::new());

    // Manual mode: no scheduler or completion threads.
    let sim = Sim::new(SimConfig::manual().with_passive_threads(1));
    assert_eq!(wait_for_threads(2).len(), 2, "{:?}", sim_threads());
    drop(sim);
    assert!(wait_for_threads(0).is_empty());
}
