//! The real-time media engine.
//!
//! One engine runs per card, on its own thread. Every tick it takes one 20 ms block per
//! channel from the card and, for every channel: decodes G.711, cancels echo, detects DTMF
//! and call-progress tones, then builds what the channel sends: the bridged partner's audio,
//! a prompt or a tone, generated DTMF. It hands a mixed copy of recorded channels to the
//! recording writer and encodes the result back to the card.
//!
//! FSK caller id runs here too: every trunk channel has a demodulator that runs only while
//! the call model holds its caller id window open, and hands each checked frame to the
//! control plane, which parses it; every seat channel has a modulator that sends a frame the
//! control plane encoded, on hook between the first and second ring (the card keeps the
//! ringing cadence; the engine only supplies the audio).
//!
//! Line tests use the same paths: a test tone is a play command, `MeasureLevel` meters the
//! raw received line (before the echo canceller) for a number of blocks, and a loopback is a
//! channel listening to itself (its echo canceller is bypassed meanwhile, and its recording
//! keeps each signal once).
//!
//! The tick never allocates, locks or makes a system call (the card's own wait for the next
//! block excepted): all state is sized when the engine is built, commands come in and events
//! go out through fixed-capacity single-producer single-consumer rings, and counters are
//! atomics. A full ring gives the value back, and the loss is counted in [`EngineStats`].

mod stats;
mod thread;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_driver_api::{
    Card, CardError, ChannelEvent, ChannelId, ChannelKind, Law, LineCommand, LineEvent, TickIo,
    BLOCK_SAMPLES, TICK_MICROS,
};

use crate::audio::recorder::RecBlock;
use crate::dsp::callerid::{CallerIdError, CallerIdReceiver, CallerIdSender, RawMessage, Standard};
use crate::dsp::dtmf::{DtmfDetector, DtmfGenerator};
use crate::dsp::echo::EchoCanceller;
use crate::dsp::fsk::FskError;
use crate::dsp::g711;
use crate::dsp::level::LevelMeter;
use crate::dsp::tone::{ProgressTone, ToneDetector, ToneZone};
use crate::dsp::tonegen::{Cadence, ToneGenerator};

pub use stats::{EngineStats, StatsSnapshot};
pub use thread::{spawn, EngineHandle, SpawnError};

/// Most channels one channel can hear at once.
pub const MAX_SOURCES: usize = 4;

/// Most digits one `SendDtmf` command carries.
pub const MAX_DTMF_DIGITS: usize = 32;

/// Level of the DTMF we generate, in dBm0 per tone.
const DTMF_LEVEL_DBM0: f32 = -10.0;

/// Level of the call-progress tones we play, per frequency, in dBm0.
const TONE_LEVEL_DBM0: f32 = -13.0;

/// Level of the FSK caller id we send to seat phones, in dBm0: what GR-30 and EN 300 659
/// exchanges send.
const CALLER_ID_LEVEL_DBM0: f32 = -13.5;

/// Highest test tone level, in dBm0: a sine just below the G.711 overload point.
pub const MAX_TEST_TONE_DBM0: i8 = 3;

/// Lowest level a [`LevelReport`] gives, in centi-dBm0 (-90 dBm0): what silence reads.
pub const LEVEL_FLOOR_CDBM0: i32 = -9000;

/// What [`EngineCmd::MeasureLevel`] measured on the raw line, as [`EngineEvent::Level`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelReport {
    /// RMS level of everything received, in hundredths of a dBm0 (at least
    /// [`LEVEL_FLOOR_CDBM0`]).
    pub total_cdbm0: i32,
    /// Level at the measured frequency (Hann-windowed Goertzel over 20 ms segments, about
    /// 75 Hz wide), in hundredths of a dBm0: what a sine at that frequency reads on its own
    /// (at least [`LEVEL_FLOOR_CDBM0`]; the floor when no frequency was asked for).
    pub tone_cdbm0: i32,
    /// Largest absolute linear sample value received (0-32768).
    pub peak: u16,
    /// 20 ms blocks measured.
    pub blocks: u16,
}

/// Commands handled per tick at most, so a flood of commands cannot stretch one tick.
const MAX_COMMANDS_PER_TICK: usize = 256;

/// An index into the engine's prompt table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptId(pub u16);

/// The prompt every daemon loads first: music for callers on hold.
pub const HOLD_MUSIC: PromptId = PromptId(0);

/// A short, gentle, looping tune for callers on hold, synthesised so that the appliance
/// ships no audio files: a few bars of a pentatonic arpeggio with soft note envelopes,
/// around -20 dBm0.
pub fn hold_music() -> Box<[i16]> {
    const NOTES: [f32; 16] = [
        523.25, 587.33, 659.25, 783.99, 880.0, 783.99, 659.25, 587.33, 523.25, 659.25, 783.99, 1046.5, 880.0,
        783.99, 659.25, 587.33,
    ];
    let note_len = 3200; // 400 ms
    let amplitude = crate::dsp::dbm0_to_amplitude(-20.0);
    let mut out = Vec::with_capacity(NOTES.len() * note_len);
    for f in NOTES {
        let step = 2.0 * std::f32::consts::PI * f / 8000.0;
        for n in 0..note_len {
            // A quick attack and a long decay, so the notes do not click.
            let t = n as f32 / note_len as f32;
            let envelope = (t * 20.0).min(1.0) * (1.0 - t).powf(1.5);
            let s = (step * n as f32).sin() * amplitude * envelope;
            out.push(s as i16);
        }
    }
    out.into_boxed_slice()
}

/// The prompt bank: linear 8 kHz audio in a fixed number of slots, each filled once by the
/// control plane (prompt files when flows load, TTS renderings when a call needs one) and
/// then only read. The engine reads a slot with one atomic load and never frees one: the
/// control plane keeps the bank alive, so the real-time thread neither locks nor frees.
#[derive(Debug)]
pub struct Prompts {
    slots: Box<[std::sync::OnceLock<Box<[i16]>>]>,
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts::with_capacity(1)
    }
}

impl Prompts {
    /// A bank of `n` empty slots.
    pub fn with_capacity(n: usize) -> Prompts {
        Prompts { slots: (0..n.max(1)).map(|_| std::sync::OnceLock::new()).collect() }
    }

    /// A bank whose first slots hold `audio`.
    pub fn from_audio(audio: Vec<Box<[i16]>>, capacity: usize) -> Prompts {
        let bank = Prompts::with_capacity(capacity.max(audio.len()));
        for (slot, a) in bank.slots.iter().zip(audio) {
            let _ = slot.set(a);
        }
        bank
    }

    /// Fills slot `id` once; the audio comes back if the slot is full or does not exist.
    pub fn set(&self, id: PromptId, audio: Box<[i16]>) -> Result<(), Box<[i16]>> {
        match self.slots.get(usize::from(id.0)) {
            Some(slot) => slot.set(audio),
            None => Err(audio),
        }
    }

    /// The audio in a slot, if it is filled.
    pub fn get(&self, index: usize) -> Option<&[i16]> {
        self.slots.get(index).and_then(|s| s.get()).map(|a| &a[..])
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

/// A command from the control plane to the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineCmd {
    Line {
        channel: ChannelId,
        command: LineCommand,
    },
    /// Connects two channels both ways.
    Bridge {
        a: ChannelId,
        b: ChannelId,
    },
    /// Disconnects a channel from its partner (both ways).
    Unbridge {
        channel: ChannelId,
    },
    /// Sets exactly which channels' received audio `channel` hears, mixed: the building block
    /// of monitoring, whispering and three-party conferences. Other channels are unchanged.
    Listen {
        channel: ChannelId,
        sources: heapless::Vec<ChannelId, MAX_SOURCES>,
    },
    PlayTone {
        channel: ChannelId,
        tone: ProgressTone,
    },
    PlayPrompt {
        channel: ChannelId,
        prompt: PromptId,
        repeat: bool,
    },
    /// Stops a tone or a prompt.
    StopPlay {
        channel: ChannelId,
    },
    SendDtmf {
        channel: ChannelId,
        digits: heapless::String<MAX_DTMF_DIGITS>,
    },
    /// Starts handing the channel's audio (both directions mixed) to the recorder under `slot`.
    RecordStart {
        channel: ChannelId,
        slot: u16,
    },
    RecordStop {
        channel: ChannelId,
    },
    SetEchoCanceller {
        channel: ChannelId,
        enabled: bool,
    },
    /// Opens (`on`) or closes the FSK caller id window of a trunk channel: its audio is
    /// demodulated only while the window is open, so speech on a call can never be taken
    /// for a message, and an idle trunk costs nothing.
    CallerIdListen {
        channel: ChannelId,
        on: bool,
    },
    /// Sends an FSK caller id frame to the phone on a seat channel now. The phone is on-hook
    /// between two rings, so the burst is all the channel sends while it lasts; the card's
    /// ringing goes on as before. The burst stops if the phone goes off-hook.
    SendCallerId {
        channel: ChannelId,
        message: RawMessage,
    },
    /// Line test: sends a steady sine of `freq_hz` (1-3999 Hz) at `level_dbm0` (at most
    /// [`MAX_TEST_TONE_DBM0`]) until `StopPlay` or another play command. Like the other
    /// play commands it replaces what the channel would send from its sources.
    PlayTestTone {
        channel: ChannelId,
        freq_hz: u16,
        level_dbm0: i8,
    },
    /// Line test: measures what the channel receives over the next `blocks` (at least one)
    /// 20 ms blocks, from the block of the tick that takes the command, then raises
    /// [`EngineEvent::Level`]. The raw line is measured: before the echo canceller, which
    /// would otherwise take a test tone coming back from the far end for echo and remove
    /// it. `freq_hz` is the frequency of the selective reading (0: total level only). A
    /// new measurement on the channel replaces the one running.
    MeasureLevel {
        channel: ChannelId,
        freq_hz: u16,
        blocks: u16,
    },
}

/// Something the engine observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineEvent {
    Line(ChannelEvent),
    Dtmf {
        channel: ChannelId,
        digit: char,
    },
    Tone {
        channel: ChannelId,
        tone: ProgressTone,
    },
    /// A prompt played to its end (not raised for repeating prompts or tones).
    PlayDone {
        channel: ChannelId,
    },
    /// The digits of a `SendDtmf` were all sent.
    DtmfSent {
        channel: ChannelId,
    },
    /// A command could not be carried out.
    CommandFailed {
        channel: ChannelId,
        reason: &'static str,
    },
    /// An FSK caller id frame received in a trunk's open window, framed and checksum-checked.
    /// The control plane parses it: parsing builds strings, which the tick must not.
    CallerId {
        channel: ChannelId,
        message: RawMessage,
    },
    /// An FSK caller id frame was lost in a trunk's open window: a bad checksum, a lost
    /// character, or the signal ending in the middle of the frame.
    CallerIdLost {
        channel: ChannelId,
        error: CallerIdError,
    },
    /// The result of a `MeasureLevel`.
    Level {
        channel: ChannelId,
        level: LevelReport,
    },
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub tone_zone: ToneZone,
    /// Whether every channel starts with its echo canceller on.
    pub echo_canceller: bool,
    /// Whether ticks are paced in real time, so late ticks count as deadline misses.
    pub realtime: bool,
    pub command_capacity: usize,
    pub event_capacity: usize,
    /// The FSK caller id standard whose modulation and preamble seat phones get. Trunks
    /// decode both modulations whatever it is.
    pub caller_id_standard: Standard,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            tone_zone: ToneZone::china(),
            echo_canceller: false,
            realtime: true,
            command_capacity: 1024,
            event_capacity: 4096,
            caller_id_standard: Standard::Ydt1277,
        }
    }
}

enum Play {
    Idle,
    Tone(ToneGenerator),
    Prompt { index: usize, position: usize, repeat: bool },
}

/// Per-channel DSP state, built once.
struct Chan {
    law: Law,
    audio: bool,
    detect_tones: bool,
    rx: [i16; BLOCK_SAMPLES],
    tx: [i16; BLOCK_SAMPLES],
    dtmf: DtmfDetector,
    tones: ToneDetector,
    generator: DtmfGenerator,
    sending_dtmf: bool,
    play: Play,
    /// The channels whose received audio this channel sends, mixed. The channel itself may
    /// be one of them (a loopback): then its echo canceller is bypassed, because it would
    /// take the far end's own signal coming back for echo.
    sources: heapless::Vec<u16, MAX_SOURCES>,
    record: Option<u16>,
    echo: Box<EchoCanceller>,
    echo_on: bool,
    /// Trunk channels: the FSK caller id demodulator, and whether the window is open.
    cid_rx: Option<Box<CallerIdReceiver>>,
    cid_listen: bool,
    /// Seat channels: the FSK caller id modulator, and whether the phone is off-hook (as the
    /// card last reported), when a burst can no longer be sent.
    cid_tx: Option<Box<CallerIdSender>>,
    off_hook: bool,
    /// The line-test meter of `MeasureLevel`, and the blocks it still has to measure and
    /// has measured (nothing left: no measurement running).
    meter: Box<LevelMeter>,
    measure_left: u16,
    measure_blocks: u16,
}

/// The real-time side of the engine, driven by [`Engine::tick`].
pub struct Engine<C: Card> {
    card: C,
    io: TickIo,
    chans: Vec<Chan>,
    zone: ToneZone,
    prompts: Arc<Prompts>,
    commands: rtrb::Consumer<EngineCmd>,
    events: rtrb::Producer<EngineEvent>,
    recorder: Option<rtrb::Producer<RecBlock>>,
    stats: Arc<EngineStats>,
    realtime: bool,
    started: Option<Instant>,
    ticks: u64,
}

/// The control-plane ends of the engine's rings.
pub struct EngineEnds {
    pub commands: rtrb::Producer<EngineCmd>,
    pub events: rtrb::Consumer<EngineEvent>,
    pub stats: Arc<EngineStats>,
}

impl<C: Card> Engine<C> {
    /// Builds an engine for a card. Everything the tick needs is allocated here.
    pub fn new(
        card: C,
        config: &EngineConfig,
        prompts: Arc<Prompts>,
        recorder: Option<rtrb::Producer<RecBlock>>,
    ) -> (Engine<C>, EngineEnds) {
        let info = card.info().clone();
        let io = TickIo::for_card(&info);
        let chans = info
            .channels
            .iter()
            .map(|c| Chan {
                law: c.law,
                audio: c.kind.carries_audio(),
                detect_tones: matches!(c.kind, ChannelKind::FxoTrunk | ChannelKind::E1Bearer),
                rx: [0; BLOCK_SAMPLES],
                tx: [0; BLOCK_SAMPLES],
                dtmf: DtmfDetector::new(),
                tones: ToneDetector::new(&config.tone_zone),
                generator: DtmfGenerator::new(DTMF_LEVEL_DBM0, 100, 100),
                sending_dtmf: false,
                play: Play::Idle,
                sources: heapless::Vec::new(),
                record: None,
                echo: Box::new(EchoCanceller::new()),
                echo_on: config.echo_canceller,
                cid_rx: (c.kind == ChannelKind::FxoTrunk)
                    .then(|| Box::new(CallerIdReceiver::for_standard(config.caller_id_standard))),
                cid_listen: false,
                cid_tx: (c.kind == ChannelKind::FxsSeat)
                    .then(|| Box::new(CallerIdSender::new(config.caller_id_standard, CALLER_ID_LEVEL_DBM0))),
                off_hook: false,
                meter: Box::new(LevelMeter::new()),
                measure_left: 0,
                measure_blocks: 0,
            })
            .collect();
        let (cmd_tx, cmd_rx) = rtrb::RingBuffer::new(config.command_capacity);
        let (ev_tx, ev_rx) = rtrb::RingBuffer::new(config.event_capacity);
        let stats = Arc::new(EngineStats::default());
        let engine = Engine {
            card,
            io,
            chans,
            zone: config.tone_zone.clone(),
            prompts,
            commands: cmd_rx,
            events: ev_tx,
            recorder,
            stats: stats.clone(),
            realtime: config.realtime,
            started: None,
            ticks: 0,
        };
        (engine, EngineEnds { commands: cmd_tx, events: ev_rx, stats })
    }

    /// The card, for inspection.
    pub fn card(&self) -> &C {
        &self.card
    }

    /// Runs one tick: waits for the card, then processes every channel.
    pub fn tick(&mut self) -> Result<(), CardError> {
        self.card.tick(&mut self.io)?;
        let began = Instant::now();
        let started = *self.started.get_or_insert(began);
        self.process();
        let done = Instant::now();
        self.ticks += 1;

        let busy = done.saturating_duration_since(began);
        let s = &self.stats;
        s.ticks.fetch_add(1, Ordering::Relaxed);
        s.busy_ns.fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
        s.max_tick_ns.fetch_max(busy.as_nanos() as u64, Ordering::Relaxed);
        if self.realtime {
            // Tick n must be done before the block for tick n + 1 is due.
            let due = started + Duration::from_micros(TICK_MICROS * self.ticks);
            if done > due {
                s.deadline_misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn emit(&mut self, event: EngineEvent) {
        if self.events.push(event).is_err() {
            self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn process(&mut self) {
        if self.io.events_lost > 0 {
            self.stats.card_events_lost.fetch_add(u64::from(self.io.events_lost), Ordering::Relaxed);
        }
        for i in 0..self.io.events.len() {
            let event = self.io.events[i];
            self.hook(event);
            self.emit(EngineEvent::Line(event));
        }
        for _ in 0..MAX_COMMANDS_PER_TICK {
            let Ok(cmd) = self.commands.pop() else { break };
            self.command(cmd);
        }
        self.receive();
        self.transmit();
    }

    /// Pass 1: decode what every channel received and run the detectors on it.
    fn receive(&mut self) {
        for i in 0..self.chans.len() {
            let chan = &mut self.chans[i];
            if !chan.audio {
                continue;
            }
            g711::decode_block(chan.law, &self.io.rx[i], &mut chan.rx);
            let channel = ChannelId(i as u16);
            let events = &mut self.events;
            let stats = &self.stats;
            let mut emit = |event| {
                if events.push(event).is_err() {
                    stats.events_dropped.fetch_add(1, Ordering::Relaxed);
                }
            };
            if chan.measure_left > 0 {
                // The raw line, before the echo canceller.
                chan.meter.process(&chan.rx);
                chan.measure_left -= 1;
                if chan.measure_left == 0 {
                    let r = chan.meter.reading();
                    let centi = |dbm0: f32| ((dbm0 * 100.0).round() as i32).max(LEVEL_FLOOR_CDBM0);
                    let level = LevelReport {
                        total_cdbm0: centi(r.total_dbm0),
                        tone_cdbm0: centi(r.tone_dbm0),
                        peak: r.peak,
                        blocks: chan.measure_blocks,
                    };
                    emit(EngineEvent::Level { channel, level });
                }
            }
            let looped = chan.sources.contains(&(i as u16));
            if chan.echo_on && !looped {
                // The reference is what we sent on the previous tick, still in `tx`.
                for (r, &t) in chan.rx.iter_mut().zip(chan.tx.iter()) {
                    *r = chan.echo.process(t, *r);
                }
            }
            chan.dtmf.process(&chan.rx, |digit| emit(EngineEvent::Dtmf { channel, digit }));
            if chan.detect_tones {
                chan.tones.process(&chan.rx, |tone| emit(EngineEvent::Tone { channel, tone }));
            }
            if let (true, Some(cid)) = (chan.cid_listen, chan.cid_rx.as_deref_mut()) {
                cid.process(&chan.rx, |frame| match frame {
                    Ok(message) => {
                        stats.caller_id_received.fetch_add(1, Ordering::Relaxed);
                        emit(EngineEvent::CallerId { channel, message });
                    }
                    Err(error) => {
                        stats.caller_id_errors.fetch_add(1, Ordering::Relaxed);
                        emit(EngineEvent::CallerIdLost { channel, error });
                    }
                });
            }
        }
    }

    /// Pass 2: build, record and encode what every channel sends.
    fn transmit(&mut self) {
        for i in 0..self.chans.len() {
            if !self.chans[i].audio {
                continue;
            }
            // What the channel sends from other channels, tones, prompts and digits; its own
            // audio when it listens to itself (a loopback) is added at the end, so that the
            // recording has each signal once.
            let mut out = [0i16; BLOCK_SAMPLES];
            let mut looped = false;
            for k in 0..self.chans[i].sources.len() {
                let source = usize::from(self.chans[i].sources[k]);
                if source == i {
                    looped = true;
                    continue;
                }
                for (o, &s) in out.iter_mut().zip(self.chans[source].rx.iter()) {
                    *o = o.saturating_add(s);
                }
            }
            let channel = ChannelId(i as u16);
            let mut done = None;
            // Play, digits and caller id replace what the sources send: always from the
            // start of the block, up to here.
            let mut covered = 0;
            let chan = &mut self.chans[i];
            match &mut chan.play {
                Play::Idle => {}
                Play::Tone(generator) => {
                    covered = generator.fill(&mut out);
                }
                Play::Prompt { index, position, repeat } => {
                    let audio = self.prompts.get(*index).unwrap_or(&[]);
                    let mut written = 0;
                    while written < BLOCK_SAMPLES && !audio.is_empty() {
                        let n = (BLOCK_SAMPLES - written).min(audio.len() - *position);
                        out[written..written + n].copy_from_slice(&audio[*position..*position + n]);
                        written += n;
                        *position += n;
                        if *position == audio.len() {
                            if !*repeat {
                                break;
                            }
                            *position = 0;
                        }
                    }
                    covered = written;
                    if *position >= audio.len() && !*repeat {
                        done = Some(EngineEvent::PlayDone { channel });
                    }
                }
            }
            if done.is_some() {
                chan.play = Play::Idle;
            }
            if chan.sending_dtmf {
                let n = chan.generator.fill(&mut out);
                covered = covered.max(n);
                if n < BLOCK_SAMPLES && chan.generator.is_idle() {
                    chan.sending_dtmf = false;
                    done = done.or(Some(EngineEvent::DtmfSent { channel }));
                }
            }
            if let Some(cid) = chan.cid_tx.as_deref_mut().filter(|c| !c.is_idle()) {
                // The phone is on-hook between rings and hears nothing else: the burst alone
                // goes out, and silence after its end.
                out = [0; BLOCK_SAMPLES];
                cid.fill(&mut out);
                covered = BLOCK_SAMPLES;
                if cid.is_idle() {
                    self.stats.caller_id_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            chan.tx = out;
            if looped {
                // The loopback: what the channel received this tick goes straight back.
                for (t, &r) in chan.tx[covered..].iter_mut().zip(chan.rx[covered..].iter()) {
                    *t = t.saturating_add(r);
                }
            }
            g711::encode_block(chan.law, &chan.tx, &mut self.io.tx[i]);
            if let Some(slot) = chan.record {
                // Both directions mixed; a loopback's returned audio is left out, or the
                // recording would have what the channel received twice.
                let mut block = RecBlock { slot, samples: [0; BLOCK_SAMPLES] };
                for ((m, &r), &t) in block.samples.iter_mut().zip(chan.rx.iter()).zip(out.iter()) {
                    *m = r.saturating_add(t);
                }
                let lost = match &mut self.recorder {
                    Some(rec) => rec.push(block).is_err(),
                    None => true,
                };
                if lost {
                    self.stats.recording_blocks_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(event) = done {
                self.emit(event);
            }
        }
    }

    fn command(&mut self, cmd: EngineCmd) {
        let n = self.chans.len();
        let valid = |c: ChannelId| usize::from(c.0) < n;
        let channel = match &cmd {
            EngineCmd::Line { channel, .. }
            | EngineCmd::Unbridge { channel }
            | EngineCmd::Listen { channel, .. }
            | EngineCmd::PlayTone { channel, .. }
            | EngineCmd::PlayPrompt { channel, .. }
            | EngineCmd::StopPlay { channel }
            | EngineCmd::SendDtmf { channel, .. }
            | EngineCmd::RecordStart { channel, .. }
            | EngineCmd::RecordStop { channel }
            | EngineCmd::SetEchoCanceller { channel, .. }
            | EngineCmd::CallerIdListen { channel, .. }
            | EngineCmd::SendCallerId { channel, .. }
            | EngineCmd::PlayTestTone { channel, .. }
            | EngineCmd::MeasureLevel { channel, .. } => *channel,
            EngineCmd::Bridge { a, b } => {
                if !valid(*b) {
                    *b
                } else {
                    *a
                }
            }
        };
        if !valid(channel) {
            self.emit(EngineEvent::CommandFailed { channel, reason: "no such channel" });
            return;
        }
        let i = usize::from(channel.0);
        match cmd {
            EngineCmd::Line { command, .. } => {
                if self.card.command(channel, command).is_err() {
                    self.emit(EngineEvent::CommandFailed {
                        channel,
                        reason: "line command refused by the card",
                    });
                }
            }
            EngineCmd::Bridge { a, b } if a == b => {
                self.emit(EngineEvent::CommandFailed {
                    channel,
                    reason: "a channel cannot be bridged with itself (listen to itself for a loopback)",
                });
            }
            EngineCmd::Bridge { a, b } => {
                self.unbridge(a);
                self.unbridge(b);
                // Capacity is at least one: these pushes cannot fail on an empty list.
                let _ = self.chans[usize::from(a.0)].sources.push(b.0);
                let _ = self.chans[usize::from(b.0)].sources.push(a.0);
            }
            EngineCmd::Unbridge { .. } => self.unbridge(channel),
            EngineCmd::Listen { sources, .. } => {
                // A channel may listen to itself: a loopback for line tests.
                if sources.iter().any(|s| !valid(*s)) {
                    self.emit(EngineEvent::CommandFailed { channel, reason: "bad listen source" });
                } else {
                    self.chans[i].sources = sources.iter().map(|s| s.0).collect();
                }
            }
            EngineCmd::PlayTone { tone, .. } => {
                match ToneGenerator::for_progress_tone(&self.zone, tone, TONE_LEVEL_DBM0) {
                    Some(generator) => self.chans[i].play = Play::Tone(generator),
                    None => self.emit(EngineEvent::CommandFailed {
                        channel,
                        reason: "the tone zone has no such tone",
                    }),
                }
            }
            EngineCmd::PlayPrompt { prompt, repeat, .. } => {
                if self.prompts.get(usize::from(prompt.0)).is_some() {
                    self.chans[i].play = Play::Prompt { index: usize::from(prompt.0), position: 0, repeat };
                } else {
                    self.emit(EngineEvent::CommandFailed { channel, reason: "no such prompt" });
                }
            }
            EngineCmd::StopPlay { .. } => self.chans[i].play = Play::Idle,
            EngineCmd::SendDtmf { digits, .. } => match self.chans[i].generator.push_digits(&digits) {
                Ok(()) => self.chans[i].sending_dtmf = true,
                Err(_) => {
                    self.emit(EngineEvent::CommandFailed { channel, reason: "bad or too many DTMF digits" })
                }
            },
            EngineCmd::RecordStart { slot, .. } => self.chans[i].record = Some(slot),
            EngineCmd::RecordStop { .. } => self.chans[i].record = None,
            EngineCmd::SetEchoCanceller { enabled, .. } => self.chans[i].echo_on = enabled,
            EngineCmd::CallerIdListen { on, .. } => {
                let chan = &mut self.chans[i];
                match chan.cid_rx.as_deref_mut() {
                    Some(cid) => {
                        // Each window starts clean: a frame cut off at the end of the last
                        // one must not join the next one's.
                        if on != chan.cid_listen {
                            cid.reset();
                        }
                        chan.cid_listen = on;
                    }
                    None => self.emit(EngineEvent::CommandFailed {
                        channel,
                        reason: "no caller id receiver: not a trunk port",
                    }),
                }
            }
            EngineCmd::PlayTestTone { freq_hz, level_dbm0, .. } => {
                let refused = if !self.chans[i].audio {
                    Some("no audio on this channel")
                } else if freq_hz == 0 || freq_hz >= 4000 {
                    Some("test tone frequency out of range (1-3999 Hz)")
                } else if level_dbm0 > MAX_TEST_TONE_DBM0 {
                    Some("test tone level too high (at most +3 dBm0)")
                } else {
                    None
                };
                match refused {
                    Some(reason) => self.emit(EngineEvent::CommandFailed { channel, reason }),
                    None => {
                        let generator = ToneGenerator::single(
                            f32::from(freq_hz),
                            f32::from(level_dbm0),
                            Cadence::continuous(),
                        );
                        self.chans[i].play = Play::Tone(generator);
                    }
                }
            }
            EngineCmd::MeasureLevel { freq_hz, blocks, .. } => {
                let refused = if !self.chans[i].audio {
                    Some("no audio on this channel")
                } else if blocks == 0 {
                    Some("a level measurement needs at least one block")
                } else if freq_hz >= 4000 {
                    Some("measuring frequency out of range (0-3999 Hz)")
                } else {
                    None
                };
                match refused {
                    Some(reason) => self.emit(EngineEvent::CommandFailed { channel, reason }),
                    None => {
                        let chan = &mut self.chans[i];
                        chan.meter.start((freq_hz > 0).then_some(f32::from(freq_hz)));
                        chan.measure_left = blocks;
                        chan.measure_blocks = blocks;
                    }
                }
            }
            EngineCmd::SendCallerId { message, .. } => {
                let chan = &mut self.chans[i];
                let refused = match chan.cid_tx.as_deref_mut() {
                    None => Some("no caller id sender: not a seat port"),
                    // Caller id to an off-hook phone needs the alert signal of call waiting
                    // caller id first; without it the user would hear the modem.
                    Some(_) if chan.off_hook => Some("caller id not sent: the phone is off-hook"),
                    Some(cid) => match cid.send(&message) {
                        Ok(()) => None,
                        Err(FskError::Busy) => Some("caller id not sent: a burst is still going out"),
                        Err(FskError::TooLong(_)) => Some("caller id not sent: the message is too long"),
                    },
                };
                if let Some(reason) = refused {
                    self.stats.caller_id_not_sent.fetch_add(1, Ordering::Relaxed);
                    self.emit(EngineEvent::CommandFailed { channel, reason });
                }
            }
        }
    }

    /// Follows the hook state of seat phones, and stops a caller id burst when the phone
    /// is picked up in the middle of it: the user must not hear the modem.
    fn hook(&mut self, event: ChannelEvent) {
        let Some(chan) = self.chans.get_mut(usize::from(event.channel.0)) else { return };
        let Some(cid) = chan.cid_tx.as_deref_mut() else { return };
        match event.event {
            LineEvent::OffHook => {
                chan.off_hook = true;
                if !cid.is_idle() {
                    cid.transmitter_mut().abort();
                    self.stats.caller_id_not_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            LineEvent::OnHook => chan.off_hook = false,
            _ => {}
        }
    }

    /// Stops the channel hearing anyone, and everyone hearing it.
    fn unbridge(&mut self, channel: ChannelId) {
        let i = usize::from(channel.0);
        self.chans[i].sources.clear();
        for chan in self.chans.iter_mut() {
            chan.sources.retain(|s| usize::from(*s) != i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::callerid::{CallerId, CallerIdError, Format};
    use switchboard_driver_api::{Block, ChannelInfo, Pacing};
    use switchboard_driver_sim::{FarAction, FarEnd, FarLine, SimCard, SimConfig};

    const TRUNK: ChannelId = ChannelId(0);
    const SEAT: ChannelId = ChannelId(1);

    /// The far ends of one trunk and one seat: the exchange sends FSK bursts on the trunk at
    /// given ticks, and the phone on the seat keeps what it hears and lifts the handset when
    /// told to.
    struct Lines {
        exchange: CallerIdSender,
        bursts: Vec<(u64, Vec<u8>)>,
        heard: Vec<i16>,
        off_hook_at: Option<u64>,
        tick: u64,
    }

    impl FarEnd for Lines {
        fn tick(&mut self, ch: &ChannelInfo, _: FarLine, heard: &Block, say: &mut Block) -> FarAction {
            let mut out = [0i16; BLOCK_SAMPLES];
            let mut action = FarAction::None;
            if ch.id == TRUNK {
                self.tick += 1;
                if let Some(i) = self.bursts.iter().position(|(t, _)| *t == self.tick) {
                    let (_, bytes) = self.bursts.remove(i);
                    let preamble = self.exchange.preamble();
                    self.exchange.transmitter_mut().send(preamble, &bytes).expect("the exchange is idle");
                }
                self.exchange.fill(&mut out);
            } else {
                let mut linear = [0i16; BLOCK_SAMPLES];
                g711::decode_block(ch.law, heard, &mut linear);
                self.heard.extend_from_slice(&linear);
                if self.off_hook_at == Some(self.tick) {
                    action = FarAction::OffHook;
                }
            }
            g711::encode_block(ch.law, &out, say);
            action
        }
    }

    fn engine(bursts: Vec<(u64, Vec<u8>)>, off_hook_at: Option<u64>) -> (Engine<SimCard<Lines>>, EngineEnds) {
        let sim =
            SimConfig { trunk_ports: 1, seat_ports: 1, pacing: Pacing::FreeRunning, ..SimConfig::default() };
        // The exchange sends V.23 while the engine is set to Bell 202: trunks read both.
        let exchange = CallerIdSender::new(Standard::Etsi, -13.5);
        let lines = Lines { exchange, bursts, heard: Vec::new(), off_hook_at, tick: 0 };
        let config = EngineConfig {
            realtime: false,
            caller_id_standard: Standard::Bellcore,
            ..EngineConfig::default()
        };
        Engine::new(SimCard::new(sim, lines), &config, Arc::new(Prompts::default()), None)
    }

    fn run(engine: &mut Engine<SimCard<Lines>>, ends: &mut EngineEnds, ticks: u32) -> Vec<EngineEvent> {
        let mut events = Vec::new();
        for _ in 0..ticks {
            engine.tick().expect("the simulated card ticks");
            while let Ok(e) = ends.events.pop() {
                events.push(e);
            }
        }
        events
    }

    fn message(number: &str) -> RawMessage {
        let id =
            CallerId { number: Some(number.into()), datetime: Some((3, 17, 16, 56)), ..CallerId::default() };
        id.encode(Standard::Bellcore, Format::Mdmf).expect("encodes")
    }

    fn caller_ids(events: &[EngineEvent]) -> Vec<(ChannelId, Result<RawMessage, CallerIdError>)> {
        events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::CallerId { channel, message } => Some((*channel, Ok(message.clone()))),
                EngineEvent::CallerIdLost { channel, error } => Some((*channel, Err(*error))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_trunk_demodulates_only_while_its_window_is_open() {
        let first = message("83366857");
        let second = message("13800138000");
        let bursts = vec![(5, first.as_bytes().to_vec()), (80, second.as_bytes().to_vec())];
        let (mut engine, mut ends) = engine(bursts, None);
        // The first burst goes by with the window closed: nothing is decoded.
        let events = run(&mut engine, &mut ends, 70);
        assert!(caller_ids(&events).is_empty(), "{events:?}");
        ends.commands.push(EngineCmd::CallerIdListen { channel: TRUNK, on: true }).expect("room");
        let events = run(&mut engine, &mut ends, 70);
        assert_eq!(caller_ids(&events), vec![(TRUNK, Ok(second))]);
        let stats = ends.stats.snapshot();
        assert_eq!((stats.caller_id_received, stats.caller_id_errors), (1, 0));
    }

    #[test]
    fn a_corrupted_frame_is_reported_lost() {
        let mut bytes = message("83366857").as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x5A;
        let (mut engine, mut ends) = engine(vec![(5, bytes)], None);
        ends.commands.push(EngineCmd::CallerIdListen { channel: TRUNK, on: true }).expect("room");
        let events = run(&mut engine, &mut ends, 70);
        let got = caller_ids(&events);
        assert!(matches!(got[..], [(TRUNK, Err(CallerIdError::BadChecksum { .. }))]), "{got:?}");
        assert_eq!(ends.stats.snapshot().caller_id_errors, 1);
    }

    #[test]
    fn a_seat_phone_gets_the_burst_and_a_second_one_waits_its_turn() {
        let (mut engine, mut ends) = engine(Vec::new(), None);
        let m = message("83366857");
        ends.commands.push(EngineCmd::SendCallerId { channel: SEAT, message: m.clone() }).expect("room");
        ends.commands.push(EngineCmd::SendCallerId { channel: SEAT, message: m.clone() }).expect("room");
        let events = run(&mut engine, &mut ends, 60);
        assert!(
            events.contains(&EngineEvent::CommandFailed {
                channel: SEAT,
                reason: "caller id not sent: a burst is still going out"
            }),
            "{events:?}"
        );
        let stats = ends.stats.snapshot();
        assert_eq!((stats.caller_id_sent, stats.caller_id_not_sent), (1, 1));
        // What the phone heard decodes to the message, in Bell 202 as configured.
        let mut rx = CallerIdReceiver::new(crate::dsp::fsk::FskMode::Bell202);
        let mut got = Vec::new();
        rx.process(&engine.card().far_end().heard, |r| got.push(r));
        assert_eq!(got, vec![Ok(m)]);
    }

    #[test]
    fn picking_up_the_phone_stops_the_burst_and_caller_id_is_not_sent_off_hook() {
        let (mut engine, mut ends) = engine(Vec::new(), Some(10));
        let m = message("83366857");
        ends.commands.push(EngineCmd::SendCallerId { channel: SEAT, message: m.clone() }).expect("room");
        run(&mut engine, &mut ends, 40);
        let heard = &engine.card().far_end().heard;
        // The phone went off-hook at tick 10: silence from the next block on (A-law has no
        // zero; its quietest codes decode to ±8).
        assert!(heard[..8 * BLOCK_SAMPLES].iter().any(|&s| s.abs() > 1000));
        assert!(heard[12 * BLOCK_SAMPLES..].iter().all(|&s| s.abs() <= 8));
        ends.commands.push(EngineCmd::SendCallerId { channel: SEAT, message: m }).expect("room");
        let events = run(&mut engine, &mut ends, 2);
        assert!(events.contains(&EngineEvent::CommandFailed {
            channel: SEAT,
            reason: "caller id not sent: the phone is off-hook"
        }));
        let stats = ends.stats.snapshot();
        assert_eq!((stats.caller_id_sent, stats.caller_id_not_sent), (0, 2));
    }

    #[test]
    fn caller_id_commands_on_the_wrong_kind_of_port_are_refused() {
        let (mut engine, mut ends) = engine(Vec::new(), None);
        ends.commands.push(EngineCmd::CallerIdListen { channel: SEAT, on: true }).expect("room");
        ends.commands.push(EngineCmd::SendCallerId { channel: TRUNK, message: message("1") }).expect("room");
        ends.commands.push(EngineCmd::CallerIdListen { channel: ChannelId(9), on: true }).expect("room");
        let events = run(&mut engine, &mut ends, 1);
        let reasons: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::CommandFailed { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                "no caller id receiver: not a trunk port",
                "no caller id sender: not a seat port",
                "no such channel"
            ]
        );
    }

    mod linetest {
        use super::*;
        use crate::dsp::level::LevelMeter;
        use crate::dsp::tonegen::Oscillator;
        use crate::dsp::{dbm0, dbm0_to_amplitude, saturate};
        use std::sync::Mutex;
        use switchboard_driver_api::{Block, ChannelInfo, Pacing};
        use switchboard_driver_sim::{FarAction, FarEnd, FarLine, SimCard, SimConfig};

        const TRUNK: ChannelId = ChannelId(0);
        const SEAT: ChannelId = ChannelId(1);

        /// What the far end of each port sends and heard.
        #[derive(Default)]
        struct Port {
            /// Tones it sends: (frequency, dBm0).
            tones: Vec<Oscillator>,
            /// Sends back what it heard in the same tick, at this gain.
            echo: Option<f32>,
            /// Sends one block of a constant at this tick (counted from 1).
            marker_at: Option<u64>,
            heard: Vec<i16>,
        }

        /// A far end driven by the test through a mutex (the tick is not counted here).
        #[derive(Clone, Default)]
        struct Probe(Arc<Mutex<(u64, Vec<Port>)>>);

        impl Probe {
            fn port<R>(&self, ch: ChannelId, f: impl FnOnce(&mut Port) -> R) -> R {
                f(&mut self.0.lock().unwrap().1[usize::from(ch.0)])
            }
            fn tone(&self, ch: ChannelId, freq: f32, level: f32) {
                self.port(ch, |p| p.tones.push(Oscillator::new(freq, dbm0_to_amplitude(level))));
            }
            /// What the port's far end heard from tick `from` (counted from 0) on.
            fn heard_since(&self, ch: ChannelId, from: usize) -> Vec<i16> {
                self.port(ch, |p| p.heard[from * BLOCK_SAMPLES..].to_vec())
            }
        }

        impl FarEnd for Probe {
            fn tick(&mut self, ch: &ChannelInfo, _: FarLine, heard: &Block, say: &mut Block) -> FarAction {
                let mut state = self.0.lock().unwrap();
                if ch.id.0 == 0 {
                    state.0 += 1;
                }
                let tick = state.0;
                let p = &mut state.1[usize::from(ch.id.0)];
                let mut linear = [0i16; BLOCK_SAMPLES];
                g711::decode_block(ch.law, heard, &mut linear);
                p.heard.extend_from_slice(&linear);
                let mut out = [0i16; BLOCK_SAMPLES];
                for (k, o) in out.iter_mut().enumerate() {
                    let mut x: f32 = p.tones.iter_mut().map(|t| t.next_sample()).sum();
                    if let Some(g) = p.echo {
                        x += f32::from(linear[k]) * g;
                    }
                    if p.marker_at == Some(tick) {
                        x += 5000.0;
                    }
                    *o = saturate(x);
                }
                g711::encode_block(ch.law, &out, say);
                FarAction::None
            }
        }

        struct Rig {
            engine: Engine<SimCard<Probe>>,
            ends: EngineEnds,
            far: Probe,
            rec: rtrb::Consumer<RecBlock>,
        }

        fn rig(law: Law, echo_canceller: bool) -> Rig {
            let sim = SimConfig {
                trunk_ports: 1,
                seat_ports: 1,
                law,
                pacing: Pacing::FreeRunning,
                ..SimConfig::default()
            };
            let far = Probe(Arc::new(Mutex::new((0, vec![Port::default(), Port::default()]))));
            let (rec_tx, rec) = rtrb::RingBuffer::new(1000);
            let config = EngineConfig { realtime: false, echo_canceller, ..EngineConfig::default() };
            let card = SimCard::new(sim, far.clone());
            let (engine, ends) = Engine::new(card, &config, Arc::new(Prompts::default()), Some(rec_tx));
            Rig { engine, ends, far, rec }
        }

        impl Rig {
            fn cmd(&mut self, c: EngineCmd) {
                self.ends.commands.push(c).expect("room");
            }
            fn run(&mut self, ticks: u32) -> Vec<EngineEvent> {
                let mut events = Vec::new();
                for _ in 0..ticks {
                    self.engine.tick().expect("the simulated card ticks");
                    while let Ok(e) = self.ends.events.pop() {
                        events.push(e);
                    }
                }
                events
            }
            fn ticks(&self) -> usize {
                self.engine.card().ticks() as usize
            }
            fn listen_to(&mut self, channel: ChannelId, sources: &[ChannelId]) {
                let sources = sources.iter().copied().collect();
                self.cmd(EngineCmd::Listen { channel, sources });
            }
        }

        fn levels(events: &[EngineEvent]) -> Vec<(ChannelId, LevelReport)> {
            events
                .iter()
                .filter_map(|e| match e {
                    EngineEvent::Level { channel, level } => Some((*channel, *level)),
                    _ => None,
                })
                .collect()
        }

        fn failures(events: &[EngineEvent]) -> Vec<&'static str> {
            events
                .iter()
                .filter_map(|e| match e {
                    EngineEvent::CommandFailed { reason, .. } => Some(*reason),
                    _ => None,
                })
                .collect()
        }

        /// Level of the component at `freq` over the whole of `x` (one rectangular DFT bin):
        /// equal to the RMS level only if the sine keeps its phase all along.
        fn coherent_dbm0(x: &[i16], freq: f32) -> f32 {
            let w = 2.0 * std::f64::consts::PI * f64::from(freq) / 8000.0;
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (n, &s) in x.iter().enumerate() {
                re += f64::from(s) * (w * n as f64).cos();
                im += f64::from(s) * (w * n as f64).sin();
            }
            let amplitude = 2.0 * (re * re + im * im).sqrt() / x.len() as f64;
            crate::dsp::mean_square_to_dbm0((amplitude * amplitude / 2.0) as f32)
        }

        #[test]
        fn a_test_tone_has_its_level_and_keeps_its_phase_across_blocks() {
            for law in [Law::Alaw, Law::Ulaw] {
                let mut r = rig(law, false);
                r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 1004, level_dbm0: -10 });
                r.run(60);
                // 50 blocks from the third on: 1 s, whole blocks of tone.
                let heard = r.far.heard_since(SEAT, 3);
                let heard = &heard[..50 * BLOCK_SAMPLES];
                assert!((dbm0(heard) + 10.0).abs() < 0.1, "{law:?}: {}", dbm0(heard));
                // A phase jump at block boundaries would spread the tone over other bins.
                let coherent = coherent_dbm0(heard, 1004.0);
                assert!((coherent + 10.0).abs() < 0.1, "{law:?}: {coherent}");
                // Another play command replaces it, StopPlay stops it.
                r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 2000, level_dbm0: 0 });
                r.run(10);
                let mut m = LevelMeter::new();
                m.start(Some(2000.0));
                m.process(&r.far.heard_since(SEAT, r.ticks() - 5));
                assert!(m.reading().tone_dbm0.abs() < 0.1, "{:?}", m.reading());
                r.cmd(EngineCmd::StopPlay { channel: SEAT });
                r.run(5);
                assert!(dbm0(&r.far.heard_since(SEAT, r.ticks() - 3)) < -60.0);
            }
        }

        #[test]
        fn line_test_commands_with_bad_arguments_are_refused() {
            let mut r = rig(Law::Alaw, false);
            r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 0, level_dbm0: -10 });
            r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 4000, level_dbm0: -10 });
            r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 1004, level_dbm0: 4 });
            r.cmd(EngineCmd::MeasureLevel { channel: SEAT, freq_hz: 1004, blocks: 0 });
            r.cmd(EngineCmd::MeasureLevel { channel: SEAT, freq_hz: 4000, blocks: 1 });
            r.cmd(EngineCmd::MeasureLevel { channel: ChannelId(7), freq_hz: 1004, blocks: 1 });
            r.cmd(EngineCmd::Bridge { a: SEAT, b: SEAT });
            assert_eq!(
                failures(&r.run(1)),
                vec![
                    "test tone frequency out of range (1-3999 Hz)",
                    "test tone frequency out of range (1-3999 Hz)",
                    "test tone level too high (at most +3 dBm0)",
                    "a level measurement needs at least one block",
                    "measuring frequency out of range (0-3999 Hz)",
                    "no such channel",
                    "a channel cannot be bridged with itself (listen to itself for a loopback)",
                ]
            );
            // The loudest test tone does not clip.
            r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 1004, level_dbm0: 3 });
            r.run(10);
            let heard = r.far.heard_since(SEAT, 3);
            assert!((dbm0(&heard) - 3.0).abs() < 0.1, "{}", dbm0(&heard));
        }

        #[test]
        fn a_measurement_reads_the_raw_line_in_the_asked_number_of_blocks() {
            for law in [Law::Alaw, Law::Ulaw] {
                let mut r = rig(law, true);
                // The far end sends -20 dBm0 at 1004 Hz and -10 dBm0 at 2000 Hz.
                r.far.tone(TRUNK, 1004.0, -20.0);
                r.far.tone(TRUNK, 2000.0, -10.0);
                r.run(5);
                r.cmd(EngineCmd::MeasureLevel { channel: TRUNK, freq_hz: 1004, blocks: 50 });
                assert!(levels(&r.run(49)).is_empty());
                let got = levels(&r.run(1));
                let [(TRUNK, level)] = got[..] else { panic!("{law:?}: {got:?}") };
                assert!((level.tone_cdbm0 + 2000).abs() <= 30, "{law:?}: {level:?}");
                assert!((level.total_cdbm0 + 959).abs() <= 30, "{law:?}: {level:?}");
                assert_eq!(level.blocks, 50);
                let peak = dbm0_to_amplitude(-20.0) + dbm0_to_amplitude(-10.0);
                assert!((f32::from(level.peak) - peak).abs() < peak * 0.05, "{law:?}: {level:?}");
                // A new measurement replaces the running one; frequency 0 gives the total only.
                r.cmd(EngineCmd::MeasureLevel { channel: TRUNK, freq_hz: 1004, blocks: 100 });
                r.run(10);
                r.cmd(EngineCmd::MeasureLevel { channel: TRUNK, freq_hz: 0, blocks: 5 });
                let got = levels(&r.run(200));
                let [(TRUNK, level)] = got[..] else { panic!("{law:?}: {got:?}") };
                assert_eq!((level.tone_cdbm0, level.blocks), (LEVEL_FLOOR_CDBM0, 5), "{level:?}");
                assert!((level.total_cdbm0 + 959).abs() <= 30, "{law:?}: {level:?}");
                // A quiet line reads low, and never below the floor.
                r.cmd(EngineCmd::MeasureLevel { channel: SEAT, freq_hz: 1004, blocks: 10 });
                let got = levels(&r.run(10));
                let [(SEAT, level)] = got[..] else { panic!("{law:?}: {got:?}") };
                assert!(level.total_cdbm0 < -6000 && level.tone_cdbm0 < -6000, "{law:?}: {level:?}");
                assert!(level.total_cdbm0 >= LEVEL_FLOOR_CDBM0, "{level:?}");
            }
        }

        #[test]
        fn the_echo_canceller_does_not_hide_a_returned_test_tone_from_the_meter() {
            let mut r = rig(Law::Alaw, true);
            // The trunk sends the tone; its far end returns it 8 dB down, one block later.
            // The seat hears the trunk after its echo canceller.
            r.far.port(TRUNK, |p| p.echo = Some(10f32.powf(-8.0 / 20.0)));
            r.cmd(EngineCmd::PlayTestTone { channel: TRUNK, freq_hz: 1004, level_dbm0: -10 });
            r.listen_to(SEAT, &[TRUNK]);
            r.run(150);
            r.cmd(EngineCmd::MeasureLevel { channel: TRUNK, freq_hz: 1004, blocks: 25 });
            let got = levels(&r.run(25));
            let [(TRUNK, level)] = got[..] else { panic!("{got:?}") };
            assert!((level.tone_cdbm0 + 1800).abs() <= 30, "{level:?}");
            assert!((level.total_cdbm0 + 1800).abs() <= 30, "{level:?}");
            let after_canceller = dbm0(&r.far.heard_since(SEAT, r.ticks() - 25));
            assert!(after_canceller < -30.0, "the canceller removed the returned tone: {after_canceller}");
        }

        #[test]
        fn a_loopback_returns_the_line_within_the_block_and_is_recorded_once() {
            let mut r = rig(Law::Alaw, true);
            // The seat's echo canceller is on, and trained on a tone and its echo: it is
            // bypassed while the seat listens to itself, and what comes back is the line.
            r.far.port(SEAT, |p| p.echo = Some(0.25));
            r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 1004, level_dbm0: -10 });
            r.run(150);
            r.far.port(SEAT, |p| p.echo = None);
            r.cmd(EngineCmd::StopPlay { channel: SEAT });
            r.listen_to(SEAT, &[SEAT]);
            r.cmd(EngineCmd::RecordStart { channel: SEAT, slot: 3 });
            r.run(1);
            while r.rec.pop().is_ok() {}
            // A marker block sent at a tick comes back in the next one, at the same place.
            let t = r.ticks() as u64;
            r.far.port(SEAT, |p| p.marker_at = Some(t + 3));
            r.run(6);
            let heard = r.far.heard_since(SEAT, t as usize);
            let loud: Vec<usize> = (0..6).filter(|b| heard[b * BLOCK_SAMPLES] > 4000).collect();
            // Far-end tick t+3 is the card's (t+3)th tick, whose block the engine sends back
            // in the same tick; the far end hears it in tick t+4, its index t+3 from 0.
            assert_eq!(loud, vec![3], "{:?}", &heard.iter().step_by(160).collect::<Vec<_>>());
            assert!(heard[3 * BLOCK_SAMPLES..4 * BLOCK_SAMPLES].iter().all(|&s| (4900..5100).contains(&s)));
            // A tone from the far end comes back at its level, and is recorded once.
            r.far.tone(SEAT, 1004.0, -10.0);
            r.run(60);
            let back = r.far.heard_since(SEAT, r.ticks() - 50);
            assert!((dbm0(&back) + 10.0).abs() < 0.2, "{}", dbm0(&back));
            assert!((coherent_dbm0(&back, 1004.0) + 10.0).abs() < 0.2);
            let mut recorded = Vec::new();
            while let Ok(b) = r.rec.pop() {
                assert_eq!(b.slot, 3);
                recorded.extend_from_slice(&b.samples);
            }
            let tail = &recorded[recorded.len() - 50 * BLOCK_SAMPLES..];
            assert!((dbm0(tail) + 10.0).abs() < 0.2, "recorded at {}", dbm0(tail));
            // A test tone replaces the loopback; StopPlay brings it back.
            r.cmd(EngineCmd::PlayTestTone { channel: SEAT, freq_hz: 2000, level_dbm0: -20 });
            r.run(10);
            let mut m = LevelMeter::new();
            m.start(Some(1004.0));
            m.process(&r.far.heard_since(SEAT, r.ticks() - 5));
            assert!(m.reading().tone_dbm0 < -50.0, "{:?}", m.reading());
            assert!((m.reading().total_dbm0 + 20.0).abs() < 0.2, "{:?}", m.reading());
            // Unbridging ends the loopback.
            r.cmd(EngineCmd::StopPlay { channel: SEAT });
            r.cmd(EngineCmd::Unbridge { channel: SEAT });
            r.run(10);
            assert!(dbm0(&r.far.heard_since(SEAT, r.ticks() - 5)) < -60.0);
        }
    }
}
