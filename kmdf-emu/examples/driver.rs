//! The sample driver's KMDF build, run on Linux over the emulated KMDF: its
//! `DriverEntry`, device add, PrepareHardware/D0Entry, IOCTLs through the
//! default queue, a power cycle and removal, then the demo's cross-check and
//! leak check.
//!
//! ```text
//! cargo run -p dmf-kmdf-emu --example driver [-- SEED [PHASE_MS]]
//! ```

#[path = "../tests/driver_run/mod.rs"]
mod driver_run;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(0x5EED);
    let phase_ms = args.next().and_then(|s| s.parse().ok()).unwrap_or(500);
    let outcome = driver_run::run(seed, phase_ms);
    println!("{}", outcome.report.summary());
    println!(
        "statistics IOCTLs answered while running: {}",
        outcome.live_readings
    );
    for line in &outcome.debug_output {
        println!("DbgPrint: {line}");
    }
    if outcome.machine_leaks.is_empty() {
        println!("emulated machine: nothing left over (pool, events, registrations, WDF objects)");
    } else {
        println!("emulated machine LEAKS: {:?}", outcome.machine_leaks);
    }
    let ok = outcome.report.cross_check.is_ok()
        && outcome.report.counters.is_clean()
        && outcome.machine_leaks.is_empty();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
