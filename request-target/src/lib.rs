//! DMF_RequestTarget in Rust: send requests to an I/O target, sync or async, with timeouts, cancellation and reusable requests.
#![cfg_attr(not(test), no_std)]
