//! Caller id messages: Telcordia GR-30, ETSI EN 300 659-3, YD/T 1277, and DTMF caller id.
//!
//! # The FSK message
//!
//! All three FSK standards carry the same frame, sent with the [`super::fsk`] modem after a
//! channel seizure and a mark signal: a message type byte, a length byte (the bytes that
//! follow, checksum excluded), the body, and a checksum that makes all bytes sum to zero
//! modulo 256. [`RawMessage`] is that frame, checked; [`RawMessage::parse`] reads its body
//! into a [`Message`]:
//!
//! * `0x04` SDMF caller id (GR-30, YD/T 1277): the body is the date and time as eight ASCII
//!   digits `MMDDhhmm` followed by the number, or `O` (out of area, unavailable) or `P`
//!   (private) in its place;
//! * `0x80` MDMF caller id (GR-30, YD/T 1277) or call set-up (EN 300 659-3): parameters,
//!   each a type byte, a length byte and a value: `0x01` date and time (`MMDDhhmm`), `0x02`
//!   calling number, `0x04` reason for the number's absence (`O` or `P`), `0x07` name,
//!   `0x08` reason for the name's absence, and for ETSI also `0x03` called number and
//!   `0x1A` redirecting number. In GR-30, `0x03` is the caller's dialable directory number,
//!   which is taken as the number when no `0x02` is present. Unknown parameters are
//!   skipped, as EN 300 659-3 asks;
//! * `0x06` SDMF message waiting (GR-30): `0x42 0x42 0x42` on, `0x6F 0x6F 0x6F` off;
//! * `0x82` MDMF message waiting (GR-30, EN 300 659-3): `0x0B` visual indicator (`0xFF` on,
//!   `0x00` off) and optionally `0x13` number of messages.
//!
//! Date and time values that are not valid (a month of 13, letters) leave the date out
//! rather than fail the message: the number is what matters, and some exchanges send a
//! placeholder date. Structural faults — a bad checksum, a length that disagrees, a
//! parameter running past the end — are errors ([`CallerIdError`]).
//!
//! # YD/T 1277 (China)
//!
//! YD/T 1277.1, the Chinese caller id standard, takes its frame from GR-30 unchanged:
//! message types `0x04` and `0x80`, the same parameters, `O`/`P` for absence, the same
//! checksum. What differs, and what [`Standard::Ydt1277`] implements:
//!
//! * the FSK burst is sent on hook between the first and the second ring, as in GR-30 (not
//!   before the first ring after a polarity reversal, as most ETSI networks do), while the
//!   DTMF variant used on some Chinese lines comes before the first ring;
//! * exchanges send Bell 202 (1200/2200 Hz) or V.23 (1300/2100 Hz). The receiver decodes
//!   both whichever it is set to (see [`super::fsk`]), and the sender uses Bell 202, the
//!   common choice;
//! * names are GB 2312 (two bytes per Chinese character). Without a conversion table in
//!   the daemon, [`CallerId::name`] holds a name only when it is plain ASCII;
//!   [`CallerId::name_bytes`] always holds the bytes as sent, for display code that has
//!   the table. GR-30 and ETSI names are read as Latin-1.
//!
//! # DTMF caller id
//!
//! [`parse_dtmf_clip`] reads the digit strings of ETSI DTMF CLIP and its national variants
//! into the same [`CallerId`], so the call model has one type for both.
//!
//! # Real-time use
//!
//! [`CallerIdReceiver`] and [`CallerIdDecoder`] allocate nothing: a message comes out as a
//! fixed-size [`RawMessage`] that can cross a ring to the control plane, where
//! [`RawMessage::parse`] builds the [`CallerId`] (which allocates its strings).
//! [`CallerIdSender`] likewise allocates nothing once built.

use super::fsk::{FskError, FskEvent, FskMode, FskReceiver, FskTransmitter, Preamble};

/// SDMF caller id (GR-30, YD/T 1277).
pub const SDMF_CALLER_ID: u8 = 0x04;
/// SDMF message waiting indicator (GR-30).
pub const SDMF_MESSAGE_WAITING: u8 = 0x06;
/// MDMF caller id (GR-30, YD/T 1277) and ETSI call set-up.
pub const MDMF_CALLER_ID: u8 = 0x80;
/// MDMF message waiting indicator (GR-30, EN 300 659-3).
pub const MDMF_MESSAGE_WAITING: u8 = 0x82;
/// ETSI advice of charge; framed and checked, but not parsed.
pub const ETSI_ADVICE_OF_CHARGE: u8 = 0x86;
/// ETSI short message service; framed and checked, but not parsed.
pub const ETSI_SMS: u8 = 0x89;

/// MDMF parameter: date and time, `MMDDhhmm`.
pub const PARAM_DATE_TIME: u8 = 0x01;
/// MDMF parameter: calling number.
pub const PARAM_CALLING_NUMBER: u8 = 0x02;
/// MDMF parameter: ETSI called number; GR-30 dialable directory number.
pub const PARAM_CALLED_NUMBER: u8 = 0x03;
/// MDMF parameter: reason for the absence of the number.
pub const PARAM_NUMBER_ABSENCE: u8 = 0x04;
/// MDMF parameter: calling name.
pub const PARAM_NAME: u8 = 0x07;
/// MDMF parameter: reason for the absence of the name.
pub const PARAM_NAME_ABSENCE: u8 = 0x08;
/// MDMF parameter: visual indicator (message waiting).
pub const PARAM_VISUAL_INDICATOR: u8 = 0x0B;
/// MDMF parameter: number of messages waiting.
pub const PARAM_MESSAGE_COUNT: u8 = 0x13;
/// MDMF parameter: ETSI redirecting number.
pub const PARAM_REDIRECTING_NUMBER: u8 = 0x1A;

/// Largest frame: type, length, 255 body bytes, checksum.
pub const MAX_MESSAGE_BYTES: usize = 258;

/// Bytes after a mark signal in which the message type byte is looked for. A noise hit in
/// the mark signal can put a stray character or two in front of the message.
const MAX_LEAD: usize = 3;

/// The caller id standards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Standard {
    /// Telcordia GR-30 (North America): Bell 202, 300 seizure and 180 mark bits, SDMF or
    /// MDMF, between the first and second ring.
    Bellcore,
    /// ETSI EN 300 659: V.23, 300 seizure and 80 mark bits, call set-up message (MDMF).
    Etsi,
    /// YD/T 1277 (China): GR-30's frame and timing, Bell 202 or V.23, GB 2312 names.
    Ydt1277,
}

impl Standard {
    /// The modulation the standard's exchanges send.
    pub const fn modem(self) -> FskMode {
        match self {
            Standard::Bellcore | Standard::Ydt1277 => FskMode::Bell202,
            Standard::Etsi => FskMode::V23,
        }
    }

    /// The preamble a sender uses: 300 seizure bits, then 180 mark bits (GR-30, YD/T 1277)
    /// or 80 (EN 300 659-1 allows 55 to 105), one stop bit per character and 5 trailing
    /// mark bits.
    pub const fn preamble(self) -> Preamble {
        let mark_bits = match self {
            Standard::Bellcore | Standard::Ydt1277 => 180,
            Standard::Etsi => 80,
        };
        Preamble { seizure_bits: 300, mark_bits, stop_bits: 1, trailing_mark_bits: 5 }
    }
}

/// Single or multiple data message format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// SDMF: date, time and number only (GR-30, YD/T 1277).
    Sdmf,
    /// MDMF: typed parameters (all standards; the only format of EN 300 659-3).
    Mdmf,
}

/// Why a number or name is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Absence {
    /// `O`: out of area, unavailable (also DTMF `D3`, `B00`).
    Unavailable,
    /// `P`: private, withheld by the caller (also DTMF `D1`, `B10`).
    Private,
    /// DTMF `D2`: unavailable because the call is international. Sent as `O` in FSK.
    International,
    /// Any other code, as received (an FSK byte, or a DTMF code's value).
    Other(u8),
}

impl Absence {
    fn from_fsk(b: u8) -> Absence {
        match b {
            b'O' => Absence::Unavailable,
            b'P' => Absence::Private,
            other => Absence::Other(other),
        }
    }

    fn to_fsk(self) -> u8 {
        match self {
            Absence::Unavailable | Absence::International => b'O',
            Absence::Private => b'P',
            Absence::Other(b) => b,
        }
    }
}

/// Who is calling, as far as the network says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerId {
    /// The calling number.
    pub number: Option<String>,
    /// The calling name, when it could be read as text (see the module documentation).
    pub name: Option<String>,
    /// The name's bytes exactly as sent. When encoding, these are sent in preference to
    /// `name`.
    pub name_bytes: Option<Vec<u8>>,
    /// Date and time of the call: (month, day, hour, minute).
    pub datetime: Option<(u8, u8, u8, u8)>,
    /// Why there is no number.
    pub number_absence: Option<Absence>,
    /// Why there is no name.
    pub name_absence: Option<Absence>,
    /// The called number (ETSI parameter `0x03`).
    pub called_number: Option<String>,
    /// The redirecting number (ETSI parameter `0x1A`, DTMF `D` field).
    pub redirecting_number: Option<String>,
}

/// A decoded FSK message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Caller id (SDMF `0x04`, MDMF or call set-up `0x80`).
    CallerId(CallerId),
    /// Message waiting indicator (`0x06`, `0x82`); `count` is the number of messages when
    /// the network sends it.
    MessageWaiting { active: bool, count: Option<u8> },
}

/// What is wrong with a message or a DTMF caller id string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallerIdError {
    #[error("bad checksum: the message needs {expected:#04x}, it carries {found:#04x}")]
    BadChecksum { expected: u8, found: u8 },
    #[error("message length byte says {declared} bytes but {actual} follow")]
    LengthMismatch { declared: u8, actual: usize },
    #[error("a message needs at least 3 bytes, got {0}")]
    TooShort(usize),
    #[error("message type {0:#04x} is not supported")]
    UnsupportedMessageType(u8),
    #[error("parameter {param:#04x} runs past the end of the message")]
    ParameterOverrun { param: u8 },
    #[error("parameter {param:#04x} has an invalid value")]
    BadParameter { param: u8 },
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("a character was lost (framing error) after {received} bytes of the message")]
    Framing { received: usize },
    #[error("the signal ended after {received} bytes of the message")]
    SignalLost { received: usize },
    #[error("the line idled on mark for 25 bits or more after {received} bytes of the message")]
    Interrupted { received: usize },
    #[error("the {0:?} format is not defined for this standard")]
    UnsupportedFormat(Format),
    #[error("the {0} does not fit in a message")]
    TooLong(&'static str),
    #[error("the {0} cannot be encoded for this standard")]
    NotEncodable(&'static str),
    #[error("an SDMF caller id needs the date and time")]
    MissingDateTime,
    #[error("an SDMF caller id needs a number or a reason for its absence")]
    MissingNumber,
    #[error("'{0}' is not a DTMF caller id character")]
    BadDtmfChar(char),
    #[error("empty DTMF caller id")]
    EmptyDtmf,
    #[error("the DTMF caller id {0} is not in a known layout")]
    BadDtmfLayout(&'static str),
}

/// One FSK frame, with a checked length and checksum. Fixed-size, so it can be passed
/// between threads without allocating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    bytes: heapless::Vec<u8, MAX_MESSAGE_BYTES>,
}

impl RawMessage {
    /// Checks a whole frame: type, length, body and checksum.
    pub fn from_bytes(bytes: &[u8]) -> Result<RawMessage, CallerIdError> {
        if bytes.len() < 3 {
            return Err(CallerIdError::TooShort(bytes.len()));
        }
        let declared = bytes[1];
        if usize::from(declared) + 3 != bytes.len() {
            return Err(CallerIdError::LengthMismatch { declared, actual: bytes.len() - 3 });
        }
        let (head, tail) = bytes.split_at(bytes.len() - 1);
        let expected = checksum(head);
        if expected != tail[0] {
            return Err(CallerIdError::BadChecksum { expected, found: tail[0] });
        }
        // At most 258 bytes by the length check above, so this always fits.
        let bytes = heapless::Vec::from_slice(bytes).map_err(|_| CallerIdError::TooLong("message"))?;
        Ok(RawMessage { bytes })
    }

    /// Builds a frame from a type and a body, adding the length and the checksum.
    pub fn new(message_type: u8, body: &[u8]) -> Result<RawMessage, CallerIdError> {
        let len = u8::try_from(body.len()).map_err(|_| CallerIdError::TooLong("message"))?;
        let mut bytes = heapless::Vec::new();
        // Capacity is 258 and the body at most 255 bytes, so none of these pushes fails.
        let _ = bytes.push(message_type);
        let _ = bytes.push(len);
        let _ = bytes.extend_from_slice(body);
        let sum = checksum(&bytes);
        let _ = bytes.push(sum);
        Ok(RawMessage { bytes })
    }

    /// The whole frame, checksum included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The message type byte.
    pub fn message_type(&self) -> u8 {
        self.bytes[0]
    }

    /// The body: between the length byte and the checksum.
    pub fn body(&self) -> &[u8] {
        &self.bytes[2..self.bytes.len() - 1]
    }

    /// Reads the body. Allocates the strings of a [`CallerId`].
    pub fn parse(&self, standard: Standard) -> Result<Message, CallerIdError> {
        let body = self.body();
        match self.message_type() {
            SDMF_CALLER_ID => parse_sdmf(body).map(Message::CallerId),
            MDMF_CALLER_ID => parse_mdmf(body, standard).map(Message::CallerId),
            SDMF_MESSAGE_WAITING => match body {
                [0x42, 0x42, 0x42] => Ok(Message::MessageWaiting { active: true, count: None }),
                [0x6F, 0x6F, 0x6F] => Ok(Message::MessageWaiting { active: false, count: None }),
                _ => Err(CallerIdError::Malformed("SDMF message waiting is not 0x42 or 0x6F three times")),
            },
            MDMF_MESSAGE_WAITING => parse_mdmf_waiting(body),
            other => Err(CallerIdError::UnsupportedMessageType(other)),
        }
    }
}

/// The byte that makes `bytes` plus itself sum to zero modulo 256.
fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)).wrapping_neg()
}

fn is_message_type(b: u8) -> bool {
    matches!(
        b,
        SDMF_CALLER_ID
            | SDMF_MESSAGE_WAITING
            | MDMF_CALLER_ID
            | MDMF_MESSAGE_WAITING
            | ETSI_ADVICE_OF_CHARGE
            | ETSI_SMS
    )
}

/// `MMDDhhmm`, or `None` when it is not eight digits of a plausible date and time.
fn parse_datetime(v: &[u8]) -> Option<(u8, u8, u8, u8)> {
    if v.len() != 8 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let two = |i: usize| (v[i] - b'0') * 10 + (v[i + 1] - b'0');
    let (month, day, hour, minute) = (two(0), two(2), two(4), two(6));
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour <= 23 && minute <= 59;
    valid.then_some((month, day, hour, minute))
}

/// A number: printable ASCII.
fn parse_number(v: &[u8], param: u8) -> Result<String, CallerIdError> {
    if v.iter().all(|b| (0x20..=0x7E).contains(b)) {
        Ok(v.iter().map(|&b| char::from(b)).collect())
    } else {
        Err(CallerIdError::BadParameter { param })
    }
}

/// A name as text: Latin-1 for GR-30 and ETSI, ASCII only for YD/T 1277 (whose names are
/// GB 2312). Control characters become U+FFFD so they cannot upset a display.
fn parse_name(v: &[u8], standard: Standard) -> Option<String> {
    if standard == Standard::Ydt1277 && !v.is_ascii() {
        return None;
    }
    Some(
        v.iter()
            .map(|&b| if b < 0x20 || (0x7F..0xA0).contains(&b) { '\u{FFFD}' } else { char::from(b) })
            .collect(),
    )
}

fn parse_absence(v: &[u8], param: u8) -> Result<Absence, CallerIdError> {
    match v {
        [b] => Ok(Absence::from_fsk(*b)),
        _ => Err(CallerIdError::BadParameter { param }),
    }
}

fn parse_sdmf(body: &[u8]) -> Result<CallerId, CallerIdError> {
    if body.len() < 8 {
        return Err(CallerIdError::Malformed("SDMF shorter than its date and time"));
    }
    let (date, rest) = body.split_at(8);
    let mut id = CallerId { datetime: parse_datetime(date), ..CallerId::default() };
    match rest {
        [] => {}
        [b'O'] => id.number_absence = Some(Absence::Unavailable),
        [b'P'] => id.number_absence = Some(Absence::Private),
        number => id.number = Some(parse_number(number, 0)?),
    }
    Ok(id)
}

/// Walks MDMF parameters: `(type, value)` for each, or the first structural error.
fn for_each_param(
    body: &[u8],
    mut f: impl FnMut(u8, &[u8]) -> Result<(), CallerIdError>,
) -> Result<(), CallerIdError> {
    let mut rest = body;
    while !rest.is_empty() {
        let [param, len, tail @ ..] = rest else {
            return Err(CallerIdError::ParameterOverrun { param: rest[0] });
        };
        let len = usize::from(*len);
        if len > tail.len() {
            return Err(CallerIdError::ParameterOverrun { param: *param });
        }
        let (value, after) = tail.split_at(len);
        f(*param, value)?;
        rest = after;
    }
    Ok(())
}

fn parse_mdmf(body: &[u8], standard: Standard) -> Result<CallerId, CallerIdError> {
    let mut id = CallerId::default();
    let mut dialable = None;
    for_each_param(body, |param, v| {
        match param {
            PARAM_DATE_TIME => id.datetime = parse_datetime(v),
            PARAM_CALLING_NUMBER => id.number = Some(parse_number(v, param)?),
            PARAM_CALLED_NUMBER if standard == Standard::Etsi => {
                id.called_number = Some(parse_number(v, param)?);
            }
            PARAM_CALLED_NUMBER => dialable = Some(parse_number(v, param)?),
            PARAM_NUMBER_ABSENCE => id.number_absence = Some(parse_absence(v, param)?),
            PARAM_NAME => {
                id.name = parse_name(v, standard);
                id.name_bytes = Some(v.to_vec());
            }
            PARAM_NAME_ABSENCE => id.name_absence = Some(parse_absence(v, param)?),
            PARAM_REDIRECTING_NUMBER if standard == Standard::Etsi => {
                id.redirecting_number = Some(parse_number(v, param)?);
            }
            // EN 300 659-3 asks receivers to skip parameters they do not know.
            _ => {}
        }
        Ok(())
    })?;
    if id.number.is_none() {
        id.number = dialable;
    }
    Ok(id)
}

fn parse_mdmf_waiting(body: &[u8]) -> Result<Message, CallerIdError> {
    let mut active = None;
    let mut count = None;
    for_each_param(body, |param, v| {
        match (param, v) {
            (PARAM_VISUAL_INDICATOR, [0xFF]) => active = Some(true),
            (PARAM_VISUAL_INDICATOR, [0x00]) => active = Some(false),
            (PARAM_VISUAL_INDICATOR, _) => return Err(CallerIdError::BadParameter { param }),
            (PARAM_MESSAGE_COUNT, [n]) => count = Some(*n),
            (PARAM_MESSAGE_COUNT, _) => return Err(CallerIdError::BadParameter { param }),
            _ => {}
        }
        Ok(())
    })?;
    match active {
        Some(active) => Ok(Message::MessageWaiting { active, count }),
        None => Err(CallerIdError::Malformed("message waiting without a visual indicator")),
    }
}

/// A message body being built; lengths are checked as parameters are added.
struct Body {
    bytes: heapless::Vec<u8, 255>,
}

impl Body {
    fn new() -> Body {
        Body { bytes: heapless::Vec::new() }
    }

    fn raw(&mut self, v: &[u8]) -> Result<(), CallerIdError> {
        self.bytes.extend_from_slice(v).map_err(|_| CallerIdError::TooLong("message"))
    }

    fn param(&mut self, param: u8, v: &[u8], what: &'static str) -> Result<(), CallerIdError> {
        let len = u8::try_from(v.len()).map_err(|_| CallerIdError::TooLong(what))?;
        self.raw(&[param, len])?;
        self.raw(v)
    }
}

fn encode_datetime(dt: (u8, u8, u8, u8)) -> Result<[u8; 8], CallerIdError> {
    let (month, day, hour, minute) = dt;
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour <= 23 && minute <= 59;
    if !valid {
        return Err(CallerIdError::NotEncodable("date and time"));
    }
    let mut out = [0u8; 8];
    for (i, v) in [month, day, hour, minute].into_iter().enumerate() {
        out[2 * i] = b'0' + v / 10;
        out[2 * i + 1] = b'0' + v % 10;
    }
    Ok(out)
}

fn encode_number<'a>(n: &'a str, what: &'static str) -> Result<&'a [u8], CallerIdError> {
    if n.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        Ok(n.as_bytes())
    } else {
        Err(CallerIdError::NotEncodable(what))
    }
}

/// The name's bytes for the standard: the bytes as given, or the text as Latin-1 (GR-30,
/// ETSI) or ASCII (YD/T 1277, whose GB 2312 needs `name_bytes`).
fn encode_name(id: &CallerId, standard: Standard) -> Result<Option<heapless::Vec<u8, 255>>, CallerIdError> {
    if let Some(bytes) = &id.name_bytes {
        return heapless::Vec::from_slice(bytes).map(Some).map_err(|_| CallerIdError::TooLong("name"));
    }
    let Some(name) = &id.name else { return Ok(None) };
    let limit = if standard == Standard::Ydt1277 { 0x7F } else { 0xFF };
    let mut out = heapless::Vec::new();
    for c in name.chars() {
        let b = u8::try_from(u32::from(c))
            .ok()
            .filter(|&b| b <= limit)
            .ok_or(CallerIdError::NotEncodable("name"))?;
        out.push(b).map_err(|_| CallerIdError::TooLong("name"))?;
    }
    Ok(Some(out))
}

impl CallerId {
    /// Encodes the caller id as a frame. SDMF carries only the date, time and number (or
    /// its absence); the other fields are left out. ETSI has no SDMF.
    pub fn encode(&self, standard: Standard, format: Format) -> Result<RawMessage, CallerIdError> {
        let mut body = Body::new();
        match format {
            Format::Sdmf => {
                if standard == Standard::Etsi {
                    return Err(CallerIdError::UnsupportedFormat(format));
                }
                let dt = self.datetime.ok_or(CallerIdError::MissingDateTime)?;
                body.raw(&encode_datetime(dt)?)?;
                match (&self.number, self.number_absence) {
                    (Some(n), _) => body.raw(encode_number(n, "number")?)?,
                    (None, Some(a)) => body.raw(&[a.to_fsk()])?,
                    (None, None) => return Err(CallerIdError::MissingNumber),
                }
                RawMessage::new(SDMF_CALLER_ID, &body.bytes)
            }
            Format::Mdmf => {
                if let Some(dt) = self.datetime {
                    body.param(PARAM_DATE_TIME, &encode_datetime(dt)?, "date and time")?;
                }
                match (&self.number, self.number_absence) {
                    (Some(n), _) => {
                        body.param(PARAM_CALLING_NUMBER, encode_number(n, "number")?, "number")?
                    }
                    (None, Some(a)) => body.param(PARAM_NUMBER_ABSENCE, &[a.to_fsk()], "number absence")?,
                    (None, None) => {}
                }
                if standard == Standard::Etsi {
                    if let Some(n) = &self.called_number {
                        body.param(PARAM_CALLED_NUMBER, encode_number(n, "called number")?, "called number")?;
                    }
                }
                match (encode_name(self, standard)?, self.name_absence) {
                    (Some(name), _) => body.param(PARAM_NAME, &name, "name")?,
                    (None, Some(a)) => body.param(PARAM_NAME_ABSENCE, &[a.to_fsk()], "name absence")?,
                    (None, None) => {}
                }
                if standard == Standard::Etsi {
                    if let Some(n) = &self.redirecting_number {
                        let v = encode_number(n, "redirecting number")?;
                        body.param(PARAM_REDIRECTING_NUMBER, v, "redirecting number")?;
                    }
                }
                RawMessage::new(MDMF_CALLER_ID, &body.bytes)
            }
        }
    }
}

impl Message {
    /// Encodes the message as a frame; see [`CallerId::encode`].
    pub fn encode(&self, standard: Standard, format: Format) -> Result<RawMessage, CallerIdError> {
        match self {
            Message::CallerId(id) => id.encode(standard, format),
            Message::MessageWaiting { active, count } => match format {
                Format::Sdmf if standard == Standard::Etsi => Err(CallerIdError::UnsupportedFormat(format)),
                Format::Sdmf => {
                    let b = if *active { 0x42 } else { 0x6F };
                    RawMessage::new(SDMF_MESSAGE_WAITING, &[b, b, b])
                }
                Format::Mdmf => {
                    let mut body = Body::new();
                    body.param(PARAM_VISUAL_INDICATOR, &[if *active { 0xFF } else { 0x00 }], "indicator")?;
                    if let Some(n) = count {
                        body.param(PARAM_MESSAGE_COUNT, &[*n], "message count")?;
                    }
                    RawMessage::new(MDMF_MESSAGE_WAITING, &body.bytes)
                }
            },
        }
    }
}

/// Turns the receiver's events into frames. Allocation-free.
///
/// A frame is looked for only after a mark signal ([`FskEvent::Mark`]): its type byte must
/// be one of the first three characters after it (so a character made of noise inside the
/// mark signal does not lose the message), and every such candidate is followed until its
/// declared length is complete. The first candidate whose checksum is right is the
/// message; if none is, the error of the first is reported. Requiring the mark signal is
/// what keeps noise on an idle line from producing messages: random bits give a run of 25
/// marks about once in 60 million bits, and then a known type, a consistent length and a
/// right checksum are needed too.
#[derive(Clone, Debug, Default)]
pub struct CallerIdDecoder {
    buf: heapless::Vec<u8, { MAX_MESSAGE_BYTES + MAX_LEAD }>,
    /// Offsets in `buf` of the candidate frames still open.
    starts: heapless::Vec<u8, MAX_LEAD>,
    armed: bool,
    /// The first candidate's error, reported when no candidate succeeds.
    failure: Option<CallerIdError>,
}

impl CallerIdDecoder {
    /// A decoder waiting for a mark signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any message in progress.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.starts.clear();
        self.armed = false;
        self.failure = None;
    }

    /// True while a frame has started and is not complete.
    pub fn in_message(&self) -> bool {
        !self.starts.is_empty()
    }

    /// Takes one receiver event; returns a frame, or why the frame in progress was lost.
    pub fn push(&mut self, event: FskEvent) -> Option<Result<RawMessage, CallerIdError>> {
        match event {
            FskEvent::Seizure => None,
            FskEvent::Mark => {
                // GR-30 allows up to 20 mark bits between characters, fewer than a mark
                // signal, so a mark signal in the middle of a frame means it was cut off.
                let cut = self.in_message().then(|| CallerIdError::Interrupted { received: self.received() });
                self.reset();
                self.armed = true;
                cut.map(Err)
            }
            FskEvent::FramingError => {
                if self.in_message() {
                    let e = CallerIdError::Framing { received: self.received() };
                    self.reset();
                    Some(Err(e))
                } else {
                    // Noise in the mark signal: the message has not started yet.
                    None
                }
            }
            FskEvent::SignalLost => {
                let e = self.in_message().then(|| CallerIdError::SignalLost { received: self.received() });
                self.reset();
                e.map(Err)
            }
            FskEvent::Byte(b) => self.byte(b),
        }
    }

    /// Bytes received of the oldest open candidate.
    fn received(&self) -> usize {
        self.starts.first().map_or(0, |&s| self.buf.len() - usize::from(s))
    }

    fn byte(&mut self, b: u8) -> Option<Result<RawMessage, CallerIdError>> {
        if !self.armed {
            return None;
        }
        if self.buf.push(b).is_err() {
            // Cannot happen: every candidate completes within the buffer. Start over.
            self.reset();
            return None;
        }
        let pos = self.buf.len() - 1;
        if pos < MAX_LEAD && is_message_type(b) {
            // `starts` holds at most MAX_LEAD offsets, one per lead position.
            let _ = self.starts.push(pos as u8);
        }
        let mut i = 0;
        while i < self.starts.len() {
            let s = usize::from(self.starts[i]);
            let have = self.buf.len() - s;
            if have >= 2 && have == usize::from(self.buf[s + 1]) + 3 {
                match RawMessage::from_bytes(&self.buf[s..]) {
                    Ok(m) => {
                        self.reset();
                        return Some(Ok(m));
                    }
                    Err(e) => {
                        self.failure.get_or_insert(e);
                        self.starts.remove(i);
                        continue;
                    }
                }
            }
            i += 1;
        }
        if self.starts.is_empty() && self.buf.len() >= MAX_LEAD {
            // Every candidate failed, or no type byte came: wait for the next mark signal.
            let failure = self.failure.take();
            self.reset();
            return failure.map(Err);
        }
        None
    }
}

/// FSK caller id receiver: demodulator and frame decoder. Allocation-free.
#[derive(Clone, Debug)]
pub struct CallerIdReceiver {
    fsk: FskReceiver,
    decoder: CallerIdDecoder,
}

impl CallerIdReceiver {
    /// A receiver tuned to `mode`; it decodes the other modulation as well.
    pub fn new(mode: FskMode) -> Self {
        CallerIdReceiver { fsk: FskReceiver::new(mode), decoder: CallerIdDecoder::new() }
    }

    /// A receiver for the standard's modulation.
    pub fn for_standard(standard: Standard) -> Self {
        Self::new(standard.modem())
    }

    /// Forgets everything in progress.
    pub fn reset(&mut self) {
        self.fsk.reset();
        self.decoder.reset();
    }

    /// The demodulator, for its state (for example the twist it measured).
    pub fn demodulator(&self) -> &FskReceiver {
        &self.fsk
    }

    /// Feeds audio; `on_message` gets each frame received and each frame lost.
    pub fn process(
        &mut self,
        samples: &[i16],
        mut on_message: impl FnMut(Result<RawMessage, CallerIdError>),
    ) {
        let decoder = &mut self.decoder;
        self.fsk.process(samples, |e| {
            if let Some(m) = decoder.push(e) {
                on_message(m);
            }
        });
    }
}

/// FSK caller id sender, for FXS ports and the simulated exchange. Allocation-free.
#[derive(Clone, Debug)]
pub struct CallerIdSender {
    tx: FskTransmitter,
    preamble: Preamble,
}

impl CallerIdSender {
    /// A sender with the standard's modulation and preamble at `level_dbm0` (-13.5 is
    /// typical).
    pub fn new(standard: Standard, level_dbm0: f32) -> Self {
        CallerIdSender {
            tx: FskTransmitter::new(standard.modem(), level_dbm0),
            preamble: standard.preamble(),
        }
    }

    /// The preamble bursts start with.
    pub fn preamble(&self) -> Preamble {
        self.preamble
    }

    /// Changes the preamble of the bursts that start after this call (for example 80 mark
    /// bits for caller id on call waiting).
    pub fn set_preamble(&mut self, preamble: Preamble) {
        self.preamble = preamble;
    }

    /// The modem, for its level and baud rate settings.
    pub fn transmitter_mut(&mut self) -> &mut FskTransmitter {
        &mut self.tx
    }

    /// Starts sending a message.
    pub fn send(&mut self, message: &RawMessage) -> Result<(), FskError> {
        self.tx.send(self.preamble, message.as_bytes())
    }

    /// How many samples sending `message` takes.
    pub fn burst_samples(&self, message: &RawMessage) -> usize {
        self.tx.burst_samples(&self.preamble, message.as_bytes().len())
    }

    /// True when nothing is being sent.
    pub fn is_idle(&self) -> bool {
        self.tx.is_idle()
    }

    /// Writes the burst into `out`; see [`FskTransmitter::fill`].
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        self.tx.fill(out)
    }
}

/// Reads a DTMF caller id digit string, as collected from the DTMF detector, into a
/// [`CallerId`]. One trailing terminator (`C` or `#`) is optional. Recognised layouts:
///
/// * ETSI (EN 300 659-1 annex B) and most DTMF countries: `A<number>C`, with optional
///   further fields `D<redirecting number>` and `B<code>`, where code `00` means the number
///   is unavailable and `10` that it is private: `A0123456C`, `A0123D0456C`, `B10C`;
/// * `A<number>#`, and `D<code>#` for no number: `1` private, `2` international, `3`
///   unavailable;
/// * `D<number>C` (Taiwan, Kuwait, some Chinese exchanges);
/// * `<number>#` (Denmark, the Netherlands), with no start code.
///
/// Numbers are the digits `0`-`9` (and `*`, which some networks send).
pub fn parse_dtmf_clip(digits: &str) -> Result<CallerId, CallerIdError> {
    if digits.is_empty() {
        return Err(CallerIdError::EmptyDtmf);
    }
    if let Some(bad) = digits.chars().find(|&c| !super::dtmf::is_dtmf_digit(c)) {
        return Err(CallerIdError::BadDtmfChar(bad));
    }
    let (body, terminator) = match digits.as_bytes()[digits.len() - 1] {
        t @ (b'C' | b'#') => (&digits[..digits.len() - 1], Some(t)),
        _ => (digits, None),
    };
    let is_number = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || b == b'*');
    let mut id = CallerId::default();
    let first = body.as_bytes().first().copied();
    match first {
        // D and one code digit before a '#': the reason there is no number.
        Some(b'D') if terminator == Some(b'#') && body.len() == 2 => {
            let code = body.as_bytes()[1];
            id.number_absence = Some(match code {
                b'1' => Absence::Private,
                b'2' => Absence::International,
                b'3' => Absence::Unavailable,
                b'0'..=b'9' => Absence::Other(code - b'0'),
                _ => return Err(CallerIdError::BadDtmfLayout("has a D code that is not a digit")),
            });
        }
        // D<number>: the Taiwan layout, whatever the terminator.
        Some(b'D') => {
            let n = &body[1..];
            if n.is_empty() || !is_number(n) {
                return Err(CallerIdError::BadDtmfLayout("has a D field that is not a number"));
            }
            id.number = Some(n.to_owned());
        }
        Some(b'A' | b'B') => parse_dtmf_fields(body, &mut id)?,
        Some(b'0'..=b'9') if is_number(body) => id.number = Some(body.to_owned()),
        _ => return Err(CallerIdError::BadDtmfLayout("does not start with A, B, D or a digit")),
    }
    if id.number.is_none() && id.number_absence.is_none() && id.redirecting_number.is_none() {
        return Err(CallerIdError::BadDtmfLayout("holds neither a number nor a reason for its absence"));
    }
    Ok(id)
}

/// The ETSI layout: fields introduced by `A` (number), `D` (redirecting number) and `B`
/// (special information code), each at most once.
fn parse_dtmf_fields(body: &str, id: &mut CallerId) -> Result<(), CallerIdError> {
    let mut seen = [false; 3];
    let mut rest = body;
    while let Some(marker) = rest.as_bytes().first().copied() {
        let end = rest[1..].find(|c: char| !(c.is_ascii_digit() || c == '*')).map_or(rest.len(), |p| p + 1);
        let value = &rest[1..end];
        rest = &rest[end..];
        let slot = match marker {
            b'A' => 0,
            b'D' => 1,
            b'B' => 2,
            _ => return Err(CallerIdError::BadDtmfLayout("has a field marker other than A, B or D")),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(CallerIdError::BadDtmfLayout("repeats a field"));
        }
        if value.is_empty() {
            continue;
        }
        match marker {
            b'A' => id.number = Some(value.to_owned()),
            b'D' => id.redirecting_number = Some(value.to_owned()),
            _ => {
                id.number_absence = Some(match value {
                    "00" => Absence::Unavailable,
                    "10" => Absence::Private,
                    other => match other.parse::<u8>() {
                        Ok(n) => Absence::Other(n),
                        Err(_) => {
                            return Err(CallerIdError::BadDtmfLayout("has a B code that is not a number"))
                        }
                    },
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> CallerId {
        CallerId {
            number: Some("5551234567".into()),
            name: Some("John Doe".into()),
            datetime: Some((12, 31, 23, 59)),
            ..CallerId::default()
        }
    }

    /// Sends a message through the modem and back.
    fn over_the_air(msg: &RawMessage, standard: Standard) -> Vec<Result<RawMessage, CallerIdError>> {
        over_a_noisy_line(msg, standard, None, 0)
    }

    /// The same, with white noise `snr_db` below the signal when given.
    fn over_a_noisy_line(
        msg: &RawMessage,
        standard: Standard,
        snr_db: Option<f32>,
        seed: u64,
    ) -> Vec<Result<RawMessage, CallerIdError>> {
        let mut tx = CallerIdSender::new(standard, -13.5);
        tx.send(msg).expect("idle");
        let mut audio = vec![0i16; 800];
        let start = audio.len();
        audio.resize(start + tx.burst_samples(msg) + 800, 0);
        tx.fill(&mut audio[start..]);
        if let Some(snr) = snr_db {
            // Uniform noise (sum of four uniforms is close enough to Gaussian here) with the
            // RMS of a sine `snr` dB below the signal.
            let rms = super::super::dbm0_to_amplitude(-13.5 - snr) / 2f32.sqrt();
            let mut x = seed.max(1);
            let mut uniform = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32
            };
            for s in &mut audio {
                let g = (uniform() + uniform() + uniform() + uniform() - 2.0) * 3f32.sqrt();
                *s = super::super::saturate(f32::from(*s) + rms * g);
            }
        }
        let mut rx = CallerIdReceiver::for_standard(standard);
        let mut out = Vec::new();
        for chunk in audio.chunks(160) {
            rx.process(chunk, |m| out.push(m));
        }
        out
    }

    #[test]
    fn checksum_matches_a_published_example() {
        // The MDMF example of a Chinese caller id application note: 17 March 16:56, number
        // 2156430144, checksum 0xBA.
        let bytes = b"\x80\x16\x01\x0803171656\x02\x0a2156430144\xBA";
        let m = RawMessage::from_bytes(bytes).expect("valid");
        let Message::CallerId(id) = m.parse(Standard::Ydt1277).expect("parses") else { panic!() };
        assert_eq!(id.number.as_deref(), Some("2156430144"));
        assert_eq!(id.datetime, Some((3, 17, 16, 56)));
        assert_eq!(id.encode(Standard::Ydt1277, Format::Mdmf).expect("encodes"), m);
        // The same as SDMF: type 0x04, length 0x12, the date and the number, checksum 0x4F.
        let sdmf = id.encode(Standard::Ydt1277, Format::Sdmf).expect("encodes");
        assert_eq!(sdmf.as_bytes(), b"\x04\x12031716562156430144\x4F" as &[u8]);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let good = full().encode(Standard::Bellcore, Format::Mdmf).expect("encodes");
        let mut bytes = good.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert!(matches!(RawMessage::from_bytes(&bytes), Err(CallerIdError::BadChecksum { .. })));
        bytes[last] ^= 0x01;
        bytes[5] ^= 0x40;
        assert!(matches!(RawMessage::from_bytes(&bytes), Err(CallerIdError::BadChecksum { .. })));
        assert_eq!(RawMessage::from_bytes(&[0x80, 0x00]), Err(CallerIdError::TooShort(2)));
        assert_eq!(
            RawMessage::from_bytes(&[0x80, 0x05, 0x00]),
            Err(CallerIdError::LengthMismatch { declared: 5, actual: 0 })
        );
        // A parameter that claims more bytes than the message has.
        let m = RawMessage::new(MDMF_CALLER_ID, &[0x02, 0x09, b'1', b'2']).expect("frame");
        assert_eq!(m.parse(Standard::Etsi), Err(CallerIdError::ParameterOverrun { param: 0x02 }));
        let m = RawMessage::new(MDMF_CALLER_ID, &[0x02]).expect("frame");
        assert_eq!(m.parse(Standard::Etsi), Err(CallerIdError::ParameterOverrun { param: 0x02 }));
        let m = RawMessage::new(MDMF_CALLER_ID, &[0x02, 0x02, b'1', 0x07]).expect("frame");
        assert_eq!(m.parse(Standard::Etsi), Err(CallerIdError::BadParameter { param: 0x02 }));
        let m = RawMessage::new(MDMF_CALLER_ID, &[0x04, 0x02, b'O', b'P']).expect("frame");
        assert_eq!(m.parse(Standard::Etsi), Err(CallerIdError::BadParameter { param: 0x04 }));
        let m = RawMessage::new(0x42, b"x").expect("frame");
        assert_eq!(m.parse(Standard::Etsi), Err(CallerIdError::UnsupportedMessageType(0x42)));
        let m = RawMessage::new(SDMF_CALLER_ID, b"0101").expect("frame");
        assert!(matches!(m.parse(Standard::Bellcore), Err(CallerIdError::Malformed(_))));
        let m = RawMessage::new(SDMF_MESSAGE_WAITING, b"BBx").expect("frame");
        assert!(matches!(m.parse(Standard::Bellcore), Err(CallerIdError::Malformed(_))));
        let m = RawMessage::new(MDMF_MESSAGE_WAITING, &[0x13, 0x01, 0x05]).expect("frame");
        assert!(matches!(m.parse(Standard::Etsi), Err(CallerIdError::Malformed(_))));
        assert_eq!(RawMessage::new(0x80, &[0u8; 256]), Err(CallerIdError::TooLong("message")));
        assert!(CallerIdError::BadChecksum { expected: 1, found: 2 }.to_string().contains("checksum"));
    }

    #[test]
    fn every_message_type_round_trips() {
        let ids = [
            full(),
            CallerId {
                number_absence: Some(Absence::Private),
                name_absence: Some(Absence::Private),
                ..full()
            },
            CallerId {
                number: None,
                number_absence: Some(Absence::Unavailable),
                name: None,
                name_absence: Some(Absence::Unavailable),
                ..full()
            },
            CallerId { number: Some("0123".into()), ..CallerId::default() },
        ];
        for standard in [Standard::Bellcore, Standard::Etsi, Standard::Ydt1277] {
            for id in &ids {
                let m = id.encode(standard, Format::Mdmf).expect("encodes");
                assert_eq!(m.message_type(), MDMF_CALLER_ID);
                let Message::CallerId(back) = m.parse(standard).expect("parses") else { panic!() };
                let mut want = id.clone();
                if want.number.is_some() {
                    // A number and a reason for its absence cannot both be sent.
                    want.number_absence = None;
                }
                if want.name.is_some() {
                    want.name_absence = None;
                    want.name_bytes = want.name.as_ref().map(|n| n.as_bytes().to_vec());
                }
                assert_eq!(back, want, "{standard:?}");
            }
            for active in [true, false] {
                for (format, count) in [(Format::Mdmf, Some(3)), (Format::Mdmf, None), (Format::Sdmf, None)] {
                    let msg = Message::MessageWaiting { active, count };
                    match msg.encode(standard, format) {
                        Ok(m) => assert_eq!(m.parse(standard), Ok(msg)),
                        Err(e) => {
                            assert_eq!(
                                (standard, e),
                                (Standard::Etsi, CallerIdError::UnsupportedFormat(format))
                            )
                        }
                    }
                }
            }
        }
        // SDMF: date, time and number or absence.
        for standard in [Standard::Bellcore, Standard::Ydt1277] {
            for (number, absence) in [
                (Some("5551234567"), None),
                (None, Some(Absence::Unavailable)),
                (None, Some(Absence::Private)),
            ] {
                let id = CallerId {
                    number: number.map(str::to_owned),
                    number_absence: absence,
                    datetime: Some((1, 2, 3, 4)),
                    ..CallerId::default()
                };
                let m = id.encode(standard, Format::Sdmf).expect("encodes");
                assert_eq!(m.message_type(), SDMF_CALLER_ID);
                assert_eq!(m.parse(standard), Ok(Message::CallerId(id)));
            }
        }
        assert_eq!(
            full().encode(Standard::Etsi, Format::Sdmf),
            Err(CallerIdError::UnsupportedFormat(Format::Sdmf))
        );
        let no_date = CallerId { datetime: None, ..full() };
        assert_eq!(no_date.encode(Standard::Bellcore, Format::Sdmf), Err(CallerIdError::MissingDateTime));
        let no_number = CallerId { number: None, ..full() };
        assert_eq!(no_number.encode(Standard::Bellcore, Format::Sdmf), Err(CallerIdError::MissingNumber));
    }

    #[test]
    fn etsi_called_and_redirecting_numbers_and_unknown_parameters() {
        let id =
            CallerId { called_number: Some("800".into()), redirecting_number: Some("0456".into()), ..full() };
        let m = id.encode(Standard::Etsi, Format::Mdmf).expect("encodes");
        // An unknown parameter (call type 0x11) in front is skipped.
        let mut body = vec![0x11, 0x01, 0x01];
        body.extend_from_slice(m.body());
        let m = RawMessage::new(MDMF_CALLER_ID, &body).expect("frame");
        let Message::CallerId(back) = m.parse(Standard::Etsi).expect("parses") else { panic!() };
        assert_eq!(back.called_number.as_deref(), Some("800"));
        assert_eq!(back.redirecting_number.as_deref(), Some("0456"));
        assert_eq!(back.number.as_deref(), Some("5551234567"));
        // GR-30 does not send them; its 0x03 is the dialable number, used when 0x02 is absent.
        let m = id.encode(Standard::Bellcore, Format::Mdmf).expect("encodes");
        assert!(!m.body().windows(2).any(|w| w[0] == PARAM_CALLED_NUMBER && w[1] == 3));
        let m = RawMessage::new(MDMF_CALLER_ID, &[0x03, 0x03, b'5', b'5', b'5']).expect("frame");
        let Message::CallerId(back) = m.parse(Standard::Bellcore).expect("parses") else { panic!() };
        assert_eq!(back.number.as_deref(), Some("555"));
    }

    #[test]
    fn bad_dates_are_dropped_not_fatal() {
        for date in [&b"13010000"[..], b"0132000", b"01312400", b"0131AB00", b"00000000"] {
            let mut body = vec![PARAM_DATE_TIME, date.len() as u8];
            body.extend_from_slice(date);
            body.extend_from_slice(&[PARAM_CALLING_NUMBER, 0x02, b'4', b'2']);
            let m = RawMessage::new(MDMF_CALLER_ID, &body).expect("frame");
            let Message::CallerId(id) = m.parse(Standard::Bellcore).expect("parses") else { panic!() };
            assert_eq!((id.datetime, id.number.as_deref()), (None, Some("42")));
        }
        let bad = CallerId { datetime: Some((13, 1, 0, 0)), ..full() };
        assert_eq!(
            bad.encode(Standard::Etsi, Format::Mdmf),
            Err(CallerIdError::NotEncodable("date and time"))
        );
    }

    #[test]
    fn names_by_standard() {
        // Latin-1 for GR-30 and ETSI.
        let id = CallerId { name: Some("Zoë Müller".into()), ..CallerId::default() };
        let m = id.encode(Standard::Etsi, Format::Mdmf).expect("encodes");
        let Message::CallerId(back) = m.parse(Standard::Etsi).expect("parses") else { panic!() };
        assert_eq!(back.name.as_deref(), Some("Zoë Müller"));
        let id = CallerId { name: Some("王".into()), ..CallerId::default() };
        assert_eq!(id.encode(Standard::Etsi, Format::Mdmf), Err(CallerIdError::NotEncodable("name")));
        assert_eq!(id.encode(Standard::Ydt1277, Format::Mdmf), Err(CallerIdError::NotEncodable("name")));
        // GB 2312 bytes for YD/T 1277: 王小明 is CD F5 D0 A1 C3 F7.
        let gb = vec![0xCD, 0xF5, 0xD0, 0xA1, 0xC3, 0xF7];
        let id = CallerId {
            name_bytes: Some(gb.clone()),
            number: Some("13800138000".into()),
            ..CallerId::default()
        };
        let m = id.encode(Standard::Ydt1277, Format::Mdmf).expect("encodes");
        let Message::CallerId(back) = m.parse(Standard::Ydt1277).expect("parses") else { panic!() };
        assert_eq!((back.name, back.name_bytes), (None, Some(gb)));
        // Control characters cannot reach a display.
        let m = RawMessage::new(MDMF_CALLER_ID, &[PARAM_NAME, 0x03, b'A', 0x07, b'B']).expect("frame");
        let Message::CallerId(back) = m.parse(Standard::Bellcore).expect("parses") else { panic!() };
        assert_eq!(back.name.as_deref(), Some("A\u{FFFD}B"));
    }

    #[test]
    fn decoder_over_the_air_for_every_standard() {
        for standard in [Standard::Bellcore, Standard::Etsi, Standard::Ydt1277] {
            for format in [Format::Mdmf, Format::Sdmf] {
                let Ok(m) = full().encode(standard, format) else { continue };
                assert_eq!(over_the_air(&m, standard), vec![Ok(m.clone())], "{standard:?} {format:?}");
            }
        }
    }

    #[test]
    fn noise_at_10_db_snr_does_not_lose_messages() {
        for standard in [Standard::Bellcore, Standard::Etsi, Standard::Ydt1277] {
            let m = full().encode(standard, Format::Mdmf).expect("encodes");
            for seed in 1..=10 {
                let got = over_a_noisy_line(&m, standard, Some(10.0), seed);
                assert!(got.contains(&Ok(m.clone())), "{standard:?} seed {seed}: {got:?}");
            }
        }
    }

    #[test]
    fn decoder_reports_lost_frames() {
        let m = full().encode(Standard::Bellcore, Format::Mdmf).expect("encodes");
        let feed = |events: &[FskEvent]| {
            let mut d = CallerIdDecoder::new();
            events.iter().filter_map(|&e| d.push(e)).collect::<Vec<_>>()
        };
        let bytes: Vec<FskEvent> = m.as_bytes().iter().map(|&b| FskEvent::Byte(b)).collect();
        // Without a mark signal, nothing.
        assert!(feed(&bytes).is_empty());
        // Junk before the type byte is skipped, up to two characters.
        let mut ev = vec![FskEvent::Mark, FskEvent::Byte(0x13), FskEvent::FramingError, FskEvent::Byte(0x80)];
        ev.extend_from_slice(&bytes);
        assert_eq!(feed(&ev), vec![Ok(m.clone())]);
        // A stray byte that looks like a type byte does not hide the real frame.
        let mut ev = vec![FskEvent::Mark, FskEvent::Byte(0x04)];
        ev.extend_from_slice(&bytes);
        assert_eq!(feed(&ev), vec![Ok(m.clone())]);
        // A corrupted byte: the checksum error is reported once.
        let mut ev = vec![FskEvent::Mark];
        ev.extend_from_slice(&bytes);
        ev[6] = FskEvent::Byte(b'9');
        assert!(matches!(feed(&ev)[..], [Err(CallerIdError::BadChecksum { .. })]));
        // A lost character, the signal ending, the line idling mid-frame.
        let mut ev = vec![FskEvent::Mark];
        ev.extend_from_slice(&bytes[..10]);
        for (cut, want) in [
            (FskEvent::FramingError, CallerIdError::Framing { received: 10 }),
            (FskEvent::SignalLost, CallerIdError::SignalLost { received: 10 }),
            (FskEvent::Mark, CallerIdError::Interrupted { received: 10 }),
        ] {
            let mut e = ev.clone();
            e.push(cut);
            assert_eq!(feed(&e), vec![Err(want)]);
        }
        // After a mark signal, three bytes of junk end the wait silently.
        let ev =
            [FskEvent::Mark, FskEvent::Byte(1), FskEvent::Byte(2), FskEvent::Byte(3), FskEvent::Byte(0x80)];
        assert!(feed(&ev).is_empty());
    }

    #[test]
    fn dtmf_layouts() {
        let number = |s: &str| Some(s.to_owned());
        let p = |s| parse_dtmf_clip(s).expect(s);
        assert_eq!(p("A0123456789C").number, number("0123456789"));
        assert_eq!(p("A0123456789#").number, number("0123456789"));
        assert_eq!(p("A0123456789").number, number("0123456789"));
        assert_eq!(p("D0123456789C").number, number("0123456789"));
        assert_eq!(p("0123456789#").number, number("0123456789"));
        assert_eq!(p("D1#").number_absence, Some(Absence::Private));
        assert_eq!(p("D2#").number_absence, Some(Absence::International));
        assert_eq!(p("D3#").number_absence, Some(Absence::Unavailable));
        assert_eq!(p("B00C").number_absence, Some(Absence::Unavailable));
        assert_eq!(p("B10C").number_absence, Some(Absence::Private));
        assert_eq!(p("B42C").number_absence, Some(Absence::Other(42)));
        let id = p("A0123D0456C");
        assert_eq!((id.number, id.redirecting_number), (number("0123"), number("0456")));
        assert_eq!(parse_dtmf_clip(""), Err(CallerIdError::EmptyDtmf));
        assert_eq!(parse_dtmf_clip("A12x4C"), Err(CallerIdError::BadDtmfChar('x')));
        for bad in ["C", "#", "AC", "A12A34C", "*123#", "DC", "D1A#", "B1*C"] {
            assert!(matches!(parse_dtmf_clip(bad), Err(CallerIdError::BadDtmfLayout(_))), "{bad}");
        }
    }

    #[test]
    fn the_sender_is_busy_while_sending() {
        let m = full().encode(Standard::Bellcore, Format::Mdmf).expect("encodes");
        let mut tx = CallerIdSender::new(Standard::Bellcore, -13.5);
        assert!(tx.is_idle());
        tx.send(&m).expect("idle");
        assert_eq!(tx.send(&m), Err(FskError::Busy));
        let mut out = vec![0i16; tx.burst_samples(&m) + 1];
        assert_eq!(tx.fill(&mut out), tx.burst_samples(&m));
        assert!(tx.is_idle());
    }
}
