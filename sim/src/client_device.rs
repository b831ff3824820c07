//! The client device (see [`ClientDevice`]).

use std::fmt;
use std::sync::{Arc, Mutex};

use dmf_wdf::{DeviceCallbacks, PowerState, Status};

use crate::context;
use crate::core::lock;

/// Where the client device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// Added, hardware not prepared (initial state, and after `stop`).
    Stopped,
    /// Hardware prepared, working (D0).
    D0,
    /// Hardware prepared, powered down (D3).
    D3,
}

struct Inner {
    callbacks: Vec<Arc<dyn DeviceCallbacks>>,
    state: ClientState,
}

/// The simulated client device ([`Sim::client_device`](crate::Sim::client_device)).
///
/// Callbacks run on the thread calling the `ClientDevice` method (it plays the
/// role of the device's PnP/power worker), so they interleave with PnP
/// notifications (PnP thread) and completions (completion threads) just as on
/// Windows. Entry callbacks (`prepare_hardware`, `d0_entry`) run in
/// registration order, exit callbacks (`d0_exit`, `release_hardware`) in
/// reverse order, as WDF does for a module tree.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use dmf_sim::{ClientState, Sim, SimConfig};
/// use dmf_wdf::{DeviceCallbacks, PowerState};
///
/// #[derive(Default)]
/// struct Log(Mutex<Vec<String>>);
/// impl DeviceCallbacks for Log {
///     fn d0_entry(&self, previous: PowerState) -> dmf_wdf::Result<()> {
///         self.0.lock().unwrap().push(format!("d0_entry({previous:?})"));
///         Ok(())
///     }
///     fn d0_exit(&self, target: PowerState) -> dmf_wdf::Result<()> {
///         self.0.lock().unwrap().push(format!("d0_exit({target:?})"));
///         Ok(())
///     }
/// }
///
/// let sim = Sim::new(SimConfig::default());
/// let device = sim.client_device();
/// let log = Arc::new(Log::default());
/// device.register(log.clone());
/// device.start().unwrap();
/// device.power_cycle().unwrap();
/// device.stop().unwrap();
/// assert_eq!(device.state(), ClientState::Stopped);
/// assert_eq!(
///     *log.0.lock().unwrap(),
///     ["d0_entry(D3Final)", "d0_exit(D3)", "d0_entry(D3)", "d0_exit(D3Final)"]
/// );
/// ```
#[derive(Clone)]
pub struct ClientDevice {
    inner: Arc<Mutex<Inner>>,
    transition: Arc<Mutex<()>>,
}

impl fmt::Debug for ClientDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = lock(&self.inner);
        f.debug_struct("ClientDevice")
            .field("state", &i.state)
            .field("callbacks", &i.callbacks.len())
            .finish()
    }
}

impl Default for ClientDevice {
    fn default() -> Self {
        ClientDevice::new()
    }
}

impl ClientDevice {
    /// A stopped client device with no callbacks.
    pub fn new() -> Self {
        ClientDevice {
            inner: Arc::new(Mutex::new(Inner {
                callbacks: Vec::new(),
                state: ClientState::Stopped,
            })),
            transition: Arc::new(Mutex::new(())),
        }
    }

    /// Adds a layer's callbacks (after the ones already registered). A layer
    /// registered while the device runs only sees later transitions.
    pub fn register(&self, callbacks: Arc<dyn DeviceCallbacks>) {
        lock(&self.inner).callbacks.push(callbacks);
    }

    /// Removes callbacks registered earlier (compared by pointer); returns
    /// whether they were found.
    pub fn unregister(&self, callbacks: &Arc<dyn DeviceCallbacks>) -> bool {
        let mut i = lock(&self.inner);
        let before = i.callbacks.len();
        i.callbacks.retain(|c| !Arc::ptr_eq(c, callbacks));
        i.callbacks.len() != before
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        lock(&self.inner).state
    }

    fn snapshot(
        &self,
        expect: ClientState,
        op: &str,
    ) -> dmf_wdf::Result<Vec<Arc<dyn DeviceCallbacks>>> {
        context::assert_passive(op);
        let i = lock(&self.inner);
        if i.state != expect {
            tracing::debug!(op, state = ?i.state, "dmf-sim: client device transition refused");
            return Err(Status::INVALID_DEVICE_STATE);
        }
        Ok(i.callbacks.clone())
    }

    fn set_state(&self, state: ClientState) {
        lock(&self.inner).state = state;
        tracing::debug!(?state, "dmf-sim: client device state");
    }

    /// Starts the device: `prepare_hardware` for each layer, then
    /// `d0_entry(D3Final)` for each. On a failure, what succeeded is undone in
    /// reverse (`d0_exit(D3Final)`, `release_hardware`), the device stays
    /// stopped, and the first failure is returned.
    pub fn start(&self) -> dmf_wdf::Result<()> {
        let _t = lock(&self.transition);
        let cbs = self.snapshot(ClientState::Stopped, "ClientDevice::start")?;
        for (i, cb) in cbs.iter().enumerate() {
            if let Err(status) = cb.prepare_hardware() {
                for prepared in cbs[..i].iter().rev() {
                    let _ = prepared.release_hardware();
                }
                return Err(status);
            }
        }
        for (i, cb) in cbs.iter().enumerate() {
            if let Err(status) = cb.d0_entry(PowerState::D3Final) {
                for entered in cbs[..i].iter().rev() {
                    let _ = entered.d0_exit(PowerState::D3Final);
                }
                for prepared in cbs.iter().rev() {
                    let _ = prepared.release_hardware();
                }
                return Err(status);
            }
        }
        self.set_state(ClientState::D0);
        Ok(())
    }

    /// D0 → D3: `d0_exit(D3)` for each layer in reverse order. Every layer is
    /// called even if one fails; the first failure is returned and the device
    /// is in D3 anyway.
    pub fn power_down(&self) -> dmf_wdf::Result<()> {
        let _t = lock(&self.transition);
        let cbs = self.snapshot(ClientState::D0, "ClientDevice::power_down")?;
        let mut first = Ok(());
        for cb in cbs.iter().rev() {
            let r = cb.d0_exit(PowerState::D3);
            if first.is_ok() {
                first = r;
            }
        }
        self.set_state(ClientState::D3);
        first
    }

    /// D3 → D0: `d0_entry(D3)` for each layer in order. On a failure, the
    /// layers already powered up get `d0_exit(D3)` in reverse, the device
    /// stays in D3, and the failure is returned.
    pub fn power_up(&self) -> dmf_wdf::Result<()> {
        let _t = lock(&self.transition);
        let cbs = self.snapshot(ClientState::D3, "ClientDevice::power_up")?;
        for (i, cb) in cbs.iter().enumerate() {
            if let Err(status) = cb.d0_entry(PowerState::D3) {
                for entered in cbs[..i].iter().rev() {
                    let _ = entered.d0_exit(PowerState::D3);
                }
                return Err(status);
            }
        }
        self.set_state(ClientState::D0);
        Ok(())
    }

    /// `power_down` then `power_up`.
    pub fn power_cycle(&self) -> dmf_wdf::Result<()> {
        self.power_down()?;
        self.power_up()
    }

    /// Stops the device (removal): from D0, `d0_exit(D3Final)` for each layer
    /// in reverse; then `release_hardware` for each in reverse. Every layer is
    /// called; the first failure is returned and the device is stopped anyway.
    pub fn stop(&self) -> dmf_wdf::Result<()> {
        let _t = lock(&self.transition);
        context::assert_passive("ClientDevice::stop");
        let (cbs, state) = {
            let i = lock(&self.inner);
            (i.callbacks.clone(), i.state)
        };
        if state == ClientState::Stopped {
            return Err(Status::INVALID_DEVICE_STATE);
        }
        let mut first = Ok(());
        if state == ClientState::D0 {
            for cb in cbs.iter().rev() {
                let r = cb.d0_exit(PowerState::D3Final);
                if first.is_ok() {
                    first = r;
                }
            }
        }
        for cb in cbs.iter().rev() {
            let r = cb.release_hardware();
            if first.is_ok() {
                first = r;
            }
        }
        self.set_state(ClientState::Stopped);
        first
    }
}
