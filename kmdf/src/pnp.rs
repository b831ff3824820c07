//! Device-interface notifications: `IoRegisterPlugPlayNotification`.

use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr;

use dmf_wdf::{Guid, InterfaceNotificationHandler, Notification, Result, Status};
use wdk_sys::ntddk::{IoRegisterPlugPlayNotification, IoUnregisterPlugPlayNotificationEx};
use wdk_sys::{
    call_unsafe_wdf_function_binding, _IO_NOTIFICATION_EVENT_CATEGORY,
    DEVICE_INTERFACE_CHANGE_NOTIFICATION, NTSTATUS,
    PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES, PVOID, WDFDEVICE,
};

use crate::convert::wdk::{guid_from_wdk, guid_to_wdk, nt_result};
use crate::convert::{deliver_interface_change, utf16_to_string};

/// A registration of an [`InterfaceNotificationHandler`] for one interface
/// class: `IoRegisterPlugPlayNotification(EventCategoryDeviceInterfaceChange,
/// PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES, &class, driver
/// object, callback::<H>, Arc::into_raw(handler), &entry)`.
///
/// The PnP manager calls back at `PASSIVE_LEVEL`, one notification at a time
/// per registration; interfaces present at registration arrive first (possibly
/// before `register` returns). The symbolic link is passed to the handler as
/// UTF-8 (see [`utf16_to_string`]).
///
/// Dropping it (or [`Notification::unregister`]) calls
/// `IoUnregisterPlugPlayNotificationEx`, which returns only when no callback
/// runs and none will start, then releases the handler. Never drop it from
/// the handler itself.
///
/// # Invariants
///
/// `entry` is a live registration whose context is `context`, an
/// `Arc::into_raw` that `release` turns back into the `Arc` it came from.
pub struct KmdfNotification {
    entry: PVOID,
    context: *const c_void,
    release: unsafe fn(*const c_void),
}

// SAFETY: the registration handle may be unregistered from any thread, and
// the handler it owns is Send + Sync (InterfaceNotificationHandler bound).
unsafe impl Send for KmdfNotification {}
// SAFETY: `&KmdfNotification` exposes nothing.
unsafe impl Sync for KmdfNotification {}

impl KmdfNotification {
    /// Registers `handler` for arrivals and removals of interfaces of class
    /// `guid`, on behalf of the driver that owns `device`.
    pub(crate) fn register<H: InterfaceNotificationHandler>(
        device: WDFDEVICE,
        guid: &Guid,
        handler: Arc<H>,
    ) -> Result<Self> {
        // SAFETY: live device (platform contract).
        let driver = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceGetDriver, device) };
        // SAFETY: the device's live driver.
        let driver_object =
            unsafe { call_unsafe_wdf_function_binding!(WdfDriverWdmGetDriverObject, driver) };
        // The PnP manager copies the class GUID into the registration.
        let mut class = guid_to_wdk(guid);
        let context = Arc::into_raw(handler).cast::<c_void>();
        let mut entry: PVOID = ptr::null_mut();
        // SAFETY: valid class GUID and driver object; the callback is
        // monomorphized for H and `context` is an Arc<H> kept alive until
        // after IoUnregisterPlugPlayNotificationEx; PASSIVE_LEVEL.
        let nt = unsafe {
            IoRegisterPlugPlayNotification(
                _IO_NOTIFICATION_EVENT_CATEGORY::EventCategoryDeviceInterfaceChange,
                PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES,
                ptr::addr_of_mut!(class).cast::<c_void>(),
                driver_object,
                Some(interface_change::<H>),
                context.cast_mut(),
                &mut entry,
            )
        };
        if let Err(e) = nt_result(nt) {
            // SAFETY: registration failed, so nothing else holds `context`.
            unsafe { release_arc::<H>(context) };
            return Err(e);
        }
        // INVARIANT: registered above with this context.
        Ok(KmdfNotification {
            entry,
            context,
            release: release_arc::<H>,
        })
    }
}

impl Notification for KmdfNotification {
    fn unregister(self) {
        drop(self);
    }
}

impl Drop for KmdfNotification {
    fn drop(&mut self) {
        // SAFETY: live registration (invariant), unregistered once, at
        // PASSIVE_LEVEL and not from its own callback.
        let _status: NTSTATUS = unsafe { IoUnregisterPlugPlayNotificationEx(self.entry) };
        // SAFETY: no callback runs any more, so the context's reference is
        // ours to release (invariant).
        unsafe { (self.release)(self.context) };
    }
}

/// Drops the `Arc<H>` behind a registration context.
///
/// # Safety
///
/// `context` must come from `Arc::<H>::into_raw` and own one reference.
unsafe fn release_arc<H>(context: *const c_void) {
    // SAFETY: caller contract.
    drop(unsafe { Arc::from_raw(context.cast::<H>()) });
}

/// The `DRIVER_NOTIFICATION_CALLBACK_ROUTINE` for handler type `H`.
unsafe extern "C" fn interface_change<H: InterfaceNotificationHandler>(
    notification: PVOID,
    context: PVOID,
) -> NTSTATUS {
    if notification.is_null() || context.is_null() {
        return Status::SUCCESS.raw();
    }
    // SAFETY: `context` is the Arc<H> registered in `register`, alive until
    // the registration is removed, which waits for this callback.
    let handler = unsafe { &*context.cast_const().cast::<H>() };
    // SAFETY: for EventCategoryDeviceInterfaceChange the PnP manager passes a
    // DEVICE_INTERFACE_CHANGE_NOTIFICATION valid for the call.
    let notification = unsafe {
        &*notification
            .cast_const()
            .cast::<DEVICE_INTERFACE_CHANGE_NOTIFICATION>()
    };
    let event = guid_from_wdk(&notification.Event);
    let link = notification.SymbolicLinkName;
    if link.is_null() {
        return Status::SUCCESS.raw();
    }
    // SAFETY: a valid UNICODE_STRING for the duration of the call.
    let link = unsafe { &*link };
    let units: &[u16] = if link.Buffer.is_null() || link.Length == 0 {
        &[]
    } else {
        // SAFETY: Buffer holds Length bytes of UTF-16 for the call.
        unsafe { core::slice::from_raw_parts(link.Buffer, usize::from(link.Length) / 2) }
    };
    // Always STATUS_SUCCESS to PnP; without memory for the name nothing is
    // delivered (see `deliver_interface_change`).
    deliver_interface_change(handler, &event, utf16_to_string(units)).raw()
}
