//! `switchboard hw list`: the telephony hardware of the running machine.
//!
//! DAHDI spans and channels come from sysfs or `/proc/dahdi` (read by the DAHDI driver crate),
//! sound devices from `/proc/asound/cards` and `/proc/asound/pcm`. Each card found is matched
//! against the board files; a card that none describes gets a draft board file to start from.
//! Everything is read under a root directory, `/` on a real machine, a fixture tree in tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchboard_driver_api::{ChannelKind, SpanKind};
use switchboard_driver_dahdi::{DahdiError, DetectedSpan, Detection, Source};

use crate::board::{Board, BoardSpan, Defaults, Detect, Driver, E1Coding, E1Framing, E1Line, PortRange};
use crate::config::ToneZoneName;

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
    }
}

/// A problem reading what the machine reports.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error(transparent)]
    Dahdi(#[from] DahdiError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
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
