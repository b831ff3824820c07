//! The CRT's in-flight recorder: a scripted life (open, target, stream,
//! power cycle, stop, close) leaves exactly its transitions, in order, in
//! one recorder shared with the CRT's pool and request target; back-off is
//! entered and left as failures come and go.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::{
    Backoff, ContinuousRequestTarget, ContinuousRequestTargetConfig,
};
use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
use dmf_sim::{FaultPlan, FaultPoint, SimConfig};
use dmf_wdf::recorder::Journal;
use dmf_wdf::{DeviceCallbacks, PowerState, RequestType};

const LONG: Duration = Duration::from_secs(10);

/// The message of every record (without sequence, time, level, subject and
/// fields).
fn messages(journal: &Journal<dmf_sim::Sim>) -> Vec<String> {
    let mut text = String::new();
    journal.recorder().write_to(&mut text).unwrap();
    text.lines()
        .map(|l| {
            let text = l.splitn(5, ' ').nth(4).unwrap();
            let end = text
                .find('=')
                .map_or(text.len(), |eq| text[..eq].rfind(' ').unwrap_or(text.len()));
            text[..end].to_owned()
        })
        .collect()
}

fn config(n: u32) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: n,
        buffer_count_output: n,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        cancel_and_resend_request_in_d0_callbacks: true,
        ..Default::default()
    }
}

#[test]
fn a_scripted_life_records_exactly_its_transitions_in_order() {
    let (sim, target) = sim_with_ioctl_handler(0);
    let crt =
        ContinuousRequestTarget::new(&sim, config(2), Recorder::new(Policy::Default)).unwrap();
    let journal = crt.journal().clone();
    assert_eq!(journal.recorder().name(), "ContinuousRequestTarget");
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    crt.d0_exit(PowerState::D3).unwrap();
    crt.d0_entry(PowerState::D3).unwrap();
    crt.stop().unwrap();
    crt.io_target_clear();
    drop(crt);
    assert_eq!(
        messages(&journal),
        [
            "RequestTarget: opened",
            "BufferPool: source pool opened",
            "CRT: opened",
            "RequestTarget: target set",
            "CRT: target set",
            "CRT: stream start",
            "CRT: D0 exit",
            "CRT: stream stop",
            "CRT: stream stopped",
            "CRT: D0 entry restarts streaming",
            "CRT: stream start",
            "CRT: stream stop",
            "CRT: stream stopped",
            "RequestTarget: target cleared",
            "CRT: target cleared",
            "CRT: closing",
            "RequestTarget: closing",
            "RequestTarget: closed",
            "CRT: closed",
            "BufferPool: source pool closed",
        ]
    );
    assert_clean(&sim, target);
}

#[test]
fn back_off_is_entered_on_failure_and_left_on_success() {
    let handler = dmf_sim::TestsIoctlHandler::new(dmf_sim::IoctlHandlerConfig {
        max_random_delay_ms: 0,
        ..Default::default()
    });
    let (sim, target) = sim_with_device(
        SimConfig::default().with_fault(FaultPoint::RequestFailure, FaultPlan::EveryNth(2)),
        Arc::new(handler),
    );
    let config = ContinuousRequestTargetConfig {
        backoff: Backoff {
            initial_ms: 5,
            max_ms: 100,
        },
        ..config(1)
    };
    let crt =
        ContinuousRequestTarget::new(&sim, config, Recorder::new(Policy::AlwaysContinue)).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("3 back-offs", LONG, || crt.statistics().backoffs >= 3);
    crt.stop().unwrap();
    let got = messages(crt.journal());
    let backoff: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|m| m.contains("back-off"))
        .collect();
    assert!(backoff.len() >= 5, "{got:?}");
    for (i, m) in backoff.iter().enumerate() {
        let want = if i % 2 == 0 {
            "CRT: stream request fails, back-off entered"
        } else {
            "CRT: stream request succeeds again, back-off left"
        };
        assert_eq!(*m, want, "{got:?}");
    }
    drop(crt);
    assert_clean(&sim, target);
}
