//! [`RequestTarget`]: the module, its pool of send contexts, the send,
//! completion, cancel and reuse paths, and close.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt;

use dmf_wdf::recorder::Journal;
use dmf_wdf::{
    transition, Completed, CompletionRoutine, Event, IoTarget, Lock, Platform, RawBuffer, Request,
    RequestType, Result, SendOptions, Status, WorkItem, WorkItemHandler,
};

use crate::completion::{Completion, CompletionDelivery, DeliveryContext, SendCompleted};
use crate::config::{RequestTargetConfig, SendParams};
use crate::gate::{Gate, GateRef};
use crate::ids::{CancelId, ReuseId};
use crate::owned::{OwnedCompletion, OwnedSendCompleted, Parked, SendBuffer, SendError};

/// What [`Sender::reuse_delete`](crate::Sender::reuse_delete) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReuseDeletion {
    /// The reusable request was idle and is deleted.
    Deleted,
    /// A send of it is in flight (or being cancelled): it is deleted as soon
    /// as that send has completed and its callback returned (DMF fails
    /// instead; see "Deleting a reusable request in flight is deferred" in
    /// `docs/dmf-differences.md`). The id is already unusable.
    Deferred,
}

/// `DMF_RequestTarget`: sends requests to one I/O target, synchronously or
/// asynchronously, with completion callbacks, timeouts, cancellation by id and
/// reusable requests.
///
/// See the [crate documentation](crate) for the overview, the DMF name table
/// and an example.
///
/// * Every method takes a module reference first; once [`close`](Self::close)
///   has begun every method fails with `STATUS_INVALID_DEVICE_STATE` (or
///   returns `false`), except [`io_target_clear`](Self::io_target_clear).
/// * Every accepted asynchronous send holds a module reference until its
///   completion callback has returned, so close waits for it.
/// * Dropping the module closes it.
pub struct RequestTarget<P: Platform> {
    pub(crate) shared: Arc<Shared<P>>,
}

impl<P: Platform> fmt::Debug for RequestTarget<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.lock();
        f.debug_struct("RequestTarget")
            .field("passive_level", &self.shared.config.passive_level)
            .field("has_target", &st.target.is_some())
            .field("contexts", &st.pooled)
            .field("free_contexts", &st.free.len())
            .field("reuse_requests", &st.reuse_count)
            .field("references", &self.shared.gate.references())
            .field("closing", &self.shared.gate.is_closing())
            .finish()
    }
}

/// What a send carries to its completion: the client's buffers and the
/// callback that gets them.
pub(crate) enum Payload<P: Platform> {
    /// Memory the client keeps valid itself (`unsafe` sends).
    Raw {
        callback: Option<Completion>,
        input: Option<RawBuffer>,
        output: Option<RawBuffer>,
    },
    /// Buffers the send owns until its completion hands them back.
    Owned {
        callback: Option<OwnedCompletion<P>>,
        input: Option<Parked<P>>,
        output: Option<Parked<P>>,
    },
}

impl<P: Platform> Payload<P> {
    /// A safe send's payload: its buffers parked for the device.
    pub(crate) fn owned(
        callback: Option<OwnedCompletion<P>>,
        input: Option<SendBuffer<P>>,
        output: Option<SendBuffer<P>>,
    ) -> Self {
        Payload::Owned {
            callback,
            input: input.map(SendBuffer::park),
            output: output.map(SendBuffer::park),
        }
    }

    /// The memory for the device (empty buffers count as none).
    fn raw_buffers(&self) -> (Option<RawBuffer>, Option<RawBuffer>) {
        match self {
            Payload::Raw { input, output, .. } => (non_empty(*input), non_empty(*output)),
            Payload::Owned { input, output, .. } => (
                non_empty(input.as_ref().map(Parked::raw)),
                non_empty(output.as_ref().map(Parked::raw)),
            ),
        }
    }

    /// A refused safe send's buffers, handed back.
    pub(crate) fn into_error(self, status: Status) -> SendError<P> {
        match self {
            Payload::Owned { input, output, .. } => SendError::new(
                status,
                input.map(Parked::unpark),
                output.map(Parked::unpark),
            ),
            Payload::Raw { .. } => SendError::new(status, None, None),
        }
    }
}

/// Per-send data, filled before the send, taken by completion processing.
struct SendData<P: Platform> {
    payload: Payload<P>,
    client_context: usize,
    request_type: RequestType,
    passive: bool,
    cancel_id: Option<CancelId>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A pooled send context (DMF: context buffer + per-send request).
    Pooled,
    /// A request created by `reuse_create`.
    Reuse { id: ReuseId, delete_pending: bool },
}

/// One send context: a platform request (inside [`Slot`]) plus a work item
/// for passive delivery and the per-send bookkeeping.
///
/// # Invariants (under the state lock)
///
/// * A pooled entry is in `State::free` iff `!owner && cancel_holds == 0 &&
///   pending.is_none()`.
/// * `owner` is set from the moment a method takes the entry until the
///   completion of its send has been processed (pooled: after the callback;
///   reusable: before it, so the callback may resend), or the send failed.
/// * `cancel_id` is non-zero only while a send with a cancel id is in flight
///   (between registration before the send and the completion).
struct Entry<P: Platform> {
    /// Unique per entry: an index freed by a reuse deletion may hold a
    /// different entry later.
    serial: u64,
    slot: Arc<Slot<P>>,
    work: P::WorkItem,
    kind: Kind,
    owner: bool,
    cancel_holds: u32,
    cancel_id: u64,
    pending: Option<Completed>,
    send: Option<SendData<P>>,
}

struct State<P: Platform> {
    target: Option<Arc<P::IoTarget>>,
    /// Bumped at every `io_target_set`; requests are (re)created per target.
    target_gen: u64,
    entries: Vec<Option<Entry<P>>>,
    /// Indices of `None` entries (reserved or deleted), for reuse.
    holes: Vec<usize>,
    /// Pooled entries ready for a send.
    free: Vec<usize>,
    /// Completions to deliver at passive level whose work item could not be
    /// queued: delivered by the next passive handler, or by close.
    deferred: Vec<usize>,
    /// Number of pooled entries (existing or being created).
    pooled: usize,
    /// Number of reusable requests.
    reuse_count: usize,
    /// Work items of deleted entries, dropped later at passive level: an
    /// entry may be removed in a completion routine or another
    /// dispatch-level caller, where deleting a work item is not allowed (the
    /// seam's `WorkItem` contract). The rest of the entry (its request) is
    /// deleted at once.
    retired: Vec<P::WorkItem>,
    /// Source of `Entry::serial`.
    next_serial: u64,
}

pub(crate) struct Shared<P: Platform> {
    platform: P,
    /// Where the module's transitions are recorded.
    journal: Journal<P>,
    config: RequestTargetConfig,
    gate: Gate<P::Event>,
    /// Set when close has finished (second closers wait on it).
    closed: P::Event,
    state: P::Lock<State<P>>,
}

/// The request of an entry, and its completion routine.
struct Slot<P: Platform> {
    request: P::Request,
    /// `State::target_gen` the request was created for.
    target_gen: u64,
    index: usize,
    shared: Weak<Shared<P>>,
}

impl<P: Platform> CompletionRoutine for Slot<P> {
    fn completed(self: Arc<Self>, completion: Completed) {
        if let Some(shared) = self.shared.upgrade() {
            shared.on_completed(self.index, completion);
        }
    }
}

/// The work item handler of one entry: delivers its completion at passive
/// level, then any deferred ones.
struct PassiveWork<P: Platform> {
    shared: Weak<Shared<P>>,
    index: usize,
}

impl<P: Platform> WorkItemHandler for PassiveWork<P> {
    fn run(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.process_pending(self.index);
            shared.drain_deferred();
            shared.reap_retired();
        }
    }
}

/// An entry owned by a method call; released (returned to the pool, or made
/// sendable again) on drop unless committed to an accepted send.
struct Lease<'a, P: Platform> {
    shared: &'a Arc<Shared<P>>,
    index: usize,
    slot: Arc<Slot<P>>,
    target: Arc<P::IoTarget>,
    target_gen: u64,
    committed: bool,
}

impl<P: Platform> Drop for Lease<'_, P> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let (send, removed) = {
            let mut st = self.shared.state.lock();
            let send = st.entries[self.index].as_mut().and_then(|e| {
                e.owner = false;
                e.cancel_id = 0;
                e.send.take()
            });
            let removed = release_locked(&mut st, self.index);
            (send, removed)
        };
        drop(send);
        self.shared.retire(removed);
    }
}

impl<P: Platform> Lease<'_, P> {
    /// Recreates the request if it was created for another target.
    fn ensure_fresh(&mut self) -> Result<()> {
        if self.slot.target_gen == self.target_gen {
            return Ok(());
        }
        let request = self.shared.platform.create_request(Some(&self.target))?;
        let slot = Arc::new(Slot {
            request,
            target_gen: self.target_gen,
            index: self.index,
            shared: Arc::downgrade(self.shared),
        });
        let old = {
            let mut st = self.shared.state.lock();
            match st.entries[self.index].as_mut() {
                Some(e) => core::mem::replace(&mut e.slot, Arc::clone(&slot)),
                None => return Err(Status::INVALID_DEVICE_STATE),
            }
        };
        drop(old);
        self.slot = slot;
        // The target changed since this context was last used: make the idle
        // ones fit it now too, so that none is first recreated later, in the
        // middle of steady-state sends (as when more sends are in flight at
        // once than ever before, which inline completion makes rare).
        self.shared.refresh_idle(&self.target, self.target_gen);
        Ok(())
    }
}

/// The first idle entry (pooled and free, or reusable and not busy) whose
/// request was created for a target other than `target_gen`'s.
fn first_stale_idle<P: Platform>(st: &State<P>, target_gen: u64) -> Option<usize> {
    if st.target_gen != target_gen {
        return None;
    }
    st.entries.iter().position(|e| {
        e.as_ref().is_some_and(|e| {
            !e.owner
                && e.cancel_holds == 0
                && e.pending.is_none()
                && !matches!(
                    e.kind,
                    Kind::Reuse {
                        delete_pending: true,
                        ..
                    }
                )
                && e.slot.target_gen != target_gen
        })
    })
}

/// Makes an entry available again if nobody uses it; returns an entry to
/// drop (outside the lock) when a deferred reuse deletion completes.
fn release_locked<P: Platform>(st: &mut State<P>, index: usize) -> Option<Entry<P>> {
    let e = st.entries[index].as_mut()?;
    if e.owner || e.cancel_holds > 0 || e.pending.is_some() {
        return None;
    }
    match e.kind {
        Kind::Pooled => {
            st.free.push(index);
            None
        }
        Kind::Reuse {
            delete_pending: true,
            ..
        } => {
            let entry = st.entries[index].take();
            st.holes.push(index);
            st.reuse_count -= 1;
            entry
        }
        Kind::Reuse { .. } => None,
    }
}

/// How often a refused work-item enqueue is retried at once before the
/// completion is deferred to the next passive handler or close.
const ENQUEUE_ATTEMPTS: usize = 8;

/// Enqueues `work`, retrying a transient refusal (KMDF's enqueue cannot fail;
/// the simulator's can, by injection) so that a completion is not left
/// waiting for an unrelated later passive handler.
fn enqueue_retrying<W: WorkItem>(work: &W) -> Result<()> {
    let mut last = Ok(());
    for _ in 0..ENQUEUE_ATTEMPTS {
        last = work.enqueue();
        if last.is_ok() {
            break;
        }
    }
    last
}

fn non_empty(buffer: Option<RawBuffer>) -> Option<RawBuffer> {
    buffer.filter(|b| !b.is_empty())
}

impl<P: Platform> Shared<P> {
    /// Deletes a removed entry's request now and keeps its work item for
    /// [`reap_retired`](Self::reap_retired): the caller may be in dispatch
    /// context, where a work item cannot be deleted.
    fn retire(&self, removed: Option<Entry<P>>) {
        if let Some(entry) = removed {
            let Entry { work, .. } = entry;
            self.state.lock().retired.push(work);
        }
    }

    /// Drops the retired entries (passive level: a passive work item, close,
    /// drop). A retired entry's own work item may be the one running this:
    /// dropping a work item from its own handler is allowed.
    fn reap_retired(&self) {
        let retired = core::mem::take(&mut self.state.lock().retired);
        drop(retired);
    }

    fn resolve(&self, delivery: CompletionDelivery) -> bool {
        match delivery {
            CompletionDelivery::Module => self.config.passive_level,
            CompletionDelivery::Dispatch => false,
            CompletionDelivery::Passive => true,
        }
    }

    /// Reserves an entry index, creates the entry's objects outside the lock,
    /// and installs it (owned by the caller when `owner`).
    fn create_entry(
        self: &Arc<Self>,
        kind: Kind,
        owner: bool,
        target: Option<&Arc<P::IoTarget>>,
        target_gen: u64,
    ) -> Result<(usize, Arc<Slot<P>>)> {
        let index = {
            let mut st = self.state.lock();
            match st.holes.pop() {
                Some(i) => i,
                None => {
                    st.entries.push(None);
                    st.entries.len() - 1
                }
            }
        };
        let created = self
            .platform
            .create_request(target.map(|t| &**t))
            .and_then(|request| {
                let handler = Arc::new(PassiveWork {
                    shared: Arc::downgrade(self),
                    index,
                });
                let work = self.platform.create_work_item(handler)?;
                Ok((request, work))
            });
        let (request, work) = match created {
            Ok(v) => v,
            Err(status) => {
                self.state.lock().holes.push(index);
                return Err(status);
            }
        };
        let slot = Arc::new(Slot {
            request,
            target_gen,
            index,
            shared: Arc::downgrade(self),
        });
        let mut st = self.state.lock();
        if matches!(kind, Kind::Reuse { .. }) {
            st.reuse_count += 1;
        }
        st.next_serial += 1;
        let serial = st.next_serial;
        st.entries[index] = Some(Entry {
            serial,
            slot: Arc::clone(&slot),
            work,
            kind,
            owner,
            cancel_holds: 0,
            cancel_id: 0,
            pending: None,
            send: None,
        });
        Ok((index, slot))
    }

    /// Recreates the request of every idle context made for an earlier
    /// target, for `target` (generation `target_gen`), after a send found
    /// its own context stale. Without this, a context preallocated (or last
    /// used) before the target was set is recreated — two allocations — by
    /// the first send that happens to take it, which may be long after the
    /// sends reached their steady state. The entries stay idle (usable by
    /// other sends) meanwhile: each new request is created outside the lock
    /// and swapped in under it. Best effort: if a request cannot be created
    /// now, the remaining stale contexts are recreated by their next send
    /// ([`Lease::ensure_fresh`]), as before.
    fn refresh_idle(self: &Arc<Self>, target: &Arc<P::IoTarget>, target_gen: u64) {
        while first_stale_idle(&self.state.lock(), target_gen).is_some() {
            let Ok(request) = self.platform.create_request(Some(&**target)) else {
                return;
            };
            let (old, unused) = {
                let mut st = self.state.lock();
                match first_stale_idle(&st, target_gen) {
                    Some(index) => {
                        let slot = Arc::new(Slot {
                            request,
                            target_gen,
                            index,
                            shared: Arc::downgrade(self),
                        });
                        let e = st.entries[index].as_mut().expect("found above");
                        (Some(core::mem::replace(&mut e.slot, slot)), None)
                    }
                    // Taken or refreshed by someone else meanwhile.
                    None => (None, Some(request)),
                }
            };
            drop(old);
            if unused.is_some() {
                drop(unused);
                return;
            }
        }
    }

    /// Takes a pooled send context for the current target, growing the pool
    /// if it is empty.
    fn lease_pooled(self: &Arc<Self>) -> Result<Lease<'_, P>> {
        let (target, target_gen) = {
            let mut st = self.state.lock();
            let target = st.target.clone().ok_or(Status::INVALID_DEVICE_STATE)?;
            let target_gen = st.target_gen;
            if let Some(index) = st.free.pop() {
                let e = st.entries[index]
                    .as_mut()
                    .expect("free list holds live entries");
                e.owner = true;
                let slot = Arc::clone(&e.slot);
                drop(st);
                return Ok(Lease {
                    shared: self,
                    index,
                    slot,
                    target,
                    target_gen,
                    committed: false,
                });
            }
            if self.config.contexts.max_contexts != 0
                && st.pooled >= self.config.contexts.max_contexts
            {
                return Err(Status::INSUFFICIENT_RESOURCES);
            }
            st.pooled += 1;
            (target, target_gen)
        };
        match self.create_entry(Kind::Pooled, true, Some(&target), target_gen) {
            Ok((index, slot)) => {
                transition!(
                    self.journal,
                    DEBUG,
                    "RequestTarget: send context pool grew",
                    contexts = self.state.lock().pooled
                );
                Ok(Lease {
                    shared: self,
                    index,
                    slot,
                    target,
                    target_gen,
                    committed: false,
                })
            }
            Err(status) => {
                self.state.lock().pooled -= 1;
                transition!(
                    self.journal,
                    DEBUG,
                    "RequestTarget: send context pool cannot grow",
                    ?status
                );
                Err(status)
            }
        }
    }

    /// Takes the reusable request `id` for a send.
    fn lease_reuse(self: &Arc<Self>, id: ReuseId) -> Result<Lease<'_, P>> {
        let mut st = self.state.lock();
        let target = st.target.clone().ok_or(Status::INVALID_DEVICE_STATE)?;
        let target_gen = st.target_gen;
        let index = st
            .entries
            .iter()
            .position(|e| {
                e.as_ref().is_some_and(|e| {
                    e.kind
                        == Kind::Reuse {
                            id,
                            delete_pending: false,
                        }
                })
            })
            .ok_or(Status::OBJECTID_NOT_FOUND)?;
        let e = st.entries[index].as_mut().expect("found above");
        if e.owner || e.cancel_holds > 0 || e.pending.is_some() {
            return Err(Status::OBJECTID_NOT_FOUND);
        }
        e.owner = true;
        let slot = Arc::clone(&e.slot);
        drop(st);
        Ok(Lease {
            shared: self,
            index,
            slot,
            target,
            target_gen,
            committed: false,
        })
    }

    /// Formats and sends the request of `lease`. `reference` is the method
    /// call's module reference, held until this returns; on acceptance the
    /// lease's entry, the payload and a second reference belong to the
    /// completion. On refusal the payload is left in `payload`.
    ///
    /// # Safety
    ///
    /// The buffers of a [`Payload::Raw`] stay valid (and the output
    /// untouched by others) until the completion callback has returned, if
    /// this returns `Ok` (the contract of [`Sender::send_raw`](crate::Sender::send_raw)).
    unsafe fn send_leased(
        &self,
        mut lease: Lease<'_, P>,
        reference: GateRef<'_, P::Event>,
        payload: &mut Option<Payload<P>>,
        params: SendParams,
        client_context: usize,
        want_cancel_id: bool,
    ) -> Result<Option<CancelId>> {
        lease.ensure_fresh()?;
        let request = &lease.slot.request;
        request.reuse()?;
        let (input, output) = payload.as_ref().map_or((None, None), Payload::raw_buffers);
        // SAFETY: raw buffers: the caller guarantees they stay valid (and
        // the output untouched) until the completion callback has returned
        // or this send failed. Owned buffers: parked, so only the device
        // accesses them until the completion unparks them. Either covers the
        // contract of `format_request`: the target touches them no more once
        // the completion routine has been called or the send refused (the
        // seam's `IoTarget` safety contract).
        unsafe {
            lease.target.format_request(
                request,
                params.request_type,
                params.ioctl,
                input,
                output,
            )?;
        }
        let cancel_id = want_cancel_id.then(CancelId::fresh);
        {
            let mut st = self.state.lock();
            let e = st.entries[lease.index]
                .as_mut()
                .expect("a leased entry exists");
            e.cancel_id = cancel_id.map_or(0, CancelId::get);
            e.send = payload.take().map(|payload| SendData {
                payload,
                client_context,
                request_type: params.request_type,
                passive: self.resolve(params.delivery),
                cancel_id,
            });
        }
        let options = SendOptions {
            timeout_ms: params.timeout_ms,
        };
        // The completion's own reference: it may run (and release it) before
        // `send` returns, while this method call still needs `reference`
        // (close waits for both).
        let completion_reference = reference.another();
        let result = match lease.target.send(request, options, Arc::clone(&lease.slot)) {
            Ok(()) => {
                // From here the completion owns the entry and its reference
                // (it may already have run).
                lease.committed = true;
                completion_reference.keep();
                tracing::trace!(
                    index = lease.index,
                    cancel_id = cancel_id.map_or(0, CancelId::get),
                    "RequestTarget: request sent"
                );
                Ok(cancel_id)
            }
            Err(status) => {
                tracing::trace!(?status, "RequestTarget: send refused");
                // Refused: no completion comes; the payload goes back.
                let mut st = self.state.lock();
                if let Some(e) = st.entries[lease.index].as_mut() {
                    *payload = e.send.take().map(|s| s.payload);
                }
                Err(status)
            }
        };
        // The lease (its request and target references, or the entry it
        // returns to the pool) goes while this call still holds `reference`.
        drop(lease);
        drop(reference);
        result
    }

    /// Takes a send context (pooled, or the reusable request `reuse`) and
    /// sends `payload` with it; on refusal the payload is left in `payload`.
    ///
    /// # Safety
    ///
    /// As [`send_leased`](Self::send_leased).
    pub(crate) unsafe fn submit(
        self: &Arc<Self>,
        reuse: Option<ReuseId>,
        payload: &mut Option<Payload<P>>,
        params: SendParams,
        client_context: usize,
        want_cancel_id: bool,
    ) -> Result<Option<CancelId>> {
        let reference = self.gate.acquire()?;
        let lease = match reuse {
            Some(id) => self.lease_reuse(id)?,
            None => self.lease_pooled()?,
        };
        // SAFETY: forwarded contract.
        unsafe {
            self.send_leased(
                lease,
                reference,
                payload,
                params,
                client_context,
                want_cancel_id,
            )
        }
    }

    /// The completion routine of every asynchronous send (dispatch context).
    fn on_completed(self: &Arc<Self>, index: usize, completion: Completed) {
        let passive = {
            let mut st = self.state.lock();
            let Some(e) = st.entries[index].as_mut() else {
                debug_assert!(false, "completion for a missing entry");
                return;
            };
            e.cancel_id = 0;
            let passive = e.send.as_ref().is_some_and(|s| s.passive);
            if passive {
                e.pending = Some(completion);
                if let Err(status) = enqueue_retrying(&e.work) {
                    // Never lose the completion (it holds a module
                    // reference close waits for).
                    st.deferred.push(index);
                    transition!(
                        self.journal,
                        WARN,
                        "RequestTarget: work item enqueue failed; completion deferred",
                        ?status,
                        index
                    );
                    if self.gate.is_closing() {
                        self.gate.wake.set();
                    }
                }
            }
            // Retry completions deferred earlier.
            while let Some(&i) = st.deferred.last() {
                if i == index {
                    break;
                }
                let queued = st.entries[i]
                    .as_ref()
                    .is_some_and(|e| e.work.enqueue().is_ok());
                if !queued {
                    break;
                }
                st.deferred.pop();
            }
            passive
        };
        if !passive {
            self.process(index, completion, DeliveryContext::Dispatch);
        }
    }

    /// Processes the stored completion of `index` if it is still pending
    /// (exactly once, whoever gets here first). Passive level.
    fn process_pending(&self, index: usize) {
        let completion = {
            let mut st = self.state.lock();
            st.entries
                .get_mut(index)
                .and_then(|e| e.as_mut())
                .and_then(|e| e.pending.take())
        };
        if let Some(completion) = completion {
            self.process(index, completion, DeliveryContext::Passive);
        }
    }

    /// Delivers the completions whose work item could not be queued.
    /// Passive level.
    fn drain_deferred(&self) {
        loop {
            let next = self.state.lock().deferred.pop();
            match next {
                Some(index) => self.process_pending(index),
                None => return,
            }
        }
    }

    /// DMF `RequestTarget_ProcessAsynchronousRequestRoot`: extracts the
    /// buffers, frees a reusable request for resending, calls the client,
    /// returns the context, releases the module reference.
    fn process(&self, index: usize, completion: Completed, context: DeliveryContext) {
        let (send, reuse_id, serial) = {
            let mut st = self.state.lock();
            let e = st.entries[index]
                .as_mut()
                .expect("an entry with a send in flight exists");
            let serial = e.serial;
            let send = e.send.take();
            let reuse_id = match e.kind {
                Kind::Reuse { id, .. } => {
                    // Before the callback: the client may resend from it.
                    e.owner = false;
                    Some(id)
                }
                Kind::Pooled => None,
            };
            (send, reuse_id, serial)
        };
        let removed = if let Some(send) = send {
            let SendData {
                payload,
                client_context,
                request_type,
                cancel_id,
                ..
            } = send;
            let information = completion.information;
            match payload {
                Payload::Raw {
                    callback,
                    input,
                    output,
                } => {
                    if let Some(callback) = &callback {
                        let (input, output) = buffers(request_type, input, output, information);
                        callback.send_completed(&SendCompleted {
                            status: completion.status,
                            information,
                            request_type,
                            input,
                            output,
                            client_context,
                            cancel_id,
                            reuse_id,
                            context,
                        });
                    }
                }
                Payload::Owned {
                    callback,
                    input,
                    output,
                } => {
                    // The request completed: the device is done with the
                    // buffers.
                    let completed = OwnedSendCompleted {
                        status: completion.status,
                        information,
                        request_type,
                        input: input.map(Parked::unpark),
                        output: output.map(Parked::unpark),
                        client_context,
                        cancel_id,
                        reuse_id,
                        context,
                    };
                    match &callback {
                        Some(callback) => callback.send_completed(completed),
                        None => drop(completed),
                    }
                }
            }
            let mut st = self.state.lock();
            // A reusable request may have been deleted by the callback (and
            // its index taken by a new entry): then there is nothing to do.
            let removed = match st.entries[index].as_mut() {
                Some(e) if e.serial == serial => {
                    if e.kind == Kind::Pooled {
                        e.owner = false;
                    }
                    release_locked(&mut st, index)
                }
                _ => None,
            };
            drop(st);
            removed
        } else {
            debug_assert!(false, "completion without send data");
            None
        };
        self.retire(removed);
        tracing::trace!(index, status = ?completion.status, "RequestTarget: request completed");
        self.gate.release();
    }
}

/// The client's raw buffers as the completion reports them (see
/// [`SendCompleted`]).
fn buffers<'a>(
    request_type: RequestType,
    input: Option<RawBuffer>,
    output: Option<RawBuffer>,
    information: usize,
) -> (&'a [u8], &'a [u8]) {
    let view = |b: Option<RawBuffer>, len: Option<usize>| -> &'a [u8] {
        match b {
            // SAFETY: the sender guaranteed (contract of `Sender::send_raw`)
            // that its buffers stay valid until the completion callback has
            // returned, and the device no longer accesses them once the
            // completion routine runs (the seam's `IoTarget` safety
            // contract). The slice does not outlive the callback.
            Some(b) => unsafe {
                let full = b.as_slice();
                &full[..len.unwrap_or(full.len()).min(full.len())]
            },
            None => &[],
        }
    };
    let (input, output) = (non_empty(input), non_empty(output));
    match request_type {
        RequestType::Read => (&[], view(output, Some(information))),
        RequestType::Write => (view(input, Some(information)), &[]),
        RequestType::Ioctl | RequestType::InternalIoctl => {
            (view(input, None), view(output, Some(information)))
        }
        RequestType::Invalid => (&[], &[]),
    }
}

impl<P: Platform> RequestTarget<P> {
    /// Creates the module and opens it (DMF `DMF_RequestTarget_Create`, open
    /// option `OPEN_Create`): creates the close events and
    /// `preallocated_contexts` send contexts (requests and work items). No
    /// target is set yet.
    ///
    /// Errors: the platform's creation failures. Passive level.
    pub fn new(platform: &P, config: RequestTargetConfig) -> Result<Self> {
        Self::new_in(
            platform,
            config,
            Journal::new(platform, format_args!("RequestTarget")),
        )
    }

    /// As [`new`](Self::new), recording into `journal` (for example the
    /// journal of the module that owns this one) instead of a recorder of
    /// its own.
    pub fn new_in(platform: &P, config: RequestTargetConfig, journal: Journal<P>) -> Result<Self> {
        let platform = platform.clone();
        let wake = platform.create_event(false)?;
        let closed = platform.create_event(false)?;
        let shared = Arc::new(Shared {
            platform,
            journal,
            config,
            gate: Gate::new(wake),
            closed,
            state: P::Lock::new(State {
                target: None,
                target_gen: 0,
                entries: Vec::new(),
                holes: Vec::new(),
                free: Vec::new(),
                deferred: Vec::new(),
                pooled: 0,
                reuse_count: 0,
                retired: Vec::new(),
                next_serial: 0,
            }),
        });
        let module = RequestTarget { shared };
        let count = if config.contexts.max_contexts == 0 {
            config.contexts.preallocated_contexts
        } else {
            config
                .contexts
                .preallocated_contexts
                .min(config.contexts.max_contexts)
        };
        {
            let mut st = module.shared.state.lock();
            st.entries.reserve(count);
            st.free.reserve(count);
            st.deferred.reserve(count);
        }
        for _ in 0..count {
            module.shared.state.lock().pooled += 1;
            match module.shared.create_entry(Kind::Pooled, false, None, 0) {
                Ok((index, _)) => module.shared.state.lock().free.push(index),
                Err(status) => {
                    module.shared.state.lock().pooled -= 1;
                    return Err(status);
                }
            }
        }
        transition!(
            module.shared.journal,
            DEBUG,
            "RequestTarget: opened",
            passive_level = config.passive_level,
            contexts = count
        );
        Ok(module)
    }

    /// The configuration.
    pub fn config(&self) -> &RequestTargetConfig {
        &self.shared.config
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.shared.platform
    }

    /// `DMF_RequestTarget_IoTargetSet`: sets the target every later send goes
    /// to, replacing any previous one (DMF asserts none was set). The module
    /// keeps a clone of the `Arc` until [`io_target_clear`](Self::io_target_clear)
    /// or close; the caller opens and closes the target itself. Sends already
    /// in flight are not affected.
    ///
    /// Errors: `STATUS_INVALID_DEVICE_STATE` once close has begun. Any level.
    pub fn io_target_set(&self, target: Arc<P::IoTarget>) -> Result<()> {
        let _reference = self.shared.gate.acquire()?;
        let previous = {
            let mut st = self.shared.state.lock();
            st.target_gen += 1;
            st.target.replace(target)
        };
        drop(previous);
        transition!(self.shared.journal, DEBUG, "RequestTarget: target set");
        Ok(())
    }

    /// `DMF_RequestTarget_IoTargetClear`: forgets the target; later sends
    /// fail with `STATUS_INVALID_DEVICE_STATE` until a target is set again.
    /// Sends in flight are not affected (cancel them, or close or purge the
    /// target, to finish them). Works also while closing. Any level (the
    /// caller must not let this drop the last reference of an open target in
    /// dispatch context).
    pub fn io_target_clear(&self) {
        let previous = self.shared.state.lock().target.take();
        if previous.is_some() {
            transition!(self.shared.journal, DEBUG, "RequestTarget: target cleared");
        }
        drop(previous);
    }

    /// The target currently set.
    pub fn io_target(&self) -> Option<Arc<P::IoTarget>> {
        self.shared.state.lock().target.clone()
    }

    pub(crate) fn sync_send(
        &self,
        input: &[u8],
        output: &mut [u8],
        params: SendParams,
    ) -> Result<usize> {
        let _reference = self.shared.gate.acquire()?;
        let mut lease = self.shared.lease_pooled()?;
        lease.ensure_fresh()?;
        let request = &lease.slot.request;
        request.reuse()?;
        let input = (!input.is_empty()).then(|| RawBuffer::from_slice(input));
        let output = (!output.is_empty()).then(|| RawBuffer::from_mut_slice(output));
        // SAFETY: both buffers are borrowed for this whole call, and the
        // synchronous send returns only after the request has completed (also
        // on timeout: it is cancelled and waited for), after which the target
        // touches them no more (the seam's `IoTarget` safety contract);
        // `output` is exclusively borrowed, so nobody else touches it
        // meanwhile.
        unsafe {
            lease.target.format_request(
                request,
                params.request_type,
                params.ioctl,
                input,
                output,
            )?;
        }
        let result = lease.target.send_synchronously(request, params.timeout_ms);
        tracing::trace!(?result, "RequestTarget: synchronous send done");
        result
    }

    pub(crate) fn cancel_send(&self, id: CancelId) -> bool {
        let Ok(_reference) = self.shared.gate.acquire() else {
            return false;
        };
        let (index, slot) = {
            let mut st = self.shared.state.lock();
            let found = st.entries.iter_mut().enumerate().find_map(|(i, e)| {
                e.as_mut()
                    .filter(|e| e.cancel_id == id.get() && e.owner)
                    .map(|e| {
                        // Pins the entry: it cannot be sent again (with
                        // another id) before we are done.
                        e.cancel_holds += 1;
                        (i, Arc::clone(&e.slot))
                    })
            });
            match found {
                Some(v) => v,
                None => return false,
            }
        };
        let cancelled = slot.request.cancel_sent();
        let removed = {
            let mut st = self.shared.state.lock();
            if let Some(e) = st.entries[index].as_mut() {
                e.cancel_holds -= 1;
            }
            release_locked(&mut st, index)
        };
        self.shared.retire(removed);
        drop(slot);
        tracing::trace!(cancel_id = id.get(), cancelled, "RequestTarget: cancel");
        cancelled
    }

    pub(crate) fn create_reusable(&self) -> Result<ReuseId> {
        let _reference = self.shared.gate.acquire()?;
        let (target, target_gen) = {
            let st = self.shared.state.lock();
            (st.target.clone(), st.target_gen)
        };
        let id = ReuseId::fresh();
        let kind = Kind::Reuse {
            id,
            delete_pending: false,
        };
        self.shared
            .create_entry(kind, false, target.as_ref(), target_gen)?;
        tracing::debug!(
            reuse_id = id.get(),
            "RequestTarget: reusable request created"
        );
        Ok(id)
    }

    pub(crate) fn delete_reusable(&self, id: ReuseId) -> Result<ReuseDeletion> {
        let _reference = self.shared.gate.acquire()?;
        let (outcome, removed) = {
            let mut st = self.shared.state.lock();
            let index = st
                .entries
                .iter()
                .position(|e| {
                    e.as_ref()
                        .is_some_and(|e| matches!(e.kind, Kind::Reuse { id: i, delete_pending: false } if i == id))
                })
                .ok_or(Status::OBJECTID_NOT_FOUND)?;
            let e = st.entries[index].as_mut().expect("found above");
            e.kind = Kind::Reuse {
                id,
                delete_pending: true,
            };
            match release_locked(&mut st, index) {
                Some(entry) => (ReuseDeletion::Deleted, Some(entry)),
                None => (ReuseDeletion::Deferred, None),
            }
        };
        self.shared.retire(removed);
        tracing::debug!(
            reuse_id = id.get(),
            ?outcome,
            "RequestTarget: reusable request deleted"
        );
        Ok(outcome)
    }

    /// Where this module records its transitions (its in-flight recorder,
    /// or its owner's).
    pub fn journal(&self) -> &Journal<P> {
        &self.shared.journal
    }

    /// Asynchronous sends in flight plus method calls in progress (diagnostics).
    pub fn references(&self) -> usize {
        self.shared.gate.references()
    }

    /// Number of pooled send contexts (each owns a platform request).
    pub fn context_count(&self) -> usize {
        self.shared.state.lock().pooled
    }

    /// Number of reusable requests not yet deleted.
    pub fn reuse_count(&self) -> usize {
        self.shared.state.lock().reuse_count
    }

    /// Whether [`close`](Self::close) has begun.
    pub fn is_closing(&self) -> bool {
        self.shared.gate.is_closing()
    }

    /// Closes the module (DMF Close, without its hangs): from now on every
    /// method fails with `STATUS_INVALID_DEVICE_STATE`; then waits (on an
    /// event, no polling) for method calls in progress and for every
    /// asynchronous send in flight to complete and its callback to return —
    /// delivering here any passive completion whose work item could not be
    /// queued, and, with
    /// [`cancel_in_flight_on_close_after_ms`](crate::SendContextConfig::cancel_in_flight_on_close_after_ms),
    /// cancelling sends still in flight after that grace period. Then
    /// deletes the reusable requests the client forgot (with a warning each)
    /// and every send context, and forgets the target.
    ///
    /// Idempotent: a second caller waits until the first close finished.
    /// Also run by `drop`. Passive level; never from a completion callback of
    /// this module (it would wait for itself).
    pub fn close(&self) {
        let shared = &self.shared;
        if !shared.gate.begin_close() {
            shared.closed.wait(None);
            return;
        }
        transition!(
            shared.journal,
            DEBUG,
            "RequestTarget: closing",
            in_flight = shared.gate.references()
        );
        let mut grace = shared.config.contexts.cancel_in_flight_on_close_after_ms;
        loop {
            shared.drain_deferred();
            shared.gate.wake.reset();
            if shared.gate.references() == 0 {
                break;
            }
            if !shared.state.lock().deferred.is_empty() {
                continue;
            }
            if !shared.gate.wake.wait(grace) {
                grace = None;
                self.cancel_all_in_flight();
            }
        }
        let (entries, target, forgotten) = {
            let mut st = shared.state.lock();
            let entries = core::mem::take(&mut st.entries);
            st.holes.clear();
            st.free.clear();
            st.deferred.clear();
            st.pooled = 0;
            let forgotten = core::mem::replace(&mut st.reuse_count, 0);
            (entries, st.target.take(), forgotten)
        };
        for entry in entries.iter().flatten() {
            if let Kind::Reuse { id, delete_pending } = entry.kind {
                if !delete_pending {
                    transition!(
                        shared.journal,
                        WARN,
                        "RequestTarget: close deletes a reusable request the client did not delete",
                        reuse_id = id.get()
                    );
                }
            }
        }
        drop(entries);
        drop(target);
        shared.reap_retired();
        shared.closed.set();
        transition!(
            shared.journal,
            DEBUG,
            "RequestTarget: closed",
            forgotten_reuse_requests = forgotten
        );
    }

    /// Close's grace period expired: cancel every send still in flight.
    fn cancel_all_in_flight(&self) {
        let in_flight: Vec<Arc<Slot<P>>> = {
            let st = self.shared.state.lock();
            st.entries
                .iter()
                .flatten()
                .filter(|e| e.owner && e.send.is_some())
                .map(|e| Arc::clone(&e.slot))
                .collect()
        };
        transition!(
            self.shared.journal,
            WARN,
            "RequestTarget: close grace period expired; cancelling sends in flight",
            count = in_flight.len()
        );
        for slot in in_flight {
            slot.request.cancel_sent();
        }
    }
}

/// Compile-time proof that `RequestTarget<P>` can be shared between threads
/// for every platform (generic bodies are type-checked without being called).
#[allow(dead_code)]
fn assert_send_sync<P: Platform>() {
    fn is<T: Send + Sync>() {}
    is::<RequestTarget<P>>();
}

impl<P: Platform> Drop for RequestTarget<P> {
    fn drop(&mut self) {
        self.close();
    }
}
