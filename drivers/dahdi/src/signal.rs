//! Line signalling: DAHDI's events mapped to [`LineEvent`]s and [`LineCommand`]s mapped to
//! `DAHDI_HOOK` values, for each kind of port.
//!
//! DAHDI names signalling from the far end's point of view. An FXO *port* faces the exchange
//! and runs FXS signalling (`fxsks`, `fxsls`): the kernel reports ringing with RINGBEGIN at the
//! start of a burst and RINGOFFHOOK when the burst has ended, and ONHOOK when the exchange
//! drops loop current. An FXS port faces a phone and runs FXO signalling (`fxoks`, `fxols`):
//! RINGOFFHOOK means the phone went off-hook, ONHOOK that it hung up, WINKFLASH a hook flash.
//! The same numbers therefore mean different things on the two kinds of port.

use libc::c_int;
use switchboard_driver_api::{Alarms, ChannelKind, LineCommand, LineEvent};

use crate::abi::*;

/// What an event read with `DAHDI_GETEVENT` means for the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapped {
    /// A line event for the channel that raised it.
    Line(LineEvent),
    /// The channel's span raised an alarm: read `DAHDI_SPANSTAT` to learn which.
    SpanAlarm,
    /// The channel's span cleared its alarms.
    SpanNoAlarm,
    /// The board driver unregistered the channel; its descriptor is useless from now on.
    Removed,
    /// Nothing the call model needs (our own ring confirmations, DTMF detection we did not
    /// ask for, buffer statistics).
    Ignored,
}

/// Maps one `DAHDI_EVENT_*` value on a channel of the given kind.
pub fn map_event(kind: ChannelKind, event: c_int) -> Mapped {
    // Digit events carry the digit in the low bits with a flag above; the call model detects
    // DTMF itself, so the kernel's reports are dropped whatever the digit.
    if event & (DAHDI_EVENT_PULSEDIGIT | DAHDI_EVENT_DTMFDOWN | DAHDI_EVENT_DTMFUP) != 0 {
        return Mapped::Ignored;
    }
    match event {
        DAHDI_EVENT_ALARM => return Mapped::SpanAlarm,
        DAHDI_EVENT_NOALARM => return Mapped::SpanNoAlarm,
        DAHDI_EVENT_REMOVED => return Mapped::Removed,
        _ => {}
    }
    match kind {
        ChannelKind::FxoTrunk => match event {
            DAHDI_EVENT_RINGBEGIN => Mapped::Line(LineEvent::RingBegin),
            DAHDI_EVENT_RINGOFFHOOK => Mapped::Line(LineEvent::RingEnd),
            DAHDI_EVENT_ONHOOK => Mapped::Line(LineEvent::OnHook),
            DAHDI_EVENT_POLARITY => Mapped::Line(LineEvent::PolarityReversal),
            _ => Mapped::Ignored,
        },
        ChannelKind::FxsSeat => match event {
            DAHDI_EVENT_RINGOFFHOOK => Mapped::Line(LineEvent::OffHook),
            DAHDI_EVENT_ONHOOK => Mapped::Line(LineEvent::OnHook),
            DAHDI_EVENT_WINKFLASH => Mapped::Line(LineEvent::Flash),
            _ => Mapped::Ignored,
        },
        // Bearer channels of a PRI span signal in the D-channel; robbed-bit changes
        // (BITSCHANGED) mean nothing to a CCS span.
        ChannelKind::E1Bearer | ChannelKind::E1Signalling | ChannelKind::Sound => Mapped::Ignored,
    }
}

/// The `DAHDI_HOOK` value for a command on a channel of the given kind, or `None` when the
/// command makes no sense there (the caller reports it as a bad command).
///
/// An FXO port (FXS signalling) seizes with OFFHOOK, releases with ONHOOK and flashes with
/// FLASH. An FXS port (FXO signalling) rings with RING and stops with RINGOFF; ONHOOK also
/// stops the ringing and, on kewlstart, sends the phone the open-loop disconnect that tells it
/// the far end has gone.
pub fn hook_value(kind: ChannelKind, command: LineCommand) -> Option<c_int> {
    match (kind, command) {
        (ChannelKind::FxoTrunk, LineCommand::OffHook) => Some(DAHDI_OFFHOOK),
        (ChannelKind::FxoTrunk, LineCommand::OnHook) => Some(DAHDI_ONHOOK),
        (ChannelKind::FxoTrunk, LineCommand::Flash) => Some(DAHDI_FLASH),
        (ChannelKind::FxsSeat, LineCommand::Ring) => Some(DAHDI_RING),
        (ChannelKind::FxsSeat, LineCommand::StopRing) => Some(DAHDI_RINGOFF),
        (ChannelKind::FxsSeat, LineCommand::OnHook) => Some(DAHDI_ONHOOK),
        _ => None,
    }
}

/// The alarms a span reports in `dahdi_spaninfo.alarms`. RECOVER, LOOPBACK and NOTOPEN are
/// states rather than line alarms and are not reported as alarms.
pub fn alarms_from_bits(bits: c_int) -> Alarms {
    Alarms {
        red: bits & DAHDI_ALARM_RED != 0,
        yellow: bits & DAHDI_ALARM_YELLOW != 0,
        blue: bits & DAHDI_ALARM_BLUE != 0,
        loss_of_signal: bits & DAHDI_ALARM_LOS != 0,
    }
}

/// The signalling types a channel of the given kind may be configured with in
/// `/etc/dahdi/system.conf`, as a readable list for error messages.
pub fn expected_signalling(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::FxoTrunk => "fxsks, fxsls or fxsgs (an FXO port uses FXS signalling)",
        ChannelKind::FxsSeat => "fxoks, fxols or fxogs (an FXS port uses FXO signalling)",
        ChannelKind::E1Bearer => "a bearer channel (bchan / clear)",
        ChannelKind::E1Signalling => "a D-channel (dchan or hardhdlc)",
        ChannelKind::Sound => "nothing: sound devices are not DAHDI channels",
    }
}

/// True when a channel configured with `sigtype` can serve as a port of the given kind.
pub fn signalling_fits(kind: ChannelKind, sigtype: c_int) -> bool {
    match kind {
        ChannelKind::FxoTrunk => sigtype & DAHDI_SIG_FXS_BIT != 0,
        ChannelKind::FxsSeat => sigtype & DAHDI_SIG_FXO_BIT != 0,
        // A bearer carries audio: clear channel (PRI bchan) or a CAS / E&M channel of an R2
        // or E&M span. HDLC modes include the clear bit too but carry frames, not audio.
        ChannelKind::E1Bearer => {
            sigtype == DAHDI_SIG_CLEAR
                || sigtype == DAHDI_SIG_CAS
                || sigtype == DAHDI_SIG_EM_E1
                || sigtype == DAHDI_SIG_EM
        }
        ChannelKind::E1Signalling => {
            sigtype == DAHDI_SIG_HDLCFCS || sigtype == DAHDI_SIG_HARDHDLC || sigtype == DAHDI_SIG_MTP2
        }
        ChannelKind::Sound => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fxo_trunk_events_follow_fxs_signalling() {
        let k = ChannelKind::FxoTrunk;
        assert_eq!(map_event(k, DAHDI_EVENT_RINGBEGIN), Mapped::Line(LineEvent::RingBegin));
        assert_eq!(map_event(k, DAHDI_EVENT_RINGOFFHOOK), Mapped::Line(LineEvent::RingEnd));
        assert_eq!(map_event(k, DAHDI_EVENT_ONHOOK), Mapped::Line(LineEvent::OnHook));
        assert_eq!(map_event(k, DAHDI_EVENT_POLARITY), Mapped::Line(LineEvent::PolarityReversal));
        assert_eq!(map_event(k, DAHDI_EVENT_WINKFLASH), Mapped::Ignored);
        assert_eq!(map_event(k, DAHDI_EVENT_HOOKCOMPLETE), Mapped::Ignored);
    }

    #[test]
    fn fxs_seat_events_follow_fxo_signalling() {
        let k = ChannelKind::FxsSeat;
        assert_eq!(map_event(k, DAHDI_EVENT_RINGOFFHOOK), Mapped::Line(LineEvent::OffHook));
        assert_eq!(map_event(k, DAHDI_EVENT_ONHOOK), Mapped::Line(LineEvent::OnHook));
        assert_eq!(map_event(k, DAHDI_EVENT_WINKFLASH), Mapped::Line(LineEvent::Flash));
        assert_eq!(map_event(k, DAHDI_EVENT_RINGERON), Mapped::Ignored);
        assert_eq!(map_event(k, DAHDI_EVENT_RINGEROFF), Mapped::Ignored);
        assert_eq!(map_event(k, DAHDI_EVENT_RINGBEGIN), Mapped::Ignored);
        assert_eq!(map_event(k, DAHDI_EVENT_POLARITY), Mapped::Ignored);
    }

    #[test]
    fn span_and_device_events_are_the_same_for_every_kind() {
        for k in [ChannelKind::FxoTrunk, ChannelKind::FxsSeat, ChannelKind::E1Bearer] {
            assert_eq!(map_event(k, DAHDI_EVENT_ALARM), Mapped::SpanAlarm);
            assert_eq!(map_event(k, DAHDI_EVENT_NOALARM), Mapped::SpanNoAlarm);
            assert_eq!(map_event(k, DAHDI_EVENT_REMOVED), Mapped::Removed);
            assert_eq!(map_event(k, DAHDI_EVENT_DTMFDOWN | 0x31), Mapped::Ignored);
        }
        assert_eq!(map_event(ChannelKind::E1Bearer, DAHDI_EVENT_BITSCHANGED), Mapped::Ignored);
    }

    #[test]
    fn hook_values_depend_on_the_port_kind() {
        use LineCommand::*;
        let t = ChannelKind::FxoTrunk;
        assert_eq!(hook_value(t, OffHook), Some(DAHDI_OFFHOOK));
        assert_eq!(hook_value(t, OnHook), Some(DAHDI_ONHOOK));
        assert_eq!(hook_value(t, Flash), Some(DAHDI_FLASH));
        assert_eq!(hook_value(t, Ring), None);
        assert_eq!(hook_value(t, StopRing), None);
        let s = ChannelKind::FxsSeat;
        assert_eq!(hook_value(s, Ring), Some(DAHDI_RING));
        assert_eq!(hook_value(s, StopRing), Some(DAHDI_RINGOFF));
        assert_eq!(hook_value(s, OnHook), Some(DAHDI_ONHOOK));
        assert_eq!(hook_value(s, OffHook), None);
        assert_eq!(hook_value(s, Flash), None);
        for c in [OffHook, OnHook, Ring, StopRing, Flash] {
            assert_eq!(hook_value(ChannelKind::E1Bearer, c), None);
            assert_eq!(hook_value(ChannelKind::E1Signalling, c), None);
        }
    }

    #[test]
    fn alarm_bits_become_alarms() {
        assert!(!alarms_from_bits(DAHDI_ALARM_NONE).any());
        assert!(!alarms_from_bits(DAHDI_ALARM_RECOVER | DAHDI_ALARM_NOTOPEN).any());
        let a = alarms_from_bits(DAHDI_ALARM_RED | DAHDI_ALARM_LOS);
        assert!(a.red && a.loss_of_signal && !a.yellow && !a.blue);
        let a = alarms_from_bits(DAHDI_ALARM_YELLOW);
        assert!(a.yellow && !a.red);
        assert!(alarms_from_bits(DAHDI_ALARM_BLUE).blue);
    }

    #[test]
    fn signalling_must_fit_the_port() {
        assert!(signalling_fits(ChannelKind::FxoTrunk, DAHDI_SIG_FXSKS));
        assert!(!signalling_fits(ChannelKind::FxoTrunk, DAHDI_SIG_FXOKS));
        assert!(signalling_fits(ChannelKind::FxsSeat, DAHDI_SIG_FXOLS));
        assert!(!signalling_fits(ChannelKind::FxsSeat, DAHDI_SIG_FXSLS));
        assert!(signalling_fits(ChannelKind::E1Bearer, DAHDI_SIG_CLEAR));
        assert!(!signalling_fits(ChannelKind::E1Bearer, DAHDI_SIG_HDLCFCS));
        assert!(signalling_fits(ChannelKind::E1Signalling, DAHDI_SIG_HDLCFCS));
        assert!(signalling_fits(ChannelKind::E1Signalling, DAHDI_SIG_HARDHDLC));
        assert!(!signalling_fits(ChannelKind::E1Signalling, DAHDI_SIG_NONE));
    }
}
