//! The host run as a test: a short seeded run of the driver logic on the
//! simulator, checked against what the simulated devices saw, plus the
//! binary's command line.
#![cfg(not(all(windows, target_env = "msvc")))]

use std::process::Command;
use std::time::Duration;

use dmf_wdf::Status;
use sample_demo::args::Options;
use sample_demo::{run, INJECTED_FAILURE};
use sample_driver::stats::TargetState;

fn options(seed: u64, secs: f64) -> Options {
    Options {
        devices: 5,
        duration: Duration::from_secs_f64(secs),
        seed,
        live: true,
        log: None,
        recorder: None,
    }
}

#[test]
fn short_run_adds_up_and_leaks_nothing() {
    let mut out = Vec::new();
    let report = run(&options(1, 2.0), &mut out, false).unwrap();
    let text = String::from_utf8(out).unwrap();
    let summary = report.summary();
    let h = &report.reading.header;
    let c = &report.counters;

    // The live view: a frame every 0.5 s, plain text when not a terminal.
    assert!((4..=6).contains(&report.frames), "{} frames", report.frames);
    assert_eq!(
        text.matches("sample-driver on dmf-sim").count(),
        report.frames
    );
    assert!(!text.contains('\x1b'));

    // Every scheduled event did what it meant; with this seed the schedule
    // goes through every kind of event within the first 1.3 s.
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(report.actions.len(), 8, "{:?}", report.actions);

    // The driver's figures equal what the devices and the simulator saw.
    assert_eq!(report.cross_check, Ok(()), "{summary}");
    let total = h.completed + h.errors;
    assert!(h.completed > 500, "{summary}");
    assert_eq!(total, c.irps_completed);
    assert_eq!(c.irps_completed, c.irps_sent);
    let received: u64 = report.devices.values().map(|d| d.0).sum();
    assert_eq!(
        received
            + report.status_count(Status::DELETE_PENDING)
            + report.status_count(INJECTED_FAILURE),
        total
    );
    assert_eq!(report.status_count(Status::CANCELLED), c.irps_cancelled);
    assert_eq!(report.status_count(Status::SUCCESS), h.completed);
    let zeroed: u64 = report.devices.values().map(|d| d.1).sum();
    assert_eq!(zeroed, received * u64::from(report.config.output_size));
    assert_eq!(h.bytes, h.completed * u64::from(report.config.output_size));
    let per_target: u64 = report
        .reading
        .records
        .iter()
        .map(|r| r.completed + r.errors)
        .sum();
    assert_eq!(per_target, total);

    // PnP and power events reached the driver: every power cycle and the
    // final stop closed the targets (one power-down each).
    let cycles = report.actions["power cycle (D0 -> D3 -> D0)"];
    assert_eq!(h.power_downs, cycles + 1);
    assert!(h.query_removes >= 1 && h.remove_cancels >= 1, "{summary}");
    assert_eq!(h.records_total, h.targets_opened);
    assert!(report
        .reading
        .records
        .iter()
        .all(
            |r| matches!(r.state, TargetState::Removed | TargetState::Closed) && r.ended_100ns != 0
        ));
    assert_eq!(h.targets_open, 0);

    // Nothing leaked.
    assert!(c.is_clean(), "{c}");
    assert_eq!(c.callback_panics, 0);
    assert!(summary.contains("cross-check: driver figures match"));
    assert!(summary.contains("leak check: clean"));
}

#[test]
fn the_schedule_is_reproducible_from_the_seed() {
    let a = run(&options(42, 0.8), &mut std::io::sink(), false).unwrap();
    let b = run(&options(42, 0.8), &mut std::io::sink(), false).unwrap();
    assert_eq!(a.actions, b.actions);
    assert!(a.counters.is_clean() && b.counters.is_clean());
    assert_eq!(a.cross_check, Ok(()));
    assert_eq!(b.cross_check, Ok(()));
}

#[test]
fn binary_help_bad_arguments_and_a_quick_run() {
    let exe = env!("CARGO_BIN_EXE_sample-demo");
    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--devices N"));

    let bad = Command::new(exe).args(["--devices", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("between 1 and 64") && err.contains("--help"),
        "{err}"
    );

    let quick = Command::new(exe)
        .args(["-n", "2", "-d", "0.6", "-s", "3"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&quick.stdout);
    assert!(
        quick.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&quick.stderr)
    );
    assert!(out.contains("==== summary ===="));
    assert!(out.contains("leak check: clean"));
    assert!(!out.contains('\x1b'), "stdout is a pipe: no ANSI");
}

/// `sample-demo | head`: the reader goes away after the first lines. The
/// run stops printing, still tears everything down and runs its checks, and
/// exits by the checks (0 here), not with the "check failed" code.
#[test]
fn a_closed_stdout_stops_the_output_but_not_the_teardown() {
    use std::io::Read;
    use std::process::Stdio;
    let exe = env!("CARGO_BIN_EXE_sample-demo");
    let mut child = Command::new(exe)
        .args(["-n", "2", "-d", "1.2", "-s", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first frame, then close the pipe like `head` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("error"), "{err}");
}
