//! `cargo run -p sample-driver`: the sample driver's logic on the simulated
//! bus, with a live view and a summary (see `sample_driver::host`).
//!
//! On Windows MSVC this package builds the KMDF driver instead (the library
//! is then `no_std` with its own panic handler and cannot be linked into a
//! program), so this binary only explains where the host run is.

#[cfg(not(all(windows, target_env = "msvc")))]
fn main() -> std::process::ExitCode {
    sample_driver::host::main()
}

#[cfg(all(windows, target_env = "msvc"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "sample-driver: for the Windows MSVC target this package is the KMDF driver \
         (sample_driver.dll -> .sys, see `cargo xtask package`).\n\
         The simulator run needs another target, e.g. \
         `cargo run -p sample-driver --target x86_64-pc-windows-gnu`, or Linux/macOS."
    );
    std::process::ExitCode::from(2)
}
