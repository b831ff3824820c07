//! Scenario bodies shared by both backends: each is generic over a
//! [`Backend`] (a platform and the simulator that carries its devices), and
//! [`scenario_tests!`] instantiates every one as a `#[test]` for a backend.
//! `scenarios_sim.rs` runs them on the simulator's own platform,
//! `scenarios_kmdf.rs` on `dmf_kmdf::KmdfPlatform` over the emulated KMDF: a
//! divergence is a bug in one of the two, and the failing target says which.
#![allow(dead_code)]

mod crt;
mod dimt;
mod platform;
mod request_target;

pub use crt::*;
pub use dimt::*;
pub use platform::*;
pub use request_target::*;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use dmf_continuous_request_target::{
    ContinuousRequestTarget, ContinuousRequestTargetConfig, OutputDisposition, StreamClient,
    StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::{
    DeviceInterfaceMultipleTarget, DeviceInterfaceMultipleTargetConfig, Dimt, DimtClient,
    OwnedSendCompleted, PnpRegisterWhen, SendParams, TargetHandle, TargetStateType as S,
};
use dmf_request_target::{DeliveryContext, RequestTarget, RequestTargetConfig, Sender};
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
use dmf_sim::{
    ClientDevice, DeviceId, DeviceSpec, IoctlHandlerConfig, NoTargetEvents, RemovalOutcome, Sim,
    SimConfig, TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER as GUID,
};
use dmf_sim::{EchoDevice, FaultPlan, FaultPoint, ParkingDevice};
use dmf_wdf::{
    DeviceCallbacks, Event, IoTarget, Lock, OpenMode, OpenParams, Platform, RawBuffer, Request,
    RequestType, SendOptions, SentIoAction, ShareAccess, Status, TargetState, Timer, TimerHandler,
    WorkItem, WorkItemHandler,
};

const SECOND: Duration = Duration::from_secs(1);

/// A platform under test and the simulator carrying its devices.
pub trait Backend: Sized {
    /// The platform the layers run on.
    type P: Platform + Clone + Send + Sync + 'static;
    /// Sets the backend up on a new simulator.
    fn new(sim: Sim) -> Self;
    /// The platform.
    fn platform(&self) -> Self::P;
    /// The simulator (its bus is the machine's).
    fn sim(&self) -> &Sim;
    /// Tears the backend down after the layers were dropped and checks that
    /// nothing is left (the simulator's counters, and for KMDF the emulated
    /// machine's pool, events, registrations and WDF objects).
    fn finish(self);
}

/// Instantiates every scenario for `$backend`.
#[macro_export]
macro_rules! scenario_tests {
    ($backend:ty) => {
        #[test]
        fn dimt_arrival_of_existing_and_new_interfaces() {
            scenarios::dimt_arrival::<$backend>();
        }
        #[test]
        fn dimt_orderly_removal() {
            scenarios::dimt_orderly_removal::<$backend>();
        }
        #[test]
        fn dimt_query_remove_then_remove_cancel() {
            scenarios::dimt_query_remove_then_cancel::<$backend>();
        }
        #[test]
        fn dimt_vetoed_query_remove() {
            scenarios::dimt_vetoed_query_remove::<$backend>();
        }
        #[test]
        fn dimt_surprise_removal_with_io_in_flight() {
            scenarios::dimt_surprise_removal::<$backend>();
        }
        #[test]
        fn crt_streaming_start_stop_and_power() {
            scenarios::crt_streaming_and_power::<$backend>();
        }
        #[test]
        fn crt_manual_start_and_stop() {
            scenarios::crt_manual_start_stop::<$backend>();
        }
        #[test]
        fn request_target_send_cancel_reuse() {
            scenarios::request_target_send_cancel_reuse::<$backend>();
        }
        #[test]
        fn request_target_cancel_and_reuse_matrices() {
            scenarios::request_target_cancel_and_reuse_matrices::<$backend>();
        }
        #[test]
        fn platform_seam_objects() {
            scenarios::platform_seam_objects::<$backend>();
        }
        #[test]
        fn io_target_state_machine() {
            scenarios::io_target_state_machine::<$backend>();
        }
        #[test]
        fn reads_writes_and_ioctls_carry_their_buffers() {
            scenarios::reads_writes_and_ioctls::<$backend>();
        }
        #[test]
        fn dimt_churn_under_injected_faults() {
            scenarios::dimt_churn_under_faults::<$backend>();
        }
    };
}

/// A simulator with real time.
pub fn sim() -> Sim {
    Sim::new(SimConfig::default())
}

/// Adds a `Tests_IoctlHandler` device exposing the test interface.
pub fn add_device(sim: &Sim, name: &str) -> DeviceId {
    sim.bus()
        .add_device(
            DeviceSpec::new(
                name,
                Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
                    max_random_delay_ms: 2,
                    handle_internal_ioctls: false,
                })),
            )
            .with_interface(GUID),
        )
        .unwrap()
}

/// A new target of `platform`, opened read/write to `link` with no PnP
/// callbacks (`what` names the open in the panic if it fails).
pub fn open_target<P: Platform>(platform: &P, link: &str, what: &str) -> P::IoTarget {
    let target = platform.create_io_target().unwrap();
    target
        .open(
            &OpenParams {
                symbolic_link: link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .expect(what);
    target
}

/// Waits (real time) until `f` holds.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
