//! Build script of `dmf-kmdf`.
//!
//! On a Windows MSVC host building for a Windows MSVC target it runs
//! `wdk_build::configure_wdk_library_build()`, as the WDK's own library crates
//! (`wdk`, `wdk-alloc`) do: it reads the `[package.metadata.wdk.driver-model]`
//! of the driver in the build graph (the sample driver's KMDF 1.33) and emits
//! the matching `cfg`s and `check-cfg`s. A graph without WDK metadata only
//! warns. Everywhere else it does nothing.

#[cfg(all(windows, target_env = "msvc"))]
fn main() -> Result<(), wdk_build::ConfigError> {
    println!("cargo::rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "windows" && target_env == "msvc" {
        wdk_build::configure_wdk_library_build()
    } else {
        Ok(())
    }
}

#[cfg(not(all(windows, target_env = "msvc")))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
