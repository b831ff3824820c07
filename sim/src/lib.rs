//! The simulated WDF platform: a faithful std-only device stack, PnP bus and power model implementing the dmf-wdf seam.
#![cfg_attr(not(test), no_std)]
