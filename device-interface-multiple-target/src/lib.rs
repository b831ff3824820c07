//! DMF_DeviceInterfaceMultipleTarget in Rust: follow every device exposing an
//! interface GUID, open it as it arrives, stream to it, close it as it leaves.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[allow(dead_code)] // used by the module implementation in progress
mod target_table;

pub use target_table::TargetHandle;
