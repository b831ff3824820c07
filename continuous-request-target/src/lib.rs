//! DMF_ContinuousRequestTarget in Rust: keep N requests streaming to an I/O target.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod buffers;
mod client;
mod config;
pub mod protocol;
mod single;
mod stats;
mod stream;
mod target;

mod primitive {
    //! Atomics, swapped for loom's when model checking (`--cfg loom`).
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
}

pub use buffers::{PoolBuffer, PoolType};
pub use client::{OutputDisposition, RetireReason, Retirement, StreamClient, StreamCompletion};
pub use config::{Backoff, ContinuousRequestTargetConfig, StreamMode};
pub use stats::StreamStatistics;
pub use stream::StreamState;
pub use target::{ContinuousRequestTarget, PowerCallbacks};

/// An output buffer of a stream (a guard: dropping it returns it to the output pool).
pub type OutputBuffer<P> = PoolBuffer<P>;
