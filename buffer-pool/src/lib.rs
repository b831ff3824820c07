//! # dmf-buffer-pool: DMF_BufferPool with typed ownership
//!
//! Fixed-size buffers with a per-buffer client context area, in *source*
//! pools (which allocate them and are their home) and *sink* pools (which
//! hold buffers of any source, optionally each with an expiry timer).
//! `no_std` + `alloc`, generic over the platform seam [`dmf_wdf::Platform`]:
//! buffer memory comes from [`Platform::allocate`](dmf_wdf::Platform::allocate),
//! timers from [`Platform::create_timer`](dmf_wdf::Platform::create_timer)
//! (so the simulator's manual clock drives them in tests).
//!
//! ## DMF name -> Rust name
//!
//! | DMF | Rust |
//! |---|---|
//! | `DMF_BufferPool_Create` (`BufferPool_Mode_Source`) + Open | [`BufferPool::new`] |
//! | `DMF_BufferPool_Create` (`BufferPool_Mode_Sink`) + Open | [`SinkPool::new`] |
//! | Close / `WdfObjectDelete` | dropping the [`BufferPool`] / the last [`SinkPool`] handle |
//! | `DMF_CONFIG_BufferPool` (`Mode.SourceSettings`) | [`BufferPoolConfig`] |
//! | `BufferCount`, `BufferSize`, `BufferContextSize` | [`BufferPoolConfig::buffer_count`], [`buffer_size`](BufferPoolConfig::buffer_size), [`buffer_context_size`](BufferPoolConfig::buffer_context_size) |
//! | `EnableLookAside`, `CreateWithTimer`, `PoolType` | [`enable_look_aside`](BufferPoolConfig::enable_look_aside), [`create_with_timer`](BufferPoolConfig::create_with_timer), [`pool_type`](BufferPoolConfig::pool_type) ([`PoolType`]) |
//! | `BufferPool_Mode` (`Source`, `Sink`; `Invalid` has no counterpart) | [`BufferPoolMode`], [`BufferPool::mode`], [`SinkPool::mode`] |
//! | client buffer pointer + context pointer | [`PoolBuffer`] guard: [`data`](PoolBuffer::data), [`data_mut`](PoolBuffer::data_mut), [`context`](PoolBuffer::context), [`context_mut`](PoolBuffer::context_mut), [`split_mut`](PoolBuffer::split_mut) |
//! | `DMF_BufferPool_Get` | [`BufferPool::get`], [`SinkPool::get`] |
//! | `DMF_BufferPool_GetWithMemory` / `…GetWithMemoryDescriptor` | `get` + [`PoolBuffer::raw_buffer`] (the `WDFMEMORY` / descriptor is a [`dmf_wdf::RawBuffer`]) |
//! | `DMF_BufferPool_Put` (source) | dropping the guard, [`PoolBuffer::put_home`], [`BufferPool::put`] |
//! | `DMF_BufferPool_PutAtHead` (source) | [`PoolBuffer::put_home_at_head`], [`BufferPool::put_at_head`] |
//! | `DMF_BufferPool_Put` / `…PutAtHead` (sink) | [`SinkPool::put`], [`SinkPool::put_at_head`], [`PoolBuffer::into_sink`] |
//! | `DMF_BufferPool_PutInSinkWithTimer` | [`SinkPool::put_with_timer`] |
//! | `EVT_DMF_BufferPool_TimerCallback` + `ClientBufferContext` | [`ExpiryCallback`] (an `Arc`; any `Fn(&SinkPool<P>, PoolBuffer<P>)`) |
//! | `DMF_BufferPool_Enumerate` + `EVT_DMF_BufferPool_Enumeration` | [`SinkPool::enumerate`] with a closure over [`SinkEntry`] |
//! | `BufferPool_EnumerationDispositionType` (7 values) | [`EnumerationDisposition`] |
//! | `DMF_BufferPool_Count` | [`BufferPool::count`], [`SinkPool::count`] |
//! | `DMF_BufferPool_ContextGet` | [`PoolBuffer::context`] / [`context_ptr`](PoolBuffer::context_ptr) |
//! | `DMF_BufferPool_ParametersGet` | [`BufferPool::parameters`] ([`BufferParameters`]) |
//! | "buffers in use" diagnostic (PR #241) | [`BufferPool::buffers_in_use`], [`BufferPool::buffers_allocated`] |
//! | signature / data & context sentinels (asserts) | guard bytes checked on every put: [`Overrun`], [`PutError`], `overruns_detected` |
//!
//! ## Ownership in types
//!
//! A buffer handed out is a [`PoolBuffer`] guard that knows its home source.
//! Dropping it returns it home (zeroed), so "forgot to put it back" cannot
//! happen in safe code; moving it into a sink consumes it; a source pool
//! refuses a foreign buffer ([`PutError::ForeignBuffer`] hands it back).
//! Buffers outlive their pools as in DMF: a buffer held by a client or a sink
//! when its source closes stays valid and is freed when it comes home.
//! Closing a sink sends its buffers home (DMF frees them, contradicting its
//! docs).
//!
//! ## Fixes of DMF quirks
//!
//! Each is a section of the workspace's `docs/dmf-differences.md` (what DMF
//! does, what this crate does, the test that shows it).
//!
//! * **Reset-timer dispositions move the deadline**: `ResetTimer*` dispositions restart the timer with its full
//!   duration *and* move the stored deadline, so a later enumeration reports
//!   and re-arms the right remaining time.
//! * **A source pool with look-aside never refuses a get**: a source pool never lists a buffer whose timer is armed (a
//!   buffer only comes home through a guard, and guards are never armed), so
//!   `get` on an empty-looking source with look-aside always allocates
//!   instead of failing. In a sink, buffers whose timer is firing are skipped
//!   by `get` as in DMF: they belong to their timer handler.
//! * **Enumeration dispositions are an enum**: an unknown value cannot be returned.
//! * **Overruns are errors**: reported (`STATUS_HEAP_CORRUPTION`), counted and
//!   logged, not only asserted; guards sit right after the data and context,
//!   catching one-byte overruns; wrong-pool puts and puts without timer are
//!   errors too.
//!
//! ## Performance
//!
//! A source pool's list is a lock-free bounded queue (Vyukov's array queue,
//! as crossbeam's `ArrayQueue`) allocated at open, plus a small locked stack
//! used only by put-at-head. `get` and put never allocate; sink puts and gets
//! link buffers through their metadata and never allocate either. The
//! benchmark against a `Mutex<Vec<_>>` pool and crossbeam's `ArrayQueue`:
//! `cargo run -p dmf-stress --release --bin bench -- --only pool` (figures
//! in the workspace's `BENCHMARKS.md`).
//!
//! ## Example
//!
//! ```
//! use dmf_buffer_pool::{BufferPool, BufferPoolConfig};
//! use dmf_sim::Sim;
//!
//! let sim = Sim::default();
//! let pool = BufferPool::new(&sim, BufferPoolConfig::new(4, 64).with_context_size(8)).unwrap();
//! let mut buffer = pool.get().unwrap();
//! buffer.data_mut()[..5].copy_from_slice(b"hello");
//! assert_eq!(pool.count(), 3);
//! drop(buffer); // home again, zeroed
//! assert_eq!(pool.count(), 4);
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

mod block;
mod buffer;
mod config;
mod error;
mod queue;
mod sink;
mod source;
mod sync;

pub use buffer::PoolBuffer;
pub use config::{BufferPoolConfig, BufferPoolMode, EnumerationDisposition, PoolType};
pub use error::{Overrun, PutError};
pub use sink::{ExpiryCallback, SinkEntry, SinkPool};
pub use source::{BufferParameters, BufferPool};
