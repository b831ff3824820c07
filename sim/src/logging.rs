//! `tracing` output for host programs (the demo, the soak, the bench): the
//! layers' events on stderr, filtered by a `--log` option or `RUST_LOG`.
//!
//! The filter has `tracing-subscriber`'s `EnvFilter` syntax: a level
//! (`debug`), per-crate directives
//! (`dmf_device_interface_multiple_target=debug,warn`), or both. The
//! layers' transition events (target open / close / query-remove, stream
//! start / stop, power) are at `debug`; per-request events at `trace`.
//!
//! ```
//! // A bad filter is refused with a message naming it.
//! let err = dmf_sim::logging::init(Some("dmf=loud")).unwrap_err();
//! assert!(err.contains("dmf=loud"), "{err}");
//! ```

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The environment variable read when no filter is given.
pub const ENV: &str = "RUST_LOG";

/// Installs the global subscriber: events matching `filter`, or without one
/// the `RUST_LOG` filter, printed to stderr with their time, level, thread
/// and fields (in colour on a terminal). Returns `Ok(false)` (nothing installed, events cost nothing)
/// when neither is set. Errors: the filter does not parse (the message
/// names it), or a global subscriber is already installed.
pub fn init(filter: Option<&str>) -> Result<bool, String> {
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("--log `{f}`: {e}"))?,
        None => match std::env::var(ENV) {
            Ok(f) if !f.trim().is_empty() => {
                EnvFilter::try_new(&f).map_err(|e| format!("{ENV}=`{f}`: {e}"))?
            }
            _ => return Ok(false),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_thread_names(true)
        .try_init()
        .map(|()| true)
        .map_err(|e| format!("cannot install the log subscriber: {e}"))
}
