//! The live view and the summary of the host run: plain text rendered from
//! what the driver's IOCTLs return (exactly what a user-mode tool would see).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::prelude::rust_2021::*;
use std::{format, writeln};

use dmf_wdf::Status;

use sample_driver::ioctl::{StatisticsHeader, StatusCount, TargetRecord};
use sample_driver::stats::TargetState;

/// One reading of `IOCTL_SAMPLE_GET_STATISTICS`.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// The header.
    pub header: StatisticsHeader,
    /// The records, newest target first.
    pub records: Vec<TargetRecord>,
}

/// Ended targets shown under the tracked ones in the live view.
pub const ENDED_SHOWN: usize = 4;

/// `\??\SIM#sample-03#0003#{FD9F...}` -> `SIM#sample-03#0003`.
pub fn short_link(link: &str) -> &str {
    let s = link.strip_prefix("\\??\\").unwrap_or(link);
    match s.rfind("#{") {
        Some(i) => &s[..i],
        None => s,
    }
}

fn secs(t_100ns: u64) -> f64 {
    t_100ns as f64 / 10_000_000.0
}

/// `1234567` -> `"1.23 M"` style, for bytes and counts.
pub fn human(v: f64) -> String {
    let (value, unit) = if v >= 1e9 {
        (v / 1e9, " G")
    } else if v >= 1e6 {
        (v / 1e6, " M")
    } else if v >= 1e3 {
        (v / 1e3, " k")
    } else {
        (v, " ")
    };
    format!("{value:.1}{unit}")
}

fn status_name(s: Status) -> String {
    if s == Status::SUCCESS {
        "-".to_owned()
    } else {
        match s.name() {
            Some(n) => n.trim_start_matches("STATUS_").to_owned(),
            None => format!("0x{:08X}", s.raw() as u32),
        }
    }
}

/// Renders one frame of the live view. Rates are over the time since
/// `previous` (the frame before) when given, else over each target's life.
pub fn render_frame(now: &Reading, previous: Option<&Reading>) -> String {
    let h = &now.header;
    let mut out = String::new();
    let dt = previous.map(|p| secs(h.uptime_100ns.saturating_sub(p.header.uptime_100ns)));
    let _ = writeln!(
        out,
        "sample-driver on dmf-sim   t={:6.2} s   device {}   targets open {} (opened {})",
        secs(h.uptime_100ns),
        if h.powered != 0 { "D0" } else { "D3" },
        h.targets_open,
        h.targets_opened,
    );
    let _ = writeln!(
        out,
        "  id  device                   state          completed  errors     req/s    bytes/s  last error"
    );
    let tracked = now.records.iter().filter(|r| r.state.is_tracked());
    let ended = now
        .records
        .iter()
        .filter(|r| !r.state.is_tracked())
        .take(ENDED_SHOWN);
    let mut rows: Vec<&TargetRecord> = tracked.chain(ended).collect();
    rows.sort_by_key(|r| (!r.state.is_tracked(), r.id));
    for r in rows {
        let prev = previous.and_then(|p| p.records.iter().find(|q| q.id == r.id));
        let (req_s, bytes_s) = match (prev, dt) {
            (Some(p), Some(dt)) if dt > 0.0 => (
                r.completed.saturating_sub(p.completed) as f64 / dt,
                r.bytes.saturating_sub(p.bytes) as f64 / dt,
            ),
            _ => {
                let life = secs(
                    if r.ended_100ns != 0 {
                        r.ended_100ns
                    } else {
                        h.uptime_100ns
                    }
                    .saturating_sub(r.opened_100ns),
                );
                if life > 0.0 {
                    (r.completed as f64 / life, r.bytes as f64 / life)
                } else {
                    (0.0, 0.0)
                }
            }
        };
        let (req_s, bytes_s) = if r.state.is_tracked() {
            (format!("{req_s:.0}"), human(bytes_s))
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        let _ = writeln!(
            out,
            "{:>4}  {:<24} {:<13} {:>10} {:>7} {:>9} {:>10}  {}",
            r.id,
            short_link(r.link()),
            r.state.name(),
            r.completed,
            r.errors,
            req_s,
            bytes_s,
            status_name(r.last_error),
        );
    }
    let _ = writeln!(
        out,
        "total: {} completed, {} errors, {}B   query-removes {}, remove-cancels {}, removed {}, closed {}, power-downs {}",
        h.completed,
        h.errors,
        human(h.bytes as f64),
        h.query_removes,
        h.remove_cancels,
        h.remove_completes,
        h.closes,
        h.power_downs,
    );
    out
}

/// What the summary reports besides the driver's own figures.
#[derive(Clone, Debug)]
pub struct SummaryInput {
    /// Schedule events applied, by name.
    pub actions: BTreeMap<&'static str, u32>,
    /// Per device (short link): IRPs the device received, output bytes it zeroed.
    pub devices: BTreeMap<String, (u64, u64)>,
    /// The simulator's counters after teardown, rendered.
    pub counters: String,
    /// Whether the counters are clean.
    pub clean: bool,
    /// Whether the driver's figures match the devices' and the simulator's.
    pub cross_check: Result<(), String>,
}

impl Default for SummaryInput {
    fn default() -> Self {
        SummaryInput {
            actions: BTreeMap::new(),
            devices: BTreeMap::new(),
            counters: String::new(),
            clean: false,
            cross_check: Ok(()),
        }
    }
}

/// Renders the summary printed at the end of a run.
pub fn render_summary(reading: &Reading, statuses: &[StatusCount], extra: &SummaryInput) -> String {
    let h = &reading.header;
    let mut out = String::new();
    let up = secs(h.uptime_100ns).max(1e-9);
    let _ = writeln!(out, "==== summary ====");
    let _ = writeln!(
        out,
        "ran {:.2} s; {} targets opened, {} open at the end",
        up, h.targets_opened, h.targets_open
    );
    let _ = writeln!(
        out,
        "requests: {} completed, {} failed; {}B transferred ({}B/s, {:.0} req/s)",
        h.completed,
        h.errors,
        human(h.bytes as f64),
        human(h.bytes as f64 / up),
        h.completed as f64 / up
    );
    let _ = writeln!(out, "completion statuses seen:");
    for s in statuses {
        let _ = writeln!(
            out,
            "  {:>10}  {}",
            s.count,
            s.status.name().map_or_else(
                || format!("NTSTATUS 0x{:08X}", s.status.raw() as u32),
                str::to_owned
            )
        );
    }
    let _ = writeln!(
        out,
        "target events: {} query-removes, {} remove-cancels, {} remove-completes, {} closes, {} opens declined/failed, {} power-downs",
        h.query_removes, h.remove_cancels, h.remove_completes, h.closes, h.open_failures, h.power_downs
    );
    let mut by_state: BTreeMap<TargetState, usize> = BTreeMap::new();
    for r in &reading.records {
        *by_state.entry(r.state).or_default() += 1;
    }
    let states: Vec<String> = by_state
        .iter()
        .map(|(s, n)| format!("{n} {}", s.name()))
        .collect();
    let _ = writeln!(out, "target records at the end: {}", states.join(", "));
    let _ = writeln!(out, "schedule applied:");
    for (name, n) in &extra.actions {
        let _ = writeln!(out, "  {n:>5}  {name}");
    }
    let _ = writeln!(out, "per device (driver view vs device view):");
    let _ = writeln!(
        out,
        "  {:<24} {:>8} {:>10} {:>8} {:>11} {:>12}",
        "device", "targets", "completed", "errors", "irps seen", "bytes zeroed"
    );
    let oldest_kept = reading.records.iter().map(|r| r.id).min().unwrap_or(0);
    let dropped = h.targets_opened.saturating_sub(h.records_total);
    for (link, (received, zeroed)) in &extra.devices {
        let mine: Vec<&TargetRecord> = reading
            .records
            .iter()
            .filter(|r| short_link(r.link()) == link)
            .collect();
        let (targets, completed, errors) = if mine.is_empty() && dropped > 0 {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                mine.len().to_string(),
                mine.iter().map(|r| r.completed).sum::<u64>().to_string(),
                mine.iter().map(|r| r.errors).sum::<u64>().to_string(),
            )
        };
        let _ = writeln!(
            out,
            "  {:<24} {:>8} {:>10} {:>8} {:>11} {:>12}",
            link, targets, completed, errors, received, zeroed
        );
    }
    if dropped > 0 {
        let _ = writeln!(
            out,
            "  (the driver keeps the last {} ended targets: {dropped} older ones, before id {oldest_kept}, are only in the totals)",
            sample_driver::stats::HISTORY
        );
    }
    match &extra.cross_check {
        Ok(()) => {
            let _ = writeln!(
                out,
                "cross-check: driver figures match the devices and the simulator"
            );
        }
        Err(e) => {
            let _ = writeln!(out, "cross-check FAILED: {e}");
        }
    }
    let _ = writeln!(
        out,
        "leak check: {}",
        if extra.clean {
            "clean (no request, target, buffer, timer, work item, event or registration left)"
        } else {
            "NOT CLEAN"
        }
    );
    let _ = writeln!(out, "{}", extra.counters);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, state: TargetState, completed: u64, link: &str) -> TargetRecord {
        // The link fields are private to the driver crate: fill the rest.
        let mut r = TargetRecord::default();
        r.id = id;
        r.state = state;
        r.completed = completed;
        r.bytes = completed * 100;
        r.errors = 1;
        r.last_error = Status::CANCELLED;
        r.set_link(link);
        r
    }

    #[test]
    fn short_links() {
        assert_eq!(
            short_link("\\??\\SIM#sample-03#0003#{FD9FF0B7-029F-4D1E-94DA-8D8CC2BD40CF}"),
            "SIM#sample-03#0003"
        );
        assert_eq!(short_link("plain"), "plain");
    }

    #[test]
    fn frame_shows_tracked_targets_and_live_rates() {
        let link = "\\??\\SIM#dev#0001#{FD9FF0B7-029F-4D1E-94DA-8D8CC2BD40CF}";
        let before = Reading {
            header: StatisticsHeader {
                uptime_100ns: 10_000_000,
                ..Default::default()
            },
            records: vec![record(1, TargetState::Open, 100, link)],
        };
        let now = Reading {
            header: StatisticsHeader {
                uptime_100ns: 15_000_000,
                powered: 1,
                targets_open: 1,
                ..Default::default()
            },
            records: vec![
                record(2, TargetState::Removed, 7, link),
                record(1, TargetState::Open, 600, link),
            ],
        };
        let text = render_frame(&now, Some(&before));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("t=  1.50 s") && lines[0].contains("device D0"));
        // Tracked first, then history; 500 completions in 0.5 s = 1000 req/s.
        assert!(lines[2].contains("SIM#dev#0001") && lines[2].contains(" open "));
        assert!(lines[2].contains(" 1000 "), "{}", lines[2]);
        assert!(lines[2].ends_with("CANCELLED"));
        assert!(lines[3].contains("removed") && lines[3].contains(" - "));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn summary_lists_statuses_devices_and_checks() {
        let link = "\\??\\SIM#dev#0001#{FD9FF0B7-029F-4D1E-94DA-8D8CC2BD40CF}";
        let reading = Reading {
            header: StatisticsHeader {
                uptime_100ns: 20_000_000,
                completed: 600,
                ..Default::default()
            },
            records: vec![record(1, TargetState::Closed, 600, link)],
        };
        let statuses = [
            StatusCount {
                status: Status::SUCCESS,
                count: 600,
            },
            StatusCount {
                status: Status::from_raw(0x1234),
                count: 1,
            },
        ];
        let mut extra = SummaryInput {
            clean: true,
            ..Default::default()
        };
        extra
            .devices
            .insert("SIM#dev#0001".to_owned(), (601, 601 * 100));
        let text = render_summary(&reading, &statuses, &extra);
        assert!(text.contains("600  STATUS_SUCCESS"));
        assert!(text.contains("NTSTATUS 0x00001234"));
        assert!(text.contains("300 req/s"));
        assert!(text.contains("1 closed"));
        assert!(text.contains("leak check: clean"));
        assert!(text.contains("SIM#dev#0001"));
        // Records dropped from the driver's history: no per-device figures.
        let mut partial = reading.clone();
        partial.header.targets_opened = 5;
        partial.header.records_total = 1;
        extra.devices.insert("SIM#gone#0002".to_owned(), (10, 1000));
        let text = render_summary(&partial, &statuses, &extra);
        let gone = text.lines().find(|l| l.contains("SIM#gone#0002")).unwrap();
        assert!(gone.contains(" - "), "{gone}");
        assert!(text.contains("4 older ones, before id 1, are only in the totals"));
        extra.cross_check = Err("bad".into());
        extra.clean = false;
        let text = render_summary(&reading, &statuses, &extra);
        assert!(text.contains("cross-check FAILED: bad"));
        assert!(text.contains("NOT CLEAN"));
    }
}
