//! # dmf-stress: benchmarks, soak and bad-input suite across the DMF layers
//!
//! Makes the speed and robustness of the stack visible and repeatable, on
//! the simulated platform (`dmf-sim`). Not published; std only.
//!
//! * [`bench`](mod@bench): every layer against its baseline in one process
//!   (`cargo run -p dmf-stress --release --bin bench`), a table of ratios,
//!   written to `BENCHMARKS.md`.
//! * [`soak`]: DMF's anchor test scenarios all at once on
//!   one simulated machine, with interface toggling, device
//!   plug/unplug/query-remove/surprise-remove, client power cycles and
//!   optional fault injection, for a duration and a seed
//!   (`cargo run -p dmf-stress --release --bin soak -- --duration 30 --seed 7 --faults`),
//!   ending with counts, statuses and the leak check; a watchdog fails the
//!   run with a dump of what is outstanding.
//! * [`alloc_count`]: the counting global allocator both use.
//!
//! The bad-input suite is `tests/bad_input.rs` (see the README section "Bad
//! input and what you get").

pub mod alloc_count;
pub mod bench;
pub mod soak;
