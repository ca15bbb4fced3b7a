//! Span and channel configuration on `/dev/dahdi/ctl`: what `dahdi_cfg` does with
//! `/etc/dahdi/system.conf`, for the spans and channels Switchboard runs.
//!
//! An E1 span gets `DAHDI_SPANCONFIG` with its line settings ([`LineConfig`]: framing, line
//! code, CRC-4, timing priority, build-out), then `DAHDI_CHANCONFIG` for each channel (clear
//! channel for the bearers, HDLC with FCS for the D-channel) and `DAHDI_STARTUP`. An analog
//! span only gets `DAHDI_CHANCONFIG` for its ports, as `dahdi_cfg` does: an FXO port (a line
//! from the exchange) runs FXS kewlstart signalling and an FXS port (a phone) FXO kewlstart,
//! because DAHDI names the signalling after the far end.
//!
//! [`apply_span`] is the policy the daemon follows at start: a span that nothing has configured
//! yet is configured; a span that `dahdi_cfg` (or an earlier start) configured is left as it is,
//! because the installer's system.conf wins, and the differences from what Switchboard would
//! have set are reported; a span the kernel refuses as busy is left alone too.

use libc::c_int;
use switchboard_driver_api::ChannelKind;

use crate::abi::*;
use crate::error::DahdiError;
use crate::fd::DahdiFd;
use crate::signal::{expected_signalling, signalling_fits};

/// E1 framing: CCS carries ISDN signalling on timeslot 16, CAS carries per-channel bits there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Ccs,
    Cas,
}

/// E1 line code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Hdb3,
    Ami,
}

/// The bits of `lineconfig` that describe an E1 line, for comparing what a span runs with
/// what is wanted (the transmit level and T1 bits do not matter on E1).
pub const E1_LINE_BITS: c_int = DAHDI_CONFIG_CCS | DAHDI_CONFIG_HDB3 | DAHDI_CONFIG_AMI | DAHDI_CONFIG_CRC4;

/// An E1 span's line settings: a `span=` line of system.conf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineConfig {
    pub framing: Framing,
    pub coding: Coding,
    pub crc4: bool,
    /// Timing source priority: 1 takes the card's clock from this span first, 2 next, and so
    /// on; 0 never. Spans facing the exchange should be sources; the exchange never follows us.
    pub timing: u8,
    /// Line build-out, 0-7; 0 for E1.
    pub lbo: u8,
}

impl Default for LineConfig {
    /// ISDN PRI as exchanges in Europe and China deliver it: CCS, HDB3, CRC-4, first timing
    /// source.
    fn default() -> LineConfig {
        LineConfig { framing: Framing::Ccs, coding: Coding::Hdb3, crc4: true, timing: 1, lbo: 0 }
    }
}

impl LineConfig {
    /// The `DAHDI_CONFIG_*` bits.
    pub fn bits(&self) -> c_int {
        let framing = match self.framing {
            Framing::Ccs => DAHDI_CONFIG_CCS,
            Framing::Cas => 0,
        };
        let coding = match self.coding {
            Coding::Hdb3 => DAHDI_CONFIG_HDB3,
            Coding::Ami => DAHDI_CONFIG_AMI,
        };
        framing | coding | if self.crc4 { DAHDI_CONFIG_CRC4 } else { 0 }
    }

    /// The structure `DAHDI_SPANCONFIG` takes for span `spanno`.
    pub fn to_abi(&self, spanno: u32) -> Result<DahdiLineConfig, DahdiError> {
        if self.lbo > 7 {
            return Err(DahdiError::BadLbo(self.lbo));
        }
        let mut lc = DahdiLineConfig::for_span(span_number(spanno, "DAHDI_SPANCONFIG")?);
        lc.lbo = c_int::from(self.lbo);
        lc.lineconfig = self.bits();
        lc.sync = c_int::from(self.timing);
        Ok(lc)
    }

    /// The `span=` line of system.conf for span `spanno`, e.g. `span=1,1,0,ccs,hdb3,crc4`.
    pub fn system_conf(&self, spanno: u32) -> String {
        let framing = match self.framing {
            Framing::Ccs => "ccs",
            Framing::Cas => "cas",
        };
        let coding = match self.coding {
            Coding::Hdb3 => "hdb3",
            Coding::Ami => "ami",
        };
        let crc4 = if self.crc4 { ",crc4" } else { "" };
        format!("span={spanno},{},{},{framing},{coding}{crc4}", self.timing, self.lbo)
    }
}

/// E1 line bits as `/proc/dahdi` shows them, e.g. `HDB3/CCS/CRC4`.
pub fn describe_line_bits(bits: c_int) -> String {
    let coding = if bits & DAHDI_CONFIG_HDB3 != 0 {
        "HDB3"
    } else if bits & DAHDI_CONFIG_AMI != 0 {
        "AMI"
    } else {
        "no line code"
    };
    let framing = if bits & DAHDI_CONFIG_CCS != 0 { "CCS" } else { "CAS" };
    let crc4 = if bits & DAHDI_CONFIG_CRC4 != 0 { "/CRC4" } else { "" };
    format!("{coding}/{framing}{crc4}")
}

/// The signalling Switchboard gives a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signalling {
    /// An E1 bearer: a clear 64 kbit/s channel (`bchan=`).
    Clear,
    /// An E1 D-channel with DAHDI doing HDLC and the FCS in software (`dchan=`). Every card
    /// that can run a clear channel supports it, which is why it is the default.
    HdlcFcs,
    /// An E1 D-channel with the card's HDLC controller (`hardhdlc=`), for cards that have one.
    HardHdlc,
    /// An FXO port (a line from the exchange): FXS kewlstart signalling (`fxsks=`).
    FxsKewlstart,
    /// An FXS port (a phone): FXO kewlstart signalling (`fxoks=`).
    FxoKewlstart,
}

impl Signalling {
    /// What a port of `kind` runs; `None` for a sound device, which is not a DAHDI channel.
    pub const fn for_port(kind: ChannelKind) -> Option<Signalling> {
        match kind {
            ChannelKind::E1Bearer => Some(Signalling::Clear),
            ChannelKind::E1Signalling => Some(Signalling::HdlcFcs),
            ChannelKind::FxoTrunk => Some(Signalling::FxsKewlstart),
            ChannelKind::FxsSeat => Some(Signalling::FxoKewlstart),
            ChannelKind::Sound => None,
        }
    }

    /// The `DAHDI_SIG_*` value.
    pub const fn sigtype(self) -> c_int {
        match self {
            Signalling::Clear => DAHDI_SIG_CLEAR,
            Signalling::HdlcFcs => DAHDI_SIG_HDLCFCS,
            Signalling::HardHdlc => DAHDI_SIG_HARDHDLC,
            Signalling::FxsKewlstart => DAHDI_SIG_FXSKS,
            Signalling::FxoKewlstart => DAHDI_SIG_FXOKS,
        }
    }

    /// The system.conf keyword.
    pub const fn keyword(self) -> &'static str {
        match self {
            Signalling::Clear => "bchan",
            Signalling::HdlcFcs => "dchan",
            Signalling::HardHdlc => "hardhdlc",
            Signalling::FxsKewlstart => "fxsks",
            Signalling::FxoKewlstart => "fxoks",
        }
    }
}

/// One channel's signalling: a channel of a `bchan=`, `dchan=`, `fxsks=`... line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// DAHDI's channel number.
    pub channo: u32,
    pub signalling: Signalling,
}

impl ChannelConfig {
    /// The configuration of DAHDI channel `channo` used as a port of `kind`.
    pub fn for_port(channo: u32, kind: ChannelKind) -> Result<ChannelConfig, DahdiError> {
        let signalling = Signalling::for_port(kind).ok_or(DahdiError::NotDahdi(channo))?;
        Ok(ChannelConfig { channo, signalling })
    }
}

fn span_number(spanno: u32, op: &'static str) -> Result<c_int, DahdiError> {
    c_int::try_from(spanno).map_err(|_| DahdiError::Span {
        spanno,
        op,
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

fn channel_number(spanno: u32, channo: u32) -> Result<c_int, DahdiError> {
    c_int::try_from(channo).map_err(|_| DahdiError::SpanChannel {
        spanno,
        channo,
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

/// `DAHDI_CHANCONFIG` for each channel of span `spanno`, in order. The first failure stops
/// and names the channel.
pub fn configure_channels<F: DahdiFd>(
    ctl: &mut F,
    spanno: u32,
    channels: &[ChannelConfig],
) -> Result<(), DahdiError> {
    for ch in channels {
        let config = DahdiChanConfig::new(channel_number(spanno, ch.channo)?, ch.signalling.sigtype());
        ctl.chan_config(&config).map_err(|source| DahdiError::ChanConfig {
            spanno,
            channo: ch.channo,
            signalling: sig_name(ch.signalling.sigtype()),
            source,
        })?;
    }
    Ok(())
}

/// Configures and starts E1 span `spanno` as `dahdi_cfg` would from its `span=` line and the
/// channel lines: `DAHDI_SPANCONFIG`, `DAHDI_CHANCONFIG` for each channel (given with the kind
/// of port it is), `DAHDI_STARTUP`.
pub fn configure_span<F: DahdiFd>(
    ctl: &mut F,
    spanno: u32,
    line: &LineConfig,
    channels: &[(u32, ChannelKind)],
) -> Result<(), DahdiError> {
    let channels = channels
        .iter()
        .map(|&(channo, kind)| ChannelConfig::for_port(channo, kind))
        .collect::<Result<Vec<_>, _>>()?;
    configure_span_channels(ctl, spanno, line, &channels)
}

/// [`configure_span`] with each channel's signalling given (e.g. `hardhdlc` D-channels).
pub fn configure_span_channels<F: DahdiFd>(
    ctl: &mut F,
    spanno: u32,
    line: &LineConfig,
    channels: &[ChannelConfig],
) -> Result<(), DahdiError> {
    let lc = line.to_abi(spanno)?;
    ctl.span_config(&lc).map_err(|source| DahdiError::Span { spanno, op: "DAHDI_SPANCONFIG", source })?;
    configure_channels(ctl, spanno, channels)?;
    start_span(ctl, spanno)
}

/// `DAHDI_STARTUP` for span `spanno` (a running span stays as it is).
pub fn start_span<F: DahdiFd>(ctl: &mut F, spanno: u32) -> Result<(), DahdiError> {
    let n = span_number(spanno, "DAHDI_STARTUP")?;
    ctl.startup(n).map_err(|source| DahdiError::Span { spanno, op: "DAHDI_STARTUP", source })
}

/// `DAHDI_SHUTDOWN` for span `spanno`: stops it and unconfigures its channels.
pub fn shutdown_span<F: DahdiFd>(ctl: &mut F, spanno: u32) -> Result<(), DahdiError> {
    let n = span_number(spanno, "DAHDI_SHUTDOWN")?;
    ctl.shutdown(n).map_err(|source| DahdiError::Span { spanno, op: "DAHDI_SHUTDOWN", source })
}

/// What [`apply_span`] did.
#[derive(Debug)]
pub enum SpanOutcome {
    /// Nothing was configured on the span; it now runs the settings given.
    Configured,
    /// The span was already configured (by dahdi_cfg or an earlier start) the way it should
    /// be, and was left alone.
    AlreadyConfigured,
    /// The span was already configured, differently: it was left alone (system.conf wins),
    /// and these are the differences, one sentence each.
    KeptDifferent(Vec<String>),
    /// DAHDI refused the configuration because the span is in use (EBUSY); it runs as it did.
    Busy(DahdiError),
}

/// How many differing channels are named one by one before the rest are only counted.
const NAMED_DIFFERENCES: usize = 4;

/// Configures span `spanno` unless it is configured already: `line` for an E1 span (`None`
/// for an analog span, which only gets its channels), `channels` with the kind of port each
/// is, in span order.
///
/// The span must have exactly these channels. "Configured already" means that DAHDI reports
/// channels with signalling on it (`dahdi_spaninfo.numchans`); such a span is compared with
/// what is wanted (framing, coding, CRC-4, build-out, whether each channel's signalling fits
/// its port; the timing priority cannot be read back) and left alone.
pub fn apply_span<F: DahdiFd>(
    ctl: &mut F,
    spanno: u32,
    line: Option<&LineConfig>,
    channels: &[(u32, ChannelKind)],
) -> Result<SpanOutcome, DahdiError> {
    let wanted = channels
        .iter()
        .map(|&(channo, kind)| ChannelConfig::for_port(channo, kind))
        .collect::<Result<Vec<_>, _>>()?;
    let n = span_number(spanno, "DAHDI_SPANSTAT")?;
    let info =
        ctl.span_stat(n).map_err(|source| DahdiError::Span { spanno, op: "DAHDI_SPANSTAT", source })?;
    let (totalchans, numchans, lineconfig, lbo) = (info.totalchans, info.numchans, info.lineconfig, info.lbo);
    if usize::try_from(totalchans).ok() != Some(channels.len()) {
        return Err(DahdiError::SpanShape {
            spanno,
            name: info.name(),
            found: u32::try_from(totalchans).unwrap_or(0),
            expected: channels.len(),
        });
    }
    // Every channel must be on this span: a wrong `first_channels` would otherwise configure
    // another span's channels.
    let mut running = Vec::with_capacity(channels.len());
    for &(channo, kind) in channels {
        let params = ctl
            .get_params(channel_number(spanno, channo)?)
            .map_err(|source| DahdiError::SpanChannel { spanno, channo, source })?;
        let actual = u32::try_from(params.spanno).unwrap_or(0);
        if actual != spanno {
            return Err(DahdiError::ForeignChannel { spanno, channo, actual });
        }
        running.push((channo, kind, params.sigtype));
    }

    if numchans > 0 {
        let mut differences = Vec::new();
        if let Some(line) = line {
            if lineconfig & E1_LINE_BITS != line.bits() & E1_LINE_BITS {
                differences.push(format!(
                    "the line runs {}, the configuration says {}",
                    describe_line_bits(lineconfig),
                    describe_line_bits(line.bits())
                ));
            }
            if lbo != c_int::from(line.lbo) {
                differences.push(format!("the line build-out is {lbo}, the configuration says {}", line.lbo));
            }
        }
        let unfit: Vec<String> = running
            .iter()
            .filter(|&&(_, kind, sigtype)| !signalling_fits(kind, sigtype))
            .map(|&(channo, kind, sigtype)| {
                format!(
                    "channel {channo} runs {}, a `{}` port needs {}",
                    sig_name(sigtype),
                    kind.name(),
                    expected_signalling(kind)
                )
            })
            .collect();
        let more = unfit.len().saturating_sub(NAMED_DIFFERENCES);
        differences.extend(unfit.into_iter().take(NAMED_DIFFERENCES));
        if more > 0 {
            differences.push(format!("{more} more channel(s) differ"));
        }
        return Ok(if differences.is_empty() {
            SpanOutcome::AlreadyConfigured
        } else {
            SpanOutcome::KeptDifferent(differences)
        });
    }

    let result = match line {
        Some(line) => configure_span_channels(ctl, spanno, line, &wanted),
        None => configure_channels(ctl, spanno, &wanted),
    };
    match result {
        Ok(()) => Ok(SpanOutcome::Configured),
        Err(e) if e.is_busy() => Ok(SpanOutcome::Busy(e)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{CtlCall, FakeDahdi, FXO_MODULE_SIGCAP, FXS_MODULE_SIGCAP};

    /// The 31 channels of an E1 span from `first`, with the D-channel on timeslot 16.
    fn e1_channels(first: u32) -> Vec<(u32, ChannelKind)> {
        (0..31)
            .map(|i| {
                let kind = if i == 15 { ChannelKind::E1Signalling } else { ChannelKind::E1Bearer };
                (first + i, kind)
            })
            .collect()
    }

    fn te420() -> FakeDahdi {
        let dahdi = FakeDahdi::new();
        dahdi.add_e1_span(1, 1, "TE4/0/1", "T4XXP (PCI) Card 0 Span 1");
        dahdi.add_e1_span(2, 32, "TE4/0/2", "T4XXP (PCI) Card 0 Span 2");
        dahdi
    }

    #[test]
    fn line_settings_become_dahdi_bits_and_system_conf_lines() {
        let pri = LineConfig::default();
        assert_eq!(pri.bits(), DAHDI_CONFIG_CCS | DAHDI_CONFIG_HDB3 | DAHDI_CONFIG_CRC4);
        assert_eq!(pri.system_conf(1), "span=1,1,0,ccs,hdb3,crc4");
        let plain = LineConfig { coding: Coding::Ami, crc4: false, timing: 0, ..pri };
        assert_eq!(plain.bits(), DAHDI_CONFIG_CCS | DAHDI_CONFIG_AMI);
        assert_eq!(plain.system_conf(3), "span=3,0,0,ccs,ami");
        let lc = LineConfig { timing: 2, ..pri }.to_abi(4).unwrap();
        assert_eq!((lc.span, lc.sync, lc.lbo, lc.lineconfig), (4, 2, 0, pri.bits()));
        assert!(matches!(LineConfig { lbo: 8, ..pri }.to_abi(1), Err(DahdiError::BadLbo(8))));
        assert_eq!(describe_line_bits(pri.bits()), "HDB3/CCS/CRC4");
        assert_eq!(describe_line_bits(plain.bits()), "AMI/CCS");
    }

    #[test]
    fn ports_get_the_signalling_dahdi_names_after_the_far_end() {
        assert_eq!(
            Signalling::for_port(ChannelKind::FxoTrunk).map(Signalling::sigtype),
            Some(DAHDI_SIG_FXSKS)
        );
        assert_eq!(
            Signalling::for_port(ChannelKind::FxsSeat).map(Signalling::sigtype),
            Some(DAHDI_SIG_FXOKS)
        );
        assert_eq!(Signalling::for_port(ChannelKind::E1Bearer).map(Signalling::keyword), Some("bchan"));
        assert_eq!(Signalling::for_port(ChannelKind::E1Signalling).map(Signalling::keyword), Some("dchan"));
        assert!(matches!(ChannelConfig::for_port(9, ChannelKind::Sound), Err(DahdiError::NotDahdi(9))));
    }

    #[test]
    fn an_e1_span_is_configured_channel_by_channel_and_started() {
        let dahdi = te420();
        let mut ctl = dahdi.open().unwrap();
        let line = LineConfig { timing: 2, ..LineConfig::default() };
        configure_span(&mut ctl, 2, &line, &e1_channels(32)).unwrap();

        let calls = dahdi.ctl_calls();
        assert_eq!(calls.len(), 33, "{calls:?}");
        let CtlCall::SpanConfig(lc) = calls[0] else { panic!("SPANCONFIG first: {calls:?}") };
        assert_eq!((lc.span, lc.lineconfig, lc.sync, lc.lbo), (2, line.bits(), 2, 0));
        for (i, call) in calls[1..32].iter().enumerate() {
            let CtlCall::ChanConfig(cc) = call else { panic!("CHANCONFIG: {call:?}") };
            let want = if i == 15 { DAHDI_SIG_HDLCFCS } else { DAHDI_SIG_CLEAR };
            assert_eq!((cc.chan, cc.sigtype, cc.master, cc.deflaw), (32 + i as c_int, want, cc.chan, 0));
        }
        assert_eq!(calls[32], CtlCall::Startup(2));
        let span = dahdi.span(2);
        assert!(span.running);
        assert_eq!((span.lineconfig, span.sync), (line.bits(), 2));
        assert_eq!(dahdi.channel(47).sigtype, DAHDI_SIG_HDLCFCS);
        assert_eq!(dahdi.channel(48).sigtype, DAHDI_SIG_CLEAR);
        assert!(!dahdi.span(1).running, "the other span is untouched");
    }

    #[test]
    fn analog_ports_get_kewlstart_and_a_wrong_module_is_named() {
        let dahdi = FakeDahdi::new();
        dahdi.add_span(5, "WCTDM/0", "Wildcard TDM410P");
        for (channo, caps) in [
            (125, FXS_MODULE_SIGCAP),
            (126, FXS_MODULE_SIGCAP),
            (127, FXO_MODULE_SIGCAP),
            (128, FXS_MODULE_SIGCAP),
        ] {
            dahdi.add_channel(channo, 5, channo - 124, DAHDI_SIG_NONE);
            dahdi.set_sigcap(channo, caps);
        }
        let mut ctl = dahdi.open().unwrap();
        let ports = [
            (125, ChannelKind::FxsSeat),
            (126, ChannelKind::FxsSeat),
            (127, ChannelKind::FxoTrunk),
            (128, ChannelKind::FxoTrunk),
        ];
        // Port 4 has an FXS module where the board file says FXO: DAHDI refuses FXS signalling.
        let e = apply_span(&mut ctl, 5, None, &ports).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("DAHDI_CHANCONFIG (FXSKS) failed on channel 128 of DAHDI span 5")
                && text.contains("FXO module"),
            "{text}"
        );
        assert_eq!(dahdi.channel(125).sigtype, DAHDI_SIG_FXOKS);
        assert_eq!(dahdi.channel(127).sigtype, DAHDI_SIG_FXSKS);
        assert!(
            !dahdi.ctl_calls().iter().any(|c| matches!(c, CtlCall::SpanConfig(_) | CtlCall::Startup(_))),
            "an analog span gets no line configuration and no startup, as with dahdi_cfg"
        );
    }

    #[test]
    fn a_failing_channel_names_span_channel_and_signalling() {
        let dahdi = te420();
        dahdi.fail_next(16, "DAHDI_CHANCONFIG", libc::EINVAL);
        let mut ctl = dahdi.open().unwrap();
        let e = configure_span(&mut ctl, 1, &LineConfig::default(), &e1_channels(1)).unwrap_err();
        assert!(matches!(e, DahdiError::ChanConfig { spanno: 1, channo: 16, .. }), "{e:?}");
        assert!(
            e.to_string().contains("DAHDI_CHANCONFIG (HDLCFCS) failed on channel 16 of DAHDI span 1"),
            "{e}"
        );
        assert!(!dahdi.span(1).running, "a span whose channels failed is not started");

        dahdi.fail_next_span(2, "DAHDI_STARTUP", libc::EIO);
        let e = configure_span(&mut ctl, 2, &LineConfig::default(), &e1_channels(32)).unwrap_err();
        assert!(e.to_string().starts_with("DAHDI_STARTUP failed for DAHDI span 2"), "{e}");

        let e = configure_span(&mut ctl, 9, &LineConfig::default(), &e1_channels(300)).unwrap_err();
        assert!(
            e.to_string().contains("DAHDI_SPANCONFIG failed for DAHDI span 9")
                && e.to_string().contains("no such span"),
            "{e}"
        );
    }

    #[test]
    fn apply_configures_a_fresh_span_and_then_leaves_it_alone() {
        let dahdi = te420();
        let mut ctl = dahdi.open().unwrap();
        let line = LineConfig::default();
        assert!(matches!(apply_span(&mut ctl, 1, Some(&line), &e1_channels(1)), Ok(SpanOutcome::Configured)));
        let made = dahdi.ctl_calls().len();
        // A second start finds it configured as wanted and makes no configuration call.
        assert!(matches!(
            apply_span(&mut ctl, 1, Some(&line), &e1_channels(1)),
            Ok(SpanOutcome::AlreadyConfigured)
        ));
        assert_eq!(dahdi.ctl_calls().len(), made);
    }

    #[test]
    fn a_span_dahdi_cfg_configured_differently_is_kept_and_the_differences_named() {
        let dahdi = te420();
        let mut ctl = dahdi.open().unwrap();
        // What dahdi_cfg would have done from `span=1,1,0,ccs,hdb3` (no crc4) and
        // `hardhdlc=16`, `bchan=1-15,17-31`.
        let installed = LineConfig { crc4: false, ..LineConfig::default() };
        let mut channels: Vec<ChannelConfig> =
            e1_channels(1).iter().map(|&(c, k)| ChannelConfig::for_port(c, k).unwrap()).collect();
        channels[15].signalling = Signalling::HardHdlc;
        configure_span_channels(&mut ctl, 1, &installed, &channels).unwrap();
        let made = dahdi.ctl_calls().len();

        let outcome = apply_span(&mut ctl, 1, Some(&LineConfig::default()), &e1_channels(1)).unwrap();
        let SpanOutcome::KeptDifferent(diffs) = outcome else { panic!("{outcome:?}") };
        assert_eq!(
            diffs,
            ["the line runs HDB3/CCS, the configuration says HDB3/CCS/CRC4"],
            "hardhdlc fits a D-channel"
        );
        assert_eq!(dahdi.ctl_calls().len(), made, "nothing was changed");
        assert_eq!(dahdi.span(1).lineconfig, installed.bits());

        // Channels that cannot serve their ports are named, the first few one by one.
        let wrong: Vec<ChannelConfig> =
            (1..=31).map(|c| ChannelConfig { channo: c, signalling: Signalling::HdlcFcs }).collect();
        configure_channels(&mut ctl, 1, &wrong).unwrap();
        let SpanOutcome::KeptDifferent(diffs) =
            apply_span(&mut ctl, 1, Some(&installed), &e1_channels(1)).unwrap()
        else {
            panic!("kept")
        };
        assert_eq!(diffs.len(), NAMED_DIFFERENCES + 1, "{diffs:?}");
        assert!(diffs[0].starts_with("channel 1 runs HDLCFCS, a `e1-b` port needs"), "{diffs:?}");
        assert_eq!(diffs[NAMED_DIFFERENCES], "26 more channel(s) differ");
    }

    #[test]
    fn a_busy_span_is_left_running_and_reported() {
        let dahdi = te420();
        let mut ctl = dahdi.open().unwrap();
        // Started with no channels configured, on a driver that will not reconfigure a
        // running span.
        start_span(&mut ctl, 2).unwrap();
        dahdi.refuse_while_running(2);
        let outcome = apply_span(&mut ctl, 2, Some(&LineConfig::default()), &e1_channels(32)).unwrap();
        let SpanOutcome::Busy(e) = outcome else { panic!("{outcome:?}") };
        assert!(
            e.to_string().contains("DAHDI_SPANCONFIG failed for DAHDI span 2")
                && e.to_string().contains("in use"),
            "{e}"
        );
        assert_eq!(dahdi.span(2).lineconfig, 0);
    }

    #[test]
    fn a_span_of_the_wrong_shape_or_channels_of_another_span_are_refused() {
        let dahdi = te420();
        let mut ctl = dahdi.open().unwrap();
        // `first_channels` off by one: channel 32 belongs to span 2.
        let shifted: Vec<(u32, ChannelKind)> = e1_channels(2);
        let e = apply_span(&mut ctl, 1, Some(&LineConfig::default()), &shifted).unwrap_err();
        assert!(matches!(e, DahdiError::ForeignChannel { spanno: 1, channo: 32, actual: 2 }), "{e:?}");

        let t1 = FakeDahdi::new();
        t1.add_span(1, "TE2/0/1", "T2XXP (PCI) Card 0 Span 1");
        for c in 1..=24 {
            t1.add_channel(c, 1, c, DAHDI_SIG_NONE);
        }
        let mut ctl = t1.open().unwrap();
        let e = apply_span(&mut ctl, 1, Some(&LineConfig::default()), &e1_channels(1)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("DAHDI span 1 (TE2/0/1) has 24 channel(s), but 31") && text.contains("T1 span"),
            "{text}"
        );
        assert!(t1.ctl_calls().is_empty());
    }
}
