//! The kernel sink's formatting and settings, on the host: the lines
//! `DbgPrintEx` would print for real `tracing` events.

use std::sync::{Arc, Mutex};

use dmf_kmdf::debug_print::{dpfltr_level, format_event, level_filter, LINE_BYTES, TRACE_LEVEL};
use dmf_kmdf::line::Line;
use dmf_kmdf::parameters::Resolved;
use tracing::level_filters::LevelFilter;
use tracing::Level;
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Metadata, Subscriber};

/// Formats every event as the kernel sink does and keeps the lines.
struct Capture(Mutex<Vec<String>>);

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line::<LINE_BYTES>::new();
        format_event("sample", event, &mut line);
        self.0.lock().unwrap().push(line.as_str().to_owned());
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn capture(f: impl FnOnce()) -> Vec<String> {
    let capture = Arc::new(Capture(Mutex::new(Vec::new())));
    tracing::subscriber::with_default(Arc::clone(&capture), f);
    let lines = capture.0.lock().unwrap().clone();
    lines
}

#[test]
fn message_first_then_fields() {
    let lines = capture(|| {
        let status = dmf_wdf::Status::CANCELLED;
        tracing::debug!(
            target_handle = 3,
            ?status,
            "DIMT: target closed for query-remove"
        );
        tracing::warn!(link = "\\??\\dev#1", "DIMT: reopen failed");
    });
    assert_eq!(
        lines,
        [
            "sample: DEBUG DIMT: target closed for query-remove target_handle=3 status=STATUS_CANCELLED",
            "sample: WARN DIMT: reopen failed link=\\??\\dev#1",
        ]
    );
}

#[test]
fn long_events_are_cut_to_the_line() {
    let lines = capture(|| {
        let long = "x".repeat(1000);
        tracing::error!(%long, "big");
    });
    assert_eq!(lines[0].len(), LINE_BYTES - 1);
    assert!(lines[0].starts_with("sample: ERROR big long=xxx"));
}

#[test]
fn levels_map_to_dbgprintex_levels_most_important_lowest() {
    let levels = [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ];
    let mapped: Vec<u32> = levels.iter().map(dpfltr_level).collect();
    assert_eq!(mapped, [0, 1, 2, 3, 4]);
}

#[test]
fn the_trace_level_setting_selects_a_filter_and_defaults_to_warnings() {
    assert_eq!(TRACE_LEVEL.resolve(None), (2, Resolved::Default));
    assert_eq!(level_filter(TRACE_LEVEL.resolve(None).0), LevelFilter::WARN);
    assert_eq!(level_filter(0), LevelFilter::OFF);
    assert_eq!(level_filter(1), LevelFilter::ERROR);
    assert_eq!(level_filter(3), LevelFilter::INFO);
    assert_eq!(level_filter(4), LevelFilter::DEBUG);
    assert_eq!(level_filter(5), LevelFilter::TRACE);
    assert_eq!(TRACE_LEVEL.resolve(Some(9)), (2, Resolved::OutOfRange(9)));
}
