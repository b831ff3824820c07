//! The seeded schedule of PnP and power events of the host run.
//!
//! Pure: [`Schedule::next`] draws the next event from the seed and the
//! current state of the device slots, so the same seed and the same outcomes
//! give the same sequence. The harness applies each event to the simulator
//! and updates the slots.

use dmf_sim::SplitMix64;

/// What occupies one device slot of the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// No device.
    Empty,
    /// A device is present.
    Present {
        /// Whether its sample interface is enabled.
        interface_enabled: bool,
    },
}

/// One event of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// A new device arrives in the slot (its interface enabled).
    Arrive(usize),
    /// Orderly removal that everyone accepts: query-remove, then remove-complete.
    QueryRemove(usize),
    /// Orderly removal vetoed by another driver holding the device open: the
    /// targets get query-remove, then remove-cancel.
    QueryRemoveVetoed(usize),
    /// Orderly removal cancelled by someone else after every target accepted.
    QueryRemoveCancelled(usize),
    /// The device disappears with requests in flight.
    SurpriseRemove(usize),
    /// The device disables its sample interface (the device stays).
    DisableInterface(usize),
    /// The device enables its sample interface again.
    EnableInterface(usize),
    /// The driver's own device goes to D3 and back to D0.
    PowerCycle,
}

impl Action {
    /// A short name for tallies.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Arrive(_) => "arrival",
            Action::QueryRemove(_) => "query-remove (accepted)",
            Action::QueryRemoveVetoed(_) => "query-remove (vetoed)",
            Action::QueryRemoveCancelled(_) => "query-remove (cancelled)",
            Action::SurpriseRemove(_) => "surprise removal",
            Action::DisableInterface(_) => "interface disabled",
            Action::EnableInterface(_) => "interface enabled",
            Action::PowerCycle => "power cycle (D0 -> D3 -> D0)",
        }
    }

    /// The slot the action is about (`None` for [`Action::PowerCycle`]).
    pub const fn slot(self) -> Option<usize> {
        match self {
            Action::Arrive(s)
            | Action::QueryRemove(s)
            | Action::QueryRemoveVetoed(s)
            | Action::QueryRemoveCancelled(s)
            | Action::SurpriseRemove(s)
            | Action::DisableInterface(s)
            | Action::EnableInterface(s) => Some(s),
            Action::PowerCycle => None,
        }
    }
}

/// The next event and how long to wait before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Milliseconds after the previous event.
    pub delay_ms: u64,
    /// The event.
    pub action: Action,
}

/// Smallest pause between two events, milliseconds.
pub const MIN_DELAY_MS: u64 = 40;
/// Largest pause between two events, milliseconds.
pub const MAX_DELAY_MS: u64 = 200;

/// The random source of the events.
#[derive(Clone, Debug)]
pub struct Schedule {
    rng: SplitMix64,
}

impl Schedule {
    /// A schedule drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Schedule {
            rng: SplitMix64::derive(seed, 0x5C4E_D01E),
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    /// How many of `devices` slots are filled before the driver starts (the
    /// rest arrive later): two thirds, at least one.
    pub fn initial_devices(devices: usize) -> usize {
        (devices * 2).div_ceil(3).max(1).min(devices)
    }

    /// Draws the next event for the slots as they are now.
    ///
    /// ```
    /// use sample_demo::schedule::{Action, Schedule, Slot};
    /// let mut s = Schedule::new(7);
    /// let step = s.next(&[Slot::Empty]);
    /// assert!(matches!(step.action, Action::Arrive(0) | Action::PowerCycle));
    /// ```
    pub fn next(&mut self, slots: &[Slot]) -> Step {
        let delay_ms = MIN_DELAY_MS + self.below(MAX_DELAY_MS - MIN_DELAY_MS + 1);
        if slots.is_empty() || self.below(100) < 8 {
            return Step {
                delay_ms,
                action: Action::PowerCycle,
            };
        }
        let slot = self.below(slots.len() as u64) as usize;
        let action = match slots[slot] {
            Slot::Empty => Action::Arrive(slot),
            Slot::Present {
                interface_enabled: false,
            } => {
                if self.below(100) < 75 {
                    Action::EnableInterface(slot)
                } else {
                    Action::SurpriseRemove(slot)
                }
            }
            Slot::Present {
                interface_enabled: true,
            } => match self.below(100) {
                0..=19 => Action::QueryRemove(slot),
                20..=37 => Action::QueryRemoveVetoed(slot),
                38..=51 => Action::QueryRemoveCancelled(slot),
                52..=71 => Action::SurpriseRemove(slot),
                72..=87 => Action::DisableInterface(slot),
                // Keep some devices untouched for a while.
                _ => Action::PowerCycle,
            },
        };
        Step { delay_ms, action }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(slots: &mut [Slot], action: Action) {
        match action {
            Action::Arrive(s) | Action::EnableInterface(s) => {
                slots[s] = Slot::Present {
                    interface_enabled: true,
                }
            }
            Action::QueryRemove(s) | Action::SurpriseRemove(s) => slots[s] = Slot::Empty,
            Action::DisableInterface(s) => {
                slots[s] = Slot::Present {
                    interface_enabled: false,
                }
            }
            Action::QueryRemoveVetoed(_) | Action::QueryRemoveCancelled(_) | Action::PowerCycle => {
            }
        }
    }

    fn run(seed: u64, n: usize, steps: usize) -> Vec<Step> {
        let mut s = Schedule::new(seed);
        let mut slots = vec![Slot::Empty; n];
        (0..steps)
            .map(|_| {
                let step = s.next(&slots);
                apply(&mut slots, step.action);
                step
            })
            .collect()
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        assert_eq!(run(1, 5, 200), run(1, 5, 200));
        assert_ne!(run(1, 5, 200), run(2, 5, 200));
    }

    #[test]
    fn actions_fit_the_slot_state_and_every_kind_occurs() {
        let mut s = Schedule::new(99);
        let mut slots = vec![Slot::Empty; 4];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let step = s.next(&slots);
            assert!((MIN_DELAY_MS..=MAX_DELAY_MS).contains(&step.delay_ms));
            if let Some(slot) = step.action.slot() {
                let state = slots[slot];
                let ok = match step.action {
                    Action::Arrive(_) => state == Slot::Empty,
                    Action::EnableInterface(_) => {
                        state
                            == Slot::Present {
                                interface_enabled: false,
                            }
                    }
                    Action::SurpriseRemove(_) => state != Slot::Empty,
                    _ => {
                        state
                            == Slot::Present {
                                interface_enabled: true,
                            }
                    }
                };
                assert!(ok, "{:?} on {state:?}", step.action);
            }
            seen.insert(step.action.name());
            apply(&mut slots, step.action);
        }
        assert_eq!(seen.len(), 8, "{seen:?}");
    }

    #[test]
    fn initial_devices_is_two_thirds() {
        assert_eq!(Schedule::initial_devices(1), 1);
        assert_eq!(Schedule::initial_devices(3), 2);
        assert_eq!(Schedule::initial_devices(6), 4);
        assert_eq!(Schedule::initial_devices(64), 43);
    }
}
