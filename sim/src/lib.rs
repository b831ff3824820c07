//! # dmf-sim: the simulated WDF platform
//!
//! `dmf-sim` implements the [`dmf_wdf::Platform`] seam in std Rust with a
//! simulated device stack, PnP bus and client device. It is the platform the
//! DMF layer crates' tests, the demo and the benchmarks run on, and it aims to
//! be *faithful, not convenient*:
//!
//! * completions arrive on other threads than the sender's, after a
//!   configurable [`Latency`] — or, with [`InlineCompletion`] (set in
//!   [`SimConfig`] or with the environment variable [`INLINE_ENV`],
//!   `DMF_SIM_INLINE`), on the sender's or canceller's own thread before
//!   `send`, `cancel_sent`, `stop`, `purge` or `close` returns, as KMDF does
//!   when the lower driver completes at once; a request can be cancelled
//!   while it completes, and is completed exactly once either way;
//! * PnP arrivals and removals come from a dedicated PnP thread; query-remove
//!   can be vetoed or followed by remove-complete; surprise removal hits
//!   targets with requests in flight;
//! * the [`ClientDevice`] goes through `D0Exit`/`D0Entry` whenever the test
//!   says so;
//! * faults (allocation, request creation, open, send refusal, request
//!   failure, latency spikes, work-item and timer/event creation) are
//!   injectable ([`Faults`]) and runs are reproducible from a seed;
//! * blocking operations panic in dispatch context (completion routines, spin
//!   locks held), as the WDF verifier would complain;
//! * [`Counters`] prove nothing leaked.
//!
//! | WDF / kernel | here |
//! |---|---|
//! | the machine | [`Sim`] ([`SimConfig`], [`ClockMode`]) |
//! | `WDFIOTARGET` | [`SimIoTarget`] |
//! | `WDFREQUEST` | [`SimRequest`] |
//! | IRP at the lower driver | [`Irp`] |
//! | lower driver / device | [`DeviceHandler`]: [`TestsIoctlHandler`], [`EchoDevice`], [`FixedResponseDevice`], [`ParkingDevice`] |
//! | PnP manager, device interfaces | [`Bus`] |
//! | `IoRegisterPlugPlayNotification` | [`SimNotification`] |
//! | the client `WDFDEVICE` (PnP/power callbacks) | [`ClientDevice`] |
//! | `WDFSPINLOCK`, `WDFWAITLOCK`, `KEVENT`, `WDFTIMER`, `WDFWORKITEM` | [`SimLock`], [`SimWaitLock`], [`SimEvent`], [`SimTimer`], [`SimWorkItem`] |
//!
//! ## Strict behaviours
//!
//! Where the layers depend on a KMDF behaviour, the simulator is at least as
//! strict: where KMDF would deadlock or its verifier break, it panics.
//!
//! | KMDF behaviour | what the simulator does | mode / config | tests |
//! |---|---|---|---|
//! | a new remote target is `WdfIoTargetStarted` but not open (`FxIoTarget::Construct`, `FxIoTargetRemote::Open`) | a fresh [`SimIoTarget`] reports `Started`; `open` is allowed when never opened or `Closed`, refused when open or closed for query-remove; no invented "created" state | always | `targets::a_new_target_reports_started_like_kmdf_and_opens`; kmdf `convert::tests::*open*` |
//! | formatting a request for a target that is not open fails (`FxRequestBase::ValidateTarget`) | `format_request` returns `STATUS_INVALID_DEVICE_STATE` | always | `targets::sends_are_queued_when_stopped_and_refused_when_purged_or_closed` |
//! | a request cancelled by its timeout completes with `STATUS_IO_TIMEOUT`, asynchronous or synchronous (`FxIoTarget::RequestCompletionRoutine`, `TimerCallback`, `SubmitSync`) | converted on every completion path | always | `timeouts::*`; DIMT `dimt3_dimt4_async_cancel_and_reuse`; `soak_short` |
//! | reusing or re-formatting a request in flight is a verifier break (`FxRequest::Reuse`, `VerifySubmitLocked`) | panics | always | `targets::reuse_format_send_or_drop_in_flight_panic` |
//! | `WdfRequestCancelSentRequest` returns FALSE unless a cancel routine ran; the IRP's cancel flag and the request's `m_Canceled` are kept | `cancel_sent` is `false` until the device makes the IRP cancelable, which then sees it cancelled; a request not sent yet fails its next send with `STATUS_CANCELLED` until reused | always | `cancel_race::cancel_sent_is_false_until_the_device_makes_the_request_cancelable`, `cancel_race::a_cancel_before_the_send_is_remembered_until_reuse` |
//! | sends to a Stopped target are pended; `WdfIoTargetStart` sends them, purge and close complete them with `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`, cancel with `STATUS_CANCELLED`; their timers run | a per-target queue with the same outcomes | always | `targets::sends_to_a_stopped_target_wait_in_its_queue`, `targets::close_completes_the_queue_of_a_stopped_target_unsent` |
//! | on surprise removal the lower driver completes pending I/O when it decides, with its own status, possibly holding it non-cancelable; a close in remove-complete waits for it | the removed device completes with its status after a delay, holding the requests non-cancelable | [`DeviceSpec::with_surprise_removal`] (default: at once, `STATUS_DEVICE_REMOVED`) | `pnp_removal::surprise_removal_completes_io_when_the_device_decides_and_close_waits`; DIMT `surprise_removal_when_the_device_holds_io_non_cancelable` |
//! | a lower driver may complete an IRP inside `IoCallDriver` or its cancel routine: the completion routine runs on the sending or cancelling thread before `WdfRequestSend`, `WdfRequestCancelSentRequest`, `WdfIoTargetStop(CancelSentIo)`, `Purge` or `Close` returns; the kernel stack is 24 KiB | such completions are delivered at once on that thread, in dispatch context; more than `inline_depth_limit` nested deliveries is reported and handed to a completion thread; simulator threads have a 24 KiB budget checked at send and at completion- and cancel-routine entry | [`InlineCompletion`] (`Off` / `Always` / `Mix`), [`INLINE_ENV`]; `inline_depth_limit`, `thread_stack_bytes`; CI runs the whole suite a second time with `DMF_SIM_INLINE=mix:50:1` | `inline_completion` tests of the sim, request-target, CRT and DIMT; `request-target/tests/inline_close.rs` |
//! | `WdfTimerStop(Wait = TRUE)` and timer deletion break into the verifier above `PASSIVE_LEVEL` (`FxTimer::Stop`) | dropping a [`SimTimer`] or `stop(true)` in dispatch context panics | always | `timers_work_items::dropping_a_timer_in_dispatch_context_panics`; buffer-pool `timer_contract`; CRT `power`, `streaming`, `prop_crt` |
//! | stopping with wait or deleting a timer from its own callback deadlocks (`FxTimer::Stop`, `FxTimer::FlushAndRundown`) | dropping a [`SimTimer`] or `stop(true)` from its own handler panics | always | `timers_work_items::dropping_a_timer_from_its_own_handler_panics`; buffer-pool `timer_contract`, `model` |
//! | `WdfWorkItemFlush` from the item's own callback deadlocks (`FxWorkItem::FlushAndWait`); deletion waits at `PASSIVE_LEVEL` (`FxWorkItem::WaitForSignal`), except on the item's own callback thread | `flush` from the handler or in dispatch context panics; dropping in dispatch context panics; dropping from the own handler does not wait | always | `timers_work_items::dropping_a_work_item_in_dispatch_context_panics`, `…_from_its_own_handler_does_not_wait_for_itself` |
//! | `WdfWaitLockAcquire` without timeout is `PASSIVE_LEVEL` only; a wait lock is not recursive | acquiring a [`SimWaitLock`] in dispatch context (a completion routine, a spin lock held) panics; acquiring it again on the holding thread panics | always | `strict::acquiring_a_wait_lock_with_a_spin_lock_held_panics`, `strict::acquiring_a_wait_lock_in_a_completion_routine_panics`, `strict::acquiring_a_wait_lock_twice_on_one_thread_panics` |
//! | `WdfIoTargetCreate` and `IoRegisterPlugPlayNotification` are `PASSIVE_LEVEL` only | both panic in dispatch context | always | `strict::create_io_target_in_dispatch_context_panics`, `strict::register_interface_notification_in_dispatch_context_panics` |
//! | completion routines run at `DISPATCH_LEVEL`; long ones starve the processor (DPC watchdog) | a routine running longer than the budget is counted ([`Counters::slow_completion_routines`]) and logged; with `strict` it panics | [`RoutineBudget`] (default 100 ms, counted only) | `strict::a_completion_routine_over_budget_is_counted`, `…_over_a_strict_budget_panics` |
//! | with `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES`, existing interfaces are reported on the registering thread before registration returns | per registration (seeded draw): reported inline while the PnP thread is held, or later on the PnP thread | [`NotificationConfig::existing_inline_per_million`] (default half) | `strict::existing_interfaces_can_be_reported_on_the_registering_thread_before_it_returns`, `strict::the_default_mix_is_reproducible_from_the_seed`; every DIMT test |
//! | an arrival may be reported for an interface already reported | per arrival (seeded draw): delivered twice | [`NotificationConfig::repeat_arrival_per_million`] (default one in five) | `strict::arrivals_can_repeat_for_an_interface_already_reported`; every DIMT test |
//! | object creation, work-item queueing, allocation, open, sends can fail | every [`FaultPoint`] can be injected ([`Faults`]); the soak's `--faults` injects at all of them | [`FaultPlan`] per point | `faults`, `timers_work_items`; buffer-pool `timer_contract`; `soak --faults` |
//!
//! ## Threads
//!
//! Each simulator runs named threads `dmf-sim-<n>-<role>`: a scheduler and
//! `completion_threads` completion workers (real-time mode only),
//! `passive_threads` passive workers (timers, work items) and one PnP thread.
//! They stop when the last [`Sim`] handle is dropped (every simulated object
//! holds one) or on [`Sim::shutdown`]. Each has a stack budget of
//! [`KERNEL_STACK_BYTES`] (24 KiB, the x64 kernel stack; see
//! [`SimConfig::thread_stack_bytes`]): a thread found deeper than that when
//! it sends or runs a completion or cancel routine is reported like a
//! panicking callback.
//!
//! Like a DPC queued from a DPC, which runs on the same processor after the
//! current one, a completion due at once that is queued while a completion
//! thread runs a completion routine (a resend the device completed
//! immediately) is left to that thread when no other completion is waiting:
//! it runs right after the routine returns, and no idle completion thread is
//! woken for it. Completions queued by other threads (the scheduler, a
//! sender that is not a completion thread), or while others are waiting, wake
//! an idle completion thread as usual.
//!
//! ## Example
//!
//! ```
//! use std::sync::{Arc, mpsc};
//! use dmf_sim::{DeviceSpec, Sim, SimConfig, TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER};
//! use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
//! use dmf_wdf::*;
//!
//! struct Events;
//! impl TargetEvents for Events {
//!     fn query_remove(&self) -> Status { Status::SUCCESS }
//!     fn remove_canceled(&self) {}
//!     fn remove_complete(&self) {}
//! }
//! struct Done(mpsc::Sender<Completed>);
//! impl CompletionRoutine for Done {
//!     fn completed(self: Arc<Self>, c: Completed) { self.0.send(c).unwrap(); }
//! }
//!
//! let sim = Sim::new(SimConfig::default());
//! let id = sim.bus().add_device(
//!     DeviceSpec::new("tests", Arc::new(TestsIoctlHandler::default()))
//!         .with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER),
//! ).unwrap();
//! let link = sim.bus().symbolic_link(id, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER).unwrap();
//!
//! let target = sim.create_io_target().unwrap();
//! target.open(&OpenParams {
//!     symbolic_link: &link,
//!     open_mode: OpenMode::READ_WRITE,
//!     share_access: ShareAccess::READ_WRITE,
//! }, Arc::new(Events)).unwrap();
//!
//! let request = sim.create_request(Some(&target)).unwrap();
//! let input = encode_sleep(5_000);
//! // SAFETY: `input` outlives the send (we wait for the completion below).
//! unsafe {
//!     target.format_request(&request, RequestType::Ioctl, IOCTL_SLEEP,
//!                           Some(RawBuffer::from_slice(&input)), None).unwrap();
//! }
//! let (tx, rx) = mpsc::channel();
//! target.send(&request, SendOptions { timeout_ms: 10 }, Arc::new(Done(tx))).unwrap();
//! // The 10 ms timeout cancels the 5 s sleep: KMDF reports it as a timeout.
//! assert_eq!(rx.recv().unwrap().status, Status::IO_TIMEOUT);
//! sim.wait_quiescent(std::time::Duration::from_secs(5));
//! drop((request, target));
//! assert!(sim.counters().is_clean());
//! ```
#![warn(missing_docs)]

mod bus;
mod client_device;
mod clock;
mod config;
mod context;
mod core;
mod counters;
mod device;
mod faults;
mod io_target;
mod irp;
mod memory;
mod pnp;
mod recorders;
mod request;
mod rng;
mod scheduler;
mod sync;
mod timer;
mod work_item;
mod workers;

pub mod ioctl_handler;
pub mod logging;

use std::alloc::Layout;
use std::fmt;
use std::ptr::NonNull;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dmf_wdf::recorder::RecorderDump;
use dmf_wdf::{
    Guid, InterfaceNotificationHandler, Platform, Status, TimerHandler, WorkItemHandler,
};

pub use crate::bus::{
    AllowedAccess, Bus, DeviceId, DeviceInfo, DeviceSpec, InterfaceInfo, RemovalOutcome,
    SurpriseRemoval,
};
pub use crate::client_device::{ClientDevice, ClientState};
pub use crate::clock::{ClockMode, TICKS_PER_MS};
pub use crate::config::{
    InlineCompletion, Latency, NotificationConfig, RoutineBudget, SimConfig, INLINE_ENV,
    KERNEL_STACK_BYTES,
};
pub use crate::counters::Counters;
pub use crate::device::{DeviceHandler, EchoDevice, FixedResponseDevice, ParkingDevice};
pub use crate::faults::{FaultPlan, FaultPoint, FaultSetting, Faults};
pub use crate::io_target::{NoTargetEvents, SimIoTarget};
pub use crate::ioctl_handler::{
    IoctlHandlerConfig, TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
pub use crate::irp::{CancelRoutine, Irp, IrpBuffers, IrpId, IrpInput, IrpOutput};
pub use crate::pnp::SimNotification;
pub use crate::request::SimRequest;
pub use crate::rng::SplitMix64;
pub use crate::sync::{SimEvent, SimLock, SimLockGuard, SimWaitLock, SimWaitLockGuard};
pub use crate::timer::SimTimer;
pub use crate::work_item::SimWorkItem;

use crate::core::Core;

/// Most actions `run_until_idle` runs before giving up (a stream that
/// re-sends on every completion is never idle).
pub const RUN_UNTIL_IDLE_LIMIT: usize = 1_000_000;

struct SimHandle {
    core: Arc<Core>,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.core.shutdown();
        let panics = self.core.take_panics();
        if !panics.is_empty()
            && !std::thread::panicking()
            && !context::is_sim_thread_of(self.core.id)
        {
            panic!(
                "dmf-sim: {} callback(s) panicked on simulator threads:\n  {}",
                panics.len(),
                panics.join("\n  ")
            );
        }
    }
}

/// A simulated machine: the [`Platform`] of the DMF layers.
///
/// A cheap handle (`Clone` is an `Arc` clone). Every object it creates holds
/// one too; the simulator's threads stop when the last handle is dropped.
/// Panics caught in callbacks on simulator threads (completion routines, timer
/// and work-item handlers, PnP notifications) are re-raised then, unless taken
/// with [`Sim::take_callback_panics`]; with a manual clock, callbacks run by
/// [`Sim::advance`] panic directly in the caller.
///
/// See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct Sim {
    handle: Arc<SimHandle>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("id", &self.core().id)
            .field("seed", &self.core().seed)
            .field("clock", &self.core().clock.mode())
            .field("now_100ns", &self.core().clock.now())
            .finish()
    }
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new(SimConfig::default())
    }
}

/// A weak handle to a [`Sim`] that does not keep it alive (for device
/// handlers and other objects the simulator itself owns).
#[derive(Clone, Debug, Default)]
pub struct WeakSim {
    handle: Weak<SimHandle>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sim {}", self.core.id)
    }
}

impl WeakSim {
    /// The simulator, if it is still alive.
    pub fn upgrade(&self) -> Option<Sim> {
        self.handle.upgrade().map(|handle| Sim { handle })
    }
}

impl Sim {
    /// Builds a simulator and starts its threads; returns once every one of
    /// them runs.
    pub fn new(config: SimConfig) -> Sim {
        Sim {
            handle: Arc::new(SimHandle {
                core: Core::start(&config),
            }),
        }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.handle.core
    }

    /// A weak handle.
    pub fn downgrade(&self) -> WeakSim {
        WeakSim {
            handle: Arc::downgrade(&self.handle),
        }
    }

    /// The seed of this simulator.
    pub fn seed(&self) -> u64 {
        self.core().seed
    }

    /// The inline-completion mode.
    pub fn inline_completion(&self) -> InlineCompletion {
        self.core().inline_mode()
    }

    /// The clock mode.
    pub fn clock_mode(&self) -> ClockMode {
        self.core().clock.mode()
    }

    /// The simulator clock in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.core().clock.now() / TICKS_PER_MS
    }

    /// The PnP bus.
    pub fn bus(&self) -> Bus {
        Bus::new(self.clone())
    }

    /// The fault settings.
    pub fn faults(&self) -> Faults {
        Faults::new(Arc::clone(self.core()))
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.core().counters()
    }

    /// A new client device (stopped, no callbacks).
    pub fn client_device(&self) -> ClientDevice {
        ClientDevice::new()
    }

    /// Waits (real time, at most `timeout`) until no IRP is in flight and no
    /// completion, timer handler, work item or PnP job is queued or running.
    /// Armed timers do not count. With a manual clock nothing scheduled runs
    /// by itself: use [`Sim::run_until_idle`] first. Returns whether the
    /// simulator became quiescent.
    pub fn wait_quiescent(&self, timeout: Duration) -> bool {
        self.core().wait_quiescent(timeout)
    }

    /// Manual clock: advances by `ms` milliseconds, running every due timer
    /// and completion inline, in deadline order (FIFO among equal deadlines).
    ///
    /// # Panics
    ///
    /// With a real-time clock, or when called from a callback `advance` runs.
    pub fn advance(&self, ms: u64) {
        let now = self.core().clock.now();
        self.advance_to(now.saturating_add(clock::ms_to_ticks(ms)));
    }

    /// Manual clock: advances to `t_100ns` (no-op if already past), running
    /// everything due inline. Panics like [`Sim::advance`].
    pub fn advance_to(&self, t_100ns: u64) {
        scheduler::advance_to(self.core(), t_100ns);
    }

    /// Manual clock: runs every scheduled action in deadline order, moving the
    /// clock to each deadline, until nothing is scheduled. Returns `false` if
    /// it gave up after [`RUN_UNTIL_IDLE_LIMIT`] actions (for example a stream
    /// that re-sends forever). Panics like [`Sim::advance`].
    pub fn run_until_idle(&self) -> bool {
        scheduler::run_until_idle(self.core(), RUN_UNTIL_IDLE_LIMIT)
    }

    /// Number of actions scheduled on the clock (including stale ones, such
    /// as the timeouts of requests that already completed).
    pub fn scheduled(&self) -> usize {
        self.core().sched.len()
    }

    /// Stops the simulator now: new sends, opens, work items and bus changes
    /// are refused; every IRP still pending at a device completes with
    /// `STATUS_DEVICE_REMOVED` and its completion is delivered; then the
    /// threads stop. Objects still alive keep working as closed/idle objects.
    /// Idempotent; dropping the last handle does the same.
    pub fn shutdown(&self) {
        self.core().shutdown();
    }

    /// The in-flight recorders of the modules on this simulator: every live
    /// one, then the final text of the most recently dropped ones, each
    /// under a heading (see [`dmf_wdf::recorder`]).
    pub fn recorder_dump(&self) -> String {
        self.core().recorders.dump()
    }

    /// The leak check to end a test with: waits (at most `timeout`) until
    /// the simulator is quiescent, then checks that nothing is alive or in
    /// flight ([`Counters::is_clean`]). On failure the message holds the
    /// counters and every module's in-flight recorder
    /// ([`recorder_dump`](Self::recorder_dump)): the last transitions
    /// before the leak.
    pub fn leak_check(&self, timeout: Duration) -> Result<(), String> {
        let quiescent = self.wait_quiescent(timeout);
        let counters = self.counters();
        if quiescent && counters.is_clean() {
            return Ok(());
        }
        Err(format!(
            "leak check failed{}:\n{counters}\n{}",
            if quiescent { "" } else { " (not quiescent)" },
            self.recorder_dump()
        ))
    }

    /// Takes the messages of panics caught in callbacks on simulator threads
    /// (they would otherwise be re-raised when the last handle drops).
    pub fn take_callback_panics(&self) -> Vec<String> {
        self.core().take_panics()
    }
}

// SAFETY: `allocate` returns a fresh block of the global allocator for the
// exact layout (a dangling, aligned pointer for a zero size), which only
// `deallocate` frees, whatever happens to the `Sim` handles; the associated
// types are `unsafe impl`s of their traits, each with its own justification.
unsafe impl Platform for Sim {
    type IoTarget = SimIoTarget;
    type Request = SimRequest;
    type Lock<T: Send> = SimLock<T>;
    type WaitLock<T: Send> = SimWaitLock<T>;
    type Event = SimEvent;
    type Timer = SimTimer;
    type WorkItem = SimWorkItem;
    type Notification = SimNotification;

    fn keep_recorder(&self, recorder: std::sync::Weak<dyn RecorderDump>) {
        self.core().recorders.keep(recorder);
    }

    fn recorder_retired(&self, recorder: &dyn RecorderDump) {
        self.core().recorders.retire(recorder);
    }

    fn now_100ns(&self) -> u64 {
        self.core().clock.now()
    }

    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        memory::allocate(self.core(), layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded contract: `ptr` comes from `allocate` on this
        // platform with `layout` and was not freed.
        unsafe { memory::deallocate(self.core(), ptr, layout) }
    }

    fn create_event(&self, signalled: bool) -> dmf_wdf::Result<SimEvent> {
        if let Some(status) = self.core().faults.check(FaultPoint::EventCreation) {
            return Err(status);
        }
        Ok(SimEvent::new(Arc::clone(self.core()), signalled))
    }

    fn create_wait_lock<T: Send>(&self, value: T) -> dmf_wdf::Result<SimWaitLock<T>> {
        if let Some(status) = self.core().faults.check(FaultPoint::WaitLockCreation) {
            return Err(status);
        }
        Ok(SimWaitLock::new(Arc::clone(self.core()), value))
    }

    fn create_timer<H: TimerHandler>(&self, handler: Arc<H>) -> dmf_wdf::Result<SimTimer> {
        if let Some(status) = self.core().faults.check(FaultPoint::TimerCreation) {
            return Err(status);
        }
        Ok(SimTimer::new(self, handler))
    }

    fn create_work_item<H: WorkItemHandler>(
        &self,
        handler: Arc<H>,
    ) -> dmf_wdf::Result<SimWorkItem> {
        if let Some(status) = self.core().faults.check(FaultPoint::WorkItemCreation) {
            return Err(status);
        }
        Ok(SimWorkItem::new(self, handler))
    }

    fn create_io_target(&self) -> dmf_wdf::Result<SimIoTarget> {
        // `WdfIoTargetCreate` is PASSIVE_LEVEL only (`FxIoTargetRemote`
        // construction allocates paged memory).
        context::assert_passive("Platform::create_io_target (WdfIoTargetCreate)");
        if let Some(status) = self.core().faults.check(FaultPoint::TargetCreation) {
            return Err(status);
        }
        Ok(SimIoTarget::new(self))
    }

    fn create_request(&self, target: Option<&SimIoTarget>) -> dmf_wdf::Result<SimRequest> {
        let _ = target;
        if let Some(status) = self.core().faults.check(FaultPoint::RequestCreation) {
            return Err(status);
        }
        Ok(SimRequest::new(self))
    }

    fn register_interface_notification<H: InterfaceNotificationHandler>(
        &self,
        guid: &Guid,
        handler: Arc<H>,
    ) -> dmf_wdf::Result<SimNotification> {
        // `IoRegisterPlugPlayNotification` is PASSIVE_LEVEL only.
        context::assert_passive(
            "Platform::register_interface_notification (IoRegisterPlugPlayNotification)",
        );
        if let Some(status) = self
            .core()
            .faults
            .check(FaultPoint::NotificationRegistration)
        {
            return Err(status);
        }
        if self.core().is_shutting_down() {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        pnp::register(self, *guid, handler)
    }
}
