//! Device-interface arrival and removal notifications
//! (`IoRegisterPlugPlayNotification` with `EventCategoryDeviceInterfaceChange`
//! and `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES`).

/// Receives arrival and removal of device interface instances of one class.
///
/// Called at passive level on a PnP thread, one notification at a time per
/// registration; handlers may block.
pub trait InterfaceNotificationHandler: Send + Sync + 'static {
    /// An interface instance was enabled (or existed at registration).
    fn interface_arrived(&self, symbolic_link: &str);
    /// An interface instance was disabled or its device removed.
    fn interface_removed(&self, symbolic_link: &str);
}

/// A registration for interface notifications. Dropping it unregisters.
pub trait Notification: Send + Sync + Sized + 'static {
    /// Unregisters (`IoUnregisterPlugPlayNotificationEx`): when this returns,
    /// no handler call is running and none will start.
    fn unregister(self);
}
