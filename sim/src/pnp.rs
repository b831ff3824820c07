//! The PnP thread: bus changes and every PnP notification, one at a time, in
//! order; interface-notification registrations.
//!
//! A registration becomes visible to bus changes only when its existing
//! interfaces are reported (on the PnP thread, or on the registering thread
//! while it holds the PnP thread), so an interface is reported whether it was
//! enabled before or after registering; some arrivals are reported twice
//! (see [`NotificationConfig`](crate::NotificationConfig)).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};

use dmf_wdf::{Guid, InterfaceNotificationHandler, Notification, Status};

use crate::context;
use crate::core::{lock, wait, Core};
use crate::counters;
use crate::Sim;

/// A unit of PnP work.
pub(crate) type PnpJob = Box<dyn FnOnce(&Arc<Core>) + Send>;

/// The PnP thread body.
pub(crate) fn pnp_thread(core: Arc<Core>) {
    context::mark_pnp_thread(core.id);
    while let Some(job) = core.pnp.next() {
        core.guarded("PnP job", || job(&core));
        if core.pnp.done() == 0 {
            core.poke_quiet();
        }
    }
}

/// Queues `job` on the PnP thread without waiting.
pub(crate) fn post(core: &Arc<Core>, job: PnpJob) -> dmf_wdf::Result<()> {
    core.pnp.push(job).map_err(|_| Status::INVALID_DEVICE_STATE)
}

struct ReplySlot<R> {
    value: Mutex<(Option<R>, bool)>,
    cv: Condvar,
}

/// Fills the slot, or marks it abandoned if the job is dropped unrun.
struct Reply<R> {
    slot: Arc<ReplySlot<R>>,
    sent: bool,
}

impl<R> Reply<R> {
    fn send(mut self, r: R) {
        let mut v = lock(&self.slot.value);
        v.0 = Some(r);
        v.1 = true;
        drop(v);
        self.sent = true;
        self.slot.cv.notify_all();
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        if !self.sent {
            lock(&self.slot.value).1 = true;
            self.slot.cv.notify_all();
        }
    }
}

/// Runs `f` on the PnP thread and waits for its result.
/// `Err(STATUS_INVALID_DEVICE_STATE)` if the simulator is shut down.
#[track_caller]
pub(crate) fn call<R: Send + 'static>(
    core: &Arc<Core>,
    what: &str,
    f: impl FnOnce(&Arc<Core>) -> R + Send + 'static,
) -> dmf_wdf::Result<R> {
    assert!(
        !context::is_pnp_thread_of(core.id),
        "dmf-sim: {what} called from a PnP callback; it would wait for the PnP thread, which is running the caller"
    );
    context::assert_passive(what);
    let slot = Arc::new(ReplySlot {
        value: Mutex::new((None, false)),
        cv: Condvar::new(),
    });
    let reply = Reply {
        slot: Arc::clone(&slot),
        sent: false,
    };
    post(
        core,
        Box::new(move |core| {
            let r = f(core);
            reply.send(r);
        }),
    )?;
    let mut v = lock(&slot.value);
    while !v.1 {
        v = wait(&slot.cv, v);
    }
    v.0.take().ok_or(Status::INVALID_DEVICE_STATE)
}

/// A callback slot that can be cleared with the guarantee that no call is
/// running or will start afterwards (`IoUnregisterPlugPlayNotificationEx`).
/// Only the PnP thread calls through it.
pub(crate) struct CallGate<T: ?Sized> {
    state: Mutex<GateState<T>>,
    cv: Condvar,
    core_id: u64,
}

struct GateState<T: ?Sized> {
    value: Option<Arc<T>>,
    in_call: bool,
}

impl<T: ?Sized> CallGate<T> {
    pub(crate) fn new(core_id: u64, value: Option<Arc<T>>) -> Self {
        CallGate {
            state: Mutex::new(GateState {
                value,
                in_call: false,
            }),
            cv: Condvar::new(),
            core_id,
        }
    }

    /// Installs (or replaces) the callee.
    pub(crate) fn set(&self, value: Arc<T>) {
        let old = lock(&self.state).value.replace(value);
        drop(old);
    }

    pub(crate) fn is_set(&self) -> bool {
        lock(&self.state).value.is_some()
    }

    /// Calls `f` with the callee if one is installed (PnP thread only).
    pub(crate) fn call<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let callee = {
            let mut s = lock(&self.state);
            let v = s.value.clone()?;
            s.in_call = true;
            v
        };
        struct Done<'a, T: ?Sized>(&'a CallGate<T>);
        impl<T: ?Sized> Drop for Done<'_, T> {
            fn drop(&mut self) {
                lock(&self.0.state).in_call = false;
                self.0.cv.notify_all();
            }
        }
        let _done = Done(self);
        Some(f(&callee))
    }

    /// Removes the callee; unless called on the PnP thread (from a callback),
    /// waits until no call is running. Returns the old callee.
    pub(crate) fn clear(&self) -> Option<Arc<T>> {
        let mut s = lock(&self.state);
        let old = s.value.take();
        if !context::is_pnp_thread_of(self.core_id) {
            while s.in_call {
                s = wait(&self.cv, s);
            }
        }
        old
    }
}

/// One interface-notification registration.
pub(crate) struct Registration {
    pub(crate) guid: Guid,
    pub(crate) gate: CallGate<dyn InterfaceNotificationHandler>,
}

/// Delivers an interface arrival or removal to every matching registration
/// (PnP thread).
pub(crate) fn notify_interface(core: &Arc<Core>, guid: Guid, link: &str, arrived: bool) {
    let regs: Vec<Arc<Registration>> = lock(&core.bus)
        .registrations
        .iter()
        .filter(|r| r.guid == guid)
        .cloned()
        .collect();
    for reg in regs {
        deliver(core, &reg, link, arrived);
    }
}

fn deliver(core: &Core, reg: &Registration, link: &str, arrived: bool) {
    // PnP may report an arrival a registration has already seen: repeat some
    // (seeded, `NotificationConfig::repeat_arrival_per_million`).
    let times = if arrived && core.draw_repeat_arrival() {
        2
    } else {
        1
    };
    for _ in 0..times {
        reg.gate.call(|h| {
            if arrived {
                core.guarded("InterfaceNotificationHandler::interface_arrived", || {
                    h.interface_arrived(link)
                })
            } else {
                core.guarded("InterfaceNotificationHandler::interface_removed", || {
                    h.interface_removed(link)
                })
            }
        });
    }
}

/// Makes `reg` visible to bus changes and reports the interfaces present now
/// (PnP thread, or the registering thread while it holds the PnP thread).
fn report_existing(core: &Arc<Core>, reg: &Arc<Registration>) {
    if !reg.gate.is_set() {
        return;
    }
    let guid = reg.guid;
    let existing: Vec<String> = {
        let mut bus = lock(&core.bus);
        bus.registrations.push(Arc::clone(reg));
        bus.devices
            .values()
            .flat_map(|d| {
                d.data()
                    .interfaces
                    .iter()
                    .filter(|i| i.guid == guid && i.enabled)
                    .map(|i| i.link.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    tracing::debug!(sim = core.id, %guid, existing = existing.len(), "dmf-sim: registration active");
    for link in existing {
        deliver(core, reg, &link, true);
    }
}

/// The PnP thread held by a registering thread (see [`report_inline`]).
struct Hold {
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

/// Marks the hold taken (and, if the job is dropped unrun at shutdown,
/// lets the registering thread go on).
struct HoldJob(Arc<Hold>);

impl Drop for HoldJob {
    fn drop(&mut self) {
        lock(&self.0.state).0 = true;
        self.0.cv.notify_all();
    }
}

/// Releases the PnP thread when dropped.
struct Release(Arc<Hold>);

impl Drop for Release {
    fn drop(&mut self) {
        lock(&self.0.state).1 = true;
        self.0.cv.notify_all();
    }
}

/// Reports the existing interfaces of `reg` on the calling (registering)
/// thread before registration returns, as Windows does with
/// `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES`. The PnP thread
/// is held meanwhile, so calls for one registration still never overlap and
/// the bus does not change during the report; the caller counts as a PnP
/// thread for the report (a bus change from the handler panics instead of
/// deadlocking).
fn report_inline(core: &Arc<Core>, reg: &Arc<Registration>) -> dmf_wdf::Result<()> {
    if context::is_pnp_thread_of(core.id) {
        report_existing(core, reg);
        return Ok(());
    }
    let hold = Arc::new(Hold {
        state: Mutex::new((false, false)),
        cv: Condvar::new(),
    });
    let job = HoldJob(Arc::clone(&hold));
    post(
        core,
        Box::new(move |_| {
            let hold = Arc::clone(&job.0);
            drop(job); // held: the registering thread goes on
            let mut s = lock(&hold.state);
            while !s.1 {
                s = wait(&hold.cv, s);
            }
        }),
    )?;
    let release = Release(Arc::clone(&hold));
    {
        let mut s = lock(&hold.state);
        while !s.0 {
            s = wait(&hold.cv, s);
        }
    }
    {
        let _pnp = context::PnpScope::enter(core.id);
        report_existing(core, reg);
    }
    drop(release);
    Ok(())
}

/// Registers `handler` for interfaces of class `guid`.
pub(crate) fn register(
    sim: &Sim,
    guid: Guid,
    handler: Arc<dyn InterfaceNotificationHandler>,
) -> dmf_wdf::Result<SimNotification> {
    let core = sim.core();
    let reg = Arc::new(Registration {
        guid,
        gate: CallGate::new(core.id, Some(handler)),
    });
    if core.draw_inline_report() {
        report_inline(core, &reg)?;
    } else {
        let job_reg = Arc::clone(&reg);
        post(core, Box::new(move |core| report_existing(core, &job_reg)))?;
    }
    counters::add(&core.counters.live_registrations, 1);
    Ok(SimNotification {
        sim: sim.clone(),
        reg,
        active: true,
    })
}

/// A registration for device-interface notifications. Dropping it (or
/// [`Notification::unregister`]) unregisters: afterwards no handler call is
/// running or will start.
///
/// Unregistering from inside one of its own handler calls is allowed (the
/// current call is the last one); from any other thread it waits for a running
/// call to return.
pub struct SimNotification {
    sim: Sim,
    reg: Arc<Registration>,
    active: bool,
}

impl fmt::Debug for SimNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNotification")
            .field("guid", &self.reg.guid)
            .field("active", &self.active)
            .finish()
    }
}

impl SimNotification {
    /// The interface class.
    pub fn guid(&self) -> Guid {
        self.reg.guid
    }

    fn unregister_now(&mut self) {
        if !self.active {
            return;
        }
        self.active = false;
        let core = self.sim.core();
        if !context::is_pnp_thread_of(core.id) {
            context::assert_passive("Notification::unregister");
        }
        let handler = self.reg.gate.clear();
        lock(&core.bus)
            .registrations
            .retain(|r| !Arc::ptr_eq(r, &self.reg));
        counters::add(&core.counters.live_registrations, -1);
        tracing::debug!(sim = core.id, guid = %self.reg.guid, "dmf-sim: unregistered");
        drop(handler);
    }
}

impl Notification for SimNotification {
    fn unregister(mut self) {
        self.unregister_now();
    }
}

impl Drop for SimNotification {
    fn drop(&mut self) {
        self.unregister_now();
    }
}
