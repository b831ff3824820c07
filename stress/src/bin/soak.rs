//! `cargo run -p dmf-stress --release --bin soak -- --duration SECS --seed S [--faults]`
//!
//! Runs DMF's anchor test scenarios at once on the
//! simulator, printing progress every second and, at the end, the counts of
//! operations, the statuses seen and the leak check. Exit code 0 when the
//! run passed, 1 on a violation or a leak, 2 on bad arguments, 3 when the
//! watchdog failed the run (with a dump of what is outstanding).

use std::process::ExitCode;
use std::time::Duration;

use dmf_stress::soak::{run, SoakConfig, MAX_DEVICES, MAX_TIME};

const USAGE: &str =
    "usage: soak [--duration SECS] [--seed S] [--faults] [--stall SECS] [--devices N] [--quiet]
  --duration SECS  how long the scenarios run (default 10, at most one year)
  --seed S         seed of every random choice, decimal or 0x-hex (default 0x5EED)
  --faults         inject allocation, open, request failures and latency spikes
  --stall SECS     watchdog: fail when nothing progresses this long (default 15, at most one year)
  --devices N      most child devices on the bus at once (default 6, 1..=20000)
  --quiet          no progress lines
  --log FILTER     the layers' events on stderr (`debug`: every transition; EnvFilter
                   syntax); RUST_LOG is read when this is not given
  --inject-hang    (tests the watchdog) one worker blocks until the watchdog fails the run
  --inject-setup-hang  (tests the watchdog) the setup blocks until the watchdog fails the run";

/// A number of seconds within `1..=MAX_TIME`, or the message naming `name`.
fn seconds(name: &str, v: u64) -> Result<Duration, String> {
    if v > MAX_TIME.as_secs() {
        return Err(format!(
            "{name} {v} is out of range (at most {} s, one year)",
            MAX_TIME.as_secs()
        ));
    }
    Ok(Duration::from_secs(v))
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Reports a bad command line and returns exit code 2.
fn bad(message: &str) -> ExitCode {
    eprintln!("soak: {message}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config = SoakConfig::default();
    let mut log = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Option<u64> {
            let v = args.next().and_then(|v| parse_u64(&v));
            if v.is_none() {
                eprintln!("{name} needs a number\n{USAGE}");
            }
            v
        };
        match arg.as_str() {
            "--duration" | "-d" => match value("--duration").map(|v| seconds(&arg, v)) {
                Some(Ok(d)) => config.duration = d,
                Some(Err(e)) => return bad(&e),
                None => return ExitCode::from(2),
            },
            "--seed" | "-s" => match value("--seed") {
                Some(v) => config.seed = v,
                None => return ExitCode::from(2),
            },
            "--stall" => match value("--stall").map(|v| seconds(&arg, v.max(1))) {
                Some(Ok(d)) => config.stall_timeout = d,
                Some(Err(e)) => return bad(&e),
                None => return ExitCode::from(2),
            },
            "--devices" => match value("--devices") {
                Some(v) if v <= MAX_DEVICES as u64 => config.max_devices = v.max(1) as usize,
                Some(v) => {
                    return bad(&format!(
                        "--devices {v} is out of range (at most {MAX_DEVICES}: every device \
                         is opened by four DIMTs and streamed to)"
                    ))
                }
                None => return ExitCode::from(2),
            },
            "--faults" => config.faults = true,
            "--quiet" => config.progress = false,
            "--log" => match args.next() {
                Some(filter) => log = Some(filter),
                None => return bad("--log needs a filter such as `debug`"),
            },
            "--inject-hang" => config.inject_hang = true,
            "--inject-setup-hang" => config.inject_setup_hang = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = config.validate() {
        return bad(&e);
    }
    if let Err(e) = dmf_sim::logging::init(log.as_deref()) {
        return bad(&e);
    }
    let report = run(&config);
    println!("{}", report.summary());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
