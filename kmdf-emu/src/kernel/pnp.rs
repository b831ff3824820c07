//! Device-interface notifications: `IoRegisterPlugPlayNotification`,
//! `IoUnregisterPlugPlayNotificationEx`.

use std::ffi::c_void;
use std::sync::Arc;

use dmf_wdf::{Guid, InterfaceNotificationHandler, Platform};
use wdk_sys::*;

use crate::machine::current;
use crate::object::lock;

use super::irql::assert_passive;
use super::STATUS_SUCCESS;

/// A PnP notification registration: the driver's callback and context.
struct PnpCallback {
    callback: unsafe extern "C" fn(PVOID, PVOID) -> NTSTATUS,
    context: usize,
    class: GUID,
}

// SAFETY: the context is the driver's, valid until unregistration; the
// callback is a plain function.
unsafe impl Send for PnpCallback {}
// SAFETY: as above.
unsafe impl Sync for PnpCallback {}

/// `GUID_DEVICE_INTERFACE_ARRIVAL`.
const ARRIVAL: Guid = Guid::from_u128(0xCB3A4004_46F0_11D0_B08F_00609713053F);
/// `GUID_DEVICE_INTERFACE_REMOVAL`.
const REMOVAL: Guid = Guid::from_u128(0xCB3A4005_46F0_11D0_B08F_00609713053F);

impl PnpCallback {
    fn deliver(&self, event: Guid, link: &str) {
        let mut units: Vec<u16> = link.encode_utf16().collect();
        let bytes = u16::try_from(units.len() * 2).expect("symbolic link fits a UNICODE_STRING");
        let mut name = UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: units.as_mut_ptr(),
        };
        let mut notification = DEVICE_INTERFACE_CHANGE_NOTIFICATION {
            Version: 1,
            Size: size_of::<DEVICE_INTERFACE_CHANGE_NOTIFICATION>() as u16,
            Event: guid_to_wdk(&event),
            InterfaceClassGuid: self.class,
            SymbolicLinkName: &mut name,
        };
        // SAFETY: the driver's callback with its context; the notification
        // and the name it points to live for the call. PnP callbacks run at
        // PASSIVE_LEVEL on the simulator's PnP thread.
        let status = unsafe {
            (self.callback)(
                std::ptr::addr_of_mut!(notification).cast::<c_void>(),
                self.context as PVOID,
            )
        };
        // An interface-change callback returns STATUS_SUCCESS (PnP ignores
        // anything else, and the documentation requires success).
        assert_eq!(
            status, STATUS_SUCCESS,
            "an interface-change notification callback returned 0x{status:08X}"
        );
    }
}

impl InterfaceNotificationHandler for PnpCallback {
    fn interface_arrived(&self, symbolic_link: &str) {
        self.deliver(ARRIVAL, symbolic_link);
    }

    fn interface_removed(&self, symbolic_link: &str) {
        self.deliver(REMOVAL, symbolic_link);
    }
}

fn guid_to_wdk(g: &Guid) -> GUID {
    GUID {
        Data1: g.data1,
        Data2: g.data2,
        Data3: g.data3,
        Data4: g.data4,
    }
}

/// `IoRegisterPlugPlayNotification` for `EventCategoryDeviceInterfaceChange`
/// with `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES` (the only
/// form emulated): the simulator's interface notifications, existing
/// interfaces first, on its PnP thread.
///
/// # Safety
///
/// `data` must point to the interface class `GUID`; `context` must stay
/// valid until `IoUnregisterPlugPlayNotificationEx`.
#[no_mangle]
pub unsafe extern "C" fn IoRegisterPlugPlayNotification(
    category: IO_NOTIFICATION_EVENT_CATEGORY,
    flags: ULONG,
    data: PVOID,
    driver_object: PDRIVER_OBJECT,
    callback: PDRIVER_NOTIFICATION_CALLBACK_ROUTINE,
    context: PVOID,
    entry: *mut PVOID,
) -> NTSTATUS {
    assert_passive("IoRegisterPlugPlayNotification");
    assert!(
        category == _IO_NOTIFICATION_EVENT_CATEGORY::EventCategoryDeviceInterfaceChange,
        "IoRegisterPlugPlayNotification: only device-interface notifications are emulated"
    );
    assert!(
        flags == PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES,
        "IoRegisterPlugPlayNotification: only INCLUDE_EXISTING_INTERFACES is emulated"
    );
    assert!(
        !driver_object.is_null(),
        "IoRegisterPlugPlayNotification: NULL driver object"
    );
    assert!(
        !data.is_null() && !entry.is_null(),
        "IoRegisterPlugPlayNotification: NULL argument"
    );
    let callback = callback.expect("IoRegisterPlugPlayNotification: NULL callback");
    // SAFETY: caller contract.
    let class = unsafe { data.cast::<GUID>().read() };
    let handler = Arc::new(PnpCallback {
        callback,
        context: context as usize,
        class,
    });
    let guid = Guid {
        data1: class.Data1,
        data2: class.Data2,
        data3: class.Data3,
        data4: class.Data4,
    };
    let machine = current();
    match machine.sim.register_interface_notification(&guid, handler) {
        Ok(notification) => {
            *lock(&machine.registrations) += 1;
            // SAFETY: caller contract (writable out-parameter).
            unsafe { entry.write(Box::into_raw(Box::new(notification)).cast::<c_void>()) };
            STATUS_SUCCESS
        }
        Err(status) => status.raw(),
    }
}

/// `IoUnregisterPlugPlayNotificationEx`: when it returns, no callback of the
/// registration runs or will run.
///
/// # Safety
///
/// `entry` must come from `IoRegisterPlugPlayNotification`, unregistered once.
#[no_mangle]
pub unsafe extern "C" fn IoUnregisterPlugPlayNotificationEx(entry: PVOID) -> NTSTATUS {
    assert!(
        !entry.is_null(),
        "IoUnregisterPlugPlayNotificationEx: NULL entry"
    );
    // SAFETY: the Box made by IoRegisterPlugPlayNotification (caller contract).
    let notification = unsafe { Box::from_raw(entry.cast::<dmf_sim::SimNotification>()) };
    drop(notification);
    let machine = current();
    *lock(&machine.registrations) -= 1;
    STATUS_SUCCESS
}
