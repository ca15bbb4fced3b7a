//! Board files: what a telephony card is, in TOML (`board/*.toml`).
//!
//! A board file names the card's model and the driver that runs it, says how to recognise it
//! on a machine (`[detect]`), lists its spans with their ports (numbered from 1 across the
//! whole card, the way users and the configuration count them) and gives the defaults an
//! installation starts from. `switchboard hw list` matches the hardware it finds against
//! these files and writes a draft for a card none describes.
//!
//! ```toml
//! model = "Digium TDM410P / AEX410"
//! driver = "dahdi"            # sim, dahdi or alsa
//!
//! [detect]
//! device = ["TDM410P"]        # found in the DAHDI device type or span description
//!
//! [[span]]
//! kind = "analog"             # analog, e1 or sound
//! ports = [
//!   { first = 1, count = 2, kind = "fxs" },
//!   { first = 3, count = 2, kind = "fxo" },
//! ]
//!
//! [defaults]
//! law = "alaw"
//! tone_zone = "china"
//! ```
//!
//! Every error names the file, line and key, like the configuration's.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use switchboard_driver_api::{ChannelKind, Law, SpanKind};
use switchboard_driver_dahdi::ChannelSpec;
use toml::Spanned;

use crate::config::{ConfigError, ConfigErrors, ToneZoneName};

/// The board files shipped with Switchboard, built into the binary so that `hw list` works
/// wherever it runs. A test checks that this list and the `board/` directory agree.
pub const BUILTIN: &[(&str, &str)] = &[
    ("digium-tdm410p.toml", include_str!("../board/digium-tdm410p.toml")),
    ("digium-te420.toml", include_str!("../board/digium-te420.toml")),
    ("openvox-a400p.toml", include_str!("../board/openvox-a400p.toml")),
    ("openvox-d410p.toml", include_str!("../board/openvox-d410p.toml")),
    ("sim.toml", include_str!("../board/sim.toml")),
    ("usb-headset.toml", include_str!("../board/usb-headset.toml")),
];

/// The driver that runs a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Sim,
    Dahdi,
    Alsa,
}

impl Driver {
    pub const fn name(self) -> &'static str {
        match self {
            Driver::Sim => "sim",
            Driver::Dahdi => "dahdi",
            Driver::Alsa => "alsa",
        }
    }
}

/// How `hw list` recognises a board. Patterns are matched case-insensitively as substrings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detect {
    /// Found in the DAHDI device type (sysfs) or a span's description: a sure match.
    pub device: Vec<String>,
    /// Found in a span's description or name when the device type is unknown (older DAHDI
    /// without sysfs): several boards may share them, so they only say the board fits.
    pub span: Vec<String>,
    /// Found in an ALSA card's line in `/proc/asound/cards` (driver, name or long name).
    pub alsa: Vec<String>,
}

/// A run of ports of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The first port's number on the card, from 1.
    pub first: u16,
    pub count: u16,
    pub kind: ChannelKind,
}

/// A span of the board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardSpan {
    pub kind: SpanKind,
    pub ports: Vec<PortRange>,
}

impl BoardSpan {
    /// The number of ports (channels) on the span.
    pub fn port_count(&self) -> usize {
        self.ports.iter().map(|r| usize::from(r.count)).sum()
    }

    /// The kind of each port, in order.
    pub fn port_kinds(&self) -> Vec<ChannelKind> {
        self.ports.iter().flat_map(|r| std::iter::repeat(r.kind).take(usize::from(r.count))).collect()
    }
}

/// E1 line settings an installation starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E1Line {
    /// `ccs` (ISDN PRI) or `cas`.
    pub framing: E1Framing,
    /// `hdb3` or `ami`.
    pub coding: E1Coding,
    pub crc4: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum E1Framing {
    Ccs,
    Cas,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum E1Coding {
    Hdb3,
    Ami,
}

/// The defaults of a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub law: Law,
    pub tone_zone: ToneZoneName,
    /// Only on boards with E1 spans.
    pub e1: Option<E1Line>,
}

/// A board file, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Board {
    /// The file it came from, for messages.
    pub file: String,
    pub model: String,
    pub driver: Driver,
    pub detect: Detect,
    pub spans: Vec<BoardSpan>,
    pub defaults: Defaults,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    model: Spanned<String>,
    driver: Driver,
    #[serde(default)]
    detect: RawDetect,
    #[serde(default = "no_spans")]
    span: Spanned<Vec<RawSpan>>,
    #[serde(default)]
    defaults: RawDefaults,
}

fn no_spans() -> Spanned<Vec<RawSpan>> {
    Spanned::new(0..0, Vec::new())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    #[serde(default)]
    device: Vec<String>,
    #[serde(default)]
    span: Vec<String>,
    #[serde(default)]
    alsa: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawSpanKind {
    Analog,
    E1,
    Sound,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpan {
    kind: RawSpanKind,
    ports: Spanned<Vec<RawPorts>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
enum RawPortKind {
    #[serde(rename = "fxo")]
    Fxo,
    #[serde(rename = "fxs")]
    Fxs,
    #[serde(rename = "e1-b")]
    E1Bearer,
    #[serde(rename = "e1-d")]
    E1Signalling,
    #[serde(rename = "sound")]
    Sound,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPorts {
    first: Spanned<u16>,
    count: Spanned<u16>,
    kind: Spanned<RawPortKind>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawLaw {
    #[default]
    Alaw,
    Ulaw,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    #[serde(default)]
    law: RawLaw,
    #[serde(default)]
    tone_zone: Option<Spanned<ToneZoneName>>,
    #[serde(default)]
    e1_framing: Option<Spanned<E1Framing>>,
    #[serde(default)]
    e1_coding: Option<E1Coding>,
    #[serde(default)]
    e1_crc4: Option<bool>,
}

impl Board {
    /// Reads and checks a board file.
    pub fn load(path: &Path) -> Result<Board, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: name.clone(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }])
        })?;
        Board::parse(&text, &name)
    }

    /// Parses and checks board-file text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Board, ConfigErrors> {
        let at = |span: Option<Range<usize>>, key: String, message: String| {
            let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigError { file: file.to_string(), line, column, key, message }
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigErrors(vec![at(e.span(), String::new(), e.message().to_string())]))?;
        let raw: RawBoard = serde_path_to_error::deserialize(de).map_err(|e| {
            // A `Spanned` value shows in the path as a private field; the reader wants the key.
            let key = e.path().to_string().replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let key = if key == "." { String::new() } else { key };
            ConfigErrors(vec![at(inner.span(), key, inner.message().to_string())])
        })?;
        validate(raw, file, &at)
    }

    /// The boards built into the binary.
    pub fn builtin() -> Result<Vec<Board>, ConfigErrors> {
        let mut boards = Vec::new();
        let mut errors = Vec::new();
        for (name, text) in BUILTIN {
            match Board::parse(text, &format!("board/{name}")) {
                Ok(b) => boards.push(b),
                Err(e) => errors.extend(e.0),
            }
        }
        if errors.is_empty() {
            Ok(boards)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Every `*.toml` file of a directory, in name order. All files are read and every
    /// problem reported, not just the first file's.
    pub fn load_dir(dir: &Path) -> Result<Vec<Board>, ConfigErrors> {
        let unreadable = |e: std::io::Error| {
            ConfigErrors(vec![ConfigError {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the directory: {e}"),
            }])
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(unreadable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut boards = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match Board::load(&p) {
                Ok(b) => boards.push(b),
                Err(e) => errors.extend(e.0),
            }
        }
        if errors.is_empty() {
            Ok(boards)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The number of ports on the card.
    pub fn port_count(&self) -> usize {
        self.spans.iter().map(BoardSpan::port_count).sum()
    }

    /// The channels to open on a DAHDI card described by this board: port `p` of span `s` is
    /// DAHDI channel `basechans[s] + position - 1`, where `basechans` are the first channel
    /// numbers of the card's spans in DAHDI (from `hw list` or `/proc/dahdi`).
    pub fn dahdi_channels(&self, basechans: &[u32]) -> Result<Vec<ChannelSpec>, String> {
        if self.driver != Driver::Dahdi {
            return Err(format!("{} is a `{}` board, not a DAHDI one", self.model, self.driver.name()));
        }
        if basechans.len() != self.spans.len() {
            return Err(format!(
                "{} has {} span(s) but {} first channel number(s) were given",
                self.model,
                self.spans.len(),
                basechans.len()
            ));
        }
        let mut out = Vec::with_capacity(self.port_count());
        for (span, &base) in self.spans.iter().zip(basechans) {
            for (i, kind) in span.port_kinds().into_iter().enumerate() {
                out.push(ChannelSpec { channo: base + i as u32, kind, law: self.defaults.law });
            }
        }
        Ok(out)
    }

    /// The board as a board file, for drafts: what [`Board::parse`] reads back.
    pub fn to_toml(&self, header: &str, notes: &[(u16, String)]) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let list = |v: &[String]| format!("[{}]", v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
        let mut out = String::new();
        for line in header.lines() {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "model = {}", q(&self.model));
        let _ = writeln!(out, "driver = {}", q(self.driver.name()));
        let d = &self.detect;
        if !(d.device.is_empty() && d.span.is_empty() && d.alsa.is_empty()) {
            let _ = writeln!(out, "\n[detect]");
            for (key, v) in [("device", &d.device), ("span", &d.span), ("alsa", &d.alsa)] {
                if !v.is_empty() {
                    let _ = writeln!(out, "{key} = {}", list(v));
                }
            }
        }
        for span in &self.spans {
            let kind = match span.kind {
                SpanKind::Analog => "analog",
                SpanKind::E1 => "e1",
                SpanKind::Sound => "sound",
            };
            let _ = writeln!(out, "\n[[span]]\nkind = {}\nports = [", q(kind));
            for r in &span.ports {
                let _ = write!(
                    out,
                    "  {{ first = {}, count = {}, kind = {} }},",
                    r.first,
                    r.count,
                    q(r.kind.name())
                );
                if let Some((_, note)) = notes.iter().find(|(port, _)| *port == r.first) {
                    let _ = write!(out, "  # {note}");
                }
                out.push('\n');
            }
            out.push_str("]\n");
        }
        let law = match self.defaults.law {
            Law::Alaw => "alaw",
            Law::Ulaw => "ulaw",
        };
        let zone = match self.defaults.tone_zone {
            ToneZoneName::China => "china",
            ToneZoneName::NorthAmerica => "north-america",
            ToneZoneName::Europe => "europe",
            ToneZoneName::Custom => "custom",
        };
        let _ = writeln!(out, "\n[defaults]\nlaw = {}\ntone_zone = {}", q(law), q(zone));
        if let Some(e1) = self.defaults.e1 {
            let framing = match e1.framing {
                E1Framing::Ccs => "ccs",
                E1Framing::Cas => "cas",
            };
            let coding = match e1.coding {
                E1Coding::Hdb3 => "hdb3",
                E1Coding::Ami => "ami",
            };
            let _ = writeln!(
                out,
                "e1_framing = {}\ne1_coding = {}\ne1_crc4 = {}",
                q(framing),
                q(coding),
                e1.crc4
            );
        }
        out
    }
}

/// Consecutive ports of the same kind as ranges, numbered from `first`.
pub fn ranges(first: u16, kinds: &[ChannelKind]) -> Vec<PortRange> {
    let mut out: Vec<PortRange> = Vec::new();
    for (i, &kind) in kinds.iter().enumerate() {
        let port = first + i as u16;
        match out.last_mut() {
            Some(r) if r.kind == kind && r.first + r.count == port => r.count += 1,
            _ => out.push(PortRange { first: port, count: 1, kind }),
        }
    }
    out
}

/// The 1-based line and column of a byte offset, for error messages.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

type At<'a> = &'a dyn Fn(Option<Range<usize>>, String, String) -> ConfigError;

fn validate(raw: RawBoard, file: &str, at: At<'_>) -> Result<Board, ConfigErrors> {
    let mut errors = Vec::new();
    let span_of = |r: Range<usize>| if r.is_empty() { None } else { Some(r) };
    let model = raw.model.get_ref().trim().to_string();
    if model.is_empty() {
        errors.push(at(span_of(raw.model.span()), "model".into(), "the model must not be empty".into()));
    }
    let spans_span = span_of(raw.span.span());
    if raw.span.get_ref().is_empty() {
        errors.push(at(spans_span.clone(), "span".into(), "a board needs at least one [[span]]".into()));
    }

    let mut next_port: u32 = 1;
    let mut spans = Vec::new();
    for (si, rs) in raw.span.into_inner().into_iter().enumerate() {
        let kind = match rs.kind {
            RawSpanKind::Analog => SpanKind::Analog,
            RawSpanKind::E1 => SpanKind::E1,
            RawSpanKind::Sound => SpanKind::Sound,
        };
        let driver_ok = match raw.driver {
            Driver::Sim => kind != SpanKind::Sound,
            Driver::Dahdi => kind != SpanKind::Sound,
            Driver::Alsa => kind == SpanKind::Sound,
        };
        let ports_span = span_of(rs.ports.span());
        if !driver_ok {
            errors.push(at(
                ports_span.clone(),
                format!("span[{si}].kind"),
                format!("a `{}` board cannot have a {} span", raw.driver.name(), span_name(kind)),
            ));
        }
        let mut ports = Vec::new();
        for (pi, rp) in rs.ports.get_ref().iter().enumerate() {
            let key = |field: &str| format!("span[{si}].ports[{pi}].{field}");
            let first = *rp.first.get_ref();
            let count = *rp.count.get_ref();
            let pkind = match *rp.kind.get_ref() {
                RawPortKind::Fxo => ChannelKind::FxoTrunk,
                RawPortKind::Fxs => ChannelKind::FxsSeat,
                RawPortKind::E1Bearer => ChannelKind::E1Bearer,
                RawPortKind::E1Signalling => ChannelKind::E1Signalling,
                RawPortKind::Sound => ChannelKind::Sound,
            };
            if u32::from(first) != next_port {
                errors.push(at(
                    span_of(rp.first.span()),
                    key("first"),
                    format!("ports are numbered on from the previous range: expected first = {next_port}, found {first}"),
                ));
            }
            if count == 0 {
                errors.push(at(
                    span_of(rp.count.span()),
                    key("count"),
                    "a range needs at least one port".into(),
                ));
            }
            let allowed: &[ChannelKind] = match kind {
                SpanKind::Analog => &[ChannelKind::FxoTrunk, ChannelKind::FxsSeat],
                SpanKind::E1 => &[ChannelKind::E1Bearer, ChannelKind::E1Signalling],
                SpanKind::Sound => &[ChannelKind::Sound],
            };
            if !allowed.contains(&pkind) {
                let names: Vec<_> = allowed.iter().map(|k| format!("`{}`", k.name())).collect();
                errors.push(at(
                    span_of(rp.kind.span()),
                    key("kind"),
                    format!(
                        "`{}` ports cannot be on a {} span (use {})",
                        pkind.name(),
                        span_name(kind),
                        names.join(" or ")
                    ),
                ));
            }
            next_port = u32::from(first) + u32::from(count);
            ports.push(PortRange { first, count, kind: pkind });
        }
        let span = BoardSpan { kind, ports };
        let key = format!("span[{si}].ports");
        match kind {
            SpanKind::E1 => {
                let kinds = span.port_kinds();
                let standard = kinds.len() == 31
                    && kinds.iter().enumerate().all(|(i, &k)| (k == ChannelKind::E1Signalling) == (i == 15));
                if !standard {
                    errors.push(at(
                        ports_span.clone(),
                        key,
                        format!(
                            "an E1 span has 31 ports: bearers on timeslots 1-15 and 17-31 and the D-channel (`e1-d`) on 16; \
                             this one has {} port(s){}",
                            kinds.len(),
                            match kinds.iter().position(|&k| k == ChannelKind::E1Signalling) {
                                Some(p) => format!(" with `e1-d` at position {}", p + 1),
                                None => " and no `e1-d`".into(),
                            }
                        ),
                    ));
                }
            }
            SpanKind::Sound if span.port_count() != 1 => {
                errors.push(at(ports_span.clone(), key, "a sound device is one port".into()));
            }
            _ => {}
        }
        spans.push(span);
    }
    if next_port - 1 > u32::from(u16::MAX) {
        errors.push(at(
            spans_span,
            "span".into(),
            format!("{} ports are more than a card may have", next_port - 1),
        ));
    }

    let detect = Detect { device: raw.detect.device, span: raw.detect.span, alsa: raw.detect.alsa };
    match raw.driver {
        Driver::Dahdi if detect.device.is_empty() && detect.span.is_empty() => errors.push(at(
            None,
            "detect".into(),
            "a DAHDI board needs `detect.device` or `detect.span` patterns so that `hw list` can recognise it".into(),
        )),
        Driver::Alsa if detect.alsa.is_empty() => errors.push(at(
            None,
            "detect.alsa".into(),
            "an ALSA board needs `detect.alsa` patterns so that `hw list` can recognise it".into(),
        )),
        _ => {}
    }
    if detect.device.iter().chain(&detect.span).chain(&detect.alsa).any(|p| p.trim().is_empty()) {
        errors.push(at(None, "detect".into(), "detection patterns must not be empty".into()));
    }

    let has_e1 = spans.iter().any(|s| s.kind == SpanKind::E1);
    let d = raw.defaults;
    let tone_zone = match d.tone_zone {
        Some(z) if *z.get_ref() == ToneZoneName::Custom => {
            errors.push(at(
                span_of(z.span()),
                "defaults.tone_zone".into(),
                "a board cannot default to custom tones: use china, north-america or europe".into(),
            ));
            ToneZoneName::China
        }
        Some(z) => *z.get_ref(),
        None => ToneZoneName::China,
    };
    let e1 = if has_e1 {
        Some(E1Line {
            framing: d.e1_framing.as_ref().map_or(E1Framing::Ccs, |f| *f.get_ref()),
            coding: d.e1_coding.unwrap_or(E1Coding::Hdb3),
            crc4: d.e1_crc4.unwrap_or(true),
        })
    } else {
        if d.e1_framing.is_some() || d.e1_coding.is_some() || d.e1_crc4.is_some() {
            errors.push(at(
                d.e1_framing.as_ref().and_then(|f| span_of(f.span())),
                "defaults".into(),
                "E1 line defaults on a board without E1 spans".into(),
            ));
        }
        None
    };
    let law = match d.law {
        RawLaw::Alaw => Law::Alaw,
        RawLaw::Ulaw => Law::Ulaw,
    };
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Board {
        file: file.to_string(),
        model,
        driver: raw.driver,
        detect,
        spans,
        defaults: Defaults { law, tone_zone, e1 },
    })
}

fn span_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Analog => "analog",
        SpanKind::E1 => "E1",
        SpanKind::Sound => "sound",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"model = "Test card"
driver = "dahdi"

[detect]
device = ["TEST"]

[[span]]
kind = "analog"
ports = [
  { first = 1, count = 2, kind = "fxs" },
  { first = 3, count = 2, kind = "fxo" },
]
"#;

    #[test]
    fn a_good_board_parses_and_gives_dahdi_channels() {
        let b = Board::parse(GOOD, "t.toml").unwrap();
        assert_eq!(b.port_count(), 4);
        assert_eq!(b.defaults.law, Law::Alaw);
        assert_eq!(b.defaults.e1, None);
        let ch = b.dahdi_channels(&[125]).unwrap();
        assert_eq!(
            ch.iter().map(|c| (c.channo, c.kind)).collect::<Vec<_>>(),
            [
                (125, ChannelKind::FxsSeat),
                (126, ChannelKind::FxsSeat),
                (127, ChannelKind::FxoTrunk),
                (128, ChannelKind::FxoTrunk)
            ]
        );
        assert!(b.dahdi_channels(&[1, 2]).is_err());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = GOOD
            .replace("{ first = 3, count = 2, kind = \"fxo\" }", "{ first = 4, count = 2, kind = \"e1-b\" }");
        let e = Board::parse(&bad, "t.toml").unwrap_err().to_string();
        assert!(
            e.contains("t.toml:11:")
                && e.contains("key `span[0].ports[1].first`")
                && e.contains("expected first = 3"),
            "{e}"
        );
        assert!(
            e.contains("key `span[0].ports[1].kind`")
                && e.contains("`e1-b` ports cannot be on a analog span"),
            "{e}"
        );

        let e = Board::parse(&GOOD.replace("kind = \"fxo\"", "kind = \"fxq\""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.toml:11:") && e.contains("span[0].ports[1].kind") && e.contains("unknown variant"),
            "{e}"
        );

        let e = Board::parse(&GOOD.replace("driver = \"dahdi\"", "driver = \"dahdi\"\ncolour = 1"), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:3:") && e.contains("unknown field `colour`"), "{e}");

        let e = Board::parse(&GOOD.replace("[detect]\ndevice = [\"TEST\"]\n", ""), "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `detect`"), "{e}");
    }

    #[test]
    fn e1_spans_need_the_standard_layout() {
        let text = r#"model = "E1"
driver = "dahdi"
detect.device = ["X"]
[[span]]
kind = "e1"
ports = [ { first = 1, count = 31, kind = "e1-b" } ]
"#;
        let e = Board::parse(text, "e.toml").unwrap_err().to_string();
        assert!(e.contains("e.toml:6:") && e.contains("no `e1-d`"), "{e}");
    }

    #[test]
    fn drafts_read_back() {
        let b = Board::parse(GOOD, "t.toml").unwrap();
        let text = b.to_toml("Draft\nsecond line", &[(3, "not configured".into())]);
        assert!(text.starts_with("# Draft\n# second line\n"), "{text}");
        assert!(text.contains("kind = \"fxo\" },  # not configured"), "{text}");
        let back = Board::parse(&text, "draft").unwrap();
        assert_eq!(Board { file: "t.toml".into(), ..back }, b);
    }

    #[test]
    fn ranges_merge_runs() {
        use ChannelKind::*;
        let r = ranges(5, &[FxsSeat, FxsSeat, FxoTrunk, FxsSeat]);
        assert_eq!(
            r.iter().map(|r| (r.first, r.count, r.kind)).collect::<Vec<_>>(),
            [(5, 2, FxsSeat), (7, 1, FxoTrunk), (8, 1, FxsSeat)]
        );
    }
}
