//! Sends whose completion runs inside `send` (inline completion, as KMDF
//! does when the lower driver completes at once).
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_request_target::{RequestTargetConfig, SendParams};
use dmf_sim::{FixedResponseDevice, InlineCompletion, SimConfig};
use dmf_wdf::Status;

/// Inline completions of many sends, with and without cancel ids, at both
/// delivery levels: every callback runs exactly once and nothing leaks.
#[test]
fn every_inline_completion_is_delivered_once() {
    for config in [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ] {
        let f = Fixture::new(
            SimConfig::default().with_inline_completion(InlineCompletion::Always),
            Arc::new(FixedResponseDevice::new(Status::SUCCESS, Some(0))),
            config,
        );
        let recorder = Recorder::new();
        for i in 0..200usize {
            // Safe sends: the output vector travels with the request and
            // comes back to the callback, also when it runs inside `send`.
            let output = Some(vec![0u8; 8].into());
            if i % 2 == 0 {
                f.module
                    .send(
                        None,
                        output,
                        SendParams::read(),
                        Some(recorder.owned_callback()),
                        i,
                    )
                    .unwrap();
            } else {
                let id = f
                    .module
                    .send_ex(
                        None,
                        output,
                        SendParams::read(),
                        Some(recorder.owned_callback()),
                        i,
                    )
                    .unwrap();
                // Completed already (inline, or its passive delivery is
                // queued): too late to cancel.
                assert!(!f.module.cancel(id));
            }
        }
        assert!(f.sim.wait_quiescent(Duration::from_secs(10)));
        let records = recorder.records.lock().unwrap().clone();
        assert_eq!(records.len(), 200);
        let mut contexts: Vec<usize> = records.iter().map(|r| r.client_context).collect();
        contexts.sort_unstable();
        assert_eq!(contexts, (0..200).collect::<Vec<_>>());
        assert!(f.sim.counters().inline_deliveries >= 200);
        f.finish();
    }
}
