//! The agent control protocol: how agents' desktop clients and CRMs drive the call center.
//!
//! `protocol` is the wire codec, `tags` the tag strings, `hub` the sans-IO state of sessions,
//! seats and agents, and `server` the TCP side that authenticates and carries lines.

pub mod client;
pub mod console;
pub mod hub;
pub mod protocol;
pub mod server;
pub mod tags;
