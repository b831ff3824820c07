//! The whole sample driver on Linux: its real `DriverEntry` and KMDF shell
//! over the emulated KMDF, with the demo's cross-check and leak check.

mod driver_run;

#[test]
fn the_kmdf_driver_runs_cross_checks_and_leaks_nothing() {
    let outcome = driver_run::run(0x5EED, 150);
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
    assert!(
        outcome
            .debug_output
            .iter()
            .any(|l| l.contains("DriverEntry -> 0x00000000")),
        "the shell logs DriverEntry: {:?}",
        outcome.debug_output
    );
}
