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

/// The shell's IOCTL path against the PnP/power callbacks: two threads send
/// IOCTLs while the device powers down and up, stops, starts again and is
/// removed. Every IOCTL completes with success, `STATUS_DEVICE_NOT_READY`
/// (no driver logic between release-hardware and the next prepare) or, once
/// the device is being deleted, `STATUS_DELETE_PENDING`; nothing leaks.
#[test]
fn ioctls_race_with_power_transitions_and_removal() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use dmf_kmdf_emu::Machine;
    use dmf_sim::{Sim, SimConfig};
    use dmf_wdf::Status;
    use sample_driver::ioctl::{decode_statistics, IOCTL_SAMPLE_GET_STATISTICS};

    let sim = Sim::new(SimConfig::default().with_seed(11));
    let machine = Machine::new(sim.clone());
    let mut devices = BTreeMap::new();
    let ids = [
        driver_run::add_counting_device(&sim, "race-0", &mut devices),
        driver_run::add_counting_device(&sim, "race-1", &mut devices),
    ];
    // SAFETY: the sample driver's DriverEntry.
    let status = unsafe { machine.load_driver(driver_run::DriverEntry, "sample_driver") };
    assert_eq!(status, Status::SUCCESS);
    let device = machine.add_device().unwrap();
    let io = Arc::new(device.io_control());
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let io = Arc::clone(&io);
            std::thread::spawn(move || {
                let mut seen: BTreeMap<Status, u64> = BTreeMap::new();
                loop {
                    let (status, reply) = io.send(IOCTL_SAMPLE_GET_STATISTICS, 1 << 16);
                    *seen.entry(status).or_default() += 1;
                    if status == Status::SUCCESS {
                        decode_statistics(&reply).expect("a reply decodes");
                    }
                    if status == Status::DELETE_PENDING {
                        return seen;
                    }
                }
            })
        })
        .collect();
    for _ in 0..2 {
        device.start().unwrap();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(5));
            device.power_down().unwrap();
            device.power_up().unwrap();
        }
        device.stop().unwrap();
    }
    device.start().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    device.remove().unwrap();
    let mut seen: BTreeMap<Status, u64> = BTreeMap::new();
    for sender in senders {
        for (status, n) in sender.join().expect("a sender thread") {
            *seen.entry(status).or_default() += n;
        }
    }
    machine.unload_driver();
    for id in ids {
        let _ = sim.bus().remove_device(id);
    }
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    assert!(
        seen.get(&Status::SUCCESS).copied().unwrap_or(0) > 0,
        "{seen:?}"
    );
    assert!(
        seen.keys().all(|s| [
            Status::SUCCESS,
            Status::DEVICE_NOT_READY,
            Status::DELETE_PENDING
        ]
        .contains(s)),
        "{seen:?}"
    );
    assert_eq!(machine.leaks(), Vec::<String>::new());
    let c = sim.counters();
    assert!(c.is_clean(), "{c}");
    assert!(sim.take_callback_panics().is_empty());
}
