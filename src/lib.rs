//! Switchboard: a call-center telephony appliance.
//!
//! The binary in `main.rs` is a thin command line over this library. See ARCHITECTURE.md for
//! the map of the modules and the invariants they keep.

pub mod audio;
pub mod dsp;
pub mod store;
