//! The sample driver's host run over the emulated KMDF: its real
//! `DriverEntry` (exported by `sample-driver` built with `emulation`), the
//! device added, started, power-cycled and removed by the emulated
//! framework, IOCTLs sent through the emulated default queue, and the same
//! cross-check and leak check as `sample-demo`'s run.
//!
//! Shared by the CI test (`tests/driver.rs`) and the example
//! (`cargo run -p dmf-kmdf-emu --example driver`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dmf_kmdf_emu::{Device, Machine};
use dmf_sim::{
    DeviceId, DeviceSpec, FaultPlan, FaultPoint, Sim, SimConfig,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::Status;
use sample_demo::view::short_link;
use sample_demo::view::Reading;
use sample_demo::{cross_check, CountingDevice, Report, DEVICE_MAX_DELAY_MS, INJECTED_FAILURE};
use sample_driver::ioctl::{
    decode_statistics, decode_status_counts, HEADER_SIZE, IOCTL_SAMPLE_GET_STATISTICS,
    IOCTL_SAMPLE_GET_STATUS_COUNTS, RECORD_SIZE, STATUS_ENTRY_SIZE, STATUS_HEADER_SIZE,
};
use sample_driver::stats::{HISTORY, STATUS_SLOTS};
use sample_driver::SampleConfig;
use wdk_sys::{DRIVER_OBJECT, NTSTATUS, PCUNICODE_STRING};

// The sample driver's `DriverEntry`, exported by `dmf_kmdf::kmdf_driver!`.
unsafe extern "C" {
    /// The sample driver's exported `DriverEntry`.
    pub fn DriverEntry(driver: *mut DRIVER_OBJECT, registry_path: PCUNICODE_STRING) -> NTSTATUS;
}

/// Probability (per million sends) of an injected request failure: the
/// demo's.
const FAILURE_PER_MILLION: u32 = sample_demo::FAILURE_PER_MILLION;

/// What a run produced: the demo's report (with its cross-check) and what
/// the emulated machine found left over.
pub struct Outcome {
    /// The report, cross-checked.
    pub report: Report,
    /// The machine's leak check (pool, events, registrations, WDF objects).
    pub machine_leaks: Vec<String>,
    /// The driver's `DbgPrint` lines.
    pub debug_output: Vec<String>,
    /// IOCTL replies seen while the device ran (statistics requests).
    pub live_readings: usize,
}

fn statistics(device: &Device) -> Reading {
    let (status, reply) = device.device_control(
        IOCTL_SAMPLE_GET_STATISTICS,
        HEADER_SIZE + (HISTORY + 256) * RECORD_SIZE,
    );
    assert_eq!(status, Status::SUCCESS, "the statistics IOCTL succeeds");
    let (header, records) = decode_statistics(&reply).expect("the driver's reply decodes");
    Reading { header, records }
}

/// Adds a counting `Tests_IoctlHandler` device to the bus.
pub fn add_counting_device(
    sim: &Sim,
    name: &str,
    devices: &mut BTreeMap<String, Arc<CountingDevice>>,
) -> DeviceId {
    let device = Arc::new(CountingDevice::new(DEVICE_MAX_DELAY_MS));
    let bus = sim.bus();
    let id = bus
        .add_device(
            DeviceSpec::new(name, device.clone())
                .with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER),
        )
        .expect("add a device to the bus");
    let link = bus
        .symbolic_link(id, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
        .expect("the device exposes its interface");
    devices.insert(short_link(&link).to_owned(), device);
    id
}

/// Runs the driver for about `phase_ms` per phase: two devices before the
/// driver starts, one arriving while it runs, a power cycle, one device
/// removed, then power-down, the final readings, device removal and driver
/// unload. The service's `Parameters` key exists, empty: every setting
/// takes its default.
pub fn run(seed: u64, phase_ms: u64) -> Outcome {
    run_with(seed, phase_ms, &[], SampleConfig::default())
}

/// [`run`] with these `Parameters` values, `expected` being the
/// configuration they should give (the cross-check's byte counts depend on
/// its buffer size).
pub fn run_with(
    seed: u64,
    phase_ms: u64,
    parameters: &[(&str, u32)],
    expected: SampleConfig,
) -> Outcome {
    let sim = Sim::new(SimConfig::default().with_seed(seed).with_fault_status(
        FaultPoint::RequestFailure,
        FaultPlan::Probability(FAILURE_PER_MILLION),
        INJECTED_FAILURE,
    ));
    let mut devices = BTreeMap::new();
    let machine = Machine::new(sim.clone());
    let config = expected;
    machine.set_parameters(parameters.iter().copied());
    let mut bus_devices = vec![
        add_counting_device(&sim, "kmdf-00", &mut devices),
        add_counting_device(&sim, "kmdf-01", &mut devices),
    ];

    // SAFETY: the sample driver's DriverEntry, built on the emulated WDF.
    let status = unsafe { machine.load_driver(DriverEntry, "sample_driver") };
    assert_eq!(status, Status::SUCCESS, "DriverEntry");
    let device = machine.add_device().expect("EvtDriverDeviceAdd");
    assert_eq!(
        device.interfaces(),
        [sample_driver::ioctl::GUID_DEVINTERFACE_SAMPLE_DRIVER],
        "the driver exposes its interface"
    );
    // Before PrepareHardware the driver answers, but is not ready.
    let (status, _) = device.device_control(IOCTL_SAMPLE_GET_STATISTICS, 4096);
    assert_eq!(status, Status::DEVICE_NOT_READY);
    device.start().expect("PrepareHardware and D0Entry");

    let pause = || std::thread::sleep(Duration::from_millis(phase_ms));
    let mut live_readings = 0;
    pause();
    let first = statistics(&device);
    live_readings += 1;
    assert!(
        first.header.completed > 0,
        "requests complete while the device runs"
    );
    bus_devices.push(add_counting_device(&sim, "kmdf-02", &mut devices));
    pause();
    device.power_down().expect("D0Exit(D3)");
    device.power_up().expect("D0Entry(D3)");
    pause();
    let _ = sim.bus().remove_device(bus_devices.remove(0));
    pause();
    live_readings += usize::from(statistics(&device).header.completed >= first.header.completed);

    // D0 exit closes every target: every request completes and is counted.
    device.power_down().expect("D0Exit(D3)");
    assert!(
        sim.wait_quiescent(Duration::from_secs(10)),
        "the simulator settles"
    );
    let reading = statistics(&device);
    let (status, reply) = device.device_control(
        IOCTL_SAMPLE_GET_STATUS_COUNTS,
        STATUS_HEADER_SIZE + STATUS_SLOTS * STATUS_ENTRY_SIZE,
    );
    assert_eq!(status, Status::SUCCESS);
    let statuses = decode_status_counts(&reply)
        .expect("the driver's reply decodes")
        .1;
    device
        .remove()
        .expect("ReleaseHardware and device deletion");
    machine.unload_driver();
    let bus = sim.bus();
    for id in bus_devices {
        let _ = bus.remove_device(id);
    }
    let mut notes = Vec::new();
    if !sim.wait_quiescent(Duration::from_secs(10)) {
        notes.push("the simulator did not become quiescent".to_owned());
    }
    for panic in sim.take_callback_panics() {
        notes.push(format!(
            "a callback panicked on a simulator thread: {panic}"
        ));
    }
    let machine_leaks = machine.leaks();
    let debug_output = machine.debug_output();
    drop(machine);
    let devices = devices
        .iter()
        .map(|(link, d)| (link.clone(), (d.received(), d.zeroed())))
        .collect();
    let mut report = Report {
        options: sample_demo::args::Options {
            devices: 3,
            duration: Duration::from_millis(4 * phase_ms),
            seed,
            live: false,
            log: None,
            recorder: None,
        },
        config,
        reading,
        statuses,
        devices,
        actions: BTreeMap::new(),
        notes,
        injected_failures: sim.faults().injected(FaultPoint::RequestFailure),
        counters: sim.counters(),
        frames: live_readings,
        cross_check: Ok(()),
    };
    report.cross_check = cross_check(&report);
    Outcome {
        report,
        machine_leaks,
        debug_output,
        live_readings,
    }
}
