//! Fault injection is reproducible from the seed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_sim::{
    ClockMode, FaultPlan, FaultPoint, FixedResponseDevice, InlineCompletion, Latency, Sim,
    SimConfig,
};
use dmf_wdf::{Guid, IoTarget, Platform, Request, RequestType, SendOptions, Status};

const GUID: Guid = Guid::from_u128(0xEEEE_0000_0000_0000_0000_0000_0000_0001);

/// Runs a fixed workload and returns what happened to each send:
/// (refused?, status, completion time in ms).
fn workload(seed: u64, clock: ClockMode) -> Vec<(Option<Status>, Option<Status>, u64)> {
    let config = SimConfig::default()
        .with_seed(seed)
        .with_clock(clock)
        .with_latency(Latency::new(0, 2_000))
        // Latency (and its spikes) applies to deferred completions only.
        .with_inline_completion(InlineCompletion::Off)
        .with_fault(FaultPoint::RequestFailure, FaultPlan::Probability(250_000))
        .with_fault(FaultPoint::SendRefusal, FaultPlan::Probability(100_000))
        .with_fault_status(
            FaultPoint::RequestCreation,
            FaultPlan::EveryNth(7),
            Status::NO_MEMORY,
        );
    let sim = Sim::new(config);
    sim.faults()
        .set_latency_spike(FaultPlan::Probability(200_000), 25);
    let (_, link) = add_device(
        &sim,
        "d",
        GUID,
        Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(1))),
    );
    let target = open(
        &sim,
        &link,
        &Events::new("t", &Log::default(), OnQuery::AcceptAndClose),
    );
    let mut out = Vec::new();
    for _ in 0..150 {
        let request = match sim.create_request(Some(&*target)) {
            Ok(r) => r,
            Err(status) => {
                out.push((Some(status), None, 0));
                continue;
            }
        };
        // SAFETY: no buffers.
        unsafe {
            target
                .format_request(&request, RequestType::Read, 0, None, None)
                .unwrap()
        };
        let rec = Recorder::new();
        let start = sim.now_ms();
        match target.send(&request, SendOptions::default(), rec.clone()) {
            Err(status) => out.push((Some(status), None, 0)),
            Ok(()) => {
                if clock == ClockMode::Manual {
                    while rec.count() == 0 {
                        sim.advance(1);
                    }
                    out.push((None, rec.last().map(|c| c.status), sim.now_ms() - start));
                } else {
                    assert!(rec.wait_for(1, Duration::from_secs(5)));
                    // Real time is not reproducible; only the decisions are.
                    out.push((None, rec.last().map(|c| c.status), 0));
                }
            }
        }
        request.reuse().unwrap();
    }
    drop(target);
    assert_clean(&sim);
    out
}

#[test]
fn same_seed_same_faults_and_timing_in_manual_mode() {
    let a = workload(42, ClockMode::Manual);
    let b = workload(42, ClockMode::Manual);
    assert_eq!(a, b);
    let c = workload(43, ClockMode::Manual);
    assert_ne!(a, c, "a different seed gives a different run");
    let refused = a
        .iter()
        .filter(|r| r.0 == Some(Status::INSUFFICIENT_RESOURCES))
        .count();
    let no_memory = a.iter().filter(|r| r.0 == Some(Status::NO_MEMORY)).count();
    let failed = a
        .iter()
        .filter(|r| r.1 == Some(Status::UNSUCCESSFUL))
        .count();
    let spiked = a.iter().filter(|r| r.2 >= 25).count();
    assert_eq!(no_memory, 150 / 7);
    assert!(
        refused > 0 && failed > 0 && spiked > 0,
        "{refused} {failed} {spiked}"
    );
}

#[test]
fn same_seed_same_fault_decisions_with_real_threads() {
    let a = workload(9, ClockMode::Real);
    let b = workload(9, ClockMode::Real);
    assert_eq!(a, b);
}
