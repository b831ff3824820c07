//! Stream health counters.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::client::RetireReason;

/// A snapshot of a CRT's stream counters
/// ([`ContinuousRequestTarget::statistics`](crate::ContinuousRequestTarget::statistics)).
/// Totals since construction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StreamStatistics {
    /// Stream sends accepted by the target.
    pub sends: u64,
    /// Stream completions received (all of them, including during stop).
    pub completions: u64,
    /// Stream completions with an error status.
    pub failed_completions: u64,
    /// Completions that arrived while streaming was stopping (see
    /// "Completions during stop are counted and may be delivered" in `docs/dmf-differences.md`).
    pub completions_during_stop: u64,
    /// Of those, how many were delivered to the client
    /// ([`deliver_completions_during_stop`](crate::ContinuousRequestTargetConfig::deliver_completions_during_stop)).
    pub completions_delivered_during_stop: u64,
    /// Output buffers the client kept: completions that carried an output
    /// buffer which the disposition did not give back (a `ClientOwns*`
    /// disposition, or a `ModuleOwns*` one after
    /// [`take_output`](crate::StreamCompletion::take_output)). Completions
    /// without a buffer (zero-size or `Write` streams) never count.
    pub buffers_kept_by_client: u64,
    /// Resends delayed by back-off (see "Failing stream requests are re-sent with back-off" in `docs/dmf-differences.md`).
    pub backoffs: u64,
    /// Resends handed to the slot's timer because the target kept completing
    /// the stream request inside `send` (inline completion): the sending
    /// thread stops looping after a bounded number of such resends.
    pub deferred_resends: u64,
    /// Times a stream request was parked waiting for an output buffer.
    pub parked_for_buffer: u64,
    /// Times a parked stream request was resumed (timer or returned buffer).
    pub resumed: u64,
    /// Retirements because streaming stopped.
    pub retired_stopped: u64,
    /// Retirements by a `*AndStop` disposition.
    pub retired_by_client: u64,
    /// Retirements because the output pool was empty.
    pub retired_no_output_buffer: u64,
    /// Retirements because the input pool was empty.
    pub retired_no_input_buffer: u64,
    /// Retirements because a (re)send failed.
    pub retired_send_failed: u64,
}

impl StreamStatistics {
    /// All retirements.
    pub fn retired(&self) -> u64 {
        self.retired_stopped
            + self.retired_by_client
            + self.retired_no_output_buffer
            + self.retired_no_input_buffer
            + self.retired_send_failed
    }
}

/// The per-request-path counters of one stream slot (kept per slot so that
/// streaming touches no shared cache line for them).
#[derive(Debug, Default)]
pub(crate) struct SlotCounters {
    pub(crate) sends: AtomicU64,
    pub(crate) completions: AtomicU64,
    pub(crate) failed_completions: AtomicU64,
}

/// The live counters. Relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) completions_during_stop: AtomicU64,
    pub(crate) completions_delivered_during_stop: AtomicU64,
    pub(crate) buffers_kept_by_client: AtomicU64,
    pub(crate) backoffs: AtomicU64,
    pub(crate) deferred_resends: AtomicU64,
    pub(crate) parked_for_buffer: AtomicU64,
    pub(crate) resumed: AtomicU64,
    retired_stopped: AtomicU64,
    retired_by_client: AtomicU64,
    retired_no_output_buffer: AtomicU64,
    retired_no_input_buffer: AtomicU64,
    retired_send_failed: AtomicU64,
}

/// Increments a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Increments a counter that only the current owner of its stream slot
/// writes (successive owners are ordered by the slot's ownership
/// hand-overs), without a locked read-modify-write. Readers may see it
/// lag, never tear.
pub(crate) fn bump_owned(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn retired(&self, reason: RetireReason) {
        bump(match reason {
            RetireReason::Stopped => &self.retired_stopped,
            RetireReason::ClientStopped { .. } => &self.retired_by_client,
            RetireReason::OutputBufferUnavailable => &self.retired_no_output_buffer,
            RetireReason::InputBufferUnavailable => &self.retired_no_input_buffer,
            RetireReason::SendFailed { .. } => &self.retired_send_failed,
        });
    }

    pub(crate) fn snapshot<'a>(
        &self,
        slots: impl Iterator<Item = &'a SlotCounters>,
    ) -> StreamStatistics {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (mut sends, mut completions, mut failed_completions) = (0, 0, 0);
        for s in slots {
            sends += g(&s.sends);
            completions += g(&s.completions);
            failed_completions += g(&s.failed_completions);
        }
        StreamStatistics {
            sends,
            completions,
            failed_completions,
            completions_during_stop: g(&self.completions_during_stop),
            completions_delivered_during_stop: g(&self.completions_delivered_during_stop),
            buffers_kept_by_client: g(&self.buffers_kept_by_client),
            backoffs: g(&self.backoffs),
            deferred_resends: g(&self.deferred_resends),
            parked_for_buffer: g(&self.parked_for_buffer),
            resumed: g(&self.resumed),
            retired_stopped: g(&self.retired_stopped),
            retired_by_client: g(&self.retired_by_client),
            retired_no_output_buffer: g(&self.retired_no_output_buffer),
            retired_no_input_buffer: g(&self.retired_no_input_buffer),
            retired_send_failed: g(&self.retired_send_failed),
        }
    }
}
