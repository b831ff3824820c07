//! The driver's identity for xtask's defaults: read from the driver crate's
//! `.inx` (`[Strings]` `ServiceName`, `HardwareId`, `InterfaceGuid`) and
//! `[package.metadata.wdk.driver-model]` by `dmf-driver-identity`, the same
//! reader the driver's build script uses. Nothing about the driver is
//! hard-coded in xtask.
//!
//! | default | comes from |
//! |---|---|
//! | `package --kmdf-version` (`stampinf -k`, `$KMDFVERSION$`) | `kmdf-version-major`.`target-kmdf-version-minor` |
//! | `deploy --hardware-id` (when `xtask.toml` has none) | `[Strings]` `HardwareId` |
//!
//! An inconsistent identity (e.g. an INX that allows a Windows build older
//! than the KMDF version needs) stops `package` and `deploy` with the
//! reader's message, which names the file and the fix.

use dmf_driver_identity::{Identity, IdentityError};

use crate::cli::{BuildArgs, Command, DeployArgs, TargetArgs, UndeployArgs, VmArgs};
use crate::workspace::{DriverCrate, Layout, WorkspaceError};

/// Why the identity could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityLoadError {
    /// The driver crate was not found.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The identity is missing or inconsistent.
    #[error("driver identity: {0}")]
    Identity(#[from] IdentityError),
    /// `xtask.toml` could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Loads the identity of the driver crate `target` names.
pub fn load(layout: &Layout, target: &TargetArgs) -> Result<Identity, IdentityLoadError> {
    let krate = DriverCrate::load(layout, &target.driver_package)?;
    Ok(Identity::load(&krate.dir, &krate.lib_name)?)
}

/// Fills `--kmdf-version` from the identity when not given.
fn fill_build(build: &mut BuildArgs, identity: &Identity) {
    if build.kmdf_version.is_empty() {
        build.kmdf_version = identity.kmdf_version();
    }
}

/// Fills the VM's hardware ID from the identity unless a flag or
/// `xtask.toml` sets it.
fn fill_hardware_id(
    layout: &Layout,
    vm: &mut VmArgs,
    identity: &Identity,
) -> Result<(), IdentityLoadError> {
    if vm.hardware_id.is_none() {
        let (cfg, _) = crate::config::load(vm.config.as_deref(), &layout.root.join("xtask.toml"))?;
        if cfg.deploy.hardware_id.is_none() {
            vm.hardware_id = Some(identity.hardware_id.clone());
        }
    }
    Ok(())
}

/// `command` with the defaults that come from the driver's identity filled
/// in (flags and `xtask.toml` still win). Commands that do not package or
/// deploy are returned unchanged.
pub fn with_defaults(layout: &Layout, command: &Command) -> Result<Command, IdentityLoadError> {
    Ok(match command {
        Command::Package(a) => {
            let identity = load(layout, &a.target)?;
            let mut a = a.clone();
            fill_build(&mut a.build, &identity);
            Command::Package(a)
        }
        Command::Deploy(a) => {
            let mut a: Box<DeployArgs> = a.clone();
            if !a.no_package || a.vm.hardware_id.is_none() {
                let identity = load(layout, &a.target)?;
                fill_build(&mut a.build, &identity);
                fill_hardware_id(layout, &mut a.vm, &identity)?;
            }
            Command::Deploy(a)
        }
        Command::Undeploy(a) => {
            let mut a: Box<UndeployArgs> = a.clone();
            if a.vm.hardware_id.is_none() {
                let identity = load(layout, &a.target)?;
                fill_hardware_id(layout, &mut a.vm, &identity)?;
            }
            Command::Undeploy(a)
        }
        other => other.clone(),
    })
}
