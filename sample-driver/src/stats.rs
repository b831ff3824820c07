//! Per-target figures and their aggregate: what the driver's IOCTL reports.
//!
//! The completion path ([`Statistics::record_completion`]) only touches
//! atomics: no lock, no allocation, safe in a completion routine. Target
//! arrivals and state changes (passive level) take the platform's spin lock
//! to update the table of records; the IOCTL reads the table under that lock.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use dmf_wdf::recorder::Recorder;
use dmf_wdf::{Lock, Platform, Status};

use crate::ioctl::{StatisticsHeader, StatusCount, TargetRecord};

/// Where a target is, as the driver reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum TargetState {
    /// Open, requests streaming.
    Open = 1,
    /// Closed for a query-remove: reopened if the removal is cancelled.
    QueryRemoved = 3,
    /// The device is gone (remove-complete). History only.
    Removed = 4,
    /// Closed (interface disabled, driver powered down or stopping). History only.
    Closed = 5,
}

impl TargetState {
    /// Every state, in discriminant order.
    pub const ALL: [TargetState; 4] = [
        TargetState::Open,
        TargetState::QueryRemoved,
        TargetState::Removed,
        TargetState::Closed,
    ];

    /// A short lower-case name for displays.
    pub const fn name(self) -> &'static str {
        match self {
            TargetState::Open => "open",
            TargetState::QueryRemoved => "query-removed",
            TargetState::Removed => "removed",
            TargetState::Closed => "closed",
        }
    }

    /// Whether the driver still tracks the target (it may come back to `Open`).
    pub const fn is_tracked(self) -> bool {
        matches!(self, TargetState::Open | TargetState::QueryRemoved)
    }
}

impl TryFrom<u32> for TargetState {
    type Error = u32;

    fn try_from(value: u32) -> core::result::Result<Self, u32> {
        TargetState::ALL
            .iter()
            .copied()
            .find(|s| *s as u32 == value)
            .ok_or(value)
    }
}

/// The figures of one target. Shared (`Arc`) between the table and whoever
/// delivers the target's completions.
#[derive(Debug)]
pub struct TargetStats {
    id: u32,
    link: String,
    opened_100ns: u64,
    state: AtomicU32,
    completed: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    last_error: AtomicI32,
    ended_100ns: AtomicU64,
}

impl TargetStats {
    /// Sequence number (1 for the first target opened).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The symbolic link it was opened by.
    pub fn link(&self) -> &str {
        &self.link
    }

    /// Current state.
    pub fn state(&self) -> TargetState {
        TargetState::try_from(self.state.load(Ordering::Acquire)).unwrap_or(TargetState::Closed)
    }

    /// Requests completed successfully.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Requests completed with a failure.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Bytes of successful requests.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn record(&self) -> TargetRecord {
        let mut r = TargetRecord {
            id: self.id,
            state: self.state(),
            completed: self.completed(),
            errors: self.errors(),
            bytes: self.bytes(),
            opened_100ns: self.opened_100ns,
            ended_100ns: self.ended_100ns.load(Ordering::Acquire),
            last_error: Status::from_raw(self.last_error.load(Ordering::Relaxed)),
            ..TargetRecord::default()
        };
        r.set_link(&self.link);
        r
    }
}

/// How many distinct completion statuses [`StatusCounts`] keeps.
pub const STATUS_SLOTS: usize = 16;

/// Completions per status, lock-free: a fixed table of [`STATUS_SLOTS`]
/// slots claimed on first use; statuses beyond that are counted as "other".
#[derive(Debug)]
pub struct StatusCounts {
    // 0 = free; otherwise (1 << 32) | status as u32.
    keys: [AtomicU64; STATUS_SLOTS],
    counts: [AtomicU64; STATUS_SLOTS],
    other: AtomicU64,
}

impl Default for StatusCounts {
    fn default() -> Self {
        StatusCounts {
            keys: core::array::from_fn(|_| AtomicU64::new(0)),
            counts: core::array::from_fn(|_| AtomicU64::new(0)),
            other: AtomicU64::new(0),
        }
    }
}

impl StatusCounts {
    fn key(status: Status) -> u64 {
        (1 << 32) | u64::from(status.raw() as u32)
    }

    /// Counts one completion with `status`.
    ///
    /// ```
    /// use dmf_wdf::Status;
    /// let counts = sample_driver::stats::StatusCounts::default();
    /// counts.record(Status::SUCCESS);
    /// counts.record(Status::CANCELLED);
    /// counts.record(Status::SUCCESS);
    /// assert_eq!(counts.count(Status::SUCCESS), 2);
    /// assert_eq!(counts.count(Status::CANCELLED), 1);
    /// ```
    pub fn record(&self, status: Status) {
        let want = Self::key(status);
        for (key, count) in self.keys.iter().zip(&self.counts) {
            let mut k = key.load(Ordering::Acquire);
            if k == 0 {
                k = match key.compare_exchange(0, want, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => want,
                    Err(actual) => actual,
                };
            }
            if k == want {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        self.other.fetch_add(1, Ordering::Relaxed);
    }

    /// Completions seen with `status`.
    pub fn count(&self, status: Status) -> u64 {
        let want = Self::key(status);
        self.keys
            .iter()
            .zip(&self.counts)
            .find(|(k, _)| k.load(Ordering::Acquire) == want)
            .map_or(0, |(_, c)| c.load(Ordering::Relaxed))
    }

    /// Completions whose status found no free slot.
    pub fn other(&self) -> u64 {
        self.other.load(Ordering::Relaxed)
    }

    /// Calls `f` for every status seen, in order of first appearance.
    pub fn for_each(&self, mut f: impl FnMut(StatusCount)) {
        for (key, count) in self.keys.iter().zip(&self.counts) {
            let k = key.load(Ordering::Acquire);
            if k != 0 {
                f(StatusCount {
                    status: Status::from_raw(k as u32 as i32),
                    count: count.load(Ordering::Relaxed),
                });
            }
        }
    }
}

/// Ended targets kept in the history (tracked targets are always kept).
pub const HISTORY: usize = 256;

#[derive(Default)]
struct Table {
    /// Oldest first.
    records: VecDeque<Arc<TargetStats>>,
    next_id: u32,
}

#[derive(Default)]
struct Events {
    opened: AtomicU32,
    query_removes: AtomicU32,
    remove_cancels: AtomicU32,
    remove_completes: AtomicU32,
    closes: AtomicU32,
    power_downs: AtomicU32,
    open_failures: AtomicU32,
}

/// The driver's figures: a table of per-target records plus totals, status
/// counts and event counts. Generic over the platform for its lock and clock.
pub struct Statistics<P: Platform> {
    platform: P,
    start_100ns: u64,
    table: P::Lock<Table>,
    statuses: StatusCounts,
    events: Events,
    completed: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    powered: AtomicBool,
    /// The DIMT module's in-flight recorder, once the module exists
    /// ([`IOCTL_SAMPLE_GET_RECORDER`](crate::ioctl::IOCTL_SAMPLE_GET_RECORDER)).
    recorder: P::Lock<Option<Arc<Recorder<P>>>>,
}

impl<P: Platform> Statistics<P> {
    /// Makes `recorder` the one the recorder IOCTL reads.
    pub fn set_recorder(&self, recorder: Arc<Recorder<P>>) {
        *self.recorder.lock() = Some(recorder);
    }

    /// The recorder the recorder IOCTL reads, if set.
    pub fn recorder(&self) -> Option<Arc<Recorder<P>>> {
        self.recorder.lock().clone()
    }

    /// Empty figures; the clock starts now.
    pub fn new(platform: P) -> Self {
        let start_100ns = platform.now_100ns();
        Statistics {
            platform,
            start_100ns,
            table: P::Lock::new(Table::default()),
            statuses: StatusCounts::default(),
            events: Events::default(),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            powered: AtomicBool::new(false),
            recorder: P::Lock::new(None),
        }
    }

    /// Time since [`Statistics::new`], 100 ns units.
    pub fn now_100ns(&self) -> u64 {
        self.platform.now_100ns().saturating_sub(self.start_100ns)
    }

    /// A target was opened: a new record in state [`TargetState::Open`].
    /// Passive level (allocates).
    pub fn target_opened(&self, link: &str) -> Arc<TargetStats> {
        let mut stats = TargetStats {
            id: 0,
            link: String::from(link),
            opened_100ns: self.now_100ns(),
            state: AtomicU32::new(TargetState::Open as u32),
            completed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last_error: AtomicI32::new(0),
            ended_100ns: AtomicU64::new(0),
        };
        self.events.opened.fetch_add(1, Ordering::Relaxed);
        let id = {
            let mut table = self.table.lock();
            table.next_id = table.next_id.wrapping_add(1);
            table.next_id
        };
        stats.id = id;
        let stats = Arc::new(stats);
        // The deque may grow here; ids stay in order because arrivals are
        // serialised per module (one PnP thread at a time per target, and
        // the id is taken before the push).
        let mut table = self.table.lock();
        let at = table
            .records
            .iter()
            .rposition(|r| r.id < id)
            .map_or(0, |i| i + 1);
        table.records.insert(at, Arc::clone(&stats));
        stats
    }

    /// An interface arrival was not opened (declined, or the open failed).
    pub fn open_failed(&self) {
        self.events.open_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves `target` to `state`, counting the PnP event it stands for.
    /// [`TargetState::Removed`] and [`TargetState::Closed`] end the target
    /// (its end time is set; the oldest ended records beyond [`HISTORY`]
    /// leave the table). A target that already ended stays ended; a
    /// transition to the state it is in is ignored.
    pub fn set_state(&self, target: &TargetStats, state: TargetState) {
        let previous = target.state();
        if previous == state || !previous.is_tracked() {
            return;
        }
        target.state.store(state as u32, Ordering::Release);
        let counter = match (previous, state) {
            (_, TargetState::QueryRemoved) => Some(&self.events.query_removes),
            (TargetState::QueryRemoved, TargetState::Open) => Some(&self.events.remove_cancels),
            (_, TargetState::Removed) => Some(&self.events.remove_completes),
            (_, TargetState::Closed) => Some(&self.events.closes),
            _ => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if !state.is_tracked() {
            target
                .ended_100ns
                .store(self.now_100ns().max(1), Ordering::Release);
            self.trim_history();
        }
    }

    /// Drops the oldest ended records beyond [`HISTORY`].
    fn trim_history(&self) {
        loop {
            let evicted = {
                let mut table = self.table.lock();
                let ended = table
                    .records
                    .iter()
                    .filter(|r| !r.state().is_tracked())
                    .count();
                if ended <= HISTORY {
                    return;
                }
                match table.records.iter().position(|r| !r.state().is_tracked()) {
                    Some(i) => table.records.remove(i),
                    None => return,
                }
            };
            // Released outside the lock (it may be the last reference).
            drop(evicted);
        }
    }

    /// The driver's device entered (`true`) or left (`false`) D0.
    pub fn set_powered(&self, powered: bool) {
        let was = self.powered.swap(powered, Ordering::AcqRel);
        if was && !powered {
            self.events.power_downs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one completion of a request sent to `target`. Lock-free and
    /// allocation-free (completion context).
    pub fn record_completion(&self, target: &TargetStats, status: Status, information: usize) {
        if status.is_success() {
            target.completed.fetch_add(1, Ordering::Relaxed);
            target
                .bytes
                .fetch_add(information as u64, Ordering::Relaxed);
            self.completed.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(information as u64, Ordering::Relaxed);
        } else {
            target.errors.fetch_add(1, Ordering::Relaxed);
            target.last_error.store(status.raw(), Ordering::Relaxed);
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.statuses.record(status);
    }

    /// The completion statuses seen.
    pub fn statuses(&self) -> &StatusCounts {
        &self.statuses
    }

    /// Calls `f` with every record, newest target first, under the table
    /// lock (do not block in `f`), and returns the header describing them
    /// (`records_returned` left at 0 for the caller to set).
    pub fn fill(&self, mut f: impl FnMut(&TargetRecord)) -> StatisticsHeader {
        let table = self.table.lock();
        let mut open = 0u32;
        for r in table.records.iter().rev() {
            let record = r.record();
            if record.state == TargetState::Open {
                open += 1;
            }
            f(&record);
        }
        let e = &self.events;
        StatisticsHeader {
            records_total: table.records.len() as u32,
            records_returned: 0,
            targets_open: open,
            targets_opened: e.opened.load(Ordering::Relaxed),
            uptime_100ns: self.now_100ns(),
            completed: self.completed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            query_removes: e.query_removes.load(Ordering::Relaxed),
            remove_cancels: e.remove_cancels.load(Ordering::Relaxed),
            remove_completes: e.remove_completes.load(Ordering::Relaxed),
            closes: e.closes.load(Ordering::Relaxed),
            power_downs: e.power_downs.load(Ordering::Relaxed),
            powered: u32::from(self.powered.load(Ordering::Acquire)),
            open_failures: e.open_failures.load(Ordering::Relaxed),
        }
    }
}
