//! The soak: DMF's anchor test scenarios (BufferPool, RequestTarget,
//! ContinuousRequestTarget, DeviceInterfaceMultipleTarget) all at once on
//! one simulated machine.
//!
//! | DMF test (`Dmf_Tests_*.c`) | here |
//! |---|---|
//! | BufferPool | two workers on a source pool with timers and look-aside and a sink (`soak/bp.rs`) |
//! | RequestTarget (through SelfTarget) | a dispatch and a passive `RequestTarget` on a device that stays: sync, async, short timeouts, cancel and reuse matrices |
//! | ContinuousRequestTarget (through DefaultTarget) | four `ContinuousRequestTarget`s on a child device (`soak/crt.rs`): streams started/stopped, single sends, power policy |
//! | DeviceInterfaceTarget / DeviceInterfaceMultipleTarget | four `DeviceInterfaceMultipleTarget`s (`soak/dimt.rs`) following child devices the churn plugs, removes, query-removes, surprise-removes and whose interface it toggles (`soak/pnp.rs`) |
//! | power | the client device power-cycles; CRTs and DIMTs follow |
//! | faults (`--faults`) | every fault point of dmf-sim's `Faults` (allocation, object creation: target, request, timer, event, work item, notification registration; work-item enqueue, open, send refusal, request failure, latency spikes), cleared for the teardown |
//!
//! Times are DMF's scaled down (milliseconds instead of seconds) so that a
//! run of seconds goes through thousands of cycles. At the end: counts of
//! operations, statuses seen per layer, the invariant violations, and the
//! leak check (every simulated object gone, nothing in flight, every buffer
//! home). A [watchdog](WATCHDOG_EXIT_CODE) fails the run if it hangs.

mod actor;
mod bp;
mod crt;
mod dimt;
mod pnp;
mod stats;
mod watchdog;

use dmf_sim::NoTargetEvents;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dmf_request_target::{RequestTarget, RequestTargetConfig};
use dmf_sim::{
    ClientDevice, ClientState, Counters, DeviceSpec, FaultPlan, FaultPoint, Sim, SimConfig,
    SplitMix64,
};
use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, ShareAccess, Status};

pub use watchdog::WATCHDOG_EXIT_CODE;

use actor::Actor;
use bp::BpScenario;
use crt::CrtScenario;
use dimt::DimtScenario;
use pnp::Churn;
use stats::Stats;

/// How to run the soak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoakConfig {
    /// How long the scenarios run (teardown comes after).
    pub duration: Duration,
    /// Seed of the simulator (latencies, device delays, faults) and of every
    /// worker's choices. Thread interleavings are real and not reproduced:
    /// the same seed gives the same kind of run, not the same trace.
    pub seed: u64,
    /// Inject faults at every fault point of the simulator.
    pub faults: bool,
    /// The watchdog fails the run when nothing progresses, or one worker
    /// stays in one action, this long.
    pub stall_timeout: Duration,
    /// The watchdog fails the run when the teardown has not finished this
    /// long after `duration`.
    pub end_grace: Duration,
    /// Most child devices on the bus at once.
    pub max_devices: usize,
    /// Print a progress line every second (standard output).
    pub progress: bool,
    /// For testing the watchdog: one more worker blocks in one action
    /// until the run ends, so the watchdog must fail the run.
    pub inject_hang: bool,
    /// For testing the watchdog: the setup blocks before the first device
    /// is plugged; only the watchdog ends the run (and the process, with
    /// [`WATCHDOG_EXIT_CODE`]).
    pub inject_setup_hang: bool,
}

/// Most child devices a soak accepts ([`SoakConfig::max_devices`]).
pub const MAX_DEVICES: usize = 20_000;

/// Longest duration, stall timeout or end grace a soak accepts: one year.
pub const MAX_TIME: Duration = Duration::from_secs(365 * 24 * 3600);

impl SoakConfig {
    /// Checks the ranges: `max_devices` in `1..=`[`MAX_DEVICES`], every
    /// time at most [`MAX_TIME`]. Returns a description of the first
    /// problem.
    pub fn validate(&self) -> Result<(), String> {
        for (name, time) in [
            ("duration", self.duration),
            ("stall_timeout", self.stall_timeout),
            ("end_grace", self.end_grace),
        ] {
            if time > MAX_TIME {
                return Err(format!(
                    "{name} of {} s is out of range (at most {} s)",
                    time.as_secs(),
                    MAX_TIME.as_secs()
                ));
            }
        }
        if self.max_devices == 0 || self.max_devices > MAX_DEVICES {
            return Err(format!(
                "max_devices {} is out of range (1..={MAX_DEVICES})",
                self.max_devices
            ));
        }
        Ok(())
    }
}

/// `now + d`, or the latest instant this platform can represent that is not
/// before it (never panics).
fn later(now: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

/// Devices listed in the watchdog's dump (the rest are counted).
const DUMP_DEVICES: usize = 16;

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            duration: Duration::from_secs(10),
            seed: 0x5EED,
            faults: false,
            stall_timeout: Duration::from_secs(15),
            end_grace: Duration::from_secs(30),
            max_devices: 6,
            progress: true,
            inject_hang: false,
            inject_setup_hang: false,
        }
    }
}

/// What a soak run saw.
#[derive(Clone, Debug)]
pub struct SoakReport {
    /// The seed.
    pub seed: u64,
    /// Whether faults were injected.
    pub faults: bool,
    /// Scenario time (without setup and teardown).
    pub elapsed: Duration,
    /// Operations by name (`bp.1.acquire`, `send.sync`, `pnp.surprise_remove`...).
    pub ops: BTreeMap<&'static str, u64>,
    /// Statuses seen, by layer and raw NTSTATUS.
    pub statuses: BTreeMap<(&'static str, i32), u64>,
    /// Faults injected, by point.
    pub faults_injected: Vec<(FaultPoint, u64)>,
    /// Broken invariants (empty in a good run).
    pub violations: Vec<String>,
    /// The simulator's counters after the teardown.
    pub counters: Counters,
    /// The leak check: every simulated object gone, nothing in flight,
    /// every IRP sent was completed.
    pub leak_free: bool,
    /// The modules' in-flight recorders ([`dmf_sim::Sim::recorder_dump`]),
    /// taken when the run failed: their last transitions.
    pub recorders: Option<String>,
}

impl SoakReport {
    /// No violation and nothing leaked.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.leak_free
    }

    /// Sum of the operations whose name starts with `prefix`.
    pub fn ops_with_prefix(&self, prefix: &str) -> u64 {
        self.ops
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }

    /// How often `layer` saw `status`.
    pub fn status_count(&self, layer: &str, status: Status) -> u64 {
        self.statuses
            .iter()
            .filter(|((l, s), _)| *l == layer && *s == status.raw())
            .map(|(_, n)| n)
            .sum()
    }

    /// The end-of-run summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "soak: seed {:#x}, faults {}, {:.1} s of scenarios",
            self.seed,
            if self.faults { "on" } else { "off" },
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(s, "operations ({} total):", self.ops.values().sum::<u64>());
        for (k, v) in &self.ops {
            let _ = writeln!(s, "  {k:<36} {v:>10}");
        }
        let _ = writeln!(s, "statuses seen:");
        for ((layer, raw), n) in &self.statuses {
            let status = Status::from_raw(*raw);
            let _ = writeln!(
                s,
                "  {layer:<12} {:<28} {:#010x} {n:>10}",
                status.name().unwrap_or("?"),
                *raw as u32
            );
        }
        if self.faults {
            let _ = writeln!(s, "faults injected:");
            for (p, n) in &self.faults_injected {
                let _ = writeln!(s, "  {:<36} {n:>10}", p.to_string());
            }
        }
        let _ = writeln!(
            s,
            "leak check: {}\n{}",
            if self.leak_free { "clean" } else { "LEAKED" },
            self.counters
        );
        if let Some(recorders) = &self.recorders {
            let _ = writeln!(s, "{recorders}");
        }
        if self.violations.is_empty() {
            let _ = writeln!(s, "violations: none");
        } else {
            let _ = writeln!(s, "violations ({}):", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(s, "  {v}");
            }
        }
        let _ = write!(s, "result: {}", if self.passed() { "PASS" } else { "FAIL" });
        s
    }
}

/// Everything the workers share.
struct World {
    sim: Sim,
    stats: Arc<Stats>,
    stop: AtomicBool,
    bp: BpScenario,
    rts: Vec<(RequestTarget<Sim>, Arc<dmf_sim::SimIoTarget>)>,
    crt: CrtScenario,
    dimt: DimtScenario,
    client: ClientDevice,
}

fn spawn(
    name: &str,
    world: &Arc<World>,
    body: impl FnOnce(&World, &str) + Send + 'static,
) -> JoinHandle<()> {
    let world = Arc::clone(world);
    let worker = name.to_string();
    std::thread::Builder::new()
        .name(format!("soak-{name}"))
        .spawn(move || {
            body(&world, &worker);
            world.stats.finished(&worker);
        })
        .expect("spawn a soak worker")
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// The injection rate of each fault point in `--faults` (per million
/// attempts). The match is exhaustive so that a fault point added to the
/// simulator cannot be left out of the soak.
fn fault_plan(point: FaultPoint) -> FaultPlan {
    FaultPlan::Probability(match point {
        FaultPoint::Allocation => 10_000,
        FaultPoint::TargetOpen => 100_000,
        FaultPoint::RequestFailure => 20_000,
        FaultPoint::RequestCreation => 5_000,
        FaultPoint::SendRefusal => 5_000,
        FaultPoint::LatencySpike => 10_000,
        FaultPoint::TargetCreation => 20_000,
        FaultPoint::WorkItemCreation => 20_000,
        FaultPoint::WorkItemEnqueue => 5_000,
        FaultPoint::TimerCreation => 20_000,
        FaultPoint::EventCreation => 20_000,
        FaultPoint::WaitLockCreation => 20_000,
        FaultPoint::NotificationRegistration => 50_000,
    })
}

fn set_faults(sim: &Sim) {
    let f = sim.faults();
    for point in FaultPoint::ALL {
        if point == FaultPoint::LatencySpike {
            f.set_latency_spike(fault_plan(point), 25);
        } else {
            f.set(point, fault_plan(point));
        }
    }
}

/// The statuses each layer may report in the soak (DMF's tests accept
/// success / cancelled / invalid device state / delete pending, as DMF's tests expect;
/// the others come from the scenario itself). With faults, the injected
/// statuses are accepted everywhere too.
fn allowed(layer: &str, status: Status, faults: bool) -> bool {
    const FAULTS: [Status; 4] = [
        Status::UNSUCCESSFUL,
        Status::INSUFFICIENT_RESOURCES,
        Status::NO_MEMORY,
        Status::DEVICE_NOT_READY,
    ];
    if status.is_success() || (faults && FAULTS.contains(&status)) {
        return true;
    }
    let ok: &[Status] = match layer {
        // An empty sink.
        "bp" => &[Status::UNSUCCESSFUL],
        // Cancelled, or timed out (an asynchronous send cancelled by its
        // timeout completes with STATUS_IO_TIMEOUT, as in KMDF).
        "rt" => &[Status::CANCELLED, Status::IO_TIMEOUT],
        "crt.stream" => &[Status::CANCELLED],
        // Start while running or stopping; sends while the power policy
        // purged the target; timeouts.
        "crt" => &[
            Status::CANCELLED,
            Status::INVALID_DEVICE_STATE,
            Status::IO_TIMEOUT,
        ],
        // Targets come and go, are surprise-removed, time out (DIT-2).
        "dimt" => &[
            Status::CANCELLED,
            Status::INVALID_DEVICE_STATE,
            Status::DELETE_PENDING,
            Status::DEVICE_REMOVED,
            Status::IO_TIMEOUT,
        ],
        "dimt.stream" => &[
            Status::CANCELLED,
            Status::DELETE_PENDING,
            Status::DEVICE_REMOVED,
        ],
        // A removal the teardown had to finish by surprise.
        "pnp" => &[Status::DEVICE_BUSY],
        _ => &[],
    };
    ok.contains(&status)
}

/// Runs the soak and returns what it saw. Progress lines go to standard
/// output when `config.progress`, from the start of the setup. The
/// watchdog runs from the start too: a hang (in the setup, the scenarios or
/// the teardown) ends the process (exit code [`WATCHDOG_EXIT_CODE`]) with a
/// dump on standard error.
///
/// A configuration that [`SoakConfig::validate`] refuses runs nothing: the
/// report has that problem as its only violation.
pub fn run(config: &SoakConfig) -> SoakReport {
    let stats = Arc::new(Stats::new(config.faults));
    if let Err(problem) = config.validate() {
        stats.violation(format!("invalid configuration: {problem}"));
        return SoakReport {
            seed: config.seed,
            faults: config.faults,
            elapsed: Duration::ZERO,
            ops: BTreeMap::new(),
            statuses: BTreeMap::new(),
            faults_injected: Vec::new(),
            violations: stats.violations(),
            counters: Counters::default(),
            leak_free: true,
            recorders: None,
        };
    }
    let sim = Sim::new(SimConfig::default().with_seed(config.seed));
    let mut seeds = SplitMix64::new(config.seed);

    // The watchdog first, so that a setup with thousands of devices is
    // watched too; the world it dumps exists once the setup is done.
    let world_slot: Arc<Mutex<Weak<World>>> = Arc::new(Mutex::new(Weak::new()));
    let dump: watchdog::Dump = {
        let world_slot = Arc::clone(&world_slot);
        let sim = sim.clone();
        Arc::new(move || {
            let mut s = String::new();
            let world = world_slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .upgrade();
            if let Some(w) = world {
                let _ = writeln!(s, "  buffer pool: {}", w.bp.describe());
                for (i, (rt, _)) in w.rts.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "  request target {i}: {} reference(s), {} context(s), {} reuse id(s), closing {}",
                        rt.references(),
                        rt.context_count(),
                        rt.reuse_count(),
                        rt.is_closing()
                    );
                }
                let _ = writeln!(s, "  CRTs: {}", w.crt.describe());
                let _ = writeln!(s, "  DIMTs: {}", w.dimt.describe());
                let _ = writeln!(s, "  client device: {:?}", w.client.state());
            } else {
                let _ = writeln!(
                    s,
                    "  (no scenario objects: the setup has not finished, or they were dropped)"
                );
            }
            let devices = sim.bus().devices();
            for d in devices.iter().take(DUMP_DEVICES) {
                let _ = writeln!(
                    s,
                    "  device {:?} {}: {} open handle(s), {} IRP(s) pending",
                    d.id, d.name, d.open_handles, d.pending_irps
                );
            }
            if devices.len() > DUMP_DEVICES {
                let _ = writeln!(
                    s,
                    "  ... and {} more device(s): {} open handle(s), {} IRP(s) pending",
                    devices.len() - DUMP_DEVICES,
                    devices[DUMP_DEVICES..]
                        .iter()
                        .map(|d| d.open_handles)
                        .sum::<usize>(),
                    devices[DUMP_DEVICES..]
                        .iter()
                        .map(|d| d.pending_irps)
                        .sum::<usize>()
                );
            }
            let _ = writeln!(s, "  faults: {:?}", sim.faults());
            let _ = writeln!(s, "  {}", sim.counters());
            let _ = write!(s, "{}", sim.recorder_dump());
            s
        })
    };
    let dog = Watchdog::spawn(Arc::clone(&stats), config.stall_timeout, dump);

    let to_plug = config.max_devices.div_ceil(2);
    if config.progress {
        println!(
            "[soak setup] seed {:#x}: plugging {to_plug} child device(s), then {:.0} s of scenarios",
            config.seed,
            config.duration.as_secs_f64()
        );
    }
    stats.doing("main", "setup");
    if config.inject_setup_hang {
        stats.doing("main", "setup: blocked on purpose (inject_setup_hang)");
        loop {
            // Only the watchdog ends this run.
            sleep_ms(10);
        }
    }
    // The bus instance's own Tests_IoctlHandler (RT) and a child PDO's (CRT).
    let bus = sim.bus();
    let self_device = bus
        .add_device(DeviceSpec::new("soak-self", pnp::handler()))
        .expect("add the self device");
    let pdo = bus
        .add_device(DeviceSpec::new("soak-pdo", pnp::handler()))
        .expect("add the PDO");
    let client = sim.client_device();
    let self_link = bus.device_link(self_device).expect("self link");
    let rts = [
        RequestTargetConfig::default(),
        RequestTargetConfig::passive(),
    ]
    .into_iter()
    .map(|cfg| {
        let t = Arc::new(sim.create_io_target().expect("target"));
        t.open(
            &OpenParams {
                symbolic_link: &self_link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .expect("open the self target");
        let rt = RequestTarget::new(&sim, cfg).expect("request target");
        rt.io_target_set(Arc::clone(&t)).expect("target set");
        (rt, t)
    })
    .collect();
    stats.doing("main", "setup: CRTs, DIMTs, pools");
    let crt = CrtScenario::new(&sim, pdo, &client, &stats, seeds.next_u64()).expect("CRTs");
    let dimt = DimtScenario::new(&sim, &client, &stats, seeds.next_u64()).expect("DIMTs");
    let bp = BpScenario::new(&sim, Arc::clone(&stats)).expect("pools");
    stats.doing("main", "setup: client device start");
    client.start().expect("client device start");
    let mut churn = Churn::new(&sim, Arc::clone(&stats), config.max_devices);
    let mut next_line = Instant::now() + Duration::from_secs(1);
    for plugged in 1..=to_plug {
        // Each device is a step of its own (the watchdog sees it move).
        stats.doing("main", "setup: plugging the child devices");
        churn.plug();
        if config.progress && Instant::now() >= next_line {
            println!("[soak setup] {plugged}/{to_plug} child device(s) plugged");
            next_line += Duration::from_secs(1);
        }
    }
    let world = Arc::new(World {
        sim: sim.clone(),
        stats: Arc::clone(&stats),
        stop: AtomicBool::new(false),
        bp,
        rts,
        crt,
        dimt,
        client,
    });
    *world_slot.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&world);

    // The workers' test pools exist before faults are injected.
    let mut actors: Vec<Actor> = ["rt", "crt", "dimt-0", "dimt-1"]
        .into_iter()
        .map(|name| {
            Actor::new(&sim, Arc::clone(&stats), name.to_string(), seeds.next_u64())
                .expect("test pool")
        })
        .collect();
    if config.faults {
        set_faults(&sim);
    }
    let start = Instant::now();
    dog.set_deadline(later(
        start,
        config
            .duration
            .saturating_add(config.end_grace)
            .saturating_add(config.stall_timeout),
    ));
    let mut workers = Vec::new();
    for i in 0..2 {
        let seed = seeds.next_u64();
        workers.push(spawn(&format!("bp-{i}"), &world, move |w, _| {
            let mut rng = SplitMix64::new(seed);
            while !w.stop.load(Ordering::Acquire) {
                w.bp.action(&mut rng);
                std::thread::sleep(Duration::from_micros(rng.range_inclusive(0, 300)));
            }
        }));
    }
    {
        let mut actor = actors.remove(0);
        workers.push(spawn("rt", &world, move |w, _| {
            while !w.stop.load(Ordering::Acquire) {
                let i = actor.rand(0, 1) as usize;
                actor.random_action(&w.rts[i].0, 0);
                actor.doing("pause");
                let ms = actor.rand(1, 10);
                sleep_ms(ms);
            }
        }));
    }
    {
        let mut actor = actors.remove(0);
        workers.push(spawn("crt", &world, move |w, _| {
            while !w.stop.load(Ordering::Acquire) {
                if actor.chance(30) {
                    let which = actor.rand(0, 2);
                    let start = actor.chance(50);
                    actor.doing(if start { "stream start" } else { "stream stop" });
                    w.crt.toggle(&w.stats, which, start);
                } else if actor.chance(50) {
                    actor.random_action(&*w.crt.a, 1);
                } else {
                    actor.random_action(&*w.crt.b, 1);
                }
                actor.doing("pause");
                let ms = actor.rand(1, 10);
                sleep_ms(ms);
            }
        }));
    }
    for i in 0..2 {
        let mut actor = actors.remove(0);
        workers.push(spawn(&format!("dimt-{i}"), &world, move |w, _| {
            while !w.stop.load(Ordering::Acquire) {
                let k = actor.rand(0, w.dimt.instances.len() as u64 - 1) as usize;
                let m = w.dimt.instances[k].1.module();
                let open = m.client().open_targets();
                if open.is_empty() {
                    actor.doing("waiting for a target");
                    sleep_ms(5);
                    continue;
                }
                let handle = open[actor.rand(0, open.len() as u64 - 1) as usize];
                if actor.chance(3) {
                    // DIT-2 dynamic: a module created and dropped with I/O
                    // possibly pending.
                    actor.doing("dynamic DIMT: create");
                    let seed = actor.rand(0, u64::MAX - 1);
                    match DimtScenario::dynamic(&w.sim, &w.stats, seed) {
                        Ok(d) => {
                            let open = d.client().open_targets();
                            if let Some(&t) = open.first() {
                                // The guard goes before the module: dropping
                                // the module waits for it.
                                match d.target_guard(t) {
                                    Ok(target) => {
                                        actor.doing("dynamic DIMT: sends");
                                        actor.sync_sleep_with_random_timeout(&target, 2);
                                        actor.random_action(&target, 2);
                                    }
                                    Err(s) => w.stats.status("dimt", s),
                                }
                            }
                            actor.doing("dynamic DIMT: drop");
                            drop(d);
                            w.stats.op("dimt.dynamic");
                        }
                        Err(s) => w.stats.status("dimt", s),
                    }
                } else if actor.chance(10) {
                    actor.doing("target_guard + get");
                    match m.target_guard(handle) {
                        Ok(guard) => {
                            let r = m.get(guard.handle());
                            w.stats.result("dimt", &r);
                        }
                        Err(s) => w.stats.status("dimt", s),
                    }
                    w.stats.op("dimt.target_reference");
                } else {
                    // One action on the target, holding a reference on it.
                    match m.target_guard(handle) {
                        Ok(target) => actor.random_action(&target, 2),
                        Err(s) => w.stats.status("dimt", s),
                    }
                }
                actor.doing("pause");
                let ms = actor.rand(1, 10);
                sleep_ms(ms);
            }
        }));
    }
    let pnp = {
        let seed = seeds.next_u64();
        let world = Arc::clone(&world);
        std::thread::Builder::new()
            .name("soak-pnp".into())
            .spawn(move || {
                let mut rng = SplitMix64::new(seed);
                while !world.stop.load(Ordering::Acquire) {
                    world.stats.doing("pnp", "bus event");
                    let what = churn.step(&mut rng);
                    world.stats.doing("pnp", what);
                    world.stats.doing("pnp", "pause");
                    sleep_ms(rng.range_inclusive(5, 40));
                }
                world.stats.finished("pnp");
                churn
            })
            .expect("spawn the pnp worker")
    };
    {
        let seed = seeds.next_u64();
        workers.push(spawn("power", &world, move |w, name| {
            let mut rng = SplitMix64::new(seed);
            while !w.stop.load(Ordering::Acquire) {
                w.stats.doing(name, "pause");
                sleep_ms(rng.range_inclusive(50, 250));
                if w.stop.load(Ordering::Acquire) {
                    break;
                }
                if w.client.state() == ClientState::D3 {
                    // A failed power-up (a layer's D0 entry failed, e.g. by an
                    // injected fault) leaves the device in D3: retry it.
                    w.stats.doing(name, "power up (retry)");
                    let r = w.client.power_up();
                    w.stats.result("power", &r);
                    w.stats.op("power.up_retry");
                } else {
                    w.stats.doing(name, "power cycle");
                    let r = w.client.power_cycle();
                    w.stats.result("power", &r);
                    w.stats.op("power.cycle");
                }
            }
        }));
    }

    if config.inject_hang {
        workers.push(spawn("hang", &world, |w, name| {
            w.stats.doing(name, "blocked on purpose (inject_hang)");
            while !w.stop.load(Ordering::Acquire) {
                sleep_ms(10);
            }
        }));
    }

    // Progress, once a second.
    stats.finished("main");
    let mut last_ops = 0u64;
    let mut next = start + Duration::from_secs(1);
    while start.elapsed() < config.duration {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(config.duration.saturating_sub(start.elapsed())));
            continue;
        }
        next += Duration::from_secs(1);
        if config.progress {
            let ops = stats.ops_with_prefix("");
            let c = sim.counters();
            println!(
                "[soak {:>4.0} s/{:.0} s] ops {ops} (+{}/s) | bp {} rt+crt+dimt sends {} streams {} pnp {} power {} | targets open {} | in flight {} | faults {} | violations {}",
                start.elapsed().as_secs_f64(),
                config.duration.as_secs_f64(),
                ops - last_ops,
                stats.ops_with_prefix("bp."),
                stats.ops_with_prefix("send.") + stats.ops_with_prefix("cancel.") + stats.ops_with_prefix("reuse."),
                stats.ops_with_prefix("crt.stream") + stats.ops_with_prefix("dimt.stream"),
                stats.ops_with_prefix("pnp."),
                stats.ops_with_prefix("power."),
                world.dimt.open_targets(),
                c.requests_in_flight,
                c.faults_injected,
                stats.violations().len(),
            );
            last_ops = ops;
        }
    }
    let elapsed = start.elapsed();

    // Teardown.
    dog.set_deadline(later(Instant::now(), config.end_grace));
    stats.doing("main", "stopping the workers");
    world.stop.store(true, Ordering::Release);
    for w in workers {
        if w.join().is_err() {
            stats.violation("a worker panicked".into());
        }
    }
    let mut churn = pnp.join().expect("the pnp worker panicked");
    stats.op("teardown.workers_joined");
    // Before any target closes: every DIMT stream stops resending, so the
    // streams drain all at once. (Closed one by one while the others kept
    // streaming, each target's close waited for its cancelled request behind
    // the completions of every target still streaming: quadratic in the
    // number of devices.)
    stats.doing("main", "winding the DIMT streams down");
    world.dimt.wind_down();
    let faults_injected: Vec<(FaultPoint, u64)> = FaultPoint::ALL
        .iter()
        .map(|&p| (p, sim.faults().injected(p)))
        .filter(|&(_, n)| n > 0)
        .collect();
    sim.faults().clear_all();
    stats.doing("main", "client device stop");
    stats.result("power", &world.client.stop());
    stats.doing("main", "buffer pool drain");
    if let Err(e) = world.bp.finish() {
        stats.violation(e);
    }
    stats.op("teardown.pools_drained");
    let Ok(world) = Arc::try_unwrap(world) else {
        panic!("soak: a worker still holds the world");
    };
    let World {
        rts,
        crt,
        dimt,
        bp,
        client,
        ..
    } = world;
    stats.doing("main", "closing the DIMTs");
    drop(dimt);
    stats.op("teardown.dimt_closed");
    stats.doing("main", "closing the CRTs");
    crt.close();
    stats.op("teardown.crt_closed");
    stats.doing("main", "closing the request targets");
    for (rt, target) in rts {
        rt.close();
        drop(rt);
        target.close();
    }
    stats.op("teardown.rt_closed");
    drop(bp);
    drop(client);
    stats.doing("main", "unplugging the devices");
    if let Err(e) = churn.unplug_all() {
        stats.violation(e);
    }
    for id in [self_device, pdo] {
        match sim.bus().remove_device(id) {
            Ok(dmf_sim::RemovalOutcome::Removed) => {}
            other => stats.violation(format!("removing {id:?}: {other:?}")),
        }
    }
    stats.op("teardown.unplugged");
    stats.doing("main", "waiting for the simulator to be quiescent");
    if !sim.wait_quiescent(Duration::from_secs(10)) {
        stats.violation("the simulator did not become quiescent within 10 s".into());
    }
    for p in sim.take_callback_panics() {
        stats.violation(format!("callback panicked: {p}"));
    }
    let counters = sim.counters();
    let leak_free = counters.is_clean()
        && counters.irps_sent == counters.irps_completed
        && churn.present() == 0;
    stats.finished("main");
    dog.stop();
    for ((layer, raw), n) in stats.statuses() {
        let status = Status::from_raw(raw);
        if !allowed(layer, status, config.faults) {
            stats.violation(format!("{layer}: unexpected status {status} ({n} time(s))"));
        }
    }
    let violations = stats.violations();
    let recorders = (!violations.is_empty() || !leak_free).then(|| sim.recorder_dump());
    SoakReport {
        seed: config.seed,
        faults: config.faults,
        elapsed,
        ops: stats.ops(),
        statuses: stats.statuses(),
        faults_injected,
        violations,
        counters,
        leak_free,
        recorders,
    }
}

use watchdog::Watchdog;
