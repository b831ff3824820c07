//! The soak binary's command-line edges: out-of-range values are refused
//! with a message naming the argument (exit 2) instead of a panic or a run
//! that cannot end, and the watchdog and the progress output cover the
//! setup (a setup that hangs is failed with exit code 3).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the soak binary with `args`; kills it (and fails) after `limit`.
fn soak(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the soak binary");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("poll the soak").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("reap the soak");
            panic!(
                "soak {args:?} still running after {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("reap the soak")
}

#[test]
fn out_of_range_values_are_refused_naming_the_argument() {
    let max = u64::MAX.to_string();
    for args in [
        ["--duration", max.as_str()],
        ["--stall", max.as_str()],
        ["--devices", "100000"],
        ["--devices", max.as_str()],
    ] {
        let out = soak(&args, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(args[0]) && first.contains(args[1]),
            "{args:?}: the first line does not name the argument: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The watchdog runs from the start: a setup that hangs is failed (exit
/// code 3, naming the stuck step), after a progress line about the setup.
#[test]
fn the_watchdog_and_the_progress_output_cover_the_setup() {
    let out = soak(
        &["--inject-setup-hang", "--stall", "1", "--seed", "2"],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(dmf_stress::soak::WATCHDOG_EXIT_CODE),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("[soak setup"), "{stdout}");
    assert!(
        stderr.contains("WATCHDOG: worker main stuck in \"setup: blocked on purpose"),
        "{stderr}"
    );
}
