//! Command-line options of the host run (`cargo run -p sample-demo -- --help`).

use std::fmt;
use std::format;
use std::prelude::rust_2021::*;
use std::time::Duration;

/// What `--help` prints.
pub const USAGE: &str = "\
sample-demo: the DMF sample KMDF driver's logic, run on the simulated bus (dmf-sim)

USAGE:
    cargo run -p sample-demo --release [-- OPTIONS]

Simulated devices exposing the Tests_IoctlHandler interface arrive, are
query-removed (some removals vetoed or cancelled), surprise-removed, have their
interface disabled and re-enabled, while the driver's own device is
power-cycled, all on a schedule drawn from the seed. The driver follows every
device with DeviceInterfaceMultipleTarget, streams IOCTL_ZEROBUFFER to each and
reports per-target figures through its own IOCTL, which the live view reads.

OPTIONS:
    -n, --devices N       devices on the bus (1..=64, default 6)
    -d, --duration SECS   how long to run (0.1..=3600, default 10)
    -s, --seed S          seed of the schedule and the simulator (decimal or 0x-hex,
                          default 0x5EED)
        --quiet           no live view, only the summary
        --log FILTER      print the layers' events to stderr (`debug` shows every
                          target and stream transition; EnvFilter syntax, e.g.
                          `dmf_device_interface_multiple_target=debug`); RUST_LOG
                          is read when this is not given; with the live view on a
                          terminal, send stderr elsewhere (`2> demo.log`)
        --recorder TEXT   under the live view, the last transitions of the target
                          whose symbolic link contains TEXT (e.g. `sample-02`),
                          from the driver's in-flight recorder
    -h, --help            print this help
";

/// Parsed options.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Number of devices on the bus.
    pub devices: usize,
    /// Run time.
    pub duration: Duration,
    /// Seed.
    pub seed: u64,
    /// Print the live view.
    pub live: bool,
    /// `tracing` filter for the layers' events on stderr (`--log`).
    pub log: Option<String>,
    /// Show the recorder of the target whose link contains this (`--recorder`).
    pub recorder: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            devices: 6,
            duration: Duration::from_secs(10),
            seed: 0x5EED,
            live: true,
            log: None,
            recorder: None,
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run with these options.
    Run(Options),
    /// Print [`USAGE`].
    Help,
}

/// A bad command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}\n\nrun with --help for the options", self.0)
    }
}

impl std::error::Error for ArgError {}

fn parse_u64(text: &str) -> Option<u64> {
    let t = text.replace('_', "");
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// Parses the arguments after the program name.
///
/// ```
/// use sample_demo::args::{parse, Command, Options};
/// let cmd = parse(["--devices", "3", "--duration=2.5", "-s", "0x10"]).unwrap();
/// let Command::Run(o) = cmd else { panic!() };
/// assert_eq!((o.devices, o.duration.as_millis(), o.seed), (3, 2500, 16));
/// assert!(parse(["--devices", "zero"]).is_err());
/// ```
pub fn parse<I, S>(args: I) -> Result<Command, ArgError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut options = Options::default();
    let mut it = args.into_iter().map(|a| a.as_ref().to_owned());
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, ArgError> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => Err(ArgError(format!("{name} needs a value ({what})"))),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quiet" | "-q" => options.live = false,
            "--log" => options.log = Some(value("a filter such as `debug`")?),
            "--recorder" => options.recorder = Some(value("part of a symbolic link")?),
            "-n" | "--devices" => {
                let v = value("a number of devices")?;
                options.devices = match parse_u64(&v) {
                    Some(n @ 1..=64) => n as usize,
                    _ => {
                        return Err(ArgError(format!(
                            "--devices: `{v}` is not a number of devices between 1 and 64"
                        )))
                    }
                };
            }
            "-d" | "--duration" => {
                let v = value("seconds")?;
                let secs: f64 = v.trim_end_matches('s').parse().map_err(|_| {
                    ArgError(format!("--duration: `{v}` is not a number of seconds"))
                })?;
                if !(0.1..=3600.0).contains(&secs) {
                    return Err(ArgError(format!(
                        "--duration: {v} s is out of range (0.1 to 3600 seconds)"
                    )));
                }
                options.duration = Duration::from_secs_f64(secs);
            }
            "-s" | "--seed" => {
                let v = value("a number")?;
                options.seed = parse_u64(&v).ok_or_else(|| {
                    ArgError(format!(
                        "--seed: `{v}` is not a number (decimal, or hexadecimal with 0x)"
                    ))
                })?;
            }
            other => {
                return Err(ArgError(format!("unknown argument `{other}`")));
            }
        }
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(run(&[]), Options::default());
        assert_eq!(Options::default().duration, Duration::from_secs(10));
    }

    #[test]
    fn every_option_both_spellings() {
        let o = run(&["-n", "12", "-d", "3", "-s", "42", "--quiet"]);
        assert_eq!(o.devices, 12);
        assert_eq!(o.duration, Duration::from_secs(3));
        assert_eq!(o.seed, 42);
        assert!(!o.live);
        let o = run(&["--devices=2", "--duration", "0.5s", "--seed=0xFF"]);
        assert_eq!(o.devices, 2);
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.seed, 255);
        assert_eq!(run(&["--seed", "1_000"]).seed, 1000);
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(["--devices", "3", "--help"]), Ok(Command::Help));
        assert_eq!(parse(["-h"]), Ok(Command::Help));
        assert!(USAGE.contains("--devices N"));
    }

    #[test]
    fn clear_errors() {
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert!(err(&["--devices", "0"]).contains("between 1 and 64"));
        assert!(err(&["--devices", "65"]).contains("between 1 and 64"));
        assert!(err(&["--devices"]).contains("--devices needs a value"));
        assert!(err(&["--duration", "abc"]).contains("`abc` is not a number of seconds"));
        assert!(err(&["--duration", "0"]).contains("out of range"));
        assert!(err(&["--seed", "0xZZ"]).contains("is not a number"));
        assert!(err(&["--frobnicate"]).contains("unknown argument `--frobnicate`"));
        assert!(err(&["extra"]).contains("unknown argument `extra`"));
        assert!(err(&["--frobnicate"]).ends_with("run with --help for the options"));
        assert!(err(&["--log"]).contains("--log needs a value"));
    }

    #[test]
    fn recorder_selection() {
        assert_eq!(run(&[]).recorder, None);
        assert_eq!(
            run(&["--recorder", "sample-02"]).recorder.as_deref(),
            Some("sample-02")
        );
    }

    #[test]
    fn log_filters() {
        assert_eq!(run(&[]).log, None);
        assert_eq!(run(&["--log", "debug"]).log.as_deref(), Some("debug"));
        assert_eq!(
            run(&["--log=dmf_sim=trace,warn"]).log.as_deref(),
            Some("dmf_sim=trace,warn")
        );
    }
}
