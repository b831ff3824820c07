//! Build script of the driver crate.
//!
//! 1. The driver's identity: reads `<lib>.inx` (`[Strings]` `ServiceName`,
//!    `HardwareId`, `InterfaceGuid`, the minimum Windows build) and
//!    `[package.metadata.wdk.driver-model]` with `dmf-driver-identity`,
//!    checks them against each other (e.g. KMDF 1.33 needs build 22000) and
//!    writes them as Rust constants to `$OUT_DIR/identity.rs` (the crate's
//!    `identity` module). Any inconsistency fails the build with a message
//!    naming the file and the fix.
//! 2. Building for Windows MSVC on a Windows MSVC host, it then runs
//!    `wdk_build::configure_wdk_binary_build()`: finds the WDK and emits the
//!    driver's `cfg`s and linker arguments (`/DRIVER`, `/SUBSYSTEM:NATIVE`,
//!    ...). Everywhere else that step does nothing.

use std::path::PathBuf;

fn identity() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let lib_name = std::env::var("CARGO_PKG_NAME")
        .expect("set by cargo")
        .replace('-', "_");
    let inx = dmf_driver_identity::Identity::inx_path(&dir, &lib_name);
    println!("cargo::rerun-if-changed={}", inx.display());
    println!("cargo::rerun-if-changed=Cargo.toml");
    let identity = match dmf_driver_identity::Identity::load(&dir, &lib_name) {
        Ok(identity) => identity,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("identity.rs");
    let inx_name = format!("{lib_name}.inx");
    std::fs::write(&out, identity.rust_source(&inx_name))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

#[cfg(all(windows, target_env = "msvc"))]
fn main() -> Result<(), wdk_build::ConfigError> {
    println!("cargo::rerun-if-changed=build.rs");
    identity();
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
    identity();
}
