//! The technicians' maintenance shell: the same command set on serial ports and on the
//! control socket (`switchboard shell`).
//!
//! The shell's core is sans-IO, like the protocol cores: [`session::Session`] takes bytes and
//! `now` in and gives output bytes, login checks and commands to run out. The transports
//! (`daemon::shell`) move bytes between it and a serial port or a socket, and the daemon's
//! core runs the commands.
//!
//! - [`editor`]: the byte-at-a-time line editor for dumb terminals (hostile bytes welcome).
//! - [`command`]: the command table that drives parsing, `help` and Tab completion.
//! - [`session`]: login and lockout, prompt, history, paging, filtering, idle logout.

pub mod command;
pub mod editor;
pub mod session;
