//! The simulated PnP bus (see [`Bus`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use dmf_wdf::{Guid, OpenMode, ShareAccess, Status};

use crate::core::{lock, Core};
use crate::device::DeviceHandler;
use crate::io_target::TargetInner;
use crate::irp;
use crate::pnp::{self, Registration};
use crate::request::RequestInner;
use crate::rng::SplitMix64;
use crate::Sim;

/// Identifies a device on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u64);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device {}", self.0)
    }
}

/// Which access a device grants to opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AllowedAccess {
    /// Read and write.
    #[default]
    ReadWrite,
    /// Opens asking for write (or delete) access fail with `STATUS_ACCESS_DENIED`.
    ReadOnly,
    /// Opens asking for read access fail with `STATUS_ACCESS_DENIED`.
    WriteOnly,
}

/// What a device does with the IRPs it holds when it is surprise-removed.
///
/// In KMDF the lower driver decides: it completes what it holds when it
/// handles the removal, with its own status (`STATUS_NO_SUCH_DEVICE`,
/// `STATUS_DELETE_PENDING`, `STATUS_DEVICE_REMOVED`, ...), and until then it
/// may hold them non-cancelable, so that a close of the target from its
/// remove-complete callback waits for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurpriseRemoval {
    /// The status the device completes its pending IRPs with.
    pub status: Status,
    /// Simulated milliseconds after the removal at which it completes them;
    /// until then they are not cancelable (cancellation has no effect). `0`
    /// completes them during the removal, before `remove_complete`.
    pub delay_ms: u64,
}

impl Default for SurpriseRemoval {
    /// `STATUS_DEVICE_REMOVED`, at once.
    fn default() -> Self {
        SurpriseRemoval {
            status: Status::DEVICE_REMOVED,
            delay_ms: 0,
        }
    }
}

/// A device to plug into the bus.
#[derive(Clone)]
pub struct DeviceSpec {
    /// Name, part of the symbolic links (`#` and `\` become `_`).
    pub name: String,
    /// Interface classes the device exposes.
    pub interfaces: Vec<Guid>,
    /// What answers the IRPs.
    pub handler: Arc<dyn DeviceHandler>,
    /// Access granted to opens.
    pub access: AllowedAccess,
    /// Whether the interfaces are enabled when the device is added (default true).
    pub interfaces_enabled: bool,
    /// What it does with pending IRPs on a surprise removal.
    pub surprise_removal: SurpriseRemoval,
}

impl fmt::Debug for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSpec")
            .field("name", &self.name)
            .field("interfaces", &self.interfaces)
            .field("access", &self.access)
            .field("interfaces_enabled", &self.interfaces_enabled)
            .field("surprise_removal", &self.surprise_removal)
            .finish()
    }
}

impl DeviceSpec {
    /// A read-write device named `name` with no interface yet.
    pub fn new(name: impl Into<String>, handler: Arc<dyn DeviceHandler>) -> Self {
        DeviceSpec {
            name: name.into(),
            interfaces: Vec::new(),
            handler,
            access: AllowedAccess::ReadWrite,
            interfaces_enabled: true,
            surprise_removal: SurpriseRemoval::default(),
        }
    }

    /// On a surprise removal, completes the IRPs pending at the device with
    /// `status` after `delay_ms` simulated milliseconds, holding them
    /// non-cancelable until then (see [`SurpriseRemoval`]).
    pub fn with_surprise_removal(mut self, status: Status, delay_ms: u64) -> Self {
        self.surprise_removal = SurpriseRemoval { status, delay_ms };
        self
    }

    /// Adds an interface class.
    pub fn with_interface(mut self, guid: Guid) -> Self {
        self.interfaces.push(guid);
        self
    }

    /// Sets the access the device grants.
    pub fn with_access(mut self, access: AllowedAccess) -> Self {
        self.access = access;
        self
    }

    /// Adds the device with its interfaces disabled (enable them later with
    /// [`Bus::enable_interface`]).
    pub fn with_interfaces_disabled(mut self) -> Self {
        self.interfaces_enabled = false;
        self
    }
}

/// One interface of a device, as reported by [`Bus::devices`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Interface class.
    pub guid: Guid,
    /// Its symbolic link.
    pub symbolic_link: String,
    /// Whether it is enabled.
    pub enabled: bool,
}

/// A device present on the bus ([`Bus::devices`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its id.
    pub id: DeviceId,
    /// Its name.
    pub name: String,
    /// Its device link.
    pub device_link: String,
    /// Its interfaces.
    pub interfaces: Vec<InterfaceInfo>,
    /// Targets currently open on it.
    pub open_handles: usize,
    /// IRPs pending at it.
    pub pending_irps: usize,
}

/// How a removal attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalOutcome {
    /// Every open target accepted and closed: the device is gone.
    Removed,
    /// An open target's `query_remove` failed with `status`: the device stays,
    /// and every target registered on it received `remove_canceled`.
    Vetoed {
        /// The veto status.
        status: Status,
    },
    /// Every target accepted, but `count` of them did not close their handle
    /// (`close_for_query_remove`), so the PnP manager could not remove the
    /// device: the removal was cancelled as for a veto.
    HandlesStillOpen {
        /// Targets still open.
        count: usize,
    },
    /// [`Bus::query_remove_then_cancel`]: every target accepted, then the
    /// removal was cancelled by someone else and they received `remove_canceled`.
    Cancelled,
}

/// Where a device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    Present,
    RemovePending,
    Removed,
    SurpriseRemoved,
}

pub(crate) struct InterfaceData {
    pub(crate) guid: Guid,
    pub(crate) link: String,
    pub(crate) enabled: bool,
}

/// The access of one open handle, in `IoCheckShareAccess` terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenAccess {
    read: bool,
    write: bool,
    delete: bool,
    share_read: bool,
    share_write: bool,
    share_delete: bool,
}

const GENERIC_READ: u32 = 0x8000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;
const GENERIC_EXECUTE: u32 = 0x2000_0000;
const GENERIC_ALL: u32 = 0x1000_0000;
const FILE_READ_DATA: u32 = 0x0001;
const FILE_WRITE_DATA: u32 = 0x0002;
const FILE_APPEND_DATA: u32 = 0x0004;
const FILE_EXECUTE: u32 = 0x0020;
const DELETE: u32 = 0x0001_0000;
const FILE_SHARE_DELETE: u32 = 0x0004;

impl OpenAccess {
    pub(crate) fn new(mode: OpenMode, share: ShareAccess) -> Self {
        let m = mode.0;
        OpenAccess {
            read: m
                & (GENERIC_READ | GENERIC_EXECUTE | GENERIC_ALL | FILE_READ_DATA | FILE_EXECUTE)
                != 0,
            write: m & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA | FILE_APPEND_DATA) != 0,
            delete: m & (GENERIC_ALL | DELETE) != 0,
            share_read: share.shares_read(),
            share_write: share.shares_write(),
            share_delete: share.0 & FILE_SHARE_DELETE != 0,
        }
    }

    /// Whether the open takes part in share checks (`IoCheckShareAccess`
    /// ignores opens without read, write or delete access).
    fn participates(&self) -> bool {
        self.read || self.write || self.delete
    }

    /// Windows share-access semantics: each open must allow what the other
    /// asks for.
    fn conflicts_with(&self, other: &OpenAccess) -> bool {
        if !self.participates() || !other.participates() {
            return false;
        }
        (self.read && !other.share_read)
            || (self.write && !other.share_write)
            || (self.delete && !other.share_delete)
            || (other.read && !self.share_read)
            || (other.write && !self.share_write)
            || (other.delete && !self.share_delete)
    }
}

/// A target attached to a device: open, or closed for a query-remove (still
/// registered for its removal notifications).
pub(crate) struct Attachment {
    pub(crate) target_id: u64,
    pub(crate) target: Weak<TargetInner>,
    pub(crate) open: Option<OpenAccess>,
}

pub(crate) struct DeviceData {
    pub(crate) presence: Presence,
    pub(crate) interfaces: Vec<InterfaceData>,
    pub(crate) attached: Vec<Attachment>,
    pending: Vec<(Arc<RequestInner>, u64)>,
}

/// A device on (or removed from) the bus.
pub(crate) struct DeviceInner {
    pub(crate) id: DeviceId,
    pub(crate) name: String,
    pub(crate) link: String,
    pub(crate) handler: Arc<dyn DeviceHandler>,
    pub(crate) access: AllowedAccess,
    pub(crate) surprise_removal: SurpriseRemoval,
    pub(crate) rng: Arc<Mutex<SplitMix64>>,
    data: Mutex<DeviceData>,
}

impl DeviceInner {
    pub(crate) fn data(&self) -> MutexGuard<'_, DeviceData> {
        lock(&self.data)
    }

    /// Registers send `gen` of `req` as pending here; `false` if the device is
    /// gone (the send then completes with `STATUS_DELETE_PENDING`).
    pub(crate) fn push_pending(&self, req: &Arc<RequestInner>, gen: u64) -> bool {
        let mut d = self.data();
        match d.presence {
            Presence::Removed | Presence::SurpriseRemoved => false,
            Presence::Present | Presence::RemovePending => {
                d.pending.push((Arc::clone(req), gen));
                true
            }
        }
    }

    pub(crate) fn remove_pending(&self, req: &Arc<RequestInner>, gen: u64) {
        let mut d = self.data();
        if let Some(i) = d
            .pending
            .iter()
            .position(|(r, g)| Arc::ptr_eq(r, req) && *g == gen)
        {
            d.pending.swap_remove(i);
        }
    }

    pub(crate) fn take_pending(&self) -> Vec<(Arc<RequestInner>, u64)> {
        std::mem::take(&mut self.data().pending)
    }

    /// Targets attached to the device (open or closed for query-remove).
    fn attached_targets(&self) -> Vec<Arc<TargetInner>> {
        self.data()
            .attached
            .iter()
            .filter_map(|a| a.target.upgrade())
            .collect()
    }

    fn info(&self) -> DeviceInfo {
        let d = self.data();
        DeviceInfo {
            id: self.id,
            name: self.name.clone(),
            device_link: self.link.clone(),
            interfaces: d
                .interfaces
                .iter()
                .map(|i| InterfaceInfo {
                    guid: i.guid,
                    symbolic_link: i.link.clone(),
                    enabled: i.enabled,
                })
                .collect(),
            open_handles: d.attached.iter().filter(|a| a.open.is_some()).count(),
            pending_irps: d.pending.len(),
        }
    }
}

/// The bus part of the simulator state.
pub(crate) struct BusState {
    /// The present devices, by id. Add and remove them with
    /// [`insert_device`](Self::insert_device) and
    /// [`remove_device`](Self::remove_device), which keep `links` in step.
    pub(crate) devices: BTreeMap<u64, Arc<DeviceInner>>,
    pub(crate) registrations: Vec<Arc<Registration>>,
    /// Every link of a present device (its device link and one per
    /// interface, enabled or not), ASCII-lowercased: the device's id and,
    /// for an interface link, the interface class. Name lookup on open
    /// is a hash lookup, not a scan of the bus.
    links: HashMap<String, (u64, Option<Guid>)>,
    next_device: u64,
}

impl BusState {
    pub(crate) fn new() -> Self {
        BusState {
            devices: BTreeMap::new(),
            registrations: Vec::new(),
            links: HashMap::new(),
            next_device: 1,
        }
    }

    /// A device arrives on the bus (with all its links).
    fn insert_device(&mut self, device: Arc<DeviceInner>) {
        let id = device.id.0;
        self.links
            .insert(device.link.to_ascii_lowercase(), (id, None));
        for i in device.data().interfaces.iter() {
            self.links
                .insert(i.link.to_ascii_lowercase(), (id, Some(i.guid)));
        }
        self.devices.insert(id, device);
    }

    /// A device leaves the bus (with all its links).
    fn remove_device(&mut self, id: u64) -> Option<Arc<DeviceInner>> {
        let device = self.devices.remove(&id)?;
        self.links.remove(&device.link.to_ascii_lowercase());
        for i in device.data().interfaces.iter() {
            self.links.remove(&i.link.to_ascii_lowercase());
        }
        Some(device)
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c == '#' || c == '\\' { '_' } else { c })
        .collect()
}

/// Finds the present device opened by `link` (compared ignoring ASCII case)
/// and, for an interface link, the interface class. Constant time in the
/// number of devices.
pub(crate) fn lookup(core: &Core, link: &str) -> Option<(Arc<DeviceInner>, Option<Guid>)> {
    let bus = lock(&core.bus);
    let (id, guid) = *bus.links.get(&link.to_ascii_lowercase())?;
    bus.devices.get(&id).map(|d| (Arc::clone(d), guid))
}

/// Opens `target` on the device named by `link`: name lookup, presence,
/// enabled interface, access and share checks, then attaches the target and
/// moves it to `Started`. `reopen` chooses between an open (the target must
/// not be open or closed for a query-remove) and a reopen (it must be closed
/// for a query-remove).
pub(crate) fn open_target(
    core: &Core,
    target: &Arc<TargetInner>,
    link: &str,
    mode: OpenMode,
    share: ShareAccess,
    reopen: bool,
) -> dmf_wdf::Result<Arc<DeviceInner>> {
    let (device, interface) = lookup(core, link).ok_or(Status::OBJECT_NAME_NOT_FOUND)?;
    let access = OpenAccess::new(mode, share);
    let mut d = device.data();
    match d.presence {
        Presence::Present => {}
        Presence::RemovePending => return Err(Status::DELETE_PENDING),
        Presence::Removed | Presence::SurpriseRemoved => return Err(Status::OBJECT_NAME_NOT_FOUND),
    }
    if let Some(guid) = interface {
        if !d.interfaces.iter().any(|i| i.guid == guid && i.enabled) {
            return Err(Status::OBJECT_NAME_NOT_FOUND);
        }
    }
    let denied = match device.access {
        AllowedAccess::ReadWrite => false,
        AllowedAccess::ReadOnly => access.write || access.delete,
        AllowedAccess::WriteOnly => access.read,
    };
    if denied {
        return Err(Status::ACCESS_DENIED);
    }
    let conflict = d
        .attached
        .iter()
        .filter(|a| a.target_id != target.id)
        .filter_map(|a| a.open.as_ref())
        .any(|other| access.conflicts_with(other));
    if conflict {
        return Err(Status::SHARING_VIOLATION);
    }
    target.attach_started(&device, reopen)?;
    match d.attached.iter_mut().find(|a| a.target_id == target.id) {
        Some(a) => a.open = Some(access),
        None => d.attached.push(Attachment {
            target_id: target.id,
            target: Arc::downgrade(target),
            open: Some(access),
        }),
    }
    drop(d);
    Ok(device)
}

/// Marks `target`'s handle on `device` closed; `detach` also drops its
/// registration for removal notifications.
pub(crate) fn release_target(device: &DeviceInner, target_id: u64, detach: bool) {
    let mut d = device.data();
    if detach {
        d.attached.retain(|a| a.target_id != target_id);
    } else if let Some(a) = d.attached.iter_mut().find(|a| a.target_id == target_id) {
        a.open = None;
    }
}

/// Handle to the simulated PnP bus ([`Sim::bus`]).
///
/// Every change of the bus runs on the simulator's PnP thread, one at a time
/// and in order, and every notification (interface arrival/removal to
/// registrations, query-remove/remove-cancel/remove-complete to the targets
/// opened on a device) is delivered from there. The [`Bus`] methods queue the
/// change and wait until the PnP thread has finished it, notifications
/// included, so tests can use them synchronously.
///
/// Each device has a *device link* `\??\SIM#<name>#<id>` that opens it while
/// it is present, and one *interface link* `\??\SIM#<name>#<id>#{guid}` per
/// interface class, which opens it only while that interface is enabled.
///
/// ```
/// use std::sync::Arc;
/// use dmf_sim::{DeviceSpec, RemovalOutcome, Sim, SimConfig, TestsIoctlHandler, GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER};
///
/// let sim = Sim::new(SimConfig::default());
/// let bus = sim.bus();
/// let id = bus
///     .add_device(
///         DeviceSpec::new("ioctl", Arc::new(TestsIoctlHandler::default()))
///             .with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER),
///     )
///     .unwrap();
/// let link = bus.symbolic_link(id, &GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER).unwrap();
/// assert!(link.starts_with("\\??\\SIM#ioctl#"));
/// assert_eq!(bus.find_by_link(&link), Some(id));
/// assert_eq!(bus.remove_device(id), Ok(RemovalOutcome::Removed));
/// assert_eq!(bus.find_by_link(&link), None);
/// ```
#[derive(Clone)]
pub struct Bus {
    sim: Sim,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("devices", &self.devices())
            .finish()
    }
}

impl Bus {
    pub(crate) fn new(sim: Sim) -> Self {
        Bus { sim }
    }

    fn core(&self) -> &Arc<Core> {
        self.sim.core()
    }

    /// Plugs a device in; its enabled interfaces are reported as arrivals to
    /// matching registrations before this returns.
    ///
    /// Fails with `STATUS_INVALID_DEVICE_STATE` after shutdown. Must not be
    /// called from a PnP callback or in dispatch context (it waits for the PnP
    /// thread).
    pub fn add_device(&self, spec: DeviceSpec) -> dmf_wdf::Result<DeviceId> {
        let core = self.core();
        let id = {
            let mut bus = lock(&core.bus);
            let id = bus.next_device;
            bus.next_device += 1;
            id
        };
        let name = sanitize(&spec.name);
        let link = format!("\\??\\SIM#{name}#{id:04}");
        let mut interfaces: Vec<InterfaceData> = Vec::new();
        for guid in spec.interfaces {
            if interfaces.iter().all(|i| i.guid != guid) {
                interfaces.push(InterfaceData {
                    guid,
                    link: format!("{link}#{guid}"),
                    enabled: false,
                });
            }
        }
        let device = Arc::new(DeviceInner {
            id: DeviceId(id),
            name,
            link,
            handler: spec.handler,
            access: spec.access,
            surprise_removal: spec.surprise_removal,
            rng: Arc::new(Mutex::new(SplitMix64::derive(core.seed, 0xDE71_CE00 + id))),
            data: Mutex::new(DeviceData {
                presence: Presence::Present,
                interfaces,
                attached: Vec::new(),
                pending: Vec::new(),
            }),
        });
        let enable = spec.interfaces_enabled;
        pnp::call(core, "Bus::add_device", move |core| {
            tracing::debug!(sim = core.id, device = id, name = %device.name, "dmf-sim: device added");
            lock(&core.bus).insert_device(Arc::clone(&device));
            if enable {
                let guids: Vec<Guid> = device.data().interfaces.iter().map(|i| i.guid).collect();
                for guid in guids {
                    set_interface(core, &device, guid, true);
                }
            }
        })?;
        Ok(DeviceId(id))
    }

    /// Enables an interface of a device: matching registrations get an
    /// arrival. Enabling an enabled interface does nothing.
    /// `STATUS_NO_SUCH_DEVICE` if the device is not present or lacks the interface.
    pub fn enable_interface(&self, id: DeviceId, guid: &Guid) -> dmf_wdf::Result<()> {
        self.toggle(id, *guid, true)
    }

    /// Disables an interface of a device: matching registrations get a
    /// removal; opens through its link fail from now on (targets already open
    /// are not affected).
    pub fn disable_interface(&self, id: DeviceId, guid: &Guid) -> dmf_wdf::Result<()> {
        self.toggle(id, *guid, false)
    }

    fn toggle(&self, id: DeviceId, guid: Guid, enable: bool) -> dmf_wdf::Result<()> {
        pnp::call(
            self.core(),
            "Bus::enable_interface/disable_interface",
            move |core| {
                let device = lock(&core.bus).devices.get(&id.0).cloned();
                let device = device.ok_or(Status::NO_SUCH_DEVICE)?;
                if !device.data().interfaces.iter().any(|i| i.guid == guid) {
                    return Err(Status::NO_SUCH_DEVICE);
                }
                set_interface(core, &device, guid, enable);
                Ok(())
            },
        )?
    }

    /// Orderly removal: `query_remove` to every target open on the device (in
    /// open order; stops at the first veto). If all accept and closed their
    /// handles: the device leaves the bus, `remove_complete` goes to every
    /// target registered on it, then its interfaces are reported removed.
    /// Otherwise the removal is cancelled: `remove_canceled` goes to every
    /// target registered on the device (the vetoer included, as the PnP
    /// manager notifies every registration) and the device stays.
    pub fn remove_device(&self, id: DeviceId) -> dmf_wdf::Result<RemovalOutcome> {
        pnp::call(self.core(), "Bus::remove_device", move |core| {
            remove(core, id, false)
        })?
    }

    /// `query_remove` to every open target, then — even if all accepted —
    /// `remove_canceled` to every registered target: the path where someone
    /// else (another driver in the stack, a user) cancels the removal.
    pub fn query_remove_then_cancel(&self, id: DeviceId) -> dmf_wdf::Result<RemovalOutcome> {
        pnp::call(self.core(), "Bus::query_remove_then_cancel", move |core| {
            remove(core, id, true)
        })?
    }

    /// Surprise removal: no query. The device leaves the bus; the IRPs
    /// pending at it complete as the device decides ([`SurpriseRemoval`],
    /// set with [`DeviceSpec::with_surprise_removal`]: by default at once with
    /// `STATUS_DEVICE_REMOVED`; with a delay they stay pending, not
    /// cancelable, through `remove_complete`, so a close there waits for
    /// them — use a real-time clock for that); every registered target gets
    /// `remove_complete`, then its interfaces are reported removed. Later
    /// sends on targets still open complete with `STATUS_DELETE_PENDING`.
    pub fn surprise_remove(&self, id: DeviceId) -> dmf_wdf::Result<()> {
        pnp::call(self.core(), "Bus::surprise_remove", move |core| {
            surprise(core, id)
        })?
    }

    /// Waits until the PnP thread has processed everything queued so far
    /// (for example the arrivals reported to a new registration).
    pub fn flush(&self) -> dmf_wdf::Result<()> {
        pnp::call(self.core(), "Bus::flush", |_| ())
    }

    /// The devices present, by id.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        let devices: Vec<Arc<DeviceInner>> =
            lock(&self.core().bus).devices.values().cloned().collect();
        devices.iter().map(|d| d.info()).collect()
    }

    /// One present device.
    pub fn device(&self, id: DeviceId) -> Option<DeviceInfo> {
        let device = lock(&self.core().bus).devices.get(&id.0).cloned();
        device.map(|d| d.info())
    }

    /// The device link of a present device (opens it regardless of its interfaces).
    pub fn device_link(&self, id: DeviceId) -> Option<String> {
        lock(&self.core().bus)
            .devices
            .get(&id.0)
            .map(|d| d.link.clone())
    }

    /// The symbolic link of interface `guid` of a present device.
    pub fn symbolic_link(&self, id: DeviceId, guid: &Guid) -> Option<String> {
        let device = lock(&self.core().bus).devices.get(&id.0).cloned()?;
        let d = device.data();
        d.interfaces
            .iter()
            .find(|i| i.guid == *guid)
            .map(|i| i.link.clone())
    }

    /// The present device a device or interface link names (case-insensitive).
    pub fn find_by_link(&self, link: &str) -> Option<DeviceId> {
        lookup(self.core(), link).map(|(d, _)| d.id)
    }
}

/// Enables or disables an interface and notifies registrations (PnP thread).
fn set_interface(core: &Arc<Core>, device: &DeviceInner, guid: Guid, enable: bool) {
    let link = {
        let mut d = device.data();
        let Some(i) = d.interfaces.iter_mut().find(|i| i.guid == guid) else {
            return;
        };
        if i.enabled == enable {
            return;
        }
        i.enabled = enable;
        i.link.clone()
    };
    tracing::debug!(sim = core.id, device = device.id.0, %guid, link, enable, "dmf-sim: interface state change");
    pnp::notify_interface(core, guid, &link, enable);
}

fn disable_all_interfaces(core: &Arc<Core>, device: &DeviceInner) {
    let guids: Vec<Guid> = device
        .data()
        .interfaces
        .iter()
        .filter(|i| i.enabled)
        .map(|i| i.guid)
        .collect();
    for guid in guids {
        set_interface(core, device, guid, false);
    }
}

/// Orderly removal or query-then-cancel (PnP thread).
fn remove(core: &Arc<Core>, id: DeviceId, cancel_anyway: bool) -> dmf_wdf::Result<RemovalOutcome> {
    let device = lock(&core.bus).devices.get(&id.0).cloned();
    let device = device.ok_or(Status::NO_SUCH_DEVICE)?;
    let open: Vec<Arc<TargetInner>> = {
        let mut d = device.data();
        if d.presence != Presence::Present {
            return Err(Status::NO_SUCH_DEVICE);
        }
        d.presence = Presence::RemovePending;
        d.attached
            .iter()
            .filter(|a| a.open.is_some())
            .filter_map(|a| a.target.upgrade())
            .collect()
    };
    tracing::debug!(
        sim = core.id,
        device = id.0,
        targets = open.len(),
        "dmf-sim: query-remove"
    );
    let mut veto = None;
    for t in &open {
        let status = t
            .events
            .call(|e| core.guarded("TargetEvents::query_remove", || e.query_remove()))
            .flatten();
        match status {
            Some(s) if !s.is_success() => {
                veto = Some(s);
                break;
            }
            None if t.events.is_set() => {
                // The callback panicked: treat as a veto.
                veto = Some(Status::UNSUCCESSFUL);
                break;
            }
            _ => {}
        }
    }
    let outcome = match veto {
        Some(status) => Some(RemovalOutcome::Vetoed { status }),
        None => {
            let still_open = device
                .data()
                .attached
                .iter()
                .filter(|a| a.open.is_some())
                .count();
            if still_open > 0 {
                Some(RemovalOutcome::HandlesStillOpen { count: still_open })
            } else if cancel_anyway {
                Some(RemovalOutcome::Cancelled)
            } else {
                None
            }
        }
    };
    if let Some(outcome) = outcome {
        device.data().presence = Presence::Present;
        tracing::debug!(
            sim = core.id,
            device = id.0,
            ?outcome,
            "dmf-sim: remove cancelled"
        );
        for t in device.attached_targets() {
            t.events
                .call(|e| core.guarded("TargetEvents::remove_canceled", || e.remove_canceled()));
        }
        return Ok(outcome);
    }
    device.data().presence = Presence::Removed;
    lock(&core.bus).remove_device(id.0);
    tracing::debug!(sim = core.id, device = id.0, "dmf-sim: remove complete");
    for t in device.attached_targets() {
        t.events
            .call(|e| core.guarded("TargetEvents::remove_complete", || e.remove_complete()));
    }
    for (req, gen) in device.take_pending() {
        irp::complete_internal(&req, gen, Status::DEVICE_REMOVED, 0);
    }
    disable_all_interfaces(core, &device);
    Ok(RemovalOutcome::Removed)
}

/// Surprise removal (PnP thread).
fn surprise(core: &Arc<Core>, id: DeviceId) -> dmf_wdf::Result<()> {
    let device = lock(&core.bus).remove_device(id.0);
    let device = device.ok_or(Status::NO_SUCH_DEVICE)?;
    let pending = {
        let mut d = device.data();
        d.presence = Presence::SurpriseRemoved;
        std::mem::take(&mut d.pending)
    };
    tracing::debug!(
        sim = core.id,
        device = id.0,
        pending = pending.len(),
        "dmf-sim: surprise removal"
    );
    let SurpriseRemoval { status, delay_ms } = device.surprise_removal;
    for (req, gen) in pending {
        irp::hold_uncancelable(&req, gen, delay_ms, status);
    }
    for t in device.attached_targets() {
        t.events
            .call(|e| core.guarded("TargetEvents::remove_complete", || e.remove_complete()));
    }
    disable_all_interfaces(core, &device);
    Ok(())
}
