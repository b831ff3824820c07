//! One tracked target: its record, its transport, and its PnP transitions
//! (DMF's per-target state machine, with this port's fixes).
//!
//! # Locking discipline
//!
//! A target's PnP transitions (arrival, query-remove, remove-cancel,
//! remove-complete, interface removal, module teardown, D0 forwarding) arrive
//! on different threads. Each runs holding the record's `transitions` lock, a
//! sleeping lock of the platform (`WDFWAITLOCK` in KMDF) that owns the
//! record's [`RecordState`]: holders may block and call the client, and two
//! `on_state_change` calls for one target never overlap, because every
//! notification is made with the lock held.
//!
//! Closing an I/O target waits for a target PnP callback that is running,
//! and that callback may be waiting for the lock. So no thread holds the
//! lock while it closes the target:
//!
//! * the destroyer ([`Dimt::destroy`]) marks the record
//!   [`Closing`](Phase::Closing) and reports `Close` with the lock held, then
//!   releases it and does the slow part (stop streaming, close the target,
//!   close the method gate and the transport), then takes the lock again
//!   only to mark the record [`Closed`](Phase::Closed);
//! * a failed arrival marks the record `Closed` before releasing the lock
//!   and closing the target;
//! * every transition asks [`decide`] what to do first thing after
//!   acquiring the lock, and changes nothing on `Closing` or `Closed` (a
//!   query-remove only closes the target for query-remove, so that its
//!   handle does not hold up the removal), so a callback that waited for the
//!   lock while the target was being closed returns at once and lets the
//!   close finish.
//!
//! The phase changes only with the lock held, so a transition sees the
//! outcome of every transition before it. A new record's lock is taken
//! before the record is published in the module's table: nobody sees it
//! `Opening` without waiting for its arrival to finish.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, Retirement,
    StreamClient, StreamCompletion, StreamMode,
};
use dmf_request_target::{
    OwnedSendCompleted, OwnedSendCompletion, RequestTarget, SendCompleted, SendCompletion,
};
use dmf_wdf::recorder::Journal;
use dmf_wdf::{
    transition, DeviceCallbacks, IoTarget, Lock, Platform, PowerState, Result, Status,
    TargetEvents, WaitLock,
};

use crate::gate::TargetGate;
use crate::lifecycle::{decide, Decision, Event, Phase, Report};
use crate::{Dimt, DimtClient, TargetHandle, TargetStateType};

/// What the transitions of one target share (owned by the record's
/// `transitions` lock).
pub(crate) struct RecordState {
    pub(crate) phase: Phase,
    /// A query-remove was vetoed (by the client); the matching remove-cancel
    /// is swallowed, as in DMF.
    pub(crate) query_remove_vetoed: bool,
    /// Streaming ran when the query-remove stopped it: restart on cancel.
    pub(crate) resume_streaming: bool,
}

/// Holding a record's `transitions` lock (see the module's locking
/// discipline).
pub(crate) type Transition<'a, P> =
    <<P as Platform>::WaitLock<RecordState> as WaitLock<RecordState>>::Guard<'a>;

/// The gate of a record, on the platform's lock and event.
pub(crate) type RecordGate<P, C> = TargetGate<
    <P as Platform>::Event,
    <P as Platform>::Lock<Option<Arc<Transport<P, C>>>>,
    Transport<P, C>,
>;

/// The per-target record (DMF `DeviceInterfaceMultipleTarget_IoTarget`).
pub(crate) struct Record<P: Platform, C: DimtClient<P>> {
    pub(crate) handle: TargetHandle,
    pub(crate) link: String,
    /// Serialises this target's PnP transitions and owns their state (see
    /// the module's locking discipline).
    pub(crate) transitions: P::WaitLock<RecordState>,
    /// Gates every method (DMF's per-target `DMF_Rundown`) and holds the
    /// transport.
    pub(crate) gate: RecordGate<P, C>,
    pub(crate) io_target: Arc<P::IoTarget>,
    /// The state last reported to the client (`Invalid` before `Open`);
    /// a spin lock, so that it can be read at any level.
    pub(crate) reported: P::Lock<TargetStateType>,
    /// Whether this record is counted in the module's open targets (once:
    /// see "Open targets are counted once per target" in `docs/dmf-differences.md`).
    pub(crate) counted: AtomicBool,
    /// References taken by `target_reference` and not yet released.
    pub(crate) client_refs: AtomicUsize,
    /// The client's context of the target, set once the target opened.
    pub(crate) hook: P::Lock<Option<Arc<TargetHook<P, C>>>>,
    /// The module's journal, about this target.
    pub(crate) journal: Journal<P>,
}

impl<P: Platform, C: DimtClient<P>> Record<P, C> {
    pub(crate) fn new(
        platform: &P,
        handle: TargetHandle,
        link: &str,
        journal: Journal<P>,
    ) -> Result<Self> {
        Ok(Record {
            journal,
            handle,
            link: String::from(link),
            transitions: platform.create_wait_lock(RecordState {
                phase: Phase::Opening,
                query_remove_vetoed: false,
                resume_streaming: false,
            })?,
            gate: TargetGate::new(platform.create_event(false)?),
            io_target: Arc::new(platform.create_io_target()?),
            reported: P::Lock::new(TargetStateType::Invalid),
            counted: AtomicBool::new(false),
            client_refs: AtomicUsize::new(0),
            hook: P::Lock::new(None),
        })
    }

    pub(crate) fn transport(&self) -> Option<Arc<Transport<P, C>>> {
        self.gate.transport()
    }

    /// The client's context of the target (set before any callback about
    /// it).
    pub(crate) fn hook(&self) -> Option<Arc<TargetHook<P, C>>> {
        self.hook.lock().clone()
    }
}

/// One target as the client's callbacks see it: the module, the handle and
/// the client's context of the target. Created once when the target opens;
/// the stream client and every single send of the target hold it (as their
/// completion callback: an `Arc` clone per send), so the context lives until
/// the last of them is done.
pub(crate) struct TargetHook<P: Platform, C: DimtClient<P>> {
    pub(crate) dimt: Weak<Dimt<P, C>>,
    pub(crate) handle: TargetHandle,
    pub(crate) context: C::Target,
}

impl<P: Platform, C: DimtClient<P>> OwnedSendCompletion<P> for TargetHook<P, C> {
    fn send_completed(&self, completion: OwnedSendCompleted<P>) {
        if let Some(dimt) = self.dimt.upgrade() {
            dimt.client
                .send_completed(&dimt, self.handle, &self.context, completion);
        }
    }
}

impl<P: Platform, C: DimtClient<P>> SendCompletion for TargetHook<P, C> {
    fn send_completed(&self, completion: &SendCompleted<'_>) {
        if let Some(dimt) = self.dimt.upgrade() {
            dimt.client
                .raw_send_completed(&dimt, self.handle, &self.context, completion);
        }
    }
}

/// The CRT client of one target: re-invokes the DIMT client with the module,
/// the target handle and its context (DMF's `…_Stream_BufferInput/Output`
/// trampolines).
pub(crate) struct StreamHook<P: Platform, C: DimtClient<P>>(pub(crate) Arc<TargetHook<P, C>>);

impl<P: Platform, C: DimtClient<P>> StreamClient<P> for StreamHook<P, C> {
    fn buffer_input(&self, input: &mut [u8], context: &mut [u8]) -> usize {
        let hook = &self.0;
        match hook.dimt.upgrade() {
            Some(dimt) => {
                dimt.client
                    .buffer_input(&dimt, hook.handle, &hook.context, input, context)
            }
            None => input.len(),
        }
    }

    fn buffer_output(&self, completion: StreamCompletion<P>) -> OutputDisposition<P> {
        let hook = &self.0;
        match hook.dimt.upgrade() {
            Some(dimt) => dimt
                .client
                .buffer_output(&dimt, hook.handle, &hook.context, completion),
            None => completion.module_owns_and_stop(),
        }
    }

    fn stream_request_retired(&self, retirement: Retirement) {
        let hook = &self.0;
        if let Some(dimt) = hook.dimt.upgrade() {
            dimt.client
                .stream_request_retired(&dimt, hook.handle, &hook.context, retirement);
        }
    }
}

/// The transport of one target (DMF creates a CRT child per target when a
/// stream is configured, a RequestTarget child otherwise).
pub(crate) enum Transport<P: Platform, C: DimtClient<P>> {
    /// A streaming [`ContinuousRequestTarget`]; its embedded
    /// [`RequestTarget`] carries the single sends.
    Streaming(ContinuousRequestTarget<P, StreamHook<P, C>>),
    /// A plain [`RequestTarget`].
    Plain(RequestTarget<P>),
}

impl<P: Platform, C: DimtClient<P>> Transport<P, C> {
    pub(crate) fn new(
        platform: &P,
        config: &ContinuousRequestTargetConfig,
        hook: StreamHook<P, C>,
        target: &Arc<P::IoTarget>,
        journal: &Journal<P>,
    ) -> Result<Self> {
        if config.continuous_request_count > 0 {
            let mut config = *config;
            // DIMT itself implements Automatic (after the Open callback).
            config.continuous_request_target_mode = StreamMode::Manual;
            let crt = ContinuousRequestTarget::new_in(platform, config, hook, journal.clone())?;
            crt.io_target_set(Arc::clone(target))?;
            Ok(Transport::Streaming(crt))
        } else {
            // The same request-target configuration a CRT gives its own
            // single sends: every field of it applies to plain targets too.
            let rt =
                RequestTarget::new_in(platform, config.request_target_config(), journal.clone())?;
            rt.io_target_set(Arc::clone(target))?;
            Ok(Transport::Plain(rt))
        }
    }

    /// The transport of single (non-stream) sends.
    pub(crate) fn single(&self) -> &RequestTarget<P> {
        match self {
            Transport::Streaming(crt) => crt.request_target(),
            Transport::Plain(rt) => rt,
        }
    }

    /// The stream; `STATUS_NOT_SUPPORTED` on a non-streaming target (DMF
    /// asserts).
    pub(crate) fn stream(&self) -> Result<&ContinuousRequestTarget<P, StreamHook<P, C>>> {
        match self {
            Transport::Streaming(crt) => Ok(crt),
            Transport::Plain(_) => Err(Status::NOT_SUPPORTED),
        }
    }

    /// Stops streaming (waiting); returns whether it was running, or
    /// stopped by the power policy with a restart pending for the next D0
    /// entry (the stop cancels that restart).
    pub(crate) fn stream_stop(&self) -> bool {
        match self {
            Transport::Streaming(crt) => {
                let running = crt.is_streaming() || crt.resumes_at_d0_entry();
                // A streaming transport has stream requests: `stop` is `Ok`.
                let _ = crt.stop();
                running
            }
            Transport::Plain(_) => false,
        }
    }

    /// While the client device is out of D0: leaves streaming stopped and
    /// has the next D0 entry restart it. `false` if the CRT's power policy
    /// would not restart it (no policy configured): the caller starts it.
    pub(crate) fn resume_at_d0_entry(&self) -> bool {
        match self {
            Transport::Streaming(crt) => crt.resume_at_d0_entry(),
            Transport::Plain(_) => false,
        }
    }

    /// Closes the transport: the target must be closed already.
    pub(crate) fn close(&self) {
        match self {
            Transport::Streaming(crt) => {
                crt.io_target_clear();
                crt.close();
            }
            Transport::Plain(rt) => {
                rt.io_target_clear();
                rt.close();
            }
        }
    }

    pub(crate) fn d0_exit(&self, target: PowerState) {
        if let Transport::Streaming(crt) = self {
            let _ = crt.d0_exit(target);
        }
    }

    pub(crate) fn d0_entry(&self, previous: PowerState) -> Result<()> {
        match self {
            Transport::Streaming(crt) => crt.d0_entry(previous),
            Transport::Plain(_) => Ok(()),
        }
    }
}

/// The target's PnP notifications, forwarded to the module.
pub(crate) struct Events<P: Platform, C: DimtClient<P>> {
    pub(crate) dimt: Weak<Dimt<P, C>>,
    pub(crate) record: Weak<Record<P, C>>,
}

impl<P: Platform, C: DimtClient<P>> TargetEvents for Events<P, C> {
    fn query_remove(&self) -> Status {
        match (self.dimt.upgrade(), self.record.upgrade()) {
            (Some(dimt), Some(record)) => dimt.query_remove(&record),
            _ => Status::SUCCESS,
        }
    }

    fn remove_canceled(&self) {
        if let (Some(dimt), Some(record)) = (self.dimt.upgrade(), self.record.upgrade()) {
            dimt.remove_canceled(&record);
        }
    }

    fn remove_complete(&self) {
        if let (Some(dimt), Some(record)) = (self.dimt.upgrade(), self.record.upgrade()) {
            dimt.remove_complete(&record);
        }
    }
}

impl<P: Platform, C: DimtClient<P>> Dimt<P, C> {
    /// Counts `record` as open (once).
    pub(crate) fn count_open(&self, record: &Record<P, C>) {
        if !record.counted.swap(true, Ordering::AcqRel) {
            self.open_targets.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Uncounts `record` (once).
    pub(crate) fn uncount_open(&self, record: &Record<P, C>) {
        if record.counted.swap(false, Ordering::AcqRel) {
            self.open_targets.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn untrack(&self, record: &Record<P, C>) {
        let removed = self.table.lock().remove(record.handle);
        drop(removed);
    }

    fn notify(&self, record: &Record<P, C>, state: TargetStateType) -> Status {
        transition!(
            record.journal,
            DEBUG,
            "DIMT: state change",
            ?state,
            target_handle = record.handle
        );
        *record.reported.lock() = state;
        match record.hook() {
            Some(hook) => self
                .client
                .on_state_change(self, record.handle, &hook.context, state),
            None => {
                debug_assert!(false, "a state change before the target opened");
                Status::SUCCESS
            }
        }
    }

    /// An interface instance arrived (`…InitializeIoTargetIfNeeded`).
    pub(crate) fn interface_arrived(&self, link: &str) {
        if self.table.lock().find(link).is_some() {
            tracing::trace!(link, "DIMT: arrival of a tracked link ignored");
            return;
        }
        if self.declined.lock().iter().any(|l| l == link) {
            tracing::trace!(link, "DIMT: repeated arrival of a declined link ignored");
            return;
        }
        if !self.client.on_pnp_notification(self, link) {
            transition!(
                self.journal,
                DEBUG,
                "DIMT: client declined the interface",
                link
            );
            self.declined.lock().push(alloc::string::String::from(link));
            return;
        }
        let Ok(handle) = self.table.lock().insert(link, None) else {
            return;
        };
        if let Err(status) = self.open_target(handle, link) {
            transition!(
                self.journal,
                DEBUG,
                "DIMT: target not opened",
                ?status,
                link
            );
        }
    }

    fn open_target(&self, handle: TargetHandle, link: &str) -> Result<()> {
        let record = match Record::new(
            &self.platform,
            handle,
            link,
            self.journal.about(handle.to_u64()),
        ) {
            Ok(record) => Arc::new(record),
            Err(status) => {
                drop(self.table.lock().remove(handle));
                return Err(status);
            }
        };
        // Held before the record is published: a transition that finds it
        // in the table waits until the arrival is done.
        let mut state = record.transitions.lock();
        if let Some(slot) = self.table.lock().get_mut(handle) {
            *slot = Some(Arc::clone(&record));
        }
        let events = Arc::new(Events {
            dimt: self.this.clone(),
            record: Arc::downgrade(&record),
        });
        let params = dmf_wdf::OpenParams {
            symbolic_link: link,
            open_mode: self.config.open_mode,
            share_access: self.config.share_access,
        };
        if let Err(status) = record.io_target.open(&params, events) {
            state.phase = Phase::Closed;
            drop(state);
            self.untrack(&record);
            return Err(status);
        }
        let hook = Arc::new(TargetHook {
            dimt: self.this.clone(),
            handle,
            context: self.client.target_context(self, handle, link),
        });
        *record.hook.lock() = Some(Arc::clone(&hook));
        let hook = StreamHook(hook);
        let crt_config = &self.config.continuous_request_target_module_config;
        let transport = match Transport::new(
            &self.platform,
            crt_config,
            hook,
            &record.io_target,
            &record.journal,
        ) {
            Ok(transport) => Arc::new(transport),
            Err(status) => {
                state.phase = Phase::Closed;
                // Released first: the close waits for a target callback
                // that may be waiting for the lock.
                drop(state);
                record.io_target.close();
                self.untrack(&record);
                return Err(status);
            }
        };
        record.gate.open(Arc::clone(&transport));
        self.count_open(&record);
        state.phase = Phase::Open;
        transition!(
            record.journal,
            DEBUG,
            "DIMT: target opened",
            target_handle = handle,
            link
        );
        let status = self.notify(&record, TargetStateType::Open);
        if !status.is_success() {
            transition!(
                record.journal,
                DEBUG,
                "DIMT: client vetoed the open",
                ?status,
                target_handle = handle
            );
            self.destroy(&record, state, Report::Nothing);
            return Err(status);
        }
        if self.automatic() {
            if let Err(status) = transport.stream().and_then(|crt| crt.start()) {
                transition!(
                    record.journal,
                    WARN,
                    "DIMT: automatic stream start failed",
                    ?status,
                    target_handle = handle
                );
                self.destroy(&record, state, Report::Close);
                return Err(status);
            }
        }
        Ok(())
    }

    pub(crate) fn automatic(&self) -> bool {
        let crt = &self.config.continuous_request_target_module_config;
        crt.continuous_request_count > 0
            && crt.continuous_request_target_mode == StreamMode::Automatic
    }

    /// Destroys a record (`…TargetDestroy`): tells the client first (PR
    /// #274), then stops streaming, closes the target (cancelling every
    /// request, synchronous ones included), ends the method rundown, closes
    /// the transport, and untracks the record (its handle becomes stale).
    ///
    /// Takes the transition lock held by the caller: marks the record
    /// `Closing` and reports `Close` under it, then releases it for the slow
    /// part (see the module's locking discipline).
    pub(crate) fn destroy(
        &self,
        record: &Arc<Record<P, C>>,
        mut state: Transition<'_, P>,
        report: Report,
    ) {
        state.phase = Phase::Closing;
        if report == Report::Close {
            self.notify(record, TargetStateType::Close);
        }
        drop(state);
        if let Some(transport) = record.transport() {
            transport.stream_stop();
        }
        record.io_target.close();
        let transport = record.gate.close();
        self.uncount_open(record);
        if let Some(transport) = transport {
            transport.close();
            drop(transport);
        }
        record.transitions.lock().phase = Phase::Closed;
        self.untrack(record);
        transition!(
            record.journal,
            DEBUG,
            "DIMT: target destroyed",
            target_handle = record.handle
        );
    }

    /// `EvtIoTargetQueryRemove`.
    pub(crate) fn query_remove(&self, record: &Arc<Record<P, C>>) -> Status {
        let mut state = record.transitions.lock();
        let decision = decide(state.phase, Event::QueryRemove);
        if decision == Decision::CloseForQueryRemove {
            transition!(
                record.journal,
                DEBUG,
                "DIMT: query-remove while closing: target closed for query-remove",
                target_handle = record.handle
            );
            record.io_target.close_for_query_remove();
            return Status::SUCCESS;
        }
        if decision != Decision::QueryRemove {
            // Closed, or a duplicate query-remove.
            transition!(
                record.journal,
                DEBUG,
                "DIMT: query-remove ignored",
                phase = state.phase,
                target_handle = record.handle
            );
            return Status::SUCCESS;
        }
        let status = self.notify(record, TargetStateType::QueryRemove);
        if !status.is_success() {
            state.query_remove_vetoed = true;
            transition!(
                record.journal,
                DEBUG,
                "DIMT: client vetoed query-remove",
                ?status,
                target_handle = record.handle
            );
            return status;
        }
        let transport = record.transport();
        let was_running = transport.as_ref().is_some_and(|t| t.stream_stop());
        // Close before waiting for the methods in progress: this cancels a
        // synchronous send blocked on the target (see "A blocked synchronous send cannot hold up query-remove" in `docs/dmf-differences.md`).
        record.io_target.close_for_query_remove();
        record.gate.suspend();
        if let Some(t) = &transport {
            // A `stream_start` that raced with the stop above.
            t.stream_stop();
        }
        self.uncount_open(record);
        state.phase = Phase::QueryRemoved;
        state.resume_streaming = was_running;
        transition!(
            record.journal,
            DEBUG,
            "DIMT: target closed for query-remove",
            target_handle = record.handle
        );
        Status::SUCCESS
    }

    /// `EvtIoTargetRemoveCanceled`.
    pub(crate) fn remove_canceled(&self, record: &Arc<Record<P, C>>) {
        let mut state = record.transitions.lock();
        match decide(state.phase, Event::RemoveCanceled) {
            Decision::ForgetVeto => {
                // After a veto (ours or another driver's): nothing to undo,
                // and DMF reports nothing.
                state.query_remove_vetoed = false;
            }
            Decision::Reopen => match record.io_target.reopen() {
                Err(status) => {
                    // Do not keep a zombie record; report Close (see
                    // "No zombie record after a failed reopen" in `docs/dmf-differences.md`).
                    transition!(
                        record.journal,
                        WARN,
                        "DIMT: reopen after remove-cancel failed",
                        ?status,
                        target_handle = record.handle
                    );
                    self.destroy(record, state, Report::Close);
                }
                Ok(()) => {
                    let transport = record.transport();
                    // The device left D0 while the target was closed, so the
                    // D0 exit never reached it: apply it now, before methods
                    // work again (the CRT's power policy, e.g. the purge).
                    // `forward_d0` takes this record's lock too, so a D0 exit
                    // or entry either saw the record open (after this) or
                    // left it to this check.
                    let out_of_d0 = self.out_of_d0();
                    if let (Some(power), Some(t)) = (out_of_d0, &transport) {
                        t.d0_exit(power);
                    }
                    record.gate.resume();
                    self.count_open(record);
                    state.phase = Phase::Open;
                    state.query_remove_vetoed = false;
                    let resume = core::mem::take(&mut state.resume_streaming);
                    if let (true, Some(t)) = (resume, &transport) {
                        if out_of_d0.is_some() && t.resume_at_d0_entry() {
                            transition!(
                                record.journal,
                                DEBUG,
                                "DIMT: stream restart after remove-cancel waits for D0 entry",
                                target_handle = record.handle
                            );
                        } else if let Err(status) = t.stream().and_then(|crt| crt.start()) {
                            transition!(
                                record.journal,
                                WARN,
                                "DIMT: stream restart after remove-cancel failed",
                                ?status,
                                target_handle = record.handle
                            );
                        }
                    }
                    drop(transport);
                    transition!(
                        record.journal,
                        DEBUG,
                        "DIMT: target reopened",
                        target_handle = record.handle
                    );
                    self.notify(record, TargetStateType::QueryRemoveCancelled);
                }
            },
            _ => {}
        }
    }

    /// `EvtIoTargetRemoveComplete`.
    pub(crate) fn remove_complete(&self, record: &Arc<Record<P, C>>) {
        let state = record.transitions.lock();
        self.retire_if(record, state, Event::RemoveComplete);
    }

    /// Carries out `event` on a record if [`decide`] destroys it for that
    /// event (with the transition lock `state` held).
    fn retire_if(&self, record: &Arc<Record<P, C>>, state: Transition<'_, P>, event: Event) {
        if let Decision::Destroy { gone, report } = decide(state.phase, event) {
            if gone {
                self.notify(record, TargetStateType::QueryRemoveComplete);
            }
            self.destroy(record, state, report);
        }
    }

    /// An interface instance was removed (`…UninitializeIoTargetIfNeeded`).
    pub(crate) fn interface_removed(&self, link: &str) {
        self.declined.lock().retain(|l| l != link);
        let record = {
            let table = self.table.lock();
            table
                .find(link)
                .and_then(|h| table.get(h))
                .and_then(|r| r.clone())
        };
        if let Some(record) = record {
            self.close_if_tracked(&record, Event::InterfaceRemoved);
        }
    }

    /// Closes an open or query-removed record, reporting `Close`, on
    /// [`Event::InterfaceRemoved`] or [`Event::Unregister`].
    pub(crate) fn close_if_tracked(&self, record: &Arc<Record<P, C>>, event: Event) {
        let state = record.transitions.lock();
        self.retire_if(record, state, event);
    }

    /// Forwards a power transition to every open target's CRT.
    pub(crate) fn forward_d0(
        &self,
        exit: Option<PowerState>,
        entry: Option<PowerState>,
    ) -> Result<()> {
        let mut first = Ok(());
        for record in self.records() {
            let state = record.transitions.lock();
            if decide(state.phase, Event::PowerTransition) != Decision::ForwardPower {
                continue;
            }
            if let Some(transport) = record.transport() {
                if let Some(target) = exit {
                    transport.d0_exit(target);
                }
                if let Some(previous) = entry {
                    let r = transport.d0_entry(previous);
                    if first.is_ok() {
                        first = r;
                    }
                }
            }
            drop(state);
        }
        first
    }
}
