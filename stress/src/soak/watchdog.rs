//! The soak's watchdog: fails the run (exit code 3) with a dump of what is
//! still outstanding when a worker is stuck, nothing progresses, or the end
//! does not come.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::stats::Stats;

/// Exit code of a run failed by the watchdog.
pub const WATCHDOG_EXIT_CODE: i32 = 3;

/// Produces the dump of what is outstanding.
pub(crate) type Dump = Arc<dyn Fn() -> String + Send + Sync>;

pub(crate) struct Watchdog {
    done: Arc<AtomicBool>,
    deadline: Arc<Mutex<Option<Instant>>>,
    handle: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching: one worker stuck in one action for `stall`, `stall`
    /// without progress, or passing the deadline (none until
    /// [`set_deadline`](Self::set_deadline)) fails the run.
    pub(crate) fn spawn(stats: Arc<Stats>, stall: Duration, dump: Dump) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let deadline = Arc::new(Mutex::new(None::<Instant>));
        let handle = {
            let done = Arc::clone(&done);
            let deadline = Arc::clone(&deadline);
            std::thread::Builder::new()
                .name("soak-watchdog".into())
                .spawn(move || {
                    let mut last = (stats.progress(), Instant::now());
                    while !done.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(100));
                        let now = Instant::now();
                        let progress = stats.progress();
                        if progress != last.0 {
                            last = (progress, now);
                        }
                        let overdue = deadline
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .is_some_and(|d| now > d);
                        // A stuck worker first: it names the culprit.
                        let reason = if let Some((w, what, age)) =
                            stats.oldest_activity().filter(|a| a.2 > stall)
                        {
                            Some(format!(
                                "worker {w} stuck in \"{what}\" for {:.1} s",
                                age.as_secs_f64()
                            ))
                        } else if now.duration_since(last.1) > stall {
                            Some(format!("no progress for {:.1} s", stall.as_secs_f64()))
                        } else if overdue {
                            Some("the run did not end in time".to_string())
                        } else {
                            None
                        };
                        if let Some(reason) = reason {
                            if done.load(Ordering::Acquire) {
                                return;
                            }
                            eprintln!(
                                "\nsoak: WATCHDOG: {reason}; failing the run.\n  workers:\n{}{}",
                                stats.activity_dump(),
                                dump()
                            );
                            std::process::exit(WATCHDOG_EXIT_CODE);
                        }
                    }
                })
                .expect("spawn the watchdog")
        };
        Watchdog {
            done,
            deadline,
            handle: Some(handle),
        }
    }

    /// Sets (or moves) the deadline.
    pub(crate) fn set_deadline(&self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = Some(deadline);
    }

    /// Stops watching.
    pub(crate) fn stop(mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
