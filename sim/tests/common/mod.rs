//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use dmf_sim::{DeviceHandler, DeviceId, DeviceSpec, Sim, SimIoTarget};
use dmf_wdf::{
    Completed, CompletionRoutine, Guid, InterfaceNotificationHandler, IoTarget, OpenMode,
    OpenParams, Platform, ShareAccess, Status, TargetEvents,
};

/// A shared, ordered log of events.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// What a recording `TargetEvents` does on query-remove.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnQuery {
    /// Accept and close the target for the query-remove.
    AcceptAndClose,
    /// Accept but (wrongly) keep the handle open.
    AcceptKeepOpen,
    /// Veto.
    Veto,
}

/// `TargetEvents` that log with a name and act like a well-behaved layer:
/// close for query-remove, reopen on remove-cancel, close on remove-complete.
pub struct Events {
    pub name: String,
    pub log: Log,
    pub on_query: Mutex<OnQuery>,
    pub target: Mutex<Weak<SimIoTarget>>,
    pub reopen_result: Mutex<Option<dmf_wdf::Result<()>>>,
}

impl Events {
    pub fn new(name: &str, log: &Log, on_query: OnQuery) -> Arc<Events> {
        Arc::new(Events {
            name: name.to_string(),
            log: log.clone(),
            on_query: Mutex::new(on_query),
            target: Mutex::new(Weak::new()),
            reopen_result: Mutex::new(None),
        })
    }

    fn target(&self) -> Option<Arc<SimIoTarget>> {
        self.target.lock().unwrap().upgrade()
    }
}

fn thread_tag() -> String {
    let t = std::thread::current();
    let name = t.name().unwrap_or("?");
    if name.contains("-pnp") {
        "pnp".into()
    } else {
        name.into()
    }
}

impl TargetEvents for Events {
    fn query_remove(&self) -> Status {
        self.log
            .push(format!("{}:query_remove@{}", self.name, thread_tag()));
        match *self.on_query.lock().unwrap() {
            OnQuery::AcceptAndClose => {
                if let Some(t) = self.target() {
                    t.close_for_query_remove();
                }
                Status::SUCCESS
            }
            OnQuery::AcceptKeepOpen => Status::SUCCESS,
            OnQuery::Veto => Status::UNSUCCESSFUL,
        }
    }

    fn remove_canceled(&self) {
        self.log
            .push(format!("{}:remove_canceled@{}", self.name, thread_tag()));
        if let Some(t) = self.target() {
            if t.state() == dmf_wdf::TargetState::ClosedForQueryRemove {
                *self.reopen_result.lock().unwrap() = Some(t.reopen());
            }
        }
    }

    fn remove_complete(&self) {
        self.log
            .push(format!("{}:remove_complete@{}", self.name, thread_tag()));
        if let Some(t) = self.target() {
            t.close();
        }
    }
}

/// Opens a new target on `link` with the given access, wiring `events` to it.
pub fn open_with(
    sim: &Sim,
    link: &str,
    mode: OpenMode,
    share: ShareAccess,
    events: &Arc<Events>,
) -> dmf_wdf::Result<Arc<SimIoTarget>> {
    let target = Arc::new(sim.create_io_target()?);
    *events.target.lock().unwrap() = Arc::downgrade(&target);
    target.open(
        &OpenParams {
            symbolic_link: link,
            open_mode: mode,
            share_access: share,
        },
        Arc::clone(events),
    )?;
    Ok(target)
}

/// Opens read-write, shared read-write.
pub fn open(sim: &Sim, link: &str, events: &Arc<Events>) -> Arc<SimIoTarget> {
    open_with(
        sim,
        link,
        OpenMode::READ_WRITE,
        ShareAccess::READ_WRITE,
        events,
    )
    .expect("open")
}

/// Adds a device with one interface, returns its id and interface link.
pub fn add_device(
    sim: &Sim,
    name: &str,
    guid: Guid,
    handler: Arc<dyn DeviceHandler>,
) -> (DeviceId, String) {
    let id = sim
        .bus()
        .add_device(DeviceSpec::new(name, handler).with_interface(guid))
        .expect("add_device");
    let link = sim.bus().symbolic_link(id, &guid).expect("link");
    (id, link)
}

/// A completion routine that records every completion and can be waited on.
#[derive(Default)]
pub struct Recorder {
    pub calls: AtomicUsize,
    pub results: Mutex<Vec<Completed>>,
    cv: Condvar,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    pub fn count(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Waits (real time) until `n` completions were recorded.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut r = self.results.lock().unwrap();
        while r.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            r = self.cv.wait_timeout(r, deadline - now).unwrap().0;
        }
        true
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.results
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.status)
            .collect()
    }

    pub fn last(&self) -> Option<Completed> {
        self.results.lock().unwrap().last().copied()
    }
}

impl CompletionRoutine for Recorder {
    fn completed(self: Arc<Self>, completion: Completed) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.results.lock().unwrap().push(completion);
        self.cv.notify_all();
    }
}

/// Interface-notification handler logging arrivals and removals.
pub struct Interfaces {
    pub log: Log,
    pub name: String,
}

impl Interfaces {
    pub fn new(name: &str, log: &Log) -> Arc<Interfaces> {
        Arc::new(Interfaces {
            log: log.clone(),
            name: name.to_string(),
        })
    }
}

impl InterfaceNotificationHandler for Interfaces {
    fn interface_arrived(&self, link: &str) {
        self.log
            .push(format!("{}:arrived:{}@{}", self.name, link, thread_tag()));
    }
    fn interface_removed(&self, link: &str) {
        self.log
            .push(format!("{}:removed:{}@{}", self.name, link, thread_tag()));
    }
}

/// Asserts the simulator is quiescent and every object was released.
pub fn assert_clean(sim: &Sim) {
    assert!(
        sim.wait_quiescent(Duration::from_secs(10)),
        "not quiescent: {}",
        sim.counters()
    );
    let c = sim.counters();
    assert!(c.is_clean(), "leak: {c}");
    assert_eq!(c.irps_sent, c.irps_completed, "{c}");
}

/// Resending from a completion routine without recursing when completions
/// are delivered inline (inside `send`, as KMDF does when the lower driver
/// completes at once): a completion that arrives while its sender is still
/// inside `send` hands the resend to that sender, which loops, instead of
/// calling `send` from the routine (one stack frame per resend, without
/// bound). One per request.
#[derive(Default)]
pub struct ResendLoop(AtomicU8);

const RESEND_IDLE: u8 = 0;
const RESEND_SENDING: u8 = 1;
const RESEND_AGAIN: u8 = 2;

impl ResendLoop {
    /// Runs `send` (returns whether the send was accepted), and runs it again
    /// each time the completion asked for a resend while it was in progress.
    pub fn send(&self, mut send: impl FnMut() -> bool) {
        loop {
            self.0.store(RESEND_SENDING, Ordering::SeqCst);
            if !send() {
                self.0.store(RESEND_IDLE, Ordering::SeqCst);
                return;
            }
            if self
                .0
                .compare_exchange(
                    RESEND_SENDING,
                    RESEND_IDLE,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
            {
                return;
            }
            // The completion arrived before we left and asked for a resend.
        }
    }

    /// Called by a completion routine that wants to resend: `true` if the
    /// sender is still in [`ResendLoop::send`] and will resend itself;
    /// `false` if the routine must resend (through `send`).
    pub fn hand_to_sender(&self) -> bool {
        self.0
            .compare_exchange(
                RESEND_SENDING,
                RESEND_AGAIN,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
    }
}
