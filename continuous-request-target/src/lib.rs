//! DMF_ContinuousRequestTarget in Rust: keep N requests streaming to an I/O target.
#![cfg_attr(not(test), no_std)]
