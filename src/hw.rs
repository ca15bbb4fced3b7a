//! `switchboard hw list`: the telephony hardware of the running machine; `switchboard hw
//! system-conf`: the `/etc/dahdi/system.conf` for the configured card; and
//! [`apply_dahdi_settings`], which the daemon calls at start to give the card's spans and
//! channels those same settings through `/dev/dahdi/ctl` when nothing has configured them.
//!
//! DAHDI spans and channels come from sysfs or `/proc/dahdi` (read by the DAHDI driver crate),
//! sound devices from `/proc/asound/cards` and `/proc/asound/pcm`. Each card found is matched
//! against the board files; a card that none describes gets a draft board file to start from.
//! Everything is read under a root directory, `/` on a real machine, a fixture tree in tests.
//!
//! What a DAHDI card should run ([`DahdiPlan`]) comes from the configuration alone: the board
//! file's spans and ports, `[dahdi] first_channels`, the `[[e1]]` sections (E1 spans without
//! one get the board's line defaults and are no timing source, because the daemon opens every
//! port of the board) and the tone zone. The system.conf text and the daemon's own
//! configuration are both made from it, so they cannot disagree.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchboard_driver_api::{ChannelKind, SpanKind};
use switchboard_driver_dahdi::spancfg::describe_line_bits;
use switchboard_driver_dahdi::{
    apply_span, ChannelFile, Coding, DahdiError, DahdiFd, DetectedSpan, Detection, Framing, LineConfig,
    Signalling, Source, SpanOutcome,
};

use crate::board::{Board, BoardSpan, Defaults, Detect, Driver, E1Coding, E1Framing, E1Line, PortRange};
use crate::config::{Config, E1Config, E1Signalling, LineCode, ToneZoneName};
use crate::dsp::tone::ToneZone;

/// `switchboard hw ...`
#[derive(Debug, clap::Subcommand)]
pub enum HwCommand {
    /// Lists the DAHDI spans and channels and the sound devices of this machine, with the
    /// board file that matches each card or a draft board file for a card none describes.
    List {
        /// Look under this directory instead of / (a copy of another machine's /proc and
        /// /sys, or a test fixture).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Match against the board files in this directory instead of the built-in ones.
        #[arg(long)]
        boards: Option<PathBuf>,
    },
    /// Prints the /etc/dahdi/system.conf for the configured DAHDI card: its E1 spans with
    /// their `[[e1]]` settings (framing, line code, CRC-4, timing priority), bearer and
    /// D-channels, analog ports and tone zone. Install it and run dahdi_cfg.
    SystemConf {
        /// Configuration file (default: the built-in one, which has no DAHDI card).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where to look for the machine's DAHDI spans, to number them (as for `hw list`).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The DAHDI span number of the card's first span, when DAHDI is not loaded where
        /// this runs (by default the card's spans are taken to be DAHDI spans 1, 2...).
        #[arg(long)]
        first_span: Option<u32>,
    },
}

/// Runs a `hw` subcommand.
pub fn run(cmd: HwCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        HwCommand::List { root, boards } => {
            let boards = match &boards {
                Some(dir) => Board::load_dir(dir),
                None => Board::builtin(),
            }
            .map_err(|e| anyhow::anyhow!("invalid board file:\n{e}"))?;
            let hw = detect(&root)?;
            print!("{}", report(&hw, &boards, &root));
            Ok(ExitCode::SUCCESS)
        }
        HwCommand::SystemConf { config, root, first_span } => {
            let (config, source) = match &config {
                Some(path) => (Config::load(path), path.display().to_string()),
                None => (Config::builtin(), "the built-in configuration".to_string()),
            };
            let config = config.map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
            let plan = match dahdi_plan(&config) {
                Ok(plan) => plan,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let numbering = match first_span {
                Some(first) => SpanNumbering::from_first(&plan, first),
                None => SpanNumbering::detect(&plan, &detect(&root)?.dahdi, &root),
            };
            let text = system_conf(&plan, &numbering, &source);
            // The warnings are in the text as comments too; stderr makes sure that someone
            // who redirects the output into /etc/dahdi/system.conf still sees them.
            for w in &numbering.warnings {
                eprintln!("warning: {w}");
            }
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A problem reading what the machine reports, or configuring its DAHDI card.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error(transparent)]
    Dahdi(#[from] DahdiError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    NotDahdi(String),
    #[error(
        "`dahdi.first_channels` says the card's {label} starts at DAHDI channel {channo}, but DAHDI \
         cannot tell about that channel ({source}); compare with `switchboard hw list`"
    )]
    FirstChannel { label: String, channo: u32, source: std::io::Error },
    #[error(
        "`dahdi.first_channels` says the card's {label} starts at DAHDI channel {channo}, but that is \
         channel {chanpos} of DAHDI span {spanno}; compare with `switchboard hw list`"
    )]
    NotFirst { label: String, channo: u32, spanno: u32, chanpos: u32 },
}

/// A sound card, from `/proc/asound`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlsaCard {
    pub index: u32,
    /// The short id in brackets, e.g. `H340` (what `hw:CARD=H340` names).
    pub id: String,
    /// The ALSA driver, e.g. `USB-Audio` or `HDA-Intel`.
    pub driver: String,
    pub name: String,
    pub longname: String,
    pub playback: bool,
    pub capture: bool,
}

/// The sound devices found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoundDevices {
    /// `ROOT/proc/asound/cards`.
    pub path: PathBuf,
    /// False when the file does not exist (ALSA is not loaded).
    pub present: bool,
    pub cards: Vec<AlsaCard>,
}

/// Everything `hw list` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hardware {
    pub dahdi: Detection,
    pub sound: SoundDevices,
}

/// Reads the machine under `root`.
pub fn detect(root: &Path) -> Result<Hardware, HwError> {
    Ok(Hardware { dahdi: switchboard_driver_dahdi::detect(root)?, sound: read_alsa(root)? })
}

fn read_optional(path: &Path) -> Result<Option<String>, HwError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HwError::Read { path: path.to_path_buf(), source }),
    }
}

/// Reads `ROOT/proc/asound/cards` and, for the directions each card can carry,
/// `ROOT/proc/asound/pcm`.
pub fn read_alsa(root: &Path) -> Result<SoundDevices, HwError> {
    let path = root.join("proc/asound/cards");
    let Some(cards_text) = read_optional(&path)? else {
        return Ok(SoundDevices { path, present: false, cards: Vec::new() });
    };
    let mut cards = parse_cards(&cards_text);
    if let Some(pcm) = read_optional(&root.join("proc/asound/pcm"))? {
        for line in pcm.lines() {
            // `01-00: USB Audio : USB Audio : playback 1 : capture 1`
            let Some((ids, rest)) = line.split_once(':') else { continue };
            let Some(card) = ids.split('-').next().and_then(|c| c.trim().parse::<u32>().ok()) else {
                continue;
            };
            if let Some(c) = cards.iter_mut().find(|c| c.index == card) {
                for part in rest.split(':') {
                    let part = part.trim();
                    c.playback |= part.starts_with("playback");
                    c.capture |= part.starts_with("capture");
                }
            }
        }
    }
    Ok(SoundDevices { path, present: true, cards })
}

/// Parses `/proc/asound/cards`: for each card a line ` 1 [H340    ]: USB-Audio - Logitech USB
/// Headset H340` and an indented line with its long name. `--- no soundcards ---` means none.
pub fn parse_cards(text: &str) -> Vec<AlsaCard> {
    let mut cards: Vec<AlsaCard> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let Some((index, rest)) = trimmed.split_once(' ') else { continue };
        match index.parse::<u32>() {
            Ok(index) => {
                let rest = rest.trim_start();
                let Some((id, rest)) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
                    continue;
                };
                let rest = rest.trim_start().strip_prefix(':').unwrap_or(rest).trim();
                let (driver, name) = rest.split_once(" - ").unwrap_or((rest, ""));
                cards.push(AlsaCard {
                    index,
                    id: id.trim().to_string(),
                    driver: driver.trim().to_string(),
                    name: name.trim().to_string(),
                    ..AlsaCard::default()
                });
            }
            Err(_) => {
                if let Some(card) = cards.last_mut().filter(|c| c.longname.is_empty()) {
                    if line.starts_with(' ') && !trimmed.is_empty() {
                        card.longname = trimmed.trim_end().to_string();
                    }
                }
            }
        }
    }
    cards
}

/// The spans of one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardGroup {
    /// Indexes into `Detection::spans`.
    pub spans: Vec<usize>,
    /// Index into `Detection::devices`, when sysfs said which device the spans belong to.
    pub device: Option<usize>,
}

/// Groups DAHDI spans by card: by sysfs device when known, otherwise by span name (the
/// spans of a multi-span card are named `TE4/0/1`, `TE4/0/2`...; a single-span card's name,
/// like `WCTDM/0`, stands alone).
pub fn group_dahdi(d: &Detection) -> Vec<CardGroup> {
    let key = |s: &DetectedSpan| match s.device {
        Some(dev) => format!("device {dev}"),
        None if s.name.matches('/').count() >= 2 => {
            let cut = s.name.rfind('/').unwrap_or(s.name.len());
            format!("name {}", &s.name[..cut])
        }
        None => format!("span {}", s.spanno),
    };
    let mut groups: Vec<(String, CardGroup)> = Vec::new();
    for (i, s) in d.spans.iter().enumerate() {
        let k = key(s);
        match groups.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, g)) => g.spans.push(i),
            None => groups.push((k, CardGroup { spans: vec![i], device: s.device })),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    !needle.is_empty() && haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// How a board matches a card.
#[derive(Clone, Debug)]
pub struct BoardMatch<'b> {
    pub board: &'b Board,
    /// A `detect.device` pattern matched: this is the card's model. Otherwise only a
    /// `detect.span` pattern did, which other models may share.
    pub sure: bool,
    /// Why the card's shape (spans, channels per span) differs from the board, if it does.
    pub shape: Option<String>,
    /// Ports whose detected kind differs from the board's.
    pub kinds_differ: Vec<u16>,
}

/// The boards whose patterns match a DAHDI card, sure matches only when there are any.
pub fn match_dahdi<'b>(d: &Detection, g: &CardGroup, boards: &'b [Board]) -> Vec<BoardMatch<'b>> {
    let devtype = g.device.and_then(|i| d.devices.get(i)).map(|dev| dev.devicetype.as_str()).unwrap_or("");
    let spans: Vec<&DetectedSpan> = g.spans.iter().filter_map(|&i| d.spans.get(i)).collect();
    let texts: Vec<&str> = spans.iter().flat_map(|s| [s.description.as_str(), s.name.as_str()]).collect();
    let mut out = Vec::new();
    for b in boards.iter().filter(|b| b.driver == Driver::Dahdi) {
        let sure = b
            .detect
            .device
            .iter()
            .any(|p| contains_ci(devtype, p) || texts.iter().any(|t| contains_ci(t, p)));
        let fits = b.detect.span.iter().any(|p| texts.iter().any(|t| contains_ci(t, p)));
        if !(sure || fits) {
            continue;
        }
        let shape = shape_difference(b, &spans);
        let kinds_differ = if shape.is_none() { kind_differences(b, &spans) } else { Vec::new() };
        out.push(BoardMatch { board: b, sure, shape, kinds_differ });
    }
    if out.iter().any(|m| m.sure) {
        out.retain(|m| m.sure);
    }
    out
}

fn shape_difference(b: &Board, spans: &[&DetectedSpan]) -> Option<String> {
    if b.spans.len() != spans.len() {
        return Some(format!("the board has {} span(s), the card {}", b.spans.len(), spans.len()));
    }
    for (i, (bs, ds)) in b.spans.iter().zip(spans).enumerate() {
        let digital = ds.is_digital();
        if (bs.kind == SpanKind::E1) != digital {
            return Some(format!(
                "span {} is {} on the card but {} in the board file",
                i + 1,
                if digital { "digital" } else { "analog" },
                if bs.kind == SpanKind::E1 { "E1" } else { "analog" }
            ));
        }
        if bs.port_count() != ds.channels.len() {
            return Some(format!(
                "span {} has {} channel(s) on the card but {} port(s) in the board file",
                i + 1,
                ds.channels.len(),
                bs.port_count()
            ));
        }
    }
    None
}

fn kind_differences(b: &Board, spans: &[&DetectedSpan]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut port: u16 = 1;
    for (bs, ds) in b.spans.iter().zip(spans) {
        for (want, ch) in bs.port_kinds().into_iter().zip(&ds.channels) {
            if ch.port_kind().is_some_and(|k| k != want) {
                out.push(port);
            }
            port = port.saturating_add(1);
        }
    }
    out
}

/// A draft board file for a DAHDI card, with notes on ports to check, or the reason none can
/// be written.
pub fn draft_dahdi(d: &Detection, g: &CardGroup) -> Result<(Board, Vec<(u16, String)>), String> {
    let spans: Vec<&DetectedSpan> = g.spans.iter().filter_map(|&i| d.spans.get(i)).collect();
    let device = g.device.and_then(|i| d.devices.get(i));
    let mut board_spans = Vec::new();
    let mut notes = Vec::new();
    let mut next: u16 = 1;
    for s in &spans {
        if s.is_digital() && !s.is_e1() {
            return Err(format!(
                "span {} is {} with {} channels; Switchboard runs E1 spans (set the span type to E1 \
                 with dahdi_span_types) and analog ports",
                s.spanno,
                s.spantype.as_deref().unwrap_or("a digital span"),
                s.channels.len()
            ));
        }
        let ports = if s.is_e1() {
            let kinds: Vec<ChannelKind> = (1..=31)
                .map(|pos| if pos == 16 { ChannelKind::E1Signalling } else { ChannelKind::E1Bearer })
                .collect();
            let r = crate::board::ranges(next, &kinds);
            next = next.saturating_add(31);
            BoardSpan { kind: SpanKind::E1, ports: r }
        } else {
            let mut ranges: Vec<(PortRange, bool)> = Vec::new();
            for ch in &s.channels {
                let known = ch.port_kind();
                let kind = match known {
                    Some(k @ (ChannelKind::FxoTrunk | ChannelKind::FxsSeat)) => k,
                    _ => ChannelKind::FxsSeat,
                };
                let unsure = !matches!(known, Some(ChannelKind::FxoTrunk | ChannelKind::FxsSeat));
                match ranges.last_mut() {
                    Some((r, u)) if r.kind == kind && *u == unsure => r.count += 1,
                    _ => {
                        if unsure {
                            notes.push((
                                next,
                                format!(
                                    "channel {} is not configured and its module is unknown: check",
                                    ch.channo
                                ),
                            ));
                        }
                        ranges.push((PortRange { first: next, count: 1, kind }, unsure));
                    }
                }
                next = next.saturating_add(1);
            }
            if ranges.is_empty() {
                return Err(format!("span {} has no channels", s.spanno));
            }
            BoardSpan { kind: SpanKind::Analog, ports: ranges.into_iter().map(|(r, _)| r).collect() }
        };
        board_spans.push(ports);
    }
    if board_spans.is_empty() {
        return Err("no spans".into());
    }
    let first = spans.first().map(|s| s.description.clone()).unwrap_or_default();
    let family = card_family(&first);
    let (model, detect) = match device.filter(|dev| !dev.devicetype.is_empty()) {
        Some(dev) => (
            format!("{} {}", dev.manufacturer, dev.devicetype).trim().to_string(),
            Detect { device: vec![dev.devicetype.clone()], ..Detect::default() },
        ),
        None if spans.len() > 1 || family != first => {
            (family.clone(), Detect { span: vec![family.clone()], ..Detect::default() })
        }
        None => (family.clone(), Detect { device: vec![family.clone()], ..Detect::default() }),
    };
    let has_e1 = board_spans.iter().any(|s| s.kind == SpanKind::E1);
    let e1 = spans.iter().find(|s| s.is_e1()).map(|s| {
        let lc = s.lineconfig.as_deref().unwrap_or("HDB3/CCS/CRC4");
        E1Line {
            framing: if lc.contains("CAS") { E1Framing::Cas } else { E1Framing::Ccs },
            coding: if lc.contains("AMI") { E1Coding::Ami } else { E1Coding::Hdb3 },
            crc4: lc.contains("CRC4") || s.lineconfig.is_none(),
        }
    });
    let board = Board {
        file: String::new(),
        model: if model.is_empty() { "Unknown DAHDI card".into() } else { model },
        driver: Driver::Dahdi,
        detect,
        spans: board_spans,
        defaults: Defaults {
            law: switchboard_driver_api::Law::Alaw,
            tone_zone: ToneZoneName::China,
            e1: e1.filter(|_| has_e1),
        },
    };
    Ok((board, notes))
}

/// A span description without its per-span suffix: `T4XXP (PCI) Card 0 Span 1` becomes
/// `T4XXP (PCI)`, `Wildcard TDM400P REV I Board 1` becomes `Wildcard TDM400P REV I`.
fn card_family(desc: &str) -> String {
    let mut words: Vec<&str> = desc.split_whitespace().collect();
    loop {
        let n = words.len();
        if n >= 2 && matches!(words[n - 2], "Span" | "Card" | "Board") && words[n - 1].parse::<u32>().is_ok()
        {
            words.truncate(n - 2);
        } else {
            break;
        }
    }
    words.join(" ")
}

/// The boards whose `detect.alsa` patterns match a sound card.
pub fn match_alsa<'b>(card: &AlsaCard, boards: &'b [Board]) -> Vec<&'b Board> {
    let line = format!("{} - {} {}", card.driver, card.name, card.longname);
    boards
        .iter()
        .filter(|b| b.driver == Driver::Alsa && b.detect.alsa.iter().any(|p| contains_ci(&line, p)))
        .collect()
}

/// A draft board file for a sound card.
pub fn draft_alsa(card: &AlsaCard) -> Board {
    let name = if card.name.is_empty() { card.id.clone() } else { card.name.clone() };
    Board {
        file: String::new(),
        model: name.clone(),
        driver: Driver::Alsa,
        detect: Detect { alsa: vec![name], ..Detect::default() },
        spans: vec![BoardSpan {
            kind: SpanKind::Sound,
            ports: vec![PortRange { first: 1, count: 1, kind: ChannelKind::Sound }],
        }],
        defaults: Defaults {
            law: switchboard_driver_api::Law::Alaw,
            tone_zone: ToneZoneName::China,
            e1: None,
        },
    }
}

/// `span 5`, `spans 1-4`, `spans 1, 3`.
fn span_numbers(spans: &[&DetectedSpan]) -> String {
    let n: Vec<u32> = spans.iter().map(|s| s.spanno).collect();
    match n.as_slice() {
        [one] => format!("span {one}"),
        [first, .., last] if n.windows(2).all(|w| w[1] == w[0] + 1) => format!("spans {first}-{last}"),
        _ => format!("spans {}", n.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Channel numbers as ranges: `1-15`, `16`.
fn channo_range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

fn span_line(s: &DetectedSpan) -> String {
    let mut line = format!("span {}: {}", s.spanno, s.name);
    if !s.description.is_empty() {
        let _ = write!(line, " \"{}\"", s.description);
    }
    let kind = match s.spantype.as_deref() {
        Some(t @ ("E1" | "T1" | "J1")) => t.to_string(),
        Some(t) if t.starts_with("BRI") => t.to_string(),
        _ if s.is_e1() => "E1".into(),
        _ if s.is_digital() => "digital".into(),
        _ => "analog".into(),
    };
    let _ = write!(line, ": {kind}");
    if let Some(lc) = &s.lineconfig {
        let _ = write!(line, " {lc}");
    }
    if let (Some(first), Some(last)) = (s.channels.first(), s.channels.last()) {
        let _ = write!(line, ", channels {}", channo_range(first.channo, last.channo));
        let mut runs: Vec<(u32, u32, &str)> = Vec::new();
        for c in &s.channels {
            let label = c.port_kind().map_or("unconfigured", |k| k.name());
            let label = if c.signalling.is_none() && label != "unconfigured" {
                // Known from the module only: not configured in DAHDI yet.
                match label {
                    "fxs" => "fxs (unconfigured)",
                    "fxo" => "fxo (unconfigured)",
                    other => other,
                }
            } else {
                label
            };
            match runs.last_mut() {
                Some((_, end, l)) if *l == label && *end + 1 == c.channo => *end = c.channo,
                _ => runs.push((c.channo, c.channo, label)),
            }
        }
        if runs.len() == 1 && runs[0].2 == "unconfigured" {
            line.push_str(" (not configured)");
        } else {
            let parts: Vec<String> =
                runs.iter().map(|(a, b, l)| format!("{} {l}", channo_range(*a, *b))).collect();
            let _ = write!(line, " ({})", parts.join(", "));
        }
        let in_use = s.channels.iter().filter(|c| c.in_use).count();
        if in_use > 0 {
            let _ = write!(line, ", {in_use} in use");
        }
    } else {
        line.push_str(", no channels");
    }
    if s.sync_master {
        line.push_str(", timing master");
    }
    if !s.alarms.is_empty() {
        let _ = write!(line, ", alarms: {}", s.alarms.join(" "));
    }
    line
}

fn push_draft(out: &mut String, board: &Board, notes: &[(u16, String)]) {
    out.push_str("  --- draft board file: check it, then save it in the board directory ---\n");
    let text = board.to_toml("Draft written by `switchboard hw list` from what the machine reports.", notes);
    out.push_str(&text);
    out.push_str("  --- end of draft ---\n");
}

/// The report `hw list` prints.
pub fn report(hw: &Hardware, boards: &[Board], root: &Path) -> String {
    let mut out = String::new();
    let d = &hw.dahdi;
    if d.spans.is_empty() {
        let _ = writeln!(
            out,
            "no DAHDI spans found (nothing in {} or {}: is the card's DAHDI driver loaded?)",
            root.join("sys/bus/dahdi_spans").display(),
            root.join("proc/dahdi").display()
        );
    } else {
        let from = match (d.source, &d.path) {
            (Some(Source::Sysfs), Some(p)) => format!("sysfs, {}", p.display()),
            (_, Some(p)) => p.display().to_string(),
            _ => String::from("?"),
        };
        let channels: usize = d.spans.iter().map(|s| s.channels.len()).sum();
        let _ = writeln!(out, "DAHDI: {} span(s), {channels} channel(s) (from {from})", d.spans.len());
        for g in group_dahdi(d) {
            let spans: Vec<&DetectedSpan> = g.spans.iter().filter_map(|&i| d.spans.get(i)).collect();
            let numbers = span_numbers(&spans);
            let what = match g.device.and_then(|i| d.devices.get(i)) {
                Some(dev) => {
                    let mut w = format!("{} {}", dev.manufacturer, dev.devicetype).trim().to_string();
                    let _ = write!(w, " ({}", dev.id);
                    if !dev.location.is_empty() {
                        let _ = write!(w, ", {}", dev.location);
                    }
                    w.push(')');
                    w
                }
                None => card_family(spans.first().map_or("", |s| s.description.as_str())),
            };
            let _ = writeln!(out, "\ncard: {what}, {numbers}");
            for s in &spans {
                let _ = writeln!(out, "  {}", span_line(s));
            }
            let matches = match_dahdi(d, &g, boards);
            let fitting: Vec<&BoardMatch> = matches.iter().filter(|m| m.shape.is_none()).collect();
            let mut need_draft = false;
            if let Some(best) = fitting.first() {
                let _ = write!(out, "  board: {} ({})", best.board.file, best.board.model);
                let others: Vec<&str> = fitting[1..].iter().map(|m| m.board.file.as_str()).collect();
                if !others.is_empty() {
                    let _ = write!(out, "; also fits {}", others.join(", "));
                }
                out.push('\n');
                if !best.kinds_differ.is_empty() {
                    let ports: Vec<String> = best.kinds_differ.iter().map(u16::to_string).collect();
                    let _ = writeln!(
                        out,
                        "  the ports as fitted differ from the board file at port(s) {}; a draft with the ports as found:",
                        ports.join(", ")
                    );
                    need_draft = true;
                }
            } else if let Some(m) = matches.first() {
                let _ = writeln!(
                    out,
                    "  looks like {} ({}), but {}; a draft for the card as found:",
                    m.board.model,
                    m.board.file,
                    m.shape.as_deref().unwrap_or("its shape differs")
                );
                need_draft = true;
            } else {
                out.push_str("  no board file matches this card; a draft for it:\n");
                need_draft = true;
            }
            if need_draft {
                match draft_dahdi(d, &g) {
                    Ok((board, notes)) => push_draft(&mut out, &board, &notes),
                    Err(why) => {
                        let _ = writeln!(out, "  (no draft: {why})");
                    }
                }
            }
        }
    }

    out.push('\n');
    let s = &hw.sound;
    if s.cards.is_empty() {
        if s.present {
            let _ = writeln!(out, "no sound devices found ({} lists none)", s.path.display());
        } else {
            let _ = writeln!(out, "no sound devices found (no {}: ALSA is not loaded)", s.path.display());
        }
    } else {
        let _ = writeln!(out, "sound devices: {} (from {})", s.cards.len(), s.path.display());
        for card in &s.cards {
            let dirs: Vec<&str> = [(card.playback, "playback"), (card.capture, "capture")]
                .into_iter()
                .filter_map(|(has, name)| has.then_some(name))
                .collect();
            let _ = writeln!(
                out,
                "\ncard {} [{}]: {} - {} ({})",
                card.index,
                card.id,
                card.driver,
                card.name,
                if dirs.is_empty() { "no PCM devices".to_string() } else { dirs.join(", ") }
            );
            if !card.longname.is_empty() {
                let _ = writeln!(out, "  {}", card.longname);
            }
            let usable = card.playback && card.capture;
            let matches = match_alsa(card, boards);
            match matches.first() {
                Some(b) => {
                    let _ = writeln!(out, "  board: {} ({})", b.file, b.model);
                    if !usable {
                        out.push_str("  but it cannot carry both directions of a call, so it cannot serve as a seat\n");
                    }
                }
                None if usable => {
                    out.push_str("  no board file matches this card; a draft for it:\n");
                    push_draft(&mut out, &draft_alsa(card), &[]);
                }
                None => out.push_str(
                    "  no board file matches, and it cannot carry both directions of a call (it cannot serve as a seat)\n",
                ),
            }
        }
    }
    out
}

/// One span of the configured DAHDI card, as DAHDI should run it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedSpan {
    /// The span's index on the card, from 0.
    pub index: u16,
    /// What the span is on the card, for messages: `E1 span 2` or `analog span (ports 1-4)`.
    pub label: String,
    /// The DAHDI channel number of its first port (`dahdi.first_channels`).
    pub first_channel: u32,
    /// Its channels in span order, with the kind of port each is.
    pub channels: Vec<(u32, ChannelKind)>,
    /// The line settings of an E1 span; `None` for an analog span.
    pub line: Option<LineConfig>,
    /// The `[[e1]]` section the line settings come from, if there is one.
    pub e1: Option<E1Config>,
}

/// What the configured DAHDI card should run: every span of its board file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DahdiPlan {
    pub model: String,
    pub board_file: String,
    pub spans: Vec<PlannedSpan>,
    /// DAHDI's tone zone (`loadzone=`/`defaultzone=`), e.g. `cn`.
    pub zone: &'static str,
    /// Where the zone comes from, for the system.conf comment.
    pub zone_reason: String,
}

/// DAHDI's tone zone for a zone of the configuration. DAHDI needs it for what it generates
/// itself: the ring cadence of FXS ports (the engine makes every call-progress tone). Europe
/// maps to `nl`, whose zone is the CEPT plan the engine's `europe` uses (425 Hz, busy 0.5/0.5 s,
/// congestion 0.25/0.25 s, ringing 1 s on 4 s off); `de` differs in its busy and congestion
/// timing.
pub fn dahdi_zone_code(zone: ToneZoneName) -> Option<&'static str> {
    match zone {
        ToneZoneName::China => Some("cn"),
        ToneZoneName::NorthAmerica => Some("us"),
        ToneZoneName::Europe => Some("nl"),
        ToneZoneName::Custom => None,
    }
}

fn zone_name(zone: ToneZoneName) -> &'static str {
    match zone {
        ToneZoneName::China => "china",
        ToneZoneName::NorthAmerica => "north-america",
        ToneZoneName::Europe => "europe",
        ToneZoneName::Custom => "custom",
    }
}

/// The DAHDI tone zone for a configuration, and why. The configuration keeps the zone's tones,
/// not its name, so the built-in zones are recognised by their tones; custom tones have no
/// DAHDI zone, and the board's default zone then gives the ring cadence.
fn dahdi_zone(config: &Config, board: &Board) -> (&'static str, String) {
    let named = [ToneZoneName::China, ToneZoneName::NorthAmerica, ToneZoneName::Europe];
    let builtin = |z: ToneZoneName| match z {
        ToneZoneName::China => ToneZone::china(),
        ToneZoneName::NorthAmerica => ToneZone::north_america(),
        _ => ToneZone::europe(),
    };
    if let Some(z) = named.into_iter().find(|&z| builtin(z) == config.tone_zone) {
        let code = dahdi_zone_code(z).unwrap_or("us");
        return (code, format!("engine.tone_zone = \"{}\"", zone_name(z)));
    }
    let fallback = board.defaults.tone_zone;
    let code = dahdi_zone_code(fallback).unwrap_or("us");
    (
        code,
        format!(
            "engine.tone_zone = \"custom\" has no DAHDI zone; the board's default ({}) gives FXS \
             ports their ring cadence",
            zone_name(fallback)
        ),
    )
}

fn e1_line(e1: &E1Config) -> LineConfig {
    LineConfig {
        // The configuration accepts only CCS framing: ISDN PRI needs timeslot 16.
        framing: Framing::Ccs,
        coding: match e1.line_code {
            LineCode::Hdb3 => Coding::Hdb3,
            LineCode::Ami => Coding::Ami,
        },
        crc4: e1.crc4,
        timing: e1.timing,
        lbo: 0,
    }
}

/// The line of an E1 span that has no `[[e1]]` section: the board's defaults, never a timing
/// source (nothing says the span is connected to the exchange). The framing is CCS whatever
/// the board says, because every E1 span of a board carries its D-channel on timeslot 16.
fn default_line(board: &Board) -> LineConfig {
    let d =
        board.defaults.e1.unwrap_or(E1Line { framing: E1Framing::Ccs, coding: E1Coding::Hdb3, crc4: true });
    LineConfig {
        framing: Framing::Ccs,
        coding: match d.coding {
            E1Coding::Hdb3 => Coding::Hdb3,
            E1Coding::Ami => Coding::Ami,
        },
        crc4: d.crc4,
        timing: 0,
        lbo: 0,
    }
}

/// What the configured DAHDI card should run, or why there is no DAHDI card.
pub fn dahdi_plan(config: &Config) -> Result<DahdiPlan, HwError> {
    let dahdi =
        match &config.driver {
            crate::config::Driver::Dahdi(d) => d,
            crate::config::Driver::Sim(_) => {
                return Err(HwError::NotDahdi(
                    "the configuration runs the simulated card (`card.driver = \"sim\"`): there is no DAHDI \
                 card to configure, and no system.conf to write"
                        .into(),
                ))
            }
            crate::config::Driver::Alsa => return Err(HwError::NotDahdi(
                "the configuration runs sound devices only (`card.driver = \"alsa\"`): there is no DAHDI \
                 card to configure, and no system.conf to write"
                    .into(),
            )),
        };
    let board = &dahdi.board;
    let mut spans = Vec::new();
    let mut port: usize = 1;
    let mut e1_number = 0;
    for (i, (span, &first)) in board.spans.iter().zip(&dahdi.first_channels).enumerate() {
        let kinds = span.port_kinds();
        let channels: Vec<(u32, ChannelKind)> =
            kinds.iter().enumerate().map(|(pos, &kind)| (first + pos as u32, kind)).collect();
        let ports = format!("ports {}", channo_range(port as u32, (port + kinds.len() - 1) as u32));
        port += kinds.len();
        let index = i as u16;
        let (label, line, e1) = match span.kind {
            SpanKind::E1 => {
                e1_number += 1;
                let e1 = config.e1.iter().find(|e| e.card_span == index).cloned();
                let line = e1.as_ref().map_or_else(|| default_line(board), e1_line);
                (format!("E1 span {e1_number}"), Some(line), e1)
            }
            SpanKind::Analog => (format!("analog span ({ports})"), None, None),
            // A DAHDI board has no sound spans (board files are checked); nothing to configure.
            SpanKind::Sound => continue,
        };
        spans.push(PlannedSpan { index, label, first_channel: first, channels, line, e1 });
    }
    let (zone, zone_reason) = dahdi_zone(config, board);
    Ok(DahdiPlan { model: board.model.clone(), board_file: board.file.clone(), spans, zone, zone_reason })
}

/// The DAHDI span number of each planned span, and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanNumbering {
    /// One per planned span.
    pub spannos: Vec<u32>,
    /// The detected span's name and description, when the machine was read.
    pub names: Vec<Option<String>>,
    /// How the numbers were found, for the system.conf header.
    pub how: String,
    /// What does not fit (the machine's spans differ from the configuration).
    pub warnings: Vec<String>,
}

impl SpanNumbering {
    /// The card's spans numbered from `first` in order (`--first-span`).
    pub fn from_first(plan: &DahdiPlan, first: u32) -> SpanNumbering {
        let spannos: Vec<u32> = (0..plan.spans.len() as u32).map(|i| first + i).collect();
        SpanNumbering {
            names: vec![None; spannos.len()],
            how: format!("numbered from --first-span {first}, in the board file's order"),
            spannos,
            warnings: Vec::new(),
        }
    }

    /// The span numbers DAHDI gave the channels `first_channels` names, as read under `root`;
    /// without DAHDI there, the card's spans are taken to be spans 1, 2... in order.
    pub fn detect(plan: &DahdiPlan, found: &Detection, root: &Path) -> SpanNumbering {
        if found.spans.is_empty() {
            let mut n = SpanNumbering::from_first(plan, 1);
            n.how = format!(
                "assumed to be 1-{} in the board file's order: DAHDI is not loaded under {} to check \
                 (see `switchboard hw list`, and give --first-span when the card's spans start elsewhere)",
                plan.spans.len().max(1),
                root.display()
            );
            return n;
        }
        let from =
            found.path.as_ref().map_or_else(|| root.display().to_string(), |p| p.display().to_string());
        let mut n = SpanNumbering {
            spannos: Vec::new(),
            names: Vec::new(),
            how: format!("as DAHDI numbers them on this machine ({from})"),
            warnings: Vec::new(),
        };
        for (i, planned) in plan.spans.iter().enumerate() {
            let span =
                found.spans.iter().find(|s| s.channels.iter().any(|c| c.channo == planned.first_channel));
            match span {
                Some(s) => {
                    let pos = s.channels.iter().position(|c| c.channo == planned.first_channel).unwrap_or(0);
                    if pos != 0 {
                        n.warnings.push(format!(
                            "the card's {} starts at channel {} (`dahdi.first_channels`), which is channel {} of \
                             DAHDI span {} ({})",
                            planned.label,
                            planned.first_channel,
                            pos + 1,
                            s.spanno,
                            s.name
                        ));
                    }
                    if s.channels.len() != planned.channels.len() {
                        n.warnings.push(format!(
                            "DAHDI span {} ({}) has {} channel(s), the board file gives the card's {} {}",
                            s.spanno,
                            s.name,
                            s.channels.len(),
                            planned.label,
                            planned.channels.len()
                        ));
                    }
                    n.spannos.push(s.spanno);
                    let mut name = s.name.clone();
                    if !s.description.is_empty() {
                        let _ = write!(name, " \"{}\"", s.description);
                    }
                    n.names.push(Some(name));
                }
                None => {
                    let guess = (i + 1) as u32;
                    n.warnings.push(format!(
                        "DAHDI has no channel {} (the first of the card's {}); its span is assumed to be span {guess}",
                        planned.first_channel, planned.label
                    ));
                    n.spannos.push(guess);
                    n.names.push(None);
                }
            }
        }
        n
    }
}

/// Channel numbers as system.conf lists them: `1-15,17-31`.
fn channel_list(channels: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &c in channels {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == c => *last = c,
            _ => runs.push((c, c)),
        }
    }
    runs.iter().map(|&(a, b)| channo_range(a, b)).collect::<Vec<_>>().join(",")
}

/// The channel lines of a span: one per signalling keyword, in the order the keywords first
/// appear (`bchan=` before `dchan=`, as dahdi_genconf writes them).
fn channel_lines(channels: &[(u32, ChannelKind)]) -> Vec<String> {
    let mut groups: Vec<(&'static str, Vec<u32>)> = Vec::new();
    for &(channo, kind) in channels {
        let Some(sig) = Signalling::for_port(kind) else { continue };
        match groups.iter_mut().find(|(k, _)| *k == sig.keyword()) {
            Some((_, list)) => list.push(channo),
            None => groups.push((sig.keyword(), vec![channo])),
        }
    }
    groups.into_iter().map(|(keyword, list)| format!("{keyword}={}", channel_list(&list))).collect()
}

/// Appends `text` as `#` comment lines of at most 96 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > 96 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The `/etc/dahdi/system.conf` text for a plan; `source` names the configuration file.
pub fn system_conf(plan: &DahdiPlan, numbering: &SpanNumbering, source: &str) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        &format!("DAHDI configuration for the {}, board file {}.", plan.model, plan.board_file),
    );
    comment(&mut out, &format!("Written by `switchboard hw system-conf` from {source}."));
    comment(
        &mut out,
        "Install it as /etc/dahdi/system.conf and run dahdi_cfg. At start the daemon gives spans that \
         nothing has configured these same settings, and leaves spans configured from this file as they \
         are. No echocanceller= lines: Switchboard cancels echo in its media engine.",
    );
    comment(&mut out, &format!("DAHDI span numbers: {}.", numbering.how));
    for w in &numbering.warnings {
        comment(&mut out, &format!("WARNING: {w}."));
    }
    for (i, span) in plan.spans.iter().enumerate() {
        let spanno = numbering.spannos.get(i).copied().unwrap_or(i as u32 + 1);
        let name = match numbering.names.get(i) {
            Some(Some(name)) => format!(" ({name})"),
            _ => String::new(),
        };
        out.push('\n');
        match &span.line {
            Some(line) => {
                let timing = match line.timing {
                    0 => "not a timing source".to_string(),
                    n => format!("timing source priority {n}"),
                };
                let what = match &span.e1 {
                    Some(e1) => format!(
                        "[[e1]] span = {}: ISDN PRI, {}, {timing}",
                        e1.number,
                        match e1.signalling {
                            E1Signalling::PriCpe => "user (CPE) side",
                            E1Signalling::PriNet => "network side",
                        },
                    ),
                    None => format!("no [[e1]] section: the board's line defaults, {timing}"),
                };
                comment(&mut out, &format!("Span {spanno}{name}: the card's {}, {what}.", span.label));
                let _ = writeln!(out, "{}", line.system_conf(spanno));
            }
            None => comment(
                &mut out,
                &format!(
                    "Span {spanno}{name}: the card's {}. DAHDI names the signalling after the far end: FXS \
                     ports (phones) are fxoks, FXO ports (lines) fxsks.",
                    span.label
                ),
            ),
        }
        for line in channel_lines(&span.channels) {
            let _ = writeln!(out, "{line}");
        }
    }
    out.push('\n');
    comment(
        &mut out,
        &format!("Tone zone: {}. DAHDI uses it for the ring cadence of FXS ports.", plan.zone_reason),
    );
    let _ = write!(out, "loadzone={}\ndefaultzone={}\n", plan.zone, plan.zone);
    out
}

/// What [`apply_dahdi_settings`] did, for the daemon's log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppliedSettings {
    /// One line per span that was configured or found configured as it should be (log them
    /// at info).
    pub notes: Vec<String>,
    /// Spans left as something else configured them, and DAHDI missing (log them at warn).
    pub warnings: Vec<String>,
}

/// Gives the configured DAHDI card's spans and channels their settings through the control
/// device next to `dahdi.channel_device` (normally `/dev/dahdi/ctl`): E1 spans their line
/// (`[[e1]]` framing, line code, CRC-4, timing priority) and channels, analog spans their
/// ports' signalling, as `dahdi_cfg` would from `switchboard hw system-conf`'s output.
///
/// Call it before opening the card's channels. A span something already configured (dahdi_cfg
/// from /etc/dahdi/system.conf, or an earlier start) is left as it is, and a warning names what
/// differs; so is a span DAHDI reports busy. Without DAHDI (no control device) there is a
/// warning and nothing else (likewise when the daemon may not open it): opening the channels
/// then fails with the real reason if they are not configured. Nothing to
/// do for the simulated card or sound devices. Errors name the span or channel: a channel
/// that cannot take its port's signalling (the wrong module fitted), `first_channels` that do
/// not start the card's spans, a span with another number of channels than the board file's.
pub fn apply_dahdi_settings(config: &Config) -> Result<AppliedSettings, HwError> {
    let crate::config::Driver::Dahdi(dahdi) = &config.driver else {
        return Ok(AppliedSettings::default());
    };
    let plan = dahdi_plan(config)?;
    let path = dahdi.channel_device.with_file_name("ctl");
    // Any failure to open the control device is a warning, not an error: DAHDI may not be
    // loaded, or the daemon's user may only be allowed the channels that dahdi_cfg configured.
    // Opening the channels next gives the error that matters, naming the channel.
    let mut ctl = match ChannelFile::open(&path) {
        Ok(fd) => fd,
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "the spans must be configured by dahdi_cfg from /etc/dahdi/system.conf"
            } else {
                "is DAHDI loaded?"
            };
            return Ok(AppliedSettings {
                notes: Vec::new(),
                warnings: vec![format!(
                    "cannot open {} ({e}): the span settings were not applied ({why})",
                    path.display()
                )],
            });
        }
    };
    apply_plan(&plan, &mut ctl)
}

/// [`apply_dahdi_settings`] on a given control descriptor (tests use the DAHDI crate's fake).
pub fn apply_plan<F: DahdiFd>(plan: &DahdiPlan, ctl: &mut F) -> Result<AppliedSettings, HwError> {
    let mut applied = AppliedSettings::default();
    for span in &plan.spans {
        let channo = span.first_channel;
        let n = libc::c_int::try_from(channo).map_err(|_| HwError::FirstChannel {
            label: span.label.clone(),
            channo,
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        let params = ctl.get_params(n).map_err(|source| HwError::FirstChannel {
            label: span.label.clone(),
            channo,
            source,
        })?;
        let spanno = u32::try_from(params.spanno).unwrap_or(0);
        if params.chanpos != 1 {
            return Err(HwError::NotFirst {
                label: span.label.clone(),
                channo,
                spanno,
                chanpos: u32::try_from(params.chanpos).unwrap_or(0),
            });
        }
        let what = match &span.line {
            Some(line) => format!("{}, timing priority {}", describe_line_bits(line.bits()), line.timing),
            None => "FXS ports fxoks, FXO ports fxsks".into(),
        };
        let last = span.channels.last().map_or(channo, |&(c, _)| c);
        let who = format!(
            "DAHDI span {spanno} (the card's {}, channels {})",
            span.label,
            channo_range(channo, last)
        );
        match apply_span(ctl, spanno, span.line.as_ref(), &span.channels)? {
            SpanOutcome::Configured => applied.notes.push(format!("{who}: configured, {what}")),
            SpanOutcome::AlreadyConfigured => applied.notes.push(format!(
                "{who}: already configured as the configuration says (by dahdi_cfg or an earlier start); left as it is"
            )),
            SpanOutcome::KeptDifferent(differences) => applied.warnings.push(format!(
                "{who} was configured before (by dahdi_cfg from /etc/dahdi/system.conf?) and is left as it is, \
                 but it differs from the configuration: {}; make them agree (`switchboard hw system-conf` \
                 prints the system.conf for the configuration)",
                differences.join("; ")
            )),
            SpanOutcome::Busy(e) => {
                applied.warnings.push(format!("{who} is in use and keeps the settings it has: {e}"))
            }
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asound_cards_are_parsed() {
        let cards = parse_cards(
            " 0 [PCH            ]: HDA-Intel - HDA Intel PCH\n                      HDA Intel PCH at 0xf7f10000 irq 32\n \
             1 [H340           ]: USB-Audio - Logitech USB Headset H340\n                      Logitech USB Headset at usb-0000:00:14.0-2, full speed\n",
        );
        assert_eq!(cards.len(), 2);
        assert_eq!(
            (cards[1].index, cards[1].id.as_str(), cards[1].driver.as_str()),
            (1, "H340", "USB-Audio")
        );
        assert_eq!(cards[1].name, "Logitech USB Headset H340");
        assert!(cards[1].longname.starts_with("Logitech USB Headset at usb"));
        assert!(parse_cards("--- no soundcards ---\n").is_empty());
    }

    #[test]
    fn card_family_drops_the_per_span_suffix() {
        assert_eq!(card_family("T4XXP (PCI) Card 0 Span 1"), "T4XXP (PCI)");
        assert_eq!(card_family("Wildcard TDM400P REV I Board 1"), "Wildcard TDM400P REV I");
        assert_eq!(card_family("Wildcard TDM410P"), "Wildcard TDM410P");
    }

    #[test]
    fn drafts_of_detected_cards_read_back_as_board_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/dahdi/tests/fixtures/machine");
        let hw = detect(&root).unwrap();
        let groups = group_dahdi(&hw.dahdi);
        assert_eq!(groups.len(), 2, "{groups:?}");
        for g in &groups {
            let (board, notes) = draft_dahdi(&hw.dahdi, g).unwrap();
            let text = board.to_toml("draft", &notes);
            let back = Board::parse(&text, "draft").unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back.spans, board.spans);
        }
        let (te, _) = draft_dahdi(&hw.dahdi, &groups[0]).unwrap();
        assert_eq!((te.model.as_str(), te.spans.len(), te.port_count()), ("T4XXP (PCI)", 4, 124));
        assert_eq!(te.detect.span, ["T4XXP (PCI)"]);
        for card in &hw.sound.cards {
            let b = draft_alsa(card);
            Board::parse(&b.to_toml("draft", &[]), "draft").unwrap();
        }
    }

    #[test]
    fn builtin_boards_match_the_fixture_machine() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/dahdi/tests/fixtures/machine");
        let hw = detect(&root).unwrap();
        let boards = Board::builtin().unwrap();
        let groups = group_dahdi(&hw.dahdi);
        let te = match_dahdi(&hw.dahdi, &groups[0], &boards);
        let files: Vec<&str> = te.iter().map(|m| m.board.file.as_str()).collect();
        assert_eq!(files, ["board/digium-te420.toml", "board/openvox-d410p.toml"], "proc only says T4XXP");
        assert!(te.iter().all(|m| !m.sure && m.shape.is_none()));
        let tdm = match_dahdi(&hw.dahdi, &groups[1], &boards);
        assert_eq!(tdm.len(), 1);
        assert!(tdm[0].sure && tdm[0].shape.is_none());
        // The fixture's TDM410P has FXS modules on ports 1-2 and FXO on 3-4, as the board file.
        assert!(tdm[0].kinds_differ.is_empty());
        let usb = &hw.sound.cards[1];
        assert_eq!(match_alsa(usb, &boards)[0].file, "board/usb-headset.toml");
        assert!(match_alsa(&hw.sound.cards[0], &boards).is_empty());
    }
}
