//! The cross-layer benchmark: every layer against its baseline, measured in
//! one process, printed as a table of ratios and written to `BENCHMARKS.md`.
//!
//! | layer | baseline | figure |
//! |---|---|---|
//! | buffer-pool | `Mutex<Vec<_>>`, crossbeam `ArrayQueue` | get+put pairs/s at 1 and 2 threads |
//! | continuous-request-target | raw sim target resent from its completion routine | completions/s at depth 1, 8, 64 |
//! | device-interface-multiple-target | raw sim target opened / closed by hand | arrival and removal cost, heap per target at 1, 100, 10,000 targets |
//! | all streaming paths, safe single sends | raw sim target | heap allocations per streamed request or single send (counting global allocator) |

use std::fmt::Write as _;
use std::time::Duration;

pub mod buffer_pool;
pub mod crt;
pub mod dimt;

pub use buffer_pool::PoolRow;
pub use crt::StreamRow;
pub use dimt::TargetsRow;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Shorter windows and fewer rounds (for smoke runs).
    pub quick: bool,
    /// Largest DIMT target count to measure (1, 100, 10,000 up to this).
    pub max_targets: usize,
    /// Run only these parts (`pool`, `crt`, `dimt`, `allocs`); empty = all.
    pub only: Vec<String>,
}

impl BenchOptions {
    /// Whether `part` runs.
    pub fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            quick: false,
            max_targets: 10_000,
            only: Vec::new(),
        }
    }
}

/// Receives progress lines while the benchmark runs.
pub trait Progress {
    /// A step starts.
    fn step(&mut self, what: &str);
}

/// Progress to standard error, with the elapsed time.
#[derive(Debug)]
pub struct StderrProgress(std::time::Instant);

impl Default for StderrProgress {
    fn default() -> Self {
        StderrProgress(std::time::Instant::now())
    }
}

impl Progress for StderrProgress {
    fn step(&mut self, what: &str) {
        eprintln!("[bench {:>6.1} s] {what}", self.0.elapsed().as_secs_f64());
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&mut self, _what: &str) {}
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The machine the figures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs available to the process (`nproc`).
    pub nproc: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// The compiler that built the benchmark.
    pub rustc: String,
    /// Operating system (`std::env::consts::OS`, architecture).
    pub os: String,
}

impl Machine {
    /// Describes this machine.
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            rustc: env!("DMF_STRESS_RUSTC_VERSION").to_string(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Allocations per streamed request, one path.
#[derive(Clone, Debug, PartialEq)]
pub struct AllocRow {
    /// Which path.
    pub path: String,
    /// Completions per second during the measurement.
    pub per_s: f64,
    /// Heap allocations and completed requests over the measurement
    /// windows (`None` without the counting allocator).
    pub allocations: Option<(u64, u64)>,
}

impl AllocRow {
    /// Heap allocations per completed request.
    pub fn per_request(&self) -> Option<f64> {
        self.allocations.map(|(a, r)| a as f64 / r.max(1) as f64)
    }
}

/// Every figure of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Where it ran.
    pub machine: Machine,
    /// The command that produced it.
    pub command: String,
    /// UTC date of the run (`YYYY-MM-DD hh:mm`).
    pub date: String,
    /// buffer-pool rows (1 and 2 threads).
    pub pool: Vec<PoolRow>,
    /// CRT rows (depth 1, 8, 64).
    pub stream: Vec<StreamRow>,
    /// DIMT rows (1, 100, 10,000 targets).
    pub targets: Vec<TargetsRow>,
    /// Allocations per streamed request.
    pub allocs: Vec<AllocRow>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// Runs every benchmark (progress to `progress`).
pub fn run_all(options: &BenchOptions, command: &str, progress: &mut dyn Progress) -> BenchReport {
    let start = std::time::Instant::now();
    let machine = Machine::detect();
    let pool = if options.runs("pool") {
        buffer_pool::run(options, progress)
    } else {
        Vec::new()
    };
    let stream = if options.runs("crt") || options.runs("allocs") {
        crt::run(options, progress)
    } else {
        Vec::new()
    };
    let targets = if options.runs("dimt") {
        dimt::run(options, progress)
    } else {
        Vec::new()
    };
    let mut allocs: Vec<AllocRow> = Vec::new();
    for row in &stream {
        allocs.push(AllocRow {
            path: format!("raw sim target, depth {}", row.depth),
            per_s: row.raw_per_s,
            allocations: row.raw_allocations,
        });
        allocs.push(AllocRow {
            path: format!("ContinuousRequestTarget, depth {}", row.depth),
            per_s: row.crt_per_s,
            allocations: row.crt_allocations,
        });
    }
    if options.runs("allocs") {
        let (per_s, a) = crt::owned_send_allocations(options, progress, 8);
        allocs.push(AllocRow {
            path: "Sender::send with owned buffers (ContinuousRequestTarget single sends), depth 8"
                .to_string(),
            per_s,
            allocations: a,
        });
        let (per_s, a) = dimt::stream_allocations(options, progress, 8);
        allocs.push(AllocRow {
            path: "DeviceInterfaceMultipleTarget stream (TestsIoctlHandler), depth 8".to_string(),
            per_s,
            allocations: a,
        });
    }
    progress.step("done");
    BenchReport {
        machine,
        command: command.to_string(),
        date: utc_now(),
        pool,
        stream,
        targets,
        allocs,
        elapsed: start.elapsed(),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.decimals$}"))
}

fn dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

impl BenchReport {
    /// The figures as markdown tables (also the terminal output).
    pub fn tables(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "### buffer-pool: get+put pairs (million/s)\n");
        let _ = writeln!(s, "| threads | BufferPool | Mutex<Vec> | ArrayQueue | pool / Mutex<Vec> | pool / ArrayQueue |");
        let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
        for r in &self.pool {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
                r.threads,
                r.pool_mops,
                r.mutex_mops,
                r.queue_mops,
                r.pool_over_mutex(),
                r.pool_over_queue()
            );
        }
        let _ = writeln!(
            s,
            "\n### continuous-request-target: streamed completions/s\n"
        );
        let _ = writeln!(s, "| depth | raw sim target | CRT | CRT / raw |");
        let _ = writeln!(s, "|---:|---:|---:|---:|");
        for r in &self.stream {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.2}x |",
                r.depth,
                r.raw_per_s,
                r.crt_per_s,
                r.ratio()
            );
        }
        let _ = writeln!(
            s,
            "\n### device-interface-multiple-target: per target (medians)\n"
        );
        let _ = writeln!(s, "| targets | raw arrival | DIMT arrival | DIMT p99 | DIMT / raw | raw removal | DIMT removal | DIMT / raw | raw heap B | DIMT heap B | DIMT / raw | DIMT device memory B |");
        let _ = writeln!(
            s,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.targets {
            let heap_ratio = match (r.dimt_bytes, r.raw_bytes) {
                (Some(d), Some(raw)) if raw > 0.0 => format!("{:.2}x", d / raw),
                _ => "n/a".to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.2}x | {} | {} | {:.2}x | {} | {} | {} | {:.0} |",
                r.targets,
                dur(r.raw_arrival),
                dur(r.dimt_arrival),
                dur(r.dimt_arrival_p99),
                r.arrival_ratio(),
                dur(r.raw_removal),
                dur(r.dimt_removal),
                r.removal_ratio(),
                opt(r.raw_bytes, 0),
                opt(r.dimt_bytes, 0),
                heap_ratio,
                r.dimt_platform_bytes
            );
        }
        let _ = writeln!(
            s,
            "\n### heap allocations per streamed request (steady state)\n"
        );
        let _ = writeln!(s, "| path | completions/s | requests measured | heap allocations | allocations / request |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for r in &self.allocs {
            let (a, n) = match r.allocations {
                Some((a, n)) => (a.to_string(), n.to_string()),
                None => ("n/a".to_string(), "n/a".to_string()),
            };
            let _ = writeln!(
                s,
                "| {} | {:.0} | {n} | {a} | {} |",
                r.path,
                r.per_s,
                opt(r.per_request(), 4)
            );
        }
        s
    }

    /// The whole `BENCHMARKS.md`.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Every layer against its baseline, measured in one process by `dmf-stress` \
             (`stress/src/bench/`). Regenerate with:\n\n```sh\n{}\n```\n",
            self.command
        );
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(s, "| date (UTC) | {} |", self.date);
        let _ = writeln!(s, "| CPU | {} |", m.cpu);
        let _ = writeln!(s, "| nproc | {} |", m.nproc);
        let _ = writeln!(s, "| OS | {} |", m.os);
        let _ = writeln!(s, "| rustc | {} |", m.rustc);
        let _ = writeln!(s, "| run time | {:.1} s |\n", self.elapsed.as_secs_f64());
        let _ = writeln!(
            s,
            "The machine is shared with other builds and tests (2 cores): absolute \
             figures move between runs, and the latency-bound cases (2 threads, depth 1, \
             one-target arrival) by several times (six full runs in one afternoon: \
             CRT/raw at depth 1 from 0.38x to 0.91x, pool/Mutex<Vec> at 2 threads \
             from 0.84x to 7.3x, DIMT one-target arrival from 154 µs to 3.3 ms). Each ratio compares against a baseline measured in the same \
             run, interleaved with it; rerun and compare ratios, not single figures.\n"
        );
        s.push_str(&self.tables());
        let _ = writeln!(s, "\n### What is measured\n");
        let _ = writeln!(s, "* **buffer-pool**: a source `BufferPool` (64 buffers of 32 bytes, 8-byte context; `get`, write a byte, drop the guard, which zeroes data and context and checks the guard bytes) against a `Mutex<Vec<Box<[u8; 32]>>>` and crossbeam's `ArrayQueue` doing the same; median of several rounds, mean of two interleaved passes. The pool's put zeroes and checks; the baselines do not.");
        let _ = writeln!(s, "* **continuous-request-target**: IOCTLs with a 64-byte output buffer to a simulated device that completes at once (zero added latency, 2 completion threads). Raw: re-initialise, format and resend each request from its completion routine. CRT: output buffer from the pool, client callback reads it, `ModuleOwnsAndContinue`, resend. Median of alternating windows.");
        let _ = writeln!(s, "* **device-interface-multiple-target**: N `TestsIoctlHandler` devices exposing the interface (ZEROBUFFER, 0 ms delay). Arrival: DIMT registers, each interface goes through filter, open, CRT creation, automatic stream start, first completion (the stream request then retires); raw: create + open the target, send one request, wait for it. Removal: `Bus::remove_device` of each device in turn (query-remove, close, remove-complete, interface removal), idle targets; both sides are dominated by the hand-off to and from the simulator's PnP thread (tens of µs), so removal ratios are noisy. Heap: live bytes of the counting allocator after every target is up, per target (simulated objects included on both sides; the DIMT side also holds the benchmark client's own three hash-map entries per target, with the link string). Device memory: `Platform::allocate` bytes (stream buffers and pools) per DIMT target.");
        let _ = writeln!(s, "* **allocations per request**: every heap allocation in the process (all threads, the simulator included) during steady-state windows, divided by the completions in the window. The raw rows are the simulator's own cost; a framework row equal to its raw row means the framework adds no allocation per request.");
        s
    }
}

/// The current UTC date and time as `YYYY-MM-DD hh:mm`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}
