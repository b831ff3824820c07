//! Simulated devices (see [`DeviceHandler`]).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use dmf_wdf::{RequestType, Status};

use crate::core::{lock, wait};
use crate::irp::{CancelRoutine, Irp, IrpId};

/// The I/O dispatch routine of a simulated device.
///
/// A device on the [`Bus`](crate::Bus) is a [`DeviceHandler`]. The simulator
/// calls [`DeviceHandler::handle`] on the sender's thread, in the sender's
/// context (like `IoCallDriver` calling the lower driver's dispatch routine),
/// with an owned [`Irp`]; the device completes it now or later, from any
/// thread. Built-in devices:
///
/// * [`FixedResponseDevice`]: completes everything with one status;
/// * [`EchoDevice`]: writes are stored, reads return them, IOCTLs copy input to output;
/// * [`ParkingDevice`]: holds every IRP until the test completes it;
/// * [`TestsIoctlHandler`](crate::TestsIoctlHandler): DMF's `Tests_IoctlHandler`.
///
/// Any `Fn(Irp)` closure is a device too.
///
/// A handler must not hold a [`Sim`](crate::Sim) (the bus owns the handler, so
/// that would keep the simulator alive forever); use [`WeakSim`](crate::WeakSim)
/// or the [`Irp`] methods (clock, random numbers, delayed completion).
pub trait DeviceHandler: Send + Sync + 'static {
    /// A request arrived. Complete `irp` exactly once, now or later.
    fn handle(&self, irp: Irp);
}

impl<F: Fn(Irp) + Send + Sync + 'static> DeviceHandler for F {
    fn handle(&self, irp: Irp) {
        self(irp)
    }
}

/// The transfer length a request type reports by default: the output length
/// for reads and IOCTLs, the input length for writes.
fn natural_length(irp: &Irp) -> usize {
    match irp.request_type() {
        RequestType::Write => irp.input_len(),
        _ => irp.output_len(),
    }
}

fn finish(irp: Irp, delay_ms: u64, cancelable: bool, status: Status, information: usize) {
    match (delay_ms, cancelable) {
        (0, _) => irp.complete(status, information),
        (ms, false) => irp.complete_after(ms, status, information),
        (ms, true) => irp.complete_after_cancelable(ms, status, information),
    }
}

/// A device that completes every request with the same status.
///
/// ```
/// use dmf_sim::FixedResponseDevice;
/// use dmf_wdf::Status;
/// let device = FixedResponseDevice::new(Status::SUCCESS, None) // information = buffer length
///     .with_fill(0xAB)                                         // output bytes written
///     .with_delay_ms(10, true);                                // completes after 10 ms, cancelable
/// # let _ = device;
/// ```
#[derive(Clone, Debug)]
pub struct FixedResponseDevice {
    status: Status,
    information: Option<usize>,
    fill: Option<u8>,
    delay_ms: u64,
    cancelable: bool,
}

impl FixedResponseDevice {
    /// Completes with `status` and `information` (`None`: the output length
    /// for reads and IOCTLs, the input length for writes), immediately.
    pub fn new(status: Status, information: Option<usize>) -> Self {
        FixedResponseDevice {
            status,
            information,
            fill: None,
            delay_ms: 0,
            cancelable: false,
        }
    }

    /// Fills the output buffer with `byte` before completing.
    pub fn with_fill(mut self, byte: u8) -> Self {
        self.fill = Some(byte);
        self
    }

    /// Completes after `ms` milliseconds of simulated time; `cancelable`
    /// chooses whether a cancellation completes it early with `STATUS_CANCELLED`.
    pub fn with_delay_ms(mut self, ms: u64, cancelable: bool) -> Self {
        self.delay_ms = ms;
        self.cancelable = cancelable;
        self
    }
}

impl DeviceHandler for FixedResponseDevice {
    fn handle(&self, mut irp: Irp) {
        if let Some(byte) = self.fill {
            irp.output().fill(byte);
        }
        let information = self.information.unwrap_or_else(|| natural_length(&irp));
        finish(
            irp,
            self.delay_ms,
            self.cancelable,
            self.status,
            information,
        );
    }
}

/// A device that stores what is written, returns it on reads, and copies the
/// input of an IOCTL into its output.
#[derive(Debug, Default)]
pub struct EchoDevice {
    delay_ms: u64,
    cancelable: bool,
    stored: Mutex<Vec<u8>>,
}

impl EchoDevice {
    /// An echo device answering immediately.
    pub fn new() -> Self {
        EchoDevice::default()
    }

    /// Completes after `ms` milliseconds of simulated time; `cancelable`
    /// chooses whether a cancellation completes it early with `STATUS_CANCELLED`.
    pub fn with_delay_ms(mut self, ms: u64, cancelable: bool) -> Self {
        self.delay_ms = ms;
        self.cancelable = cancelable;
        self
    }

    /// The bytes stored by the last write.
    pub fn stored(&self) -> Vec<u8> {
        lock(&self.stored).clone()
    }
}

impl DeviceHandler for EchoDevice {
    fn handle(&self, mut irp: Irp) {
        let (status, information) = match irp.request_type() {
            RequestType::Write => {
                let input = irp.input();
                let mut stored = lock(&self.stored);
                stored.clear();
                stored.extend_from_slice(&input);
                (Status::SUCCESS, input.len())
            }
            RequestType::Read => {
                let stored = lock(&self.stored);
                let mut output = irp.output();
                let n = stored.len().min(output.len());
                output[..n].copy_from_slice(&stored[..n]);
                (Status::SUCCESS, n)
            }
            RequestType::Ioctl | RequestType::InternalIoctl => {
                let b = irp.buffers();
                let n = b.input.len().min(b.output.len());
                b.output[..n].copy_from_slice(&b.input[..n]);
                (Status::SUCCESS, n)
            }
            RequestType::Invalid => (Status::INVALID_DEVICE_REQUEST, 0),
        };
        finish(irp, self.delay_ms, self.cancelable, status, information);
    }
}

/// A device that parks every IRP until the test completes it, for tests that
/// need to control exactly when (and whether) requests complete.
///
/// Cancelable by default: a cancelled IRP is taken out and completed with
/// `STATUS_CANCELLED` by the device's cancel routine (exercising
/// [`Irp::set_cancel_routine`]). [`ParkingDevice::uncancelable`] ignores
/// cancellation, like hardware that must finish what it started.
///
/// ```
/// use dmf_sim::ParkingDevice;
/// use dmf_wdf::Status;
/// let device = ParkingDevice::new();
/// assert_eq!(device.pending(), 0);
/// assert!(!device.complete_next(Status::SUCCESS, 0));
/// ```
pub struct ParkingDevice {
    cancelable: bool,
    parked: Mutex<VecDeque<Irp>>,
    cv: Condvar,
    me: Weak<ParkingDevice>,
}

impl std::fmt::Debug for ParkingDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkingDevice")
            .field("cancelable", &self.cancelable)
            .field("pending", &self.pending())
            .finish()
    }
}

impl ParkingDevice {
    fn build(cancelable: bool) -> Arc<Self> {
        Arc::new_cyclic(|me| ParkingDevice {
            cancelable,
            parked: Mutex::new(VecDeque::new()),
            cv: Condvar::new(),
            me: me.clone(),
        })
    }

    /// A parking device whose IRPs are cancelable.
    pub fn new() -> Arc<Self> {
        ParkingDevice::build(true)
    }

    /// A parking device that ignores cancellation.
    pub fn uncancelable() -> Arc<Self> {
        ParkingDevice::build(false)
    }

    /// Number of IRPs parked.
    pub fn pending(&self) -> usize {
        lock(&self.parked).len()
    }

    /// Waits (real time) until at least `n` IRPs are parked.
    pub fn wait_for_pending(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = lock(&self.parked);
        while q.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self
                .cv
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Takes the oldest parked IRP out (the caller must complete it).
    pub fn take(&self) -> Option<Irp> {
        let irp = lock(&self.parked).pop_front();
        if let Some(irp) = &irp {
            irp.clear_cancel_routine();
        }
        irp
    }

    /// Completes the oldest parked IRP; `false` if none is parked.
    pub fn complete_next(&self, status: Status, information: usize) -> bool {
        match self.take() {
            Some(irp) => {
                irp.complete(status, information);
                true
            }
            None => false,
        }
    }

    /// Completes every parked IRP with `status` and information 0; returns how many.
    pub fn complete_all(&self, status: Status) -> usize {
        let all: Vec<Irp> = lock(&self.parked).drain(..).collect();
        let n = all.len();
        for irp in all {
            irp.clear_cancel_routine();
            irp.complete(status, 0);
        }
        n
    }

    /// Blocks until an IRP is parked (test helper; passive context).
    pub fn wait_one(&self) {
        let mut q = lock(&self.parked);
        while q.is_empty() {
            q = wait(&self.cv, q);
        }
    }
}

impl DeviceHandler for ParkingDevice {
    fn handle(&self, irp: Irp) {
        let mut q = lock(&self.parked);
        if self.cancelable {
            if let Some(me) = self.me.upgrade() {
                let routine: Arc<dyn CancelRoutine> = me;
                if irp.set_cancel_routine(routine).is_err() {
                    drop(q);
                    irp.complete(Status::CANCELLED, 0);
                    return;
                }
            }
        }
        q.push_back(irp);
        drop(q);
        self.cv.notify_all();
    }
}

impl CancelRoutine for ParkingDevice {
    fn cancel(&self, id: IrpId) {
        let irp = {
            let mut q = lock(&self.parked);
            let pos = q.iter().position(|i| i.id() == id);
            pos.and_then(|p| q.remove(p))
        };
        if let Some(irp) = irp {
            irp.complete(Status::CANCELLED, 0);
        }
    }
}
