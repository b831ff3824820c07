//! The send actions shared by the RequestTarget, CRT and DIMT scenarios:
//! synchronous sends, asynchronous sends with random timeouts, short
//! timeouts, the cancel matrix and the reuse matrix, through the
//! [`Sender`] trait the three layers implement (a DIMT target through its
//! guard). The asynchronous sends are safe sends of pool buffers, handed
//! back to the completion.

use std::sync::Arc;
use std::time::Duration;

use dmf_buffer_pool::{BufferPool, BufferPoolConfig};
use dmf_request_target::{
    CancelId, OwnedCompletion, OwnedSendCompleted, ReuseId, SendBuffer, SendParams, Sender,
};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, SLEEP_INPUT_SIZE};
use dmf_sim::{Sim, SplitMix64};
use dmf_wdf::{Result, Status};

use super::stats::{Signal, Stats};

/// Which send method.
#[derive(Clone, Copy, Debug)]
enum How {
    /// `send`.
    Plain,
    /// `send_ex`.
    WithId,
    /// `reuse_send` of this id.
    Reuse(ReuseId),
}

/// Flags in the test buffer's context.
const EXPECT_CANCELLED: u8 = 1;
const REUSE: u8 = 2;

/// Layers, by index in the test buffer's context.
const LAYERS: [&str; 3] = ["rt", "crt", "dimt"];

/// Size of a test buffer (a Sleep structure fits).
const TEST_BUFFER: u32 = 16;

/// A worker's send machinery: the test pool (DMF's 10 + look-aside), the
/// shared completion callback, the reuse event.
pub(crate) struct Actor {
    pub(crate) stats: Arc<Stats>,
    pub(crate) worker: String,
    pub(crate) rng: SplitMix64,
    pool: BufferPool<Sim>,
    completion: OwnedCompletion<Sim>,
    reuse_done: Arc<Signal>,
}

impl Actor {
    pub(crate) fn new(sim: &Sim, stats: Arc<Stats>, worker: String, seed: u64) -> Result<Actor> {
        let pool = BufferPool::new(
            sim,
            BufferPoolConfig::new(10, TEST_BUFFER)
                .with_context_size(8)
                .with_look_aside(true),
        )?;
        let reuse_done = Arc::new(Signal::default());
        let completion: OwnedCompletion<Sim> = {
            let stats = Arc::clone(&stats);
            let reuse_done = Arc::clone(&reuse_done);
            Arc::new(move |c: OwnedSendCompleted<Sim>| {
                let Some(Ok(buffer)) = c.input.map(SendBuffer::into_pool_buffer) else {
                    stats.violation("completion without its test buffer".to_string());
                    return;
                };
                let (flags, layer) = (buffer.context()[0], buffer.context()[1]);
                let layer = LAYERS.get(usize::from(layer)).copied().unwrap_or("?");
                stats.status(layer, c.status);
                if flags & EXPECT_CANCELLED != 0 {
                    let ok = c.status == Status::CANCELLED
                        || (stats.faults && c.status == Status::UNSUCCESSFUL);
                    if ok {
                        stats.op("cancel.expected_cancelled");
                    } else {
                        stats.violation(format!(
                            "{layer}: a send cancelled 1-5 ms into a 400 ms sleep completed with {} (expected STATUS_CANCELLED)",
                            c.status
                        ));
                    }
                }
                drop(buffer);
                if flags & REUSE != 0 {
                    reuse_done.bump();
                }
            })
        };
        Ok(Actor {
            stats,
            worker,
            rng: SplitMix64::new(seed),
            pool,
            completion,
            reuse_done,
        })
    }

    pub(crate) fn rand(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range_inclusive(lo, hi)
    }

    pub(crate) fn chance(&mut self, percent: u32) -> bool {
        self.rng.chance_per_million(percent * 10_000)
    }

    pub(crate) fn doing(&self, what: &str) {
        self.stats.doing(&self.worker, what);
    }

    fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    /// An asynchronous SLEEP send of `sleep_ms` with a test buffer as input.
    /// Returns the cancel id of a `send_ex` or `reuse_send`.
    fn async_send(
        &mut self,
        s: &dyn Sender<Sim>,
        layer: usize,
        sleep_ms: u64,
        timeout_ms: u32,
        flags: u8,
        how: How,
    ) -> Option<CancelId> {
        let mut buffer = match self.pool.get() {
            Ok(b) => b,
            Err(status) => {
                self.stats.status("test-pool", status);
                return None;
            }
        };
        let sleep = encode_sleep(sleep_ms as i32);
        buffer.data_mut()[..SLEEP_INPUT_SIZE].copy_from_slice(&sleep);
        buffer.context_mut()[0] = flags;
        buffer.context_mut()[1] = layer as u8;
        let input = Some(SendBuffer::pool_prefix(buffer, SLEEP_INPUT_SIZE));
        let params = SendParams::ioctl(IOCTL_SLEEP).with_timeout(timeout_ms);
        let cb = Some(Arc::clone(&self.completion));
        let result = match how {
            How::Reuse(id) => s.reuse_send(id, input, None, params, cb, 0).map(Some),
            How::WithId => s.send_ex(input, None, params, cb, 0).map(Some),
            How::Plain => s.send(input, None, params, cb, 0).map(|()| None),
        };
        match result {
            Ok(id) => id,
            Err(refused) => {
                // No callback comes; the test buffer is back in `refused`
                // and goes home with it.
                self.stats.status(LAYERS[layer], refused.status);
                None
            }
        }
    }

    /// DIT-2's synchronous send: `rand(0, 20)` ms of sleep, a random
    /// timeout (none, or 1..30 ms).
    pub(crate) fn sync_sleep_with_random_timeout(&mut self, s: &dyn Sender<Sim>, layer: usize) {
        let sleep = encode_sleep(self.rand(0, 20) as i32);
        let timeout = if self.chance(50) {
            0
        } else {
            self.rand(1, 30) as u32
        };
        let params = SendParams::ioctl(IOCTL_SLEEP).with_timeout(timeout);
        let r = s.send_synchronously(&sleep, &mut [], params);
        self.stats.result(LAYERS[layer], &r);
        self.stats.op("send.sync");
    }

    /// One random action of DMF's per-target test thread.
    pub(crate) fn random_action(&mut self, s: &dyn Sender<Sim>, layer: usize) {
        let name = LAYERS[layer];
        match self.rand(0, 4) {
            0 => {
                self.doing("send_synchronously");
                let sleep = encode_sleep(self.rand(0, 10) as i32);
                let r = s.send_synchronously(&sleep, &mut [], SendParams::ioctl(IOCTL_SLEEP));
                self.stats.result(name, &r);
                self.stats.op("send.sync");
            }
            1 => {
                self.doing("send (random timeout)");
                let sleep = self.rand(0, 40);
                let timeout = if self.chance(50) {
                    self.rand(5, 50) as u32
                } else {
                    0
                };
                self.async_send(s, layer, sleep, timeout, 0, How::Plain);
                self.stats.op("send.async");
            }
            2 => {
                self.doing("send (5 ms timeout) x2");
                let sleep = self.rand(0, 40);
                self.async_send(s, layer, sleep, 5, 0, How::Plain);
                self.sleep_ms(sleep / 2);
                self.async_send(s, layer, sleep, 5, 0, How::Plain);
                self.stats.op("send.short_timeout");
            }
            3 => {
                let case = self.rand(0, 4) as u8;
                let _ = self.cancel_case(s, layer, case, None);
            }
            _ => self.reuse_matrix(s, layer),
        }
    }

    /// One case of the cancel matrix: a random sleep cancelled after a random
    /// wait (a), after as long (b), at once (c), too late (d), and a 400 ms
    /// sleep cancelled 1 to 5 ms in (e).
    /// Returns whether the send was accepted.
    fn cancel_case(
        &mut self,
        s: &dyn Sender<Sim>,
        layer: usize,
        case: u8,
        reuse: Option<ReuseId>,
    ) -> bool {
        let reuse_flag = if reuse.is_some() { REUSE } else { 0 };
        let what = if reuse.is_some() {
            "reuse matrix"
        } else {
            "cancel matrix"
        };
        self.doing(&format!("{what} case {}", (b'a' + case) as char));
        let (sleep, wait, flags) = match case {
            0 => (self.rand(0, 40), self.rand(0, 40), 0),
            1 => {
                let t = self.rand(0, 40);
                (t, t, 0)
            }
            2 => (self.rand(0, 40), 0, 0),
            3 => {
                let t = self.rand(2, 10);
                (t, 4 * t + 20, 0)
            }
            _ => {
                // The target of a DIMT may vanish at any time (then the
                // status may be STATUS_DEVICE_REMOVED): assert only for the
                // others, as DMF asserts only where the target stays.
                let expect = if LAYERS[layer] == "dimt" {
                    0
                } else {
                    EXPECT_CANCELLED
                };
                (400, self.rand(1, 5), expect)
            }
        };
        let how = reuse.map_or(How::WithId, How::Reuse);
        let Some(id) = self.async_send(s, layer, sleep, 0, flags | reuse_flag, how) else {
            return false;
        };
        if wait > 0 {
            self.sleep_ms(wait);
        }
        let cancelled = s.cancel(id);
        self.stats.op(match (case, cancelled) {
            (3, false) => "cancel.too_late_as_expected",
            (3, true) => "cancel.late_but_won",
            (_, true) => "cancel.initiated",
            (_, false) => "cancel.missed",
        });
        if case == 4 && !cancelled && !self.stats.faults && LAYERS[layer] == "rt" {
            // A RequestTarget's target stays (no purge, no removal): a refused
            // cancel of a request parked for 400 ms is wrong.
            self.stats.violation(format!(
                "{}: cancel of a send 1-5 ms into a 400 ms sleep returned false",
                LAYERS[layer]
            ));
        }
        true
    }

    /// The reuse matrix: one reusable request through the
    /// five cancel cases, each time waiting for its completion.
    fn reuse_matrix(&mut self, s: &dyn Sender<Sim>, layer: usize) {
        let name = LAYERS[layer];
        self.doing("reuse_create");
        let id = match s.reuse_create() {
            Ok(id) => id,
            Err(status) => {
                self.stats.status(name, status);
                return;
            }
        };
        self.stats.op("reuse.created");
        for case in 0..5u8 {
            let seen = self.reuse_done.get();
            if self.cancel_case(s, layer, case, Some(id)) {
                // Accepted: its callback comes, whatever happens to the target.
                self.doing("reuse matrix: waiting for the completion");
                if !self.reuse_done.wait_past(seen, Duration::from_secs(5)) {
                    self.stats.violation(format!(
                        "{name}: a reusable request's completion did not come within 5 s"
                    ));
                }
            }
        }
        self.doing("reuse_delete");
        let r = s.reuse_delete(id);
        self.stats.result(name, &r);
        self.stats.op("reuse.deleted");
    }
}
