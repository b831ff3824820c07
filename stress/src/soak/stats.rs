//! What the soak counts: operations, statuses per layer, violations, and
//! what each worker is doing (for the watchdog).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dmf_wdf::Status;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shared counters of one soak run.
#[derive(Debug)]
pub(crate) struct Stats {
    ops: Mutex<BTreeMap<&'static str, u64>>,
    statuses: Mutex<BTreeMap<(&'static str, i32), u64>>,
    violations: Mutex<Vec<String>>,
    progress: AtomicU64,
    activity: Mutex<BTreeMap<String, (String, Instant)>>,
    /// Faults are injected in this run.
    pub(crate) faults: bool,
}

impl Stats {
    pub(crate) fn new(faults: bool) -> Self {
        Stats {
            ops: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(BTreeMap::new()),
            violations: Mutex::new(Vec::new()),
            progress: AtomicU64::new(0),
            activity: Mutex::new(BTreeMap::new()),
            faults,
        }
    }

    /// Counts one operation.
    pub(crate) fn op(&self, name: &'static str) {
        *lock(&self.ops).entry(name).or_default() += 1;
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a status seen by `layer`.
    pub(crate) fn status(&self, layer: &'static str, status: Status) {
        *lock(&self.statuses)
            .entry((layer, status.raw()))
            .or_default() += 1;
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the status of a result.
    pub(crate) fn result<T>(&self, layer: &'static str, result: &dmf_wdf::Result<T>) {
        self.status(
            layer,
            match result {
                Ok(_) => Status::SUCCESS,
                Err(s) => *s,
            },
        );
    }

    /// Records a broken invariant.
    pub(crate) fn violation(&self, what: String) {
        eprintln!("soak: VIOLATION: {what}");
        lock(&self.violations).push(what);
    }

    /// Worker `worker` starts `what`.
    pub(crate) fn doing(&self, worker: &str, what: &str) {
        let mut a = lock(&self.activity);
        match a.get_mut(worker) {
            Some(entry) => {
                entry.0.clear();
                entry.0.push_str(what);
                entry.1 = Instant::now();
            }
            None => {
                a.insert(worker.to_string(), (what.to_string(), Instant::now()));
            }
        }
    }

    /// Worker `worker` ended.
    pub(crate) fn finished(&self, worker: &str) {
        lock(&self.activity).remove(worker);
    }

    /// Total progress events so far.
    pub(crate) fn progress(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// The worker whose current action is the oldest, and its age.
    pub(crate) fn oldest_activity(&self) -> Option<(String, String, Duration)> {
        lock(&self.activity)
            .iter()
            .map(|(w, (what, since))| (w.clone(), what.clone(), since.elapsed()))
            .max_by_key(|x| x.2)
    }

    /// Every worker's current action.
    pub(crate) fn activity_dump(&self) -> String {
        let mut s = String::new();
        for (w, (what, since)) in lock(&self.activity).iter() {
            s.push_str(&format!(
                "    {w:<12} {what} (for {:.1} s)\n",
                since.elapsed().as_secs_f64()
            ));
        }
        s
    }

    pub(crate) fn ops(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.ops).clone()
    }

    pub(crate) fn statuses(&self) -> BTreeMap<(&'static str, i32), u64> {
        lock(&self.statuses).clone()
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }

    /// Sum of the operations whose name starts with `prefix`.
    pub(crate) fn ops_with_prefix(&self, prefix: &str) -> u64 {
        lock(&self.ops)
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

/// A counter to wait on (reuse-matrix completions).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    count: Mutex<u64>,
    changed: std::sync::Condvar,
}

impl Signal {
    pub(crate) fn get(&self) -> u64 {
        *lock(&self.count)
    }

    pub(crate) fn bump(&self) {
        *lock(&self.count) += 1;
        self.changed.notify_all();
    }

    /// Waits until the count differs from `seen`; `false` on timeout.
    pub(crate) fn wait_past(&self, seen: u64, timeout: Duration) -> bool {
        let guard = lock(&self.count);
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |c| *c == seen)
            .unwrap_or_else(PoisonError::into_inner);
        *guard != seen
    }
}
