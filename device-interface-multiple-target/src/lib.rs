//! DMF_DeviceInterfaceMultipleTarget in Rust: follow every device exposing an interface GUID, open, stream, close.
#![cfg_attr(not(test), no_std)]
