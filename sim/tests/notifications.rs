//! Device-interface notifications: existing interfaces reported on
//! registration, arrivals/removals in order on the PnP thread, unregister
//! guarantees.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use dmf_sim::{
    DeviceSpec, FaultPlan, FaultPoint, FixedResponseDevice, NotificationConfig, Sim, SimConfig,
    SimNotification,
};
use dmf_wdf::{Guid, InterfaceNotificationHandler, Notification, Platform, Status};

const G1: Guid = Guid::from_u128(0xBBBB_0000_0000_0000_0000_0000_0000_0001);
const G2: Guid = Guid::from_u128(0xBBBB_0000_0000_0000_0000_0000_0000_0002);

fn device() -> Arc<FixedResponseDevice> {
    Arc::new(FixedResponseDevice::new(Status::SUCCESS, None))
}

#[test]
fn existing_interfaces_are_reported_once_on_registration_on_the_pnp_thread() {
    // The ordered mode: no inline report, no repeated arrival (see
    // `strict.rs` for those).
    let sim = Sim::new(SimConfig::default().with_notifications(NotificationConfig::ORDERED));
    let (id1, l1) = add_device(&sim, "one", G1, device());
    let (_id2, _l2) = add_device(&sim, "other-class", G2, device());
    let id3 = sim
        .bus()
        .add_device(
            DeviceSpec::new("disabled", device())
                .with_interface(G1)
                .with_interfaces_disabled(),
        )
        .unwrap();
    let l3 = sim.bus().symbolic_link(id3, &G1).unwrap();
    let log = Log::default();
    let reg = sim
        .register_interface_notification(&G1, Interfaces::new("r", &log))
        .unwrap();
    sim.bus().flush().unwrap();
    assert_eq!(log.take(), vec![format!("r:arrived:{l1}@pnp")]);

    // Later changes arrive in order, each once.
    sim.bus().enable_interface(id3, &G1).unwrap();
    sim.bus().enable_interface(id3, &G1).unwrap(); // already enabled: nothing
    sim.bus().disable_interface(id1, &G1).unwrap();
    assert_eq!(
        log.take(),
        vec![format!("r:arrived:{l3}@pnp"), format!("r:removed:{l1}@pnp")]
    );
    assert_eq!(
        sim.bus().enable_interface(id1, &G2),
        Err(Status::NO_SUCH_DEVICE)
    );
    reg.unregister();
    sim.bus().enable_interface(id1, &G1).unwrap();
    assert!(log.take().is_empty(), "no callback after unregister");
    assert_clean(&sim);
}

#[test]
fn registration_racing_arrivals_reports_each_interface_exactly_once() {
    for seed in 0..30 {
        let sim = Sim::new(
            SimConfig::default()
                .with_seed(seed)
                .with_notifications(NotificationConfig::ORDERED),
        );
        let log = Log::default();
        let mut links = Vec::new();
        thread::scope(|s| {
            let adder = s.spawn(|| {
                (0..6)
                    .map(|i| add_device(&sim, &format!("d{i}"), G1, device()).1)
                    .collect::<Vec<_>>()
            });
            thread::sleep(Duration::from_micros(seed * 20));
            let reg = sim
                .register_interface_notification(&G1, Interfaces::new("r", &log))
                .unwrap();
            links = adder.join().unwrap();
            sim.bus().flush().unwrap();
            drop(reg);
        });
        let mut got: Vec<String> = log.take();
        got.sort();
        let mut want: Vec<String> = links.iter().map(|l| format!("r:arrived:{l}@pnp")).collect();
        want.sort();
        assert_eq!(got, want, "seed {seed}");
        assert_clean(&sim);
    }
}

/// Blocks inside its callback until released.
struct Slow {
    entered: AtomicBool,
    release: Mutex<bool>,
    cv: std::sync::Condvar,
    calls: AtomicUsize,
}

impl InterfaceNotificationHandler for Slow {
    fn interface_arrived(&self, _link: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.entered.store(true, Ordering::SeqCst);
        let mut r = self.release.lock().unwrap();
        while !*r {
            r = self.cv.wait(r).unwrap();
        }
    }
    fn interface_removed(&self, _link: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn unregister_waits_for_a_running_callback_and_stops_later_ones() {
    // The handler waits for the test thread, which must not be the one
    // reporting the existing interfaces (inline reports: see `strict.rs`).
    let sim = Sim::new(SimConfig::default().with_notifications(NotificationConfig::ORDERED));
    let (id, _l) = add_device(&sim, "d", G1, device());
    let slow = Arc::new(Slow {
        entered: AtomicBool::new(false),
        release: Mutex::new(false),
        cv: std::sync::Condvar::new(),
        calls: AtomicUsize::new(0),
    });
    let reg = sim
        .register_interface_notification(&G1, Arc::clone(&slow))
        .unwrap();
    while !slow.entered.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    let unregistered = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            reg.unregister();
            unregistered.store(true, Ordering::SeqCst);
        });
        thread::sleep(Duration::from_millis(30));
        assert!(
            !unregistered.load(Ordering::SeqCst),
            "unregister must wait for the running callback"
        );
        *slow.release.lock().unwrap() = true;
        slow.cv.notify_all();
    });
    assert!(unregistered.load(Ordering::SeqCst));
    sim.bus().disable_interface(id, &G1).unwrap();
    assert_eq!(
        slow.calls.load(Ordering::SeqCst),
        1,
        "no callback after unregister"
    );
    assert_clean(&sim);
}

/// Unregisters itself from inside its first callback.
struct SelfRemoving {
    reg: Mutex<Option<SimNotification>>,
    stored: std::sync::Condvar,
    calls: AtomicUsize,
}

impl InterfaceNotificationHandler for SelfRemoving {
    fn interface_arrived(&self, _link: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut slot = self.reg.lock().unwrap();
        while slot.is_none() {
            slot = self.stored.wait(slot).unwrap();
        }
        let reg = slot.take().unwrap();
        drop(slot);
        reg.unregister(); // from the PnP thread, inside our own callback: must not wait for itself
    }
    fn interface_removed(&self, _link: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn unregister_from_inside_a_callback_is_the_last_call() {
    // The handler waits for the test thread, which must not be the one
    // reporting the existing interfaces (inline reports: see `strict.rs`).
    let sim = Sim::new(SimConfig::default().with_notifications(NotificationConfig::ORDERED));
    add_device(&sim, "a", G1, device());
    add_device(&sim, "b", G1, device());
    let h = Arc::new(SelfRemoving {
        reg: Mutex::new(None),
        stored: std::sync::Condvar::new(),
        calls: AtomicUsize::new(0),
    });
    let reg = sim
        .register_interface_notification(&G1, Arc::clone(&h))
        .unwrap();
    *h.reg.lock().unwrap() = Some(reg);
    h.stored.notify_all();
    sim.bus().flush().unwrap();
    assert_eq!(
        h.calls.load(Ordering::SeqCst),
        1,
        "two existing interfaces, but unregistered after the first"
    );
    add_device(&sim, "c", G1, device());
    assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    assert_clean(&sim);
}

#[test]
fn registration_failure_is_injectable() {
    let sim = Sim::new(
        SimConfig::default().with_fault(FaultPoint::NotificationRegistration, FaultPlan::Next(1)),
    );
    let log = Log::default();
    assert_eq!(
        sim.register_interface_notification(&G1, Interfaces::new("r", &log))
            .err(),
        Some(Status::INSUFFICIENT_RESOURCES)
    );
    let reg = sim
        .register_interface_notification(&G1, Interfaces::new("r", &log))
        .unwrap();
    assert_eq!(sim.counters().live_registrations, 1);
    drop(reg);
    assert_clean(&sim);
}
