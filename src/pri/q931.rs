//! Q.931 messages and information elements as ETSI EuroISDN (EN 300 403) uses them on a PRI.
//!
//! [`Message::decode`] turns a layer-3 frame into a [`Message`] whose known information
//! elements are parsed into [`Ies`]; elements it does not know (and every element of codesets
//! other than 0) are skipped and counted, as Q.931 lets a receiver do for optional
//! elements. A malformed element it does know is a [`DecodeError`] that names the element and
//! what was wrong, so the call layer can answer with the right cause. [`Message::encode`]
//! writes elements in ascending order of identifier, as Q.931 requires.

use std::fmt;

/// Protocol discriminator of Q.931 call control.
pub const PROTOCOL_DISCRIMINATOR: u8 = 0x08;

/// Q.931 cause values (Q.850) this stack sends or tests look for.
pub mod cause {
    pub const UNALLOCATED_NUMBER: u8 = 1;
    pub const NO_ROUTE_TO_DESTINATION: u8 = 3;
    pub const CHANNEL_UNACCEPTABLE: u8 = 6;
    pub const NORMAL_CLEARING: u8 = 16;
    pub const USER_BUSY: u8 = 17;
    pub const NO_USER_RESPONDING: u8 = 18;
    pub const NO_ANSWER: u8 = 19;
    pub const CALL_REJECTED: u8 = 21;
    pub const INVALID_NUMBER_FORMAT: u8 = 28;
    pub const RESPONSE_TO_STATUS_ENQUIRY: u8 = 30;
    pub const NORMAL_UNSPECIFIED: u8 = 31;
    pub const NO_CIRCUIT_AVAILABLE: u8 = 34;
    pub const NETWORK_OUT_OF_ORDER: u8 = 38;
    pub const TEMPORARY_FAILURE: u8 = 41;
    pub const REQUESTED_CHANNEL_UNAVAILABLE: u8 = 44;
    pub const BEARER_CAPABILITY_NOT_IMPLEMENTED: u8 = 65;
    pub const INVALID_CALL_REFERENCE: u8 = 81;
    pub const IDENTIFIED_CHANNEL_DOES_NOT_EXIST: u8 = 82;
    pub const INVALID_MESSAGE: u8 = 95;
    pub const MANDATORY_IE_MISSING: u8 = 96;
    pub const MESSAGE_TYPE_NONEXISTENT: u8 = 97;
    pub const MESSAGE_NOT_COMPATIBLE_WITH_STATE: u8 = 98;
    pub const IE_NONEXISTENT: u8 = 99;
    pub const INVALID_IE_CONTENTS: u8 = 100;
    pub const WRONG_CALL_STATE: u8 = 101;
    pub const RECOVERY_ON_TIMER_EXPIRY: u8 = 102;
    pub const PROTOCOL_ERROR: u8 = 111;
    pub const INTERWORKING: u8 = 127;
}

/// Cause and progress locations (Q.850 table 1).
pub mod location {
    pub const USER: u8 = 0;
    pub const PRIVATE_NETWORK_LOCAL_USER: u8 = 1;
    pub const PUBLIC_NETWORK_LOCAL_USER: u8 = 2;
    pub const TRANSIT_NETWORK: u8 = 3;
    pub const PUBLIC_NETWORK_REMOTE_USER: u8 = 4;
    pub const PRIVATE_NETWORK_REMOTE_USER: u8 = 5;
}

/// Information element identifiers (codeset 0).
pub mod ie {
    pub const SENDING_COMPLETE: u8 = 0xA1;
    pub const BEARER_CAPABILITY: u8 = 0x04;
    pub const CAUSE: u8 = 0x08;
    pub const CALL_STATE: u8 = 0x14;
    pub const CHANNEL_IDENTIFICATION: u8 = 0x18;
    pub const PROGRESS_INDICATOR: u8 = 0x1E;
    pub const DISPLAY: u8 = 0x28;
    pub const KEYPAD_FACILITY: u8 = 0x2C;
    pub const CALLING_PARTY_NUMBER: u8 = 0x6C;
    pub const CALLED_PARTY_NUMBER: u8 = 0x70;
    pub const RESTART_INDICATOR: u8 = 0x79;
}

/// A readable name for an information element identifier, for errors and logs.
pub fn ie_name(id: u8) -> &'static str {
    match id {
        ie::SENDING_COMPLETE => "sending complete",
        ie::BEARER_CAPABILITY => "bearer capability",
        ie::CAUSE => "cause",
        ie::CALL_STATE => "call state",
        ie::CHANNEL_IDENTIFICATION => "channel identification",
        ie::PROGRESS_INDICATOR => "progress indicator",
        ie::DISPLAY => "display",
        ie::KEYPAD_FACILITY => "keypad facility",
        ie::CALLING_PARTY_NUMBER => "calling party number",
        ie::CALLED_PARTY_NUMBER => "called party number",
        ie::RESTART_INDICATOR => "restart indicator",
        _ => "unknown",
    }
}

/// The message types of basic call control and restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Alerting,
    CallProceeding,
    Connect,
    ConnectAck,
    Progress,
    Setup,
    SetupAck,
    Disconnect,
    Release,
    ReleaseComplete,
    Restart,
    RestartAck,
    Status,
    StatusEnquiry,
    Information,
    Notify,
    Facility,
    /// A message type this stack does not implement (answered with cause 97).
    Other(u8),
}

impl MessageType {
    pub fn code(self) -> u8 {
        match self {
            MessageType::Alerting => 0x01,
            MessageType::CallProceeding => 0x02,
            MessageType::Progress => 0x03,
            MessageType::Setup => 0x05,
            MessageType::Connect => 0x07,
            MessageType::SetupAck => 0x0D,
            MessageType::ConnectAck => 0x0F,
            MessageType::Disconnect => 0x45,
            MessageType::Restart => 0x46,
            MessageType::Release => 0x4D,
            MessageType::RestartAck => 0x4E,
            MessageType::ReleaseComplete => 0x5A,
            MessageType::Facility => 0x62,
            MessageType::Notify => 0x6E,
            MessageType::StatusEnquiry => 0x75,
            MessageType::Information => 0x7B,
            MessageType::Status => 0x7D,
            MessageType::Other(c) => c,
        }
    }

    pub fn from_code(code: u8) -> MessageType {
        match code {
            0x01 => MessageType::Alerting,
            0x02 => MessageType::CallProceeding,
            0x03 => MessageType::Progress,
            0x05 => MessageType::Setup,
            0x07 => MessageType::Connect,
            0x0D => MessageType::SetupAck,
            0x0F => MessageType::ConnectAck,
            0x45 => MessageType::Disconnect,
            0x46 => MessageType::Restart,
            0x4D => MessageType::Release,
            0x4E => MessageType::RestartAck,
            0x5A => MessageType::ReleaseComplete,
            0x62 => MessageType::Facility,
            0x6E => MessageType::Notify,
            0x75 => MessageType::StatusEnquiry,
            0x7B => MessageType::Information,
            0x7D => MessageType::Status,
            c => MessageType::Other(c),
        }
    }
}

/// A call reference. `flag` is false on messages from the side that allocated the
/// reference (originated the call) and true on messages to it. Value 0 is the global call
/// reference that RESTART uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallRef {
    pub value: u16,
    pub flag: bool,
}

impl CallRef {
    pub const GLOBAL: CallRef = CallRef { value: 0, flag: false };

    pub fn is_global(self) -> bool {
        self.value == 0
    }
}

/// Bearer capability: the information transfer capability and user layer 1 protocol. Octet
/// 4 is always circuit mode, 64 kbit/s on a PRI voice call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bearer {
    /// 0 speech, 8 unrestricted digital, 16 3.1 kHz audio.
    pub capability: u8,
    /// 2 G.711 mu-law, 3 G.711 A-law.
    pub layer1: Option<u8>,
}

impl Bearer {
    pub const SPEECH_ALAW: Bearer = Bearer { capability: 0x00, layer1: Some(0x03) };
    pub const AUDIO_3K1_ALAW: Bearer = Bearer { capability: 0x10, layer1: Some(0x03) };
}

/// Which channel a channel identification element names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelSel {
    /// No channel (signalling only, or RESTART of a whole interface).
    None,
    /// Any channel.
    Any,
    /// The channel with this number: on an E1 the timeslot, 1-15 and 17-31.
    Timeslot(u8),
}

/// Channel identification on a PRI interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelIdent {
    /// Only this channel is acceptable (as opposed to preferred).
    pub exclusive: bool,
    pub sel: ChannelSel,
}

/// Presentation indicator of a calling number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Presentation {
    #[default]
    Allowed,
    Restricted,
    NotAvailable,
    Reserved,
}

impl Presentation {
    fn from_bits(b: u8) -> Presentation {
        match b & 3 {
            0 => Presentation::Allowed,
            1 => Presentation::Restricted,
            2 => Presentation::NotAvailable,
            _ => Presentation::Reserved,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Presentation::Allowed => 0,
            Presentation::Restricted => 1,
            Presentation::NotAvailable => 2,
            Presentation::Reserved => 3,
        }
    }
}

/// Screening indicator of a calling number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Screening {
    #[default]
    UserNotScreened,
    UserPassed,
    UserFailed,
    Network,
}

impl Screening {
    fn from_bits(b: u8) -> Screening {
        match b & 3 {
            0 => Screening::UserNotScreened,
            1 => Screening::UserPassed,
            2 => Screening::UserFailed,
            _ => Screening::Network,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Screening::UserNotScreened => 0,
            Screening::UserPassed => 1,
            Screening::UserFailed => 2,
            Screening::Network => 3,
        }
    }
}

/// Type of number (3 bits) and numbering plan (4 bits): 0/0 unknown, ton 1 international,
/// 2 national, 4 subscriber; plan 1 ISDN/telephony (E.164), 9 private.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NumberType {
    pub ton: u8,
    pub plan: u8,
}

/// Calling party number with presentation and screening.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CallingNumber {
    pub kind: NumberType,
    pub presentation: Presentation,
    pub screening: Screening,
    pub digits: String,
}

/// Called party number.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CalledNumber {
    pub kind: NumberType,
    pub digits: String,
}

/// Cause with its location.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cause {
    pub location: u8,
    pub value: u8,
}

/// Progress indicator: 1 call is not end-to-end ISDN, 2 destination is not ISDN, 3 origin is
/// not ISDN, 8 in-band information is now available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressInd {
    pub location: u8,
    pub description: u8,
}

/// Restart indicator class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartClass {
    /// The channels in the channel identification element.
    Indicated,
    SingleInterface,
    AllInterfaces,
}

/// The information elements of a message that this stack uses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ies {
    pub sending_complete: bool,
    pub bearer: Option<Bearer>,
    pub cause: Option<Cause>,
    pub call_state: Option<u8>,
    pub channel: Option<ChannelIdent>,
    pub progress: Option<ProgressInd>,
    pub display: Option<String>,
    pub keypad: Option<String>,
    pub calling: Option<CallingNumber>,
    pub called: Option<CalledNumber>,
    pub restart: Option<RestartClass>,
    /// Elements skipped because they are unknown or in another codeset.
    pub skipped: u16,
}

/// A Q.931 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub call_ref: CallRef,
    pub kind: MessageType,
    pub ies: Ies,
}

/// What was wrong with a received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message too short ({0} octets)")]
    TooShort(usize),
    #[error("protocol discriminator {0:#04x} is not Q.931")]
    Discriminator(u8),
    #[error("call reference length {0} (a PRI uses at most 2)")]
    CallRefLength(u8),
    #[error("{} information element ({id:#04x}) truncated: length {len}, {left} octets left", ie_name(*.id))]
    Truncated { id: u8, len: usize, left: usize },
    #[error("{} information element ({id:#04x}): {what}", ie_name(*.id))]
    Invalid { id: u8, what: &'static str },
}

impl DecodeError {
    /// The information element at fault, if the error is in one.
    pub fn ie(&self) -> Option<u8> {
        match *self {
            DecodeError::Truncated { id, .. } | DecodeError::Invalid { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Decodes the protocol discriminator, call reference and message type, returning the
/// offset of the first information element.
pub fn decode_header(b: &[u8]) -> Result<(CallRef, MessageType, usize), DecodeError> {
    let Some(&pd) = b.first() else {
        return Err(DecodeError::TooShort(0));
    };
    if pd != PROTOCOL_DISCRIMINATOR {
        return Err(DecodeError::Discriminator(pd));
    }
    let len_octet = *b.get(1).ok_or(DecodeError::TooShort(b.len()))?;
    let crl = len_octet & 0x0F;
    if len_octet & 0xF0 != 0 || crl > 2 {
        return Err(DecodeError::CallRefLength(len_octet));
    }
    let crl = usize::from(crl);
    if b.len() < 3 + crl {
        return Err(DecodeError::TooShort(b.len()));
    }
    let call_ref = match crl {
        0 => CallRef::GLOBAL,
        1 => CallRef { value: u16::from(b[2] & 0x7F), flag: b[2] & 0x80 != 0 },
        _ => CallRef { value: u16::from(b[2] & 0x7F) << 8 | u16::from(b[3]), flag: b[2] & 0x80 != 0 },
    };
    let mt = b[2 + crl];
    Ok((call_ref, MessageType::from_code(mt), 3 + crl))
}

fn invalid(id: u8, what: &'static str) -> DecodeError {
    DecodeError::Invalid { id, what }
}

/// IA5 text: every octet must be a 7-bit character.
fn ia5(id: u8, b: &[u8]) -> Result<String, DecodeError> {
    if b.iter().any(|&c| c & 0x80 != 0) {
        return Err(invalid(id, "character outside IA5"));
    }
    Ok(b.iter().map(|&c| char::from(c)).collect())
}

/// Number digits: IA5 digits, '*', '#' and the letters some switches use.
fn digits(id: u8, b: &[u8]) -> Result<String, DecodeError> {
    if b.iter().any(|&c| !(c.is_ascii_alphanumeric() || c == b'*' || c == b'#' || c == b'+')) {
        return Err(invalid(id, "number digit is not an IA5 digit"));
    }
    Ok(b.iter().map(|&c| char::from(c)).collect())
}

fn decode_bearer(c: &[u8]) -> Result<Bearer, DecodeError> {
    let id = ie::BEARER_CAPABILITY;
    if c.len() < 2 {
        return Err(invalid(id, "needs octets 3 and 4"));
    }
    if c[0] & 0x60 != 0 {
        return Err(invalid(id, "coding standard is not ITU-T"));
    }
    let capability = c[0] & 0x1F;
    // Octet 4 may extend into 4a/4b for packet mode or multirate: skip to octet 5.
    let mut pos = 1;
    while pos < c.len() && c[pos] & 0x80 == 0 {
        pos += 1;
    }
    pos += 1;
    let layer1 = match c.get(pos) {
        Some(&o5) if (o5 >> 5) & 0x03 == 0x01 => Some(o5 & 0x1F),
        _ => None,
    };
    Ok(Bearer { capability, layer1 })
}

fn decode_cause(c: &[u8]) -> Result<Cause, DecodeError> {
    let id = ie::CAUSE;
    let Some(&o3) = c.first() else {
        return Err(invalid(id, "empty"));
    };
    // Octet 3a (recommendation) follows when octet 3 has no extension bit.
    let pos = if o3 & 0x80 == 0 { 2 } else { 1 };
    let o4 = *c.get(pos).ok_or(invalid(id, "no cause value octet"))?;
    Ok(Cause { location: o3 & 0x0F, value: o4 & 0x7F })
}

fn decode_channel(c: &[u8]) -> Result<ChannelIdent, DecodeError> {
    let id = ie::CHANNEL_IDENTIFICATION;
    let Some(&o3) = c.first() else {
        return Err(invalid(id, "empty"));
    };
    if o3 & 0x20 == 0 {
        return Err(invalid(id, "basic rate interface type on a primary rate interface"));
    }
    let exclusive = o3 & 0x08 != 0;
    let mut pos = 1;
    if o3 & 0x40 != 0 {
        // Octet 3.1 names the interface explicitly; this stack serves one interface.
        while pos < c.len() && c[pos] & 0x80 == 0 {
            pos += 1;
        }
        pos += 1;
    }
    if o3 & 0x04 != 0 {
        return Ok(ChannelIdent { exclusive, sel: ChannelSel::None });
    }
    let sel = match o3 & 0x03 {
        0 => ChannelSel::None,
        3 => ChannelSel::Any,
        2 => return Err(invalid(id, "reserved channel selection")),
        _ => {
            let o32 = *c.get(pos).ok_or(invalid(id, "octet 3.2 missing"))?;
            if o32 & 0x60 != 0 {
                return Err(invalid(id, "coding standard is not ITU-T"));
            }
            if o32 & 0x0F != 0x03 {
                return Err(invalid(id, "channel type is not B-channel units"));
            }
            let rest = &c[pos + 1..];
            if rest.is_empty() {
                return Err(invalid(id, "octet 3.3 missing"));
            }
            if o32 & 0x10 != 0 {
                // A slot map: on an E1 four octets, bit 0 of the last one is timeslot 0;
                // on a T1 three octets starting at channel 1. The lowest channel is taken.
                let offset = if rest.len() >= 4 { 0 } else { 1 };
                let mut map = 0u32;
                for &o in rest.iter().take(4) {
                    map = map << 8 | u32::from(o);
                }
                if map == 0 {
                    return Err(invalid(id, "empty slot map"));
                }
                ChannelSel::Timeslot(map.trailing_zeros() as u8 + offset)
            } else {
                let n = rest[0] & 0x7F;
                if n == 0 {
                    return Err(invalid(id, "channel number 0"));
                }
                ChannelSel::Timeslot(n)
            }
        }
    };
    Ok(ChannelIdent { exclusive, sel })
}

fn decode_calling(c: &[u8]) -> Result<CallingNumber, DecodeError> {
    let id = ie::CALLING_PARTY_NUMBER;
    let Some(&o3) = c.first() else {
        return Err(invalid(id, "empty"));
    };
    let kind = NumberType { ton: (o3 >> 4) & 0x07, plan: o3 & 0x0F };
    let (presentation, screening, pos) = if o3 & 0x80 == 0 {
        let o3a = *c.get(1).ok_or(invalid(id, "octet 3a missing"))?;
        (Presentation::from_bits(o3a >> 5), Screening::from_bits(o3a), 2)
    } else {
        (Presentation::Allowed, Screening::UserNotScreened, 1)
    };
    Ok(CallingNumber { kind, presentation, screening, digits: digits(id, &c[pos..])? })
}

fn decode_called(c: &[u8]) -> Result<CalledNumber, DecodeError> {
    let id = ie::CALLED_PARTY_NUMBER;
    let Some(&o3) = c.first() else {
        return Err(invalid(id, "empty"));
    };
    if o3 & 0x80 == 0 {
        return Err(invalid(id, "octet 3 has no extension bit"));
    }
    let kind = NumberType { ton: (o3 >> 4) & 0x07, plan: o3 & 0x0F };
    Ok(CalledNumber { kind, digits: digits(id, &c[1..])? })
}

impl Message {
    pub fn new(kind: MessageType, call_ref: CallRef) -> Message {
        Message { call_ref, kind, ies: Ies::default() }
    }

    /// Decodes a whole layer-3 message.
    pub fn decode(b: &[u8]) -> Result<Message, DecodeError> {
        let (call_ref, kind, mut pos) = decode_header(b)?;
        let mut ies = Ies::default();
        let mut locked = 0u8;
        let mut codeset = 0u8;
        while pos < b.len() {
            let id = b[pos];
            if id & 0x80 != 0 {
                pos += 1;
                // Single-octet elements: shift, sending complete, and others to skip.
                if id & 0xF0 == 0x90 {
                    if id & 0x08 == 0 {
                        locked = id & 0x07;
                    }
                    codeset = id & 0x07;
                    continue;
                }
                if codeset == 0 && id == ie::SENDING_COMPLETE {
                    ies.sending_complete = true;
                } else {
                    ies.skipped += 1;
                }
                codeset = locked;
                continue;
            }
            let left = b.len() - pos;
            let len = match b.get(pos + 1) {
                Some(&l) => usize::from(l),
                None => return Err(DecodeError::Truncated { id, len: 0, left }),
            };
            if left < 2 + len {
                return Err(DecodeError::Truncated { id, len, left: left - 2 });
            }
            let c = &b[pos + 2..pos + 2 + len];
            pos += 2 + len;
            let cs = codeset;
            codeset = locked;
            if cs != 0 {
                ies.skipped += 1;
                continue;
            }
            // A repeated element keeps its first occurrence.
            match id {
                ie::BEARER_CAPABILITY if ies.bearer.is_none() => ies.bearer = Some(decode_bearer(c)?),
                ie::CAUSE if ies.cause.is_none() => ies.cause = Some(decode_cause(c)?),
                ie::CALL_STATE if ies.call_state.is_none() => {
                    let s = *c.first().ok_or(invalid(id, "empty"))?;
                    ies.call_state = Some(s & 0x3F);
                }
                ie::CHANNEL_IDENTIFICATION if ies.channel.is_none() => ies.channel = Some(decode_channel(c)?),
                ie::PROGRESS_INDICATOR if ies.progress.is_none() => {
                    if c.len() < 2 {
                        return Err(invalid(id, "needs octets 3 and 4"));
                    }
                    ies.progress = Some(ProgressInd { location: c[0] & 0x0F, description: c[1] & 0x7F });
                }
                ie::DISPLAY if ies.display.is_none() => {
                    // Some networks put a character set octet (high bit set) first.
                    let text = match c.first() {
                        Some(&o) if o & 0x80 != 0 => &c[1..],
                        _ => c,
                    };
                    ies.display = Some(ia5(id, text)?);
                }
                ie::KEYPAD_FACILITY if ies.keypad.is_none() => ies.keypad = Some(ia5(id, c)?),
                ie::CALLING_PARTY_NUMBER if ies.calling.is_none() => ies.calling = Some(decode_calling(c)?),
                ie::CALLED_PARTY_NUMBER if ies.called.is_none() => ies.called = Some(decode_called(c)?),
                ie::RESTART_INDICATOR if ies.restart.is_none() => {
                    let o = *c.first().ok_or(invalid(id, "empty"))?;
                    ies.restart = Some(match o & 0x07 {
                        0 => RestartClass::Indicated,
                        6 => RestartClass::SingleInterface,
                        7 => RestartClass::AllInterfaces,
                        _ => return Err(invalid(id, "reserved restart class")),
                    });
                }
                _ => ies.skipped += 1,
            }
        }
        Ok(Message { call_ref, kind, ies })
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let cr = self.call_ref;
        out.extend_from_slice(&[
            PROTOCOL_DISCRIMINATOR,
            2,
            (cr.value >> 8) as u8 & 0x7F | if cr.flag { 0x80 } else { 0 },
            cr.value as u8,
            self.kind.code(),
        ]);
        let ies = &self.ies;
        if ies.sending_complete {
            out.push(ie::SENDING_COMPLETE);
        }
        if let Some(b) = ies.bearer {
            match b.layer1 {
                Some(l1) => {
                    out.extend_from_slice(&[ie::BEARER_CAPABILITY, 3, 0x80 | b.capability, 0x90, 0xA0 | l1])
                }
                None => out.extend_from_slice(&[ie::BEARER_CAPABILITY, 2, 0x80 | b.capability, 0x90]),
            }
        }
        if let Some(c) = ies.cause {
            out.extend_from_slice(&[ie::CAUSE, 2, 0x80 | (c.location & 0x0F), 0x80 | (c.value & 0x7F)]);
        }
        if let Some(s) = ies.call_state {
            out.extend_from_slice(&[ie::CALL_STATE, 1, s & 0x3F]);
        }
        if let Some(ch) = ies.channel {
            let excl = if ch.exclusive { 0x08 } else { 0 };
            match ch.sel {
                ChannelSel::None => out.extend_from_slice(&[ie::CHANNEL_IDENTIFICATION, 1, 0xA0 | excl]),
                ChannelSel::Any => out.extend_from_slice(&[ie::CHANNEL_IDENTIFICATION, 1, 0xA3 | excl]),
                ChannelSel::Timeslot(t) => out.extend_from_slice(&[
                    ie::CHANNEL_IDENTIFICATION,
                    3,
                    0xA1 | excl,
                    0x83,
                    0x80 | (t & 0x7F),
                ]),
            }
        }
        if let Some(p) = ies.progress {
            out.extend_from_slice(&[
                ie::PROGRESS_INDICATOR,
                2,
                0x80 | (p.location & 0x0F),
                0x80 | p.description,
            ]);
        }
        if let Some(d) = &ies.display {
            push_text(out, ie::DISPLAY, d.as_bytes());
        }
        if let Some(k) = &ies.keypad {
            push_text(out, ie::KEYPAD_FACILITY, k.as_bytes());
        }
        if let Some(n) = &ies.calling {
            let digits = clip(n.digits.as_bytes(), 253);
            out.push(ie::CALLING_PARTY_NUMBER);
            out.push(2 + digits.len() as u8);
            out.push((n.kind.ton & 7) << 4 | (n.kind.plan & 0x0F));
            out.push(0x80 | n.presentation.bits() << 5 | n.screening.bits());
            out.extend_from_slice(digits);
        }
        if let Some(n) = &ies.called {
            let digits = clip(n.digits.as_bytes(), 254);
            out.push(ie::CALLED_PARTY_NUMBER);
            out.push(1 + digits.len() as u8);
            out.push(0x80 | (n.kind.ton & 7) << 4 | (n.kind.plan & 0x0F));
            out.extend_from_slice(digits);
        }
        if let Some(r) = ies.restart {
            let class = match r {
                RestartClass::Indicated => 0,
                RestartClass::SingleInterface => 6,
                RestartClass::AllInterfaces => 7,
            };
            out.extend_from_slice(&[ie::RESTART_INDICATOR, 1, 0x80 | class]);
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        self.encode(&mut v);
        v
    }
}

fn clip(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
}

fn push_text(out: &mut Vec<u8>, id: u8, text: &[u8]) {
    // Elements have a one-octet length; longer text is cut, and non-IA5 octets replaced.
    let text = clip(text, 255);
    out.push(id);
    out.push(text.len() as u8);
    out.extend(text.iter().map(|&c| if c & 0x80 != 0 { b'?' } else { c }));
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} cref={}{}", self.kind, self.call_ref.value, if self.call_ref.flag { "*" } else { "" })
    }
}

#[cfg(test)]
mod tests;
