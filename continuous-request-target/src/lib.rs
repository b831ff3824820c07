//! DMF_ContinuousRequestTarget in Rust: keep N requests streaming to an I/O target.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

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
    pub(crate) use core::hint::spin_loop;
    #[cfg(not(loom))]
    pub(crate) use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    /// Under loom a spin must yield, or the model never lets the other thread run.
    #[cfg(loom)]
    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }
}

pub use client::{OutputDisposition, RetireReason, Retirement, StreamClient, StreamCompletion};
pub use config::{Backoff, ContinuousRequestTargetConfig, StreamMode};
pub use dmf_buffer_pool::{PoolBuffer, PoolType};
pub use protocol::StreamState;
pub use stats::StreamStatistics;
pub use target::{ContinuousRequestTarget, PowerCallbacks};

pub use dmf_request_target::{
    CancelId, Completion, CompletionDelivery, DeliveryContext, RequestTarget, ReuseDeletion,
    ReuseId, SendCompleted, SendCompletion, SendParams,
};

/// An output buffer of a stream (a guard: dropping it returns it to the output pool).
pub type OutputBuffer<P> = PoolBuffer<P>;
