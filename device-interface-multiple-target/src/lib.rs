//! # dmf-device-interface-multiple-target: DMF_DeviceInterfaceMultipleTarget in Rust
//!
//! Follows every device that exposes a device interface class (GUID): each
//! interface instance that arrives — including the ones present when the
//! module registers — is offered to the client's filter, opened with the
//! configured open mode and share access, and given its own transport: a
//! [`ContinuousRequestTarget`](dmf_continuous_request_target::ContinuousRequestTarget)
//! streaming to it when the configuration has a stream, else a
//! [`RequestTarget`](dmf_request_target::RequestTarget) (single sends go
//! through the CRT's embedded `RequestTarget`). The client sees
//! each target through a [`TargetHandle`], a state callback and its own
//! per-target context ([`DimtClient::Target`]), and calls the per-target
//! methods with the handle, or through the target's guard, which is the
//! target's [`Sender`].
//!
//! `no_std` + `alloc`, generic over the platform seam [`dmf_wdf::Platform`];
//! tested on `dmf-sim`.
//!
//! ## Example
//!
//! A client that streams to every target, sends asynchronously with an
//! owned buffer (and sends it again when it comes back), and keeps its
//! per-target state in its per-target context: no `unsafe`, no table of
//! targets.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use dmf_continuous_request_target::{
//!     ContinuousRequestTargetConfig, OutputDisposition, StreamCompletion, StreamMode,
//! };
//! use dmf_device_interface_multiple_target::*;
//! use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
//! use dmf_sim::{
//!     DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, TestsIoctlHandler,
//!     GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
//! };
//! use dmf_wdf::{RequestType, Status};
//!
//! /// What the client keeps about one target.
//! struct PerTarget {
//!     link: String,
//!     streamed: AtomicUsize,
//!     sent: AtomicUsize,
//! }
//!
//! /// Pings every target three times with the same buffer.
//! struct Client;
//!
//! impl DimtClient<Sim> for Client {
//!     type Target = PerTarget;
//!
//!     fn target_context(&self, _m: &Dimt<Sim, Self>, _t: TargetHandle, link: &str) -> PerTarget {
//!         PerTarget { link: link.to_string(), streamed: AtomicUsize::new(0), sent: AtomicUsize::new(0) }
//!     }
//!
//!     fn on_state_change(
//!         &self, m: &Dimt<Sim, Self>, t: TargetHandle, _ctx: &PerTarget, state: TargetStateType,
//!     ) -> Status {
//!         if state == TargetStateType::Open {
//!             // The first ping (a refusal vetoes the open, with its status).
//!             let ping = encode_sleep(1).to_vec();
//!             if let Err(e) = m.send(t, Some(ping.into()), None, SendParams::ioctl(IOCTL_SLEEP), 0) {
//!                 return e.status;
//!             }
//!         }
//!         Status::SUCCESS
//!     }
//!
//!     fn buffer_output(
//!         &self, _m: &Dimt<Sim, Self>, _t: TargetHandle, ctx: &PerTarget, c: StreamCompletion<Sim>,
//!     ) -> OutputDisposition<Sim> {
//!         ctx.streamed.fetch_add(1, Ordering::Relaxed);
//!         c.module_owns_and_continue()
//!     }
//!
//!     fn send_completed(
//!         &self, m: &Dimt<Sim, Self>, t: TargetHandle, ctx: &PerTarget, c: OwnedSendCompleted<Sim>,
//!     ) {
//!         assert!(c.status.is_success());
//!         // Our buffer is back: send it again.
//!         if ctx.sent.fetch_add(1, Ordering::Relaxed) + 1 < 3 {
//!             let _ = m.send(t, c.input, None, SendParams::ioctl(IOCTL_SLEEP), 0);
//!         }
//!     }
//! }
//!
//! let sim = Sim::new(SimConfig::default());
//! let handler = TestsIoctlHandler::new(IoctlHandlerConfig { max_random_delay_ms: 1, ..Default::default() });
//! let device = sim.bus().add_device(
//!     DeviceSpec::new("dev", Arc::new(handler)).with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER),
//! ).unwrap();
//!
//! let config = DeviceInterfaceMultipleTargetConfig {
//!     module_open_option: PnpRegisterWhen::Create,
//!     continuous_request_target_module_config: ContinuousRequestTargetConfig {
//!         continuous_request_count: 1,
//!         buffer_count_output: 1,
//!         buffer_output_size: 4,
//!         request_type: RequestType::Ioctl,
//!         continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
//!         continuous_request_target_mode: StreamMode::Automatic,
//!         ..ContinuousRequestTargetConfig::default()
//!     },
//!     ..DeviceInterfaceMultipleTargetConfig::new(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER)
//! };
//! let dimt = DeviceInterfaceMultipleTarget::new(&sim, config, Client).unwrap();
//! sim.bus().flush().unwrap(); // existing interfaces are reported on the PnP thread
//! let target = dimt.targets()[0];
//! assert_eq!(dimt.target_state(target), Ok(TargetStateType::Open));
//!
//! // The per-target context, through a guard on the target.
//! let deadline = Instant::now() + Duration::from_secs(10);
//! loop {
//!     let guard = dimt.target_guard(target).unwrap();
//!     let ctx = guard.context();
//!     assert!(ctx.link.contains("dev"));
//!     if ctx.sent.load(Ordering::Relaxed) == 3 && ctx.streamed.load(Ordering::Relaxed) > 0 {
//!         break;
//!     }
//!     drop(guard);
//!     assert!(Instant::now() < deadline, "no pings or no stream");
//!     std::thread::sleep(Duration::from_millis(1));
//! }
//!
//! // Synchronous sends through the module (or the guard's `Sender` methods).
//! let n = dimt.send_synchronously(target, &encode_sleep(1), &mut [], SendParams::ioctl(IOCTL_SLEEP)).unwrap();
//! assert_eq!(n, 0);
//!
//! // The device goes away: the target is query-removed, then gone.
//! sim.bus().remove_device(device).unwrap();
//! assert_eq!(dimt.target_state(target), Err(Status::INVALID_DEVICE_STATE));
//! assert_eq!(
//!     dimt.send_synchronously(target, &[], &mut [], SendParams::ioctl(IOCTL_SLEEP)),
//!     Err(Status::INVALID_DEVICE_STATE), // a stale handle is refused, never used
//! );
//! drop(dimt);
//! sim.wait_quiescent(Duration::from_secs(5));
//! assert!(sim.counters().is_clean(), "{}", sim.counters());
//! ```
//!
//! ## DMF name -> Rust name
//!
//! | DMF | here |
//! |---|---|
//! | `DMF_DeviceInterfaceMultipleTarget_Create` | [`DeviceInterfaceMultipleTarget::new`] |
//! | `DMFMODULE` (in callbacks and methods) | [`Dimt`] (the owner dereferences to it) |
//! | `DMF_CONFIG_DeviceInterfaceMultipleTarget` | [`DeviceInterfaceMultipleTargetConfig`] |
//! | `.ModuleOpenOption` | [`DeviceInterfaceMultipleTargetConfig::module_open_option`] |
//! | `.DeviceInterfaceMultipleTargetGuid` | [`DeviceInterfaceMultipleTargetConfig::device_interface_multiple_target_guid`] |
//! | `.OpenMode` | [`DeviceInterfaceMultipleTargetConfig::open_mode`] ([`dmf_wdf::OpenMode`]) |
//! | `.ShareAccess` | [`DeviceInterfaceMultipleTargetConfig::share_access`] ([`dmf_wdf::ShareAccess`]) |
//! | `.ContinuousRequestTargetModuleConfig` | [`DeviceInterfaceMultipleTargetConfig::continuous_request_target_module_config`] |
//! | `.EvtDeviceInterfaceMultipleTargetOnStateChange` / `…OnStateChangeEx` | [`DimtClient::on_state_change`] (returns a status: the Ex variant) |
//! | `.EvtDeviceInterfaceMultipleTargetOnPnpNotification` | [`DimtClient::on_pnp_notification`] (returns the `IoTargetOpen` flag) |
//! | CRT `EvtContinuousRequestTargetBufferInput` / `…BufferOutput` (re-targeted by DIMT's trampolines) | [`DimtClient::buffer_input`] / [`DimtClient::buffer_output`] |
//! | `DeviceInterfaceMultipleTarget_PnpRegisterWhen_Type` (`_PrepareHardware`, `_D0Entry`, `_Create`) | [`PnpRegisterWhen`] (`PrepareHardware`, `D0Entry`, `Create`) |
//! | `DeviceInterfaceMultipleTarget_StateType` (`_Invalid`, `_Open`, `_QueryRemove`, `_QueryRemoveCancelled`, `_QueryRemoveComplete`, `_Close`, `_Maximum`) | [`TargetStateType`] (same names) |
//! | `DMFIOTARGET` / `DeviceInterfaceMultipleTarget_Target` | [`TargetHandle`] (generation-checked) |
//! | `DMF_DeviceInterfaceMultipleTarget_BufferPut` | [`Dimt::buffer_put`] |
//! | `DMF_DeviceInterfaceMultipleTarget_Get` | [`Dimt::get`] |
//! | `DMF_DeviceInterfaceMultipleTarget_GuidGet` | [`Dimt::guid_get`] |
//! | the single-request methods below, with explicit callbacks | the target guard's [`Sender`] methods ([`Dimt::target_guard`], [`TargetGuard`]) |
//! | `DMF_DeviceInterfaceMultipleTarget_Send` | [`Dimt::send`] (owned [`SendBuffer`]s), [`Dimt::send_raw`] (raw buffers, `unsafe`) |
//! | `DMF_DeviceInterfaceMultipleTarget_SendEx` | [`Dimt::send_ex`], [`Dimt::send_ex_raw`] |
//! | `DMF_DeviceInterfaceMultipleTarget_SendSynchronously` | [`Dimt::send_synchronously`] |
//! | `DMF_DeviceInterfaceMultipleTarget_Cancel` | [`Dimt::cancel`] |
//! | `DMF_DeviceInterfaceMultipleTarget_ReuseCreate` / `ReuseSend` / `ReuseDelete` | [`Dimt::reuse_create`] / [`Dimt::reuse_send`] ([`Dimt::reuse_send_raw`]) / [`Dimt::reuse_delete`] |
//! | `DMF_DeviceInterfaceMultipleTarget_StreamStart` / `StreamStop` | [`Dimt::stream_start`] / [`Dimt::stream_stop`] |
//! | `DMF_DeviceInterfaceMultipleTarget_TargetReference` / `TargetDereference` | [`Dimt::target_reference`] / [`Dimt::target_dereference`], or the guard [`Dimt::target_guard`] |
//! | `RequestType`, `RequestIoctl`, `RequestTimeoutMilliseconds` | [`dmf_request_target::SendParams`] |
//! | `EVT_DMF_ContinuousRequestTarget_SendCompletion` + context (of `Dimt::send…`) | [`DimtClient::send_completed`] / [`DimtClient::raw_send_completed`] (with the target's handle and context) + `client_context: usize` |
//! | — (new) the client's per-target context | [`DimtClient::Target`], created by [`DimtClient::target_context`], in every callback and [`TargetGuard::context`] |
//! | — (new) the state a target is in | [`Dimt::target_state`] |
//! | module D0Entry/D0Exit/PrepareHardware/ReleaseHardware hooks | [`DeviceInterfaceMultipleTarget::device_callbacks`] ([`DimtDeviceCallbacks`]) |
//! | `NumberOfTargetsOpened` | [`Dimt::open_target_count`] |
//!
//! ## Target states and callback order
//!
//! Every path, in order (`client(X)` = [`DimtClient::on_state_change`] with
//! `X`). The client always hears of a departure *before* the target's I/O
//! is cancelled and its methods start failing (upstream PR #274; DMF's
//! snapshot reported `Close` after both).
//!
//! * **Arrival**: link not tracked → filter → open the target (configured
//!   mode/share) → create the transport → methods enabled →
//!   `client(Open)`. A veto (failure status) closes the target again with
//!   no further callback. In `Automatic` stream mode streaming then starts;
//!   if that fails: `client(Close)` and the target is destroyed.
//! * **Close** (interface disabled, module unregistering — release-hardware,
//!   D0 exit with `D0Entry`, drop): `client(Close)` (methods still work) →
//!   stop streaming → close the target (cancels every request, synchronous
//!   ones included) → wait for methods in progress → handle stale.
//! * **QueryRemove**: `client(QueryRemove)`; a veto keeps the target open
//!   (and the following remove-cancel is swallowed, as in DMF). Otherwise →
//!   stop streaming (remembering it ran) → close the target for
//!   query-remove (cancelling a blocked synchronous send, so it cannot hold
//!   up the removal) → wait for methods in progress; methods fail
//!   until the removal is cancelled.
//! * **RemoveCancel** after an accepted QueryRemove: reopen → methods
//!   enabled → restart streaming if it ran (or was stopped by the power
//!   policy with a restart pending) → `client(QueryRemoveCancelled)`. If the
//!   client device is out of D0 meanwhile, the target gets the D0 exit it
//!   missed while closed, and a CRT power policy restarts streaming at the
//!   next D0 entry instead of now (it never streams in D3).
//!   If the reopen fails: `client(Close)` and the record is destroyed (DMF
//!   keeps a zombie record).
//! * **RemoveComplete** after QueryRemove: `client(QueryRemoveComplete)` →
//!   destroyed, no `Close` (as DMF).
//! * **Surprise removal** (RemoveComplete without QueryRemove):
//!   `client(QueryRemoveComplete)` → `client(Close)` → as Close.
//! * A query-remove that arrives while the target is being closed closes
//!   it for query-remove and is accepted, with no callback (the close in
//!   progress reports `Close`): the handle never holds up the removal.
//! * A query-removed target whose interface disappears, or that is still
//!   query-removed when the module unregisters: `client(Close)` (DMF
//!   reports nothing there), so every lifetime ends with
//!   `QueryRemoveComplete` or `Close`.
//!
//! Transitions of one target never overlap (each holds the target's
//! sleeping lock, the platform's `WaitLock`, a `WDFWAITLOCK` in the kernel,
//! as DMF uses for its target list); methods run concurrently with them and
//! are gated by the target's rundown.
//!
//! ## Differences from DMF
//!
//! Each is a section of the workspace's `docs/dmf-differences.md` (what DMF
//! does, what this crate does, the test that shows it).
//!
//! * **Stale target handles are refused** with `STATUS_INVALID_DEVICE_STATE`.
//! * **Open mode and share access are honoured.**
//! * **Open targets are counted once per target**; with zero targets the
//!   module itself stays usable (there is no module-level open/close).
//! * **Reusable requests are gated like every method.**
//! * **Stream stop is passive level.**
//! * **A blocked synchronous send cannot hold up query-remove.**
//! * **No zombie record after a failed reopen.**
//! * **The client hears of a departure before its I/O stops.**
//! * **Per-target context and completions that name their target**
//!   ([`DimtClient::Target`], [`DimtClient::send_completed`]).
//! * **Arrival, lookup and removal are O(1)** in the number of targets (DMF
//!   scans a list).
//! * **D0 transitions reach each target's stream**: for streaming targets,
//!   D0 transitions (open options `PrepareHardware` and `Create`) are
//!   forwarded to each target's CRT, which applies its power policy; DMF's
//!   per-target CRT could not (dynamic modules).
//!
//! ## Tests and measurements
//!
//! * `tests/scenarios.rs`: DMF's own DIMT test scenarios (arrival of
//!   existing and new interfaces, orderly removal, asynchronous sends with
//!   cancel and reuse, methods on gone targets, a blocked synchronous send
//!   during query-remove) and derived cases (vetoes, reopen failure,
//!   surprise removal order, open count per record, open mode/share access,
//!   open options, streaming, power).
//! * `tests/target_context.rs`: the per-target context's lifetime and
//!   completions naming their target.
//! * `tests/churn.rs`: PnP churn while threads call every method.
//! * `tests/proptest_pnp.rs`: random PnP / power / fault / method sequences
//!   with a legal-order checker and leak checks.
//! * `tests/loom_dimt.rs`: the per-target gate under loom
//!   (`RUSTFLAGS="--cfg loom" cargo test -p dmf-device-interface-multiple-target --test loom_dimt --release`).
//! * `src/lifecycle.rs`: the per-target decision function, checked over
//!   every event in every phase and every short event sequence;
//!   `tests/loom_lifecycle.rs`: the per-target transition lock and retire
//!   protocol around it under loom (query-remove, remove-cancel,
//!   remove-complete, interface removal, power and unregistration racing
//!   each other and methods; arrivals racing unregistration).
//! * Benchmark (in `dmf-stress`): interface-arrival-to-first-stream-completion
//!   latency, removal cost and heap per target at 1, 100 and 10,000 targets,
//!   against the raw simulated target
//!   (`cargo run -p dmf-stress --release --bin bench -- --only dimt`; figures
//!   in the workspace's `BENCHMARKS.md`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod client;
mod config;
#[doc(hidden)]
pub mod gate;
#[doc(hidden)]
pub mod lifecycle;
mod module;
mod record;
mod state;
mod target_table;

pub use client::DimtClient;
pub use config::{DeviceInterfaceMultipleTargetConfig, PnpRegisterWhen};
pub use module::{DeviceInterfaceMultipleTarget, Dimt, DimtDeviceCallbacks, TargetGuard};
pub use state::TargetStateType;
pub use target_table::TargetHandle;

pub use dmf_request_target::{
    CancelId, Completion, CompletionDelivery, OwnedCompletion, OwnedSendCompleted,
    OwnedSendCompletion, ReuseDeletion, ReuseId, SendBuffer, SendCompleted, SendContextConfig,
    SendError, SendParams, Sender, SenderTarget,
};
