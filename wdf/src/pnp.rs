//! Device-interface arrival and removal notifications
//! (`IoRegisterPlugPlayNotification` with `EventCategoryDeviceInterfaceChange`
//! and `PNPNOTIFY_DEVICE_INTERFACE_INCLUDE_EXISTING_INTERFACES`).

/// Receives arrival and removal of device interface instances of one class.
///
/// Called at passive level, one notification at a time per registration;
/// handlers may block. Arrivals of interfaces present at registration may be
/// reported on the registering thread before registration returns; later ones
/// come from a PnP thread. An arrival may be reported again for an interface
/// already reported (treat it as a no-op).
pub trait InterfaceNotificationHandler: Send + Sync + 'static {
    /// An interface instance was enabled (or existed at registration).
    fn interface_arrived(&self, symbolic_link: &str);
    /// An interface instance was disabled or its device removed.
    fn interface_removed(&self, symbolic_link: &str);
}

/// A registration for interface notifications. Dropping it unregisters.
///
/// A safe trait: handlers are shared through `Arc`, so a handler call that
/// ran late would find them alive; no `unsafe` code depends on when
/// notifications stop.
pub trait Notification: Send + Sync + Sized + 'static {
    /// Unregisters (`IoUnregisterPlugPlayNotificationEx`): when this returns,
    /// no handler call is running and none will start.
    fn unregister(self);
}
