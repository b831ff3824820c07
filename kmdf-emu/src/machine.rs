//! The emulated machine: one simulator, one KMDF, one kernel per process at a
//! time, as on a real machine.
//!
//! The WDF function table and the kernel routines are process-wide symbols,
//! and the kernel routines take no handle that could say which simulator
//! they belong to (`ExAllocatePool2`, `KeQueryInterruptTimePrecise`,
//! `KeInitializeEvent`, ...). So a [`Machine`] is exclusive: creating one
//! waits until the previous one is dropped, and the routines act on the
//! current one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use dmf_sim::{Sim, SimEvent};

use crate::object::lock;

/// The state of the running machine that the kernel routines share.
pub(crate) struct MachineState {
    pub(crate) sim: Sim,
    /// Live `ExAllocatePool2` blocks: address -> size.
    pub(crate) pool: Mutex<HashMap<usize, usize>>,
    /// `KEVENT`s initialised by `KeInitializeEvent`: address -> the
    /// simulator event standing for it.
    pub(crate) events: Mutex<BTreeMap<usize, Arc<SimEvent>>>,
    /// `DbgPrint` output.
    pub(crate) log: Mutex<Vec<String>>,
    /// The service's `Parameters` key: `None` when it does not exist.
    pub(crate) parameters: Mutex<Option<HashMap<String, u32>>>,
    /// PnP notification registrations alive.
    pub(crate) registrations: Mutex<usize>,
    /// The `DRIVER_OBJECT` given to `DriverEntry` (zero-filled: the driver
    /// only passes it back to the kernel).
    driver_object: Box<[u64; DRIVER_OBJECT_WORDS]>,
}

/// `sizeof(DRIVER_OBJECT)` on 64-bit Windows, in 8-byte words.
const DRIVER_OBJECT_WORDS: usize = size_of::<wdk_sys::DRIVER_OBJECT>() / 8;

impl MachineState {
    /// The machine's `DRIVER_OBJECT`.
    pub(crate) fn driver_object(&self) -> wdk_sys::PDRIVER_OBJECT {
        self.driver_object.as_ptr().cast_mut().cast()
    }
}

/// The current machine, if any.
static CURRENT: Mutex<Option<Arc<MachineState>>> = Mutex::new(None);
/// Whether a machine exists, and the condition a new one waits on.
static EXCLUSIVE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// The current machine; panics if none is running (a kernel routine called
/// outside an emulated machine).
#[track_caller]
pub(crate) fn current() -> Arc<MachineState> {
    lock(&CURRENT)
        .clone()
        .expect("dmf-kmdf-emu: a kernel routine was called with no emulated machine running")
}

/// An emulated machine over a simulator: KMDF 1.33 and the kernel routines
/// `dmf-kmdf` calls, acting on `sim`'s devices, bus, PnP thread, completion
/// threads and clock. Exclusive per process (see the module docs): `new`
/// waits while another machine exists.
pub struct Machine {
    state: Arc<MachineState>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("sim", &self.state.sim)
            .finish()
    }
}

impl Machine {
    /// Starts a machine on `sim` (waiting for any other machine of the
    /// process to be dropped first).
    pub fn new(sim: Sim) -> Machine {
        let (flag, cv) = &EXCLUSIVE;
        let mut busy = flag.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy {
            busy = cv.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy = true;
        drop(busy);
        let state = Arc::new(MachineState {
            sim,
            pool: Mutex::new(HashMap::new()),
            events: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            parameters: Mutex::new(None),
            registrations: Mutex::new(0),
            driver_object: Box::new([0; DRIVER_OBJECT_WORDS]),
        });
        // Objects a previous machine left behind (its test failed) are not
        // this machine's: forget them without running their teardown.
        crate::object::forget_all();
        *lock(&crate::driver::DRIVER) = 0;
        *lock(&CURRENT) = Some(Arc::clone(&state));
        Machine { state }
    }

    /// The simulator under the machine.
    pub fn sim(&self) -> &Sim {
        &self.state.sim
    }

    /// Creates the service's `Parameters` key with these `REG_DWORD` values
    /// (without it, `WdfDriverOpenParametersRegistryKey` fails with
    /// `STATUS_OBJECT_NAME_NOT_FOUND`).
    pub fn set_parameters<'a>(&self, values: impl IntoIterator<Item = (&'a str, u32)>) {
        let map = values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        *lock(&self.state.parameters) = Some(map);
    }

    /// Everything printed with `DbgPrint` so far, one line each.
    pub fn debug_output(&self) -> Vec<String> {
        lock(&self.state.log).clone()
    }

    /// What is still allocated or alive: pool blocks, kernel events, PnP
    /// notification registrations and WDF objects not deleted (each
    /// described). Empty when the driver freed everything it made.
    pub fn leaks(&self) -> Vec<String> {
        let mut out = Vec::new();
        let pool = lock(&self.state.pool);
        if !pool.is_empty() {
            let bytes: usize = pool.values().sum();
            out.push(format!("{} pool blocks ({bytes} bytes)", pool.len()));
        }
        drop(pool);
        let events = lock(&self.state.events).len();
        if events > 0 {
            out.push(format!(
                "{events} KEVENTs initialised whose memory was not freed"
            ));
        }
        let registrations = *lock(&self.state.registrations);
        if registrations > 0 {
            out.push(format!("{registrations} PnP notification registrations"));
        }
        for (kind, handle) in crate::object::live_objects() {
            out.push(format!("{kind} {handle:p} not deleted"));
        }
        out.extend(crate::object::deleted_with_parent());
        out
    }

    pub(crate) fn state(&self) -> &Arc<MachineState> {
        &self.state
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        *lock(&CURRENT) = None;
        let (flag, cv) = &EXCLUSIVE;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = false;
        cv.notify_one();
    }
}
