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
}

/// A hint appended to the errors whose usual cause is known.
fn hint(op: &str) -> &'static str {
    match op {
        "DAHDI_SPECIFY" => " (does the channel exist? see /proc/dahdi and run dahdi_cfg)",
        _ => "",
    }
}
