//! # dmf-continuous-request-target: DMF_ContinuousRequestTarget in Rust
//!
//! Keeps N requests continuously in flight against an I/O target
//! ("streaming"): each time a stream request completes, the client sees its
//! output and decides who owns the output buffer and whether the request is
//! re-sent. Also offers every non-streaming method of
//! [`dmf_request_target::RequestTarget`] (an embedded one, sharing the
//! target). `no_std` + `alloc`, generic over the platform seam
//! [`dmf_wdf::Platform`]; stream buffers come from
//! [`dmf_buffer_pool`] pools, handed to the client as typed [`PoolBuffer`]
//! guards.
//!
//! ## DMF name -> Rust name
//!
//! | DMF | here |
//! |---|---|
//! | `DMF_ContinuousRequestTarget_Create` (+ Open, `OPEN_Create`) | [`ContinuousRequestTarget::new`] |
//! | `DMF_CONFIG_ContinuousRequestTarget` (every field) | [`ContinuousRequestTargetConfig`] (field table there) |
//! | module attribute `PassiveLevel` | [`ContinuousRequestTargetConfig::passive_level`] |
//! | `ContinuousRequestTarget_ModeType` (`Manual`, `Automatic`) | [`StreamMode`] |
//! | `ContinuousRequestTarget_RequestType` | [`dmf_wdf::RequestType`] |
//! | `EVT_DMF_ContinuousRequestTarget_BufferInput` | [`StreamClient::buffer_input`] |
//! | `EVT_DMF_ContinuousRequestTarget_BufferOutput` | [`StreamClient::buffer_output`] ([`StreamCompletion`]) |
//! | `ContinuousRequestTarget_BufferDisposition` (4 values; `Invalid` unrepresentable) | [`OutputDisposition`] |
//! | `DMF_ContinuousRequestTarget_Start` | [`ContinuousRequestTarget::start`] |
//! | `DMF_ContinuousRequestTarget_StopAndWait` (and `…_Stop`) | [`ContinuousRequestTarget::stop`] |
//! | `DMF_ContinuousRequestTarget_BufferPut` | [`ContinuousRequestTarget::buffer_put`], or dropping the [`OutputBuffer`] |
//! | `DMF_ContinuousRequestTarget_IoTargetSet` / `IoTargetClear` | [`ContinuousRequestTarget::io_target_set`] / [`io_target_clear`](ContinuousRequestTarget::io_target_clear) |
//! | `DMF_ContinuousRequestTarget_Send` / `SendEx` / `SendSynchronously` | the CRT's [`Sender`] methods: [`send`](Sender::send) / [`send_ex`](Sender::send_ex) (owned [`SendBuffer`]s), [`send_raw`](Sender::send_raw) / [`send_ex_raw`](Sender::send_ex_raw) (raw buffers, `unsafe`) / [`send_synchronously`](Sender::send_synchronously) ([`SendParams`]) |
//! | `DMF_ContinuousRequestTarget_Cancel` | [`Sender::cancel`] ([`CancelId`]) |
//! | `DMF_ContinuousRequestTarget_ReuseCreate` / `ReuseSend` / `ReuseDelete` | [`Sender::reuse_create`] / [`Sender::reuse_send`] ([`Sender::reuse_send_raw`]) / [`Sender::reuse_delete`] ([`ReuseId`], [`ReuseDeletion`]) |
//! | `EVT_DMF_ContinuousRequestTarget_SendCompletion` | [`OwnedSendCompletion`] / [`OwnedSendCompleted`] (owned buffers), [`SendCompletion`] / [`SendCompleted`] (raw) |
//! | `ModuleD0Entry` / `ModuleD0Exit` | [`ContinuousRequestTarget::device_callbacks`] ([`CrtDeviceCallbacks`]) or the CRT's own [`dmf_wdf::DeviceCallbacks`] impl |
//! | Close | [`ContinuousRequestTarget::close`], `Drop` |
//! | — (new) stream health | [`StreamClient::stream_request_retired`], [`ContinuousRequestTarget::statistics`] ([`StreamStatistics`]) |
//!
//! ## Differences from DMF
//!
//! The fixes are sections of the workspace's `docs/dmf-differences.md` (what
//! DMF does, what this crate does, the test that shows it).
//!
//! * **The input length the client returns is what the device receives**: the length returned by the input callback is what the device
//!   receives.
//! * **Retired stream requests are reported**: a stream request that retires (empty output pool, send
//!   refused, `*AndStop`, failure) is reported to
//!   [`StreamClient::stream_request_retired`] with its [`RetireReason`] and
//!   counted; with [`auto_refill`](ContinuousRequestTargetConfig::auto_refill)
//!   a request without an output buffer waits for one instead of retiring.
//! * **Either power flag enables the power callbacks**, **D0 entry restarts
//!   the target before streaming**, **Purge-only mode restarts streaming at D0
//!   entry**, **D0 entry restarts streaming only if it ran**: see [Power](#power).
//! * **Start is passive level**: `start` is documented passive-level (its failure path stops).
//! * **Completions during stop are counted and may be delivered**: completions arriving while stopping are counted and, with
//!   [`deliver_completions_during_stop`](ContinuousRequestTargetConfig::deliver_completions_during_stop),
//!   delivered (flagged [`StreamCompletion::stopping`]).
//! * **Close stops streaming itself**: close stops streaming itself (cancelling what is in flight).
//! * **Failing stream requests are re-sent with back-off**: failed completions that continue are re-sent with exponential
//!   [`Backoff`] (on by default), never in a tight loop.
//! * Stop waits on events (no 50 ms polling); ownership of output buffers is
//!   in the types; the non-streaming methods inherit dmf-request-target's
//!   fixes.
//! * [`StreamMode::Automatic`] is implemented here: `io_target_set` starts
//!   streaming and `io_target_clear` stops it (DMF leaves it to parents; a
//!   parent using Automatic mode must not also call `start`).
//!
//! ## Power
//!
//! The D0 callbacks act when either flag is set (DMF: only with
//! `purge_and_start_target_in_d0_callbacks`):
//!
//! * **D0 exit**: remember whether streaming was running; stop it (cancel
//!   and wait); then, with `purge_and_start…`, purge the target.
//! * **D0 entry** (not the first power-up from `D3Final`): with
//!   `purge_and_start…` restart the target **first**; then restart
//!   streaming **only if it was running** at D0 exit and no
//!   explicit [`stop`](ContinuousRequestTarget::stop) or
//!   [`io_target_clear`](ContinuousRequestTarget::io_target_clear) came
//!   in between. A failed restart fails D0 entry with its status.
//!
//! ## Contexts and cost
//!
//! [`start`](ContinuousRequestTarget::start), [`stop`](ContinuousRequestTarget::stop),
//! [`close`](ContinuousRequestTarget::close), synchronous sends and the D0
//! callbacks are passive level (they may wait); the other methods may be
//! called at any level. Stream callbacks run in the completion context, or on
//! a passive worker with `passive_level`. In steady state a streamed request
//! allocates nothing (`tests/no_alloc.rs`); `start` allocates one small
//! session per stream request. Streamed completions per second against the
//! raw simulated target at queue depth 1, 8 and 64:
//! `cargo run -p dmf-stress --release --bin bench -- --only crt` (figures in
//! the workspace's `BENCHMARKS.md`, against the framework-free loop).
//!
//! ## Example
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use dmf_continuous_request_target::*;
//! use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
//! use dmf_sim::{DeviceSpec, Sim, TestsIoctlHandler, IoctlHandlerConfig};
//! use dmf_wdf::*;
//!
//! struct NoEvents;
//! impl TargetEvents for NoEvents {
//!     fn query_remove(&self) -> Status { Status::SUCCESS }
//!     fn remove_canceled(&self) {}
//!     fn remove_complete(&self) {}
//! }
//!
//! /// Counts the DWORDs read; gives every buffer back and keeps streaming.
//! #[derive(Default)]
//! struct Reader(AtomicUsize);
//! impl StreamClient<Sim> for Reader {
//!     fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
//!         if c.status.is_success() {
//!             assert_eq!(c.data(), &[0, 0, 0, 0]);
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!         c.module_owns_and_continue()
//!     }
//! }
//!
//! let sim = Sim::default();
//! let handler = TestsIoctlHandler::new(IoctlHandlerConfig { max_random_delay_ms: 1, ..Default::default() });
//! let id = sim.bus().add_device(DeviceSpec::new("dev", Arc::new(handler))).unwrap();
//! let link = sim.bus().device_link(id).unwrap();
//! let target = Arc::new(sim.create_io_target().unwrap());
//! target.open(&OpenParams { symbolic_link: &link, open_mode: OpenMode::READ_WRITE,
//!     share_access: ShareAccess::READ_WRITE }, Arc::new(NoEvents)).unwrap();
//!
//! let config = ContinuousRequestTargetConfig {
//!     continuous_request_count: 4,
//!     buffer_count_output: 4,
//!     buffer_output_size: 4,
//!     request_type: RequestType::Ioctl,
//!     continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
//!     ..Default::default()
//! };
//! let crt = ContinuousRequestTarget::new(&sim, config, Reader::default()).unwrap();
//! crt.io_target_set(Arc::clone(&target)).unwrap();
//! crt.start().unwrap();
//! while crt.client().0.load(Ordering::Relaxed) < 20 {
//!     std::thread::sleep(std::time::Duration::from_millis(1));
//! }
//! crt.stop().unwrap(); // cancels what is in flight and waits
//! assert_eq!(crt.active_stream_requests(), 0);
//! assert_eq!(crt.output_buffers_free(), Some(4));
//! drop(crt);
//! target.close();
//! drop(target);
//! assert!(sim.wait_quiescent(std::time::Duration::from_secs(5)));
//! assert!(sim.counters().is_clean(), "{}", sim.counters());
//! ```
#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod client;
mod config;
#[doc(hidden)]
pub mod protocol;
mod stats;
mod stream;
mod target;

mod primitive {
    //! Atomics and the owner-only cell, swapped for loom's when model
    //! checking (`--cfg loom`), so that loom explores the engine's own
    //! synchronisation and checks every access to a slot's owner data.
    #[cfg(not(loom))]
    pub(crate) use core::cell::UnsafeCell;
    #[cfg(not(loom))]
    pub(crate) use core::hint::spin_loop;
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::cell::UnsafeCell;
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
    /// Under loom a spin must yield, or the model never lets the other thread run.
    #[cfg(loom)]
    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }
}

pub use client::{OutputDisposition, RetireReason, Retirement, StreamClient, StreamCompletion};
pub use config::{Backoff, ContinuousRequestTargetConfig, StreamMode};
pub use dmf_buffer_pool::{PoolBuffer, PoolType};
pub use protocol::StreamState;
pub use stats::StreamStatistics;
pub use target::{ContinuousRequestTarget, CrtDeviceCallbacks};

pub use dmf_request_target::{
    CancelId, Completion, CompletionDelivery, DeliveryContext, OwnedCompletion, OwnedSendCompleted,
    OwnedSendCompletion, RequestTarget, RequestTargetConfig, ReuseDeletion, ReuseId, SendBuffer,
    SendCompleted, SendCompletion, SendContextConfig, SendError, SendParams, Sender, SenderTarget,
};

/// An output buffer of a stream (a guard: dropping it returns it to the output pool).
pub type OutputBuffer<P> = PoolBuffer<P>;
