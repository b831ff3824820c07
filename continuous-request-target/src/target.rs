//! The public [`ContinuousRequestTarget`] type: streaming control, target
//! management, power policy and close; its non-streaming methods through
//! [`Sender`].

use alloc::sync::{Arc, Weak};
use core::sync::atomic::Ordering;

use dmf_request_target::{RequestTarget, Sender, SenderTarget};
use dmf_wdf::recorder::Journal;
use dmf_wdf::{transition, DeviceCallbacks, IoTarget, Lock, Platform, PowerState, Result, Status};

use crate::client::StreamClient;
use crate::config::{ContinuousRequestTargetConfig, StreamMode};
use crate::protocol::StreamState;
use crate::stats::StreamStatistics;
use crate::stream::Engine;
use crate::OutputBuffer;

/// `DMF_ContinuousRequestTarget`: keeps N requests streaming to an I/O
/// target, and sends single requests too.
///
/// See the [crate documentation](crate) for the overview, the example and
/// the DMF name table.
///
/// `P` is the platform, `H` the client's [`StreamClient`] (static dispatch;
/// `()` takes every default).
///
/// Dropping it closes it ([`close`](Self::close)): streaming is stopped and
/// every request in flight has completed when the drop returns.
pub struct ContinuousRequestTarget<P: Platform, H: StreamClient<P> = ()> {
    pub(crate) engine: Arc<Engine<P, H>>,
    pub(crate) single: RequestTarget<P>,
}

impl<P: Platform, H: StreamClient<P>> core::fmt::Debug for ContinuousRequestTarget<P, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ContinuousRequestTarget")
            .field("stream_state", &self.engine.stream_state())
            .field("active_stream_requests", &self.engine.active())
            .field("has_target", &self.engine.current_target().is_some())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The non-streaming methods (DMF's `…_Send`, `…_SendEx`,
/// `…_SendSynchronously`, `…_Cancel`, `…_Reuse*`): those of the embedded
/// [`RequestTarget`], which shares this CRT's target and closes with it.
/// Stream requests are not cancelled with [`Sender::cancel`] (use
/// [`stop`](ContinuousRequestTarget::stop)). DMF's CRT deletes a single
/// request *before* calling the client's completion so the client may free
/// its buffers there; here the transport never touches the client's buffers
/// after the callback returned, so freeing them in the callback is equally
/// safe.
impl<P: Platform, H: StreamClient<P>> Sender<P> for ContinuousRequestTarget<P, H> {
    fn sender_target(&self) -> SenderTarget<'_, P> {
        SenderTarget::new(&self.single)
    }
}

impl<P: Platform, H: StreamClient<P>> ContinuousRequestTarget<P, H> {
    /// The embedded non-streaming transport (shares this CRT's target; closed
    /// with it). Useful to pass the CRT where a plain [`RequestTarget`] is
    /// expected.
    pub fn request_target(&self) -> &RequestTarget<P> {
        &self.single
    }

    /// Creates the module and opens it (DMF `…_Create` + Open with
    /// `OPEN_Create`): validates `config`, creates the input and output pools
    /// and the N stream requests with their timers (and work items when
    /// `passive_level`). No target is set yet.
    ///
    /// Errors: `STATUS_INVALID_PARAMETER` for an inconsistent configuration
    /// (see [`ContinuousRequestTargetConfig::validate`]), or the platform's
    /// allocation failure. Passive level.
    pub fn new(platform: &P, config: ContinuousRequestTargetConfig, client: H) -> Result<Self> {
        let journal = Journal::new(platform, format_args!("ContinuousRequestTarget"));
        Self::new_in(platform, config, client, journal)
    }

    /// As [`new`](Self::new), recording into `journal` (for example the
    /// journal of the module that owns this one, about one of its targets)
    /// instead of a recorder of its own. The CRT's pools and its embedded
    /// [`RequestTarget`] record there too.
    pub fn new_in(
        platform: &P,
        config: ContinuousRequestTargetConfig,
        client: H,
        journal: Journal<P>,
    ) -> Result<Self> {
        if let Err(problem) = config.validate() {
            tracing::debug!(problem, "CRT: invalid configuration");
            return Err(Status::INVALID_PARAMETER);
        }
        let single =
            RequestTarget::new_in(platform, config.request_target_config(), journal.clone())?;
        let engine = Engine::new(platform.clone(), config, client, journal)?;
        engine.module.start();
        transition!(
            engine.journal,
            DEBUG,
            "CRT: opened",
            requests = config.continuous_request_count,
            mode = config.continuous_request_target_mode
        );
        Ok(ContinuousRequestTarget { engine, single })
    }

    /// Where this module records its transitions (its in-flight recorder,
    /// or its owner's).
    pub fn journal(&self) -> &Journal<P> {
        &self.engine.journal
    }

    /// The configuration.
    pub fn config(&self) -> &ContinuousRequestTargetConfig {
        &self.engine.config
    }

    /// The client callbacks.
    pub fn client(&self) -> &H {
        &self.engine.client
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.engine.platform
    }

    // ------------------------------------------------------------------
    // target
    // ------------------------------------------------------------------

    /// `DMF_ContinuousRequestTarget_IoTargetSet`: sets the target to stream
    /// and send to. The CRT keeps a clone of the `Arc`; the caller keeps
    /// ownership of the target (open/close it as it likes, but clear it here
    /// before closing it).
    ///
    /// In [`StreamMode::Automatic`] (and with N > 0) streaming starts now; its
    /// failure is returned (the target stays set).
    ///
    /// Errors: `STATUS_INVALID_DEVICE_STATE` when closing/closed or while
    /// streaming runs (clear first). Passive level in Automatic mode (start
    /// may wait on failure), any level otherwise.
    pub fn io_target_set(&self, target: Arc<P::IoTarget>) -> Result<()> {
        let _reference = self.engine.module.acquire()?;
        if self.engine.stream_state() != StreamState::Stopped {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        self.single.io_target_set(target.clone())?;
        *self.engine.target.lock() = Some(target);
        transition!(self.engine.journal, DEBUG, "CRT: target set");
        if self.engine.config.continuous_request_target_mode == StreamMode::Automatic
            && !self.engine.slots.is_empty()
        {
            return self.engine.start();
        }
        Ok(())
    }

    /// `DMF_ContinuousRequestTarget_IoTargetClear`: stops streaming if it
    /// runs (waiting for every stream request), then forgets the target.
    /// Single sends already in flight keep their own reference to it.
    /// Callable while closing. Passive level if streaming may run.
    pub fn io_target_clear(&self) {
        // Like an explicit stop: no resume at the next D0 entry.
        self.engine.resume_after_d0.store(false, Ordering::Release);
        self.engine.stop();
        self.single.io_target_clear();
        let previous = self.engine.target.lock().take();
        if previous.is_some() {
            transition!(self.engine.journal, DEBUG, "CRT: target cleared");
        }
        drop(previous);
    }

    /// The target currently set.
    pub fn io_target(&self) -> Option<Arc<P::IoTarget>> {
        self.engine.current_target()
    }

    // ------------------------------------------------------------------
    // streaming
    // ------------------------------------------------------------------

    /// `DMF_ContinuousRequestTarget_Start`: sends the N stream requests.
    ///
    /// If one of them cannot be sent (target refuses, no buffer without
    /// auto-refill), streaming is stopped again (waiting) and the failure
    /// returned: the refusal status, `STATUS_INSUFFICIENT_RESOURCES` for an
    /// empty pool, `STATUS_CANCELLED` if a concurrent `stop` won.
    ///
    /// A stream whose requests have all retired on their own (the client's
    /// output callback stopped each, or failures retired them) counts as
    /// stopped: `start` restarts it without a [`stop`](Self::stop) first.
    ///
    /// Errors: `STATUS_NOT_SUPPORTED` with `continuous_request_count == 0`;
    /// `STATUS_INVALID_DEVICE_STATE` when no target is set, when closing, or
    /// when streaming runs (`stop` first). Passive level; never from a
    /// stream callback.
    pub fn start(&self) -> Result<()> {
        let _reference = self.engine.module.acquire()?;
        self.engine.start()
    }

    /// `DMF_ContinuousRequestTarget_StopAndWait`: cancels every stream request
    /// and waits (on an event, no polling) until each has completed and left
    /// the stream; completions arriving meanwhile are counted and, with
    /// [`deliver_completions_during_stop`](ContinuousRequestTargetConfig::deliver_completions_during_stop),
    /// delivered. Idempotent, callable when never started, on a CRT with
    /// N = 0, and while closing. Passive level; never from a stream callback.
    ///
    /// An explicit stop also cancels a pending power-policy resume: if the
    /// device is in low power, streaming is not restarted at D0 entry.
    ///
    /// Returns `Ok(())` whether or not streaming ran (DMF's StopAndWait
    /// returns nothing); `STATUS_NOT_SUPPORTED` on a CRT with
    /// `continuous_request_count == 0`, which has no stream (as
    /// [`start`](Self::start)). The same type as the DIMT's `stream_stop`,
    /// which also reports a stale target handle.
    pub fn stop(&self) -> Result<()> {
        if self.engine.slots.is_empty() {
            return Err(Status::NOT_SUPPORTED);
        }
        self.engine.resume_after_d0.store(false, Ordering::Release);
        self.engine.stop();
        Ok(())
    }

    /// Whether streaming runs: started, and at least one stream request is
    /// still part of the stream. Once every request has retired on its own
    /// (see [`active_stream_requests`](Self::active_stream_requests)) this
    /// is `false` and [`start`](Self::start) works again.
    pub fn is_streaming(&self) -> bool {
        self.engine.stream_state() == StreamState::Running
    }

    /// Stopped, running or stopping; a stream whose requests have all
    /// retired on their own is `Stopped`.
    pub fn stream_state(&self) -> StreamState {
        self.engine.stream_state()
    }

    /// Stream requests currently part of the stream (in flight, being
    /// processed, or parked for back-off / a buffer).
    pub fn active_stream_requests(&self) -> usize {
        self.engine.active()
    }

    /// N, the number of stream requests.
    pub fn stream_request_count(&self) -> usize {
        self.engine.slots.len()
    }

    /// `DMF_ContinuousRequestTarget_BufferPut`: gives back an output buffer
    /// the client kept (a `ClientOwns*` disposition). Dropping the guard
    /// returns it too; this method additionally reports problems and wakes a
    /// stream request waiting for a buffer at once
    /// ([`auto_refill`](ContinuousRequestTargetConfig::auto_refill)).
    /// The buffer goes to its own home pool in every case, even on error.
    ///
    /// Errors: `STATUS_INVALID_DEVICE_STATE` when closing/closed;
    /// `STATUS_INVALID_PARAMETER` when the buffer is not from this CRT's
    /// output pool (DMF only asserts); `STATUS_HEAP_CORRUPTION` when the
    /// buffer's guard bytes were overwritten (it is returned anyway). Any
    /// level.
    pub fn buffer_put(&self, buffer: OutputBuffer<P>) -> Result<()> {
        let reference = self.engine.module.acquire();
        let put = match &self.engine.output_pool {
            Some(pool) => pool.put(buffer).map_err(|error| {
                let status = error.status();
                // A foreign buffer is handed back: let it go to its own home.
                drop(error.into_buffer());
                status
            }),
            None => {
                drop(buffer);
                Err(Status::INVALID_PARAMETER)
            }
        };
        let _reference = reference?;
        put?;
        self.engine.buffer_returned();
        Ok(())
    }

    /// Output buffers currently free in the output pool (diagnostics);
    /// `None` without an output pool.
    pub fn output_buffers_free(&self) -> Option<usize> {
        self.engine.output_pool.as_ref().map(|p| p.count())
    }

    /// Stream health counters.
    pub fn statistics(&self) -> StreamStatistics {
        self.engine
            .counters
            .snapshot(self.engine.slots.iter().map(|s| &s.counters))
    }

    // ------------------------------------------------------------------
    // power
    // ------------------------------------------------------------------

    /// A handle implementing [`DeviceCallbacks`] (D0 entry/exit, see
    /// [Power](crate#power)) that does not keep the CRT alive, for
    /// registration with the client device. The CRT itself implements
    /// `DeviceCallbacks` too.
    pub fn device_callbacks(&self) -> CrtDeviceCallbacks<P, H> {
        CrtDeviceCallbacks {
            engine: Arc::downgrade(&self.engine),
        }
    }

    /// Whether the power policy will restart streaming at the next D0 entry
    /// (streaming ran when the device left D0, or
    /// [`resume_at_d0_entry`](Self::resume_at_d0_entry) armed it, and no
    /// explicit [`stop`](Self::stop) came since). Any level.
    pub fn resumes_at_d0_entry(&self) -> bool {
        self.engine.resume_after_d0.load(Ordering::Acquire)
    }

    /// For a parent that keeps streaming stopped while the client device is
    /// out of D0 (for example a target reopened after a cancelled removal
    /// while the device is in D3): arms the power policy's restart, as if
    /// streaming had been running when the device left D0, so the next D0
    /// entry starts it. An explicit [`stop`](Self::stop) or
    /// [`io_target_clear`](Self::io_target_clear) cancels it.
    ///
    /// Returns `false` and arms nothing when no power policy is configured
    /// (neither
    /// [`cancel_and_resend_request_in_d0_callbacks`](ContinuousRequestTargetConfig::cancel_and_resend_request_in_d0_callbacks)
    /// nor
    /// [`purge_and_start_target_in_d0_callbacks`](ContinuousRequestTargetConfig::purge_and_start_target_in_d0_callbacks)),
    /// without stream requests, or when closing: D0 entry would not restart
    /// anything, so the caller decides itself. Any level.
    pub fn resume_at_d0_entry(&self) -> bool {
        let config = &self.engine.config;
        let policy = config.cancel_and_resend_request_in_d0_callbacks
            || config.purge_and_start_target_in_d0_callbacks;
        if !policy || self.engine.slots.is_empty() || self.is_closed() {
            return false;
        }
        self.engine.resume_after_d0.store(true, Ordering::Release);
        transition!(
            self.engine.journal,
            DEBUG,
            "CRT: streaming restarts at the next D0 entry"
        );
        true
    }

    // ------------------------------------------------------------------
    // close
    // ------------------------------------------------------------------

    /// Closes the module (DMF Close; see "Close stops streaming itself" in `docs/dmf-differences.md`): refuses new method calls,
    /// stops streaming itself, waits for methods in progress and for every
    /// single send in flight, stops the stream timers and work items, and
    /// forgets the target. Afterwards every method fails with
    /// `STATUS_INVALID_DEVICE_STATE`. Idempotent; also run by `drop`.
    /// Passive level.
    pub fn close(&self) {
        if self.engine.closing.swap(true, Ordering::AcqRel) {
            // Another close ran or runs; wait for its method rundown too.
            self.engine.stop();
            self.engine.module.end_and_wait(None);
            return;
        }
        transition!(self.engine.journal, DEBUG, "CRT: closing");
        self.engine.stop();
        self.engine.module.end_and_wait(None);
        // A `start` that was already past its checks when close began.
        self.engine.stop();
        self.single.close();
        self.engine.quiesce();
        self.engine.target.lock().take();
        transition!(self.engine.journal, DEBUG, "CRT: closed");
    }

    /// Whether [`close`](Self::close) has begun.
    pub fn is_closed(&self) -> bool {
        self.engine.closing.load(Ordering::Acquire)
    }
}

impl<P: Platform, H: StreamClient<P>> Drop for ContinuousRequestTarget<P, H> {
    fn drop(&mut self) {
        self.close();
    }
}

/// D0 exit / entry policy (see [Power](crate#power)).
fn d0_exit<P: Platform, H: StreamClient<P>>(engine: &Engine<P, H>, target_state: PowerState) {
    let config = &engine.config;
    let stream_policy = config.cancel_and_resend_request_in_d0_callbacks
        || config.purge_and_start_target_in_d0_callbacks;
    if stream_policy && !engine.slots.is_empty() {
        let was_running = matches!(
            engine.stream_state(),
            StreamState::Running | StreamState::Starting
        );
        engine.resume_after_d0.store(was_running, Ordering::Release);
        transition!(
            engine.journal,
            DEBUG,
            "CRT: D0 exit",
            ?target_state,
            was_running
        );
        engine.stop();
    }
    if config.purge_and_start_target_in_d0_callbacks {
        if let Some(target) = engine.current_target() {
            transition!(engine.journal, DEBUG, "CRT: D0 exit purges the target");
            target.purge(true);
        }
    }
}

fn d0_entry<P: Platform, H: StreamClient<P>>(
    engine: &Arc<Engine<P, H>>,
    previous: PowerState,
) -> Result<()> {
    if previous == PowerState::D3Final {
        return Ok(());
    }
    let config = &engine.config;
    if config.purge_and_start_target_in_d0_callbacks {
        if let Some(target) = engine.current_target() {
            transition!(
                engine.journal,
                DEBUG,
                "CRT: D0 entry restarts the target",
                ?previous
            );
            target.start()?;
        }
    }
    if engine.resume_after_d0.swap(false, Ordering::AcqRel)
        && engine.stream_state() == StreamState::Stopped
        && engine.current_target().is_some()
    {
        transition!(
            engine.journal,
            DEBUG,
            "CRT: D0 entry restarts streaming",
            ?previous
        );
        let _reference = engine.module.acquire()?;
        engine.start()?;
    }
    Ok(())
}

/// Power policy (see [Power](crate#power)). D0 callbacks run at passive
/// level; D0 exit waits for streaming to stop.
impl<P: Platform, H: StreamClient<P>> DeviceCallbacks for ContinuousRequestTarget<P, H> {
    fn d0_entry(&self, previous: PowerState) -> Result<()> {
        d0_entry(&self.engine, previous)
    }

    fn d0_exit(&self, target: PowerState) -> Result<()> {
        d0_exit(&self.engine, target);
        Ok(())
    }
}

/// The CRT's client device callbacks without ownership
/// ([`ContinuousRequestTarget::device_callbacks`]; D0 entry and exit, the
/// others keep their defaults): they do nothing once the CRT is dropped.
/// Named like the DIMT's
/// (`DimtDeviceCallbacks` from `DeviceInterfaceMultipleTarget::device_callbacks`).
pub struct CrtDeviceCallbacks<P: Platform, H: StreamClient<P>> {
    engine: Weak<Engine<P, H>>,
}

impl<P: Platform, H: StreamClient<P>> Clone for CrtDeviceCallbacks<P, H> {
    fn clone(&self) -> Self {
        CrtDeviceCallbacks {
            engine: self.engine.clone(),
        }
    }
}

impl<P: Platform, H: StreamClient<P>> core::fmt::Debug for CrtDeviceCallbacks<P, H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CrtDeviceCallbacks")
            .field("alive", &(self.engine.strong_count() > 0))
            .finish()
    }
}

impl<P: Platform, H: StreamClient<P>> DeviceCallbacks for CrtDeviceCallbacks<P, H> {
    fn d0_entry(&self, previous: PowerState) -> Result<()> {
        match self.engine.upgrade() {
            Some(engine) if !engine.closing.load(Ordering::Acquire) => d0_entry(&engine, previous),
            _ => Ok(()),
        }
    }

    fn d0_exit(&self, target: PowerState) -> Result<()> {
        if let Some(engine) = self.engine.upgrade() {
            d0_exit(&engine, target);
        }
        Ok(())
    }
}
