//! Model checks of a DIMT target's lifecycle: the per-target transition
//! lock and the retire protocol of `src/record.rs` (see its "Locking
//! discipline") around the crate's own decision function
//! (`lifecycle::decide`), in two parts, both on the shared loom platform
//! (`dmf-loom-platform`).
//!
//! **The real module** (`real_module_*`): a [`DeviceInterfaceMultipleTarget`]
//! registered on the loom platform, whose model PnP manager reports
//! interface arrivals and removals (one call at a time; unregistration
//! waits for the call in progress) and delivers the target's PnP callbacks
//! on the calling thread, as KMDF does: none once the target is closed, and
//! closing a target waits for a callback of it running on another thread
//! (a callback may close its own target). The platform panics if an
//! accepted query-remove left the target open (the PnP manager would find
//! the handle open and cancel the removal). Every model ends with nothing
//! tracked or open, no callback reaching the closed target, and a legal
//! lifetime heard by the client (below); loom reports any deadlock.
//!
//! * `real_module_query_remove_and_cancel_race_interface_removal_and_a_method`;
//! * `real_module_surprise_removal_races_unregistration_and_power` (the
//!   module dropped while a D0 exit is forwarded);
//! * `real_module_vetoed_and_accepted_query_remove_race_unregistration`;
//! * `real_module_arrivals_race_unregistration`: an arrival and a repeated
//!   arrival of the tracked interface race the module's drop.
//!
//! **The protocol, step by step** (the other models): the record's
//! transitions written out here as `record.rs` makes them (take the lock,
//! `decide`, carry the decision out) with the crate's [`TargetGate`], on a
//! model target with the same callback rules, so that each step can be
//! checked on its own: the record is destroyed exactly once and ends
//! `Closed` with its target and transport closed; the client hears of a
//! departure before the target is closed; a method that got through the
//! gate never sees a closed transport, and none runs once the record was
//! destroyed. Its module model lets two arrivals of one interface race
//! each other and the unregistration (stronger than the seam, which never
//! overlaps two notifications).
//!
//! * `query_remove_and_cancel_race_interface_removal_and_a_method`;
//! * `surprise_removal_races_unregister_and_power`;
//! * `failed_reopen_races_interface_removal` (the remove-cancel callback
//!   destroys the record and closes the target from inside the callback);
//! * `vetoed_then_duplicate_query_remove_race_unregister_and_a_method`;
//! * `arrival_and_a_repeated_arrival_race_unregister`.
//!
//! In both, two `on_state_change` calls for the target never overlap, and
//! the client hears a legal lifetime: `Open`, then `QueryRemove` (vetoed,
//! or followed by `QueryRemoveCancelled` or `QueryRemoveComplete`), ending
//! with `Close` or `QueryRemoveComplete`, `Close` at most once, nothing
//! after it. Preemption bound 3; the whole file runs in about a second.
//!
//! Found by the real-module models (fixed): a query-remove that arrived
//! while the record was `Closing` was accepted with the target still open
//! (the destroyer had released the lock and not closed the target yet), so
//! the removal could be cancelled for an open handle; `decide` now answers
//! `CloseForQueryRemove` there.
//!
//! Planted bugs caught (each checked once in a scratch copy, never
//! committed):
//!
//! * `src/record.rs`, `Dimt::destroy` holding the transition lock while it
//!   stops the stream and closes the target (`drop(state)` moved after
//!   `io_target.close()`): the three real-module models with a target
//!   callback fail with loom's "deadlock" (the close waits for the
//!   callback, the callback for the lock). The same plant in the
//!   step-by-step `destroy` deadlocks every record model there.
//! * `src/module.rs`, `unregister_and_close_all` closing the tracked
//!   targets before it unregisters (so before the arrival in progress
//!   finished): `real_module_arrivals_race_unregistration` fails with "a
//!   target outlived the unregistration" (as does
//!   `arrival_and_a_repeated_arrival_race_unregister` with the same plant
//!   in its module model).
//! * `src/lifecycle.rs`, `decide` no longer ignoring interface removal and
//!   unregistration on a `Closing` record (`Phase::Closing` added to the
//!   phases they destroy): a closer that finds the record being destroyed
//!   by a PnP callback destroys it again.
//!   `real_module_surprise_removal_races_unregistration_and_power` fails
//!   with "Close after Close in [Open, QueryRemoveComplete, Close, Close]";
//!   `surprise_removal_races_unregister_and_power`,
//!   `failed_reopen_races_interface_removal` and
//!   `vetoed_then_duplicate_query_remove_race_unregister_and_a_method` with
//!   "destroyed once, left: 2".
//! * `src/lifecycle.rs`, `decide` ignoring a query-remove on a `Closing`
//!   record (the fix above undone):
//!   `real_module_query_remove_and_cancel_race_interface_removal_and_a_method`
//!   and `real_module_vetoed_and_accepted_query_remove_race_unregistration`
//!   fail with "query-remove accepted with the target left open" (and the
//!   table-driven test of `decide`).
//! * the step-by-step `destroy` reporting `Close` after closing the target:
//!   every record model there fails with "the target closes before the
//!   client heard of it: [Open]".
//!
//! Run with `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test
//! -p dmf-device-interface-multiple-target --test loom_lifecycle --release`.
#![cfg(loom)]

use std::ops::DerefMut;
use std::sync::Arc as StdArc;

use dmf_device_interface_multiple_target::gate::TargetGate;
use dmf_device_interface_multiple_target::lifecycle::{decide, Decision, Event, Phase, Report};
use dmf_device_interface_multiple_target::TargetStateType as S;
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    PnpRegisterWhen, TargetHandle,
};
use dmf_loom_platform::LoomPlatform;
use dmf_loom_platform::{model, LoomEvent, LoomLock, LoomWaitLock};
use dmf_wdf::{DeviceCallbacks, Guid, PowerState, Status};
use dmf_wdf::{Lock, WaitLock};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

const PREEMPTIONS: usize = 3;

/// The transport a record's methods use.
struct Transport {
    closed: AtomicBool,
}

/// A KMDF I/O target as the record's protocol sees it.
struct Target {
    state: Mutex<TargetState>,
    changed: Condvar,
    /// Whether a reopen after remove-cancel works.
    reopens: bool,
}

#[derive(Default)]
struct TargetState {
    /// Closed for good: no callback is delivered any more.
    closed: bool,
    /// Closed for query-remove (until a reopen).
    closed_for_query_remove: bool,
    /// PnP callbacks running now.
    callbacks: usize,
}

impl Target {
    fn new(reopens: bool) -> Self {
        Target {
            state: Mutex::new(TargetState::default()),
            changed: Condvar::new(),
            reopens,
        }
    }

    /// Delivers one PnP callback unless the target was closed.
    fn deliver(&self, callback: impl FnOnce()) {
        {
            let mut s = self.state.lock().unwrap();
            if s.closed {
                return;
            }
            s.callbacks += 1;
        }
        callback();
        self.state.lock().unwrap().callbacks -= 1;
        self.changed.notify_all();
    }

    /// Closes the target: waits for the callbacks running on other threads
    /// (`in_callback`: this thread runs one).
    fn close(&self, in_callback: bool) {
        let mut s = self.state.lock().unwrap();
        s.closed = true;
        while s.callbacks > usize::from(in_callback) {
            s = self.changed.wait(s).unwrap();
        }
    }

    fn close_for_query_remove(&self) {
        let mut s = self.state.lock().unwrap();
        s.closed_for_query_remove = !s.closed;
    }

    fn reopen(&self) -> bool {
        let mut s = self.state.lock().unwrap();
        assert!(
            s.closed_for_query_remove && !s.closed,
            "reopen of a target not query-removed"
        );
        if self.reopens {
            s.closed_for_query_remove = false;
        }
        self.reopens
    }

    fn is_closed(&self) -> bool {
        self.state.lock().unwrap().closed
    }
}

/// The client: what it heard, and whether a call is in progress.
#[derive(Default)]
struct Client {
    in_call: AtomicBool,
    heard: Mutex<Vec<S>>,
}

/// What the transitions of the record share (the record's `RecordState`).
struct State {
    phase: Phase,
}

type Gate = TargetGate<LoomEvent, LoomLock<Option<StdArc<Transport>>>, Transport>;

/// One tracked target.
struct Record {
    transitions: LoomWaitLock<State>,
    gate: Gate,
    target: Target,
    client: Client,
    destroyed: AtomicUsize,
    transport: StdArc<Transport>,
}

impl Record {
    /// A record as its arrival leaves it: open, `Open` reported.
    fn opened(reopens: bool) -> Arc<Record> {
        let record = Record::new(reopens);
        let mut state = record.transitions.lock();
        record.open(&mut state);
        drop(state);
        record
    }

    fn new(reopens: bool) -> Arc<Record> {
        Arc::new(Record {
            transitions: LoomWaitLock::new(State {
                phase: Phase::Opening,
            }),
            gate: Gate::new(LoomEvent::new(false)),
            target: Target::new(reopens),
            client: Client::default(),
            destroyed: AtomicUsize::new(0),
            transport: StdArc::new(Transport {
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The end of a successful arrival (lock held).
    fn open(&self, state: &mut State) {
        self.gate.open(StdArc::clone(&self.transport));
        state.phase = Phase::Open;
        self.notify(S::Open);
    }

    /// `on_state_change`.
    fn notify(&self, state: S) {
        assert!(
            !self.client.in_call.swap(true, Ordering::SeqCst),
            "two on_state_change calls overlap"
        );
        self.client.heard.lock().unwrap().push(state);
        self.client.in_call.store(false, Ordering::SeqCst);
    }

    fn heard(&self) -> Vec<S> {
        self.client.heard.lock().unwrap().clone()
    }

    /// `Dimt::destroy`: `Closing` and the report under the lock, the slow
    /// part without it, then `Closed`.
    fn destroy(&self, mut state: impl DerefMut<Target = State>, report: Report, in_callback: bool) {
        state.phase = Phase::Closing;
        if report == Report::Close {
            self.notify(S::Close);
        }
        drop(state);
        let heard = self.heard();
        assert!(
            matches!(heard.last(), Some(S::Close | S::QueryRemoveComplete)),
            "the target closes before the client heard of it: {heard:?}"
        );
        self.target.close(in_callback);
        if let Some(transport) = self.gate.close() {
            // This one and the record's own.
            assert_eq!(
                StdArc::strong_count(&transport),
                2,
                "a method kept the transport"
            );
            transport.closed.store(true, Ordering::SeqCst);
        }
        self.transitions.lock().phase = Phase::Closed;
        self.destroyed.fetch_add(1, Ordering::SeqCst);
    }

    /// `Dimt::retire_if`.
    fn retire_if(&self, state: impl DerefMut<Target = State>, event: Event, in_callback: bool) {
        if let Decision::Destroy { gone, report } = decide(state.phase, event) {
            if gone {
                self.notify(S::QueryRemoveComplete);
            }
            self.destroy(state, report, in_callback);
        }
    }

    /// `EvtIoTargetQueryRemove` (the client vetoes if `veto`).
    fn query_remove(&self, veto: bool) {
        let mut state = self.transitions.lock();
        match decide(state.phase, Event::QueryRemove) {
            Decision::QueryRemove => {}
            Decision::CloseForQueryRemove => return self.target.close_for_query_remove(),
            _ => return,
        }
        self.notify(S::QueryRemove);
        if veto {
            return;
        }
        self.target.close_for_query_remove();
        self.gate.suspend();
        state.phase = Phase::QueryRemoved;
    }

    /// `EvtIoTargetRemoveCanceled`.
    fn remove_canceled(&self) {
        let mut state = self.transitions.lock();
        match decide(state.phase, Event::RemoveCanceled) {
            Decision::Reopen => {
                if self.target.reopen() {
                    self.gate.resume();
                    state.phase = Phase::Open;
                    self.notify(S::QueryRemoveCancelled);
                } else {
                    self.destroy(state, Report::Close, true);
                }
            }
            Decision::ForgetVeto | Decision::Ignore => {}
            other => panic!("remove-cancel decided {other:?}"),
        }
    }

    /// `EvtIoTargetRemoveComplete`.
    fn remove_complete(&self) {
        let state = self.transitions.lock();
        self.retire_if(state, Event::RemoveComplete, true);
    }

    /// `Dimt::close_if_tracked` (interface removal, unregistration).
    fn close_if_tracked(&self, event: Event) {
        let state = self.transitions.lock();
        self.retire_if(state, event, false);
    }

    /// `Dimt::forward_d0` for this record.
    fn forward_power(&self) {
        let state = self.transitions.lock();
        if decide(state.phase, Event::PowerTransition) == Decision::ForwardPower {
            let transport = self
                .gate
                .transport()
                .expect("an open record has a transport");
            assert!(
                !transport.closed.load(Ordering::SeqCst),
                "power forwarded to a closed transport"
            );
        }
        drop(state);
    }

    /// A method call: `true` if the gate let it through.
    fn method(&self) -> bool {
        match self.gate.enter() {
            Ok(transport) => {
                assert!(
                    !transport.closed.load(Ordering::SeqCst),
                    "a method uses a closed transport"
                );
                assert_eq!(
                    self.destroyed.load(Ordering::SeqCst),
                    0,
                    "a method runs on a destroyed record"
                );
                drop(transport);
                self.gate.leave();
                true
            }
            Err(_) => false,
        }
    }

    /// The end of every model: retire the record (as the module's close
    /// would) and check what it went through.
    fn check_retired(&self) {
        self.close_if_tracked(Event::Unregister);
        assert_eq!(self.destroyed.load(Ordering::SeqCst), 1, "destroyed once");
        assert_eq!(self.transitions.lock().phase, Phase::Closed);
        assert!(self.target.is_closed());
        assert!(self.transport.closed.load(Ordering::SeqCst));
        assert!(!self.method(), "a method on a destroyed record");
        check_lifetime(&self.heard());
    }
}

/// What the client heard is one legal lifetime.
fn check_lifetime(heard: &[S]) {
    assert_eq!(heard.first(), Some(&S::Open), "{heard:?}");
    for pair in heard.windows(2) {
        let legal = match pair[0] {
            S::Open | S::QueryRemoveCancelled => {
                matches!(pair[1], S::QueryRemove | S::QueryRemoveComplete | S::Close)
            }
            // Vetoed (the target stays open) or accepted.
            S::QueryRemove => pair[1] != S::Open,
            S::QueryRemoveComplete => pair[1] == S::Close,
            _ => false,
        };
        assert!(legal, "{:?} after {:?} in {heard:?}", pair[1], pair[0]);
    }
    assert!(
        matches!(heard.last(), Some(S::Close | S::QueryRemoveComplete)),
        "{heard:?}"
    );
    let closes = heard.iter().filter(|s| **s == S::Close).count();
    assert!(closes <= 1, "{heard:?}");
}

#[test]
fn query_remove_and_cancel_race_interface_removal_and_a_method() {
    model(PREEMPTIONS, || {
        let record = Record::opened(true);
        let (pnp, caller) = (record.clone(), record.clone());
        let pnp = thread::spawn(move || {
            pnp.target.deliver(|| pnp.query_remove(false));
            pnp.target.deliver(|| pnp.remove_canceled());
        });
        let caller = thread::spawn(move || {
            caller.method();
        });
        record.close_if_tracked(Event::InterfaceRemoved);
        pnp.join().unwrap();
        caller.join().unwrap();
        record.check_retired();
        let heard = record.heard();
        assert_eq!(heard.last(), Some(&S::Close), "{heard:?}");
    });
}

#[test]
fn surprise_removal_races_unregister_and_power() {
    model(PREEMPTIONS, || {
        let record = Record::opened(true);
        let (pnp, power) = (record.clone(), record.clone());
        let pnp = thread::spawn(move || pnp.target.deliver(|| pnp.remove_complete()));
        let power = thread::spawn(move || power.forward_power());
        record.close_if_tracked(Event::Unregister);
        pnp.join().unwrap();
        power.join().unwrap();
        record.check_retired();
    });
}

#[test]
fn failed_reopen_races_interface_removal() {
    model(PREEMPTIONS, || {
        let record = Record::opened(false);
        let pnp = record.clone();
        let pnp = thread::spawn(move || {
            pnp.target.deliver(|| pnp.query_remove(false));
            pnp.target.deliver(|| pnp.remove_canceled());
        });
        record.close_if_tracked(Event::InterfaceRemoved);
        pnp.join().unwrap();
        record.check_retired();
        let heard = record.heard();
        assert_eq!(heard.last(), Some(&S::Close), "{heard:?}");
    });
}

#[test]
fn vetoed_then_duplicate_query_remove_race_unregister_and_a_method() {
    model(PREEMPTIONS, || {
        let record = Record::opened(true);
        let (pnp, caller) = (record.clone(), record.clone());
        let pnp = thread::spawn(move || {
            pnp.target.deliver(|| pnp.query_remove(true));
            pnp.target.deliver(|| pnp.remove_canceled());
            pnp.target.deliver(|| pnp.query_remove(false));
            pnp.target.deliver(|| pnp.query_remove(false));
            pnp.target.deliver(|| pnp.remove_complete());
        });
        let caller = thread::spawn(move || {
            caller.method();
        });
        record.close_if_tracked(Event::Unregister);
        pnp.join().unwrap();
        caller.join().unwrap();
        record.check_retired();
        let heard = record.heard();
        let asked = heard.iter().filter(|s| **s == S::QueryRemove).count();
        assert!(
            asked <= 2,
            "a duplicate query-remove reached the client: {heard:?}"
        );
    });
}

/// The module's table entry for one interface link.
#[derive(Clone)]
enum Slot {
    Empty,
    /// An arrival reserved the link and runs.
    Reserved,
    Tracked(Arc<Record>),
}

/// The module, for one interface link.
struct Module {
    table: LoomLock<Slot>,
    notifications: Mutex<Registration>,
    notified: Condvar,
    /// Serialises unregistration (the module's `lifecycle` lock).
    lifecycle: LoomWaitLock<()>,
    records: AtomicUsize,
}

struct Registration {
    registered: bool,
    in_progress: usize,
}

impl Module {
    fn new() -> Arc<Module> {
        Arc::new(Module {
            table: LoomLock::new(Slot::Empty),
            notifications: Mutex::new(Registration {
                registered: true,
                in_progress: 0,
            }),
            notified: Condvar::new(),
            lifecycle: LoomWaitLock::new(()),
            records: AtomicUsize::new(0),
        })
    }

    /// An interface-arrival notification, unless unregistered
    /// (`Dimt::interface_arrived` and `open_target`).
    fn arrival(&self) {
        {
            let mut n = self.notifications.lock().unwrap();
            if !n.registered {
                return;
            }
            n.in_progress += 1;
        }
        let reserved = {
            let mut table = self.table.lock();
            match &*table {
                // A repeated arrival of a tracked interface.
                Slot::Reserved | Slot::Tracked(_) => false,
                Slot::Empty => {
                    *table = Slot::Reserved;
                    true
                }
            }
        };
        if reserved {
            self.records.fetch_add(1, Ordering::SeqCst);
            let record = Record::new(true);
            // Held before the record is published.
            let mut state = record.transitions.lock();
            *self.table.lock() = Slot::Tracked(record.clone());
            record.open(&mut state);
            drop(state);
        }
        self.notifications.lock().unwrap().in_progress -= 1;
        self.notified.notify_all();
    }

    /// `Dimt::unregister_and_close_all`: unregisters (waiting for the
    /// notifications in progress), then closes every tracked record and
    /// untracks it.
    fn unregister(&self) {
        let _lifecycle = self.lifecycle.lock();
        {
            let mut n = self.notifications.lock().unwrap();
            n.registered = false;
            while n.in_progress > 0 {
                n = self.notified.wait(n).unwrap();
            }
        }
        let slot = self.table.lock().clone();
        if let Slot::Tracked(record) = slot {
            record.close_if_tracked(Event::Unregister);
            *self.table.lock() = Slot::Empty;
            assert_eq!(record.destroyed.load(Ordering::SeqCst), 1);
            check_lifetime(&record.heard());
        }
    }
}

#[test]
fn arrival_and_a_repeated_arrival_race_unregister() {
    model(PREEMPTIONS, || {
        let module = Module::new();
        let (first, second) = (module.clone(), module.clone());
        let first = thread::spawn(move || first.arrival());
        let second = thread::spawn(move || second.arrival());
        module.unregister();
        first.join().unwrap();
        second.join().unwrap();
        assert!(
            module.records.load(Ordering::SeqCst) <= 1,
            "a tracked interface opened twice"
        );
        let slot = module.table.lock().clone();
        assert!(
            matches!(slot, Slot::Empty),
            "a target outlived the unregistration"
        );
    });
}

// ----------------------------------------------------------------------
// The real module on the loom platform
// ----------------------------------------------------------------------

/// A client that records what it hears about its targets; it vetoes the
/// first query-remove if `veto`.
#[derive(Default)]
struct Recorder {
    in_call: AtomicBool,
    heard: Mutex<Vec<S>>,
    veto: AtomicBool,
}

impl DimtClient<LoomPlatform> for Recorder {
    type Target = ();

    fn target_context(&self, _: &Dimt<LoomPlatform, Self>, _: TargetHandle, _: &str) {}

    fn on_state_change(
        &self,
        _: &Dimt<LoomPlatform, Self>,
        _: TargetHandle,
        _: &(),
        state: S,
    ) -> Status {
        assert!(
            !self.in_call.swap(true, Ordering::SeqCst),
            "two on_state_change calls overlap"
        );
        self.heard.lock().unwrap().push(state);
        self.in_call.store(false, Ordering::SeqCst);
        if state == S::QueryRemove && self.veto.swap(false, Ordering::SeqCst) {
            return Status::UNSUCCESSFUL;
        }
        Status::SUCCESS
    }
}

type RealModule = StdArc<Dimt<LoomPlatform, Recorder>>;

/// A module registered at creation with a plain (non-streaming) transport
/// per target, and the handle of interface "a" once it arrived.
fn real_module(
    platform: &LoomPlatform,
    veto: bool,
) -> (
    DeviceInterfaceMultipleTarget<LoomPlatform, Recorder>,
    TargetHandle,
) {
    let config = DeviceInterfaceMultipleTargetConfig {
        module_open_option: PnpRegisterWhen::Create,
        ..DeviceInterfaceMultipleTargetConfig::new(Guid::default())
    };
    let client = Recorder::default();
    client.veto.store(veto, Ordering::SeqCst);
    let dimt = DeviceInterfaceMultipleTarget::new(platform, config, client).unwrap();
    assert!(platform.interface_arrived("a"));
    let handle = dimt.find("a").expect("interface a opened");
    (dimt, handle)
}

/// The end of every model of the real module: nothing tracked or open,
/// and a legal lifetime for the target.
fn check_module_retired(module: &RealModule, target: &dmf_loom_platform::LoomIoTarget) {
    assert_eq!(module.target_count(), 0);
    assert_eq!(module.open_target_count(), 0);
    assert!(
        !target.remove_complete(),
        "a PnP callback reached a closed target"
    );
    check_lifetime(&module.client().heard.lock().unwrap());
}

/// A method of the real module: `true` if it got through the gate.
fn real_method(module: &RealModule, handle: TargetHandle) -> bool {
    match module.target_guard(handle) {
        Ok(guard) => {
            assert_eq!(guard.handle(), handle);
            true
        }
        Err(status) => {
            assert_eq!(status, Status::INVALID_DEVICE_STATE);
            false
        }
    }
}

#[test]
fn real_module_query_remove_and_cancel_race_interface_removal_and_a_method() {
    model(PREEMPTIONS, || {
        let platform = LoomPlatform::new();
        let (dimt, handle) = real_module(&platform, false);
        let target = dimt.get(handle).unwrap();
        let (module, pnp) = (dimt.module(), StdArc::clone(&target));
        let pnp = thread::spawn(move || {
            if pnp.query_remove() == Some(Status::SUCCESS) {
                pnp.remove_canceled();
            }
        });
        let caller = thread::spawn(move || {
            real_method(&module, handle);
        });
        assert!(platform.interface_removed("a"));
        pnp.join().unwrap();
        caller.join().unwrap();
        let module = dimt.module();
        drop(dimt);
        check_module_retired(&module, &target);
        assert_eq!(
            module.client().heard.lock().unwrap().last(),
            Some(&S::Close)
        );
    });
}

#[test]
fn real_module_surprise_removal_races_unregistration_and_power() {
    model(PREEMPTIONS, || {
        let platform = LoomPlatform::new();
        let (dimt, handle) = real_module(&platform, false);
        let target = dimt.get(handle).unwrap();
        let pnp = StdArc::clone(&target);
        let pnp = thread::spawn(move || {
            pnp.remove_complete();
        });
        let power = dimt.device_callbacks();
        let power = thread::spawn(move || {
            power.d0_exit(PowerState::D3).unwrap();
        });
        let module = dimt.module();
        drop(dimt);
        pnp.join().unwrap();
        power.join().unwrap();
        check_module_retired(&module, &target);
    });
}

#[test]
fn real_module_vetoed_and_accepted_query_remove_race_unregistration() {
    model(PREEMPTIONS, || {
        let platform = LoomPlatform::new();
        let (dimt, handle) = real_module(&platform, true);
        let target = dimt.get(handle).unwrap();
        let pnp = StdArc::clone(&target);
        let pnp = thread::spawn(move || {
            // Vetoed, then accepted, then the device goes.
            if pnp.query_remove() == Some(Status::UNSUCCESSFUL) {
                pnp.remove_canceled();
            }
            if pnp.query_remove() == Some(Status::SUCCESS) {
                pnp.remove_complete();
            }
        });
        let module = dimt.module();
        drop(dimt);
        pnp.join().unwrap();
        check_module_retired(&module, &target);
    });
}

#[test]
fn real_module_arrivals_race_unregistration() {
    model(PREEMPTIONS, || {
        let platform = LoomPlatform::new();
        let config = DeviceInterfaceMultipleTargetConfig {
            module_open_option: PnpRegisterWhen::Create,
            ..DeviceInterfaceMultipleTargetConfig::new(Guid::default())
        };
        let dimt =
            DeviceInterfaceMultipleTarget::new(&platform, config, Recorder::default()).unwrap();
        let pnp = platform.clone();
        let pnp = thread::spawn(move || {
            // The second is a repeated arrival of a tracked interface.
            pnp.interface_arrived("a");
            pnp.interface_arrived("a");
        });
        let module = dimt.module();
        drop(dimt);
        pnp.join().unwrap();
        assert_eq!(
            module.target_count(),
            0,
            "a target outlived the unregistration"
        );
        assert_eq!(module.open_target_count(), 0);
        let heard = module.client().heard.lock().unwrap().clone();
        if !heard.is_empty() {
            check_lifetime(&heard);
        }
        assert!(
            !platform.interface_arrived("a"),
            "a notification after unregistration"
        );
    });
}
