//! The in-flight recorder: the most recent events of one module instance,
//! kept in a fixed ring, readable as text (the layers' counterpart of KMDF's
//! own in-flight recorder, which `!wdfkd.wdflogdump` prints).
//!
//! * **Allocation-free.** A [`Recorder`] is created once with its module;
//!   recording formats into a fixed-capacity [`ArrayString`] on the stack and
//!   copies it into the ring under the platform's spin lock. Nothing touches
//!   the heap after creation.
//! * **Any context.** Recording takes only the spin lock (held for a copy of
//!   one record), so it is safe in completion routines and other dispatch
//!   context. Reading ([`Recorder::write_to`]) holds the spin lock while it
//!   writes, so the writer it is given must not block either (a `String`, a
//!   fixed buffer, an IOCTL output buffer).
//! * **Text.** Each record is one line: sequence number, time since the
//!   recorder was created, level, the subject (a target, `Target#index.generation`,
//!   or `-` for the module itself) and the message with its fields.
//! * **One per module tree.** A module writes through a [`Journal`]: its
//!   recorder and the subject of its records. A module that owns others
//!   hands them journals of its own recorder (a continuous request target
//!   its buffer pools and request target; a multiple-target module each
//!   target's transport, with the target as subject), so one ring tells
//!   the story of the whole tree in order, and a target's records can be
//!   picked out of it ([`Recorder::write_subject`]). A message longer than
//!   [`RECORD_TEXT`] bytes is cut at a character boundary and ends in `~`.
//!
//! The layers write to their recorder at every transition they also report
//! through `tracing` (the [`transition!`](crate::transition) macro does both),
//! so when a target misbehaves its last transitions are there to read even
//! with no subscriber installed: the simulator's watchdog and leak checks,
//! the soak, and the sample driver's recorder IOCTL print them.
//!
//! Every recorder is also shown to its platform
//! ([`Platform::keep_recorder`] when it is created,
//! [`Platform::recorder_retired`] when its module drops it): the simulator
//! keeps the live ones and the text of the most recently retired ones, and
//! prints them when its leak check or its completion-routine watchdog
//! fails; the kernel backend keeps nothing (a driver reads its modules'
//! recorders itself, e.g. through an IOCTL).
//! The recorder lives inside its module's allocation, which in a driver is
//! non-paged pool (the kernel allocator the layers use), so it can be
//! written and read at `DISPATCH_LEVEL`.
//!
//! ```
//! use dmf_sim::{Sim, SimConfig};
//! use dmf_wdf::recorder::Recorder;
//!
//! let sim = Sim::new(SimConfig::default());
//! let recorder = Recorder::<Sim, 4>::new(&sim, format_args!("demo"));
//! for i in 0..6 {
//!     recorder.record(tracing::Level::DEBUG, 1 << 32 | 7, format_args!("event {i}"));
//! }
//! let mut text = String::new();
//! recorder.write_to(&mut text).unwrap();
//! // Only the last four are kept, oldest first.
//! assert_eq!(text.lines().count(), 4);
//! assert!(text.lines().next().unwrap().ends_with("event 2"));
//! assert!(text.lines().last().unwrap().contains("DEBUG Target#7.1 event 5"));
//! assert_eq!(recorder.total(), 6);
//! ```

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::fmt::{self, Write};

use arrayvec::ArrayString;
use tracing::Level;

use crate::sync::Lock;
use crate::Platform;

/// Bytes of text kept per record (longer messages are cut and end in `~`).
pub const RECORD_TEXT: usize = 120;

/// Records a module keeps by default.
pub const DEFAULT_RECORDS: usize = 128;

/// Bytes of a recorder's name (longer names are cut).
pub const NAME_TEXT: usize = 56;

/// The subject of a record about the module itself rather than one target.
/// Other subjects are target handles packed as `generation << 32 | index`
/// (generation never 0), shown as `Target#index.generation`.
pub const MODULE: u64 = 0;

/// A recorder as its platform sees it: named, printable
/// ([`Platform::keep_recorder`], [`Platform::recorder_retired`]).
pub trait RecorderDump: Send + Sync + 'static {
    /// The module it belongs to, e.g. `DIMT {GUID}`.
    fn name(&self) -> &str;
    /// Writes the records kept, oldest first, one line each (see
    /// [`Recorder::write_to`]).
    fn dump(&self, w: &mut dyn Write) -> fmt::Result;
}

/// One recorded event.
#[derive(Clone, Copy, Debug)]
pub struct Record {
    /// Position in the recorder's history (the first record is 1).
    pub seq: u64,
    /// Platform time ([`Platform::now_100ns`]) when it was recorded.
    pub time_100ns: u64,
    /// Its level.
    pub level: Level,
    /// What it is about: a target handle (`generation << 32 | index`), or
    /// [`MODULE`].
    pub subject: u64,
    /// The message and its fields, cut to [`RECORD_TEXT`] bytes.
    pub text: ArrayString<RECORD_TEXT>,
}

impl fmt::Display for Record {
    /// `#seq +seconds LEVEL subject text`, the subject `-` for [`MODULE`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.time_100ns / 10;
        write!(
            f,
            "#{} +{}.{:06} {} ",
            self.seq,
            micros / 1_000_000,
            micros % 1_000_000,
            self.level
        )?;
        if self.subject == MODULE {
            f.write_str("- ")?;
        } else {
            write!(
                f,
                "Target#{}.{} ",
                self.subject as u32,
                (self.subject >> 32) as u32
            )?;
        }
        f.write_str(&self.text)
    }
}

/// The ring of one recorder. Its storage is allocated once, on the heap,
/// when the recorder is created (never built on the stack: a kernel stack
/// is 24 KiB and a ring is bigger).
///
/// # Invariants
///
/// `records.capacity() >= N` and `records.len() <= N`, so pushing never
/// reallocates; once `records.len() == N`, `next` is the index of the
/// oldest record (the next to be overwritten), else `next == records.len()`.
struct Ring<const N: usize> {
    records: Vec<Record>,
    next: usize,
    total: u64,
}

impl<const N: usize> Ring<N> {
    fn is_full(&self) -> bool {
        self.records.len() == N
    }

    /// The records kept, oldest first.
    fn in_order(&self) -> impl Iterator<Item = &Record> + Clone {
        let split = if self.is_full() {
            self.next
        } else {
            self.records.len()
        };
        let (newer, older) = self.records.split_at(split);
        older.iter().chain(newer.iter())
    }
}

/// The in-flight recorder of one module instance: its last `N` events.
///
/// See the [module documentation](self).
pub struct Recorder<P: Platform, const N: usize = DEFAULT_RECORDS> {
    name: ArrayString<NAME_TEXT>,
    platform: P,
    created_100ns: u64,
    ring: P::Lock<Ring<N>>,
}

impl<P: Platform, const N: usize> fmt::Debug for Recorder<P, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("name", &self.name.as_str())
            .field("capacity", &N)
            .field("total", &self.total())
            .finish()
    }
}

/// A `fmt::Write` into a fixed string that keeps what fits and marks the cut.
struct Truncating<'a> {
    text: &'a mut ArrayString<RECORD_TEXT>,
    cut: bool,
}

impl Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        if self.text.try_push_str(s).is_ok() {
            return Ok(());
        }
        // Keep one byte for the cut mark, and cut at a character boundary.
        let room = RECORD_TEXT - 1 - self.text.len().min(RECORD_TEXT - 1);
        let mut end = room.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.truncate(self.text.len().min(RECORD_TEXT - 1));
        let _ = self.text.try_push_str(&s[..end]);
        let _ = self.text.try_push('~');
        self.cut = true;
        Ok(())
    }
}

/// Formats `args` into a record text, cut to [`RECORD_TEXT`] bytes.
pub fn format_text(args: fmt::Arguments<'_>) -> ArrayString<RECORD_TEXT> {
    let mut text = ArrayString::new();
    let _ = Truncating {
        text: &mut text,
        cut: false,
    }
    .write_fmt(args);
    text
}

/// `args` cut to a recorder name.
fn format_name(args: fmt::Arguments<'_>) -> ArrayString<NAME_TEXT> {
    let text = format_text(args);
    let mut end = text.len().min(NAME_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut name = ArrayString::new();
    name.push_str(&text[..end]);
    name
}

impl<P: Platform, const N: usize> Recorder<P, N> {
    /// An empty recorder named `name` (cut to [`NAME_TEXT`] bytes), shown
    /// to the platform ([`Platform::keep_recorder`]); times are reported
    /// relative to now. Allocates twice (the `Arc` and the ring), here only.
    pub fn new(platform: &P, name: fmt::Arguments<'_>) -> Arc<Self> {
        let recorder = Arc::new(Recorder {
            name: format_name(name),
            platform: platform.clone(),
            created_100ns: platform.now_100ns(),
            ring: P::Lock::new(Ring {
                records: Vec::with_capacity(N),
                next: 0,
                total: 0,
            }),
        });
        let weak: Weak<dyn RecorderDump> = Arc::downgrade(&recorder) as Weak<dyn RecorderDump>;
        platform.keep_recorder(weak);
        recorder
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records an event about `subject` (see [`Record::subject`]). Any
    /// context; allocates nothing.
    pub fn record(&self, level: Level, subject: u64, args: fmt::Arguments<'_>) {
        if N == 0 {
            return;
        }
        let text = format_text(args);
        let time_100ns = self.platform.now_100ns().saturating_sub(self.created_100ns);
        let mut ring = self.ring.lock();
        ring.total += 1;
        let record = Record {
            seq: ring.total,
            time_100ns,
            level,
            subject,
            text,
        };
        if ring.is_full() {
            let next = ring.next;
            ring.records[next] = record;
            ring.next = (next + 1) % N;
        } else {
            ring.records.push(record);
            ring.next = ring.records.len() % N;
        }
    }

    /// Events recorded since creation (also those overwritten since).
    pub fn total(&self) -> u64 {
        self.ring.lock().total
    }

    /// Calls `f` with every record kept, oldest first, while holding the
    /// recorder's spin lock (so `f` must not block or record here).
    pub fn for_each(&self, mut f: impl FnMut(&Record)) {
        self.ring.lock().in_order().for_each(&mut f);
    }

    /// Writes every record kept, oldest first, one line each (see
    /// [`Record`]'s `Display`), under the spin lock.
    pub fn write_to(&self, w: &mut impl Write) -> fmt::Result {
        self.write_filtered(w, |_| true)
    }

    /// As [`write_to`](Self::write_to), only the records of `subject`.
    pub fn write_subject(&self, w: &mut impl Write, subject: u64) -> fmt::Result {
        self.write_filtered(w, |r| r.subject == subject)
    }

    fn write_filtered<W: Write + ?Sized>(
        &self,
        w: &mut W,
        keep: impl Fn(&Record) -> bool,
    ) -> fmt::Result {
        let mut result = Ok(());
        self.for_each(|r| {
            if result.is_ok() && keep(r) {
                result = writeln!(w, "{r}");
            }
        });
        result
    }
}

/// Counts the bytes written through it.
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes into a byte buffer until it is full.
struct Fill<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Write for Fill<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.out.len() {
            return Err(fmt::Error);
        }
        self.out[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<P: Platform, const N: usize> Recorder<P, N> {
    /// Writes the newest records that fit into `out` as text (one line
    /// each, as [`write_to`](Self::write_to), oldest of them first), only
    /// those of `subject` if given; returns the bytes written, always whole
    /// lines. Allocates nothing and holds only the spin lock: for an IOCTL
    /// reply at `DISPATCH_LEVEL`.
    pub fn write_newest(&self, out: &mut [u8], subject: Option<u64>) -> usize {
        let keep = |r: &Record| subject.is_none_or(|s| r.subject == s);
        let ring = self.ring.lock();
        let records = || ring.in_order().filter(|r| keep(r));
        let mut total = Count(0);
        records().for_each(|r| {
            let _ = writeln!(total, "{r}");
        });
        let mut excess = total.0.saturating_sub(out.len());
        let mut fill = Fill { out, len: 0 };
        for r in records() {
            if excess > 0 {
                let mut line = Count(0);
                let _ = writeln!(line, "{r}");
                excess = excess.saturating_sub(line.0);
                continue;
            }
            let before = fill.len;
            if writeln!(fill, "{r}").is_err() {
                fill.len = before;
                break;
            }
        }
        fill.len
    }
}

impl<P: Platform, const N: usize> Drop for Recorder<P, N> {
    /// Shows the final records to the platform ([`Platform::recorder_retired`]).
    fn drop(&mut self) {
        self.platform.recorder_retired(&*self);
    }
}

impl<P: Platform, const N: usize> RecorderDump for Recorder<P, N> {
    fn name(&self) -> &str {
        &self.name
    }

    fn dump(&self, w: &mut dyn Write) -> fmt::Result {
        self.write_filtered(w, |_| true)
    }
}

/// Where a module records: a recorder and the subject of its records
/// (see the [module documentation](self)). Cloning shares the recorder.
pub struct Journal<P: Platform> {
    recorder: Arc<Recorder<P>>,
    subject: u64,
}

impl<P: Platform> Clone for Journal<P> {
    fn clone(&self) -> Self {
        Journal {
            recorder: Arc::clone(&self.recorder),
            subject: self.subject,
        }
    }
}

impl<P: Platform> fmt::Debug for Journal<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("recorder", &self.recorder.name())
            .field("subject", &self.subject)
            .finish()
    }
}

impl<P: Platform> Journal<P> {
    /// A journal on a new recorder named `name`, about the module itself.
    pub fn new(platform: &P, name: fmt::Arguments<'_>) -> Self {
        Journal {
            recorder: Recorder::new(platform, name),
            subject: MODULE,
        }
    }

    /// The same recorder, about `subject` (a target handle packed as
    /// `generation << 32 | index`).
    pub fn about(&self, subject: u64) -> Self {
        Journal {
            recorder: Arc::clone(&self.recorder),
            subject,
        }
    }

    /// The recorder.
    pub fn recorder(&self) -> &Arc<Recorder<P>> {
        &self.recorder
    }

    /// The subject of its records.
    pub fn subject(&self) -> u64 {
        self.subject
    }

    /// Records an event (see [`Recorder::record`]).
    pub fn record(&self, level: Level, args: fmt::Arguments<'_>) {
        self.recorder.record(level, self.subject, args);
    }
}

/// Emits a `tracing` event and records it in a module's [`Journal`]: the
/// one way the layers report a transition.
///
/// `transition!(journal, LEVEL, "message", field = value, ?field, field, ...)`:
/// the event carries the fields (formatted with `Debug`), the record the
/// message followed by ` field=value` for each. Fields are evaluated once.
///
/// ```
/// use dmf_sim::{Sim, SimConfig};
/// use dmf_wdf::recorder::Journal;
///
/// let sim = Sim::new(SimConfig::default());
/// let journal = Journal::new(&sim, format_args!("CRT"));
/// let status = dmf_wdf::Status::CANCELLED;
/// dmf_wdf::transition!(journal, DEBUG, "CRT: stream stopped", in_flight = 0, ?status);
/// dmf_wdf::transition!(journal.about(7 << 32 | 2), WARN, "CRT: target gone");
/// let mut text = String::new();
/// journal.recorder().write_to(&mut text).unwrap();
/// let lines: Vec<&str> = text.lines().collect();
/// assert!(lines[0].ends_with("DEBUG - CRT: stream stopped in_flight=0 status=STATUS_CANCELLED"), "{text}");
/// assert!(lines[1].ends_with("WARN Target#2.7 CRT: target gone"), "{text}");
/// ```
#[macro_export]
macro_rules! transition {
    ($journal:expr, $level:ident, $message:literal $(, $($field:tt)*)?) => {
        $crate::__transition_fields!(@go ($journal) ($level) ($message) [] [] $($($field)*)?)
    };
}

/// The field muncher of [`transition!`]; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __transition_fields {
    // `?name` shorthand.
    (@go $r:tt $l:tt $m:tt [$($n:ident = $v:expr),*] [] ? $name:ident $(, $($rest:tt)*)?) => {
        $crate::__transition_fields!(@go $r $l $m [$($n = $v,)* $name = $name] [] $($($rest)*)?)
    };
    // `%name` shorthand.
    (@go $r:tt $l:tt $m:tt [$($n:ident = $v:expr),*] [] % $name:ident $(, $($rest:tt)*)?) => {
        $crate::__transition_fields!(@go $r $l $m [$($n = $v,)* $name = $name] [] $($($rest)*)?)
    };
    // `name = value`.
    (@go $r:tt $l:tt $m:tt [$($n:ident = $v:expr),*] [] $name:ident = $value:expr $(, $($rest:tt)*)?) => {
        $crate::__transition_fields!(@go $r $l $m [$($n = $v,)* $name = $value] [] $($($rest)*)?)
    };
    // `name` shorthand.
    (@go $r:tt $l:tt $m:tt [$($n:ident = $v:expr),*] [] $name:ident $(, $($rest:tt)*)?) => {
        $crate::__transition_fields!(@go $r $l $m [$($n = $v,)* $name = $name] [] $($($rest)*)?)
    };
    // Done.
    (@go ($journal:expr) ($level:ident) ($message:literal) [$($n:ident = $v:expr),*] []) => {{
        $(let $n = &$v;)*
        $crate::__tracing::event!($crate::__tracing::Level::$level, $($n = ?$n,)* $message);
        $journal.record(
            $crate::__tracing::Level::$level,
            format_args!(concat!($message $(, " ", stringify!($n), "={:?}")*) $(, $n)*),
        );
    }};
}
