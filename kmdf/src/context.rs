//! How a Rust handler travels with a WDF object: one typed object context.
//!
//! Timers, work items and I/O targets call back with nothing but their handle.
//! Each of them is created with [`attributes_with_payload`], which attaches an
//! [`ObjectContext`] (the equivalent of `WDF_DECLARE_CONTEXT_TYPE` +
//! `WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE`) and an `EvtCleanupCallback` that
//! releases whatever the context holds. The payload is an `Arc<T>` turned into
//! a raw pointer together with the monomorphized function that turns it back.

use alloc::sync::Arc;
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use wdk_sys::{
    call_unsafe_wdf_function_binding, _WDF_EXECUTION_LEVEL, _WDF_SYNCHRONIZATION_SCOPE, ULONG,
    WDFOBJECT, WDF_OBJECT_ATTRIBUTES, WDF_OBJECT_CONTEXT_TYPE_INFO,
};

/// The `Size` member of a WDF structure (`sizeof(T)` as a `ULONG`), checked
/// at compile time to fit, as the Rust WDK samples do.
pub(crate) const fn wdf_size<T>() -> ULONG {
    const {
        assert!(size_of::<T>() <= ULONG::MAX as usize);
    }
    size_of::<T>() as ULONG
}

/// `WDF_OBJECT_ATTRIBUTES_INIT(&attributes); attributes.ParentObject = parent;`
///
/// `WDF_OBJECT_ATTRIBUTES_INIT` zeroes the structure, sets `Size`, and both
/// `ExecutionLevel` and `SynchronizationScope` to "inherit from parent".
pub(crate) fn object_attributes(parent: WDFOBJECT) -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: wdf_size::<WDF_OBJECT_ATTRIBUTES>(),
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ParentObject: parent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

/// [`object_attributes`] plus `WDF_OBJECT_ATTRIBUTES_SET_CONTEXT_TYPE(&a, ObjectContext)`
/// and `a.EvtCleanupCallback = evt_cleanup_release_payload`.
pub(crate) fn attributes_with_payload(parent: WDFOBJECT) -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        ContextTypeInfo: OBJECT_CONTEXT_TYPE_INFO.0.UniqueType,
        EvtCleanupCallback: Some(evt_cleanup_release_payload),
        ..object_attributes(parent)
    }
}

/// The context of every object created with [`attributes_with_payload`].
///
/// WDF zero-fills context memory: no payload, no release function, flag clear.
///
/// # Invariants
///
/// `payload` is null exactly when `release` is `None`; otherwise `payload`
/// came from `Arc::<T>::into_raw` and `release` is `release_arc::<T>` for the
/// same `T`, and the context owns that strong reference.
#[repr(C)]
pub(crate) struct ObjectContext {
    payload: *const c_void,
    release: Option<unsafe fn(*const c_void)>,
    owner_deleting: AtomicBool,
}

/// `WDF_OBJECT_CONTEXT_TYPE_INFO` is plain data with pointers to statics.
#[repr(transparent)]
pub(crate) struct ContextTypeInfo(pub(crate) WDF_OBJECT_CONTEXT_TYPE_INFO);

// SAFETY: the type info is immutable after initialisation and only points to
// itself and to a string literal, both 'static; sharing it is what WDF does
// with the C `_WDF_..._TYPE_INFO` globals.
unsafe impl Sync for ContextTypeInfo {}

/// `declare_context_type!(STATIC, Type, c"Name")`: what
/// `WDF_DECLARE_CONTEXT_TYPE(Type)` declares, a type info whose `UniqueType`
/// points to itself. Placed in `.data` like the C macro does
/// (`WDF_TYPE_DEFAULT_SECTION_NAME`) and like the Rust echo sample.
macro_rules! declare_context_type {
    ($name:ident, $ty:ty, $label:expr) => {
        #[link_section = ".data"]
        static $name: $crate::context::ContextTypeInfo =
            $crate::context::ContextTypeInfo(wdk_sys::WDF_OBJECT_CONTEXT_TYPE_INFO {
                Size: $crate::context::wdf_size::<wdk_sys::WDF_OBJECT_CONTEXT_TYPE_INFO>(),
                ContextName: $label.as_ptr().cast(),
                ContextSize: core::mem::size_of::<$ty>(),
                UniqueType: core::ptr::addr_of!($name.0),
                EvtDriverGetUniqueContextType: None,
            });
    };
}
pub(crate) use declare_context_type;

declare_context_type!(
    OBJECT_CONTEXT_TYPE_INFO,
    ObjectContext,
    c"DmfKmdfObjectContext"
);

/// The object's [`ObjectContext`] (`WdfObjectGetTypedContext`), null if the
/// object has none.
///
/// # Safety
///
/// `object` must be a live WDF handle (not yet freed: a deleted object whose
/// memory the framework still references, e.g. inside one of its callbacks,
/// is fine).
unsafe fn context(object: WDFOBJECT) -> *mut ObjectContext {
    // SAFETY: `object` is a live handle (caller contract) and the type info is
    // the 'static one the object was created with.
    let raw = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            object,
            OBJECT_CONTEXT_TYPE_INFO.0.UniqueType
        )
    };
    raw.cast::<ObjectContext>()
}

/// The payload fields of a context.
type PayloadSlots = (*mut *const c_void, *mut Option<unsafe fn(*const c_void)>);

/// Raw pointers to the payload fields of a context.
///
/// # Safety
///
/// `ctx` must be non-null and point to the context of a live object.
unsafe fn payload_slots(ctx: *mut ObjectContext) -> PayloadSlots {
    // SAFETY: `ctx` is valid (caller contract); taking a field address reads
    // nothing.
    let payload = unsafe { ptr::addr_of_mut!((*ctx).payload) };
    // SAFETY: as above.
    let release = unsafe { ptr::addr_of_mut!((*ctx).release) };
    (payload, release)
}

/// Drops the `Arc<T>` a payload pointer stands for.
///
/// # Safety
///
/// `payload` must come from `Arc::<T>::into_raw` and own one strong reference.
unsafe fn release_arc<T>(payload: *const c_void) {
    // SAFETY: caller contract.
    drop(unsafe { Arc::from_raw(payload.cast::<T>()) });
}

/// Stores `value` as the object's payload, releasing the previous one.
///
/// # Safety
///
/// `object` must be live and created with [`attributes_with_payload`], and no
/// callback that reads the payload may run concurrently (the object's
/// callbacks are not armed yet, or provably finished).
pub(crate) unsafe fn set_payload<T: Send + Sync + 'static>(object: WDFOBJECT, value: Arc<T>) {
    // SAFETY: caller contract.
    let ctx = unsafe { context(object) };
    if ctx.is_null() {
        // Not created with our context: nothing can read the payload, so
        // keeping it would only leak it.
        debug_assert!(false, "WDF object without the dmf-kmdf context");
        return;
    }
    let new_payload = Arc::into_raw(value).cast::<c_void>();
    // SAFETY: ctx is the non-null context of a live object.
    let (payload_slot, release_slot) = unsafe { payload_slots(ctx) };
    // SAFETY: valid field; nothing else accesses the payload now (caller
    // contract).
    let old_payload = unsafe { payload_slot.replace(new_payload) };
    // SAFETY: as above.
    let old_release = unsafe { release_slot.replace(Some(release_arc::<T>)) };
    // INVARIANT: the pair now describes the new Arc; the old pair is released.
    if let Some(release) = old_release {
        // SAFETY: by the invariant the old pair matched and owned a reference.
        unsafe { release(old_payload) };
    }
}

/// A new strong reference to the object's payload, if one is set.
///
/// # Safety
///
/// `object` must be live, and if a payload is set it must be an `Arc<T>`
/// (the callbacks reading it are monomorphized for the same `T` that
/// [`set_payload`] stored).
pub(crate) unsafe fn payload<T>(object: WDFOBJECT) -> Option<Arc<T>> {
    // SAFETY: caller contract.
    let ctx = unsafe { context(object) };
    if ctx.is_null() {
        return None;
    }
    // SAFETY: ctx is the non-null context of a live object.
    let (payload_slot, _) = unsafe { payload_slots(ctx) };
    // SAFETY: valid field; written only while no callback runs.
    let raw = unsafe { payload_slot.read() }.cast::<T>();
    if raw.is_null() {
        return None;
    }
    // SAFETY: raw came from Arc::<T>::into_raw and the context still owns its
    // reference, so the allocation is alive; take one more for the caller.
    unsafe { Arc::increment_strong_count(raw) };
    // SAFETY: the strong count was just incremented for this Arc.
    Some(unsafe { Arc::from_raw(raw) })
}

/// Records that the Rust owner is deleting the object, so that a trampoline
/// still running on the object does not call methods on it afterwards.
///
/// # Safety
///
/// `object` must be live.
pub(crate) unsafe fn mark_owner_deleting(object: WDFOBJECT) {
    // SAFETY: caller contract.
    let ctx = unsafe { context(object) };
    if !ctx.is_null() {
        // SAFETY: ctx is the context of a live object; the flag is atomic.
        unsafe { &(*ctx).owner_deleting }.store(true, Ordering::Release);
    }
}

/// Whether [`mark_owner_deleting`] was called for the object.
///
/// # Safety
///
/// `object` must be live (possibly deleted but still referenced).
pub(crate) unsafe fn owner_deleting(object: WDFOBJECT) -> bool {
    // SAFETY: caller contract.
    let ctx = unsafe { context(object) };
    // SAFETY: ctx, when non-null, is the context of a live object.
    !ctx.is_null() && unsafe { &(*ctx).owner_deleting }.load(Ordering::Acquire)
}

/// `EvtCleanupCallback` of every object with an [`ObjectContext`]: releases
/// the payload. Runs once, when the object is deleted (by its owner or with
/// its parent), after which WDF calls none of the object's callbacks.
unsafe extern "C" fn evt_cleanup_release_payload(object: WDFOBJECT) {
    // SAFETY: WDF passes the object being cleaned up; its context is valid
    // until its destroy callback.
    let ctx = unsafe { context(object) };
    if ctx.is_null() {
        return;
    }
    // SAFETY: ctx is the non-null context of the object being cleaned up.
    let (payload_slot, release_slot) = unsafe { payload_slots(ctx) };
    // SAFETY: no callback of the object runs any more, so this is the only
    // access to the payload.
    let payload = unsafe { payload_slot.replace(ptr::null()) };
    // SAFETY: as above.
    let release = unsafe { release_slot.replace(None) };
    if let Some(release) = release {
        // SAFETY: by the invariant the pair matched and owned a reference.
        unsafe { release(payload) };
    }
}

/// `WdfObjectDelete(object)`.
///
/// # Safety
///
/// `object` must be a live handle owned by the caller, deleted only once.
pub(crate) unsafe fn delete_object(object: WDFOBJECT) {
    // SAFETY: caller contract.
    unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, object) };
}
