//! The kernel's `tracing` sink: every event of the layers as one
//! `DbgPrintEx` line, where Windows driver developers look for them (WinDbg,
//! DebugView, `!dbgprint`).
//!
//! * **Component and levels.** Lines go to component `DPFLTR_IHVDRIVER_ID`
//!   (77). `tracing` levels map to the filter levels of `DbgPrintEx`:
//!
//!   | `tracing` | `DbgPrintEx` level | shown by default |
//!   |---|---|---|
//!   | `ERROR` | 0 (`DPFLTR_ERROR_LEVEL`) | yes |
//!   | `WARN` | 1 (`DPFLTR_WARNING_LEVEL`) | after `ed nt!Kd_IHVDRIVER_Mask 0x1f` |
//!   | `INFO` | 2 (`DPFLTR_TRACE_LEVEL`) | after the same |
//!   | `DEBUG` | 3 (`DPFLTR_INFO_LEVEL`) | after the same |
//!   | `TRACE` | 4 (mask bit 4) | after the same |
//!
//!   (The debugger's component mask, or the `IHVDRIVER` value under
//!   `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Debug Print Filter`,
//!   decides what reaches the debugger.)
//! * **Filter.** Which events are formatted at all is the driver's own
//!   setting [`TRACE_LEVEL`] (`TraceLevel`, a `REG_DWORD` under the
//!   service's `Parameters` key: 0 off, 1 error, 2 warn — the default —,
//!   3 info, 4 debug, 5 trace), read by the driver shell at `DriverEntry`.
//!   Events above it cost one comparison.
//! * **Any IRQL up to `DISPATCH_LEVEL`, no heap.** An event is formatted on
//!   the stack into a fixed [`Line`] (cut at
//!   [`LINE_BYTES`] - 1 bytes) and printed with `"%s"` (no wide-character
//!   format, which `DbgPrintEx` forbids above `PASSIVE_LEVEL`). Spans are not
//!   recorded (the layers do not use them).
//!
//! The formatting and the settings are plain logic, tested on any host
//! ([`format_event`], [`dpfltr_level`], [`level_filter`]); the sink itself
//! (`install`, with the `DbgPrintEx` call) exists in the kernel build.

use core::fmt::{self, Write};

use tracing_core::field::{Field, Visit};
use tracing_core::{Event, Level, LevelFilter};

use crate::line::Line;
use crate::parameters::UlongSetting;

/// `DPFLTR_IHVDRIVER_ID` (`dpfilter.h`): the component of third-party drivers.
pub const DPFLTR_IHVDRIVER_ID: u32 = 77;

/// Bytes of one printed line, the NUL included (`DbgPrintEx` truncates at
/// 512; the stack is the limit here).
pub const LINE_BYTES: usize = 256;

/// The driver setting that filters events: `TraceLevel` under the service's
/// `Parameters` key, 0 (off) to 5 (trace), default 2 (warnings and errors).
pub const TRACE_LEVEL: UlongSetting = UlongSetting {
    name: "TraceLevel",
    default: 2,
    min: 0,
    max: 5,
};

/// The filter a [`TRACE_LEVEL`] value selects (values above 5 select trace).
pub const fn level_filter(value: u32) -> LevelFilter {
    match value {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The `DbgPrintEx` level of a `tracing` level (see the module's table).
pub fn dpfltr_level(level: &Level) -> u32 {
    match *level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

/// Writes the message first, then ` name=value` for every other field.
struct Fields<'a, const N: usize> {
    message: &'a mut Line<N>,
    rest: &'a mut Line<N>,
}

impl<const N: usize> Visit for Fields<'_, N> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = self.message.write_str(value);
        } else {
            let _ = write!(self.rest, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

/// Formats `event` as the sink prints it: `<driver>: <LEVEL> <message>
/// <name>=<value>...`, cut to fit `line`. Allocates nothing.
pub fn format_event<const N: usize>(driver: &str, event: &Event<'_>, line: &mut Line<N>) {
    let mut message = Line::<N>::new();
    let mut rest = Line::<N>::new();
    event.record(&mut Fields {
        message: &mut message,
        rest: &mut rest,
    });
    let _ = write!(
        line,
        "{driver}: {} {}{}",
        event.metadata().level(),
        message.as_str(),
        rest.as_str()
    );
}

#[cfg(kmdf)]
pub use sink::install;

#[cfg(kmdf)]
mod sink {
    use core::ffi::{c_char, CStr};
    use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    use tracing_core::span::{Attributes, Id, Record};
    use tracing_core::subscriber::Interest;
    use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
    use wdk_sys::ntddk::DbgPrintEx;

    use super::{dpfltr_level, format_event, DPFLTR_IHVDRIVER_ID, LINE_BYTES};
    use crate::line::Line;

    /// The driver's name (a `'static` C string), prefixed to each line.
    static NAME: AtomicPtr<c_char> = AtomicPtr::new(c"driver".as_ptr().cast_mut());
    /// The most verbose level printed, as `level_rank` (0: off).
    static MAX: AtomicUsize = AtomicUsize::new(0);

    /// `tracing` to `DbgPrintEx`; see the module docs. Its settings are the
    /// statics above (there is one sink per driver image).
    struct DbgPrintSink;

    /// 0 for off, 1 error ... 5 trace.
    fn filter_rank(filter: LevelFilter) -> usize {
        match filter.into_level() {
            None => 0,
            Some(level) => level_rank(&level),
        }
    }

    fn level_rank(level: &tracing_core::Level) -> usize {
        dpfltr_level(level) as usize + 1
    }

    impl DbgPrintSink {
        fn name(&self) -> &'static str {
            let name = NAME.load(Ordering::Acquire);
            // SAFETY: `name` only ever holds pointers to `'static` C strings
            // (the initial literal, or the one `install` was given).
            unsafe { CStr::from_ptr(name) }.to_str().unwrap_or("driver")
        }
    }

    impl Subscriber for DbgPrintSink {
        fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
            // The filter is fixed once installed: decide each callsite once.
            if self.enabled(metadata) {
                Interest::always()
            } else {
                Interest::never()
            }
        }

        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            level_rank(metadata.level()) <= MAX.load(Ordering::Relaxed)
        }

        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(match MAX.load(Ordering::Relaxed) {
                0 => LevelFilter::OFF,
                1 => LevelFilter::ERROR,
                2 => LevelFilter::WARN,
                3 => LevelFilter::INFO,
                4 => LevelFilter::DEBUG,
                _ => LevelFilter::TRACE,
            })
        }

        fn new_span(&self, _span: &Attributes<'_>) -> Id {
            // Spans are not recorded; every span gets the same id.
            Id::from_u64(1)
        }

        fn record(&self, _span: &Id, _values: &Record<'_>) {}

        fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut line = Line::<LINE_BYTES>::new();
            format_event(self.name(), event, &mut line);
            // SAFETY: `DbgPrintEx` may be called at IRQL <= DIRQL with a
            // format without wide-character conversions; "%s" consumes the
            // one argument, a NUL-terminated string alive for the call.
            unsafe {
                DbgPrintEx(
                    DPFLTR_IHVDRIVER_ID,
                    dpfltr_level(event.metadata().level()),
                    c"%s\n".as_ptr().cast(),
                    line.as_ptr(),
                );
            }
        }

        fn enter(&self, _span: &Id) {}

        fn exit(&self, _span: &Id) {}
    }

    /// Installs the sink as the image's global `tracing` subscriber, with
    /// `filter` (see [`level_filter`](super::level_filter)) and `name`
    /// prefixed to every line. The first call wins (the global subscriber
    /// cannot be replaced): a later call returns `false`, its name and
    /// filter applying to the sink already installed. Call it from `DriverEntry` (the driver shell does);
    /// it allocates once, for the dispatcher.
    pub fn install(name: &'static CStr, filter: LevelFilter) -> bool {
        NAME.store(name.as_ptr().cast_mut(), Ordering::Release);
        MAX.store(filter_rank(filter), Ordering::Release);
        tracing_core::dispatcher::set_global_default(Dispatch::new(DbgPrintSink)).is_ok()
    }
}
