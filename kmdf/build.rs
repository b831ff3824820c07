//! Build script of `dmf-kmdf`.
//!
//! On a Windows MSVC host building for a Windows MSVC target it runs
//! `wdk_build::configure_wdk_library_build()`, as the WDK's own library crates
//! (`wdk`, `wdk-alloc`) do: it reads the `[package.metadata.wdk.driver-model]`
//! of the driver in the build graph (the sample driver's KMDF 1.33) and emits
//! the matching `cfg`s and `check-cfg`s. A graph without WDK metadata only
//! warns.
//!
//! On every host it emits `cfg(kmdf)`, which selects the kernel code (the
//! seam on WDF, the driver shell), when building for a Windows MSVC target
//! or with the `emulation` feature (the host build over dmf-kmdf-emu).

/// Emits `cfg(kmdf)` when the kernel code is compiled (see the module docs).
fn kernel_code_cfg() {
    println!("cargo::rustc-check-cfg=cfg(kmdf)");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let windows_msvc = target_os == "windows" && target_env == "msvc";
    if windows_msvc || std::env::var_os("CARGO_FEATURE_EMULATION").is_some() {
        println!("cargo::rustc-cfg=kmdf");
    }
}

#[cfg(all(windows, target_env = "msvc"))]
fn main() -> Result<(), wdk_build::ConfigError> {
    println!("cargo::rerun-if-changed=build.rs");
    kernel_code_cfg();
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
    kernel_code_cfg();
}
