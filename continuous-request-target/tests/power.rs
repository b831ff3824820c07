//! Power policy (with the power fixes of `docs/dmf-differences.md`) on the simulator's client
//! device: DMF's CRT-7 power scenario and the D0 flag matrix.
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::{
    encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER, IOCTL_ZEROSIZE, SLEEP_INPUT_SIZE,
};
use dmf_sim::{ClientDevice, ParkingDevice, Sim, SimIoTarget};
use dmf_wdf::{DeviceCallbacks, IoTarget, PowerState, RequestType, TargetState};

const LONG: Duration = Duration::from_secs(10);

fn flags(purge: bool, resend: bool, n: u32) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: n,
        buffer_count_output: n,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        purge_and_start_target_in_d0_callbacks: purge,
        cancel_and_resend_request_in_d0_callbacks: resend,
        ..Default::default()
    }
}

fn device_with(crt: &ContinuousRequestTarget<Sim, impl StreamClient<Sim>>) -> ClientDevice {
    let device = ClientDevice::new();
    device.register(Arc::new(crt.device_callbacks()));
    device
}

struct Parked {
    sim: Sim,
    target: Arc<SimIoTarget>,
    parking: Arc<ParkingDevice>,
    crt: ContinuousRequestTarget<Sim, ()>,
    device: ClientDevice,
}

fn parked(purge: bool, resend: bool) -> Parked {
    let (sim, target, parking) = sim_with_parking();
    let crt = ContinuousRequestTarget::new(&sim, flags(purge, resend, 3), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    let device = device_with(&crt);
    // First power-up (from D3Final): nothing to restart.
    device.start().unwrap();
    assert_eq!(crt.stream_state(), StreamState::Stopped);
    Parked {
        sim,
        target,
        parking,
        crt,
        device,
    }
}

impl Parked {
    fn finish(self) {
        self.device.stop().unwrap();
        drop(self.device);
        drop(self.crt);
        assert_eq!(self.parking.pending(), 0);
        assert_clean(&self.sim, self.target);
    }
}

/// Either power flag enables the power callbacks: `cancel_and_resend` works without `purge_and_start`: D0 exit
/// stops streaming (cancelling everything), D0 entry resends.
#[test]
fn cancel_and_resend_alone() {
    let p = parked(false, true);
    p.crt.start().unwrap();
    assert!(p.parking.wait_for_pending(3, LONG));
    p.device.power_down().unwrap();
    assert_eq!(p.parking.pending(), 0);
    assert_eq!(p.crt.stream_state(), StreamState::Stopped);
    assert_eq!(p.target.state(), TargetState::Started, "not purged");
    assert_eq!(p.crt.statistics().completions_during_stop, 3);
    p.device.power_up().unwrap();
    assert!(p.crt.is_streaming());
    assert!(p.parking.wait_for_pending(3, LONG));
    p.finish();
}

/// Purge-only mode restarts streaming at D0 entry: with `purge_and_start` alone streaming is stopped before the
/// purge and restarted after the target was restarted.
#[test]
fn purge_only_restarts_streaming_that_ran() {
    let p = parked(true, false);
    p.crt.start().unwrap();
    assert!(p.parking.wait_for_pending(3, LONG));
    p.device.power_down().unwrap();
    assert_eq!(p.parking.pending(), 0);
    assert_eq!(p.target.state(), TargetState::Stopped, "purged");
    assert_eq!(p.crt.stream_state(), StreamState::Stopped);
    assert_eq!(p.crt.statistics().retired(), 3);
    p.device.power_up().unwrap();
    assert_eq!(p.target.state(), TargetState::Started);
    assert!(p.crt.is_streaming());
    assert!(p.parking.wait_for_pending(3, LONG));
    p.finish();
}

/// D0 entry restarts the target before streaming: with both flags the target is restarted *before* streaming,
/// so the restart sends are accepted.
#[test]
fn both_flags_restart_target_then_stream() {
    let p = parked(true, true);
    p.crt.start().unwrap();
    assert!(p.parking.wait_for_pending(3, LONG));
    for _ in 0..3 {
        p.device.power_down().unwrap();
        assert_eq!(p.parking.pending(), 0);
        assert_eq!(p.target.state(), TargetState::Stopped);
        p.device.power_up().unwrap();
        assert_eq!(p.target.state(), TargetState::Started);
        assert!(p.crt.is_streaming());
        assert!(p.parking.wait_for_pending(3, LONG));
    }
    assert_eq!(p.crt.statistics().retired_send_failed, 0);
    p.finish();
}

/// D0 entry restarts streaming only if it ran: streaming the client never started is not started at D0 entry.
#[test]
fn never_started_stays_stopped() {
    for (purge, resend) in [(true, true), (false, true), (true, false)] {
        let p = parked(purge, resend);
        p.device.power_cycle().unwrap();
        assert_eq!(p.crt.stream_state(), StreamState::Stopped);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(p.parking.pending(), 0);
        assert_eq!(p.crt.statistics().sends, 0);
        p.finish();
    }
}

/// An explicit `stop` while the device is in low power cancels the resume.
#[test]
fn explicit_stop_in_low_power_cancels_resume() {
    let p = parked(false, true);
    p.crt.start().unwrap();
    assert!(p.parking.wait_for_pending(3, LONG));
    p.device.power_down().unwrap();
    p.crt.stop().unwrap();
    p.device.power_up().unwrap();
    assert_eq!(p.crt.stream_state(), StreamState::Stopped);
    assert_eq!(p.parking.pending(), 0);
    p.finish();
}

/// Without either flag the CRT ignores power transitions (DMF registers no
/// D0 callbacks then): streaming continues through D3.
#[test]
fn no_flags_no_power_handling() {
    let p = parked(false, false);
    p.crt.start().unwrap();
    assert!(p.parking.wait_for_pending(3, LONG));
    p.device.power_down().unwrap();
    assert_eq!(p.parking.pending(), 3);
    assert!(p.crt.is_streaming());
    p.device.power_up().unwrap();
    assert_eq!(p.parking.pending(), 3);
    p.finish();
}

/// The CRT itself implements `DeviceCallbacks`, like its power handle; the
/// handle does nothing once the CRT is gone.
#[test]
fn crt_is_device_callbacks_and_handle_is_weak() {
    let (sim, target, parking) = sim_with_parking();
    let crt = ContinuousRequestTarget::new(&sim, flags(true, true, 2), ()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    assert!(parking.wait_for_pending(2, LONG));
    crt.d0_exit(PowerState::D3).unwrap();
    assert_eq!(parking.pending(), 0);
    crt.d0_entry(PowerState::D3).unwrap();
    assert!(parking.wait_for_pending(2, LONG));
    let handle = crt.device_callbacks();
    drop(crt);
    assert_eq!(parking.pending(), 0);
    handle.d0_exit(PowerState::D3).unwrap();
    handle.d0_entry(PowerState::D3).unwrap();
    drop(handle);
    assert_clean(&sim, target);
}

/// CRT-7 (DMF's DefaultTarget power test): instances (b) SLEEP input, (c)
/// ZEROBUFFER output and (d) zero-size stream on one target; across power
/// cycles each stops at D0 exit and streams again after D0 entry.
#[test]
fn crt7_power_cycles() {
    let (sim, target) = sim_with_ioctl_handler(2);
    let base = ContinuousRequestTargetConfig {
        continuous_request_count: 1,
        request_type: RequestType::Ioctl,
        passive_level: true,
        purge_and_start_target_in_d0_callbacks: true,
        cancel_and_resend_request_in_d0_callbacks: true,
        ..Default::default()
    };
    let b = ContinuousRequestTarget::new(
        &sim,
        ContinuousRequestTargetConfig {
            buffer_count_input: 1,
            buffer_input_size: SLEEP_INPUT_SIZE as u32,
            buffer_count_output: 1,
            buffer_output_size: SLEEP_INPUT_SIZE as u32,
            continuous_request_target_ioctl: IOCTL_SLEEP,
            ..base
        },
        Recorder::new(Policy::Default),
    )
    .unwrap();
    *b.client().input_bytes.lock().unwrap() = encode_sleep(1).to_vec();
    let c = ContinuousRequestTarget::new(
        &sim,
        ContinuousRequestTargetConfig {
            buffer_count_output: 1,
            buffer_output_size: 4,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            ..base
        },
        Recorder::new(Policy::Default),
    )
    .unwrap();
    let d = ContinuousRequestTarget::new(
        &sim,
        ContinuousRequestTargetConfig {
            continuous_request_target_ioctl: IOCTL_ZEROSIZE,
            ..base
        },
        Recorder::new(Policy::Default),
    )
    .unwrap();
    // Each instance purges and restarts its own target.
    let targets = [
        target.clone(),
        open_another_target(&sim),
        open_another_target(&sim),
    ];
    let device = ClientDevice::new();
    for (crt, t) in [&b, &c, &d].into_iter().zip(&targets) {
        crt.io_target_set(t.clone()).unwrap();
        device.register(Arc::new(crt.device_callbacks()));
    }
    device.start().unwrap();
    for crt in [&b, &c, &d] {
        crt.start().unwrap();
    }
    for cycle in 0..4 {
        for crt in [&b, &c, &d] {
            let before = crt.client().successes();
            wait_until("progress", LONG, || crt.client().successes() >= before + 3);
        }
        device.power_down().unwrap();
        for crt in [&b, &c, &d] {
            assert_eq!(crt.stream_state(), StreamState::Stopped, "cycle {cycle}");
            assert_eq!(crt.active_stream_requests(), 0);
            assert!(crt.client().retirements().is_empty(), "cycle {cycle}");
        }
        for t in &targets {
            assert_eq!(t.outstanding(), 0);
            assert_eq!(t.state(), TargetState::Stopped);
        }
        device.power_up().unwrap();
        for crt in [&b, &c, &d] {
            assert!(
                crt.is_streaming(),
                "cycle {cycle}: {:?} {:?} {:?}",
                crt.stream_state(),
                crt.statistics(),
                crt.client().retirements()
            );
        }
    }
    // The sleep input reached the device (1..=N ms sleeps) and outputs were checked.
    for (status, information, data, _) in c.client().seen.lock().unwrap().iter() {
        if status.is_success() {
            assert_eq!(*information, 4);
            assert_eq!(data.as_deref(), Some(&[0u8, 0, 0, 0][..]));
        }
    }
    for (status, information, data, _) in d.client().seen.lock().unwrap().iter() {
        if status.is_success() {
            assert_eq!(*information, 0);
            assert!(data.is_none());
        }
    }
    device.stop().unwrap();
    drop((b, c, d));
    drop(device);
    let [t0, t1, t2] = targets;
    drop(target);
    t1.close();
    t2.close();
    drop((t1, t2));
    assert_clean(&sim, t0);
}
