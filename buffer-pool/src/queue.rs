//! The free list of a source pool: a bounded, lock-free, closable MPMC queue.
//!
//! This is Dmitry Vyukov's bounded array queue (the algorithm of crossbeam's
//! `ArrayQueue`) with one addition: the top bit of `tail` is a *closed* flag.
//! [`BoundedQueue::close`] sets it with an atomic read-modify-write on the same
//! word every push compare-exchanges, so after `close` returns no push can
//! succeed, and every push that succeeded before is visible to the pops that
//! drain the queue (they wait for a reserved slot to be published). That is
//! what lets a buffer dropped concurrently with its pool's close either land in
//! the queue that the closer drains, or learn that it must free itself.
//!
//! # Invariants
//!
//! * `head` and `tail` never carry the closed bit in their index/lap part;
//!   all lap arithmetic is done modulo `2^(usize::BITS - 1)`.
//! * A slot whose stamp equals `tail + 1` (for the tail that reserved it)
//!   holds an initialised value; every other slot is logically empty.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{fence, spin_hint, AtomicUsize, Cell, Ordering};

const CLOSED: usize = 1 << (usize::BITS - 1);
const MASK: usize = !CLOSED;

struct Slot<T> {
    stamp: AtomicUsize,
    value: Cell<MaybeUninit<T>>,
}

/// Why a push failed; the value is handed back.
pub(crate) enum PushError<T> {
    /// The queue holds `capacity` values.
    Full(T),
    /// [`BoundedQueue::close`] was called.
    Closed(T),
}

/// A bounded MPMC queue of `Copy` values (pointers) that can be closed.
///
/// Unlike crossbeam's `ArrayQueue`, each slot is [`CachePadded`]: a pool's
/// free list is nearly full in steady state, so the slot a push writes (at
/// `tail`) sits just behind the slot a pop takes (at `head`). Packed 16-byte
/// slots put both on one cache line, which two threads doing get+put then
/// bounce between them; with padded slots the push and the pop touch
/// different lines (measured: 2-thread get+put of `dmf-stress`'s bench from
/// ~0.6x to ~1x of `ArrayQueue`). Costs 128 bytes per buffer on x86_64.
pub(crate) struct BoundedQueue<T: Copy> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: Box<[CachePadded<Slot<T>>]>,
    cap: usize,
    one_lap: usize,
}

// SAFETY: values are moved between threads through the queue (hence
// `T: Send`); slot accesses are serialised by the stamp protocol.
unsafe impl<T: Copy + Send> Send for BoundedQueue<T> {}
// SAFETY: as above; `&BoundedQueue` only allows push/pop, which follow the
// stamp protocol.
unsafe impl<T: Copy + Send> Sync for BoundedQueue<T> {}

/// Exponential spinning while another thread finishes its step.
struct Backoff(u32);

impl Backoff {
    const LIMIT: u32 = 6;

    fn new() -> Self {
        Backoff(0)
    }

    #[inline]
    fn spin(&mut self) {
        for _ in 0..(1u32 << self.0.min(Self::LIMIT)) {
            spin_hint();
        }
        if self.0 <= Self::LIMIT {
            self.0 += 1;
        }
    }
}

impl<T: Copy> BoundedQueue<T> {
    /// An empty queue for `cap` values (`cap > 0`). Allocates the slots.
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0 && cap < CLOSED / 4, "queue capacity out of range");
        let one_lap = (cap + 1).next_power_of_two();
        let slots: Vec<CachePadded<Slot<T>>> = (0..cap)
            .map(|i| {
                CachePadded::new(Slot {
                    stamp: AtomicUsize::new(i),
                    value: Cell::new(MaybeUninit::uninit()),
                })
            })
            .collect();
        BoundedQueue {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: slots.into_boxed_slice(),
            cap,
            one_lap,
        }
    }

    #[inline]
    fn next_lap(&self, lap: usize) -> usize {
        lap.wrapping_add(self.one_lap) & MASK
    }

    /// Appends `value` at the tail.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), PushError<T>> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(PushError::Closed(value));
            }
            let index = tail & (self.one_lap - 1);
            let lap = tail & !(self.one_lap - 1);
            let new_tail = if index + 1 < self.cap {
                tail + 1
            } else {
                self.next_lap(lap)
            };
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for `tail` while the slot's
                        // stamp equals `tail` gives this thread exclusive
                        // write access to the (empty) slot until it publishes
                        // the new stamp below.
                        slot.value
                            .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => {
                        tail = t;
                        backoff.spin();
                    }
                }
            } else if self.next_lap(stamp) == tail + 1 {
                // The slot still holds the value of the previous lap: full?
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if self.next_lap(head) == tail {
                    return Err(PushError::Full(value));
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another push or pop of this slot is in progress.
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Removes the value at the head, if any. A value whose push has reserved
    /// its slot but not yet published it is waited for.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (self.one_lap - 1);
            let lap = head & !(self.one_lap - 1);
            let slot = &self.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                let new_head = if index + 1 < self.cap {
                    head + 1
                } else {
                    self.next_lap(lap)
                };
                match self.head.compare_exchange_weak(
                    head,
                    new_head,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp `head + 1` says the slot holds an
                        // initialised value (published with Release, read with
                        // Acquire above); winning the CAS gives this thread
                        // the only right to take it.
                        let value = slot.value.with(|p| unsafe { p.read().assume_init() });
                        slot.stamp.store(self.next_lap(head), Ordering::Release);
                        return Some(value);
                    }
                    Err(h) => {
                        head = h;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed) & MASK;
                if tail == head {
                    return None;
                }
                // A push reserved this slot and is about to publish it.
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Closes the queue: every later push fails with [`PushError::Closed`].
    /// Pops keep working (drain with `while let Some(v) = q.pop()`).
    pub(crate) fn close(&self) {
        self.tail.fetch_or(CLOSED, Ordering::SeqCst);
    }

    /// Number of values (a snapshot).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst) & MASK;
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) & MASK == tail {
                let hix = head & (self.one_lap - 1);
                let tix = tail & (self.one_lap - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    self.cap - hix + tix
                } else if tail == head {
                    0
                } else {
                    self.cap
                };
            }
        }
    }

    /// Capacity.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_close() {
        let q = BoundedQueue::<u32>::new(3);
        assert!(q.pop().is_none());
        for i in 0..3 {
            assert!(q.push(i).is_ok());
        }
        assert!(matches!(q.push(9), Err(PushError::Full(9))));
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Some(0));
        assert!(q.push(3).is_ok());
        q.close();
        assert!(matches!(q.push(4), Err(PushError::Closed(4))));
        let drained: Vec<u32> = core::iter::from_fn(|| q.pop()).collect();
        assert_eq!(drained, [1, 2, 3]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn wraps_many_laps() {
        let q = BoundedQueue::<usize>::new(5);
        for i in 0..10_000 {
            q.push(i).ok().unwrap();
            q.push(i + 1).ok().unwrap();
            assert_eq!(q.pop(), Some(i));
            assert_eq!(q.pop(), Some(i + 1));
        }
        assert_eq!(q.len(), 0);
        assert_eq!(q.capacity(), 5);
    }

    #[test]
    fn threads_lose_nothing() {
        let q = std::sync::Arc::new(BoundedQueue::<usize>::new(64));
        for i in 0..64 {
            q.push(i).ok().unwrap();
        }
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if let Some(v) = q.pop() {
                            q.push(v).ok().unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut all: Vec<usize> = core::iter::from_fn(|| q.pop()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
    }
}
