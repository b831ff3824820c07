//! The table of tracked targets: generation-checked handles, O(1) arrival,
//! lookup by symbolic link and removal.
//!
//! DMF hands clients a pointer-like `DMFIOTARGET`; using one after its target
//! was destroyed is undefined behaviour there (see "Stale target handles are refused" in `docs/dmf-differences.md`). Here a
//! [`TargetHandle`] is a slot index plus the slot's generation: once the
//! target leaves the table the generation moves on, so a stale handle is
//! recognised and refused, never dereferenced.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use hashbrown::HashMap;

/// Generations are drawn from one process-wide counter, so a handle issued by
/// one module instance never matches a live target of another (a foreign
/// handle is refused like a stale one) until 2^32 arrivals have passed.
static GENERATIONS: AtomicU32 = AtomicU32::new(1);

/// The next generation (never 0, which marks an empty slot).
fn next_generation() -> u32 {
    loop {
        let g = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        if g != 0 {
            return g;
        }
    }
}

/// A client's handle to one tracked target (DMF's `DMFIOTARGET`).
///
/// Copyable and cheap. A handle stays valid until its target is closed; after
/// that every method given it returns `STATUS_INVALID_DEVICE_STATE`, even if
/// the slot was reused by a later arrival.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetHandle {
    index: u32,
    generation: u32,
}

impl TargetHandle {
    /// The slot index (stable while the target is tracked; reused later).
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The generation of the slot this handle was issued for.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// A packed 64-bit value (generation in the high half), e.g. for logs or
    /// to store the handle in a `usize`-sized client context.
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// Inverse of [`TargetHandle::to_u64`]. Any value is accepted: a value that
    /// never was a handle is simply refused by the module as stale.
    pub const fn from_u64(value: u64) -> Self {
        TargetHandle {
            index: value as u32,
            generation: (value >> 32) as u32,
        }
    }
}

impl fmt::Debug for TargetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for TargetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

struct Slot<T> {
    generation: u32,
    entry: Option<(String, T)>,
}

/// Slots with generations, a free list, and an index by symbolic link.
///
/// # Invariants
///
/// * `by_link[l] == i` iff `slots[i].entry` is `Some((l, _))`.
/// * `free` holds exactly the indices of the empty slots, each once.
/// * An empty slot has generation 0, which is never issued; a filled slot has
///   a generation fresh from the process-wide counter, so neither a stale
///   handle nor one of another table matches it.
pub(crate) struct TargetTable<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    by_link: HashMap<String, u32>,
}

impl<T> Default for TargetTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TargetTable<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        TargetTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_link: HashMap::new(),
        }
    }

    /// Number of tracked targets.
    pub(crate) fn len(&self) -> usize {
        self.by_link.len()
    }

    /// Tracks `value` under `link`. Fails (giving the value back) if the link
    /// is already tracked. Amortised O(1).
    pub(crate) fn insert(&mut self, link: &str, value: T) -> Result<TargetHandle, T> {
        if self.by_link.contains_key(link) {
            return Err(value);
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let Ok(index) = u32::try_from(self.slots.len()) else {
                    return Err(value);
                };
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        debug_assert!(slot.entry.is_none());
        slot.generation = next_generation();
        slot.entry = Some((String::from(link), value));
        self.by_link.insert(String::from(link), index);
        Ok(TargetHandle {
            index,
            generation: slot.generation,
        })
    }

    /// The value of a live handle; `None` for stale or foreign handles. O(1).
    pub(crate) fn get(&self, handle: TargetHandle) -> Option<&T> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_ref().map(|(_, v)| v)
    }

    /// The value of a live handle, mutable; `None` for stale handles. O(1).
    pub(crate) fn get_mut(&mut self, handle: TargetHandle) -> Option<&mut T> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.entry.as_mut().map(|(_, v)| v)
    }

    /// The handle tracked under `link`. O(1).
    pub(crate) fn find(&self, link: &str) -> Option<TargetHandle> {
        let index = *self.by_link.get(link)?;
        let slot = &self.slots[index as usize];
        Some(TargetHandle {
            index,
            generation: slot.generation,
        })
    }

    /// Stops tracking a live handle, returning its link and value. O(1).
    pub(crate) fn remove(&mut self, handle: TargetHandle) -> Option<(String, T)> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        let (link, value) = slot.entry.take()?;
        slot.generation = 0;
        self.by_link.remove(link.as_str());
        self.free.push(handle.index);
        Some((link, value))
    }

    /// Removes every tracked target (order unspecified).
    #[cfg(test)]
    pub(crate) fn drain(&mut self) -> Vec<(TargetHandle, String, T)> {
        let handles: Vec<TargetHandle> = self.handles().collect();
        handles
            .into_iter()
            .filter_map(|h| self.remove(h).map(|(link, value)| (h, link, value)))
            .collect()
    }

    /// Handles of every tracked target.
    #[cfg(test)]
    pub(crate) fn handles(&self) -> impl Iterator<Item = TargetHandle> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| TargetHandle {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    /// Every tracked target with its handle and link.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (TargetHandle, &str, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|(link, v)| {
                (
                    TargetHandle {
                        index: i as u32,
                        generation: s.generation,
                    },
                    link.as_str(),
                    v,
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::format;
    use proptest::prelude::*;

    #[test]
    fn stale_handles_are_refused_after_slot_reuse() {
        let mut t = TargetTable::new();
        let a = t.insert("a", 1).unwrap();
        assert_eq!(t.remove(a), Some((String::from("a"), 1)));
        let b = t.insert("b", 2).unwrap();
        assert_eq!(a.index(), b.index(), "slot is reused");
        assert_ne!(a, b);
        assert_eq!(t.get(a), None);
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(b), Some(&2));
        assert_eq!(t.find("a"), None);
        assert_eq!(t.find("b"), Some(b));
    }

    #[test]
    fn handles_of_another_table_are_refused() {
        let mut a = TargetTable::new();
        let mut b = TargetTable::new();
        let ha = a.insert("x", 1).unwrap();
        let hb = b.insert("x", 2).unwrap();
        assert_eq!(ha.index(), hb.index(), "same slot in both tables");
        assert_eq!(b.get(ha), None, "a's handle does not open b's target");
        assert_eq!(a.get(hb), None);
        assert_eq!(b.remove(ha), None);
        assert_eq!(b.get(hb), Some(&2));
    }

    #[test]
    fn duplicate_links_are_rejected() {
        let mut t = TargetTable::new();
        t.insert("x", 1).unwrap();
        assert_eq!(t.insert("x", 2), Err(2));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn packed_handles_round_trip_and_garbage_is_refused() {
        let mut t = TargetTable::new();
        let h = t.insert("x", 7).unwrap();
        assert_eq!(TargetHandle::from_u64(h.to_u64()), h);
        assert_eq!(t.get(TargetHandle::from_u64(u64::MAX)), None);
        assert_eq!(
            t.get(TargetHandle::from_u64(0)),
            None,
            "generation 0 is never issued"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Remove(u8),
        RemoveStale(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..16).prop_map(Op::Insert),
            (0u8..16).prop_map(Op::Remove),
            (0u8..16).prop_map(Op::RemoveStale),
        ]
    }

    proptest! {
        /// The table behaves like a map from link to value, and every handle
        /// ever issued is either live (and finds its own value) or refused.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..200)) {
            let mut t = TargetTable::new();
            let mut model: BTreeMap<u8, (TargetHandle, u32)> = BTreeMap::new();
            let mut retired: Vec<TargetHandle> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        let link = format!("link{k}");
                        next += 1;
                        match t.insert(&link, next) {
                            Ok(h) => {
                                prop_assert!(!model.contains_key(&k));
                                model.insert(k, (h, next));
                            }
                            Err(v) => {
                                prop_assert_eq!(v, next);
                                prop_assert!(model.contains_key(&k));
                            }
                        }
                    }
                    Op::Remove(k) => {
                        if let Some((h, v)) = model.remove(&k) {
                            prop_assert_eq!(t.remove(h), Some((format!("link{k}"), v)));
                            retired.push(h);
                        } else {
                            prop_assert_eq!(t.find(&format!("link{k}")), None);
                        }
                    }
                    Op::RemoveStale(i) => {
                        if let Some(h) = retired.get(i as usize % retired.len().max(1)) {
                            prop_assert_eq!(t.remove(*h), None);
                        }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                for (k, (h, v)) in &model {
                    prop_assert_eq!(t.get(*h), Some(v));
                    prop_assert_eq!(t.find(&format!("link{k}")), Some(*h));
                }
                for h in &retired {
                    prop_assert_eq!(t.get(*h), None);
                }
            }
            let drained = t.drain();
            prop_assert_eq!(drained.len(), model.len());
            prop_assert_eq!(t.len(), 0);
        }
    }
}
