//! The whole sample driver on Linux: its real `DriverEntry` and KMDF shell
//! over the emulated KMDF, with the demo's cross-check and leak check.

mod driver_run;

fn assert_clean_run(outcome: &driver_run::Outcome) {
    let report = &outcome.report;
    assert!(
        report.cross_check.is_ok(),
        "cross-check: {:?}\n{}",
        report.cross_check,
        report.summary()
    );
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert!(
        report.counters.is_clean(),
        "simulator leaks:\n{}",
        report.counters
    );
    assert!(
        outcome.machine_leaks.is_empty(),
        "left over on the emulated machine: {:?}",
        outcome.machine_leaks
    );
    assert!(report.reading.header.completed > 0);
    assert!(
        report.reading.header.targets_opened >= 3,
        "every device was followed"
    );
    assert_eq!(outcome.live_readings, 2);
}

#[test]
fn the_kmdf_driver_runs_cross_checks_and_leaks_nothing() {
    let outcome = driver_run::run(0x5EED, 150);
    assert_clean_run(&outcome);
    assert!(
        outcome
            .debug_output
            .iter()
            .any(|l| l.contains("DriverEntry -> 0x00000000")),
        "the shell logs DriverEntry: {:?}",
        outcome.debug_output
    );
}

/// The shell reads the service's `Parameters` key through the emulated
/// registry: a valid value is used (the cross-check counts bytes with it),
/// an out-of-range one is logged and replaced by its default.
#[test]
fn the_driver_reads_its_settings_from_the_parameters_key() {
    let expected = sample_driver::SampleConfig {
        output_size: 64,
        ..sample_driver::SampleConfig::default()
    };
    let outcome = driver_run::run_with(
        3,
        60,
        &[("OutputBufferSize", 64), ("RequestsPerTarget", 0)],
        expected,
    );
    assert_clean_run(&outcome);
    let h = &outcome.report.reading.header;
    assert_eq!(h.bytes, h.completed * 64, "64-byte buffers");
    assert!(
        outcome.debug_output.iter().any(|l| l
            .contains("Parameters\\RequestsPerTarget = 0 is outside 1..=64; using the default 4")),
        "{:?}",
        outcome.debug_output
    );
}
