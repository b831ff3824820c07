//! The module: [`DeviceInterfaceMultipleTarget`] (the owner) and [`Dimt`]
//! (the shared module every callback and thread uses), with DMF's methods.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dmf_continuous_request_target::{OutputBuffer, StreamStatistics};
use dmf_request_target::{
    CancelId, Completion, OwnedCompletion, ReuseDeletion, ReuseId, SendBuffer, SendError,
    SendParams, Sender, SenderTarget,
};
use dmf_wdf::recorder::Journal;
use dmf_wdf::{
    transition, DeviceCallbacks, Guid, InterfaceNotificationHandler, Lock, Notification, Platform,
    PowerState, RawBuffer, Result, Status, WaitLock,
};

use crate::config::{DeviceInterfaceMultipleTargetConfig, PnpRegisterWhen};
use crate::lifecycle::Event;
use crate::record::{Record, TargetHook, Transport};
use crate::target_table::TargetTable;
use crate::{DimtClient, TargetHandle, TargetStateType};

/// `DMF_DeviceInterfaceMultipleTarget`, owned: creating it creates the
/// module, dropping it closes every target and unregisters.
///
/// It dereferences to [`Dimt`], which holds every method; callbacks receive
/// `&Dimt`, and threads can share it through [`module`](Self::module).
///
/// See the [crate documentation](crate) for the overview and an example.
pub struct DeviceInterfaceMultipleTarget<P: Platform, C: DimtClient<P> = ()> {
    dimt: Arc<Dimt<P, C>>,
}

/// The tracked targets (a reserved slot holds `None` while its arrival runs).
type Table<P, C> = TargetTable<Option<Arc<Record<P, C>>>>;

/// The module shared by the owner, the PnP callbacks and the client's
/// threads: DMF's `DMFMODULE` of a DeviceInterfaceMultipleTarget, with its
/// methods.
///
/// Every per-target method takes a [`TargetHandle`] and is gated by the
/// target's rundown: on a handle whose target is query-removed, closing or
/// gone (stale, even if its slot was reused) it fails with
/// `STATUS_INVALID_DEVICE_STATE` (or returns `false`), never touching freed
/// state (see "Stale target handles are refused" in `docs/dmf-differences.md`).
pub struct Dimt<P: Platform, C: DimtClient<P>> {
    /// The module's in-flight recorder; each target's transport records
    /// there too, about its target.
    pub(crate) journal: Journal<P>,
    pub(crate) platform: P,
    pub(crate) config: DeviceInterfaceMultipleTargetConfig,
    pub(crate) client: C,
    pub(crate) this: Weak<Dimt<P, C>>,
    pub(crate) table: P::Lock<Table<P, C>>,
    /// Links the client declined (`on_pnp_notification` returned false) and
    /// that have not been removed since: a repeated arrival of one of them
    /// is ignored instead of asking the client again (PnP may report an
    /// arrival twice).
    pub(crate) declined: P::Lock<Vec<String>>,
    registration: P::Lock<Option<P::Notification>>,
    /// Serialises registration and unregistration (a sleeping lock: both
    /// block, and unregistration closes every target).
    lifecycle: P::WaitLock<()>,
    pub(crate) open_targets: AtomicUsize,
    shut_down: AtomicBool,
    /// `Some(target state)` while the client device is out of D0 (from a D0
    /// exit to the next D0 entry), for targets that were closed for a
    /// query-remove when the transition went by.
    out_of_d0: P::Lock<Option<PowerState>>,
}

impl<P: Platform, C: DimtClient<P>> core::fmt::Debug for Dimt<P, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dimt")
            .field("guid", &self.config.device_interface_multiple_target_guid)
            .field("targets", &self.target_count())
            .field("open_targets", &self.open_target_count())
            .field("registered", &self.is_registered())
            .finish()
    }
}

impl<P: Platform, C: DimtClient<P>> core::fmt::Debug for DeviceInterfaceMultipleTarget<P, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&*self.dimt, f)
    }
}

/// The interface-notification handler of a module.
struct Notify<P: Platform, C: DimtClient<P>> {
    dimt: Weak<Dimt<P, C>>,
}

impl<P: Platform, C: DimtClient<P>> InterfaceNotificationHandler for Notify<P, C> {
    fn interface_arrived(&self, symbolic_link: &str) {
        if let Some(dimt) = self.dimt.upgrade() {
            transition!(
                dimt.journal,
                DEBUG,
                "DIMT: interface arrived",
                link = symbolic_link
            );
            dimt.interface_arrived(symbolic_link);
        }
    }

    fn interface_removed(&self, symbolic_link: &str) {
        if let Some(dimt) = self.dimt.upgrade() {
            transition!(
                dimt.journal,
                DEBUG,
                "DIMT: interface removed",
                link = symbolic_link
            );
            dimt.interface_removed(symbolic_link);
        }
    }
}

/// A method call in progress on one target: holds a reference on its
/// rundown (released on drop) and its transport.
struct Gate<P: Platform, C: DimtClient<P>> {
    record: Arc<Record<P, C>>,
    /// `Some` until the drop (which drops it before leaving the gate).
    transport: Option<Arc<Transport<P, C>>>,
}

impl<P: Platform, C: DimtClient<P>> Gate<P, C> {
    fn transport(&self) -> &Transport<P, C> {
        self.transport.as_deref().expect("set until drop")
    }
}

impl<P: Platform, C: DimtClient<P>> Drop for Gate<P, C> {
    fn drop(&mut self) {
        // The transport clone must be gone before the reference is released
        // (see `TargetGate`).
        drop(self.transport.take());
        self.record.gate.leave();
    }
}

/// A reference on a target taken with [`Dimt::target_guard`]: while it
/// lives, the target's methods keep working and its query-remove / removal
/// waits (DMF `TargetReference` … `TargetDereference` as a guard).
///
/// It is the target's [`Sender`]: every single-request method, with
/// explicit completion callbacks ([`completion`](Self::completion) is the
/// one that reaches [`DimtClient::send_completed`]).
#[must_use = "the reference is released when the guard is dropped"]
pub struct TargetGuard<P: Platform, C: DimtClient<P>> {
    gate: Gate<P, C>,
    hook: Arc<TargetHook<P, C>>,
}

impl<P: Platform, C: DimtClient<P>> TargetGuard<P, C> {
    /// The target's handle.
    pub fn handle(&self) -> TargetHandle {
        self.gate.record.handle
    }

    /// The target's I/O target (DMF `Get`), valid while the guard lives.
    pub fn io_target(&self) -> &Arc<P::IoTarget> {
        &self.gate.record.io_target
    }

    /// The client's context of the target
    /// ([`DimtClient::target_context`]).
    pub fn context(&self) -> &C::Target {
        &self.hook.context
    }

    /// The completion callback of the target's safe sends that calls
    /// [`DimtClient::send_completed`] with the target's handle and context
    /// (what [`Dimt::send`] uses). Cloning it does not allocate.
    pub fn completion(&self) -> OwnedCompletion<P> {
        Arc::clone(&self.hook) as OwnedCompletion<P>
    }

    /// The completion callback of the target's raw sends that calls
    /// [`DimtClient::raw_send_completed`] (what [`Dimt::send_raw`] uses).
    pub fn raw_completion(&self) -> Completion {
        Arc::clone(&self.hook) as Completion
    }
}

/// The target's single sends go through its request target (the streaming
/// target's embedded one, or its plain one).
impl<P: Platform, C: DimtClient<P>> Sender<P> for TargetGuard<P, C> {
    fn sender_target(&self) -> SenderTarget<'_, P> {
        SenderTarget::new(self.gate.transport().single())
    }
}

impl<P: Platform, C: DimtClient<P>> core::fmt::Debug for TargetGuard<P, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TargetGuard")
            .field("target", &self.gate.record.handle)
            .finish()
    }
}

impl<P: Platform, C: DimtClient<P>> DeviceInterfaceMultipleTarget<P, C> {
    /// Creates the module (DMF `DMF_DeviceInterfaceMultipleTarget_Create`).
    /// With [`PnpRegisterWhen::Create`] it registers for interface
    /// notifications now (targets already present open before this
    /// returns, or right after, on the PnP thread); otherwise registration
    /// waits for the client device's callbacks ([`device_callbacks`](Self::device_callbacks)).
    ///
    /// Errors: `STATUS_INVALID_PARAMETER` for an invalid CRT configuration
    /// (see [`ContinuousRequestTargetConfig::validate`](dmf_continuous_request_target::ContinuousRequestTargetConfig::validate));
    /// the platform's failures. Passive level.
    pub fn new(
        platform: &P,
        config: DeviceInterfaceMultipleTargetConfig,
        client: C,
    ) -> Result<Self> {
        let platform = platform.clone();
        if let Err(problem) = config.continuous_request_target_module_config.validate() {
            tracing::debug!(problem, "DIMT: invalid CRT configuration");
            return Err(Status::INVALID_PARAMETER);
        }
        let lifecycle = platform.create_wait_lock(())?;
        let journal = Journal::new(
            &platform,
            format_args!("DIMT {}", config.device_interface_multiple_target_guid),
        );
        let dimt = Arc::new_cyclic(|this| Dimt {
            journal,
            platform,
            config,
            client,
            this: this.clone(),
            table: P::Lock::new(TargetTable::new()),
            declined: P::Lock::new(Vec::new()),
            registration: P::Lock::new(None),
            lifecycle,
            open_targets: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
            out_of_d0: P::Lock::new(None),
        });
        let module = DeviceInterfaceMultipleTarget { dimt };
        transition!(
            module.dimt.journal,
            DEBUG,
            "DIMT: created",
            option = config.module_open_option
        );
        if config.module_open_option == PnpRegisterWhen::Create {
            module.dimt.register()?;
        }
        Ok(module)
    }

    /// The shared module, for threads and for code that outlives a borrow.
    /// It stays usable after the owner is dropped, with no targets.
    pub fn module(&self) -> Arc<Dimt<P, C>> {
        Arc::clone(&self.dimt)
    }

    /// The client device callbacks of this module (DMF hooks its parent's
    /// PrepareHardware / ReleaseHardware / D0Entry / D0Exit): register them
    /// with the client device. They hold the module weakly and do nothing
    /// once it is dropped.
    ///
    /// * [`PnpRegisterWhen::PrepareHardware`]: register in
    ///   `prepare_hardware`; close every target and unregister in
    ///   `release_hardware`.
    /// * [`PnpRegisterWhen::D0Entry`]: register in `d0_entry`; close every
    ///   target and unregister in `d0_exit`.
    /// * Otherwise (and for `PrepareHardware` on D0 transitions), D0
    ///   exit/entry go to every open target's CRT, which applies its own
    ///   power policy (`cancel_and_resend_request_in_d0_callbacks`,
    ///   `purge_and_start_target_in_d0_callbacks`).
    pub fn device_callbacks(&self) -> DimtDeviceCallbacks<P, C> {
        DimtDeviceCallbacks {
            dimt: Arc::downgrade(&self.dimt),
        }
    }
}

impl<P: Platform, C: DimtClient<P>> core::ops::Deref for DeviceInterfaceMultipleTarget<P, C> {
    type Target = Dimt<P, C>;

    fn deref(&self) -> &Dimt<P, C> {
        &self.dimt
    }
}

impl<P: Platform, C: DimtClient<P>> Drop for DeviceInterfaceMultipleTarget<P, C> {
    /// Closes the module: unregisters and closes every target (`Close`
    /// callbacks). Passive level.
    fn drop(&mut self) {
        self.dimt.shut_down.store(true, Ordering::Release);
        self.dimt.unregister_and_close_all();
        transition!(self.dimt.journal, DEBUG, "DIMT: closed");
    }
}

/// The module's client device callbacks ([`DeviceInterfaceMultipleTarget::device_callbacks`]).
pub struct DimtDeviceCallbacks<P: Platform, C: DimtClient<P>> {
    dimt: Weak<Dimt<P, C>>,
}

impl<P: Platform, C: DimtClient<P>> Clone for DimtDeviceCallbacks<P, C> {
    fn clone(&self) -> Self {
        DimtDeviceCallbacks {
            dimt: self.dimt.clone(),
        }
    }
}

impl<P: Platform, C: DimtClient<P>> core::fmt::Debug for DimtDeviceCallbacks<P, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DimtDeviceCallbacks")
            .field("alive", &(self.dimt.strong_count() > 0))
            .finish()
    }
}

impl<P: Platform, C: DimtClient<P>> DimtDeviceCallbacks<P, C> {
    fn live(&self) -> Option<Arc<Dimt<P, C>>> {
        self.dimt
            .upgrade()
            .filter(|d| !d.shut_down.load(Ordering::Acquire))
    }
}

impl<P: Platform, C: DimtClient<P>> DeviceCallbacks for DimtDeviceCallbacks<P, C> {
    fn prepare_hardware(&self) -> Result<()> {
        match self.live() {
            Some(d) if d.config.module_open_option == PnpRegisterWhen::PrepareHardware => {
                d.register()
            }
            _ => Ok(()),
        }
    }

    fn release_hardware(&self) -> Result<()> {
        if let Some(d) = self.live() {
            if d.config.module_open_option == PnpRegisterWhen::PrepareHardware {
                d.unregister_and_close_all();
            }
        }
        Ok(())
    }

    fn d0_entry(&self, previous: PowerState) -> Result<()> {
        let Some(d) = self.live() else {
            return Ok(());
        };
        transition!(d.journal, DEBUG, "DIMT: D0 entry", ?previous);
        // Before the targets are visited (see `Dimt::remove_canceled`).
        *d.out_of_d0.lock() = None;
        match d.config.module_open_option {
            PnpRegisterWhen::D0Entry => d.register(),
            _ => d.forward_d0(None, Some(previous)),
        }
    }

    fn d0_exit(&self, target: PowerState) -> Result<()> {
        let Some(d) = self.live() else {
            return Ok(());
        };
        transition!(d.journal, DEBUG, "DIMT: D0 exit", ?target);
        // Before the targets are visited (see `Dimt::remove_canceled`).
        *d.out_of_d0.lock() = Some(target);
        match d.config.module_open_option {
            PnpRegisterWhen::D0Entry => d.unregister_and_close_all(),
            _ => {
                let _ = d.forward_d0(Some(target), None);
            }
        }
        Ok(())
    }
}

impl<P: Platform, C: DimtClient<P>> Dimt<P, C> {
    // ------------------------------------------------------------------
    // registration
    // ------------------------------------------------------------------

    /// Registers for interface notifications (existing interfaces arrive at
    /// once). Idempotent.
    fn register(&self) -> Result<()> {
        let _lifecycle = self.lifecycle.lock();
        if self.registration.lock().is_some() {
            return Ok(());
        }
        let handler = Arc::new(Notify {
            dimt: self.this.clone(),
        });
        let guid = self.config.device_interface_multiple_target_guid;
        let registration = self
            .platform
            .register_interface_notification(&guid, handler)?;
        transition!(
            self.journal,
            DEBUG,
            "DIMT: registered for interface notifications"
        );
        let previous = self.registration.lock().replace(registration);
        debug_assert!(previous.is_none());
        drop(previous);
        Ok(())
    }

    /// Unregisters (no notification runs afterwards), then closes every
    /// tracked target (`Close` callbacks) (`…NotificationUnregister`).
    fn unregister_and_close_all(&self) {
        let _lifecycle = self.lifecycle.lock();
        let registration = self.registration.lock().take();
        // A new registration reports the existing interfaces again: the
        // client is asked again about the ones it declined.
        self.declined.lock().clear();
        if let Some(registration) = registration {
            registration.unregister();
            transition!(
                self.journal,
                DEBUG,
                "DIMT: unregistered from interface notifications"
            );
        }
        for record in self.records() {
            self.close_if_tracked(&record, Event::Unregister);
        }
    }

    pub(crate) fn records(&self) -> Vec<Arc<Record<P, C>>> {
        self.table
            .lock()
            .iter()
            .filter_map(|(_, _, r)| r.clone())
            .collect()
    }

    /// The state the client device went to at its last D0 exit, while it
    /// has not re-entered D0 since; `None` in D0.
    pub(crate) fn out_of_d0(&self) -> Option<PowerState> {
        *self.out_of_d0.lock()
    }

    /// Whether interface notifications are registered.
    pub fn is_registered(&self) -> bool {
        self.registration.lock().is_some()
    }

    // ------------------------------------------------------------------
    // introspection
    // ------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &DeviceInterfaceMultipleTargetConfig {
        &self.config
    }

    /// The client.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// Where the module records its transitions: one in-flight recorder
    /// for the module and every target (each target's records carry its
    /// handle as their subject: [`Recorder::write_subject`](dmf_wdf::recorder::Recorder::write_subject)
    /// with [`TargetHandle::to_u64`] picks them out).
    pub fn journal(&self) -> &Journal<P> {
        &self.journal
    }

    /// `DMF_DeviceInterfaceMultipleTarget_GuidGet`: the interface class
    /// this module follows. Any level; never fails.
    pub fn guid_get(&self) -> Guid {
        self.config.device_interface_multiple_target_guid
    }

    /// Targets tracked (open, query-removed, or in a transition).
    pub fn target_count(&self) -> usize {
        self.table.lock().len()
    }

    /// Targets open now (counted once per target): DMF's
    /// `NumberOfTargetsOpened`.
    pub fn open_target_count(&self) -> usize {
        self.open_targets.load(Ordering::Acquire)
    }

    /// Handles of the targets tracked now.
    pub fn targets(&self) -> Vec<TargetHandle> {
        self.table
            .lock()
            .iter()
            .filter(|(_, _, r)| r.is_some())
            .map(|(h, _, _)| h)
            .collect()
    }

    /// The symbolic link a tracked target was opened with.
    pub fn symbolic_link(&self, target: TargetHandle) -> Result<String> {
        let table = self.table.lock();
        match table.get(target) {
            Some(Some(record)) => Ok(record.link.clone()),
            _ => Err(Status::INVALID_DEVICE_STATE),
        }
    }

    /// The handle of the target tracked for `symbolic_link`.
    pub fn find(&self, symbolic_link: &str) -> Option<TargetHandle> {
        let table = self.table.lock();
        let handle = table.find(symbolic_link)?;
        table.get(handle)?.as_ref().map(|_| handle)
    }

    // ------------------------------------------------------------------
    // gate
    // ------------------------------------------------------------------

    fn gate(&self, target: TargetHandle) -> Result<Gate<P, C>> {
        let record = match self.table.lock().get(target) {
            Some(Some(record)) => Arc::clone(record),
            _ => return Err(Status::INVALID_DEVICE_STATE),
        };
        let transport = record.gate.enter()?;
        Ok(Gate {
            record,
            transport: Some(transport),
        })
    }

    // ------------------------------------------------------------------
    // methods
    // ------------------------------------------------------------------

    /// `DMF_DeviceInterfaceMultipleTarget_Get`: the target's I/O target,
    /// for direct use (for example to purge it in a `QueryRemove`
    /// callback). The `Arc` keeps the object alive, not the target open:
    /// hold a [`target_guard`](Self::target_guard) across operations that
    /// must not race with removal. Any level.
    pub fn get(&self, target: TargetHandle) -> Result<Arc<P::IoTarget>> {
        let gate = self.gate(target)?;
        Ok(Arc::clone(&gate.record.io_target))
    }

    /// What the client was last told about the target
    /// ([`DimtClient::on_state_change`]): `Open`, `QueryRemove`,
    /// `QueryRemoveCancelled`, `QueryRemoveComplete` or `Close`
    /// (`Invalid` while its arrival runs, before `Open`). A state change
    /// in progress is already reported here. Errors:
    /// `STATUS_INVALID_DEVICE_STATE` for a handle whose target is gone
    /// (stale). Any level.
    pub fn target_state(&self, target: TargetHandle) -> Result<TargetStateType> {
        match self.table.lock().get(target) {
            Some(Some(record)) => Ok(*record.reported.lock()),
            _ => Err(Status::INVALID_DEVICE_STATE),
        }
    }

    /// `DMF_DeviceInterfaceMultipleTarget_Send`: sends a request with owned
    /// buffers to the target asynchronously ([`Sender::send`] of its
    /// [`target_guard`](Self::target_guard)); the completion, with the
    /// buffers, goes to [`DimtClient::send_completed`] with the target's
    /// handle and context. Closing or query-removing the target cancels
    /// the request. Any level.
    ///
    /// Errors (the buffers come back in the [`SendError`]):
    /// `STATUS_INVALID_DEVICE_STATE` (target not open, stale handle), and
    /// those of [`Sender::send`].
    pub fn send(
        &self,
        target: TargetHandle,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
        params: SendParams,
        client_context: usize,
    ) -> core::result::Result<(), SendError<P>> {
        let guard = match self.target_guard(target) {
            Ok(guard) => guard,
            Err(status) => return Err(SendError::new(status, input, output)),
        };
        guard.send(
            input,
            output,
            params,
            Some(guard.completion()),
            client_context,
        )
    }

    /// `DMF_DeviceInterfaceMultipleTarget_SendEx`: as [`send`](Self::send),
    /// returning an id for [`cancel`](Self::cancel). Any level.
    pub fn send_ex(
        &self,
        target: TargetHandle,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
        params: SendParams,
        client_context: usize,
    ) -> core::result::Result<CancelId, SendError<P>> {
        let guard = match self.target_guard(target) {
            Ok(guard) => guard,
            Err(status) => return Err(SendError::new(status, input, output)),
        };
        guard.send_ex(
            input,
            output,
            params,
            Some(guard.completion()),
            client_context,
        )
    }

    /// `DMF_DeviceInterfaceMultipleTarget_ReuseSend`: sends the reusable
    /// request `id`, as [`send_ex`](Self::send_ex).
    /// `STATUS_OBJECTID_NOT_FOUND` if the id is unknown or busy. Gated like
    /// every method (see [Reusable requests are gated](crate#differences-from-dmf)).
    /// Any level.
    pub fn reuse_send(
        &self,
        target: TargetHandle,
        id: ReuseId,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
        params: SendParams,
        client_context: usize,
    ) -> core::result::Result<CancelId, SendError<P>> {
        let guard = match self.target_guard(target) {
            Ok(guard) => guard,
            Err(status) => return Err(SendError::new(status, input, output)),
        };
        guard.reuse_send(
            id,
            input,
            output,
            params,
            Some(guard.completion()),
            client_context,
        )
    }

    /// [`send`](Self::send) with raw buffers ([`Sender::send_raw`]); the
    /// completion goes to [`DimtClient::raw_send_completed`]. Any level.
    ///
    /// # Safety
    ///
    /// As [`Sender::send_raw`]: on `Ok`, the buffers stay valid (and
    /// `output` untouched by others) until the completion callback has
    /// returned.
    pub unsafe fn send_raw(
        &self,
        target: TargetHandle,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        client_context: usize,
    ) -> Result<()> {
        let guard = self.target_guard(target)?;
        let callback = Some(guard.raw_completion());
        // SAFETY: forwarded contract.
        unsafe { guard.send_raw(input, output, params, callback, client_context) }
    }

    /// [`send_ex`](Self::send_ex) with raw buffers ([`Sender::send_ex_raw`]);
    /// the completion goes to [`DimtClient::raw_send_completed`]. Any level.
    ///
    /// # Safety
    ///
    /// As [`send_raw`](Self::send_raw).
    pub unsafe fn send_ex_raw(
        &self,
        target: TargetHandle,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        client_context: usize,
    ) -> Result<CancelId> {
        let guard = self.target_guard(target)?;
        let callback = Some(guard.raw_completion());
        // SAFETY: forwarded contract.
        unsafe { guard.send_ex_raw(input, output, params, callback, client_context) }
    }

    /// [`reuse_send`](Self::reuse_send) with raw buffers
    /// ([`Sender::reuse_send_raw`]); the completion goes to
    /// [`DimtClient::raw_send_completed`]. Any level.
    ///
    /// # Safety
    ///
    /// As [`send_raw`](Self::send_raw).
    pub unsafe fn reuse_send_raw(
        &self,
        target: TargetHandle,
        id: ReuseId,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
        params: SendParams,
        client_context: usize,
    ) -> Result<CancelId> {
        let guard = self.target_guard(target)?;
        let callback = Some(guard.raw_completion());
        // SAFETY: forwarded contract.
        unsafe { guard.reuse_send_raw(id, input, output, params, callback, client_context) }
    }

    /// `DMF_DeviceInterfaceMultipleTarget_SendSynchronously`: sends a
    /// request and waits for it ([`Sender::send_synchronously`]); returns
    /// the bytes transferred. A query-remove or close of the target cancels
    /// it (`STATUS_CANCELLED`), so it never holds up removal (see
    /// [A blocked synchronous send cannot hold up query-remove](crate#differences-from-dmf)).
    /// Passive level only (it blocks).
    pub fn send_synchronously(
        &self,
        target: TargetHandle,
        input: &[u8],
        output: &mut [u8],
        params: SendParams,
    ) -> Result<usize> {
        self.target_guard(target)?
            .send_synchronously(input, output, params)
    }

    /// `DMF_DeviceInterfaceMultipleTarget_Cancel`: asks to cancel a send
    /// made with [`send_ex`](Self::send_ex) or [`reuse_send`](Self::reuse_send)
    /// ([`Sender::cancel`]). `true` if cancellation was initiated; `false`
    /// for an unknown or finished id, or a target that is not open. Any
    /// level.
    pub fn cancel(&self, target: TargetHandle, id: CancelId) -> bool {
        self.target_guard(target).is_ok_and(|g| g.cancel(id))
    }

    /// `DMF_DeviceInterfaceMultipleTarget_ReuseCreate`: creates a request
    /// for repeated [`reuse_send`](Self::reuse_send)s
    /// ([`Sender::reuse_create`]). Gated like every method; forgotten reuse
    /// ids are deleted when the target closes. Any level.
    pub fn reuse_create(&self, target: TargetHandle) -> Result<ReuseId> {
        self.target_guard(target)?.reuse_create()
    }

    /// `DMF_DeviceInterfaceMultipleTarget_ReuseDelete`: deletes a reusable
    /// request ([`Sender::reuse_delete`]; deferred to its completion if in
    /// flight). Gated like every method (DMF took no reference): on a
    /// target that is not open it fails with `STATUS_INVALID_DEVICE_STATE`,
    /// and the target's close deletes its reuse ids anyway. Any level.
    pub fn reuse_delete(&self, target: TargetHandle, id: ReuseId) -> Result<ReuseDeletion> {
        self.target_guard(target)?.reuse_delete(id)
    }

    /// Reusable requests alive on a target (diagnostics).
    pub fn reuse_count(&self, target: TargetHandle) -> Result<usize> {
        let gate = self.gate(target)?;
        Ok(gate.transport().single().reuse_count())
    }

    /// `DMF_DeviceInterfaceMultipleTarget_BufferPut`: gives back an output
    /// buffer the client kept from [`DimtClient::buffer_output`]. The buffer
    /// returns to its pool in every case (also on error). Errors:
    /// `STATUS_INVALID_DEVICE_STATE` (target not open),
    /// `STATUS_NOT_SUPPORTED` (not a streaming target). Any level.
    pub fn buffer_put(&self, target: TargetHandle, buffer: OutputBuffer<P>) -> Result<()> {
        let gate = match self.gate(target) {
            Ok(gate) => gate,
            Err(status) => {
                drop(buffer);
                return Err(status);
            }
        };
        match gate.transport().stream() {
            Ok(crt) => crt.buffer_put(buffer),
            Err(status) => {
                drop(buffer);
                Err(status)
            }
        }
    }

    /// `DMF_DeviceInterfaceMultipleTarget_StreamStart`: starts streaming to
    /// the target. Errors: `STATUS_INVALID_DEVICE_STATE` (not open, or
    /// already streaming), `STATUS_NOT_SUPPORTED` (not a streaming target),
    /// the CRT's start failure. Passive level.
    pub fn stream_start(&self, target: TargetHandle) -> Result<()> {
        let gate = self.gate(target)?;
        gate.transport().stream()?.start()
    }

    /// `DMF_DeviceInterfaceMultipleTarget_StreamStop`: stops streaming and
    /// waits for every stream request (DMF annotates it ≤DISPATCH but it
    /// blocks). DMF returns nothing; like the CRT's
    /// [`stop`](dmf_continuous_request_target::ContinuousRequestTarget::stop)
    /// this returns `Ok(())` whether or not the stream ran, and an error
    /// for what has no stream to stop: `STATUS_INVALID_DEVICE_STATE` for a
    /// target that is not open (or a stale handle), `STATUS_NOT_SUPPORTED`
    /// for a target without a stream. Passive level; not from a stream
    /// callback.
    pub fn stream_stop(&self, target: TargetHandle) -> Result<()> {
        let gate = self.gate(target)?;
        gate.transport().stream()?.stop()
    }

    /// Whether the target streams now: `false` once every stream request
    /// has retired on its own, after which
    /// [`stream_start`](Self::stream_start) works without a
    /// [`stream_stop`](Self::stream_stop) first.
    pub fn is_streaming(&self, target: TargetHandle) -> Result<bool> {
        let gate = self.gate(target)?;
        Ok(gate
            .transport()
            .stream()
            .is_ok_and(|crt| crt.is_streaming()))
    }

    /// The target's stream counters (see [`StreamStatistics`]).
    pub fn stream_statistics(&self, target: TargetHandle) -> Result<StreamStatistics> {
        let gate = self.gate(target)?;
        Ok(gate.transport().stream()?.statistics())
    }

    /// `DMF_DeviceInterfaceMultipleTarget_TargetReference`: keeps the
    /// target's methods working (and its query-remove / removal waiting)
    /// until [`target_dereference`](Self::target_dereference). Prefer
    /// [`target_guard`](Self::target_guard). Any level.
    pub fn target_reference(&self, target: TargetHandle) -> Result<()> {
        let record = match self.table.lock().get(target) {
            Some(Some(record)) => Arc::clone(record),
            _ => return Err(Status::INVALID_DEVICE_STATE),
        };
        record.gate.reference()?;
        record.client_refs.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// `DMF_DeviceInterfaceMultipleTarget_TargetDereference`: releases a
    /// reference taken by [`target_reference`](Self::target_reference).
    /// Unbalanced calls are ignored. Any level.
    pub fn target_dereference(&self, target: TargetHandle) {
        let record = match self.table.lock().get(target) {
            Some(Some(record)) => Arc::clone(record),
            _ => return,
        };
        let taken = record
            .client_refs
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            record.gate.leave();
        }
    }

    /// [`target_reference`](Self::target_reference) as a guard that
    /// dereferences when dropped.
    pub fn target_guard(&self, target: TargetHandle) -> Result<TargetGuard<P, C>> {
        let gate = self.gate(target)?;
        // Set before the gate first opened.
        let hook = gate.record.hook().ok_or(Status::INVALID_DEVICE_STATE)?;
        Ok(TargetGuard { gate, hook })
    }
}
