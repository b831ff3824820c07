//! The configuration (`DMF_CONFIG_DeviceInterfaceMultipleTarget`).

use dmf_continuous_request_target::ContinuousRequestTargetConfig;
use dmf_wdf::{Guid, OpenMode, ShareAccess};

/// When the module registers for interface arrival/removal notifications
/// (`DeviceInterfaceMultipleTarget_PnpRegisterWhen_Type`). Registration
/// includes the interfaces already present, so `Open` callbacks can come
/// right after it.
///
/// The discriminants are DMF's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PnpRegisterWhen {
    /// Registered in `EvtDevicePrepareHardware`, unregistered (closing every
    /// target) in `EvtDeviceReleaseHardware`. Targets survive power
    /// transitions. DMF's default.
    #[default]
    PrepareHardware = 0,
    /// Registered in every `EvtDeviceD0Entry`, unregistered in every
    /// `EvtDeviceD0Exit`: each power-down closes every target (`Close`
    /// callbacks), each power-up re-opens every present interface (`Open`).
    D0Entry = 1,
    /// Registered when the module is created
    /// ([`DeviceInterfaceMultipleTarget::new`](crate::DeviceInterfaceMultipleTarget::new)),
    /// unregistered when it is dropped. Meant for modules created on the fly.
    Create = 2,
}

/// `DMF_CONFIG_DeviceInterfaceMultipleTarget`.
///
/// | DMF field | here |
/// |---|---|
/// | `ModuleOpenOption` | [`module_open_option`](Self::module_open_option) |
/// | `DeviceInterfaceMultipleTargetGuid` | [`device_interface_multiple_target_guid`](Self::device_interface_multiple_target_guid) |
/// | `OpenMode` | [`open_mode`](Self::open_mode) (honoured, unlike DMF) |
/// | `ShareAccess` | [`share_access`](Self::share_access) (honoured, unlike DMF) |
/// | `ContinuousRequestTargetModuleConfig` | [`continuous_request_target_module_config`](Self::continuous_request_target_module_config) |
/// | `EvtDeviceInterfaceMultipleTargetOnStateChange` (and `…Ex`) | [`DimtClient::on_state_change`](crate::DimtClient::on_state_change) |
/// | `EvtDeviceInterfaceMultipleTargetOnPnpNotification` | [`DimtClient::on_pnp_notification`](crate::DimtClient::on_pnp_notification) |
/// | CRT `EvtContinuousRequestTargetBufferInput` / `…BufferOutput` | [`DimtClient::buffer_input`](crate::DimtClient::buffer_input) / [`DimtClient::buffer_output`](crate::DimtClient::buffer_output) |
///
/// `Default`: open option `PrepareHardware`, the null GUID, read/write open
/// shared read/write (what DMF always used), and a non-streaming CRT config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceInterfaceMultipleTargetConfig {
    /// When interface notifications are registered.
    pub module_open_option: PnpRegisterWhen,
    /// The device interface class to follow.
    pub device_interface_multiple_target_guid: Guid,
    /// Desired access used to open every target.
    pub open_mode: OpenMode,
    /// Share access used to open every target.
    pub share_access: ShareAccess,
    /// Configuration of each target's transport. With
    /// `continuous_request_count > 0` every target streams (a
    /// [`ContinuousRequestTarget`](dmf_continuous_request_target::ContinuousRequestTarget)
    /// per target); with 0 it is a plain request sender.
    ///
    /// [`continuous_request_target_mode`](ContinuousRequestTargetConfig::continuous_request_target_mode)
    /// `Automatic` makes this module start streaming after the `Open`
    /// callback (and after `QueryRemoveCancelled` if it ran before) and stop
    /// it before a target closes, as DMF's parent modules do; the per-target
    /// CRTs themselves run in manual mode.
    pub continuous_request_target_module_config: ContinuousRequestTargetConfig,
}

impl Default for DeviceInterfaceMultipleTargetConfig {
    fn default() -> Self {
        DeviceInterfaceMultipleTargetConfig {
            module_open_option: PnpRegisterWhen::PrepareHardware,
            device_interface_multiple_target_guid: Guid::NULL,
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
            continuous_request_target_module_config: ContinuousRequestTargetConfig::default(),
        }
    }
}

impl DeviceInterfaceMultipleTargetConfig {
    /// A default configuration following `guid`.
    pub fn new(guid: Guid) -> Self {
        DeviceInterfaceMultipleTargetConfig {
            device_interface_multiple_target_guid: guid,
            ..Self::default()
        }
    }

    /// Whether targets stream (`continuous_request_count > 0`).
    pub fn is_streaming(&self) -> bool {
        self.continuous_request_target_module_config
            .continuous_request_count
            > 0
    }
}
