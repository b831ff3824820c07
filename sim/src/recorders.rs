//! The in-flight recorders of the modules running on a simulator
//! ([`Platform::keep_recorder`](dmf_wdf::Platform::keep_recorder)): the live
//! ones, and the final text of the most recently dropped ones, printed when
//! the leak check ([`Sim::leak_check`](crate::Sim::leak_check)) or the
//! completion-routine watchdog fails.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex, Weak};

use dmf_wdf::recorder::RecorderDump;

/// Dropped recorders whose text is kept.
pub const RETIRED_KEPT: usize = 16;

#[derive(Default)]
pub(crate) struct Recorders {
    live: Mutex<Vec<Weak<dyn RecorderDump>>>,
    /// `(name, text)` of dropped recorders, oldest first.
    retired: Mutex<VecDeque<(String, String)>>,
}

impl Recorders {
    pub(crate) fn keep(&self, recorder: Weak<dyn RecorderDump>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|r| r.strong_count() > 0);
        live.push(recorder);
    }

    pub(crate) fn retire(&self, recorder: &dyn RecorderDump) {
        let mut text = String::new();
        let _ = recorder.dump(&mut text);
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        if retired.len() == RETIRED_KEPT {
            retired.pop_front();
        }
        retired.push_back((recorder.name().to_owned(), text));
    }

    /// Every live recorder, then the retired ones, each under a heading.
    pub(crate) fn dump(&self) -> String {
        let live: Vec<Arc<dyn RecorderDump>> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let retired = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = format!(
            "in-flight recorders: {} live, {} dropped (newest {RETIRED_KEPT} kept)\n",
            live.len(),
            retired.len()
        );
        for r in &live {
            let _ = writeln!(out, "== {} (live) ==", r.name());
            let _ = r.dump(&mut out);
        }
        for (name, text) in &retired {
            let _ = writeln!(out, "== {name} (dropped) ==");
            out.push_str(text);
        }
        // A module may have gone meanwhile: its recorder is dropped here,
        // after every lock above is released (its drop retires it).
        drop(live);
        out
    }
}
