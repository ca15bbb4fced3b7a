//! Configuration: one TOML file, parsed into typed settings and validated.
//!
//! Every error names the file, the line and the key, because the people who read these
//! messages are installers editing a file on an appliance, not developers. The default
//! configuration (the simulated board) is built into the binary, so `switchboard run` works
//! with no file at all.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use switchboard_driver_api::{
    CardInfo, ChannelId, ChannelInfo, ChannelKind, Law, Pacing, SpanInfo, SpanKind,
};
use switchboard_driver_sim::SimConfig;
use toml::Spanned;

use crate::calls::{CallSettings, Route, RouteFlows, Strategy};
use crate::dsp::tone::{ToneSpec, ToneZone};

/// The configuration used when no file is given: the simulated card.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The name the built-in configuration is reported under in errors.
pub const DEFAULT_CONFIG_NAME: &str = "<built-in default config>";

/// One problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The dotted key the problem is about, e.g. `route[0].seats`; empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

/// All the problems found in a configuration file (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    card: RawCard,
    #[serde(default)]
    sim: RawSim,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    calls: RawCalls,
    #[serde(default)]
    line: RawLine,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    queue: Vec<RawQueue>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    agent: RawAgent,
    #[serde(default)]
    ivr: RawIvr,
    #[serde(default)]
    webservice: Vec<Spanned<crate::webservice::ServiceConfig>>,
    /// The tone plan when `engine.tone_zone = "custom"`.
    tones: Option<Spanned<RawTones>>,
    /// Sound devices (headsets on the appliance), numbered after the card's ports.
    #[serde(default)]
    sound: Vec<Spanned<RawSound>>,
    /// E1 spans' settings.
    #[serde(default)]
    e1: Vec<RawE1>,
    /// The DAHDI card, when `card.driver = "dahdi"`.
    dahdi: Option<Spanned<RawDahdi>>,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    shell: RawShell,
    /// Serial ports the maintenance shell runs on.
    #[serde(default)]
    serial: Vec<Spanned<RawSerial>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDaemon {
    drain_seconds: Spanned<u64>,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon { drain_seconds: Spanned::new(0..0, 30) }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawShell {
    idle_minutes: Spanned<u64>,
    max_failures: Spanned<u32>,
    lockout_seconds: Spanned<u64>,
    page_lines: usize,
    hostname: Option<String>,
}

impl Default for RawShell {
    fn default() -> Self {
        RawShell {
            idle_minutes: Spanned::new(0..0, 10),
            max_failures: Spanned::new(0..0, 3),
            lockout_seconds: Spanned::new(0..0, 60),
            page_lines: 22,
            hostname: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSerial {
    device: String,
    #[serde(default = "default_speed")]
    speed: Spanned<u32>,
    #[serde(default = "default_parity")]
    parity: Spanned<String>,
    #[serde(default = "default_data_bits")]
    data_bits: Spanned<u8>,
    #[serde(default = "default_stop_bits")]
    stop_bits: Spanned<u8>,
}

fn default_speed() -> Spanned<u32> {
    Spanned::new(0..0, 115_200)
}

fn default_parity() -> Spanned<String> {
    Spanned::new(0..0, "none".into())
}

fn default_data_bits() -> Spanned<u8> {
    Spanned::new(0..0, 8)
}

fn default_stop_bits() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}

/// Parity of a serial line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// A serial port the maintenance shell answers on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialConfig {
    /// The device, e.g. `/dev/ttyS0` or a `/dev/serial/by-id/...` link (followed at every
    /// open, so an adapter plugged back in on another ttyUSB is found again).
    pub device: PathBuf,
    pub speed: u32,
    pub parity: Parity,
    pub data_bits: u8,
    pub stop_bits: u8,
}

/// Settings of the maintenance shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellConfig {
    /// A logged-in session with no input for this long is logged out.
    pub idle: Duration,
    /// Wrong logins in a row before the port locks.
    pub max_failures: u32,
    /// How long the first lockout lasts (each further one doubles, up to 15 minutes).
    pub lockout: Duration,
    /// Lines per page on serial ports (0: no paging).
    pub page_lines: usize,
    /// The name in the prompt (default: the machine's host name).
    pub hostname: Option<String>,
    pub serial: Vec<SerialConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDahdi {
    /// A board file: the name of one shipped with Switchboard (`digium-te420`) or a path.
    board: Spanned<String>,
    /// The DAHDI channel number of each span's first port (`switchboard hw list` shows them);
    /// by default the spans follow each other from channel 1.
    #[serde(default)]
    first_channels: Option<Spanned<Vec<u32>>>,
    /// The generic channel device (for tests and unusual systems).
    #[serde(default)]
    channel_device: Option<String>,
}

/// A DAHDI card as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DahdiConfig {
    pub board: crate::board::Board,
    /// The DAHDI channel number of each span's first port.
    pub first_channels: Vec<u32>,
    pub channel_device: std::path::PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSound {
    #[serde(default)]
    name: String,
    /// One ALSA PCM name for both directions.
    device: Option<String>,
    capture: Option<String>,
    playback: Option<String>,
    #[serde(default)]
    role: SoundRole,
}

/// What a sound device is used as.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SoundRole {
    /// A headset seat (an agent's seat of kind 2, answered from the desktop).
    #[default]
    Seat,
    /// A line: a trunk-like port for outgoing calls only (it has no ringing).
    Line,
}

/// A sound device as configured in `[[sound]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoundPort {
    pub name: String,
    /// ALSA PCM names, e.g. `plughw:CARD=Headset`.
    pub capture: String,
    pub playback: String,
    pub role: SoundRole,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTones {
    dial: RawTone,
    ringback: RawTone,
    busy: RawTone,
    congestion: RawTone,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawTone {
    /// One or two frequencies in Hz.
    freqs: RawFreqs,
    /// On and off times in milliseconds; absent for a continuous tone.
    #[serde(default)]
    cadence_ms: Option<[u32; 2]>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(untagged)]
enum RawFreqs {
    One([f32; 1]),
    Two([f32; 2]),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    driver: Spanned<String>,
    #[serde(default)]
    law: LawName,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum LawName {
    #[default]
    Alaw,
    Ulaw,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSim {
    trunk_ports: u16,
    seat_ports: u16,
    e1_spans: u16,
    pacing: PacingName,
    ring_cadence_ms: [u32; 2],
    seat_answer_delay_ms: u32,
    disconnect: DisconnectName,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum DisconnectName {
    LoopDrop,
    BusyTone,
}

impl Default for RawSim {
    fn default() -> Self {
        RawSim {
            trunk_ports: 4,
            seat_ports: 8,
            e1_spans: 0,
            pacing: PacingName::Realtime,
            ring_cadence_ms: [1000, 4000],
            seat_answer_delay_ms: 1500,
            disconnect: DisconnectName::LoopDrop,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum PacingName {
    Realtime,
    FreeRunning,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEngine {
    realtime_priority: Spanned<i64>,
    echo_canceller: bool,
    /// Ports whose echo canceller is on even when `echo_canceller` is off.
    echo_canceller_ports: Spanned<Vec<u16>>,
    tone_zone: Spanned<ToneZoneName>,
}

impl Default for RawEngine {
    fn default() -> Self {
        RawEngine {
            realtime_priority: Spanned::new(0..0, 50),
            echo_canceller: false,
            echo_canceller_ports: Spanned::new(0..0, Vec::new()),
            tone_zone: Spanned::new(0..0, ToneZoneName::China),
        }
    }
}

/// The call-progress tone plan of the country the appliance is installed in.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ToneZoneName {
    #[default]
    China,
    NorthAmerica,
    Europe,
    /// The tones defined in the `[tones]` table.
    Custom,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCalls {
    record: bool,
    seat_ring_timeout_s: Spanned<u64>,
    trunk_ring_gap_s: Spanned<u64>,
    tone_disconnect: bool,
}

impl Default for RawCalls {
    fn default() -> Self {
        RawCalls {
            record: true,
            seat_ring_timeout_s: Spanned::new(0..0, 20),
            trunk_ring_gap_s: Spanned::new(0..0, 6),
            tone_disconnect: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLine {
    trunk_caller_id: crate::line::CallerIdMode,
    caller_id_standard: CallerIdStandardName,
    seat_caller_id: bool,
    hook_flash_ms: Spanned<u64>,
}

impl Default for RawLine {
    fn default() -> Self {
        RawLine {
            trunk_caller_id: crate::line::CallerIdMode::Dtmf,
            caller_id_standard: CallerIdStandardName::Ydt1277,
            seat_caller_id: false,
            hook_flash_ms: Spanned::new(0..0, 250),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum CallerIdStandardName {
    Bellcore,
    Etsi,
    Ydt1277,
}

/// Settings of the analog lines (`[line]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineConfig {
    /// The line machines' settings: how trunks get caller id, whether seat phones get it,
    /// the hook flash we send on trunks.
    pub settings: crate::line::LineSettings,
    /// The FSK caller id standard: the modulation and preamble of what seat phones get, and
    /// how received messages are read. Trunks decode both modulations whatever it is.
    pub standard: crate::dsp::callerid::Standard,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    #[serde(default = "no_ports")]
    trunks: Spanned<Vec<Spanned<u16>>>,
    /// E1 spans (1-based, among the card's E1 spans) whose bearer channels are trunks of
    /// this route, so that thirty ports need not be listed.
    #[serde(default)]
    e1_spans: Vec<Spanned<u16>>,
    /// Fixed seats, or...
    #[serde(default)]
    seats: Option<Spanned<Vec<Spanned<u16>>>>,
    /// ...a queue of agents, or...
    #[serde(default)]
    queue: Option<Spanned<String>>,
    /// ...an IVR flow (`*`: the flow whose `[select]` matches).
    #[serde(default)]
    flow: Option<Spanned<String>>,
    /// The called number of these trunks, for flow selection (default: the route's name).
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    strategy: Strategy,
}

fn no_ports() -> Spanned<Vec<Spanned<u16>>> {
    Spanned::new(0..0, Vec::new())
}

/// An E1 span's line and signalling settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawE1 {
    /// Which E1 span, counted from 1 among the card's E1 spans.
    span: Spanned<u16>,
    #[serde(default)]
    signalling: E1Signalling,
    #[serde(default = "ccs")]
    framing: Spanned<String>,
    #[serde(default)]
    line_code: LineCode,
    #[serde(default = "yes")]
    crc4: bool,
    /// Timing source priority: 1 takes the clock from this span first, 0 never.
    #[serde(default = "one")]
    timing: Spanned<u8>,
}

fn ccs() -> Spanned<String> {
    Spanned::new(0..0, "ccs".into())
}

fn yes() -> bool {
    true
}

fn one() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}

/// How an E1 span signals calls.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum E1Signalling {
    /// ISDN PRI, we are the user side (connected to the exchange): the usual case.
    #[default]
    PriCpe,
    /// ISDN PRI, we are the network side (a PBX or a test set is connected to us).
    PriNet,
}

/// An E1 line code.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LineCode {
    #[default]
    Hdb3,
    Ami,
}

/// The settings of one E1 span (`[[e1]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct E1Config {
    /// The span's index on the card (0-based, all spans counted).
    pub card_span: u16,
    /// The span's number among the E1 spans, from 1, as the configuration names it.
    pub number: u16,
    pub signalling: E1Signalling,
    pub line_code: LineCode,
    pub crc4: bool,
    pub timing: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIvr {
    flows: String,
    prompts: String,
    lang: Spanned<String>,
    utc_offset: Spanned<String>,
    tts: Spanned<String>,
    retention_days: u32,
}

impl Default for RawIvr {
    fn default() -> Self {
        RawIvr {
            flows: "flows".into(),
            prompts: "flows/prompts".into(),
            lang: Spanned::new(0..0, "en".into()),
            utc_offset: Spanned::new(0..0, "+00:00".into()),
            tts: Spanned::new(0..0, "espeak-ng".into()),
            retention_days: 0,
        }
    }
}

/// Settings of the IVR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvrConfig {
    /// The directory of flow files. Relative paths in a configuration file are taken from
    /// the file's directory; in the built-in configuration, from the working directory.
    pub flows: std::path::PathBuf,
    /// Where relative prompt file names in flows are looked up.
    pub prompts: std::path::PathBuf,
    pub lang: crate::ivr::Lang,
    /// Local time for schedules, as an offset from UTC (appliances often keep UTC).
    pub utc_offset: time::UtcOffset,
    /// The TTS engine: `espeak-ng`, or `none` (flows that speak text are then refused).
    pub tts: Option<String>,
    /// Recordings older than this many days are deleted (0: kept).
    pub retention_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<String>,
    #[serde(default)]
    strategy: crate::acd::QueueStrategy,
    /// `AGENT` or `AGENT:LEVEL` (skill level 1-9, default 5).
    members: Spanned<Vec<String>>,
    #[serde(default)]
    overflow_after_s: Option<u64>,
    #[serde(default)]
    overflow_max_waiting: Option<usize>,
    #[serde(default)]
    overflow_to: Option<Spanned<String>>,
    /// The flow callers enter when the agent hangs up first (a satisfaction survey).
    #[serde(default)]
    survey: Option<String>,
    /// Waiting callers hear their position this often (seconds; 0 or absent: never).
    #[serde(default)]
    announce_every_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAgent {
    listen: Spanned<String>,
    wrap_up_s: u64,
    ring_seats_without_agent: bool,
    pause_on_no_answer: bool,
    integration_keys: Spanned<Vec<String>>,
    login_timeout_s: u64,
    max_sessions: Spanned<usize>,
}

impl Default for RawAgent {
    fn default() -> Self {
        RawAgent {
            listen: Spanned::new(0..0, "0.0.0.0:7070".into()),
            wrap_up_s: 10,
            ring_seats_without_agent: true,
            pause_on_no_answer: true,
            integration_keys: Spanned::new(0..0, Vec::new()),
            login_timeout_s: 30,
            max_sessions: Spanned::new(0..0, 1000),
        }
    }
}

/// Settings of the agent control protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    pub listen: std::net::SocketAddr,
    pub wrap_up: Duration,
    pub ring_seats_without_agent: bool,
    pub pause_on_no_answer: bool,
    pub integration_keys: Vec<String>,
    pub login_timeout: Duration,
    pub max_sessions: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    level: Spanned<String>,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { level: Spanned::new(0..0, "info".to_string()) }
    }
}

/// Which card backend to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Driver {
    Sim(SimConfig),
    /// A DAHDI card described by a board file.
    Dahdi(DahdiConfig),
    /// No telephony card: only the `[[sound]]` devices, the first of which is the clock.
    Alsa,
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub driver: Driver,
    pub law: Law,
    /// How long simulated seat phones ring before they answer by themselves (None: never).
    pub sim_seat_answer_delay: Option<Duration>,
    /// How the simulated exchange signals that the far end hung up.
    pub sim_disconnect: crate::sim::Disconnect,
    pub realtime_priority: i32,
    pub echo_canceller: bool,
    /// Ports with the echo canceller on regardless of `echo_canceller`.
    pub echo_canceller_ports: Vec<u16>,
    pub tone_zone: ToneZone,
    pub calls: CallSettings,
    /// The ACD queues; `calls.routes` ends with one route per queue, in this order.
    pub queues: Vec<crate::acd::QueueConfig>,
    pub log_level: String,
    pub agent: AgentConfig,
    pub ivr: IvrConfig,
    pub webservices: Vec<crate::webservice::ServiceConfig>,
    /// Sound devices, numbered after the card's ports in this order.
    pub sound: Vec<SoundPort>,
    /// The analog lines' signalling: caller id on trunks and to seat phones, hook flash.
    pub line: LineConfig,
    /// The E1 spans that run ISDN PRI, with their line settings.
    pub e1: Vec<E1Config>,
    /// On SIGTERM, how long calls in progress may go on before the daemon stops anyway.
    pub drain: Duration,
    pub shell: ShellConfig,
}

/// The parts of a configuration that a running daemon takes only at its next start, named
/// as the file names them, that differ between `old` and `new`. The rest (`[log]`,
/// `[daemon]`, `[shell]` but its serial ports, `[ivr]` and the flows, `[[webservice]]`) a
/// reload applies at once.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            changed.push(name);
        }
    };
    check("[card]", old.driver == new.driver && old.law == new.law);
    check(
        "[sim]",
        old.sim_seat_answer_delay == new.sim_seat_answer_delay && old.sim_disconnect == new.sim_disconnect,
    );
    check(
        "[engine]",
        old.realtime_priority == new.realtime_priority
            && old.echo_canceller == new.echo_canceller
            && old.echo_canceller_ports == new.echo_canceller_ports
            && old.tone_zone == new.tone_zone,
    );
    check("[calls] and [[route]]", old.calls == new.calls);
    check("[[queue]]", old.queues == new.queues);
    check("[agent]", old.agent == new.agent);
    check("[line]", old.line == new.line);
    check("[[sound]]", old.sound == new.sound);
    check("[[e1]]", old.e1 == new.e1);
    check("[[serial]]", old.shell.serial == new.shell.serial);
    changed
}

impl Config {
    /// The built-in default configuration.
    pub fn builtin() -> Result<Config, ConfigErrors> {
        Config::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME)
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
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
        let mut config = Config::parse(&text, &name)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut config.ivr.flows, &mut config.ivr.prompts] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
        let at = |span: Option<Range<usize>>, key: String, message: String| {
            let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigError { file: file.to_string(), line, column, key, message }
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigErrors(vec![at(e.span(), String::new(), e.message().to_string())]))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let key = if key == "." { String::new() } else { key };
            ConfigErrors(vec![at(inner.span(), key, inner.message().to_string())])
        })?;
        validate(raw, &at, file)
    }

    /// The shape of the simulated card, when the configuration uses it.
    pub fn sim(&self) -> Option<&SimConfig> {
        match &self.driver {
            Driver::Sim(sim) => Some(sim),
            Driver::Dahdi(_) | Driver::Alsa => None,
        }
    }

    /// The channels the configured cards will have, numbered as the daemon numbers them
    /// (the card's ports first, then the sound devices), known without opening any hardware.
    pub fn card_info(&self) -> CardInfo {
        let base = match &self.driver {
            Driver::Sim(sim) => switchboard_driver_sim::describe(sim),
            Driver::Dahdi(dahdi) => describe_board(&dahdi.board, self.law),
            Driver::Alsa => CardInfo { name: String::new(), spans: Vec::new(), channels: Vec::new() },
        };
        with_sound(base, &self.sound, self.law)
    }
}

/// The channels of a card described by a board file, numbered as the DAHDI backend numbers
/// them: the board's ports in order, spans in order.
pub fn describe_board(board: &crate::board::Board, law: Law) -> CardInfo {
    let mut info = CardInfo { name: board.model.clone(), spans: Vec::new(), channels: Vec::new() };
    for (s, span) in board.spans.iter().enumerate() {
        let index = s as u16;
        info.spans.push(SpanInfo { index, kind: span.kind, name: format!("{} span {}", board.model, s + 1) });
        for (p, kind) in span.port_kinds().into_iter().enumerate() {
            let id = ChannelId(info.channels.len() as u16);
            info.channels.push(ChannelInfo { id, kind, span: index, position: p as u16 + 1, law });
        }
    }
    info
}

/// Finds a board file: one shipped with Switchboard by name, or a file by path (relative to
/// the configuration file's directory).
fn find_board(name: &str, config_file: &str) -> Result<crate::board::Board, String> {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    if !name.contains('/') {
        if let Some((file, text)) =
            crate::board::BUILTIN.iter().find(|(f, _)| f.strip_suffix(".toml") == Some(stem))
        {
            return crate::board::Board::parse(text, &format!("board/{file}")).map_err(|e| e.to_string());
        }
    }
    let path = Path::new(name);
    let path = if path.is_relative() {
        Path::new(config_file).parent().unwrap_or(Path::new(".")).join(path)
    } else {
        path.to_path_buf()
    };
    if !path.exists() {
        let names: Vec<&str> =
            crate::board::BUILTIN.iter().filter_map(|(f, _)| f.strip_suffix(".toml")).collect();
        return Err(format!(
            "no board {name:?}: use one of {} or the path of a board file",
            names.join(", ")
        ));
    }
    crate::board::Board::load(&path).map_err(|e| e.to_string())
}

/// Appends the sound devices to a card's channels: one span and one channel each, the way
/// the ALSA backend numbers them and `CompositeCard` combines them.
fn with_sound(mut info: CardInfo, sound: &[SoundPort], law: Law) -> CardInfo {
    for s in sound {
        let (Ok(id), Ok(span)) = (u16::try_from(info.channels.len()), u16::try_from(info.spans.len())) else {
            break;
        };
        info.spans.push(SpanInfo { index: span, kind: SpanKind::Sound, name: s.name.clone() });
        let kind = match s.role {
            SoundRole::Seat => ChannelKind::Sound,
            SoundRole::Line => ChannelKind::FxoTrunk,
        };
        info.channels.push(ChannelInfo { id: ChannelId(id), kind, span, position: 1, law });
    }
    if info.name.is_empty() {
        info.name = "sound devices".into();
    }
    info
}

/// The 1-based line and column of a byte offset, for error messages.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

fn validate(
    raw: RawConfig,
    at: &dyn Fn(Option<Range<usize>>, String, String) -> ConfigError,
    file_name: &str,
) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let span_of = |r: Range<usize>| if r.is_empty() { None } else { Some(r) };

    let driver_name = raw.card.driver.get_ref().as_str();
    if !["sim", "dahdi", "alsa"].contains(&driver_name) {
        errors.push(at(
            Some(raw.card.driver.span()),
            "card.driver".into(),
            format!("unknown driver `{driver_name}`: use `sim`, `dahdi` or `alsa`"),
        ));
    }
    let mut dahdi = None;
    match (&raw.dahdi, driver_name == "dahdi") {
        (None, true) => errors.push(at(
            Some(raw.card.driver.span()),
            "dahdi".into(),
            "driver `dahdi` needs a [dahdi] section naming the board (`board = \"digium-te420\"`)".into(),
        )),
        (Some(d), false) => errors.push(at(
            span_of(d.span()),
            "dahdi".into(),
            format!("a [dahdi] section is only used with `card.driver = \"dahdi\"` (it is `{driver_name}`)"),
        )),
        (None, false) => {}
        (Some(d), true) => {
            let d = d.get_ref();
            match find_board(d.board.get_ref(), file_name) {
                Err(message) => errors.push(at(span_of(d.board.span()), "dahdi.board".into(), message)),
                Ok(board) if board.driver != crate::board::Driver::Dahdi => errors.push(at(
                    span_of(d.board.span()),
                    "dahdi.board".into(),
                    format!("{} is a `{}` board, not a DAHDI one", board.model, board.driver.name()),
                )),
                Ok(board) => {
                    let first_channels = match &d.first_channels {
                        Some(list) => {
                            if list.get_ref().len() != board.spans.len() || list.get_ref().contains(&0) {
                                errors.push(at(
                                    span_of(list.span()),
                                    "dahdi.first_channels".into(),
                                    format!(
                                        "{} has {} span(s): give one DAHDI channel number (from 1) for each",
                                        board.model,
                                        board.spans.len()
                                    ),
                                ));
                            }
                            list.get_ref().clone()
                        }
                        None => {
                            let mut next = 1u32;
                            board
                                .spans
                                .iter()
                                .map(|s| {
                                    let first = next;
                                    next += s.port_count() as u32;
                                    first
                                })
                                .collect()
                        }
                    };
                    dahdi = Some(DahdiConfig {
                        board,
                        first_channels,
                        channel_device: d
                            .channel_device
                            .clone()
                            .unwrap_or_else(|| "/dev/dahdi/channel".into())
                            .into(),
                    });
                }
            }
        }
    }
    let mut sound = Vec::new();
    for (i, entry) in raw.sound.iter().enumerate() {
        let s = entry.get_ref();
        let key = format!("sound[{i}]");
        let (capture, playback) = match (&s.device, &s.capture, &s.playback) {
            (Some(d), None, None) => (d.clone(), d.clone()),
            (None, Some(c), Some(p)) => (c.clone(), p.clone()),
            _ => {
                errors.push(at(
                    span_of(entry.span()),
                    key.clone(),
                    "give either `device` (both directions) or both `capture` and `playback`".into(),
                ));
                continue;
            }
        };
        if capture.trim().is_empty() || playback.trim().is_empty() {
            errors.push(at(span_of(entry.span()), key.clone(), "the ALSA device name is empty".into()));
            continue;
        }
        let name = if s.name.is_empty() { capture.clone() } else { s.name.clone() };
        if sound.iter().any(|o: &SoundPort| o.capture == capture || o.playback == playback) {
            errors.push(at(span_of(entry.span()), key, format!("device {capture:?} is configured twice")));
            continue;
        }
        sound.push(SoundPort { name, capture, playback, role: s.role });
    }
    if driver_name == "alsa" && sound.is_empty() {
        errors.push(at(
            Some(raw.card.driver.span()),
            "card.driver".into(),
            "driver `alsa` needs at least one [[sound]] device".into(),
        ));
    }
    let law = match raw.card.law {
        LawName::Alaw => Law::Alaw,
        LawName::Ulaw => Law::Ulaw,
    };
    let sim = SimConfig {
        trunk_ports: raw.sim.trunk_ports,
        seat_ports: raw.sim.seat_ports,
        e1_spans: raw.sim.e1_spans,
        law,
        pacing: match raw.sim.pacing {
            PacingName::Realtime => Pacing::RealTime,
            PacingName::FreeRunning => Pacing::FreeRunning,
        },
        ring_cadence_ms: (raw.sim.ring_cadence_ms[0], raw.sim.ring_cadence_ms[1]),
    };
    let total = u32::from(sim.trunk_ports) + u32::from(sim.seat_ports) + 31 * u32::from(sim.e1_spans);
    if total > 2048 {
        errors.push(at(
            None,
            "sim".into(),
            format!("{total} channels is more than the 2048 a card may have"),
        ));
    }
    if sim.ring_cadence_ms.0 < 200 || sim.ring_cadence_ms.1 < 200 {
        errors.push(at(
            None,
            "sim.ring_cadence_ms".into(),
            "ring on and off times must be at least 200 ms each".into(),
        ));
    }
    let card = match (&dahdi, driver_name) {
        (_, "alsa") => CardInfo { name: String::new(), spans: Vec::new(), channels: Vec::new() },
        (Some(d), _) => describe_board(&d.board, law),
        _ => switchboard_driver_sim::describe(&sim),
    };
    let card = with_sound(card, &sound, law);

    let priority = *raw.engine.realtime_priority.get_ref();
    if !(0..=99).contains(&priority) {
        errors.push(at(
            span_of(raw.engine.realtime_priority.span()),
            "engine.realtime_priority".into(),
            format!("{priority} is out of range: use 1-99 for SCHED_FIFO, or 0 for normal scheduling"),
        ));
    }
    for &port in raw.engine.echo_canceller_ports.get_ref() {
        match card.channel_of_port(port) {
            Some(ch) if ch.kind.carries_audio() => {}
            Some(_) => errors.push(at(
                span_of(raw.engine.echo_canceller_ports.span()),
                "engine.echo_canceller_ports".into(),
                format!("port {port} carries no audio"),
            )),
            None => errors.push(at(
                span_of(raw.engine.echo_canceller_ports.span()),
                "engine.echo_canceller_ports".into(),
                format!("port {port} does not exist (the card has ports 1-{})", card.channels.len()),
            )),
        }
    }
    let seat_ring_timeout = *raw.calls.seat_ring_timeout_s.get_ref();
    if !(1..=3600).contains(&seat_ring_timeout) {
        errors.push(at(
            span_of(raw.calls.seat_ring_timeout_s.span()),
            "calls.seat_ring_timeout_s".into(),
            format!("{seat_ring_timeout} is out of range: use 1-3600 seconds"),
        ));
    }
    let ring_gap = *raw.calls.trunk_ring_gap_s.get_ref();
    // The gap must outlast the silence between two rings, or every call would look
    // abandoned between ring bursts.
    let min_gap_ms = u64::from(sim.ring_cadence_ms.1) + 500;
    if !(1..=60).contains(&ring_gap) {
        errors.push(at(
            span_of(raw.calls.trunk_ring_gap_s.span()),
            "calls.trunk_ring_gap_s".into(),
            format!("{ring_gap} is out of range: use 1-60 seconds"),
        ));
    } else if ring_gap * 1000 < min_gap_ms {
        errors.push(at(
            span_of(raw.calls.trunk_ring_gap_s.span()),
            "calls.trunk_ring_gap_s".into(),
            format!(
                "{ring_gap} s is shorter than the {} ms between rings (sim.ring_cadence_ms) plus a margin",
                sim.ring_cadence_ms.1
            ),
        ));
    }

    let mut routes = Vec::new();
    let mut claimed: Vec<(u16, usize)> = Vec::new();
    for (i, r) in raw.route.iter().enumerate() {
        let mut check_ports = |list: &Spanned<Vec<Spanned<u16>>>, field: &str, want: &[ChannelKind]| {
            let key = format!("route[{i}].{field}");
            // A route of seats without trunks is one that only flows send calls to.
            if list.get_ref().is_empty()
                && !(field == "trunks" && (r.seats.is_some() || !r.e1_spans.is_empty()))
            {
                errors.push(at(span_of(list.span()), key.clone(), "lists no ports".into()));
            }
            for p in list.get_ref() {
                let port = *p.get_ref();
                match card.channel_of_port(port) {
                    None => errors.push(at(
                        span_of(p.span()),
                        key.clone(),
                        format!("port {port} does not exist (the card has ports 1-{})", card.channels.len()),
                    )),
                    Some(ch) if !want.contains(&ch.kind) => errors.push(at(
                        span_of(p.span()),
                        key.clone(),
                        format!("port {port} is a {} port, not a {} port", ch.kind.name(), want[0].name()),
                    )),
                    Some(_) => {}
                }
            }
            list.get_ref().iter().map(|p| *p.get_ref()).collect::<Vec<u16>>()
        };
        let mut trunks = check_ports(&r.trunks, "trunks", &[ChannelKind::FxoTrunk, ChannelKind::E1Bearer]);
        let seats = match (&r.seats, &r.queue, &r.flow) {
            (Some(seats), None, None) => {
                check_ports(seats, "seats", &[ChannelKind::FxsSeat, ChannelKind::Sound])
            }
            (None, None, Some(_)) => Vec::new(),
            (None, Some(queue), None) => {
                if !raw.queue.iter().any(|q| q.name.get_ref() == queue.get_ref()) {
                    errors.push(at(
                        span_of(queue.span()),
                        format!("route[{i}].queue"),
                        format!("no [[queue]] is named {:?}", queue.get_ref()),
                    ));
                }
                Vec::new()
            }
            _ => {
                errors.push(at(
                    span_of(r.trunks.span()),
                    format!("route[{i}]"),
                    "a route has one of `seats`, `queue` or `flow`".into(),
                ));
                Vec::new()
            }
        };
        for n in &r.e1_spans {
            match e1_span_index(&card, *n.get_ref()) {
                Some(span) => trunks.extend(
                    card.channels
                        .iter()
                        .filter(|c| c.span == span && c.kind == ChannelKind::E1Bearer)
                        .map(|c| c.id.port()),
                ),
                None => errors.push(at(
                    span_of(n.span()),
                    format!("route[{i}].e1_spans"),
                    format!("the card has no E1 span {}", n.get_ref()),
                )),
            }
        }
        for (port, span) in trunks.iter().zip(r.trunks.get_ref()) {
            if let Some((_, other)) = claimed.iter().find(|(p, _)| p == port) {
                errors.push(at(
                    span_of(span.span()),
                    format!("route[{i}].trunks"),
                    format!("trunk port {port} is already routed by route[{other}]"),
                ));
            } else {
                claimed.push((*port, i));
            }
        }
        if r.queue.is_none() {
            routes.push(Route {
                name: r.name.clone(),
                trunks,
                seats,
                strategy: r.strategy,
                overflow: None,
                max_waiting: None,
                flows: RouteFlows {
                    entry: r.flow.as_ref().map(|f| f.get_ref().clone()),
                    number: r.number.clone().unwrap_or_else(|| r.name.clone()),
                    ..RouteFlows::default()
                },
            });
        }
    }
    // One route per queue, after the fixed ones: its trunks are those of the routes naming
    // it, its seats are set by the ACD before each decision.
    let mut queues = Vec::new();
    for (qi, q) in raw.queue.iter().enumerate() {
        let key = |f: &str| format!("queue[{qi}].{f}");
        let name = q.name.get_ref().clone();
        if raw.queue[..qi].iter().any(|o| o.name.get_ref() == &name) {
            errors.push(at(span_of(q.name.span()), key("name"), format!("queue {name:?} is defined twice")));
        }
        let mut members = Vec::new();
        for m in q.members.get_ref() {
            let (agent, level) = match m.split_once(':') {
                Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| (1..=9).contains(l))),
                None => (m.as_str(), Some(5)),
            };
            match level {
                Some(level) if crate::accounts::valid_agent_id(agent).is_ok() => {
                    members.push((agent.to_string(), level))
                }
                _ => errors.push(at(
                    span_of(q.members.span()),
                    key("members"),
                    format!("{m:?} is not AGENT or AGENT:LEVEL with a level of 1-9"),
                )),
            }
        }
        if let Some(n) = q.overflow_max_waiting {
            if q.overflow_to.is_none() || n == 0 {
                errors.push(at(
                    span_of(q.name.span()),
                    key("overflow_max_waiting"),
                    "needs overflow_to, and a limit of at least 1".into(),
                ));
            }
        }
        let max_waiting = q.overflow_max_waiting.zip(q.overflow_to.as_ref().map(|t| t.get_ref().clone()));
        let overflow = match (q.overflow_after_s, &q.overflow_to) {
            (None, None) => None,
            (None, Some(_)) if q.overflow_max_waiting.is_some() => None,
            (Some(after), Some(to)) => {
                let queue_named = raw.queue.iter().any(|o| o.name.get_ref() == to.get_ref());
                if to.get_ref().starts_with("flow:") {
                    // A flow: checked against the flow files when they are loaded.
                } else if !queue_named || to.get_ref() == &name {
                    errors.push(at(
                        span_of(to.span()),
                        key("overflow_to"),
                        format!("{:?} is not another queue", to.get_ref()),
                    ));
                }
                if !(1..=3600).contains(&after) {
                    errors.push(at(
                        None,
                        key("overflow_after_s"),
                        format!("{after} is out of range: use 1-3600"),
                    ));
                }
                Some((Duration::from_secs(after), to.get_ref().clone()))
            }
            _ => {
                errors.push(at(
                    span_of(q.name.span()),
                    key("overflow_to"),
                    "overflow needs both overflow_after_s and overflow_to".into(),
                ));
                None
            }
        };
        let trunks: Vec<u16> = raw
            .route
            .iter()
            .filter(|r| r.queue.as_ref().is_some_and(|n| n.get_ref() == &name))
            .flat_map(|r| r.trunks.get_ref().iter().map(|p| *p.get_ref()))
            .collect();
        let strategy = if q.strategy == crate::acd::QueueStrategy::RingAll {
            Strategy::RingAll
        } else {
            Strategy::Sequential
        };
        let number = raw
            .route
            .iter()
            .find(|r| r.queue.as_ref().is_some_and(|n| n.get_ref() == &name))
            .map(|r| r.number.clone().unwrap_or_else(|| r.name.clone()))
            .unwrap_or_default();
        let overflow_flow = q
            .overflow_to
            .as_ref()
            .and_then(|t| t.get_ref().strip_prefix("flow:"))
            .map(|f| f.trim().to_string());
        routes.push(Route {
            name: name.clone(),
            trunks,
            seats: Vec::new(),
            strategy,
            overflow: None,
            max_waiting: None,
            flows: RouteFlows {
                entry: None,
                after: q.survey.clone(),
                overflow: overflow_flow,
                number,
                announce: (q.announce_every_s > 0)
                    .then(|| Duration::from_secs(q.announce_every_s.clamp(5, 3600))),
            },
        });
        queues.push(crate::acd::QueueConfig { name, strategy: q.strategy, members, overflow, max_waiting });
    }
    // Overflow targets, as route indices.
    let fixed = routes.len() - queues.len();
    for (qi, q) in queues.iter().enumerate() {
        // A flow as the target is an index past the routes; the route names the flow.
        if let Some((after, to)) = &q.overflow {
            if let Some(target) = queues.iter().position(|o| &o.name == to) {
                routes[fixed + qi].overflow = Some((*after, fixed + target));
            } else if to.starts_with("flow:") {
                routes[fixed + qi].overflow = Some((*after, usize::MAX));
            }
        }
        if let Some((limit, to)) = &q.max_waiting {
            if let Some(target) = queues.iter().position(|o| &o.name == to) {
                routes[fixed + qi].max_waiting = Some((*limit, fixed + target));
            } else if to.starts_with("flow:") {
                routes[fixed + qi].max_waiting = Some((*limit, usize::MAX));
            }
        }
    }

    let tone_zone = match (*raw.engine.tone_zone.get_ref(), &raw.tones) {
        (ToneZoneName::China, None) => ToneZone::china(),
        (ToneZoneName::NorthAmerica, None) => ToneZone::north_america(),
        (ToneZoneName::Europe, None) => ToneZone::europe(),
        (ToneZoneName::Custom, Some(tones)) => {
            let spec = |t: RawTone| {
                let [f1, f2] = match t.freqs {
                    RawFreqs::One([f]) => [f, 0.0],
                    RawFreqs::Two(f) => f,
                };
                match t.cadence_ms {
                    None => ToneSpec::continuous(f1, f2),
                    Some([on, off]) => ToneSpec::cadenced(f1, f2, on, off),
                }
            };
            let t = tones.get_ref();
            ToneZone::new(spec(t.dial), spec(t.ringback), spec(t.busy), spec(t.congestion)).unwrap_or_else(
                |e| {
                    errors.push(at(span_of(tones.span()), "tones".into(), e.to_string()));
                    ToneZone::china()
                },
            )
        }
        (ToneZoneName::Custom, None) => {
            errors.push(at(
                span_of(raw.engine.tone_zone.span()),
                "engine.tone_zone".into(),
                "\"custom\" needs a [tones] table with dial, ringback, busy and congestion".into(),
            ));
            ToneZone::china()
        }
        (_, Some(tones)) => {
            errors.push(at(
                span_of(tones.span()),
                "tones".into(),
                "a [tones] table is only used with engine.tone_zone = \"custom\"".into(),
            ));
            ToneZone::china()
        }
    };

    let a = &raw.agent;
    let listen = a.listen.get_ref().parse().unwrap_or_else(|_| {
        errors.push(at(
            span_of(a.listen.span()),
            "agent.listen".into(),
            format!("`{}` is not an address:port such as 0.0.0.0:7070", a.listen.get_ref()),
        ));
        std::net::SocketAddr::from(([0, 0, 0, 0], 7070))
    });
    for key in a.integration_keys.get_ref() {
        if key.len() < 16 {
            errors.push(at(
                span_of(a.integration_keys.span()),
                "agent.integration_keys".into(),
                "an integration key must be at least 16 characters".into(),
            ));
        }
    }
    if a.wrap_up_s > 3600 {
        errors.push(at(
            None,
            "agent.wrap_up_s".into(),
            format!("{} is out of range: use 0-3600 seconds", a.wrap_up_s),
        ));
    }
    if !(1..=3600).contains(&a.login_timeout_s) {
        errors.push(at(
            None,
            "agent.login_timeout_s".into(),
            format!("{} is out of range: use 1-3600 seconds", a.login_timeout_s),
        ));
    }
    if *a.max_sessions.get_ref() == 0 {
        errors.push(at(
            span_of(a.max_sessions.span()),
            "agent.max_sessions".into(),
            "must be at least 1".into(),
        ));
    }
    let agent = AgentConfig {
        listen,
        wrap_up: Duration::from_secs(a.wrap_up_s),
        ring_seats_without_agent: a.ring_seats_without_agent,
        pause_on_no_answer: a.pause_on_no_answer,
        integration_keys: a.integration_keys.get_ref().clone(),
        login_timeout: Duration::from_secs(a.login_timeout_s.max(1)),
        max_sessions: *a.max_sessions.get_ref(),
    };

    let ivr = &raw.ivr;
    let lang = crate::ivr::Lang::parse(ivr.lang.get_ref()).unwrap_or_else(|| {
        errors.push(at(span_of(ivr.lang.span()), "ivr.lang".into(), "use \"en\" or \"zh\"".into()));
        crate::ivr::Lang::En
    });
    let utc_offset = parse_offset(ivr.utc_offset.get_ref()).unwrap_or_else(|| {
        errors.push(at(
            span_of(ivr.utc_offset.span()),
            "ivr.utc_offset".into(),
            format!("`{}` is not an offset like +08:00", ivr.utc_offset.get_ref()),
        ));
        time::UtcOffset::UTC
    });
    let tts = match ivr.tts.get_ref().as_str() {
        "none" => None,
        "espeak-ng" => Some("espeak-ng".to_string()),
        other => {
            errors.push(at(
                span_of(ivr.tts.span()),
                "ivr.tts".into(),
                format!("unknown TTS engine `{other}`: use \"espeak-ng\" or \"none\""),
            ));
            None
        }
    };
    let ivr = IvrConfig {
        flows: ivr.flows.clone().into(),
        prompts: ivr.prompts.clone().into(),
        lang,
        utc_offset,
        tts,
        retention_days: ivr.retention_days,
    };
    let mut webservices = Vec::new();
    for (i, w) in raw.webservice.iter().enumerate() {
        if let Err(problems) = w.get_ref().validate() {
            for p in problems {
                errors.push(at(span_of(w.span()), format!("webservice[{i}].{}", p.key), p.message));
            }
        }
        if raw.webservice[..i].iter().any(|o| o.get_ref().name == w.get_ref().name) {
            errors.push(at(
                span_of(w.span()),
                format!("webservice[{i}].name"),
                format!("web service {:?} is defined twice", w.get_ref().name),
            ));
        }
        webservices.push(w.get_ref().clone());
    }

    let flash_ms = *raw.line.hook_flash_ms.get_ref();
    if !(50..=2000).contains(&flash_ms) {
        errors.push(at(
            span_of(raw.line.hook_flash_ms.span()),
            "line.hook_flash_ms".into(),
            format!("{flash_ms} is out of range: use 50-2000 milliseconds"),
        ));
    }
    let line = LineConfig {
        settings: crate::line::LineSettings {
            fxo: crate::line::fxo::FxoSettings {
                caller_id: raw.line.trunk_caller_id,
                flash: Duration::from_millis(flash_ms),
                ..crate::line::fxo::FxoSettings::default()
            },
            fxs: crate::line::fxs::FxsSettings {
                caller_id: raw.line.seat_caller_id,
                ..crate::line::fxs::FxsSettings::default()
            },
        },
        standard: match raw.line.caller_id_standard {
            CallerIdStandardName::Bellcore => crate::dsp::callerid::Standard::Bellcore,
            CallerIdStandardName::Etsi => crate::dsp::callerid::Standard::Etsi,
            CallerIdStandardName::Ydt1277 => crate::dsp::callerid::Standard::Ydt1277,
        },
    };

    let level = raw.log.level.get_ref().trim().to_string();
    if let Err(e) = crate::daemon::logs::parse_filter(&level) {
        errors.push(at(span_of(raw.log.level.span()), "log.level".into(), e.to_string()));
    }

    let drain = *raw.daemon.drain_seconds.get_ref();
    if drain > 3600 {
        errors.push(at(
            span_of(raw.daemon.drain_seconds.span()),
            "daemon.drain_seconds".into(),
            format!("{drain} is more than an hour: use 0 to 3600 seconds"),
        ));
    }
    let shell = {
        let r = &raw.shell;
        let mut bad = |span: Range<usize>, key: &str, message: String| {
            errors.push(at(span_of(span), format!("shell.{key}"), message))
        };
        if !(1..=1440).contains(r.idle_minutes.get_ref()) {
            bad(r.idle_minutes.span(), "idle_minutes", "use 1 to 1440 minutes".into());
        }
        if !(1..=100).contains(r.max_failures.get_ref()) {
            bad(r.max_failures.span(), "max_failures", "use 1 to 100 failed logins".into());
        }
        if !(1..=3600).contains(r.lockout_seconds.get_ref()) {
            bad(r.lockout_seconds.span(), "lockout_seconds", "use 1 to 3600 seconds".into());
        }
        let mut serial = Vec::new();
        for (i, port) in raw.serial.iter().enumerate() {
            let p = port.get_ref();
            let key = |k: &str| format!("serial[{i}].{k}");
            const SPEEDS: [u32; 10] =
                [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800];
            if !SPEEDS.contains(p.speed.get_ref()) {
                errors.push(at(
                    span_of(p.speed.span()),
                    key("speed"),
                    format!("{} is not a serial speed: use one of {SPEEDS:?}", p.speed.get_ref()),
                ));
            }
            let parity = match p.parity.get_ref().as_str() {
                "none" => Parity::None,
                "even" => Parity::Even,
                "odd" => Parity::Odd,
                other => {
                    errors.push(at(
                        span_of(p.parity.span()),
                        key("parity"),
                        format!("unknown parity `{other}`: use none, even or odd"),
                    ));
                    Parity::None
                }
            };
            if !(5..=8).contains(p.data_bits.get_ref()) {
                errors.push(at(span_of(p.data_bits.span()), key("data_bits"), "use 5 to 8 data bits".into()));
            }
            if !(1..=2).contains(p.stop_bits.get_ref()) {
                errors.push(at(span_of(p.stop_bits.span()), key("stop_bits"), "use 1 or 2 stop bits".into()));
            }
            if p.device.trim().is_empty()
                || serial.iter().any(|s: &SerialConfig| s.device == Path::new(&p.device))
            {
                errors.push(at(
                    span_of(port.span()),
                    key("device"),
                    format!("the device {:?} is empty or listed twice", p.device),
                ));
            }
            serial.push(SerialConfig {
                device: PathBuf::from(&p.device),
                speed: *p.speed.get_ref(),
                parity,
                data_bits: *p.data_bits.get_ref(),
                stop_bits: *p.stop_bits.get_ref(),
            });
        }
        ShellConfig {
            idle: Duration::from_secs(r.idle_minutes.get_ref() * 60),
            max_failures: *r.max_failures.get_ref(),
            lockout: Duration::from_secs(*r.lockout_seconds.get_ref()),
            page_lines: r.page_lines,
            hostname: r.hostname.clone(),
            serial,
        }
    };

    let mut e1 = Vec::new();
    for (i, raw_e1) in raw.e1.iter().enumerate() {
        let number = *raw_e1.span.get_ref();
        let key = format!("e1[{i}]");
        let Some(card_span) = e1_span_index(&card, number) else {
            errors.push(at(
                span_of(raw_e1.span.span()),
                format!("{key}.span"),
                format!(
                    "the card has no E1 span {number} (it has {})",
                    card.spans.iter().filter(|s| s.kind == SpanKind::E1).count()
                ),
            ));
            continue;
        };
        if e1.iter().any(|o: &E1Config| o.number == number) {
            errors.push(at(
                span_of(raw_e1.span.span()),
                format!("{key}.span"),
                format!("E1 span {number} is configured twice"),
            ));
            continue;
        }
        if !raw_e1.framing.get_ref().eq_ignore_ascii_case("ccs") {
            errors.push(at(
                span_of(raw_e1.framing.span()),
                format!("{key}.framing"),
                format!("framing {:?}: ISDN PRI runs on CCS framing (`ccs`)", raw_e1.framing.get_ref()),
            ));
        }
        if *raw_e1.timing.get_ref() > 8 {
            errors.push(at(
                span_of(raw_e1.timing.span()),
                format!("{key}.timing"),
                "timing source priority is 0 (never) or 1-8 (1 first)".into(),
            ));
        }
        e1.push(E1Config {
            card_span,
            number,
            signalling: raw_e1.signalling,
            line_code: raw_e1.line_code,
            crc4: raw_e1.crc4,
            timing: *raw_e1.timing.get_ref(),
        });
    }

    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Config {
        e1,
        driver: match (dahdi, driver_name) {
            (_, "alsa") => Driver::Alsa,
            (Some(d), _) => Driver::Dahdi(d),
            _ => Driver::Sim(sim),
        },
        sound,
        law,
        sim_seat_answer_delay: match raw.sim.seat_answer_delay_ms {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        },
        sim_disconnect: match raw.sim.disconnect {
            DisconnectName::LoopDrop => crate::sim::Disconnect::LoopDrop,
            DisconnectName::BusyTone => crate::sim::Disconnect::BusyTone,
        },
        realtime_priority: priority as i32,
        echo_canceller: raw.engine.echo_canceller,
        echo_canceller_ports: raw.engine.echo_canceller_ports.get_ref().clone(),
        tone_zone,
        queues,
        calls: CallSettings {
            routes,
            seat_ring_timeout: Duration::from_secs(seat_ring_timeout),
            trunk_ring_gap: Duration::from_secs(ring_gap),
            record: raw.calls.record,
            tone_disconnect: raw.calls.tone_disconnect,
        },
        log_level: level,
        agent,
        ivr,
        webservices,
        line,
        drain: Duration::from_secs(drain),
        shell,
    })
}

/// The card span index of the `number`th E1 span (from 1).
fn e1_span_index(card: &CardInfo, number: u16) -> Option<u16> {
    let n = usize::from(number.checked_sub(1)?);
    card.spans.iter().filter(|s| s.kind == SpanKind::E1).nth(n).map(|s| s.index)
}

/// Parses `+08:00`, `-05:00` or `Z`.
fn parse_offset(s: &str) -> Option<time::UtcOffset> {
    if s == "Z" || s == "UTC" {
        return Some(time::UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1i8, &s[1..]),
        b'-' => (-1i8, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_is_valid() {
        let c = Config::builtin().unwrap();
        assert_eq!(c.sim().map(|s| s.trunk_ports), Some(4));
        // The hotline (a flow), reception (seats), and one route per queue.
        let names: Vec<&str> = c.calls.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hotline", "reception", "sales", "support", "complaints"]);
        assert_eq!(c.calls.routes[0].flows.entry.as_deref(), Some("*"));
        assert_eq!(c.calls.routes[0].flows.number, "8000");
        assert_eq!(c.calls.routes[1].seats, vec![5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(c.calls.routes[2].flows.after.as_deref(), Some("survey"));
        assert_eq!(c.calls.routes[2].flows.overflow.as_deref(), Some("voicemail"));
        assert_eq!(c.calls.routes[2].overflow, Some((Duration::from_secs(120), usize::MAX)));
        assert_eq!(c.ivr.utc_offset, time::UtcOffset::from_hms(8, 0, 0).unwrap());
        assert_eq!(c.webservices.len(), 2);
    }

    #[test]
    fn serial_ports_shell_and_drain_settings_are_checked_with_their_keys() {
        let base = "[card]\ndriver = \"sim\"\n[ivr]\nflows = \"/nonexistent\"\n";
        let good = format!(
            "{base}[daemon]\ndrain_seconds = 5\n[shell]\nidle_minutes = 2\nhostname = \"pbx\"\n\
             [[serial]]\ndevice = \"/dev/ttyS0\"\n[[serial]]\ndevice = \"/dev/ttyUSB0\"\nspeed = 9600\nparity = \"even\"\ndata_bits = 7\n"
        );
        let c = Config::parse(&good, "x.toml").expect("valid");
        assert_eq!(c.drain, Duration::from_secs(5));
        assert_eq!(c.shell.idle, Duration::from_secs(120));
        assert_eq!(c.shell.serial.len(), 2);
        assert_eq!(c.shell.serial[0].speed, 115_200, "8N1 at 115200 by default");
        assert_eq!((c.shell.serial[0].parity, c.shell.serial[0].data_bits), (Parity::None, 8));
        assert_eq!(
            (c.shell.serial[1].speed, c.shell.serial[1].parity, c.shell.serial[1].data_bits),
            (9600, Parity::Even, 7)
        );

        let bad = format!(
            "{base}[daemon]\ndrain_seconds = 7200\n[shell]\nmax_failures = 0\n\
             [[serial]]\ndevice = \"/dev/ttyS0\"\nspeed = 12345\nparity = \"mark\"\n[[serial]]\ndevice = \"/dev/ttyS0\"\n[log]\nlevel = \"loud\"\n"
        );
        let e = Config::parse(&bad, "x.toml").unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "daemon.drain_seconds",
            "shell.max_failures",
            "serial[0].speed",
            "serial[0].parity",
            "serial[1].device",
            "log.level",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        assert!(e.0.iter().all(|e| e.line > 0), "{e}");
    }

    #[test]
    fn a_reload_names_what_waits_for_a_restart() {
        let a = Config::builtin().unwrap();
        let mut b = a.clone();
        b.log_level = "debug".into();
        b.drain = Duration::from_secs(1);
        assert!(restart_needed(&a, &b).is_empty(), "log level and drain time apply at once");
        b.agent.wrap_up = Duration::from_secs(99);
        b.shell.serial.push(SerialConfig {
            device: "/dev/ttyS1".into(),
            speed: 115_200,
            parity: Parity::None,
            data_bits: 8,
            stop_bits: 1,
        });
        assert_eq!(restart_needed(&a, &b), ["[agent]", "[[serial]]"]);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[card]\ndriver = \"sim\"\n\n[sim]\ntrunk_ports = 2\nbogus = 1\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].line, 6);
        assert_eq!(e.0[0].key, "sim.bogus");
        assert!(e.0[0].message.contains("unknown field `bogus`"), "{}", e.0[0].message);
        assert!(e.to_string().starts_with("x.toml:6:1: key `sim.bogus`"), "{e}");
    }

    #[test]
    fn a_dahdi_card_is_described_by_its_board_file_and_e1_spans_are_checked() {
        let text = "[card]\ndriver = \"dahdi\"\n[dahdi]\nboard = \"digium-te420\"\n\
                    [[e1]]\nspan = 2\nsignalling = \"pri-net\"\ncrc4 = false\n\
                    [[route]]\nname = \"isdn\"\ne1_spans = [2]\nflow = \"main\"\nnumber = \"8000\"\n\
                    [ivr]\nflows = \"/nonexistent\"\n";
        let c = Config::parse(text, "x.toml").expect("valid");
        let info = c.card_info();
        assert_eq!(info.spans.len(), 4);
        assert_eq!(info.channels.len(), 124);
        assert_eq!(info.channels[46].kind, ChannelKind::E1Signalling, "the second span's timeslot 16");
        let Driver::Dahdi(d) = &c.driver else { panic!("a DAHDI driver") };
        assert_eq!(d.first_channels, vec![1, 32, 63, 94]);
        assert_eq!(c.e1.len(), 1);
        assert_eq!((c.e1[0].card_span, c.e1[0].signalling, c.e1[0].crc4), (1, E1Signalling::PriNet, false));
        let trunks = &c.calls.routes[0].trunks;
        assert_eq!(trunks.len(), 30);
        assert_eq!((trunks[0], trunks[29]), (32, 62));
        assert!(!trunks.contains(&47), "the D-channel is not a trunk");

        let text = "[card]\ndriver = \"dahdi\"\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        assert_eq!(e.0[0].key, "dahdi", "{e}");
        let text = "[card]\ndriver = \"dahdi\"\n[dahdi]\nboard = \"te999\"\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (4, "dahdi.board"), "{e}");
        assert!(e.0[0].message.contains("digium-te420"), "the message lists the boards: {e}");
        let text =
            "[card]\ndriver = \"dahdi\"\n[dahdi]\nboard = \"digium-te420\"\nfirst_channels = [1, 32]\n\
                    [[e1]]\nspan = 5\n[[e1]]\nspan = 1\nframing = \"cas\"\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(keys, vec![(5, "dahdi.first_channels"), (7, "e1[0].span"), (10, "e1[1].framing")], "{e}");
    }

    #[test]
    fn bad_values_are_all_reported() {
        let text = "[card]\ndriver = \"zaptel\"\n[engine]\nrealtime_priority = 150\n\
                    [[route]]\nname = \"r\"\ntrunks = [1, 5]\nseats = [99]\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (2, "card.driver"),
                (4, "engine.realtime_priority"),
                (7, "route[0].trunks"),
                (8, "route[0].seats")
            ]
        );
        assert!(e.0[2].message.contains("port 5 is a fxs port"));
        assert!(e.0[3].message.contains("port 99 does not exist"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = "[card]\ndriver = \"sim\"\n[sim]\nseat_ports = \"eight\"\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (4, "sim.seat_ports"));
    }

    #[test]
    fn custom_tone_zones_are_checked() {
        let base = "[card]\ndriver = \"sim\"\n[engine]\ntone_zone = \"custom\"\n";
        let tones = "[tones]\ndial = { freqs = [400] }\nringback = { freqs = [400, 450], cadence_ms = [1000, 4000] }\n\
                     busy = { freqs = [400], cadence_ms = [375, 375] }\ncongestion = { freqs = [400], cadence_ms = [400, 350] }\n";
        let e = Config::parse(&format!("{base}{tones}"), "x.toml").unwrap_err();
        assert_eq!(e.0[0].key, "tones");
        assert!(e.0[0].message.contains("busy") && e.0[0].message.contains("congestion"), "{e}");
        let ok = tones.replace("[400, 350]", "[750, 750]");
        let c = Config::parse(&format!("{base}{ok}"), "x.toml").unwrap();
        assert_eq!(c.tone_zone.spec(crate::dsp::tone::ProgressTone::Busy).unwrap().on_ms(), 375);
        let e = Config::parse(base, "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (4, "engine.tone_zone"));
    }

    #[test]
    fn huge_or_inconsistent_timeouts_are_refused() {
        let text = "[card]\ndriver = \"sim\"\n[calls]\nseat_ring_timeout_s = 18446744073709551615\ntrunk_ring_gap_s = 3\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(keys, vec![(4, "calls.seat_ring_timeout_s"), (5, "calls.trunk_ring_gap_s")]);
        assert!(e.0[1].message.contains("shorter than the 4000 ms between rings"), "{e}");
    }

    #[test]
    fn echo_canceller_ports_must_exist() {
        let text = "[card]\ndriver = \"sim\"\n[engine]\necho_canceller_ports = [1, 40]\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (4, "engine.echo_canceller_ports"));
        assert!(e.0[0].message.contains("port 40 does not exist"));
        let ok = Config::parse(&text.replace(", 40", ""), "x.toml").unwrap();
        assert_eq!(ok.echo_canceller_ports, vec![1]);
    }

    #[test]
    fn queues_are_checked() {
        let text = "[card]\ndriver = \"sim\"\n[[queue]]\nname = \"sales\"\nmembers = [\"1001:12\"]\noverflow_after_s = 5\n\
                    overflow_to = \"nowhere\"\n[[route]]\nname = \"r\"\ntrunks = [1]\nqueue = \"salse\"\n";
        let e = Config::parse(text, "x.toml").unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![(11, "route[0].queue"), (5, "queue[0].members"), (7, "queue[0].overflow_to")],
            "{e}"
        );
        let ok = text
            .replace("1001:12", "1001:7")
            .replace("salse", "sales")
            .replace("overflow_after_s = 5\n", "")
            .replace("overflow_to = \"nowhere\"\n", "");
        let c = Config::parse(&ok, "x.toml").unwrap();
        assert_eq!(c.queues[0].members, vec![("1001".to_string(), 7)]);
        assert_eq!(c.calls.routes.last().unwrap().trunks, vec![1]);
    }

    #[test]
    fn a_queue_overflows_by_length() {
        let text = "[card]\ndriver = \"sim\"\n[[queue]]\nname = \"sales\"\nmembers = [\"1001\"]\n\
                    overflow_max_waiting = 3\noverflow_to = \"support\"\n[[queue]]\nname = \"support\"\nmembers = [\"1002\"]\n";
        let c = Config::parse(text, "x.toml").unwrap();
        let n = c.calls.routes.len();
        assert_eq!(c.calls.routes[n - 2].max_waiting, Some((3, n - 1)));
        assert_eq!(c.calls.routes[n - 2].overflow, None);
        let e = Config::parse(&text.replace("overflow_to = \"support\"\n", ""), "x.toml").unwrap_err();
        assert_eq!(e.0[0].key, "queue[0].overflow_max_waiting");
    }

    #[test]
    fn line_settings_are_read_and_checked() {
        use crate::dsp::callerid::Standard;
        use crate::line::CallerIdMode;
        let c = Config::builtin().unwrap();
        assert_eq!(c.line.settings.fxo.caller_id, CallerIdMode::Dtmf);
        assert!(!c.line.settings.fxs.caller_id);
        assert_eq!(c.line.standard, Standard::Ydt1277);
        let text = "[card]\ndriver = \"sim\"\n[line]\ntrunk_caller_id = \"fsk-before-ring\"\n\
                    caller_id_standard = \"etsi\"\nseat_caller_id = true\nhook_flash_ms = 120\n";
        let c = Config::parse(text, "x.toml").unwrap();
        assert_eq!(c.line.settings.fxo.caller_id, CallerIdMode::FskBeforeRing);
        assert_eq!(c.line.settings.fxo.flash, Duration::from_millis(120));
        assert!(c.line.settings.fxs.caller_id);
        assert_eq!(c.line.standard, Standard::Etsi);
        let e = Config::parse(&text.replace("\"etsi\"", "\"ntt\""), "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (5, "line.caller_id_standard"));
        assert!(e.0[0].message.contains("bellcore"), "{e}");
        let e = Config::parse(&text.replace("\"fsk-before-ring\"", "\"fks\""), "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (4, "line.trunk_caller_id"));
        let e = Config::parse(&text.replace("= 120", "= 5000"), "x.toml").unwrap_err();
        assert_eq!((e.0[0].line, e.0[0].key.as_str()), (7, "line.hook_flash_ms"));
        assert!(e.to_string().starts_with("x.toml:7:"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = Config::parse("[card\ndriver = 1", "x.toml").unwrap_err();
        assert_eq!(e.0[0].line, 1);
    }
}
