//! Switchboard: a call-center telephony appliance.
//!
//! The binary in `main.rs` is a thin command line over this library. See ARCHITECTURE.md for
//! the map of the modules and the invariants they keep.

pub mod accounts;
pub mod acd;
pub mod admin_cli;
pub mod agent;
pub mod audio;
pub mod bench;
pub mod board;
pub mod calls;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dsp;
pub mod framing;
pub mod hw;
pub mod ivr;
pub mod line;
pub mod media;
pub mod paths;
pub mod pri;
pub mod reports;
pub mod shell;
pub mod sim;
pub mod speech;
pub mod store;
pub mod webservice;
