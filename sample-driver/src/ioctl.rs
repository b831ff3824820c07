//! The driver's own IOCTL surface: codes, the wire format user mode reads,
//! and [`handle_ioctl`] which serves it.
//!
//! User mode opens the driver's device interface
//! ([`GUID_DEVINTERFACE_SAMPLE_DRIVER`]) and sends `METHOD_BUFFERED` IOCTLs:
//!
//! | IOCTL | input | output |
//! |---|---|---|
//! | [`IOCTL_SAMPLE_GET_STATISTICS`] | ignored | a [`StatisticsHeader`] ([`HEADER_SIZE`] bytes) then as many [`TargetRecord`]s ([`RECORD_SIZE`] bytes each) as fit, newest target first |
//! | [`IOCTL_SAMPLE_GET_STATUS_COUNTS`] | ignored | a [`StatusCountsHeader`] ([`STATUS_HEADER_SIZE`] bytes) then as many [`StatusCount`]s ([`STATUS_ENTRY_SIZE`] bytes each) as fit |
//!
//! Every integer is little-endian; the layouts are fixed and versioned by
//! [`STATISTICS_VERSION`]. An output buffer smaller than the header fails with
//! `STATUS_BUFFER_TOO_SMALL`; a buffer that holds the header but not every
//! entry is filled with what fits and succeeds: the header says how many
//! entries exist (`*_total`) and how many were written (`*_returned`), so the
//! caller can retry with a bigger buffer. Unknown codes fail with
//! `STATUS_INVALID_DEVICE_REQUEST`.
//!
//! ```
//! use sample_driver::ioctl::{StatisticsHeader, HEADER_SIZE};
//! let header = StatisticsHeader { records_total: 3, records_returned: 2, completed: 10, ..Default::default() };
//! let mut buf = [0u8; HEADER_SIZE];
//! header.encode(&mut buf);
//! assert_eq!(StatisticsHeader::decode(&buf), Ok(header));
//! ```

use dmf_wdf::{Guid, Result, Status};

use crate::stats::TargetState;

/// `FILE_DEVICE_UNKNOWN`.
pub const FILE_DEVICE_UNKNOWN: u32 = 0x0000_0022;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_READ_ACCESS`.
pub const FILE_READ_ACCESS: u32 = 0x0001;

/// The `CTL_CODE` macro.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The interface the driver exposes for user mode: `InterfaceGuid` of the
/// INX's `[Strings]` ([`crate::identity::INTERFACE_GUID`]).
pub const GUID_DEVINTERFACE_SAMPLE_DRIVER: Guid = crate::identity::INTERFACE_GUID;

/// Per-target figures and totals: [`StatisticsHeader`] + [`TargetRecord`]s.
pub const IOCTL_SAMPLE_GET_STATISTICS: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    0x900,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// Completion statuses seen: [`StatusCountsHeader`] + [`StatusCount`]s.
pub const IOCTL_SAMPLE_GET_STATUS_COUNTS: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    0x901,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// The newest records of the driver's in-flight recorder (its DIMT module's
/// and every target's transitions), as UTF-8 text, one record per line,
/// oldest first; as many whole lines as the output buffer holds. No input.
/// Each line names its target (`Target#index.generation`, or `-` for the
/// module).
pub const IOCTL_SAMPLE_GET_RECORDER: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    0x902,
    METHOD_BUFFERED,
    FILE_READ_ACCESS,
);

/// `"DMFS"`, the first four bytes of the statistics replies.
pub const MAGIC: u32 = u32::from_le_bytes(*b"DMFS");
/// Version of the wire format.
pub const STATISTICS_VERSION: u16 = 1;
/// Size of [`StatisticsHeader`] on the wire.
pub const HEADER_SIZE: usize = 96;
/// Size of [`TargetRecord`] on the wire.
pub const RECORD_SIZE: usize = 192;
/// Bytes of symbolic link a [`TargetRecord`] carries (longer links are cut).
pub const LINK_CAPACITY: usize = RECORD_SIZE - 56;
/// Size of [`StatusCountsHeader`] on the wire.
pub const STATUS_HEADER_SIZE: usize = 16;
/// Size of [`StatusCount`] on the wire.
pub const STATUS_ENTRY_SIZE: usize = 16;

/// Why a reply could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// The magic number is not [`MAGIC`].
    BadMagic,
    /// A version or size this code does not understand.
    UnsupportedLayout,
    /// A target state value out of range.
    BadState(u32),
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("reply truncated"),
            DecodeError::BadMagic => f.write_str("reply does not start with \"DMFS\""),
            DecodeError::UnsupportedLayout => f.write_str("unsupported reply version or layout"),
            DecodeError::BadState(v) => write!(f, "invalid target state {v}"),
        }
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        s
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

/// The header of the [`IOCTL_SAMPLE_GET_STATISTICS`] reply.
///
/// Totals cover every target since the driver started, including targets
/// whose records were dropped from the (bounded) history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatisticsHeader {
    /// Records the driver holds (tracked targets plus recent history).
    pub records_total: u32,
    /// Records that follow this header.
    pub records_returned: u32,
    /// Targets open now (streaming or paused).
    pub targets_open: u32,
    /// Targets opened since the driver started.
    pub targets_opened: u32,
    /// Time since the driver started, 100 ns units.
    pub uptime_100ns: u64,
    /// Requests completed successfully, all targets.
    pub completed: u64,
    /// Requests completed with a failure status, all targets.
    pub errors: u64,
    /// Bytes transferred by successful requests, all targets.
    pub bytes: u64,
    /// Query-removes received.
    pub query_removes: u32,
    /// Query-removes cancelled (the target was reopened).
    pub remove_cancels: u32,
    /// Devices gone (remove-complete, after a query-remove or a surprise removal).
    pub remove_completes: u32,
    /// Targets closed (interface disabled, driver stopping, ...).
    pub closes: u32,
    /// Times the client device left D0 (streaming paused).
    pub power_downs: u32,
    /// Whether the client device is in D0 (1) or not (0).
    pub powered: u32,
    /// Interface arrivals the driver declined or failed to open.
    pub open_failures: u32,
}

impl StatisticsHeader {
    /// Writes the header into the first [`HEADER_SIZE`] bytes of `buf`.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`HEADER_SIZE`].
    pub fn encode(&self, buf: &mut [u8]) {
        let mut w = Writer {
            buf: &mut buf[..HEADER_SIZE],
            at: 0,
        };
        w.u32(MAGIC);
        w.u16(STATISTICS_VERSION);
        w.u16(HEADER_SIZE as u16);
        w.u16(RECORD_SIZE as u16);
        w.u16(0);
        w.u32(self.records_total);
        w.u32(self.records_returned);
        w.u32(self.targets_open);
        w.u32(self.targets_opened);
        w.u32(0);
        w.u64(self.uptime_100ns);
        w.u64(self.completed);
        w.u64(self.errors);
        w.u64(self.bytes);
        w.u32(self.query_removes);
        w.u32(self.remove_cancels);
        w.u32(self.remove_completes);
        w.u32(self.closes);
        w.u32(self.power_downs);
        w.u32(self.powered);
        w.u32(self.open_failures);
        w.u32(0);
        debug_assert_eq!(w.at, HEADER_SIZE);
    }

    /// Reads a header.
    pub fn decode(buf: &[u8]) -> core::result::Result<Self, DecodeError> {
        if buf.len() < HEADER_SIZE {
            return Err(DecodeError::Truncated);
        }
        let mut r = Reader { buf, at: 0 };
        if r.u32() != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u16();
        let header_size = r.u16();
        let record_size = r.u16();
        let _ = r.u16();
        if version != STATISTICS_VERSION
            || usize::from(header_size) != HEADER_SIZE
            || usize::from(record_size) != RECORD_SIZE
        {
            return Err(DecodeError::UnsupportedLayout);
        }
        let records_total = r.u32();
        let records_returned = r.u32();
        let targets_open = r.u32();
        let targets_opened = r.u32();
        let _ = r.u32();
        Ok(StatisticsHeader {
            records_total,
            records_returned,
            targets_open,
            targets_opened,
            uptime_100ns: r.u64(),
            completed: r.u64(),
            errors: r.u64(),
            bytes: r.u64(),
            query_removes: r.u32(),
            remove_cancels: r.u32(),
            remove_completes: r.u32(),
            closes: r.u32(),
            power_downs: r.u32(),
            powered: r.u32(),
            open_failures: r.u32(),
        })
    }
}

/// One target in the [`IOCTL_SAMPLE_GET_STATISTICS`] reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetRecord {
    /// Sequence number of the target (1 for the first opened), unique for
    /// the driver's lifetime; a device that comes back gets a new one.
    pub id: u32,
    /// Where the target is.
    pub state: TargetState,
    /// Requests completed successfully.
    pub completed: u64,
    /// Requests completed with a failure status.
    pub errors: u64,
    /// Bytes transferred by successful requests.
    pub bytes: u64,
    /// When the target was opened, 100 ns since the driver started.
    pub opened_100ns: u64,
    /// When the target was closed or removed, 100 ns since the driver
    /// started; 0 while it is tracked.
    pub ended_100ns: u64,
    /// The last failure status (`STATUS_SUCCESS` if none).
    pub last_error: Status,
    pub(crate) link_len: u16,
    pub(crate) link: [u8; LINK_CAPACITY],
}

impl Default for TargetRecord {
    fn default() -> Self {
        TargetRecord {
            id: 0,
            state: TargetState::Open,
            completed: 0,
            errors: 0,
            bytes: 0,
            opened_100ns: 0,
            ended_100ns: 0,
            last_error: Status::SUCCESS,
            link_len: 0,
            link: [0; LINK_CAPACITY],
        }
    }
}

impl TargetRecord {
    /// Sets the symbolic link, cut to [`LINK_CAPACITY`] bytes at a character
    /// boundary.
    pub fn set_link(&mut self, link: &str) {
        let mut n = link.len().min(LINK_CAPACITY);
        while !link.is_char_boundary(n) {
            n -= 1;
        }
        self.link = [0; LINK_CAPACITY];
        self.link[..n].copy_from_slice(&link.as_bytes()[..n]);
        self.link_len = n as u16;
    }

    /// The symbolic link (possibly cut, see [`TargetRecord::set_link`]).
    pub fn link(&self) -> &str {
        let bytes = &self.link[..usize::from(self.link_len).min(LINK_CAPACITY)];
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// Bytes per second over the target's life (up to `now_100ns`, or to its
    /// end if it ended).
    pub fn bytes_per_second(&self, now_100ns: u64) -> f64 {
        let end = if self.ended_100ns != 0 {
            self.ended_100ns
        } else {
            now_100ns
        };
        let span = end.saturating_sub(self.opened_100ns);
        if span == 0 {
            0.0
        } else {
            self.bytes as f64 * 10_000_000.0 / span as f64
        }
    }

    /// Writes the record into the first [`RECORD_SIZE`] bytes of `buf`.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`RECORD_SIZE`].
    pub fn encode(&self, buf: &mut [u8]) {
        let mut w = Writer {
            buf: &mut buf[..RECORD_SIZE],
            at: 0,
        };
        w.u32(self.id);
        w.u32(self.state as u32);
        w.u64(self.completed);
        w.u64(self.errors);
        w.u64(self.bytes);
        w.u64(self.opened_100ns);
        w.u64(self.ended_100ns);
        w.i32(self.last_error.raw());
        w.u16(self.link_len);
        w.u16(0);
        w.put(&self.link);
        debug_assert_eq!(w.at, RECORD_SIZE);
    }

    /// Reads a record.
    pub fn decode(buf: &[u8]) -> core::result::Result<Self, DecodeError> {
        if buf.len() < RECORD_SIZE {
            return Err(DecodeError::Truncated);
        }
        let mut r = Reader { buf, at: 0 };
        let id = r.u32();
        let raw_state = r.u32();
        let state = TargetState::try_from(raw_state).map_err(DecodeError::BadState)?;
        let completed = r.u64();
        let errors = r.u64();
        let bytes = r.u64();
        let opened_100ns = r.u64();
        let ended_100ns = r.u64();
        let last_error = Status::from_raw(r.i32());
        let link_len = r.u16().min(LINK_CAPACITY as u16);
        let _ = r.u16();
        let mut link = [0u8; LINK_CAPACITY];
        link.copy_from_slice(r.bytes(LINK_CAPACITY));
        Ok(TargetRecord {
            id,
            state,
            completed,
            errors,
            bytes,
            opened_100ns,
            ended_100ns,
            last_error,
            link_len,
            link,
        })
    }
}

/// The header of the [`IOCTL_SAMPLE_GET_STATUS_COUNTS`] reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCountsHeader {
    /// Distinct statuses seen.
    pub entries_total: u32,
    /// Entries that follow.
    pub entries_returned: u32,
    /// Completions whose status did not fit in the driver's table (it holds
    /// [`crate::stats::STATUS_SLOTS`] distinct statuses).
    pub other: u32,
}

impl StatusCountsHeader {
    /// Writes the header into the first [`STATUS_HEADER_SIZE`] bytes of `buf`.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`STATUS_HEADER_SIZE`].
    pub fn encode(&self, buf: &mut [u8]) {
        let mut w = Writer {
            buf: &mut buf[..STATUS_HEADER_SIZE],
            at: 0,
        };
        w.u32(MAGIC);
        w.u32(self.entries_total);
        w.u32(self.entries_returned);
        w.u32(self.other);
    }

    /// Reads a header.
    pub fn decode(buf: &[u8]) -> core::result::Result<Self, DecodeError> {
        if buf.len() < STATUS_HEADER_SIZE {
            return Err(DecodeError::Truncated);
        }
        let mut r = Reader { buf, at: 0 };
        if r.u32() != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        Ok(StatusCountsHeader {
            entries_total: r.u32(),
            entries_returned: r.u32(),
            other: r.u32(),
        })
    }
}

/// One status in the [`IOCTL_SAMPLE_GET_STATUS_COUNTS`] reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusCount {
    /// The completion status.
    pub status: Status,
    /// How many requests completed with it.
    pub count: u64,
}

impl StatusCount {
    /// Writes the entry into the first [`STATUS_ENTRY_SIZE`] bytes of `buf`.
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`STATUS_ENTRY_SIZE`].
    pub fn encode(&self, buf: &mut [u8]) {
        let mut w = Writer {
            buf: &mut buf[..STATUS_ENTRY_SIZE],
            at: 0,
        };
        w.i32(self.status.raw());
        w.u32(0);
        w.u64(self.count);
    }

    /// Reads an entry.
    pub fn decode(buf: &[u8]) -> core::result::Result<Self, DecodeError> {
        if buf.len() < STATUS_ENTRY_SIZE {
            return Err(DecodeError::Truncated);
        }
        let mut r = Reader { buf, at: 0 };
        let status = Status::from_raw(r.i32());
        let _ = r.u32();
        Ok(StatusCount {
            status,
            count: r.u64(),
        })
    }
}

/// Serves one of the driver's IOCTLs from `stats`: writes the reply into
/// `output` and returns its length (the request's `Information`).
///
/// Used by the KMDF `EvtIoDeviceControl` (with the request's buffers) and by
/// the host run. Safe at `DISPATCH_LEVEL`; allocates nothing.
pub fn handle_ioctl<P: dmf_wdf::Platform>(
    stats: &crate::stats::Statistics<P>,
    code: u32,
    input: &[u8],
    output: &mut [u8],
) -> Result<usize> {
    let _ = input;
    match code {
        IOCTL_SAMPLE_GET_RECORDER => {
            let recorder = stats.recorder().ok_or(Status::INVALID_DEVICE_STATE)?;
            Ok(recorder.write_newest(output, None))
        }
        IOCTL_SAMPLE_GET_STATISTICS => {
            if output.len() < HEADER_SIZE {
                return Err(Status::BUFFER_TOO_SMALL);
            }
            let (head, body) = output.split_at_mut(HEADER_SIZE);
            let capacity = body.len() / RECORD_SIZE;
            let mut returned = 0usize;
            let mut header = stats.fill(|record| {
                if returned < capacity {
                    record.encode(&mut body[returned * RECORD_SIZE..]);
                    returned += 1;
                }
            });
            header.records_returned = returned as u32;
            header.encode(head);
            Ok(HEADER_SIZE + returned * RECORD_SIZE)
        }
        IOCTL_SAMPLE_GET_STATUS_COUNTS => {
            if output.len() < STATUS_HEADER_SIZE {
                return Err(Status::BUFFER_TOO_SMALL);
            }
            let (head, body) = output.split_at_mut(STATUS_HEADER_SIZE);
            let capacity = body.len() / STATUS_ENTRY_SIZE;
            let mut header = StatusCountsHeader::default();
            stats.statuses().for_each(|entry| {
                if (header.entries_returned as usize) < capacity {
                    entry.encode(&mut body[header.entries_returned as usize * STATUS_ENTRY_SIZE..]);
                    header.entries_returned += 1;
                }
                header.entries_total += 1;
            });
            header.other = stats.statuses().other().min(u64::from(u32::MAX)) as u32;
            header.encode(head);
            Ok(STATUS_HEADER_SIZE + header.entries_returned as usize * STATUS_ENTRY_SIZE)
        }
        _ => Err(Status::INVALID_DEVICE_REQUEST),
    }
}

/// Decodes a whole [`IOCTL_SAMPLE_GET_STATISTICS`] reply: the header and
/// every record returned.
pub fn decode_statistics(
    reply: &[u8],
) -> core::result::Result<(StatisticsHeader, alloc::vec::Vec<TargetRecord>), DecodeError> {
    let header = StatisticsHeader::decode(reply)?;
    let mut records = alloc::vec::Vec::with_capacity(header.records_returned as usize);
    for i in 0..header.records_returned as usize {
        let at = HEADER_SIZE + i * RECORD_SIZE;
        records.push(TargetRecord::decode(
            reply.get(at..).ok_or(DecodeError::Truncated)?,
        )?);
    }
    Ok((header, records))
}

/// Decodes a whole [`IOCTL_SAMPLE_GET_STATUS_COUNTS`] reply.
pub fn decode_status_counts(
    reply: &[u8],
) -> core::result::Result<(StatusCountsHeader, alloc::vec::Vec<StatusCount>), DecodeError> {
    let header = StatusCountsHeader::decode(reply)?;
    let mut entries = alloc::vec::Vec::with_capacity(header.entries_returned as usize);
    for i in 0..header.entries_returned as usize {
        let at = STATUS_HEADER_SIZE + i * STATUS_ENTRY_SIZE;
        entries.push(StatusCount::decode(
            reply.get(at..).ok_or(DecodeError::Truncated)?,
        )?);
    }
    Ok((header, entries))
}

#[cfg(all(test, not(all(windows, target_env = "msvc"))))]
mod tests {
    use super::*;
    use crate::stats::{Statistics, HISTORY, STATUS_SLOTS};
    use dmf_sim::{Sim, SimConfig};
    use std::sync::Arc;

    fn stats() -> Statistics<Sim> {
        Statistics::new(Sim::new(SimConfig::manual()))
    }

    fn read(stats: &Statistics<Sim>, records: usize) -> (StatisticsHeader, Vec<TargetRecord>) {
        let mut buf = vec![0u8; HEADER_SIZE + records * RECORD_SIZE + RECORD_SIZE - 1];
        let n = handle_ioctl(stats, IOCTL_SAMPLE_GET_STATISTICS, &[], &mut buf).unwrap();
        assert_eq!((n - HEADER_SIZE) % RECORD_SIZE, 0, "whole records only");
        decode_statistics(&buf[..n]).unwrap()
    }

    #[test]
    fn codes_are_ctl_codes_of_the_unknown_device_type() {
        assert_eq!(IOCTL_SAMPLE_GET_STATISTICS, 0x0022_6400);
        assert_eq!(IOCTL_SAMPLE_GET_STATUS_COUNTS, 0x0022_6404);
        assert_eq!(
            crate::driver::IOCTL_TESTS_ZEROBUFFER,
            dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER
        );
        assert_eq!(
            crate::driver::GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
            dmf_sim::GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER
        );
    }

    #[test]
    fn empty_driver_returns_a_bare_header() {
        let s = stats();
        let mut buf = [0xAAu8; HEADER_SIZE];
        assert_eq!(
            handle_ioctl(&s, IOCTL_SAMPLE_GET_STATISTICS, &[1, 2, 3], &mut buf),
            Ok(HEADER_SIZE)
        );
        let h = StatisticsHeader::decode(&buf).unwrap();
        assert_eq!(
            h,
            StatisticsHeader {
                uptime_100ns: h.uptime_100ns,
                ..Default::default()
            }
        );
        assert_eq!(&buf[..4], b"DMFS");
    }

    #[test]
    fn small_buffers_and_unknown_codes_fail_clearly() {
        let s = stats();
        let mut small = [0u8; HEADER_SIZE - 1];
        assert_eq!(
            handle_ioctl(&s, IOCTL_SAMPLE_GET_STATISTICS, &[], &mut small),
            Err(Status::BUFFER_TOO_SMALL)
        );
        let mut small = [0u8; STATUS_HEADER_SIZE - 1];
        assert_eq!(
            handle_ioctl(&s, IOCTL_SAMPLE_GET_STATUS_COUNTS, &[], &mut small),
            Err(Status::BUFFER_TOO_SMALL)
        );
        let mut buf = [0u8; 4096];
        assert_eq!(
            handle_ioctl(&s, IOCTL_SAMPLE_GET_STATISTICS + 4 * 7, &[], &mut buf),
            Err(Status::INVALID_DEVICE_REQUEST)
        );
    }

    #[test]
    fn records_newest_first_truncated_to_the_buffer_with_totals() {
        let s = stats();
        let a = s.target_opened("\\??\\A#{x}");
        let b = s.target_opened("\\??\\B#{x}");
        let c = s.target_opened("\\??\\C#{x}");
        for _ in 0..5 {
            s.record_completion(&a, Status::SUCCESS, 100);
        }
        s.record_completion(&b, Status::SUCCESS, 7);
        s.record_completion(&b, Status::CANCELLED, 100);
        s.set_state(&b, TargetState::QueryRemoved);
        s.set_state(&c, TargetState::Removed);
        s.set_powered(true);

        let (h, records) = read(&s, 2);
        assert_eq!((h.records_total, h.records_returned), (3, 2));
        assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(
            (
                h.completed,
                h.errors,
                h.bytes,
                h.targets_open,
                h.targets_opened
            ),
            (6, 1, 507, 1, 3)
        );
        assert_eq!((h.query_removes, h.remove_completes, h.powered), (1, 1, 1));
        assert_eq!(records[0].state, TargetState::Removed);
        assert_ne!(records[0].ended_100ns, 0);
        assert_eq!(records[1].state, TargetState::QueryRemoved);
        assert_eq!(records[1].last_error, Status::CANCELLED);
        assert_eq!(
            (records[1].completed, records[1].errors, records[1].bytes),
            (1, 1, 7)
        );
        assert_eq!(records[1].link(), "\\??\\B#{x}");

        let (h, records) = read(&s, 10);
        assert_eq!(h.records_returned, 3);
        assert_eq!(records[2].id, 1);
        assert_eq!((records[2].completed, records[2].bytes), (5, 500));
        assert_eq!(records[2].last_error, Status::SUCCESS);
        assert_eq!(records[2].ended_100ns, 0);
    }

    #[test]
    fn remove_cancel_and_close_are_counted_and_ended_targets_stay_ended() {
        let s = stats();
        let t = s.target_opened("l");
        s.set_state(&t, TargetState::QueryRemoved);
        s.set_state(&t, TargetState::Open);
        s.set_state(&t, TargetState::Closed);
        s.set_state(&t, TargetState::Open); // ignored: it ended
        s.set_state(&t, TargetState::Removed); // ignored too
        let (h, records) = read(&s, 1);
        assert_eq!(
            (
                h.query_removes,
                h.remove_cancels,
                h.closes,
                h.remove_completes
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(records[0].state, TargetState::Closed);
    }

    #[test]
    fn long_links_are_cut_at_a_character_boundary() {
        let mut r = TargetRecord::default();
        let link: String = "é".repeat(LINK_CAPACITY); // 2 bytes each
        r.set_link(&link);
        assert_eq!(r.link().len(), LINK_CAPACITY);
        let link = format!("x{}", "é".repeat(LINK_CAPACITY));
        r.set_link(&link);
        assert_eq!(r.link().len(), LINK_CAPACITY - 1);
        let mut buf = [0u8; RECORD_SIZE];
        r.encode(&mut buf);
        assert_eq!(TargetRecord::decode(&buf).unwrap().link(), r.link());
    }

    #[test]
    fn history_is_bounded_but_totals_are_not() {
        let s = stats();
        let targets: Vec<_> = (0..HISTORY + 10)
            .map(|i| s.target_opened(&format!("t{i}")))
            .collect();
        let open = s.target_opened("stays");
        for t in &targets {
            s.record_completion(t, Status::SUCCESS, 1);
            s.set_state(t, TargetState::Closed);
        }
        let (h, records) = read(&s, 1000);
        assert_eq!(h.records_total as usize, HISTORY + 1);
        assert_eq!(h.completed as usize, HISTORY + 10);
        assert_eq!(h.targets_opened as usize, HISTORY + 11);
        // The tracked target is kept, the oldest ended ones went.
        assert!(records.iter().any(|r| r.id == open.id()));
        assert!(records.iter().all(|r| r.id > 10));
    }

    #[test]
    fn status_counts_reply() {
        let s = stats();
        let t = s.target_opened("l");
        for status in [
            Status::SUCCESS,
            Status::SUCCESS,
            Status::CANCELLED,
            Status::DEVICE_REMOVED,
        ] {
            s.record_completion(&t, status, 0);
        }
        let mut buf = [0u8; STATUS_HEADER_SIZE + 2 * STATUS_ENTRY_SIZE + 3];
        let n = handle_ioctl(&s, IOCTL_SAMPLE_GET_STATUS_COUNTS, &[], &mut buf).unwrap();
        assert_eq!(n, STATUS_HEADER_SIZE + 2 * STATUS_ENTRY_SIZE);
        let (h, entries) = decode_status_counts(&buf[..n]).unwrap();
        assert_eq!((h.entries_total, h.entries_returned, h.other), (3, 2, 0));
        assert_eq!(
            entries,
            [
                StatusCount {
                    status: Status::SUCCESS,
                    count: 2
                },
                StatusCount {
                    status: Status::CANCELLED,
                    count: 1
                }
            ]
        );
        // More distinct statuses than slots: the rest is "other".
        for i in 0..STATUS_SLOTS as i32 {
            s.record_completion(&t, Status::from_raw(-1 - i), 0);
        }
        let mut buf = [0u8; 1024];
        let n = handle_ioctl(&s, IOCTL_SAMPLE_GET_STATUS_COUNTS, &[], &mut buf).unwrap();
        let (h, entries) = decode_status_counts(&buf[..n]).unwrap();
        assert_eq!(h.entries_total as usize, STATUS_SLOTS);
        assert_eq!(entries.len(), STATUS_SLOTS);
        assert_eq!(h.other, 3);
    }

    #[test]
    fn decoding_rejects_foreign_replies() {
        let mut buf = [0u8; HEADER_SIZE];
        StatisticsHeader::default().encode(&mut buf);
        assert!(StatisticsHeader::decode(&buf[..HEADER_SIZE - 1]) == Err(DecodeError::Truncated));
        let mut bad = buf;
        bad[0] = b'X';
        assert_eq!(StatisticsHeader::decode(&bad), Err(DecodeError::BadMagic));
        let mut bad = buf;
        bad[4] = 9;
        assert_eq!(
            StatisticsHeader::decode(&bad),
            Err(DecodeError::UnsupportedLayout)
        );
        let mut rec = [0u8; RECORD_SIZE];
        TargetRecord::default().encode(&mut rec);
        rec[4] = 2; // no state 2
        assert_eq!(TargetRecord::decode(&rec), Err(DecodeError::BadState(2)));
        assert_eq!(
            StatusCountsHeader::decode(&[0; 3]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn status_slots_claimed_concurrently_are_never_duplicated() {
        use crate::stats::StatusCounts;
        for _ in 0..50 {
            let counts = Arc::new(StatusCounts::default());
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let counts = Arc::clone(&counts);
                    std::thread::spawn(move || {
                        for i in 0..200i32 {
                            // Every thread races to claim the same 6 statuses.
                            counts.record(Status::from_raw(-1 - (i + t) % 6));
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let mut seen = Vec::new();
            counts.for_each(|e| seen.push(e));
            let mut keys: Vec<i32> = seen.iter().map(|e| e.status.raw()).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), 6, "{seen:?}");
            assert_eq!(seen.len(), 6, "a status got two slots: {seen:?}");
            assert_eq!(seen.iter().map(|e| e.count).sum::<u64>(), 800);
            assert_eq!(counts.other(), 0);
        }
    }

    #[test]
    fn completions_from_many_threads_while_reading_add_up() {
        let s = Arc::new(stats());
        let targets: Vec<_> = (0..4).map(|i| s.target_opened(&format!("t{i}"))).collect();
        let threads: Vec<_> = targets
            .iter()
            .cloned()
            .map(|t| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        let status = if i % 10 == 0 {
                            Status::CANCELLED
                        } else {
                            Status::SUCCESS
                        };
                        s.record_completion(&t, status, 3);
                    }
                })
            })
            .collect();
        let mut last = 0;
        while threads.iter().any(|t| !t.is_finished()) {
            let (h, records) = read(&s, 8);
            // Totals never go backwards and never exceed what was sent.
            assert!(h.completed + h.errors >= last && h.completed + h.errors <= 80_000);
            last = h.completed + h.errors;
            assert_eq!(records.len(), 4);
        }
        for t in threads {
            t.join().unwrap();
        }
        let (h, records) = read(&s, 8);
        assert_eq!((h.completed, h.errors, h.bytes), (72_000, 8_000, 216_000));
        assert!(records
            .iter()
            .all(|r| r.completed == 18_000 && r.errors == 2_000));
        assert_eq!(s.statuses().count(Status::CANCELLED), 8_000);
    }
}
