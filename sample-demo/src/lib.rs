//! # sample-demo: the sample driver's logic on the simulator, live
//!
//! The host run: the driver logic of `sample-driver` on `dmf-sim`, with
//! devices coming and going on a seeded schedule, a live view and a summary
//! (`cargo run -p sample-demo --release`; [`main`]). The driver crate holds
//! the driver only; everything here is the demo around it.
//!
//!
//! The simulated machine has a bus of `Tests_IoctlHandler` devices (each
//! wrapped in a [`CountingDevice`] that counts what it receives), and the
//! driver's own device ([`dmf_sim::ClientDevice`]) carrying a
//! [`SampleDriver`]. [`run`] starts the device, applies the
//! [`schedule`] of PnP and power events, renders the [`view`] from the
//! driver's own IOCTL every half second, then stops everything and checks
//! the driver's figures against the devices' and the simulator's
//! ([`cross_check`]) and the simulator's leak counters.
#![cfg(not(all(windows, target_env = "msvc")))]

pub mod args;
pub mod schedule;
pub mod view;

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
use dmf_sim::{
    ClientDevice, Counters, DeviceHandler, DeviceId, DeviceSpec, FaultPlan, FaultPoint,
    IoctlHandlerConfig, Irp, Sim, SimConfig, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::{
    DeviceCallbacks, IoTarget, OpenMode, OpenParams, Platform, ShareAccess, Status, TargetEvents,
};

use args::{Command, Options};
use sample_driver::ioctl::{
    decode_statistics, decode_status_counts, StatusCount, HEADER_SIZE, IOCTL_SAMPLE_GET_STATISTICS,
    IOCTL_SAMPLE_GET_STATUS_COUNTS, RECORD_SIZE, STATUS_ENTRY_SIZE, STATUS_HEADER_SIZE,
};
use sample_driver::stats::{HISTORY, STATUS_SLOTS};
use sample_driver::{SampleConfig, SampleDriver};
use schedule::{Action, Schedule, Slot};
use view::{render_frame, render_summary, short_link, Reading, SummaryInput};

/// Live view refresh period.
pub const REFRESH: Duration = Duration::from_millis(500);
/// Upper bound of the simulated devices' random completion delay, ms.
pub const DEVICE_MAX_DELAY_MS: u32 = 20;
/// Probability (per million sends) that the simulator fails a request
/// before it reaches the device, with [`INJECTED_FAILURE`].
pub const FAILURE_PER_MILLION: u32 = 2_000;
/// The status of injected request failures (no device returns it).
pub const INJECTED_FAILURE: Status = Status::UNSUCCESSFUL;

/// A `Tests_IoctlHandler` device that counts the IRPs it receives and the
/// output bytes it zeroes (the device side of the figures).
#[derive(Debug)]
pub struct CountingDevice {
    inner: TestsIoctlHandler,
    received: AtomicU64,
    zeroed: AtomicU64,
}

impl CountingDevice {
    /// A device completing `ZEROBUFFER` after `0..=max_delay_ms` ms.
    pub fn new(max_delay_ms: u32) -> Self {
        CountingDevice {
            inner: TestsIoctlHandler::new(IoctlHandlerConfig {
                max_random_delay_ms: max_delay_ms,
                handle_internal_ioctls: false,
            }),
            received: AtomicU64::new(0),
            zeroed: AtomicU64::new(0),
        }
    }

    /// IRPs received.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }

    /// Output bytes zeroed by `ZEROBUFFER`.
    pub fn zeroed(&self) -> u64 {
        self.zeroed.load(Ordering::Acquire)
    }
}

impl DeviceHandler for CountingDevice {
    fn handle(&self, irp: Irp) {
        self.received.fetch_add(1, Ordering::AcqRel);
        if irp.ioctl() == IOCTL_ZEROBUFFER {
            self.zeroed
                .fetch_add(irp.output_len() as u64, Ordering::AcqRel);
        }
        self.inner.handle(irp);
    }
}

/// Another driver holding a device open that refuses its removal.
struct Vetoer;

impl TargetEvents for Vetoer {
    fn query_remove(&self) -> Status {
        Status::DEVICE_BUSY
    }
    fn remove_canceled(&self) {}
    fn remove_complete(&self) {}
}

struct DeviceSlot {
    state: Slot,
    id: Option<DeviceId>,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct Report {
    /// The options it ran with.
    pub options: Options,
    /// The driver's configuration.
    pub config: SampleConfig,
    /// The driver's last statistics reply (after the driver device stopped).
    pub reading: Reading,
    /// The driver's completion statuses.
    pub statuses: Vec<StatusCount>,
    /// Per device (short link): IRPs received, bytes zeroed.
    pub devices: BTreeMap<String, (u64, u64)>,
    /// Schedule events applied, by name.
    pub actions: BTreeMap<&'static str, u32>,
    /// Outcomes that differed from the schedule's intent (for example a
    /// removal that failed), one line each.
    pub notes: Vec<String>,
    /// Requests the simulator failed on purpose.
    pub injected_failures: u64,
    /// The simulator's counters after everything was dropped.
    pub counters: Counters,
    /// Live frames rendered.
    pub frames: usize,
    /// [`cross_check`] of the run.
    pub cross_check: Result<(), String>,
}

impl Report {
    /// Completions the driver saw with `status`.
    pub fn status_count(&self, status: Status) -> u64 {
        self.statuses
            .iter()
            .find(|s| s.status == status)
            .map_or(0, |s| s.count)
    }

    /// The summary text.
    pub fn summary(&self) -> String {
        let mut counters = self.counters.to_string();
        if self.injected_failures > 0 {
            counters.push_str(&format!(
                "\n  injected:    {} request failures ({})",
                self.injected_failures, INJECTED_FAILURE
            ));
        }
        let extra = SummaryInput {
            actions: self.actions.clone(),
            devices: self.devices.clone(),
            counters,
            clean: self.counters.is_clean(),
            cross_check: self.cross_check.clone(),
        };
        let mut text = render_summary(&self.reading, &self.statuses, &extra);
        for note in &self.notes {
            text.push_str(&format!("note: {note}\n"));
        }
        text
    }
}

/// Checks the driver's figures against what the devices and the simulator
/// saw. Every request the driver sent completed exactly once and was counted
/// exactly once:
///
/// * driver completions (success + failure) = IRPs the simulator completed
///   = IRPs it accepted;
/// * driver `STATUS_CANCELLED` count = the simulator's cancelled IRPs;
/// * IRPs the devices received + the sends the simulator completed without
///   reaching a device (`STATUS_DELETE_PENDING` after a surprise removal,
///   injected failures) = driver completions;
/// * injected failures = driver completions with [`INJECTED_FAILURE`];
/// * per device: successes ≤ IRPs received ≤ completions, and bytes =
///   successes × buffer size on both sides;
/// * the per-target records add up to the totals;
/// * no callback panicked.
pub fn cross_check(report: &Report) -> Result<(), String> {
    let h = &report.reading.header;
    let c = &report.counters;
    let driver_total = h.completed + h.errors;
    let size = u64::from(report.config.output_size);
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    check(
        driver_total == c.irps_completed && c.irps_completed == c.irps_sent,
        format!(
            "driver completions {driver_total} vs simulator completed {} / sent {}",
            c.irps_completed, c.irps_sent
        ),
    );
    check(
        c.callback_panics == 0,
        format!("{} callbacks panicked", c.callback_panics),
    );
    check(
        report.status_count(Status::CANCELLED) == c.irps_cancelled,
        format!(
            "driver CANCELLED {} vs simulator cancelled {}",
            report.status_count(Status::CANCELLED),
            c.irps_cancelled
        ),
    );
    let received: u64 = report.devices.values().map(|d| d.0).sum();
    let not_at_device =
        report.status_count(Status::DELETE_PENDING) + report.status_count(INJECTED_FAILURE);
    check(
        received + not_at_device == driver_total,
        format!(
            "devices received {received} + {not_at_device} completed before a device != driver completions {driver_total}"
        ),
    );
    check(
        report.status_count(INJECTED_FAILURE) == report.injected_failures,
        format!(
            "driver {} completions vs {} injected failures",
            report.status_count(INJECTED_FAILURE),
            report.injected_failures
        ),
    );
    check(
        h.bytes == h.completed * size,
        format!(
            "driver bytes {} != {} completed x {size}",
            h.bytes, h.completed
        ),
    );
    let complete_history = h.records_total == h.targets_opened
        && h.records_returned == h.records_total
        && report.statuses.len() < STATUS_SLOTS;
    if complete_history {
        let records = &report.reading.records;
        let sum =
            |f: fn(&sample_driver::ioctl::TargetRecord) -> u64| records.iter().map(f).sum::<u64>();
        check(
            sum(|r| r.completed) == h.completed
                && sum(|r| r.errors) == h.errors
                && sum(|r| r.bytes) == h.bytes,
            "per-target records do not add up to the totals".to_owned(),
        );
        for (link, (received, zeroed)) in &report.devices {
            let mine = records.iter().filter(|r| short_link(r.link()) == link);
            let (ok, all) = mine.fold((0, 0), |(o, a), r| {
                (o + r.completed, a + r.completed + r.errors)
            });
            check(
                ok <= *received && *received <= all && *zeroed == received * size,
                format!(
                    "{link}: driver {ok} successes / {all} completions vs device {received} received, {zeroed} bytes zeroed"
                ),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn read_statistics(driver: &SampleDriver<Sim>) -> Reading {
    let mut buf = vec![0u8; HEADER_SIZE + (HISTORY + 256) * RECORD_SIZE];
    let n = driver
        .handle_ioctl(IOCTL_SAMPLE_GET_STATISTICS, &[], &mut buf)
        .expect("the statistics IOCTL succeeds with a large buffer");
    let (header, records) = decode_statistics(&buf[..n]).expect("the driver's reply decodes");
    Reading { header, records }
}

fn read_statuses(driver: &SampleDriver<Sim>) -> Vec<StatusCount> {
    let mut buf = vec![0u8; STATUS_HEADER_SIZE + STATUS_SLOTS * STATUS_ENTRY_SIZE];
    let n = driver
        .handle_ioctl(IOCTL_SAMPLE_GET_STATUS_COUNTS, &[], &mut buf)
        .expect("the status IOCTL succeeds with a large buffer");
    decode_status_counts(&buf[..n])
        .expect("the driver's reply decodes")
        .1
}

struct Harness {
    sim: Sim,
    slots: Vec<DeviceSlot>,
    devices: BTreeMap<String, Arc<CountingDevice>>,
    client: ClientDevice,
    actions: BTreeMap<&'static str, u32>,
    notes: Vec<String>,
}

impl Harness {
    fn slot_states(&self) -> Vec<Slot> {
        self.slots.iter().map(|s| s.state).collect()
    }

    fn arrive(&mut self, slot: usize) -> Result<(), String> {
        let device = Arc::new(CountingDevice::new(DEVICE_MAX_DELAY_MS));
        let spec = DeviceSpec::new(format!("sample-{slot:02}"), device.clone())
            .with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER);
        let bus = self.sim.bus();
        let id = bus
            .add_device(spec)
            .map_err(|s| format!("add_device: {s}"))?;
        let link = bus
            .symbolic_link(id, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
            .unwrap_or_default();
        self.devices.insert(short_link(&link).to_owned(), device);
        self.slots[slot] = DeviceSlot {
            state: Slot::Present {
                interface_enabled: true,
            },
            id: Some(id),
        };
        Ok(())
    }

    fn vetoed_removal(&self, id: DeviceId) -> Result<dmf_sim::RemovalOutcome, String> {
        let bus = self.sim.bus();
        let link = bus.device_link(id).ok_or("device gone")?;
        let blocker = self
            .sim
            .create_io_target()
            .map_err(|s| format!("blocker target: {s}"))?;
        blocker
            .open(
                &OpenParams {
                    symbolic_link: &link,
                    open_mode: OpenMode::READ,
                    share_access: ShareAccess::READ_WRITE,
                },
                Arc::new(Vetoer),
            )
            .map_err(|s| format!("blocker open: {s}"))?;
        let outcome = bus.remove_device(id).map_err(|s| format!("{s}"));
        blocker.close();
        outcome
    }

    fn apply(&mut self, action: Action) {
        *self.actions.entry(action.name()).or_default() += 1;
        let bus = self.sim.bus();
        let guid = GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER;
        let id = action.slot().and_then(|s| self.slots[s].id);
        let result: Result<(), String> = match (action, id) {
            (Action::Arrive(slot), _) => self.arrive(slot),
            (Action::PowerCycle, _) => self
                .client
                .power_cycle()
                .map_err(|s| format!("power cycle: {s}")),
            (_, None) => Err("no device in the slot".to_owned()),
            (Action::QueryRemove(slot), Some(id)) => match bus.remove_device(id) {
                Ok(dmf_sim::RemovalOutcome::Removed) => {
                    self.slots[slot] = DeviceSlot {
                        state: Slot::Empty,
                        id: None,
                    };
                    Ok(())
                }
                other => Err(format!("removal: {other:?}")),
            },
            (Action::QueryRemoveVetoed(_), Some(id)) => match self.vetoed_removal(id) {
                Ok(dmf_sim::RemovalOutcome::Vetoed { .. }) => Ok(()),
                other => Err(format!("vetoed removal: {other:?}")),
            },
            (Action::QueryRemoveCancelled(_), Some(id)) => match bus.query_remove_then_cancel(id) {
                Ok(dmf_sim::RemovalOutcome::Cancelled) => Ok(()),
                other => Err(format!("cancelled removal: {other:?}")),
            },
            (Action::SurpriseRemove(slot), Some(id)) => {
                let r = bus.surprise_remove(id).map_err(|s| format!("{s}"));
                self.slots[slot] = DeviceSlot {
                    state: Slot::Empty,
                    id: None,
                };
                r
            }
            (Action::DisableInterface(slot), Some(id)) => {
                let r = bus.disable_interface(id, &guid).map_err(|s| format!("{s}"));
                self.slots[slot].state = Slot::Present {
                    interface_enabled: false,
                };
                r
            }
            (Action::EnableInterface(slot), Some(id)) => {
                let r = bus.enable_interface(id, &guid).map_err(|s| format!("{s}"));
                self.slots[slot].state = Slot::Present {
                    interface_enabled: true,
                };
                r
            }
        };
        if let Err(e) = result {
            self.notes.push(format!("{}: {e}", action.name()));
        }
    }
}

/// Lines of the live view showing the newest records of the target whose
/// symbolic link contains `selected`, from the driver's in-flight recorder.
pub fn recorder_view(driver: &SampleDriver<Sim>, selected: &str) -> String {
    const SHOWN: usize = 8;
    let module = driver.module();
    let target = module.targets().into_iter().find(|&h| {
        module
            .symbolic_link(h)
            .is_ok_and(|link| link.contains(selected))
    });
    let Some(target) = target else {
        return format!("\nrecorder: no open target matches `{selected}`\n");
    };
    let mut records = String::new();
    let _ = module
        .journal()
        .recorder()
        .write_subject(&mut records, target.to_u64());
    let lines: Vec<&str> = records.lines().collect();
    let mut view = format!("\nrecorder of {target} (last {SHOWN}):\n");
    for line in &lines[lines.len().saturating_sub(SHOWN)..] {
        view.push_str("  ");
        view.push_str(line);
        view.push('\n');
    }
    view
}

/// Runs the driver on the simulator for `options.duration`, writing the
/// live view (if `options.live`) to `out`; with `tty`, each frame redraws
/// the screen (ANSI), otherwise frames are appended as plain text.
///
/// If writing to `out` fails (for example a broken pipe: `| head` has read
/// what it wanted), the live view stops and the run goes on: it still
/// tears everything down and checks it; the failure is one of the
/// [`Report::notes`].
///
/// Returns the [`Report`]; the caller prints [`Report::summary`]. Errors:
/// the driver or its device could not be created or started.
pub fn run(options: &Options, out: &mut dyn Write, tty: bool) -> io::Result<Report> {
    let sim = Sim::new(
        SimConfig::default()
            .with_seed(options.seed)
            .with_fault_status(
                FaultPoint::RequestFailure,
                FaultPlan::Probability(FAILURE_PER_MILLION),
                INJECTED_FAILURE,
            ),
    );
    let config = SampleConfig::default();
    let driver = Arc::new(
        SampleDriver::new(sim.clone(), config)
            .map_err(|s| io::Error::other(format!("creating the driver: {s}")))?,
    );
    let client = sim.client_device();
    client.register(Arc::clone(&driver) as Arc<dyn DeviceCallbacks>);
    let mut h = Harness {
        sim: sim.clone(),
        slots: (0..options.devices)
            .map(|_| DeviceSlot {
                state: Slot::Empty,
                id: None,
            })
            .collect(),
        devices: BTreeMap::new(),
        client: client.clone(),
        actions: BTreeMap::new(),
        notes: Vec::new(),
    };
    // Some devices are there before the driver starts (reported as
    // existing interfaces at registration), the others arrive later.
    for slot in 0..Schedule::initial_devices(options.devices) {
        h.apply(Action::Arrive(slot));
    }
    client
        .start()
        .map_err(|s| io::Error::other(format!("starting the driver device: {s}")))?;

    let mut schedule = Schedule::new(options.seed);
    let start = Instant::now();
    let end = start + options.duration;
    let mut step = schedule.next(&h.slot_states());
    let mut next_event = start + Duration::from_millis(step.delay_ms);
    let mut next_frame = start;
    let mut previous: Option<Reading> = None;
    let mut frames = 0usize;
    let mut live = options.live;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_event {
            h.apply(step.action);
            step = schedule.next(&h.slot_states());
            next_event += Duration::from_millis(step.delay_ms);
            continue;
        }
        if now >= next_frame {
            let reading = read_statistics(&driver);
            if live {
                let mut frame = render_frame(&reading, previous.as_ref());
                if let Some(selected) = &options.recorder {
                    frame.push_str(&recorder_view(&driver, selected));
                }
                let written = if tty {
                    write!(out, "\x1b[H\x1b[2J{frame}")
                } else {
                    writeln!(out, "{frame}")
                };
                if let Err(e) = written.and_then(|()| out.flush()) {
                    // The reader is gone (or the output broke): stop
                    // printing, not the run.
                    live = false;
                    h.notes.push(format!("live view stopped: {e}"));
                }
            }
            frames += 1;
            previous = Some(reading);
            next_frame += REFRESH;
            continue;
        }
        std::thread::sleep(next_event.min(next_frame).min(end) - now);
    }

    // Stop the driver device: D0 exit closes every target (their requests
    // are cancelled and every completion is delivered), release-hardware.
    if let Err(s) = client.stop() {
        h.notes.push(format!("stopping the driver device: {s}"));
    }
    sim.wait_quiescent(Duration::from_secs(10));
    let reading = read_statistics(&driver);
    let statuses = read_statuses(&driver);
    drop(client);
    drop(h.client);
    drop(driver);
    let bus = sim.bus();
    for slot in &h.slots {
        if let Some(id) = slot.id {
            let _ = bus.remove_device(id);
        }
    }
    if !sim.wait_quiescent(Duration::from_secs(10)) {
        h.notes
            .push("the simulator did not become quiescent".to_owned());
    }
    // A callback that panicked on a simulator thread is reported, not
    // re-raised when the simulator is dropped.
    for panic in sim.take_callback_panics() {
        h.notes.push(format!(
            "a callback panicked on a simulator thread: {panic}"
        ));
    }
    let devices = h
        .devices
        .iter()
        .map(|(link, d)| (link.clone(), (d.received(), d.zeroed())))
        .collect();
    let mut report = Report {
        options: options.clone(),
        config,
        reading,
        statuses,
        devices,
        actions: h.actions,
        notes: h.notes,
        injected_failures: sim.faults().injected(FaultPoint::RequestFailure),
        counters: sim.counters(),
        frames,
        cross_check: Ok(()),
    };
    report.cross_check = cross_check(&report);
    Ok(report)
}

/// The host binary: parses the arguments, runs, prints the summary.
/// Exit codes: 0 success, 1 a check failed, 2 bad arguments.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match args::parse(&args) {
        Ok(Command::Help) => {
            // A closed stdout (`--help | head -1`) is not an error here.
            let _ = write!(io::stdout(), "{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = dmf_sim::logging::init(options.log.as_deref()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let mut out: Box<dyn Write> = Box::new(stdout.lock());
    let report = match run(&options, &mut out, tty) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = writeln!(out, "{}", report.summary());
    let _ = out.flush();
    if report.cross_check.is_ok() && report.counters.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
