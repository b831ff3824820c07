//! DIMT streaming to devices that complete every request inline (inside
//! `send`, and inside the cancels of close, stop and purge), through arrival,
//! remove-cancel, orderly and surprise removal.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::{ContinuousRequestTargetConfig, StreamMode};
use dmf_device_interface_multiple_target::*;
use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
use dmf_sim::{
    DeviceId, DeviceSpec, FixedResponseDevice, InlineCompletion, RemovalOutcome, Sim, SimConfig,
};
use dmf_wdf::{RequestType, Status};

use TargetStateType as S;

const SECOND: Duration = Duration::from_secs(1);

/// A device completing every request inside `send` (`delay_ms == 0`), or
/// after `delay_ms` unless cancelled first (then inside the cancel).
fn inline_device(sim: &Sim, name: &str, delay_ms: u64) -> DeviceId {
    let device = FixedResponseDevice::new(Status::SUCCESS, None).with_delay_ms(delay_ms, true);
    sim.bus()
        .add_device(DeviceSpec::new(name, Arc::new(device)).with_interface(GUID))
        .unwrap()
}

#[test]
fn streaming_with_inline_completion_survives_every_removal_path() {
    let sim = Sim::new(SimConfig::default().with_inline_completion(InlineCompletion::Always));
    // `a` and `c` hold their requests for 10 ms: the close of a query-remove
    // and of a surprise removal cancels them, completing them inline.
    let a = inline_device(&sim, "a", 10);
    let b = inline_device(&sim, "b", 0);
    let c = inline_device(&sim, "c", 10);
    let config = DeviceInterfaceMultipleTargetConfig {
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: 2,
            buffer_count_output: 4,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: StreamMode::Automatic,
            ..ContinuousRequestTargetConfig::default()
        },
        ..config(PnpRegisterWhen::Create)
    };
    let dimt = created(&sim, config, Recorder::default());
    assert_eq!(dimt.open_target_count(), 3);
    let handle = |id| dimt.find(&link_of(&sim, id)).expect("tracked");
    let (ta, tb, tc) = (handle(a), handle(b), handle(c));
    for t in [ta, tb, tc] {
        wait_until("streaming", 5 * SECOND, || {
            dimt.client().completions(t) > 10
        });
    }

    // Query-remove then cancel: the target closes (its stream requests are
    // cancelled, completing inline on the PnP thread), reopens and streams.
    assert_eq!(
        sim.bus().query_remove_then_cancel(a),
        Ok(RemovalOutcome::Cancelled)
    );
    assert_eq!(
        dimt.client().states_of(ta),
        [S::Open, S::QueryRemove, S::QueryRemoveCancelled]
    );
    let before = dimt.client().completions(ta);
    wait_until("streaming again", 5 * SECOND, || {
        dimt.client().completions(ta) > before + 10
    });

    // Orderly and surprise removal of the others.
    assert_eq!(sim.bus().remove_device(b), Ok(RemovalOutcome::Removed));
    sim.bus().surprise_remove(c).unwrap();
    sim.bus().flush().unwrap();
    assert_eq!(dimt.open_target_count(), 1);
    assert!(
        sim.counters().irps_cancelled > 0,
        "a close cancelled a held request"
    );
    assert!(sim.counters().inline_deliveries > 100);
    let module = finish(&sim, dimt);
    drop(module);
    assert_clean(&sim);
}
