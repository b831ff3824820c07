//! Cancel ids and reuse ids: opaque, process-wide unique, never reused.

use core::fmt;
use core::num::NonZeroU64;
use core::sync::atomic::{AtomicU64, Ordering};

/// DMF's process-wide id counter (`Dmf_ContinuousRequestTarget.c`), initial
/// value `0xFF`, so the first id handed out is `0x100`. Shared by cancel and
/// reuse ids, and by every module instance of the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0xFF);

/// Returns a fresh id: strictly greater than every id returned before in
/// this process (a 64-bit counter does not wrap in practice).
pub(crate) fn next_id() -> NonZeroU64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    // The counter starts at 0xFF; reaching 0 would take 2^64 sends.
    NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN)
}

/// Identifies one asynchronous send for [`cancel`](crate::Sender::cancel)
/// (DMF's `RequestId` out-parameter of `SendEx` / `ReuseSend`).
///
/// Ids are never reused, even when the underlying request object is (WDF
/// recycles request handles, which is why DMF stopped exposing handles,
/// PR #117): cancelling with the id of a send that already completed is a
/// harmless no-op that returns `false`, and can never hit a later send.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CancelId(NonZeroU64);

impl CancelId {
    pub(crate) fn fresh() -> Self {
        CancelId(next_id())
    }

    /// The raw value (DMF's `RequestId`), never 0.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// Rebuilds an id from [`CancelId::get`]; `None` for 0.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        match NonZeroU64::new(raw) {
            Some(v) => Some(CancelId(v)),
            None => None,
        }
    }
}

impl fmt::Debug for CancelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelId({:#x})", self.0)
    }
}

/// Identifies a reusable request created by
/// [`reuse_create`](crate::Sender::reuse_create) (DMF's
/// `RUNTIME_REQUEST_ID` / reuse id). Never reused within the process.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReuseId(NonZeroU64);

impl ReuseId {
    pub(crate) fn fresh() -> Self {
        ReuseId(next_id())
    }

    /// The raw value, never 0.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// Rebuilds an id from [`ReuseId::get`]; `None` for 0.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        match NonZeroU64::new(raw) {
            Some(v) => Some(ReuseId(v)),
            None => None,
        }
    }
}

impl fmt::Debug for ReuseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReuseId({:#x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_are_shared_between_kinds() {
        let a = CancelId::fresh();
        let b = ReuseId::fresh();
        let c = CancelId::fresh();
        assert!(a.get() >= 0x100);
        assert!(b.get() > a.get());
        assert!(c.get() > b.get());
        assert_eq!(CancelId::from_raw(c.get()), Some(c));
        assert_eq!(CancelId::from_raw(0), None);
        assert_eq!(ReuseId::from_raw(b.get()), Some(b));
    }
}
