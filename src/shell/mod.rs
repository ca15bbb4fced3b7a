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

/// A small deterministic generator, so the shell's noise tests are repeatable without a crate.
#[cfg(test)]
pub(crate) struct XorShift(pub u64);

#[cfg(test)]
impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
