//! Errors of the put operations: overrun reports and refused buffers.

use core::fmt;

use dmf_wdf::{Platform, Status};

use crate::PoolBuffer;

/// A buffer came back with overwritten guard bytes (DMF's sentinels
/// `0x33334444` after the data, `0x11112222` after the context, signature
/// `0x87654321` in the metadata).
///
/// DMF only asserts; here the put that detects it reports it (as
/// `STATUS_HEAP_CORRUPTION`), counts it on the pool
/// ([`BufferPool::overruns_detected`](crate::BufferPool::overruns_detected)),
/// logs a `tracing` error, repairs the guard bytes and still completes the
/// put, so no buffer is lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Overrun {
    /// The guard after the data area was overwritten.
    pub data: bool,
    /// The guard after the context area was overwritten.
    pub context: bool,
    /// The metadata signature in front of the data was overwritten.
    pub signature: bool,
}

impl Overrun {
    /// `STATUS_HEAP_CORRUPTION`.
    pub const fn status(&self) -> Status {
        Status::HEAP_CORRUPTION
    }

    /// Whether anything was overwritten.
    pub const fn any(&self) -> bool {
        self.data || self.context || self.signature
    }
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer overrun detected:")?;
        if self.data {
            f.write_str(" data guard overwritten;")?;
        }
        if self.context {
            f.write_str(" context guard overwritten;")?;
        }
        if self.signature {
            f.write_str(" metadata signature overwritten;")?;
        }
        Ok(())
    }
}

impl From<Overrun> for Status {
    fn from(value: Overrun) -> Status {
        value.status()
    }
}

/// Why a put did not go as asked.
pub enum PutError<P: Platform> {
    /// The buffer's home is another source pool; it is handed back
    /// untouched (`STATUS_INVALID_PARAMETER`). DMF only asserts this.
    ForeignBuffer(PoolBuffer<P>),
    /// [`SinkPool::put_with_timer`](crate::SinkPool::put_with_timer) with a
    /// buffer whose source was not created with timers; handed back
    /// (`STATUS_INVALID_DEVICE_REQUEST`). DMF only asserts this.
    NoTimer(PoolBuffer<P>),
    /// The put was done, but the buffer's guard bytes had been overwritten
    /// (`STATUS_HEAP_CORRUPTION`).
    Overrun(Overrun),
}

impl<P: Platform> PutError<P> {
    /// The NTSTATUS of this error.
    pub fn status(&self) -> Status {
        match self {
            PutError::ForeignBuffer(_) => Status::INVALID_PARAMETER,
            PutError::NoTimer(_) => Status::INVALID_DEVICE_REQUEST,
            PutError::Overrun(o) => o.status(),
        }
    }

    /// The buffer handed back, if the put was refused.
    pub fn into_buffer(self) -> Option<PoolBuffer<P>> {
        match self {
            PutError::ForeignBuffer(b) | PutError::NoTimer(b) => Some(b),
            PutError::Overrun(_) => None,
        }
    }
}

impl<P: Platform> fmt::Debug for PutError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::ForeignBuffer(b) => f.debug_tuple("ForeignBuffer").field(b).finish(),
            PutError::NoTimer(b) => f.debug_tuple("NoTimer").field(b).finish(),
            PutError::Overrun(o) => f.debug_tuple("Overrun").field(o).finish(),
        }
    }
}

impl<P: Platform> fmt::Display for PutError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::ForeignBuffer(_) => f.write_str("the buffer belongs to another source pool"),
            PutError::NoTimer(_) => f.write_str(
                "the buffer has no timer (its source pool was created without create_with_timer)",
            ),
            PutError::Overrun(o) => fmt::Display::fmt(o, f),
        }
    }
}
