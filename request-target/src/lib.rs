//! # dmf-request-target: DMF_RequestTarget in Rust
//!
//! Sends requests to one I/O target, synchronously or asynchronously, with
//! per-request completion callbacks carrying a client context, timeouts,
//! cancellation by id and reusable requests; completions are delivered in
//! dispatch or passive context, chosen per module (DMF's `PassiveLevel`) and
//! per call. No streaming (that is `dmf-continuous-request-target`, which
//! embeds a [`RequestTarget`] for its non-streaming methods).
//!
//! `no_std` + `alloc`, generic over the platform seam [`dmf_wdf::Platform`];
//! tested on `dmf-sim`.
//!
//! ## DMF name -> Rust name
//!
//! | DMF | here |
//! |---|---|
//! | `DMF_RequestTarget_Create` (+ Open, `OPEN_Create`) | [`RequestTarget::new`] |
//! | module attribute `PassiveLevel` | [`RequestTargetConfig::passive_level`] |
//! | child BufferPool of single-async contexts (1 + look-aside) | pooled send contexts: [`SendContextConfig::preallocated_contexts`], [`SendContextConfig::max_contexts`] |
//! | `DMF_RequestTarget_IoTargetSet` / `IoTargetClear` | [`RequestTarget::io_target_set`] / [`RequestTarget::io_target_clear`] |
//! | the method set below, shared by every layer that sends | the [`Sender`] trait (implemented by [`RequestTarget`], a continuous request target, a device-interface-multiple-target target guard) |
//! | `DMF_RequestTarget_SendSynchronously` | [`Sender::send_synchronously`] |
//! | `DMF_RequestTarget_Send` | [`Sender::send`] (owned [`SendBuffer`]s, safe), [`Sender::send_raw`] (raw buffers, `unsafe`) |
//! | `DMF_RequestTarget_SendEx` (with `RequestId` out-parameter) | [`Sender::send_ex`], [`Sender::send_ex_raw`] |
//! | `DMF_RequestTarget_Cancel` | [`Sender::cancel`] |
//! | `DMF_RequestTarget_ReuseCreate` / `ReuseSend` / `ReuseDelete` | [`Sender::reuse_create`] / [`Sender::reuse_send`] ([`Sender::reuse_send_raw`]) / [`Sender::reuse_delete`] |
//! | Close (module destruction) | [`RequestTarget::close`], `Drop` |
//! | `ContinuousRequestTarget_RequestType` | [`dmf_wdf::RequestType`] |
//! | `RequestType`, `RequestIoctl`, `RequestTimeoutMilliseconds` parameters | [`SendParams`] |
//! | `ContinuousRequestTarget_CompletionOptions` (`Default`/`Dispatch`/`Passive`) | [`CompletionDelivery`] (`Module`/`Dispatch`/`Passive`) |
//! | `EVT_DMF_ContinuousRequestTarget_SendCompletion` | safe sends: [`OwnedSendCompletion`] (closures implement it), [`OwnedCompletion`] (`Arc<dyn OwnedSendCompletion<P>>`); raw sends: [`SendCompletion`], [`Completion`] |
//! | its parameters (`ClientRequestContext`, buffers, byte counts, status) | [`OwnedSendCompleted`] (the buffers by value), [`SendCompleted`] (raw: slices) |
//! | `RequestId` (cancel) / reuse `RUNTIME_REQUEST_ID` | [`CancelId`] / [`ReuseId`] |
//!
//! ## Differences from DMF
//!
//! The fixes are sections of the workspace's `docs/dmf-differences.md` (what
//! DMF does, what this crate does, the test that shows it).
//!
//! * **A failed send never loses its send context**: a failed send never loses its pooled context (RAII lease).
//! * **A passive completion is never lost**: if the work item of a passive completion cannot be queued, the
//!   completion is deferred and delivered by the next passive handler or by
//!   close; it is never lost and close never hangs on it.
//! * **Close waits on an event and deletes forgotten reusable requests**: close waits on an event (no polling) and deletes reusable
//!   requests the client forgot, with a warning.
//! * **Deleting a reusable request in flight is deferred**: [`Sender::reuse_delete`] of a request in flight defers
//!   the deletion to its completion ([`ReuseDeletion::Deferred`]).
//! * **Safe sends with owned buffers**, and **one sender for every layer**
//!   ([`Sender`]).
//! * Completion context can be chosen per call ([`SendParams::delivery`]).
//! * Every method refuses with `STATUS_INVALID_DEVICE_STATE` once close has
//!   begun, `reuse_delete` included (DMF allows it while closing; close
//!   deletes the remaining reusable requests itself). `io_target_clear`
//!   still works.
//! * Request ids ([`CancelId`], [`ReuseId`]) come from one process-wide
//!   counter starting at `0x100`, as in DMF, and are never reused.
//! * Optional cancellation of sends still in flight at close after a grace
//!   period ([`SendContextConfig::cancel_in_flight_on_close_after_ms`]).
//!
//! ## Memory and allocation
//!
//! Each send context is a platform request plus a work item, pooled and
//! reused: in steady state (same target, enough contexts) an asynchronous
//! send allocates nothing — the completion callback is an `Arc` the client
//! clones per send, the client context a `usize`, the buffers are moved. Contexts are recreated
//! when the target changes (a request is created for its target's stack).
//! The layer never hands its own memory to a device, so it does not use
//! [`Platform::allocate`](dmf_wdf::Platform::allocate); its bookkeeping
//! (pool vectors, `Arc`s) uses the global allocator and grows only with the
//! number of concurrent sends.
//!
//! Asynchronous sends come in two forms ([`Sender`]). The safe ones take
//! owned buffers ([`SendBuffer`]: a `Vec<u8>`, a `Box<[u8]>` or a
//! `dmf-buffer-pool` buffer), keep them while the request is in flight and
//! hand them back by value to the completion callback ([`OwnedSendCompleted`])
//! or with a refusal ([`SendError`]); moving a buffer does not allocate, so
//! a client that sends the buffer it got back allocates nothing either
//! (`tests/no_alloc.rs`). The raw ones take [`dmf_wdf::RawBuffer`]s and are
//! `unsafe`, exactly like DMF (and the seam's `format_request`): the caller
//! keeps the memory alive until the completion. They serve zero-copy use of
//! memory the client manages itself.
//!
//! ## Example
//!
//! ```
//! use std::sync::{mpsc, Arc, Mutex};
//! use dmf_request_target::{OwnedCompletion, OwnedSendCompleted, RequestTarget, RequestTargetConfig, Sender, SendParams};
//! use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP};
//! use dmf_sim::{DeviceSpec, Sim, SimConfig, TestsIoctlHandler};
//! use dmf_wdf::*;
//!
//! struct NoEvents;
//! impl TargetEvents for NoEvents {
//!     fn query_remove(&self) -> Status { Status::SUCCESS }
//!     fn remove_canceled(&self) {}
//!     fn remove_complete(&self) {}
//! }
//!
//! let sim = Sim::new(SimConfig::default());
//! let id = sim.bus().add_device(DeviceSpec::new("dev", Arc::new(TestsIoctlHandler::default()))).unwrap();
//! let link = sim.bus().device_link(id).unwrap();
//! let target = Arc::new(sim.create_io_target().unwrap());
//! target.open(&OpenParams { symbolic_link: &link, open_mode: OpenMode::READ_WRITE,
//!     share_access: ShareAccess::READ_WRITE }, Arc::new(NoEvents)).unwrap();
//!
//! let module = RequestTarget::new(&sim, RequestTargetConfig::default()).unwrap();
//! module.io_target_set(Arc::clone(&target)).unwrap();
//!
//! // Synchronous: sleep 5 ms at the device.
//! let n = module.send_synchronously(&encode_sleep(5), &mut [], SendParams::ioctl(IOCTL_SLEEP)).unwrap();
//! assert_eq!(n, 0);
//!
//! // Asynchronous, safe: the send owns the buffers and hands them back.
//! let (tx, rx) = mpsc::channel();
//! let tx = Mutex::new(tx);
//! let done: OwnedCompletion<Sim> = Arc::new(move |c: OwnedSendCompleted<Sim>| {
//!     let input = c.input.and_then(|b| b.into_vec().ok());
//!     tx.lock().unwrap().send((c.status, c.client_context, input)).unwrap();
//! });
//! // A 10 s sleep, cancelled by its id.
//! let input = encode_sleep(10_000).to_vec();
//! let id = module.send_ex(Some(input.into()), None, SendParams::ioctl(IOCTL_SLEEP),
//!                         Some(done), 42).unwrap();
//! assert!(module.cancel(id));
//! let (status, context, input) = rx.recv().unwrap();
//! assert_eq!((status, context), (Status::CANCELLED, 42));
//! assert_eq!(input.unwrap(), encode_sleep(10_000)); // our vector, back
//!
//! module.close();
//! assert_eq!(module.reuse_create().err(), Some(Status::INVALID_DEVICE_STATE));
//! drop(module);
//! target.close();
//! drop(target);
//! // The simulator's completion thread may still be unwinding the last
//! // completion (after our callback returned): wait for it before counting.
//! assert!(sim.wait_quiescent(std::time::Duration::from_secs(10)));
//! assert!(sim.counters().is_clean(), "{}", sim.counters());
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

mod completion;
mod config;
#[doc(hidden)]
pub mod gate;
mod ids;
mod owned;
mod sender;
mod target;

mod primitive {
    //! Atomics of the gate, swapped for loom's when model checking (`--cfg loom`).
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{AtomicUsize, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
}

pub use completion::{
    Completion, CompletionDelivery, DeliveryContext, SendCompleted, SendCompletion,
};
pub use config::{RequestTargetConfig, SendContextConfig, SendParams};
pub use ids::{CancelId, ReuseId};
pub use owned::{OwnedCompletion, OwnedSendCompleted, OwnedSendCompletion, SendBuffer, SendError};
pub use sender::{Sender, SenderTarget};
pub use target::{RequestTarget, ReuseDeletion};
