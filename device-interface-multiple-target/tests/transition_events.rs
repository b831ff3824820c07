//! The transition events of a scripted PnP sequence, as a `tracing`
//! subscriber sees them (and as the module's in-flight recorder keeps
//! them): arrival and open, an accepted query-remove cancelled, a vetoed
//! query-remove, then a surprise removal — exactly these events, in order,
//! with their target and state fields.
//!
//! One test per binary: it installs the process-wide subscriber.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::*;
use dmf_device_interface_multiple_target::DeviceInterfaceMultipleTarget;
use dmf_sim::{NotificationConfig, Sim, SimConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Keeps every DIMT event at `DEBUG` or above as `message field=value...`.
#[derive(Default)]
struct Capture(Mutex<Vec<String>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata
            .target()
            .starts_with("dmf_device_interface_multiple_target")
            && *metadata.level() <= tracing::Level::DEBUG
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_scripted_pnp_sequence_produces_exactly_its_transition_events() {
    let capture = Arc::new(Capture::default());
    tracing::subscriber::set_global_default(Arc::clone(&capture)).unwrap();

    // Interfaces present at registration are reported before it returns,
    // so the order of the first events is fixed.
    let sim = Sim::new(SimConfig::default().with_notifications(NotificationConfig {
        existing_inline_per_million: 1_000_000,
        repeat_arrival_per_million: 0,
    }));
    let id = add_device(&sim, "dev");
    let dimt = DeviceInterfaceMultipleTarget::new(
        &sim,
        config(dmf_device_interface_multiple_target::PnpRegisterWhen::Create),
        Recorder::default(),
    )
    .unwrap();
    sim.bus().flush().unwrap();
    let t = dimt.targets()[0];
    let link = dimt.symbolic_link(t).unwrap();
    // An accepted query-remove, then cancelled.
    sim.bus().query_remove_then_cancel(id).unwrap();
    // A vetoed one.
    dimt.client()
        .veto_query_remove
        .store(true, Ordering::SeqCst);
    sim.bus().query_remove_then_cancel(id).unwrap();
    // The device goes without asking.
    sim.bus().surprise_remove(id).unwrap();
    sim.bus().flush().unwrap();
    let dimt_journal = dimt.journal().clone();
    drop(dimt);
    assert_eq!(sim.leak_check(std::time::Duration::from_secs(10)), Ok(()));

    let th = format!("target_handle={t:?}");
    let expected = [
        "DIMT: created option=Create".to_owned(),
        format!("DIMT: interface arrived link={link:?}"),
        format!("DIMT: target opened {th} link={link:?}"),
        format!("DIMT: state change state=Open {th}"),
        "DIMT: registered for interface notifications".to_owned(),
        format!("DIMT: state change state=QueryRemove {th}"),
        format!("DIMT: target closed for query-remove {th}"),
        format!("DIMT: target reopened {th}"),
        format!("DIMT: state change state=QueryRemoveCancelled {th}"),
        format!("DIMT: state change state=QueryRemove {th}"),
        format!("DIMT: client vetoed query-remove status=STATUS_UNSUCCESSFUL {th}"),
        format!("DIMT: state change state=QueryRemoveComplete {th}"),
        format!("DIMT: state change state=Close {th}"),
        format!("DIMT: target destroyed {th}"),
        format!("DIMT: interface removed link={link:?}"),
        "DIMT: unregistered from interface notifications".to_owned(),
        "DIMT: closed".to_owned(),
    ];
    let got = capture.0.lock().unwrap().clone();
    assert_eq!(got, expected);
    // The module's in-flight recorder holds the same transitions, the
    // target's under its handle, with those of the target's transport.
    let mut records = String::new();
    dimt_journal
        .recorder()
        .write_subject(&mut records, t.to_u64())
        .unwrap();
    let kept: Vec<&str> = records
        .lines()
        .map(|l| l.splitn(5, ' ').nth(4).unwrap())
        .collect();
    let of_target: Vec<&String> = expected.iter().filter(|e| e.contains(&th)).collect();
    let dimt_kept: Vec<&str> = kept
        .iter()
        .copied()
        .filter(|r| r.starts_with("DIMT:"))
        .collect();
    assert_eq!(dimt_kept, of_target);
    assert_eq!(
        kept[0],
        "RequestTarget: opened passive_level=false contexts=8"
    );
    assert_eq!(
        kept[kept.len() - 2],
        "RequestTarget: closed forgotten_reuse_requests=0"
    );
}
