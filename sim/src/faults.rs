//! Fault injection (see [`Faults`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dmf_wdf::Status;

use crate::core::Core;
use crate::rng::SplitMix64;

/// When a fault point fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FaultPlan {
    /// Never fails (the default).
    #[default]
    Never,
    /// Every attempt fails.
    Always,
    /// The next `n` attempts fail, then the plan becomes `Never`.
    Next(u32),
    /// Attempts number `n`, `2n`, `3n`, ... (counted from when the plan was
    /// set) fail. `EveryNth(0)` never fails.
    EveryNth(u32),
    /// Each attempt fails with probability `per_million / 1_000_000`, drawn
    /// from a deterministic stream derived from the seed.
    Probability(u32),
}

/// An operation of the simulated platform that can be made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultPoint {
    /// [`Platform::allocate`](dmf_wdf::Platform::allocate) returns `None`.
    Allocation,
    /// [`Platform::create_request`](dmf_wdf::Platform::create_request) fails.
    RequestCreation,
    /// [`Platform::create_io_target`](dmf_wdf::Platform::create_io_target) fails.
    TargetCreation,
    /// [`IoTarget::open`](dmf_wdf::IoTarget::open) and
    /// [`IoTarget::reopen`](dmf_wdf::IoTarget::reopen) fail for every link
    /// (see also [`Faults::set_open_failure_for_link`]).
    TargetOpen,
    /// [`IoTarget::send`](dmf_wdf::IoTarget::send) (and synchronous sends)
    /// refuse the request.
    SendRefusal,
    /// The device completes the request with the fault's status instead of
    /// running its handler (the send itself is accepted).
    RequestFailure,
    /// A completion is delivered later than the configured latency by the
    /// extra time of [`Faults::set_latency_spike`].
    LatencySpike,
    /// [`Platform::create_work_item`](dmf_wdf::Platform::create_work_item) fails.
    WorkItemCreation,
    /// [`WorkItem::enqueue`](dmf_wdf::WorkItem::enqueue) fails.
    WorkItemEnqueue,
    /// [`Platform::create_timer`](dmf_wdf::Platform::create_timer) fails.
    TimerCreation,
    /// [`Platform::create_event`](dmf_wdf::Platform::create_event) fails.
    EventCreation,
    /// [`Platform::register_interface_notification`](dmf_wdf::Platform::register_interface_notification) fails.
    NotificationRegistration,
    /// [`Platform::create_wait_lock`](dmf_wdf::Platform::create_wait_lock) fails.
    WaitLockCreation,
}

impl FaultPoint {
    /// Every fault point.
    pub const ALL: [FaultPoint; 13] = [
        FaultPoint::Allocation,
        FaultPoint::RequestCreation,
        FaultPoint::TargetCreation,
        FaultPoint::TargetOpen,
        FaultPoint::SendRefusal,
        FaultPoint::RequestFailure,
        FaultPoint::LatencySpike,
        FaultPoint::WorkItemCreation,
        FaultPoint::WorkItemEnqueue,
        FaultPoint::TimerCreation,
        FaultPoint::EventCreation,
        FaultPoint::NotificationRegistration,
        FaultPoint::WaitLockCreation,
    ];

    const fn index(self) -> usize {
        self as usize
    }

    /// The status an injected fault reports unless another one is configured.
    pub const fn default_status(self) -> Status {
        match self {
            FaultPoint::Allocation => Status::NO_MEMORY,
            FaultPoint::TargetOpen => Status::DEVICE_NOT_READY,
            FaultPoint::RequestFailure => Status::UNSUCCESSFUL,
            FaultPoint::LatencySpike => Status::SUCCESS,
            FaultPoint::RequestCreation
            | FaultPoint::TargetCreation
            | FaultPoint::SendRefusal
            | FaultPoint::WorkItemCreation
            | FaultPoint::WorkItemEnqueue
            | FaultPoint::TimerCreation
            | FaultPoint::EventCreation
            | FaultPoint::WaitLockCreation
            | FaultPoint::NotificationRegistration => Status::INSUFFICIENT_RESOURCES,
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One initial fault setting of [`SimConfig::faults`](crate::SimConfig::faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultSetting {
    /// Which operation fails.
    pub point: FaultPoint,
    /// When it fails.
    pub plan: FaultPlan,
    /// The status it fails with; `None` = [`FaultPoint::default_status`].
    pub status: Option<Status>,
}

/// The decision state of one fault point.
#[derive(Clone, Debug)]
struct Decider {
    plan: FaultPlan,
    status: Status,
    attempts: u64,
    injected: u64,
    rng: SplitMix64,
    seed_stream: (u64, u64),
}

impl Decider {
    fn new(seed: u64, stream: u64, status: Status) -> Self {
        Decider {
            plan: FaultPlan::Never,
            status,
            attempts: 0,
            injected: 0,
            rng: SplitMix64::derive(seed, stream),
            seed_stream: (seed, stream),
        }
    }

    fn set(&mut self, plan: FaultPlan, status: Status) {
        self.plan = plan;
        self.status = status;
        self.attempts = 0;
        self.rng = SplitMix64::derive(self.seed_stream.0, self.seed_stream.1);
    }

    fn decide(&mut self) -> Option<Status> {
        self.attempts += 1;
        let hit = match self.plan {
            FaultPlan::Never => false,
            FaultPlan::Always => true,
            FaultPlan::Next(n) => {
                if n > 0 {
                    self.plan = if n == 1 {
                        FaultPlan::Never
                    } else {
                        FaultPlan::Next(n - 1)
                    };
                    true
                } else {
                    false
                }
            }
            FaultPlan::EveryNth(n) => n > 0 && self.attempts % u64::from(n) == 0,
            FaultPlan::Probability(ppm) => self.rng.chance_per_million(ppm),
        };
        if hit {
            self.injected += 1;
            Some(self.status)
        } else {
            None
        }
    }
}

const STREAM_BASE: u64 = 0xFA17_0000;
const LINK_STREAM: u64 = 0xFA17_1000;

/// All fault state of one simulator.
pub(crate) struct FaultState {
    seed: u64,
    points: Mutex<Vec<Decider>>,
    enabled: [AtomicBool; FaultPoint::ALL.len()],
    links: Mutex<HashMap<String, Decider>>,
    links_enabled: AtomicBool,
    spike_extra_ms: AtomicU64,
    total: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultState {
    pub(crate) fn new(seed: u64, initial: &[FaultSetting]) -> Self {
        let points = FaultPoint::ALL
            .iter()
            .map(|p| Decider::new(seed, STREAM_BASE + p.index() as u64, p.default_status()))
            .collect();
        let state = FaultState {
            seed,
            points: Mutex::new(points),
            enabled: Default::default(),
            links: Mutex::new(HashMap::new()),
            links_enabled: AtomicBool::new(false),
            spike_extra_ms: AtomicU64::new(100),
            total: AtomicU64::new(0),
        };
        for s in initial {
            state.set(
                s.point,
                s.plan,
                s.status.unwrap_or(s.point.default_status()),
            );
        }
        state
    }

    pub(crate) fn set(&self, point: FaultPoint, plan: FaultPlan, status: Status) {
        let mut points = lock(&self.points);
        points[point.index()].set(plan, status);
        self.enabled[point.index()].store(plan != FaultPlan::Never, Ordering::Release);
    }

    /// Decides whether this attempt at `point` fails; `Some(status)` if so.
    pub(crate) fn check(&self, point: FaultPoint) -> Option<Status> {
        if !self.enabled[point.index()].load(Ordering::Acquire) {
            return None;
        }
        let mut points = lock(&self.points);
        let decider = &mut points[point.index()];
        let result = decider.decide();
        if decider.plan == FaultPlan::Never {
            self.enabled[point.index()].store(false, Ordering::Release);
        }
        drop(points);
        if let Some(status) = result {
            self.total.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%point, ?status, "dmf-sim: injected fault");
        }
        result
    }

    /// Decides whether opening `link` fails by a per-link plan.
    pub(crate) fn check_link(&self, link: &str) -> Option<Status> {
        if !self.links_enabled.load(Ordering::Acquire) {
            return None;
        }
        let key = link.to_ascii_lowercase();
        let result = lock(&self.links).get_mut(&key).and_then(Decider::decide);
        if let Some(status) = result {
            self.total.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(link, ?status, "dmf-sim: injected open fault for link");
        }
        result
    }

    pub(crate) fn spike_extra_ms(&self) -> u64 {
        self.spike_extra_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Handle to the fault settings of a simulator ([`Sim::faults`](crate::Sim::faults)).
///
/// Each [`FaultPoint`] has a [`FaultPlan`] and, where the failure surfaces as a
/// status, the [`Status`] to fail with. Decisions are deterministic: counting
/// plans depend only on the number of attempts since the plan was set, and
/// probabilistic plans draw from a stream derived from the simulator's seed
/// and the fault point, so a run is reproducible from its seed (as far as
/// thread scheduling decides the order of attempts).
///
/// ```
/// use dmf_sim::{FaultPlan, FaultPoint, Sim, SimConfig};
/// use dmf_wdf::{Platform, Status};
///
/// let sim = Sim::new(SimConfig::default());
/// sim.faults().set(FaultPoint::RequestCreation, FaultPlan::Next(1));
/// assert_eq!(sim.create_request(None).err(), Some(Status::INSUFFICIENT_RESOURCES));
/// assert!(sim.create_request(None).is_ok());
/// assert_eq!(sim.faults().injected(FaultPoint::RequestCreation), 1);
/// ```
#[derive(Clone)]
pub struct Faults {
    core: Arc<Core>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        let points = lock(&self.core.faults.points);
        for p in FaultPoint::ALL {
            let dec = &points[p.index()];
            if dec.plan != FaultPlan::Never || dec.injected > 0 {
                d.entry(&p, &(dec.plan, dec.injected));
            }
        }
        d.finish()
    }
}

impl Faults {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Faults { core }
    }

    fn state(&self) -> &FaultState {
        &self.core.faults
    }

    /// Sets the plan of `point`, failing with its default status.
    /// Resets its attempt counter and random stream.
    pub fn set(&self, point: FaultPoint, plan: FaultPlan) {
        self.state().set(point, plan, point.default_status());
    }

    /// Sets the plan of `point`, failing with `status`.
    pub fn set_with_status(&self, point: FaultPoint, plan: FaultPlan, status: Status) {
        self.state().set(point, plan, status);
    }

    /// The current plan of `point` (`Next(n)` counts down as it fires).
    pub fn plan(&self, point: FaultPoint) -> FaultPlan {
        lock(&self.state().points)[point.index()].plan
    }

    /// How many faults `point` injected since the simulator started.
    pub fn injected(&self, point: FaultPoint) -> u64 {
        lock(&self.state().points)[point.index()].injected
    }

    /// How many attempts `point` saw since its plan was last set (only counted
    /// while a plan other than `Never` is active).
    pub fn attempts(&self, point: FaultPoint) -> u64 {
        lock(&self.state().points)[point.index()].attempts
    }

    /// Total faults injected at every point and link.
    pub fn total_injected(&self) -> u64 {
        self.state().total()
    }

    /// Makes opens (and reopens) of the symbolic link `link` fail by `plan`
    /// with `status` (default `STATUS_DEVICE_NOT_READY`), in addition to the
    /// global [`FaultPoint::TargetOpen`] plan. Links compare case-insensitively.
    pub fn set_open_failure_for_link(&self, link: &str, plan: FaultPlan, status: Option<Status>) {
        let state = self.state();
        let mut links = lock(&state.links);
        let key = link.to_ascii_lowercase();
        let stream = LINK_STREAM
            ^ key.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
            });
        let status = status.unwrap_or(FaultPoint::TargetOpen.default_status());
        links
            .entry(key)
            .or_insert_with(|| Decider::new(state.seed, stream, status))
            .set(plan, status);
        state.links_enabled.store(true, Ordering::Release);
    }

    /// Removes the per-link plan of `link`.
    pub fn clear_open_failure_for_link(&self, link: &str) {
        let state = self.state();
        let mut links = lock(&state.links);
        links.remove(&link.to_ascii_lowercase());
        state
            .links_enabled
            .store(!links.is_empty(), Ordering::Release);
    }

    /// Sets when completions are delayed by an extra `extra_ms` milliseconds
    /// ([`FaultPoint::LatencySpike`]).
    pub fn set_latency_spike(&self, plan: FaultPlan, extra_ms: u64) {
        self.state()
            .spike_extra_ms
            .store(extra_ms, Ordering::Relaxed);
        self.set(FaultPoint::LatencySpike, plan);
    }

    /// Resets every plan to `Never` and removes every per-link plan
    /// (injection counts are kept).
    pub fn clear_all(&self) {
        for p in FaultPoint::ALL {
            self.set(p, FaultPlan::Never);
        }
        let state = self.state();
        lock(&state.links).clear();
        state.links_enabled.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_plans() {
        let s = FaultState::new(1, &[]);
        assert_eq!(s.check(FaultPoint::Allocation), None);
        s.set(
            FaultPoint::Allocation,
            FaultPlan::Next(2),
            Status::NO_MEMORY,
        );
        assert_eq!(s.check(FaultPoint::Allocation), Some(Status::NO_MEMORY));
        assert_eq!(s.check(FaultPoint::Allocation), Some(Status::NO_MEMORY));
        assert_eq!(s.check(FaultPoint::Allocation), None);
        s.set(
            FaultPoint::SendRefusal,
            FaultPlan::EveryNth(3),
            Status::UNSUCCESSFUL,
        );
        let hits: Vec<bool> = (0..9)
            .map(|_| s.check(FaultPoint::SendRefusal).is_some())
            .collect();
        assert_eq!(
            hits,
            [false, false, true, false, false, true, false, false, true]
        );
    }

    #[test]
    fn probability_is_reproducible() {
        let run = |seed| {
            let s = FaultState::new(seed, &[]);
            s.set(
                FaultPoint::RequestFailure,
                FaultPlan::Probability(300_000),
                Status::UNSUCCESSFUL,
            );
            (0..64)
                .map(|_| s.check(FaultPoint::RequestFailure).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
