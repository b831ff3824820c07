//! WDF objects: handles, the parent/child tree, typed contexts, cleanup
//! callbacks and `WdfObjectDelete`.
//!
//! A handle is the address of an [`Object`] (an `Arc`'s pointee). The
//! object table maps every handle the emulation gave out to the object; a
//! handle that is not in it (never created, or deleted and no longer
//! referenced) makes the call panic, as the KMDF verifier bug-checks on an
//! invalid handle (`WDF_VIOLATION`).
//!
//! Lifetime follows KMDF's two steps (`FxObject`: dispose, then destroy when
//! the last reference goes):
//!
//! * `WdfObjectDelete` (or the deletion of the parent) deletes the children
//!   first, runs the object's own teardown (a timer is stopped and its
//!   callback waited for, a target is closed, ...), then calls its
//!   `EvtCleanupCallback`. After that the handle may no longer be used by
//!   its owner.
//! * The memory (and the context) stays until the last reference is gone: a
//!   callback of the object that is running holds one, so the object's
//!   methods and its context stay usable inside its own callbacks, as KMDF
//!   guarantees.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use wdk_sys::{
    PCWDF_OBJECT_CONTEXT_TYPE_INFO, PFN_WDF_OBJECT_CONTEXT_CLEANUP, PWDF_OBJECT_ATTRIBUTES,
    WDFOBJECT, WDF_OBJECT_ATTRIBUTES,
};

use crate::device::DeviceData;
use crate::driver::DriverData;
use crate::io_target::TargetData;
use crate::queue::IncomingData;
use crate::queue::QueueData;
use crate::registry::KeyData;
use crate::request::{MemoryData, RequestData};
use crate::timer::TimerData;
use crate::wait_lock::WaitLockData;
use crate::work_item::WorkItemData;

/// Locks a mutex, ignoring poisoning (a panic elsewhere already fails the
/// run; the data stays consistent because every critical section is short).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an object is, with its kind's state.
pub(crate) enum Kind {
    /// `WDFDRIVER`.
    Driver(DriverData),
    /// `WDFDEVICE`.
    Device(DeviceData),
    /// `WDFQUEUE`.
    Queue(QueueData),
    /// `WDFKEY`.
    Key(KeyData),
    /// A `WDFREQUEST` the driver created.
    Request(RequestData),
    /// A `WDFREQUEST` the framework presented to a queue.
    Incoming(IncomingData),
    /// `WDFMEMORY`.
    Memory(MemoryData),
    /// `WDFTIMER`.
    Timer(TimerData),
    /// `WDFWORKITEM`.
    WorkItem(WorkItemData),
    /// `WDFIOTARGET`.
    IoTarget(TargetData),
    /// `WDFWAITLOCK`.
    WaitLock(WaitLockData),
}

impl Kind {
    /// The WDF type name, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Kind::Driver(_) => "WDFDRIVER",
            Kind::Device(_) => "WDFDEVICE",
            Kind::Queue(_) => "WDFQUEUE",
            Kind::Key(_) => "WDFKEY",
            Kind::Request(_) | Kind::Incoming(_) => "WDFREQUEST",
            Kind::Memory(_) => "WDFMEMORY",
            Kind::Timer(_) => "WDFTIMER",
            Kind::WorkItem(_) => "WDFWORKITEM",
            Kind::IoTarget(_) => "WDFIOTARGET",
            Kind::WaitLock(_) => "WDFWAITLOCK",
        }
    }
}

/// A typed context (`WDF_OBJECT_ATTRIBUTES.ContextTypeInfo`): zero-filled
/// memory of the declared size, 16-byte aligned.
struct Context {
    type_info: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    memory: Box<[u128]>,
}

/// One WDF object.
pub(crate) struct Object {
    pub(crate) kind: Kind,
    parent: usize,
    children: Mutex<Vec<usize>>,
    context: Option<Context>,
    cleanup: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    deleted: AtomicBool,
}

// SAFETY: the raw pointers an object holds (context type info, callbacks'
// contexts) point to 'static data or to memory the driver keeps valid for
// the object's life, as WDF's contract requires; every mutable field is
// behind a lock or atomic.
unsafe impl Send for Object {}
// SAFETY: as above.
unsafe impl Sync for Object {}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:p}", self.kind.name(), self)
    }
}

impl Object {
    /// The object's handle.
    pub(crate) fn handle(self: &Arc<Self>) -> WDFOBJECT {
        Arc::as_ptr(self).cast_mut().cast::<c_void>()
    }

    /// Whether `WdfObjectDelete` ran (or its parent was deleted).
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The parent's handle (null for none).
    pub(crate) fn parent(&self) -> WDFOBJECT {
        self.parent as WDFOBJECT
    }
}

/// An entry of the object table: the owner's reference until deletion, and a
/// weak one for callbacks still running on a deleted object.
struct Slot {
    owner: Option<Arc<Object>>,
    weak: Weak<Object>,
}

/// Objects the driver created and still owned when the framework deleted
/// them with their device or driver (KMDF deletes them silently; the Rust
/// owner would then delete them a second time).
static DELETED_WITH_PARENT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether the driver, not the framework, deletes objects of this kind.
fn driver_owned(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Request(_)
            | Kind::Memory(_)
            | Kind::Timer(_)
            | Kind::WorkItem(_)
            | Kind::IoTarget(_)
            | Kind::Key(_)
    )
}

/// The objects deleted with their device or driver while the driver still
/// owned them (see [`DELETED_WITH_PARENT`]).
pub(crate) fn deleted_with_parent() -> Vec<String> {
    lock(&DELETED_WITH_PARENT).clone()
}

/// Every object the emulation created and that is still referenced.
static TABLE: Mutex<Option<HashMap<usize, Slot>>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut HashMap<usize, Slot>) -> R) -> R {
    let mut table = lock(&TABLE);
    f(table.get_or_insert_with(HashMap::new))
}

/// Forgets every object (leaking them): for a new machine after one whose
/// driver did not delete everything.
pub(crate) fn forget_all() {
    if let Some(table) = lock(&TABLE).take() {
        std::mem::forget(table);
    }
    lock(&DELETED_WITH_PARENT).clear();
}

/// How many objects of each kind are alive (not deleted), for leak checks.
pub(crate) fn live_objects() -> Vec<(&'static str, WDFOBJECT)> {
    with_table(|t| {
        t.values()
            .filter_map(|s| s.owner.as_ref())
            .map(|o| (o.kind.name(), o.handle()))
            .collect()
    })
}

/// The attributes a creation function was given, checked like the
/// framework's `FxValidateObjectAttributes`.
pub(crate) struct Attributes {
    pub(crate) parent: WDFOBJECT,
    pub(crate) context: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    pub(crate) cleanup: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
}

impl Attributes {
    /// Reads `WDF_OBJECT_ATTRIBUTES` (null: `WDF_NO_OBJECT_ATTRIBUTES`).
    ///
    /// # Safety
    ///
    /// `attributes` is null or points to a readable structure.
    pub(crate) unsafe fn read(attributes: PWDF_OBJECT_ATTRIBUTES, function: &str) -> Self {
        if attributes.is_null() {
            return Attributes {
                parent: std::ptr::null_mut(),
                context: std::ptr::null(),
                cleanup: None,
            };
        }
        // SAFETY: caller contract.
        let a = unsafe { &*attributes };
        // FxValidateObjectAttributes: a wrong Size is STATUS_INFO_LENGTH_MISMATCH
        // and a verifier break.
        assert_eq!(
            a.Size as usize,
            size_of::<WDF_OBJECT_ATTRIBUTES>(),
            "{function}: WDF_OBJECT_ATTRIBUTES.Size is {} (not initialised with \
             WDF_OBJECT_ATTRIBUTES_INIT?)",
            a.Size
        );
        assert!(
            a.ContextSizeOverride == 0,
            "{function}: ContextSizeOverride is not emulated"
        );
        if !a.ParentObject.is_null() {
            let _ = get(a.ParentObject, function);
        }
        Attributes {
            parent: a.ParentObject,
            context: a.ContextTypeInfo,
            cleanup: a.EvtCleanupCallback,
        }
    }
}

/// Creates an object and enters it in the table; `make` builds its state
/// knowing its handle-to-be is not needed (see [`create_cyclic`]).
pub(crate) fn create(kind: Kind, attributes: &Attributes) -> Arc<Object> {
    create_cyclic(attributes, |_| kind)
}

/// Creates a timer or work item: checks that its parent is a device or a
/// queue (KMDF's `WdfTimerCreate` / `WdfWorkItemCreate`: "ParentObject ...
/// must be a framework device object or a framework queue object";
/// `STATUS_INVALID_PARAMETER` and a verifier break otherwise), then builds
/// it around the simulator object `make` creates for its weak handle. If
/// `make` fails, the half-made object is deleted and the status returned.
pub(crate) fn create_backed_by_sim<T>(
    attributes: &Attributes,
    function: &str,
    make: impl FnOnce(&Weak<Object>) -> dmf_wdf::Result<T>,
    kind: impl FnOnce(Option<Arc<T>>) -> Kind,
) -> Result<Arc<Object>, wdk_sys::NTSTATUS> {
    assert!(
        !attributes.parent.is_null(),
        "{function}: needs a parent (device or queue)"
    );
    let parent = get_live(attributes.parent, function);
    assert!(
        matches!(parent.kind, Kind::Device(_) | Kind::Queue(_)),
        "{function}: the parent {parent:?} is not a device or a queue"
    );
    let mut failure = None;
    let object = create_cyclic(attributes, |weak| {
        kind(match make(weak) {
            Ok(backing) => Some(Arc::new(backing)),
            Err(status) => {
                failure = Some(status);
                None
            }
        })
    });
    match failure {
        Some(status) => {
            delete(object.handle(), function);
            Err(status.raw())
        }
        None => Ok(object),
    }
}

/// Creates an object whose state needs a weak reference to the object
/// itself (a timer's handler calls back with the timer's handle).
pub(crate) fn create_cyclic(
    attributes: &Attributes,
    make: impl FnOnce(&Weak<Object>) -> Kind,
) -> Arc<Object> {
    let context = if attributes.context.is_null() {
        None
    } else {
        // SAFETY: the driver's type info is a 'static
        // WDF_OBJECT_CONTEXT_TYPE_INFO (WDF_DECLARE_CONTEXT_TYPE).
        let info = unsafe { &*attributes.context };
        let words = info.ContextSize.div_ceil(16).max(1);
        Some(Context {
            type_info: info.UniqueType,
            memory: vec![0u128; words].into_boxed_slice(),
        })
    };
    let object = Arc::new_cyclic(|weak| Object {
        kind: make(weak),
        parent: attributes.parent as usize,
        children: Mutex::new(Vec::new()),
        context,
        cleanup: attributes.cleanup,
        deleted: AtomicBool::new(false),
    });
    let handle = Arc::as_ptr(&object) as usize;
    with_table(|t| {
        t.insert(
            handle,
            Slot {
                owner: Some(Arc::clone(&object)),
                weak: Arc::downgrade(&object),
            },
        )
    });
    if !attributes.parent.is_null() {
        let parent = get(attributes.parent, "object creation");
        assert!(
            !parent.is_deleted(),
            "WDF: creating a child of {parent:?}, which is being deleted"
        );
        lock(&parent.children).push(handle);
    }
    object
}

/// The object behind `handle`; panics on a handle that is not a live or
/// still-referenced object (the verifier's invalid-handle bug check).
#[track_caller]
pub(crate) fn get(handle: WDFOBJECT, function: &str) -> Arc<Object> {
    assert!(!handle.is_null(), "{function}: NULL handle");
    let found = with_table(|t| {
        t.get(&(handle as usize))
            .and_then(|s| s.owner.clone().or_else(|| s.weak.upgrade()))
    });
    found.unwrap_or_else(|| {
        panic!("{function}: {handle:p} is not a WDF object (never created, or deleted)")
    })
}

/// The object behind `handle`, which must not have been deleted: the owner
/// may not use a handle after `WdfObjectDelete`.
#[track_caller]
pub(crate) fn get_live(handle: WDFOBJECT, function: &str) -> Arc<Object> {
    let object = get(handle, function);
    assert!(
        !object.is_deleted(),
        "{function}: {object:?} was deleted (handle used after WdfObjectDelete)"
    );
    object
}

/// `WdfObjectGetTypedContextWorker`: the context of the given type, or null.
pub(crate) fn typed_context(
    handle: WDFOBJECT,
    type_info: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
) -> *mut c_void {
    let object = get(handle, "WdfObjectGetTypedContextWorker");
    assert!(
        !type_info.is_null(),
        "WdfObjectGetTypedContextWorker: NULL type info"
    );
    // SAFETY: the caller's type info is a 'static declaration.
    let unique = unsafe { (*type_info).UniqueType };
    match &object.context {
        Some(c) if c.type_info == unique || c.type_info == type_info => {
            c.memory.as_ptr().cast_mut().cast::<c_void>()
        }
        _ => std::ptr::null_mut(),
    }
}

/// `WdfObjectDelete` and deletion with the parent: children first, then the
/// kind's teardown, then `EvtCleanupCallback`; the owner's reference goes.
pub(crate) fn delete(handle: WDFOBJECT, function: &str) {
    let object = get(handle, function);
    assert!(
        !object.deleted.swap(true, Ordering::AcqRel),
        "{function}: {object:?} deleted twice"
    );
    let children = std::mem::take(&mut *lock(&object.children));
    let framework_owned = matches!(object.kind, Kind::Driver(_) | Kind::Device(_));
    for child in children.into_iter().rev() {
        let still_there = with_table(|t| t.get(&child).and_then(|s| s.owner.clone()));
        if let Some(child_object) = still_there {
            if framework_owned && driver_owned(&child_object.kind) {
                lock(&DELETED_WITH_PARENT).push(format!(
                    "{child_object:?} deleted with {object:?}: its owner (a layer on \
                     the platform) outlived it and would delete it again"
                ));
            }
            drop(child_object);
            delete(child as WDFOBJECT, "deletion with the parent");
        }
    }
    teardown(&object);
    if let Some(cleanup) = object.cleanup {
        // SAFETY: the driver's EvtCleanupCallback, called once with the
        // object's handle, which stays resolvable during the call.
        unsafe { cleanup(handle) };
    }
    let owner = with_table(|t| t.get_mut(&(handle as usize)).and_then(|s| s.owner.take()));
    if object.parent != 0 {
        if let Some(parent) = with_table(|t| t.get(&object.parent).and_then(|s| s.weak.upgrade())) {
            lock(&parent.children).retain(|&c| c != handle as usize);
        }
    }
    drop(owner);
}

/// The handles of an object's children not yet deleted.
pub(crate) fn children(object: &Arc<Object>) -> Vec<usize> {
    lock(&object.children).clone()
}

/// What deleting an object does before its cleanup callback (the kind's
/// `Dispose`).
fn teardown(object: &Arc<Object>) {
    match &object.kind {
        Kind::Timer(t) => t.dispose(),
        Kind::WorkItem(w) => w.dispose(),
        Kind::IoTarget(t) => t.dispose(),
        Kind::Request(r) => r.dispose(object),
        _ => {}
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        let me = self as *const Object as usize;
        with_table(|t| {
            if t.get(&me).is_some_and(|s| s.owner.is_none()) {
                t.remove(&me);
            }
        });
    }
}
