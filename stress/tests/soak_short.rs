//! A short soak (4 s, fixed seed, faults on): every DMF test scenario
//! runs, the run ends (no hang), nothing leaks, no invariant breaks.

use std::time::Duration;

use dmf_stress::soak::{run, SoakConfig};
use dmf_wdf::Status;

#[test]
fn short_soak_with_faults_passes_and_leaks_nothing() {
    let report = run(&SoakConfig {
        duration: Duration::from_secs(4),
        seed: 0x5EED_0009,
        faults: true,
        stall_timeout: Duration::from_secs(10),
        end_grace: Duration::from_secs(20),
        max_devices: 4,
        progress: true,
        inject_hang: false,
        inject_setup_hang: false,
    });
    println!("{}", report.summary());
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.leak_free, "{}", report.counters);
    assert!(report.passed());

    // Every scenario ran.
    for prefix in [
        "bp.1.acquire",
        "bp.2.return",
        "bp.3.enumerate",
        "bp.4.count",
        "send.sync",
        "send.async",
        "send.short_timeout",
        "cancel.",
        "reuse.created",
        "reuse.deleted",
        "crt.stream.completion",
        "crt.stream_start",
        "crt.stream_stop",
        "dimt.state.open",
        "dimt.stream.completion",
        "pnp.plug",
        "pnp.interface_",
        "power.cycle",
    ] {
        assert!(report.ops_with_prefix(prefix) > 0, "no {prefix} operation");
    }
    // Departures of every kind reached the DIMTs.
    assert!(
        report.ops_with_prefix("dimt.state.close")
            + report.ops_with_prefix("dimt.state.query_remove_complete")
            > 0
    );
    // Requests were cancelled, faults were injected and seen.
    assert!(report.status_count("rt", Status::CANCELLED) > 0);
    assert!(report.status_count("rt", Status::SUCCESS) > 0);
    assert!(!report.faults_injected.is_empty());
    assert!(report.counters.faults_injected > 0);
    assert_eq!(report.counters.irps_sent, report.counters.irps_completed);
}

/// The watchdog fails a run that hangs: exit code 3 and a dump naming the
/// stuck worker and what is outstanding.
#[test]
fn watchdog_fails_a_hung_run_with_a_dump() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_soak"))
        .args([
            "--duration",
            "3",
            "--seed",
            "1",
            "--stall",
            "1",
            "--quiet",
            "--inject-hang",
        ])
        .output()
        .expect("run the soak binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(dmf_stress::soak::WATCHDOG_EXIT_CODE),
        "{stderr}"
    );
    assert!(stderr.contains("WATCHDOG: worker"), "{stderr}");
    // The dump lists what every worker is doing, the stuck one included.
    assert!(
        stderr.contains("hang         blocked on purpose"),
        "{stderr}"
    );
    assert!(stderr.contains("dmf-sim counters"), "{stderr}");
    assert!(stderr.contains("DIMTs:"), "{stderr}");
}

/// Bad arguments exit with 2.
#[test]
fn soak_binary_rejects_bad_arguments() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--duration", "x"])
        .output()
        .expect("run the soak binary");
    assert_eq!(out.status.code(), Some(2));
}
