//! The local control socket's protocol, shared by the daemon and the command-line client.

pub mod protocol;
