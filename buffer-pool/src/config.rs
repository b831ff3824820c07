//! Configuration (`DMF_CONFIG_BufferPool`) and the small enums of the module.

use dmf_wdf::Status;

/// The role of a pool (`BufferPool_Mode`).
///
/// In Rust the role is the pool's type: a [`BufferPool`](crate::BufferPool)
/// is a source, a [`SinkPool`](crate::SinkPool) is a sink. DMF's
/// `BufferPool_Mode_Invalid` (a zeroed config) has no counterpart: an invalid
/// mode cannot be expressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BufferPoolMode {
    /// `BufferPool_Mode_Source`: allocates its buffers and is their home.
    Source = 1,
    /// `BufferPool_Mode_Sink`: allocates nothing; holds buffers of any source.
    Sink = 2,
}

/// Memory kind of a source pool's buffers (`POOL_TYPE`).
///
/// Recorded and reported; the platform seam's
/// [`allocate`](dmf_wdf::Platform::allocate) always hands out memory that may
/// be touched in dispatch context (what `NonPagedPoolNx` gives), which is
/// valid for every kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PoolType {
    /// `NonPagedPoolNx`, DMF's default.
    #[default]
    NonPagedPoolNx,
    /// `NonPagedPool`.
    NonPagedPool,
    /// `PagedPool` (DMF requires a passive-level module for it).
    PagedPool,
}

/// Settings of a source pool (`DMF_CONFIG_BufferPool.Mode.SourceSettings`).
///
/// `Default` is DMF's `DMF_CONFIG_BufferPool_AND_ATTRIBUTES_INIT`: everything
/// zero and `pool_type = NonPagedPoolNx` (which [`BufferPool::new`](crate::BufferPool::new)
/// rejects: a source needs a buffer size).
///
/// ```
/// use dmf_buffer_pool::BufferPoolConfig;
/// let config = BufferPoolConfig::new(16, 32)
///     .with_context_size(8)
///     .with_look_aside(true)
///     .with_timers(true);
/// assert_eq!(config.buffer_count, 16);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BufferPoolConfig {
    /// `BufferCount`: buffers allocated when the pool opens. Also the most
    /// buffers the pool's list ever holds.
    pub buffer_count: u32,
    /// `BufferSize`: usable bytes per buffer; must be > 0.
    pub buffer_size: u32,
    /// `BufferContextSize`: bytes of per-buffer client context (0 allowed).
    pub buffer_context_size: u32,
    /// `EnableLookAside`: when the pool is empty, `get` allocates one more
    /// buffer; a later put frees a buffer again, so the pool shrinks back to
    /// `buffer_count`.
    pub enable_look_aside: bool,
    /// `CreateWithTimer`: give every buffer a timer so that it can be put
    /// into a sink with an expiry ([`SinkPool::put_with_timer`](crate::SinkPool::put_with_timer)).
    pub create_with_timer: bool,
    /// `PoolType`.
    pub pool_type: PoolType,
}

impl BufferPoolConfig {
    /// `buffer_count` buffers of `buffer_size` bytes, no context, no
    /// look-aside, no timers, `NonPagedPoolNx`.
    pub const fn new(buffer_count: u32, buffer_size: u32) -> Self {
        BufferPoolConfig {
            buffer_count,
            buffer_size,
            buffer_context_size: 0,
            enable_look_aside: false,
            create_with_timer: false,
            pool_type: PoolType::NonPagedPoolNx,
        }
    }

    /// Sets [`buffer_context_size`](Self::buffer_context_size).
    pub const fn with_context_size(mut self, bytes: u32) -> Self {
        self.buffer_context_size = bytes;
        self
    }

    /// Sets [`enable_look_aside`](Self::enable_look_aside).
    pub const fn with_look_aside(mut self, on: bool) -> Self {
        self.enable_look_aside = on;
        self
    }

    /// Sets [`create_with_timer`](Self::create_with_timer).
    pub const fn with_timers(mut self, on: bool) -> Self {
        self.create_with_timer = on;
        self
    }

    /// Sets [`pool_type`](Self::pool_type).
    pub const fn with_pool_type(mut self, pool_type: PoolType) -> Self {
        self.pool_type = pool_type;
        self
    }

    /// Checks DMF's validity rules (debug asserts in DMF, errors here):
    /// `buffer_size > 0`, and `buffer_count > 0` unless look-aside is on.
    /// Returns `STATUS_INVALID_PARAMETER` otherwise.
    ///
    /// DMF also requires `buffer_count > 0` with timers and refuses timers
    /// together with look-aside in user mode (a UMDF deadlock); neither
    /// restriction is needed here: buffers grown by look-aside get their own
    /// timer, and a buffer freed where its timer cannot be deleted (its own
    /// timer handler, dispatch context) is freed by the pool's reaper work
    /// item at passive level.
    pub const fn validate(&self) -> Result<(), Status> {
        if self.buffer_size == 0 {
            return Err(Status::INVALID_PARAMETER);
        }
        if self.buffer_count == 0 && !self.enable_look_aside {
            return Err(Status::INVALID_PARAMETER);
        }
        Ok(())
    }
}

/// What an enumeration callback asks for the buffer it visited
/// (`BufferPool_EnumerationDispositionType`). Discriminants are DMF's.
///
/// DMF's quirk of "Enumeration dispositions are an enum" in `docs/dmf-differences.md` (an unknown value left the timer stopped with its fields
/// set, so the buffer never expired) cannot happen: there are no other values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EnumerationDisposition {
    /// The buffer stays; an armed timer keeps running with its remaining time.
    ContinueEnumeration = 1,
    /// As `ContinueEnumeration`, and the walk stops.
    StopEnumeration = 2,
    /// The buffer leaves the sink (its timer is disarmed) and is returned by
    /// [`SinkPool::enumerate`](crate::SinkPool::enumerate); the walk stops.
    RemoveAndStopEnumeration = 3,
    /// The buffer stays without expiry (its timer is disarmed); the walk stops.
    StopTimerAndStopEnumeration = 4,
    /// As `StopTimerAndStopEnumeration`, and the walk continues.
    StopTimerAndContinueEnumeration = 5,
    /// An armed timer restarts with its full original duration, and the
    /// deadline moves accordingly (see "Reset-timer dispositions move the deadline" in `docs/dmf-differences.md`); the walk stops.
    ResetTimerAndStopEnumeration = 6,
    /// As `ResetTimerAndStopEnumeration`, and the walk continues.
    ResetTimerAndContinueEnumeration = 7,
}

impl EnumerationDisposition {
    /// All seven values, in DMF order.
    pub const ALL: [EnumerationDisposition; 7] = [
        EnumerationDisposition::ContinueEnumeration,
        EnumerationDisposition::StopEnumeration,
        EnumerationDisposition::RemoveAndStopEnumeration,
        EnumerationDisposition::StopTimerAndStopEnumeration,
        EnumerationDisposition::StopTimerAndContinueEnumeration,
        EnumerationDisposition::ResetTimerAndStopEnumeration,
        EnumerationDisposition::ResetTimerAndContinueEnumeration,
    ];

    /// Whether the walk stops after this buffer.
    pub const fn stops(self) -> bool {
        matches!(
            self,
            EnumerationDisposition::StopEnumeration
                | EnumerationDisposition::RemoveAndStopEnumeration
                | EnumerationDisposition::StopTimerAndStopEnumeration
                | EnumerationDisposition::ResetTimerAndStopEnumeration
        )
    }
}
