//! The errors of the DAHDI backend. Each names the channel, span or file it is about, because
//! the person reading it is an installer looking at `/etc/dahdi/system.conf`.

use std::io;
use std::path::PathBuf;

/// Something went wrong opening or using DAHDI channels, or reading what DAHDI reports.
#[derive(Debug, thiserror::Error)]
pub enum DahdiError {
    #[error("cannot open {path} for DAHDI channel {channo}: {source}")]
    Open { path: PathBuf, channo: u32, source: io::Error },
    #[error("cannot open {path}: {source}")]
    OpenCtl { path: PathBuf, source: io::Error },
    #[error("{op} failed on DAHDI channel {channo}: {source}{}", hint(op))]
    Channel { channo: u32, op: &'static str, source: io::Error },
    #[error("DAHDI_SPANSTAT failed for span {spanno}: {source}")]
    SpanStat { spanno: u32, source: io::Error },
    #[error(
        "DAHDI channel {channo} is configured as {found}, but a `{kind}` port needs {expected}; \
         fix /etc/dahdi/system.conf and run dahdi_cfg"
    )]
    Signalling { channo: u32, kind: &'static str, found: &'static str, expected: &'static str },
    #[error("no DAHDI channels were given to open")]
    NoChannels,
    #[error("DAHDI channel numbers start at 1; channel 0 does not exist")]
    ZeroChannel,
    #[error("DAHDI channel {0} is listed twice")]
    DuplicateChannel(u32),
    #[error("channel {0} is given as a `sound` port, which is not a DAHDI channel: use the ALSA driver")]
    NotDahdi(u32),
    #[error("DAHDI span {spanno} would hold both `{first}` and `{second}` ports (channel {channo})")]
    MixedSpan { spanno: u32, channo: u32, first: &'static str, second: &'static str },
    #[error("{0} channels are more than a card may have (65535)")]
    TooManyChannels(usize),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{op} failed for DAHDI span {spanno}: {source}{}", span_hint(op, source))]
    Span { spanno: u32, op: &'static str, source: io::Error },
    #[error(
        "DAHDI_CHANCONFIG ({signalling}) failed on channel {channo} of DAHDI span {spanno}: {source}{}",
        chanconfig_hint(source)
    )]
    ChanConfig { spanno: u32, channo: u32, signalling: &'static str, source: io::Error },
    #[error("DAHDI_GET_PARAMS failed for channel {channo} of DAHDI span {spanno}: {source}")]
    SpanChannel { spanno: u32, channo: u32, source: io::Error },
    #[error(
        "DAHDI span {spanno} ({name}) has {found} channel(s), but {expected} are to be configured on it; \
         check the board file and `first_channels` against `switchboard hw list`{}",
        if *found == 24 { " (24 channels is a T1 span: set it to E1 with dahdi_span_types)" } else { "" }
    )]
    SpanShape { spanno: u32, name: String, found: u32, expected: usize },
    #[error(
        "DAHDI channel {channo} is listed for span {spanno}, but DAHDI says it belongs to span {actual}"
    )]
    ForeignChannel { spanno: u32, channo: u32, actual: u32 },
    #[error("line build-out {0} is out of range: 0 to 7")]
    BadLbo(u8),
}

impl DahdiError {
    /// True when DAHDI refused with EBUSY because the span or channel is in use: whoever
    /// configured it (dahdi_cfg from system.conf) keeps it.
    pub fn is_busy(&self) -> bool {
        match self {
            DahdiError::Span { source, .. } | DahdiError::ChanConfig { source, .. } => {
                crate::fd::is_busy(source)
            }
            _ => false,
        }
    }
}

/// A hint for a failed span operation, from what DAHDI answered.
fn span_hint(op: &str, source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::ENXIO) | Some(libc::EINVAL) if op == "DAHDI_SPANSTAT" => {
            " (no such span: is the card's driver loaded and are its spans assigned? see `switchboard hw list`)"
        }
        Some(libc::ENXIO) => " (no such span: is the card's driver loaded and are its spans assigned?)",
        Some(libc::EINVAL) if op == "DAHDI_SPANCONFIG" => {
            " (the span does not support this line configuration: is it an E1 span? see dahdi_span_types)"
        }
        Some(libc::EBUSY) => " (the span is in use)",
        _ => "",
    }
}

/// A hint for a failed `DAHDI_CHANCONFIG`, from what DAHDI answered.
fn chanconfig_hint(source: &io::Error) -> &'static str {
    match source.raw_os_error() {
        Some(libc::EINVAL) => {
            " (the channel cannot run that signalling: an FXS port needs an FXS module, an FXO port \
             an FXO module, and a D-channel a CCS span; compare `switchboard hw list` with the board file)"
        }
        Some(libc::EBUSY) => " (the channel is in use)",
        _ => "",
    }
}

/// A hint appended to the errors whose usual cause is known.
fn hint(op: &str) -> &'static str {
    match op {
        "DAHDI_SPECIFY" => " (does the channel exist? see /proc/dahdi and run dahdi_cfg)",
        _ => "",
    }
}
