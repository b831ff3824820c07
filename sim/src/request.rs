//! Requests (see [`SimRequest`]).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use dmf_wdf::{Completed, CompletionRoutine, RawBuffer, Request, RequestType, Status};

use crate::bus::DeviceInner;
use crate::core::{lock, Core};
use crate::counters;
use crate::io_target::TargetInner;
use crate::irp::{self, CancelRoutine};
use crate::Sim;

/// Where a request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Created or reused, not formatted.
    Fresh,
    /// Formatted, ready to send.
    Formatted,
    /// Sent to a stopped target: waits in the target's queue until the
    /// target is started (then it goes to the device), purged or closed
    /// (then it completes with `STATUS_WDF_DEVICE_REMOVED_NOT_SENT`), or it
    /// is cancelled or times out (KMDF's pended queue, `FxIoTarget::PendRequestLocked`).
    Queued,
    /// Sent; the device owns it (pending).
    AtDevice,
    /// Completed by the device (or a cancellation/removal); delivery scheduled.
    Completing,
    /// Completion delivered; must be reused before another send.
    Completed,
}

/// How the simulator itself holds an IRP for a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parked {
    /// Not parked in the simulator.
    No,
    /// Parked until its deadline; cancellation has no effect.
    Uncancelable,
    /// Parked until its deadline; cancellation completes it at once with
    /// `STATUS_CANCELLED` and this information value.
    Cancelable { information: usize },
}

/// The mutable state of a request.
pub(crate) struct ReqData {
    pub(crate) phase: Phase,
    /// Number of the current (or last) send.
    pub(crate) gen: u64,
    pub(crate) request_type: RequestType,
    pub(crate) ioctl: u32,
    pub(crate) input: Option<RawBuffer>,
    pub(crate) output: Option<RawBuffer>,
    /// Id of the target the request was formatted for (0 = none).
    pub(crate) formatted_for: u64,
    pub(crate) routine: Option<Arc<dyn CompletionRoutine>>,
    /// A synchronous send waits for this request (no routine).
    pub(crate) sync: bool,
    /// The synchronous sender may wake up (delivery done).
    pub(crate) delivered: bool,
    pub(crate) target: Option<Arc<TargetInner>>,
    pub(crate) device: Option<Arc<DeviceInner>>,
    pub(crate) cancel_requested: bool,
    /// `cancel_sent` was called while the request was not sent (fresh or
    /// formatted): KMDF's `FxRequestBase::m_Canceled`, which makes the next
    /// send fail with `STATUS_CANCELLED` (`FxIoTarget::SubmitLocked`) until
    /// the request is reused (`ClearFieldsForReuse`).
    pub(crate) cancelled_unsent: bool,
    pub(crate) cancel_routine: Option<Arc<dyn CancelRoutine>>,
    pub(crate) parked: Parked,
    pub(crate) timed_out: bool,
    /// Deadline of the current send's timeout, if it has one.
    pub(crate) timeout: Option<u64>,
    /// Deadline of the one timeout check scheduled for this request (older
    /// checks left in the heap are orphans and do nothing). Keeping one check
    /// per request, re-armed when it fires early, keeps the scheduler heap
    /// from growing with the timeouts of requests that completed in time.
    pub(crate) timeout_check: Option<u64>,
    pub(crate) result: Completed,
}

/// The shared part of a request, referenced by the caller's [`SimRequest`],
/// the target and device it was sent to, and scheduled actions.
pub(crate) struct RequestInner {
    pub(crate) core: Arc<Core>,
    pub(crate) id: u64,
    data: Mutex<ReqData>,
    /// Signalled when a synchronous send's completion is delivered.
    pub(crate) cv: Condvar,
    /// Held while a device accesses the request's buffers; completing an IRP
    /// takes it too, so no device access outlives the IRP's completion.
    pub(crate) buffer_lock: Mutex<()>,
}

impl RequestInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ReqData> {
        lock(&self.data)
    }
}

/// A simulated `WDFREQUEST`, owned by the caller.
///
/// A request goes through these phases (guarded by its lock):
///
/// ```text
/// Fresh --format--> Formatted --send--> AtDevice --device/cancel/removal completes--> Completing
///   ^                        |               ^                                            ^   |
///   |                        +--send (stopped target)--> Queued --purge/close/cancel-------+   |
///   |                                            (start)-+                                     |
///   +------------------------- reuse <-- Completed <--- completion delivered -----------------+
/// ```
///
/// A send to a stopped target waits in the target's queue (`Queued`) until
/// the target is started, purged or closed, as in KMDF.
///
/// A request must be reused (`WdfRequestReuse`) before it is formatted or sent
/// again after a completion, as WDF requires. Reusing, formatting or sending
/// it while a send of it is in flight panics (KMDF's verifier breaks).
///
/// Dropping it deletes it. Dropping it while a send is in flight (after an
/// accepted send and before its completion is delivered) is a bug in the layer
/// above and panics.
///
/// ```
/// use std::sync::Arc;
/// use dmf_sim::{DeviceSpec, FixedResponseDevice, Sim, SimConfig};
/// use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, RequestType, ShareAccess, Status, TargetEvents};
///
/// struct NoEvents;
/// impl TargetEvents for NoEvents {
///     fn query_remove(&self) -> Status { Status::SUCCESS }
///     fn remove_canceled(&self) {}
///     fn remove_complete(&self) {}
/// }
///
/// let sim = Sim::new(SimConfig::default());
/// let device = FixedResponseDevice::new(Status::SUCCESS, Some(4));
/// let id = sim.bus().add_device(DeviceSpec::new("disk", Arc::new(device))).unwrap();
/// let link = sim.bus().device_link(id).unwrap();
/// let target = sim.create_io_target().unwrap();
/// let params = OpenParams { symbolic_link: &link, open_mode: OpenMode::READ_WRITE, share_access: ShareAccess::READ_WRITE };
/// target.open(&params, Arc::new(NoEvents)).unwrap();
///
/// let request = sim.create_request(Some(&target)).unwrap();
/// let mut out = [0xFFu8; 4];
/// // SAFETY: `out` outlives the synchronous send below and is not touched meanwhile.
/// unsafe {
///     target
///         .format_request(&request, RequestType::Read, 0, None, Some(dmf_wdf::RawBuffer::from_mut_slice(&mut out)))
///         .unwrap();
/// }
/// assert_eq!(target.send_synchronously(&request, 0), Ok(4));
/// ```
pub struct SimRequest {
    _sim: Sim,
    pub(crate) inner: Arc<RequestInner>,
}

impl fmt::Debug for SimRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.inner.lock();
        f.debug_struct("SimRequest")
            .field("id", &self.inner.id)
            .field("phase", &d.phase)
            .field("sends", &d.gen)
            .finish()
    }
}

impl SimRequest {
    pub(crate) fn new(sim: &Sim) -> SimRequest {
        let core = Arc::clone(sim.core());
        let id = core.new_id();
        counters::add(&core.counters.live_requests, 1);
        SimRequest {
            _sim: sim.clone(),
            inner: Arc::new(RequestInner {
                core,
                id,
                data: Mutex::new(ReqData {
                    phase: Phase::Fresh,
                    gen: 0,
                    request_type: RequestType::Invalid,
                    ioctl: 0,
                    input: None,
                    output: None,
                    formatted_for: 0,
                    routine: None,
                    sync: false,
                    delivered: false,
                    target: None,
                    device: None,
                    cancel_requested: false,
                    cancelled_unsent: false,
                    cancel_routine: None,
                    parked: Parked::No,
                    timed_out: false,
                    timeout: None,
                    timeout_check: None,
                    result: Completed {
                        status: Status::SUCCESS,
                        information: 0,
                    },
                }),
                cv: Condvar::new(),
                buffer_lock: Mutex::new(()),
            }),
        }
    }

    /// The request's id (unique within its simulator).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether a send of this request is in flight (sent, completion not yet
    /// delivered).
    pub fn is_in_flight(&self) -> bool {
        matches!(
            self.inner.lock().phase,
            Phase::Queued | Phase::AtDevice | Phase::Completing
        )
    }

    /// How many times the request was sent.
    pub fn send_count(&self) -> u64 {
        self.inner.lock().gen
    }

    /// The completion of the last send, once delivered (`WdfRequestGetStatus`
    /// and `WdfRequestGetInformation`).
    pub fn last_completion(&self) -> Option<Completed> {
        let d = self.inner.lock();
        (d.phase == Phase::Completed).then_some(d.result)
    }
}

impl Request for SimRequest {
    /// # Panics
    ///
    /// If a send of the request is in flight: KMDF's verifier breaks
    /// (`FxRequest::Reuse`: "Driver is trying to reuse WDFREQUEST while it is
    /// still active on WDFIOTARGET").
    fn reuse(&self) -> dmf_wdf::Result<()> {
        let mut d = self.inner.lock();
        match d.phase {
            Phase::Queued | Phase::AtDevice | Phase::Completing => {
                drop(d);
                panic!(
                    "dmf-sim: request {} reused while a send of it is in flight \
                     (a verifier break in KMDF; a bug in the layer above)",
                    self.inner.id
                );
            }
            Phase::Fresh | Phase::Formatted | Phase::Completed => {
                d.phase = Phase::Fresh;
                d.cancelled_unsent = false;
                d.request_type = RequestType::Invalid;
                d.ioctl = 0;
                d.input = None;
                d.output = None;
                d.formatted_for = 0;
                d.result = Completed {
                    status: Status::SUCCESS,
                    information: 0,
                };
                Ok(())
            }
        }
    }

    fn cancel_sent(&self) -> bool {
        irp::cancel(&self.inner, None, false)
    }
}

impl Drop for SimRequest {
    fn drop(&mut self) {
        let phase = self.inner.lock().phase;
        counters::add(&self.inner.core.counters.live_requests, -1);
        if matches!(phase, Phase::Queued | Phase::AtDevice | Phase::Completing)
            && !std::thread::panicking()
        {
            panic!(
                "dmf-sim: request {} dropped (deleted) while a send of it is in flight; \
                 a sent request belongs to the framework until its completion is delivered \
                 (this is a bug in the layer above)",
                self.inner.id
            );
        }
    }
}
