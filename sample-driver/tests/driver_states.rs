//! The driver logic follows each PnP and power event to the right target
//! record, step by step (DIMT state callbacks -> the driver's IOCTL view).
#![cfg(not(all(windows, target_env = "msvc")))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use dmf_sim::{
    DeviceSpec, IoctlHandlerConfig, RemovalOutcome, Sim, SimConfig, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::DeviceCallbacks;
use sample_driver::ioctl::{
    decode_statistics, StatisticsHeader, TargetRecord, HEADER_SIZE, IOCTL_SAMPLE_GET_STATISTICS,
    RECORD_SIZE,
};
use sample_driver::stats::TargetState;
use sample_driver::{SampleConfig, SampleDriver};

fn read(driver: &SampleDriver<Sim>) -> (StatisticsHeader, Vec<TargetRecord>) {
    let mut buf = vec![0u8; HEADER_SIZE + 32 * RECORD_SIZE];
    let n = driver
        .handle_ioctl(IOCTL_SAMPLE_GET_STATISTICS, &[], &mut buf)
        .unwrap();
    let (h, mut records) = decode_statistics(&buf[..n]).unwrap();
    records.sort_by_key(|r| r.id);
    (h, records)
}

fn states(driver: &SampleDriver<Sim>) -> Vec<(u32, TargetState)> {
    read(driver).1.iter().map(|r| (r.id, r.state)).collect()
}

fn wait_for_completions(driver: &SampleDriver<Sim>, id: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, records) = read(driver);
        if records.iter().any(|r| r.id == id && r.completed > 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "target {id} never completed a request"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn device(name: &str) -> DeviceSpec {
    DeviceSpec::new(
        name,
        Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
            max_random_delay_ms: 5,
            handle_internal_ioctls: false,
        })),
    )
    .with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
}

#[test]
fn every_event_moves_the_right_record() {
    use TargetState::*;
    let sim = Sim::new(SimConfig::default().with_seed(3));
    let bus = sim.bus();
    let a = bus.add_device(device("a")).unwrap();
    let link_a = bus
        .symbolic_link(a, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
        .unwrap();
    let driver = Arc::new(SampleDriver::new(sim.clone(), SampleConfig::default()).unwrap());
    let client = sim.client_device();
    client.register(Arc::clone(&driver) as Arc<dyn DeviceCallbacks>);

    // Nothing is opened before D0.
    assert!(states(&driver).is_empty());
    client.start().unwrap();
    bus.flush().unwrap(); // present interfaces are reported on the PnP thread
    assert_eq!(states(&driver), [(1, Open)]);
    assert_eq!(read(&driver).1[0].link(), link_a);
    assert_eq!(read(&driver).0.powered, 1);
    wait_for_completions(&driver, 1);

    // Removal cancelled by someone else: the same target is reopened.
    assert_eq!(
        bus.query_remove_then_cancel(a),
        Ok(RemovalOutcome::Cancelled)
    );
    assert_eq!(states(&driver), [(1, Open)]);
    let (h, _) = read(&driver);
    assert_eq!((h.query_removes, h.remove_cancels), (1, 1));

    // Interface disabled: closed; enabled again: a new target.
    bus.disable_interface(a, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
        .unwrap();
    assert_eq!(states(&driver), [(1, Closed)]);
    bus.enable_interface(a, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
        .unwrap();
    assert_eq!(states(&driver), [(1, Closed), (2, Open)]);
    wait_for_completions(&driver, 2);

    // Power cycle: every target closed on D0 exit, reopened on D0 entry.
    client.power_cycle().unwrap();
    bus.flush().unwrap();
    assert_eq!(states(&driver), [(1, Closed), (2, Closed), (3, Open)]);
    assert_eq!(read(&driver).0.power_downs, 1);
    wait_for_completions(&driver, 3);

    // Surprise removal with requests in flight.
    bus.surprise_remove(a).unwrap();
    assert_eq!(states(&driver), [(1, Closed), (2, Closed), (3, Removed)]);

    // Orderly removal of another device.
    let b = bus.add_device(device("b")).unwrap();
    assert_eq!(states(&driver)[3], (4, Open));
    wait_for_completions(&driver, 4);
    assert_eq!(bus.remove_device(b), Ok(RemovalOutcome::Removed));
    assert_eq!(states(&driver)[3], (4, Removed));

    let (h, records) = read(&driver);
    assert_eq!(
        (
            h.targets_opened,
            h.query_removes,
            h.remove_cancels,
            h.remove_completes,
            h.closes,
            h.targets_open
        ),
        (4, 2, 1, 2, 2, 0)
    );
    assert!(records.iter().all(|r| r.ended_100ns >= r.opened_100ns));
    // Requests cut short by the closes and removals are failures, counted
    // (4 requests stay in flight per target, so a close nearly always
    // catches some).
    assert!(
        records.iter().filter(|r| r.errors > 0).count() >= 3,
        "{records:?}"
    );

    client.stop().unwrap();
    assert_eq!(read(&driver).0.powered, 0);
    drop(client);
    drop(driver);
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

/// The recorder IOCTL returns the module's and each target's last
/// transitions as text, newest whole lines that fit.
#[test]
fn the_recorder_ioctl_returns_the_last_transitions() {
    use sample_driver::ioctl::IOCTL_SAMPLE_GET_RECORDER;
    let sim = Sim::new(SimConfig::default().with_seed(5));
    let bus = sim.bus();
    let a = bus.add_device(device("a")).unwrap();
    let driver = Arc::new(SampleDriver::new(sim.clone(), SampleConfig::default()).unwrap());
    let client = sim.client_device();
    client.register(Arc::clone(&driver) as Arc<dyn DeviceCallbacks>);
    client.start().unwrap();
    bus.flush().unwrap();
    assert_eq!(
        bus.query_remove_then_cancel(a),
        Ok(RemovalOutcome::Cancelled)
    );
    let mut buf = vec![0u8; 16 * 1024];
    let n = driver
        .handle_ioctl(IOCTL_SAMPLE_GET_RECORDER, &[], &mut buf)
        .unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    let order = [
        "DIMT: target opened",
        "DIMT: state change state=Open",
        "DIMT: state change state=QueryRemove ",
        "DIMT: target reopened",
        "DIMT: state change state=QueryRemoveCancelled",
    ];
    let mut at = 0;
    for what in order {
        let found = text[at..]
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} after byte {at} in\n{text}"));
        at += found + what.len();
    }
    assert!(text.contains("Target#"), "{text}");
    // A small buffer gets the newest whole lines only.
    let mut small = [0u8; 300];
    let n = driver
        .handle_ioctl(IOCTL_SAMPLE_GET_RECORDER, &[], &mut small)
        .unwrap();
    let tail = std::str::from_utf8(&small[..n]).unwrap();
    assert!(n > 0 && tail.ends_with('\n'), "{tail}");
    assert!(text.ends_with(tail), "{tail}\nnot the end of\n{text}");
    client.stop().unwrap();
    drop(client);
    drop(driver);
    assert_eq!(sim.leak_check(Duration::from_secs(10)), Ok(()));
}
