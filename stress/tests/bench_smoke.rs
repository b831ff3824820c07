//! The bench binary in quick mode: every table is produced, ratios are
//! finite, the markdown names the machine and the command, and streaming
//! and safe sends with owned buffers allocate nothing per request through
//! any layer.

#[test]
fn quick_bench_writes_every_table() {
    let out = std::env::temp_dir().join(format!("dmf-stress-bench-{}.md", std::process::id()));
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--quick", "--max-targets", "1", "--out"])
        .arg(&out)
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let md = std::fs::read_to_string(&out).expect("BENCHMARKS markdown written");
    let _ = std::fs::remove_file(&out);
    for needle in [
        "cargo run -p dmf-stress --release --bin bench -- --quick --max-targets 1",
        "| nproc |",
        "| CPU |",
        "| rustc | rustc ",
        "### buffer-pool",
        "### continuous-request-target",
        "### device-interface-multiple-target",
        "### heap allocations per streamed request",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    // Ratio cells are finite numbers.
    assert!(!md.contains("NaN") && !md.contains("inf"), "{md}");
    // Allocations per request of the framework rows: zero in steady state.
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| {
            l.starts_with("| ContinuousRequestTarget")
                || l.starts_with("| DeviceInterfaceMultipleTarget")
        })
        .collect();
    assert_eq!(rows.len(), 4, "{md}");
    for row in rows {
        let per_request: f64 = row
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("allocations per request in {row:?}"));
        assert!(per_request < 0.01, "{row}");
    }
    // Safe single sends with owned buffers allocate nothing per request either.
    let owned: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| Sender::send with owned buffers"))
        .collect();
    assert_eq!(owned.len(), 1, "{md}");
    let per_request: f64 = owned[0]
        .trim_end_matches('|')
        .rsplit('|')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("allocations per request in {:?}", owned[0]));
    assert!(per_request < 0.01, "{}", owned[0]);
}

/// A bad command line exits with 2 and its first line names the argument
/// that was wrong (and the value, if there was one).
#[test]
fn bench_binary_names_the_bad_argument() {
    for (args, needles) in [
        (
            &["--max-targets", "lots"][..],
            &["--max-targets", "\"lots\""][..],
        ),
        (&["--max-targets"][..], &["--max-targets"][..]),
        (&["--only", "nope"][..], &["--only", "\"nope\""][..]),
        (&["--only"][..], &["--only"][..]),
        (&["--out"][..], &["--out"][..]),
        (&["--quick", "--frobnicate"][..], &["--frobnicate"][..]),
    ] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(args)
            .output()
            .expect("run the bench binary");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            !first.starts_with("usage") && needles.iter().all(|n| first.contains(n)),
            "{args:?}: the first line does not say what was wrong: {stderr}"
        );
    }
}
