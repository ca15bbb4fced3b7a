//! FSK modem for caller id: Bell 202 and ITU-T V.23 (mode 2), 1200 baud, async characters.
//!
//! Caller id is sent one way, on hook, as a short burst: a channel seizure signal
//! (alternating 0 and 1 bits), a mark signal (a run of 1 bits) and then the message as
//! asynchronous characters — a start bit (0, space), eight data bits least significant
//! first and a stop bit (1, mark). Bell 202 (Telcordia GR-30, and YD/T 1277 in China) puts
//! the mark at 1200 Hz and the space at 2200 Hz; V.23 (ETSI EN 300 659) at 1300 and 2100 Hz.
//!
//! # Receiver
//!
//! [`FskReceiver`] is a non-coherent correlation demodulator with a digital bit clock:
//!
//! * two quadrature correlators, one per tone, run over a window one bit long (seven taps
//!   whose outer taps are weighted 5/6 so the window is exactly 6⅔ samples, the bit length).
//!   A correlator's output magnitude does not depend on where the tone's phase is, so each
//!   is an FIR filter with fixed complex taps on the real input and needs no local
//!   oscillator. The filters run over 40-sample chunks with the taps in the outer loop and
//!   the samples in the inner one, which the compiler turns into SIMD code;
//! * each correlator has a null at the other tone. A plain one-bit correlator passes the
//!   other tone at -15 dB (Bell 202) or only -8 dB (V.23, whose tones are 800 Hz apart,
//!   less than the correlator's 1200 Hz main lobe), so with 10 dB of twist the strong tone
//!   comes out of the weak tone's correlator as strong as the weak tone itself, and no
//!   threshold or scaling can separate them. With the nulls, a steady tone gives nothing in
//!   the other correlator whatever the twist; the cost is 0.1 dB of signal-to-noise ratio
//!   for Bell 202 and 0.6 dB for V.23. (An equaliser ahead of the correlators, tracking the
//!   twist, was tried first: it lengthens the window, and did worse on V.23.);
//! * the decision variable is the mark correlator's power minus the space correlator's;
//! * the bit clock is a phase-locked loop on the transitions of the decision variable
//!   (through a narrow hysteresis, so noise hovering around zero counts once), each timed at
//!   its zero crossing interpolated to a fraction of a sample. Bits are sampled midway
//!   between transitions, on the decision variable interpolated at that instant. After an
//!   idle period the first transition sets the clock outright (a start bit after the mark
//!   signal); inside a character transitions pull it a quarter of the way, which averages
//!   out noise and follows a baud rate up to a few percent off;
//! * the sampled bits go through an asynchronous framer: a 0 in the idle state is a start
//!   bit, eight data bits follow, and the stop bit must be 1. Alongside it, the receiver
//!   reports a channel seizure after 24 alternating bits and a mark signal after 25
//!   consecutive idle 1 bits, which is what the message layer ([`super::callerid`]) waits
//!   for before it accepts a message type byte;
//! * every 40-sample chunk whose power is below -52 dBm0 (12 dB under the weakest signal
//!   the receiver is specified for, -40 dBm0) is skipped while the framer is idle, and the
//!   loss of signal is reported. On an idle line this makes the receiver nearly free.
//!
//! A receiver for one modulation decodes the other as well: the correlators are only
//! 6⅔ samples long, so the other modulation's tones, 100 Hz off, lose 0.3 dB and leak
//! into the wrong correlator at -18 dB. This is what a Chinese line needs, where YD/T 1277
//! exchanges use Bell 202 or V.23.
//!
//! The receiver buffers its input into chunks, so splitting the audio differently gives the
//! same results, and it allocates nothing.
//!
//! # Transmitter
//!
//! [`FskTransmitter`] sends a burst (seizure, mark, characters, trailing marks) as a
//! phase-continuous FSK signal at a set level. The oscillator is a rotating phasor; when a
//! bit boundary falls between two samples the rotation for that sample is split between
//! the two frequencies in proportion, so bit edges sit at their exact times rather than on
//! the next sample (the transmitted baud rate is exact, not rounded to whole samples).

use super::{dbm0_to_amplitude, mean_square_to_dbm0, saturate, SAMPLE_RATE};

/// The nominal signalling rate of both modulations, in bits per second.
pub const BAUD_RATE: f32 = 1200.0;

/// Most bytes one burst can carry: a message type, a length, 255 bytes of body and a
/// checksum (the largest caller id message), plus room for a few extra bytes.
pub const MAX_BURST_BYTES: usize = 264;

/// Bit boundaries this close to a sample count as on it: the boundary times are sums of a
/// fractional bit length and carry its rounding error.
const BOUNDARY_TOLERANCE: f64 = 1e-6;

/// Correlator taps: one bit is 6⅔ samples, so seven taps with fractional outer weights.
const TAPS: usize = 7;
/// Input samples kept from the previous chunk for the correlators.
const HIST: usize = TAPS - 1;
/// Samples per processing chunk (5 ms); also the granularity of the silence gate.
const CHUNK: usize = 40;

/// Chunks quieter than this (mean power) are skipped while no character is in progress.
const GATE_DBM0: f32 = -52.0;

/// Alternating bits that make a channel seizure.
pub const SEIZURE_MIN_BITS: u16 = 24;
/// Consecutive idle mark bits that make a mark signal: more than the 20 that GR-30 allows
/// between the characters of a message, fewer than the 55 of the shortest mark signal
/// (EN 300 659-1's 80 − 25).
pub const MARK_MIN_BITS: u16 = 25;

/// A time this far back, in samples, stands for "long ago" (f32 is exact to the sample
/// well beyond it).
const LONG_AGO: f32 = 1.0e6;
/// Half-width of the hysteresis band on the decision variable, relative to the sum of the
/// two correlator powers.
const HYSTERESIS: f32 = 0.05;
/// Bit clock gain for the first crossing after an idle period or loss of lock: the
/// crossing sets the clock.
const GAIN_ACQUIRE: f32 = 1.0;
/// Gain for a start bit edge that follows a character closely while the clock is locked:
/// the character's own timing is still good, so one noisy edge only moves it a third of
/// the way.
const GAIN_LOCKED_START: f32 = 0.3;
/// Gain for crossings inside a character.
const GAIN_TRACK: f32 = 0.25;

/// The two caller id modulations. Both run at [`BAUD_RATE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FskMode {
    /// Bell 202: mark (1) 1200 Hz, space (0) 2200 Hz. Telcordia GR-30 and YD/T 1277.
    Bell202,
    /// ITU-T V.23 mode 2: mark (1) 1300 Hz, space (0) 2100 Hz. ETSI EN 300 659.
    V23,
}

impl FskMode {
    /// The frequency of a 1 bit, in Hz.
    pub const fn mark_hz(self) -> f32 {
        match self {
            FskMode::Bell202 => 1200.0,
            FskMode::V23 => 1300.0,
        }
    }

    /// The frequency of a 0 bit, in Hz.
    pub const fn space_hz(self) -> f32 {
        match self {
            FskMode::Bell202 => 2200.0,
            FskMode::V23 => 2100.0,
        }
    }
}

/// What the receiver reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FskEvent {
    /// [`SEIZURE_MIN_BITS`] alternating bits: a channel seizure signal is being received.
    /// Reported once per run of alternations.
    Seizure,
    /// [`MARK_MIN_BITS`] consecutive mark bits outside a character: the line idles on mark
    /// and a new block of characters may start. Reported once per run.
    Mark,
    /// A character with a good stop bit.
    Byte(u8),
    /// A character whose stop bit was a space: its data was lost.
    FramingError,
    /// The signal fell below the receiver's threshold (-52 dBm0).
    SignalLost,
}

/// Why a burst could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FskError {
    #[error("the FSK transmitter is still sending the previous burst")]
    Busy,
    #[error("an FSK burst holds at most {MAX_BURST_BYTES} bytes, not {0}")]
    TooLong(usize),
}

/// What precedes and follows the characters of a burst, in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preamble {
    /// Alternating bits, starting with 0 (GR-30 and EN 300 659: 300).
    pub seizure_bits: u16,
    /// Mark bits after the seizure (GR-30: 180, or 80 on call waiting; EN 300 659: 80 ± 25).
    pub mark_bits: u16,
    /// Stop bits after each character (1; more only for receivers that want gaps).
    pub stop_bits: u8,
    /// Mark bits after the last character, so it leaves the receiver's filters before the
    /// carrier stops (GR-30 asks for at least two stop bits after the checksum).
    pub trailing_mark_bits: u16,
}

impl Default for Preamble {
    /// GR-30 on hook: 300 seizure bits, 180 mark bits, one stop bit, 5 trailing marks.
    fn default() -> Self {
        Preamble { seizure_bits: 300, mark_bits: 180, stop_bits: 1, trailing_mark_bits: 5 }
    }
}

/// Produces the bits of a burst in order.
#[derive(Clone, Debug)]
struct Sequencer {
    preamble: Preamble,
    bytes: heapless::Vec<u8, MAX_BURST_BYTES>,
    /// Bits handed out so far in the current section.
    pos: u32,
    section: Section,
    byte: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Seizure,
    Mark,
    Chars,
    Trailing,
    Done,
}

impl Sequencer {
    fn next_bit(&mut self) -> Option<bool> {
        loop {
            match self.section {
                Section::Seizure => {
                    if self.pos < u32::from(self.preamble.seizure_bits) {
                        // 0 first, as in a run of 0x55 characters with their start bits.
                        let bit = self.pos & 1 == 1;
                        self.pos += 1;
                        return Some(bit);
                    }
                    self.advance(Section::Mark);
                }
                Section::Mark => {
                    if self.pos < u32::from(self.preamble.mark_bits) {
                        self.pos += 1;
                        return Some(true);
                    }
                    self.advance(Section::Chars);
                }
                Section::Chars => {
                    let per_char = 9 + u32::from(self.preamble.stop_bits.max(1));
                    if self.byte < self.bytes.len() {
                        let p = self.pos;
                        let bit = match p {
                            0 => false,
                            1..=8 => (self.bytes[self.byte] >> (p - 1)) & 1 == 1,
                            _ => true,
                        };
                        self.pos += 1;
                        if self.pos == per_char {
                            self.pos = 0;
                            self.byte += 1;
                        }
                        return Some(bit);
                    }
                    self.advance(Section::Trailing);
                }
                Section::Trailing => {
                    if self.pos < u32::from(self.preamble.trailing_mark_bits) {
                        self.pos += 1;
                        return Some(true);
                    }
                    self.advance(Section::Done);
                }
                Section::Done => return None,
            }
        }
    }

    fn advance(&mut self, to: Section) {
        self.section = to;
        self.pos = 0;
    }
}

/// Sends FSK bursts: seizure, mark, async characters and trailing marks.
#[derive(Clone, Debug)]
pub struct FskTransmitter {
    mode: FskMode,
    amplitude: f32,
    /// Phase step per sample, radians: index 0 for space, 1 for mark.
    omega: [f32; 2],
    /// cos and sin of each step.
    rot: [(f32, f32); 2],
    re: f32,
    im: f32,
    samples_per_bit: f64,
    /// Time from the current sample to the end of the current bit, in samples.
    until_boundary: f64,
    current: bool,
    running: bool,
    seq: Sequencer,
}

impl FskTransmitter {
    /// A transmitter for `mode` sending at `level_dbm0` (GR-30 and EN 300 659 send around
    /// -13.5 dBm0) at the nominal 1200 baud.
    pub fn new(mode: FskMode, level_dbm0: f32) -> Self {
        let mut tx = FskTransmitter {
            mode,
            amplitude: dbm0_to_amplitude(level_dbm0),
            omega: [0.0; 2],
            rot: [(1.0, 0.0); 2],
            re: 1.0,
            im: 0.0,
            samples_per_bit: f64::from(SAMPLE_RATE) / f64::from(BAUD_RATE),
            until_boundary: 0.0,
            current: true,
            running: false,
            seq: Sequencer {
                preamble: Preamble::default(),
                bytes: heapless::Vec::new(),
                pos: 0,
                section: Section::Done,
                byte: 0,
            },
        };
        for (i, f) in [mode.space_hz(), mode.mark_hz()].into_iter().enumerate() {
            let w = 2.0 * core::f64::consts::PI * f64::from(f) / f64::from(SAMPLE_RATE);
            tx.omega[i] = w as f32;
            tx.rot[i] = (w.cos() as f32, w.sin() as f32);
        }
        tx
    }

    /// The modulation this transmitter sends.
    pub fn mode(&self) -> FskMode {
        self.mode
    }

    /// Sets the level of the bursts that start after this call, in dBm0.
    pub fn set_level(&mut self, level_dbm0: f32) {
        self.amplitude = dbm0_to_amplitude(level_dbm0);
    }

    /// Sets the signalling rate in bits per second for the bursts that start after this
    /// call. The standards allow ±1 % around 1200; values are clamped to 1000..=1400.
    pub fn set_baud_rate(&mut self, baud: f32) {
        let baud = if baud.is_finite() { baud.clamp(1000.0, 1400.0) } else { BAUD_RATE };
        self.samples_per_bit = f64::from(SAMPLE_RATE) / f64::from(baud);
    }

    /// How many samples a burst of `bytes` characters with `preamble` lasts.
    pub fn burst_samples(&self, preamble: &Preamble, bytes: usize) -> usize {
        let bits = u64::from(preamble.seizure_bits)
            + u64::from(preamble.mark_bits)
            + bytes as u64 * (9 + u64::from(preamble.stop_bits.max(1)))
            + u64::from(preamble.trailing_mark_bits);
        // The tolerance matches the one in `fill`, where bit times accumulate rounding.
        (bits as f64 * self.samples_per_bit - BOUNDARY_TOLERANCE).ceil() as usize
    }

    /// Starts a burst. Nothing is queued when an error is returned.
    pub fn send(&mut self, preamble: Preamble, bytes: &[u8]) -> Result<(), FskError> {
        if self.running {
            return Err(FskError::Busy);
        }
        let Ok(buf) = heapless::Vec::from_slice(bytes) else {
            return Err(FskError::TooLong(bytes.len()));
        };
        self.seq = Sequencer { preamble, bytes: buf, pos: 0, section: Section::Seizure, byte: 0 };
        let Some(first) = self.seq.next_bit() else {
            // An empty burst: nothing to send.
            return Ok(());
        };
        self.current = first;
        self.until_boundary = self.samples_per_bit;
        // Phase zero: the burst starts at a zero crossing, without a click.
        self.re = 1.0;
        self.im = 0.0;
        self.running = true;
        Ok(())
    }

    /// True when no burst is being sent.
    pub fn is_idle(&self) -> bool {
        !self.running
    }

    /// Stops the burst being sent.
    pub fn abort(&mut self) {
        self.running = false;
        self.seq.section = Section::Done;
    }

    /// Writes the burst into `out` and returns how many samples were written: fewer than
    /// `out.len()` (possibly 0) when the burst ends, leaving the rest of `out` untouched.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while self.running && written < out.len() {
            out[written] = saturate(self.amplitude * self.im);
            written += 1;
            let (c, s) = if self.until_boundary > 1.0 + BOUNDARY_TOLERANCE {
                self.until_boundary -= 1.0;
                self.rot[usize::from(self.current)]
            } else {
                // The bit ends inside this sample period: rotate by the old frequency for
                // the part before the boundary and the new one for the rest.
                let f = self.until_boundary.clamp(0.0, 1.0) as f32;
                match self.seq.next_bit() {
                    Some(bit) => {
                        let angle = f * self.omega[usize::from(self.current)]
                            + (1.0 - f) * self.omega[usize::from(bit)];
                        self.current = bit;
                        self.until_boundary += self.samples_per_bit - 1.0;
                        (angle.cos(), angle.sin())
                    }
                    None => {
                        self.running = false;
                        break;
                    }
                }
            };
            let re = self.re * c - self.im * s;
            let im = self.re * s + self.im * c;
            // One Newton step towards |z| = 1 keeps the amplitude from drifting.
            let g = 1.5 - 0.5 * (re * re + im * im);
            self.re = re * g;
            self.im = im * g;
        }
        written
    }
}

/// The asynchronous framer's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Waiting for a start bit.
    Hunt,
    /// `n` data bits of `byte` received; at 8 the next bit is the stop bit.
    Bits { n: u8, byte: u8 },
}

/// A streaming FSK demodulator and async framer. See the module documentation.
#[derive(Clone, Debug)]
pub struct FskReceiver {
    mode: FskMode,
    /// The one-bit correlators: mark re, mark im, space re, space im.
    taps: [[f32; TAPS]; 4],
    /// `HIST` samples of history followed by the chunk being gathered.
    buf: [f32; HIST + CHUNK],
    filled: usize,
    /// A chunk's sum of squares below this is silence.
    gate: f32,
    /// Whether the last chunk carried signal.
    active: bool,
    samples_per_bit: f32,
    /// Decision variable at the previous sample.
    d_prev: f32,
    /// The next sampling instant and the last transition the clock used, in samples from
    /// the start of the next chunk.
    next: f32,
    edge_t: f32,
    /// The decision variable's last zero crossing: the first sample after it (in samples
    /// from the start of the next chunk), and the values before and after.
    cross: (f32, f32, f32),
    /// The hysteresis comparator's state: true for mark.
    level: bool,
    /// Whether the last character ended with a good stop bit.
    locked: bool,
    last_bit: bool,
    alt_run: u16,
    mark_run: u16,
    frame: Frame,
}

impl FskReceiver {
    /// A receiver for `mode` (which also decodes the other modulation, see the module
    /// documentation).
    pub fn new(mode: FskMode) -> Self {
        let samples_per_bit = SAMPLE_RATE / BAUD_RATE;
        // Window weights: the outer two taps share what the bit has beyond five samples.
        let edge = (f64::from(samples_per_bit) - (TAPS - 2) as f64) / 2.0;
        let mut taps = [[0.0f32; TAPS]; 4];
        for (t, own, other) in [(0, mode.mark_hz(), mode.space_hz()), (2, mode.space_hz(), mode.mark_hz())] {
            let h = null_steered(edge, own, other);
            for k in 0..TAPS {
                taps[t][k] = h[k].0 as f32;
                taps[t + 1][k] = h[k].1 as f32;
            }
        }
        let gate_amplitude = dbm0_to_amplitude(GATE_DBM0);
        let mut rx = FskReceiver {
            mode,
            taps,
            buf: [0.0; HIST + CHUNK],
            filled: 0,
            // A sine's mean square is half its peak squared.
            gate: CHUNK as f32 * gate_amplitude * gate_amplitude / 2.0,
            active: false,
            samples_per_bit,
            d_prev: 0.0,
            next: 0.0,
            edge_t: 0.0,
            cross: (0.0, 1.0, -1.0),
            level: true,
            locked: false,
            last_bit: true,
            alt_run: 0,
            mark_run: 0,
            frame: Frame::Hunt,
        };
        rx.reset_demod();
        rx
    }

    /// The modulation the correlators are tuned to.
    pub fn mode(&self) -> FskMode {
        self.mode
    }

    /// Forgets all state, as if newly constructed.
    pub fn reset(&mut self) {
        self.buf = [0.0; HIST + CHUNK];
        self.filled = 0;
        self.active = false;
        self.reset_demod();
    }

    /// The level, in dBm0, below which a chunk counts as silence.
    pub fn gate_dbm0(&self) -> f32 {
        mean_square_to_dbm0(self.gate / CHUNK as f32)
    }

    fn reset_demod(&mut self) {
        self.d_prev = 0.0;
        self.next = self.samples_per_bit / 2.0;
        self.edge_t = -LONG_AGO;
        // Any values of opposite signs: the comparator cannot flip before a real crossing
        // replaces them.
        self.cross = (-LONG_AGO, 1.0, -1.0);
        self.level = true;
        self.locked = false;
        self.last_bit = true;
        self.alt_run = 0;
        self.mark_run = 0;
        self.frame = Frame::Hunt;
    }

    /// Feeds samples of any length; `on_event` gets what was received. Input is processed
    /// in 5 ms chunks, so events come up to 5 ms after the audio that caused them, and
    /// splitting the input differently gives the same events.
    pub fn process(&mut self, samples: &[i16], mut on_event: impl FnMut(FskEvent)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (CHUNK - self.filled).min(rest.len());
            let (now, later) = rest.split_at(take);
            let start = HIST + self.filled;
            for (dst, &s) in self.buf[start..start + take].iter_mut().zip(now) {
                *dst = f32::from(s);
            }
            self.filled += take;
            rest = later;
            if self.filled == CHUNK {
                self.filled = 0;
                self.run_chunk(&mut on_event);
                self.buf.copy_within(CHUNK.., 0);
            }
        }
    }

    fn run_chunk(&mut self, on_event: &mut impl FnMut(FskEvent)) {
        let energy = sum_squares(&self.buf[HIST..]);
        if energy < self.gate && self.frame == Frame::Hunt {
            if self.active {
                self.active = false;
                self.reset_demod();
                on_event(FskEvent::SignalLost);
            }
            return;
        }
        self.active = true;
        let mut pm = [0.0f32; CHUNK];
        let mut ps = [0.0f32; CHUNK];
        self.correlate(&mut pm, &mut ps);
        self.clock(&pm, &ps, on_event);
    }

    /// The bit clock and the bit decisions over a chunk.
    ///
    /// The clock follows the transitions of a hysteresis comparator on the decision
    /// variable, timed at the variable's last zero crossing. Near a transition the variable
    /// can hover around zero and cross it several times in a few samples; counting each
    /// crossing would drag the clock. Times are in samples from the start of the chunk, kept
    /// in locals so the loop runs in registers, and shifted by a chunk at the end.
    fn clock(&mut self, pm: &[f32; CHUNK], ps: &[f32; CHUNK], on_event: &mut impl FnMut(FskEvent)) {
        let t = self.samples_per_bit;
        let mut d_prev = self.d_prev;
        let mut next = self.next;
        let mut edge_t = self.edge_t;
        let mut level = self.level;
        // The crossing's time is worked out only when the comparator flips, which saves a
        // division on every crossing that noise makes inside the hysteresis band.
        let mut cross = self.cross;
        let mut now = 0.0f32;
        for (&m, &s) in pm.iter().zip(ps) {
            let d = m - s;
            // Written as selects rather than a branch: in noise the crossings come at
            // random and a branch on them mispredicts half the time.
            let crossed = (d >= 0.0) != (d_prev >= 0.0);
            cross.0 = if crossed { now } else { cross.0 };
            cross.1 = if crossed { d_prev } else { cross.1 };
            cross.2 = if crossed { d } else { cross.2 };
            let band = HYSTERESIS * (m + s);
            if if level { d < -band } else { d > band } {
                level = !level;
                // The crossing, as a fraction of the way from the sample before; the signs
                // differ, so the denominator is not zero.
                let zero_t = cross.0 - 1.0 + cross.1 / (cross.1 - cross.2);
                // Bit centres lie half a bit from every transition: the error to the
                // nearest centre, wrapped into half a bit either way.
                let mut e = zero_t + 0.5 * t - next;
                while e > 0.5 * t {
                    e -= t;
                }
                while e <= -0.5 * t {
                    e += t;
                }
                let idle = zero_t - edge_t > 1.5 * t;
                let gain = match self.frame {
                    Frame::Hunt if !self.locked || idle => GAIN_ACQUIRE,
                    Frame::Hunt => GAIN_LOCKED_START,
                    Frame::Bits { .. } => GAIN_TRACK,
                };
                next += gain * e;
                edge_t = zero_t;
            }
            if next <= now {
                // Interpolated at the sampling instant; an instant the clock has just moved
                // into the past is taken now.
                let f = (next - (now - 1.0)).max(0.0);
                self.bit(d_prev + f * (d - d_prev) >= 0.0, on_event);
                next += t;
            }
            d_prev = d;
            now += 1.0;
        }
        // Old times only matter as "long ago", so they are held where f32 stays exact.
        let shift = CHUNK as f32;
        self.d_prev = d_prev;
        self.next = next - shift;
        self.cross = ((cross.0 - shift).max(-LONG_AGO), cross.1, cross.2);
        self.edge_t = (edge_t - shift).max(-LONG_AGO);
        self.level = level;
    }

    /// Mark and space correlator powers for each sample of the chunk, the window ending at
    /// that sample.
    fn correlate(&self, pm: &mut [f32; CHUNK], ps: &mut [f32; CHUNK]) {
        let mut mr = [0.0f32; CHUNK];
        let mut mi = [0.0f32; CHUNK];
        let mut sr = [0.0f32; CHUNK];
        let mut si = [0.0f32; CHUNK];
        for k in 0..TAPS {
            let (a, b, c, d) = (self.taps[0][k], self.taps[1][k], self.taps[2][k], self.taps[3][k]);
            // Output i uses input HIST + i - k; the inner loop over i is what vectorises.
            let xs = &self.buf[HIST - k..HIST - k + CHUNK];
            for i in 0..CHUNK {
                let x = xs[i];
                mr[i] += x * a;
                mi[i] += x * b;
                sr[i] += x * c;
                si[i] += x * d;
            }
        }
        for i in 0..CHUNK {
            pm[i] = mr[i] * mr[i] + mi[i] * mi[i];
            ps[i] = sr[i] * sr[i] + si[i] * si[i];
        }
    }

    /// One sampled bit: seizure and mark detection, and the framer.
    fn bit(&mut self, bit: bool, on_event: &mut impl FnMut(FskEvent)) {
        self.alt_run = if bit != self.last_bit { self.alt_run.saturating_add(1) } else { 1 };
        self.last_bit = bit;
        if self.alt_run == SEIZURE_MIN_BITS {
            on_event(FskEvent::Seizure);
        }
        match self.frame {
            Frame::Hunt => {
                if bit {
                    self.mark_run = self.mark_run.saturating_add(1);
                    if self.mark_run == MARK_MIN_BITS {
                        on_event(FskEvent::Mark);
                    }
                } else {
                    self.mark_run = 0;
                    self.frame = Frame::Bits { n: 0, byte: 0 };
                }
            }
            Frame::Bits { n, byte } if n < 8 => {
                self.frame = Frame::Bits { n: n + 1, byte: byte | (u8::from(bit) << n) };
            }
            Frame::Bits { byte, .. } => {
                if bit {
                    self.locked = true;
                    on_event(FskEvent::Byte(byte));
                } else {
                    self.locked = false;
                    on_event(FskEvent::FramingError);
                }
                self.frame = Frame::Hunt;
            }
        }
    }
}

/// The taps of a one-bit correlator for `own` Hz that does not respond to a steady tone of
/// `other` Hz: the windowed complex exponential, minus its projection on the other tone's
/// positive and negative frequency exponentials (least squares on two steering vectors).
///
/// A plain one-bit correlator leaks the other tone at -15 dB (Bell 202) or only -8 dB
/// (V.23, whose tones are closer than the correlator's main lobe is wide). With 10 dB of
/// twist, the strong tone then leaks into the weak tone's correlator at about the weak
/// tone's own power, which no scaling of the outputs can undo. The null costs 0.1 dB of
/// signal-to-noise ratio for Bell 202 and 0.6 dB for V.23.
fn null_steered(edge: f64, own: f32, other: f32) -> [(f64, f64); TAPS] {
    type C = (f64, f64);
    let mul = |a: C, b: C| (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0);
    let conj = |a: C| (a.0, -a.1);
    let exp = |f: f32, k: usize| {
        let a = 2.0 * core::f64::consts::PI * f64::from(f) / f64::from(SAMPLE_RATE) * k as f64;
        (a.cos(), a.sin())
    };
    let mut h = [(0.0, 0.0); TAPS];
    for (k, v) in h.iter_mut().enumerate() {
        let w = if k == 0 || k == TAPS - 1 { edge } else { 1.0 };
        let e = exp(own, k);
        *v = (w * e.0, w * e.1);
    }
    // Steering vectors of the other tone at +f and -f, and the normal equations
    // G·x = b with G = AᴴA and b = Aᴴh.
    let a: [[C; TAPS]; 2] =
        [core::array::from_fn(|k| exp(other, k)), core::array::from_fn(|k| conj(exp(other, k)))];
    let dot = |u: &[C; TAPS], v: &[C; TAPS]| {
        u.iter().zip(v).fold((0.0, 0.0), |acc, (&x, &y)| {
            let p = mul(conj(x), y);
            (acc.0 + p.0, acc.1 + p.1)
        })
    };
    let g = [[dot(&a[0], &a[0]), dot(&a[0], &a[1])], [dot(&a[1], &a[0]), dot(&a[1], &a[1])]];
    let b = [dot(&a[0], &h), dot(&a[1], &h)];
    // 2×2 complex solve by Cramer's rule; the two vectors are independent for any tone
    // between 0 and the Nyquist frequency, so the determinant is not zero.
    let det = {
        let p = mul(g[0][0], g[1][1]);
        let q = mul(g[0][1], g[1][0]);
        (p.0 - q.0, p.1 - q.1)
    };
    let div = |n: C, d: C| {
        let m = d.0 * d.0 + d.1 * d.1;
        let p = mul(n, conj(d));
        (p.0 / m, p.1 / m)
    };
    let x0 = {
        let p = mul(b[0], g[1][1]);
        let q = mul(g[0][1], b[1]);
        div((p.0 - q.0, p.1 - q.1), det)
    };
    let x1 = {
        let p = mul(g[0][0], b[1]);
        let q = mul(b[0], g[1][0]);
        div((p.0 - q.0, p.1 - q.1), det)
    };
    for (k, v) in h.iter_mut().enumerate() {
        let r0 = mul(a[0][k], x0);
        let r1 = mul(a[1][k], x1);
        *v = (v.0 - r0.0 - r1.0, v.1 - r0.1 - r1.1);
    }
    h
}

/// Sum of squares with independent accumulators, so the adds do not form one long chain.
fn sum_squares(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|v| v * v).sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded generator so noise is reproducible.
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn gauss(&mut self) -> f64 {
            let u1 = self.uniform().max(1e-300);
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (2.0 * core::f64::consts::PI * u2).cos()
        }
    }

    fn burst(mode: FskMode, level: f32, baud: f32, preamble: Preamble, bytes: &[u8]) -> Vec<i16> {
        let mut tx = FskTransmitter::new(mode, level);
        tx.set_baud_rate(baud);
        tx.send(preamble, bytes).expect("burst fits");
        let mut out = vec![0i16; tx.burst_samples(&preamble, bytes.len()) + 10];
        let n = tx.fill(&mut out);
        assert_eq!(n, tx.burst_samples(&preamble, bytes.len()));
        assert!(tx.is_idle());
        out.truncate(n);
        // Some silence on both sides, as on a line.
        let mut padded = vec![0i16; 400];
        padded.extend_from_slice(&out);
        padded.resize(padded.len() + 400, 0);
        padded
    }

    fn receive(mode: FskMode, audio: &[i16], chunk: usize) -> Vec<FskEvent> {
        let mut rx = FskReceiver::new(mode);
        let mut events = Vec::new();
        for c in audio.chunks(chunk) {
            rx.process(c, |e| events.push(e));
        }
        events
    }

    /// The bytes received after the first mark signal.
    fn bytes_after_mark(events: &[FskEvent]) -> Vec<u8> {
        let start = events.iter().position(|e| *e == FskEvent::Mark).map_or(events.len(), |p| p + 1);
        events[start..]
            .iter()
            .filter_map(|e| if let FskEvent::Byte(b) = e { Some(*b) } else { None })
            .collect()
    }

    const TEXT: &[u8] = b"\x80\x1a\x01\x0801231045\x02\x0a5551234567\x07\x08John Doe";

    #[test]
    fn round_trip_both_modes_and_chunkings() {
        for mode in [FskMode::Bell202, FskMode::V23] {
            let audio = burst(mode, -13.5, BAUD_RATE, Preamble::default(), TEXT);
            for chunk in [1, 37, 160, 1000] {
                let ev = receive(mode, &audio, chunk);
                assert!(ev.contains(&FskEvent::Seizure), "{mode:?}: {ev:?}");
                assert_eq!(bytes_after_mark(&ev), TEXT, "{mode:?} chunk {chunk}");
                assert_eq!(ev.last(), Some(&FskEvent::SignalLost));
            }
        }
    }

    #[test]
    fn every_byte_value_survives() {
        let all: Vec<u8> = (0..=255u8).collect();
        let audio = burst(FskMode::Bell202, -20.0, BAUD_RATE, Preamble::default(), &all);
        assert_eq!(bytes_after_mark(&receive(FskMode::Bell202, &audio, 160)), all);
    }

    #[test]
    fn levels_from_minus_40_to_0_dbm0() {
        for level in [-40.0, -30.0, -20.0, -10.0, 0.0] {
            let audio = burst(FskMode::V23, level, BAUD_RATE, Preamble::default(), TEXT);
            assert_eq!(bytes_after_mark(&receive(FskMode::V23, &audio, 160)), TEXT, "{level} dBm0");
        }
    }

    #[test]
    fn baud_rate_one_percent_off() {
        for baud in [1188.0, 1212.0] {
            for mode in [FskMode::Bell202, FskMode::V23] {
                let audio = burst(mode, -13.5, baud, Preamble::default(), TEXT);
                assert_eq!(bytes_after_mark(&receive(mode, &audio, 160)), TEXT, "{mode:?} {baud}");
            }
        }
    }

    #[test]
    fn each_receiver_decodes_the_other_modulation() {
        let audio = burst(FskMode::V23, -13.5, BAUD_RATE, Preamble::default(), TEXT);
        assert_eq!(bytes_after_mark(&receive(FskMode::Bell202, &audio, 160)), TEXT);
        let audio = burst(FskMode::Bell202, -13.5, BAUD_RATE, Preamble::default(), TEXT);
        assert_eq!(bytes_after_mark(&receive(FskMode::V23, &audio, 160)), TEXT);
    }

    #[test]
    fn noise_at_12_db_snr_is_decoded() {
        let mut rng = Rng(5);
        let mut good = 0;
        for trial in 0..20 {
            let mut audio = burst(FskMode::Bell202, -13.5, BAUD_RATE, Preamble::default(), TEXT);
            // Noise RMS 12 dB below the signal's.
            let rms = f64::from(dbm0_to_amplitude(-25.5)) / 2f64.sqrt();
            for s in &mut audio {
                *s = (f64::from(*s) + rms * rng.gauss()).round().clamp(-32768.0, 32767.0) as i16;
            }
            // Noise before the burst can make a mark signal of its own, so any mark signal
            // may be the one that precedes the message; bytes decoded from the noise after
            // the burst follow the message.
            let ev = receive(FskMode::Bell202, &audio, 160);
            let found = ev
                .iter()
                .enumerate()
                .any(|(i, e)| *e == FskEvent::Mark && bytes_after_mark(&ev[i..]).starts_with(TEXT));
            good += usize::from(found);
            let _ = trial;
        }
        assert!(good >= 19, "{good} of 20");
    }

    #[test]
    fn silence_gives_nothing_and_noise_no_mark_signal_in_a_second() {
        assert!(receive(FskMode::Bell202, &[0i16; 8000], 160).is_empty());
        let mut rng = Rng(9);
        let rms = f64::from(dbm0_to_amplitude(-20.0)) / 2f64.sqrt();
        let noise: Vec<i16> = (0..8000).map(|_| (rms * rng.gauss()).round() as i16).collect();
        let ev = receive(FskMode::Bell202, &noise, 160);
        assert!(!ev.contains(&FskEvent::Seizure));
    }

    #[test]
    fn transmitter_rejects_overlap_and_oversize() {
        let mut tx = FskTransmitter::new(FskMode::Bell202, -13.5);
        assert_eq!(tx.send(Preamble::default(), &[0u8; MAX_BURST_BYTES + 1]), Err(FskError::TooLong(265)));
        assert!(tx.is_idle());
        tx.send(Preamble::default(), b"x").expect("idle");
        assert_eq!(tx.send(Preamble::default(), b"y"), Err(FskError::Busy));
        tx.abort();
        assert!(tx.is_idle());
        let mut none = [0i16; 10];
        assert_eq!(tx.fill(&mut none), 0);
        let empty = Preamble { seizure_bits: 0, mark_bits: 0, stop_bits: 1, trailing_mark_bits: 0 };
        assert_eq!(tx.send(empty, &[]), Ok(()));
        assert!(tx.is_idle());
    }

    #[test]
    fn transmitted_level_is_as_set() {
        let mut tx = FskTransmitter::new(FskMode::V23, -13.5);
        let p = Preamble { seizure_bits: 300, mark_bits: 0, stop_bits: 1, trailing_mark_bits: 0 };
        tx.send(p, &[]).expect("idle");
        let mut out = vec![0i16; 2000];
        tx.fill(&mut out);
        let ms = out.iter().map(|&x| f32::from(x) * f32::from(x)).sum::<f32>() / out.len() as f32;
        assert!((mean_square_to_dbm0(ms) + 13.5).abs() < 0.1, "{}", mean_square_to_dbm0(ms));
    }
}
