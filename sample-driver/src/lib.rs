//! # sample-driver: a KMDF driver on the DMF port, and the same logic on any host
//!
//! The driver follows every device exposing an interface class (by default
//! DMF's `Tests_IoctlHandler` interface) with
//! `DeviceInterfaceMultipleTarget`, streams an IOCTL to each (by default
//! `IOCTL_Tests_IoctlHandler_ZEROBUFFER`), counts per target what completes,
//! and reports the figures to user mode through its own IOCTLs
//! ([`ioctl`]).
//!
//! | piece | where | built on |
//! |---|---|---|
//! | the driver logic: DIMT client, statistics, IOCTL handler | [`driver::SampleDriver`], [`stats`], [`ioctl::handle_ioctl`] | every target, `no_std` + `alloc`, generic over [`dmf_wdf::Platform`] |
//! | `DriverEntry`, `EvtDriverDeviceAdd`, PnP/power callbacks, `EvtIoDeviceControl`, allocator, panic handler | `src/kmdf.rs` | Windows MSVC only, on `dmf-kmdf` / `wdk-sys` |
//! | the host run: simulated bus, schedule, live view, summary | `host` (feature `sim`, default) | every other target, on `dmf-sim` |
//!
//! ## Running it here
//!
//! ```text
//! cargo run -p sample-driver --release                     # 6 devices, 10 s
//! cargo run -p sample-driver --release -- -n 12 -d 30 -s 7
//! cargo run -p sample-driver -- --help
//! ```
//!
//! ## Building the driver (Windows, WDK)
//!
//! `cargo build -p sample-driver --profile driver --target
//! x86_64-pc-windows-msvc` with the WDK installed and
//! `RUSTFLAGS=-C target-feature=+crt-static` gives `sample_driver.dll` (the
//! `driver` profile aborts on panic: a kernel image cannot unwind);
//! `cargo xtask package` turns it into a signed
//! package (`sample_driver.sys`, `.inf` stamped from `sample_driver.inx`,
//! `.cat`). The root-enumerated device is `Root\DMF_SAMPLE_DRIVER`.
//! Everything under `cfg(all(windows, target_env = "msvc"))` is
//! type-checked and linted on Linux by `cargo xtask check-windows`, and
//! linked only on Windows (`.github/workflows/windows.yml`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// The host run needs std; the driver logic never uses it (no std prelude).
#[cfg(all(not(test), feature = "sim", not(all(windows, target_env = "msvc"))))]
extern crate std;

pub mod driver;
pub mod ioctl;
pub mod stats;

#[cfg(all(feature = "sim", not(all(windows, target_env = "msvc"))))]
pub mod host;

#[cfg(all(windows, target_env = "msvc"))]
mod kmdf;

pub use driver::{SampleConfig, SampleDriver};
pub use ioctl::handle_ioctl;
