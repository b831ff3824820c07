//! `cargo run -p dmf-stress --release --bin bench [-- --quick] [--max-targets N] [--no-write] [--out PATH]`
//!
//! Runs every layer's benchmark against its baseline in this process,
//! prints the table of ratios and writes `BENCHMARKS.md` at the repository
//! root (or `--out`).

use std::path::PathBuf;
use std::process::ExitCode;

use dmf_stress::alloc_count::CountingAllocator;
use dmf_stress::bench::{run_all, BenchOptions, StderrProgress};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const USAGE: &str =
    "usage: bench [--quick] [--max-targets N] [--only pool|crt|dimt|allocs]... [--no-write] [--out PATH] [--log FILTER]
  --log FILTER  the layers' events on stderr (EnvFilter syntax; RUST_LOG when absent).
                Logging costs time: figures measured with it are not comparable.";

/// Reports a bad command line (naming the argument) and returns exit code 2.
fn bad_argument(what: &str) -> ExitCode {
    eprintln!("bench: {what}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut options = BenchOptions::default();
    let mut write = true;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = root.parent().map(PathBuf::from).unwrap_or(root);
    let mut out = root.join("BENCHMARKS.md");
    let mut log = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-write" => write = false,
            "--max-targets" => match args.next() {
                Some(v) => match v.parse() {
                    Ok(n) => options.max_targets = n,
                    Err(_) => {
                        return bad_argument(&format!(
                            "--max-targets needs a number of targets, got {v:?}"
                        ))
                    }
                },
                None => return bad_argument("--max-targets needs a number of targets"),
            },
            "--only" => match args.next() {
                Some(p) if ["pool", "crt", "dimt", "allocs"].contains(&p.as_str()) => {
                    options.only.push(p)
                }
                Some(p) => {
                    return bad_argument(&format!(
                        "--only needs one of pool, crt, dimt, allocs, got {p:?}"
                    ))
                }
                None => return bad_argument("--only needs one of pool, crt, dimt, allocs"),
            },
            "--out" => match args.next() {
                Some(p) => out = PathBuf::from(p),
                None => return bad_argument("--out needs a path"),
            },
            "--log" => match args.next() {
                Some(filter) => log = Some(filter),
                None => return bad_argument("--log needs a filter such as `debug`"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => return bad_argument(&format!("unknown argument {other:?}")),
        }
    }
    match dmf_sim::logging::init(log.as_deref()) {
        Ok(true) => eprintln!("bench: logging is on; the figures are not comparable"),
        Ok(false) => {}
        Err(e) => return bad_argument(&e),
    }
    let mut command = String::from("cargo run -p dmf-stress --release --bin bench");
    if options.quick
        || options.max_targets != BenchOptions::default().max_targets
        || !options.only.is_empty()
    {
        command.push_str(" --");
        if options.quick {
            command.push_str(" --quick");
        }
        if options.max_targets != BenchOptions::default().max_targets {
            command.push_str(&format!(" --max-targets {}", options.max_targets));
        }
        for part in &options.only {
            command.push_str(&format!(" --only {part}"));
        }
    }
    let report = run_all(&options, &command, &mut StderrProgress::default());
    println!(
        "machine: {} x {} ({}), {}\n",
        report.machine.nproc, report.machine.cpu, report.machine.os, report.machine.rustc
    );
    println!("{}", report.tables());
    if write {
        let path = out;
        match std::fs::write(&path, report.markdown()) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
