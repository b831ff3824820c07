//! `cargo run -p sample-demo`: the sample driver's logic on the simulated
//! bus, with a live view and a summary (see the `sample_demo` library).
//!
//! The Windows MSVC target builds `sample-driver` as the KMDF driver (a
//! `no_std` library with its own panic handler that cannot be linked into a
//! program), so there this binary only explains where the demo runs.

#[cfg(not(all(windows, target_env = "msvc")))]
fn main() -> std::process::ExitCode {
    sample_demo::main()
}

#[cfg(all(windows, target_env = "msvc"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "sample-demo: for the Windows MSVC target sample-driver is the KMDF driver \
         (sample_driver.dll -> .sys, see `cargo xtask package`).\n\
         The simulator demo needs another target, e.g. \
         `cargo run -p sample-demo --target x86_64-pc-windows-gnu`, or Linux/macOS."
    );
    std::process::ExitCode::from(2)
}
