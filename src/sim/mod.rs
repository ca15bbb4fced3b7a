//! The far-end simulator: what happens at the other end of every simulated line.
//!
//! On a trunk port the far end is a caller behind the exchange: the exchange presents the
//! caller's number (DTMF before the first ring, FSK between the first and second ring, or FSK
//! before the first ring after a polarity reversal, as [`ExchangeSettings`] say), rings the
//! port, and once answered the caller types digits, plays a WAV file and hangs up. On a seat
//! port it is a phone: it rings, shows the FSK caller id it gets while ringing on its display,
//! answers after a delay, and hangs up on command. On every port it listens to what the
//! switch sends and reports the digits, tones and speech it hears; for line tests it can also
//! type digits on an idle line and send back what it hears (`FarCommand::Echo`, a loop-back
//! plug), whatever the line's state. It runs inside the card's
//! tick on the real-time thread, so it is driven through fixed-capacity rings and never
//! allocates: WAV audio arrives as a shared buffer and goes back to the control plane to be
//! freed there, and caller id frames are built and decoded in fixed-size buffers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_driver_api::{Block, ChannelId, ChannelInfo, ChannelKind, Law, BLOCK_SAMPLES};
use switchboard_driver_sim::{FarAction, FarEnd, FarLine};

use crate::dsp::callerid::{
    Absence, CallerIdError, CallerIdReceiver, CallerIdSender, Message, RawMessage, Standard, MDMF_CALLER_ID,
    PARAM_CALLING_NUMBER, PARAM_NUMBER_ABSENCE,
};
use crate::dsp::dtmf::{DtmfDetector, DtmfGenerator};
use crate::dsp::g711;
use crate::dsp::level::VoiceActivity;
use crate::dsp::tone::{ProgressTone, ToneDetector, ToneZone};
use crate::dsp::tonegen::ToneGenerator;
use crate::line::CallerIdMode;

/// Most digits in a caller id or a digit string.
pub const MAX_DIGITS: usize = 32;

/// Ticks per second.
const TICKS_PER_SECOND: u32 = 50;

/// Level of the far end's DTMF, per tone: a typical phone on a short loop.
const DTMF_LEVEL_DBM0: f32 = -8.0;

/// Level of the tones the exchange plays, per frequency.
const TONE_LEVEL_DBM0: f32 = -13.0;

/// Level of the exchange's FSK caller id: what GR-30 and EN 300 659 exchanges send.
const FSK_LEVEL_DBM0: f32 = -13.5;

/// Between-rings caller id starts this long after the first ring ends (GR-30 and YD/T 1277
/// ask for at least 500 ms).
const FSK_AFTER_RING_MS: u32 = 600;

/// Before-ring caller id starts this long after the polarity reversal that announces it.
const FSK_AFTER_REVERSAL_MS: u32 = 300;

/// The exchange pauses this long between caller id sent before the first ring and the ring.
const CALLER_ID_TO_RING_MS: u32 = 300;

/// How the simulated exchange presents caller id on trunk ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExchangeSettings {
    /// DTMF before the first ring, FSK between the first and second ring, or FSK before the
    /// first ring announced by a polarity reversal: what our side's `[line]` settings expect.
    pub caller_id: CallerIdMode,
    /// The FSK standard: its modulation and preamble.
    pub standard: Standard,
    /// The ring burst of the card's cadence: between-rings caller id follows its end.
    pub ring_on_ms: u32,
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        ExchangeSettings { caller_id: CallerIdMode::Dtmf, standard: Standard::Ydt1277, ring_on_ms: 1000 }
    }
}

/// What a caller id string given to [`FarCommand::Call`] presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Presented<'a> {
    Nothing,
    Number(&'a str),
    /// No number, for this reason: `P` withheld by the caller, `O` unavailable.
    Absent(u8),
}

fn presented(caller_id: &str) -> Presented<'_> {
    match caller_id {
        "" => Presented::Nothing,
        "P" => Presented::Absent(b'P'),
        "O" => Presented::Absent(b'O'),
        number => Presented::Number(number),
    }
}

/// Checks the caller id of `sim.call`: digits, `P` for a withheld number or `O` for an
/// unavailable one, or nothing.
pub fn caller_id_arg(from: &str) -> Result<heapless::String<MAX_DIGITS>, String> {
    if !matches!(from, "P" | "O") {
        if let Some(bad) = from.chars().find(|c| !c.is_ascii_digit()) {
            return Err(format!(
                "unknown digit {bad:?} in from {from:?}: a caller id is digits, P for a withheld number \
                 or O for an unavailable one"
            ));
        }
    }
    heapless::String::try_from(from).map_err(|_| format!("from {from:?} is longer than {MAX_DIGITS} digits"))
}

/// The MDMF frame the exchange sends for a caller, built without allocating (it is built on
/// the real-time thread): the number, or the reason for its absence. The simulated exchange
/// has no calendar, so it sends no date.
fn fsk_frame(caller: Presented<'_>) -> Option<RawMessage> {
    let mut body: heapless::Vec<u8, { MAX_DIGITS + 2 }> = heapless::Vec::new();
    let reason;
    let (param, value) = match caller {
        Presented::Nothing => return None,
        Presented::Number(n) => (PARAM_CALLING_NUMBER, n.as_bytes()),
        Presented::Absent(r) => {
            reason = [r];
            (PARAM_NUMBER_ABSENCE, &reason[..])
        }
    };
    // The number is at most MAX_DIGITS bytes, so the body fits and its length fits a byte.
    body.push(param).ok()?;
    body.push(u8::try_from(value.len()).ok()?).ok()?;
    body.extend_from_slice(value).ok()?;
    RawMessage::new(MDMF_CALLER_ID, &body).ok()
}

/// What a phone's display shows for a caller id frame, for people reading `sim watch`: the
/// number and name, or why there is no number. Runs on the control plane (it allocates). The
/// frame is read the GR-30 way: the parameters a phone gets from us (number, reason for its
/// absence, name, date) read the same in all three standards.
pub fn display_text(message: &RawMessage) -> String {
    match message.parse(Standard::Bellcore) {
        Ok(Message::CallerId(id)) => {
            let mut text = match (&id.number, id.number_absence) {
                (Some(number), _) => number.clone(),
                (None, Some(Absence::Private)) => "private".to_string(),
                (None, Some(_)) => "unavailable".to_string(),
                (None, None) => "no number".to_string(),
            };
            if let Some(name) = &id.name {
                text.push(' ');
                text.push_str(name);
            }
            text
        }
        Ok(Message::MessageWaiting { active, .. }) => {
            if active { "message waiting" } else { "no message waiting" }.to_string()
        }
        Err(e) => format!("unreadable caller id: {e}"),
    }
}

/// How the exchange tells our trunk port that the far end hung up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Disconnect {
    /// Loop current drops (DAHDI reports on-hook on the FXO port).
    #[default]
    LoopDrop,
    /// Nothing on the line but busy tone, as on many Chinese lines.
    BusyTone,
}

/// How the simulated exchange handles a call our side places on a trunk. Every number is
/// answered after [`CALLEE_ANSWER_MS`], except numbers starting with `9999` (busy) and
/// `8888` (never answered), so tests can reach each outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outgoing {
    None,
    /// Dial tone, waiting for the first digit.
    DialTone,
    /// Collecting digits; ticks since the last one.
    Collecting {
        idle: u32,
    },
    /// Ringing the called party; ticks so far, and whether it will answer.
    Ringing {
        ticks: u32,
        answers: bool,
    },
    /// The called number is busy.
    Busy,
    /// The called party answered.
    Answered,
}

/// How long the simulated called party rings before answering.
pub const CALLEE_ANSWER_MS: u32 = 2000;
/// Silence after the last digit that ends a dialled number.
const END_OF_NUMBER_MS: u32 = 1500;

/// A command to the far end of one port.
#[derive(Clone, Debug)]
pub enum FarCommand {
    /// Trunk port: a caller dials in. The exchange presents `caller_id` (digits, `P` for a
    /// withheld number, `O` for an unavailable one, or empty for none) as
    /// [`ExchangeSettings`] say; once answered the caller waits `digits_delay_ms`, types
    /// `digits`, plays `play`, and hangs up `hangup_after_ms` after the answer (or stays on
    /// the line).
    Call {
        channel: ChannelId,
        caller_id: heapless::String<MAX_DIGITS>,
        digits: heapless::String<MAX_DIGITS>,
        digits_delay_ms: u32,
        play: Option<Arc<[i16]>>,
        hangup_after_ms: Option<u32>,
    },
    /// The far end hangs up (trunk) or puts the phone down (seat).
    Hangup { channel: ChannelId },
    /// Seat port: lift the handset.
    OffHook { channel: ChannelId },
    /// Type digits on the line, whatever its state: in a call, or on an idle port (a
    /// technician's test set).
    Dial { channel: ChannelId, digits: heapless::String<MAX_DIGITS> },
    /// Seat port: answer automatically this long after ringing starts (None: never).
    AutoAnswer { channel: ChannelId, after_ms: Option<u32> },
    /// Play one of the zone's call-progress tones into the line until told otherwise
    /// (None: stop).
    Tone { channel: ChannelId, tone: Option<ProgressTone> },
    /// Record what the far end hears into `buffer` until it is full, whatever the state of
    /// the line (an idle port too); the buffer comes back through [`FarEndHandle::captured`].
    Record { channel: ChannelId, buffer: Box<[i16]> },
    /// Send back what the far end hears, `loss_db` dB down, on top of whatever else it
    /// sends (None: stop): a loop-back plug, or the hybrid echo of the far end of a line.
    /// It works whatever the state of the line and whether or not a call is up; what the
    /// far end heard in one tick goes back in the next.
    Echo { channel: ChannelId, loss_db: Option<u8> },
    /// How the exchange presents caller id on every trunk port, for the calls placed after
    /// this command.
    Exchange(ExchangeSettings),
}

/// What the far end of a port reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FarReport {
    /// Trunk: our side dialled this number on a seized line.
    Dialled { channel: ChannelId, number: heapless::String<MAX_DIGITS> },
    /// Trunk: the exchange started ringing the port. Seat: the phone started ringing.
    Ringing {
        channel: ChannelId,
        /// CLOCK_MONOTONIC in nanoseconds at the tick the ringing started, so that
        /// benchmarks in other processes can time what follows from the ring on the card.
        at_ns: u64,
    },
    /// The line is connected end to end.
    Connected { channel: ChannelId },
    /// The far end hung up.
    HungUp { channel: ChannelId },
    /// The switch released the line.
    Released { channel: ChannelId },
    /// The far end finished typing its digits.
    DigitsSent { channel: ChannelId },
    /// The far end finished playing its WAV file.
    PlayDone { channel: ChannelId },
    /// A DTMF digit heard from the switch.
    HeardDigit { channel: ChannelId, digit: char },
    /// A call-progress tone heard from the switch.
    HeardTone { channel: ChannelId, tone: ProgressTone },
    /// Speech started (true) or stopped (false) in what the switch sends.
    HeardSpeech { channel: ChannelId, speech: bool },
    /// A recording of what the far end heard is complete.
    Recorded { channel: ChannelId },
    /// A command named a port the far end cannot act on in its state.
    Refused { channel: ChannelId, reason: &'static str },
    /// Seat: the phone's display shows this caller id, received while it rang; parse it on
    /// the control plane, with [`display_text`] for people.
    Display { channel: ChannelId, message: RawMessage },
    /// Seat: a caller id burst came while the phone rang, but the phone could not read it.
    DisplayGarbled { channel: ChannelId, error: CallerIdError },
}

/// The control plane's ends of the far end's rings.
pub struct FarEndHandle {
    pub commands: rtrb::Producer<FarCommand>,
    pub reports: rtrb::Consumer<FarReport>,
    /// Audio buffers the far end finished with, to be dropped outside the real-time thread.
    pub spent: rtrb::Consumer<Arc<[i16]>>,
    /// Recordings of what a far end heard, once full.
    pub captured: rtrb::Consumer<(ChannelId, Box<[i16]>)>,
    /// Reports and buffers lost to full rings.
    pub dropped: Arc<AtomicU64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Idle,
    /// Before-ring FSK caller id: the polarity reversal, then the burst; ticks since the
    /// reversal.
    Announcing {
        ticks: u32,
    },
    /// Sending caller id, then ringing the port after a short pause.
    SendingCallerId {
        pause_ticks: u32,
    },
    /// Waiting to be answered.
    Calling,
    /// Answered; ticks since the answer.
    Talking {
        ticks: u32,
    },
}

struct Port {
    law: Law,
    kind: ChannelKind,
    script: Script,
    generator: DtmfGenerator,
    sending: bool,
    pending_digits: heapless::String<MAX_DIGITS>,
    digits_delay_ticks: u32,
    play: Option<(Arc<[i16]>, usize)>,
    hangup_after_ticks: Option<u32>,
    hangup_requested: bool,
    offhook_requested: bool,
    auto_answer_ticks: Option<u32>,
    ringing_ticks: u32,
    last_line: FarLine,
    detector: DtmfDetector,
    tones: ToneDetector,
    voice: VoiceActivity,
    speech: bool,
    heard: [i16; BLOCK_SAMPLES],
    tone: Option<ToneGenerator>,
    capture: Option<(Box<[i16]>, usize)>,
    /// The call-progress tone the far end hears now, if any.
    heard_tone: Option<ProgressTone>,
    /// Ticks the far end has been hearing that tone.
    heard_tone_ticks: u32,
    /// What the exchange does with a line our side seized.
    outgoing: Outgoing,
    /// The digits our side dialled on a seized line.
    dialled: heapless::String<MAX_DIGITS>,
    /// Seat: the phone answered by itself, so it acts like an agent who puts the handset
    /// down on hearing busy tone, or dial tone where a call was expected.
    agent: bool,
    /// Trunk: the exchange's FSK caller id modulator, the frame of the call being placed,
    /// and the ticks of ringing before it goes out (between-rings caller id).
    fsk: Option<Box<CallerIdSender>>,
    fsk_frame: Option<RawMessage>,
    fsk_due: Option<u32>,
    /// Seat: the phone's caller id display, decoding what the switch sends while it rings.
    display: Option<Box<CallerIdReceiver>>,
    /// The gain at which the far end sends back what it hears (`FarCommand::Echo`).
    echo_gain: Option<f32>,
}

impl Port {
    /// Starts the FSK burst of the call being placed, if it has one.
    fn send_fsk(&mut self) {
        if let (Some(tx), Some(frame)) = (self.fsk.as_deref_mut(), self.fsk_frame.take()) {
            // The sender is idle: the last call's burst was stopped when that call ended.
            let _ = tx.send(&frame);
        }
    }

    /// Whether an FSK burst is going out.
    fn sending_fsk(&self) -> bool {
        self.fsk.as_deref().is_some_and(|tx| !tx.is_idle())
    }

    /// Forgets the caller id of the call being placed: the call was answered or ended.
    fn stop_fsk(&mut self) {
        if let Some(tx) = self.fsk.as_deref_mut() {
            tx.transmitter_mut().abort();
        }
        self.fsk_frame = None;
        self.fsk_due = None;
    }
}

/// The far end of every port of a simulated card.
pub struct FarEndSim {
    ports: Vec<Port>,
    commands: rtrb::Consumer<FarCommand>,
    reports: rtrb::Producer<FarReport>,
    spent: rtrb::Producer<Arc<[i16]>>,
    captured: rtrb::Producer<(ChannelId, Box<[i16]>)>,
    zone: ToneZone,
    disconnect: Disconnect,
    /// How the exchange presents caller id on trunk ports.
    exchange: ExchangeSettings,
    /// Reports and buffers lost to full rings, shared with the control plane.
    reports_dropped: Arc<AtomicU64>,
}

/// CLOCK_MONOTONIC in nanoseconds: one vDSO read, no system call.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

fn ms_to_ticks(ms: u32) -> u32 {
    ms.div_ceil(1000 / TICKS_PER_SECOND)
}

impl FarEndSim {
    /// A far end for the channels of a card. `seat_answer_ms` is how long seat phones ring
    /// before answering by themselves (None: they answer only on command).
    pub fn new(
        channels: &[ChannelInfo],
        zone: &ToneZone,
        seat_answer_ms: Option<u32>,
        disconnect: Disconnect,
    ) -> (FarEndSim, FarEndHandle) {
        // Seat phones answer a quarter of a second apart, the way people do, so that a group
        // ringing all at once is answered by one seat and not by all of them in the same tick.
        let mut seat_index = 0u32;
        let mut answer_ticks = |kind: ChannelKind| {
            if kind != ChannelKind::FxsSeat {
                return None;
            }
            let jitter = (seat_index % 8) * 250;
            seat_index += 1;
            seat_answer_ms.map(|ms| ms_to_ticks(ms.saturating_add(jitter)))
        };
        let ports = channels
            .iter()
            .map(|c| Port {
                law: c.law,
                kind: c.kind,
                script: Script::Idle,
                generator: DtmfGenerator::new(DTMF_LEVEL_DBM0, 100, 100),
                sending: false,
                pending_digits: heapless::String::new(),
                digits_delay_ticks: 0,
                play: None,
                hangup_after_ticks: None,
                hangup_requested: false,
                offhook_requested: false,
                auto_answer_ticks: answer_ticks(c.kind),
                ringing_ticks: 0,
                last_line: FarLine::Idle,
                detector: DtmfDetector::new(),
                tones: ToneDetector::new(zone),
                voice: VoiceActivity::new(),
                speech: false,
                heard: [0; BLOCK_SAMPLES],
                tone: None,
                capture: None,
                heard_tone: None,
                heard_tone_ticks: 0,
                outgoing: Outgoing::None,
                dialled: heapless::String::new(),
                agent: false,
                fsk: (c.kind == ChannelKind::FxoTrunk).then(|| {
                    let standard = ExchangeSettings::default().standard;
                    Box::new(CallerIdSender::new(standard, FSK_LEVEL_DBM0))
                }),
                fsk_frame: None,
                fsk_due: None,
                display: (c.kind == ChannelKind::FxsSeat)
                    .then(|| Box::new(CallerIdReceiver::for_standard(Standard::Bellcore))),
                echo_gain: None,
            })
            .collect();
        let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(256);
        let (rep_tx, rep_rx) = rtrb::RingBuffer::new(4096);
        let (spent_tx, spent_rx) = rtrb::RingBuffer::new(64);
        let (captured_tx, captured_rx) = rtrb::RingBuffer::new(64);
        let dropped = Arc::new(AtomicU64::new(0));
        (
            FarEndSim {
                ports,
                commands: cmd_rx,
                reports: rep_tx,
                spent: spent_tx,
                captured: captured_tx,
                zone: zone.clone(),
                disconnect,
                exchange: ExchangeSettings::default(),
                reports_dropped: dropped.clone(),
            },
            FarEndHandle {
                commands: cmd_tx,
                reports: rep_rx,
                spent: spent_rx,
                captured: captured_rx,
                dropped,
            },
        )
    }

    /// Reports lost because the report ring was full.
    pub fn reports_dropped(&self) -> u64 {
        self.reports_dropped.load(Ordering::Relaxed)
    }

    fn report(&mut self, r: FarReport) {
        if self.reports.push(r).is_err() {
            self.reports_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn release_play(&mut self, i: usize) {
        if let Some((audio, _)) = self.ports[i].play.take() {
            // A full ring drops the buffer here: a rare, counted free on the real-time thread
            // is better than blocking it.
            if self.spent.push(audio).is_err() {
                self.reports_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands a buffer back to the control plane to be freed there.
    fn spend(&mut self, audio: Arc<[i16]>) {
        // A full ring drops the buffer here: a rare, counted free on the real-time thread
        // is better than blocking it.
        if self.spent.push(audio).is_err() {
            self.reports_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands back the buffers of a command that is not carried out.
    fn give_back(&mut self, cmd: FarCommand) {
        match cmd {
            FarCommand::Call { play: Some(audio), .. } => self.spend(audio),
            FarCommand::Record { channel, buffer } => {
                if self.captured.push((channel, buffer)).is_err() {
                    self.reports_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }

    fn take_commands(&mut self) {
        while let Ok(cmd) = self.commands.pop() {
            if let FarCommand::Exchange(settings) = cmd {
                self.set_exchange(settings);
                continue;
            }
            let channel = match &cmd {
                FarCommand::Call { channel, .. }
                | FarCommand::Hangup { channel }
                | FarCommand::OffHook { channel }
                | FarCommand::Dial { channel, .. }
                | FarCommand::AutoAnswer { channel, .. }
                | FarCommand::Tone { channel, .. }
                | FarCommand::Record { channel, .. }
                | FarCommand::Echo { channel, .. } => *channel,
                // Taken above: it is for the whole exchange, not one port.
                FarCommand::Exchange(_) => continue,
            };
            let i = usize::from(channel.0);
            if i >= self.ports.len() {
                self.report(FarReport::Refused { channel, reason: "no such port" });
                self.give_back(cmd);
                continue;
            }
            match cmd {
                FarCommand::Call { caller_id, digits, digits_delay_ms, play, hangup_after_ms, .. } => {
                    let p = &mut self.ports[i];
                    let refused = if p.kind != ChannelKind::FxoTrunk {
                        Some("not a trunk port")
                    } else if p.script != Script::Idle || p.last_line != FarLine::Idle {
                        Some("the line is busy")
                    } else {
                        None
                    };
                    if let Some(reason) = refused {
                        self.report(FarReport::Refused { channel, reason });
                        if let Some(audio) = play {
                            self.spend(audio);
                        }
                        continue;
                    }
                    p.pending_digits = digits;
                    p.digits_delay_ticks = ms_to_ticks(digits_delay_ms);
                    p.hangup_after_ticks = hangup_after_ms.map(ms_to_ticks);
                    p.hangup_requested = false;
                    p.stop_fsk();
                    let caller = presented(&caller_id);
                    match self.exchange.caller_id {
                        CallerIdMode::Dtmf => {
                            // ETSI DTMF CLIP: A, the number, C; or B, a reason code, C (10:
                            // withheld, 00: unavailable).
                            let mut cid: heapless::String<{ MAX_DIGITS + 2 }> = heapless::String::new();
                            let (start, body) = match caller {
                                Presented::Nothing => ("", ""),
                                Presented::Number(n) => ("A", n),
                                Presented::Absent(b'P') => ("B", "10"),
                                Presented::Absent(_) => ("B", "00"),
                            };
                            if !start.is_empty() {
                                let _ = cid.push_str(start);
                                let _ = cid.push_str(body);
                                let _ = cid.push('C');
                            }
                            // Caller id is sent fast, the way exchanges do: 70 ms tones, 70 ms gaps.
                            p.generator = DtmfGenerator::new(DTMF_LEVEL_DBM0, 70, 70);
                            p.sending = p.generator.push_digits(&cid).is_ok() && !cid.is_empty();
                            p.script =
                                Script::SendingCallerId { pause_ticks: ms_to_ticks(CALLER_ID_TO_RING_MS) };
                        }
                        CallerIdMode::Fsk => {
                            // Ring at once; the burst goes out in the silence after the first
                            // ring, counted from the ring's start.
                            p.fsk_frame = fsk_frame(caller);
                            if p.fsk_frame.is_some() {
                                p.fsk_due = Some(ms_to_ticks(self.exchange.ring_on_ms + FSK_AFTER_RING_MS));
                            }
                            p.sending = false;
                            p.script = Script::SendingCallerId { pause_ticks: 0 };
                        }
                        CallerIdMode::FskBeforeRing => {
                            p.fsk_frame = fsk_frame(caller);
                            p.sending = false;
                            p.script = if p.fsk_frame.is_some() {
                                Script::Announcing { ticks: 0 }
                            } else {
                                // Nothing to present: no reversal, the line just rings.
                                Script::SendingCallerId { pause_ticks: 0 }
                            };
                        }
                    }
                    self.release_play(i);
                    self.ports[i].play = play.map(|a| (a, 0));
                }
                FarCommand::Hangup { .. } => self.ports[i].hangup_requested = true,
                FarCommand::OffHook { .. } => self.ports[i].offhook_requested = true,
                FarCommand::Dial { digits, .. } => {
                    let p = &mut self.ports[i];
                    p.generator = DtmfGenerator::new(DTMF_LEVEL_DBM0, 100, 100);
                    p.sending = p.generator.push_digits(&digits).is_ok();
                }
                FarCommand::AutoAnswer { after_ms, .. } => {
                    self.ports[i].auto_answer_ticks = after_ms.map(ms_to_ticks)
                }
                FarCommand::Tone { tone, .. } => {
                    self.ports[i].tone =
                        tone.and_then(|t| ToneGenerator::for_progress_tone(&self.zone, t, TONE_LEVEL_DBM0));
                }
                FarCommand::Record { buffer, .. } => {
                    if let Some((old, _)) = self.ports[i].capture.replace((buffer, 0)) {
                        // The earlier recording is handed back as it is.
                        if self.captured.push((channel, old)).is_err() {
                            self.reports_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                FarCommand::Echo { loss_db, .. } => {
                    let p = &mut self.ports[i];
                    if p.kind == ChannelKind::E1Signalling {
                        self.report(FarReport::Refused { channel, reason: "not an audio port" });
                    } else {
                        p.echo_gain = loss_db.map(|db| 10f32.powf(-f32::from(db) / 20.0));
                    }
                }
                FarCommand::Exchange(_) => {}
            }
        }
    }

    /// Changes how the exchange presents caller id. Building a sender allocates nothing, so
    /// this runs on the real-time thread like every command.
    fn set_exchange(&mut self, settings: ExchangeSettings) {
        self.exchange = settings;
        for p in &mut self.ports {
            if let Some(tx) = p.fsk.as_deref_mut() {
                *tx = CallerIdSender::new(settings.standard, FSK_LEVEL_DBM0);
            }
            p.fsk_frame = None;
            p.fsk_due = None;
        }
    }

    /// Seat: the phone's display decodes the caller id the switch sends while it rings.
    fn watch_display(&mut self, i: usize, line: FarLine) {
        let channel = ChannelId(i as u16);
        let p = &mut self.ports[i];
        let Some(display) = p.display.as_deref_mut() else { return };
        if line != FarLine::Alerting {
            return;
        }
        let reports = &mut self.reports;
        let dropped = &self.reports_dropped;
        display.process(&p.heard, |frame| {
            let report = match frame {
                Ok(message) => FarReport::Display { channel, message },
                Err(error) => FarReport::DisplayGarbled { channel, error },
            };
            if reports.push(report).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn listen(&mut self, i: usize, heard: &Block) {
        let channel = ChannelId(i as u16);
        let p = &mut self.ports[i];
        g711::decode_block(p.law, heard, &mut p.heard);
        let reports = &mut self.reports;
        let dropped = &self.reports_dropped;
        let mut report = |r| {
            if reports.push(r).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        let collecting = matches!(p.outgoing, Outgoing::DialTone | Outgoing::Collecting { .. });
        let dialled = &mut p.dialled;
        let mut got_digit = false;
        p.detector.process(&p.heard, |digit| {
            if collecting {
                let _ = dialled.push(digit);
                got_digit = true;
            }
            report(FarReport::HeardDigit { channel, digit })
        });
        if got_digit {
            // The exchange stops dial tone at the first digit.
            p.tone = None;
            p.outgoing = Outgoing::Collecting { idle: 0 };
        }
        let mut heard_tone = p.heard_tone;
        p.tones.process(&p.heard, |tone| {
            heard_tone = if tone == ProgressTone::Silence { None } else { Some(tone) };
            report(FarReport::HeardTone { channel, tone })
        });
        if heard_tone != p.heard_tone {
            p.heard_tone = heard_tone;
            p.heard_tone_ticks = 0;
        } else if heard_tone.is_some() {
            p.heard_tone_ticks = p.heard_tone_ticks.saturating_add(1);
        }
        let speech = p.voice.process(&p.heard);
        if speech != p.speech {
            p.speech = speech;
            report(FarReport::HeardSpeech { channel, speech });
        }
        let full = match &mut p.capture {
            Some((buffer, filled)) => {
                let n = (buffer.len() - *filled).min(BLOCK_SAMPLES);
                buffer[*filled..*filled + n].copy_from_slice(&p.heard[..n]);
                *filled += n;
                *filled == buffer.len()
            }
            None => false,
        };
        if full {
            if let Some((buffer, _)) = p.capture.take() {
                if self.captured.push((channel, buffer)).is_err() {
                    self.reports_dropped.fetch_add(1, Ordering::Relaxed);
                }
                self.report(FarReport::Recorded { channel });
            }
        }
    }

    /// Builds what the far end says this tick: generated digits over the WAV being played.
    fn speak(&mut self, i: usize, say: &mut Block) -> (bool, bool) {
        let p = &mut self.ports[i];
        let mut out = [0i16; BLOCK_SAMPLES];
        if let Some(tone) = &mut p.tone {
            tone.fill(&mut out);
        }
        let mut play_done = false;
        let playing = matches!(p.script, Script::Talking { .. });
        if playing && !p.sending {
            if let Some((audio, pos)) = &mut p.play {
                let n = BLOCK_SAMPLES.min(audio.len() - *pos);
                out[..n].copy_from_slice(&audio[*pos..*pos + n]);
                *pos += n;
                play_done = *pos >= audio.len();
            }
        }
        let mut digits_done = false;
        if p.sending && p.generator.fill(&mut out) < BLOCK_SAMPLES && p.generator.is_idle() {
            p.sending = false;
            digits_done = true;
        }
        if let Some(gain) = p.echo_gain {
            // What the switch sent during the last tick comes back, attenuated.
            for (o, &h) in out.iter_mut().zip(p.heard.iter()) {
                *o = crate::dsp::saturate(f32::from(*o) + f32::from(h) * gain);
            }
        }
        if let Some(tx) = p.fsk.as_deref_mut().filter(|tx| !tx.is_idle()) {
            // The line is on-hook: the caller id burst is all that is on it.
            out = [0; BLOCK_SAMPLES];
            tx.fill(&mut out);
        }
        g711::encode_block(p.law, &out, say);
        (digits_done, play_done)
    }

    /// The exchange's side of a call our side places: number collection, ringing, answer.
    fn exchange(&mut self, i: usize, line: FarLine) -> FarAction {
        let channel = ChannelId(i as u16);
        if line != FarLine::Seized {
            if line == FarLine::Idle {
                self.ports[i].outgoing = Outgoing::None;
            }
            return FarAction::None;
        }
        let zone = &self.zone;
        let p = &mut self.ports[i];
        match p.outgoing {
            Outgoing::Collecting { idle } if idle + 1 >= ms_to_ticks(END_OF_NUMBER_MS) => {
                let number = p.dialled.clone();
                let (tone, next) = if number.starts_with("9999") {
                    (ProgressTone::Busy, Outgoing::Busy)
                } else {
                    (
                        ProgressTone::Ringback,
                        Outgoing::Ringing { ticks: 0, answers: !number.starts_with("8888") },
                    )
                };
                p.tone = ToneGenerator::for_progress_tone(zone, tone, TONE_LEVEL_DBM0);
                p.outgoing = next;
                self.report(FarReport::Dialled { channel, number });
            }
            Outgoing::Collecting { idle } => p.outgoing = Outgoing::Collecting { idle: idle + 1 },
            Outgoing::Ringing { ticks, answers } => {
                if answers && ticks + 1 >= ms_to_ticks(CALLEE_ANSWER_MS) {
                    p.tone = None;
                    p.outgoing = Outgoing::Answered;
                    // From here the called party behaves like any far end in conversation.
                    p.script = Script::Talking { ticks: 0 };
                    p.pending_digits.clear();
                    p.hangup_after_ticks = None;
                    p.hangup_requested = false;
                    return FarAction::Answer;
                }
                p.outgoing = Outgoing::Ringing { ticks: ticks + 1, answers };
            }
            Outgoing::None | Outgoing::DialTone | Outgoing::Busy | Outgoing::Answered => {}
        }
        FarAction::None
    }

    fn trunk(&mut self, i: usize, line: FarLine) -> FarAction {
        let channel = ChannelId(i as u16);
        let p = &mut self.ports[i];
        let mut action = FarAction::None;
        let mut talking_digits_done = false;
        match p.script {
            Script::Idle => {}
            Script::Announcing { ticks } => {
                let fsk_at = ms_to_ticks(FSK_AFTER_REVERSAL_MS);
                p.script = Script::Announcing { ticks: ticks.saturating_add(1) };
                if ticks == 0 {
                    // The reversal tells the line that caller id comes before the ring.
                    action = FarAction::Reverse;
                } else if ticks == fsk_at {
                    p.send_fsk();
                } else if ticks > fsk_at && !p.sending_fsk() {
                    p.script = Script::SendingCallerId { pause_ticks: ms_to_ticks(CALLER_ID_TO_RING_MS) };
                }
            }
            Script::SendingCallerId { pause_ticks } => {
                if !p.sending {
                    if pause_ticks == 0 {
                        p.script = Script::Calling;
                        action = FarAction::Call;
                    } else {
                        p.script = Script::SendingCallerId { pause_ticks: pause_ticks - 1 };
                    }
                }
            }
            Script::Calling => {
                match p.fsk_due {
                    Some(0) => {
                        p.fsk_due = None;
                        p.send_fsk();
                    }
                    Some(due) => p.fsk_due = Some(due - 1),
                    None => {}
                }
                if line == FarLine::Connected {
                    // The exchange stops presenting caller id once the call is answered.
                    p.stop_fsk();
                    p.script = Script::Talking { ticks: 0 };
                } else if p.hangup_requested {
                    action = FarAction::Hangup;
                }
            }
            Script::Talking { ticks } => {
                let ticks = ticks.saturating_add(1);
                p.script = Script::Talking { ticks };
                if ticks == p.digits_delay_ticks.max(1) && !p.pending_digits.is_empty() {
                    p.generator = DtmfGenerator::new(DTMF_LEVEL_DBM0, 100, 100);
                    p.sending = p.generator.push_digits(&p.pending_digits).is_ok();
                    p.pending_digits.clear();
                    talking_digits_done = !p.sending;
                }
                let due = p.hangup_after_ticks.is_some_and(|t| ticks >= t);
                if (due || p.hangup_requested) && line == FarLine::Connected {
                    action = FarAction::Hangup;
                }
            }
        }
        if action == FarAction::Call {
            self.report(FarReport::Ringing { channel, at_ns: monotonic_ns() });
        }
        if talking_digits_done {
            self.report(FarReport::DigitsSent { channel });
        }
        action
    }

    fn seat(&mut self, i: usize, line: FarLine) -> FarAction {
        let p = &mut self.ports[i];
        let mut action = FarAction::None;
        if line == FarLine::Alerting {
            p.ringing_ticks = p.ringing_ticks.saturating_add(1);
            if p.auto_answer_ticks.is_some_and(|t| p.ringing_ticks >= t) {
                action = FarAction::OffHook;
                p.agent = true;
            }
        } else {
            p.ringing_ticks = 0;
        }
        if line == FarLine::Idle {
            p.agent = false;
        }
        // An agent hangs up a second after hearing the caller has gone (busy or congestion
        // tone), or after picking up a ringing phone that another seat answered first.
        let gone =
            matches!(p.heard_tone, Some(ProgressTone::Busy | ProgressTone::Congestion | ProgressTone::Dial));
        if p.agent && gone && p.heard_tone_ticks >= TICKS_PER_SECOND && line != FarLine::Idle {
            p.agent = false;
            p.hangup_requested = true;
        }
        if std::mem::take(&mut p.offhook_requested) && matches!(line, FarLine::Idle | FarLine::Alerting) {
            action = FarAction::OffHook;
        }
        if std::mem::take(&mut p.hangup_requested) && matches!(line, FarLine::Connected | FarLine::Seized) {
            action = FarAction::Hangup;
        }
        action
    }
}

impl FarEnd for FarEndSim {
    fn tick(&mut self, ch: &ChannelInfo, line: FarLine, heard: &Block, say: &mut Block) -> FarAction {
        let i = usize::from(ch.id.0);
        if i == 0 {
            self.take_commands();
        }
        let Some(last) = self.ports.get(i).map(|p| p.last_line) else {
            say.fill(ch.law.silence());
            return FarAction::None;
        };
        if line != last {
            self.ports[i].last_line = line;
            let channel = ch.id;
            match line {
                // A trunk's ringing is reported when the exchange starts it (see `trunk`),
                // in the very tick the card raises the ring.
                FarLine::Alerting if self.ports[i].kind != ChannelKind::FxoTrunk => {
                    // A new ring starts with a blank display.
                    if let Some(display) = self.ports[i].display.as_deref_mut() {
                        display.reset();
                    }
                    self.report(FarReport::Ringing { channel, at_ns: monotonic_ns() })
                }
                FarLine::Connected => self.report(FarReport::Connected { channel }),
                FarLine::Idle if matches!(last, FarLine::Connected | FarLine::Seized | FarLine::Alerting) => {
                    // Our side released the line (or stopped ringing) before the far end did.
                    let p = &mut self.ports[i];
                    if p.kind == ChannelKind::FxoTrunk {
                        // The exchange stops its tones once our side has released.
                        p.tone = None;
                        if p.script != Script::Idle {
                            p.script = Script::Idle;
                            p.sending = false;
                            p.stop_fsk();
                            self.release_play(i);
                        }
                    }
                    if last != FarLine::Alerting {
                        self.report(FarReport::Released { channel });
                    }
                }
                FarLine::Alerting | FarLine::Released | FarLine::Idle | FarLine::Seized => {}
            }
        }
        if self.ports[i].kind == ChannelKind::FxoTrunk && line == FarLine::Seized && last != FarLine::Seized {
            // Our side seized the line: the exchange gives dial tone and waits for a number.
            // (This is also what our side hears if it answers just after a caller gave up.)
            let p = &mut self.ports[i];
            p.outgoing = Outgoing::DialTone;
            p.dialled.clear();
            p.tone = ToneGenerator::for_progress_tone(&self.zone, ProgressTone::Dial, TONE_LEVEL_DBM0);
        }
        self.listen(i, heard);
        if self.ports[i].kind == ChannelKind::FxsSeat {
            self.watch_display(i, line);
        }
        let (digits_done, play_done) = self.speak(i, say);
        if digits_done && matches!(self.ports[i].script, Script::Talking { .. }) {
            self.report(FarReport::DigitsSent { channel: ch.id });
        }
        if play_done {
            self.release_play(i);
            self.report(FarReport::PlayDone { channel: ch.id });
        }
        let action = match self.ports[i].kind {
            ChannelKind::FxoTrunk => match self.exchange(i, line) {
                FarAction::None => self.trunk(i, line),
                action => action,
            },
            ChannelKind::FxsSeat | ChannelKind::Sound => self.seat(i, line),
            ChannelKind::E1Bearer | ChannelKind::E1Signalling => FarAction::None,
        };
        let mut action = action;
        if action == FarAction::Hangup {
            let p = &mut self.ports[i];
            p.hangup_requested = false;
            if p.kind == ChannelKind::FxoTrunk {
                if line == FarLine::Connected && self.disconnect == Disconnect::BusyTone {
                    // The exchange keeps the loop and plays busy tone instead.
                    p.tone =
                        ToneGenerator::for_progress_tone(&self.zone, ProgressTone::Busy, TONE_LEVEL_DBM0);
                    action = FarAction::None;
                }
                p.script = Script::Idle;
                p.sending = false;
                p.stop_fsk();
                self.release_play(i);
            }
            self.report(FarReport::HungUp { channel: ch.id });
        }
        action
    }
}
