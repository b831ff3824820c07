//! The KMDF backend of the dmf-wdf platform seam, on wdk-sys (Windows only).
#![cfg_attr(not(test), no_std)]
