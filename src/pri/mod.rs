//! ISDN PRI on an E1: Q.921 (LAPD) and Q.931 basic call control, ETSI EuroISDN, user and
//! network side.
//!
//! Like the call model, this is a state machine with no IO and no clock, in the style of
//! quinn-proto: the caller feeds D-channel frames (as DAHDI delivers them, with their two FCS
//! octets) and the current time into a [`Span`], gives it commands from the daemon (place a
//! call, answer, hang up, restart), and polls out frames to write, the next deadline and
//! [`PriEvent`]s. Tests drive it faster than real time; the daemon drives it from a task
//! that owns the D-channel socket.
//!
//! - [`fcs`]: the HDLC frame check sequence.
//! - [`q921`]: the data link, modulo 128, window k, T200/N200/T203, re-establishment.
//! - [`q931`]: the message and information element codec.
//! - [`call`]: call states and Q.931 timers.
//! - [`span`]: the span: Q.921 + Q.931 + B-channel selection.

pub mod call;
pub mod fcs;
pub mod q921;
pub mod q931;
pub mod span;

pub use call::{CallState, Q931Timers};
pub use q921::{LinkState, LinkStats, Q921Timers};
pub use q931::{Bearer, CalledNumber, CallingNumber, Cause, NumberType, Presentation, Screening};
pub use span::{
    CallId, CallParams, ChannelState, Hunt, PriError, PriEvent, RestartScope, Span, SpanConfig, SpanStats,
};

/// Which side of the interface this stack is. The network side assigns B-channels and wins
/// channel glare; the roles also set the Q.921 C/R bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The customer premises side (TE, "CPE" in libpri).
    User,
    /// The exchange side (NT).
    Network,
}

/// E1 timeslot of a B-channel: B-channels 1-15 are timeslots 1-15 and 16-30 are 17-31,
/// because timeslot 16 carries the D-channel.
pub fn timeslot_of(bchan: u8) -> Option<u8> {
    match bchan {
        1..=15 => Some(bchan),
        16..=30 => Some(bchan + 1),
        _ => None,
    }
}

/// The B-channel in an E1 timeslot, if the timeslot carries one.
pub fn bchan_of(timeslot: u8) -> Option<u8> {
    match timeslot {
        1..=15 => Some(timeslot),
        17..=31 => Some(timeslot - 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
