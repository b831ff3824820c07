//! IRPs and the completion/cancellation protocol (see [`Irp`]).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dmf_wdf::{Completed, RawBuffer, RequestType, Status};

use crate::bus::DeviceId;
use crate::clock::ms_to_ticks;
use crate::context::{DispatchScope, InlineDepth, Marker, MarkerKind};
use crate::core::{lock, Core};
use crate::counters;
use crate::io_target::TargetInner;
use crate::request::{Parked, Phase, RequestInner};
use crate::rng::SplitMix64;
use crate::scheduler::Action;

/// Identifies one send of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IrpId {
    /// The request's id.
    pub request: u64,
    /// Which send of the request (1 for the first).
    pub send: u64,
}

impl fmt::Display for IrpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "irp {}.{}", self.request, self.send)
    }
}

/// A device's cancel routine (`EVT_WDF_REQUEST_CANCEL` / `DRIVER_CANCEL`).
///
/// Set with [`Irp::set_cancel_routine`]. When the sender cancels the IRP (or
/// its timeout expires, or its target is closed, stopped or purged), the
/// routine is called once, on the cancelling thread and in dispatch context,
/// with the IRP's id. It must find the parked [`Irp`] by that id and complete
/// it (usually with `STATUS_CANCELLED`); if the device already took the IRP
/// out to complete it, it finds nothing and does nothing. Completion is
/// exactly-once either way.
pub trait CancelRoutine: Send + Sync + 'static {
    /// The IRP `irp` was cancelled.
    fn cancel(&self, irp: IrpId);
}

impl<F: Fn(IrpId) + Send + Sync + 'static> CancelRoutine for F {
    fn cancel(&self, irp: IrpId) {
        self(irp)
    }
}

/// What a device sees of a request's formatting.
pub(crate) struct IrpInfo {
    pub(crate) request_type: RequestType,
    pub(crate) ioctl: u32,
    pub(crate) input_len: usize,
    pub(crate) output_len: usize,
}

impl IrpInfo {
    /// The formatting of the request whose data is `d`.
    pub(crate) fn of(d: &crate::request::ReqData) -> IrpInfo {
        IrpInfo {
            request_type: d.request_type,
            ioctl: d.ioctl,
            input_len: d.input.map_or(0, |b| b.len()),
            output_len: d.output.map_or(0, |b| b.len()),
        }
    }
}

/// A pending IRP handed to a [`DeviceHandler`](crate::DeviceHandler): the
/// device owns it until it completes it.
///
/// Every send gets a new *generation* number; an [`Irp`] handle and every
/// scheduled action carry it, so actions aimed at an earlier send of a reused
/// request do nothing. Completion is a compare-and-set under the request lock
/// from `AtDevice` to `Completing`: whichever of the device, a cancellation of
/// a simulator-parked IRP, a surprise removal or the simulator's shutdown gets
/// there first completes the IRP, exactly once; the others see it completed
/// and do nothing. The completion routine is then called exactly once, on a
/// completion thread after the configured latency (inline in `advance` with a
/// manual clock), or at once on the completing thread when
/// [`InlineCompletion`](crate::InlineCompletion) says so.
///
/// Complete it exactly once with [`Irp::complete`], [`Irp::complete_after`] or
/// [`Irp::complete_after_cancelable`] (each consumes the handle). Dropping an
/// uncompleted `Irp` is a device bug; the simulator then completes it with
/// `STATUS_UNSUCCESSFUL` (and logs a warning) so that the sender does not hang.
///
/// The IRP may be completed by someone else while the device holds it (a
/// surprise removal completes everything pending with
/// `STATUS_DEVICE_REMOVED`); completing it again is then a no-op and its
/// buffers read as empty.
pub struct Irp {
    req: Option<Arc<RequestInner>>,
    gen: u64,
    device: DeviceId,
    rng: Arc<Mutex<SplitMix64>>,
    request_type: RequestType,
    ioctl: u32,
    input_len: usize,
    output_len: usize,
}

impl fmt::Debug for Irp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Irp")
            .field("id", &self.id())
            .field("request_type", &self.request_type)
            .field("ioctl", &format_args!("{:#010X}", self.ioctl))
            .field("input_len", &self.input_len)
            .field("output_len", &self.output_len)
            .finish()
    }
}

impl Irp {
    pub(crate) fn new(
        req: Arc<RequestInner>,
        gen: u64,
        device: DeviceId,
        rng: Arc<Mutex<SplitMix64>>,
        info: IrpInfo,
    ) -> Irp {
        Irp {
            req: Some(req),
            gen,
            device,
            rng,
            request_type: info.request_type,
            ioctl: info.ioctl,
            input_len: info.input_len,
            output_len: info.output_len,
        }
    }

    fn req(&self) -> &Arc<RequestInner> {
        self.req.as_ref().expect("Irp used after completion")
    }

    /// This IRP's id.
    pub fn id(&self) -> IrpId {
        IrpId {
            request: self.req().id,
            send: self.gen,
        }
    }

    /// The device it was sent to.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// The request type (major function).
    pub fn request_type(&self) -> RequestType {
        self.request_type
    }

    /// The IOCTL code (0 for reads and writes).
    pub fn ioctl(&self) -> u32 {
        self.ioctl
    }

    /// Length of the input buffer (0 if none).
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Length of the output buffer (0 if none).
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// The input buffer, read-only. Empty if there is none or the IRP was
    /// already completed by someone else.
    pub fn input(&mut self) -> IrpInput<'_> {
        match self.lock_buffers() {
            Some((guard, input, _)) => IrpInput {
                _guard: Some(guard),
                // SAFETY: see `lock_buffers`: the IRP is pending and we hold
                // its buffer lock for the slice's lifetime.
                data: unsafe { shared(input) },
            },
            None => IrpInput {
                _guard: None,
                data: &[],
            },
        }
    }

    /// The output buffer, writable. Empty if there is none or the IRP was
    /// already completed by someone else.
    pub fn output(&mut self) -> IrpOutput<'_> {
        match self.lock_buffers() {
            Some((guard, _, output)) => IrpOutput {
                _guard: Some(guard),
                // SAFETY: see `lock_buffers`: the IRP is pending, we hold its
                // buffer lock for the slice's lifetime, and `&mut self` makes
                // this the only slice of the output buffer.
                data: unsafe { exclusive(output) },
            },
            None => IrpOutput {
                _guard: None,
                data: &mut [],
            },
        }
    }

    /// Both buffers at once (an echo device copies one into the other).
    ///
    /// # Panics
    ///
    /// If the sender formatted overlapping input and output buffers (use
    /// [`Irp::input`] then [`Irp::output`] instead).
    pub fn buffers(&mut self) -> IrpBuffers<'_> {
        match self.lock_buffers() {
            Some((guard, input, output)) => {
                if let (Some(i), Some(o)) = (input, output) {
                    let (i0, o0) = (i.as_ptr() as usize, o.as_ptr() as usize);
                    let disjoint =
                        i.is_empty() || o.is_empty() || i0 + i.len() <= o0 || o0 + o.len() <= i0;
                    assert!(
                        disjoint,
                        "dmf-sim: Irp::buffers on overlapping input and output buffers"
                    );
                }
                IrpBuffers {
                    _guard: Some(guard),
                    // SAFETY: see `lock_buffers`; the two regions are disjoint
                    // (checked above), so the shared and the exclusive slice
                    // do not alias.
                    input: unsafe { shared(input) },
                    // SAFETY: as above.
                    output: unsafe { exclusive(output) },
                }
            }
            None => IrpBuffers {
                _guard: None,
                input: &[],
                output: &mut [],
            },
        }
    }

    /// Takes the buffer lock and returns the buffers if this send is still
    /// pending at the device.
    ///
    /// The buffers come from `IoTarget::format_request`, whose caller
    /// guarantees that `input` stays valid for reads and `output` valid for
    /// reads and writes with no other access, until the send's completion has
    /// been delivered. While the returned guard lives the send stays pending:
    /// every completion path (`complete_internal`) takes the buffer lock before
    /// completing, and delivery (which ends the caller's guarantee) follows
    /// completion. So slices built from these buffers and bounded by the
    /// guard's lifetime are valid; the guard borrows `self` mutably and `Irp`
    /// is not `Clone`, so no other slice of them exists in the simulator.
    #[allow(clippy::type_complexity)]
    fn lock_buffers(
        &mut self,
    ) -> Option<(MutexGuard<'_, ()>, Option<RawBuffer>, Option<RawBuffer>)> {
        let req = self.req.as_ref()?;
        let guard = req
            .buffer_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let d = req.lock();
        if d.gen != self.gen || d.phase != Phase::AtDevice {
            return None;
        }
        let (input, output) = (d.input, d.output);
        drop(d);
        Some((guard, input, output))
    }

    /// Whether the sender asked to cancel this IRP (`WdfRequestIsCanceled`).
    pub fn is_cancelled(&self) -> bool {
        let d = self.req().lock();
        d.gen == self.gen && d.cancel_requested
    }

    /// Whether the IRP is still pending (nobody completed it yet).
    pub fn is_pending(&self) -> bool {
        is_at_device(self.req(), self.gen)
    }

    /// Makes the IRP cancelable (`WdfRequestMarkCancelableEx`): on
    /// cancellation `routine` is called with [`Irp::id`].
    ///
    /// Returns `Err(STATUS_CANCELLED)` if the IRP is already cancelled (or no
    /// longer pending): the routine is not stored and the device must complete
    /// the IRP itself now. Park the IRP where the routine can find it *before*
    /// calling this.
    pub fn set_cancel_routine(&self, routine: Arc<dyn CancelRoutine>) -> dmf_wdf::Result<()> {
        let mut d = self.req().lock();
        if d.gen != self.gen || d.phase != Phase::AtDevice || d.cancel_requested {
            return Err(Status::CANCELLED);
        }
        d.cancel_routine = Some(routine);
        Ok(())
    }

    /// Removes the cancel routine (`WdfRequestUnmarkCancelable`). Returns
    /// `false` if there was none, for example because a cancellation already
    /// took it (it is running or ran): the device may still complete the IRP,
    /// completion being exactly-once.
    pub fn clear_cancel_routine(&self) -> bool {
        let taken = {
            let mut d = self.req().lock();
            if d.gen != self.gen {
                None
            } else {
                d.cancel_routine.take()
            }
        };
        taken.is_some()
    }

    /// A random number in `lo..=hi` from the device's deterministic stream.
    pub fn random(&self, lo: u64, hi: u64) -> u64 {
        lock(&self.rng).range_inclusive(lo, hi)
    }

    /// The simulator clock, 100 ns units.
    pub fn now_100ns(&self) -> u64 {
        self.req().core.clock.now()
    }

    /// Completes the IRP now (`WdfRequestCompleteWithInformation`).
    pub fn complete(mut self, status: Status, information: usize) {
        if let Some(req) = self.req.take() {
            complete_internal(&req, self.gen, status, information);
        }
    }

    /// Completes the IRP after `ms` milliseconds of simulated time. Until then
    /// cancellation has no effect (an uncancelable IRP; the device would
    /// observe [`Irp::is_cancelled`]).
    pub fn complete_after(mut self, ms: u64, status: Status, information: usize) {
        if let Some(req) = self.req.take() {
            park(&req, self.gen, ms, status, information, false);
        }
    }

    /// Completes the IRP after `ms` milliseconds of simulated time, unless it
    /// is cancelled first: then it completes at once with `STATUS_CANCELLED`
    /// and the same `information` (like a request parked in a cancelable
    /// manual queue after `WdfRequestSetInformation`).
    pub fn complete_after_cancelable(mut self, ms: u64, status: Status, information: usize) {
        if let Some(req) = self.req.take() {
            park(&req, self.gen, ms, status, information, true);
        }
    }
}

impl Drop for Irp {
    fn drop(&mut self) {
        if let Some(req) = self.req.take() {
            if is_at_device(&req, self.gen) && !std::thread::panicking() {
                tracing::warn!(
                    request = req.id,
                    send = self.gen,
                    "dmf-sim: a device dropped an IRP without completing it; completing it with STATUS_UNSUCCESSFUL"
                );
            }
            complete_internal(&req, self.gen, Status::UNSUCCESSFUL, 0);
        }
    }
}

/// The input buffer of an [`Irp`], borrowed while the IRP is pending.
pub struct IrpInput<'a> {
    _guard: Option<MutexGuard<'a, ()>>,
    data: &'a [u8],
}

impl Deref for IrpInput<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data
    }
}

/// The output buffer of an [`Irp`], borrowed while the IRP is pending.
pub struct IrpOutput<'a> {
    _guard: Option<MutexGuard<'a, ()>>,
    data: &'a mut [u8],
}

impl Deref for IrpOutput<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data
    }
}

impl DerefMut for IrpOutput<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.data
    }
}

/// Both buffers of an [`Irp`], borrowed while the IRP is pending.
pub struct IrpBuffers<'a> {
    _guard: Option<MutexGuard<'a, ()>>,
    /// The input buffer.
    pub input: &'a [u8],
    /// The output buffer.
    pub output: &'a mut [u8],
}

/// A shared slice of `buffer` (empty for `None`).
///
/// # Safety
///
/// The memory must be valid for reads and not written by anyone for `'a`.
unsafe fn shared<'a>(buffer: Option<RawBuffer>) -> &'a [u8] {
    match buffer {
        // SAFETY: forwarded to the caller.
        Some(b) => unsafe { b.as_slice() },
        None => &[],
    }
}

/// An exclusive slice of `buffer` (empty for `None`).
///
/// # Safety
///
/// The memory must be valid for reads and writes and not accessed by anyone
/// else for `'a`.
unsafe fn exclusive<'a>(buffer: Option<RawBuffer>) -> &'a mut [u8] {
    match buffer {
        // SAFETY: forwarded to the caller.
        Some(b) => unsafe { b.as_mut_slice() },
        None => &mut [],
    }
}

/// Whether send `gen` of `req` is still pending at the device.
pub(crate) fn is_at_device(req: &RequestInner, gen: u64) -> bool {
    let d = req.lock();
    d.gen == gen && d.phase == Phase::AtDevice
}

/// The device keeps send `gen` of `req` non-cancelable (dropping its cancel
/// routine) and completes it with `status` after `ms` simulated milliseconds
/// (at once for 0): a surprise-removed device finishing what it holds.
pub(crate) fn hold_uncancelable(req: &Arc<RequestInner>, gen: u64, ms: u64, status: Status) {
    park(req, gen, ms, status, 0, false);
}

fn park(
    req: &Arc<RequestInner>,
    gen: u64,
    ms: u64,
    status: Status,
    information: usize,
    cancelable: bool,
) {
    {
        let mut d = req.lock();
        if d.gen != gen || d.phase != Phase::AtDevice {
            return;
        }
        if cancelable && d.cancel_requested {
            drop(d);
            complete_internal(req, gen, Status::CANCELLED, information);
            return;
        }
        if ms == 0 {
            drop(d);
            complete_internal(req, gen, status, information);
            return;
        }
        d.parked = if cancelable {
            Parked::Cancelable { information }
        } else {
            Parked::Uncancelable
        };
        d.cancel_routine = None;
    }
    req.core.schedule(
        ms_to_ticks(ms),
        Action::DeviceComplete {
            req: Arc::clone(req),
            gen,
            status,
            information,
        },
    );
}

/// Completes send `gen` of `req` if it is still pending (at its device, or
/// queued on its stopped target); schedules delivery of its completion.
/// Returns whether this call completed it.
pub(crate) fn complete_internal(
    req: &Arc<RequestInner>,
    gen: u64,
    status: Status,
    information: usize,
) -> bool {
    let core: &Arc<Core> = &req.core;
    let (target, device, old_routine) = {
        let _buffers = lock(&req.buffer_lock);
        let mut d = req.lock();
        if d.gen != gen || !matches!(d.phase, Phase::AtDevice | Phase::Queued) {
            return false;
        }
        // KMDF (`FxIoTarget::RequestCompletionRoutine`, `TimerCallback`,
        // `CompleteCanceledRequest`, `SubmitSync`): a request cancelled by its
        // timeout that comes back `STATUS_CANCELLED` completes with
        // `STATUS_IO_TIMEOUT`, asynchronous or synchronous.
        let status = if d.timed_out && status == Status::CANCELLED {
            Status::IO_TIMEOUT
        } else {
            status
        };
        d.phase = Phase::Completing;
        d.result = Completed {
            status,
            information,
        };
        d.parked = Parked::No;
        (d.target.clone(), d.device.clone(), d.cancel_routine.take())
    };
    drop(old_routine);
    if let Some(t) = &target {
        t.remove_pending(req, gen);
    }
    if let Some(dev) = &device {
        dev.remove_pending(req, gen);
    }
    counters::bump(&core.counters.completed);
    if status == Status::CANCELLED || status == Status::IO_TIMEOUT {
        counters::bump(&core.counters.cancelled);
    }
    tracing::trace!(
        request = req.id,
        send = gen,
        ?status,
        information,
        "dmf-sim: IRP completed"
    );
    if core.deliver_inline_here() {
        let (_depth, depth) = InlineDepth::enter();
        if depth <= core.inline_depth_limit {
            tracing::trace!(
                request = req.id,
                send = gen,
                depth,
                "dmf-sim: completion delivered inline"
            );
            counters::bump(&core.counters.inline_deliveries);
            deliver(req, gen);
            return true;
        }
        // Unbounded recursion (a completion routine resending, its resend
        // completing inline, ...) would overflow a kernel stack: report it
        // like a panic in a callback, and deliver this one from a completion
        // thread so that nothing is lost.
        core.record_panic(
            "inline completion",
            Box::new(format!(
                "more than {} nested inline completions on one thread (request {}, send {}): \
                 a completion routine resends and recurses without bound; on a 24 KiB \
                 kernel stack this overflows",
                core.inline_depth_limit, req.id, gen
            )),
        );
    }
    let delay = core.latency_ticks();
    core.schedule(
        delay,
        Action::Deliver {
            req: Arc::clone(req),
            gen,
        },
    );
    true
}

/// Marks the current thread as inside a call of `core` during which IRP
/// completions may be delivered inline, while the guard lives.
pub(crate) fn inline_scope(core: &Core) -> Marker {
    Marker::set(MarkerKind::Inline, core.id as usize)
}

/// Requests cancellation of the pending send of `req` (of send `gen` if given;
/// `None` is `cancel_sent`, `WdfRequestCancelSentRequest`).
///
/// As `FxRequestBase::Cancel` and `IoCancelIrp`: returns `true` only if a
/// cancel routine was called (the device's, or the simulator's for an IRP it
/// parks cancelably); otherwise the cancellation is remembered: the IRP's
/// cancel flag is set (the device sees it when it tries to make the IRP
/// cancelable), and a request not sent yet fails its next send with
/// `STATUS_CANCELLED` until it is reused.
pub(crate) fn cancel(req: &Arc<RequestInner>, gen: Option<u64>, timeout: bool) -> bool {
    enum Then {
        CompleteNow(usize),
        Routine(Arc<dyn CancelRoutine>),
        Flag,
    }
    let (then, gen) = {
        let mut d = req.lock();
        if gen.is_none() && matches!(d.phase, Phase::Fresh | Phase::Formatted) {
            // Not sent yet: remembered until reuse; the next send fails.
            d.cancelled_unsent = true;
            return false;
        }
        if !matches!(d.phase, Phase::AtDevice | Phase::Queued) || gen.is_some_and(|g| g != d.gen) {
            return false;
        }
        if timeout {
            d.timed_out = true;
        }
        if d.cancel_requested {
            return false;
        }
        d.cancel_requested = true;
        let then = if d.phase == Phase::Queued {
            // The target's queue is cancelable (KMDF `_RequestCancelled`:
            // FailPendedRequest with STATUS_CANCELLED).
            Then::CompleteNow(0)
        } else if let Parked::Cancelable { information } = d.parked {
            Then::CompleteNow(information)
        } else if let Some(r) = d.cancel_routine.take() {
            Then::Routine(r)
        } else {
            Then::Flag
        };
        (then, d.gen)
    };
    tracing::trace!(
        request = req.id,
        send = gen,
        timeout,
        "dmf-sim: IRP cancel requested"
    );
    let _inline = inline_scope(&req.core);
    match then {
        Then::CompleteNow(information) => {
            complete_internal(req, gen, Status::CANCELLED, information);
        }
        Then::Routine(routine) => {
            req.core.check_stack("cancel routine");
            let _dispatch = DispatchScope::enter();
            routine.cancel(IrpId {
                request: req.id,
                send: gen,
            });
        }
        Then::Flag => {
            // No cancel routine (the device has not made the IRP cancelable,
            // or is still being handed it): `IoCancelIrp` returns FALSE, the
            // cancel flag stays set and the device sees it when it tries to
            // make the IRP cancelable.
            return false;
        }
    }
    true
}

/// Arms the timeout of the send being committed (request lock held by the
/// caller through `d`). Returns the deadline of a check to schedule, if one
/// is needed.
pub(crate) fn arm_timeout(
    d: &mut crate::request::ReqData,
    now: u64,
    timeout_ms: u32,
) -> Option<u64> {
    if timeout_ms == 0 {
        d.timeout = None;
        return None;
    }
    let deadline = now.saturating_add(ms_to_ticks(u64::from(timeout_ms)));
    d.timeout = Some(deadline);
    match d.timeout_check {
        // An earlier check will fire first and re-arm for this deadline.
        Some(check) if check <= deadline => None,
        _ => {
            d.timeout_check = Some(deadline);
            Some(deadline)
        }
    }
}

/// Whether the timeout check at `deadline` would do anything.
pub(crate) fn timeout_check_is_live(req: &RequestInner, deadline: u64) -> bool {
    let d = req.lock();
    d.timeout_check == Some(deadline)
        && matches!(d.phase, Phase::AtDevice | Phase::Queued)
        && d.timeout.is_some()
}

/// The timeout check at `deadline` is due: cancels the pending send if its
/// timeout expired, or re-arms the check for a later timeout.
pub(crate) fn timeout_check(req: &Arc<RequestInner>, deadline: u64) {
    let core = &req.core;
    let now = core.clock.now();
    let (expired, rearm) = {
        let mut d = req.lock();
        if d.timeout_check != Some(deadline) {
            return; // an orphaned, superseded check
        }
        d.timeout_check = None;
        match d.timeout {
            Some(t) if matches!(d.phase, Phase::AtDevice | Phase::Queued) => {
                if t <= now {
                    (Some(d.gen), None)
                } else {
                    d.timeout_check = Some(t);
                    (None, Some(t))
                }
            }
            _ => (None, None),
        }
    };
    if let Some(gen) = expired {
        cancel(req, Some(gen), true);
    }
    if let Some(t) = rearm {
        core.schedule_at(
            t,
            Action::CancelTimeout {
                req: Arc::clone(req),
                deadline: t,
            },
        );
    }
}

/// Accounting that must happen once a delivery is over, even if the
/// completion routine panicked.
struct DeliveryEnd<'a> {
    core: &'a Core,
    target: Option<Arc<TargetInner>>,
    routine_counted: bool,
}

impl Drop for DeliveryEnd<'_> {
    fn drop(&mut self) {
        if self.routine_counted {
            counters::add(&self.core.counters.routines_running, -1);
        }
        if let Some(t) = self.target.take() {
            t.finish_one();
        }
        if counters::add(&self.core.counters.in_flight, -1) == 0 {
            self.core.poke_quiet();
        }
    }
}

/// Delivers the completion of send `gen`: calls its completion routine in
/// dispatch context, or wakes the synchronous sender.
pub(crate) fn deliver(req: &Arc<RequestInner>, gen: u64) {
    let core: &Core = &req.core;
    let (routine, result, target, sync, device) = {
        let mut d = req.lock();
        if d.gen != gen || d.phase != Phase::Completing {
            debug_assert!(false, "dmf-sim: stale delivery");
            return;
        }
        d.phase = Phase::Completed;
        (
            d.routine.take(),
            d.result,
            d.target.take(),
            d.sync,
            d.device.take(),
        )
    };
    drop(device);
    if sync {
        {
            let _end = DeliveryEnd {
                core,
                target,
                routine_counted: false,
            };
        }
        req.lock().delivered = true;
        req.cv.notify_all();
        return;
    }
    core.check_stack("completion routine");
    counters::add(&core.counters.routines_running, 1);
    let _end = DeliveryEnd {
        core,
        target,
        routine_counted: true,
    };
    if let Some(routine) = routine {
        let _dispatch = DispatchScope::enter();
        let started = std::time::Instant::now();
        routine.completed(result);
        core.check_routine_duration(started.elapsed());
    }
}
