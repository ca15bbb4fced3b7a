//! Analog line signalling: state machines with no IO for FXO trunk ports and FXS seat ports.
//!
//! Both machines follow the sans-IO pattern: the driver feeds them inputs (line events from the
//! card, detected tones, digits and caller id, and commands from the call model) with the
//! current time, calls `handle_timeout` when `poll_timeout` says so, and polls out what to do
//! (line commands, DTMF to send, caller id windows) and what happened (signals). They read no
//! clock, so tests drive them faster than real time.
//!
//! - [`fxo::FxoLine`]: a trunk from the exchange, where we are the phone: ring detection and
//!   cadence, caller id (DTMF before the ring, FSK between the first and second ring, FSK after
//!   a polarity reversal before the ring), answer, release, disconnect supervision (loop drop,
//!   polarity reversal, busy, congestion or dial tone), hook flash, and outgoing calls (dial
//!   tone, dialling, answer).
//! - [`fxs::FxsLine`]: a seat phone, where we are the exchange: ringing with a cadence, caller
//!   id to the phone between the first and second ring, off-hook and on-hook, hook flash.

use std::time::Duration;

pub mod fxo;
pub mod fxs;

#[cfg(test)]
mod tests;

/// Caller id as the line delivered it (FSK or DTMF), decoded by the control plane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerIdInfo {
    /// The calling number, when the line gave one.
    pub number: Option<String>,
    /// The calling name, when the line gave one.
    pub name: Option<String>,
    /// Why the number is missing: 'P' private (withheld), 'O' unavailable (out of area).
    pub absence: Option<char>,
}

impl CallerIdInfo {
    /// Caller id carrying just a number.
    pub fn number(number: &str) -> CallerIdInfo {
        CallerIdInfo { number: Some(number.to_string()), ..CallerIdInfo::default() }
    }

    /// True when the line told us nothing at all about the caller.
    pub fn is_empty(&self) -> bool {
        self.number.is_none() && self.name.is_none() && self.absence.is_none()
    }
}

/// What a Q.850 cause, given by a digital network when it clears a call, means in a call
/// record. Causes are grouped the way users need them; the number itself is in the log.
pub const fn network_cause(cause: u8) -> &'static str {
    match cause {
        16 => "caller hung up",
        1 => "unallocated number",
        3 => "no route to the destination",
        17 => "the called number is busy",
        18 | 19 => "no answer",
        21 => "call rejected",
        22 => "number changed",
        27 => "destination out of order",
        28 => "invalid number format",
        31 => "normal, unspecified",
        34 | 38 | 41 | 42 | 44 | 47 => "network congestion or failure",
        58 | 65 | 79 => "service not available",
        102 => "recovery on timer expiry",
        _ => "released by the network",
    }
}

/// How the exchange delivers caller id on trunk ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallerIdMode {
    /// DTMF (ETSI EN 300 659 style: `A` or `D`, the number, `C`) before the first ring.
    #[default]
    Dtmf,
    /// FSK (Bell 202 or V.23, also China's YD/T 1089) in the silence between the first and
    /// second ring.
    Fsk,
    /// FSK before the first ring, announced by a polarity reversal (ETSI EN 300 659-1 with
    /// line reversal).
    FskBeforeRing,
}

/// Settings of the analog line machines. The call model builds its trunks' [`fxo::FxoSettings`]
/// from these and from `CallSettings` (ring gap, tone disconnect).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LineSettings {
    /// Trunk ports (FXO).
    pub fxo: fxo::FxoSettings,
    /// Seat ports (FXS).
    pub fxs: fxs::FxsSettings,
}

/// A ring cadence measured on a trunk: the first burst and the silence after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingCadence {
    /// How long the first ring burst lasted.
    pub on: Duration,
    /// The silence between the first and the second burst.
    pub off: Duration,
    /// What the measurement looks like.
    pub kind: CadenceKind,
}

/// A coarse classification of a ring cadence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CadenceKind {
    /// One long burst per period (China 1 s / 4 s, North America 2 s / 4 s).
    Normal,
    /// Short bursts close together (double or triple rings): a distinctive ring, used by some
    /// exchanges for a second number on the line or for callback and internal calls.
    Distinctive,
}

impl RingCadence {
    /// Classifies a measured burst and gap. A burst shorter than 600 ms or a gap shorter than
    /// 1 s is part of a multi-burst pattern, which no exchange uses for its normal ring.
    pub fn classify(on: Duration, off: Duration) -> RingCadence {
        let short = on < Duration::from_millis(600) || off < Duration::from_secs(1);
        RingCadence { on, off, kind: if short { CadenceKind::Distinctive } else { CadenceKind::Normal } }
    }
}
