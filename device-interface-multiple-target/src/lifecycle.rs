//! The per-target lifecycle as a pure decision function: given where a
//! record is in its life ([`Phase`]) and what happened ([`Event`]),
//! [`decide`] says what the transition does ([`Decision`]). The record's
//! transitions (`record.rs`) call it first thing after taking the record's
//! lock and carry the decision out; the function itself does no I/O and
//! calls nobody, so it is checked over every event in every phase by a
//! table-driven test, and the lock and retire protocol around it is
//! model-checked with loom in `tests/loom_lifecycle.rs`.
//!
//! Hidden from the docs: public only so the loom model can use it.

use crate::TargetStateType;

/// Where a record is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Arrival in progress (target being opened). The arrival holds the
    /// record's lock from before the record is published until it leaves
    /// this phase, so no other transition sees it.
    Opening,
    /// Open: methods work (between transitions).
    Open,
    /// Query-remove accepted, target closed for query-remove.
    QueryRemoved,
    /// Being closed and destroyed.
    Closing,
    /// Destroyed (about to leave, or left, the table).
    Closed,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 5] = [
        Phase::Opening,
        Phase::Open,
        Phase::QueryRemoved,
        Phase::Closing,
        Phase::Closed,
    ];

    /// Whether the record is being or has been destroyed: no transition
    /// does anything any more.
    pub const fn is_retiring(self) -> bool {
        matches!(self, Phase::Closing | Phase::Closed)
    }
}

/// What happened to a target, as its transitions see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// `EvtIoTargetQueryRemove`.
    QueryRemove,
    /// `EvtIoTargetRemoveCanceled`.
    RemoveCanceled,
    /// `EvtIoTargetRemoveComplete`.
    RemoveComplete,
    /// The target's interface instance was removed.
    InterfaceRemoved,
    /// The module unregisters (release-hardware, D0 exit with `D0Entry`,
    /// drop) and closes every target.
    Unregister,
    /// A D0 exit or entry of the client device, forwarded to the target's
    /// stream.
    PowerTransition,
}

impl Event {
    /// Every event.
    pub const ALL: [Event; 6] = [
        Event::QueryRemove,
        Event::RemoveCanceled,
        Event::RemoveComplete,
        Event::InterfaceRemoved,
        Event::Unregister,
        Event::PowerTransition,
    ];
}

/// What the client is told, first thing, when a record is destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Report {
    /// Nothing more (a vetoed open, or after `QueryRemoveComplete`).
    Nothing,
    /// `Close`.
    Close,
}

/// What a transition does (see [`decide`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Nothing: the event does not apply in this phase (a duplicate, or a
    /// callback that waited for the lock while the record was destroyed).
    Ignore,
    /// A remove-cancel after a vetoed query-remove: nothing to undo, nothing
    /// reported; the record stays open.
    ForgetVeto,
    /// Ask the client (`QueryRemove`). A veto keeps the record open;
    /// otherwise stop streaming, close the target for query-remove and wait
    /// for the methods in progress: the record becomes
    /// [`QueryRemoved`](Phase::QueryRemoved).
    QueryRemove,
    /// Reopen the target: the record becomes [`Open`](Phase::Open) again and
    /// the client hears `QueryRemoveCancelled`; if the reopen fails, destroy
    /// the record reporting `Close`.
    Reopen,
    /// Destroy the record: tell the client `QueryRemoveComplete` first if
    /// `gone`, then `report`, then retire the record (see `Dimt::destroy`).
    Destroy {
        /// The device is gone: report `QueryRemoveComplete` first.
        gone: bool,
        /// What is reported when the destruction begins.
        report: Report,
    },
    /// Forward the power transition to the target's stream.
    ForwardPower,
    /// A query-remove while the record is being destroyed: close the target
    /// for query-remove and accept, reporting nothing. The destroyer closes
    /// the target anyway, but maybe only after the PnP manager looked: a
    /// handle left open then would cancel the device's removal.
    CloseForQueryRemove,
}

impl Decision {
    /// The states this decision reports to the client, in order, when its
    /// I/O succeeds (`ok`: the client accepted, the reopen worked) or not.
    pub fn reports(self, ok: bool) -> &'static [TargetStateType] {
        use TargetStateType::{Close, QueryRemove, QueryRemoveCancelled, QueryRemoveComplete};
        match self {
            Decision::Ignore
            | Decision::ForgetVeto
            | Decision::ForwardPower
            | Decision::CloseForQueryRemove => &[],
            Decision::QueryRemove => &[QueryRemove],
            Decision::Reopen if ok => &[QueryRemoveCancelled],
            Decision::Reopen => &[Close],
            Decision::Destroy {
                gone: true,
                report: Report::Close,
            } => &[QueryRemoveComplete, Close],
            Decision::Destroy {
                gone: true,
                report: Report::Nothing,
            } => &[QueryRemoveComplete],
            Decision::Destroy {
                gone: false,
                report: Report::Close,
            } => &[Close],
            Decision::Destroy {
                gone: false,
                report: Report::Nothing,
            } => &[],
        }
    }

    /// The phase the record is in once this decision is carried out from
    /// `phase` (`ok` as for [`reports`](Self::reports)). A destruction ends
    /// [`Closed`](Phase::Closed) (passing through
    /// [`Closing`](Phase::Closing) while the lock is released).
    pub fn settles(self, phase: Phase, ok: bool) -> Phase {
        match self {
            Decision::Ignore
            | Decision::ForgetVeto
            | Decision::ForwardPower
            | Decision::CloseForQueryRemove => phase,
            Decision::QueryRemove if ok => Phase::QueryRemoved,
            Decision::QueryRemove => phase,
            Decision::Reopen if ok => Phase::Open,
            Decision::Reopen | Decision::Destroy { .. } => Phase::Closed,
        }
    }
}

/// What a transition does on `event` to a record in `phase`. Called with
/// the record's lock held, first thing after acquiring it: once the record
/// is [`Closing`](Phase::Closing) or [`Closed`](Phase::Closed), no event
/// reports anything or changes the phase, so a callback that waited for the
/// lock while the target was being closed returns at once and lets the
/// close finish (a query-remove only closes the target for query-remove
/// first).
pub fn decide(phase: Phase, event: Event) -> Decision {
    match (phase, event) {
        (Phase::Open, Event::QueryRemove) => Decision::QueryRemove,
        // After a veto (ours or another driver's).
        (Phase::Open, Event::RemoveCanceled) => Decision::ForgetVeto,
        (Phase::QueryRemoved, Event::RemoveCanceled) => Decision::Reopen,
        // Surprise removal.
        (Phase::Open, Event::RemoveComplete) => Decision::Destroy {
            gone: true,
            report: Report::Close,
        },
        // The removal completes a query-remove: no `Close` (as DMF).
        (Phase::QueryRemoved, Event::RemoveComplete) => Decision::Destroy {
            gone: true,
            report: Report::Nothing,
        },
        // A query-removed record whose interface goes, or that is still
        // query-removed at unregistration, reports `Close` too, so that
        // every lifetime ends with `QueryRemoveComplete` or `Close`.
        (Phase::Open | Phase::QueryRemoved, Event::InterfaceRemoved | Event::Unregister) => {
            Decision::Destroy {
                gone: false,
                report: Report::Close,
            }
        }
        // A closed-for-query-remove target gets the D0 exit it missed at
        // its reopen.
        (Phase::Open, Event::PowerTransition) => Decision::ForwardPower,
        // The destroyer has released the lock and closes the target soon.
        (Phase::Closing, Event::QueryRemove) => Decision::CloseForQueryRemove,
        // A duplicate query-remove; anything while the arrival runs or
        // once the record retires.
        _ => Decision::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::vec::Vec;
    use TargetStateType as S;

    const CLOSE: Decision = Decision::Destroy {
        gone: false,
        report: Report::Close,
    };

    /// The whole function, written out: every event in every phase.
    const TABLE: [(Phase, Event, Decision); 30] = {
        use Decision as D;
        use Event as E;
        use Phase as P;
        [
            (P::Opening, E::QueryRemove, D::Ignore),
            (P::Opening, E::RemoveCanceled, D::Ignore),
            (P::Opening, E::RemoveComplete, D::Ignore),
            (P::Opening, E::InterfaceRemoved, D::Ignore),
            (P::Opening, E::Unregister, D::Ignore),
            (P::Opening, E::PowerTransition, D::Ignore),
            (P::Open, E::QueryRemove, D::QueryRemove),
            (P::Open, E::RemoveCanceled, D::ForgetVeto),
            (
                P::Open,
                E::RemoveComplete,
                D::Destroy {
                    gone: true,
                    report: Report::Close,
                },
            ),
            (P::Open, E::InterfaceRemoved, CLOSE),
            (P::Open, E::Unregister, CLOSE),
            (P::Open, E::PowerTransition, D::ForwardPower),
            (P::QueryRemoved, E::QueryRemove, D::Ignore),
            (P::QueryRemoved, E::RemoveCanceled, D::Reopen),
            (
                P::QueryRemoved,
                E::RemoveComplete,
                D::Destroy {
                    gone: true,
                    report: Report::Nothing,
                },
            ),
            (P::QueryRemoved, E::InterfaceRemoved, CLOSE),
            (P::QueryRemoved, E::Unregister, CLOSE),
            (P::QueryRemoved, E::PowerTransition, D::Ignore),
            (P::Closing, E::QueryRemove, D::CloseForQueryRemove),
            (P::Closing, E::RemoveCanceled, D::Ignore),
            (P::Closing, E::RemoveComplete, D::Ignore),
            (P::Closing, E::InterfaceRemoved, D::Ignore),
            (P::Closing, E::Unregister, D::Ignore),
            (P::Closing, E::PowerTransition, D::Ignore),
            (P::Closed, E::QueryRemove, D::Ignore),
            (P::Closed, E::RemoveCanceled, D::Ignore),
            (P::Closed, E::RemoveComplete, D::Ignore),
            (P::Closed, E::InterfaceRemoved, D::Ignore),
            (P::Closed, E::Unregister, D::Ignore),
            (P::Closed, E::PowerTransition, D::Ignore),
        ]
    };

    #[test]
    fn every_event_in_every_phase() {
        let mut seen = HashSet::new();
        for (phase, event, decision) in TABLE {
            assert!(seen.insert((phase, event)), "{phase:?} {event:?} twice");
            assert_eq!(decide(phase, event), decision, "{phase:?} on {event:?}");
        }
        for phase in Phase::ALL {
            for event in Event::ALL {
                assert!(
                    seen.contains(&(phase, event)),
                    "{phase:?} {event:?} missing"
                );
            }
        }
    }

    #[test]
    fn retiring_records_ignore_everything_and_never_come_back() {
        for phase in Phase::ALL {
            for event in Event::ALL {
                let decision = decide(phase, event);
                if phase.is_retiring() || phase == Phase::Opening {
                    for ok in [true, false] {
                        assert!(decision.reports(ok).is_empty(), "{phase:?} on {event:?}");
                    }
                    assert!(
                        matches!(decision, Decision::Ignore | Decision::CloseForQueryRemove),
                        "{phase:?} on {event:?}"
                    );
                }
                for ok in [true, false] {
                    let next = decision.settles(phase, ok);
                    if phase.is_retiring() {
                        assert_eq!(next, phase, "{phase:?} left on {event:?}");
                    }
                    if next == Phase::Closed && phase != Phase::Closed {
                        // Every destruction is announced, except the one
                        // right after `QueryRemoveComplete` (a terminal
                        // report already).
                        let reports = decision.reports(ok);
                        assert!(
                            reports.last().is_some_and(|s| {
                                matches!(s, S::Close | S::QueryRemoveComplete)
                            }),
                            "{phase:?} on {event:?} ({ok}) destroys silently"
                        );
                    }
                }
            }
        }
    }

    /// The client's view of one lifetime: what it may hear next.
    fn legal_after(previous: S, next: S) -> bool {
        match previous {
            S::Open | S::QueryRemoveCancelled => {
                matches!(next, S::QueryRemove | S::QueryRemoveComplete | S::Close)
            }
            // Accepted or vetoed: the veto keeps the target open.
            S::QueryRemove => true,
            S::QueryRemoveComplete => next == S::Close,
            S::Close | S::Invalid | S::Maximum => false,
        }
    }

    /// Every sequence of up to five events, with every outcome of every
    /// client answer and reopen, from an opened record: the reports form a
    /// legal lifetime that ends with exactly one terminal report once the
    /// record is closed, and nothing happens after that.
    #[test]
    fn every_event_sequence_is_a_legal_lifetime() {
        fn explore(phase: Phase, heard: &mut Vec<S>, depth: usize, lifetimes: &mut usize) {
            if phase == Phase::Closed {
                let terminal = heard
                    .iter()
                    .filter(|s| matches!(s, S::Close | S::QueryRemoveComplete))
                    .count();
                assert!((1..=2).contains(&terminal), "{heard:?}");
                assert!(
                    matches!(heard.last(), Some(S::Close | S::QueryRemoveComplete)),
                    "{heard:?}"
                );
                *lifetimes += 1;
            }
            if depth == 0 {
                return;
            }
            for event in Event::ALL {
                let decision = decide(phase, event);
                for ok in [true, false] {
                    let reports = decision.reports(ok);
                    let next = decision.settles(phase, ok);
                    if phase == Phase::Closed {
                        assert!(reports.is_empty() && next == Phase::Closed);
                    }
                    let mark = heard.len();
                    for &state in reports {
                        let previous = *heard.last().expect("opened");
                        assert!(
                            legal_after(previous, state),
                            "{state:?} after {heard:?} on {event:?}"
                        );
                        heard.push(state);
                    }
                    // A veto leaves the record open and its `QueryRemove`
                    // unanswered until the remove-cancel: model it as heard.
                    explore(next, heard, depth - 1, lifetimes);
                    heard.truncate(mark);
                }
            }
        }
        let mut lifetimes = 0;
        explore(Phase::Open, &mut std::vec![S::Open], 5, &mut lifetimes);
        assert!(lifetimes > 1000, "{lifetimes} lifetimes explored");
    }
}
