//! DMF_BufferPool in Rust: fixed-size buffers with client context, source and sink pools, expiry timers, typed ownership.
#![cfg_attr(not(test), no_std)]
