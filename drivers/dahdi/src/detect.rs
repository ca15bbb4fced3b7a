//! What DAHDI hardware a machine has, read from sysfs (`/sys/bus/dahdi_devices`,
//! `/sys/bus/dahdi_spans`, `/sys/bus/dahdi_channels`) or, on older DAHDI, `/proc/dahdi/N`.
//!
//! Every function takes the root directory to look under (normally `/`), so tests run on
//! fixture trees.

use std::path::{Path, PathBuf};

use switchboard_driver_api::ChannelKind;

use crate::error::DahdiError;
use crate::{proc, sysfs};

/// Where the detection came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Sysfs,
    Proc,
}

/// A DAHDI device (a board), as sysfs describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectedDevice {
    /// The device's sysfs name, e.g. `pci:0000:03:00.0`.
    pub id: String,
    pub manufacturer: String,
    /// The board's model as its driver names it, e.g. `Wildcard TE420 (5th Gen)`.
    pub devicetype: String,
    pub location: String,
    pub hardware_id: String,
}

/// One channel of a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectedChannel {
    pub channo: u32,
    /// Position in the span, from 1.
    pub chanpos: u16,
    pub name: String,
    /// The configured signalling as DAHDI prints it (`FXOKS`, `Clear`, `HDLCFCS`...), or None
    /// when the channel is not configured.
    pub signalling: Option<String>,
    /// The signalling types the channel supports (sysfs only), e.g. `FXSLS FXSGS FXSKS` for
    /// an FXO module.
    pub sigcap: Vec<String>,
    pub in_use: bool,
    pub alarms: Vec<String>,
}

impl DetectedChannel {
    /// The kind of port the channel is, from its signalling, or failing that from what it
    /// supports. Remember DAHDI's inversion: FXS signalling means an FXO port.
    pub fn port_kind(&self) -> Option<ChannelKind> {
        if let Some(sig) = &self.signalling {
            return kind_of_signalling(sig);
        }
        let can = |s: &str| self.sigcap.iter().any(|c| c == s);
        let fxs_sig = can("FXSKS") || can("FXSLS");
        let fxo_sig = can("FXOKS") || can("FXOLS");
        match (fxs_sig, fxo_sig) {
            (true, false) => Some(ChannelKind::FxoTrunk),
            (false, true) => Some(ChannelKind::FxsSeat),
            _ => None,
        }
    }
}

/// The port kind a signalling name stands for.
pub fn kind_of_signalling(sig: &str) -> Option<ChannelKind> {
    match sig {
        "FXSKS" | "FXSLS" | "FXSGS" => Some(ChannelKind::FxoTrunk),
        "FXOKS" | "FXOLS" | "FXOGS" => Some(ChannelKind::FxsSeat),
        "Clear" | "CAS" | "E&M-E1" | "E&M" => Some(ChannelKind::E1Bearer),
        "HDLCFCS" | "Hardware-assisted HDLC" | "MTP2" | "HDLCRAW" => Some(ChannelKind::E1Signalling),
        _ => None,
    }
}

/// One span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectedSpan {
    pub spanno: u32,
    /// The span's name, e.g. `TE4/0/1` or `WCTDM/0`.
    pub name: String,
    /// Its description, e.g. `T4XXP (PCI) Card 0 Span 1` or `Wildcard TDM410P`.
    pub description: String,
    /// `E1`, `T1`, `FXS`, `FXO`, `ANALOG_MIXED`... (sysfs only).
    pub spantype: Option<String>,
    /// Framing and coding, e.g. `HDB3/CCS/CRC4`.
    pub lineconfig: Option<String>,
    /// Alarm names as DAHDI prints them: BLUE, YELLOW, RED, LOOP, RECOVERING, NOTOPEN.
    pub alarms: Vec<String>,
    pub sync_master: bool,
    /// Index into [`Detection::devices`].
    pub device: Option<usize>,
    pub channels: Vec<DetectedChannel>,
}

impl DetectedSpan {
    /// True when the span is digital (E1/T1/J1/BRI): from its type when known, otherwise from
    /// its line configuration or its channel count.
    pub fn is_digital(&self) -> bool {
        match self.spantype.as_deref() {
            Some("FXS" | "FXO" | "ANALOG_MIXED") => false,
            Some("E1" | "T1" | "J1" | "BRI_NT" | "BRI_TE" | "BRI_SOFT") => true,
            _ => self.lineconfig.is_some() || self.channels.len() == 31 || self.channels.len() == 24,
        }
    }

    /// True for an E1 span (31 channels).
    pub fn is_e1(&self) -> bool {
        match self.spantype.as_deref() {
            Some(t) => t == "E1",
            None => self.is_digital() && self.channels.len() == 31,
        }
    }
}

/// Everything found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detection {
    /// None when DAHDI is not loaded (or has no spans).
    pub source: Option<Source>,
    /// Where it was read from.
    pub path: Option<PathBuf>,
    pub devices: Vec<DetectedDevice>,
    /// By span number.
    pub spans: Vec<DetectedSpan>,
}

/// Reads the DAHDI spans and channels under `root`: sysfs when it has spans, else
/// `/proc/dahdi`, else nothing.
pub fn detect(root: &Path) -> Result<Detection, DahdiError> {
    let sys = sysfs::read(root)?;
    if !sys.spans.is_empty() {
        return Ok(sys);
    }
    let procfs = proc::read(root)?;
    if !procfs.spans.is_empty() {
        return Ok(procfs);
    }
    Ok(Detection::default())
}

/// Alarm names for span or channel alarm bits, in DAHDI's order.
pub fn alarm_names(bits: i64) -> Vec<String> {
    use crate::abi::*;
    let mut out = Vec::new();
    let names = [
        (DAHDI_ALARM_BLUE, "BLUE"),
        (DAHDI_ALARM_YELLOW, "YELLOW"),
        (DAHDI_ALARM_RED, "RED"),
        (DAHDI_ALARM_LOOPBACK, "LOOP"),
        (DAHDI_ALARM_RECOVER, "RECOVERING"),
        (DAHDI_ALARM_NOTOPEN, "NOTOPEN"),
    ];
    for (bit, name) in names {
        if bits & i64::from(bit) != 0 {
            out.push(name.to_string());
        }
    }
    out
}

/// The alarm words DAHDI prints.
pub(crate) const ALARM_WORDS: [&str; 6] = ["BLUE", "YELLOW", "RED", "LOOP", "RECOVERING", "NOTOPEN"];
