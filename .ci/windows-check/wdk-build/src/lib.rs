//! # wdk-build (stand-in)
//!
//! The two entry points of [`wdk-build`](https://crates.io/crates/wdk-build)
//! 0.6 that the project's build scripts name. In the Windows-target check the
//! build scripts run on the Linux host and never call them (their WDK branch
//! is compiled only on a Windows host); should one be called, it fails
//! loudly rather than pretending to have configured a WDK build.

use std::fmt;

/// The error of a WDK build configuration.
#[derive(Debug)]
pub struct ConfigError(&'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ConfigError {}

const NOT_HERE: &str = "wdk-build stand-in: a WDK build cannot be configured on this host \
                        (the Windows-target check only type-checks; build drivers on Windows \
                        with the real wdk-build)";

/// `wdk_build::configure_wdk_binary_build`: always an error here.
///
/// # Errors
///
/// Always: there is no WDK on this host.
pub fn configure_wdk_binary_build() -> Result<(), ConfigError> {
    Err(ConfigError(NOT_HERE))
}

/// `wdk_build::configure_wdk_library_build`: always an error here.
///
/// # Errors
///
/// Always: there is no WDK on this host.
pub fn configure_wdk_library_build() -> Result<(), ConfigError> {
    Err(ConfigError(NOT_HERE))
}
