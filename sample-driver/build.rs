//! Build script of `sample-driver`.
//!
//! Building for Windows MSVC on a Windows MSVC host, it runs
//! `wdk_build::configure_wdk_binary_build()`: reads
//! `[package.metadata.wdk.driver-model]` (KMDF 1.33), finds the WDK and emits
//! the driver's `cfg`s and cdylib linker arguments (`/DRIVER`,
//! `/SUBSYSTEM:NATIVE`, `/ENTRY:FxDriverEntry`, ...). Everywhere else it does
//! nothing: the crate is then the host build of the same logic.

#[cfg(all(windows, target_env = "msvc"))]
fn main() -> Result<(), wdk_build::ConfigError> {
    println!("cargo::rerun-if-changed=build.rs");
    // `cfg` above is the host; the target decides whether this is a driver build.
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "windows" && target_env == "msvc" {
        wdk_build::configure_wdk_binary_build()
    } else {
        Ok(())
    }
}

#[cfg(not(all(windows, target_env = "msvc")))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
